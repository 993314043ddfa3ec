//! A double-entry ledger in the spirit of TigerBeetle: [`Ledger`], accounts,
//! transfers, two-phase holds, statements.
//!
//! Every money movement in chargeswap is a [`Transfer`] that debits one
//! account and credits another by the same positive amount in one currency,
//! so the sum of all debits always equals the sum of all credits: no
//! operation can create or lose a fen.
//!
//! - **Accounts** have a typed [`AccountKind`] (rider wallet, deposit held,
//!   package liability, platform revenue, …), a currency, an optional owner
//!   (rider, agent, credit provider) and [`AccountFlags`] such as
//!   `debits_must_not_exceed_credits`, which keeps a wallet from going negative.
//! - **Transfers** are created by [`Command`]s with a client-chosen id.
//!   Applying is idempotent by id: the same id with the same content returns
//!   the original [`Transfer`] and changes nothing; the same id with different
//!   content is [`LedgerError::IdConflict`].
//! - **Two-phase**: a [`Command::Hold`] reserves an amount (pending debits and
//!   credits); a [`Command::Post`] moves all or part of it to posted (the rest
//!   is released), a [`Command::Void`] releases it, and
//!   [`Ledger::expire_pending`] releases every hold whose `expires_at` is due.
//! - **Time is data**: every operation takes `now`; the ledger never reads a
//!   clock. Timestamps must not go backwards ([`LedgerError::TimestampRegressed`]),
//!   which keeps statements over a period consistent with the order of history.
//! - **History is immutable**: transfers are only appended; the state of a
//!   hold lives beside it ([`PendingStatus`]), as expiries do ([`Expiry`]).
//! - **Bad input changes nothing**, and [`Ledger::apply_batch`] is atomic: all
//!   commands apply or none does.
//!
//! Amounts are [`Money`] at the interface and must be whole minor units (fen);
//! inside, balances are `i64` minor units with checked arithmetic.
//!
//! ```
//! use chargeswap_core::ledger::{AccountKind, Command, Key, Ledger, NewAccount};
//! use chrono::{TimeZone, Utc};
//!
//! let now = Utc.with_ymd_and_hms(2024, 5, 1, 8, 0, 0).unwrap();
//! let mut ledger = Ledger::new();
//! ledger.create_account(&NewAccount::new(Key::new("clearing")?, AccountKind::PaymentClearing), now)?;
//! ledger.create_account(&NewAccount::new(Key::new("r1:wallet")?, AccountKind::RiderWallet).no_overdraft(), now)?;
//!
//! // A rider tops up ¥50 through WeChat Pay.
//! let top_up = Command::transfer("t1", "clearing", "r1:wallet", "50.00".parse()?, "top_up")?;
//! ledger.apply(&top_up, now)?;
//! // Replaying the same command is a no-op that returns the original transfer.
//! ledger.apply(&top_up, now)?;
//! assert_eq!(ledger.account(&Key::new("r1:wallet")?).unwrap().posted_balance().to_string(), "¥50.00");
//!
//! // The wallet cannot go negative.
//! let too_much = Command::transfer("t2", "r1:wallet", "clearing", "60.00".parse()?, "withdraw")?;
//! assert!(ledger.apply(&too_much, now).is_err());
//! assert_eq!(ledger.totals().debits_posted, ledger.totals().credits_posted);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use core::fmt;
use core::hash::{BuildHasher, Hash};
use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::money::{Currency, Money};

/// A point in time (UTC). The ledger never reads a clock: callers pass `now`.
pub type Timestamp = DateTime<Utc>;

/// The hash map used on the hot path: keys are host-chosen ids (short ASCII),
/// hashed with rustc-hash's FxHasher (see docs/benchmarks.md for why).
type FastMap<K, V> = HashMap<K, V, rustc_hash::FxBuildHasher>;

fn key_hash(k: &Key) -> u64 {
    rustc_hash::FxBuildHasher.hash_one(k)
}

/// The transfer-id index: a hash table of history indices (4 bytes a
/// bucket; the ids themselves live in the history), so the index of a
/// million transfers stays small enough for the caches.
#[derive(Clone, Default)]
struct IdIndex {
    table: hashbrown::HashTable<u32>,
}

impl fmt::Debug for IdIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdIndex({} ids)", self.table.len())
    }
}

impl IdIndex {
    fn with_capacity(n: usize) -> IdIndex {
        IdIndex {
            table: hashbrown::HashTable::with_capacity(n),
        }
    }

    fn get(&self, entries: &[Entry], id: &Key) -> Option<u32> {
        self.table
            .find(key_hash(id), |&i| {
                entries.get(i as usize).is_some_and(|e| e.id == *id)
            })
            .copied()
    }

    fn contains(&self, entries: &[Entry], id: &Key) -> bool {
        self.get(entries, id).is_some()
    }

    /// Adds `i` (whose entry must already be in `entries`).
    fn insert(&mut self, entries: &[Entry], id: &Key, i: u32) {
        self.table.insert_unique(key_hash(id), i, |&j| {
            entries.get(j as usize).map_or(0, |e| key_hash(&e.id))
        });
    }

    fn remove(&mut self, entries: &[Entry], id: &Key) {
        if let Ok(e) = self.table.find_entry(key_hash(id), |&i| {
            entries.get(i as usize).is_some_and(|e| e.id == *id)
        }) {
            e.remove();
        }
    }

    fn reserve(&mut self, entries: &[Entry], n: usize) {
        self.table.reserve(n, |&j| {
            entries.get(j as usize).map_or(0, |e| key_hash(&e.id))
        });
    }
}

mod key;
pub use key::{KEY_CAPACITY, Key};

