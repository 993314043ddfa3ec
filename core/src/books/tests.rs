use super::*;
use chrono::{Duration, TimeZone};

fn k(s: &str) -> Key {
    Key::new(s).unwrap()
}
fn m(s: &str) -> Money {
    s.parse().unwrap()
}
/// 2026-04-25 08:00 UTC; the test books use UTC as local time.
fn t0() -> Timestamp {
    Utc.with_ymd_and_hms(2026, 4, 25, 8, 0, 0).unwrap()
}
fn product(json: &str) -> Box<Product> {
    Box::new(serde_json::from_str(json).unwrap())
}
/// The swap-30 of docs/packages.md: 150.00 for 30 swaps in 30 days (5.00 a
/// swap), freeze 1.00 a day, overdue 5.00 a day after 24 h (cap 100), refund
/// within 7 days, deposit 300.00.
fn swap30() -> Box<Product> {
    product(
        r#"{"id": "swap-30", "price": "150.00", "validity": {"days": 30},
        "swaps": {"limited": 30}, "deposit": "300.00",
        "freeze": {"fee_per_day": "1.00", "max_days": 15, "max_times": 2},
        "overdue": {"grace_hours": 24, "fee_per_day": "5.00", "fee_cap": "100.00"},
        "refund": {"window_days": 7}}"#,
    )
}
/// A 30-day rental at 90.00 (3.00 a day), refundable within 30 days.
fn rent30() -> Box<Product> {
    product(
        r#"{"id": "rent-30", "price": "90.00", "validity": {"days": 30}, "rental": true,
        "refund": {"window_days": 30}}"#,
    )
}

fn rules() -> RevenueRules {
    serde_json::from_str(
        r#"{"rules": [
        {"node": "store-1", "percent": "10"},
        {"node": "agent-1", "percent": "20", "per_swap": "0.20"}]}"#,
    )
    .unwrap()
}

struct World {
    b: Books,
    now: Timestamp,
    n: u32,
}

impl World {
    fn new() -> World {
        let config = BooksConfig {
            utc_offset_seconds: 0,
            credit_lines: vec![k("zhima")],
            rules: rules(),
            ..BooksConfig::default()
        };
        let mut w = World {
            b: Books::new(config, t0()).unwrap(),
            now: t0(),
            n: 0,
        };
        w.ok(BooksOp::OpenRider {
            rider: k("r1"),
            allow_negative: false,
        });
        w.ok(BooksOp::OpenRider {
            rider: k("r2"),
            allow_negative: true,
        });
        w
    }
    fn run(&mut self, op: BooksOp) -> Result<BooksReceipt> {
        self.n += 1;
        let id = k(&format!("op{}", self.n));
        self.b.apply(id, self.now, &op)
    }
    fn ok(&mut self, op: BooksOp) -> BooksReceipt {
        self.run(op).unwrap()
    }
    /// Runs an op that must fail and checks that it changed nothing.
    fn refused(&mut self, op: BooksOp) -> BooksError {
        let before = self.state();
        let e = self.run(op).unwrap_err();
        assert_eq!(self.state(), before, "a refused op changed the books: {e}");
        e
    }
    fn state(&self) -> String {
        serde_json::to_string(&self.b).unwrap()
    }
    fn later(&mut self, d: Duration) {
        self.now += d;
    }
    fn bal(&self, account: &str) -> String {
        self.b
            .ledger()
            .account(&k(account))
            .unwrap()
            .posted_balance()
            .to_plain_string()
    }
    fn lines(r: &BooksReceipt) -> Vec<String> {
        r.transfers.iter().map(transfer_line).collect()
    }
    fn top_up(&mut self, rider: &str, amount: &str) {
        self.ok(BooksOp::TopUp {
            rider: k(rider),
            amount: m(amount),
        });
    }
    fn buy(&mut self, package: &str, rider: &str, p: Box<Product>, chain: &[&str]) -> BooksReceipt {
        self.ok(buy(package, rider, p, chain))
    }
    fn consume(&mut self, package: &str, order: &str) -> BooksReceipt {
        self.ok(BooksOp::Consume {
            package: k(package),
            order: order.into(),
            swaps: 1,
        })
    }
    /// Every invariant the books promise.
    fn check(&self) {
        let r = self.b.reconcile(self.now).unwrap();
        assert!(r.agrees, "{r:#?}");
        assert_eq!(r.package_liability_ledger, r.package_liability_packages);
    }
}

fn buy(package: &str, rider: &str, p: Box<Product>, chain: &[&str]) -> BooksOp {
    BooksOp::Purchase {
        package: k(package),
        rider: k(rider),
        product: p,
        paid: None,
        profile: RiderProfile::default(),
        source: PaymentSource::Wallet,
        chain: chain.iter().map(|s| (*s).to_owned()).collect(),
        deposit: DepositChoice::Pay,
        defer_fees: false,
    }
}

#[test]
fn purchase_pays_the_liability_and_the_deposit() {
    let mut w = World::new();
    w.top_up("r1", "200");
    let r = w.buy("P1", "r1", swap30(), &["store-1", "agent-1"]);
    assert_eq!(
        World::lines(&r),
        [
            "op4.pay.paid: r1:wallet -> P1:liability 150.00 [package_purchase]",
            "op4.dep: platform:clearing -> r1:deposit 300.00 [deposit_pay]",
        ]
    );
    let names: Vec<&str> = r.events.iter().map(Event::name).collect();
    assert_eq!(names, ["purchased", "activated"]);
    assert_eq!(w.bal("P1:liability"), "150.00");
    assert_eq!(w.bal("r1:wallet"), "50.00");
    assert_eq!(w.bal("r1:deposit"), "300.00");
    let book = w.b.package(&k("P1")).unwrap();
    assert_eq!(book.deposit, Some(k("P1")));
    assert_eq!(book.orders, [k("op4.pay")]);
    // by channel: clearing pays, the wallet is untouched
    let mut op = buy("P2", "r1", rent30(), &[]);
    if let BooksOp::Purchase { source, .. } = &mut op {
        *source = PaymentSource::Channel;
    }
    let r = w.ok(op);
    assert_eq!(
        World::lines(&r),
        ["op5.pay: platform:clearing -> P2:liability 90.00 [package_purchase]"]
    );
    assert_eq!(w.bal("r1:wallet"), "50.00");
    w.check();
}

