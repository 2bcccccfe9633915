//! Removing the head of the log, and copying a durable prefix of it elsewhere.
//!
//! A [`Truncator`] deletes the segments whose every sequence lies below a floor the caller
//! computed (the engine: the lowest point a checkpoint, applier, subscriber or hold still
//! needs). It works beside the writer without stopping it:
//! - Only segments *before* the first segment to keep are removed, and that segment is
//!   never the last one, so the writer's current segment is never touched.
//! - Segments go oldest first, with a directory sync after each, so after a crash at any
//!   point the log on disk is still contiguous: it starts later, it never has a hole
//!   (a hole is corruption to recovery). Leftover segment files below the first one kept
//!   (refused, stale-fenced ones) are removed the same way, for the same reason.
//! - A reader holding a frame of a removed segment keeps its mapping alive; the file's
//!   blocks are freed when the last mapping goes.
//! - Up to [`MAX_SPARE_SEGMENTS`] freed segments are kept for reuse instead of deleted:
//!   renamed (one atomic rename(2), so the file never has two names) to
//!   `<index>.seg.spare`, which is no part of the log, for the next segment preparation
//!   (see [`crate::segment`]). Only a segment no reader of this process holds a frame
//!   of is kept (its bytes are rewritten once it is reused); the others are deleted.
//!
//! Recovery accepts a log whose first segment starts above sequence 1; the caller must
//! know (from a checkpoint) that nothing before it is needed.
//!
//! [`WalReader::copy_prefix`] writes the segments holding `1..=upto` (or the retained part
//! of it) to another directory, so that the copy opens as a log ending at `upto`.

use crate::extent::SharedExtent;
use crate::files::{self, FileError};
use crate::format::{align_up, FRAME_HEADER_LEN};
use crate::ids::SegmentIndex;
use crate::io::{IoOp, Storage};
use crate::reader::{Shared, WalReader};
use crate::segment::{
    classify, segment_file_name, segment_path, spare_path, EntryKind, MAX_SPARE_SEGMENTS,
};
use parking_lot::Mutex;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tidelog_watermarks::GlobalSeq;

/// One segment of the log as the truncator sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveSegment {
    /// Its index.
    pub index: SegmentIndex,
    /// Its first global sequence.
    pub first_seq: GlobalSeq,
    /// Its file.
    pub path: PathBuf,
}

/// What [`Truncator::remove_segments_below`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TruncateReport {
    /// Segment files taken out of the log (deleted, or kept for reuse), oldest first.
    pub removed: Vec<PathBuf>,
    /// Of those, the ones kept for reuse: their new names (`<index>.seg.spare`).
    pub kept_for_reuse: Vec<PathBuf>,
    /// First global sequence the log holds now.
    pub first_seq: GlobalSeq,
}

/// Removes the head of the log beside a running writer. Cheap to clone; removals are
/// serialized.
pub struct Truncator<S: Storage> {
    storage: S,
    dir: PathBuf,
    shared: Arc<Shared>,
    segment_size: u64,
    serial: Arc<Mutex<()>>,
    extent: Option<SharedExtent<S>>,
}

impl<S: Storage> Clone for Truncator<S> {
    fn clone(&self) -> Self {
        Truncator {
            storage: self.storage.clone(),
            dir: self.dir.clone(),
            shared: Arc::clone(&self.shared),
            segment_size: self.segment_size,
            serial: Arc::clone(&self.serial),
            extent: self.extent.clone(),
        }
    }
}

