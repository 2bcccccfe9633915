//! The physical baseline the engine's benchmarks compare against (`cargo bench --bench
//! durable`, `tidelog bench`): the least a durable write can cost on a disk. One
//! `pwrite` of a fixed-size payload at increasing offsets of a file pre-filled with zeros
//! and synced (so no write allocates blocks or changes the file's size), then one
//! `fdatasync`, timed together. The offsets wrap around at the end of the file, like
//! writes into a preallocated segment. No checksum, no framing, no threads.
//!
//! Only the standard library; nothing of the engine is used, so the figure is the disk's.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A baseline run: how much to write and when to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawSyncRun {
    /// Bytes of each write (at least 1).
    pub size: usize,
    /// Bytes of zeros the file is pre-filled with; writes wrap around within it. Raised to
    /// `size` if smaller.
    pub file_bytes: usize,
    /// Stop after this many writes.
    pub max_writes: usize,
    /// Stop starting writes once this much time has passed since the first.
    pub limit: Duration,
}

/// The baseline could not run: the file could not be created, pre-filled, written or
/// synced. Check the directory's disk and permissions.
#[derive(Debug, thiserror::Error)]
#[error("{op} {} failed: {source}", path.display())]
pub struct RawSyncError {
    /// What was being done.
    pub op: &'static str,
    /// The file.
    pub path: PathBuf,
    /// The OS error.
    #[source]
    pub source: std::io::Error,
}

/// Runs the baseline on a new file at `path` (created, or truncated if it exists; left in
/// place for the caller to remove) and returns the latency of each `pwrite` +
/// `fdatasync`, in order. At least one write is made whatever the limit.
///
/// # Errors
/// [`RawSyncError`] for the first step that failed.
pub fn pwrite_fdatasync(path: &Path, run: RawSyncRun) -> Result<Vec<Duration>, RawSyncError> {
    let error = |op| {
        move |source| RawSyncError {
            op,
            path: path.to_path_buf(),
            source,
        }
    };
    let size = run.size.max(1);
    let file_bytes = run.file_bytes.max(size);
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(path)
        .map_err(error("creating"))?;
    file.write_all(&vec![0u8; file_bytes])
        .and_then(|()| file.sync_all())
        .map_err(error("pre-filling"))?;
    let payload = vec![7u8; size];
    let slots = file_bytes / size;
    let mut samples = Vec::new();
    let started = Instant::now();
    while samples.is_empty() || (started.elapsed() < run.limit && samples.len() < run.max_writes) {
        let at = (samples.len() % slots * size) as u64;
        let t0 = Instant::now();
        file.write_all_at(&payload, at)
            .and_then(|()| file.sync_data())
            .map_err(error("writing and syncing"))?;
        samples.push(t0.elapsed());
    }
    Ok(samples)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_baseline_writes_the_payload_at_wrapping_offsets_and_stops_at_max_writes() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("raw");
        let run = RawSyncRun {
            size: 100,
            file_bytes: 250,
            max_writes: 5,
            limit: Duration::from_secs(60),
        };
        let samples = pwrite_fdatasync(&path, run).expect("run");
        assert_eq!(samples.len(), 5);
        let bytes = std::fs::read(&path).expect("read");
        assert_eq!(bytes.len(), 250, "writes stay within the pre-filled file");
        assert!(
            bytes[..200].iter().all(|&b| b == 7),
            "two slots, both written"
        );
        assert!(
            bytes[200..].iter().all(|&b| b == 0),
            "a partial slot is never used"
        );
    }

    #[test]
    fn an_elapsed_limit_still_makes_one_write_and_a_bad_path_is_an_error() {
        let dir = tempfile::tempdir().expect("temp dir");
        let run = RawSyncRun {
            size: 10,
            file_bytes: 0,
            max_writes: 1000,
            limit: Duration::ZERO,
        };
        let samples = pwrite_fdatasync(&dir.path().join("raw"), run).expect("run");
        assert_eq!(samples.len(), 1);
        let missing = dir.path().join("no such dir").join("raw");
        let err = pwrite_fdatasync(&missing, run).expect_err("missing folder");
        assert_eq!(err.op, "creating");
        assert_eq!(err.path, missing);
    }
}
