use super::*;
use chrono::{Duration, TimeZone};
use proptest::prelude::*;

fn k(s: &str) -> Key {
    Key::new(s).unwrap()
}
fn m(s: &str) -> Money {
    s.parse().unwrap()
}
fn t0() -> Timestamp {
    Utc.with_ymd_and_hms(2024, 5, 1, 8, 0, 0).unwrap()
}

/// clearing (debit-normal), rev, r1 and r2 wallets without overdraft, r3 with.
fn setup() -> Ledger {
    let mut l = Ledger::new();
    let now = t0();
    l.create_account(
        &NewAccount::new(k("clearing"), AccountKind::PaymentClearing),
        now,
    )
    .unwrap();
    l.create_account(
        &NewAccount::new(k("rev"), AccountKind::PlatformRevenue),
        now,
    )
    .unwrap();
    for r in ["r1", "r2"] {
        l.create_account(
            &NewAccount::new(k(r), AccountKind::RiderWallet).no_overdraft(),
            now,
        )
        .unwrap();
    }
    l.create_account(&NewAccount::new(k("r3"), AccountKind::RiderWallet), now)
        .unwrap();
    l
}

fn top_up(l: &mut Ledger, id: &str, rider: &str, amount: &str) -> Transfer {
    l.apply(
        &Command::transfer(id, "clearing", rider, m(amount), "top_up").unwrap(),
        t0(),
    )
    .unwrap()
}

fn bal(l: &Ledger, a: &str) -> Money {
    l.account(&k(a)).unwrap().posted_balance()
}

fn fingerprint(l: &Ledger) -> String {
    serde_json::to_string(l).unwrap()
        + &format!("{:?}{:?}", l.totals(), l.open_holds())
        + &serde_json::to_string(&l.accounts().collect::<Vec<_>>()).unwrap()
}

#[test]
fn keys_validate_and_round_trip() {
    assert_eq!(k("a").as_str(), "a");
    let long = "x".repeat(KEY_CAPACITY);
    assert_eq!(k(&long).as_str(), long);
    assert!(Key::new(&format!("{long}x")).is_err());
    for bad in ["", " ", "a b", "订单", "a\n"] {
        let e = Key::for_field("order", bad).unwrap_err();
        assert!(
            matches!(&e, LedgerError::InvalidKey { field, .. } if field == "order"),
            "{bad:?}"
        );
    }
    assert_eq!(serde_json::to_string(&k("t-1")).unwrap(), "\"t-1\"");
    assert_eq!(serde_json::from_str::<Key>("\"t-1\"").unwrap(), k("t-1"));
    assert!(serde_json::from_str::<Key>("\"\"").is_err());
    assert!(k("a") < k("b") && k("a") < k("aa"));
    assert!(k("op").suffixed(&"y".repeat(KEY_CAPACITY), "id").is_err());
}

#[test]
fn single_phase_transfer_moves_money_and_balances() {
    let mut l = setup();
    let t = top_up(&mut l, "t1", "r1", "50");
    assert_eq!(t.phase, Phase::Posted);
    assert_eq!(t.timestamp, t0());
    assert_eq!(bal(&l, "r1"), m("50"));
    assert_eq!(bal(&l, "clearing"), m("50"));
    let tot = l.totals();
    assert_eq!(tot.debits_posted, 5000);
    assert_eq!(tot.credits_posted, 5000);
    assert_eq!(l.transfer(&k("t1")), Some(t));
    assert_eq!(l.len(), 1);
}

