//! Membership levels (会员等级): a rider's level from rolling usage and spend,
//! the level's benefits (the discount pricing applies, perks), and level
//! changes as events.
//!
//! A rider's *standing* is their activity in the rolling window
//! `(now − window_days, now]`: the units of usage (orders, by default one per
//! order) and the amount spent. Each order id counts once. The rider's level
//! is the **last** level in the configured list whose criteria the standing
//! meets; the first level has no criteria, so everyone has a level.
//!
//! ```
//! use chargeswap_core::membership::{Activity, MembershipConfig, assess};
//! let config: MembershipConfig = serde_json::from_str(r#"{
//!   "window_days": 30,
//!   "levels": [
//!     {"id": "basic"},
//!     {"id": "silver", "min_orders": 20, "min_spend": "100.00",
//!      "benefits": {"discount_percent": "5", "discount_scope": "service_fee"}},
//!     {"id": "gold", "min_orders": 60, "min_spend": "300.00",
//!      "benefits": {"discount_percent": "10", "discount_scope": "whole", "perks": ["priority_support"]}}
//!   ]}"#).unwrap();
//! let t = |s: &str| s.parse::<chrono::NaiveDateTime>().unwrap();
//! let activity: Vec<Activity> = (0..25).map(|i| Activity {
//!     order_id: format!("o{i}"), at: t("2026-05-10T08:00:00"), spend: "5.00".parse().unwrap(), units: 1,
//! }).collect();
//! let a = assess(&config, &activity, t("2026-05-20T08:00:00"))?;
//! assert_eq!(a.level, "silver");                          // 25 orders, ¥125.00
//! assert_eq!(a.next.unwrap().spend_needed.to_string(), "¥175.00");
//! # Ok::<(), chargeswap_core::membership::MembershipError>(())
//! ```

use std::collections::BTreeMap;

use chrono::{NaiveDateTime, TimeDelta};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::money::{Currency, Money, Rounding};

/// Errors of the membership module.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MembershipError {
    /// The configuration is unusable.
    #[error("membership config field {field} is invalid: expected {expected}")]
    InvalidConfig {
        /// The field.
        field: String,
        /// What it should be.
        expected: String,
    },
    /// An amount in another currency than the configuration's.
    #[error("{field} is in {got}; expected {expected}")]
    CurrencyMismatch {
        /// The field.
        field: String,
        /// The configuration's currency.
        expected: Currency,
        /// The currency given.
        got: Currency,
    },
    /// An amount that must not be negative.
    #[error("{field} must be zero or more, got {amount}")]
    NegativeAmount {
        /// The field.
        field: String,
        /// The amount.
        amount: Money,
    },
    /// The same order id twice with different content.
    #[error(
        "activity for order {order_id} appears twice with different content; an order counts once"
    )]
    ActivityConflict {
        /// The order id.
        order_id: String,
    },
    /// A level id the configuration does not have.
    #[error("unknown level {level}; expected one of the configured level ids")]
    UnknownLevel {
        /// The level id.
        level: String,
    },
    /// A level change that does not fit the member (a corrupt log).
    #[error("level change does not apply: {expected}")]
    EventMismatch {
        /// What the member needed.
        expected: String,
    },
    /// Arithmetic left the representable range.
    #[error("arithmetic overflow in {operation}")]
    Overflow {
        /// The operation.
        operation: String,
    },
}

type Result<T> = core::result::Result<T, MembershipError>;

fn overflow(operation: &str) -> MembershipError {
    MembershipError::Overflow {
        operation: operation.to_owned(),
    }
}

fn invalid(field: &str, expected: &str) -> MembershipError {
    MembershipError::InvalidConfig {
        field: field.to_owned(),
        expected: expected.to_owned(),
    }
}

/// How a level's criteria combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Qualify {
    /// Every criterion set on the level must be met.
    #[default]
    All,
    /// At least one criterion set on the level must be met.
    Any,
}

/// What a discount applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiscountScope {
    /// The service fee only (服务费); electricity is passed through at cost.
    #[default]
    ServiceFee,
    /// The whole amount: electricity and service fee.
    Whole,
}

/// A level's benefits.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Benefits {
    /// Discount in percent (0 to 100), e.g. `"5"` for 5 %.
    #[serde(default)]
    pub discount_percent: Decimal,
    /// What the discount applies to.
    #[serde(default)]
    pub discount_scope: DiscountScope,
    /// Named perks (free swaps, priority support…), interpreted by the host.
    #[serde(default)]
    pub perks: Vec<String>,
}

