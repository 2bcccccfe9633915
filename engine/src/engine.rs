//! The engine handle: open a database, append from any thread, read, subscribe, close.

use crate::applier::{Applier, ApplierSet};
use crate::checkpoint;
use crate::error::WriterFailure;
use crate::error::{AppendError, OpenError, ReadError, SyncError};
use crate::forward::{Publisher, Server};
use crate::handoff::{oneshot, Pending};
use crate::holder::LeaseHolder;
use crate::inbox::TrySendError;
use crate::index::LaneIndex;
use crate::marker;
use crate::options::Options;
use crate::record::{Append, BatchEntry, Receipt, Record};
use crate::subscription::{Subscription, SubscriptionTarget};
use crate::writer::{Request, Requests, Shared, Start, Status, Writer};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use tidelog_wal::io::{RealStorage, Storage};
use tidelog_wal::{RecoveryReport, Wal, WalOptions, WalReader};
use tidelog_watermarks::{
    GlobalSeq, HlcPoint, LaneId, LaneSeq, SystemClock, WatermarkAdvanceHandle, WatermarkState,
    WatermarkView,
};

/// Longest idempotency key, in bytes (a frame could carry longer ones, up to
/// `tidelog_wal::format::FRAME_KEY_LEN_MAX`; the engine keeps keys small because the
/// writer remembers every key still in the log).
pub const IDEMPOTENCY_KEY_LEN_MAX: usize = 1024;

/// The lane where the engine records, as a record of the log, a loss accepted at open
/// (`RecoveryMode::AcceptLoss`, or the cut of a tolerant mode): its payload names the
/// lost global sequences.
pub const LOSS_LANE: LaneId = LaneId(u32::MAX);

/// Lane heads after the accepted losses: a loss of `n` sequences may have taken up to `n`
/// lane sequences from any lane, so every lane continues at least `n` above where it
/// stood before it (lanes never seen: above the sum of the losses before them). Returns
/// the heads of the lanes the index knows and the head of every other lane.
fn lane_floors(
    index: &LaneIndex,
    accepted: &[(GlobalSeq, GlobalSeq)],
) -> (HashMap<LaneId, LaneSeq>, LaneSeq) {
    let mut heads = index.heads();
    let mut default = 0u64;
    let mut floors: HashMap<LaneId, u64> = HashMap::new();
    let mut ranges = accepted.to_vec();
    ranges.sort();
    for (first, last) in ranges {
        let lost = last.0.saturating_sub(first.0).saturating_add(1);
        for (lane, head, _) in index.heads_at(GlobalSeq(first.0.saturating_sub(1))) {
            let floor = floors.entry(lane).or_insert(default);
            *floor = (*floor).max(head.get());
        }
        for floor in floors.values_mut() {
            *floor = floor.saturating_add(lost);
        }
        default = default.saturating_add(lost);
    }
    for (lane, floor) in floors {
        let head = heads.entry(lane).or_insert(LaneSeq::ZERO);
        *head = (*head).max(LaneSeq(floor));
    }
    (heads, LaneSeq(default))
}

/// An open tidelog database: the writer thread and everything callers need to append,
/// wait, read and subscribe. Cheap to clone; every clone is the same database. The
/// database closes (drains, syncs, stops the writer) on [`Engine::close`] or when the
/// last clone is dropped.
///
/// ```
/// use std::time::Duration;
/// use tidelog::{Engine, Options};
///
/// let dir = tempfile::tempdir().unwrap();
/// let engine = Engine::open(dir.path(), Options::default()).unwrap();
/// let receipt = engine.append_durable(7, b"hello".to_vec()).unwrap();
/// let record = engine.read(7, receipt.lane_seq).unwrap().unwrap();
/// assert_eq!(record.payload(), b"hello");
/// engine.close().unwrap();
/// ```
pub struct Engine<S: Storage = RealStorage> {
    pub(crate) inner: Arc<Inner<S>>,
}

impl<S: Storage> std::fmt::Debug for Engine<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("dir", &self.inner.dir)
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}

impl<S: Storage> Clone for Engine<S> {
    fn clone(&self) -> Self {
        Engine {
            inner: self.inner.clone(),
        }
    }
}

pub(crate) struct Inner<S: Storage> {
    dir: PathBuf,
    options: Options,
    requests: Requests<S>,
    marks: WatermarkAdvanceHandle,
    index: Arc<LaneIndex>,
    reader: WalReader<S>,
    /// The log's options as opened: its limits decide whether a unit fits.
    log: WalOptions,
    /// Why the watermarks file for followers could not be created at open, if it could not.
    publication_failure: Option<std::io::Error>,
    status: Arc<Status>,
    recovery: RecoveryReport,
    appliers: Arc<Mutex<ApplierSet>>,
    checkpoints: checkpoint::State<S>,
    writer: Mutex<Option<JoinHandle<()>>>,
    closed: AtomicBool,
    holder: Mutex<Option<LeaseHolder>>,
    /// The forwarding socket, while serving followers.
    server: Mutex<Option<Server>>,
}

