//! The writer thread's one inbox, and its hand-off of sync jobs to the syncer thread.
//!
//! The writer waits on exactly one thing, this inbox: appenders queue their requests in
//! it ([`Sender`], bounded: a full inbox blocks [`Sender::send`] and refuses
//! [`Sender::try_send`]), and the syncer thread ([`Syncer::serve`]) puts there the outcome
//! of the sync job the writer handed it ([`Inbox::hand_over`]). One mutex guards it all,
//! with one condition variable per kind of waiter: the writer, the syncer, and senders
//! blocked on a full inbox. Built on the watermarks crate's `sync` shim, so the loom
//! models in `tests/loom_writer_syncer.rs` check this very code.
//!
//! Invariants:
//! - Everything the writer may wait for (a request queued, a completion, the last sender
//!   gone, the syncer gone) is changed under the lock and notifies the writer's condition
//!   variable; [`Inbox::wait`] looks at all of them under the same lock before it parks.
//!   So the writer never parks while a request or a completion is pending.
//! - At most one sync job and one completion exist at a time: the writer keeps one sync
//!   in flight and hands over the next only after it took the last one's completion.
//! - The syncer takes every job handed over and puts its completion in the inbox, unless
//!   the writer stopped first; if the syncer stops (its thread returned or panicked), the
//!   writer's wait reports [`Event::SyncerGone`] instead of hanging.
//! - When the writer's end is dropped (it stopped), the requests still queued are dropped
//!   (their reply slots wake their appenders with nothing), blocked senders wake and get
//!   their request back, and the syncer returns.

use std::collections::VecDeque;
use std::time::{Duration, Instant};
use tidelog_watermarks::sync::{Arc, Condvar, Mutex, MutexGuard};

/// How long one untimed park lasts before the waiter looks again (a bound, not a poll:
/// every change it waits for notifies it).
const LONG_PARK: Duration = Duration::from_secs(3600);

#[derive(Debug)]
struct State<R, J, D> {
    requests: VecDeque<R>,
    /// Live [`Sender`]s; the last one dropped is the writer's [`Event::SendersGone`].
    senders: usize,
    /// Senders parked on a full inbox (each freed place wakes one).
    blocked_senders: usize,
    /// The sync job handed over and not yet taken by the syncer.
    job: Option<J>,
    /// The syncer's outcome of the last job, not yet taken by the writer.
    completion: Option<D>,
    writer_gone: bool,
    syncer_gone: bool,
}

#[derive(Debug)]
struct Shared<R, J, D> {
    state: Mutex<State<R, J, D>>,
    /// Most requests queued at once (at least 1).
    capacity: usize,
    /// Only the writer waits here.
    writer: Condvar,
    /// Only the syncer waits here.
    syncer: Condvar,
    /// Senders blocked on a full inbox wait here.
    room: Condvar,
}

impl<R, J, D> Shared<R, J, D> {
    fn lock(&self) -> MutexGuard<'_, State<R, J, D>> {
        self.state.lock()
    }

    /// Takes the oldest request, waking one sender blocked on the place it frees.
    fn pop(&self, state: &mut State<R, J, D>) -> Option<R> {
        let request = state.requests.pop_front()?;
        if state.blocked_senders > 0 {
            self.room.notify_one();
        }
        Some(request)
    }
}

/// The three ends of one inbox: the appenders' (clone it per appender), the writer's
/// and the syncer's.
pub type Ends<R, J, D> = (Sender<R, J, D>, Inbox<R, J, D>, Syncer<R, J, D>);

/// A new inbox holding at most `capacity` requests (at least one), and its three ends.
pub fn inbox<R, J, D>(capacity: usize) -> Ends<R, J, D> {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            requests: VecDeque::new(),
            senders: 1,
            blocked_senders: 0,
            job: None,
            completion: None,
            writer_gone: false,
            syncer_gone: false,
        }),
        capacity: capacity.max(1),
        writer: Condvar::new(),
        syncer: Condvar::new(),
        room: Condvar::new(),
    });
    (
        Sender {
            shared: shared.clone(),
        },
        Inbox {
            shared: shared.clone(),
        },
        Syncer { shared },
    )
}

/// Why [`Sender::try_send`] gave the request back.
#[derive(Debug, PartialEq, Eq)]
pub enum TrySendError<R> {
    /// The inbox holds as many requests as it may.
    Full(R),
    /// The writer stopped; nothing will take the request.
    Gone(R),
}

/// The appenders' end: queues requests for the writer.
#[derive(Debug)]
pub struct Sender<R, J, D> {
    shared: Arc<Shared<R, J, D>>,
}

impl<R, J, D> Clone for Sender<R, J, D> {
    fn clone(&self) -> Self {
        self.shared.lock().senders += 1;
        Sender {
            shared: self.shared.clone(),
        }
    }
}

