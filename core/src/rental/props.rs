//! Stateful property tests of rental issue and return at a cabinet: a
//! simulated cabinet (slots, doors, slot board), rider and network drive the
//! machine with random sequences, including duplicated, reordered and late
//! messages, door failures and timeouts, next to the rental's own commands.
//! Every effect is carried out by an executor with custody, a ledger,
//! wallets and deposits. Checked after every step: custody conserved (every
//! move accepted, no battery created or lost), the ledger balanced, replay
//! and snapshots exact, a battery issued only once it was physically taken
//! and returned at a cabinet only once it was physically put in; at the end,
//! once the deadlines pass: no door work pending and custody agrees with
//! every slot and the rider.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use proptest::prelude::*;

use super::*;
use crate::cabinet::{BmsSummary, DeviceEvent, SlotSnapshot, SlotState};
use crate::custody::Custody;
use crate::executor::tests::{balanced, config, rider_books};
use crate::executor::{Carried, Executor};
use chrono::TimeZone;

const CAB: CabinetId = CabinetId(20_001);
const RIDER: RiderId = RiderId(7);

fn t(s: i64) -> Timestamp {
    chrono::Utc.with_ymd_and_hms(2025, 3, 1, 9, 0, 0).unwrap() + Duration::seconds(s)
}
fn bat(n: u32) -> DeviceNo {
    DeviceNo::new(u64::from(200_000 + n)).unwrap()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phys {
    Known(DeviceNo),
    Unreadable,
}

#[derive(Debug, Clone)]
enum Op {
    ExecDoor {
        fail: bool,
    },
    Insert {
        which: usize,
        slot: usize,
        faulty: bool,
    },
    Take {
        slot: usize,
    },
    Close {
        slot: usize,
    },
    Deliver {
        i: usize,
    },
    Duplicate {
        i: usize,
    },
    Advance {
        secs: u32,
    },
    IssueAtCabinet,
    ReturnAtCabinet,
    DepositSecured,
    Inspect,
    Freeze,
    Unfreeze,
    Cancel,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => proptest::bool::weighted(0.15).prop_map(|fail| Op::ExecDoor { fail }),
        3 => (0usize..3, 0usize..6, proptest::bool::weighted(0.1))
            .prop_map(|(which, slot, faulty)| Op::Insert { which, slot, faulty }),
        3 => (0usize..6).prop_map(|slot| Op::Take { slot }),
        2 => (0usize..6).prop_map(|slot| Op::Close { slot }),
        6 => (0usize..8).prop_map(|i| Op::Deliver { i }),
        2 => (0usize..64).prop_map(|i| Op::Duplicate { i }),
        2 => prop_oneof![1u32..200, 3_600u32..4_000_000].prop_map(|secs| Op::Advance { secs }),
        2 => Just(Op::IssueAtCabinet),
        2 => Just(Op::ReturnAtCabinet),
        1 => Just(Op::DepositSecured),
        1 => Just(Op::Inspect),
        1 => Just(Op::Freeze),
        1 => Just(Op::Unfreeze),
        1 => Just(Op::Cancel),
    ]
}

struct World {
    with_seq: bool,
    /// Slot → (content, door open).
    slots: BTreeMap<SlotNo, (Option<Phys>, bool)>,
    /// Slots the platform locked.
    locked: BTreeSet<SlotNo>,
    rider: Vec<Phys>,
    doors: VecDeque<SlotNo>,
    queue: Vec<CabinetEvent>,
    delivered: Vec<CabinetEvent>,
    seq: u64,
    now: i64,
    ex: Executor,
    r: Rental,
    log: Vec<RentalEvent>,
    /// Batteries the rider physically took out of a slot, and put in.
    taken: BTreeSet<DeviceNo>,
    put_in: BTreeSet<DeviceNo>,
}