#[test]
fn idempotent_replay_and_conflicts() {
    let mut l = setup();
    let c = Command::transfer("t1", "clearing", "r1", m("50"), "top_up").unwrap();
    let first = l.apply(&c, t0()).unwrap();
    // replay later, even "in the past": same result, nothing changes
    let before = fingerprint(&l);
    assert_eq!(l.apply(&c, t0() + Duration::hours(1)).unwrap(), first);
    assert_eq!(l.apply(&c, t0() - Duration::hours(1)).unwrap(), first);
    assert_eq!(fingerprint(&l), before);
    // same id, different content
    for (c2, field) in [
        (
            Command::transfer("t1", "clearing", "r1", m("51"), "top_up"),
            "amount",
        ),
        (
            Command::transfer("t1", "clearing", "r2", m("50"), "top_up"),
            "credit_account",
        ),
        (
            Command::transfer("t1", "rev", "r1", m("50"), "top_up"),
            "debit_account",
        ),
        (
            Command::transfer("t1", "clearing", "r1", m("50"), "gift"),
            "code",
        ),
        (
            Command::hold("t1", "clearing", "r1", m("50"), "top_up", None),
            "type",
        ),
    ] {
        let e = l.apply(&c2.unwrap(), t0()).unwrap_err();
        assert_eq!(
            e,
            LedgerError::IdConflict {
                id: k("t1"),
                field: field.into()
            }
        );
    }
    let with_ref = c.with_reference(k("order-1"));
    assert!(matches!(
        l.apply(&with_ref, t0()),
        Err(LedgerError::IdConflict { field, .. }) if field == "reference"
    ));
    assert_eq!(fingerprint(&l), before);
}

#[test]
fn rejected_commands_change_nothing_and_name_the_field() {
    let mut l = setup();
    top_up(&mut l, "t1", "r1", "10");
    let before = fingerprint(&l);
    let cases: Vec<(Command, LedgerError)> = vec![
        (
            Command::transfer("x1", "nope", "r1", m("1"), "c").unwrap(),
            LedgerError::AccountNotFound {
                field: "debit_account".into(),
                account: k("nope"),
            },
        ),
        (
            Command::transfer("x2", "r1", "nope", m("1"), "c").unwrap(),
            LedgerError::AccountNotFound {
                field: "credit_account".into(),
                account: k("nope"),
            },
        ),
        (
            Command::transfer("x3", "r1", "r1", m("1"), "c").unwrap(),
            LedgerError::SameAccount { account: k("r1") },
        ),
        (
            Command::transfer("x4", "r1", "rev", m("0"), "c").unwrap(),
            LedgerError::AmountNotPositive {
                field: "amount".into(),
                amount: m("0"),
            },
        ),
        (
            Command::transfer("x5", "r1", "rev", m("-1"), "c").unwrap(),
            LedgerError::AmountNotPositive {
                field: "amount".into(),
                amount: m("-1"),
            },
        ),
        (
            Command::transfer("x6", "r1", "rev", m("0.001"), "c").unwrap(),
            LedgerError::AmountNotMinorExact {
                field: "amount".into(),
                amount: m("0.001"),
                minor_units: 2,
            },
        ),
        (
            Command::transfer("x7", "r1", "rev", m("1 USD"), "c").unwrap(),
            LedgerError::CurrencyMismatch {
                field: "amount".into(),
                account: k("r1"),
                expected: Currency::CNY,
                got: "USD".parse().unwrap(),
            },
        ),
        (
            Command::transfer("x8", "r1", "rev", m("10.01"), "c").unwrap(),
            LedgerError::ExceedsCredits {
                account: k("r1"),
                available: m("10"),
                amount: m("10.01"),
            },
        ),
        (
            Command::hold("x9", "r1", "rev", m("1"), "c", Some(t0())).unwrap(),
            LedgerError::ExpiryNotInFuture {
                expires_at: t0(),
                now: t0(),
            },
        ),
        (
            Command::post("x10", "missing", None).unwrap(),
            LedgerError::PendingNotFound {
                pending_id: k("missing"),
            },
        ),
        (
            Command::void("x11", "t1").unwrap(),
            LedgerError::NotPending {
                pending_id: k("t1"),
            },
        ),
    ];
    for (c, want) in cases {
        assert_eq!(l.apply(&c, t0()).unwrap_err(), want);
        assert_eq!(fingerprint(&l), before, "{c:?} changed the ledger");
        assert!(l.transfer(&c.id()).is_none());
        assert!(!want.to_string().is_empty());
    }
    // time must not go backwards for new transfers
    let c = Command::transfer("late", "clearing", "r1", m("1"), "top_up").unwrap();
    assert!(matches!(
        l.apply(&c, t0() - Duration::seconds(1)),
        Err(LedgerError::TimestampRegressed { .. })
    ));
    assert_eq!(fingerprint(&l), before);
}

