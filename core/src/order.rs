//! Orders and abnormal orders (异常订单).
//!
//! One [`Order`] record covers swaps, rentals, charging sessions and package
//! purchases: kind, parties, device, timeline, amount, status. The host
//! keeps it in step with its machine through the `*_view` adapters
//! ([`swap_view`], [`charging_view`], [`rental_view`]) and confirms with
//! [`Order::confirm_money`] once the money effects were carried out.
//!
//! [`detect`] finds abnormal orders with reason codes: stuck in a transient
//! state past a threshold; money not settled; custody mismatch between what a
//! cabinet reports and what custody says; repeated failures at one cabinet.
//! [`Order::resolve`] records an operator's resolution (retry,
//! force-complete, cancel and refund) in the order's audit trail, with the
//! operator and the reason, and returns the machine command that carries it
//! out.
//!
//! ```
//! use chargeswap_core::order::*;
//! use chargeswap_core::custody::{CabinetId, RiderId};
//! use chrono::{TimeZone, Utc};
//! let t0 = Utc.with_ymd_and_hms(2025, 3, 1, 8, 0, 0).unwrap();
//! let mut o = Order::new(1, OrderKind::Swap, RiderId(7), Some(DeviceRef::Cabinet { cabinet: CabinetId(20_001) }), t0);
//! o.update(OrderUpdate { phase: "dispensing".into(), status: OrderStatus::InProgress, transient: true, amount: None, money: MoneyStatus::Pending }, t0);
//! let later = t0 + chrono::Duration::minutes(10);
//! let found = detect(&[o.clone()], &[], &Default::default(), &AbnormalRules::default(), later);
//! assert_eq!(found[0].code(), ReasonCode::Stuck);
//! let cmd = o.resolve("ops-1", Resolution::ForceComplete { charge: true }, "video shows the battery taken", later)?;
//! assert!(matches!(cmd, MachineCommand::Swap(_)));
//! assert_eq!(o.audit().len(), 1);
//! # Ok::<(), chargeswap_core::order::OrderError>(())
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::cabinet::{CabinetSnapshot, SlotState};
use crate::charging::{ChargingInput, ChargingOutcome, ChargingPhase, ChargingSession, StopReason};
use crate::custody::{CabinetId, Custody, RiderId, SlotNo, StoreId, Timestamp};
use crate::money::Money;
use crate::numbering::DeviceNo;
use crate::org::{Action, Actor, AssetKind, Org, OrgError, Resource};
use crate::rental::{Rental, RentalInput, RentalOutcome, RentalPhase};
use crate::swap::{Outcome, Phase, Settlement, SwapInput, SwapSession};

/// What an order is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderKind {
    /// A swap session.
    Swap,
    /// A rental.
    Rental,
    /// A charging session.
    Charging,
    /// A package purchase.
    PackagePurchase,
}

/// Where an order stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Running.
    InProgress,
    /// Completed (the service was delivered).
    Completed,
    /// Failed or refused (no service, no charge).
    Failed,
    /// Cancelled.
    Cancelled,
    /// Completed, then refunded.
    Refunded,
}

impl OrderStatus {
    /// Whether the order has ended.
    pub fn is_terminal(self) -> bool {
        self != OrderStatus::InProgress
    }
}

/// Where the order's money stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MoneyStatus {
    /// Not settled yet.
    Pending,
    /// Charged (entitlement consumed, hold captured, paid).
    Charged,
    /// Nothing charged (holds released).
    NotCharged,
    /// Charged, then refunded.
    Refunded,
}

/// The device or place an order runs at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceRef {
    /// A cabinet.
    Cabinet {
        /// The cabinet.
        cabinet: CabinetId,
    },
    /// A charging pile connector.
    Pile {
        /// The pile.
        pile: u64,
        /// The connector.
        connector: u8,
    },
    /// A store.
    Store {
        /// The store.
        store: StoreId,
    },
}

/// One step of an order's timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimelineEntry {
    /// When.
    pub at: Timestamp,
    /// The machine phase entered.
    pub phase: String,
    /// The status then.
    pub status: OrderStatus,
}

