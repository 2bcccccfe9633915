//! Disk usage of a log directory and the torn-tail injection of the recovery workload.

use crate::error::BenchError;
use std::fs::OpenOptions;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Bytes zeroed at the end of the last record to tear it.
pub const TEAR_BYTES: u64 = 37;

/// Apparent length and allocated bytes (as `du` counts) of every file under `dir`.
///
/// # Errors
/// [`BenchError::Io`] when the tree cannot be read.
pub fn usage(dir: &Path) -> Result<(u64, u64), BenchError> {
    let mut totals = (0, 0);
    for (path, _) in files(dir)? {
        let meta = std::fs::metadata(&path).map_err(|e| BenchError::io("stat", &path, e))?;
        totals.0 += meta.len();
        totals.1 += meta.blocks() * 512;
    }
    Ok(totals)
}

fn files(dir: &Path) -> Result<Vec<(PathBuf, SystemTime)>, BenchError> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(at) = stack.pop() {
        let entries = std::fs::read_dir(&at).map_err(|e| BenchError::io("list", &at, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| BenchError::io("list", &at, e))?;
            let path = entry.path();
            let meta = entry
                .metadata()
                .map_err(|e| BenchError::io("stat", &path, e))?;
            if meta.is_dir() {
                stack.push(path);
            } else if meta.is_file() && meta.len() > 0 {
                let modified = meta
                    .modified()
                    .map_err(|e| BenchError::io("stat", &path, e))?;
                out.push((path, modified));
            }
        }
    }
    Ok(out)
}

/// Tears the last write under `dir` as a crash in the middle of it would: in the most
/// recently modified file, zeroes the [`TEAR_BYTES`] bytes that end at its last non-zero
/// byte (files may be pre-allocated with zeros past their data). Returns the file torn,
/// relative to `dir`, or `None` when there was nothing to tear.
///
/// # Errors
/// [`BenchError::Io`] when a file cannot be read or written.
pub fn tear_last_write(dir: &Path) -> Result<Option<PathBuf>, BenchError> {
    let mut candidates = files(dir)?;
    candidates.sort_by_key(|(_, modified)| *modified);
    let Some((path, _)) = candidates.pop() else {
        return Ok(None);
    };
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .map_err(|e| BenchError::io("open", &path, e))?;
    let len = file
        .metadata()
        .map_err(|e| BenchError::io("stat", &path, e))?
        .len();
    let Some(last) = last_non_zero(&file, len).map_err(|e| BenchError::io("read", &path, e))?
    else {
        return Ok(None);
    };
    let start = (last + 1).saturating_sub(TEAR_BYTES);
    let zeros = vec![0u8; usize::try_from(last + 1 - start).unwrap_or(0)];
    file.write_all_at(&zeros, start)
        .and_then(|()| file.sync_all())
        .map_err(|e| BenchError::io("tear", &path, e))?;
    Ok(Some(path.strip_prefix(dir).unwrap_or(&path).to_path_buf()))
}

/// The offset of the last non-zero byte, reading backwards in 1 MiB blocks.
fn last_non_zero(file: &std::fs::File, len: u64) -> std::io::Result<Option<u64>> {
    const BLOCK: u64 = 1 << 20;
    let mut buf = vec![0u8; BLOCK as usize];
    let mut end = len;
    while end > 0 {
        let start = end.saturating_sub(BLOCK);
        let chunk = &mut buf[..usize::try_from(end - start).unwrap_or(0)];
        file.read_exact_at(chunk, start)?;
        if let Some(i) = chunk.iter().rposition(|&b| b != 0) {
            return Ok(Some(start + i as u64));
        }
        end = start;
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tearing_zeroes_the_bytes_before_the_trailing_zeros_of_the_newest_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut data = vec![9u8; 100];
        data.extend_from_slice(&[0u8; 50]);
        std::fs::write(dir.path().join("seg"), &data).unwrap();
        let torn = tear_last_write(dir.path()).unwrap();
        assert_eq!(torn, Some(PathBuf::from("seg")));
        let after = std::fs::read(dir.path().join("seg")).unwrap();
        assert_eq!(after.len(), 150);
        let ones = after.iter().filter(|&&b| b == 9).count() as u64;
        assert_eq!(ones, 100 - TEAR_BYTES);
        assert!(after[..63].iter().all(|&b| b == 9));
    }

    #[test]
    fn usage_counts_every_file_in_subfolders() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("a"), [1u8; 10]).unwrap();
        std::fs::write(dir.path().join("sub/b"), [1u8; 20]).unwrap();
        assert_eq!(usage(dir.path()).unwrap().0, 30);
    }
}