/// Errors of the ledger. Each names the field or account at fault and what
/// was expected. A rejected command changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LedgerError {
    /// Not a valid [`Key`].
    #[error("{field}: invalid id {value:?}: expected {expected}")]
    InvalidKey {
        /// The field that holds the key.
        field: String,
        /// The offending text (at most 64 characters of it).
        value: String,
        /// What a key looks like.
        expected: String,
    },
    /// An account with this id exists with a different definition.
    #[error("account {account} already exists with a different {field}")]
    AccountExists {
        /// The account id.
        account: Key,
        /// The first field that differs.
        field: String,
    },
    /// Both balance-limit flags were set on one account.
    #[error(
        "account {account}: flags debits_must_not_exceed_credits and credits_must_not_exceed_debits are mutually exclusive"
    )]
    ConflictingFlags {
        /// The account id.
        account: Key,
    },
    /// No account with this id.
    #[error("{field}: account {account} does not exist; create it first")]
    AccountNotFound {
        /// The field that names the account.
        field: String,
        /// The missing account id.
        account: Key,
    },
    /// Debit and credit account are the same.
    #[error(
        "debit_account and credit_account are both {account}; a transfer needs two different accounts"
    )]
    SameAccount {
        /// The account id.
        account: Key,
    },
    /// The amount is zero or negative.
    #[error("{field} must be greater than zero, got {amount}")]
    AmountNotPositive {
        /// The field.
        field: String,
        /// The amount given.
        amount: Money,
    },
    /// The amount is not a whole number of minor units (fen).
    #[error(
        "{field} must be a whole number of minor units ({minor_units} decimal places for its currency), got {amount}"
    )]
    AmountNotMinorExact {
        /// The field.
        field: String,
        /// The amount given.
        amount: Money,
        /// Decimal places of the minor unit.
        minor_units: u32,
    },
    /// Amount or accounts in different currencies.
    #[error("{field} is in {got}, expected {expected} (the currency of account {account})")]
    CurrencyMismatch {
        /// The field whose currency is wrong.
        field: String,
        /// The account that fixes the currency.
        account: Key,
        /// The currency expected.
        expected: Currency,
        /// The currency given.
        got: Currency,
    },
    /// The debit would make the account's debits exceed its credits.
    #[error(
        "account {account} (debits_must_not_exceed_credits) can be debited at most {available}, got {amount}"
    )]
    ExceedsCredits {
        /// The account.
        account: Key,
        /// What may still be debited: credits posted − debits posted − debits pending.
        available: Money,
        /// The amount asked for.
        amount: Money,
    },
    /// The credit would make the account's credits exceed its debits.
    #[error(
        "account {account} (credits_must_not_exceed_debits) can be credited at most {available}, got {amount}"
    )]
    ExceedsDebits {
        /// The account.
        account: Key,
        /// What may still be credited: debits posted − credits posted − credits pending.
        available: Money,
        /// The amount asked for.
        amount: Money,
    },
    /// The transfer id exists with different content.
    #[error(
        "transfer id {id} already exists with a different {field}; use a new id for a new transfer"
    )]
    IdConflict {
        /// The transfer id.
        id: Key,
        /// The first field that differs.
        field: String,
    },
    /// `pending_id` names no transfer.
    #[error("pending_id {pending_id} names no transfer")]
    PendingNotFound {
        /// The id given.
        pending_id: Key,
    },
    /// `pending_id` names a transfer that is not a hold.
    #[error("pending_id {pending_id} is not a hold (pending transfer)")]
    NotPending {
        /// The id given.
        pending_id: Key,
    },
    /// The hold was already posted, voided or expired.
    #[error("hold {pending_id} is already {status}; only an open hold can be posted or voided")]
    PendingClosed {
        /// The hold.
        pending_id: Key,
        /// "posted", "voided" or "expired".
        status: String,
    },
    /// The hold's deadline has passed.
    #[error("hold {pending_id} expired at {expires_at} (now is {now})")]
    PendingExpired {
        /// The hold.
        pending_id: Key,
        /// Its deadline.
        expires_at: Timestamp,
        /// The `now` given.
        now: Timestamp,
    },
    /// A post of more than the hold.
    #[error("amount {amount} exceeds hold {pending_id} of {pending_amount}")]
    ExceedsPending {
        /// The hold.
        pending_id: Key,
        /// The hold's amount.
        pending_amount: Money,
        /// The amount asked for.
        amount: Money,
    },
    /// A hold whose deadline is not after `now`.
    #[error("expires_at {expires_at} must be after now ({now})")]
    ExpiryNotInFuture {
        /// The deadline given.
        expires_at: Timestamp,
        /// The `now` given.
        now: Timestamp,
    },
    /// `now` is earlier than the last transfer's timestamp.
    #[error(
        "now {now} is before the last transfer at {last}; the ledger's time must not go backwards"
    )]
    TimestampRegressed {
        /// The `now` given.
        now: Timestamp,
        /// The timestamp of the latest transfer.
        last: Timestamp,
    },
    /// A balance would exceed the largest representable amount.
    #[error("balance overflow on account {account}")]
    Overflow {
        /// The account.
        account: Key,
    },
    /// Too many accounts or transfers for the ledger's 32-bit indices.
    #[error("ledger capacity exceeded: at most {max} {what}")]
    Capacity {
        /// "accounts" or "transfers".
        what: String,
        /// The limit.
        max: u64,
    },
    /// A command of a batch failed; no command of the batch was applied.
    #[error("batch command {index} failed (nothing was applied): {error}")]
    BatchFailed {
        /// Index of the failing command in the batch.
        index: usize,
        /// Why it failed.
        error: Box<LedgerError>,
    },
    /// A period that ends before it starts.
    #[error("to ({to}) must not be before from ({from})")]
    InvalidPeriod {
        /// Start given.
        from: Timestamp,
        /// End given.
        to: Timestamp,
    },
    /// A serialized ledger that does not replay.
    #[error("invalid ledger state at {at}: {error}")]
    InvalidState {
        /// Which record failed.
        at: String,
        /// Why.
        error: Box<LedgerError>,
    },
}

/// Result type of the ledger.
pub type Result<T> = core::result::Result<T, LedgerError>;

/// The side of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// Debit.
    Debit,
    /// Credit.
    Credit,
}

/// What an account is for. The kind fixes its normal side (the side on which
/// its balance grows) and lets reports group accounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountKind {
    /// A rider's paid (cash) wallet balance. Credit-normal (owed to the rider).
    RiderWallet,
    /// A rider's gift credit. Credit-normal; never withdrawable as cash.
    RiderGift,
    /// Deposits paid by a rider and held by the platform. Credit-normal.
    DepositHeld,
    /// Waived deposits (免押) held against a third-party credit line: the
    /// credit side of the authorisation hold. Credit-normal.
    CreditHold,
    /// A third-party credit line (e.g. a credit-score provider) that
    /// guarantees waived deposits; debited when a hold is captured. Debit-normal.
    CreditLine,
    /// Deferred revenue of sold but unconsumed packages (套餐). Credit-normal.
    PackageLiability,
    /// Platform revenue. Credit-normal.
    PlatformRevenue,
    /// Revenue share owed to one agent (the account's owner). Credit-normal.
    AgentRevenue,
    /// Refunds approved and owed to riders through a payment channel. Credit-normal.
    RefundsPayable,
    /// Money in transit at payment channels (WeChat Pay, Alipay, bank). Debit-normal.
    PaymentClearing,
    /// Cost of gift credit and promotions; expired gift credit returns here. Debit-normal.
    Promotion,
    /// Amounts owed to the platform (unpaid fees, captured credit). Debit-normal.
    Receivable,
    /// Any other expense. Debit-normal.
    Expense,
    /// Any other liability or income. Credit-normal.
    Liability,
}

impl AccountKind {
    /// The side on which this kind's balance grows.
    pub fn normal_side(self) -> Side {
        match self {
            AccountKind::CreditLine
            | AccountKind::PaymentClearing
            | AccountKind::Promotion
            | AccountKind::Receivable
            | AccountKind::Expense => Side::Debit,
            _ => Side::Credit,
        }
    }

    /// True for the kinds that reports count as revenue.
    pub fn is_revenue(self) -> bool {
        matches!(
            self,
            AccountKind::PlatformRevenue | AccountKind::AgentRevenue
        )
    }
}

/// Balance limits of an account (TigerBeetle's flags). At most one may be set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct AccountFlags {
    /// Refuse a debit (posted or pending) that would make debits posted +
    /// debits pending exceed credits posted: the account cannot go negative.
    #[serde(default)]
    pub debits_must_not_exceed_credits: bool,
    /// Refuse a credit that would make credits posted + credits pending
    /// exceed debits posted.
    #[serde(default)]
    pub credits_must_not_exceed_debits: bool,
}

/// The definition of an account, as given to [`Ledger::create_account`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewAccount {
    /// The account id.
    pub id: Key,
    /// What the account is for.
    pub kind: AccountKind,
    /// Its currency; CNY if omitted.
    #[serde(default)]
    pub currency: Currency,
    /// Balance limits.
    #[serde(default)]
    pub flags: AccountFlags,
    /// Who the account belongs to (rider, agent, credit provider), if anyone.
    #[serde(default)]
    pub owner: Option<Key>,
}

impl NewAccount {
    /// A CNY account without flags or owner.
    pub fn new(id: Key, kind: AccountKind) -> NewAccount {
        NewAccount {
            id,
            kind,
            currency: Currency::CNY,
            flags: AccountFlags::default(),
            owner: None,
        }
    }

    /// Sets `debits_must_not_exceed_credits`: the account cannot go negative.
    pub fn no_overdraft(mut self) -> NewAccount {
        self.flags.debits_must_not_exceed_credits = true;
        self
    }

    /// Sets the owner.
    pub fn owned_by(mut self, owner: Key) -> NewAccount {
        self.owner = Some(owner);
        self
    }

    /// Sets the currency.
    pub fn in_currency(mut self, currency: Currency) -> NewAccount {
        self.currency = currency;
        self
    }
}

/// An account with its balances, as returned by [`Ledger::account`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// The account id.
    pub id: Key,
    /// What it is for.
    pub kind: AccountKind,
    /// Its currency.
    pub currency: Currency,
    /// Balance limits.
    pub flags: AccountFlags,
    /// Its owner, if any.
    pub owner: Option<Key>,
    /// When it was created.
    pub created_at: Timestamp,
    /// Sum of open holds debiting it.
    pub debits_pending: Money,
    /// Sum of posted debits.
    pub debits_posted: Money,
    /// Sum of open holds crediting it.
    pub credits_pending: Money,
    /// Sum of posted credits.
    pub credits_posted: Money,
}

impl Account {
    fn net(&self, debits: Money, credits: Money) -> Money {
        let (plus, minus) = match self.kind.normal_side() {
            Side::Credit => (credits, debits),
            Side::Debit => (debits, credits),
        };
        plus.checked_sub(minus).unwrap_or(plus)
    }

    /// Posted balance on the account's normal side (credits − debits for a
    /// credit-normal account, debits − credits for a debit-normal one).
    pub fn posted_balance(&self) -> Money {
        self.net(self.debits_posted, self.credits_posted)
    }

    /// Pending (held) amount on the account's normal side.
    pub fn pending_balance(&self) -> Money {
        self.net(self.debits_pending, self.credits_pending)
    }

