//! Tests of the executor: machine effects carried out through the books.

use super::*;
use crate::books::{Books, BooksConfig, BooksOp};
use crate::cabinet::DeviceEvent;
use crate::custody::{Location, MoveId, RiderId};
use crate::ledger::Key;
use crate::numbering::DeviceNo;
use crate::order::{MoneyStatus, Order, OrderError, OrderKind, Resolution, swap_view};
use crate::org::{Actor, Role};
use crate::package::Product;
use crate::settlement::RevenueRules;
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
                      {"node": "agent-east", "product": "swap", "percent": "20", "per_swap": "0.20"},
                      {"node": "agent-east", "product": "swap_package", "percent": "20", "per_swap": "0.20"}]}"#,
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
    Executor::new(config(), book).with_books(books())
}

pub(crate) fn config() -> ExecutorConfig {
    ExecutorConfig {
        org: Some(org()),
        credit_line: Key::new("platform:credit_line").unwrap(),
    }
}

/// Carried out now, or not core's work.
pub(crate) fn carried(c: &Carried) -> bool {
    matches!(c, Carried::Done | Carried::Covered | Carried::Host)
}

/// Carried out again: nothing changed.
pub(crate) fn replayed(c: &Carried) -> bool {
    matches!(c, Carried::Duplicate | Carried::Covered | Carried::Host)
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
        assert!(r.iter().all(carried), "{r:?}");
        if replay_effects {
            let again = ex.carry_out_swap(CAB, RIDER, &d.effects, t(at));
            assert!(again.iter().all(replayed), "{again:?}");
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
        let r = ex.carry_out_swap(CAB, RIDER, &d.effects, t(at));
        assert!(r.iter().all(carried), "{r:?}");
        if replay_effects {
            let again = ex.carry_out_swap(CAB, RIDER, &d.effects, t(at));
            assert!(again.iter().all(replayed), "{again:?}");
        }
    }
    s
}

#[test]
fn a_package_swap_consumes_once_and_recognises_its_value_on_the_books() {
    let mut ex = executor();
    let s = swap_once(&mut ex, 1001, 10, true);
    assert_eq!(swap_view(&s).money, MoneyStatus::Charged);
    let b = ex.books().unwrap();
    let pkg = &b.package(&Key::new("pkg-42").unwrap()).unwrap().package;
    assert_eq!(pkg.consumptions.len(), 1);
    assert!(pkg.consumptions.contains_key("sw1001"));
    // the package's unit value 150.00 / 30 = 5.00 leaves the liability;
    // split as a swap package over the package's chain: agent-east's fixed
    // 0.20 first, the 4.80 left at 70:10:20 = 3.36 / 0.48 / 0.96
    assert_eq!(balance(&ex, "pkg-42:liability"), m("145.00"));
    assert_eq!(balance(&ex, "agent-east:revenue"), m("1.16"));
    assert_eq!(balance(&ex, "store-east-1:revenue"), m("0.48"));
    assert_eq!(balance(&ex, "platform:revenue"), m("3.36"));
    assert!(balanced(&ex));
}

#[test]
fn refund_reverses_consumption_and_shares_once() {
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
    assert!(r.iter().all(carried), "{r:?}");
    assert!(r.contains(&Carried::Done));
    let r = ex.carry_out_swap(CAB, RIDER, &d.effects, t(21));
    assert!(r.iter().all(replayed), "{r:?}");
    let b = ex.books().unwrap();
    let pkg = &b.package(&Key::new("pkg-42").unwrap()).unwrap().package;
    assert!(pkg.consumptions["sw1001"].reversed);
    assert_eq!(balance(&ex, "pkg-42:liability"), m("150.00"));
    assert_eq!(balance(&ex, "agent-east:revenue"), m("0.00"));
    assert_eq!(balance(&ex, "platform:revenue"), m("0.00"));
    assert!(balanced(&ex));
}

