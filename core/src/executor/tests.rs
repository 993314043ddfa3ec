//! Tests of the executor: swaps wired to packages, settlement and org.

use super::*;
use crate::cabinet::DeviceEvent;
use crate::custody::{Location, MoveId, RiderId};
use crate::numbering::DeviceNo;
use crate::order::{MoneyStatus, Order, OrderError, OrderKind, Resolution, swap_view};
use crate::org::{Actor, Role};
use crate::package::{Product, Purchase};
use crate::swap::tests::{CAB, RIDER, bms, dev, request, t};
use crate::swap::{Payment, SwapInput, SwapSession};
use proptest::prelude::*;

fn org() -> Org {
    serde_json::from_str(
        r#"{"nodes": [
            {"id": "hq", "kind": "platform"},
            {"id": "agent-east", "kind": "agent", "parent": "hq"},
            {"id": "store-east-1", "kind": "store", "parent": "agent-east"},
            {"id": "agent-west", "kind": "agent", "parent": "hq"}],
          "assets": [{"kind": "cabinet", "id": "20001", "node": "store-east-1"}]}"#,
    )
    .unwrap()
}

fn rules() -> RevenueRules {
    serde_json::from_str(
        r#"{"rules": [{"node": "store-east-1", "percent": "10"},
                      {"node": "agent-east", "product": "swap", "percent": "20", "per_swap": "0.20"}]}"#,
    )
    .unwrap()
}

fn bat(n: u32) -> DeviceNo {
    DeviceNo::new(u64::from(200_000 + n)).unwrap()
}

fn executor() -> Executor {
    let mut book = Custody::new();
    let reg = |book: &mut Custody, i: u32, b: u32, at: Location| {
        book.record(MoveRequest::register(MoveId::new(0, i), bat(b), at), t(0))
            .unwrap();
    };
    reg(&mut book, 1, 1, Location::Rider { rider: RIDER });
    for (i, s) in [(3u32, 3u16), (4, 4), (5, 5), (6, 6), (8, 8)] {
        reg(
            &mut book,
            i,
            i,
            Location::Slot {
                cabinet: CAB,
                slot: s,
            },
        );
    }
    let mut ex = Executor::new(config(), book);
    add_pkg42(&mut ex);
    ex
}

pub(crate) fn config() -> ExecutorConfig {
    ExecutorConfig {
        utc_offset_s: 8 * 3600,
        rules: rules(),
        org: Some(org()),
        revenue_account: "platform:revenue".into(),
        credit_line_account: "platform:credit_line".into(),
    }
}

/// Package pkg-42 of rider 7: 30 swaps in 30 days for 150.00.
pub(crate) fn add_pkg42(ex: &mut Executor) {
    let product: Product = serde_json::from_str(
        r#"{"id": "swap-30", "price": "150.00", "validity": {"days": 30}, "swaps": {"limited": 30}}"#,
    )
    .unwrap();
    let local = ex.local(t(0));
    let (pkg, _) = Package::purchase(&Purchase::new("pkg-42", "7", product), local).unwrap();
    ex.add_package(pkg);
}

