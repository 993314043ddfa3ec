//! The checks behind the CSP fuzz targets (`csp_frame`, `csp_stream`,
//! `csp_raw_stream`, `csp_authenticate`), shared with the corpus replay test
//! (protocol/tests/fuzz_corpus.rs). Each panics on a broken law.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use super::common;

use std::collections::BTreeSet;

use chargeswap_core::numbering::DeviceNo;
use chargeswap_protocol::csp::{
    self, CRC_LEN, CspCabinet, CspCodec, CspError, CspRawCodec, DeviceKey, Direction, FLAG_MAC,
    Frame, HEADER_LEN, MAC_LEN, MAX_PAYLOAD, MacStatus, REPLAY_WINDOW, ReplayWindow, SeqCheck,
};

const FLAGS_OFFSET: usize = 14;
use chargeswap_protocol::event::CabinetCodec;

/// The key of the golden vectors (tests/vectors/protocol/csp*.json), so the
/// sealed frames of the seed corpus verify.
const KEY: [u8; 32] = [
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
    0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
];
/// The cabinet of the golden vectors.
const DEVICE: u64 = 20_001;

fn key() -> DeviceKey {
    DeviceKey::new(&KEY).unwrap()
}

/// `data` with its payload length field and CRC set to match its size, so
/// that the fuzzer reaches payload decoding without forging a CRC-32.
/// `None` if it is too short or too long to be a frame.
pub fn repair(data: &[u8]) -> Option<Vec<u8>> {
    let mac = if data.get(FLAGS_OFFSET)? & FLAG_MAC != 0 {
        MAC_LEN
    } else {
        0
    };
    let payload = data.len().checked_sub(HEADER_LEN + mac + CRC_LEN)?;
    if payload > MAX_PAYLOAD {
        return None;
    }
    let mut v = data.to_vec();
    v[3..5].copy_from_slice(&u16::try_from(payload).ok()?.to_be_bytes());
    let end = v.len() - CRC_LEN;
    let crc = csp::crc32(&v[..end]);
    v[end..].copy_from_slice(&crc.to_be_bytes());
    Some(v)
}

/// One frame as given, and [`repair`]ed.
pub fn frame(data: &[u8]) {
    check_frame(data);
    if let Some(fixed) = repair(data) {
        check_frame(&fixed);
    }
}

/// `decode` and `decode_raw` agree, an accepted frame re-encodes to the same
/// bytes and survives JSON, and error offsets stay in the input.
fn check_frame(data: &[u8]) {
    let decoded = csp::decode(data);
    let raw = csp::decode_raw(data);
    match (&decoded, &raw) {
        (Ok(f), Ok(r)) => {
            assert_eq!(r.as_bytes(), data);
            assert_eq!(&r.decode().unwrap(), f, "raw then payload = whole decode");
            assert_eq!(&f.header().unwrap(), r.header(), "header re-encodes");
            assert_eq!(
                f.encode().unwrap(),
                data,
                "decode then encode gives the bytes"
            );
            common::json_round_trip(f);
            let status = f.mac_status(Some(&key())).unwrap();
            assert_eq!(status == MacStatus::Absent, f.mac.is_none());
            mapping(f);
        }
        (Ok(f), Err(e)) => panic!("decoded {f:?} but decode_raw fails: {e}"),
        (Err(e), Ok(r)) => assert_eq!(&r.decode().unwrap_err(), e, "same payload error"),
        // both refuse; they may name different faults first (decode reads
        // the payload before it looks for trailing bytes)
        (Err(_), Err(_)) => {}
    }
    if let Err(e) = &decoded {
        common::offset_in(e.offset(), data, e);
    }
}

/// Through `CspCabinet` (the `CabinetCodec`): a frame that maps to an event
/// or command maps back to a frame that maps to the same event or command.
fn mapping(f: &Frame) {
    let key = key();
    let codec = || CspCabinet::new(f.device_no, Some(key.clone()));
    if let Ok(ev) = codec().to_event(f) {
        common::json_round_trip(&ev);
        let bytes = codec().encode_event(&ev).unwrap();
        let mut back = codec().decode_event(&bytes).unwrap();
        back.authenticated = ev.authenticated;
        assert_eq!(back, ev, "event maps back");
    }
    if let Ok(cmd) = codec().to_command(f) {
        common::json_round_trip(&cmd);
        let bytes = codec().encode_command(&cmd).unwrap();
        assert_eq!(
            codec().decode_command(&bytes).unwrap(),
            cmd,
            "command maps back"
        );
    }
}

fn round_trip(f: &Frame) {
    let bytes = f.encode().unwrap();
    assert_eq!(
        &csp::decode(&bytes).unwrap(),
        f,
        "a streamed frame re-encodes"
    );
}

/// The stream (after the chunk-size byte) through `CspCodec`, with the
/// full and a small payload limit.
pub fn stream(data: &[u8]) {
    let Some((chunk, rest)) = common::chunked(data) else {
        return;
    };
    let frames = common::stream(CspCodec::new, chunk, rest, round_trip);
    common::single(&frames, csp::decode(rest));
    common::stream(|| CspCodec::with_max_payload(32), chunk, rest, round_trip);
}

