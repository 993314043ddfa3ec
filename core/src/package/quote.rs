//! Read-only money questions about a package, and scenarios (a purchase and a
//! timeline of commands) for the CLI, the golden vectors and the bindings.

use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};

use super::machine::{ChangeDirection, Command, Event, Package, Purchase, Status};
use super::product::{Product, RiderProfile, Swaps};
use super::{PackageError, Result, add, days_delta, plus};
use crate::money::Money;

/// Which formula valued a term.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundBasis {
    /// Not started yet: its whole `paid` is unused.
    NotStarted,
    /// Count-limited: `max(paid − unit price × swaps used, 0)`.
    Count,
    /// Time-limited (unlimited swaps or rental): `max(paid − daily rate × started days used, 0)`.
    Time,
    /// Rental with limited swaps: the smaller of the count and the time values.
    CountAndTime,
    /// Ended (expired, cut by a change or a refund): nothing unused.
    Ended,
}

/// The unused value of one term.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TermValue {
    /// Paid for the term.
    pub paid: Money,
    /// Swaps used in it.
    pub swaps_used: u32,
    /// Started days used (frozen time excluded).
    pub days_used: u32,
    /// The formula.
    pub basis: RefundBasis,
    /// The unused value, never below zero nor above `paid`.
    pub value: Money,
}

/// What a refund would pay at a time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundQuote {
    /// The time quoted.
    pub at: NaiveDateTime,
    /// The status at that time (time-driven transitions applied).
    pub status: Status,
    /// Whether [`Command::Refund`] would succeed.
    pub refundable: bool,
    /// Why not, when not: the error the refund would return.
    pub blocked_by: Option<PackageError>,
    /// The last instant a refund may be asked for.
    pub window_ends_at: Option<NaiveDateTime>,
    /// Freeze fee settled first, when the package is frozen.
    pub freeze_fee: Money,
    /// Per term.
    pub terms: Vec<TermValue>,
    /// Sum of the terms' unused values.
    pub unused: Money,
    /// What the refund pays: `unused` if refundable, else zero.
    pub amount: Money,
}

/// The overdue fee at a time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverdueFee {
    /// When the last term ended.
    pub ended_at: NaiveDateTime,
    /// When the grace period ends.
    pub grace_ends_at: NaiveDateTime,
    /// Started days after the grace period.
    pub days: u32,
    /// The daily fee.
    pub fee_per_day: Money,
    /// `fee_per_day × days`, capped.
    pub fee: Money,
    /// Whether the cap applied.
    pub capped: bool,
}

/// The freeze fee accrued at a time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FreezeFee {
    /// When the freeze began.
    pub since: NaiveDateTime,
    /// When it ends by itself.
    pub until: NaiveDateTime,
    /// Started days frozen so far.
    pub days: u32,
    /// The daily fee.
    pub fee_per_day: Money,
    /// `fee_per_day × days`.
    pub fee: Money,
}

/// Fees at a time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeeQuote {
    /// The time quoted.
    pub at: NaiveDateTime,
    /// The status at that time (time-driven transitions applied).
    pub status: Status,
    /// The overdue fee accrued, for an expired or overdue package with an overdue policy.
    pub overdue: Option<OverdueFee>,
    /// The freeze fee accrued, for a frozen package.
    pub freeze: Option<FreezeFee>,
    /// Accrued and not yet settled: overdue fee + freeze fee.
    pub due: Money,
    /// Already settled (including an automatic unfreeze before `at`).
    pub settled: Money,
    /// Time-driven events between the package's last event and `at`.
    pub events: Vec<Event>,
}

/// What a change to another product would cost.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeQuote {
    /// The time quoted.
    pub at: NaiveDateTime,
    /// Upgrade or downgrade.
    pub direction: ChangeDirection,
    /// Unused value of the current terms, credited.
    pub credit: Money,
    /// Price of the new product's term.
    pub price: Money,
    /// To pay: max(price − credit, 0).
    pub charge: Money,
    /// To refund: max(credit − price, 0).
    pub refund: Money,
    /// The new term.
    pub start: NaiveDateTime,
    /// Its end.
    pub end: NaiveDateTime,
    /// How the credit was computed, per current term.
    pub terms: Vec<TermValue>,
}

/// What the rider can use at a time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entitlement {
    /// The time.
    pub at: NaiveDateTime,
    /// The status (time-driven transitions applied).
    pub status: Status,
    /// The running term.
    pub term: Option<usize>,
    /// Swaps left in the running term; none when unlimited or without swaps.
    pub swaps_left: Option<u32>,
    /// Whether swaps are unlimited.
    pub unlimited: bool,
    /// Swaps used on the local date of `at`.
    pub swaps_today: u32,
    /// Swaps left under the daily cap, if capped.
    pub daily_cap_left: Option<u32>,
    /// End of the last term.
    pub ends_at: Option<NaiveDateTime>,
    /// Whether a battery is rented.
    pub rental: bool,
}