fn swap_once(ex: &mut Executor, order: u64, at: i64, replay_effects: bool) -> SwapSession {
    let mut req = request(Payment::Package {
        package: "pkg-42".into(),
        unit_value: "5.00".parse().unwrap(),
    });
    req.order = order;
    // which battery the rider holds and which slots are full come from custody
    let own = ex.custody().held_by_rider(RIDER)[0];
    req.rider_facts.battery = Some(own);
    req.cabinet.slots = (1..=8u16)
        .map(|slot| crate::cabinet::SlotSnapshot {
            slot,
            state: match ex.custody().occupant(CAB, slot) {
                Some(b) => crate::cabinet::SlotState::Battery {
                    battery: Some(b),
                    model: "48V20Ah".into(),
                    bms: bms(90 + u8::try_from(b.get() % 10).unwrap()),
                },
                None => crate::cabinet::SlotState::Empty,
            },
        })
        .collect();
    let mut s = SwapSession::new();
    let d = s.step(&SwapInput::Start(Box::new(req)), t(at)).unwrap();
    let mut decisions = vec![d];
    if let crate::swap::Phase::AwaitingReturn { slot } = *s.phase() {
        let d = s
            .step(
                &dev(DeviceEvent::BatteryInserted {
                    slot,
                    battery: Some(own),
                    bms: bms(10),
                }),
                t(at),
            )
            .unwrap();
        decisions.push(d);
    }
    for d in &decisions {
        let r = ex.carry_out_swap(CAB, RIDER, &d.effects, t(at));
        assert!(
            r.iter().all(|c| !matches!(c, Carried::Failed { .. })),
            "{r:?}"
        );
        if replay_effects {
            let again = ex.carry_out_swap(CAB, RIDER, &d.effects, t(at));
            assert!(
                again
                    .iter()
                    .all(|c| matches!(c, Carried::Duplicate | Carried::Host))
            );
        }
    }
    // take whichever battery the machine dispensed
    if let crate::swap::Phase::Dispensing { slot, battery, .. } = *s.phase() {
        let d = s
            .step(
                &dev(DeviceEvent::BatteryRemoved {
                    slot,
                    battery: Some(battery),
                }),
                t(at),
            )
            .unwrap();
        ex.carry_out_swap(CAB, RIDER, &d.effects, t(at));
        if replay_effects {
            let again = ex.carry_out_swap(CAB, RIDER, &d.effects, t(at));
            assert!(
                again
                    .iter()
                    .all(|c| matches!(c, Carried::Duplicate | Carried::Host))
            );
        }
    }
    s
}

#[test]
fn a_swap_consumes_one_entitlement_and_splits_revenue_by_the_cabinets_chain() {
    let mut ex = executor();
    let s = swap_once(&mut ex, 1001, 10, true);
    assert_eq!(swap_view(&s).money, MoneyStatus::Charged);
    let pkg = ex.package("pkg-42").unwrap();
    assert_eq!(pkg.consumptions.len(), 1);
    let split = &ex.splits()["1001"];
    // 5.00: per-swap fixed 0.20 to agent-east, then 10 % store, 20 % agent,
    // the rest platform; parts always sum to the amount
    let total = Money::sum(
        crate::money::Currency::CNY,
        split.parts.iter().flat_map(|p| [p.fixed, p.share]),
    )
    .unwrap();
    assert_eq!(total, "5.00".parse().unwrap());
    let nodes: Vec<Option<&str>> = split.parts.iter().map(|p| p.node.as_deref()).collect();
    assert!(nodes.contains(&Some("store-east-1")) && nodes.contains(&Some("agent-east")));
}

#[test]
fn refund_reverses_consumption_and_split_once() {
    let mut ex = executor();
    let mut s = swap_once(&mut ex, 1001, 10, false);
    let d = s
        .step(
            &SwapInput::Refund {
                operator: "fin".into(),
                reason: "complaint".into(),
            },
            t(20),
        )
        .unwrap();
    let r = ex.carry_out_swap(CAB, RIDER, &d.effects, t(20));
    assert!(
        r.iter().all(|c| matches!(c, Carried::Done | Carried::Host)),
        "{r:?}"
    );
    let r = ex.carry_out_swap(CAB, RIDER, &d.effects, t(21));
    assert!(
        r.iter()
            .all(|c| matches!(c, Carried::Duplicate | Carried::Host)),
        "{r:?}"
    );
    assert!(ex.package("pkg-42").unwrap().consumptions["1001"].reversed);
    assert_eq!(ex.splits()["1001:refund"].amount, "-5.00".parse().unwrap());
}

#[test]
fn failures_are_reported_and_change_nothing() {
    let mut ex = executor();
    let r = ex.carry_out_swap(
        CAB,
        RIDER,
        &[SwapEffect::ConsumeEntitlement {
            order: 1,
            package: "nope".into(),
        }],
        t(0),
    );
    assert!(matches!(
        &r[0],
        Carried::Failed {
            error: ExecutorError::UnknownPackage { .. }
        }
    ));
    let (custody, splits) = (ex.custody().clone(), ex.splits().clone());
    let r = ex.carry_out_swap(
        CabinetId(99),
        RIDER,
        &[SwapEffect::SplitRevenue {
            order: 1,
            amount: "1.00".parse().unwrap(),
        }],
        t(0),
    );
    assert!(matches!(
        &r[0],
        Carried::Failed {
            error: ExecutorError::Org { cabinet: 99, .. }
        }
    ));
    assert_eq!((ex.custody(), ex.splits()), (&custody, &splits));
}

