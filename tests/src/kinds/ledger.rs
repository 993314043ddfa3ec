//! Evaluators for the money backbone: `ledger.sequence`, `wallet.sequence`,
//! `deposit.sequence`, `report.daily`.
//!
//! A sequence case runs steps in order against a fresh ledger and reports
//! every step's outcome plus the final balances. Transfers are shown as
//! `"id: debit -> credit amount"` with ` (pending)`, ` (post HOLD)` or
//! ` (void HOLD)` appended for two-phase transfers; errors as their typed JSON
//! without the message.

use std::collections::BTreeMap;

use chargeswap_core::deposit::{DepositConfig, DepositOp, Deposits};
use chargeswap_core::ledger::{
    AccountKind, Command, Key, Ledger, NewAccount, Phase, Timestamp, Transfer,
};
use chargeswap_core::report::{ReportOptions, daily};
use chargeswap_core::wallet::{WalletConfig, WalletOp, Wallets};
use chrono::NaiveDate;
use serde::Deserialize;
use serde_json::{Value, json};

use super::input;
use crate::error_json;

fn t0() -> Timestamp {
    chrono::DateTime::from_timestamp(1_714_521_600, 0).unwrap_or_default() // 2024-05-01T00:00:00Z
}

fn show(t: &Transfer) -> String {
    let suffix = match t.phase {
        Phase::Posted => String::new(),
        Phase::Pending { .. } => " (pending)".to_owned(),
        Phase::PostPending { pending_id } => format!(" (post {pending_id})"),
        Phase::VoidPending { pending_id } => format!(" (void {pending_id})"),
    };
    format!(
        "{}: {} -> {} {}{}",
        t.id,
        t.debit_account,
        t.credit_account,
        t.amount.to_plain_string(),
        suffix
    )
}

fn err<E: serde::Serialize>(e: &E) -> Value {
    json!({ "error": serde_json::to_value(e).unwrap_or(Value::Null) })
}

fn balances(l: &Ledger) -> Value {
    let mut m = serde_json::Map::new();
    for a in l.accounts() {
        let mut b = json!({ "posted": a.posted_balance().to_plain_string() });
        if !a.pending_balance().is_zero() {
            b["pending"] = json!(a.pending_balance().to_plain_string());
        }
        m.insert(a.id.to_string(), b);
    }
    Value::Object(m)
}

fn balanced(l: &Ledger) -> bool {
    let t = l.totals();
    t.debits_posted == t.credits_posted && t.debits_pending == t.credits_pending
}