    /// What can still be debited from a credit-normal account: credits
    /// posted − debits posted − debits pending (what
    /// `debits_must_not_exceed_credits` checks against).
    pub fn available(&self) -> Money {
        self.credits_posted
            .checked_sub(self.debits_posted)
            .and_then(|m| m.checked_sub(self.debits_pending))
            .unwrap_or(self.credits_posted)
    }
}

/// How a transfer moves money.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Posted at once (single-phase).
    Posted,
    /// A hold: pending until posted, voided or expired.
    Pending {
        /// When the hold lapses, if ever.
        expires_at: Option<Timestamp>,
    },
    /// Posts (part of) a hold; `amount` is what was posted, the rest was released.
    PostPending {
        /// The hold.
        pending_id: Key,
    },
    /// Releases a hold; `amount` is what was released.
    VoidPending {
        /// The hold.
        pending_id: Key,
    },
}

/// One immutable record of the history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transfer {
    /// The client-chosen id.
    pub id: Key,
    /// The debited account.
    pub debit_account: Key,
    /// The credited account.
    pub credit_account: Key,
    /// The amount (for a post: the amount posted; for a void: the amount released).
    pub amount: Money,
    /// What the transfer is for (e.g. `top_up`, `swap_fee`, `package_purchase`).
    pub code: Key,
    /// An optional reference, usually the order id.
    pub reference: Option<Key>,
    /// When it was applied (the `now` given).
    pub timestamp: Timestamp,
    /// Single-phase, hold, post or void.
    pub phase: Phase,
}

/// An operation on the ledger. Build one with the constructors or from JSON:
/// `{"type": "transfer", "id": "t1", "debit_account": "clearing",
/// "credit_account": "r1:wallet", "amount": "50.00", "code": "top_up"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Command {
    /// A single-phase transfer, posted at once.
    Transfer {
        /// The transfer id.
        id: Key,
        /// The account to debit.
        debit_account: Key,
        /// The account to credit.
        credit_account: Key,
        /// A positive amount in whole minor units.
        amount: Money,
        /// What it is for.
        code: Key,
        /// An optional reference (order id).
        #[serde(default)]
        reference: Option<Key>,
    },
    /// A hold (pending transfer).
    Hold {
        /// The transfer id (later the `pending_id`).
        id: Key,
        /// The account to debit.
        debit_account: Key,
        /// The account to credit.
        credit_account: Key,
        /// A positive amount in whole minor units.
        amount: Money,
        /// What it is for.
        code: Key,
        /// An optional reference (order id).
        #[serde(default)]
        reference: Option<Key>,
        /// When the hold lapses; must be after `now`. None: never.
        #[serde(default)]
        expires_at: Option<Timestamp>,
    },
    /// Posts a hold in full (`amount` omitted) or in part; the rest is released.
    Post {
        /// The transfer id of the post.
        id: Key,
        /// The hold.
        pending_id: Key,
        /// How much to post; the whole hold if omitted.
        #[serde(default)]
        amount: Option<Money>,
    },
    /// Releases a hold.
    Void {
        /// The transfer id of the void.
        id: Key,
        /// The hold.
        pending_id: Key,
    },
}

impl Command {
    /// A single-phase transfer from text ids (validated).
    pub fn transfer(
        id: &str,
        debit: &str,
        credit: &str,
        amount: Money,
        code: &str,
    ) -> Result<Command> {
        Ok(Command::Transfer {
            id: Key::for_field("id", id)?,
            debit_account: Key::for_field("debit_account", debit)?,
            credit_account: Key::for_field("credit_account", credit)?,
            amount,
            code: Key::for_field("code", code)?,
            reference: None,
        })
    }

    /// A hold from text ids (validated).
    pub fn hold(
        id: &str,
        debit: &str,
        credit: &str,
        amount: Money,
        code: &str,
        expires_at: Option<Timestamp>,
    ) -> Result<Command> {
        Ok(Command::Hold {
            id: Key::for_field("id", id)?,
            debit_account: Key::for_field("debit_account", debit)?,
            credit_account: Key::for_field("credit_account", credit)?,
            amount,
            code: Key::for_field("code", code)?,
            reference: None,
            expires_at,
        })
    }

    /// A post of a hold, in full (`None`) or in part.
    pub fn post(id: &str, pending_id: &str, amount: Option<Money>) -> Result<Command> {
        Ok(Command::Post {
            id: Key::for_field("id", id)?,
            pending_id: Key::for_field("pending_id", pending_id)?,
            amount,
        })
    }

    /// A void of a hold.
    pub fn void(id: &str, pending_id: &str) -> Result<Command> {
        Ok(Command::Void {
            id: Key::for_field("id", id)?,
            pending_id: Key::for_field("pending_id", pending_id)?,
        })
    }

    /// The same command with a reference (ignored by post and void, which
    /// take the hold's reference).
    pub fn with_reference(mut self, r: Key) -> Command {
        match &mut self {
            Command::Transfer { reference, .. } | Command::Hold { reference, .. } => {
                *reference = Some(r);
            }
            Command::Post { .. } | Command::Void { .. } => {}
        }
        self
    }

    /// The command's transfer id.
    pub fn id(&self) -> Key {
        match self {
            Command::Transfer { id, .. }
            | Command::Hold { id, .. }
            | Command::Post { id, .. }
            | Command::Void { id, .. } => *id,
        }
    }
}

/// The state of a hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum PendingStatus {
    /// Still held.
    Open,
    /// Posted by transfer `by`, `amount` posted.
    Posted {
        /// The post's transfer id.
        by: Key,
        /// The amount posted.
        amount: Money,
    },
    /// Released by transfer `by`.
    Voided {
        /// The void's transfer id.
        by: Key,
    },
    /// Released by [`Ledger::expire_pending`] at `at`.
    Expired {
        /// The `now` of the sweep.
        at: Timestamp,
    },
}

impl PendingStatus {
    fn name(&self) -> &'static str {
        match self {
            PendingStatus::Open => "open",
            PendingStatus::Posted { .. } => "posted",
            PendingStatus::Voided { .. } => "voided",
            PendingStatus::Expired { .. } => "expired",
        }
    }
}

/// A hold released by [`Ledger::expire_pending`]; also kept in the history
/// ([`Ledger::expiries`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expiry {
    /// The hold.
    pub pending_id: Key,
    /// Its debit account.
    pub debit_account: Key,
    /// Its credit account.
    pub credit_account: Key,
    /// The amount released.
    pub amount: Money,
    /// Its code.
    pub code: Key,
    /// Its reference.
    pub reference: Option<Key>,
    /// Its deadline.
    pub expires_at: Timestamp,
    /// The `now` of the sweep that released it.
    pub expired_at: Timestamp,
    /// How many transfers the history held when it expired (its place in history).
    pub position: u64,
}

/// Sums over all accounts, in minor units. In a consistent ledger
/// `debits_posted == credits_posted` and `debits_pending == credits_pending`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Totals {
    /// Sum of posted debits over all accounts, minor units.
    pub debits_posted: i128,
    /// Sum of posted credits over all accounts, minor units.
    pub credits_posted: i128,
    /// Sum of pending debits, minor units.
    pub debits_pending: i128,
    /// Sum of pending credits, minor units.
    pub credits_pending: i128,
}

/// One line of a [`Statement`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatementLine {
    /// The transfer.
    pub transfer_id: Key,
    /// When.
    pub timestamp: Timestamp,
    /// Its code.
    pub code: Key,
    /// Its reference.
    pub reference: Option<Key>,
    /// The other account of the transfer.
    pub counterparty: Key,
    /// Whether this account was debited or credited.
    pub side: Side,
    /// The amount.
    pub amount: Money,
    /// The posted balance after this line, on the account's normal side.
    pub balance: Money,
}

/// Posted movements of one account over `[from, to)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Statement {
    /// The account.
    pub account: Key,
    /// Its kind.
    pub kind: AccountKind,
    /// Start of the period (inclusive).
    pub from: Timestamp,
    /// End of the period (exclusive).
    pub to: Timestamp,
    /// Posted balance at `from` (normal side).
    pub opening: Money,
    /// Posted transfers (single-phase and posts of holds) in the period.
    pub lines: Vec<StatementLine>,
    /// Sum of debits in the period.
    pub total_debits: Money,
    /// Sum of credits in the period.
    pub total_credits: Money,
    /// Posted balance at `to`: opening ± the lines.
    pub closing: Money,
}

// ---------------------------------------------------------------------------
// Internal representation.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EntryKind {
    Posted,
    Pending { expires_at: Option<Timestamp> },
    Post { pending: u32 },
    Void { pending: u32 },
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    id: Key,
    debit: u32,
    credit: u32,
    amount: i64,
    code: Key,
    reference: Option<Key>,
    timestamp: Timestamp,
    kind: EntryKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HoldState {
    Open,
    Posted { by: u32, amount: i64 },
    Voided { by: u32 },
    Expired { at: Timestamp },
}

