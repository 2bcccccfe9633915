//! One node of the key-value cluster: its log store, state machine, Raft and HTTP server.

use crate::network::{self, Network, Served};
use crate::{KvConfig, KvStateMachine, LogStore, LogStoreOptions, NodeId};
use openraft::error::Fatal;
use openraft::{Config, ConfigError, Raft, SnapshotPolicy};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::task::JoinHandle;

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// A tidelog database (`log/` or `sm/`) did not open.
    #[error("opening {path}: {source}")]
    Open {
        /// The database directory.
        path: PathBuf,
        /// tidelog's error.
        source: tidelog::OpenError,
    },
    /// The HTTP listener could not be bound.
    #[error("listening on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The bind's error.
        source: std::io::Error,
    },
    /// The Raft configuration is invalid.
    #[error("Raft configuration: {0}")]
    Config(#[from] ConfigError),
    /// openraft refused to start.
    #[error("starting Raft: {0}")]
    Raft(#[from] Fatal<NodeId>),
}

/// A running node: Raft over a tidelog log store (`<dir>/log`) and the key-value state
/// machine (`<dir>/sm`), serving Raft RPCs and the application API over HTTP.
pub struct RaftNode {
    /// Its node id.
    pub id: NodeId,
    /// The address its HTTP server listens on.
    pub addr: SocketAddr,
    /// openraft's handle.
    pub raft: Raft<KvConfig>,
    /// Its log store.
    pub log: LogStore<KvConfig>,
    /// Its state machine.
    pub sm: KvStateMachine,
    server: JoinHandle<()>,
}

impl std::fmt::Debug for RaftNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RaftNode")
            .field("id", &self.id)
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// A Raft configuration for loopback clusters: 100 ms heartbeats, elections after 1 to
/// 2 s (room for a busy machine), a snapshot every `snapshot_every` applied entries, the last 500 entries kept in
/// the log after it.
#[must_use]
pub fn loopback_config(snapshot_every: u64) -> Config {
    Config {
        cluster_name: "tidelog-raft".into(),
        heartbeat_interval: 100,
        election_timeout_min: 1000,
        election_timeout_max: 2000,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(snapshot_every),
        max_in_snapshot_log_to_keep: 500,
        purge_batch_size: 256,
        ..Config::default()
    }
}

impl RaftNode {
    /// Opens the node's databases in `dir` (created if missing), binds `listen` (port 0:
    /// any free port) and starts Raft and the HTTP server. Must run inside a tokio runtime.
    ///
    /// # Errors
    /// [`NodeError`].
    pub async fn start(
        id: NodeId,
        dir: &Path,
        listen: SocketAddr,
        config: Config,
        options: LogStoreOptions,
    ) -> Result<Self, NodeError> {
        let listener = network::bind(listen)
            .await
            .map_err(|source| NodeError::Bind {
                addr: listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| NodeError::Bind {
            addr: listen,
            source,
        })?;
        let log_dir = dir.join("log");
        let log = LogStore::open(&log_dir, options.clone()).map_err(|source| NodeError::Open {
            path: log_dir,
            source,
        })?;
        let sm_dir = dir.join("sm");
        let sm =
            KvStateMachine::open(&sm_dir, options.engine).map_err(|source| NodeError::Open {
                path: sm_dir,
                source,
            })?;
        let config = Arc::new(config.validate()?);
        let raft = Raft::new(id, config, Network, log.clone(), sm.clone()).await?;
        let server = tokio::spawn(network::serve(
            listener,
            Served {
                raft: raft.clone(),
                sm: sm.clone(),
            },
        ));
        Ok(RaftNode {
            id,
            addr,
            raft,
            log,
            sm,
            server,
        })
    }

    /// Stops Raft and the HTTP server and closes both databases (syncing them), as a
    /// node going away. Errors are reported, not fatal: the node is gone either way.
    pub async fn stop(self) -> Vec<String> {
        let mut errors = Vec::new();
        self.server.abort();
        let _ = self.server.await;
        if let Err(e) = self.raft.shutdown().await {
            errors.push(format!("raft shutdown: {e}"));
        }
        if let Err(e) = self.log.close() {
            errors.push(format!("closing the log store: {e}"));
        }
        if let Err(e) = self.sm.engine().close() {
            errors.push(format!("closing the state machine: {e}"));
        }
        errors
    }
}
