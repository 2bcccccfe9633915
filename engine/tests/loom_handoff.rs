//! loom model of the appender-to-writer handoff: the one-shot reply slot every append
//! waits on (`tidelog::handoff`, built on the watermarks crate's `sync` shim, so this is
//! the real code). Run with
//! `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test --release -p tidelog --test loom_handoff`.
//!
//! What could go wrong: a receipt sent while the appender is between checking the slot
//! and parking is lost (the appender hangs); a writer that stops without answering leaves
//! the appender parked forever. loom explores every interleaving and reports a hang as a
//! deadlock. The request queue (the writer's inbox) has its own models in
//! `tests/loom_writer_syncer.rs`.
#![cfg(loom)]

use loom::thread;
use tidelog::handoff::oneshot;

#[test]
fn a_receipt_sent_by_the_writer_always_reaches_the_appender() {
    loom::model(|| {
        let (reply, pending) = oneshot::<u64>();
        let writer = thread::spawn(move || reply.send(42));
        assert_eq!(pending.wait(), Some(42));
        writer.join().expect("writer");
    });
}

#[test]
fn a_writer_that_stops_without_answering_wakes_the_appender_with_none() {
    loom::model(|| {
        let (reply, pending) = oneshot::<u64>();
        let writer = thread::spawn(move || drop(reply));
        assert_eq!(pending.wait(), None);
        writer.join().expect("writer");
    });
}

#[test]
fn shutdown_answering_some_requests_and_dropping_others_never_hangs_an_appender() {
    loom::model(|| {
        let (answered, first) = oneshot::<u64>();
        let (dropped, second) = oneshot::<u64>();
        let writer = thread::spawn(move || {
            answered.send(1);
            drop(dropped);
        });
        let appender = thread::spawn(move || second.wait());
        assert_eq!(first.wait(), Some(1));
        assert_eq!(appender.join().expect("appender"), None);
        writer.join().expect("writer");
    });
}

/// A minimal executor on loom's threads: poll, park, the waker unparks.
fn block_on<T>(pending: &tidelog::handoff::Pending<T>) -> Option<T> {
    struct Unpark(thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = std::task::Waker::from(std::sync::Arc::new(Unpark(thread::current())));
    let mut cx = std::task::Context::from_waker(&waker);
    loop {
        if let std::task::Poll::Ready(value) = pending.poll_reply(&mut cx) {
            return value;
        }
        thread::park();
    }
}

#[test]
fn an_async_appender_polling_the_slot_always_gets_the_receipt() {
    loom::model(|| {
        let (reply, pending) = oneshot::<u64>();
        let writer = thread::spawn(move || reply.send(42));
        assert_eq!(block_on(&pending), Some(42));
        writer.join().expect("writer");
    });
}

#[test]
fn an_async_appender_is_woken_with_none_when_the_writer_stops_without_answering() {
    loom::model(|| {
        let (reply, pending) = oneshot::<u64>();
        let writer = thread::spawn(move || drop(reply));
        assert_eq!(block_on(&pending), None);
        writer.join().expect("writer");
    });
}
