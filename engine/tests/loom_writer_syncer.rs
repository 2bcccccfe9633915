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
//! the model. Checked again once the models shared their setup (`check`, `serve`,
//! `stop_writer`): without the completion's `notify_one` in `Syncer::serve`,
//! `a_failed_sync_reaches_the_writer_and_its_shutdown_then_stops_the_syncer` deadlocks.
#![cfg(loom)]

use loom::thread::{self, JoinHandle};
use tidelog::handoff::{oneshot, ReplyTo};
use tidelog::inbox::{inbox, Event, Inbox, Sender, Syncer};

/// Checks `model` under every interleaving loom explores, each run on a fresh inbox of
/// at most `capacity` requests whose three ends (appenders', writer's, syncer's) it is
/// handed. A deadlock or a failed assertion in any interleaving fails the test.
fn check<R, J, D>(
    capacity: usize,
    model: impl Fn(Sender<R, J, D>, Inbox<R, J, D>, Syncer<R, J, D>) + Send + Sync + 'static,
) {
    loom::model(move || {
        let (requests, writer, syncer) = inbox(capacity);
        model(requests, writer, syncer);
    });
}

/// The syncer thread: `run` on every job handed over, until the writer is gone.
fn serve<R, J, D>(
    syncer: Syncer<R, J, D>,
    run: impl FnMut(J) -> D + Send + 'static,
) -> JoinHandle<()>
where
    R: Send + 'static,
    J: Send + 'static,
    D: Send + 'static,
{
    thread::spawn(move || syncer.serve(run))
}

/// Stops the writer (drops its end) and waits for the syncer thread, which must then
/// return.
fn stop_writer<R, J, D>(writer: Inbox<R, J, D>, syncer: JoinHandle<()>) {
    drop(writer);
    syncer
        .join()
        .expect("the syncer returns once the writer is gone");
}

#[test]
fn a_sync_job_handed_to_the_syncer_is_completed_and_its_completion_reaches_the_writer() {
    check::<u64, u64, u64>(4, |requests, writer, syncer| {
        let syncer = serve(syncer, |job| job * 10);
        for job in 1..=2 {
            writer.hand_over(job);
            assert_eq!(writer.wait(false, None), Event::Completion(job * 10));
        }
        stop_writer(writer, syncer);
        drop(requests);
    });
}

#[test]
fn a_failed_sync_reaches_the_writer_and_its_shutdown_then_stops_the_syncer() {
    check::<u64, u64, Result<(), u64>>(4, |requests, writer, syncer| {
        let syncer = serve(syncer, Err);
        writer.hand_over(5);
        assert_eq!(writer.wait(false, None), Event::Completion(Err(5)));
        stop_writer(writer, syncer);
        drop(requests);
    });
}

#[test]
fn a_syncer_that_stops_with_a_job_handed_over_wakes_the_writer_instead_of_hanging() {
    check::<u64, u64, u64>(4, |requests, writer, syncer| {
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
    check::<u64, u64, u64>(4, |requests, writer, syncer| {
        let syncer = serve(syncer, |job| job);
        writer.hand_over(1);
        stop_writer(writer, syncer);
        drop(requests);
    });
}

#[test]
fn the_writer_never_parks_while_a_request_or_a_completion_is_pending() {
    check::<u64, u64, u64>(4, |requests, writer, syncer| {
        let appender = thread::spawn(move || {
            requests.send(7).expect("the writer runs");
            // The last sender dropped: the writer learns no request will come.
        });
        let syncer = serve(syncer, |job| job * 10);
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
        stop_writer(writer, syncer);
    });
}

#[test]
fn a_request_queued_without_blocking_wakes_a_parked_writer() {
    check::<u64, u64, u64>(1, |requests, writer, syncer| {
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
    check::<u64, u64, u64>(1, |requests, writer, syncer| {
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
    check::<u64, u64, u64>(1, |requests, writer, syncer| {
        requests.send(1).expect("the writer runs");
        let appender = thread::spawn(move || requests.send(2));
        drop(writer);
        assert_eq!(appender.join().expect("appender"), Err(2));
        drop(syncer);
    });
}

#[test]
fn an_appender_whose_request_is_queued_when_the_writer_stops_is_woken_with_nothing() {
    check::<ReplyTo<u64>, u64, u64>(4, |requests, writer, syncer| {
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
