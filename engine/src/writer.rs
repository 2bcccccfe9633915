//! The single writer thread: drains the appenders' queue into group commits, orders and
//! writes every record, syncs per policy, advances the watermarks and answers appenders.
//!
//! Invariants: global sequences are assigned here only, contiguously; a lane's sequence
//! is assigned here only, contiguously; a request that fails validation writes nothing;
//! an atomic unit (one record or one batch) goes to the log in one `Wal::append`; after
//! the first failed write or sync the writer writes nothing more (poisoned) and answers
//! every request with that failure.

use crate::error::{AppendError, SyncError, WriterFailure, WriterInvariant};
use crate::forward::Publisher;
use crate::handoff::ReplyTo;
use crate::holder::Validity;
use crate::inbox::Event;
use crate::index::LaneIndex;
use crate::options::{Options, SyncPolicy, Visibility};
use crate::record::{Append, BatchEntry, Receipt};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use tidelog_wal::{io::Storage, AppendError as WalAppendError, NewFrame, SyncJob, Wal};
use tidelog_watermarks::{
    GlobalSeq, HlcPoint, LaneId, LaneSeq, WatermarkAdvanceHandle, WatermarkState,
};

/// What appenders ask of the writer.
#[derive(Debug)]
pub(crate) enum Request {
    Append {
        append: Append,
        reply: ReplyTo<Result<Receipt, AppendError>>,
    },
    Batch {
        entries: Vec<BatchEntry>,
        /// Answered only once the whole batch is durable.
        durable: bool,
        reply: ReplyTo<Result<Vec<Receipt>, AppendError>>,
    },
    Sync {
        reply: ReplyTo<Result<HlcPoint, SyncError>>,
    },
    Close {
        reply: ReplyTo<Result<(), SyncError>>,
    },
    /// Nothing to do but look at the state again (sent when the lease is lost).
    Wake,
}

impl Request {
    fn payload_bytes(&self) -> u64 {
        match self {
            Request::Append { append, .. } => append.payload.len() as u64,
            Request::Batch { entries, .. } => entries.iter().map(|e| e.payload.len() as u64).sum(),
            Request::Sync { .. } | Request::Close { .. } | Request::Wake => 0,
        }
    }
}

/// State shared by the engine handle and the writer thread.
#[derive(Debug, Default)]
pub(crate) struct Status {
    /// The first failure, once poisoned.
    pub(crate) poison: OnceLock<Arc<WriterFailure>>,
    /// Global visible sequence, published after each advance (readers avoid the lock).
    pub(crate) visible_seq: AtomicU64,
    /// Number of successful syncs (for stats).
    pub(crate) syncs: AtomicU64,
    /// Number of group commits (for stats).
    pub(crate) groups: AtomicU64,
    /// Idempotency keys the writer remembers (published after each group).
    pub(crate) idempotency_keys: AtomicU64,
}

/// Counters the writer keeps.
pub(crate) struct Writer<S: Storage> {
    pub(crate) wal: Wal<S>,
    pub(crate) marks: WatermarkAdvanceHandle,
    pub(crate) index: Arc<LaneIndex>,
    pub(crate) status: Arc<Status>,
    pub(crate) options: Options,
    pub(crate) heads: HashMap<LaneId, LaneSeq>,
    /// The head of a lane not in `heads`: above every lane sequence an accepted loss may
    /// have taken from it (0 without one).
    pub(crate) lane_floor: LaneSeq,
    /// Idempotency keys of the records still in the log (the window), with their receipts.
    pub(crate) keys: HashMap<Vec<u8>, Receipt>,
    /// The same keys in global-sequence order, so that keys of records truncated from the
    /// log are dropped in O(dropped).
    pub(crate) key_order: VecDeque<(GlobalSeq, Vec<u8>)>,
    pub(crate) next_seq: GlobalSeq,
    pub(crate) last_written: HlcPoint,
    pub(crate) unsynced_records: u64,
    pub(crate) oldest_unsynced: Option<Instant>,
    /// The point the sync in flight will make durable.
    pub(crate) in_flight: Option<HlcPoint>,
    /// `sync()` calls waiting for a sequence to be durable.
    pub(crate) sync_waiters: Vec<(GlobalSeq, ReplyTo<Result<HlcPoint, SyncError>>)>,
    /// Durable appends written and waiting for the sync that covers them.
    pub(crate) durable_replies: Vec<Answer<Receipt>>,
    /// Durable batches written and waiting for the sync that covers them.
    pub(crate) durable_batches: Vec<Answer<Vec<Receipt>>>,
    /// Group forming: durable appends the last sync answered plus those still waiting
    /// then (the appenders in circulation), and until when the next sync may wait for
    /// them to come back.
    pub(crate) gather: Option<(usize, Instant)>,
    /// How long the last sync took, and when the one in flight started.
    pub(crate) last_sync: Duration,
    /// Per-sync counts for the metrics (nothing without the `metrics` feature).
    pub(crate) meter: crate::observe::SyncMeter,
    pub(crate) sync_started: Option<Instant>,
    /// Set by `Close` (with its reply) or when every sender is gone (`None`).
    pub(crate) closing: Option<Option<ReplyTo<Result<(), SyncError>>>>,
    /// Whether the writer lease is still ours; checked before every write and before
    /// durability is acknowledged.
    pub(crate) validity: Arc<Validity>,
    /// Where followers in other processes read the watermarks.
    pub(crate) publisher: Option<Publisher>,
    /// Batches stored in the log, kept until the appenders waiting are answered: freeing
    /// a batch's payloads (one allocation per record) then is off their path.
    pub(crate) spent: Vec<Vec<BatchEntry>>,
}

