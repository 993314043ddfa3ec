//! Property test (issue 4): random sequences of top-ups, purchases,
//! consumptions (with replays), freezes, overdue days (time advancing),
//! refunds, deferred fees settled with the deposit, early ends, deposit
//! holds and refunds, pay-per-use sales with wallet holds
//! (capture, release, further charges), and revenue splits keep every
//! invariant of the books after every step:
//!
//! - the ledger balances: debits equal credits, posted and pending;
//! - no wallet goes negative unless it may; gift credit never does;
//! - refunds never exceed what was paid (per wallet order, per package, per sale);
//! - deposits outstanding equal the held balance (waivers the credit holds);
//! - every package's liability account equals `Package::liability(now)`;
//! - every agent's revenue account equals the settlement totals of the splits;
//! - a refused operation changes nothing; replaying an operation id changes nothing.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

use chargeswap_core::books::{Books, BooksConfig, BooksOp, BooksReceipt, DepositChoice};
use chargeswap_core::deposit::{DeductReason, DepositOp};
use chargeswap_core::ledger::{AccountKind, Key, Timestamp};
use chargeswap_core::money::{Currency, Money};
use chargeswap_core::package::{Product, RiderProfile};
use chargeswap_core::settlement::{ProductType, RevenueRules};
use chargeswap_core::wallet::{PaymentSource, RefundDestination, SpendOrder};
use chrono::{Duration, TimeZone, Utc};
use proptest::prelude::*;

const RIDERS: [&str; 3] = ["r0", "r1", "r2"]; // r2 may go negative
const CHAINS: [&[&str]; 3] = [&[], &["store-1"], &["store-1", "sub-1", "agent-1"]];
const NODES: [&str; 3] = ["store-1", "sub-1", "agent-1"];

fn k(s: &str) -> Key {
    Key::new(s).unwrap()
}
fn fen(v: i64) -> Money {
    Money::from_minor(v, Currency::CNY)
}

/// Products chosen for awkward numbers: 100.00 / 3 swaps rounds (33.33),
/// a first-use activation, stacked renewals, daily caps, fee caps.
fn products() -> Vec<Product> {
    [
        r#"{"id": "swap-3", "price": "100.00", "validity": {"days": 5}, "swaps": {"limited": 3},
            "deposit": "50.00",
            "freeze": {"fee_per_day": "1.01", "max_days": 3, "max_times": 2},
            "overdue": {"grace_hours": 12, "fee_per_day": "2.50", "fee_cap": "6.00"},
            "refund": {"window_days": 3}}"#,
        r#"{"id": "unl-7", "price": "21.00", "validity": {"days": 7}, "swaps": "unlimited",
            "daily_swap_cap": 3, "renewal": {"mode": "stack", "max_queued_terms": 2},
            "freeze": {"fee_per_day": "0.50", "max_days": 4},
            "overdue": {"fee_per_day": "1.00"}, "refund": {"window_days": 7}}"#,
        r#"{"id": "rent-30", "price": "90.00", "validity": {"days": 30}, "rental": true,
            "deposit": "300.00", "overdue": {"grace_hours": 24, "fee_per_day": "5.00"},
            "refund": {"window_days": 30}}"#,
        r#"{"id": "combo-10", "price": "50.00", "validity": {"days": 10}, "rental": true,
            "swaps": {"limited": 10}, "activation": {"mode": "first_use", "auto_after_days": 2},
            "unit_price": "7.00", "refund": {"window_days": 10}}"#,
    ]
    .iter()
    .map(|s| serde_json::from_str(s).unwrap())
    .collect()
}

fn rules() -> RevenueRules {
    serde_json::from_str(
        r#"{"rules": [
        {"node": "store-1", "percent": "7.5"},
        {"node": "sub-1", "product": "swap_package", "percent": "10", "per_swap": "0.13"},
        {"node": "sub-1", "percent": "3"},
        {"node": "agent-1", "percent": "21", "per_swap": "0.07"}]}"#,
    )
    .unwrap()
}

