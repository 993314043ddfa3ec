//! Unit tests of orders, abnormal-order detection and resolutions.

use super::*;
use crate::cabinet::SlotSnapshot;
use crate::custody::{Location, MoveId, MoveRequest};
use chrono::{Duration, TimeZone, Utc};

fn t(s: i64) -> Timestamp {
    Utc.with_ymd_and_hms(2025, 3, 1, 8, 0, 0).unwrap() + Duration::seconds(s)
}
const CAB: CabinetId = CabinetId(20_001);
fn cab() -> Option<DeviceRef> {
    Some(DeviceRef::Cabinet { cabinet: CAB })
}
fn bat(n: u32) -> DeviceNo {
    DeviceNo::new(u64::from(200_000 + n)).unwrap()
}
fn upd(phase: &str, status: OrderStatus, money: MoneyStatus) -> OrderUpdate {
    OrderUpdate {
        phase: phase.into(),
        status,
        transient: status == OrderStatus::InProgress,
        amount: None,
        money,
    }
}

#[test]
fn timeline_records_phase_changes_once() {
    let mut o = Order::new(1, OrderKind::Swap, RiderId(7), cab(), t(0));
    o.update(
        upd(
            "awaiting_return",
            OrderStatus::InProgress,
            MoneyStatus::Pending,
        ),
        t(1),
    );
    o.update(
        upd(
            "awaiting_return",
            OrderStatus::InProgress,
            MoneyStatus::Pending,
        ),
        t(2),
    );
    o.update(
        upd("done", OrderStatus::Completed, MoneyStatus::Charged),
        t(30),
    );
    let phases: Vec<&str> = o.timeline().iter().map(|e| e.phase.as_str()).collect();
    assert_eq!(phases, ["created", "awaiting_return", "done"]);
    assert_eq!(o.status(), OrderStatus::Completed);
    assert_eq!(o.cabinet(), Some(CAB));
}

#[test]
fn stuck_orders_are_found_only_past_the_threshold() {
    let mut o = Order::new(1, OrderKind::Swap, RiderId(7), cab(), t(0));
    o.update(
        upd("dispensing", OrderStatus::InProgress, MoneyStatus::Pending),
        t(10),
    );
    let rules = AbnormalRules::default();
    assert!(detect(&[o.clone()], &[], &Custody::new(), &rules, t(309)).is_empty());
    let f = detect(&[o.clone()], &[], &Custody::new(), &rules, t(310));
    assert_eq!(
        f,
        vec![Abnormal {
            order: Some(1),
            cabinet: Some(CAB),
            reason: AbnormalReason::Stuck {
                phase: "dispensing".into(),
                for_s: 300
            }
        }]
    );
    // a rental in use is not transient: never stuck
    let mut r = Order::new(2, OrderKind::Rental, RiderId(7), None, t(0));
    r.update(
        OrderUpdate {
            transient: false,
            ..upd("inuse", OrderStatus::InProgress, MoneyStatus::Pending)
        },
        t(0),
    );
    assert!(detect(&[r], &[], &Custody::new(), &rules, t(10_000_000)).is_empty());
}

#[test]
fn unsettled_money_is_found_until_confirmed() {
    let mut o = Order::new(1, OrderKind::Charging, RiderId(7), None, t(0));
    o.update(
        upd("closed", OrderStatus::Completed, MoneyStatus::Charged),
        t(100),
    );
    let rules = AbnormalRules::default();
    let f = detect(&[o.clone()], &[], &Custody::new(), &rules, t(700));
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].code(), ReasonCode::MoneyNotSettled);
    o.confirm_money();
    assert!(detect(&[o.clone()], &[], &Custody::new(), &rules, t(700)).is_empty());
    // a later refund needs its own confirmation
    o.update(
        upd("closed", OrderStatus::Refunded, MoneyStatus::Refunded),
        t(800),
    );
    assert_eq!(detect(&[o], &[], &Custody::new(), &rules, t(2000)).len(), 1);
}

