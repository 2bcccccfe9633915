//! The physical baseline: each record is a 4-byte little-endian length and the payload,
//! written with one `pwrite` at the end of a file pre-filled with zeros, then
//! `fdatasync`. No checksum, no index, no threads: the least a durable log can do.
//! Reopening scans lengths until a zero one, the least a recovery can do.

use crate::error::BenchError;
use parking_lot::Mutex;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Zeros added at a time when the file runs out of pre-filled room.
pub(crate) const PREFILL_BYTES: u64 = 64 * 1024 * 1024;
static ZEROS: [u8; 1 << 20] = [0; 1 << 20];
const LEN_BYTES: u64 = 4;

struct State {
    file: File,
    /// Where the next record goes.
    end: u64,
    /// How far the file is pre-filled.
    len: u64,
    records: u64,
}

struct Baseline {
    path: PathBuf,
    state: Mutex<State>,
}

/// Opens the baseline's file in `dir`, scanning what is there.
///
/// # Errors
/// [`BenchError::Io`] when the file cannot be opened, read or pre-filled.
pub fn open(dir: &Path) -> Result<Box<dyn crate::peer::Peer>, BenchError> {
    let path = dir.join("baseline.log");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .map_err(|e| BenchError::io("open", &path, e))?;
    let len = file
        .metadata()
        .map_err(|e| BenchError::io("stat", &path, e))?
        .len();
    let (end, records) = scan(&file, len).map_err(|e| BenchError::io("scan", &path, e))?;
    let mut state = State {
        file,
        end,
        len,
        records,
    };
    if state.len < state.end + PREFILL_BYTES / 2 {
        prefill(&mut state).map_err(|e| BenchError::io("pre-fill", &path, e))?;
    }
    Ok(Box::new(Baseline {
        path,
        state: Mutex::new(state),
    }))
}

/// Reads frames from the start until a zero length or the end of the file; returns
/// where the next frame goes and how many records were found.
pub(crate) fn scan(file: &File, len: u64) -> std::io::Result<(u64, u64)> {
    let mut reader = std::io::BufReader::with_capacity(1 << 20, file);
    let mut at = 0u64;
    let mut records = 0u64;
    let mut header = [0u8; 4];
    loop {
        if at + LEN_BYTES > len {
            return Ok((at, records));
        }
        std::io::Read::read_exact(&mut reader, &mut header)?;
        let size = u64::from(u32::from_le_bytes(header));
        if size == 0 || at + LEN_BYTES + size > len {
            return Ok((at, records));
        }
        std::io::Seek::seek_relative(&mut reader, i64::try_from(size).unwrap_or(i64::MAX))?;
        at += LEN_BYTES + size;
        records += 1;
    }
}

fn prefill(state: &mut State) -> std::io::Result<()> {
    state.len = prefill_file(&state.file, state.len)?;
    Ok(())
}

/// Appends [`PREFILL_BYTES`] of zeros to a file of `len` bytes and syncs it; returns the
/// new length.
pub(crate) fn prefill_file(file: &File, len: u64) -> std::io::Result<u64> {
    let target = len + PREFILL_BYTES;
    let mut at = len;
    while at < target {
        file.write_all_at(&ZEROS, at)?;
        at += ZEROS.len() as u64;
    }
    file.sync_all()?;
    Ok(at)
}

impl Baseline {
    fn write_synced(&self, frames: &[u8], records: u64) -> Result<(), BenchError> {
        let mut state = self.state.lock();
        let io = |e| BenchError::io("write", &self.path, e);
        while state.end + frames.len() as u64 > state.len {
            prefill(&mut state).map_err(io)?;
        }
        state.file.write_all_at(frames, state.end).map_err(io)?;
        state.file.sync_data().map_err(io)?;
        state.end += frames.len() as u64;
        state.records += records;
        Ok(())
    }
}

/// Appends one frame (4-byte little-endian length, then the record) to `out`.
pub(crate) fn frame_into(out: &mut Vec<u8>, record: &[u8]) {
    let len = u32::try_from(record.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(record);
}

/// The frames of `records`, one after the other, as [`frame_into`] writes each.
pub(crate) fn frames_of(records: &[Vec<u8>]) -> Vec<u8> {
    let total = records.iter().map(|r| r.len() + 4).sum();
    let mut frames = Vec::with_capacity(total);
    for record in records {
        frame_into(&mut frames, record);
    }
    frames
}

impl crate::peer::Peer for Baseline {
    fn append_durable(&self, _lane: u32, record: &[u8]) -> Result<(), BenchError> {
        let mut frame = Vec::with_capacity(record.len() + 4);
        frame_into(&mut frame, record);
        self.write_synced(&frame, 1)
    }

    fn append_batch_durable(&self, _lane: u32, records: &[Vec<u8>]) -> Result<(), BenchError> {
        self.write_synced(&frames_of(records), records.len() as u64)
    }

    fn count(&self) -> Result<u64, BenchError> {
        Ok(self.state.lock().records)
    }

    fn close(&self) -> Result<(), BenchError> {
        let state = self.state.lock();
        state
            .file
            .sync_all()
            .map_err(|e| BenchError::io("sync", &self.path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reopened_baseline_finds_every_record_it_wrote() {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path()).unwrap();
        log.append_durable(1, &[7u8; 100]).unwrap();
        log.append_batch_durable(1, &[vec![1u8; 10], vec![2u8; 20]])
            .unwrap();
        log.close().unwrap();
        drop(log);
        let log = open(dir.path()).unwrap();
        assert_eq!(log.count().unwrap(), 3);
    }
}
