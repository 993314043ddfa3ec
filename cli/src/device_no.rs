//! `chargeswap device-no`: the numbering plan from the shell.

use std::path::PathBuf;

use chargeswap_core::numbering::{DeviceClass, DeviceNo, DeviceNoAllocator};
use clap::Subcommand;
use serde_json::json;

use crate::util::{CliResult, read_json};

#[derive(Subcommand)]
pub enum DeviceNoCmd {
    /// Print the class of a device number, e.g. {"number":200001,"class":"battery"}.
    Classify {
        /// The device number.
        number: String,
    },
    /// Print the next free number of a class, given the numbers in use.
    Next {
        /// dtu, battery or tbox.
        #[arg(long)]
        class: String,
        /// A JSON file holding an array of device numbers in use.
        #[arg(long = "in-use")]
        in_use: Option<PathBuf>,
    },
}

pub fn run(cmd: DeviceNoCmd) -> CliResult {
    match cmd {
        DeviceNoCmd::Classify { number } => {
            let n: DeviceNo = number.parse().map_err(|e| format!("{e}"))?;
            let (first, last) = n.class().range();
            Ok(json!({"number": n.get(), "class": n.class(), "range": [first, last]}))
        }
        DeviceNoCmd::Next { class, in_use } => {
            let class: DeviceClass = class.parse().map_err(|e| format!("--class: {e}"))?;
            let used: Vec<DeviceNo> = match in_use {
                Some(p) => read_json(&p, "--in-use")?,
                None => Vec::new(),
            };
            let mut a = DeviceNoAllocator::from_in_use(used);
            let n = a.next(class).map_err(|e| format!("{e}"))?;
            Ok(json!({"number": n.get(), "class": class}))
        }
    }
}
