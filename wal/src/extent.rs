//! The log's extent record: what the log has held, kept outside the log directory, so
//! recovery can tell an intact log from one that is shorter than it was (segments deleted,
//! `wal/` or a segment replaced by an older copy).
//!
//! The record names the highest global sequence ever made durable, the range of segment
//! indexes the log must hold, and the ranges of global sequences whose loss was accepted
//! explicitly. It lives in one file of [`EXTENT_FILE_LEN`] bytes (the engine keeps it
//! beside `wal/`, as `<database>/EXTENT`; its byte map is in `docs/format.md`) with two
//! 512-byte slots. An update writes the record, with a generation one above the current
//! one, into the slot the current record is *not* in and syncs that sector (one
//! `fdatasync` of a file whose size never changes: no metadata to journal). A power loss
//! during an update damages at most the slot being written; the other still holds the
//! previous record. Readers take the valid slot with the higher generation.
//!
//! Updates happen when the extent changes in a way that matters, never per group commit:
//! at open (after recovery), at each rotation (after the new segment's header is synced
//! and before any frame goes into it), before truncation removes segments, at close and
//! when a checkpoint is taken. Every value only grows, so a record older than the truth
//! (an update lost to a crash) claims less than the log holds and is never the cause of a
//! refusal; an update that could raise the first index is made durable *before* segments
//! are removed.
//!
//! What the check catches: segments missing at the head, in the middle or at the end,
//! every segment missing, and a log that ends below the highest sequence the record saw
//! durable (an older copy of `wal/`, or of its newest segment). What it cannot see:
//! records acknowledged in the newest segment after the record's last update, if that
//! segment is replaced by an older copy that still reaches the recorded sequence (the
//! record is not synced per group, by design).

use crate::error::{IoFailure, OpenError};
use crate::format::mask_crc;
use crate::ids::SegmentIndex;
use crate::io::sealed::SegmentOps;
use crate::io::{IoOp, Storage};
use crate::recovery::{Scan, SegmentState};
use parking_lot::Mutex;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tidelog_watermarks::GlobalSeq;

/// The name the engine gives the extent record, in the database directory.
pub const EXTENT_FILE_NAME: &str = "EXTENT";
/// Length of the extent file: two 512-byte slots.
pub const EXTENT_FILE_LEN: usize = 2 * SLOT_LEN;
/// Accepted losses one record can name.
pub const MAX_ACCEPTED_LOSSES: usize = (SLOT_LEN - FIXED_LEN) / 16;

const SLOT_LEN: usize = 512;
const FIXED_LEN: usize = 64;
const MAGIC: &[u8; 8] = b"TDLGEXT\0";
const VERSION: u32 = 1;
const CRC_AT: usize = 60;

/// What the log has held, as last recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extent {
    /// Update counter: the valid slot with the higher one is current.
    pub generation: u64,
    /// The highest global sequence ever made durable in the log.
    pub durable_seq: GlobalSeq,
    /// The lowest segment index the log must hold (0: no segment yet). Raised before
    /// truncation removes segments below it.
    pub first_index: u64,
    /// The highest segment index the log has started (0: none yet). Raised after a new
    /// segment's header is synced and before any frame goes into it.
    pub last_index: u64,
    /// Ranges of global sequences (inclusive) that were lost and whose loss was accepted
    /// explicitly: never handed out again, never reported as a loss again.
    pub accepted_losses: Vec<(GlobalSeq, GlobalSeq)>,
    /// The last writer closed cleanly: `durable_seq` is then the exact end of what was
    /// acknowledged (cleared when a writer opens the log).
    pub closed_cleanly: bool,
}

impl Extent {
    /// Whether the sequences `from..=to` lie inside one accepted loss.
    #[must_use]
    pub fn is_accepted(&self, from: GlobalSeq, to: GlobalSeq) -> bool {
        from > to
            || self
                .accepted_losses
                .iter()
                .any(|(a, b)| *a <= from && to <= *b)
    }

    /// The highest sequence the record knows was ever handed out: the durable one or the
    /// end of an accepted loss.
    #[must_use]
    pub fn highest_seq(&self) -> GlobalSeq {
        self.accepted_losses
            .iter()
            .map(|(_, b)| *b)
            .fold(self.durable_seq, GlobalSeq::max)
    }

