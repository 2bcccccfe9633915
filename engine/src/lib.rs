//! # tidelog
//!
//! An embeddable write-ahead log for Rust programs that cannot afford to lose a record.
//! Many threads (or tasks) append; one writer thread orders every record, stores it in
//! preallocated segments and syncs once per group commit; watermarks say how far each
//! record has travelled (accepted, written, durable, visible, emitted, applied), globally
//! and per lane, and callers wait on the one they need, blocking or with `.await`.
//!
//! This page walks through embedding it, one runnable step at a time. The programs in
//! `engine/examples/` put the steps together: `event_log` (appends and appliers),
//! `async_service` (a tokio service that awaits durability) and `follower` (a second
//! process appending through the writer).
//!
//! ## 1. Open
//!
//! [`Engine::open`] creates the database directory or recovers the one there (a torn
//! tail is cut, damaged durable data is an error, see [`RecoveryMode`]), takes the writer
//! lease and starts the writer thread. [`Options`] sets segment size, group commit and the
//! [`SyncPolicy`]. The handle is cheap to clone; every clone is the same database.
//!
//! ```
//! use tidelog::{Engine, Options};
//!
//! let dir = tempfile::tempdir()?;
//! let engine = Engine::open(dir.path(), Options::default())?;
//! assert_eq!(engine.recovery_report().frames, 0); // a new database
//! engine.close()?; // drains, syncs, releases the lease (dropping the last clone does too)
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## 2. Append
//!
//! Every record goes to a lane (a `u32`, for instance one per aggregate, tenant or
//! partition); lanes are ordered among themselves by one global sequence. The
//! [`Receipt`] gives both sequences and the record's [`HlcPoint`]. [`Engine::append`]
//! returns once the record is written, [`Engine::append_durable`] once it is synced;
//! [`Engine::append_batch`] is atomic across lanes, [`Engine::append_expecting`] refuses
//! to write on a stale lane sequence, [`Engine::append_idempotent`] never writes a key
//! twice.
//!
//! ```
//! # let dir = tempfile::tempdir()?;
//! # let engine = tidelog::Engine::open(dir.path(), tidelog::Options::default())?;
//! use tidelog::{AppendError, BatchEntry, LaneSeq};
//!
//! let placed = engine.append_durable(7, b"order placed".to_vec())?;
//! assert_eq!(placed.lane_seq, LaneSeq(1));
//! let batch = engine.append_batch(vec![
//!     BatchEntry::new(7, b"order paid".to_vec()),
//!     BatchEntry::new(8, b"invoice issued".to_vec()),
//! ])?;
//! assert_eq!(batch[1].point.global_sequence, placed.point.global_sequence + 2);
//! let stale = engine.append_expecting(7, LaneSeq(1), b"order cancelled".to_vec());
//! assert!(matches!(stale, Err(AppendError::Conflict { .. })));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## 3. Wait
//!
//! A plain append is written, not yet durable. Wait for the watermark you need through
//! the [`WatermarkAdvanceHandle`]: `wait_for_<kind>` blocks with a timeout,
//! `wait_for_<kind>_async` is a [`WatermarkWait`] future for any async runtime. Either is
//! woken only by the advance that covers its target, and fails at once with
//! [`WaitError::Poisoned`] if a write or sync failed (nothing more becomes durable in this
//! process). The async form of the appends is [`Engine::append_durable_async`].
//!
//! ```
//! # let dir = tempfile::tempdir()?;
//! # let engine = tidelog::Engine::open(dir.path(), tidelog::Options::default())?;
//! use std::time::Duration;
//!
//! let receipt = engine.append(7, b"order placed".to_vec())?;
//! let marks = engine.watermark_handle();
//! marks.wait_for_durable_on_lane(7, receipt.point, Duration::from_secs(5))?;
//!
//! // The same under tokio: the future registers its waker, an advance wakes it.
//! let runtime = tokio::runtime::Builder::new_current_thread().build()?;
//! let shipped = runtime.block_on(engine.append_durable_async(7, b"order shipped".to_vec()))?;
//! runtime.block_on(marks.wait_for_visible_on_lane_async(7, shipped.point))?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## 4. Subscribe
//!
//! A [`Subscription`] hands out records in order as they become visible (by default, once
//! durable): one lane by lane sequence, or every lane by global sequence. It is pulled,
//! so a slow subscriber costs the writer nothing. [`Engine::read`] and [`Engine::scan`]
//! read what is visible directly.
//!
//! ```
//! # let dir = tempfile::tempdir()?;
//! # let engine = tidelog::Engine::open(dir.path(), tidelog::Options::default())?;
//! use std::time::Duration;
//! use tidelog::SubscriptionTarget;
//!
//! let mut orders = engine.subscribe(SubscriptionTarget::Lane(7.into()), 1);
//! engine.append_durable(7, b"order placed".to_vec())?;
//! let first = orders.next_timeout(Duration::from_secs(5))?.expect("visible once durable");
//! assert_eq!(first.payload(), b"order placed");
//! assert!(orders.next_timeout(Duration::from_millis(10))?.is_none()); // nothing more yet
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## 5. Apply
//!
//! An [`Applier`] is a consumer that reports how far it has applied the log (to a
//! projection, a cache, another system). The applied watermark is the minimum over the
//! registered appliers; it is what truncation keeps the log for.
//!
//! ```
//! # let dir = tempfile::tempdir()?;
//! # let engine = tidelog::Engine::open(dir.path(), tidelog::Options::default())?;
//! use std::time::Duration;
//! use tidelog::{HlcPoint, SubscriptionTarget};
//!
//! let projection = engine.register_applier("order-totals", HlcPoint::default());
//! let mut all = engine.subscribe(SubscriptionTarget::All, 1);
//! engine.append_durable(7, b"42".to_vec())?;
//! let mut total = 0u64;
//! while let Some(record) = all.next_timeout(Duration::from_millis(100))? {
//!     total += std::str::from_utf8(record.payload())?.parse::<u64>()?;
//!     projection.report(record.point()); // applied up to here
//! }
//! assert_eq!(total, 42);
//! assert_eq!(engine.watermarks().global.applied_hlc, projection.position());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## 6. Checkpoint
//!
//! A checkpoint stores your state as of a durable point, atomically and checksummed.
//! On the next open, recovery starts from the newest valid one; your program loads its
//! state from [`Engine::latest_checkpoint`] and replays the records after its point.
//!
//! ```
//! # let dir = tempfile::tempdir()?;
//! # let engine = tidelog::Engine::open(dir.path(), tidelog::Options::default())?;
//! let receipt = engine.append_durable(7, b"42".to_vec())?;
//! engine.checkpoint(receipt.point, b"total=42")?;
//! let latest = engine.latest_checkpoint()?.expect("just written");
//! assert_eq!(latest.state(), b"total=42");
//! assert_eq!(latest.point(), receipt.point);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## 7. Truncate
//!
//! The log grows until segments wholly below what everyone still needs are removed:
//! the recovery checkpoint, appliers, subscriptions and named holds
//! ([`Engine::hold_log`]). [`Engine::truncation_status`] says what holds it back;
//! [`Engine::truncate_log`] removes the rest (checkpoints do it themselves with
//! [`CheckpointOptions::auto_truncate`]).
//!
//! ```
//! # let dir = tempfile::tempdir()?;
//! use tidelog::checkpoint::LogClaim;
//! use tidelog::{CheckpointOptions, Engine, Options};
//!
//! let options = Options::default()
//!     .segment_size(64 * 1024)
//!     .max_record_bytes(4 * 1024)
//!     .max_batch_bytes(16 * 1024)
//!     .checkpoints(CheckpointOptions { keep_last: 1, log_for_last: 1, auto_truncate: false });
//! let engine = Engine::open(dir.path(), options)?;
//! assert_eq!(engine.truncation_status().holding_back(), vec![&LogClaim::NoCheckpoint]);
//! let mut last = None;
//! for _ in 0..100 {
//!     last = Some(engine.append(1, vec![0u8; 2_000])?); // about three segments
//! }
//! engine.sync()?;
//! engine.checkpoint(last.unwrap().point, b"state")?;
//! let report = engine.truncate_log()?;
//! assert!(!report.removed.removed.is_empty(), "segments below the checkpoint go");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## 8. Followers
//!
//! One process writes; others follow. A [`Follower`] forwards its appends to the writer
//! over `<dir>/writer.sock` (one total order for every process) and reads records straight
//! from the log files up to the writer's visible watermark. [`Database::open`] is the
//! writer when it can be, a follower otherwise, and takes over when the writer goes.
//! Their append methods, like the engine's, are those of the [`Appender`] trait: each
//! handle takes one [`Append`], and the shorthands build it the same way for all of
//! them (durable, on these handles whose receipt crosses a process).
//!
//! ```
//! # let dir = tempfile::tempdir()?;
//! use std::time::Duration;
//! use tidelog::{Appender, Engine, Follower, GlobalSeq, Options};
//!
//! let writer = Engine::open(dir.path(), Options::default())?; // serves followers
//! let follower = Follower::connect(dir.path())?; // usually in another process
//! let forwarded = follower.append_durable(3, b"from a follower".to_vec())?;
//! let mut records = follower.subscribe(GlobalSeq(1));
//! let record = records.next_timeout(Duration::from_secs(5))?.expect("visible");
//! assert_eq!(record.global_seq, forwarded.point.seq());
//! assert_eq!(record.payload, b"from a follower");
//! # drop(records); drop(follower); writer.close()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## What is where
//!
//! The crate's root holds what a program embedding the log uses: [`Engine`] and its
//! [`Options`], the append value ([`Append`], [`BatchEntry`], [`Durability`]) and the
//! append methods every handle shares ([`Appender`]), what
//! comes back ([`Receipt`], [`Record`], [`AppendTicket`], [`AppendFuture`]), the errors
//! of each operation, subscriptions and appliers, the checkpoint types the steps above
//! use, [`Follower`], [`Database`] and [`LaneLogs`], and the watermark types callers wait
//! with. The rest is in modules, each documented on its page:
//!
//! | module | what |
//! |---|---|
//! | [`checkpoint`] | checkpoints, retention, truncation (what claims the log: [`checkpoint::LogClaim`]), holds, backups, listing checkpoints without opening |
//! | [`forward`] | followers and hand-off: the socket protocol, the published watermarks, reading a live writer's log from another process |
//! | [`layout`] | the database directory's marker and file names |
//! | [`lease`] | the writer lease (crate `tidelog-lease`): records, manager, backends |
//! | [`reserve`] | the space each database keeps back so that a full file system can be left from the shell |
//! | [`baseline`] | the raw `pwrite` + `fdatasync` loop the benchmarks compare against |
//! | [`wal`], [`watermarks`] | the two crates below (`tidelog-wal`, `tidelog-watermarks`), whole and on purpose: this crate's errors wrap the log's (`wal::AppendError`, `wal::SyncError`, `wal::OpenError`, `wal::FileError`, `wal::ScanError`), its reports are the log's ([`RecoveryReport`], `wal::TruncateReport`), a follower reads `wal::ScannedRecord`s, the engine runs on a `wal::io::Storage`, and tools read the log below the engine (verify, scans, the format); a curated list would copy `wal`'s modules name by name (the README's layout has the audit). Their test seams (`wal::SimDisk`, `wal::fuzzing`, `lease::fuzzing`) only with the `testing` feature |
//!
//! In the source, `impl Engine` is one file per concern under `engine/` (opening and
//! closing, appends, reads, checkpoints, backups); the writer thread is `writer.rs`,
//! the appender-to-writer reply slot `handoff.rs`, the lane index `index.rs`, the
//! directory marker and lock `marker.rs`, the lease the engine holds `holder.rs`.
#![deny(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod appender;
mod applier;
pub mod baseline;
pub mod checkpoint;
mod engine;
mod error;
pub mod forward;
// Public only to the loom model (`tests/loom_handoff.rs`), which drives the real type.
#[cfg(loom)]
pub mod handoff;
#[cfg(not(loom))]
mod handoff;
mod holder;
// Public only to the loom model (`tests/loom_writer_syncer.rs`), which drives the real type.
#[cfg(loom)]
pub mod inbox;
#[cfg(not(loom))]
mod inbox;
mod index;
mod marker;
mod observe;
mod options;
mod record;
pub mod reserve;
mod subscription;
mod writer;

