//! Revenue sharing (分润) and settlement statements.
//!
//! A [`ShareRule`] gives one node of the agent chain a share of the orders in
//! its subtree for a product type: a percentage and an optional fixed fee per
//! swap. An order carries its *agent chain* — the node where it happened and
//! its ancestors below the platform, nearest first, at most three (store,
//! sub-agent, agent; [`crate::org::Org::agent_chain`] computes it). [`split`]
//! divides the order amount:
//!
//! 1. **Fixed fees first.** Level by level, nearest first, each node gets
//!    `per_swap × swaps`, capped at what is left of the amount (so a fee never
//!    makes the platform's part negative).
//! 2. **Percentages of the rest.** What remains is split with
//!    [`Money::allocate`] by the weights `[100 − Σ percent, p1, p2, p3]`:
//!    the platform first, so that when remainders tie the odd fen goes to the
//!    platform. The parts sum to the order amount exactly.
//!
//! A node without a rule for the product falls back to its rule for any
//! product, else gets nothing. Percentages over the chain may not exceed 100.
//!
//! ```
//! use chargeswap_core::settlement::{RevenueOrder, RevenueRules, split};
//! let rules: RevenueRules = serde_json::from_str(r#"{"rules": [
//!   {"node": "store-1", "percent": "10"},
//!   {"node": "agent-1", "product": "swap", "percent": "30", "per_swap": "0.20"}
//! ]}"#).unwrap();
//! let order: RevenueOrder = serde_json::from_str(r#"{"order_id": "o-1", "product": "swap",
//!   "amount": "5.01", "swaps": 1, "at": "2026-05-01T10:00:00", "chain": ["store-1", "agent-1"]}"#).unwrap();
//! let s = split(&rules, &order)?;
//! // agent fee 0.20; rest 4.81 split 60:10:30 → 2.886, 0.481, 1.443 → 2.89 (odd fen), 0.48, 1.44
//! let totals: Vec<String> = s.parts.iter().map(|p| p.total.to_string()).collect();
//! assert_eq!(totals, ["¥2.89", "¥0.48", "¥1.64"]);
//! # Ok::<(), chargeswap_core::settlement::SettlementError>(())
//! ```

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDateTime;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::money::{Currency, Money, Rounding};
use crate::package::PackageKind;

/// The most agent levels that share in an order.
pub const MAX_LEVELS: usize = 3;

/// Errors of the settlement module.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SettlementError {
    /// A rule is unusable.
    #[error("rule {index} field {field} is invalid: expected {expected}")]
    InvalidRule {
        /// Index of the rule.
        index: usize,
        /// The field.
        field: String,
        /// What it should be.
        expected: String,
    },
    /// Two rules for the same node and product.
    #[error("two rules for node {node} and product {product:?}; expected one")]
    DuplicateRule {
        /// The node.
        node: String,
        /// The product (none: any).
        product: Option<ProductType>,
    },
    /// An order is unusable.
    #[error("order field {field} is invalid: expected {expected}")]
    InvalidOrder {
        /// The field.
        field: String,
        /// What it should be.
        expected: String,
    },
    /// An amount in another currency.
    #[error("{field} is in {got}; expected {expected}")]
    CurrencyMismatch {
        /// The field.
        field: String,
        /// The expected currency.
        expected: Currency,
        /// The currency given.
        got: Currency,
    },
    /// The chain's percentages exceed 100.
    #[error("the rules for chain {chain:?} give away {percent_total}%; at most 100% can be shared")]
    OverAllocated {
        /// The chain.
        chain: Vec<String>,
        /// The sum of the percentages.
        percent_total: Decimal,
    },
    /// The same order id twice with different splits.
    #[error("order {order_id} appears twice with different splits; an order settles once")]
    SplitConflict {
        /// The order id.
        order_id: String,
    },
    /// A period that ends before it starts.
    #[error("period from {from} to {to} is empty; expected from < to")]
    EmptyPeriod {
        /// Start.
        from: NaiveDateTime,
        /// End.
        to: NaiveDateTime,
    },
    /// Arithmetic left the representable range.
    #[error("arithmetic overflow in {operation}")]
    Overflow {
        /// The operation.
        operation: String,
    },
}

type Result<T> = core::result::Result<T, SettlementError>;

