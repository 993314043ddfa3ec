//! Property test: random sequences of wallet, deposit and ledger operations
//! keep every money invariant after every step.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

use chargeswap_core::deposit::{DeductReason, DepositConfig, DepositOp, Deposits};
use chargeswap_core::ledger::{AccountKind, Key, Ledger, NewAccount, Timestamp};
use chargeswap_core::money::{Currency, Money};
use chargeswap_core::report::{ReportOptions, daily};
use chargeswap_core::wallet::{
    PaymentSource, RefundDestination, SpendOrder, WalletConfig, WalletOp, Wallets,
};
use chrono::{Duration, TimeZone, Utc};
use proptest::prelude::*;

const RIDERS: [&str; 3] = ["r0", "r1", "r2"]; // r2 may go negative

fn k(s: &str) -> Key {
    Key::new(s).unwrap()
}
fn fen(v: i64) -> Money {
    Money::from_minor(v, Currency::CNY)
}

#[derive(Debug, Clone)]
enum Step {
    TopUp(usize, i64),
    Gift(usize, i64, i64),
    Pay(usize, i64, bool, bool),
    Authorize(usize, i64, Option<i64>),
    Capture(usize, Option<i64>),
    Release(usize),
    Refund(usize, i64, bool),
    Withdraw(usize, i64),
    Payout(i64),
    DepositPay(usize, i64),
    Waive(usize, i64, Option<i64>),
    StartRental(usize),
    EndRental(usize),
    Deduct(usize, i64, u8),
    ApplyRefund(usize),
    Review(usize, bool),
    Confirm(usize),
    Advance(i64),
    Replay(usize),
    /// apply for a refund, review, confirm: on the same deposit
    RefundFlow(usize, bool),
    /// authorise then capture or release: on the same order
    AuthThen(usize, i64, Option<i64>, bool),
}

fn arb_step() -> impl Strategy<Value = Step> {
    let r = 0usize..3;
    let amt = -50i64..5_000;
    let i = 0usize..4; // counted from the newest order / deposit
    prop_oneof![
        3 => (r.clone(), amt.clone()).prop_map(|(r, a)| Step::TopUp(r, a)),
        2 => (r.clone(), amt.clone(), -10i64..600).prop_map(|(r, a, e)| Step::Gift(r, a, e)),
        4 => (r.clone(), amt.clone(), any::<bool>(), any::<bool>()).prop_map(|(r, a, c, p)| Step::Pay(r, a, c, p)),
        2 => (r.clone(), amt.clone(), prop::option::of(-10i64..600)).prop_map(|(r, a, e)| Step::Authorize(r, a, e)),
        2 => (i.clone(), prop::option::of(amt.clone())).prop_map(|(o, a)| Step::Capture(o, a)),
        1 => i.clone().prop_map(Step::Release),
        3 => (i.clone(), amt.clone(), any::<bool>()).prop_map(|(o, a, c)| Step::Refund(o, a, c)),
        1 => (r.clone(), amt.clone()).prop_map(|(r, a)| Step::Withdraw(r, a)),
        1 => amt.clone().prop_map(Step::Payout),
        2 => (r.clone(), amt.clone()).prop_map(|(r, a)| Step::DepositPay(r, a)),
        2 => (r, amt.clone(), prop::option::of(-10i64..600)).prop_map(|(r, a, e)| Step::Waive(r, a, e)),
        2 => i.clone().prop_map(Step::StartRental),
        2 => i.clone().prop_map(Step::EndRental),
        2 => (i.clone(), amt, 0u8..3).prop_map(|(d, a, w)| Step::Deduct(d, a, w)),
        1 => i.clone().prop_map(Step::ApplyRefund),
        1 => (i.clone(), any::<bool>()).prop_map(|(d, a)| Step::Review(d, a)),
        1 => i.clone().prop_map(Step::Confirm),
        2 => (0i64..400).prop_map(Step::Advance),
        2 => (0usize..40).prop_map(Step::Replay),
        2 => (0usize..4, any::<bool>()).prop_map(|(d, a)| Step::RefundFlow(d, a)),
        2 => (0usize..3, 1i64..3_000, prop::option::of(-10i64..3_000), any::<bool>()).prop_map(|(r, a, c, cap)| Step::AuthThen(r, a, c, cap)),
    ]
}

#[derive(Clone, Debug)]
enum Applied {
    W(Key, WalletOp),
    D(Key, DepositOp),
}

struct World {
    l: Ledger,
    w: Wallets,
    d: Deposits,
    now: Timestamp,
    orders: Vec<Key>,
    deposits: Vec<Key>,
    applied: Vec<Applied>,
    n: usize,
}

