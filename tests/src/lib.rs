//! # chargeswap-conformance
//!
//! Golden cases live as JSON under `tests/vectors/`. Every file has the shape
//!
//! ```json
//! { "kind": "money.allocate", "note": "how the expectations were worked out",
//!   "cases": [ { "name": "...", "note": "...", "input": {}, "expect": {} } ] }
//! ```
//!
//! A case has either `expect` (the output, compared exactly unless the case
//! says `"match": "subset"`, where only the fields given are compared) or
//! `expect_error` (compared as a subset of the typed error's JSON form, e.g.
//! `{"kind": "too_many_decimals"}`). [`evaluate`] maps a kind and an input to
//! the library's output; the Rust test `tests/vectors.rs` replays every file,
//! and each binding replays the same files through its own API.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Value, json};

pub mod kinds;

/// One vector file.
#[derive(Debug, Deserialize)]
pub struct VectorFile {
    /// Which evaluator runs the cases.
    pub kind: String,
    /// How the expectations were worked out.
    #[serde(default)]
    pub note: Value,
    /// The cases.
    pub cases: Vec<Case>,
}

/// One golden case.
#[derive(Debug, Deserialize)]
pub struct Case {
    /// A unique name within the file.
    pub name: String,
    /// How the expectation was worked out.
    #[serde(default)]
    pub note: Value,
    /// The input.
    pub input: Value,
    /// The expected output.
    #[serde(default)]
    pub expect: Option<Value>,
    /// The expected error (a subset of its JSON form).
    #[serde(default)]
    pub expect_error: Option<Value>,
    /// "exact" (default) or "subset".
    #[serde(default, rename = "match")]
    pub match_mode: Option<String>,
}

/// The vectors directory of this repository.
pub fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("vectors")
}

/// Every `*.json` file below `dir`, sorted.
pub fn vector_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "json") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Runs one input through the library: `Ok(output)` or `Err(typed error as JSON)`.
pub fn evaluate(kind: &str, input: &Value) -> Result<Value, Value> {
    kinds::evaluate(kind, input)
}

/// True when every field of `expected` is present and equal in `actual` (recursively for objects).
pub fn is_subset(expected: &Value, actual: &Value) -> bool {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => e
            .iter()
            .all(|(k, v)| a.get(k).is_some_and(|av| is_subset(v, av))),
        (Value::Array(e), Value::Array(a)) => {
            e.len() == a.len() && e.iter().zip(a).all(|(x, y)| is_subset(x, y))
        }
        _ => expected == actual,
    }
}

/// Checks one case; `Err` explains the difference.
pub fn check_case(kind: &str, case: &Case) -> Result<(), String> {
    let got = evaluate(kind, &case.input);
    let subset = case.match_mode.as_deref() == Some("subset");
    match (&case.expect, &case.expect_error, got) {
        (Some(e), None, Ok(g)) => {
            let ok = if subset { is_subset(e, &g) } else { *e == g };
            if ok {
                Ok(())
            } else {
                Err(format!("expected {}\n     got {}", pretty(e), pretty(&g)))
            }
        }
        (None, Some(e), Err(g)) => {
            if is_subset(e, &g) {
                Ok(())
            } else {
                Err(format!(
                    "expected error {}\n got error {}",
                    pretty(e),
                    pretty(&g)
                ))
            }
        }
        (Some(e), None, Err(g)) => {
            Err(format!("expected {}\n got error {}", pretty(e), pretty(&g)))
        }
        (None, Some(e), Ok(g)) => Err(format!("expected error {}\n got {}", pretty(e), pretty(&g))),
        _ => Err("a case needs exactly one of \"expect\" and \"expect_error\"".into()),
    }
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
}

/// Turns a serializable error into its JSON form, falling back to its message.
pub fn error_json<E: serde::Serialize + std::fmt::Display>(e: &E) -> Value {
    let mut v = serde_json::to_value(e).unwrap_or_else(|_| json!({}));
    if let Value::Object(m) = &mut v {
        m.insert("message".into(), Value::String(e.to_string()));
    }
    v
}
