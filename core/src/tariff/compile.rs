//! Validation and compilation: [`Tariff`] → [`CompiledTariff`].
//!
//! Everything that can be checked without a session is checked here, once,
//! so that quoting is a tight loop over pre-computed tables.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{Datelike, NaiveDate};
use rust_decimal::Decimal;

use super::error::TariffError;
use super::model::{BandRule, DiscountScope, Granularity, Tariff, TimePricing, TouRange};
use super::quote::TierName;
use super::rules::Rules;
use crate::money::{Currency, MAX_SCALE, Money, Rounding};

type Result<T> = core::result::Result<T, TariffError>;

/// The most tiers a tariff may name.
pub const MAX_TIERS: usize = 32;
/// The most power bands a time tariff may have.
pub const MAX_BANDS: usize = 32;
/// Seconds in a day.
pub(crate) const DAY: u32 = 86_400;

/// One piece of a compiled day profile: `[start, end)` seconds of the day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Piece {
    pub start: u32,
    pub end: u32,
    pub tier: u8,
}

/// A unit price, with its value in 10^-5 units (unit prices have at most 5
/// places) worked out once when compiling, for the rounding of charge lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Price {
    pub money: Money,
    /// `money × 10^5`, or `None` when that does not fit 64 bits.
    pub p5: Option<i64>,
}

impl From<Money> for Price {
    fn from(money: Money) -> Price {
        let a = money.amount();
        let p5 = MAX_SCALE
            .checked_sub(a.scale())
            .and_then(|k| 10i64.checked_pow(k))
            .zip(i64::try_from(a.mantissa()).ok())
            .and_then(|(f, m)| m.checked_mul(f));
        Price { money, p5 }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Tier {
    pub name: TierName,
    /// (electricity, service) per kWh, when energy is priced.
    pub price: Option<(Price, Price)>,
}

#[derive(Debug, Clone)]
pub(crate) struct DateRule {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub profile: usize,
}

#[derive(Debug, Clone)]
pub(crate) struct Band {
    pub from_w: u32,
    pub to_w: Option<u32>,
    pub per_hour: Price,
}

#[derive(Debug, Clone)]
pub(crate) struct TimeRule {
    pub bands: Vec<Band>,
    pub rule: BandRule,
    pub step_s: i64,
    /// Seconds per unit of the lines' quantity: 60 (minutes) or 1 (seconds).
    pub unit_s: i64,
    pub free_s: i64,
    pub minimum: Option<Money>,
    pub cap: Option<Money>,
}

#[derive(Debug, Clone)]
pub(crate) struct IdleRule {
    pub grace_s: i64,
    pub per_hour: Price,
    pub step_s: i64,
    /// Seconds per unit of the line's quantity: 60 (minutes) or 1 (seconds).
    pub unit_s: i64,
    pub cap: Option<Money>,
}

#[derive(Debug, Clone)]
pub(crate) struct SwapTable {
    pub prices: BTreeMap<String, Money>,
    pub stations: BTreeMap<String, BTreeMap<String, Money>>,
    pub agents: BTreeMap<String, BTreeMap<String, Money>>,
}

#[derive(Debug, Clone)]
pub(crate) struct RentalTable {
    pub rates: BTreeMap<String, (Option<Money>, Option<Money>)>,
}

/// A validated tariff, compiled for fast quoting.
///
/// Build it once with [`Tariff::compile`] and quote many sessions with
/// [`CompiledTariff::quote`]; compiling validates everything that does not
/// depend on a session. Not serde: keep the [`Tariff`] JSON as the stored
/// form and compile it when loading.
///
/// ```
/// use chargeswap_core::tariff::{Tariff, Session};
/// let tariff: Tariff = serde_json::from_str(r#"{
///   "id": "t", "currency": "CNY",
///   "tou": {"ranges": [{"start": "08:00", "end": "22:00", "tier": "peak"},
///                      {"start": "22:00", "end": "08:00", "tier": "valley"}]},
///   "energy": {"tiers": {"peak":   {"electricity": "1.00", "service": "0.50"},
///                        "valley": {"electricity": "0.40", "service": "0.50"}}}
/// }"#)?;
/// let compiled = tariff.compile()?;
/// let session: Session = serde_json::from_str(r#"{"service": "charging",
///   "start": "2025-03-14T21:00:00", "end": "2025-03-14T23:00:00", "energy_kwh": "2.0000"}"#)?;
/// let q = compiled.quote(&session)?;
/// // 1 kWh peak (1.00 + 0.50) + 1 kWh valley (0.40 + 0.50) = 2.40
/// assert_eq!(q.total.to_string(), "¥2.40");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct CompiledTariff {
    pub(crate) id: Arc<str>,
    pub(crate) currency: Currency,
    pub(crate) rounding: Rounding,
    pub(crate) tiers: Vec<Tier>,
    pub(crate) profiles: Vec<Vec<Piece>>,
    pub(crate) weekday: [usize; 7],
    pub(crate) dates: Vec<DateRule>,
    pub(crate) energy: bool,
    /// `energy.step_wh` in 0.0001 kWh units.
    pub(crate) energy_step: Option<i64>,
    pub(crate) time: Option<TimeRule>,
    pub(crate) idle: Option<IdleRule>,
    pub(crate) session_fee: Option<Money>,
    pub(crate) min_price: Option<Money>,
    pub(crate) max_price: Option<Money>,
    pub(crate) scope: DiscountScope,
    pub(crate) swap: Option<SwapTable>,
    pub(crate) rental: Option<RentalTable>,
    pub(crate) rules: Option<Box<Rules>>,
}

impl CompiledTariff {
    /// The tariff id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The currency of every price.
    pub fn currency(&self) -> Currency {
        self.currency
    }

