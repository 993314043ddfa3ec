//! Unit tests of the swap machine: every transition and failure path.

use super::*;
use crate::cabinet::DeviceEvent;
use crate::cabinet::{SlotSnapshot, SlotState};
use crate::custody::{Custody, MoveId};
use crate::custody::{Location, Origin};
use chrono::Duration;
use chrono::TimeZone;

pub(crate) const CAB: CabinetId = CabinetId(20_001);
pub(crate) const RIDER: RiderId = RiderId(7);
pub(crate) const ORDER: u64 = 1001;

pub(crate) fn t(s: i64) -> Timestamp {
    Utc.with_ymd_and_hms(2025, 3, 1, 8, 0, 0).unwrap() + Duration::seconds(s)
}
use chrono::Utc;

pub(crate) fn bat(n: u32) -> DeviceNo {
    DeviceNo::new(u64::from(200_000 + n)).unwrap()
}
fn money(s: &str) -> Money {
    s.parse().unwrap()
}
pub(crate) fn bms(soc: u8) -> Option<BmsSummary> {
    Some(BmsSummary {
        soc,
        temp_dc: 250,
        faults: 0,
    })
}
fn full(slot: SlotNo, b: u32, model: &str, soc: u8, faults: u32) -> SlotSnapshot {
    SlotSnapshot {
        slot,
        state: SlotState::Battery {
            battery: Some(bat(b)),
            model: model.into(),
            bms: Some(BmsSummary {
                soc,
                temp_dc: 250,
                faults,
            }),
        },
    }
}

/// Slots: 1, 2 empty; 3 full 95 %; 4 full 98 %; 5 wrong model 100 %;
/// 6 not full 80 %; 7 locked; 8 faulty 100 %. Own battery 200001.
pub(crate) fn request(payment: Payment) -> SwapRequest {
    SwapRequest {
        order: ORDER,
        rider: RIDER,
        cabinet: CabinetSnapshot {
            cabinet: CAB,
            online: true,
            busy_with: None,
            slots: vec![
                SlotSnapshot {
                    slot: 1,
                    state: SlotState::Empty,
                },
                SlotSnapshot {
                    slot: 2,
                    state: SlotState::Empty,
                },
                full(3, 3, "48V20Ah", 95, 0),
                full(4, 4, "48V20Ah", 98, 0),
                full(5, 5, "60V30Ah", 100, 0),
                full(6, 6, "48V20Ah", 80, 0),
                SlotSnapshot {
                    slot: 7,
                    state: SlotState::Locked,
                },
                full(8, 8, "48V20Ah", 100, 4),
            ],
        },
        rider_facts: RiderFacts {
            verified: true,
            deposit_paid: true,
            battery: Some(bat(1)),
            allowed_models: vec!["48V20Ah".into()],
        },
        payment,
        policy: SwapPolicy::default(),
    }
}

pub(crate) fn package() -> Payment {
    Payment::Package {
        package: "pkg-42".into(),
        unit_value: money("3.00"),
    }
}
fn wallet() -> Payment {
    Payment::Wallet {
        price: money("4.50"),
        available: money("10.00"),
    }
}

pub(crate) fn dev(event: DeviceEvent) -> SwapInput {
    SwapInput::Device(CabinetEvent {
        cabinet: CAB,
        seq: None,
        event,
    })
}
fn inserted(slot: SlotNo, b: Option<DeviceNo>, bms: Option<BmsSummary>) -> SwapInput {
    dev(DeviceEvent::BatteryInserted {
        slot,
        battery: b,
        bms,
    })
}
fn removed(slot: SlotNo, b: u32) -> SwapInput {
    dev(DeviceEvent::BatteryRemoved {
        slot,
        battery: Some(bat(b)),
    })
}

/// A session plus its event log; every step checks that replaying the log
/// and reading the snapshot back rebuild the session exactly, and that the
/// decision's deadline is the session's.
struct Run {
    s: SwapSession,
    log: Vec<SwapEvent>,
}

impl Run {
    fn new() -> Self {
        Run {
            s: SwapSession::new(),
            log: Vec::new(),
        }
    }
    fn start(payment: Payment) -> (Self, Decision) {
        let mut r = Run::new();
        let d = r.go(SwapInput::Start(Box::new(request(payment))), 0);
        (r, d)
    }
    fn go(&mut self, input: SwapInput, at: i64) -> Decision {
        let before = self.s.clone();
        let d = self.s.step(&input, t(at)).unwrap();
        if d.events.is_empty() {
            assert_eq!(self.s, before);
        }
        self.log.extend(d.events.iter().cloned());
        assert_eq!(SwapSession::replay(&self.log), self.s);
        let snap = self.s.to_snapshot().unwrap();
        assert_eq!(SwapSession::from_snapshot(&snap).unwrap(), self.s);
        assert_eq!(d.next_deadline, self.s.next_deadline(), "{d:?}");
        d
    }
    fn err(&mut self, input: SwapInput, at: i64) -> SwapError {
        let before = self.s.clone();
        let e = self.s.step(&input, t(at)).unwrap_err();
        assert_eq!(self.s, before);
        e
    }
}

