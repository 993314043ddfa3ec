//! The checks behind the JT/T 808 fuzz targets (`jt808_frame`, `jt808_body`,
//! `jt808_stream`, `jt808_reassemble`), shared with the corpus replay test
//! (protocol/tests/fuzz_corpus.rs). Each panics on a broken law.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use super::common;

use chargeswap_protocol::jt808::{
    Body, ESCAPE, FLAG, Header, Jt808Codec, MAX_BODY_LEN, Packet, Phone, Reassembler,
    ReassemblyLimits, Version, decode_frame, msg_id, split_packet,
};

/// Reads `data` as the unescaped header and body of a frame: sets the body
/// length in the message properties to match, appends the XOR checksum,
/// escapes and delimits, so that the fuzzer reaches header and body
/// decoding without forging a checksum. `None` if it cannot be a frame.
pub fn repair(data: &[u8]) -> Option<Vec<u8>> {
    let props = u16::from_be_bytes([*data.get(2)?, *data.get(3)?]);
    let phone = if props & 1 << 14 != 0 { 1 + 10 } else { 6 };
    let split = if props & 1 << 13 != 0 { 4 } else { 0 };
    let body = data.len().checked_sub(4 + phone + 2 + split)?;
    if body > MAX_BODY_LEN {
        return None;
    }
    let mut content = data.to_vec();
    let props = (props & !0x03FF) | u16::try_from(body).ok()?;
    content[2..4].copy_from_slice(&props.to_be_bytes());
    content.push(content.iter().fold(0, |a, b| a ^ b));
    let mut wire = vec![FLAG];
    for b in content {
        match b {
            FLAG => wire.extend_from_slice(&[ESCAPE, 0x02]),
            ESCAPE => wire.extend_from_slice(&[ESCAPE, 0x01]),
            b => wire.push(b),
        }
    }
    wire.push(FLAG);
    Some(wire)
}

/// One frame as given, and [`repair`]ed.
pub fn frame(data: &[u8]) {
    check_frame(data);
    if let Some(wire) = repair(data) {
        check_frame(&wire);
    }
}

/// An accepted frame re-encodes to the same bytes (the module's documented
/// guarantee) and survives JSON; error offsets stay in the input.
fn check_frame(data: &[u8]) {
    match decode_frame(data) {
        Ok(p) => {
            assert_eq!(
                p.encode().unwrap(),
                data,
                "decode then encode gives the bytes"
            );
            common::json_round_trip(&p);
        }
        Err(e) => common::offset_in(e.offset(), data, &e),
    }
}

/// The message ids `jt808_body` decodes under: every typed one, and one
/// that is kept raw.
pub const BODY_IDS: [u16; 9] = [
    msg_id::TERMINAL_REPLY,
    msg_id::PLATFORM_REPLY,
    msg_id::HEARTBEAT,
    msg_id::REGISTER,
    msg_id::REGISTER_REPLY,
    msg_id::AUTHENTICATE,
    msg_id::LOCATION,
    msg_id::LOCATION_BATCH,
    0x0900,
];

/// The first byte chooses the layout (bit 0: 2013 or 2019) and the message
/// id (the rest, modulo [`BODY_IDS`]); the other bytes are the body.
pub fn body_selector(id: u16, version: Version) -> Option<u8> {
    let i = BODY_IDS.iter().position(|x| *x == id)?;
    let v = u8::from(matches!(version, Version::V2019 { .. }));
    Some(u8::try_from(i).ok()? << 1 | v)
}