#[derive(Debug, Clone)]
struct Slot {
    spec: NewAccount,
    created_at: Timestamp,
    debits_pending: i64,
    debits_posted: i64,
    credits_pending: i64,
    credits_posted: i64,
    /// History indices of the posted entries (single-phase and posts) touching this account.
    posted: Vec<u32>,
    /// How many transfers the history held when the account was created.
    history_len_at_creation: usize,
}

/// The ledger: accounts, the immutable history of transfers and expiries,
/// and the state of every hold.
///
/// Serialized as `{accounts, transfers, expiries}`; deserializing replays the
/// history through the same checks, so a tampered or inconsistent state is
/// refused ([`LedgerError::InvalidState`]).
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    slots: Vec<Slot>,
    account_index: FastMap<Key, u32>,
    entries: Vec<Entry>,
    transfer_index: IdIndex,
    holds: FastMap<u32, HoldState>,
    /// Open holds with a deadline, ordered by (deadline, history index).
    deadlines: BTreeSet<(Timestamp, u32)>,
    expiries: Vec<Expiry>,
    last: Option<Timestamp>,
}

struct Resolved {
    debit: u32,
    credit: u32,
    amount: i64,
}

fn minor(field: &str, amount: Money, currency: Currency, account: Key) -> Result<i64> {
    if amount.currency() != currency {
        return Err(LedgerError::CurrencyMismatch {
            field: field.to_owned(),
            account,
            expected: currency,
            got: amount.currency(),
        });
    }
    if !amount.is_positive() {
        return Err(LedgerError::AmountNotPositive {
            field: field.to_owned(),
            amount,
        });
    }
    to_minor(amount).ok_or_else(|| LedgerError::AmountNotMinorExact {
        field: field.to_owned(),
        amount,
        minor_units: currency.minor_units(),
    })
}

/// The amount in minor units if it is a whole number of them. Fast path (no
/// decimal multiplication): an amount with at most the currency's decimal
/// places is mantissa × 10^(minor units − scale).
fn to_minor(amount: Money) -> Option<i64> {
    let d = amount.amount();
    let mu = amount.currency().minor_units();
    if d.scale() <= mu {
        return 10i128
            .checked_pow(mu - d.scale())
            .and_then(|p| d.mantissa().checked_mul(p))
            .and_then(|v| i64::try_from(v).ok());
    }
    amount.to_minor()
}

fn idx(i: usize, what: &str) -> Result<u32> {
    u32::try_from(i).map_err(|_| LedgerError::Capacity {
        what: what.to_owned(),
        max: u64::from(u32::MAX),
    })
}

impl Ledger {
    /// An empty ledger.
    pub fn new() -> Ledger {
        Ledger::default()
    }

    /// An empty ledger with room for `accounts` accounts and `transfers` transfers.
    pub fn with_capacity(accounts: usize, transfers: usize) -> Ledger {
        Ledger {
            slots: Vec::with_capacity(accounts),
            account_index: FastMap::with_capacity_and_hasher(accounts, Default::default()),
            entries: Vec::with_capacity(transfers),
            transfer_index: IdIndex::with_capacity(transfers),
            ..Ledger::default()
        }
    }

    /// Reserves room for `transfers` more transfers (a clone keeps only what
    /// it holds, so a host that clones a ledger and then applies many
    /// transfers may pre-size it).
    pub fn reserve(&mut self, transfers: usize) {
        self.entries.reserve(transfers);
        self.transfer_index.reserve(&self.entries, transfers);
    }

    // ----- accounts ------------------------------------------------------

    /// Creates an account. Idempotent: creating the same definition again
    /// returns the existing account; a different definition under the same
    /// id is [`LedgerError::AccountExists`].
    ///
    /// ```
    /// use chargeswap_core::ledger::{AccountKind, Key, Ledger, NewAccount};
    /// use chrono::{TimeZone, Utc};
    /// let now = Utc.with_ymd_and_hms(2024, 5, 1, 0, 0, 0).unwrap();
    /// let mut l = Ledger::new();
    /// let spec = NewAccount::new(Key::new("agent-9:revenue")?, AccountKind::AgentRevenue)
    ///     .owned_by(Key::new("agent-9")?);
    /// l.create_account(&spec, now)?;
    /// assert!(l.create_account(&spec, now).is_ok());
    /// assert!(l.create_account(&NewAccount::new(spec.id, AccountKind::PlatformRevenue), now).is_err());
    /// # Ok::<(), chargeswap_core::ledger::LedgerError>(())
    /// ```
    pub fn create_account(&mut self, spec: &NewAccount, now: Timestamp) -> Result<Account> {
        if let Some(&i) = self.account_index.get(&spec.id) {
            let existing = self.slot(i)?.spec;
            let field = if existing.kind != spec.kind {
                Some("kind")
            } else if existing.currency != spec.currency {
                Some("currency")
            } else if existing.flags != spec.flags {
                Some("flags")
            } else if existing.owner != spec.owner {
                Some("owner")
            } else {
                None
            };
            return match field {
                Some(field) => Err(LedgerError::AccountExists {
                    account: spec.id,
                    field: field.to_owned(),
                }),
                None => self.account_at(i),
            };
        }
        if spec.flags.debits_must_not_exceed_credits && spec.flags.credits_must_not_exceed_debits {
            return Err(LedgerError::ConflictingFlags { account: spec.id });
        }
        let i = idx(self.slots.len(), "accounts")?;
        self.slots.push(Slot {
            spec: *spec,
            created_at: now,
            debits_pending: 0,
            debits_posted: 0,
            credits_pending: 0,
            credits_posted: 0,
            posted: Vec::new(),
            history_len_at_creation: self.entries.len(),
        });
        self.account_index.insert(spec.id, i);
        self.account_at(i)
    }

    /// Removes the most recently created account if it is `id` and was never
    /// touched: the rollback of an op that created an account and then had
    /// its transfers refused.
    pub(crate) fn discard_new_account(&mut self, id: &Key) {
        // No transfer was recorded since it was created, so none refers to it.
        let unused = self
            .slots
            .last()
            .is_some_and(|s| s.spec.id == *id && s.history_len_at_creation == self.entries.len());
        if unused {
            self.slots.pop();
            self.account_index.remove(id);
        }
    }

    /// The account with this id and its balances.
    pub fn account(&self, id: &Key) -> Option<Account> {
        let i = *self.account_index.get(id)?;
        self.account_at(i).ok()
    }

