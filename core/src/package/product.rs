//! The catalog: [`Product`] and its policies, eligibility and derived rates.

use chrono::{Months, NaiveDateTime, TimeDelta};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::PackageError;
use crate::money::{Currency, Money, Rounding};

/// How long one term of a package lasts once it starts.
///
/// Serialized as `{"days": 30}` or `{"months": 1}`. Days are 24-hour periods
/// from the start; months are calendar months (31 January + 1 month is the
/// last day of February, at the same time of day).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Validity {
    /// A number of 24-hour days.
    Days(u32),
    /// A number of calendar months.
    Months(u32),
}

impl Validity {
    /// The end of a term of this validity starting at `start`.
    ///
    /// ```
    /// use chargeswap_core::package::Validity;
    /// use chrono::NaiveDateTime;
    /// let t: NaiveDateTime = "2026-01-31T10:00:00".parse().unwrap();
    /// assert_eq!(Validity::Months(1).end_from(t)?.to_string(), "2026-02-28 10:00:00");
    /// assert_eq!(Validity::Days(3).end_from(t)?.to_string(), "2026-02-03 10:00:00");
    /// # Ok::<(), chargeswap_core::package::PackageError>(())
    /// ```
    pub fn end_from(self, start: NaiveDateTime) -> Result<NaiveDateTime, PackageError> {
        let end = match self {
            Validity::Days(n) => {
                TimeDelta::try_days(i64::from(n)).and_then(|d| start.checked_add_signed(d))
            }
            Validity::Months(n) => start.checked_add_months(Months::new(n)),
        };
        end.ok_or_else(|| PackageError::Overflow {
            operation: "validity end".to_owned(),
        })
    }

    /// The number of days the derived daily rate divides the price by:
    /// `n` for `Days(n)`, `30 × n` for `Months(n)` (a documented convention,
    /// so that a monthly package has one daily rate whatever the month).
    pub fn rate_days(self) -> u32 {
        match self {
            Validity::Days(n) => n,
            Validity::Months(n) => n.saturating_mul(30),
        }
    }

    fn is_empty(self) -> bool {
        matches!(self, Validity::Days(0) | Validity::Months(0))
    }
}

/// The swap entitlement of a product.
///
/// Serialized as `"none"`, `"unlimited"` or `{"limited": 30}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Swaps {
    /// No swaps (a rental-only package).
    #[default]
    None,
    /// This many swaps per term.
    Limited(u32),
    /// Unlimited swaps within the term (a per-day cap may still apply).
    Unlimited,
}

/// What kind of package a product is; derived from its entitlements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PackageKind {
    /// Swaps only (换电套餐).
    Swap,
    /// A rented battery only (租电套餐).
    Rental,
    /// A rented battery and swaps (租换一体).
    RentalSwap,
}

/// Who may buy a product.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Audience {
    /// Anyone.
    #[default]
    Any,
    /// Only riders who have never bought a package (新人专享).
    NewRiders,
    /// Only riders who have bought a package before (续费专享).
    Renewals,
}

/// Eligibility rules of a product. Empty lists mean "any".
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Eligibility {
    /// New riders only, renewals only, or anyone.
    #[serde(default)]
    pub audience: Audience,
    /// The rider must belong to at least one of these groups (empty: any rider).
    #[serde(default)]
    pub rider_groups: Vec<String>,
    /// The rider's battery model must be one of these (empty: any model).
    #[serde(default)]
    pub battery_models: Vec<String>,
}

/// Why a rider is not eligible for a product.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ineligibility {
    /// The product is for new riders and the rider has bought a package before.
    NewRidersOnly,
    /// The product is for renewals and the rider has never bought a package.
    RenewalsOnly,
    /// The rider is in none of the product's groups.
    RiderGroup,
    /// The rider's battery model is not one the product serves.
    BatteryModel,
}

/// What eligibility rules need to know about a rider.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RiderProfile {
    /// Packages the rider bought before this purchase (0 for a new rider).
    #[serde(default)]
    pub packages_bought: u32,
    /// Groups the rider belongs to (e.g. a delivery fleet).
    #[serde(default)]
    pub groups: Vec<String>,
    /// The battery model the rider's bike uses, if known.
    #[serde(default)]
    pub battery_model: Option<String>,
}

