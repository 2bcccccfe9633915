//! Typed errors, one enum per operation. Misuse, conflicts, a closed engine, a poisoned
//! writer and I/O failures are different variants, each with a message that says what
//! happened and what to do.

use std::path::PathBuf;
use std::sync::Arc;
use tidelog_watermarks::{GlobalSeq, LaneId, LaneSeq};

/// Why the writer stopped acknowledging: the first failed write or sync. After it the
/// engine is poisoned; only a close and reopen (which recovers from disk) gets back.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WriterFailure {
    /// Copying frames into the log failed.
    #[error("writing to the log failed: {0}")]
    Append(#[source] tidelog_wal::AppendError),
    /// fdatasync failed; the kernel may have dropped the dirty pages, so tidelog
    /// never retries it.
    #[error("syncing the log failed: {0}")]
    Sync(#[source] tidelog_wal::SyncError),
    /// Refreshing the writer lease failed, or found it taken or fenced by a newer term:
    /// another writer may now own the log, so this one stopped acknowledging at once.
    #[error("the writer lease was lost ({0}); this process is no longer the writer")]
    LeaseLost(#[source] crate::lease::LeaseError),
    /// The writer lease ran out before it could be refreshed (a stalled refresher, a
    /// paused process or an unreachable backend); the writer stopped acknowledging before
    /// anyone else could take the lease.
    #[error(
        "the writer lease expired before it was refreshed; this process is no longer the writer"
    )]
    LeaseExpired,
    /// A bug broke an invariant of the writer's own state: it stopped before writing or
    /// acknowledging anything that depends on it. Reopen the database (it recovers what
    /// is durable) and report the bug.
    #[error("a bug broke an invariant of the writer: {invariant}{}; nothing more is written or acknowledged: reopen the database, and report the bug", log.as_ref().map_or_else(String::new, |e| format!(" (the log said: {e})")))]
    Invariant {
        /// The invariant.
        invariant: WriterInvariant,
        /// What the log answered, when the log's answer broke it.
        #[source]
        log: Option<tidelog_wal::AppendError>,
    },
}

/// An invariant of the engine's writer thread (the program's own state, never bytes from
/// disk), checked where a value is produced and again where it is used. A violation is a
/// bug; the writer poisons itself with [`WriterFailure::Invariant`] naming it rather than
/// write or acknowledge something plausible.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WriterInvariant {
    /// The log accepts every unit the engine's one validation passed
    /// ([`Engine::append_with`](crate::Engine::append_with)): misuse never reaches it.
    #[error("the log accepts every unit the engine validated")]
    ValidatedUnitAccepted,
    /// Global and lane sequences are handed out contiguously, each right after the last.
    #[error("global and lane sequences are handed out contiguously")]
    SequencesContiguous,
    /// A sync covers what was written when it began, never past the last write.
    #[error("a sync covers exactly what was written when it began")]
    SyncWithinWritten,
    /// Visible never passes durable (under `Visibility::Durable`) nor written.
    #[error("visible never passes durable (or written, under Visibility::Written)")]
    VisibleWithinDurable,
}

impl WriterFailure {
    /// Whether this process stopped being the writer (its lease was lost or ran out),
    /// as opposed to a failed write or sync: another process may now be the writer.
    #[must_use]
    pub fn is_lease_loss(&self) -> bool {
        matches!(
            self,
            WriterFailure::LeaseLost(_) | WriterFailure::LeaseExpired
        )
    }
}