    /// Every account, in creation order.
    pub fn accounts(&self) -> impl Iterator<Item = Account> + '_ {
        (0..self.slots.len())
            .filter_map(|i| u32::try_from(i).ok().and_then(|i| self.account_at(i).ok()))
    }

    /// How many accounts exist.
    pub fn account_count(&self) -> usize {
        self.slots.len()
    }

    fn slot(&self, i: u32) -> Result<&Slot> {
        self.slots
            .get(i as usize)
            .ok_or_else(|| LedgerError::Capacity {
                what: "accounts".to_owned(),
                max: self.slots.len() as u64,
            })
    }

    fn account_at(&self, i: u32) -> Result<Account> {
        let s = self.slot(i)?;
        let c = s.spec.currency;
        Ok(Account {
            id: s.spec.id,
            kind: s.spec.kind,
            currency: c,
            flags: s.spec.flags,
            owner: s.spec.owner,
            created_at: s.created_at,
            debits_pending: Money::from_minor(s.debits_pending, c),
            debits_posted: Money::from_minor(s.debits_posted, c),
            credits_pending: Money::from_minor(s.credits_pending, c),
            credits_posted: Money::from_minor(s.credits_posted, c),
        })
    }

    fn lookup(&self, field: &str, id: Key) -> Result<u32> {
        self.account_index
            .get(&id)
            .copied()
            .ok_or_else(|| LedgerError::AccountNotFound {
                field: field.to_owned(),
                account: id,
            })
    }

    // ----- transfers -----------------------------------------------------

    /// Applies one command at `now` and returns the transfer it recorded.
    ///
    /// Idempotent by id: if a transfer with the command's id exists and the
    /// command has the same content, the original transfer is returned and
    /// nothing changes (whatever `now` is); if the content differs, the
    /// result is [`LedgerError::IdConflict`] naming the first differing field.
    /// A rejected command changes nothing.
    ///
    /// ```
    /// use chargeswap_core::ledger::{AccountKind, Command, Key, Ledger, NewAccount, PendingStatus};
    /// use chrono::{Duration, TimeZone, Utc};
    /// let now = Utc.with_ymd_and_hms(2024, 5, 1, 8, 0, 0).unwrap();
    /// let mut l = Ledger::new();
    /// for (id, kind) in [("clearing", AccountKind::PaymentClearing), ("rev", AccountKind::PlatformRevenue)] {
    ///     l.create_account(&NewAccount::new(Key::new(id)?, kind), now)?;
    /// }
    /// l.create_account(&NewAccount::new(Key::new("r1")?, AccountKind::RiderWallet).no_overdraft(), now)?;
    /// l.apply(&Command::transfer("t1", "clearing", "r1", "30".parse()?, "top_up")?, now)?;
    ///
    /// // Pre-authorise ¥20 for a charging session, then capture ¥12.34 of it.
    /// let hold = Command::hold("h1", "r1", "rev", "20".parse()?, "charging", Some(now + Duration::hours(4)))?;
    /// l.apply(&hold, now)?;
    /// assert_eq!(l.account(&Key::new("r1")?).unwrap().available().to_string(), "¥10.00");
    /// l.apply(&Command::post("p1", "h1", Some("12.34".parse()?))?, now + Duration::hours(1))?;
    /// assert_eq!(l.account(&Key::new("r1")?).unwrap().posted_balance().to_string(), "¥17.66");
    /// assert!(matches!(l.pending_status(&Key::new("h1")?), Some(PendingStatus::Posted { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn apply(&mut self, command: &Command, now: Timestamp) -> Result<Transfer> {
        let i = self.apply_index(command, now)?;
        self.transfer_for(i, command)
    }

    /// The transfer at `i`, which `command` created or matched: a transfer or
    /// hold takes its account ids from the command (they were checked equal),
    /// which saves two account reads on the hot path.
    fn transfer_for(&self, i: u32, command: &Command) -> Result<Transfer> {
        let (debit_account, credit_account) = match *command {
            Command::Transfer {
                debit_account,
                credit_account,
                ..
            }
            | Command::Hold {
                debit_account,
                credit_account,
                ..
            } => (debit_account, credit_account),
            Command::Post { .. } | Command::Void { .. } => return self.transfer_at(i),
        };
        let e = self
            .entries
            .get(i as usize)
            .ok_or_else(|| LedgerError::Capacity {
                what: "transfers".to_owned(),
                max: self.entries.len() as u64,
            })?;
        let currency = match command {
            Command::Transfer { amount, .. } | Command::Hold { amount, .. } => amount.currency(),
            _ => Currency::CNY,
        };
        let phase = match e.kind {
            EntryKind::Pending { expires_at } => Phase::Pending { expires_at },
            _ => Phase::Posted,
        };
        Ok(Transfer {
            id: e.id,
            debit_account,
            credit_account,
            amount: Money::from_minor(e.amount, currency),
            code: e.code,
            reference: e.reference,
            timestamp: e.timestamp,
            phase,
        })
    }

    /// Applies commands in order, atomically: either every command applies
    /// and their transfers are returned, or none does and the error is
    /// [`LedgerError::BatchFailed`] with the failing command's index.
    /// Later commands see the effects of earlier ones (a batch may hold and
    /// post, or top up and pay).
    pub fn apply_batch(&mut self, commands: &[Command], now: Timestamp) -> Result<Vec<Transfer>> {
        let start = self.entries.len();
        let last = self.last;
        let mut applied = Vec::with_capacity(commands.len());
        for (index, c) in commands.iter().enumerate() {
            match self.apply_index(c, now) {
                Ok(i) => applied.push((i, c)),
                Err(error) => {
                    self.rollback(start);
                    self.last = last;
                    return Err(LedgerError::BatchFailed {
                        index,
                        error: Box::new(error),
                    });
                }
            }
        }
        applied
            .into_iter()
            .map(|(i, c)| self.transfer_for(i, c))
            .collect()
    }

    fn apply_index(&mut self, command: &Command, now: Timestamp) -> Result<u32> {
        let id = command.id();
        if let Some(i) = self.transfer_index.get(&self.entries, &id) {
            return self.compare(i, command).map(|()| i);
        }
        if let Some(last) = self.last {
            if now < last {
                return Err(LedgerError::TimestampRegressed { now, last });
            }
        }
        let i = match *command {
            Command::Transfer {
                id,
                debit_account,
                credit_account,
                amount,
                code,
                reference,
            } => {
                let r = self.resolve(debit_account, credit_account, amount)?;
                self.check_limits(&r)?;
                let d = self.slot(r.debit)?;
                let new_dp = add(d.debits_posted, r.amount, d.spec.id)?;
                let c = self.slot(r.credit)?;
                let new_cp = add(c.credits_posted, r.amount, c.spec.id)?;
                let i = idx(self.entries.len(), "transfers")?;
                if let Some(d) = self.slots.get_mut(r.debit as usize) {
                    d.debits_posted = new_dp;
                    d.posted.push(i);
                }
                if let Some(c) = self.slots.get_mut(r.credit as usize) {
                    c.credits_posted = new_cp;
                    c.posted.push(i);
                }
                self.push(Entry {
                    id,
                    debit: r.debit,
                    credit: r.credit,
                    amount: r.amount,
                    code,
                    reference,
                    timestamp: now,
                    kind: EntryKind::Posted,
                })
            }
            Command::Hold {
                id,
                debit_account,
                credit_account,
                amount,
                code,
                reference,
                expires_at,
            } => {
                if let Some(e) = expires_at {
                    if e <= now {
                        return Err(LedgerError::ExpiryNotInFuture { expires_at: e, now });
                    }
                }
                let r = self.resolve(debit_account, credit_account, amount)?;
                self.check_limits(&r)?;
                let d = self.slot(r.debit)?;
                let new_dp = add(d.debits_pending, r.amount, d.spec.id)?;
                let c = self.slot(r.credit)?;
                let new_cp = add(c.credits_pending, r.amount, c.spec.id)?;
                let i = idx(self.entries.len(), "transfers")?;
                if let Some(d) = self.slots.get_mut(r.debit as usize) {
                    d.debits_pending = new_dp;
                }
                if let Some(c) = self.slots.get_mut(r.credit as usize) {
                    c.credits_pending = new_cp;
                }
                self.holds.insert(i, HoldState::Open);
                if let Some(e) = expires_at {
                    self.deadlines.insert((e, i));
                }
                self.push(Entry {
                    id,
                    debit: r.debit,
                    credit: r.credit,
                    amount: r.amount,
                    code,
                    reference,
                    timestamp: now,
                    kind: EntryKind::Pending { expires_at },
                })
            }
            Command::Post {
                id,
                pending_id,
                amount,
            } => {
                let (p, hold) = self.open_hold(pending_id, now)?;
                let posted = match amount {
                    None => hold.amount,
                    Some(a) => {
                        let cur = self.slot(hold.debit)?.spec.currency;
                        let a = minor("amount", a, cur, self.slot(hold.debit)?.spec.id)?;
                        if a > hold.amount {
                            return Err(LedgerError::ExceedsPending {
                                pending_id,
                                pending_amount: Money::from_minor(hold.amount, cur),
                                amount: Money::from_minor(a, cur),
                            });
                        }
                        a
                    }
                };
                let d = self.slot(hold.debit)?;
                let new_dp = add(d.debits_posted, posted, d.spec.id)?;
                let c = self.slot(hold.credit)?;
                let new_cp = add(c.credits_posted, posted, c.spec.id)?;
                let i = idx(self.entries.len(), "transfers")?;
                if let Some(d) = self.slots.get_mut(hold.debit as usize) {
                    d.debits_pending = d.debits_pending.saturating_sub(hold.amount);
                    d.debits_posted = new_dp;
                    d.posted.push(i);
                }
                if let Some(c) = self.slots.get_mut(hold.credit as usize) {
                    c.credits_pending = c.credits_pending.saturating_sub(hold.amount);
                    c.credits_posted = new_cp;
                    c.posted.push(i);
                }
                self.close_hold(
                    p,
                    &hold,
                    HoldState::Posted {
                        by: i,
                        amount: posted,
                    },
                );
                self.push(Entry {
                    id,
                    debit: hold.debit,
                    credit: hold.credit,
                    amount: posted,
                    code: hold.code,
                    reference: hold.reference,
                    timestamp: now,
                    kind: EntryKind::Post { pending: p },
                })
            }
            Command::Void { id, pending_id } => {
                let (p, hold) = self.open_hold(pending_id, now)?;
                let i = idx(self.entries.len(), "transfers")?;
                self.release(&hold);
                self.close_hold(p, &hold, HoldState::Voided { by: i });
                self.push(Entry {
                    id,
                    debit: hold.debit,
                    credit: hold.credit,
                    amount: hold.amount,
                    code: hold.code,
                    reference: hold.reference,
                    timestamp: now,
                    kind: EntryKind::Void { pending: p },
                })
            }
        };
        self.last = Some(now);
        Ok(i)
    }

    fn push(&mut self, e: Entry) -> u32 {
        let i = u32::try_from(self.entries.len()).unwrap_or(u32::MAX);
        let id = e.id;
        self.entries.push(e);
        self.transfer_index.insert(&self.entries, &id, i);
        i
    }

    fn resolve(&self, debit: Key, credit: Key, amount: Money) -> Result<Resolved> {
        let d = self.lookup("debit_account", debit)?;
        let c = self.lookup("credit_account", credit)?;
        if d == c {
            return Err(LedgerError::SameAccount { account: debit });
        }
        let dcur = self.slot(d)?.spec.currency;
        let ccur = self.slot(c)?.spec.currency;
        if ccur != dcur {
            return Err(LedgerError::CurrencyMismatch {
                field: "credit_account".to_owned(),
                account: debit,
                expected: dcur,
                got: ccur,
            });
        }
        let amount = minor("amount", amount, dcur, debit)?;
        Ok(Resolved {
            debit: d,
            credit: c,
            amount,
        })
    }

    fn check_limits(&self, r: &Resolved) -> Result<()> {
        let d = self.slot(r.debit)?;
        if d.spec.flags.debits_must_not_exceed_credits {
            let used = i128::from(d.debits_posted) + i128::from(d.debits_pending);
            let available = i128::from(d.credits_posted) - used;
            if i128::from(r.amount) > available {
                let cur = d.spec.currency;
                return Err(LedgerError::ExceedsCredits {
                    account: d.spec.id,
                    available: money128(available, cur),
                    amount: Money::from_minor(r.amount, cur),
                });
            }
        }
        let c = self.slot(r.credit)?;
        if c.spec.flags.credits_must_not_exceed_debits {
            let used = i128::from(c.credits_posted) + i128::from(c.credits_pending);
            let available = i128::from(c.debits_posted) - used;
            if i128::from(r.amount) > available {
                let cur = c.spec.currency;
                return Err(LedgerError::ExceedsDebits {
                    account: c.spec.id,
                    available: money128(available, cur),
                    amount: Money::from_minor(r.amount, cur),
                });
            }
        }
        Ok(())
    }

    fn open_hold(&self, pending_id: Key, now: Timestamp) -> Result<(u32, Entry)> {
        let p = self
            .transfer_index
            .get(&self.entries, &pending_id)
            .ok_or(LedgerError::PendingNotFound { pending_id })?;
        let hold = *self
            .entries
            .get(p as usize)
            .ok_or(LedgerError::PendingNotFound { pending_id })?;
        let EntryKind::Pending { expires_at } = hold.kind else {
            return Err(LedgerError::NotPending { pending_id });
        };
        let state = self.holds.get(&p).copied().unwrap_or(HoldState::Open);
        if state != HoldState::Open {
            return Err(LedgerError::PendingClosed {
                pending_id,
                status: self.status_of(state).name().to_owned(),
            });
        }
        if let Some(e) = expires_at {
            if e <= now {
                return Err(LedgerError::PendingExpired {
                    pending_id,
                    expires_at: e,
                    now,
                });
            }
        }
        Ok((p, hold))
    }

    fn release(&mut self, hold: &Entry) {
        if let Some(d) = self.slots.get_mut(hold.debit as usize) {
            d.debits_pending = d.debits_pending.saturating_sub(hold.amount);
        }
        if let Some(c) = self.slots.get_mut(hold.credit as usize) {
            c.credits_pending = c.credits_pending.saturating_sub(hold.amount);
        }
    }

    fn close_hold(&mut self, p: u32, hold: &Entry, state: HoldState) {
        self.holds.insert(p, state);
        if let EntryKind::Pending {
            expires_at: Some(e),
        } = hold.kind
        {
            self.deadlines.remove(&(e, p));
        }
    }

    /// Compares a replayed command with the stored transfer.
    fn compare(&self, i: u32, command: &Command) -> Result<()> {
        let e = self
            .entries
            .get(i as usize)
            .ok_or(LedgerError::PendingNotFound {
                pending_id: command.id(),
            })?;
        let cur = self.slot(e.debit)?.spec.currency;
        let same_money = |m: &Money| m.currency() == cur && to_minor(*m) == Some(e.amount);
        let dkey = self.slot(e.debit)?.spec.id;
        let ckey = self.slot(e.credit)?.spec.id;
        let differ: Option<&str> = match (command, e.kind) {
            (
                Command::Transfer {
                    debit_account,
                    credit_account,
                    amount,
                    code,
                    reference,
                    ..
                },
                EntryKind::Posted,
            ) => first_diff(&[
                ("debit_account", *debit_account == dkey),
                ("credit_account", *credit_account == ckey),
                ("amount", same_money(amount)),
                ("code", *code == e.code),
                ("reference", *reference == e.reference),
            ]),
            (
                Command::Hold {
                    debit_account,
                    credit_account,
                    amount,
                    code,
                    reference,
                    expires_at,
                    ..
                },
                EntryKind::Pending { expires_at: stored },
            ) => first_diff(&[
                ("debit_account", *debit_account == dkey),
                ("credit_account", *credit_account == ckey),
                ("amount", same_money(amount)),
                ("code", *code == e.code),
                ("reference", *reference == e.reference),
                ("expires_at", *expires_at == stored),
            ]),
            (
                Command::Post {
                    pending_id, amount, ..
                },
                EntryKind::Post { pending },
            ) => {
                let hold = self.entries.get(pending as usize);
                let same_amount = match amount {
                    None => hold.map(|h| h.amount) == Some(e.amount),
                    Some(m) => same_money(m),
                };
                first_diff(&[
                    ("pending_id", Some(*pending_id) == hold.map(|h| h.id)),
                    ("amount", same_amount),
                ])
            }
            (Command::Void { pending_id, .. }, EntryKind::Void { pending }) => {
                let stored_pid = self.entries.get(pending as usize).map(|h| h.id);
                first_diff(&[("pending_id", Some(*pending_id) == stored_pid)])
            }
            _ => Some("type"),
        };
        match differ {
            None => Ok(()),
            Some(field) => Err(LedgerError::IdConflict {
                id: e.id,
                field: field.to_owned(),
            }),
        }
    }

    /// Undoes every entry from `start` on, newest first.
    fn rollback(&mut self, start: usize) {
        while self.entries.len() > start {
            let Some(&e) = self.entries.last() else { break };
            self.transfer_index.remove(&self.entries, &e.id);
            self.entries.pop();
            let i = u32::try_from(self.entries.len()).unwrap_or(u32::MAX);
            match e.kind {
                EntryKind::Posted => {
                    if let Some(d) = self.slots.get_mut(e.debit as usize) {
                        d.debits_posted = d.debits_posted.saturating_sub(e.amount);
                        d.posted.pop();
                    }
                    if let Some(c) = self.slots.get_mut(e.credit as usize) {
                        c.credits_posted = c.credits_posted.saturating_sub(e.amount);
                        c.posted.pop();
                    }
                }
                EntryKind::Pending { expires_at } => {
                    self.release(&e);
                    self.holds.remove(&i);
                    if let Some(x) = expires_at {
                        self.deadlines.remove(&(x, i));
                    }
                }
                EntryKind::Post { pending } | EntryKind::Void { pending } => {
                    let Some(hold) = self.entries.get(pending as usize).copied() else {
                        continue;
                    };
                    let posted = if matches!(e.kind, EntryKind::Post { .. }) {
                        e.amount
                    } else {
                        0
                    };
                    if let Some(d) = self.slots.get_mut(e.debit as usize) {
                        d.debits_pending = d.debits_pending.saturating_add(hold.amount);
                        d.debits_posted = d.debits_posted.saturating_sub(posted);
                        if posted > 0 {
                            d.posted.pop();
                        }
                    }
                    if let Some(c) = self.slots.get_mut(e.credit as usize) {
                        c.credits_pending = c.credits_pending.saturating_add(hold.amount);
                        c.credits_posted = c.credits_posted.saturating_sub(posted);
                        if posted > 0 {
                            c.posted.pop();
                        }
                    }
                    self.holds.insert(pending, HoldState::Open);
                    if let EntryKind::Pending {
                        expires_at: Some(x),
                    } = hold.kind
                    {
                        self.deadlines.insert((x, pending));
                    }
                }
            }
        }
    }

    /// Releases every open hold whose `expires_at` is at or before `now`, in
    /// deadline order, and returns them. They stay in the history; their
    /// status becomes [`PendingStatus::Expired`] and an [`Expiry`] is recorded.
    ///
    /// ```
    /// use chargeswap_core::ledger::{AccountKind, Command, Key, Ledger, NewAccount};
    /// use chrono::{Duration, TimeZone, Utc};
    /// let t0 = Utc.with_ymd_and_hms(2024, 5, 1, 8, 0, 0).unwrap();
    /// let mut l = Ledger::new();
    /// l.create_account(&NewAccount::new(Key::new("line")?, AccountKind::CreditLine), t0)?;
    /// l.create_account(&NewAccount::new(Key::new("r1:credit")?, AccountKind::CreditHold), t0)?;
    /// l.apply(&Command::hold("w1", "line", "r1:credit", "500".parse()?, "deposit_waiver", Some(t0 + Duration::days(30)))?, t0)?;
    /// assert!(l.expire_pending(t0 + Duration::days(29))?.is_empty());
    /// let gone = l.expire_pending(t0 + Duration::days(30))?;
    /// assert_eq!(gone[0].pending_id.as_str(), "w1");
    /// assert!(l.account(&Key::new("r1:credit")?).unwrap().credits_pending.is_zero());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn expire_pending(&mut self, now: Timestamp) -> Result<Vec<Expiry>> {
        if let Some(last) = self.last {
            if now < last {
                return Err(LedgerError::TimestampRegressed { now, last });
            }
        }
        let mut out = Vec::new();
        while let Some(&(deadline, p)) = self.deadlines.first() {
            if deadline > now {
                break;
            }
            self.deadlines.pop_first();
            let Some(hold) = self.entries.get(p as usize).copied() else {
                continue;
            };
            self.release(&hold);
            self.holds.insert(p, HoldState::Expired { at: now });
            let x = Expiry {
                pending_id: hold.id,
                debit_account: self.slot(hold.debit)?.spec.id,
                credit_account: self.slot(hold.credit)?.spec.id,
                amount: Money::from_minor(hold.amount, self.slot(hold.debit)?.spec.currency),
                code: hold.code,
                reference: hold.reference,
                expires_at: deadline,
                expired_at: now,
                position: self.entries.len() as u64,
            };
            self.expiries.push(x);
            out.push(x);
        }
        self.last = Some(now);
        Ok(out)
    }

    // ----- queries -------------------------------------------------------

    fn transfer_at(&self, i: u32) -> Result<Transfer> {
        let e = self
            .entries
            .get(i as usize)
            .ok_or_else(|| LedgerError::Capacity {
                what: "transfers".to_owned(),
                max: self.entries.len() as u64,
            })?;
        let d = self.slot(e.debit)?;
        let phase = match e.kind {
            EntryKind::Posted => Phase::Posted,
            EntryKind::Pending { expires_at } => Phase::Pending { expires_at },
            EntryKind::Post { pending } => Phase::PostPending {
                pending_id: self.entry_id(pending),
            },
            EntryKind::Void { pending } => Phase::VoidPending {
                pending_id: self.entry_id(pending),
            },
        };
        Ok(Transfer {
            id: e.id,
            debit_account: d.spec.id,
            credit_account: self.slot(e.credit)?.spec.id,
            amount: Money::from_minor(e.amount, d.spec.currency),
            code: e.code,
            reference: e.reference,
            timestamp: e.timestamp,
            phase,
        })
    }

    fn entry_id(&self, i: u32) -> Key {
        self.entries.get(i as usize).map_or(
            Key {
                len: 0,
                bytes: [0; KEY_CAPACITY],
            },
            |e| e.id,
        )
    }

    fn status_of(&self, s: HoldState) -> PendingStatus {
        match s {
            HoldState::Open => PendingStatus::Open,
            HoldState::Posted { by, amount } => {
                let cur = self
                    .entries
                    .get(by as usize)
                    .and_then(|e| self.slot(e.debit).ok())
                    .map_or(Currency::CNY, |s| s.spec.currency);
                PendingStatus::Posted {
                    by: self.entry_id(by),
                    amount: Money::from_minor(amount, cur),
                }
            }
            HoldState::Voided { by } => PendingStatus::Voided {
                by: self.entry_id(by),
            },
            HoldState::Expired { at } => PendingStatus::Expired { at },
        }
    }

    /// The transfer with this id.
    pub fn transfer(&self, id: &Key) -> Option<Transfer> {
        let i = self.transfer_index.get(&self.entries, id)?;
        self.transfer_at(i).ok()
    }

    /// The history in order of application.
    pub fn transfers(&self) -> impl Iterator<Item = Transfer> + '_ {
        (0..self.entries.len())
            .filter_map(|i| u32::try_from(i).ok().and_then(|i| self.transfer_at(i).ok()))
    }

    /// How many transfers the history holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no transfer was ever applied.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every expiry, in order.
    pub fn expiries(&self) -> &[Expiry] {
        &self.expiries
    }

    /// The state of a hold, or None if `id` names no hold.
    pub fn pending_status(&self, id: &Key) -> Option<PendingStatus> {
        let i = self.transfer_index.get(&self.entries, id)?;
        let s = self.holds.get(&i)?;
        Some(self.status_of(*s))
    }

    /// Open holds, in history order.
    pub fn open_holds(&self) -> Vec<Transfer> {
        let mut v: Vec<u32> = self
            .holds
            .iter()
            .filter(|(_, s)| **s == HoldState::Open)
            .map(|(i, _)| *i)
            .collect();
        v.sort_unstable();
        v.into_iter()
            .filter_map(|i| self.transfer_at(i).ok())
            .collect()
    }

    /// The timestamp of the latest transfer or expiry sweep.
    pub fn last_timestamp(&self) -> Option<Timestamp> {
        self.last
    }

    /// Sums over all accounts (minor units). Debits equal credits, posted and
    /// pending, in every reachable state.
    pub fn totals(&self) -> Totals {
        let mut t = Totals::default();
        for s in &self.slots {
            t.debits_posted += i128::from(s.debits_posted);
            t.credits_posted += i128::from(s.credits_posted);
            t.debits_pending += i128::from(s.debits_pending);
            t.credits_pending += i128::from(s.credits_pending);
        }
        t
    }

    /// Posted movements of `account` over `[from, to)` with opening and
    /// closing balances on the account's normal side.
    ///
    /// ```
    /// use chargeswap_core::ledger::{AccountKind, Command, Key, Ledger, NewAccount};
    /// use chrono::{Duration, TimeZone, Utc};
    /// let d1 = Utc.with_ymd_and_hms(2024, 5, 1, 0, 0, 0).unwrap();
    /// let mut l = Ledger::new();
    /// l.create_account(&NewAccount::new(Key::new("clearing")?, AccountKind::PaymentClearing), d1)?;
    /// l.create_account(&NewAccount::new(Key::new("r1")?, AccountKind::RiderWallet), d1)?;
    /// l.apply(&Command::transfer("a", "clearing", "r1", "10".parse()?, "top_up")?, d1)?;
    /// l.apply(&Command::transfer("b", "clearing", "r1", "5".parse()?, "top_up")?, d1 + Duration::days(1))?;
    /// l.apply(&Command::transfer("c", "r1", "clearing", "3".parse()?, "withdraw")?, d1 + Duration::days(1))?;
    /// let s = l.statement(&Key::new("r1")?, d1 + Duration::days(1), d1 + Duration::days(2))?;
    /// assert_eq!(s.opening.to_string(), "¥10.00");
    /// assert_eq!(s.lines.len(), 2);
    /// assert_eq!(s.closing.to_string(), "¥12.00");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn statement(&self, account: &Key, from: Timestamp, to: Timestamp) -> Result<Statement> {
        let a = self.lookup("account", *account)?;
        if to < from {
            return Err(LedgerError::InvalidPeriod { from, to });
        }
        let s = self.slot(a)?;
        let cur = s.spec.currency;
        let normal = s.spec.kind.normal_side();
        let signed = |side: Side, amount: i64| -> i128 {
            if side == normal {
                i128::from(amount)
            } else {
                -i128::from(amount)
            }
        };
        let mut opening: i128 = 0;
        let mut lines = Vec::new();
        let (mut td, mut tc) = (0i128, 0i128);
        let mut running: i128 = 0;
        for &i in &s.posted {
            let Some(e) = self.entries.get(i as usize) else {
                continue;
            };
            if e.timestamp >= to {
                break;
            }
            let side = if e.debit == a {
                Side::Debit
            } else {
                Side::Credit
            };
            if e.timestamp < from {
                opening += signed(side, e.amount);
                running = opening;
                continue;
            }
            running += signed(side, e.amount);
            match side {
                Side::Debit => td += i128::from(e.amount),
                Side::Credit => tc += i128::from(e.amount),
            }
            let other = if side == Side::Debit {
                e.credit
            } else {
                e.debit
            };
            lines.push(StatementLine {
                transfer_id: e.id,
                timestamp: e.timestamp,
                code: e.code,
                reference: e.reference,
                counterparty: self.slot(other)?.spec.id,
                side,
                amount: Money::from_minor(e.amount, cur),
                balance: money128(running, cur),
            });
        }
        Ok(Statement {
            account: *account,
            kind: s.spec.kind,
            from,
            to,
            opening: money128(opening, cur),
            lines,
            total_debits: money128(td, cur),
            total_credits: money128(tc, cur),
            closing: money128(running, cur),
        })
    }
}

