//! The charging session (充电) as a pure state machine.
//!
//! Scan a pile or a charging-cabinet slot → authorise (wallet balance,
//! package, or a pre-authorisation hold) → start command → started or start
//! failed → charging with meter readings → stop (rider, remote, full, fault,
//! balance exhausted, plug removed, device offline too long) → priced →
//! settled (the hold captured for the amount, the rest released) → closed.
//! Sessions stuck in starting or stopping, or with no meter progress, are
//! detected (an alert, then the machine moves on by itself).
//!
//! At a charging-cabinet slot ([`ChargePoint::CabinetSlot`]) the rider
//! charges their own battery, and the machine drives the slot's door through
//! the shared [`crate::door`] rules: authorise → the door opens
//! ([`ChargingPhase::Inserting`]) → the battery inserted is verified as the
//! rider's ([`ChargingRequest::battery`]; custody rider → slot) → start …
//! stop → priced and settled → the battery waits in the slot
//! ([`ChargingPhase::Collecting`]) until the rider's [`ChargingInput::Collect`]
//! opens the door → taken (custody slot → rider) → closed. Failure paths:
//! the door fails or nothing is inserted in time (not charged, hold
//! released); someone else's or an unreadable battery (not charged, handed
//! back at once, locked as foreign if left); a session that ends without
//! charging after the battery went in hands it back at once; not taken
//! (reopen once, then the slot is locked with an alert and the session ends
//! [`ChargingPhase::Uncollected`]: custody keeps the battery in the slot and
//! the order is flagged); never collected within `collect_timeout_s` (the
//! same). Cabinet reports come in as [`ChargingInput::Cabinet`]; piles are
//! unchanged and have no custody.
//!
//! Pricing is the host's: when the session stops, the machine asks for a
//! price with [`ChargingEffect::RequestPrice`] (energy and times) and the host
//! answers with [`ChargingInput::Priced`], typically from a tariff quote.
//!
//! Same shape as [`crate::swap`]: `handle` decides, `apply` folds, `step`
//! does both; replaying the events rebuilds the session.
//!
//! ```
//! use chargeswap_core::charging::*;
//! use chargeswap_core::custody::RiderId;
//! use chrono::{TimeZone, Utc};
//! let t0 = Utc.with_ymd_and_hms(2025, 3, 1, 20, 0, 0).unwrap();
//! let mut s = ChargingSession::new();
//! s.step(&ChargingInput::Start(ChargingRequest {
//!     order: 9, rider: RiderId(7), point: ChargePoint::Pile { pile: 30_001, connector: 1 },
//!     point_online: true, point_busy: false,
//!     auth: Authorization::PreAuth { hold: "30.00".parse()? },
//!     policy: ChargingPolicy::default(), battery: None,
//! }), t0)?;
//! s.step(&ChargingInput::Device(ChargerEvent::Started), t0)?;
//! s.step(&ChargingInput::Device(ChargerEvent::Meter { energy_wh: 3_217 }), t0 + chrono::Duration::minutes(30))?;
//! s.step(&ChargingInput::Stop { by: StopReason::Rider }, t0 + chrono::Duration::minutes(31))?;
//! let d = s.step(&ChargingInput::Device(ChargerEvent::Stopped { reason: StopReason::Rider, energy_wh: 3_217 }), t0 + chrono::Duration::minutes(31))?;
//! assert!(matches!(d.effects[0], ChargingEffect::RequestPrice { energy_wh: 3_217, .. }));
//! let d = s.step(&ChargingInput::Priced { amount: "3.97".parse()? }, t0 + chrono::Duration::minutes(31))?;
//! assert!(d.effects.contains(&ChargingEffect::CaptureHold { order: 9, amount: "3.97".parse()? }));
//! assert_eq!(s.phase(), ChargingPhase::Closed);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use chrono::Duration;
use serde::{Deserialize, Serialize};

use crate::cabinet::CabinetEvent;
use crate::custody::{CabinetId, Cause, MoveRequest, RiderId, SlotNo, Timestamp};
use crate::door::{
    DoorAlert, DoorCtx, DoorEffect, DoorEvent, DoorNotice, DoorOp, DoorOutcome, DoorPolicy,
    DoorSink, Doors, LockReason, after,
};
use crate::money::Money;
use crate::numbering::DeviceNo;

/// Where the rider charges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChargePoint {
    /// A charging pile (充电桩) connector.
    Pile {
        /// The pile.
        pile: u64,
        /// The connector (gun) number.
        connector: u8,
    },
    /// A slot of a charging cabinet (充电柜).
    CabinetSlot {
        /// The cabinet.
        cabinet: CabinetId,
        /// The slot.
        slot: SlotNo,
    },
}

/// How the session is authorised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Authorization {
    /// Pay from the wallet: a hold of `hold` is placed first.
    Wallet {
        /// The hold to place.
        hold: Money,
        /// The balance available for it.
        available: Money,
    },
    /// A pre-authorisation hold on an external payment means.
    PreAuth {
        /// The hold.
        hold: Money,
    },
    /// Covered by a charging package (one entitlement per session).
    Package {
        /// The package.
        package: String,
    },
}

/// Timeouts of a charging session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChargingPolicy {
    /// Seconds for the device to confirm a start.
    pub start_timeout_s: u32,
    /// Seconds for the device to confirm a stop.
    pub stop_timeout_s: u32,
    /// Seconds without meter progress before the session is stopped.
    pub meter_stall_s: u32,
    /// Seconds a device may stay offline before the session is ended.
    pub offline_grace_s: u32,
    /// At a charging-cabinet slot: seconds to insert and to take the
    /// battery, and the door watch (`door_retries`, `min_full_soc` and
    /// `max_temperature_c` are not used).
    #[serde(default)]
    pub door: DoorPolicy,
    /// At a charging-cabinet slot: seconds a charged battery may wait for
    /// the rider's [`ChargingInput::Collect`] before the slot is locked and
    /// operations are alerted.
    #[serde(default = "default_collect_timeout_s")]
    pub collect_timeout_s: u32,
}

fn default_collect_timeout_s() -> u32 {
    86_400
}

impl Default for ChargingPolicy {
    /// 60 s to start, 60 s to stop, 15 min without progress, 10 min offline;
    /// at a cabinet slot 90 s to insert, 60 s to take, 120 s to close the
    /// door, 24 h to collect.
    fn default() -> Self {
        ChargingPolicy {
            start_timeout_s: 60,
            stop_timeout_s: 60,
            meter_stall_s: 900,
            offline_grace_s: 600,
            door: DoorPolicy::default(),
            collect_timeout_s: default_collect_timeout_s(),
        }
    }
}

/// Everything needed to start a charging session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChargingRequest {
    /// The order.
    pub order: u64,
    /// The rider.
    pub rider: RiderId,
    /// The pile connector or cabinet slot.
    pub point: ChargePoint,
    /// Whether the point is connected.
    pub point_online: bool,
    /// Whether another session uses the point.
    pub point_busy: bool,
    /// How it is paid.
    pub auth: Authorization,
    /// Timeouts.
    pub policy: ChargingPolicy,
    /// The rider's own battery. Required at a cabinet slot: the rider puts
    /// it in, the machine verifies the inserted battery is this one, and
    /// custody follows it into the slot and back. Unused at a pile.
    #[serde(default)]
    pub battery: Option<DeviceNo>,
}

/// Why charging stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The rider stopped it.
    Rider,
    /// An operator stopped it remotely.
    Remote,
    /// The battery is full.
    Full,
    /// The device reported a fault.
    Fault,
    /// The money ran out (the host's running estimate reached the hold).
    BalanceExhausted,
    /// The plug was pulled.
    PlugRemoved,
    /// The device was offline too long.
    DeviceOffline,
    /// No meter progress for too long.
    NoProgress,
}

/// A normalized charger report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChargerEvent {
    /// The start command succeeded.
    Started,
    /// The start command failed.
    StartFailed,
    /// A cumulative meter reading of the session, in Wh.
    Meter {
        /// Energy delivered so far, Wh.
        energy_wh: u64,
    },
    /// Charging stopped, with the final reading.
    Stopped {
        /// Why, as the device says.
        reason: StopReason,
        /// Energy delivered in total, Wh.
        energy_wh: u64,
    },
    /// The device disconnected.
    Offline,
    /// The device reconnected.
    Online,
}

/// Why a session was refused or ended without charging.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChargingReason {
    /// The point is offline.
    PointOffline,
    /// The point is in use.
    PointBusy,
    /// The wallet cannot cover the hold.
    InsufficientBalance,
    /// The hold was refused.
    HoldRejected,
    /// The device refused to start.
    StartFailed,
    /// The device did not confirm the start in time.
    StartTimeout,
    /// The rider cancelled before the start.
    Cancelled,
    /// The cabinet slot's door did not open.
    DoorFailed,
    /// The rider did not insert the battery in time.
    InsertTimeout,
    /// The inserted battery's number could not be read.
    BatteryNotRecognised,
    /// The inserted battery is not the rider's.
    BatteryNotRiders,
}

