//! Shared helpers: reading JSON files and printing JSON.

use std::path::Path;

use serde::de::DeserializeOwned;

/// A command's failure, printed to stderr.
pub type CliResult = Result<serde_json::Value, String>;

/// Reads and parses a JSON file, naming the file and the place of any error.
pub fn read_json<T: DeserializeOwned>(path: &Path, what: &str) -> Result<T, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {what} file {}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| {
        format!(
            "{what} file {} is not valid: {e} (line {}, column {})",
            path.display(),
            e.line(),
            e.column()
        )
    })
}

/// Serializes a value to JSON for output.
pub fn to_value<T: serde::Serialize>(v: &T) -> CliResult {
    serde_json::to_value(v).map_err(|e| format!("cannot serialize output: {e}"))
}

/// Prints pretty JSON to stdout. A closed pipe (`chargeswap ... | head`) is
/// not an error worth a panic: the output is simply dropped.
pub fn print_json(v: &serde_json::Value) {
    use std::io::Write;
    match serde_json::to_string_pretty(v) {
        Ok(s) => {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{s}");
        }
        Err(e) => eprintln!("error: cannot print output: {e}"),
    }
}
