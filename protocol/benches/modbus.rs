//! Modbus codec benchmarks: frame decode and encode, MBAP decode, and
//! streaming throughput over a long capture of mixed RTU responses.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use chargeswap_protocol::modbus::map::{BmsStatus, SlotBoardStatus};
use chargeswap_protocol::modbus::slave::CabinetSim;
use chargeswap_protocol::modbus::{
    MbapCodec, Request, Response, RtuCodec, RtuFrame, TcpFrame, crc16,
};
use chargeswap_protocol::stream::StreamDecoder;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// A capture of a master polling a 12-slot cabinet: status, BMS and command
/// answers, as a DTU would forward them (about 1 MiB).
fn rtu_capture() -> Vec<u8> {
    let mut cab = CabinetSim::new(12);
    for u in 1..=12u8 {
        if u % 3 != 0 {
            let bms = CabinetSim::sample_battery(None, 10 * (u % 10));
            cab.slot_mut(u).unwrap().insert_battery(bms);
        }
    }
    let reqs = [
        SlotBoardStatus::read_request(),
        BmsStatus::read_request(),
        Request::WriteSingleRegister {
            address: 0x0100,
            value: 1,
        },
    ];
    let mut wire = Vec::new();
    while wire.len() < 1 << 20 {
        for u in 1..=12u8 {
            for r in &reqs {
                if let Some(pdu) = cab.handle(u, r) {
                    RtuFrame { unit: u, pdu }.encode_into(&mut wire).unwrap();
                }
            }
        }
    }
    wire
}

fn bench(c: &mut Criterion) {
    let read_req = [0x11, 0x03, 0x00, 0x6B, 0x00, 0x03, 0x76, 0x87];
    c.bench_function("modbus/rtu_decode_read_request", |b| {
        b.iter(|| RtuFrame::<Request>::decode(black_box(&read_req)).unwrap())
    });
    let status = RtuFrame {
        unit: 1,
        pdu: Response::ReadInputRegisters {
            registers: vec![1, 1, 1, 1, 1, 5460, 250],
        },
    }
    .encode()
    .unwrap();
    c.bench_function("modbus/rtu_decode_status_response_7_regs", |b| {
        b.iter(|| RtuFrame::<Response>::decode(black_box(&status)).unwrap())
    });
    let req = RtuFrame {
        unit: 1,
        pdu: Request::ReadInputRegisters {
            address: 0x1000,
            quantity: 48,
        },
    };
    let mut out = Vec::with_capacity(300);
    c.bench_function("modbus/rtu_encode_read_request", |b| {
        b.iter(|| {
            out.clear();
            black_box(&req).encode_into(&mut out).unwrap();
        })
    });
    let mbap = TcpFrame {
        transaction: 1,
        unit: 1,
        pdu: Request::ReadInputRegisters {
            address: 0,
            quantity: 7,
        },
    }
    .encode()
    .unwrap();
    c.bench_function("modbus/mbap_decode_read_request", |b| {
        b.iter(|| TcpFrame::<Request>::decode(black_box(&mbap)).unwrap())
    });
    let block = [0u8; 253];
    c.bench_function("modbus/crc16_253_bytes", |b| {
        b.iter(|| crc16(black_box(&block)))
    });

    let wire = rtu_capture();
    let mut g = c.benchmark_group("modbus/stream");
    g.throughput(Throughput::Bytes(wire.len() as u64));
    g.sample_size(20);
    g.bench_function("rtu_responses_4k_chunks", |b| {
        b.iter(|| {
            let mut d = StreamDecoder::new(RtuCodec::<Response>::new());
            let mut n = 0usize;
            for chunk in wire.chunks(4096) {
                d.push(chunk);
                while let Some(r) = d.next_frame() {
                    n += usize::from(r.is_ok());
                }
            }
            black_box(n)
        })
    });
    // the same answers in MBAP framing
    let mut tcp = Vec::new();
    let mut d = StreamDecoder::new(RtuCodec::<Response>::new());
    d.push(&wire);
    for (i, f) in d.drain_frames().into_iter().enumerate() {
        TcpFrame {
            transaction: i as u16,
            unit: f.unit,
            pdu: f.pdu,
        }
        .encode_into(&mut tcp)
        .unwrap();
    }
    g.throughput(Throughput::Bytes(tcp.len() as u64));
    g.bench_function("mbap_responses_4k_chunks", |b| {
        b.iter(|| {
            let mut d = StreamDecoder::new(MbapCodec::<Response>::new());
            let mut n = 0usize;
            for chunk in tcp.chunks(4096) {
                d.push(chunk);
                while let Some(r) = d.next_frame() {
                    n += usize::from(r.is_ok());
                }
            }
            black_box(n)
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
