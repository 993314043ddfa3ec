//! Packages (套餐): a product catalog, an entitlement model and the life of a
//! package as a pure state machine.
//!
//! - [`Product`]: what is sold — swap packages (N swaps or unlimited within a
//!   validity, optional per-day cap), rental packages by day or month,
//!   combined rental-and-swap, an attached deposit amount, eligibility rules,
//!   and the renewal, freeze, overdue and refund policies.
//! - [`Package`]: one rider's package. Commands ([`Command`]) are decided
//!   against the state at a given `now` into [`Event`]s; applying the events
//!   gives the next state; [`Package::replay`] rebuilds a state from its events.
//!   Time-driven transitions (automatic activation, automatic unfreeze, expiry,
//!   overdue) are emitted by the next command at the time they were due, and
//!   [`Package::next_deadline`] tells the host when to send a [`Command::Tick`].
//! - Quotes ([`Package::refund_quote`], [`Package::fees`],
//!   [`Package::change_quote`], [`Package::liability`]) compute money without
//!   changing anything. Money is described as data on events (a price paid, a
//!   fee, a refund); the ledger posts it. docs/packages.md maps each event to
//!   its ledger movement.
//!
//! Times are [`chrono::NaiveDateTime`] in the platform's local time zone (a
//! calendar day for per-day caps is a local date). A *started day* is any
//! started 24-hour period: 1 second counts as 1 day, exactly 24 hours as 1.
//!
//! ```
//! use chargeswap_core::package::{Command, Package, Product, Purchase};
//! use chrono::NaiveDateTime;
//!
//! let product: Product = serde_json::from_str(r#"{
//!     "id": "swap-30", "price": "150.00", "validity": {"days": 30},
//!     "swaps": {"limited": 30}, "refund": {"window_days": 7}
//! }"#).unwrap();
//! let t0: NaiveDateTime = "2026-05-01T08:00:00".parse().unwrap();
//! let (mut pkg, events) = Package::purchase(&Purchase::new("pkg-1", "rider-1", product), t0)?;
//! assert_eq!(events.len(), 2); // purchased, activated (immediate activation)
//!
//! let t1: NaiveDateTime = "2026-05-02T09:00:00".parse().unwrap();
//! let swap = Command::Consume { order_id: "ord-1".into(), swaps: 1 };
//! assert_eq!(pkg.handle(&swap, t1)?.len(), 1);
//! assert!(pkg.handle(&swap, t1)?.is_empty()); // replayed order id: consumed once
//!
//! // Refund of a count-limited package: paid − unit price × swaps used = 150 − 5 × 1.
//! assert_eq!(pkg.refund_quote(t1)?.amount.to_string(), "¥145.00");
//! assert_eq!(Package::replay(&[events, vec![]].concat())?.status, chargeswap_core::package::Status::Active);
//! # Ok::<(), chargeswap_core::package::PackageError>(())
//! ```

use chrono::{NaiveDate, NaiveDateTime, TimeDelta};
use serde::{Deserialize, Serialize};

use crate::money::{Currency, Money};

mod machine;
mod product;
mod quote;

pub use machine::{
    ChangeDirection, Command, Consumption, Deadline, DeadlineKind, Event, FreezeRequest,
    FrozenSpell, Package, Purchase, RenewalEffect, Span, Status, Term,
};
pub use product::{
    Activation, Audience, Eligibility, FreezePolicy, Ineligibility, OverduePolicy, PackageKind,
    Product, RefundPolicy, RenewalMode, RenewalPolicy, RiderProfile, Swaps, Validity,
};
pub use quote::{
    ChangeQuote, Entitlement, FeeQuote, FreezeFee, OverdueFee, RefundBasis, RefundQuote, Scenario,
    ScenarioOutcome, Step, TermValue,
};

