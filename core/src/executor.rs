//! Carrying out the machines' effects against the rest of core.
//!
//! The swap, charging and rental machines only *describe* work. An
//! [`Executor`] carries out the parts that belong to core itself, in order,
//! each idempotently:
//!
//! - custody moves into the [`Custody`] book;
//! - when [`Books`] are attached ([`Executor::with_books`]), every money
//!   effect as a [`BooksOp`] — the executor posts nothing itself, so the
//!   books' rules hold for machine orders too: package consumption and its
//!   reversal (the liability posting rule: revenue is recognised as
//!   [`crate::package::Package::liability`] falls, and shared with the
//!   package's agent chain), wallet holds, captures, releases, direct
//!   charges and refunds of pay-per-use orders (shared with the agent chain
//!   of the cabinet where they happened, [`crate::org::Org::agent_chain`]),
//!   and deposits;
//!
//! and reports the rest as the host's: door commands, notifications, alerts
//! and slot locks (and every money effect when no books are attached).
//!
//! **Operation ids** are derived from the order, so carrying out the same
//! effects again is a no-op that reports [`Carried::Duplicate`]: a swap
//! order `N` is books order `swN` (`chN` for a charging session, `rtN` for a
//! rental), with operations `swN.hold`, `swN.capture`, `swN.release`,
//! `swN.pay`, `swN.refund`, `swN.consume` and `swN.unconsume`; a package
//! records the consumption under the order `swN`.
//!
//! **Revenue splits.** The books split revenue with the money movement that
//! earns it (a capture, a charge, a package's recognised value) and reverse
//! it with the refund or the reversed consumption, so the machines'
//! `SplitRevenue` and `ReverseRevenue` effects have nothing of their own
//! left to do: they report [`Carried::Covered`] (a `SplitRevenue` whose
//! amount differs from what a pay-per-use order kept is
//! [`ExecutorError::SplitMismatch`]). A package-paid swap's revenue is the
//! package's unit value by the package's rules, whatever the session was
//! told (`Payment::Package::unit_value` is for display).
//!
//! **Rentals.** A rental's package lives on the books as `rtN` (so does its
//! deposit): [`crate::rental::RentalEffect::BuyPackage`] is a purchase with
//! `defer_fees` (op `rtN.buy`), every
//! [`crate::rental::RentalEffect::PackageCommand`] the same command on the
//! books' copy (`BooksOp::Command`, op `rtN.p{seq}`), and
//! [`crate::rental::RentalEffect::SettleDeposit`] the deposit settlement
//! (op `rtN.settle`); after a rental decision the package is ticked to now
//! (op `rtN.t{unix seconds}`), so the days used are recognised.
//!
//! A cabinet's org asset id is its decimal [`CabinetId`].

use serde::{Deserialize, Serialize};

use crate::books::{Books, BooksError, BooksOp, DepositChoice};
use crate::charging::ChargingEffect;
use crate::custody::{CabinetId, Custody, CustodyError, MoveRequest, RiderId, Timestamp};
use crate::deposit::{DepositOp, DepositStatus};
use crate::ledger::{Key, LedgerError};
use crate::money::Money;
use crate::org::{AssetKind, Org, OrgError};
use crate::package::Command as PackageCommand;
use crate::rental::{DepositMode, RentalEffect};
use crate::settlement::ProductType;
use crate::swap::SwapEffect;
use crate::wallet::{PaymentSource, RefundDestination};

/// Errors of the executor: which effect could not be carried out and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ExecutorError {
    /// The custody book refused a move.
    #[error("custody refused the move: {error}")]
    Custody {
        /// Why.
        error: CustodyError,
    },
    /// The books refused an operation (it changed nothing).
    #[error("the books refused {op_id}: {error}")]
    Books {
        /// The operation id.
        op_id: String,
        /// Why.
        error: Box<BooksError>,
    },
    /// An id derived from the effect is not a valid ledger key.
    #[error("{field} {value} is not a usable books id: {error}")]
    Id {
        /// What the id names.
        field: String,
        /// The text.
        value: String,
        /// Why.
        error: Box<LedgerError>,
    },
    /// A `SplitRevenue` effect's amount differs from what the order kept on
    /// the books.
    #[error("order {order}: the machine splits {expected} but the books hold {kept}")]
    SplitMismatch {
        /// The books order.
        order: String,
        /// The effect's amount.
        expected: Money,
        /// Charged minus refunded on the books.
        kept: Money,
    },
    /// The org could not place the cabinet.
    #[error("cabinet {cabinet} has no owner node: {error}")]
    Org {
        /// The cabinet.
        cabinet: u64,
        /// Why.
        error: OrgError,
    },
}