impl<S: Storage> std::fmt::Debug for Truncator<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Truncator")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl<S: Storage> Truncator<S> {
    pub(crate) fn new(storage: S, dir: PathBuf, shared: Arc<Shared>, segment_size: u64) -> Self {
        Truncator {
            storage,
            dir,
            shared,
            segment_size,
            serial: Arc::new(Mutex::new(())),
            extent: None,
        }
    }

    /// Keeps the log's extent record up to date: its first index is raised before any
    /// segment is removed.
    pub(crate) fn with_extent(mut self, extent: Option<SharedExtent<S>>) -> Self {
        self.extent = extent;
        self
    }

    /// Records in the extent record that everything up to `seq` is durable (the engine
    /// calls it when a checkpoint covers `seq`). One sync when the record moves; nothing
    /// for a log without an extent record.
    ///
    /// # Errors
    /// The failed write or sync of the extent file.
    pub fn note_durable(&self, seq: GlobalSeq) -> Result<(), FileError> {
        crate::extent::note(self.extent.as_ref(), |e| {
            e.durable_seq = e.durable_seq.max(seq);
        })
        .map_err(FileError::from)
    }

    /// The segments of the log, oldest first (the last is the writer's).
    #[must_use]
    pub fn segments(&self) -> Vec<LiveSegment> {
        self.shared
            .segments
            .read()
            .iter()
            .map(|s| LiveSegment {
                index: s.index,
                first_seq: s.first_seq,
                path: segment_path(&self.dir, s.index),
            })
            .collect()
    }

    /// Size of every segment file in bytes.
    #[must_use]
    pub fn segment_size(&self) -> u64 {
        self.segment_size
    }

    /// Deletes every segment whose sequences all lie below `floor` (the segment after it
    /// starts at or below `floor`), oldest first, syncing the directory after each. The
    /// writer's current segment is never removed.
    ///
    /// # Errors
    /// The failed removal or directory sync; the segments removed before it stay removed
    /// and the log is contiguous either way.
    pub fn remove_segments_below(&self, floor: GlobalSeq) -> Result<TruncateReport, FileError> {
        let _serial = self.serial.lock();
        let keep_from = {
            let segments = self.shared.segments.read();
            // The first segment that holds `floor` or anything after it: the one whose
            // successor starts above `floor`, or the last one.
            let pos = segments
                .windows(2)
                .position(|pair| matches!(pair, [_, next] if next.first_seq > floor))
                .unwrap_or(segments.len().saturating_sub(1));
            segments.get(pos).map(|s| s.index)
        };
        let mut report = TruncateReport::default();
        if let Some(keep_from) = keep_from {
            let names = files::list(&self.storage, &self.dir)?;
            let mut spares = names
                .iter()
                .filter(|name| matches!(classify(name), Some(EntryKind::Spare(_))))
                .count();
            let mut doomed: Vec<SegmentIndex> = names
                .iter()
                .filter_map(|name| match classify(name) {
                    Some(EntryKind::Segment(index)) if index < keep_from => Some(index),
                    _ => None,
                })
                .collect();
            doomed.sort();
            if !doomed.is_empty() {
                // The extent record names the new first segment before any goes: a crash
                // in between leaves segments below it, never a record below the log.
                crate::extent::note(self.extent.as_ref(), |e| {
                    e.first_index = e.first_index.max(keep_from.get());
                })
                .map_err(FileError::from)?;
            }
            for index in doomed {
                let path = segment_path(&self.dir, index);
                let spare = spares < MAX_SPARE_SEGMENTS && self.take_unread(index);
                if spare {
                    let kept = spare_path(&self.dir, index);
                    self.storage
                        .replace(&path, &kept)
                        .map_err(|source| FileError {
                            op: IoOp::Rename,
                            path: path.clone(),
                            source,
                        })?;
                    spares += 1;
                    report.kept_for_reuse.push(kept);
                } else {
                    files::remove(&self.storage, &path)?;
                    self.shared.segments.write().retain(|s| s.index != index);
                }
                files::sync_dir(&self.storage, &self.dir)?;
                report.removed.push(path);
            }
        }
        report.first_seq = self.first_seq();
        Ok(report)
    }

    /// Takes segment `index` out of the readers' list if nothing but the list refers to
    /// it (no frame, snapshot or copy of it is held): then its file may be reused. A
    /// segment not in the list (a leftover below the log) is never reused.
    fn take_unread(&self, index: SegmentIndex) -> bool {
        let mut segments = self.shared.segments.write();
        let Some(pos) = segments.iter().position(|s| s.index == index) else {
            return false;
        };
        // Readers reach a segment's bytes only through its entry (a frame, an iterator, a
        // copy in progress each hold one), so the list's own reference alone means none.
        let unread = segments
            .get(pos)
            .is_some_and(|entry| Arc::strong_count(entry) == 1);
        if unread {
            segments.remove(pos);
        }
        unread
    }

    /// The first global sequence the log holds (the next one to be written if it holds
    /// none).
    #[must_use]
    pub fn first_seq(&self) -> GlobalSeq {
        self.shared.first_seq()
    }
}

