//! Benchmarks: JT/T 808 decode and encode per message kind, Daly and JBD
//! decode, and streaming throughput over a long mixed JT/T 808 capture.
//!
//! `cargo bench -p chargeswap-protocol --bench jt808_bms -- --warm-up-time 1 --measurement-time 3`
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::hint::black_box;

use chargeswap_protocol::bms::daly::{DalyCodec, DalyFrame};
use chargeswap_protocol::bms::jbd::{JbdCodec, JbdFrame};
use chargeswap_protocol::jt808::*;
use chargeswap_protocol::stream::StreamDecoder;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn header(serial: u16) -> Header {
    Header::new(Version::V2013, "013912345678".parse().unwrap(), serial)
}

/// A typical TBOX fix: mileage, vehicle signal, IO, analog, signal, satellites.
fn location(serial: u16) -> LocationReport {
    LocationReport {
        alarm: 0,
        status: 0x0000_0003,
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

fn kinds() -> Vec<(&'static str, Packet)> {
    let h = header(10);
    vec![
        (
            "0x0002_heartbeat",
            Packet {
                header: h,
                body: Body::Heartbeat,
            },
        ),
        (
            "0x0001_terminal_reply",
            Packet {
                header: h,
                body: Body::TerminalReply(GeneralReply {
                    ack_serial: 9,
                    ack_msg_id: 0x8103,
                    result: ReplyResult::Success,
                }),
            },
        ),
        (
            "0x8001_platform_reply",
            Packet {
                header: h,
                body: Body::PlatformReply(GeneralReply {
                    ack_serial: 9,
                    ack_msg_id: 0x0200,
                    result: ReplyResult::Success,
                }),
            },
        ),
        (
            "0x0100_register",
            Packet {
                header: h,
                body: Body::Register(Register {
                    province: 44,
                    city: 300,
                    maker: "CSWAP".into(),
                    model: "TBOX-4G-01".into(),
                    terminal_id: "T000123".into(),
                    plate_color: 1,
                    plate: "粤B12345".into(),
                }),
            },
        ),
        (
            "0x8100_register_reply",
            Packet {
                header: h,
                body: Body::RegisterReply(RegisterReply {
                    ack_serial: 9,
                    result: RegisterResult::Success,
                    auth_code: "AUTH-7F3A9C".into(),
                }),
            },
        ),
        (
            "0x0102_authenticate",
            Packet {
                header: h,
                body: Body::Authenticate(Authenticate {
                    auth_code: "AUTH-7F3A9C".into(),
                    imei: None,
                    software_version: None,
                }),
            },
        ),
        (
            "0x0200_location",
            Packet {
                header: h,
                body: Body::Location(location(10)),
            },
        ),
        (
            "0x0704_batch_of_5",
            Packet {
                header: h,
                body: Body::LocationBatch(LocationBatch {
                    kind: BatchKind::BlindArea,
                    locations: (0..5).map(location).collect(),
                }),
            },
        ),
    ]
}

fn jt808(c: &mut Criterion) {
    let mut g = c.benchmark_group("jt808_decode");
    for (name, p) in kinds() {
        let wire = p.encode().unwrap();
        g.bench_function(name, |b| b.iter(|| decode_frame(black_box(&wire)).unwrap()));
    }
    // The public 0x0200 vector, and one whose serial forces escapes (slow path).
    let public = hex("7E0200002601234567890000010000000100000002\
         00BA7F0E07E4F11C0028003C000018071510101001040000006402020037327E");
    g.bench_function("0x0200_public_vector", |b| {
        b.iter(|| decode_frame(black_box(&public)).unwrap())
    });
    let escaped = Packet {
        header: header(0x7E7D),
        body: Body::Location(location(1)),
    }
    .encode()
    .unwrap();
    g.bench_function("0x0200_location_escaped", |b| {
        b.iter(|| decode_frame(black_box(&escaped)).unwrap())
    });
    g.finish();

    let mut g = c.benchmark_group("jt808_encode");
    for (name, p) in kinds() {
        let mut out = Vec::with_capacity(2100);
        g.bench_function(name, |b| {
            b.iter(|| {
                out.clear();
                black_box(&p).encode_to(&mut out).unwrap();
            })
        });
    }
    g.finish();
}

fn bms(c: &mut Criterion) {
    let mut g = c.benchmark_group("bms_decode");
    let daly = hex("A501900802FC000075A1000052");
    g.bench_function("daly_0x90_summary", |b| {
        b.iter(|| DalyFrame::decode(black_box(&daly)).unwrap())
    });
    let daly98 = hex("A5019808020008100000040569");
    g.bench_function("daly_0x98_faults", |b| {
        b.iter(|| DalyFrame::decode(black_box(&daly98)).unwrap())
    });
    let jbd = hex(
        "DD03001B 1700 0000 02D0 03E8 0000 2078 0000 0000 0000 10 48 03 0F 02 0B76 0B82 FBFF 77",
    );
    g.bench_function("jbd_0x03_basic_info", |b| {
        b.iter(|| JbdFrame::decode(black_box(&jbd)).unwrap())
    });
    let cells = hex("DD040008 0CE4 0CE5 0CE3 0CEE FC2E 77");
    g.bench_function("jbd_0x04_cells", |b| {
        b.iter(|| JbdFrame::decode(black_box(&cells)).unwrap())
    });
    g.finish();

    let mut g = c.benchmark_group("bms_stream");
    let wire: Vec<u8> = daly
        .iter()
        .chain(&daly98)
        .copied()
        .cycle()
        .take(13 * 20_000)
        .collect();
    g.throughput(Throughput::Bytes(wire.len() as u64));
    g.bench_function("daly_260kB", |b| {
        b.iter(|| {
            let mut d = StreamDecoder::new(DalyCodec);
            let mut n = 0;
            for chunk in wire.chunks(4096) {
                d.push(chunk);
                while let Some(r) = d.next_frame() {
                    n += usize::from(r.is_ok());
                }
            }
            assert_eq!(n, 20_000);
        })
    });
    let wire: Vec<u8> = jbd
        .iter()
        .chain(&cells)
        .copied()
        .cycle()
        .take((jbd.len() + cells.len()) * 5_000)
        .collect();
    g.throughput(Throughput::Bytes(wire.len() as u64));
    g.bench_function("jbd_mixed", |b| {
        b.iter(|| {
            let mut d = StreamDecoder::new(JbdCodec);
            let mut n = 0;
            for chunk in wire.chunks(4096) {
                d.push(chunk);
                while let Some(r) = d.next_frame() {
                    n += usize::from(r.is_ok());
                }
            }
            assert_eq!(n, 10_000);
        })
    });
    g.finish();
}

/// A long mixed capture: mostly location reports, with heartbeats, batches,
/// replies and a few frames that need escaping.
fn capture() -> (Vec<u8>, usize) {
    let mut wire = Vec::new();
    let mut n = 0;
    let mut serial = 0u16;
    while wire.len() < 4 * 1024 * 1024 {
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
        .encode_to(&mut wire)
        .unwrap();
        n += 1;
    }
    (wire, n)
}

fn stream(c: &mut Criterion) {
    let (wire, frames) = capture();
    let mut g = c.benchmark_group("jt808_stream");
    g.throughput(Throughput::Bytes(wire.len() as u64));
    g.sample_size(20);
    g.bench_function("mixed_4MiB_in_4KiB_chunks", |b| {
        b.iter(|| {
            let mut d = StreamDecoder::new(Jt808Codec);
            let mut n = 0;
            for chunk in wire.chunks(4096) {
                d.push(chunk);
                while let Some(r) = d.next_frame() {
                    n += usize::from(r.is_ok());
                }
            }
            assert_eq!(n, frames);
        })
    });
    g.finish();
}

criterion_group!(benches, jt808, bms, stream);
criterion_main!(benches);