impl Eligibility {
    /// Checks a rider against the rules; the first rule broken is reported.
    ///
    /// ```
    /// use chargeswap_core::package::{Audience, Eligibility, Ineligibility, RiderProfile};
    /// let e = Eligibility { audience: Audience::NewRiders, ..Default::default() };
    /// assert_eq!(e.check(&RiderProfile::default()), Ok(()));
    /// let old = RiderProfile { packages_bought: 2, ..Default::default() };
    /// assert_eq!(e.check(&old), Err(Ineligibility::NewRidersOnly));
    /// ```
    pub fn check(&self, rider: &RiderProfile) -> Result<(), Ineligibility> {
        match self.audience {
            Audience::NewRiders if rider.packages_bought > 0 => {
                return Err(Ineligibility::NewRidersOnly);
            }
            Audience::Renewals if rider.packages_bought == 0 => {
                return Err(Ineligibility::RenewalsOnly);
            }
            _ => {}
        }
        if !self.rider_groups.is_empty()
            && !rider.groups.iter().any(|g| self.rider_groups.contains(g))
        {
            return Err(Ineligibility::RiderGroup);
        }
        if !self.battery_models.is_empty()
            && !rider
                .battery_model
                .as_ref()
                .is_some_and(|m| self.battery_models.contains(m))
        {
            return Err(Ineligibility::BatteryModel);
        }
        Ok(())
    }
}

/// When a purchased package starts.
///
/// JSON (and other human-readable formats): `{"mode": "immediate"}`,
/// `{"mode": "first_use", "auto_after_days": 7}`; binary formats such as
/// postcard (state snapshots) use a plain externally tagged form, since
/// they cannot read an internally tagged one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Activation {
    /// At purchase (the package is pending only for the instant of purchase).
    #[default]
    Immediate,
    /// At the first swap or an explicit activation (e.g. battery pick-up),
    /// or automatically `auto_after_days` days after purchase if set.
    FirstUse {
        /// Days after purchase when the package starts by itself.
        auto_after_days: Option<u32>,
    },
}

/// [`Activation`] in human-readable formats.
#[derive(Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case", deny_unknown_fields)]
enum ActivationText {
    Immediate,
    FirstUse {
        #[serde(default)]
        auto_after_days: Option<u32>,
    },
}

/// [`Activation`] in binary formats.
#[derive(Serialize, Deserialize)]
enum ActivationBinary {
    Immediate,
    FirstUse(Option<u32>),
}

impl Serialize for Activation {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match (*self, s.is_human_readable()) {
            (Activation::Immediate, true) => ActivationText::Immediate.serialize(s),
            (Activation::FirstUse { auto_after_days }, true) => {
                ActivationText::FirstUse { auto_after_days }.serialize(s)
            }
            (Activation::Immediate, false) => ActivationBinary::Immediate.serialize(s),
            (Activation::FirstUse { auto_after_days }, false) => {
                ActivationBinary::FirstUse(auto_after_days).serialize(s)
            }
        }
    }
}

impl<'de> Deserialize<'de> for Activation {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Activation, D::Error> {
        Ok(if d.is_human_readable() {
            match ActivationText::deserialize(d)? {
                ActivationText::Immediate => Activation::Immediate,
                ActivationText::FirstUse { auto_after_days } => {
                    Activation::FirstUse { auto_after_days }
                }
            }
        } else {
            match ActivationBinary::deserialize(d)? {
                ActivationBinary::Immediate => Activation::Immediate,
                ActivationBinary::FirstUse(auto_after_days) => {
                    Activation::FirstUse { auto_after_days }
                }
            }
        })
    }
}

/// How a renewal combines with the current term.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RenewalMode {
    /// 顺延: the renewal merges into the current term: its end moves out by
    /// one validity and the renewal's swaps are added to what is left.
    #[default]
    Extend,
    /// 叠加: the renewal is queued as its own term, starting when the last
    /// term ends, with its own swap quota; swaps left in a term lapse when it ends.
    Stack,
}

fn yes() -> bool {
    true
}

/// Renewal rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenewalPolicy {
    /// Whether the product can be renewed at all (default true).
    #[serde(default = "yes")]
    pub allowed: bool,
    /// Extend (default) or stack.
    #[serde(default)]
    pub mode: RenewalMode,
    /// Renewal opens this many days before the package's end (none: any time).
    #[serde(default)]
    pub earliest_days_before_expiry: Option<u32>,
    /// Stack mode: at most this many terms queued after the current one.
    #[serde(default)]
    pub max_queued_terms: Option<u32>,
}

impl Default for RenewalPolicy {
    fn default() -> Self {
        RenewalPolicy {
            allowed: true,
            mode: RenewalMode::Extend,
            earliest_days_before_expiry: None,
            max_queued_terms: None,
        }
    }
}

fn one() -> u32 {
    1
}

