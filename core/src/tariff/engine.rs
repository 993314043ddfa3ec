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

use chrono::{NaiveDate, NaiveDateTime};
use rust_decimal::Decimal;

use super::compile::{CompiledTariff, DAY, amount, check_scale, join, percent};
use super::error::TariffError;
use super::model::{DiscountScope, Tariff};
use super::quote::{
    BandRef, LineKind, Quote, QuoteLine, Service, SkipReason, SkippedCoupon, Subtotals, Unit,
};
use super::session::{Coupon, Member, RentalSession, Session, SwapSession};
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
        // The draft is built once and filled in place: a quote is large, and
        // moving it between steps costs more than the arithmetic.
        let mut d = self.draft(match session {
            Session::Charging(_) => Service::Charging,
            Session::Swap(_) => Service::Swap,
            Session::Rental(_) => Service::Rental,
        });
        match session {
            Session::Charging(s) => self.charging(s, &mut d)?,
            Session::Swap(s) => self.swap(s, &mut d)?,
            Session::Rental(s) => self.rental(s, &mut d)?,
        }
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
                lines: Vec::with_capacity(8),
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
            sub: [0; 9],
        }
    }

    fn swap(&self, s: &SwapSession, d: &mut Draft) -> Result<()> {
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
        let tag = Tag {
            item: Some(model.clone()),
            ..Tag::default()
        };
        d.charge(
            LineKind::Swap,
            tag,
            Decimal::from(s.count),
            Unit::Swap,
            price,
            Unit::Swap,
            1,
        )?;
        Ok(())
    }

    fn rental(&self, s: &RentalSession, d: &mut Draft) -> Result<()> {
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
            let tag = Tag {
                item: Some(s.battery_model.clone()),
                ..Tag::default()
            };
            d.charge(kind, tag, Decimal::from(n), unit, rate, unit, 1)?;
        }
        Ok(())
    }
}