impl World {
    fn new(order: SpendOrder) -> World {
        let now = Utc.with_ymd_and_hms(2024, 5, 1, 8, 0, 0).unwrap();
        let mut l = Ledger::new();
        let mut cfg = WalletConfig::standard();
        cfg.spend_order = order;
        let mut w = Wallets::new(cfg);
        let d = Deposits::new(DepositConfig::standard());
        w.create_platform_accounts(&mut l, now).unwrap();
        d.create_platform_accounts(&mut l, now).unwrap();
        l.create_account(
            &NewAccount::new(k("pkg"), AccountKind::PackageLiability),
            now,
        )
        .unwrap();
        l.create_account(&NewAccount::new(k("zhima"), AccountKind::CreditLine), now)
            .unwrap();
        for (i, r) in RIDERS.iter().enumerate() {
            let op = WalletOp::Open {
                rider: k(r),
                allow_negative: i == 2,
            };
            w.apply(k(&format!("open-{r}")), &op, &mut l, now).unwrap();
        }
        World {
            l,
            w,
            d,
            now,
            orders: Vec::new(),
            deposits: Vec::new(),
            applied: Vec::new(),
            n: 0,
        }
    }

    fn fingerprint(&self) -> String {
        format!(
            "{}|{}|{}",
            serde_json::to_string(&self.l).unwrap(),
            serde_json::to_string(&self.w).unwrap(),
            serde_json::to_string(&self.d).unwrap()
        )
    }

    fn sum_kind(&self, kind: AccountKind, pending: bool) -> i64 {
        self.l
            .accounts()
            .filter(|a| a.kind == kind)
            .map(|a| {
                if pending {
                    a.credits_pending.to_minor().unwrap()
                } else {
                    a.posted_balance().to_minor().unwrap()
                }
            })
            .sum()
    }

    fn check(&self) -> Result<(), TestCaseError> {
        let t = self.l.totals();
        prop_assert_eq!(t.debits_posted, t.credits_posted);
        prop_assert_eq!(t.debits_pending, t.credits_pending);
        for (i, r) in RIDERS.iter().enumerate() {
            let paid = self.l.account(&k(&format!("{r}:wallet"))).unwrap();
            if i != 2 {
                prop_assert!(
                    !paid.available().is_negative(),
                    "{} wallet negative: {:?}",
                    r,
                    paid
                );
            }
            let gift = self.l.account(&k(&format!("{r}:gift"))).unwrap();
            prop_assert!(!gift.available().is_negative());
            // gift lots add up to the gift account
            let lots: i64 = self
                .w
                .rider(&k(r))
                .unwrap()
                .lots
                .iter()
                .map(|l| l.remaining.to_minor().unwrap())
                .sum();
            prop_assert_eq!(lots, gift.posted_balance().to_minor().unwrap());
        }
        for o in self.w.orders() {
            let charged = o.charged.to_minor().unwrap();
            let rp = o.refunded_paid.to_minor().unwrap();
            let rg = o.refunded_gift.to_minor().unwrap();
            prop_assert!(
                rp + rg <= charged,
                "order {} refunded more than charged",
                o.order
            );
            prop_assert!(rg <= o.from_gift.to_minor().unwrap());
            prop_assert!(rp <= o.from_paid.to_minor().unwrap());
        }
        let payable = self.l.account(&k("platform:refunds_payable")).unwrap();
        prop_assert!(!payable.posted_balance().is_negative());
        // deposits outstanding == held balance; waivers == open credit holds
        prop_assert_eq!(
            self.d.outstanding().to_minor().unwrap(),
            self.sum_kind(AccountKind::DepositHeld, false)
        );
        prop_assert_eq!(
            self.d.waived_outstanding().to_minor().unwrap(),
            self.sum_kind(AccountKind::CreditHold, true)
        );
        prop_assert!(self.d.reconcile(&self.l).agrees);
        for d in self.d.deposits() {
            prop_assert!(!d.remaining().is_negative());
        }
        Ok(())
    }

    fn op_id(&mut self) -> Key {
        self.n += 1;
        k(&format!("op{}", self.n))
    }

    fn wallet(&mut self, op: WalletOp) -> Result<(), TestCaseError> {
        let id = self.op_id();
        let before = self.fingerprint();
        match self.w.apply(id, &op, &mut self.l, self.now) {
            Ok(_) => {
                self.applied.push(Applied::W(id, op));
                match op {
                    WalletOp::Pay { order, .. } | WalletOp::Authorize { order, .. } => {
                        self.orders.push(order)
                    }
                    _ => {}
                }
            }
            Err(_) => prop_assert_eq!(self.fingerprint(), before, "refused {:?} changed state", op),
        }
        Ok(())
    }

