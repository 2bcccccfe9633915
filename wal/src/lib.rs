//! `tidelog-wal`: the on-disk log of tidelog.
//!
//! Records are framed, checksummed and written into preallocated segment files that
//! readers see zero-copy through a shared mapping; one fdatasync per group commit makes
//! them durable (see `io/real.rs` for why the writer uses `pwrite` rather than stores
//! through the mapping); recovery reads the segments back and classifies every anomaly
//! (see `docs/recovery.md`). The format is defined in [`mod@format`] and `docs/format.md`.
//! Tools that read a log while another process writes it use [`scan`]: read-only,
//! unmapped, lock-free snapshots.
//!
//! Guarantees: the log never returns a byte that was not written, never loses a frame that
//! was synced (or says exactly what it lost, in a tolerant [`RecoveryMode`]), never lets a
//! fenced writer write, and never panics on anything it finds on disk. After any failed
//! store or sync the log is poisoned and refuses all work; reopen it to recover.
//!
//! ```
//! use tidelog_wal::{NewFrame, Wal, WalOptions};
//! use tidelog_watermarks::{GlobalSeq, LaneId, LaneSeq};
//!
//! let dir = tempfile::tempdir()?;
//! let opts = WalOptions { segment_size: 1 << 20, ..WalOptions::default() };
//! let (mut wal, recovered) = Wal::open(dir.path(), opts.clone())?;
//! assert_eq!(recovered.last_seq, GlobalSeq::ZERO);
//! let frame = NewFrame {
//!     global_seq: GlobalSeq(1),
//!     lane: LaneId(7),
//!     lane_seq: LaneSeq(1),
//!     wall_ms: 1_700_000_000_000,
//!     key: b"",
//!     payload: b"hello",
//! };
//! wal.append(&[frame])?;
//! assert_eq!(wal.sync()?, GlobalSeq(1));
//! let reader = wal.reader();
//! assert_eq!(reader.get(GlobalSeq(1)).map(|f| f.payload().to_vec()), Some(b"hello".to_vec()));
//! drop(wal);
//! let (_wal, recovered) = Wal::open(dir.path(), opts)?;
//! assert_eq!(recovered.last_seq, GlobalSeq(1));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![deny(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
// `is_multiple_of` needs Rust 1.87; the workspace promises 1.85.
#![allow(clippy::manual_is_multiple_of)]

pub mod error;
pub mod extent;
pub mod files;
pub mod format;
#[cfg(any(test, feature = "testing"))]
pub mod fuzzing;
pub mod ids;
pub mod io;
pub mod reader;
pub mod recovery;
mod reuse;
pub mod scan;
pub mod segment;
pub mod takeover;
pub mod truncate;
mod walker;
pub mod writer;

pub use error::{AppendError, LogInvariant, OpenError, PoisonCause, SyncError, UnitTooLarge};
pub use files::FileError;
pub use ids::{FencingToken, SegmentIndex, SegmentOffset};
#[cfg(any(test, feature = "testing"))]
pub use io::SimDisk;
pub use io::{RealStorage, Storage};
pub use reader::{FrameRef, WalReader};
pub use recovery::{
    verify, verify_reporting, verify_with, verify_with_extent, verify_with_extent_reporting,
    DurabilityProof, Finding, FindingKind, RecoveryMode, RecoveryReport, RefusedSegment,
    RemovalReason, RemovedFile, SkippedRegion, TornTail, Verdict, VerifyReport,
};
pub use scan::{
    LogEnd, LogRecords, LogSnapshot, ScanError, ScanOptions, ScannedRecord, SegmentInfo,
    SegmentRole, SegmentSummary,
};
pub use takeover::FenceReport;
pub use truncate::{CopyReport, LiveSegment, TruncateReport, Truncator};
pub use writer::{NewFrame, Recovered, SyncJob, Wal, WalOptions};

pub use tidelog_watermarks::{GlobalSeq, LaneId, LaneSeq};