/// Where the writer starts: the log's state as recovery left it.
pub(crate) struct Start {
    /// The last record in the log (or the checkpoint's point, for an empty log).
    pub(crate) last: HlcPoint,
    /// The lanes' heads, and the head of every lane not among them (see `Writer::heads`).
    pub(crate) heads: HashMap<LaneId, LaneSeq>,
    pub(crate) lane_floor: LaneSeq,
    /// The idempotency keys of the records in the log, and the same keys in order.
    pub(crate) keys: HashMap<Vec<u8>, Receipt>,
    pub(crate) key_order: VecDeque<(GlobalSeq, Vec<u8>)>,
}

/// What the writer shares with the engine handle (and, for `publisher`, with followers).
pub(crate) struct Shared {
    pub(crate) marks: WatermarkAdvanceHandle,
    pub(crate) index: Arc<LaneIndex>,
    pub(crate) status: Arc<Status>,
    pub(crate) validity: Arc<Validity>,
    pub(crate) publisher: Option<Publisher>,
}

impl<S: Storage> Writer<S> {
    /// A writer over the recovered `wal`, continuing from `start`, with nothing written,
    /// in flight or waiting yet.
    pub(crate) fn new(wal: Wal<S>, options: Options, shared: Shared, start: Start) -> Self {
        let Shared {
            marks,
            index,
            status,
            validity,
            publisher,
        } = shared;
        Writer {
            wal,
            marks,
            index,
            status,
            options,
            heads: start.heads,
            lane_floor: start.lane_floor,
            keys: start.keys,
            key_order: start.key_order,
            next_seq: start.last.seq(),
            last_written: start.last,
            unsynced_records: 0,
            oldest_unsynced: None,
            in_flight: None,
            sync_waiters: Vec::new(),
            durable_replies: Vec::new(),
            durable_batches: Vec::new(),
            gather: None,
            last_sync: Duration::ZERO,
            meter: crate::observe::SyncMeter::default(),
            sync_started: None,
            closing: None,
            validity,
            publisher,
            spent: Vec::new(),
        }
    }
}

/// A reply slot and the answer it will get.
pub(crate) type Answer<T> = (ReplyTo<Result<T, AppendError>>, Result<T, AppendError>);

/// Replies held back until the group's records are written.
#[derive(Default)]
struct Outbox {
    appends: Vec<Answer<Receipt>>,
    /// Written appends that are answered once durable.
    durable: Vec<Answer<Receipt>>,
    batches: Vec<Answer<Vec<Receipt>>>,
    /// Written batches that are answered once durable.
    durable_batches: Vec<Answer<Vec<Receipt>>>,
    written: Vec<Receipt>,
}

/// A finished sync job and its outcome, from the syncer thread back to the writer.
pub(crate) type Done<S> = (SyncJob<S>, std::io::Result<()>);

/// The appenders' end of the writer's inbox.
pub(crate) type Requests<S> = crate::inbox::Sender<Request, SyncJob<S>, Done<S>>;
/// The writer's end of its inbox.
pub(crate) type Inbox<S> = crate::inbox::Inbox<Request, SyncJob<S>, Done<S>>;