    /// The index of the day profile that applies on `date`.
    pub(crate) fn profile_for(&self, date: NaiveDate) -> &[Piece] {
        let wd = date.weekday().num_days_from_monday();
        self.profile_on(date, u8::try_from(wd).unwrap_or(0))
    }

    /// [`CompiledTariff::profile_for`] with the weekday of `date` known
    /// (Monday = 0).
    pub(crate) fn profile_on(&self, date: NaiveDate, weekday: u8) -> &[Piece] {
        // Few date rules in practice: a binary search over sorted, disjoint spans.
        let idx = match self.dates.binary_search_by(|r| {
            if r.to < date {
                core::cmp::Ordering::Less
            } else if r.from > date {
                core::cmp::Ordering::Greater
            } else {
                core::cmp::Ordering::Equal
            }
        }) {
            Ok(i) => self.dates.get(i).map_or(0, |r| r.profile),
            Err(_) => self.weekday.get(usize::from(weekday)).copied().unwrap_or(0),
        };
        self.profiles.get(idx).map_or(&[], Vec::as_slice)
    }
}

impl Tariff {
    /// Checks the tariff; the first problem found is returned, naming its
    /// field. [`Tariff::validate_all`] reports every problem.
    ///
    /// ```
    /// use chargeswap_core::tariff::{Tariff, TariffError};
    /// let t: Tariff = serde_json::from_str(r#"{"id": "x", "currency": "CNY",
    ///   "energy": {"tiers": {"flat": {"electricity": "-0.1", "service": "0.5"}}}}"#).unwrap();
    /// assert!(matches!(t.validate(), Err(TariffError::NegativePrice { path, .. })
    ///     if path == "energy.tiers.flat.electricity"));
    /// ```
    pub fn validate(&self) -> Result<()> {
        self.compile().map(drop)
    }

    /// Checks the tariff and reports every problem found, each naming its
    /// field, in the order the sections are checked (the first is the one
    /// [`Tariff::validate`] returns). A section stops at its own first
    /// problem, so one mistake is not reported twice; with an unknown
    /// currency nothing else is checked (amounts depend on its minor unit).
    ///
    /// ```
    /// use chargeswap_core::tariff::Tariff;
    /// let t: Tariff = serde_json::from_str(r#"{"id": "x", "currency": "CNY",
    ///   "energy": {"tiers": {"flat": {"electricity": "-0.1", "service": "0.5"}}},
    ///   "session_fee": "0.001"}"#).unwrap();
    /// let errors = t.validate_all().unwrap_err();
    /// let paths: Vec<_> = errors.iter().filter_map(|e| e.path()).collect();
    /// assert_eq!(paths, ["energy.tiers.flat.electricity", "session_fee"]);
    /// ```
    pub fn validate_all(&self) -> core::result::Result<(), Vec<TariffError>> {
        self.compile_all().map(drop)
    }

