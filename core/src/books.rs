//! The books: one [`Ledger`] with the wallets, deposits, packages and
//! revenue-sharing rules that post to it, behind one idempotent operation
//! API. This is where package money and revenue splits go through the
//! ledger, so that no operation can create or lose a fen.
//!
//! [`Books`] owns the state; [`Books::apply`] takes an operation id, a time
//! and a [`BooksOp`] and returns a [`BooksReceipt`] (every transfer, package
//! event, revenue split and fee it made). It reuses the modules that own the
//! rules and adds only the glue:
//!
//! - payments and refunds are [`crate::wallet`] ops (so gift credit, spend
//!   order and "refunds never exceed what was charged" are the wallet's);
//! - deposits are [`crate::deposit`] ops;
//! - prices, entitlements, fees and refund amounts are [`crate::package`]
//!   decisions; the books post the money the events carry and recognise
//!   revenue as [`Package::liability`] falls;
//! - revenue is split with [`settlement::split`].
//!
//! **Package liability.** Each package has its own ledger account
//! `{package}:liability` ([`AccountKind::PackageLiability`], no overdraft).
//! After every operation on a package at `now`, its balance equals
//! `Package::liability(now)`: the operation posts the payments its events
//! carry (purchase, renewal, upgrade charge) into the account, the refunds
//! (refund, downgrade) out of it, and the rest of the change — swaps
//! consumed, days used, breakage at expiry — as recognised revenue:
//!
//! ```text
//! recognised = balance before + payments − refunds − Package::liability(now)
//! ```
//!
//! A positive amount moves liability → platform revenue (`package_consume`)
//! and is split with the revenue rules over the package's agent chain
//! (platform revenue → `{node}:revenue`, `revenue_share`); a negative amount
//! (a reversed consumption) moves back, and the shares are reversed with it.
//! Time-limited packages earn revenue as days pass, so between operations
//! their liability falls without a posting: a [`BooksOp::Tick`] brings a
//! package's books to `now` (run it daily, or at the package's
//! [`Package::next_deadline`]). [`Books::reconcile`] compares every package's
//! balance with `Package::liability(at)`, every agent account with the
//! settlement totals of the recorded splits, deposits outstanding with the
//! held balance, and checks that debits equal credits.
//!
//! **Fees.** A freeze or overdue fee (on `unfrozen` and `overdue_settled`
//! events) is paid from the rider's wallet as far as it can (all of it for a
//! wallet that may go negative); the rest is booked to the rider's
//! receivable `{rider}:receivable` ([`AccountKind::Receivable`], credits may
//! not exceed debits). Either way the fee is platform revenue and is split
//! (product type `fee`). [`BooksOp::SettleReceivable`] pays a receivable
//! down from the wallet or a payment channel. Fees are collected after the
//! operation's refund, so a refund to the wallet can pay them.
//!
//! **Atomic and idempotent.** An operation id may be used once: the same id
//! with the same operation returns the original receipt and changes nothing;
//! with a different operation it is [`BooksError::OpConflict`]. A refused
//! operation changes nothing — not the ledger, not the wallets, deposits or
//! packages: the books remember a savepoint of the ledger and the wallet and
//! deposit records each step touches, and put them back on failure. The ids
//! of the transfers and sub-operations are derived from the operation id
//! (`{op}.pay`, `{op}.dep`, `{op}.rec`, `{op}.rec.s1`, `{op}.fe0`,
//! `{op}.r00`, …), so operation ids may be at most [`MAX_OP_ID`] bytes.
//!
//! **Time.** Operations carry a UTC [`Timestamp`] and must not go back in
//! time; packages see local time, `at + utc_offset_seconds`
//! ([`BooksConfig::utc_offset_seconds`], 28,800 for UTC+8 by default).
//!
//! ```
//! use chargeswap_core::books::{Books, BooksConfig, BooksOp};
//! use chargeswap_core::ledger::Key;
//! use chrono::{Duration, TimeZone, Utc};
//!
//! let t0 = Utc.with_ymd_and_hms(2026, 5, 1, 0, 0, 0).unwrap(); // 08:00 in UTC+8
//! let mut books = Books::new(BooksConfig::default(), t0)?;
//! let k = |s: &str| Key::new(s).unwrap();
//! books.apply(k("o1"), t0, &BooksOp::OpenRider { rider: k("r1"), allow_negative: false })?;
//! books.apply(k("o2"), t0, &BooksOp::TopUp { rider: k("r1"), amount: "200".parse()? })?;
//! let product = serde_json::from_str(r#"{"id": "swap-30", "price": "150.00",
//!     "validity": {"days": 30}, "swaps": {"limited": 30}, "refund": {"window_days": 7}}"#)?;
//! books.apply(k("o3"), t0, &BooksOp::Purchase {
//!     package: k("P1"), rider: k("r1"), product: Box::new(product), paid: None,
//!     profile: Default::default(), source: Default::default(), chain: vec![],
//!     deposit: Default::default(), defer_fees: false,
//! })?;
//! let swap = BooksOp::Consume { package: k("P1"), order: "SW-1".into(), swaps: 1 };
//! let r = books.apply(k("o4"), t0 + Duration::hours(1), &swap)?;
//! // 150.00 / 30 = 5.00 recognised: P1:liability -> platform:revenue
//! assert_eq!(r.transfers[0].amount.to_string(), "¥5.00");
//! // the same swap order under another op id consumes nothing
//! assert!(books.apply(k("o5"), t0 + Duration::hours(1), &swap)?.transfers.is_empty());
//! let rec = books.reconcile(t0 + Duration::hours(1))?;
//! assert!(rec.agrees);
//! assert_eq!(rec.package_liability_ledger.to_string(), "¥145.00");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, FixedOffset, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::deposit::{
    DeductReason, DepositConfig, DepositError, DepositKind, DepositOp, DepositReconciliation,
    DepositStatus, DepositUndo, Deposits,
};
use crate::ledger::{
    AccountFlags, AccountKind, Command, Expiry, Key, Ledger, LedgerError, NewAccount, Phase,
    Savepoint, Timestamp, Totals, Transfer, codes,
};
use crate::money::{Currency, Money};
use crate::package::{self, Event, Package, PackageError, Product, Purchase, RiderProfile};
use crate::report::{self, ReportError};
use crate::settlement::{
    self, ProductType, RevenueOrder, RevenueRules, SettlementError, SplitPart, SplitResult,
};
use crate::wallet::{
    PaymentSource, RefundDestination, WalletConfig, WalletError, WalletOp, WalletUndo, Wallets,
};

/// The longest operation id, in bytes: the ids derived from it must fit a
/// [`Key`] (wallet and deposit sub-operation ids are at most 40 bytes).
pub const MAX_OP_ID: usize = 36;

/// Errors of the books. A refused operation changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BooksError {
    /// The ledger refused a transfer, an account or an id.
    #[error("ledger: {error}")]
    Ledger {
        /// The ledger's error.
        error: Box<LedgerError>,
    },
    /// The wallet module refused a payment or refund.
    #[error("wallet: {error}")]
    Wallet {
        /// The wallet module's error.
        error: Box<WalletError>,
    },
    /// The deposit module refused an op.
    #[error("deposit: {error}")]
    Deposit {
        /// The deposit module's error.
        error: Box<DepositError>,
    },
    /// The package refused a command.
    #[error("package: {error}")]
    Package {
        /// The package's error.
        error: Box<PackageError>,
    },
    /// Revenue sharing refused a split (a bad chain or rules).
    #[error("settlement: {error}")]
    Settlement {
        /// The settlement module's error.
        error: Box<SettlementError>,
    },
    /// A report over the ledger failed.
    #[error("report: {error}")]
    Report {
        /// The report's error.
        error: Box<ReportError>,
    },
    /// The operation id was used for a different operation.
    #[error("op_id {op_id} was already used for a different operation; use a new op_id")]
    OpConflict {
        /// The operation id.
        op_id: Key,
    },
    /// The operation id is too long for the ids derived from it.
    #[error("op_id {op_id} is {len} bytes; at most {max} bytes are allowed")]
    OpIdTooLong {
        /// The operation id.
        op_id: Key,
        /// Its length.
        len: usize,
        /// The limit ([`MAX_OP_ID`]).
        max: usize,
    },
    /// `at` is before the last operation.
    #[error(
        "at ({at}) is before the last operation ({last}); the books' time must not go backwards"
    )]
    TimeWentBackwards {
        /// The time given.
        at: Timestamp,
        /// The last operation's time.
        last: Timestamp,
    },
    /// A configuration field is unusable.
    #[error("config field {field} is invalid: expected {expected}")]
    InvalidConfig {
        /// The field.
        field: String,
        /// What it should be.
        expected: String,
    },
    /// An amount is unusable.
    #[error("{field} must be {expected}, got {amount}")]
    InvalidAmount {
        /// The field.
        field: String,
        /// The amount given.
        amount: Money,
        /// What was expected.
        expected: String,
    },
    /// The rider has no wallet.
    #[error("rider {rider} has no wallet; open one first (op open_rider)")]
    RiderNotFound {
        /// The rider.
        rider: Key,
    },
    /// The package id is taken.
    #[error("package {package} already exists; use a new package id")]
    PackageExists {
        /// The package.
        package: Key,
    },
    /// No such package.
    #[error("package {package} does not exist")]
    PackageNotFound {
        /// The package.
        package: Key,
    },
    /// The sale's order id is taken.
    #[error("order {order} was already sold; use a new order id")]
    SaleExists {
        /// The order.
        order: Key,
    },
    /// No such sale.
    #[error("order {order} was not sold through the books")]
    SaleNotFound {
        /// The order.
        order: Key,
    },
    /// The existing deposit named for a purchase cannot cover it.
    #[error("deposit {deposit} cannot cover the {required} the product needs: {reason}")]
    DepositUnusable {
        /// The deposit.
        deposit: Key,
        /// What the product needs.
        required: Money,
        /// Why not.
        reason: String,
    },
    /// A refund larger than what the package's payments can return.
    #[error(
        "package {package}: refund of {requested} exceeds the {refundable} its payments can return"
    )]
    RefundExceedsPaid {
        /// The package.
        package: Key,
        /// What the payments can still return.
        refundable: Money,
        /// What was asked for.
        requested: Money,
    },
    /// The fees a deposit settlement was told to expect differ from the
    /// package's fees due.
    #[error("package {package} has {due} of fees due, not the {expected} given")]
    FeesMismatch {
        /// The package.
        package: Key,
        /// Fees due on the books.
        due: Money,
        /// Fees given.
        expected: Money,
    },
    /// The package's deposit is not held any more.
    #[error("deposit {deposit} is {status:?}; a settlement needs it held or rented")]
    DepositNotHeld {
        /// The deposit.
        deposit: Key,
        /// Its status.
        status: DepositStatus,
    },
    /// A payout larger than what the agent is owed.
    #[error("agent {node} is owed {owed}, cannot pay out {amount}")]
    AgentOverpaid {
        /// The node.
        node: String,
        /// What it is owed.
        owed: Money,
        /// The payout asked for.
        amount: Money,
    },
    /// Arithmetic left the representable range.
    #[error("arithmetic overflow in {operation}")]
    Overflow {
        /// The operation.
        operation: String,
    },
}