#[test]
fn custody_mismatch_against_a_cabinet_report() {
    let mut book = Custody::new();
    let slot = |s| Location::Slot {
        cabinet: CAB,
        slot: s,
    };
    book.record(
        MoveRequest::register(MoveId::new(0, 1), bat(1), slot(1)),
        t(0),
    )
    .unwrap();
    book.record(
        MoveRequest::register(MoveId::new(0, 2), bat(2), slot(2)),
        t(0),
    )
    .unwrap();
    let report = CabinetSnapshot {
        cabinet: CAB,
        online: true,
        busy_with: None,
        slots: vec![
            SlotSnapshot {
                slot: 1,
                state: SlotState::Battery {
                    battery: Some(bat(1)),
                    model: "m".into(),
                    bms: None,
                },
            },
            SlotSnapshot {
                slot: 2,
                state: SlotState::Empty,
            },
            SlotSnapshot {
                slot: 3,
                state: SlotState::Battery {
                    battery: Some(bat(3)),
                    model: "m".into(),
                    bms: None,
                },
            },
            SlotSnapshot {
                slot: 4,
                state: SlotState::Battery {
                    battery: None,
                    model: "m".into(),
                    bms: None,
                },
            },
        ],
    };
    let o = Order::new(9, OrderKind::Swap, RiderId(7), cab(), t(0));
    let f = detect(&[o], &[report], &book, &AbnormalRules::default(), t(1));
    let mismatches: Vec<_> = f
        .iter()
        .filter(|a| a.code() == ReasonCode::CustodyMismatch)
        .collect();
    assert_eq!(mismatches.len(), 2);
    assert_eq!(
        mismatches[0].reason,
        AbnormalReason::CustodyMismatch {
            slot: 2,
            reported: None,
            custody: Some(bat(2))
        }
    );
    assert_eq!(mismatches[0].order, Some(9));
    assert_eq!(
        mismatches[1].reason,
        AbnormalReason::CustodyMismatch {
            slot: 3,
            reported: Some(bat(3)),
            custody: None
        }
    );
}

#[test]
fn repeated_failures_at_one_cabinet() {
    let rules = AbnormalRules::default();
    let mut orders = Vec::new();
    for i in 0..3 {
        let mut o = Order::new(i, OrderKind::Swap, RiderId(7), cab(), t(0));
        o.update(
            upd("done", OrderStatus::Failed, MoneyStatus::NotCharged),
            t(100 * i as i64),
        );
        o.confirm_money();
        orders.push(o);
    }
    let f = detect(&orders, &[], &Custody::new(), &rules, t(300));
    assert_eq!(
        f,
        vec![Abnormal {
            order: None,
            cabinet: Some(CAB),
            reason: AbnormalReason::RepeatedFailures {
                failures: 3,
                window_s: 3600
            }
        }]
    );
    // outside the window the oldest no longer counts
    assert!(detect(&orders, &[], &Custody::new(), &rules, t(3601)).is_empty());
}

#[test]
fn resolutions_map_to_machine_commands_and_are_audited() {
    let mut o = Order::new(1, OrderKind::Swap, RiderId(7), cab(), t(0));
    o.update(
        upd("dispensing", OrderStatus::InProgress, MoneyStatus::Pending),
        t(1),
    );
    assert_eq!(
        o.resolve("ops", Resolution::Retry, "door jam", t(2))
            .unwrap(),
        MachineCommand::Swap(SwapInput::OperatorReopen {
            operator: "ops".into(),
            reason: "door jam".into()
        })
    );
    assert_eq!(
        o.resolve(
            "ops",
            Resolution::ForceComplete { charge: true },
            "taken",
            t(3)
        )
        .unwrap(),
        MachineCommand::Swap(SwapInput::ForceComplete {
            operator: "ops".into(),
            reason: "taken".into(),
            charge: true
        })
    );
    o.update(
        upd("done", OrderStatus::Completed, MoneyStatus::Charged),
        t(4),
    );
    assert!(matches!(
        o.resolve("fin", Resolution::CancelAndRefund, "complaint", t(5)),
        Ok(MachineCommand::Swap(SwapInput::Refund { .. }))
    ));
    // a charged swap cannot be force-completed again, nor retried
    assert!(matches!(
        o.resolve(
            "ops",
            Resolution::ForceComplete { charge: false },
            "x",
            t(6)
        ),
        Err(OrderError::NotApplicable { .. })
    ));
    assert!(o.resolve("ops", Resolution::Retry, "x", t(6)).is_err());
    assert_eq!(
        o.resolve("", Resolution::Retry, "x", t(6)),
        Err(OrderError::MissingReason)
    );
    let audit: Vec<(&str, Resolution)> = o
        .audit()
        .iter()
        .map(|a| (a.operator.as_str(), a.resolution))
        .collect();
    assert_eq!(
        audit,
        [
            ("ops", Resolution::Retry),
            ("ops", Resolution::ForceComplete { charge: true }),
            ("fin", Resolution::CancelAndRefund)
        ]
    );
    // other kinds
    let mut c = Order::new(2, OrderKind::Charging, RiderId(7), None, t(0));
    assert!(matches!(
        c.resolve(
            "ops",
            Resolution::ForceComplete { charge: true },
            "stuck",
            t(1)
        ),
        Ok(MachineCommand::Charging(ChargingInput::Stop { .. }))
    ));
    let mut p = Order::new(3, OrderKind::PackagePurchase, RiderId(7), None, t(0));
    assert_eq!(
        p.resolve(
            "fin",
            Resolution::CancelAndRefund,
            "duplicate purchase",
            t(1)
        ),
        Ok(MachineCommand::RefundPurchase { order: 3 })
    );
    let mut r = Order::new(4, OrderKind::Rental, RiderId(7), None, t(0));
    assert_eq!(
        r.resolve("ops", Resolution::CancelAndRefund, "no stock", t(1)),
        Ok(MachineCommand::Rental(RentalInput::Cancel))
    );
}

