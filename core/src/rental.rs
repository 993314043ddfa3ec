//! The battery rental (租电) as a pure state machine.
//!
//! Choose a package → identity verified (real name) → deposit paid or credit
//! hold granted (免押) → battery issued (from a cabinet slot, or handed over
//! at a store) → in use → renewed / expiring / overdue → returned (cabinet or
//! store) → inspected (fine, damaged, lost) → deposit refunded, deducted or
//! captured → closed. Freeze and unfreeze stop and restart the clock.
//! A faulty battery can be replaced under warranty while in use.
//!
//! Fees (documented rules, [`RentalTerms`]):
//! - overdue: nothing if returned within `grace_hours` after expiry;
//!   otherwise `overdue_daily_fee` × started days since expiry;
//! - freeze: `freeze_daily_fee` × started days frozen, per freeze;
//! - damage: the amount the inspection states;
//! - all fees are settled at close against the deposit (deducted, or the
//!   credit hold captured for them); anything above the deposit is charged
//!   to the wallet.
//!
//! Same shape as [`crate::swap`]: `handle` decides, `apply` folds, `step`
//! does both; replaying the events rebuilds the rental.
//!
//! At a cabinet the machine drives the doors through the shared
//! [`crate::door`] rules. Issue ([`RentalInput::IssueAtCabinet`]): the best
//! full battery of an allowed model is chosen, its door opens
//! ([`RentalPhase::Issuing`]); only once it is taken is the rental in use
//! (custody slot → rider). Not taken: reopen once, then the slot is locked
//! with an alert and nothing is issued; a failed door tries the next
//! battery. Return ([`RentalInput::ReturnAtCabinet`]): an empty slot opens
//! ([`RentalPhase::Returning`]); the battery inserted must be the rented one
//! (custody rider → slot, then the same return as at a store: fees,
//! inspection); a faulty or hot one is accepted and its slot quarantined; a
//! wrong or unreadable battery is handed back (locked as foreign if left)
//! and the rental continues; nothing inserted or a failed door (after the
//! retries) also leaves the rental as it was. Store hand-over stays the
//! staff's [`RentalInput::Issue`] / [`RentalInput::Return`].

use chrono::Duration;
use serde::{Deserialize, Serialize};

use crate::cabinet::{CabinetEvent, CabinetSnapshot};
use crate::custody::{
    CabinetId, Cause, Location, MoveId, MoveRequest, Origin, RiderId, SlotNo, Timestamp,
};
use crate::door::{
    Candidate, DoorAlert, DoorCtx, DoorEffect, DoorEvent, DoorNotice, DoorOp, DoorOutcome,
    DoorPolicy, DoorSink, Doors, LockReason, Quarantine, after, empty_slots, full_batteries,
};
use crate::money::{Money, Rounding};
use crate::numbering::DeviceNo;
use rust_decimal::Decimal;

/// The rules of the rental package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RentalTerms {
    /// The rental package.
    pub package: u64,
    /// Rental days bought.
    pub days: u32,
    /// The deposit.
    pub deposit: Money,
    /// Fee per started overdue day.
    pub overdue_daily_fee: Money,
    /// Hours after expiry without an overdue fee.
    pub grace_hours: u32,
    /// Fee per started frozen day.
    pub freeze_daily_fee: Money,
    /// Hours before expiry to tell the rider.
    pub expiring_notice_hours: u32,
    /// Days overdue after which the rental defaults (deposit captured).
    pub default_after_days: u32,
}

/// How the deposit is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DepositMode {
    /// Paid in money (held in the ledger).
    Paid,
    /// Waived against a credit line: a pending hold on it.
    CreditWaiver,
}

/// Everything needed to start a rental.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RentalRequest {
    /// The rental order.
    pub order: u64,
    /// The rider.
    pub rider: RiderId,
    /// Real-name verification passed.
    pub identity_verified: bool,
    /// The package rules.
    pub terms: RentalTerms,
    /// How the deposit is secured.
    pub deposit_mode: DepositMode,
}

/// The inspection result at return.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Inspection {
    /// Nothing wrong.
    Fine,
    /// Damaged: this much is deducted.
    Damaged {
        /// The damage fee.
        fee: Money,
    },
}

/// Where a rental is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RentalPhase {
    /// Not started.
    Idle,
    /// Waiting for the deposit or credit hold.
    AwaitingDeposit,
    /// Deposit secured; waiting for the battery to be handed over.
    AwaitingIssue,
    /// The rider has the battery.
    InUse,
    /// Frozen: the clock stands still.
    Frozen,
    /// Past expiry.
    Overdue,
    /// Returned; waiting for the inspection.
    Inspecting,
    /// Closed.
    Closed,
    /// At a cabinet: a full battery's door is open; waiting for it to be taken.
    Issuing,
    /// At a cabinet: an empty slot's door is open; waiting for the rented
    /// battery (or for a refused battery to be taken back).
    Returning,
}

/// Why a visit to a cabinet did not issue or take back the battery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CabinetFailure {
    /// The cabinet is offline.
    CabinetOffline,
    /// Another session runs at the cabinet.
    CabinetBusy,
    /// No full battery of an allowed model.
    NoFullBattery,
    /// No empty slot.
    NoEmptySlot,
    /// The doors tried did not open.
    DoorFailed,
    /// The battery was not taken, even after reopening once.
    NotTaken,
    /// Nothing was inserted in time.
    NotInserted,
    /// The inserted battery's number could not be read.
    BatteryNotRecognised,
    /// The inserted battery is not the rented one.
    BatteryNotRented,
}

/// Issue a battery from a cabinet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CabinetIssue {
    /// The cabinet as last seen.
    pub cabinet: CabinetSnapshot,
    /// Battery models the rental allows.
    pub allowed_models: Vec<String>,
    /// Door timeouts and what counts as a full battery.
    #[serde(default)]
    pub policy: DoorPolicy,
}

/// Return the rented battery into a cabinet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CabinetReturn {
    /// The cabinet as last seen.
    pub cabinet: CabinetSnapshot,
    /// Door timeouts and the temperature limit.
    #[serde(default)]
    pub policy: DoorPolicy,
}

/// How a rental ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RentalOutcome {
    /// Refused before anything was secured.
    Rejected {
        /// Why.
        reason: RentalReason,
    },
    /// Ended before the battery was issued (deposit returned if taken).
    Cancelled {
        /// Why.
        reason: RentalReason,
    },
    /// Returned and settled.
    Returned {
        /// Deducted from the deposit (or captured from the credit hold).
        deducted: Money,
        /// Refunded (or voided) part of the deposit.
        refunded: Money,
        /// Charged to the wallet above the deposit.
        charged: Money,
    },
    /// Lost, or overdue past the default limit: the deposit was captured.
    Lost {
        /// Charged to the wallet above the deposit.
        charged: Money,
    },
}

