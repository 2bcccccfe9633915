#![allow(missing_docs)] // criterion_group! generates undocumented public items
//! Costs of the watermark state: an advance with nobody waiting, and waking 512 parked
//! waiters on 512 distinct targets (one advance per target, the writer's real pattern)
//! versus 512 waiters on one target (one advance). With targeted wake-ups the two are
//! close; a wake-all design pays ~512x more wake-ups in the distinct case.
//!
//! `cargo bench -p tidelog-watermarks --bench watermarks`

use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};
use tidelog_watermarks::{HlcPoint, SystemClock, WatermarkAdvanceHandle, WatermarkState};

const WAITERS: u64 = 512;

fn p(seq: u64) -> HlcPoint {
    HlcPoint {
        wall_ms: seq,
        global_sequence: seq,
    }
}

fn advance_without_waiters(c: &mut Criterion) {
    c.bench_function("advance accepted+written+durable, no waiters", |b| {
        let mut state = WatermarkState::new(Arc::new(SystemClock::new()));
        let mut seq = 0;
        b.iter(|| {
            seq += 1;
            let point = p(seq);
            state.advance_accepted_on_lane(black_box(1), point);
            state.advance_written_on_lane(1, point);
            state.advance_durable(point);
            state.advance_visible_and_emitted(point);
        });
    });
}

/// Parks one thread per target, then times the advances and the return of every waiter.
fn wake(targets: impl Fn(u64) -> u64, advance_steps: &[u64]) -> Duration {
    let handle = WatermarkState::handle(Arc::new(SystemClock::new()));
    let threads: Vec<_> = (1..=WAITERS)
        .map(|i| {
            let handle: WatermarkAdvanceHandle = handle.clone();
            let target = p(targets(i));
            thread::spawn(move || handle.wait_for_accepted(target, Duration::from_secs(60)))
        })
        .collect();
    while handle.lock().parked_waiters() < threads.len() {
        thread::yield_now();
    }
    let started = Instant::now();
    for &seq in advance_steps {
        handle.lock().advance_accepted_on_lane(0, p(seq));
    }
    for thread in threads {
        assert!(thread.join().expect("waiter").is_ok());
    }
    started.elapsed()
}

fn wake_512(c: &mut Criterion) {
    let mut group = c.benchmark_group("wake 512 waiters");
    group.sample_size(20);
    let distinct_steps: Vec<u64> = (1..=WAITERS).collect();
    group.bench_function("512 distinct targets, 512 advances", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| wake(|i| i, &distinct_steps)).sum());
    });
    group.bench_function("512 on one target, 1 advance", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| wake(|_| 1, &[1])).sum());
    });
    group.finish();
}

criterion_group!(benches, advance_without_waiters, wake_512);
criterion_main!(benches);