/// An operator resolution of an abnormal order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resolution {
    /// Re-drive the stuck step (resend the door or device command).
    Retry,
    /// End the order, charging it or not.
    ForceComplete {
        /// Charge it (the service was delivered).
        charge: bool,
    },
    /// Cancel it and give back what was charged.
    CancelAndRefund,
}

/// One entry of an order's audit trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// When.
    pub at: Timestamp,
    /// Who.
    pub operator: String,
    /// What.
    pub resolution: Resolution,
    /// Why.
    pub reason: String,
}

/// What the host learns from its machine after each step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderUpdate {
    /// The machine phase.
    pub phase: String,
    /// The order status.
    pub status: OrderStatus,
    /// Whether the phase should end within minutes (waiting for a device,
    /// the rider at the cabinet, a payment answer); long phases such as a
    /// rental in use are not.
    pub transient: bool,
    /// The amount charged or to charge, when known.
    pub amount: Option<Money>,
    /// Where the money stands per the machine.
    pub money: MoneyStatus,
}

/// One order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    id: u64,
    kind: OrderKind,
    rider: RiderId,
    device: Option<DeviceRef>,
    created_at: Timestamp,
    phase: String,
    status: OrderStatus,
    transient: bool,
    since: Timestamp,
    amount: Option<Money>,
    money: MoneyStatus,
    money_confirmed: bool,
    ended_at: Option<Timestamp>,
    timeline: Vec<TimelineEntry>,
    audit: Vec<AuditEntry>,
}

/// Errors of the order module.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OrderError {
    /// The resolution does not apply to this order.
    #[error(
        "resolution {resolution} does not apply to a {order_kind} order that is {status}: {hint}"
    )]
    NotApplicable {
        /// The resolution.
        resolution: String,
        /// The order kind.
        order_kind: String,
        /// Its status.
        status: String,
        /// What to do instead.
        hint: String,
    },
    /// A resolution without a reason.
    #[error("an operator resolution needs a non-empty reason and operator")]
    MissingReason,
    /// The actor may not resolve this order.
    #[error("not permitted: {error}")]
    NotPermitted {
        /// The org's refusal.
        error: OrgError,
    },
}

/// The machine input that carries out a resolution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MachineCommand {
    /// Feed this to the swap session.
    Swap(SwapInput),
    /// Feed this to the charging session.
    Charging(ChargingInput),
    /// Feed this to the rental.
    Rental(RentalInput),
    /// Nothing to feed: the host refunds the purchase through the package
    /// module (a package purchase has no machine here).
    RefundPurchase {
        /// The order.
        order: u64,
    },
}

impl Order {
    /// A new order, in progress.
    pub fn new(
        id: u64,
        kind: OrderKind,
        rider: RiderId,
        device: Option<DeviceRef>,
        now: Timestamp,
    ) -> Order {
        Order {
            id,
            kind,
            rider,
            device,
            created_at: now,
            phase: "created".into(),
            status: OrderStatus::InProgress,
            transient: true,
            since: now,
            amount: None,
            money: MoneyStatus::Pending,
            money_confirmed: false,
            ended_at: None,
            timeline: vec![TimelineEntry {
                at: now,
                phase: "created".into(),
                status: OrderStatus::InProgress,
            }],
            audit: Vec::new(),
        }
    }

    /// The order id.
    pub fn id(&self) -> u64 {
        self.id
    }
    /// Its kind.
    pub fn kind(&self) -> OrderKind {
        self.kind
    }
    /// The rider.
    pub fn rider(&self) -> RiderId {
        self.rider
    }
    /// The device.
    pub fn device(&self) -> Option<&DeviceRef> {
        self.device.as_ref()
    }
    /// The cabinet, for cabinet orders.
    pub fn cabinet(&self) -> Option<CabinetId> {
        match self.device {
            Some(DeviceRef::Cabinet { cabinet }) => Some(cabinet),
            _ => None,
        }
    }
    /// The status.
    pub fn status(&self) -> OrderStatus {
        self.status
    }
    /// The money status.
    pub fn money(&self) -> MoneyStatus {
        self.money
    }
    /// The amount.
    pub fn amount(&self) -> Option<Money> {
        self.amount
    }
    /// The phase.
    pub fn phase(&self) -> &str {
        &self.phase
    }
    /// When it was created.
    pub fn created_at(&self) -> Timestamp {
        self.created_at
    }
    /// The timeline.
    pub fn timeline(&self) -> &[TimelineEntry] {
        &self.timeline
    }
    /// The audit trail of operator resolutions.
    pub fn audit(&self) -> &[AuditEntry] {
        &self.audit
    }