fn has(d: &Decision, e: &SwapEffect) -> bool {
    d.effects.contains(e)
}
fn open(slot: SlotNo) -> SwapEffect {
    SwapEffect::OpenDoor { cabinet: CAB, slot }
}
fn charges(d: &Decision) -> usize {
    d.effects
        .iter()
        .filter(|e| {
            matches!(
                e,
                SwapEffect::ConsumeEntitlement { .. }
                    | SwapEffect::CaptureHold { .. }
                    | SwapEffect::ChargeWallet { .. }
            )
        })
        .count()
}
fn custody_moves(d: &Decision) -> Vec<&MoveRequest> {
    d.effects
        .iter()
        .filter_map(|e| match e {
            SwapEffect::CustodyMove(m) => Some(m),
            _ => None,
        })
        .collect()
}
fn alerts(d: &Decision) -> Vec<&Alert> {
    d.effects
        .iter()
        .filter_map(|e| match e {
            SwapEffect::RaiseAlert { alert, .. } => Some(alert),
            _ => None,
        })
        .collect()
}
fn locks(d: &Decision) -> Vec<(SlotNo, LockReason)> {
    d.effects
        .iter()
        .filter_map(|e| match e {
            SwapEffect::LockSlot { slot, reason, .. } => Some((*slot, *reason)),
            _ => None,
        })
        .collect()
}

#[test]
fn happy_path_with_a_package() {
    let (mut r, d) = Run::start(package());
    assert_eq!(r.s.phase(), &Phase::AwaitingReturn { slot: 1 });
    assert!(has(&d, &open(1)));
    assert_eq!(d.next_deadline, Some(t(90)));
    assert_eq!(charges(&d), 0);
    // Door reports are recorded but change no phase.
    r.go(dev(DeviceEvent::DoorOpened { slot: 1 }), 2);
    let d = r.go(inserted(1, Some(bat(1)), bms(12)), 10);
    // custody: rider -> slot 1; the best full battery (slot 4, 98 %) opens
    let m = custody_moves(&d);
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].battery, bat(1));
    assert_eq!(
        m[0].from,
        Origin::Exactly {
            location: Location::Rider { rider: RIDER }
        }
    );
    assert_eq!(m[0].id, MoveId::new(ORDER, 0));
    assert!(has(&d, &open(4)));
    assert_eq!(
        r.s.phase(),
        &Phase::Dispensing {
            slot: 4,
            battery: bat(4),
            reopened: false
        }
    );
    assert_eq!(d.next_deadline, Some(t(70)));
    r.go(dev(DeviceEvent::DoorClosed { slot: 1 }), 11);
    r.go(dev(DeviceEvent::DoorOpened { slot: 4 }), 12);
    let d = r.go(removed(4, 4), 20);
    let m = custody_moves(&d);
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].to, Location::Rider { rider: RIDER });
    assert_eq!(m[0].id, MoveId::new(ORDER, 1));
    assert!(has(
        &d,
        &SwapEffect::ConsumeEntitlement {
            order: ORDER,
            package: "pkg-42".into()
        }
    ));
    assert!(has(
        &d,
        &SwapEffect::SplitRevenue {
            order: ORDER,
            amount: money("3.00")
        }
    ));
    assert_eq!(charges(&d), 1);
    assert_eq!(r.s.outcome(), Some(&Outcome::Swapped { waived: false }));
    assert_eq!(r.s.settlement(), Settlement::Charged);
    // door 4 is still open: a watch runs until it closes
    assert_eq!(d.next_deadline, Some(t(140)));
    assert!(!r.s.is_finished());
    let d = r.go(dev(DeviceEvent::DoorClosed { slot: 4 }), 25);
    assert_eq!(d.next_deadline, None);
    assert!(r.s.is_finished());
    assert_eq!(r.s.ended_at(), Some(t(20)));
    // the whole flow in custody
    let mut book = Custody::new();
    book.record(
        MoveRequest::register(MoveId::new(0, 1), bat(1), Location::Rider { rider: RIDER }),
        t(0),
    )
    .unwrap();
    book.record(
        MoveRequest::register(
            MoveId::new(0, 4),
            bat(4),
            Location::Slot {
                cabinet: CAB,
                slot: 4,
            },
        ),
        t(0),
    )
    .unwrap();
    let mut r2 = Run::start(package()).0;
    for (i, at) in [(inserted(1, Some(bat(1)), bms(12)), 1), (removed(4, 4), 2)] {
        for e in r2.go(i, at).effects {
            if let SwapEffect::CustodyMove(m) = e {
                book.record(m, t(at)).unwrap();
            }
        }
    }
    assert_eq!(book.occupant(CAB, 1), Some(bat(1)));
    assert_eq!(book.held_by_rider(RIDER), vec![bat(4)]);
}