/// A discount, per fee component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Discount {
    /// Off the electricity fee.
    pub electricity: Money,
    /// Off the service fee.
    pub service: Money,
    /// Total off.
    pub total: Money,
}

impl Benefits {
    /// The discount on an order's electricity and service fees.
    ///
    /// **Rounding points:** service-fee scope: `service × percent / 100`,
    /// rounded once with `rounding`. Whole scope: `(electricity + service) ×
    /// percent / 100`, rounded once, then split between the two fees in
    /// proportion to them with [`Money::allocate`] (so the parts sum exactly).
    ///
    /// ```
    /// use chargeswap_core::membership::{Benefits, DiscountScope};
    /// use chargeswap_core::money::{Money, Rounding};
    /// let b = Benefits { discount_percent: "10".parse().unwrap(), discount_scope: DiscountScope::Whole, perks: vec![] };
    /// let d = b.discount("3.33".parse()?, "1.67".parse()?, Rounding::HalfUp).unwrap();
    /// assert_eq!(d.total.to_string(), "¥0.50");          // 5.00 × 10 %
    /// assert_eq!(d.electricity.to_string(), "¥0.33");    // 0.50 × 3.33 / 5.00 = 0.333
    /// assert_eq!(d.service.to_string(), "¥0.17");
    /// # Ok::<(), chargeswap_core::money::MoneyError>(())
    /// ```
    pub fn discount(
        &self,
        electricity: Money,
        service: Money,
        rounding: Rounding,
    ) -> Result<Discount> {
        check_percent(self.discount_percent, "discount_percent")?;
        for (field, m) in [("electricity", electricity), ("service", service)] {
            if m.is_negative() {
                return Err(MembershipError::NegativeAmount {
                    field: field.to_owned(),
                    amount: m,
                });
            }
        }
        if electricity.currency() != service.currency() {
            return Err(MembershipError::CurrencyMismatch {
                field: "service".to_owned(),
                expected: electricity.currency(),
                got: service.currency(),
            });
        }
        let zero = Money::zero(service.currency());
        match self.discount_scope {
            DiscountScope::ServiceFee => {
                let off = service
                    .percent(self.discount_percent, rounding)
                    .map_err(|_| overflow("discount"))?;
                Ok(Discount {
                    electricity: zero,
                    service: off,
                    total: off,
                })
            }
            DiscountScope::Whole => {
                let whole = electricity
                    .checked_add(service)
                    .map_err(|_| overflow("discount"))?;
                let total = whole
                    .percent(self.discount_percent, rounding)
                    .map_err(|_| overflow("discount"))?;
                if whole.is_zero() {
                    return Ok(Discount {
                        electricity: zero,
                        service: zero,
                        total,
                    });
                }
                let parts = total
                    .allocate(&[electricity.amount(), service.amount()])
                    .map_err(|_| overflow("discount split"))?;
                match parts[..] {
                    [e, s] => Ok(Discount {
                        electricity: e,
                        service: s,
                        total,
                    }),
                    _ => Err(overflow("discount split")),
                }
            }
        }
    }
}

fn check_percent(p: Decimal, field: &str) -> Result<()> {
    if p.is_sign_negative() && !p.is_zero() || p > Decimal::ONE_HUNDRED {
        return Err(invalid(field, "a percentage from 0 to 100"));
    }
    Ok(())
}

/// One level.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Level {
    /// Level id.
    pub id: String,
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// Usage units in the window needed (none: not a criterion).
    #[serde(default)]
    pub min_orders: Option<u32>,
    /// Spend in the window needed (none: not a criterion).
    #[serde(default)]
    pub min_spend: Option<Money>,
    /// What the level gives.
    #[serde(default)]
    pub benefits: Benefits,
}

/// The level ladder and its window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MembershipConfig {
    /// Length of the rolling window, in days.
    pub window_days: u32,
    /// How each level's criteria combine.
    #[serde(default)]
    pub qualify: Qualify,
    /// Levels from lowest to highest; the first has no criteria.
    pub levels: Vec<Level>,
    /// Currency of spend (default CNY).
    #[serde(default)]
    pub currency: Currency,
}

