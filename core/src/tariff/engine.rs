//! Quoting: session facts in, [`Quote`] out. Pure and deterministic.
//!
//! The order of work, which is also the order of the lines:
//! 1. charge lines, each rounded once to the minor unit (the rounding point);
//! 2. `time.minimum` / `time.cap`, then `idle.cap`;
//! 3. `min_price` / `max_price` over the whole charging session;
//! 4. the member-level discount;
//! 5. coupons: 满减 (threshold) first, then fixed, then percentage; ties in
//!    the order given.
//!
//! Reductions (caps and discounts) are spread over the lines they apply to in
//! proportion to what is left of each (largest remainder, see
//! [`Money::allocate`]), so no line is pushed below zero and no fen is lost.

use chrono::{NaiveDate, NaiveDateTime, TimeDelta};
use rust_decimal::Decimal;

use super::compile::{
    CompiledTariff, DAY, MAX_BANDS, MAX_TIERS, amount, check_scale, join, percent,
};
use super::error::TariffError;
use super::model::{BandRule, DiscountScope, Tariff};
use super::quote::{
    BandRef, ChargingSummary, EnergySource, LineKind, Quote, QuoteLine, Segment, Service,
    SkipReason, SkippedCoupon, Subtotals, Unit,
};
use super::session::{ChargingSession, Coupon, Member, RentalSession, Session, SwapSession};
use crate::money::{Currency, Money, MoneyError};

type Result<T> = core::result::Result<T, TariffError>;

/// Decimal places of energy quantities: 0.0001 kWh (0.1 Wh), the resolution
/// of YKC meter fields. Readings with more places are refused; interpolated
/// readings are rounded half-up to this resolution.
pub const ENERGY_DP: u32 = 4;

/// The longest charging session that can be quoted: 31 days.
pub const MAX_SESSION_SECONDS: i64 = 31 * 86_400;

/// Prices a session under a tariff: validates and compiles the tariff, then
/// quotes. To quote many sessions, compile once with [`Tariff::compile`] and
/// call [`CompiledTariff::quote`].
///
/// ```
/// use chargeswap_core::tariff::{quote, Tariff, Session};
/// let tariff: Tariff = serde_json::from_str(r#"{"id": "ebike", "currency": "CNY",
///   "time": {"bands": [{"from_w": 0, "to_w": 300, "per_hour": "0.50"},
///                      {"from_w": 300, "per_hour": "1.00"}],
///            "granularity": "per_started_half_hour"}}"#)?;
/// let session: Session = serde_json::from_str(r#"{"service": "charging",
///   "start": "2025-03-14T20:00:00", "end": "2025-03-14T21:10:00",
///   "power": [{"at": "2025-03-14T20:00:00", "watts": 250}]}"#)?;
/// let q = quote(&tariff, &session)?;
/// // 70 min → 3 started half hours = 90 min at ¥0.50/h = ¥0.75
/// assert_eq!(q.total.to_string(), "¥0.75");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn quote(tariff: &Tariff, session: &Session) -> Result<Quote> {
    tariff.compile()?.quote(session)
}

impl CompiledTariff {
    /// Prices a session. Pure: the same tariff and session always give the
    /// same quote. Errors name the offending session field.
    pub fn quote(&self, session: &Session) -> Result<Quote> {
        let mut d = match session {
            Session::Charging(s) => self.charging(s)?,
            Session::Swap(s) => self.swap(s)?,
            Session::Rental(s) => self.rental(s)?,
        };
        d.discounts(self.scope, session.member(), session.coupons())?;
        d.finish()
    }

    fn draft(&self, service: Service) -> Draft {
        Draft {
            quote: Quote {
                tariff: self.id.clone(),
                currency: self.currency,
                rounding: self.rounding,
                service,
                charging: None,
                segments: Vec::new(),
                lines: Vec::new(),
                subtotals: Subtotals {
                    electricity: Money::zero(self.currency),
                    service: Money::zero(self.currency),
                    time: Money::zero(self.currency),
                    idle: Money::zero(self.currency),
                    fees: Money::zero(self.currency),
                    swap: Money::zero(self.currency),
                    rental: Money::zero(self.currency),
                    adjustments: Money::zero(self.currency),
                    discounts: Money::zero(self.currency),
                },
                total: Money::zero(self.currency),
                skipped_coupons: Vec::new(),
            },
            rounding: self.rounding,
            currency: self.currency,
        }
    }

