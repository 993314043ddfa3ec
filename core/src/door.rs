//! The cabinet door sub-machine the swap, charging and rental machines share.
//!
//! A session at a cabinet drives one door operation at a time — *put a
//! battery in* ([`OpKind::Put`]) or *take a battery out* ([`OpKind::Take`]) —
//! and keeps a [`SlotTrack`] of every slot it used: what is in it, whether
//! its door is open, whether it was locked, the newest cabinet message seen
//! about it. [`Doors`] is that state. The field rules live here once:
//!
//! - **open**: the door is commanded open with a deadline
//!   ([`DoorEvent::Opened`], [`DoorEffect::OpenDoor`]). `DoorFailed` locks
//!   the slot (`op.on_fail`, usually `door_fault`) with an alert →
//!   [`DoorOutcome::OpenFailed`].
//! - **put**: a battery inserted into the operation's empty slot →
//!   [`DoorOutcome::Inserted`] (the caller verifies it: the rider's? faulty?);
//!   nothing inserted by the deadline → [`DoorOutcome::Expired`].
//! - **take**: the battery removed → [`DoorOutcome::Taken`]. The deadline
//!   passes, or (for operations that reopen) the door closes with the battery
//!   still in → the door is reopened once ([`DoorOutcome::Reopened`]), then
//!   the slot is locked (`op.if_left`) with an alert → [`DoorOutcome::Expired`].
//! - **custody**: every battery movement on a tracked slot becomes a
//!   [`DoorEffect::CustodyMove`] with the caller's cause (rider → slot on an
//!   insertion, slot → rider on a removal); a movement no operation expected
//!   also raises [`DoorAlert::UnexpectedBatteryEvent`].
//! - **duplicated, reordered and late messages**: with a cabinet `seq`, a
//!   door report (or a battery report) about a slot that is not newer than
//!   the newest one of its kind is dropped; without, a report that changes
//!   nothing known is a no-op.
//! - **door left open**: once the session ends ([`DoorEvent::Ended`]), a
//!   door still open — or opening again — is watched until the caller's
//!   `close_timeout_s`, then [`DoorAlert::DoorLeftOpen`].
//!
//! The machines embed [`Doors`] and decide what an outcome means for them
//! (verify a returned battery, dispense the next one, settle, give up).
//! [`Doors::on_device`] and [`Doors::on_tick`] write into a [`DoorSink`], so
//! a machine maps door events and effects straight onto its own (the swap
//! machine keeps its historical event names; charging and rental wrap
//! [`DoorEvent`] as is). Alone, [`Doors::handle`] and [`Doors::step`] are the
//! usual pure-machine pair:
//!
//! ```
//! use chargeswap_core::cabinet::{CabinetEvent, DeviceEvent};
//! use chargeswap_core::custody::{CabinetId, Cause, RiderId};
//! use chargeswap_core::door::*;
//! use chargeswap_core::numbering::DeviceNo;
//! use chrono::{TimeZone, Utc};
//!
//! let now = Utc.with_ymd_and_hms(2025, 3, 1, 8, 0, 0).unwrap();
//! let cab = CabinetId(20_001);
//! let full = DeviceNo::new(200_004)?;
//! let ctx = DoorCtx { cabinet: cab, order: 1, rider: RiderId(7), rider_battery: None,
//!                     cause: Cause::Rental { order: 1 }, close_timeout_s: 120 };
//! let mut doors = Doors::new();
//! // take the battery of slot 4: reopen once if it is not taken, then lock the slot
//! let op = DoorOp::take(4, Some(full), 60, after(now, 60)).reopening_once().locking_if_left(LockReason::NotTaken);
//! doors.apply(&DoorEvent::Opened { op });
//! let late = after(now, 60);
//! let d = doors.step(&DoorInput::Tick, late, &ctx, 0);
//! assert_eq!(d.outcome, Some(DoorOutcome::Reopened { slot: 4, deadline: after(late, 60) }));
//! assert!(d.effects.contains(&DoorEffect::OpenDoor { cabinet: cab, slot: 4 }));
//! let dev = |event| DoorInput::Device(CabinetEvent { cabinet: cab, seq: None, event });
//! let d = doors.step(&dev(DeviceEvent::BatteryRemoved { slot: 4, battery: Some(full) }), late, &ctx, 0);
//! assert_eq!(d.outcome, Some(DoorOutcome::Taken { slot: 4 }));
//! assert!(matches!(d.effects[0], DoorEffect::CustodyMove(_)));
//! // the same message again changes nothing
//! let d = doors.step(&dev(DeviceEvent::BatteryRemoved { slot: 4, battery: Some(full) }), late, &ctx, 1);
//! assert!(d.events.is_empty() && d.effects.is_empty() && d.outcome.is_none());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use chrono::Duration;
use serde::{Deserialize, Serialize};

