//! Errors, one enum per operation. Corruption (the disk holds something the log did not
//! write or cannot explain), I/O failure (the OS said no), misuse (the caller broke a
//! rule; nothing was written) and poison (an earlier write or sync failed, so the log
//! refuses all work until it is reopened) are always different variants.

use crate::format::{FrameIssue, HeaderIssue};
use crate::ids::{FencingToken, SegmentIndex};
use crate::io::IoOp;
use crate::recovery::DurabilityProof;
use std::fmt;
use std::io;
use std::path::PathBuf;
use tidelog_watermarks::GlobalSeq;

/// Why the log was poisoned: the first failed write or sync, or a broken invariant of the
/// log's own state. Kept for every later error.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PoisonCause {
    /// A store or sync failed.
    Io {
        /// What failed.
        op: IoOp,
        /// The file it failed on.
        path: PathBuf,
        /// The OS error kind.
        kind: io::ErrorKind,
        /// The raw OS error code, if any.
        os_code: Option<i32>,
    },
    /// A bug broke an invariant of the writer's own state; it stopped before storing
    /// anything that depends on it.
    Invariant(LogInvariant),
}

impl fmt::Display for PoisonCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PoisonCause::Io {
                op,
                path,
                kind,
                os_code,
            } => {
                write!(f, "{} {} failed ({:?}", op, path.display(), kind)?;
                if let Some(code) = os_code {
                    write!(f, ", os error {code}")?;
                }
                write!(f, ")")
            }
            PoisonCause::Invariant(invariant) => {
                write!(f, "a broken invariant of the log ({invariant})")
            }
        }
    }
}

/// An invariant of the log writer's own state (never of bytes read from disk: those are
/// corruption, reported as such). Each is checked in pairs, where the value is produced
/// and where it is used; a violation is a bug in tidelog, and the log stops (poisoned,
/// naming the invariant) instead of storing something plausible. Reopening recovers
/// everything durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LogInvariant {
    /// Frames buffered for one store carry the global sequences right after the last
    /// written one, contiguously.
    #[error("buffered frames carry contiguous global sequences after the last written one")]
    BufferedSequencesContiguous,
    /// The write offset stays within the segment's frame area, and the buffer ends at it.
    #[error("the write offset stays within the segment's frames and the buffer ends there")]
    WriteWithinFrames,
    /// A sync covers only what was written, and a finished sync is the one in flight.
    #[error("a sync never covers past the last write")]
    SyncWithinWritten,
    /// The seal frame always encodes (it has no key and no payload).
    #[error("the seal frame always encodes")]
    SealEncodes,
    /// A record the unit check accepted has a representable frame length and padding.
    #[error("a checked record's frame length is representable")]
    FrameLengthRepresentable,
    /// A segment recovery reported is still where it reported it.
    #[error("a segment recovery reported is still in its scan")]
    RecoveredSegmentPresent,
}

