//! Exact money: [`Money`], [`Currency`], [`Rounding`] and allocation.
//!
//! Money is never a float. An amount is a [`rust_decimal::Decimal`] with a
//! currency. Inputs (parsed strings, deserialized JSON, constructors) may carry
//! at most [`MAX_SCALE`] decimal places, enough for charging-pile unit prices
//! quoted in 0.00001 yuan. Arithmetic that would produce more places always
//! takes an explicit [`Rounding`] and rounds to the currency's minor unit (the
//! fen for CNY): those calls are the *documented rounding points* of the
//! library, and no other function rounds.
//!
//! ```
//! use chargeswap_core::money::{Money, Rounding};
//! use rust_decimal::Decimal;
//!
//! let price: Money = "1.23456".parse()?;          // ¥1.23456 per kWh
//! let energy = Decimal::new(3217, 3);             // 3.217 kWh
//! let owed = price.multiply(energy, Rounding::HalfUp)?;
//! assert_eq!(owed.to_string(), "¥3.97");
//!
//! // Allocation never loses or creates a fen.
//! let total: Money = "100.00".parse()?;
//! let parts = total.allocate(&[Decimal::ONE, Decimal::ONE, Decimal::ONE])?;
//! assert_eq!(parts.iter().map(|m| m.to_string()).collect::<Vec<_>>(),
//!            ["¥33.34", "¥33.33", "¥33.33"]);
//! # Ok::<(), chargeswap_core::money::MoneyError>(())
//! ```

use core::cmp::Ordering;
use core::fmt;
use core::str::FromStr;

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The most decimal places an input amount or unit price may carry.
pub const MAX_SCALE: u32 = 5;

/// Errors of the money module. Each names what was wrong and what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MoneyError {
    /// The text is not an amount.
    #[error("invalid amount {input:?}: expected {expected}")]
    Invalid {
        /// The offending text.
        input: String,
        /// What an amount looks like.
        expected: String,
    },
    /// More decimal places than [`MAX_SCALE`].
    #[error("amount {input:?} has {scale} decimal places; at most {max} are allowed")]
    TooManyDecimals {
        /// The offending amount.
        input: String,
        /// Its number of decimal places.
        scale: u32,
        /// The maximum allowed.
        max: u32,
    },
    /// A negative amount where only zero or more is allowed.
    #[error("{field} must not be negative, got {amount}")]
    Negative {
        /// The field or quantity that must be non-negative.
        field: String,
        /// The amount given.
        amount: String,
    },
    /// The result does not fit a decimal.
    #[error("arithmetic overflow in {operation}")]
    Overflow {
        /// The operation that overflowed.
        operation: String,
    },
    /// Two amounts in different currencies were combined.
    #[error("currency mismatch: {left} and {right} cannot be combined")]
    CurrencyMismatch {
        /// Currency of the left operand.
        left: Currency,
        /// Currency of the right operand.
        right: Currency,
    },
    /// Not a known ISO 4217 currency code.
    #[error("unknown currency code {code:?}: expected an ISO 4217 code such as \"CNY\"")]
    UnknownCurrency {
        /// The offending code.
        code: String,
    },
    /// Allocation weights that cannot be used.
    #[error("cannot allocate: {reason}")]
    Allocation {
        /// Why the weights were rejected.
        reason: String,
    },
}

type Result<T> = core::result::Result<T, MoneyError>;

/// Known ISO 4217 codes with their minor units (decimal places of the minor unit).
const CURRENCIES: &[(&str, u8)] = &[
    ("CNY", 2),
    ("HKD", 2),
    ("MOP", 2),
    ("TWD", 2),
    ("USD", 2),
    ("EUR", 2),
    ("GBP", 2),
    ("JPY", 0),
    ("KRW", 0),
    ("SGD", 2),
    ("MYR", 2),
    ("THB", 2),
    ("VND", 0),
    ("IDR", 2),
    ("PHP", 2),
    ("INR", 2),
    ("AUD", 2),
    ("NZD", 2),
    ("CAD", 2),
    ("CHF", 2),
    ("SEK", 2),
    ("NOK", 2),
    ("DKK", 2),
    ("BRL", 2),
    ("MXN", 2),
    ("AED", 2),
    ("SAR", 2),
    ("KWD", 3),
    ("BHD", 3),
    ("OMR", 3),
    ("JOD", 3),
];

/// An ISO 4217 currency. The default is CNY.
///
/// ```
/// use chargeswap_core::money::Currency;
/// let c: Currency = "USD".parse()?;
/// assert_eq!(c.code(), "USD");
/// assert_eq!(c.minor_units(), 2);
/// assert!("XYZ".parse::<Currency>().is_err());
/// # Ok::<(), chargeswap_core::money::MoneyError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency {
    // Two 16-bit halves fill the 4 bytes a `Money` keeps after its
    // `Decimal`: no padding, so a `Money` copies in two moves, and the minor
    // units are read without a table lookup. `minor` follows from `index`.
    index: u16,
    minor: u16,
}

impl Currency {
    /// Chinese yuan renminbi, the default.
    pub const CNY: Currency = Currency { index: 0, minor: 2 };