/// The labels of a charge line.
#[derive(Default)]
pub(super) struct Tag {
    pub tier: Option<std::sync::Arc<str>>,
    pub band: Option<BandRef>,
    pub item: Option<String>,
    pub rule: Option<std::sync::Arc<str>>,
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
pub(super) struct Draft {
    pub quote: Quote,
    rounding: crate::money::Rounding,
    currency: Currency,
    /// Subtotals in minor units, kept as lines are pushed (see [`slot`]).
    sub: [i64; 9],
}

/// The subtotal a line kind counts towards.
fn slot(kind: LineKind) -> usize {
    match kind {
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
    }
}

/// 10^k for k ≤ 18 from a table, larger k by multiplication.
fn pow10(k: u32) -> Option<i128> {
    match pow10_i64(k) {
        Some(p) => Some(i128::from(p)),
        None => 10i128.checked_pow(k),
    }
}

/// 10^k for k ≤ 18 (the values that fit 64 bits), from a table.
fn pow10_i64(k: u32) -> Option<i64> {
    const P: [i64; 19] = [
        1,
        10,
        100,
        1_000,
        10_000,
        100_000,
        1_000_000,
        10_000_000,
        100_000_000,
        1_000_000_000,
        10_000_000_000,
        100_000_000_000,
        1_000_000_000_000,
        10_000_000_000_000,
        100_000_000_000_000,
        1_000_000_000_000_000,
        10_000_000_000_000_000,
        100_000_000_000_000_000,
        1_000_000_000_000_000_000,
    ];
    P.get(usize::try_from(k).ok()?).copied()
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
    /// **The rounding point** of the engine: `price × quantity ÷ divisor`
    /// rounded to minor units with the tariff's rule, computed exactly as a
    /// ratio of integers ([`Rounding::round_ratio`](crate::money::Rounding::round_ratio)).
    fn minor_of(&self, price: Decimal, quantity: Decimal, divisor: u32) -> Option<i64> {
        let mu = self.currency.minor_units();
        let (pm, qm) = (price.mantissa(), quantity.mantissa());
        let scale = price.scale() + quantity.scale();
        // Fast path: everything fits 64 bits (prices and quantities of real sessions).
        if let (Some(k), Ok(a), Ok(b)) =
            (scale.checked_sub(mu), i64::try_from(pm), i64::try_from(qm))
        {
            // 64-bit multiplies only: a checked 128-bit multiply is a library call.
            let den = pow10_i64(k).and_then(|p| p.checked_mul(i64::from(divisor)));
            if let (Some(num), Some(den)) = (a.checked_mul(b), den) {
                let r = self
                    .rounding
                    .round_ratio(i128::from(num), i128::from(den))?;
                return i64::try_from(r).ok();
            }
        }
        let num = pm.checked_mul(qm)?;
        let (num, den) = if scale >= mu {
            (num, pow10(scale - mu)?.checked_mul(i128::from(divisor))?)
        } else {
            (num.checked_mul(pow10(mu - scale)?)?, i128::from(divisor))
        };
        i64::try_from(self.rounding.round_ratio(num, den)?).ok()
    }

    /// Pushes a line, counting its amount (`minor`) into its subtotal.
    fn push(&mut self, line: QuoteLine, minor: i64) -> Result<&mut QuoteLine> {
        let s = self
            .sub
            .get_mut(slot(line.kind))
            .ok_or_else(|| TariffError::overflow("subtotals"))?;
        *s = s
            .checked_add(minor)
            .ok_or_else(|| TariffError::overflow("subtotals"))?;
        self.quote.lines.push(line);
        self.quote
            .lines
            .last_mut()
            .ok_or_else(|| TariffError::overflow("lines"))
    }

    /// Pushes a line whose amount is a whole number of minor units.
    fn push_money(&mut self, line: QuoteLine) -> Result<&mut QuoteLine> {
        let minor = line
            .amount
            .to_minor()
            .ok_or_else(|| TariffError::overflow(line.kind.name()))?;
        self.push(line, minor)
    }

    /// Pushes a charge line: `amount = round(quantity × unit_price ÷ divisor)`.
    /// Built in place: lines are large and quoting is a hot path.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn charge(
        &mut self,
        kind: LineKind,
        tag: Tag,
        quantity: Decimal,
        unit: Unit,
        unit_price: Money,
        per: Unit,
        divisor: u32,
    ) -> Result<()> {
        let minor = self
            .minor_of(unit_price.amount(), quantity, divisor)
            .ok_or_else(|| TariffError::overflow(kind.name()))?;
        let s = self
            .sub
            .get_mut(slot(kind))
            .ok_or_else(|| TariffError::overflow("subtotals"))?;
        *s = s
            .checked_add(minor)
            .ok_or_else(|| TariffError::overflow("subtotals"))?;
        let amount = Money::from_minor(minor, self.currency);
        self.quote.lines.push(QuoteLine {
            kind,
            tier: tag.tier,
            band: tag.band,
            item: tag.item,
            rule: tag.rule,
            quantity: Some(quantity),
            unit: Some(unit),
            unit_price: Some(unit_price),
            per: Some(per),
            base: None,
            percent: None,
            limit: None,
            threshold: None,
            amount,
            reduced_by: Money::zero(self.currency),
            net: amount,
        });
        Ok(())
    }

    /// Sum of the net amounts of the charge lines whose kind passes `f`.
    pub(super) fn sum_net(&self, f: impl Fn(LineKind) -> bool) -> Result<Money> {
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
    pub(super) fn adjust(
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
        self.push_money(l)?;
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
                let off = self.percent_of(base, pct, "member_discount")?;
                self.reduce(off, &f)?;
                let mut l = QuoteLine::new(LineKind::MemberDiscount, off.neg());
                l.item = Some(m.level.clone());
                l.base = Some(base);
                l.percent = Some(pct);
                self.push_money(l)?;
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
                    let o = self.percent_of(base, p, "coupon")?;
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
            self.push_money(l)?;
        }
        Ok(())
    }

    /// **Rounding point** of percentage discounts: `base × percent / 100`
    /// rounded once, never more than `base`.
    fn percent_of(&self, base: Money, pct: Decimal, what: &str) -> Result<Money> {
        let minor = self
            .minor_of(base.amount(), pct, 100)
            .ok_or_else(|| TariffError::overflow(what))?;
        Money::from_minor(minor, self.currency)
            .checked_min(base)
            .map_err(money_err(what))
    }

