//! Unit tests of the door sub-machine: every rule, alone.

use super::*;
use crate::cabinet::SlotSnapshot;
use chrono::TimeZone;

const CAB: CabinetId = CabinetId(20_001);
const RIDER: RiderId = RiderId(7);

fn t(s: i64) -> Timestamp {
    chrono::Utc.with_ymd_and_hms(2025, 3, 1, 8, 0, 0).unwrap() + Duration::seconds(s)
}
fn bat(n: u32) -> DeviceNo {
    DeviceNo::new(u64::from(200_000 + n)).unwrap()
}
fn ctx() -> DoorCtx {
    DoorCtx {
        cabinet: CAB,
        order: 9,
        rider: RIDER,
        rider_battery: Some(bat(1)),
        cause: Cause::Charging { order: 9 },
        close_timeout_s: 120,
    }
}
fn slot(s: SlotNo) -> Location {
    Location::Slot {
        cabinet: CAB,
        slot: s,
    }
}
fn rider() -> Location {
    Location::Rider { rider: RIDER }
}
fn dev(event: DeviceEvent) -> DoorInput {
    DoorInput::Device(CabinetEvent {
        cabinet: CAB,
        seq: None,
        event,
    })
}
fn seq(n: u64, event: DeviceEvent) -> DoorInput {
    DoorInput::Device(CabinetEvent {
        cabinet: CAB,
        seq: Some(n),
        event,
    })
}
fn bms(soc: u8) -> Option<BmsSummary> {
    Some(BmsSummary {
        soc,
        temp_dc: 250,
        faults: 0,
    })
}

/// Doors plus the event log and the custody move counter; every step
/// checks that replaying the log and a postcard round trip rebuild the
/// state, and that the decision's deadline is the state's.
struct Run {
    d: Doors,
    log: Vec<DoorEvent>,
    moves: u32,
}

impl Run {
    fn with(op: DoorOp) -> Run {
        let mut r = Run {
            d: Doors::new(),
            log: Vec::new(),
            moves: 0,
        };
        r.push(DoorEvent::Opened { op });
        r
    }
    fn push(&mut self, e: DoorEvent) {
        self.d.apply(&e);
        self.log.push(e);
    }
    fn go(&mut self, input: DoorInput, at: i64) -> DoorDecision {
        let d = self.d.step(&input, t(at), &ctx(), self.moves);
        for e in &d.events {
            self.moves += e.custody_moves();
        }
        self.log.extend(d.events.iter().cloned());
        let mut replayed = Doors::new();
        for e in &self.log {
            replayed.apply(e);
        }
        assert_eq!(replayed, self.d);
        let bytes = postcard::to_allocvec(&self.d).unwrap();
        assert_eq!(postcard::from_bytes::<Doors>(&bytes).unwrap(), self.d);
        assert_eq!(d.next_deadline, self.d.next_deadline());
        d
    }
}

fn moves(d: &DoorDecision) -> Vec<&MoveRequest> {
    d.effects
        .iter()
        .filter_map(|e| match e {
            DoorEffect::CustodyMove(m) => Some(m),
            _ => None,
        })
        .collect()
}

fn alerts(d: &DoorDecision) -> Vec<&DoorAlert> {
    d.effects
        .iter()
        .filter_map(|e| match e {
            DoorEffect::Alert(a) => Some(a),
            _ => None,
        })
        .collect()
}