    /// Encodes the record into one slot.
    fn encode(&self) -> [u8; SLOT_LEN] {
        let mut slot = [0u8; SLOT_LEN];
        let losses = self.accepted_losses.len().min(MAX_ACCEPTED_LOSSES);
        let used = FIXED_LEN + 16 * losses;
        let mut put = |at: usize, bytes: &[u8]| {
            if let Some(dst) = slot.get_mut(at..at + bytes.len()) {
                dst.copy_from_slice(bytes);
            }
        };
        put(0, MAGIC);
        put(8, &VERSION.to_le_bytes());
        put(12, &(used as u32).to_le_bytes());
        put(16, &self.generation.to_le_bytes());
        put(24, &self.durable_seq.0.to_le_bytes());
        put(32, &self.first_index.to_le_bytes());
        put(40, &self.last_index.to_le_bytes());
        put(48, &(losses as u32).to_le_bytes());
        put(52, &u32::from(self.closed_cleanly).to_le_bytes());
        for (i, (a, b)) in self.accepted_losses.iter().take(losses).enumerate() {
            put(FIXED_LEN + 16 * i, &a.0.to_le_bytes());
            put(FIXED_LEN + 16 * i + 8, &b.0.to_le_bytes());
        }
        let crc = slot_crc(&slot, used);
        slot[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_le_bytes());
        slot
    }

    /// Decodes one slot.
    fn decode(slot: &[u8]) -> Result<Extent, &'static str> {
        let u32_at = |at: usize| {
            slot.get(at..at + 4)
                .and_then(|b| b.try_into().ok())
                .map(u32::from_le_bytes)
                .ok_or("slot too short")
        };
        let u64_at = |at: usize| {
            slot.get(at..at + 8)
                .and_then(|b| b.try_into().ok())
                .map(u64::from_le_bytes)
                .ok_or("slot too short")
        };
        if slot.get(..8) != Some(&MAGIC[..]) {
            return Err("bad magic");
        }
        if u32_at(8)? != VERSION {
            return Err("unknown version");
        }
        let used = u32_at(12)? as usize;
        let losses = u32_at(48)? as usize;
        if losses > MAX_ACCEPTED_LOSSES || used != FIXED_LEN + 16 * losses {
            return Err("bad length");
        }
        let flags = u32_at(52)?;
        if flags > 1 || u32_at(56)? != 0 {
            return Err("unknown flags");
        }
        if u32_at(CRC_AT)? != slot_crc(slot, used) {
            return Err("checksum mismatch");
        }
        let accepted_losses = (0..losses)
            .map(|i| {
                Ok((
                    GlobalSeq(u64_at(FIXED_LEN + 16 * i)?),
                    GlobalSeq(u64_at(FIXED_LEN + 16 * i + 8)?),
                ))
            })
            .collect::<Result<_, &'static str>>()?;
        Ok(Extent {
            generation: u64_at(16)?,
            durable_seq: GlobalSeq(u64_at(24)?),
            first_index: u64_at(32)?,
            last_index: u64_at(40)?,
            accepted_losses,
            closed_cleanly: flags == 1,
        })
    }
}

/// Masked CRC-32 of bytes `[0, 60)` and `[64, used)` of a slot.
fn slot_crc(slot: &[u8], used: usize) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(slot.get(..CRC_AT).unwrap_or(&[]));
    hasher.update(slot.get(FIXED_LEN..used).unwrap_or(&[]));
    mask_crc(hasher.finalize())
}

/// Decodes an extent file's bytes: the valid slot with the higher generation.
///
/// # Errors
/// A description of why neither slot holds a valid record.
pub fn decode_file(bytes: &[u8]) -> Result<Extent, String> {
    if bytes.len() != EXTENT_FILE_LEN {
        return Err(format!(
            "the file has {} bytes, an extent record has {EXTENT_FILE_LEN}",
            bytes.len()
        ));
    }
    let a = Extent::decode(bytes.get(..SLOT_LEN).unwrap_or(&[]));
    let b = Extent::decode(bytes.get(SLOT_LEN..).unwrap_or(&[]));
    match (a, b) {
        (Ok(a), Ok(b)) => Ok(if b.generation > a.generation { b } else { a }),
        (Ok(x), Err(_)) | (Err(_), Ok(x)) => Ok(x),
        (Err(a), Err(b)) => Err(format!("neither slot verifies (first: {a}; second: {b})")),
    }
}

