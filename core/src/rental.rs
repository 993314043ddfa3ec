//! The battery rental (租电) as a pure state machine.
//!
//! Choose a package → identity verified (real name) → package paid and
//! deposit paid or credit hold granted (免押) → battery issued (from a
//! cabinet slot, or handed over at a store) → in use → renewed / expiring /
//! overdue → returned (cabinet or store) → inspected (fine, damaged, lost) →
//! deposit refunded, deducted or captured → closed. Freeze and unfreeze
//! stop and restart the clock. A faulty battery can be replaced under
//! warranty while in use.
//!
//! **The package rules are the rental's rules.** A rental is bought as a
//! rental package: a time-limited [`crate::package::Product`] (`"rental":
//! true`, activation `first_use` so that it starts at the hand-over). The
//! rental keeps its own copy of the [`Package`] and drives it with
//! [`package::Command`]s, so its expiry, renewals (extend or stack), freezes
//! (length limits, fee per started day, automatic unfreeze) and overdue fees
//! (grace hours, fee per started day after the grace, cap) are the
//! package's decisions, never computed here:
//!
//! - start: the package is bought (`purchased`, pending) — effect
//!   [`RentalEffect::BuyPackage`], with the product's deposit;
//! - issue: `activate` — the term runs from the hand-over;
//! - renew: `renew`; freeze: `request_freeze` + `approve_freeze`;
//!   unfreeze: `unfreeze` (or the automatic unfreeze at its deadline);
//! - tick: `tick` when the package has a transition due (expiry, automatic
//!   unfreeze, the end of the grace period);
//! - return, loss, default: `end` — a freeze in force ends with its fee, an
//!   overdue fee is settled, the package closes (days left lapse);
//! - cancel before the hand-over: `cancel` — everything paid comes back.
//!
//! Every command the rental applies to its copy is also an effect,
//! [`RentalEffect::PackageCommand`] (numbered by `seq`), and its events are
//! recorded in [`RentalEvent::Package`], so replaying the rental rebuilds
//! the package too. `core::executor` forwards the same commands to the
//! package on the books ([`crate::books::BooksOp::Command`]), so both copies
//! decide the same events, and the books post the money: payments, the
//! revenue earned as days are used, fees.
//!
//! **Fees are settled once, at the close.** The package's fees (freeze and
//! overdue, from its events) accrue on the rental ([`Rental::fees_due`]; the
//! books keep them due too: the package is bought with `defer_fees`). At
//! the inspection (or a loss, a default, or a cancel) the rental settles
//! the deposit in one effect, [`RentalEffect::SettleDeposit`]: the fees come
//! out of the deposit first, then the damage (a loss takes the whole
//! deposit); the rest of a paid deposit is refunded (the refund is applied
//! for; finance reviews it), the rest of a waiver's hold voided; whatever
//! the deposit cannot cover is charged to the wallet.
//!
//! Operations rules that are not the package's sit in [`RentalPolicy`]: when
//! to tell the rider the rental expires soon, and after how many days
//! overdue the rental defaults (the battery is treated as lost).
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
//!
//! ```
//! use chargeswap_core::custody::{Location, RiderId, StoreId};
//! use chargeswap_core::numbering::DeviceNo;
//! use chargeswap_core::rental::*;
//! use chrono::{Duration, TimeZone, Utc};
//!
//! let t0 = Utc.with_ymd_and_hms(2025, 3, 1, 9, 0, 0).unwrap();
//! let request: RentalRequest = serde_json::from_str(r#"{
//!   "order": 500, "rider": 7, "identity_verified": true, "deposit_mode": "paid",
//!   "product": {"id": "rent-30", "price": "90.00", "validity": {"days": 30}, "rental": true,
//!     "deposit": "300.00", "activation": {"mode": "first_use"},
//!     "overdue": {"grace_hours": 24, "fee_per_day": "5.00"}}}"#)?;
//! let mut r = Rental::new();
//! r.step(&RentalInput::Start(request), t0)?; // BuyPackage: package rt500 and its deposit
//! r.step(&RentalInput::DepositSecured, t0)?;
//! let store = Location::Store { store: StoreId(3) };
//! let battery = DeviceNo::new(200_001)?;
//! r.step(&RentalInput::Issue { battery, from: store.clone() }, t0)?; // the package starts
//! assert_eq!(r.expires_at(), Some(t0 + Duration::days(30)));
//! // back 3 days late: 2 days after the 24 h grace x 5.00, the package's rule
//! r.step(&RentalInput::Return { to: store }, t0 + Duration::days(33))?;
//! assert_eq!(r.fees_due().unwrap().to_string(), "¥10.00");
//! let d = r.step(&RentalInput::Inspect(Inspection::Fine), t0 + Duration::days(33))?;
//! assert!(matches!(&d.effects[0], RentalEffect::SettleDeposit { deducted, refunded, .. }
//!     if deducted.to_string() == "¥10.00" && refunded.to_string() == "¥290.00"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use chrono::{Duration, FixedOffset, NaiveDateTime};
use serde::{Deserialize, Serialize};

