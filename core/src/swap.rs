//! The swap session (换电) as a pure state machine.
//!
//! A rider scans a cabinet; the host gathers what the machine needs to
//! decide (a [`CabinetSnapshot`], the rider's [`RiderFacts`], the
//! [`Payment`] means and the [`SwapPolicy`]) into a [`SwapRequest`] and feeds
//! it, then every device event of that cabinet, every rider or operator
//! command and a [`SwapInput::Tick`] whenever the session's deadline passes.
//!
//! [`SwapSession::handle`] never changes the session: it returns a
//! [`Decision`] (events, effects for the host, the next deadline) or a typed
//! [`SwapError`]. [`SwapSession::apply`] folds an event into the session, so
//! replaying a session's events rebuilds it bit for bit.
//! [`SwapSession::step`] does both.
//!
//! The happy path: checks → an empty slot opens → the old battery is inserted
//! and verified → the best full battery (highest SOC of an allowed model; the
//! rider keeps their own when none is better) is dispensed → taken →
//! completed → the package entitlement is consumed or the wallet hold
//! captured → revenue split. Every failure path ends in a defined outcome:
//! see docs/flows.md for the table.
//!
//! Guarantees (checked by the property tests):
//! - money is charged at most once per order (one `ConsumeEntitlement` or
//!   `CaptureHold`), never for a failed swap (only an operator's
//!   force-complete may charge a session that did not observe the taking);
//! - every physical battery movement reported on the session's slots becomes
//!   a [`SwapEffect::CustodyMove`], so custody follows the cabinet;
//! - duplicated, reordered and late device messages are absorbed;
//! - once its deadlines pass (with ticks), every session is finished.
//!
//! ```
//! use chargeswap_core::cabinet::*;
//! use chargeswap_core::custody::{CabinetId, RiderId};
//! use chargeswap_core::numbering::DeviceNo;
//! use chargeswap_core::swap::*;
//! use chrono::{TimeZone, Utc};
//!
//! let now = Utc.with_ymd_and_hms(2025, 3, 1, 8, 0, 0).unwrap();
//! let own = DeviceNo::new(200_001)?;
//! let full = DeviceNo::new(200_002)?;
//! let cab = CabinetId(20_001);
//! let bms = |soc| Some(BmsSummary { soc, temp_dc: 250, faults: 0 });
//! let request = SwapRequest {
//!     order: 1,
//!     rider: RiderId(7),
//!     cabinet: CabinetSnapshot { cabinet: cab, online: true, busy_with: None, slots: vec![
//!         SlotSnapshot { slot: 1, state: SlotState::Empty },
//!         SlotSnapshot { slot: 2, state: SlotState::Battery { battery: Some(full), model: "48V20Ah".into(), bms: bms(98) } },
//!     ]},
//!     rider_facts: RiderFacts { verified: true, deposit_paid: true, battery: Some(own), allowed_models: vec!["48V20Ah".into()] },
//!     payment: Payment::Package { package: "pkg-42".into(), unit_value: "3.00".parse()? },
//!     policy: SwapPolicy::default(),
//! };
//! let mut s = SwapSession::new();
//! let d = s.step(&SwapInput::Start(Box::new(request)), now)?;
//! assert!(d.effects.contains(&SwapEffect::OpenDoor { cabinet: cab, slot: 1 }));
//! let dev = |event| SwapInput::Device(CabinetEvent { cabinet: cab, seq: None, event });
//! let d = s.step(&dev(DeviceEvent::BatteryInserted { slot: 1, battery: Some(own), bms: bms(12) }), now)?;
//! assert!(d.effects.contains(&SwapEffect::OpenDoor { cabinet: cab, slot: 2 }));
//! let d = s.step(&dev(DeviceEvent::BatteryRemoved { slot: 2, battery: Some(full) }), now)?;
//! assert!(d.effects.contains(&SwapEffect::ConsumeEntitlement { order: 1, package: "pkg-42".into() }));
//! assert_eq!(s.outcome(), Some(&Outcome::Swapped { waived: false }));
//! // A duplicated message changes nothing.
//! let d = s.step(&dev(DeviceEvent::BatteryRemoved { slot: 2, battery: Some(full) }), now)?;
//! assert!(d.events.is_empty() && d.effects.is_empty());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::cabinet::{BmsSummary, CabinetEvent, CabinetSnapshot};
use crate::custody::{CabinetId, Cause, MoveRequest, RiderId, SlotNo, Timestamp};
use crate::door::{
    DoorAlert, DoorCtx, DoorEffect, DoorEvent, DoorOp, DoorOutcome, DoorSink, Doors, after,
    empty_slots, full_batteries,
};
use crate::money::Money;
use crate::numbering::DeviceNo;

pub use crate::door::{Candidate, LockReason, Quarantine};

/// Timeouts and thresholds of a swap session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwapPolicy {
    /// Seconds the rider has to insert the old battery once its door is commanded open.
    pub return_timeout_s: u32,
    /// Seconds the rider has to take a battery out of an opened door.
    pub take_timeout_s: u32,
    /// Seconds a door may stay open after the session ends before an alert.
    pub door_close_timeout_s: u32,
    /// The lowest SOC (percent) at which a battery counts as full.
    pub min_full_soc: u8,
    /// The highest temperature (°C) accepted for a returned battery.
    pub max_temperature_c: i16,
    /// How many other slots to try after a door fails to open (per door role).
    pub door_retries: u8,
}

impl Default for SwapPolicy {
    /// 90 s to return, 60 s to take, 120 s to close, full from 90 %, 60 °C, one retry.
    fn default() -> Self {
        SwapPolicy {
            return_timeout_s: 90,
            take_timeout_s: 60,
            door_close_timeout_s: 120,
            min_full_soc: 90,
            max_temperature_c: 60,
            door_retries: 1,
        }
    }
}

/// What the platform knows about the rider when they scan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RiderFacts {
    /// The account is active and real-name verified.
    pub verified: bool,
    /// A deposit is paid or waived against a credit line.
    pub deposit_paid: bool,
    /// The battery bound to the rider (custody says the rider holds it).
    pub battery: Option<DeviceNo>,
    /// Battery models the rider's package and bike allow.
    pub allowed_models: Vec<String>,
}

/// How the swap is paid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Payment {
    /// One entitlement of an active package (consumed once, by order id).
    Package {
        /// The rider's package.
        package: Arc<str>,
        /// The revenue one swap of this package recognises (for the split).
        unit_value: Money,
    },
    /// Pay per swap from the wallet: a hold at start, captured at completion.
    Wallet {
        /// The price of one swap.
        price: Money,
        /// The wallet balance available for a hold.
        available: Money,
    },
    /// Neither an active package nor a wallet.
    None,
}

/// Everything the machine needs to start a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwapRequest {
    /// The swap order (also the idempotency key of its money and custody effects).
    pub order: u64,
    /// The rider who scanned.
    pub rider: RiderId,
    /// The cabinet as last seen.
    pub cabinet: CabinetSnapshot,
    /// The rider's checks.
    pub rider_facts: RiderFacts,
    /// How it is paid.
    pub payment: Payment,
    /// Timeouts and thresholds.
    pub policy: SwapPolicy,
}