impl Engine<RealStorage> {
    /// Opens (or creates) the database in `dir`: checks it is a tidelog database of a
    /// format this build reads, takes the writer lock, recovers the log, rebuilds the
    /// lane index and watermarks from it, and starts the writer thread.
    ///
    /// # Errors
    /// See [`OpenError`]: a foreign or newer-format directory is refused unchanged.
    pub fn open(dir: impl AsRef<Path>, options: Options) -> Result<Self, OpenError> {
        Self::open_with_storage(RealStorage, dir, options)
    }
}

impl<S: Storage> Engine<S> {
    /// As [`Engine::open`], over a given storage (the simulated disk in tests).
    ///
    /// # Errors
    /// See [`OpenError`].
    pub fn open_with_storage(
        storage: S,
        dir: impl AsRef<Path>,
        options: Options,
    ) -> Result<Self, OpenError> {
        let dir = dir.as_ref().to_path_buf();
        crate::observe::span!("tidelog.open", dir = %dir.display());
        validate(&options)?;
        if !marker::inspect(&dir)? {
            marker::create(&dir)?;
        }
        let holder = LeaseHolder::acquire(&dir, &options.lease)?;
        let wal_options = WalOptions {
            segment_size: options.segment_size,
            max_record_bytes: options
                .max_record_bytes
                .saturating_add(IDEMPOTENCY_KEY_LEN_MAX as u32),
            recovery_mode: options.recovery_mode,
            fencing: holder.fencing_token(),
            prepare_in_background: options.prepare_segments_in_background,
            fence_off_predecessor: holder.predecessor_may_write(),
        };
        let recovery = crate::observe::Stopwatch::start();
        let (wal, recovered) = {
            crate::observe::span!("tidelog.recovery");
            Wal::open_with_extent(
                storage.clone(),
                &dir.join(marker::WAL_DIR),
                wal_options,
                &dir.join(marker::EXTENT_FILE),
            )?
        };
        recovery.record("tidelog_recovery_seconds");
        // Recovery reads every segment it recovers from end to end.
        crate::observe::metric!(metrics::histogram!("tidelog_recovery_bytes_scanned")
            .record((recovered.report.segments * wal.options().segment_size) as f64));
        let options = adopt_segment_size(options, wal.options().segment_size);
        let reader = wal.reader();
        let log = wal.options().clone();
        let accepted_losses = wal.extent().map(|e| e.accepted_losses).unwrap_or_default();
        let checkpoints = checkpoint::State::open(
            storage,
            &dir,
            options.checkpoints.clone(),
            &reader,
            wal.truncator(),
            &recovered,
            &accepted_losses,
        )?;
        let index = Arc::new(LaneIndex::default());
        let mut keys = HashMap::new();
        let mut key_order = std::collections::VecDeque::new();
        let mut last = HlcPoint::ORIGIN;
        let mut lane_last: HashMap<LaneId, HlcPoint> = HashMap::new();
        index.extend(reader.iter_from(GlobalSeq(1)).map(|frame| {
            let receipt = Record::new(frame.clone()).receipt();
            if !frame.key().is_empty() {
                keys.insert(frame.key().to_vec(), receipt);
                key_order.push_back((receipt.point.seq(), frame.key().to_vec()));
            }
            last = receipt.point;
            lane_last.insert(receipt.lane, receipt.point);
            (receipt.lane, receipt.lane_seq, receipt.point.seq())
        }));
        checkpoints.bootstrap(&index, &recovered, &mut last, &mut lane_last);
        let mut state = WatermarkState::new(Arc::new(SystemClock::new()));
        let lanes: Vec<(LaneId, HlcPoint)> = lane_last.into_iter().collect();
        state.reset_to_bootstrap_lanes(last, last, lanes.clone(), lanes);
        let marks = WatermarkAdvanceHandle::new(state);
        let writer_keys_len = keys.len() as u64;
        let status = Arc::new(Status::default());
        status
            .idempotency_keys
            .store(writer_keys_len, Ordering::Relaxed);
        status
            .visible_seq
            .store(last.global_sequence, Ordering::Release);
        let (requests, inbox, syncer) = crate::writer::inbox(options.channel_capacity);
        // Followers wait on this file; a writer that cannot create it still writes, and
        // says so (`Engine::publication_failure`) instead of dropping the error.
        let (publisher, publication_failure) = match Publisher::create(
            &dir,
            holder.lease().fencing_token(),
            marks.lock().snapshot(),
        ) {
            Ok(publisher) => (Some(publisher), None),
            Err(err) => (None, Some(err)),
        };
        let (heads, lane_floor) = lane_floors(&index, &accepted_losses);
        let writer = Writer::new(
            wal,
            options.clone(),
            Shared {
                marks: marks.clone(),
                index: index.clone(),
                status: status.clone(),
                validity: holder.validity(),
                publisher,
            },
            Start {
                last,
                heads,
                lane_floor,
                keys,
                key_order,
            },
        );
        let thread = std::thread::Builder::new()
            .name("tidelog-writer".into())
            .spawn(move || writer.run(inbox, syncer))
            .map_err(|source| OpenError::Io {
                op: "starting the writer thread for",
                path: dir.clone(),
                source,
            })?;
        let on_lost = {
            let (status, marks, requests) = (status.clone(), marks.clone(), requests.clone());
            move |failure: WriterFailure| {
                crate::observe::metric!(if status.poison.get().is_none() {
                    let cause = crate::observe::cause(&failure);
                    metrics::counter!("tidelog_poison_events_total", "cause" => cause).increment(1);
                });
                status.poison.get_or_init(|| Arc::new(failure));
                marks.mark_writer_crashed();
                // Wake the writer so it answers whoever waits on it; a full queue means
                // it is busy and will see the poison anyway.
                let _ = requests.try_send(Request::Wake);
            }
        };
        holder.on_lost(on_lost);
        let appliers = Arc::new(Mutex::new(ApplierSet::default()));
        let engine = Engine {
            inner: Arc::new(Inner {
                dir,
                options,
                requests,
                marks,
                index,
                reader,
                log,
                publication_failure,
                status,
                recovery: recovered.report,
                appliers,
                checkpoints,
                writer: Mutex::new(Some(thread)),
                closed: AtomicBool::new(false),
                holder: Mutex::new(Some(holder)),
                server: Mutex::new(None),
            }),
        };
        if let Some((first, last)) = engine.inner.recovery.accepted_loss {
            // The loss goes into the log itself, where every reader of it sees it.
            let note = format!(
                "tidelog: global sequences {first} to {last} were lost and the loss was accepted ({:?}); lane sequences continue above what they may have held",
                engine.inner.options.recovery_mode
            );
            // The loss lane is refused to callers (`check_unit`); the engine's own note is
            // the one record that goes there.
            engine
                .enqueue(Append::new(LOSS_LANE, note.into_bytes()).durable(), true)
                .and_then(|pending| engine.receive(pending))
                .map_err(|err| OpenError::Io {
                    op: "recording the accepted loss in",
                    path: engine.inner.dir.clone(),
                    source: std::io::Error::other(err.to_string()),
                })?;
        }
        if engine.inner.options.serve_followers {
            // A directory whose socket path is too long for Unix sockets (about 107
            // bytes) cannot be served; followers then get `NoWriter`, which says so.
            if let Ok(server) = Server::start(&engine, &engine.inner.dir) {
                *engine.inner.server.lock() = Some(server);
            }
        }
        Ok(engine)
    }

