//! Unit tests of charging at a charging-cabinet slot: the door, the
//! battery's custody and every failure path.

use super::*;
use crate::cabinet::DeviceEvent;
use crate::custody::{Custody, Location, MoveId, Origin};
use chrono::TimeZone;

const CAB: CabinetId = CabinetId(20_002);
const SLOT: SlotNo = 5;
const RIDER: RiderId = RiderId(7);
const ORDER: u64 = 9;

fn t(s: i64) -> Timestamp {
    chrono::Utc.with_ymd_and_hms(2025, 3, 1, 20, 0, 0).unwrap() + Duration::seconds(s)
}
fn m(s: &str) -> Money {
    s.parse().unwrap()
}
fn bat(n: u32) -> DeviceNo {
    DeviceNo::new(u64::from(200_000 + n)).unwrap()
}
fn own() -> DeviceNo {
    bat(1)
}
fn point() -> ChargePoint {
    ChargePoint::CabinetSlot {
        cabinet: CAB,
        slot: SLOT,
    }
}
fn req() -> ChargingRequest {
    ChargingRequest {
        order: ORDER,
        rider: RIDER,
        point: point(),
        point_online: true,
        point_busy: false,
        auth: Authorization::PreAuth { hold: m("30.00") },
        policy: ChargingPolicy::default(),
        battery: Some(own()),
    }
}
fn slot_loc() -> Location {
    Location::Slot {
        cabinet: CAB,
        slot: SLOT,
    }
}
fn rider_loc() -> Location {
    Location::Rider { rider: RIDER }
}

/// A session, its event log and a custody book that carries out every
/// custody move; every step checks replay, the postcard round trip, the
/// decision's deadline and that custody accepted the moves.
struct Run {
    s: ChargingSession,
    log: Vec<ChargingEvent>,
    book: Custody,
}

impl Run {
    fn start() -> (Run, ChargingDecision) {
        let mut book = Custody::new();
        book.record(
            crate::custody::MoveRequest::register(MoveId::new(0, 1), own(), rider_loc()),
            t(0),
        )
        .unwrap();
        book.record(
            crate::custody::MoveRequest::register(
                MoveId::new(0, 2),
                bat(9),
                Location::Rider { rider: RiderId(99) },
            ),
            t(0),
        )
        .unwrap();
        let mut r = Run {
            s: ChargingSession::new(),
            log: Vec::new(),
            book,
        };
        let d = r.go(ChargingInput::Start(req()), 0);
        (r, d)
    }
    fn go(&mut self, i: ChargingInput, at: i64) -> ChargingDecision {
        let d = self.s.step(&i, t(at)).unwrap();
        self.log.extend(d.events.iter().cloned());
        assert_eq!(ChargingSession::replay(&self.log), self.s);
        assert_eq!(d.next_deadline, self.s.next_deadline());
        let bytes = postcard::to_allocvec(&self.s).unwrap();
        assert_eq!(
            postcard::from_bytes::<ChargingSession>(&bytes).unwrap(),
            self.s
        );
        for e in &d.effects {
            if let ChargingEffect::CustodyMove(mv) = e {
                self.book.record(mv.clone(), t(at)).unwrap();
            }
        }
        d
    }
    fn cab(&mut self, event: DeviceEvent, at: i64) -> ChargingDecision {
        self.go(
            ChargingInput::Cabinet(CabinetEvent {
                cabinet: CAB,
                seq: None,
                event,
            }),
            at,
        )
    }
    fn insert(&mut self, b: Option<DeviceNo>, at: i64) -> ChargingDecision {
        self.cab(
            DeviceEvent::BatteryInserted {
                slot: SLOT,
                battery: b,
                bms: None,
            },
            at,
        )
    }
    fn take(&mut self, at: i64) -> ChargingDecision {
        self.cab(
            DeviceEvent::BatteryRemoved {
                slot: SLOT,
                battery: None,
            },
            at,
        )
    }
    fn dev(&mut self, e: ChargerEvent, at: i64) -> ChargingDecision {
        self.go(ChargingInput::Device(e), at)
    }
    fn collect(&mut self, at: i64) -> ChargingDecision {
        self.go(ChargingInput::Collect { rider: RIDER }, at)
    }
    /// Inserted, started, charged 1.2 kWh, stopped by the rider and priced 1.50.
    fn charged() -> Run {
        let (mut r, _) = Run::start();
        r.insert(Some(own()), 10);
        r.dev(ChargerEvent::Started, 12);
        r.dev(ChargerEvent::Meter { energy_wh: 1_200 }, 600);
        r.go(
            ChargingInput::Stop {
                by: StopReason::Rider,
            },
            700,
        );
        r.dev(
            ChargerEvent::Stopped {
                reason: StopReason::Rider,
                energy_wh: 1_200,
            },
            702,
        );
        r.go(ChargingInput::Priced { amount: m("1.50") }, 702);
        r
    }
}