use crate::cabinet::{BmsSummary, CabinetEvent, CabinetSnapshot, DeviceEvent, SlotState};
use crate::custody::{
    CabinetId, Cause, Location, MoveId, MoveRequest, Origin, RiderId, SlotNo, Timestamp,
};
use crate::numbering::DeviceNo;

/// `now` plus `secs` seconds (`now` itself if that would overflow).
#[inline]
pub fn after(now: Timestamp, secs: u32) -> Timestamp {
    now.checked_add_signed(Duration::seconds(i64::from(secs)))
        .unwrap_or(now)
}

/// Door timeouts and battery thresholds of a session at a cabinet (rental
/// issue and return, charging-cabinet slots). Missing fields take the
/// defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DoorPolicy {
    /// Seconds the rider has to insert a battery once its door is commanded open.
    pub insert_timeout_s: u32,
    /// Seconds the rider has to take a battery out of an opened door.
    pub take_timeout_s: u32,
    /// Seconds a door may stay open after the session ends before an alert.
    pub door_close_timeout_s: u32,
    /// How many other slots to try after a door fails to open.
    pub door_retries: u8,
    /// The lowest SOC (percent) at which a battery counts as full.
    pub min_full_soc: u8,
    /// The highest temperature (°C) accepted for a battery.
    pub max_temperature_c: i16,
}

impl Default for DoorPolicy {
    /// 90 s to insert, 60 s to take, 120 s to close, one retry, full from 90 %, 60 °C.
    fn default() -> Self {
        DoorPolicy {
            insert_timeout_s: 90,
            take_timeout_s: 60,
            door_close_timeout_s: 120,
            door_retries: 1,
            min_full_soc: 90,
            max_temperature_c: 60,
        }
    }
}

/// Why a slot is locked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LockReason {
    /// Its door failed.
    DoorFault,
    /// A battery in it was not taken.
    NotTaken,
    /// A quarantined battery is in it.
    Quarantine,
    /// A battery that is not the rider's is in it.
    ForeignBattery,
}

/// Why a battery was quarantined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Quarantine {
    /// The BMS reports faults.
    Faulty,
    /// Hotter than the policy allows.
    OverTemperature,
}

impl Quarantine {
    /// Whether a BMS summary calls for quarantine: faults first, then a
    /// temperature above `max_temperature_c`.
    pub fn of(bms: &BmsSummary, max_temperature_c: i16) -> Option<Quarantine> {
        if bms.faults != 0 {
            Some(Quarantine::Faulty)
        } else if i32::from(bms.temp_dc) > i32::from(max_temperature_c) * 10 {
            Some(Quarantine::OverTemperature)
        } else {
            None
        }
    }
}

/// A full battery a session may hand out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candidate {
    /// Its slot.
    pub slot: SlotNo,
    /// The battery.
    pub battery: DeviceNo,
    /// Its SOC, percent.
    pub soc: u8,
}

/// The empty slots of a snapshot (usable doors), in slot order as listed.
#[inline]
pub fn empty_slots(snap: &CabinetSnapshot) -> Vec<SlotNo> {
    snap.slots
        .iter()
        .filter(|s| s.state == SlotState::Empty)
        .map(|s| s.slot)
        .collect()
}

/// The full batteries of a snapshot a rider may take, best first (highest
/// SOC, ties: lowest slot): readable, no BMS fault, SOC ≥ `min_full_soc`,
/// not hotter than `max_temperature_c`, of one of `models`, and not
/// `exclude` (the rider's own).
#[inline]
pub fn full_batteries(
    snap: &CabinetSnapshot,
    models: &[String],
    min_full_soc: u8,
    max_temperature_c: i16,
    exclude: Option<DeviceNo>,
) -> Vec<Candidate> {
    let mut out: Vec<Candidate> = snap
        .slots
        .iter()
        .filter_map(|s| match &s.state {
            SlotState::Battery {
                battery: Some(b),
                model,
                bms: Some(bms),
            } if bms.faults == 0
                && bms.soc >= min_full_soc
                && i32::from(bms.temp_dc) <= i32::from(max_temperature_c) * 10
                && Some(*b) != exclude
                && models.iter().any(|m| m == model) =>
            {
                Some(Candidate {
                    slot: s.slot,
                    battery: *b,
                    soc: bms.soc,
                })
            }
            _ => None,
        })
        .collect();
    out.sort_by(|a, b| b.soc.cmp(&a.soc).then(a.slot.cmp(&b.slot)));
    out
}

/// What a door operation is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpKind {
    /// The rider puts a battery into an empty slot.
    Put,
    /// The rider takes a battery out of a slot.
    Take,
}

