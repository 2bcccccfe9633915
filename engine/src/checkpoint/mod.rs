//! Checkpoints, retention, log truncation and online backup (see `docs/checkpoints.md`).
//!
//! - A caller hands the engine a snapshot of its state taken at a durable point
//!   ([`Engine::checkpoint`]); it is written atomically under a unique name with a checksum,
//!   the point it covers and every lane's head at that point (`store.rs`, `format.rs`).
//! - Retention keeps the first checkpoint, the last `keep_last`, milestones and pinned
//!   ones, and never one a reader has open; it runs after each checkpoint and on demand.
//! - The log is truncated below the lowest sequence still needed by the checkpoint
//!   recovery may start from, a registered applier, a subscriber or a [`LogHold`]
//!   ([`Engine::truncation_status`] says who holds it back).
//! - On open, recovery starts from the newest valid checkpoint: the log must reach back to
//!   just after it (a gap is an error, never silent), lanes whose records were truncated
//!   get their heads from it, and only the retained log is scanned.

mod backup;
mod format;
mod holds;
mod store;

pub use backup::{
    backup_from_files, backup_from_files_reporting, BackupError, BackupReport, BACKUP_MARKER,
};
pub use format::{CheckpointIssue, LaneHead};
pub use holds::LogHold;
pub use store::{Checkpoint, PruneReport};

use crate::engine::Engine;
use crate::error::{OpenError, ReadError};
use crate::index::LaneIndex;
use holds::{HoldKind, LogHolds};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use store::Store;
use tidelog_wal::files::FileError;
use tidelog_wal::io::{RealStorage, Storage};
use tidelog_wal::{Recovered, TruncateReport, Truncator, WalReader};
use tidelog_watermarks::{GlobalSeq, HlcPoint, LaneId, LaneSeq, WatermarkKind};

/// Name of the checkpoint folder inside the database directory.
pub(crate) const CHECKPOINT_DIR: &str = "checkpoints";

/// Identifies a checkpoint within its database (increasing in the order taken).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CheckpointId(pub u64);

impl fmt::Display for CheckpointId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "checkpoint #{}", self.0)
    }
}

/// A checkpoint on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointInfo {
    /// Its id.
    pub id: CheckpointId,
    /// The point it covers.
    pub point: HlcPoint,
    /// Whether it is a milestone (never pruned).
    pub milestone: bool,
    /// Whether it is pinned (not pruned until unpinned).
    pub pinned: bool,
    /// Its file.
    pub path: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
}

/// A checkpoint file as [`list_checkpoints`] found it: one that verifies, or a damaged one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedCheckpoint {
    /// The checkpoint. For a damaged file the id, the point's global sequence and the kind
    /// come from its file name, and the point's wall clock is 0 (unknown).
    pub info: CheckpointInfo,
    /// Why the file does not verify; `None` when it does. Recovery skips a damaged
    /// checkpoint (falling back to an older one) and the next prune removes it.
    pub damage: Option<CheckpointIssue>,
    /// Where each lane stood at the checkpoint's point (every lane that had a record by
    /// then), so a lane none of whose records the log still holds keeps its head; empty
    /// for a damaged file.
    pub lane_heads: Vec<LaneHead>,
}

impl ListedCheckpoint {
    /// Whether the file fails verification.
    #[must_use]
    pub fn is_damaged(&self) -> bool {
        self.damage.is_some()
    }
}

/// Every checkpoint file of the database in `dir`, oldest first, each read and verified,
/// without creating, repairing or removing anything: safe on a database another process is
/// writing. A damaged file is listed with its [`CheckpointIssue`], never an error; a
/// checkpoint the writer prunes meanwhile is left out, one it is writing appears only
/// once complete (interrupted writes, `*.tmp`, are ignored). A database without a
/// checkpoint folder has none.
///
/// # Errors
/// [`CheckpointError::Io`] if `dir` or the folder cannot be listed or a file cannot be read.
pub fn list_checkpoints(dir: &Path) -> Result<Vec<ListedCheckpoint>, CheckpointError> {
    list_checkpoints_with_storage(&RealStorage, dir)
}