    /// Takes in the machine's view after a step. A phase change is added to
    /// the timeline; the same view again changes nothing.
    pub fn update(&mut self, u: OrderUpdate, now: Timestamp) {
        if u.phase != self.phase || u.status != self.status {
            self.timeline.push(TimelineEntry {
                at: now,
                phase: u.phase.clone(),
                status: u.status,
            });
            self.since = now;
            if u.status.is_terminal() && self.ended_at.is_none() {
                self.ended_at = Some(now);
            }
        }
        if u.money != self.money {
            self.money_confirmed = false;
        }
        self.phase = u.phase;
        self.status = u.status;
        self.transient = u.transient;
        if u.amount.is_some() {
            self.amount = u.amount;
        }
        self.money = u.money;
    }

    /// The host confirms that the money effects of the current money status
    /// were carried out (ledger transfers posted, holds released). Every
    /// ended order needs it, even one with nothing to settle; until then
    /// [`detect`] reports it as money not settled once the threshold passes.
    pub fn confirm_money(&mut self) {
        self.money_confirmed = true;
    }

    /// Records an operator resolution in the audit trail and returns the
    /// machine command that carries it out. Permission checks are the
    /// caller's (see docs/flows.md); a refused resolution records nothing.
    pub fn resolve(
        &mut self,
        operator: &str,
        resolution: Resolution,
        reason: &str,
        now: Timestamp,
    ) -> Result<MachineCommand, OrderError> {
        if operator.trim().is_empty() || reason.trim().is_empty() {
            return Err(OrderError::MissingReason);
        }
        let cmd = self.command_for(operator, resolution, reason)?;
        self.audit.push(AuditEntry {
            at: now,
            operator: operator.into(),
            resolution,
            reason: reason.into(),
        });
        Ok(cmd)
    }

    /// [`Order::resolve`] after the org's permission check: refunding a
    /// charged order needs [`Action::ApproveRefunds`], everything else
    /// [`Action::HandleAbnormalOrders`], on the order's node (its cabinet's
    /// owner, else the platform), so agent staff only resolve orders in
    /// their own subtree. The audit trail records the actor's id.
    pub fn resolve_as(
        &mut self,
        org: &Org,
        actor: &Actor,
        resolution: Resolution,
        reason: &str,
        now: Timestamp,
    ) -> Result<MachineCommand, OrderError> {
        let action = match resolution {
            Resolution::CancelAndRefund if self.money == MoneyStatus::Charged => {
                Action::ApproveRefunds
            }
            _ => Action::HandleAbnormalOrders,
        };
        let node = self
            .cabinet()
            .and_then(|c| org.owner_of(AssetKind::Cabinet, &c.0.to_string()).ok())
            .unwrap_or_else(|| org.root())
            .to_string();
        let resource = Resource::Order {
            id: self.id.to_string(),
            node,
            rider_id: self.rider.0.to_string(),
        };
        org.can(actor, action, &resource)
            .map_err(|error| OrderError::NotPermitted { error })?;
        self.resolve(&actor.id, resolution, reason, now)
    }

    fn na(&self, resolution: Resolution, hint: &str) -> OrderError {
        OrderError::NotApplicable {
            resolution: format!("{resolution:?}"),
            order_kind: format!("{:?}", self.kind),
            status: format!("{:?}", self.status),
            hint: hint.into(),
        }
    }

