use super::*;
use chrono::{Duration, TimeZone, Utc};

fn k(s: &str) -> Key {
    Key::new(s).unwrap()
}
fn m(s: &str) -> Money {
    s.parse().unwrap()
}
fn t0() -> Timestamp {
    Utc.with_ymd_and_hms(2024, 5, 1, 8, 0, 0).unwrap()
}

struct World {
    l: Ledger,
    d: Deposits,
    n: u32,
}

impl World {
    fn new() -> World {
        let mut l = Ledger::new();
        let d = Deposits::new(DepositConfig::standard());
        d.create_platform_accounts(&mut l, t0()).unwrap();
        l.create_account(&NewAccount::new(k("zhima"), AccountKind::CreditLine), t0())
            .unwrap();
        World { l, d, n: 0 }
    }
    fn run(&mut self, op: DepositOp) -> core::result::Result<DepositReceipt, DepositError> {
        self.n += 1;
        let id = k(&format!("op{}", self.n));
        self.d.apply(id, &op, &mut self.l, t0())
    }
    fn ok(&mut self, op: DepositOp) -> DepositReceipt {
        self.run(op).unwrap()
    }
    fn held(&self) -> Money {
        let v: i64 = self
            .l
            .accounts()
            .filter(|a| a.kind == AccountKind::DepositHeld)
            .map(|a| a.posted_balance().to_minor().unwrap())
            .sum();
        Money::from_minor(v, Currency::CNY)
    }
    fn waived(&self) -> Money {
        let v: i64 = self
            .l
            .accounts()
            .filter(|a| a.kind == AccountKind::CreditHold)
            .map(|a| a.credits_pending.to_minor().unwrap())
            .sum();
        Money::from_minor(v, Currency::CNY)
    }
    fn check(&self) {
        let r = self.d.reconcile(&self.l);
        assert!(r.agrees, "{r:?}");
        assert_eq!(r.held_balance, self.held());
        assert_eq!(self.d.outstanding(), self.held());
        assert_eq!(self.d.waived_outstanding(), self.waived());
        let t = self.l.totals();
        assert_eq!(t.debits_posted, t.credits_posted);
        assert_eq!(t.debits_pending, t.credits_pending);
    }
    fn status(&self, d: &str) -> DepositStatus {
        self.d.deposit(&k(d)).unwrap().status
    }
}

fn pay(d: &str, amount: &str) -> DepositOp {
    DepositOp::Pay {
        deposit: k(d),
        rider: k("r1"),
        amount: m(amount),
    }
}

#[test]
fn paid_deposit_full_life() {
    let mut w = World::new();
    let r = w.ok(pay("D1", "300"));
    assert_eq!(r.transfers[0].debit_account, k("platform:clearing"));
    assert_eq!(r.transfers[0].credit_account, k("r1:deposit"));
    assert_eq!(r.transfers[0].code, k("deposit_pay"));
    assert_eq!(w.d.outstanding(), m("300"));
    w.check();
    w.ok(DepositOp::StartRental {
        deposit: k("D1"),
        rental: k("R1"),
    });
    assert_eq!(w.status("D1"), DepositStatus::Rented);
    // no refund while a battery is out
    let e = w
        .run(DepositOp::ApplyRefund { deposit: k("D1") })
        .unwrap_err();
    assert!(matches!(
        e,
        DepositError::WrongState {
            state: DepositStatus::Rented,
            ..
        }
    ));
    w.ok(DepositOp::Deduct {
        deposit: k("D1"),
        amount: m("45.50"),
        reason: DeductReason::Damage,
    });
    w.check();
    assert_eq!(w.d.outstanding(), m("254.50"));
    w.ok(DepositOp::EndRental { deposit: k("D1") });
    w.ok(DepositOp::ApplyRefund { deposit: k("D1") });
    // reject → held again, then apply again and approve
    w.ok(DepositOp::ReviewRefund {
        deposit: k("D1"),
        approve: false,
    });
    assert_eq!(w.status("D1"), DepositStatus::Held);
    w.ok(DepositOp::ApplyRefund { deposit: k("D1") });
    // unpaid fees found during review
    w.ok(DepositOp::Deduct {
        deposit: k("D1"),
        amount: m("4.50"),
        reason: DeductReason::UnpaidFees,
    });
    let r = w.ok(DepositOp::ReviewRefund {
        deposit: k("D1"),
        approve: true,
    });
    assert_eq!(r.transfers[0].amount, m("250"));
    assert_eq!(r.transfers[0].credit_account, k("platform:refunds_payable"));
    assert_eq!(w.status("D1"), DepositStatus::RefundApproved);
    assert!(w.d.outstanding().is_zero());
    w.check();
    let r = w.ok(DepositOp::ConfirmRefund { deposit: k("D1") });
    assert_eq!(r.transfers[0].credit_account, k("platform:clearing"));
    assert_eq!(w.status("D1"), DepositStatus::Refunded);
    assert!(
        w.l.account(&k("platform:refunds_payable"))
            .unwrap()
            .posted_balance()
            .is_zero()
    );
    // clearing: +300 in, −250 out = 50 net; revenue 50
    assert_eq!(
        w.l.account(&k("platform:clearing"))
            .unwrap()
            .posted_balance(),
        m("50")
    );
    assert_eq!(
        w.l.account(&k("platform:revenue"))
            .unwrap()
            .posted_balance(),
        m("50")
    );
    w.check();
    // a finished deposit accepts nothing more
    let e = w
        .run(DepositOp::StartRental {
            deposit: k("D1"),
            rental: k("R2"),
        })
        .unwrap_err();
    assert!(matches!(e, DepositError::WrongState { .. }));
}