macro_rules! wrap {
    ($from:ty, $variant:ident) => {
        impl From<$from> for BooksError {
            fn from(error: $from) -> BooksError {
                BooksError::$variant {
                    error: Box::new(error),
                }
            }
        }
    };
}
wrap!(LedgerError, Ledger);
wrap!(WalletError, Wallet);
wrap!(DepositError, Deposit);
wrap!(PackageError, Package);
wrap!(SettlementError, Settlement);
wrap!(ReportError, Report);

type Result<T> = core::result::Result<T, BooksError>;

fn overflow(operation: &str) -> BooksError {
    BooksError::Overflow {
        operation: operation.to_owned(),
    }
}

fn default_offset() -> i32 {
    8 * 3600
}

fn default_revenue() -> Key {
    Key::lit("platform:revenue")
}

/// The books' configuration: accounts, time zone and revenue-sharing rules.
/// Every field has a default, so `{}` is a valid configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BooksConfig {
    /// Local time = UTC + this many seconds (28,800 for UTC+8, the default).
    #[serde(default = "default_offset")]
    pub utc_offset_seconds: i32,
    /// Wallet accounts, currency and spend order ([`WalletConfig::standard`]
    /// by default). Deposits use the same clearing and refunds payable accounts.
    #[serde(default = "WalletConfig::standard")]
    pub wallet: WalletConfig,
    /// Platform revenue (`platform:revenue` by default): recognised package
    /// revenue, fees, sales and deposit deductions.
    #[serde(default = "default_revenue")]
    pub revenue_account: Key,
    /// Credit-line accounts ([`AccountKind::CreditLine`]) to create, for
    /// deposit waivers.
    #[serde(default)]
    pub credit_lines: Vec<Key>,
    /// Revenue-sharing rules, fixed for the life of the books.
    #[serde(default)]
    pub rules: RevenueRules,
}

impl Default for BooksConfig {
    fn default() -> BooksConfig {
        BooksConfig {
            utc_offset_seconds: default_offset(),
            wallet: WalletConfig::standard(),
            revenue_account: default_revenue(),
            credit_lines: Vec::new(),
            rules: RevenueRules::default(),
        }
    }
}

impl BooksConfig {
    fn offset(&self) -> Result<FixedOffset> {
        FixedOffset::east_opt(self.utc_offset_seconds).ok_or_else(|| BooksError::InvalidConfig {
            field: "utc_offset_seconds".to_owned(),
            expected: "within ±86,399 seconds (28800 for UTC+8)".to_owned(),
        })
    }

    fn currency(&self) -> Currency {
        self.wallet.currency
    }
}

/// How a purchase covers the deposit its product requires (ignored when
/// the product requires none). JSON: `{"type": "pay"}` (the default),
/// `{"type": "waive", "credit_line": "zhima"}`, `{"type": "existing", "deposit": "D1"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum DepositChoice {
    /// Pay it through the payment channel: a new deposit with the package's id.
    #[default]
    Pay,
    /// Waive it against a credit line (a hold): a new waiver with the package's id.
    Waive {
        /// The provider's credit-line account.
        credit_line: Key,
        /// When the authorisation lapses, if ever.
        #[serde(default)]
        expires_at: Option<Timestamp>,
    },
    /// A deposit or waiver the rider already holds (held or rented, enough left).
    Existing {
        /// The deposit id.
        deposit: Key,
    },
}

fn one() -> u32 {
    1
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// An operation on the books. JSON with an `op` tag:
/// `{"op": "consume", "package": "P1", "order": "SW-1"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum BooksOp {
    /// Opens a rider's wallet ([`WalletOp::Open`]).
    OpenRider {
        /// The rider (at most 37 bytes, for `{rider}:receivable`).
        rider: Key,
        /// Whether the paid balance may go negative.
        #[serde(default)]
        allow_negative: bool,
    },
    /// Money in from a payment channel to the wallet ([`WalletOp::TopUp`]).
    TopUp {
        /// The rider.
        rider: Key,
        /// A positive amount.
        amount: Money,
    },
    /// Gift credit with an expiry ([`WalletOp::GrantGift`]).
    GrantGift {
        /// The rider.
        rider: Key,
        /// A positive amount.
        amount: Money,
        /// When it lapses.
        expires_at: Timestamp,
    },
    /// Paid credit back to the rider's channel ([`WalletOp::Withdraw`]).
    Withdraw {
        /// The rider.
        rider: Key,
        /// A positive amount.
        amount: Money,
    },
    /// Refunds payable paid out through the channel ([`WalletOp::Payout`]).
    PayoutRefunds {
        /// A positive amount.
        amount: Money,
    },
    /// Pays down what a rider owes (unpaid fees): wallet or channel → receivable.
    SettleReceivable {
        /// The rider.
        rider: Key,
        /// A positive amount, at most what is owed.
        amount: Money,
        /// Wallet or channel.
        #[serde(default)]
        source: PaymentSource,
    },
    /// Buys a package: payment → `{package}:liability`, the deposit through
    /// [`crate::deposit`].
    Purchase {
        /// A new package id (at most 38 bytes, for `{package}:liability`).
        package: Key,
        /// The rider (must have a wallet, even when paying by channel).
        rider: Key,
        /// The product as sold.
        product: Box<Product>,
        /// Amount paid (default: the product's price).
        #[serde(default)]
        paid: Option<Money>,
        /// The rider, for eligibility.
        #[serde(default)]
        profile: RiderProfile,
        /// Wallet or channel.
        #[serde(default)]
        source: PaymentSource,
        /// The agent chain that shares in the package's revenue, nearest
        /// first (at most three nodes; empty for a platform-owned sale).
        #[serde(default)]
        chain: Vec<String>,
        /// How the product's deposit is covered.
        #[serde(default)]
        deposit: DepositChoice,
        /// Leave the package's fees (freeze, overdue) due, to be settled
        /// with its deposit by [`BooksOp::SettleDeposit`] (a rental settles
        /// at the return), instead of collecting each when it is decided.
        #[serde(default, skip_serializing_if = "is_false")]
        defer_fees: bool,
    },
    /// Consumes swaps for a swap order (idempotent by `order` too).
    Consume {
        /// The package.
        package: Key,
        /// The swap order.
        order: String,
        /// Swaps (default 1).
        #[serde(default = "one")]
        swaps: u32,
    },
    /// Undoes a consumption (the swap failed or was refunded): the revenue
    /// and its shares are reversed.
    ReverseConsumption {
        /// The package.
        package: Key,
        /// The swap order.
        order: String,
    },
    /// Renews the package with its product (stack or extend, per product).
    Renew {
        /// The package.
        package: Key,
        /// Amount paid (default: the product's price).
        #[serde(default)]
        paid: Option<Money>,
        /// The rider, for eligibility.
        #[serde(default)]
        profile: RiderProfile,
        /// Wallet or channel.
        #[serde(default)]
        source: PaymentSource,
    },
    /// Asks to freeze the package for some days.
    RequestFreeze {
        /// The package.
        package: Key,
        /// Days.
        days: u32,
        /// Why.
        #[serde(default)]
        reason: String,
    },
    /// Approves the pending freeze request.
    ApproveFreeze {
        /// The package.
        package: Key,
    },
    /// Rejects the pending freeze request.
    RejectFreeze {
        /// The package.
        package: Key,
        /// Why.
        #[serde(default)]
        reason: String,
    },
    /// Ends a freeze early; the freeze fee is charged.
    Unfreeze {
        /// The package.
        package: Key,
    },
    /// Upgrades or downgrades to another product, prorated: the charge is
    /// paid into the liability, the refund paid out of it.
    Change {
        /// The package.
        package: Key,
        /// The product to change to.
        to: Box<Product>,
        /// The rider, for eligibility.
        #[serde(default)]
        profile: RiderProfile,
        /// How an upgrade's charge is paid.
        #[serde(default)]
        source: PaymentSource,
        /// Where a downgrade's refund goes.
        #[serde(default)]
        destination: RefundDestination,
    },
    /// Refunds the package's unused part and finishes it.
    Refund {
        /// The package.
        package: Key,
        /// Where the refund goes.
        #[serde(default)]
        destination: RefundDestination,
    },
    /// Closes an expired or overdue package; the overdue fee is charged.
    Close {
        /// The package.
        package: Key,
    },
    /// Brings a package's books to now: time-driven transitions (with their
    /// fees) and the revenue earned by time.
    Tick {
        /// The package.
        package: Key,
    },
    /// Any package command, with the same money rules as the named
    /// operations: what a machine that embeds the package forwards (a
    /// rental drives its package with the commands it applied to its own
    /// copy, so both copies decide the same events).
    Command {
        /// The package.
        package: Key,
        /// The command.
        command: Box<package::Command>,
        /// How a payment it makes is paid (renewal, upgrade).
        #[serde(default)]
        source: PaymentSource,
        /// Where a refund it makes goes (refund, downgrade, cancel).
        #[serde(default)]
        destination: RefundDestination,
    },
    /// Settles the deposit of a package that has ended (closed or refunded:
    /// its battery is back, lost or was never issued): the deferred fees, then the damage (or, for a loss, the whole
    /// rest) are taken from the deposit — a paid deposit is deducted and the
    /// rest of it applied for refund (finance reviews it), a waiver's hold
    /// is captured for what is taken or voided — and what the deposit cannot
    /// cover is charged like a fee: from the wallet, the rest to the rider's
    /// receivable. Fees are split as `fee` over the package's chain.
    SettleDeposit {
        /// The package.
        package: Key,
        /// Damage found at the inspection (none: zero).
        #[serde(default)]
        damage: Option<Money>,
        /// The battery was lost: the whole deposit is taken.
        #[serde(default)]
        lost: bool,
        /// The deferred fees the caller expects to settle; when given, it
        /// must equal the package's fees due (a machine with its own copy
        /// of the package passes what that copy decided).
        #[serde(default)]
        fees: Option<Money>,
    },
    /// A deposit operation ([`DepositOp`]), e.g. a refund of the deposit
    /// after the package closed.
    Deposit {
        /// The deposit op.
        action: DepositOp,
    },
    /// A pay-per-use order (a swap, a charging session): paid into platform
    /// revenue and split with the agent chain at once.
    Sale {
        /// A new order id.
        order: Key,
        /// The rider.
        rider: Key,
        /// A positive amount.
        amount: Money,
        /// What was sold (the product type of the revenue rules).
        product: ProductType,
        /// Swaps in the order, for fixed per-swap shares.
        #[serde(default)]
        swaps: u32,
        /// The agent chain, nearest first.
        #[serde(default)]
        chain: Vec<String>,
        /// Wallet or channel.
        #[serde(default)]
        source: PaymentSource,
    },
    /// Places a pre-authorisation hold on the rider's paid wallet balance
    /// for a new pay-per-use order (a swap's price, a charging session's
    /// hold): wallet → platform revenue, pending ([`WalletOp::Authorize`],
    /// wallet order `order`). Nothing is revenue, or shared, until it is
    /// captured ([`BooksOp::Capture`]) or charged ([`BooksOp::Charge`]).
    Authorize {
        /// A new order id.
        order: Key,
        /// The rider.
        rider: Key,
        /// A positive amount.
        amount: Money,
        /// What is sold (the product type of the revenue rules).
        product: ProductType,
        /// Swaps in the order, for fixed per-swap shares.
        #[serde(default)]
        swaps: u32,
        /// The agent chain, nearest first.
        #[serde(default)]
        chain: Vec<String>,
        /// When the hold lapses, if ever.
        #[serde(default)]
        expires_at: Option<Timestamp>,
    },
    /// Captures an order's hold in full (`amount` omitted) or in part (the
    /// rest is released): what is captured is charged, and the agents'
    /// shares move to the split of what the order has kept.
    Capture {
        /// The order.
        order: Key,
        /// How much to charge (at most the hold).
        #[serde(default)]
        amount: Option<Money>,
    },
    /// Releases an order's hold without a charge.
    Release {
        /// The order.
        order: Key,
    },
    /// Charges an order already on the books once more (a price above its
    /// hold, a swap force-completed after its hold was released), as a new
    /// wallet order `{op}.pay`; the shares follow.
    Charge {
        /// The order.
        order: Key,
        /// A positive amount.
        amount: Money,
        /// Wallet or channel.
        #[serde(default)]
        source: PaymentSource,
    },
    /// Refunds (part of) a sale, newest payment first; the agents' shares
    /// shrink with it, so that after any refunds every party holds the
    /// split of what was kept.
    RefundSale {
        /// The order.
        order: Key,
        /// A positive amount, at most what is left.
        amount: Money,
        /// Where the refund goes.
        #[serde(default)]
        destination: RefundDestination,
    },
    /// Pays an agent's revenue share out: `{node}:revenue` → clearing.
    PayAgent {
        /// The node.
        node: String,
        /// A positive amount, at most what it is owed.
        amount: Money,
    },
    /// Lapsed gift credit back to promotion, then lapsed holds (waivers)
    /// released; the wallets and deposits are synchronised.
    Sweep,
}

