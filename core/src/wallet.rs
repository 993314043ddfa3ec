//! Rider wallets on the [`Ledger`]: top-ups, gift credit with an expiry,
//! paying orders, pre-authorisations, refunds and withdrawals.
//!
//! Each rider has two ledger accounts: `{rider}:wallet` (paid credit,
//! [`AccountKind::RiderWallet`], cannot go negative unless the wallet was
//! opened with `allow_negative`) and `{rider}:gift` (gift credit,
//! [`AccountKind::RiderGift`], never negative, never paid out as cash). Gift
//! credit arrives in *lots*, each with its own expiry; [`Wallets::expire_gifts`]
//! returns lapsed lots to the promotion account.
//!
//! **Which credit is spent first** is [`WalletConfig::spend_order`]:
//! - [`SpendOrder::GiftFirst`] (the default): usable gift credit first
//!   (earliest-expiring lot first), then paid credit. Riders lose less gift
//!   credit to expiry.
//! - [`SpendOrder::PaidFirst`]: paid credit first, then gift credit for the
//!   rest.
//!
//! Gift credit is usable while `now < expires_at`.
//!
//! **Refunds** of an order never exceed what it was charged minus what was
//! already refunded. A refund returns the order's gift part first (so cash
//! refunds never exceed the cash paid), to the lots it came from (latest
//! expiry first); a part whose lot has lapsed by then goes back to promotion
//! instead. The rest is paid credit and goes to the destination chosen:
//! [`RefundDestination::Wallet`] (back into the rider's paid balance) or
//! [`RefundDestination::OriginalChannel`] (to refunds payable, paid out later
//! by [`WalletOp::Payout`]).
//!
//! Every operation is a [`WalletOp`] applied with an operation id by
//! [`Wallets::apply`]; it is idempotent by that id (same op → the original
//! [`WalletReceipt`], a different op → [`WalletError::OpConflict`]), and a
//! rejected op changes neither the wallets nor the ledger (its transfers go in
//! one atomic batch). The transfers of an op get ids `{op_id}` or
//! `{op_id}.{leg}` (`.gift`, `.paid`, `.forfeit`), so op ids may be at most
//! 40 bytes.
//!
//! ```
//! use chargeswap_core::ledger::{AccountKind, Key, Ledger, NewAccount};
//! use chargeswap_core::wallet::{PaymentSource, WalletConfig, WalletOp, Wallets};
//! use chrono::{Duration, TimeZone, Utc};
//!
//! let now = Utc.with_ymd_and_hms(2024, 5, 1, 8, 0, 0).unwrap();
//! let mut ledger = Ledger::new();
//! let mut wallets = Wallets::new(WalletConfig::standard());
//! wallets.create_platform_accounts(&mut ledger, now)?;
//! ledger.create_account(&NewAccount::new(Key::new("platform:revenue")?, AccountKind::PlatformRevenue), now)?;
//! let rider = Key::new("r1")?;
//! let op = |s: &str| Key::new(s);
//! wallets.apply(op("o1")?, &WalletOp::Open { rider, allow_negative: false }, &mut ledger, now)?;
//! wallets.apply(op("o2")?, &WalletOp::TopUp { rider, amount: "20".parse()? }, &mut ledger, now)?;
//! wallets.apply(op("o3")?, &WalletOp::GrantGift { rider, amount: "5".parse()?, expires_at: now + Duration::days(7) }, &mut ledger, now)?;
//! // A ¥8 swap: ¥5 from gift credit first, then ¥3 paid.
//! let r = wallets.apply(op("o4")?, &WalletOp::Pay {
//!     rider, order: Key::new("SW-1")?, amount: "8".parse()?,
//!     credit_account: Key::new("platform:revenue")?, code: Key::new("swap_fee")?,
//!     source: PaymentSource::Wallet,
//! }, &mut ledger, now)?;
//! assert_eq!(r.transfers.len(), 2);
//! let b = wallets.balance(&rider, &ledger, now)?;
//! assert_eq!((b.paid.to_string(), b.gift.to_string()), ("¥17.00".into(), "¥0.00".into()));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ledger::{
    AccountKind, Command, Key, Ledger, LedgerError, NewAccount, PendingStatus, Timestamp, Transfer,
    codes,
};
use crate::money::{Currency, Money};