fn overflow(operation: &str) -> SettlementError {
    SettlementError::Overflow {
        operation: operation.to_owned(),
    }
}

/// What an order sold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProductType {
    /// A charging session.
    Charging,
    /// A pay-per-use swap.
    Swap,
    /// Pay-per-use rental.
    Rental,
    /// A swap package.
    SwapPackage,
    /// A rental package.
    RentalPackage,
    /// A combined rental-and-swap package.
    ComboPackage,
    /// Freeze, overdue and other fees.
    Fee,
}

impl From<PackageKind> for ProductType {
    fn from(k: PackageKind) -> ProductType {
        match k {
            PackageKind::Swap => ProductType::SwapPackage,
            PackageKind::Rental => ProductType::RentalPackage,
            PackageKind::RentalSwap => ProductType::ComboPackage,
        }
    }
}

/// One node's share for a product type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShareRule {
    /// The node that receives the share.
    pub node: String,
    /// The product type (none: any product without a rule of its own).
    #[serde(default)]
    pub product: Option<ProductType>,
    /// Percent of the amount left after fixed fees (0–100).
    #[serde(default)]
    pub percent: Decimal,
    /// Fixed fee per swap, taken before percentages.
    #[serde(default)]
    pub per_swap: Option<Money>,
}

/// Every revenue-sharing rule.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevenueRules {
    /// The rules.
    pub rules: Vec<ShareRule>,
}

impl RevenueRules {
    /// Checks every rule: a node id, a percentage within 0–100, a fixed fee of
    /// zero or more in whole fen, and one rule per (node, product).
    pub fn validate(&self) -> Result<()> {
        let mut seen = BTreeSet::new();
        for (index, r) in self.rules.iter().enumerate() {
            let bad = |field: &str, expected: &str| SettlementError::InvalidRule {
                index,
                field: field.to_owned(),
                expected: expected.to_owned(),
            };
            if r.node.is_empty() {
                return Err(bad("node", "a node id"));
            }
            if r.percent.is_sign_negative() && !r.percent.is_zero()
                || r.percent > Decimal::ONE_HUNDRED
            {
                return Err(bad("percent", "a percentage from 0 to 100"));
            }
            if let Some(f) = r.per_swap {
                if f.is_negative() || !f.is_minor_exact() {
                    return Err(bad("per_swap", "a whole-fen amount of zero or more"));
                }
            }
            if !seen.insert((r.node.as_str(), r.product)) {
                return Err(SettlementError::DuplicateRule {
                    node: r.node.clone(),
                    product: r.product,
                });
            }
        }
        Ok(())
    }

    /// The rule for a node and product: its own, else the node's any-product rule.
    pub fn rule_for(&self, node: &str, product: ProductType) -> Option<&ShareRule> {
        self.rules
            .iter()
            .find(|r| r.node == node && r.product == Some(product))
            .or_else(|| {
                self.rules
                    .iter()
                    .find(|r| r.node == node && r.product.is_none())
            })
    }
}

fn zero_count() -> u32 {
    0
}

/// An order to split.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevenueOrder {
    /// The order id.
    pub order_id: String,
    /// What was sold.
    pub product: ProductType,
    /// The amount to split (zero or more, whole fen).
    pub amount: Money,
    /// Swaps in the order, for fixed per-swap fees (default 0).
    #[serde(default = "zero_count")]
    pub swaps: u32,
    /// When it was paid (statements select by this).
    pub at: NaiveDateTime,
    /// The agent chain, nearest first, at most three nodes; empty for a
    /// platform-owned site.
    #[serde(default)]
    pub chain: Vec<String>,
}

/// One party's part of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitPart {
    /// 0 for the platform, 1 for the nearest node of the chain, up to 3.
    pub level: u8,
    /// The node (none for the platform).
    pub node: Option<String>,
    /// The percentage applied (for the platform: 100 − the chain's).
    pub percent: Decimal,
    /// Fixed per-swap fee received.
    pub fixed: Money,
    /// Percentage share received.
    pub share: Money,
    /// `fixed + share`.
    pub total: Money,
}

/// An order split: the platform's part first, then the chain's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitResult {
    /// The order id.
    pub order_id: String,
    /// What was sold.
    pub product: ProductType,
    /// The order amount; the parts' totals sum to it exactly.
    pub amount: Money,
    /// When.
    pub at: NaiveDateTime,
    /// Whether a fixed fee was cut short by the amount.
    pub fixed_capped: bool,
    /// The parts.
    pub parts: Vec<SplitPart>,
}