fn create(l: &mut Ledger, accounts: &[NewAccount]) -> Result<(), Value> {
    for a in accounts {
        l.create_account(a, t0()).map_err(|e| error_json(&e))?;
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LedgerStep {
    #[serde(default)]
    at: Option<Timestamp>,
    #[serde(default)]
    apply: Option<Command>,
    #[serde(default)]
    batch: Option<Vec<Command>>,
    #[serde(default)]
    expire: Option<Timestamp>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LedgerIn {
    accounts: Vec<NewAccount>,
    steps: Vec<LedgerStep>,
}

/// `ledger.sequence`: accounts, then steps `{apply}`, `{batch}` or `{expire}`.
pub fn ledger_sequence(v: &Value) -> Result<Value, Value> {
    let i: LedgerIn = input(v)?;
    let mut l = Ledger::new();
    create(&mut l, &i.accounts)?;
    let mut results = Vec::new();
    for s in &i.steps {
        let at = s.at.unwrap_or_else(t0);
        let r = match (&s.apply, &s.batch, s.expire) {
            (Some(c), None, None) => match l.apply(c, at) {
                Ok(t) => json!(show(&t)),
                Err(e) => err(&e),
            },
            (None, Some(cs), None) => match l.apply_batch(cs, at) {
                Ok(ts) => json!(ts.iter().map(show).collect::<Vec<_>>()),
                Err(e) => err(&e),
            },
            (None, None, Some(now)) => match l.expire_pending(now) {
                Ok(xs) => {
                    json!({ "expired": xs.iter().map(|x| x.pending_id.to_string()).collect::<Vec<_>>() })
                }
                Err(e) => err(&e),
            },
            _ => {
                return Err(
                    json!({"kind": "bad_input", "message": "a step has exactly one of apply, batch, expire"}),
                );
            }
        };
        results.push(r);
    }
    Ok(json!({ "results": results, "balances": balances(&l), "balanced": balanced(&l) }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, bound(deserialize = "Op: Deserialize<'de>"))]
struct OpStep<Op> {
    #[serde(default)]
    at: Option<Timestamp>,
    #[serde(default)]
    op_id: Option<Key>,
    #[serde(default)]
    op: Option<Op>,
    /// A raw ledger command (e.g. a package consumption).
    #[serde(default)]
    ledger: Option<Command>,
    /// Sweep: ledger holds, then gift lots (wallet) or waivers (deposit).
    #[serde(default)]
    expire: Option<Timestamp>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WalletIn {
    #[serde(default)]
    config: Option<WalletConfig>,
    #[serde(default)]
    accounts: Vec<NewAccount>,
    steps: Vec<OpStep<WalletOp>>,
}

/// `wallet.sequence`: the standard platform accounts (or `config`'s) plus
/// `accounts`, then wallet ops, raw ledger commands and expiry sweeps.
pub fn wallet_sequence(v: &Value) -> Result<Value, Value> {
    let i: WalletIn = input(v)?;
    let mut l = Ledger::new();
    let mut w = Wallets::new(i.config.unwrap_or_else(WalletConfig::standard));
    w.create_platform_accounts(&mut l, t0())
        .map_err(|e| error_json(&e))?;
    create(&mut l, &i.accounts)?;
    let mut results = Vec::new();
    let mut last = t0();
    for s in &i.steps {
        let at = s.at.unwrap_or(last);
        last = at;
        let r = match (&s.op, &s.ledger, s.expire) {
            (Some(op), None, None) => {
                let id = s
                    .op_id
                    .ok_or_else(|| json!({"kind": "bad_input", "message": "op needs op_id"}))?;
                match w.apply(id, op, &mut l, at) {
                    Ok(r) => json!(r.transfers.iter().map(show).collect::<Vec<_>>()),
                    Err(e) => err(&e),
                }
            }
            (None, Some(c), None) => match l.apply(c, at) {
                Ok(t) => json!(show(&t)),
                Err(e) => err(&e),
            },
            (None, None, Some(now)) => {
                last = now;
                let held = l.expire_pending(now).map_err(|e| err(&e))?;
                let released = w.sync_expired_holds(&l);
                let gifts = w.expire_gifts(&mut l, now).map_err(|e| err(&e))?;
                json!({
                    "expired_holds": held.iter().map(|x| x.pending_id.to_string()).collect::<Vec<_>>(),
                    "released_orders": released.iter().map(ToString::to_string).collect::<Vec<_>>(),
                    "expired_gifts": gifts.iter().map(show).collect::<Vec<_>>(),
                })
            }
            _ => {
                return Err(
                    json!({"kind": "bad_input", "message": "a step has exactly one of op, ledger, expire"}),
                );
            }
        };
        results.push(r);
    }
    let mut wallets = BTreeMap::new();
    for r in w.riders() {
        let b = w.balance(&r.rider, &l, last).map_err(|e| err(&e))?;
        wallets.insert(
            r.rider.to_string(),
            json!({
                "paid": b.paid.to_plain_string(),
                "paid_available": b.paid_available.to_plain_string(),
                "gift": b.gift.to_plain_string(),
            }),
        );
    }
    Ok(json!({
        "results": results,
        "wallets": wallets,
        "balances": balances(&l),
        "balanced": balanced(&l),
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DepositIn {
    #[serde(default)]
    config: Option<DepositConfig>,
    #[serde(default)]
    accounts: Vec<NewAccount>,
    steps: Vec<OpStep<DepositOp>>,
}

/// `deposit.sequence`: the standard platform accounts plus `accounts` (e.g.
/// credit lines), then deposit ops, raw ledger commands and expiry sweeps.
pub fn deposit_sequence(v: &Value) -> Result<Value, Value> {
    let i: DepositIn = input(v)?;
    let mut l = Ledger::new();
    let mut d = Deposits::new(i.config.unwrap_or_else(DepositConfig::standard));
    d.create_platform_accounts(&mut l, t0())
        .map_err(|e| error_json(&e))?;
    create(&mut l, &i.accounts)?;
    let mut results = Vec::new();
    let mut last = t0();
    for s in &i.steps {
        let at = s.at.unwrap_or(last);
        last = at;
        let r = match (&s.op, &s.ledger, s.expire) {
            (Some(op), None, None) => {
                let id = s
                    .op_id
                    .ok_or_else(|| json!({"kind": "bad_input", "message": "op needs op_id"}))?;
                match d.apply(id, op, &mut l, at) {
                    Ok(r) => json!({
                        "status": r.deposit.status,
                        "transfers": r.transfers.iter().map(show).collect::<Vec<_>>(),
                    }),
                    Err(e) => err(&e),
                }
            }
            (None, Some(c), None) => match l.apply(c, at) {
                Ok(t) => json!(show(&t)),
                Err(e) => err(&e),
            },
            (None, None, Some(now)) => {
                last = now;
                let held = l.expire_pending(now).map_err(|e| err(&e))?;
                let lapsed = d.sync_expired(&l);
                json!({
                    "expired_holds": held.iter().map(|x| x.pending_id.to_string()).collect::<Vec<_>>(),
                    "lapsed": lapsed.iter().map(|x| x.deposit.to_string()).collect::<Vec<_>>(),
                })
            }
            _ => {
                return Err(
                    json!({"kind": "bad_input", "message": "a step has exactly one of op, ledger, expire"}),
                );
            }
        };
        results.push(r);
    }
    let held: i64 = l
        .accounts()
        .filter(|a| a.kind == AccountKind::DepositHeld)
        .filter_map(|a| a.posted_balance().to_minor())
        .sum();
    let credit: i64 = l
        .accounts()
        .filter(|a| a.kind == AccountKind::CreditHold)
        .filter_map(|a| a.credits_pending.to_minor())
        .sum();
    let cur = d.config().currency;
    let deposits: BTreeMap<String, Value> = d
        .deposits()
        .map(|x| {
            (
                x.deposit.to_string(),
                json!({"status": x.status, "remaining": x.remaining().to_plain_string()}),
            )
        })
        .collect();
    Ok(json!({
        "results": results,
        "deposits": deposits,
        "outstanding": d.outstanding().to_plain_string(),
        "held_balance": chargeswap_core::money::Money::from_minor(held, cur).to_plain_string(),
        "waived_outstanding": d.waived_outstanding().to_plain_string(),
        "credit_hold_pending": chargeswap_core::money::Money::from_minor(credit, cur).to_plain_string(),
        "balances": balances(&l),
        "balanced": balanced(&l),
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportIn {
    accounts: Vec<NewAccount>,
    steps: Vec<LedgerStep>,
    from: NaiveDate,
    to: NaiveDate,
    options: ReportOptions,
}

/// `report.daily`: builds a ledger like `ledger.sequence` (every step must
/// succeed), then reports the days `from..=to`.
pub fn report_daily(v: &Value) -> Result<Value, Value> {
    let i: ReportIn = input(v)?;
    let mut l = Ledger::new();
    create(&mut l, &i.accounts)?;
    for s in &i.steps {
        let at = s.at.unwrap_or_else(t0);
        if let Some(c) = &s.apply {
            l.apply(c, at).map_err(|e| error_json(&e))?;
        }
        if let Some(cs) = &s.batch {
            l.apply_batch(cs, at).map_err(|e| error_json(&e))?;
        }
        if let Some(now) = s.expire {
            l.expire_pending(now).map_err(|e| error_json(&e))?;
        }
    }
    let days = daily(&l, i.from, i.to, &i.options).map_err(|e| error_json(&e))?;
    serde_json::to_value(days).map_err(|e| json!({"kind": "serialize", "message": e.to_string()}))
}
