//! The crate's only `unsafe` code: a shared memory mapping readers on other threads
//! borrow bytes from, and the raw `fallocate` and `sync_file_range` calls. A segment file
//! is mapped read-only: the writer stores with `pwrite` (see `real.rs` for why) and
//! readers see the stores through the mapping. Only the simulated disk's anonymous memory is stored into here.
//!
//! The invariant that makes the borrows sound, kept by the rest of the crate:
//! **bytes are stored only where no borrow exists.** The writer stores only past the
//! published end of a segment, and publishes a frame (Release) only after its last byte
//! is stored; readers borrow only bytes below the published end they loaded (Acquire);
//! published bytes are never stored to again while the log is open. Recovery stores
//! (zeroing a torn tail) before any reader exists and after its own scan borrows end.
//! Everything here is `pub(crate)`: no code outside the crate can break the invariant.

#![allow(unsafe_code)]

#[cfg(any(test, feature = "testing"))]
use memmap2::MmapMut;
use memmap2::{MmapOptions, MmapRaw};
use std::fs::File;
use std::io;

/// A region of memory mapped from a segment file (or anonymous memory for the simulated
/// disk), shared between the writer and readers.
#[derive(Debug)]
pub struct MappedRegion {
    map: MmapRaw,
    /// Only the simulated disk's anonymous memory is stored into.
    #[cfg(any(test, feature = "testing"))]
    writable: bool,
}

impl MappedRegion {
    /// Maps the whole file, read-only. The file must already have its final length (it
    /// is never resized while mapped).
    pub(crate) fn map_file(file: &File) -> io::Result<MappedRegion> {
        let map = MmapOptions::new().map_raw_read_only(file)?;
        Ok(MappedRegion {
            map,
            #[cfg(any(test, feature = "testing"))]
            writable: false,
        })
    }

    /// Anonymous zeroed memory of `len` bytes (the simulated disk's page cache).
    #[cfg(any(test, feature = "testing"))]
    pub(crate) fn anonymous(len: usize) -> io::Result<MappedRegion> {
        let map: MmapMut = MmapOptions::new().len(len.max(1)).map_anon()?;
        Ok(MappedRegion {
            map: MmapRaw::from(map),
            writable: true,
        })
    }

    /// Length of the region in bytes.
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// Stores `parts` one after the other starting at `at`. Bounds are checked: a store
    /// that would run past the end is refused and stores nothing.
    ///
    /// Callers keep the module invariant: nobody borrows the bytes being stored.
    #[cfg(any(test, feature = "testing"))]
    pub(crate) fn write_at(&self, at: usize, parts: &[&[u8]]) -> io::Result<()> {
        let total = parts
            .iter()
            .try_fold(0usize, |acc, p| acc.checked_add(p.len()));
        let end = total.and_then(|t| at.checked_add(t));
        if !self.writable || end.is_none_or(|end| end > self.map.len()) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "store outside of the mapped segment or into a read-only mapping",
            ));
        }
        let mut pos = at;
        for part in parts {
            // SAFETY: `pos + part.len() <= at + total <= self.map.len()` was checked above,
            // so the destination lies inside the live, writable mapping (it stays mapped
            // while `self` lives). The source is a Rust slice, which cannot overlap a
            // region no one borrows (module invariant), so the copy is non-overlapping
            // and races with no reader.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    part.as_ptr(),
                    self.map.as_mut_ptr().add(pos),
                    part.len(),
                );
            }
            pos += part.len();
        }
        Ok(())
    }

    /// Borrows `len` bytes at `at`, or `None` if that runs past the end.
    ///
    /// Callers keep the module invariant: the bytes are not stored to while borrowed.
    pub(crate) fn bytes(&self, at: usize, len: usize) -> Option<&[u8]> {
        let end = at.checked_add(len)?;
        if end > self.map.len() {
            return None;
        }
        // SAFETY: `at + len <= self.map.len()` so the range lies inside the mapping, which
        // lives as long as `&self`; the mapping is readable (MmapRaw maps with read
        // permission in both modes); no store happens to these bytes while the borrow
        // lives (module invariant), so the shared slice is never aliased by a write.
        Some(unsafe { std::slice::from_raw_parts(self.map.as_ptr().add(at), len) })
    }

    /// Borrows the whole region.
    pub(crate) fn all(&self) -> &[u8] {
        self.bytes(0, self.len()).unwrap_or(&[])
    }
}