/// Why a session was refused, failed or ended without a swap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The cabinet is offline.
    CabinetOffline,
    /// Another session runs at the cabinet.
    CabinetBusy,
    /// The rider's account is not active or not verified.
    RiderNotVerified,
    /// No deposit paid or waived.
    NoDeposit,
    /// The rider holds no battery to swap.
    NoBatteryBound,
    /// No active package and no wallet.
    NoEntitlement,
    /// The wallet cannot cover the price.
    InsufficientBalance,
    /// The wallet hold was refused by the ledger.
    HoldRejected,
    /// No empty slot with a working door.
    NoEmptySlot,
    /// No full battery of an allowed model.
    NoFullBattery,
    /// The empty slot's door (and any retry) failed to open.
    EmptyDoorFailed,
    /// The old battery was not inserted in time.
    ReturnTimeout,
    /// The inserted battery's number could not be read.
    BatteryNotRecognised,
    /// The inserted battery is not the rider's.
    BatteryNotRiders,
    /// The full battery's door (and any retry) failed to open.
    FullDoorFailed,
    /// The full battery was not taken, even after reopening once.
    NotTaken,
    /// No full battery is better than the rider's own.
    NoBetterBattery,
    /// The rider cancelled.
    CancelledByRider,
    /// The rider did not take their own battery back.
    OwnNotCollected,
}

/// How a session ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Refused at the checks; nothing happened.
    Rejected {
        /// Why.
        reason: Reason,
    },
    /// The rider left with a full battery. `waived` when the returned battery
    /// was quarantined (faulty or hot): the swap is then free.
    Swapped {
        /// True when the charge was waived.
        waived: bool,
    },
    /// No full battery was better than the rider's own, and the rider took
    /// their own back; not charged.
    KeptOwn {
        /// Why.
        reason: Reason,
    },
    /// The session failed; not charged.
    Failed {
        /// Why.
        reason: Reason,
    },
    /// An operator closed the session.
    ForceCompleted {
        /// Whether the operator charged it.
        charged: bool,
    },
}

/// Where the session's money stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Settlement {
    /// Nothing settled yet (a wallet hold may be in place).
    Pending,
    /// Entitlement consumed or hold captured.
    Charged,
    /// Not charged (any hold released).
    NotCharged,
    /// Charged, then refunded by an operator.
    Refunded,
}

/// Where the session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Not started.
    Idle,
    /// The empty slot's door is commanded open; waiting for the old battery.
    AwaitingReturn {
        /// The empty slot.
        slot: SlotNo,
    },
    /// The inserted battery was refused; its door reopened so the rider takes it back.
    Ejecting {
        /// The slot.
        slot: SlotNo,
        /// Why it was refused.
        reason: Reason,
    },
    /// A full battery's door is commanded open; waiting for it to be taken.
    Dispensing {
        /// The full battery's slot.
        slot: SlotNo,
        /// The battery.
        battery: DeviceNo,
        /// Whether the door was already reopened once.
        reopened: bool,
    },
    /// The rider's own battery's door reopened so they take it back.
    ReturningOwn {
        /// The slot.
        slot: SlotNo,
        /// Why.
        reason: Reason,
    },
    /// Finished.
    Done,
}

/// What the host is told to tell the rider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Notice {
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
        /// Why.
        reason: Reason,
    },
    /// The session ended.
    Ended {
        /// How.
        outcome: Outcome,
    },
}

/// What the host is told to raise to operations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Alert {
    /// A door did not open.
    DoorFailed {
        /// The slot.
        slot: SlotNo,
    },
    /// A full battery was not taken after a reopen; its slot is locked.
    BatteryNotTaken {
        /// The slot.
        slot: SlotNo,
    },
    /// A refused battery was left in the cabinet; its slot is locked.
    ForeignBatteryRetained {
        /// The slot.
        slot: SlotNo,
    },
    /// A returned battery was quarantined.
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
    /// The rider was left without a battery (their own is in the cabinet).
    RiderWithoutBattery {
        /// The slot holding the rider's battery.
        slot: SlotNo,
    },
}

impl From<DoorAlert> for Alert {
    fn from(a: DoorAlert) -> Alert {
        match a {
            DoorAlert::DoorFailed { slot } => Alert::DoorFailed { slot },
            DoorAlert::BatteryNotTaken { slot } => Alert::BatteryNotTaken { slot },
            DoorAlert::ForeignBatteryRetained { slot } => Alert::ForeignBatteryRetained { slot },
            DoorAlert::BatteryQuarantined {
                slot,
                battery,
                reason,
            } => Alert::BatteryQuarantined {
                slot,
                battery,
                reason,
            },
            DoorAlert::DoorLeftOpen { slots } => Alert::DoorLeftOpen { slots },
            DoorAlert::UnexpectedBatteryEvent { slot } => Alert::UnexpectedBatteryEvent { slot },
        }
    }
}

/// Work for the host, in order. If a money effect fails (a hold is refused),
/// the host stops carrying out the rest and feeds [`SwapInput::HoldRejected`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SwapEffect {
    /// Place a wallet hold for the price (idempotent by order).
    PlaceHold {
        /// The order.
        order: u64,
        /// The amount.
        amount: Money,
    },
    /// Capture the wallet hold (idempotent by order).
    CaptureHold {
        /// The order.
        order: u64,
        /// The amount.
        amount: Money,
    },
    /// Charge the wallet directly (an operator force-complete after the hold was released).
    ChargeWallet {
        /// The order.
        order: u64,
        /// The amount.
        amount: Money,
    },
    /// Release the wallet hold.
    ReleaseHold {
        /// The order.
        order: u64,
    },
    /// Consume one entitlement of the package (idempotent by order).
    ConsumeEntitlement {
        /// The order.
        order: u64,
        /// The package.
        package: Arc<str>,
    },
    /// Give the entitlement back (operator refund).
    RefundEntitlement {
        /// The order.
        order: u64,
        /// The package.
        package: Arc<str>,
    },
    /// Refund the captured amount to the wallet (operator refund).
    RefundPayment {
        /// The order.
        order: u64,
        /// The amount.
        amount: Money,
    },
    /// Split the order's revenue between the platform and the agents.
    SplitRevenue {
        /// The order.
        order: u64,
        /// The amount to split.
        amount: Money,
    },
    /// Reverse the order's revenue split (operator refund).
    ReverseRevenue {
        /// The order.
        order: u64,
    },
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
    /// Tell the rider.
    NotifyRider {
        /// The rider.
        rider: RiderId,
        /// The order.
        order: u64,
        /// What.
        notice: Notice,
    },
    /// Raise an alert to operations.
    RaiseAlert {
        /// The cabinet.
        cabinet: CabinetId,
        /// The order.
        order: u64,
        /// What.
        alert: Alert,
    },
}

/// What a session starts with (boxed in [`SwapEvent::Started`] so that the
/// other events stay small).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Started {
    /// The order.
    pub order: u64,
    /// The rider.
    pub rider: RiderId,
    /// The cabinet.
    pub cabinet: CabinetId,
    /// The rider's battery.
    pub rider_battery: DeviceNo,
    /// How it is paid.
    pub payment: Payment,
    /// Timeouts and thresholds.
    pub policy: SwapPolicy,
    /// Usable empty slots, in the order they will be tried (at most
    /// `door_retries + 1`).
    pub empties: Vec<SlotNo>,
    /// Full batteries of allowed models, best first (at most
    /// `door_retries + 1`: no more can be tried).
    pub candidates: Vec<Candidate>,
    /// When it started.
    pub at: Timestamp,
}

