//! raft-engine: each lane is a Raft group (region); a record is a key-value put (key: the
//! record's sequence) in a `LogBatch` written with `sync = true`. The entry API would
//! need protobuf Raft entries; puts take the same write path (one log batch, one
//! `fdatasync`, the same group commit) without that dependency.

use crate::error::BenchError;
use crate::peer::Peer;
use raft_engine::{Config, Engine, LogBatch};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

const NAME: &str = "raft-engine";

struct RaftEngine {
    engine: Engine,
    next: AtomicU64,
}

/// Opens (or recovers) a raft-engine in `dir`.
///
/// # Errors
/// raft-engine's open error.
pub fn open(dir: &Path) -> Result<Box<dyn Peer>, BenchError> {
    let config = Config {
        dir: dir.to_string_lossy().into_owned(),
        ..Config::default()
    };
    let engine = Engine::open(config).map_err(|e| BenchError::system(NAME, "opening", e))?;
    Ok(Box::new(RaftEngine {
        engine,
        next: AtomicU64::new(1),
    }))
}

impl RaftEngine {
    fn write(&self, lane: u32, records: &[&[u8]]) -> Result<(), BenchError> {
        let err = |e| BenchError::system(NAME, "appending", e);
        let first = self.next.fetch_add(records.len() as u64, Ordering::Relaxed);
        let mut batch = LogBatch::with_capacity(records.len());
        for (seq, record) in (first..).zip(records) {
            batch
                .put(
                    u64::from(lane) + 1,
                    seq.to_be_bytes().to_vec(),
                    record.to_vec(),
                )
                .map_err(err)?;
        }
        self.engine.write(&mut batch, true).map_err(err)?;
        Ok(())
    }
}

impl Peer for RaftEngine {
    fn append_durable(&self, lane: u32, record: &[u8]) -> Result<(), BenchError> {
        self.write(lane, &[record])
    }

    fn append_batch_durable(&self, lane: u32, records: &[Vec<u8>]) -> Result<(), BenchError> {
        let slices: Vec<&[u8]> = records.iter().map(Vec::as_slice).collect();
        self.write(lane, &slices)
    }

    fn count(&self) -> Result<u64, BenchError> {
        let mut count = 0u64;
        for region in self.engine.raft_groups() {
            self.engine
                .scan_raw_messages(region, None, None, false, |_, _| {
                    count += 1;
                    true
                })
                .map_err(|e| BenchError::system(NAME, "scanning", e))?;
        }
        Ok(count)
    }

    fn close(&self) -> Result<(), BenchError> {
        self.engine
            .sync()
            .map_err(|e| BenchError::system(NAME, "closing", e))
    }
}