/// As [`list_checkpoints`], through `storage` (the simulated disk in tests).
///
/// # Errors
/// As [`list_checkpoints`].
pub fn list_checkpoints_with_storage<S: Storage>(
    storage: &S,
    dir: &Path,
) -> Result<Vec<ListedCheckpoint>, CheckpointError> {
    let folder = dir.join(CHECKPOINT_DIR);
    let scan = match store::scan_folder(storage, &folder) {
        Ok(scan) => scan,
        Err(e) if e.source.kind() == std::io::ErrorKind::NotFound => {
            // No folder: no checkpoint, provided the database directory itself is there.
            tidelog_wal::files::list(storage, dir)?;
            return Ok(Vec::new());
        }
        Err(e) => return Err(e.into()),
    };
    Ok(scan
        .checkpoints
        .into_iter()
        .map(|found| ListedCheckpoint {
            info: CheckpointInfo {
                id: CheckpointId(found.parsed.id),
                point: found.point(),
                milestone: found.parsed.milestone,
                pinned: found.pinned,
                path: folder.join(&found.name),
                bytes: found.bytes,
            },
            damage: found.verified.err(),
            lane_heads: found.lanes,
        })
        .collect())
}

/// Checkpoint retention and truncation settings (part of [`Options`](crate::Options)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointOptions {
    /// Keep the newest this many checkpoints (besides the first, milestones and pinned
    /// ones). Default 3; at least 1.
    pub keep_last: usize,
    /// Keep the log after the oldest of the newest this many checkpoints, so recovery can
    /// fall back to an older one if the newest is damaged. Default 2; at least 1, at most
    /// `keep_last`.
    pub log_for_last: usize,
    /// Prune and truncate after every checkpoint (default `true`).
    pub auto_truncate: bool,
}

impl Default for CheckpointOptions {
    fn default() -> Self {
        CheckpointOptions {
            keep_last: 3,
            log_for_last: 2,
            auto_truncate: true,
        }
    }
}

impl CheckpointOptions {
    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.keep_last == 0 {
            return Err("checkpoints.keep_last must be at least 1".into());
        }
        if self.log_for_last == 0 || self.log_for_last > self.keep_last {
            return Err(format!(
                "checkpoints.log_for_last ({}) must be between 1 and keep_last ({})",
                self.log_for_last, self.keep_last
            ));
        }
        Ok(())
    }
}

/// Whether retention treats a checkpoint as ordinary or keeps it forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CheckpointKind {
    /// Pruned once older than the last `keep_last` (unless first or pinned).
    #[default]
    Regular,
    /// Never pruned.
    Milestone,
}

/// Why a checkpoint operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// The point is not durable yet: a crash could take the log back below it.
    #[error("cannot checkpoint at {point}: only {durable} is durable; wait for durability (Engine::sync) first")]
    NotDurable {
        /// The point asked for.
        point: GlobalSeq,
        /// The durable point now.
        durable: GlobalSeq,
    },
    /// The point lies before the retained log, so lane heads at it are unknown.
    #[error("cannot checkpoint at {point}: the log now starts at {log_starts_at}; checkpoint at a later point")]
    BeforeLog {
        /// The point asked for.
        point: GlobalSeq,
        /// The first sequence the log holds.
        log_starts_at: GlobalSeq,
    },
    /// The caller's state writer failed; nothing was written.
    #[error("the checkpoint state writer failed: {source}; nothing was written")]
    State {
        /// Its error.
        #[source]
        source: std::io::Error,
    },
    /// No valid checkpoint has this id.
    #[error("{id} does not exist (pruned, or never taken)")]
    NotFound {
        /// The id.
        id: CheckpointId,
    },
    /// A checkpoint file failed verification (it is skipped from now on).
    #[error("checkpoint {} is damaged ({issue}); it is skipped", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        issue: CheckpointIssue,
    },
    /// The engine is closed.
    #[error("the engine is closed: reopen the database")]
    Closed,
    /// A file operation failed.
    #[error(transparent)]
    Io(#[from] FileError),
}