    /// Why this engine does not publish its watermarks for followers
    /// (`<dir>/WATERMARKS`), if the file could not be created at open: followers then
    /// read and wait on nothing new from this writer. `None` when it publishes.
    #[must_use]
    pub fn publication_failure(&self) -> Option<&std::io::Error> {
        self.inner.publication_failure.as_ref()
    }

    /// Whether this engine serves followers' forwarded appends on its socket.
    #[must_use]
    pub fn serves_followers(&self) -> bool {
        self.inner.server.lock().is_some()
    }

    /// The writer lease this engine holds, as last refreshed (`None` once closed). Its
    /// fencing token is stamped on every segment this engine creates.
    #[must_use]
    pub fn writer_lease(&self) -> Option<crate::lease::WriterLease> {
        self.inner.holder.lock().as_ref().map(LeaseHolder::lease)
    }

    /// The database directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The options it was opened with.
    #[must_use]
    pub fn options(&self) -> &Options {
        &self.inner.options
    }

    /// Whether this engine may still act as the writer: it is open, not poisoned, and its
    /// lease is valid (not lost, not run out on the local clock). An engine that says no
    /// acknowledges nothing more; another process may be the writer now.
    #[must_use]
    pub fn holds_lease(&self) -> bool {
        self.inner.status.poison.get().is_none()
            && self
                .inner
                .holder
                .lock()
                .as_ref()
                .is_some_and(|holder| holder.validity().is_valid())
    }

    /// The failure that poisoned this engine, if one did: from then on it refuses every
    /// append and sync; reopen the database to recover.
    #[must_use]
    pub fn failure(&self) -> Option<Arc<WriterFailure>> {
        self.inner.status.poison.get().cloned()
    }

    /// What recovery found and did when this engine opened.
    #[must_use]
    pub fn recovery_report(&self) -> &RecoveryReport {
        &self.inner.recovery
    }

    /// Appends `payload` to `lane` and returns once the writer has accepted and written
    /// it (not necessarily durable: wait with [`Engine::watermark_handle`] or use
    /// [`Engine::append_durable`]). Blocks while the writer's queue is full. Shorthand for
    /// [`Engine::append_with`] of [`Append::new`].
    ///
    /// # Errors
    /// See [`AppendError`]; on error nothing was acknowledged.
    pub fn append(
        &self,
        lane: impl Into<LaneId>,
        payload: impl Into<Vec<u8>>,
    ) -> Result<Receipt, AppendError> {
        self.append_with(Append::new(lane, payload))
    }

