//! RocksDB (the `rocksdb` crate, linked against the system library): key = lane and
//! sequence; each append a `put` with `WriteOptions::set_sync(true)` (the WAL is synced
//! before it returns; RocksDB groups concurrent writers); a batch one `WriteBatch`
//! written with sync.

use crate::error::BenchError;
use crate::peer::{lane_key, Peer};
use rocksdb::{IteratorMode, Options, WriteBatch, WriteOptions, DB};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

const NAME: &str = "rocksdb";

struct RocksDb {
    db: DB,
    next: AtomicU64,
}

/// Opens (or recovers) a RocksDB database in `dir`.
///
/// # Errors
/// RocksDB's error.
pub fn open(dir: &Path) -> Result<Box<dyn Peer>, BenchError> {
    let mut options = Options::default();
    options.create_if_missing(true);
    let db = DB::open(&options, dir).map_err(|e| BenchError::system(NAME, "opening", e))?;
    Ok(Box::new(RocksDb {
        db,
        next: AtomicU64::new(1),
    }))
}

fn synced() -> WriteOptions {
    let mut options = WriteOptions::default();
    options.set_sync(true);
    options
}

impl Peer for RocksDb {
    fn append_durable(&self, lane: u32, record: &[u8]) -> Result<(), BenchError> {
        let seq = self.next.fetch_add(1, Ordering::Relaxed);
        self.db
            .put_opt(lane_key(lane, seq), record, &synced())
            .map_err(|e| BenchError::system(NAME, "appending", e))
    }

    fn append_batch_durable(&self, lane: u32, records: &[Vec<u8>]) -> Result<(), BenchError> {
        let first = self.next.fetch_add(records.len() as u64, Ordering::Relaxed);
        let mut batch = WriteBatch::default();
        for (seq, record) in (first..).zip(records) {
            batch.put(lane_key(lane, seq), record);
        }
        self.db
            .write_opt(batch, &synced())
            .map_err(|e| BenchError::system(NAME, "appending a batch", e))
    }

    fn count(&self) -> Result<u64, BenchError> {
        let mut count = 0u64;
        for item in self.db.iterator(IteratorMode::Start) {
            item.map_err(|e| BenchError::system(NAME, "scanning", e))?;
            count += 1;
        }
        Ok(count)
    }

    fn close(&self) -> Result<(), BenchError> {
        self.db
            .flush_wal(true)
            .map_err(|e| BenchError::system(NAME, "closing", e))
    }
}