/// The writer's inbox: the appenders' end, the writer's and the syncer's.
pub(crate) fn inbox<S: Storage>(
    capacity: usize,
) -> crate::inbox::Ends<Request, SyncJob<S>, Done<S>> {
    crate::inbox::inbox(capacity)
}

impl<S: Storage> Writer<S> {
    /// Runs until a `Close` request (or until every sender is gone) and everything
    /// written is durable or the log is poisoned. A syncer thread runs each fdatasync
    /// while this thread writes the next group: two groups in flight, one syncing.
    pub(crate) fn run(
        mut self,
        inbox: Inbox<S>,
        syncer: crate::inbox::Syncer<Request, SyncJob<S>, Done<S>>,
    ) {
        // `inbox` moves into the scope's closure: however `serve` ends, it is dropped
        // before the scope joins the syncer, and its drop is what stops the syncer.
        std::thread::scope(move |scope| {
            scope.spawn(move || {
                syncer.serve(|job: SyncJob<S>| {
                    let result = job.run();
                    (job, result)
                });
            });
            self.serve(&inbox);
        });
    }

    fn serve(&mut self, inbox: &Inbox<S>) {
        loop {
            // With requests waiting, sync on the syncer thread and write them meanwhile;
            // with none, sync here and save two thread hops.
            self.answer_waiters();
            self.start_sync_if_due(inbox);
            self.answer_waiters();
            if self.finished() {
                let result = self.sync_result().map(|_| ());
                if result.is_ok() {
                    // Best effort: a record left older than the log claims less than it
                    // holds, which never makes an open refuse or hide a loss.
                    let _ = self.wal.record_extent();
                }
                if let Some(Some(reply)) = self.closing.take() {
                    reply.send(result);
                }
                return;
            }
            self.spent.clear();
            match inbox.wait(self.closing.is_none(), self.sync_deadline()) {
                Event::Completion((job, result)) => self.complete_sync(job, result),
                // The syncer only stops once this loop is over; gone now, it panicked.
                Event::SyncerGone => return,
                Event::Request(first) => self.commit_group(first, inbox),
                Event::SendersGone => self.closing = Some(None),
                Event::TimedOut => {}
            }
        }
    }

    /// Closing, nothing in flight, and nothing more to sync (or no way to sync it).
    fn finished(&self) -> bool {
        self.closing.is_some()
            && self.in_flight.is_none()
            && (self.unsynced_records == 0 || self.status.poison.get().is_some())
    }

    /// When a sync must start even if no request arrives: the interval policy's
    /// deadline, or the end of group forming.
    fn sync_deadline(&self) -> Option<Instant> {
        if self.in_flight.is_some() || self.unsynced_records == 0 {
            return None;
        }
        match (self.options.sync_policy, self.oldest_unsynced) {
            (SyncPolicy::EveryInterval(interval), Some(oldest)) => Some(oldest + interval),
            _ => self.gather.map(|(_, until)| until),
        }
    }

    /// Whether to hold the sync back for durable appenders expected back shortly.
    fn gathering(&self) -> bool {
        self.gather.is_some_and(|(expected, until)| {
            self.durable_replies.len() < expected && Instant::now() < until
        })
    }