#[test]
fn failures_are_reported_and_change_nothing() {
    let mut ex = executor();
    let before = serde_json::to_string(&ex).unwrap();
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
            error: ExecutorError::Books { op_id, .. }
        } if op_id == "sw1.consume"
    ));
    let r = ex.carry_out_swap(
        CabinetId(99),
        RIDER,
        &[SwapEffect::PlaceHold {
            order: 1,
            amount: m("1.00"),
        }],
        t(0),
    );
    assert!(matches!(
        &r[0],
        Carried::Failed {
            error: ExecutorError::Org { cabinet: 99, .. }
        }
    ));
    // more than the wallet holds: the books refuse the hold
    let r = ex.carry_out_swap(
        CAB,
        RIDER,
        &[SwapEffect::PlaceHold {
            order: 1,
            amount: m("20.01"),
        }],
        t(0),
    );
    assert!(matches!(&r[0], Carried::Failed { .. }), "{r:?}");
    assert_eq!(serde_json::to_string(&ex).unwrap(), before);
}

#[test]
fn without_books_money_effects_are_the_hosts() {
    let mut ex = Executor::new(config(), Custody::new());
    let effects = [
        SwapEffect::PlaceHold {
            order: 1,
            amount: m("4.50"),
        },
        SwapEffect::CaptureHold {
            order: 1,
            amount: m("4.50"),
        },
        SwapEffect::SplitRevenue {
            order: 1,
            amount: m("4.50"),
        },
        SwapEffect::ConsumeEntitlement {
            order: 2,
            package: "pkg-42".into(),
        },
    ];
    let r = ex.carry_out_swap(CAB, RIDER, &effects, t(0));
    assert!(r.iter().all(|c| *c == Carried::Host), "{r:?}");
    assert!(ex.books().is_none());
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
    /// records exactly one consumption per charged swap, its liability fell
    /// by exactly 5.00 a swap, custody keeps every battery and the books
    /// reconcile after every swap.
    #[test]
    fn consumption_matches_charged_swaps(replays in proptest::collection::vec(any::<bool>(), 1..12)) {
        let mut ex = executor();
        let mut charged = 0i64;
        let n = replays.len();
        for (i, replay) in replays.into_iter().enumerate() {
            let s = swap_once(&mut ex, 2000 + i as u64, 10 + i as i64 * 60, replay);
            if swap_view(&s).money == MoneyStatus::Charged {
                charged += 1;
            }
            prop_assert_eq!(ex.custody().battery_count(), 6);
            prop_assert!(balanced(&ex));
        }
        let b = ex.books().unwrap();
        let pkg = &b.package(&Key::new("pkg-42").unwrap()).unwrap().package;
        let used = pkg.consumptions.values().filter(|c| !c.reversed).count();
        prop_assert_eq!(used as i64, charged);
        prop_assert_eq!(charged as usize, n); // every swap here finds a better battery
        prop_assert_eq!(balance(&ex, "pkg-42:liability"), Money::from_minor(15_000 - 500 * charged, crate::money::Currency::CNY));
        for s in b.splits() {
            let total = Money::sum(crate::money::Currency::CNY, s.parts.iter().map(|p| p.total)).unwrap();
            prop_assert_eq!(total, s.amount);
        }
    }
}

// ----- the books ---------------------------------------------------------------

/// Books in UTC+8 with the revenue rules above and a credit line: rider 7
/// has a wallet topped up with 20.00 and bought pkg-42 (150.00 for 30 swaps
/// in 30 days, 5.00 a swap) by channel, sold by store-east-1 under agent-east.
pub(crate) fn books() -> Books {
    let mut b = rider_books();
    let rider = Key::new("7").unwrap();
    let product: Product = serde_json::from_str(
        r#"{"id": "swap-30", "price": "150.00", "validity": {"days": 30}, "swaps": {"limited": 30}}"#,
    )
    .unwrap();
    let buy = BooksOp::Purchase {
        package: Key::new("pkg-42").unwrap(),
        rider,
        product: Box::new(product),
        paid: None,
        profile: Default::default(),
        source: PaymentSource::Channel,
        chain: vec!["store-east-1".into(), "agent-east".into()],
        deposit: Default::default(),
        defer_fees: false,
    };
    b.apply(Key::new("buy").unwrap(), t(0), &buy).unwrap();
    b
}

