//! Segment files: naming, preparation ahead of need, headers.
//!
//! A segment is prepared under a temporary name (`<index>.<pid>-<n>.seg.tmp`, unique to the
//! process and the preparation, so two writers, one of them deposed, never fill the same
//! file): created, its blocks
//! reserved with fallocate and written with zeros (written back a MiB at a time, so that
//! appenders syncing meanwhile never queue behind the whole fill: see `io/real.rs`), its
//! data synced; then renamed to
//! `<index>.seg` and the directory synced. Only then is it mapped and used, so a full disk
//! fails here with `ENOSPC`, never with a SIGBUS in the middle of an append, and a sync of
//! frames stored into it later has no metadata to commit. A prepared, unused segment has an
//! all-zero header.
//!
//! The writer keeps the next segment prepared before it is needed (`NextSegment`): on
//! real storage a background thread prepares it while the current one fills up.
//!
//! Reuse: truncation keeps up to [`MAX_SPARE_SEGMENTS`] freed segment files as spares
//! (`<old index>.seg.spare`, renamed there in one step). A preparation takes a spare when
//! there is one instead of creating and zero-filling a file: it stores a zero header
//! sector and the reuse mark ([`encode_reuse_mark`]) at offset 512 and syncs them, renames
//! the spare to a temporary name, then to `<index>.seg`, and syncs the directory. The
//! body keeps the earlier life's bytes: none of its frames verifies under the new index
//! (the frame CRC covers the index), and the writer writes the header with
//! [`HEADER_FLAG_REUSED`](crate::format::HEADER_FLAG_REUSED) at rotation, so recovery
//! and the scans end the log where this life's frames end.

use crate::error::IoFailure;
use crate::format::{encode_reuse_mark, SegmentHeader, SECTOR_LEN, SEGMENT_HEADER_LEN};
use crate::ids::SegmentIndex;
use crate::io::sealed::SegmentOps;
use crate::io::{IoOp, Storage};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;

const SEGMENT_SUFFIX: &str = ".seg";
const TEMP_SUFFIX: &str = ".seg.tmp";
const SPARE_SUFFIX: &str = ".seg.spare";

/// The most freed segment files truncation keeps for reuse; beyond it, freed segments are
/// deleted. Two: the next preparation needs one, and a truncation that frees several at
/// once (after a late checkpoint) leaves one more for the rotation after it. The disk a
/// log holds is then at most its live segments, one prepared segment and two spares.
pub const MAX_SPARE_SEGMENTS: usize = 2;
const INDEX_DIGITS: usize = 20;

/// The file name of a segment: its index in 20 decimal digits, then `.seg`, so names sort
/// like indexes.
#[must_use]
pub fn segment_file_name(index: SegmentIndex) -> String {
    format!("{:0width$}{SEGMENT_SUFFIX}", index.0, width = INDEX_DIGITS)
}

/// Path of a segment in `dir`.
#[must_use]
pub fn segment_path(dir: &Path, index: SegmentIndex) -> PathBuf {
    dir.join(segment_file_name(index))
}

/// A fresh temporary path to prepare segment `index` under: the index, then a tag unique
/// to this process and this preparation.
pub(crate) fn temp_path(dir: &Path, index: SegmentIndex) -> PathBuf {
    static PREPARATIONS: AtomicU64 = AtomicU64::new(0);
    dir.join(format!(
        "{:0width$}.{}-{}{TEMP_SUFFIX}",
        index.0,
        std::process::id(),
        PREPARATIONS.fetch_add(1, Ordering::Relaxed),
        width = INDEX_DIGITS
    ))
}

/// Path of the spare file a freed segment `index` is kept under (see the module docs).
#[must_use]
pub(crate) fn spare_path(dir: &Path, index: SegmentIndex) -> PathBuf {
    dir.join(format!(
        "{:0width$}{SPARE_SUFFIX}",
        index.0,
        width = INDEX_DIGITS
    ))
}