#[test]
fn consumption_recognises_revenue_and_splits_it() {
    let mut w = World::new();
    w.top_up("r1", "200");
    w.buy("P1", "r1", swap30(), &["store-1", "agent-1"]);
    w.later(Duration::hours(1));
    let r = w.consume("P1", "SW-1");
    // 5.00 recognised; agent's 0.20 per swap first; 4.80 at 70:10:20 =
    // 3.36 / 0.48 / 0.96: platform 3.36, store 0.48, agent 0.96 + 0.20 = 1.16
    assert_eq!(
        World::lines(&r),
        [
            "op5.rec: P1:liability -> platform:revenue 5.00 [package_consume]",
            "op5.rec.s1: platform:revenue -> store-1:revenue 0.48 [revenue_share]",
            "op5.rec.s2: platform:revenue -> agent-1:revenue 1.16 [revenue_share]",
        ]
    );
    assert_eq!(r.splits.len(), 1);
    assert_eq!(w.bal("P1:liability"), "145.00");
    assert_eq!(w.bal("platform:revenue"), "3.36");
    // the same swap order again under a new op id: consumed once
    let r = w.consume("P1", "SW-1");
    assert!(r.transfers.is_empty() && r.events.is_empty());
    // the same op id again: the original receipt, nothing changes
    let before = w.state();
    let again = w.b.apply(
        k("op5"),
        w.now,
        &BooksOp::Consume {
            package: k("P1"),
            order: "SW-1".into(),
            swaps: 1,
        },
    );
    assert_eq!(World::lines(&again.unwrap()).len(), 3);
    assert_eq!(w.state(), before);
    // a different op under a used id is refused
    let e =
        w.b.apply(k("op5"), w.now, &BooksOp::Tick { package: k("P1") })
            .unwrap_err();
    assert!(matches!(e, BooksError::OpConflict { .. }));
    let rec = w.b.reconcile(w.now).unwrap();
    let agent = rec.agents.iter().find(|a| a.node == "agent-1").unwrap();
    assert_eq!(agent.settlement_total.to_plain_string(), "1.16");
    assert_eq!(agent.ledger_net, agent.settlement_total);
    w.check();
}

#[test]
fn reversed_consumption_reverses_revenue_and_shares() {
    let mut w = World::new();
    w.top_up("r1", "200");
    w.buy("P1", "r1", swap30(), &["store-1", "agent-1"]);
    w.consume("P1", "SW-1");
    let r = w.ok(BooksOp::ReverseConsumption {
        package: k("P1"),
        order: "SW-1".into(),
    });
    assert_eq!(
        World::lines(&r),
        [
            "op6.rec.s1: store-1:revenue -> platform:revenue 0.48 [revenue_share]",
            "op6.rec.s2: agent-1:revenue -> platform:revenue 1.16 [revenue_share]",
            "op6.rec: platform:revenue -> P1:liability 5.00 [package_consume]",
        ]
    );
    for a in ["platform:revenue", "store-1:revenue", "agent-1:revenue"] {
        assert_eq!(w.bal(a), "0.00", "{a}");
    }
    assert_eq!(w.bal("P1:liability"), "150.00");
    // a reversed order id stays taken: a late replay consumes nothing
    assert!(w.consume("P1", "SW-1").transfers.is_empty());
    w.check();
}

#[test]
fn freeze_fee_from_the_wallet_or_to_a_receivable() {
    let mut w = World::new();
    w.top_up("r1", "151");
    w.buy("P1", "r1", swap30(), &["agent-1"]);
    w.ok(BooksOp::RequestFreeze {
        package: k("P1"),
        days: 5,
        reason: String::new(),
    });
    w.ok(BooksOp::ApproveFreeze { package: k("P1") });
    // 2 days 1 hour frozen = 3 started days x 1.00; the wallet has 1.00
    w.later(Duration::hours(49));
    let r = w.ok(BooksOp::Unfreeze { package: k("P1") });
    assert_eq!(
        World::lines(&r),
        [
            "op7.fe0.paid: r1:wallet -> platform:revenue 1.00 [freeze_fee]",
            "op7.fe0.rcv: r1:receivable -> platform:revenue 2.00 [freeze_fee]",
            // fee split: 3.00 x 20 % = 0.60 to the agent (no per-swap fee on fees)
            "op7.fe0.s1: platform:revenue -> agent-1:revenue 0.60 [revenue_share]",
        ]
    );
    assert_eq!(r.fees[0].from_wallet.to_plain_string(), "1.00");
    assert_eq!(r.fees[0].to_receivable.to_plain_string(), "2.00");
    assert_eq!(w.bal("r1:receivable"), "2.00");
    assert_eq!(w.bal("P1:liability"), "150.00");
    // paying more than is owed is refused; paying it by channel clears it
    let e = w.refused(BooksOp::SettleReceivable {
        rider: k("r1"),
        amount: m("2.01"),
        source: PaymentSource::Channel,
    });
    assert!(matches!(e, BooksError::InvalidAmount { .. }));
    w.ok(BooksOp::SettleReceivable {
        rider: k("r1"),
        amount: m("2"),
        source: PaymentSource::Channel,
    });
    assert_eq!(w.bal("r1:receivable"), "0.00");
    w.check();
}

