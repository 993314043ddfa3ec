//! The package state machine: [`Package`], [`Command`], [`Event`].

use std::collections::BTreeMap;

use chrono::{NaiveDateTime, TimeDelta};
use serde::{Deserialize, Serialize};

use super::product::{Activation, Product, RenewalMode, RiderProfile, Swaps};
use super::{
    PackageError, Result, add, days_delta, hours_delta, minus, overflow, per_day, plus,
    started_days, sub_to_zero,
};
use crate::money::Money;

/// Where a package is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Bought, not started (待生效).
    Pending,
    /// Running: swaps can be consumed, the rental battery is held.
    Active,
    /// Frozen: time stands still, nothing can be consumed (冻结).
    Frozen,
    /// The last term has ended; within the grace period, if any.
    Expired,
    /// Past the grace period: an overdue fee accrues per started day (逾期).
    Overdue,
    /// Finished after expiry (battery returned, fees settled).
    Closed,
    /// Refunded; finished.
    Refunded,
}

/// A time interval `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Span {
    /// First instant inside.
    pub start: NaiveDateTime,
    /// First instant after.
    pub end: NaiveDateTime,
}

/// One paid term of a package: the purchase, a stacked renewal or a change.
/// An extending renewal grows the last term instead of adding one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Term {
    /// Paid for this term (a purchase, plus extending renewals; a change's new price).
    pub paid: Money,
    /// Swaps in this term, if limited.
    pub quota: Option<u32>,
    /// Swaps consumed in this term.
    pub used: u32,
    /// When the term runs; none while the package is pending. A freeze moves
    /// the span of the running and later terms out by the time frozen.
    pub span: Option<Span>,
}

/// A consumed swap order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consumption {
    /// Swaps consumed.
    pub swaps: u32,
    /// The term (index into [`Package::terms`]) it was taken from.
    pub term: usize,
    /// When.
    pub at: NaiveDateTime,
    /// Whether it was reversed (e.g. the swap failed at the cabinet).
    pub reversed: bool,
}

/// A freeze request waiting for a decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FreezeRequest {
    /// Days asked for.
    pub days: u32,
    /// The rider's reason.
    pub reason: String,
    /// When asked.
    pub at: NaiveDateTime,
}

/// A freeze in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrozenSpell {
    /// When it began.
    pub since: NaiveDateTime,
    /// When it ends by itself (automatic unfreeze).
    pub until: NaiveDateTime,
}

/// How a renewal was applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RenewalEffect {
    /// Merged into the running term (extend mode).
    Extended,
    /// Queued as a new term after the last one (stack mode).
    Stacked,
    /// The package had ended: a new term starts now (either mode).
    Restarted,
}

/// Upgrade or downgrade.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeDirection {
    /// To a product whose list price is at least the current one's.
    Upgrade,
    /// To a cheaper product.
    Downgrade,
}

/// What happened to a package. Amounts on events are what the ledger posts
/// (docs/packages.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// Bought: `paid` moves from the payment to package liability; `deposit`
    /// is what core::deposit must hold.
    Purchased {
        /// Package id.
        package_id: String,
        /// Rider id.
        rider_id: String,
        /// The product as sold (a snapshot).
        product: Product,
        /// Amount paid.
        paid: Money,
        /// Deposit required by the product.
        deposit: Option<Money>,
        /// When.
        at: NaiveDateTime,
    },
    /// Started: the first term runs from `start` to `end`.
    Activated {
        /// True when started by the activation deadline.
        automatic: bool,
        /// Start of the first term.
        start: NaiveDateTime,
        /// End of the first term.
        end: NaiveDateTime,
        /// When.
        at: NaiveDateTime,
    },
    /// Swaps consumed under an order id.
    Consumed {
        /// The swap order.
        order_id: String,
        /// Swaps consumed.
        swaps: u32,
        /// The term they were taken from.
        term: usize,
        /// Swaps left in that term, if limited.
        remaining: Option<u32>,
        /// When.
        at: NaiveDateTime,
    },
    /// A consumption undone (the swap failed); the swaps return to their term.
    ConsumptionReversed {
        /// The swap order.
        order_id: String,
        /// Swaps returned.
        swaps: u32,
        /// When.
        at: NaiveDateTime,
    },
    /// Renewed: `paid` moves from the payment to package liability.
    Renewed {
        /// Renewal (payment) id.
        renewal_id: String,
        /// Amount paid.
        paid: Money,
        /// How it was applied.
        effect: RenewalEffect,
        /// Start of the term it extended or created.
        start: NaiveDateTime,
        /// New end of that term.
        end: NaiveDateTime,
        /// Swaps added, if limited.
        swaps: Option<u32>,
        /// When.
        at: NaiveDateTime,
    },
    /// The rider asked to freeze.
    FreezeRequested {
        /// Days asked for.
        days: u32,
        /// The rider's reason.
        reason: String,
        /// When.
        at: NaiveDateTime,
    },
    /// The freeze request was turned down.
    FreezeRejected {
        /// Why.
        reason: String,
        /// When.
        at: NaiveDateTime,
    },
    /// The freeze request was approved: frozen from `at` until `until`.
    Frozen {
        /// Automatic unfreeze time (a deadline).
        until: NaiveDateTime,
        /// When.
        at: NaiveDateTime,
    },
    /// Unfrozen: terms move out by the time frozen; `fee` is owed.
    Unfrozen {
        /// True at the automatic unfreeze deadline.
        automatic: bool,
        /// Started days frozen.
        days: u32,
        /// Freeze fee: daily fee × days.
        fee: Money,
        /// When.
        at: NaiveDateTime,
    },
    /// The last term ended; remaining liability is earned.
    Expired {
        /// When (the end of the last term).
        at: NaiveDateTime,
    },
    /// The grace period passed; overdue fees accrue from `at`.
    OverdueStarted {
        /// When (end + grace).
        at: NaiveDateTime,
    },
    /// The overdue fee was settled (on renewal or close).
    OverdueSettled {
        /// Started days overdue after the grace period.
        days: u32,
        /// Fee: daily fee × days, capped.
        fee: Money,
        /// When.
        at: NaiveDateTime,
    },
    /// Ended before its end by [`Command::End`]: what was left lapses and
    /// the package is closed.
    Ended {
        /// When.
        at: NaiveDateTime,
    },
    /// Changed to another product with proration.
    Changed {
        /// The product left.
        from: String,
        /// The product now held.
        to: Product,
        /// Upgrade or downgrade.
        direction: ChangeDirection,
        /// Unused value of the old product, credited.
        credit: Money,
        /// Price of the new product's term.
        price: Money,
        /// What the rider pays: max(price − credit, 0).
        charge: Money,
        /// What the rider gets back: max(credit − price, 0).
        refund: Money,
        /// Start of the new term.
        start: NaiveDateTime,
        /// End of the new term.
        end: NaiveDateTime,
        /// When.
        at: NaiveDateTime,
    },
    /// Refunded the unused part; the package is finished.
    Refunded {
        /// Amount refunded.
        amount: Money,
        /// When.
        at: NaiveDateTime,
    },
    /// Closed after expiry.
    Closed {
        /// When.
        at: NaiveDateTime,
    },
}