    /// Writes and answers one group: `first` and whatever else is queued, bounded by
    /// count and bytes.
    fn commit_group(&mut self, first: Request, inbox: &Inbox<S>) {
        self.status.groups.fetch_add(1, Ordering::Relaxed);
        self.forget_truncated_keys();
        crate::observe::metric!(metrics::gauge!("tidelog_queue_depth").set(inbox.len() as f64));
        self.check_lease();
        let mut out = Outbox::default();
        let wall_ms = self.marks.lock().stamp(self.next_seq.next()).wall_ms;
        let mut bytes = 0;
        let mut next = Some(first);
        let mut taken = 0;
        while let Some(request) = next.take() {
            taken += 1;
            bytes += request.payload_bytes();
            match request {
                Request::Append { append, reply } => {
                    let durable = append.is_durable();
                    let result = self.append_one(append, wall_ms, &mut out.written);
                    match result {
                        Ok(_) if durable => out.durable.push((reply, result)),
                        _ => out.appends.push((reply, result)),
                    }
                }
                Request::Batch {
                    entries,
                    durable,
                    reply,
                } => {
                    let result = self.append_batch(&entries, wall_ms, &mut out.written);
                    self.spent.push(entries);
                    match result {
                        Ok(_) if durable => out.durable_batches.push((reply, result)),
                        _ => out.batches.push((reply, result)),
                    }
                }
                Request::Sync { reply } => self.sync_waiters.push((self.next_seq, reply)),
                Request::Close { reply } => {
                    self.closing = Some(Some(reply));
                    break;
                }
                Request::Wake => {}
            }
            if taken < self.options.max_group_requests && bytes < self.options.max_group_bytes {
                next = inbox.next_request();
            }
        }
        // One store for the whole group; if it fails nothing of the group is written. A
        // broken invariant in the group stores nothing of it either.
        if !out.written.is_empty() {
            let stored = match self.broken() {
                Some(failed) => Err(failed),
                None => self
                    .wal
                    .flush()
                    .map_err(|err| self.poison(WriterFailure::Append(err))),
            };
            if let Err(failed) = stored {
                out.appends.append(&mut out.durable);
                out.batches.append(&mut out.durable_batches);
                for (_, result) in &mut out.appends {
                    *result = Err(failed.clone());
                }
                for (_, result) in &mut out.batches {
                    *result = Err(failed.clone());
                }
                out.written.clear();
            }
        }
        self.publish_written(&out.written);
        self.meter.group(taken, out.written.len(), bytes);
        for (reply, result) in out.appends {
            reply.send(result);
        }
        for (reply, result) in out.batches {
            reply.send(result);
        }
        self.durable_replies.append(&mut out.durable);
        self.durable_batches.append(&mut out.durable_batches);
    }

    /// Drops the idempotency keys of records no longer in the log (truncation moved its
    /// start past them): the window of remembered keys is the retained log.
    fn forget_truncated_keys(&mut self) {
        if let Some(&(oldest, _)) = self.key_order.front() {
            let starts_at = self.wal.reader().first_seq();
            if oldest < starts_at {
                while let Some((seq, key)) = self.key_order.pop_front() {
                    if seq >= starts_at {
                        self.key_order.push_front((seq, key));
                        break;
                    }
                    if self.keys.get(&key).is_some_and(|r| r.point.seq() == seq) {
                        self.keys.remove(&key);
                    }
                }
                if self.keys.capacity() > 2 * self.keys.len() + 1024 {
                    self.keys.shrink_to_fit();
                    self.key_order.shrink_to_fit();
                }
            }
        }
        self.status
            .idempotency_keys
            .store(self.keys.len() as u64, Ordering::Relaxed);
    }

    /// Fails closed once the lease is no longer ours: nothing more is written or
    /// acknowledged.
    fn check_lease(&mut self) -> bool {
        if self.validity.is_valid() {
            return true;
        }
        self.poison(WriterFailure::LeaseExpired);
        false
    }

    /// The poison, if an invariant broke: the group in hand must not be stored.
    fn broken(&self) -> Option<AppendError> {
        match self.status.poison.get() {
            Some(cause) if matches!(**cause, WriterFailure::Invariant { .. }) => {
                Some(AppendError::Poisoned {
                    cause: cause.clone(),
                })
            }
            _ => None,
        }
    }

    /// Poisons the writer for a broken invariant.
    fn violated(&mut self, invariant: WriterInvariant, log: Option<WalAppendError>) -> AppendError {
        self.poison(WriterFailure::Invariant { invariant, log })
    }

    fn poisoned(&self) -> Option<AppendError> {
        self.status.poison.get().map(|cause| AppendError::Poisoned {
            cause: cause.clone(),
        })
    }

    fn poison(&mut self, failure: WriterFailure) -> AppendError {
        crate::observe::metric!(if self.status.poison.get().is_none() {
            let cause = crate::observe::cause(&failure);
            metrics::counter!("tidelog_poison_events_total", "cause" => cause).increment(1);
        });
        let cause = self.status.poison.get_or_init(|| Arc::new(failure)).clone();
        self.marks.mark_writer_crashed();
        AppendError::Poisoned { cause }
    }