/// Errors of the wallet module. A rejected op changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WalletError {
    /// The ledger refused a transfer (or an id).
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
    /// No wallet for this rider.
    #[error("rider {rider} has no wallet; open one first")]
    RiderNotFound {
        /// The rider.
        rider: Key,
    },
    /// The rider's wallet exists with different settings.
    #[error("rider {rider} already has a wallet with allow_negative = {allow_negative}")]
    RiderExists {
        /// The rider.
        rider: Key,
        /// The existing setting.
        allow_negative: bool,
    },
    /// No payment for this order.
    #[error("order {order} has no payment")]
    OrderNotFound {
        /// The order.
        order: Key,
    },
    /// The order was already paid or authorised.
    #[error("order {order} already has a payment; each order is paid once")]
    OrderExists {
        /// The order.
        order: Key,
    },
    /// The order is not in the state the op needs.
    #[error("order {order} is {state}, expected {expected}")]
    OrderState {
        /// The order.
        order: Key,
        /// Its state.
        state: String,
        /// The state(s) the op needs.
        expected: String,
    },
    /// Not enough credit.
    #[error("{field}: rider {rider} needs {needed} but has {available} available")]
    InsufficientFunds {
        /// The field at fault.
        field: String,
        /// The rider.
        rider: Key,
        /// The amount asked for.
        needed: Money,
        /// What is available.
        available: Money,
    },
    /// A refund larger than what is left to refund.
    #[error("amount: order {order} can be refunded at most {refundable}, got {requested}")]
    RefundExceedsPaid {
        /// The order.
        order: Key,
        /// Charged − already refunded.
        refundable: Money,
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
    /// A deadline that is not in the future.
    #[error("{field} {at} must be after now ({now})")]
    NotInFuture {
        /// The field.
        field: String,
        /// The deadline given.
        at: Timestamp,
        /// The `now` given.
        now: Timestamp,
    },
}

impl From<LedgerError> for WalletError {
    fn from(error: LedgerError) -> WalletError {
        WalletError::Ledger { error }
    }
}

type Result<T> = core::result::Result<T, WalletError>;

/// Which credit a wallet payment spends first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpendOrder {
    /// Usable gift credit first (earliest expiry first), then paid credit.
    #[default]
    GiftFirst,
    /// Paid credit first, then gift credit.
    PaidFirst,
}

/// How an order is paid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentSource {
    /// From the rider's wallet (gift and paid credit).
    #[default]
    Wallet,
    /// Directly through a payment channel (WeChat Pay, Alipay): debits payment clearing.
    Channel,
}

/// Where the paid part of a refund goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundDestination {
    /// Back into the rider's paid wallet balance.
    #[default]
    Wallet,
    /// Back to the payment channel, through refunds payable.
    OriginalChannel,
}

/// The platform accounts wallets use, and the spending rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalletConfig {
    /// Currency of every wallet.
    #[serde(default)]
    pub currency: Currency,
    /// Which credit is spent first.
    #[serde(default)]
    pub spend_order: SpendOrder,
    /// Payment clearing ([`AccountKind::PaymentClearing`]): top-ups come from here.
    pub clearing_account: Key,
    /// Promotion ([`AccountKind::Promotion`]): funds gift credit, takes back lapsed gift credit.
    pub promotion_account: Key,
    /// Refunds payable ([`AccountKind::RefundsPayable`]).
    pub refunds_payable_account: Key,
}

impl WalletConfig {
    /// CNY, gift first, accounts `platform:clearing`, `platform:promotion`,
    /// `platform:refunds_payable`.
    pub fn standard() -> WalletConfig {
        WalletConfig {
            currency: Currency::CNY,
            spend_order: SpendOrder::GiftFirst,
            clearing_account: Key::lit("platform:clearing"),
            promotion_account: Key::lit("platform:promotion"),
            refunds_payable_account: Key::lit("platform:refunds_payable"),
        }
    }
}

/// A lot of gift credit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GiftLot {
    /// The op id that granted it.
    pub grant: Key,
    /// What is left of it.
    pub remaining: Money,
    /// Usable while `now < expires_at`.
    pub expires_at: Timestamp,
}

/// A rider's wallet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RiderWallet {
    /// The rider.
    pub rider: Key,
    /// `{rider}:wallet`.
    pub paid_account: Key,
    /// `{rider}:gift`.
    pub gift_account: Key,
    /// Whether the paid balance may go negative.
    pub allow_negative: bool,
    /// Gift lots with something left, earliest expiry first.
    pub lots: Vec<GiftLot>,
}

/// Part of an order paid with one gift lot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GiftUse {
    /// The lot's grant op id.
    pub grant: Key,
    /// Its expiry.
    pub expires_at: Timestamp,
    /// How much of the lot the order used.
    pub amount: Money,
    /// How much of that was refunded.
    pub refunded: Money,
}

/// The state of an order's payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Pre-authorised: a hold on the wallet.
    Authorized,
    /// Charged (refundable).
    Paid,
    /// The authorisation was released (voided or lapsed) without a charge.
    Released,
}