    /// Appends what `append` describes (lane, payload, key, expectation, durability):
    /// every append method, local or forwarded, comes down to this one. It is validated
    /// here, before it reaches the writer: a key over [`IDEMPOTENCY_KEY_LEN_MAX`], a payload over
    /// [`Options::max_record_bytes`](crate::Options::max_record_bytes) or a record that
    /// does not fit a segment once framed is refused with nothing written, and the
    /// engine goes on. Blocks while the writer's queue is full.
    ///
    /// # Errors
    /// See [`AppendError`]: [`AppendError::KeyTooLong`], [`AppendError::RecordTooLarge`],
    /// [`AppendError::UnitTooLarge`] (misuse), [`AppendError::Conflict`] (expectation),
    /// [`AppendError::Closed`], [`AppendError::Poisoned`]; on error nothing was
    /// acknowledged.
    pub fn append_with(&self, append: Append) -> Result<Receipt, AppendError> {
        let pending = self.queue(append, true)?;
        self.receive(pending)
    }

    /// Queues what `append` describes without waiting for the writer (validated as
    /// [`Engine::append_with`] validates): the returned ticket gives the receipt later,
    /// by [`AppendTicket::wait`] or `.await`. Blocks only while the queue is full.
    ///
    /// # Errors
    /// The misuse errors of [`Engine::append_with`], [`AppendError::Closed`],
    /// [`AppendError::Poisoned`]; the ticket reports the rest.
    pub fn submit_with(&self, append: Append) -> Result<AppendTicket, AppendError> {
        let pending = self.queue(append, true)?;
        Ok(AppendTicket { pending })
    }

    /// Queues `payload` for `lane` without waiting for the writer: the returned ticket
    /// gives the receipt later. Lets one thread keep many appends in flight (pipelining);
    /// appends from one thread are ordered as submitted. Blocks only while the queue is
    /// full. Shorthand for [`Engine::submit_with`].
    ///
    /// # Errors
    /// [`AppendError::RecordTooLarge`], [`AppendError::Closed`],
    /// [`AppendError::Poisoned`]; the ticket reports the rest.
    pub fn submit(
        &self,
        lane: impl Into<LaneId>,
        payload: impl Into<Vec<u8>>,
    ) -> Result<AppendTicket, AppendError> {
        self.submit_with(Append::new(lane, payload))
    }

    /// As [`Engine::append`], but answers only once the record is durable: the receipt
    /// comes back after the sync that covers it. The sync is the one the policy runs
    /// next (the next group, or the interval's); under policies with no time bound
    /// ([`SyncPolicy::Never`](crate::SyncPolicy::Never),
    /// [`SyncPolicy::EveryRecords`](crate::SyncPolicy::EveryRecords)) the writer runs one
    /// for it rather than leave it waiting for ever.
    /// One hand-off instead of an append and then a watermark wait.
    ///
    /// # Errors
    /// As [`Engine::append`]; a sync that fails answers [`AppendError::Poisoned`] and the
    /// record must be treated as not durable.
    pub fn append_durable(
        &self,
        lane: impl Into<LaneId>,
        payload: impl Into<Vec<u8>>,
    ) -> Result<Receipt, AppendError> {
        self.append_with(Append::new(lane, payload).durable())
    }

    /// The async form of [`Engine::append_durable`]: queues the record now and returns a
    /// future of its receipt, which resolves once the record is durable. Works under any
    /// runtime: the writer wakes the task after the sync that covers the record, as it
    /// answers a blocking appender. A failed sync, poison or the loss of the writer lease
    /// resolve it to an error, as they answer the blocking form.
    ///
    /// Queuing blocks only while the writer's queue is full (as [`Engine::submit`]
    /// does; size it with [`Options::channel_capacity`]). The record is queued whether
    /// or not the future is awaited: dropping the future does not withdraw it, it only
    /// gives up the answer.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let engine = tidelog::Engine::open(dir.path(), tidelog::Options::default()).unwrap();
    /// let runtime = tokio::runtime::Builder::new_multi_thread().build().unwrap();
    /// let receipt = runtime.block_on(engine.append_durable_async(7, b"paid".to_vec())).unwrap();
    /// assert!(engine.watermarks().global.durable_hlc.covers(receipt.point));
    /// ```
    ///
    /// # Errors
    /// The future resolves to the errors of [`Engine::append_durable`].
    ///
    /// [`Options::channel_capacity`]: crate::Options::channel_capacity
    pub fn append_durable_async(
        &self,
        lane: impl Into<LaneId>,
        payload: impl Into<Vec<u8>>,
    ) -> AppendFuture {
        self.queue_async(Append::new(lane, payload).durable())
    }

