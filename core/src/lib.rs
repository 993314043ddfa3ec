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
//! - [`custody`]: battery custody, where every battery is and why it moved.
//! - [`cabinet`]: the normalized cabinet events and snapshots the machines consume.
//! - [`door`]: the cabinet door sub-machine (put or take a battery, reopen once, lock, custody) the machines share.
//! - [`swap`]: the swap session (换电) state machine.
//! - [`charging`]: the charging session (充电) state machine.
//! - [`rental`]: the battery rental (租电) state machine.
//! - [`order`]: order records, abnormal-order detection and operator resolutions.
//! - [`flow`]: scenario replay through the machines (CLI `flow run`, golden flows).
//! - [`executor`]: carries out machine effects against custody and the [`books`].
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

pub mod cabinet;
pub mod charging;
pub mod custody;
pub mod door;
pub mod executor;
pub mod flow;
pub mod order;
pub mod rental;
pub mod swap;

pub use money::{Currency, Money, MoneyError, Rounding};
pub use numbering::{DeviceClass, DeviceNo, DeviceNoAllocator, NumberingError};
pub use tariff::{CompiledTariff, Quote, Session, Tariff, TariffError};
