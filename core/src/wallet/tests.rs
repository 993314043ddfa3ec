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
    w: Wallets,
    n: u32,
}

impl World {
    fn new(order: SpendOrder) -> World {
        let mut l = Ledger::new();
        let mut cfg = WalletConfig::standard();
        cfg.spend_order = order;
        let w = Wallets::new(cfg);
        w.create_platform_accounts(&mut l, t0()).unwrap();
        l.create_account(
            &NewAccount::new(k("platform:revenue"), AccountKind::PlatformRevenue),
            t0(),
        )
        .unwrap();
        l.create_account(
            &NewAccount::new(k("pkg"), AccountKind::PackageLiability).no_overdraft(),
            t0(),
        )
        .unwrap();
        let mut me = World { l, w, n: 0 };
        me.ok(
            WalletOp::Open {
                rider: k("r1"),
                allow_negative: false,
            },
            t0(),
        );
        me.ok(
            WalletOp::Open {
                rider: k("r2"),
                allow_negative: true,
            },
            t0(),
        );
        me
    }
    fn next_id(&mut self) -> Key {
        self.n += 1;
        k(&format!("op{}", self.n))
    }
    fn run(
        &mut self,
        op: WalletOp,
        now: Timestamp,
    ) -> core::result::Result<WalletReceipt, WalletError> {
        let id = self.next_id();
        self.w.apply(id, &op, &mut self.l, now)
    }
    fn ok(&mut self, op: WalletOp, now: Timestamp) -> WalletReceipt {
        self.run(op, now).unwrap()
    }
    fn bal(&self, r: &str, now: Timestamp) -> (Money, Money) {
        let b = self.w.balance(&k(r), &self.l, now).unwrap();
        (b.paid, b.gift)
    }
    fn pay(
        &mut self,
        order: &str,
        amount: &str,
        now: Timestamp,
    ) -> core::result::Result<WalletReceipt, WalletError> {
        self.run(
            WalletOp::Pay {
                rider: k("r1"),
                order: k(order),
                amount: m(amount),
                credit_account: k("platform:revenue"),
                code: k("swap_fee"),
                source: PaymentSource::Wallet,
            },
            now,
        )
    }
    fn balanced(&self) {
        let t = self.l.totals();
        assert_eq!(t.debits_posted, t.credits_posted);
        assert_eq!(t.debits_pending, t.credits_pending);
    }
}

#[test]
fn open_creates_accounts_and_is_idempotent() {
    let mut w = World::new(SpendOrder::GiftFirst);
    let a = w.l.account(&k("r1:wallet")).unwrap();
    assert_eq!(a.kind, AccountKind::RiderWallet);
    assert!(a.flags.debits_must_not_exceed_credits);
    assert_eq!(a.owner, Some(k("r1")));
    assert!(
        !w.l.account(&k("r2:wallet"))
            .unwrap()
            .flags
            .debits_must_not_exceed_credits
    );
    assert!(
        w.l.account(&k("r1:gift"))
            .unwrap()
            .flags
            .debits_must_not_exceed_credits
    );
    w.ok(
        WalletOp::Open {
            rider: k("r1"),
            allow_negative: false,
        },
        t0(),
    );
    let e = w.run(
        WalletOp::Open {
            rider: k("r1"),
            allow_negative: true,
        },
        t0(),
    );
    assert!(matches!(e, Err(WalletError::RiderExists { .. })));
    let long = "r".repeat(42);
    let e = w.run(
        WalletOp::Open {
            rider: k(&long),
            allow_negative: false,
        },
        t0(),
    );
    assert!(
        matches!(e, Err(WalletError::Ledger { error: LedgerError::InvalidKey { field, .. } }) if field == "rider")
    );
}