/// One package on the books.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageBook {
    /// The package id.
    pub id: Key,
    /// The package's state.
    pub package: Package,
    /// The rider.
    pub rider: Key,
    /// Its liability account, `{package}:liability`.
    pub account: Key,
    /// The agent chain sharing in its revenue.
    pub chain: Vec<String>,
    /// Wallet orders that paid into the account (purchase, renewals,
    /// upgrade charges), oldest first; refunds return them newest first.
    pub orders: Vec<Key>,
    /// The deposit covering it, if its product needs one.
    pub deposit: Option<Key>,
    /// Fees are left due and settled with the deposit
    /// ([`BooksOp::SettleDeposit`]) instead of collected when decided.
    #[serde(default)]
    pub defer_fees: bool,
    /// Deferred fees not settled yet, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fees_due: Vec<FeeDue>,
}

/// A pay-per-use order on the books.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SaleBook {
    /// The order (also its wallet order).
    pub order: Key,
    /// The rider.
    pub rider: Key,
    /// What was sold.
    pub product: ProductType,
    /// Swaps in it.
    pub swaps: u32,
    /// The agent chain.
    pub chain: Vec<String>,
    /// Charged.
    pub amount: Money,
    /// Refunded so far.
    pub refunded: Money,
    /// The split of what was kept (amount − refunded): what each party holds.
    pub split: SplitResult,
    /// The wallet orders that paid it, oldest first (the order itself for
    /// a sale or a captured hold, then `{op}.pay` for each further charge);
    /// refunds return them newest first.
    #[serde(default)]
    pub payments: Vec<Key>,
}

/// A fee an operation charged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeeCharge {
    /// The package.
    pub package: Key,
    /// `freeze_fee` or `overdue_fee`.
    pub code: Key,
    /// The fee.
    pub amount: Money,
    /// Paid from the wallet.
    pub from_wallet: Money,
    /// Booked to the rider's receivable.
    pub to_receivable: Money,
    /// Deducted from the package's deposit (deferred fees settled by
    /// [`BooksOp::SettleDeposit`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_deposit: Option<Money>,
}

/// A fee a package decided and the books have not collected yet (a package
/// bought with `defer_fees`): it is settled with the package's deposit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeeDue {
    /// `freeze_fee` or `overdue_fee`.
    pub code: Key,
    /// The fee.
    pub amount: Money,
}

/// What [`BooksOp::SettleDeposit`] did with a package's deposit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DepositSettlement {
    /// The package.
    pub package: Key,
    /// The deposit covering it, if any.
    pub deposit: Option<Key>,
    /// The deferred fees settled.
    pub fees: Money,
    /// The damage charged.
    pub damage: Money,
    /// Whether the battery was lost (the deposit is taken in full).
    pub lost: bool,
    /// Taken from the deposit (deducted, or captured from the waiver's hold).
    pub deducted: Money,
    /// Left of the deposit: its refund requested (paid) or the hold voided (waiver).
    pub refunded: Money,
    /// Above the deposit: charged to the wallet, the rest to the receivable.
    pub charged: Money,
}

/// What an operation did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BooksReceipt {
    /// The operation id.
    pub op_id: Key,
    /// When.
    pub at: Timestamp,
    /// Every transfer, in order.
    pub transfers: Vec<Transfer>,
    /// The package events.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<Event>,
    /// Revenue splits posted (recognitions, fees, sales; reversals negative).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub splits: Vec<SplitResult>,
    /// Fees charged.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fees: Vec<FeeCharge>,
    /// Holds released by a sweep.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expiries: Vec<Expiry>,
    /// What a deposit settlement did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settlement: Option<DepositSettlement>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct OpRecord {
    op: BooksOp,
    receipt: BooksReceipt,
}

/// One package in a [`Reconciliation`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageReconciliation {
    /// The package.
    pub package: Key,
    /// Its status at `at`.
    pub status: package::Status,
    /// Posted balance of its liability account.
    pub ledger: Money,
    /// `Package::liability(at)`.
    pub liability: Money,
    /// Revenue earned by time but not yet recognised (`ledger − liability`):
    /// zero once the package was brought to `at`.
    pub unrecognised: Money,
    /// Charged by its wallet orders.
    pub paid: Money,
    /// Refunded from them.
    pub refunded: Money,
}

/// One agent in a [`Reconciliation`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentReconciliation {
    /// The node.
    pub node: String,
    /// Its total over every recorded split ([`settlement::statements`]).
    pub settlement_total: Money,
    /// Credits minus reversals on its revenue account ([`report::agent_settlement`]).
    pub ledger_net: Money,
    /// Paid out.
    pub paid_out: Money,
    /// Owed now: `ledger_net − paid_out`.
    pub owed: Money,
}

/// The books' totals side by side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reconciliation {
    /// The time reconciled.
    pub at: Timestamp,
    /// The ledger's sums; debits equal credits.
    pub totals: Totals,
    /// Per package.
    pub packages: Vec<PackageReconciliation>,
    /// Sum of the packages' liability accounts.
    pub package_liability_ledger: Money,
    /// Sum of `Package::liability(at)`.
    pub package_liability_packages: Money,
    /// Per agent.
    pub agents: Vec<AgentReconciliation>,
    /// Deposits and waivers ([`Deposits::reconcile`]).
    pub deposits: DepositReconciliation,
    /// What riders owe (receivable balances).
    pub receivables: Money,
    /// Every pair agrees: debits = credits; each package's balance =
    /// its liability; each agent's ledger net = its settlement total;
    /// deposits agree; no package refunded more than was paid.
    pub agrees: bool,
}

/// A step of [`simulate`]: an operation with its id and time. JSON:
/// `{"id": "op-1", "at": "2026-05-01T00:00:00Z", "op": "top_up", "rider": "r1", "amount": "50"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BooksStep {
    /// The operation id.
    pub id: Key,
    /// When (UTC).
    pub at: Timestamp,
    /// The operation.
    #[serde(flatten)]
    pub op: BooksOp,
}

/// Input of [`simulate`]: a configuration, a start time and steps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BooksRun {
    /// The configuration.
    #[serde(default)]
    pub config: BooksConfig,
    /// When the books open (platform accounts are created then).
    pub start: Timestamp,
    /// The operations, in order.
    pub steps: Vec<BooksStep>,
}

/// The outcome of one step of [`simulate`], in short form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepOutcome {
    /// The operation id.
    pub id: Key,
    /// The transfers as [`transfer_line`]s.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transfers: Vec<String>,
    /// The package events as [`event_line`]s.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<String>,
    /// Fees charged.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fees: Vec<FeeCharge>,
    /// Why the step was refused (it changed nothing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<BooksError>,
}

/// An account's balances in a [`RunReport`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BalanceLine {
    /// Posted balance on the account's normal side.
    pub posted: Money,
    /// Open holds, when there are any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<Money>,
}

/// The output of [`simulate`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunReport {
    /// One outcome per step.
    pub steps: Vec<StepOutcome>,
    /// Every account's balance after the last step.
    pub balances: BTreeMap<Key, BalanceLine>,
    /// The reconciliation at the last step's time.
    pub reconciliation: Reconciliation,
}