    /// Looks a code up (exact, upper case).
    pub fn from_code(code: &str) -> Result<Currency> {
        CURRENCIES
            .iter()
            .position(|(c, _)| *c == code)
            .and_then(|i| {
                let (_, minor) = CURRENCIES.get(i)?;
                Some(Currency {
                    index: u16::try_from(i).ok()?,
                    minor: u16::from(*minor),
                })
            })
            .ok_or_else(|| MoneyError::UnknownCurrency {
                code: code.to_owned(),
            })
    }

    fn entry(self) -> (&'static str, u8) {
        CURRENCIES
            .get(usize::from(self.index))
            .copied()
            .unwrap_or(("CNY", 2))
    }

    /// The three-letter ISO 4217 code.
    pub fn code(self) -> &'static str {
        self.entry().0
    }

    /// Decimal places of the minor unit (2 for CNY: the fen).
    #[inline]
    pub fn minor_units(self) -> u32 {
        u32::from(self.minor)
    }
}

impl Default for Currency {
    fn default() -> Self {
        Currency::CNY
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for Currency {
    type Err = MoneyError;
    fn from_str(s: &str) -> Result<Self> {
        Currency::from_code(s)
    }
}

impl Serialize for Currency {
    fn serialize<S: Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: Deserializer<'de>>(d: D) -> core::result::Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Currency::from_code(&s).map_err(serde::de::Error::custom)
    }
}

/// How to round to the minor unit. The default is [`Rounding::HalfUp`].
///
/// Rounding is symmetric around zero: `HalfUp` rounds −0.005 to −0.01, as
/// `ROUND_HALF_UP` does in accounting systems.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rounding {
    /// Half away from zero: 0.125 → 0.13.
    #[default]
    HalfUp,
    /// Half to even (banker's rounding): 0.125 → 0.12, 0.135 → 0.14.
    HalfEven,
    /// Away from zero: 0.121 → 0.13.
    Up,
    /// Toward zero (truncate): 0.129 → 0.12.
    Down,
}

impl Rounding {
    fn strategy(self) -> RoundingStrategy {
        match self {
            Rounding::HalfUp => RoundingStrategy::MidpointAwayFromZero,
            Rounding::HalfEven => RoundingStrategy::MidpointNearestEven,
            Rounding::Up => RoundingStrategy::AwayFromZero,
            Rounding::Down => RoundingStrategy::ToZero,
        }
    }

    /// Rounds a plain decimal to `dp` places with this rule.
    pub fn round_decimal(self, value: Decimal, dp: u32) -> Decimal {
        value.round_dp_with_strategy(dp, self.strategy())
    }

    /// Rounds the exact ratio `numerator / denominator` to an integer with
    /// this rule, in integer arithmetic (no decimal approximation of the
    /// quotient, so `7 × 0.30 / 60` rounds exactly). Agrees with
    /// [`Rounding::round_decimal`] whenever the quotient is a decimal. `None`
    /// for a zero denominator or on overflow.
    ///
    /// ```
    /// use chargeswap_core::money::Rounding;
    /// assert_eq!(Rounding::HalfUp.round_ratio(5, 10), Some(1));     // 0.5 → 1
    /// assert_eq!(Rounding::HalfEven.round_ratio(5, 10), Some(0));   // 0.5 → 0
    /// assert_eq!(Rounding::HalfEven.round_ratio(15, 10), Some(2));  // 1.5 → 2
    /// assert_eq!(Rounding::Up.round_ratio(1, 3), Some(1));
    /// assert_eq!(Rounding::Down.round_ratio(-5, 3), Some(-1));      // toward zero
    /// assert_eq!(Rounding::HalfUp.round_ratio(-5, 10), Some(-1));   // away from zero
    /// assert_eq!(Rounding::HalfUp.round_ratio(1, 0), None);
    /// ```
    pub fn round_ratio(self, numerator: i128, denominator: i128) -> Option<i128> {
        if let (Ok(n), Ok(d)) = (i64::try_from(numerator), i64::try_from(denominator)) {
            if let Some(q) = self.round_ratio_i64(n, d) {
                return Some(i128::from(q));
            }
        }
        let (n, d) = if denominator < 0 {
            (numerator.checked_neg()?, denominator.checked_neg()?)
        } else {
            (numerator, denominator)
        };
        if d == 0 {
            return None;
        }
        // Values that fit 64 bits (the common case) took the path above.
        let (q, r) = (n / d, n % d);
        if r == 0 {
            return Some(q);
        }
        let away = if n < 0 { -1 } else { 1 };
        let twice = r.unsigned_abs().checked_mul(2)?;
        let d = d.unsigned_abs();
        let bump = match self {
            Rounding::Down => false,
            Rounding::Up => true,
            Rounding::HalfUp => twice >= d,
            Rounding::HalfEven => twice > d || (twice == d && q % 2 != 0),
        };
        if bump { q.checked_add(away) } else { Some(q) }
    }
}

