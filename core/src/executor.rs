//! Carrying out the machines' effects against the rest of core.
//!
//! The swap, charging and rental machines only *describe* work. An
//! [`Executor`] carries out the parts that belong to core itself, in order,
//! each idempotently:
//!
//! - custody moves into the [`Custody`] book;
//! - entitlement consumption and its reversal through [`crate::package`]
//!   (`Consume` / `ReverseConsumption`, idempotent by order id, so a replayed
//!   swap never consumes twice);
//! - revenue splits and their reversals through [`crate::settlement`], with
//!   the agent chain of the cabinet's owner in [`crate::org`] (idempotent by
//!   order id);
//!
//! - when money books are attached ([`Executor::with_money`]), every money
//!   movement on the [`Ledger`] through [`Wallets`]: holds (`Authorize`),
//!   captures, releases, direct charges and refunds of the rider's wallet,
//!   the recognition of a package swap's value (package liability → platform
//!   revenue, `{order}.consume`, code `package_consume`) and the agents'
//!   revenue shares (platform revenue → `{node}:revenue`, code
//!   `revenue_share`), each idempotent by an id derived from the order;
//!
//! and reports the rest as the host's: door commands, notifications, alerts
//! and slot locks (and money effects when no books are attached).
//!
//! Ledger ids: a swap order `N` uses wallet order `swN` (`chN` for charging);
//! wallet op ids `swN.auth`, `swN.capture`, `swN.release`, `swN.pay`,
//! `swN.refund`; transfers `swN.consume`, `swN.unconsume`, `swN.share.L`,
//! `swN.unshare.L` (L: the split level). A package's liability account is
//! `{package}:liability` and must exist (the host posts the purchase into it).
//!
//! Package and settlement times are local ([`chrono::NaiveDateTime`]); the
//! executor converts `now` with its configured UTC offset (China: +8 h).
//! A cabinet's org asset id is its decimal [`CabinetId`].

use std::collections::BTreeMap;

use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};

use crate::charging::ChargingEffect;
use crate::custody::{CabinetId, Custody, CustodyError, MoveRequest, RiderId, Timestamp};
use crate::deposit::{DeductReason, DepositError, DepositOp, DepositStatus, Deposits};
use crate::ledger::{AccountKind, Command as LedgerCommand, Key, Ledger, LedgerError, NewAccount};
use crate::money::Money;
use crate::org::{AssetKind, Org, OrgError};
use crate::package::{Command as PackageCommand, Package, PackageError};
use crate::rental::Deduction;
use crate::rental::RentalEffect;
use crate::settlement::{
    ProductType, RevenueOrder, RevenueRules, SettlementError, SplitResult, split,
};
use crate::swap::SwapEffect;
use crate::wallet::{PaymentSource, RefundDestination, WalletError, WalletOp, Wallets};

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
    /// No package with this id is loaded.
    #[error("package {package} is unknown: load it with add_package first")]
    UnknownPackage {
        /// The package id.
        package: String,
    },
    /// The package refused the command.
    #[error("package {package} refused {command}: {error}")]
    Package {
        /// The package id.
        package: String,
        /// The command.
        command: String,
        /// Why.
        error: PackageError,
    },
    /// The revenue split failed.
    #[error("revenue split of order {order} failed: {error}")]
    Settlement {
        /// The order.
        order: u64,
        /// Why.
        error: SettlementError,
    },
    /// The ledger refused a movement (or an id could not be formed).
    #[error("ledger refused {what}: {error}")]
    Ledger {
        /// What was being posted.
        what: String,
        /// Why.
        error: LedgerError,
    },
    /// The wallet refused an operation.
    #[error("wallet refused {what}: {error}")]
    Wallet {
        /// The operation.
        what: String,
        /// Why.
        error: Box<WalletError>,
    },
    /// The deposit module refused an operation.
    #[error("deposit refused {what}: {error}")]
    Deposit {
        /// The operation.
        what: String,
        /// Why.
        error: Box<DepositError>,
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
    /// Not core's work: the host carries it out (doors, notifications,
    /// alerts, slot locks, ledger money movements).
    Host,
    /// Failed; nothing changed for this effect.
    Failed {
        /// Why.
        error: ExecutorError,
    },
}

