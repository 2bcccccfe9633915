//! The engine handle: opening a database, its state, closing it. `impl Engine` is one
//! file per concern under this folder: here opening, status and closing; `append.rs` the
//! appends and their one validation; `read.rs` reads, subscriptions and appliers;
//! `checkpoints.rs` checkpoints, holds and truncation; `backup.rs` online backups.

mod append;
mod backup;
mod checkpoints;
mod read;

pub(crate) use append::check_key;
pub use append::{AppendFuture, AppendTicket, IDEMPOTENCY_KEY_LEN_MAX};

use crate::applier::ApplierSet;
use crate::checkpoint;
use crate::error::WriterFailure;
use crate::error::{OpenError, SyncError};
use crate::forward::{Publisher, Server};
use crate::handoff::oneshot;
use crate::holder::LeaseHolder;
use crate::index::LaneIndex;
use crate::marker;
use crate::options::Options;
use crate::record::{Append, Record};
use crate::writer::{Request, Requests, Shared, Start, Status, Writer};
use parking_lot::Mutex;
use std::collections::HashMap;
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

    fn sync_error(&self) -> SyncError {
        match self.inner.status.poison.get() {
            Some(cause) => SyncError::Poisoned {
                cause: cause.clone(),
            },
            None => SyncError::Closed,
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
