//! The single writer thread: drains the appenders' queue into group commits, orders and
//! writes every record, syncs per policy, advances the watermarks and answers appenders.
//!
//! Invariants: global sequences are assigned here only, contiguously; a lane's sequence
//! is assigned here only, contiguously; a request that fails validation writes nothing;
//! an atomic unit (one record or one batch) goes to the log in one `Wal::append`; after
//! the first failed write or sync the writer writes nothing more (poisoned) and answers
//! every request with that failure.

use crate::error::{AppendError, SyncError, WriterFailure};
use crate::handoff::ReplyTo;
use crate::index::LaneIndex;
use crate::options::{Options, SyncPolicy, Visibility};
use crate::record::{BatchEntry, Receipt};
use crossbeam_channel::{Receiver, RecvTimeoutError};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;
use tidelog_wal::{io::Storage, NewFrame, Wal};
use tidelog_watermarks::{GlobalSeq, HlcPoint, LaneId, LaneSeq, WatermarkAdvanceHandle};

/// One record to append.
#[derive(Debug)]
pub(crate) struct AppendRecord {
    pub(crate) lane: LaneId,
    pub(crate) payload: Vec<u8>,
    pub(crate) key: Vec<u8>,
    pub(crate) expected: Option<LaneSeq>,
}

/// What appenders ask of the writer.
#[derive(Debug)]
pub(crate) enum Request {
    Append {
        record: AppendRecord,
        reply: ReplyTo<Result<Receipt, AppendError>>,
    },
    Batch {
        entries: Vec<BatchEntry>,
        reply: ReplyTo<Result<Vec<Receipt>, AppendError>>,
    },
    Sync {
        reply: ReplyTo<Result<HlcPoint, SyncError>>,
    },
    Close {
        reply: ReplyTo<Result<(), SyncError>>,
    },
}