/// Why a rental was refused or cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RentalReason {
    /// No real-name verification.
    IdentityNotVerified,
    /// The deposit or credit hold failed.
    DepositFailed,
    /// The rider cancelled before the battery was issued.
    CancelledByRider,
    /// Overdue beyond the default limit.
    Defaulted,
    /// Staff declared the battery lost.
    DeclaredLost,
}

/// What a deposit deduction is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Deduction {
    /// Unpaid fees (overdue, freeze).
    Fees,
    /// Damage found at the inspection (with any fees).
    Damage,
    /// A lost battery, or a default.
    Loss,
}

/// Kinds of rider notices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RentalNotice {
    /// Expires soon.
    Expiring,
    /// Expired: overdue fees run.
    Overdue,
    /// Closed.
    Closed,
    /// A cabinet did not issue the battery (the rental still waits for it).
    IssueFailed {
        /// Why.
        reason: CabinetFailure,
    },
    /// A cabinet did not take the battery back (the rental continues).
    ReturnFailed {
        /// Why.
        reason: CabinetFailure,
    },
}

/// Work for the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RentalEffect {
    /// Collect the deposit (idempotent by order).
    CollectDeposit {
        /// The order.
        order: u64,
        /// The amount.
        amount: Money,
    },
    /// Place a pending hold on the credit line (免押).
    PlaceCreditHold {
        /// The order.
        order: u64,
        /// The amount.
        amount: Money,
    },
    /// Deduct from the held deposit (to revenue).
    DeductDeposit {
        /// The order.
        order: u64,
        /// The amount.
        amount: Money,
        /// What for.
        reason: Deduction,
    },
    /// Refund (part of) the deposit to the rider.
    RefundDeposit {
        /// The order.
        order: u64,
        /// The amount.
        amount: Money,
    },
    /// Capture (part of) the credit hold; the rest is voided.
    CaptureCreditHold {
        /// The order.
        order: u64,
        /// The amount.
        amount: Money,
        /// What for.
        reason: Deduction,
    },
    /// Void the whole credit hold.
    VoidCreditHold {
        /// The order.
        order: u64,
    },
    /// Charge the wallet (fees above the deposit).
    ChargeWallet {
        /// The order.
        order: u64,
        /// The amount.
        amount: Money,
    },
    /// Record a custody movement.
    CustodyMove(MoveRequest),
    /// Tell the rider.
    NotifyRider {
        /// The rider.
        rider: RiderId,
        /// The order.
        order: u64,
        /// What.
        notice: RentalNotice,
    },
    /// Raise an alert: the rental defaulted with the battery out.
    RaiseAlert {
        /// The order.
        order: u64,
        /// The battery still with the rider.
        battery: Option<DeviceNo>,
    },
    /// Command a cabinet door open.
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

/// The facts of a rental.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RentalEvent {
    /// Requested; deposit asked for.
    Requested {
        /// The request.
        request: RentalRequest,
        /// When.
        at: Timestamp,
    },
    /// Refused at the checks.
    Rejected {
        /// The order.
        order: u64,
        /// Why.
        reason: RentalReason,
    },
    /// The deposit (or credit hold) is secured.
    DepositSecured,
    /// Ended before issue.
    Cancelled {
        /// Why.
        reason: RentalReason,
    },
    /// The battery was handed over.
    Issued {
        /// The battery.
        battery: DeviceNo,
        /// When.
        at: Timestamp,
        /// Rental end.
        expires_at: Timestamp,
    },
    /// Renewed.
    Renewed {
        /// Days added.
        days: u32,
        /// New end.
        expires_at: Timestamp,
    },
    /// The rider was told the rental expires soon.
    ExpiringNotified,
    /// Expired.
    BecameOverdue,
    /// Frozen.
    Frozen {
        /// When.
        at: Timestamp,
    },
    /// Unfrozen; the end moves by the frozen time and the fee is due.
    Unfrozen {
        /// New end.
        expires_at: Timestamp,
        /// The freeze fee.
        fee: Money,
    },
    /// A faulty battery was replaced under warranty.
    Replaced {
        /// The new battery.
        battery: DeviceNo,
    },
    /// The battery came back.
    Returned {
        /// When.
        at: Timestamp,
        /// The overdue fee due.
        overdue_fee: Money,
    },
    /// The battery was declared lost and written off in custody.
    WrittenOff,
    /// Settled and closed.
    Closed {
        /// How.
        outcome: RentalOutcome,
        /// When.
        at: Timestamp,
    },
    /// A fact about the doors and slots of a cabinet visit.
    Door(DoorEvent),
    /// A cabinet issue started: the candidates, best first (at most
    /// `door_retries + 1`).
    IssueStarted {
        /// The cabinet.
        cabinet: CabinetId,
        /// Full batteries of allowed models, best first.
        candidates: Vec<Candidate>,
        /// Door timeouts.
        policy: DoorPolicy,
    },
    /// The cabinet did not issue a battery; the rental waits for one.
    IssueFailed {
        /// Why.
        reason: CabinetFailure,
    },
    /// A cabinet return started: the empty slots to try (at most
    /// `door_retries + 1`).
    ReturnStarted {
        /// The cabinet.
        cabinet: CabinetId,
        /// Empty slots, in the order they will be tried.
        empties: Vec<SlotNo>,
        /// Door timeouts and the temperature limit.
        policy: DoorPolicy,
        /// The phase the rental resumes if the return fails.
        resume: RentalPhase,
    },
    /// The inserted battery was refused; its door reopened to hand it back.
    ReturnRefused {
        /// The slot.
        slot: SlotNo,
        /// Why.
        reason: CabinetFailure,
    },
    /// The cabinet did not take the battery back; the rental continues.
    ReturnFailed {
        /// Why.
        reason: CabinetFailure,
    },
}

/// What drives a rental.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RentalInput {
    /// Start.
    Start(RentalRequest),
    /// The host collected the deposit or placed the credit hold.
    DepositSecured,
    /// The deposit or credit hold failed.
    DepositFailed,
    /// The battery was handed over (taken from a slot or given at a store).
    Issue {
        /// The battery.
        battery: DeviceNo,
        /// Where it was.
        from: Location,
    },
    /// Renew for more days (paid by the host beforehand).
    Renew {
        /// Days.
        days: u32,
    },
    /// Freeze (approved by the package rules).
    Freeze,
    /// Unfreeze.
    Unfreeze,
    /// The battery came back.
    Return {
        /// Where it went (a cabinet slot or a store).
        to: Location,
    },
    /// The inspection after return.
    Inspect(Inspection),
    /// Staff declare the battery lost.
    DeclareLost,
    /// Replace the battery under warranty.
    Replace {
        /// The new battery.
        battery: DeviceNo,
        /// Where the new one comes from.
        from: Location,
        /// Where the faulty one goes (usually maintenance).
        old_to: Location,
    },
    /// The rider cancels before issue.
    Cancel,
    /// Time passed.
    Tick,
    /// Issue from a cabinet: choose a full battery and open its door.
    IssueAtCabinet(CabinetIssue),
    /// Return into a cabinet: choose an empty slot and open its door.
    ReturnAtCabinet(CabinetReturn),
    /// A report of the cabinet being visited.
    Cabinet(CabinetEvent),
}