impl Event {
    /// When the event happened.
    pub fn at(&self) -> NaiveDateTime {
        match self {
            Event::Purchased { at, .. }
            | Event::Activated { at, .. }
            | Event::Consumed { at, .. }
            | Event::ConsumptionReversed { at, .. }
            | Event::Renewed { at, .. }
            | Event::FreezeRequested { at, .. }
            | Event::FreezeRejected { at, .. }
            | Event::Frozen { at, .. }
            | Event::Unfrozen { at, .. }
            | Event::Expired { at }
            | Event::OverdueStarted { at }
            | Event::OverdueSettled { at, .. }
            | Event::Changed { at, .. }
            | Event::Refunded { at, .. }
            | Event::Closed { at }
            | Event::Ended { at } => *at,
        }
    }

    /// The event's type name, as serialized.
    pub fn name(&self) -> &'static str {
        match self {
            Event::Purchased { .. } => "purchased",
            Event::Activated { .. } => "activated",
            Event::Consumed { .. } => "consumed",
            Event::ConsumptionReversed { .. } => "consumption_reversed",
            Event::Renewed { .. } => "renewed",
            Event::FreezeRequested { .. } => "freeze_requested",
            Event::FreezeRejected { .. } => "freeze_rejected",
            Event::Frozen { .. } => "frozen",
            Event::Unfrozen { .. } => "unfrozen",
            Event::Expired { .. } => "expired",
            Event::OverdueStarted { .. } => "overdue_started",
            Event::OverdueSettled { .. } => "overdue_settled",
            Event::Changed { .. } => "changed",
            Event::Refunded { .. } => "refunded",
            Event::Closed { .. } => "closed",
            Event::Ended { .. } => "ended",
        }
    }
}

fn one() -> u32 {
    1
}

/// What can be asked of a package. Serialized with a `type` tag:
/// `{"type": "consume", "order_id": "o-1"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Command {
    /// Start a pending package now (e.g. at battery pick-up).
    Activate,
    /// Consume swaps for an order; idempotent by `order_id`. A pending
    /// package is activated first.
    Consume {
        /// The swap order; a replay with the same id and swaps is a no-op.
        order_id: String,
        /// Swaps (default 1).
        #[serde(default = "one")]
        swaps: u32,
    },
    /// Undo a consumption (idempotent).
    ReverseConsumption {
        /// The swap order.
        order_id: String,
    },
    /// Renew with the package's product; idempotent by `renewal_id`.
    Renew {
        /// The renewal's payment id.
        renewal_id: String,
        /// Amount paid (default: the product's price).
        #[serde(default)]
        paid: Option<Money>,
        /// The rider, for eligibility (`packages_bought` counts as at least 1).
        #[serde(default)]
        rider: RiderProfile,
    },
    /// Ask to freeze for a number of days.
    RequestFreeze {
        /// Days.
        days: u32,
        /// Why.
        #[serde(default)]
        reason: String,
    },
    /// Approve the pending freeze request: frozen from now.
    ApproveFreeze,
    /// Reject the pending freeze request.
    RejectFreeze {
        /// Why.
        #[serde(default)]
        reason: String,
    },
    /// End a freeze early.
    Unfreeze,
    /// Upgrade or downgrade to another product, prorated.
    Change {
        /// The product to change to.
        to: Box<Product>,
        /// The rider, for eligibility (`packages_bought` counts as at least 1).
        #[serde(default)]
        rider: RiderProfile,
    },
    /// Refund the unused part and finish.
    Refund,
    /// Close an ended package, settling the overdue fee.
    Close,
    /// Cancel a purchase that has not started (pending): the whole amount
    /// paid is refunded, whatever the refund policy says (nothing was used).
    Cancel,
    /// End the package now, whatever is left (a rental whose battery came
    /// back before the end, or was lost): a freeze in force ends with its
    /// fee, an overdue fee is settled, and the package closes. Unused time
    /// and swaps lapse without a refund ([`Command::Refund`] returns the
    /// unused part, within the refund window).
    End,
    /// Only apply the time-driven transitions due by now.
    Tick,
}

/// A purchase: who buys which product for how much.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Purchase {
    /// Package id (unique per package).
    pub package_id: String,
    /// Rider id.
    pub rider_id: String,
    /// The product.
    pub product: Product,
    /// Amount paid (default: the product's price; pricing may have discounted it).
    #[serde(default)]
    pub paid: Option<Money>,
    /// The rider, for eligibility.
    #[serde(default)]
    pub rider: RiderProfile,
}