impl World {
    fn new(with_seq: bool, waiver: bool) -> World {
        let mut book = Custody::new();
        let mut slots = BTreeMap::new();
        let mut id = 0;
        let mut reg = |book: &mut Custody, b: DeviceNo, at: Location| {
            id += 1;
            book.record(MoveRequest::register(MoveId::new(0, id), b, at), t(0))
                .unwrap();
        };
        for s in 1..=6u16 {
            let content = match s {
                3..=5 => {
                    reg(
                        &mut book,
                        bat(u32::from(s)),
                        Location::Slot {
                            cabinet: CAB,
                            slot: s,
                        },
                    );
                    Some(Phys::Known(bat(u32::from(s))))
                }
                _ => None,
            };
            slots.insert(s, (content, false));
        }
        reg(&mut book, bat(9), Location::Rider { rider: RiderId(99) });
        // rider 7 with 20.00 in the wallet; the rental package is bought on
        // these books by the rental's own effects
        let ex = Executor::new(config(), book).with_books(rider_books());
        let mut w = World {
            with_seq,
            slots,
            locked: BTreeSet::new(),
            rider: vec![Phys::Known(bat(9)), Phys::Unreadable],
            doors: VecDeque::new(),
            queue: Vec::new(),
            delivered: Vec::new(),
            seq: 0,
            now: 0,
            ex,
            r: Rental::new(),
            log: Vec::new(),
            taken: BTreeSet::new(),
            put_in: BTreeSet::new(),
        };
        // rent-30: 30 days, deposit 300.00 (the rental unit tests' product)
        w.input(RentalInput::Start(crate::rental::tests::request(
            if waiver {
                DepositMode::CreditWaiver
            } else {
                DepositMode::Paid
            },
        )));
        w
    }

    /// The cabinet as the host reports it: contents, with locked slots locked.
    fn snapshot(&self) -> CabinetSnapshot {
        CabinetSnapshot {
            cabinet: CAB,
            online: true,
            busy_with: None,
            slots: self
                .slots
                .iter()
                .map(|(s, (c, _))| SlotSnapshot {
                    slot: *s,
                    state: if self.locked.contains(s) {
                        SlotState::Locked
                    } else {
                        match c {
                            None => SlotState::Empty,
                            Some(p) => SlotState::Battery {
                                battery: match p {
                                    Phys::Known(b) => Some(*b),
                                    Phys::Unreadable => None,
                                },
                                model: if *s == 5 { "60V".into() } else { "48V".into() },
                                bms: Some(BmsSummary {
                                    soc: 90 + u8::try_from(*s).unwrap(),
                                    temp_dc: 250,
                                    faults: 0,
                                }),
                            },
                        }
                    },
                })
                .collect(),
        }
    }

    fn emit(&mut self, event: DeviceEvent) {
        self.seq += 1;
        self.queue.push(CabinetEvent {
            cabinet: CAB,
            seq: self.with_seq.then_some(self.seq),
            event,
        });
    }

    fn input(&mut self, input: RentalInput) {
        let before = self.r.clone();
        let Ok(d) = self.r.step(&input, t(self.now)) else {
            assert_eq!(self.r, before, "an error changed the rental");
            return;
        };
        self.log.extend(d.events.iter().cloned());
        assert_eq!(d.next_deadline, self.r.next_deadline());
        let carried = self
            .ex
            .carry_out_rental(Some(CAB), RIDER, 500, &d.effects, t(self.now));
        for (e, c) in d.effects.iter().zip(&carried) {
            assert!(
                !matches!(c, Carried::Failed { .. }),
                "{e:?} could not be carried out: {c:?}"
            );
        }
        for e in &d.effects {
            match e {
                RentalEffect::OpenDoor { cabinet, slot } => {
                    assert_eq!(*cabinet, CAB);
                    self.doors.push_back(*slot);
                }
                RentalEffect::LockSlot { slot, .. } => {
                    self.locked.insert(*slot);
                }
                _ => {}
            }
        }
        for e in &d.events {
            match e {
                RentalEvent::Issued { battery, .. } if matches!(input, RentalInput::Cabinet(_)) => {
                    assert!(self.taken.contains(battery), "issued before it was taken");
                }
                RentalEvent::Returned { .. } if matches!(input, RentalInput::Cabinet(_)) => {
                    let b = self.r.battery().unwrap();
                    assert!(self.put_in.contains(&b), "returned before it was put in");
                }
                _ => {}
            }
        }
        self.check();
    }