#[test]
fn top_up_gift_and_gift_first_payment() {
    let mut w = World::new(SpendOrder::GiftFirst);
    w.ok(
        WalletOp::TopUp {
            rider: k("r1"),
            amount: m("20"),
        },
        t0(),
    );
    w.ok(
        WalletOp::GrantGift {
            rider: k("r1"),
            amount: m("3"),
            expires_at: t0() + Duration::days(2),
        },
        t0(),
    );
    w.ok(
        WalletOp::GrantGift {
            rider: k("r1"),
            amount: m("4"),
            expires_at: t0() + Duration::days(1),
        },
        t0(),
    );
    assert_eq!(w.bal("r1", t0()), (m("20"), m("7")));
    let r = w.pay("o1", "5", t0()).unwrap();
    // gift first, earliest-expiring lot (the ¥4 one) first: 4 + 1 from gift, nothing paid
    assert_eq!(r.transfers.len(), 1);
    assert_eq!(r.transfers[0].id, k("op6.gift"));
    assert_eq!(r.transfers[0].amount, m("5"));
    assert_eq!(w.bal("r1", t0()), (m("20"), m("2")));
    let lots = &w.w.rider(&k("r1")).unwrap().lots;
    assert_eq!(lots.len(), 1);
    assert_eq!(lots[0].remaining, m("2"));
    let r = w.pay("o2", "6", t0()).unwrap();
    assert_eq!(r.transfers.len(), 2);
    assert_eq!(r.transfers[1].id, k("op7.paid"));
    assert_eq!(r.transfers[1].amount, m("4"));
    assert_eq!(w.bal("r1", t0()), (m("16"), m("0")));
    let o = w.w.order(&k("o2")).unwrap();
    assert_eq!((o.from_gift, o.from_paid), (m("2"), m("4")));
    assert_eq!(
        w.l.account(&k("platform:revenue"))
            .unwrap()
            .posted_balance(),
        m("11")
    );
    w.balanced();
}

#[test]
fn paid_first_payment() {
    let mut w = World::new(SpendOrder::PaidFirst);
    w.ok(
        WalletOp::TopUp {
            rider: k("r1"),
            amount: m("3"),
        },
        t0(),
    );
    w.ok(
        WalletOp::GrantGift {
            rider: k("r1"),
            amount: m("5"),
            expires_at: t0() + Duration::days(2),
        },
        t0(),
    );
    w.pay("o1", "2", t0()).unwrap();
    assert_eq!(w.bal("r1", t0()), (m("1"), m("5")));
    let r = w.pay("o2", "4", t0()).unwrap();
    assert_eq!(r.transfers.len(), 2);
    assert_eq!(w.bal("r1", t0()), (m("0"), m("2")));
    let o = w.w.order(&k("o2")).unwrap();
    assert_eq!((o.from_gift, o.from_paid), (m("3"), m("1")));
}

#[test]
fn insufficient_funds_changes_nothing() {
    let mut w = World::new(SpendOrder::GiftFirst);
    w.ok(
        WalletOp::TopUp {
            rider: k("r1"),
            amount: m("2"),
        },
        t0(),
    );
    w.ok(
        WalletOp::GrantGift {
            rider: k("r1"),
            amount: m("1"),
            expires_at: t0() + Duration::days(2),
        },
        t0(),
    );
    let before = (w.w.clone(), serde_json::to_string(&w.l).unwrap());
    let e = w.pay("o1", "3.01", t0()).unwrap_err();
    assert_eq!(
        e,
        WalletError::InsufficientFunds {
            field: "amount".into(),
            rider: k("r1"),
            needed: m("3.01"),
            available: m("3")
        }
    );
    assert_eq!((w.w.clone(), serde_json::to_string(&w.l).unwrap()), before);
    // rider r2 may go negative
    w.run(
        WalletOp::Pay {
            rider: k("r2"),
            order: k("o2"),
            amount: m("9"),
            credit_account: k("platform:revenue"),
            code: k("swap_fee"),
            source: PaymentSource::Wallet,
        },
        t0(),
    )
    .unwrap();
    assert_eq!(w.bal("r2", t0()).0, m("-9"));
    // bad amounts
    for a in ["0", "-1", "0.001", "1 USD"] {
        let e = w.pay("o3", a, t0()).unwrap_err();
        assert!(
            matches!(e, WalletError::InvalidAmount { ref field, .. } if field == "amount"),
            "{a}: {e:?}"
        );
    }
    assert!(matches!(
        w.run(
            WalletOp::TopUp {
                rider: k("nobody"),
                amount: m("1")
            },
            t0()
        ),
        Err(WalletError::RiderNotFound { .. })
    ));
}