/// The stream through `CspRawCodec`: every raw frame is exactly one frame
/// by `decode_raw`, and when its payload decodes it re-encodes to its bytes.
pub fn raw_stream(data: &[u8]) {
    let Some((chunk, rest)) = common::chunked(data) else {
        return;
    };
    let frames = common::stream(CspRawCodec::new, chunk, rest, |r| {
        assert_eq!(&csp::decode_raw(r.as_bytes()).unwrap(), r);
        if let Ok(f) = r.decode() {
            assert_eq!(f.encode().unwrap(), r.as_bytes(), "raw frame re-encodes");
        }
    });
    common::single(&frames, csp::decode_raw(rest));
}

/// The obvious model of a replay window: the set of accepted numbers.
#[derive(Default)]
struct Model {
    seen: BTreeSet<u32>,
}

impl Model {
    fn check(&self, seq: u32) -> SeqCheck {
        match self.seen.last() {
            None => SeqCheck::Fresh,
            Some(&top) if seq > top => SeqCheck::Fresh,
            Some(&top) if top - seq >= REPLAY_WINDOW => SeqCheck::TooOld,
            Some(_) if self.seen.contains(&seq) => SeqCheck::Replayed,
            Some(_) => SeqCheck::Fresh,
        }
    }
}

/// Authenticates `f` and checks the outcome against the model: a rejected
/// frame changes nothing; an accepted one had a valid MAC and a fresh
/// sequence number, which is then recorded.
fn authenticate(f: &Frame, key: &DeviceKey, w: &mut ReplayWindow, model: &mut Model) {
    let before = *w;
    let expect = model.check(f.seq);
    assert_eq!(w.check(f.seq), expect, "window agrees with the model");
    match csp::authenticate(f, key, w) {
        Ok(true) => {
            assert_eq!(expect, SeqCheck::Fresh);
            assert_eq!(f.mac_status(Some(key)).unwrap(), MacStatus::Valid);
            assert_eq!(w.check(f.seq), SeqCheck::Replayed, "recorded");
            assert_eq!(
                w.highest,
                Some(before.highest.map_or(f.seq, |h| h.max(f.seq)))
            );
            model.seen.insert(f.seq);
        }
        Ok(false) => {
            assert!(f.mac.is_none() && !f.command().requires_mac());
            assert_eq!(
                *w, before,
                "an unauthenticated frame leaves the window alone"
            );
        }
        Err(e) => {
            assert_eq!(*w, before, "a rejected frame ({e}) leaves the window alone");
            match e {
                CspError::Replayed { .. } => assert_eq!(expect, SeqCheck::Replayed),
                CspError::TooOld { .. } => assert_eq!(expect, SeqCheck::TooOld),
                CspError::BadMac { .. } => {
                    assert_eq!(expect, SeqCheck::Fresh, "the window is checked first");
                    assert_ne!(f.mac_status(Some(key)).unwrap(), MacStatus::Valid);
                }
                CspError::MacRequired { .. } => assert!(f.mac.is_none()),
                other => panic!("unexpected authentication error {other}"),
            }
        }
    }
}

/// Splits `data` into records of a 2-byte big-endian length and that many
/// bytes (the last one may be short), each [`repair`]ed and decoded.
pub fn records(data: &[u8]) -> Vec<Frame> {
    let mut out = Vec::new();
    let mut rest = data;
    while let [hi, lo, tail @ ..] = rest {
        let n = usize::from(u16::from_be_bytes([*hi, *lo])).min(tail.len());
        let (record, next) = tail.split_at(n);
        rest = next;
        if let Some(f) = repair(record).and_then(|r| csp::decode(&r).ok()) {
            out.push(f);
        }
    }
    out
}

/// The frames of [`records`], as received, sealed under the key and with a
/// stale MAC, through `authenticate` with one window checked against a
/// model; and through a platform-side `CspCabinet`, whose replay state a
/// refused frame must not move either.
pub fn authenticate_records(data: &[u8]) {
    let key = key();
    let other = DeviceKey::new(&[0x5a; 32]).unwrap();
    let mut w = ReplayWindow::new();
    let mut model = Model::default();
    let device = DeviceNo::new(DEVICE).unwrap();
    let mut platform = CspCabinet::new(device, Some(key.clone()));
    let mut cabinet = CspCabinet::new(device, Some(key.clone()));
    for f in &records(data) {
        authenticate(f, &key, &mut w, &mut model);
        let Ok(sealed) = f.clone().sealed(&key) else {
            continue;
        };
        // a valid MAC under another key is a forgery
        let mut forged = ReplayWindow::new();
        assert!(matches!(
            csp::authenticate(&sealed, &other, &mut forged),
            Err(CspError::BadMac { .. })
        ));
        assert_eq!(forged, ReplayWindow::new());
        authenticate(&sealed, &key, &mut w, &mut model);
        // the same MAC on another sequence number is a forgery too
        let mut moved = sealed.clone();
        moved.seq = sealed.seq.wrapping_add(1);
        let before = w;
        assert!(csp::authenticate(&moved, &key, &mut w).is_err());
        assert_eq!(w, before);
        // the CabinetCodec: refused frames leave its replay state alone
        for frame in [f, &sealed] {
            let side = match frame.command().direction() {
                Direction::Downlink => &mut cabinet,
                _ => &mut platform,
            };
            let before = side.clone();
            let r = match frame.command().direction() {
                Direction::Downlink => side.to_command(frame).map(drop),
                _ => side.to_event(frame).map(drop),
            };
            if r.is_err() {
                assert_eq!(*side, before, "a refused frame changes no state");
            }
        }
    }
}
