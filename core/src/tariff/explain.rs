//! [`Quote::explain`]: the quote as text a person can check with a pencil.

use core::fmt::Write;

use rust_decimal::Decimal;

use super::quote::{BandRef, EnergySource, LineKind, Quote, QuoteLine, SkipReason, Unit};
use crate::money::Money;

fn band(b: &BandRef) -> String {
    match b.to_w {
        Some(to) => format!("{}–{} W", b.from_w, to),
        None => format!("≥{} W", b.from_w),
    }
}

fn duration(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    match (h, m, s) {
        (0, m, 0) => format!("{m} min"),
        (h, 0, 0) => format!("{h} h"),
        (h, m, 0) => format!("{h} h {m} min"),
        (h, m, s) => format!("{h} h {m} min {s} s"),
    }
}

fn signed(m: &Money) -> String {
    if m.is_negative() {
        format!("−{}", m.abs())
    } else {
        m.to_string()
    }
}

impl Quote {
    /// Renders the quote as readable text: the facts, the segments, every line
    /// with its arithmetic (including the exact amount before rounding), the
    /// subtotals and the total. Deterministic; English with the Chinese terms.
    ///
    /// ```
    /// use chargeswap_core::tariff::{quote, Tariff, Session};
    /// let t: Tariff = serde_json::from_str(r#"{"id": "t", "currency": "CNY",
    ///   "energy": {"tiers": {"flat": {"electricity": "0.6", "service": "0.4"}}}}"#)?;
    /// let s: Session = serde_json::from_str(r#"{"service": "charging",
    ///   "start": "2025-03-14T20:00:00", "end": "2025-03-14T21:00:00", "energy_kwh": "1.5"}"#)?;
    /// let text = quote(&t, &s)?.explain();
    /// assert!(text.contains("electricity (电费) flat: 1.5000 kWh × ¥0.60/kWh = ¥0.90"));
    /// assert!(text.contains("Total: ¥1.50"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn explain(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(
            o,
            "Quote under tariff {} ({}; each line rounded {} to the minor unit)",
            self.tariff,
            self.currency,
            match self.rounding {
                crate::money::Rounding::HalfUp => "half-up",
                crate::money::Rounding::HalfEven => "half-even",
                crate::money::Rounding::Up => "up",
                crate::money::Rounding::Down => "down",
            }
        );
        if let Some(c) = &self.charging {
            let _ = write!(
                o,
                "Charging {} → {} ({})",
                c.start,
                c.end,
                duration(c.charging_seconds)
            );
            if let Some(e) = c.energy_kwh {
                let _ = write!(
                    o,
                    ", {e} kWh {}",
                    match c.energy_source {
                        Some(EnergySource::Readings) => "from meter readings",
                        _ => "in total, spread evenly over the session",
                    }
                );
            }
            let _ = writeln!(o);
            if let Some(u) = c.unplugged_at {
                let _ = writeln!(o, "Unplugged {u}: idle {}", duration(c.idle_seconds));
            }
        }
        if !self.segments.is_empty() {
            let by_rules = self
                .segments
                .iter()
                .any(|s| s.energy_rule.is_some() || s.time_rule.is_some());
            let _ = writeln!(
                o,
                "Segments (cut at tier boundaries, midnight{}):",
                if by_rules {
                    ", power changes and rule conditions"
                } else {
                    " and power-band changes"
                }
            );
            for s in &self.segments {
                let _ = write!(o, "  {} → {}  {}", s.from, s.to.time(), s.tier);
                if let Some(b) = &s.band {
                    let _ = write!(o, "  {}", band(b));
                }
                if let Some(k) = s.kwh {
                    let _ = write!(o, "  {}{k} kWh", if s.interpolated { "≈" } else { "" });
                }
                if let Some(r) = &s.energy_rule {
                    let _ = write!(o, "  energy by rule {r}");
                }
                if let Some(r) = &s.time_rule {
                    let _ = write!(o, "  time by rule {r}");
                }
                let _ = writeln!(o);
            }
            if self.segments.iter().any(|s| s.interpolated) {
                let _ = writeln!(
                    o,
                    "  (≈: a boundary fell between meter readings; the register there is interpolated linearly and rounded half-up to 0.0001 kWh{})",
                    if by_rules {
                        ", or set exactly at a rule's kWh threshold"
                    } else {
                        ""
                    }
                );
            }
        }
        let billed = self
            .lines
            .iter()
            .filter(|l| l.kind == LineKind::Electricity)
            .filter_map(|l| l.quantity)
            .try_fold(Decimal::ZERO, |a, q| a.checked_add(q));
        if let (Some(c), Some(b)) = (&self.charging, billed) {
            if c.energy_kwh.is_some_and(|e| e < b) {
                let _ = writeln!(
                    o,
                    "Energy billed in whole steps: {} kWh measured, {b} kWh billed (the extra at the price in force at the end)",
                    c.energy_kwh.unwrap_or_default()
                );
            }
        }
        let _ = writeln!(o, "Lines:");
        for l in &self.lines {
            let _ = writeln!(o, "  {}", line(l));
        }
        let st = &self.subtotals;
        let mut parts = Vec::new();
        for (name, m) in [
            ("electricity", &st.electricity),
            ("service", &st.service),
            ("time", &st.time),
            ("idle", &st.idle),
            ("fees", &st.fees),
            ("swap", &st.swap),
            ("rental", &st.rental),
            ("adjustments", &st.adjustments),
            ("discounts", &st.discounts),
        ] {
            if !m.is_zero() {
                parts.push(format!("{name} {}", signed(m)));
            }
        }
        let _ = writeln!(
            o,
            "Subtotals: {}",
            if parts.is_empty() {
                "none".to_owned()
            } else {
                parts.join(", ")
            }
        );
        for s in &self.skipped_coupons {
            let _ = writeln!(
                o,
                "Coupon {} not applied: {} (eligible {})",
                s.id,
                match s.reason {
                    SkipReason::BelowThreshold => "spend threshold not reached",
                    SkipReason::NothingEligible => "nothing left in its scope",
                },
                s.eligible
            );
        }
        let _ = writeln!(o, "Total: {}", self.total);
        o
    }
}