/// One door operation: a slot, what should happen there, until when, and
/// what to do when it does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DoorOp {
    /// The slot.
    pub slot: SlotNo,
    /// Put or take.
    pub kind: OpKind,
    /// For a take: the battery expected in the slot (`None`: whatever is in it).
    pub battery: Option<DeviceNo>,
    /// Seconds the rider has (also the window of a reopen).
    pub timeout_s: u32,
    /// Until when.
    pub deadline: Timestamp,
    /// Reopen once when the battery is not taken (the deadline passed, or
    /// the door closed with the battery still in).
    pub reopen_once: bool,
    /// Whether the door was already reopened.
    pub reopened: bool,
    /// How the slot is locked when its door fails to open.
    pub on_fail: LockReason,
    /// How the slot is locked when the operation expires (after any reopen);
    /// `None` leaves it unlocked.
    pub if_left: Option<LockReason>,
}

impl DoorOp {
    /// Put a battery into `slot` by `deadline`; a failed door locks the slot
    /// (`door_fault`); nothing inserted just expires.
    #[inline]
    pub fn put(slot: SlotNo, timeout_s: u32, deadline: Timestamp) -> DoorOp {
        DoorOp {
            slot,
            kind: OpKind::Put,
            battery: None,
            timeout_s,
            deadline,
            reopen_once: false,
            reopened: false,
            on_fail: LockReason::DoorFault,
            if_left: None,
        }
    }

    /// Take `battery` (or whatever is in the slot) out of `slot` by `deadline`.
    #[inline]
    pub fn take(
        slot: SlotNo,
        battery: Option<DeviceNo>,
        timeout_s: u32,
        deadline: Timestamp,
    ) -> DoorOp {
        DoorOp {
            kind: OpKind::Take,
            battery,
            ..DoorOp::put(slot, timeout_s, deadline)
        }
    }

    /// Reopen once when the battery is not taken.
    #[inline]
    pub fn reopening_once(mut self) -> DoorOp {
        self.reopen_once = true;
        self
    }

    /// Lock the slot for `reason` when the operation expires.
    #[inline]
    pub fn locking_if_left(mut self, reason: LockReason) -> DoorOp {
        self.if_left = Some(reason);
        self
    }

    /// Lock the slot for `reason` (instead of `door_fault`) when the door fails.
    #[inline]
    pub fn locking_on_fail(mut self, reason: LockReason) -> DoorOp {
        self.on_fail = reason;
        self
    }
}

/// What the session knows about one slot it used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotTrack {
    slot: SlotNo,
    /// `None`: empty; `Some(None)`: a battery whose number is unknown.
    content: Option<Option<DeviceNo>>,
    door_open: bool,
    locked: bool,
    /// Newest sequence number seen for the door, and for the battery.
    door_seq: Option<u64>,
    battery_seq: Option<u64>,
}

impl SlotTrack {
    fn new(slot: SlotNo) -> SlotTrack {
        SlotTrack {
            slot,
            content: None,
            door_open: false,
            locked: false,
            door_seq: None,
            battery_seq: None,
        }
    }
    /// The slot.
    pub fn slot(&self) -> SlotNo {
        self.slot
    }
    /// What is in it: `None` empty, `Some(None)` a battery whose number is unknown.
    pub fn content(&self) -> Option<Option<DeviceNo>> {
        self.content
    }
    /// Whether its door was last reported open.
    pub fn door_open(&self) -> bool {
        self.door_open
    }
    /// Whether the session locked it.
    pub fn locked(&self) -> bool {
        self.locked
    }
}

/// What a rider is told to do at a door.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DoorNotice {
    /// Put your battery in this slot.
    InsertBattery {
        /// The slot.
        slot: SlotNo,
    },
    /// Take the battery from this slot.
    TakeBattery {
        /// The slot.
        slot: SlotNo,
    },
    /// Take your battery back from this slot.
    TakeBackBattery {
        /// The slot.
        slot: SlotNo,
    },
}

/// Alerts about doors and slots.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DoorAlert {
    /// A door did not open.
    DoorFailed {
        /// The slot.
        slot: SlotNo,
    },
    /// A battery was not taken after a reopen; its slot is locked.
    BatteryNotTaken {
        /// The slot.
        slot: SlotNo,
    },
    /// A refused battery was left in the cabinet; its slot is locked.
    ForeignBatteryRetained {
        /// The slot.
        slot: SlotNo,
    },
    /// A battery was quarantined.
    BatteryQuarantined {
        /// The slot.
        slot: SlotNo,
        /// The battery.
        battery: DeviceNo,
        /// Why.
        reason: Quarantine,
    },
    /// Doors were still open after the session ended.
    DoorLeftOpen {
        /// The slots.
        slots: Vec<SlotNo>,
    },
    /// A battery moved on a session slot when no movement was expected.
    UnexpectedBatteryEvent {
        /// The slot.
        slot: SlotNo,
    },
}