/// A claim on the log: something that still needs the records from a point on, and so
/// keeps truncation from removing them (see [`TruncationStatus::holding_back`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LogClaim {
    /// No checkpoint exists: the log is the only copy of the state, nothing can go.
    NoCheckpoint,
    /// Recovery may start from this checkpoint; the log after it is kept.
    Checkpoint {
        /// The checkpoint.
        id: CheckpointId,
        /// Its point.
        point: HlcPoint,
    },
    /// A registered applier has not applied past this point.
    Applier {
        /// Its name.
        name: String,
        /// Where it stands.
        point: HlcPoint,
    },
    /// A subscription's cursor.
    Subscriber {
        /// Its registration id.
        id: u64,
    },
    /// A [`LogHold`] (a backup in progress, or a caller's own).
    Hold {
        /// The name it was taken with.
        name: String,
    },
    /// A follower, possibly in another process, still reading (its cursor file in
    /// `<dir>/followers/`).
    Follower {
        /// The follower's id (its cursor file's name).
        id: String,
    },
}

impl fmt::Display for LogClaim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LogClaim::NoCheckpoint => {
                f.write_str("no checkpoint yet (take one to let the log shrink)")
            }
            LogClaim::Checkpoint { id, point } => write!(f, "{id} at {}", point.global_sequence),
            LogClaim::Applier { name, point } => {
                write!(f, "applier \"{name}\" at {}", point.global_sequence)
            }
            LogClaim::Subscriber { id } => write!(f, "subscriber #{id}"),
            LogClaim::Hold { name } => write!(f, "log hold \"{name}\""),
            LogClaim::Follower { id } => write!(f, "follower {id}"),
        }
    }
}

/// Where log truncation stands (see [`Engine::truncation_status`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TruncationStatus {
    /// First sequence the log holds.
    pub log_starts_at: GlobalSeq,
    /// Truncation may remove segments wholly below this sequence.
    pub floor: GlobalSeq,
    /// Every claim with the first sequence it needs, lowest first; those at `floor`
    /// are what holds truncation back.
    pub claims: Vec<(LogClaim, GlobalSeq)>,
    /// Segment files of the log (the last is being written).
    pub segments: usize,
    /// Segments a truncation now would remove.
    pub removable_segments: usize,
    /// Bytes of log segment files on disk.
    pub log_bytes: u64,
}

impl TruncationStatus {
    /// The claims that set the floor: why the disk does not shrink further.
    #[must_use]
    pub fn holding_back(&self) -> Vec<&LogClaim> {
        self.claims
            .iter()
            .filter(|(_, from)| *from == self.floor)
            .map(|(claim, _)| claim)
            .collect()
    }
}

/// What [`Engine::truncate_log`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TruncationReport {
    /// The status it acted on.
    pub status: TruncationStatus,
    /// What the log removed.
    pub removed: TruncateReport,
}

/// The engine's checkpoint state: one field of the engine.
pub(crate) struct State<S: Storage> {
    store: Store<S>,
    holds: Arc<Mutex<LogHolds>>,
    truncator: Truncator<S>,
    recovered_from: Option<CheckpointInfo>,
    /// Lane heads of the checkpoint recovery started from, applied to the index by
    /// [`State::bootstrap`].
    start_lanes: Vec<LaneHead>,
    /// Serializes checkpoint + prune + truncate.
    serial: Mutex<()>,
}

impl<S: Storage> State<S> {
    /// Opens the checkpoint folder and finds where recovery starts: the newest valid
    /// checkpoint. The log must reach back to just after it and forward to it.
    pub(crate) fn open(
        storage: S,
        dir: &Path,
        options: CheckpointOptions,
        reader: &WalReader<S>,
        truncator: Truncator<S>,
        recovered: &Recovered,
        accepted_losses: &[(GlobalSeq, GlobalSeq)],
    ) -> Result<Self, OpenError> {
        let store = Store::open(storage, dir.join(CHECKPOINT_DIR), options)
            .map_err(OpenError::Checkpoint)?;
        let start = store
            .open_at_or_before(GlobalSeq(u64::MAX))
            .map_err(|e| match e {
                CheckpointError::Io(e) => OpenError::Checkpoint(e),
                other => OpenError::Checkpoint(FileError {
                    op: tidelog_wal::io::IoOp::Open,
                    path: store.dir().to_path_buf(),
                    source: std::io::Error::other(other.to_string()),
                }),
            })?;
        let log_starts_at = reader.first_seq();
        let covered = start.as_ref().map_or(0, |c| c.point().global_sequence);
        // Sequences whose loss was accepted explicitly need no checkpoint.
        let accepted = accepted_losses.iter().any(|(a, b)| {
            a.0 <= covered.saturating_add(1) && b.0.saturating_add(1) >= log_starts_at.0
        });
        if log_starts_at.0 > covered.saturating_add(1) && !accepted {
            return Err(OpenError::LogGap {
                log_starts_at,
                checkpoint: start.as_ref().map(|c| c.info().path.clone()),
                covered: GlobalSeq(covered),
            });
        }
        if covered > recovered.last_seq.0 {
            return Err(OpenError::CheckpointBeyondLog {
                checkpoint: start
                    .as_ref()
                    .map(|c| c.info().path.clone())
                    .unwrap_or_default(),
                covered: GlobalSeq(covered),
                log_ends_at: recovered.last_seq,
            });
        }
        Ok(State {
            store,
            holds: Arc::new(Mutex::new(LogHolds::default())),
            truncator,
            recovered_from: start.as_ref().map(|c| c.info().clone()),
            start_lanes: start.map(|c| c.lane_heads().to_vec()).unwrap_or_default(),
            serial: Mutex::new(()),
        })
    }

