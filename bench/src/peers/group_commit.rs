//! The naive group commit: what a log with group commit and nothing else costs on this
//! disk. Appenders copy their frames (the raw baseline's: 4-byte little-endian length,
//! payload) into one shared buffer and wait; one flusher thread takes the whole buffer,
//! writes it with one `pwrite` at the end of a file pre-filled with zeros, calls
//! `fdatasync`, and wakes every appender whose bytes that sync covered. No checksum, no
//! index, no preparation ahead of need: when the pre-filled room runs out, the flusher
//! zero-fills more on the appenders' path (the naive part).
//!
//! Invariant: an append returns `Ok` only after a sync whose write ended at or past the
//! end of its frames (`synced >= mine`), so every acknowledged record is durable.

use crate::error::BenchError;
use crate::peers::baseline::{frame_into, frames_of, prefill_file, scan, PREFILL_BYTES};
use parking_lot::{Condvar, Mutex};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;

/// What appenders and the flusher share.
#[derive(Default)]
struct Shared {
    /// Frames appended and not yet taken by the flusher.
    pending: Vec<u8>,
    /// Records in `pending`.
    pending_records: u64,
    /// Log offset just past the last byte appended (taken or not).
    appended: u64,
    /// Log offset up to which a sync has completed.
    synced: u64,
    /// Records durable.
    records: u64,
    /// The first write or sync error; the log stops at it (sticky, as a real log would).
    failed: Option<String>,
    /// Set by `close`: the flusher drains what is pending and exits.
    closing: bool,
}

struct State {
    shared: Mutex<Shared>,
    /// Signalled when `pending` gains bytes or `closing` is set.
    work: Condvar,
    /// Signalled after every sync (or failure).
    done: Condvar,
}

struct GroupCommit {
    path: PathBuf,
    state: Arc<State>,
    flusher: Mutex<Option<JoinHandle<()>>>,
}

/// Opens the naive group commit's file in `dir`, scanning what is there, and starts its
/// flusher thread.
///
/// # Errors
/// [`BenchError::Io`] when the file cannot be opened, read or pre-filled, or the thread
/// cannot be started.
pub fn open(dir: &Path) -> Result<Box<dyn crate::peer::Peer>, BenchError> {
    let path = dir.join("group-commit.log");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .map_err(|e| BenchError::io("open", &path, e))?;
    let mut len = file
        .metadata()
        .map_err(|e| BenchError::io("stat", &path, e))?
        .len();
    let (end, records) = scan(&file, len).map_err(|e| BenchError::io("scan", &path, e))?;
    if len < end + PREFILL_BYTES / 2 {
        len = prefill_file(&file, len).map_err(|e| BenchError::io("pre-fill", &path, e))?;
    }
    let state = Arc::new(State {
        shared: Mutex::new(Shared {
            appended: end,
            synced: end,
            records,
            ..Shared::default()
        }),
        work: Condvar::new(),
        done: Condvar::new(),
    });
    let flusher = {
        let state = Arc::clone(&state);
        std::thread::Builder::new()
            .name("group-commit-flusher".to_owned())
            .spawn(move || flush_loop(&state, &file, end, len))
            .map_err(|e| BenchError::io("start the flusher for", &path, e))?
    };
    Ok(Box::new(GroupCommit {
        path,
        state,
        flusher: Mutex::new(Some(flusher)),
    }))
}

/// The flusher: takes everything pending, writes it at `end`, syncs, publishes.
fn flush_loop(state: &State, file: &File, mut end: u64, mut len: u64) {
    let mut buffer = Vec::new();
    loop {
        let records = {
            let mut shared = state.shared.lock();
            while shared.pending.is_empty() && !shared.closing {
                state.work.wait(&mut shared);
            }
            if shared.pending.is_empty() {
                return;
            }
            buffer.clear();
            std::mem::swap(&mut buffer, &mut shared.pending);
            std::mem::take(&mut shared.pending_records)
        };
        let written = write_synced(file, &buffer, end, &mut len);
        let mut shared = state.shared.lock();
        match written {
            Ok(()) => {
                end += buffer.len() as u64;
                shared.synced = end;
                shared.records += records;
            }
            Err(err) => shared.failed = Some(err.to_string()),
        }
        state.done.notify_all();
        if shared.failed.is_some() {
            return;
        }
    }
}