    /// The async form of [`Engine::append`]: queues the record now and returns a future
    /// of its receipt, which resolves once the writer has accepted and written it. As
    /// [`Engine::append_durable_async`] otherwise.
    ///
    /// # Errors
    /// The future resolves to the errors of [`Engine::append`].
    pub fn append_async(
        &self,
        lane: impl Into<LaneId>,
        payload: impl Into<Vec<u8>>,
    ) -> AppendFuture {
        self.queue_async(Append::new(lane, payload))
    }

    fn queue_async(&self, append: Append) -> AppendFuture {
        AppendFuture {
            state: match self.queue(append, true) {
                Ok(pending) => AsyncReply::Queued(pending),
                Err(error) => AsyncReply::Refused(Some(error)),
            },
        }
    }

    /// As [`Engine::append`] but never blocks on a full queue.
    ///
    /// # Errors
    /// [`AppendError::WouldBlock`] when the queue is full (nothing queued), else as
    /// [`Engine::append`].
    pub fn try_append(
        &self,
        lane: impl Into<LaneId>,
        payload: impl Into<Vec<u8>>,
    ) -> Result<Receipt, AppendError> {
        let pending = self.queue(Append::new(lane, payload), false)?;
        self.receive(pending)
    }

    /// Appends only if `lane`'s last lane sequence is `expected` (0 for an empty lane).
    ///
    /// # Errors
    /// [`AppendError::Conflict`] when it is not (nothing written), else as
    /// [`Engine::append`].
    pub fn append_expecting(
        &self,
        lane: impl Into<LaneId>,
        expected: LaneSeq,
        payload: impl Into<Vec<u8>>,
    ) -> Result<Receipt, AppendError> {
        self.append_with(Append::new(lane, payload).expecting(expected))
    }

    /// Appends with an idempotency key: if a record with this key was appended before
    /// (in this process or before a reopen), returns that record's receipt and writes
    /// nothing. Lets callers retry an append whose outcome they did not learn. Answered
    /// once written, as [`Engine::append`] (see [`Durability`](crate::Durability) for the
    /// rule); for a durable keyed append use [`Engine::append_with`] with
    /// [`Append::durable`].
    ///
    /// **The window.** Keys are remembered for exactly the records still in the log:
    /// while a keyed record's segment is retained, a retry returns its original receipt,
    /// also after a reopen (the keys are rebuilt from the retained log). Once log
    /// truncation (after a checkpoint) removes the record's segment, its key is forgotten
    /// and a retry with it appends a new record. Memory for keys is therefore bounded by
    /// the retained log, not by the number of keyed appends ever made; see
    /// [`Engine::idempotency_keys`].
    ///
    /// # Errors
    /// As [`Engine::append`]; [`AppendError::KeyTooLong`] above [`IDEMPOTENCY_KEY_LEN_MAX`].
    pub fn append_idempotent(
        &self,
        lane: impl Into<LaneId>,
        key: impl Into<Vec<u8>>,
        payload: impl Into<Vec<u8>>,
    ) -> Result<Receipt, AppendError> {
        self.append_with(Append::new(lane, payload).key(key))
    }

    /// How many idempotency keys the writer remembers: those of keyed records still in
    /// the log (see [`Engine::append_idempotent`] for the window). Updated when the writer
    /// starts each group of appends, so it may lag the newest appends and truncations by
    /// one group.
    pub fn idempotency_keys(&self) -> u64 {
        self.inner.status.idempotency_keys.load(Ordering::Relaxed)
    }

    /// How many entries the in-memory lane index holds: one per record still in the log
    /// (truncation drops those of the records it removes), so it is bounded by the
    /// retained log, not by the number of appends ever made.
    pub fn lane_index_entries(&self) -> u64 {
        self.inner.index.entries() as u64
    }

    /// Appends several records, on one or more lanes, atomically: after a crash all of
    /// them are in the log or none is. If any entry's expectation fails, nothing is
    /// written.
    ///
    /// # Errors
    /// [`AppendError::BatchOutOfBounds`], [`AppendError::RecordTooLarge`],
    /// [`AppendError::Conflict`], else as [`Engine::append`].
    pub fn append_batch(&self, entries: Vec<BatchEntry>) -> Result<Vec<Receipt>, AppendError> {
        self.batch(entries, false)
    }

    /// As [`Engine::append_batch`], answered only once the whole batch is durable: one
    /// round trip to the writer instead of a batch then a [`Engine::sync`]. Forces a sync
    /// whatever the policy, as [`Engine::append_durable`] does.
    ///
    /// # Errors
    /// As [`Engine::append_batch`].
    pub fn append_batch_durable(
        &self,
        entries: Vec<BatchEntry>,
    ) -> Result<Vec<Receipt>, AppendError> {
        self.batch(entries, true)
    }