    fn charging(&self, s: &ChargingSession) -> Result<Draft> {
        let start = secs("session.start", s.start)?;
        let end = secs("session.end", s.end)?;
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
                let u = secs("session.unplugged_at", u)?;
                if u < end {
                    return Err(TariffError::session(
                        "session.unplugged_at",
                        "is before session.end; the bike is unplugged after charging ends",
                    ));
                }
                Some(u)
            }
        };

        // Energy: a meter curve of (second, 0.0001 kWh) points.
        let pts_owned: Vec<(i64, i64)>;
        let pts_pair: [(i64, i64); 2];
        let (points, source): (&[(i64, i64)], Option<EnergySource>) =
            match (s.energy_kwh, s.readings.is_empty()) {
                (Some(_), false) => {
                    return Err(TariffError::session(
                        "session.readings",
                        "give either energy_kwh or readings, not both",
                    ));
                }
                (Some(kwh), true) => {
                    let units = energy_units("session.energy_kwh", kwh)?;
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
                    pts_owned = readings(&s.readings, start, end)?;
                    (&pts_owned, Some(EnergySource::Readings))
                }
                (None, true) => {
                    if self.energy {
                        return Err(TariffError::MissingFact {
                            path: "session.energy_kwh".to_owned(),
                            needed_for:
                                "energy pricing (energy.tiers); give energy_kwh or readings"
                                    .to_owned(),
                        });
                    }
                    (&[], None)
                }
            };
        let mut meter = Meter { pts: points, j: 0 };

        // Power: sample instants and their bands (only when time is priced).
        let mut power: Vec<(i64, u8)> = Vec::new();
        let mut last_at = i64::MIN;
        for (i, p) in s.power.iter().enumerate() {
            let at = secs(&format!("session.power[{i}].at"), p.at)?;
            if at <= last_at {
                return Err(TariffError::session(
                    format!("session.power[{i}].at"),
                    "power samples must be in strictly increasing time order",
                ));
            }
            last_at = at;
            if let Some(t) = &self.time {
                let band = t
                    .bands
                    .iter()
                    .rposition(|b| p.watts >= b.from_w)
                    .and_then(|b| u8::try_from(b).ok())
                    .unwrap_or(0);
                if power.last().is_none_or(|l| l.1 != band) {
                    power.push((at, band));
                }
            }
        }
        if self.time.as_ref().is_some_and(|t| t.bands.len() > 1) && s.power.is_empty() {
            return Err(TariffError::MissingFact {
                path: "session.power".to_owned(),
                needed_for: "time.bands: the band is chosen from the measured power".to_owned(),
            });
        }

        let mut d = self.draft(Service::Charging);

        // Sweep: cut the session at tier boundaries, midnight and band changes.
        let mut tier_kwh = [0i64; MAX_TIERS];
        let mut tier_order = [0u8; MAX_TIERS];
        let mut tier_seen = 0usize;
        let mut seen_mask = 0u64;
        let mut c = start;
        let mut day_no = i64::MIN;
        let mut day_start = 0i64;
        let mut profile: &[super::compile::Piece] = &[];
        let mut pi = 0usize; // next power change index with at > c
        let mut seg_from = s.start;
        let mut r_c = if points.is_empty() {
            None
        } else {
            Some(meter.read(c)?)
        };
        let mut segments = Vec::with_capacity(8);
        while c < end {
            let dn = c.div_euclid(i64::from(DAY));
            if dn != day_no {
                day_no = dn;
                day_start = dn * i64::from(DAY);
                profile = self.profile_for(date_of_day(dn)?);
            }
            let sod = u32::try_from(c - day_start).unwrap_or(0);
            let piece = profile
                .iter()
                .find(|p| p.start <= sod && sod < p.end)
                .copied()
                .ok_or_else(|| TariffError::overflow("tou"))?;
            while power.get(pi).is_some_and(|p| p.0 <= c) {
                pi += 1;
            }
            let band = match pi.checked_sub(1).and_then(|i| power.get(i)) {
                Some(p) => Some(p.1),
                None => power.first().map(|p| p.1),
            };
            let next_band = power.get(pi).map_or(i64::MAX, |p| p.0);
            let b = end.min(day_start + i64::from(piece.end)).min(next_band);
            if b <= c {
                // Unreachable for a compiled tariff (profiles cover the day);
                // refuse rather than loop.
                return Err(TariffError::overflow("tou"));
            }
            let seg_to = add_secs(s.start, b - start)?;
            let (kwh, interpolated) = match r_c {
                Some((rc, ic)) => {
                    let (rb, ib) = meter.read(b)?;
                    r_c = Some((rb, ib));
                    let units = rb - rc;
                    let t = usize::from(piece.tier);
                    if seen_mask & (1u64 << t) == 0 {
                        seen_mask |= 1u64 << t;
                        if let Some(o) = tier_order.get_mut(tier_seen) {
                            *o = piece.tier;
                        }
                        tier_seen += 1;
                    }
                    if let Some(acc) = tier_kwh.get_mut(t) {
                        *acc += units;
                    }
                    (Some(Decimal::new(units, ENERGY_DP)), ic || ib)
                }
                None => (None, false),
            };
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
                kwh,
                interpolated,
            });
            seg_from = seg_to;
            c = b;
        }

        let energy_total = if points.is_empty() {
            None
        } else {
            let (rs, _) = Meter { pts: points, j: 0 }.read(start)?;
            let (re, _) = Meter { pts: points, j: 0 }.read(end)?;
            Some(Decimal::new(re - rs, ENERGY_DP))
        };
        let idle_seconds = unplugged.map_or(0, |u| u - end);
        d.quote.charging = Some(ChargingSummary {
            start: s.start,
            end: s.end,
            unplugged_at: s.unplugged_at,
            charging_seconds: u64::try_from(end - start).unwrap_or(0),
            idle_seconds: u64::try_from(idle_seconds).unwrap_or(0),
            energy_kwh: energy_total,
            energy_source: source,
        });
        d.quote.segments = segments;

        // 1. Energy lines, per tier in order of first appearance.
        if self.energy {
            for &t in tier_order.iter().take(tier_seen) {
                let units = tier_kwh.get(usize::from(t)).copied().unwrap_or(0);
                if units == 0 {
                    continue;
                }
                let tier = self
                    .tiers
                    .get(usize::from(t))
                    .ok_or_else(|| TariffError::overflow("energy.tiers"))?;
                let Some((el, sv)) = tier.price else { continue };
                let qty = Decimal::new(units, ENERGY_DP);
                for (kind, price) in [(LineKind::Electricity, el), (LineKind::Service, sv)] {
                    let mut l = d.charge(kind, qty, Unit::Kwh, price, Unit::Kwh, 1)?;
                    l.tier = Some(tier.name.clone());
                    d.quote.lines.push(l);
                }
            }
        }

        // 1. Time lines, per band.
        let mut time_billed = false;
        if let Some(t) = &self.time {
            let steps = bill_steps(t.rule, t.step_s, start + t.free_s, end, &power);
            for (bi, n) in steps.iter().enumerate() {
                if *n == 0 {
                    continue;
                }
                time_billed = true;
                let band = t
                    .bands
                    .get(bi)
                    .ok_or_else(|| TariffError::overflow("time.bands"))?;
                let minutes = Decimal::from(*n) * Decimal::from(t.step_min);
                let mut l = d.charge(
                    LineKind::Time,
                    minutes,
                    Unit::Minute,
                    band.per_hour,
                    Unit::Hour,
                    60,
                )?;
                l.band = Some(BandRef {
                    from_w: band.from_w,
                    to_w: band.to_w,
                });
                d.quote.lines.push(l);
            }
        }

        // 1. Idle line.
        if let (Some(r), Some(_)) = (&self.idle, unplugged) {
            let billable = idle_seconds - r.grace_s;
            if billable > 0 {
                let steps = (billable + r.step_s - 1) / r.step_s;
                let minutes = Decimal::from(steps) * Decimal::from(r.step_min);
                let l = d.charge(
                    LineKind::Idle,
                    minutes,
                    Unit::Minute,
                    r.per_hour,
                    Unit::Hour,
                    60,
                )?;
                d.quote.lines.push(l);
            }
        }

        // 1. Session fee.
        if let Some(fee) = self.session_fee {
            let l = d.charge(
                LineKind::SessionFee,
                Decimal::ONE,
                Unit::Session,
                fee,
                Unit::Session,
                1,
            )?;
            d.quote.lines.push(l);
        }

        // 2. Time minimum and cap; idle cap.
        if let Some(t) = &self.time {
            let base = d.sum_net(|k| k == LineKind::Time)?;
            if let Some(min) = t
                .minimum
                .filter(|m| time_billed && base.amount() < m.amount())
            {
                d.adjust(LineKind::TimeMinimum, base, min, |_| false)?;
            }
            if let Some(cap) = t.cap.filter(|c| base.amount() > c.amount()) {
                d.adjust(LineKind::TimeCap, base, cap, |k| k == LineKind::Time)?;
            }
        }
        if let Some(cap) = self.idle.as_ref().and_then(|r| r.cap) {
            let base = d.sum_net(|k| k == LineKind::Idle)?;
            if base.amount() > cap.amount() {
                d.adjust(LineKind::IdleCap, base, cap, |k| k == LineKind::Idle)?;
            }
        }

        // 3. Session minimum and maximum.
        let base = d.sum_net(|_| true)?;
        if let Some(min) = self.min_price.filter(|m| base.amount() < m.amount()) {
            d.adjust(LineKind::SessionMinimum, base, min, |_| false)?;
        }
        if let Some(max) = self.max_price.filter(|m| base.amount() > m.amount()) {
            d.adjust(LineKind::SessionCap, base, max, |_| true)?;
        }
        Ok(d)
    }

    fn swap(&self, s: &SwapSession) -> Result<Draft> {
        let table = self.swap.as_ref().ok_or_else(|| TariffError::NotOffered {
            section: "swap".to_owned(),
            service: "swap".to_owned(),
        })?;
        let model = &s.battery_model;
        let over =
            |m: &std::collections::BTreeMap<String, std::collections::BTreeMap<String, Money>>,
             id: &Option<String>| {
                id.as_ref()
                    .and_then(|id| m.get(id))
                    .and_then(|p| p.get(model))
                    .copied()
            };
        let price = over(&table.stations, &s.station)
            .or_else(|| over(&table.agents, &s.agent))
            .or_else(|| table.prices.get(model).copied())
            .ok_or_else(|| TariffError::UnknownBatteryModel {
                path: "session.battery_model".to_owned(),
                model: model.clone(),
                known: join(table.prices.keys()),
            })?;
        if s.count == 0 {
            return Err(TariffError::invalid(
                "session.count",
                0,
                "one or more swaps",
            ));
        }
        let mut d = self.draft(Service::Swap);
        let mut l = d.charge(
            LineKind::Swap,
            Decimal::from(s.count),
            Unit::Swap,
            price,
            Unit::Swap,
            1,
        )?;
        l.item = Some(model.clone());
        d.quote.lines.push(l);
        Ok(d)
    }

    fn rental(&self, s: &RentalSession) -> Result<Draft> {
        let table = self
            .rental
            .as_ref()
            .ok_or_else(|| TariffError::NotOffered {
                section: "rental".to_owned(),
                service: "rental".to_owned(),
            })?;
        let (day, month) = table.rates.get(&s.battery_model).copied().ok_or_else(|| {
            TariffError::UnknownBatteryModel {
                path: "session.battery_model".to_owned(),
                model: s.battery_model.clone(),
                known: join(table.rates.keys()),
            }
        })?;
        if s.months == 0 && s.days == 0 {
            return Err(TariffError::invalid(
                "session.days",
                0,
                "at least one day or month (months and days are both 0)",
            ));
        }
        let mut d = self.draft(Service::Rental);
        for (n, rate, kind, unit, path) in [
            (
                s.months,
                month,
                LineKind::RentalMonth,
                Unit::Month,
                "session.months",
            ),
            (s.days, day, LineKind::RentalDay, Unit::Day, "session.days"),
        ] {
            if n == 0 {
                continue;
            }
            let rate = rate.ok_or_else(|| {
                TariffError::session(
                    path,
                    format!(
                        "battery model {:?} has no {} rate in rental.rates",
                        s.battery_model,
                        if unit == Unit::Day { "day" } else { "month" }
                    ),
                )
            })?;
            let mut l = d.charge(kind, Decimal::from(n), unit, rate, unit, 1)?;
            l.item = Some(s.battery_model.clone());
            d.quote.lines.push(l);
        }
        Ok(d)
    }
}

