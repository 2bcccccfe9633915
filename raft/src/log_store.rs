//! openraft's log store (`RaftLogStorage`, `RaftLogReader`, storage-v2) on one tidelog
//! database.
//!
//! Two lanes of one log:
//! - [`ENTRY_LANE`]: one record per Raft entry (the entry, JSON-encoded);
//! - [`META_LANE`]: the vote, the committed log id, truncations and purges.
//!
//! Both go through tidelog's single writer, so their I/O is ordered: a vote saved after an
//! append is durable only once the append is, and a truncation record lies in the log
//! between the entries it drops and the ones written after it. The in-memory index (Raft
//! index to lane sequence) is rebuilt on open by replaying the log in global order, and
//! that replay honours the truncation records: what `truncate` dropped is never read again.

use crate::error::{io_error, read_error, write_error};
use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{LogId, OptionalSend, RaftLogId, RaftLogReader, RaftTypeConfig, StorageError, Vote};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;
use tidelog::wal::{RealStorage, Storage};
use tidelog::{
    BatchEntry, Engine, GlobalSeq, HlcPoint, LaneSeq, OpenError, Options, SyncPolicy, Visibility,
};

/// The lane Raft entries are written to.
pub const ENTRY_LANE: u32 = 1;
/// The lane the vote, the committed log id, truncations and purges are written to.
pub const META_LANE: u32 = 2;

/// Most entries written in one tidelog batch (tidelog's own limit is 10,000; a batch is
/// also kept within the engine's `max_batch_records` and `max_batch_bytes`).
const MAX_BATCH: usize = 4096;

/// A record of the meta lane.
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
enum Meta<C: RaftTypeConfig> {
    /// `save_vote`.
    Vote(Vote<C::NodeId>),
    /// `save_committed`.
    Committed(Option<LogId<C::NodeId>>),
    /// `truncate`: entries with an index at or above this one are dropped.
    Truncate(u64),
    /// `purge`: entries up to and including this log id are gone.
    Purge(LogId<C::NodeId>),
}

/// What the store's checkpoints hold: the meta state as of the meta record at `meta_seq`.
/// Written at each purge, at a point below the first entry still needed, so that tidelog's
/// retention may remove the log before it.
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
struct MetaCheckpoint<C: RaftTypeConfig> {
    vote: Option<Vote<C::NodeId>>,
    committed: Option<LogId<C::NodeId>>,
    purged: Option<LogId<C::NodeId>>,
    /// Global sequence of the last meta record this state includes.
    meta_seq: u64,
}

/// Where one live entry is in the log.
#[derive(Clone)]
struct Slot<NID: openraft::NodeId> {
    lane_seq: LaneSeq,
    point: HlcPoint,
    log_id: LogId<NID>,
}

/// The store's state in memory, rebuilt from the log on open.
struct State<C: RaftTypeConfig> {
    /// Live entries by Raft index.
    entries: BTreeMap<u64, Slot<C::NodeId>>,
    vote: Option<Vote<C::NodeId>>,
    committed: Option<LogId<C::NodeId>>,
    purged: Option<LogId<C::NodeId>>,
    /// Global sequence of the last meta record written or replayed.
    meta_seq: u64,
}

impl<C: RaftTypeConfig> State<C> {
    fn drop_from(&mut self, index: u64) {
        self.entries.split_off(&index);
    }

    fn purge_upto(&mut self, log_id: LogId<C::NodeId>) {
        if self
            .purged
            .as_ref()
            .is_some_and(|p| p.index >= log_id.index)
        {
            return;
        }
        self.entries = self.entries.split_off(&(log_id.index + 1));
        self.purged = Some(log_id);
    }
}

/// How to open a [`LogStore`].
#[derive(Debug, Clone, Default)]
pub struct LogStoreOptions {
    /// The tidelog options. [`LogStore::open`] sets what the store relies on: visibility
    /// once written (an appended entry is readable before it is durable, as openraft
    /// asks), syncs only when the store asks for them (`SyncPolicy::Never`: the flush
    /// thread syncs for appends, `save_vote` and `truncate` sync their own record), no
    /// follower socket.
    pub engine: Options,
}

impl LogStoreOptions {
    /// Options for small databases (tests, demos): 4 MiB segments, records up to 1 MiB.
    #[must_use]
    pub fn small() -> Self {
        LogStoreOptions {
            engine: Options::default()
                .segment_size(4 * 1024 * 1024)
                .max_record_bytes(1024 * 1024)
                .max_batch_bytes(2 * 1024 * 1024),
        }
    }
}