    /// Validates and compiles the tariff for quoting; the first problem found
    /// is returned.
    pub fn compile(&self) -> Result<CompiledTariff> {
        self.compile_all().map_err(|errors| {
            errors
                .into_iter()
                .next()
                .unwrap_or_else(|| TariffError::overflow("tariff"))
        })
    }

    fn compile_all(&self) -> core::result::Result<CompiledTariff, Vec<TariffError>> {
        Compiler::new(self).map_err(|e| vec![e])?.run()
    }
}

/// Checks a unit price: zero or more, at most [`MAX_SCALE`] places.
pub(crate) fn unit_price(path: &str, d: Decimal, currency: Currency) -> Result<Money> {
    non_negative(path, d)?;
    check_scale(path, d, MAX_SCALE)?;
    Money::new(d, currency).map_err(|error| TariffError::Money {
        path: path.to_owned(),
        error,
    })
}

/// Checks an amount: zero or more, a whole number of minor units.
pub(crate) fn amount(path: &str, d: Decimal, currency: Currency) -> Result<Money> {
    non_negative(path, d)?;
    check_scale(path, d, currency.minor_units())?;
    Money::new(d, currency).map_err(|error| TariffError::Money {
        path: path.to_owned(),
        error,
    })
}

/// Checks a percentage: `0 < p ≤ 100`, at most [`MAX_SCALE`] places.
pub(crate) fn percent(path: &str, d: Decimal) -> Result<Decimal> {
    check_scale(path, d, MAX_SCALE)?;
    if d <= Decimal::ZERO || d > Decimal::ONE_HUNDRED {
        return Err(TariffError::invalid(
            path,
            d,
            "a percentage above 0 and at most 100",
        ));
    }
    Ok(d)
}

pub(crate) fn non_negative(path: &str, d: Decimal) -> Result<()> {
    if d.is_sign_negative() && !d.is_zero() {
        return Err(TariffError::NegativePrice {
            path: path.to_owned(),
            value: d.to_string(),
        });
    }
    Ok(())
}

pub(crate) fn check_scale(path: &str, d: Decimal, max: u32) -> Result<()> {
    let scale = d.normalize().scale();
    if scale > max {
        return Err(TariffError::TooManyDecimals {
            path: path.to_owned(),
            value: d.to_string(),
            scale,
            max,
        });
    }
    Ok(())
}

/// `HH:MM` → minutes of the day; `24:00` only when `allow_24`.
pub(crate) fn parse_hhmm(path: &str, s: &str, allow_24: bool) -> Result<u32> {
    let expected = if allow_24 {
        "a time of day \"HH:MM\" from 00:00 to 24:00"
    } else {
        "a time of day \"HH:MM\" from 00:00 to 23:59"
    };
    let b = s.as_bytes();
    let digit = |i: usize| {
        b.get(i)
            .filter(|c| c.is_ascii_digit())
            .map(|c| u32::from(c - b'0'))
    };
    let parsed = match (b.len(), b.get(2), digit(0), digit(1), digit(3), digit(4)) {
        (5, Some(b':'), Some(h1), Some(h2), Some(m1), Some(m2)) => {
            Some((h1 * 10 + h2, m1 * 10 + m2))
        }
        _ => None,
    };
    match parsed {
        Some((h, m)) if h < 24 && m < 60 => Ok(h * 60 + m),
        Some((24, 0)) if allow_24 => Ok(24 * 60),
        _ => Err(TariffError::invalid(path, s, expected)),
    }
}

/// Minutes of the day → `HH:MM`.
pub(crate) fn hhmm(minutes: u32) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

/// A billing step → (step in seconds, seconds per unit of quantity: 60 for
/// steps in minutes, 1 for steps in seconds).
pub(crate) fn granularity(path: &str, g: Granularity) -> Result<(i64, i64)> {
    match g {
        Granularity::StepSeconds(n) => {
            if n == 0 || n > DAY {
                return Err(TariffError::invalid(
                    path,
                    n,
                    "a step of 1 to 86400 seconds",
                ));
            }
            Ok((i64::from(n), 1))
        }
        Granularity::StepMinutes(m) if m == 0 || m > 1440 => {
            Err(TariffError::invalid(path, m, "a step of 1 to 1440 minutes"))
        }
        g => Ok((i64::from(g.seconds()), 60)),
    }
}

pub(crate) fn band_rule_name(r: BandRule) -> &'static str {
    match r {
        BandRule::HighestInStep => "highest_in_step",
        BandRule::HighestInSession => "highest_in_session",
        BandRule::AsMeasured => "as_measured",
    }
}