#[test]
fn ops_are_idempotent_by_op_id() {
    let mut w = World::new(SpendOrder::GiftFirst);
    let op = WalletOp::TopUp {
        rider: k("r1"),
        amount: m("20"),
    };
    let r1 = w.w.apply(k("T1"), &op, &mut w.l, t0()).unwrap();
    let snap = (w.w.clone(), serde_json::to_string(&w.l).unwrap());
    let r2 =
        w.w.apply(k("T1"), &op, &mut w.l, t0() + Duration::hours(1))
            .unwrap();
    assert_eq!(r1, r2);
    assert_eq!((w.w.clone(), serde_json::to_string(&w.l).unwrap()), snap);
    let other = WalletOp::TopUp {
        rider: k("r1"),
        amount: m("21"),
    };
    assert_eq!(
        w.w.apply(k("T1"), &other, &mut w.l, t0()).unwrap_err(),
        WalletError::OpConflict { op_id: k("T1") }
    );
    // paying an order twice under different op ids is refused
    w.pay("o1", "1", t0()).unwrap();
    assert_eq!(
        w.pay("o1", "1", t0()).unwrap_err(),
        WalletError::OrderExists { order: k("o1") }
    );
    // an op id too long for its leg ids is refused up front
    let long = k(&"x".repeat(41));
    assert!(matches!(
        w.w.apply(long, &op, &mut w.l, t0()),
        Err(WalletError::Ledger {
            error: LedgerError::InvalidKey { .. }
        })
    ));
}

#[test]
fn gift_expiry_returns_to_promotion() {
    let mut w = World::new(SpendOrder::GiftFirst);
    let exp = t0() + Duration::days(1);
    w.ok(
        WalletOp::GrantGift {
            rider: k("r1"),
            amount: m("5"),
            expires_at: exp,
        },
        t0(),
    );
    assert_eq!(w.bal("r1", exp - Duration::seconds(1)).1, m("5"));
    // at the deadline it is no longer usable, even before the sweep
    let b = w.w.balance(&k("r1"), &w.l, exp).unwrap();
    assert_eq!((b.gift, b.gift_lapsed), (m("0"), m("5")));
    assert!(matches!(
        w.pay("o1", "1", exp),
        Err(WalletError::InsufficientFunds { .. })
    ));
    let t = w.w.expire_gifts(&mut w.l, exp).unwrap();
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].id, k("op3.expired"));
    assert_eq!(t[0].code, k("gift_expire"));
    assert!(w.w.expire_gifts(&mut w.l, exp).unwrap().is_empty());
    assert_eq!(w.l.account(&k("r1:gift")).unwrap().posted_balance(), m("0"));
    assert_eq!(
        w.l.account(&k("platform:promotion"))
            .unwrap()
            .posted_balance(),
        m("0")
    );
    let e = w.run(
        WalletOp::GrantGift {
            rider: k("r1"),
            amount: m("5"),
            expires_at: exp,
        },
        exp,
    );
    assert!(matches!(e, Err(WalletError::NotInFuture { .. })));
    w.balanced();
}

#[test]
fn refunds_gift_first_to_wallet_or_channel_never_more_than_paid() {
    let mut w = World::new(SpendOrder::GiftFirst);
    let exp = t0() + Duration::days(1);
    w.ok(
        WalletOp::TopUp {
            rider: k("r1"),
            amount: m("20"),
        },
        t0(),
    );
    w.ok(
        WalletOp::GrantGift {
            rider: k("r1"),
            amount: m("3"),
            expires_at: exp,
        },
        t0(),
    );
    w.pay("o1", "10", t0()).unwrap(); // 3 gift + 7 paid
    assert_eq!(w.bal("r1", t0()), (m("13"), m("0")));
    // ¥4 refund: ¥3 back to gift (same lot, same expiry), ¥1 paid to the wallet
    let r = w.ok(
        WalletOp::Refund {
            order: k("o1"),
            amount: m("4"),
            destination: RefundDestination::Wallet,
        },
        t0(),
    );
    assert_eq!(
        r.transfers
            .iter()
            .map(|t| (t.id.to_string(), t.amount))
            .collect::<Vec<_>>(),
        vec![("op6.gift".into(), m("3")), ("op6.paid".into(), m("1"))]
    );
    assert_eq!(w.bal("r1", t0()), (m("14"), m("3")));
    assert_eq!(w.w.rider(&k("r1")).unwrap().lots[0].expires_at, exp);
    // the rest (¥6) to the channel: refunds payable
    let e = w.run(
        WalletOp::Refund {
            order: k("o1"),
            amount: m("6.01"),
            destination: RefundDestination::OriginalChannel,
        },
        t0(),
    );
    assert_eq!(
        e.unwrap_err(),
        WalletError::RefundExceedsPaid {
            order: k("o1"),
            refundable: m("6"),
            requested: m("6.01")
        }
    );
    w.ok(
        WalletOp::Refund {
            order: k("o1"),
            amount: m("6"),
            destination: RefundDestination::OriginalChannel,
        },
        t0(),
    );
    assert_eq!(
        w.l.account(&k("platform:refunds_payable"))
            .unwrap()
            .posted_balance(),
        m("6")
    );
    assert_eq!(w.w.order(&k("o1")).unwrap().refundable(), m("0"));
    assert!(matches!(
        w.run(
            WalletOp::Refund {
                order: k("o1"),
                amount: m("0.01"),
                destination: RefundDestination::Wallet
            },
            t0()
        ),
        Err(WalletError::RefundExceedsPaid { .. })
    ));
    // payout of refunds payable, never more than owed
    assert!(w.run(WalletOp::Payout { amount: m("7") }, t0()).is_err());
    w.ok(WalletOp::Payout { amount: m("6") }, t0());
    assert_eq!(
        w.l.account(&k("platform:revenue"))
            .unwrap()
            .posted_balance(),
        m("0")
    );
    w.balanced();
}