impl Rounding {
    /// [`Rounding::round_ratio`] in 64-bit integers (the common case: line
    /// amounts of real sessions); `None` for a zero denominator or when the
    /// result does not fit, where the 128-bit version may still succeed.
    ///
    /// ```
    /// use chargeswap_core::money::Rounding;
    /// assert_eq!(Rounding::HalfUp.round_ratio_i64(7 * 30, 60 * 100), Some(0));   // 0.035 → 0
    /// assert_eq!(Rounding::HalfUp.round_ratio_i64(-5, 10), Some(-1));
    /// assert_eq!(Rounding::HalfEven.round_ratio_i64(15, 10), Some(2));
    /// ```
    pub fn round_ratio_i64(self, numerator: i64, denominator: i64) -> Option<i64> {
        let (n, d) = if denominator < 0 {
            (numerator.checked_neg()?, denominator.checked_neg()?)
        } else {
            (numerator, denominator)
        };
        if d == 0 {
            return None;
        }
        self.settle(n, d, n / d, n % d)
    }

    /// [`Rounding::round_ratio_i64`] by a denominator `D > 0` known when
    /// compiling, so that the division is a multiplication (hot loops with
    /// the usual denominators: `10^k`, `60 × 10^k`, `3600 × 10^k`).
    ///
    /// ```
    /// use chargeswap_core::money::Rounding;
    /// assert_eq!(Rounding::HalfUp.round_ratio_by::<60_000>(2_100_000), Some(35));
    /// assert_eq!(Rounding::HalfEven.round_ratio_by::<10>(-25), Some(-2));
    /// ```
    #[inline(always)]
    pub fn round_ratio_by<const D: i64>(self, numerator: i64) -> Option<i64> {
        if D <= 0 {
            return self.round_ratio_i64(numerator, D);
        }
        self.settle(numerator, D, numerator / D, numerator % D)
    }

    /// Rounds the quotient `q` of `n / d` (`d > 0`, remainder `r`) by this rule.
    #[inline(always)]
    fn settle(self, n: i64, d: i64, q: i64, r: i64) -> Option<i64> {
        if r == 0 {
            return Some(q);
        }
        let away = if n < 0 { -1 } else { 1 };
        let twice = r.unsigned_abs().checked_mul(2)?;
        let d = d.unsigned_abs();
        let bump = match self {
            Rounding::Down => false,
            Rounding::Up => true,
            Rounding::HalfUp => twice >= d,
            Rounding::HalfEven => twice > d || (twice == d && q % 2 != 0),
        };
        if bump { q.checked_add(away) } else { Some(q) }
    }
}

/// An exact amount of money in one currency, with at most [`MAX_SCALE`]
/// decimal places.
///
/// Serialized as a decimal string: `"12.34"` for CNY, `"12.34 USD"` for any
/// other currency. Parsing also accepts `"¥12.34"`, `"￥12.34"` and
/// `"12.34 CNY"`. JSON numbers are refused: a float never enters a money path.
///
/// ```
/// use chargeswap_core::money::Money;
/// let a: Money = "¥12.30".parse()?;
/// let b: Money = "0.7".parse()?;
/// assert_eq!(a.checked_add(b)?.to_string(), "¥13.00");
/// assert_eq!(serde_json::to_string(&a).unwrap(), "\"12.30\"");
/// # Ok::<(), chargeswap_core::money::MoneyError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Money {
    amount: Decimal,
    currency: Currency,
}

fn check_scale(amount: Decimal) -> Result<Decimal> {
    let n = amount.normalize();
    if n.scale() > MAX_SCALE {
        return Err(MoneyError::TooManyDecimals {
            input: amount.to_string(),
            scale: n.scale(),
            max: MAX_SCALE,
        });
    }
    Ok(amount)
}

fn overflow(operation: &str) -> MoneyError {
    MoneyError::Overflow {
        operation: operation.to_owned(),
    }
}

impl Money {
    /// An amount in a currency; at most [`MAX_SCALE`] decimal places.
    pub fn new(amount: Decimal, currency: Currency) -> Result<Money> {
        Ok(Money {
            amount: check_scale(amount)?,
            currency,
        })
    }

    /// An amount in CNY; at most [`MAX_SCALE`] decimal places.
    ///
    /// ```
    /// use chargeswap_core::money::Money;
    /// use rust_decimal::Decimal;
    /// assert_eq!(Money::cny(Decimal::new(1234, 2))?.to_string(), "¥12.34");
    /// assert!(Money::cny(Decimal::new(1, 6)).is_err());
    /// # Ok::<(), chargeswap_core::money::MoneyError>(())
    /// ```
    pub fn cny(amount: Decimal) -> Result<Money> {
        Money::new(amount, Currency::CNY)
    }

    /// Zero in a currency.
    pub const fn zero(currency: Currency) -> Money {
        Money {
            amount: Decimal::ZERO,
            currency,
        }
    }

    /// [`Money::from_minor`] with the currency's minor units already looked
    /// up (`minor_units == currency.minor_units()`, which the caller keeps):
    /// the quote engine builds many amounts of one currency.
    #[inline(always)]
    pub(crate) fn from_minor_at(minor: i64, currency: Currency, minor_units: u32) -> Money {
        // `Decimal::from_parts` inlines; `Decimal::new` is a call (a hot path of quoting).
        let m = minor.unsigned_abs();
        Money {
            amount: Decimal::from_parts(
                (m & 0xFFFF_FFFF) as u32,
                (m >> 32) as u32,
                0,
                minor < 0,
                minor_units,
            ),
            currency,
        }
    }

