//! `chargeswap`: the command-line face of the chargeswap library.
//!
//! JSON in, JSON out. Errors go to stderr with a non-zero exit status and a
//! message that says what to fix.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod device_no;
mod util;

/// chargeswap: pricing, device numbering and device protocols for two-wheeler
/// charging, swapping and rental platforms. Prints JSON.
#[derive(Parser)]
#[command(name = "chargeswap", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Classify device numbers and allocate free ones (the numbering plan).
    #[command(name = "device-no", subcommand)]
    DeviceNo(device_no::DeviceNoCmd),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::DeviceNo(c) => device_no::run(c),
    };
    match result {
        Ok(value) => {
            util::print_json(&value);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