/// The same books without the package: rider 7 with 20.00 in the wallet.
pub(crate) fn rider_books() -> Books {
    let config = BooksConfig {
        rules: rules(),
        credit_lines: vec![Key::new("platform:credit_line").unwrap()],
        ..BooksConfig::default()
    };
    let mut b = Books::new(config, t(0)).unwrap();
    let rider = Key::new("7").unwrap();
    for (id, op) in [
        (
            "open",
            BooksOp::OpenRider {
                rider,
                allow_negative: false,
            },
        ),
        (
            "top",
            BooksOp::TopUp {
                rider,
                amount: m("20.00"),
            },
        ),
    ] {
        b.apply(Key::new(id).unwrap(), t(0), &op).unwrap();
    }
    b
}

pub(crate) fn balance(ex: &Executor, account: &str) -> Money {
    ex.books()
        .unwrap()
        .ledger()
        .account(&Key::new(account).unwrap())
        .map(|a| a.posted_balance())
        .unwrap_or_else(|| Money::zero(crate::money::Currency::CNY))
}

/// The books reconcile at their last operation's time: the ledger balances,
/// every package account equals the package's liability, every agent's
/// account its settlement total, deposits their held balance.
pub(crate) fn balanced(ex: &Executor) -> bool {
    let b = ex.books().unwrap();
    let at = b.last_at().unwrap();
    let r = b.reconcile(at).unwrap();
    r.agrees
}

fn m(s: &str) -> Money {
    s.parse().unwrap()
}

fn wallet_of(ex: &Executor, at: i64) -> crate::wallet::WalletBalance {
    let b = ex.books().unwrap();
    b.wallets()
        .balance(&Key::new("7").unwrap(), b.ledger(), t(at))
        .unwrap()
}

#[test]
fn a_wallet_swap_holds_captures_and_shares_on_the_books() {
    let mut ex = executor();
    let mut s = SwapSession::new();
    let mut req = request(Payment::Wallet {
        price: m("4.50"),
        available: m("20.00"),
    });
    req.rider_facts.battery = Some(bat(1));
    let d = s.step(&SwapInput::Start(Box::new(req)), t(1)).unwrap();
    let r = ex.carry_out_swap(CAB, RIDER, &d.effects, t(1));
    assert_eq!(r[0], Carried::Done, "{r:?}"); // the hold
    let w = wallet_of(&ex, 1);
    assert_eq!((w.paid, w.paid_available), (m("20.00"), m("15.50")));
    assert!(balanced(&ex));
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
    assert!(r.iter().all(carried), "{r:?}");
    assert!(r.contains(&Carried::Covered)); // the split came with the capture
    // 4.50 at the cabinet's chain as a swap: agent-east fixed 0.20 then
    // 20 % of 4.30 = 0.86 -> 1.06; store 10 % of 4.30 = 0.43; platform 3.01
    assert_eq!(balance(&ex, "7:wallet"), m("15.50"));
    assert_eq!(balance(&ex, "agent-east:revenue"), m("1.06"));
    assert_eq!(balance(&ex, "store-east-1:revenue"), m("0.43"));
    assert_eq!(balance(&ex, "platform:revenue"), m("3.01"));
    assert!(balanced(&ex));
    let sale = ex
        .books()
        .unwrap()
        .sale(&Key::new("sw1001").unwrap())
        .unwrap();
    assert_eq!(sale.amount, m("4.50"));
    // carrying out the same effects again changes nothing
    let len = ex.books().unwrap().ledger().len();
    let r = ex.carry_out_swap(CAB, RIDER, &d.effects, t(4));
    assert!(r.iter().all(replayed), "{r:?}");
    assert_eq!(ex.books().unwrap().ledger().len(), len);
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
    assert!(r.iter().all(carried), "{r:?}");
    assert_eq!(balance(&ex, "7:wallet"), m("20.00"));
    assert_eq!(balance(&ex, "agent-east:revenue"), m("0.00"));
    assert_eq!(balance(&ex, "platform:revenue"), m("0.00"));
    assert!(balanced(&ex));
}

