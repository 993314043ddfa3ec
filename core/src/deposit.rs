//! Deposits (押金) and deposit waivers (免押) on the [`Ledger`].
//!
//! **A paid deposit** moves cash from payment clearing into the rider's
//! held-deposit account `{rider}:deposit` ([`AccountKind::DepositHeld`]):
//!
//! ```text
//! pay ──► held ──start_rental──► rented ──end_rental──► held
//!          │  ▲                    │
//!          │  └──── rejected ──┐   └─ deduct (damage / loss / unpaid fees): deposit → revenue
//!          └─ apply_refund ──► refund_requested ──approved──► refund_approved ──confirm──► refunded
//!                                                (deposit → refunds payable)   (refunds payable → clearing)
//! ```
//!
//! **A waiver** is a hold on a third-party credit line: a pending transfer
//! that debits the provider's [`AccountKind::CreditLine`] account and credits
//! the rider's `{rider}:credit` ([`AccountKind::CreditHold`]) account. No cash
//! moves. At the battery's return (`end_rental`) the hold is voided
//! (`released`); on loss or damage (`deduct`) it is captured: the hold is
//! posted for the amount due (the rest is released) and that amount moves on
//! from `{rider}:credit` to revenue, leaving the credit line debited — a claim
//! on the provider, settled when it pays (clearing ← credit line). If the
//! authorisation lapses ([`Ledger::expire_pending`]), [`Deposits::sync_expired`]
//! marks the waiver `lapsed`.
//!
//! **Invariants** (checked by the property tests after every step):
//! [`Deposits::outstanding`] equals the sum of the posted balances of all
//! held-deposit accounts, and [`Deposits::waived_outstanding`] equals the sum
//! of the pending credits of all credit-hold accounts.
//!
//! Every op is idempotent by its op id and a refused op changes nothing; the
//! transfers of an op get ids `{op_id}` or `{op_id}.{leg}`, so op ids may be
//! at most 40 bytes.
//!
//! ```
//! use chargeswap_core::deposit::{DeductReason, DepositConfig, DepositOp, Deposits};
//! use chargeswap_core::ledger::{AccountKind, Key, Ledger, NewAccount};
//! use chrono::{TimeZone, Utc};
//!
//! let now = Utc.with_ymd_and_hms(2024, 5, 1, 8, 0, 0).unwrap();
//! let mut ledger = Ledger::new();
//! let mut deposits = Deposits::new(DepositConfig::standard());
//! deposits.create_platform_accounts(&mut ledger, now)?;
//! let (d, rider) = (Key::new("D1")?, Key::new("r1")?);
//! let mut run = |id: &str, op: DepositOp| deposits.apply(Key::new(id).unwrap(), &op, &mut ledger, now);
//! run("op1", DepositOp::Pay { deposit: d, rider, amount: "300".parse()? })?;
//! run("op2", DepositOp::StartRental { deposit: d, rental: Key::new("R1")? })?;
//! run("op3", DepositOp::Deduct { deposit: d, amount: "50".parse()?, reason: DeductReason::Damage })?;
//! run("op4", DepositOp::EndRental { deposit: d })?;
//! run("op5", DepositOp::ApplyRefund { deposit: d })?;
//! let r = run("op6", DepositOp::ReviewRefund { deposit: d, approve: true })?;
//! assert_eq!(r.transfers[0].amount.to_string(), "¥250.00");
//! assert!(deposits.outstanding().is_zero());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ledger::{
    AccountKind, Command, Key, Ledger, LedgerError, NewAccount, PendingStatus, Timestamp, Transfer,
    codes,
};
use crate::money::{Currency, Money};