/// What happened to one effect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Carried {
    /// Carried out now.
    Done,
    /// Already carried out before (same id): nothing changed.
    Duplicate,
    /// Nothing of its own to do: the books did it with the money movement
    /// it belongs to (revenue splits and their reversals).
    Covered,
    /// Not core's work: the host carries it out (doors, notifications,
    /// alerts, slot locks; money effects when no books are attached).
    Host,
    /// Failed; nothing changed for this effect.
    Failed {
        /// Why.
        error: ExecutorError,
    },
}

/// Configuration of an executor. The books carry their own (time zone,
/// revenue account, revenue-sharing rules): [`crate::books::BooksConfig`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecutorConfig {
    /// The organisation, for the agent chains of cabinets (none:
    /// platform-owned sites).
    #[serde(default)]
    pub org: Option<Org>,
    /// The credit line deposit waivers are held on (default
    /// `platform:credit_line`; it must be one of the books' credit lines).
    #[serde(default = "default_credit_line")]
    pub credit_line: Key,
}

fn default_credit_line() -> Key {
    Key::lit("platform:credit_line")
}

impl Default for ExecutorConfig {
    fn default() -> ExecutorConfig {
        ExecutorConfig {
            org: None,
            credit_line: default_credit_line(),
        }
    }
}

