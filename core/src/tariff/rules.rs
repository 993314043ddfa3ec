//! Conditional prices ([`PriceRule`]), compiled: OCPI's tariff elements and
//! restrictions as bit masks and integer bounds, so that the engine can tell
//! which rule holds in a piece of a session with a few comparisons.
//!
//! The engine cuts a session into pieces in which every condition is
//! constant (see [`Rules::next_clock_cut`] and friends); in each piece,
//! [`Rules::holding`] gives the rules that hold, and the first of them that
//! prices a kind of fee sets that fee's price.

use std::sync::Arc;

use chrono::NaiveDate;
use rust_decimal::Decimal;

use super::compile::{
    Compiler, DAY, Price, amount, check_scale, granularity, non_negative, parse_hhmm, unit_price,
};
use super::error::TariffError;
use super::model::{Conditions, Granularity, PriceRule};
use crate::money::Money;

type Result<T> = core::result::Result<T, TariffError>;

/// The most rules a tariff may have (they are evaluated as a 64-bit mask).
pub const MAX_RULES: usize = 64;

/// Decimal places of current conditions and samples (milliamperes).
pub(crate) const CURRENT_DP: u32 = 3;

/// A per-hour price of a rule, with the billing step that applies when the
/// billed time ends under it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HourPrice {
    pub per_hour: Price,
    /// Step in seconds; `None`: the section's (or one minute).
    pub step_s: Option<i64>,
}

/// The energy prices of a rule.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EnergyPrice {
    pub electricity: Price,
    pub service: Price,
    /// Step in 0.0001 kWh units; `None`: the section's `step_wh`.
    pub step: Option<i64>,
}

/// One compiled rule. Bounds are `[min, max)`; an absent bound is the
/// widest value of its type.
#[derive(Debug, Clone)]
pub(crate) struct Rule {
    pub name: Arc<str>,
    /// Bit per tier index; all ones when the rule names no tiers.
    pub tiers: u64,
    /// `[start, end)` seconds of the day; `start > end` wraps past midnight.
    pub clock: Option<(u32, u32)>,
    /// Bit per weekday, Monday = bit 0.
    pub days: u8,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    pub kwh: (i64, i64),
    pub duration: (i64, i64),
    pub idle: (i64, i64),
    pub watts: (u64, u64),
    pub milliamps: (i64, i64),
    pub energy: Option<EnergyPrice>,
    pub time: Option<HourPrice>,
    pub idle_price: Option<HourPrice>,
    pub session_fee: Option<Money>,
}

/// The facts at an instant against which conditions are checked.
#[derive(Debug, Clone, Copy)]
pub(crate) struct At {
    pub tier: u8,
    /// Second of the day.
    pub sod: u32,
    /// Monday = 0.
    pub weekday: u8,
    pub date: NaiveDate,
    /// Energy charged since the session's start, 0.0001 kWh.
    pub kwh: i64,
    /// Seconds since the session's start.
    pub duration: i64,
    /// Seconds since the session's end (0 while charging).
    pub idle: i64,
    pub watts: u32,
    pub milliamps: i64,
}

impl Rule {
    fn holds(&self, a: &At) -> bool {
        let within = |(lo, hi): (i64, i64), v: i64| lo <= v && v < hi;
        self.tiers & (1u64 << (a.tier & 63)) != 0
            && self.days & (1u8 << (a.weekday & 7)) != 0
            && self.clock.is_none_or(|(s, e)| {
                if s < e {
                    s <= a.sod && a.sod < e
                } else {
                    a.sod >= s || a.sod < e
                }
            })
            && self.from.is_none_or(|f| a.date >= f)
            && self.to.is_none_or(|t| a.date <= t)
            && within(self.kwh, a.kwh)
            && within(self.duration, a.duration)
            && within(self.idle, a.idle)
            && self.watts.0 <= u64::from(a.watts)
            && u64::from(a.watts) < self.watts.1
            && within(self.milliamps, a.milliamps)
    }

