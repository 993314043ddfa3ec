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
    let mut ex = Executor::new(
        ExecutorConfig {
            utc_offset_s: 8 * 3600,
            rules: rules(),
            org: Some(org()),
        },
        book,
    );
    let product: Product = serde_json::from_str(
        r#"{"id": "swap-30", "price": "150.00", "validity": {"days": 30}, "swaps": {"limited": 30}}"#,
    )
    .unwrap();
    let local = ex.local(t(0));
    let (pkg, _) = Package::purchase(&Purchase::new("pkg-42", "7", product), local).unwrap();
    ex.add_package(pkg);
    ex
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
        let r = ex.carry_out_swap(CAB, &d.effects, t(at));
        assert!(
            r.iter().all(|c| !matches!(c, Carried::Failed { .. })),
            "{r:?}"
        );
        if replay_effects {
            let again = ex.carry_out_swap(CAB, &d.effects, t(at));
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
        ex.carry_out_swap(CAB, &d.effects, t(at));
        if replay_effects {
            let again = ex.carry_out_swap(CAB, &d.effects, t(at));
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
    let r = ex.carry_out_swap(CAB, &d.effects, t(20));
    assert!(
        r.iter().all(|c| matches!(c, Carried::Done | Carried::Host)),
        "{r:?}"
    );
    let r = ex.carry_out_swap(CAB, &d.effects, t(21));
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
    let before = ex.clone();
    let r = ex.carry_out_swap(
        CabinetId(99),
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
    assert_eq!(ex, before);
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