/// A fact of the session's history. Applying a session's events in order
/// rebuilds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SwapEvent {
    /// The checks passed and the session started.
    Started(Box<Started>),
    /// The checks failed: the session ends before anything happens.
    Rejected {
        /// The order.
        order: u64,
        /// The rider.
        rider: RiderId,
        /// The cabinet.
        cabinet: CabinetId,
        /// Why.
        reason: Reason,
        /// When.
        at: Timestamp,
    },
    /// An empty slot's door was commanded open for the old battery.
    ReturnSlotOpened {
        /// The slot.
        slot: SlotNo,
        /// Until when the rider has to insert.
        deadline: Timestamp,
    },
    /// A door report on a session slot.
    DoorReported {
        /// The slot.
        slot: SlotNo,
        /// Open (true) or closed (false).
        open: bool,
    },
    /// A slot was locked.
    SlotLocked {
        /// The slot.
        slot: SlotNo,
        /// Why.
        reason: LockReason,
    },
    /// A battery went into a session slot.
    BatteryIn {
        /// The slot.
        slot: SlotNo,
        /// The battery, if readable.
        battery: Option<DeviceNo>,
    },
    /// A battery came out of a session slot.
    BatteryOut {
        /// The slot.
        slot: SlotNo,
        /// Whether a custody move went with it (false when the battery had
        /// already been seen in another slot).
        custody: bool,
    },
    /// The old battery was verified as the rider's.
    OldBatteryAccepted {
        /// Its SOC.
        soc: u8,
        /// Set when it was quarantined (the swap is then free).
        quarantine: Option<Quarantine>,
    },
    /// The inserted battery was refused and its door reopened.
    OldBatteryRefused {
        /// The slot.
        slot: SlotNo,
        /// Why.
        reason: Reason,
        /// Until when the rider has to take it back.
        deadline: Timestamp,
    },
    /// A full battery's door was commanded open.
    Dispensing {
        /// The slot.
        slot: SlotNo,
        /// The battery.
        battery: DeviceNo,
        /// Until when the rider has to take it.
        deadline: Timestamp,
    },
    /// The full battery's door was reopened once.
    DispenseReopened {
        /// New deadline.
        deadline: Timestamp,
    },
    /// The own battery's door was reopened so the rider takes it back.
    ReturningOwn {
        /// The slot.
        slot: SlotNo,
        /// Why.
        reason: Reason,
        /// Until when.
        deadline: Timestamp,
    },
    /// The wallet hold was placed (effect emitted).
    HoldPlaced,
    /// The session ended.
    Finished {
        /// How.
        outcome: Outcome,
        /// Where the money stands now.
        settlement: Settlement,
        /// When open doors must be closed by, if any is open.
        door_watch: Option<Timestamp>,
        /// When.
        at: Timestamp,
    },
    /// An operator resent the current door command.
    OperatorReopened {
        /// Who.
        operator: String,
        /// Why.
        reason: String,
        /// New deadline.
        deadline: Timestamp,
    },
    /// An operator force-completed the session.
    ForceCompleted {
        /// Who.
        operator: String,
        /// Why.
        reason: String,
        /// Whether it was charged.
        charged: bool,
        /// When.
        at: Timestamp,
    },
    /// An operator refunded the session.
    Refunded {
        /// Who.
        operator: String,
        /// Why.
        reason: String,
        /// When.
        at: Timestamp,
    },
    /// The door watch ended (all doors closed, or an alert was raised).
    DoorWatchEnded,
    /// The newest cabinet message sequence number seen for a session
    /// slot's door (or its battery).
    SlotSeq {
        /// The slot.
        slot: SlotNo,
        /// The sequence number.
        seq: u64,
        /// True for door reports, false for battery reports.
        door: bool,
    },
    /// A door of the finished session opened again: watch it.
    DoorWatchStarted {
        /// When it must be closed by.
        until: Timestamp,
    },
}

/// What drives the machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SwapInput {
    /// The rider scanned; start the session.
    Start(Box<SwapRequest>),
    /// A cabinet reported something.
    Device(CabinetEvent),
    /// The rider cancels (allowed until the old battery is in).
    Cancel {
        /// The rider (must be the session's).
        rider: RiderId,
    },
    /// The host could not place the wallet hold.
    HoldRejected,
    /// Time passed; act on any deadline that is due.
    Tick,
    /// An operator resends the current door command (retry).
    OperatorReopen {
        /// Who.
        operator: String,
        /// Why.
        reason: String,
    },
    /// An operator ends the session, charging it or not.
    ForceComplete {
        /// Who.
        operator: String,
        /// Why.
        reason: String,
        /// Charge the swap (the operator confirmed the rider got a battery).
        charge: bool,
    },
    /// An operator refunds a charged session.
    Refund {
        /// Who.
        operator: String,
        /// Why.
        reason: String,
    },
}

/// The machine's answer to one input.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// Facts to apply, in order.
    pub events: Vec<SwapEvent>,
    /// Work for the host, in order.
    pub effects: Vec<SwapEffect>,
    /// When to feed the next [`SwapInput::Tick`], if anything is pending.
    pub next_deadline: Option<Timestamp>,
}

/// Errors of the swap machine. An error changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SwapError {
    /// A start for a session that already runs another order.
    #[error("this session already runs order {order}; start order {requested} in a new session")]
    AlreadyStarted {
        /// The running order.
        order: u64,
        /// The requested order.
        requested: u64,
    },
    /// A command for a session that has not started.
    #[error("the session has not started: send start first")]
    NotStarted,
    /// A device event from another cabinet.
    #[error("device event from cabinet {got}, but this session runs at cabinet {expected}")]
    WrongCabinet {
        /// The session's cabinet.
        expected: u64,
        /// The reporting cabinet.
        got: u64,
    },
    /// A command from another rider.
    #[error("rider {got} cannot act on a session of rider {expected}")]
    WrongRider {
        /// The session's rider.
        expected: u64,
        /// The commanding rider.
        got: u64,
    },
    /// The command is not allowed in this phase.
    #[error("{command} is not allowed while the session is {phase}")]
    NotAllowed {
        /// The command.
        command: String,
        /// The phase.
        phase: String,
    },
    /// A start request that cannot be used.
    #[error("invalid swap request: {field} {expected}")]
    InvalidRequest {
        /// The offending field.
        field: String,
        /// What was expected.
        expected: String,
    },
}

/// One swap session: the fold of its events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwapSession {
    order: u64,
    rider: RiderId,
    cabinet: CabinetId,
    rider_battery: Option<DeviceNo>,
    payment: Payment,
    policy: SwapPolicy,
    empties: Vec<SlotNo>,
    candidates: Vec<Candidate>,
    phase: Phase,
    /// The doors and slots the session used, the door operation in
    /// progress (its deadline is the session's) and the door watch.
    doors: Doors,
    return_slot: Option<SlotNo>,
    old_soc: Option<u8>,
    quarantine: Option<Quarantine>,
    empty_tries: u8,
    full_tries: u8,
    hold: bool,
    settlement: Settlement,
    outcome: Option<Outcome>,
    custody_seq: u32,
    started_at: Option<Timestamp>,
    ended_at: Option<Timestamp>,
}

impl Default for SwapSession {
    fn default() -> Self {
        SwapSession::new()
    }
}

