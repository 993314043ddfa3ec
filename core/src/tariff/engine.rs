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

use chrono::{NaiveDate, NaiveDateTime, Timelike};
use rust_decimal::Decimal;

use super::compile::{CompiledTariff, DAY, Price, amount, check_scale, join, percent};
use super::error::TariffError;
use super::model::{DiscountScope, Tariff};
use super::quote::{
    ChargingSummary, LineKind, LineLabel, LineTerms, Quote, QuoteLine, Segment, Service,
    SkipReason, SkippedCoupon, Subtotals, Unit,
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
        let mut d = Draft::new(
            self,
            match session {
                Session::Charging(_) => Service::Charging,
                Session::Swap(_) => Service::Swap,
                Session::Rental(_) => Service::Rental,
            },
        );
        match session {
            Session::Charging(s) => self.charging(s, &mut d)?,
            Session::Swap(s) => self.swap(s, &mut d)?,
            Session::Rental(s) => self.rental(s, &mut d)?,
        }
        d.discounts(self.scope, session.member(), session.coupons())?;
        d.finish(self)
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
        d.charge(
            LineKind::Swap,
            Some(LineLabel::Item(model.as_str().into())),
            i64::from(s.count),
            0,
            Unit::Swap,
            &price.into(),
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
            let label = Some(LineLabel::Item(s.battery_model.as_str().into()));
            d.charge(kind, label, i64::from(n), 0, unit, &rate.into(), unit, 1)?;
        }
        Ok(())
    }
}

/// A validated coupon: (input index, coupon, limit, threshold, percent).
type CheckedCoupon<'a> = (usize, &'a Coupon, Option<i64>, Option<i64>, Option<Decimal>);

/// A quote being built, in the pieces the sweep and the discounts fill; the
/// subtotals are kept in minor units as lines are pushed (see [`slot`]).
pub(super) struct Draft {
    pub service: Service,
    pub charging: Option<ChargingSummary>,
    pub segments: Vec<Segment>,
    lines: Vec<QuoteLine>,
    skipped: Vec<SkippedCoupon>,
    rounding: crate::money::Rounding,
    currency: Currency,
    minor_units: u32,
    /// Zero at the currency's scale (copied, not rebuilt, on every line).
    zero: Money,
    sub: [i64; 9],
    /// Whether a reduction has been spread over the charge lines yet: until
    /// one has, every net is its amount, and sums of nets can be read off
    /// the subtotals.
    reduced: bool,
}

/// The charge kinds counted in each subtotal slot (see [`slot`]); while no
/// line is reduced, slot 7 holds only the minimums.
const SLOT_KINDS: [&[LineKind]; 8] = [
    &[LineKind::Electricity],
    &[LineKind::Service],
    &[LineKind::Time],
    &[LineKind::Idle],
    &[LineKind::SessionFee],
    &[LineKind::Swap],
    &[LineKind::RentalDay, LineKind::RentalMonth],
    &[LineKind::TimeMinimum, LineKind::SessionMinimum],
];

/// A short list on the stack that spills to the heap: most sessions have a
/// handful of lines and power samples, and quoting should not allocate for
/// them.
pub(super) struct Short<T: Copy + Default, const N: usize> {
    buf: [T; N],
    len: usize,
    spill: Vec<T>,
}

impl<T: Copy + Default, const N: usize> Short<T, N> {
    pub(super) fn new() -> Self {
        Short {
            buf: [T::default(); N],
            len: 0,
            spill: Vec::new(),
        }
    }

    pub(super) fn push(&mut self, v: T) {
        if self.spill.is_empty() {
            if let Some(slot) = self.buf.get_mut(self.len) {
                *slot = v;
                self.len += 1;
                return;
            }
            self.spill.reserve(N * 2);
            self.spill.extend_from_slice(&self.buf);
        }
        self.spill.push(v);
    }

    pub(super) fn last(&self) -> Option<&T> {
        self.as_slice().last()
    }

    pub(super) fn as_slice(&self) -> &[T] {
        if self.spill.is_empty() {
            self.buf.get(..self.len).unwrap_or(&[])
        } else {
            &self.spill
        }
    }
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

fn overflow(path: &'static str) -> impl Fn() -> TariffError {
    move || TariffError::overflow(path)
}

impl Draft {
    pub(super) fn new(t: &CompiledTariff, service: Service) -> Draft {
        Draft {
            service,
            charging: None,
            segments: Vec::new(),
            lines: Vec::with_capacity(8),
            skipped: Vec::new(),
            rounding: t.rounding,
            currency: t.currency,
            minor_units: t.currency.minor_units(),
            zero: Money::from_minor(0, t.currency),
            sub: [0; 9],
            reduced: false,
        }
    }

