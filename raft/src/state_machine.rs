//! A small key-value `RaftStateMachine` whose snapshots are tidelog checkpoints.
//!
//! The state (a map, the last applied log id, the last membership) lives in memory; each
//! snapshot is a checkpoint of the state machine's own tidelog database, taken at a marker
//! record appended durably just before it. Checkpoints are written atomically with a
//! checksum, and a damaged newest one is skipped for the one before: on open the state is
//! restored from the newest checkpoint that verifies, and openraft applies the committed
//! entries after it again (the log store keeps the committed log id).

use crate::error::{sm_write_error, snapshot_error};
use crate::{KvConfig, NodeId, Request, Response};
use openraft::storage::{RaftStateMachine, Snapshot, SnapshotMeta};
use openraft::{
    BasicNode, Entry, EntryPayload, LogId, OptionalSend, RaftSnapshotBuilder, StorageError,
    StoredMembership,
};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tidelog::{Engine, OpenError, Options};

/// The lane of the snapshot marker records in the state machine's database.
const SNAPSHOT_LANE: u32 = 1;

/// The key-value state.
#[derive(Debug, Clone, Default)]
struct KvState {
    last_applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, BasicNode>,
    data: BTreeMap<String, String>,
}

/// The newest snapshot: its metadata and its bytes (the map, JSON-encoded).
#[derive(Debug, Clone)]
struct StoredSnapshot {
    meta: SnapshotMeta<NodeId, BasicNode>,
    data: Vec<u8>,
}

/// The marker record written before each snapshot's checkpoint.
#[derive(Serialize, Deserialize)]
struct Marker {
    snapshot_id: String,
}

/// A key-value state machine for [`KvConfig`], snapshots kept as tidelog checkpoints.
/// Cheap to clone; clones share the state.
#[derive(Debug, Clone)]
pub struct KvStateMachine {
    engine: Engine,
    state: Arc<Mutex<KvState>>,
    current: Arc<Mutex<Option<StoredSnapshot>>>,
    snapshots: Arc<AtomicU64>,
}

impl KvStateMachine {
    /// Opens (or creates) the state machine in the tidelog database `dir` and restores it
    /// from the newest checkpoint that verifies.
    ///
    /// # Errors
    /// [`OpenError`] from tidelog; [`OpenError::InvalidOptions`] naming a checkpoint this
    /// state machine cannot decode.
    pub fn open(dir: impl AsRef<Path>, options: Options) -> Result<Self, OpenError> {
        let mut options = options;
        options.serve_followers = false;
        let engine = Engine::open(dir, options)?;
        let invalid = |reason: String| OpenError::InvalidOptions {
            reason: format!(
                "{}: not a tidelog-raft state machine: {reason}",
                engine.dir().display()
            ),
        };
        let mut state = KvState::default();
        let mut current = None;
        if let Some(checkpoint) = engine
            .latest_checkpoint()
            .map_err(|e| invalid(e.to_string()))?
        {
            let stored = decode_checkpoint(checkpoint.state()).map_err(invalid)?;
            state = restore(&stored).map_err(invalid)?;
            current = Some(stored);
        }
        Ok(KvStateMachine {
            engine,
            state: Arc::new(Mutex::new(state)),
            current: Arc::new(Mutex::new(current)),
            snapshots: Arc::new(AtomicU64::new(0)),
        })
    }