/// Freeze (冻结) rules: a frozen package's time stands still for a daily fee.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FreezePolicy {
    /// Fee per started day frozen.
    pub fee_per_day: Money,
    /// Fewest days one freeze may ask for (default 1).
    #[serde(default = "one")]
    pub min_days: u32,
    /// Most days one freeze may ask for.
    pub max_days: u32,
    /// Freezes allowed over the package's life (default 1).
    #[serde(default = "one")]
    pub max_times: u32,
}

/// Overdue (逾期) rules: after the package ends and a grace period passes,
/// a fee accrues per started day until the rider renews or returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverduePolicy {
    /// Hours after the end during which no fee accrues.
    #[serde(default)]
    pub grace_hours: u32,
    /// Fee per started day after the grace period.
    pub fee_per_day: Money,
    /// The most the overdue fee can reach, if capped.
    #[serde(default)]
    pub fee_cap: Option<Money>,
}

/// Refund rules: the unused part is refundable within a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefundPolicy {
    /// Days after the package's most recent payment (purchase, renewal or
    /// change) during which a refund may be asked for; the end is inclusive.
    pub window_days: u32,
}

/// A product of the catalog (套餐).
///
/// Only `id`, `price` and `validity` are required in JSON; the entitlements
/// default to none, so a product must set `swaps` and/or `rental`.
///
/// ```
/// use chargeswap_core::package::{PackageKind, Product};
/// let p: Product = serde_json::from_str(r#"{
///     "id": "swap-30", "price": "150.00", "validity": {"days": 30},
///     "swaps": {"limited": 30}, "daily_swap_cap": 4
/// }"#).unwrap();
/// p.validate()?;
/// assert_eq!(p.kind(), PackageKind::Swap);
/// assert_eq!(p.unit_price()?.unwrap().to_string(), "¥5.00");   // 150 / 30
/// assert_eq!(p.daily_rate()?.to_string(), "¥5.00");            // 150 / 30 days
/// # Ok::<(), chargeswap_core::package::PackageError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Product {
    /// Catalog id.
    pub id: String,
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// List price of one term.
    pub price: Money,
    /// Length of one term.
    pub validity: Validity,
    /// Swap entitlement per term.
    #[serde(default)]
    pub swaps: Swaps,
    /// Whether a battery is rented for the term.
    #[serde(default)]
    pub rental: bool,
    /// At most this many swaps per calendar day.
    #[serde(default)]
    pub daily_swap_cap: Option<u32>,
    /// Deposit the rider must hold while the package runs (paid through core::deposit).
    #[serde(default)]
    pub deposit: Option<Money>,
    /// Who may buy it.
    #[serde(default)]
    pub eligibility: Eligibility,
    /// When it starts.
    #[serde(default)]
    pub activation: Activation,
    /// Renewal rules.
    #[serde(default)]
    pub renewal: RenewalPolicy,
    /// Freeze rules; none: cannot be frozen.
    #[serde(default)]
    pub freeze: Option<FreezePolicy>,
    /// Overdue rules; none: no overdue fee.
    #[serde(default)]
    pub overdue: Option<OverduePolicy>,
    /// Refund rules; none: not refundable.
    #[serde(default)]
    pub refund: Option<RefundPolicy>,
    /// Price of one swap used, for refunds of count-limited packages
    /// (default: price ÷ swaps, rounded half up to the fen).
    #[serde(default)]
    pub unit_price: Option<Money>,
    /// Price of one day used, for refunds of time-limited packages
    /// (default: price ÷ [`Validity::rate_days`], rounded half up to the fen).
    #[serde(default)]
    pub daily_rate: Option<Money>,
}

fn invalid(field: &str, expected: &str) -> PackageError {
    PackageError::InvalidProduct {
        field: field.to_owned(),
        expected: expected.to_owned(),
    }
}

/// `amount ÷ n`, rounded half up to the minor unit: a documented rounding point.
fn divide(amount: Money, n: u32, what: &str) -> Result<Money, PackageError> {
    if n == 0 {
        return Err(invalid(what, "a divisor above zero"));
    }
    let exact = amount
        .amount()
        .checked_div(Decimal::from(n))
        .ok_or_else(|| PackageError::Overflow {
            operation: what.to_owned(),
        })?;
    let rounded = Rounding::HalfUp.round_decimal(exact, amount.currency().minor_units());
    Money::new(rounded, amount.currency()).map_err(|_| PackageError::Overflow {
        operation: what.to_owned(),
    })
}

impl Product {
    /// The kind, from the entitlements.
    pub fn kind(&self) -> PackageKind {
        match (self.rental, self.swaps) {
            (true, Swaps::None) => PackageKind::Rental,
            (true, _) => PackageKind::RentalSwap,
            (false, _) => PackageKind::Swap,
        }
    }