#[test]
fn error_json_is_tagged_and_names_field() {
    let e = LedgerError::AccountNotFound {
        field: "debit_account".into(),
        account: k("nope"),
    };
    let v = serde_json::to_value(&e).unwrap();
    assert_eq!(v["kind"], "account_not_found");
    assert_eq!(v["field"], "debit_account");
    assert_eq!(serde_json::from_value::<LedgerError>(v).unwrap(), e);
    assert!(e.to_string().contains("debit_account"));
}

#[test]
fn overdraft_allowed_without_flag_and_credit_limit_flag() {
    let mut l = setup();
    l.apply(
        &Command::transfer("o1", "r3", "rev", m("5"), "swap_fee").unwrap(),
        t0(),
    )
    .unwrap();
    assert_eq!(bal(&l, "r3"), m("-5"));
    // credits_must_not_exceed_debits: a receivable that can only be paid down
    let mut spec = NewAccount::new(k("recv"), AccountKind::Receivable);
    spec.flags.credits_must_not_exceed_debits = true;
    l.create_account(&spec, t0()).unwrap();
    l.apply(
        &Command::transfer("o2", "recv", "rev", m("3"), "fee").unwrap(),
        t0(),
    )
    .unwrap();
    let e = l
        .apply(
            &Command::transfer("o3", "clearing", "recv", m("4"), "pay").unwrap(),
            t0(),
        )
        .unwrap_err();
    assert_eq!(
        e,
        LedgerError::ExceedsDebits {
            account: k("recv"),
            available: m("3"),
            amount: m("4")
        }
    );
    l.apply(
        &Command::transfer("o4", "clearing", "recv", m("3"), "pay").unwrap(),
        t0(),
    )
    .unwrap();
    assert_eq!(bal(&l, "recv"), m("0"));
}

#[test]
fn account_creation_is_idempotent_and_checked() {
    let mut l = setup();
    let spec = NewAccount::new(k("r1"), AccountKind::RiderWallet).no_overdraft();
    assert_eq!(l.create_account(&spec, t0()).unwrap().id, k("r1"));
    assert_eq!(l.account_count(), 5);
    let e = l.create_account(&NewAccount::new(k("r1"), AccountKind::RiderWallet), t0());
    assert_eq!(
        e.unwrap_err(),
        LedgerError::AccountExists {
            account: k("r1"),
            field: "flags".into()
        }
    );
    let mut both = NewAccount::new(k("z"), AccountKind::Liability);
    both.flags = AccountFlags {
        debits_must_not_exceed_credits: true,
        credits_must_not_exceed_debits: true,
    };
    assert!(matches!(
        l.create_account(&both, t0()),
        Err(LedgerError::ConflictingFlags { .. })
    ));
    assert!(l.account(&k("z")).is_none());
    let usd = NewAccount::new(k("usd"), AccountKind::Liability).in_currency("USD".parse().unwrap());
    l.create_account(&usd, t0()).unwrap();
    let e = l
        .apply(
            &Command::transfer("u", "rev", "usd", m("1"), "fx").unwrap(),
            t0(),
        )
        .unwrap_err();
    assert!(matches!(e, LedgerError::CurrencyMismatch { field, .. } if field == "credit_account"));
}