#[test]
fn wallet_holds_then_captures() {
    let (mut r, d) = Run::start(wallet());
    assert_eq!(
        d.effects.first(),
        Some(&SwapEffect::PlaceHold {
            order: ORDER,
            amount: money("4.50")
        })
    );
    r.go(inserted(1, Some(bat(1)), bms(30)), 5);
    let d = r.go(removed(4, 4), 9);
    assert!(has(
        &d,
        &SwapEffect::CaptureHold {
            order: ORDER,
            amount: money("4.50")
        }
    ));
    assert!(
        !d.effects
            .iter()
            .any(|e| matches!(e, SwapEffect::ReleaseHold { .. }))
    );
}

#[test]
fn rejections_at_the_checks() {
    type Edit = Box<dyn Fn(&mut SwapRequest)>;
    let cases: Vec<(Edit, Reason)> = vec![
        (
            Box::new(|r| r.cabinet.online = false),
            Reason::CabinetOffline,
        ),
        (
            Box::new(|r| r.cabinet.busy_with = Some(7)),
            Reason::CabinetBusy,
        ),
        (
            Box::new(|r| r.rider_facts.verified = false),
            Reason::RiderNotVerified,
        ),
        (
            Box::new(|r| r.rider_facts.deposit_paid = false),
            Reason::NoDeposit,
        ),
        (
            Box::new(|r| r.rider_facts.battery = None),
            Reason::NoBatteryBound,
        ),
        (
            Box::new(|r| r.payment = Payment::None),
            Reason::NoEntitlement,
        ),
        (
            Box::new(|r| {
                r.payment = Payment::Wallet {
                    price: money("4.50"),
                    available: money("4.49"),
                }
            }),
            Reason::InsufficientBalance,
        ),
        (
            Box::new(|r| r.cabinet.slots.retain(|s| s.state != SlotState::Empty)),
            Reason::NoEmptySlot,
        ),
        (
            Box::new(|r| r.cabinet.slots.retain(|s| ![3, 4].contains(&s.slot))),
            Reason::NoFullBattery,
        ),
        (
            Box::new(|r| r.rider_facts.allowed_models = vec!["72V".into()]),
            Reason::NoFullBattery,
        ),
        (
            Box::new(|r| r.policy.min_full_soc = 99),
            Reason::NoFullBattery,
        ),
    ];
    for (edit, reason) in cases {
        let mut req = request(package());
        edit(&mut req);
        let mut s = SwapSession::new();
        let d = s.step(&SwapInput::Start(Box::new(req)), t(0)).unwrap();
        assert_eq!(
            s.outcome(),
            Some(&Outcome::Rejected { reason }),
            "{reason:?}"
        );
        assert_eq!(s.settlement(), Settlement::NotCharged);
        assert!(s.is_finished());
        assert_eq!(d.next_deadline, None);
        assert_eq!(charges(&d), 0);
        assert!(!d.effects.iter().any(|e| matches!(
            e,
            SwapEffect::OpenDoor { .. } | SwapEffect::PlaceHold { .. }
        )));
        // device events of the cabinet are not this session's
        let d = s.step(&removed(4, 4), t(1)).unwrap();
        assert!(d.events.is_empty() && d.effects.is_empty());
    }
}

#[test]
fn the_riders_own_battery_in_the_cabinet_is_never_a_candidate() {
    let mut req = request(package());
    req.cabinet.slots = vec![
        SlotSnapshot {
            slot: 1,
            state: SlotState::Empty,
        },
        full(2, 1, "48V20Ah", 100, 0),
    ];
    let mut s = SwapSession::new();
    s.step(&SwapInput::Start(Box::new(req)), t(0)).unwrap();
    assert_eq!(
        s.outcome(),
        Some(&Outcome::Rejected {
            reason: Reason::NoFullBattery
        })
    );
}