/// Runs a list of operations on fresh books and reports every step (a
/// refused step is reported and changes nothing; the run goes on), the
/// balances and the reconciliation. What `chargeswap books run` prints.
pub fn simulate(run: &BooksRun) -> Result<RunReport> {
    let mut books = Books::new(run.config.clone(), run.start)?;
    let steps = books.run(&run.steps);
    let at = books.last_at.unwrap_or(run.start);
    let balances = books
        .ledger
        .accounts()
        .map(|a| {
            let pending = a.pending_balance();
            let line = BalanceLine {
                posted: a.posted_balance(),
                pending: (!pending.is_zero()).then_some(pending),
            };
            (a.id, line)
        })
        .collect();
    Ok(RunReport {
        steps,
        balances,
        reconciliation: books.reconcile(at)?,
    })
}

/// A transfer on one line: `"id: debit -> credit amount [code]"`, with
/// ` (pending)`, ` (post HOLD)` or ` (void HOLD)` for two-phase transfers.
pub fn transfer_line(t: &Transfer) -> String {
    let phase = match t.phase {
        Phase::Posted => String::new(),
        Phase::Pending { .. } => " (pending)".to_owned(),
        Phase::PostPending { pending_id } => format!(" (post {pending_id})"),
        Phase::VoidPending { pending_id } => format!(" (void {pending_id})"),
    };
    format!(
        "{}: {} -> {} {} [{}]{}",
        t.id,
        t.debit_account,
        t.credit_account,
        t.amount.to_plain_string(),
        t.code,
        phase
    )
}

/// A package event on one line: its name and the amounts or ids it carries.
pub fn event_line(e: &Event) -> String {
    let name = e.name();
    match e {
        Event::Purchased { paid, deposit, .. } => match deposit {
            Some(d) => format!(
                "{name} paid {} deposit {}",
                paid.to_plain_string(),
                d.to_plain_string()
            ),
            None => format!("{name} paid {}", paid.to_plain_string()),
        },
        Event::Activated { start, end, .. } => format!("{name} {start} .. {end}"),
        Event::Consumed {
            order_id, swaps, ..
        }
        | Event::ConsumptionReversed {
            order_id, swaps, ..
        } => format!("{name} {order_id} x{swaps}"),
        Event::Renewed {
            paid, effect, end, ..
        } => format!(
            "{name} paid {} {effect:?} until {end}",
            paid.to_plain_string()
        ),
        Event::Frozen { until, .. } => format!("{name} until {until}"),
        Event::Unfrozen { days, fee, .. } | Event::OverdueSettled { days, fee, .. } => {
            format!("{name} {days} day(s) fee {}", fee.to_plain_string())
        }
        Event::Changed {
            to,
            credit,
            charge,
            refund,
            ..
        } => format!(
            "{name} to {} credit {} charge {} refund {}",
            to.id,
            credit.to_plain_string(),
            charge.to_plain_string(),
            refund.to_plain_string()
        ),
        Event::Refunded { amount, .. } => format!("{name} {}", amount.to_plain_string()),
        Event::FreezeRequested { days, .. } => format!("{name} {days} day(s)"),
        Event::FreezeRejected { .. }
        | Event::Expired { .. }
        | Event::OverdueStarted { .. }
        | Event::Closed { .. }
        | Event::Ended { .. } => format!("{name} at {}", e.at()),
    }
}

/// The books: one ledger and everything that posts to it. Serde-able (the
/// ledger replays its history when loaded).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Books {
    config: BooksConfig,
    ledger: Ledger,
    wallets: Wallets,
    deposits: Deposits,
    packages: BTreeMap<Key, PackageBook>,
    sales: BTreeMap<Key, SaleBook>,
    splits: Vec<SplitResult>,
    ops: BTreeMap<Key, OpRecord>,
    last_at: Option<Timestamp>,
}

/// The facts of a new pay-per-use order.
struct NewSale<'a> {
    order: Key,
    rider: Key,
    product: ProductType,
    swaps: u32,
    chain: &'a [String],
}

/// What an operation changes in the books' own records, applied only after
/// every fallible step succeeded.
enum Commit {
    Nothing,
    Package(Key, Box<PackageBook>),
    Sale(Key, Box<SaleBook>),
}

/// An operation in progress: what to put back if a step fails, and the
/// receipt so far.
struct Tx {
    op_id: Key,
    at: Timestamp,
    local: NaiveDateTime,
    savepoint: Savepoint,
    wallet_undo: Vec<WalletUndo>,
    deposit_undo: Vec<DepositUndo>,
    receipt: BooksReceipt,
}

impl Tx {
    fn sub(&self, suffix: &str) -> Result<Key> {
        Ok(self.op_id.suffixed(suffix, "op_id")?)
    }
}

fn minor(m: Money) -> i64 {
    m.to_minor().unwrap_or(0)
}

fn positive(field: &str, amount: Money, currency: Currency) -> Result<i64> {
    match amount.to_minor() {
        Some(v) if v > 0 && amount.currency() == currency => Ok(v),
        _ => Err(BooksError::InvalidAmount {
            field: field.to_owned(),
            amount,
            expected: format!("greater than zero in whole {currency} minor units"),
        }),
    }
}

fn add(a: i64, b: i64) -> Result<i64> {
    a.checked_add(b).ok_or_else(|| overflow("amount"))
}

fn sub(a: i64, b: i64) -> Result<i64> {
    a.checked_sub(b).ok_or_else(|| overflow("amount"))
}

/// Two base-36 digits: refund leg `n` of an operation.
fn leg(n: usize) -> Option<String> {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let hi = DIGITS.get(n / 36)?;
    let lo = DIGITS.get(n % 36)?;
    Some(format!(".r{}{}", char::from(*hi), char::from(*lo)))
}

/// The package command of a package operation, with how its payments are
/// made and where its refunds go (wallet by default).
fn package_command_of(
    op: &BooksOp,
    op_id: Key,
) -> (package::Command, PaymentSource, RefundDestination) {
    use package::Command as C;
    let (w, d) = (PaymentSource::Wallet, RefundDestination::Wallet);
    match op {
        BooksOp::Consume { order, swaps, .. } => (
            C::Consume {
                order_id: order.clone(),
                swaps: *swaps,
            },
            w,
            d,
        ),
        BooksOp::ReverseConsumption { order, .. } => (
            C::ReverseConsumption {
                order_id: order.clone(),
            },
            w,
            d,
        ),
        BooksOp::Renew {
            paid,
            profile,
            source,
            ..
        } => (
            C::Renew {
                renewal_id: op_id.to_string(),
                paid: *paid,
                rider: profile.clone(),
            },
            *source,
            d,
        ),
        BooksOp::RequestFreeze { days, reason, .. } => (
            C::RequestFreeze {
                days: *days,
                reason: reason.clone(),
            },
            w,
            d,
        ),
        BooksOp::ApproveFreeze { .. } => (C::ApproveFreeze, w, d),
        BooksOp::RejectFreeze { reason, .. } => (
            C::RejectFreeze {
                reason: reason.clone(),
            },
            w,
            d,
        ),
        BooksOp::Unfreeze { .. } => (C::Unfreeze, w, d),
        BooksOp::Change {
            to,
            profile,
            source,
            destination,
            ..
        } => (
            C::Change {
                to: to.clone(),
                rider: profile.clone(),
            },
            *source,
            *destination,
        ),
        BooksOp::Refund { destination, .. } => (C::Refund, w, *destination),
        BooksOp::Close { .. } => (C::Close, w, d),
        _ => (C::Tick, w, d),
    }
}

/// The transfer code of a sale's payment.
fn sale_code(p: ProductType) -> Key {
    Key::lit(match p {
        ProductType::Charging => "charging_fee",
        ProductType::Swap => "swap_fee",
        ProductType::Rental => "rental_fee",
        ProductType::SwapPackage | ProductType::RentalPackage | ProductType::ComboPackage => {
            codes::PACKAGE_PURCHASE
        }
        ProductType::Fee => "fee",
    })
}

/// `new − old`, part by part: the change a refund makes to a split (both
/// splits are of the same order and chain).
fn split_delta(
    old: &SplitResult,
    new: &SplitResult,
    order_id: &str,
    at: NaiveDateTime,
) -> Result<SplitResult> {
    let diff = |a: Money, b: Money| a.checked_sub(b).map_err(|_| overflow("split delta"));
    let mut parts = Vec::with_capacity(new.parts.len());
    for (o, n) in old.parts.iter().zip(&new.parts) {
        parts.push(SplitPart {
            level: n.level,
            node: n.node.clone(),
            percent: n.percent,
            fixed: diff(n.fixed, o.fixed)?,
            share: diff(n.share, o.share)?,
            total: diff(n.total, o.total)?,
        });
    }
    Ok(SplitResult {
        order_id: order_id.to_owned(),
        product: new.product,
        amount: diff(new.amount, old.amount)?,
        at,
        fixed_capped: new.fixed_capped,
        parts,
    })
}

