//! The output of quoting: [`Quote`], its [`QuoteLine`]s and [`Subtotals`].

use std::sync::Arc;

use chrono::NaiveDateTime;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::money::{Currency, Money, Rounding};

/// An itemised price.
///
/// Invariants (checked by property tests):
/// - `total` equals the sum of every line's `amount`, and the sum of every
///   line's `net`, exactly;
/// - every amount is a whole number of minor units (fen);
/// - every charge line's `net` is zero or more: caps and discounts never push
///   a line below zero;
/// - each subtotal is the sum of the amounts of its lines, and the subtotals
///   add up to `total`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quote {
    /// The id of the tariff that priced it.
    pub tariff: Arc<str>,
    /// The currency of every amount.
    pub currency: Currency,
    /// The rounding rule used at the rounding points.
    pub rounding: Rounding,
    /// What was priced.
    pub service: Service,
    /// For charging: the facts as the engine used them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub charging: Option<ChargingSummary>,
    /// For charging: the session cut at every tier boundary, midnight and
    /// power-band change, in time order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub segments: Vec<Segment>,
    /// The lines, in the order they were applied: charges, adjustments,
    /// discounts.
    pub lines: Vec<QuoteLine>,
    /// Sums of line amounts by category.
    pub subtotals: Subtotals,
    /// What the rider pays: the sum of all line amounts.
    pub total: Money,
    /// Coupons that were given but did not apply, and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped_coupons: Vec<SkippedCoupon>,
}

/// The service a quote prices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Service {
    /// Charging.
    Charging,
    /// Swapping.
    Swap,
    /// Rental.
    Rental,
}

/// The charging facts as priced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChargingSummary {
    /// Start of charging.
    pub start: NaiveDateTime,
    /// End of charging.
    pub end: NaiveDateTime,
    /// End of idle time, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unplugged_at: Option<NaiveDateTime>,
    /// Charging time in seconds.
    pub charging_seconds: u64,
    /// Idle time in seconds (0 when `unplugged_at` is unknown).
    pub idle_seconds: u64,
    /// Energy delivered during the session, kWh (4 decimal places).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub energy_kwh: Option<Decimal>,
    /// Where the energy figures come from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub energy_source: Option<EnergySource>,
}

/// How energy was attributed to segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EnergySource {
    /// Only a session total was given: spread linearly over the session.
    Total,
    /// Meter readings were given: spread linearly between readings.
    Readings,
}

/// A piece of a charging session with one tier and one power band.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Segment {
    /// Start (inclusive).
    pub from: NaiveDateTime,
    /// End (exclusive).
    pub to: NaiveDateTime,
    /// The time-of-use tier.
    pub tier: TierName,
    /// The power band, when the tariff prices time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub band: Option<BandRef>,
    /// Energy in the segment, kWh, when energy is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kwh: Option<Decimal>,
    /// True when a boundary of the segment fell between meter readings (or
    /// at a rule's kWh threshold), so its energy is computed rather than read.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub interpolated: bool,
    /// The rule that priced the segment's energy, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub energy_rule: Option<Arc<str>>,
    /// The rule that priced the segment's charging time, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_rule: Option<Arc<str>>,
}

/// The name of a time-of-use tier.
///
/// The four tiers of Chinese time-of-use electricity prices — sharp (尖),
/// peak (峰), flat (平) and valley (谷) — are plain values; any other name a
/// tariff gives is shared text. A quote names a tier on every segment and
/// energy line, so copying a standard name costs nothing (no allocation, no
/// reference count). Either way a name reads, compares, hashes, orders and
/// prints as its text, and JSON carries the string.
///
/// ```
/// use chargeswap_core::tariff::TierName;
/// let v = TierName::new("valley");
/// assert_eq!(v, TierName::Valley);
/// assert_eq!(v.as_str(), "valley");
/// let s = TierName::new("super_off_peak");
/// assert!(matches!(s, TierName::Other(_)));
/// assert_eq!(s, "super_off_peak");
/// assert_eq!(serde_json::to_string(&v)?, "\"valley\"");
/// assert_eq!(serde_json::from_str::<TierName>("\"peak\"")?, TierName::Peak);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone)]
pub enum TierName {
    /// `"sharp"` (尖).
    Sharp,
    /// `"peak"` (峰).
    Peak,
    /// `"flat"` (平).
    Flat,
    /// `"valley"` (谷).
    Valley,
    /// Any other name. [`TierName::new`] never puts a standard name here;
    /// one put here by hand still equals its standard value.
    Other(Arc<str>),
}