/// What a directory entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EntryKind {
    /// A segment file.
    Segment(SegmentIndex),
    /// A segment whose preparation was interrupted (safe to delete).
    Temp(SegmentIndex),
    /// A freed segment kept for reuse (by its old index): not part of the log.
    Spare(SegmentIndex),
}

/// Classifies a directory entry name; `None` means a foreign file.
pub(crate) fn classify(name: &OsStr) -> Option<EntryKind> {
    let name = name.to_str()?;
    let mut spare = false;
    let (digits, temp) = if let Some(d) = name.strip_suffix(TEMP_SUFFIX) {
        // `<index>.<tag>.seg.tmp`, or `<index>.seg.tmp` from older builds.
        (d.split_once('.').map_or(d, |(index, _)| index), true)
    } else if let Some(d) = name.strip_suffix(SPARE_SUFFIX) {
        spare = true;
        (d, false)
    } else {
        (name.strip_suffix(SEGMENT_SUFFIX)?, false)
    };
    if digits.len() != INDEX_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let index = SegmentIndex(digits.parse().ok()?);
    if index.0 == 0 {
        return None;
    }
    Some(if temp {
        EntryKind::Temp(index)
    } else if spare {
        EntryKind::Spare(index)
    } else {
        EntryKind::Segment(index)
    })
}

/// Whether the log directory `dir` (on the real file system) holds a freed segment kept
/// for reuse: the next segment then takes no new space on the disk.
#[must_use]
pub fn has_spare(dir: &Path) -> bool {
    !spares(&crate::RealStorage, dir).is_empty()
}

/// The paths of the freed segments the log directory `dir` (on the real file system)
/// keeps for reuse, oldest index first (an unreadable directory has none).
#[must_use]
pub fn spare_files(dir: &Path) -> Vec<PathBuf> {
    spares(&crate::RealStorage, dir)
        .into_iter()
        .map(|index| spare_path(dir, index))
        .collect()
}

/// The spare files in `dir`, oldest index first (an unreadable directory has none).
pub(crate) fn spares<S: Storage>(storage: &S, dir: &Path) -> Vec<SegmentIndex> {
    let mut found: Vec<SegmentIndex> = storage
        .list(dir)
        .unwrap_or_default()
        .iter()
        .filter_map(|name| match classify(name) {
            Some(EntryKind::Spare(index)) => Some(index),
            _ => None,
        })
        .collect();
    found.sort();
    found
}

/// A prepared segment, and whether its file is a reused one (its body may hold an
/// earlier life's bytes; its header gets [`HEADER_FLAG_REUSED`](crate::format::HEADER_FLAG_REUSED)).
pub(crate) struct Prepared<G> {
    pub(crate) segment: G,
    pub(crate) reused: bool,
}

/// Turns the spare `spare` into the prepared segment `index` (see the module docs):
/// zero header sector and reuse mark stored and synced while it is still a spare, renamed
/// to a temporary name (atomically, so the file never has two names), then into place,
/// the directory synced. `None` (the spare removed when it cannot serve) if anything
/// fails before the file is in place; the caller then prepares a fresh file.
fn prepare_from_spare<S: Storage>(
    storage: &S,
    dir: &Path,
    spare: SegmentIndex,
    index: SegmentIndex,
    size: u64,
) -> Option<Result<S::Segment, IoFailure>> {
    let from = spare_path(dir, spare);
    let marked = storage.open_segment(&from, true).and_then(|file| {
        if file.region().len() as u64 != size {
            return Err(std::io::Error::other("spare of another segment size"));
        }
        let mut head = [0u8; SECTOR_LEN + crate::format::REUSE_MARK_LEN];
        if let Some(mark) = head.get_mut(SECTOR_LEN..) {
            mark.copy_from_slice(&encode_reuse_mark(index));
        }
        file.write(0, &[&head])?;
        file.sync(0, head.len())
    });
    if marked.is_err() {
        let _ = storage.remove(&from);
        return None;
    }
    let temp = temp_path(dir, index);
    if storage.replace(&from, &temp).is_err() {
        return None;
    }
    let path = segment_path(dir, index);
    if let Err(e) = storage.rename(&temp, &path) {
        let _ = storage.remove(&temp);
        return Some(Err(IoFailure::new(IoOp::Rename, &temp, e)));
    }
    Some(
        storage
            .sync_dir(dir)
            .map_err(|e| IoFailure::new(IoOp::DirSync, dir, e))
            .and_then(|()| {
                storage
                    .open_segment(&path, true)
                    .map_err(|e| IoFailure::new(IoOp::Open, path, e))
            }),
    )
}

