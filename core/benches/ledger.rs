//! Ledger transfers in memory. Target: ≥ 1,000,000 transfers/s.
//!
//! `cargo bench -p chargeswap-core --bench ledger -- --warm-up-time 1 --measurement-time 3`
//!
//! Two groups: `ledger/*` and `id_index/*` measure wall-clock time (the
//! figure of record on a quiet machine); `cpu/ledger/*` measures the
//! benchmark thread's CPU time (from /proc/thread-self/schedstat), which
//! leaves out time spent waiting for a core and so stays meaningful on a
//! shared, loaded machine. Select one with a filter, e.g. `-- cpu/`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

use std::collections::HashMap;
use std::hash::BuildHasher;

use chargeswap_core::ledger::{AccountKind, Command, Key, Ledger, NewAccount};
use chargeswap_core::money::{Currency, Money};
use chrono::{TimeZone, Utc};

mod common;
use common::ThreadCpuTime;
use criterion::measurement::Measurement;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

const RIDERS: usize = 10_000;
const N: usize = 100_000;

fn setup() -> Ledger {
    let now = Utc.with_ymd_and_hms(2024, 5, 1, 0, 0, 0).unwrap();
    let mut l = Ledger::with_capacity(RIDERS + 2, 0);
    l.create_account(
        &NewAccount::new(Key::new("clearing").unwrap(), AccountKind::PaymentClearing),
        now,
    )
    .unwrap();
    l.create_account(
        &NewAccount::new(
            Key::new("platform:revenue").unwrap(),
            AccountKind::PlatformRevenue,
        ),
        now,
    )
    .unwrap();
    for r in 0..RIDERS {
        l.create_account(
            &NewAccount::new(rider(r), AccountKind::RiderWallet).no_overdraft(),
            now,
        )
        .unwrap();
    }
    l
}

fn rider(r: usize) -> Key {
    Key::new(&format!("rider-{r:08}:wallet")).unwrap()
}

/// N single-phase transfers: top-ups for every rider, then swap fees paid
/// from the wallets (so half of them check the no-overdraft flag).
fn commands() -> Vec<Command> {
    let clearing = Key::new("clearing").unwrap();
    let revenue = Key::new("platform:revenue").unwrap();
    let top_up = Key::new("top_up").unwrap();
    let fee = Key::new("swap_fee").unwrap();
    (0..N)
        .map(|i| {
            let r = rider(i % RIDERS);
            let id = Key::new(&format!("SW2024050100{i:010}")).unwrap();
            if i < RIDERS {
                Command::Transfer {
                    id,
                    debit_account: clearing,
                    credit_account: r,
                    amount: Money::from_minor(100_000, Currency::CNY),
                    code: top_up,
                    reference: None,
                }
            } else {
                Command::Transfer {
                    id,
                    debit_account: r,
                    credit_account: revenue,
                    amount: Money::from_minor(599, Currency::CNY),
                    code: fee,
                    reference: Some(id),
                }
            }
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    transfers(c, "ledger");
    index(c, "id_index");
}

fn bench_cpu(c: &mut Criterion<ThreadCpuTime>) {
    transfers(c, "cpu/ledger");
    index(c, "cpu/id_index");
}

fn transfers<M: Measurement>(c: &mut Criterion<M>, group: &str) {
    let now = Utc.with_ymd_and_hms(2024, 5, 1, 8, 0, 0).unwrap();
    let base = setup();
    let cmds = commands();

    let mut g = c.benchmark_group(group);
    g.sample_size(10);
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function("transfers_100k", |b| {
        b.iter_batched(
            || {
                let mut l = base.clone();
                l.reserve(N);
                l
            },
            |mut l| {
                for cmd in &cmds {
                    l.apply(cmd, now).unwrap();
                }
                l
            },
            BatchSize::LargeInput,
        )
    });

    // Two-phase: N/2 holds, each posted in part (N transfers in all).
    let holds: Vec<(Command, Command)> = (0..N / 2)
        .map(|i| {
            let id = Key::new(&format!("H{i:010}")).unwrap();
            (
                Command::Hold {
                    id,
                    debit_account: if i < RIDERS {
                        Key::new("clearing").unwrap()
                    } else {
                        rider(i % RIDERS)
                    },
                    credit_account: if i < RIDERS {
                        rider(i)
                    } else {
                        Key::new("platform:revenue").unwrap()
                    },
                    amount: Money::from_minor(
                        if i < RIDERS { 100_000 } else { 2_000 },
                        Currency::CNY,
                    ),
                    code: Key::new("charging").unwrap(),
                    reference: None,
                    expires_at: Some(now + chrono::Duration::hours(4)),
                },
                Command::Post {
                    id: Key::new(&format!("P{i:010}")).unwrap(),
                    pending_id: id,
                    amount: if i < RIDERS {
                        None
                    } else {
                        Some(Money::from_minor(1_234, Currency::CNY))
                    },
                },
            )
        })
        .collect();
    g.bench_function("hold_post_100k", |b| {
        b.iter_batched(
            || {
                let mut l = base.clone();
                l.reserve(N);
                l
            },
            |mut l| {
                for (h, p) in &holds {
                    l.apply(h, now).unwrap();
                    l.apply(p, now).unwrap();
                }
                l
            },
            BatchSize::LargeInput,
        )
    });

    // Batches of 4 (a wallet payment split over gift and paid credit plus a
    // revenue share is typically 2-4 transfers).
    g.bench_function("batches_of_4_100k", |b| {
        b.iter_batched(
            || {
                let mut l = base.clone();
                l.reserve(N);
                l
            },
            |mut l| {
                for chunk in cmds.chunks(4) {
                    l.apply_batch(chunk, now).unwrap();
                }
                l
            },
            BatchSize::LargeInput,
        )
    });

    // Idempotent replay: every id already exists.
    let mut full = base.clone();
    for cmd in &cmds {
        full.apply(cmd, now).unwrap();
    }
    g.bench_function("replay_100k", |b| {
        b.iter(|| {
            for cmd in &cmds {
                full.apply(cmd, now).unwrap();
            }
        })
    });
    g.finish();
}

fn index<M: Measurement>(c: &mut Criterion<M>, group: &str) {
    // Why FxHash: the id index lookup with std's SipHash-1-3 vs rustc-hash.
    let keys: Vec<Key> = commands().iter().map(Command::id).collect();
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Elements(N as u64));
    fn lookups<S: BuildHasher + Default>(keys: &[Key]) -> HashMap<Key, u32, S> {
        let mut m = HashMap::with_capacity_and_hasher(keys.len(), S::default());
        for (i, k) in keys.iter().enumerate() {
            m.insert(*k, i as u32);
        }
        m
    }
    let std_map = lookups::<std::hash::RandomState>(&keys);
    let fx_map = lookups::<rustc_hash::FxBuildHasher>(&keys);
    g.bench_function("siphash_lookup_100k", |b| {
        b.iter(|| keys.iter().map(|k| std_map[k] as u64).sum::<u64>())
    });
    g.bench_function("fxhash_lookup_100k", |b| {
        b.iter(|| keys.iter().map(|k| fx_map[k] as u64).sum::<u64>())
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