fn phase_name(p: &Phase) -> &'static str {
    match p {
        Phase::Idle => "idle",
        Phase::AwaitingReturn { .. } => "awaiting_return",
        Phase::Ejecting { .. } => "ejecting",
        Phase::Dispensing { .. } => "dispensing",
        Phase::ReturningOwn { .. } => "returning_own",
        Phase::Done => "done",
    }
}

/// Collects a decision.
struct Out {
    events: Vec<SwapEvent>,
    effects: Vec<SwapEffect>,
    deadline: Option<Option<Timestamp>>,
    custody_seq: u32,
    cabinet: CabinetId,
    order: u64,
}

/// The door rules write straight into the swap decision, under the swap's
/// own (historical) event and effect names.
impl DoorSink for Out {
    #[inline(always)]
    fn event(&mut self, e: DoorEvent) {
        let e = match e {
            DoorEvent::Reported { slot, open } => SwapEvent::DoorReported { slot, open },
            DoorEvent::Seq { slot, seq, door } => SwapEvent::SlotSeq { slot, seq, door },
            DoorEvent::Locked { slot, reason } => SwapEvent::SlotLocked { slot, reason },
            DoorEvent::BatteryIn { slot, battery } => SwapEvent::BatteryIn { slot, battery },
            DoorEvent::BatteryOut { slot, custody } => SwapEvent::BatteryOut { slot, custody },
            // only a dispensing door reopens by itself
            DoorEvent::Reopened { deadline } => SwapEvent::DispenseReopened { deadline },
            DoorEvent::WatchStarted { until } => SwapEvent::DoorWatchStarted { until },
            DoorEvent::WatchEnded => SwapEvent::DoorWatchEnded,
            // Operations start and end with the swap's own events
            // (`ReturnSlotOpened`, `Dispensing`, `Finished`, ...); the door
            // rules never emit these.
            DoorEvent::Opened { .. }
            | DoorEvent::Rearmed { .. }
            | DoorEvent::Done
            | DoorEvent::Ended { .. } => return,
        };
        self.events.push(e);
    }
    #[inline(always)]
    fn effect(&mut self, e: DoorEffect) {
        self.effects.push(match e {
            DoorEffect::OpenDoor { cabinet, slot } => SwapEffect::OpenDoor { cabinet, slot },
            DoorEffect::LockSlot {
                cabinet,
                slot,
                reason,
            } => SwapEffect::LockSlot {
                cabinet,
                slot,
                reason,
            },
            DoorEffect::CustodyMove(m) => SwapEffect::CustodyMove(m),
            DoorEffect::Alert(a) => SwapEffect::RaiseAlert {
                cabinet: self.cabinet,
                order: self.order,
                alert: a.into(),
            },
        });
    }
    #[inline]
    fn next_move(&mut self) -> u32 {
        let n = self.custody_seq;
        self.custody_seq = n.saturating_add(1);
        n
    }
    #[inline]
    fn deadline(&mut self, deadline: Option<Timestamp>) {
        self.deadline = Some(deadline);
    }
}

impl SwapSession {
    /// A session that has not started.
    pub fn new() -> Self {
        SwapSession {
            order: 0,
            rider: RiderId(0),
            cabinet: CabinetId(0),
            rider_battery: None,
            payment: Payment::None,
            policy: SwapPolicy::default(),
            empties: Vec::new(),
            candidates: Vec::new(),
            phase: Phase::Idle,
            doors: Doors::new(),
            return_slot: None,
            old_soc: None,
            quarantine: None,
            empty_tries: 0,
            full_tries: 0,
            hold: false,
            settlement: Settlement::Pending,
            outcome: None,
            custody_seq: 0,
            started_at: None,
            ended_at: None,
        }
    }

    /// Rebuilds a session from its events.
    pub fn replay<'a, I: IntoIterator<Item = &'a SwapEvent>>(events: I) -> SwapSession {
        let mut s = SwapSession::new();
        for e in events {
            s.apply(e);
        }
        s
    }