    fn batch(&self, entries: Vec<BatchEntry>, durable: bool) -> Result<Vec<Receipt>, AppendError> {
        let options = &self.inner.options;
        let bytes: u64 = entries.iter().map(|e| e.payload.len() as u64).sum();
        if entries.is_empty()
            || entries.len() > options.max_batch_records
            || bytes > options.max_batch_bytes
        {
            return Err(AppendError::BatchOutOfBounds {
                records: entries.len(),
                bytes,
                max_records: options.max_batch_records,
                max_bytes: options.max_batch_bytes,
            });
        }
        self.check_unit(entries.iter().map(|e| (e.lane, &[][..], &e.payload[..])))?;
        let (reply, pending) = oneshot();
        self.send(
            Request::Batch {
                entries,
                durable,
                reply,
            },
            true,
        )?;
        self.receive(pending)
    }

    /// Waits until every record appended before this call is durable (forcing a sync
    /// whatever the policy) and returns the durable point.
    ///
    /// # Errors
    /// [`SyncError::Poisoned`] if a write or sync failed; [`SyncError::Closed`].
    pub fn sync(&self) -> Result<HlcPoint, SyncError> {
        let (reply, pending) = oneshot();
        self.send(Request::Sync { reply }, true)
            .map_err(|_| self.sync_error())?;
        pending.wait().unwrap_or_else(|| Err(self.sync_error()))
    }

    /// The watermarks' handle: `wait_for_<kind>` and `wait_for_<kind>_on_lane`.
    #[must_use]
    pub fn watermark_handle(&self) -> WatermarkAdvanceHandle {
        self.inner.marks.clone()
    }

    /// A serializable view of every watermark, global and per lane.
    #[must_use]
    pub fn watermarks(&self) -> WatermarkView {
        self.inner.marks.snapshot_view()
    }

    /// The visible record `lane_seq` of `lane`, or `None` if there is none (yet).
    ///
    /// # Errors
    /// [`ReadError::Closed`], [`ReadError::ZeroLaneSeq`], [`ReadError::Truncated`] for a
    /// record truncated from the log (covered by a checkpoint).
    pub fn read(
        &self,
        lane: impl Into<LaneId>,
        lane_seq: LaneSeq,
    ) -> Result<Option<Record>, ReadError> {
        self.check_open()?;
        if lane_seq == LaneSeq::ZERO {
            return Err(ReadError::ZeroLaneSeq);
        }
        let lane = lane.into();
        self.check_truncated(lane, lane_seq)?;
        Ok(self
            .inner
            .index
            .lookup(lane, lane_seq)
            .and_then(|seq| self.visible_frame(seq)))
    }

