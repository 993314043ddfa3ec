//! Reports: pure aggregations over the [`Ledger`]'s history.
//!
//! Nothing here changes the ledger or reads a clock. Days are local days: a
//! transfer belongs to the calendar date of `timestamp + utc_offset_seconds`
//! (28,800 for China Standard Time, UTC+8).
//!
//! How movements are classified (posted movements only: single-phase
//! transfers and posts of holds; a hold counts when it is posted):
//! - **Revenue by product** (the transfer code): a credit to a revenue
//!   account ([`AccountKind::PlatformRevenue`] or [`AccountKind::AgentRevenue`])
//!   from a non-revenue account adds to its code; a debit from a revenue
//!   account to a non-revenue account subtracts (a refund or reversal),
//!   except a debit to [`AccountKind::PaymentClearing`], which is a payout of
//!   revenue, not less revenue. Moves between revenue accounts (revenue
//!   sharing) do not change the total.
//! - **Revenue by agent**: every movement on an agent's revenue account
//!   except payouts to clearing: credits add, debits subtract. The agent is
//!   the account's owner (or the account id when it has none).
//! - **Refunds**: posted movements whose code is one of
//!   [`ReportOptions::refund_codes`].
//! - **Deposits outstanding**, **waivers outstanding** and **package
//!   liabilities** are end-of-day balances: posted balances of
//!   [`AccountKind::DepositHeld`] and [`AccountKind::PackageLiability`]
//!   accounts, and pending credits (open holds) of [`AccountKind::CreditHold`]
//!   accounts.
//!
//! ```
//! use chargeswap_core::ledger::{AccountKind, Command, Key, Ledger, NewAccount};
//! use chargeswap_core::report::{daily, ReportOptions};
//! use chrono::{NaiveDate, TimeZone, Utc};
//!
//! let t = Utc.with_ymd_and_hms(2024, 4, 30, 17, 30, 0).unwrap(); // 01:30 on 1 May in UTC+8
//! let mut l = Ledger::new();
//! l.create_account(&NewAccount::new(Key::new("clearing")?, AccountKind::PaymentClearing), t)?;
//! l.create_account(&NewAccount::new(Key::new("revenue")?, AccountKind::PlatformRevenue), t)?;
//! l.apply(&Command::transfer("s1", "clearing", "revenue", "5.99".parse()?, "swap_fee")?, t)?;
//! let day = NaiveDate::from_ymd_opt(2024, 5, 1).unwrap();
//! let r = daily(&l, day, day, &ReportOptions::china())?;
//! assert_eq!(r[0].revenue_total.to_string(), "¥5.99");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::{BTreeMap, HashMap};

use chrono::{FixedOffset, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::ledger::{AccountKind, Key, Ledger, LedgerError, Phase, Side, Timestamp, codes};
use crate::money::{Currency, Money};

/// The longest period [`daily`] reports on, in days.
pub const MAX_DAYS: i64 = 3_700;

/// Errors of the report module.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ReportError {
    /// The UTC offset is out of range.
    #[error("{field} must be within ±86,399 seconds (e.g. 28800 for UTC+8), got {value}")]
    InvalidOffset {
        /// The field.
        field: String,
        /// The value given.
        value: i32,
    },
    /// The period is empty or too long.
    #[error(
        "{field}: the period {from} .. {to} must not end before it starts and may span at most {max_days} days"
    )]
    InvalidPeriod {
        /// The field at fault.
        field: String,
        /// Start given.
        from: String,
        /// End given.
        to: String,
        /// The limit.
        max_days: i64,
    },
    /// The ledger refused a query.
    #[error("ledger: {error}")]
    Ledger {
        /// The ledger's error.
        error: LedgerError,
    },
}

impl From<LedgerError> for ReportError {
    fn from(error: LedgerError) -> ReportError {
        ReportError::Ledger { error }
    }
}

type Result<T> = core::result::Result<T, ReportError>;

/// Options of the reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportOptions {
    /// Only accounts in this currency are counted.
    #[serde(default)]
    pub currency: Currency,
    /// Local time = UTC + this many seconds (28,800 for UTC+8).
    pub utc_offset_seconds: i32,
    /// Codes that count as refunds. Default: `refund_to_wallet`,
    /// `refund_to_channel`, `deposit_refund`, `withdraw`.
    #[serde(default = "default_refund_codes")]
    pub refund_codes: Vec<Key>,
}

