#![allow(missing_docs)] // criterion_group! generates undocumented public items
//! 10,000 pending waits woken by one advance: as `WatermarkWait` futures on a minimal
//! single-thread executor (the advance calls 10,000 wakers, the executor polls each woken
//! future once to completion) versus the blocking form (10,000 parked threads, each
//! notified and joined). Times run from the advance until every wait has returned.
//!
//! `cargo bench -p tidelog-watermarks --bench async_wake`

use criterion::{criterion_group, criterion_main, Criterion};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread;
use std::time::{Duration, Instant};
use tidelog_watermarks::{HlcPoint, SystemClock, WatermarkState, WatermarkWait};

const WAITS: u64 = 10_000;

fn p(seq: u64) -> HlcPoint {
    HlcPoint {
        wall_ms: seq,
        global_sequence: seq,
    }
}

/// A task's readiness flag: the executor re-polls only flagged futures.
#[derive(Default)]
struct Flag(AtomicBool);

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::Release);
    }
}

fn futures_woken_by_one_advance() -> Duration {
    let handle = WatermarkState::handle(Arc::new(SystemClock::new()));
    let mut tasks: Vec<(WatermarkWait, Arc<Flag>, Waker)> = (1..=WAITS)
        .map(|i| {
            let flag = Arc::new(Flag::default());
            let waker = Waker::from(flag.clone());
            (handle.wait_for_accepted_async(p(i)), flag, waker)
        })
        .collect();
    for (future, _, waker) in &mut tasks {
        assert!(Pin::new(future)
            .poll(&mut Context::from_waker(waker))
            .is_pending());
    }
    assert_eq!(handle.lock().parked_waiters(), WAITS as usize);
    let started = Instant::now();
    handle.lock().advance_accepted_on_lane(0, p(WAITS));
    for (future, flag, waker) in &mut tasks {
        assert!(flag.0.swap(false, Ordering::Acquire), "not woken");
        let polled = Pin::new(future).poll(&mut Context::from_waker(waker));
        assert!(matches!(polled, Poll::Ready(Ok(_))));
    }
    let elapsed = started.elapsed();
    drop(tasks);
    elapsed
}

fn threads_woken_by_one_advance() -> Duration {
    let handle = WatermarkState::handle(Arc::new(SystemClock::new()));
    let threads: Vec<_> = (1..=WAITS)
        .map(|i| {
            let handle = handle.clone();
            thread::Builder::new()
                .stack_size(64 * 1024)
                .spawn(move || handle.wait_for_accepted(p(i), Duration::from_secs(600)))
                .expect("spawn a waiter")
        })
        .collect();
    while handle.lock().parked_waiters() < threads.len() {
        thread::yield_now();
    }
    let started = Instant::now();
    handle.lock().advance_accepted_on_lane(0, p(WAITS));
    for thread in threads {
        assert!(thread.join().expect("waiter").is_ok());
    }
    started.elapsed()
}

fn wake_10k(c: &mut Criterion) {
    let mut group = c.benchmark_group("10,000 waits, one advance");
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("futures", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| futures_woken_by_one_advance()).sum());
    });
    group.bench_function("blocking threads", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| threads_woken_by_one_advance()).sum());
    });
    group.finish();
}

criterion_group!(benches, wake_10k);
criterion_main!(benches);