    /// The visible records of `lane` with lane sequences in `range`, in order.
    ///
    /// # Errors
    /// [`ReadError::Closed`]; [`ReadError::Truncated`] when the range starts before the
    /// lane's first record still in the log.
    pub fn scan(
        &self,
        lane: impl Into<LaneId>,
        range: RangeInclusive<LaneSeq>,
    ) -> Result<impl Iterator<Item = Record> + '_, ReadError> {
        self.check_open()?;
        let lane = lane.into();
        self.check_truncated(lane, (*range.start()).max(LaneSeq(1)))?;
        let seqs = self.inner.index.range(lane, *range.start(), *range.end());
        Ok(seqs.into_iter().map_while(|seq| self.visible_frame(seq)))
    }

    /// Every visible record from global sequence `from` on, in global order.
    ///
    /// # Errors
    /// [`ReadError::Closed`].
    pub fn scan_all(
        &self,
        from: GlobalSeq,
    ) -> Result<impl Iterator<Item = Record> + '_, ReadError> {
        self.check_open()?;
        let visible = self.visible_seq();
        Ok(self
            .inner
            .reader
            .iter_from(from.max(GlobalSeq(1)))
            .take_while(move |frame| frame.global_seq() <= visible)
            .map(Record::new))
    }

    /// Follows `target` (one lane, or all) from `from` (a lane sequence for a lane, a
    /// global sequence for all), delivering records in order as they become visible.
    /// Subscribers pull from the log: a slow one costs the writer nothing.
    #[must_use]
    pub fn subscribe(&self, target: SubscriptionTarget, from: u64) -> Subscription<S> {
        Subscription::new(self.clone(), target, from)
    }

    /// Registers an applier starting at `from`. The global applied watermark is the
    /// minimum over registered appliers.
    #[must_use]
    pub fn register_applier(&self, name: impl Into<String>, from: HlcPoint) -> Applier {
        Applier::register(
            self.inner.appliers.clone(),
            self.inner.marks.clone(),
            name.into(),
            from,
        )
    }

    /// The registered appliers' names and positions, lowest first (what holds the
    /// global applied watermark back).
    #[must_use]
    pub fn appliers(&self) -> Vec<(String, HlcPoint)> {
        self.inner.appliers.lock().list()
    }

    /// Requests waiting in the writer's queue right now.
    #[must_use]
    pub fn queued(&self) -> usize {
        self.inner.requests.len()
    }

    /// Number of syncs and group commits so far.
    #[must_use]
    pub fn io_counters(&self) -> (u64, u64) {
        (
            self.inner.status.syncs.load(Ordering::Relaxed),
            self.inner.status.groups.load(Ordering::Relaxed),
        )
    }

    /// Drains the queue, syncs, and stops the writer. Later calls on any clone return a
    /// `Closed` error. Idempotent.
    ///
    /// # Errors
    /// [`SyncError::Poisoned`] if the final sync (or an earlier one) failed.
    pub fn close(&self) -> Result<(), SyncError> {
        self.inner.close()
    }

    pub(crate) fn index(&self) -> &LaneIndex {
        &self.inner.index
    }

    pub(crate) fn checkpoint_state(&self) -> &checkpoint::State<S> {
        &self.inner.checkpoints
    }

    pub(crate) fn wal_reader(&self) -> &WalReader<S> {
        &self.inner.reader
    }

    pub(crate) fn visible_seq(&self) -> GlobalSeq {
        GlobalSeq(self.inner.status.visible_seq.load(Ordering::Acquire))
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::Acquire)
    }

    pub(crate) fn visible_frame(&self, seq: GlobalSeq) -> Option<Record> {
        if seq > self.visible_seq() {
            return None;
        }
        self.inner.reader.get(seq).map(Record::new)
    }

    fn check_open(&self) -> Result<(), ReadError> {
        if self.is_closed() {
            Err(ReadError::Closed)
        } else {
            Ok(())
        }
    }

    /// The one validation of an atomic unit (one record, or a batch's records) before it
    /// reaches the writer, whatever door it came through: no record on [`LOSS_LANE`]
    /// (the engine's own), every key within
    /// [`IDEMPOTENCY_KEY_LEN_MAX`], every payload within `Options::max_record_bytes`, and the unit
    /// fits a segment of this log once framed (the log's own rule,
    /// [`WalOptions::unit_fits`]). What passes here the log accepts; a refusal writes
    /// nothing and poisons nothing.
    fn check_unit<'a>(
        &self,
        records: impl Iterator<Item = (LaneId, &'a [u8], &'a [u8])> + Clone,
    ) -> Result<(), AppendError> {
        let max = self.inner.options.max_record_bytes;
        for (lane, key, payload) in records.clone() {
            if lane == LOSS_LANE {
                return Err(AppendError::ReservedLane { lane });
            }
            check_key(key)?;
            if payload.len() > max as usize {
                return Err(AppendError::RecordTooLarge {
                    size: payload.len(),
                    max,
                });
            }
        }
        self.inner
            .log
            .unit_fits(records.map(|(_, key, payload)| (key.len(), payload.len())))
            .map(|_| ())
            .map_err(|e| AppendError::UnitTooLarge {
                bytes: e.bytes,
                capacity: e.capacity,
            })
    }

    /// Validates `append` ([`Engine::check_unit`]) and queues it for the writer: the
    /// single path of every single-record append.
    fn queue(
        &self,
        append: Append,
        block: bool,
    ) -> Result<Pending<Result<Receipt, AppendError>>, AppendError> {
        self.check_unit(std::iter::once((
            append.lane,
            &append.key[..],
            &append.payload[..],
        )))?;
        self.enqueue(append, block)
    }

    /// Queues `append` for the writer, unchecked: [`Engine::queue`] after validation, or
    /// the engine's own record of an accepted loss.
    fn enqueue(
        &self,
        append: Append,
        block: bool,
    ) -> Result<Pending<Result<Receipt, AppendError>>, AppendError> {
        let (reply, pending) = oneshot();
        self.send(Request::Append { append, reply }, block)?;
        Ok(pending)
    }

    fn send(&self, request: Request, block: bool) -> Result<(), AppendError> {
        if self.is_closed() {
            return Err(AppendError::Closed);
        }
        if let Some(cause) = self.inner.status.poison.get() {
            return Err(AppendError::Poisoned {
                cause: cause.clone(),
            });
        }
        if block {
            self.inner
                .requests
                .send(request)
                .map_err(|_| AppendError::Closed)
        } else {
            self.inner
                .requests
                .try_send(request)
                .map_err(|err| match err {
                    TrySendError::Full(_) => AppendError::WouldBlock,
                    TrySendError::Gone(_) => AppendError::Closed,
                })
        }
    }

    fn receive<T>(&self, pending: Pending<Result<T, AppendError>>) -> Result<T, AppendError> {
        pending.wait().unwrap_or(Err(AppendError::Closed))
    }

    fn sync_error(&self) -> SyncError {
        match self.inner.status.poison.get() {
            Some(cause) => SyncError::Poisoned {
                cause: cause.clone(),
            },
            None => SyncError::Closed,
        }
    }
}

/// Refuses a key longer than [`IDEMPOTENCY_KEY_LEN_MAX`] (a constant, so a follower checks it too
/// before sending, with this same function).
pub(crate) fn check_key(key: &[u8]) -> Result<(), AppendError> {
    if key.len() > IDEMPOTENCY_KEY_LEN_MAX {
        return Err(AppendError::KeyTooLong {
            size: key.len(),
            max: IDEMPOTENCY_KEY_LEN_MAX,
        });
    }
    Ok(())
}

