//! `chargeswap package | revenue | membership | org`: the commerce formulas
//! from the shell, for finance and operations. JSON files in, JSON out.

use std::path::{Path, PathBuf};

use chargeswap_core::membership::{self, Activity, MembershipConfig};
use chargeswap_core::money::Currency;
use chargeswap_core::org::{Action, Actor, Org, OrgSpec, Resource};
use chargeswap_core::package::{Package, Product, RiderProfile, Scenario, Step};
use chargeswap_core::settlement::{self, RevenueOrder, RevenueRules};
use chrono::NaiveDateTime;
use clap::{Args, Subcommand};
use serde::de::DeserializeOwned;

use crate::util::{CliResult, read_json, to_value};

/// Parses `2026-05-01T10:00:00` (or with a space instead of the `T`, or
/// without seconds) as a local time.
fn parse_time(s: &str) -> Result<NaiveDateTime, String> {
    [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
    .ok_or_else(|| format!("{s:?} is not a time: expected local time like 2026-05-01T10:00:00"))
}

/// The package and what happened to it.
#[derive(Args)]
pub struct PackageInput {
    /// A JSON file: {"purchase": {"package_id", "rider_id", "product", "paid"?, "rider"?},
    /// "purchased_at": "2026-05-01T08:00:00", "timeline"?: [steps]}.
    #[arg(long)]
    package: PathBuf,
    /// A JSON file with more steps, applied after the package's own timeline:
    /// [{"at": "...", "type": "consume", "order_id": "o-1"}, ...].
    #[arg(long)]
    usage: Option<PathBuf>,
}

impl PackageInput {
    fn scenario(&self) -> Result<Scenario, String> {
        let mut s: Scenario = read_json(&self.package, "--package")?;
        if let Some(u) = &self.usage {
            let steps: Vec<Step> = read_json(u, "--usage")?;
            s.timeline.extend(steps);
        }
        Ok(s)
    }

    fn load(&self) -> Result<Package, String> {
        self.scenario()?.run().map(|o| o.package).map_err(err)
    }
}

#[derive(Subcommand)]
pub enum PackageCmd {
    /// Run a package's timeline and print the final state and every event.
    Run {
        #[command(flatten)]
        input: PackageInput,
    },
    /// What a refund would pay at a time, per term, and whether it is allowed.
    RefundQuote {
        #[command(flatten)]
        input: PackageInput,
        /// Local time, e.g. 2026-05-01T10:00:00.
        #[arg(long, value_parser = parse_time)]
        at: NaiveDateTime,
    },
    /// Overdue and freeze fees accrued at a time.
    Fees {
        #[command(flatten)]
        input: PackageInput,
        /// Local time, e.g. 2026-05-01T10:00:00.
        #[arg(long, value_parser = parse_time)]
        at: NaiveDateTime,
    },
    /// What an upgrade or downgrade to another product would cost at a time.
    ChangeQuote {
        #[command(flatten)]
        input: PackageInput,
        /// A JSON file holding the product to change to.
        #[arg(long)]
        to: PathBuf,
        /// Local time, e.g. 2026-05-01T10:00:00.
        #[arg(long, value_parser = parse_time)]
        at: NaiveDateTime,
    },
    /// Swaps left, today's cap and the end date at a time.
    Entitlement {
        #[command(flatten)]
        input: PackageInput,
        /// Local time, e.g. 2026-05-01T10:00:00.
        #[arg(long, value_parser = parse_time)]
        at: NaiveDateTime,
    },
}

#[derive(Subcommand)]
pub enum RevenueCmd {
    /// Split one order between the platform and its agent chain.
    Split {
        /// A JSON file: {"rules": [{"node", "product"?, "percent"?, "per_swap"?}]}.
        #[arg(long)]
        rules: PathBuf,
        /// A JSON file: {"order_id", "product", "amount", "swaps"?, "at", "chain": [nearest first]}.
        #[arg(long)]
        order: PathBuf,
    },
    /// Settlement statements per agent over [from, to) (the platform's under "").
    Statement {
        /// The rules file, as for `split`.
        #[arg(long)]
        rules: PathBuf,
        /// A JSON file holding an array of orders.
        #[arg(long)]
        orders: PathBuf,
        /// Period start (inclusive), local time.
        #[arg(long, value_parser = parse_time)]
        from: NaiveDateTime,
        /// Period end (exclusive), local time.
        #[arg(long, value_parser = parse_time)]
        to: NaiveDateTime,
        /// Only this node's statement.
        #[arg(long)]
        agent: Option<String>,
        /// Currency of the orders (default CNY).
        #[arg(long, default_value = "CNY")]
        currency: String,
    },
}

#[derive(Subcommand)]
pub enum MembershipCmd {
    /// A rider's level, standing and what the next level needs, at a time.
    Level {
        /// A JSON file: {"window_days", "qualify"?, "levels": [...]}.
        #[arg(long)]
        config: PathBuf,
        /// A JSON file: [{"order_id", "at", "spend", "units"?}].
        #[arg(long)]
        activity: PathBuf,
        /// Local time, e.g. 2026-05-01T10:00:00.
        #[arg(long, value_parser = parse_time)]
        at: NaiveDateTime,
    },
}

#[derive(Subcommand)]
pub enum OrgCmd {
    /// Check a permission: prints {"allowed": true} or the reason it is refused.
    Can {
        /// A JSON file: {"nodes": [...], "assets": [...]}.
        #[arg(long)]
        org: PathBuf,
        /// The actor as JSON ({"id", "role", "node"?}) or a file holding it.
        #[arg(long)]
        actor: String,
        /// The action, e.g. operate_devices (see docs/roles.md).
        #[arg(long)]
        action: String,
        /// The resource as JSON ({"type": "asset", "kind": "cabinet", "id": "CAB-1"}) or a file holding it.
        #[arg(long)]
        resource: String,
    },
    /// The agent chain of a node (nearest first), as revenue splits need it.
    Chain {
        /// The organisation file.
        #[arg(long)]
        org: PathBuf,
        /// The node id.
        node: String,
    },
}

/// Inline JSON (starting with `{`) or the path of a JSON file.
fn json_arg<T: DeserializeOwned>(arg: &str, what: &str) -> Result<T, String> {
    if arg.trim_start().starts_with('{') {
        serde_json::from_str(arg).map_err(|e| format!("{what} is not valid: {e}"))
    } else {
        read_json(Path::new(arg), what)
    }
}

fn err<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

pub fn run_package(cmd: PackageCmd) -> CliResult {
    match cmd {
        PackageCmd::Run { input } => to_value(&input.scenario()?.run().map_err(err)?),
        PackageCmd::RefundQuote { input, at } => {
            to_value(&input.load()?.refund_quote(at).map_err(err)?)
        }
        PackageCmd::Fees { input, at } => to_value(&input.load()?.fees(at).map_err(err)?),
        PackageCmd::ChangeQuote { input, to, at } => {
            let target: Product = read_json(&to, "--to")?;
            let q = input
                .load()?
                .change_quote(&target, &RiderProfile::default(), at);
            to_value(&q.map_err(err)?)
        }
        PackageCmd::Entitlement { input, at } => {
            to_value(&input.load()?.entitlement(at).map_err(err)?)
        }
    }
}

pub fn run_revenue(cmd: RevenueCmd) -> CliResult {
    match cmd {
        RevenueCmd::Split { rules, order } => {
            let rules: RevenueRules = read_json(&rules, "--rules")?;
            let order: RevenueOrder = read_json(&order, "--order")?;
            to_value(&settlement::split(&rules, &order).map_err(err)?)
        }
        RevenueCmd::Statement {
            rules,
            orders,
            from,
            to,
            agent,
            currency,
        } => {
            let rules: RevenueRules = read_json(&rules, "--rules")?;
            let orders: Vec<RevenueOrder> = read_json(&orders, "--orders")?;
            let currency: Currency = currency.parse().map_err(|e| format!("--currency: {e}"))?;
            let splits = orders
                .iter()
                .map(|o| settlement::split(&rules, o))
                .collect::<Result<Vec<_>, _>>()
                .map_err(err)?;
            match agent {
                Some(a) => {
                    to_value(&settlement::statement(&a, &splits, from, to, currency).map_err(err)?)
                }
                None => {
                    to_value(&settlement::statements(&splits, from, to, currency).map_err(err)?)
                }
            }
        }
    }
}

pub fn run_membership(cmd: MembershipCmd) -> CliResult {
    match cmd {
        MembershipCmd::Level {
            config,
            activity,
            at,
        } => {
            let config: MembershipConfig = read_json(&config, "--config")?;
            let activity: Vec<Activity> = read_json(&activity, "--activity")?;
            to_value(&membership::assess(&config, &activity, at).map_err(err)?)
        }
    }
}

pub fn run_org(cmd: OrgCmd) -> CliResult {
    match cmd {
        OrgCmd::Can {
            org,
            actor,
            action,
            resource,
        } => {
            let spec: OrgSpec = read_json(&org, "--org")?;
            let org = Org::new(spec).map_err(err)?;
            let actor: Actor = json_arg(&actor, "--actor")?;
            let action: Action = serde_json::from_value(serde_json::Value::String(action.clone()))
                .map_err(|_| {
                    format!("--action {action:?} is not an action; see docs/roles.md (e.g. operate_devices)")
                })?;
            let resource: Resource = json_arg(&resource, "--resource")?;
            match org.can(&actor, action, &resource) {
                Ok(()) => Ok(serde_json::json!({"allowed": true})),
                Err(e) => Ok(serde_json::json!({
                    "allowed": false,
                    "reason": serde_json::to_value(&e).map_err(err)?,
                    "message": e.to_string(),
                })),
            }
        }
        OrgCmd::Chain { org, node } => {
            let spec: OrgSpec = read_json(&org, "--org")?;
            let org = Org::new(spec).map_err(err)?;
            to_value(&org.agent_chain(&node).map_err(err)?)
        }
    }
}
