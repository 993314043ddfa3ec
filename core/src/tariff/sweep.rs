//! Pricing a charging session: the session is swept from `start` to `end`
//! and cut into pieces in which everything that sets a price is constant —
//! the time-of-use tier, the day, the power band, and the conditions of the
//! tariff's rules (clock windows, session duration, energy so far, power
//! and current). Each piece gets its energy (a difference of meter
//! registers), its prices, and a [`Segment`] in the quote. Idle time is
//! swept the same way when rules price it.

use chrono::{Datelike, NaiveDate};

use super::compile::{CompiledTariff, DAY, MAX_BANDS, MAX_TIERS, Piece};
use super::engine::{
    Clock, Draft, ENERGY_DP, MAX_SESSION_SECONDS, Short, date_of_day, energy_units, kwh, local,
};
use super::error::TariffError;
use super::model::BandRule;
use super::quote::{BandRef, ChargingSummary, EnergySource, LineKind, LineLabel, Segment, Unit};
use super::rules::{At, MAX_RULES, Rules, milliamps};
use super::session::{ChargingSession, MeterReading};
use crate::money::Money;

type Result<T> = core::result::Result<T, TariffError>;

/// Energy price keys: tier `t`, or `MAX_TIERS + i` for rule `i`.
const EKEYS: usize = MAX_TIERS + MAX_RULES;
/// Time price keys: band `b`, or `MAX_BANDS + i` for rule `i`.
const TKEYS: usize = MAX_BANDS + MAX_RULES;

/// A power sample that changes something: its instant, band, and readings.
#[derive(Debug, Clone, Copy, Default)]
struct Sample {
    at: i64,
    band: u8,
    watts: u32,
    milliamps: i64,
}

/// The session fee, once decided: its price and the rule that set it.
type Fee = Option<(Money, Option<usize>)>;

/// Amounts by price key: tiers (or bands) first, then rules, whose part is
/// allocated only when the tariff has rules (the fast path stays small).
struct ByKey<const N: usize> {
    fixed: [i64; N],
    rules: Vec<i64>,
}

impl<const N: usize> ByKey<N> {
    fn new(rules: bool) -> Self {
        ByKey {
            fixed: [0; N],
            rules: if rules {
                vec![0; MAX_RULES]
            } else {
                Vec::new()
            },
        }
    }

    fn get(&self, key: usize) -> i64 {
        match key.checked_sub(N) {
            None => self.fixed.get(key).copied().unwrap_or(0),
            Some(i) => self.rules.get(i).copied().unwrap_or(0),
        }
    }

    fn add(&mut self, key: usize, v: i64) {
        let slot = match key.checked_sub(N) {
            None => self.fixed.get_mut(key),
            Some(i) => self.rules.get_mut(i),
        };
        if let Some(x) = slot {
            *x += v;
        }
    }

    fn sum(&self) -> i64 {
        self.fixed.iter().chain(&self.rules).sum()
    }
}