/// Errors of the package module. Each names what was wrong and what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PackageError {
    /// A product field is unusable.
    #[error("product field {field} is invalid: expected {expected}")]
    InvalidProduct {
        /// The field.
        field: String,
        /// What it should be.
        expected: String,
    },
    /// An amount is in another currency than the product's.
    #[error("{field} is in {got}; expected {expected}, the product's currency")]
    CurrencyMismatch {
        /// The field.
        field: String,
        /// The product's currency.
        expected: Currency,
        /// The currency given.
        got: Currency,
    },
    /// A command field is unusable.
    #[error("command field {field} is invalid: expected {expected}")]
    InvalidCommand {
        /// The field.
        field: String,
        /// What it should be.
        expected: String,
    },
    /// The rider may not buy or renew the product.
    #[error("rider is not eligible for product {product}: {reason:?}")]
    NotEligible {
        /// The product.
        product: String,
        /// The rule the rider does not meet.
        reason: Ineligibility,
    },
    /// The operation is not possible in the package's status.
    #[error(
        "cannot {operation} a package that is {status:?}; expected a package that is {expected}"
    )]
    WrongStatus {
        /// What was attempted.
        operation: String,
        /// The status at `now`.
        status: Status,
        /// The statuses that allow it.
        expected: String,
    },
    /// A swap on a package without swaps.
    #[error("product {product} includes no swaps")]
    NoSwapEntitlement {
        /// The product.
        product: String,
    },
    /// Not enough swaps left in the current term.
    #[error("{requested} swap(s) requested but only {remaining} left in the current term")]
    QuotaExhausted {
        /// Swaps left.
        remaining: u32,
        /// Swaps asked for.
        requested: u32,
    },
    /// The per-day cap would be exceeded.
    #[error("daily swap cap of {cap} reached on {date}: {used} used, {requested} requested")]
    DailyCapReached {
        /// The local date.
        date: NaiveDate,
        /// The cap.
        cap: u32,
        /// Swaps already used that day.
        used: u32,
        /// Swaps asked for.
        requested: u32,
    },
    /// The order id was consumed before with different content.
    #[error(
        "order {order_id} already consumed {recorded_swaps} swap(s); a replay must ask for the same, got {requested_swaps}"
    )]
    OrderConflict {
        /// The order id.
        order_id: String,
        /// Swaps recorded under it.
        recorded_swaps: u32,
        /// Swaps asked for now.
        requested_swaps: u32,
    },
    /// No consumption under that order id.
    #[error("no consumption recorded for order {order_id}")]
    UnknownOrder {
        /// The order id.
        order_id: String,
    },
    /// The renewal id was used before with a different amount.
    #[error(
        "renewal {renewal_id} was paid {recorded_paid}; a replay must carry the same amount, got {requested_paid}"
    )]
    RenewalConflict {
        /// The renewal id.
        renewal_id: String,
        /// Amount recorded under it.
        recorded_paid: Money,
        /// Amount given now.
        requested_paid: Money,
    },
    /// The product cannot be renewed.
    #[error("product {product} cannot be renewed")]
    NotRenewable {
        /// The product.
        product: String,
    },
    /// Renewal is not open yet.
    #[error("renewal opens at {opens_at} ({days} days before the end at {ends_at})")]
    RenewalTooEarly {
        /// When renewal opens.
        opens_at: NaiveDateTime,
        /// The package's current end.
        ends_at: NaiveDateTime,
        /// Days before the end renewal opens.
        days: u32,
    },
    /// Too many stacked terms are already queued.
    #[error("{queued} term(s) already queued; at most {max} allowed")]
    TooManyQueuedTerms {
        /// Terms queued now.
        queued: u32,
        /// The limit.
        max: u32,
    },
    /// The product cannot be frozen.
    #[error("product {product} cannot be frozen")]
    NotFreezable {
        /// The product.
        product: String,
    },
    /// The freeze length is outside the policy.
    #[error("a freeze of {days} day(s) was asked; expected {min} to {max} days")]
    FreezeDays {
        /// Days asked for.
        days: u32,
        /// Fewest allowed.
        min: u32,
        /// Most allowed.
        max: u32,
    },
    /// Every allowed freeze has been used.
    #[error("the package has used its {max_times} freeze(s)")]
    FreezeLimitReached {
        /// Freezes allowed.
        max_times: u32,
    },
    /// A freeze request is already waiting for a decision.
    #[error("a freeze request is already pending; approve or reject it first")]
    FreezeRequestPending,
    /// No freeze request to decide on.
    #[error("no freeze request is pending")]
    NoFreezeRequest,
    /// The product is not refundable.
    #[error("product {product} is not refundable")]
    NotRefundable {
        /// The product.
        product: String,
    },
    /// The refund window has closed.
    #[error("the refund window closed at {window_ended_at}")]
    RefundWindowClosed {
        /// When the window closed.
        window_ended_at: NaiveDateTime,
    },
    /// A change to the product already held.
    #[error("the package already is product {product}; a change needs another product")]
    SameProduct {
        /// The product.
        product: String,
    },
    /// `now` is before the package's last event.
    #[error("now ({now}) is before the package's last event ({last}); time must not go backwards")]
    TimeWentBackwards {
        /// The time given.
        now: NaiveDateTime,
        /// The last event's time.
        last: NaiveDateTime,
    },
    /// An event does not fit the state it is applied to (a corrupt or reordered log).
    #[error("event {event} does not apply: {expected}")]
    EventMismatch {
        /// The event's type.
        event: String,
        /// What the state needed.
        expected: String,
    },
    /// Arithmetic left the representable range.
    #[error("arithmetic overflow in {operation}")]
    Overflow {
        /// The operation.
        operation: String,
    },
    /// A scenario step failed.
    #[error("step {step} at {at} failed: {error}")]
    StepFailed {
        /// Index of the step in the timeline (from 0).
        step: usize,
        /// The step's time.
        at: NaiveDateTime,
        /// The step's error.
        error: Box<PackageError>,
    },
}