    fn check(&self) {
        assert_eq!(self.ex.custody().battery_count(), 4);
        assert!(balanced(&self.ex));
        assert_eq!(&Rental::replay(&self.log), &self.r);
        let bytes = postcard::to_allocvec(&self.r).unwrap();
        assert_eq!(postcard::from_bytes::<Rental>(&bytes).unwrap(), self.r);
    }

    fn open(&self, empty: bool) -> Vec<SlotNo> {
        self.slots
            .iter()
            .filter(|(_, (c, open))| *open && c.is_none() == empty)
            .map(|(s, _)| *s)
            .collect()
    }

    fn deliver(&mut self, i: usize) {
        if self.queue.is_empty() {
            return;
        }
        let i = if self.with_seq {
            i % self.queue.len()
        } else {
            0
        };
        let ev = self.queue.remove(i);
        self.delivered.push(ev.clone());
        self.input(RentalInput::Cabinet(ev));
    }

    fn apply(&mut self, op: Op) {
        match op {
            Op::ExecDoor { fail } => {
                if let Some(slot) = self.doors.pop_front() {
                    if fail {
                        self.emit(DeviceEvent::DoorFailed { slot });
                    } else {
                        self.slots.get_mut(&slot).unwrap().1 = true;
                        self.emit(DeviceEvent::DoorOpened { slot });
                    }
                }
            }
            Op::Insert {
                which,
                slot,
                faulty,
            } => {
                let open = self.open(true);
                if open.is_empty() || self.rider.is_empty() {
                    return;
                }
                let slot = open[slot % open.len()];
                let b = self.rider.remove(which % self.rider.len());
                self.slots.get_mut(&slot).unwrap().0 = Some(b);
                let battery = match b {
                    Phys::Known(n) => {
                        self.put_in.insert(n);
                        Some(n)
                    }
                    Phys::Unreadable => None,
                };
                self.emit(DeviceEvent::BatteryInserted {
                    slot,
                    battery,
                    bms: Some(BmsSummary {
                        soc: 30,
                        temp_dc: 300,
                        faults: u32::from(faulty),
                    }),
                });
            }
            Op::Take { slot } => {
                let open = self.open(false);
                if open.is_empty() {
                    return;
                }
                let slot = open[slot % open.len()];
                let b = self.slots.get_mut(&slot).unwrap().0.take().unwrap();
                self.rider.push(b);
                let battery = match b {
                    Phys::Known(n) => {
                        self.taken.insert(n);
                        Some(n)
                    }
                    Phys::Unreadable => None,
                };
                self.emit(DeviceEvent::BatteryRemoved { slot, battery });
            }
            Op::Close { slot } => {
                let open: Vec<SlotNo> = self
                    .slots
                    .iter()
                    .filter(|(_, (_, o))| *o)
                    .map(|(s, _)| *s)
                    .collect();
                if open.is_empty() {
                    return;
                }
                let slot = open[slot % open.len()];
                self.slots.get_mut(&slot).unwrap().1 = false;
                self.emit(DeviceEvent::DoorClosed { slot });
            }
            Op::Deliver { i } => self.deliver(i),
            Op::Duplicate { i } => {
                if self.delivered.is_empty() {
                    return;
                }
                let i = if self.with_seq {
                    i % self.delivered.len()
                } else {
                    self.delivered.len() - 1
                };
                let ev = self.delivered[i].clone();
                self.input(RentalInput::Cabinet(ev));
            }
            Op::Advance { secs } => {
                self.now += i64::from(secs);
                self.input(RentalInput::Tick);
            }
            Op::IssueAtCabinet => {
                let cabinet = self.snapshot();
                self.input(RentalInput::IssueAtCabinet(CabinetIssue {
                    cabinet,
                    allowed_models: vec!["48V".into()],
                    policy: DoorPolicy::default(),
                }))
            }
            Op::ReturnAtCabinet => {
                let cabinet = self.snapshot();
                self.input(RentalInput::ReturnAtCabinet(CabinetReturn {
                    cabinet,
                    policy: DoorPolicy::default(),
                }))
            }
            Op::DepositSecured => self.input(RentalInput::DepositSecured),
            Op::Inspect => self.input(RentalInput::Inspect(Inspection::Fine)),
            Op::Freeze => self.input(RentalInput::Freeze {
                days: 2,
                reason: "trip".into(),
            }),
            Op::Unfreeze => self.input(RentalInput::Unfreeze),
            Op::Cancel => self.input(RentalInput::Cancel),
        }
    }