#[test]
fn an_empty_door_failure_tries_the_next_slot_then_fails() {
    let (mut r, _) = Run::start(wallet());
    let d = r.go(dev(DeviceEvent::DoorFailed { slot: 1 }), 3);
    assert_eq!(locks(&d), vec![(1, LockReason::DoorFault)]);
    assert!(alerts(&d).contains(&&Alert::DoorFailed { slot: 1 }));
    assert!(has(&d, &open(2)));
    assert_eq!(r.s.phase(), &Phase::AwaitingReturn { slot: 2 });
    assert_eq!(d.next_deadline, Some(t(93)));
    let d = r.go(dev(DeviceEvent::DoorFailed { slot: 2 }), 5);
    assert_eq!(
        r.s.outcome(),
        Some(&Outcome::Failed {
            reason: Reason::EmptyDoorFailed
        })
    );
    assert!(has(&d, &SwapEffect::ReleaseHold { order: ORDER }));
    assert_eq!(charges(&d), 0);
    // a late failure report of slot 1 changes nothing
    let d = r.go(dev(DeviceEvent::DoorFailed { slot: 1 }), 6);
    assert!(d.events.is_empty() && d.effects.is_empty());
}

#[test]
fn old_battery_not_inserted_before_the_timeout() {
    let (mut r, _) = Run::start(wallet());
    let d = r.go(SwapInput::Tick, 89);
    assert!(d.events.is_empty());
    let d = r.go(SwapInput::Tick, 90);
    assert_eq!(
        r.s.outcome(),
        Some(&Outcome::Failed {
            reason: Reason::ReturnTimeout
        })
    );
    assert!(has(&d, &SwapEffect::ReleaseHold { order: ORDER }));
    assert!(r.s.is_finished());
    // a late insertion is followed in custody, alerted, never charged
    let d = r.go(inserted(1, Some(bat(1)), bms(20)), 95);
    assert_eq!(custody_moves(&d).len(), 1);
    assert_eq!(alerts(&d), vec![&Alert::UnexpectedBatteryEvent { slot: 1 }]);
    assert_eq!(charges(&d), 0);
    assert_eq!(r.s.slot_content(1), Some(Some(bat(1))));
}

#[test]
fn unreadable_battery_is_handed_back() {
    let (mut r, _) = Run::start(package());
    let d = r.go(inserted(1, None, None), 5);
    assert!(custody_moves(&d).is_empty());
    assert!(has(&d, &open(1)));
    assert_eq!(
        r.s.phase(),
        &Phase::Ejecting {
            slot: 1,
            reason: Reason::BatteryNotRecognised
        }
    );
    let d = r.go(
        dev(DeviceEvent::BatteryRemoved {
            slot: 1,
            battery: None,
        }),
        9,
    );
    assert!(custody_moves(&d).is_empty());
    assert_eq!(
        r.s.outcome(),
        Some(&Outcome::Failed {
            reason: Reason::BatteryNotRecognised
        })
    );
    assert_eq!(charges(&d), 0);
}

#[test]
fn a_foreign_battery_left_in_the_cabinet_is_retained_and_locked() {
    let (mut r, _) = Run::start(package());
    let d = r.go(inserted(1, Some(bat(9)), bms(50)), 5);
    let m = custody_moves(&d);
    assert_eq!(m[0].from, Origin::Anywhere);
    assert_eq!(
        r.s.phase(),
        &Phase::Ejecting {
            slot: 1,
            reason: Reason::BatteryNotRiders
        }
    );
    let d = r.go(SwapInput::Tick, 65);
    assert_eq!(locks(&d), vec![(1, LockReason::ForeignBattery)]);
    assert!(alerts(&d).contains(&&Alert::ForeignBatteryRetained { slot: 1 }));
    assert_eq!(
        r.s.outcome(),
        Some(&Outcome::Failed {
            reason: Reason::BatteryNotRiders
        })
    );
    assert_eq!(charges(&d), 0);
}

#[test]
fn a_foreign_battery_taken_back_follows_the_rider() {
    let (mut r, _) = Run::start(package());
    r.go(inserted(1, Some(bat(9)), bms(50)), 5);
    let d = r.go(removed(1, 9), 8);
    let m = custody_moves(&d);
    assert_eq!(m[0].to, Location::Rider { rider: RIDER });
    assert_eq!(
        r.s.outcome(),
        Some(&Outcome::Failed {
            reason: Reason::BatteryNotRiders
        })
    );
}