/// Prepares segment `index` from a spare if there is one, else as a fresh file
/// ([`prepare_fresh`]); syncs the directory before returning, so the segment exists
/// durably before anything is stored into it.
pub(crate) fn prepare<S: Storage>(
    storage: &S,
    dir: &Path,
    index: SegmentIndex,
    size: u64,
) -> Result<Prepared<S::Segment>, IoFailure> {
    #[cfg(feature = "metrics")]
    let _timer = PrepareTimer(std::time::Instant::now());
    for spare in spares(storage, dir) {
        if let Some(result) = prepare_from_spare(storage, dir, spare, index, size) {
            return result.map(|segment| Prepared {
                segment,
                reused: true,
            });
        }
    }
    prepare_fresh(storage, dir, index, size).map(|segment| Prepared {
        segment,
        reused: false,
    })
}

/// Creates, zero-fills, syncs, renames into place and maps segment `index`; syncs the
/// directory before returning.
pub(crate) fn prepare_fresh<S: Storage>(
    storage: &S,
    dir: &Path,
    index: SegmentIndex,
    size: u64,
) -> Result<S::Segment, IoFailure> {
    let temp = temp_path(dir, index);
    let path = segment_path(dir, index);
    if let Err(e) = storage.create_zeroed(&temp, size) {
        // Leave no half-made file behind; if even that fails, recovery removes it later.
        let _ = storage.remove(&temp);
        return Err(IoFailure::new(IoOp::Allocate, temp, e));
    }
    if let Err(e) = storage.rename(&temp, &path) {
        let _ = storage.remove(&temp);
        return Err(IoFailure::new(IoOp::Rename, &temp, e));
    }
    storage
        .sync_dir(dir)
        .map_err(|e| IoFailure::new(IoOp::DirSync, dir, e))?;
    storage
        .open_segment(&path, true)
        .map_err(|e| IoFailure::new(IoOp::Open, path, e))
}

/// Records the time a segment preparation took (`metrics` feature), however it ends.
#[cfg(feature = "metrics")]
struct PrepareTimer(std::time::Instant);

#[cfg(feature = "metrics")]
impl Drop for PrepareTimer {
    fn drop(&mut self) {
        metrics::histogram!("tidelog_segment_prepare_seconds")
            .record(self.0.elapsed().as_secs_f64());
    }
}

/// Stores `header` at the start of `segment` (flagged reused if `reused`) and syncs it.
pub(crate) fn write_header<G: SegmentOps>(
    segment: &G,
    header: &SegmentHeader,
    reused: bool,
    path: &Path,
) -> Result<(), IoFailure> {
    let bytes = if reused {
        header.encode_reused()
    } else {
        header.encode()
    };
    segment
        .write(0, &[&bytes])
        .map_err(|e| IoFailure::new(IoOp::Write, path, e))?;
    segment
        .sync(0, SEGMENT_HEADER_LEN)
        .map_err(|e| IoFailure::new(IoOp::Sync, path, e))
}

/// The segment that will follow the current one.
pub(crate) enum NextSegment<S: Storage> {
    /// Nothing prepared yet.
    Empty,
    /// Prepared and mapped.
    Ready(SegmentIndex, Prepared<S::Segment>),
    /// Being prepared on a background thread.
    Preparing(
        SegmentIndex,
        JoinHandle<Result<Prepared<S::Segment>, IoFailure>>,
    ),
}

