//! Carrying out the machines' effects against the rest of core.
//!
//! The swap, charging and rental machines only *describe* work. An
//! [`Executor`] carries out the parts that belong to core itself, in order,
//! each idempotently:
//!
//! - custody moves into the [`Custody`] book;
//! - entitlement consumption and its reversal through [`crate::package`]
//!   (`Consume` / `ReverseConsumption`, idempotent by order id, so a replayed
//!   swap never consumes twice);
//! - revenue splits and their reversals through [`crate::settlement`], with
//!   the agent chain of the cabinet's owner in [`crate::org`] (idempotent by
//!   order id);
//!
//! and reports the rest as the host's: door commands, notifications, alerts,
//! slot locks, and (until the ledger module is wired) the money movements of
//! holds, captures and refunds.
//!
//! Package and settlement times are local ([`chrono::NaiveDateTime`]); the
//! executor converts `now` with its configured UTC offset (China: +8 h).
//! A cabinet's org asset id is its decimal [`CabinetId`].

use std::collections::BTreeMap;

use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};

use crate::charging::ChargingEffect;
use crate::custody::{CabinetId, Custody, CustodyError, MoveRequest, Timestamp};
use crate::money::Money;
use crate::org::{AssetKind, Org, OrgError};
use crate::package::{Command as PackageCommand, Package, PackageError};
use crate::rental::RentalEffect;
use crate::settlement::{
    ProductType, RevenueOrder, RevenueRules, SettlementError, SplitResult, split,
};
use crate::swap::SwapEffect;

/// Errors of the executor: which effect could not be carried out and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ExecutorError {
    /// The custody book refused a move.
    #[error("custody refused the move: {error}")]
    Custody {
        /// Why.
        error: CustodyError,
    },
    /// No package with this id is loaded.
    #[error("package {package} is unknown: load it with add_package first")]
    UnknownPackage {
        /// The package id.
        package: String,
    },
    /// The package refused the command.
    #[error("package {package} refused {command}: {error}")]
    Package {
        /// The package id.
        package: String,
        /// The command.
        command: String,
        /// Why.
        error: PackageError,
    },
    /// The revenue split failed.
    #[error("revenue split of order {order} failed: {error}")]
    Settlement {
        /// The order.
        order: u64,
        /// Why.
        error: SettlementError,
    },
    /// The org could not place the cabinet.
    #[error("cabinet {cabinet} has no owner node: {error}")]
    Org {
        /// The cabinet.
        cabinet: u64,
        /// Why.
        error: OrgError,
    },
}

/// What happened to one effect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Carried {
    /// Carried out now.
    Done,
    /// Already carried out before (same id): nothing changed.
    Duplicate,
    /// Not core's work: the host carries it out (doors, notifications,
    /// alerts, slot locks, ledger money movements).
    Host,
    /// Failed; nothing changed for this effect.
    Failed {
        /// Why.
        error: ExecutorError,
    },
}

/// Configuration of an executor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecutorConfig {
    /// Seconds east of UTC of the platform's local time (28 800 for China).
    pub utc_offset_s: i32,
    /// Revenue-sharing rules.
    pub rules: RevenueRules,
    /// The organisation, for agent chains (none: platform-owned sites).
    pub org: Option<Org>,
}

/// Carries out effects; owns the custody book, the loaded packages and the
/// revenue splits it made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Executor {
    config: ExecutorConfig,
    custody: Custody,
    packages: BTreeMap<String, Package>,
    splits: BTreeMap<String, SplitResult>,
}

impl Executor {
    /// A new executor over a custody book.
    pub fn new(config: ExecutorConfig, custody: Custody) -> Executor {
        Executor {
            config,
            custody,
            packages: BTreeMap::new(),
            splits: BTreeMap::new(),
        }
    }

    /// Loads (or replaces) a rider's package.
    pub fn add_package(&mut self, p: Package) {
        self.packages.insert(p.id.clone(), p);
    }

    /// A loaded package.
    pub fn package(&self, id: &str) -> Option<&Package> {
        self.packages.get(id)
    }

    /// The custody book.
    pub fn custody(&self) -> &Custody {
        &self.custody
    }

    /// Revenue splits made, by order id (reversals under `"<order>:refund"`).
    pub fn splits(&self) -> &BTreeMap<String, SplitResult> {
        &self.splits
    }

    fn local(&self, now: Timestamp) -> NaiveDateTime {
        let off = chrono::Duration::seconds(i64::from(self.config.utc_offset_s));
        now.naive_utc()
            .checked_add_signed(off)
            .unwrap_or_else(|| now.naive_utc())
    }

    fn custody_move(&mut self, m: &MoveRequest, now: Timestamp) -> Carried {
        match self.custody.record(m.clone(), now) {
            Ok(r) if r.duplicate => Carried::Duplicate,
            Ok(_) => Carried::Done,
            Err(error) => Carried::Failed {
                error: ExecutorError::Custody { error },
            },
        }
    }

