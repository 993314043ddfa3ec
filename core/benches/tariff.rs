//! Quoting benchmarks: an 8-hour session across the four TOU tiers, and a
//! power-band e-bike session. Target: median ≤ 500 ns per quote.
//!
//! `cargo bench -p chargeswap-core --bench tariff` (the bench profile
//! inherits the workspace's release profile: fat LTO, one codegen unit).
//!
//! Two groups: `tariff/…` in wall-clock time per quote, and `tariff-cpu/…` in
//! the bench thread's CPU time per 10,000 quotes (read 1 ms as 100 ns per
//! quote; the throughput line gives quotes per second), which leaves out the
//! time spent waiting for a core on a loaded machine.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::hint::black_box;

use chargeswap_core::tariff::{Session, Tariff};
use common::ThreadCpuTime;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn tou_tariff() -> Tariff {
    serde_json::from_str(
        r#"{"id": "tou4", "currency": "CNY",
        "tou": {"ranges": [
            {"start": "00:00", "end": "08:00", "tier": "valley"},
            {"start": "08:00", "end": "10:00", "tier": "flat"},
            {"start": "10:00", "end": "12:00", "tier": "peak"},
            {"start": "12:00", "end": "14:00", "tier": "sharp"},
            {"start": "14:00", "end": "18:00", "tier": "flat"},
            {"start": "18:00", "end": "22:00", "tier": "peak"},
            {"start": "22:00", "end": "24:00", "tier": "valley"}]},
        "energy": {"tiers": {
            "sharp":  {"electricity": "1.25300", "service": "0.80"},
            "peak":   {"electricity": "1.02200", "service": "0.80"},
            "flat":   {"electricity": "0.65400", "service": "0.60"},
            "valley": {"electricity": "0.32100", "service": "0.40"}}}}"#,
    )
    .unwrap()
}

fn tou_session() -> Session {
    // 06:00–14:00: valley, flat, peak, sharp — four segments, eight lines;
    // energy from two meter readings, interpolated at three boundaries.
    serde_json::from_str(
        r#"{"service": "charging", "start": "2025-03-12T06:00:00", "end": "2025-03-12T14:00:00",
        "readings": [{"at": "2025-03-12T06:00:00", "kwh": "1523.4100"},
                     {"at": "2025-03-12T14:00:00", "kwh": "1561.2345"}]}"#,
    )
    .unwrap()
}

fn ebike_tariff() -> Tariff {
    serde_json::from_str(
        r#"{"id": "ebike", "currency": "CNY",
        "time": {"bands": [
            {"from_w": 0, "to_w": 300, "per_hour": "0.40"},
            {"from_w": 300, "to_w": 600, "per_hour": "0.80"},
            {"from_w": 600, "per_hour": "1.20"}],
            "granularity": "per_minute", "free_minutes": 5, "cap": "5.00"}}"#,
    )
    .unwrap()
}

fn ebike_session() -> Session {
    // 3 h 10 min: fast charge at 650 W, then 480 W, then trickle at 180 W.
    serde_json::from_str(
        r#"{"service": "charging", "start": "2025-03-12T20:03:17", "end": "2025-03-12T23:13:42",
        "power": [{"at": "2025-03-12T20:03:20", "watts": 650},
                  {"at": "2025-03-12T20:41:00", "watts": 480},
                  {"at": "2025-03-12T21:55:00", "watts": 470},
                  {"at": "2025-03-12T22:20:30", "watts": 180}]}"#,
    )
    .unwrap()
}

fn bench(c: &mut Criterion) {
    let tou = tou_tariff().compile().unwrap();
    let s = tou_session();
    assert_eq!(tou.quote(&s).unwrap().lines.len(), 8);
    c.bench_function("tariff/quote 8 h across 4 TOU tiers", |b| {
        b.iter(|| tou.quote(black_box(&s)).unwrap())
    });

    let ebike = ebike_tariff().compile().unwrap();
    let s = ebike_session();
    assert_eq!(ebike.quote(&s).unwrap().lines.len(), 3);
    c.bench_function("tariff/quote e-bike power bands", |b| {
        b.iter(|| ebike.quote(black_box(&s)).unwrap())
    });

    let t = tou_tariff();
    c.bench_function("tariff/compile 4-tier TOU tariff", |b| {
        b.iter(|| black_box(&t).compile().unwrap())
    });
}

/// The two quote benchmarks in thread CPU time, 10,000 quotes per iteration
/// (the thread clock advances in scheduler ticks).
fn bench_cpu(c: &mut Criterion<ThreadCpuTime>) {
    const BATCH: usize = 10_000;
    let mut g = c.benchmark_group("tariff-cpu");
    g.throughput(Throughput::Elements(BATCH as u64));
    let tou = tou_tariff().compile().unwrap();
    let s = tou_session();
    g.bench_function("quote 8 h across 4 TOU tiers x10000", |b| {
        b.iter(|| {
            for _ in 0..BATCH {
                black_box(tou.quote(black_box(&s)).unwrap());
            }
        })
    });
    let ebike = ebike_tariff().compile().unwrap();
    let s = ebike_session();
    g.bench_function("quote e-bike power bands x10000", |b| {
        b.iter(|| {
            for _ in 0..BATCH {
                black_box(ebike.quote(black_box(&s)).unwrap());
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_group! {
    name = cpu;
    config = Criterion::default().with_measurement(ThreadCpuTime);
    targets = bench_cpu
}
criterion_main!(benches, cpu);