#[test]
fn operator_resolutions_pass_the_org_permission_checks() {
    let org = org();
    let mut o = Order::new(
        1,
        OrderKind::Swap,
        RiderId(7),
        Some(crate::order::DeviceRef::Cabinet { cabinet: CAB }),
        t(0),
    );
    let east = Actor {
        id: "east-admin".into(),
        role: Role::AgentAdmin,
        node: Some("agent-east".into()),
    };
    let west = Actor {
        id: "west-admin".into(),
        role: Role::AgentAdmin,
        node: Some("agent-west".into()),
    };
    let fin = Actor {
        id: "fin".into(),
        role: Role::FinanceAdmin,
        node: None,
    };
    // the east agent's admin may force-complete an order at its cabinet
    assert!(
        o.resolve_as(
            &org,
            &east,
            Resolution::ForceComplete { charge: true },
            "seen on video",
            t(1)
        )
        .is_ok()
    );
    // the west agent's admin may not: outside its subtree
    assert!(matches!(
        o.resolve_as(&org, &west, Resolution::Retry, "x", t(2)),
        Err(OrderError::NotPermitted { .. })
    ));
    // refunds of charged orders need ApproveRefunds: finance yes, agent admin no
    o.update(
        crate::order::OrderUpdate {
            phase: "done".into(),
            status: crate::order::OrderStatus::Completed,
            transient: false,
            amount: None,
            money: MoneyStatus::Charged,
        },
        t(3),
    );
    assert!(matches!(
        o.resolve_as(&org, &east, Resolution::CancelAndRefund, "complaint", t(4)),
        Err(OrderError::NotPermitted { .. })
    ));
    assert!(
        o.resolve_as(&org, &fin, Resolution::CancelAndRefund, "complaint", t(5))
            .is_ok()
    );
    let who: Vec<&str> = o.audit().iter().map(|a| a.operator.as_str()).collect();
    assert_eq!(who, ["east-admin", "fin"]);
}

proptest! {
    /// Many swaps in a row, effects sometimes carried out twice: the package
    /// records exactly one consumption per charged swap, every split sums to
    /// its order amount, and custody keeps every battery.
    #[test]
    fn consumption_matches_charged_swaps(replays in proptest::collection::vec(any::<bool>(), 1..12)) {
        let mut ex = executor();
        let mut charged = 0usize;
        let n = replays.len();
        for (i, replay) in replays.into_iter().enumerate() {
            let s = swap_once(&mut ex, 2000 + i as u64, 10 + i as i64 * 60, replay);
            if swap_view(&s).money == MoneyStatus::Charged {
                charged += 1;
            }
            prop_assert_eq!(ex.custody().battery_count(), 6);
        }
        let used = ex.package("pkg-42").unwrap().consumptions.values().filter(|c| !c.reversed).count();
        prop_assert_eq!(used, charged);
        prop_assert_eq!(charged, n); // every swap here finds a better battery
        for s in ex.splits().values() {
            let total = Money::sum(crate::money::Currency::CNY, s.parts.iter().flat_map(|p| [p.fixed, p.share])).unwrap();
            prop_assert_eq!(total, s.amount);
        }
    }
}

// ----- wired to the ledger and wallets ---------------------------------------

use crate::deposit::{DepositConfig, Deposits};
use crate::ledger::{AccountKind as Kind, Key, Ledger, NewAccount as Acct};
use crate::wallet::{PaymentSource, WalletConfig, WalletOp, Wallets};

pub(crate) fn money_executor() -> Executor {
    let (ledger, wallets, deposits) = books();
    executor().with_money(ledger, wallets, deposits)
}