/// Reads the extent record at `path`: `Ok(None)` if there is no file (a log created
/// before extent records existed, or a new one).
///
/// # Errors
/// [`OpenError::BadExtent`] if the file exists but holds no valid record;
/// [`OpenError::Io`] if it cannot be read.
pub fn read<S: Storage>(storage: &S, path: &Path) -> Result<Option<Extent>, OpenError> {
    match storage.read_all(path) {
        Ok(bytes) => decode_file(&bytes)
            .map(Some)
            .map_err(|issue| OpenError::BadExtent {
                path: path.to_path_buf(),
                issue,
            }),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(OpenError::Io {
            op: IoOp::Open,
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// A log that is shorter than its extent record says it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loss {
    /// Segment indexes (inclusive ranges) the record says the log holds and the
    /// directory does not.
    pub missing_segments: Vec<(SegmentIndex, SegmentIndex)>,
    /// The last global sequence the log still holds (0 if none).
    pub log_ends_at: GlobalSeq,
    /// The highest global sequence the record saw durable (acknowledged).
    pub acknowledged: GlobalSeq,
    /// The missing segments lie between intact ones: the log before them is intact and
    /// the segments after them cannot be reached; `log_ends_at` is then unknown (0).
    pub hole: bool,
}

impl fmt::Display for Loss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (a, b)) in self.missing_segments.iter().enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            if a == b {
                write!(f, "{sep}segment {} is missing", a.get())?;
            } else {
                write!(f, "{sep}segments {} to {} are missing", a.get(), b.get())?;
            }
        }
        if self.hole {
            return write!(
                f,
                " between intact segments: the records before it are intact, the segments \
                 after it cannot be reached, and {} had been acknowledged",
                self.acknowledged
            );
        }
        if !self.missing_segments.is_empty() {
            f.write_str("; ")?;
        }
        write!(
            f,
            "the log ends at global sequence {} but {} had been acknowledged",
            self.log_ends_at, self.acknowledged
        )?;
        if self.acknowledged > self.log_ends_at {
            write!(
                f,
                " (sequences {} to {} at least are gone)",
                self.log_ends_at.0 + 1,
                self.acknowledged
            )?;
        }
        Ok(())
    }
}

/// What the log directory holds, for [`compare`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observed {
    /// The lowest index of a segment with a valid header, if any.
    pub first_index: Option<SegmentIndex>,
    /// The highest index of a segment with a valid header, if any.
    pub last_index: Option<SegmentIndex>,
    /// The last global sequence the log holds (0 if none).
    pub log_ends_at: GlobalSeq,
}

/// Checks what the log holds against its extent record. `head` is a record read after
/// the directory was listed and `tail` one read before (the same record when nothing
/// writes beside the check): truncation raises the first index before removing segments,
/// a rotation raises the last index after the new segment exists, so neither a
/// truncation nor a rotation running beside a read-only check looks like a loss.
#[must_use]
pub fn compare(tail: &Extent, head: &Extent, observed: &Observed) -> Option<Loss> {
    let mut missing = Vec::new();
    match (observed.first_index, observed.last_index) {
        (Some(first), Some(last)) => {
            if head.first_index > 0 && first.get() > head.first_index {
                missing.push((
                    SegmentIndex(head.first_index),
                    SegmentIndex(first.get() - 1),
                ));
            }
            if last.get() < tail.last_index {
                missing.push((SegmentIndex(last.get() + 1), SegmentIndex(tail.last_index)));
            }
        }
        _ => {
            if tail.last_index > 0 {
                let first = head.first_index.clamp(1, tail.last_index);
                missing.push((SegmentIndex(first), SegmentIndex(tail.last_index)));
            }
        }
    }
    let short = observed.log_ends_at < tail.durable_seq
        && !tail.is_accepted(GlobalSeq(observed.log_ends_at.0 + 1), tail.durable_seq);
    if missing.is_empty() && !short {
        return None;
    }
    Some(Loss {
        missing_segments: missing,
        log_ends_at: observed.log_ends_at,
        acknowledged: tail.durable_seq,
        hole: false,
    })
}

/// The writer's handle on the extent file: the current record and the file, mapped for
/// in-place slot updates.
pub(crate) struct ExtentWriter<S: Storage> {
    path: PathBuf,
    file: S::Segment,
    current: Extent,
}

