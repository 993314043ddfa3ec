//! Session facts: what happened, as the host knows it. [`Session`] is the
//! input of quoting.
//!
//! All instants are **local wall-clock times of the station**
//! ([`chrono::NaiveDateTime`], `"2025-03-14T18:40:00"`, whole seconds), the
//! same clock the tariff's time-of-use ranges are written in. The host
//! converts from UTC with the station's zone before quoting; no offset is
//! carried and daylight-saving shifts are not modelled (mainland China has
//! none).

use chrono::NaiveDateTime;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::model::DiscountScope;

/// The facts of one priced service, tagged by `service`.
///
/// ```
/// use chargeswap_core::tariff::Session;
/// let s: Session = serde_json::from_str(r#"{
///   "service": "charging",
///   "start": "2025-03-14T18:40:00", "end": "2025-03-14T21:10:00",
///   "energy_kwh": "1.2500"
/// }"#)?;
/// assert!(matches!(s, Session::Charging(_)));
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "service", rename_all = "snake_case")]
pub enum Session {
    /// A charging session (by energy and/or time, with idle time).
    Charging(ChargingSession),
    /// One or more battery swaps.
    Swap(SwapSession),
    /// A battery rental for some months and days.
    Rental(RentalSession),
}

impl Session {
    /// The member discount, if any.
    pub fn member(&self) -> Option<&Member> {
        match self {
            Session::Charging(s) => s.member.as_ref(),
            Session::Swap(s) => s.member.as_ref(),
            Session::Rental(s) => s.member.as_ref(),
        }
    }

    /// The coupons the rider applies.
    pub fn coupons(&self) -> &[Coupon] {
        match self {
            Session::Charging(s) => &s.coupons,
            Session::Swap(s) => &s.coupons,
            Session::Rental(s) => &s.coupons,
        }
    }
}

/// The facts of a charging session.
///
/// Energy comes either as `energy_kwh` (the session total, spread linearly
/// over `start..end`) or as `readings` (the meter register at instants that
/// bracket the session; energy between two readings is spread linearly
/// between them). Not both. See docs/pricing.md, "Splitting energy".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChargingSession {
    /// When charging started (local time).
    pub start: NaiveDateTime,
    /// When charging ended (local time); idle time starts here.
    pub end: NaiveDateTime,
    /// Energy delivered, kWh, up to 4 decimal places.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub energy_kwh: Option<Decimal>,
    /// Meter register readings (cumulative kWh, up to 4 decimal places),
    /// strictly increasing in time; the first at or before `start`, the last
    /// at or after `end`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub readings: Vec<MeterReading>,
    /// Measured power over time: each sample holds until the next; before the
    /// first sample, the first sample's power applies.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub power: Vec<PowerSample>,
    /// When the bike was unplugged / the slot freed (end of idle time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unplugged_at: Option<NaiveDateTime>,
    /// The rider's member-level discount.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member: Option<Member>,
    /// Coupons the rider applies.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub coupons: Vec<Coupon>,
}

/// A meter register reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeterReading {
    /// When (local time).
    pub at: NaiveDateTime,
    /// The register value, kWh.
    pub kwh: Decimal,
}

/// A measured power.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PowerSample {
    /// When (local time).
    pub at: NaiveDateTime,
    /// Watts.
    pub watts: u32,
    /// Current in amperes, summed over phases, up to 3 decimal places; needed
    /// only by rules with current conditions (OCPI `min_current`/`max_current`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amps: Option<Decimal>,
}

/// The facts of a swap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SwapSession {
    /// The battery model swapped.
    pub battery_model: String,
    /// The station (looked up in `swap.stations`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub station: Option<String>,
    /// The station's agent (looked up in `swap.agents`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// Number of swaps (default 1).
    #[serde(default = "one")]
    pub count: u32,
    /// The rider's member-level discount.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member: Option<Member>,
    /// Coupons the rider applies.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub coupons: Vec<Coupon>,
}

fn one() -> u32 {
    1
}

/// The facts of a rental.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RentalSession {
    /// The battery model rented.
    pub battery_model: String,
    /// Whole months, at the month rate.
    #[serde(default)]
    pub months: u32,
    /// Days, at the day rate.
    #[serde(default)]
    pub days: u32,
    /// The rider's member-level discount.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member: Option<Member>,
    /// Coupons the rider applies.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub coupons: Vec<Coupon>,
}

/// A member-level discount, resolved by the host from the rider's level.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Member {
    /// The level's name, shown on the line (e.g. `"gold"`).
    pub level: String,
    /// Percent off, `0 < p ≤ 100`, up to 5 decimal places (`"12"` = 12 % off).
    pub percent_off: Decimal,
}

/// A coupon the rider applies, tagged by `kind`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Coupon {
    /// A fixed amount off (立减).
    Fixed {
        /// Coupon id, shown on the line.
        id: String,
        /// The amount off (in the minor unit).
        amount: Decimal,
        /// The lines it applies to (default `whole`).
        #[serde(default = "whole")]
        scope: DiscountScope,
    },
    /// A percentage off, optionally capped (折扣券).
    Percent {
        /// Coupon id.
        id: String,
        /// Percent off, `0 < p ≤ 100`.
        percent_off: Decimal,
        /// The most it takes off (an amount).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cap: Option<Decimal>,
        /// The lines it applies to (default `whole`).
        #[serde(default = "whole")]
        scope: DiscountScope,
    },
    /// Spend at least `spend`, get `off` off (满减).
    Threshold {
        /// Coupon id.
        id: String,
        /// The least the eligible lines must come to.
        spend: Decimal,
        /// The amount off.
        off: Decimal,
        /// The lines it applies to (default `whole`).
        #[serde(default = "whole")]
        scope: DiscountScope,
    },
}

fn whole() -> DiscountScope {
    DiscountScope::Whole
}

impl Coupon {
    /// The coupon id.
    pub fn id(&self) -> &str {
        match self {
            Coupon::Fixed { id, .. }
            | Coupon::Percent { id, .. }
            | Coupon::Threshold { id, .. } => id,
        }
    }

    /// The lines it applies to.
    pub fn scope(&self) -> DiscountScope {
        match self {
            Coupon::Fixed { scope, .. }
            | Coupon::Percent { scope, .. }
            | Coupon::Threshold { scope, .. } => *scope,
        }
    }

    /// Application order: threshold (满减) first, then fixed, then percent.
    pub(crate) fn order(&self) -> u8 {
        match self {
            Coupon::Threshold { .. } => 0,
            Coupon::Fixed { .. } => 1,
            Coupon::Percent { .. } => 2,
        }
    }
}