/// An order's payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderPayment {
    /// The order.
    pub order: Key,
    /// The rider.
    pub rider: Key,
    /// Wallet or channel.
    pub source: PaymentSource,
    /// The account credited (revenue, package liability, …).
    pub credit_account: Key,
    /// The transfer code used.
    pub code: Key,
    /// State.
    pub status: OrderStatus,
    /// The hold of an authorisation.
    pub hold: Option<Key>,
    /// The amount held by an authorisation.
    pub authorized: Money,
    /// The amount charged.
    pub charged: Money,
    /// Of which paid credit (or channel money).
    pub from_paid: Money,
    /// Of which gift credit.
    pub from_gift: Money,
    /// The gift lots used.
    pub gift_used: Vec<GiftUse>,
    /// Refunded so far, paid part.
    pub refunded_paid: Money,
    /// Refunded so far, gift part (restored or forfeited).
    pub refunded_gift: Money,
}

impl OrderPayment {
    /// What can still be refunded: charged − refunded.
    pub fn refundable(&self) -> Money {
        let c = self.charged.currency();
        Money::from_minor(
            minor(self.charged) - minor(self.refunded_paid) - minor(self.refunded_gift),
            c,
        )
    }
}

/// A wallet operation. JSON: `{"op": "top_up", "rider": "r1", "amount": "20.00"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum WalletOp {
    /// Opens a rider's wallet (creates its two accounts).
    Open {
        /// The rider (at most 41 bytes).
        rider: Key,
        /// Whether the paid balance may go negative.
        #[serde(default)]
        allow_negative: bool,
    },
    /// Money in from a payment channel: clearing → wallet.
    TopUp {
        /// The rider.
        rider: Key,
        /// A positive amount.
        amount: Money,
    },
    /// Gift credit: promotion → gift, usable until `expires_at`.
    GrantGift {
        /// The rider.
        rider: Key,
        /// A positive amount.
        amount: Money,
        /// When the lot lapses; must be after now.
        expires_at: Timestamp,
    },
    /// Pays an order: wallet (gift and paid per the spend order) or channel → `credit_account`.
    Pay {
        /// The rider.
        rider: Key,
        /// The order (paid once).
        order: Key,
        /// A positive amount.
        amount: Money,
        /// The account credited: platform revenue, package liability, …
        credit_account: Key,
        /// The transfer code (product), e.g. `swap_fee`, `package_purchase`.
        code: Key,
        /// Wallet or channel.
        #[serde(default)]
        source: PaymentSource,
    },
    /// Pre-authorises an order on the paid wallet balance: a hold.
    Authorize {
        /// The rider.
        rider: Key,
        /// The order.
        order: Key,
        /// The amount held.
        amount: Money,
        /// The account credited when captured.
        credit_account: Key,
        /// The transfer code.
        code: Key,
        /// When the hold lapses, if ever.
        #[serde(default)]
        expires_at: Option<Timestamp>,
    },
    /// Captures an authorisation in full (`amount` omitted) or in part; the rest is released.
    Capture {
        /// The order.
        order: Key,
        /// How much to charge.
        #[serde(default)]
        amount: Option<Money>,
    },
    /// Releases an authorisation without a charge.
    Release {
        /// The order.
        order: Key,
    },
    /// Refunds (part of) a paid order.
    Refund {
        /// The order.
        order: Key,
        /// A positive amount, at most what is refundable.
        amount: Money,
        /// Where the paid part goes.
        #[serde(default)]
        destination: RefundDestination,
    },
    /// Pays unused paid credit back to the rider's channel: wallet → refunds payable.
    Withdraw {
        /// The rider.
        rider: Key,
        /// A positive amount, at most the available paid balance.
        amount: Money,
    },
    /// Records a payout of refunds payable through the channel: refunds payable → clearing.
    Payout {
        /// A positive amount, at most the refunds payable balance.
        amount: Money,
    },
}

/// A rider's balances at `now`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalletBalance {
    /// The rider.
    pub rider: Key,
    /// Posted paid balance.
    pub paid: Money,
    /// Paid balance minus open authorisations.
    pub paid_available: Money,
    /// Usable gift credit (lots with `now < expires_at`).
    pub gift: Money,
    /// Gift credit in lapsed lots not yet returned by [`Wallets::expire_gifts`].
    pub gift_lapsed: Money,
}

/// The result of an op.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalletReceipt {
    /// The op id.
    pub op_id: Key,
    /// The transfers it made, in order.
    pub transfers: Vec<Transfer>,
    /// The rider's balances after the op (none for a payout).
    pub balance: Option<WalletBalance>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct OpRecord {
    op: WalletOp,
    receipt: WalletReceipt,
}