impl CompiledTariff {
    /// Prices the charging part of a session into `d`.
    pub(super) fn charging(&self, s: &ChargingSession, d: &mut Draft) -> Result<()> {
        let mut clock = Clock::new();
        let start = clock.secs(|| "session.start".into(), s.start)?;
        let end = clock.secs(|| "session.end".into(), s.end)?;
        if end < start {
            return Err(TariffError::session(
                "session.end",
                format!("{} is before session.start {}", s.end, s.start),
            ));
        }
        if end - start > MAX_SESSION_SECONDS {
            return Err(TariffError::session(
                "session.end",
                "the session is longer than 31 days; split it into shorter sessions",
            ));
        }
        let unplugged = match s.unplugged_at {
            None => None,
            Some(u) => {
                let u = clock.secs(|| "session.unplugged_at".into(), u)?;
                if u < end {
                    return Err(TariffError::session(
                        "session.unplugged_at",
                        "is before session.end; the bike is unplugged after charging ends",
                    ));
                }
                Some(u)
            }
        };
        let rules = self.rules.as_deref();

        // Energy: a meter curve of (second, 0.0001 kWh) points.
        let pts_owned: Vec<(i64, i64)>;
        let mut pts_buf = [(0i64, 0i64); 8];
        let pts_pair: [(i64, i64); 2];
        let (points, source): (&[(i64, i64)], Option<EnergySource>) = match (
            s.energy_kwh,
            s.readings.is_empty(),
        ) {
            (Some(_), false) => {
                return Err(TariffError::session(
                    "session.readings",
                    "give either energy_kwh or readings, not both",
                ));
            }
            (Some(kwh), true) => {
                let units = energy_units(|| "session.energy_kwh".into(), kwh)?;
                if start == end && units > 0 {
                    return Err(TariffError::session(
                        "session.energy_kwh",
                        "energy was delivered in a session of zero length; check start and end",
                    ));
                }
                pts_pair = [(start, 0), (end, units)];
                (&pts_pair, Some(EnergySource::Total))
            }
            (None, false) => {
                // A few readings (the usual case) stay on the stack.
                let pts: &[(i64, i64)] = if s.readings.len() <= pts_buf.len() {
                    let mut n = 0;
                    readings(&s.readings, start, end, &mut clock, |p| {
                        if let Some(slot) = pts_buf.get_mut(n) {
                            *slot = p;
                        }
                        n += 1;
                    })?;
                    pts_buf.get(..n).unwrap_or(&[])
                } else {
                    let mut v = Vec::with_capacity(s.readings.len());
                    readings(&s.readings, start, end, &mut clock, |p| v.push(p))?;
                    pts_owned = v;
                    &pts_owned
                };
                (pts, Some(EnergySource::Readings))
            }
            (None, true) => {
                if self.energy {
                    return Err(TariffError::MissingFact {
                        path: "session.energy_kwh".to_owned(),
                        needed_for: "energy pricing (energy.tiers); give energy_kwh or readings"
                            .to_owned(),
                    });
                }
                if let Some(r) = rules.filter(|r| r.energy_mask != 0 || r.uses_kwh) {
                    let i = if r.energy_mask != 0 {
                        r.energy_mask.trailing_zeros()
                    } else {
                        r.list
                            .iter()
                            .position(|x| x.kwh != (i64::MIN, i64::MAX))
                            .unwrap_or(0) as u32
                    };
                    return Err(TariffError::MissingFact {
                        path: "session.energy_kwh".to_owned(),
                        needed_for: format!(
                            "rules[{i}] (energy prices and kWh conditions need the energy); give energy_kwh or readings"
                        ),
                    });
                }
                (&[], None)
            }
        };
        let mut meter = Meter { pts: points, j: 0 };

        // Power: the samples that change the band (time pricing) or the
        // power and current conditions of rules.
        let power_rules = rules.filter(|r| r.uses_power);
        let want_power = self.time.is_some() || power_rules.is_some();
        // Kept only when something reads it (the buffer is not free to set up).
        let mut power: Option<Short<Sample, 8>> = want_power.then(Short::new);
        let mut last_at = i64::MIN;
        let mut last_sig = 0u64;
        for (i, p) in s.power.iter().enumerate() {
            let at = clock.secs(|| format!("session.power[{i}].at"), p.at)?;
            if at <= last_at {
                return Err(TariffError::session(
                    format!("session.power[{i}].at"),
                    "power samples must be in strictly increasing time order",
                ));
            }
            last_at = at;
            let ma = match p.amps {
                Some(a) => milliamps(&format!("session.power[{i}].amps"), a)?,
                None if power_rules.is_some_and(|r| r.uses_current) => {
                    return Err(TariffError::MissingFact {
                        path: format!("session.power[{i}].amps"),
                        needed_for: "rules with current conditions (min_current_a / max_current_a)"
                            .to_owned(),
                    });
                }
                None => 0,
            };
            if let Some(power) = power.as_mut() {
                let band = self.time.as_ref().map_or(0, |t| {
                    t.bands
                        .iter()
                        .rposition(|b| p.watts >= b.from_w)
                        .and_then(|b| u8::try_from(b).ok())
                        .unwrap_or(0)
                });
                let sig = power_rules.map_or(0, |r| r.power_signature(p.watts, ma));
                if power
                    .last()
                    .is_none_or(|l| l.band != band || sig != last_sig)
                {
                    power.push(Sample {
                        at,
                        band,
                        watts: p.watts,
                        milliamps: ma,
                    });
                    last_sig = sig;
                }
            }
        }
        if self.time.as_ref().is_some_and(|t| t.bands.len() > 1) && s.power.is_empty() {
            return Err(TariffError::MissingFact {
                path: "session.power".to_owned(),
                needed_for: "time.bands: the band is chosen from the measured power".to_owned(),
            });
        }
        if power_rules.is_some() && s.power.is_empty() {
            return Err(TariffError::MissingFact {
                path: "session.power".to_owned(),
                needed_for: "rules with power or current conditions".to_owned(),
            });
        }

        let as_measured = rules.is_some_and(|r| r.time_mask != 0)
            || self
                .time
                .as_ref()
                .is_some_and(|t| t.rule == BandRule::AsMeasured);
        let bill_start = start + self.time.as_ref().map_or(0, |t| t.free_s);
        let fee_rules = rules.filter(|r| r.fee_mask != 0);
        let kwh_rules = rules.filter(|r| r.uses_kwh);

        // Sweep: cut the session at tier boundaries, midnight, band changes
        // and rule boundaries.
        let mut e_units: ByKey<MAX_TIERS> = ByKey::new(rules.is_some());
        let mut e_order = [0u8; EKEYS];
        let mut e_seen = 0usize;
        let mut e_seen_key = [false; EKEYS];
        let mut e_last: Option<usize> = None;
        let mut t_secs: ByKey<MAX_BANDS> = ByKey::new(rules.is_some());
        let mut t_last: Option<usize> = None;
        let mut fee: Option<Fee> = None;
        let mut c = start;
        let mut day_no = i64::MIN;
        let start_day = start.div_euclid(i64::from(DAY));
        let mut day_start = 0i64;
        let mut day_date = s.start.date();
        let mut weekday = 0u8;
        let mut profile: &[Piece] = &[];
        let power = power.as_ref().map_or(&[][..], Short::as_slice);
        let mut pi = 0usize; // next power change index with at > c
        let mut seg_from = s.start;
        let mut r_c = if points.is_empty() {
            None
        } else {
            Some(meter.read(c)?)
        };
        let r_start = r_c.map_or(0, |r| r.0);
        // With kWh conditions a cut pins the register at the threshold, so
        // energy may remain at `end` (see the loop condition).
        let r_end = match (kwh_rules, points.is_empty()) {
            (Some(_), false) => Meter { pts: points, j: 0 }.read(end)?.0,
            _ => i64::MIN,
        };
        let mut kwh_cut: Option<(i64, i64)> = None; // (register, instant)
        let mut segments = Vec::with_capacity(8);
        while c < end || r_c.is_some_and(|r| r.0 < r_end) {
            let dn = c.div_euclid(i64::from(DAY));
            if dn != day_no {
                // The sweep cuts at every midnight, so after the first day
                // the next is the day after; chrono is asked only otherwise.
                day_date = if dn == start_day {
                    s.start.date()
                } else if Some(dn) == day_no.checked_add(1) {
                    day_date
                        .succ_opt()
                        .ok_or_else(|| TariffError::overflow("session.end"))?
                } else {
                    date_of_day(dn)?
                };
                day_no = dn;
                day_start = dn * i64::from(DAY);
                weekday = weekday_of_day(dn);
                profile = self.profile_on(day_date, weekday);
            }
            let sod = u32::try_from(c - day_start).unwrap_or(0);
            let piece = profile
                .iter()
                .find(|p| p.start <= sod && sod < p.end)
                .copied()
                .ok_or_else(|| TariffError::overflow("tou"))?;
            while power.get(pi).is_some_and(|p| p.at <= c) {
                pi += 1;
            }
            let sample = match pi.checked_sub(1).and_then(|i| power.get(i)) {
                Some(p) => Some(p),
                None => power.first(),
            };
            let band = sample.map(|p| p.band);
            let next_band = power.get(pi).map_or(i64::MAX, |p| p.at);
            let mut b = end.min(day_start + i64::from(piece.end)).min(next_band);
            let mut mask = 0u64;
            if let Some(r) = rules {
                b = b.min(day_start + i64::from(r.next_clock_cut(false, sod)));
                if let Some(dc) = r.next_duration_cut(false, c - start) {
                    b = b.min(start + dc);
                }
                if let (Some(kr), Some((rc, _))) = (kwh_rules, r_c) {
                    if kwh_cut.is_none() {
                        kwh_cut = kr.next_kwh_cut(rc - r_start).map(|thr| {
                            let target = r_start.saturating_add(thr);
                            (target, meter.first_at(target).max(c))
                        });
                    }
                    if let Some((_, at)) = kwh_cut {
                        b = b.min(at);
                    }
                }
                mask = r.holding(&At {
                    tier: piece.tier,
                    sod,
                    weekday,
                    date: day_date,
                    kwh: r_c.map_or(0, |r| r.0 - r_start),
                    duration: c - start,
                    idle: 0,
                    watts: sample.map_or(0, |p| p.watts),
                    milliamps: sample.map_or(0, |p| p.milliamps),
                });
            }
            if as_measured && c < bill_start {
                b = b.min(bill_start);
            }
            let pinned = kwh_cut.filter(|k| k.1 == b).map(|k| k.0);
            if b <= c && pinned.is_none() && c < end {
                // Unreachable for a compiled tariff (profiles cover the day);
                // refuse rather than loop.
                return Err(TariffError::overflow("tou"));
            }
            let b = b.max(c);
            let seg_to = local(day_date, b - day_start)?;

            // Energy of the piece and its price key.
            let e_rule = rules.and_then(|r| r.first(mask & r.energy_mask));
            let (seg_kwh, interpolated) = match r_c {
                Some((rc, ic)) => {
                    let (rb, ib) = match pinned {
                        Some(t) => {
                            kwh_cut = None;
                            (t, true)
                        }
                        None => meter.read(b)?,
                    };
                    r_c = Some((rb, ib));
                    let units = rb - rc;
                    let key = match e_rule {
                        Some((i, _)) => MAX_TIERS + i,
                        None => usize::from(piece.tier),
                    };
                    if let Some(seen @ false) = e_seen_key.get_mut(key) {
                        *seen = true;
                        if let Some(o) = e_order.get_mut(e_seen) {
                            *o = u8::try_from(key).unwrap_or(0);
                        }
                        e_seen += 1;
                    }
                    e_units.add(key, units);
                    let priced = e_rule.is_some()
                        || self
                            .tiers
                            .get(usize::from(piece.tier))
                            .is_some_and(|t| t.price.is_some());
                    if units > 0 && priced {
                        e_last = Some(key);
                    }
                    (Some(kwh(units)), ic || ib)
                }
                None => (None, false),
            };

            // Time, second by second.
            let mut t_rule = None;
            if as_measured && c >= bill_start && b > c {
                t_rule = rules.and_then(|r| r.first(mask & r.time_mask));
                let key = match t_rule {
                    Some((i, _)) => Some(MAX_BANDS + i),
                    None => self.time.as_ref().map(|_| usize::from(band.unwrap_or(0))),
                };
                if let Some(k) = key {
                    t_secs.add(k, b - c);
                    t_last = Some(k);
                }
            }

            // The session fee: the price in force in the first piece that has one.
            if fee.is_none() {
                if let Some(fr) = fee_rules {
                    fee = match fr.first(mask & fr.fee_mask) {
                        Some((i, r)) => r.session_fee.map(|f| Some((f, Some(i)))),
                        None => self.session_fee.map(|f| Some((f, None))),
                    };
                }
            }

            let tier_name = self
                .tiers
                .get(usize::from(piece.tier))
                .map(|t| t.name.clone())
                .ok_or_else(|| TariffError::overflow("tou"))?;
            segments.push(Segment {
                from: seg_from,
                to: seg_to,
                tier: tier_name,
                band: match (&self.time, band) {
                    (Some(t), Some(bi)) => t.bands.get(usize::from(bi)).map(|b| BandRef {
                        from_w: b.from_w,
                        to_w: b.to_w,
                    }),
                    (Some(t), None) => t.bands.first().map(|b| BandRef {
                        from_w: b.from_w,
                        to_w: b.to_w,
                    }),
                    _ => None,
                },
                kwh: seg_kwh,
                interpolated,
                energy_rule: e_rule.map(|(_, r)| r.name.clone()),
                time_rule: t_rule.map(|(_, r)| r.name.clone()),
            });
            seg_from = seg_to;
            c = b;
        }
        let pieces = segments.len();

        // The sweep ends at `end` (with kWh conditions, at the register of
        // `end`), so the last register read is the one at the end.
        let energy_total = r_c.map(|(re, _)| re - r_start);
        let idle_seconds = unplugged.map_or(0, |u| u - end);
        d.charging = Some(ChargingSummary {
            start: s.start,
            end: s.end,
            unplugged_at: s.unplugged_at,
            charging_seconds: u64::try_from(end - start).unwrap_or(0),
            idle_seconds: u64::try_from(idle_seconds).unwrap_or(0),
            energy_kwh: energy_total.map(kwh),
            energy_source: source,
        });
        d.segments = segments;

        // 1. Energy lines, per price (tier or rule) in order of first appearance.
        if let Some(k) = e_last {
            let step = match k.checked_sub(MAX_TIERS) {
                Some(i) => rules
                    .and_then(|r| r.list.get(i))
                    .and_then(|r| r.energy)
                    .and_then(|e| e.step)
                    .or(self.energy_step),
                None => self.energy_step,
            };
            if let Some(step) = step {
                let mut total = 0i64;
                for &key in e_order.iter().take(e_seen) {
                    let key = usize::from(key);
                    let priced =
                        key >= MAX_TIERS || self.tiers.get(key).is_some_and(|t| t.price.is_some());
                    if priced {
                        total = total
                            .checked_add(e_units.get(key))
                            .ok_or_else(|| TariffError::overflow("energy"))?;
                    }
                }
                let extra = (step - total.rem_euclid(step)) % step;
                e_units.add(k, extra);
            }
        }
        for &key in e_order.iter().take(e_seen) {
            let key = usize::from(key);
            let units = e_units.get(key);
            if units == 0 {
                continue;
            }
            // (electricity, service, the rule's name or else the tier's)
            let (el, sv, rule, tier) = match key.checked_sub(MAX_TIERS) {
                Some(i) => {
                    let Some((r, Some(e))) =
                        rules.and_then(|r| r.list.get(i)).map(|r| (r, &r.energy))
                    else {
                        continue;
                    };
                    (&e.electricity, &e.service, Some(&r.name), None)
                }
                None => {
                    let tier = self
                        .tiers
                        .get(key)
                        .ok_or_else(|| TariffError::overflow("energy.tiers"))?;
                    let Some((el, sv)) = &tier.price else {
                        continue;
                    };
                    (el, sv, None, Some(&tier.name))
                }
            };
            let label = || match (rule, tier) {
                (Some(r), _) => Some(LineLabel::Rule(r.clone())),
                (None, t) => t.map(|t| LineLabel::Tier(t.clone())),
            };
            d.charge(
                LineKind::Electricity,
                label(),
                units,
                ENERGY_DP,
                Unit::Kwh,
                el,
                Unit::Kwh,
                1,
            )?;
            d.charge(
                LineKind::Service,
                label(),
                units,
                ENERGY_DP,
                Unit::Kwh,
                sv,
                Unit::Kwh,
                1,
            )?;
        }

        // 1. Time lines.
        let mut time_billed = false;
        if as_measured {
            let total = t_secs.sum();
            if let Some(k) = t_last.filter(|_| total > 0) {
                let section = self.time.as_ref().map(|t| t.step_s);
                let step = match k.checked_sub(MAX_BANDS) {
                    Some(i) => rules
                        .and_then(|r| r.list.get(i))
                        .and_then(|r| r.time)
                        .and_then(|t| t.step_s)
                        .or(section),
                    None => section,
                }
                .unwrap_or(60);
                let extra = (step - total % step) % step;
                t_secs.add(k, extra);
            }
            for k in 0..TKEYS {
                let n = t_secs.get(k);
                if n == 0 {
                    continue;
                }
                time_billed = true;
                let (label, price) = match k.checked_sub(MAX_BANDS) {
                    None => {
                        let Some(band) = self.time.as_ref().and_then(|t| t.bands.get(k)) else {
                            continue;
                        };
                        let band_ref = BandRef {
                            from_w: band.from_w,
                            to_w: band.to_w,
                        };
                        (Some(LineLabel::Band(band_ref)), band.per_hour)
                    }
                    Some(i) => {
                        let Some((r, p)) = rules
                            .and_then(|r| r.list.get(i))
                            .and_then(|r| r.time.map(|p| (r, p)))
                        else {
                            continue;
                        };
                        (Some(LineLabel::Rule(r.name.clone())), p.per_hour)
                    }
                };
                d.charge(
                    LineKind::Time,
                    label,
                    n,
                    0,
                    Unit::Second,
                    &price,
                    Unit::Hour,
                    3600,
                )?;
            }
        } else if let Some(t) = &self.time {
            let steps = bill_steps(t.rule, t.step_s, bill_start, end, power);
            for (bi, n) in steps.iter().enumerate().take(t.bands.len()) {
                if *n == 0 {
                    continue;
                }
                time_billed = true;
                let band = t
                    .bands
                    .get(bi)
                    .ok_or_else(|| TariffError::overflow("time.bands"))?;
                let quantity = i64::try_from(*n)
                    .ok()
                    .and_then(|n| n.checked_mul(t.step_s / t.unit_s))
                    .ok_or_else(|| TariffError::overflow("time"))?;
                d.charge(
                    LineKind::Time,
                    Some(LineLabel::Band(BandRef {
                        from_w: band.from_w,
                        to_w: band.to_w,
                    })),
                    quantity,
                    0,
                    if t.unit_s == 60 {
                        Unit::Minute
                    } else {
                        Unit::Second
                    },
                    &band.per_hour,
                    Unit::Hour,
                    3600 / t.unit_s,
                )?;
            }
        }

        // 1. Idle lines.
        let idle_rules = rules.filter(|r| r.idle_mask != 0);
        if let (Some(r), Some(u)) = (rules, unplugged) {
            if idle_rules.is_some() || (fee_rules.is_some() && fee.is_none()) {
                let kwh_total = energy_total.unwrap_or(0);
                self.idle_by_rules(r, start, end, u, kwh_total, d, &mut fee)?;
            }
        }
        match (idle_rules, unplugged) {
            (Some(_), _) | (_, None) => {}
            (None, Some(u)) => {
                if let Some(r) = &self.idle {
                    let billable = u - end - r.grace_s;
                    if billable > 0 {
                        let steps = (billable + r.step_s - 1) / r.step_s;
                        let quantity = steps
                            .checked_mul(r.step_s / r.unit_s)
                            .ok_or_else(|| TariffError::overflow("idle"))?;
                        d.charge(
                            LineKind::Idle,
                            None,
                            quantity,
                            0,
                            if r.unit_s == 60 {
                                Unit::Minute
                            } else {
                                Unit::Second
                            },
                            &r.per_hour,
                            Unit::Hour,
                            3600 / r.unit_s,
                        )?;
                    }
                }
            }
        }

        // 1. Session fee.
        let fee = match fee_rules {
            None => self.session_fee.map(|f| (f, None)),
            Some(fr) => match fee {
                Some(f) => f,
                None if pieces == 0 => {
                    // A session of zero length: the conditions at its start.
                    let a = self.at(start, power.first())?;
                    match fr.first(fr.holding(&a) & fr.fee_mask) {
                        Some((i, r)) => r.session_fee.map(|f| (f, Some(i))),
                        None => self.session_fee.map(|f| (f, None)),
                    }
                }
                None => None,
            },
        };
        if let Some((f, rule)) = fee {
            let label = rule
                .and_then(|i| rules.and_then(|r| r.list.get(i)))
                .map(|r| LineLabel::Rule(r.name.clone()));
            d.charge(
                LineKind::SessionFee,
                label,
                1,
                0,
                Unit::Session,
                &f.into(),
                Unit::Session,
                1,
            )?;
        }

        // 2. Time minimum and cap; idle cap.
        let minor = |m: Option<Money>| {
            m.map(|m| {
                m.minor_units_fast()
                    .ok_or_else(|| TariffError::overflow("limits"))
            })
            .transpose()
        };
        if let Some(t) = &self.time {
            let base = d.sum_net(|k| k == LineKind::Time)?;
            if let Some(min) = minor(t.minimum)?.filter(|m| time_billed && base < *m) {
                d.adjust(LineKind::TimeMinimum, base, min, |_| false)?;
            }
            if let Some(cap) = minor(t.cap)?.filter(|c| base > *c) {
                d.adjust(LineKind::TimeCap, base, cap, |k| k == LineKind::Time)?;
            }
        }
        if let Some(cap) = minor(self.idle.as_ref().and_then(|r| r.cap))? {
            let base = d.sum_net(|k| k == LineKind::Idle)?;
            if base > cap {
                d.adjust(LineKind::IdleCap, base, cap, |k| k == LineKind::Idle)?;
            }
        }

        // 3. Session minimum and maximum.
        if self.min_price.is_none() && self.max_price.is_none() {
            return Ok(());
        }
        let base = d.sum_net(|_| true)?;
        if let Some(min) = minor(self.min_price)?.filter(|m| base < *m) {
            d.adjust(LineKind::SessionMinimum, base, min, |_| false)?;
        }
        if let Some(max) = minor(self.max_price)?.filter(|m| base > *m) {
            d.adjust(LineKind::SessionCap, base, max, |_| true)?;
        }
        Ok(())
    }