/// What a swap or charging effect asks of core, whichever machine it
/// came from: both machines' effects map onto this, and one path carries
/// it out.
enum Work<'a> {
    /// Record a custody move.
    Custody(&'a MoveRequest),
    /// Consume one entitlement of a package.
    Consume(u64, &'a str),
    /// Give the entitlement back.
    Unconsume(u64, &'a str),
    /// Place a wallet hold.
    Hold(u64, Money),
    /// Capture the hold.
    Capture(u64, Money),
    /// Release the hold.
    Release(u64),
    /// Charge the wallet directly.
    Charge(u64, Money),
    /// Refund what was charged.
    Refund(u64, Money),
    /// Split the order's revenue (the books did, with the money).
    Split(u64, Money),
    /// Reverse the split (the books did, with the refund).
    Unsplit,
    /// Doors, slot locks, start and stop commands, price requests,
    /// notifications, alerts.
    Host,
}

impl<'a> From<&'a SwapEffect> for Work<'a> {
    fn from(e: &'a SwapEffect) -> Work<'a> {
        match e {
            SwapEffect::CustodyMove(m) => Work::Custody(m),
            SwapEffect::ConsumeEntitlement { order, package } => Work::Consume(*order, package),
            SwapEffect::RefundEntitlement { order, package } => Work::Unconsume(*order, package),
            SwapEffect::PlaceHold { order, amount } => Work::Hold(*order, *amount),
            SwapEffect::CaptureHold { order, amount } => Work::Capture(*order, *amount),
            SwapEffect::ReleaseHold { order } => Work::Release(*order),
            SwapEffect::ChargeWallet { order, amount } => Work::Charge(*order, *amount),
            SwapEffect::RefundPayment { order, amount } => Work::Refund(*order, *amount),
            SwapEffect::SplitRevenue { order, amount } => Work::Split(*order, *amount),
            SwapEffect::ReverseRevenue { .. } => Work::Unsplit,
            SwapEffect::OpenDoor { .. }
            | SwapEffect::LockSlot { .. }
            | SwapEffect::NotifyRider { .. }
            | SwapEffect::RaiseAlert { .. } => Work::Host,
        }
    }
}

impl<'a> From<&'a ChargingEffect> for Work<'a> {
    fn from(e: &'a ChargingEffect) -> Work<'a> {
        match e {
            ChargingEffect::ConsumeEntitlement { order, package } => Work::Consume(*order, package),
            ChargingEffect::PlaceHold { order, amount } => Work::Hold(*order, *amount),
            ChargingEffect::CaptureHold { order, amount } => Work::Capture(*order, *amount),
            ChargingEffect::ReleaseHold { order } => Work::Release(*order),
            ChargingEffect::ChargeWallet { order, amount } => Work::Charge(*order, *amount),
            ChargingEffect::RefundPayment { order, amount } => Work::Refund(*order, *amount),
            ChargingEffect::SplitRevenue { order, amount } => Work::Split(*order, *amount),
            ChargingEffect::ReverseRevenue { .. } => Work::Unsplit,
            ChargingEffect::CustodyMove(m) => Work::Custody(m),
            ChargingEffect::SendStart { .. }
            | ChargingEffect::SendStop { .. }
            | ChargingEffect::RequestPrice { .. }
            | ChargingEffect::NotifyRider { .. }
            | ChargingEffect::RaiseAlert { .. }
            | ChargingEffect::OpenDoor { .. }
            | ChargingEffect::LockSlot { .. }
            | ChargingEffect::CabinetAlert { .. }
            | ChargingEffect::NotifyDoor { .. } => Work::Host,
        }
    }
}

/// Where a swap or charging session's orders go on the books.
struct Site {
    /// Books order prefix: `sw` or `ch`.
    prefix: &'static str,
    /// What is sold.
    product: ProductType,
    /// Swaps per order (for fixed per-swap shares).
    swaps: u32,
    /// The cabinet, for the agent chain.
    cabinet: Option<CabinetId>,
    /// The rider.
    rider: RiderId,
}

/// Carries out effects; owns the custody book and, optionally, the books.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Executor {
    config: ExecutorConfig,
    custody: Custody,
    books: Option<Books>,
}

fn key(field: &str, value: &str) -> Result<Key, ExecutorError> {
    Key::for_field(field, value).map_err(|error| ExecutorError::Id {
        field: field.into(),
        value: value.into(),
        error: Box::new(error),
    })
}

impl Executor {
    /// A new executor over a custody book, without books: money effects
    /// are the host's.
    pub fn new(config: ExecutorConfig, custody: Custody) -> Executor {
        Executor {
            config,
            custody,
            books: None,
        }
    }

    /// Attaches the books: every money effect is then a [`BooksOp`].
    pub fn with_books(mut self, books: Books) -> Executor {
        self.books = Some(books);
        self
    }

    /// The books, if attached.
    pub fn books(&self) -> Option<&Books> {
        self.books.as_ref()
    }

    /// The books, for the host's own operations (top-ups, package
    /// purchases, payouts): apply them with [`Books::apply`].
    pub fn books_mut(&mut self) -> Option<&mut Books> {
        self.books.as_mut()
    }

    /// The custody book.
    pub fn custody(&self) -> &Custody {
        &self.custody
    }

    /// The agent chain of a cabinet's owner (empty without an org or a
    /// cabinet).
    fn chain(&self, cabinet: Option<CabinetId>) -> Result<Vec<String>, ExecutorError> {
        match (&self.config.org, cabinet) {
            (Some(org), Some(c)) => {
                let err = |error| ExecutorError::Org {
                    cabinet: c.0,
                    error,
                };
                let node = org
                    .owner_of(AssetKind::Cabinet, &c.0.to_string())
                    .map_err(err)?;
                org.agent_chain(node).map_err(err)
            }
            _ => Ok(Vec::new()),
        }
    }

    fn custody_move(&mut self, m: &MoveRequest, now: Timestamp) -> Carried {
        match self.custody.record(m.clone(), now) {
            Ok(r) if r.duplicate => Carried::Duplicate,
            Ok(_) => Carried::Done,
            Err(error) => Carried::Failed {
                error: ExecutorError::Custody { error },
            },
        }
    }

    /// Applies a books operation under `op_id` (built by `op` only when
    /// books are attached); `Duplicate` when the id was applied before.
    fn books_op(
        &mut self,
        op_id: &str,
        op: impl FnOnce(&Executor) -> Result<BooksOp, ExecutorError>,
        now: Timestamp,
    ) -> Carried {
        if self.books.is_none() {
            return Carried::Host;
        }
        let run = |ex: &mut Executor| -> Result<bool, ExecutorError> {
            let id = key("op_id", op_id)?;
            let op = op(ex)?;
            let Some(books) = ex.books.as_mut() else {
                return Ok(false);
            };
            let seen = books.receipt(&id).is_some();
            books
                .apply(id, now, &op)
                .map_err(|error| ExecutorError::Books {
                    op_id: op_id.into(),
                    error: Box::new(error),
                })?;
            Ok(!seen)
        };
        match run(self) {
            Ok(true) => Carried::Done,
            Ok(false) => Carried::Duplicate,
            Err(error) => Carried::Failed { error },
        }
    }

    /// A `SplitRevenue` effect: the books split with the money movement.
    fn split_covered(&self, order: &str, amount: Money) -> Carried {
        let Some(books) = &self.books else {
            return Carried::Host;
        };
        let sale = Key::new(order).ok().and_then(|k| books.sale(&k));
        match sale {
            Some(s) => {
                let kept = s.amount.checked_sub(s.refunded).unwrap_or(s.amount);
                if kept == amount {
                    Carried::Covered
                } else {
                    Carried::Failed {
                        error: ExecutorError::SplitMismatch {
                            order: order.into(),
                            expected: amount,
                            kept,
                        },
                    }
                }
            }
            // paid by a package: recognised and split by the package's rules
            None => Carried::Covered,
        }
    }

    /// Carries out one piece of work of a session's order at `site`.
    fn work(&mut self, site: &Site, w: Work<'_>, now: Timestamp) -> Carried {
        let p = site.prefix;
        let order = |n: u64| key("order", &format!("{p}{n}"));
        let op = |n: u64, what: &str| format!("{p}{n}.{what}");
        match w {
            Work::Custody(m) => self.custody_move(m, now),
            Work::Host => Carried::Host,
            Work::Unsplit if self.books.is_some() => Carried::Covered,
            Work::Unsplit => Carried::Host,
            Work::Split(n, amount) => self.split_covered(&format!("{p}{n}"), amount),
            Work::Consume(n, package) => self.books_op(
                &op(n, "consume"),
                |_| {
                    Ok(BooksOp::Consume {
                        package: key("package", package)?,
                        order: format!("{p}{n}"),
                        swaps: 1,
                    })
                },
                now,
            ),
            Work::Unconsume(n, package) => self.books_op(
                &op(n, "unconsume"),
                |_| {
                    Ok(BooksOp::ReverseConsumption {
                        package: key("package", package)?,
                        order: format!("{p}{n}"),
                    })
                },
                now,
            ),
            Work::Hold(n, amount) => self.books_op(
                &op(n, "hold"),
                |ex| {
                    Ok(BooksOp::Authorize {
                        order: order(n)?,
                        rider: key("rider", &site.rider.0.to_string())?,
                        amount,
                        product: site.product,
                        swaps: site.swaps,
                        chain: ex.chain(site.cabinet)?,
                        expires_at: None,
                    })
                },
                now,
            ),
            Work::Capture(n, amount) => self.books_op(
                &op(n, "capture"),
                |_| {
                    Ok(BooksOp::Capture {
                        order: order(n)?,
                        amount: Some(amount),
                    })
                },
                now,
            ),
            Work::Release(n) => self.books_op(
                &op(n, "release"),
                |_| Ok(BooksOp::Release { order: order(n)? }),
                now,
            ),
            Work::Charge(n, amount) => self.books_op(
                &op(n, "pay"),
                |_| {
                    Ok(BooksOp::Charge {
                        order: order(n)?,
                        amount,
                        source: PaymentSource::Wallet,
                    })
                },
                now,
            ),
            Work::Refund(n, amount) => self.books_op(
                &op(n, "refund"),
                |_| {
                    Ok(BooksOp::RefundSale {
                        order: order(n)?,
                        amount,
                        destination: RefundDestination::Wallet,
                    })
                },
                now,
            ),
        }
    }

    /// Carries out a swap decision's effects, in order, for the session's
    /// rider at `cabinet`.
    pub fn carry_out_swap(
        &mut self,
        cabinet: CabinetId,
        rider: RiderId,
        effects: &[SwapEffect],
        now: Timestamp,
    ) -> Vec<Carried> {
        let site = Site {
            prefix: "sw",
            product: ProductType::Swap,
            swaps: 1,
            cabinet: Some(cabinet),
            rider,
        };
        effects
            .iter()
            .map(|e| self.work(&site, e.into(), now))
            .collect()
    }

    /// Carries out a charging decision's effects, in order. `cabinet` is the
    /// charging cabinet, if the session runs at one (for the agent chain).
    /// Holds are placed on the rider's paid wallet balance; a
    /// pre-authorisation on an external means is the host's (its money
    /// effects then fail here unless the host placed the hold on the books
    /// under the same order).
    pub fn carry_out_charging(
        &mut self,
        cabinet: Option<CabinetId>,
        rider: RiderId,
        effects: &[ChargingEffect],
        now: Timestamp,
    ) -> Vec<Carried> {
        let site = Site {
            prefix: "ch",
            product: ProductType::Charging,
            swaps: 0,
            cabinet,
            rider,
        };
        effects
            .iter()
            .map(|e| self.work(&site, e.into(), now))
            .collect()
    }

    fn deposit_status(&self, deposit: &str) -> Option<DepositStatus> {
        let books = self.books.as_ref()?;
        let k = Key::new(deposit).ok()?;
        books.deposits().deposit(&k).map(|d| d.status)
    }

    /// Whether the books hold this package.
    fn has_package(&self, package: &str) -> bool {
        let k = Key::new(package).ok();
        self.books
            .as_ref()
            .is_some_and(|b| k.and_then(|k| b.package(&k)).is_some())
    }

    fn rental_effect(
        &mut self,
        site: Option<CabinetId>,
        rider: RiderId,
        e: &RentalEffect,
        now: Timestamp,
    ) -> Carried {
        match e {
            RentalEffect::CustodyMove(m) => {
                let r = self.custody_move(m, now);
                // the battery handed over: the deposit now backs a rental
                if let (
                    crate::custody::Cause::Rental { order },
                    crate::custody::Location::Rider { .. },
                ) = (&m.cause, &m.to)
                {
                    let d = crate::rental::package_id(*order);
                    if self.deposit_status(&d) == Some(DepositStatus::Held) {
                        let s = self.books_op(
                            &format!("{d}.start"),
                            |_| {
                                Ok(BooksOp::Deposit {
                                    action: DepositOp::StartRental {
                                        deposit: key("deposit", &d)?,
                                        rental: key("rental", &d)?,
                                    },
                                })
                            },
                            now,
                        );
                        if let Carried::Failed { .. } = s {
                            return s;
                        }
                    }
                }
                r
            }
            RentalEffect::BuyPackage {
                order,
                package,
                purchase,
                deposit,
                source,
            } => {
                let line = self.config.credit_line;
                self.books_op(
                    &format!("rt{order}.buy"),
                    |ex| {
                        Ok(BooksOp::Purchase {
                            package: key("package", package)?,
                            rider: key("rider", &rider.0.to_string())?,
                            product: Box::new(purchase.product.clone()),
                            paid: purchase.paid,
                            profile: purchase.rider.clone(),
                            source: *source,
                            chain: ex.chain(site)?,
                            deposit: match deposit {
                                DepositMode::Paid => DepositChoice::Pay,
                                DepositMode::CreditWaiver => DepositChoice::Waive {
                                    credit_line: line,
                                    expires_at: None,
                                },
                            },
                            defer_fees: true,
                        })
                    },
                    now,
                )
            }
            // a cancel before the host bought the package: nothing to undo
            RentalEffect::PackageCommand {
                package, command, ..
            } if **command == PackageCommand::Cancel && !self.has_package(package) => {
                Carried::Duplicate
            }
            RentalEffect::PackageCommand {
                order,
                package,
                seq,
                command,
                source,
            } => self.books_op(
                &format!("rt{order}.p{seq}"),
                |_| {
                    Ok(BooksOp::Command {
                        package: key("package", package)?,
                        command: command.clone(),
                        source: *source,
                        // refunds go back the way the package was paid
                        destination: match source {
                            PaymentSource::Wallet => RefundDestination::Wallet,
                            PaymentSource::Channel => RefundDestination::OriginalChannel,
                        },
                    })
                },
                now,
            ),
            RentalEffect::SettleDeposit { package, .. } if !self.has_package(package) => {
                Carried::Duplicate
            }
            RentalEffect::SettleDeposit {
                order,
                package,
                fees,
                damage,
                lost,
                ..
            } => self.books_op(
                &format!("rt{order}.settle"),
                |_| {
                    Ok(BooksOp::SettleDeposit {
                        package: key("package", package)?,
                        damage: Some(*damage),
                        lost: *lost,
                        fees: Some(*fees),
                    })
                },
                now,
            ),
            RentalEffect::NotifyRider { .. }
            | RentalEffect::RaiseAlert { .. }
            | RentalEffect::OpenDoor { .. }
            | RentalEffect::LockSlot { .. }
            | RentalEffect::CabinetAlert { .. }
            | RentalEffect::NotifyDoor { .. } => Carried::Host,
        }
    }

    /// Brings rental `order`'s package on the books to `now` (a `tick`, op
    /// `rtN.t{unix seconds}`), so its liability account holds what
    /// [`crate::package::Package::liability`] says: the days used are
    /// recognised as revenue. `Host` without books, `Duplicate` when there
    /// is nothing to bring (no such package, or it has ended).
    pub fn tick_rental(&mut self, order: u64, now: Timestamp) -> Carried {
        let package = crate::rental::package_id(order);
        let open = self.books.as_ref().and_then(|b| {
            let k = Key::new(&package).ok()?;
            let p = b.package(&k)?;
            Some(!matches!(
                p.package.status,
                crate::package::Status::Closed | crate::package::Status::Refunded
            ))
        });
        match open {
            None if self.books.is_none() => Carried::Host,
            Some(true) => self.books_op(
                &format!("{package}.t{}", now.timestamp()),
                |_| {
                    Ok(BooksOp::Tick {
                        package: key("package", &package)?,
                    })
                },
                now,
            ),
            _ => Carried::Duplicate,
        }
    }

    /// Carries out a rental decision's effects, in order, for rental
    /// `order` of `rider`; `site` is the cabinet it is sold at, if any (for
    /// the agent chain that shares in the package's revenue). Then brings
    /// the rental's package on the books to `now` ([`Executor::tick_rental`]);
    /// if that fails, its result follows the effects' results.
    ///
    /// On the books the package is `rtN` (bought with `defer_fees`), and
    /// so is its deposit, which starts backing the rental when the battery
    /// is handed over. Ops: `rtN.buy`, `rtN.p{seq}` for the package
    /// commands, `rtN.settle`, `rtN.start`. The settlement applies for the
    /// refund of what is left of a paid deposit; finance reviews and pays
    /// it out (`DepositOp::ReviewRefund` / `ConfirmRefund`).
    pub fn carry_out_rental(
        &mut self,
        site: Option<CabinetId>,
        rider: RiderId,
        order: u64,
        effects: &[RentalEffect],
        now: Timestamp,
    ) -> Vec<Carried> {
        let mut out: Vec<Carried> = effects
            .iter()
            .map(|e| match (e, self.books.is_some()) {
                (RentalEffect::CustodyMove(m), false) => self.custody_move(m, now),
                (_, false) => Carried::Host,
                (e, true) => self.rental_effect(site, rider, e, now),
            })
            .collect();
        if let c @ Carried::Failed { .. } = self.tick_rental(order, now) {
            out.push(c);
        }
        out
    }
}

#[cfg(test)]
pub(crate) mod tests;