/// A validated coupon: (input index, coupon, limit, threshold, percent).
type CheckedCoupon<'a> = (
    usize,
    &'a Coupon,
    Option<Money>,
    Option<Money>,
    Option<Decimal>,
);

/// A quote being built.
struct Draft {
    quote: Quote,
    rounding: crate::money::Rounding,
    currency: Currency,
}

fn money_err(path: &str) -> impl Fn(MoneyError) -> TariffError + '_ {
    move |error| match error {
        MoneyError::Overflow { .. } => TariffError::overflow(path),
        error => TariffError::Money {
            path: path.to_owned(),
            error,
        },
    }
}

impl Draft {
    /// **The rounding point** of the engine: an exact amount to the minor unit.
    fn round(&self, exact: Decimal) -> Result<Money> {
        let r = self
            .rounding
            .round_decimal(exact, self.currency.minor_units());
        Money::new(r, self.currency).map_err(money_err("amount"))
    }

    /// A charge line: `amount = round(quantity × unit_price ÷ divisor)`.
    fn charge(
        &self,
        kind: LineKind,
        quantity: Decimal,
        unit: Unit,
        unit_price: Money,
        per: Unit,
        divisor: u32,
    ) -> Result<QuoteLine> {
        let path = kind.name();
        let mut exact = unit_price
            .amount()
            .checked_mul(quantity)
            .ok_or_else(|| TariffError::overflow(path))?;
        if divisor != 1 {
            exact = exact
                .checked_div(Decimal::from(divisor))
                .ok_or_else(|| TariffError::overflow(path))?;
        }
        let mut l = QuoteLine::new(kind, self.round(exact)?);
        l.quantity = Some(quantity);
        l.unit = Some(unit);
        l.unit_price = Some(unit_price);
        l.per = Some(per);
        Ok(l)
    }