impl MembershipConfig {
    /// Checks the configuration: a window above zero, at least one level, the
    /// first without criteria, unique ids, percentages within 0–100, spend
    /// thresholds of zero or more in the configured currency.
    pub fn validate(&self) -> Result<()> {
        if self.window_days == 0 {
            return Err(invalid("window_days", "at least 1 day"));
        }
        let first = self
            .levels
            .first()
            .ok_or_else(|| invalid("levels", "at least one level"))?;
        if first.min_orders.is_some() || first.min_spend.is_some() {
            return Err(invalid(
                "levels[0]",
                "a base level without min_orders or min_spend, so every rider has a level",
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, l) in self.levels.iter().enumerate() {
            if l.id.is_empty() || !seen.insert(l.id.as_str()) {
                return Err(invalid(
                    &format!("levels[{i}].id"),
                    "a unique, non-empty id",
                ));
            }
            check_percent(
                l.benefits.discount_percent,
                &format!("levels[{i}].benefits.discount_percent"),
            )?;
            if let Some(s) = l.min_spend {
                if s.currency() != self.currency {
                    return Err(MembershipError::CurrencyMismatch {
                        field: format!("levels[{i}].min_spend"),
                        expected: self.currency,
                        got: s.currency(),
                    });
                }
                if s.is_negative() {
                    return Err(MembershipError::NegativeAmount {
                        field: format!("levels[{i}].min_spend"),
                        amount: s,
                    });
                }
            }
        }
        Ok(())
    }

    /// The level with this id.
    pub fn level(&self, id: &str) -> Result<&Level> {
        self.levels
            .iter()
            .find(|l| l.id == id)
            .ok_or_else(|| MembershipError::UnknownLevel {
                level: id.to_owned(),
            })
    }

    fn qualifies(&self, l: &Level, s: &Standing) -> Result<bool> {
        let orders = l.min_orders.map(|n| s.orders >= n);
        let spend = match l.min_spend {
            Some(m) => Some(
                s.spend
                    .checked_cmp(&m)
                    .map_err(|_| overflow("compare spend"))?
                    .is_ge(),
            ),
            None => None,
        };
        let set: Vec<bool> = [orders, spend].into_iter().flatten().collect();
        Ok(match self.qualify {
            _ if set.is_empty() => true,
            Qualify::All => set.iter().all(|b| *b),
            Qualify::Any => set.iter().any(|b| *b),
        })
    }
}

fn one() -> u32 {
    1
}

/// One paid order counted towards membership.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Activity {
    /// The order id; each counts once.
    pub order_id: String,
    /// When the order was paid.
    pub at: NaiveDateTime,
    /// Amount spent.
    pub spend: Money,
    /// Usage units (default 1).
    #[serde(default = "one")]
    pub units: u32,
}

/// Activity inside the window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Standing {
    /// Window start (exclusive).
    pub window_start: NaiveDateTime,
    /// Window end (inclusive): `now`.
    pub window_end: NaiveDateTime,
    /// Usage units.
    pub orders: u32,
    /// Spend.
    pub spend: Money,
}

/// What is missing for the next level.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NextLevel {
    /// The next level's id.
    pub level: String,
    /// More units needed (0 when met or not a criterion).
    pub orders_needed: u32,
    /// More spend needed (0 when met or not a criterion).
    pub spend_needed: Money,
}

/// A rider's level at a time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assessment {
    /// The level id.
    pub level: String,
    /// Its benefits.
    pub benefits: Benefits,
    /// The activity it was computed from.
    pub standing: Standing,
    /// The level above, if any.
    pub next: Option<NextLevel>,
}

/// The standing in the window ending at `now`.
pub fn standing(
    config: &MembershipConfig,
    activity: &[Activity],
    now: NaiveDateTime,
) -> Result<Standing> {
    let window =
        TimeDelta::try_days(i64::from(config.window_days)).ok_or_else(|| overflow("window"))?;
    let window_start = now
        .checked_sub_signed(window)
        .ok_or_else(|| overflow("window"))?;
    let mut seen: BTreeMap<&str, &Activity> = BTreeMap::new();
    let mut orders = 0u32;
    let mut spend = Money::zero(config.currency);
    for a in activity {
        if let Some(prev) = seen.get(a.order_id.as_str()) {
            if *prev != a {
                return Err(MembershipError::ActivityConflict {
                    order_id: a.order_id.clone(),
                });
            }
            continue;
        }
        seen.insert(a.order_id.as_str(), a);
        if a.spend.currency() != config.currency {
            return Err(MembershipError::CurrencyMismatch {
                field: format!("activity {} spend", a.order_id),
                expected: config.currency,
                got: a.spend.currency(),
            });
        }
        if a.at <= window_start || a.at > now {
            continue;
        }
        orders = orders
            .checked_add(a.units)
            .ok_or_else(|| overflow("orders"))?;
        spend = spend.checked_add(a.spend).map_err(|_| overflow("spend"))?;
    }
    Ok(Standing {
        window_start,
        window_end: now,
        orders,
        spend,
    })
}

