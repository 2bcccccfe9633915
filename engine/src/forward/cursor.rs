//! A follower's read position, published for the writer so that log truncation keeps
//! what a follower in another process still has to read. Defined once, here.
//!
//! One file per follower, `<dir>/followers/<id>.cursor`, 24 bytes:
//!
//! ```text
//! offset size field
//!      0    8 magic "TLCURSR1"
//!      8    8 first global sequence the follower still needs (u64 LE)
//!     16    4 CRC-32 (crc32fast) of bytes 0..16
//!     20    4 zero
//! ```
//!
//! The follower holds an exclusive `flock` on its file while it lives. The writer reads
//! only files whose lock it cannot take (a live follower); a file it *can* lock belongs to
//! a follower that is gone, and is removed. A file it cannot decode (a write caught half
//! done) holds the whole log for that round: the safe reading.

use std::fs::{File, OpenOptions, TryLockError};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use tidelog_watermarks::GlobalSeq;

/// Folder of follower cursors in the database directory.
pub const FOLLOWERS_DIR: &str = "followers";
const SUFFIX: &str = ".cursor";
const MAGIC: &[u8; 8] = b"TLCURSR1";
const LEN: usize = 24;

fn encode(from: GlobalSeq) -> [u8; LEN] {
    let mut buf = [0u8; LEN];
    buf[..8].copy_from_slice(MAGIC);
    buf[8..16].copy_from_slice(&from.get().to_le_bytes());
    let crc = crc32fast::hash(&buf[..16]);
    buf[16..20].copy_from_slice(&crc.to_le_bytes());
    buf
}

fn decode(buf: &[u8]) -> Option<GlobalSeq> {
    if buf.len() < LEN {
        return None;
    }
    let magic = buf.get(..8)?;
    let seq: [u8; 8] = buf.get(8..16)?.try_into().ok()?;
    let crc: [u8; 4] = buf.get(16..20)?.try_into().ok()?;
    if magic != MAGIC || crc32fast::hash(buf.get(..16)?) != u32::from_le_bytes(crc) {
        return None;
    }
    Some(GlobalSeq(u64::from_le_bytes(seq)))
}

/// A follower's published cursor; removed when dropped.
#[derive(Debug)]
pub(crate) struct Cursor {
    path: PathBuf,
    file: File,
    from: AtomicU64,
}

impl Cursor {
    /// Creates and locks this follower's cursor file, holding the log from `from`.
    pub(crate) fn create(dir: &Path, from: GlobalSeq) -> std::io::Result<Cursor> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let folder = dir.join(FOLLOWERS_DIR);
        std::fs::create_dir_all(&folder)?;
        let name = format!(
            "{}-{}{SUFFIX}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let path = folder.join(&name);
        // Locked and written under a temporary name, then renamed: the writer never sees
        // the file unlocked (which would mean a dead follower) or empty.
        let temp = folder.join(format!("{name}.new"));
        let file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(&temp)?;
        file.try_lock().map_err(std::io::Error::from)?;
        file.write_all_at(&encode(from), 0)?;
        std::fs::rename(&temp, &path)?;
        Ok(Cursor {
            path,
            file,
            from: AtomicU64::new(from.get()),
        })
    }

    /// Moves the cursor forward to `from` (never back).
    pub(crate) fn advance(&self, from: GlobalSeq) -> std::io::Result<()> {
        let previous = self.from.fetch_max(from.get(), Ordering::AcqRel);
        if from.get() > previous {
            self.file.write_all_at(&encode(from), 0)?;
        }
        Ok(())
    }
}

impl Drop for Cursor {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The cursors of the live followers of the database in `dir`: (follower id, first
/// sequence it needs). Cursors of followers that are gone are removed.
pub(crate) fn live_cursors(dir: &Path) -> Vec<(String, GlobalSeq)> {
    let Ok(entries) = std::fs::read_dir(dir.join(FOLLOWERS_DIR)) else {
        return Vec::new();
    };
    let mut live = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let Some(id) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(SUFFIX))
            .map(str::to_owned)
        else {
            continue;
        };
        let Ok(file) = File::open(&path) else {
            continue;
        };
        match file.try_lock() {
            // Nobody holds it: that follower is gone.
            Ok(()) => {
                let _ = std::fs::remove_file(&path);
            }
            Err(TryLockError::WouldBlock) => {
                let mut buf = [0u8; LEN];
                let from = file
                    .read_exact_at(&mut buf, 0)
                    .ok()
                    .and_then(|()| decode(&buf))
                    .unwrap_or(GlobalSeq(1));
                live.push((id, from));
            }
            // Cannot tell: keep everything for it.
            Err(TryLockError::Error(_)) => live.push((id, GlobalSeq(1))),
        }
    }
    live
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_reads_back_and_any_damage_is_refused() {
        let bytes = encode(GlobalSeq(42));
        assert_eq!(decode(&bytes), Some(GlobalSeq(42)));
        for bit in 0..20 * 8 {
            let mut damaged = bytes;
            damaged[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(decode(&damaged), None, "bit {bit}");
        }
        for cut in 0..LEN {
            assert_eq!(decode(&bytes[..cut]), None);
        }
    }

    #[test]
    fn a_live_cursor_is_listed_and_a_dead_ones_file_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let cursor = Cursor::create(dir.path(), GlobalSeq(7)).unwrap();
        cursor.advance(GlobalSeq(9)).unwrap();
        cursor.advance(GlobalSeq(3)).unwrap();
        let live = live_cursors(dir.path());
        assert_eq!(live.len(), 1);
        assert_eq!(live[0].1, GlobalSeq(9));
        // A follower that died leaves its file unlocked.
        let stale = dir.path().join(FOLLOWERS_DIR).join(format!("dead{SUFFIX}"));
        std::fs::write(&stale, encode(GlobalSeq(1))).unwrap();
        assert_eq!(live_cursors(dir.path()).len(), 1);
        assert!(!stale.exists(), "a dead follower's cursor was kept");
        drop(cursor);
        assert!(live_cursors(dir.path()).is_empty());
    }
}