pub(crate) struct Compiler<'a> {
    t: &'a Tariff,
    pub(crate) currency: Currency,
    tiers: Vec<Tier>,
    /// Tier names may be added by `tou` only when energy is not priced.
    open_tiers: bool,
    errors: Vec<TariffError>,
}

impl<'a> Compiler<'a> {
    fn new(t: &'a Tariff) -> Result<Compiler<'a>> {
        let currency =
            Currency::from_code(&t.currency).map_err(|_| TariffError::UnknownCurrency {
                path: "currency".to_owned(),
                code: t.currency.clone(),
            })?;
        Ok(Compiler {
            t,
            currency,
            tiers: Vec::new(),
            open_tiers: true,
            errors: Vec::new(),
        })
    }

    /// Records an error and goes on; the value when there was none.
    pub(crate) fn record<T>(&mut self, r: Result<T>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.errors.push(e);
                None
            }
        }
    }

    /// Compiles the tariff, checking every section even after a problem (a
    /// section stops at its own first problem, so one mistake is not reported
    /// twice). The errors come in the order the sections are checked.
    fn run(mut self) -> core::result::Result<CompiledTariff, Vec<TariffError>> {
        let t = self.t;
        let cur = self.currency;
        if t.id.is_empty() {
            self.record::<()>(Err(TariffError::invalid("id", "", "a non-empty tariff id")));
        }
        if let Some(e) = &t.energy {
            if e.tiers.is_empty() {
                self.record::<()>(Err(TariffError::invalid(
                    "energy.tiers",
                    "{}",
                    "at least one tier with electricity and service prices",
                )));
            }
            for (k, (name, p)) in e.tiers.iter().enumerate() {
                let path = format!("energy.tiers.{name}");
                let r = check_tier_name(&path, name).and_then(|()| {
                    Ok((
                        unit_price(&format!("{path}.electricity"), p.electricity, cur)?,
                        unit_price(&format!("{path}.service"), p.service, cur)?,
                    ))
                });
                if k >= MAX_TIERS {
                    if self.record(r).is_some() {
                        self.record::<()>(Err(TariffError::invalid(
                            "energy.tiers",
                            e.tiers.len(),
                            "at most 32 tiers",
                        )));
                    }
                    break;
                }
                // A tier with a bad price is still a tier: the schedule may name it.
                let price = self
                    .record(r)
                    .unwrap_or((Money::zero(cur), Money::zero(cur)));
                self.tiers.push(Tier {
                    name: TierName::new(name),
                    price: Some((price.0.into(), price.1.into())),
                });
            }
            self.open_tiers = false;
        }
        let energy_step = t.energy.as_ref().and_then(|e| e.step_wh).and_then(|w| {
            let r = super::rules::step_wh("energy.step_wh", w);
            self.record(r)
        });

        // Time-of-use schedule.
        let mut profiles = Vec::new();
        let mut weekday = [0usize; 7];
        let mut dates = Vec::new();
        match &t.tou {
            None => {
                let flat = match self.tier_index("flat") {
                    Some(i) => i,
                    None if self.open_tiers => self.add_tier("flat"),
                    None => {
                        self.record::<()>(Err(TariffError::invalid(
                            "tou",
                            "(absent)",
                            "a `tou` schedule, or a tier named \"flat\" in energy.tiers (without `tou` the whole day is tier flat)",
                        )));
                        0
                    }
                };
                profiles.push(vec![Piece {
                    start: 0,
                    end: DAY,
                    tier: flat,
                }]);
            }
            Some(tou) => {
                let r = self.profile("tou", tou.ranges.as_deref(), tou.slots.as_deref());
                profiles.push(self.record(r).unwrap_or_default());
                let mut seen: [Option<String>; 7] = Default::default();
                for (i, w) in tou.weekday.iter().enumerate() {
                    let path = format!("tou.weekday[{i}]");
                    if w.days.is_empty() {
                        self.record::<()>(Err(TariffError::invalid(
                            format!("{path}.days"),
                            "[]",
                            "at least one weekday (mon … sun)",
                        )));
                    }
                    let r = self.profile(&path, w.ranges.as_deref(), w.slots.as_deref());
                    profiles.push(self.record(r).unwrap_or_default());
                    let idx = profiles.len() - 1;
                    for (j, d) in w.days.iter().enumerate() {
                        let dpath = format!("{path}.days[{j}]");
                        let Some(slot) = seen.get_mut(d.index()) else {
                            continue;
                        };
                        if let Some(other) = slot {
                            let e = TariffError::DuplicateWeekday {
                                path: dpath,
                                day: d.name().to_owned(),
                                other: other.clone(),
                            };
                            self.record::<()>(Err(e));
                            continue;
                        }
                        *slot = Some(dpath);
                        if let Some(x) = weekday.get_mut(d.index()) {
                            *x = idx;
                        }
                    }
                }
                let mut spans: Vec<(NaiveDate, NaiveDate, usize)> = Vec::new();
                for (i, d) in tou.dates.iter().enumerate() {
                    let path = format!("tou.dates[{i}]");
                    let to = d.to.unwrap_or(d.from);
                    if to < d.from {
                        self.record::<()>(Err(TariffError::invalid(
                            format!("{path}.to"),
                            to,
                            "a date on or after `from`",
                        )));
                        continue;
                    }
                    let r = self.profile(&path, d.ranges.as_deref(), d.slots.as_deref());
                    profiles.push(self.record(r).unwrap_or_default());
                    spans.push((d.from, to, i));
                    dates.push(DateRule {
                        from: d.from,
                        to,
                        profile: profiles.len() - 1,
                    });
                }
                spans.sort_by_key(|s| (s.0, s.2));
                for w in spans.windows(2) {
                    if let Some((a, b)) = (match w {
                        [a, b] => Some((a, b)),
                        _ => None,
                    })
                    .filter(|(a, b)| b.0 <= a.1)
                    {
                        let (first, second) = if a.2 < b.2 { (a, b) } else { (b, a) };
                        self.record::<()>(Err(TariffError::OverlappingDates {
                            path: format!("tou.dates[{}]", second.2),
                            other: format!("tou.dates[{}]", first.2),
                            date: b.0.to_string(),
                        }));
                    }
                }
                dates.sort_by_key(|r| r.from);
            }
        }

        let time = match &t.time {
            None => None,
            Some(tp) => {
                let r = self.time(tp);
                self.record(r)
            }
        };

        let idle = match &t.idle {
            None => None,
            Some(ip) => {
                let r =
                    granularity("idle.granularity", ip.granularity).and_then(|(step_s, unit_s)| {
                        Ok(IdleRule {
                            grace_s: i64::from(ip.grace_minutes) * 60,
                            per_hour: unit_price("idle.per_hour", ip.per_hour, cur)?.into(),
                            step_s,
                            unit_s,
                            cap: ip.cap.map(|d| amount("idle.cap", d, cur)).transpose()?,
                        })
                    });
                self.record(r)
            }
        };

        let mut limit = |path: &str, d: Option<Decimal>| {
            let r = d.map(|d| amount(path, d, cur)).transpose();
            self.record(r).flatten()
        };
        let session_fee = limit("session_fee", t.session_fee);
        let min_price = limit("min_price", t.min_price);
        let max_price = limit("max_price", t.max_price);
        if let Some((_, ma)) = min_price
            .zip(max_price)
            .filter(|(mi, ma)| ma.amount() < mi.amount())
        {
            self.record::<()>(Err(TariffError::invalid(
                "max_price",
                ma.to_plain_string(),
                "a maximum at or above min_price",
            )));
        }

        let swap = match &t.swap {
            None => None,
            Some(sp) => {
                let r = self.swap(sp);
                self.record(r)
            }
        };

        let rental = match &t.rental {
            None => None,
            Some(rp) => {
                let r = self.rental(rp);
                self.record(r)
            }
        };

        let rules = self.rules(&t.rules);
        if let (Some(rules), Some(tp)) = (&rules, &t.time) {
            if rules.time_mask != 0 && tp.band_rule != BandRule::AsMeasured {
                let i = rules.time_mask.trailing_zeros();
                self.record::<()>(Err(TariffError::invalid(
                    "time.band_rule",
                    band_rule_name(tp.band_rule),
                    &format!(
                        "\"as_measured\": rules[{i}] prices time, and a rule's time price applies second by second"
                    ),
                )));
            }
        }

        if !self.errors.is_empty() {
            return Err(self.errors);
        }
        Ok(CompiledTariff {
            id: Arc::from(t.id.as_str()),
            currency: cur,
            rounding: t.rounding,
            tiers: self.tiers,
            profiles,
            weekday,
            dates,
            energy: t.energy.is_some(),
            energy_step,
            time,
            idle,
            session_fee,
            min_price,
            max_price,
            scope: t.member_discount_scope,
            swap,
            rental,
            rules,
        })
    }

    fn time(&self, tp: &TimePricing) -> Result<TimeRule> {
        let cur = self.currency;
        let bands = self.bands(&tp.bands)?;
        let (step_s, unit_s) = granularity("time.granularity", tp.granularity)?;
        let minimum = tp
            .minimum
            .map(|d| amount("time.minimum", d, cur))
            .transpose()?;
        let cap = tp.cap.map(|d| amount("time.cap", d, cur)).transpose()?;
        if let Some((_, ca)) = minimum
            .zip(cap)
            .filter(|(mi, ca)| ca.amount() < mi.amount())
        {
            return Err(TariffError::invalid(
                "time.cap",
                ca.to_plain_string(),
                "a cap at or above time.minimum",
            ));
        }
        let as_measured = tp.band_rule == BandRule::AsMeasured;
        Ok(TimeRule {
            bands,
            rule: tp.band_rule,
            step_s,
            unit_s: if as_measured { 1 } else { unit_s },
            free_s: i64::from(tp.free_minutes) * 60,
            minimum,
            cap,
        })
    }

    fn swap(&self, sp: &super::model::SwapPricing) -> Result<SwapTable> {
        let cur = self.currency;
        let mut prices = BTreeMap::new();
        for (m, p) in &sp.prices {
            prices.insert(m.clone(), unit_price(&format!("swap.prices.{m}"), *p, cur)?);
        }
        let overrides = |what: &str,
                         src: &BTreeMap<String, BTreeMap<String, Decimal>>|
         -> Result<BTreeMap<String, BTreeMap<String, Money>>> {
            let mut out = BTreeMap::new();
            for (id, models) in src {
                let mut m2 = BTreeMap::new();
                for (m, p) in models {
                    let path = format!("swap.{what}.{id}.{m}");
                    if !prices.contains_key(m) {
                        return Err(TariffError::UnknownBatteryModel {
                            path,
                            model: m.clone(),
                            known: join(prices.keys()),
                        });
                    }
                    m2.insert(m.clone(), unit_price(&path, *p, cur)?);
                }
                out.insert(id.clone(), m2);
            }
            Ok(out)
        };
        let stations = overrides("stations", &sp.stations)?;
        let agents = overrides("agents", &sp.agents)?;
        Ok(SwapTable {
            prices,
            stations,
            agents,
        })
    }

    fn rental(&self, rp: &super::model::RentalPricing) -> Result<RentalTable> {
        let cur = self.currency;
        let mut rates = BTreeMap::new();
        for (m, r) in &rp.rates {
            let path = format!("rental.rates.{m}");
            if r.day.is_none() && r.month.is_none() {
                return Err(TariffError::invalid(
                    path,
                    "{}",
                    "a `day` rate, a `month` rate or both",
                ));
            }
            let day = r
                .day
                .map(|d| unit_price(&format!("{path}.day"), d, cur))
                .transpose()?;
            let month = r
                .month
                .map(|d| unit_price(&format!("{path}.month"), d, cur))
                .transpose()?;
            rates.insert(m.clone(), (day, month));
        }
        Ok(RentalTable { rates })
    }

    /// The index of a tier the schedule knows, for a rule's `tiers`.
    pub(crate) fn known_tier(&self, path: &str, name: &str) -> Result<u8> {
        self.tier_index(name)
            .ok_or_else(|| TariffError::UnknownTier {
                path: path.to_owned(),
                tier: name.to_owned(),
                known: join(self.tiers.iter().map(|t| t.name.as_str())),
            })
    }

    fn tier_index(&self, name: &str) -> Option<u8> {
        self.tiers
            .iter()
            .position(|t| t.name.as_str() == name)
            .and_then(|i| u8::try_from(i).ok())
    }

    fn add_tier(&mut self, name: &str) -> u8 {
        self.tiers.push(Tier {
            name: TierName::new(name),
            price: None,
        });
        u8::try_from(self.tiers.len() - 1).unwrap_or(u8::MAX)
    }

    fn tier(&mut self, path: &str, name: &str) -> Result<u8> {
        if let Some(i) = self.tier_index(name) {
            return Ok(i);
        }
        if self.open_tiers {
            check_tier_name(path, name)?;
            if self.tiers.len() >= MAX_TIERS {
                return Err(TariffError::invalid(
                    path,
                    name,
                    "at most 32 distinct tiers",
                ));
            }
            return Ok(self.add_tier(name));
        }
        Err(TariffError::UnknownTier {
            path: path.to_owned(),
            tier: name.to_owned(),
            known: join(self.tiers.iter().map(|t| t.name.as_str())),
        })
    }

    /// Compiles one day profile given as ranges or slots.
    fn profile(
        &mut self,
        path: &str,
        ranges: Option<&[TouRange]>,
        slots: Option<&[String]>,
    ) -> Result<Vec<Piece>> {
        let mut pieces: Vec<(u32, u32, u8, usize)> = Vec::new(); // minutes, tier, range index
        match (ranges, slots) {
            (Some(_), Some(_)) | (None, None) => {
                return Err(TariffError::invalid(
                    path,
                    if ranges.is_some() {
                        "ranges and slots"
                    } else {
                        "neither"
                    },
                    "exactly one of `ranges` and `slots`",
                ));
            }
            (None, Some(slots)) => {
                if slots.len() != 48 {
                    return Err(TariffError::WrongSlotCount {
                        path: format!("{path}.slots"),
                        count: slots.len(),
                    });
                }
                for (i, name) in slots.iter().enumerate() {
                    let tier = self.tier(&format!("{path}.slots[{i}]"), name)?;
                    let start = u32::try_from(i).unwrap_or(0) * 30;
                    pieces.push((start, start + 30, tier, i));
                }
            }
            (Some(ranges), None) => {
                if ranges.is_empty() {
                    return Err(TariffError::TouGap {
                        path: format!("{path}.ranges"),
                        from: "00:00".to_owned(),
                        to: "24:00".to_owned(),
                    });
                }
                for (i, r) in ranges.iter().enumerate() {
                    let rp = format!("{path}.ranges[{i}]");
                    let start = parse_hhmm(&format!("{rp}.start"), &r.start, false)?;
                    let end = parse_hhmm(&format!("{rp}.end"), &r.end, true)?;
                    let tier = self.tier(&format!("{rp}.tier"), &r.tier)?;
                    if start == end {
                        return Err(TariffError::invalid(
                            format!("{rp}.end"),
                            &r.end,
                            "an end different from the start (use 00:00–24:00 for the whole day)",
                        ));
                    }
                    if start < end {
                        pieces.push((start, end, tier, i));
                    } else {
                        // Wraps past midnight: [start, 24:00) and [00:00, end).
                        pieces.push((start, 1440, tier, i));
                        if end > 0 {
                            pieces.push((0, end, tier, i));
                        }
                    }
                }
            }
        }
        pieces.sort_by_key(|p| (p.0, p.3));
        let what = if ranges.is_some() { "ranges" } else { "slots" };
        let mut out: Vec<Piece> = Vec::with_capacity(pieces.len());
        let mut cursor = 0u32;
        let mut prev: Option<(u32, usize)> = None; // (end, index)
        for &(start, end, tier, i) in &pieces {
            if start > cursor {
                return Err(TariffError::TouGap {
                    path: format!("{path}.{what}[{i}].start"),
                    from: hhmm(cursor),
                    to: hhmm(start),
                });
            }
            if start < cursor {
                let (pend, pi) = prev.unwrap_or((cursor, i));
                return Err(TariffError::TouOverlap {
                    path: format!("{path}.{what}[{i}].start"),
                    other: format!("{path}.{what}[{pi}]"),
                    from: hhmm(start),
                    to: hhmm(end.min(pend)),
                });
            }
            cursor = end;
            prev = Some((end, i));
            match out.last_mut() {
                Some(last) if last.tier == tier => last.end = end * 60,
                _ => out.push(Piece {
                    start: start * 60,
                    end: end * 60,
                    tier,
                }),
            }
        }
        if cursor < 1440 {
            let i = prev.map_or(0, |p| p.1);
            return Err(TariffError::TouGap {
                path: format!("{path}.{what}[{i}].end"),
                from: hhmm(cursor),
                to: "24:00".to_owned(),
            });
        }
        Ok(out)
    }

    fn bands(&self, bands: &[super::model::PowerBand]) -> Result<Vec<Band>> {
        if bands.is_empty() {
            return Err(TariffError::UncoveredPower {
                path: "time.bands".to_owned(),
                from_w: 0,
                to_w: None,
            });
        }
        if bands.len() > MAX_BANDS {
            return Err(TariffError::invalid(
                "time.bands",
                bands.len(),
                "at most 32 power bands",
            ));
        }
        let mut out = Vec::with_capacity(bands.len());
        let mut cursor: Option<u32> = Some(0);
        for (i, b) in bands.iter().enumerate() {
            let path = format!("time.bands[{i}]");
            let Some(cur) = cursor else {
                // The previous band was open-ended.
                return Err(TariffError::PowerBandOverlap {
                    path: format!("{path}.from_w"),
                    other: format!("time.bands[{}]", i.saturating_sub(1)),
                    from_w: b.from_w,
                    to_w: b.to_w.unwrap_or(u32::MAX),
                });
            };
            if b.from_w > cur {
                return Err(TariffError::UncoveredPower {
                    path: format!("{path}.from_w"),
                    from_w: cur,
                    to_w: Some(b.from_w),
                });
            }
            if b.from_w < cur {
                return Err(TariffError::PowerBandOverlap {
                    path: format!("{path}.from_w"),
                    other: format!("time.bands[{}]", i.saturating_sub(1)),
                    from_w: b.from_w,
                    to_w: cur,
                });
            }
            if let Some(to) = b.to_w.filter(|to| *to <= b.from_w) {
                return Err(TariffError::invalid(
                    format!("{path}.to_w"),
                    to,
                    "a to_w above from_w",
                ));
            }
            out.push(Band {
                from_w: b.from_w,
                to_w: b.to_w,
                per_hour: unit_price(&format!("{path}.per_hour"), b.per_hour, self.currency)?
                    .into(),
            });
            cursor = b.to_w;
        }
        if let Some(cur) = cursor {
            return Err(TariffError::UncoveredPower {
                path: format!("time.bands[{}].to_w", bands.len() - 1),
                from_w: cur,
                to_w: None,
            });
        }
        Ok(out)
    }
}