#[test]
fn put_the_riders_battery_moves_it_exactly_from_the_rider() {
    let mut r = Run::with(DoorOp::put(3, 90, t(90)));
    assert_eq!(r.d.next_deadline(), Some(t(90)));
    let d = r.go(
        dev(DeviceEvent::BatteryInserted {
            slot: 3,
            battery: Some(bat(1)),
            bms: bms(20),
        }),
        10,
    );
    assert_eq!(
        d.outcome,
        Some(DoorOutcome::Inserted {
            slot: 3,
            battery: Some(bat(1)),
            bms: bms(20)
        })
    );
    assert_eq!(
        moves(&d),
        vec![&MoveRequest {
            id: MoveId::new(9, 0),
            battery: bat(1),
            from: Origin::Exactly { location: rider() },
            to: slot(3),
            cause: Cause::Charging { order: 9 },
        }]
    );
    assert!(alerts(&d).is_empty());
    assert_eq!(r.d.content(3), Some(Some(bat(1))));
    // the same report again: nothing
    let d = r.go(
        dev(DeviceEvent::BatteryInserted {
            slot: 3,
            battery: Some(bat(1)),
            bms: bms(20),
        }),
        11,
    );
    assert!(d.events.is_empty() && d.effects.is_empty() && d.outcome.is_none());
    // a door failure reported after the battery went in is late: ignored
    let d = r.go(dev(DeviceEvent::DoorFailed { slot: 3 }), 12);
    assert!(d.events.is_empty() && d.outcome.is_none());
}

#[test]
fn another_battery_moves_from_wherever_custody_has_it() {
    let mut r = Run::with(DoorOp::put(3, 90, t(90)));
    let d = r.go(
        dev(DeviceEvent::BatteryInserted {
            slot: 3,
            battery: Some(bat(9)),
            bms: None,
        }),
        10,
    );
    assert_eq!(moves(&d)[0].from, Origin::Anywhere);
    assert!(matches!(
        d.outcome,
        Some(DoorOutcome::Inserted {
            battery: Some(_),
            ..
        })
    ));
    // an unreadable battery: reported in, no custody move (no number)
    let mut r = Run::with(DoorOp::put(3, 90, t(90)));
    let d = r.go(
        dev(DeviceEvent::BatteryInserted {
            slot: 3,
            battery: None,
            bms: None,
        }),
        10,
    );
    assert!(moves(&d).is_empty());
    assert_eq!(r.d.content(3), Some(None));
    assert_eq!(r.moves, 0);
}

#[test]
fn a_failed_door_locks_the_slot_with_an_alert() {
    let mut r = Run::with(DoorOp::put(3, 90, t(90)));
    let d = r.go(dev(DeviceEvent::DoorFailed { slot: 3 }), 2);
    assert_eq!(d.outcome, Some(DoorOutcome::OpenFailed { slot: 3 }));
    assert_eq!(
        d.effects,
        vec![
            DoorEffect::LockSlot {
                cabinet: CAB,
                slot: 3,
                reason: LockReason::DoorFault
            },
            DoorEffect::Alert(DoorAlert::DoorFailed { slot: 3 })
        ]
    );
    assert!(r.d.is_locked(3));
    // another slot's failure is not ours
    let mut r = Run::with(DoorOp::put(3, 90, t(90)));
    assert!(
        r.go(dev(DeviceEvent::DoorFailed { slot: 4 }), 2)
            .outcome
            .is_none()
    );
    // a take that locks a foreign battery instead
    let op = DoorOp::take(3, Some(bat(9)), 60, t(60))
        .locking_on_fail(LockReason::ForeignBattery)
        .locking_if_left(LockReason::ForeignBattery);
    let mut r = Run::with(op);
    let d = r.go(dev(DeviceEvent::DoorFailed { slot: 3 }), 2);
    assert_eq!(
        alerts(&d),
        vec![&DoorAlert::ForeignBatteryRetained { slot: 3 }]
    );
}

#[test]
fn nothing_inserted_just_expires() {
    let mut r = Run::with(DoorOp::put(3, 90, t(90)));
    assert!(r.go(DoorInput::Tick, 89).outcome.is_none());
    let d = r.go(DoorInput::Tick, 90);
    assert_eq!(d.outcome, Some(DoorOutcome::Expired { slot: 3 }));
    assert!(d.effects.is_empty(), "a put is not locked: {:?}", d.effects);
}