impl Package {
    fn advanced(&self, now: NaiveDateTime) -> Result<(Package, Vec<Event>)> {
        if now < self.updated_at {
            return Err(PackageError::TimeWentBackwards {
                now,
                last: self.updated_at,
            });
        }
        let mut s = self.clone();
        let mut events = Vec::new();
        s.advance(now, &mut events)?;
        Ok((s, events))
    }

    /// What a refund would pay at `now`, with the per-term arithmetic, and
    /// whether it is allowed. Changes nothing.
    ///
    /// ```
    /// use chargeswap_core::package::{Package, Product, Purchase};
    /// let p: Product = serde_json::from_str(r#"{"id":"rent-30","price":"90.00",
    ///     "validity":{"days":30},"rental":true,"refund":{"window_days":30}}"#).unwrap();
    /// let t = |s: &str| s.parse::<chrono::NaiveDateTime>().unwrap();
    /// let (pkg, _) = Package::purchase(&Purchase::new("k", "r", p), t("2026-05-01T10:00:00"))?;
    /// // 3 days 1 hour used = 4 started days at 90/30 = ¥3.00 a day: 90 − 12 = 78.
    /// let q = pkg.refund_quote(t("2026-05-04T11:00:00"))?;
    /// assert_eq!((q.refundable, q.amount.to_string()), (true, "¥78.00".to_owned()));
    /// # Ok::<(), chargeswap_core::package::PackageError>(())
    /// ```
    pub fn refund_quote(&self, now: NaiveDateTime) -> Result<RefundQuote> {
        let (mut s, _) = self.advanced(now)?;
        let zero = Money::zero(self.product.currency());
        let mut freeze_fee = zero;
        if s.status == Status::Frozen {
            let (days, fee) = s.freeze_fee_at(now)?;
            freeze_fee = fee;
            s.apply(&Event::Unfrozen {
                automatic: false,
                days,
                fee,
                at: now,
            })?;
        }
        let terms = s.term_values(now)?;
        let unused = s.unused_total(now)?;
        let (refundable, blocked_by, amount) = match self.decide(&Command::Refund, now) {
            Ok(events) => {
                let amount = events
                    .iter()
                    .find_map(|e| match e {
                        Event::Refunded { amount, .. } => Some(*amount),
                        _ => None,
                    })
                    .unwrap_or(zero);
                (true, None, amount)
            }
            Err(e) => (false, Some(e), zero),
        };
        let window_ends_at = match self.product.refund {
            Some(r) => Some(plus(s.last_paid_at, days_delta(r.window_days)?)?),
            None => None,
        };
        Ok(RefundQuote {
            at: now,
            status: s.status,
            refundable,
            blocked_by,
            window_ends_at,
            freeze_fee,
            terms,
            unused,
            amount,
        })
    }

    fn term_values(&self, now: NaiveDateTime) -> Result<Vec<TermValue>> {
        self.terms.iter().map(|t| self.term_value(t, now)).collect()
    }

    /// The overdue and freeze fees accrued at `now`. Changes nothing.
    ///
    /// ```
    /// use chargeswap_core::package::{Package, Product, Purchase};
    /// let p: Product = serde_json::from_str(r#"{"id":"rent-7","price":"21.00",
    ///     "validity":{"days":7},"rental":true,
    ///     "overdue":{"grace_hours":24,"fee_per_day":"5.00"}}"#).unwrap();
    /// let t = |s: &str| s.parse::<chrono::NaiveDateTime>().unwrap();
    /// let (pkg, _) = Package::purchase(&Purchase::new("k", "r", p), t("2026-05-01T10:00:00"))?;
    /// // Ends 05-08 10:00, grace to 05-09 10:00; at 05-11 12:00: 2 days 2 hours = 3 started days.
    /// let q = pkg.fees(t("2026-05-11T12:00:00"))?;
    /// assert_eq!(q.overdue.unwrap().fee.to_string(), "¥15.00");
    /// # Ok::<(), chargeswap_core::package::PackageError>(())
    /// ```
    pub fn fees(&self, now: NaiveDateTime) -> Result<FeeQuote> {
        let (s, events) = self.advanced(now)?;
        let zero = Money::zero(self.product.currency());
        let overdue = match (s.product.overdue, s.ended_at, s.grace_ends_at()?) {
            (Some(o), Some(ended_at), Some(grace_ends_at))
                if matches!(s.status, Status::Expired | Status::Overdue) =>
            {
                let (days, fee, capped) = s.overdue_fee_at(now)?;
                Some(OverdueFee {
                    ended_at,
                    grace_ends_at,
                    days,
                    fee_per_day: o.fee_per_day,
                    fee,
                    capped,
                })
            }
            _ => None,
        };
        let freeze = match (s.status, s.frozen, s.product.freeze) {
            (Status::Frozen, Some(f), Some(p)) => {
                let (days, fee) = s.freeze_fee_at(now)?;
                Some(FreezeFee {
                    since: f.since,
                    until: f.until,
                    days,
                    fee_per_day: p.fee_per_day,
                    fee,
                })
            }
            _ => None,
        };
        let due = add(
            overdue.as_ref().map_or(zero, |o| o.fee),
            freeze.as_ref().map_or(zero, |f| f.fee),
            "fees due",
        )?;
        Ok(FeeQuote {
            at: now,
            status: s.status,
            overdue,
            freeze,
            due,
            settled: s.fees_charged,
            events,
        })
    }