fn check_tier_name(path: &str, name: &str) -> Result<()> {
    if name.is_empty() || name.chars().count() > 32 || name.chars().any(char::is_control) {
        return Err(TariffError::invalid(
            path,
            name,
            "a tier name of 1 to 32 printable characters",
        ));
    }
    Ok(())
}

pub(crate) fn join<'s, I: IntoIterator<Item = &'s S>, S: AsRef<str> + ?Sized + 's>(
    items: I,
) -> String {
    let v: Vec<&str> = items.into_iter().map(AsRef::as_ref).collect();
    if v.is_empty() {
        "(none)".to_owned()
    } else {
        v.join(", ")
    }
}

/// Converts YKC tier codes (`0` sharp, `1` peak, `2` flat, `3` valley — the
/// 48 half-hour slots of a YKC price model frame) into the tier names of a
/// `slots` profile.
///
/// ```
/// use chargeswap_core::tariff::ykc_slots;
/// let mut codes = [3u8; 48];
/// codes[16..20].fill(1); // 08:00–10:00 peak
/// let slots = ykc_slots(&codes)?;
/// assert_eq!(slots[0], "valley");
/// assert_eq!(slots[16], "peak");
/// # Ok::<(), chargeswap_core::tariff::TariffError>(())
/// ```
pub fn ykc_slots(codes: &[u8]) -> Result<Vec<String>> {
    if codes.len() != 48 {
        return Err(TariffError::WrongSlotCount {
            path: "slots".to_owned(),
            count: codes.len(),
        });
    }
    codes
        .iter()
        .enumerate()
        .map(|(i, c)| match c {
            0 => Ok("sharp".to_owned()),
            1 => Ok("peak".to_owned()),
            2 => Ok("flat".to_owned()),
            3 => Ok("valley".to_owned()),
            other => Err(TariffError::invalid(
                format!("slots[{i}]"),
                other,
                "a YKC tier code 0 (sharp), 1 (peak), 2 (flat) or 3 (valley)",
            )),
        })
        .collect()
}
