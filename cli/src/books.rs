//! `chargeswap books run`: a list of operations on fresh books (one ledger
//! with wallets, deposits, packages and revenue sharing) in, every step's
//! transfers, package events and errors, the balances and the
//! reconciliation out. JSON in and out; the logic is `core::books::simulate`.

use std::path::PathBuf;

use chargeswap_core::books::{self, BooksConfig, BooksRun, BooksStep};
use clap::Subcommand;
use serde_json::Value;

use crate::util::{CliResult, read_json, to_value};

#[derive(Subcommand)]
pub enum BooksCmd {
    /// Run operations on fresh books and print each step's transfers,
    /// events and errors, the balances and the reconciliation.
    Run {
        /// A JSON file: a list of steps [{"id", "at", "op", ...}], or
        /// {"config"?, "start", "steps"}. A refused step is reported and the
        /// run goes on.
        #[arg(long)]
        ops: PathBuf,
        /// A JSON file with the books' configuration (rules, offset,
        /// accounts); replaces the one in --ops.
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

pub fn run(cmd: BooksCmd) -> CliResult {
    match cmd {
        BooksCmd::Run { ops, config } => {
            let what =
                |e: serde_json::Error| format!("--ops file {} is not valid: {e}", ops.display());
            let v: Value = read_json(&ops, "--ops")?;
            let mut run = if v.is_array() {
                let steps: Vec<BooksStep> = serde_json::from_value(v).map_err(what)?;
                let start = steps
                    .first()
                    .map(|s| s.at)
                    .ok_or_else(|| format!("--ops file {} has no steps", ops.display()))?;
                BooksRun {
                    config: BooksConfig::default(),
                    start,
                    steps,
                }
            } else {
                serde_json::from_value(v).map_err(what)?
            };
            if let Some(path) = config {
                run.config = read_json(&path, "--config")?;
            }
            to_value(&books::simulate(&run).map_err(|e| e.to_string())?)
        }
    }
}