    fn command_for(
        &self,
        operator: &str,
        resolution: Resolution,
        reason: &str,
    ) -> Result<MachineCommand, OrderError> {
        let (op, why) = (operator.to_string(), reason.to_string());
        let live = !self.status.is_terminal();
        let charged = self.money == MoneyStatus::Charged;
        Ok(match (self.kind, resolution) {
            (OrderKind::Swap, Resolution::Retry) if live => {
                MachineCommand::Swap(SwapInput::OperatorReopen {
                    operator: op,
                    reason: why,
                })
            }
            (OrderKind::Swap, Resolution::ForceComplete { charge }) if !charged => {
                MachineCommand::Swap(SwapInput::ForceComplete {
                    operator: op,
                    reason: why,
                    charge,
                })
            }
            (OrderKind::Swap, Resolution::CancelAndRefund) if charged => {
                MachineCommand::Swap(SwapInput::Refund {
                    operator: op,
                    reason: why,
                })
            }
            (OrderKind::Swap, Resolution::CancelAndRefund)
                if self.money != MoneyStatus::Refunded =>
            {
                MachineCommand::Swap(SwapInput::ForceComplete {
                    operator: op,
                    reason: why,
                    charge: false,
                })
            }
            (OrderKind::Charging, Resolution::Retry) if live => {
                MachineCommand::Charging(ChargingInput::Tick)
            }
            (OrderKind::Charging, Resolution::ForceComplete { .. }) if live => {
                MachineCommand::Charging(ChargingInput::Stop {
                    by: StopReason::Remote,
                })
            }
            (OrderKind::Charging, Resolution::CancelAndRefund) if charged => {
                MachineCommand::Charging(ChargingInput::Refund {
                    operator: op,
                    reason: why,
                })
            }
            (OrderKind::Rental, Resolution::Retry) if live => {
                MachineCommand::Rental(RentalInput::Tick)
            }
            (OrderKind::Rental, Resolution::CancelAndRefund) if live => {
                MachineCommand::Rental(RentalInput::Cancel)
            }
            (OrderKind::PackagePurchase, Resolution::CancelAndRefund)
                if self.money != MoneyStatus::Refunded =>
            {
                MachineCommand::RefundPurchase { order: self.id }
            }
            (_, r) => {
                return Err(self.na(
                    r,
                    "retry only applies to running orders, force-complete to unsettled ones, cancel-and-refund to charged or running ones",
                ));
            }
        })
    }
}

/// The order view of a swap session.
pub fn swap_view(s: &SwapSession) -> OrderUpdate {
    let phase = match s.phase() {
        Phase::Idle => "idle",
        Phase::AwaitingReturn { .. } => "awaiting_return",
        Phase::Ejecting { .. } => "ejecting",
        Phase::Dispensing { .. } => "dispensing",
        Phase::ReturningOwn { .. } => "returning_own",
        Phase::Done => "done",
    };
    let status = match s.outcome() {
        None => OrderStatus::InProgress,
        Some(_) if s.settlement() == Settlement::Refunded => OrderStatus::Refunded,
        Some(Outcome::Swapped { .. }) | Some(Outcome::ForceCompleted { charged: true }) => {
            OrderStatus::Completed
        }
        Some(Outcome::Failed { reason }) if *reason == crate::swap::Reason::CancelledByRider => {
            OrderStatus::Cancelled
        }
        Some(_) => OrderStatus::Failed,
    };
    let money = match s.settlement() {
        Settlement::Pending => MoneyStatus::Pending,
        Settlement::Charged => MoneyStatus::Charged,
        Settlement::NotCharged => MoneyStatus::NotCharged,
        Settlement::Refunded => MoneyStatus::Refunded,
    };
    OrderUpdate {
        phase: phase.into(),
        status,
        transient: status == OrderStatus::InProgress,
        amount: s.amount(),
        money,
    }
}

/// The order view of a charging session.
pub fn charging_view(s: &ChargingSession) -> OrderUpdate {
    let phase = format!("{:?}", s.phase()).to_lowercase();
    let (status, money, amount) = match s.outcome() {
        None => (OrderStatus::InProgress, MoneyStatus::Pending, None),
        Some(ChargingOutcome::NotCharged { .. }) => {
            (OrderStatus::Failed, MoneyStatus::NotCharged, None)
        }
        Some(ChargingOutcome::Settled { amount, .. }) if s.refunded() => {
            (OrderStatus::Refunded, MoneyStatus::Refunded, Some(*amount))
        }
        Some(ChargingOutcome::Settled { amount, .. }) => {
            (OrderStatus::Completed, MoneyStatus::Charged, Some(*amount))
        }
    };
    OrderUpdate {
        phase,
        status,
        // charging itself may last hours; the machine watches its progress
        // (an uncollected battery locked in a cabinet slot needs operations:
        // it is flagged like a stuck order)
        transient: matches!(
            s.phase(),
            ChargingPhase::Starting
                | ChargingPhase::Stopping
                | ChargingPhase::Pricing
                | ChargingPhase::Inserting
                | ChargingPhase::Uncollected
        ),
        amount,
        money,
    }
}