use crate::cabinet::{CabinetEvent, CabinetSnapshot};
use crate::custody::{
    CabinetId, Cause, Location, MoveId, MoveRequest, Origin, RiderId, SlotNo, Timestamp,
};
use crate::door::{
    Candidate, DoorAlert, DoorCtx, DoorEffect, DoorEvent, DoorNotice, DoorOp, DoorOutcome,
    DoorPolicy, DoorSink, Doors, LockReason, Quarantine, after, empty_slots, full_batteries,
};
use crate::money::Money;
use crate::numbering::DeviceNo;
use crate::package::{
    self, Activation, DeadlineKind, Package, PackageError, Product, Purchase, RiderProfile, Status,
};
use crate::wallet::PaymentSource;

/// Operations rules of a rental that are not package rules (the package's
/// product holds validity, renewals, freezes, overdue fees and the deposit).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RentalPolicy {
    /// Hours before expiry to tell the rider (default 48).
    #[serde(default = "forty_eight")]
    pub expiring_notice_hours: u32,
    /// Days after expiry after which an unreturned battery counts as lost
    /// and the deposit is taken (default 30).
    #[serde(default = "thirty")]
    pub default_after_days: u32,
}

fn forty_eight() -> u32 {
    48
}

fn thirty() -> u32 {
    30
}

fn china() -> i32 {
    8 * 3600
}

impl Default for RentalPolicy {
    fn default() -> Self {
        RentalPolicy {
            expiring_notice_hours: forty_eight(),
            default_after_days: thirty(),
        }
    }
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
    /// The rental order. Its package is `rt{order}`.
    pub order: u64,
    /// The rider.
    pub rider: RiderId,
    /// Real-name verification passed.
    pub identity_verified: bool,
    /// The rental package's product: `"rental": true` and activation
    /// `first_use` without `auto_after_days` (the term starts at the
    /// hand-over); its `deposit` is the rental's deposit.
    pub product: Box<Product>,
    /// Amount paid for it (default: the product's price).
    #[serde(default)]
    pub paid: Option<Money>,
    /// How the package and its renewals are paid (default: the wallet).
    #[serde(default)]
    pub source: PaymentSource,
    /// The rider, for the product's eligibility rules.
    #[serde(default)]
    pub profile: RiderProfile,
    /// How the deposit is secured.
    pub deposit_mode: DepositMode,
    /// Notice and default rules.
    #[serde(default)]
    pub policy: RentalPolicy,
    /// Seconds east of UTC of the platform's local time, which the package
    /// sees (default 28 800, China; the books use the same).
    #[serde(default = "china")]
    pub utc_offset_s: i32,
}

/// The inspection result at return.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Inspection {
    /// Nothing wrong.
    Fine,
    /// Damaged: this much is charged (from the deposit first).
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
    /// Waiting for the package payment and the deposit or credit hold.
    AwaitingDeposit,
    /// Paid and secured; waiting for the battery to be handed over.
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
    /// Ended before the battery was issued (package and deposit returned).
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
    /// Lost, or overdue past the default limit: the deposit was taken.
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
    /// The payment, the deposit or the credit hold failed.
    DepositFailed,
    /// The rider cancelled before the battery was issued.
    CancelledByRider,
    /// Overdue beyond the default limit.
    Defaulted,
    /// Staff declared the battery lost.
    DeclaredLost,
}