/// Errors of the deposit module. A refused op changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DepositError {
    /// The ledger refused a transfer or an id.
    #[error("ledger: {error}")]
    Ledger {
        /// The ledger's error.
        error: LedgerError,
    },
    /// The op id was used for a different op.
    #[error("op_id {op_id} was already used for a different operation; use a new op_id")]
    OpConflict {
        /// The op id.
        op_id: Key,
    },
    /// No such deposit.
    #[error("deposit {deposit} does not exist")]
    DepositNotFound {
        /// The deposit id.
        deposit: Key,
    },
    /// The deposit id is taken.
    #[error("deposit {deposit} already exists; use a new deposit id")]
    DepositExists {
        /// The deposit id.
        deposit: Key,
    },
    /// The deposit is not in a state the op accepts.
    #[error("deposit {deposit} is {state}; {op} needs it {expected}")]
    WrongState {
        /// The deposit id.
        deposit: Key,
        /// The op.
        op: String,
        /// Its state.
        state: DepositStatus,
        /// The state(s) the op accepts.
        expected: String,
    },
    /// The op applies to paid deposits only (or waivers only).
    #[error("deposit {deposit} is a {is}; {op} applies to a {expected}")]
    WrongKind {
        /// The deposit id.
        deposit: Key,
        /// The op.
        op: String,
        /// "paid deposit" or "waiver".
        is: String,
        /// What the op needs.
        expected: String,
    },
    /// A deduction larger than what is left.
    #[error("amount: deposit {deposit} has {remaining} left, cannot deduct {requested}")]
    ExceedsRemaining {
        /// The deposit id.
        deposit: Key,
        /// What is left.
        remaining: Money,
        /// The amount asked for.
        requested: Money,
    },
    /// A bad amount.
    #[error("{field} must be {expected}, got {amount}")]
    InvalidAmount {
        /// The field.
        field: String,
        /// The amount given.
        amount: Money,
        /// What was expected.
        expected: String,
    },
}

impl From<LedgerError> for DepositError {
    fn from(error: LedgerError) -> DepositError {
        DepositError::Ledger { error }
    }
}

type Result<T> = core::result::Result<T, DepositError>;

/// The platform accounts deposits use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DepositConfig {
    /// Currency of every deposit.
    #[serde(default)]
    pub currency: Currency,
    /// Payment clearing: deposits come from here, refunds are paid out to here.
    pub clearing_account: Key,
    /// Where deductions go (platform revenue).
    pub deduction_account: Key,
    /// Refunds payable: approved refunds wait here until paid out.
    pub refunds_payable_account: Key,
}

impl DepositConfig {
    /// CNY, accounts `platform:clearing`, `platform:revenue`, `platform:refunds_payable`
    /// (the same clearing and refunds payable accounts as [`crate::wallet::WalletConfig::standard`]).
    pub fn standard() -> DepositConfig {
        DepositConfig {
            currency: Currency::CNY,
            clearing_account: Key::lit("platform:clearing"),
            deduction_account: Key::lit("platform:revenue"),
            refunds_payable_account: Key::lit("platform:refunds_payable"),
        }
    }
}

/// Why a deposit is deducted; each reason has its own transfer code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeductReason {
    /// Damage to the battery (`deposit_damage`).
    Damage,
    /// A lost battery (`deposit_loss`).
    Loss,
    /// Fees the rider did not pay (`deposit_unpaid_fees`).
    UnpaidFees,
}

impl DeductReason {
    fn code(self) -> &'static str {
        match self {
            DeductReason::Damage => codes::DEPOSIT_DAMAGE,
            DeductReason::Loss => codes::DEPOSIT_LOSS,
            DeductReason::UnpaidFees => codes::DEPOSIT_UNPAID_FEES,
        }
    }
}

/// Paid in cash, or waived against a credit line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DepositKind {
    /// Paid: the money sits in `{rider}:deposit`.
    Paid,
    /// Waived: a hold on `credit_line` crediting `{rider}:credit`.
    Waived {
        /// The provider's credit-line account.
        credit_line: Key,
        /// The hold's transfer id.
        hold: Key,
    },
}

/// Where a deposit is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DepositStatus {
    /// Paid or authorised, no battery out.
    Held,
    /// A battery is rented against it.
    Rented,
    /// Paid deposit: refund applied for, awaiting review.
    RefundRequested,
    /// Paid deposit: refund approved, money in refunds payable.
    RefundApproved,
    /// Paid deposit: refund paid out. Final.
    Refunded,
    /// Waiver: hold voided at return. Final.
    Released,
    /// Waiver: hold captured for loss or damage. Final.
    Captured,
    /// Waiver: the authorisation lapsed. Final.
    Lapsed,
}