pub use appender::Appender;
pub use applier::Applier;
pub use checkpoint::{
    Checkpoint, CheckpointError, CheckpointInfo, CheckpointKind, CheckpointOptions,
};
pub use engine::{AppendFuture, AppendTicket, Engine, IDEMPOTENCY_KEY_LEN_MAX, LOSS_LANE};
pub use error::{AppendError, OpenError, ReadError, SyncError, WriterFailure, WriterInvariant};
pub use forward::{Database, Follower, LaneLogs};
pub use options::{LeaseOptions, Options, SyncPolicy, Visibility};
pub use record::{Append, BatchEntry, Durability, Receipt, Record};
pub use subscription::{SubscribeError, Subscription, SubscriptionTarget};
pub use tidelog_lease as lease;
pub use tidelog_wal as wal;
pub use tidelog_wal::{RecoveryMode, RecoveryReport};
pub use tidelog_watermarks as watermarks;
pub use tidelog_watermarks::{
    GlobalSeq, HlcPoint, LaneId, LaneSeq, WaitError, WatermarkAdvanceHandle, WatermarkKind,
    WatermarkView, WatermarkWait,
};

/// The database directory's layout: the marker file that says a directory is a tidelog
/// database and of which format, and the names of what lies beside it. For tools that
/// inspect a database without opening it (the `tidelog` command's read-only commands).
///
/// ```
/// let dir = tempfile::tempdir()?;
/// tidelog::Engine::open(dir.path(), tidelog::Options::default())?.close()?;
/// assert_eq!(tidelog::layout::read_format_version(dir.path())?, tidelog::layout::FORMAT_VERSION);
/// assert!(dir.path().join(tidelog::layout::WAL_DIR).is_dir());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub mod layout {
    pub use crate::marker::{read_format_version, EXTENT_FILE, FORMAT_VERSION, WAL_DIR};
}
