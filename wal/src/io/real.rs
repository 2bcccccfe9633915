//! The real storage: files on a local file system, mapped with `mmap(MAP_SHARED)`,
//! reserved with `posix_fallocate`, zero-filled ahead of use, synced with `msync(MS_SYNC)`,
//! directories synced with `fsync`.

use super::mapped::{allocate, MappedRegion};
use super::sealed::{SegmentOps, StorageOps};
use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::sync::Arc;

/// Files and mmap on the local file system. Zero-sized; the default storage of
/// [`Wal`](crate::Wal).
#[derive(Debug, Clone, Copy, Default)]
pub struct RealStorage;

/// A segment file mapped read-write (or read-only for `verify`).
#[derive(Debug)]
pub struct RealSegment {
    region: Arc<MappedRegion>,
    // Kept open for the life of the mapping; the mapping itself keeps the pages alive.
    _file: File,
}

const ZERO_CHUNK: usize = 1 << 20;

impl StorageOps for RealStorage {
    type Segment = RealSegment;

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        fs::create_dir_all(dir)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<OsString>> {
        fs::read_dir(dir)?
            .map(|entry| entry.map(|e| e.file_name()))
            .collect()
    }

    fn create_zeroed(&self, path: &Path, len: u64) -> io::Result<()> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)?;
        allocate(&file, len)?;
        // Writing real zeros (not only reserving) turns the extents from "unwritten" into
        // written, so a later fdatasync has no extent conversion to journal.
        let zeros = vec![0u8; ZERO_CHUNK];
        let mut left = len;
        while left > 0 {
            let n = usize::try_from(left).map_or(ZERO_CHUNK, |l| l.min(ZERO_CHUNK));
            file.write_all(zeros.get(..n).unwrap_or(&[]))?;
            left -= n as u64;
        }
        file.sync_all()
    }

    fn open_segment(&self, path: &Path, writable: bool) -> io::Result<RealSegment> {
        let file = OpenOptions::new().read(true).write(writable).open(path)?;
        let region = MappedRegion::map_file(&file, writable)?;
        Ok(RealSegment {
            region: Arc::new(region),
            _file: file,
        })
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        if to.exists() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "rename target exists",
            ));
        }
        fs::rename(from, to)
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }
}

impl SegmentOps for RealSegment {
    fn region(&self) -> &Arc<MappedRegion> {
        &self.region
    }

    fn write(&self, at: usize, parts: &[&[u8]]) -> io::Result<()> {
        self.region.write_at(at, parts)
    }

    fn sync(&self, at: usize, len: usize) -> io::Result<()> {
        self.region.flush(at, len)
    }
}