    /// Delivers everything and lets the door deadlines pass.
    fn settle(&mut self) {
        while !self.queue.is_empty() {
            self.deliver(0);
        }
        for _ in 0..8 {
            match self.r.doors().next_deadline() {
                Some(d) => {
                    self.now = self.now.max((d - t(0)).num_seconds());
                    self.input(RentalInput::Tick);
                }
                None => break,
            }
        }
        // no door work left
        assert!(self.r.doors().op().is_none());
        assert!(self.r.doors().next_deadline().is_none());
        assert!(!matches!(
            self.r.phase(),
            RentalPhase::Issuing | RentalPhase::Returning
        ));
        // custody agrees with the cabinet and the rider
        for (slot, (content, _)) in &self.slots {
            let known = match content {
                Some(Phys::Known(b)) => Some(*b),
                _ => None,
            };
            assert_eq!(self.ex.custody().occupant(CAB, *slot), known, "slot {slot}");
        }
        for p in &self.rider {
            if let Phys::Known(b) = p {
                if *b == bat(9)
                    && self.ex.custody().location(*b)
                        == Some(&Location::Rider { rider: RiderId(99) })
                {
                    continue; // never moved: still booked to its owner
                }
                assert_eq!(
                    self.ex.custody().location(*b),
                    Some(&Location::Rider { rider: RIDER }),
                    "{b}"
                );
            }
        }
    }
}

/// Deposit, issue from the cabinet, take, then return into a cabinet slot and inspect.
fn script() -> Vec<Op> {
    vec![
        Op::DepositSecured,
        Op::IssueAtCabinet,
        Op::ExecDoor { fail: false },
        Op::Deliver { i: 0 },
        Op::Take { slot: 0 },
        Op::Deliver { i: 0 },
        Op::Close { slot: 0 },
        Op::Deliver { i: 0 },
        Op::Advance { secs: 86_400 },
        Op::ReturnAtCabinet,
        Op::ExecDoor { fail: false },
        Op::Deliver { i: 0 },
        Op::Insert {
            which: 2,
            slot: 0,
            faulty: false,
        },
        Op::Deliver { i: 0 },
        Op::Close { slot: 0 },
        Op::Deliver { i: 0 },
        Op::Inspect,
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_cabinet_visits_keep_every_invariant(
        with_seq in any::<bool>(),
        waiver in any::<bool>(),
        ops in proptest::collection::vec(op(), 0..70),
    ) {
        let mut w = World::new(with_seq, waiver);
        for o in ops {
            w.apply(o);
        }
        w.settle();
    }

    /// The issue-and-return script with random noise after every step.
    #[test]
    fn noisy_issue_and_return(
        with_seq in any::<bool>(),
        waiver in any::<bool>(),
        noise in proptest::collection::vec(proptest::collection::vec(op(), 0..3), 17),
    ) {
        let mut w = World::new(with_seq, waiver);
        let undisturbed = noise.iter().all(Vec::is_empty);
        for (o, extra) in script().into_iter().zip(noise) {
            w.apply(o);
            for e in extra {
                w.apply(e);
            }
        }
        w.settle();
        if undisturbed {
            // issued 200004 (98 %, the best of the allowed model) from slot
            // 4, returned into slot 1, inspected fine: closed
            prop_assert_eq!(w.r.phase(), RentalPhase::Closed);
            prop_assert_eq!(w.ex.custody().occupant(CAB, 1), Some(bat(4)));
        }
    }
}