impl TierName {
    /// The name for `name`: a standard value for the four standard names.
    pub fn new(name: &str) -> TierName {
        match name {
            "sharp" => TierName::Sharp,
            "peak" => TierName::Peak,
            "flat" => TierName::Flat,
            "valley" => TierName::Valley,
            other => TierName::Other(Arc::from(other)),
        }
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        match self {
            TierName::Sharp => "sharp",
            TierName::Peak => "peak",
            TierName::Flat => "flat",
            TierName::Valley => "valley",
            TierName::Other(s) => s,
        }
    }
}

impl core::ops::Deref for TierName {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for TierName {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl core::fmt::Debug for TierName {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl core::fmt::Display for TierName {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq for TierName {
    fn eq(&self, other: &TierName) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for TierName {}

impl PartialEq<str> for TierName {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for TierName {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl core::hash::Hash for TierName {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl PartialOrd for TierName {
    fn partial_cmp(&self, other: &TierName) -> Option<core::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for TierName {
    fn cmp(&self, other: &TierName) -> core::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl From<&str> for TierName {
    fn from(name: &str) -> TierName {
        TierName::new(name)
    }
}

impl Serialize for TierName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for TierName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<TierName, D::Error> {
        let name = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Ok(TierName::new(&name))
    }
}

/// A power band, as printed on lines and segments: `[from_w, to_w)` watts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct BandRef {
    /// Lowest power, inclusive.
    pub from_w: u32,
    /// Upper bound, exclusive (absent: open-ended).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_w: Option<u32>,
}

/// The kind of a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LineKind {
    /// Electricity fee (电费) of one tier: kWh × price per kWh.
    Electricity,
    /// Service fee (服务费) of one tier: kWh × price per kWh.
    Service,
    /// Time fee of one power band: minutes × price per hour / 60.
    Time,
    /// Idle (occupancy) fee: billable minutes × price per hour / 60.
    Idle,
    /// The fixed fee per session.
    SessionFee,
    /// Swaps: count × price per swap.
    Swap,
    /// Rental days: days × day rate.
    RentalDay,
    /// Rental months: months × month rate.
    RentalMonth,
    /// Top-up of the time fee to `time.minimum` (positive).
    TimeMinimum,
    /// Reduction of the time fee to `time.cap` (negative).
    TimeCap,
    /// Reduction of the idle fee to `idle.cap` (negative).
    IdleCap,
    /// Top-up of the session to `min_price` (positive).
    SessionMinimum,
    /// Reduction of the session to `max_price` (negative).
    SessionCap,
    /// The member-level discount (negative).
    MemberDiscount,
    /// A coupon (negative).
    Coupon,
}

impl LineKind {
    /// True for lines that charge something (they carry `reduced_by` and `net`).
    pub fn is_charge(self) -> bool {
        matches!(
            self,
            LineKind::Electricity
                | LineKind::Service
                | LineKind::Time
                | LineKind::Idle
                | LineKind::SessionFee
                | LineKind::Swap
                | LineKind::RentalDay
                | LineKind::RentalMonth
                | LineKind::TimeMinimum
                | LineKind::SessionMinimum
        )
    }