impl Request {
    fn payload_bytes(&self) -> u64 {
        match self {
            Request::Append { record, .. } => record.payload.len() as u64,
            Request::Batch { entries, .. } => entries.iter().map(|e| e.payload.len() as u64).sum(),
            Request::Sync { .. } | Request::Close { .. } => 0,
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
}

/// Counters the writer keeps.
pub(crate) struct Writer<S: Storage> {
    pub(crate) wal: Wal<S>,
    pub(crate) marks: WatermarkAdvanceHandle,
    pub(crate) index: Arc<LaneIndex>,
    pub(crate) status: Arc<Status>,
    pub(crate) options: Options,
    pub(crate) heads: HashMap<LaneId, LaneSeq>,
    pub(crate) keys: HashMap<Vec<u8>, Receipt>,
    pub(crate) next_seq: GlobalSeq,
    pub(crate) last_written: HlcPoint,
    pub(crate) unsynced_records: u64,
    pub(crate) oldest_unsynced: Option<Instant>,
}

/// A reply slot and the answer it will get.
type Answer<T> = (ReplyTo<Result<T, AppendError>>, Result<T, AppendError>);

/// Replies held back until the group's records are written (appends) or synced (syncs).
#[derive(Default)]
struct Outbox {
    appends: Vec<Answer<Receipt>>,
    batches: Vec<Answer<Vec<Receipt>>>,
    syncs: Vec<ReplyTo<Result<HlcPoint, SyncError>>>,
    close: Option<ReplyTo<Result<(), SyncError>>>,
    written: Vec<Receipt>,
}

impl<S: Storage> Writer<S> {
    /// Runs until a `Close` request or until every sender is gone.
    pub(crate) fn run(mut self, requests: Receiver<Request>) {
        loop {
            let first = match self.next_deadline() {
                None => requests.recv().map_err(|_| RecvTimeoutError::Disconnected),
                Some(deadline) => requests.recv_deadline(deadline),
            };
            let first = match first {
                Ok(request) => request,
                Err(RecvTimeoutError::Timeout) => {
                    self.sync_now();
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => {
                    self.sync_now();
                    return;
                }
            };
            let mut group = vec![first];
            let mut bytes = group[0].payload_bytes();
            while group.len() < self.options.max_group_requests
                && bytes < self.options.max_group_bytes
            {
                match requests.try_recv() {
                    Ok(request) => {
                        bytes += request.payload_bytes();
                        let close = matches!(request, Request::Close { .. });
                        group.push(request);
                        if close {
                            break;
                        }
                    }
                    Err(_) => break,
                }
            }
            if self.commit_group(group) {
                return;
            }
        }
    }

    /// When the interval policy must sync, if records wait for it.
    fn next_deadline(&self) -> Option<Instant> {
        match (self.options.sync_policy, self.oldest_unsynced) {
            (SyncPolicy::EveryInterval(interval), Some(oldest)) => Some(oldest + interval),
            _ => None,
        }
    }

    /// Writes, syncs and answers one group. Returns whether the writer must stop.
    fn commit_group(&mut self, group: Vec<Request>) -> bool {
        self.status.groups.fetch_add(1, Ordering::Relaxed);
        let mut out = Outbox::default();
        let wall_ms = self.marks.lock().stamp(self.next_seq.next()).wall_ms;
        let mut force_sync = false;
        for request in group {
            match request {
                Request::Append { record, reply } => {
                    let result = self.append_one(record, wall_ms, &mut out.written);
                    out.appends.push((reply, result));
                }
                Request::Batch { entries, reply } => {
                    let result = self.append_batch(&entries, wall_ms, &mut out.written);
                    out.batches.push((reply, result));
                }
                Request::Sync { reply } => {
                    force_sync = true;
                    out.syncs.push(reply);
                }
                Request::Close { reply } => {
                    force_sync = true;
                    out.close = Some(reply);
                }
            }
        }
        self.publish_written(&out.written);
        for (reply, result) in out.appends {
            reply.send(result);
        }
        for (reply, result) in out.batches {
            reply.send(result);
        }
        if force_sync || self.policy_wants_sync() {
            self.sync_now();
        }
        let synced = self.sync_result();
        for reply in out.syncs {
            reply.send(synced.clone());
        }
        match out.close {
            Some(reply) => {
                reply.send(synced.map(|_| ()));
                true
            }
            None => false,
        }
    }

    fn poisoned(&self) -> Option<AppendError> {
        self.status.poison.get().map(|cause| AppendError::Poisoned {
            cause: cause.clone(),
        })
    }

    fn poison(&mut self, failure: WriterFailure) -> AppendError {
        let cause = self.status.poison.get_or_init(|| Arc::new(failure)).clone();
        self.marks.mark_writer_crashed();
        AppendError::Poisoned { cause }
    }

    fn append_one(
        &mut self,
        record: AppendRecord,
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
        self.accept(&receipt, written);
        if !record.key.is_empty() {
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
        // Validate and number the whole batch before writing any of it.
        let mut heads: HashMap<LaneId, LaneSeq> = HashMap::new();
        let mut seq = self.next_seq;
        let mut receipts = Vec::with_capacity(entries.len());
        for entry in entries {
            let actual = *heads
                .entry(entry.lane)
                .or_insert_with(|| self.head(entry.lane));
            if let Some(expected) = entry.expected_lane_seq {
                if expected != actual {
                    return Err(AppendError::Conflict {
                        lane: entry.lane,
                        expected,
                        actual,
                    });
                }
            }
            seq = seq.next();
            let lane_seq = actual.next();
            heads.insert(entry.lane, lane_seq);
            receipts.push(Receipt {
                lane: entry.lane,
                lane_seq,
                point: HlcPoint::new(wall_ms, seq),
            });
        }
        let frames: Vec<NewFrame<'_>> = receipts
            .iter()
            .zip(entries)
            .map(|(receipt, entry)| frame_of(receipt, &[], &entry.payload))
            .collect();
        self.write_unit(&frames)?;
        for receipt in &receipts {
            self.accept(receipt, written);
        }
        Ok(receipts)
    }

    fn head(&self, lane: LaneId) -> LaneSeq {
        self.heads.get(&lane).copied().unwrap_or(LaneSeq::ZERO)
    }

    fn write_unit(&mut self, frames: &[NewFrame<'_>]) -> Result<(), AppendError> {
        match self.wal.append(frames) {
            Ok(()) => Ok(()),
            Err(err) => Err(self.poison(WriterFailure::Append(err))),
        }
    }

    fn accept(&mut self, receipt: &Receipt, written: &mut Vec<Receipt>) {
        self.next_seq = receipt.point.seq();
        self.heads.insert(receipt.lane, receipt.lane_seq);
        self.last_written = receipt.point;
        self.unsynced_records += 1;
        self.oldest_unsynced.get_or_insert_with(Instant::now);
        written.push(*receipt);
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
        for receipt in written {
            marks.advance_accepted_on_lane(receipt.lane, receipt.point);
            marks.advance_written_on_lane(receipt.lane, receipt.point);
        }
        if self.options.visibility == Visibility::Written {
            marks.advance_visible_and_emitted(self.last_written);
            self.status
                .visible_seq
                .store(self.last_written.global_sequence, Ordering::Release);
        }
    }

    fn policy_wants_sync(&self) -> bool {
        if self.unsynced_records == 0 {
            return false;
        }
        match self.options.sync_policy {
            SyncPolicy::EveryGroup => true,
            SyncPolicy::EveryRecords(n) => self.unsynced_records >= u64::from(n),
            SyncPolicy::EveryInterval(interval) => self
                .oldest_unsynced
                .is_some_and(|oldest| oldest.elapsed() >= interval),
            SyncPolicy::Never => false,
        }
    }

    /// One fdatasync covering everything written; advances durable (and visible under
    /// `Visibility::Durable`). A failure poisons the writer; the sync is never retried.
    fn sync_now(&mut self) {
        if self.unsynced_records == 0 || self.status.poison.get().is_some() {
            return;
        }
        match self.wal.sync() {
            Ok(durable) => {
                debug_assert_eq!(durable, self.last_written.seq());
                self.status.syncs.fetch_add(1, Ordering::Relaxed);
                self.unsynced_records = 0;
                self.oldest_unsynced = None;
                let point = self.last_written;
                let mut marks = self.marks.lock();
                marks.advance_durable(point);
                if self.options.visibility == Visibility::Durable {
                    marks.advance_visible_and_emitted(point);
                    self.status
                        .visible_seq
                        .store(point.global_sequence, Ordering::Release);
                }
            }
            Err(err) => {
                self.poison(WriterFailure::Sync(err));
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