    /// The facts at instant `x` of a session starting there (for the fee of
    /// a session of zero length).
    fn at(&self, x: i64, sample: Option<&Sample>) -> Result<At> {
        let dn = x.div_euclid(i64::from(DAY));
        let date = date_of_day(dn)?;
        let sod = u32::try_from(x - dn * i64::from(DAY)).unwrap_or(0);
        let tier = self
            .profile_for(date)
            .iter()
            .find(|p| p.start <= sod && sod < p.end)
            .map_or(0, |p| p.tier);
        Ok(At {
            tier,
            sod,
            weekday: u8::try_from(date.weekday().num_days_from_monday()).unwrap_or(0),
            date,
            kwh: 0,
            duration: 0,
            idle: 0,
            watts: sample.map_or(0, |p| p.watts),
            milliamps: sample.map_or(0, |p| p.milliamps),
        })
    }

    /// Idle time under rules: `[end, unplugged)` swept like charging (tiers,
    /// midnight, clock, duration and idle-duration cuts, and the end of the
    /// grace minutes). Decides the session fee if charging did not; when
    /// rules price idle time, bills each second after the grace minutes at
    /// the price in force, the total rounded up to whole steps of the price
    /// in force at the end (lines count seconds).
    #[allow(clippy::too_many_arguments)]
    fn idle_by_rules(
        &self,
        rules: &Rules,
        start: i64,
        end: i64,
        unplugged: i64,
        kwh_total: i64,
        d: &mut Draft,
        fee: &mut Option<Fee>,
    ) -> Result<()> {
        // Key 0: the idle section's price; key 1 + i: rule i.
        let mut secs_by = [0i64; 1 + MAX_RULES];
        let mut last: Option<usize> = None;
        let priced = rules.idle_mask != 0;
        let grace_end = end + self.idle.as_ref().map_or(0, |r| r.grace_s);
        let mut c = end;
        let fee_rules = Some(rules).filter(|r| r.fee_mask != 0);
        let (mut day_no, mut day_start, mut profile) = (i64::MIN, 0i64, &[][..]);
        let mut date = NaiveDate::MIN;
        while c < unplugged {
            let dn = c.div_euclid(i64::from(DAY));
            if dn != day_no {
                day_no = dn;
                day_start = dn * i64::from(DAY);
                date = date_of_day(dn)?;
                profile = self.profile_for(date);
            }
            let sod = u32::try_from(c - day_start).unwrap_or(0);
            let piece: Piece = profile
                .iter()
                .find(|p| p.start <= sod && sod < p.end)
                .copied()
                .ok_or_else(|| TariffError::overflow("tou"))?;
            let mut b = unplugged
                .min(day_start + i64::from(piece.end))
                .min(day_start + i64::from(rules.next_clock_cut(true, sod)));
            if let Some(dc) = rules.next_duration_cut(true, c - start) {
                b = b.min(start + dc);
            }
            if let Some(ic) = rules.next_idle_cut(c - end) {
                b = b.min(end + ic);
            }
            if c < grace_end {
                b = b.min(grace_end);
            }
            if b <= c {
                return Err(TariffError::overflow("tou"));
            }
            let mask = rules.holding(&At {
                tier: piece.tier,
                sod,
                weekday: u8::try_from(date.weekday().num_days_from_monday()).unwrap_or(0),
                date,
                kwh: kwh_total,
                duration: c - start,
                idle: c - end,
                watts: 0,
                milliamps: 0,
            });
            let key = match rules.first(mask & rules.idle_mask) {
                _ if !priced || c < grace_end => None,
                Some((i, _)) => Some(1 + i),
                None => self.idle.as_ref().map(|_| 0),
            };
            if let Some(k) = key {
                if let Some(acc) = secs_by.get_mut(k) {
                    *acc += b - c;
                }
                last = Some(k);
            }
            if fee.is_none() {
                if let Some(fr) = fee_rules {
                    *fee = match fr.first(mask & fr.fee_mask) {
                        Some((i, r)) => r.session_fee.map(|f| Some((f, Some(i)))),
                        None => self.session_fee.map(|f| Some((f, None))),
                    };
                }
            }
            c = b;
        }
        let total: i64 = secs_by.iter().sum();
        if let Some(k) = last.filter(|_| total > 0) {
            let section = self.idle.as_ref().map(|r| r.step_s);
            let step = match k.checked_sub(1) {
                Some(i) => rules
                    .list
                    .get(i)
                    .and_then(|r| r.idle_price)
                    .and_then(|p| p.step_s)
                    .or(section),
                None => section,
            }
            .unwrap_or(60);
            let extra = (step - total % step) % step;
            if let Some(acc) = secs_by.get_mut(k) {
                *acc += extra;
            }
        }
        for (k, &n) in secs_by.iter().enumerate() {
            if n == 0 {
                continue;
            }
            let (label, price) = match k.checked_sub(1) {
                None => {
                    let Some(r) = &self.idle else { continue };
                    (None, r.per_hour)
                }
                Some(i) => {
                    let Some((r, p)) = rules.list.get(i).and_then(|r| r.idle_price.map(|p| (r, p)))
                    else {
                        continue;
                    };
                    (Some(LineLabel::Rule(r.name.clone())), p.per_hour)
                }
            };
            d.charge(
                LineKind::Idle,
                label,
                n,
                0,
                Unit::Second,
                &price,
                Unit::Hour,
                3600,
            )?;
        }
        Ok(())
    }
}

