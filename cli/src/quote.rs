//! `chargeswap quote`: price a session under a tariff.

use std::path::PathBuf;

use chargeswap_core::tariff::{Session, Tariff, TariffError};
use clap::Args;

use crate::util::read_json;

#[derive(Args)]
pub struct QuoteArgs {
    /// The tariff JSON file (format: docs/pricing.md).
    #[arg(long)]
    tariff: PathBuf,
    /// The session JSON file: {"service": "charging" | "swap" | "rental", ...}.
    #[arg(long)]
    session: PathBuf,
    /// Print the readable explanation (text) instead of the quote JSON.
    #[arg(long)]
    explain: bool,
}

fn hint(e: &TariffError) -> &'static str {
    match e {
        TariffError::MissingFact { .. } | TariffError::InvalidSession { .. } => {
            " (fix the session file)"
        }
        TariffError::NotOffered { .. } | TariffError::UnknownBatteryModel { .. } => {
            " (the tariff does not price this; check the session's service and model)"
        }
        _ => "",
    }
}

/// Prices the session; returns the text to print: the quote as pretty JSON
/// (fields in their documented order), or the explanation.
pub fn run(args: QuoteArgs) -> Result<String, String> {
    let tariff: Tariff = read_json(&args.tariff, "tariff")?;
    let compiled = tariff.compile().map_err(|first| {
        // Name every problem, so one run shows everything to fix.
        let all = tariff.validate_all().err().unwrap_or_default();
        if all.len() > 1 {
            let list: Vec<String> = all.iter().map(|e| format!("  - {e}")).collect();
            format!(
                "tariff file {} is not valid ({} problems):\n{}",
                args.tariff.display(),
                all.len(),
                list.join("\n")
            )
        } else {
            format!(
                "tariff file {} is not valid: {first}",
                args.tariff.display()
            )
        }
    })?;
    let session: Session = read_json(&args.session, "session")?;
    let quote = compiled.quote(&session).map_err(|e| {
        format!(
            "cannot price session file {} under tariff {}: {e}{}",
            args.session.display(),
            args.tariff.display(),
            hint(&e)
        )
    })?;
    if args.explain {
        Ok(quote.explain())
    } else {
        serde_json::to_string_pretty(&quote)
            .map(|s| s + "\n")
            .map_err(|e| format!("cannot serialize the quote: {e}"))
    }
}

/// Prints to stdout; a closed pipe (`| head`) is not an error worth a panic.
pub fn print(text: &str) {
    use std::io::Write;
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}
