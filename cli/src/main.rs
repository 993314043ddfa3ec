//! `chargeswap`: the command-line face of the chargeswap library.
//!
//! JSON in, JSON out. Errors go to stderr with a non-zero exit status and a
//! message that says what to fix.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod books;
mod codec;
mod codec_tbox_bms;
mod commerce;
mod csp;
mod device_no;
mod flow;
mod quote;
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
    /// Price a session under a tariff and print the itemised quote.
    Quote(quote::QuoteArgs),
    /// Classify device numbers and allocate free ones (the numbering plan).
    #[command(name = "device-no", subcommand)]
    DeviceNo(device_no::DeviceNoCmd),
    /// Replay swap, charging and rental scenarios through the state machines.
    #[command(subcommand)]
    Flow(flow::FlowCmd),
    /// Packages (套餐): run a timeline, refund quotes, fees, change quotes.
    #[command(subcommand)]
    Package(commerce::PackageCmd),
    /// Revenue sharing (分润): split an order, settlement statements.
    #[command(subcommand)]
    Revenue(commerce::RevenueCmd),
    /// Membership levels (会员等级) from rolling usage and spend.
    #[command(subcommand)]
    Membership(commerce::MembershipCmd),
    /// The organisation: permission checks, agent chains.
    #[command(subcommand)]
    Org(commerce::OrgCmd),
    /// The books: operations on one ledger with wallets, deposits, packages and revenue sharing.
    #[command(subcommand)]
    Books(books::BooksCmd),
    /// Decode one frame given as hex and print it as JSON.
    Decode {
        /// The protocol: csp, modbus-rtu, modbus-tcp, jt808, jbd or daly.
        protocol: String,
        /// The frame bytes in hex (spaces and colons allowed).
        hex: String,
        /// Device key in hex, to verify a CSP frame's MAC.
        #[arg(long)]
        key: Option<String>,
    },
    /// Encode one frame given as JSON and print it as hex.
    Encode {
        /// The protocol: csp, modbus-rtu, modbus-tcp, jt808, jbd or daly.
        protocol: String,
        /// The frame as JSON, in the form `decode` prints.
        json: String,
        /// Device key in hex, to seal a CSP frame with a MAC (same as `"key"` in the JSON).
        #[arg(long)]
        key: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Quote(args) => match quote::run(args) {
            Ok(text) => {
                quote::print(&text);
                return ExitCode::SUCCESS;
            }
            Err(e) => Err(e),
        },
        Command::DeviceNo(c) => device_no::run(c),
        Command::Flow(c) => flow::run_cmd(c),
        Command::Package(c) => commerce::run_package(c),
        Command::Revenue(c) => commerce::run_revenue(c),
        Command::Membership(c) => commerce::run_membership(c),
        Command::Org(c) => commerce::run_org(c),
        Command::Books(c) => books::run(c),
        Command::Decode { protocol, hex, key } => {
            codec::parse_hex(&hex).and_then(|b| codec::decode_keyed(&protocol, &b, key.as_deref()))
        }
        Command::Encode {
            protocol,
            json,
            key,
        } => serde_json::from_str(&json)
            .map_err(|e| format!("the frame JSON is not valid: {e}"))
            .map(|mut v: serde_json::Value| {
                if let (Some(k), Some(o)) = (key, v.as_object_mut()) {
                    o.insert("key".into(), serde_json::Value::String(k));
                }
                v
            })
            .and_then(|v| codec::encode(&protocol, &v))
            .map(|b| serde_json::json!({"protocol": protocol, "hex": codec::to_hex(&b)})),
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