    /// True when the rule's power and current conditions hold (the part of
    /// its conditions that changes with power samples).
    fn holds_power(&self, watts: u32, milliamps: i64) -> bool {
        self.watts.0 <= u64::from(watts)
            && u64::from(watts) < self.watts.1
            && self.milliamps.0 <= milliamps
            && milliamps < self.milliamps.1
    }
}

/// The compiled rules of a tariff, with the instants at which their
/// conditions can change.
#[derive(Debug, Clone)]
pub(crate) struct Rules {
    pub list: Vec<Rule>,
    /// Where conditions change, for the rules that matter while charging
    /// (those pricing energy, time or the session fee) and while idle (idle
    /// or the session fee): a piece is not cut where nothing can change.
    charging: Cuts,
    idling: Cuts,
    /// Bit masks of the rules that price each kind.
    pub energy_mask: u64,
    pub time_mask: u64,
    pub idle_mask: u64,
    pub fee_mask: u64,
    /// Whether any rule has power or current conditions, current ones, kWh ones.
    pub uses_power: bool,
    pub uses_current: bool,
    pub uses_kwh: bool,
}

/// The instants at which conditions change, each list sorted and without 0.
#[derive(Debug, Clone, Default)]
struct Cuts {
    /// Seconds of the day at which a clock condition starts or ends, in (0, DAY).
    clock: Vec<u32>,
    /// Session durations (seconds) at which a duration condition changes.
    duration: Vec<i64>,
    /// Idle durations (seconds) at which an idle condition changes.
    idle: Vec<i64>,
    /// Energies (0.0001 kWh) at which a kWh condition changes.
    kwh: Vec<i64>,
}

impl Cuts {
    fn add(&mut self, r: &Rule) {
        if let Some((s, e)) = r.clock {
            self.clock
                .extend([s, e].into_iter().filter(|c| *c > 0 && *c < DAY));
        }
        for (lo, hi, cuts) in [
            (r.duration.0, r.duration.1, &mut self.duration),
            (r.idle.0, r.idle.1, &mut self.idle),
            (r.kwh.0, r.kwh.1, &mut self.kwh),
        ] {
            cuts.extend([lo, hi].into_iter().filter(|c| *c > 0 && *c < i64::MAX));
        }
    }

    fn finish(&mut self) {
        self.clock.sort_unstable();
        self.clock.dedup();
        for v in [&mut self.duration, &mut self.idle, &mut self.kwh] {
            v.sort_unstable();
            v.dedup();
        }
    }
}

fn first_above<T: Copy + Ord>(cuts: &[T], v: T) -> Option<T> {
    let i = cuts.partition_point(|c| *c <= v);
    cuts.get(i).copied()
}

impl Rules {
    /// The rules that hold at `a`, as a bit mask (rule `i` = bit `i`).
    pub fn holding(&self, a: &At) -> u64 {
        let mut m = 0u64;
        for (i, r) in self.list.iter().enumerate() {
            if r.holds(a) {
                m |= 1u64 << (i & 63);
            }
        }
        m
    }

    /// The rules priced while charging whose power and current conditions
    /// hold, as a bit mask.
    pub fn power_signature(&self, watts: u32, milliamps: i64) -> u64 {
        let mut m = 0u64;
        let charging = self.energy_mask | self.time_mask | self.fee_mask;
        for (i, r) in self.list.iter().enumerate() {
            if charging & (1u64 << (i & 63)) != 0 && r.holds_power(watts, milliamps) {
                m |= 1u64 << (i & 63);
            }
        }
        m
    }

    /// The first rule in `mask`.
    pub fn first(&self, mask: u64) -> Option<(usize, &Rule)> {
        if mask == 0 {
            return None;
        }
        let i = mask.trailing_zeros() as usize;
        self.list.get(i).map(|r| (i, r))
    }

    fn cuts(&self, idle: bool) -> &Cuts {
        if idle { &self.idling } else { &self.charging }
    }