/// Work for the host (the machine embedding [`Doors`] maps these onto its own effects).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DoorEffect {
    /// Command a door open.
    OpenDoor {
        /// The cabinet.
        cabinet: CabinetId,
        /// The slot.
        slot: SlotNo,
    },
    /// Lock a slot so nothing chooses it until maintenance.
    LockSlot {
        /// The cabinet.
        cabinet: CabinetId,
        /// The slot.
        slot: SlotNo,
        /// Why.
        reason: LockReason,
    },
    /// Record a battery movement in custody.
    CustodyMove(MoveRequest),
    /// Raise an alert to operations.
    Alert(DoorAlert),
}

/// A fact about the doors and slots of a session. Applying them in order
/// rebuilds [`Doors`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DoorEvent {
    /// A door was commanded open for an operation (it replaces any current one).
    Opened {
        /// The operation.
        op: DoorOp,
    },
    /// The operation's door was reopened once.
    Reopened {
        /// The new deadline.
        deadline: Timestamp,
    },
    /// An operator reopened the operation's door: new deadline, reopen
    /// budget back.
    Rearmed {
        /// The new deadline.
        deadline: Timestamp,
    },
    /// The operation is over (its deadline no longer counts).
    Done,
    /// The session ended: no more operations; open doors are watched.
    Ended {
        /// When open doors must be closed by, if any is open.
        watch: Option<Timestamp>,
    },
    /// A door report on a tracked slot.
    Reported {
        /// The slot.
        slot: SlotNo,
        /// Open (true) or closed (false).
        open: bool,
    },
    /// The newest cabinet message sequence number seen for a slot's door
    /// (or its battery).
    Seq {
        /// The slot.
        slot: SlotNo,
        /// The sequence number.
        seq: u64,
        /// True for door reports, false for battery reports.
        door: bool,
    },
    /// A slot was locked.
    Locked {
        /// The slot.
        slot: SlotNo,
        /// Why.
        reason: LockReason,
    },
    /// A battery went into a tracked slot.
    BatteryIn {
        /// The slot.
        slot: SlotNo,
        /// The battery, if readable.
        battery: Option<DeviceNo>,
    },
    /// A battery came out of a tracked slot.
    BatteryOut {
        /// The slot.
        slot: SlotNo,
        /// Whether a custody move went with it (false when the battery had
        /// already been seen in another slot).
        custody: bool,
    },
    /// A door of the ended session is open: watch it.
    WatchStarted {
        /// When it must be closed by.
        until: Timestamp,
    },
    /// The door watch ended (all doors closed, or an alert was raised).
    WatchEnded,
}

impl DoorEvent {
    /// How many custody moves went with this event (each takes one move
    /// number of the session).
    #[inline]
    pub fn custody_moves(&self) -> u32 {
        match self {
            DoorEvent::BatteryIn {
                battery: Some(_), ..
            }
            | DoorEvent::BatteryOut { custody: true, .. } => 1,
            _ => 0,
        }
    }
}

/// What an input meant for the current operation; the caller decides what
/// comes next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DoorOutcome {
    /// A battery went into the put operation's empty slot: verify it.
    Inserted {
        /// The slot.
        slot: SlotNo,
        /// The battery, if readable.
        battery: Option<DeviceNo>,
        /// Its BMS summary, if read.
        bms: Option<BmsSummary>,
    },
    /// The take operation's battery was taken.
    Taken {
        /// The slot.
        slot: SlotNo,
    },
    /// The operation's door did not open; the slot is locked (`op.on_fail`)
    /// and an alert raised.
    OpenFailed {
        /// The slot.
        slot: SlotNo,
    },
    /// The battery was not taken: the door was reopened once.
    Reopened {
        /// The slot.
        slot: SlotNo,
        /// The new deadline.
        deadline: Timestamp,
    },
    /// The operation expired after any reopen; the slot is locked if
    /// `op.if_left` says so.
    Expired {
        /// The slot.
        slot: SlotNo,
    },
}

/// Who a session acts for: what the door rules need to write custody moves
/// and alerts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DoorCtx {
    /// The cabinet.
    pub cabinet: CabinetId,
    /// The order (the custody moves' source).
    pub order: u64,
    /// The rider: batteries taken out go to them.
    pub rider: RiderId,
    /// The battery the rider brings: inserted, it moves from exactly the
    /// rider (any other battery moves from wherever custody has it).
    pub rider_battery: Option<DeviceNo>,
    /// The cause of the custody moves.
    pub cause: Cause,
    /// Seconds a door may stay open after the session ended.
    pub close_timeout_s: u32,
}

impl DoorCtx {
    #[inline]
    fn slot_loc(&self, slot: SlotNo) -> Location {
        Location::Slot {
            cabinet: self.cabinet,
            slot,
        }
    }
    #[inline]
    fn rider_loc(&self) -> Location {
        Location::Rider { rider: self.rider }
    }
}

/// Where door events and effects go: the machine embedding [`Doors`] maps
/// them onto its own decision.
pub trait DoorSink {
    /// A fact to apply.
    fn event(&mut self, event: DoorEvent);
    /// Work for the host.
    fn effect(&mut self, effect: DoorEffect);
    /// The session's next custody move number (the sink advances it).
    fn next_move(&mut self) -> u32;
    /// The next deadline changed to `deadline` (for sinks that track it).
    fn deadline(&mut self, deadline: Option<Timestamp>) {
        let _ = deadline;
    }
}

