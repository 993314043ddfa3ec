//! Unit tests of rental issue and return at a cabinet: the doors, custody
//! and every failure path.

use super::*;
use crate::cabinet::{BmsSummary, DeviceEvent, SlotSnapshot, SlotState};
use crate::custody::{Custody, StoreId};
use chrono::TimeZone;

const CAB: CabinetId = CabinetId(20_001);
const RIDER: RiderId = RiderId(7);
const ORDER: u64 = 500;

/// Seconds after 2025-03-01 09:00 UTC.
fn t(s: i64) -> Timestamp {
    chrono::Utc.with_ymd_and_hms(2025, 3, 1, 9, 0, 0).unwrap() + Duration::seconds(s)
}
const H: i64 = 3600;
const DAY: i64 = 86_400;
fn m(s: &str) -> Money {
    s.parse().unwrap()
}
fn bat(n: u32) -> DeviceNo {
    DeviceNo::new(u64::from(200_000 + n)).unwrap()
}
fn slot_loc(slot: SlotNo) -> Location {
    Location::Slot { cabinet: CAB, slot }
}
fn rider_loc() -> Location {
    Location::Rider { rider: RIDER }
}
fn full(slot: SlotNo, n: u32, model: &str, soc: u8) -> SlotSnapshot {
    SlotSnapshot {
        slot,
        state: SlotState::Battery {
            battery: Some(bat(n)),
            model: model.into(),
            bms: Some(BmsSummary {
                soc,
                temp_dc: 250,
                faults: 0,
            }),
        },
    }
}
fn empty(slot: SlotNo) -> SlotSnapshot {
    SlotSnapshot {
        slot,
        state: SlotState::Empty,
    }
}
/// Slots 1, 2 empty; 3: 95 %; 4: 98 %; 5: 100 % of another model; 6: 80 %.
fn cabinet() -> CabinetSnapshot {
    CabinetSnapshot {
        cabinet: CAB,
        online: true,
        busy_with: None,
        slots: vec![
            empty(1),
            empty(2),
            full(3, 3, "48V20Ah", 95),
            full(4, 4, "48V20Ah", 98),
            full(5, 5, "60V30Ah", 100),
            full(6, 6, "48V20Ah", 80),
        ],
    }
}
fn issue_input() -> RentalInput {
    RentalInput::IssueAtCabinet(CabinetIssue {
        cabinet: cabinet(),
        allowed_models: vec!["48V20Ah".into()],
        policy: DoorPolicy::default(),
    })
}
fn return_input() -> RentalInput {
    RentalInput::ReturnAtCabinet(CabinetReturn {
        cabinet: cabinet(),
        policy: DoorPolicy::default(),
    })
}

struct Run {
    r: Rental,
    log: Vec<RentalEvent>,
    book: Custody,
}

impl Run {
    /// Deposit secured, waiting for the battery.
    fn new() -> Run {
        let mut book = Custody::new();
        for (i, n, at) in [
            (1, 3, slot_loc(3)),
            (2, 4, slot_loc(4)),
            (3, 5, slot_loc(5)),
            (4, 6, slot_loc(6)),
            (5, 9, Location::Rider { rider: RiderId(99) }),
            (6, 1, Location::Store { store: StoreId(3) }),
        ] {
            book.record(MoveRequest::register(MoveId::new(0, i), bat(n), at), t(0))
                .unwrap();
        }
        let mut r = Run {
            r: Rental::new(),
            log: Vec::new(),
            book,
        };
        r.go(
            // rent-30 (the rental unit tests' product): 30 days, deposit
            // 300.00, overdue 5.00 a started day after 24 h of grace
            RentalInput::Start(crate::rental::tests::request(DepositMode::Paid)),
            0,
        );
        r.go(RentalInput::DepositSecured, 0);
        r
    }
    fn go(&mut self, i: RentalInput, at: i64) -> RentalDecision {
        let d = self.r.step(&i, t(at)).unwrap();
        self.log.extend(d.events.iter().cloned());
        assert_eq!(Rental::replay(&self.log), self.r);
        assert_eq!(d.next_deadline, self.r.next_deadline());
        let bytes = postcard::to_allocvec(&self.r).unwrap();
        assert_eq!(postcard::from_bytes::<Rental>(&bytes).unwrap(), self.r);
        for e in &d.effects {
            if let RentalEffect::CustodyMove(mv) = e {
                self.book.record(mv.clone(), t(at)).unwrap();
            }
        }
        d
    }
    fn err(&mut self, i: RentalInput, at: i64) -> RentalError {
        let before = self.r.clone();
        let e = self.r.step(&i, t(at)).unwrap_err();
        assert_eq!(self.r, before);
        e
    }
    fn cab(&mut self, event: DeviceEvent, at: i64) -> RentalDecision {
        self.go(
            RentalInput::Cabinet(CabinetEvent {
                cabinet: CAB,
                seq: None,
                event,
            }),
            at,
        )
    }
    fn removed(&mut self, slot: SlotNo, at: i64) -> RentalDecision {
        self.cab(
            DeviceEvent::BatteryRemoved {
                slot,
                battery: None,
            },
            at,
        )
    }
    fn inserted(
        &mut self,
        slot: SlotNo,
        b: Option<DeviceNo>,
        faults: u32,
        at: i64,
    ) -> RentalDecision {
        self.cab(
            DeviceEvent::BatteryInserted {
                slot,
                battery: b,
                bms: Some(BmsSummary {
                    soc: 30,
                    temp_dc: 300,
                    faults,
                }),
            },
            at,
        )
    }
    /// Issued from slot 4 (battery 200004) at t=100 s.
    fn issued() -> Run {
        let mut r = Run::new();
        r.go(issue_input(), 60);
        r.removed(4, 100);
        assert_eq!(r.r.phase(), RentalPhase::InUse);
        r
    }
}