    /// Sum of the net amounts of the charge lines whose kind passes `f`.
    fn sum_net(&self, f: impl Fn(LineKind) -> bool) -> Result<Money> {
        Money::sum(
            self.currency,
            self.quote
                .lines
                .iter()
                .filter(|l| l.kind.is_charge() && f(l.kind))
                .map(|l| l.net),
        )
        .map_err(money_err("lines"))
    }

    /// An adjustment line `limit − base`; a negative one is spread over the
    /// charge lines whose kind passes `targets`.
    fn adjust(
        &mut self,
        kind: LineKind,
        base: Money,
        limit: Money,
        targets: impl Fn(LineKind) -> bool,
    ) -> Result<()> {
        let delta = limit.checked_sub(base).map_err(money_err(kind.name()))?;
        if delta.is_negative() {
            self.reduce(delta.neg(), &targets)?;
        }
        let mut l = QuoteLine::new(kind, delta);
        l.base = Some(base);
        l.limit = Some(limit);
        self.quote.lines.push(l);
        Ok(())
    }

    /// Takes `amount` (≥ 0, ≤ the sum of the targets' nets) off the target
    /// charge lines, in proportion to their nets (largest remainder).
    fn reduce(&mut self, amount: Money, targets: &impl Fn(LineKind) -> bool) -> Result<()> {
        if !amount.is_positive() {
            return Ok(());
        }
        let idx: Vec<usize> = self
            .quote
            .lines
            .iter()
            .enumerate()
            .filter(|(_, l)| l.kind.is_charge() && targets(l.kind) && l.net.is_positive())
            .map(|(i, _)| i)
            .collect();
        let weights: Vec<Decimal> = idx
            .iter()
            .filter_map(|i| self.quote.lines.get(*i).map(|l| l.net.amount()))
            .collect();
        let parts = amount.allocate(&weights).map_err(money_err("reduce"))?;
        for (i, p) in idx.into_iter().zip(parts) {
            if let Some(l) = self.quote.lines.get_mut(i) {
                l.reduced_by = l.reduced_by.checked_add(p).map_err(money_err("reduce"))?;
                l.net = l.net.checked_sub(p).map_err(money_err("reduce"))?;
            }
        }
        Ok(())
    }