fn moves(d: &ChargingDecision) -> Vec<&MoveRequest> {
    d.effects
        .iter()
        .filter_map(|e| match e {
            ChargingEffect::CustodyMove(m) => Some(m),
            _ => None,
        })
        .collect()
}
fn cabinet_alerts(d: &ChargingDecision) -> Vec<&DoorAlert> {
    d.effects
        .iter()
        .filter_map(|e| match e {
            ChargingEffect::CabinetAlert { alert, .. } => Some(alert),
            _ => None,
        })
        .collect()
}
fn has(d: &ChargingDecision, e: &ChargingEffect) -> bool {
    d.effects.contains(e)
}
fn open_door() -> ChargingEffect {
    ChargingEffect::OpenDoor {
        cabinet: CAB,
        slot: SLOT,
    }
}
fn charges(d: &ChargingDecision) -> bool {
    d.effects.iter().any(|e| {
        matches!(
            e,
            ChargingEffect::CaptureHold { .. }
                | ChargingEffect::ChargeWallet { .. }
                | ChargingEffect::ConsumeEntitlement { .. }
        )
    })
}

#[test]
fn the_battery_goes_in_charges_and_comes_back_out() {
    let (mut r, d) = Run::start();
    // authorised, then the door opens for the battery (no start yet)
    assert_eq!(
        d.effects,
        vec![
            ChargingEffect::PlaceHold {
                order: ORDER,
                amount: m("30.00")
            },
            open_door(),
            ChargingEffect::NotifyDoor {
                rider: RIDER,
                order: ORDER,
                notice: DoorNotice::InsertBattery { slot: SLOT }
            }
        ]
    );
    assert_eq!(r.s.phase(), ChargingPhase::Inserting);
    assert_eq!(d.next_deadline, Some(t(90)));
    r.cab(DeviceEvent::DoorOpened { slot: SLOT }, 3);
    // the rider's battery: custody rider -> slot, then the start goes out
    let d = r.insert(Some(own()), 10);
    assert_eq!(
        moves(&d),
        vec![&MoveRequest {
            id: MoveId::new(ORDER, 0),
            battery: own(),
            from: Origin::Exactly {
                location: rider_loc()
            },
            to: slot_loc(),
            cause: Cause::Charging { order: ORDER },
        }]
    );
    assert!(has(&d, &ChargingEffect::SendStart { point: point() }));
    assert_eq!(r.s.phase(), ChargingPhase::Starting);
    assert_eq!(d.next_deadline, Some(t(70)));
    assert_eq!(r.book.location(own()), Some(&slot_loc()));
    r.cab(DeviceEvent::DoorClosed { slot: SLOT }, 15);
    // charging as at a pile
    r.dev(ChargerEvent::Started, 12);
    r.dev(ChargerEvent::Meter { energy_wh: 1_200 }, 600);
    r.go(
        ChargingInput::Stop {
            by: StopReason::Rider,
        },
        700,
    );
    r.dev(
        ChargerEvent::Stopped {
            reason: StopReason::Rider,
            energy_wh: 1_200,
        },
        702,
    );
    let d = r.go(ChargingInput::Priced { amount: m("1.50") }, 702);
    assert!(has(
        &d,
        &ChargingEffect::CaptureHold {
            order: ORDER,
            amount: m("1.50")
        }
    ));
    // settled; the battery waits in the slot for the rider (24 h)
    assert_eq!(r.s.phase(), ChargingPhase::Collecting);
    assert!(d.events.contains(&ChargingEvent::AwaitingCollection {
        until: t(702 + 86_400)
    }));
    assert!(!r.s.is_finished());
    // the rider collects: the door opens, the battery comes out to them
    let d = r.collect(900);
    assert_eq!(
        d.effects,
        vec![
            open_door(),
            ChargingEffect::NotifyDoor {
                rider: RIDER,
                order: ORDER,
                notice: DoorNotice::TakeBackBattery { slot: SLOT }
            }
        ]
    );
    assert_eq!(d.next_deadline, Some(t(960)));
    // a second collect while the door is open: nothing
    let d = r.collect(901);
    assert!(d.events.is_empty() && d.effects.is_empty());
    r.cab(DeviceEvent::DoorOpened { slot: SLOT }, 902);
    let d = r.take(910);
    assert_eq!(
        moves(&d),
        vec![&MoveRequest {
            id: MoveId::new(ORDER, 1),
            battery: own(),
            from: Origin::Exactly {
                location: slot_loc()
            },
            to: rider_loc(),
            cause: Cause::Charging { order: ORDER },
        }]
    );
    assert_eq!(r.s.phase(), ChargingPhase::Closed);
    assert_eq!(r.book.location(own()), Some(&rider_loc()));
    // the door is still open: watched until closed
    assert_eq!(d.next_deadline, Some(t(1030)));
    assert!(!r.s.is_finished());
    let d = r.cab(DeviceEvent::DoorClosed { slot: SLOT }, 915);
    assert_eq!(d.next_deadline, None);
    assert!(r.s.is_finished());
    assert!(matches!(
        r.s.outcome(),
        Some(ChargingOutcome::Settled {
            energy_wh: 1_200,
            ..
        })
    ));
    // late and duplicated reports change nothing
    let d = r.take(920);
    assert!(d.events.is_empty() && d.effects.is_empty());
}