/// Where a charging session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChargingPhase {
    /// Not started.
    Idle,
    /// Start commanded; waiting for the device.
    Starting,
    /// Charging.
    Charging,
    /// Stop commanded; waiting for the device.
    Stopping,
    /// Stopped; waiting for the price.
    Pricing,
    /// Settled and closed.
    Closed,
    /// At a cabinet slot: the slot's door is commanded open; waiting for the
    /// rider's battery.
    Inserting,
    /// At a cabinet slot: the session ended (priced and settled, or not
    /// charged) and the rider's battery is still in the slot: waiting for
    /// the rider to collect it.
    Collecting,
    /// At a cabinet slot: the battery was not taken back; its slot is
    /// locked, operations alerted, custody keeps it in the slot. Ended, and
    /// flagged on the order until operations hand it over.
    Uncollected,
}

/// How a session ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChargingOutcome {
    /// Nothing was charged.
    NotCharged {
        /// Why.
        reason: ChargingReason,
    },
    /// Charged and settled.
    Settled {
        /// Why it stopped.
        stop: StopReason,
        /// Energy, Wh.
        energy_wh: u64,
        /// The price.
        amount: Money,
    },
}

/// Alerts for operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChargingAlert {
    /// No start confirmation in time.
    StuckStarting,
    /// No stop confirmation in time.
    StuckStopping,
    /// No meter progress for too long.
    NoMeterProgress,
    /// The device was offline too long.
    DeviceOffline,
    /// The price exceeded the hold: the excess is charged directly.
    PriceOverHold,
}

/// Work for the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChargingEffect {
    /// Place a hold (idempotent by order).
    PlaceHold {
        /// The order.
        order: u64,
        /// The amount.
        amount: Money,
    },
    /// Post the hold for `amount`; the rest of it is released.
    CaptureHold {
        /// The order.
        order: u64,
        /// The amount.
        amount: Money,
    },
    /// Release the whole hold.
    ReleaseHold {
        /// The order.
        order: u64,
    },
    /// Charge the wallet directly (the part of the price above the hold).
    ChargeWallet {
        /// The order.
        order: u64,
        /// The amount.
        amount: Money,
    },
    /// Refund the charged amount to the rider (operator refund).
    RefundPayment {
        /// The order.
        order: u64,
        /// The amount.
        amount: Money,
    },
    /// Reverse the order's revenue split (operator refund).
    ReverseRevenue {
        /// The order.
        order: u64,
    },
    /// Consume one entitlement of the package (idempotent by order).
    ConsumeEntitlement {
        /// The order.
        order: u64,
        /// The package.
        package: String,
    },
    /// Split the order's revenue.
    SplitRevenue {
        /// The order.
        order: u64,
        /// The amount.
        amount: Money,
    },
    /// Send the start command.
    SendStart {
        /// Where.
        point: ChargePoint,
    },
    /// Send the stop command.
    SendStop {
        /// Where.
        point: ChargePoint,
    },
    /// Price the session (e.g. with a tariff quote) and answer with `Priced`.
    RequestPrice {
        /// The order.
        order: u64,
        /// Energy delivered, Wh.
        energy_wh: u64,
        /// When charging started.
        started_at: Timestamp,
        /// When it stopped.
        stopped_at: Timestamp,
    },
    /// Tell the rider the session ended.
    NotifyRider {
        /// The rider.
        rider: RiderId,
        /// The order.
        order: u64,
        /// How it ended.
        outcome: ChargingOutcome,
    },
    /// Raise an alert.
    RaiseAlert {
        /// The order.
        order: u64,
        /// What.
        alert: ChargingAlert,
    },
    /// Command a cabinet slot's door open.
    OpenDoor {
        /// The cabinet.
        cabinet: CabinetId,
        /// The slot.
        slot: SlotNo,
    },
    /// Lock a cabinet slot until operations look at it.
    LockSlot {
        /// The cabinet.
        cabinet: CabinetId,
        /// The slot.
        slot: SlotNo,
        /// Why.
        reason: LockReason,
    },
    /// Record a battery movement in custody (rider → slot on insertion,
    /// slot → rider when taken back; cause `charging`).
    CustodyMove(MoveRequest),
    /// Raise a door or slot alert.
    CabinetAlert {
        /// The cabinet.
        cabinet: CabinetId,
        /// The order.
        order: u64,
        /// What.
        alert: DoorAlert,
    },
    /// Tell the rider what to do at the door.
    NotifyDoor {
        /// The rider.
        rider: RiderId,
        /// The order.
        order: u64,
        /// What.
        notice: DoorNotice,
    },
}

/// The facts of a charging session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChargingEvent {
    /// Authorised; start commanded.
    Requested {
        /// The request.
        request: ChargingRequest,
        /// Until when the device must confirm.
        deadline: Timestamp,
        /// When.
        at: Timestamp,
    },
    /// Refused or ended without charging.
    NotCharged {
        /// The order.
        order: u64,
        /// The rider.
        rider: RiderId,
        /// Why.
        reason: ChargingReason,
        /// When.
        at: Timestamp,
    },
    /// The device started.
    Started {
        /// When.
        at: Timestamp,
        /// Next deadline (no-progress watch).
        deadline: Timestamp,
    },
    /// A newer meter reading.
    Metered {
        /// Energy so far, Wh.
        energy_wh: u64,
        /// When.
        at: Timestamp,
        /// Next deadline (no-progress watch).
        deadline: Timestamp,
    },
    /// The device went offline (or came back).
    Connectivity {
        /// Online now.
        online: bool,
        /// When.
        at: Timestamp,
        /// Next deadline.
        deadline: Option<Timestamp>,
    },
    /// Stop commanded.
    StopRequested {
        /// Why.
        reason: StopReason,
        /// Until when the device must confirm.
        deadline: Timestamp,
    },
    /// Charging stopped; the final reading.
    Stopped {
        /// Why.
        reason: StopReason,
        /// Energy, Wh.
        energy_wh: u64,
        /// When.
        at: Timestamp,
    },
    /// Priced and settled.
    Settled {
        /// The price.
        amount: Money,
        /// When.
        at: Timestamp,
    },
    /// An operator refunded the session.
    Refunded {
        /// Who.
        operator: String,
        /// Why.
        reason: String,
    },
    /// A fact about the cabinet slot's door and battery.
    Door(DoorEvent),
    /// The inserted battery is the rider's; the start is commanded.
    BatteryAccepted {
        /// The battery.
        battery: DeviceNo,
        /// When.
        at: Timestamp,
        /// Until when the device must confirm the start.
        deadline: Timestamp,
    },
    /// Settled with the battery still in the slot: waiting for the rider to
    /// collect it.
    AwaitingCollection {
        /// Until when.
        until: Timestamp,
    },
    /// The rider asked for the battery; its door is opened.
    CollectRequested,
    /// The battery was taken back; the session is closed.
    Collected {
        /// When.
        at: Timestamp,
    },
    /// The battery was not taken back; its slot is locked.
    Uncollected {
        /// When.
        at: Timestamp,
    },
}

/// What drives a charging session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChargingInput {
    /// Scan and authorise.
    Start(ChargingRequest),
    /// A charger report.
    Device(ChargerEvent),
    /// The host could not place the hold.
    HoldRejected,
    /// Stop: by the rider, remotely, or because the balance ran out.
    Stop {
        /// Why.
        by: StopReason,
    },
    /// The price of the stopped session.
    Priced {
        /// The amount (zero or more).
        amount: Money,
    },
    /// Time passed.
    Tick,
    /// An operator refunds a settled session.
    Refund {
        /// Who.
        operator: String,
        /// Why.
        reason: String,
    },
    /// A report of the charging cabinet (doors, batteries) at a cabinet slot.
    Cabinet(CabinetEvent),
    /// The rider asks for their battery back at a cabinet slot (allowed once
    /// the session has ended).
    Collect {
        /// The rider (must be the session's).
        rider: RiderId,
    },
}

/// The answer to one input.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChargingDecision {
    /// Facts to apply.
    pub events: Vec<ChargingEvent>,
    /// Work for the host.
    pub effects: Vec<ChargingEffect>,
    /// When to tick next.
    pub next_deadline: Option<Timestamp>,
}

/// Errors of the charging machine. An error changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ChargingError {
    /// Not started yet.
    #[error("the charging session has not started: send start first")]
    NotStarted,
    /// Already running another order.
    #[error("this session already runs order {order}")]
    AlreadyStarted {
        /// The running order.
        order: u64,
    },
    /// Not allowed now.
    #[error("{command} is not allowed while the charging session is {phase}")]
    NotAllowed {
        /// The command.
        command: String,
        /// The phase.
        phase: String,
    },
    /// The tariff could not price the session.
    #[error("the tariff could not price the session: {error}")]
    Pricing {
        /// Why.
        error: crate::tariff::TariffError,
    },
    /// Bad input.
    #[error("invalid charging input: {field} {expected}")]
    Invalid {
        /// The field.
        field: String,
        /// What was expected.
        expected: String,
    },
}

/// One charging session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChargingSession {
    request: Option<ChargingRequest>,
    phase: ChargingPhase,
    energy_wh: u64,
    started_at: Option<Timestamp>,
    stopped_at: Option<Timestamp>,
    stop: Option<StopReason>,
    last_progress: Option<Timestamp>,
    offline_since: Option<Timestamp>,
    deadline: Option<Timestamp>,
    hold: bool,
    outcome: Option<ChargingOutcome>,
    refunded: bool,
    /// Meter readings (time, cumulative Wh), strictly increasing in time:
    /// 0 at the start, each newer reading, the final one at the stop.
    readings: Vec<(Timestamp, u64)>,
    /// At a cabinet slot: its door and what is in it.
    doors: Doors,
    /// Custody moves recorded so far (the next move's number).
    custody_seq: u32,
}