impl<S: Storage> ExtentWriter<S> {
    /// Opens the extent file at `path`, creating it (atomically: written under a temporary
    /// name, synced, renamed into place, the directory synced) holding `initial` if there
    /// is none.
    pub(crate) fn open(storage: &S, path: &Path, initial: Extent) -> Result<Self, OpenError> {
        let io = |op: IoOp, p: &Path| {
            let p = p.to_path_buf();
            move |source| OpenError::Io {
                op,
                path: p,
                source,
            }
        };
        let current = match read(storage, path)? {
            Some(extent) => extent,
            None => {
                let mut tmp = path.as_os_str().to_owned();
                tmp.push(".tmp");
                let tmp = PathBuf::from(tmp);
                match storage.remove(&tmp) {
                    Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
                        return Err(io(IoOp::Remove, &tmp)(err))
                    }
                    _ => {}
                }
                // Generation g lives in slot g % 2: the first record, 0, in slot 0.
                let mut extent = initial;
                extent.generation = 0;
                storage
                    .write_new(&tmp, &extent.encode(), EXTENT_FILE_LEN as u64)
                    .map_err(io(IoOp::Create, &tmp))?;
                storage.sync_file(&tmp).map_err(io(IoOp::Sync, &tmp))?;
                storage
                    .replace(&tmp, path)
                    .map_err(io(IoOp::Rename, path))?;
                let parent = path.parent().unwrap_or(Path::new("."));
                storage
                    .sync_dir(parent)
                    .map_err(io(IoOp::DirSync, parent))?;
                extent
            }
        };
        let file = storage
            .open_segment(path, true)
            .map_err(io(IoOp::Open, path))?;
        Ok(ExtentWriter {
            path: path.to_path_buf(),
            file,
            current,
        })
    }

    /// The current record.
    pub(crate) fn current(&self) -> &Extent {
        &self.current
    }

    /// Where the file is.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Applies `change` and, if the record changed, writes it into the other slot and
    /// syncs that slot (one sync). Nothing is written when nothing changed.
    pub(crate) fn update(&mut self, change: impl FnOnce(&mut Extent)) -> std::io::Result<()> {
        let mut next = self.current.clone();
        change(&mut next);
        next.generation = self.current.generation;
        if next == self.current {
            return Ok(());
        }
        next.generation = self.current.generation + 1;
        // The other slot than the current record's: a torn write leaves that one whole.
        let at = SLOT_LEN * usize::from(next.generation % 2 == 1);
        debug_assert_ne!(next.generation % 2, self.current.generation % 2);
        self.file.write(at, &[&next.encode()])?;
        self.file.sync(at, SLOT_LEN)?;
        self.current = next;
        Ok(())
    }
}

/// Checks a read-only snapshot of the log (see [`crate::scan::LogSnapshot`]) against
/// the extent record: `before` is the record read before the snapshot was taken, the
/// file is read again now (after), `log_ends_at` is the last sequence the scan read.
/// `Ok(None)` when nothing is missing or there is no record.
///
/// # Errors
/// [`OpenError::BadExtent`] for a damaged record, [`OpenError::Io`] if it cannot be read.
pub fn check_snapshot<S: Storage>(
    storage: &S,
    extent: &Path,
    before: Option<&Extent>,
    segments: &[crate::scan::SegmentInfo],
    log_ends_at: GlobalSeq,
) -> Result<Option<Loss>, OpenError> {
    let (Some(tail), Some(head)) = (before, read(storage, extent)?) else {
        return Ok(None);
    };
    let mut with_header = segments
        .iter()
        .filter(|s| s.header.is_some())
        .map(|s| s.index);
    let first_index = with_header.next();
    let last_index = with_header.next_back().or(first_index);
    Ok(compare(
        tail,
        &head,
        &Observed {
            first_index,
            last_index,
            log_ends_at,
        },
    ))
}

/// What a recovery that accepts a loss records before it changes anything: the record
/// with the lost sequences added to its accepted losses and its segment range set to
/// what the directory holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Acceptance {
    /// The record to write.
    pub(crate) extent: Extent,
    /// The sequences newly accepted as lost, if the tail of the log was lost.
    pub(crate) tail: Option<(GlobalSeq, GlobalSeq)>,
}