fn moves(d: &RentalDecision) -> Vec<&MoveRequest> {
    d.effects
        .iter()
        .filter_map(|e| match e {
            RentalEffect::CustodyMove(m) => Some(m),
            _ => None,
        })
        .collect()
}
fn alerts(d: &RentalDecision) -> Vec<&DoorAlert> {
    d.effects
        .iter()
        .filter_map(|e| match e {
            RentalEffect::CabinetAlert { alert, .. } => Some(alert),
            _ => None,
        })
        .collect()
}
fn opens(d: &RentalDecision) -> Vec<SlotNo> {
    d.effects
        .iter()
        .filter_map(|e| match e {
            RentalEffect::OpenDoor { slot, .. } => Some(*slot),
            _ => None,
        })
        .collect()
}
fn locks(d: &RentalDecision) -> Vec<(SlotNo, LockReason)> {
    d.effects
        .iter()
        .filter_map(|e| match e {
            RentalEffect::LockSlot { slot, reason, .. } => Some((*slot, *reason)),
            _ => None,
        })
        .collect()
}

#[test]
fn issue_opens_the_best_full_battery_and_is_in_use_once_taken() {
    let mut r = Run::new();
    let d = r.go(issue_input(), 60);
    // 98 % in slot 4 beats 95 % in slot 3; 100 % is the wrong model, 80 % not full
    assert!(d.events.contains(&RentalEvent::IssueStarted {
        cabinet: CAB,
        candidates: vec![
            Candidate {
                slot: 4,
                battery: bat(4),
                soc: 98
            },
            Candidate {
                slot: 3,
                battery: bat(3),
                soc: 95
            }
        ],
        policy: DoorPolicy::default(),
    }));
    assert_eq!(opens(&d), vec![4]);
    assert!(d.effects.contains(&RentalEffect::NotifyDoor {
        rider: RIDER,
        order: ORDER,
        notice: DoorNotice::TakeBattery { slot: 4 }
    }));
    assert_eq!(r.r.phase(), RentalPhase::Issuing);
    assert_eq!(d.next_deadline, Some(t(120)));
    assert!(moves(&d).is_empty(), "nothing issued before it is taken");
    // the rider cannot cancel while the door is open for them
    assert!(matches!(
        r.err(RentalInput::Cancel, 61),
        RentalError::NotAllowed { .. }
    ));
    r.cab(DeviceEvent::DoorOpened { slot: 4 }, 70);
    let d = r.removed(4, 100);
    assert_eq!(
        moves(&d),
        vec![&MoveRequest {
            id: MoveId::new(ORDER, 0),
            battery: bat(4),
            from: Origin::Exactly {
                location: slot_loc(4)
            },
            to: rider_loc(),
            cause: Cause::Rental { order: ORDER },
        }]
    );
    assert!(d.events.contains(&RentalEvent::Issued {
        battery: bat(4),
        at: t(100),
        expires_at: t(100 + 30 * DAY),
    }));
    assert_eq!(r.r.phase(), RentalPhase::InUse);
    assert_eq!(r.r.battery(), Some(bat(4)));
    assert_eq!(r.book.location(bat(4)), Some(&rider_loc()));
    // the door is still open: watched for 120 s; closing it ends the watch
    assert_eq!(d.next_deadline, Some(t(220)));
    let d = r.cab(DeviceEvent::DoorClosed { slot: 4 }, 110);
    // back to the rental's own clock: the expiry notice 48 h before the end
    assert_eq!(d.next_deadline, Some(t(100 + 30 * DAY - 48 * H)));
    // duplicates and late reports change nothing
    let d = r.removed(4, 120);
    assert!(d.events.is_empty() && d.effects.is_empty());
}

