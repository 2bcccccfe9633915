//! # tidelog-raft
//!
//! tidelog as the log store of [openraft]: one Raft group per tidelog database.
//! Entries are tidelog records; the vote and the committed log id are records of the same
//! log, so their I/O is ordered with the entries; `append` returns once the entries are
//! written (readable) and openraft's flush callback fires from tidelog's durable
//! watermark, so appends ride tidelog's group commit. `truncate` writes a durable
//! truncation record that replay honours; `purge` writes a checkpoint below the first
//! entry still needed, and tidelog's retention removes the log before it.
//!
//! - [`LogStore`]: `RaftLogStorage` + `RaftLogReader` (storage-v2), generic over the
//!   type config.
//! - [`KvStateMachine`]: a small key-value `RaftStateMachine` whose snapshots are tidelog
//!   checkpoints, for the [`KvConfig`] type config.
//!
//! - [`network`]: JSON over HTTP/1.1 with hyper between nodes; [`RaftNode`] puts a node
//!   together.
//!
//! See `raft/README.md` for the mapping of watermarks to Raft and how to run the demo.
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod error;
pub mod log_store;
pub mod network;
pub mod node;
pub mod state_machine;

use serde::{Deserialize, Serialize};
use std::io::Cursor;

pub use log_store::{LogStore, LogStoreOptions};
pub use node::{loopback_config, NodeError, RaftNode};
pub use state_machine::KvStateMachine;

/// A write to the key-value state machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Sets `key` to `value`.
    Set {
        /// The key.
        key: String,
        /// The value.
        value: String,
    },
}

/// The state machine's answer to a [`Request`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    /// The key's value before the write.
    pub previous: Option<String>,
}

openraft::declare_raft_types!(
    /// The type config of the key-value cluster: `u64` node ids, `BasicNode` addresses,
    /// snapshots as bytes in memory.
    pub KvConfig:
        D = Request,
        R = Response,
);

/// A node id of the key-value cluster.
pub type NodeId = u64;