fn default_refund_codes() -> Vec<Key> {
    vec![
        Key::lit(codes::REFUND_TO_WALLET),
        Key::lit(codes::REFUND_TO_CHANNEL),
        Key::lit(codes::DEPOSIT_REFUND),
        Key::lit(codes::WITHDRAW),
    ]
}

impl ReportOptions {
    /// CNY, UTC+8, the default refund codes.
    pub fn china() -> ReportOptions {
        ReportOptions {
            currency: Currency::CNY,
            utc_offset_seconds: 8 * 3600,
            refund_codes: default_refund_codes(),
        }
    }

    fn offset(&self) -> Result<FixedOffset> {
        FixedOffset::east_opt(self.utc_offset_seconds).ok_or(ReportError::InvalidOffset {
            field: "utc_offset_seconds".to_owned(),
            value: self.utc_offset_seconds,
        })
    }
}

/// One local day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DailyReport {
    /// The local date.
    pub date: NaiveDate,
    /// Net revenue by transfer code (product).
    pub revenue_by_code: BTreeMap<Key, Money>,
    /// Net revenue of the day, all codes.
    pub revenue_total: Money,
    /// Net movement of each agent's revenue accounts (payouts excluded).
    pub revenue_by_agent: BTreeMap<Key, Money>,
    /// Refunds by code.
    pub refunds_by_code: BTreeMap<Key, Money>,
    /// Refunds of the day, all codes.
    pub refunds_total: Money,
    /// Held deposits at the end of the day.
    pub deposits_outstanding: Money,
    /// Waived deposits (open credit holds) at the end of the day.
    pub waivers_outstanding: Money,
    /// Package liabilities (deferred revenue) at the end of the day.
    pub package_liabilities: Money,
}

/// One agent's revenue-share account(s) over a period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentSettlement {
    /// The agent (the accounts' owner, or the account id).
    pub agent: Key,
    /// Balance owed at the start of the period.
    pub opening: Money,
    /// Credited in the period (revenue shares earned).
    pub earned: Money,
    /// Debited in the period other than payouts (reversals, clawbacks).
    pub reversed: Money,
    /// Paid out to the agent (debits to payment clearing).
    pub paid_out: Money,
    /// Balance owed at the end: opening + earned − reversed − paid out.
    pub closing: Money,
}

/// Posted and pending balances of every account kind (normal side).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KindBalance {
    /// The kind.
    pub kind: AccountKind,
    /// Sum of the posted balances.
    pub posted: Money,
    /// Sum of the pending balances (open holds).
    pub pending: Money,
}

#[derive(Clone, Copy)]
struct Info {
    kind: AccountKind,
    owner: Key,
    currency: Currency,
}

fn add(map: &mut BTreeMap<Key, i64>, k: Key, v: i64) {
    let e = map.entry(k).or_insert(0);
    *e = e.saturating_add(v);
}

fn money_map(map: BTreeMap<Key, i64>, c: Currency) -> BTreeMap<Key, Money> {
    map.into_iter()
        .map(|(k, v)| (k, Money::from_minor(v, c)))
        .collect()
}

fn minor(m: Money) -> i64 {
    m.to_minor().unwrap_or(0)
}

#[derive(Default)]
struct Flows {
    by_code: BTreeMap<Key, i64>,
    by_agent: BTreeMap<Key, i64>,
    refunds: BTreeMap<Key, i64>,
    deposits: i64,
    waivers: i64,
    liabilities: i64,
}