    /// Completes the open's bootstrap after the retained log was indexed: lanes none of
    /// whose records the log still holds take their head from the checkpoint, and the last
    /// point comes from the log's end even if it holds no frame.
    pub(crate) fn bootstrap(
        &self,
        index: &LaneIndex,
        recovered: &Recovered,
        last: &mut HlcPoint,
        lane_last: &mut HashMap<LaneId, HlcPoint>,
    ) {
        for head in &self.start_lanes {
            index.seed(head.lane, head.lane_seq, head.point);
            lane_last.entry(head.lane).or_insert(head.point);
        }
        if last.global_sequence < recovered.last_seq.0 {
            *last = HlcPoint {
                wall_ms: recovered.last_wall_ms,
                global_sequence: recovered.last_seq.0,
            };
        }
    }

    pub(crate) fn register_subscriber(&self, from: GlobalSeq) -> LogHold {
        LogHold::register(&self.holds, HoldKind::Subscriber, from)
    }
}

impl<S: Storage> Engine<S> {
    fn ckpt(&self) -> Result<&State<S>, CheckpointError> {
        if self.is_closed() {
            return Err(CheckpointError::Closed);
        }
        Ok(self.checkpoint_state())
    }

    /// Writes a checkpoint: `state` is the caller's snapshot, covering every record up to
    /// `point` (which must be durable). Atomic: after a crash it is there whole or not at
    /// all, and the previous checkpoints are untouched. Then, with
    /// [`CheckpointOptions::auto_truncate`], prunes old checkpoints and truncates the log.
    ///
    /// # Errors
    /// [`CheckpointError::NotDurable`], [`CheckpointError::BeforeLog`], I/O errors.
    pub fn checkpoint(
        &self,
        point: HlcPoint,
        state: &[u8],
    ) -> Result<CheckpointInfo, CheckpointError> {
        self.checkpoint_as(point, CheckpointKind::Regular, |out| {
            out.extend_from_slice(state);
            Ok(())
        })
    }

    /// As [`Engine::checkpoint`], with a kind, and the state produced by a writer callback.
    ///
    /// # Errors
    /// As [`Engine::checkpoint`]; [`CheckpointError::State`] if `write` fails.
    pub fn checkpoint_as(
        &self,
        point: HlcPoint,
        kind: CheckpointKind,
        write: impl FnOnce(&mut Vec<u8>) -> std::io::Result<()>,
    ) -> Result<CheckpointInfo, CheckpointError> {
        crate::observe::span!("tidelog.checkpoint", seq = point.global_sequence);
        let ckpt = self.ckpt()?;
        let seq = point.seq();
        let durable = self
            .watermark_handle()
            .lock()
            .current(WatermarkKind::Durable, None)
            .seq();
        if seq > durable {
            return Err(CheckpointError::NotDurable {
                point: seq,
                durable,
            });
        }
        let mut state = Vec::new();
        write(&mut state).map_err(|source| CheckpointError::State { source })?;
        let _serial = ckpt.serial.lock();
        let log_starts_at = self.wal_reader().first_seq();
        if seq.0.saturating_add(1) < log_starts_at.0 {
            return Err(CheckpointError::BeforeLog {
                point: seq,
                log_starts_at,
            });
        }
        let lanes = self.lane_heads_at(seq);
        let info = ckpt
            .store
            .write(point, kind == CheckpointKind::Milestone, &lanes, &state)?;
        // The checkpoint's point is durable: the extent record learns it (one sync).
        ckpt.truncator.note_durable(seq)?;
        if ckpt.store.options().auto_truncate {
            ckpt.store.prune()?;
            self.truncate_locked(ckpt)?;
        }
        Ok(info)
    }