#[derive(Debug, Clone)]
enum Step {
    TopUp(usize, i64),
    Gift(usize, i64, i64),
    /// rider, product, chain, by channel, deposit: 0 pay, 1 waive, 2 existing
    Purchase(usize, usize, usize, bool, u8),
    /// package (newest first), order number, swaps
    Consume(usize, u8, u32),
    Reverse(usize, u8),
    /// package, days, approve
    Freeze(usize, u32, bool),
    Unfreeze(usize),
    Renew(usize, bool),
    Change(usize, usize, bool),
    Refund(usize, bool),
    Close(usize),
    /// package: ended now through the generic command op
    End(usize),
    /// package, damage, lost: its deposit settled (deferred fees first)
    SettleDeposit(usize, i64, bool),
    /// hours: time passes and every package is ticked
    Advance(i64),
    DepositPay(usize, i64),
    /// deposit (newest first), action
    DepositAct(usize, u8, i64),
    /// rider, amount, product type, chain, swaps, by channel
    Sale(usize, i64, u8, usize, u32, bool),
    RefundSale(usize, i64, bool),
    /// rider, amount, product type, chain, swaps: a hold for a new order
    Hold(usize, i64, u8, usize, u32),
    /// sale (newest first), action (capture part, capture all, release,
    /// charge more), amount, by channel
    SaleAct(usize, u8, i64, bool),
    PayAgent(usize, i64),
    Settle(usize, i64, bool),
    Withdraw(usize, i64),
    /// withdraw the rider's whole available paid balance (so fees go to receivables)
    WithdrawAll(usize),
    Payout(i64),
    Sweep,
    /// replay the i-th newest applied operation
    Replay(usize),
}

fn arb_step() -> impl Strategy<Value = Step> {
    let r = 0usize..3;
    let p = 0usize..4; // counted from the newest package
    let amt = -50i64..40_000;
    prop_oneof![
        4 => (r.clone(), amt.clone()).prop_map(|(r, a)| Step::TopUp(r, a)),
        1 => (r.clone(), amt.clone(), -5i64..200).prop_map(|(r, a, h)| Step::Gift(r, a, h)),
        5 => (r.clone(), 0usize..4, 0usize..3, any::<bool>(), 0u8..3)
            .prop_map(|(r, p, c, ch, d)| Step::Purchase(r, p, c, ch, d)),
        8 => (p.clone(), 0u8..5, 1u32..3).prop_map(|(p, o, s)| Step::Consume(p, o, s)),
        3 => (p.clone(), 0u8..5).prop_map(|(p, o)| Step::Reverse(p, o)),
        4 => (p.clone(), 0u32..5, prop::bool::weighted(0.8)).prop_map(|(p, d, a)| Step::Freeze(p, d, a)),
        2 => p.clone().prop_map(Step::Unfreeze),
        2 => (p.clone(), any::<bool>()).prop_map(|(p, c)| Step::Renew(p, c)),
        2 => (p.clone(), 0usize..4, any::<bool>()).prop_map(|(p, q, c)| Step::Change(p, q, c)),
        2 => (p.clone(), any::<bool>()).prop_map(|(p, c)| Step::Refund(p, c)),
        3 => p.clone().prop_map(Step::Close),
        2 => p.clone().prop_map(Step::End),
        2 => (p.clone(), -10i64..20_000, prop::bool::weighted(0.2))
            .prop_map(|(p, d, l)| Step::SettleDeposit(p, d, l)),
        5 => (1i64..200).prop_map(Step::Advance),
        1 => (r.clone(), amt.clone()).prop_map(|(r, a)| Step::DepositPay(r, a)),
        3 => (0usize..4, 0u8..6, amt.clone()).prop_map(|(d, x, a)| Step::DepositAct(d, x, a)),
        3 => (r.clone(), -10i64..2_000, 0u8..3, 0usize..3, 0u32..3, any::<bool>())
            .prop_map(|(r, a, t, c, s, ch)| Step::Sale(r, a, t, c, s, ch)),
        2 => (0usize..3, -10i64..2_000, any::<bool>()).prop_map(|(s, a, c)| Step::RefundSale(s, a, c)),
        2 => (r.clone(), -10i64..2_000, 0u8..3, 0usize..3, 0u32..3)
            .prop_map(|(r, a, t, c, n)| Step::Hold(r, a, t, c, n)),
        3 => (0usize..3, 0u8..4, -10i64..2_000, any::<bool>())
            .prop_map(|(s, x, a, c)| Step::SaleAct(s, x, a, c)),
        1 => (0usize..3, -10i64..500).prop_map(|(n, a)| Step::PayAgent(n, a)),
        2 => (r.clone(), -10i64..1_000, any::<bool>()).prop_map(|(r, a, c)| Step::Settle(r, a, c)),
        2 => r.clone().prop_map(Step::WithdrawAll),
        1 => (r.clone(), amt.clone()).prop_map(|(r, a)| Step::Withdraw(r, a)),
        1 => amt.prop_map(Step::Payout),
        1 => Just(Step::Sweep),
        3 => (0usize..30).prop_map(Step::Replay),
    ]
}