    fn discounts(
        &mut self,
        scope: DiscountScope,
        member: Option<&Member>,
        coupons: &[Coupon],
    ) -> Result<()> {
        // Validate everything first, in input order.
        let member_pct = match member {
            Some(m) => Some(percent("session.member.percent_off", m.percent_off)?),
            None => None,
        };
        let cur = self.currency;
        let mut checked: Vec<CheckedCoupon<'_>> = Vec::with_capacity(coupons.len());
        for (i, c) in coupons.iter().enumerate() {
            let p = |f: &str| format!("session.coupons[{i}].{f}");
            if c.id().is_empty() {
                return Err(TariffError::invalid(p("id"), "", "a non-empty coupon id"));
            }
            if let Some(j) = coupons.iter().take(i).position(|o| o.id() == c.id()) {
                return Err(TariffError::session(
                    p("id"),
                    format!(
                        "coupon {:?} is already given as session.coupons[{j}]",
                        c.id()
                    ),
                ));
            }
            // (limit, threshold, percent)
            let entry = match c {
                Coupon::Fixed { amount: a, .. } => {
                    (Some(amount(&p("amount"), *a, cur)?), None, None)
                }
                Coupon::Percent {
                    percent_off, cap, ..
                } => (
                    cap.map(|x| amount(&p("cap"), x, cur)).transpose()?,
                    None,
                    Some(percent(&p("percent_off"), *percent_off)?),
                ),
                Coupon::Threshold { spend, off, .. } => (
                    Some(amount(&p("off"), *off, cur)?),
                    Some(amount(&p("spend"), *spend, cur)?),
                    None,
                ),
            };
            checked.push((i, c, entry.0, entry.1, entry.2));
        }

        let in_scope = |scope: DiscountScope| {
            move |k: LineKind| match scope {
                DiscountScope::Whole => true,
                DiscountScope::ServiceOnly => !matches!(k, LineKind::Electricity | LineKind::Idle),
            }
        };

        // 4. Member discount.
        if let (Some(m), Some(pct)) = (member, member_pct) {
            let f = in_scope(scope);
            let base = self.sum_net(f)?;
            if base.is_positive() {
                let exact = base
                    .amount()
                    .checked_mul(pct)
                    .and_then(|x| x.checked_div(Decimal::ONE_HUNDRED))
                    .ok_or_else(|| TariffError::overflow("member_discount"))?;
                let off = self
                    .round(exact)?
                    .checked_min(base)
                    .map_err(money_err("member_discount"))?;
                self.reduce(off, &f)?;
                let mut l = QuoteLine::new(LineKind::MemberDiscount, off.neg());
                l.item = Some(m.level.clone());
                l.base = Some(base);
                l.percent = Some(pct);
                self.quote.lines.push(l);
            }
        }

        // 5. Coupons: threshold, fixed, percent; stable within a kind.
        checked.sort_by_key(|c| (c.1.order(), c.0));
        for (_, c, limit, threshold, pct) in checked {
            let f = in_scope(c.scope());
            let base = self.sum_net(f)?;
            let skip = |reason| SkippedCoupon {
                id: c.id().to_owned(),
                reason,
                eligible: base,
            };
            if !base.is_positive() {
                self.quote
                    .skipped_coupons
                    .push(skip(SkipReason::NothingEligible));
                continue;
            }
            if threshold.is_some_and(|th| base.amount() < th.amount()) {
                self.quote
                    .skipped_coupons
                    .push(skip(SkipReason::BelowThreshold));
                continue;
            }
            let mut off = match pct {
                Some(p) => {
                    let exact = base
                        .amount()
                        .checked_mul(p)
                        .and_then(|x| x.checked_div(Decimal::ONE_HUNDRED))
                        .ok_or_else(|| TariffError::overflow("coupon"))?;
                    let o = self.round(exact)?;
                    match limit {
                        Some(cap) => o.checked_min(cap).map_err(money_err("coupon"))?,
                        None => o,
                    }
                }
                None => limit.unwrap_or(Money::zero(cur)),
            };
            off = off.checked_min(base).map_err(money_err("coupon"))?;
            self.reduce(off, &f)?;
            let mut l = QuoteLine::new(LineKind::Coupon, off.neg());
            l.item = Some(c.id().to_owned());
            l.base = Some(base);
            l.percent = pct;
            l.limit = limit;
            l.threshold = threshold;
            self.quote.lines.push(l);
        }
        Ok(())
    }

