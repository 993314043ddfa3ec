//! The tariff as JSON: [`Tariff`] and its sections. Field-by-field reference
//! with worked examples: docs/pricing.md.
//!
//! These types are plain serde data, validated by [`Tariff::validate`] /
//! [`Tariff::compile`]. Prices are decimal *strings* (`"0.85"`); JSON numbers
//! are refused so no float ever touches a price. Unknown fields are refused
//! too, so a typo such as `free_minute` is an error, not a silent default.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::money::Rounding;

fn default_currency() -> String {
    "CNY".to_owned()
}

/// A tariff: how a platform prices charging, idle time, swaps and rentals at
/// a set of stations.
///
/// Sections are optional; a quote for a service whose section is missing is
/// refused with [`TariffError::NotOffered`](super::TariffError::NotOffered).
///
/// ```
/// use chargeswap_core::tariff::Tariff;
/// let t: Tariff = serde_json::from_str(r#"{
///   "id": "flat-1", "currency": "CNY",
///   "energy": {"tiers": {"flat": {"electricity": "0.60", "service": "0.40"}}}
/// }"#)?;
/// t.validate()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tariff {
    /// An identifier, copied into every quote.
    pub id: String,
    /// A human-readable name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// ISO 4217 code of every price in the tariff (default `"CNY"`).
    #[serde(default = "default_currency")]
    pub currency: String,
    /// How line amounts are rounded to the minor unit (default `half_up`).
    #[serde(default)]
    pub rounding: Rounding,
    /// Which time-of-use tier applies when. Without it the whole day is tier `flat`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tou: Option<Tou>,
    /// Charging by energy: electricity + service fee per kWh, per tier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub energy: Option<EnergyPricing>,
    /// Charging by time: a price per hour by power band.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<TimePricing>,
    /// The idle (occupancy) fee after charging ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle: Option<IdlePricing>,
    /// A fixed fee per charging session (OCPI `FLAT`), an amount in the minor unit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_fee: Option<Decimal>,
    /// The least a charging session costs before discounts (OCPI `min_price`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_price: Option<Decimal>,
    /// The most a charging session costs before discounts (OCPI `max_price`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_price: Option<Decimal>,
    /// Which lines a member-level discount applies to (default `service_only`).
    #[serde(default)]
    pub member_discount_scope: DiscountScope,
    /// Swap prices by battery model, with station and agent overrides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swap: Option<SwapPricing>,
    /// Rental day and month rates by battery model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rental: Option<RentalPricing>,
    /// Conditional prices for charging sessions (OCPI's tariff elements with
    /// restrictions): for each piece of a session, the first rule whose
    /// conditions hold sets the price of each kind it prices, over the
    /// section's price. See [`PriceRule`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<PriceRule>,
}

/// The time-of-use schedule: a default day profile, weekday overrides and
/// date overrides. For a given day the first that applies wins: a date
/// override, else a weekday override, else the default.
///
/// A day profile is given either as `ranges` (`HH:MM`–`HH:MM`, end `24:00`
/// allowed, a range whose end is before its start wraps past midnight) or as
/// `slots` (48 half-hour tier names, as YKC piles carry them). Exactly one of
/// the two.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tou {
    /// The default profile as ranges.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ranges: Option<Vec<TouRange>>,
    /// The default profile as 48 half-hour slots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slots: Option<Vec<String>>,
    /// Profiles for particular weekdays.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub weekday: Vec<WeekdayOverride>,
    /// Profiles for particular dates (holidays, special days).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dates: Vec<DateOverride>,
}

/// One time-of-day range of a day profile: `[start, end)` in local time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TouRange {
    /// `HH:MM`, inclusive.
    pub start: String,
    /// `HH:MM` (or `24:00`), exclusive. Before `start`: the range wraps past midnight.
    pub end: String,
    /// The tier name (`sharp`, `peak`, `flat`, `valley` or any tier of `energy.tiers`).
    pub tier: String,
}

/// A day profile for some weekdays.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeekdayOverride {
    /// The weekdays it applies to.
    pub days: Vec<Weekday>,
    /// The profile as ranges.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ranges: Option<Vec<TouRange>>,
    /// The profile as 48 half-hour slots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slots: Option<Vec<String>>,
}

/// A day profile for a span of dates, `from` to `to` inclusive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DateOverride {
    /// First date (`YYYY-MM-DD`).
    pub from: NaiveDate,
    /// Last date, inclusive (default: `from`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<NaiveDate>,
    /// The profile as ranges.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ranges: Option<Vec<TouRange>>,
    /// The profile as 48 half-hour slots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slots: Option<Vec<String>>,
}

/// A day of the week.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[allow(missing_docs)]
pub enum Weekday {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

impl Weekday {
    /// Monday = 0 … Sunday = 6.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The lower-case three-letter name.
    pub fn name(self) -> &'static str {
        match self {
            Weekday::Mon => "mon",
            Weekday::Tue => "tue",
            Weekday::Wed => "wed",
            Weekday::Thu => "thu",
            Weekday::Fri => "fri",
            Weekday::Sat => "sat",
            Weekday::Sun => "sun",
        }
    }
}

