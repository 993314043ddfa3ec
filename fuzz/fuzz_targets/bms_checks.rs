//! The checks behind the BMS fuzz targets (`jbd_frame`, `jbd_stream`,
//! `daly_frame`, `daly_stream`), shared with the corpus replay test
//! (protocol/tests/fuzz_corpus.rs). Each panics on a broken law.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "common.rs"]
mod common;

use chargeswap_protocol::bms::daly::{DalyCodec, DalyFrame};
use chargeswap_protocol::bms::jbd::{JbdCodec, JbdFrame};

/// One JBD frame: decode then encode gives the same bytes (the module's
/// documented guarantee), and the frame survives JSON.
pub fn jbd_frame(data: &[u8]) {
    if let Ok(f) = JbdFrame::decode(data) {
        assert_eq!(
            f.encode().unwrap(),
            data,
            "decode then encode gives the bytes"
        );
        common::json_round_trip(&f);
    }
}

/// The stream (after the chunk-size byte) through `JbdCodec`.
pub fn jbd_stream(data: &[u8]) {
    let Some((chunk, rest)) = common::chunked(data) else {
        return;
    };
    common::stream(
        || JbdCodec,
        chunk,
        rest,
        |f| {
            assert_eq!(&JbdFrame::decode(&f.encode().unwrap()).unwrap(), f);
        },
    );
}

/// One Daly frame: decode then encode gives the same bytes, and the frame
/// survives JSON.
pub fn daly_frame(data: &[u8]) {
    if let Ok(f) = DalyFrame::decode(data) {
        assert_eq!(
            f.encode().unwrap(),
            data,
            "decode then encode gives the bytes"
        );
        common::json_round_trip(&f);
    }
}

/// The stream (after the chunk-size byte) through `DalyCodec`.
pub fn daly_stream(data: &[u8]) {
    let Some((chunk, rest)) = common::chunked(data) else {
        return;
    };
    common::stream(
        || DalyCodec,
        chunk,
        rest,
        |f| {
            assert_eq!(&DalyFrame::decode(&f.encode().unwrap()).unwrap(), f);
        },
    );
}