/// Daily figures for every local date from `from` to `to` (inclusive).
///
/// Errors: a bad offset, `to` before `from`, or more than [`MAX_DAYS`] days.
pub fn daily(
    ledger: &Ledger,
    from: NaiveDate,
    to: NaiveDate,
    options: &ReportOptions,
) -> Result<Vec<DailyReport>> {
    let offset = options.offset()?;
    let span = (to - from).num_days();
    if !(0..MAX_DAYS).contains(&span) {
        return Err(ReportError::InvalidPeriod {
            field: "to".to_owned(),
            from: from.to_string(),
            to: to.to_string(),
            max_days: MAX_DAYS,
        });
    }
    let cur = options.currency;
    let info: HashMap<Key, Info> = ledger
        .accounts()
        .map(|a| {
            (
                a.id,
                Info {
                    kind: a.kind,
                    owner: a.owner.unwrap_or(a.id),
                    currency: a.currency,
                },
            )
        })
        .collect();
    let local = |t: Timestamp| t.with_timezone(&offset).date_naive();
    let mut days: Vec<(NaiveDate, Flows)> = from
        .iter_days()
        .take(usize::try_from(span + 1).unwrap_or(0))
        .map(|d| (d, Flows::default()))
        .collect();
    // running end-of-day balances
    let (mut deposits, mut waivers, mut liabilities) = (0i64, 0i64, 0i64);
    let mut closed = 0usize;
    let close_until = |days: &mut Vec<(NaiveDate, Flows)>,
                       closed: &mut usize,
                       date: Option<NaiveDate>,
                       d: i64,
                       w: i64,
                       l: i64| {
        while let Some((day, f)) = days.get_mut(*closed) {
            if date.is_some_and(|x| *day >= x) {
                break;
            }
            f.deposits = d;
            f.waivers = w;
            f.liabilities = l;
            *closed += 1;
        }
    };
    let mut expiries = ledger.expiries().iter().peekable();
    let transfers: Vec<_> = ledger.transfers().collect();
    for (n, t) in transfers.iter().enumerate() {
        // expiries recorded before this transfer
        while let Some(x) = expiries.next_if(|x| x.position <= n as u64) {
            let date = local(x.expired_at);
            close_until(
                &mut days,
                &mut closed,
                Some(date),
                deposits,
                waivers,
                liabilities,
            );
            if date > to {
                break;
            }
            if let Some(ci) = info.get(&x.credit_account) {
                if ci.kind == AccountKind::CreditHold && ci.currency == cur {
                    waivers = waivers.saturating_sub(minor(x.amount));
                }
            }
        }
        let date = local(t.timestamp);
        close_until(
            &mut days,
            &mut closed,
            Some(date),
            deposits,
            waivers,
            liabilities,
        );
        if date > to {
            break;
        }
        let (Some(di), Some(ci)) = (info.get(&t.debit_account), info.get(&t.credit_account)) else {
            continue;
        };
        if di.currency != cur {
            continue;
        }
        let a = minor(t.amount);
        // pending (holds on credit-hold accounts)
        match t.phase {
            Phase::Pending { .. } => {
                if ci.kind == AccountKind::CreditHold {
                    waivers = waivers.saturating_add(a);
                }
                continue;
            }
            Phase::VoidPending { .. } => {
                if ci.kind == AccountKind::CreditHold {
                    waivers = waivers.saturating_sub(a);
                }
                continue;
            }
            Phase::PostPending { pending_id } => {
                if ci.kind == AccountKind::CreditHold {
                    let held = ledger.transfer(&pending_id).map_or(a, |h| minor(h.amount));
                    waivers = waivers.saturating_sub(held);
                }
            }
            Phase::Posted => {}
        }
        // posted balances
        for (info, side) in [(di, Side::Debit), (ci, Side::Credit)] {
            let signed = if side == info.kind.normal_side() {
                a
            } else {
                -a
            };
            match info.kind {
                AccountKind::DepositHeld => deposits = deposits.saturating_add(signed),
                AccountKind::PackageLiability => liabilities = liabilities.saturating_add(signed),
                _ => {}
            }
        }
        let Some((_, f)) = (date >= from)
            .then(|| usize::try_from((date - from).num_days()).ok())
            .flatten()
            .and_then(|i| days.get_mut(i))
        else {
            continue;
        };
        // revenue by code
        if ci.kind.is_revenue() && !di.kind.is_revenue() {
            add(&mut f.by_code, t.code, a);
        } else if di.kind.is_revenue()
            && !ci.kind.is_revenue()
            && ci.kind != AccountKind::PaymentClearing
        {
            add(&mut f.by_code, t.code, -a);
        }
        // revenue by agent
        if ci.kind == AccountKind::AgentRevenue && di.kind != AccountKind::PaymentClearing {
            add(&mut f.by_agent, ci.owner, a);
        }
        if di.kind == AccountKind::AgentRevenue && ci.kind != AccountKind::PaymentClearing {
            add(&mut f.by_agent, di.owner, -a);
        }
        if options.refund_codes.contains(&t.code) {
            add(&mut f.refunds, t.code, a);
        }
    }
    // expiries after the last transfer
    for x in expiries {
        let date = local(x.expired_at);
        close_until(
            &mut days,
            &mut closed,
            Some(date),
            deposits,
            waivers,
            liabilities,
        );
        if date > to {
            break;
        }
        if info
            .get(&x.credit_account)
            .is_some_and(|ci| ci.kind == AccountKind::CreditHold && ci.currency == cur)
        {
            waivers = waivers.saturating_sub(minor(x.amount));
        }
    }
    close_until(&mut days, &mut closed, None, deposits, waivers, liabilities);
    Ok(days
        .into_iter()
        .map(|(date, f)| {
            let revenue_total = f.by_code.values().copied().fold(0i64, i64::saturating_add);
            let refunds_total = f.refunds.values().copied().fold(0i64, i64::saturating_add);
            DailyReport {
                date,
                revenue_total: Money::from_minor(revenue_total, cur),
                revenue_by_code: money_map(f.by_code, cur),
                revenue_by_agent: money_map(f.by_agent, cur),
                refunds_total: Money::from_minor(refunds_total, cur),
                refunds_by_code: money_map(f.refunds, cur),
                deposits_outstanding: Money::from_minor(f.deposits, cur),
                waivers_outstanding: Money::from_minor(f.waivers, cur),
                package_liabilities: Money::from_minor(f.liabilities, cur),
            }
        })
        .collect())
}