/// What drives [`Doors`] alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DoorInput {
    /// A cabinet reported something (the caller checked it is its cabinet).
    Device(CabinetEvent),
    /// Time passed.
    Tick,
}

/// The answer of [`Doors::handle`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DoorDecision {
    /// Facts to apply, in order.
    pub events: Vec<DoorEvent>,
    /// Work for the host, in order.
    pub effects: Vec<DoorEffect>,
    /// What it meant for the operation.
    pub outcome: Option<DoorOutcome>,
    /// When to tick next.
    pub next_deadline: Option<Timestamp>,
}

struct Collect {
    events: Vec<DoorEvent>,
    effects: Vec<DoorEffect>,
    next_move: u32,
}

impl DoorSink for Collect {
    fn event(&mut self, event: DoorEvent) {
        self.events.push(event);
    }
    fn effect(&mut self, effect: DoorEffect) {
        self.effects.push(effect);
    }
    fn next_move(&mut self) -> u32 {
        let n = self.next_move;
        self.next_move = n.saturating_add(1);
        n
    }
}

/// The doors and slots of one session at one cabinet: the fold of its
/// [`DoorEvent`]s.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Doors {
    tracks: Vec<SlotTrack>,
    op: Option<DoorOp>,
    ended: bool,
    watch: Option<Timestamp>,
}

impl Doors {
    /// No slot used yet.
    pub fn new() -> Doors {
        Doors::default()
    }