    /// The next second of the day after `sod` at which a clock condition
    /// changes (or `DAY`), while charging or while idle.
    pub fn next_clock_cut(&self, idle: bool, sod: u32) -> u32 {
        first_above(&self.cuts(idle).clock, sod).unwrap_or(DAY)
    }

    /// The next session duration after `d` at which a duration condition changes.
    pub fn next_duration_cut(&self, idle: bool, d: i64) -> Option<i64> {
        first_above(&self.cuts(idle).duration, d)
    }

    /// The next idle duration after `d` at which an idle condition changes.
    pub fn next_idle_cut(&self, d: i64) -> Option<i64> {
        first_above(&self.idling.idle, d)
    }

    /// The next energy after `kwh` (0.0001 kWh) at which a kWh condition
    /// changes while charging.
    pub fn next_kwh_cut(&self, kwh: i64) -> Option<i64> {
        first_above(&self.charging.kwh, kwh)
    }
}

/// kWh (at most 4 places, zero or more) → 0.0001 kWh units.
fn kwh_units(path: &str, d: Decimal) -> Result<i64> {
    non_negative(path, d)?;
    check_scale(path, d, super::engine::ENERGY_DP)?;
    scaled(path, d, super::engine::ENERGY_DP)
}

/// Amperes (at most 3 places, zero or more) → milliamperes.
pub(crate) fn milliamps(path: &str, d: Decimal) -> Result<i64> {
    non_negative(path, d)?;
    check_scale(path, d, CURRENT_DP)?;
    scaled(path, d, CURRENT_DP)
}

fn scaled(path: &str, d: Decimal, dp: u32) -> Result<i64> {
    let mut v = d.normalize();
    v.rescale(dp);
    if v.scale() != dp {
        return Err(TariffError::overflow(path));
    }
    i64::try_from(v.mantissa()).map_err(|_| TariffError::overflow(path))
}

/// `[min, max)` from two optional bounds, checking `min < max`.
fn bounds(
    path: &str,
    max_name: &str,
    min: Option<i64>,
    max: Option<i64>,
    show: impl Fn(i64) -> String,
) -> Result<(i64, i64)> {
    let lo = min.unwrap_or(i64::MIN);
    let hi = max.unwrap_or(i64::MAX);
    if let (Some(lo), Some(hi)) = (min, max) {
        if hi <= lo {
            return Err(TariffError::invalid(
                format!("{path}.{max_name}"),
                show(hi),
                "a maximum above the minimum (bounds are [min, max))",
            ));
        }
    }
    Ok((lo, hi))
}

/// The step in seconds of a rule's granularity, if it gives one.
fn rule_step(path: &str, g: Option<Granularity>) -> Result<Option<i64>> {
    g.map(|g| granularity(path, g).map(|(s, _)| s)).transpose()
}

