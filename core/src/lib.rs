//! # chargeswap-core
//!
//! The pure domain core of chargeswap, a library for platforms that run
//! battery charging (充电), battery swapping (换电) and battery rental (租电)
//! for delivery riders' electric two-wheelers.
//!
//! Everything here is deterministic data in, data out: no I/O, no clock reads
//! (`now` is always a parameter), no global state. Public types are owned and
//! serde-able so that the Python, Node and uniffi bindings stay one line per
//! method.
//!
//! Modules:
//! - [`money`]: exact money, rounding rules and allocation.
//! - [`membership`]: member levels from rolling usage and spend, benefits, level changes.
//! - [`numbering`]: the device numbering plan and a number allocator.
//! - [`org`]: the platform → agent → sub-agent/store hierarchy, asset ownership, roles and permission checks.
//! - [`package`]: packages (套餐): catalog, entitlements and their life as a state machine.
//! - [`settlement`]: revenue-sharing rules, exact per-order splits and agent statements.
//! - [`ledger`]: the double-entry ledger every money movement goes through.
//! - [`wallet`]: rider wallets (paid and gift credit) on the ledger.
//! - [`deposit`]: deposits and deposit waivers on the ledger.
//! - [`report`]: pure aggregations over the ledger's history.
//! - [`tariff`]: the pricing engine: tariffs, session facts, itemised quotes.
//! - [`books`]: one ledger with wallets, deposits, packages and revenue sharing
//!   behind one idempotent, atomic operation API.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod books;
pub mod deposit;
pub mod ledger;
pub mod membership;
pub mod money;
pub mod numbering;
pub mod org;
pub mod package;
pub mod report;
pub mod settlement;
pub mod tariff;
pub mod wallet;

pub use money::{Currency, Money, MoneyError, Rounding};
pub use numbering::{DeviceClass, DeviceNo, DeviceNoAllocator, NumberingError};
pub use tariff::{CompiledTariff, Quote, Session, Tariff, TariffError};
