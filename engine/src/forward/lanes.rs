//! One append authority per lane: the seed's "one authority per space", with a log of
//! its own for each lane.
//!
//! Within one database every lane shares the one writer, so an authority per lane means
//! a log per lane: [`LaneLogs`] keeps lane `n` in `<root>/lane-<n>/`, a database of its
//! own with its own writer lease (key `<lease key>/lane/<n>`, the key
//! [`LaneAuthority`](crate::lease::LaneAuthority) uses). Several processes (or handles)
//! open the same root; each lane has at most one holder at a time, and the others
//! forward their appends to it, so every lane keeps one contiguous total order while
//! different lanes may be held by different processes. A lane nobody holds is acquired
//! by its first appender; a holder that dies or pauses past its lease is replaced by
//! the next appender, which fences the lane's log off and continues from its head.

use super::database::Database;
use super::follower::FollowError;
use crate::appender::Appender;
use crate::error::{AppendError, OpenError};
use crate::options::Options;
use crate::record::{Append, Durability, Receipt};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tidelog_wal::ScannedRecord;
use tidelog_watermarks::{GlobalSeq, LaneId};

/// Why a [`LaneLogs`] operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LaneLogsError {
    /// The lane's database could not be opened (as writer or follower); nothing was
    /// written.
    #[error("lane {lane}: {source}")]
    Open {
        /// The lane.
        lane: LaneId,
        /// Why.
        #[source]
        source: OpenError,
    },
    /// The append failed, locally or at the holder it was forwarded to.
    #[error("lane {lane}: {source}")]
    Append {
        /// The lane.
        lane: LaneId,
        /// Why (it says whether the record may be in the log).
        #[source]
        source: AppendError,
    },
    /// The lane's records could not be read.
    #[error("lane {lane}: {source}")]
    Read {
        /// The lane.
        lane: LaneId,
        /// Why.
        #[source]
        source: FollowError,
    },
}

/// The lanes under one root, each a log with its own append authority; see the module
/// documentation.
#[derive(Debug)]
pub struct LaneLogs {
    root: PathBuf,
    options: Options,
    lanes: Mutex<HashMap<LaneId, Arc<Database>>>,
}

impl LaneLogs {
    /// The lanes under `root` (created if missing). `options` apply to every lane's
    /// database; the lease key gets `/lane/<n>` appended for lane `n`.
    ///
    /// # Errors
    /// [`OpenError::Io`] if `root` cannot be created.
    pub fn open(root: impl AsRef<Path>, options: Options) -> Result<LaneLogs, OpenError> {
        let root = root.as_ref().to_path_buf();
        std::fs::create_dir_all(&root).map_err(|source| OpenError::Io {
            op: "creating",
            path: root.clone(),
            source,
        })?;
        Ok(LaneLogs {
            root,
            options,
            lanes: Mutex::new(HashMap::new()),
        })
    }

    /// The database directory of `lane`.
    #[must_use]
    pub fn lane_dir(&self, lane: LaneId) -> PathBuf {
        self.root.join(format!("lane-{}", lane.get()))
    }

    fn lane_options(&self, lane: LaneId) -> Options {
        let mut options = self.options.clone();
        options.lease.key = format!("{}/lane/{}", options.lease.key, lane.get());
        options
    }

    /// The handle on `lane`, opened (as writer if the lane is free, else as a follower of
    /// its holder) on first use.
    fn lane(&self, lane: LaneId) -> Result<Arc<Database>, LaneLogsError> {
        if let Some(db) = self.lanes.lock().get(&lane) {
            return Ok(db.clone());
        }
        let db = Database::open(self.lane_dir(lane), self.lane_options(lane))
            .map_err(|source| LaneLogsError::Open { lane, source })?;
        Ok(self
            .lanes
            .lock()
            .entry(lane)
            .or_insert(Arc::new(db))
            .clone())
    }

    /// Makes this handle the holder of `lane`: takes its lease if it is free, expired, or
    /// held by a process that is gone.
    ///
    /// # Errors
    /// [`LaneLogsError::Open`] with [`LeaseError::Held`](crate::lease::LeaseError::Held)
    /// when another live holder has it.
    pub fn acquire(&self, lane: impl Into<LaneId>) -> Result<(), LaneLogsError> {
        let lane = lane.into();
        let existing = self.lanes.lock().get(&lane).cloned();
        let result = match existing {
            Some(db) => db.acquire(),
            None => Database::open_writer(self.lane_dir(lane), self.lane_options(lane)).map(|db| {
                self.lanes.lock().insert(lane, Arc::new(db));
            }),
        };
        result.map_err(|source| LaneLogsError::Open { lane, source })
    }

    /// Whether this handle holds `lane` (and its lease is still valid).
    #[must_use]
    pub fn holds(&self, lane: impl Into<LaneId>) -> bool {
        self.lanes
            .lock()
            .get(&lane.into())
            .is_some_and(|db| db.is_writer())
    }

    /// Appends what `append` describes to its lane's log: locally when this handle holds
    /// the lane, else forwarded unchanged to its holder; a lane nobody holds is acquired
    /// first. Validated as [`Engine::append_with`](crate::Engine::append_with) validates.
    ///
    /// # Errors
    /// [`LaneLogsError::Open`] if the lane cannot be opened, [`LaneLogsError::Append`]
    /// as [`Database::append_with`].
    pub fn append_with(&self, append: Append) -> Result<Receipt, LaneLogsError> {
        let lane = append.lane;
        self.lane(lane)?
            .append_with(append)
            .map_err(|source| LaneLogsError::Append { lane, source })
    }

    /// Up to `max` records of `lane` from its global sequence `from` on, as its holder
    /// made them visible.
    ///
    /// # Errors
    /// [`LaneLogsError::Open`] if the lane cannot be opened, [`LaneLogsError::Read`]
    /// as [`Database::records_from`].
    pub fn records(
        &self,
        lane: impl Into<LaneId>,
        from: GlobalSeq,
        max: usize,
    ) -> Result<Vec<ScannedRecord>, LaneLogsError> {
        let lane = lane.into();
        self.lane(lane)?
            .records_from(from, max)
            .map_err(|source| LaneLogsError::Read { lane, source })
    }

    /// Closes every lane this handle opened; the lanes it holds release their leases.
    ///
    /// # Errors
    /// The first lane whose writer failed to close cleanly.
    pub fn close(&self) -> Result<(), crate::SyncError> {
        let lanes: Vec<Arc<Database>> = self.lanes.lock().drain().map(|(_, db)| db).collect();
        let mut first = Ok(());
        for db in lanes {
            let closed = db.close();
            if first.is_ok() {
                first = closed;
            }
        }
        first
    }
}

/// Every append method of the lanes is durable ([`Durability::Durable`]), as a
/// [`Database`]'s is: the lane's holder may be another process.
impl Appender for LaneLogs {
    type Error = LaneLogsError;
    const DURABILITY: Durability = Durability::Durable;

    fn append_with(&self, append: Append) -> Result<Receipt, LaneLogsError> {
        LaneLogs::append_with(self, append)
    }
}