#[test]
fn the_door_fails_before_the_battery_is_in() {
    let (mut r, _) = Run::start();
    let d = r.cab(DeviceEvent::DoorFailed { slot: SLOT }, 2);
    assert!(has(
        &d,
        &ChargingEffect::LockSlot {
            cabinet: CAB,
            slot: SLOT,
            reason: LockReason::DoorFault
        }
    ));
    assert_eq!(
        cabinet_alerts(&d),
        vec![&DoorAlert::DoorFailed { slot: SLOT }]
    );
    assert!(has(&d, &ChargingEffect::ReleaseHold { order: ORDER }));
    assert!(moves(&d).is_empty());
    assert_eq!(
        r.s.outcome(),
        Some(&ChargingOutcome::NotCharged {
            reason: ChargingReason::DoorFailed
        })
    );
    assert!(r.s.is_finished());
}

#[test]
fn nothing_is_charged_when_the_battery_is_not_inserted_in_time() {
    let (mut r, _) = Run::start();
    r.cab(DeviceEvent::DoorOpened { slot: SLOT }, 3);
    assert!(r.go(ChargingInput::Tick, 89).events.is_empty());
    let d = r.go(ChargingInput::Tick, 90);
    assert!(has(&d, &ChargingEffect::ReleaseHold { order: ORDER }));
    assert!(!charges(&d));
    assert!(
        !d.effects
            .iter()
            .any(|e| matches!(e, ChargingEffect::SendStart { .. }))
    );
    assert_eq!(
        r.s.outcome(),
        Some(&ChargingOutcome::NotCharged {
            reason: ChargingReason::InsertTimeout
        })
    );
    assert_eq!(r.s.phase(), ChargingPhase::Closed);
    // the door was left open: watched for 120 s, then an alert
    assert_eq!(d.next_deadline, Some(t(210)));
    let d = r.go(ChargingInput::Tick, 210);
    assert_eq!(
        cabinet_alerts(&d),
        vec![&DoorAlert::DoorLeftOpen { slots: vec![SLOT] }]
    );
    assert!(r.s.is_finished());
    // a battery pushed in after the timeout is followed in custody, with an
    // alert, and never charged
    let d = r.insert(Some(own()), 300);
    assert_eq!(moves(&d).len(), 1);
    assert_eq!(
        cabinet_alerts(&d),
        vec![&DoorAlert::UnexpectedBatteryEvent { slot: SLOT }]
    );
    assert!(!charges(&d));
}