#[test]
fn faulty_and_hot_batteries_are_quarantined_and_the_swap_is_free() {
    for (b, q) in [
        (
            BmsSummary {
                soc: 40,
                temp_dc: 250,
                faults: 1,
            },
            Quarantine::Faulty,
        ),
        (
            BmsSummary {
                soc: 40,
                temp_dc: 610,
                faults: 0,
            },
            Quarantine::OverTemperature,
        ),
    ] {
        let (mut r, _) = Run::start(wallet());
        let d = r.go(inserted(1, Some(bat(1)), Some(b)), 5);
        assert_eq!(locks(&d), vec![(1, LockReason::Quarantine)]);
        assert!(alerts(&d).contains(&&Alert::BatteryQuarantined {
            slot: 1,
            battery: bat(1),
            reason: q
        }));
        assert!(has(&d, &open(4)));
        let d = r.go(removed(4, 4), 9);
        assert_eq!(r.s.outcome(), Some(&Outcome::Swapped { waived: true }));
        assert_eq!(charges(&d), 0);
        assert!(has(&d, &SwapEffect::ReleaseHold { order: ORDER }));
    }
}

#[test]
fn a_quarantined_battery_is_never_handed_back() {
    let (mut r, _) = Run::start(package());
    let faulty = Some(BmsSummary {
        soc: 40,
        temp_dc: 250,
        faults: 1,
    });
    r.go(inserted(1, Some(bat(1)), faulty), 5);
    r.go(dev(DeviceEvent::DoorFailed { slot: 4 }), 6);
    // slot 3 is tried next; it fails too: the rider is left without a battery
    let d = r.go(dev(DeviceEvent::DoorFailed { slot: 3 }), 7);
    assert!(!has(&d, &open(1)));
    assert!(alerts(&d).contains(&&Alert::RiderWithoutBattery { slot: 1 }));
    assert_eq!(
        r.s.outcome(),
        Some(&Outcome::Failed {
            reason: Reason::FullDoorFailed
        })
    );
}

#[test]
fn the_rider_keeps_their_own_when_nothing_is_better() {
    let (mut r, _) = Run::start(wallet());
    let d = r.go(inserted(1, Some(bat(1)), bms(98)), 5);
    assert!(has(&d, &open(1)));
    assert_eq!(
        r.s.phase(),
        &Phase::ReturningOwn {
            slot: 1,
            reason: Reason::NoBetterBattery
        }
    );
    let d = r.go(removed(1, 1), 8);
    assert_eq!(
        r.s.outcome(),
        Some(&Outcome::KeptOwn {
            reason: Reason::NoBetterBattery
        })
    );
    assert_eq!(charges(&d), 0);
    assert!(has(&d, &SwapEffect::ReleaseHold { order: ORDER }));
    assert_eq!(custody_moves(&d)[0].to, Location::Rider { rider: RIDER });
}

#[test]
fn own_battery_not_collected() {
    let (mut r, _) = Run::start(package());
    r.go(inserted(1, Some(bat(1)), bms(99)), 5);
    let d = r.go(SwapInput::Tick, 65);
    assert_eq!(
        r.s.outcome(),
        Some(&Outcome::Failed {
            reason: Reason::OwnNotCollected
        })
    );
    assert!(alerts(&d).contains(&&Alert::RiderWithoutBattery { slot: 1 }));
}

#[test]
fn a_better_but_not_best_battery_is_still_chosen() {
    // own battery at 96 %: only slot 4 (98 %) is better
    let (mut r, _) = Run::start(package());
    let d = r.go(inserted(1, Some(bat(1)), bms(96)), 5);
    assert!(has(&d, &open(4)));
    // slot 4's door fails; slot 3 (95 %) is not better: back to own
    let d = r.go(dev(DeviceEvent::DoorFailed { slot: 4 }), 6);
    assert!(has(&d, &open(1)));
    assert_eq!(
        r.s.phase(),
        &Phase::ReturningOwn {
            slot: 1,
            reason: Reason::FullDoorFailed
        }
    );
    let d = r.go(removed(1, 1), 9);
    assert_eq!(
        r.s.outcome(),
        Some(&Outcome::Failed {
            reason: Reason::FullDoorFailed
        })
    );
    assert_eq!(charges(&d), 0);
}

#[test]
fn full_door_failure_tries_the_next_candidate() {
    let (mut r, _) = Run::start(package());
    r.go(inserted(1, Some(bat(1)), bms(10)), 5);
    let d = r.go(dev(DeviceEvent::DoorFailed { slot: 4 }), 6);
    assert_eq!(locks(&d), vec![(4, LockReason::DoorFault)]);
    assert!(has(&d, &open(3)));
    let d = r.go(removed(3, 3), 9);
    assert_eq!(charges(&d), 1);
    assert_eq!(r.s.outcome(), Some(&Outcome::Swapped { waived: false }));
}