    fn append_one(
        &mut self,
        record: Append,
        wall_ms: u64,
        written: &mut Vec<Receipt>,
    ) -> Result<Receipt, AppendError> {
        if let Some(err) = self.poisoned() {
            return Err(err);
        }
        if !record.key.is_empty() {
            if let Some(receipt) = self.keys.get(&record.key) {
                return Ok(*receipt);
            }
        }
        let actual = self.head(record.lane);
        if let Some(expected) = record.expected {
            if expected != actual {
                return Err(AppendError::Conflict {
                    lane: record.lane,
                    expected,
                    actual,
                });
            }
        }
        let receipt = Receipt {
            lane: record.lane,
            lane_seq: actual.next(),
            point: HlcPoint::new(wall_ms, self.next_seq.next()),
        };
        let frame = frame_of(&receipt, &record.key, &record.payload);
        self.write_unit(&[frame])?;
        self.accept(std::slice::from_ref(&receipt), written)?;
        if !record.key.is_empty() {
            self.key_order
                .push_back((receipt.point.seq(), record.key.clone()));
            self.keys.insert(record.key, receipt);
        }
        Ok(receipt)
    }

    fn append_batch(
        &mut self,
        entries: &[BatchEntry],
        wall_ms: u64,
        written: &mut Vec<Receipt>,
    ) -> Result<Vec<Receipt>, AppendError> {
        if let Some(err) = self.poisoned() {
            return Err(err);
        }
        // Validate and number the whole batch before writing any of it. A run of entries
        // on one lane (a whole batch, usually) looks its lane's head up once.
        let mut heads: HashMap<LaneId, LaneSeq> = HashMap::new();
        let mut seq = self.next_seq;
        let mut receipts = Vec::with_capacity(entries.len());
        for run in entries.chunk_by(|a, b| a.lane == b.lane) {
            let Some(lane) = run.first().map(|e| e.lane) else {
                continue;
            };
            let mut actual = heads.get(&lane).copied().unwrap_or_else(|| self.head(lane));
            for entry in run {
                if let Some(expected) = entry.expected_lane_seq {
                    if expected != actual {
                        return Err(AppendError::Conflict {
                            lane,
                            expected,
                            actual,
                        });
                    }
                }
                seq = seq.next();
                actual = actual.next();
                receipts.push(Receipt {
                    lane,
                    lane_seq: actual,
                    point: HlcPoint::new(wall_ms, seq),
                });
            }
            heads.insert(lane, actual);
        }
        let frames: Vec<NewFrame<'_>> = receipts
            .iter()
            .zip(entries)
            .map(|(receipt, entry)| frame_of(receipt, &[], &entry.payload))
            .collect();
        self.write_unit(&frames)?;
        self.accept(&receipts, written)?;
        Ok(receipts)
    }

    fn head(&self, lane: LaneId) -> LaneSeq {
        self.heads.get(&lane).copied().unwrap_or(self.lane_floor)
    }

