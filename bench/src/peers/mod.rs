//! One module per system under test; each peer compiles only with its cargo feature.

pub mod baseline;
#[cfg(feature = "fjall")]
pub mod fjall;
pub mod group_commit;
#[cfg(feature = "okaywal")]
pub mod okaywal;
#[cfg(feature = "raft-engine")]
pub mod raft_engine;
#[cfg(feature = "rocksdb")]
pub mod rocksdb;
#[cfg(feature = "sqlite")]
pub mod sqlite;
pub mod tidelog;