    /// **The rounding point** of percentage discounts: `base × percent / 100`,
    /// exactly, rounded once.
    fn minor_of(&self, price: Decimal, quantity: Decimal, divisor: u32) -> Option<i64> {
        let mu = self.currency.minor_units();
        let (pm, qm) = (price.mantissa(), quantity.mantissa());
        let scale = price.scale() + quantity.scale();
        if let (Some(k), Ok(a), Ok(b)) =
            (scale.checked_sub(mu), i64::try_from(pm), i64::try_from(qm))
        {
            let den = pow10_i64(k).and_then(|p| p.checked_mul(i64::from(divisor)));
            if let (Some(num), Some(den)) = (a.checked_mul(b), den) {
                if let Some(m) = self.rounding.round_ratio_i64(num, den) {
                    return Some(m);
                }
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

    /// **The rounding point** of charge lines: `q × 10^-q_scale × price ÷
    /// divisor` rounded to minor units with the tariff's rule, computed
    /// exactly as a ratio of integers — in 64 bits for every real session,
    /// and by a constant divisor for the usual ones (a 64-bit division by a
    /// variable costs more than the rest of the line).
    #[inline(always)]
    fn minor_of_line(&self, price: &Price, q: i64, q_scale: u32, divisor: i64) -> Option<i64> {
        // With the price in 10^-5 units the denominator depends only on the
        // line's kind and the currency.
        if let Some(num) = price.p5.and_then(|p5| q.checked_mul(p5)) {
            let r = self.rounding;
            let m = match (self.minor_units, q_scale, divisor) {
                (2, ENERGY_DP, 1) => r.round_ratio_by::<10_000_000>(num),
                (2, 0, 60) => r.round_ratio_by::<60_000>(num),
                (2, 0, 3600) => r.round_ratio_by::<3_600_000>(num),
                (2, 0, 1) => r.round_ratio_by::<1_000>(num),
                (mu, qs, div) => (qs + 5)
                    .checked_sub(mu)
                    .and_then(pow10_i64)
                    .and_then(|d| d.checked_mul(div))
                    .and_then(|den| r.round_ratio_i64(num, den)),
            };
            if m.is_some() {
                return m;
            }
        }
        let divisor = u32::try_from(divisor).ok()?;
        self.minor_of(price.money.amount(), decimal(q, q_scale), divisor)
    }

    /// Counts `minor` into the subtotal of `kind` (and, for a charge line,
    /// into its kind's sum).
    fn count(&mut self, kind: LineKind, minor: i64) -> Result<()> {
        let s = self
            .sub
            .get_mut(slot(kind))
            .ok_or_else(overflow("subtotals"))?;
        *s = s.checked_add(minor).ok_or_else(overflow("subtotals"))?;
        Ok(())
    }

    /// Pushes a charge line of `q × 10^-q_scale` units:
    /// `amount = round(quantity × unit_price ÷ divisor)`.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    pub(super) fn charge(
        &mut self,
        kind: LineKind,
        label: Option<LineLabel>,
        q: i64,
        q_scale: u32,
        unit: Unit,
        unit_price: &Price,
        per: Unit,
        divisor: i64,
    ) -> Result<()> {
        let minor = self
            .minor_of_line(unit_price, q, q_scale, divisor)
            .ok_or_else(|| TariffError::overflow(kind.name()))?;
        self.count(kind, minor)?;
        self.lines.push(QuoteLine {
            kind,
            label,
            quantity: Some(decimal(q, q_scale)),
            unit: Some(unit),
            per: Some(per),
            unit_price: Some(unit_price.money),
            amount: Money::from_minor_at(minor, self.currency, self.minor_units),
            reduced_by: self.zero,
            terms: None,
        });
        Ok(())
    }

    /// Pushes an adjustment or discount line of `amount` minor units.
    fn push_reduction(
        &mut self,
        kind: LineKind,
        label: Option<LineLabel>,
        amount: i64,
        terms: LineTerms,
    ) -> Result<()> {
        self.count(kind, amount)?;
        self.lines.push(QuoteLine {
            kind,
            label,
            quantity: None,
            unit: None,
            per: None,
            unit_price: None,
            amount: Money::from_minor(amount, self.currency),
            reduced_by: self.zero,
            terms: Some(Box::new(terms)),
        });
        Ok(())
    }

    /// What is left of a charge line, in minor units.
    fn net_minor(l: &QuoteLine) -> Option<i64> {
        let amount = l.amount.minor_units_fast()?;
        if l.reduced_by.is_zero() {
            return Some(amount);
        }
        amount.checked_sub(l.reduced_by.minor_units_fast()?)
    }

    /// Sum of the net amounts of the charge lines whose kind passes `f`, in
    /// minor units.
    pub(super) fn sum_net(&self, f: impl Fn(LineKind) -> bool) -> Result<i64> {
        if !self.reduced {
            // No line is reduced yet: the nets are the amounts, summed by
            // slot — unless `f` splits a slot's kinds.
            let mut sum = Some(0i64);
            for (kinds, v) in SLOT_KINDS.iter().zip(self.sub) {
                let n = kinds.iter().filter(|k| f(**k)).count();
                if n == kinds.len() {
                    sum = sum.and_then(|s| s.checked_add(v));
                } else if n != 0 {
                    sum = None;
                    break;
                }
            }
            if let Some(sum) = sum {
                return Ok(sum);
            }
        }
        let mut sum = 0i64;
        for l in self
            .lines
            .iter()
            .filter(|l| l.kind.is_charge() && f(l.kind))
        {
            sum = Self::net_minor(l)
                .and_then(|n| sum.checked_add(n))
                .ok_or_else(overflow("lines"))?;
        }
        Ok(sum)
    }

    /// An adjustment line `limit − base` (minor units); a negative one is
    /// spread over the charge lines whose kind passes `targets`.
    pub(super) fn adjust(
        &mut self,
        kind: LineKind,
        base: i64,
        limit: i64,
        targets: impl Fn(LineKind) -> bool,
    ) -> Result<()> {
        let delta = limit
            .checked_sub(base)
            .ok_or_else(|| TariffError::overflow(kind.name()))?;
        if delta < 0 {
            self.reduce(-delta, &targets)?;
        }
        let cur = self.currency;
        self.push_reduction(
            kind,
            None,
            delta,
            LineTerms {
                base: Some(Money::from_minor(base, cur)),
                limit: Some(Money::from_minor(limit, cur)),
                ..LineTerms::default()
            },
        )
    }

    /// Takes `amount` (≥ 0, ≤ the sum of the targets' nets; minor units) off
    /// the target charge lines, in proportion to their nets (largest
    /// remainder, [`Money::allocate`]).
    fn reduce(&mut self, amount: i64, targets: &impl Fn(LineKind) -> bool) -> Result<()> {
        if amount <= 0 {
            return Ok(());
        }
        self.reduced = true;
        let mu = self.currency.minor_units();
        let mut idx: Vec<usize> = Vec::new();
        let mut weights: Vec<Decimal> = Vec::new();
        for (i, l) in self.lines.iter().enumerate() {
            if l.kind.is_charge() && targets(l.kind) {
                let net = Self::net_minor(l).ok_or_else(overflow("reduce"))?;
                if net > 0 {
                    idx.push(i);
                    weights.push(decimal(net, mu));
                }
            }
        }
        let parts = Money::from_minor(amount, self.currency)
            .allocate(&weights)
            .map_err(money_err("reduce"))?;
        for (i, p) in idx.into_iter().zip(parts) {
            if let Some(l) = self.lines.get_mut(i) {
                l.reduced_by = l.reduced_by.checked_add(p).map_err(money_err("reduce"))?;
            }
        }
        Ok(())
    }

    pub(super) fn discounts(
        &mut self,
        scope: DiscountScope,
        member: Option<&Member>,
        coupons: &[Coupon],
    ) -> Result<()> {
        if member.is_none() && coupons.is_empty() {
            return Ok(());
        }
        // Validate everything first, in input order.
        let member_pct = match member {
            Some(m) => Some(percent("session.member.percent_off", m.percent_off)?),
            None => None,
        };
        let cur = self.currency;
        let minor = |m: Money| m.minor_units_fast().ok_or_else(overflow("coupon"));
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
                    (Some(minor(amount(&p("amount"), *a, cur)?)?), None, None)
                }
                Coupon::Percent {
                    percent_off, cap, ..
                } => (
                    cap.map(|x| amount(&p("cap"), x, cur).and_then(minor))
                        .transpose()?,
                    None,
                    Some(percent(&p("percent_off"), *percent_off)?),
                ),
                Coupon::Threshold { spend, off, .. } => (
                    Some(minor(amount(&p("off"), *off, cur)?)?),
                    Some(minor(amount(&p("spend"), *spend, cur)?)?),
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
        let m = |minor: i64| Money::from_minor(minor, cur);

        // 4. Member discount.
        if let (Some(member), Some(pct)) = (member, member_pct) {
            let f = in_scope(scope);
            let base = self.sum_net(f)?;
            if base > 0 {
                let off = self.percent_of(base, pct, "member_discount")?;
                self.reduce(off, &f)?;
                self.push_reduction(
                    LineKind::MemberDiscount,
                    Some(LineLabel::Item(member.level.as_str().into())),
                    -off,
                    LineTerms {
                        base: Some(m(base)),
                        percent: Some(pct),
                        ..LineTerms::default()
                    },
                )?;
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
                eligible: m(base),
            };
            if base <= 0 {
                self.skipped.push(skip(SkipReason::NothingEligible));
                continue;
            }
            if threshold.is_some_and(|th| base < th) {
                self.skipped.push(skip(SkipReason::BelowThreshold));
                continue;
            }
            let off = match pct {
                Some(p) => {
                    let o = self.percent_of(base, p, "coupon")?;
                    limit.map_or(o, |cap| o.min(cap))
                }
                None => limit.unwrap_or(0),
            }
            .min(base);
            self.reduce(off, &f)?;
            self.push_reduction(
                LineKind::Coupon,
                Some(LineLabel::Item(c.id().into())),
                -off,
                LineTerms {
                    base: Some(m(base)),
                    percent: pct,
                    limit: limit.map(m),
                    threshold: threshold.map(m),
                },
            )?;
        }
        Ok(())
    }

    /// **Rounding point** of percentage discounts: `base × percent / 100`
    /// rounded once, never more than `base` (minor units).
    fn percent_of(&self, base: i64, pct: Decimal, what: &str) -> Result<i64> {
        let m = self
            .minor_of(decimal(base, self.currency.minor_units()), pct, 100)
            .ok_or_else(|| TariffError::overflow(what))?;
        Ok(m.min(base))
    }

    /// Makes the quote: subtotals and total from the minor-unit sums.
    pub(super) fn finish(self, t: &CompiledTariff) -> Result<Quote> {
        let cur = self.currency;
        let zero = self.zero;
        let m = |minor: i64| {
            if minor == 0 {
                zero
            } else {
                Money::from_minor(minor, cur)
            }
        };
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
        ] = self.sub;
        let total = self
            .sub
            .iter()
            .try_fold(0i64, |a, m| a.checked_add(*m))
            .ok_or_else(overflow("total"))?;
        Ok(Quote {
            tariff: t.id.clone(),
            currency: cur,
            rounding: self.rounding,
            service: self.service,
            charging: self.charging,
            segments: self.segments,
            lines: self.lines,
            subtotals: Subtotals {
                electricity: m(electricity),
                service: m(service),
                time: m(time),
                idle: m(idle),
                fees: m(fees),
                swap: m(swap),
                rental: m(rental),
                adjustments: m(adjustments),
                discounts: m(discounts),
            },
            total: m(total),
            skipped_coupons: self.skipped,
        })
    }
}

/// Converts local wall-clock instants to whole seconds since the epoch,
/// remembering the last date converted: the instants of a session mostly
/// share a date, and for them the conversion is one addition instead of
/// chrono's calendar arithmetic.
#[derive(Debug, Clone, Copy)]
pub(super) struct Clock {
    date: Option<NaiveDate>,
    /// Seconds since the epoch at the start of `date`.
    day_start: i64,
}

impl Clock {
    pub(super) fn new() -> Clock {
        Clock {
            date: None,
            day_start: 0,
        }
    }