/// Plans accepting what the scan found: `tail_lost` when the end of the log is gone
/// (segments vanished, an older copy, or a tolerant cut); skipped regions the log goes on
/// after are accepted as they are. `frames_per_segment` bounds what a segment could have
/// held beyond the record's durable sequence when the last writer did not close cleanly.
pub(crate) fn plan_acceptance<G>(
    recorded: &Extent,
    scan: &Scan<G>,
    tail_lost: bool,
    frames_per_segment: u64,
) -> Acceptance {
    let mut extent = recorded.clone();
    let end = scan.last_seq;
    for region in &scan.report.skipped {
        if let Some(resumed) = region.resumed_at {
            if resumed > region.first_lost {
                add_range(&mut extent, region.first_lost, GlobalSeq(resumed.0 - 1));
            }
        }
    }
    let mut tail = None;
    if tail_lost {
        let bound = if recorded.closed_cleanly {
            0
        } else {
            frames_per_segment
        };
        let highest = recorded.highest_seq().max(end);
        let last_lost = GlobalSeq(highest.0.saturating_add(bound));
        if last_lost > end {
            add_range(&mut extent, GlobalSeq(end.0 + 1), last_lost);
            tail = Some((GlobalSeq(end.0 + 1), last_lost));
        }
    }
    let present = scan.segments.iter().filter_map(|seg| match seg.state {
        SegmentState::Accepted(_) | SegmentState::Refused => Some(seg.index.get()),
        SegmentState::Unused | SegmentState::Dropped => None,
    });
    let (mut first, mut last) = (None, None);
    for index in present {
        first = Some(first.map_or(index, |f: u64| f.min(index)));
        last = Some(last.map_or(index, |l: u64| l.max(index)));
    }
    extent.first_index = first.unwrap_or(0);
    extent.last_index = last.unwrap_or(0);
    extent.closed_cleanly = false;
    Acceptance { extent, tail }
}

/// Adds `from..=to` to the accepted losses, merging overlapping and adjacent ranges; past
/// [`MAX_ACCEPTED_LOSSES`] the two lowest ranges are merged (the sequences between them
/// are then accepted too: a damaged region there would be passed over).
fn add_range(extent: &mut Extent, from: GlobalSeq, to: GlobalSeq) {
    let ranges = &mut extent.accepted_losses;
    ranges.push((from, to));
    ranges.sort();
    let mut merged: Vec<(GlobalSeq, GlobalSeq)> = Vec::with_capacity(ranges.len());
    for (a, b) in ranges.drain(..) {
        match merged.last_mut() {
            Some(last) if a.0 <= last.1 .0.saturating_add(1) => last.1 = last.1.max(b),
            _ => merged.push((a, b)),
        }
    }
    while merged.len() > MAX_ACCEPTED_LOSSES {
        let second = merged.remove(1);
        if let Some(first) = merged.first_mut() {
            first.1 = first.1.max(second.1);
        }
    }
    *ranges = merged;
}

/// The extent writer shared by the log's writer and its truncator.
pub(crate) type SharedExtent<S> = Arc<Mutex<ExtentWriter<S>>>;

/// Applies `change` to the shared record, if the log keeps one.
pub(crate) fn note<S: Storage>(
    extent: Option<&SharedExtent<S>>,
    change: impl FnOnce(&mut Extent),
) -> Result<(), IoFailure> {
    let Some(extent) = extent else {
        return Ok(());
    };
    let mut extent = extent.lock();
    let path = extent.path().to_path_buf();
    extent
        .update(change)
        .map_err(|e| IoFailure::new(IoOp::Sync, path, e))
}

/// What the recovery scan saw, as [`Observed`].
pub(crate) fn observe<G>(scan: &Scan<G>) -> Observed {
    let with_header = scan.segments.iter().filter_map(|seg| match seg.state {
        SegmentState::Accepted(_) | SegmentState::Refused | SegmentState::Dropped => {
            Some(seg.index)
        }
        SegmentState::Unused => None,
    });
    let (mut first, mut last) = (None, None);
    for index in with_header {
        first = Some(first.map_or(index, |f: SegmentIndex| f.min(index)));
        last = Some(last.map_or(index, |l: SegmentIndex| l.max(index)));
    }
    Observed {
        first_index: first,
        last_index: last,
        log_ends_at: scan.last_seq,
    }
}