/// Kinds of rider notices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RentalNotice {
    /// Expires soon.
    Expiring,
    /// Expired: overdue fees run after the grace period.
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
    /// Buy the rental package: pay it (`source`) and secure the product's
    /// deposit (paid, or a hold on the credit line), in one go; then send
    /// `deposit_secured` (or `deposit_failed`). On the books:
    /// `BooksOp::Purchase` with `defer_fees`.
    BuyPackage {
        /// The order.
        order: u64,
        /// The package (`rt{order}`).
        package: String,
        /// The purchase the rental's copy was built from.
        purchase: Box<Purchase>,
        /// How the deposit is secured.
        deposit: DepositMode,
        /// How the package is paid.
        source: PaymentSource,
    },
    /// Send this command to the rental package on the books: the rental's
    /// copy already applied it (idempotent by order and `seq`).
    PackageCommand {
        /// The order.
        order: u64,
        /// The package.
        package: String,
        /// The command's number in the rental (0, 1, 2, …).
        seq: u32,
        /// The command.
        command: Box<package::Command>,
        /// How a payment it makes (a renewal) is paid.
        source: PaymentSource,
    },
    /// Settle the deposit (idempotent by order): `fees` (the package's
    /// fees, from its events) then `damage` (or, when `lost`, all the rest)
    /// are taken from it; the rest is refunded (a paid deposit's refund is
    /// applied for) or voided (a waiver); what it cannot cover is charged
    /// to the wallet. The amounts are the rental's decision; the books
    /// check the fees against their own copy.
    SettleDeposit {
        /// The order.
        order: u64,
        /// The package.
        package: String,
        /// The package's fees due (freeze, overdue).
        fees: Money,
        /// Damage found at the inspection.
        damage: Money,
        /// The battery is lost (or the rental defaulted).
        lost: bool,
        /// Taken from the deposit (deducted or captured).
        deducted: Money,
        /// Refunded or voided.
        refunded: Money,
        /// Charged to the wallet above the deposit.
        charged: Money,
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
    /// Requested; package and deposit asked for.
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
    /// The rental package decided: the command sent to it (none for the
    /// purchase) and its events.
    Package {
        /// The command.
        command: Option<Box<package::Command>>,
        /// The package's events (local time).
        events: Vec<package::Event>,
    },
    /// The package is paid and the deposit (or credit hold) secured.
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
    /// Unfrozen; the end moved by the frozen time and the fee is due.
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
        /// The overdue fee the package settled.
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
    /// The host bought the package and secured the deposit or credit hold.
    DepositSecured,
    /// The payment, the deposit or the credit hold failed.
    DepositFailed,
    /// The battery was handed over (taken from a slot or given at a store).
    Issue {
        /// The battery.
        battery: DeviceNo,
        /// Where it was.
        from: Location,
    },
    /// Renew with the package's product (paid as the request says).
    Renew {
        /// Amount paid (default: the product's price).
        #[serde(default)]
        paid: Option<Money>,
    },
    /// Freeze for some days (approved by operations; the product's freeze
    /// policy decides whether it may).
    Freeze {
        /// Days asked for.
        days: u32,
        /// Why.
        #[serde(default)]
        reason: String,
    },
    /// Unfreeze early.
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
    /// The rental package refused (its rules decide: a freeze too long or
    /// too many, a renewal too early, an ineligible rider, a bad product).
    #[error("the rental package refused: {error}")]
    Package {
        /// The package's error.
        error: Box<PackageError>,
    },
}

impl From<PackageError> for RentalError {
    fn from(error: PackageError) -> RentalError {
        RentalError::Package {
            error: Box::new(error),
        }
    }
}

/// One rental.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rental {
    request: Option<RentalRequest>,
    phase: RentalPhase,
    battery: Option<DeviceNo>,
    issued_at: Option<Timestamp>,
    expires_at: Option<Timestamp>,
    /// The rental package, as the rental's own commands left it.
    package: Option<Box<Package>>,
    /// Package commands sent so far.
    package_seq: u32,
    notified: bool,
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

fn phase_name(p: RentalPhase) -> String {
    format!("{p:?}").to_lowercase()
}

fn invalid(field: &str, e: impl core::fmt::Display) -> RentalError {
    RentalError::Invalid {
        field: field.into(),
        expected: e.to_string(),
    }
}

/// The package id of rental order `order`.
pub fn package_id(order: u64) -> String {
    format!("rt{order}")
}