    /// The value of `key`, as applied on this node.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<String> {
        self.state.lock().data.get(key).cloned()
    }

    /// The whole map, as applied on this node.
    #[must_use]
    pub fn data(&self) -> BTreeMap<String, String> {
        self.state.lock().data.clone()
    }

    /// The last log id applied on this node.
    #[must_use]
    pub fn last_applied(&self) -> Option<LogId<NodeId>> {
        self.state.lock().last_applied
    }

    /// The tidelog database underneath.
    #[must_use]
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Stores `snapshot` durably: a marker record, then a checkpoint at it holding the
    /// metadata and the data; then makes it the current one.
    #[allow(clippy::result_large_err)] // openraft's own error type
    fn persist(&self, snapshot: StoredSnapshot) -> Result<(), StorageError<NodeId>> {
        let marker = serde_json::to_vec(&Marker {
            snapshot_id: snapshot.meta.snapshot_id.clone(),
        })
        .map_err(snapshot_error)?;
        let receipt = self
            .engine
            .append_durable(SNAPSHOT_LANE, marker)
            .map_err(snapshot_error)?;
        let meta = serde_json::to_vec(&snapshot.meta).map_err(snapshot_error)?;
        let meta_len = u32::try_from(meta.len()).map_err(snapshot_error)?;
        self.engine
            .checkpoint_as(receipt.point, tidelog::CheckpointKind::Regular, |out| {
                out.extend_from_slice(&meta_len.to_le_bytes());
                out.extend_from_slice(&meta);
                out.extend_from_slice(&snapshot.data);
                Ok(())
            })
            .map_err(snapshot_error)?;
        *self.current.lock() = Some(snapshot);
        Ok(())
    }
}

fn decode_checkpoint(bytes: &[u8]) -> Result<StoredSnapshot, String> {
    let (len, rest) = bytes
        .split_first_chunk::<4>()
        .ok_or("checkpoint shorter than its header")?;
    let len = u32::from_le_bytes(*len) as usize;
    if rest.len() < len {
        return Err(format!(
            "snapshot metadata of {len} bytes in {} bytes",
            rest.len()
        ));
    }
    let (meta, data) = rest.split_at(len);
    let meta = serde_json::from_slice(meta).map_err(|e| format!("snapshot metadata: {e}"))?;
    Ok(StoredSnapshot {
        meta,
        data: data.to_vec(),
    })
}

fn restore(snapshot: &StoredSnapshot) -> Result<KvState, String> {
    let data = serde_json::from_slice(&snapshot.data).map_err(|e| format!("snapshot data: {e}"))?;
    Ok(KvState {
        last_applied: snapshot.meta.last_log_id,
        membership: snapshot.meta.last_membership.clone(),
        data,
    })
}

impl RaftSnapshotBuilder<KvConfig> for KvStateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<KvConfig>, StorageError<NodeId>> {
        let (meta, data) = {
            let state = self.state.lock();
            let data = serde_json::to_vec(&state.data).map_err(snapshot_error)?;
            let n = self.snapshots.fetch_add(1, Ordering::Relaxed) + 1;
            let snapshot_id = match state.last_applied {
                Some(id) => format!("{}-{}-{n}", id.leader_id, id.index),
                None => format!("--{n}"),
            };
            let meta = SnapshotMeta {
                last_log_id: state.last_applied,
                last_membership: state.membership.clone(),
                snapshot_id,
            };
            (meta, data)
        };
        self.persist(StoredSnapshot {
            meta: meta.clone(),
            data: data.clone(),
        })?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

impl RaftStateMachine<KvConfig> for KvStateMachine {
    type SnapshotBuilder = Self;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, BasicNode>), StorageError<NodeId>>
    {
        let state = self.state.lock();
        Ok((state.last_applied, state.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Response>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<KvConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut state = self.state.lock();
        let mut replies = Vec::new();
        for entry in entries {
            state.last_applied = Some(entry.log_id);
            match entry.payload {
                EntryPayload::Blank => replies.push(Response::default()),
                EntryPayload::Normal(Request::Set { key, value }) => {
                    let previous = state.data.insert(key, value);
                    replies.push(Response { previous });
                }
                EntryPayload::Membership(membership) => {
                    state.membership = StoredMembership::new(Some(entry.log_id), membership);
                    replies.push(Response::default());
                }
            }
        }
        Ok(replies)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<Cursor<Vec<u8>>>, StorageError<NodeId>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<NodeId>> {
        let stored = StoredSnapshot {
            meta: meta.clone(),
            data: snapshot.into_inner(),
        };
        let restored = restore(&stored).map_err(sm_write_error)?;
        self.persist(stored)?;
        *self.state.lock() = restored;
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<KvConfig>>, StorageError<NodeId>> {
        Ok(self.current.lock().as_ref().map(|stored| Snapshot {
            meta: stored.meta.clone(),
            snapshot: Box::new(Cursor::new(stored.data.clone())),
        }))
    }
}