/// Charging by energy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnergyPricing {
    /// Prices per kWh by tier name. Every tier the `tou` schedule uses must be here.
    pub tiers: BTreeMap<String, TierPrice>,
    /// Bill energy in steps of this many watt-hours (OCPI `step_size` of
    /// `ENERGY`): the session's billed energy is rounded up to whole steps
    /// and the extra is billed at the price in force at the end. Absent:
    /// energy is billed as measured, to 0.1 Wh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_wh: Option<u32>,
}

/// The per-kWh prices of one tier; unit prices with up to 5 decimal places.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierPrice {
    /// Electricity fee (电费) per kWh.
    pub electricity: Decimal,
    /// Service fee (服务费) per kWh.
    pub service: Decimal,
}

/// Charging by time, as e-bike piles and charging cabinets price it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimePricing {
    /// Price per hour by power band, ascending, from 0 W, the last open-ended.
    pub bands: Vec<PowerBand>,
    /// How a billing step picks its band (default `highest_in_step`).
    #[serde(default)]
    pub band_rule: BandRule,
    /// Billing step (default `per_minute`).
    #[serde(default)]
    pub granularity: Granularity,
    /// Minutes from the start of charging that are not billed.
    #[serde(default)]
    pub free_minutes: u32,
    /// The least the time fee of a billed session comes to (an amount).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum: Option<Decimal>,
    /// The most the time fee of a session comes to (an amount).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cap: Option<Decimal>,
}

/// One power band: `[from_w, to_w)` watts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PowerBand {
    /// Lowest power of the band, inclusive.
    pub from_w: u32,
    /// Power where the next band starts (exclusive); absent on the last band.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_w: Option<u32>,
    /// Price per hour (a unit price, up to 5 decimal places).
    pub per_hour: Decimal,
}

/// How charging time is attributed to prices (power bands and rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BandRule {
    /// Each billing step is billed at the highest band its measured power reached.
    #[default]
    HighestInStep,
    /// The whole session is billed at the highest band its measured power reached.
    HighestInSession,
    /// OCPI's rule: every second is billed at the price in force in that
    /// second (its power band, or a rule's time price); only the total is
    /// rounded up to whole steps, the extra billed at the price in force at
    /// the end. Lines count seconds. Required when rules price time.
    AsMeasured,
}

/// The billing step of time-based fees. Billable time is rounded *up* to
/// whole steps ("per started half hour").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Granularity {
    /// Per started minute.
    #[default]
    PerMinute,
    /// Per started 30 minutes.
    PerStartedHalfHour,
    /// Per started hour.
    PerStartedHour,
    /// Per started N minutes (1 ≤ N ≤ 1440).
    StepMinutes(u32),
    /// Per started N seconds (OCPI `step_size` of `TIME` and `PARKING_TIME`;
    /// 1 ≤ N ≤ 86 400). Lines then count seconds.
    StepSeconds(u32),
}

impl Granularity {
    /// The step in seconds.
    pub fn seconds(self) -> u32 {
        match self {
            Granularity::PerMinute => 60,
            Granularity::PerStartedHalfHour => 1800,
            Granularity::PerStartedHour => 3600,
            Granularity::StepMinutes(n) => n.saturating_mul(60),
            Granularity::StepSeconds(n) => n,
        }
    }

    /// The step in whole minutes, `None` for a [`Granularity::StepSeconds`] step.
    pub fn minutes(self) -> Option<u32> {
        match self {
            Granularity::StepSeconds(_) => None,
            g => Some(g.seconds() / 60),
        }
    }
}

/// The idle (occupancy, 占位) fee: charged for the time a bike stays plugged
/// in after charging ended, beyond the grace minutes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdlePricing {
    /// Free minutes after charging ends.
    #[serde(default)]
    pub grace_minutes: u32,
    /// Price per hour of billable idle time (a unit price).
    pub per_hour: Decimal,
    /// Billing step (default `per_minute`).
    #[serde(default)]
    pub granularity: Granularity,
    /// The most the idle fee of one session comes to (an amount).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cap: Option<Decimal>,
}

/// Which lines a discount applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiscountScope {
    /// Every line except the electricity fee and the idle fee: service fee,
    /// time fee, session fee, minimum top-ups, swap and rental prices.
    #[default]
    ServiceOnly,
    /// Every line.
    Whole,
}

/// Swap prices by battery model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SwapPricing {
    /// Price per swap by battery model.
    pub prices: BTreeMap<String, Decimal>,
    /// Per-station overrides: station id → model → price. Wins over agents.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub stations: BTreeMap<String, BTreeMap<String, Decimal>>,
    /// Per-agent overrides: agent id → model → price.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub agents: BTreeMap<String, BTreeMap<String, Decimal>>,
}