#[test]
fn deductions_never_exceed_the_deposit() {
    let mut w = World::new();
    w.ok(pay("D1", "100"));
    let e = w
        .run(DepositOp::Deduct {
            deposit: k("D1"),
            amount: m("100.01"),
            reason: DeductReason::Loss,
        })
        .unwrap_err();
    assert_eq!(
        e,
        DepositError::ExceedsRemaining {
            deposit: k("D1"),
            remaining: m("100"),
            requested: m("100.01")
        }
    );
    w.ok(DepositOp::Deduct {
        deposit: k("D1"),
        amount: m("100"),
        reason: DeductReason::Loss,
    });
    assert!(w.d.outstanding().is_zero());
    // nothing left: no rental, no refund
    assert!(
        w.run(DepositOp::StartRental {
            deposit: k("D1"),
            rental: k("R1")
        })
        .is_err()
    );
    assert!(w.run(DepositOp::ApplyRefund { deposit: k("D1") }).is_err());
    w.check();
}

#[test]
fn waiver_released_at_return() {
    let mut w = World::new();
    let r = w.ok(DepositOp::Waive {
        deposit: k("W1"),
        rider: k("r1"),
        amount: m("500"),
        credit_line: k("zhima"),
        expires_at: None,
    });
    assert!(matches!(
        r.transfers[0].phase,
        crate::ledger::Phase::Pending { .. }
    ));
    assert_eq!(w.d.waived_outstanding(), m("500"));
    assert!(w.d.outstanding().is_zero());
    w.check();
    w.ok(DepositOp::StartRental {
        deposit: k("W1"),
        rental: k("R1"),
    });
    let r = w.ok(DepositOp::EndRental { deposit: k("W1") });
    assert!(matches!(
        r.transfers[0].phase,
        crate::ledger::Phase::VoidPending { .. }
    ));
    assert_eq!(w.status("W1"), DepositStatus::Released);
    assert!(w.d.waived_outstanding().is_zero());
    // no money moved at all
    assert_eq!(w.l.totals().debits_posted, 0);
    w.check();
    let e = w
        .run(DepositOp::ApplyRefund { deposit: k("W1") })
        .unwrap_err();
    assert!(matches!(e, DepositError::WrongKind { .. }));
}