impl Purchase {
    /// A purchase at list price by a new rider.
    pub fn new(package_id: &str, rider_id: &str, product: Product) -> Purchase {
        Purchase {
            package_id: package_id.to_owned(),
            rider_id: rider_id.to_owned(),
            product,
            paid: None,
            rider: RiderProfile::default(),
        }
    }
}

/// What the next time-driven transition is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeadlineKind {
    /// A pending package starts by itself.
    Activation,
    /// A freeze ends by itself.
    Unfreeze,
    /// The last term ends.
    Expiry,
    /// The grace period ends and overdue fees start.
    Overdue,
}

/// A time-driven transition as data: the host sends [`Command::Tick`] at `at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Deadline {
    /// When.
    pub at: NaiveDateTime,
    /// What happens.
    pub kind: DeadlineKind,
}

/// One rider's package: the state the events build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Package {
    /// Package id.
    pub id: String,
    /// Rider id.
    pub rider_id: String,
    /// The product held (changes on upgrade/downgrade).
    pub product: Product,
    /// Where it is in its life.
    pub status: Status,
    /// When bought.
    pub purchased_at: NaiveDateTime,
    /// Most recent payment (purchase, renewal or change): opens the refund window.
    pub last_paid_at: NaiveDateTime,
    /// When it started.
    pub activated_at: Option<NaiveDateTime>,
    /// When the last term ended (set by expiry or refund).
    pub ended_at: Option<NaiveDateTime>,
    /// Every term, in order.
    pub terms: Vec<Term>,
    /// Consumptions by order id.
    pub consumptions: BTreeMap<String, Consumption>,
    /// Renewal amounts by renewal id.
    pub renewals: BTreeMap<String, Money>,
    /// A freeze request waiting for a decision.
    pub freeze_request: Option<FreezeRequest>,
    /// The freeze in force.
    pub frozen: Option<FrozenSpell>,
    /// Freezes approved so far.
    pub freezes_used: u32,
    /// Net amount paid for the package: payments minus refunds.
    pub paid_total: Money,
    /// Freeze and overdue fees settled.
    pub fees_charged: Money,
    /// Time of the last event.
    pub updated_at: NaiveDateTime,
}

fn mismatch(event: &Event, expected: &str) -> PackageError {
    PackageError::EventMismatch {
        event: event.name().to_owned(),
        expected: expected.to_owned(),
    }
}

fn wrong_status(operation: &str, status: Status, expected: &str) -> PackageError {
    PackageError::WrongStatus {
        operation: operation.to_owned(),
        status,
        expected: expected.to_owned(),
    }
}

/// At most this many time-driven events per command (there are at most four in a row).
const MAX_AUTO_EVENTS: usize = 8;

impl Package {
    /// Decides a purchase at `now`: validates the product, the amount and the
    /// rider's eligibility, and returns the new package with its events
    /// (`purchased`, then `activated` for immediate activation).
    pub fn purchase(p: &Purchase, now: NaiveDateTime) -> Result<(Package, Vec<Event>)> {
        p.product.validate()?;
        if p.package_id.is_empty() {
            return Err(invalid_command("package_id", "a non-empty id"));
        }
        if p.rider_id.is_empty() {
            return Err(invalid_command("rider_id", "a non-empty id"));
        }
        let paid = p.paid.unwrap_or(p.product.price);
        check_paid(&p.product, paid, "paid")?;
        p.product.check_eligible(&p.rider)?;
        let purchased = Event::Purchased {
            package_id: p.package_id.clone(),
            rider_id: p.rider_id.clone(),
            product: p.product.clone(),
            paid,
            deposit: p.product.deposit,
            at: now,
        };
        let mut pkg = Package::from_purchased(&purchased)?;
        let mut events = vec![purchased];
        if p.product.activation == Activation::Immediate {
            let e = pkg.activation_event(now, false)?;
            pkg.emit(e, &mut events)?;
        }
        Ok((pkg, events))
    }

    /// The state right after a `purchased` event.
    pub fn from_purchased(e: &Event) -> Result<Package> {
        let Event::Purchased {
            package_id,
            rider_id,
            product,
            paid,
            at,
            ..
        } = e
        else {
            return Err(mismatch(
                e,
                "the first event of a package must be purchased",
            ));
        };
        Ok(Package {
            id: package_id.clone(),
            rider_id: rider_id.clone(),
            product: product.clone(),
            status: Status::Pending,
            purchased_at: *at,
            last_paid_at: *at,
            activated_at: None,
            ended_at: None,
            terms: vec![Term {
                paid: *paid,
                quota: quota_of(product),
                used: 0,
                span: None,
            }],
            consumptions: BTreeMap::new(),
            renewals: BTreeMap::new(),
            freeze_request: None,
            frozen: None,
            freezes_used: 0,
            paid_total: *paid,
            fees_charged: Money::zero(paid.currency()),
            updated_at: *at,
        })
    }

    /// Rebuilds a package from its events (the first must be `purchased`).
    pub fn replay(events: &[Event]) -> Result<Package> {
        let (first, rest) = events
            .split_first()
            .ok_or_else(|| PackageError::EventMismatch {
                event: "none".to_owned(),
                expected: "at least a purchased event".to_owned(),
            })?;
        let mut p = Package::from_purchased(first)?;
        for e in rest {
            p.apply(e)?;
        }
        Ok(p)
    }

    /// Decides a command at `now` without changing the package: the
    /// time-driven events due by `now`, then the command's events. A
    /// replayed, idempotent command yields only the time-driven events.
    pub fn decide(&self, cmd: &Command, now: NaiveDateTime) -> Result<Vec<Event>> {
        let mut s = self.clone();
        s.run(cmd, now)
    }