#[test]
fn refund_of_lapsed_gift_is_forfeited() {
    let mut w = World::new(SpendOrder::GiftFirst);
    let exp = t0() + Duration::days(1);
    w.ok(
        WalletOp::GrantGift {
            rider: k("r1"),
            amount: m("3"),
            expires_at: exp,
        },
        t0(),
    );
    w.pay("o1", "2", t0()).unwrap();
    let r = w.ok(
        WalletOp::Refund {
            order: k("o1"),
            amount: m("2"),
            destination: RefundDestination::Wallet,
        },
        exp,
    );
    assert_eq!(r.transfers.len(), 1);
    assert_eq!(r.transfers[0].code, k("refund_gift_forfeit"));
    assert_eq!(r.transfers[0].credit_account, k("platform:promotion"));
    assert_eq!(w.bal("r1", exp).1, m("0"));
}

#[test]
fn channel_payment_package_purchase_and_refund() {
    let mut w = World::new(SpendOrder::GiftFirst);
    // a package bought through WeChat Pay goes to package liability
    let r = w.ok(
        WalletOp::Pay {
            rider: k("r1"),
            order: k("pkg-1"),
            amount: m("99"),
            credit_account: k("pkg"),
            code: k("package_purchase"),
            source: PaymentSource::Channel,
        },
        t0(),
    );
    assert_eq!(r.transfers[0].debit_account, k("platform:clearing"));
    assert_eq!(w.l.account(&k("pkg")).unwrap().posted_balance(), m("99"));
    // consumption is a plain ledger transfer: liability → revenue
    w.l.apply(
        &Command::transfer(
            "use-1",
            "pkg",
            "platform:revenue",
            m("3.30"),
            "package_consume",
        )
        .unwrap(),
        t0(),
    )
    .unwrap();
    // refund of the unused part to the channel
    w.ok(
        WalletOp::Refund {
            order: k("pkg-1"),
            amount: m("95.70"),
            destination: RefundDestination::OriginalChannel,
        },
        t0(),
    );
    assert_eq!(w.l.account(&k("pkg")).unwrap().posted_balance(), m("0"));
    // the liability account cannot refund what was already consumed
    let mut w2 = World::new(SpendOrder::GiftFirst);
    w2.ok(
        WalletOp::Pay {
            rider: k("r1"),
            order: k("pkg-1"),
            amount: m("10"),
            credit_account: k("pkg"),
            code: k("package_purchase"),
            source: PaymentSource::Channel,
        },
        t0(),
    );
    w2.l.apply(
        &Command::transfer(
            "use-1",
            "pkg",
            "platform:revenue",
            m("6"),
            "package_consume",
        )
        .unwrap(),
        t0(),
    )
    .unwrap();
    let e = w2.run(
        WalletOp::Refund {
            order: k("pkg-1"),
            amount: m("5"),
            destination: RefundDestination::Wallet,
        },
        t0(),
    );
    assert!(matches!(
        e,
        Err(WalletError::Ledger {
            error: LedgerError::BatchFailed { .. }
        })
    ));
    assert_eq!(w2.w.order(&k("pkg-1")).unwrap().refundable(), m("10"));
}