#[test]
fn not_taken_reopens_once_then_locks_and_alerts() {
    let op = DoorOp::take(4, Some(bat(4)), 60, t(60))
        .reopening_once()
        .locking_if_left(LockReason::NotTaken);
    let mut r = Run::with(op);
    assert_eq!(
        r.d.content(4),
        Some(Some(bat(4))),
        "a fresh take slot holds its battery"
    );
    let d = r.go(DoorInput::Tick, 61);
    assert_eq!(
        d.outcome,
        Some(DoorOutcome::Reopened {
            slot: 4,
            deadline: t(121)
        })
    );
    assert_eq!(
        d.effects,
        vec![DoorEffect::OpenDoor {
            cabinet: CAB,
            slot: 4
        }]
    );
    assert_eq!(d.next_deadline, Some(t(121)));
    let d = r.go(DoorInput::Tick, 121);
    assert_eq!(d.outcome, Some(DoorOutcome::Expired { slot: 4 }));
    assert_eq!(
        d.effects,
        vec![
            DoorEffect::LockSlot {
                cabinet: CAB,
                slot: 4,
                reason: LockReason::NotTaken
            },
            DoorEffect::Alert(DoorAlert::BatteryNotTaken { slot: 4 })
        ]
    );
}

#[test]
fn a_door_closed_on_the_battery_counts_as_not_taken() {
    let op = DoorOp::take(4, Some(bat(4)), 60, t(60))
        .reopening_once()
        .locking_if_left(LockReason::NotTaken);
    let mut r = Run::with(op);
    // a close never seen open is stale: ignored
    let d = r.go(dev(DeviceEvent::DoorClosed { slot: 4 }), 1);
    assert!(d.events.is_empty() && d.outcome.is_none());
    r.go(dev(DeviceEvent::DoorOpened { slot: 4 }), 2);
    let d = r.go(dev(DeviceEvent::DoorClosed { slot: 4 }), 5);
    assert!(matches!(d.outcome, Some(DoorOutcome::Reopened { .. })));
    r.go(dev(DeviceEvent::DoorOpened { slot: 4 }), 6);
    let d = r.go(dev(DeviceEvent::DoorClosed { slot: 4 }), 9);
    assert_eq!(d.outcome, Some(DoorOutcome::Expired { slot: 4 }));
    // an operator reopen gives the budget back
    r.push(DoorEvent::Rearmed { deadline: t(100) });
    assert!(!r.d.op().unwrap().reopened);
}

#[test]
fn taken_moves_the_battery_to_the_rider() {
    let mut r = Run::with(DoorOp::take(4, Some(bat(4)), 60, t(60)));
    let d = r.go(
        dev(DeviceEvent::BatteryRemoved {
            slot: 4,
            battery: Some(bat(4)),
        }),
        10,
    );
    assert_eq!(d.outcome, Some(DoorOutcome::Taken { slot: 4 }));
    assert_eq!(
        moves(&d),
        vec![&MoveRequest {
            id: MoveId::new(9, 0),
            battery: bat(4),
            from: Origin::Exactly { location: slot(4) },
            to: rider(),
            cause: Cause::Charging { order: 9 },
        }]
    );
    // again: the slot is empty, nothing
    let d = r.go(
        dev(DeviceEvent::BatteryRemoved {
            slot: 4,
            battery: Some(bat(4)),
        }),
        11,
    );
    assert!(d.events.is_empty() && d.outcome.is_none());
    // a door close after the take is just a report
    r.go(dev(DeviceEvent::DoorOpened { slot: 4 }), 12);
    let d = r.go(dev(DeviceEvent::DoorClosed { slot: 4 }), 13);
    assert!(d.outcome.is_none());
}