#[test]
fn automatic_unfreeze_and_overdue_fee_at_close() {
    let mut w = World::new();
    w.top_up("r2", "150");
    w.buy("P1", "r2", swap30(), &[]);
    w.ok(BooksOp::RequestFreeze {
        package: k("P1"),
        days: 2,
        reason: String::new(),
    });
    w.ok(BooksOp::ApproveFreeze { package: k("P1") });
    // the term (30 days) moves out by the 2 days frozen: it ends 05-27 08:00;
    // grace 24 h to 05-28 08:00; closing 05-30 09:00 = 2 days 1 hour = 3 days
    w.later(Duration::days(35) + Duration::hours(1));
    let r = w.ok(BooksOp::Close { package: k("P1") });
    let names: Vec<&str> = r.events.iter().map(Event::name).collect();
    assert_eq!(
        names,
        [
            "unfrozen",
            "expired",
            "overdue_started",
            "overdue_settled",
            "closed"
        ]
    );
    // r2 may go negative: both fees come from the wallet; the 150.00 is breakage
    assert_eq!(
        World::lines(&r),
        [
            "op7.fe0.paid: r2:wallet -> platform:revenue 2.00 [freeze_fee]",
            "op7.fe1.paid: r2:wallet -> platform:revenue 15.00 [overdue_fee]",
            "op7.rec: P1:liability -> platform:revenue 150.00 [package_consume]",
        ]
    );
    assert_eq!(w.bal("r2:wallet"), "-17.00");
    assert_eq!(w.bal("P1:liability"), "0.00");
    w.check();
}

#[test]
fn refund_returns_the_unused_part_newest_payment_first() {
    let mut w = World::new();
    w.top_up("r1", "400");
    w.buy("P1", "r1", swap30(), &[]);
    w.consume("P1", "SW-1");
    w.consume("P1", "SW-2");
    // renew (extend): +150 into the liability: 140 + 150 = 290
    let r = w.ok(BooksOp::Renew {
        package: k("P1"),
        paid: None,
        profile: RiderProfile::default(),
        source: PaymentSource::Wallet,
    });
    assert_eq!(
        World::lines(&r),
        ["op7.pay.paid: r1:wallet -> P1:liability 150.00 [package_renewal]"]
    );
    assert_eq!(w.bal("P1:liability"), "290.00");
    // refund: 300 - 5 x 2 = 290, from the renewal's order (150) then the purchase's (140)
    w.later(Duration::days(1));
    let r = w.ok(BooksOp::Refund {
        package: k("P1"),
        destination: RefundDestination::OriginalChannel,
    });
    assert_eq!(
        World::lines(&r),
        [
            "op8.r00.paid: P1:liability -> platform:refunds_payable 150.00 [refund_to_channel]",
            "op8.r01.paid: P1:liability -> platform:refunds_payable 140.00 [refund_to_channel]",
        ]
    );
    assert_eq!(w.bal("P1:liability"), "0.00");
    let (paid, refunded) = w.b.package_payments(&k("P1")).unwrap();
    assert_eq!(
        (paid.to_plain_string(), refunded.to_plain_string()),
        ("300.00".into(), "290.00".into())
    );
    // refunded packages cannot be refunded again
    let e = w.refused(BooksOp::Refund {
        package: k("P1"),
        destination: RefundDestination::Wallet,
    });
    assert!(matches!(e, BooksError::Package { .. }));
    w.check();
}