enum MoneyOp {
    Hold(u64, Money),
    Capture(u64, Money),
    Release(u64),
    Charge(u64, Money),
    Refund(u64, Money),
}

/// Configuration of an executor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecutorConfig {
    /// Seconds east of UTC of the platform's local time (28 800 for China).
    pub utc_offset_s: i32,
    /// Revenue-sharing rules.
    pub rules: RevenueRules,
    /// The organisation, for agent chains (none: platform-owned sites).
    pub org: Option<Org>,
    /// The platform revenue account (default `platform:revenue`).
    #[serde(default = "default_revenue")]
    pub revenue_account: String,
    /// The credit line deposit waivers are held on (default `platform:credit_line`).
    #[serde(default = "default_credit_line")]
    pub credit_line_account: String,
}

fn default_credit_line() -> String {
    "platform:credit_line".into()
}

fn default_revenue() -> String {
    "platform:revenue".into()
}

/// The ledger and the wallets posting to it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MoneyBooks {
    /// The ledger.
    pub ledger: Ledger,
    /// The rider wallets.
    pub wallets: Wallets,
    /// The rental deposits and waivers.
    pub deposits: Deposits,
}

/// Carries out effects; owns the custody book, the loaded packages, the
/// revenue splits it made and, optionally, the money books.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Executor {
    config: ExecutorConfig,
    custody: Custody,
    packages: BTreeMap<String, Package>,
    splits: BTreeMap<String, SplitResult>,
    money: Option<MoneyBooks>,
    /// Package-paid orders: order → package.
    consumed: BTreeMap<String, String>,
    /// Wallet order key each charged order was paid under.
    paid: BTreeMap<String, String>,
}

impl Executor {
    /// A new executor over a custody book.
    pub fn new(config: ExecutorConfig, custody: Custody) -> Executor {
        Executor {
            config,
            custody,
            packages: BTreeMap::new(),
            splits: BTreeMap::new(),
            money: None,
            consumed: BTreeMap::new(),
            paid: BTreeMap::new(),
        }
    }

    /// Attaches the ledger, wallets and deposits: money effects are then
    /// posted.
    pub fn with_money(mut self, ledger: Ledger, wallets: Wallets, deposits: Deposits) -> Executor {
        self.money = Some(MoneyBooks {
            ledger,
            wallets,
            deposits,
        });
        self
    }

    fn deposit_status(&self, deposit: &str) -> Option<DepositStatus> {
        let books = self.money.as_ref()?;
        let k = Key::new(deposit).ok()?;
        books.deposits.deposit(&k).map(|d| d.status)
    }

    /// Applies a deposit op; `Duplicate` when the op id was applied before.
    fn deposit_op(
        &mut self,
        op_id: &str,
        op: impl FnOnce() -> Result<DepositOp, ExecutorError>,
        now: Timestamp,
    ) -> Carried {
        let Some(books) = self.money.as_mut() else {
            return Carried::Host;
        };
        let run = || -> Result<bool, ExecutorError> {
            let id = Executor::key("deposit op id", op_id)?;
            let op = op()?;
            let key = match &op {
                DepositOp::Pay { deposit, .. }
                | DepositOp::Waive { deposit, .. }
                | DepositOp::StartRental { deposit, .. }
                | DepositOp::EndRental { deposit }
                | DepositOp::Deduct { deposit, .. }
                | DepositOp::ApplyRefund { deposit }
                | DepositOp::ReviewRefund { deposit, .. }
                | DepositOp::ConfirmRefund { deposit } => *deposit,
            };
            let before = books.deposits.deposit(&key).cloned();
            let len = books.ledger.len();
            books
                .deposits
                .apply(id, &op, &mut books.ledger, now)
                .map_err(|error| ExecutorError::Deposit {
                    what: op_id.into(),
                    error: Box::new(error),
                })?;
            Ok(books.deposits.deposit(&key) != before.as_ref() || books.ledger.len() != len)
        };
        match run() {
            Ok(true) => Carried::Done,
            Ok(false) => Carried::Duplicate,
            Err(error) => Carried::Failed { error },
        }
    }

