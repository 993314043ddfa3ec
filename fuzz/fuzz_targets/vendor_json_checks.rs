//! The checks behind the JSON vendor fuzz targets (`vendor_json_frame`,
//! `vendor_json_stream`), shared with the corpus replay test
//! (protocol/tests/fuzz_corpus.rs). Each panics on a broken law.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use super::common;

use chargeswap_protocol::event::CabinetCodec;
use chargeswap_protocol::vendor_json::{
    self, JsonVendorCabinet, JsonVendorCodec, VendorFrame, VendorJsonError,
};

/// JSON text has many spellings of one value, so the law is on values:
/// an accepted frame encodes (compactly) to bytes that decode to the same
/// frame and encode again to the same bytes.
fn round_trip(f: &VendorFrame) {
    let bytes = vendor_json::encode(f).unwrap();
    assert_eq!(
        &vendor_json::decode(&bytes).unwrap(),
        f,
        "re-encoded frame decodes back"
    );
    assert_eq!(
        vendor_json::encode(&vendor_json::decode(&bytes).unwrap()).unwrap(),
        bytes,
        "the encoding is canonical"
    );
}

/// Through the `CabinetCodec`: a frame that maps to an event or command maps
/// back to a frame that maps to the same event or command.
fn mapping(f: &VendorFrame) {
    let mut c = JsonVendorCabinet::new();
    if let Ok(ev) = c.to_event(f) {
        common::json_round_trip(&ev);
        let bytes = c.encode_event(&ev).unwrap();
        assert_eq!(c.decode_event(&bytes).unwrap(), ev, "event maps back");
    }
    if let Ok(cmd) = c.to_command(f) {
        common::json_round_trip(&cmd);
        let bytes = c.encode_command(&cmd).unwrap();
        assert_eq!(c.decode_command(&bytes).unwrap(), cmd, "command maps back");
    }
}

/// One length-prefixed frame.
pub fn frame(data: &[u8]) {
    match vendor_json::decode(data) {
        Ok(f) => {
            round_trip(&f);
            mapping(&f);
        }
        Err(VendorJsonError::BadJson { offset, reason }) => {
            common::offset_in(Some(offset), data, &reason);
        }
        Err(_) => {}
    }
}

/// The stream (after the chunk-size byte) through `JsonVendorCodec`.
pub fn stream(data: &[u8]) {
    let Some((chunk, rest)) = common::chunked(data) else {
        return;
    };
    let frames = common::stream(|| JsonVendorCodec, chunk, rest, round_trip);
    common::single(&frames, vendor_json::decode(rest));
}