    fn lane_heads_at(&self, seq: GlobalSeq) -> Vec<LaneHead> {
        let reader = self.wal_reader();
        let mut heads: Vec<LaneHead> = self
            .index()
            .heads_at(seq)
            .into_iter()
            .map(|(lane, lane_seq, last)| LaneHead {
                lane,
                lane_seq,
                point: match last {
                    Ok(at) => HlcPoint {
                        wall_ms: reader.get(at).map_or(0, |f| f.wall_ms()),
                        global_sequence: at.0,
                    },
                    Err(base) => base,
                },
            })
            .collect();
        heads.sort_by_key(|h| h.lane);
        heads
    }

    /// The newest checkpoint that verifies (a damaged one is skipped, never returned).
    /// It stays on disk while the returned value lives.
    ///
    /// # Errors
    /// [`CheckpointError::Closed`], I/O errors.
    pub fn latest_checkpoint(&self) -> Result<Option<Checkpoint>, CheckpointError> {
        self.ckpt()?.store.open_at_or_before(GlobalSeq(u64::MAX))
    }

    /// The newest checkpoint covering at most `seq` that verifies.
    ///
    /// # Errors
    /// As [`Engine::latest_checkpoint`].
    pub fn checkpoint_at_or_before(
        &self,
        seq: GlobalSeq,
    ) -> Result<Option<Checkpoint>, CheckpointError> {
        self.ckpt()?.store.open_at_or_before(seq)
    }

    /// Every valid checkpoint, oldest first.
    #[must_use]
    pub fn checkpoints(&self) -> Vec<CheckpointInfo> {
        self.checkpoint_state().store.list()
    }

    /// The checkpoint recovery started from when this engine opened: the caller restores
    /// its state from it and replays the log after its point (`scan_all(point + 1)`).
    #[must_use]
    pub fn recovered_checkpoint(&self) -> Option<&CheckpointInfo> {
        self.checkpoint_state().recovered_from.as_ref()
    }

    /// Pins a checkpoint: retention keeps it (across reopens) until it is unpinned.
    ///
    /// # Errors
    /// [`CheckpointError::NotFound`], I/O errors.
    pub fn pin_checkpoint(&self, id: CheckpointId) -> Result<(), CheckpointError> {
        self.ckpt()?.store.set_pinned(id, true)
    }

    /// Unpins a checkpoint; the next prune may remove it.
    ///
    /// # Errors
    /// [`CheckpointError::NotFound`], I/O errors.
    pub fn unpin_checkpoint(&self, id: CheckpointId) -> Result<(), CheckpointError> {
        self.ckpt()?.store.set_pinned(id, false)
    }

    /// Applies retention now (see [`CheckpointOptions`]).
    ///
    /// # Errors
    /// I/O errors (what was removed before stays removed).
    pub fn prune_checkpoints(&self) -> Result<PruneReport, CheckpointError> {
        let ckpt = self.ckpt()?;
        let _serial = ckpt.serial.lock();
        ckpt.store.prune()
    }

    /// Keeps the log from `from` on from being truncated until the hold is dropped. The
    /// hook followers and backups use; any caller may take one.
    #[must_use]
    pub fn hold_log(&self, name: impl Into<String>, from: GlobalSeq) -> LogHold {
        LogHold::register(
            &self.checkpoint_state().holds,
            HoldKind::Named(name.into()),
            from,
        )
    }