impl Default for ChargingSession {
    fn default() -> Self {
        ChargingSession::new()
    }
}

fn phase_name(p: ChargingPhase) -> String {
    format!("{p:?}").to_lowercase()
}

struct Out {
    events: Vec<ChargingEvent>,
    effects: Vec<ChargingEffect>,
    /// The next custody move number.
    custody_seq: u32,
    /// The cabinet and order, for door alerts.
    cabinet: CabinetId,
    order: u64,
}

/// Door facts are recorded as [`ChargingEvent::Door`]; door effects map
/// onto the charging effects of the same name.
impl DoorSink for Out {
    fn event(&mut self, e: DoorEvent) {
        self.events.push(ChargingEvent::Door(e));
    }
    fn effect(&mut self, e: DoorEffect) {
        self.effects.push(match e {
            DoorEffect::OpenDoor { cabinet, slot } => ChargingEffect::OpenDoor { cabinet, slot },
            DoorEffect::LockSlot {
                cabinet,
                slot,
                reason,
            } => ChargingEffect::LockSlot {
                cabinet,
                slot,
                reason,
            },
            DoorEffect::CustodyMove(m) => ChargingEffect::CustodyMove(m),
            DoorEffect::Alert(alert) => ChargingEffect::CabinetAlert {
                cabinet: self.cabinet,
                order: self.order,
                alert,
            },
        });
    }
    fn next_move(&mut self) -> u32 {
        let n = self.custody_seq;
        self.custody_seq = n.saturating_add(1);
        n
    }
}

/// Who the door rules act for at a cabinet slot (`None` at a pile).
fn door_ctx(r: &ChargingRequest) -> Option<DoorCtx> {
    match r.point {
        ChargePoint::CabinetSlot { cabinet, .. } => Some(DoorCtx {
            cabinet,
            order: r.order,
            rider: r.rider,
            rider_battery: r.battery,
            cause: Cause::Charging { order: r.order },
            close_timeout_s: r.policy.door.door_close_timeout_s,
        }),
        ChargePoint::Pile { .. } => None,
    }
}

impl ChargingSession {
    /// A session that has not started.
    pub fn new() -> Self {
        ChargingSession {
            request: None,
            phase: ChargingPhase::Idle,
            energy_wh: 0,
            started_at: None,
            stopped_at: None,
            stop: None,
            last_progress: None,
            offline_since: None,
            deadline: None,
            hold: false,
            outcome: None,
            refunded: false,
            readings: Vec::new(),
            doors: Doors::new(),
            custody_seq: 0,
        }
    }

    /// Rebuilds a session from its events.
    pub fn replay<'a, I: IntoIterator<Item = &'a ChargingEvent>>(events: I) -> Self {
        let mut s = ChargingSession::new();
        for e in events {
            s.apply(e);
        }
        s
    }