impl Books {
    /// Empty books at `now`: validates the configuration and creates the
    /// platform accounts (clearing, promotion, refunds payable, revenue,
    /// credit lines).
    pub fn new(config: BooksConfig, now: Timestamp) -> Result<Books> {
        config.offset()?;
        config.rules.validate()?;
        let w = config.wallet;
        let mut ledger = Ledger::new();
        let wallets = Wallets::new(w);
        wallets.create_platform_accounts(&mut ledger, now)?;
        let deposits = Deposits::new(DepositConfig {
            currency: w.currency,
            clearing_account: w.clearing_account,
            deduction_account: config.revenue_account,
            refunds_payable_account: w.refunds_payable_account,
        });
        deposits.create_platform_accounts(&mut ledger, now)?;
        for line in &config.credit_lines {
            ledger.create_account(
                &NewAccount::new(*line, AccountKind::CreditLine).in_currency(w.currency),
                now,
            )?;
        }
        Ok(Books {
            config,
            ledger,
            wallets,
            deposits,
            packages: BTreeMap::new(),
            sales: BTreeMap::new(),
            splits: Vec::new(),
            ops: BTreeMap::new(),
            last_at: None,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &BooksConfig {
        &self.config
    }

    /// The ledger (read-only: every movement goes through [`Books::apply`]).
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// The wallets.
    pub fn wallets(&self) -> &Wallets {
        &self.wallets
    }

    /// The deposits.
    pub fn deposits(&self) -> &Deposits {
        &self.deposits
    }

    /// A package.
    pub fn package(&self, package: &Key) -> Option<&PackageBook> {
        self.packages.get(package)
    }

    /// Every package, by id.
    pub fn packages(&self) -> impl Iterator<Item = &PackageBook> {
        self.packages.values()
    }

    /// A sale.
    pub fn sale(&self, order: &Key) -> Option<&SaleBook> {
        self.sales.get(order)
    }

    /// Every sale, by order.
    pub fn sales(&self) -> impl Iterator<Item = &SaleBook> {
        self.sales.values()
    }

    /// Every revenue split posted, in order.
    pub fn splits(&self) -> &[SplitResult] {
        &self.splits
    }

    /// The receipt of an applied operation.
    pub fn receipt(&self, op_id: &Key) -> Option<&BooksReceipt> {
        self.ops.get(op_id).map(|r| &r.receipt)
    }

    /// The time of the last operation.
    pub fn last_at(&self) -> Option<Timestamp> {
        self.last_at
    }

    /// Local time of `at` (UTC + the configured offset).
    pub fn local_time(&self, at: Timestamp) -> Result<NaiveDateTime> {
        Ok(at.with_timezone(&self.config.offset()?).naive_local())
    }

    /// What a package's wallet orders charged and what was refunded from them.
    pub fn package_payments(&self, package: &Key) -> Option<(Money, Money)> {
        let b = self.packages.get(package)?;
        let (mut paid, mut refunded) = (0i64, 0i64);
        for o in b.orders.iter().filter_map(|o| self.wallets.order(o)) {
            paid = paid.saturating_add(minor(o.charged));
            refunded = refunded
                .saturating_add(minor(o.refunded_paid))
                .saturating_add(minor(o.refunded_gift));
        }
        let c = self.config.currency();
        Some((Money::from_minor(paid, c), Money::from_minor(refunded, c)))
    }

    /// Applies `op` under `op_id` at `at` and returns what it did.
    ///
    /// Idempotent by `op_id`: the same operation again returns the original
    /// receipt and changes nothing (whatever `at` is); a different one is
    /// [`BooksError::OpConflict`]. A refused operation changes nothing.
    pub fn apply(&mut self, op_id: Key, at: Timestamp, op: &BooksOp) -> Result<BooksReceipt> {
        if let Some(r) = self.ops.get(&op_id) {
            return if r.op == *op {
                Ok(r.receipt.clone())
            } else {
                Err(BooksError::OpConflict { op_id })
            };
        }
        let len = op_id.as_str().len();
        if len > MAX_OP_ID {
            return Err(BooksError::OpIdTooLong {
                op_id,
                len,
                max: MAX_OP_ID,
            });
        }
        if let Some(last) = self.last_at {
            if at < last {
                return Err(BooksError::TimeWentBackwards { at, last });
            }
        }
        let mut tx = Tx {
            op_id,
            at,
            local: self.local_time(at)?,
            savepoint: self.ledger.savepoint(),
            wallet_undo: Vec::new(),
            deposit_undo: Vec::new(),
            receipt: BooksReceipt {
                op_id,
                at,
                transfers: Vec::new(),
                events: Vec::new(),
                splits: Vec::new(),
                fees: Vec::new(),
                expiries: Vec::new(),
                settlement: None,
            },
        };
        match self.run_op(&mut tx, op) {
            Ok(commit) => {
                match commit {
                    Commit::Nothing => {}
                    Commit::Package(k, b) => {
                        self.packages.insert(k, *b);
                    }
                    Commit::Sale(k, s) => {
                        self.sales.insert(k, *s);
                    }
                }
                self.splits.extend(tx.receipt.splits.iter().cloned());
                self.last_at = Some(at);
                self.ops.insert(
                    op_id,
                    OpRecord {
                        op: op.clone(),
                        receipt: tx.receipt.clone(),
                    },
                );
                Ok(tx.receipt)
            }
            Err(e) => {
                for u in tx.deposit_undo.into_iter().rev() {
                    self.deposits.undo(u);
                }
                for u in tx.wallet_undo.into_iter().rev() {
                    self.wallets.undo(u);
                }
                // Cannot refuse: the only expiry sweep (Sweep) is the last
                // fallible step of its operation.
                let _ = self.ledger.rollback_to(tx.savepoint);
                Err(e)
            }
        }
    }

    /// Applies every step in order; a refused step is reported and the run
    /// goes on.
    pub fn run(&mut self, steps: &[BooksStep]) -> Vec<StepOutcome> {
        steps
            .iter()
            .map(|s| match self.apply(s.id, s.at, &s.op) {
                Ok(r) => StepOutcome {
                    id: s.id,
                    transfers: r.transfers.iter().map(transfer_line).collect(),
                    events: r.events.iter().map(event_line).collect(),
                    fees: r.fees,
                    error: None,
                },
                Err(e) => StepOutcome {
                    id: s.id,
                    transfers: Vec::new(),
                    events: Vec::new(),
                    fees: Vec::new(),
                    error: Some(e),
                },
            })
            .collect()
    }

    // ----- steps of an operation (each recorded in the tx for undo) -------

    fn wallet(&mut self, tx: &mut Tx, id: Key, op: WalletOp) -> Result<()> {
        let undo = self.wallets.undo_point(id, &op);
        let r = self.wallets.apply(id, &op, &mut self.ledger, tx.at)?;
        tx.wallet_undo.push(undo);
        tx.receipt.transfers.extend(r.transfers);
        Ok(())
    }

    fn deposit(&mut self, tx: &mut Tx, id: Key, op: DepositOp) -> Result<()> {
        let undo = self.deposits.undo_point(id, &op);
        let r = self.deposits.apply(id, &op, &mut self.ledger, tx.at)?;
        tx.deposit_undo.push(undo);
        tx.receipt.transfers.extend(r.transfers);
        Ok(())
    }

    fn batch(&mut self, tx: &mut Tx, cmds: &[Command]) -> Result<()> {
        if !cmds.is_empty() {
            let t = self.ledger.apply_batch(cmds, tx.at)?;
            tx.receipt.transfers.extend(t);
        }
        Ok(())
    }

    fn open(&mut self, tx: &Tx, spec: NewAccount) -> Result<()> {
        self.ledger
            .create_account(&spec.in_currency(self.config.currency()), tx.at)?;
        Ok(())
    }

    fn balance(&self, account: &Key) -> Result<i64> {
        self.ledger
            .account(account)
            .map(|a| minor(a.posted_balance()))
            .ok_or_else(|| {
                LedgerError::AccountNotFound {
                    field: "account".to_owned(),
                    account: *account,
                }
                .into()
            })
    }

    fn split(
        &self,
        order_id: Key,
        product: ProductType,
        amount: i64,
        swaps: u32,
        chain: &[String],
        at: NaiveDateTime,
    ) -> Result<SplitResult> {
        Ok(settlement::split(
            &self.config.rules,
            &RevenueOrder {
                order_id: order_id.to_string(),
                product,
                amount: Money::from_minor(amount, self.config.currency()),
                swaps,
                at,
                chain: chain.to_vec(),
            },
        )?)
    }

    /// `{node}:revenue`, owned by the node; created if needed.
    fn agent_account(&mut self, tx: &Tx, node: &str) -> Result<Key> {
        let owner = Key::for_field("chain", node)?;
        let id = owner.suffixed(":revenue", "chain")?;
        self.open(
            tx,
            NewAccount::new(id, AccountKind::AgentRevenue).owned_by(owner),
        )?;
        Ok(id)
    }

    /// Posts the agents' parts of a split (positive: revenue → agent;
    /// negative: agent → revenue) as `{base}.s{level}` and records it.
    fn post_shares(&mut self, tx: &mut Tx, base: Key, split: SplitResult) -> Result<()> {
        let revenue = self.config.revenue_account;
        let code = Key::lit(codes::REVENUE_SHARE);
        let mut cmds = Vec::new();
        for p in &split.parts {
            let Some(node) = &p.node else { continue };
            let v = minor(p.total);
            if v == 0 {
                continue;
            }
            let account = self.agent_account(tx, node)?;
            let (debit_account, credit_account) = if v > 0 {
                (revenue, account)
            } else {
                (account, revenue)
            };
            cmds.push(Command::Transfer {
                id: base.suffixed(&format!(".s{}", p.level), "op_id")?,
                debit_account,
                credit_account,
                amount: p.total.abs(),
                code,
                reference: Some(base),
            });
        }
        self.batch(tx, &cmds)?;
        tx.receipt.splits.push(split);
        Ok(())
    }

    /// Posts `amount` (minor units; negative reverses) of recognised package
    /// revenue as `{op}.rec` and splits it over the package's chain.
    fn recognise(
        &mut self,
        tx: &mut Tx,
        book: &PackageBook,
        amount: i64,
        swaps: u32,
    ) -> Result<()> {
        if amount == 0 {
            return Ok(());
        }
        let base = tx.sub(".rec")?;
        let product = ProductType::from(book.package.product.kind());
        let split = self.split(base, product, amount.abs(), swaps, &book.chain, tx.local)?;
        let revenue = self.config.revenue_account;
        let code = Key::lit(codes::PACKAGE_CONSUME);
        let value = Money::from_minor(amount.abs(), self.config.currency());
        let (debit_account, credit_account) = if amount > 0 {
            (book.account, revenue)
        } else {
            (revenue, book.account)
        };
        let post = Command::Transfer {
            id: base,
            debit_account,
            credit_account,
            amount: value,
            code,
            reference: Some(book.id),
        };
        if amount > 0 {
            self.batch(tx, &[post])?;
            self.post_shares(tx, base, split)
        } else {
            let reversed = split.reversed(base.as_str(), tx.local);
            self.post_shares(tx, base, reversed)?;
            self.batch(tx, &[post])
        }
    }

    /// Charges fee number `n` of the operation: from the wallet as far as it
    /// can pay, the rest to the rider's receivable; split as a `fee` over
    /// the package's chain when `split` (damage is not shared).
    fn collect_fee(
        &mut self,
        tx: &mut Tx,
        book: &PackageBook,
        n: usize,
        code: &str,
        fee: Money,
        split: bool,
    ) -> Result<()> {
        let total = minor(fee);
        if total <= 0 {
            return Ok(());
        }
        let cur = self.config.currency();
        let rider = book.rider;
        let base = tx.sub(&format!(".fe{n}"))?;
        let code = Key::lit(code);
        let w = self
            .wallets
            .rider(&rider)
            .ok_or(BooksError::RiderNotFound { rider })?;
        let from_wallet = if w.allow_negative {
            total
        } else {
            let b = self.wallets.balance(&rider, &self.ledger, tx.at)?;
            let usable = minor(b.paid_available).max(0).saturating_add(minor(b.gift));
            usable.min(total)
        };
        let revenue = self.config.revenue_account;
        if from_wallet > 0 {
            self.wallet(
                tx,
                base,
                WalletOp::Pay {
                    rider,
                    order: base,
                    amount: Money::from_minor(from_wallet, cur),
                    credit_account: revenue,
                    code,
                    source: PaymentSource::Wallet,
                },
            )?;
        }
        let rest = sub(total, from_wallet)?;
        if rest > 0 {
            let account = self.receivable_account(tx, rider)?;
            self.batch(
                tx,
                &[Command::Transfer {
                    id: base.suffixed(".rcv", "op_id")?,
                    debit_account: account,
                    credit_account: revenue,
                    amount: Money::from_minor(rest, cur),
                    code,
                    reference: Some(book.id),
                }],
            )?;
        }
        if split {
            let split = self.split(base, ProductType::Fee, total, 0, &book.chain, tx.local)?;
            self.post_shares(tx, base, split)?;
        }
        tx.receipt.fees.push(FeeCharge {
            package: book.id,
            code,
            amount: fee,
            from_wallet: Money::from_minor(from_wallet, cur),
            to_receivable: Money::from_minor(rest, cur),
            from_deposit: None,
        });
        Ok(())
    }

    fn receivable_account(&mut self, tx: &Tx, rider: Key) -> Result<Key> {
        let id = rider.suffixed(":receivable", "rider")?;
        let mut spec = NewAccount::new(id, AccountKind::Receivable).owned_by(rider);
        spec.flags = AccountFlags {
            debits_must_not_exceed_credits: false,
            credits_must_not_exceed_debits: true,
        };
        self.open(tx, spec)?;
        Ok(id)
    }

    /// Refunds `amount` of a package from its wallet orders, newest first.
    fn refund_orders(
        &mut self,
        tx: &mut Tx,
        book: &PackageBook,
        amount: i64,
        destination: RefundDestination,
    ) -> Result<()> {
        let cur = self.config.currency();
        let package = book.id;
        self.refund_legs(tx, &book.orders, amount, destination, "", |refundable| {
            BooksError::RefundExceedsPaid {
                package,
                refundable: Money::from_minor(refundable, cur),
                requested: Money::from_minor(amount, cur),
            }
        })
    }

    /// Refunds `amount` (minor units) from wallet orders, newest first, as
    /// wallet ops `{op}{prefix}` for the first leg and `{op}{prefix}.rNN`
    /// after it (`{op}.rNN` for every leg when the prefix is empty);
    /// `too_much(refundable)` is the error when they cannot return it.
    fn refund_legs(
        &mut self,
        tx: &mut Tx,
        orders: &[Key],
        amount: i64,
        destination: RefundDestination,
        prefix: &str,
        too_much: impl FnOnce(i64) -> BooksError,
    ) -> Result<()> {
        let cur = self.config.currency();
        let mut left = amount;
        let mut refundable = 0i64;
        let mut legs = Vec::new();
        for order in orders.iter().rev() {
            let r = self
                .wallets
                .order(order)
                .map_or(0, |o| minor(o.refundable()));
            refundable = add(refundable, r)?;
            let take = left.min(r);
            if take > 0 {
                legs.push((*order, take));
                left -= take;
            }
        }
        if left > 0 {
            return Err(too_much(refundable));
        }
        for (n, (order, take)) in legs.into_iter().enumerate() {
            let id = match (n, prefix) {
                (0, p) if !p.is_empty() => tx.sub(p)?,
                (n, p) => leg(n)
                    .ok_or_else(|| overflow("refund legs"))
                    .and_then(|l| tx.sub(&format!("{p}{l}")))?,
            };
            self.wallet(
                tx,
                id,
                WalletOp::Refund {
                    order,
                    amount: Money::from_minor(take, cur),
                    destination,
                },
            )?;
        }
        Ok(())
    }

    // ----- operations -------------------------------------------------------

    fn run_op(&mut self, tx: &mut Tx, op: &BooksOp) -> Result<Commit> {
        let id = tx.op_id;
        match op {
            BooksOp::OpenRider {
                rider,
                allow_negative,
            } => {
                // the receivable account id must fit too
                rider.suffixed(":receivable", "rider")?;
                self.wallet(
                    tx,
                    id,
                    WalletOp::Open {
                        rider: *rider,
                        allow_negative: *allow_negative,
                    },
                )?;
            }
            BooksOp::TopUp { rider, amount } => self.wallet(
                tx,
                id,
                WalletOp::TopUp {
                    rider: *rider,
                    amount: *amount,
                },
            )?,
            BooksOp::GrantGift {
                rider,
                amount,
                expires_at,
            } => self.wallet(
                tx,
                id,
                WalletOp::GrantGift {
                    rider: *rider,
                    amount: *amount,
                    expires_at: *expires_at,
                },
            )?,
            BooksOp::Withdraw { rider, amount } => self.wallet(
                tx,
                id,
                WalletOp::Withdraw {
                    rider: *rider,
                    amount: *amount,
                },
            )?,
            BooksOp::PayoutRefunds { amount } => {
                self.wallet(tx, id, WalletOp::Payout { amount: *amount })?;
            }
            BooksOp::SettleReceivable {
                rider,
                amount,
                source,
            } => self.settle_receivable(tx, *rider, *amount, *source)?,
            BooksOp::Purchase {
                package,
                rider,
                product,
                paid,
                profile,
                source,
                chain,
                deposit,
                defer_fees,
            } => {
                let p = Purchase {
                    package_id: package.to_string(),
                    rider_id: rider.to_string(),
                    product: (**product).clone(),
                    paid: *paid,
                    rider: profile.clone(),
                };
                return self.purchase(
                    tx,
                    *package,
                    *rider,
                    &p,
                    *source,
                    chain,
                    *deposit,
                    *defer_fees,
                );
            }
            BooksOp::Consume { package, .. }
            | BooksOp::ReverseConsumption { package, .. }
            | BooksOp::Renew { package, .. }
            | BooksOp::RequestFreeze { package, .. }
            | BooksOp::ApproveFreeze { package }
            | BooksOp::RejectFreeze { package, .. }
            | BooksOp::Unfreeze { package }
            | BooksOp::Change { package, .. }
            | BooksOp::Refund { package, .. }
            | BooksOp::Close { package }
            | BooksOp::Tick { package } => {
                let (cmd, source, destination) = package_command_of(op, id);
                return self.package_command(tx, *package, &cmd, source, destination);
            }
            BooksOp::Command {
                package,
                command,
                source,
                destination,
            } => return self.package_command(tx, *package, command, *source, *destination),
            BooksOp::SettleDeposit {
                package,
                damage,
                lost,
                fees,
            } => return self.settle_deposit(tx, *package, *damage, *lost, *fees),
            BooksOp::Deposit { action } => self.deposit(tx, id, *action)?,
            BooksOp::Sale {
                order,
                rider,
                amount,
                product,
                swaps,
                chain,
                source,
            } => {
                return self.sell(
                    tx, *order, *rider, *amount, *product, *swaps, chain, *source,
                );
            }
            BooksOp::Authorize {
                order,
                rider,
                amount,
                product,
                swaps,
                chain,
                expires_at,
            } => {
                let sale = NewSale {
                    order: *order,
                    rider: *rider,
                    product: *product,
                    swaps: *swaps,
                    chain,
                };
                return self.authorize(tx, &sale, *amount, *expires_at);
            }
            BooksOp::Capture { order, amount } => return self.capture(tx, *order, *amount),
            BooksOp::Release { order } => {
                self.sale_book(*order)?;
                self.wallet(tx, id, WalletOp::Release { order: *order })?;
            }
            BooksOp::Charge {
                order,
                amount,
                source,
            } => return self.charge(tx, *order, *amount, *source),
            BooksOp::RefundSale {
                order,
                amount,
                destination,
            } => return self.refund_sale(tx, *order, *amount, *destination),
            BooksOp::PayAgent { node, amount } => self.pay_agent(tx, node, *amount)?,
            BooksOp::Sweep => {
                let gifts = self.wallets.expire_gifts(&mut self.ledger, tx.at)?;
                tx.receipt.transfers.extend(gifts);
                // The last fallible step: an expiry sweep is not rolled back.
                let expiries = self.ledger.expire_pending(tx.at)?;
                self.deposits.sync_expired(&self.ledger);
                self.wallets.sync_expired_holds(&self.ledger);
                tx.receipt.expiries = expiries;
            }
        }
        Ok(Commit::Nothing)
    }

    fn settle_receivable(
        &mut self,
        tx: &mut Tx,
        rider: Key,
        amount: Money,
        source: PaymentSource,
    ) -> Result<()> {
        let cur = self.config.currency();
        let a = positive("amount", amount, cur)?;
        let account = rider.suffixed(":receivable", "rider")?;
        let owed = self
            .ledger
            .account(&account)
            .map_or(0, |x| minor(x.posted_balance()));
        if a > owed {
            return Err(BooksError::InvalidAmount {
                field: "amount".to_owned(),
                amount,
                expected: format!(
                    "at most the {} rider {rider} owes",
                    Money::from_minor(owed.max(0), cur)
                ),
            });
        }
        let id = tx.op_id;
        self.wallet(
            tx,
            id,
            WalletOp::Pay {
                rider,
                order: id,
                amount,
                credit_account: account,
                code: Key::lit(codes::RECEIVABLE_PAYMENT),
                source,
            },
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn purchase(
        &mut self,
        tx: &mut Tx,
        package: Key,
        rider: Key,
        p: &Purchase,
        source: PaymentSource,
        chain: &[String],
        choice: DepositChoice,
        defer_fees: bool,
    ) -> Result<Commit> {
        if self.packages.contains_key(&package) {
            return Err(BooksError::PackageExists { package });
        }
        if self.wallets.rider(&rider).is_none() {
            return Err(BooksError::RiderNotFound { rider });
        }
        let (pkg, events) = Package::purchase(p, tx.local)?;
        // Check the chain before anything moves (a zero split validates it).
        let kind = ProductType::from(pkg.product.kind());
        self.split(package, kind, 0, 0, chain, tx.local)?;
        for node in chain {
            Key::for_field("chain", node)?.suffixed(":revenue", "chain")?;
        }
        let account = package.suffixed(":liability", "package")?;
        self.open(
            tx,
            NewAccount::new(account, AccountKind::PackageLiability)
                .owned_by(rider)
                .no_overdraft(),
        )?;
        let mut book = PackageBook {
            id: package,
            package: pkg,
            rider,
            account,
            chain: chain.to_vec(),
            orders: Vec::new(),
            deposit: None,
            defer_fees,
            fees_due: Vec::new(),
        };
        let paid = book.package.paid_total;
        if paid.is_positive() {
            let order = tx.sub(".pay")?;
            self.wallet(
                tx,
                order,
                WalletOp::Pay {
                    rider,
                    order,
                    amount: paid,
                    credit_account: account,
                    code: Key::lit(codes::PACKAGE_PURCHASE),
                    source,
                },
            )?;
            book.orders.push(order);
        }
        if let Some(required) = p.product.deposit.filter(Money::is_positive) {
            book.deposit = Some(self.cover_deposit(tx, package, rider, required, choice)?);
        }
        let recognised = sub(minor(paid), minor(book.package.liability(tx.local)?))?;
        self.recognise(tx, &book, recognised, 0)?;
        tx.receipt.events = events;
        Ok(Commit::Package(package, Box::new(book)))
    }

    fn cover_deposit(
        &mut self,
        tx: &mut Tx,
        package: Key,
        rider: Key,
        amount: Money,
        choice: DepositChoice,
    ) -> Result<Key> {
        let id = tx.sub(".dep")?;
        match choice {
            DepositChoice::Pay => self.deposit(
                tx,
                id,
                DepositOp::Pay {
                    deposit: package,
                    rider,
                    amount,
                },
            )?,
            DepositChoice::Waive {
                credit_line,
                expires_at,
            } => self.deposit(
                tx,
                id,
                DepositOp::Waive {
                    deposit: package,
                    rider,
                    amount,
                    credit_line,
                    expires_at,
                },
            )?,
            DepositChoice::Existing { deposit } => {
                let unusable = |reason: &str| BooksError::DepositUnusable {
                    deposit,
                    required: amount,
                    reason: reason.to_owned(),
                };
                let d = self
                    .deposits
                    .deposit(&deposit)
                    .ok_or_else(|| unusable("no such deposit"))?;
                if d.rider != rider {
                    return Err(unusable("it belongs to another rider"));
                }
                if !matches!(d.status, DepositStatus::Held | DepositStatus::Rented) {
                    return Err(unusable("it is not held (expected held or rented)"));
                }
                let left = match d.kind {
                    DepositKind::Paid => d.remaining(),
                    DepositKind::Waived { .. } => d.amount,
                };
                if minor(left) < minor(amount) {
                    return Err(unusable("not enough of it is left"));
                }
                return Ok(deposit);
            }
        }
        Ok(package)
    }

    /// Runs a package command and posts its money: payments in, refunds
    /// out, fees, and the recognised revenue (see the module documentation).
    fn package_command(
        &mut self,
        tx: &mut Tx,
        package: Key,
        cmd: &package::Command,
        source: PaymentSource,
        destination: RefundDestination,
    ) -> Result<Commit> {
        let old = self
            .packages
            .get(&package)
            .cloned()
            .ok_or(BooksError::PackageNotFound { package })?;
        let mut next = old.package.clone();
        let events = next.handle(cmd, tx.local)?;
        let (mut inflow, mut outflow, mut consumed, mut reversed) = (0i64, 0i64, 0u32, 0u32);
        let mut pay_code = codes::PACKAGE_RENEWAL;
        let mut fees = Vec::new();
        for e in &events {
            match e {
                Event::Renewed { paid, .. } => inflow = add(inflow, minor(*paid))?,
                Event::Changed { charge, refund, .. } => {
                    pay_code = codes::PACKAGE_CHANGE;
                    inflow = add(inflow, minor(*charge))?;
                    outflow = add(outflow, minor(*refund))?;
                }
                Event::Refunded { amount, .. } => outflow = add(outflow, minor(*amount))?,
                Event::Unfrozen { fee, .. } => fees.push((codes::FREEZE_FEE, *fee)),
                Event::OverdueSettled { fee, .. } => fees.push((codes::OVERDUE_FEE, *fee)),
                Event::Consumed { swaps, .. } => consumed = consumed.saturating_add(*swaps),
                Event::ConsumptionReversed { swaps, .. } => {
                    reversed = reversed.saturating_add(*swaps);
                }
                _ => {}
            }
        }
        let before = self.balance(&old.account)?;
        let after = minor(next.liability(tx.local)?);
        let recognised = sub(sub(add(before, inflow)?, outflow)?, after)?;
        let mut book = PackageBook {
            package: next,
            ..old.clone()
        };
        if recognised < 0 {
            self.recognise(tx, &old, recognised, reversed)?;
        }
        if inflow > 0 {
            let order = tx.sub(".pay")?;
            self.wallet(
                tx,
                order,
                WalletOp::Pay {
                    rider: old.rider,
                    order,
                    amount: Money::from_minor(inflow, self.config.currency()),
                    credit_account: old.account,
                    code: Key::lit(pay_code),
                    source,
                },
            )?;
            book.orders.push(order);
        }
        if outflow > 0 {
            self.refund_orders(tx, &old, outflow, destination)?;
        }
        for (n, (code, fee)) in fees.into_iter().enumerate() {
            if !fee.is_positive() {
                continue;
            }
            if old.defer_fees {
                book.fees_due.push(FeeDue {
                    code: Key::lit(code),
                    amount: fee,
                });
            } else {
                self.collect_fee(tx, &old, n, code, fee, true)?;
            }
        }
        if recognised > 0 {
            self.recognise(tx, &old, recognised, consumed)?;
        }
        tx.receipt.events = events;
        Ok(Commit::Package(package, Box::new(book)))
    }

    #[allow(clippy::too_many_arguments)]
    fn sell(
        &mut self,
        tx: &mut Tx,
        order: Key,
        rider: Key,
        amount: Money,
        product: ProductType,
        swaps: u32,
        chain: &[String],
        source: PaymentSource,
    ) -> Result<Commit> {
        let cur = self.config.currency();
        let a = positive("amount", amount, cur)?;
        if self.sales.contains_key(&order) {
            return Err(BooksError::SaleExists { order });
        }
        let base = tx.sub(".sale")?;
        let split = self.split(base, product, a, swaps, chain, tx.local)?;
        let pay = tx.sub(".pay")?;
        self.wallet(
            tx,
            pay,
            WalletOp::Pay {
                rider,
                order,
                amount,
                credit_account: self.config.revenue_account,
                code: sale_code(product),
                source,
            },
        )?;
        self.post_shares(tx, base, split.clone())?;
        Ok(Commit::Sale(
            order,
            Box::new(SaleBook {
                order,
                rider,
                product,
                swaps,
                chain: chain.to_vec(),
                amount,
                refunded: Money::zero(cur),
                split,
                payments: vec![order],
            }),
        ))
    }

    fn sale_book(&self, order: Key) -> Result<SaleBook> {
        self.sales
            .get(&order)
            .cloned()
            .ok_or(BooksError::SaleNotFound { order })
    }

    /// A hold for a new order: nothing is revenue until it is captured.
    fn authorize(
        &mut self,
        tx: &mut Tx,
        sale: &NewSale<'_>,
        amount: Money,
        expires_at: Option<Timestamp>,
    ) -> Result<Commit> {
        let cur = self.config.currency();
        positive("amount", amount, cur)?;
        let order = sale.order;
        if self.sales.contains_key(&order) {
            return Err(BooksError::SaleExists { order });
        }
        // Check the chain before anything moves (a zero split validates it).
        let base = tx.sub(".sale")?;
        let split = self.split(base, sale.product, 0, 0, sale.chain, tx.local)?;
        for node in sale.chain {
            Key::for_field("chain", node)?.suffixed(":revenue", "chain")?;
        }
        let id = tx.op_id;
        self.wallet(
            tx,
            id,
            WalletOp::Authorize {
                rider: sale.rider,
                order,
                amount,
                credit_account: self.config.revenue_account,
                code: sale_code(sale.product),
                expires_at,
            },
        )?;
        Ok(Commit::Sale(
            order,
            Box::new(SaleBook {
                order,
                rider: sale.rider,
                product: sale.product,
                swaps: sale.swaps,
                chain: sale.chain.to_vec(),
                amount: Money::zero(cur),
                refunded: Money::zero(cur),
                split,
                payments: vec![order],
            }),
        ))
    }

    fn capture(&mut self, tx: &mut Tx, order: Key, amount: Option<Money>) -> Result<Commit> {
        let old = self.sale_book(order)?;
        let id = tx.op_id;
        self.wallet(tx, id, WalletOp::Capture { order, amount })?;
        let captured = self.wallets.order(&order).map_or(0, |o| minor(o.charged));
        let charged = add(minor(old.amount), captured)?;
        let refunded = minor(old.refunded);
        self.resplit(tx, old, charged, refunded)
    }

    fn charge(
        &mut self,
        tx: &mut Tx,
        order: Key,
        amount: Money,
        source: PaymentSource,
    ) -> Result<Commit> {
        let a = positive("amount", amount, self.config.currency())?;
        let mut old = self.sale_book(order)?;
        let pay = tx.sub(".pay")?;
        self.wallet(
            tx,
            pay,
            WalletOp::Pay {
                rider: old.rider,
                order: pay,
                amount,
                credit_account: self.config.revenue_account,
                code: sale_code(old.product),
                source,
            },
        )?;
        if old.payments.is_empty() {
            old.payments.push(order);
        }
        old.payments.push(pay);
        let charged = add(minor(old.amount), a)?;
        let refunded = minor(old.refunded);
        self.resplit(tx, old, charged, refunded)
    }

    fn refund_sale(
        &mut self,
        tx: &mut Tx,
        order: Key,
        amount: Money,
        destination: RefundDestination,
    ) -> Result<Commit> {
        let cur = self.config.currency();
        let a = positive("amount", amount, cur)?;
        let old = self.sale_book(order)?;
        let payments = if old.payments.is_empty() {
            vec![order]
        } else {
            old.payments.clone()
        };
        self.refund_legs(tx, &payments, a, destination, ".ref", |refundable| {
            WalletError::RefundExceedsPaid {
                order,
                refundable: Money::from_minor(refundable, cur),
                requested: amount,
            }
            .into()
        })?;
        let refunded = add(minor(old.refunded), a)?;
        let charged = minor(old.amount);
        self.resplit(tx, old, charged, refunded)
    }

    /// Records an order's new charged and refunded totals and moves the
    /// agents' shares to the split of what it kept, posting the difference
    /// as `{op}.sale.s{level}`.
    fn resplit(
        &mut self,
        tx: &mut Tx,
        old: SaleBook,
        charged: i64,
        refunded: i64,
    ) -> Result<Commit> {
        let cur = self.config.currency();
        let kept = sub(charged, refunded)?;
        let base = tx.sub(".sale")?;
        let swaps = if kept > 0 { old.swaps } else { 0 };
        let split = self.split(base, old.product, kept, swaps, &old.chain, tx.local)?;
        let delta = split_delta(&old.split, &split, base.as_str(), tx.local)?;
        self.post_shares(tx, base, delta)?;
        Ok(Commit::Sale(
            old.order,
            Box::new(SaleBook {
                amount: Money::from_minor(charged, cur),
                refunded: Money::from_minor(refunded, cur),
                split,
                ..old
            }),
        ))
    }

    /// See [`BooksOp::SettleDeposit`].
    fn settle_deposit(
        &mut self,
        tx: &mut Tx,
        package: Key,
        damage: Option<Money>,
        lost: bool,
        fees: Option<Money>,
    ) -> Result<Commit> {
        let cur = self.config.currency();
        let old = self
            .packages
            .get(&package)
            .cloned()
            .ok_or(BooksError::PackageNotFound { package })?;
        let status = old.package.status;
        if !matches!(status, package::Status::Closed | package::Status::Refunded) {
            return Err(PackageError::WrongStatus {
                operation: "settle the deposit of".to_owned(),
                status,
                expected: "closed or refunded (end, close, cancel or refund it first)".to_owned(),
            }
            .into());
        }
        let mut due = 0i64;
        for f in &old.fees_due {
            due = add(due, minor(f.amount))?;
        }
        if let Some(f) = fees {
            if f.currency() != cur || minor(f) != due {
                return Err(BooksError::FeesMismatch {
                    package,
                    due: Money::from_minor(due, cur),
                    expected: f,
                });
            }
        }
        let dmg = match damage {
            None => 0,
            Some(d) if d.is_zero() && d.currency() == cur => 0,
            Some(d) => positive("damage", d, cur)?,
        };
        let deposit = match old.deposit {
            Some(k) => {
                let d = self.deposits.deposit(&k).cloned().ok_or_else(|| {
                    BooksError::from(DepositError::DepositNotFound { deposit: k })
                })?;
                if !matches!(d.status, DepositStatus::Held | DepositStatus::Rented) {
                    return Err(BooksError::DepositNotHeld {
                        deposit: k,
                        status: d.status,
                    });
                }
                Some(d)
            }
            None => None,
        };
        let avail = deposit.as_ref().map_or(0, |d| match d.kind {
            DepositKind::Paid => minor(d.remaining()),
            DepositKind::Waived { .. } => minor(d.amount),
        });
        // fees first, then the damage (or, for a loss, all the rest)
        let fee_take = due.min(avail);
        let left = sub(avail, fee_take)?;
        let other_take = if lost { left } else { dmg.min(left) };
        let deducted = add(fee_take, other_take)?;
        let refunded = sub(avail, deducted)?;
        let fee_above = sub(due, fee_take)?;
        let dmg_above = if lost { 0 } else { sub(dmg, other_take)? };
        let money = |v: i64| Money::from_minor(v, cur);
        let other_reason = if lost {
            DeductReason::Loss
        } else {
            DeductReason::Damage
        };
        if let Some(d) = &deposit {
            let k = d.deposit;
            match d.kind {
                DepositKind::Paid => {
                    for (suffix, amount, reason) in [
                        (".df", fee_take, DeductReason::UnpaidFees),
                        (".dd", other_take, other_reason),
                    ] {
                        if amount > 0 {
                            let id = tx.sub(suffix)?;
                            let op = DepositOp::Deduct {
                                deposit: k,
                                amount: money(amount),
                                reason,
                            };
                            self.deposit(tx, id, op)?;
                        }
                    }
                    if d.status == DepositStatus::Rented {
                        let id = tx.sub(".de")?;
                        self.deposit(tx, id, DepositOp::EndRental { deposit: k })?;
                    }
                    if refunded > 0 {
                        let id = tx.sub(".dr")?;
                        self.deposit(tx, id, DepositOp::ApplyRefund { deposit: k })?;
                    }
                }
                DepositKind::Waived { .. } if deducted > 0 => {
                    let reason = if lost || other_take > 0 {
                        other_reason
                    } else {
                        DeductReason::UnpaidFees
                    };
                    let id = tx.sub(".dd")?;
                    let op = DepositOp::Deduct {
                        deposit: k,
                        amount: money(deducted),
                        reason,
                    };
                    self.deposit(tx, id, op)?;
                }
                DepositKind::Waived { .. } => {
                    let id = tx.sub(".de")?;
                    self.deposit(tx, id, DepositOp::EndRental { deposit: k })?;
                }
            }
        }
        if fee_take > 0 {
            let base = tx.sub(".fd")?;
            let split = self.split(base, ProductType::Fee, fee_take, 0, &old.chain, tx.local)?;
            self.post_shares(tx, base, split)?;
            tx.receipt.fees.push(FeeCharge {
                package,
                code: Key::lit(codes::DEPOSIT_UNPAID_FEES),
                amount: money(fee_take),
                from_wallet: money(0),
                to_receivable: money(0),
                from_deposit: Some(money(fee_take)),
            });
        }
        // what the deposit cannot cover, fee by fee, then the damage
        let mut skip = fee_take;
        let mut n = 0usize;
        for f in &old.fees_due {
            let a = minor(f.amount);
            let from_deposit = skip.min(a);
            skip = sub(skip, from_deposit)?;
            let rest = sub(a, from_deposit)?;
            if rest > 0 {
                self.collect_fee(tx, &old, n, f.code.as_str(), money(rest), true)?;
                n = n.saturating_add(1);
            }
        }
        if dmg_above > 0 {
            self.collect_fee(tx, &old, n, codes::DEPOSIT_DAMAGE, money(dmg_above), false)?;
        }
        tx.receipt.settlement = Some(DepositSettlement {
            package,
            deposit: old.deposit,
            fees: money(due),
            damage: money(dmg),
            lost,
            deducted: money(deducted),
            refunded: money(refunded),
            charged: money(add(fee_above, dmg_above)?),
        });
        Ok(Commit::Package(
            package,
            Box::new(PackageBook {
                fees_due: Vec::new(),
                ..old
            }),
        ))
    }

    fn pay_agent(&mut self, tx: &mut Tx, node: &str, amount: Money) -> Result<()> {
        let cur = self.config.currency();
        let a = positive("amount", amount, cur)?;
        let account = Key::for_field("node", node)?.suffixed(":revenue", "node")?;
        let owed = self
            .ledger
            .account(&account)
            .map_or(0, |x| minor(x.posted_balance()));
        if a > owed {
            return Err(BooksError::AgentOverpaid {
                node: node.to_owned(),
                owed: Money::from_minor(owed, cur),
                amount,
            });
        }
        self.batch(
            tx,
            &[Command::Transfer {
                id: tx.op_id,
                debit_account: account,
                credit_account: self.config.wallet.clearing_account,
                amount,
                code: Key::lit(codes::AGENT_PAYOUT),
                reference: None,
            }],
        )
    }

    // ----- reconciliation -----------------------------------------------------

    /// The books' totals side by side at `at` (not before the last
    /// operation). See [`Reconciliation::agrees`] for what must hold.
    pub fn reconcile(&self, at: Timestamp) -> Result<Reconciliation> {
        let cur = self.config.currency();
        let local = self.local_time(at)?;
        let totals = self.ledger.totals();
        let mut ok = totals.debits_posted == totals.credits_posted
            && totals.debits_pending == totals.credits_pending;
        let (mut in_ledger, mut in_packages) = (0i64, 0i64);
        let mut packages = Vec::with_capacity(self.packages.len());
        for (k, b) in &self.packages {
            let ledger = self.balance(&b.account)?;
            let liability = minor(b.package.liability(local)?);
            let status = b.package.entitlement(local)?.status;
            let (paid, refunded) = self
                .package_payments(k)
                .unwrap_or((Money::zero(cur), Money::zero(cur)));
            ok &= ledger == liability && minor(refunded) <= minor(paid);
            in_ledger = add(in_ledger, ledger)?;
            in_packages = add(in_packages, liability)?;
            packages.push(PackageReconciliation {
                package: *k,
                status,
                ledger: Money::from_minor(ledger, cur),
                liability: Money::from_minor(liability, cur),
                unrecognised: Money::from_minor(sub(ledger, liability)?, cur),
                paid,
                refunded,
            });
        }
        let agents = self.reconcile_agents(cur)?;
        ok &= agents.iter().all(|a| a.settlement_total == a.ledger_net);
        let deposits = self.deposits.reconcile(&self.ledger);
        ok &= deposits.agrees;
        let receivables = self
            .ledger
            .accounts()
            .filter(|a| a.kind == AccountKind::Receivable && a.currency == cur)
            .fold(0i64, |s, a| s.saturating_add(minor(a.posted_balance())));
        Ok(Reconciliation {
            at,
            totals,
            packages,
            package_liability_ledger: Money::from_minor(in_ledger, cur),
            package_liability_packages: Money::from_minor(in_packages, cur),
            agents,
            deposits,
            receivables: Money::from_minor(receivables, cur),
            agrees: ok,
        })
    }

    fn reconcile_agents(&self, cur: Currency) -> Result<Vec<AgentReconciliation>> {
        let statements = if self.splits.is_empty() {
            BTreeMap::new()
        } else {
            settlement::statements(&self.splits, NaiveDateTime::MIN, NaiveDateTime::MAX, cur)?
        };
        let ledger = report::agent_settlement(
            &self.ledger,
            DateTime::<Utc>::MIN_UTC,
            DateTime::<Utc>::MAX_UTC,
            cur,
        )?;
        let by_node: BTreeMap<String, (i64, i64, i64)> = ledger
            .iter()
            .map(|a| {
                let net = minor(a.earned).saturating_sub(minor(a.reversed));
                (
                    a.agent.to_string(),
                    (net, minor(a.paid_out), minor(a.closing)),
                )
            })
            .collect();
        let nodes: BTreeSet<&String> = statements
            .keys()
            .filter(|n| !n.is_empty())
            .chain(by_node.keys())
            .collect();
        Ok(nodes
            .into_iter()
            .map(|node| {
                let settled = statements.get(node).map_or(0, |s| minor(s.total.total));
                let (net, paid, owed) = by_node.get(node).copied().unwrap_or((0, 0, 0));
                AgentReconciliation {
                    node: node.clone(),
                    settlement_total: Money::from_minor(settled, cur),
                    ledger_net: Money::from_minor(net, cur),
                    paid_out: Money::from_minor(paid, cur),
                    owed: Money::from_minor(owed, cur),
                }
            })
            .collect())
    }
}

#[cfg(test)]
mod tests;
