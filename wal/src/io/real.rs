//! The real storage: files on a local file system, mapped with `mmap(MAP_SHARED)`,
//! reserved with `posix_fallocate`, zero-filled ahead of use, directories synced with
//! `fsync`.
//!
//! The zero-fill of a fresh segment (64 MiB by default) runs beside the appenders, often
//! on a background thread while they sync. Written all at once and then synced, its dirty
//! pages reach the device as one large write-back that an appender's `fdatasync` queues
//! behind (tens of milliseconds on a virtual disk). So it is written in
//! `ZERO_CHUNK`-sized (1 MiB) steps, each written back (`sync_file_range`, no cache flush, no
//! journal commit) before the next: at most one chunk of zeros is ever between an
//! appender's write and the device. One `fsync` at the end makes the file durable, as
//! before. Reserving the file with `fallocate` alone (no zeros) would leave unwritten
//! extents, and every later `fdatasync` into them would commit the journal to convert
//! them (see `docs/benchmarks.md`, "Keeping preparation off the appenders' path").
//!
//! The writer stores frames with `pwrite` into the file's page cache and syncs with
//! `fdatasync`; readers read the same pages zero-copy through the shared mapping. Storing
//! through the mapping instead was measured 2.4x slower per durable record on ext4
//! (p50 660 µs against 280 µs for 256-byte records, one sync each): every sync
//! write-protects the page, so the next store takes a `page_mkwrite` fault. `pwrite` also
//! turns a failing store into an error return instead of a SIGBUS.

use super::mapped::{allocate, write_back, MappedRegion};
use super::sealed::{SegmentOps, StorageOps};
use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
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
    /// The file the writer stores into and syncs; readers use `region`.
    file: File,
}

/// The step of a zero-fill: written, then written back, before the next (module docs).
const ZERO_CHUNK: usize = 1 << 20;

/// Writes `len` zeros into `file` from its start, in [`ZERO_CHUNK`] steps, handing each
/// step's range to `write_back` before the next step is written.
fn zero_fill(
    file: &mut File,
    len: u64,
    mut write_back: impl FnMut(&File, u64, u64) -> io::Result<()>,
) -> io::Result<()> {
    let zeros = vec![0u8; ZERO_CHUNK];
    let mut at = 0u64;
    while at < len {
        let n = usize::try_from(len - at).map_or(ZERO_CHUNK, |l| l.min(ZERO_CHUNK));
        file.write_all(zeros.get(..n).unwrap_or(&[]))?;
        write_back(file, at, n as u64)?;
        at += n as u64;
    }
    Ok(())
}

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
        // written, so a later fdatasync has no extent conversion to journal; written back
        // step by step so that appenders syncing meanwhile never wait behind all of it.
        zero_fill(&mut file, len, write_back)?;
        file.sync_all()
    }

    fn open_segment(&self, path: &Path, writable: bool) -> io::Result<RealSegment> {
        let file = OpenOptions::new().read(true).write(writable).open(path)?;
        // Readers only: the writer stores with pwrite, so no stray store can reach the
        // file through the mapping.
        let region = MappedRegion::map_file(&file)?;
        Ok(RealSegment {
            region: Arc::new(region),
            file,
        })
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        // A hard link fails atomically (`AlreadyExists`) when the target exists, where a
        // check followed by rename(2) would let a racing writer's file be replaced.
        fs::hard_link(from, to)?;
        // The file is in place under its new name; a temporary name left behind by a
        // failed removal is cleaned by the next recovery.
        let _ = fs::remove_file(from);
        Ok(())
    }

    fn replace(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }

    fn write_new(&self, path: &Path, data: &[u8], len: u64) -> io::Result<()> {
        if (data.len() as u64) > len {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "file content longer than the file",
            ));
        }
        let mut file = OpenOptions::new().write(true).create_new(true).open(path)?;
        file.write_all(data)?;
        if len > data.len() as u64 {
            file.set_len(len)?;
        }
        Ok(())
    }

    fn sync_file(&self, path: &Path) -> io::Result<()> {
        File::open(path)?.sync_all()
    }

    fn read_all(&self, path: &Path) -> io::Result<Vec<u8>> {
        fs::read(path)
    }
}

impl SegmentOps for RealSegment {
    fn region(&self) -> &Arc<MappedRegion> {
        &self.region
    }