#[test]
fn a_door_left_open_does_not_hurry_the_rental_clock() {
    let mut r = Run::new();
    r.go(issue_input(), 60);
    r.cab(DeviceEvent::DoorOpened { slot: 4 }, 70);
    r.removed(4, 100);
    let d = r.go(RentalInput::Tick, 220);
    assert_eq!(
        alerts(&d),
        vec![&DoorAlert::DoorLeftOpen { slots: vec![4] }]
    );
    assert!(
        !d.events.contains(&RentalEvent::ExpiringNotified),
        "the door watch is not the expiry notice"
    );
    assert_eq!(r.r.phase(), RentalPhase::InUse);
}

#[test]
fn not_taken_reopens_once_then_locks_and_issues_nothing() {
    let mut r = Run::new();
    r.go(issue_input(), 60);
    let d = r.go(RentalInput::Tick, 120);
    assert_eq!(opens(&d), vec![4]);
    assert_eq!(d.next_deadline, Some(t(180)));
    let d = r.go(RentalInput::Tick, 180);
    assert_eq!(locks(&d), vec![(4, LockReason::NotTaken)]);
    assert_eq!(alerts(&d), vec![&DoorAlert::BatteryNotTaken { slot: 4 }]);
    assert!(d.events.contains(&RentalEvent::IssueFailed {
        reason: CabinetFailure::NotTaken
    }));
    assert!(moves(&d).is_empty());
    assert_eq!(r.r.phase(), RentalPhase::AwaitingIssue);
    assert_eq!(r.r.battery(), None);
    assert_eq!(r.book.location(bat(4)), Some(&slot_loc(4)));
    // the rider may try again, or cancel and get the deposit back
    let d = r.go(RentalInput::Cancel, 200);
    assert!(d.effects.contains(&RentalEffect::SettleDeposit {
        order: ORDER,
        package: "rt500".into(),
        fees: m("0"),
        damage: m("0"),
        lost: false,
        deducted: m("0"),
        refunded: m("300.00"),
        charged: m("0"),
    }));
}

#[test]
fn a_failed_door_tries_the_next_battery() {
    let mut r = Run::new();
    r.go(issue_input(), 60);
    let d = r.cab(DeviceEvent::DoorFailed { slot: 4 }, 62);
    assert_eq!(locks(&d), vec![(4, LockReason::DoorFault)]);
    assert_eq!(opens(&d), vec![3]);
    r.removed(3, 80);
    assert_eq!(r.r.battery(), Some(bat(3)));
    // both fail: nothing issued
    let mut r = Run::new();
    r.go(issue_input(), 60);
    r.cab(DeviceEvent::DoorFailed { slot: 4 }, 62);
    let d = r.cab(DeviceEvent::DoorFailed { slot: 3 }, 63);
    assert!(d.events.contains(&RentalEvent::IssueFailed {
        reason: CabinetFailure::DoorFailed
    }));
    assert_eq!(r.r.phase(), RentalPhase::AwaitingIssue);
}

#[test]
fn a_cabinet_that_cannot_issue_changes_nothing_but_says_why() {
    for (edit, reason) in [
        (
            Box::new(|c: &mut CabinetSnapshot| c.online = false)
                as Box<dyn Fn(&mut CabinetSnapshot)>,
            CabinetFailure::CabinetOffline,
        ),
        (
            Box::new(|c| c.busy_with = Some(1)),
            CabinetFailure::CabinetBusy,
        ),
        (
            Box::new(|c| c.slots.retain(|s| s.slot != 3 && s.slot != 4)),
            CabinetFailure::NoFullBattery,
        ),
    ] {
        let mut r = Run::new();
        let mut c = cabinet();
        edit(&mut c);
        let d = r.go(
            RentalInput::IssueAtCabinet(CabinetIssue {
                cabinet: c,
                allowed_models: vec!["48V20Ah".into()],
                policy: DoorPolicy::default(),
            }),
            60,
        );
        assert_eq!(d.events, vec![RentalEvent::IssueFailed { reason }]);
        assert!(opens(&d).is_empty());
        assert_eq!(r.r.phase(), RentalPhase::AwaitingIssue);
    }
}

