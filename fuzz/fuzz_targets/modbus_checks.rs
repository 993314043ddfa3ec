//! The checks behind the Modbus fuzz targets, shared with the corpus replay
//! test (protocol/tests/fuzz_corpus_modbus.rs) so CI runs them without
//! cargo-fuzz. Each check panics on a broken law: no panic in the decoders,
//! and whatever decodes re-encodes to the same bytes and decodes again to
//! the same value.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use chargeswap_protocol::modbus::dtu::{Registration, RegistrationCodec};
use chargeswap_protocol::modbus::map::{BmsStatus, SlotBoardStatus, SlotControl};
use chargeswap_protocol::modbus::{MbapCodec, Request, Response, RtuCodec, RtuFrame, TcpFrame};
use chargeswap_protocol::stream::{FrameCodec, StreamDecoder};

pub fn rtu(data: &[u8]) {
    if let Ok(f) = RtuFrame::<Request>::decode(data) {
        assert_eq!(f.encode().unwrap(), data, "RTU request re-encodes");
    }
    if let Ok(f) = RtuFrame::<Response>::decode(data) {
        assert_eq!(f.encode().unwrap(), data, "RTU response re-encodes");
    }
}

pub fn tcp(data: &[u8]) {
    if let Ok(f) = TcpFrame::<Request>::decode(data) {
        assert_eq!(f.encode().unwrap(), data, "MBAP request re-encodes");
    }
    if let Ok(f) = TcpFrame::<Response>::decode(data) {
        assert_eq!(f.encode().unwrap(), data, "MBAP response re-encodes");
    }
}

pub fn dtu(data: &[u8]) {
    if let Ok(r) = Registration::decode(data) {
        assert_eq!(r.encode(), data, "registration re-encodes");
    }
}

/// The first byte sets the chunk size; the rest is fed to every streaming
/// decoder in chunks of that size.
pub fn stream(data: &[u8]) {
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(n).max(1);
    fn run<C: FrameCodec>(c: C, rest: &[u8], chunk: usize, check: impl Fn(&C::Frame)) {
        let max = c.max_frame_len();
        let mut d = StreamDecoder::new(c);
        let mut steps = 0usize;
        for part in rest.chunks(chunk) {
            d.push(part);
            while let Some(r) = d.next_frame() {
                steps += 1;
                assert!(steps <= rest.len(), "the decoder always makes progress");
                if let Ok(f) = r {
                    check(&f);
                }
            }
            assert!(d.buffered() < max, "bounded buffering");
        }
    }
    run(RtuCodec::<Request>::new(), rest, chunk, |f| {
        let b = f.encode().unwrap();
        assert_eq!(&RtuFrame::<Request>::decode(&b).unwrap(), f);
    });
    run(RtuCodec::<Response>::new(), rest, chunk, |f| {
        let b = f.encode().unwrap();
        assert_eq!(&RtuFrame::<Response>::decode(&b).unwrap(), f);
    });
    run(MbapCodec::<Request>::new(), rest, chunk, |f| {
        let b = f.encode().unwrap();
        assert_eq!(&TcpFrame::<Request>::decode(&b).unwrap(), f);
    });
    run(MbapCodec::<Response>::new(), rest, chunk, |f| {
        let b = f.encode().unwrap();
        assert_eq!(&TcpFrame::<Response>::decode(&b).unwrap(), f);
    });
    run(RegistrationCodec, rest, chunk, |f| {
        assert_eq!(&Registration::decode(&f.encode()).unwrap(), f);
    });
}

/// Bytes as big-endian registers through every register block.
pub fn map(data: &[u8]) {
    let regs: Vec<u16> = data
        .chunks_exact(2)
        .map(|p| u16::from_be_bytes([p[0], p[1]]))
        .collect();
    if let Ok(s) = SlotBoardStatus::from_registers(&regs) {
        assert_eq!(s.to_registers().unwrap(), regs, "slot status re-encodes");
    }
    if let Ok(s) = SlotControl::from_registers(&regs) {
        assert_eq!(s.to_registers(), regs, "slot control re-encodes");
    }
    if let Ok(b) = BmsStatus::from_registers(&regs) {
        let again = b.to_registers().unwrap();
        assert_eq!(
            BmsStatus::from_registers(&again).unwrap(),
            b,
            "BMS block round-trips"
        );
    }
}