    /// The snake_case name, as in JSON.
    pub fn name(self) -> &'static str {
        match self {
            LineKind::Electricity => "electricity",
            LineKind::Service => "service",
            LineKind::Time => "time",
            LineKind::Idle => "idle",
            LineKind::SessionFee => "session_fee",
            LineKind::Swap => "swap",
            LineKind::RentalDay => "rental_day",
            LineKind::RentalMonth => "rental_month",
            LineKind::TimeMinimum => "time_minimum",
            LineKind::TimeCap => "time_cap",
            LineKind::IdleCap => "idle_cap",
            LineKind::SessionMinimum => "session_minimum",
            LineKind::SessionCap => "session_cap",
            LineKind::MemberDiscount => "member_discount",
            LineKind::Coupon => "coupon",
        }
    }
}

/// The unit of a quantity or of a unit price.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// Kilowatt-hours.
    Kwh,
    /// Seconds.
    Second,
    /// Minutes.
    Minute,
    /// Hours.
    Hour,
    /// Sessions.
    Session,
    /// Swaps.
    Swap,
    /// Days.
    Day,
    /// Months.
    Month,
}

impl Unit {
    /// The snake_case name, as in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Unit::Kwh => "kWh",
            Unit::Second => "s",
            Unit::Minute => "min",
            Unit::Hour => "h",
            Unit::Session => "session",
            Unit::Swap => "swap",
            Unit::Day => "day",
            Unit::Month => "month",
        }
    }
}

/// One line of a quote.
///
/// Which fields are set depends on the kind:
/// - charge lines (`electricity`, `service`, `time`, `idle`, `session_fee`,
///   `swap`, `rental_day`, `rental_month`): `quantity` in `unit`, `unit_price`
///   per `per`; `amount` = `quantity × unit_price` (÷ 60 when minutes are
///   priced per hour), rounded once to the minor unit;
/// - adjustments (`time_minimum`, `time_cap`, `idle_cap`, `session_minimum`,
///   `session_cap`): `base` (what was adjusted) and `limit`; `amount` =
///   `limit − base`;
/// - discounts (`member_discount`, `coupon`): `base` (the eligible net
///   amount), `percent` or `limit`, and for 满减 `threshold`; `amount` is
///   negative.
///
/// Reductions (caps, discounts) are spread over the charge lines they apply
/// to: a charge line's `reduced_by` is its share, `net = amount − reduced_by
/// ≥ 0`. Reduction lines have `reduced_by = net = 0`.
///
/// In JSON a line is one flat object (`kind`, `tier` / `band` / `rule` /
/// `item`, `quantity`, `unit`, `unit_price`, `per`, `base`, `percent`,
/// `limit`, `threshold`, `amount`, `reduced_by`, `net`; absent fields are
/// left out). In Rust it is kept small — a quote is built on a hot path — so
/// the label is one [`LineLabel`], the figures of adjustments and discounts
/// sit in [`LineTerms`], and `net` is computed ([`QuoteLine::net`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "LineJson", try_from = "LineJson")]
pub struct QuoteLine {
    /// What the line is.
    pub kind: LineKind,
    /// What it is about: a tier, a power band, a rule or an item.
    pub label: Option<LineLabel>,
    /// Quantity (charge lines).
    pub quantity: Option<Decimal>,
    /// Unit of the quantity.
    pub unit: Option<Unit>,
    /// What the unit price is per.
    pub per: Option<Unit>,
    /// Unit price (charge lines).
    pub unit_price: Option<Money>,
    /// The line's amount: positive for charges, negative for reductions.
    pub amount: Money,
    /// Charge lines: the share of caps and discounts taken off this line.
    pub reduced_by: Money,
    /// Adjustments and discounts: what they were computed from.
    pub terms: Option<Box<LineTerms>>,
}

/// What a line is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineLabel {
    /// The time-of-use tier of an energy line.
    Tier(TierName),
    /// The power band of a time line.
    Band(BandRef),
    /// The rule whose price the line uses (`rules[i].name`).
    Rule(Arc<str>),
    /// Battery model, member level or coupon id. (A boxed `str`, not a
    /// `String`: it keeps a [`QuoteLine`] at 120 bytes.)
    Item(Box<str>),
}

/// The figures of an adjustment or discount line.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LineTerms {
    /// The amount the adjustment or discount was computed from.
    pub base: Option<Money>,
    /// The percentage of a percentage discount.
    pub percent: Option<Decimal>,
    /// A minimum, cap, coupon face value or 满减 amount.
    pub limit: Option<Money>,
    /// The spend threshold of a 满减 coupon.
    pub threshold: Option<Money>,
}

impl QuoteLine {
    /// The time-of-use tier (energy lines priced by a tier).
    pub fn tier(&self) -> Option<&str> {
        match &self.label {
            Some(LineLabel::Tier(t)) => Some(t),
            _ => None,
        }
    }

    /// The power band (time lines priced by a band).
    pub fn band(&self) -> Option<BandRef> {
        match &self.label {
            Some(LineLabel::Band(b)) => Some(*b),
            _ => None,
        }
    }

    /// The rule whose price the line uses.
    pub fn rule(&self) -> Option<&str> {
        match &self.label {
            Some(LineLabel::Rule(r)) => Some(r),
            _ => None,
        }
    }

    /// Battery model, member level or coupon id.
    pub fn item(&self) -> Option<&str> {
        match &self.label {
            Some(LineLabel::Item(i)) => Some(i),
            _ => None,
        }
    }

    /// The amount an adjustment or discount was computed from.
    pub fn base(&self) -> Option<Money> {
        self.terms.as_ref().and_then(|t| t.base)
    }

    /// The percentage of a percentage discount.
    pub fn percent(&self) -> Option<Decimal> {
        self.terms.as_ref().and_then(|t| t.percent)
    }