/// The answer to one input.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RentalDecision {
    /// Facts.
    pub events: Vec<RentalEvent>,
    /// Work for the host.
    pub effects: Vec<RentalEffect>,
    /// When to tick next.
    pub next_deadline: Option<Timestamp>,
}

/// Errors of the rental machine. An error changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RentalError {
    /// Not started.
    #[error("the rental has not started: send start first")]
    NotStarted,
    /// Not allowed in this phase.
    #[error("{command} is not allowed while the rental is {phase}")]
    NotAllowed {
        /// The command.
        command: String,
        /// The phase.
        phase: String,
    },
    /// Bad input.
    #[error("invalid rental input: {field} {expected}")]
    Invalid {
        /// The field.
        field: String,
        /// What was expected.
        expected: String,
    },
}

/// One rental.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rental {
    request: Option<RentalRequest>,
    phase: RentalPhase,
    battery: Option<DeviceNo>,
    issued_at: Option<Timestamp>,
    expires_at: Option<Timestamp>,
    frozen_at: Option<Timestamp>,
    notified: bool,
    fees_due: Option<Money>,
    custody_seq: u32,
    outcome: Option<RentalOutcome>,
    /// The cabinet visit in progress (or the last one, for late messages).
    visit: Option<Visit>,
    /// The doors and slots of the visits at one cabinet.
    doors: Doors,
    /// The cabinet `doors` is about.
    doors_at: Option<CabinetId>,
}

/// A visit to a cabinet to take or give back the battery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Visit {
    cabinet: CabinetId,
    policy: DoorPolicy,
    /// Issue: the batteries to try, best first.
    candidates: Vec<Candidate>,
    /// Return: the empty slots to try.
    empties: Vec<SlotNo>,
    /// Doors opened for the battery so far.
    tries: u8,
    /// Return: the phase to resume if it fails.
    resume: RentalPhase,
    /// Return: why the inserted battery is being handed back.
    refused: Option<CabinetFailure>,
}

impl Default for Rental {
    fn default() -> Self {
        Rental::new()
    }
}

const DAY: i64 = 86_400;

fn add_secs(t: Timestamp, secs: i64) -> Timestamp {
    t.checked_add_signed(Duration::seconds(secs)).unwrap_or(t)
}

/// Started days in `secs` seconds (0 for none): 1 s is one started day.
pub fn started_days(secs: i64) -> i64 {
    if secs <= 0 { 0 } else { (secs + DAY - 1) / DAY }
}

fn phase_name(p: RentalPhase) -> String {
    format!("{p:?}").to_lowercase()
}

fn invalid(field: &str, e: impl core::fmt::Display) -> RentalError {
    RentalError::Invalid {
        field: field.into(),
        expected: e.to_string(),
    }
}

struct Out {
    events: Vec<RentalEvent>,
    effects: Vec<RentalEffect>,
    custody_seq: u32,
}

impl Rental {
    /// A rental that has not started.
    pub fn new() -> Self {
        Rental {
            request: None,
            phase: RentalPhase::Idle,
            battery: None,
            issued_at: None,
            expires_at: None,
            frozen_at: None,
            notified: false,
            fees_due: None,
            custody_seq: 0,
            outcome: None,
            visit: None,
            doors: Doors::new(),
            doors_at: None,
        }
    }

    /// Rebuilds a rental from its events.
    pub fn replay<'a, I: IntoIterator<Item = &'a RentalEvent>>(events: I) -> Self {
        let mut r = Rental::new();
        for e in events {
            r.apply(e);
        }
        r
    }

    /// The phase.
    pub fn phase(&self) -> RentalPhase {
        self.phase
    }
    /// The battery out with the rider.
    pub fn battery(&self) -> Option<DeviceNo> {
        self.battery
    }
    /// The rental end.
    pub fn expires_at(&self) -> Option<Timestamp> {
        self.expires_at
    }
    /// Fees accrued so far (freeze fees, overdue at return).
    pub fn fees_due(&self) -> Option<Money> {
        self.fees_due
    }
    /// How it ended.
    pub fn outcome(&self) -> Option<&RentalOutcome> {
        self.outcome.as_ref()
    }