    /// An amount given in minor units (fen for CNY): `from_minor(1234, CNY)` is ¥12.34.
    pub fn from_minor(minor: i64, currency: Currency) -> Money {
        Money::from_minor_at(minor, currency, currency.minor_units())
    }

    /// The amount in minor units when it is stored at the currency's scale
    /// (every amount [`Money::from_minor`] makes, and sums and differences of
    /// them); otherwise [`Money::to_minor`]. A fast path for hot loops.
    pub fn minor_units_fast(&self) -> Option<i64> {
        if self.amount.scale() == self.currency.minor_units() || self.amount.is_zero() {
            i64::try_from(self.amount.mantissa()).ok()
        } else {
            self.to_minor()
        }
    }

    /// The amount as a decimal.
    pub const fn amount(&self) -> Decimal {
        self.amount
    }

    /// The currency.
    pub const fn currency(&self) -> Currency {
        self.currency
    }

    /// The amount in minor units, if it is a whole number of them.
    ///
    /// ```
    /// use chargeswap_core::money::Money;
    /// assert_eq!("12.34".parse::<Money>()?.to_minor(), Some(1234));
    /// assert_eq!("0.001".parse::<Money>()?.to_minor(), None);
    /// # Ok::<(), chargeswap_core::money::MoneyError>(())
    /// ```
    pub fn to_minor(&self) -> Option<i64> {
        let scaled = self.amount.checked_mul(Decimal::from(
            10i64.checked_pow(self.currency.minor_units())?,
        ))?;
        if scaled.fract().is_zero() {
            i64::try_from(scaled).ok()
        } else {
            None
        }
    }

    /// True when the amount is a whole number of minor units.
    pub fn is_minor_exact(&self) -> bool {
        self.amount.normalize().scale() <= self.currency.minor_units()
    }

    /// True for zero.
    pub fn is_zero(&self) -> bool {
        self.amount.is_zero()
    }

    /// True below zero.
    pub fn is_negative(&self) -> bool {
        self.amount.is_sign_negative() && !self.amount.is_zero()
    }

    /// True above zero.
    pub fn is_positive(&self) -> bool {
        self.amount.is_sign_positive() && !self.amount.is_zero()
    }

    /// The absolute value.
    pub fn abs(&self) -> Money {
        Money {
            amount: self.amount.abs(),
            currency: self.currency,
        }
    }

    /// The negated amount.
    pub fn neg(&self) -> Money {
        Money {
            amount: -self.amount,
            currency: self.currency,
        }
    }

    /// Returns `self` if it is zero or more, else a [`MoneyError::Negative`] naming `field`.
    pub fn ensure_non_negative(self, field: &str) -> Result<Money> {
        if self.is_negative() {
            Err(MoneyError::Negative {
                field: field.to_owned(),
                amount: self.to_string(),
            })
        } else {
            Ok(self)
        }
    }