/// Errors of [`Wal::open`](crate::Wal::open) and [`verify`](crate::verify).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The options cannot work; fix them.
    #[error("invalid WAL options: {reason}")]
    InvalidOptions {
        /// What is wrong.
        reason: &'static str,
    },
    /// The OS refused an operation.
    #[error("I/O error {op} {}: {source}", path.display())]
    Io {
        /// What was being done.
        op: IoOp,
        /// On which file or directory.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// A file that is not a segment sits in the log directory; move it elsewhere.
    #[error("{} is not a tidelog segment; the WAL directory must hold only segment files (move it away)", path.display())]
    ForeignFile {
        /// The file.
        path: PathBuf,
    },
    /// A segment header does not verify.
    #[error("segment {} has an invalid header: {issue}", path.display())]
    BadSegmentHeader {
        /// The segment file.
        path: PathBuf,
        /// What is wrong.
        issue: HeaderIssue,
    },
    /// Segment indexes are not contiguous: a segment file is missing.
    #[error("segment {missing} is missing before {}; restore it from a backup, the log cannot be read past a gap", path.display())]
    SegmentGap {
        /// The index that is missing.
        missing: SegmentIndex,
        /// The first file after the gap.
        path: PathBuf,
    },
    /// A segment does not start where the previous one ended.
    #[error("segment {} starts at global sequence {found} but the log continues at {expected}", path.display())]
    SequenceMismatch {
        /// The segment file.
        path: PathBuf,
        /// Where the log continues.
        expected: GlobalSeq,
        /// Where the segment claims to start.
        found: GlobalSeq,
    },
    /// A frame that had been made durable is damaged (refused under
    /// `RecoveryMode::AbsoluteConsistency`; choose another mode to skip it knowingly).
    #[error("durable data is corrupt in {} at offset {offset}: {issue} (durability proven by {proof})", path.display())]
    CorruptDurableData {
        /// The segment file.
        path: PathBuf,
        /// Byte offset of the damaged frame.
        offset: u64,
        /// What is wrong.
        issue: FrameIssue,
        /// Why the damaged bytes must have been durable (so this is not a torn tail).
        proof: DurabilityProof,
    },
    /// The log is shorter than its extent record says it was: segments vanished, or the
    /// log (or its newest segment) was replaced by an older copy. Acknowledged records are
    /// gone. Nothing was changed.
    #[error("acknowledged records are missing from the log: {loss} (extent record {}); nothing was changed: restore the missing segments (or all of wal/) from a backup, or accept the loss explicitly (RecoveryMode::AcceptLoss, `tidelog recover --mode accept-loss`)", extent.display())]
    LostRecords {
        /// The extent record.
        extent: PathBuf,
        /// What is missing.
        loss: crate::extent::Loss,
    },
    /// Segments are missing between intact ones (a hole in the middle of the log), and
    /// [`RecoveryMode::AcceptLoss`](crate::RecoveryMode::AcceptLoss) was asked to accept
    /// it. A loss is accepted only at the end of the log: the segments after the hole
    /// would have to be kept with a hole every reader skips. Nothing was changed.
    #[error("acknowledged records are missing from the middle of the log: {loss} (extent record {}); a loss is accepted only at the end of the log, never as a hole between intact segments; nothing was changed: restore the missing segments from a backup, or, to give up everything from the hole on, move {} and every later segment out of the log folder and accept the loss again (RecoveryMode::AcceptLoss, `tidelog recover --mode accept-loss`: the whole tail is then recorded as lost and sequences continue above everything acknowledged); `tidelog dump` prints the records before the hole", extent.display(), after_gap.display())]
    HoleNotAccepted {
        /// The extent record.
        extent: PathBuf,
        /// What is missing.
        loss: crate::extent::Loss,
        /// The first segment after the hole.
        after_gap: PathBuf,
    },
    /// The newest segment's file is shorter than its header says (cut short): the log in
    /// it ends at `log_ends_at`, and nothing shows that records after it were
    /// acknowledged (else this is [`OpenError::LostRecords`]). Nothing was changed.
    #[error("segment {} was cut short: the file has {file_len} of its {segment_size} bytes and the log in it ends at global sequence {log_ends_at}; nothing was changed: restore the file from a backup, or cut the log there and give the file its length back (RecoveryMode::TolerateCorruptedTail, `tidelog recover --mode tolerate-tail`)", path.display())]
    SegmentCutShort {
        /// The segment file.
        path: PathBuf,
        /// Its length.
        file_len: u64,
        /// The length its header names.
        segment_size: u64,
        /// The last global sequence still readable in the log.
        log_ends_at: GlobalSeq,
    },
    /// The extent record exists but neither of its slots verifies. Nothing was changed.
    #[error("the extent record {} is damaged: {issue}; nothing was changed: restore it from a backup, or move it away to rebuild it from what the log holds (a loss from before then cannot be detected)", path.display())]
    BadExtent {
        /// The extent file.
        path: PathBuf,
        /// What is wrong.
        issue: String,
    },
    /// A segment was written under a higher fencing token: this writer has been fenced and
    /// must not write.
    #[error("fenced: segment {} was written under fencing token ({found}) which is above ours ({ours}); another writer holds the log", path.display())]
    Fenced {
        /// The segment file.
        path: PathBuf,
        /// Its token.
        found: FencingToken,
        /// The token this writer opened with.
        ours: FencingToken,
    },
    /// A bug broke an invariant of the log's own state while opening; nothing more was
    /// changed. Report the bug.
    #[error("a bug broke an invariant of the log while opening it: {0}; report the bug")]
    Invariant(LogInvariant),
}