    fn write_unit(&mut self, frames: &[NewFrame<'_>]) -> Result<(), AppendError> {
        match self.wal.append_buffered(frames) {
            Ok(()) => Ok(()),
            // Misuse cannot reach the log: the engine validated the unit with the log's
            // own rule (`Engine::append_with`) and numbered it itself. A refusal here is a
            // bug, and the writer stops rather than go on around it.
            Err(
                err @ (WalAppendError::UnitTooLarge { .. }
                | WalAppendError::KeyTooLong { .. }
                | WalAppendError::RecordTooLarge { .. }
                | WalAppendError::EmptyUnit
                | WalAppendError::SequenceOutOfOrder { .. }),
            ) => Err(self.violated(WriterInvariant::ValidatedUnitAccepted, Some(err))),
            // A full disk when the next segment is needed: the log wrote nothing of this
            // unit and is not poisoned; the append can succeed once there is room.
            Err(WalAppendError::NoSpace { dir, needed }) => {
                Err(AppendError::NoSpace { dir, needed })
            }
            Err(err) => Err(self.poison(WriterFailure::Append(err))),
        }
    }

    /// Takes a written unit's receipts as the new last ones. Used here, produced where
    /// the unit was numbered: they follow the last global sequence and, lane by lane,
    /// the last lane sequences. A run of receipts on one lane reads and stores its
    /// lane's head once.
    fn accept(
        &mut self,
        receipts: &[Receipt],
        written: &mut Vec<Receipt>,
    ) -> Result<(), AppendError> {
        for run in receipts.chunk_by(|a, b| a.lane == b.lane) {
            let Some(last) = run.last() else {
                continue;
            };
            let (mut seq, mut head) = (self.next_seq, self.head(last.lane));
            for receipt in run {
                if receipt.point.seq() != seq.next() || receipt.lane_seq != head.next() {
                    return Err(self.violated(WriterInvariant::SequencesContiguous, None));
                }
                (seq, head) = (receipt.point.seq(), receipt.lane_seq);
            }
            self.next_seq = seq;
            self.heads.insert(last.lane, head);
            self.last_written = last.point;
            self.unsynced_records += run.len() as u64;
            self.oldest_unsynced.get_or_insert_with(Instant::now);
            written.extend_from_slice(run);
        }
        Ok(())
    }

    /// Makes the group's records readable through the index and advances accepted and
    /// written (and visible, under `Visibility::Written`).
    fn publish_written(&mut self, written: &[Receipt]) {
        if written.is_empty() {
            return;
        }
        self.index
            .extend(written.iter().map(|r| (r.lane, r.lane_seq, r.point.seq())));
        let mut marks = self.marks.lock();
        // A run of records on one lane moves the lane's frontiers once, to its last point,
        // which covers the others. Exact: a sync (the durable point) never ends inside a
        // group, so no lane's durable frontier could have stopped inside the run.
        for run in written.chunk_by(|a, b| a.lane == b.lane) {
            if let Some(last) = run.last() {
                marks.advance_accepted_on_lane(last.lane, last.point);
                marks.advance_written_on_lane(last.lane, last.point);
            }
        }
        if self.options.visibility == Visibility::Written {
            self.publish(marks, Some(self.last_written));
        }
    }

    /// The one place the visible watermark moves and the watermarks leave the process:
    /// makes `visible` (if any) visible and emitted, tells this process's readers (the
    /// visible sequence they read without the lock) and then, with the lock released,
    /// followers in other processes (the watermarks file).
    fn publish(
        &self,
        mut marks: impl std::ops::DerefMut<Target = WatermarkState>,
        visible: Option<HlcPoint>,
    ) {
        if let Some(point) = visible {
            marks.advance_visible_and_emitted(point);
            self.status
                .visible_seq
                .store(point.global_sequence, Ordering::Release);
        }
        let global = marks.snapshot();
        drop(marks);
        if let Some(publisher) = &self.publisher {
            publisher.publish(global);
        }
    }

    /// Policies under which a record may wait for a sync for ever: a durable append
    /// there gets a sync of its own rather than hang.
    fn policy_has_no_deadline(&self) -> bool {
        matches!(
            self.options.sync_policy,
            SyncPolicy::Never | SyncPolicy::EveryRecords(_)
        )
    }

    fn policy_wants_sync(&self) -> bool {
        match self.options.sync_policy {
            SyncPolicy::EveryGroup => true,
            SyncPolicy::EveryRecords(n) => self.unsynced_records >= u64::from(n),
            SyncPolicy::EveryInterval(interval) => self
                .oldest_unsynced
                .is_some_and(|oldest| oldest.elapsed() >= interval),
            SyncPolicy::Never => false,
        }
    }

    /// Starts a sync of everything written, if none is in flight and the policy, a
    /// `sync()` call or closing asks for one: on this thread when no request waits, else
    /// on the syncer.
    fn start_sync_if_due(&mut self, inbox: &Inbox<S>) {
        if self.in_flight.is_some()
            || self.unsynced_records == 0
            || self.status.poison.get().is_some()
        {
            return;
        }
        let forced = self.closing.is_some()
            || !self.sync_waiters.is_empty()
            || ((!self.durable_replies.is_empty() || !self.durable_batches.is_empty())
                && self.policy_has_no_deadline());
        if !forced && (!self.policy_wants_sync() || self.gathering()) {
            return;
        }
        match self.wal.begin_sync() {
            // Produced here, used at `complete_sync`: the sync covers the last write.
            Ok(Some(job)) if job.upto() != self.last_written.seq() => {
                self.violated(WriterInvariant::SyncWithinWritten, None);
            }
            Ok(Some(job)) => {
                self.in_flight = Some(self.last_written);
                self.gather = None;
                self.sync_started = Some(Instant::now());
                self.unsynced_records = 0;
                self.oldest_unsynced = None;
                self.meter.sync_started();
                if inbox.is_empty() {
                    let result = job.run();
                    self.complete_sync(job, result);
                    return;
                }
                // At most one job in flight. With the syncer gone the job is dropped
                // unfinished and the next wait says so.
                inbox.hand_over(job);
            }
            Ok(None) => {}
            Err(err) => {
                self.poison(WriterFailure::Sync(err));
            }
        }
    }

    /// Records a finished sync: advances durable (and visible under
    /// `Visibility::Durable`), or poisons the writer. A failed sync is never retried.
    fn complete_sync(&mut self, job: SyncJob<S>, result: std::io::Result<()>) {
        let Some(point) = self.in_flight.take() else {
            return;
        };
        if let Some(started) = self.sync_started.take() {
            self.last_sync = started.elapsed();
        }
        if !self.check_lease() {
            return;
        }
        match self.wal.finish_sync(job, result) {
            // Used here, produced at `start_sync_if_due`: the log is durable at least up
            // to the point, which was written.
            Ok(durable) if durable < point.seq() || point.seq() > self.last_written.seq() => {
                self.violated(WriterInvariant::SyncWithinWritten, None);
            }
            Ok(durable) => {
                self.status.syncs.fetch_add(1, Ordering::Relaxed);
                self.meter.synced(self.last_sync);
                let mut marks = self.marks.lock();
                marks.advance_durable(point);
                let visible = match self.options.visibility {
                    Visibility::Durable if point.seq() > durable => {
                        drop(marks);
                        self.violated(WriterInvariant::VisibleWithinDurable, None);
                        return;
                    }
                    Visibility::Durable => Some(point),
                    Visibility::Written => None,
                };
                self.publish(marks, visible);
            }
            Err(err) => {
                self.poison(WriterFailure::Sync(err));
            }
        }
    }

    /// Answers the `sync()` calls and durable appends whose records are now durable, or
    /// all of them, with the failure, once poisoned.
    fn answer_waiters(&mut self) {
        if self.sync_waiters.is_empty()
            && self.durable_replies.is_empty()
            && self.durable_batches.is_empty()
        {
            return;
        }
        let durable = self.marks.lock().snapshot().durable_hlc.seq();
        let poison = self.poisoned();
        let covered = |seq: GlobalSeq| poison.is_some() || seq <= durable;
        if !self.durable_replies.is_empty() {
            let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.durable_replies)
                .into_iter()
                .partition(|(_, result)| result.as_ref().is_ok_and(|r| covered(r.point.seq())));
            self.durable_replies = waiting;
            let delay = self.options.max_group_delay.min(self.last_sync);
            if poison.is_none() && ready.len() > 1 && !delay.is_zero() {
                let circulating = ready.len() + self.durable_replies.len();
                self.gather = Some((circulating, Instant::now() + delay));
            }
            for (reply, result) in ready {
                reply.send(match &poison {
                    Some(err) => Err(err.clone()),
                    None => result,
                });
            }
        }
        if !self.durable_batches.is_empty() {
            let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.durable_batches)
                .into_iter()
                .partition(|(_, result)| {
                    result
                        .as_ref()
                        .is_ok_and(|r| r.last().is_none_or(|last| covered(last.point.seq())))
                });
            self.durable_batches = waiting;
            for (reply, result) in ready {
                reply.send(match &poison {
                    Some(err) => Err(err.clone()),
                    None => result,
                });
            }
        }
        if !self.sync_waiters.is_empty() {
            let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.sync_waiters)
                .into_iter()
                .partition(|(target, _)| covered(*target));
            self.sync_waiters = waiting;
            for (_, reply) in ready {
                reply.send(self.sync_result());
            }
        }
    }

    fn sync_result(&self) -> Result<HlcPoint, SyncError> {
        match self.status.poison.get() {
            Some(cause) => Err(SyncError::Poisoned {
                cause: cause.clone(),
            }),
            None => Ok(self.marks.lock().snapshot().durable_hlc),
        }
    }
}

fn frame_of<'a>(receipt: &Receipt, key: &'a [u8], payload: &'a [u8]) -> NewFrame<'a> {
    NewFrame {
        global_seq: receipt.point.seq(),
        lane: receipt.lane,
        lane_seq: receipt.lane_seq,
        wall_ms: receipt.point.wall_ms,
        key,
        payload,
    }
}