#[test]
fn someone_elses_battery_is_handed_back() {
    let (mut r, _) = Run::start();
    let d = r.insert(Some(bat(9)), 10);
    // it is physically in the slot: custody follows it from wherever it was
    assert_eq!(moves(&d)[0].from, Origin::Anywhere);
    assert!(has(&d, &ChargingEffect::ReleaseHold { order: ORDER }));
    assert!(has(&d, &open_door()));
    assert_eq!(
        r.s.outcome(),
        Some(&ChargingOutcome::NotCharged {
            reason: ChargingReason::BatteryNotRiders
        })
    );
    assert_eq!(r.s.phase(), ChargingPhase::Collecting);
    // taken back: the rider holds it now
    let d = r.take(20);
    assert_eq!(moves(&d).len(), 1);
    assert_eq!(r.book.location(bat(9)), Some(&rider_loc()));
    assert_eq!(r.s.phase(), ChargingPhase::Closed);
    assert!(r.s.is_finished());
}

#[test]
fn someone_elses_battery_left_behind_is_locked_as_foreign() {
    let (mut r, _) = Run::start();
    r.insert(Some(bat(9)), 10);
    let d = r.go(ChargingInput::Tick, 70);
    assert!(has(
        &d,
        &ChargingEffect::LockSlot {
            cabinet: CAB,
            slot: SLOT,
            reason: LockReason::ForeignBattery
        }
    ));
    assert_eq!(
        cabinet_alerts(&d),
        vec![&DoorAlert::ForeignBatteryRetained { slot: SLOT }]
    );
    assert_eq!(r.s.phase(), ChargingPhase::Uncollected);
    assert_eq!(r.book.location(bat(9)), Some(&slot_loc()));
    assert!(r.s.is_finished());
}

#[test]
fn an_unreadable_battery_is_not_recognised() {
    let (mut r, _) = Run::start();
    let d = r.insert(None, 10);
    assert!(moves(&d).is_empty(), "no number, no custody move");
    assert_eq!(
        r.s.outcome(),
        Some(&ChargingOutcome::NotCharged {
            reason: ChargingReason::BatteryNotRecognised
        })
    );
    assert_eq!(r.s.battery_in_slot(), Some(None));
    r.take(20);
    assert_eq!(r.s.phase(), ChargingPhase::Closed);
}

#[test]
fn not_taken_after_the_session_reopens_once_then_locks_and_flags() {
    let mut r = Run::charged();
    r.collect(900);
    // not taken in 60 s: the door reopens once
    let d = r.go(ChargingInput::Tick, 960);
    assert!(has(&d, &open_door()));
    assert_eq!(d.next_deadline, Some(t(1020)));
    assert_eq!(r.s.phase(), ChargingPhase::Collecting);
    // still not taken: slot locked, alert, custody keeps it in the slot
    let d = r.go(ChargingInput::Tick, 1020);
    assert!(has(
        &d,
        &ChargingEffect::LockSlot {
            cabinet: CAB,
            slot: SLOT,
            reason: LockReason::NotTaken
        }
    ));
    assert_eq!(
        cabinet_alerts(&d),
        vec![&DoorAlert::BatteryNotTaken { slot: SLOT }]
    );
    assert_eq!(r.s.phase(), ChargingPhase::Uncollected);
    assert_eq!(r.book.location(own()), Some(&slot_loc()));
    assert!(r.s.is_finished());
    // the money stays settled; the order is flagged for operations
    let view = crate::order::charging_view(&r.s);
    assert_eq!(view.phase, "uncollected");
    assert_eq!(view.status, crate::order::OrderStatus::Completed);
    assert!(view.transient, "an uncollected battery needs operations");
    // the rider cannot reopen a locked slot
    assert!(matches!(
        r.s.step(&ChargingInput::Collect { rider: RIDER }, t(1100)),
        Err(ChargingError::NotAllowed { .. })
    ));
}