#[test]
fn hold_post_in_part_releases_the_rest() {
    let mut l = setup();
    top_up(&mut l, "t1", "r1", "30");
    let exp = t0() + Duration::hours(4);
    let h = l
        .apply(
            &Command::hold("h1", "r1", "rev", m("20"), "charging", Some(exp)).unwrap(),
            t0(),
        )
        .unwrap();
    assert_eq!(
        h.phase,
        Phase::Pending {
            expires_at: Some(exp)
        }
    );
    let a = l.account(&k("r1")).unwrap();
    assert_eq!(a.debits_pending, m("20"));
    assert_eq!(a.available(), m("10"));
    assert_eq!(a.posted_balance(), m("30"));
    // the hold counts against the no-overdraft limit
    let e = l
        .apply(
            &Command::transfer("x", "r1", "rev", m("10.01"), "c").unwrap(),
            t0(),
        )
        .unwrap_err();
    assert!(matches!(e, LedgerError::ExceedsCredits { .. }));
    // post more than held is refused
    let e = l
        .apply(&Command::post("p1", "h1", Some(m("20.01"))).unwrap(), t0())
        .unwrap_err();
    assert!(matches!(e, LedgerError::ExceedsPending { .. }));
    let p = l
        .apply(
            &Command::post("p1", "h1", Some(m("12.34"))).unwrap(),
            t0() + Duration::hours(1),
        )
        .unwrap();
    assert_eq!(p.amount, m("12.34"));
    assert_eq!(p.code, k("charging"));
    assert_eq!(
        p.phase,
        Phase::PostPending {
            pending_id: k("h1")
        }
    );
    let a = l.account(&k("r1")).unwrap();
    assert!(a.debits_pending.is_zero());
    assert_eq!(a.posted_balance(), m("17.66"));
    assert_eq!(bal(&l, "rev"), m("12.34"));
    assert_eq!(
        l.pending_status(&k("h1")),
        Some(PendingStatus::Posted {
            by: k("p1"),
            amount: m("12.34")
        })
    );
    // a second post or a void of a closed hold is refused; replay of p1 is fine
    let e = l.apply(
        &Command::void("v1", "h1").unwrap(),
        t0() + Duration::hours(1),
    );
    assert_eq!(
        e.unwrap_err(),
        LedgerError::PendingClosed {
            pending_id: k("h1"),
            status: "posted".into()
        }
    );
    let replay = Command::post("p1", "h1", Some(m("12.34"))).unwrap();
    assert_eq!(l.apply(&replay, t0() + Duration::hours(2)).unwrap(), p);
    // the same id as a full post is a different request
    let full = Command::post("p1", "h1", None).unwrap();
    assert!(matches!(
        l.apply(&full, t0() + Duration::hours(2)),
        Err(LedgerError::IdConflict { field, .. }) if field == "amount"
    ));
    assert!(l.expire_pending(exp).unwrap().is_empty());
}

#[test]
fn void_and_expire_release_holds() {
    let mut l = setup();
    top_up(&mut l, "t1", "r1", "30");
    let exp = t0() + Duration::hours(1);
    l.apply(
        &Command::hold("h1", "r1", "rev", m("5"), "charging", None).unwrap(),
        t0(),
    )
    .unwrap();
    l.apply(
        &Command::hold("h2", "r1", "rev", m("7"), "charging", Some(exp)).unwrap(),
        t0(),
    )
    .unwrap();
    l.apply(
        &Command::hold(
            "h3",
            "r1",
            "rev",
            m("9"),
            "charging",
            Some(exp + Duration::hours(1)),
        )
        .unwrap(),
        t0(),
    )
    .unwrap();
    assert_eq!(l.open_holds().len(), 3);
    let v = l.apply(&Command::void("v1", "h1").unwrap(), t0()).unwrap();
    assert_eq!(v.amount, m("5"));
    assert_eq!(
        l.pending_status(&k("h1")),
        Some(PendingStatus::Voided { by: k("v1") })
    );
    // too early: nothing expires
    assert!(
        l.expire_pending(exp - Duration::seconds(1))
            .unwrap()
            .is_empty()
    );
    // posting at or after the deadline is refused even before the sweep
    let e = l
        .apply(&Command::post("p2", "h2", None).unwrap(), exp)
        .unwrap_err();
    assert!(matches!(e, LedgerError::PendingExpired { .. }));
    let x = l.expire_pending(exp).unwrap();
    assert_eq!(x.len(), 1);
    assert_eq!(x[0].pending_id, k("h2"));
    assert_eq!(x[0].amount, m("7"));
    assert_eq!(
        l.pending_status(&k("h2")),
        Some(PendingStatus::Expired { at: exp })
    );
    let e = l
        .apply(&Command::post("p2", "h2", None).unwrap(), exp)
        .unwrap_err();
    assert!(matches!(e, LedgerError::PendingClosed { status, .. } if status == "expired"));
    assert_eq!(l.account(&k("r1")).unwrap().debits_pending, m("9"));
    let x = l.expire_pending(exp + Duration::days(1)).unwrap();
    assert_eq!(x[0].pending_id, k("h3"));
    assert!(l.open_holds().is_empty());
    assert_eq!(l.expiries().len(), 2);
    let t = l.totals();
    assert_eq!((t.debits_pending, t.credits_pending), (0, 0));
    assert_eq!(bal(&l, "r1"), m("30"));
    assert!(matches!(
        l.expire_pending(t0()),
        Err(LedgerError::TimestampRegressed { .. })
    ));
}