/// Monday = 0 … Sunday = 6 of a day counted from the Unix epoch (1970-01-01
/// was a Thursday).
fn weekday_of_day(day: i64) -> u8 {
    u8::try_from((day + 3).rem_euclid(7)).unwrap_or(0)
}

/// Validates meter readings and hands them out as (second, 0.0001 kWh).
fn readings(
    rs: &[MeterReading],
    start: i64,
    end: i64,
    clock: &mut Clock,
    mut out: impl FnMut((i64, i64)),
) -> Result<()> {
    let mut last: Option<(i64, i64)> = None;
    let mut first_at = None;
    for (i, r) in rs.iter().enumerate() {
        let at = clock.secs(|| format!("session.readings[{i}].at"), r.at)?;
        let units = energy_units(|| format!("session.readings[{i}].kwh"), r.kwh)?;
        if let Some((pat, pu)) = last {
            if at <= pat {
                return Err(TariffError::session(
                    format!("session.readings[{i}].at"),
                    "readings must be in strictly increasing time order",
                ));
            }
            if units < pu {
                return Err(TariffError::session(
                    format!("session.readings[{i}].kwh"),
                    format!(
                        "the meter went backwards from {} to {} kWh; readings are a cumulative register",
                        kwh(pu),
                        r.kwh
                    ),
                ));
            }
        }
        out((at, units));
        first_at.get_or_insert(at);
        last = Some((at, units));
    }
    if let (Some(f), Some(l)) = (first_at, last) {
        if f > start {
            return Err(TariffError::session(
                "session.readings[0].at",
                "is after session.start; the first reading must be at or before the start",
            ));
        }
        if l.0 < end {
            return Err(TariffError::session(
                format!("session.readings[{}].at", rs.len() - 1),
                "is before session.end; the last reading must be at or after the end",
            ));
        }
    }
    Ok(())
}

