//! The pricing engine: tariffs, session facts and itemised quotes.
//!
//! - [`Tariff`]: one serde JSON model for everything a platform charges —
//!   energy (electricity + service fee per kWh) under time-of-use tiers
//!   (尖峰平谷) with weekday and date overrides, time by power band with
//!   billing steps, free minutes, minimum and cap, the idle fee with grace
//!   minutes, a per-session fee, session minimum/maximum, swap prices per
//!   battery model with station and agent overrides, rental day and month
//!   rates. The model also expresses OCPI 2.2.1 tariffs (see docs/pricing.md).
//! - [`Tariff::validate`] / [`Tariff::compile`]: every check that needs no
//!   session, with a [`TariffError`] naming the field path; the result, a
//!   [`CompiledTariff`], quotes without re-validating.
//! - [`Session`]: the facts (local times, energy as a total or meter
//!   readings, power samples, unplug time, member discount, coupons).
//! - [`CompiledTariff::quote`] / [`quote`]: pure, deterministic pricing into a
//!   [`Quote`] of lines with quantity, unit price and amount, subtotals and a
//!   total; [`Quote::explain`] renders it as text.
//!
//! **Rounding points.** Each charge line's amount is rounded once from its
//! exact value (`quantity × unit price`, ÷ 60 for minutes priced per hour),
//! with the tariff's [`Rounding`](crate::money::Rounding); each percentage
//! discount is rounded once from `base × percent / 100`. Nothing else rounds:
//! minimums, caps and fixed coupons are whole minor units already, they are
//! spread over lines by exact largest-remainder allocation, and the total is
//! the plain sum of the lines. Energy is kept in 0.0001 kWh; an energy
//! reading interpolated between two meter readings is rounded half-up to
//! that resolution.
//!
//! ```
//! use chargeswap_core::tariff::{Tariff, Session};
//! let tariff: Tariff = serde_json::from_str(r#"{
//!   "id": "demo", "currency": "CNY",
//!   "tou": {"ranges": [{"start": "00:00", "end": "08:00", "tier": "valley"},
//!                      {"start": "08:00", "end": "18:00", "tier": "flat"},
//!                      {"start": "18:00", "end": "24:00", "tier": "peak"}]},
//!   "energy": {"tiers": {"valley": {"electricity": "0.30", "service": "0.40"},
//!                        "flat":   {"electricity": "0.60", "service": "0.40"},
//!                        "peak":   {"electricity": "0.90", "service": "0.40"}}}
//! }"#)?;
//! let session: Session = serde_json::from_str(r#"{"service": "charging",
//!   "start": "2025-03-14T17:00:00", "end": "2025-03-14T19:00:00",
//!   "readings": [{"at": "2025-03-14T17:00:00", "kwh": "100.0000"},
//!                {"at": "2025-03-14T18:00:00", "kwh": "101.2000"},
//!                {"at": "2025-03-14T19:00:00", "kwh": "102.0000"}]}"#)?;
//! let q = tariff.compile()?.quote(&session)?;
//! // flat 1.2 kWh × (0.60 + 0.40) = 1.20; peak 0.8 kWh × (0.90 + 0.40) = 1.04
//! assert_eq!(q.total.to_string(), "¥2.24");
//! let sum = q.lines.iter().try_fold(q.total.neg(), |a, l| a.checked_add(l.amount))?;
//! assert!(sum.is_zero());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod compile;
mod engine;
mod error;
mod explain;
mod model;
mod quote;
mod rules;
mod session;
mod sweep;

#[cfg(test)]
mod tests;

pub use compile::{CompiledTariff, MAX_BANDS, MAX_TIERS, ykc_slots};
pub use engine::{ENERGY_DP, MAX_SESSION_SECONDS, quote};
pub use error::TariffError;
pub use model::{
    BandRule, Conditions, DateOverride, DiscountScope, EnergyPricing, Granularity, IdlePricing,
    PowerBand, PriceRule, RentalPricing, RentalRate, RuleEnergy, RuleTime, SwapPricing, Tariff,
    TierPrice, TimePricing, Tou, TouRange, Weekday, WeekdayOverride,
};
pub use quote::{
    BandRef, ChargingSummary, EnergySource, LineKind, LineLabel, LineTerms, Quote, QuoteLine,
    Segment, Service, SkipReason, SkippedCoupon, Subtotals, TierName, Unit,
};
pub use rules::MAX_RULES;
pub use session::{
    ChargingSession, Coupon, Member, MeterReading, PowerSample, RentalSession, Session, SwapSession,
};