    fn finish(mut self) -> Result<Quote> {
        let cur = self.currency;
        let mut st = [Money::zero(cur); 9];
        for l in &self.quote.lines {
            let slot = match l.kind {
                LineKind::Electricity => 0,
                LineKind::Service => 1,
                LineKind::Time => 2,
                LineKind::Idle => 3,
                LineKind::SessionFee => 4,
                LineKind::Swap => 5,
                LineKind::RentalDay | LineKind::RentalMonth => 6,
                LineKind::TimeMinimum
                | LineKind::TimeCap
                | LineKind::IdleCap
                | LineKind::SessionMinimum
                | LineKind::SessionCap => 7,
                LineKind::MemberDiscount | LineKind::Coupon => 8,
            };
            if let Some(s) = st.get_mut(slot) {
                *s = s.checked_add(l.amount).map_err(money_err("subtotals"))?;
            }
        }
        let [
            electricity,
            service,
            time,
            idle,
            fees,
            swap,
            rental,
            adjustments,
            discounts,
        ] = st;
        self.quote.subtotals = Subtotals {
            electricity,
            service,
            time,
            idle,
            fees,
            swap,
            rental,
            adjustments,
            discounts,
        };
        self.quote.total = Money::sum(cur, st).map_err(money_err("total"))?;
        Ok(self.quote)
    }
}

