//! What can go wrong in a command, and the exit code each failure gives scripts.
//!
//! | code | meaning |
//! |---:|---|
//! | 0 | success |
//! | 1 | the operation failed: I/O error, not a database, poisoned writer, bad input, ... |
//! | 2 | `verify`: the only damage is a torn tail (or a leftover) that opening repairs |
//! | 3 | durable data is corrupt (`verify`, `dump`, `stats`, `recover`) |
//! | 4 | another process has the database open for writing (`append`, `recover`) |
//! | 5 | `append --expect`: the lane is not at the expected sequence; nothing was written |
//! | 64 | usage: unknown command or option, bad option value (clap's usage errors) |
//! | 130, 143 | `append`, `dump --follow`: stopped cleanly by SIGINT, SIGTERM |
//!
//! Clap exits 2 on usage errors by default, which would collide with `verify`'s 2; usage
//! errors exit 64 (`EX_USAGE` of sysexits.h) instead.

use std::path::PathBuf;
use std::process::ExitCode;
use tidelog::wal::format::HeaderIssue;
use tidelog::wal::scan::ScanError;

/// Exit codes (see the module docs and `cli/README.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Success.
    Ok,
    /// The operation failed.
    Failure,
    /// `verify`: only a torn tail that opening repairs.
    TornTail,
    /// Durable data is corrupt.
    Corrupt,
    /// Another process has the database open for writing.
    Busy,
    /// `append --expect` found the lane elsewhere.
    Conflict,
    /// Bad command line.
    Usage,
    /// Stopped cleanly by a signal: 128 plus its number (130 SIGINT, 143 SIGTERM).
    Signal(i32),
}

impl Exit {
    /// The process exit status.
    #[must_use]
    pub fn code(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::Failure => 1,
            Exit::TornTail => 2,
            Exit::Corrupt => 3,
            Exit::Busy => 4,
            Exit::Conflict => 5,
            Exit::Usage => 64,
            Exit::Signal(code) => u8::try_from(code).unwrap_or(1),
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(exit.code())
    }
}