#[test]
fn both_full_doors_fail_then_own_door_fails() {
    let (mut r, _) = Run::start(wallet());
    r.go(inserted(1, Some(bat(1)), bms(10)), 5);
    r.go(dev(DeviceEvent::DoorFailed { slot: 4 }), 6);
    let d = r.go(dev(DeviceEvent::DoorFailed { slot: 3 }), 7);
    assert!(has(&d, &open(1)));
    let d = r.go(dev(DeviceEvent::DoorFailed { slot: 1 }), 8);
    assert!(alerts(&d).contains(&&Alert::RiderWithoutBattery { slot: 1 }));
    assert_eq!(
        r.s.outcome(),
        Some(&Outcome::Failed {
            reason: Reason::FullDoorFailed
        })
    );
    assert!(has(&d, &SwapEffect::ReleaseHold { order: ORDER }));
}

#[test]
fn not_taken_reopens_once_then_locks_and_alerts() {
    let (mut r, _) = Run::start(wallet());
    r.go(inserted(1, Some(bat(1)), bms(10)), 5);
    let d = r.go(SwapInput::Tick, 65);
    assert!(has(&d, &open(4)));
    assert_eq!(d.next_deadline, Some(t(125)));
    let d = r.go(SwapInput::Tick, 125);
    assert_eq!(locks(&d), vec![(4, LockReason::NotTaken)]);
    assert!(alerts(&d).contains(&&Alert::BatteryNotTaken { slot: 4 }));
    assert_eq!(
        r.s.outcome(),
        Some(&Outcome::Failed {
            reason: Reason::NotTaken
        })
    );
    assert!(has(&d, &SwapEffect::ReleaseHold { order: ORDER }));
    assert_eq!(charges(&d), 0);
    // taken late anyway: custody follows, an alert, still no charge
    let d = r.go(removed(4, 4), 130);
    assert_eq!(custody_moves(&d).len(), 1);
    assert_eq!(charges(&d), 0);
    assert_eq!(alerts(&d), vec![&Alert::UnexpectedBatteryEvent { slot: 4 }]);
}

#[test]
fn door_closed_with_the_battery_inside_reopens() {
    let (mut r, _) = Run::start(package());
    r.go(inserted(1, Some(bat(1)), bms(10)), 5);
    // a close never seen open is stale: ignored
    let d = r.go(dev(DeviceEvent::DoorClosed { slot: 4 }), 6);
    assert!(d.effects.is_empty());
    r.go(dev(DeviceEvent::DoorOpened { slot: 4 }), 7);
    let d = r.go(dev(DeviceEvent::DoorClosed { slot: 4 }), 8);
    assert!(has(&d, &open(4)));
    assert!(matches!(
        r.s.phase(),
        Phase::Dispensing { reopened: true, .. }
    ));
}

#[test]
fn a_door_left_open_raises_an_alert() {
    let (mut r, _) = Run::start(package());
    r.go(dev(DeviceEvent::DoorOpened { slot: 1 }), 1);
    let d = r.go(SwapInput::Cancel { rider: RIDER }, 4);
    assert_eq!(d.next_deadline, Some(t(124)));
    assert_eq!(
        r.s.outcome(),
        Some(&Outcome::Failed {
            reason: Reason::CancelledByRider
        })
    );
    let d = r.go(SwapInput::Tick, 100);
    assert!(d.events.is_empty());
    let d = r.go(SwapInput::Tick, 124);
    assert_eq!(alerts(&d), vec![&Alert::DoorLeftOpen { slots: vec![1] }]);
    assert!(r.s.is_finished());
    // it opens again later (e.g. a late message): watched again
    r.go(dev(DeviceEvent::DoorClosed { slot: 1 }), 130);
    let d = r.go(dev(DeviceEvent::DoorOpened { slot: 1 }), 131);
    assert_eq!(d.next_deadline, Some(t(251)));
}

#[test]
fn duplicated_messages_change_nothing() {
    let (mut r, _) = Run::start(package());
    let d = r.go(SwapInput::Start(Box::new(request(package()))), 1);
    assert!(d.events.is_empty() && d.effects.is_empty());
    r.go(dev(DeviceEvent::DoorOpened { slot: 1 }), 1);
    let d = r.go(dev(DeviceEvent::DoorOpened { slot: 1 }), 2);
    assert!(d.events.is_empty());
    r.go(inserted(1, Some(bat(1)), bms(10)), 5);
    let d = r.go(inserted(1, Some(bat(1)), bms(10)), 6);
    assert!(d.events.is_empty() && d.effects.is_empty());
    let d1 = r.go(removed(4, 4), 8);
    assert_eq!(charges(&d1), 1);
    let d = r.go(removed(4, 4), 9);
    assert!(d.events.is_empty() && d.effects.is_empty());
}