impl<S: Storage> NextSegment<S> {
    /// Starts preparing segment `index`: on a background thread if `background`, else now.
    pub(crate) fn start(
        storage: &S,
        dir: &Path,
        index: SegmentIndex,
        size: u64,
        background: bool,
    ) -> NextSegment<S> {
        if background {
            let (storage, dir) = (storage.clone(), dir.to_path_buf());
            let spawned = std::thread::Builder::new()
                .name("tidelog-wal-prepare".into())
                .spawn(move || prepare(&storage, &dir, index, size));
            if let Ok(handle) = spawned {
                return NextSegment::Preparing(index, handle);
            }
        }
        match prepare(storage, dir, index, size) {
            Ok(seg) => NextSegment::Ready(index, seg),
            // Preparing again when the segment is needed reports the error then.
            Err(_) => NextSegment::Empty,
        }
    }

    /// The prepared segment `index`, waiting for the preparer if it is still running, or
    /// preparing it now if nothing usable was prepared.
    pub(crate) fn take(
        &mut self,
        storage: &S,
        dir: &Path,
        index: SegmentIndex,
        size: u64,
    ) -> Result<Prepared<S::Segment>, IoFailure> {
        let prepared = match std::mem::replace(self, NextSegment::Empty) {
            NextSegment::Ready(i, seg) if i == index => Some(Ok(seg)),
            NextSegment::Preparing(i, handle) if i == index => {
                Some(handle.join().unwrap_or_else(|_| {
                    Err(IoFailure::new(
                        IoOp::Create,
                        segment_path(dir, index),
                        std::io::Error::other("segment preparer thread panicked"),
                    ))
                }))
            }
            NextSegment::Preparing(_, handle) => {
                let _ = handle.join();
                None
            }
            _ => None,
        };
        match prepared {
            Some(Ok(seg)) => Ok(seg),
            // A failed background preparation may have left the file in place; start over.
            Some(Err(_)) | None => {
                let path = segment_path(dir, index);
                if matches!(storage.list(dir), Ok(names) if names.iter().any(|n| Path::new(n) == Path::new(&segment_file_name(index))))
                {
                    storage
                        .remove(&path)
                        .map_err(|e| IoFailure::new(IoOp::Remove, &path, e))?;
                }
                prepare(storage, dir, index, size)
            }
        }
    }

    /// Waits for a running preparer (used when the log is dropped).
    pub(crate) fn finish(&mut self) {
        if let NextSegment::Preparing(_, handle) = std::mem::replace(self, NextSegment::Empty) {
            let _ = handle.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_names_sort_like_their_indexes_and_parse_back() {
        let a = segment_file_name(SegmentIndex(9));
        let b = segment_file_name(SegmentIndex(10));
        assert!(a < b);
        assert_eq!(a, "00000000000000000009.seg");
        assert_eq!(
            classify(OsStr::new(&a)),
            Some(EntryKind::Segment(SegmentIndex(9)))
        );
        assert_eq!(
            classify(OsStr::new("00000000000000000009.seg.tmp")),
            Some(EntryKind::Temp(SegmentIndex(9)))
        );
        let temp = temp_path(Path::new("/log"), SegmentIndex(9));
        assert_eq!(
            classify(temp.file_name().unwrap()),
            Some(EntryKind::Temp(SegmentIndex(9)))
        );
    }

    #[test]
    fn two_preparations_of_one_segment_never_share_a_temporary_file() {
        let dir = Path::new("/log");
        assert_ne!(
            temp_path(dir, SegmentIndex(3)),
            temp_path(dir, SegmentIndex(3))
        );
    }

    #[test]
    fn other_names_are_foreign() {
        for name in [
            "notes.txt",
            "9.seg",
            "0000000000000000000a.seg",
            "00000000000000000000.seg",
            "00000000000000000001.seg.bak",
            "0000000000000000000x.7-1.seg.tmp",
        ] {
            assert_eq!(classify(OsStr::new(name)), None, "{name}");
        }
    }
}