    /// Decides a command at `now` and applies its events. On error the
    /// package is unchanged.
    pub fn handle(&mut self, cmd: &Command, now: NaiveDateTime) -> Result<Vec<Event>> {
        let mut s = self.clone();
        let events = s.run(cmd, now)?;
        *self = s;
        Ok(events)
    }

    /// The next time-driven transition, if any.
    pub fn next_deadline(&self) -> Option<Deadline> {
        let (at, kind) = match self.status {
            Status::Pending => match self.product.activation {
                Activation::FirstUse {
                    auto_after_days: Some(n),
                } => (
                    plus(self.purchased_at, days_delta(n).ok()?).ok()?,
                    DeadlineKind::Activation,
                ),
                _ => return None,
            },
            Status::Active => (self.ends_at()?, DeadlineKind::Expiry),
            Status::Frozen => (self.frozen?.until, DeadlineKind::Unfreeze),
            Status::Expired => {
                let o = self.product.overdue?;
                (
                    plus(self.ended_at?, hours_delta(o.grace_hours).ok()?).ok()?,
                    DeadlineKind::Overdue,
                )
            }
            Status::Overdue | Status::Closed | Status::Refunded => return None,
        };
        Some(Deadline { at, kind })
    }

    /// The end of the last term, once started.
    pub fn ends_at(&self) -> Option<NaiveDateTime> {
        self.terms
            .iter()
            .filter_map(|t| t.span.map(|s| s.end))
            .max()
    }

    /// The term running at `t`, if any.
    pub fn current_term(&self, t: NaiveDateTime) -> Option<usize> {
        self.terms
            .iter()
            .position(|x| x.span.is_some_and(|s| s.start <= t && t < s.end))
    }

    /// Swaps consumed (not reversed) on the local date of `t`.
    pub fn swaps_on(&self, t: NaiveDateTime) -> u32 {
        let day = t.date();
        self.consumptions
            .values()
            .filter(|c| !c.reversed && c.at.date() == day)
            .fold(0u32, |a, c| a.saturating_add(c.swaps))
    }

    /// Applies one event. Errors, leaving the package unchanged, when the
    /// event does not fit the state (a corrupt or reordered log).
    pub fn apply(&mut self, e: &Event) -> Result<()> {
        let mut s = self.clone();
        s.apply_in_place(e)?;
        s.updated_at = s.updated_at.max(e.at());
        *self = s;
        Ok(())
    }