/// A ledger with the platform accounts, rider 7's wallet topped up with
/// 20.00, and pkg-42's liability holding its 150.00 purchase.
pub(crate) fn books() -> (Ledger, Wallets, Deposits) {
    let now = t(0);
    let mut ledger = Ledger::new();
    let mut wallets = Wallets::new(WalletConfig::standard());
    wallets.create_platform_accounts(&mut ledger, now).unwrap();
    ledger
        .create_account(
            &Acct::new(Key::new("platform:credit_line").unwrap(), Kind::CreditLine),
            now,
        )
        .unwrap();
    ledger
        .create_account(
            &Acct::new(Key::new("platform:revenue").unwrap(), Kind::PlatformRevenue),
            now,
        )
        .unwrap();
    ledger
        .create_account(
            &Acct::new(
                Key::new("pkg-42:liability").unwrap(),
                Kind::PackageLiability,
            )
            .no_overdraft(),
            now,
        )
        .unwrap();
    let rider = Key::new("7").unwrap();
    let op = |s: &str| Key::new(s).unwrap();
    wallets
        .apply(
            op("open"),
            &WalletOp::Open {
                rider,
                allow_negative: false,
            },
            &mut ledger,
            now,
        )
        .unwrap();
    wallets
        .apply(
            op("top"),
            &WalletOp::TopUp {
                rider,
                amount: "20.00".parse().unwrap(),
            },
            &mut ledger,
            now,
        )
        .unwrap();
    // the rider bought package pkg-42 for 150.00 through the channel
    wallets
        .apply(
            op("buy"),
            &WalletOp::Pay {
                rider,
                order: Key::new("pkg-42").unwrap(),
                amount: "150.00".parse().unwrap(),
                credit_account: Key::new("pkg-42:liability").unwrap(),
                code: Key::new("package_purchase").unwrap(),
                source: PaymentSource::Channel,
            },
            &mut ledger,
            now,
        )
        .unwrap();
    (ledger, wallets, Deposits::new(DepositConfig::standard()))
}

pub(crate) fn balance(ex: &Executor, account: &str) -> Money {
    ex.money()
        .unwrap()
        .ledger
        .account(&Key::new(account).unwrap())
        .map(|a| a.posted_balance())
        .unwrap_or_else(|| Money::zero(crate::money::Currency::CNY))
}

pub(crate) fn balanced(ex: &Executor) -> bool {
    let t = ex.money().unwrap().ledger.totals();
    t.debits_posted == t.credits_posted && t.debits_pending == t.credits_pending
}

fn m(s: &str) -> Money {
    s.parse().unwrap()
}

#[test]
fn a_wallet_swap_holds_captures_and_shares_on_the_ledger() {
    let mut ex = money_executor();
    let mut s = SwapSession::new();
    let mut req = request(Payment::Wallet {
        price: m("4.50"),
        available: m("20.00"),
    });
    req.rider_facts.battery = Some(bat(1));
    let d = s.step(&SwapInput::Start(Box::new(req)), t(1)).unwrap();
    let r = ex.carry_out_swap(CAB, RIDER, &d.effects, t(1));
    assert_eq!(r[0], Carried::Done, "{r:?}"); // the hold
    let w = ex
        .money()
        .unwrap()
        .wallets
        .balance(&Key::new("7").unwrap(), &ex.money().unwrap().ledger, t(1))
        .unwrap();
    assert_eq!((w.paid, w.paid_available), (m("20.00"), m("15.50")));
    let d = s
        .step(
            &dev(DeviceEvent::BatteryInserted {
                slot: 1,
                battery: Some(bat(1)),
                bms: bms(10),
            }),
            t(2),
        )
        .unwrap();
    ex.carry_out_swap(CAB, RIDER, &d.effects, t(2));
    let d = s
        .step(
            &dev(DeviceEvent::BatteryRemoved {
                slot: 4,
                battery: Some(bat(4)),
            }),
            t(3),
        )
        .unwrap();
    let r = ex.carry_out_swap(CAB, RIDER, &d.effects, t(3));
    assert!(
        r.iter().all(|c| matches!(c, Carried::Done | Carried::Host)),
        "{r:?}"
    );
    // 4.50: agent-east fixed 0.20 then 20 % of 4.30 = 0.86 -> 1.06; store 10 % of 4.30 = 0.43
    assert_eq!(balance(&ex, "7:wallet"), m("15.50"));
    assert_eq!(balance(&ex, "agent-east:revenue"), m("1.06"));
    assert_eq!(balance(&ex, "store-east-1:revenue"), m("0.43"));
    assert_eq!(balance(&ex, "platform:revenue"), m("3.01"));
    assert!(balanced(&ex));
    // carrying out the same effects again changes nothing
    let len = ex.money().unwrap().ledger.len();
    let r = ex.carry_out_swap(CAB, RIDER, &d.effects, t(4));
    assert!(
        r.iter()
            .all(|c| matches!(c, Carried::Duplicate | Carried::Host)),
        "{r:?}"
    );
    assert_eq!(ex.money().unwrap().ledger.len(), len);
    // an operator refund gives the rider the money back and reverses the shares
    let d = s
        .step(
            &SwapInput::Refund {
                operator: "fin".into(),
                reason: "complaint".into(),
            },
            t(5),
        )
        .unwrap();
    let r = ex.carry_out_swap(CAB, RIDER, &d.effects, t(5));
    assert!(
        r.iter().all(|c| matches!(c, Carried::Done | Carried::Host)),
        "{r:?}"
    );
    assert_eq!(balance(&ex, "7:wallet"), m("20.00"));
    assert_eq!(balance(&ex, "agent-east:revenue"), m("0.00"));
    assert_eq!(balance(&ex, "platform:revenue"), m("0.00"));
    assert!(balanced(&ex));
}

