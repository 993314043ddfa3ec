//! Replays the committed Modbus fuzz corpus (fuzz/corpus/modbus_*) through
//! the same checks as the fuzz targets, so CI covers them without cargo-fuzz.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

use std::path::Path;

#[path = "../../fuzz/fuzz_targets/modbus_checks.rs"]
mod checks;

fn replay(target: &str, check: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
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
fn modbus_rtu_corpus() {
    replay("modbus_rtu", checks::rtu);
}

#[test]
fn modbus_tcp_corpus() {
    replay("modbus_tcp", checks::tcp);
}

#[test]
fn modbus_stream_corpus() {
    replay("modbus_stream", checks::stream);
}

#[test]
fn modbus_map_corpus() {
    replay("modbus_map", checks::map);
}

#[test]
fn modbus_dtu_corpus() {
    replay("modbus_dtu", checks::dtu);
}