    fn apply_in_place(&mut self, e: &Event) -> Result<()> {
        match e {
            Event::Purchased { .. } => {
                return Err(mismatch(e, "purchased only starts a package"));
            }
            Event::Activated { start, end, at, .. } => {
                if self.status != Status::Pending {
                    return Err(mismatch(e, "a pending package"));
                }
                let t = self
                    .terms
                    .first_mut()
                    .ok_or_else(|| mismatch(e, "a first term"))?;
                t.span = Some(Span {
                    start: *start,
                    end: *end,
                });
                self.activated_at = Some(*at);
                self.status = Status::Active;
            }
            Event::Consumed {
                order_id,
                swaps,
                term,
                at,
                ..
            } => {
                if self.status != Status::Active || self.consumptions.contains_key(order_id) {
                    return Err(mismatch(e, "an active package and a new order id"));
                }
                let t = self
                    .terms
                    .get_mut(*term)
                    .ok_or_else(|| mismatch(e, "an existing term"))?;
                t.used = t
                    .used
                    .checked_add(*swaps)
                    .ok_or_else(|| overflow("swaps used"))?;
                self.consumptions.insert(
                    order_id.clone(),
                    Consumption {
                        swaps: *swaps,
                        term: *term,
                        at: *at,
                        reversed: false,
                    },
                );
            }
            Event::ConsumptionReversed { order_id, .. } => {
                let c = self
                    .consumptions
                    .get_mut(order_id)
                    .filter(|c| !c.reversed)
                    .ok_or_else(|| mismatch(e, "a consumption not yet reversed"))?;
                c.reversed = true;
                let (n, i) = (c.swaps, c.term);
                if let Some(t) = self.terms.get_mut(i) {
                    t.used = t.used.saturating_sub(n);
                }
            }
            Event::Renewed {
                renewal_id,
                paid,
                effect,
                start,
                end,
                swaps,
                at,
            } => {
                if !matches!(
                    self.status,
                    Status::Active | Status::Expired | Status::Overdue
                ) || self.renewals.contains_key(renewal_id)
                {
                    return Err(mismatch(
                        e,
                        "an active or ended package and a new renewal id",
                    ));
                }
                match effect {
                    RenewalEffect::Extended => {
                        let t = self
                            .terms
                            .iter_mut()
                            .rev()
                            .find(|t| t.span.is_some())
                            .ok_or_else(|| mismatch(e, "a running term to extend"))?;
                        if let Some(s) = t.span.as_mut() {
                            s.end = *end;
                        }
                        t.paid = add(t.paid, *paid, "term paid")?;
                        t.quota = match (t.quota, swaps) {
                            (Some(a), Some(b)) => {
                                Some(a.checked_add(*b).ok_or_else(|| overflow("swap quota"))?)
                            }
                            (q, _) => q,
                        };
                    }
                    RenewalEffect::Stacked | RenewalEffect::Restarted => self.terms.push(Term {
                        paid: *paid,
                        quota: *swaps,
                        used: 0,
                        span: Some(Span {
                            start: *start,
                            end: *end,
                        }),
                    }),
                }
                self.renewals.insert(renewal_id.clone(), *paid);
                self.paid_total = add(self.paid_total, *paid, "paid total")?;
                self.last_paid_at = *at;
                self.ended_at = None;
                self.status = Status::Active;
            }
            Event::FreezeRequested { days, reason, at } => {
                if self.status != Status::Active || self.freeze_request.is_some() {
                    return Err(mismatch(e, "an active package without a pending request"));
                }
                self.freeze_request = Some(FreezeRequest {
                    days: *days,
                    reason: reason.clone(),
                    at: *at,
                });
            }
            Event::FreezeRejected { .. } => {
                if self.freeze_request.take().is_none() {
                    return Err(mismatch(e, "a pending freeze request"));
                }
            }
            Event::Frozen { until, at } => {
                if self.status != Status::Active || self.freeze_request.is_none() {
                    return Err(mismatch(e, "an active package with a pending request"));
                }
                self.freeze_request = None;
                self.frozen = Some(FrozenSpell {
                    since: *at,
                    until: *until,
                });
                self.freezes_used = self.freezes_used.saturating_add(1);
                self.status = Status::Frozen;
            }
            Event::Unfrozen { fee, at, .. } => {
                let f = match (self.status, self.frozen) {
                    (Status::Frozen, Some(f)) => f,
                    _ => return Err(mismatch(e, "a frozen package")),
                };
                let shift = at.signed_duration_since(f.since).max(TimeDelta::zero());
                for t in &mut self.terms {
                    if let Some(s) = t.span.as_mut() {
                        if s.end > f.since {
                            s.start = plus(s.start, shift)?;
                            s.end = plus(s.end, shift)?;
                        }
                    }
                }
                self.frozen = None;
                self.fees_charged = add(self.fees_charged, *fee, "fees")?;
                self.status = Status::Active;
            }
            Event::Expired { at } => {
                if self.status != Status::Active {
                    return Err(mismatch(e, "an active package"));
                }
                self.freeze_request = None;
                self.ended_at = Some(*at);
                self.status = Status::Expired;
            }
            Event::OverdueStarted { .. } => {
                if self.status != Status::Expired {
                    return Err(mismatch(e, "an expired package"));
                }
                self.status = Status::Overdue;
            }
            Event::OverdueSettled { fee, .. } => {
                if !matches!(self.status, Status::Expired | Status::Overdue) {
                    return Err(mismatch(e, "an expired or overdue package"));
                }
                self.fees_charged = add(self.fees_charged, *fee, "fees")?;
            }
            Event::Changed {
                to,
                charge,
                refund,
                price,
                start,
                end,
                at,
                ..
            } => {
                if self.status != Status::Active {
                    return Err(mismatch(e, "an active package"));
                }
                self.truncate_terms(*at);
                self.terms.push(Term {
                    paid: *price,
                    quota: quota_of(to),
                    used: 0,
                    span: Some(Span {
                        start: *start,
                        end: *end,
                    }),
                });
                self.product = to.clone();
                self.freeze_request = None;
                self.last_paid_at = *at;
                self.paid_total = add(self.paid_total, *charge, "paid total")?
                    .checked_sub(*refund)
                    .map_err(|_| overflow("paid total"))?;
            }
            Event::Refunded { amount, at } => {
                if !matches!(self.status, Status::Pending | Status::Active) {
                    return Err(mismatch(e, "a pending or active package"));
                }
                self.truncate_terms(*at);
                self.freeze_request = None;
                self.paid_total = self
                    .paid_total
                    .checked_sub(*amount)
                    .map_err(|_| overflow("paid total"))?;
                self.ended_at = Some(*at);
                self.status = Status::Refunded;
            }
            Event::Closed { .. } => {
                if !matches!(self.status, Status::Expired | Status::Overdue) {
                    return Err(mismatch(e, "an expired or overdue package"));
                }
                self.status = Status::Closed;
            }
            Event::Ended { at } => {
                if self.status != Status::Active {
                    return Err(mismatch(e, "an active package"));
                }
                self.truncate_terms(*at);
                self.freeze_request = None;
                self.ended_at = Some(*at);
                self.status = Status::Closed;
            }
        }
        Ok(())
    }

    /// Ends every term at `at`: running terms are cut, later ones emptied.
    fn truncate_terms(&mut self, at: NaiveDateTime) {
        for t in &mut self.terms {
            if let Some(s) = t.span.as_mut() {
                if s.start >= at {
                    s.start = at;
                    s.end = at;
                } else if s.end > at {
                    s.end = at;
                }
            }
        }
    }

    fn emit(&mut self, e: Event, out: &mut Vec<Event>) -> Result<()> {
        self.apply(&e)?;
        out.push(e);
        Ok(())
    }

    fn run(&mut self, cmd: &Command, now: NaiveDateTime) -> Result<Vec<Event>> {
        if now < self.updated_at {
            return Err(PackageError::TimeWentBackwards {
                now,
                last: self.updated_at,
            });
        }
        let mut out = Vec::new();
        self.advance(now, &mut out)?;
        self.command(cmd, now, &mut out)?;
        Ok(out)
    }

    /// Emits the time-driven events due by `now`, each at its own time.
    pub(super) fn advance(&mut self, now: NaiveDateTime, out: &mut Vec<Event>) -> Result<()> {
        for _ in 0..MAX_AUTO_EVENTS {
            let Some(d) = self.next_deadline() else {
                break;
            };
            if d.at > now {
                break;
            }
            let e = match d.kind {
                DeadlineKind::Activation => self.activation_event(d.at, true)?,
                DeadlineKind::Unfreeze => self.unfreeze_event(d.at, true)?,
                DeadlineKind::Expiry => Event::Expired { at: d.at },
                DeadlineKind::Overdue => Event::OverdueStarted { at: d.at },
            };
            self.emit(e, out)?;
        }
        Ok(())
    }