/// Why `Engine::open` refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The directory holds files but no tidelog marker: it is not a tidelog database.
    /// Nothing was changed. Point tidelog at an empty or new directory, or at a database.
    #[error("{path} is not a tidelog database (it is not empty and has no {marker} file); nothing was changed: use an empty directory or an existing database")]
    NotADatabase {
        /// The directory.
        path: PathBuf,
        /// The marker file that was looked for.
        marker: &'static str,
    },
    /// The path names a file (or something else that is not a directory): a database is a
    /// directory. Nothing was changed.
    #[error("{path} is not a directory; nothing was changed: a database is a directory (point at a new, empty or database directory)")]
    NotADirectory {
        /// The path.
        path: PathBuf,
    },
    /// The database was written by a newer tidelog whose format this version cannot read.
    #[error("{path} uses tidelog format version {found}, newer than this build supports ({supported}); nothing was changed: upgrade tidelog to open it")]
    NewerFormat {
        /// The directory.
        path: PathBuf,
        /// Version found on disk.
        found: u32,
        /// Highest version this build reads.
        supported: u32,
    },
    /// The marker file exists but cannot be parsed.
    #[error("the tidelog marker {path} is damaged ({reason}); nothing was changed: restore it from a backup or inspect it by hand")]
    BadMarker {
        /// The marker file.
        path: PathBuf,
        /// What was wrong.
        reason: &'static str,
    },
    /// The writer lease is held by another writer, but nothing answers on the database's
    /// socket: the writer is starting, stopping, or serves no followers.
    #[error("the database's writer does not answer on {path} ({source}); retry shortly, or open when it has stopped")]
    NoWriter {
        /// The socket.
        path: PathBuf,
        /// Why connecting failed.
        #[source]
        source: std::io::Error,
    },
    /// The writer lease could not be taken: most often another process (or another
    /// `Engine` in this one) is the writer (`LeaseError::Held`, which names the holder
    /// and when its lease expires). Nothing was changed.
    #[error("cannot become the writer of this database: {0}")]
    Lease(#[source] crate::lease::LeaseError),
    /// An option is out of range.
    #[error("invalid option: {reason}")]
    InvalidOptions {
        /// What is wrong, and the allowed range.
        reason: String,
    },
    /// A file operation failed.
    #[error("{op} {path} failed: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// On which file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Recovering the log failed (corruption, foreign files, fencing, I/O).
    #[error("recovering the log failed: {0}")]
    Wal(#[from] tidelog_wal::OpenError),
    /// The checkpoint folder could not be read or cleaned.
    #[error("opening the checkpoints failed: {0}")]
    Checkpoint(#[source] tidelog_wal::FileError),
    /// The log starts after the point the newest valid checkpoint covers: records in
    /// between are missing. Nothing was changed; restore the missing segments or a
    /// checkpoint from a backup.
    #[error("the log starts at {log_starts_at} but the newest valid checkpoint ({}) covers only up to {covered}: records in between are missing; restore them or the checkpoint from a backup", checkpoint.as_ref().map_or_else(|| "none".to_string(), |p| p.display().to_string()))]
    LogGap {
        /// First sequence the log holds.
        log_starts_at: GlobalSeq,
        /// The newest valid checkpoint, if any.
        checkpoint: Option<PathBuf>,
        /// The point it covers (0 without one).
        covered: GlobalSeq,
    },
    /// The newest valid checkpoint covers records the log does not hold: durable records
    /// were lost from the log. Nothing was changed; restore the log from a backup.
    #[error("checkpoint {} covers up to {covered} but the log ends at {log_ends_at}: durable records are missing from the log; restore it from a backup", checkpoint.display())]
    CheckpointBeyondLog {
        /// The checkpoint.
        checkpoint: PathBuf,
        /// The point it covers.
        covered: GlobalSeq,
        /// The last sequence of the log.
        log_ends_at: GlobalSeq,
    },
}

/// Why an append was not acknowledged. When an append fails, nothing of it was written,
/// except for `Poisoned` and `Wait`, where it may or may not be in the log (see each).
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum AppendError {
    /// The record names the lane the engine keeps for its own records
    /// ([`LOSS_LANE`](crate::LOSS_LANE): the accepted losses). Nothing was written.
    #[error("lane {lane} is reserved for the engine's own records of accepted losses (tidelog::LOSS_LANE); nothing was written: append to another lane")]
    ReservedLane {
        /// The lane asked for.
        lane: LaneId,
    },
    /// The payload is larger than `Options::max_record_bytes`. Nothing was written.
    #[error("record of {size} bytes is larger than the maximum of {max} bytes (Options::max_record_bytes); nothing was written")]
    RecordTooLarge {
        /// The payload's size.
        size: usize,
        /// The configured maximum.
        max: u32,
    },
    /// The idempotency key is longer than the format allows. Nothing was written.
    #[error("idempotency key of {size} bytes is longer than the maximum of {max} bytes; nothing was written")]
    KeyTooLong {
        /// The key's size.
        size: usize,
        /// The maximum.
        max: usize,
    },
    /// The record or batch, with its frame headers, needs more room than a segment has
    /// (`Options::segment_size`): it can never be written. Nothing was written and the
    /// engine goes on; split the batch, or open with larger segments.
    #[error("a record or batch of {bytes} bytes on disk does not fit in a segment ({capacity} bytes for frames); nothing was written: split it or use a larger segment_size")]
    UnitTooLarge {
        /// Bytes it needs in the log.
        bytes: u64,
        /// Bytes a segment holds for frames.
        capacity: u64,
    },
    /// The file system has no room for the log's next segment. Nothing was written and the
    /// engine goes on (it is not poisoned): free space and append again.
    #[error("No space left on device in {} for the log's next segment, which needs {needed} bytes; nothing was written and the database goes on: free at least {needed} bytes there (take a checkpoint so log truncation removes old segments, or remove other files) and append again", dir.display())]
    NoSpace {
        /// The log directory.
        dir: std::path::PathBuf,
        /// Bytes a segment takes.
        needed: u64,
    },
    /// The batch is empty, or has more records or bytes than allowed. Nothing was written.
    #[error("batch of {records} records and {bytes} bytes is outside the limits (1..={max_records} records, {max_bytes} bytes); nothing was written")]
    BatchOutOfBounds {
        /// Records in the batch.
        records: usize,
        /// Payload bytes in the batch.
        bytes: u64,
        /// `Options::max_batch_records`.
        max_records: usize,
        /// `Options::max_batch_bytes`.
        max_bytes: u64,
    },
    /// Optimistic concurrency: the lane is not at the expected sequence. Nothing was
    /// written. Re-read the lane and retry with its current sequence.
    #[error("conflict on lane {lane}: expected it at lane sequence {expected} but it is at {actual}; nothing was written: re-read the lane and retry")]
    Conflict {
        /// The lane.
        lane: LaneId,
        /// What the caller expected.
        expected: LaneSeq,
        /// Where the lane actually is.
        actual: LaneSeq,
    },
    /// `try_append` found the writer's queue full. Nothing was queued; retry later.
    #[error(
        "the writer's queue is full; nothing was queued: retry, or use append() to wait for room"
    )]
    WouldBlock,
    /// The engine was closed. Nothing was written.
    #[error("the engine is closed; nothing was written: reopen the database")]
    Closed,
    /// A follower could not reach the writer; the append was not sent, so nothing was
    /// written. Retry; the writer may be starting or handing off.
    #[error("no writer to forward to: {message}; nothing was written: retry")]
    NoWriter {
        /// What failed.
        message: String,
    },
    /// A forwarded append was sent, but the writer went away before answering: the
    /// record may or may not be in the log. Retry with an idempotency key
    /// (`append_idempotent`) to get the original receipt instead of a duplicate.
    #[error("the writer went away before answering ({message}); the record may or may not be in the log: retry with an idempotency key")]
    Unanswered {
        /// What happened to the connection.
        message: String,
    },
    /// The writer refused a forwarded append (it is poisoned, closing, or the request
    /// was invalid); nothing was written.
    #[error("the writer refused the forwarded append: {message}")]
    WriterRefused {
        /// The writer's error.
        message: String,
    },
    /// A write or sync failed earlier; the engine refuses all appends. This append was
    /// not acknowledged. Close and reopen the database to recover from disk.
    #[error("the log is poisoned ({cause}); this append was not acknowledged: close and reopen the database, which recovers what is on disk")]
    Poisoned {
        /// The first failure.
        cause: Arc<WriterFailure>,
    },
}