impl core::fmt::Display for DepositStatus {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let s = match self {
            DepositStatus::Held => "held",
            DepositStatus::Rented => "rented",
            DepositStatus::RefundRequested => "refund_requested",
            DepositStatus::RefundApproved => "refund_approved",
            DepositStatus::Refunded => "refunded",
            DepositStatus::Released => "released",
            DepositStatus::Captured => "captured",
            DepositStatus::Lapsed => "lapsed",
        };
        f.write_str(s)
    }
}

/// One deposit or waiver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deposit {
    /// The deposit id.
    pub deposit: Key,
    /// The rider.
    pub rider: Key,
    /// The amount paid or waived.
    pub amount: Money,
    /// Paid or waived.
    pub kind: DepositKind,
    /// Where it is in its life.
    pub status: DepositStatus,
    /// The ledger account holding it (`{rider}:deposit` or `{rider}:credit`).
    pub account: Key,
    /// The current rental, if any.
    pub rental: Option<Key>,
    /// Deducted (or captured) so far.
    pub deducted: Money,
    /// Refunded (approved) so far.
    pub refunded: Money,
}

impl Deposit {
    /// amount − deducted − refunded.
    pub fn remaining(&self) -> Money {
        Money::from_minor(
            minor(self.amount) - minor(self.deducted) - minor(self.refunded),
            self.amount.currency(),
        )
    }
}

/// A deposit operation. JSON: `{"op": "pay", "deposit": "D1", "rider": "r1", "amount": "300.00"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum DepositOp {
    /// Pays a deposit: clearing → `{rider}:deposit`.
    Pay {
        /// A new deposit id.
        deposit: Key,
        /// The rider (at most 40 bytes).
        rider: Key,
        /// A positive amount.
        amount: Money,
    },
    /// Waives a deposit against a credit line: a hold credit line → `{rider}:credit`.
    Waive {
        /// A new deposit id.
        deposit: Key,
        /// The rider (at most 40 bytes).
        rider: Key,
        /// The amount guaranteed.
        amount: Money,
        /// The provider's credit-line account (must exist, kind `credit_line`).
        credit_line: Key,
        /// When the authorisation lapses, if ever.
        #[serde(default)]
        expires_at: Option<Timestamp>,
    },
    /// A battery goes out against the deposit.
    StartRental {
        /// The deposit.
        deposit: Key,
        /// The rental (order) id.
        rental: Key,
    },
    /// The battery came back. A waiver's hold is voided (released).
    EndRental {
        /// The deposit.
        deposit: Key,
    },
    /// Deducts for damage, loss or unpaid fees; a waiver is captured.
    Deduct {
        /// The deposit.
        deposit: Key,
        /// A positive amount, at most what is left.
        amount: Money,
        /// Why.
        reason: DeductReason,
    },
    /// The rider applies for a refund of a paid deposit (no battery out).
    ApplyRefund {
        /// The deposit.
        deposit: Key,
    },
    /// Finance approves (deposit → refunds payable) or rejects (back to held).
    ReviewRefund {
        /// The deposit.
        deposit: Key,
        /// Approve or reject.
        approve: bool,
    },
    /// The channel paid the refund out: refunds payable → clearing.
    ConfirmRefund {
        /// The deposit.
        deposit: Key,
    },
}

/// The deposit module's totals next to the ledger's, from
/// [`Deposits::reconcile`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DepositReconciliation {
    /// [`Deposits::outstanding`].
    pub outstanding: Money,
    /// Sum of the posted balances of the ledger's `deposit_held` accounts.
    pub held_balance: Money,
    /// [`Deposits::waived_outstanding`].
    pub waived_outstanding: Money,
    /// Sum of the pending credits of the ledger's `credit_hold` accounts.
    pub credit_hold_pending: Money,
    /// Both pairs agree.
    pub agrees: bool,
}

/// The result of an op.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DepositReceipt {
    /// The op id.
    pub op_id: Key,
    /// The transfers it made.
    pub transfers: Vec<Transfer>,
    /// The deposit after the op.
    pub deposit: Deposit,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct OpRecord {
    op: DepositOp,
    receipt: DepositReceipt,
}