/// The level a rider's activity earns at `now`.
pub fn assess(
    config: &MembershipConfig,
    activity: &[Activity],
    now: NaiveDateTime,
) -> Result<Assessment> {
    config.validate()?;
    let s = standing(config, activity, now)?;
    let mut idx = 0;
    for (i, l) in config.levels.iter().enumerate() {
        if config.qualifies(l, &s)? {
            idx = i;
        }
    }
    let level = config
        .levels
        .get(idx)
        .ok_or_else(|| invalid("levels", "at least one level"))?;
    let next = match config.levels.get(idx + 1) {
        Some(n) => Some(NextLevel {
            level: n.id.clone(),
            orders_needed: n.min_orders.map_or(0, |m| m.saturating_sub(s.orders)),
            spend_needed: match n.min_spend {
                Some(m) => m
                    .saturating_sub_to_zero(s.spend)
                    .map_err(|_| overflow("spend needed"))?,
                None => Money::zero(config.currency),
            },
        }),
        None => None,
    };
    Ok(Assessment {
        level: level.id.clone(),
        benefits: level.benefits.clone(),
        standing: s,
        next,
    })
}

/// Up or down the ladder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// To a higher level.
    Up,
    /// To a lower level.
    Down,
}

/// A rider's level changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LevelChanged {
    /// The rider.
    pub rider_id: String,
    /// The old level.
    pub from: String,
    /// The new level.
    pub to: String,
    /// Up or down.
    pub direction: Direction,
    /// The standing that decided it.
    pub standing: Standing,
    /// When.
    pub at: NaiveDateTime,
}

/// A rider's current level: the state level changes build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// The rider.
    pub rider_id: String,
    /// The current level id.
    pub level: String,
    /// Since when.
    pub since: NaiveDateTime,
}

impl Member {
    /// A new member at the base level.
    pub fn new(rider_id: &str, config: &MembershipConfig, now: NaiveDateTime) -> Result<Member> {
        config.validate()?;
        let base = config
            .levels
            .first()
            .ok_or_else(|| invalid("levels", "at least one level"))?;
        Ok(Member {
            rider_id: rider_id.to_owned(),
            level: base.id.clone(),
            since: now,
        })
    }

    /// Reassesses the member at `now`: a [`LevelChanged`] if the activity
    /// earns another level, else none. Changes nothing.
    ///
    /// ```
    /// use chargeswap_core::membership::{Activity, Direction, Member, MembershipConfig};
    /// let config: MembershipConfig = serde_json::from_str(r#"{"window_days": 7,
    ///   "levels": [{"id": "basic"}, {"id": "plus", "min_orders": 2}]}"#).unwrap();
    /// let t = |s: &str| s.parse::<chrono::NaiveDateTime>().unwrap();
    /// let mut m = Member::new("r1", &config, t("2026-05-01T00:00:00"))?;
    /// let act: Vec<Activity> = ["a", "b"].iter().map(|id| Activity { order_id: id.to_string(),
    ///     at: t("2026-05-02T00:00:00"), spend: "3".parse().unwrap(), units: 1 }).collect();
    /// let up = m.reassess(&config, &act, t("2026-05-03T00:00:00"))?.unwrap();
    /// assert_eq!((up.to.as_str(), up.direction), ("plus", Direction::Up));
    /// m.apply(&up)?;
    /// // a week after the orders they have left the window
    /// let down = m.reassess(&config, &act, t("2026-05-09T00:00:00"))?.unwrap();
    /// assert_eq!((down.to.as_str(), down.direction), ("basic", Direction::Down));
    /// # Ok::<(), chargeswap_core::membership::MembershipError>(())
    /// ```
    pub fn reassess(
        &self,
        config: &MembershipConfig,
        activity: &[Activity],
        now: NaiveDateTime,
    ) -> Result<Option<LevelChanged>> {
        let a = assess(config, activity, now)?;
        if a.level == self.level {
            return Ok(None);
        }
        let rank = |id: &str| config.levels.iter().position(|l| l.id == id);
        let from = rank(&self.level).ok_or_else(|| MembershipError::UnknownLevel {
            level: self.level.clone(),
        })?;
        let to = rank(&a.level).unwrap_or(0);
        Ok(Some(LevelChanged {
            rider_id: self.rider_id.clone(),
            from: self.level.clone(),
            to: a.level,
            direction: if to > from {
                Direction::Up
            } else {
                Direction::Down
            },
            standing: a.standing,
            at: now,
        }))
    }

