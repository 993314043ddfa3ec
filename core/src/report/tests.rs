use super::*;
use crate::ledger::{Command, NewAccount};
use chrono::{Duration, TimeZone, Utc};

fn k(s: &str) -> Key {
    Key::new(s).unwrap()
}
fn m(s: &str) -> Money {
    s.parse().unwrap()
}
fn date(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2024, 5, d).unwrap()
}
/// Local (UTC+8) time on 2024-05-d at h:00.
fn at(d: u32, h: i64) -> Timestamp {
    Utc.with_ymd_and_hms(2024, 5, d, 0, 0, 0).unwrap() - Duration::hours(8) + Duration::hours(h)
}

fn books() -> Ledger {
    let mut l = Ledger::new();
    let t = at(1, 0);
    for (id, kind, owner) in [
        ("clearing", AccountKind::PaymentClearing, None),
        ("revenue", AccountKind::PlatformRevenue, None),
        ("a1:rev", AccountKind::AgentRevenue, Some("agent-1")),
        ("a2:rev", AccountKind::AgentRevenue, Some("agent-2")),
        ("pkg", AccountKind::PackageLiability, None),
        ("r1:wallet", AccountKind::RiderWallet, None),
        ("r1:deposit", AccountKind::DepositHeld, None),
        ("r1:credit", AccountKind::CreditHold, None),
        ("line", AccountKind::CreditLine, None),
        ("refunds", AccountKind::RefundsPayable, None),
    ] {
        let mut spec = NewAccount::new(k(id), kind);
        spec.owner = owner.map(k);
        l.create_account(&spec, t).unwrap();
    }
    l
}

fn tr(l: &mut Ledger, id: &str, d: &str, c: &str, amount: &str, code: &str, t: Timestamp) {
    l.apply(&Command::transfer(id, d, c, m(amount), code).unwrap(), t)
        .unwrap();
}

/// Day 1: package sold ¥100 (channel), ¥30 consumed, of which ¥6 shared to agent 1;
/// a swap fee ¥5 from the wallet, deposit ¥300 paid, waiver ¥500 held.
/// Day 2: ¥2 of the swap fee refunded to the wallet; deposit ¥50 deducted (damage)
/// and ¥250 approved for refund; agent 1 paid out ¥6; waiver voided.
fn scenario() -> Ledger {
    let mut l = books();
    tr(
        &mut l,
        "1",
        "clearing",
        "pkg",
        "100",
        "package_purchase",
        at(1, 9),
    );
    tr(
        &mut l,
        "2",
        "pkg",
        "revenue",
        "30",
        "package_consume",
        at(1, 10),
    );
    tr(
        &mut l,
        "3",
        "revenue",
        "a1:rev",
        "6",
        "revenue_share",
        at(1, 10),
    );
    tr(
        &mut l,
        "4",
        "clearing",
        "r1:wallet",
        "20",
        "top_up",
        at(1, 11),
    );
    tr(
        &mut l,
        "5",
        "r1:wallet",
        "revenue",
        "5",
        "swap_fee",
        at(1, 12),
    );
    tr(
        &mut l,
        "6",
        "clearing",
        "r1:deposit",
        "300",
        "deposit_pay",
        at(1, 13),
    );
    l.apply(
        &Command::hold("7", "line", "r1:credit", m("500"), "deposit_waiver", None).unwrap(),
        at(1, 14),
    )
    .unwrap();
    // 23:30 local on day 1 is still day 1
    tr(
        &mut l,
        "8",
        "r1:wallet",
        "revenue",
        "1",
        "swap_fee",
        at(1, 23) + Duration::minutes(30),
    );
    // 00:30 local on day 2 (16:30 UTC on day 1)
    tr(
        &mut l,
        "9",
        "revenue",
        "r1:wallet",
        "2",
        "refund_to_wallet",
        at(2, 0) + Duration::minutes(30),
    );
    tr(
        &mut l,
        "10",
        "r1:deposit",
        "revenue",
        "50",
        "deposit_damage",
        at(2, 9),
    );
    tr(
        &mut l,
        "11",
        "r1:deposit",
        "refunds",
        "250",
        "deposit_refund",
        at(2, 10),
    );
    tr(
        &mut l,
        "12",
        "a1:rev",
        "clearing",
        "6",
        "agent_payout",
        at(2, 11),
    );
    l.apply(&Command::void("13", "7").unwrap(), at(2, 12))
        .unwrap();
    l
}

