//! The async form of the waits (`wait_for_*_async`, `WatermarkWait`): if one of these
//! fails, an async caller could be woken for an advance that does not cover it (a storm of
//! useless polls), never be woken at all, leave its waker in the lists after it gave up,
//! or be told a record is durable after the writer crashed.
//!
//! Under a hand-written executor (no runtime) and under tokio's multi-thread runtime.
#![cfg(not(loom))]

use std::future::Future;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread;
use std::time::Duration;
use tidelog_watermarks::{
    HlcPoint, SystemClock, WaitError, WatermarkAdvanceHandle, WatermarkKind, WatermarkState,
    WatermarkWait,
};

fn p(seq: u64) -> HlcPoint {
    HlcPoint {
        wall_ms: 1_000 + seq,
        global_sequence: seq,
    }
}

fn handle() -> WatermarkAdvanceHandle {
    WatermarkState::handle(Arc::new(SystemClock::new()))
}

/// Writes and syncs `lane` up to `seq`.
fn write_durable(handle: &WatermarkAdvanceHandle, lane: u32, seq: u64) {
    let mut state = handle.lock();
    state.advance_accepted_on_lane(lane, p(seq));
    state.advance_written_on_lane(lane, p(seq));
    state.advance_durable(p(seq));
}

/// A waker that counts its wake-ups.
#[derive(Default)]
struct Counter(AtomicUsize);