    fn same_currency(&self, other: &Money) -> Result<()> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(MoneyError::CurrencyMismatch {
                left: self.currency,
                right: other.currency,
            })
        }
    }

    /// `self + other`; errors on currency mismatch or overflow.
    pub fn checked_add(self, other: Money) -> Result<Money> {
        self.same_currency(&other)?;
        let amount = self
            .amount
            .checked_add(other.amount)
            .ok_or_else(|| overflow("add"))?;
        Ok(Money {
            amount,
            currency: self.currency,
        })
    }

    /// `self - other`; errors on currency mismatch or overflow.
    pub fn checked_sub(self, other: Money) -> Result<Money> {
        self.same_currency(&other)?;
        let amount = self
            .amount
            .checked_sub(other.amount)
            .ok_or_else(|| overflow("subtract"))?;
        Ok(Money {
            amount,
            currency: self.currency,
        })
    }

    /// `max(self - other, 0)`: subtracts without going below zero.
    pub fn saturating_sub_to_zero(self, other: Money) -> Result<Money> {
        let d = self.checked_sub(other)?;
        Ok(if d.is_negative() {
            Money::zero(self.currency)
        } else {
            d
        })
    }

    /// Compares two amounts of the same currency.
    pub fn checked_cmp(&self, other: &Money) -> Result<Ordering> {
        self.same_currency(other)?;
        Ok(self.amount.cmp(&other.amount))
    }

    /// The smaller of two amounts of the same currency.
    pub fn checked_min(self, other: Money) -> Result<Money> {
        Ok(match self.checked_cmp(&other)? {
            Ordering::Greater => other,
            _ => self,
        })
    }

    /// The larger of two amounts of the same currency.
    pub fn checked_max(self, other: Money) -> Result<Money> {
        Ok(match self.checked_cmp(&other)? {
            Ordering::Less => other,
            _ => self,
        })
    }

    /// Sums amounts of one currency; the empty sum is zero in `currency`.
    pub fn sum<I: IntoIterator<Item = Money>>(currency: Currency, items: I) -> Result<Money> {
        items
            .into_iter()
            .try_fold(Money::zero(currency), Money::checked_add)
    }

    /// **Rounding point.** `self × quantity`, rounded to the minor unit with `rounding`.
    ///
    /// ```
    /// use chargeswap_core::money::{Money, Rounding};
    /// use rust_decimal::Decimal;
    /// let p: Money = "0.85".parse()?;
    /// assert_eq!(p.multiply(Decimal::new(15, 1), Rounding::HalfUp)?.to_string(), "¥1.28");
    /// assert_eq!(p.multiply(Decimal::new(15, 1), Rounding::HalfEven)?.to_string(), "¥1.28");
    /// assert_eq!(p.multiply(Decimal::new(15, 1), Rounding::Down)?.to_string(), "¥1.27");
    /// # Ok::<(), chargeswap_core::money::MoneyError>(())
    /// ```
    pub fn multiply(self, quantity: Decimal, rounding: Rounding) -> Result<Money> {
        let exact = self
            .amount
            .checked_mul(quantity)
            .ok_or_else(|| overflow("multiply"))?;
        Ok(Money {
            amount: rounding.round_decimal(exact, self.currency.minor_units()),
            currency: self.currency,
        })
    }

    /// **Rounding point.** `self × percent / 100`, rounded to the minor unit.
    pub fn percent(self, percent: Decimal, rounding: Rounding) -> Result<Money> {
        let q = percent
            .checked_div(Decimal::ONE_HUNDRED)
            .ok_or_else(|| overflow("percent"))?;
        self.multiply(q, rounding)
    }

    /// **Rounding point.** Rounds to the minor unit (the fen for CNY).
    ///
    /// ```
    /// use chargeswap_core::money::{Money, Rounding};
    /// let m: Money = "2.345".parse()?;
    /// assert_eq!(m.round(Rounding::HalfUp).to_string(), "¥2.35");
    /// assert_eq!(m.round(Rounding::HalfEven).to_string(), "¥2.34");
    /// assert_eq!(m.round(Rounding::Up).to_string(), "¥2.35");
    /// assert_eq!(m.round(Rounding::Down).to_string(), "¥2.34");
    /// # Ok::<(), chargeswap_core::money::MoneyError>(())
    /// ```
    pub fn round(self, rounding: Rounding) -> Money {
        Money {
            amount: rounding.round_decimal(self.amount, self.currency.minor_units()),
            currency: self.currency,
        }
    }

    /// Splits `self` into parts proportional to `weights` that sum exactly to `self`.
    ///
    /// Works in the smallest unit the amount uses (the fen, or finer when the
    /// amount has more places). Each part first gets the floor of its exact
    /// share; the units left over go one each to the parts with the largest
    /// remainders, ties to the earlier part (largest-remainder method,
    /// deterministic). Weights must be zero or more with a positive sum. A
    /// negative amount is split as its absolute value, then negated.
    ///
    /// ```
    /// use chargeswap_core::money::Money;
    /// use rust_decimal::Decimal;
    /// let m: Money = "0.05".parse()?;
    /// let parts = m.allocate(&[Decimal::new(7, 1), Decimal::new(3, 1)])?;
    /// assert_eq!(parts[0].to_string(), "¥0.04");  // 0.035 → 3 fen + the 1 left over (remainder .5 ties: earlier wins)
    /// assert_eq!(parts[1].to_string(), "¥0.01");  // 0.015 → 1 fen
    /// # Ok::<(), chargeswap_core::money::MoneyError>(())
    /// ```
    pub fn allocate(&self, weights: &[Decimal]) -> Result<Vec<Money>> {
        if weights.is_empty() {
            return Err(MoneyError::Allocation {
                reason: "no weights given; expected at least one".to_owned(),
            });
        }
        if let Some(w) = weights
            .iter()
            .find(|w| w.is_sign_negative() && !w.is_zero())
        {
            return Err(MoneyError::Allocation {
                reason: format!("weight {w} is negative; expected zero or more"),
            });
        }
        // Integer weights: scale every weight by the largest scale among them.
        let wscale = weights
            .iter()
            .map(|w| w.normalize().scale())
            .max()
            .unwrap_or(0);
        let mut iw: Vec<i128> = Vec::with_capacity(weights.len());
        for w in weights {
            iw.push(scaled_int(*w, wscale).ok_or_else(|| overflow("allocate weights"))?);
        }
        let wsum = iw
            .iter()
            .try_fold(0i128, |a, w| a.checked_add(*w))
            .ok_or_else(|| overflow("allocate weights"))?;
        if wsum == 0 {
            return Err(MoneyError::Allocation {
                reason: "weights sum to zero; expected a positive sum".to_owned(),
            });
        }
        let uscale = self
            .amount
            .normalize()
            .scale()
            .max(self.currency.minor_units());
        let negative = self.amount.is_sign_negative();
        let total = scaled_int(self.amount.abs(), uscale).ok_or_else(|| overflow("allocate"))?;
        let mut parts: Vec<i128> = Vec::with_capacity(iw.len());
        let mut rems: Vec<(i128, usize)> = Vec::with_capacity(iw.len());
        let mut given = 0i128;
        for (i, w) in iw.iter().enumerate() {
            let p = total.checked_mul(*w).ok_or_else(|| overflow("allocate"))?;
            let q = p / wsum;
            given += q;
            parts.push(q);
            rems.push((p % wsum, i));
        }
        // Largest remainder first; equal remainders: lower index first.
        rems.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        let left = total - given;
        for (_, i) in rems.iter().take(usize::try_from(left).unwrap_or(0)) {
            if let Some(p) = parts.get_mut(*i) {
                *p += 1;
            }
        }
        parts
            .into_iter()
            .map(|p| {
                let v = if negative { -p } else { p };
                Decimal::try_from_i128_with_scale(v, uscale)
                    .map(|amount| Money {
                        amount,
                        currency: self.currency,
                    })
                    .map_err(|_| overflow("allocate"))
            })
            .collect()
    }

    /// Splits `self` into `n` parts as equal as possible (earlier parts get the extra units).
    pub fn split_evenly(&self, n: usize) -> Result<Vec<Money>> {
        self.allocate(&vec![Decimal::ONE; n])
    }

    /// The plain decimal text without a currency sign, at least the minor-unit places: `"12.30"`.
    pub fn to_plain_string(&self) -> String {
        let n = self.amount.normalize();
        let dp = n.scale().max(self.currency.minor_units());
        let mut v = n;
        v.rescale(dp);
        v.to_string()
    }
}