#[test]
fn sequence_numbers_drop_stale_messages() {
    let (mut r, _) = Run::start(package());
    let seq = |n, event| {
        SwapInput::Device(CabinetEvent {
            cabinet: CAB,
            seq: Some(n),
            event,
        })
    };
    r.go(
        seq(
            5,
            DeviceEvent::BatteryInserted {
                slot: 1,
                battery: Some(bat(1)),
                bms: bms(10),
            },
        ),
        5,
    );
    r.go(seq(6, DeviceEvent::DoorOpened { slot: 1 }), 6);
    // an older door report about slot 1 arrives late: dropped
    let d = r.go(seq(4, DeviceEvent::DoorClosed { slot: 1 }), 6);
    assert!(d.events.is_empty());
    // battery reports are ordered among themselves: seq 3 < 5 is stale
    let d = r.go(
        seq(
            3,
            DeviceEvent::BatteryRemoved {
                slot: 1,
                battery: Some(bat(1)),
            },
        ),
        6,
    );
    assert!(d.events.is_empty());
    let d = r.go(
        seq(
            5,
            DeviceEvent::BatteryInserted {
                slot: 1,
                battery: Some(bat(1)),
                bms: bms(10),
            },
        ),
        6,
    );
    assert!(d.events.is_empty());
}

#[test]
fn cancel_rules() {
    let (mut r, _) = Run::start(wallet());
    assert!(matches!(
        r.err(SwapInput::Cancel { rider: RiderId(8) }, 1),
        SwapError::WrongRider { .. }
    ));
    let d = r.go(SwapInput::Cancel { rider: RIDER }, 2);
    assert!(has(&d, &SwapEffect::ReleaseHold { order: ORDER }));
    let d = r.go(SwapInput::Cancel { rider: RIDER }, 3);
    assert!(d.events.is_empty());
    // once the old battery is in, cancel is refused
    let (mut r, _) = Run::start(package());
    r.go(inserted(1, Some(bat(1)), bms(10)), 1);
    let e = r.err(SwapInput::Cancel { rider: RIDER }, 2);
    assert!(matches!(e, SwapError::NotAllowed { .. }));
    assert!(e.to_string().contains("dispensing"));
}

#[test]
fn errors_before_start_and_from_other_cabinets() {
    let mut r = Run::new();
    assert_eq!(r.err(SwapInput::Tick, 0), SwapError::NotStarted);
    assert_eq!(r.err(removed(4, 4), 0), SwapError::NotStarted);
    let (mut r, _) = Run::start(package());
    let e = r.err(
        SwapInput::Device(CabinetEvent {
            cabinet: CabinetId(20_002),
            seq: None,
            event: DeviceEvent::DoorOpened { slot: 1 },
        }),
        1,
    );
    assert!(matches!(
        e,
        SwapError::WrongCabinet {
            expected: 20_001,
            got: 20_002
        }
    ));
    let mut req = request(package());
    req.order = 5;
    assert!(matches!(
        r.err(SwapInput::Start(Box::new(req)), 1),
        SwapError::AlreadyStarted {
            order: ORDER,
            requested: 5
        }
    ));
    // events for slots outside the session are ignored
    let d = r.go(removed(6, 6), 2);
    assert!(d.events.is_empty() && d.effects.is_empty());
}

#[test]
fn invalid_requests_are_refused() {
    let mut bad = request(package());
    bad.cabinet.slots.push(SlotSnapshot {
        slot: 1,
        state: SlotState::Empty,
    });
    let mut s = SwapSession::new();
    let e = s.step(&SwapInput::Start(Box::new(bad)), t(0)).unwrap_err();
    assert!(matches!(e, SwapError::InvalidRequest { ref field, .. } if field == "cabinet.slots"));
    let mut bad = request(package());
    bad.policy.take_timeout_s = 0;
    assert!(s.step(&SwapInput::Start(Box::new(bad)), t(0)).is_err());
    let bad = request(Payment::Wallet {
        price: money("-1"),
        available: money("5"),
    });
    assert!(s.step(&SwapInput::Start(Box::new(bad)), t(0)).is_err());
    assert_eq!(s, SwapSession::new());
}