    fn activation_event(&self, at: NaiveDateTime, automatic: bool) -> Result<Event> {
        Ok(Event::Activated {
            automatic,
            start: at,
            end: self.product.validity.end_from(at)?,
            at,
        })
    }

    /// The freeze fee for unfreezing at `at`: (started days frozen, fee).
    pub(super) fn freeze_fee_at(&self, at: NaiveDateTime) -> Result<(u32, Money)> {
        let zero = Money::zero(self.product.currency());
        let Some(f) = self.frozen else {
            return Ok((0, zero));
        };
        let days = started_days(f.since, at.min(f.until));
        let fee = match self.product.freeze {
            Some(p) => per_day(p.fee_per_day, days, "freeze fee")?,
            None => zero,
        };
        Ok((days, fee))
    }

    fn unfreeze_event(&self, at: NaiveDateTime, automatic: bool) -> Result<Event> {
        let (days, fee) = self.freeze_fee_at(at)?;
        Ok(Event::Unfrozen {
            automatic,
            days,
            fee,
            at,
        })
    }

    /// When the grace period ends, for an ended package with an overdue policy.
    pub(super) fn grace_ends_at(&self) -> Result<Option<NaiveDateTime>> {
        match (self.product.overdue, self.ended_at) {
            (Some(o), Some(end)) => Ok(Some(plus(end, hours_delta(o.grace_hours)?)?)),
            _ => Ok(None),
        }
    }

    /// The overdue fee owed at `at`: (started days after grace, fee, capped?).
    pub(super) fn overdue_fee_at(&self, at: NaiveDateTime) -> Result<(u32, Money, bool)> {
        let zero = Money::zero(self.product.currency());
        let (Some(o), Some(grace_end)) = (self.product.overdue, self.grace_ends_at()?) else {
            return Ok((0, zero, false));
        };
        if !matches!(self.status, Status::Expired | Status::Overdue) {
            return Ok((0, zero, false));
        }
        let days = started_days(grace_end, at);
        let fee = per_day(o.fee_per_day, days, "overdue fee")?;
        match o.fee_cap {
            Some(cap)
                if fee
                    .checked_cmp(&cap)
                    .map_err(|_| overflow("overdue cap"))?
                    .is_gt() =>
            {
                Ok((days, cap, true))
            }
            _ => Ok((days, fee, false)),
        }
    }

    /// The time the package's clock reads at `t`: a frozen package's clock
    /// stopped when the freeze began.
    pub(super) fn effective_time(&self, t: NaiveDateTime) -> NaiveDateTime {
        match (self.status, self.frozen) {
            (Status::Frozen, Some(f)) => t.min(f.since),
            _ => t,
        }
    }

    fn settle_overdue(&mut self, now: NaiveDateTime, out: &mut Vec<Event>) -> Result<()> {
        if self.status == Status::Overdue {
            let (days, fee, _) = self.overdue_fee_at(now)?;
            self.emit(Event::OverdueSettled { days, fee, at: now }, out)?;
        }
        Ok(())
    }

    fn command(&mut self, cmd: &Command, now: NaiveDateTime, out: &mut Vec<Event>) -> Result<()> {
        match cmd {
            Command::Tick => Ok(()),
            Command::Activate => {
                if self.status != Status::Pending {
                    return Err(wrong_status("activate", self.status, "pending"));
                }
                let e = self.activation_event(now, false)?;
                self.emit(e, out)
            }
            Command::Consume { order_id, swaps } => self.consume(order_id, *swaps, now, out),
            Command::ReverseConsumption { order_id } => {
                let c =
                    self.consumptions
                        .get(order_id)
                        .ok_or_else(|| PackageError::UnknownOrder {
                            order_id: order_id.clone(),
                        })?;
                if c.reversed {
                    return Ok(());
                }
                let swaps = c.swaps;
                self.emit(
                    Event::ConsumptionReversed {
                        order_id: order_id.clone(),
                        swaps,
                        at: now,
                    },
                    out,
                )
            }
            Command::Renew {
                renewal_id,
                paid,
                rider,
            } => self.renew(renewal_id, *paid, rider, now, out),
            Command::RequestFreeze { days, reason } => {
                let policy = self
                    .product
                    .freeze
                    .ok_or_else(|| PackageError::NotFreezable {
                        product: self.product.id.clone(),
                    })?;
                if self.status != Status::Active {
                    return Err(wrong_status("freeze", self.status, "active"));
                }
                if self.freeze_request.is_some() {
                    return Err(PackageError::FreezeRequestPending);
                }
                if self.freezes_used >= policy.max_times {
                    return Err(PackageError::FreezeLimitReached {
                        max_times: policy.max_times,
                    });
                }
                if *days < policy.min_days || *days > policy.max_days {
                    return Err(PackageError::FreezeDays {
                        days: *days,
                        min: policy.min_days,
                        max: policy.max_days,
                    });
                }
                self.emit(
                    Event::FreezeRequested {
                        days: *days,
                        reason: reason.clone(),
                        at: now,
                    },
                    out,
                )
            }
            Command::ApproveFreeze => {
                let req = self
                    .freeze_request
                    .clone()
                    .ok_or(PackageError::NoFreezeRequest)?;
                if self.status != Status::Active {
                    return Err(wrong_status("approve a freeze of", self.status, "active"));
                }
                let until = plus(now, days_delta(req.days)?)?;
                self.emit(Event::Frozen { until, at: now }, out)
            }
            Command::RejectFreeze { reason } => {
                if self.freeze_request.is_none() {
                    return Err(PackageError::NoFreezeRequest);
                }
                self.emit(
                    Event::FreezeRejected {
                        reason: reason.clone(),
                        at: now,
                    },
                    out,
                )
            }
            Command::Unfreeze => {
                if self.status != Status::Frozen {
                    return Err(wrong_status("unfreeze", self.status, "frozen"));
                }
                let e = self.unfreeze_event(now, false)?;
                self.emit(e, out)
            }
            Command::Change { to, rider } => {
                let e = self.change_event(to, rider, now)?;
                self.emit(e, out)
            }
            Command::Refund => {
                let policy = self
                    .product
                    .refund
                    .ok_or_else(|| PackageError::NotRefundable {
                        product: self.product.id.clone(),
                    })?;
                if !matches!(
                    self.status,
                    Status::Pending | Status::Active | Status::Frozen
                ) {
                    return Err(wrong_status(
                        "refund",
                        self.status,
                        "pending, active or frozen",
                    ));
                }
                let window_end = plus(self.last_paid_at, days_delta(policy.window_days)?)?;
                if now > window_end {
                    return Err(PackageError::RefundWindowClosed {
                        window_ended_at: window_end,
                    });
                }
                if self.status == Status::Frozen {
                    let e = self.unfreeze_event(now, false)?;
                    self.emit(e, out)?;
                }
                let amount = self.unused_total(now)?;
                self.emit(Event::Refunded { amount, at: now }, out)
            }
            Command::Close => {
                if !matches!(self.status, Status::Expired | Status::Overdue) {
                    return Err(wrong_status("close", self.status, "expired or overdue"));
                }
                self.settle_overdue(now, out)?;
                self.emit(Event::Closed { at: now }, out)
            }
            Command::Cancel => {
                if self.status != Status::Pending {
                    return Err(wrong_status("cancel", self.status, "pending"));
                }
                let amount = self.paid_total;
                self.emit(Event::Refunded { amount, at: now }, out)
            }
            Command::End => {
                match self.status {
                    Status::Frozen => {
                        let e = self.unfreeze_event(now, false)?;
                        self.emit(e, out)?;
                    }
                    Status::Active | Status::Expired | Status::Overdue => {}
                    s => {
                        return Err(wrong_status("end", s, "active, frozen, expired or overdue"));
                    }
                }
                if self.status == Status::Active {
                    return self.emit(Event::Ended { at: now }, out);
                }
                self.settle_overdue(now, out)?;
                self.emit(Event::Closed { at: now }, out)
            }
        }
    }