/// Errors of [`Wal::append`](crate::Wal::append).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AppendError {
    /// Misuse: the unit has no frames. Nothing was written.
    #[error("an atomic unit needs at least one frame")]
    EmptyUnit,
    /// Misuse: frames must carry the next global sequences in order. Nothing was written.
    #[error("frame carries global sequence {found} but the next one is {expected}")]
    SequenceOutOfOrder {
        /// The sequence the frame should carry.
        expected: GlobalSeq,
        /// The sequence it carries.
        found: GlobalSeq,
    },
    /// Misuse: key plus payload exceed `WalOptions::max_record_bytes`. Nothing was written.
    #[error("record {global_seq} has {bytes} bytes of key and payload, above the limit of {max}")]
    RecordTooLarge {
        /// The record.
        global_seq: GlobalSeq,
        /// Its size.
        bytes: u64,
        /// The limit.
        max: u32,
    },
    /// Misuse: idempotency keys are at most 65535 bytes. Nothing was written.
    #[error("record {global_seq} has a key of {len} bytes, above the limit of {max}")]
    KeyTooLong {
        /// The record.
        global_seq: GlobalSeq,
        /// Key length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Misuse: the unit does not fit in an empty segment. Nothing was written; split it or
    /// raise `WalOptions::segment_size`.
    #[error("atomic unit of {bytes} bytes does not fit in a segment (capacity {capacity} bytes)")]
    UnitTooLarge {
        /// Bytes the unit needs.
        bytes: u64,
        /// Bytes a segment holds.
        capacity: u64,
    },
    /// The file system has no room for the next segment (`ENOSPC` or `EDQUOT` while
    /// preparing it). Nothing of this unit was written, and the log is not poisoned:
    /// everything appended before it stays, and the same append succeeds once there is
    /// room.
    #[error("No space left on device in {} for the log's next segment, which needs {needed} bytes; nothing of this record was written and the log goes on: free at least {needed} bytes there (a checkpoint lets log truncation remove old segments) and append again", dir.display())]
    NoSpace {
        /// The log directory.
        dir: PathBuf,
        /// Bytes a segment takes.
        needed: u64,
    },
    /// The write failed; the log is now poisoned. Reopen it to recover.
    #[error("I/O error {op} {}: {source}; the WAL is poisoned, reopen it to recover", path.display())]
    Io {
        /// What was being done.
        op: IoOp,
        /// On which file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// An earlier write or sync failed; the log refuses all work. Reopen it to recover.
    #[error("the WAL is poisoned since {cause}; reopen it to recover")]
    Poisoned {
        /// The first failure.
        cause: PoisonCause,
    },
    /// A bug broke an invariant of the log's own state; nothing of this unit was stored
    /// and the log is now poisoned. Reopen it to recover, and report the bug.
    #[error("a bug broke an invariant of the log: {0}; nothing of this unit was stored and the WAL is poisoned: reopen it to recover, and report the bug")]
    Invariant(LogInvariant),
    /// Segment indexes are used up: the log cannot start another segment. Nothing was
    /// written and the log is not poisoned.
    #[error("the log has used every segment index (the last is {last}); nothing was written: copy the records to a new log")]
    OutOfSegmentIndexes {
        /// The last segment's index.
        last: SegmentIndex,
    },
}

/// An atomic unit that needs more room than a segment has for frames, from
/// [`WalOptions::unit_fits`](crate::WalOptions::unit_fits): it can never be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("atomic unit of {bytes} bytes does not fit in a segment (capacity {capacity} bytes)")]
pub struct UnitTooLarge {
    /// Bytes the unit needs, framed.
    pub bytes: u64,
    /// Bytes a segment holds for frames.
    pub capacity: u64,
}

impl From<UnitTooLarge> for AppendError {
    fn from(e: UnitTooLarge) -> AppendError {
        AppendError::UnitTooLarge {
            bytes: e.bytes,
            capacity: e.capacity,
        }
    }
}

/// Errors of [`Wal::sync`](crate::Wal::sync).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SyncError {
    /// The sync failed; the log is now poisoned and the sync is never retried (after a
    /// failed fsync the kernel may have dropped the data). Reopen to recover.
    #[error("I/O error {op} {}: {source}; the WAL is poisoned, reopen it to recover", path.display())]
    Io {
        /// What was being done.
        op: IoOp,
        /// On which file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// An earlier write or sync failed; the log refuses all work. Reopen it to recover.
    #[error("the WAL is poisoned since {cause}; reopen it to recover")]
    Poisoned {
        /// The first failure.
        cause: PoisonCause,
    },
    /// A bug broke an invariant of the log's own state; the sync was not counted and the
    /// log is now poisoned. Reopen it to recover, and report the bug.
    #[error("a bug broke an invariant of the log: {0}; the WAL is poisoned: reopen it to recover, and report the bug")]
    Invariant(LogInvariant),
}

/// An I/O failure inside the crate, before it is turned into an operation's error.
#[derive(Debug)]
pub(crate) struct IoFailure {
    pub(crate) op: IoOp,
    pub(crate) path: PathBuf,
    pub(crate) source: io::Error,
}

impl IoFailure {
    pub(crate) fn new(op: IoOp, path: impl Into<PathBuf>, source: io::Error) -> IoFailure {
        IoFailure {
            op,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn cause(&self) -> PoisonCause {
        PoisonCause::Io {
            op: self.op,
            path: self.path.clone(),
            kind: self.source.kind(),
            os_code: self.source.raw_os_error(),
        }
    }
}

impl From<IoFailure> for OpenError {
    fn from(f: IoFailure) -> OpenError {
        OpenError::Io {
            op: f.op,
            path: f.path,
            source: f.source,
        }
    }
}

impl From<IoFailure> for AppendError {
    fn from(f: IoFailure) -> AppendError {
        AppendError::Io {
            op: f.op,
            path: f.path,
            source: f.source,
        }
    }
}

impl From<IoFailure> for SyncError {
    fn from(f: IoFailure) -> SyncError {
        SyncError::Io {
            op: f.op,
            path: f.path,
            source: f.source,
        }
    }
}

/// Why the writer stopped inside the crate: the OS refused, or an invariant broke.
#[derive(Debug)]
pub(crate) enum Stop {
    Io(IoFailure),
    Broken(LogInvariant),
}

impl From<IoFailure> for Stop {
    fn from(f: IoFailure) -> Stop {
        Stop::Io(f)
    }
}

impl From<LogInvariant> for Stop {
    fn from(invariant: LogInvariant) -> Stop {
        Stop::Broken(invariant)
    }
}

impl Stop {
    pub(crate) fn cause(&self) -> PoisonCause {
        match self {
            Stop::Io(f) => f.cause(),
            Stop::Broken(invariant) => PoisonCause::Invariant(*invariant),
        }
    }
}

impl From<Stop> for OpenError {
    fn from(stop: Stop) -> OpenError {
        match stop {
            Stop::Io(f) => f.into(),
            Stop::Broken(invariant) => OpenError::Invariant(invariant),
        }
    }
}

impl From<Stop> for AppendError {
    fn from(stop: Stop) -> AppendError {
        match stop {
            Stop::Io(f) => f.into(),
            Stop::Broken(invariant) => AppendError::Invariant(invariant),
        }
    }
}
