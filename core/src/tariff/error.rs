//! [`TariffError`]: the one error type of the pricing engine.

use serde::{Deserialize, Serialize};

use crate::money::MoneyError;

/// Everything that can go wrong validating a tariff or quoting a session.
///
/// Every variant names the offending field by its path in the JSON input:
/// tariff fields as `tou.weekday[2].ranges[1].start`, session facts as
/// `session.readings[3].kwh`. Serialized with a `kind` tag, like every error
/// of the library.
///
/// ```
/// use chargeswap_core::tariff::{Tariff, TariffError};
/// let t: Tariff = serde_json::from_str(r#"{
///   "id": "gap", "currency": "CNY",
///   "tou": {"ranges": [{"start": "00:00", "end": "08:00", "tier": "valley"},
///                      {"start": "09:00", "end": "24:00", "tier": "flat"}]}
/// }"#).unwrap();
/// let err = t.validate().unwrap_err();
/// assert_eq!(err, TariffError::TouGap {
///     path: "tou.ranges[1].start".into(), from: "08:00".into(), to: "09:00".into() });
/// assert_eq!(err.to_string(),
///     "tou.ranges[1].start: the time-of-use day is not covered from 08:00 to 09:00; \
///      every minute of the day needs exactly one tier");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TariffError {
    /// A value that is not acceptable for its field.
    #[error("{path}: {value:?} is not valid; expected {expected}")]
    InvalidValue {
        /// Path of the field.
        path: String,
        /// The value given (as text).
        value: String,
        /// What the field accepts.
        expected: String,
    },
    /// A price or amount below zero.
    #[error("{path}: {value} is negative; prices and amounts must be zero or more")]
    NegativePrice {
        /// Path of the field.
        path: String,
        /// The value given.
        value: String,
    },
    /// More decimal places than the field allows (5 for unit prices, the
    /// currency's minor unit for amounts, 4 for kWh).
    #[error("{path}: {value} has {scale} decimal places; at most {max} are allowed here")]
    TooManyDecimals {
        /// Path of the field.
        path: String,
        /// The value given.
        value: String,
        /// Its number of decimal places.
        scale: u32,
        /// The maximum for this field.
        max: u32,
    },
    /// Not a known ISO 4217 currency code.
    #[error("{path}: unknown currency code {code:?}; expected an ISO 4217 code such as \"CNY\"")]
    UnknownCurrency {
        /// Path of the field.
        path: String,
        /// The code given.
        code: String,
    },
    /// A time-of-use tier that has no price in `energy.tiers`.
    #[error(
        "{path}: tier {tier:?} is not defined; define it under energy.tiers or use one of: {known}"
    )]
    UnknownTier {
        /// Path of the field that names the tier.
        path: String,
        /// The tier name.
        tier: String,
        /// The tiers that are defined, comma-separated.
        known: String,
    },
    /// Part of the day without a tier.
    #[error(
        "{path}: the time-of-use day is not covered from {from} to {to}; every minute of the day needs exactly one tier"
    )]
    TouGap {
        /// Path of the range next to the gap.
        path: String,
        /// Start of the uncovered time (HH:MM).
        from: String,
        /// End of the uncovered time (HH:MM).
        to: String,
    },
    /// Two ranges that claim the same time.
    #[error(
        "{path}: this range overlaps {other} from {from} to {to}; every minute of the day needs exactly one tier"
    )]
    TouOverlap {
        /// Path of the later range.
        path: String,
        /// Path of the range it overlaps.
        other: String,
        /// Start of the overlap (HH:MM).
        from: String,
        /// End of the overlap (HH:MM).
        to: String,
    },
    /// A `slots` list that is not 48 half-hours long.
    #[error("{path}: {count} slots given; a day has exactly 48 half-hour slots (YKC style)")]
    WrongSlotCount {
        /// Path of the slots list.
        path: String,
        /// How many were given.
        count: usize,
    },
    /// A weekday that two overrides both claim.
    #[error("{path}: {day} already has an override in {other}; each weekday may appear once")]
    DuplicateWeekday {
        /// Path of the second mention.
        path: String,
        /// The weekday.
        day: String,
        /// Path of the first mention.
        other: String,
    },
    /// Date overrides that cover the same day.
    #[error("{path}: the dates overlap {other} on {date}; each date may have one override")]
    OverlappingDates {
        /// Path of the later override.
        path: String,
        /// Path of the earlier override.
        other: String,
        /// The first date both cover.
        date: String,
    },
    /// Power bands that leave some power without a price.
    #[error("{path}: no power band covers {from_w} W to {}; bands must run from 0 W without gaps and the last must be open-ended (no to_w)", to_w.map_or_else(|| "any higher power".to_owned(), |w| format!("{w} W")))]
    UncoveredPower {
        /// Path of the band next to the gap.
        path: String,
        /// First uncovered power.
        from_w: u32,
        /// End of the uncovered powers (absent: unbounded).
        to_w: Option<u32>,
    },
    /// Power bands that claim the same power.
    #[error(
        "{path}: this band overlaps {other} from {from_w} W to {to_w} W; bands must not overlap"
    )]
    PowerBandOverlap {
        /// Path of the later band.
        path: String,
        /// Path of the band it overlaps.
        other: String,
        /// Start of the overlap.
        from_w: u32,
        /// End of the overlap.
        to_w: u32,
    },
    /// A session fact the tariff needs but the session does not give.
    #[error("{path}: missing; the tariff needs it for {needed_for}")]
    MissingFact {
        /// Path of the missing session field.
        path: String,
        /// What it is needed for.
        needed_for: String,
    },
    /// Session facts that contradict each other or time itself.
    #[error("{path}: {reason}")]
    InvalidSession {
        /// Path of the session field.
        path: String,
        /// What is wrong and what was expected.
        reason: String,
    },
    /// The tariff does not price this kind of service.
    #[error("the tariff has no `{section}` section, so it cannot price a {service} session")]
    NotOffered {
        /// The tariff section that is missing.
        section: String,
        /// The service asked for.
        service: String,
    },
    /// A battery model with no price.
    #[error("{path}: battery model {model:?} has no price; priced models: {known}")]
    UnknownBatteryModel {
        /// Path of the field naming the model.
        path: String,
        /// The model.
        model: String,
        /// The priced models, comma-separated.
        known: String,
    },
    /// Arithmetic that does not fit (absurdly large prices or quantities).
    #[error("{path}: arithmetic overflow; the values are too large to price")]
    Overflow {
        /// Where the overflow happened.
        path: String,
    },
    /// A money error at a path (for example a currency mismatch).
    #[error("{path}: {error}")]
    Money {
        /// Where it happened.
        path: String,
        /// The money error.
        error: MoneyError,
    },
}