/// What [`WalReader::copy_prefix`] wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopyReport {
    /// Segment files written, in order.
    pub segments: Vec<SegmentIndex>,
    /// Bytes of segment content copied (zeros after the last frame not counted).
    pub bytes: u64,
    /// First sequence of the copy (0 if it holds none).
    pub first_seq: GlobalSeq,
    /// Last sequence of the copy (0 if it holds none).
    pub last_seq: GlobalSeq,
}

impl<S: Storage> WalReader<S> {
    /// Copies the log up to `upto` (which must be durable, and end an atomic unit) into
    /// `dest` on `storage`, as segment files of `segment_size` bytes, each synced, then
    /// the directory: sealed segments whole, the segment holding `upto` up to the end of
    /// that frame, zeros after it. The copy opens with [`Wal::open`](crate::Wal::open) as
    /// a log ending at `upto`. Appends may go on meanwhile: bytes up to a durable frame
    /// are never written again, and removed segments stay readable through their mapping.
    ///
    /// # Errors
    /// The first failed file operation (`dest` may hold a partial copy).
    pub fn copy_prefix<T: Storage>(
        &self,
        storage: &T,
        dest: &Path,
        upto: GlobalSeq,
        segment_size: u64,
    ) -> Result<CopyReport, FileError> {
        self.copy_prefix_reporting(storage, dest, upto, segment_size, &mut |_, _| {})
    }

    /// [`WalReader::copy_prefix`], telling `progress` after each segment the bytes copied
    /// so far and the most it will copy (the segments that start at or below `upto`,
    /// whole); the last report is `(copied, copied)`, as the newest segment is copied
    /// only up to `upto`.
    ///
    /// # Errors
    /// As [`WalReader::copy_prefix`].
    pub fn copy_prefix_reporting<T: Storage>(
        &self,
        storage: &T,
        dest: &Path,
        upto: GlobalSeq,
        segment_size: u64,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<CopyReport, FileError> {
        files::create_dir_all(storage, dest)?;
        let entries = self.shared.segments.read().clone();
        let total: u64 = entries
            .iter()
            .filter(|entry| entry.first_seq <= upto)
            .map(|entry| entry.region.len() as u64)
            .sum();
        let mut report = CopyReport::default();
        progress(0, total);
        for (pos, entry) in entries.iter().enumerate() {
            if entry.first_seq > upto {
                break;
            }
            let next_first = entries.get(pos + 1).map(|e| e.first_seq);
            let whole = next_first.is_some_and(|n| n.0.saturating_sub(1) <= upto.0);
            let end = if whole {
                entry.region.len()
            } else {
                match self.get(upto) {
                    Some(frame) if frame.segment() == entry.index => {
                        let len = FRAME_HEADER_LEN + frame.key().len() + frame.payload().len();
                        frame.offset().0 as usize + align_up(len).unwrap_or(len)
                    }
                    _ => {
                        return Err(FileError {
                            op: IoOp::Open,
                            path: segment_path(dest, entry.index),
                            source: std::io::Error::other(format!(
                                "sequence {upto} is not readable in the log: copy only up to a written, retained point"
                            )),
                        })
                    }
                }
            };
            let data = entry.region.bytes(0, end).unwrap_or(&[]);
            let path = dest.join(segment_file_name(entry.index));
            files::write_synced(storage, &path, data, segment_size)?;
            report.segments.push(entry.index);
            report.bytes += data.len() as u64;
            progress(report.bytes, total.max(report.bytes));
            if report.first_seq == GlobalSeq::ZERO {
                report.first_seq = entry.first_seq;
            }
            report.last_seq = if whole {
                GlobalSeq(next_first.map_or(0, |n| n.0.saturating_sub(1)))
            } else {
                upto
            };
            if !whole {
                break;
            }
        }
        files::sync_dir(storage, dest)?;
        progress(report.bytes, report.bytes);
        Ok(report)
    }
}