#[test]
fn views_follow_the_machines() {
    use crate::swap::tests::{bms, dev, package, request};
    let mut s = SwapSession::new();
    let now = t(0);
    s.step(&SwapInput::Start(Box::new(request(package()))), now)
        .unwrap();
    let v = swap_view(&s);
    assert_eq!(v.phase, "awaiting_return");
    assert_eq!(v.status, OrderStatus::InProgress);
    s.step(
        &dev(crate::cabinet::DeviceEvent::BatteryInserted {
            slot: 1,
            battery: Some(DeviceNo::new(200_001).unwrap()),
            bms: bms(10),
        }),
        now,
    )
    .unwrap();
    s.step(
        &dev(crate::cabinet::DeviceEvent::BatteryRemoved {
            slot: 4,
            battery: None,
        }),
        now,
    )
    .unwrap();
    let v = swap_view(&s);
    assert_eq!(v.status, OrderStatus::Completed);
    assert_eq!(v.money, MoneyStatus::Charged);
    assert_eq!(v.amount, Some("3.00".parse().unwrap()));
    let c = ChargingSession::new();
    assert_eq!(charging_view(&c).phase, "idle");
    let r = Rental::new();
    assert_eq!(rental_view(&r).status, OrderStatus::InProgress);
}

proptest::proptest! {
    /// Random updates, confirmations and resolutions: a refused resolution
    /// changes nothing, the timeline never repeats a state, and detection
    /// flags an order as stuck exactly when it sat in a transient phase past
    /// the threshold, and as unsettled only when it ended unconfirmed.
    #[test]
    fn orders_and_detection(ops in proptest::collection::vec((0u8..8, 0u8..4, 1i64..400), 1..40)) {
        let rules = AbnormalRules::default();
        let mut o = Order::new(1, OrderKind::Swap, RiderId(7), cab(), t(0));
        let mut now = 0;
        let phases = ["awaiting_return", "dispensing", "done", "ejecting"];
        for (op, arg, dt) in ops {
            now += dt;
            match op {
                0..=3 => {
                    let status = match (op, arg) {
                        (0 | 1, _) => OrderStatus::InProgress,
                        (2, 0) => OrderStatus::Failed,
                        (2, _) => OrderStatus::Completed,
                        _ => OrderStatus::Refunded,
                    };
                    let money = match status {
                        OrderStatus::InProgress => MoneyStatus::Pending,
                        OrderStatus::Completed => MoneyStatus::Charged,
                        OrderStatus::Refunded => MoneyStatus::Refunded,
                        _ => MoneyStatus::NotCharged,
                    };
                    o.update(upd(phases[usize::from(arg)], status, money), t(now));
                }
                4 => o.confirm_money(),
                _ => {
                    let r = match arg {
                        0 => Resolution::Retry,
                        1 => Resolution::ForceComplete { charge: true },
                        2 => Resolution::ForceComplete { charge: false },
                        _ => Resolution::CancelAndRefund,
                    };
                    let before = o.clone();
                    if o.resolve("ops", r, "because", t(now)).is_err() {
                        proptest::prop_assert_eq!(&o, &before);
                    } else {
                        proptest::prop_assert_eq!(o.audit().len(), before.audit().len() + 1);
                    }
                }
            }
            for w in o.timeline().windows(2) {
                proptest::prop_assert!(w[0].phase != w[1].phase || w[0].status != w[1].status);
            }
            let found = detect(&[o.clone()], &[], &Custody::new(), &rules, t(now));
            let since = o.timeline().last().unwrap().at;
            let stuck = o.status() == OrderStatus::InProgress
                && (t(now) - since).num_seconds() >= i64::from(rules.swap_stuck_s);
            proptest::prop_assert_eq!(found.iter().any(|a| a.code() == ReasonCode::Stuck), stuck);
            if found.iter().any(|a| a.code() == ReasonCode::MoneyNotSettled) {
                proptest::prop_assert!(o.status().is_terminal());
            }
        }
    }
}
