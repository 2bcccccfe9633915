//! tidelog itself, with default options: `append_durable` per record,
//! `append_batch_durable` per batch (answered once the batch is durable).

use crate::error::BenchError;
use crate::peer::Peer;
use std::path::Path;
use std::time::{Duration, Instant};
use tidelog::{BatchEntry, Engine, GlobalSeq, Options};

const NAME: &str = "tidelog";

/// How long [`Peer::settle`] waits at most for the background segment preparation.
const SETTLE_LIMIT: Duration = Duration::from_secs(60);

struct Tidelog {
    engine: Engine,
}

/// Whether a segment is being prepared (`*.seg.tmp`) in `dir`.
fn preparing(dir: &Path) -> Result<bool, BenchError> {
    let entries = std::fs::read_dir(dir).map_err(|e| BenchError::io("list", dir, e))?;
    Ok(entries
        .filter_map(Result::ok)
        .any(|e| e.file_name().to_string_lossy().ends_with(".seg.tmp")))
}

/// The segment size to create logs with: `TIDELOG_BENCH_SEGMENT_MIB` MiB if set (small
/// segments put segment preparations inside the timed loops), else the default 64 MiB.
fn options() -> Options {
    let options = Options::default();
    match std::env::var("TIDELOG_BENCH_SEGMENT_MIB")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        Some(mib) if mib > 0 => options.segment_size(mib << 20),
        _ => options,
    }
}

/// Opens (or recovers) a tidelog engine in `dir`.
///
/// # Errors
/// The engine's open error.
pub fn open(dir: &Path) -> Result<Box<dyn Peer>, BenchError> {
    let engine =
        Engine::open(dir, options()).map_err(|e| BenchError::system(NAME, "opening", e))?;
    Ok(Box::new(Tidelog { engine }))
}

impl Peer for Tidelog {
    fn append_durable(&self, lane: u32, record: &[u8]) -> Result<(), BenchError> {
        self.engine
            .append_durable(lane, record.to_vec())
            .map(drop)
            .map_err(|e| BenchError::system(NAME, "appending", e))
    }

    fn append_batch_durable(&self, lane: u32, records: &[Vec<u8>]) -> Result<(), BenchError> {
        let entries = records
            .iter()
            .map(|r| BatchEntry::new(lane, r.clone()))
            .collect();
        self.engine
            .append_batch_durable(entries)
            .map(drop)
            .map_err(|e| BenchError::system(NAME, "appending a durable batch", e))
    }

    fn count(&self) -> Result<u64, BenchError> {
        let records = self
            .engine
            .scan_all(GlobalSeq(1))
            .map_err(|e| BenchError::system(NAME, "scanning", e))?;
        Ok(records.count() as u64)
    }

    /// The engine prepares its next segment (a zero-fill and fsync of 64 MiB) in the
    /// background right after open; waits for that, as `tidelog bench` does, by watching
    /// for the temporary file to be renamed (the engine offers no wait for it).
    fn settle(&self) -> Result<(), BenchError> {
        let started = Instant::now();
        while preparing(self.engine.dir())? && started.elapsed() < SETTLE_LIMIT {
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(())
    }

    fn close(&self) -> Result<(), BenchError> {
        self.engine
            .close()
            .map_err(|e| BenchError::system(NAME, "closing", e))
    }
}