    /// Applies a level change.
    pub fn apply(&mut self, e: &LevelChanged) -> Result<()> {
        if e.rider_id != self.rider_id || e.from != self.level {
            return Err(MembershipError::EventMismatch {
                expected: format!(
                    "a change of rider {} from level {}",
                    self.rider_id, self.level
                ),
            });
        }
        self.level = e.to.clone();
        self.since = e.at;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn t(s: &str) -> NaiveDateTime {
        s.parse().unwrap()
    }
    fn m(s: &str) -> Money {
        s.parse().unwrap()
    }

    fn config(qualify: Qualify) -> MembershipConfig {
        MembershipConfig {
            window_days: 30,
            qualify,
            currency: Currency::CNY,
            levels: vec![
                Level {
                    id: "basic".into(),
                    name: String::new(),
                    min_orders: None,
                    min_spend: None,
                    benefits: Benefits::default(),
                },
                Level {
                    id: "silver".into(),
                    name: String::new(),
                    min_orders: Some(10),
                    min_spend: Some(m("100")),
                    benefits: Benefits {
                        discount_percent: Decimal::new(5, 0),
                        ..Benefits::default()
                    },
                },
                Level {
                    id: "gold".into(),
                    name: String::new(),
                    min_orders: Some(30),
                    min_spend: Some(m("300")),
                    benefits: Benefits {
                        discount_percent: Decimal::new(10, 0),
                        discount_scope: DiscountScope::Whole,
                        perks: vec!["free_swap_monthly".into()],
                    },
                },
            ],
        }
    }

    fn acts(n: u32, spend: &str, at: &str) -> Vec<Activity> {
        (0..n)
            .map(|i| Activity {
                order_id: format!("{at}-{i}"),
                at: t(at),
                spend: m(spend),
                units: 1,
            })
            .collect()
    }

    #[test]
    fn all_versus_any() {
        let a = acts(12, "1", "2026-05-10T00:00:00"); // 12 orders, ¥12
        let now = t("2026-05-20T00:00:00");
        assert_eq!(
            assess(&config(Qualify::All), &a, now).unwrap().level,
            "basic"
        );
        let x = assess(&config(Qualify::Any), &a, now).unwrap();
        assert_eq!(x.level, "silver");
        let n = x.next.unwrap();
        assert_eq!(
            (n.level.as_str(), n.orders_needed, n.spend_needed),
            ("gold", 18, m("288"))
        );
    }

    #[test]
    fn window_is_rolling_and_orders_count_once() {
        let c = config(Qualify::All);
        let mut a = acts(10, "10", "2026-05-01T00:00:00");
        a.extend(a.clone()); // replays count once
        assert_eq!(
            assess(&c, &a, t("2026-05-30T23:59:59")).unwrap().level,
            "silver"
        );
        // window (now − 30 d, now]: at exactly 30 days the orders fall out
        let s = standing(&c, &a, t("2026-05-31T00:00:00")).unwrap();
        assert_eq!((s.orders, s.spend), (0, m("0")));
        // future activity is not counted
        assert_eq!(
            standing(&c, &a, t("2026-04-30T00:00:00")).unwrap().orders,
            0
        );
        let mut bad = a.clone();
        bad[0].spend = m("11");
        assert!(matches!(
            standing(&c, &bad, t("2026-05-02T00:00:00")),
            Err(MembershipError::ActivityConflict { .. })
        ));
        let mut usd = acts(1, "1", "2026-05-01T00:00:00");
        usd[0].spend = m("1 USD");
        assert!(matches!(
            standing(&c, &usd, t("2026-05-02T00:00:00")),
            Err(MembershipError::CurrencyMismatch { .. })
        ));
    }

    #[test]
    fn member_events_up_and_down() {
        let c = config(Qualify::All);
        let mut mem = Member::new("r", &c, t("2026-05-01T00:00:00")).unwrap();
        let a = acts(30, "10", "2026-05-02T00:00:00");
        let e = mem
            .reassess(&c, &a, t("2026-05-03T00:00:00"))
            .unwrap()
            .unwrap();
        assert_eq!(
            (e.from.as_str(), e.to.as_str(), e.direction),
            ("basic", "gold", Direction::Up)
        );
        mem.apply(&e).unwrap();
        assert_eq!(
            mem.reassess(&c, &a, t("2026-05-04T00:00:00")).unwrap(),
            None
        );
        assert!(mem.apply(&e).is_err(), "from no longer matches");
        let d = mem
            .reassess(&c, &a, t("2026-06-10T00:00:00"))
            .unwrap()
            .unwrap();
        assert_eq!(d.direction, Direction::Down);
        let mut unknown = mem.clone();
        unknown.level = "platinum".into();
        assert!(matches!(
            unknown.reassess(&c, &a, t("2026-06-10T00:00:00")),
            Err(MembershipError::UnknownLevel { .. })
        ));
    }

    #[test]
    fn config_validation() {
        let mut c = config(Qualify::All);
        c.window_days = 0;
        assert!(c.validate().is_err());
        let mut c = config(Qualify::All);
        c.levels[0].min_orders = Some(1);
        assert!(c.validate().is_err());
        let mut c = config(Qualify::All);
        c.levels[2].id = "silver".into();
        assert!(c.validate().is_err());
        let mut c = config(Qualify::All);
        c.levels[1].benefits.discount_percent = Decimal::new(101, 0);
        assert!(c.validate().is_err());
        let mut c = config(Qualify::All);
        c.levels[1].min_spend = Some(m("1 USD"));
        assert!(matches!(
            c.validate(),
            Err(MembershipError::CurrencyMismatch { .. })
        ));
        let mut c = config(Qualify::All);
        c.levels.clear();
        assert!(c.validate().is_err());
        assert!(config(Qualify::All).level("nope").is_err());
    }

    #[test]
    fn discounts() {
        let b = Benefits {
            discount_percent: Decimal::new(15, 0),
            ..Benefits::default()
        };
        let d = b.discount(m("8.00"), m("2.35"), Rounding::HalfUp).unwrap();
        // 2.35 × 15 % = 0.3525 → 0.35
        assert_eq!(
            (d.electricity, d.service, d.total),
            (m("0"), m("0.35"), m("0.35"))
        );
        let w = Benefits {
            discount_scope: DiscountScope::Whole,
            ..b
        };
        let d = w.discount(m("8.00"), m("2.35"), Rounding::HalfUp).unwrap();
        // 10.35 × 15 % = 1.5525 → 1.55; split 8.00 : 2.35 → 1.198 / 0.352 → 1.20 / 0.35
        assert_eq!(
            (d.electricity, d.service, d.total),
            (m("1.20"), m("0.35"), m("1.55"))
        );
        let d = w.discount(m("0"), m("0"), Rounding::HalfUp).unwrap();
        assert!(d.total.is_zero());
        assert!(w.discount(m("-1"), m("0"), Rounding::HalfUp).is_err());
        assert!(w.discount(m("1"), m("1 USD"), Rounding::HalfUp).is_err());
    }

    proptest! {
        #[test]
        fn discount_parts_sum_and_never_exceed(e in 0i64..100_000, s in 0i64..100_000, p in 0u32..=100, whole in any::<bool>()) {
            let b = Benefits {
                discount_percent: Decimal::from(p),
                discount_scope: if whole { DiscountScope::Whole } else { DiscountScope::ServiceFee },
                perks: vec![],
            };
            let (e, s) = (Money::from_minor(e, Currency::CNY), Money::from_minor(s, Currency::CNY));
            let d = b.discount(e, s, Rounding::HalfUp).unwrap();
            prop_assert_eq!(d.electricity.checked_add(d.service).unwrap(), d.total);
            prop_assert!(d.electricity.checked_cmp(&e).unwrap().is_le());
            prop_assert!(d.service.checked_cmp(&s).unwrap().is_le());
        }
    }
}