/// A gap in segment indexes found by the scan, seen against the extent record: the
/// whole missing range, and what had been acknowledged.
pub(crate) fn gap_loss(recorded: &Extent, missing: SegmentIndex, after_gap: &Path) -> Loss {
    let next = after_gap
        .file_name()
        .and_then(|name| match crate::segment::classify(name) {
            Some(crate::segment::EntryKind::Segment(index)) => Some(index),
            _ => None,
        })
        .unwrap_or(missing);
    Loss {
        missing_segments: vec![(
            missing,
            SegmentIndex(next.get().saturating_sub(1).max(missing.get())),
        )],
        log_ends_at: GlobalSeq(0),
        acknowledged: recorded.durable_seq,
        hole: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_round_trips_through_its_slot_and_a_flipped_bit_never_verifies() {
        let extent = Extent {
            generation: 7,
            durable_seq: GlobalSeq(1234),
            first_index: 3,
            last_index: 9,
            accepted_losses: vec![(GlobalSeq(10), GlobalSeq(20))],
            closed_cleanly: true,
        };
        let slot = extent.encode();
        assert_eq!(Extent::decode(&slot), Ok(extent));
        for byte in 0..FIXED_LEN + 16 {
            let mut bad = slot;
            bad[byte] ^= 1;
            assert!(
                Extent::decode(&bad).is_err(),
                "flip in byte {byte} verified"
            );
        }
        assert!(Extent::decode(&[0u8; SLOT_LEN]).is_err());
        assert!(Extent::decode(&[0xFFu8; SLOT_LEN]).is_err());
    }

    #[test]
    fn the_valid_slot_with_the_higher_generation_wins() {
        let old = Extent {
            generation: 4,
            durable_seq: GlobalSeq(5),
            ..Extent::default()
        };
        let new = Extent {
            generation: 5,
            durable_seq: GlobalSeq(9),
            ..Extent::default()
        };
        let mut file = vec![0u8; EXTENT_FILE_LEN];
        file[..SLOT_LEN].copy_from_slice(&old.encode());
        file[SLOT_LEN..].copy_from_slice(&new.encode());
        assert_eq!(decode_file(&file), Ok(new));
        file[SLOT_LEN + 30] ^= 0x40;
        assert_eq!(decode_file(&file), Ok(old));
        file[30] ^= 0x40;
        assert!(decode_file(&file).is_err());
    }

    #[test]
    fn compare_names_missing_heads_tails_and_a_short_log() {
        let extent = Extent {
            generation: 1,
            durable_seq: GlobalSeq(100),
            first_index: 2,
            last_index: 5,
            accepted_losses: Vec::new(),
            closed_cleanly: false,
        };
        let whole = Observed {
            first_index: Some(SegmentIndex(2)),
            last_index: Some(SegmentIndex(5)),
            log_ends_at: GlobalSeq(100),
        };
        assert_eq!(compare(&extent, &extent, &whole), None);
        let tail = Observed {
            last_index: Some(SegmentIndex(3)),
            log_ends_at: GlobalSeq(60),
            ..whole
        };
        let loss = compare(&extent, &extent, &tail).unwrap();
        assert_eq!(
            loss.missing_segments,
            vec![(SegmentIndex(4), SegmentIndex(5))]
        );
        assert_eq!(
            (loss.log_ends_at, loss.acknowledged),
            (GlobalSeq(60), GlobalSeq(100))
        );
        let head = Observed {
            first_index: Some(SegmentIndex(3)),
            ..whole
        };
        let loss = compare(&extent, &extent, &head).unwrap();
        assert_eq!(
            loss.missing_segments,
            vec![(SegmentIndex(2), SegmentIndex(2))]
        );
        let none = Observed {
            first_index: None,
            last_index: None,
            log_ends_at: GlobalSeq(0),
        };
        let loss = compare(&extent, &extent, &none).unwrap();
        assert_eq!(
            loss.missing_segments,
            vec![(SegmentIndex(2), SegmentIndex(5))]
        );
        let short = Observed {
            log_ends_at: GlobalSeq(99),
            ..whole
        };
        let loss = compare(&extent, &extent, &short).unwrap();
        assert!(loss.missing_segments.is_empty());
        let accepted = Extent {
            accepted_losses: vec![(GlobalSeq(90), GlobalSeq(150))],
            ..extent.clone()
        };
        assert_eq!(compare(&accepted, &accepted, &short), None);
    }
}