fn first_diff<'a>(checks: &[(&'a str, bool)]) -> Option<&'a str> {
    checks.iter().find(|(_, ok)| !ok).map(|(f, _)| *f)
}

fn add(a: i64, b: i64, account: Key) -> Result<i64> {
    a.checked_add(b).ok_or(LedgerError::Overflow { account })
}

fn money128(v: i128, currency: Currency) -> Money {
    let v = i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX });
    Money::from_minor(v, currency)
}

// ----- serde: {accounts, transfers, expiries}, deserialized by replay -------

#[derive(Serialize, Deserialize)]
struct AccountRecord {
    id: Key,
    kind: AccountKind,
    currency: Currency,
    flags: AccountFlags,
    owner: Option<Key>,
    created_at: Timestamp,
}

#[derive(Serialize, Deserialize)]
struct LedgerState {
    accounts: Vec<AccountRecord>,
    transfers: Vec<Transfer>,
    #[serde(default)]
    expiries: Vec<Expiry>,
}

impl Serialize for Ledger {
    fn serialize<S: Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        LedgerState {
            accounts: self
                .slots
                .iter()
                .map(|x| AccountRecord {
                    id: x.spec.id,
                    kind: x.spec.kind,
                    currency: x.spec.currency,
                    flags: x.spec.flags,
                    owner: x.spec.owner,
                    created_at: x.created_at,
                })
                .collect(),
            transfers: self.transfers().collect(),
            expiries: self.expiries.clone(),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Ledger {
    fn deserialize<D: Deserializer<'de>>(d: D) -> core::result::Result<Ledger, D::Error> {
        let state = LedgerState::deserialize(d)?;
        Ledger::replay(state).map_err(serde::de::Error::custom)
    }
}

fn bad_state(at: String, error: LedgerError) -> LedgerError {
    LedgerError::InvalidState {
        at,
        error: Box::new(error),
    }
}

impl Ledger {
    fn replay(state: LedgerState) -> Result<Ledger> {
        let mut l = Ledger::with_capacity(state.accounts.len(), state.transfers.len());
        for a in &state.accounts {
            let spec = NewAccount {
                id: a.id,
                kind: a.kind,
                currency: a.currency,
                flags: a.flags,
                owner: a.owner,
            };
            l.create_account(&spec, a.created_at)
                .map_err(|e| bad_state(format!("account {}", a.id), e))?;
        }
        let mut expiries = state.expiries.iter().peekable();
        for (n, t) in state.transfers.iter().enumerate() {
            while let Some(x) = expiries.next_if(|x| x.position <= n as u64) {
                l.replay_expiry(x)?;
            }
            let command = match t.phase {
                Phase::Posted => Command::Transfer {
                    id: t.id,
                    debit_account: t.debit_account,
                    credit_account: t.credit_account,
                    amount: t.amount,
                    code: t.code,
                    reference: t.reference,
                },
                Phase::Pending { expires_at } => Command::Hold {
                    id: t.id,
                    debit_account: t.debit_account,
                    credit_account: t.credit_account,
                    amount: t.amount,
                    code: t.code,
                    reference: t.reference,
                    expires_at,
                },
                Phase::PostPending { pending_id } => Command::Post {
                    id: t.id,
                    pending_id,
                    amount: Some(t.amount),
                },
                Phase::VoidPending { pending_id } => Command::Void {
                    id: t.id,
                    pending_id,
                },
            };
            if l.transfer_index.contains(&l.entries, &t.id) {
                return Err(bad_state(
                    format!("transfer {}", t.id),
                    LedgerError::IdConflict {
                        id: t.id,
                        field: "id".to_owned(),
                    },
                ));
            }
            let got = l
                .apply(&command, t.timestamp)
                .map_err(|e| bad_state(format!("transfer {}", t.id), e))?;
            if got != *t {
                return Err(bad_state(
                    format!("transfer {}", t.id),
                    LedgerError::IdConflict {
                        id: t.id,
                        field: "content".to_owned(),
                    },
                ));
            }
        }
        for x in expiries {
            l.replay_expiry(x)?;
        }
        Ok(l)
    }