/// Reserves `len` bytes of disk for `file` (posix_fallocate), so that a full disk is an
/// `ENOSPC` error here instead of a SIGBUS when the mapping is stored to.
pub(crate) fn allocate(file: &File, len: u64) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let len = libc::off_t::try_from(len)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "segment too large"))?;
    // SAFETY: `posix_fallocate` only reads its integer arguments; the descriptor is valid
    // for the duration of the call because `file` is borrowed.
    let rc = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, len) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(rc))
    }
}

/// Starts writing back `len` bytes of `file` from `offset` and waits until they are
/// written (`sync_file_range` with `WAIT_BEFORE | WRITE | WAIT_AFTER`): the pages reach
/// the device, with no cache flush and no journal commit, so this makes nothing durable
/// (a later `fsync` does). Used to keep a large zero-fill from piling up dirty pages that
/// a concurrent `fdatasync` would queue behind (see `real.rs`). A no-op where the call
/// does not exist.
pub(crate) fn write_back(file: &File, offset: u64, len: u64) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let (Ok(offset), Ok(len)) = (
            libc::off64_t::try_from(offset),
            libc::off64_t::try_from(len),
        ) else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "range too large",
            ));
        };
        let flags = libc::SYNC_FILE_RANGE_WAIT_BEFORE
            | libc::SYNC_FILE_RANGE_WRITE
            | libc::SYNC_FILE_RANGE_WAIT_AFTER;
        // SAFETY: `sync_file_range` only reads its integer arguments; the descriptor is
        // valid for the duration of the call because `file` is borrowed.
        let rc = unsafe { libc::sync_file_range(file.as_raw_fd(), offset, len, flags) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (file, offset, len);
    Ok(())
}

/// Pages of the first `len` bytes of `file` in the page cache that are dirty or under
/// write-back (the `cachestat` system call, Linux 6.5 and later); `None` where the call
/// does not exist. For tests of [`write_back`].
#[cfg(all(
    test,
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
pub(crate) fn unwritten_pages(file: &File, len: u64) -> Option<u64> {
    use std::os::fd::AsRawFd;
    /// `cachestat` in the generic and the x86-64 system call tables.
    const SYS_CACHESTAT: libc::c_long = 451;
    #[repr(C)]
    struct Range {
        off: u64,
        len: u64,
    }
    #[repr(C)]
    #[derive(Default)]
    struct Stat {
        cache: u64,
        dirty: u64,
        writeback: u64,
        evicted: u64,
        recently_evicted: u64,
    }
    let range = Range { off: 0, len };
    let mut stat = Stat::default();
    // SAFETY: `cachestat(fd, range, stat, flags)` reads `range` and writes one `Stat`
    // (the kernel's `struct cachestat_range` and `struct cachestat`, five u64s), both
    // live, properly laid out (`repr(C)`) and exclusively borrowed for the call; the
    // descriptor is valid because `file` is borrowed.
    let rc = unsafe {
        libc::syscall(
            SYS_CACHESTAT,
            file.as_raw_fd(),
            &range as *const Range,
            &mut stat as *mut Stat,
            0u32,
        )
    };
    (rc == 0).then_some(stat.dirty + stat.writeback)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_outside_the_region_are_refused() {
        let r = MappedRegion::anonymous(16).unwrap();
        assert!(r.write_at(10, &[b"1234567"]).is_err());
        assert!(r.write_at(usize::MAX, &[b"1"]).is_err());
        r.write_at(8, &[b"1234", b"5678"]).unwrap();
        assert_eq!(r.bytes(8, 8), Some(&b"12345678"[..]));
        assert_eq!(r.bytes(9, 8), None);
    }
}