/// Rental rates by battery model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RentalPricing {
    /// Rates by battery model.
    pub rates: BTreeMap<String, RentalRate>,
}

/// The rental rates of one battery model; at least one of the two.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RentalRate {
    /// Price per day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub day: Option<Decimal>,
    /// Price per month.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub month: Option<Decimal>,
}

/// A conditional price (OCPI's `TariffElement` with its `TariffRestrictions`).
///
/// A charging session — charging, then idle time — is cut into pieces in
/// which every condition is constant. In each piece, for each kind of price
/// (`energy`, `time`, `idle`, `session_fee`), the **first** rule in
/// `rules` whose conditions all hold and that prices that kind sets the
/// price; when none does, the section's price applies (the tier's energy
/// price, the band's time price, `idle.per_hour`, `session_fee`), and
/// without a section that kind costs nothing in that piece.
///
/// ```
/// use chargeswap_core::tariff::{Tariff, Session};
/// // The first kWh is free, then 1.00 per kWh.
/// let t: Tariff = serde_json::from_str(r#"{"id": "first-kwh-free", "currency": "CNY",
///   "energy": {"tiers": {"flat": {"electricity": "0.60", "service": "0.40"}}},
///   "rules": [{"name": "first kWh", "when": {"max_kwh": "1"},
///              "energy": {"electricity": "0", "service": "0"}}]}"#)?;
/// let s: Session = serde_json::from_str(r#"{"service": "charging",
///   "start": "2025-03-14T20:00:00", "end": "2025-03-14T21:00:00", "energy_kwh": "3.5"}"#)?;
/// let q = t.compile()?.quote(&s)?;
/// // 1 kWh free, 2.5 kWh × (0.60 + 0.40) = 2.50
/// assert_eq!(q.total.to_string(), "¥2.50");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceRule {
    /// A label shown on the lines it prices (default `rules[i]`); unique.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// When the rule holds; every condition given must hold (none: always).
    #[serde(default)]
    pub when: Conditions,
    /// Energy prices per kWh while the rule holds (OCPI `ENERGY`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub energy: Option<RuleEnergy>,
    /// Time price per hour of charging while the rule holds (OCPI `TIME`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<RuleTime>,
    /// Idle price per hour while the rule holds (OCPI `PARKING_TIME`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle: Option<RuleTime>,
    /// The per-session fee when the rule holds (OCPI `FLAT`), an amount.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_fee: Option<Decimal>,
}

/// The energy prices of a rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleEnergy {
    /// Electricity fee (电费) per kWh.
    pub electricity: Decimal,
    /// Service fee (服务费) per kWh.
    pub service: Decimal,
    /// Billing step in Wh when the session's energy ends under this rule
    /// (default `energy.step_wh`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_wh: Option<u32>,
}

/// A per-hour price of a rule (time or idle).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleTime {
    /// Price per hour (a unit price).
    pub per_hour: Decimal,
    /// Billing step when the billed time ends under this rule (default: the
    /// section's `granularity`, per minute without a section).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub granularity: Option<Granularity>,
}

/// The conditions of a [`PriceRule`] (OCPI's `TariffRestrictions`). Lower
/// bounds are inclusive, upper bounds exclusive: a rule with `max_kwh: "1"`
/// holds while less than 1 kWh has been charged.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Conditions {
    /// Time-of-use tiers of the `tou` schedule in which the rule holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tiers: Option<Vec<String>>,
    /// Time of day from which it holds, `"HH:MM"` (inclusive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    /// Time of day until which it holds, `"HH:MM"` up to `"24:00"`
    /// (exclusive); before `start_time`, the window wraps past midnight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<String>,
    /// Weekdays on which it holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days: Option<Vec<Weekday>>,
    /// First date on which it holds (inclusive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_date: Option<NaiveDate>,
    /// Last date on which it holds (inclusive; OCPI's `end_date` − 1 day).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_date: Option<NaiveDate>,
    /// Energy charged so far in the session, kWh, from which it holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_kwh: Option<Decimal>,
    /// Energy charged so far, kWh, until which it holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_kwh: Option<Decimal>,
    /// Seconds since the session's `start` from which it holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_duration_s: Option<u32>,
    /// Seconds since the session's `start` until which it holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_duration_s: Option<u32>,
    /// Seconds of idle time (since the session's `end`) from which it holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_idle_s: Option<u32>,
    /// Seconds of idle time until which it holds (0 while charging).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_idle_s: Option<u32>,
    /// Measured power, watts, from which it holds (0 W while idle).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_power_w: Option<u32>,
    /// Measured power, watts, below which it holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_power_w: Option<u32>,
    /// Measured current (sum over phases), amperes, from which it holds (0 A while idle).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_current_a: Option<Decimal>,
    /// Measured current, amperes, below which it holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_current_a: Option<Decimal>,
}