    fn replay_expiry(&mut self, x: &Expiry) -> Result<()> {
        let at = || format!("expiry of {}", x.pending_id);
        if let Some(last) = self.last {
            if x.expired_at < last {
                return Err(bad_state(
                    at(),
                    LedgerError::TimestampRegressed {
                        now: x.expired_at,
                        last,
                    },
                ));
            }
        }
        let p = self
            .transfer_index
            .get(&self.entries, &x.pending_id)
            .ok_or_else(|| {
                bad_state(
                    at(),
                    LedgerError::PendingNotFound {
                        pending_id: x.pending_id,
                    },
                )
            })?;
        let hold = self.entries.get(p as usize).copied().ok_or_else(|| {
            bad_state(
                at(),
                LedgerError::PendingNotFound {
                    pending_id: x.pending_id,
                },
            )
        })?;
        let due =
            matches!(hold.kind, EntryKind::Pending { expires_at: Some(e) } if e <= x.expired_at);
        if !due || self.holds.get(&p) != Some(&HoldState::Open) {
            return Err(bad_state(
                at(),
                LedgerError::NotPending {
                    pending_id: x.pending_id,
                },
            ));
        }
        if let EntryKind::Pending {
            expires_at: Some(e),
        } = hold.kind
        {
            self.deadlines.remove(&(e, p));
        }
        self.release(&hold);
        self.holds
            .insert(p, HoldState::Expired { at: x.expired_at });
        self.expiries.push(*x);
        self.last = Some(x.expired_at);
        Ok(())
    }
}

/// Well-known transfer codes used by [`crate::wallet`] and [`crate::deposit`].
/// Any other [`Key`] is a valid code too.
pub mod codes {
    /// Money in from a payment channel to a rider wallet.
    pub const TOP_UP: &str = "top_up";
    /// Gift credit granted to a rider.
    pub const GIFT_GRANT: &str = "gift_grant";
    /// Gift credit that lapsed, back to promotion.
    pub const GIFT_EXPIRE: &str = "gift_expire";
    /// An order refund back into the wallet.
    pub const REFUND_TO_WALLET: &str = "refund_to_wallet";
    /// An order refund to the original payment channel (via refunds payable).
    pub const REFUND_TO_CHANNEL: &str = "refund_to_channel";
    /// The gift part of a refund that lapsed before the refund (back to promotion).
    pub const REFUND_GIFT_FORFEIT: &str = "refund_gift_forfeit";
    /// Unused wallet balance paid back to the rider's channel (via refunds payable).
    pub const WITHDRAW: &str = "withdraw";
    /// Refunds payable paid out through the channel.
    pub const REFUND_PAYOUT: &str = "refund_payout";
    /// A deposit paid in.
    pub const DEPOSIT_PAY: &str = "deposit_pay";
    /// A deposit deduction for damage.
    pub const DEPOSIT_DAMAGE: &str = "deposit_damage";
    /// A deposit deduction for a lost battery.
    pub const DEPOSIT_LOSS: &str = "deposit_loss";
    /// A deposit deduction for unpaid fees.
    pub const DEPOSIT_UNPAID_FEES: &str = "deposit_unpaid_fees";
    /// An approved deposit refund (deposit held → refunds payable).
    pub const DEPOSIT_REFUND: &str = "deposit_refund";
    /// A deposit waiver: the hold on a credit line.
    pub const DEPOSIT_WAIVER: &str = "deposit_waiver";
}

#[cfg(test)]
mod tests;