#[test]
fn authorize_capture_release_and_lapse() {
    let mut w = World::new(SpendOrder::GiftFirst);
    w.ok(
        WalletOp::TopUp {
            rider: k("r1"),
            amount: m("30"),
        },
        t0(),
    );
    let auth = |order: &str, exp: Option<Timestamp>| WalletOp::Authorize {
        rider: k("r1"),
        order: k(order),
        amount: m("20"),
        credit_account: k("platform:revenue"),
        code: k("charging"),
        expires_at: exp,
    };
    w.ok(auth("c1", None), t0());
    assert_eq!(
        w.w.balance(&k("r1"), &w.l, t0()).unwrap().paid_available,
        m("10")
    );
    assert!(matches!(
        w.run(auth("c2", None), t0()),
        Err(WalletError::Ledger { .. })
    ));
    w.ok(
        WalletOp::Capture {
            order: k("c1"),
            amount: Some(m("12.5")),
        },
        t0(),
    );
    let b = w.w.balance(&k("r1"), &w.l, t0()).unwrap();
    assert_eq!((b.paid, b.paid_available), (m("17.5"), m("17.5")));
    assert_eq!(w.w.order(&k("c1")).unwrap().charged, m("12.5"));
    assert!(matches!(
        w.run(
            WalletOp::Capture {
                order: k("c1"),
                amount: None
            },
            t0()
        ),
        Err(WalletError::OrderState { .. })
    ));
    // a captured charge is refundable
    w.ok(
        WalletOp::Refund {
            order: k("c1"),
            amount: m("2.5"),
            destination: RefundDestination::Wallet,
        },
        t0(),
    );
    assert_eq!(w.bal("r1", t0()).0, m("20"));
    // release
    w.ok(auth("c3", None), t0());
    w.ok(WalletOp::Release { order: k("c3") }, t0());
    assert_eq!(w.w.order(&k("c3")).unwrap().status, OrderStatus::Released);
    assert_eq!(
        w.w.balance(&k("r1"), &w.l, t0()).unwrap().paid_available,
        m("20")
    );
    // lapse
    let exp = t0() + Duration::hours(1);
    w.ok(auth("c4", Some(exp)), t0());
    w.l.expire_pending(exp).unwrap();
    assert_eq!(w.w.sync_expired_holds(&w.l), vec![k("c4")]);
    assert!(matches!(
        w.run(
            WalletOp::Capture {
                order: k("c4"),
                amount: None
            },
            exp
        ),
        Err(WalletError::OrderState { .. })
    ));
    w.balanced();
}

#[test]
fn withdraw_is_limited_to_the_available_paid_balance() {
    let mut w = World::new(SpendOrder::GiftFirst);
    w.ok(
        WalletOp::TopUp {
            rider: k("r2"),
            amount: m("5"),
        },
        t0(),
    );
    w.ok(
        WalletOp::GrantGift {
            rider: k("r2"),
            amount: m("5"),
            expires_at: t0() + Duration::days(1),
        },
        t0(),
    );
    // gift credit is never withdrawable, and an overdraft wallet still can't withdraw more than it has
    let e = w
        .run(
            WalletOp::Withdraw {
                rider: k("r2"),
                amount: m("6"),
            },
            t0(),
        )
        .unwrap_err();
    assert!(matches!(e, WalletError::InsufficientFunds { .. }));
    w.ok(
        WalletOp::Withdraw {
            rider: k("r2"),
            amount: m("5"),
        },
        t0(),
    );
    assert_eq!(w.bal("r2", t0()), (m("0"), m("5")));
}

#[test]
fn state_serde_round_trip_and_error_json() {
    let mut w = World::new(SpendOrder::GiftFirst);
    w.ok(
        WalletOp::GrantGift {
            rider: k("r1"),
            amount: m("3"),
            expires_at: t0() + Duration::days(1),
        },
        t0(),
    );
    w.pay("o1", "2", t0()).unwrap();
    let js = serde_json::to_string(&w.w).unwrap();
    let back: Wallets = serde_json::from_str(&js).unwrap();
    assert_eq!(back, w.w);
    let op: WalletOp =
        serde_json::from_str(r#"{"op":"top_up","rider":"r1","amount":"20.00"}"#).unwrap();
    assert_eq!(
        op,
        WalletOp::TopUp {
            rider: k("r1"),
            amount: m("20")
        }
    );
    let e = serde_json::to_value(WalletError::OrderNotFound { order: k("x") }).unwrap();
    assert_eq!(e["kind"], "order_not_found");
}