    /// The phase.
    pub fn phase(&self) -> ChargingPhase {
        self.phase
    }
    /// Energy delivered so far, Wh.
    pub fn energy_wh(&self) -> u64 {
        self.energy_wh
    }
    /// How it ended.
    pub fn outcome(&self) -> Option<&ChargingOutcome> {
        self.outcome.as_ref()
    }
    /// Whether an operator refunded it.
    pub fn refunded(&self) -> bool {
        self.refunded
    }
    /// The next deadline (the session's, or its door's).
    pub fn next_deadline(&self) -> Option<Timestamp> {
        match (self.deadline, self.doors.next_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
    /// Ended (closed, or uncollected at a cabinet slot), nothing pending.
    pub fn is_finished(&self) -> bool {
        matches!(
            self.phase,
            ChargingPhase::Closed | ChargingPhase::Uncollected
        ) && self.next_deadline().is_none()
    }
    /// At a cabinet slot: the slot's door and what the session knows is in it.
    pub fn doors(&self) -> &Doors {
        &self.doors
    }
    /// At a cabinet slot: the battery in the slot, if any (`Some(None)`:
    /// one whose number could not be read).
    pub fn battery_in_slot(&self) -> Option<Option<DeviceNo>> {
        self.slot().and_then(|s| self.doors.content(s))
    }

    /// Handles then applies one input.
    pub fn step(
        &mut self,
        input: &ChargingInput,
        now: Timestamp,
    ) -> Result<ChargingDecision, ChargingError> {
        let d = self.handle(input, now)?;
        for e in &d.events {
            self.apply(e);
        }
        Ok(d)
    }

    /// Decides what one input means, without changing the session.
    pub fn handle(
        &self,
        input: &ChargingInput,
        now: Timestamp,
    ) -> Result<ChargingDecision, ChargingError> {
        let ctx = self.request.as_ref().and_then(door_ctx);
        let mut out = Out {
            events: Vec::new(),
            effects: Vec::new(),
            custody_seq: self.custody_seq,
            cabinet: ctx.as_ref().map_or(CabinetId(0), |c| c.cabinet),
            order: self.order(),
        };
        match input {
            ChargingInput::Start(r) => self.on_start(r, now, &mut out)?,
            ChargingInput::Device(e) => self.on_device(*e, now, &mut out)?,
            ChargingInput::HoldRejected => match self.phase {
                ChargingPhase::Idle => return Err(ChargingError::NotStarted),
                ChargingPhase::Starting if self.hold => {
                    out.effects.push(ChargingEffect::SendStop {
                        point: self.point()?,
                    });
                    self.not_charged(&mut out, ChargingReason::HoldRejected, now, false);
                }
                ChargingPhase::Inserting if self.hold => {
                    self.not_charged(&mut out, ChargingReason::HoldRejected, now, false);
                }
                ChargingPhase::Closed | ChargingPhase::Collecting | ChargingPhase::Uncollected => {}
                p => return Err(not_allowed("hold_rejected", p)),
            },
            ChargingInput::Cabinet(ev) => self.on_cabinet(ev, ctx.as_ref(), now, &mut out)?,
            ChargingInput::Collect { rider } => {
                self.on_collect(*rider, ctx.as_ref(), now, &mut out)?
            }
            ChargingInput::Stop { by } => self.on_stop(*by, now, &mut out)?,
            ChargingInput::Priced { amount } => self.on_priced(*amount, now, &mut out)?,
            ChargingInput::Tick => self.on_tick(now, &mut out)?,
            ChargingInput::Refund { operator, reason } => match (&self.outcome, self.refunded) {
                (Some(ChargingOutcome::Settled { amount, .. }), false) => {
                    let order = self.order();
                    if amount.is_positive() {
                        out.effects.push(ChargingEffect::RefundPayment {
                            order,
                            amount: *amount,
                        });
                        out.effects.push(ChargingEffect::ReverseRevenue { order });
                    }
                    out.events.push(ChargingEvent::Refunded {
                        operator: operator.clone(),
                        reason: reason.clone(),
                    });
                }
                (Some(ChargingOutcome::Settled { .. }), true) => {}
                _ => return Err(not_allowed("refund", self.phase)),
            },
        }
        let mut probe = self.clone();
        for e in &out.events {
            probe.apply(e);
        }
        let next_deadline = probe.next_deadline();
        Ok(ChargingDecision {
            events: out.events,
            effects: out.effects,
            next_deadline,
        })
    }

    fn order(&self) -> u64 {
        self.request.as_ref().map_or(0, |r| r.order)
    }

    /// The cabinet slot of a cabinet session.
    fn slot(&self) -> Option<SlotNo> {
        match self.request.as_ref()?.point {
            ChargePoint::CabinetSlot { slot, .. } => Some(slot),
            ChargePoint::Pile { .. } => None,
        }
    }

    /// Whether the cabinet slot holds a battery (as the session knows it).
    fn holds_battery(&self) -> bool {
        self.battery_in_slot().is_some()
    }

    fn point(&self) -> Result<ChargePoint, ChargingError> {
        self.request
            .as_ref()
            .map(|r| r.point)
            .ok_or(ChargingError::NotStarted)
    }

    fn record_reading(&mut self, at: Timestamp, wh: u64) {
        match self.readings.last_mut() {
            // same instant: keep the higher value
            Some(last) if last.0 == at => last.1 = last.1.max(wh),
            Some(last) if last.0 > at => {}
            _ => self.readings.push((at, wh)),
        }
    }

    /// The session as the tariff engine sees it: local start and end times
    /// (`utc_offset_s` east of UTC) and the meter readings in kWh, so time-of-use
    /// tiers split the energy where it was delivered. `None` before the
    /// session started.
    pub fn tariff_session(&self, utc_offset_s: i32) -> Option<crate::tariff::ChargingSession> {
        let off = Duration::seconds(i64::from(utc_offset_s));
        let local = |t: Timestamp| t.naive_utc().checked_add_signed(off);
        let start = local(self.started_at?)?;
        let end = local(self.stopped_at.or(self.readings.last().map(|r| r.0))?)?;
        let readings = self
            .readings
            .iter()
            .filter_map(|(at, wh)| {
                Some(crate::tariff::MeterReading {
                    at: local(*at)?,
                    kwh: rust_decimal::Decimal::new(i64::try_from(*wh).ok()?, 3),
                })
            })
            .collect();
        Some(crate::tariff::ChargingSession {
            start,
            end,
            energy_kwh: None,
            readings,
            power: Vec::new(),
            unplugged_at: None,
            member: None,
            coupons: Vec::new(),
        })
    }

    /// Prices the stopped session with a compiled tariff: the quote whose
    /// total the host answers with [`ChargingInput::Priced`].
    ///
    /// ```
    /// # use chargeswap_core::charging::*;
    /// # use chargeswap_core::custody::RiderId;
    /// # use chrono::{TimeZone, Utc};
    /// let tariff: chargeswap_core::tariff::Tariff = serde_json::from_str(r#"{
    ///   "id": "t", "currency": "CNY",
    ///   "tou": {"ranges": [{"start": "00:00", "end": "18:00", "tier": "flat"},
    ///                      {"start": "18:00", "end": "24:00", "tier": "peak"}]},
    ///   "energy": {"tiers": {"flat": {"electricity": "0.60", "service": "0.40"},
    ///                        "peak": {"electricity": "0.90", "service": "0.40"}}}}"#)?;
    /// // 17:30-18:30 local (UTC+8): 1.2 kWh before 18:00, 0.8 kWh after
    /// let t0 = Utc.with_ymd_and_hms(2025, 3, 14, 9, 30, 0).unwrap();
    /// let min = |m| t0 + chrono::Duration::minutes(m);
    /// let mut s = ChargingSession::new();
    /// s.step(&ChargingInput::Start(ChargingRequest { order: 1, rider: RiderId(7),
    ///     point: ChargePoint::Pile { pile: 1, connector: 1 }, point_online: true, point_busy: false,
    ///     auth: Authorization::PreAuth { hold: "30.00".parse()? }, policy: ChargingPolicy::default(), battery: None }), t0)?;
    /// s.step(&ChargingInput::Device(ChargerEvent::Started), t0)?;
    /// s.step(&ChargingInput::Device(ChargerEvent::Meter { energy_wh: 1_200 }), min(30))?;
    /// s.step(&ChargingInput::Device(ChargerEvent::Stopped { reason: StopReason::Full, energy_wh: 2_000 }), min(60))?;
    /// let quote = s.price(&tariff.compile()?, 8 * 3600)?;
    /// // flat 1.2 × 1.00 = 1.20; peak 0.8 × 1.30 = 1.04
    /// assert_eq!(quote.total.to_string(), "¥2.24");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn price(
        &self,
        tariff: &crate::tariff::CompiledTariff,
        utc_offset_s: i32,
    ) -> Result<crate::tariff::Quote, ChargingError> {
        let session = self
            .tariff_session(utc_offset_s)
            .ok_or(ChargingError::NotStarted)?;
        tariff
            .quote(&crate::tariff::Session::Charging(session))
            .map_err(|error| ChargingError::Pricing { error })
    }

    /// Folds one event in. Total.
    pub fn apply(&mut self, e: &ChargingEvent) {
        match e {
            ChargingEvent::Requested {
                request, deadline, ..
            } => {
                self.hold = !matches!(request.auth, Authorization::Package { .. });
                self.request = Some(request.clone());
                self.doors = Doors::new();
                if let ChargePoint::CabinetSlot { .. } = request.point {
                    // the slot's door operation carries the deadline
                    self.phase = ChargingPhase::Inserting;
                    self.deadline = None;
                } else {
                    self.phase = ChargingPhase::Starting;
                    self.deadline = Some(*deadline);
                }
            }
            ChargingEvent::NotCharged { reason, .. } => {
                self.phase = if self.holds_battery() {
                    ChargingPhase::Collecting
                } else {
                    ChargingPhase::Closed
                };
                self.outcome = Some(ChargingOutcome::NotCharged { reason: *reason });
                self.deadline = None;
                self.hold = false;
            }
            ChargingEvent::Started { at, deadline } => {
                self.phase = ChargingPhase::Charging;
                self.record_reading(*at, 0);
                self.started_at = Some(*at);
                self.last_progress = Some(*at);
                self.deadline = Some(*deadline);
            }
            ChargingEvent::Metered {
                energy_wh,
                at,
                deadline,
            } => {
                self.energy_wh = *energy_wh;
                self.record_reading(*at, *energy_wh);
                self.last_progress = Some(*at);
                self.offline_since = None; // a reading means it is online
                self.deadline = Some(*deadline);
            }
            ChargingEvent::Connectivity {
                online,
                at,
                deadline,
            } => {
                self.offline_since = if *online { None } else { Some(*at) };
                self.deadline = *deadline;
            }
            ChargingEvent::StopRequested { reason, deadline } => {
                self.phase = ChargingPhase::Stopping;
                self.stop = Some(*reason);
                self.deadline = Some(*deadline);
            }
            ChargingEvent::Stopped {
                reason,
                energy_wh,
                at,
            } => {
                self.phase = ChargingPhase::Pricing;
                self.stop = Some(*reason);
                self.energy_wh = (*energy_wh).max(self.energy_wh);
                self.record_reading(*at, self.energy_wh);
                self.stopped_at = Some(*at);
                self.deadline = None;
            }
            ChargingEvent::Settled { amount, .. } => {
                self.phase = if self.holds_battery() {
                    ChargingPhase::Collecting
                } else {
                    ChargingPhase::Closed
                };
                self.outcome = Some(ChargingOutcome::Settled {
                    stop: self.stop.unwrap_or(StopReason::Rider),
                    energy_wh: self.energy_wh,
                    amount: *amount,
                });
                self.hold = false;
            }
            ChargingEvent::Refunded { .. } => self.refunded = true,
            ChargingEvent::Door(e) => {
                self.custody_seq = self.custody_seq.saturating_add(e.custody_moves());
                self.doors.apply(e);
            }
            ChargingEvent::BatteryAccepted { deadline, .. } => {
                self.phase = ChargingPhase::Starting;
                self.deadline = Some(*deadline);
            }
            ChargingEvent::AwaitingCollection { until } => self.deadline = Some(*until),
            ChargingEvent::CollectRequested => self.deadline = None,
            ChargingEvent::Collected { .. } => {
                self.phase = ChargingPhase::Closed;
                self.deadline = None;
            }
            ChargingEvent::Uncollected { .. } => {
                self.phase = ChargingPhase::Uncollected;
                self.deadline = None;
            }
        }
    }

    fn not_charged(&self, out: &mut Out, reason: ChargingReason, now: Timestamp, release: bool) {
        let order = self.order();
        if release && self.hold {
            out.effects.push(ChargingEffect::ReleaseHold { order });
        }
        let rider = self.request.as_ref().map_or(RiderId(0), |r| r.rider);
        out.events.push(ChargingEvent::NotCharged {
            order,
            rider,
            reason,
            at: now,
        });
        out.effects.push(ChargingEffect::NotifyRider {
            rider,
            order,
            outcome: ChargingOutcome::NotCharged { reason },
        });
        let refused = matches!(
            reason,
            ChargingReason::BatteryNotRecognised | ChargingReason::BatteryNotRiders
        );
        self.hand_back(out, refused, now);
    }

    /// At a cabinet slot, after a session that never charged: the rider is
    /// at the cabinet, so a battery in the slot is handed back at once (its
    /// door reopens; an own battery's door reopens once more if it is not
    /// taken, then the slot is locked; a refused battery's slot is locked as
    /// foreign). An empty slot ends the door work.
    fn hand_back(&self, out: &mut Out, refused: bool, now: Timestamp) {
        let (Some(r), Some(slot)) = (&self.request, self.slot()) else {
            return;
        };
        let Some(ctx) = door_ctx(r) else {
            return;
        };
        match self.doors_after(out).content(slot) {
            Some(battery) => {
                let secs = r.policy.door.take_timeout_s;
                let op = DoorOp::take(slot, battery, secs, after(now, secs));
                let op = if refused {
                    op.locking_on_fail(LockReason::ForeignBattery)
                        .locking_if_left(LockReason::ForeignBattery)
                } else {
                    op.reopening_once().locking_if_left(LockReason::NotTaken)
                };
                Doors::open(&ctx, op, out);
                self.notify_door(out, DoorNotice::TakeBackBattery { slot });
            }
            None => self.end_doors(out, &ctx, now),
        }
    }

    /// The slot's doors once this decision's door events apply.
    fn doors_after(&self, out: &Out) -> Doors {
        let mut d = self.doors.clone();
        for e in &out.events {
            if let ChargingEvent::Door(e) = e {
                d.apply(e);
            }
        }
        d
    }

    /// No more door operations: watch the door if it is open.
    fn end_doors(&self, out: &mut Out, ctx: &DoorCtx, now: Timestamp) {
        let open = self.doors_after(out).open_after(|_| None);
        let watch = open.then(|| after(now, ctx.close_timeout_s));
        out.events
            .push(ChargingEvent::Door(DoorEvent::Ended { watch }));
    }

    fn notify_door(&self, out: &mut Out, notice: DoorNotice) {
        if let Some(r) = &self.request {
            out.effects.push(ChargingEffect::NotifyDoor {
                rider: r.rider,
                order: r.order,
                notice,
            });
        }
    }

    fn on_cabinet(
        &self,
        ev: &CabinetEvent,
        ctx: Option<&DoorCtx>,
        now: Timestamp,
        out: &mut Out,
    ) -> Result<(), ChargingError> {
        if self.phase == ChargingPhase::Idle {
            return Err(ChargingError::NotStarted);
        }
        let Some(ctx) = ctx else {
            if self.request.is_none() {
                return Ok(()); // refused at the start: nothing of this cabinet is ours
            }
            return Err(ChargingError::NotAllowed {
                command: "cabinet".into(),
                phase: "a pile session (no cabinet)".into(),
            });
        };
        if ev.cabinet != ctx.cabinet {
            return Err(ChargingError::Invalid {
                field: "cabinet".into(),
                expected: format!("reports of cabinet {}, the session's", ctx.cabinet.0),
            });
        }
        match self.doors.on_device(ev, now, ctx, out) {
            Some(o) => self.on_door(o, ctx, now, out)?,
            None => {
                // waiting for the rider, but the battery left the slot
                // anyway (staff, or a lost message): nothing left to collect
                let gone = self
                    .slot()
                    .is_some_and(|s| self.doors_after(out).content(s).is_none());
                if self.phase == ChargingPhase::Collecting && gone {
                    out.events.push(ChargingEvent::Collected { at: now });
                    self.end_doors(out, ctx, now);
                }
            }
        }
        Ok(())
    }

    /// What a door outcome means in the current phase.
    fn on_door(
        &self,
        o: DoorOutcome,
        ctx: &DoorCtx,
        now: Timestamp,
        out: &mut Out,
    ) -> Result<(), ChargingError> {
        let r = self.request.as_ref().ok_or(ChargingError::NotStarted)?;
        match (o, self.phase) {
            (DoorOutcome::Inserted { battery, .. }, ChargingPhase::Inserting) => match battery {
                Some(b) if Some(b) == r.battery => {
                    out.events.push(ChargingEvent::Door(DoorEvent::Done));
                    let deadline = after(now, r.policy.start_timeout_s);
                    out.events.push(ChargingEvent::BatteryAccepted {
                        battery: b,
                        at: now,
                        deadline,
                    });
                    out.effects
                        .push(ChargingEffect::SendStart { point: r.point });
                }
                _ => {
                    let reason = if battery.is_none() {
                        ChargingReason::BatteryNotRecognised
                    } else {
                        ChargingReason::BatteryNotRiders
                    };
                    self.not_charged(out, reason, now, true);
                }
            },
            (DoorOutcome::OpenFailed { .. }, ChargingPhase::Inserting) => {
                self.not_charged(out, ChargingReason::DoorFailed, now, true)
            }
            (DoorOutcome::Expired { .. }, ChargingPhase::Inserting) => {
                self.not_charged(out, ChargingReason::InsertTimeout, now, true)
            }
            (DoorOutcome::Taken { .. }, ChargingPhase::Collecting) => {
                out.events.push(ChargingEvent::Collected { at: now });
                self.end_doors(out, ctx, now);
            }
            // locked by the door rules (door fault, not taken, foreign)
            (
                DoorOutcome::OpenFailed { .. } | DoorOutcome::Expired { .. },
                ChargingPhase::Collecting,
            ) => {
                out.events.push(ChargingEvent::Uncollected { at: now });
                self.end_doors(out, ctx, now);
            }
            (DoorOutcome::Reopened { slot, .. }, _) => {
                self.notify_door(out, DoorNotice::TakeBackBattery { slot })
            }
            _ => {}
        }
        Ok(())
    }

    fn on_collect(
        &self,
        rider: RiderId,
        ctx: Option<&DoorCtx>,
        now: Timestamp,
        out: &mut Out,
    ) -> Result<(), ChargingError> {
        let r = self.request.as_ref().ok_or(ChargingError::NotStarted)?;
        let (Some(ctx), Some(slot)) = (ctx, self.slot()) else {
            return Err(ChargingError::NotAllowed {
                command: "collect".into(),
                phase: "a pile session (nothing to collect)".into(),
            });
        };
        if rider != r.rider {
            return Err(ChargingError::Invalid {
                field: "rider".into(),
                expected: format!("rider {}, the session's", r.rider.0),
            });
        }
        match self.phase {
            // the door is already open for it
            ChargingPhase::Collecting if self.doors.op().is_some() => {}
            ChargingPhase::Collecting => {
                out.events.push(ChargingEvent::CollectRequested);
                let secs = r.policy.door.take_timeout_s;
                let op = DoorOp::take(
                    slot,
                    self.battery_in_slot().flatten(),
                    secs,
                    after(now, secs),
                )
                .reopening_once()
                .locking_if_left(LockReason::NotTaken);
                Doors::open(ctx, op, out);
                self.notify_door(out, DoorNotice::TakeBackBattery { slot });
            }
            ChargingPhase::Closed => {} // collected already
            p => return Err(not_allowed("collect", p)),
        }
        Ok(())
    }

    fn on_start(
        &self,
        r: &ChargingRequest,
        now: Timestamp,
        out: &mut Out,
    ) -> Result<(), ChargingError> {
        if let Some(cur) = &self.request {
            return if cur.order == r.order {
                Ok(())
            } else {
                Err(ChargingError::AlreadyStarted { order: cur.order })
            };
        }
        if self.phase != ChargingPhase::Idle {
            return Ok(()); // a refused start repeated
        }
        let (hold, available) = match &r.auth {
            Authorization::Wallet { hold, available } => (Some(*hold), Some(*available)),
            Authorization::PreAuth { hold } => (Some(*hold), None),
            Authorization::Package { .. } => (None, None),
        };
        if hold.is_some_and(|h| !h.is_positive()) {
            return Err(ChargingError::Invalid {
                field: "auth.hold".into(),
                expected: "a positive amount".into(),
            });
        }
        if r.policy.start_timeout_s == 0 || r.policy.stop_timeout_s == 0 {
            return Err(ChargingError::Invalid {
                field: "policy timeouts".into(),
                expected: "at least one second".into(),
            });
        }
        let ctx = door_ctx(r);
        if ctx.is_some() {
            if r.battery.is_none() {
                return Err(ChargingError::Invalid {
                    field: "battery".into(),
                    expected: "the rider's battery, required at a cabinet slot".into(),
                });
            }
            let d = &r.policy.door;
            if d.insert_timeout_s == 0 || d.take_timeout_s == 0 || r.policy.collect_timeout_s == 0 {
                return Err(ChargingError::Invalid {
                    field: "policy door and collect timeouts".into(),
                    expected: "at least one second".into(),
                });
            }
        }
        let short = match (hold, available) {
            (Some(h), Some(a)) => {
                a.checked_cmp(&h).map_err(|e| ChargingError::Invalid {
                    field: "auth".into(),
                    expected: e.to_string(),
                })? == core::cmp::Ordering::Less
            }
            _ => false,
        };
        let reason = if !r.point_online {
            Some(ChargingReason::PointOffline)
        } else if r.point_busy {
            Some(ChargingReason::PointBusy)
        } else if short {
            Some(ChargingReason::InsufficientBalance)
        } else {
            None
        };
        if let Some(reason) = reason {
            out.events.push(ChargingEvent::NotCharged {
                order: r.order,
                rider: r.rider,
                reason,
                at: now,
            });
            out.effects.push(ChargingEffect::NotifyRider {
                rider: r.rider,
                order: r.order,
                outcome: ChargingOutcome::NotCharged { reason },
            });
            return Ok(());
        }
        // At a cabinet slot the rider first puts the battery in (the
        // deadline is the insertion's); at a pile the start goes out now.
        let secs = match ctx {
            Some(_) => r.policy.door.insert_timeout_s,
            None => r.policy.start_timeout_s,
        };
        let deadline = after(now, secs);
        out.events.push(ChargingEvent::Requested {
            request: r.clone(),
            deadline,
            at: now,
        });
        if let Some(h) = hold {
            out.effects.push(ChargingEffect::PlaceHold {
                order: r.order,
                amount: h,
            });
        }
        match (&ctx, r.point) {
            (Some(ctx), ChargePoint::CabinetSlot { slot, .. }) => {
                Doors::open(ctx, DoorOp::put(slot, secs, deadline), out);
                out.effects.push(ChargingEffect::NotifyDoor {
                    rider: r.rider,
                    order: r.order,
                    notice: DoorNotice::InsertBattery { slot },
                });
            }
            _ => out
                .effects
                .push(ChargingEffect::SendStart { point: r.point }),
        }
        Ok(())
    }

    fn policy(&self) -> ChargingPolicy {
        self.request
            .as_ref()
            .map(|r| r.policy.clone())
            .unwrap_or_default()
    }

    fn stop_now(
        &self,
        out: &mut Out,
        reason: StopReason,
        now: Timestamp,
    ) -> Result<(), ChargingError> {
        let deadline = after(now, self.policy().stop_timeout_s);
        out.events
            .push(ChargingEvent::StopRequested { reason, deadline });
        out.effects.push(ChargingEffect::SendStop {
            point: self.point()?,
        });
        Ok(())
    }

    fn stopped(&self, out: &mut Out, reason: StopReason, energy_wh: u64, now: Timestamp) {
        let energy_wh = energy_wh.max(self.energy_wh);
        out.events.push(ChargingEvent::Stopped {
            reason,
            energy_wh,
            at: now,
        });
        out.effects.push(ChargingEffect::RequestPrice {
            order: self.order(),
            energy_wh,
            started_at: self.started_at.unwrap_or(now),
            stopped_at: now,
        });
    }

    fn on_device(
        &self,
        e: ChargerEvent,
        now: Timestamp,
        out: &mut Out,
    ) -> Result<(), ChargingError> {
        let policy = self.policy();
        match (self.phase, e) {
            (ChargingPhase::Idle, _) => return Err(ChargingError::NotStarted),
            (ChargingPhase::Starting, ChargerEvent::Started) => {
                out.events.push(ChargingEvent::Started {
                    at: now,
                    deadline: after(now, policy.meter_stall_s),
                });
            }
            (ChargingPhase::Starting, ChargerEvent::StartFailed) => {
                self.not_charged(out, ChargingReason::StartFailed, now, true);
            }
            (
                ChargingPhase::Charging | ChargingPhase::Stopping,
                ChargerEvent::Meter { energy_wh },
            ) if energy_wh > self.energy_wh => {
                let deadline = if self.phase == ChargingPhase::Charging {
                    after(now, policy.meter_stall_s)
                } else {
                    self.deadline.unwrap_or(now)
                };
                out.events.push(ChargingEvent::Metered {
                    energy_wh,
                    at: now,
                    deadline,
                });
            }
            (
                ChargingPhase::Charging | ChargingPhase::Stopping,
                ChargerEvent::Stopped { reason, energy_wh },
            ) => {
                // a stop we asked for keeps our reason
                let reason = if self.phase == ChargingPhase::Stopping {
                    self.stop.unwrap_or(reason)
                } else {
                    reason
                };
                self.stopped(out, reason, energy_wh, now);
            }
            // While offline no reading can arrive: only the offline grace
            // runs (a start that never confirms is caught by its timeout).
            (ChargingPhase::Charging, ChargerEvent::Offline) if self.offline_since.is_none() => {
                let deadline = after(now, policy.offline_grace_s);
                out.events.push(ChargingEvent::Connectivity {
                    online: false,
                    at: now,
                    deadline: Some(deadline),
                });
            }
            (ChargingPhase::Charging, ChargerEvent::Online) if self.offline_since.is_some() => {
                let deadline = after(now, policy.meter_stall_s);
                out.events.push(ChargingEvent::Connectivity {
                    online: true,
                    at: now,
                    deadline: Some(deadline),
                });
            }
            _ => {} // duplicated, stale or late: nothing to do
        }
        Ok(())
    }

    fn on_stop(&self, by: StopReason, now: Timestamp, out: &mut Out) -> Result<(), ChargingError> {
        match self.phase {
            ChargingPhase::Idle => Err(ChargingError::NotStarted),
            ChargingPhase::Starting => {
                out.effects.push(ChargingEffect::SendStop {
                    point: self.point()?,
                });
                self.not_charged(out, ChargingReason::Cancelled, now, true);
                Ok(())
            }
            ChargingPhase::Inserting => {
                // nothing started yet: the rider changed their mind
                self.not_charged(out, ChargingReason::Cancelled, now, true);
                Ok(())
            }
            ChargingPhase::Charging => self.stop_now(out, by, now),
            ChargingPhase::Stopping
            | ChargingPhase::Pricing
            | ChargingPhase::Closed
            | ChargingPhase::Collecting
            | ChargingPhase::Uncollected => Ok(()),
        }
    }

    fn on_priced(&self, amount: Money, now: Timestamp, out: &mut Out) -> Result<(), ChargingError> {
        match self.phase {
            ChargingPhase::Pricing => {}
            // duplicated answer
            ChargingPhase::Closed | ChargingPhase::Collecting | ChargingPhase::Uncollected => {
                return Ok(());
            }
            p => return Err(not_allowed("priced", p)),
        }
        if amount.is_negative() {
            return Err(ChargingError::Invalid {
                field: "amount".into(),
                expected: "zero or more".into(),
            });
        }
        let Some(r) = &self.request else {
            return Err(ChargingError::NotStarted);
        };
        let order = r.order;
        let hold = match &r.auth {
            Authorization::Wallet { hold, .. } | Authorization::PreAuth { hold } => Some(*hold),
            Authorization::Package { package } => {
                if self.energy_wh > 0 {
                    out.effects.push(ChargingEffect::ConsumeEntitlement {
                        order,
                        package: package.clone(),
                    });
                }
                None
            }
        };
        let charged = if self.energy_wh == 0 {
            // nothing delivered: never charge
            Money::zero(amount.currency())
        } else if hold.is_some() {
            amount
        } else {
            Money::zero(amount.currency())
        };
        if let Some(h) = hold {
            if charged.is_zero() {
                out.effects.push(ChargingEffect::ReleaseHold { order });
            } else {
                let over = charged.checked_sub(h).map_err(|e| ChargingError::Invalid {
                    field: "amount".into(),
                    expected: e.to_string(),
                })?;
                if over.is_positive() {
                    out.effects
                        .push(ChargingEffect::CaptureHold { order, amount: h });
                    out.effects.push(ChargingEffect::ChargeWallet {
                        order,
                        amount: over,
                    });
                    out.effects.push(ChargingEffect::RaiseAlert {
                        order,
                        alert: ChargingAlert::PriceOverHold,
                    });
                } else {
                    out.effects.push(ChargingEffect::CaptureHold {
                        order,
                        amount: charged,
                    });
                }
                out.effects.push(ChargingEffect::SplitRevenue {
                    order,
                    amount: charged,
                });
            }
        }
        out.events.push(ChargingEvent::Settled {
            amount: charged,
            at: now,
        });
        out.effects.push(ChargingEffect::NotifyRider {
            rider: r.rider,
            order,
            outcome: ChargingOutcome::Settled {
                stop: self.stop.unwrap_or(StopReason::Rider),
                energy_wh: self.energy_wh,
                amount: charged,
            },
        });
        // At a cabinet slot the charged battery waits for the rider.
        if let Some(ctx) = door_ctx(r) {
            if self.holds_battery() {
                let until = after(now, r.policy.collect_timeout_s);
                out.events.push(ChargingEvent::AwaitingCollection { until });
            } else {
                self.end_doors(out, &ctx, now);
            }
        }
        Ok(())
    }

    fn on_tick(&self, now: Timestamp, out: &mut Out) -> Result<(), ChargingError> {
        if self.phase == ChargingPhase::Idle {
            return Err(ChargingError::NotStarted);
        }
        let ctx = self.request.as_ref().and_then(door_ctx);
        if let Some(ctx) = &ctx {
            if let Some(o) = self.doors.on_tick(now, ctx, out) {
                return self.on_door(o, ctx, now, out);
            }
        }
        let Some(deadline) = self.deadline else {
            return Ok(());
        };
        if now < deadline {
            return Ok(());
        }
        let order = self.order();
        let alert = |out: &mut Out, alert| {
            out.effects
                .push(ChargingEffect::RaiseAlert { order, alert })
        };
        match self.phase {
            ChargingPhase::Starting => {
                alert(out, ChargingAlert::StuckStarting);
                out.effects.push(ChargingEffect::SendStop {
                    point: self.point()?,
                });
                self.not_charged(out, ChargingReason::StartTimeout, now, true);
            }
            ChargingPhase::Charging => {
                let offline_for = self
                    .offline_since
                    .map(|s| now.signed_duration_since(s).num_seconds());
                if offline_for.is_some() {
                    // the grace ran out: cannot reach the device, end with
                    // what was metered
                    alert(out, ChargingAlert::DeviceOffline);
                    self.stopped(out, StopReason::DeviceOffline, self.energy_wh, now);
                } else {
                    alert(out, ChargingAlert::NoMeterProgress);
                    self.stop_now(out, StopReason::NoProgress, now)?;
                }
            }
            ChargingPhase::Stopping => {
                alert(out, ChargingAlert::StuckStopping);
                self.stopped(
                    out,
                    self.stop.unwrap_or(StopReason::Remote),
                    self.energy_wh,
                    now,
                );
            }
            ChargingPhase::Collecting => {
                // the rider never came for the battery: lock the slot
                if let (Some(ctx), Some(slot)) = (&ctx, self.slot()) {
                    Doors::lock(ctx, slot, LockReason::NotTaken, out);
                    out.events.push(ChargingEvent::Uncollected { at: now });
                    self.end_doors(out, ctx, now);
                }
            }
            ChargingPhase::Idle
            | ChargingPhase::Pricing
            | ChargingPhase::Closed
            | ChargingPhase::Inserting
            | ChargingPhase::Uncollected => {}
        }
        Ok(())
    }
}

fn not_allowed(command: &str, p: ChargingPhase) -> ChargingError {
    ChargingError::NotAllowed {
        command: command.into(),
        phase: phase_name(p),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn t(s: i64) -> Timestamp {
        Utc.with_ymd_and_hms(2025, 3, 1, 20, 0, 0).unwrap() + Duration::seconds(s)
    }
    fn m(s: &str) -> Money {
        s.parse().unwrap()
    }
    const PILE: ChargePoint = ChargePoint::Pile {
        pile: 30_001,
        connector: 1,
    };
    fn req(auth: Authorization) -> ChargingRequest {
        ChargingRequest {
            order: 9,
            rider: RiderId(7),
            point: PILE,
            point_online: true,
            point_busy: false,
            auth,
            policy: ChargingPolicy::default(),
            battery: None,
        }
    }
    fn preauth() -> Authorization {
        Authorization::PreAuth { hold: m("30.00") }
    }

    struct Run {
        s: ChargingSession,
        log: Vec<ChargingEvent>,
    }
    impl Run {
        fn start(auth: Authorization) -> (Run, ChargingDecision) {
            let mut r = Run {
                s: ChargingSession::new(),
                log: Vec::new(),
            };
            let d = r.go(ChargingInput::Start(req(auth)), 0);
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
            d
        }
        fn dev(&mut self, e: ChargerEvent, at: i64) -> ChargingDecision {
            self.go(ChargingInput::Device(e), at)
        }
    }

    #[test]
    fn happy_path_captures_the_price_and_releases_the_rest() {
        let (mut r, d) = Run::start(preauth());
        assert_eq!(
            d.effects,
            vec![
                ChargingEffect::PlaceHold {
                    order: 9,
                    amount: m("30.00")
                },
                ChargingEffect::SendStart { point: PILE }
            ]
        );
        assert_eq!(d.next_deadline, Some(t(60)));
        r.dev(ChargerEvent::Started, 5);
        r.dev(ChargerEvent::Meter { energy_wh: 1000 }, 600);
        // stale and duplicated readings are ignored
        let d = r.dev(ChargerEvent::Meter { energy_wh: 900 }, 610);
        assert!(d.events.is_empty());
        r.dev(ChargerEvent::Meter { energy_wh: 3217 }, 1200);
        let d = r.go(
            ChargingInput::Stop {
                by: StopReason::Rider,
            },
            1300,
        );
        assert_eq!(d.effects, vec![ChargingEffect::SendStop { point: PILE }]);
        let d = r.dev(
            ChargerEvent::Stopped {
                reason: StopReason::Remote,
                energy_wh: 3217,
            },
            1302,
        );
        assert_eq!(
            d.effects,
            vec![ChargingEffect::RequestPrice {
                order: 9,
                energy_wh: 3217,
                started_at: t(5),
                stopped_at: t(1302)
            }]
        );
        let d = r.go(ChargingInput::Priced { amount: m("3.97") }, 1303);
        assert!(d.effects.contains(&ChargingEffect::CaptureHold {
            order: 9,
            amount: m("3.97")
        }));
        assert!(d.effects.contains(&ChargingEffect::SplitRevenue {
            order: 9,
            amount: m("3.97")
        }));
        assert_eq!(
            r.s.outcome(),
            Some(&ChargingOutcome::Settled {
                stop: StopReason::Rider,
                energy_wh: 3217,
                amount: m("3.97")
            })
        );
        // duplicated price answer: nothing
        let d = r.go(ChargingInput::Priced { amount: m("3.97") }, 1304);
        assert!(d.effects.is_empty() && d.events.is_empty());
        // refund once
        let refund = ChargingInput::Refund {
            operator: "fin".into(),
            reason: "meter fault".into(),
        };
        let d = r.go(refund.clone(), 1400);
        assert_eq!(
            d.effects,
            vec![
                ChargingEffect::RefundPayment {
                    order: 9,
                    amount: m("3.97")
                },
                ChargingEffect::ReverseRevenue { order: 9 }
            ]
        );
        assert!(r.go(refund, 1401).effects.is_empty());
    }

    #[test]
    fn rejections() {
        for (edit, reason) in [
            (
                Box::new(|r: &mut ChargingRequest| r.point_online = false)
                    as Box<dyn Fn(&mut ChargingRequest)>,
                ChargingReason::PointOffline,
            ),
            (Box::new(|r| r.point_busy = true), ChargingReason::PointBusy),
            (
                Box::new(|r| {
                    r.auth = Authorization::Wallet {
                        hold: m("20"),
                        available: m("19.99"),
                    }
                }),
                ChargingReason::InsufficientBalance,
            ),
        ] {
            let mut q = req(preauth());
            edit(&mut q);
            let mut s = ChargingSession::new();
            let d = s.step(&ChargingInput::Start(q), t(0)).unwrap();
            assert_eq!(s.outcome(), Some(&ChargingOutcome::NotCharged { reason }));
            assert!(
                !d.effects
                    .iter()
                    .any(|e| matches!(e, ChargingEffect::PlaceHold { .. }))
            );
            assert!(s.is_finished());
        }
    }

    #[test]
    fn start_failed_and_start_timeout_release_the_hold() {
        let (mut r, _) = Run::start(preauth());
        let d = r.dev(ChargerEvent::StartFailed, 3);
        assert!(
            d.effects
                .contains(&ChargingEffect::ReleaseHold { order: 9 })
        );
        assert_eq!(
            r.s.outcome(),
            Some(&ChargingOutcome::NotCharged {
                reason: ChargingReason::StartFailed
            })
        );
        // a late start confirmation changes nothing
        assert!(r.dev(ChargerEvent::Started, 4).events.is_empty());

        let (mut r, _) = Run::start(preauth());
        assert!(r.go(ChargingInput::Tick, 59).events.is_empty());
        let d = r.go(ChargingInput::Tick, 60);
        assert!(d.effects.contains(&ChargingEffect::RaiseAlert {
            order: 9,
            alert: ChargingAlert::StuckStarting
        }));
        assert!(
            d.effects
                .contains(&ChargingEffect::ReleaseHold { order: 9 })
        );
    }

    #[test]
    fn rider_cancel_before_start_and_hold_rejected() {
        let (mut r, _) = Run::start(preauth());
        let d = r.go(
            ChargingInput::Stop {
                by: StopReason::Rider,
            },
            2,
        );
        assert!(
            d.effects
                .contains(&ChargingEffect::ReleaseHold { order: 9 })
        );
        let (mut r, _) = Run::start(preauth());
        let d = r.go(ChargingInput::HoldRejected, 1);
        assert!(
            !d.effects
                .contains(&ChargingEffect::ReleaseHold { order: 9 })
        );
        assert_eq!(
            r.s.outcome(),
            Some(&ChargingOutcome::NotCharged {
                reason: ChargingReason::HoldRejected
            })
        );
    }

    #[test]
    fn device_side_stops_full_fault_plug() {
        for reason in [StopReason::Full, StopReason::Fault, StopReason::PlugRemoved] {
            let (mut r, _) = Run::start(preauth());
            r.dev(ChargerEvent::Started, 1);
            r.dev(
                ChargerEvent::Stopped {
                    reason,
                    energy_wh: 500,
                },
                100,
            );
            assert_eq!(r.s.phase(), ChargingPhase::Pricing);
            r.go(ChargingInput::Priced { amount: m("0.60") }, 101);
            assert!(matches!(
                r.s.outcome(),
                Some(ChargingOutcome::Settled { stop, .. }) if *stop == reason
            ));
        }
    }

    #[test]
    fn balance_exhausted_and_remote_stop() {
        let (mut r, _) = Run::start(preauth());
        r.dev(ChargerEvent::Started, 1);
        r.go(
            ChargingInput::Stop {
                by: StopReason::BalanceExhausted,
            },
            50,
        );
        // the device's own reason does not override ours
        r.dev(
            ChargerEvent::Stopped {
                reason: StopReason::Remote,
                energy_wh: 100,
            },
            52,
        );
        r.go(ChargingInput::Priced { amount: m("30.00") }, 53);
        assert!(matches!(
            r.s.outcome(),
            Some(ChargingOutcome::Settled {
                stop: StopReason::BalanceExhausted,
                ..
            })
        ));
    }

    #[test]
    fn no_progress_then_stuck_stopping() {
        let (mut r, _) = Run::start(preauth());
        r.dev(ChargerEvent::Started, 0);
        r.dev(ChargerEvent::Meter { energy_wh: 10 }, 100);
        let d = r.go(ChargingInput::Tick, 1000);
        assert!(d.effects.contains(&ChargingEffect::RaiseAlert {
            order: 9,
            alert: ChargingAlert::NoMeterProgress
        }));
        assert_eq!(r.s.phase(), ChargingPhase::Stopping);
        let d = r.go(ChargingInput::Tick, 1060);
        assert!(d.effects.contains(&ChargingEffect::RaiseAlert {
            order: 9,
            alert: ChargingAlert::StuckStopping
        }));
        assert_eq!(r.s.phase(), ChargingPhase::Pricing);
        assert_eq!(r.s.energy_wh(), 10);
    }

    #[test]
    fn offline_too_long_ends_the_session() {
        let (mut r, _) = Run::start(preauth());
        r.dev(ChargerEvent::Started, 0);
        r.dev(ChargerEvent::Meter { energy_wh: 10 }, 10);
        let d = r.dev(ChargerEvent::Offline, 20);
        assert_eq!(d.next_deadline, Some(t(620)));
        // back online in time: the watch resets
        let d = r.dev(ChargerEvent::Online, 300);
        assert_eq!(d.next_deadline, Some(t(1200)));
        r.dev(ChargerEvent::Offline, 400);
        let d = r.go(ChargingInput::Tick, 1000);
        assert!(d.effects.contains(&ChargingEffect::RaiseAlert {
            order: 9,
            alert: ChargingAlert::DeviceOffline
        }));
        assert_eq!(r.s.phase(), ChargingPhase::Pricing);
    }

    #[test]
    fn zero_energy_is_never_charged() {
        let (mut r, _) = Run::start(preauth());
        r.dev(ChargerEvent::Started, 0);
        r.dev(
            ChargerEvent::Stopped {
                reason: StopReason::PlugRemoved,
                energy_wh: 0,
            },
            5,
        );
        let d = r.go(ChargingInput::Priced { amount: m("1.00") }, 6);
        assert!(
            d.effects
                .contains(&ChargingEffect::ReleaseHold { order: 9 })
        );
        assert!(
            !d.effects
                .iter()
                .any(|e| matches!(e, ChargingEffect::CaptureHold { .. }))
        );
    }

    #[test]
    fn price_above_the_hold_is_charged_directly_with_an_alert() {
        let (mut r, _) = Run::start(preauth());
        r.dev(ChargerEvent::Started, 0);
        r.dev(
            ChargerEvent::Stopped {
                reason: StopReason::Full,
                energy_wh: 40_000,
            },
            5,
        );
        let d = r.go(ChargingInput::Priced { amount: m("31.50") }, 6);
        assert!(d.effects.contains(&ChargingEffect::CaptureHold {
            order: 9,
            amount: m("30.00")
        }));
        assert!(d.effects.contains(&ChargingEffect::ChargeWallet {
            order: 9,
            amount: m("1.50")
        }));
    }

    #[test]
    fn package_sessions_consume_one_entitlement() {
        let (mut r, d) = Run::start(Authorization::Package {
            package: "pkg-5".into(),
        });
        assert!(
            !d.effects
                .iter()
                .any(|e| matches!(e, ChargingEffect::PlaceHold { .. }))
        );
        r.dev(ChargerEvent::Started, 0);
        r.dev(
            ChargerEvent::Stopped {
                reason: StopReason::Full,
                energy_wh: 800,
            },
            5,
        );
        let d = r.go(ChargingInput::Priced { amount: m("1.00") }, 6);
        assert_eq!(
            d.effects
                .iter()
                .filter(|e| matches!(e, ChargingEffect::ConsumeEntitlement { .. }))
                .count(),
            1
        );
    }

    #[test]
    fn errors() {
        let mut s = ChargingSession::new();
        assert_eq!(
            s.step(&ChargingInput::Tick, t(0)),
            Err(ChargingError::NotStarted)
        );
        let (mut r, _) = Run::start(preauth());
        let mut other = req(preauth());
        other.order = 10;
        assert_eq!(
            r.s.step(&ChargingInput::Start(other), t(1)),
            Err(ChargingError::AlreadyStarted { order: 9 })
        );
        assert!(matches!(
            r.s.step(&ChargingInput::Priced { amount: m("1") }, t(1)),
            Err(ChargingError::NotAllowed { .. })
        ));
        let mut bad = req(Authorization::PreAuth { hold: m("0") });
        bad.order = 11;
        assert!(matches!(
            ChargingSession::new().step(&ChargingInput::Start(bad), t(0)),
            Err(ChargingError::Invalid { .. })
        ));
        r.dev(ChargerEvent::Started, 0);
        r.dev(
            ChargerEvent::Stopped {
                reason: StopReason::Full,
                energy_wh: 1,
            },
            1,
        );
        assert!(matches!(
            r.s.step(&ChargingInput::Priced { amount: m("-1") }, t(2)),
            Err(ChargingError::Invalid { .. })
        ));
        let _ = r.go(ChargingInput::Tick, 3);
    }

    proptest::proptest! {
        /// Random device reports, commands and time: every session ends once
        /// its deadlines pass (and the host answers the price), the hold is
        /// settled exactly once, and nothing is charged without energy.
        #[test]
        fn sessions_always_close(ops in proptest::collection::vec(0u8..12, 0..40), wallet in proptest::bool::ANY) {
            let auth = if wallet { Authorization::Wallet { hold: m("20"), available: m("50") } } else { Authorization::Package { package: "pkg-1".into() } };
            let (mut r, _) = Run::start(auth);
            let mut now = 0i64;
            let mut energy = 0u64;
            let mut settles = 0usize;
            let count = |d: &ChargingDecision| d.effects.iter().filter(|e| matches!(e, ChargingEffect::CaptureHold { .. } | ChargingEffect::ReleaseHold { .. } | ChargingEffect::ConsumeEntitlement { .. })).count();
            for o in ops {
                now += 7;
                let input = match o {
                    0 => ChargingInput::Device(ChargerEvent::Started),
                    1 => ChargingInput::Device(ChargerEvent::StartFailed),
                    2 | 3 => { energy += 100; ChargingInput::Device(ChargerEvent::Meter { energy_wh: energy }) }
                    4 => ChargingInput::Device(ChargerEvent::Stopped { reason: StopReason::Full, energy_wh: energy }),
                    5 => ChargingInput::Device(ChargerEvent::Offline),
                    6 => ChargingInput::Device(ChargerEvent::Online),
                    7 => ChargingInput::Stop { by: StopReason::Rider },
                    8 => ChargingInput::Priced { amount: m("2.00") },
                    9 => { now += 700; ChargingInput::Tick }
                    10 => ChargingInput::Device(ChargerEvent::Meter { energy_wh: energy / 2 }),
                    _ => ChargingInput::HoldRejected,
                };
                if let Ok(d) = r.s.step(&input, t(now)) {
                    r.log.extend(d.events.iter().cloned());
                    settles += count(&d);
                    proptest::prop_assert_eq!(d.next_deadline, r.s.next_deadline());
                }
                proptest::prop_assert!(settles <= 1);
            }
            for _ in 0..6 {
                if r.s.phase() == ChargingPhase::Pricing {
                    let d = r.go(ChargingInput::Priced { amount: m("2.00") }, now);
                    settles += count(&d);
                }
                if let Some(dl) = r.s.next_deadline() {
                    now = now.max((dl - t(0)).num_seconds());
                    let d = r.go(ChargingInput::Tick, now);
                    settles += count(&d);
                }
            }
            proptest::prop_assert!(r.s.is_finished(), "{:?}", r.s.phase());
            proptest::prop_assert!(settles <= 1);
            if let Some(ChargingOutcome::Settled { energy_wh: 0, amount, .. }) = r.s.outcome() {
                proptest::prop_assert!(amount.is_zero());
            }
            proptest::prop_assert_eq!(ChargingSession::replay(&r.log), r.s.clone());
        }
    }
}

#[cfg(test)]
mod ledger_tests {
    use super::*;
    use crate::custody::Custody;
    use crate::executor::tests::{balance, balanced, books, config};
    use crate::executor::{Carried, Executor};
    use chrono::{TimeZone, Utc};

    fn t(s: i64) -> Timestamp {
        Utc.with_ymd_and_hms(2025, 3, 1, 20, 0, 0).unwrap() + Duration::seconds(s)
    }

    proptest::proptest! {
        /// Random charging sessions paid from the wallet, every effect
        /// carried out on the ledger: nothing fails, the ledger balances
        /// after every step, and at the end the hold is gone and the wallet
        /// paid exactly the settled amount.
        #[test]
        fn wallet_sessions_on_the_ledger(ops in proptest::collection::vec(0u8..10, 0..30)) {
            let mut ex = Executor::new(config(), Custody::new()).with_books(books());
            let mut s = ChargingSession::new();
            let rider = RiderId(7);
            let hold: Money = "20.00".parse().unwrap();
            let mut inputs = vec![ChargingInput::Start(ChargingRequest {
                order: 9,
                rider,
                point: ChargePoint::Pile { pile: 30_001, connector: 1 },
                point_online: true,
                point_busy: false,
                auth: Authorization::Wallet { hold, available: hold },
                policy: ChargingPolicy::default(),
                battery: None,
            })];
            let mut energy = 0;
            for o in ops {
                inputs.push(match o {
                    0 => ChargingInput::Device(ChargerEvent::Started),
                    1 => ChargingInput::Device(ChargerEvent::StartFailed),
                    2 | 3 => { energy += 250; ChargingInput::Device(ChargerEvent::Meter { energy_wh: energy }) }
                    4 => ChargingInput::Device(ChargerEvent::Stopped { reason: StopReason::Full, energy_wh: energy }),
                    5 => ChargingInput::Stop { by: StopReason::Rider },
                    6 => ChargingInput::Priced { amount: "1.23".parse().unwrap() },
                    7 => ChargingInput::Device(ChargerEvent::Offline),
                    8 => ChargingInput::Refund { operator: "fin".into(), reason: "r".into() },
                    _ => ChargingInput::Tick,
                });
            }
            let mut now = 0;
            let step = |s: &mut ChargingSession, ex: &mut Executor, i: &ChargingInput, now: i64| -> Result<(), proptest::test_runner::TestCaseError> {
                if let Ok(d) = s.step(i, t(now)) {
                    let c = ex.carry_out_charging(None, rider, &d.effects, t(now));
                    proptest::prop_assert!(c.iter().all(|c| !matches!(c, Carried::Failed { .. })), "{:?} -> {:?}", d.effects, c);
                }
                proptest::prop_assert!(balanced(ex));
                Ok(())
            };
            for i in &inputs {
                now += 400;
                step(&mut s, &mut ex, i, now)?;
            }
            for _ in 0..6 {
                if s.phase() == ChargingPhase::Pricing {
                    step(&mut s, &mut ex, &ChargingInput::Priced { amount: "1.23".parse().unwrap() }, now)?;
                }
                if let Some(dl) = s.next_deadline() {
                    now = now.max((dl - t(0)).num_seconds());
                    step(&mut s, &mut ex, &ChargingInput::Tick, now)?;
                }
            }
            proptest::prop_assert!(s.is_finished());
            proptest::prop_assert!(ex.books().unwrap().ledger().open_holds().is_empty());
            let paid = match s.outcome() {
                Some(ChargingOutcome::Settled { amount, .. }) if !s.refunded() => *amount,
                _ => Money::zero(hold.currency()),
            };
            proptest::prop_assert_eq!(balance(&ex, "7:wallet"), hold.checked_sub(paid).unwrap());
        }
    }
}

#[cfg(test)]
mod cabinet_tests;
#[cfg(test)]
mod props;