#[test]
fn daily_report_by_hand() {
    let l = scenario();
    let r = daily(&l, date(1), date(3), &ReportOptions::china()).unwrap();
    assert_eq!(r.len(), 3);
    let d1 = &r[0];
    assert_eq!(d1.date, date(1));
    // package_consume 30 (credit to revenue from pkg); revenue_share moves revenue → agent (excluded);
    // swap_fee 5 + 1 = 6. package_purchase credits a liability, not revenue.
    assert_eq!(
        d1.revenue_by_code,
        BTreeMap::from([(k("package_consume"), m("30")), (k("swap_fee"), m("6"))])
    );
    assert_eq!(d1.revenue_total, m("36"));
    assert_eq!(
        d1.revenue_by_agent,
        BTreeMap::from([(k("agent-1"), m("6"))])
    );
    assert_eq!(d1.refunds_total, m("0"));
    assert_eq!(d1.deposits_outstanding, m("300"));
    assert_eq!(d1.waivers_outstanding, m("500"));
    assert_eq!(d1.package_liabilities, m("70"));
    let d2 = &r[1];
    // refund −2 under its own code; deposit_damage +50; the agent payout is not revenue
    assert_eq!(
        d2.revenue_by_code,
        BTreeMap::from([
            (k("deposit_damage"), m("50")),
            (k("refund_to_wallet"), m("-2"))
        ])
    );
    assert_eq!(d2.revenue_total, m("48"));
    assert!(d2.revenue_by_agent.is_empty());
    assert_eq!(
        d2.refunds_by_code,
        BTreeMap::from([
            (k("deposit_refund"), m("250")),
            (k("refund_to_wallet"), m("2"))
        ])
    );
    assert_eq!(d2.refunds_total, m("252"));
    assert_eq!(d2.deposits_outstanding, m("0"));
    assert_eq!(d2.waivers_outstanding, m("0"));
    assert_eq!(d2.package_liabilities, m("70"));
    // an empty day carries the balances forward
    assert_eq!(r[2].revenue_total, m("0"));
    assert_eq!(r[2].package_liabilities, m("70"));
    // the same history in UTC: transfer 9 (16:30 UTC on 1 May) falls on day 1
    let mut utc = ReportOptions::china();
    utc.utc_offset_seconds = 0;
    let r = daily(&l, date(1), date(1), &utc).unwrap();
    assert_eq!(r[0].refunds_total, m("2"));
    // a report starting on day 2 still has day 1's balances as opening
    let r = daily(&l, date(2), date(2), &ReportOptions::china()).unwrap();
    assert_eq!(r[0].package_liabilities, m("70"));
    assert_eq!(r[0].revenue_total, m("48"));
}

#[test]
fn daily_counts_expiries_and_partial_posts() {
    let mut l = books();
    l.apply(
        &Command::hold(
            "h1",
            "line",
            "r1:credit",
            m("500"),
            "deposit_waiver",
            Some(at(3, 0)),
        )
        .unwrap(),
        at(1, 9),
    )
    .unwrap();
    l.apply(
        &Command::hold("h2", "line", "r1:credit", m("400"), "deposit_waiver", None).unwrap(),
        at(1, 9),
    )
    .unwrap();
    // capture 100 of h2 (the other 300 released), then take it as revenue
    l.apply(
        &Command::post("p2", "h2", Some(m("100"))).unwrap(),
        at(2, 9),
    )
    .unwrap();
    tr(
        &mut l,
        "x",
        "r1:credit",
        "revenue",
        "100",
        "deposit_loss",
        at(2, 9),
    );
    l.expire_pending(at(3, 1)).unwrap();
    let r = daily(&l, date(1), date(3), &ReportOptions::china()).unwrap();
    assert_eq!(r[0].waivers_outstanding, m("900"));
    assert_eq!(r[1].waivers_outstanding, m("500"));
    assert_eq!(
        r[1].revenue_by_code,
        BTreeMap::from([(k("deposit_loss"), m("100"))])
    );
    assert_eq!(r[2].waivers_outstanding, m("0"));
}

#[test]
fn agent_settlement_by_hand() {
    let mut l = scenario();
    tr(
        &mut l,
        "14",
        "revenue",
        "a2:rev",
        "3.33",
        "revenue_share",
        at(2, 13),
    );
    tr(
        &mut l,
        "15",
        "a2:rev",
        "revenue",
        "0.33",
        "clawback",
        at(2, 14),
    );
    // period: day 2 only
    let s = agent_settlement(&l, at(2, 0), at(3, 0), Currency::CNY).unwrap();
    assert_eq!(s.len(), 2);
    assert_eq!(
        s[0],
        AgentSettlement {
            agent: k("agent-1"),
            opening: m("6"),
            earned: m("0"),
            reversed: m("0"),
            paid_out: m("6"),
            closing: m("0")
        }
    );
    assert_eq!(
        s[1],
        AgentSettlement {
            agent: k("agent-2"),
            opening: m("0"),
            earned: m("3.33"),
            reversed: m("0.33"),
            paid_out: m("0"),
            closing: m("3")
        }
    );
    assert!(agent_settlement(&l, at(3, 0), at(2, 0), Currency::CNY).is_err());
}

#[test]
fn balances_by_kind_and_errors() {
    let l = scenario();
    let b = balances_by_kind(&l, Currency::CNY);
    let get = |kind| b.iter().find(|x| x.kind == kind).unwrap();
    assert_eq!(get(AccountKind::PackageLiability).posted, m("70"));
    assert_eq!(get(AccountKind::RefundsPayable).posted, m("250"));
    // clearing: +100 +20 +300 +6 (payout credited... no: payout debits a1:rev, credits clearing) → 420 − 6 = 414
    assert_eq!(get(AccountKind::PaymentClearing).posted, m("414"));
    let mut bad = ReportOptions::china();
    bad.utc_offset_seconds = 86_400;
    assert!(matches!(
        daily(&l, date(1), date(1), &bad),
        Err(ReportError::InvalidOffset { .. })
    ));
    assert!(matches!(
        daily(&l, date(2), date(1), &ReportOptions::china()),
        Err(ReportError::InvalidPeriod { .. })
    ));
    let far = date(1) + Duration::days(MAX_DAYS);
    assert!(matches!(
        daily(&l, date(1), far, &ReportOptions::china()),
        Err(ReportError::InvalidPeriod { .. })
    ));
    let o: ReportOptions = serde_json::from_str(r#"{"utc_offset_seconds": 28800}"#).unwrap();
    assert_eq!(o, ReportOptions::china());
}