    fn write(&self, at: usize, parts: &[&[u8]]) -> io::Result<()> {
        let total: usize = parts.iter().map(|p| p.len()).sum();
        if at
            .checked_add(total)
            .is_none_or(|end| end > self.region.len())
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "store past the end of the segment",
            ));
        }
        // One syscall per store. The writer hands its group's buffer as one part: store
        // it as it is, without a copy; several parts are gathered first.
        if let [only] = parts {
            return self.file.write_all_at(only, at as u64);
        }
        let mut gathered = Vec::with_capacity(total);
        for part in parts {
            gathered.extend_from_slice(part);
        }
        self.file.write_all_at(&gathered, at as u64)
    }

    fn sync(&self, _at: usize, _len: usize) -> io::Result<()> {
        // fdatasync covers every store into this file; the writer only ever has the
        // range it asks for unsynced, so nothing else is made durable early.
        self.file.sync_data()?;
        // A file deleted behind the writer's back (`rm`, a cleanup script, the whole
        // directory removed) still takes stores and syncs, into an inode nothing names:
        // none of it survives a reopen. One fstat per group commit refuses to call that
        // durable, so the writer stops (poisoned) instead of acknowledging records that
        // are already gone.
        ensure_still_linked(&self.file)
    }
}

/// Fails when `file` no longer has a name in any directory (its link count is zero).
fn ensure_still_linked(file: &File) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    if file.metadata()?.nlink() == 0 {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            "the segment file was deleted while the writer was using it, so what was \
             synced into it is gone; nothing more is acknowledged: restore the log from a \
             backup, or reopen and accept the loss (`tidelog recover --mode accept-loss`)",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zero_fill_writes_back_each_step_before_writing_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let mut file = File::create(dir.path().join("f")).unwrap();
        let len = 2 * ZERO_CHUNK as u64 + 512;
        let mut steps = Vec::new();
        zero_fill(&mut file, len, |file, at, n| {
            // Everything up to this step's end is written when it is handed over, and
            // nothing of the next step yet.
            assert_eq!(file.metadata()?.len(), at + n);
            steps.push((at, n));
            write_back(file, at, n)
        })
        .unwrap();
        let chunk = ZERO_CHUNK as u64;
        assert_eq!(steps, [(0, chunk), (chunk, chunk), (2 * chunk, 512)]);
        assert_eq!(file.metadata().unwrap().len(), len);
    }

    /// Pages of a zero-fill left dirty or under write-back before its final sync: what an
    /// appender's `fdatasync` would queue behind. `None` where that cannot be told here:
    /// no `cachestat`, or a file system that keeps pages dirty whatever is written back
    /// (tmpfs), which a fill without write-back shows by leaving none dirty either.
    #[cfg(all(
        target_os = "linux",
        any(target_arch = "x86_64", target_arch = "aarch64")
    ))]
    fn left_unwritten(
        write_back: impl FnMut(&File, u64, u64) -> io::Result<()>,
        control: &mut File,
        file: &mut File,
        len: u64,
    ) -> Option<u64> {
        use super::super::mapped::unwritten_pages;
        zero_fill(control, len, |_, _, _| Ok(())).unwrap();
        let without_write_back = unwritten_pages(control, len)?;
        zero_fill(file, len, write_back).unwrap();
        let left = unwritten_pages(file, len)?;
        file.sync_all().unwrap();
        let after_sync = unwritten_pages(file, len)?;
        (without_write_back > 0 && after_sync == 0).then_some(left)
    }

    #[cfg(all(
        target_os = "linux",
        any(target_arch = "x86_64", target_arch = "aarch64")
    ))]
    #[test]
    fn a_zero_fill_leaves_no_dirty_page_for_a_later_sync_to_wait_behind() {
        let dir = tempfile::tempdir().unwrap();
        let mut control = File::create(dir.path().join("control")).unwrap();
        let mut file = File::create(dir.path().join("filled")).unwrap();
        let len = 4 * ZERO_CHUNK as u64;
        if let Some(left) = left_unwritten(write_back, &mut control, &mut file, len) {
            assert_eq!(left, 0, "pages of the zero-fill left for the final sync");
        }
    }

    #[test]
    fn a_created_segment_file_reads_as_zeros_over_its_whole_length() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seg");
        let len = ZERO_CHUNK as u64 + 4096;
        RealStorage.create_zeroed(&path, len).unwrap();
        let bytes = fs::read(&path).unwrap();
        assert_eq!(bytes.len() as u64, len);
        assert!(bytes.iter().all(|b| *b == 0));
    }
}