struct World {
    b: Books,
    now: Timestamp,
    n: usize,
    products: Vec<Product>,
    packages: Vec<Key>,
    deposits: Vec<Key>,
    sales: Vec<Key>,
    applied: Vec<(Key, BooksOp, BooksReceipt)>,
}

impl World {
    fn new(spend_order: SpendOrder) -> World {
        let now = Utc.with_ymd_and_hms(2026, 4, 30, 20, 0, 0).unwrap();
        let mut config = BooksConfig {
            credit_lines: vec![k("zhima")],
            rules: rules(),
            ..BooksConfig::default()
        };
        config.wallet.spend_order = spend_order;
        let mut w = World {
            b: Books::new(config, now).unwrap(),
            now,
            n: 0,
            products: products(),
            packages: Vec::new(),
            deposits: Vec::new(),
            sales: Vec::new(),
            applied: Vec::new(),
        };
        for (i, r) in RIDERS.iter().enumerate() {
            w.apply(BooksOp::OpenRider {
                rider: k(r),
                allow_negative: i == 2,
            })
            .unwrap();
            w.apply(BooksOp::TopUp {
                rider: k(r),
                amount: fen(30_000),
            })
            .unwrap();
        }
        // two packages to start with, sold through agent chains
        w.step(&Step::Purchase(0, 0, 2, false, 0)).unwrap();
        w.step(&Step::Purchase(1, 3, 1, true, 1)).unwrap();
        assert_eq!(w.packages.len(), 2);
        w
    }

    fn fingerprint(&self) -> String {
        serde_json::to_string(&self.b).unwrap()
    }

    /// Applies an op under a fresh id; a refusal must change nothing.
    fn apply(&mut self, op: BooksOp) -> Result<Option<BooksReceipt>, TestCaseError> {
        self.n += 1;
        let id = k(&format!("op{}", self.n));
        let before = self.fingerprint();
        match self.b.apply(id, self.now, &op) {
            Ok(r) => {
                self.applied.push((id, op, r.clone()));
                Ok(Some(r))
            }
            Err(e) => {
                prop_assert_eq!(
                    self.fingerprint(),
                    before,
                    "refused {:?} ({}) changed the books",
                    op,
                    e
                );
                Ok(None)
            }
        }
    }

    /// The i-th newest element, counting round (so that most picks exist).
    fn nth<T: Copy>(v: &[T], i: usize, none: T) -> T {
        match v.len() {
            0 => none,
            n => v[n - 1 - i % n],
        }
    }
    fn pkg(&self, i: usize) -> Key {
        World::nth(&self.packages, i, k("no-such-package"))
    }
    fn dep(&self, i: usize) -> Key {
        World::nth(&self.deposits, i, k("no-such-deposit"))
    }

