//! loom models of the watermark waits, driving the real `WatermarkAdvanceHandle` through
//! the `sync` shim. Run with
//! `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test --release -p tidelog-watermarks --test loom`.
//!
//! loom explores every interleaving of the threads below. A lost wake-up (a waiter that
//! parks after the advance that covers it, or a notify that is missing) shows up as a
//! deadlock, which loom reports as a failure: loom's timed waits never time out.
#![cfg(loom)]

use loom::thread;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tidelog_watermarks::{HlcPoint, SystemClock, WaitError, WatermarkKind, WatermarkState};

const FOREVER: Duration = Duration::from_secs(3600);

fn p(seq: u64) -> HlcPoint {
    HlcPoint {
        wall_ms: seq,
        global_sequence: seq,
    }
}

#[test]
fn a_waiter_and_an_advancer_never_lose_the_wake_up() {
    loom::model(|| {
        let handle = WatermarkState::handle(Arc::new(SystemClock::new()));
        let waiter = {
            let handle = handle.clone();
            thread::spawn(move || handle.wait_for_durable_on_lane(1, p(1), FOREVER))
        };
        {
            let mut state = handle.lock();
            state.advance_accepted_on_lane(1, p(1));
            state.advance_written_on_lane(1, p(1));
        }
        handle.lock().advance_durable(p(1));
        assert_eq!(waiter.join().expect("waiter"), Ok(p(1)));
    });
}

#[test]
fn poison_wakes_every_waiter_whatever_the_interleaving() {
    loom::model(|| {
        let handle = WatermarkState::handle(Arc::new(SystemClock::new()));
        let waiters: Vec<_> = [WatermarkKind::Durable, WatermarkKind::Visible]
            .into_iter()
            .map(|kind| {
                let handle = handle.clone();
                thread::spawn(move || handle.wait_for(kind, p(1), FOREVER))
            })
            .collect();
        handle.mark_writer_crashed();
        for waiter in waiters {
            let result = waiter.join().expect("waiter");
            assert!(
                matches!(result, Err(WaitError::Poisoned { .. })),
                "{result:?}"
            );
        }
    });
}

#[test]
fn an_advance_racing_poison_ends_every_wait_without_deadlock() {
    loom::model(|| {
        let handle = WatermarkState::handle(Arc::new(SystemClock::new()));
        let waiter = {
            let handle = handle.clone();
            thread::spawn(move || handle.wait_for_accepted(p(2), FOREVER))
        };
        let advancer = {
            let handle = handle.clone();
            thread::spawn(move || handle.lock().advance_accepted_on_lane(0, p(2)))
        };
        handle.mark_writer_crashed();
        advancer.join().expect("advancer");
        let result = waiter.join().expect("waiter");
        assert!(
            matches!(result, Ok(_) | Err(WaitError::Poisoned { .. })),
            "{result:?}"
        );
    });
}

#[test]
fn waiters_on_distinct_targets_each_wake_when_their_own_target_is_reached() {
    loom::model(|| {
        let handle = WatermarkState::handle(Arc::new(SystemClock::new()));
        let waiters: Vec<_> = [1, 2]
            .into_iter()
            .map(|seq| {
                let handle = handle.clone();
                thread::spawn(move || handle.wait_for_accepted(p(seq), FOREVER))
            })
            .collect();
        handle.lock().advance_accepted_on_lane(0, p(1));
        handle.lock().advance_accepted_on_lane(0, p(2));
        for waiter in waiters {
            assert!(waiter.join().expect("waiter").is_ok());
        }
    });
}

/// A minimal executor on loom's threads: poll, park, the waker unparks.
fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = std::task::Waker::from(std::sync::Arc::new(Unpark(thread::current())));
    let mut cx = std::task::Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let std::task::Poll::Ready(value) = future.as_mut().poll(&mut cx) {
            return value;
        }
        thread::park();
    }
}

/// The async form: a future parks its task's waker in the same lists; no interleaving of
/// its first poll with the advance loses the wake-up (loom's `block_on` would deadlock).
#[test]
fn a_future_and_an_advancer_never_lose_the_wake_up() {
    loom::model(|| {
        let handle = WatermarkState::handle(Arc::new(SystemClock::new()));
        let waiter = {
            let handle = handle.clone();
            thread::spawn(move || block_on(handle.wait_for_durable_on_lane_async(1, p(1))))
        };
        {
            let mut state = handle.lock();
            state.advance_accepted_on_lane(1, p(1));
            state.advance_written_on_lane(1, p(1));
        }
        handle.lock().advance_durable(p(1));
        assert_eq!(waiter.join().expect("waiter"), Ok(p(1)));
        assert_eq!(handle.lock().parked_waiters(), 0);
    });
}

/// A future polled once and dropped while an advance and another future run: whatever
/// the order, its entry is gone afterwards (its target is never reached, so only the drop
/// can remove it), and the other future is still woken.
#[test]
fn a_future_dropped_during_an_advance_leaves_no_entry_and_steals_no_wake_up() {
    loom::model(|| {
        let handle = WatermarkState::handle(Arc::new(SystemClock::new()));
        let dropper = {
            let handle = handle.clone();
            thread::spawn(move || {
                let mut future = std::pin::pin!(handle.wait_for_accepted_async(p(2)));
                let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
                assert!(future.as_mut().poll(&mut cx).is_pending());
            })
        };
        let waiter = {
            let handle = handle.clone();
            thread::spawn(move || block_on(handle.wait_for_accepted_async(p(1))))
        };
        handle.lock().advance_accepted_on_lane(0, p(1));
        dropper.join().expect("dropper");
        assert_eq!(waiter.join().expect("waiter"), Ok(p(1)));
        assert_eq!(handle.lock().parked_waiters(), 0);
    });
}

/// Poison wakes a pending future and fails it, whatever the interleaving.
#[test]
fn poison_wakes_a_pending_future_whatever_the_interleaving() {
    loom::model(|| {
        let handle = WatermarkState::handle(Arc::new(SystemClock::new()));
        let waiter = {
            let handle = handle.clone();
            thread::spawn(move || block_on(handle.wait_for_visible_async(p(1))))
        };
        handle.mark_writer_crashed();
        let result = waiter.join().expect("waiter");
        assert!(
            matches!(result, Err(WaitError::Poisoned { .. })),
            "{result:?}"
        );
        assert_eq!(handle.lock().parked_waiters(), 0);
    });
}