#[test]
fn a_failed_wallet_swap_releases_the_hold() {
    let mut ex = executor();
    let mut s = SwapSession::new();
    let mut req = request(Payment::Wallet {
        price: m("4.50"),
        available: m("20.00"),
    });
    req.rider_facts.battery = Some(bat(1));
    for (i, at) in [(SwapInput::Start(Box::new(req)), 1), (SwapInput::Tick, 200)] {
        let d = s.step(&i, t(at)).unwrap();
        let r = ex.carry_out_swap(CAB, RIDER, &d.effects, t(at));
        assert!(r.iter().all(carried), "{r:?}");
        assert!(balanced(&ex));
    }
    let w = wallet_of(&ex, 300);
    assert_eq!((w.paid, w.paid_available), (m("20.00"), m("20.00")));
    assert_eq!(balance(&ex, "platform:revenue"), m("0.00"));
    // an operator then force-completes it with a charge: the hold is gone,
    // so the wallet is charged directly (wallet order sw1001 stays the
    // released hold; the charge is sw1001.pay.pay's order)
    let d = s
        .step(
            &SwapInput::ForceComplete {
                operator: "ops".into(),
                reason: "seen on video".into(),
                charge: true,
            },
            t(300),
        )
        .unwrap();
    assert!(
        d.effects
            .iter()
            .any(|e| matches!(e, SwapEffect::ChargeWallet { .. }))
    );
    let r = ex.carry_out_swap(CAB, RIDER, &d.effects, t(300));
    assert!(r.iter().all(carried), "{r:?}");
    assert_eq!(balance(&ex, "7:wallet"), m("15.50"));
    assert_eq!(balance(&ex, "agent-east:revenue"), m("1.06"));
    assert!(balanced(&ex));
    // and a refund returns it from the direct charge
    let d = s
        .step(
            &SwapInput::Refund {
                operator: "fin".into(),
                reason: "complaint".into(),
            },
            t(301),
        )
        .unwrap();
    let r = ex.carry_out_swap(CAB, RIDER, &d.effects, t(301));
    assert!(r.iter().all(carried), "{r:?}");
    assert_eq!(balance(&ex, "7:wallet"), m("20.00"));
    assert_eq!(balance(&ex, "agent-east:revenue"), m("0.00"));
    assert!(balanced(&ex));
}

#[test]
fn a_charging_price_above_the_hold_is_captured_then_charged_and_refunded_newest_first() {
    use crate::charging::{
        Authorization, ChargePoint, ChargerEvent, ChargingInput, ChargingPolicy, ChargingRequest,
        ChargingSession, StopReason,
    };
    let mut ex = executor();
    let mut s = ChargingSession::new();
    let rider = RiderId(7);
    let inputs = [
        ChargingInput::Start(ChargingRequest {
            order: 9,
            rider,
            // a pile of the cabinet's site (its agent chain is the cabinet's)
            point: ChargePoint::Pile {
                pile: 30_001,
                connector: 1,
            },
            point_online: true,
            point_busy: false,
            auth: Authorization::Wallet {
                hold: m("5.00"),
                available: m("20.00"),
            },
            policy: ChargingPolicy::default(),
            battery: None,
        }),
        ChargingInput::Device(ChargerEvent::Started),
        ChargingInput::Device(ChargerEvent::Stopped {
            reason: StopReason::Full,
            energy_wh: 9_000,
        }),
        ChargingInput::Priced { amount: m("7.00") },
    ];
    for (i, input) in inputs.iter().enumerate() {
        let d = s.step(input, t(10 + i as i64)).unwrap();
        let r = ex.carry_out_charging(Some(CAB), rider, &d.effects, t(10 + i as i64));
        assert!(r.iter().all(carried), "{r:?}");
        assert!(balanced(&ex));
    }
    // 5.00 captured + 2.00 charged: the shares of 7.00 as charging at the
    // cabinet's chain: only store-east-1 has a rule (10 %): 0.70
    assert_eq!(balance(&ex, "7:wallet"), m("13.00"));
    assert_eq!(balance(&ex, "store-east-1:revenue"), m("0.70"));
    let sale = ex.books().unwrap().sale(&Key::new("ch9").unwrap()).unwrap();
    assert_eq!((sale.amount, sale.payments.len()), (m("7.00"), 2));
    let d = s
        .step(
            &ChargingInput::Refund {
                operator: "fin".into(),
                reason: "r".into(),
            },
            t(20),
        )
        .unwrap();
    let r = ex.carry_out_charging(Some(CAB), rider, &d.effects, t(20));
    assert!(r.iter().all(carried), "{r:?}");
    assert_eq!(balance(&ex, "7:wallet"), m("20.00"));
    assert_eq!(balance(&ex, "store-east-1:revenue"), m("0.00"));
    assert!(balanced(&ex));
}