/// openraft's log store on one tidelog database: one Raft group per database. Cheap to
/// clone; clones share the database. Its [`RaftLogReader`] (also what
/// `get_log_reader` returns) reads entries through tidelog's zero-copy reader.
///
/// `S` is the storage under the database: the real disk ([`LogStore::open`]), or
/// tidelog's simulated disk for power-loss tests ([`LogStore::open_with_storage`] with a
/// [`tidelog::wal::SimDisk`]).
pub struct LogStore<C: RaftTypeConfig, S: Storage = RealStorage> {
    engine: Engine<S>,
    state: Arc<Mutex<State<C>>>,
    flusher: Arc<Flusher<C>>,
}

impl<C: RaftTypeConfig, S: Storage> Clone for LogStore<C, S> {
    fn clone(&self) -> Self {
        LogStore {
            engine: self.engine.clone(),
            state: self.state.clone(),
            flusher: self.flusher.clone(),
        }
    }
}

impl<C: RaftTypeConfig, S: Storage> Debug for LogStore<C, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogStore")
            .field("dir", &self.engine.dir())
            .finish_non_exhaustive()
    }
}

impl<C: RaftTypeConfig> LogStore<C> {
    /// Opens (or creates) the log store in the tidelog database `dir`, rebuilding the
    /// entry index, the vote, the committed and the purged log ids from the newest
    /// checkpoint and the log after it (truncation records honoured).
    ///
    /// # Errors
    /// [`OpenError`] from tidelog; [`OpenError::InvalidOptions`] naming a record this
    /// store cannot decode (not a log store's database).
    pub fn open(dir: impl AsRef<Path>, options: LogStoreOptions) -> Result<Self, OpenError> {
        Self::open_with_storage(RealStorage, dir, options)
    }
}

impl<C: RaftTypeConfig, S: Storage> LogStore<C, S> {
    /// As [`LogStore::open`], with the database's log on the given storage: tidelog's
    /// simulated disk ([`tidelog::wal::SimDisk`]) in power-loss tests, which keeps only
    /// what was synced when the test takes its crash image.
    ///
    /// # Errors
    /// As [`LogStore::open`].
    pub fn open_with_storage(
        storage: S,
        dir: impl AsRef<Path>,
        options: LogStoreOptions,
    ) -> Result<Self, OpenError> {
        let mut engine_options = options.engine;
        engine_options.visibility = Visibility::Written;
        // The store asks for every sync it needs (see `Flusher`): appends, votes and
        // truncations are made durable before openraft is told; a committed id rides them.
        engine_options.sync_policy = SyncPolicy::Never;
        engine_options.serve_followers = false;
        let engine = Engine::open_with_storage(storage, dir, engine_options)?;
        let state = rebuild::<C, S>(&engine).map_err(|reason| OpenError::InvalidOptions {
            reason: format!(
                "{}: not a tidelog-raft log store: {reason}",
                engine.dir().display()
            ),
        })?;
        let flusher = Flusher::start(&engine).map_err(|source| OpenError::Io {
            op: "starting the flush thread for",
            path: engine.dir().to_path_buf(),
            source,
        })?;
        Ok(LogStore {
            engine,
            state: Arc::new(Mutex::new(state)),
            flusher: Arc::new(flusher),
        })
    }

    /// The tidelog database underneath.
    #[must_use]
    pub fn engine(&self) -> &Engine<S> {
        &self.engine
    }

    /// The Raft index to (lane sequence, global sequence) mapping of the live entries:
    /// which tidelog record holds each entry.
    #[must_use]
    pub fn entry_records(&self) -> Vec<(u64, LaneSeq, GlobalSeq)> {
        self.state
            .lock()
            .entries
            .iter()
            .map(|(index, slot)| (*index, slot.lane_seq, slot.point.seq()))
            .collect()
    }

    /// Stops the flush thread (callbacks not yet fired get an error) and closes the
    /// database if this was its last user.
    ///
    /// # Errors
    /// tidelog's [`tidelog::SyncError`] if the final sync failed.
    pub fn close(&self) -> Result<(), tidelog::SyncError> {
        self.flusher.stop();
        self.engine.close()
    }

    fn write_meta(&self, meta: &Meta<C>, durable: bool) -> Result<tidelog::Receipt, String> {
        let payload = serde_json::to_vec(meta).map_err(|e| e.to_string())?;
        let receipt = if durable {
            self.engine.append_durable(META_LANE, payload)
        } else {
            self.engine.append(META_LANE, payload)
        };
        receipt.map_err(|e| e.to_string())
    }