#[test]
fn upgrade_charges_and_downgrade_refunds_with_proration() {
    let mut w = World::new();
    w.top_up("r1", "400");
    w.buy("P1", "r1", swap30(), &[]);
    for i in 0..8 {
        w.consume("P1", &format!("SW-{i}"));
    }
    // credit 150 - 5 x 8 = 110; an unlimited month at 199 costs 89 more
    let unlimited = product(
        r#"{"id": "unl-m", "price": "199.00", "validity": {"days": 30}, "swaps": "unlimited"}"#,
    );
    let r = w.ok(BooksOp::Change {
        package: k("P1"),
        to: unlimited,
        profile: RiderProfile::default(),
        source: PaymentSource::Wallet,
        destination: RefundDestination::Wallet,
    });
    assert_eq!(
        World::lines(&r),
        ["op13.pay.paid: r1:wallet -> P1:liability 89.00 [package_change]"]
    );
    assert_eq!(w.bal("P1:liability"), "199.00");
    // a 7-day rental at 21 gives 199 - 21 = 178 back (nothing used yet), newest payment first
    let rent7 =
        product(r#"{"id": "rent-7", "price": "21.00", "validity": {"days": 7}, "rental": true}"#);
    let r = w.ok(BooksOp::Change {
        package: k("P1"),
        to: rent7,
        profile: RiderProfile::default(),
        source: PaymentSource::Wallet,
        destination: RefundDestination::Wallet,
    });
    assert_eq!(
        World::lines(&r),
        [
            "op14.r00.paid: P1:liability -> r1:wallet 89.00 [refund_to_wallet]",
            "op14.r01.paid: P1:liability -> r1:wallet 89.00 [refund_to_wallet]",
        ]
    );
    assert_eq!(w.bal("P1:liability"), "21.00");
    // wallet: 400 - 150 - 89 + 178 = 339
    assert_eq!(w.bal("r1:wallet"), "339.00");
    w.check();
}

#[test]
fn time_packages_earn_by_the_day_when_ticked() {
    let mut w = World::new();
    w.top_up("r1", "100");
    w.buy("P1", "r1", rent30(), &["agent-1"]);
    // 3 days 1 hour later: 4 started days x 3.00 earned, not yet posted
    w.later(Duration::days(3) + Duration::hours(1));
    let rec = w.b.reconcile(w.now).unwrap();
    assert!(!rec.agrees);
    assert_eq!(rec.packages[0].unrecognised.to_plain_string(), "12.00");
    let r = w.ok(BooksOp::Tick { package: k("P1") });
    assert_eq!(
        World::lines(&r),
        [
            "op5.rec: P1:liability -> platform:revenue 12.00 [package_consume]",
            "op5.rec.s1: platform:revenue -> agent-1:revenue 2.40 [revenue_share]",
        ]
    );
    // a day later the refund returns 90 - 5 x 3.00 = 75 and recognises the
    // fifth day, 3.00, started since the tick
    w.later(Duration::days(1));
    let r = w.ok(BooksOp::Refund {
        package: k("P1"),
        destination: RefundDestination::Wallet,
    });
    assert_eq!(
        World::lines(&r),
        [
            "op6.r00.paid: P1:liability -> r1:wallet 75.00 [refund_to_wallet]",
            "op6.rec: P1:liability -> platform:revenue 3.00 [package_consume]",
            "op6.rec.s1: platform:revenue -> agent-1:revenue 0.60 [revenue_share]",
        ]
    );
    assert_eq!(w.bal("r1:wallet"), "85.00");
    w.check();
}

#[test]
fn sale_refunds_shrink_the_shares_to_the_split_of_what_was_kept() {
    let mut w = World::new();
    w.top_up("r1", "10");
    let r = w.ok(BooksOp::Sale {
        order: k("SW-9"),
        rider: k("r1"),
        amount: m("0.03"),
        product: ProductType::Swap,
        swaps: 0,
        chain: vec!["store-1".into()],
        source: PaymentSource::Wallet,
    });
    // 3 fen at 90:10 = 2.7 / 0.3: floors 2 + 0, the odd fen to the larger remainder (platform)
    assert_eq!(
        World::lines(&r),
        ["op4.pay.paid: r1:wallet -> platform:revenue 0.03 [swap_fee]"]
    );
    for _ in 0..2 {
        w.ok(BooksOp::RefundSale {
            order: k("SW-9"),
            amount: m("0.01"),
            destination: RefundDestination::Wallet,
        });
    }
    // kept 1 fen: 0.9 / 0.1 -> the platform keeps it; refund the last fen
    let e = w.refused(BooksOp::RefundSale {
        order: k("SW-9"),
        amount: m("0.02"),
        destination: RefundDestination::Wallet,
    });
    assert!(matches!(e, BooksError::Wallet { .. }));
    w.ok(BooksOp::RefundSale {
        order: k("SW-9"),
        amount: m("0.01"),
        destination: RefundDestination::Wallet,
    });
    assert_eq!(w.bal("platform:revenue"), "0.00");
    assert_eq!(w.bal("r1:wallet"), "10.00");

    // 10.00 at 90:10: store 1.00; refund 4.00 -> kept 6.00 -> store 0.60
    let sale = |order: &str| BooksOp::Sale {
        order: k(order),
        rider: k("r1"),
        amount: m("10"),
        product: ProductType::Charging,
        swaps: 0,
        chain: vec!["store-1".into()],
        source: PaymentSource::Channel,
    };
    w.ok(sale("CH-1"));
    assert_eq!(w.bal("store-1:revenue"), "1.00");
    let r = w.ok(BooksOp::RefundSale {
        order: k("CH-1"),
        amount: m("4"),
        destination: RefundDestination::OriginalChannel,
    });
    assert_eq!(
        World::lines(&r),
        [
            "op10.ref.paid: platform:revenue -> platform:refunds_payable 4.00 [refund_to_channel]",
            "op10.sale.s1: store-1:revenue -> platform:revenue 0.40 [revenue_share]",
        ]
    );
    assert_eq!(w.bal("store-1:revenue"), "0.60");
    assert!(matches!(
        w.refused(sale("CH-1")),
        BooksError::SaleExists { .. }
    ));
    w.check();
}

#[test]
fn holds_capture_charge_and_refund_newest_payment_first() {
    let mut w = World::new();
    w.top_up("r1", "20");
    let chain = vec!["store-1".to_owned(), "agent-1".to_owned()];
    let hold = BooksOp::Authorize {
        order: k("SW-9"),
        rider: k("r1"),
        amount: m("5.00"),
        product: ProductType::Swap,
        swaps: 1,
        chain: chain.clone(),
        expires_at: None,
    };
    let r = w.ok(hold.clone());
    assert_eq!(
        World::lines(&r),
        ["op4: r1:wallet -> platform:revenue 5.00 [swap_fee] (pending)"]
    );
    assert_eq!(w.bal("platform:revenue"), "0.00");
    let avail = |w: &World| {
        w.b.wallets()
            .balance(&k("r1"), w.b.ledger(), w.now)
            .unwrap()
            .paid_available
            .to_plain_string()
    };
    assert_eq!(avail(&w), "15.00");
    w.check();
    // the same order again under a new op id is refused
    let mut again = hold;
    if let BooksOp::Authorize { amount, .. } = &mut again {
        *amount = m("1.00");
    }
    assert!(matches!(w.refused(again), BooksError::SaleExists { .. }));
    // capture 4.00 (1.00 released): agent-1's fixed 0.20 first, then 3.80 at
    // 70:10:20 = 2.66 / 0.38 / 0.76 -> agent 0.96, store 0.38
    let r = w.ok(BooksOp::Capture {
        order: k("SW-9"),
        amount: Some(m("4.00")),
    });
    assert_eq!(
        World::lines(&r),
        [
            "op6: r1:wallet -> platform:revenue 4.00 [swap_fee] (post op4)",
            "op6.sale.s1: platform:revenue -> store-1:revenue 0.38 [revenue_share]",
            "op6.sale.s2: platform:revenue -> agent-1:revenue 0.96 [revenue_share]",
        ]
    );
    assert_eq!(avail(&w), "16.00");
    // a captured hold cannot be released
    assert!(matches!(
        w.refused(BooksOp::Release { order: k("SW-9") }),
        BooksError::Wallet { .. }
    ));
    // 1.50 more: kept 5.50 -> 0.20 + 5.30 at 70:10:20 = 3.71 / 0.53 / 1.06,
    // agent 1.26: the shares move by the difference (store 0.53 - 0.38 =
    // 0.15, agent 1.26 - 0.96 = 0.30)
    let r = w.ok(BooksOp::Charge {
        order: k("SW-9"),
        amount: m("1.50"),
        source: PaymentSource::Wallet,
    });
    assert_eq!(
        World::lines(&r),
        [
            "op8.pay.paid: r1:wallet -> platform:revenue 1.50 [swap_fee]",
            "op8.sale.s1: platform:revenue -> store-1:revenue 0.15 [revenue_share]",
            "op8.sale.s2: platform:revenue -> agent-1:revenue 0.30 [revenue_share]",
        ]
    );
    assert_eq!(
        (w.bal("store-1:revenue"), w.bal("agent-1:revenue")),
        ("0.53".into(), "1.26".into())
    );
    let sale = w.b.sale(&k("SW-9")).unwrap();
    assert_eq!(sale.payments, [k("SW-9"), k("op8.pay")]);
    // refund 2.00, newest payment first: 1.50 of op8.pay then 0.50 of SW-9;
    // kept 3.50 -> 0.20 + 3.30 at 70:10:20 = 2.31 / 0.33 / 0.66
    let r = w.ok(BooksOp::RefundSale {
        order: k("SW-9"),
        amount: m("2.00"),
        destination: RefundDestination::Wallet,
    });
    assert_eq!(
        World::lines(&r),
        [
            "op9.ref.paid: platform:revenue -> r1:wallet 1.50 [refund_to_wallet]",
            "op9.ref.r01.paid: platform:revenue -> r1:wallet 0.50 [refund_to_wallet]",
            "op9.sale.s1: store-1:revenue -> platform:revenue 0.20 [revenue_share]",
            "op9.sale.s2: agent-1:revenue -> platform:revenue 0.40 [revenue_share]",
        ]
    );
    assert_eq!(w.bal("r1:wallet"), "16.50");
    // more than is left (3.50) is refused with the wallet's error
    assert!(matches!(
        w.refused(BooksOp::RefundSale {
            order: k("SW-9"),
            amount: m("3.51"),
            destination: RefundDestination::Wallet,
        }),
        BooksError::Wallet { .. }
    ));
    // unknown orders
    assert!(matches!(
        w.refused(BooksOp::Capture {
            order: k("nope"),
            amount: None
        }),
        BooksError::SaleNotFound { .. }
    ));
    assert!(matches!(
        w.refused(BooksOp::Charge {
            order: k("nope"),
            amount: m("1"),
            source: PaymentSource::Wallet
        }),
        BooksError::SaleNotFound { .. }
    ));
    // a second hold, released: nothing is revenue
    w.ok(BooksOp::Authorize {
        order: k("CH-2"),
        rider: k("r1"),
        amount: m("10.00"),
        product: ProductType::Charging,
        swaps: 0,
        chain,
        expires_at: None,
    });
    let r = w.ok(BooksOp::Release { order: k("CH-2") });
    assert_eq!(
        World::lines(&r),
        ["op14: r1:wallet -> platform:revenue 10.00 [charging_fee] (void op13)"]
    );
    assert_eq!(avail(&w), "16.50");
    w.check();
}

/// A 7-day rental at 21.00 (3.00 a day) that starts at the hand-over, with
/// a 100.00 deposit, freeze 2.00 a day, overdue 5.00 a day after 24 h.
fn rent7(deposit: &str) -> Box<Product> {
    product(&format!(
        r#"{{"id": "rent-7", "price": "21.00", "validity": {{"days": 7}}, "rental": true,
        "deposit": "{deposit}", "activation": {{"mode": "first_use"}},
        "freeze": {{"fee_per_day": "2.00", "max_days": 5}},
        "overdue": {{"grace_hours": 24, "fee_per_day": "5.00", "fee_cap": "30.00"}}}}"#
    ))
}