#[test]
fn a_package_swap_recognises_its_value_from_the_liability() {
    let mut ex = money_executor();
    swap_once(&mut ex, 1001, 10, true);
    // 150 liability - 5.00 recognised; revenue 5.00 shared: agent 0.20 + 20 % of 4.80 = 0.96 -> 1.16; store 0.48
    assert_eq!(balance(&ex, "pkg-42:liability"), m("145.00"));
    assert_eq!(balance(&ex, "agent-east:revenue"), m("1.16"));
    assert_eq!(balance(&ex, "store-east-1:revenue"), m("0.48"));
    assert_eq!(balance(&ex, "platform:revenue"), m("3.36"));
    assert!(balanced(&ex));
}

#[test]
fn a_failed_wallet_swap_releases_the_hold() {
    let mut ex = money_executor();
    let mut s = SwapSession::new();
    let mut req = request(Payment::Wallet {
        price: m("4.50"),
        available: m("20.00"),
    });
    req.rider_facts.battery = Some(bat(1));
    for (i, at) in [(SwapInput::Start(Box::new(req)), 1), (SwapInput::Tick, 200)] {
        let d = s.step(&i, t(at)).unwrap();
        let r = ex.carry_out_swap(CAB, RIDER, &d.effects, t(at));
        assert!(
            r.iter().all(|c| matches!(c, Carried::Done | Carried::Host)),
            "{r:?}"
        );
    }
    let w = ex
        .money()
        .unwrap()
        .wallets
        .balance(&Key::new("7").unwrap(), &ex.money().unwrap().ledger, t(300))
        .unwrap();
    assert_eq!((w.paid, w.paid_available), (m("20.00"), m("20.00")));
    assert_eq!(balance(&ex, "platform:revenue"), m("0.00"));
    assert!(balanced(&ex));
}

// ----- rentals: deposits and waivers -----------------------------------------

mod rentals {
    use super::*;
    use crate::rental::{DepositMode, Inspection, Rental, RentalInput, RentalRequest, RentalTerms};

    fn start(mode: DepositMode) -> (Executor, Rental) {
        let mut ex = money_executor();
        // a rental battery waits at slot 7 of the cabinet
        let mut book = ex.custody().clone();
        book.record(
            MoveRequest::register(
                MoveId::new(0, 9),
                bat(9),
                Location::Slot {
                    cabinet: CAB,
                    slot: 7,
                },
            ),
            t(0),
        )
        .unwrap();
        ex.custody = book;
        let req = RentalRequest {
            order: 500,
            rider: RIDER,
            identity_verified: true,
            terms: RentalTerms {
                package: 77,
                days: 30,
                deposit: m("300.00"),
                overdue_daily_fee: m("5.00"),
                grace_hours: 24,
                freeze_daily_fee: m("1.00"),
                expiring_notice_hours: 48,
                default_after_days: 30,
            },
            deposit_mode: mode,
        };
        let mut r = Rental::new();
        let go = |ex: &mut Executor, r: &mut Rental, i: RentalInput, at: i64| {
            let d = r.step(&i, t(at)).unwrap();
            let c = ex.carry_out_rental(RIDER, &d.effects, t(at));
            assert!(
                c.iter().all(|c| !matches!(c, Carried::Failed { .. })),
                "{c:?}"
            );
            c
        };
        go(&mut ex, &mut r, RentalInput::Start(req), 0);
        go(&mut ex, &mut r, RentalInput::DepositSecured, 1);
        go(
            &mut ex,
            &mut r,
            RentalInput::Issue {
                battery: bat(9),
                from: Location::Slot {
                    cabinet: CAB,
                    slot: 7,
                },
            },
            2,
        );
        (ex, r)
    }