    /// A minimum, cap, coupon face value or 满减 amount.
    pub fn limit(&self) -> Option<Money> {
        self.terms.as_ref().and_then(|t| t.limit)
    }

    /// The spend threshold of a 满减 coupon.
    pub fn threshold(&self) -> Option<Money> {
        self.terms.as_ref().and_then(|t| t.threshold)
    }

    /// Charge lines: `amount − reduced_by`, never negative. Other lines: 0.
    pub fn net(&self) -> Money {
        if self.kind.is_charge() {
            self.amount
                .checked_sub(self.reduced_by)
                .unwrap_or(self.amount)
        } else {
            Money::zero(self.amount.currency())
        }
    }
}

/// A [`QuoteLine`] as JSON: one flat object.
#[derive(Serialize, Deserialize)]
struct LineJson {
    kind: LineKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tier: Option<TierName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    band: Option<BandRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    item: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rule: Option<Arc<str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    quantity: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    unit: Option<Unit>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    unit_price: Option<Money>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    per: Option<Unit>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    base: Option<Money>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    percent: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    limit: Option<Money>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    threshold: Option<Money>,
    amount: Money,
    reduced_by: Money,
    net: Money,
}

impl From<QuoteLine> for LineJson {
    fn from(l: QuoteLine) -> LineJson {
        let net = l.net();
        let terms = l.terms.map(|t| *t).unwrap_or_default();
        let (mut tier, mut band, mut item, mut rule) = (None, None, None, None);
        match l.label {
            None => {}
            Some(LineLabel::Tier(t)) => tier = Some(t),
            Some(LineLabel::Band(b)) => band = Some(b),
            Some(LineLabel::Rule(r)) => rule = Some(r),
            Some(LineLabel::Item(i)) => item = Some(i.into()),
        }
        LineJson {
            kind: l.kind,
            tier,
            band,
            item,
            rule,
            quantity: l.quantity,
            unit: l.unit,
            unit_price: l.unit_price,
            per: l.per,
            base: terms.base,
            percent: terms.percent,
            limit: terms.limit,
            threshold: terms.threshold,
            amount: l.amount,
            reduced_by: l.reduced_by,
            net,
        }
    }
}

impl TryFrom<LineJson> for QuoteLine {
    type Error = String;

    fn try_from(j: LineJson) -> Result<QuoteLine, String> {
        let labels = [
            j.tier.map(LineLabel::Tier),
            j.band.map(LineLabel::Band),
            j.rule.map(LineLabel::Rule),
            j.item.map(|i| LineLabel::Item(i.into_boxed_str())),
        ];
        let mut label = None;
        for l in labels.into_iter().flatten() {
            if label.is_some() {
                return Err("a quote line has at most one of tier, band, rule and item".to_owned());
            }
            label = Some(l);
        }
        let terms = LineTerms {
            base: j.base,
            percent: j.percent,
            limit: j.limit,
            threshold: j.threshold,
        };
        let line = QuoteLine {
            kind: j.kind,
            label,
            quantity: j.quantity,
            unit: j.unit,
            per: j.per,
            unit_price: j.unit_price,
            amount: j.amount,
            reduced_by: j.reduced_by,
            terms: (terms != LineTerms::default()).then(|| Box::new(terms)),
        };
        if line.net() != j.net {
            return Err(format!(
                "a quote line's net {} is not amount − reduced_by ({})",
                j.net,
                line.net()
            ));
        }
        Ok(line)
    }
}

/// Sums of line amounts by category; they add up to the quote's total.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subtotals {
    /// `electricity` lines.
    pub electricity: Money,
    /// `service` lines.
    pub service: Money,
    /// `time` lines.
    pub time: Money,
    /// `idle` lines.
    pub idle: Money,
    /// `session_fee` lines.
    pub fees: Money,
    /// `swap` lines.
    pub swap: Money,
    /// `rental_day` and `rental_month` lines.
    pub rental: Money,
    /// Minimums and caps (`time_minimum`, `time_cap`, `idle_cap`,
    /// `session_minimum`, `session_cap`).
    pub adjustments: Money,
    /// `member_discount` and `coupon` lines (zero or negative).
    pub discounts: Money,
}

/// A coupon that was given but took nothing off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedCoupon {
    /// The coupon id.
    pub id: String,
    /// Why.
    pub reason: SkipReason,
    /// What its eligible lines came to when it was tried.
    pub eligible: Money,
}

/// Why a coupon did not apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// A 满减 coupon whose spend threshold was not reached.
    BelowThreshold,
    /// Nothing in its scope is left to discount.
    NothingEligible,
}
