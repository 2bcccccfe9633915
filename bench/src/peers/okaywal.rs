//! okaywal: one entry per record (one chunk), committed (synced) before returning; a
//! batch is one entry of many chunks with one commit. Checkpointing is pushed out of
//! reach so that every record stays in the log and a reopen recovers all of them (okaywal
//! otherwise recycles segments after 768 KiB through the application's checkpointer).

use crate::error::BenchError;
use crate::peer::Peer;
use okaywal::{Configuration, Entry, EntryId, LogManager, SegmentReader, WriteAheadLog};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

const NAME: &str = "okaywal";

/// Counts the records (chunks) recovery hands over; checkpoints nothing.
#[derive(Debug)]
struct Counter(Arc<AtomicU64>);

impl LogManager for Counter {
    fn recover(&mut self, entry: &mut Entry<'_>) -> std::io::Result<()> {
        if let Some(chunks) = entry.read_all_chunks()? {
            self.0.fetch_add(chunks.len() as u64, Ordering::Relaxed);
        }
        Ok(())
    }

    fn checkpoint_to(
        &mut self,
        _last_checkpointed_id: EntryId,
        _checkpointed_entries: &mut SegmentReader,
        _wal: &WriteAheadLog,
    ) -> std::io::Result<()> {
        Ok(())
    }
}

struct OkayWal {
    log: WriteAheadLog,
    records: Arc<AtomicU64>,
}

/// Opens (or recovers) an okaywal log in `dir`.
///
/// # Errors
/// okaywal's open or recovery error.
pub fn open(dir: &Path) -> Result<Box<dyn Peer>, BenchError> {
    let records = Arc::new(AtomicU64::new(0));
    let log = Configuration::default_for(dir)
        .checkpoint_after_bytes(u64::MAX / 2)
        .open(Counter(Arc::clone(&records)))
        .map_err(|e| BenchError::system(NAME, "opening", e))?;
    Ok(Box::new(OkayWal { log, records }))
}

impl OkayWal {
    fn commit(&self, records: &[&[u8]]) -> Result<(), BenchError> {
        let err = |e| BenchError::system(NAME, "appending", e);
        let mut entry = self.log.begin_entry().map_err(err)?;
        for record in records {
            entry.write_chunk(record).map_err(err)?;
        }
        entry.commit().map_err(err)?;
        self.records
            .fetch_add(records.len() as u64, Ordering::Relaxed);
        Ok(())
    }
}

impl Peer for OkayWal {
    fn append_durable(&self, _lane: u32, record: &[u8]) -> Result<(), BenchError> {
        self.commit(&[record])
    }

    fn append_batch_durable(&self, _lane: u32, records: &[Vec<u8>]) -> Result<(), BenchError> {
        let slices: Vec<&[u8]> = records.iter().map(Vec::as_slice).collect();
        self.commit(&slices)
    }

    fn count(&self) -> Result<u64, BenchError> {
        Ok(self.records.load(Ordering::Relaxed))
    }

    fn close(&self) -> Result<(), BenchError> {
        self.log
            .clone()
            .shutdown()
            .map_err(|e| BenchError::system(NAME, "closing", e))
    }
}
