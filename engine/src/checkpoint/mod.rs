//! Checkpoints, retention, log truncation and online backup (see `docs/checkpoints.md`).
//!
//! - A caller hands the engine a snapshot of its state taken at a durable point
//!   ([`Engine::checkpoint`](crate::Engine::checkpoint)); it is written atomically under a unique name with a checksum,
//!   the point it covers and every lane's head at that point (`store.rs`, `format.rs`).
//! - Retention keeps the first checkpoint, the last `keep_last`, milestones and pinned
//!   ones, and never one a reader has open; it runs after each checkpoint and on demand.
//! - The log is truncated below the lowest sequence still needed by the checkpoint
//!   recovery may start from, a registered applier, a subscriber or a [`LogHold`]
//!   ([`Engine::truncation_status`](crate::Engine::truncation_status) says who holds it back).
//! - On open, recovery starts from the newest valid checkpoint: the log must reach back to
//!   just after it (a gap is an error, never silent), lanes whose records were truncated
//!   get their heads from it, and only the retained log is scanned.

pub(crate) mod backup;
pub(crate) mod format;
pub(crate) mod holds;
pub(crate) mod store;

pub use backup::{
    backup_from_files, backup_from_files_reporting, check_backup_destination, BackupError,
    BackupReport, BACKUP_MARKER,
};
pub use format::{CheckpointIssue, LaneHead};
pub use holds::LogHold;
pub use store::{Checkpoint, PruneReport};

use crate::error::OpenError;
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
use tidelog_watermarks::{GlobalSeq, HlcPoint, LaneId};

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

/// Where log truncation stands (see [`Engine::truncation_status`](crate::Engine::truncation_status)).
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

/// What [`Engine::truncate_log`](crate::Engine::truncate_log) did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TruncationReport {
    /// The status it acted on.
    pub status: TruncationStatus,
    /// What the log removed.
    pub removed: TruncateReport,
}

/// The engine's checkpoint state: one field of the engine.
pub(crate) struct State<S: Storage> {
    pub(crate) store: Store<S>,
    pub(crate) holds: Arc<Mutex<LogHolds>>,
    pub(crate) truncator: Truncator<S>,
    pub(crate) recovered_from: Option<CheckpointInfo>,
    /// Lane heads of the checkpoint recovery started from, applied to the index by
    /// [`State::bootstrap`].
    pub(crate) start_lanes: Vec<LaneHead>,
    /// Serializes checkpoint + prune + truncate.
    pub(crate) serial: Mutex<()>,
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
