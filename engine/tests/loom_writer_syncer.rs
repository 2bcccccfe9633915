//! loom models of the writer thread's inbox and its hand-off to the syncer thread
//! (`tidelog::inbox`, built on the watermarks crate's `sync` shim: the writer in
//! `writer.rs` waits on this very code, and the syncer thread runs `Syncer::serve`). Run
//! with
//! `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test --release -p tidelog --test loom_writer_syncer`.
//!
//! What could go wrong: a sync job handed over is never run, or its completion never
//! reaches the writer (durable stops advancing, every durable appender hangs); the syncer
//! stopping (the writer shutting down, a failed sync, the syncer thread gone) leaves the
//! writer or the syncer parked forever (`close` hangs); the writer parks while a request
//! or a completion is already there (a lost wake-up: appenders hang until the next
//! request); a sender blocked on a full inbox is never let in, or never told the writer
//! stopped. loom explores every interleaving and reports a hang as a deadlock.
//!
//! Checked by hand (2026-12-03): deleting any one of the inbox's nine `notify_one` calls
//! (a request queued by `send` or `try_send`, the last sender dropped, a place freed, a
//! job handed over, the writer's end dropped waking the syncer or a blocked sender, a
//! completion, the syncer's end dropped) makes at least one of these models fail with a
//! deadlock. A failing model aborts the test binary (loom's deadlock panic, then the
//! inbox's ends lock the model's mutex again while unwinding); the panic message names
//! the model.
#![cfg(loom)]

use loom::thread;
use tidelog::handoff::{oneshot, ReplyTo};
use tidelog::inbox::{inbox, Event};

#[test]
fn a_sync_job_handed_to_the_syncer_is_completed_and_its_completion_reaches_the_writer() {
    loom::model(|| {
        let (requests, writer, syncer) = inbox::<u64, u64, u64>(4);
        let syncer = thread::spawn(move || syncer.serve(|job| job * 10));
        for job in 1..=2 {
            writer.hand_over(job);
            assert_eq!(writer.wait(false, None), Event::Completion(job * 10));
        }
        drop(writer);
        syncer
            .join()
            .expect("the syncer returns once the writer is gone");
        drop(requests);
    });
}

#[test]
fn a_failed_sync_reaches_the_writer_and_its_shutdown_then_stops_the_syncer() {
    loom::model(|| {
        let (requests, writer, syncer) = inbox::<u64, u64, Result<(), u64>>(4);
        let syncer = thread::spawn(move || syncer.serve(Err));
        writer.hand_over(5);
        assert_eq!(writer.wait(false, None), Event::Completion(Err(5)));
        drop(writer);
        syncer
            .join()
            .expect("the syncer returns once the writer is gone");
        drop(requests);
    });
}

#[test]
fn a_syncer_that_stops_with_a_job_handed_over_wakes_the_writer_instead_of_hanging() {
    loom::model(|| {
        let (requests, writer, syncer) = inbox::<u64, u64, u64>(4);
        // The end a panicking syncer thread drops while unwinding.
        let syncer = thread::spawn(move || drop(syncer));
        writer.hand_over(1);
        assert_eq!(writer.wait(true, None), Event::SyncerGone);
        syncer.join().expect("syncer");
        drop(requests);
    });
}

#[test]
fn the_writer_stopping_with_a_job_not_yet_taken_lets_the_syncer_return() {
    loom::model(|| {
        let (requests, writer, syncer) = inbox::<u64, u64, u64>(4);
        let syncer = thread::spawn(move || syncer.serve(|job| job));
        writer.hand_over(1);
        drop(writer);
        syncer
            .join()
            .expect("the syncer returns once the writer is gone");
        drop(requests);
    });
}

#[test]
fn the_writer_never_parks_while_a_request_or_a_completion_is_pending() {
    loom::model(|| {
        let (requests, writer, syncer) = inbox::<u64, u64, u64>(4);
        let appender = thread::spawn(move || {
            requests.send(7).expect("the writer runs");
            // The last sender dropped: the writer learns no request will come.
        });
        let syncer = thread::spawn(move || syncer.serve(|job| job * 10));
        writer.hand_over(1);
        let (mut request, mut completion, mut senders_gone) = (None, None, false);
        while completion.is_none() || !senders_gone {
            match writer.wait(!senders_gone, None) {
                Event::Request(value) => request = Some(value),
                Event::Completion(value) => completion = Some(value),
                Event::SendersGone => senders_gone = true,
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!((request, completion), (Some(7), Some(10)));
        appender.join().expect("appender");
        drop(writer);
        syncer.join().expect("syncer");
    });
}

#[test]
fn a_request_queued_without_blocking_wakes_a_parked_writer() {
    loom::model(|| {
        let (requests, writer, syncer) = inbox::<u64, u64, u64>(1);
        let appender = thread::spawn(move || {
            assert_eq!(requests.try_send(3), Ok(()));
            requests
        });
        assert_eq!(writer.wait(true, None), Event::Request(3));
        drop(appender.join().expect("appender"));
        drop((writer, syncer));
    });
}

#[test]
fn a_sender_blocked_on_a_full_inbox_gets_in_once_the_writer_takes_a_request() {
    loom::model(|| {
        let (requests, writer, syncer) = inbox::<u64, u64, u64>(1);
        let appender = thread::spawn(move || {
            requests.send(1).expect("the writer runs");
            requests.send(2).expect("the writer runs");
            requests
        });
        assert_eq!(writer.wait(true, None), Event::Request(1));
        assert_eq!(writer.wait(true, None), Event::Request(2));
        drop(appender.join().expect("appender"));
        drop((writer, syncer));
    });
}

#[test]
fn a_sender_blocked_on_a_full_inbox_gets_its_request_back_when_the_writer_stops() {
    loom::model(|| {
        let (requests, writer, syncer) = inbox::<u64, u64, u64>(1);
        requests.send(1).expect("the writer runs");
        let appender = thread::spawn(move || requests.send(2));
        drop(writer);
        assert_eq!(appender.join().expect("appender"), Err(2));
        drop(syncer);
    });
}

#[test]
fn an_appender_whose_request_is_queued_when_the_writer_stops_is_woken_with_nothing() {
    loom::model(|| {
        let (requests, writer, syncer) = inbox::<ReplyTo<u64>, u64, u64>(4);
        let appender = thread::spawn(move || {
            let (reply, pending) = oneshot::<u64>();
            match requests.send(reply) {
                // Queued: the writer's end, dropped, drops the reply unanswered.
                Ok(()) => pending.wait(),
                // Refused: the reply came back and is dropped here.
                Err(reply) => {
                    drop(reply);
                    pending.wait()
                }
            }
        });
        drop(writer);
        drop(syncer);
        assert_eq!(appender.join().expect("appender"), None);
    });
}