    fn consume(
        &mut self,
        order_id: &str,
        swaps: u32,
        now: NaiveDateTime,
        out: &mut Vec<Event>,
    ) -> Result<()> {
        if order_id.is_empty() {
            return Err(invalid_command("order_id", "a non-empty order id"));
        }
        if swaps == 0 {
            return Err(invalid_command("swaps", "at least 1 swap"));
        }
        if let Some(c) = self.consumptions.get(order_id) {
            return if c.swaps == swaps {
                Ok(())
            } else {
                Err(PackageError::OrderConflict {
                    order_id: order_id.to_owned(),
                    recorded_swaps: c.swaps,
                    requested_swaps: swaps,
                })
            };
        }
        if self.product.swaps == Swaps::None {
            return Err(PackageError::NoSwapEntitlement {
                product: self.product.id.clone(),
            });
        }
        if self.status == Status::Pending {
            let e = self.activation_event(now, false)?;
            self.emit(e, out)?;
        }
        if self.status != Status::Active {
            return Err(wrong_status(
                "consume swaps from",
                self.status,
                "active or pending",
            ));
        }
        let term = self
            .current_term(now)
            .ok_or_else(|| wrong_status("consume swaps from", self.status, "a running term"))?;
        let t = self.terms.get(term).ok_or_else(|| overflow("term"))?;
        let remaining = match t.quota {
            Some(q) => {
                let left = q.saturating_sub(t.used);
                if swaps > left {
                    return Err(PackageError::QuotaExhausted {
                        remaining: left,
                        requested: swaps,
                    });
                }
                Some(left - swaps)
            }
            None => None,
        };
        if let Some(cap) = self.product.daily_swap_cap {
            let used = self.swaps_on(now);
            if used.saturating_add(swaps) > cap {
                return Err(PackageError::DailyCapReached {
                    date: now.date(),
                    cap,
                    used,
                    requested: swaps,
                });
            }
        }
        self.emit(
            Event::Consumed {
                order_id: order_id.to_owned(),
                swaps,
                term,
                remaining,
                at: now,
            },
            out,
        )
    }

    fn renew(
        &mut self,
        renewal_id: &str,
        paid: Option<Money>,
        rider: &RiderProfile,
        now: NaiveDateTime,
        out: &mut Vec<Event>,
    ) -> Result<()> {
        if renewal_id.is_empty() {
            return Err(invalid_command("renewal_id", "a non-empty id"));
        }
        let paid = paid.unwrap_or(self.product.price);
        if let Some(recorded) = self.renewals.get(renewal_id) {
            return if *recorded == paid {
                Ok(())
            } else {
                Err(PackageError::RenewalConflict {
                    renewal_id: renewal_id.to_owned(),
                    recorded_paid: *recorded,
                    requested_paid: paid,
                })
            };
        }
        let policy = self.product.renewal;
        if !policy.allowed {
            return Err(PackageError::NotRenewable {
                product: self.product.id.clone(),
            });
        }
        check_paid(&self.product, paid, "paid")?;
        let mut r = rider.clone();
        r.packages_bought = r.packages_bought.max(1);
        self.product.check_eligible(&r)?;
        let validity = self.product.validity;
        let swaps = quota_of(&self.product);
        let (effect, start, end) = match self.status {
            Status::Active => {
                let ends_at = self.ends_at().ok_or_else(|| overflow("end"))?;
                if let Some(d) = policy.earliest_days_before_expiry {
                    let opens_at = minus(ends_at, days_delta(d)?)?;
                    if now < opens_at {
                        return Err(PackageError::RenewalTooEarly {
                            opens_at,
                            ends_at,
                            days: d,
                        });
                    }
                }
                match policy.mode {
                    RenewalMode::Extend => {
                        let start = self
                            .terms
                            .iter()
                            .rev()
                            .find_map(|t| t.span.map(|s| s.start))
                            .ok_or_else(|| overflow("term"))?;
                        (RenewalEffect::Extended, start, validity.end_from(ends_at)?)
                    }
                    RenewalMode::Stack => {
                        let queued = self
                            .terms
                            .iter()
                            .filter(|t| t.span.is_some_and(|s| s.start > now))
                            .count();
                        let queued = u32::try_from(queued).unwrap_or(u32::MAX);
                        if let Some(max) = policy.max_queued_terms {
                            if queued >= max {
                                return Err(PackageError::TooManyQueuedTerms { queued, max });
                            }
                        }
                        (RenewalEffect::Stacked, ends_at, validity.end_from(ends_at)?)
                    }
                }
            }
            Status::Expired | Status::Overdue => {
                self.settle_overdue(now, out)?;
                (RenewalEffect::Restarted, now, validity.end_from(now)?)
            }
            s => return Err(wrong_status("renew", s, "active, expired or overdue")),
        };
        self.emit(
            Event::Renewed {
                renewal_id: renewal_id.to_owned(),
                paid,
                effect,
                start,
                end,
                swaps,
                at: now,
            },
            out,
        )
    }