impl SplitResult {
    /// The reversal of this split (for a refund of the whole order): every
    /// amount negated, under a new order id and time.
    pub fn reversed(&self, order_id: &str, at: NaiveDateTime) -> SplitResult {
        SplitResult {
            order_id: order_id.to_owned(),
            product: self.product,
            amount: self.amount.neg(),
            at,
            fixed_capped: self.fixed_capped,
            parts: self
                .parts
                .iter()
                .map(|p| SplitPart {
                    fixed: p.fixed.neg(),
                    share: p.share.neg(),
                    total: p.total.neg(),
                    ..p.clone()
                })
                .collect(),
        }
    }

    /// The part of a node, if it shares in the order.
    pub fn part_of(&self, node: &str) -> Option<&SplitPart> {
        self.parts.iter().find(|p| p.node.as_deref() == Some(node))
    }
}

fn bad_order(field: &str, expected: &str) -> SettlementError {
    SettlementError::InvalidOrder {
        field: field.to_owned(),
        expected: expected.to_owned(),
    }
}

/// Splits an order between the platform and its agent chain (see the module
/// documentation for the rule). The parts' totals sum to the amount exactly.
pub fn split(rules: &RevenueRules, order: &RevenueOrder) -> Result<SplitResult> {
    rules.validate()?;
    let cur = order.amount.currency();
    if order.order_id.is_empty() {
        return Err(bad_order("order_id", "a non-empty id"));
    }
    if order.amount.is_negative() || !order.amount.is_minor_exact() {
        return Err(bad_order("amount", "a whole-fen amount of zero or more"));
    }
    if order.chain.len() > MAX_LEVELS {
        return Err(bad_order(
            "chain",
            "at most 3 nodes (store, sub-agent, agent)",
        ));
    }
    let distinct: BTreeSet<&String> = order.chain.iter().collect();
    if distinct.len() != order.chain.len() || order.chain.iter().any(String::is_empty) {
        return Err(bad_order("chain", "distinct, non-empty node ids"));
    }
    let chain_rules: Vec<Option<&ShareRule>> = order
        .chain
        .iter()
        .map(|n| rules.rule_for(n, order.product))
        .collect();
    let percents: Vec<Decimal> = chain_rules
        .iter()
        .map(|r| r.map_or(Decimal::ZERO, |r| r.percent))
        .collect();
    let percent_total: Decimal = percents.iter().sum();
    if percent_total > Decimal::ONE_HUNDRED {
        return Err(SettlementError::OverAllocated {
            chain: order.chain.clone(),
            percent_total,
        });
    }
    // 1. fixed fees, nearest first, capped at what is left
    let mut left = order.amount;
    let mut fixed = Vec::with_capacity(chain_rules.len());
    let mut fixed_capped = false;
    for r in &chain_rules {
        let fee = match r.and_then(|r| r.per_swap) {
            Some(f) => {
                if f.currency() != cur {
                    return Err(SettlementError::CurrencyMismatch {
                        field: "per_swap".to_owned(),
                        expected: cur,
                        got: f.currency(),
                    });
                }
                f.multiply(Decimal::from(order.swaps), Rounding::HalfUp)
                    .map_err(|_| overflow("fixed fee"))?
            }
            None => Money::zero(cur),
        };
        let take = fee.checked_min(left).map_err(|_| overflow("fixed fee"))?;
        fixed_capped |= take != fee;
        left = left.checked_sub(take).map_err(|_| overflow("fixed fee"))?;
        fixed.push(take);
    }
    // 2. percentages of the rest, platform first so ties favour it
    let mut weights = vec![Decimal::ONE_HUNDRED - percent_total];
    weights.extend(percents.iter().copied());
    let shares = if left.is_zero() {
        vec![Money::zero(cur); weights.len()]
    } else {
        left.allocate(&weights).map_err(|_| overflow("allocate"))?
    };
    let mut parts = Vec::with_capacity(weights.len());
    for (i, (w, share)) in weights.iter().zip(shares).enumerate() {
        let f = if i == 0 {
            Money::zero(cur)
        } else {
            fixed.get(i - 1).copied().unwrap_or(Money::zero(cur))
        };
        parts.push(SplitPart {
            level: u8::try_from(i).unwrap_or(u8::MAX),
            node: if i == 0 {
                None
            } else {
                order.chain.get(i - 1).cloned()
            },
            percent: *w,
            fixed: f,
            share,
            total: f.checked_add(share).map_err(|_| overflow("part"))?,
        });
    }
    Ok(SplitResult {
        order_id: order.order_id.clone(),
        product: order.product,
        amount: order.amount,
        at: order.at,
        fixed_capped,
        parts,
    })
}