/// The order view of a rental.
pub fn rental_view(r: &Rental) -> OrderUpdate {
    let phase = format!("{:?}", r.phase()).to_lowercase();
    let (status, money) = match r.outcome() {
        None => (OrderStatus::InProgress, MoneyStatus::Pending),
        Some(RentalOutcome::Rejected { .. }) => (OrderStatus::Failed, MoneyStatus::NotCharged),
        Some(RentalOutcome::Cancelled { .. }) => (OrderStatus::Cancelled, MoneyStatus::NotCharged),
        Some(RentalOutcome::Returned { .. }) | Some(RentalOutcome::Lost { .. }) => {
            (OrderStatus::Completed, MoneyStatus::Charged)
        }
    };
    OrderUpdate {
        phase,
        status,
        transient: matches!(
            r.phase(),
            RentalPhase::AwaitingDeposit
                | RentalPhase::AwaitingIssue
                | RentalPhase::Inspecting
                | RentalPhase::Issuing
                | RentalPhase::Returning
        ),
        amount: None,
        money,
    }
}

/// Thresholds of abnormal-order detection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AbnormalRules {
    /// Seconds a swap may stay in a transient phase.
    pub swap_stuck_s: u32,
    /// Seconds a charging session may stay starting, stopping or pricing.
    pub charging_stuck_s: u32,
    /// Seconds a rental may wait for a deposit, an issue or an inspection.
    pub rental_stuck_s: u32,
    /// Seconds a package purchase may stay pending.
    pub purchase_stuck_s: u32,
    /// Seconds an ended order's money may stay unconfirmed.
    pub unsettled_s: u32,
    /// Failed orders at one cabinet within the window that make it abnormal.
    pub failure_threshold: u32,
    /// The window for repeated failures, seconds.
    pub failure_window_s: u32,
}

impl Default for AbnormalRules {
    /// Swap 5 min, charging 10 min, rental 1 day, purchase 30 min, money
    /// 10 min, 3 failures per hour.
    fn default() -> Self {
        AbnormalRules {
            swap_stuck_s: 300,
            charging_stuck_s: 600,
            rental_stuck_s: 86_400,
            purchase_stuck_s: 1_800,
            unsettled_s: 600,
            failure_threshold: 3,
            failure_window_s: 3_600,
        }
    }
}

/// Why an order (or a cabinet) is abnormal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AbnormalReason {
    /// In a transient phase past the threshold.
    Stuck {
        /// The phase.
        phase: String,
        /// Seconds in it.
        for_s: i64,
    },
    /// Ended, but the money effects were not confirmed.
    MoneyNotSettled {
        /// The money status awaiting confirmation.
        money: MoneyStatus,
        /// Seconds since the order ended.
        for_s: i64,
    },
    /// A cabinet reports a slot differently from custody.
    CustodyMismatch {
        /// The slot.
        slot: SlotNo,
        /// What the cabinet reports.
        reported: Option<DeviceNo>,
        /// What custody says.
        custody: Option<DeviceNo>,
    },
    /// Repeated failures at one cabinet.
    RepeatedFailures {
        /// Failed orders in the window.
        failures: u32,
        /// The window, seconds.
        window_s: u32,
    },
}

/// The reason codes of [`AbnormalReason`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReasonCode {
    /// [`AbnormalReason::Stuck`].
    Stuck,
    /// [`AbnormalReason::MoneyNotSettled`].
    MoneyNotSettled,
    /// [`AbnormalReason::CustodyMismatch`].
    CustodyMismatch,
    /// [`AbnormalReason::RepeatedFailures`].
    RepeatedFailures,
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Abnormal {
    /// The order, when the finding is about one.
    pub order: Option<u64>,
    /// The cabinet, when the finding is about one.
    pub cabinet: Option<CabinetId>,
    /// Why.
    pub reason: AbnormalReason,
}