/// Why a command failed. Each message says what happened and what to do.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The directory does not exist.
    #[error("{} does not exist; nothing was created: check the path (only `append` and `demo` create a database)", .0.display())]
    Missing(PathBuf),
    /// The directory is not a tidelog database.
    #[error("{} is not a tidelog database (no TIDELOG marker file); nothing was changed: point at a database directory", .0.display())]
    NotADatabase(PathBuf),
    /// The marker file cannot be parsed.
    #[error("the tidelog marker {} is damaged ({reason}); nothing was changed: restore it from a backup or inspect it by hand", path.display())]
    BadMarker {
        /// The marker file.
        path: PathBuf,
        /// What is wrong.
        reason: &'static str,
    },
    /// The database was written by a newer tidelog.
    #[error("{} uses tidelog format version {found}, newer than this build reads ({supported}); nothing was changed: use a newer tidelog", path.display())]
    NewerFormat {
        /// The directory.
        path: PathBuf,
        /// Version on disk.
        found: u32,
        /// Newest version this build reads.
        supported: u32,
    },
    /// An existing database has segments of another size than `--segment-size`.
    #[error("{} has segments of {}; --segment-size {} applies only to a new database: drop the option", path.display(), crate::units::format_size(*existing), crate::units::format_size(*asked))]
    SegmentSizeMismatch {
        /// The database.
        path: PathBuf,
        /// Size of its segments.
        existing: u64,
        /// What was asked for.
        asked: u64,
    },
    /// Opening the database failed.
    #[error(transparent)]
    Open(tidelog::OpenError),
    /// Opening the database for writing failed because its file system is full: the
    /// lease record, the extent record or a new segment found no room.
    #[error(
        "{source}\nThe file system holding {} is full. `tidelog checkpoint {}` frees the log \
         segments below a checkpoint (it opens the database in the room its reserve, {}, \
         keeps for this); or free space on that file system and retry",
        dir.display(),
        dir.display(),
        dir.join(tidelog::reserve::RESERVE_FILE).display()
    )]
    FileSystemFull {
        /// The database.
        dir: PathBuf,
        /// What failed.
        #[source]
        source: Box<tidelog::OpenError>,
    },
    /// `checkpoint` or `truncate` on a full file system found no reserve to open in.
    #[error(
        "{source}\nThe file system holding {} is full and the database's reserve ({}) is \
         already used: free at least {} KiB there (other files), then run this command \
         again; it frees log segments and puts the reserve back",
        dir.display(),
        dir.join(tidelog::reserve::RESERVE_FILE).display(),
        tidelog::reserve::RESERVE_BYTES / 1024
    )]
    NoReserveLeft {
        /// The database.
        dir: PathBuf,
        /// What failed.
        #[source]
        source: Box<tidelog::OpenError>,
    },
    /// An append was refused or failed.
    #[error(transparent)]
    Append(#[from] tidelog::AppendError),
    /// A sync or close failed.
    #[error(transparent)]
    Sync(#[from] tidelog::SyncError),
    /// Reading through the engine failed.
    #[error(transparent)]
    Read(tidelog::ReadError),
    /// Waiting for a watermark failed.
    #[error(transparent)]
    Wait(#[from] tidelog::WaitError),
    /// Reading the log read-only failed.
    #[error("reading the log failed: {0}")]
    Scan(#[from] ScanError),
    /// Following the log (`dump --follow`) failed.
    #[error(transparent)]
    Follow(#[from] tidelog::forward::FollowError),
    /// `backup` failed.
    #[error("{}", backup_message(.0))]
    Backup(#[from] tidelog::checkpoint::BackupError),
    /// Listing the checkpoints failed.
    #[error("reading the checkpoints failed: {0}")]
    Checkpoints(#[from] tidelog::CheckpointError),
    /// `checkpoint --at` names a sequence the log does not hold (durably).
    #[error("cannot checkpoint at global sequence {asked}: the log holds {first} to {last} durably; nothing was changed: pick a point in that range (or leave out --at for the last one)")]
    PointOutsideLog {
        /// The sequence asked for.
        asked: u64,
        /// First sequence still in the log.
        first: u64,
        /// Last durable sequence.
        last: u64,
    },
    /// `verify` could not read the log at all.
    #[error("checking the log failed: {0}")]
    Verify(#[source] tidelog::wal::OpenError),
    /// A line of standard input is longer than a record may be.
    #[error("line {line} of standard input is longer than the largest record ({max} bytes); it and the lines after it were not appended")]
    LineTooLong {
        /// 1-based line number.
        line: u64,
        /// Largest payload accepted.
        max: u32,
    },
    /// Reading standard input failed.
    #[error("reading standard input failed: {0}; the lines after the last receipt printed were not appended")]
    Stdin(#[source] std::io::Error),
    /// Writing standard output failed.
    #[error("writing standard output failed: {0}")]
    Stdout(#[source] std::io::Error),
    /// Standard output's reader went away (a closed pipe, as in `tidelog stats DIR | head
    /// -1`). The command stops printing and exits quietly, as a command whose output was
    /// cut short by its reader does; what it changed before printing stays changed.
    #[error("standard output was closed by its reader")]
    OutputClosed,
    /// A file operation of the command itself failed.
    #[error("{what} {} failed: {source}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// On which path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A worker thread of `demo` or `bench` panicked.
    #[error("a {0} thread panicked; its results are lost")]
    ThreadPanicked(&'static str),
}

impl From<tidelog::OpenError> for CliError {
    fn from(e: tidelog::OpenError) -> Self {
        CliError::Open(e)
    }
}

impl CliError {
    /// An open of the database in `dir` that failed, named as a full file system when
    /// that is why (so the message says how to get out of it).
    #[must_use]
    pub fn opening(dir: &std::path::Path, e: tidelog::OpenError) -> Self {
        if tidelog::reserve::is_no_space(&e) {
            CliError::FileSystemFull {
                dir: dir.to_path_buf(),
                source: Box::new(e),
            }
        } else {
            CliError::Open(e)
        }
    }

    /// The exit code this failure gives.
    #[must_use]
    pub fn exit(&self) -> Exit {
        match self {
            CliError::Open(
                tidelog::OpenError::Lease(tidelog::lease::LeaseError::Held { .. })
                | tidelog::OpenError::NoWriter { .. },
            ) => Exit::Busy,
            CliError::Open(tidelog::OpenError::Wal(e)) | CliError::Verify(e) => {
                if wal_open_is_corruption(e) {
                    Exit::Corrupt
                } else {
                    Exit::Failure
                }
            }
            CliError::Append(tidelog::AppendError::Conflict { .. }) => Exit::Conflict,
            CliError::Append(tidelog::AppendError::NoWriter { .. }) => Exit::Busy,
            CliError::Scan(e)
            | CliError::Follow(tidelog::forward::FollowError::Scan(e))
            | CliError::Backup(tidelog::checkpoint::BackupError::Scan(e))
                if e.is_corruption() =>
            {
                Exit::Corrupt
            }
            _ => Exit::Failure,
        }
    }
}

/// Whether the log's own open error means its data is damaged.
fn wal_open_is_corruption(e: &tidelog::wal::OpenError) -> bool {
    use tidelog::wal::OpenError as W;
    match e {
        W::BadSegmentHeader { issue, .. } => !matches!(
            issue,
            HeaderIssue::UnsupportedVersion { .. } | HeaderIssue::UnknownFlags { .. }
        ),
        W::ForeignFile { .. }
        | W::SegmentGap { .. }
        | W::SequenceMismatch { .. }
        | W::CorruptDurableData { .. }
        | W::LostRecords { .. }
        | W::SegmentCutShort { .. }
        | W::HoleNotAccepted { .. }
        | W::BadExtent { .. } => true,
        _ => false,
    }
}

/// A failed backup's message, with what to do about the partial copy when there is one.
fn backup_message(err: &tidelog::checkpoint::BackupError) -> String {
    use tidelog::checkpoint::BackupError as B;
    match err {
        B::DestinationExists { .. }
        | B::DestinationInsideDatabase { .. }
        | B::Destination { .. } => err.to_string(),
        _ => {
            format!("{err}; the destination has no BACKUP file: delete it and run the backup again")
        }
    }
}
