//! The checks behind the BMS fuzz targets (`jbd_frame`, `jbd_stream`,
//! `daly_frame`, `daly_stream`), shared with the corpus replay test
//! (protocol/tests/fuzz_corpus.rs). Each panics on a broken law.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use super::common;

use chargeswap_protocol::bms::daly::{self, DalyCodec, DalyFrame};
use chargeswap_protocol::bms::jbd::{self, JbdCodec, JbdFrame};

/// `data` with the JBD start byte, data length, checksum and end byte set
/// to match its size, so that the fuzzer reaches body decoding without
/// forging a checksum. `None` if it cannot be a frame.
pub fn jbd_repair(data: &[u8]) -> Option<Vec<u8>> {
    let len = u8::try_from(data.len().checked_sub(7)?).ok()?;
    let mut v = data.to_vec();
    v[0] = jbd::START;
    v[3] = len;
    let end = v.len() - 3;
    let sum = jbd::checksum(&v[2..end]);
    v[end..end + 2].copy_from_slice(&sum.to_be_bytes());
    v[end + 2] = jbd::END;
    Some(v)
}

/// One JBD frame as given, and [`jbd_repair`]ed.
pub fn jbd_frame(data: &[u8]) {
    jbd_check(data);
    if let Some(fixed) = jbd_repair(data) {
        jbd_check(&fixed);
    }
}

/// Decode then encode gives the same bytes (the module's documented
/// guarantee), and the frame survives JSON.
fn jbd_check(data: &[u8]) {
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
    let frames = common::stream(
        || JbdCodec,
        chunk,
        rest,
        |f| {
            assert_eq!(&JbdFrame::decode(&f.encode().unwrap()).unwrap(), f);
        },
    );
    common::single(&frames, JbdFrame::decode(rest));
}

/// `data` (13 bytes) with the Daly start byte, length byte and checksum set.
pub fn daly_repair(data: &[u8]) -> Option<Vec<u8>> {
    if data.len() != daly::FRAME_LEN {
        return None;
    }
    let mut v = data.to_vec();
    v[0] = daly::START;
    v[3] = daly::DATA_LEN;
    v[12] = daly::checksum(&v[..12]);
    Some(v)
}

/// One Daly frame as given, and [`daly_repair`]ed.
pub fn daly_frame(data: &[u8]) {
    daly_check(data);
    if let Some(fixed) = daly_repair(data) {
        daly_check(&fixed);
    }
}

/// Decode then encode gives the same bytes, and the frame survives JSON.
fn daly_check(data: &[u8]) {
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
    let frames = common::stream(
        || DalyCodec,
        chunk,
        rest,
        |f| {
            assert_eq!(&DalyFrame::decode(&f.encode().unwrap()).unwrap(), f);
        },
    );
    common::single(&frames, DalyFrame::decode(rest));
}