impl Abnormal {
    /// The reason code.
    pub fn code(&self) -> ReasonCode {
        match self.reason {
            AbnormalReason::Stuck { .. } => ReasonCode::Stuck,
            AbnormalReason::MoneyNotSettled { .. } => ReasonCode::MoneyNotSettled,
            AbnormalReason::CustodyMismatch { .. } => ReasonCode::CustodyMismatch,
            AbnormalReason::RepeatedFailures { .. } => ReasonCode::RepeatedFailures,
        }
    }
}

/// Finds abnormal orders and cabinets. Deterministic: findings come ordered
/// by order id, then cabinet and slot.
pub fn detect(
    orders: &[Order],
    cabinets: &[CabinetSnapshot],
    custody: &Custody,
    rules: &AbnormalRules,
    now: Timestamp,
) -> Vec<Abnormal> {
    let mut found = Vec::new();
    let mut sorted: Vec<&Order> = orders.iter().collect();
    sorted.sort_by_key(|o| o.id);
    for o in &sorted {
        if o.status == OrderStatus::InProgress && o.transient {
            let limit = match o.kind {
                OrderKind::Swap => rules.swap_stuck_s,
                OrderKind::Charging => rules.charging_stuck_s,
                OrderKind::Rental => rules.rental_stuck_s,
                OrderKind::PackagePurchase => rules.purchase_stuck_s,
            };
            let for_s = now.signed_duration_since(o.since).num_seconds();
            if for_s >= i64::from(limit) {
                found.push(Abnormal {
                    order: Some(o.id),
                    cabinet: o.cabinet(),
                    reason: AbnormalReason::Stuck {
                        phase: o.phase.clone(),
                        for_s,
                    },
                });
            }
        }
        if let (true, false, Some(end)) = (o.status.is_terminal(), o.money_confirmed, o.ended_at) {
            let for_s = now.signed_duration_since(end).num_seconds();
            if for_s >= i64::from(rules.unsettled_s) {
                found.push(Abnormal {
                    order: Some(o.id),
                    cabinet: o.cabinet(),
                    reason: AbnormalReason::MoneyNotSettled {
                        money: o.money,
                        for_s,
                    },
                });
            }
        }
    }
    // custody mismatches, attributed to the latest order at the cabinet
    let mut latest: BTreeMap<CabinetId, u64> = BTreeMap::new();
    for o in &sorted {
        if let Some(c) = o.cabinet() {
            latest.insert(c, o.id);
        }
    }
    let mut snaps: Vec<&CabinetSnapshot> = cabinets.iter().collect();
    snaps.sort_by_key(|c| c.cabinet);
    for c in snaps {
        let mut slots: Vec<_> = c.slots.iter().collect();
        slots.sort_by_key(|s| s.slot);
        for s in slots {
            let reported = match &s.state {
                SlotState::Empty => None,
                SlotState::Battery {
                    battery: Some(b), ..
                } => Some(*b),
                // unreadable, locked or faulty: nothing to compare
                _ => continue,
            };
            let booked = custody.occupant(c.cabinet, s.slot);
            if reported != booked {
                found.push(Abnormal {
                    order: latest.get(&c.cabinet).copied(),
                    cabinet: Some(c.cabinet),
                    reason: AbnormalReason::CustodyMismatch {
                        slot: s.slot,
                        reported,
                        custody: booked,
                    },
                });
            }
        }
    }
    // repeated failures per cabinet
    let mut failures: BTreeMap<CabinetId, u32> = BTreeMap::new();
    for o in &sorted {
        if let (OrderStatus::Failed, Some(c), Some(end)) = (o.status, o.cabinet(), o.ended_at) {
            if now.signed_duration_since(end).num_seconds() <= i64::from(rules.failure_window_s) {
                *failures.entry(c).or_default() += 1;
            }
        }
    }
    for (c, n) in failures {
        if n >= rules.failure_threshold && rules.failure_threshold > 0 {
            found.push(Abnormal {
                order: None,
                cabinet: Some(c),
                reason: AbnormalReason::RepeatedFailures {
                    failures: n,
                    window_s: rules.failure_window_s,
                },
            });
        }
    }
    found
}

#[cfg(test)]
mod tests;