/// The meter register as a function of time: the readings, linearly
/// interpolated between them, rounded half-up to 0.0001 kWh.
#[derive(Clone, Copy)]
struct Meter<'a> {
    pts: &'a [(i64, i64)],
    j: usize,
}

impl Meter<'_> {
    /// The register at `x` (which must not be earlier than the previous call)
    /// and whether it was interpolated.
    #[inline]
    fn read(&mut self, x: i64) -> Result<(i64, bool)> {
        while self.pts.get(self.j + 1).is_some_and(|p| p.0 <= x) && self.j + 2 < self.pts.len() {
            self.j += 1;
        }
        let Some(&(t0, e0)) = self.pts.get(self.j) else {
            return Err(TariffError::overflow("readings"));
        };
        if x <= t0 {
            return Ok((e0, false));
        }
        let Some(&(t1, e1)) = self.pts.get(self.j + 1) else {
            return Ok((e0, false));
        };
        if x >= t1 {
            return Ok((e1, false));
        }
        // Half-up: floor((2·Δe·Δt + T) / 2T), in 64 bits when it fits.
        let (de, dt, span) = (e1 - e0, x - t0, t1 - t0);
        let fast = de
            .checked_mul(dt)
            .and_then(|n| n.checked_mul(2))
            .and_then(|n| n.checked_add(span))
            .zip(span.checked_mul(2))
            .map(|(n, d)| n / d);
        let v = match fast {
            Some(v) => v,
            None => {
                let num = i128::from(de) * i128::from(dt);
                let den = i128::from(span);
                i64::try_from((2 * num + den) / (2 * den))
                    .map_err(|_| TariffError::overflow("readings"))?
            }
        };
        Ok((e0 + v, true))
    }

    /// The first whole second, from the cursor's reading on, at which
    /// [`Meter::read`] reaches `target` (`i64::MAX` if it never does):
    /// the inverse of the half-up interpolation, `Δt = ⌈T·(2k − 1) / 2Δe⌉`
    /// for `k = target − e0`.
    fn first_at(&self, target: i64) -> i64 {
        let mut j = self.j;
        loop {
            let Some(&(t0, e0)) = self.pts.get(j) else {
                return i64::MAX;
            };
            if e0 >= target {
                return t0;
            }
            let Some(&(t1, e1)) = self.pts.get(j + 1) else {
                return i64::MAX;
            };
            if e1 >= target {
                let (de, span, k) = (
                    i128::from(e1) - i128::from(e0),
                    i128::from(t1) - i128::from(t0),
                    i128::from(target) - i128::from(e0),
                );
                let num = span * (2 * k - 1);
                let den = 2 * de;
                let dt = (num + den - 1) / den;
                return i64::try_from(dt).map_or(i64::MAX, |dt| t0.saturating_add(dt));
            }
            j += 1;
        }
    }
}