    #[test]
    fn paid_deposit_damage_is_deducted_and_the_rest_requested_back() {
        let (mut ex, mut r) = start(DepositMode::Paid);
        assert_eq!(balance(&ex, "7:deposit"), m("300.00"));
        assert_eq!(
            ex.money()
                .unwrap()
                .deposits
                .deposit(&Key::new("rt500").unwrap())
                .unwrap()
                .status,
            DepositStatus::Rented
        );
        let ret = RentalInput::Return {
            to: Location::Slot {
                cabinet: CAB,
                slot: 7,
            },
        };
        let d = r.step(&ret, t(10)).unwrap();
        ex.carry_out_rental(RIDER, &d.effects, t(10));
        let d = r
            .step(
                &RentalInput::Inspect(Inspection::Damaged { fee: m("45.50") }),
                t(11),
            )
            .unwrap();
        let c = ex.carry_out_rental(RIDER, &d.effects, t(11));
        assert!(
            c.iter().all(|c| matches!(c, Carried::Done | Carried::Host)),
            "{c:?}"
        );
        // 45.50 to revenue; the remaining 254.50 waits for finance's review
        assert_eq!(balance(&ex, "platform:revenue"), m("45.50"));
        assert_eq!(balance(&ex, "7:deposit"), m("254.50"));
        assert_eq!(
            ex.money()
                .unwrap()
                .deposits
                .deposit(&Key::new("rt500").unwrap())
                .unwrap()
                .status,
            DepositStatus::RefundRequested
        );
        assert!(balanced(&ex));
        // carried out again: nothing changes
        let c = ex.carry_out_rental(RIDER, &d.effects, t(12));
        assert!(
            c.iter()
                .all(|c| matches!(c, Carried::Duplicate | Carried::Host)),
            "{c:?}"
        );
        assert_eq!(
            ex.custody().location(bat(9)),
            Some(&Location::Slot {
                cabinet: CAB,
                slot: 7
            })
        );
    }

    #[test]
    fn waived_deposit_is_captured_for_a_loss() {
        let (mut ex, mut r) = start(DepositMode::CreditWaiver);
        let d = r.step(&RentalInput::DeclareLost, t(20)).unwrap();
        let c = ex.carry_out_rental(RIDER, &d.effects, t(20));
        assert!(
            c.iter().all(|c| matches!(c, Carried::Done | Carried::Host)),
            "{c:?}"
        );
        assert_eq!(balance(&ex, "platform:revenue"), m("300.00"));
        assert_eq!(
            ex.money()
                .unwrap()
                .deposits
                .deposit(&Key::new("rt500").unwrap())
                .unwrap()
                .status,
            DepositStatus::Captured
        );
        assert_eq!(ex.custody().location(bat(9)), Some(&Location::Retired));
        assert!(balanced(&ex));
    }

    #[test]
    fn waived_deposit_is_released_at_a_clean_return() {
        let (mut ex, mut r) = start(DepositMode::CreditWaiver);
        for (i, at) in [
            (
                RentalInput::Return {
                    to: Location::Store {
                        store: crate::custody::StoreId(3),
                    },
                },
                30,
            ),
            (RentalInput::Inspect(Inspection::Fine), 31),
        ] {
            let d = r.step(&i, t(at)).unwrap();
            let c = ex.carry_out_rental(RIDER, &d.effects, t(at));
            assert!(
                c.iter().all(|c| matches!(c, Carried::Done | Carried::Host)),
                "{c:?}"
            );
        }
        assert_eq!(
            ex.money()
                .unwrap()
                .deposits
                .deposit(&Key::new("rt500").unwrap())
                .unwrap()
                .status,
            DepositStatus::Released
        );
        assert!(ex.money().unwrap().ledger.open_holds().is_empty());
        assert!(balanced(&ex));
    }
}