fn scaled_int(d: Decimal, scale: u32) -> Option<i128> {
    let mut v = d.normalize();
    if v.scale() > scale {
        return None;
    }
    v.rescale(scale);
    if v.scale() != scale {
        return None;
    }
    Some(v.mantissa())
}

impl fmt::Debug for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Money({} {})", self.to_plain_string(), self.currency)
    }
}

/// `¥12.34` for CNY (a minus sign goes first: `-¥1.00`), `12.34 USD` otherwise.
impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plain = self.to_plain_string();
        if self.currency == Currency::CNY {
            match plain.strip_prefix('-') {
                Some(rest) => write!(f, "-¥{rest}"),
                None => write!(f, "¥{plain}"),
            }
        } else {
            write!(f, "{plain} {}", self.currency)
        }
    }
}

const EXPECTED: &str = "a decimal like \"12.34\", optionally with a leading \"¥\" or a trailing ISO code (\"12.34 USD\")";

fn invalid(input: &str) -> MoneyError {
    MoneyError::Invalid {
        input: input.to_owned(),
        expected: EXPECTED.to_owned(),
    }
}

impl FromStr for Money {
    type Err = MoneyError;

    fn from_str(input: &str) -> Result<Money> {
        let s = input.trim();
        let (s, currency) = match s.rsplit_once(' ') {
            Some((num, code)) => (num.trim_end(), Currency::from_code(code)?),
            None => (s, Currency::CNY),
        };
        let (neg1, s) = match s.strip_prefix('-') {
            Some(r) => (true, r),
            None => (false, s),
        };
        let (had_sign, s) = match s.strip_prefix('¥').or_else(|| s.strip_prefix('￥')) {
            Some(r) => (true, r),
            None => (false, s),
        };
        if had_sign && currency != Currency::CNY {
            return Err(invalid(input));
        }
        let (neg2, s) = match s.strip_prefix('-') {
            Some(r) if had_sign && !neg1 => (true, r),
            _ => (false, s),
        };
        let (int, frac) = match s.split_once('.') {
            Some((i, f)) => (i, Some(f)),
            None => (s, None),
        };
        let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
        if !digits(int) || frac.is_some_and(|f| !digits(f)) {
            return Err(invalid(input));
        }
        let mut amount = Decimal::from_str_exact(s).map_err(|_| {
            if int.len() > 28 {
                overflow("parse")
            } else {
                invalid(input)
            }
        })?;
        if frac.is_some_and(|f| f.len() > 28) {
            return Err(MoneyError::TooManyDecimals {
                input: input.to_owned(),
                scale: u32::try_from(frac.map_or(0, str::len)).unwrap_or(u32::MAX),
                max: MAX_SCALE,
            });
        }
        if neg1 || neg2 {
            amount = -amount;
        }
        if amount.normalize().scale() > MAX_SCALE {
            return Err(MoneyError::TooManyDecimals {
                input: input.to_owned(),
                scale: amount.normalize().scale(),
                max: MAX_SCALE,
            });
        }
        Ok(Money { amount, currency })
    }
}