impl<R, J, D> Drop for Sender<R, J, D> {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.senders -= 1;
        if state.senders == 0 {
            self.shared.writer.notify_one();
        }
    }
}

impl<R, J, D> Sender<R, J, D> {
    /// Queues `request`, blocking while the inbox is full; gives it back if the writer
    /// stopped (before or while this waited).
    ///
    /// # Errors
    /// The request, when the writer is gone.
    pub fn send(&self, request: R) -> Result<(), R> {
        let mut state = self.shared.lock();
        loop {
            if state.writer_gone {
                return Err(request);
            }
            if state.requests.len() < self.shared.capacity {
                state.requests.push_back(request);
                self.shared.writer.notify_one();
                return Ok(());
            }
            state.blocked_senders += 1;
            state = self
                .shared
                .room
                .wait_until(state, Instant::now() + LONG_PARK)
                .0;
            state.blocked_senders -= 1;
        }
    }

    /// Queues `request` if there is room and the writer still runs, without blocking.
    ///
    /// # Errors
    /// [`TrySendError::Full`] or [`TrySendError::Gone`], with the request.
    pub fn try_send(&self, request: R) -> Result<(), TrySendError<R>> {
        let mut state = self.shared.lock();
        if state.writer_gone {
            return Err(TrySendError::Gone(request));
        }
        if state.requests.len() >= self.shared.capacity {
            return Err(TrySendError::Full(request));
        }
        state.requests.push_back(request);
        self.shared.writer.notify_one();
        Ok(())
    }

    /// Requests queued right now.
    pub fn len(&self) -> usize {
        self.shared.lock().requests.len()
    }
}

/// What the writer's [`Inbox::wait`] found, in the order it looks.
#[derive(Debug, PartialEq, Eq)]
pub enum Event<R, D> {
    /// The syncer's outcome of the job handed over.
    Completion(D),
    /// The syncer thread stopped (it only does once the writer stopped, or by a panic):
    /// no completion will come.
    SyncerGone,
    /// The oldest queued request.
    Request(R),
    /// No request is queued and every sender is gone: none will come.
    SendersGone,
    /// The deadline passed with nothing of the above.
    TimedOut,
}

/// The writer's end: waits for requests and completions, hands sync jobs to the syncer.
/// Dropping it stops the syncer and tells the senders the writer is gone.
#[derive(Debug)]
pub struct Inbox<R, J, D> {
    shared: Arc<Shared<R, J, D>>,
}

impl<R, J, D> Inbox<R, J, D> {
    /// Blocks until there is something to do, or `deadline` (none: no deadline). Looks
    /// for, in order: a completion, the syncer gone, then (with `requests`; a closing
    /// writer takes no more) a request, every sender gone.
    pub fn wait(&self, requests: bool, deadline: Option<Instant>) -> Event<R, D> {
        let mut state = self.shared.lock();
        loop {
            if let Some(done) = state.completion.take() {
                return Event::Completion(done);
            }
            if state.syncer_gone {
                return Event::SyncerGone;
            }
            if requests {
                if let Some(request) = self.shared.pop(&mut state) {
                    return Event::Request(request);
                }
                if state.senders == 0 {
                    return Event::SendersGone;
                }
            }
            let now = Instant::now();
            let until = match deadline {
                Some(deadline) if deadline <= now => return Event::TimedOut,
                Some(deadline) => deadline,
                None => now + LONG_PARK,
            };
            state = self.shared.writer.wait_until(state, until).0;
        }
    }

    /// The oldest queued request, without blocking (to fill a group).
    pub fn next_request(&self) -> Option<R> {
        let mut state = self.shared.lock();
        self.shared.pop(&mut state)
    }

    /// Requests queued right now.
    pub fn len(&self) -> usize {
        self.shared.lock().requests.len()
    }

    /// Whether no request is queued right now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Gives `job` to the syncer; its completion comes back through [`Inbox::wait`]. With
    /// the syncer gone the job is dropped unrun, and `wait` says [`Event::SyncerGone`].
    pub fn hand_over(&self, job: J) {
        let mut state = self.shared.lock();
        if state.syncer_gone {
            drop(state);
            drop(job);
            return;
        }
        debug_assert!(
            state.job.is_none() && state.completion.is_none(),
            "one sync in flight at a time"
        );
        state.job = Some(job);
        self.shared.syncer.notify_one();
    }
}

impl<R, J, D> Drop for Inbox<R, J, D> {
    fn drop(&mut self) {
        let (discarded, job) = {
            let mut state = self.shared.lock();
            state.writer_gone = true;
            self.shared.syncer.notify_one();
            for _ in 0..state.blocked_senders {
                self.shared.room.notify_one();
            }
            (std::mem::take(&mut state.requests), state.job.take())
        };
        // Outside the lock: dropping a request abandons its reply slot, which wakes its
        // appender.
        drop(discarded);
        drop(job);
    }
}

