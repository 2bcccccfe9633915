//! What a caller can tune when opening a database.

use crate::checkpoint::CheckpointOptions;
use crate::lease::{Clock, LeaseBackend, BASE_TERM};
use std::sync::Arc;
use std::time::Duration;
use tidelog_wal::RecoveryMode;

/// The writer lease the engine holds while it writes (see `docs/lease.md`).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LeaseOptions {
    /// Where the lease lives (default `None`: a file backend in the database's `lease/`
    /// folder, safe between processes of one machine). Give a shared backend (etcd) when
    /// writers on several machines share one database key.
    pub backend: Option<Arc<dyn LeaseBackend>>,
    /// The lease's key on the backend (default `"writer"`).
    pub key: String,
    /// How long a lease lasts without a refresh (default 10 s). The writer refreshes
    /// every third of it and stops acknowledging a fifth of it before it would expire; a
    /// successor waits for it only when the holder's process may still be alive.
    pub ttl: Duration,
    /// The replication term to acquire under (default the base term, 1).
    pub term: u64,
    /// The clock that judges expiry on the backend (default the system clock).
    pub clock: Option<Arc<dyn Clock>>,
}

impl Default for LeaseOptions {
    fn default() -> Self {
        LeaseOptions {
            backend: None,
            key: "writer".to_owned(),
            ttl: Duration::from_secs(10),
            term: BASE_TERM,
            clock: None,
        }
    }
}

/// When the writer thread calls fdatasync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SyncPolicy {
    /// After every group commit (the default): every acknowledged append is durable
    /// within one group's latency.
    EveryGroup,
    /// Once at least this many records are unsynced.
    EveryRecords(u32),
    /// Once the oldest unsynced record is this old.
    EveryInterval(Duration),
    /// Only on `sync()` and `close()`. Durability waits block until one of those.
    Never,
}

/// When readers and subscribers may see a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Visibility {
    /// Once durable (the default): a reader never sees what a crash could take back.
    Durable,
    /// Once written to the page cache: lower latency, but a crash may take back a record
    /// a reader saw.
    Written,
}

/// Options for [`Engine::open`](crate::Engine::open). Start from `Options::default()` and
/// change what you need.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Options {
    /// Size of each log segment file, in bytes (default 64 MiB), for a new database. An
    /// existing database keeps the size it was created with ([`Engine::options`] shows
    /// it); record and batch limits that would not fit shrink to half a segment.
    ///
    /// [`Engine::options`]: crate::Engine::options
    pub segment_size: u64,
    /// When to sync (default [`SyncPolicy::EveryGroup`]).
    pub sync_policy: SyncPolicy,
    /// When records become visible (default [`Visibility::Durable`]).
    pub visibility: Visibility,
    /// Capacity of the appenders' queue to the writer thread (default 4096 requests).
    pub channel_capacity: usize,
    /// Largest payload accepted, in bytes (default 4 MiB).
    pub max_record_bytes: u32,
    /// Most records in one `append_batch` (default 10,000).
    pub max_batch_records: usize,
    /// Most payload bytes in one `append_batch` (default 16 MiB; must fit in a segment).
    pub max_batch_bytes: u64,
    /// Most requests the writer folds into one group commit (default 1024).
    pub max_group_requests: usize,
    /// Most payload bytes in one group commit (default 8 MiB).
    pub max_group_bytes: u64,
    /// Longest the writer holds a sync back so that durable appenders it has just
    /// answered can come back with their next record and share that sync (default
    /// 500 µs; zero turns it off). It waits only while fewer durable appends are queued
    /// than the last sync answered, and never longer than the last sync took, so a lone
    /// appender is never delayed.
    pub max_group_delay: Duration,
    /// How recovery treats damage it finds (default: refuse corrupted durable data).
    pub recovery_mode: RecoveryMode,
    /// The writer lease (default: a file backend in the database directory, 10 s TTL).
    pub lease: LeaseOptions,
    /// Serve followers' forwarded appends on `<dir>/writer.sock` (default `true`).
    pub serve_followers: bool,
    /// Prepare the next segment on a background thread so rotation never stalls
    /// appenders (default `true`; tests on a simulated disk turn it off for a fixed order
    /// of operations).
    pub prepare_segments_in_background: bool,
    /// Checkpoint retention and log truncation (see [`CheckpointOptions`]).
    pub checkpoints: CheckpointOptions,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            segment_size: 64 * 1024 * 1024,
            sync_policy: SyncPolicy::EveryGroup,
            visibility: Visibility::Durable,
            channel_capacity: 4096,
            max_record_bytes: 4 * 1024 * 1024,
            max_batch_records: 10_000,
            max_batch_bytes: 16 * 1024 * 1024,
            max_group_requests: 1024,
            max_group_bytes: 8 * 1024 * 1024,
            max_group_delay: Duration::from_micros(500),
            recovery_mode: RecoveryMode::AbsoluteConsistency,
            lease: LeaseOptions::default(),
            serve_followers: true,
            prepare_segments_in_background: true,
            checkpoints: CheckpointOptions::default(),
        }
    }
}

impl Options {
    /// Sets the segment size.
    #[must_use]
    pub fn segment_size(mut self, bytes: u64) -> Self {
        self.segment_size = bytes;
        self
    }

    /// Sets the sync policy.
    #[must_use]
    pub fn sync_policy(mut self, policy: SyncPolicy) -> Self {
        self.sync_policy = policy;
        self
    }

    /// Sets the visibility rule.
    #[must_use]
    pub fn visibility(mut self, visibility: Visibility) -> Self {
        self.visibility = visibility;
        self
    }

    /// Sets the queue capacity.
    #[must_use]
    pub fn channel_capacity(mut self, capacity: usize) -> Self {
        self.channel_capacity = capacity;
        self
    }

    /// Sets the largest payload accepted.
    #[must_use]
    pub fn max_record_bytes(mut self, bytes: u32) -> Self {
        self.max_record_bytes = bytes;
        self
    }

    /// Sets the largest batch, in payload bytes.
    #[must_use]
    pub fn max_batch_bytes(mut self, bytes: u64) -> Self {
        self.max_batch_bytes = bytes;
        self
    }

    /// Sets the longest the writer holds a sync back to gather a group (zero: never).
    #[must_use]
    pub fn max_group_delay(mut self, delay: Duration) -> Self {
        self.max_group_delay = delay;
        self
    }

    /// Sets the writer lease options.
    #[must_use]
    pub fn lease(mut self, lease: LeaseOptions) -> Self {
        self.lease = lease;
        self
    }

    /// Sets the writer lease's TTL.
    #[must_use]
    pub fn lease_ttl(mut self, ttl: Duration) -> Self {
        self.lease.ttl = ttl;
        self
    }

    /// Sets [`Options::checkpoints`].
    #[must_use]
    pub fn checkpoints(mut self, checkpoints: CheckpointOptions) -> Self {
        self.checkpoints = checkpoints;
        self
    }

    /// Sets the recovery mode.
    #[must_use]
    pub fn recovery_mode(mut self, mode: RecoveryMode) -> Self {
        self.recovery_mode = mode;
        self
    }
}