/// An append in flight (see [`Engine::submit`]).
#[derive(Debug)]
#[must_use = "an append ticket says whether the append was accepted"]
pub struct AppendTicket {
    pending: Pending<Result<Receipt, AppendError>>,
}

impl AppendTicket {
    /// Waits for the writer's answer: the receipt once accepted and written.
    ///
    /// # Errors
    /// As [`Engine::append`].
    pub fn wait(self) -> Result<Receipt, AppendError> {
        self.pending.wait().unwrap_or(Err(AppendError::Closed))
    }
}

impl std::future::IntoFuture for AppendTicket {
    type Output = Result<Receipt, AppendError>;
    type IntoFuture = AppendFuture;

    /// Awaits the writer's answer instead of blocking in [`AppendTicket::wait`].
    fn into_future(self) -> AppendFuture {
        AppendFuture {
            state: AsyncReply::Queued(self.pending),
        }
    }
}

/// The receipt of an append, as a [`Future`](std::future::Future): made by
/// [`Engine::append_async`], [`Engine::append_durable_async`], or by awaiting an
/// [`AppendTicket`]. Needs no particular runtime; the writer wakes the task when it
/// answers. Dropping it gives up the answer, not the append.
#[derive(Debug)]
#[must_use = "the future says whether the append was accepted"]
pub struct AppendFuture {
    state: AsyncReply,
}

#[derive(Debug)]
enum AsyncReply {
    Queued(Pending<Result<Receipt, AppendError>>),
    Refused(Option<AppendError>),
}

impl std::future::Future for AppendFuture {
    type Output = Result<Receipt, AppendError>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        match &mut self.get_mut().state {
            AsyncReply::Queued(pending) => pending
                .poll_reply(cx)
                .map(|reply| reply.unwrap_or(Err(AppendError::Closed))),
            AsyncReply::Refused(error) => {
                std::task::Poll::Ready(Err(error.take().unwrap_or(AppendError::Closed)))
            }
        }
    }
}

impl<S: Storage> Inner<S> {
    fn close(&self) -> Result<(), SyncError> {
        let Some(thread) = self.writer.lock().take() else {
            return Err(SyncError::Closed);
        };
        // Hang up on followers first: what they sent is answered, nothing more comes.
        if let Some(mut server) = self.server.lock().take() {
            server.stop();
        }
        let (reply, pending) = oneshot();
        let result = match self.requests.send(Request::Close { reply }) {
            Ok(()) => pending.wait().unwrap_or(Err(SyncError::Closed)),
            Err(_) => Err(SyncError::Closed),
        };
        self.closed.store(true, Ordering::Release);
        // The writer has answered Close and returns right after; a panic in it is a bug
        // that must not be hidden.
        if let Err(panic) = thread.join() {
            std::panic::resume_unwind(panic);
        }
        // Nothing more will be written: let the next writer in without waiting.
        if let Some(mut holder) = self.holder.lock().take() {
            holder.release();
        }
        match (result, self.status.poison.get()) {
            (_, Some(cause)) => Err(SyncError::Poisoned {
                cause: cause.clone(),
            }),
            (result, None) => result,
        }
    }
}

impl<S: Storage> Drop for Inner<S> {
    fn drop(&mut self) {
        // Errors have nowhere to go from a drop; `close()` reports them.
        let _ = self.close();
    }
}

/// An existing log keeps the segment size it was created with; limits that would not fit
/// its segments shrink to half a segment, so an oversized record is refused up front
/// (`RecordTooLarge`) instead of failing in the log.
fn adopt_segment_size(mut options: Options, actual: u64) -> Options {
    if actual != options.segment_size {
        options.segment_size = actual;
        let fit = actual / 2;
        options.max_record_bytes = options
            .max_record_bytes
            .min(u32::try_from(fit).unwrap_or(u32::MAX));
        options.max_batch_bytes = options.max_batch_bytes.min(fit);
    }
    options
}

fn validate(options: &Options) -> Result<(), OpenError> {
    let invalid = |reason: String| Err(OpenError::InvalidOptions { reason });
    options.checkpoints.validate().or_else(invalid)?;
    if options.channel_capacity == 0 {
        return invalid("channel_capacity must be at least 1".into());
    }
    if options.max_group_requests == 0 {
        return invalid("max_group_requests must be at least 1".into());
    }
    if options.max_batch_bytes >= options.segment_size {
        return invalid(format!(
            "max_batch_bytes ({}) must be smaller than segment_size ({}): a batch never spans segments",
            options.max_batch_bytes, options.segment_size
        ));
    }
    if u64::from(options.max_record_bytes) >= options.segment_size {
        return invalid(format!(
            "max_record_bytes ({}) must be smaller than segment_size ({})",
            options.max_record_bytes, options.segment_size
        ));
    }
    Ok(())
}