#[test]
fn a_door_closed_on_the_battery_reopens_once() {
    let mut r = Run::charged();
    r.collect(900);
    r.cab(DeviceEvent::DoorOpened { slot: SLOT }, 901);
    let d = r.cab(DeviceEvent::DoorClosed { slot: SLOT }, 905);
    assert!(has(&d, &open_door()));
    r.cab(DeviceEvent::DoorOpened { slot: SLOT }, 906);
    r.take(910);
    assert_eq!(r.s.phase(), ChargingPhase::Closed);
}

#[test]
fn the_collection_door_fails() {
    let mut r = Run::charged();
    r.collect(900);
    let d = r.cab(DeviceEvent::DoorFailed { slot: SLOT }, 901);
    assert_eq!(
        cabinet_alerts(&d),
        vec![&DoorAlert::DoorFailed { slot: SLOT }]
    );
    assert_eq!(r.s.phase(), ChargingPhase::Uncollected);
    assert_eq!(r.book.location(own()), Some(&slot_loc()));
}

#[test]
fn a_battery_never_collected_locks_the_slot_after_a_day() {
    let mut r = Run::charged();
    assert_eq!(r.s.next_deadline(), Some(t(702 + 86_400)));
    assert!(r.go(ChargingInput::Tick, 702 + 86_399).effects.is_empty());
    let d = r.go(ChargingInput::Tick, 702 + 86_400);
    assert!(has(
        &d,
        &ChargingEffect::LockSlot {
            cabinet: CAB,
            slot: SLOT,
            reason: LockReason::NotTaken
        }
    ));
    assert_eq!(r.s.phase(), ChargingPhase::Uncollected);
    assert!(r.s.is_finished());
}

#[test]
fn a_start_that_fails_hands_the_battery_back_at_once() {
    let (mut r, _) = Run::start();
    r.insert(Some(own()), 10);
    let d = r.dev(ChargerEvent::StartFailed, 12);
    assert!(has(&d, &ChargingEffect::ReleaseHold { order: ORDER }));
    assert!(has(&d, &open_door()));
    assert_eq!(r.s.phase(), ChargingPhase::Collecting);
    let d = r.take(30);
    assert_eq!(moves(&d)[0].to, rider_loc());
    assert_eq!(r.s.phase(), ChargingPhase::Closed);
    assert_eq!(
        r.s.outcome(),
        Some(&ChargingOutcome::NotCharged {
            reason: ChargingReason::StartFailed
        })
    );
    // the start never confirmed: the same, after the stop command
    let (mut r, _) = Run::start();
    r.insert(Some(own()), 10);
    let d = r.go(ChargingInput::Tick, 70);
    assert!(has(&d, &ChargingEffect::SendStop { point: point() }));
    assert!(has(&d, &open_door()));
}

#[test]
fn the_rider_cancels_before_inserting() {
    let (mut r, _) = Run::start();
    let d = r.go(
        ChargingInput::Stop {
            by: StopReason::Rider,
        },
        5,
    );
    assert!(has(&d, &ChargingEffect::ReleaseHold { order: ORDER }));
    assert!(
        !d.effects
            .iter()
            .any(|e| matches!(e, ChargingEffect::SendStop { .. }))
    );
    assert_eq!(r.s.phase(), ChargingPhase::Closed);
    // a hold refused by the host ends it too (nothing to release)
    let (mut r, _) = Run::start();
    let d = r.go(ChargingInput::HoldRejected, 1);
    assert!(!has(&d, &ChargingEffect::ReleaseHold { order: ORDER }));
    assert_eq!(
        r.s.outcome(),
        Some(&ChargingOutcome::NotCharged {
            reason: ChargingReason::HoldRejected
        })
    );
}