#[test]
fn return_takes_the_rented_battery_then_inspection() {
    let mut r = Run::issued();
    // 1 day 3 h past the end: 3 h past the 24 h of grace, 1 started day
    // overdue by the package's rule
    let at = 100 + 31 * DAY + 3 * H;
    let d = r.go(return_input(), at);
    assert_eq!(opens(&d), vec![1]);
    assert_eq!(r.r.phase(), RentalPhase::Returning);
    assert_eq!(d.next_deadline, Some(t(at + 90)));
    let d = r.inserted(1, Some(bat(4)), 0, at + 20);
    assert_eq!(
        moves(&d),
        vec![&MoveRequest {
            id: MoveId::new(ORDER, 2),
            battery: bat(4),
            from: Origin::Exactly {
                location: rider_loc()
            },
            to: slot_loc(1),
            cause: Cause::Rental { order: ORDER },
        }]
    );
    // the same fees as a return at a store at that time: 1 x 5.00
    assert!(d.events.contains(&RentalEvent::Returned {
        at: t(at + 20),
        overdue_fee: m("5.00"),
    }));
    assert_eq!(r.r.phase(), RentalPhase::Inspecting);
    assert_eq!(r.book.location(bat(4)), Some(&slot_loc(1)));
    let d = r.go(RentalInput::Inspect(Inspection::Fine), at + 60);
    assert!(d.effects.contains(&RentalEffect::SettleDeposit {
        order: ORDER,
        package: "rt500".into(),
        fees: m("5.00"),
        damage: m("0"),
        lost: false,
        deducted: m("5.00"),
        refunded: m("295.00"),
        charged: m("0"),
    }));
    assert_eq!(r.r.phase(), RentalPhase::Closed);
}

#[test]
fn the_cabinet_return_matches_a_store_return() {
    // the same rental returned at a store and at a cabinet at the same
    // moment produce the same rental facts (only the custody move and the
    // door facts differ)
    for frozen in [false, true] {
        let mut a = Run::issued();
        let mut b = Run::issued();
        if frozen {
            a.go(
                RentalInput::Freeze {
                    days: 3,
                    reason: "trip".into(),
                },
                2 * DAY,
            );
            b.go(
                RentalInput::Freeze {
                    days: 3,
                    reason: "trip".into(),
                },
                2 * DAY,
            );
        }
        let at = 5 * DAY + 7;
        let da = a.go(
            RentalInput::Return {
                to: Location::Store { store: StoreId(3) },
            },
            at,
        );
        b.go(return_input(), at - 30);
        let db = b.inserted(1, Some(bat(4)), 0, at);
        let rental_facts = |d: &RentalDecision| -> Vec<RentalEvent> {
            d.events
                .iter()
                .filter(|e| !matches!(e, RentalEvent::Door(_)))
                .cloned()
                .collect()
        };
        assert_eq!(rental_facts(&da), rental_facts(&db));
        assert_eq!(a.r.fees_due(), b.r.fees_due());
    }
}

#[test]
fn a_wrong_battery_is_handed_back_and_the_rental_continues() {
    let mut r = Run::issued();
    r.go(return_input(), DAY);
    let d = r.inserted(1, Some(bat(9)), 0, DAY + 10);
    // physically in the slot: custody follows from wherever it was
    assert_eq!(moves(&d)[0].from, Origin::Anywhere);
    assert!(d.events.contains(&RentalEvent::ReturnRefused {
        slot: 1,
        reason: CabinetFailure::BatteryNotRented
    }));
    assert_eq!(opens(&d), vec![1]);
    assert_eq!(r.r.phase(), RentalPhase::Returning);
    let d = r.removed(1, DAY + 20);
    assert!(d.events.contains(&RentalEvent::ReturnFailed {
        reason: CabinetFailure::BatteryNotRented
    }));
    assert_eq!(r.r.phase(), RentalPhase::InUse);
    assert_eq!(r.r.battery(), Some(bat(4)));
    assert_eq!(r.book.location(bat(9)), Some(&rider_loc()));
    // left behind instead: locked as foreign, the rental still continues
    let mut r = Run::issued();
    r.go(return_input(), DAY);
    r.inserted(1, None, 0, DAY + 10);
    let d = r.go(RentalInput::Tick, DAY + 70);
    assert_eq!(locks(&d), vec![(1, LockReason::ForeignBattery)]);
    assert_eq!(
        alerts(&d),
        vec![&DoorAlert::ForeignBatteryRetained { slot: 1 }]
    );
    assert!(d.events.contains(&RentalEvent::ReturnFailed {
        reason: CabinetFailure::BatteryNotRecognised
    }));
    assert_eq!(r.r.phase(), RentalPhase::InUse);
}