fn exact_of(l: &QuoteLine) -> Option<Decimal> {
    let q = l.quantity?;
    let p = l.unit_price?.amount();
    let e = p.checked_mul(q)?;
    match (l.unit, l.per) {
        (Some(Unit::Minute), Some(Unit::Hour)) => e.checked_div(Decimal::from(60)),
        (Some(Unit::Second), Some(Unit::Hour)) => e.checked_div(Decimal::from(3600)),
        _ => Some(e),
    }
}

fn line(l: &QuoteLine) -> String {
    let mut head = match l.kind {
        LineKind::Electricity => "electricity (电费)".to_owned(),
        LineKind::Service => "service (服务费)".to_owned(),
        LineKind::Time => "time (时长费)".to_owned(),
        LineKind::Idle => "idle (占位费)".to_owned(),
        LineKind::SessionFee => "session fee".to_owned(),
        LineKind::Swap => "swap (换电)".to_owned(),
        LineKind::RentalDay => "rental, days (租电)".to_owned(),
        LineKind::RentalMonth => "rental, months (租电)".to_owned(),
        LineKind::TimeMinimum => "time minimum".to_owned(),
        LineKind::TimeCap => "time cap".to_owned(),
        LineKind::IdleCap => "idle cap".to_owned(),
        LineKind::SessionMinimum => "session minimum".to_owned(),
        LineKind::SessionCap => "session cap".to_owned(),
        LineKind::MemberDiscount => "member discount (会员折扣)".to_owned(),
        LineKind::Coupon => "coupon (优惠券)".to_owned(),
    };
    if let Some(t) = l.tier() {
        head = format!("{head} {t}");
    }
    if let Some(b) = &l.band() {
        head = format!("{head} {}", band(b));
    }
    if let Some(i) = l.item() {
        head = format!("{head} {i}");
    }
    if let Some(r) = l.rule() {
        head = format!("{head} by rule {r}");
    }
    let mut s = format!("{head}: ");
    match (l.quantity, l.unit, l.unit_price, l.per) {
        (Some(q), Some(u), Some(p), Some(per)) => {
            let _ = write!(s, "{q} {} × {}/{}", u.name(), p, per.name());
            match (u, per) {
                (Unit::Minute, Unit::Hour) => {
                    let _ = write!(s, " ÷ 60");
                }
                (Unit::Second, Unit::Hour) => {
                    let _ = write!(s, " ÷ 3600");
                }
                _ => {}
            }
            if let Some(e) = exact_of(l) {
                let e = e.normalize();
                if e != l.amount.amount().normalize() {
                    let _ = write!(s, " = {} → {}", e, l.amount);
                } else {
                    let _ = write!(s, " = {}", l.amount);
                }
            }
        }
        _ => {
            let base = l.base().map(|b| b.to_string()).unwrap_or_default();
            match l.kind {
                LineKind::TimeMinimum | LineKind::SessionMinimum => {
                    let _ = write!(
                        s,
                        "{base} is below the minimum {}, top-up {}",
                        l.limit().map(|m| m.to_string()).unwrap_or_default(),
                        signed(&l.amount)
                    );
                }
                LineKind::TimeCap | LineKind::IdleCap | LineKind::SessionCap => {
                    let _ = write!(
                        s,
                        "{base} is above the cap {}, {}",
                        l.limit().map(|m| m.to_string()).unwrap_or_default(),
                        signed(&l.amount)
                    );
                }
                _ => {
                    match (l.percent(), l.threshold(), l.limit()) {
                        (Some(p), _, cap) => {
                            let _ = write!(s, "{}% of {base}", p.normalize());
                            if let Some(c) = cap {
                                let _ = write!(s, " (at most {c})");
                            }
                        }
                        (None, Some(th), Some(off)) => {
                            let _ = write!(s, "spend {th} get {off} off (满减), eligible {base}");
                        }
                        (None, None, Some(face)) => {
                            let _ = write!(s, "{face} off, eligible {base}");
                        }
                        _ => {}
                    }
                    let _ = write!(s, " = {}", signed(&l.amount));
                }
            }
        }
    }
    if !l.reduced_by.is_zero() {
        let _ = write!(s, "  [less {} → net {}]", l.reduced_by, l.net());
    }
    s
}