/// Whole seconds since the epoch of a local wall-clock instant.
fn secs(path: &str, t: NaiveDateTime) -> Result<i64> {
    let u = t.and_utc();
    if u.timestamp_subsec_nanos() != 0 {
        return Err(TariffError::session(
            path,
            format!("{t} has a fraction of a second; give whole seconds"),
        ));
    }
    Ok(u.timestamp())
}

fn add_secs(t: NaiveDateTime, s: i64) -> Result<NaiveDateTime> {
    t.checked_add_signed(TimeDelta::seconds(s))
        .ok_or_else(|| TariffError::overflow("session.end"))
}

/// Unix day number → date.
fn date_of_day(day: i64) -> Result<NaiveDate> {
    i32::try_from(day + 719_163)
        .ok()
        .and_then(NaiveDate::from_num_days_from_ce_opt)
        .ok_or_else(|| TariffError::overflow("session.start"))
}

/// kWh → 0.0001 kWh units, checked.
fn energy_units(path: &str, kwh: Decimal) -> Result<i64> {
    super::compile::non_negative(path, kwh).map_err(|_| {
        TariffError::session(
            path,
            format!("{kwh} kWh is negative; energy is zero or more"),
        )
    })?;
    check_scale(path, kwh, ENERGY_DP)?;
    let mut v = kwh;
    v.rescale(ENERGY_DP);
    i64::try_from(v.mantissa()).map_err(|_| TariffError::overflow(path))
}