    fn rental_effect(&mut self, rider: RiderId, e: &RentalEffect, now: Timestamp) -> Carried {
        let dep = |order: &u64| format!("rt{order}");
        let rider_key = || Executor::key("rider", &rider.0.to_string());
        let reason = |r: &Deduction| match r {
            Deduction::Fees => DeductReason::UnpaidFees,
            Deduction::Damage => DeductReason::Damage,
            Deduction::Loss => DeductReason::Loss,
        };
        match e {
            RentalEffect::CustodyMove(m) => {
                let r = self.custody_move(m, now);
                // the battery handed over: the deposit now backs a rental
                if let (
                    crate::custody::Cause::Rental { order },
                    crate::custody::Location::Rider { .. },
                ) = (&m.cause, &m.to)
                {
                    if self.deposit_status(&dep(order)) == Some(DepositStatus::Held) {
                        let d = dep(order);
                        let s = self.deposit_op(
                            &format!("{d}.start"),
                            || {
                                Ok(DepositOp::StartRental {
                                    deposit: Executor::key("deposit", &d)?,
                                    rental: Executor::key("rental", &d)?,
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
            RentalEffect::CollectDeposit { order, amount } => {
                let d = dep(order);
                self.deposit_op(
                    &format!("{d}.pay"),
                    || {
                        Ok(DepositOp::Pay {
                            deposit: Executor::key("deposit", &d)?,
                            rider: rider_key()?,
                            amount: *amount,
                        })
                    },
                    now,
                )
            }
            RentalEffect::PlaceCreditHold { order, amount } => {
                let d = dep(order);
                let line = self.config.credit_line_account.clone();
                self.deposit_op(
                    &format!("{d}.waive"),
                    || {
                        Ok(DepositOp::Waive {
                            deposit: Executor::key("deposit", &d)?,
                            rider: rider_key()?,
                            amount: *amount,
                            credit_line: Executor::key("credit line", &line)?,
                            expires_at: None,
                        })
                    },
                    now,
                )
            }
            RentalEffect::DeductDeposit {
                order,
                amount,
                reason: why,
            }
            | RentalEffect::CaptureCreditHold {
                order,
                amount,
                reason: why,
            } => {
                let d = dep(order);
                let r = self.deposit_op(
                    &format!("{d}.deduct"),
                    || {
                        Ok(DepositOp::Deduct {
                            deposit: Executor::key("deposit", &d)?,
                            amount: *amount,
                            reason: reason(why),
                        })
                    },
                    now,
                );
                // a paid deposit's rental ends with the settlement
                if matches!(r, Carried::Done)
                    && self.deposit_status(&d) == Some(DepositStatus::Rented)
                {
                    let e = self.deposit_op(
                        &format!("{d}.end"),
                        || {
                            Ok(DepositOp::EndRental {
                                deposit: Executor::key("deposit", &d)?,
                            })
                        },
                        now,
                    );
                    if let Carried::Failed { .. } = e {
                        return e;
                    }
                }
                r
            }
            RentalEffect::RefundDeposit { order, .. } | RentalEffect::VoidCreditHold { order }
                if self.deposit_status(&dep(order)).is_none() =>
            {
                Carried::Duplicate // nothing was ever secured: nothing to release
            }
            RentalEffect::RefundDeposit { order, .. } => {
                let d = dep(order);
                if self.deposit_status(&d) == Some(DepositStatus::Rented) {
                    let e = self.deposit_op(
                        &format!("{d}.end"),
                        || {
                            Ok(DepositOp::EndRental {
                                deposit: Executor::key("deposit", &d)?,
                            })
                        },
                        now,
                    );
                    if let Carried::Failed { .. } = e {
                        return e;
                    }
                }
                // the refund is requested here; finance reviews and pays it
                // out (DepositOp::ReviewRefund / ConfirmRefund) as the host's work
                self.deposit_op(
                    &format!("{d}.refund"),
                    || {
                        Ok(DepositOp::ApplyRefund {
                            deposit: Executor::key("deposit", &d)?,
                        })
                    },
                    now,
                )
            }
            RentalEffect::VoidCreditHold { order } => {
                let d = dep(order);
                self.deposit_op(
                    &format!("{d}.end"),
                    || {
                        Ok(DepositOp::EndRental {
                            deposit: Executor::key("deposit", &d)?,
                        })
                    },
                    now,
                )
            }
            RentalEffect::ChargeWallet { order, amount } => {
                let revenue = self.config.revenue_account.clone();
                let o = format!("rt{order}.fees");
                self.wallet_op(
                    &format!("rt{order}.pay"),
                    || {
                        Ok(WalletOp::Pay {
                            rider: rider_key()?,
                            order: Executor::key("order", &o)?,
                            amount: *amount,
                            credit_account: Executor::key("revenue account", &revenue)?,
                            code: Executor::key("code", "rental_fee")?,
                            source: PaymentSource::Wallet,
                        })
                    },
                    now,
                )
            }
            RentalEffect::NotifyRider { .. }
            | RentalEffect::RaiseAlert { .. }
            | RentalEffect::OpenDoor { .. }
            | RentalEffect::LockSlot { .. }
            | RentalEffect::CabinetAlert { .. }
            | RentalEffect::NotifyDoor { .. } => Carried::Host,
        }
    }

    /// The money books, if attached.
    pub fn money(&self) -> Option<&MoneyBooks> {
        self.money.as_ref()
    }

    fn key(what: &str, text: &str) -> Result<Key, ExecutorError> {
        Key::new(text).map_err(|error| ExecutorError::Ledger {
            what: what.into(),
            error,
        })
    }

    /// Applies a wallet op; `Duplicate` when the op id was applied before
    /// (the ledger did not grow).
    fn wallet_op(
        &mut self,
        op_id: &str,
        op: impl FnOnce() -> Result<WalletOp, ExecutorError>,
        now: Timestamp,
    ) -> Carried {
        let Some(books) = self.money.as_mut() else {
            return Carried::Host;
        };
        let run = || -> Result<bool, ExecutorError> {
            let id = Executor::key("wallet op id", op_id)?;
            let op = op()?;
            let before = books.ledger.len();
            books
                .wallets
                .apply(id, &op, &mut books.ledger, now)
                .map_err(|error| ExecutorError::Wallet {
                    what: op_id.into(),
                    error: Box::new(error),
                })?;
            Ok(books.ledger.len() > before)
        };
        match run() {
            Ok(true) => Carried::Done,
            Ok(false) => Carried::Duplicate,
            Err(error) => Carried::Failed { error },
        }
    }

    /// Applies ledger transfers atomically; `Duplicate` when all were
    /// applied before. Missing agent revenue accounts are opened first.
    fn transfers(
        &mut self,
        what: &str,
        moves: &[(String, String, String, Money, &str)],
        now: Timestamp,
    ) -> Result<bool, ExecutorError> {
        let Some(books) = self.money.as_mut() else {
            return Ok(false);
        };
        let err = |error| ExecutorError::Ledger {
            what: what.into(),
            error,
        };
        let mut cmds = Vec::with_capacity(moves.len());
        for (id, debit, credit, amount, code) in moves {
            for acct in [debit, credit] {
                if let Some(node) = acct.strip_suffix(":revenue") {
                    let k = Key::new(acct).map_err(err)?;
                    if books.ledger.account(&k).is_none() && node != "platform" {
                        let spec = NewAccount::new(k, AccountKind::AgentRevenue)
                            .owned_by(Key::new(node).map_err(err)?)
                            .in_currency(amount.currency());
                        books.ledger.create_account(&spec, now).map_err(err)?;
                    }
                }
            }
            cmds.push(LedgerCommand::transfer(id, debit, credit, *amount, code).map_err(err)?);
        }
        let before = books.ledger.len();
        books.ledger.apply_batch(&cmds, now).map_err(err)?;
        Ok(books.ledger.len() > before)
    }

    /// Loads (or replaces) a rider's package.
    pub fn add_package(&mut self, p: Package) {
        self.packages.insert(p.id.clone(), p);
    }

    /// A loaded package.
    pub fn package(&self, id: &str) -> Option<&Package> {
        self.packages.get(id)
    }

    /// The custody book.
    pub fn custody(&self) -> &Custody {
        &self.custody
    }

    /// Revenue splits made, by order id (reversals under `"<order>:refund"`).
    pub fn splits(&self) -> &BTreeMap<String, SplitResult> {
        &self.splits
    }

    fn local(&self, now: Timestamp) -> NaiveDateTime {
        let off = chrono::Duration::seconds(i64::from(self.config.utc_offset_s));
        now.naive_utc()
            .checked_add_signed(off)
            .unwrap_or_else(|| now.naive_utc())
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

    fn package_cmd(&mut self, package: &str, cmd: PackageCommand, now: Timestamp) -> Carried {
        let local = self.local(now);
        let Some(p) = self.packages.get_mut(package) else {
            return Carried::Failed {
                error: ExecutorError::UnknownPackage {
                    package: package.into(),
                },
            };
        };
        match p.handle(&cmd, local) {
            // Due time-driven transitions may come first; only a consumption
            // (or reversal) event among them means the command did something.
            Ok(events) => {
                let acted = events.iter().any(|e| {
                    matches!(
                        e,
                        crate::package::Event::Consumed { .. }
                            | crate::package::Event::ConsumptionReversed { .. }
                    )
                });
                if acted {
                    Carried::Done
                } else {
                    Carried::Duplicate
                }
            }
            Err(error) => Carried::Failed {
                error: ExecutorError::Package {
                    package: package.into(),
                    command: format!("{cmd:?}"),
                    error,
                },
            },
        }
    }

    fn chain(&self, cabinet: Option<CabinetId>) -> Result<Vec<String>, ExecutorError> {
        match (&self.config.org, cabinet) {
            (Some(org), Some(c)) => {
                let id = c.0.to_string();
                let node =
                    org.owner_of(AssetKind::Cabinet, &id)
                        .map_err(|error| ExecutorError::Org {
                            cabinet: c.0,
                            error,
                        })?;
                org.agent_chain(node).map_err(|error| ExecutorError::Org {
                    cabinet: c.0,
                    error,
                })
            }
            _ => Ok(Vec::new()),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn split_revenue(
        &mut self,
        prefix: &str,
        order: u64,
        product: ProductType,
        amount: Money,
        swaps: u32,
        cabinet: Option<CabinetId>,
        now: Timestamp,
    ) -> Carried {
        let key = order.to_string();
        if self.splits.contains_key(&key) {
            return Carried::Duplicate;
        }
        let revenue = self.config.revenue_account.clone();
        // A package-paid order recognises its value first: liability → revenue.
        if let (Some(package), true) = (self.consumed.get(&key).cloned(), amount.is_positive()) {
            let id = format!("{prefix}{order}.consume");
            let mv = [(
                id,
                format!("{package}:liability"),
                revenue.clone(),
                amount,
                "package_consume",
            )];
            if let Err(error) = self.transfers("package consumption", &mv, now) {
                return Carried::Failed { error };
            }
        }
        let chain = match self.chain(cabinet) {
            Ok(c) => c,
            Err(error) => return Carried::Failed { error },
        };
        let ro = RevenueOrder {
            order_id: key.clone(),
            product,
            amount,
            swaps,
            at: self.local(now),
            chain,
        };
        match split(&self.config.rules, &ro) {
            Ok(s) => {
                let moves: Vec<_> = s
                    .parts
                    .iter()
                    .filter_map(|p| {
                        let total = p.fixed.checked_add(p.share).ok()?;
                        let node = p.node.as_ref()?;
                        total.is_positive().then(|| {
                            (
                                format!("{prefix}{order}.share.{}", p.level),
                                revenue.clone(),
                                format!("{node}:revenue"),
                                total,
                                "revenue_share",
                            )
                        })
                    })
                    .collect();
                if let Err(error) = self.transfers("revenue share", &moves, now) {
                    return Carried::Failed { error };
                }
                self.splits.insert(key, s);
                Carried::Done
            }
            Err(error) => Carried::Failed {
                error: ExecutorError::Settlement { order, error },
            },
        }
    }

    fn reverse_revenue(&mut self, prefix: &str, order: u64, now: Timestamp) -> Carried {
        let key = format!("{order}:refund");
        if self.splits.contains_key(&key) {
            return Carried::Duplicate;
        }
        let local = self.local(now);
        let revenue = self.config.revenue_account.clone();
        match self.splits.get(&order.to_string()).cloned() {
            Some(s) => {
                let moves: Vec<_> = s
                    .parts
                    .iter()
                    .filter_map(|p| {
                        let total = p.fixed.checked_add(p.share).ok()?;
                        let node = p.node.as_ref()?;
                        total.is_positive().then(|| {
                            (
                                format!("{prefix}{order}.unshare.{}", p.level),
                                format!("{node}:revenue"),
                                revenue.clone(),
                                total,
                                "revenue_share",
                            )
                        })
                    })
                    .collect();
                if let Err(error) = self.transfers("revenue share reversal", &moves, now) {
                    return Carried::Failed { error };
                }
                let r = s.reversed(&key, local);
                self.splits.insert(key, r);
                Carried::Done
            }
            // nothing was split: nothing to reverse
            None => Carried::Duplicate,
        }
    }

    fn money_op(&mut self, prefix: &str, rider: RiderId, op: MoneyOp, now: Timestamp) -> Carried {
        let revenue = self.config.revenue_account.clone();
        let code = if prefix == "ch" {
            "charging_fee"
        } else {
            "swap_fee"
        };
        let order_key = |order: u64| format!("{prefix}{order}");
        match op {
            MoneyOp::Hold(order, amount) => self.wallet_op(
                &format!("{prefix}{order}.auth"),
                || {
                    Ok(WalletOp::Authorize {
                        rider: Executor::key("rider", &rider.0.to_string())?,
                        order: Executor::key("order", &order_key(order))?,
                        amount,
                        credit_account: Executor::key("revenue account", &revenue)?,
                        code: Executor::key("code", code)?,
                        expires_at: None,
                    })
                },
                now,
            ),
            MoneyOp::Capture(order, amount) => {
                let r = self.wallet_op(
                    &format!("{prefix}{order}.capture"),
                    || {
                        Ok(WalletOp::Capture {
                            order: Executor::key("order", &order_key(order))?,
                            amount: Some(amount),
                        })
                    },
                    now,
                );
                if matches!(r, Carried::Done | Carried::Duplicate) {
                    self.paid.insert(order_key(order), order_key(order));
                }
                r
            }
            MoneyOp::Release(order) => self.wallet_op(
                &format!("{prefix}{order}.release"),
                || {
                    Ok(WalletOp::Release {
                        order: Executor::key("order", &order_key(order))?,
                    })
                },
                now,
            ),
            MoneyOp::Charge(order, amount) => {
                let direct = format!("{prefix}{order}.d");
                let r = self.wallet_op(
                    &format!("{prefix}{order}.pay"),
                    || {
                        Ok(WalletOp::Pay {
                            rider: Executor::key("rider", &rider.0.to_string())?,
                            order: Executor::key("order", &direct)?,
                            amount,
                            credit_account: Executor::key("revenue account", &revenue)?,
                            code: Executor::key("code", code)?,
                            source: PaymentSource::Wallet,
                        })
                    },
                    now,
                );
                if matches!(r, Carried::Done | Carried::Duplicate) {
                    self.paid.insert(order_key(order), direct);
                }
                r
            }
            MoneyOp::Refund(order, amount) => {
                let paid = self
                    .paid
                    .get(&order_key(order))
                    .cloned()
                    .unwrap_or_else(|| order_key(order));
                self.wallet_op(
                    &format!("{prefix}{order}.refund"),
                    || {
                        Ok(WalletOp::Refund {
                            order: Executor::key("order", &paid)?,
                            amount,
                            destination: RefundDestination::Wallet,
                        })
                    },
                    now,
                )
            }
        }
    }

    fn consume(&mut self, prefix: &str, order: u64, package: &str, now: Timestamp) -> Carried {
        let r = self.package_cmd(
            package,
            PackageCommand::Consume {
                order_id: order.to_string(),
                swaps: 1,
            },
            now,
        );
        if matches!(r, Carried::Done | Carried::Duplicate) {
            self.consumed.insert(order.to_string(), package.into());
        }
        let _ = prefix;
        r
    }

    fn unconsume(&mut self, prefix: &str, order: u64, package: &str, now: Timestamp) -> Carried {
        let r = self.package_cmd(
            package,
            PackageCommand::ReverseConsumption {
                order_id: order.to_string(),
            },
            now,
        );
        if let (Carried::Done, Some(split)) = (&r, self.splits.get(&order.to_string())) {
            let amount = split.amount;
            if amount.is_positive() {
                let mv = [(
                    format!("{prefix}{order}.unconsume"),
                    self.config.revenue_account.clone(),
                    format!("{package}:liability"),
                    amount,
                    "package_consume",
                )];
                if let Err(error) = self.transfers("package consumption reversal", &mv, now) {
                    return Carried::Failed { error };
                }
            }
        }
        r
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
        let p = "sw";
        effects
            .iter()
            .map(|e| match e {
                SwapEffect::CustodyMove(m) => self.custody_move(m, now),
                SwapEffect::ConsumeEntitlement { order, package } => {
                    self.consume(p, *order, package, now)
                }
                SwapEffect::RefundEntitlement { order, package } => {
                    self.unconsume(p, *order, package, now)
                }
                SwapEffect::SplitRevenue { order, amount } => {
                    self.split_revenue(p, *order, ProductType::Swap, *amount, 1, Some(cabinet), now)
                }
                SwapEffect::ReverseRevenue { order } => self.reverse_revenue(p, *order, now),
                SwapEffect::PlaceHold { order, amount } => {
                    self.money_op(p, rider, MoneyOp::Hold(*order, *amount), now)
                }
                SwapEffect::CaptureHold { order, amount } => {
                    self.money_op(p, rider, MoneyOp::Capture(*order, *amount), now)
                }
                SwapEffect::ReleaseHold { order } => {
                    self.money_op(p, rider, MoneyOp::Release(*order), now)
                }
                SwapEffect::ChargeWallet { order, amount } => {
                    self.money_op(p, rider, MoneyOp::Charge(*order, *amount), now)
                }
                SwapEffect::RefundPayment { order, amount } => {
                    self.money_op(p, rider, MoneyOp::Refund(*order, *amount), now)
                }
                _ => Carried::Host,
            })
            .collect()
    }

    /// Carries out a charging decision's effects, in order. `cabinet` is the
    /// charging cabinet, if the session runs at one (for the agent chain).
    /// Wallet holds are placed on the rider's wallet; a pre-authorisation on
    /// an external means is the host's (its money effects then fail here
    /// unless the host placed the hold under the same order key).
    pub fn carry_out_charging(
        &mut self,
        cabinet: Option<CabinetId>,
        rider: RiderId,
        effects: &[ChargingEffect],
        now: Timestamp,
    ) -> Vec<Carried> {
        let p = "ch";
        effects
            .iter()
            .map(|e| match e {
                ChargingEffect::ConsumeEntitlement { order, package } => {
                    self.consume(p, *order, package, now)
                }
                ChargingEffect::SplitRevenue { order, amount } => {
                    self.split_revenue(p, *order, ProductType::Charging, *amount, 0, cabinet, now)
                }
                ChargingEffect::ReverseRevenue { order } => self.reverse_revenue(p, *order, now),
                ChargingEffect::PlaceHold { order, amount } => {
                    self.money_op(p, rider, MoneyOp::Hold(*order, *amount), now)
                }
                ChargingEffect::CaptureHold { order, amount } => {
                    self.money_op(p, rider, MoneyOp::Capture(*order, *amount), now)
                }
                ChargingEffect::ReleaseHold { order } => {
                    self.money_op(p, rider, MoneyOp::Release(*order), now)
                }
                ChargingEffect::ChargeWallet { order, amount } => {
                    self.money_op(p, rider, MoneyOp::Charge(*order, *amount), now)
                }
                ChargingEffect::RefundPayment { order, amount } => {
                    self.money_op(p, rider, MoneyOp::Refund(*order, *amount), now)
                }
                ChargingEffect::CustodyMove(m) => self.custody_move(m, now),
                _ => Carried::Host,
            })
            .collect()
    }

    /// Carries out a rental decision's effects, in order, for its rider.
    /// The deposit of rental order `N` is deposit `rtN`; it starts backing
    /// the rental when the battery is handed over, a deduction at close ends
    /// the rental, and a refund is *requested* (finance approves and pays it
    /// out through the deposit module).
    pub fn carry_out_rental(
        &mut self,
        rider: RiderId,
        effects: &[RentalEffect],
        now: Timestamp,
    ) -> Vec<Carried> {
        effects
            .iter()
            .map(|e| match (e, self.money.is_some()) {
                (RentalEffect::CustodyMove(m), false) => self.custody_move(m, now),
                (_, false) => Carried::Host,
                (e, true) => self.rental_effect(rider, e, now),
            })
            .collect()
    }
}

#[cfg(test)]
pub(crate) mod tests;