fn command(package: &str, command: package::Command) -> BooksOp {
    BooksOp::Command {
        package: k(package),
        command: Box::new(command),
        source: PaymentSource::Wallet,
        destination: RefundDestination::Wallet,
    }
}

fn settle(package: &str, damage: &str, lost: bool, fees: Option<&str>) -> BooksOp {
    BooksOp::SettleDeposit {
        package: k(package),
        damage: Some(m(damage)),
        lost,
        fees: fees.map(m),
    }
}

#[test]
fn deferred_fees_settle_with_the_deposit_then_the_damage() {
    use package::Command as C;
    let mut w = World::new();
    w.top_up("r1", "50");
    let mut op = buy("R1", "r1", rent7("100.00"), &["store-1"]);
    if let BooksOp::Purchase { defer_fees, .. } = &mut op {
        *defer_fees = true;
    }
    w.ok(op);
    assert_eq!(
        (w.bal("r1:wallet"), w.bal("r1:deposit")),
        ("29.00".into(), "100.00".into())
    );
    // t0 handed over; frozen from t0 + 1 d to t0 + 2 d 1 h: 25 h = 2 started
    // days x 2.00 = 4.00, left due (the wallet does not move)
    w.ok(command("R1", C::Activate));
    w.later(Duration::days(1));
    w.ok(command(
        "R1",
        C::RequestFreeze {
            days: 3,
            reason: String::new(),
        },
    ));
    w.ok(command("R1", C::ApproveFreeze));
    w.later(Duration::hours(25));
    let r = w.ok(command("R1", C::Unfreeze));
    assert!(r.fees.is_empty());
    assert_eq!(w.bal("r1:wallet"), "29.00");
    assert_eq!(w.b.package(&k("R1")).unwrap().fees_due.len(), 1);
    w.check();
    // the deposit of a running package cannot be settled yet
    assert!(matches!(
        w.refused(settle("R1", "0", false, None)),
        BooksError::Package { .. }
    ));
    // the term moved out by 25 h: it ends at t0 + 8 d 1 h, the grace at
    // t0 + 9 d 1 h; ended at t0 + 10 d: 23 h after the grace = 1 started
    // day x 5.00, left due
    w.later(Duration::hours(24 * 10 - 49));
    let r = w.ok(command("R1", C::End));
    assert_eq!(
        r.events.iter().map(Event::name).collect::<Vec<_>>(),
        ["expired", "overdue_started", "overdue_settled", "closed"]
    );
    assert!(r.fees.is_empty());
    w.check();
    // 9.00 due: a settlement expecting another amount is refused
    assert!(matches!(
        w.refused(settle("R1", "20.00", false, Some("8.99"))),
        BooksError::FeesMismatch { .. }
    ));
    // fees 9.00 then damage 20.00 from the 100.00 deposit: 29.00 deducted,
    // 71.00 applied for refund; the fees are shared as `fee` (store-1 10 % = 0.90)
    let r = w.ok(settle("R1", "20.00", false, Some("9.00")));
    let id = r.op_id;
    assert_eq!(
        World::lines(&r),
        [
            format!("{id}.df: r1:deposit -> platform:revenue 9.00 [deposit_unpaid_fees]"),
            format!("{id}.dd: r1:deposit -> platform:revenue 20.00 [deposit_damage]"),
            format!("{id}.fd.s1: platform:revenue -> store-1:revenue 0.90 [revenue_share]"),
        ]
    );
    let st = r.settlement.unwrap();
    assert_eq!(
        (st.fees, st.deducted, st.refunded, st.charged),
        (m("9.00"), m("29.00"), m("71.00"), m("0.00"))
    );
    let d = w.b.deposits().deposit(&k("R1")).unwrap();
    assert_eq!(d.status, DepositStatus::RefundRequested);
    assert!(w.b.package(&k("R1")).unwrap().fees_due.is_empty());
    // settled once
    assert!(matches!(
        w.refused(settle("R1", "0", false, None)),
        BooksError::DepositNotHeld { .. }
    ));
    w.check();
}

