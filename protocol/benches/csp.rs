//! CSP benchmarks: decode and encode per message kind, MAC verification, and
//! streaming throughput over a long mixed capture.
//!
//! `cargo bench -p chargeswap-protocol --bench csp -- --warm-up-time 1 --measurement-time 3`
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

use std::hint::black_box;

use chargeswap_core::money::Currency;
use chargeswap_core::numbering::DeviceNo;
use chargeswap_protocol::csp::{
    self, Ack, Alarm, BatteryEvent, CabinetStatus, CspCodec, CspRawCodec, DeviceKey, DoorClosed,
    DoorFailed, DoorOpened, Frame, Heartbeat, Login, Message, OpenDoor, ReplayWindow, SwapResult,
    TimeSync, TimeSyncRequest,
};
use chargeswap_protocol::event::{
    AlarmKind, AlarmState, BmsSummary, CabinetConfig, DoorFailure, OpenReason, ResultCode,
    SlotBattery, SlotReport, SlotState, SwapOrder, SwapOutcome, Tariff, TierPrice, TouPeriod,
    TouTier,
};
use chargeswap_protocol::stream::StreamDecoder;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

fn dn(n: u64) -> DeviceNo {
    DeviceNo::new(n).unwrap()
}

fn bms() -> BmsSummary {
    BmsSummary {
        soc_pct: 87,
        soh_pct: 96,
        pack_mv: 54_320,
        current_ma: -1_500,
        temp_dc: 253,
        cycles: 312,
        cell_min_mv: 3_390,
        cell_max_mv: 3_402,
        protection: 0,
    }
}

/// A 12-slot cabinet with realistic readings.
fn status() -> Message {
    let slots = (1..=12)
        .map(|s| {
            if s % 4 == 0 {
                SlotReport {
                    slot: s,
                    state: SlotState::Empty,
                    battery: None,
                }
            } else {
                SlotReport {
                    slot: s,
                    state: if s % 3 == 0 {
                        SlotState::Full
                    } else {
                        SlotState::Charging
                    },
                    battery: Some(SlotBattery {
                        battery: dn(200_000 + u64::from(s)),
                        soc_pct: 40 + s,
                        voltage_mv: 52_000 + u32::from(s) * 100,
                        temp_dc: 250 + i16::from(s),
                    }),
                }
            }
        })
        .collect();
    Message::CabinetStatus(CabinetStatus { slots })
}

fn samples() -> Vec<(&'static str, Message)> {
    vec![
        (
            "login",
            Message::Login(Login {
                firmware: "1.4.2".into(),
                model: "CS-12".into(),
                slot_count: 12,
            }),
        ),
        (
            "heartbeat",
            Message::Heartbeat(Heartbeat {
                uptime_s: 3600,
                rssi_dbm: Some(-71),
            }),
        ),
        ("cabinet_status_12", status()),
        (
            "door_opened",
            Message::DoorOpened(DoorOpened {
                slot: 3,
                command_seq: Some(100),
            }),
        ),
        ("door_closed", Message::DoorClosed(DoorClosed { slot: 3 })),
        (
            "door_failed",
            Message::DoorFailed(DoorFailed {
                slot: 4,
                reason: DoorFailure::Jammed,
                command_seq: Some(100),
            }),
        ),
        (
            "battery_inserted",
            Message::BatteryInserted(BatteryEvent {
                slot: 3,
                battery: dn(200_001),
                bms: Some(bms()),
            }),
        ),
        (
            "battery_removed",
            Message::BatteryRemoved(BatteryEvent {
                slot: 3,
                battery: dn(200_001),
                bms: Some(bms()),
            }),
        ),
        (
            "swap_result",
            Message::SwapResult(SwapResult {
                order_id: 900_000_001,
                outcome: SwapOutcome::Completed,
                returned_battery: Some(dn(200_001)),
                issued_battery: Some(dn(200_002)),
            }),
        ),
        (
            "alarm",
            Message::Alarm(Alarm {
                alarm: AlarmKind::OverTemperature,
                state: AlarmState::Raised,
                slot: Some(6),
                reading: Some(655),
            }),
        ),
        (
            "time_sync_request",
            Message::TimeSyncRequest(TimeSyncRequest {
                device_time: 1_735_689_600,
            }),
        ),
        (
            "ack",
            Message::Ack(Ack {
                ack_seq: 7,
                result: ResultCode::Ok,
            }),
        ),
        (
            "open_door",
            Message::OpenDoor(OpenDoor {
                slot: 3,
                reason: OpenReason::SwapIssue,
                order_id: Some(900_000_001),
            }),
        ),
        (
            "swap_order",
            Message::SwapOrder(SwapOrder {
                order_id: 900_000_001,
                return_slot: 2,
                issue_slot: 7,
                issue_battery: dn(200_002),
                expected_return: Some(dn(200_001)),
                expires_at: 1_735_689_660,
            }),
        ),
        (
            "time_sync",
            Message::TimeSync(TimeSync {
                unix_ms: 1_735_689_600_123,
                utc_offset_min: 480,
            }),
        ),
        (
            "tariff_push",
            Message::TariffPush(Tariff {
                tariff_id: 7,
                currency: Currency::CNY,
                swap_fee: 350_000,
                tiers: vec![
                    TierPrice {
                        tier: TouTier::Peak,
                        energy_per_kwh: 110_000,
                        service_per_kwh: 40_000,
                    },
                    TierPrice {
                        tier: TouTier::Valley,
                        energy_per_kwh: 35_000,
                        service_per_kwh: 40_000,
                    },
                ],
                periods: vec![
                    TouPeriod {
                        start_minute: 0,
                        tier: TouTier::Valley,
                    },
                    TouPeriod {
                        start_minute: 480,
                        tier: TouTier::Peak,
                    },
                ],
                effective_from: 1_735_689_600,
            }),
        ),
        (
            "config_push",
            Message::ConfigPush(CabinetConfig {
                heartbeat_interval_s: 60,
                status_interval_s: 300,
                door_open_timeout_s: 30,
                over_temperature_dc: 600,
                max_charge_current_ma: 5_000,
                disabled_slots: vec![9],
            }),
        ),
        ("query_status", Message::QueryStatus),
    ]
}