type Result<T> = core::result::Result<T, PackageError>;

fn overflow(operation: &str) -> PackageError {
    PackageError::Overflow {
        operation: operation.to_owned(),
    }
}

/// Started 24-hour days from `from` to `to`: 0 if `to` is not after `from`,
/// else ⌈(to − from) / 24 h⌉.
///
/// ```
/// use chargeswap_core::package::started_days;
/// let t = |s: &str| s.parse::<chrono::NaiveDateTime>().unwrap();
/// assert_eq!(started_days(t("2026-05-01T10:00:00"), t("2026-05-01T10:00:00")), 0);
/// assert_eq!(started_days(t("2026-05-01T10:00:00"), t("2026-05-01T10:00:01")), 1);
/// assert_eq!(started_days(t("2026-05-01T10:00:00"), t("2026-05-02T10:00:00")), 1);
/// assert_eq!(started_days(t("2026-05-01T10:00:00"), t("2026-05-02T10:00:01")), 2);
/// ```
pub fn started_days(from: NaiveDateTime, to: NaiveDateTime) -> u32 {
    let d = to.signed_duration_since(from);
    if d <= TimeDelta::zero() {
        return 0;
    }
    let whole = d.num_days();
    let rest = TimeDelta::try_days(whole).map(|w| d - w);
    let n = match rest {
        Some(r) if r > TimeDelta::zero() => whole.saturating_add(1),
        _ => whole,
    };
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// `per_day × days`: exact for whole-fen rates (a documented rounding point
/// that never rounds in practice).
fn per_day(rate: Money, days: u32, what: &str) -> Result<Money> {
    rate.multiply(
        rust_decimal::Decimal::from(days),
        crate::money::Rounding::HalfUp,
    )
    .map_err(|_| overflow(what))
}

fn add(a: Money, b: Money, what: &str) -> Result<Money> {
    a.checked_add(b).map_err(|_| overflow(what))
}

fn sub_to_zero(a: Money, b: Money, what: &str) -> Result<Money> {
    a.saturating_sub_to_zero(b).map_err(|_| overflow(what))
}

fn days_delta(days: u32) -> Result<TimeDelta> {
    TimeDelta::try_days(i64::from(days)).ok_or_else(|| overflow("days"))
}

fn hours_delta(hours: u32) -> Result<TimeDelta> {
    TimeDelta::try_hours(i64::from(hours)).ok_or_else(|| overflow("hours"))
}

fn plus(t: NaiveDateTime, d: TimeDelta) -> Result<NaiveDateTime> {
    t.checked_add_signed(d).ok_or_else(|| overflow("time"))
}

fn minus(t: NaiveDateTime, d: TimeDelta) -> Result<NaiveDateTime> {
    t.checked_sub_signed(d).ok_or_else(|| overflow("time"))
}

#[cfg(test)]
mod tests;