impl TariffError {
    /// The path of the offending field, if the error has one.
    pub fn path(&self) -> Option<&str> {
        match self {
            TariffError::InvalidValue { path, .. }
            | TariffError::NegativePrice { path, .. }
            | TariffError::TooManyDecimals { path, .. }
            | TariffError::UnknownCurrency { path, .. }
            | TariffError::UnknownTier { path, .. }
            | TariffError::TouGap { path, .. }
            | TariffError::TouOverlap { path, .. }
            | TariffError::WrongSlotCount { path, .. }
            | TariffError::DuplicateWeekday { path, .. }
            | TariffError::OverlappingDates { path, .. }
            | TariffError::UncoveredPower { path, .. }
            | TariffError::PowerBandOverlap { path, .. }
            | TariffError::MissingFact { path, .. }
            | TariffError::InvalidSession { path, .. }
            | TariffError::UnknownBatteryModel { path, .. }
            | TariffError::Overflow { path }
            | TariffError::Money { path, .. } => Some(path),
            TariffError::NotOffered { .. } => None,
        }
    }

    pub(crate) fn invalid(path: impl Into<String>, value: impl ToString, expected: &str) -> Self {
        TariffError::InvalidValue {
            path: path.into(),
            value: value.to_string(),
            expected: expected.to_owned(),
        }
    }

    pub(crate) fn session(path: impl Into<String>, reason: impl Into<String>) -> Self {
        TariffError::InvalidSession {
            path: path.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn overflow(path: impl Into<String>) -> Self {
        TariffError::Overflow { path: path.into() }
    }
}