    /// The next time a tick has something to do (the rental's clock, or a
    /// cabinet door's).
    pub fn next_deadline(&self) -> Option<Timestamp> {
        match (self.main_deadline(), self.doors.next_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The cabinet visit's doors and slots.
    pub fn doors(&self) -> &Doors {
        &self.doors
    }

    /// The rental's own clock: expiry notice, expiry, default.
    fn main_deadline(&self) -> Option<Timestamp> {
        let exp = self.expires_at?;
        let terms = &self.request.as_ref()?.terms;
        match self.phase {
            RentalPhase::InUse if !self.notified => Some(add_secs(
                exp,
                -i64::from(terms.expiring_notice_hours) * 3600,
            )),
            RentalPhase::InUse => Some(exp),
            RentalPhase::Overdue => Some(add_secs(exp, i64::from(terms.default_after_days) * DAY)),
            _ => None,
        }
    }

    /// Handles then applies one input.
    pub fn step(
        &mut self,
        input: &RentalInput,
        now: Timestamp,
    ) -> Result<RentalDecision, RentalError> {
        let d = self.handle(input, now)?;
        for e in &d.events {
            self.apply(e);
        }
        Ok(d)
    }

    /// Folds one event in. Total.
    pub fn apply(&mut self, e: &RentalEvent) {
        match e {
            RentalEvent::Requested { request, .. } => {
                self.request = Some(request.clone());
                self.phase = RentalPhase::AwaitingDeposit;
                self.fees_due = Some(Money::zero(request.terms.deposit.currency()));
            }
            RentalEvent::Rejected { reason, .. } => {
                self.phase = RentalPhase::Closed;
                self.outcome = Some(RentalOutcome::Rejected { reason: *reason });
            }
            RentalEvent::DepositSecured => self.phase = RentalPhase::AwaitingIssue,
            RentalEvent::Cancelled { reason } => {
                self.phase = RentalPhase::Closed;
                self.outcome = Some(RentalOutcome::Cancelled { reason: *reason });
            }
            RentalEvent::Issued {
                battery,
                at,
                expires_at,
            } => {
                self.battery = Some(*battery);
                self.issued_at = Some(*at);
                self.expires_at = Some(*expires_at);
                self.phase = RentalPhase::InUse;
                self.custody_seq = self.custody_seq.saturating_add(1);
            }
            RentalEvent::Renewed { expires_at, .. } => {
                self.expires_at = Some(*expires_at);
                self.notified = false;
                if self.phase == RentalPhase::Overdue {
                    self.phase = RentalPhase::InUse;
                }
            }
            RentalEvent::ExpiringNotified => self.notified = true,
            RentalEvent::BecameOverdue => self.phase = RentalPhase::Overdue,
            RentalEvent::Frozen { at } => {
                self.phase = RentalPhase::Frozen;
                self.frozen_at = Some(*at);
            }
            RentalEvent::Unfrozen { expires_at, fee } => {
                self.phase = RentalPhase::InUse;
                self.frozen_at = None;
                self.expires_at = Some(*expires_at);
                self.fees_due = self.fees_due.and_then(|f| f.checked_add(*fee).ok());
            }
            RentalEvent::Replaced { battery } => {
                self.battery = Some(*battery);
                self.custody_seq = self.custody_seq.saturating_add(2);
            }
            RentalEvent::Returned { overdue_fee, .. } => {
                self.phase = RentalPhase::Inspecting;
                self.fees_due = self.fees_due.and_then(|f| f.checked_add(*overdue_fee).ok());
                self.custody_seq = self.custody_seq.saturating_add(1);
            }
            RentalEvent::WrittenOff => {
                self.battery = None;
                self.custody_seq = self.custody_seq.saturating_add(1);
            }
            RentalEvent::Closed { outcome, .. } => {
                self.phase = RentalPhase::Closed;
                self.outcome = Some(outcome.clone());
            }
            RentalEvent::Door(e) => {
                self.custody_seq = self.custody_seq.saturating_add(e.custody_moves());
                if let (DoorEvent::Opened { op }, Some(v)) = (e, &mut self.visit) {
                    // a door opened for the battery (not to hand one back)
                    let counts = match self.phase {
                        RentalPhase::Issuing => op.kind == crate::door::OpKind::Take,
                        RentalPhase::Returning => op.kind == crate::door::OpKind::Put,
                        _ => false,
                    };
                    if counts {
                        v.tries = v.tries.saturating_add(1);
                    }
                }
                self.doors.apply(e);
            }
            RentalEvent::IssueStarted {
                cabinet,
                candidates,
                policy,
            } => {
                self.phase = RentalPhase::Issuing;
                self.visit = Some(Visit {
                    cabinet: *cabinet,
                    policy: policy.clone(),
                    candidates: candidates.clone(),
                    empties: Vec::new(),
                    tries: 0,
                    resume: RentalPhase::AwaitingIssue,
                    refused: None,
                });
                self.new_visit(*cabinet);
            }
            RentalEvent::IssueFailed { .. } => {
                if self.phase == RentalPhase::Issuing {
                    self.phase = RentalPhase::AwaitingIssue;
                }
            }
            RentalEvent::ReturnStarted {
                cabinet,
                empties,
                policy,
                resume,
            } => {
                self.phase = RentalPhase::Returning;
                self.visit = Some(Visit {
                    cabinet: *cabinet,
                    policy: policy.clone(),
                    candidates: Vec::new(),
                    empties: empties.clone(),
                    tries: 0,
                    resume: *resume,
                    refused: None,
                });
                self.new_visit(*cabinet);
            }
            RentalEvent::ReturnRefused { reason, .. } => {
                if let Some(v) = &mut self.visit {
                    v.refused = Some(*reason);
                }
            }
            RentalEvent::ReturnFailed { .. } => {
                if let (RentalPhase::Returning, Some(v)) = (self.phase, &mut self.visit) {
                    self.phase = v.resume;
                    v.refused = None;
                }
            }
        }
    }

    /// A visit keeps what the last visit at the same cabinet knew about its
    /// slots (late messages are still followed); another cabinet starts afresh.
    fn new_visit(&mut self, cabinet: CabinetId) {
        if self.doors_at != Some(cabinet) {
            self.doors = Doors::new();
            self.doors_at = Some(cabinet);
        }
    }

    fn req(&self) -> Result<&RentalRequest, RentalError> {
        self.request.as_ref().ok_or(RentalError::NotStarted)
    }

    fn not_allowed(&self, command: &str) -> RentalError {
        if self.phase == RentalPhase::Idle {
            RentalError::NotStarted
        } else {
            RentalError::NotAllowed {
                command: command.into(),
                phase: phase_name(self.phase),
            }
        }
    }

    fn custody(&self, out: &mut Out, battery: DeviceNo, from: Location, to: Location) {
        let order = self.request.as_ref().map_or(0, |r| r.order);
        out.effects.push(RentalEffect::CustodyMove(MoveRequest {
            id: MoveId::new(order, out.custody_seq),
            battery,
            from: Origin::Exactly { location: from },
            to,
            cause: Cause::Rental { order },
        }));
        out.custody_seq = out.custody_seq.saturating_add(1);
    }

    fn rider_loc(&self) -> Location {
        Location::Rider {
            rider: self.request.as_ref().map_or(RiderId(0), |r| r.rider),
        }
    }

    /// Decides what one input means, without changing the rental.
    pub fn handle(
        &self,
        input: &RentalInput,
        now: Timestamp,
    ) -> Result<RentalDecision, RentalError> {
        let mut out = Out {
            events: Vec::new(),
            effects: Vec::new(),
            custody_seq: self.custody_seq,
        };
        use RentalPhase as P;
        match (input, self.phase) {
            (RentalInput::Start(r), P::Idle) => {
                if r.terms.days == 0 {
                    return Err(invalid("terms.days", "at least one day"));
                }
                for (f, m) in [
                    ("terms.deposit", r.terms.deposit),
                    ("terms.overdue_daily_fee", r.terms.overdue_daily_fee),
                    ("terms.freeze_daily_fee", r.terms.freeze_daily_fee),
                ] {
                    m.ensure_non_negative(f).map_err(|e| invalid(f, e))?;
                }
                out.events.push(RentalEvent::Requested {
                    request: r.clone(),
                    at: now,
                });
                if !r.identity_verified {
                    out.events.push(RentalEvent::Rejected {
                        order: r.order,
                        reason: RentalReason::IdentityNotVerified,
                    });
                } else if r.terms.deposit.is_zero() {
                    out.events.push(RentalEvent::DepositSecured);
                } else {
                    out.effects.push(match r.deposit_mode {
                        DepositMode::Paid => RentalEffect::CollectDeposit {
                            order: r.order,
                            amount: r.terms.deposit,
                        },
                        DepositMode::CreditWaiver => RentalEffect::PlaceCreditHold {
                            order: r.order,
                            amount: r.terms.deposit,
                        },
                    });
                }
            }
            (RentalInput::Start(r), _)
                if self.request.as_ref().is_some_and(|c| c.order == r.order) => {}
            (RentalInput::DepositSecured, P::AwaitingDeposit) => {
                out.events.push(RentalEvent::DepositSecured)
            }
            (RentalInput::DepositSecured, P::AwaitingIssue) => {} // duplicate
            (RentalInput::DepositFailed, P::AwaitingDeposit) => {
                out.events.push(RentalEvent::Cancelled {
                    reason: RentalReason::DepositFailed,
                })
            }
            (RentalInput::Cancel, P::AwaitingDeposit | P::AwaitingIssue) => {
                // Release whatever was secured: while awaiting the deposit
                // the host may already have collected it (releasing a deposit
                // that never came is a no-op for the host).
                self.release_deposit(&mut out)?;
                out.events.push(RentalEvent::Cancelled {
                    reason: RentalReason::CancelledByRider,
                });
            }
            (RentalInput::Issue { battery, from }, P::AwaitingIssue) => {
                let days = i64::from(self.req()?.terms.days);
                let expires_at = add_secs(now, days * DAY);
                self.custody(&mut out, *battery, from.clone(), self.rider_loc());
                out.events.push(RentalEvent::Issued {
                    battery: *battery,
                    at: now,
                    expires_at,
                });
            }
            (RentalInput::Renew { days }, P::InUse | P::Overdue) => {
                if *days == 0 {
                    return Err(invalid("days", "at least one day"));
                }
                // Renewal extends from the current end, so overdue time is
                // not forgiven (it is already counted by the later return).
                let base = self.expires_at.unwrap_or(now);
                let expires_at = add_secs(base, i64::from(*days) * DAY);
                out.events.push(RentalEvent::Renewed {
                    days: *days,
                    expires_at,
                });
            }
            (RentalInput::Freeze, P::InUse) => out.events.push(RentalEvent::Frozen { at: now }),
            (RentalInput::Freeze, P::Frozen) | (RentalInput::Unfreeze, P::InUse) => {} // duplicates
            (RentalInput::Unfreeze, P::Frozen) => {
                let since = self.frozen_at.unwrap_or(now);
                let secs = now.signed_duration_since(since).num_seconds().max(0);
                let terms = &self.req()?.terms;
                let fee = terms
                    .freeze_daily_fee
                    .multiply(Decimal::from(started_days(secs)), Rounding::HalfUp)
                    .map_err(|e| invalid("freeze fee", e))?;
                let expires_at = add_secs(self.expires_at.unwrap_or(now), secs);
                out.events.push(RentalEvent::Unfrozen { expires_at, fee });
            }
            (
                RentalInput::Replace {
                    battery,
                    from,
                    old_to,
                },
                P::InUse | P::Overdue | P::Frozen,
            ) => {
                let Some(old) = self.battery else {
                    return Err(self.not_allowed("replace"));
                };
                if old == *battery {
                    return Err(invalid(
                        "battery",
                        "a battery other than the one being replaced",
                    ));
                }
                self.custody(&mut out, old, self.rider_loc(), old_to.clone());
                self.custody(&mut out, *battery, from.clone(), self.rider_loc());
                out.events.push(RentalEvent::Replaced { battery: *battery });
            }
            (RentalInput::Return { to }, P::InUse | P::Overdue | P::Frozen) => {
                let Some(b) = self.battery else {
                    return Err(self.not_allowed("return"));
                };
                let mut fee = Money::zero(self.req()?.terms.deposit.currency());
                let terms = &self.req()?.terms;
                let exp = self.expires_at.unwrap_or(now);
                let late = now.signed_duration_since(exp).num_seconds();
                if self.phase != P::Frozen && late > i64::from(terms.grace_hours) * 3600 {
                    fee = terms
                        .overdue_daily_fee
                        .multiply(Decimal::from(started_days(late)), Rounding::HalfUp)
                        .map_err(|e| invalid("overdue fee", e))?;
                }
                let mut frozen_fee = None;
                if self.phase == P::Frozen {
                    let secs = now
                        .signed_duration_since(self.frozen_at.unwrap_or(now))
                        .num_seconds()
                        .max(0);
                    frozen_fee = Some(
                        terms
                            .freeze_daily_fee
                            .multiply(Decimal::from(started_days(secs)), Rounding::HalfUp)
                            .map_err(|e| invalid("freeze fee", e))?,
                    );
                }
                if let Some(f) = frozen_fee {
                    out.events.push(RentalEvent::Unfrozen {
                        expires_at: exp,
                        fee: f,
                    });
                }
                self.custody(&mut out, b, self.rider_loc(), to.clone());
                out.events.push(RentalEvent::Returned {
                    at: now,
                    overdue_fee: fee,
                });
            }
            (RentalInput::Inspect(result), P::Inspecting) => {
                let mut extra = match result {
                    Inspection::Fine => None,
                    Inspection::Damaged { fee } => {
                        fee.ensure_non_negative("fee")
                            .map_err(|e| invalid("fee", e))?;
                        Some(*fee)
                    }
                };
                let due = self.fees_due.ok_or(RentalError::NotStarted)?;
                let total = match extra.take() {
                    Some(f) => due.checked_add(f).map_err(|e| invalid("fee", e))?,
                    None => due,
                };
                let outcome = self.settle(
                    &mut out,
                    total,
                    false,
                    matches!(result, Inspection::Damaged { .. }),
                )?;
                out.events.push(RentalEvent::Closed { outcome, at: now });
                self.notify(&mut out, RentalNotice::Closed);
            }
            (RentalInput::DeclareLost, P::InUse | P::Overdue | P::Frozen) => {
                if let Some(b) = self.battery {
                    self.custody(&mut out, b, self.rider_loc(), Location::Retired);
                    out.events.push(RentalEvent::WrittenOff);
                }
                let due = self.fees_due.ok_or(RentalError::NotStarted)?;
                let outcome = self.settle(&mut out, due, true, false)?;
                out.events.push(RentalEvent::Closed { outcome, at: now });
                self.notify(&mut out, RentalNotice::Closed);
            }
            (RentalInput::Tick, P::Idle) => return Err(RentalError::NotStarted),
            (RentalInput::Tick, _) => {
                self.door_tick(&mut out, now)?;
                self.on_tick(&mut out, now)?
            }
            (RentalInput::IssueAtCabinet(ci), P::AwaitingIssue) => {
                self.issue_at_cabinet(ci, now, &mut out)?
            }
            (RentalInput::ReturnAtCabinet(cr), P::InUse | P::Overdue | P::Frozen) => {
                self.return_at_cabinet(cr, now, &mut out)?
            }
            (RentalInput::Cabinet(_), P::Idle) => return Err(RentalError::NotStarted),
            (RentalInput::Cabinet(ev), _) => self.on_cabinet(ev, now, &mut out)?,
            (RentalInput::Inspect(_), P::Closed)
            | (RentalInput::Return { .. }, P::Inspecting | P::Closed)
            | (RentalInput::Issue { .. }, P::InUse)
            | (RentalInput::Cancel, P::Closed) => {} // duplicates and late messages
            (i, _) => {
                let name = match i {
                    RentalInput::Start(_) => "start",
                    RentalInput::DepositSecured => "deposit_secured",
                    RentalInput::DepositFailed => "deposit_failed",
                    RentalInput::Issue { .. } => "issue",
                    RentalInput::Renew { .. } => "renew",
                    RentalInput::Freeze => "freeze",
                    RentalInput::Unfreeze => "unfreeze",
                    RentalInput::Return { .. } => "return",
                    RentalInput::Inspect(_) => "inspect",
                    RentalInput::DeclareLost => "declare_lost",
                    RentalInput::Replace { .. } => "replace",
                    RentalInput::Cancel => "cancel",
                    RentalInput::Tick => "tick",
                    RentalInput::IssueAtCabinet(_) => "issue_at_cabinet",
                    RentalInput::ReturnAtCabinet(_) => "return_at_cabinet",
                    RentalInput::Cabinet(_) => "cabinet",
                };
                return Err(self.not_allowed(name));
            }
        }
        let mut probe = self.clone();
        for e in &out.events {
            probe.apply(e);
        }
        Ok(RentalDecision {
            events: out.events,
            effects: out.effects,
            next_deadline: probe.next_deadline(),
        })
    }

    fn notify(&self, out: &mut Out, notice: RentalNotice) {
        if let Some(r) = &self.request {
            out.effects.push(RentalEffect::NotifyRider {
                rider: r.rider,
                order: r.order,
                notice,
            });
        }
    }

    fn release_deposit(&self, out: &mut Out) -> Result<(), RentalError> {
        let r = self.req()?;
        if r.terms.deposit.is_zero() {
            return Ok(());
        }
        out.effects.push(match r.deposit_mode {
            DepositMode::Paid => RentalEffect::RefundDeposit {
                order: r.order,
                amount: r.terms.deposit,
            },
            DepositMode::CreditWaiver => RentalEffect::VoidCreditHold { order: r.order },
        });
        Ok(())
    }

    /// Settles `total` fees against the deposit; `lost` captures it all.
    fn settle(
        &self,
        out: &mut Out,
        total: Money,
        lost: bool,
        damaged: bool,
    ) -> Result<RentalOutcome, RentalError> {
        let r = self.req()?;
        let reason = if lost {
            Deduction::Loss
        } else if damaged {
            Deduction::Damage
        } else {
            Deduction::Fees
        };
        let order = r.order;
        let deposit = r.terms.deposit;
        let err = |e| invalid("fees", e);
        let take = if lost {
            deposit
        } else {
            total.checked_min(deposit).map_err(err)?
        };
        let rest = deposit.checked_sub(take).map_err(err)?;
        let charged = total.checked_sub(deposit).map_err(err)?;
        let charged = if charged.is_positive() {
            charged
        } else {
            Money::zero(deposit.currency())
        };
        match r.deposit_mode {
            DepositMode::Paid => {
                if take.is_positive() {
                    out.effects.push(RentalEffect::DeductDeposit {
                        order,
                        amount: take,
                        reason,
                    });
                }
                if rest.is_positive() {
                    out.effects.push(RentalEffect::RefundDeposit {
                        order,
                        amount: rest,
                    });
                }
            }
            DepositMode::CreditWaiver => {
                if take.is_positive() {
                    out.effects.push(RentalEffect::CaptureCreditHold {
                        order,
                        amount: take,
                        reason,
                    });
                } else if deposit.is_positive() {
                    out.effects.push(RentalEffect::VoidCreditHold { order });
                }
            }
        }
        if charged.is_positive() {
            out.effects.push(RentalEffect::ChargeWallet {
                order,
                amount: charged,
            });
        }
        Ok(if lost {
            RentalOutcome::Lost { charged }
        } else {
            RentalOutcome::Returned {
                deducted: take,
                refunded: rest,
                charged,
            }
        })
    }

    fn on_tick(&self, out: &mut Out, now: Timestamp) -> Result<(), RentalError> {
        let Some(due) = self.main_deadline() else {
            return Ok(());
        };
        if now < due {
            return Ok(());
        }
        match self.phase {
            RentalPhase::InUse if !self.notified && self.expires_at.is_some_and(|e| now < e) => {
                out.events.push(RentalEvent::ExpiringNotified);
                self.notify(out, RentalNotice::Expiring);
            }
            RentalPhase::InUse => {
                out.events.push(RentalEvent::BecameOverdue);
                self.notify(out, RentalNotice::Overdue);
            }
            RentalPhase::Overdue => {
                // Defaulted: the deposit covers the loss; the battery stays
                // booked to the rider and operations are alerted.
                let r = self.req()?;
                let exp = self.expires_at.unwrap_or(now);
                let late = now.signed_duration_since(exp).num_seconds();
                let fee = r
                    .terms
                    .overdue_daily_fee
                    .multiply(Decimal::from(started_days(late)), Rounding::HalfUp)
                    .map_err(|e| invalid("overdue fee", e))?;
                let due = self.fees_due.ok_or(RentalError::NotStarted)?;
                let total = due.checked_add(fee).map_err(|e| invalid("fees", e))?;
                let outcome = self.settle(out, total, true, false)?;
                out.effects.push(RentalEffect::RaiseAlert {
                    order: r.order,
                    battery: self.battery,
                });
                out.events.push(RentalEvent::Closed { outcome, at: now });
                self.notify(out, RentalNotice::Closed);
            }
            _ => {}
        }
        Ok(())
    }
}

/// Door facts go into the rental decision as [`RentalEvent::Door`]; door
/// effects map onto the rental effects of the same name.
struct Sink<'a> {
    out: &'a mut Out,
    cabinet: CabinetId,
    order: u64,
}

impl DoorSink for Sink<'_> {
    fn event(&mut self, e: DoorEvent) {
        self.out.events.push(RentalEvent::Door(e));
    }
    fn effect(&mut self, e: DoorEffect) {
        self.out.effects.push(match e {
            DoorEffect::OpenDoor { cabinet, slot } => RentalEffect::OpenDoor { cabinet, slot },
            DoorEffect::LockSlot {
                cabinet,
                slot,
                reason,
            } => RentalEffect::LockSlot {
                cabinet,
                slot,
                reason,
            },
            DoorEffect::CustodyMove(m) => RentalEffect::CustodyMove(m),
            DoorEffect::Alert(alert) => RentalEffect::CabinetAlert {
                cabinet: self.cabinet,
                order: self.order,
                alert,
            },
        });
    }
    fn next_move(&mut self) -> u32 {
        let n = self.out.custody_seq;
        self.out.custody_seq = n.saturating_add(1);
        n
    }
}