fn readings(rs: &[super::session::MeterReading], start: i64, end: i64) -> Result<Vec<(i64, i64)>> {
    let mut out: Vec<(i64, i64)> = Vec::with_capacity(rs.len());
    for (i, r) in rs.iter().enumerate() {
        let at = secs(&format!("session.readings[{i}].at"), r.at)?;
        let units = energy_units(&format!("session.readings[{i}].kwh"), r.kwh)?;
        if let Some(&(pat, pu)) = out.last() {
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
                        Decimal::new(pu, ENERGY_DP),
                        r.kwh
                    ),
                ));
            }
        }
        out.push((at, units));
    }
    if let (Some(f), Some(l)) = (out.first(), out.last()) {
        {
            if f.0 > start {
                return Err(TariffError::session(
                    "session.readings[0].at",
                    "is after session.start; the first reading must be at or before the start",
                ));
            }
            if l.0 < end {
                return Err(TariffError::session(
                    format!("session.readings[{}].at", out.len() - 1),
                    "is before session.end; the last reading must be at or after the end",
                ));
            }
        }
    }
    Ok(out)
}

/// The meter register as a function of time: the readings, linearly
/// interpolated between them, rounded half-up to 0.0001 kWh.
struct Meter<'a> {
    pts: &'a [(i64, i64)],
    j: usize,
}

impl Meter<'_> {
    /// The register at `x` (which must not be earlier than the previous call)
    /// and whether it was interpolated.
    fn read(&mut self, x: i64) -> Result<(i64, bool)> {
        while self.pts.get(self.j + 1).is_some_and(|p| p.0 <= x) && self.j + 2 < self.pts.len() {
            self.j += 1;
        }
        let (t0, e0) = *self
            .pts
            .get(self.j)
            .ok_or_else(|| TariffError::overflow("readings"))?;
        if x <= t0 {
            return Ok((e0, false));
        }
        let Some(&(t1, e1)) = self.pts.get(self.j + 1) else {
            return Ok((e0, false));
        };
        if x >= t1 {
            return Ok((e1, false));
        }
        let num = i128::from(e1 - e0) * i128::from(x - t0);
        let den = i128::from(t1 - t0);
        let q = (2 * num + den) / (2 * den);
        let v = i64::try_from(q).map_err(|_| TariffError::overflow("readings"))?;
        Ok((e0 + v, true))
    }
}

/// Billing steps per band for time pricing over the billable window
/// `[b0, end)`, in steps of `g` seconds, rounding the last step up.
fn bill_steps(rule: BandRule, g: i64, b0: i64, end: i64, power: &[(i64, u8)]) -> [u64; MAX_BANDS] {
    let mut counts = [0u64; MAX_BANDS];
    if b0 >= end || g <= 0 {
        return counts;
    }
    let n_steps = u64::try_from((end - b0 + g - 1) / g).unwrap_or(0);
    // Constant-band intervals within [b0, end).
    let first = power.iter().rposition(|p| p.0 <= b0).unwrap_or(0);
    let band_at_b0 = power.get(first).map_or(0, |p| p.1);
    let rest = power.get(first + 1..).unwrap_or(&[]);
    let changes = rest.iter().filter(|p| p.0 > b0 && p.0 < end);
    let mut add = |band: u8, n: u64| {
        if let Some(c) = counts.get_mut(usize::from(band)) {
            *c += n;
        }
    };
    match rule {
        BandRule::HighestInSession => {
            let max = changes.map(|p| p.1).fold(band_at_b0, u8::max);
            add(max, n_steps);
        }
        BandRule::HighestInStep => {
            let mut cur_step = 0i64;
            let mut cur_max = band_at_b0;
            let mut p = b0;
            let mut band = band_at_b0;
            let mut iter = changes
                .map(|c| (c.0, c.1))
                .chain(core::iter::once((end, 0)));
            for (q, next_band) in iter.by_ref() {
                if q > p {
                    let kp = (p - b0) / g;
                    let kq = (q - 1 - b0) / g;
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