/// One product's line on a statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatementLine {
    /// Orders the agent shared in.
    pub orders: u32,
    /// Their amounts.
    pub gross: Money,
    /// Fixed fees received.
    pub fixed: Money,
    /// Percentage shares received.
    pub share: Money,
    /// `fixed + share`.
    pub total: Money,
}

impl StatementLine {
    fn zero(cur: Currency) -> StatementLine {
        StatementLine {
            orders: 0,
            gross: Money::zero(cur),
            fixed: Money::zero(cur),
            share: Money::zero(cur),
            total: Money::zero(cur),
        }
    }

    fn add(&mut self, amount: Money, part: &SplitPart) -> Result<()> {
        let plus = |a: Money, b: Money| a.checked_add(b).map_err(|_| overflow("statement"));
        self.orders = self.orders.saturating_add(1);
        self.gross = plus(self.gross, amount)?;
        self.fixed = plus(self.fixed, part.fixed)?;
        self.share = plus(self.share, part.share)?;
        self.total = plus(self.total, part.total)?;
        Ok(())
    }
}

/// What an agent earned over a period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Statement {
    /// The node (agent, sub-agent or store).
    pub agent: String,
    /// Period start (inclusive).
    pub from: NaiveDateTime,
    /// Period end (exclusive).
    pub to: NaiveDateTime,
    /// All products together.
    pub total: StatementLine,
    /// Per product type.
    pub by_product: BTreeMap<ProductType, StatementLine>,
}

/// Statements for every node that shares in an order of `[from, to)`, plus
/// the platform's line under the key `""`. Each order id counts once (an
/// identical repeat is skipped, a different one is an error). All splits must
/// be in `currency`.
///
/// ```
/// use chargeswap_core::settlement::{RevenueOrder, RevenueRules, split, statements};
/// use chargeswap_core::money::Currency;
/// let rules: RevenueRules = serde_json::from_str(r#"{"rules": [{"node": "a1", "percent": "40"}]}"#).unwrap();
/// let t = |s: &str| s.parse::<chrono::NaiveDateTime>().unwrap();
/// let orders = [("o1", "10.00"), ("o2", "0.05")].map(|(id, amt)| RevenueOrder {
///     order_id: id.into(), product: chargeswap_core::settlement::ProductType::Charging,
///     amount: amt.parse().unwrap(), swaps: 0, at: t("2026-05-01T10:00:00"), chain: vec!["a1".into()] });
/// let splits: Vec<_> = orders.iter().map(|o| split(&rules, o)).collect::<Result<_, _>>()?;
/// let st = statements(&splits, t("2026-05-01T00:00:00"), t("2026-06-01T00:00:00"), Currency::CNY)?;
/// // 10.00 × 40 % = 4.00 and 0.05 × 40 % = 0.02 (the platform: 6.00 + 0.03)
/// assert_eq!(st["a1"].total.total.to_string(), "¥4.02");
/// assert_eq!(st[""].total.total.to_string(), "¥6.03");
/// # Ok::<(), chargeswap_core::settlement::SettlementError>(())
/// ```
pub fn statements(
    splits: &[SplitResult],
    from: NaiveDateTime,
    to: NaiveDateTime,
    currency: Currency,
) -> Result<BTreeMap<String, Statement>> {
    if from >= to {
        return Err(SettlementError::EmptyPeriod { from, to });
    }
    let mut seen: BTreeMap<&str, &SplitResult> = BTreeMap::new();
    let mut out: BTreeMap<String, Statement> = BTreeMap::new();
    for s in splits {
        if let Some(prev) = seen.get(s.order_id.as_str()) {
            if *prev != s {
                return Err(SettlementError::SplitConflict {
                    order_id: s.order_id.clone(),
                });
            }
            continue;
        }
        seen.insert(&s.order_id, s);
        if s.amount.currency() != currency {
            return Err(SettlementError::CurrencyMismatch {
                field: format!("order {} amount", s.order_id),
                expected: currency,
                got: s.amount.currency(),
            });
        }
        if s.at < from || s.at >= to {
            continue;
        }
        for p in &s.parts {
            let key = p.node.clone().unwrap_or_default();
            let st = out.entry(key.clone()).or_insert_with(|| Statement {
                agent: key,
                from,
                to,
                total: StatementLine::zero(currency),
                by_product: BTreeMap::new(),
            });
            st.total.add(s.amount, p)?;
            st.by_product
                .entry(s.product)
                .or_insert_with(|| StatementLine::zero(currency))
                .add(s.amount, p)?;
        }
    }
    Ok(out)
}