    /// The operation in progress.
    pub fn op(&self) -> Option<&DoorOp> {
        self.op.as_ref()
    }
    /// Every slot the session used.
    pub fn tracks(&self) -> &[SlotTrack] {
        &self.tracks
    }
    /// The track of a slot, if the session used it.
    #[inline]
    pub fn track(&self, slot: SlotNo) -> Option<&SlotTrack> {
        self.tracks.iter().find(|t| t.slot == slot)
    }
    /// What the session believes is in a slot of its own: `None` when the
    /// slot is not one of the session's or is empty.
    #[inline]
    pub fn content(&self, slot: SlotNo) -> Option<Option<DeviceNo>> {
        self.track(slot).and_then(|t| t.content)
    }
    /// Whether the session locked a slot.
    #[inline]
    pub fn is_locked(&self, slot: SlotNo) -> bool {
        self.track(slot).is_some_and(|t| t.locked)
    }
    /// Whether the session has ended.
    pub fn ended(&self) -> bool {
        self.ended
    }
    /// Until when an open door of the ended session is watched.
    #[inline]
    pub fn watch(&self) -> Option<Timestamp> {
        self.watch
    }
    /// The operation's deadline.
    #[inline]
    pub fn deadline(&self) -> Option<Timestamp> {
        self.op.map(|o| o.deadline)
    }
    /// The next time a tick has something to do.
    #[inline]
    pub fn next_deadline(&self) -> Option<Timestamp> {
        match (self.deadline(), self.watch) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Whether any door is open once the door reports of a decision apply
    /// (`reported(slot)`: the last report of the decision about `slot`).
    pub fn open_after(&self, reported: impl Fn(SlotNo) -> Option<bool>) -> bool {
        self.tracks
            .iter()
            .any(|t| reported(t.slot).unwrap_or(t.door_open))
    }

    /// The track of a slot, created empty on first use.
    #[inline]
    fn track_mut(&mut self, slot: SlotNo) -> Option<&mut SlotTrack> {
        if self.track(slot).is_none() {
            self.tracks.push(SlotTrack::new(slot));
        }
        self.tracks.iter_mut().find(|t| t.slot == slot)
    }

    /// Folds one event in. Total: never fails, never panics.
    pub fn apply(&mut self, e: &DoorEvent) {
        match e {
            DoorEvent::Opened { op } => self.begin(*op),
            DoorEvent::Reopened { deadline } => self.reopen(*deadline, true),
            DoorEvent::Rearmed { deadline } => self.reopen(*deadline, false),
            DoorEvent::Done => self.op = None,
            DoorEvent::Ended { watch } => self.end(*watch),
            DoorEvent::Reported { slot, open } => self.set_open(*slot, *open),
            DoorEvent::Seq { slot, seq, door } => self.set_seq(*slot, *seq, *door),
            DoorEvent::Locked { slot, .. } => self.set_locked(*slot),
            DoorEvent::BatteryIn { slot, battery } => self.set_content(*slot, Some(*battery)),
            DoorEvent::BatteryOut { slot, .. } => self.set_content(*slot, None),
            DoorEvent::WatchStarted { until } => self.watch = Some(*until),
            DoorEvent::WatchEnded => self.watch = None,
        }
    }

    // The folds of the events, one per kind: `apply` uses them, and so does
    // a machine that records door facts under its own event names.

    /// [`DoorEvent::Opened`]: `op` replaces any current operation; a fresh
    /// take slot is assumed to hold the battery to take.
    #[inline]
    pub fn begin(&mut self, op: DoorOp) {
        let fresh = self.track(op.slot).is_none();
        if let (Some(t), true) = (self.track_mut(op.slot), fresh) {
            if op.kind == OpKind::Take {
                t.content = Some(op.battery);
            }
        }
        self.op = Some(op);
        self.ended = false;
    }

    /// [`DoorEvent::Reopened`] (`spent`) or [`DoorEvent::Rearmed`].
    #[inline]
    pub fn reopen(&mut self, deadline: Timestamp, spent: bool) {
        if let Some(op) = &mut self.op {
            op.reopened = spent;
            op.deadline = deadline;
        }
    }

    /// [`DoorEvent::Ended`].
    #[inline]
    pub fn end(&mut self, watch: Option<Timestamp>) {
        self.op = None;
        self.ended = true;
        if watch.is_some() {
            self.watch = watch;
        }
    }

    /// [`DoorEvent::WatchStarted`] (`Some`) or [`DoorEvent::WatchEnded`] (`None`).
    #[inline]
    pub fn set_watch(&mut self, watch: Option<Timestamp>) {
        self.watch = watch;
    }

    /// [`DoorEvent::Reported`].
    #[inline]
    pub fn set_open(&mut self, slot: SlotNo, open: bool) {
        if let Some(t) = self.track_mut(slot) {
            t.door_open = open;
        }
    }

    /// [`DoorEvent::Seq`].
    #[inline]
    pub fn set_seq(&mut self, slot: SlotNo, seq: u64, door: bool) {
        if let Some(t) = self.track_mut(slot) {
            if door {
                t.door_seq = Some(seq);
            } else {
                t.battery_seq = Some(seq);
            }
        }
    }

    /// [`DoorEvent::Locked`].
    #[inline]
    pub fn set_locked(&mut self, slot: SlotNo) {
        if let Some(t) = self.track_mut(slot) {
            t.locked = true;
        }
    }

    /// [`DoorEvent::BatteryIn`] (`Some`) or [`DoorEvent::BatteryOut`] (`None`).
    #[inline]
    pub fn set_content(&mut self, slot: SlotNo, content: Option<Option<DeviceNo>>) {
        if let Some(t) = self.track_mut(slot) {
            t.content = content;
        }
    }

    /// Decides what one input means, without changing the doors.
    /// `next_move` is the session's next custody move number.
    pub fn handle(
        &self,
        input: &DoorInput,
        now: Timestamp,
        ctx: &DoorCtx,
        next_move: u32,
    ) -> DoorDecision {
        let mut out = Collect {
            events: Vec::new(),
            effects: Vec::new(),
            next_move,
        };
        let outcome = match input {
            DoorInput::Device(ev) => self.on_device(ev, now, ctx, &mut out),
            DoorInput::Tick => self.on_tick(now, ctx, &mut out),
        };
        let mut probe = self.clone();
        for e in &out.events {
            probe.apply(e);
        }
        DoorDecision {
            events: out.events,
            effects: out.effects,
            outcome,
            next_deadline: probe.next_deadline(),
        }
    }

    /// Handles then applies one input.
    pub fn step(
        &mut self,
        input: &DoorInput,
        now: Timestamp,
        ctx: &DoorCtx,
        next_move: u32,
    ) -> DoorDecision {
        let d = self.handle(input, now, ctx, next_move);
        for e in &d.events {
            self.apply(e);
        }
        d
    }

    // ----- rules -------------------------------------------------------

    /// Commands a door open for `op` (event and effect).
    pub fn open<S: DoorSink>(ctx: &DoorCtx, op: DoorOp, out: &mut S) {
        out.event(DoorEvent::Opened { op });
        out.effect(DoorEffect::OpenDoor {
            cabinet: ctx.cabinet,
            slot: op.slot,
        });
        out.deadline(Some(op.deadline));
    }

    /// Locks a slot (event, effect and the alert its reason calls for;
    /// `quarantine` leaves the alert to the caller, who knows the battery).
    #[inline]
    pub fn lock<S: DoorSink>(ctx: &DoorCtx, slot: SlotNo, reason: LockReason, out: &mut S) {
        out.event(DoorEvent::Locked { slot, reason });
        out.effect(DoorEffect::LockSlot {
            cabinet: ctx.cabinet,
            slot,
            reason,
        });
        let alert = match reason {
            LockReason::DoorFault => Some(DoorAlert::DoorFailed { slot }),
            LockReason::NotTaken => Some(DoorAlert::BatteryNotTaken { slot }),
            LockReason::ForeignBattery => Some(DoorAlert::ForeignBatteryRetained { slot }),
            LockReason::Quarantine => None,
        };
        if let Some(a) = alert {
            out.effect(DoorEffect::Alert(a));
        }
    }

    #[inline]
    fn custody<S: DoorSink>(
        ctx: &DoorCtx,
        out: &mut S,
        battery: DeviceNo,
        from: Origin,
        to: Location,
    ) {
        let id = MoveId::new(ctx.order, out.next_move());
        out.effect(DoorEffect::CustodyMove(MoveRequest {
            id,
            battery,
            from,
            to,
            cause: ctx.cause.clone(),
        }));
    }

    /// A cabinet event of the session's cabinet (the caller checked the
    /// cabinet). Drops stale and duplicated reports, follows every battery
    /// movement on a tracked slot in custody, and reports what it meant for
    /// the current operation.
    pub fn on_device<S: DoorSink>(
        &self,
        ev: &CabinetEvent,
        now: Timestamp,
        ctx: &DoorCtx,
        out: &mut S,
    ) -> Option<DoorOutcome> {
        // Door reports and battery reports of a slot are separate facts:
        // each is stale only against newer reports of its own kind.
        let door = matches!(
            ev.event,
            DeviceEvent::DoorOpened { .. }
                | DeviceEvent::DoorClosed { .. }
                | DeviceEvent::DoorFailed { .. }
        );
        let battery = matches!(
            ev.event,
            DeviceEvent::BatteryInserted { .. } | DeviceEvent::BatteryRemoved { .. }
        );
        if let (Some(seq), Some(track), true) = (
            ev.seq,
            ev.event.slot().and_then(|s| self.track(s)),
            door || battery,
        ) {
            let last = if door {
                track.door_seq
            } else {
                track.battery_seq
            };
            if last.is_some_and(|last| seq <= last) {
                return None; // stale or duplicated
            }
            out.event(DoorEvent::Seq {
                slot: track.slot,
                seq,
                door,
            });
        }
        match &ev.event {
            DeviceEvent::DoorOpened { slot } => {
                self.on_opened(*slot, now, ctx, out);
                None
            }
            DeviceEvent::DoorClosed { slot } => self.on_closed(*slot, now, ctx, out),
            DeviceEvent::DoorFailed { slot } => self.on_failed(*slot, ctx, out),
            DeviceEvent::BatteryInserted { slot, battery, bms } => {
                self.on_inserted(*slot, *battery, *bms, ctx, out)
            }
            DeviceEvent::BatteryRemoved { slot, .. } => self.on_removed(*slot, ctx, out),
            DeviceEvent::SlotStatus { .. } | DeviceEvent::Online | DeviceEvent::Offline => None,
        }
    }

    /// Time passed: the door watch, then the operation's deadline.
    pub fn on_tick<S: DoorSink>(
        &self,
        now: Timestamp,
        ctx: &DoorCtx,
        out: &mut S,
    ) -> Option<DoorOutcome> {
        if let Some(w) = self.watch {
            if now >= w {
                let slots: Vec<SlotNo> = self
                    .tracks
                    .iter()
                    .filter(|t| t.door_open)
                    .map(|t| t.slot)
                    .collect();
                out.event(DoorEvent::WatchEnded);
                out.effect(DoorEffect::Alert(DoorAlert::DoorLeftOpen { slots }));
                out.deadline(self.deadline());
            }
        }
        let op = self.op?;
        if now < op.deadline {
            return None;
        }
        Some(self.expire(&op, now, ctx, out))
    }

    /// The battery was not put or taken in time: reopen once (if the
    /// operation does), else lock (if it does) and expire.
    fn expire<S: DoorSink>(
        &self,
        op: &DoorOp,
        now: Timestamp,
        ctx: &DoorCtx,
        out: &mut S,
    ) -> DoorOutcome {
        if op.reopen_once && !op.reopened {
            let deadline = after(now, op.timeout_s);
            out.event(DoorEvent::Reopened { deadline });
            out.effect(DoorEffect::OpenDoor {
                cabinet: ctx.cabinet,
                slot: op.slot,
            });
            out.deadline(Some(deadline));
            return DoorOutcome::Reopened {
                slot: op.slot,
                deadline,
            };
        }
        if let Some(r) = op.if_left {
            Doors::lock(ctx, op.slot, r, out);
        }
        DoorOutcome::Expired { slot: op.slot }
    }

    fn on_opened<S: DoorSink>(&self, slot: SlotNo, now: Timestamp, ctx: &DoorCtx, out: &mut S) {
        if self.track(slot).is_some_and(|t| !t.door_open) {
            out.event(DoorEvent::Reported { slot, open: true });
            if self.ended && self.watch.is_none() {
                // a door of an ended session opened: watch it again
                let until = after(now, ctx.close_timeout_s);
                out.event(DoorEvent::WatchStarted { until });
                out.deadline(Some(until));
            }
        }
    }

    fn on_closed<S: DoorSink>(
        &self,
        slot: SlotNo,
        now: Timestamp,
        ctx: &DoorCtx,
        out: &mut S,
    ) -> Option<DoorOutcome> {
        let was_open = self.track(slot).is_some_and(|t| t.door_open);
        if was_open {
            out.event(DoorEvent::Reported { slot, open: false });
            let others_open = self.tracks.iter().any(|t| t.slot != slot && t.door_open);
            if self.ended && self.watch.is_some() && !others_open {
                out.event(DoorEvent::WatchEnded);
                out.deadline(self.deadline());
            }
        }
        // Closed with the battery still in: not taken. (A close never seen
        // open is a stale message and is ignored.)
        let op = self.op?;
        if op.kind == OpKind::Take
            && op.reopen_once
            && op.slot == slot
            && was_open
            && self.content(slot) == Some(op.battery)
        {
            return Some(self.expire(&op, now, ctx, out));
        }
        None
    }

    fn on_failed<S: DoorSink>(
        &self,
        slot: SlotNo,
        ctx: &DoorCtx,
        out: &mut S,
    ) -> Option<DoorOutcome> {
        let op = self.op?;
        // late or foreign; a put slot that already holds the battery opened
        if op.slot != slot || (op.kind == OpKind::Put && self.content(slot).is_some()) {
            return None;
        }
        Doors::lock(ctx, slot, op.on_fail, out);
        Some(DoorOutcome::OpenFailed { slot })
    }

    fn seen_elsewhere(&self, battery: DeviceNo, slot: SlotNo) -> bool {
        self.tracks
            .iter()
            .any(|t| t.slot != slot && t.content == Some(Some(battery)))
    }

    fn on_inserted<S: DoorSink>(
        &self,
        slot: SlotNo,
        battery: Option<DeviceNo>,
        bms: Option<BmsSummary>,
        ctx: &DoorCtx,
        out: &mut S,
    ) -> Option<DoorOutcome> {
        let track = self.track(slot)?; // not a session slot
        if track.content == Some(battery) {
            return None; // duplicate
        }
        let expected = self
            .op
            .is_some_and(|op| op.kind == OpKind::Put && op.slot == slot)
            && track.content.is_none();
        if let (Some(prev), false) = (track.content, expected) {
            // A different battery reported in an occupied slot: the old one
            // must have left unseen. Follow the cabinet.
            let moved = prev.is_some_and(|p| !self.seen_elsewhere(p, slot));
            out.event(DoorEvent::BatteryOut {
                slot,
                custody: moved,
            });
            if let (Some(p), true) = (prev, moved) {
                let from = Origin::Exactly {
                    location: ctx.slot_loc(slot),
                };
                Doors::custody(ctx, out, p, from, ctx.rider_loc());
            }
        }
        // A battery seen in another session slot has left it (its removal
        // message is late or lost): clear that slot without a custody move.
        let mut elsewhere = false;
        for t in &self.tracks {
            if t.slot != slot && battery.is_some() && t.content == Some(battery) {
                elsewhere = true;
                out.event(DoorEvent::BatteryOut {
                    slot: t.slot,
                    custody: false,
                });
            }
        }
        out.event(DoorEvent::BatteryIn { slot, battery });
        if let Some(b) = battery {
            let own = Some(b) == ctx.rider_battery;
            let from = if own && !elsewhere {
                Origin::Exactly {
                    location: ctx.rider_loc(),
                }
            } else {
                Origin::Anywhere
            };
            Doors::custody(ctx, out, b, from, ctx.slot_loc(slot));
        }
        if !expected {
            out.effect(DoorEffect::Alert(DoorAlert::UnexpectedBatteryEvent {
                slot,
            }));
            return None;
        }
        Some(DoorOutcome::Inserted { slot, battery, bms })
    }

    fn on_removed<S: DoorSink>(
        &self,
        slot: SlotNo,
        ctx: &DoorCtx,
        out: &mut S,
    ) -> Option<DoorOutcome> {
        let track = self.track(slot)?;
        // Empty: a duplicate or late report. The session's own record of
        // the slot is authoritative over the number in the report.
        let content = track.content?;
        // Already seen in another slot: it moved there; no custody move.
        let content = content.filter(|b| !self.seen_elsewhere(*b, slot));
        out.event(DoorEvent::BatteryOut {
            slot,
            custody: content.is_some(),
        });
        if let Some(b) = content {
            let from = Origin::Exactly {
                location: ctx.slot_loc(slot),
            };
            Doors::custody(ctx, out, b, from, ctx.rider_loc());
        }
        match self.op {
            Some(op) if op.kind == OpKind::Take && op.slot == slot => {
                Some(DoorOutcome::Taken { slot })
            }
            _ => {
                out.effect(DoorEffect::Alert(DoorAlert::UnexpectedBatteryEvent {
                    slot,
                }));
                None
            }
        }
    }
}

#[cfg(test)]
mod tests;