    /// The order.
    pub fn order(&self) -> u64 {
        self.order
    }
    /// The rider.
    pub fn rider(&self) -> RiderId {
        self.rider
    }
    /// The cabinet.
    pub fn cabinet(&self) -> CabinetId {
        self.cabinet
    }
    /// Where the session is.
    pub fn phase(&self) -> &Phase {
        &self.phase
    }
    /// How it ended, once it has.
    pub fn outcome(&self) -> Option<&Outcome> {
        self.outcome.as_ref()
    }
    /// Where its money stands.
    pub fn settlement(&self) -> Settlement {
        self.settlement
    }
    /// When it started, if it did.
    pub fn started_at(&self) -> Option<Timestamp> {
        self.started_at
    }
    /// When it ended, if it did.
    pub fn ended_at(&self) -> Option<Timestamp> {
        self.ended_at
    }
    /// The next time a [`SwapInput::Tick`] has something to do.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        self.doors.next_deadline()
    }
    /// Ended, with no deadline left (no door watch pending).
    pub fn is_finished(&self) -> bool {
        self.phase == Phase::Done && self.doors.watch().is_none()
    }
    /// The amount this session charges when it completes (price or unit value).
    pub fn amount(&self) -> Option<Money> {
        match &self.payment {
            Payment::Package { unit_value, .. } => Some(*unit_value),
            Payment::Wallet { price, .. } => Some(*price),
            Payment::None => None,
        }
    }

    /// The battery the session believes is in a slot of its own:
    /// `None` when the slot is not one of the session's or is empty.
    pub fn slot_content(&self, slot: SlotNo) -> Option<Option<DeviceNo>> {
        self.doors.content(slot)
    }

    /// The doors and slots the session used.
    pub fn doors(&self) -> &Doors {
        &self.doors
    }

    /// Compact binary snapshot (postcard).
    pub fn to_snapshot(&self) -> Result<Vec<u8>, SwapError> {
        postcard::to_allocvec(self).map_err(|e| SwapError::InvalidRequest {
            field: "snapshot".into(),
            expected: format!("a serializable session: {e}"),
        })
    }

    /// Reads a snapshot written by [`SwapSession::to_snapshot`].
    pub fn from_snapshot(bytes: &[u8]) -> Result<SwapSession, SwapError> {
        postcard::from_bytes(bytes).map_err(|e| SwapError::InvalidRequest {
            field: "snapshot".into(),
            expected: format!("bytes written by to_snapshot: {e}"),
        })
    }

    /// Handles then applies one input; returns the decision.
    pub fn step(&mut self, input: &SwapInput, now: Timestamp) -> Result<Decision, SwapError> {
        let d = self.handle(input, now)?;
        for e in &d.events {
            self.apply(e);
        }
        Ok(d)
    }

    /// Decides what one input means, without changing the session.
    pub fn handle(&self, input: &SwapInput, now: Timestamp) -> Result<Decision, SwapError> {
        let mut out = Out {
            events: Vec::with_capacity(4),
            effects: Vec::with_capacity(4),
            deadline: None,
            custody_seq: self.custody_seq,
            cabinet: self.cabinet,
            order: self.order,
        };
        match input {
            SwapInput::Start(req) => self.on_start(req, now, &mut out)?,
            SwapInput::Device(ev) => self.on_device(ev, now, &mut out)?,
            SwapInput::Cancel { rider } => self.on_cancel(*rider, now, &mut out)?,
            SwapInput::HoldRejected => self.on_hold_rejected(now, &mut out)?,
            SwapInput::Tick => self.on_tick(now, &mut out)?,
            SwapInput::OperatorReopen { operator, reason } => {
                self.on_reopen(operator.clone(), reason.clone(), now, &mut out)?
            }
            SwapInput::ForceComplete {
                operator,
                reason,
                charge,
            } => self.on_force(operator.clone(), reason.clone(), *charge, now, &mut out)?,
            SwapInput::Refund { operator, reason } => {
                self.on_refund(operator.clone(), reason.clone(), now, &mut out)?
            }
        }
        let next_deadline = match out.deadline {
            Some(d) => d,
            None => self.next_deadline(),
        };
        Ok(Decision {
            events: out.events,
            effects: out.effects,
            next_deadline,
        })
    }

    /// Folds one event into the session. Total: never fails, never panics.
    pub fn apply(&mut self, e: &SwapEvent) {
        let take = self.policy.take_timeout_s;
        match e {
            SwapEvent::Started(st) => {
                self.order = st.order;
                self.rider = st.rider;
                self.cabinet = st.cabinet;
                self.rider_battery = Some(st.rider_battery);
                self.payment = st.payment.clone();
                self.policy = st.policy.clone();
                self.empties.clone_from(&st.empties);
                self.candidates.clone_from(&st.candidates);
                self.started_at = Some(st.at);
                self.settlement = Settlement::Pending;
                self.doors = Doors::new();
            }
            SwapEvent::Rejected {
                order,
                rider,
                cabinet,
                reason,
                at,
            } => {
                self.order = *order;
                self.rider = *rider;
                self.cabinet = *cabinet;
                self.phase = Phase::Done;
                self.outcome = Some(Outcome::Rejected { reason: *reason });
                self.settlement = Settlement::NotCharged;
                self.started_at = Some(*at);
                self.ended_at = Some(*at);
            }
            SwapEvent::ReturnSlotOpened { slot, deadline } => {
                self.phase = Phase::AwaitingReturn { slot: *slot };
                self.return_slot = Some(*slot);
                self.empty_tries = self.empty_tries.saturating_add(1);
                let op = DoorOp::put(*slot, self.policy.return_timeout_s, *deadline);
                self.doors.begin(op);
            }
            SwapEvent::DoorReported { slot, open } => self.doors.set_open(*slot, *open),
            SwapEvent::SlotLocked { slot, .. } => self.doors.set_locked(*slot),
            SwapEvent::BatteryIn { slot, battery } => {
                if battery.is_some() {
                    self.custody_seq = self.custody_seq.saturating_add(1);
                }
                self.doors.set_content(*slot, Some(*battery));
            }
            SwapEvent::BatteryOut { slot, custody } => {
                if *custody {
                    self.custody_seq = self.custody_seq.saturating_add(1);
                }
                self.doors.set_content(*slot, None);
            }
            SwapEvent::OldBatteryAccepted { soc, quarantine } => {
                self.old_soc = Some(*soc);
                self.quarantine = *quarantine;
            }
            SwapEvent::OldBatteryRefused {
                slot,
                reason,
                deadline,
            } => {
                self.phase = Phase::Ejecting {
                    slot: *slot,
                    reason: *reason,
                };
                // Not taken back (or its door fails): the refused battery
                // stays, locked.
                let op = DoorOp::take(*slot, self.doors.content(*slot).flatten(), take, *deadline)
                    .locking_on_fail(LockReason::ForeignBattery)
                    .locking_if_left(LockReason::ForeignBattery);
                self.doors.begin(op);
            }
            SwapEvent::Dispensing {
                slot,
                battery,
                deadline,
            } => {
                self.phase = Phase::Dispensing {
                    slot: *slot,
                    battery: *battery,
                    reopened: false,
                };
                self.full_tries = self.full_tries.saturating_add(1);
                let op = DoorOp::take(*slot, Some(*battery), take, *deadline)
                    .reopening_once()
                    .locking_if_left(LockReason::NotTaken);
                self.doors.begin(op);
            }
            SwapEvent::DispenseReopened { deadline } => {
                if let Phase::Dispensing { reopened, .. } = &mut self.phase {
                    *reopened = true;
                }
                self.doors.reopen(*deadline, true);
            }
            SwapEvent::ReturningOwn {
                slot,
                reason,
                deadline,
            } => {
                self.phase = Phase::ReturningOwn {
                    slot: *slot,
                    reason: *reason,
                };
                let op = DoorOp::take(*slot, self.doors.content(*slot).flatten(), take, *deadline);
                self.doors.begin(op);
            }
            SwapEvent::HoldPlaced => self.hold = true,
            SwapEvent::Finished {
                outcome,
                settlement,
                door_watch,
                at,
            } => {
                self.phase = Phase::Done;
                self.outcome = Some(outcome.clone());
                self.settlement = *settlement;
                self.doors.end(*door_watch);
                self.ended_at = Some(*at);
                if *settlement != Settlement::Pending {
                    self.hold = false;
                }
            }
            SwapEvent::OperatorReopened { deadline, .. } => {
                if let Phase::Dispensing { reopened, .. } = &mut self.phase {
                    *reopened = false;
                }
                self.doors.reopen(*deadline, false);
            }
            SwapEvent::ForceCompleted { charged, at, .. } => {
                self.phase = Phase::Done;
                self.outcome = Some(Outcome::ForceCompleted { charged: *charged });
                self.settlement = if *charged {
                    Settlement::Charged
                } else {
                    Settlement::NotCharged
                };
                self.hold = false;
                // ends the door operation; a door watch keeps running
                self.doors.end(None);
                if self.ended_at.is_none() {
                    self.ended_at = Some(*at);
                }
            }
            SwapEvent::Refunded { .. } => self.settlement = Settlement::Refunded,
            SwapEvent::DoorWatchEnded => self.doors.set_watch(None),
            SwapEvent::SlotSeq { slot, seq, door } => self.doors.set_seq(*slot, *seq, *door),
            SwapEvent::DoorWatchStarted { until } => self.doors.set_watch(Some(*until)),
        }
    }

    // ----- decisions -------------------------------------------------------

    /// Who the door rules act for.
    #[inline]
    fn ctx(&self) -> DoorCtx {
        DoorCtx {
            cabinet: self.cabinet,
            order: self.order,
            rider: self.rider,
            rider_battery: self.rider_battery,
            cause: Cause::Swap { order: self.order },
            close_timeout_s: self.policy.door_close_timeout_s,
        }
    }

    fn notify(&self, out: &mut Out, notice: Notice) {
        out.effects.push(SwapEffect::NotifyRider {
            rider: self.rider,
            order: self.order,
            notice,
        });
    }

    fn alert(&self, out: &mut Out, alert: Alert) {
        out.effects.push(SwapEffect::RaiseAlert {
            cabinet: self.cabinet,
            order: self.order,
            alert,
        });
    }

    fn open(&self, out: &mut Out, slot: SlotNo) {
        out.effects.push(SwapEffect::OpenDoor {
            cabinet: self.cabinet,
            slot,
        });
    }
    /// Whether any session door is open once this decision's door reports apply.
    fn doors_open_after(&self, out: &Out) -> bool {
        self.doors.open_after(|slot| {
            out.events.iter().rev().find_map(|e| match e {
                SwapEvent::DoorReported { slot: s, open } if *s == slot => Some(*open),
                _ => None,
            })
        })
    }

    /// Ends the session: outcome, settlement effects, rider notice.
    fn finish(&self, out: &mut Out, outcome: Outcome, now: Timestamp) {
        let charge = matches!(outcome, Outcome::Swapped { waived: false });
        let mut settlement = Settlement::NotCharged;
        if charge {
            settlement = Settlement::Charged;
            match &self.payment {
                Payment::Package {
                    package,
                    unit_value,
                } => {
                    out.effects.push(SwapEffect::ConsumeEntitlement {
                        order: self.order,
                        package: package.clone(),
                    });
                    out.effects.push(SwapEffect::SplitRevenue {
                        order: self.order,
                        amount: *unit_value,
                    });
                }
                Payment::Wallet { price, .. } => {
                    out.effects.push(SwapEffect::CaptureHold {
                        order: self.order,
                        amount: *price,
                    });
                    out.effects.push(SwapEffect::SplitRevenue {
                        order: self.order,
                        amount: *price,
                    });
                }
                Payment::None => settlement = Settlement::NotCharged,
            }
        } else if self.hold {
            out.effects
                .push(SwapEffect::ReleaseHold { order: self.order });
        }
        let door_watch = self
            .doors_open_after(out)
            .then(|| after(now, self.policy.door_close_timeout_s));
        out.events.push(SwapEvent::Finished {
            outcome: outcome.clone(),
            settlement,
            door_watch,
            at: now,
        });
        out.deadline = Some(door_watch);
        self.notify(out, Notice::Ended { outcome });
    }

    fn on_start(&self, req: &SwapRequest, now: Timestamp, out: &mut Out) -> Result<(), SwapError> {
        if self.phase != Phase::Idle {
            if self.order == req.order {
                return Ok(()); // duplicated start
            }
            return Err(SwapError::AlreadyStarted {
                order: self.order,
                requested: req.order,
            });
        }
        validate(req)?;
        let snap = &req.cabinet;
        let facts = &req.rider_facts;
        let mut reason = None;
        if !snap.online {
            reason = Some(Reason::CabinetOffline);
        } else if snap.busy_with.is_some_and(|o| o != req.order) {
            reason = Some(Reason::CabinetBusy);
        } else if !facts.verified {
            reason = Some(Reason::RiderNotVerified);
        } else if !facts.deposit_paid {
            reason = Some(Reason::NoDeposit);
        } else if facts.battery.is_none() {
            reason = Some(Reason::NoBatteryBound);
        } else {
            match &req.payment {
                Payment::None => reason = Some(Reason::NoEntitlement),
                Payment::Wallet { price, available } => {
                    if available
                        .checked_cmp(price)
                        .map_err(|e| invalid("payment", &e))?
                        == core::cmp::Ordering::Less
                    {
                        reason = Some(Reason::InsufficientBalance);
                    }
                }
                Payment::Package { .. } => {}
            }
        }
        let mut empties = empty_slots(snap);
        let mut candidates = full_batteries(
            snap,
            &facts.allowed_models,
            req.policy.min_full_soc,
            req.policy.max_temperature_c,
            facts.battery,
        );
        // Only the first `door_retries + 1` of each can ever be tried.
        let tries = usize::from(req.policy.door_retries).saturating_add(1);
        candidates.truncate(tries);
        empties.truncate(tries);
        if reason.is_none() && empties.is_empty() {
            reason = Some(Reason::NoEmptySlot);
        }
        if reason.is_none() && candidates.is_empty() {
            reason = Some(Reason::NoFullBattery);
        }
        let (Some(rider_battery), Some(first), None) =
            (facts.battery, empties.first().copied(), reason)
        else {
            let reason = reason.unwrap_or(Reason::NoEmptySlot);
            out.events.push(SwapEvent::Rejected {
                order: req.order,
                rider: req.rider,
                cabinet: snap.cabinet,
                reason,
                at: now,
            });
            out.effects.push(SwapEffect::NotifyRider {
                rider: req.rider,
                order: req.order,
                notice: Notice::Ended {
                    outcome: Outcome::Rejected { reason },
                },
            });
            out.deadline = Some(None);
            return Ok(());
        };
        let deadline = after(now, req.policy.return_timeout_s);
        out.events.push(SwapEvent::Started(Box::new(Started {
            order: req.order,
            rider: req.rider,
            cabinet: snap.cabinet,
            rider_battery,
            payment: req.payment.clone(),
            policy: req.policy.clone(),
            empties,
            candidates,
            at: now,
        })));
        if let Payment::Wallet { price, .. } = &req.payment {
            out.events.push(SwapEvent::HoldPlaced);
            out.effects.push(SwapEffect::PlaceHold {
                order: req.order,
                amount: *price,
            });
        }
        out.events.push(SwapEvent::ReturnSlotOpened {
            slot: first,
            deadline,
        });
        out.effects.push(SwapEffect::OpenDoor {
            cabinet: snap.cabinet,
            slot: first,
        });
        out.effects.push(SwapEffect::NotifyRider {
            rider: req.rider,
            order: req.order,
            notice: Notice::InsertBattery { slot: first },
        });
        out.deadline = Some(Some(deadline));
        Ok(())
    }
    fn on_device(&self, ev: &CabinetEvent, now: Timestamp, out: &mut Out) -> Result<(), SwapError> {
        if self.phase == Phase::Idle {
            return Err(SwapError::NotStarted);
        }
        if ev.cabinet != self.cabinet {
            return Err(SwapError::WrongCabinet {
                expected: self.cabinet.0,
                got: ev.cabinet.0,
            });
        }
        if matches!(self.outcome, Some(Outcome::Rejected { .. })) {
            return Ok(()); // nothing of this cabinet is ours
        }
        if let Some(o) = self.doors.on_device(ev, now, &self.ctx(), out) {
            self.on_door(o, now, out);
        }
        Ok(())
    }

    /// What a door outcome means in the current phase.
    fn on_door(&self, o: DoorOutcome, now: Timestamp, out: &mut Out) {
        match o {
            DoorOutcome::Inserted { slot, battery, bms } => {
                self.verify(slot, battery, bms, now, out)
            }
            DoorOutcome::Taken { slot } => self.on_taken(slot, now, out),
            DoorOutcome::OpenFailed { slot } => self.on_door_failed(slot, now, out),
            DoorOutcome::Reopened { slot, .. } => self.notify(out, Notice::TakeBattery { slot }),
            DoorOutcome::Expired { slot } => self.on_expired(slot, now, out),
        }
    }

    /// A door failed to open; the door rules locked its slot and alerted.
    fn on_door_failed(&self, slot: SlotNo, now: Timestamp, out: &mut Out) {
        match self.phase {
            Phase::AwaitingReturn { .. } => {
                let next = self
                    .empties
                    .iter()
                    .copied()
                    .find(|e| !self.doors.is_locked(*e) && *e != slot);
                match next {
                    Some(n) if self.empty_tries <= self.policy.door_retries => {
                        let deadline = after(now, self.policy.return_timeout_s);
                        out.events
                            .push(SwapEvent::ReturnSlotOpened { slot: n, deadline });
                        self.open(out, n);
                        self.notify(out, Notice::InsertBattery { slot: n });
                        out.deadline = Some(Some(deadline));
                    }
                    _ => self.finish(
                        out,
                        Outcome::Failed {
                            reason: Reason::EmptyDoorFailed,
                        },
                        now,
                    ),
                }
            }
            Phase::Dispensing { .. } => {
                if self.full_tries <= self.policy.door_retries
                    && self.dispense_next(out, Some(slot), now)
                {
                    return;
                }
                self.return_own(out, Reason::FullDoorFailed, now);
            }
            // the refused battery stays behind the failed door (locked as foreign)
            Phase::Ejecting { reason, .. } => self.finish(out, Outcome::Failed { reason }, now),
            Phase::ReturningOwn { reason, .. } => {
                self.alert(out, Alert::RiderWithoutBattery { slot });
                let outcome = if reason == Reason::NoBetterBattery {
                    Outcome::Failed {
                        reason: Reason::FullDoorFailed,
                    }
                } else {
                    Outcome::Failed { reason }
                };
                self.finish(out, outcome, now);
            }
            Phase::Idle | Phase::Done => {}
        }
    }

    /// The door operation's deadline passed (after any reopen), or a
    /// dispensing door closed on its battery after the reopen.
    fn on_expired(&self, slot: SlotNo, now: Timestamp, out: &mut Out) {
        match self.phase {
            Phase::AwaitingReturn { .. } => self.finish(
                out,
                Outcome::Failed {
                    reason: Reason::ReturnTimeout,
                },
                now,
            ),
            // locked as foreign by the door rules
            Phase::Ejecting { reason, .. } => self.finish(out, Outcome::Failed { reason }, now),
            // locked as not taken by the door rules
            Phase::Dispensing { .. } => {
                if let Some(own) = self.return_slot {
                    self.alert(out, Alert::RiderWithoutBattery { slot: own });
                }
                self.finish(
                    out,
                    Outcome::Failed {
                        reason: Reason::NotTaken,
                    },
                    now,
                );
            }
            Phase::ReturningOwn { reason, .. } => {
                self.alert(out, Alert::RiderWithoutBattery { slot });
                let outcome = Outcome::Failed {
                    reason: if reason == Reason::NoBetterBattery {
                        Reason::OwnNotCollected
                    } else {
                        reason
                    },
                };
                self.finish(out, outcome, now);
            }
            Phase::Idle | Phase::Done => {}
        }
    }

    /// The door operation's battery was taken (custody already followed).
    fn on_taken(&self, slot: SlotNo, now: Timestamp, out: &mut Out) {
        match self.phase {
            Phase::Dispensing { .. } => {
                let waived = self.quarantine.is_some();
                self.finish(out, Outcome::Swapped { waived }, now);
            }
            Phase::Ejecting { reason, .. } => self.finish(out, Outcome::Failed { reason }, now),
            Phase::ReturningOwn { reason, .. } => {
                let outcome = if reason == Reason::NoBetterBattery {
                    Outcome::KeptOwn { reason }
                } else {
                    Outcome::Failed { reason }
                };
                self.finish(out, outcome, now);
            }
            _ => self.alert(out, Alert::UnexpectedBatteryEvent { slot }),
        }
    }

    /// The old battery arrived in the return slot (custody already
    /// followed): verify it.
    fn verify(
        &self,
        slot: SlotNo,
        battery: Option<DeviceNo>,
        bms: Option<BmsSummary>,
        now: Timestamp,
        out: &mut Out,
    ) {
        let own = battery.is_some() && battery == self.rider_battery;
        let Some(b) = battery.filter(|_| own) else {
            let reason = if battery.is_none() {
                Reason::BatteryNotRecognised
            } else {
                Reason::BatteryNotRiders
            };
            let deadline = after(now, self.policy.take_timeout_s);
            out.events.push(SwapEvent::OldBatteryRefused {
                slot,
                reason,
                deadline,
            });
            self.open(out, slot);
            self.notify(out, Notice::TakeBackBattery { slot, reason });
            out.deadline = Some(Some(deadline));
            return;
        };
        let (soc, quarantine) = match &bms {
            Some(m) => (m.soc, Quarantine::of(m, self.policy.max_temperature_c)),
            None => (0, None),
        };
        out.events
            .push(SwapEvent::OldBatteryAccepted { soc, quarantine });
        if let Some(q) = quarantine {
            Doors::lock(&self.ctx(), slot, LockReason::Quarantine, out);
            self.alert(
                out,
                Alert::BatteryQuarantined {
                    slot,
                    battery: b,
                    reason: q,
                },
            );
        }
        if !self.dispense_next(out, None, now) {
            self.return_own(out, Reason::NoBetterBattery, now);
        }
    }

    /// Chooses the best untried candidate better than the old battery and
    /// commands its door. False when there is none.
    fn dispense_next(&self, out: &mut Out, failed: Option<SlotNo>, now: Timestamp) -> bool {
        let old = if self.quarantine.is_some() {
            None
        } else {
            self.old_soc_in(out)
        };
        let pick = self.candidates.iter().find(|c| {
            Some(c.slot) != failed && !self.doors.is_locked(c.slot) && old.is_none_or(|o| c.soc > o)
        });
        let Some(c) = pick.copied() else {
            return false;
        };
        let deadline = after(now, self.policy.take_timeout_s);
        out.events.push(SwapEvent::Dispensing {
            slot: c.slot,
            battery: c.battery,
            deadline,
        });
        self.open(out, c.slot);
        self.notify(out, Notice::TakeBattery { slot: c.slot });
        out.deadline = Some(Some(deadline));
        true
    }

    fn old_soc_in(&self, out: &Out) -> Option<u8> {
        out.events
            .iter()
            .find_map(|e| match e {
                SwapEvent::OldBatteryAccepted { soc, quarantine } => {
                    Some(if quarantine.is_some() {
                        None
                    } else {
                        Some(*soc)
                    })
                }
                _ => None,
            })
            .unwrap_or(self.old_soc)
    }

    fn return_own(&self, out: &mut Out, reason: Reason, now: Timestamp) {
        let Some(slot) = self.return_slot else {
            self.finish(out, Outcome::Failed { reason }, now);
            return;
        };
        let quarantined = self.quarantine.is_some()
            || out.events.iter().any(|e| {
                matches!(
                    e,
                    SwapEvent::OldBatteryAccepted {
                        quarantine: Some(_),
                        ..
                    }
                )
            });
        if quarantined {
            // A quarantined battery is never handed back.
            self.alert(out, Alert::RiderWithoutBattery { slot });
            self.finish(out, Outcome::Failed { reason }, now);
            return;
        }
        let deadline = after(now, self.policy.take_timeout_s);
        out.events.push(SwapEvent::ReturningOwn {
            slot,
            reason,
            deadline,
        });
        self.open(out, slot);
        self.notify(out, Notice::TakeBackBattery { slot, reason });
        out.deadline = Some(Some(deadline));
    }

    fn on_cancel(&self, rider: RiderId, now: Timestamp, out: &mut Out) -> Result<(), SwapError> {
        if self.phase == Phase::Idle {
            return Err(SwapError::NotStarted);
        }
        if rider != self.rider {
            return Err(SwapError::WrongRider {
                expected: self.rider.0,
                got: rider.0,
            });
        }
        match self.phase {
            Phase::AwaitingReturn { .. } => {
                self.finish(
                    out,
                    Outcome::Failed {
                        reason: Reason::CancelledByRider,
                    },
                    now,
                );
                Ok(())
            }
            Phase::Done
                if self.outcome
                    == Some(Outcome::Failed {
                        reason: Reason::CancelledByRider,
                    }) =>
            {
                Ok(()) // duplicated cancel
            }
            p => Err(SwapError::NotAllowed {
                command: "cancel".into(),
                phase: phase_name(&p).into(),
            }),
        }
    }

    fn on_hold_rejected(&self, now: Timestamp, out: &mut Out) -> Result<(), SwapError> {
        match self.phase {
            Phase::Idle => Err(SwapError::NotStarted),
            Phase::Done => Ok(()), // late: nothing was charged
            _ if !self.hold => Err(SwapError::NotAllowed {
                command: "hold_rejected".into(),
                phase: "a session without a wallet hold".into(),
            }),
            Phase::AwaitingReturn { .. } => {
                let mut o = Out {
                    events: Vec::new(),
                    effects: Vec::new(),
                    deadline: None,
                    custody_seq: out.custody_seq,
                    cabinet: out.cabinet,
                    order: out.order,
                };
                // No hold to release: finish, then drop the ReleaseHold effect.
                self.finish(
                    &mut o,
                    Outcome::Failed {
                        reason: Reason::HoldRejected,
                    },
                    now,
                );
                o.effects
                    .retain(|e| !matches!(e, SwapEffect::ReleaseHold { .. }));
                out.events.append(&mut o.events);
                out.effects.append(&mut o.effects);
                out.deadline = o.deadline;
                Ok(())
            }
            p => Err(SwapError::NotAllowed {
                command: "hold_rejected".into(),
                phase: phase_name(&p).into(),
            }),
        }
    }
    fn on_tick(&self, now: Timestamp, out: &mut Out) -> Result<(), SwapError> {
        if self.phase == Phase::Idle {
            return Err(SwapError::NotStarted);
        }
        if let Some(o) = self.doors.on_tick(now, &self.ctx(), out) {
            self.on_door(o, now, out);
        }
        Ok(())
    }

    fn on_reopen(
        &self,
        operator: String,
        reason: String,
        now: Timestamp,
        out: &mut Out,
    ) -> Result<(), SwapError> {
        let (slot, secs) = match self.phase {
            Phase::AwaitingReturn { slot } => (slot, self.policy.return_timeout_s),
            Phase::Ejecting { slot, .. }
            | Phase::Dispensing { slot, .. }
            | Phase::ReturningOwn { slot, .. } => (slot, self.policy.take_timeout_s),
            p => {
                return Err(SwapError::NotAllowed {
                    command: "operator_reopen".into(),
                    phase: phase_name(&p).into(),
                });
            }
        };
        let deadline = after(now, secs);
        out.events.push(SwapEvent::OperatorReopened {
            operator,
            reason,
            deadline,
        });
        self.open(out, slot);
        out.deadline = Some(Some(deadline));
        Ok(())
    }

    fn on_force(
        &self,
        operator: String,
        reason: String,
        charge: bool,
        now: Timestamp,
        out: &mut Out,
    ) -> Result<(), SwapError> {
        let not_allowed = |phase: &str| SwapError::NotAllowed {
            command: "force_complete".into(),
            phase: phase.into(),
        };
        match (self.phase, self.settlement, &self.outcome) {
            (Phase::Idle, ..) => return Err(SwapError::NotStarted),
            (_, _, Some(Outcome::Rejected { .. })) => return Err(not_allowed("rejected")),
            (_, _, Some(Outcome::ForceCompleted { charged })) if *charged == charge => {
                return Ok(()); // duplicate
            }
            (_, Settlement::Charged | Settlement::Refunded, _) => {
                return Err(not_allowed("already charged"));
            }
            _ => {}
        }
        if charge {
            let amount = self
                .amount()
                .ok_or_else(|| not_allowed("without payment"))?;
            match &self.payment {
                Payment::Package { package, .. } => {
                    out.effects.push(SwapEffect::ConsumeEntitlement {
                        order: self.order,
                        package: package.clone(),
                    })
                }
                Payment::Wallet { .. } if self.hold => out.effects.push(SwapEffect::CaptureHold {
                    order: self.order,
                    amount,
                }),
                Payment::Wallet { .. } => out.effects.push(SwapEffect::ChargeWallet {
                    order: self.order,
                    amount,
                }),
                Payment::None => {}
            }
            out.effects.push(SwapEffect::SplitRevenue {
                order: self.order,
                amount,
            });
        } else if self.hold {
            out.effects
                .push(SwapEffect::ReleaseHold { order: self.order });
        }
        out.events.push(SwapEvent::ForceCompleted {
            operator,
            reason,
            charged: charge,
            at: now,
        });
        self.notify(
            out,
            Notice::Ended {
                outcome: Outcome::ForceCompleted { charged: charge },
            },
        );
        out.deadline = Some(self.doors.watch());
        Ok(())
    }

    fn on_refund(
        &self,
        operator: String,
        reason: String,
        now: Timestamp,
        out: &mut Out,
    ) -> Result<(), SwapError> {
        match self.settlement {
            Settlement::Refunded => return Ok(()), // duplicate
            Settlement::Charged => {}
            s => {
                return Err(SwapError::NotAllowed {
                    command: "refund".into(),
                    phase: format!("{s:?} (only a charged session can be refunded)"),
                });
            }
        }
        match &self.payment {
            Payment::Package { package, .. } => out.effects.push(SwapEffect::RefundEntitlement {
                order: self.order,
                package: package.clone(),
            }),
            Payment::Wallet { price, .. } => out.effects.push(SwapEffect::RefundPayment {
                order: self.order,
                amount: *price,
            }),
            Payment::None => {}
        }
        out.effects
            .push(SwapEffect::ReverseRevenue { order: self.order });
        out.events.push(SwapEvent::Refunded {
            operator,
            reason,
            at: now,
        });
        Ok(())
    }
}