impl Compiler<'_> {
    /// Compiles `rules`, recording every problem; `None` when there are none.
    pub(crate) fn rules(&mut self, rules: &[PriceRule]) -> Option<Box<Rules>> {
        if rules.is_empty() {
            return None;
        }
        if rules.len() > MAX_RULES {
            self.record::<()>(Err(TariffError::invalid(
                "rules",
                rules.len(),
                "at most 64 rules",
            )));
            return None;
        }
        let mut list = Vec::with_capacity(rules.len());
        for (i, r) in rules.iter().enumerate() {
            let res = self.rule(i, r, &list);
            if let Some(rule) = self.record(res) {
                list.push(rule);
            }
        }
        if list.len() != rules.len() {
            return None;
        }
        let mut charging = Cuts::default();
        let mut idling = Cuts::default();
        let (mut energy_mask, mut time_mask, mut idle_mask, mut fee_mask) = (0, 0, 0, 0);
        let (mut uses_power, mut uses_current, mut uses_kwh) = (false, false, false);
        for (i, r) in list.iter().enumerate() {
            let bit = 1u64 << (i & 63);
            let while_charging = r.energy.is_some() || r.time.is_some() || r.session_fee.is_some();
            if while_charging {
                charging.add(r);
                uses_current |= r.milliamps != (i64::MIN, i64::MAX);
                uses_power |= r.watts != (0, u64::MAX) || r.milliamps != (i64::MIN, i64::MAX);
            }
            if r.idle_price.is_some() || r.session_fee.is_some() {
                idling.add(r);
            }
            uses_kwh |= r.kwh != (i64::MIN, i64::MAX);
            if r.energy.is_some() {
                energy_mask |= bit;
            }
            if r.time.is_some() {
                time_mask |= bit;
            }
            if r.idle_price.is_some() {
                idle_mask |= bit;
            }
            if r.session_fee.is_some() {
                fee_mask |= bit;
            }
        }
        charging.finish();
        idling.finish();
        Some(Box::new(Rules {
            list,
            charging,
            idling,
            energy_mask,
            time_mask,
            idle_mask,
            fee_mask,
            uses_power,
            uses_current,
            uses_kwh,
        }))
    }

    fn rule(&mut self, i: usize, r: &PriceRule, done: &[Rule]) -> Result<Rule> {
        let path = format!("rules[{i}]");
        let cur = self.currency;
        let name: Arc<str> = match &r.name {
            None => Arc::from(path.as_str()),
            Some(n) => {
                let np = format!("{path}.name");
                if n.is_empty() || n.chars().count() > 32 || n.chars().any(char::is_control) {
                    return Err(TariffError::invalid(
                        np,
                        n,
                        "a rule name of 1 to 32 printable characters",
                    ));
                }
                Arc::from(n.as_str())
            }
        };
        if let Some(j) = done.iter().position(|o| *o.name == *name) {
            return Err(TariffError::invalid(
                format!("{path}.name"),
                &*name,
                &format!("a name no other rule has (rules[{j}] has it)"),
            ));
        }
        if r.energy.is_none() && r.time.is_none() && r.idle.is_none() && r.session_fee.is_none() {
            return Err(TariffError::invalid(
                path,
                "no prices",
                "at least one of `energy`, `time`, `idle` and `session_fee`",
            ));
        }
        let w = self.conditions(&format!("{path}.when"), &r.when)?;
        let energy = match &r.energy {
            None => None,
            Some(e) => {
                let p = format!("{path}.energy");
                Some(EnergyPrice {
                    electricity: unit_price(&format!("{p}.electricity"), e.electricity, cur)?
                        .into(),
                    service: unit_price(&format!("{p}.service"), e.service, cur)?.into(),
                    step: e
                        .step_wh
                        .map(|s| step_wh(&format!("{p}.step_wh"), s))
                        .transpose()?,
                })
            }
        };
        let hour = |what: &str, t: &Option<super::model::RuleTime>| -> Result<Option<HourPrice>> {
            t.as_ref()
                .map(|t| {
                    let p = format!("{path}.{what}");
                    Ok(HourPrice {
                        per_hour: unit_price(&format!("{p}.per_hour"), t.per_hour, cur)?.into(),
                        step_s: rule_step(&format!("{p}.granularity"), t.granularity)?,
                    })
                })
                .transpose()
        };
        let time = hour("time", &r.time)?;
        let idle_price = hour("idle", &r.idle)?;
        let session_fee = r
            .session_fee
            .map(|d| amount(&format!("{path}.session_fee"), d, cur))
            .transpose()?;
        Ok(Rule {
            name,
            energy,
            time,
            idle_price,
            session_fee,
            ..w
        })
    }

    /// The conditions of a rule, as a [`Rule`] without prices.
    fn conditions(&mut self, path: &str, c: &Conditions) -> Result<Rule> {
        let tiers = match &c.tiers {
            None => u64::MAX,
            Some(names) => {
                if names.is_empty() {
                    return Err(TariffError::invalid(
                        format!("{path}.tiers"),
                        "[]",
                        "at least one tier name (omit `tiers` for any tier)",
                    ));
                }
                let mut m = 0u64;
                for (j, n) in names.iter().enumerate() {
                    let t = self.known_tier(&format!("{path}.tiers[{j}]"), n)?;
                    m |= 1u64 << (t & 63);
                }
                m
            }
        };
        let clock = match (&c.start_time, &c.end_time) {
            (None, None) => None,
            (s, e) => {
                let s = s
                    .as_deref()
                    .map(|s| parse_hhmm(&format!("{path}.start_time"), s, false))
                    .transpose()?
                    .unwrap_or(0);
                let e = e
                    .as_deref()
                    .map(|e| parse_hhmm(&format!("{path}.end_time"), e, true))
                    .transpose()?
                    .unwrap_or(24 * 60);
                if s == e {
                    return Err(TariffError::invalid(
                        format!("{path}.end_time"),
                        c.end_time.as_deref().unwrap_or("24:00"),
                        "an end_time different from start_time (omit both for the whole day)",
                    ));
                }
                Some((s * 60, e * 60))
            }
        };
        let days = match &c.days {
            None => 0x7f,
            Some(d) if d.is_empty() => {
                return Err(TariffError::invalid(
                    format!("{path}.days"),
                    "[]",
                    "at least one weekday (omit `days` for every day)",
                ));
            }
            Some(d) => d.iter().fold(0u8, |m, w| m | (1u8 << w.index())),
        };
        if let Some((f, t)) = c.from_date.zip(c.to_date).filter(|(f, t)| t < f) {
            return Err(TariffError::invalid(
                format!("{path}.to_date"),
                t,
                &format!("a date on or after from_date {f}"),
            ));
        }
        let kwh_of = |name: &str, v: Option<Decimal>| {
            v.map(|d| kwh_units(&format!("{path}.{name}"), d))
                .transpose()
        };
        let kwh = bounds(
            path,
            "max_kwh",
            kwh_of("min_kwh", c.min_kwh)?,
            kwh_of("max_kwh", c.max_kwh)?,
            |u| super::engine::kwh(u).to_string(),
        )?;
        let secs = |v: Option<u32>| v.map(i64::from);
        let duration = bounds(
            path,
            "max_duration_s",
            secs(c.min_duration_s),
            secs(c.max_duration_s),
            |v| v.to_string(),
        )?;
        let idle = bounds(
            path,
            "max_idle_s",
            secs(c.min_idle_s),
            secs(c.max_idle_s),
            |v| v.to_string(),
        )?;
        bounds(
            path,
            "max_power_w",
            secs(c.min_power_w),
            secs(c.max_power_w),
            |v| v.to_string(),
        )?;
        let ma_of = |name: &str, v: Option<Decimal>| {
            v.map(|d| milliamps(&format!("{path}.{name}"), d))
                .transpose()
        };
        let milliamps = bounds(
            path,
            "max_current_a",
            ma_of("min_current_a", c.min_current_a)?,
            ma_of("max_current_a", c.max_current_a)?,
            |v| Decimal::new(v, CURRENT_DP).to_string(),
        )?;
        Ok(Rule {
            name: Arc::from(""),
            tiers,
            clock,
            days,
            from: c.from_date,
            to: c.to_date,
            kwh,
            duration,
            idle,
            watts: (
                c.min_power_w.map_or(0, u64::from),
                c.max_power_w.map_or(u64::MAX, u64::from),
            ),
            milliamps,
            energy: None,
            time: None,
            idle_price: None,
            session_fee: None,
        })
    }
}

/// A step in Wh → 0.0001 kWh units (1 Wh = 10 units); 1 Wh to 1000 kWh.
pub(crate) fn step_wh(path: &str, wh: u32) -> Result<i64> {
    if wh == 0 || wh > 1_000_000 {
        return Err(TariffError::invalid(
            path,
            wh,
            "a step of 1 Wh to 1,000,000 Wh",
        ));
    }
    Ok(i64::from(wh) * 10)
}