#[test]
fn a_faulty_battery_is_accepted_and_quarantined() {
    let mut r = Run::issued();
    r.go(return_input(), DAY);
    let d = r.inserted(1, Some(bat(4)), 8, DAY + 10);
    assert_eq!(locks(&d), vec![(1, LockReason::Quarantine)]);
    assert_eq!(
        alerts(&d),
        vec![&DoorAlert::BatteryQuarantined {
            slot: 1,
            battery: bat(4),
            reason: Quarantine::Faulty
        }]
    );
    assert_eq!(r.r.phase(), RentalPhase::Inspecting);
    // the inspection decides what the damage costs
    let d = r.go(
        RentalInput::Inspect(Inspection::Damaged { fee: m("80.00") }),
        DAY + 100,
    );
    assert!(d.effects.contains(&RentalEffect::SettleDeposit {
        order: ORDER,
        package: "rt500".into(),
        fees: m("0"),
        damage: m("80.00"),
        lost: false,
        deducted: m("80.00"),
        refunded: m("220.00"),
        charged: m("0"),
    }));
}

#[test]
fn nothing_inserted_or_failed_doors_leave_the_rental_as_it_was() {
    // overdue, then nothing inserted: still overdue
    let mut r = Run::issued();
    r.go(RentalInput::Tick, 100 + 30 * DAY - 48 * H);
    r.go(RentalInput::Tick, 100 + 30 * DAY);
    assert_eq!(r.r.phase(), RentalPhase::Overdue);
    let at = 100 + 31 * DAY;
    r.go(return_input(), at);
    let d = r.go(RentalInput::Tick, at + 90);
    assert!(d.events.contains(&RentalEvent::ReturnFailed {
        reason: CabinetFailure::NotInserted
    }));
    assert_eq!(r.r.phase(), RentalPhase::Overdue);
    assert_eq!(r.book.location(bat(4)), Some(&rider_loc()));
    // a failed door tries the next empty slot, then gives up
    let mut r = Run::issued();
    r.go(return_input(), DAY);
    let d = r.cab(DeviceEvent::DoorFailed { slot: 1 }, DAY + 1);
    assert_eq!(opens(&d), vec![2]);
    let d = r.cab(DeviceEvent::DoorFailed { slot: 2 }, DAY + 2);
    assert!(d.events.contains(&RentalEvent::ReturnFailed {
        reason: CabinetFailure::DoorFailed
    }));
    assert_eq!(r.r.phase(), RentalPhase::InUse);
    // no empty slot at all
    let mut r = Run::issued();
    let mut c = cabinet();
    c.slots.retain(|s| s.state != SlotState::Empty);
    let d = r.go(
        RentalInput::ReturnAtCabinet(CabinetReturn {
            cabinet: c,
            policy: DoorPolicy::default(),
        }),
        DAY,
    );
    assert_eq!(
        d.events,
        vec![RentalEvent::ReturnFailed {
            reason: CabinetFailure::NoEmptySlot
        }]
    );
}

#[test]
fn cabinet_errors() {
    let mut r = Run::new();
    // no visit yet
    assert!(matches!(
        r.err(
            RentalInput::Cabinet(CabinetEvent {
                cabinet: CAB,
                seq: None,
                event: DeviceEvent::Online
            }),
            1
        ),
        RentalError::NotAllowed { .. }
    ));
    assert!(matches!(
        r.err(return_input(), 1),
        RentalError::NotAllowed { .. }
    ));
    r.go(issue_input(), 2);
    assert!(matches!(
        r.err(
            RentalInput::Cabinet(CabinetEvent {
                cabinet: CabinetId(1),
                seq: None,
                event: DeviceEvent::Online
            }),
            3
        ),
        RentalError::Invalid { .. }
    ));
    assert!(matches!(
        r.err(issue_input(), 3),
        RentalError::NotAllowed { .. }
    ));
    let bad = DoorPolicy {
        take_timeout_s: 0,
        ..DoorPolicy::default()
    };
    let mut r = Run::new();
    assert!(matches!(
        r.err(
            RentalInput::IssueAtCabinet(CabinetIssue {
                cabinet: cabinet(),
                allowed_models: vec![],
                policy: bad
            }),
            1
        ),
        RentalError::Invalid { .. }
    ));
}
