//! Best-of-N timing of the JT/T 808 and BMS decoders, for shared or busy
//! machines where criterion's averages include time spent descheduled:
//! each figure is the fastest of many short rounds.
//!
//! `cargo run --release -p chargeswap-protocol --example jt808_bms_timing`
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::hint::black_box;
use std::time::Instant;

use chargeswap_protocol::bms::daly::DalyFrame;
use chargeswap_protocol::bms::jbd::JbdFrame;
use chargeswap_protocol::jt808::*;
use chargeswap_protocol::stream::StreamDecoder;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Fastest time per call over 300 rounds of 2000 calls, in ns.
fn best_ns(mut f: impl FnMut()) -> f64 {
    let mut best = f64::MAX;
    for _ in 0..300 {
        let t = Instant::now();
        for _ in 0..2000 {
            f();
        }
        best = best.min(t.elapsed().as_nanos() as f64 / 2000.0);
    }
    best
}

fn location(serial: u16) -> LocationReport {
    LocationReport {
        alarm: 0,
        status: 3,
        lat_1e6: 22_543_096,
        lon_1e6: 114_057_865,
        altitude_m: 12,
        speed_0_1kmh: 250 + serial % 100,
        direction_deg: serial % 360,
        time: "2024-05-01T08:30:00".parse().unwrap(),
        items: vec![
            AdditionalItem::Mileage(123_456),
            AdditionalItem::VehicleSignal(1),
            AdditionalItem::IoStatus(0),
            AdditionalItem::Analog(0x0001_0002),
            AdditionalItem::SignalStrength(28),
            AdditionalItem::Satellites(14),
        ],
    }
}

fn header(serial: u16) -> Header {
    Header::new(Version::V2013, "013912345678".parse().unwrap(), serial)
}

fn main() {
    let loc = Packet {
        header: header(10),
        body: Body::Location(location(10)),
    };
    let wire = loc.encode().unwrap();
    let ns = best_ns(|| {
        black_box(decode_frame(black_box(&wire)).unwrap());
    });
    println!(
        "jt808 0x0200 decode ({} bytes, 6 items): {ns:.1} ns (target <= 100 ns)",
        wire.len()
    );
    let mut out = Vec::with_capacity(256);
    let ns = best_ns(|| {
        out.clear();
        black_box(&loc).encode_to(&mut out).unwrap();
    });
    println!("jt808 0x0200 encode: {ns:.1} ns");
    let daly = hex("A501900802FC000075A1000052");
    let ns = best_ns(|| {
        black_box(DalyFrame::decode(black_box(&daly)).unwrap());
    });
    println!("daly 0x90 decode: {ns:.1} ns");
    let jbd = hex("DD03001B17000000 02D003E800002078 0000000000001048 030F020B760B82 FBFF77");
    let ns = best_ns(|| {
        black_box(JbdFrame::decode(black_box(&jbd)).unwrap());
    });
    println!("jbd 0x03 decode: {ns:.1} ns");

    // The same mixed capture as the criterion bench.
    let mut capture = Vec::new();
    let mut frames = 0;
    let mut serial = 0u16;
    while capture.len() < 256 * 1024 {
        serial = serial.wrapping_add(1);
        let body = match serial % 20 {
            0 => Body::Heartbeat,
            1 => Body::LocationBatch(LocationBatch {
                kind: BatchKind::BlindArea,
                locations: (0..10).map(location).collect(),
            }),
            2 => Body::PlatformReply(GeneralReply {
                ack_serial: serial,
                ack_msg_id: 0x0200,
                result: ReplyResult::Success,
            }),
            _ => Body::Location(location(serial)),
        };
        Packet {
            header: header(serial),
            body,
        }
        .encode_to(&mut capture)
        .unwrap();
        frames += 1;
    }
    let mut best = f64::MAX;
    for _ in 0..200 {
        let t = Instant::now();
        let mut d = StreamDecoder::new(Jt808Codec);
        let mut n = 0;
        for chunk in capture.chunks(4096) {
            d.push(chunk);
            while let Some(r) = d.next_frame() {
                n += usize::from(r.is_ok());
            }
        }
        assert_eq!(n, frames);
        best = best.min(t.elapsed().as_secs_f64());
    }
    println!(
        "jt808 stream ({} KiB, {frames} frames): {:.0} MB/s (target >= 500 MB/s)",
        capture.len() >> 10,
        capture.len() as f64 / best / 1e6
    );
}