    /// The currency of the product (that of its price).
    pub fn currency(&self) -> Currency {
        self.price.currency()
    }

    /// Checks that the product is usable: it entitles to something, counts and
    /// lengths are above zero, amounts are zero or more, in the price's currency
    /// and whole fen.
    pub fn validate(&self) -> Result<(), PackageError> {
        if self.id.is_empty() {
            return Err(invalid("id", "a non-empty product id"));
        }
        if self.swaps == Swaps::None && !self.rental {
            return Err(invalid(
                "swaps",
                "an entitlement: \"swaps\" limited or unlimited, or \"rental\": true",
            ));
        }
        if self.swaps == Swaps::Limited(0) {
            return Err(invalid("swaps.limited", "a swap count above zero"));
        }
        if self.validity.is_empty() {
            return Err(invalid("validity", "a validity above zero days or months"));
        }
        if self.daily_swap_cap == Some(0) {
            return Err(invalid("daily_swap_cap", "a cap above zero, or no cap"));
        }
        if self.daily_swap_cap.is_some() && self.swaps == Swaps::None {
            return Err(invalid(
                "daily_swap_cap",
                "no cap on a product without swaps",
            ));
        }
        self.check_money("price", Some(self.price))?;
        self.check_money("deposit", self.deposit)?;
        self.check_money("unit_price", self.unit_price)?;
        self.check_money("daily_rate", self.daily_rate)?;
        if let Some(f) = &self.freeze {
            self.check_money("freeze.fee_per_day", Some(f.fee_per_day))?;
            if f.min_days == 0 || f.max_days < f.min_days {
                return Err(invalid(
                    "freeze",
                    "min_days at least 1 and max_days at least min_days",
                ));
            }
            if f.max_times == 0 {
                return Err(invalid(
                    "freeze.max_times",
                    "at least 1 (or no freeze policy)",
                ));
            }
        }
        if let Some(o) = &self.overdue {
            self.check_money("overdue.fee_per_day", Some(o.fee_per_day))?;
            self.check_money("overdue.fee_cap", o.fee_cap)?;
        }
        if self.renewal.max_queued_terms.is_some() && self.renewal.mode != RenewalMode::Stack {
            return Err(invalid(
                "renewal.max_queued_terms",
                "only with \"mode\": \"stack\"",
            ));
        }
        Ok(())
    }

    fn check_money(&self, field: &str, m: Option<Money>) -> Result<(), PackageError> {
        let Some(m) = m else { return Ok(()) };
        if m.currency() != self.currency() {
            return Err(PackageError::CurrencyMismatch {
                field: field.to_owned(),
                expected: self.currency(),
                got: m.currency(),
            });
        }
        if m.is_negative() {
            return Err(invalid(field, "an amount of zero or more"));
        }
        if !m.is_minor_exact() {
            return Err(invalid(
                field,
                "a whole number of fen (at most 2 decimal places)",
            ));
        }
        Ok(())
    }

    /// The price of one swap for refunds: `unit_price`, or price ÷ swaps
    /// rounded half up to the fen. `None` unless swaps are limited.
    pub fn unit_price(&self) -> Result<Option<Money>, PackageError> {
        match (self.unit_price, self.swaps) {
            (_, Swaps::None | Swaps::Unlimited) => Ok(None),
            (Some(u), _) => Ok(Some(u)),
            (None, Swaps::Limited(n)) => divide(self.price, n, "unit price").map(Some),
        }
    }

    /// The price of one day for refunds: `daily_rate`, or price ÷
    /// [`Validity::rate_days`] rounded half up to the fen.
    pub fn daily_rate(&self) -> Result<Money, PackageError> {
        match self.daily_rate {
            Some(r) => Ok(r),
            None => divide(self.price, self.validity.rate_days(), "daily rate"),
        }
    }