#[test]
fn a_waiver_is_captured_and_what_it_cannot_cover_is_charged() {
    use package::Command as C;
    let mut w = World::new();
    w.top_up("r1", "26");
    let mut op = buy("R2", "r1", rent7("10.00"), &["store-1"]);
    if let BooksOp::Purchase {
        defer_fees,
        deposit,
        ..
    } = &mut op
    {
        *defer_fees = true;
        *deposit = DepositChoice::Waive {
            credit_line: k("zhima"),
            expires_at: None,
        };
    }
    w.ok(op);
    assert_eq!(w.bal("r1:wallet"), "5.00");
    w.ok(command("R2", C::Activate));
    w.ok(command(
        "R2",
        C::RequestFreeze {
            days: 2,
            reason: String::new(),
        },
    ));
    w.ok(command("R2", C::ApproveFreeze));
    w.later(Duration::hours(12));
    w.ok(command("R2", C::End)); // unfrozen: 1 started day x 2.00 due
    // fees 2.00 + damage 20.00 against a 10.00 waiver: 10.00 captured (2.00
    // fees, 8.00 damage), 12.00 damage above it: 5.00 from the wallet, 7.00
    // to the receivable (damage is not shared)
    let r = w.ok(settle("R2", "20.00", false, None));
    let id = r.op_id;
    let lines = World::lines(&r);
    assert_eq!(
        lines,
        [
            format!(
                "{id}.dd.capture: zhima -> r1:credit 10.00 [deposit_waiver] (post {}.dep)",
                "op4"
            ),
            format!("{id}.dd: r1:credit -> platform:revenue 10.00 [deposit_damage]"),
            format!("{id}.fd.s1: platform:revenue -> store-1:revenue 0.20 [revenue_share]"),
            format!("{id}.fe0.paid: r1:wallet -> platform:revenue 5.00 [deposit_damage]"),
            format!("{id}.fe0.rcv: r1:receivable -> platform:revenue 7.00 [deposit_damage]"),
        ]
    );
    let st = r.settlement.unwrap();
    assert_eq!(
        (st.deducted, st.refunded, st.charged),
        (m("10.00"), m("0.00"), m("12.00"))
    );
    assert_eq!(
        w.b.deposits().deposit(&k("R2")).unwrap().status,
        DepositStatus::Captured
    );
    w.check();
}

#[test]
fn a_loss_takes_the_deposit_and_a_cancel_returns_everything() {
    use package::Command as C;
    let mut w = World::new();
    w.top_up("r1", "50");
    let mut op = buy("R3", "r1", rent7("100.00"), &[]);
    if let BooksOp::Purchase { defer_fees, .. } = &mut op {
        *defer_fees = true;
    }
    w.ok(op.clone());
    w.ok(command("R3", C::Activate));
    // overdue: ends t0 + 7 d, grace to t0 + 8 d, lost at t0 + 10 d: 2 started
    // days x 5.00 = 10.00 due; the deposit covers them and the loss (90.00)
    w.later(Duration::days(10));
    w.ok(command("R3", C::End));
    let r = w.ok(settle("R3", "0", true, Some("10.00")));
    let st = r.settlement.unwrap();
    assert_eq!(
        (st.deducted, st.refunded, st.charged),
        (m("100.00"), m("0.00"), m("0.00"))
    );
    assert_eq!(w.bal("r1:deposit"), "0.00");
    w.check();
    // a rental cancelled before the hand-over: the pending package is
    // cancelled in full (not refundable by its policy, but never started)
    // and the whole deposit applied for refund
    if let BooksOp::Purchase { package, .. } = &mut op {
        *package = k("R4");
    }
    w.ok(op);
    assert_eq!(w.bal("r1:wallet"), "8.00");
    let r = w.ok(command("R4", C::Cancel));
    assert_eq!(
        World::lines(&r),
        [format!(
            "{}.r00.paid: R4:liability -> r1:wallet 21.00 [refund_to_wallet]",
            r.op_id
        )]
    );
    let r = w.ok(settle("R4", "0", false, None));
    assert!(r.transfers.is_empty());
    assert_eq!(r.settlement.unwrap().refunded, m("100.00"));
    assert_eq!(
        w.b.deposits().deposit(&k("R4")).unwrap().status,
        DepositStatus::RefundRequested
    );
    w.check();
}