/// A billing step in seconds: the usual ones are constants, so that the
/// divisions of [`bill_steps`] compile to multiplications.
trait Step: Copy {
    fn g(self) -> i64;
    fn div(self, x: i64) -> i64;
}

#[derive(Clone, Copy)]
struct ConstStep<const G: i64>;

impl<const G: i64> Step for ConstStep<G> {
    fn g(self) -> i64 {
        G
    }
    fn div(self, x: i64) -> i64 {
        x / G
    }
}

#[derive(Clone, Copy)]
struct VarStep(i64);

impl Step for VarStep {
    fn g(self) -> i64 {
        self.0
    }
    fn div(self, x: i64) -> i64 {
        x / self.0
    }
}

/// Billing steps per band for time pricing over the billable window
/// `[b0, end)`, in steps of `g` seconds, rounding the last step up.
fn bill_steps(rule: BandRule, g: i64, b0: i64, end: i64, power: &[Sample]) -> [u64; MAX_BANDS] {
    match g {
        60 => bill_steps_by(rule, ConstStep::<60>, b0, end, power),
        1800 => bill_steps_by(rule, ConstStep::<1800>, b0, end, power),
        3600 => bill_steps_by(rule, ConstStep::<3600>, b0, end, power),
        g => bill_steps_by(rule, VarStep(g), b0, end, power),
    }
}