    /// Whole seconds since the epoch of `t`; an instant with a fraction of a
    /// second is refused, naming `path`.
    #[inline]
    pub(super) fn secs(&mut self, path: impl FnOnce() -> String, t: NaiveDateTime) -> Result<i64> {
        let time = t.time();
        if time.nanosecond() != 0 {
            return Err(TariffError::session(
                path(),
                format!("{t} has a fraction of a second; give whole seconds"),
            ));
        }
        let date = t.date();
        if self.date != Some(date) {
            self.date = Some(date);
            self.day_start = i64::from(date.to_epoch_days()) * i64::from(DAY);
        }
        Ok(self.day_start + i64::from(time.num_seconds_from_midnight()))
    }
}

/// The local instant `secs` seconds after midnight of `date` (at most one day).
#[inline]
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
    decimal(units, ENERGY_DP)
}

/// `v × 10^-scale` as a decimal (`scale` ≤ 28; any i64 fits the mantissa).
pub(crate) fn decimal(v: i64, scale: u32) -> Decimal {
    let m = v.unsigned_abs();
    Decimal::from_parts((m & 0xFFFF_FFFF) as u32, (m >> 32) as u32, 0, v < 0, scale)
}

/// kWh → 0.0001 kWh units, checked. The path is built only on error.
pub(super) fn energy_units(path: impl Fn() -> String, kwh: Decimal) -> Result<i64> {
    if kwh.is_sign_negative() && !kwh.is_zero() {
        return Err(TariffError::session(
            path(),
            format!("{kwh} kWh is negative; energy is zero or more"),
        ));
    }
    if let Some(k) = ENERGY_DP.checked_sub(kwh.scale()) {
        if let Some(u) = i64::try_from(kwh.mantissa())
            .ok()
            .zip(pow10_i64(k))
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