/// Writes `frames` at `end`, zero-filling more room first when needed, then syncs.
fn write_synced(file: &File, frames: &[u8], end: u64, len: &mut u64) -> std::io::Result<()> {
    while end + frames.len() as u64 > *len {
        *len = prefill_file(file, *len)?;
    }
    file.write_all_at(frames, end)?;
    file.sync_data()
}

impl GroupCommit {
    /// Appends frames of `records` records and waits until a sync covers them.
    fn append_waiting(&self, frames: &[u8], records: u64) -> Result<(), BenchError> {
        let mut shared = self.state.shared.lock();
        if shared.closing {
            return Err(self.failure("the log is closed"));
        }
        shared.pending.extend_from_slice(frames);
        shared.pending_records += records;
        shared.appended += frames.len() as u64;
        let mine = shared.appended;
        self.state.work.notify_one();
        while shared.synced < mine {
            if let Some(err) = &shared.failed {
                return Err(self.failure(err));
            }
            self.state.done.wait(&mut shared);
        }
        Ok(())
    }

    fn failure(&self, what: &str) -> BenchError {
        BenchError::io("write", &self.path, std::io::Error::other(what.to_owned()))
    }
}

impl crate::peer::Peer for GroupCommit {
    fn append_durable(&self, _lane: u32, record: &[u8]) -> Result<(), BenchError> {
        let mut frame = Vec::with_capacity(record.len() + 4);
        frame_into(&mut frame, record);
        self.append_waiting(&frame, 1)
    }

    fn append_batch_durable(&self, _lane: u32, records: &[Vec<u8>]) -> Result<(), BenchError> {
        self.append_waiting(&frames_of(records), records.len() as u64)
    }

    fn count(&self) -> Result<u64, BenchError> {
        Ok(self.state.shared.lock().records)
    }

    fn close(&self) -> Result<(), BenchError> {
        self.state.shared.lock().closing = true;
        self.state.work.notify_one();
        if let Some(flusher) = self.flusher.lock().take() {
            flusher
                .join()
                .map_err(|_| self.failure("the flusher thread panicked"))?;
        }
        match &self.state.shared.lock().failed {
            Some(err) => Err(self.failure(err)),
            None => Ok(()),
        }
    }
}

impl Drop for GroupCommit {
    fn drop(&mut self) {
        // A handle dropped without close (the recovery workload's crash) must not leave
        // the flusher waiting forever; what it has not synced is lost, as in a crash.
        let _ = crate::peer::Peer::close(self);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reopened_group_commit_finds_every_record_acknowledged_by_concurrent_appenders() {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path()).unwrap();
        std::thread::scope(|scope| {
            for t in 0..8u8 {
                let log = &log;
                scope.spawn(move || {
                    for i in 0..50u8 {
                        log.append_durable(1, &[t, i, 1, 2, 3]).unwrap();
                    }
                });
            }
        });
        log.append_batch_durable(1, &[vec![1u8; 10], vec![2u8; 20]])
            .unwrap();
        assert_eq!(log.count().unwrap(), 402);
        log.close().unwrap();
        drop(log);
        let log = open(dir.path()).unwrap();
        assert_eq!(log.count().unwrap(), 402);
        log.close().unwrap();
    }

    #[test]
    fn an_append_after_close_is_refused_not_left_waiting() {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path()).unwrap();
        log.close().unwrap();
        assert!(log.append_durable(1, b"late").is_err());
    }
}
