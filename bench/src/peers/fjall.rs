//! fjall: one partition, key = lane and sequence; each append is an insert followed by
//! `persist(SyncData)` (fdatasync of the journal); a batch is one atomic `Batch` commit
//! and one persist.

use crate::error::BenchError;
use crate::peer::{lane_key, Peer};
use fjall::{Config, Keyspace, PartitionCreateOptions, PartitionHandle, PersistMode};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

const NAME: &str = "fjall";

struct Fjall {
    keyspace: Keyspace,
    log: PartitionHandle,
    next: AtomicU64,
}

/// Opens (or recovers) a fjall keyspace in `dir`.
///
/// # Errors
/// fjall's error.
pub fn open(dir: &Path) -> Result<Box<dyn Peer>, BenchError> {
    let err = |e| BenchError::system(NAME, "opening", e);
    let keyspace = Config::new(dir).open().map_err(err)?;
    let log = keyspace
        .open_partition("log", PartitionCreateOptions::default())
        .map_err(err)?;
    Ok(Box::new(Fjall {
        keyspace,
        log,
        next: AtomicU64::new(1),
    }))
}

impl Fjall {
    fn persist(&self) -> Result<(), BenchError> {
        self.keyspace
            .persist(PersistMode::SyncData)
            .map_err(|e| BenchError::system(NAME, "syncing", e))
    }
}

impl Peer for Fjall {
    fn append_durable(&self, lane: u32, record: &[u8]) -> Result<(), BenchError> {
        let seq = self.next.fetch_add(1, Ordering::Relaxed);
        self.log
            .insert(lane_key(lane, seq), record)
            .map_err(|e| BenchError::system(NAME, "appending", e))?;
        self.persist()
    }

    fn append_batch_durable(&self, lane: u32, records: &[Vec<u8>]) -> Result<(), BenchError> {
        let first = self.next.fetch_add(records.len() as u64, Ordering::Relaxed);
        let mut batch = self.keyspace.batch();
        for (seq, record) in (first..).zip(records) {
            batch.insert(&self.log, lane_key(lane, seq), record);
        }
        batch
            .commit()
            .map_err(|e| BenchError::system(NAME, "appending a batch", e))?;
        self.persist()
    }

    fn count(&self) -> Result<u64, BenchError> {
        self.log
            .len()
            .map(|n| n as u64)
            .map_err(|e| BenchError::system(NAME, "counting", e))
    }

    fn close(&self) -> Result<(), BenchError> {
        self.persist()
    }
}