    fn read_range(&self, start: u64, end: Option<u64>) -> Result<Vec<C::Entry>, String> {
        let wanted: Vec<LaneSeq> = {
            let state = self.state.lock();
            let range = (
                Bound::Included(start),
                end.map_or(Bound::Unbounded, Bound::Excluded),
            );
            // Live entries are consecutive; stop at a gap all the same, so that the
            // result always is.
            let mut expected = None;
            let mut wanted = Vec::new();
            for (index, slot) in state.entries.range(range) {
                if expected.is_some_and(|e| e != *index) {
                    break;
                }
                wanted.push(slot.lane_seq);
                expected = Some(index + 1);
            }
            wanted
        };
        let (Some(first), Some(last)) = (wanted.first(), wanted.last()) else {
            return Ok(Vec::new());
        };
        let records = match self.engine.scan(ENTRY_LANE, *first..=*last) {
            Ok(records) => records,
            // Purged and truncated from the log meanwhile: not found is allowed.
            Err(tidelog::ReadError::Truncated { .. }) => return Ok(Vec::new()),
            Err(e) => return Err(e.to_string()),
        };
        let mut out = Vec::with_capacity(wanted.len());
        let mut want = wanted.iter().peekable();
        for record in records {
            match want.peek() {
                Some(next) if **next == record.lane_seq() => {
                    want.next();
                    let entry: C::Entry =
                        serde_json::from_slice(record.payload()).map_err(|e| e.to_string())?;
                    out.push(entry);
                }
                Some(_) => {}
                None => break,
            }
        }
        Ok(out)
    }
}

/// Replays the log: the newest checkpoint's meta state, then every record in global order.
fn rebuild<C: RaftTypeConfig, S: Storage>(engine: &Engine<S>) -> Result<State<C>, String> {
    let mut state = State::<C> {
        entries: BTreeMap::new(),
        vote: None,
        committed: None,
        purged: None,
        meta_seq: 0,
    };
    if let Some(checkpoint) = engine.latest_checkpoint().map_err(|e| e.to_string())? {
        let meta: MetaCheckpoint<C> =
            serde_json::from_slice(checkpoint.state()).map_err(|e| format!("checkpoint: {e}"))?;
        state.vote = meta.vote;
        state.committed = meta.committed;
        state.purged = meta.purged;
        state.meta_seq = meta.meta_seq;
    }
    let covered = state.meta_seq;
    for record in engine.scan_all(GlobalSeq(1)).map_err(|e| e.to_string())? {
        let seq = record.global_seq().0;
        match record.lane().0 {
            ENTRY_LANE => {
                let entry: C::Entry = serde_json::from_slice(record.payload())
                    .map_err(|e| format!("entry record {seq}: {e}"))?;
                let log_id = entry.get_log_id().clone();
                if state
                    .purged
                    .as_ref()
                    .is_some_and(|p| p.index >= log_id.index)
                {
                    continue;
                }
                // An entry written at an index replaces every entry from that index on.
                state.drop_from(log_id.index);
                state.entries.insert(
                    log_id.index,
                    Slot {
                        lane_seq: record.lane_seq(),
                        point: record.point(),
                        log_id,
                    },
                );
            }
            META_LANE => {
                let meta: Meta<C> = serde_json::from_slice(record.payload())
                    .map_err(|e| format!("meta record {seq}: {e}"))?;
                match meta {
                    Meta::Truncate(index) => state.drop_from(index),
                    Meta::Purge(log_id) => state.purge_upto(log_id),
                    // The checkpoint holds the vote and committed as of `covered`.
                    Meta::Vote(vote) if seq > covered => state.vote = Some(vote),
                    Meta::Committed(committed) if seq > covered => state.committed = committed,
                    Meta::Vote(_) | Meta::Committed(_) => {}
                }
                state.meta_seq = state.meta_seq.max(seq);
            }
            other => {
                return Err(format!(
                    "record {seq} on lane {other}, not a log store lane"
                ))
            }
        }
    }
    Ok(state)
}

impl<C: RaftTypeConfig, S: Storage> RaftLogReader<C> for LogStore<C, S> {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<C::Entry>, StorageError<C::NodeId>> {
        let start = match range.start_bound() {
            Bound::Included(i) => *i,
            Bound::Excluded(i) => i + 1,
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(i) => Some(i + 1),
            Bound::Excluded(i) => Some(*i),
            Bound::Unbounded => None,
        };
        self.read_range(start, end).map_err(read_error)
    }
}