    /// Checks a rider against the eligibility rules, as a [`PackageError`].
    pub fn check_eligible(&self, rider: &RiderProfile) -> Result<(), PackageError> {
        self.eligibility
            .check(rider)
            .map_err(|reason| PackageError::NotEligible {
                product: self.id.clone(),
                reason,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Product {
        serde_json::from_str(
            r#"{"id":"p","price":"100.00","validity":{"days":30},"swaps":{"limited":3}}"#,
        )
        .unwrap()
    }

    #[test]
    fn kinds_and_rates() {
        let mut p = base();
        assert_eq!(p.kind(), PackageKind::Swap);
        assert_eq!(p.unit_price().unwrap().unwrap().to_string(), "¥33.33");
        assert_eq!(p.daily_rate().unwrap().to_string(), "¥3.33");
        p.rental = true;
        assert_eq!(p.kind(), PackageKind::RentalSwap);
        p.swaps = Swaps::None;
        assert_eq!(p.kind(), PackageKind::Rental);
        assert_eq!(p.unit_price().unwrap(), None);
        p.validity = Validity::Months(1);
        assert_eq!(p.daily_rate().unwrap().to_string(), "¥3.33");
        p.daily_rate = Some("4".parse().unwrap());
        assert_eq!(p.daily_rate().unwrap().to_string(), "¥4.00");
    }

    #[test]
    fn half_up_tie_is_exact() {
        // 0.045 / 9 = 0.005 exactly: half up gives 0.01 (an inexact 1/9 would give 0.00).
        let mut p = base();
        p.price = "0.09".parse().unwrap();
        p.swaps = Swaps::Limited(18);
        assert_eq!(p.unit_price().unwrap().unwrap().to_string(), "¥0.01");
    }

    #[test]
    fn validation_errors() {
        let mut p = base();
        p.validate().unwrap();
        p.swaps = Swaps::None;
        assert!(
            matches!(p.validate(), Err(PackageError::InvalidProduct { field, .. }) if field == "swaps")
        );
        p.swaps = Swaps::Limited(0);
        assert!(p.validate().is_err());
        let mut p = base();
        p.validity = Validity::Months(0);
        assert!(p.validate().is_err());
        let mut p = base();
        p.price = "-1".parse().unwrap();
        assert!(p.validate().is_err());
        let mut p = base();
        p.price = "1.001".parse().unwrap();
        assert!(p.validate().is_err());
        let mut p = base();
        p.deposit = Some("1 USD".parse().unwrap());
        assert!(matches!(
            p.validate(),
            Err(PackageError::CurrencyMismatch { .. })
        ));
        let mut p = base();
        p.daily_swap_cap = Some(0);
        assert!(p.validate().is_err());
        let mut p = base();
        p.freeze = Some(FreezePolicy {
            fee_per_day: "1".parse().unwrap(),
            min_days: 5,
            max_days: 3,
            max_times: 1,
        });
        assert!(p.validate().is_err());
        let mut p = base();
        p.renewal.max_queued_terms = Some(1);
        assert!(p.validate().is_err());
        let mut p = base();
        p.id.clear();
        assert!(p.validate().is_err());
        assert!(
            serde_json::from_str::<Product>(
                r#"{"id":"p","price":"1","validity":{"days":1},"swapz":"unlimited"}"#
            )
            .is_err()
        );
    }

    #[test]
    fn eligibility_rules() {
        let e = Eligibility {
            audience: Audience::Renewals,
            rider_groups: vec!["fleet-a".into()],
            battery_models: vec!["48V20Ah".into()],
        };
        let mut r = RiderProfile::default();
        assert_eq!(e.check(&r), Err(Ineligibility::RenewalsOnly));
        r.packages_bought = 1;
        assert_eq!(e.check(&r), Err(Ineligibility::RiderGroup));
        r.groups = vec!["x".into(), "fleet-a".into()];
        assert_eq!(e.check(&r), Err(Ineligibility::BatteryModel));
        r.battery_model = Some("60V".into());
        assert_eq!(e.check(&r), Err(Ineligibility::BatteryModel));
        r.battery_model = Some("48V20Ah".into());
        assert_eq!(e.check(&r), Ok(()));
    }

    #[test]
    fn activation_reads_json_and_round_trips_postcard() {
        let a: Activation =
            serde_json::from_str(r#"{"mode": "first_use", "auto_after_days": 3}"#).unwrap();
        assert_eq!(
            a,
            Activation::FirstUse {
                auto_after_days: Some(3)
            }
        );
        assert_eq!(
            serde_json::to_string(&Activation::Immediate).unwrap(),
            r#"{"mode":"immediate"}"#
        );
        assert!(serde_json::from_str::<Activation>(r#"{"mode": "later"}"#).is_err());
        let mut p = base();
        p.activation = a;
        let bytes = postcard::to_allocvec(&p).unwrap();
        assert_eq!(postcard::from_bytes::<Product>(&bytes).unwrap(), p);
    }

    #[test]
    fn validity_ends() {
        let t: NaiveDateTime = "2024-01-31T08:00:00".parse().unwrap();
        assert_eq!(
            Validity::Months(1).end_from(t).unwrap().to_string(),
            "2024-02-29 08:00:00"
        );
        assert!(
            Validity::Days(u32::MAX)
                .end_from(NaiveDateTime::MAX)
                .is_err()
        );
    }
}