struct Out {
    events: Vec<RentalEvent>,
    effects: Vec<RentalEffect>,
    custody_seq: u32,
    /// The package as the decision's commands leave it.
    package: Option<Box<Package>>,
    package_seq: u32,
    /// The phase as the decision's package-driven events leave it.
    phase: RentalPhase,
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
            package: None,
            package_seq: 0,
            notified: false,
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
    /// The rental package's fees so far (freeze and overdue fees its events
    /// carried), settled with the deposit at the close.
    pub fn fees_due(&self) -> Option<Money> {
        self.package.as_ref().map(|p| p.fees_charged)
    }
    /// The rental package, as the rental's commands left it.
    pub fn package(&self) -> Option<&Package> {
        self.package.as_deref()
    }
    /// The request it started with.
    pub fn request(&self) -> Option<&RentalRequest> {
        self.request.as_ref()
    }
    /// How it ended.
    pub fn outcome(&self) -> Option<&RentalOutcome> {
        self.outcome.as_ref()
    }

    /// Seconds east of UTC of the package's local time (checked at start).
    fn offset_s(&self) -> i64 {
        i64::from(self.request.as_ref().map_or(china(), |r| r.utc_offset_s))
    }

    /// Local time (the package's) of `t`.
    fn local(&self, t: Timestamp) -> NaiveDateTime {
        let utc = t.naive_utc();
        utc.checked_add_signed(Duration::seconds(self.offset_s()))
            .unwrap_or(utc)
    }

    /// UTC of a local time.
    fn utc(&self, t: NaiveDateTime) -> Timestamp {
        t.checked_sub_signed(Duration::seconds(self.offset_s()))
            .unwrap_or(t)
            .and_utc()
    }