#[test]
fn a_split_that_disagrees_with_the_books_is_reported() {
    let mut ex = executor();
    let effects = [
        SwapEffect::PlaceHold {
            order: 5,
            amount: m("4.50"),
        },
        SwapEffect::CaptureHold {
            order: 5,
            amount: m("4.00"),
        },
        SwapEffect::SplitRevenue {
            order: 5,
            amount: m("4.50"),
        },
    ];
    let r = ex.carry_out_swap(CAB, RIDER, &effects, t(1));
    assert_eq!(&r[..2], &[Carried::Done, Carried::Done]);
    assert!(matches!(
        &r[2],
        Carried::Failed { error: ExecutorError::SplitMismatch { kept, .. } } if *kept == m("4.00")
    ));
    // the capture released the other 0.50
    assert_eq!(wallet_of(&ex, 1).paid_available, m("16.00"));
    assert!(balanced(&ex));
}

// ----- rentals: the package and its deposit on the books ----------------------

mod rentals {
    use super::*;
    use crate::package::Command as PC;
    use crate::rental::tests::request;
    use crate::rental::{DepositMode, Inspection, Rental, RentalInput};

    /// `x` hours after the start.
    fn h(x: i64) -> Timestamp {
        t(x * 3600)
    }

    struct Life {
        ex: Executor,
        r: Rental,
    }

    impl Life {
        /// Rental 500 of rider 7 bought at the cabinet (chain store-east-1,
        /// agent-east), the battery 200009 waiting at its slot 7.
        fn start(mode: DepositMode) -> Life {
            let mut ex = executor();
            ex.books = Some(rider_books());
            ex.custody
                .record(
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
            let mut l = Life {
                ex,
                r: Rental::new(),
            };
            l.go(RentalInput::Start(request(mode)), 0);
            l.go(RentalInput::DepositSecured, 0);
            l.go(
                RentalInput::Issue {
                    battery: bat(9),
                    from: Location::Slot {
                        cabinet: CAB,
                        slot: 7,
                    },
                },
                0,
            );
            l
        }

        /// One input at hour `at`, its effects carried out: nothing fails,
        /// the books reconcile and hold the same package as the rental.
        fn go(&mut self, i: RentalInput, at: i64) -> Vec<Carried> {
            let d = self.r.step(&i, h(at)).unwrap();
            let c = self
                .ex
                .carry_out_rental(Some(CAB), RIDER, 500, &d.effects, h(at));
            assert!(c.iter().all(carried), "{c:?}");
            assert!(balanced(&self.ex));
            let b = self.ex.books().unwrap();
            if let Some(p) = b.package(&Key::new("rt500").unwrap()) {
                let local = b.local_time(h(at)).unwrap();
                let (mut x, mut y) = (p.package.clone(), self.r.package().unwrap().clone());
                x.handle(&PC::Tick, local).unwrap();
                y.handle(&PC::Tick, local).unwrap();
                assert_eq!(x, y);
            }
            c
        }

        fn deposit(&self) -> crate::deposit::Deposit {
            let b = self.ex.books().unwrap();
            b.deposits()
                .deposit(&Key::new("rt500").unwrap())
                .unwrap()
                .clone()
        }
    }