    fn finish(mut self) -> Result<Quote> {
        let cur = self.currency;
        // Subtotals were set to zero (scale 0) by `draft`; only the non-zero
        // ones are replaced, in place (the quote is large; no copies).
        let st = &mut self.quote.subtotals;
        for (slot, minor) in [
            &mut st.electricity,
            &mut st.service,
            &mut st.time,
            &mut st.idle,
            &mut st.fees,
            &mut st.swap,
            &mut st.rental,
            &mut st.adjustments,
            &mut st.discounts,
        ]
        .into_iter()
        .zip(self.sub)
        {
            if minor != 0 {
                *slot = Money::from_minor(minor, cur);
            }
        }
        let total = self
            .sub
            .iter()
            .try_fold(0i64, |a, m| a.checked_add(*m))
            .ok_or_else(|| TariffError::overflow("total"))?;
        self.quote.total = Money::from_minor(total, cur);
        Ok(self.quote)
    }
}

/// Whole seconds since the epoch of a local wall-clock instant. The path is
/// built only on error, keeping the happy path free of allocation.
pub(super) fn secs(path: impl FnOnce() -> String, t: NaiveDateTime) -> Result<i64> {
    let u = t.and_utc();
    if u.timestamp_subsec_nanos() != 0 {
        return Err(TariffError::session(
            path(),
            format!("{t} has a fraction of a second; give whole seconds"),
        ));
    }
    Ok(u.timestamp())
}

/// The local instant `secs` seconds after midnight of `date` (at most one day).
pub(super) fn local(date: NaiveDate, secs: i64) -> Result<NaiveDateTime> {
    let (date, secs) = if secs >= i64::from(DAY) {
        (date.succ_opt(), secs - i64::from(DAY))
    } else {
        (Some(date), secs)
    };
    date.zip(
        u32::try_from(secs)
            .ok()
            .and_then(|s| chrono::NaiveTime::from_num_seconds_from_midnight_opt(s, 0)),
    )
    .map(|(d, t)| NaiveDateTime::new(d, t))
    .ok_or_else(|| TariffError::overflow("session.end"))
}

/// Unix day number → date.
pub(super) fn date_of_day(day: i64) -> Result<NaiveDate> {
    i32::try_from(day + 719_163)
        .ok()
        .and_then(NaiveDate::from_num_days_from_ce_opt)
        .ok_or_else(|| TariffError::overflow("session.start"))
}

/// 0.0001 kWh units → kWh with 4 decimal places (no checks needed: any i64 fits).
pub(crate) fn kwh(units: i64) -> Decimal {
    let m = units.unsigned_abs();
    Decimal::from_parts(
        (m & 0xFFFF_FFFF) as u32,
        (m >> 32) as u32,
        0,
        units < 0,
        ENERGY_DP,
    )
}

/// kWh → 0.0001 kWh units, checked. The path is built only on error.
pub(super) fn energy_units(path: impl Fn() -> String, kwh: Decimal) -> Result<i64> {
    if kwh.is_sign_negative() && !kwh.is_zero() {
        return Err(TariffError::session(
            path(),
            format!("{kwh} kWh is negative; energy is zero or more"),
        ));
    }
    if kwh.scale() <= ENERGY_DP {
        if let Some(u) = i64::try_from(kwh.mantissa())
            .ok()
            .zip(pow10(ENERGY_DP - kwh.scale()).and_then(|p| i64::try_from(p).ok()))
            .and_then(|(m, p)| m.checked_mul(p))
        {
            return Ok(u);
        }
    }
    let mut v = kwh;
    if v.scale() > ENERGY_DP {
        v = v.normalize();
        if v.scale() > ENERGY_DP {
            check_scale(&path(), kwh, ENERGY_DP)?;
        }
    }
    v.rescale(ENERGY_DP);
    if v.scale() != ENERGY_DP {
        return Err(TariffError::overflow(path()));
    }
    i64::try_from(v.mantissa()).map_err(|_| TariffError::overflow(path()))
}