fn invalid(field: &str, e: &dyn core::fmt::Display) -> SwapError {
    SwapError::InvalidRequest {
        field: field.into(),
        expected: e.to_string(),
    }
}

fn validate(req: &SwapRequest) -> Result<(), SwapError> {
    let slots = &req.cabinet.slots;
    let dup = if slots.len() <= 64 {
        // small cabinets (all real ones): no allocation
        slots
            .iter()
            .enumerate()
            .any(|(i, a)| slots.iter().skip(i + 1).any(|b| b.slot == a.slot))
    } else {
        let mut seen: Vec<SlotNo> = slots.iter().map(|s| s.slot).collect();
        seen.sort_unstable();
        seen.windows(2).any(|w| w.first() == w.get(1))
    };
    if dup {
        return Err(SwapError::InvalidRequest {
            field: "cabinet.slots".into(),
            expected: "each slot number at most once".into(),
        });
    }
    let amount = match &req.payment {
        Payment::Package { unit_value, .. } => Some(*unit_value),
        Payment::Wallet { price, available } => {
            if available.is_negative() {
                return Err(SwapError::InvalidRequest {
                    field: "payment.available".into(),
                    expected: "zero or more".into(),
                });
            }
            Some(*price)
        }
        Payment::None => None,
    };
    if amount.is_some_and(|a| a.is_negative()) {
        return Err(SwapError::InvalidRequest {
            field: "payment price".into(),
            expected: "zero or more".into(),
        });
    }
    if req.policy.return_timeout_s == 0 || req.policy.take_timeout_s == 0 {
        return Err(SwapError::InvalidRequest {
            field: "policy timeouts".into(),
            expected: "at least one second".into(),
        });
    }
    if req.policy.min_full_soc > 100 {
        return Err(SwapError::InvalidRequest {
            field: "policy.min_full_soc".into(),
            expected: "a percentage 0-100".into(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod props;
#[cfg(test)]
pub(crate) mod tests;