#[test]
fn waiver_captured_on_loss() {
    let mut w = World::new();
    w.ok(DepositOp::Waive {
        deposit: k("W1"),
        rider: k("r1"),
        amount: m("500"),
        credit_line: k("zhima"),
        expires_at: Some(t0() + Duration::days(30)),
    });
    w.ok(DepositOp::StartRental {
        deposit: k("W1"),
        rental: k("R1"),
    });
    let e = w
        .run(DepositOp::Deduct {
            deposit: k("W1"),
            amount: m("500.01"),
            reason: DeductReason::Loss,
        })
        .unwrap_err();
    assert!(matches!(e, DepositError::ExceedsRemaining { .. }));
    let r = w.ok(DepositOp::Deduct {
        deposit: k("W1"),
        amount: m("420"),
        reason: DeductReason::Loss,
    });
    assert_eq!(r.transfers.len(), 2);
    assert_eq!(r.transfers[0].id, k("op4.capture"));
    assert_eq!(r.transfers[1].code, k("deposit_loss"));
    assert_eq!(w.status("W1"), DepositStatus::Captured);
    // the provider owes ¥420 (credit line debited), revenue got ¥420, the rest of the hold is released
    assert_eq!(w.l.account(&k("zhima")).unwrap().posted_balance(), m("420"));
    assert_eq!(
        w.l.account(&k("platform:revenue"))
            .unwrap()
            .posted_balance(),
        m("420")
    );
    let c = w.l.account(&k("r1:credit")).unwrap();
    assert!(c.posted_balance().is_zero() && c.credits_pending.is_zero());
    w.check();
}

#[test]
fn waiver_lapses() {
    let mut w = World::new();
    let exp = t0() + Duration::days(30);
    w.ok(DepositOp::Waive {
        deposit: k("W1"),
        rider: k("r1"),
        amount: m("500"),
        credit_line: k("zhima"),
        expires_at: Some(exp),
    });
    w.l.expire_pending(exp).unwrap();
    // until the deposits hear of it, the books disagree
    assert!(!w.d.reconcile(&w.l).agrees);
    let lapsed = w.d.sync_expired(&w.l);
    assert_eq!(lapsed.len(), 1);
    assert_eq!(w.status("W1"), DepositStatus::Lapsed);
    w.check();
}

#[test]
fn refused_ops_change_nothing_and_replays_are_no_ops() {
    let mut w = World::new();
    let before = (
        w.d.clone(),
        serde_json::to_string(&w.l).unwrap(),
        w.l.account_count(),
    );
    // unknown credit line: the rider's credit account is not left behind
    let e = w
        .run(DepositOp::Waive {
            deposit: k("W1"),
            rider: k("r1"),
            amount: m("5"),
            credit_line: k("nope"),
            expires_at: None,
        })
        .unwrap_err();
    assert!(matches!(e, DepositError::Ledger { .. }));
    assert_eq!(
        (
            w.d.clone(),
            serde_json::to_string(&w.l).unwrap(),
            w.l.account_count()
        ),
        before
    );
    assert!(w.l.account(&k("r1:credit")).is_none());
    for a in ["0", "-5", "0.001", "5 USD"] {
        let e = w.run(pay("D1", a)).unwrap_err();
        assert!(matches!(e, DepositError::InvalidAmount { .. }), "{a}");
    }
    assert!(matches!(
        w.run(DepositOp::EndRental { deposit: k("D9") }),
        Err(DepositError::DepositNotFound { .. })
    ));
    assert_eq!(
        (w.d.clone(), serde_json::to_string(&w.l).unwrap()),
        (before.0.clone(), before.1.clone())
    );
    // replay
    let op = pay("D1", "300");
    let r1 = w.d.apply(k("P1"), &op, &mut w.l, t0()).unwrap();
    let snap = (w.d.clone(), serde_json::to_string(&w.l).unwrap());
    assert_eq!(w.d.apply(k("P1"), &op, &mut w.l, t0()).unwrap(), r1);
    assert_eq!((w.d.clone(), serde_json::to_string(&w.l).unwrap()), snap);
    assert_eq!(
        w.d.apply(k("P1"), &pay("D1", "301"), &mut w.l, t0())
            .unwrap_err(),
        DepositError::OpConflict { op_id: k("P1") }
    );
    assert_eq!(
        w.d.apply(k("P2"), &op, &mut w.l, t0()).unwrap_err(),
        DepositError::DepositExists { deposit: k("D1") }
    );
    // serde
    let back: Deposits = serde_json::from_str(&serde_json::to_string(&w.d).unwrap()).unwrap();
    assert_eq!(back, w.d);
    let e = serde_json::to_value(DepositError::DepositNotFound { deposit: k("x") }).unwrap();
    assert_eq!(e["kind"], "deposit_not_found");
}