#[test]
fn agent_payouts_are_limited_to_what_is_owed() {
    let mut w = World::new();
    w.top_up("r1", "10");
    w.ok(BooksOp::Sale {
        order: k("SW-1"),
        rider: k("r1"),
        amount: m("5"),
        product: ProductType::Swap,
        swaps: 1,
        chain: vec!["store-1".into(), "agent-1".into()],
        source: PaymentSource::Wallet,
    });
    // agent 0.20 + 20 % of 4.80 = 0.96 -> 1.16
    assert_eq!(w.bal("agent-1:revenue"), "1.16");
    let e = w.refused(BooksOp::PayAgent {
        node: "agent-1".into(),
        amount: m("1.17"),
    });
    assert!(matches!(e, BooksError::AgentOverpaid { .. }));
    let r = w.ok(BooksOp::PayAgent {
        node: "agent-1".into(),
        amount: m("1.16"),
    });
    assert_eq!(
        World::lines(&r),
        ["op6: agent-1:revenue -> platform:clearing 1.16 [agent_payout]"]
    );
    let rec = w.b.reconcile(w.now).unwrap();
    let a = rec.agents.iter().find(|a| a.node == "agent-1").unwrap();
    assert_eq!(
        (
            a.ledger_net.to_plain_string(),
            a.paid_out.to_plain_string(),
            a.owed.to_plain_string()
        ),
        ("1.16".into(), "1.16".into(), "0.00".into())
    );
    w.check();
}