/// All wallets, order payments and applied ops. Serde-able; pair it with the
/// [`Ledger`] it posts to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Wallets {
    config: WalletConfig,
    riders: BTreeMap<Key, RiderWallet>,
    orders: BTreeMap<Key, OrderPayment>,
    ops: BTreeMap<Key, OpRecord>,
}

fn minor(m: Money) -> i64 {
    m.to_minor().unwrap_or(0)
}

/// A positive whole-minor-unit amount in `currency`.
fn amount_in(field: &str, amount: Money, currency: Currency) -> Result<i64> {
    let bad = |expected: String| WalletError::InvalidAmount {
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

impl Wallets {
    /// No wallets yet.
    pub fn new(config: WalletConfig) -> Wallets {
        Wallets {
            config,
            riders: BTreeMap::new(),
            orders: BTreeMap::new(),
            ops: BTreeMap::new(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &WalletConfig {
        &self.config
    }

    /// Creates the platform accounts of the configuration in `ledger`
    /// (idempotent). Refunds payable cannot go negative.
    pub fn create_platform_accounts(&self, ledger: &mut Ledger, now: Timestamp) -> Result<()> {
        let c = &self.config;
        for spec in [
            NewAccount::new(c.clearing_account, AccountKind::PaymentClearing),
            NewAccount::new(c.promotion_account, AccountKind::Promotion),
            NewAccount::new(c.refunds_payable_account, AccountKind::RefundsPayable).no_overdraft(),
        ] {
            ledger.create_account(&spec.in_currency(c.currency), now)?;
        }
        Ok(())
    }

    /// A rider's wallet.
    pub fn rider(&self, rider: &Key) -> Option<&RiderWallet> {
        self.riders.get(rider)
    }

    /// Every wallet, by rider.
    pub fn riders(&self) -> impl Iterator<Item = &RiderWallet> {
        self.riders.values()
    }

    /// An order's payment.
    pub fn order(&self, order: &Key) -> Option<&OrderPayment> {
        self.orders.get(order)
    }

    /// Every order payment, by order.
    pub fn orders(&self) -> impl Iterator<Item = &OrderPayment> {
        self.orders.values()
    }

    /// A rider's balances at `now`.
    pub fn balance(&self, rider: &Key, ledger: &Ledger, now: Timestamp) -> Result<WalletBalance> {
        let w = self
            .riders
            .get(rider)
            .ok_or(WalletError::RiderNotFound { rider: *rider })?;
        let acct = ledger
            .account(&w.paid_account)
            .ok_or(LedgerError::AccountNotFound {
                field: "paid_account".to_owned(),
                account: w.paid_account,
            })?;
        let cur = self.config.currency;
        let (usable, lapsed) = split_lots(&w.lots, now);
        Ok(WalletBalance {
            rider: *rider,
            paid: acct.posted_balance(),
            paid_available: acct.available(),
            gift: Money::from_minor(usable, cur),
            gift_lapsed: Money::from_minor(lapsed, cur),
        })
    }

    /// Applies `op` under `op_id` at `now`. Idempotent by `op_id`; a
    /// rejected op changes neither the wallets nor the ledger.
    pub fn apply(
        &mut self,
        op_id: Key,
        op: &WalletOp,
        ledger: &mut Ledger,
        now: Timestamp,
    ) -> Result<WalletReceipt> {
        if let Some(rec) = self.ops.get(&op_id) {
            return if rec.op == *op {
                Ok(rec.receipt.clone())
            } else {
                Err(WalletError::OpConflict { op_id })
            };
        }
        // Leg ids must fit: check the longest suffix up front.
        op_id.suffixed(".forfeit", "op_id")?;
        // `run` validates everything and applies the op's transfers as one
        // atomic ledger batch before it touches `self`; nothing after the
        // batch can fail, so a refusal leaves both unchanged.
        let (transfers, rider) = self.run(op_id, op, ledger, now)?;
        let balance = rider.and_then(|r| self.balance(&r, ledger, now).ok());
        let receipt = WalletReceipt {
            op_id,
            transfers,
            balance,
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

    /// Returns every lapsed gift lot (`expires_at <= now`) to the promotion
    /// account, one transfer per lot with id `{grant}.expired` and code
    /// `gift_expire`, atomically. Calling it again changes nothing.
    pub fn expire_gifts(&mut self, ledger: &mut Ledger, now: Timestamp) -> Result<Vec<Transfer>> {
        let mut cmds = Vec::new();
        let code = Key::new(codes::GIFT_EXPIRE)?;
        for w in self.riders.values() {
            for lot in w
                .lots
                .iter()
                .filter(|l| l.expires_at <= now && l.remaining.is_positive())
            {
                cmds.push(Command::Transfer {
                    id: lot.grant.suffixed(".expired", "grant")?,
                    debit_account: w.gift_account,
                    credit_account: self.config.promotion_account,
                    amount: lot.remaining,
                    code,
                    reference: Some(w.rider),
                });
            }
        }
        if cmds.is_empty() {
            return Ok(Vec::new());
        }
        let out = ledger.apply_batch(&cmds, now)?;
        for w in self.riders.values_mut() {
            w.lots.retain(|l| l.expires_at > now);
        }
        Ok(out)
    }

    /// Marks authorisations whose holds lapsed in the ledger as released
    /// (call after [`Ledger::expire_pending`]). Returns the orders released.
    pub fn sync_expired_holds(&mut self, ledger: &Ledger) -> Vec<Key> {
        let mut out = Vec::new();
        for o in self.orders.values_mut() {
            if o.status != OrderStatus::Authorized {
                continue;
            }
            let lapsed = o.hold.and_then(|h| ledger.pending_status(&h));
            if matches!(lapsed, Some(PendingStatus::Expired { .. })) {
                o.status = OrderStatus::Released;
                out.push(o.order);
            }
        }
        out
    }

    fn wallet(&self, rider: &Key) -> Result<&RiderWallet> {
        self.riders
            .get(rider)
            .ok_or(WalletError::RiderNotFound { rider: *rider })
    }

    fn order_mut(&mut self, order: &Key) -> Result<&mut OrderPayment> {
        self.orders
            .get_mut(order)
            .ok_or(WalletError::OrderNotFound { order: *order })
    }

    /// Runs an op: checks, then one ledger batch, then (infallible) updates of `self`.
    fn run(
        &mut self,
        op_id: Key,
        op: &WalletOp,
        ledger: &mut Ledger,
        now: Timestamp,
    ) -> Result<(Vec<Transfer>, Option<Key>)> {
        let cfg = self.config;
        let cur = cfg.currency;
        let leg = |s: &str| op_id.suffixed(s, "op_id");
        match *op {
            WalletOp::Open {
                rider,
                allow_negative,
            } => {
                if let Some(w) = self.riders.get(&rider) {
                    return if w.allow_negative == allow_negative {
                        Ok((Vec::new(), Some(rider)))
                    } else {
                        Err(WalletError::RiderExists {
                            rider,
                            allow_negative: w.allow_negative,
                        })
                    };
                }
                let paid = rider.suffixed(":wallet", "rider")?;
                let gift = rider.suffixed(":gift", "rider")?;
                let mut paid_spec = NewAccount::new(paid, AccountKind::RiderWallet)
                    .owned_by(rider)
                    .in_currency(cur);
                if !allow_negative {
                    paid_spec = paid_spec.no_overdraft();
                }
                let gift_spec = NewAccount::new(gift, AccountKind::RiderGift)
                    .owned_by(rider)
                    .in_currency(cur)
                    .no_overdraft();
                // Check both before creating either, so a refusal changes nothing.
                for spec in [&paid_spec, &gift_spec] {
                    if let Some(a) = ledger.account(&spec.id) {
                        if a.kind != spec.kind
                            || a.flags != spec.flags
                            || a.owner != spec.owner
                            || a.currency != spec.currency
                        {
                            return Err(LedgerError::AccountExists {
                                account: spec.id,
                                field: "definition".to_owned(),
                            }
                            .into());
                        }
                    }
                }
                ledger.create_account(&paid_spec, now)?;
                ledger.create_account(&gift_spec, now)?;
                self.riders.insert(
                    rider,
                    RiderWallet {
                        rider,
                        paid_account: paid,
                        gift_account: gift,
                        allow_negative,
                        lots: Vec::new(),
                    },
                );
                Ok((Vec::new(), Some(rider)))
            }
            WalletOp::TopUp { rider, amount } => {
                amount_in("amount", amount, cur)?;
                let w = self.wallet(&rider)?;
                let t = ledger.apply_batch(
                    &[Command::Transfer {
                        id: op_id,
                        debit_account: cfg.clearing_account,
                        credit_account: w.paid_account,
                        amount,
                        code: Key::new(codes::TOP_UP)?,
                        reference: Some(rider),
                    }],
                    now,
                )?;
                Ok((t, Some(rider)))
            }
            WalletOp::GrantGift {
                rider,
                amount,
                expires_at,
            } => {
                amount_in("amount", amount, cur)?;
                if expires_at <= now {
                    return Err(WalletError::NotInFuture {
                        field: "expires_at".to_owned(),
                        at: expires_at,
                        now,
                    });
                }
                let w = self.wallet(&rider)?;
                let t = ledger.apply_batch(
                    &[Command::Transfer {
                        id: op_id,
                        debit_account: cfg.promotion_account,
                        credit_account: w.gift_account,
                        amount,
                        code: Key::new(codes::GIFT_GRANT)?,
                        reference: Some(rider),
                    }],
                    now,
                )?;
                if let Some(w) = self.riders.get_mut(&rider) {
                    add_lot(&mut w.lots, op_id, amount, expires_at);
                }
                Ok((t, Some(rider)))
            }
            WalletOp::Pay {
                rider,
                order,
                amount,
                credit_account,
                code,
                source,
            } => {
                let total = amount_in("amount", amount, cur)?;
                if self.orders.contains_key(&order) {
                    return Err(WalletError::OrderExists { order });
                }
                let w = self.wallet(&rider)?.clone();
                let reference = Some(order);
                let (mut from_gift, mut from_paid) = (0i64, total);
                let mut cmds = Vec::new();
                let mut uses = Vec::new();
                let mut lots = w.lots.clone();
                match source {
                    PaymentSource::Channel => cmds.push(Command::Transfer {
                        id: op_id,
                        debit_account: cfg.clearing_account,
                        credit_account,
                        amount,
                        code,
                        reference,
                    }),
                    PaymentSource::Wallet => {
                        let (usable, _) = split_lots(&w.lots, now);
                        let paid_avail = self.paid_available(&w, ledger)?;
                        (from_gift, from_paid) = match cfg.spend_order {
                            SpendOrder::GiftFirst => {
                                let g = usable.min(total);
                                (g, total - g)
                            }
                            SpendOrder::PaidFirst => {
                                let p = paid_avail.max(0).min(total);
                                let g = usable.min(total - p);
                                (g, total - g)
                            }
                        };
                        if !w.allow_negative && from_paid > paid_avail {
                            return Err(WalletError::InsufficientFunds {
                                field: "amount".to_owned(),
                                rider,
                                needed: amount,
                                available: Money::from_minor(
                                    usable.saturating_add(paid_avail.max(0)),
                                    cur,
                                ),
                            });
                        }
                        if from_gift > 0 {
                            uses = take_from_lots(&mut lots, from_gift, now, cur);
                            cmds.push(Command::Transfer {
                                id: leg(".gift")?,
                                debit_account: w.gift_account,
                                credit_account,
                                amount: Money::from_minor(from_gift, cur),
                                code,
                                reference,
                            });
                        }
                        if from_paid > 0 {
                            cmds.push(Command::Transfer {
                                id: leg(".paid")?,
                                debit_account: w.paid_account,
                                credit_account,
                                amount: Money::from_minor(from_paid, cur),
                                code,
                                reference,
                            });
                        }
                    }
                }
                let t = ledger.apply_batch(&cmds, now)?;
                if let Some(w) = self.riders.get_mut(&rider) {
                    w.lots = lots;
                }
                let zero = Money::zero(cur);
                self.orders.insert(
                    order,
                    OrderPayment {
                        order,
                        rider,
                        source,
                        credit_account,
                        code,
                        status: OrderStatus::Paid,
                        hold: None,
                        authorized: zero,
                        charged: amount,
                        from_paid: Money::from_minor(from_paid, cur),
                        from_gift: Money::from_minor(from_gift, cur),
                        gift_used: uses,
                        refunded_paid: zero,
                        refunded_gift: zero,
                    },
                );
                Ok((t, Some(rider)))
            }
            WalletOp::Authorize {
                rider,
                order,
                amount,
                credit_account,
                code,
                expires_at,
            } => {
                amount_in("amount", amount, cur)?;
                if self.orders.contains_key(&order) {
                    return Err(WalletError::OrderExists { order });
                }
                let w = self.wallet(&rider)?;
                let t = ledger.apply_batch(
                    &[Command::Hold {
                        id: op_id,
                        debit_account: w.paid_account,
                        credit_account,
                        amount,
                        code,
                        reference: Some(order),
                        expires_at,
                    }],
                    now,
                )?;
                let zero = Money::zero(cur);
                self.orders.insert(
                    order,
                    OrderPayment {
                        order,
                        rider,
                        source: PaymentSource::Wallet,
                        credit_account,
                        code,
                        status: OrderStatus::Authorized,
                        hold: Some(op_id),
                        authorized: amount,
                        charged: zero,
                        from_paid: zero,
                        from_gift: zero,
                        gift_used: Vec::new(),
                        refunded_paid: zero,
                        refunded_gift: zero,
                    },
                );
                Ok((t, Some(rider)))
            }
            WalletOp::Capture { order, amount } => {
                if let Some(a) = amount {
                    amount_in("amount", a, cur)?;
                }
                let o = self.order_mut(&order)?;
                let hold = match (o.status, o.hold) {
                    (OrderStatus::Authorized, Some(h)) => h,
                    _ => return Err(order_state(o, "authorized")),
                };
                let t = ledger.apply_batch(
                    &[Command::Post {
                        id: op_id,
                        pending_id: hold,
                        amount,
                    }],
                    now,
                )?;
                let charged = t.first().map_or(Money::zero(cur), |t| t.amount);
                o.status = OrderStatus::Paid;
                o.charged = charged;
                o.from_paid = charged;
                Ok((t, Some(o.rider)))
            }
            WalletOp::Release { order } => {
                let o = self.order_mut(&order)?;
                let hold = match (o.status, o.hold) {
                    (OrderStatus::Authorized, Some(h)) => h,
                    _ => return Err(order_state(o, "authorized")),
                };
                let lapsed = matches!(
                    ledger.pending_status(&hold),
                    Some(PendingStatus::Expired { .. })
                );
                let t = if lapsed {
                    Vec::new()
                } else {
                    ledger.apply_batch(
                        &[Command::Void {
                            id: op_id,
                            pending_id: hold,
                        }],
                        now,
                    )?
                };
                o.status = OrderStatus::Released;
                Ok((t, Some(o.rider)))
            }
            WalletOp::Refund {
                order,
                amount,
                destination,
            } => self.refund(op_id, order, amount, destination, ledger, now),
            WalletOp::Withdraw { rider, amount } => {
                let a = amount_in("amount", amount, cur)?;
                let w = self.wallet(&rider)?;
                let avail = self.paid_available(w, ledger)?;
                if a > avail {
                    return Err(WalletError::InsufficientFunds {
                        field: "amount".to_owned(),
                        rider,
                        needed: amount,
                        available: Money::from_minor(avail.max(0), cur),
                    });
                }
                let t = ledger.apply_batch(
                    &[Command::Transfer {
                        id: op_id,
                        debit_account: w.paid_account,
                        credit_account: cfg.refunds_payable_account,
                        amount,
                        code: Key::new(codes::WITHDRAW)?,
                        reference: Some(rider),
                    }],
                    now,
                )?;
                Ok((t, Some(rider)))
            }
            WalletOp::Payout { amount } => {
                amount_in("amount", amount, cur)?;
                let t = ledger.apply_batch(
                    &[Command::Transfer {
                        id: op_id,
                        debit_account: cfg.refunds_payable_account,
                        credit_account: cfg.clearing_account,
                        amount,
                        code: Key::new(codes::REFUND_PAYOUT)?,
                        reference: None,
                    }],
                    now,
                )?;
                Ok((t, None))
            }
        }
    }

    fn paid_available(&self, w: &RiderWallet, ledger: &Ledger) -> Result<i64> {
        let a = ledger
            .account(&w.paid_account)
            .ok_or(LedgerError::AccountNotFound {
                field: "paid_account".to_owned(),
                account: w.paid_account,
            })?;
        Ok(minor(a.available()))
    }

    fn refund(
        &mut self,
        op_id: Key,
        order: Key,
        amount: Money,
        destination: RefundDestination,
        ledger: &mut Ledger,
        now: Timestamp,
    ) -> Result<(Vec<Transfer>, Option<Key>)> {
        let cfg = self.config;
        let cur = cfg.currency;
        let a = amount_in("amount", amount, cur)?;
        let o = self
            .orders
            .get(&order)
            .ok_or(WalletError::OrderNotFound { order })?
            .clone();
        if o.status != OrderStatus::Paid {
            return Err(order_state(&o, "paid"));
        }
        let refundable = minor(o.refundable());
        if a > refundable {
            return Err(WalletError::RefundExceedsPaid {
                order,
                refundable: o.refundable(),
                requested: amount,
            });
        }
        let w = self.wallet(&o.rider)?.clone();
        let gift_left = minor(o.from_gift) - minor(o.refunded_gift);
        let gift_part = a.min(gift_left);
        let paid_part = a - gift_part;
        // Gift part: back to the lots it came from, latest expiry first.
        let mut uses = o.gift_used.clone();
        let mut lots = w.lots.clone();
        let (mut restored, mut forfeited) = (0i64, 0i64);
        let mut todo = gift_part;
        let mut order_idx: Vec<usize> = (0..uses.len()).collect();
        order_idx.sort_by(|x, y| {
            let ex = uses.get(*x).map(|u| u.expires_at);
            let ey = uses.get(*y).map(|u| u.expires_at);
            ey.cmp(&ex)
        });
        for i in order_idx {
            if todo == 0 {
                break;
            }
            let Some(u) = uses.get_mut(i) else { continue };
            let take = (minor(u.amount) - minor(u.refunded)).min(todo);
            if take <= 0 {
                continue;
            }
            todo -= take;
            u.refunded = Money::from_minor(minor(u.refunded) + take, cur);
            if u.expires_at > now {
                restored += take;
                add_lot(
                    &mut lots,
                    u.grant,
                    Money::from_minor(take, cur),
                    u.expires_at,
                );
            } else {
                forfeited += take;
            }
        }
        let reference = Some(order);
        let mut cmds = Vec::new();
        if restored > 0 {
            cmds.push(Command::Transfer {
                id: op_id.suffixed(".gift", "op_id")?,
                debit_account: o.credit_account,
                credit_account: w.gift_account,
                amount: Money::from_minor(restored, cur),
                code: Key::new(codes::REFUND_TO_WALLET)?,
                reference,
            });
        }
        if forfeited > 0 {
            cmds.push(Command::Transfer {
                id: op_id.suffixed(".forfeit", "op_id")?,
                debit_account: o.credit_account,
                credit_account: cfg.promotion_account,
                amount: Money::from_minor(forfeited, cur),
                code: Key::new(codes::REFUND_GIFT_FORFEIT)?,
                reference,
            });
        }
        if paid_part > 0 {
            let (credit_account, code) = match destination {
                RefundDestination::Wallet => (w.paid_account, codes::REFUND_TO_WALLET),
                RefundDestination::OriginalChannel => {
                    (cfg.refunds_payable_account, codes::REFUND_TO_CHANNEL)
                }
            };
            cmds.push(Command::Transfer {
                id: op_id.suffixed(".paid", "op_id")?,
                debit_account: o.credit_account,
                credit_account,
                amount: Money::from_minor(paid_part, cur),
                code: Key::new(code)?,
                reference,
            });
        }
        let t = ledger.apply_batch(&cmds, now)?;
        if let Some(w) = self.riders.get_mut(&o.rider) {
            w.lots = lots;
        }
        if let Some(p) = self.orders.get_mut(&order) {
            p.gift_used = uses;
            p.refunded_gift = Money::from_minor(minor(p.refunded_gift) + gift_part, cur);
            p.refunded_paid = Money::from_minor(minor(p.refunded_paid) + paid_part, cur);
        }
        Ok((t, Some(o.rider)))
    }
}

fn order_state(o: &OrderPayment, expected: &str) -> WalletError {
    let state = match o.status {
        OrderStatus::Authorized => "authorized",
        OrderStatus::Paid => "paid",
        OrderStatus::Released => "released",
    };
    WalletError::OrderState {
        order: o.order,
        state: state.to_owned(),
        expected: expected.to_owned(),
    }
}

/// (usable, lapsed) gift credit in minor units.
fn split_lots(lots: &[GiftLot], now: Timestamp) -> (i64, i64) {
    lots.iter().fold((0, 0), |(u, l), lot| {
        if lot.expires_at > now {
            (u + minor(lot.remaining), l)
        } else {
            (u, l + minor(lot.remaining))
        }
    })
}

/// Adds to the lot of `grant` (or a new one), keeping lots ordered by (expiry, grant).
fn add_lot(lots: &mut Vec<GiftLot>, grant: Key, amount: Money, expires_at: Timestamp) {
    if let Some(l) = lots.iter_mut().find(|l| l.grant == grant) {
        l.remaining = Money::from_minor(minor(l.remaining) + minor(amount), amount.currency());
        return;
    }
    lots.push(GiftLot {
        grant,
        remaining: amount,
        expires_at,
    });
    lots.sort_by(|a, b| a.expires_at.cmp(&b.expires_at).then(a.grant.cmp(&b.grant)));
}

/// Takes `amount` from usable lots, earliest expiry first; drops emptied lots.
fn take_from_lots(
    lots: &mut Vec<GiftLot>,
    amount: i64,
    now: Timestamp,
    cur: Currency,
) -> Vec<GiftUse> {
    let mut todo = amount;
    let mut uses = Vec::new();
    for lot in lots.iter_mut().filter(|l| l.expires_at > now) {
        if todo == 0 {
            break;
        }
        let take = minor(lot.remaining).min(todo);
        if take <= 0 {
            continue;
        }
        todo -= take;
        lot.remaining = Money::from_minor(minor(lot.remaining) - take, cur);
        uses.push(GiftUse {
            grant: lot.grant,
            expires_at: lot.expires_at,
            amount: Money::from_minor(take, cur),
            refunded: Money::zero(cur),
        });
    }
    lots.retain(|l| l.remaining.is_positive());
    uses
}

#[cfg(test)]
mod tests;