#[test]
fn batch_is_atomic() {
    let mut l = setup();
    top_up(&mut l, "t1", "r1", "10");
    l.apply(
        &Command::hold(
            "h0",
            "r1",
            "rev",
            m("2"),
            "c",
            Some(t0() + Duration::hours(1)),
        )
        .unwrap(),
        t0(),
    )
    .unwrap();
    let before = fingerprint(&l);
    let batch = vec![
        Command::transfer("b1", "clearing", "r2", m("5"), "top_up").unwrap(),
        Command::hold(
            "b2",
            "r2",
            "rev",
            m("5"),
            "c",
            Some(t0() + Duration::hours(2)),
        )
        .unwrap(),
        Command::post("b3", "b2", Some(m("4"))).unwrap(),
        Command::void("b4", "h0").unwrap(),
        Command::transfer("b5", "r1", "rev", m("8"), "c").unwrap(),
        Command::transfer("b6", "r2", "rev", m("1.01"), "c").unwrap(), // only 1.00 left
    ];
    let e = l
        .apply_batch(&batch, t0() + Duration::minutes(1))
        .unwrap_err();
    match e {
        LedgerError::BatchFailed { index, error } => {
            assert_eq!(index, 5);
            assert!(matches!(*error, LedgerError::ExceedsCredits { .. }));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(fingerprint(&l), before);
    assert_eq!(l.last_timestamp(), Some(t0()));
    assert_eq!(l.pending_status(&k("h0")), Some(PendingStatus::Open));
    // the deadline of h0 survived the rollback
    let mut l2 = l.clone();
    assert_eq!(
        l2.expire_pending(t0() + Duration::hours(1)).unwrap().len(),
        1
    );
    // fix the last command and the batch applies
    let mut ok = batch.clone();
    ok[5] = Command::transfer("b6", "r2", "rev", m("1"), "c").unwrap();
    let out = l.apply_batch(&ok, t0() + Duration::minutes(1)).unwrap();
    assert_eq!(out.len(), 6);
    assert_eq!(bal(&l, "r2"), m("0"));
    assert_eq!(bal(&l, "r1"), m("2"));
    // replaying the whole batch is a no-op
    let snap = fingerprint(&l);
    assert_eq!(
        l.apply_batch(&ok, t0() + Duration::minutes(2)).unwrap(),
        out
    );
    assert_eq!(fingerprint(&l), snap);
}

#[test]
fn statement_over_a_period() {
    let mut l = setup();
    let d = |days: i64, h: i64| t0() + Duration::days(days) + Duration::hours(h);
    l.apply(
        &Command::transfer("a", "clearing", "r1", m("10"), "top_up").unwrap(),
        d(0, 0),
    )
    .unwrap();
    l.apply(
        &Command::transfer("b", "r1", "rev", m("3"), "swap_fee")
            .unwrap()
            .with_reference(k("o1")),
        d(1, 0),
    )
    .unwrap();
    l.apply(
        &Command::hold("h", "r1", "rev", m("4"), "charging", None).unwrap(),
        d(1, 1),
    )
    .unwrap();
    l.apply(&Command::post("p", "h", Some(m("2.5"))).unwrap(), d(1, 2))
        .unwrap();
    l.apply(
        &Command::transfer("c", "clearing", "r1", m("1"), "top_up").unwrap(),
        d(2, 0),
    )
    .unwrap();
    let s = l.statement(&k("r1"), d(1, 0), d(2, 0)).unwrap();
    assert_eq!(s.opening, m("10"));
    assert_eq!(s.lines.len(), 2);
    assert_eq!(s.lines[0].transfer_id, k("b"));
    assert_eq!(s.lines[0].side, Side::Debit);
    assert_eq!(s.lines[0].counterparty, k("rev"));
    assert_eq!(s.lines[0].reference, Some(k("o1")));
    assert_eq!(s.lines[0].balance, m("7"));
    assert_eq!(s.lines[1].amount, m("2.5"));
    assert_eq!(s.lines[1].balance, m("4.5"));
    assert_eq!(s.total_debits, m("5.5"));
    assert_eq!(s.total_credits, m("0"));
    assert_eq!(s.closing, m("4.5"));
    // debit-normal account: clearing grows on debits
    let s = l.statement(&k("clearing"), d(0, 0), d(3, 0)).unwrap();
    assert_eq!(s.opening, m("0"));
    assert_eq!(s.closing, m("11"));
    assert!(matches!(
        l.statement(&k("nope"), d(0, 0), d(1, 0)),
        Err(LedgerError::AccountNotFound { field, .. }) if field == "account"
    ));
    assert!(matches!(
        l.statement(&k("r1"), d(1, 0), d(0, 0)),
        Err(LedgerError::InvalidPeriod { .. })
    ));
    // an empty period: opening == closing, no lines
    let s = l.statement(&k("r1"), d(1, 1), d(1, 1)).unwrap();
    assert!(s.lines.is_empty());
    assert_eq!(s.opening, s.closing);
    assert_eq!(s.opening, m("7"));
}

#[test]
fn serde_round_trip_replays_history() {
    let mut l = setup();
    top_up(&mut l, "t1", "r1", "30");
    let exp = t0() + Duration::hours(1);
    l.apply(
        &Command::hold("h1", "r1", "rev", m("5"), "c", Some(exp)).unwrap(),
        t0(),
    )
    .unwrap();
    l.apply(
        &Command::hold("h2", "r1", "rev", m("6"), "c", None).unwrap(),
        t0(),
    )
    .unwrap();
    l.apply(&Command::post("p2", "h2", Some(m("1"))).unwrap(), t0())
        .unwrap();
    l.expire_pending(exp).unwrap();
    l.apply(
        &Command::transfer("t2", "r1", "rev", m("29"), "c").unwrap(),
        exp,
    )
    .unwrap();
    let js = serde_json::to_string(&l).unwrap();
    let back: Ledger = serde_json::from_str(&js).unwrap();
    assert_eq!(fingerprint(&back), fingerprint(&l));
    assert_eq!(
        back.pending_status(&k("h1")),
        Some(PendingStatus::Expired { at: exp })
    );
    // tampering is refused
    let tampered = js.replace("\"29.00\"", "\"31.00\"");
    assert!(serde_json::from_str::<Ledger>(&tampered).is_err());
    let v: serde_json::Value = serde_json::from_str(&js).unwrap();
    assert!(v["transfers"].is_array());
    // postcard too
    let bytes = postcard::to_allocvec(&l).unwrap();
    let back: Ledger = postcard::from_bytes(&bytes).unwrap();
    assert_eq!(fingerprint(&back), fingerprint(&l));
}

#[test]
fn command_json_shape() {
    let c: Command = serde_json::from_str(
        r#"{"type":"transfer","id":"t1","debit_account":"clearing","credit_account":"r1","amount":"50.00","code":"top_up"}"#,
    )
    .unwrap();
    assert_eq!(
        c,
        Command::transfer("t1", "clearing", "r1", m("50"), "top_up").unwrap()
    );
    let c: Command = serde_json::from_str(r#"{"type":"post","id":"p","pending_id":"h"}"#).unwrap();
    assert_eq!(c, Command::post("p", "h", None).unwrap());
    assert!(serde_json::from_str::<Command>(r#"{"type":"post","id":"p"}"#).is_err());
}

// ----- property: random command sequences -----------------------------------

#[derive(Debug, Clone)]
enum Op {
    Transfer(usize, usize, i64),
    Hold(usize, usize, i64, Option<i64>),
    Post(usize, Option<i64>),
    Void(usize),
    Expire(i64),
    Replay(usize),
    Batch(Vec<(usize, usize, i64)>),
}

const ACCTS: [&str; 5] = ["clearing", "rev", "r1", "r2", "r3"];

fn arb_op() -> impl Strategy<Value = Op> {
    let a = 0usize..5;
    prop_oneof![
        3 => (a.clone(), a.clone(), -100i64..3000).prop_map(|(x, y, n)| Op::Transfer(x, y, n)),
        2 => (a.clone(), a.clone(), 1i64..2000, prop::option::of(-5i64..50)).prop_map(|(x, y, n, e)| Op::Hold(x, y, n, e)),
        2 => (0usize..40, prop::option::of(0i64..2500)).prop_map(|(h, n)| Op::Post(h, n)),
        1 => (0usize..40).prop_map(Op::Void),
        1 => (0i64..60).prop_map(Op::Expire),
        1 => (0usize..60).prop_map(Op::Replay),
        1 => prop::collection::vec((a.clone(), a, 1i64..1500), 1..4).prop_map(Op::Batch),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]
    #[test]
    fn random_sequences_keep_the_books_balanced(ops in prop::collection::vec(arb_op(), 1..60)) {
        let mut l = setup();
        let mut now = t0();
        let mut issued: Vec<Command> = Vec::new();
        let mut holds: Vec<Key> = Vec::new();
        for (n, op) in ops.iter().enumerate() {
            now += Duration::minutes(1);
            let id = format!("c{n}");
            let before = fingerprint(&l);
            let cmd = match op {
                Op::Transfer(x, y, a) => Some(Command::transfer(&id, ACCTS[*x], ACCTS[*y], Money::from_minor(*a, Currency::CNY), "t").unwrap()),
                Op::Hold(x, y, a, e) => Some(Command::hold(&id, ACCTS[*x], ACCTS[*y], Money::from_minor(*a, Currency::CNY), "h", e.map(|m| now + Duration::minutes(m))).unwrap()),
                Op::Post(h, a) => holds.get(*h).map(|h| Command::post(&id, h.as_str(), a.map(|a| Money::from_minor(a, Currency::CNY))).unwrap()),
                Op::Void(h) => holds.get(*h).map(|h| Command::void(&id, h.as_str()).unwrap()),
                Op::Replay(i) => issued.get(*i).copied(),
                Op::Expire(m) => {
                    let x = l.expire_pending(now + Duration::minutes(*m)).unwrap();
                    now += Duration::minutes(*m);
                    for e in x { let expired = matches!(l.pending_status(&e.pending_id), Some(PendingStatus::Expired { .. })); prop_assert!(expired); }
                    None
                }
                Op::Batch(v) => {
                    let cmds: Vec<Command> = v.iter().enumerate().map(|(j, (x, y, a))| Command::transfer(&format!("{id}.{j}"), ACCTS[*x], ACCTS[*y], Money::from_minor(*a, Currency::CNY), "b").unwrap()).collect();
                    match l.apply_batch(&cmds, now) {
                        Ok(ts) => prop_assert_eq!(ts.len(), cmds.len()),
                        Err(_) => prop_assert_eq!(fingerprint(&l), before.clone()),
                    }
                    None
                }
            };
            if let Some(c) = cmd {
                let replay = matches!(op, Op::Replay(_));
                match l.apply(&c, now) {
                    Ok(t) => {
                        if replay { prop_assert_eq!(fingerprint(&l), before.clone()); }
                        else {
                            issued.push(c);
                            if matches!(t.phase, Phase::Pending { .. }) { holds.push(t.id); }
                        }
                        // applying again is always a no-op with the same answer
                        let again = l.apply(&c, now).unwrap();
                        prop_assert_eq!(again, t);
                    }
                    Err(_) => prop_assert_eq!(fingerprint(&l), before.clone()),
                }
            }
            let t = l.totals();
            prop_assert_eq!(t.debits_posted, t.credits_posted);
            prop_assert_eq!(t.debits_pending, t.credits_pending);
            for r in ["r1", "r2"] {
                let a = l.account(&k(r)).unwrap();
                prop_assert!(!a.available().is_negative(), "{} went negative: {:?}", r, a);
            }
        }
        // the state survives a serde round trip
        let back: Ledger = serde_json::from_str(&serde_json::to_string(&l).unwrap()).unwrap();
        prop_assert_eq!(fingerprint(&back), fingerprint(&l));
    }
}