#[test]
fn a_failed_step_undoes_the_steps_before_it() {
    let mut w = World::new();
    w.top_up("r1", "200");
    // the payment succeeds, then the waiver fails (no such credit line):
    // the whole purchase is undone, the payment included
    let mut op = buy("P1", "r1", swap30(), &[]);
    if let BooksOp::Purchase { deposit, .. } = &mut op {
        *deposit = DepositChoice::Waive {
            credit_line: k("nope"),
            expires_at: None,
        };
    }
    let e = w.refused(op);
    assert!(matches!(e, BooksError::Deposit { .. }), "{e}");
    assert!(w.b.ledger().account(&k("P1:liability")).is_none());
    // not enough money: refused, nothing changes
    w.refused(buy(
        "P1",
        "r1",
        product(r#"{"id": "x", "price": "200.01", "validity": {"days": 1}, "swaps": "unlimited"}"#),
        &[],
    ));
    // a chain the rules cannot split is refused before anything moves
    let e = w.refused(buy("P1", "r1", swap30(), &["a", "b", "c", "d"]));
    assert!(matches!(e, BooksError::Settlement { .. }));
    // a refund into a closed window, time going backwards, a long op id, unknown package
    w.buy("P1", "r1", swap30(), &[]);
    w.later(Duration::days(8));
    let e = w.refused(BooksOp::Refund {
        package: k("P1"),
        destination: RefundDestination::Wallet,
    });
    assert!(
        matches!(&e, BooksError::Package { error } if matches!(**error, PackageError::RefundWindowClosed { .. }))
    );
    w.ok(BooksOp::Tick { package: k("P1") });
    let e =
        w.b.apply(k("late"), t0(), &BooksOp::Tick { package: k("P1") })
            .unwrap_err();
    assert!(matches!(e, BooksError::TimeWentBackwards { .. }));
    let long = k(&"x".repeat(MAX_OP_ID + 1));
    let e = w.b.apply(long, w.now, &BooksOp::Sweep).unwrap_err();
    assert!(matches!(e, BooksError::OpIdTooLong { len: 37, .. }));
    assert!(matches!(
        w.refused(BooksOp::Tick { package: k("P9") }),
        BooksError::PackageNotFound { .. }
    ));
    assert!(matches!(
        w.refused(buy("P1", "r1", swap30(), &[])),
        BooksError::PackageExists { .. }
    ));
    assert!(matches!(
        w.refused(buy("P2", "nobody", swap30(), &[])),
        BooksError::RiderNotFound { .. }
    ));
    // consuming more than is left, or from a product without swaps
    assert!(matches!(
        w.refused(BooksOp::Consume {
            package: k("P1"),
            order: "x".into(),
            swaps: 31
        }),
        BooksError::Package { .. }
    ));
    w.check();
}

#[test]
fn existing_and_waived_deposits_cover_a_purchase() {
    let mut w = World::new();
    w.top_up("r1", "400");
    let mut op = buy("P1", "r1", swap30(), &[]);
    if let BooksOp::Purchase { deposit, .. } = &mut op {
        *deposit = DepositChoice::Waive {
            credit_line: k("zhima"),
            expires_at: Some(t0() + Duration::days(60)),
        };
    }
    let r = w.ok(op);
    assert_eq!(
        World::lines(&r)[1],
        "op4.dep: zhima -> r1:credit 300.00 [deposit_waiver] (pending)"
    );
    // a second package reuses the waiver
    let mut op = buy("P2", "r1", swap30(), &[]);
    if let BooksOp::Purchase { deposit, .. } = &mut op {
        *deposit = DepositChoice::Existing { deposit: k("P1") };
    }
    let r = w.ok(op);
    assert_eq!(r.transfers.len(), 1);
    assert_eq!(w.b.package(&k("P2")).unwrap().deposit, Some(k("P1")));
    // someone else's deposit, or one that does not exist, is refused
    let mut op = buy("P3", "r2", swap30(), &[]);
    if let BooksOp::Purchase { deposit, .. } = &mut op {
        *deposit = DepositChoice::Existing { deposit: k("P1") };
    }
    assert!(matches!(w.refused(op), BooksError::DepositUnusable { .. }));
    // the waiver lapses at its deadline: a sweep releases it
    w.later(Duration::days(60));
    let r = w.ok(BooksOp::Sweep);
    assert_eq!(r.expiries.len(), 1);
    assert_eq!(
        w.b.deposits().deposit(&k("P1")).unwrap().status,
        DepositStatus::Lapsed
    );
}

#[test]
fn deposit_ops_pass_through() {
    let mut w = World::new();
    w.ok(BooksOp::Deposit {
        action: DepositOp::Pay {
            deposit: k("D1"),
            rider: k("r1"),
            amount: m("300"),
        },
    });
    w.ok(BooksOp::Deposit {
        action: DepositOp::ApplyRefund { deposit: k("D1") },
    });
    let r = w.ok(BooksOp::Deposit {
        action: DepositOp::ReviewRefund {
            deposit: k("D1"),
            approve: true,
        },
    });
    assert_eq!(
        World::lines(&r),
        ["op5: r1:deposit -> platform:refunds_payable 300.00 [deposit_refund]"]
    );
    w.check();
}

#[test]
fn local_time_offset_and_serde_round_trip() {
    let mut b = Books::new(BooksConfig::default(), t0()).unwrap();
    // 08:00 UTC is 16:00 in UTC+8
    assert_eq!(
        b.local_time(t0()).unwrap().to_string(),
        "2026-04-25 16:00:00"
    );
    b.apply(
        k("o1"),
        t0(),
        &BooksOp::OpenRider {
            rider: k("r1"),
            allow_negative: false,
        },
    )
    .unwrap();
    b.apply(
        k("o2"),
        t0(),
        &BooksOp::TopUp {
            rider: k("r1"),
            amount: m("200"),
        },
    )
    .unwrap();
    let r = b
        .apply(k("o3"), t0(), &buy("P1", "r1", swap30(), &[]))
        .unwrap();
    assert_eq!(r.events[1].at().to_string(), "2026-04-25 16:00:00");
    let json = serde_json::to_string(&b).unwrap();
    let back: Books = serde_json::from_str(&json).unwrap();
    assert_eq!(serde_json::to_string(&back).unwrap(), json);
    assert!(back.reconcile(t0()).unwrap().agrees);
    // a bad configuration is refused
    let bad = BooksConfig {
        utc_offset_seconds: 90_000,
        ..BooksConfig::default()
    };
    assert!(matches!(
        Books::new(bad, t0()),
        Err(BooksError::InvalidConfig { .. })
    ));
}

#[test]
fn ops_and_errors_have_a_json_shape() {
    let step: BooksStep = serde_json::from_str(
        r#"{"id": "op-1", "at": "2026-05-01T00:00:00Z", "op": "consume", "package": "P1", "order": "SW-1"}"#,
    )
    .unwrap();
    assert_eq!(
        step.op,
        BooksOp::Consume {
            package: k("P1"),
            order: "SW-1".into(),
            swaps: 1
        }
    );
    assert!(serde_json::from_str::<BooksStep>(
        r#"{"id": "op-1", "at": "2026-05-01T00:00:00Z", "op": "consume", "package": "P1", "ordr": "x"}"#
    )
    .is_err());
    let e = BooksError::PackageNotFound { package: k("P9") };
    assert_eq!(
        serde_json::to_value(&e).unwrap(),
        serde_json::json!({"kind": "package_not_found", "package": "P9"})
    );
    assert_eq!(e.to_string(), "package P9 does not exist");
}

#[test]
fn simulate_reports_steps_balances_and_reconciliation() {
    let run: BooksRun = serde_json::from_value(serde_json::json!({
        "config": {"utc_offset_seconds": 0},
        "start": "2026-04-25T08:00:00Z",
        "steps": [
            {"id": "o1", "at": "2026-04-25T08:00:00Z", "op": "open_rider", "rider": "r1"},
            {"id": "o2", "at": "2026-04-25T08:00:00Z", "op": "top_up", "rider": "r1", "amount": "10"},
            {"id": "o3", "at": "2026-04-25T08:00:00Z", "op": "withdraw", "rider": "r1", "amount": "11"}
        ]
    }))
    .unwrap();
    let out = simulate(&run).unwrap();
    assert_eq!(
        out.steps[1].transfers,
        ["o2: platform:clearing -> r1:wallet 10.00 [top_up]"]
    );
    assert!(matches!(
        out.steps[2].error,
        Some(BooksError::Wallet { .. })
    ));
    assert_eq!(
        out.balances[&k("r1:wallet")].posted.to_plain_string(),
        "10.00"
    );
    assert!(out.reconciliation.agrees);
}

#[test]
fn refunds_return_gift_credit_to_its_lot_and_never_exceed_the_payments() {
    let mut w = World::new();
    w.top_up("r1", "100");
    w.ok(BooksOp::GrantGift {
        rider: k("r1"),
        amount: m("60"),
        expires_at: t0() + Duration::days(30),
    });
    // gift first: 60.00 gift + 90.00 paid
    let r = w.buy("P1", "r1", swap30(), &[]);
    assert_eq!(
        World::lines(&r)[..2],
        [
            "op5.pay.gift: r1:gift -> P1:liability 60.00 [package_purchase]",
            "op5.pay.paid: r1:wallet -> P1:liability 90.00 [package_purchase]",
        ]
    );
    w.consume("P1", "SW-1");
    // 145.00 back: the gift part first (60.00 to its lot), then 85.00 paid
    let r = w.ok(BooksOp::Refund {
        package: k("P1"),
        destination: RefundDestination::OriginalChannel,
    });
    assert_eq!(
        World::lines(&r),
        [
            "op7.r00.gift: P1:liability -> r1:gift 60.00 [refund_to_wallet]",
            "op7.r00.paid: P1:liability -> platform:refunds_payable 85.00 [refund_to_channel]",
        ]
    );
    w.check();
    assert!(matches!(
        w.refused(BooksOp::RefundSale {
            order: k("SW-404"),
            amount: m("1"),
            destination: RefundDestination::Wallet,
        }),
        BooksError::SaleNotFound { .. }
    ));
}

#[test]
fn a_package_refund_beyond_its_payments_is_refused() {
    // Not reachable through the API (a package's liability never exceeds
    // what its payments can return); a tampered state shows the check.
    let mut w = World::new();
    w.top_up("r1", "200");
    w.buy("P1", "r1", swap30(), &[]);
    let mut v = serde_json::to_value(&w.b).unwrap();
    v["packages"]["P1"]["orders"] = serde_json::json!([]);
    w.b = serde_json::from_value(v).unwrap();
    let e = w.refused(BooksOp::Refund {
        package: k("P1"),
        destination: RefundDestination::Wallet,
    });
    assert_eq!(
        e,
        BooksError::RefundExceedsPaid {
            package: k("P1"),
            refundable: m("0"),
            requested: m("150"),
        }
    );
}