#[test]
fn a_battery_taken_out_while_charging_is_followed() {
    let (mut r, _) = Run::start();
    r.insert(Some(own()), 10);
    r.dev(ChargerEvent::Started, 12);
    let d = r.take(100);
    assert_eq!(
        cabinet_alerts(&d),
        vec![&DoorAlert::UnexpectedBatteryEvent { slot: SLOT }]
    );
    assert_eq!(r.book.location(own()), Some(&rider_loc()));
    r.dev(
        ChargerEvent::Stopped {
            reason: StopReason::PlugRemoved,
            energy_wh: 50,
        },
        101,
    );
    r.go(ChargingInput::Priced { amount: m("0.10") }, 101);
    // nothing left in the slot: closed, nothing to collect
    assert_eq!(r.s.phase(), ChargingPhase::Closed);
    assert!(r.s.is_finished());
}

#[test]
fn collect_and_cabinet_errors() {
    let (mut r, _) = Run::start();
    let err = |r: &mut Run, i: ChargingInput| r.s.step(&i, t(5)).unwrap_err();
    assert!(matches!(
        err(&mut r, ChargingInput::Collect { rider: RIDER }),
        ChargingError::NotAllowed { .. }
    ));
    r.insert(Some(own()), 10);
    r.dev(ChargerEvent::Started, 12);
    assert!(matches!(
        err(&mut r, ChargingInput::Collect { rider: RIDER }),
        ChargingError::NotAllowed { .. }
    ));
    assert!(matches!(
        err(&mut r, ChargingInput::Collect { rider: RiderId(99) }),
        ChargingError::Invalid { .. }
    ));
    assert!(matches!(
        err(
            &mut r,
            ChargingInput::Cabinet(CabinetEvent {
                cabinet: CabinetId(1),
                seq: None,
                event: DeviceEvent::Online
            })
        ),
        ChargingError::Invalid { .. }
    ));
    // a cabinet slot needs the rider's battery
    let mut q = req();
    q.battery = None;
    assert!(matches!(
        ChargingSession::new().step(&ChargingInput::Start(q), t(0)),
        Err(ChargingError::Invalid { .. })
    ));
    // a pile has nothing to collect and no cabinet
    let mut q = req();
    q.point = ChargePoint::Pile {
        pile: 1,
        connector: 1,
    };
    let mut s = ChargingSession::new();
    s.step(&ChargingInput::Start(q), t(0)).unwrap();
    assert!(matches!(
        s.step(&ChargingInput::Collect { rider: RIDER }, t(1)),
        Err(ChargingError::NotAllowed { .. })
    ));
    assert!(matches!(
        s.step(
            &ChargingInput::Cabinet(CabinetEvent {
                cabinet: CAB,
                seq: None,
                event: DeviceEvent::Online
            }),
            t(1)
        ),
        Err(ChargingError::NotAllowed { .. })
    ));
}

#[test]
fn a_refused_start_owns_no_cabinet_events() {
    let mut q = req();
    q.point_online = false;
    let mut s = ChargingSession::new();
    s.step(&ChargingInput::Start(q), t(0)).unwrap();
    let d = s
        .step(
            &ChargingInput::Cabinet(CabinetEvent {
                cabinet: CAB,
                seq: None,
                event: DeviceEvent::DoorOpened { slot: SLOT },
            }),
            t(1),
        )
        .unwrap();
    assert!(d.events.is_empty());
}

#[test]
fn the_serde_form_of_the_new_input_and_policy() {
    let i: ChargingInput = serde_json::from_str(r#"{"collect": {"rider": 7}}"#).unwrap();
    assert_eq!(i, ChargingInput::Collect { rider: RIDER });
    // an old policy without the door fields still reads
    let p: ChargingPolicy = serde_json::from_str(
        r#"{"start_timeout_s": 60, "stop_timeout_s": 60, "meter_stall_s": 900, "offline_grace_s": 600}"#,
    )
    .unwrap();
    assert_eq!(p, ChargingPolicy::default());
}