    fn deposit(&mut self, op: DepositOp) -> Result<(), TestCaseError> {
        let id = self.op_id();
        let before = self.fingerprint();
        match self.d.apply(id, &op, &mut self.l, self.now) {
            Ok(_) => {
                self.applied.push(Applied::D(id, op));
                match op {
                    DepositOp::Pay { deposit, .. } | DepositOp::Waive { deposit, .. } => {
                        self.deposits.push(deposit)
                    }
                    _ => {}
                }
            }
            Err(_) => prop_assert_eq!(self.fingerprint(), before, "refused {:?} changed state", op),
        }
        Ok(())
    }

    /// The i-th newest order (recent ones are the interesting ones).
    fn order(&self, i: usize) -> Key {
        let j = self.orders.len().checked_sub(i + 1);
        j.and_then(|j| self.orders.get(j))
            .copied()
            .unwrap_or_else(|| k("no-such-order"))
    }
    fn dep(&self, i: usize) -> Key {
        let j = self.deposits.len().checked_sub(i + 1);
        j.and_then(|j| self.deposits.get(j))
            .copied()
            .unwrap_or_else(|| k("no-such-deposit"))
    }

    fn step(&mut self, s: &Step) -> Result<(), TestCaseError> {
        let n = self.n;
        let mins = |m: i64| self.now + Duration::minutes(m);
        match *s {
            Step::TopUp(r, a) => self.wallet(WalletOp::TopUp {
                rider: k(RIDERS[r]),
                amount: fen(a),
            })?,
            Step::Gift(r, a, e) => {
                let op = WalletOp::GrantGift {
                    rider: k(RIDERS[r]),
                    amount: fen(a),
                    expires_at: mins(e),
                };
                self.wallet(op)?
            }
            Step::Pay(r, a, channel, pkg) => {
                let op = WalletOp::Pay {
                    rider: k(RIDERS[r]),
                    order: k(&format!("o{n}")),
                    amount: fen(a),
                    credit_account: k(if pkg { "pkg" } else { "platform:revenue" }),
                    code: k(if pkg { "package_purchase" } else { "swap_fee" }),
                    source: if channel {
                        PaymentSource::Channel
                    } else {
                        PaymentSource::Wallet
                    },
                };
                self.wallet(op)?
            }
            Step::Authorize(r, a, e) => {
                let op = WalletOp::Authorize {
                    rider: k(RIDERS[r]),
                    order: k(&format!("o{n}")),
                    amount: fen(a),
                    credit_account: k("platform:revenue"),
                    code: k("charging"),
                    expires_at: e.map(mins),
                };
                self.wallet(op)?
            }
            Step::Capture(o, a) => self.wallet(WalletOp::Capture {
                order: self.order(o),
                amount: a.map(fen),
            })?,
            Step::Release(o) => self.wallet(WalletOp::Release {
                order: self.order(o),
            })?,
            Step::Refund(o, a, channel) => {
                let destination = if channel {
                    RefundDestination::OriginalChannel
                } else {
                    RefundDestination::Wallet
                };
                self.wallet(WalletOp::Refund {
                    order: self.order(o),
                    amount: fen(a),
                    destination,
                })?
            }
            Step::Withdraw(r, a) => self.wallet(WalletOp::Withdraw {
                rider: k(RIDERS[r]),
                amount: fen(a),
            })?,
            Step::Payout(a) => self.wallet(WalletOp::Payout { amount: fen(a) })?,
            Step::DepositPay(r, a) => self.deposit(DepositOp::Pay {
                deposit: k(&format!("D{n}")),
                rider: k(RIDERS[r]),
                amount: fen(a),
            })?,
            Step::Waive(r, a, e) => {
                let op = DepositOp::Waive {
                    deposit: k(&format!("W{n}")),
                    rider: k(RIDERS[r]),
                    amount: fen(a),
                    credit_line: k("zhima"),
                    expires_at: e.map(mins),
                };
                self.deposit(op)?
            }
            Step::StartRental(d) => self.deposit(DepositOp::StartRental {
                deposit: self.dep(d),
                rental: k(&format!("R{n}")),
            })?,
            Step::EndRental(d) => self.deposit(DepositOp::EndRental {
                deposit: self.dep(d),
            })?,
            Step::Deduct(d, a, why) => {
                let reason = [
                    DeductReason::Damage,
                    DeductReason::Loss,
                    DeductReason::UnpaidFees,
                ][usize::from(why)];
                self.deposit(DepositOp::Deduct {
                    deposit: self.dep(d),
                    amount: fen(a),
                    reason,
                })?
            }
            Step::ApplyRefund(d) => self.deposit(DepositOp::ApplyRefund {
                deposit: self.dep(d),
            })?,
            Step::Review(d, approve) => self.deposit(DepositOp::ReviewRefund {
                deposit: self.dep(d),
                approve,
            })?,
            Step::Confirm(d) => self.deposit(DepositOp::ConfirmRefund {
                deposit: self.dep(d),
            })?,
            Step::Advance(m) => {
                self.now = mins(m);
                self.l.expire_pending(self.now).unwrap();
                self.w.sync_expired_holds(&self.l);
                self.d.sync_expired(&self.l);
                self.w.expire_gifts(&mut self.l, self.now).unwrap();
            }
            Step::RefundFlow(d, approve) => {
                let deposit = self.dep(d);
                self.deposit(DepositOp::ApplyRefund { deposit })?;
                self.check()?;
                self.deposit(DepositOp::ReviewRefund { deposit, approve })?;
                self.check()?;
                self.deposit(DepositOp::ConfirmRefund { deposit })?;
            }
            Step::AuthThen(r, a, c, capture) => {
                let order = k(&format!("o{n}"));
                let op = WalletOp::Authorize {
                    rider: k(RIDERS[r]),
                    order,
                    amount: fen(a),
                    credit_account: k("platform:revenue"),
                    code: k("charging"),
                    expires_at: None,
                };
                self.wallet(op)?;
                self.check()?;
                if capture {
                    self.wallet(WalletOp::Capture {
                        order,
                        amount: c.map(fen),
                    })?;
                } else {
                    self.wallet(WalletOp::Release { order })?;
                }
            }
            Step::Replay(i) => {
                if let Some(a) = self.applied.get(i).cloned() {
                    let before = self.fingerprint();
                    match a {
                        Applied::W(id, op) => {
                            self.w.apply(id, &op, &mut self.l, self.now).unwrap();
                        }
                        Applied::D(id, op) => {
                            self.d.apply(id, &op, &mut self.l, self.now).unwrap();
                        }
                    }
                    prop_assert_eq!(self.fingerprint(), before, "replay changed state");
                }
            }
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]
    #[test]
    fn money_invariants_hold_after_every_step(
        gift_first in any::<bool>(),
        steps in prop::collection::vec(arb_step(), 1..70),
    ) {
        let mut w = World::new(if gift_first { SpendOrder::GiftFirst } else { SpendOrder::PaidFirst });
        w.check()?;
        for s in &steps {
            w.step(s)?;
            w.check()?;
        }
        // replaying every applied op with its original id changes nothing
        let before = w.fingerprint();
        for a in w.applied.clone() {
            match a {
                Applied::W(id, op) => { w.w.apply(id, &op, &mut w.l, w.now).unwrap(); }
                Applied::D(id, op) => { w.d.apply(id, &op, &mut w.l, w.now).unwrap(); }
            }
        }
        prop_assert_eq!(w.fingerprint(), before);
        // the daily report agrees with the books: its last day's end-of-day
        // balances are today's, and its revenue adds up to the revenue account
        let opts = ReportOptions::china();
        let offset = chrono::FixedOffset::east_opt(opts.utc_offset_seconds).unwrap();
        let from = chrono::NaiveDate::from_ymd_opt(2024, 5, 1).unwrap();
        let to = w.now.with_timezone(&offset).date_naive();
        let days = daily(&w.l, from, to, &opts).unwrap();
        let last = days.last().unwrap();
        prop_assert_eq!(last.deposits_outstanding, w.d.outstanding());
        prop_assert_eq!(last.waivers_outstanding.to_minor().unwrap(), w.sum_kind(AccountKind::CreditHold, true));
        let pkg = w.l.account(&k("pkg")).unwrap().posted_balance();
        prop_assert_eq!(last.package_liabilities, pkg);
        let revenue: i64 = days.iter().map(|d| d.revenue_total.to_minor().unwrap()).sum();
        let booked = w.l.account(&k("platform:revenue")).unwrap().posted_balance();
        prop_assert_eq!(revenue, booked.to_minor().unwrap());
        // and the state survives a serde round trip
        let l2: Ledger = serde_json::from_str(&serde_json::to_string(&w.l).unwrap()).unwrap();
        prop_assert_eq!(serde_json::to_string(&l2).unwrap(), serde_json::to_string(&w.l).unwrap());
    }
}