/// Issue and return at a cabinet: the door work around the store paths.
impl Rental {
    fn sink<'a>(out: &'a mut Out, ctx: &DoorCtx) -> Sink<'a> {
        Sink {
            out,
            cabinet: ctx.cabinet,
            order: ctx.order,
        }
    }

    /// Who the door rules act for at `cabinet`.
    fn ctx_at(&self, cabinet: CabinetId, policy: &DoorPolicy) -> Result<DoorCtx, RentalError> {
        let r = self.req()?;
        Ok(DoorCtx {
            cabinet,
            order: r.order,
            rider: r.rider,
            rider_battery: self.battery,
            cause: Cause::Rental { order: r.order },
            close_timeout_s: policy.door_close_timeout_s,
        })
    }

    fn door_ctx(&self) -> Option<DoorCtx> {
        let v = self.visit.as_ref()?;
        self.ctx_at(v.cabinet, &v.policy).ok()
    }

    fn notify_door(&self, out: &mut Out, notice: DoorNotice) {
        if let Some(r) = &self.request {
            out.effects.push(RentalEffect::NotifyDoor {
                rider: r.rider,
                order: r.order,
                notice,
            });
        }
    }

    fn check_policy(p: &DoorPolicy) -> Result<(), RentalError> {
        if p.insert_timeout_s == 0 || p.take_timeout_s == 0 {
            return Err(invalid("policy timeouts", "at least one second"));
        }
        Ok(())
    }

    /// Why a cabinet cannot serve this rental now, if it cannot.
    fn unusable(&self, snap: &CabinetSnapshot) -> Result<Option<CabinetFailure>, RentalError> {
        let order = self.req()?.order;
        Ok(if !snap.online {
            Some(CabinetFailure::CabinetOffline)
        } else if snap.busy_with.is_some_and(|o| o != order) {
            Some(CabinetFailure::CabinetBusy)
        } else {
            None
        })
    }

    fn issue_at_cabinet(
        &self,
        ci: &CabinetIssue,
        now: Timestamp,
        out: &mut Out,
    ) -> Result<(), RentalError> {
        Rental::check_policy(&ci.policy)?;
        let snap = &ci.cabinet;
        let p = &ci.policy;
        let mut candidates = full_batteries(
            snap,
            &ci.allowed_models,
            p.min_full_soc,
            p.max_temperature_c,
            None,
        );
        // only the first `door_retries + 1` can ever be tried
        candidates.truncate(usize::from(p.door_retries).saturating_add(1));
        let failure = self.unusable(snap)?;
        let (Some(first), None) = (candidates.first().copied(), failure) else {
            let reason = failure.unwrap_or(CabinetFailure::NoFullBattery);
            out.events.push(RentalEvent::IssueFailed { reason });
            self.notify(out, RentalNotice::IssueFailed { reason });
            return Ok(());
        };
        out.events.push(RentalEvent::IssueStarted {
            cabinet: snap.cabinet,
            candidates,
            policy: p.clone(),
        });
        let ctx = self.ctx_at(snap.cabinet, p)?;
        self.open_take(out, &ctx, first, p, now);
        Ok(())
    }

    /// Opens a full battery's door: reopen once if it is not taken, then lock.
    fn open_take(
        &self,
        out: &mut Out,
        ctx: &DoorCtx,
        c: Candidate,
        p: &DoorPolicy,
        now: Timestamp,
    ) {
        let secs = p.take_timeout_s;
        let op = DoorOp::take(c.slot, Some(c.battery), secs, after(now, secs))
            .reopening_once()
            .locking_if_left(LockReason::NotTaken);
        Doors::open(ctx, op, &mut Rental::sink(out, ctx));
        self.notify_door(out, DoorNotice::TakeBattery { slot: c.slot });
    }

    fn return_at_cabinet(
        &self,
        cr: &CabinetReturn,
        now: Timestamp,
        out: &mut Out,
    ) -> Result<(), RentalError> {
        Rental::check_policy(&cr.policy)?;
        if self.battery.is_none() {
            return Err(self.not_allowed("return_at_cabinet"));
        }
        let snap = &cr.cabinet;
        let p = &cr.policy;
        let mut empties = empty_slots(snap);
        empties.truncate(usize::from(p.door_retries).saturating_add(1));
        let failure = self.unusable(snap)?;
        let (Some(first), None) = (empties.first().copied(), failure) else {
            let reason = failure.unwrap_or(CabinetFailure::NoEmptySlot);
            out.events.push(RentalEvent::ReturnFailed { reason });
            self.notify(out, RentalNotice::ReturnFailed { reason });
            return Ok(());
        };
        out.events.push(RentalEvent::ReturnStarted {
            cabinet: snap.cabinet,
            empties,
            policy: p.clone(),
            resume: self.phase,
        });
        let ctx = self.ctx_at(snap.cabinet, p)?;
        self.open_put(out, &ctx, first, p, now);
        Ok(())
    }

    fn open_put(&self, out: &mut Out, ctx: &DoorCtx, slot: SlotNo, p: &DoorPolicy, now: Timestamp) {
        let secs = p.insert_timeout_s;
        let op = DoorOp::put(slot, secs, after(now, secs));
        Doors::open(ctx, op, &mut Rental::sink(out, ctx));
        self.notify_door(out, DoorNotice::InsertBattery { slot });
    }

    fn on_cabinet(
        &self,
        ev: &CabinetEvent,
        now: Timestamp,
        out: &mut Out,
    ) -> Result<(), RentalError> {
        let Some(ctx) = self.door_ctx() else {
            return Err(RentalError::NotAllowed {
                command: "cabinet".into(),
                phase: format!("{} with no cabinet visit", phase_name(self.phase)),
            });
        };
        if ev.cabinet != ctx.cabinet {
            return Err(invalid(
                "cabinet",
                format!("reports of cabinet {}, the one visited", ctx.cabinet.0),
            ));
        }
        if let Some(o) = self
            .doors
            .on_device(ev, now, &ctx, &mut Rental::sink(out, &ctx))
        {
            self.on_door(o, &ctx, now, out)?;
        }
        Ok(())
    }

    fn door_tick(&self, out: &mut Out, now: Timestamp) -> Result<(), RentalError> {
        let Some(ctx) = self.door_ctx() else {
            return Ok(());
        };
        if let Some(o) = self.doors.on_tick(now, &ctx, &mut Rental::sink(out, &ctx)) {
            self.on_door(o, &ctx, now, out)?;
        }
        Ok(())
    }

    /// Carries out a store command (`Issue`, `Return`) as the rental would
    /// in `phase`, after this decision's events: the same events, fees and
    /// money effects, without its custody move (the door rules recorded the
    /// battery's movement already).
    fn as_at_store(
        &self,
        out: &mut Out,
        input: &RentalInput,
        phase: RentalPhase,
        now: Timestamp,
    ) -> Result<(), RentalError> {
        let mut probe = self.clone();
        for e in &out.events {
            probe.apply(e);
        }
        probe.phase = phase;
        let d = probe.handle(input, now)?;
        out.events.extend(d.events);
        out.effects.extend(
            d.effects
                .into_iter()
                .filter(|e| !matches!(e, RentalEffect::CustodyMove(_))),
        );
        Ok(())
    }

    /// The visit's door work is over: watch a door left open.
    fn end_doors(&self, out: &mut Out, ctx: &DoorCtx, now: Timestamp) {
        let mut d = self.doors.clone();
        for e in &out.events {
            if let RentalEvent::Door(e) = e {
                d.apply(e);
            }
        }
        let watch = d
            .open_after(|_| None)
            .then(|| after(now, ctx.close_timeout_s));
        out.events
            .push(RentalEvent::Door(DoorEvent::Ended { watch }));
    }

    fn fail_issue(&self, out: &mut Out, ctx: &DoorCtx, reason: CabinetFailure, now: Timestamp) {
        out.events.push(RentalEvent::IssueFailed { reason });
        self.notify(out, RentalNotice::IssueFailed { reason });
        self.end_doors(out, ctx, now);
    }

    fn fail_return(&self, out: &mut Out, ctx: &DoorCtx, reason: CabinetFailure, now: Timestamp) {
        out.events.push(RentalEvent::ReturnFailed { reason });
        self.notify(out, RentalNotice::ReturnFailed { reason });
        self.end_doors(out, ctx, now);
    }

    /// What a door outcome means for the visit.
    fn on_door(
        &self,
        o: DoorOutcome,
        ctx: &DoorCtx,
        now: Timestamp,
        out: &mut Out,
    ) -> Result<(), RentalError> {
        let Some(v) = &self.visit else {
            return Ok(());
        };
        let slot_loc = |slot| Location::Slot {
            cabinet: ctx.cabinet,
            slot,
        };
        match (o, self.phase) {
            // ----- issue
            (DoorOutcome::Taken { slot }, RentalPhase::Issuing) => {
                let Some(c) = v.candidates.iter().find(|c| c.slot == slot) else {
                    return Ok(());
                };
                out.events.push(RentalEvent::Door(DoorEvent::Done));
                let issue = RentalInput::Issue {
                    battery: c.battery,
                    from: slot_loc(slot),
                };
                self.as_at_store(out, &issue, RentalPhase::AwaitingIssue, now)?;
                self.end_doors(out, ctx, now);
            }
            (DoorOutcome::OpenFailed { slot }, RentalPhase::Issuing) => {
                // locked (door fault) by the door rules: try the next battery
                // candidates are tried in order: the first `tries` were opened
                let next = v
                    .candidates
                    .iter()
                    .skip(usize::from(v.tries))
                    .find(|c| c.slot != slot && !self.doors.is_locked(c.slot))
                    .copied();
                match next {
                    Some(c) if v.tries <= v.policy.door_retries => {
                        self.open_take(out, ctx, c, &v.policy, now)
                    }
                    _ => self.fail_issue(out, ctx, CabinetFailure::DoorFailed, now),
                }
            }
            // not taken after the reopen: locked by the door rules
            (DoorOutcome::Expired { .. }, RentalPhase::Issuing) => {
                self.fail_issue(out, ctx, CabinetFailure::NotTaken, now)
            }
            (DoorOutcome::Reopened { slot, .. }, RentalPhase::Issuing) => {
                self.notify_door(out, DoorNotice::TakeBattery { slot })
            }
            // ----- return
            (DoorOutcome::Inserted { slot, battery, bms }, RentalPhase::Returning) => {
                match battery {
                    Some(b) if Some(b) == self.battery => {
                        if let Some(q) =
                            bms.and_then(|m| Quarantine::of(&m, v.policy.max_temperature_c))
                        {
                            // accepted, but never handed out again until checked
                            let mut sink = Rental::sink(out, ctx);
                            Doors::lock(ctx, slot, LockReason::Quarantine, &mut sink);
                            sink.effect(DoorEffect::Alert(DoorAlert::BatteryQuarantined {
                                slot,
                                battery: b,
                                reason: q,
                            }));
                        }
                        out.events.push(RentalEvent::Door(DoorEvent::Done));
                        let ret = RentalInput::Return { to: slot_loc(slot) };
                        self.as_at_store(out, &ret, v.resume, now)?;
                        self.end_doors(out, ctx, now);
                    }
                    _ => {
                        let reason = if battery.is_none() {
                            CabinetFailure::BatteryNotRecognised
                        } else {
                            CabinetFailure::BatteryNotRented
                        };
                        out.events.push(RentalEvent::ReturnRefused { slot, reason });
                        let secs = v.policy.take_timeout_s;
                        let op = DoorOp::take(slot, battery, secs, after(now, secs))
                            .locking_on_fail(LockReason::ForeignBattery)
                            .locking_if_left(LockReason::ForeignBattery);
                        Doors::open(ctx, op, &mut Rental::sink(out, ctx));
                        self.notify_door(out, DoorNotice::TakeBackBattery { slot });
                    }
                }
            }
            // the refused battery taken back
            (DoorOutcome::Taken { .. }, RentalPhase::Returning) => {
                let reason = v.refused.unwrap_or(CabinetFailure::BatteryNotRented);
                self.fail_return(out, ctx, reason, now);
            }
            (DoorOutcome::OpenFailed { slot }, RentalPhase::Returning) if v.refused.is_none() => {
                // locked (door fault) by the door rules: try the next empty slot
                // empty slots are tried in order: the first `tries` were opened
                let next = v
                    .empties
                    .iter()
                    .copied()
                    .skip(usize::from(v.tries))
                    .find(|e| *e != slot && !self.doors.is_locked(*e));
                match next {
                    Some(n) if v.tries <= v.policy.door_retries => {
                        self.open_put(out, ctx, n, &v.policy, now)
                    }
                    _ => self.fail_return(out, ctx, CabinetFailure::DoorFailed, now),
                }
            }
            // the refused battery left behind (or its door failed): locked as foreign
            (
                DoorOutcome::OpenFailed { .. } | DoorOutcome::Expired { .. },
                RentalPhase::Returning,
            ) if v.refused.is_some() => {
                let reason = v.refused.unwrap_or(CabinetFailure::BatteryNotRented);
                self.fail_return(out, ctx, reason, now);
            }
            (DoorOutcome::Expired { .. }, RentalPhase::Returning) => {
                self.fail_return(out, ctx, CabinetFailure::NotInserted, now)
            }
            _ => {} // late: the door rules followed custody already
        }
        Ok(())
    }
}

#[cfg(test)]
mod cabinet_tests;
#[cfg(test)]
mod props;
#[cfg(test)]
mod tests;