/// The statement of one node over `[from, to)` (all zero if it shared in nothing).
pub fn statement(
    agent: &str,
    splits: &[SplitResult],
    from: NaiveDateTime,
    to: NaiveDateTime,
    currency: Currency,
) -> Result<Statement> {
    let mut all = statements(splits, from, to, currency)?;
    Ok(all.remove(agent).unwrap_or_else(|| Statement {
        agent: agent.to_owned(),
        from,
        to,
        total: StatementLine::zero(currency),
        by_product: BTreeMap::new(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn m(s: &str) -> Money {
        s.parse().unwrap()
    }
    fn t(s: &str) -> NaiveDateTime {
        s.parse().unwrap()
    }
    fn rule(
        node: &str,
        product: Option<ProductType>,
        percent: i64,
        per_swap: Option<&str>,
    ) -> ShareRule {
        ShareRule {
            node: node.into(),
            product,
            percent: Decimal::from(percent),
            per_swap: per_swap.map(m),
        }
    }
    fn order(amount: &str, product: ProductType, swaps: u32, chain: &[&str]) -> RevenueOrder {
        RevenueOrder {
            order_id: "o".into(),
            product,
            amount: m(amount),
            swaps,
            at: t("2026-05-01T10:00:00"),
            chain: chain.iter().map(|s| (*s).to_owned()).collect(),
        }
    }
    fn totals(s: &SplitResult) -> Vec<Money> {
        s.parts.iter().map(|p| p.total).collect()
    }

    #[test]
    fn three_levels_with_odd_fen() {
        let rules = RevenueRules {
            rules: vec![
                rule("store", None, 5, None),
                rule("sub", None, 10, None),
                rule("agent", None, 20, None),
            ],
        };
        // 0.99: weights 65:5:10:20 → 64.35, 4.95, 9.9, 19.8 fen → floors 64, 4, 9, 19 = 96,
        // 3 left by remainders .95 (store), .9 (sub), .8 (agent) → 64, 5, 10, 20
        let s = split(
            &rules,
            &order("0.99", ProductType::Swap, 1, &["store", "sub", "agent"]),
        )
        .unwrap();
        assert_eq!(totals(&s), vec![m("0.64"), m("0.05"), m("0.10"), m("0.20")]);
        assert_eq!(s.parts[0].percent, Decimal::from(65));
        assert_eq!(s.part_of("sub").unwrap().level, 2);
    }

    #[test]
    fn product_rule_beats_any_rule_and_fixed_fees_come_first() {
        let rules = RevenueRules {
            rules: vec![
                rule("agent", None, 50, None),
                rule("agent", Some(ProductType::Swap), 20, Some("0.50")),
            ],
        };
        let s = split(&rules, &order("6.00", ProductType::Swap, 2, &["agent"])).unwrap();
        // fixed 2 × 0.50 = 1.00; rest 5.00 at 80:20 → 4.00 / 1.00
        assert_eq!(totals(&s), vec![m("4.00"), m("2.00")]);
        assert_eq!((s.parts[1].fixed, s.parts[1].share), (m("1.00"), m("1.00")));
        let s = split(&rules, &order("6.00", ProductType::Charging, 0, &["agent"])).unwrap();
        assert_eq!(totals(&s), vec![m("3.00"), m("3.00")]);
        // fixed fees are capped at the amount
        let s = split(&rules, &order("0.70", ProductType::Swap, 2, &["agent"])).unwrap();
        assert!(s.fixed_capped);
        assert_eq!(totals(&s), vec![m("0"), m("0.70")]);
    }

    #[test]
    fn no_chain_or_no_rule_all_to_platform() {
        let rules = RevenueRules::default();
        let s = split(&rules, &order("3.33", ProductType::Rental, 0, &[])).unwrap();
        assert_eq!(totals(&s), vec![m("3.33")]);
        let s = split(&rules, &order("3.33", ProductType::Rental, 0, &["x"])).unwrap();
        assert_eq!(totals(&s), vec![m("3.33"), m("0")]);
        let s = split(&rules, &order("0", ProductType::Rental, 0, &["x"])).unwrap();
        assert_eq!(totals(&s), vec![m("0"), m("0")]);
    }

    #[test]
    fn errors() {
        let ok = RevenueRules {
            rules: vec![rule("a", None, 60, None), rule("b", None, 50, None)],
        };
        assert!(matches!(
            split(&ok, &order("1", ProductType::Swap, 0, &["a", "b"])),
            Err(SettlementError::OverAllocated { .. })
        ));
        assert!(split(&ok, &order("1", ProductType::Swap, 0, &["a"])).is_ok());
        assert!(matches!(
            split(
                &ok,
                &order("1", ProductType::Swap, 0, &["a", "b", "c", "d"])
            ),
            Err(SettlementError::InvalidOrder { .. })
        ));
        assert!(split(&ok, &order("1", ProductType::Swap, 0, &["a", "a"])).is_err());
        assert!(split(&ok, &order("-1", ProductType::Swap, 0, &["a"])).is_err());
        assert!(split(&ok, &order("1.001", ProductType::Swap, 0, &["a"])).is_err());
        let mut o = order("1", ProductType::Swap, 0, &["a"]);
        o.order_id.clear();
        assert!(split(&ok, &o).is_err());
        for bad in [
            rule("", None, 1, None),
            rule("a", None, 101, None),
            rule("a", None, -1, None),
            rule("a", None, 1, Some("-0.01")),
            rule("a", None, 1, Some("0.001")),
        ] {
            let r = RevenueRules { rules: vec![bad] };
            assert!(matches!(
                r.validate(),
                Err(SettlementError::InvalidRule { .. })
            ));
        }
        let dup = RevenueRules {
            rules: vec![rule("a", None, 1, None), rule("a", None, 2, None)],
        };
        assert!(matches!(
            dup.validate(),
            Err(SettlementError::DuplicateRule { .. })
        ));
        let usd = RevenueRules {
            rules: vec![rule("a", None, 1, Some("1 USD"))],
        };
        assert!(matches!(
            split(&usd, &order("1", ProductType::Swap, 1, &["a"])),
            Err(SettlementError::CurrencyMismatch { .. })
        ));
    }

    #[test]
    fn statements_aggregate_and_reverse() {
        let rules = RevenueRules {
            rules: vec![
                rule("s", None, 10, None),
                rule("a", Some(ProductType::Swap), 30, Some("0.10")),
            ],
        };
        let mut o1 = order("10.00", ProductType::Swap, 1, &["s", "a"]);
        o1.order_id = "o1".into();
        let mut o2 = order("20.00", ProductType::Charging, 0, &["s", "a"]);
        o2.order_id = "o2".into();
        o2.at = t("2026-05-20T10:00:00");
        let mut o3 = order("99.00", ProductType::Swap, 1, &["s", "a"]);
        o3.order_id = "o3".into();
        o3.at = t("2026-06-01T00:00:00"); // outside [05-01, 06-01)
        let s1 = split(&rules, &o1).unwrap();
        let s2 = split(&rules, &o2).unwrap();
        let s3 = split(&rules, &o3).unwrap();
        let refund = s1.reversed("o1-refund", t("2026-05-21T00:00:00"));
        let all = vec![s1.clone(), s2.clone(), s3, s1.clone(), refund];
        let st = statements(
            &all,
            t("2026-05-01T00:00:00"),
            t("2026-06-01T00:00:00"),
            Currency::CNY,
        )
        .unwrap();
        // o1: a fixed 0.10, rest 9.90 split 60:10:30 → 5.94, 0.99, 2.97; o2: 20 × (90:10) → 18.00, 2.00 and a 0
        let a = &st["a"];
        assert_eq!(a.by_product[&ProductType::Swap].orders, 2); // o1 and its reversal
        assert_eq!(a.by_product[&ProductType::Swap].total, m("0"));
        assert_eq!(a.by_product[&ProductType::Charging].total, m("0"));
        assert_eq!(st["s"].total.total, m("2.00"));
        assert_eq!(st[""].total.total, m("18.00"));
        // the platform and the nodes together hold exactly the orders' net amounts
        let sum = Money::sum(Currency::CNY, st.values().map(|s| s.total.total)).unwrap();
        assert_eq!(sum, m("20.00"));
        let mut conflict = s2.clone();
        conflict.amount = m("1");
        assert!(matches!(
            statements(
                &[s2.clone(), conflict],
                t("2026-05-01T00:00:00"),
                t("2026-06-01T00:00:00"),
                Currency::CNY
            ),
            Err(SettlementError::SplitConflict { .. })
        ));
        assert!(matches!(
            statements(
                &[],
                t("2026-05-01T00:00:00"),
                t("2026-05-01T00:00:00"),
                Currency::CNY
            ),
            Err(SettlementError::EmptyPeriod { .. })
        ));
        assert!(
            statements(
                std::slice::from_ref(&s2),
                t("2026-05-01T00:00:00"),
                t("2026-06-01T00:00:00"),
                "USD".parse().unwrap()
            )
            .is_err()
        );
        let none = statement(
            "zz",
            &[s2],
            t("2026-05-01T00:00:00"),
            t("2026-06-01T00:00:00"),
            Currency::CNY,
        )
        .unwrap();
        assert_eq!((none.total.orders, none.total.total), (0, m("0")));
        assert_eq!(
            ProductType::from(PackageKind::RentalSwap),
            ProductType::ComboPackage
        );
    }

    fn arb_rules_and_order() -> impl Strategy<Value = (RevenueRules, RevenueOrder)> {
        (
            prop::collection::vec(
                (0u32..=4000, prop::option::of(0i64..300), any::<bool>()),
                0..=3,
            ),
            0i64..1_000_000,
            0u32..5,
            any::<bool>(),
        )
            .prop_map(|(levels, amount, swaps, swap_product)| {
                // scale the percentages (in hundredths) so that they sum to at most 100
                let total: u32 = levels.iter().map(|l| l.0).sum();
                let scale = if total > 10_000 {
                    Decimal::from(10_000) / Decimal::from(total)
                } else {
                    Decimal::ONE
                };
                let mut rules = Vec::new();
                let mut chain = Vec::new();
                for (i, (p, fee, specific)) in levels.iter().enumerate() {
                    let node = format!("n{i}");
                    let percent = (Decimal::new(i64::from(*p), 2) * scale)
                        .round_dp_with_strategy(2, rust_decimal::RoundingStrategy::ToZero);
                    rules.push(ShareRule {
                        node: node.clone(),
                        product: if *specific {
                            Some(ProductType::Swap)
                        } else {
                            None
                        },
                        percent,
                        per_swap: fee.map(|f| Money::from_minor(f, Currency::CNY)),
                    });
                    chain.push(node);
                }
                let order = RevenueOrder {
                    order_id: "o".into(),
                    product: if swap_product {
                        ProductType::Swap
                    } else {
                        ProductType::Charging
                    },
                    amount: Money::from_minor(amount, Currency::CNY),
                    swaps,
                    at: t("2026-05-01T10:00:00"),
                    chain,
                };
                (RevenueRules { rules }, order)
            })
    }

    proptest! {
        #[test]
        fn splits_sum_exactly_and_nobody_gets_negative((rules, order) in arb_rules_and_order()) {
            let s = split(&rules, &order).unwrap();
            prop_assert_eq!(s.parts.len(), order.chain.len() + 1);
            let sum = Money::sum(Currency::CNY, s.parts.iter().map(|p| p.total)).unwrap();
            prop_assert_eq!(sum, order.amount);
            for p in &s.parts {
                prop_assert!(!p.total.is_negative());
                prop_assert!(p.total.is_minor_exact());
                prop_assert_eq!(p.fixed.checked_add(p.share).unwrap(), p.total);
            }
            let r = s.reversed("r", order.at);
            let net = Money::sum(Currency::CNY, s.parts.iter().chain(&r.parts).map(|p| p.total)).unwrap();
            prop_assert!(net.is_zero());
        }
    }
}
