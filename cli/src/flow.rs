//! `chargeswap flow`: replay operation scenarios through the state machines.

use std::path::PathBuf;

use chargeswap_core::flow::{Scenario, run};
use clap::Subcommand;

use crate::util::{CliResult, read_json, to_value};

#[derive(Subcommand)]
pub enum FlowCmd {
    /// Replay a scenario (initial custody, then timestamped commands and
    /// device events) and print every step's events, effects and next
    /// deadline, then the final state: the format of tests/vectors/flows.
    Run {
        /// The scenario JSON file ({"machine": "swap"|"charging"|"rental", "custody": [...], "steps": [...]}).
        #[arg(long)]
        scenario: PathBuf,
    },
}

pub fn run_cmd(cmd: FlowCmd) -> CliResult {
    match cmd {
        FlowCmd::Run { scenario } => {
            let s: Scenario = read_json(&scenario, "--scenario")?;
            to_value(&run(&s))
        }
    }
}