    /// What log truncation could remove now, and what holds it back.
    #[must_use]
    pub fn truncation_status(&self) -> TruncationStatus {
        let ckpt = self.checkpoint_state();
        let mut claims = Vec::new();
        match ckpt.store.claiming_checkpoint() {
            Some(info) => claims.push((
                LogClaim::Checkpoint {
                    id: info.id,
                    point: info.point,
                },
                GlobalSeq(info.point.global_sequence.saturating_add(1)),
            )),
            None => claims.push((LogClaim::NoCheckpoint, GlobalSeq(1))),
        }
        for (name, point) in self.appliers() {
            claims.push((
                LogClaim::Applier { name, point },
                GlobalSeq(point.global_sequence.saturating_add(1)),
            ));
        }
        for (id, kind, from) in ckpt.holds.lock().list() {
            let claim = match kind {
                HoldKind::Named(name) => LogClaim::Hold { name },
                HoldKind::Subscriber => LogClaim::Subscriber { id },
            };
            claims.push((claim, from));
        }
        for (id, from) in crate::forward::live_cursors(self.dir()) {
            claims.push((LogClaim::Follower { id }, from));
        }
        claims.sort_by_key(|(_, from)| *from);
        let floor = claims.first().map_or(GlobalSeq(1), |(_, from)| *from);
        let segments = ckpt.truncator.segments();
        let removable = segments
            .windows(2)
            .take_while(|pair| matches!(pair, [_, next] if next.first_seq <= floor))
            .count();
        TruncationStatus {
            log_starts_at: self.wal_reader().first_seq(),
            floor,
            claims,
            segments: segments.len(),
            removable_segments: removable,
            log_bytes: segments.len() as u64 * ckpt.truncator.segment_size(),
        }
    }

    /// Removes the log segments wholly below the floor of [`Engine::truncation_status`].
    ///
    /// # Errors
    /// I/O errors; the log stays contiguous and opens either way.
    pub fn truncate_log(&self) -> Result<TruncationReport, CheckpointError> {
        crate::observe::span!("tidelog.truncation");
        let ckpt = self.ckpt()?;
        let _serial = ckpt.serial.lock();
        self.truncate_locked(ckpt)
    }

    fn truncate_locked(&self, ckpt: &State<S>) -> Result<TruncationReport, CheckpointError> {
        let status = self.truncation_status();
        // Where the log will start: the first segment that holds the floor or anything
        // after it is kept. The points of the records the lane index will drop are read
        // while their segments are still there.
        let segments = ckpt.truncator.segments();
        let start = segments
            .windows(2)
            .find_map(|pair| match pair {
                [kept, next] if next.first_seq > status.floor => Some(kept.first_seq),
                _ => None,
            })
            .or_else(|| segments.last().map(|s| s.first_seq));
        let reader = self.wal_reader();
        let bases: HashMap<LaneId, HlcPoint> = start
            .map(|start| self.index().last_below(start))
            .unwrap_or_default()
            .into_iter()
            .map(|(lane, seq)| {
                let wall_ms = reader.get(seq).map_or(0, |f| f.wall_ms());
                (
                    lane,
                    HlcPoint {
                        wall_ms,
                        global_sequence: seq.0,
                    },
                )
            })
            .collect();
        let removed = ckpt.truncator.remove_segments_below(status.floor)?;
        // The index keeps one entry per record still in the log (memory stays flat over
        // any number of appends); if the log starts elsewhere than planned, the next
        // truncation catches up.
        if start == Some(removed.first_seq) {
            self.index().forget_below(removed.first_seq, &bases);
        }
        Ok(TruncationReport { status, removed })
    }

    /// [`ReadError::Truncated`] if `lane_seq` of `lane` was truncated from the log.
    pub(crate) fn check_truncated(&self, lane: LaneId, lane_seq: LaneSeq) -> Result<(), ReadError> {
        match self.first_readable(lane) {
            Some((first_readable, log_starts_at)) if lane_seq < first_readable => {
                Err(ReadError::Truncated {
                    lane,
                    lane_seq,
                    first_readable,
                    log_starts_at,
                })
            }
            _ => Ok(()),
        }
    }

    /// The lane sequence `lane`'s readable records start at, when earlier ones were
    /// truncated away (`None`: the lane is unknown).
    pub(crate) fn first_readable(&self, lane: LaneId) -> Option<(LaneSeq, GlobalSeq)> {
        let log_starts_at = self.wal_reader().first_seq();
        // Records the index still lists but whose segment was removed in this process are
        // skipped too.
        let lane_seq = self.index().first_from(lane, log_starts_at)?;
        Some((lane_seq, log_starts_at))
    }
}