impl<C: RaftTypeConfig, S: Storage> RaftLogStorage<C> for LogStore<C, S> {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<C>, StorageError<C::NodeId>> {
        let state = self.state.lock();
        let last = state
            .entries
            .values()
            .next_back()
            .map(|slot| slot.log_id.clone());
        Ok(LogState {
            last_purged_log_id: state.purged.clone(),
            last_log_id: last.or(state.purged.clone()),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<C::NodeId>) -> Result<(), StorageError<C::NodeId>> {
        // Durable before returning, as openraft requires; and after every earlier entry.
        let receipt = self
            .write_meta(&Meta::Vote(vote.clone()), true)
            .map_err(write_error)?;
        let mut state = self.state.lock();
        state.vote = Some(vote.clone());
        state.meta_seq = receipt.point.global_sequence;
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<C::NodeId>>, StorageError<C::NodeId>> {
        Ok(self.state.lock().vote.clone())
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogId<C::NodeId>>,
    ) -> Result<(), StorageError<C::NodeId>> {
        // Written, not synced: it rides the next append's, vote's or truncation's sync. A
        // committed id lost in a crash is an older one read back (every id up to the real
        // one is committed too): a few entries are applied again from a snapshot's point.
        let receipt = self
            .write_meta(&Meta::Committed(committed.clone()), false)
            .map_err(write_error)?;
        let mut state = self.state.lock();
        state.committed = committed;
        state.meta_seq = receipt.point.global_sequence;
        Ok(())
    }

    async fn read_committed(
        &mut self,
    ) -> Result<Option<LogId<C::NodeId>>, StorageError<C::NodeId>> {
        Ok(self.state.lock().committed.clone())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<C>,
    ) -> Result<(), StorageError<C::NodeId>>
    where
        I: IntoIterator<Item = C::Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let options = self.engine.options();
        let max_records = MAX_BATCH.min(options.max_batch_records).max(1);
        let max_bytes = options.max_batch_bytes;
        let mut last = None;
        let mut encoded = entries
            .into_iter()
            .map(|entry| serde_json::to_vec(&entry).map(|p| (entry.get_log_id().clone(), p)))
            .peekable();
        while encoded.peek().is_some() {
            // One tidelog batch: as many entries as fit the engine's batch limits, at least
            // one (an entry too large for a record is refused by the engine).
            let mut ids = Vec::new();
            let mut batch = Vec::new();
            let mut bytes = 0u64;
            while let Some(next) = encoded.next_if(|item| match item {
                Ok((_, payload)) => {
                    batch.is_empty()
                        || (batch.len() < max_records
                            && bytes.saturating_add(payload.len() as u64) <= max_bytes)
                }
                Err(_) => true,
            }) {
                let (log_id, payload) = next.map_err(write_error)?;
                bytes = bytes.saturating_add(payload.len() as u64);
                ids.push(log_id);
                batch.push(BatchEntry::new(ENTRY_LANE, payload));
            }
            // Returns once written: readable now, durable with the group's sync.
            let receipts = self.engine.append_batch(batch).map_err(write_error)?;
            let mut state = self.state.lock();
            for (log_id, receipt) in ids.into_iter().zip(receipts) {
                state.drop_from(log_id.index);
                state.entries.insert(
                    log_id.index,
                    Slot {
                        lane_seq: receipt.lane_seq,
                        point: receipt.point,
                        log_id,
                    },
                );
                last = Some(receipt.point);
            }
        }
        match last {
            // The flush thread fires the callback once the durable watermark covers it.
            Some(point) => self.flusher.after_durable(point, callback),
            None => callback.log_io_completed(Ok(())),
        }
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId<C::NodeId>) -> Result<(), StorageError<C::NodeId>> {
        // The truncation record is durable before the entries leave the index: after a
        // crash either it is in the log (and replay drops them again) or truncate did not
        // return.
        let receipt = self
            .write_meta(&Meta::Truncate(log_id.index), true)
            .map_err(write_error)?;
        let mut state = self.state.lock();
        state.drop_from(log_id.index);
        state.meta_seq = receipt.point.global_sequence;
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId<C::NodeId>) -> Result<(), StorageError<C::NodeId>> {
        if self
            .state
            .lock()
            .purged
            .as_ref()
            .is_some_and(|p| p.index >= log_id.index)
        {
            return Ok(());
        }
        let receipt = self
            .write_meta(&Meta::Purge(log_id.clone()), false)
            .map_err(write_error)?;
        let (checkpoint, point) = {
            let mut state = self.state.lock();
            state.purge_upto(log_id);
            state.meta_seq = receipt.point.global_sequence;
            // Everything before the first live entry is no longer needed; with no live
            // entry, everything up to the purge record.
            let point = match state.entries.values().next() {
                Some(first) => HlcPoint {
                    wall_ms: first.point.wall_ms,
                    global_sequence: first.point.global_sequence - 1,
                },
                None => receipt.point,
            };
            let checkpoint = MetaCheckpoint::<C> {
                vote: state.vote.clone(),
                committed: state.committed.clone(),
                purged: state.purged.clone(),
                meta_seq: state.meta_seq,
            };
            (checkpoint, point)
        };
        // A checkpoint must be at a durable point, and its meta state must not be ahead of
        // the durable log.
        self.engine.sync().map_err(write_error)?;
        let bytes = serde_json::to_vec(&checkpoint).map_err(write_error)?;
        // Writes the checkpoint, prunes old ones and removes the segments below what the
        // retained checkpoints need.
        self.engine.checkpoint(point, &bytes).map_err(write_error)?;
        Ok(())
    }
}

/// Callbacks waiting for the durable watermark to reach their point.
type FlushQueue<C> = std::sync::mpsc::Sender<(HlcPoint, LogFlushed<C>)>;

/// The flush thread: makes appended entries durable and fires each append's callback once
/// tidelog's durable watermark covers its last record. The engine runs with
/// [`SyncPolicy::Never`], so the writer syncs only when asked: this thread takes every
/// callback queued since its last round, asks one sync for all of them (none if the
/// watermark already covers them, e.g. after a vote's sync) and fires them. Appends that
/// arrive during a sync are written meanwhile and share the next one: openraft's appends
/// ride one group commit however it splits them into calls, the writer thread never
/// waits for a callback, and records that need no sync of their own (the committed log
/// id) never cause one.
struct Flusher<C: RaftTypeConfig> {
    queue: Mutex<Option<FlushQueue<C>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl<C: RaftTypeConfig> Flusher<C> {
    fn start<S: Storage>(engine: &Engine<S>) -> std::io::Result<Self> {
        let (sender, receiver) = std::sync::mpsc::channel::<(HlcPoint, LogFlushed<C>)>();
        let engine = engine.clone();
        let thread = std::thread::Builder::new()
            .name("tidelog-raft-flush".into())
            .spawn(move || {
                while let Ok(first) = receiver.recv() {
                    let mut round = vec![first];
                    round.extend(receiver.try_iter());
                    let target = round
                        .iter()
                        .map(|(point, _)| point.global_sequence)
                        .max()
                        .unwrap_or(0);
                    let durable = engine.watermarks().global.durable_hlc.global_sequence;
                    let result = if durable >= target {
                        Ok(())
                    } else {
                        // Everything written before this call: every entry of the round.
                        engine.sync().map(|_| ()).map_err(|e| e.to_string())
                    };
                    for (_, callback) in round {
                        callback.log_io_completed(result.clone().map_err(io_error));
                    }
                }
            })?;
        Ok(Flusher {
            queue: Mutex::new(Some(sender)),
            thread: Mutex::new(Some(thread)),
        })
    }

    fn after_durable(&self, point: HlcPoint, callback: LogFlushed<C>) {
        match self.queue.lock().as_ref() {
            Some(queue) => {
                if let Err(std::sync::mpsc::SendError((_, callback))) =
                    queue.send((point, callback))
                {
                    callback.log_io_completed(Err(io_error("the log store is closed")));
                }
            }
            None => callback.log_io_completed(Err(io_error("the log store is closed"))),
        }
    }

    fn stop(&self) {
        self.queue.lock().take();
        if let Some(thread) = self.thread.lock().take() {
            // The thread ends once the queue is drained: every callback queued before is
            // answered (made durable first) before the engine closes.
            let _ = thread.join();
        }
    }
}

impl<C: RaftTypeConfig> Drop for Flusher<C> {
    /// The thread holds a handle on the engine: joined here, so that the database is
    /// closed (and its lease released) when the last clone of the store is dropped, not
    /// some time after.
    fn drop(&mut self) {
        self.stop();
    }
}