/// A body of one message id and layout: an accepted body re-encodes to the
/// same bytes, survives JSON, and travels in a frame unchanged.
pub fn body(data: &[u8]) {
    let Some((&sel, bytes)) = data.split_first() else {
        return;
    };
    let version = if sel & 1 == 0 {
        Version::V2013
    } else {
        Version::V2019 {
            protocol_version: 1,
        }
    };
    let id = BODY_IDS[usize::from(sel >> 1) % BODY_IDS.len()];
    match Body::decode(id, version, bytes) {
        Ok(b) => {
            assert_eq!(b.msg_id(), id);
            let mut out = Vec::new();
            b.encode(version, &mut out).unwrap();
            assert_eq!(out, bytes, "decode then encode gives the bytes");
            common::json_round_trip(&b);
            if bytes.len() <= MAX_BODY_LEN {
                let phone = Phone::padded("13912345678", version).unwrap();
                let p = Packet {
                    header: Header::new(version, phone, 7),
                    body: b,
                };
                assert_eq!(
                    decode_frame(&p.encode().unwrap()).unwrap(),
                    p,
                    "body in a frame"
                );
            }
        }
        Err(e) => common::offset_in(e.offset(), bytes, &e),
    }
}

fn round_trip(p: &Packet) {
    assert_eq!(
        &decode_frame(&p.encode().unwrap()).unwrap(),
        p,
        "a streamed packet re-encodes"
    );
}

/// The stream (after the chunk-size byte) through `Jt808Codec`.
pub fn stream(data: &[u8]) {
    let Some((chunk, rest)) = common::chunked(data) else {
        return;
    };
    let frames = common::stream(|| Jt808Codec, chunk, rest, round_trip);
    common::single(&frames, decode_frame(rest));
}

/// Small limits chosen by one byte, so the fuzzer reaches every bound.
pub fn limits(b: u8) -> ReassemblyLimits {
    ReassemblyLimits {
        max_messages: usize::from(b & 3) + 1,
        max_parts: [2, 4, 16, 256][usize::from(b >> 2 & 3)],
        max_bytes: [64, 512, 4096, 256 * 1024][usize::from(b >> 4 & 3)],
        max_idle_pushes: [0, 2, 16, 1024][usize::from(b >> 6 & 3)],
    }
}

/// Splits a joined message again and reassembles it: the same message.
fn resplit(p: &Packet) {
    let Ok(parts) = split_packet(p, MAX_BODY_LEN) else {
        return;
    };
    let mut r = Reassembler::new(ReassemblyLimits {
        max_messages: 1,
        max_parts: u16::MAX,
        max_bytes: usize::MAX,
        max_idle_pushes: 0,
    });
    let mut out = None;
    for part in parts {
        out = r.push(part).unwrap();
    }
    assert_eq!(out.as_ref(), Some(p), "split then join gives the message");
}

/// The first byte chooses the [`limits`]; the rest is a stream of frames,
/// each pushed into one `Reassembler`, which must stay within its limits.
/// A packet that is not split comes straight back; a joined message has no
/// split items, re-encodes when it fits a frame, and splits and joins back.
pub fn reassemble(data: &[u8]) {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let limits = limits(sel);
    let mut r = Reassembler::new(limits);
    let packets = common::stream(|| Jt808Codec, rest.len().max(1), rest, |_| {});
    for p in packets {
        match r.push(p.clone()) {
            Ok(Some(out)) if p.header.split.is_none() => assert_eq!(out, p),
            Ok(Some(out)) => {
                assert!(out.header.split.is_none());
                assert_eq!(out.msg_id(), p.msg_id());
                assert_eq!(out.header.phone, p.header.phone);
                if let Ok(bytes) = out.encode() {
                    assert_eq!(
                        decode_frame(&bytes).unwrap(),
                        out,
                        "joined packet re-encodes"
                    );
                }
                resplit(&out);
            }
            Ok(None) | Err(_) => {}
        }
        let pending = r.pending();
        assert!(
            pending.len() <= limits.max_messages.max(1),
            "at most max_messages"
        );
        assert!(r.buffered_bytes() <= limits.max_bytes, "at most max_bytes");
        for m in &pending {
            assert!(m.total <= limits.max_parts, "at most max_parts per message");
            assert!(!m.missing.is_empty(), "a complete message is not pending");
        }
    }
}