/// The syncer thread's end: runs the jobs the writer hands over. Dropping it (the
/// thread returned or unwound) wakes the writer with [`Event::SyncerGone`].
#[derive(Debug)]
pub struct Syncer<R, J, D> {
    shared: Arc<Shared<R, J, D>>,
}

impl<R, J, D> Syncer<R, J, D> {
    /// Runs each job handed over with `run` and puts its outcome in the inbox, until the
    /// writer is gone.
    pub fn serve(self, mut run: impl FnMut(J) -> D) {
        while let Some(job) = self.next_job() {
            let done = run(job);
            let mut state = self.shared.lock();
            if state.writer_gone {
                return;
            }
            debug_assert!(state.completion.is_none(), "one sync in flight at a time");
            state.completion = Some(done);
            self.shared.writer.notify_one();
        }
    }

    /// The next job, or `None` once the writer is gone.
    fn next_job(&self) -> Option<J> {
        let mut state = self.shared.lock();
        loop {
            if state.writer_gone {
                return None;
            }
            if let Some(job) = state.job.take() {
                return Some(job);
            }
            state = self
                .shared
                .syncer
                .wait_until(state, Instant::now() + LONG_PARK)
                .0;
        }
    }
}

impl<R, J, D> Drop for Syncer<R, J, D> {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.syncer_gone = true;
        self.shared.writer.notify_one();
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    type Ends = super::Ends<u32, u32, u32>;

    fn open(capacity: usize) -> Ends {
        inbox(capacity)
    }

    fn passed() -> Option<Instant> {
        Some(Instant::now())
    }

    #[test]
    fn requests_come_out_in_the_order_they_were_queued() {
        let (requests, writer, _syncer) = open(4);
        for request in 1..=3 {
            requests.send(request).unwrap();
        }
        assert_eq!(requests.len(), 3);
        assert_eq!(writer.wait(true, None), Event::Request(1));
        assert_eq!(writer.next_request(), Some(2));
        assert_eq!(writer.next_request(), Some(3));
        assert_eq!(writer.next_request(), None);
        assert!(writer.is_empty());
    }

    #[test]
    fn a_full_inbox_refuses_try_send_and_gives_the_request_back() {
        let (requests, writer, _syncer) = open(1);
        requests.try_send(1).unwrap();
        assert_eq!(requests.try_send(2), Err(TrySendError::Full(2)));
        assert_eq!(writer.next_request(), Some(1));
        requests.try_send(3).unwrap();
        assert_eq!(writer.len(), 1);
    }

    #[test]
    fn a_wait_with_nothing_pending_times_out_at_its_deadline() {
        let (_requests, writer, _syncer) = open(1);
        assert_eq!(writer.wait(true, passed()), Event::TimedOut);
        let started = Instant::now();
        let deadline = started + Duration::from_millis(20);
        assert_eq!(writer.wait(true, Some(deadline)), Event::TimedOut);
        assert!(Instant::now() >= deadline);
    }

    #[test]
    fn a_closing_writer_is_not_handed_requests() {
        let (requests, writer, _syncer) = open(2);
        requests.send(1).unwrap();
        assert_eq!(writer.wait(false, passed()), Event::TimedOut);
        assert_eq!(writer.wait(true, passed()), Event::Request(1));
    }

    #[test]
    fn a_closing_writer_still_gets_the_syncers_completion_with_requests_queued() {
        let (requests, writer, syncer) = open(2);
        requests.send(1).unwrap();
        writer.hand_over(7);
        let syncer = std::thread::spawn(move || syncer.serve(|job| job + 1));
        assert_eq!(writer.wait(false, None), Event::Completion(8));
        assert_eq!(writer.wait(true, passed()), Event::Request(1));
        drop(writer);
        syncer.join().unwrap();
    }

    #[test]
    fn the_last_sender_gone_is_reported_once_the_queue_is_drained() {
        let (requests, writer, _syncer) = open(2);
        let other = requests.clone();
        other.send(1).unwrap();
        drop(other);
        assert_eq!(writer.wait(true, passed()), Event::Request(1));
        assert_eq!(writer.wait(true, passed()), Event::TimedOut);
        drop(requests);
        assert_eq!(writer.wait(true, passed()), Event::SendersGone);
    }

    #[test]
    fn sends_after_the_writer_stopped_are_refused_with_the_request() {
        let (requests, writer, _syncer) = open(2);
        drop(writer);
        assert_eq!(requests.send(1), Err(1));
        assert_eq!(requests.try_send(2), Err(TrySendError::Gone(2)));
    }

    #[test]
    fn a_job_handed_to_a_gone_syncer_is_dropped_and_the_writer_told() {
        let (_requests, writer, syncer) = open(2);
        drop(syncer);
        writer.hand_over(1);
        assert_eq!(writer.wait(true, None), Event::SyncerGone);
    }
}