/// Agent settlement totals over `[from, to)`: for every agent with
/// [`AccountKind::AgentRevenue`] accounts in `currency`, what it was owed at
/// the start, earned, had reversed, was paid out, and is owed at the end.
pub fn agent_settlement(
    ledger: &Ledger,
    from: Timestamp,
    to: Timestamp,
    currency: Currency,
) -> Result<Vec<AgentSettlement>> {
    if to < from {
        return Err(ReportError::InvalidPeriod {
            field: "to".to_owned(),
            from: from.to_rfc3339(),
            to: to.to_rfc3339(),
            max_days: MAX_DAYS,
        });
    }
    let kinds: HashMap<Key, AccountKind> = ledger.accounts().map(|a| (a.id, a.kind)).collect();
    let mut by_agent: BTreeMap<Key, [i64; 4]> = BTreeMap::new();
    for a in ledger.accounts() {
        if a.kind != AccountKind::AgentRevenue || a.currency != currency {
            continue;
        }
        let s = ledger.statement(&a.id, from, to)?;
        let e = by_agent.entry(a.owner.unwrap_or(a.id)).or_insert([0; 4]);
        e[0] = e[0].saturating_add(minor(s.opening));
        for line in &s.lines {
            let v = minor(line.amount);
            match line.side {
                Side::Credit => e[1] = e[1].saturating_add(v),
                Side::Debit
                    if kinds.get(&line.counterparty) == Some(&AccountKind::PaymentClearing) =>
                {
                    e[3] = e[3].saturating_add(v);
                }
                Side::Debit => e[2] = e[2].saturating_add(v),
            }
        }
    }
    let m = |v: i64| Money::from_minor(v, currency);
    Ok(by_agent
        .into_iter()
        .map(
            |(agent, [opening, earned, reversed, paid])| AgentSettlement {
                agent,
                opening: m(opening),
                earned: m(earned),
                reversed: m(reversed),
                paid_out: m(paid),
                closing: m(opening
                    .saturating_add(earned)
                    .saturating_sub(reversed)
                    .saturating_sub(paid)),
            },
        )
        .collect())
}

/// Current posted and pending balances summed per account kind (accounts in
/// `currency` only), in [`AccountKind`] order.
pub fn balances_by_kind(ledger: &Ledger, currency: Currency) -> Vec<KindBalance> {
    let mut sums: BTreeMap<AccountKind, (i64, i64)> = BTreeMap::new();
    for a in ledger.accounts().filter(|a| a.currency == currency) {
        let e = sums.entry(a.kind).or_insert((0, 0));
        e.0 = e.0.saturating_add(minor(a.posted_balance()));
        e.1 = e.1.saturating_add(minor(a.pending_balance()));
    }
    sums.into_iter()
        .map(|(kind, (p, q))| KindBalance {
            kind,
            posted: Money::from_minor(p, currency),
            pending: Money::from_minor(q, currency),
        })
        .collect()
}

#[cfg(test)]
mod tests;
