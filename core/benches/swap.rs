//! Complete swap sessions through the machine, in memory: start (checks,
//! choosing slots), old battery inserted and verified, full battery taken,
//! completed and charged. Every step is `handle` + `apply`.
//!
//! Two groups: `swap/*` in wall time, and `cpu/*` in the benchmark thread's
//! CPU time (from /proc/thread-self/schedstat, as in benches/ledger.rs),
//! which leaves out time spent waiting for a core on a loaded machine.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;

use chargeswap_core::cabinet::{
    BmsSummary, CabinetEvent, CabinetSnapshot, DeviceEvent, SlotSnapshot, SlotState,
};
use chargeswap_core::custody::{CabinetId, RiderId};
use chargeswap_core::numbering::DeviceNo;
use chargeswap_core::swap::{Payment, RiderFacts, SwapInput, SwapPolicy, SwapRequest, SwapSession};
use chrono::{TimeZone, Utc};

mod common;
use common::ThreadCpuTime;
use criterion::measurement::Measurement;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn request(order: u64) -> SwapRequest {
    let bms = |soc| {
        Some(BmsSummary {
            soc,
            temp_dc: 280,
            faults: 0,
        })
    };
    // A typical 12-slot cabinet: 2 empty, 10 batteries at various SOC.
    let mut slots = vec![
        SlotSnapshot {
            slot: 1,
            state: SlotState::Empty,
        },
        SlotSnapshot {
            slot: 2,
            state: SlotState::Empty,
        },
    ];
    for i in 3..=12u16 {
        slots.push(SlotSnapshot {
            slot: i,
            state: SlotState::Battery {
                battery: Some(DeviceNo::new(200_000 + u64::from(i)).unwrap()),
                model: "48V20Ah".into(),
                bms: bms(80 + u8::try_from(i).unwrap()),
            },
        });
    }
    SwapRequest {
        order,
        rider: RiderId(7),
        cabinet: CabinetSnapshot {
            cabinet: CabinetId(20_001),
            online: true,
            busy_with: None,
            slots,
        },
        rider_facts: RiderFacts {
            verified: true,
            deposit_paid: true,
            battery: Some(DeviceNo::new(300_001).unwrap()),
            allowed_models: vec!["48V20Ah".into()],
        },
        payment: Payment::Package {
            package: "pkg-42".into(),
            unit_value: "3.00".parse().unwrap(),
        },
        policy: SwapPolicy::default(),
    }
}

fn bench(c: &mut Criterion) {
    sessions(c, "swap");
}

fn bench_cpu(c: &mut Criterion<ThreadCpuTime>) {
    sessions(c, "cpu");
}

fn sessions<M: Measurement>(c: &mut Criterion<M>, group: &str) {
    let now = Utc.with_ymd_and_hms(2025, 3, 1, 8, 0, 0).unwrap();
    let cab = CabinetId(20_001);
    let own = DeviceNo::new(300_001).unwrap();
    let best = DeviceNo::new(200_012).unwrap();
    let start = SwapInput::Start(Box::new(request(1)));
    let insert = SwapInput::Device(CabinetEvent {
        cabinet: cab,
        seq: Some(1),
        event: DeviceEvent::BatteryInserted {
            slot: 1,
            battery: Some(own),
            bms: Some(BmsSummary {
                soc: 15,
                temp_dc: 300,
                faults: 0,
            }),
        },
    });
    let take = SwapInput::Device(CabinetEvent {
        cabinet: cab,
        seq: Some(2),
        event: DeviceEvent::BatteryRemoved {
            slot: 12,
            battery: Some(best),
        },
    });
    // Batches of sessions per iteration, so the thread-CPU clock (which
    // advances in scheduler ticks) sees whole milliseconds.
    const BATCH: u64 = 10_000;
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Elements(BATCH));
    g.bench_function("complete_sessions_x10000", |b| {
        b.iter(|| {
            for _ in 0..BATCH {
                let mut s = SwapSession::new();
                s.step(&start, now).unwrap();
                s.step(&insert, now).unwrap();
                let d = s.step(&take, now).unwrap();
                black_box((s, d));
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
