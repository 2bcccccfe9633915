//! # tidelog
//!
//! An embeddable write-ahead log for Rust programs that cannot afford to lose a record.
//! Many threads append; one writer thread orders every record, copies it into mmapped,
//! preallocated segments and syncs once per group commit; watermarks say how far each
//! record has travelled (accepted, written, durable, visible, emitted, applied), globally
//! and per lane, and callers block on the one they need.
//!
//! ```
//! use std::time::Duration;
//! use tidelog::{Engine, Options, SubscriptionTarget};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let engine = Engine::open(dir.path(), Options::default()).unwrap();
//! let first = engine.append(1, b"one".to_vec()).unwrap();
//! engine
//!     .watermark_handle()
//!     .wait_for_durable_on_lane(1, first.point, Duration::from_secs(5))
//!     .unwrap();
//! let mut all = engine.subscribe(SubscriptionTarget::All, 1);
//! assert_eq!(all.next_timeout(Duration::from_secs(5)).unwrap().unwrap().payload(), b"one");
//! ```
//!
//! Layout: [`Engine`] (open, append, read, subscribe, close) in `engine.rs`; the writer
//! thread in `writer.rs`; the appender-to-writer reply slot in `handoff.rs`; the lane
//! index in `index.rs`; the directory marker and lock in `marker.rs`; options and errors
//! beside them; the raw `pwrite` + `fdatasync` loop the benchmarks compare against in
//! [`baseline`]. The log itself is [`tidelog_wal`], the watermarks
//! [`tidelog_watermarks`]; both are re-exported.
#![deny(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod applier;
pub mod baseline;
pub mod checkpoint;
mod engine;
mod error;
pub mod forward;
#[doc(hidden)]
pub mod handoff;
mod holder;
mod index;
pub mod lease;
mod marker;
mod options;
mod record;
mod subscription;
mod writer;

pub use applier::Applier;
pub use checkpoint::{
    BackupError, BackupReport, Checkpoint, CheckpointError, CheckpointId, CheckpointInfo,
    CheckpointKind, CheckpointOptions, Holder, ListedCheckpoint, LogHold, TruncationStatus,
};
pub use engine::{AppendFuture, AppendTicket, Engine, MAX_KEY_BYTES};
pub use error::{AppendError, OpenError, ReadError, SyncError, WriterFailure};
pub use forward::{Database, Follower, LaneLogs, LaneLogsError};
pub use marker::{read_format_version, FORMAT_VERSION, WAL_DIR};
pub use options::{LeaseOptions, Options, SyncPolicy, Visibility};
pub use record::{BatchEntry, Receipt, Record};
pub use subscription::{SubscribeError, Subscription, SubscriptionTarget};
pub use tidelog_wal as wal;
pub use tidelog_wal::{RecoveryMode, RecoveryReport};
pub use tidelog_watermarks as watermarks;
pub use tidelog_watermarks::{
    GlobalSeq, HlcPoint, LaneId, LaneSeq, WaitError, WatermarkAdvanceHandle, WatermarkKind,
    WatermarkView, WatermarkWait,
};