    fn package_cmd(&mut self, package: &str, cmd: PackageCommand, now: Timestamp) -> Carried {
        let local = self.local(now);
        let Some(p) = self.packages.get_mut(package) else {
            return Carried::Failed {
                error: ExecutorError::UnknownPackage {
                    package: package.into(),
                },
            };
        };
        match p.handle(&cmd, local) {
            // Due time-driven transitions may come first; only a consumption
            // (or reversal) event among them means the command did something.
            Ok(events) => {
                let acted = events.iter().any(|e| {
                    matches!(
                        e,
                        crate::package::Event::Consumed { .. }
                            | crate::package::Event::ConsumptionReversed { .. }
                    )
                });
                if acted {
                    Carried::Done
                } else {
                    Carried::Duplicate
                }
            }
            Err(error) => Carried::Failed {
                error: ExecutorError::Package {
                    package: package.into(),
                    command: format!("{cmd:?}"),
                    error,
                },
            },
        }
    }

    fn chain(&self, cabinet: Option<CabinetId>) -> Result<Vec<String>, ExecutorError> {
        match (&self.config.org, cabinet) {
            (Some(org), Some(c)) => {
                let id = c.0.to_string();
                let node =
                    org.owner_of(AssetKind::Cabinet, &id)
                        .map_err(|error| ExecutorError::Org {
                            cabinet: c.0,
                            error,
                        })?;
                org.agent_chain(node).map_err(|error| ExecutorError::Org {
                    cabinet: c.0,
                    error,
                })
            }
            _ => Ok(Vec::new()),
        }
    }

    fn split_revenue(
        &mut self,
        order: u64,
        product: ProductType,
        amount: Money,
        swaps: u32,
        cabinet: Option<CabinetId>,
        now: Timestamp,
    ) -> Carried {
        let key = order.to_string();
        if self.splits.contains_key(&key) {
            return Carried::Duplicate;
        }
        let chain = match self.chain(cabinet) {
            Ok(c) => c,
            Err(error) => return Carried::Failed { error },
        };
        let ro = RevenueOrder {
            order_id: key.clone(),
            product,
            amount,
            swaps,
            at: self.local(now),
            chain,
        };
        match split(&self.config.rules, &ro) {
            Ok(s) => {
                self.splits.insert(key, s);
                Carried::Done
            }
            Err(error) => Carried::Failed {
                error: ExecutorError::Settlement { order, error },
            },
        }
    }

    fn reverse_revenue(&mut self, order: u64, now: Timestamp) -> Carried {
        let key = format!("{order}:refund");
        if self.splits.contains_key(&key) {
            return Carried::Duplicate;
        }
        let local = self.local(now);
        match self.splits.get(&order.to_string()) {
            Some(s) => {
                let r = s.reversed(&key, local);
                self.splits.insert(key, r);
                Carried::Done
            }
            // nothing was split: nothing to reverse
            None => Carried::Duplicate,
        }
    }

    /// Carries out a swap decision's effects at `cabinet`, in order.
    pub fn carry_out_swap(
        &mut self,
        cabinet: CabinetId,
        effects: &[SwapEffect],
        now: Timestamp,
    ) -> Vec<Carried> {
        effects
            .iter()
            .map(|e| match e {
                SwapEffect::CustodyMove(m) => self.custody_move(m, now),
                SwapEffect::ConsumeEntitlement { order, package } => self.package_cmd(
                    package,
                    PackageCommand::Consume {
                        order_id: order.to_string(),
                        swaps: 1,
                    },
                    now,
                ),
                SwapEffect::RefundEntitlement { order, package } => self.package_cmd(
                    package,
                    PackageCommand::ReverseConsumption {
                        order_id: order.to_string(),
                    },
                    now,
                ),
                SwapEffect::SplitRevenue { order, amount } => {
                    self.split_revenue(*order, ProductType::Swap, *amount, 1, Some(cabinet), now)
                }
                SwapEffect::ReverseRevenue { order } => self.reverse_revenue(*order, now),
                _ => Carried::Host,
            })
            .collect()
    }

    /// Carries out a charging decision's effects, in order. `cabinet` is the
    /// charging cabinet, if the session runs at one (for the agent chain).
    pub fn carry_out_charging(
        &mut self,
        cabinet: Option<CabinetId>,
        effects: &[ChargingEffect],
        now: Timestamp,
    ) -> Vec<Carried> {
        effects
            .iter()
            .map(|e| match e {
                ChargingEffect::ConsumeEntitlement { order, package } => self.package_cmd(
                    package,
                    PackageCommand::Consume {
                        order_id: order.to_string(),
                        swaps: 1,
                    },
                    now,
                ),
                ChargingEffect::ReverseRevenue { order } => self.reverse_revenue(*order, now),
                ChargingEffect::SplitRevenue { order, amount } => {
                    self.split_revenue(*order, ProductType::Charging, *amount, 0, cabinet, now)
                }
                _ => Carried::Host,
            })
            .collect()
    }

    /// Carries out a rental decision's effects, in order.
    pub fn carry_out_rental(&mut self, effects: &[RentalEffect], now: Timestamp) -> Vec<Carried> {
        effects
            .iter()
            .map(|e| match e {
                RentalEffect::CustodyMove(m) => self.custody_move(m, now),
                _ => Carried::Host,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