    #[test]
    fn a_rental_earns_by_the_day_and_settles_fees_and_damage_from_the_deposit() {
        let mut l = Life::start(DepositMode::Paid);
        // bought by channel: 90.00 into the package's liability, the deposit held
        assert_eq!(balance(&l.ex, "rt500:liability"), m("90.00"));
        assert_eq!(balance(&l.ex, "7:deposit"), m("300.00"));
        assert_eq!(l.deposit().status, DepositStatus::Rented);
        // two days in: 2 started days x 3.00 = 6.00 earned, store-east-1 10 %
        l.go(RentalInput::Tick, 48);
        assert_eq!(balance(&l.ex, "rt500:liability"), m("84.00"));
        assert_eq!(balance(&l.ex, "store-east-1:revenue"), m("0.60"));
        // frozen from hour 48 for 25 h: 2 started days x 1.00 = 2.00, left
        // due; the end moves from hour 720 to 745
        l.go(
            RentalInput::Freeze {
                days: 2,
                reason: "ill".into(),
            },
            48,
        );
        l.go(RentalInput::Unfreeze, 73);
        assert_eq!(l.r.expires_at(), Some(h(745)));
        assert_eq!(balance(&l.ex, "platform:revenue"), m("5.40")); // no fee booked yet
        // back 49 h after the end: the grace ends at 769, 25 h after it =
        // 2 started days x 5.00 = 10.00 overdue; the package closes
        l.go(RentalInput::Tick, 745);
        l.go(RentalInput::Return { to: store_loc() }, 794);
        assert_eq!(balance(&l.ex, "rt500:liability"), m("0.00"));
        assert_eq!(l.r.fees_due(), Some(m("12.00")));
        // damage 20.00: 12.00 fees + 20.00 from the deposit, 268.00 applied for
        l.go(
            RentalInput::Inspect(Inspection::Damaged { fee: m("20.00") }),
            795,
        );
        assert_eq!(balance(&l.ex, "7:deposit"), m("268.00"));
        assert_eq!(l.deposit().status, DepositStatus::RefundRequested);
        // all 90.00 earned, the fees 12.00 and the damage 20.00; store-east-1
        // gets 10 % of the package (9.00) and of the fees (1.20)
        assert_eq!(balance(&l.ex, "store-east-1:revenue"), m("10.20"));
        assert_eq!(balance(&l.ex, "platform:revenue"), m("111.80"));
        assert_eq!(balance(&l.ex, "7:wallet"), m("20.00"));
        // carried out again: nothing changes
        let len = l.ex.books().unwrap().ledger().len();
        let d = l.r.handle(&RentalInput::Tick, h(796)).unwrap();
        assert!(d.effects.is_empty());
        assert_eq!(l.ex.books().unwrap().ledger().len(), len);
    }

    fn store_loc() -> Location {
        Location::Store {
            store: crate::custody::StoreId(3),
        }
    }

    #[test]
    fn a_waiver_is_captured_for_a_loss() {
        let mut l = Life::start(DepositMode::CreditWaiver);
        l.go(RentalInput::DeclareLost, 20);
        assert_eq!(l.deposit().status, DepositStatus::Captured);
        assert_eq!(l.ex.custody().location(bat(9)), Some(&Location::Retired));
        // the day used (3.00) and the 27 lapsed (87.00) are earned, the 300.00 captured
        assert_eq!(balance(&l.ex, "rt500:liability"), m("0.00"));
        assert_eq!(balance(&l.ex, "platform:revenue"), m("381.00"));
    }

    #[test]
    fn a_waiver_is_released_at_a_clean_return() {
        let mut l = Life::start(DepositMode::CreditWaiver);
        l.go(RentalInput::Return { to: store_loc() }, 30);
        l.go(RentalInput::Inspect(Inspection::Fine), 31);
        assert_eq!(l.deposit().status, DepositStatus::Released);
        assert!(l.ex.books().unwrap().ledger().open_holds().is_empty());
        assert_eq!(l.ex.custody().location(bat(9)), Some(&store_loc()));
    }

    #[test]
    fn a_rental_cancelled_before_the_hand_over_returns_everything() {
        let mut ex = executor();
        ex.books = Some(rider_books());
        let mut l = Life {
            ex,
            r: Rental::new(),
        };
        l.go(RentalInput::Start(request(DepositMode::Paid)), 0);
        l.go(RentalInput::DepositSecured, 0);
        let c = l.go(RentalInput::Cancel, 1);
        assert_eq!(c, [Carried::Done, Carried::Done]);
        // the 90.00 back to the channel it came from, the deposit applied for
        assert_eq!(balance(&l.ex, "rt500:liability"), m("0.00"));
        assert_eq!(balance(&l.ex, "platform:refunds_payable"), m("90.00"));
        assert_eq!(l.deposit().status, DepositStatus::RefundRequested);
        // a cancel whose purchase never reached the books changes nothing
        let mut ex = executor();
        ex.books = Some(rider_books());
        let mut r = Rental::new();
        let start = r
            .step(&RentalInput::Start(request(DepositMode::Paid)), h(0))
            .unwrap();
        assert!(!start.effects.is_empty()); // not carried out
        let d = r.step(&RentalInput::Cancel, h(1)).unwrap();
        let c = ex.carry_out_rental(Some(CAB), RIDER, 500, &d.effects, h(1));
        assert_eq!(c, [Carried::Duplicate, Carried::Duplicate]);
    }
}