fn key() -> DeviceKey {
    DeviceKey::new(&(0u8..32).collect::<Vec<_>>()).unwrap()
}

fn frame(m: Message, seq: u32) -> Frame {
    let f = Frame::new(dn(20_001), seq, m);
    if f.command().requires_mac() {
        f.sealed(&key()).unwrap()
    } else {
        f
    }
}

fn per_kind(c: &mut Criterion) {
    let mut dec = c.benchmark_group("csp/decode");
    for (name, m) in samples() {
        let bytes = frame(m, 1).encode().unwrap();
        dec.throughput(Throughput::Bytes(bytes.len() as u64));
        dec.bench_with_input(BenchmarkId::from_parameter(name), &bytes, |b, bytes| {
            b.iter(|| csp::decode(black_box(bytes)).unwrap())
        });
    }
    dec.finish();

    let mut enc = c.benchmark_group("csp/encode");
    for (name, m) in samples() {
        let f = frame(m, 1);
        enc.bench_with_input(BenchmarkId::from_parameter(name), &f, |b, f| {
            b.iter(|| black_box(f).encode().unwrap())
        });
    }
    enc.finish();

    let k = key();
    let open = frame(samples()[12].1.clone(), 1);
    let mut sec = c.benchmark_group("csp/security");
    sec.bench_function("seal_open_door", |b| {
        b.iter(|| black_box(&open).encode_sealed(&k).unwrap())
    });
    sec.bench_function("authenticate_open_door", |b| {
        b.iter(|| {
            let mut w = ReplayWindow::new();
            csp::authenticate(black_box(&open), &k, &mut w).unwrap()
        })
    });
    sec.finish();
}

/// About 1 MiB of a mixed capture: mostly heartbeats and status reports, with
/// door, battery, swap and alarm events between them, in 1460-byte TCP segments.
fn capture() -> Vec<u8> {
    let kinds = samples();
    let mut wire = Vec::new();
    let mut seq = 0u32;
    while wire.len() < 1 << 20 {
        for (i, (_, m)) in kinds.iter().enumerate() {
            // status reports and heartbeats three times as often
            let reps = if i < 3 { 3 } else { 1 };
            for _ in 0..reps {
                seq += 1;
                wire.extend(frame(m.clone(), seq).encode().unwrap());
            }
        }
    }
    wire
}

fn feed<C: chargeswap_protocol::stream::FrameCodec>(codec: C, wire: &[u8]) -> usize {
    let mut d = StreamDecoder::new(codec);
    let mut n = 0usize;
    for seg in wire.chunks(1460) {
        d.push(seg);
        while let Some(r) = d.next_frame() {
            if r.is_ok() {
                n += 1;
            }
        }
    }
    n
}

fn streaming(c: &mut Criterion) {
    let wire = capture();
    let frames = feed(CspCodec::new(), &wire);
    let mut g = c.benchmark_group("csp/stream");
    g.throughput(Throughput::Bytes(wire.len() as u64));
    // framing, CRC and full typed decoding of every payload
    g.bench_function(format!("decoded_{frames}_frames"), |b| {
        b.iter(|| assert_eq!(feed(CspCodec::new(), black_box(&wire)), frames))
    });
    // framing and CRC only (gateway routing): payloads left for RawFrame::decode
    g.bench_function(format!("raw_{frames}_frames"), |b| {
        b.iter(|| assert_eq!(feed(CspRawCodec::new(), black_box(&wire)), frames))
    });
    g.finish();
}

criterion_group!(benches, per_kind, streaming);
criterion_main!(benches);