    /// What changing to `to` at `now` would cost (upgrade or downgrade with
    /// proration). Changes nothing.
    pub fn change_quote(
        &self,
        to: &Product,
        rider: &RiderProfile,
        now: NaiveDateTime,
    ) -> Result<ChangeQuote> {
        let (s, _) = self.advanced(now)?;
        let terms = s.term_values(now)?;
        match s.change_event(to, rider, now)? {
            Event::Changed {
                direction,
                credit,
                price,
                charge,
                refund,
                start,
                end,
                ..
            } => Ok(ChangeQuote {
                at: now,
                direction,
                credit,
                price,
                charge,
                refund,
                start,
                end,
                terms,
            }),
            _ => Err(PackageError::Overflow {
                operation: "change quote".to_owned(),
            }),
        }
    }

    /// The package liability (deferred revenue) at `now`: the sum of the
    /// terms' unused values, whether or not a refund is still allowed. The
    /// ledger recognises revenue as this falls. Changes nothing.
    pub fn liability(&self, now: NaiveDateTime) -> Result<Money> {
        let (s, _) = self.advanced(now)?;
        s.unused_total(now)
    }

    /// What the rider can use at `now`. Changes nothing.
    pub fn entitlement(&self, now: NaiveDateTime) -> Result<Entitlement> {
        let (s, _) = self.advanced(now)?;
        let term = if s.status == Status::Active {
            s.current_term(now)
        } else {
            None
        };
        let swaps_left = term
            .and_then(|i| s.terms.get(i))
            .and_then(|t| t.quota.map(|q| q.saturating_sub(t.used)));
        let swaps_today = s.swaps_on(now);
        Ok(Entitlement {
            at: now,
            status: s.status,
            term,
            swaps_left,
            unlimited: s.product.swaps == Swaps::Unlimited,
            swaps_today,
            daily_cap_left: s
                .product
                .daily_swap_cap
                .map(|c| c.saturating_sub(swaps_today)),
            ends_at: s.ends_at(),
            rental: s.product.rental,
        })
    }
}

/// One step of a scenario: a command at a time. In JSON the command's fields
/// sit beside `at`: `{"at": "2026-05-02T09:00:00", "type": "consume", "order_id": "o-1"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// When.
    pub at: NaiveDateTime,
    /// What.
    #[serde(flatten)]
    pub command: Command,
}

/// A purchase and a timeline of commands: the life of one package as data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// The purchase.
    pub purchase: Purchase,
    /// When it was bought.
    pub purchased_at: NaiveDateTime,
    /// Commands after the purchase, in time order.
    #[serde(default)]
    pub timeline: Vec<Step>,
}

/// The result of a scenario: the final state and every event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScenarioOutcome {
    /// The package after the last step.
    pub package: Package,
    /// Every event, in order.
    pub events: Vec<Event>,
}

impl Scenario {
    /// Runs the purchase and every step. A failing step is reported as
    /// [`PackageError::StepFailed`] with its index.
    ///
    /// ```
    /// use chargeswap_core::package::Scenario;
    /// let s: Scenario = serde_json::from_str(r#"{
    ///   "purchase": {"package_id": "k", "rider_id": "r",
    ///     "product": {"id": "swap-10", "price": "50.00", "validity": {"days": 30}, "swaps": {"limited": 10}}},
    ///   "purchased_at": "2026-05-01T08:00:00",
    ///   "timeline": [{"at": "2026-05-01T09:00:00", "type": "consume", "order_id": "o-1"}]
    /// }"#).unwrap();
    /// let out = s.run()?;
    /// assert_eq!(out.package.terms[0].used, 1);
    /// assert_eq!(out.events.len(), 3);
    /// # Ok::<(), chargeswap_core::package::PackageError>(())
    /// ```
    pub fn run(&self) -> Result<ScenarioOutcome> {
        let (mut package, mut events) = Package::purchase(&self.purchase, self.purchased_at)?;
        for (step, s) in self.timeline.iter().enumerate() {
            let e = package
                .handle(&s.command, s.at)
                .map_err(|error| PackageError::StepFailed {
                    step,
                    at: s.at,
                    error: Box::new(error),
                })?;
            events.extend(e);
        }
        Ok(ScenarioOutcome { package, events })
    }
}