    /// When the package's next time-driven transition is due (UTC).
    fn package_deadline(&self) -> Option<(Timestamp, DeadlineKind)> {
        let d = self.package.as_ref()?.next_deadline()?;
        Some((self.utc(d.at), d.kind))
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
        let policy = &self.request.as_ref()?.policy;
        match self.phase {
            RentalPhase::InUse => {
                let exp = self.expires_at?;
                if self.notified {
                    Some(exp)
                } else {
                    Some(add_secs(
                        exp,
                        -i64::from(policy.expiring_notice_hours) * 3600,
                    ))
                }
            }
            RentalPhase::Frozen => self.package_deadline().map(|(t, _)| t),
            RentalPhase::Overdue => {
                let default =
                    add_secs(self.expires_at?, i64::from(policy.default_after_days) * DAY);
                Some(match self.package_deadline() {
                    Some((t, _)) if t < default => t,
                    _ => default,
                })
            }
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
            }
            RentalEvent::Rejected { reason, .. } => {
                self.phase = RentalPhase::Closed;
                self.outcome = Some(RentalOutcome::Rejected { reason: *reason });
            }
            RentalEvent::Package { command, events } => {
                for ev in events {
                    match (&mut self.package, ev) {
                        (_, package::Event::Purchased { .. }) => {
                            self.package = Package::from_purchased(ev).ok().map(Box::new);
                        }
                        // a log that does not fit is ignored, as elsewhere
                        (Some(p), _) => {
                            let _ = p.apply(ev);
                        }
                        (None, _) => {}
                    }
                }
                if command.is_some() {
                    self.package_seq = self.package_seq.saturating_add(1);
                }
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
            RentalEvent::Renewed { expires_at } => {
                self.expires_at = Some(*expires_at);
                self.notified = false;
                self.phase = RentalPhase::InUse;
            }
            RentalEvent::ExpiringNotified => self.notified = true,
            RentalEvent::BecameOverdue => self.phase = RentalPhase::Overdue,
            RentalEvent::Frozen { .. } => self.phase = RentalPhase::Frozen,
            RentalEvent::Unfrozen { expires_at, .. } => {
                self.phase = RentalPhase::InUse;
                self.expires_at = Some(*expires_at);
            }
            RentalEvent::Replaced { battery } => {
                self.battery = Some(*battery);
                self.custody_seq = self.custody_seq.saturating_add(2);
            }
            RentalEvent::Returned { .. } => {
                self.phase = RentalPhase::Inspecting;
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

    /// Sends `cmd` to the decision's copy of the package; when it decided
    /// anything, records the events and forwards the command to the host.
    fn drive(
        &self,
        out: &mut Out,
        cmd: package::Command,
        now: Timestamp,
    ) -> Result<Vec<package::Event>, RentalError> {
        let r = self.req()?;
        let local = self.local(now);
        let pkg = out.package.as_mut().ok_or(RentalError::NotStarted)?;
        let events = pkg.handle(&cmd, local)?;
        if events.is_empty() {
            return Ok(events);
        }
        out.effects.push(RentalEffect::PackageCommand {
            order: r.order,
            package: package_id(r.order),
            seq: out.package_seq,
            command: Box::new(cmd.clone()),
            source: r.source,
        });
        out.events.push(RentalEvent::Package {
            command: Some(Box::new(cmd)),
            events: events.clone(),
        });
        out.package_seq = out.package_seq.saturating_add(1);
        Ok(events)
    }

    /// The end of the decision's package, in UTC.
    fn package_end(&self, out: &Out) -> Result<Timestamp, RentalError> {
        let end = out
            .package
            .as_deref()
            .and_then(Package::ends_at)
            .ok_or(RentalError::NotStarted)?;
        Ok(self.utc(end))
    }

    /// The rental's own phase events for what the package decided.
    fn follow(
        &self,
        out: &mut Out,
        events: &[package::Event],
        now: Timestamp,
    ) -> Result<(), RentalError> {
        for e in events {
            match e {
                package::Event::Frozen { .. } => {
                    out.events.push(RentalEvent::Frozen { at: now });
                    out.phase = RentalPhase::Frozen;
                }
                package::Event::Unfrozen { fee, .. } if out.phase == RentalPhase::Frozen => {
                    let expires_at = self.package_end(out)?;
                    out.events.push(RentalEvent::Unfrozen {
                        expires_at,
                        fee: *fee,
                    });
                    out.phase = RentalPhase::InUse;
                }
                package::Event::Renewed { .. } => {
                    let expires_at = self.package_end(out)?;
                    out.events.push(RentalEvent::Renewed { expires_at });
                    out.phase = RentalPhase::InUse;
                }
                package::Event::Expired { .. } if out.phase == RentalPhase::InUse => {
                    out.events.push(RentalEvent::BecameOverdue);
                    self.notify(out, RentalNotice::Overdue);
                    out.phase = RentalPhase::Overdue;
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The rental package starts at the hand-over: its term from now.
    /// Returns the rental's end.
    fn start_package(&self, out: &mut Out, now: Timestamp) -> Result<Timestamp, RentalError> {
        let pending = out
            .package
            .as_ref()
            .is_some_and(|p| p.status == Status::Pending);
        if pending {
            self.drive(out, package::Command::Activate, now)?;
        }
        self.package_end(out)
    }

    /// The rental package ends now (the battery is back, lost or kept
    /// past the default): a freeze ends with its fee, an overdue fee is
    /// settled. Returns the overdue fee settled.
    fn end_package(&self, out: &mut Out, now: Timestamp) -> Result<Money, RentalError> {
        let open = out
            .package
            .as_ref()
            .is_some_and(|p| !matches!(p.status, Status::Closed | Status::Refunded));
        let mut fee = Money::zero(self.req()?.product.currency());
        if open {
            for e in self.drive(out, package::Command::End, now)? {
                if let package::Event::OverdueSettled { fee: f, .. } = e {
                    fee = fee.checked_add(f).map_err(|e| invalid("overdue fee", e))?;
                }
            }
        }
        Ok(fee)
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
            package: self.package.clone(),
            package_seq: self.package_seq,
            phase: self.phase,
        };
        use RentalPhase as P;
        match (input, self.phase) {
            (RentalInput::Start(r), P::Idle) => self.start(&mut out, r, now)?,
            (RentalInput::Start(r), _)
                if self.request.as_ref().is_some_and(|c| c.order == r.order) => {}
            (RentalInput::DepositSecured, P::AwaitingDeposit) => {
                out.events.push(RentalEvent::DepositSecured)
            }
            (RentalInput::DepositSecured, P::AwaitingIssue) => {} // duplicate
            (RentalInput::DepositFailed, P::AwaitingDeposit) => {
                // the purchase failed on the books: nothing to give back
                out.events.push(RentalEvent::Cancelled {
                    reason: RentalReason::DepositFailed,
                })
            }
            (RentalInput::Cancel, P::AwaitingDeposit | P::AwaitingIssue) => {
                // Give back whatever was secured: while awaiting the deposit
                // the host may already have bought the package (cancelling
                // a purchase that never came is a no-op for the host).
                let pending = out
                    .package
                    .as_ref()
                    .is_some_and(|p| p.status == Status::Pending);
                if pending {
                    self.drive(&mut out, package::Command::Cancel, now)?;
                }
                self.settle(&mut out, false, None)?;
                out.events.push(RentalEvent::Cancelled {
                    reason: RentalReason::CancelledByRider,
                });
            }
            (RentalInput::Issue { battery, from }, P::AwaitingIssue) => {
                let expires_at = self.start_package(&mut out, now)?;
                self.custody(&mut out, *battery, from.clone(), self.rider_loc());
                out.events.push(RentalEvent::Issued {
                    battery: *battery,
                    at: now,
                    expires_at,
                });
            }
            (RentalInput::Renew { paid }, P::InUse | P::Overdue) => {
                let r = self.req()?;
                let cmd = package::Command::Renew {
                    renewal_id: format!("{}-r{}", package_id(r.order), out.package_seq),
                    paid: *paid,
                    rider: r.profile.clone(),
                };
                let events = self.drive(&mut out, cmd, now)?;
                self.follow(&mut out, &events, now)?;
            }
            (RentalInput::Freeze { days, reason }, P::InUse) => {
                let cmd = package::Command::RequestFreeze {
                    days: *days,
                    reason: reason.clone(),
                };
                let mut events = self.drive(&mut out, cmd, now)?;
                events.extend(self.drive(&mut out, package::Command::ApproveFreeze, now)?);
                self.follow(&mut out, &events, now)?;
            }
            (RentalInput::Freeze { .. }, P::Frozen) | (RentalInput::Unfreeze, P::InUse) => {} // duplicates
            (RentalInput::Unfreeze, P::Frozen) => {
                // past the freeze's own end it has already ended by itself
                let cmd = match self.package_deadline() {
                    Some((t, DeadlineKind::Unfreeze)) if t <= now => package::Command::Tick,
                    _ => package::Command::Unfreeze,
                };
                let events = self.drive(&mut out, cmd, now)?;
                self.follow(&mut out, &events, now)?;
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
                let overdue_fee = self.end_package(&mut out, now)?;
                self.custody(&mut out, b, self.rider_loc(), to.clone());
                out.events.push(RentalEvent::Returned {
                    at: now,
                    overdue_fee,
                });
            }
            (RentalInput::Inspect(result), P::Inspecting) => {
                let damage = match result {
                    Inspection::Fine => None,
                    Inspection::Damaged { fee } => {
                        fee.ensure_non_negative("fee")
                            .map_err(|e| invalid("fee", e))?;
                        Some(*fee)
                    }
                };
                let outcome = self.settle(&mut out, false, damage)?;
                out.events.push(RentalEvent::Closed { outcome, at: now });
                self.notify(&mut out, RentalNotice::Closed);
            }
            (RentalInput::DeclareLost, P::InUse | P::Overdue | P::Frozen) => {
                if let Some(b) = self.battery {
                    self.custody(&mut out, b, self.rider_loc(), Location::Retired);
                    out.events.push(RentalEvent::WrittenOff);
                }
                self.end_package(&mut out, now)?;
                let outcome = self.settle(&mut out, true, None)?;
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
                    RentalInput::Freeze { .. } => "freeze",
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

    /// A new rental: checks the request, buys the package (on the rental's
    /// copy, and as an effect), unless the rider is not verified.
    fn start(&self, out: &mut Out, r: &RentalRequest, now: Timestamp) -> Result<(), RentalError> {
        if !r.product.rental {
            return Err(invalid(
                "product.rental",
                "true: a rental is bought as a rental package",
            ));
        }
        if r.product.activation
            != (Activation::FirstUse {
                auto_after_days: None,
            })
        {
            return Err(invalid(
                "product.activation",
                "{\"mode\": \"first_use\"} without auto_after_days: the term starts at the hand-over",
            ));
        }
        let offset = FixedOffset::east_opt(r.utc_offset_s)
            .ok_or_else(|| invalid("utc_offset_s", "within ±86,399 seconds"))?;
        let purchase = Purchase {
            package_id: package_id(r.order),
            rider_id: r.rider.0.to_string(),
            product: (*r.product).clone(),
            paid: r.paid,
            rider: r.profile.clone(),
        };
        let local = now.with_timezone(&offset).naive_local();
        let (pkg, events) = Package::purchase(&purchase, local)?;
        out.events.push(RentalEvent::Requested {
            request: r.clone(),
            at: now,
        });
        if !r.identity_verified {
            out.events.push(RentalEvent::Rejected {
                order: r.order,
                reason: RentalReason::IdentityNotVerified,
            });
            return Ok(());
        }
        out.events.push(RentalEvent::Package {
            command: None,
            events,
        });
        out.effects.push(RentalEffect::BuyPackage {
            order: r.order,
            package: package_id(r.order),
            purchase: Box::new(purchase),
            deposit: r.deposit_mode,
            source: r.source,
        });
        let nothing_to_pay =
            pkg.paid_total.is_zero() && r.product.deposit.is_none_or(|d| d.is_zero());
        out.package = Some(Box::new(pkg));
        if nothing_to_pay {
            out.events.push(RentalEvent::DepositSecured);
        }
        Ok(())
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

    /// Settles the deposit against the package's fees and `damage` (`lost`
    /// takes all of it): fees first, then the damage; what the deposit
    /// cannot cover is charged.
    fn settle(
        &self,
        out: &mut Out,
        lost: bool,
        damage: Option<Money>,
    ) -> Result<RentalOutcome, RentalError> {
        let r = self.req()?;
        let zero = Money::zero(r.product.currency());
        let fees = out.package.as_ref().map_or(zero, |p| p.fees_charged);
        let damage = damage.unwrap_or(zero);
        let deposit = r.product.deposit.unwrap_or(zero);
        let err = |e| invalid("fees", e);
        let fee_take = fees.checked_min(deposit).map_err(err)?;
        let left = deposit.checked_sub(fee_take).map_err(err)?;
        let other = if lost {
            left
        } else {
            damage.checked_min(left).map_err(err)?
        };
        let deducted = fee_take.checked_add(other).map_err(err)?;
        let refunded = deposit.checked_sub(deducted).map_err(err)?;
        let mut charged = fees.checked_sub(fee_take).map_err(err)?;
        if !lost {
            let above = damage.checked_sub(other).map_err(err)?;
            charged = charged.checked_add(above).map_err(err)?;
        }
        out.effects.push(RentalEffect::SettleDeposit {
            order: r.order,
            package: package_id(r.order),
            fees,
            damage,
            lost,
            deducted,
            refunded,
            charged,
        });
        Ok(if lost {
            RentalOutcome::Lost { charged }
        } else {
            RentalOutcome::Returned {
                deducted,
                refunded,
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
        let package_due = self.package_deadline().is_some_and(|(t, _)| t <= now);
        match self.phase {
            RentalPhase::InUse if !self.notified && self.expires_at.is_some_and(|e| now < e) => {
                out.events.push(RentalEvent::ExpiringNotified);
                self.notify(out, RentalNotice::Expiring);
            }
            RentalPhase::InUse | RentalPhase::Frozen if package_due => {
                let events = self.drive(out, package::Command::Tick, now)?;
                self.follow(out, &events, now)?;
            }
            RentalPhase::Overdue => {
                let r = self.req()?;
                let default = self
                    .expires_at
                    .map(|e| add_secs(e, i64::from(r.policy.default_after_days) * DAY));
                if default.is_some_and(|d| d <= now) {
                    // Defaulted: the deposit covers the loss; the battery
                    // stays booked to the rider and operations are alerted.
                    self.end_package(out, now)?;
                    let outcome = self.settle(out, true, None)?;
                    out.effects.push(RentalEffect::RaiseAlert {
                        order: r.order,
                        battery: self.battery,
                    });
                    out.events.push(RentalEvent::Closed { outcome, at: now });
                    self.notify(out, RentalNotice::Closed);
                } else if package_due {
                    // the grace period ended: overdue fees accrue from now
                    self.drive(out, package::Command::Tick, now)?;
                }
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
pub(crate) mod tests;