    fn check(&self) -> Result<(), TestCaseError> {
        let l = self.b.ledger();
        let t = l.totals();
        prop_assert_eq!(t.debits_posted, t.credits_posted);
        prop_assert_eq!(t.debits_pending, t.credits_pending);
        // no wallet goes negative unless it may
        for (i, r) in RIDERS.iter().enumerate() {
            let paid = l.account(&k(&format!("{r}:wallet"))).unwrap();
            if i != 2 {
                prop_assert!(
                    !paid.available().is_negative(),
                    "{} negative: {:?}",
                    r,
                    paid
                );
            }
            let gift = l.account(&k(&format!("{r}:gift"))).unwrap();
            prop_assert!(!gift.available().is_negative());
        }
        for a in l.accounts() {
            if matches!(
                a.kind,
                AccountKind::PackageLiability
                    | AccountKind::DepositHeld
                    | AccountKind::RefundsPayable
            ) {
                prop_assert!(!a.posted_balance().is_negative(), "{:?}", a);
            }
            if a.kind == AccountKind::Receivable {
                prop_assert!(!a.posted_balance().is_negative(), "{:?}", a);
            }
        }
        // refunds never exceed what was paid
        for o in self.b.wallets().orders() {
            let refunded = o.refunded_paid.checked_add(o.refunded_gift).unwrap();
            prop_assert!(refunded.to_minor() <= o.charged.to_minor(), "{:?}", o);
        }
        for p in self.b.packages() {
            let (paid, refunded) = self.b.package_payments(&p.id).unwrap();
            prop_assert!(refunded.to_minor() <= paid.to_minor(), "{}", p.id);
            prop_assert!(!p.package.paid_total.is_negative());
        }
        for s in self.b.sales() {
            prop_assert!(s.refunded.to_minor() <= s.amount.to_minor());
            let parts: i64 = s
                .split
                .parts
                .iter()
                .map(|p| p.total.to_minor().unwrap())
                .sum();
            prop_assert_eq!(
                Some(parts),
                s.amount.checked_sub(s.refunded).unwrap().to_minor()
            );
        }
        // every package at now, every agent, every deposit reconciles
        let rec = self.b.reconcile(self.now).unwrap();
        for p in &rec.packages {
            prop_assert_eq!(p.ledger, p.liability, "package {} off the books", p.package);
        }
        prop_assert_eq!(rec.package_liability_ledger, rec.package_liability_packages);
        for a in &rec.agents {
            prop_assert_eq!(a.settlement_total, a.ledger_net, "agent {}", a.node);
        }
        prop_assert!(rec.deposits.agrees, "{:?}", rec.deposits);
        prop_assert_eq!(rec.deposits.outstanding, rec.deposits.held_balance);
        prop_assert!(rec.agrees, "{:#?}", rec);
        // every recorded split sums to its amount
        for s in self.b.splits() {
            let parts: i64 = s.parts.iter().map(|p| p.total.to_minor().unwrap()).sum();
            prop_assert_eq!(Some(parts), s.amount.to_minor());
        }
        Ok(())
    }

