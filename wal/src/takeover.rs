//! Taking the log over from a writer that may still be running.
//!
//! The lease stops a deposed writer from *acknowledging*, but not from completing a store
//! it had already decided to make: a process paused (SIGSTOP, a VM freeze, swap) between
//! its last lease check and its `pwrite` wakes up and writes into the files it has open.
//! Left there, such a write could overwrite the seal its successor put on the segment, or
//! the header of a segment the successor continued in, and make the next recovery refuse
//! or cut the successor's acknowledged records.
//!
//! So, when the previous writer may still be alive, the new writer moves the log out of its
//! reach before reading it ([`WalOptions::fence_off_predecessor`](crate::WalOptions)):
//!
//! - the last used segment (the only one a writer stores frames into) is replaced by a
//!   copy: a new file under the same name, synced, renamed over the old one. The old
//!   writer's descriptor now reaches a file that no name leads to;
//! - every prepared, unused segment after it, and every temporary file, is removed: the
//!   old writer may hold them open too.
//!
//! Whatever the old writer stores afterwards lands in files nothing reads. Everything it
//! acknowledged is in the copy: it acknowledged only while its lease was valid, so before
//! the new writer could take the lease and start copying. A crash in the middle leaves
//! either the old file or the complete copy under the segment's name (the copy is synced
//! before the rename, the directory after), and a temporary file recovery removes.

use crate::error::OpenError;
use crate::format::SEGMENT_HEADER_LEN;
use crate::io::sealed::SegmentOps;
use crate::io::{IoOp, Storage};
use crate::segment::{classify, segment_path, temp_path, EntryKind};
use crate::walker::nonzero_end;
use std::path::{Path, PathBuf};

/// What fencing off a previous writer did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FenceReport {
    /// The segment replaced by a copy, if the log had a used one.
    pub copied: Option<PathBuf>,
    /// Bytes copied (up to the last non-zero byte of that segment).
    pub copied_bytes: u64,
    /// Prepared, unused segments and temporary files removed.
    pub removed: Vec<PathBuf>,
}

fn io_err(op: IoOp, path: &Path) -> impl FnOnce(std::io::Error) -> OpenError + '_ {
    move |source| OpenError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// Moves the log in `dir` out of reach of a writer that may still hold its files open;
/// see the module documentation.
pub(crate) fn fence_off<S: Storage>(storage: &S, dir: &Path) -> Result<FenceReport, OpenError> {
    let mut report = FenceReport::default();
    let mut segments = Vec::new();
    for name in storage.list(dir).map_err(io_err(IoOp::List, dir))? {
        match classify(&name) {
            Some(EntryKind::Segment(index)) => segments.push(index),
            // A spare too: the old writer may be turning it into a segment right now.
            Some(EntryKind::Temp(_) | EntryKind::Spare(_)) => report.removed.push(dir.join(&name)),
            // Recovery reports foreign files; they are no writer's.
            None => {}
        }
    }
    segments.sort();
    for &index in segments.iter().rev() {
        let path = segment_path(dir, index);
        let segment = storage
            .open_segment(&path, false)
            .map_err(io_err(IoOp::Open, &path))?;
        let bytes = segment.region().all();
        let used = bytes
            .get(..SEGMENT_HEADER_LEN)
            .is_none_or(|header| header.iter().any(|b| *b != 0));
        if !used {
            report.removed.push(path);
            continue;
        }
        let data = bytes.get(..nonzero_end(bytes)).unwrap_or(bytes);
        let copy = temp_path(dir, index);
        storage
            .write_new(&copy, data, bytes.len() as u64)
            .map_err(io_err(IoOp::Create, &copy))?;
        storage
            .sync_file(&copy)
            .map_err(io_err(IoOp::Sync, &copy))?;
        storage
            .replace(&copy, &path)
            .map_err(io_err(IoOp::Rename, &copy))?;
        report.copied_bytes = data.len() as u64;
        report.copied = Some(path);
        break;
    }
    for path in &report.removed {
        storage.remove(path).map_err(io_err(IoOp::Remove, path))?;
    }
    storage.sync_dir(dir).map_err(io_err(IoOp::DirSync, dir))?;
    Ok(report)
}