/// Why a read failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The engine was closed.
    #[error("the engine is closed: reopen the database to read it")]
    Closed,
    /// The lane sequence 0 names no record (lane sequences start at 1).
    #[error("lane sequence 0 names no record: lane sequences start at 1")]
    ZeroLaneSeq,
    /// The record was truncated away with the head of the log (it is covered by a
    /// checkpoint); read the checkpoint instead, or records from `first_readable` on.
    #[error("record {lane_seq} of lane {lane} was truncated from the log (the log starts at global sequence {log_starts_at}; this lane is readable from {first_readable}); restore it from a checkpoint")]
    Truncated {
        /// The lane.
        lane: LaneId,
        /// The record asked for.
        lane_seq: LaneSeq,
        /// The lane's first record still in the log.
        first_readable: LaneSeq,
        /// The first global sequence the log holds.
        log_starts_at: GlobalSeq,
    },
}

/// Why `close` or `sync` could not make everything durable.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum SyncError {
    /// The engine was already closed.
    #[error("the engine is already closed")]
    Closed,
    /// The writer is poisoned: what was not durable before the failure is not durable
    /// now. Reopen to recover.
    #[error("the log is poisoned ({cause}); records not durable before the failure may be lost: reopen the database")]
    Poisoned {
        /// The first failure.
        cause: Arc<WriterFailure>,
    },
}