    fn step(&mut self, s: &Step) -> Result<(), TestCaseError> {
        let src = |c: bool| {
            if c {
                PaymentSource::Channel
            } else {
                PaymentSource::Wallet
            }
        };
        let dst = |c: bool| {
            if c {
                RefundDestination::OriginalChannel
            } else {
                RefundDestination::Wallet
            }
        };
        match *s {
            Step::TopUp(r, a) => {
                self.apply(BooksOp::TopUp {
                    rider: k(RIDERS[r]),
                    amount: fen(a),
                })?;
            }
            Step::Gift(r, a, h) => {
                self.apply(BooksOp::GrantGift {
                    rider: k(RIDERS[r]),
                    amount: fen(a),
                    expires_at: self.now + Duration::hours(h),
                })?;
            }
            Step::Purchase(r, p, c, ch, d) => {
                let package = k(&format!("P{}", self.n + 1));
                let deposit = match d {
                    0 => DepositChoice::Pay,
                    1 => DepositChoice::Waive {
                        credit_line: k("zhima"),
                        expires_at: Some(self.now + Duration::hours(300)),
                    },
                    _ => DepositChoice::Existing {
                        deposit: self.dep(0),
                    },
                };
                let op = BooksOp::Purchase {
                    package,
                    rider: k(RIDERS[r]),
                    product: Box::new(self.products[p].clone()),
                    paid: None,
                    profile: RiderProfile::default(),
                    source: src(ch),
                    chain: CHAINS[c].iter().map(|s| (*s).to_owned()).collect(),
                    deposit,
                    // every other package leaves its fees due for the deposit
                    defer_fees: self.n % 2 == 0,
                };
                if self.apply(op)?.is_some() {
                    self.packages.push(package);
                    let book = self.b.package(&package).unwrap();
                    if book.deposit == Some(package) {
                        self.deposits.push(package);
                    }
                }
            }
            Step::Consume(p, o, swaps) => {
                let order = format!("SW-{o}");
                let package = self.pkg(p);
                let r = self.apply(BooksOp::Consume {
                    package,
                    order: order.clone(),
                    swaps,
                })?;
                // the same swap order under a new op id never consumes twice
                if r.is_some() {
                    let before = self.b.ledger().len();
                    let again = self.apply(BooksOp::Consume {
                        package,
                        order,
                        swaps,
                    })?;
                    if let Some(again) = again {
                        prop_assert!(again.events.iter().all(|e| e.name() != "consumed"));
                    }
                    prop_assert_eq!(self.b.ledger().len(), before);
                }
            }
            Step::Reverse(p, o) => {
                self.apply(BooksOp::ReverseConsumption {
                    package: self.pkg(p),
                    order: format!("SW-{o}"),
                })?;
            }
            Step::Freeze(p, days, approve) => {
                let package = self.pkg(p);
                let asked = self.apply(BooksOp::RequestFreeze {
                    package,
                    days,
                    reason: String::new(),
                })?;
                if asked.is_some() {
                    self.apply(if approve {
                        BooksOp::ApproveFreeze { package }
                    } else {
                        BooksOp::RejectFreeze {
                            package,
                            reason: String::new(),
                        }
                    })?;
                }
            }
            Step::Unfreeze(p) => {
                self.apply(BooksOp::Unfreeze {
                    package: self.pkg(p),
                })?;
            }
            Step::Renew(p, c) => {
                self.apply(BooksOp::Renew {
                    package: self.pkg(p),
                    paid: None,
                    profile: RiderProfile::default(),
                    source: src(c),
                })?;
            }
            Step::Change(p, q, c) => {
                self.apply(BooksOp::Change {
                    package: self.pkg(p),
                    to: Box::new(self.products[q].clone()),
                    profile: RiderProfile::default(),
                    source: src(c),
                    destination: dst(!c),
                })?;
            }
            Step::Refund(p, c) => {
                self.apply(BooksOp::Refund {
                    package: self.pkg(p),
                    destination: dst(c),
                })?;
            }
            Step::Close(p) => {
                self.apply(BooksOp::Close {
                    package: self.pkg(p),
                })?;
            }
            Step::End(p) => {
                self.apply(BooksOp::Command {
                    package: self.pkg(p),
                    command: Box::new(chargeswap_core::package::Command::End),
                    source: PaymentSource::Wallet,
                    destination: RefundDestination::Wallet,
                })?;
            }
            Step::SettleDeposit(p, d, lost) => {
                self.apply(BooksOp::SettleDeposit {
                    package: self.pkg(p),
                    damage: (d != 0).then(|| fen(d)),
                    lost,
                    fees: None,
                })?;
            }
            Step::Advance(h) => {
                self.now += Duration::hours(h);
                // time-driven transitions (with their fees) never fail
                for package in self.packages.clone() {
                    let r = self.apply(BooksOp::Tick { package })?;
                    prop_assert!(r.is_some(), "tick of {} refused", package);
                }
            }
            Step::DepositPay(r, a) => {
                let deposit = k(&format!("D{}", self.n + 1));
                let op = BooksOp::Deposit {
                    action: DepositOp::Pay {
                        deposit,
                        rider: k(RIDERS[r]),
                        amount: fen(a),
                    },
                };
                if self.apply(op)?.is_some() {
                    self.deposits.push(deposit);
                }
            }
            Step::DepositAct(d, x, a) => {
                let deposit = self.dep(d);
                let action = match x {
                    0 => DepositOp::StartRental {
                        deposit,
                        rental: k(&format!("R{}", self.n)),
                    },
                    1 => DepositOp::EndRental { deposit },
                    2 => DepositOp::Deduct {
                        deposit,
                        amount: fen(a / 4),
                        reason: DeductReason::Damage,
                    },
                    3 => DepositOp::ApplyRefund { deposit },
                    4 => DepositOp::ReviewRefund {
                        deposit,
                        approve: a % 2 == 0,
                    },
                    _ => DepositOp::ConfirmRefund { deposit },
                };
                self.apply(BooksOp::Deposit { action })?;
            }
            Step::Sale(r, a, t, c, swaps, ch) => {
                let order = k(&format!("S{}", self.n + 1));
                let product = [
                    ProductType::Swap,
                    ProductType::Charging,
                    ProductType::Rental,
                ][t as usize];
                let op = BooksOp::Sale {
                    order,
                    rider: k(RIDERS[r]),
                    amount: fen(a),
                    product,
                    swaps,
                    chain: CHAINS[c].iter().map(|s| (*s).to_owned()).collect(),
                    source: src(ch),
                };
                if self.apply(op)?.is_some() {
                    self.sales.push(order);
                }
            }
            Step::RefundSale(s, a, c) => {
                self.apply(BooksOp::RefundSale {
                    order: World::nth(&self.sales, s, k("no-such-sale")),
                    amount: fen(a),
                    destination: dst(c),
                })?;
            }
            Step::Hold(r, a, t, c, swaps) => {
                let order = k(&format!("H{}", self.n + 1));
                let op = BooksOp::Authorize {
                    order,
                    rider: k(RIDERS[r]),
                    amount: fen(a),
                    product: [
                        ProductType::Swap,
                        ProductType::Charging,
                        ProductType::Rental,
                    ][t as usize],
                    swaps,
                    chain: CHAINS[c].iter().map(|s| (*s).to_owned()).collect(),
                    expires_at: None,
                };
                if self.apply(op)?.is_some() {
                    self.sales.push(order);
                }
            }
            Step::SaleAct(s, x, a, c) => {
                let order = World::nth(&self.sales, s, k("no-such-sale"));
                self.apply(match x {
                    0 => BooksOp::Capture {
                        order,
                        amount: Some(fen(a)),
                    },
                    1 => BooksOp::Capture {
                        order,
                        amount: None,
                    },
                    2 => BooksOp::Release { order },
                    _ => BooksOp::Charge {
                        order,
                        amount: fen(a),
                        source: src(c),
                    },
                })?;
            }
            Step::PayAgent(n, a) => {
                self.apply(BooksOp::PayAgent {
                    node: NODES[n].to_owned(),
                    amount: fen(a),
                })?;
            }
            Step::Settle(r, a, c) => {
                self.apply(BooksOp::SettleReceivable {
                    rider: k(RIDERS[r]),
                    amount: fen(a),
                    source: src(c),
                })?;
            }
            Step::Withdraw(r, a) => {
                self.apply(BooksOp::Withdraw {
                    rider: k(RIDERS[r]),
                    amount: fen(a),
                })?;
            }
            Step::WithdrawAll(r) => {
                let rider = k(RIDERS[r]);
                let available = self
                    .b
                    .wallets()
                    .balance(&rider, self.b.ledger(), self.now)
                    .unwrap();
                self.apply(BooksOp::Withdraw {
                    rider,
                    amount: available.paid_available,
                })?;
            }
            Step::Payout(a) => {
                self.apply(BooksOp::PayoutRefunds { amount: fen(a) })?;
            }
            Step::Sweep => {
                self.apply(BooksOp::Sweep)?;
            }
            Step::Replay(i) => {
                let Some(j) = self.applied.len().checked_sub(i + 1) else {
                    return Ok(());
                };
                let (id, op, receipt) = self.applied[j].clone();
                let before = self.fingerprint();
                let again = self.b.apply(id, self.now, &op).unwrap();
                prop_assert_eq!(again, receipt);
                prop_assert_eq!(
                    self.fingerprint(),
                    before,
                    "replay of {} changed the books",
                    id
                );
            }
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn books_invariants_hold_after_every_step(
        gift_first in any::<bool>(),
        steps in prop::collection::vec(arb_step(), 1..60),
    ) {
        let mut w = World::new(if gift_first { SpendOrder::GiftFirst } else { SpendOrder::PaidFirst });
        w.check()?;
        for s in &steps {
            w.step(s)?;
            w.check()?;
        }
        // replaying every applied op with its original id changes nothing
        let before = w.fingerprint();
        for (id, op, receipt) in w.applied.clone() {
            prop_assert_eq!(w.b.apply(id, w.now, &op).unwrap(), receipt);
        }
        prop_assert_eq!(w.fingerprint(), before.clone());
        // the state survives a serde round trip (the ledger replays its history)
        let back: Books = serde_json::from_str(&before).unwrap();
        prop_assert_eq!(serde_json::to_string(&back).unwrap(), before);
    }
}