#[test]
fn movements_nobody_expected_are_followed_with_an_alert() {
    let mut r = Run::with(DoorOp::put(3, 90, t(90)));
    r.go(
        dev(DeviceEvent::BatteryInserted {
            slot: 3,
            battery: Some(bat(1)),
            bms: None,
        }),
        1,
    );
    r.push(DoorEvent::Done);
    // taken out again with no take operation: custody follows, alert
    let d = r.go(
        dev(DeviceEvent::BatteryRemoved {
            slot: 3,
            battery: None,
        }),
        5,
    );
    assert_eq!(moves(&d).len(), 1);
    assert_eq!(
        alerts(&d),
        vec![&DoorAlert::UnexpectedBatteryEvent { slot: 3 }]
    );
    assert!(d.outcome.is_none());
    // a slot the session never used: not ours
    let d = r.go(
        dev(DeviceEvent::BatteryInserted {
            slot: 8,
            battery: Some(bat(8)),
            bms: None,
        }),
        6,
    );
    assert!(d.events.is_empty() && d.effects.is_empty());
}

#[test]
fn a_battery_seen_in_another_slot_left_it_unseen() {
    // battery 1 goes into slot 3, then is reported in slot 4 (its removal
    // from 3 was lost): 3 is cleared without a second custody move.
    let mut r = Run::with(DoorOp::put(3, 90, t(90)));
    r.go(
        dev(DeviceEvent::BatteryInserted {
            slot: 3,
            battery: Some(bat(1)),
            bms: None,
        }),
        1,
    );
    r.push(DoorEvent::Opened {
        op: DoorOp::put(4, 90, t(100)),
    });
    let d = r.go(
        dev(DeviceEvent::BatteryInserted {
            slot: 4,
            battery: Some(bat(1)),
            bms: None,
        }),
        2,
    );
    assert!(d.events.contains(&DoorEvent::BatteryOut {
        slot: 3,
        custody: false
    }));
    assert_eq!(moves(&d)[0].from, Origin::Anywhere);
    assert_eq!(r.d.content(3), None);
    // an occupied slot reported with another battery: the first left unseen
    let d = r.go(
        dev(DeviceEvent::BatteryInserted {
            slot: 4,
            battery: Some(bat(2)),
            bms: None,
        }),
        3,
    );
    assert_eq!(
        d.events[0],
        DoorEvent::BatteryOut {
            slot: 4,
            custody: true
        }
    );
    assert_eq!(moves(&d).len(), 2);
}

#[test]
fn sequence_numbers_drop_stale_reports_per_kind() {
    let mut r = Run::with(DoorOp::take(4, Some(bat(4)), 60, t(60)));
    let d = r.go(seq(5, DeviceEvent::DoorOpened { slot: 4 }), 1);
    assert_eq!(
        d.events[0],
        DoorEvent::Seq {
            slot: 4,
            seq: 5,
            door: true
        }
    );
    // an older door report: dropped entirely
    let d = r.go(seq(4, DeviceEvent::DoorClosed { slot: 4 }), 2);
    assert!(d.events.is_empty());
    // a battery report is judged against battery reports only
    let d = r.go(
        seq(
            3,
            DeviceEvent::BatteryRemoved {
                slot: 4,
                battery: Some(bat(4)),
            },
        ),
        3,
    );
    assert_eq!(d.outcome, Some(DoorOutcome::Taken { slot: 4 }));
    let d = r.go(
        seq(
            3,
            DeviceEvent::BatteryInserted {
                slot: 4,
                battery: Some(bat(4)),
                bms: None,
            },
        ),
        4,
    );
    assert!(d.events.is_empty(), "a duplicate seq is dropped");
}