fn bill_steps_by(
    rule: BandRule,
    step: impl Step,
    b0: i64,
    end: i64,
    power: &[Sample],
) -> [u64; MAX_BANDS] {
    let g = step.g();
    let mut counts = [0u64; MAX_BANDS];
    if b0 >= end || g <= 0 {
        return counts;
    }
    let n_steps = u64::try_from(step.div(end - b0 + g - 1)).unwrap_or(0);
    // Constant-band intervals within [b0, end).
    let first = power.iter().rposition(|p| p.at <= b0).unwrap_or(0);
    let band_at_b0 = power.get(first).map_or(0, |p| p.band);
    let rest = power.get(first + 1..).unwrap_or(&[]);
    let changes = rest.iter().filter(|p| p.at > b0 && p.at < end);
    let mut add = |band: u8, n: u64| {
        if let Some(c) = counts.get_mut(usize::from(band)) {
            *c += n;
        }
    };
    match rule {
        BandRule::HighestInSession => {
            let max = changes.map(|p| p.band).fold(band_at_b0, u8::max);
            add(max, n_steps);
        }
        // `AsMeasured` is billed by the sweep; this arm is not reached for it.
        BandRule::HighestInStep | BandRule::AsMeasured => {
            let mut cur_step = 0i64;
            let mut cur_max = band_at_b0;
            let mut p = b0;
            let mut band = band_at_b0;
            let mut iter = changes
                .map(|c| (c.at, c.band))
                .chain(core::iter::once((end, 0)));
            for (q, next_band) in iter.by_ref() {
                if q > p {
                    let kp = step.div(p - b0);
                    let kq = step.div(q - 1 - b0);
                    if kp != cur_step {
                        add(cur_max, 1);
                        cur_step = kp;
                        cur_max = band;
                    }
                    cur_max = cur_max.max(band);
                    if kq > kp {
                        add(cur_max, 1);
                        add(band, u64::try_from(kq - kp - 1).unwrap_or(0));
                        cur_step = kq;
                        cur_max = band;
                    }
                }
                p = q;
                band = next_band;
            }
            add(cur_max, 1);
        }
    }
    counts
}
