//! The database's space reserve: a file of zeros (`RESERVE`, [`RESERVE_BYTES`]) that
//! holds back a little of the file system for the day it is full.
//!
//! Freeing space in a log takes a few small writes first: the writer's lease record, a
//! checkpoint file, the extent record, the published watermarks. On a file system with no
//! free block at all (another program filled it), those writes fail and the database could
//! not even be opened to free its own segments. The reserve is what they use then: a
//! command that frees space (`tidelog checkpoint`, `tidelog truncate`, or a program calling
//! [`release_reserve`] before its own checkpoint) removes the reserve, opens the
//! database in the room it leaves, frees segments, and [`restore_reserve`] puts the
//! reserve back once the space is there again.
//!
//! The reserve holds no data: removing it, or a crash at any point of its creation or
//! removal, never affects the log. Nothing but these functions touches it; opening a
//! database never creates or removes it (an open changes only what it must).

use std::error::Error;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

/// Name of the reserve file inside the database directory.
pub const RESERVE_FILE: &str = "RESERVE";

/// Size of the reserve: room for the lease record, a checkpoint with a small state, the
/// extent record and the published watermarks, on file systems with 4 KiB blocks, many
/// times over.
pub const RESERVE_BYTES: u64 = 256 * 1024;

/// Removes the reserve of the database in `dir`, so that the writes which free space
/// (the lease record, a checkpoint) find room on a full file system. Returns the bytes
/// freed: 0 when there was no reserve (already released, or a database created before
/// reserves existed). Safe at any time, by any process, with or without the lease: the
/// reserve holds no data.
///
/// # Errors
/// The I/O error of removing the file or syncing the directory.
pub fn release_reserve(dir: &Path) -> io::Result<u64> {
    let path = dir.join(RESERVE_FILE);
    let len = match fs::metadata(&path) {
        Ok(meta) => meta.len(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    match fs::remove_file(&path) {
        Ok(()) => {}
        // Another process released it meanwhile.
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    }
    File::open(dir)?.sync_all()?;
    Ok(len)
}

/// Creates the reserve of the database in `dir` if it has none and the file system has
/// room for it and `headroom` more bytes (so that restoring it never takes the space an
/// append needs next: pass the segment size). Returns whether a reserve is in place
/// afterwards. The file is written with zeros (not sparse: its blocks are really held),
/// synced under a temporary name and renamed, so a crash leaves either no reserve or a
/// whole one, plus at worst a temporary file the next call removes.
///
/// # Errors
/// The I/O error of writing, syncing or renaming the file, other than the file system
/// being full (then `Ok(false)`).
pub fn restore_reserve(dir: &Path, headroom: u64) -> io::Result<bool> {
    let path = dir.join(RESERVE_FILE);
    if path.exists() {
        return Ok(true);
    }
    let temp = dir.join(format!("{RESERVE_FILE}.tmp"));
    if free_bytes(dir)? < RESERVE_BYTES.saturating_add(headroom) {
        let _ = fs::remove_file(&temp);
        return Ok(false);
    }
    let written = (|| {
        let mut file = File::create(&temp)?;
        let zeros = vec![0u8; 64 * 1024];
        let mut left = RESERVE_BYTES;
        while left > 0 {
            let n = left.min(zeros.len() as u64) as usize;
            file.write_all(&zeros[..n])?;
            left -= n as u64;
        }
        file.sync_all()?;
        fs::rename(&temp, &path)?;
        File::open(dir)?.sync_all()
    })();
    match written {
        Ok(()) => Ok(true),
        Err(e) => {
            let _ = fs::remove_file(&temp);
            if is_no_space_io(&e) {
                Ok(false)
            } else {
                Err(e)
            }
        }
    }
}

/// Whether the database in `dir` has its reserve in place.
#[must_use]
pub fn has_reserve(dir: &Path) -> bool {
    dir.join(RESERVE_FILE).is_file()
}

/// Bytes an unprivileged writer may still allocate on the file system holding `dir`.
fn free_bytes(dir: &Path) -> io::Result<u64> {
    let stats = rustix::fs::statvfs(dir).map_err(io::Error::from)?;
    Ok(stats.f_bavail.saturating_mul(stats.f_frsize))
}

fn is_no_space_io(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT))
}

/// Whether `error`, or any error it was caused by, is the file system being full
/// (`ENOSPC`, or `EDQUOT` for a quota).
#[must_use]
pub fn is_no_space(error: &(dyn Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(e) = next {
        if e.downcast_ref::<io::Error>().is_some_and(is_no_space_io) {
            return true;
        }
        next = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_restored_reserve_is_released_once_and_then_reported_absent() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!has_reserve(dir.path()));
        assert!(restore_reserve(dir.path(), 0).unwrap());
        assert_eq!(
            fs::metadata(dir.path().join(RESERVE_FILE)).unwrap().len(),
            RESERVE_BYTES
        );
        assert_eq!(release_reserve(dir.path()).unwrap(), RESERVE_BYTES);
        assert!(!has_reserve(dir.path()));
        assert_eq!(release_reserve(dir.path()).unwrap(), 0);
    }

    #[test]
    fn a_reserve_is_not_restored_when_it_would_take_the_headroom() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!restore_reserve(dir.path(), u64::MAX / 2).unwrap());
        assert!(!has_reserve(dir.path()));
    }

    #[test]
    fn no_space_is_found_through_the_chain_of_sources() {
        #[derive(Debug)]
        struct Outer(io::Error);
        impl std::fmt::Display for Outer {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "outer")
            }
        }
        impl Error for Outer {
            fn source(&self) -> Option<&(dyn Error + 'static)> {
                Some(&self.0)
            }
        }
        let full = Outer(io::Error::from_raw_os_error(libc::ENOSPC));
        assert!(is_no_space(&full));
        let other = Outer(io::Error::from_raw_os_error(libc::EIO));
        assert!(!is_no_space(&other));
    }
}