#[test]
fn hold_rejected_ends_without_release() {
    let (mut r, _) = Run::start(wallet());
    let d = r.go(SwapInput::HoldRejected, 1);
    assert_eq!(
        r.s.outcome(),
        Some(&Outcome::Failed {
            reason: Reason::HoldRejected
        })
    );
    assert!(
        !d.effects
            .iter()
            .any(|e| matches!(e, SwapEffect::ReleaseHold { .. }))
    );
    let (mut r, _) = Run::start(package());
    assert!(matches!(
        r.err(SwapInput::HoldRejected, 1),
        SwapError::NotAllowed { .. }
    ));
}

#[test]
fn operator_reopen_resends_the_door_and_extends_the_deadline() {
    let (mut r, _) = Run::start(package());
    r.go(inserted(1, Some(bat(1)), bms(10)), 5);
    r.go(SwapInput::Tick, 65); // reopened once
    let d = r.go(
        SwapInput::OperatorReopen {
            operator: "ops-1".into(),
            reason: "rider called".into(),
        },
        70,
    );
    assert!(has(&d, &open(4)));
    assert_eq!(d.next_deadline, Some(t(130)));
    // the operator's reopen resets the reopen budget
    let d = r.go(SwapInput::Tick, 130);
    assert!(has(&d, &open(4)));
    assert!(r.s.outcome().is_none());
}

#[test]
fn operator_force_complete_and_refund() {
    // stuck dispensing: the operator confirms the rider got the battery
    let (mut r, _) = Run::start(package());
    r.go(inserted(1, Some(bat(1)), bms(10)), 5);
    let force = |charge| SwapInput::ForceComplete {
        operator: "ops-1".into(),
        reason: "video shows the battery taken".into(),
        charge,
    };
    let d = r.go(force(true), 20);
    assert_eq!(charges(&d), 1);
    assert_eq!(
        r.s.outcome(),
        Some(&Outcome::ForceCompleted { charged: true })
    );
    let d = r.go(force(true), 21);
    assert!(d.events.is_empty()); // duplicate
    assert!(matches!(
        r.err(force(false), 22),
        SwapError::NotAllowed { .. }
    ));
    let refund = SwapInput::Refund {
        operator: "fin-1".into(),
        reason: "complaint".into(),
    };
    let d = r.go(refund.clone(), 30);
    assert!(has(
        &d,
        &SwapEffect::RefundEntitlement {
            order: ORDER,
            package: "pkg-42".into()
        }
    ));
    assert!(has(&d, &SwapEffect::ReverseRevenue { order: ORDER }));
    assert_eq!(r.s.settlement(), Settlement::Refunded);
    let d = r.go(refund.clone(), 31);
    assert!(d.events.is_empty() && d.effects.is_empty());
    // refunding an uncharged session is refused
    let (mut r, _) = Run::start(wallet());
    assert!(matches!(r.err(refund, 1), SwapError::NotAllowed { .. }));
    // force-complete without charge releases the hold
    let d = r.go(force(false), 2);
    assert!(has(&d, &SwapEffect::ReleaseHold { order: ORDER }));
    // then charging after all (hold already released): a direct charge
    let d = r.go(force(true), 3);
    assert!(has(
        &d,
        &SwapEffect::ChargeWallet {
            order: ORDER,
            amount: money("4.50")
        }
    ));
}

#[test]
fn wallet_refund_returns_the_price() {
    let (mut r, _) = Run::start(wallet());
    r.go(inserted(1, Some(bat(1)), bms(10)), 1);
    r.go(removed(4, 4), 2);
    let d = r.go(
        SwapInput::Refund {
            operator: "fin".into(),
            reason: "r".into(),
        },
        3,
    );
    assert!(has(
        &d,
        &SwapEffect::RefundPayment {
            order: ORDER,
            amount: money("4.50")
        }
    ));
}

#[test]
fn serde_forms_are_stable() {
    let (mut r, _) = Run::start(package());
    r.go(inserted(1, Some(bat(1)), bms(10)), 1);
    let json = serde_json::to_value(&r.log).unwrap();
    let back: Vec<SwapEvent> = serde_json::from_value(json).unwrap();
    assert_eq!(back, r.log);
    let bytes = postcard::to_allocvec(&r.log).unwrap();
    let back: Vec<SwapEvent> = postcard::from_bytes(&bytes).unwrap();
    assert_eq!(back, r.log);
    let e = serde_json::to_value(SwapError::NotStarted).unwrap();
    assert_eq!(e["kind"], "not_started");
    assert!(SwapSession::from_snapshot(&[0xff, 0xff]).is_err());
}