#[test]
fn doors_left_open_after_the_end_are_watched() {
    let mut r = Run::with(DoorOp::take(4, Some(bat(4)), 60, t(60)));
    r.go(dev(DeviceEvent::DoorOpened { slot: 4 }), 1);
    r.push(DoorEvent::Ended {
        watch: Some(t(121)),
    });
    assert_eq!(r.d.next_deadline(), Some(t(121)));
    let d = r.go(DoorInput::Tick, 121);
    assert_eq!(d.events, vec![DoorEvent::WatchEnded]);
    assert_eq!(
        alerts(&d),
        vec![&DoorAlert::DoorLeftOpen { slots: vec![4] }]
    );
    assert_eq!(d.next_deadline, None);
    // closed, then opened again after the end: watched again, closing ends it
    r.go(dev(DeviceEvent::DoorClosed { slot: 4 }), 130);
    let d = r.go(dev(DeviceEvent::DoorOpened { slot: 4 }), 140);
    assert_eq!(
        d.events,
        vec![
            DoorEvent::Reported {
                slot: 4,
                open: true
            },
            DoorEvent::WatchStarted { until: t(260) }
        ]
    );
    let d = r.go(dev(DeviceEvent::DoorClosed { slot: 4 }), 150);
    assert!(d.events.contains(&DoorEvent::WatchEnded));
    assert_eq!(d.next_deadline, None);
}

#[test]
fn full_batteries_are_chosen_best_first() {
    let b = |slot: SlotNo, n: u32, model: &str, soc: u8, temp_dc: i16, faults: u32| SlotSnapshot {
        slot,
        state: SlotState::Battery {
            battery: Some(bat(n)),
            model: model.into(),
            bms: Some(BmsSummary {
                soc,
                temp_dc,
                faults,
            }),
        },
    };
    let snap = CabinetSnapshot {
        cabinet: CAB,
        online: true,
        busy_with: None,
        slots: vec![
            SlotSnapshot {
                slot: 1,
                state: SlotState::Empty,
            },
            b(2, 2, "48V", 95, 250, 0),
            b(3, 3, "48V", 98, 250, 0),
            b(4, 4, "48V", 98, 250, 0),
            b(5, 5, "60V", 100, 250, 0), // wrong model
            b(6, 6, "48V", 89, 250, 0),  // not full
            b(7, 7, "48V", 100, 601, 0), // too hot
            b(8, 8, "48V", 100, 250, 2), // faulty
            b(9, 1, "48V", 100, 250, 0), // the rider's own
            SlotSnapshot {
                slot: 10,
                state: SlotState::Locked,
            },
            SlotSnapshot {
                slot: 11,
                state: SlotState::Empty,
            },
        ],
    };
    let got = full_batteries(&snap, &["48V".into()], 90, 60, Some(bat(1)));
    let slots: Vec<SlotNo> = got.iter().map(|c| c.slot).collect();
    assert_eq!(slots, vec![3, 4, 2]);
    assert_eq!(empty_slots(&snap), vec![1, 11]);
}

#[test]
fn quarantine_faults_before_temperature() {
    let m = |temp_dc, faults| BmsSummary {
        soc: 50,
        temp_dc,
        faults,
    };
    assert_eq!(Quarantine::of(&m(700, 1), 60), Some(Quarantine::Faulty));
    assert_eq!(
        Quarantine::of(&m(601, 0), 60),
        Some(Quarantine::OverTemperature)
    );
    assert_eq!(Quarantine::of(&m(600, 0), 60), None);
}

#[test]
fn serde_forms_are_stable() {
    let op = DoorOp::take(4, Some(bat(4)), 60, t(60)).reopening_once();
    let v = serde_json::to_value(DoorEvent::Opened { op }).unwrap();
    assert_eq!(v["opened"]["op"]["kind"], "take");
    assert_eq!(v["opened"]["op"]["on_fail"], "door_fault");
    assert_eq!(
        serde_json::to_value(DoorEffect::Alert(DoorAlert::DoorFailed { slot: 3 })).unwrap(),
        serde_json::json!({"alert": {"door_failed": {"slot": 3}}})
    );
    let p: DoorPolicy = serde_json::from_str(r#"{"take_timeout_s": 30}"#).unwrap();
    assert_eq!(p.take_timeout_s, 30);
    assert_eq!(p.insert_timeout_s, 90);
}
