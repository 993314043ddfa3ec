//! Replays the committed fuzz corpus (fuzz/corpus/<target>/*) through the
//! same checks as the fuzz targets (fuzz/fuzz_targets/*_checks.rs, included
//! here by path), so every `cargo test` covers them without cargo-fuzz.
//! `every_target_is_replayed` keeps this table, the fuzz targets in
//! fuzz/Cargo.toml and the corpus directories in step.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

#[path = "../../fuzz/fuzz_targets/bms_checks.rs"]
mod bms;
#[path = "../../fuzz/fuzz_targets/common.rs"]
mod common;
#[path = "../../fuzz/fuzz_targets/csp_checks.rs"]
mod csp;
#[path = "../../fuzz/fuzz_targets/jt808_checks.rs"]
mod jt808;
#[path = "../../fuzz/fuzz_targets/modbus_checks.rs"]
mod modbus;
#[path = "../../fuzz/fuzz_targets/vendor_json_checks.rs"]
mod vendor_json;

/// Every fuzz target and its check: a `#[test]` replaying its corpus each,
/// and the table `TARGETS`.
macro_rules! targets {
    ($($name:ident => $check:path),* $(,)?) => {
        const TARGETS: &[&str] = &[$(stringify!($name)),*];
        $(#[test]
        fn $name() {
            replay(stringify!($name), $check);
        })*
    };
}

targets! {
    modbus_rtu => modbus::rtu,
    modbus_tcp => modbus::tcp,
    modbus_stream => modbus::stream,
    modbus_map => modbus::map,
    modbus_dtu => modbus::dtu,
    csp_frame => csp::frame,
    csp_stream => csp::stream,
    csp_raw_stream => csp::raw_stream,
    csp_authenticate => csp::authenticate_records,
    vendor_json_frame => vendor_json::frame,
    vendor_json_stream => vendor_json::stream,
    jt808_frame => jt808::frame,
    jt808_body => jt808::body,
    jt808_stream => jt808::stream,
    jt808_reassemble => jt808::reassemble,
    jbd_frame => bms::jbd_frame,
    jbd_stream => bms::jbd_stream,
    daly_frame => bms::daly_frame,
    daly_stream => bms::daly_stream,
}

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

fn replay(target: &str, check: fn(&[u8])) {
    let dir = fuzz_dir().join("corpus").join(target);
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let p = e.unwrap().path();
        let data = std::fs::read(&p).unwrap();
        let r = std::panic::catch_unwind(|| check(&data));
        assert!(r.is_ok(), "{} fails its check", p.display());
        n += 1;
    }
    assert!(n > 0, "empty corpus {}", dir.display());
}

#[test]
fn every_target_is_replayed() {
    let table: BTreeSet<&str> = TARGETS.iter().copied().collect();
    let manifest = std::fs::read_to_string(fuzz_dir().join("Cargo.toml")).unwrap();
    let bins: BTreeSet<&str> = manifest
        .split("[[bin]]")
        .skip(1)
        .filter_map(|b| b.lines().find_map(|l| l.trim().strip_prefix("name = ")))
        .map(|n| n.trim_matches('"'))
        .collect();
    assert_eq!(bins, table, "fuzz/Cargo.toml targets vs this table");
    let dirs: BTreeSet<String> = std::fs::read_dir(fuzz_dir().join("corpus"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    let table: BTreeSet<String> = table.into_iter().map(String::from).collect();
    assert_eq!(dirs, table, "fuzz/corpus directories vs this table");
}