/// All deposits and applied ops. Serde-able; pair it with its [`Ledger`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deposits {
    config: DepositConfig,
    deposits: BTreeMap<Key, Deposit>,
    ops: BTreeMap<Key, OpRecord>,
}

fn minor(m: Money) -> i64 {
    m.to_minor().unwrap_or(0)
}

fn amount_in(field: &str, amount: Money, currency: Currency) -> Result<i64> {
    let bad = |expected: String| DepositError::InvalidAmount {
        field: field.to_owned(),
        amount,
        expected,
    };
    if amount.currency() != currency {
        return Err(bad(format!("in {currency}")));
    }
    match amount.to_minor() {
        Some(v) if v > 0 => Ok(v),
        _ => Err(bad(format!(
            "greater than zero in whole minor units ({} decimal places)",
            currency.minor_units()
        ))),
    }
}

impl Deposits {
    /// No deposits yet.
    pub fn new(config: DepositConfig) -> Deposits {
        Deposits {
            config,
            deposits: BTreeMap::new(),
            ops: BTreeMap::new(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &DepositConfig {
        &self.config
    }

    /// Creates the platform accounts of the configuration (idempotent).
    pub fn create_platform_accounts(&self, ledger: &mut Ledger, now: Timestamp) -> Result<()> {
        let c = &self.config;
        for spec in [
            NewAccount::new(c.clearing_account, AccountKind::PaymentClearing),
            NewAccount::new(c.deduction_account, AccountKind::PlatformRevenue),
            NewAccount::new(c.refunds_payable_account, AccountKind::RefundsPayable).no_overdraft(),
        ] {
            ledger.create_account(&spec.in_currency(c.currency), now)?;
        }
        Ok(())
    }

    /// A deposit.
    pub fn deposit(&self, deposit: &Key) -> Option<&Deposit> {
        self.deposits.get(deposit)
    }

    /// Every deposit, by id.
    pub fn deposits(&self) -> impl Iterator<Item = &Deposit> {
        self.deposits.values()
    }

    /// Cash deposits the platform holds: the remaining amount of every paid
    /// deposit that is held, rented or awaiting refund review. Always equals
    /// the sum of the posted balances of the held-deposit accounts.
    pub fn outstanding(&self) -> Money {
        let v = self
            .deposits
            .values()
            .filter(|d| d.kind == DepositKind::Paid)
            .filter(|d| {
                matches!(
                    d.status,
                    DepositStatus::Held | DepositStatus::Rented | DepositStatus::RefundRequested
                )
            })
            .map(|d| minor(d.remaining()))
            .fold(0i64, i64::saturating_add);
        Money::from_minor(v, self.config.currency)
    }

    /// Deposits waived against credit lines and still authorised. Equals the
    /// sum of the pending credits of the credit-hold accounts (after
    /// [`Deposits::sync_expired`]).
    pub fn waived_outstanding(&self) -> Money {
        let v = self
            .deposits
            .values()
            .filter(|d| matches!(d.kind, DepositKind::Waived { .. }))
            .filter(|d| matches!(d.status, DepositStatus::Held | DepositStatus::Rented))
            .map(|d| minor(d.amount))
            .fold(0i64, i64::saturating_add);
        Money::from_minor(v, self.config.currency)
    }

    /// Compares the module's totals with the ledger's (in the configured
    /// currency). They disagree only if something outside this module moved
    /// money in `deposit_held` or `credit_hold` accounts, or if
    /// [`Deposits::sync_expired`] was not called after an expiry sweep.
    pub fn reconcile(&self, ledger: &Ledger) -> DepositReconciliation {
        let cur = self.config.currency;
        let (mut held, mut credit) = (0i64, 0i64);
        for a in ledger.accounts().filter(|a| a.currency == cur) {
            match a.kind {
                AccountKind::DepositHeld => held = held.saturating_add(minor(a.posted_balance())),
                AccountKind::CreditHold => credit = credit.saturating_add(minor(a.credits_pending)),
                _ => {}
            }
        }
        let outstanding = self.outstanding();
        let waived_outstanding = self.waived_outstanding();
        let held_balance = Money::from_minor(held, cur);
        let credit_hold_pending = Money::from_minor(credit, cur);
        DepositReconciliation {
            outstanding,
            held_balance,
            waived_outstanding,
            credit_hold_pending,
            agrees: outstanding == held_balance && waived_outstanding == credit_hold_pending,
        }
    }

    /// Marks waivers whose holds lapsed in the ledger as `lapsed` (call after
    /// [`Ledger::expire_pending`]); returns them. A lapsed waiver that still
    /// has a battery out needs the operator's attention.
    pub fn sync_expired(&mut self, ledger: &Ledger) -> Vec<Deposit> {
        let mut out = Vec::new();
        for d in self.deposits.values_mut() {
            let DepositKind::Waived { hold, .. } = d.kind else {
                continue;
            };
            if !matches!(d.status, DepositStatus::Held | DepositStatus::Rented) {
                continue;
            }
            if matches!(
                ledger.pending_status(&hold),
                Some(PendingStatus::Expired { .. })
            ) {
                d.status = DepositStatus::Lapsed;
                out.push(d.clone());
            }
        }
        out
    }

    /// Applies `op` under `op_id` at `now`. Idempotent by `op_id`; a refused
    /// op changes neither the deposits nor the ledger.
    pub fn apply(
        &mut self,
        op_id: Key,
        op: &DepositOp,
        ledger: &mut Ledger,
        now: Timestamp,
    ) -> Result<DepositReceipt> {
        if let Some(rec) = self.ops.get(&op_id) {
            return if rec.op == *op {
                Ok(rec.receipt.clone())
            } else {
                Err(DepositError::OpConflict { op_id })
            };
        }
        op_id.suffixed(".capture", "op_id")?;
        let (transfers, deposit) = self.run(op_id, op, ledger, now)?;
        let receipt = DepositReceipt {
            op_id,
            transfers,
            deposit,
        };
        self.ops.insert(
            op_id,
            OpRecord {
                op: *op,
                receipt: receipt.clone(),
            },
        );
        Ok(receipt)
    }

    fn get(&self, deposit: &Key) -> Result<&Deposit> {
        self.deposits
            .get(deposit)
            .ok_or(DepositError::DepositNotFound { deposit: *deposit })
    }

    /// Checks, one atomic ledger batch, then infallible updates of `self`.
    fn run(
        &mut self,
        op_id: Key,
        op: &DepositOp,
        ledger: &mut Ledger,
        now: Timestamp,
    ) -> Result<(Vec<Transfer>, Deposit)> {
        let cfg = self.config;
        let cur = cfg.currency;
        let zero = Money::zero(cur);
        let (transfers, next) = match *op {
            DepositOp::Pay {
                deposit,
                rider,
                amount,
            } => {
                amount_in("amount", amount, cur)?;
                if self.deposits.contains_key(&deposit) {
                    return Err(DepositError::DepositExists { deposit });
                }
                let account = rider.suffixed(":deposit", "rider")?;
                let spec = NewAccount::new(account, AccountKind::DepositHeld)
                    .owned_by(rider)
                    .in_currency(cur)
                    .no_overdraft();
                let t = with_account(ledger, &spec, now, |l| {
                    l.apply_batch(
                        &[Command::Transfer {
                            id: op_id,
                            debit_account: cfg.clearing_account,
                            credit_account: account,
                            amount,
                            code: Key::lit(codes::DEPOSIT_PAY),
                            reference: Some(deposit),
                        }],
                        now,
                    )
                })?;
                let d = Deposit {
                    deposit,
                    rider,
                    amount,
                    kind: DepositKind::Paid,
                    status: DepositStatus::Held,
                    account,
                    rental: None,
                    deducted: zero,
                    refunded: zero,
                };
                (t, d)
            }
            DepositOp::Waive {
                deposit,
                rider,
                amount,
                credit_line,
                expires_at,
            } => {
                amount_in("amount", amount, cur)?;
                if self.deposits.contains_key(&deposit) {
                    return Err(DepositError::DepositExists { deposit });
                }
                let account = rider.suffixed(":credit", "rider")?;
                let spec = NewAccount::new(account, AccountKind::CreditHold)
                    .owned_by(rider)
                    .in_currency(cur)
                    .no_overdraft();
                let t = with_account(ledger, &spec, now, |l| {
                    l.apply_batch(
                        &[Command::Hold {
                            id: op_id,
                            debit_account: credit_line,
                            credit_account: account,
                            amount,
                            code: Key::lit(codes::DEPOSIT_WAIVER),
                            reference: Some(deposit),
                            expires_at,
                        }],
                        now,
                    )
                })?;
                let d = Deposit {
                    deposit,
                    rider,
                    amount,
                    kind: DepositKind::Waived {
                        credit_line,
                        hold: op_id,
                    },
                    status: DepositStatus::Held,
                    account,
                    rental: None,
                    deducted: zero,
                    refunded: zero,
                };
                (t, d)
            }
            DepositOp::StartRental { deposit, rental } => {
                let d = self.get(&deposit)?;
                expect_state(d, "start_rental", &[DepositStatus::Held])?;
                if minor(d.remaining()) <= 0 {
                    return Err(DepositError::ExceedsRemaining {
                        deposit,
                        remaining: d.remaining(),
                        requested: d.amount,
                    });
                }
                let mut d = d.clone();
                d.status = DepositStatus::Rented;
                d.rental = Some(rental);
                (Vec::new(), d)
            }
            DepositOp::EndRental { deposit } => {
                let d = self.get(&deposit)?.clone();
                match d.kind {
                    DepositKind::Paid => {
                        expect_state(&d, "end_rental", &[DepositStatus::Rented])?;
                        let mut d = d;
                        d.status = DepositStatus::Held;
                        d.rental = None;
                        (Vec::new(), d)
                    }
                    DepositKind::Waived { hold, .. } => {
                        expect_state(
                            &d,
                            "end_rental",
                            &[DepositStatus::Held, DepositStatus::Rented],
                        )?;
                        let t = ledger.apply_batch(
                            &[Command::Void {
                                id: op_id,
                                pending_id: hold,
                            }],
                            now,
                        )?;
                        let mut d = d;
                        d.status = DepositStatus::Released;
                        d.rental = None;
                        (t, d)
                    }
                }
            }
            DepositOp::Deduct {
                deposit,
                amount,
                reason,
            } => {
                let a = amount_in("amount", amount, cur)?;
                let d = self.get(&deposit)?.clone();
                let code = Key::lit(reason.code());
                match d.kind {
                    DepositKind::Paid => {
                        expect_state(
                            &d,
                            "deduct",
                            &[
                                DepositStatus::Held,
                                DepositStatus::Rented,
                                DepositStatus::RefundRequested,
                            ],
                        )?;
                        if a > minor(d.remaining()) {
                            return Err(DepositError::ExceedsRemaining {
                                deposit,
                                remaining: d.remaining(),
                                requested: amount,
                            });
                        }
                        let t = ledger.apply_batch(
                            &[Command::Transfer {
                                id: op_id,
                                debit_account: d.account,
                                credit_account: cfg.deduction_account,
                                amount,
                                code,
                                reference: Some(deposit),
                            }],
                            now,
                        )?;
                        let mut d = d;
                        d.deducted = Money::from_minor(minor(d.deducted) + a, cur);
                        (t, d)
                    }
                    DepositKind::Waived { hold, .. } => {
                        expect_state(&d, "deduct", &[DepositStatus::Held, DepositStatus::Rented])?;
                        if a > minor(d.amount) {
                            return Err(DepositError::ExceedsRemaining {
                                deposit,
                                remaining: d.amount,
                                requested: amount,
                            });
                        }
                        let t = ledger.apply_batch(
                            &[
                                Command::Post {
                                    id: op_id.suffixed(".capture", "op_id")?,
                                    pending_id: hold,
                                    amount: Some(amount),
                                },
                                Command::Transfer {
                                    id: op_id,
                                    debit_account: d.account,
                                    credit_account: cfg.deduction_account,
                                    amount,
                                    code,
                                    reference: Some(deposit),
                                },
                            ],
                            now,
                        )?;
                        let mut d = d;
                        d.deducted = amount;
                        d.status = DepositStatus::Captured;
                        d.rental = None;
                        (t, d)
                    }
                }
            }
            DepositOp::ApplyRefund { deposit } => {
                let d = self.get(&deposit)?.clone();
                expect_paid(&d, "apply_refund")?;
                expect_state(&d, "apply_refund", &[DepositStatus::Held])?;
                if minor(d.remaining()) <= 0 {
                    return Err(DepositError::ExceedsRemaining {
                        deposit,
                        remaining: d.remaining(),
                        requested: d.remaining(),
                    });
                }
                let mut d = d;
                d.status = DepositStatus::RefundRequested;
                (Vec::new(), d)
            }
            DepositOp::ReviewRefund { deposit, approve } => {
                let d = self.get(&deposit)?.clone();
                expect_paid(&d, "review_refund")?;
                expect_state(&d, "review_refund", &[DepositStatus::RefundRequested])?;
                let mut d = d;
                if !approve {
                    d.status = DepositStatus::Held;
                    (Vec::new(), d)
                } else {
                    let rest = d.remaining();
                    let t = if rest.is_positive() {
                        ledger.apply_batch(
                            &[Command::Transfer {
                                id: op_id,
                                debit_account: d.account,
                                credit_account: cfg.refunds_payable_account,
                                amount: rest,
                                code: Key::lit(codes::DEPOSIT_REFUND),
                                reference: Some(deposit),
                            }],
                            now,
                        )?
                    } else {
                        Vec::new()
                    };
                    d.refunded = Money::from_minor(minor(d.refunded) + minor(rest), cur);
                    d.status = DepositStatus::RefundApproved;
                    (t, d)
                }
            }
            DepositOp::ConfirmRefund { deposit } => {
                let d = self.get(&deposit)?.clone();
                expect_paid(&d, "confirm_refund")?;
                expect_state(&d, "confirm_refund", &[DepositStatus::RefundApproved])?;
                let t = if d.refunded.is_positive() {
                    ledger.apply_batch(
                        &[Command::Transfer {
                            id: op_id,
                            debit_account: cfg.refunds_payable_account,
                            credit_account: cfg.clearing_account,
                            amount: d.refunded,
                            code: Key::lit(codes::REFUND_PAYOUT),
                            reference: Some(deposit),
                        }],
                        now,
                    )?
                } else {
                    Vec::new()
                };
                let mut d = d;
                d.status = DepositStatus::Refunded;
                (t, d)
            }
        };
        self.deposits.insert(next.deposit, next.clone());
        Ok((transfers, next))
    }
}

/// Creates `spec` (unless it exists with the same definition), then runs
/// `f`; if `f` fails, an account created here is removed again, so a refused
/// op leaves the ledger as it was.
fn with_account<T>(
    ledger: &mut Ledger,
    spec: &NewAccount,
    now: Timestamp,
    f: impl FnOnce(&mut Ledger) -> core::result::Result<T, LedgerError>,
) -> Result<T> {
    let created = ledger.account(&spec.id).is_none();
    ledger.create_account(spec, now)?;
    f(ledger).map_err(|e| {
        if created {
            ledger.discard_new_account(&spec.id);
        }
        e.into()
    })
}

fn expect_state(d: &Deposit, op: &str, ok: &[DepositStatus]) -> Result<()> {
    if ok.contains(&d.status) {
        return Ok(());
    }
    Err(DepositError::WrongState {
        deposit: d.deposit,
        op: op.to_owned(),
        state: d.status,
        expected: ok
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" or "),
    })
}

fn expect_paid(d: &Deposit, op: &str) -> Result<()> {
    if d.kind == DepositKind::Paid {
        return Ok(());
    }
    Err(DepositError::WrongKind {
        deposit: d.deposit,
        op: op.to_owned(),
        is: "waiver".to_owned(),
        expected: "paid deposit".to_owned(),
    })
}

#[cfg(test)]
mod tests;