impl Serialize for Money {
    fn serialize<S: Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        if self.currency == Currency::CNY {
            s.serialize_str(&self.to_plain_string())
        } else {
            s.serialize_str(&format!("{} {}", self.to_plain_string(), self.currency))
        }
    }
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: Deserializer<'de>>(d: D) -> core::result::Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Money;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a money amount as a decimal string such as \"12.34\" (numbers are refused: no floats on money paths)")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> core::result::Result<Money, E> {
                v.parse().map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn m(s: &str) -> Money {
        s.parse().unwrap()
    }

    #[test]
    fn parses_and_prints() {
        assert_eq!(m("12.34").to_string(), "¥12.34");
        assert_eq!(m("¥12.3").to_string(), "¥12.30");
        assert_eq!(m("￥7").to_string(), "¥7.00");
        assert_eq!(m("-¥1.5").to_string(), "-¥1.50");
        assert_eq!(m("¥-1.5").to_string(), "-¥1.50");
        assert_eq!(m("1.23456").to_string(), "¥1.23456");
        assert_eq!(m("1.20000").to_string(), "¥1.20");
        assert_eq!(m("3 USD").to_string(), "3.00 USD");
        assert_eq!(m("12.34 CNY"), m("12.34"));
        assert_eq!(m("5 JPY").to_string(), "5 JPY");
    }

    #[test]
    fn rejects_bad_text_with_typed_errors() {
        for bad in [
            "", "abc", "1e5", "1,000", "1.", ".5", "+1", "--1", "¥¥1", "1.2.3", "¥1 USD",
        ] {
            assert!(
                matches!(bad.parse::<Money>(), Err(MoneyError::Invalid { .. })),
                "{bad:?} -> {:?}",
                bad.parse::<Money>()
            );
        }
        assert!(matches!(
            "1.234567".parse::<Money>(),
            Err(MoneyError::TooManyDecimals {
                scale: 6,
                max: 5,
                ..
            })
        ));
        assert!(matches!(
            "1 XYZ".parse::<Money>(),
            Err(MoneyError::UnknownCurrency { .. })
        ));
        assert!(matches!(
            "99999999999999999999999999999999".parse::<Money>(),
            Err(MoneyError::Overflow { .. })
        ));
    }

    #[test]
    fn serde_is_a_decimal_string_and_refuses_numbers() {
        assert_eq!(serde_json::to_string(&m("12.3")).unwrap(), "\"12.30\"");
        assert_eq!(serde_json::to_string(&m("2 USD")).unwrap(), "\"2.00 USD\"");
        assert_eq!(serde_json::from_str::<Money>("\"¥1.5\"").unwrap(), m("1.5"));
        assert!(serde_json::from_str::<Money>("1.5").is_err());
        assert!(serde_json::from_str::<Money>("\"1.123456\"").is_err());
        assert_eq!(serde_json::to_string(&Currency::CNY).unwrap(), "\"CNY\"");
        assert!(serde_json::from_str::<Currency>("\"cny\"").is_err());
    }

    #[test]
    fn currency_mismatch_and_negative() {
        assert!(matches!(
            m("1").checked_add(m("1 USD")),
            Err(MoneyError::CurrencyMismatch { .. })
        ));
        let e = m("-1").ensure_non_negative("deposit").unwrap_err();
        assert_eq!(e.to_string(), "deposit must not be negative, got -¥1.00");
        assert_eq!(m("1").saturating_sub_to_zero(m("3")).unwrap(), m("0"));
    }

    #[test]
    fn rounding_rules() {
        let x = m("0.125");
        assert_eq!(x.round(Rounding::HalfUp), m("0.13"));
        assert_eq!(x.round(Rounding::HalfEven), m("0.12"));
        assert_eq!(m("0.135").round(Rounding::HalfEven), m("0.14"));
        assert_eq!(m("0.121").round(Rounding::Up), m("0.13"));
        assert_eq!(m("0.129").round(Rounding::Down), m("0.12"));
        assert_eq!(m("-0.125").round(Rounding::HalfUp), m("-0.13"));
        assert_eq!(
            m("10")
                .percent(Decimal::new(125, 1), Rounding::HalfUp)
                .unwrap(),
            m("1.25")
        );
    }

    #[test]
    fn allocation_examples() {
        let parts = m("100").allocate(&[Decimal::ONE; 3]).unwrap();
        assert_eq!(parts, vec![m("33.34"), m("33.33"), m("33.33")]);
        let parts = m("-0.10").allocate(&[Decimal::ONE; 3]).unwrap();
        assert_eq!(parts, vec![m("-0.04"), m("-0.03"), m("-0.03")]);
        let parts = m("0.001").allocate(&[Decimal::ONE, Decimal::ONE]).unwrap();
        assert_eq!(parts, vec![m("0.001"), m("0")]);
        let parts = m("1").allocate(&[Decimal::ZERO, Decimal::ONE]).unwrap();
        assert_eq!(parts, vec![m("0"), m("1")]);
        assert!(m("1").allocate(&[]).is_err());
        assert!(m("1").allocate(&[Decimal::ZERO]).is_err());
        assert!(
            m("1")
                .allocate(&[Decimal::NEGATIVE_ONE, Decimal::TWO])
                .is_err()
        );
        assert_eq!(
            m("0.05").split_evenly(2).unwrap(),
            vec![m("0.03"), m("0.02")]
        );
    }

    #[test]
    fn minor_units() {
        assert_eq!(Money::from_minor(1234, Currency::CNY), m("12.34"));
        assert_eq!(m("12.34").to_minor(), Some(1234));
        assert_eq!(m("12.345").to_minor(), None);
        assert!(m("1.10000").is_minor_exact());
        assert!(!m("1.101").is_minor_exact());
    }

    fn arb_money() -> impl Strategy<Value = Money> {
        (-10_000_000_000i64..10_000_000_000i64, 0u32..=5)
            .prop_map(|(v, s)| Money::cny(Decimal::new(v, s)).unwrap())
    }

    proptest! {
        #[test]
        fn allocation_sums_exactly(total in arb_money(), ws in prop::collection::vec(0u32..1000, 1..12)) {
            prop_assume!(ws.iter().any(|w| *w > 0));
            let weights: Vec<Decimal> = ws.iter().map(|w| Decimal::new(i64::from(*w), 2)).collect();
            let parts = total.allocate(&weights).unwrap();
            prop_assert_eq!(parts.len(), weights.len());
            prop_assert_eq!(Money::sum(Currency::CNY, parts.clone()).unwrap(), total);
            // zero weight gets nothing; every part within one unit of its exact share
            let wsum: Decimal = weights.iter().sum();
            let unit = Decimal::new(1, total.amount().normalize().scale().max(2));
            for (p, w) in parts.iter().zip(&weights) {
                if w.is_zero() { prop_assert!(p.is_zero()); }
                let exact = total.amount() * *w / wsum;
                prop_assert!((p.amount() - exact).abs() < unit);
            }
        }

        #[test]
        fn round_ratio_agrees_with_round_decimal(n in -10_000_000_000_000i64..10_000_000_000_000, e in 0u32..9, dp in 0u32..4) {
            // n / 10^e is a decimal: both ways of rounding it to dp places agree.
            let d = Decimal::new(n, e);
            for r in [Rounding::HalfUp, Rounding::HalfEven, Rounding::Up, Rounding::Down] {
                let want = r.round_decimal(d, dp);
                let (num, den) = if e >= dp {
                    (i128::from(n), 10i128.pow(e - dp))
                } else {
                    (i128::from(n) * 10i128.pow(dp - e), 1)
                };
                let got = r.round_ratio(num, den).unwrap();
                prop_assert_eq!(Decimal::from_i128_with_scale(got, dp), want);
            }
        }

        #[test]
        fn round_ratio_by_agrees_with_round_ratio_i64(n in any::<i64>()) {
            for r in [Rounding::HalfUp, Rounding::HalfEven, Rounding::Up, Rounding::Down] {
                prop_assert_eq!(r.round_ratio_by::<1_000>(n), r.round_ratio_i64(n, 1_000));
                prop_assert_eq!(r.round_ratio_by::<60_000>(n), r.round_ratio_i64(n, 60_000));
                prop_assert_eq!(r.round_ratio_by::<3_600_000>(n), r.round_ratio_i64(n, 3_600_000));
                prop_assert_eq!(r.round_ratio_by::<10_000_000>(n), r.round_ratio_i64(n, 10_000_000));
                prop_assert_eq!(r.round_ratio_by::<7>(n), r.round_ratio_i64(n, 7));
            }
        }

        #[test]
        fn round_ratio_i64_agrees_with_exact_rounding(n in any::<i64>(), d in prop_oneof![any::<i64>(), Just(3_600_000i64), Just(10_000_000), Just(60_000), 1i64..100]) {
            for r in [Rounding::HalfUp, Rounding::HalfEven, Rounding::Up, Rounding::Down] {
                if let Some(q) = r.round_ratio_i64(n, d) {
                    // The quotient rounded exactly, checked in 128 bits.
                    let (n, d, q) = (i128::from(n), i128::from(d), i128::from(q));
                    let err = (q * d - n).abs();
                    prop_assert!(err < d.abs());
                    if matches!(r, Rounding::HalfUp | Rounding::HalfEven) {
                        prop_assert!(2 * err <= d.abs());
                    }
                } else {
                    prop_assert!(d == 0 || n == i64::MIN || d == i64::MIN);
                }
            }
        }

        #[test]
        fn round_ratio_is_within_one_of_the_quotient(n in any::<i64>(), d in 1i64..1_000_000_000) {
            for r in [Rounding::HalfUp, Rounding::HalfEven, Rounding::Up, Rounding::Down] {
                let q = r.round_ratio(i128::from(n), i128::from(d)).unwrap();
                let err = (q * i128::from(d) - i128::from(n)).abs();
                prop_assert!(err < i128::from(d));
                if matches!(r, Rounding::HalfUp | Rounding::HalfEven) {
                    prop_assert!(2 * err <= i128::from(d));
                }
            }
        }

        #[test]
        fn display_parse_roundtrip(a in arb_money()) {
            prop_assert_eq!(a.to_string().parse::<Money>().unwrap(), a);
            let js = serde_json::to_string(&a).unwrap();
            prop_assert_eq!(serde_json::from_str::<Money>(&js).unwrap(), a);
        }

        #[test]
        fn add_sub_inverse(a in arb_money(), b in arb_money()) {
            prop_assert_eq!(a.checked_add(b).unwrap().checked_sub(b).unwrap(), a);
        }

        #[test]
        fn rounding_lands_on_the_fen_within_one_fen(a in arb_money()) {
            for r in [Rounding::HalfUp, Rounding::HalfEven, Rounding::Up, Rounding::Down] {
                let x = a.round(r);
                prop_assert!(x.is_minor_exact());
                prop_assert!((x.amount() - a.amount()).abs() < Decimal::new(1, 2));
            }
            prop_assert!(a.round(Rounding::Down).amount().abs() <= a.amount().abs());
            prop_assert!(a.round(Rounding::Up).amount().abs() >= a.amount().abs());
        }
    }
}

#[cfg(test)]
mod currency_layout {
    use super::*;

    #[test]
    fn every_currency_knows_its_minor_units_and_money_has_no_padding() {
        for (code, minor) in CURRENCIES {
            let c = Currency::from_code(code).unwrap();
            assert_eq!(c.code(), *code);
            assert_eq!(c.minor_units(), u32::from(*minor), "{code}");
        }
        assert_eq!(Currency::CNY, Currency::from_code("CNY").unwrap());
        assert_eq!(core::mem::size_of::<Money>(), 20);
    }
}