impl Wake for Counter {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

impl Counter {
    fn woken(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

fn poll_with(
    future: &mut WatermarkWait,
    counter: &Arc<Counter>,
) -> Poll<Result<HlcPoint, WaitError>> {
    let waker = Waker::from(counter.clone());
    Pin::new(future).poll(&mut Context::from_waker(&waker))
}

/// The smallest executor there is: polls on this thread, parks it between polls, and the
/// waker unparks it.
fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(value) = future.as_mut().poll(&mut cx) {
            return value;
        }
        thread::park();
    }
}

#[test]
fn an_advance_wakes_only_the_futures_whose_target_it_covers() {
    let handle = handle();
    let counters: Vec<Arc<Counter>> = (0..3).map(|_| Arc::default()).collect();
    let mut futures: Vec<WatermarkWait> = (1..=3)
        .map(|seq| handle.wait_for_durable_on_lane_async(4, p(seq)))
        .collect();
    for (future, counter) in futures.iter_mut().zip(&counters) {
        assert!(poll_with(future, counter).is_pending());
    }
    assert_eq!(handle.lock().parked_waiters(), 3);

    write_durable(&handle, 4, 1);
    write_durable(&handle, 4, 2);
    let woken: Vec<usize> = counters.iter().map(|c| c.woken()).collect();
    assert_eq!(woken, [1, 1, 0], "seq 2 wakes the futures for 1 and 2 only");
    assert_eq!(handle.lock().parked_waiters(), 1);
    assert_eq!(
        poll_with(&mut futures[0], &counters[0]),
        Poll::Ready(Ok(p(2)))
    );
    assert_eq!(
        poll_with(&mut futures[1], &counters[1]),
        Poll::Ready(Ok(p(2)))
    );
    assert!(poll_with(&mut futures[2], &counters[2]).is_pending());
}

#[test]
fn an_advance_of_another_kind_or_lane_wakes_no_future() {
    let handle = handle();
    let durable_lane_4 = Arc::new(Counter::default());
    let visible_global = Arc::new(Counter::default());
    let mut a = handle.wait_for_durable_on_lane_async(4, p(1));
    let mut b = handle.wait_for_visible_async(p(1));
    assert!(poll_with(&mut a, &durable_lane_4).is_pending());
    assert!(poll_with(&mut b, &visible_global).is_pending());

    write_durable(&handle, 5, 1);
    assert_eq!(durable_lane_4.woken(), 0, "lane 5 is not lane 4");
    assert_eq!(visible_global.woken(), 0, "durable is not visible");
    assert!(poll_with(&mut a, &durable_lane_4).is_pending());

    handle.lock().advance_visible_and_emitted(p(1));
    assert_eq!(visible_global.woken(), 1);
    assert_eq!(durable_lane_4.woken(), 0);
    assert_eq!(poll_with(&mut b, &visible_global), Poll::Ready(Ok(p(1))));
}

#[test]
fn a_covered_target_resolves_at_once_without_parking() {
    let handle = handle();
    write_durable(&handle, 2, 5);
    let counter = Arc::new(Counter::default());
    let mut future = handle.wait_for_written_async(p(3));
    assert_eq!(poll_with(&mut future, &counter), Poll::Ready(Ok(p(5))));
    assert_eq!(handle.lock().parked_waiters(), 0);
}

#[test]
fn a_dropped_future_leaves_no_waiter_behind() {
    let handle = handle();
    let counter = Arc::new(Counter::default());
    let mut future = handle.wait_for_async(WatermarkKind::Applied, p(9));
    assert!(poll_with(&mut future, &counter).is_pending());
    assert!(poll_with(&mut future, &counter).is_pending());
    assert_eq!(
        handle.lock().parked_waiters(),
        1,
        "polled twice, parked once"
    );
    drop(future);
    assert_eq!(handle.lock().parked_waiters(), 0);
}

#[test]
fn a_future_moved_to_another_task_wakes_that_task_not_the_first() {
    let handle = handle();
    let first = Arc::new(Counter::default());
    let second = Arc::new(Counter::default());
    let mut future = handle.wait_for_accepted_on_lane_async(1, p(1));
    assert!(poll_with(&mut future, &first).is_pending());
    assert!(poll_with(&mut future, &second).is_pending());
    assert_eq!(handle.lock().parked_waiters(), 1);
    handle.lock().advance_accepted_on_lane(1, p(1));
    assert_eq!((first.woken(), second.woken()), (0, 1));
}

#[test]
fn poison_wakes_every_pending_future_and_fails_it() {
    let handle = handle();
    let counters: Vec<Arc<Counter>> = (0..2).map(|_| Arc::default()).collect();
    let mut futures = [
        handle.wait_for_durable_async(p(1)),
        handle.wait_for_applied_on_lane_async(3, p(7)),
    ];
    for (future, counter) in futures.iter_mut().zip(&counters) {
        assert!(poll_with(future, counter).is_pending());
    }
    handle.mark_writer_crashed();
    for (future, counter) in futures.iter_mut().zip(&counters) {
        assert_eq!(counter.woken(), 1);
        let Poll::Ready(Err(WaitError::Poisoned { watermark, .. })) = poll_with(future, counter)
        else {
            panic!("a poisoned wait must fail");
        };
        assert_eq!(watermark, future.kind());
    }
    assert_eq!(handle.lock().parked_waiters(), 0);
    // Even a target that was covered before the poison fails, as the blocking wait does.
    assert!(matches!(
        block_on(handle.wait_for_accepted_async(p(0))),
        Err(WaitError::Poisoned { .. })
    ));
}

#[test]
fn a_minimal_executor_is_woken_by_an_advance_from_another_thread() {
    let handle = handle();
    let advancer = {
        let handle = handle.clone();
        thread::spawn(move || {
            for seq in 1..=50 {
                write_durable(&handle, 1, seq);
            }
        })
    };
    for seq in 1..=50 {
        let reached = block_on(handle.wait_for_durable_on_lane_async(1, p(seq))).unwrap();
        assert!(reached.covers(p(seq)));
    }
    advancer.join().unwrap();
    assert_eq!(handle.lock().parked_waiters(), 0);
}

#[test]
fn tokio_tasks_on_distinct_targets_each_finish_when_their_target_is_reached() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    let handle = handle();
    runtime.block_on(async {
        let tasks: Vec<_> = (1..=200u64)
            .map(|seq| {
                let handle = handle.clone();
                tokio::spawn(async move { handle.wait_for_durable_on_lane_async(2, p(seq)).await })
            })
            .collect();
        let advancer = {
            let handle = handle.clone();
            thread::spawn(move || {
                for seq in 1..=200 {
                    write_durable(&handle, 2, seq);
                }
            })
        };
        for (seq, task) in (1..=200u64).zip(tasks) {
            let reached = task.await.unwrap().unwrap();
            assert!(reached.covers(p(seq)), "{reached:?} for {seq}");
        }
        advancer.join().unwrap();
    });
    assert_eq!(handle.lock().parked_waiters(), 0);
}

#[test]
fn a_tokio_timeout_drops_the_future_and_unregisters_it() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    let handle = handle();
    runtime.block_on(async {
        let never = handle.wait_for_durable_async(p(1));
        let outcome = tokio::time::timeout(Duration::from_millis(20), never).await;
        assert!(outcome.is_err(), "nothing advanced, so the wait times out");
    });
    assert_eq!(handle.lock().parked_waiters(), 0);
}

#[test]
fn tokio_tasks_waiting_when_the_writer_crashes_all_fail() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let handle = handle();
    runtime.block_on(async {
        let tasks: Vec<_> = (1..=20u64)
            .map(|seq| {
                let handle = handle.clone();
                tokio::spawn(async move { handle.wait_for_visible_on_lane_async(1, p(seq)).await })
            })
            .collect();
        // Let every task park before the crash (not needed for correctness: a task that
        // polls after the latch fails at once too).
        while handle.lock().parked_waiters() < 20 {
            tokio::task::yield_now().await;
        }
        handle.mark_writer_crashed();
        for task in tasks {
            assert!(matches!(
                task.await.unwrap(),
                Err(WaitError::Poisoned { .. })
            ));
        }
    });
}