    pub(super) fn change_event(
        &self,
        to: &Product,
        rider: &RiderProfile,
        now: NaiveDateTime,
    ) -> Result<Event> {
        if self.status != Status::Active {
            return Err(wrong_status("change", self.status, "active"));
        }
        to.validate()?;
        if to.id == self.product.id {
            return Err(PackageError::SameProduct {
                product: to.id.clone(),
            });
        }
        if to.currency() != self.product.currency() {
            return Err(PackageError::CurrencyMismatch {
                field: "to.price".to_owned(),
                expected: self.product.currency(),
                got: to.currency(),
            });
        }
        let mut r = rider.clone();
        r.packages_bought = r.packages_bought.max(1);
        to.check_eligible(&r)?;
        let credit = self.unused_total(now)?;
        let price = to.price;
        let charge = sub_to_zero(price, credit, "change charge")?;
        let refund = sub_to_zero(credit, price, "change refund")?;
        let up = to
            .price
            .checked_cmp(&self.product.price)
            .map_err(|_| overflow("compare prices"))?
            .is_ge();
        Ok(Event::Changed {
            from: self.product.id.clone(),
            to: to.clone(),
            direction: if up {
                ChangeDirection::Upgrade
            } else {
                ChangeDirection::Downgrade
            },
            credit,
            price,
            charge,
            refund,
            start: now,
            end: to.validity.end_from(now)?,
            at: now,
        })
    }

    /// The unused value of one term at `t` (see [`super::RefundBasis`]).
    pub(super) fn term_value(&self, term: &Term, t: NaiveDateTime) -> Result<super::TermValue> {
        use super::RefundBasis;
        let zero = Money::zero(self.product.currency());
        let t = self.effective_time(t);
        let (basis, days, value) = match term.span {
            None => (RefundBasis::NotStarted, 0, term.paid),
            Some(s) if t < s.start => (RefundBasis::NotStarted, 0, term.paid),
            Some(s) if t >= s.end => (RefundBasis::Ended, started_days(s.start, s.end), zero),
            Some(s) => {
                let days = started_days(s.start, t);
                let by_time = || -> Result<Money> {
                    let rate = self.product.daily_rate()?;
                    sub_to_zero(term.paid, per_day(rate, days, "days used")?, "time value")
                };
                let by_count = || -> Result<Money> {
                    let unit = self.product.unit_price()?.unwrap_or(zero);
                    sub_to_zero(
                        term.paid,
                        per_day(unit, term.used, "swaps used")?,
                        "count value",
                    )
                };
                match (self.product.swaps, self.product.rental) {
                    (Swaps::Limited(_), false) => (RefundBasis::Count, days, by_count()?),
                    (Swaps::Limited(_), true) => {
                        let (c, d) = (by_count()?, by_time()?);
                        let v = c.checked_min(d).map_err(|_| overflow("value"))?;
                        (RefundBasis::CountAndTime, days, v)
                    }
                    _ => (RefundBasis::Time, days, by_time()?),
                }
            }
        };
        Ok(super::TermValue {
            paid: term.paid,
            swaps_used: term.used,
            days_used: days,
            basis,
            value,
        })
    }

    /// Sum of the terms' unused values at `t` (zero once closed or refunded).
    pub(super) fn unused_total(&self, t: NaiveDateTime) -> Result<Money> {
        let mut sum = Money::zero(self.product.currency());
        if matches!(self.status, Status::Closed | Status::Refunded) {
            return Ok(sum);
        }
        for term in &self.terms {
            sum = add(sum, self.term_value(term, t)?.value, "unused value")?;
        }
        Ok(sum)
    }
}

fn quota_of(p: &Product) -> Option<u32> {
    match p.swaps {
        Swaps::Limited(n) => Some(n),
        Swaps::None | Swaps::Unlimited => None,
    }
}

fn invalid_command(field: &str, expected: &str) -> PackageError {
    PackageError::InvalidCommand {
        field: field.to_owned(),
        expected: expected.to_owned(),
    }
}

fn check_paid(product: &Product, paid: Money, field: &str) -> Result<()> {
    if paid.currency() != product.currency() {
        return Err(PackageError::CurrencyMismatch {
            field: field.to_owned(),
            expected: product.currency(),
            got: paid.currency(),
        });
    }
    if paid.is_negative() || !paid.is_minor_exact() {
        return Err(invalid_command(field, "a whole-fen amount of zero or more"));
    }
    Ok(())
}
