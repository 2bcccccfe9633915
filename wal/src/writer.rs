//! The write side: [`Wal`] opens (recovering first), appends atomic units by storing them
//! into the current segment with `pwrite` (readers see them through their mapping), syncs, and rotates to the prepared next segment.
//!
//! Invariants:
//! - `last_durable <= last_written`; both only move forward.
//! - A unit is published to readers only after every byte of it is stored.
//! - A unit never spans two segments; every segment keeps room for its seal frame.
//! - Rotation seals the current segment and syncs it *before* it writes the next
//!   segment's header (and syncs that), so a later segment proves the earlier one durable.
//! - The first failed store or sync poisons the log: the failure is sticky, every later
//!   append and sync returns `Poisoned`, and a sync is never retried (after a failed
//!   fsync the kernel may have dropped the dirty pages; a retry proves nothing).

use crate::error::{
    AppendError, IoFailure, LogInvariant, OpenError, PoisonCause, Stop, SyncError, UnitTooLarge,
};
use crate::extent::{self, Extent, ExtentWriter, SharedExtent};
use crate::format::{
    align_up, encode_frame_header, encode_frame_into, encode_tenure_frame, frame_len_on_disk,
    sector_align_up, Frame, FrameCrcSeed, FrameHeader, SegmentHeader, FLAG_FIRST, FLAG_LAST,
    FLAG_SEAL, FORMAT_VERSION, FRAME_HEADER_LEN, FRAME_KEY_LEN_MAX, MAX_SEGMENT_SIZE,
    MIN_SEGMENT_SIZE, SEAL_FRAME_LEN, SECTOR_LEN, TENURE_FRAME_LEN,
};
use crate::ids::{FencingToken, SegmentIndex};
use crate::io::sealed::SegmentOps;
use crate::io::{IoOp, RealStorage, Storage};
use crate::reader::{SegmentEntry, Shared, WalReader};
use crate::recovery::{self, RecoveryMode, RecoveryReport, ScanMode, SegmentState};
use crate::segment::{segment_path, write_header, NextSegment, Prepared};
use parking_lot::RwLock;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tidelog_watermarks::{GlobalSeq, LaneId, LaneSeq};

/// Options of a [`Wal`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalOptions {
    /// Size of every segment file in bytes (default 64 MiB; a multiple of 512 between
    /// 4 KiB and 4 GiB), for a new log. An existing log keeps the size of its segments
    /// whatever is asked here; [`Wal::options`] shows the size in use.
    pub segment_size: u64,
    /// Largest key plus payload of one record, in bytes (default 8 MiB).
    pub max_record_bytes: u32,
    /// What recovery does with damage to durable data (default `AbsoluteConsistency`).
    pub recovery_mode: RecoveryMode,
    /// The writer's fencing token, stamped on every segment it creates.
    pub fencing: FencingToken,
    /// Prepare the next segment on a background thread (default `true`). Tests on a
    /// `SimDisk` (feature `testing`) set `false` so operations happen in a fixed order.
    pub prepare_in_background: bool,
    /// The previous writer may still be running (its lease was taken, not released, and
    /// nothing proves its process gone): before reading the log, move it out of that
    /// writer's reach (see [`takeover`](crate::takeover)). Default `false`.
    pub fence_off_predecessor: bool,
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions {
            segment_size: 64 * 1024 * 1024,
            max_record_bytes: 8 * 1024 * 1024,
            recovery_mode: RecoveryMode::default(),
            fencing: FencingToken::INITIAL,
            prepare_in_background: true,
            fence_off_predecessor: false,
        }
    }
}

impl WalOptions {
    fn validate(&self) -> Result<(), OpenError> {
        let invalid = |reason| Err(OpenError::InvalidOptions { reason });
        if !(MIN_SEGMENT_SIZE..=MAX_SEGMENT_SIZE).contains(&self.segment_size) {
            return invalid("segment_size must be between 4 KiB and 4 GiB");
        }
        if self.segment_size % SECTOR_LEN as u64 != 0 {
            return invalid("segment_size must be a multiple of 512");
        }
        if self.max_record_bytes == 0 || self.max_record_bytes > u32::MAX - 64 {
            return invalid("max_record_bytes must be between 1 and 4 GiB - 64");
        }
        Ok(())
    }

    /// Bytes of frames one segment holds: the first sector holds only the header (it is
    /// synced before frames go in, and a synced sector is never written again), the last
    /// is kept for the seal, which goes to the next sector boundary after a sync. An
    /// atomic unit never spans segments, so no unit may need more than this.
    #[must_use]
    pub fn unit_capacity(&self) -> u64 {
        self.segment_size - 2 * SECTOR_LEN as u64
    }

    /// Whether one atomic unit made of records with these `(key, payload)` lengths fits
    /// in a segment of this log once framed (headers and padding included): the bytes it
    /// needs, or [`AppendError::UnitTooLarge`]. This is the rule [`Wal::append`] applies;
    /// callers that validate before handing a unit to the writer (the engine does, for
    /// every append path) ask it here instead of guessing the framing.
    ///
    /// ```
    /// use tidelog_wal::WalOptions;
    ///
    /// let opts = WalOptions { segment_size: 64 * 1024, ..WalOptions::default() };
    /// assert!(opts.unit_fits([(0, 1_000), (3, 2_000)]).is_ok());
    /// assert!(opts.unit_fits([(0, 64 * 1024 - 1)]).is_err()); // under a segment, not once framed
    /// ```
    ///
    /// # Errors
    /// [`UnitTooLarge`] when it needs more than [`WalOptions::unit_capacity`].
    pub fn unit_fits(
        &self,
        records: impl IntoIterator<Item = (usize, usize)>,
    ) -> Result<u64, UnitTooLarge> {
        let bytes = records.into_iter().fold(0u64, |bytes, (key, payload)| {
            let len = frame_len_on_disk(key, payload).map_or(u64::MAX, |len| len as u64);
            bytes.saturating_add(len)
        });
        if bytes > self.unit_capacity() {
            return Err(UnitTooLarge {
                bytes,
                capacity: self.unit_capacity(),
            });
        }
        Ok(bytes)
    }

    /// Offset frames may not pass.
    fn frames_end(&self) -> u64 {
        self.segment_size - SECTOR_LEN as u64
    }
}

/// One record of an atomic unit passed to [`Wal::append`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewFrame<'a> {
    /// Must be the next global sequence of the log.
    pub global_seq: GlobalSeq,
    /// Lane of the record.
    pub lane: LaneId,
    /// Position of the record within its lane.
    pub lane_seq: LaneSeq,
    /// Wall clock, milliseconds since the Unix epoch (informative).
    pub wall_ms: u64,
    /// Idempotency key; may be empty; at most 65535 bytes.
    pub key: &'a [u8],
    /// The record.
    pub payload: &'a [u8],
}

/// What [`Wal::open`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovered {
    /// Everything recovery found and did.
    pub report: RecoveryReport,
    /// Last global sequence in the log (0 if empty).
    pub last_seq: GlobalSeq,
    /// Wall clock of the last record (0 if empty).
    pub last_wall_ms: u64,
}

/// The segment being appended to.
struct Active<S: Storage> {
    /// Shared with an in-flight [`SyncJob`].
    segment: Arc<S::Segment>,
    entry: Arc<SegmentEntry>,
    index: SegmentIndex,
    path: PathBuf,
    /// Where the next frame goes.
    write_at: usize,
    /// Everything below this offset is synced.
    synced_to: usize,
    /// Sequences published in this segment.
    count: u64,
    /// The segment was created under another writer's token: a tenure frame carrying
    /// ours goes before our first unit in it.
    tenure_pending: bool,
    /// The segment's file is a reused one (header flag
    /// [`HEADER_FLAG_REUSED`](crate::format::HEADER_FLAG_REUSED)): its bytes after the
    /// frames are not zeros, so every store carries its own zeros up to the next sector
    /// boundary (the padding readers skip between units).
    reused: bool,
}

/// The write-ahead log. See the crate docs for an example.
pub struct Wal<S: Storage = RealStorage> {
    storage: S,
    dir: PathBuf,
    opts: WalOptions,
    shared: Arc<Shared>,
    current: Active<S>,
    next: NextSegment<S>,
    /// Whether preparing the segment after the current one was started (it starts once
    /// the current one is half full, see [`Wal::prepare_next_when_due`]).
    next_started: bool,
    last_written: GlobalSeq,
    last_durable: GlobalSeq,
    last_wall_ms: u64,
    poisoned: Option<PoisonCause>,
    /// The sync started by [`Wal::begin_sync`] and not yet finished: its segment and the
    /// offset and sequence it covers.
    in_flight: Option<(SegmentIndex, usize, GlobalSeq)>,
    /// Frames appended by [`Wal::append_buffered`] and not yet stored: they go to the
    /// segment with one store at [`Wal::flush`].
    buffer: WriteBuffer,
    /// The extent record kept outside the log directory, if the log has one (see
    /// [`crate::extent`]).
    extent: Option<SharedExtent<S>>,
}

/// Encoded frames waiting for one store into the current segment.
#[derive(Debug, Default)]
struct WriteBuffer {
    bytes: Vec<u8>,
    /// Segment offset of `bytes[0]`.
    at: usize,
    /// Frames in `bytes`.
    frames: u64,
    /// Sequence and wall time of the last frame in `bytes`.
    last: Option<(GlobalSeq, u64)>,
}

/// A buffer past this many bytes is flushed before more frames are added.
const WRITE_BUFFER_BYTES_MAX: usize = 4 << 20;

/// A sync of everything appended before [`Wal::begin_sync`], to run on any thread while
/// the writer goes on appending; hand it back with its result to [`Wal::finish_sync`].
pub struct SyncJob<S: Storage> {
    segment: Arc<S::Segment>,
    path: PathBuf,
    from: usize,
    len: usize,
    upto: GlobalSeq,
}

impl<S: Storage> SyncJob<S> {
    /// The last sequence this sync makes durable.
    #[must_use]
    pub fn upto(&self) -> GlobalSeq {
        self.upto
    }

    /// Runs the sync (fdatasync on real storage). Does not touch the log's state.
    ///
    /// # Errors
    /// The OS error; pass it to [`Wal::finish_sync`], which poisons the log.
    pub fn run(&self) -> io::Result<()> {
        self.segment.sync(self.from, self.len)
    }
}

impl<S: Storage> std::fmt::Debug for SyncJob<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncJob")
            .field("path", &self.path)
            .field("from", &self.from)
            .field("len", &self.len)
            .field("upto", &self.upto)
            .finish()
    }
}

impl Wal<RealStorage> {
    /// Opens (creating if needed) the log in `dir` on the real file system, recovering it
    /// first. See [`Wal::open_with`].
    pub fn open(dir: &Path, opts: WalOptions) -> Result<(Wal, Recovered), OpenError> {
        Wal::open_with(RealStorage, dir, opts)
    }
}

/// The size of the log's existing segments: the length of its oldest segment file, or
/// `None` for a log with none yet.
fn existing_segment_size<S: Storage>(storage: &S, dir: &Path) -> Result<Option<u64>, OpenError> {
    let names = storage
        .list(dir)
        .map_err(|e| IoFailure::new(IoOp::List, dir, e))?;
    let oldest = names
        .iter()
        .filter_map(|name| match crate::segment::classify(name) {
            Some(crate::segment::EntryKind::Segment(index)) => Some(index),
            _ => None,
        })
        .min();
    let Some(index) = oldest else {
        return Ok(None);
    };
    let path = crate::segment::segment_path(dir, index);
    // A segment that cannot even be opened (empty, unreadable) is recovery's to report.
    // A file cut short keeps the size its header names: the one recovery restores.
    Ok(storage.open_segment(&path, false).ok().map(|segment| {
        let bytes = segment.region().all();
        SegmentHeader::decode_cut_short(bytes, bytes.len() as u64, index)
            .map_or(bytes.len() as u64, |header| header.segment_size)
    }))
}

/// The refusal of a log whose newest segment file was cut short, in the default mode:
/// only a tolerant mode (or `AcceptLoss`) cuts the log there and restores the file.
fn refuse_cut_short<G>(scan: &recovery::Scan<G>, mode: RecoveryMode) -> Result<(), OpenError> {
    match &scan.cut_short {
        Some(cut) if mode == RecoveryMode::AbsoluteConsistency => Err(OpenError::SegmentCutShort {
            path: cut.path.clone(),
            file_len: cut.file_len,
            segment_size: cut.segment_size,
            log_ends_at: scan.last_seq,
        }),
        _ => Ok(()),
    }
}

impl<S: Storage> Wal<S> {
    /// Opens (creating if needed) the log in `dir` on `storage`: recovers it (see
    /// `docs/recovery.md`), repairs a torn tail, refuses to open if a segment carries a
    /// higher fencing token than `opts.fencing`, and starts a fresh segment if the last one
    /// was sealed or written under another token.
    pub fn open_with(
        storage: S,
        dir: &Path,
        opts: WalOptions,
    ) -> Result<(Self, Recovered), OpenError> {
        Self::open_inner(storage, dir, opts, None, &mut |_| {})
    }

    /// As [`Wal::open_with`], keeping the log's extent record in the file `extent`
    /// (outside `dir`; see [`crate::extent`]): recovery checks the log against it and
    /// refuses a log shorter than it was ([`OpenError::LostRecords`], nothing changed);
    /// the record is created if missing and kept up to date at rotation, truncation,
    /// [`Wal::record_extent`] (close) and [`Truncator::note_durable`](crate::Truncator::note_durable)
    /// (checkpoints).
    pub fn open_with_extent(
        storage: S,
        dir: &Path,
        opts: WalOptions,
        extent: &Path,
    ) -> Result<(Self, Recovered), OpenError> {
        Self::open_inner(storage, dir, opts, Some(extent), &mut |_| {})
    }

    /// As [`Wal::open_with_extent`], handing `visit` every record frame the recovered log
    /// holds, in log order, as recovery's walk reads it (borrowed from the mapping): the
    /// frames [`WalReader::iter_from`](crate::WalReader::iter_from) would return after the
    /// open, without a second walk over the log. Frames of a unit are handed over only once
    /// the unit is complete; seals and tenure frames are not records and are not handed
    /// over. If the open fails, what `visit` saw is meaningless.
    ///
    /// # Errors
    /// As [`Wal::open_with_extent`].
    pub fn open_with_extent_visiting(
        storage: S,
        dir: &Path,
        opts: WalOptions,
        extent: &Path,
        visit: &mut dyn FnMut(&Frame<'_>),
    ) -> Result<(Self, Recovered), OpenError> {
        Self::open_inner(storage, dir, opts, Some(extent), visit)
    }

    fn open_inner(
        storage: S,
        dir: &Path,
        opts: WalOptions,
        extent_path: Option<&Path>,
        visit: &mut dyn FnMut(&Frame<'_>),
    ) -> Result<(Self, Recovered), OpenError> {
        opts.validate()?;
        storage
            .create_dir_all(dir)
            .map_err(|e| IoFailure::new(IoOp::Create, dir, e))?;
        let mut opts = opts;
        if let Some(existing) = existing_segment_size(&storage, dir)? {
            // The segment size is fixed when a log is created: an existing log keeps its
            // own, whatever the caller configured (segments of one log all share it). A
            // size no log could have been created with is left to recovery to judge.
            let adopted = WalOptions {
                segment_size: existing,
                ..opts.clone()
            };
            if adopted.validate().is_ok() {
                opts = adopted;
            }
        }
        let fenced_off = if opts.fence_off_predecessor {
            Some(crate::takeover::fence_off(&storage, dir)?)
        } else {
            None
        };
        let recorded = match extent_path {
            Some(path) => extent::read(&storage, path)?.map(|e| (path, e)),
            None => None,
        };
        let accepted = recorded
            .as_ref()
            .map(|(_, e)| e.accepted_losses.clone())
            .unwrap_or_default();
        let mut scan = match recovery::scan_accepting(
            &storage,
            dir,
            &opts,
            ScanMode::Recover(opts.recovery_mode),
            &accepted,
            visit,
        ) {
            Err(OpenError::SegmentGap { missing, path }) => match &recorded {
                Some((extent, recorded)) if opts.recovery_mode == RecoveryMode::AcceptLoss => {
                    return Err(OpenError::HoleNotAccepted {
                        extent: extent.to_path_buf(),
                        loss: extent::gap_loss(recorded, missing, &path),
                        after_gap: path,
                    })
                }
                Some((extent, recorded)) => {
                    return Err(OpenError::LostRecords {
                        extent: extent.to_path_buf(),
                        loss: extent::gap_loss(recorded, missing, &path),
                    })
                }
                None => return Err(OpenError::SegmentGap { missing, path }),
            },
            other => other?,
        };
        // What the log may continue above: everything the extent record saw handed out.
        let mut handed_out = GlobalSeq::ZERO;
        if let Some((path, recorded)) = &recorded {
            let mode = opts.recovery_mode;
            let observed = extent::observe(&scan);
            // A tolerant mode cut the end of the log: sequences proved durable are gone.
            let cut = scan.report.skipped.iter().any(|r| r.resumed_at.is_none());
            let tail_lost = match extent::compare(recorded, recorded, &observed) {
                Some(_) if mode == RecoveryMode::AcceptLoss => true,
                // A tolerant cut explains a shorter log; it never explains vanished segments.
                Some(loss)
                    if cut
                        && loss.missing_segments.is_empty()
                        && mode != RecoveryMode::AbsoluteConsistency =>
                {
                    true
                }
                Some(loss) => {
                    return Err(OpenError::LostRecords {
                        extent: path.to_path_buf(),
                        loss,
                    })
                }
                // Cutting a file cut short is a tolerant cut too: whatever it held past the
                // record's durable sequence (when the last writer did not close cleanly) is
                // recorded as lost and never handed out again.
                None => {
                    cut || (scan.cut_short.is_some() && mode != RecoveryMode::AbsoluteConsistency)
                }
            };
            refuse_cut_short(&scan, mode)?;
            let new_skip = scan.report.skipped.iter().any(|r| {
                r.resumed_at.is_some_and(|resumed| {
                    resumed > r.first_lost
                        && !recorded.is_accepted(r.first_lost, GlobalSeq(resumed.0 - 1))
                })
            });
            handed_out = recorded.highest_seq();
            if tail_lost || new_skip {
                // Recorded before anything changes: a crash from here on reopens as a log
                // whose loss is accepted, and still continues above it.
                let frames_per_segment = opts.unit_capacity() / FRAME_HEADER_LEN as u64 + 1;
                let plan = extent::plan_acceptance(recorded, &scan, tail_lost, frames_per_segment);
                let mut writer = ExtentWriter::open(&storage, path, Extent::default())?;
                writer
                    .update(|e| *e = plan.extent.clone())
                    .map_err(|e| IoFailure::new(IoOp::Sync, *path, e))?;
                handed_out = plan.extent.highest_seq();
                scan.report.accepted_loss = plan.tail;
            }
        }
        refuse_cut_short(&scan, opts.recovery_mode)?;
        scan.report.fenced_off = fenced_off;
        recovery::apply(&storage, dir, &mut scan)?;
        sync_recovered(&scan)?;
        // After an accepted loss the log continues above every sequence ever handed out,
        // in a new segment that starts there.
        let log_end = scan.last_seq;
        let jump = handed_out > log_end;
        let last_seq = log_end.max(handed_out);
        let mut plan = OpenPlan::from_scan(std::mem::take(&mut scan.segments));
        let shared = Arc::new(Shared {
            segments: RwLock::new(std::mem::take(&mut plan.entries)),
            written: AtomicU64::new(last_seq.0),
        });
        let wall = scan.last_wall_ms;
        let active = if let Some(cont) = plan.continuation(opts.fencing, jump) {
            let recovered = plan
                .segments
                .get_mut(cont.pos)
                .ok_or(OpenError::Invariant(LogInvariant::RecoveredSegmentPresent))?;
            let segment = recovered
                .file
                .take()
                .ok_or_else(|| missing_segment(&recovered.path))?;
            let (index, path) = (recovered.index, recovered.path.clone());
            let entry = shared
                .segments
                .read()
                .last()
                .cloned()
                .ok_or_else(|| missing_segment(&path))?;
            // Recovery synced everything up to `append_at`: start on a fresh sector.
            let at = sector_align_up(cont.append_at).unwrap_or(cont.append_at);
            Active {
                segment: Arc::new(segment),
                entry,
                index,
                path,
                write_at: at,
                synced_to: at,
                count: cont.count,
                tenure_pending: cont.tenure_pending,
                reused: cont.reused,
            }
        } else {
            // Seal the segment we leave if it is still open, so recovery knows it complete.
            if let Some(NewestSegment {
                pos,
                append_at: Some(at),
                sealed: false,
                ..
            }) = plan.newest
            {
                let recovered = plan
                    .segments
                    .get(pos)
                    .ok_or(OpenError::Invariant(LogInvariant::RecoveredSegmentPresent))?;
                if let Some(segment) = &recovered.file {
                    let at = sector_align_up(at).unwrap_or(at);
                    seal(
                        segment,
                        recovered.index,
                        &recovered.path,
                        at,
                        log_end,
                        log_end,
                        wall,
                    )?;
                }
            }
            let index = plan
                .last_used
                .and_then(SegmentIndex::checked_next)
                .unwrap_or(SegmentIndex::FIRST);
            let path = segment_path(dir, index);
            let segment = match plan.take_unused(index) {
                Some(seg) => prepared_at_open(seg, index),
                None => match crate::segment::prepare(&storage, dir, index, opts.segment_size) {
                    // A predecessor that may still run renamed a segment it had been
                    // preparing into place after the log was fenced off: it is no one's
                    // (its writer can acknowledge nothing more). Remove it, once.
                    Err(f)
                        if opts.fence_off_predecessor
                            && f.source.kind() == std::io::ErrorKind::AlreadyExists =>
                    {
                        storage
                            .remove(&path)
                            .map_err(|e| IoFailure::new(IoOp::Remove, &path, e))?;
                        crate::segment::prepare(&storage, dir, index, opts.segment_size)?
                    }
                    other => other?,
                },
            };
            start_segment(&shared, segment, index, path, last_seq.next(), &opts)?
        };
        // A segment prepared by an earlier writer is kept for the next rotation; none is
        // prepared now (see `prepare_next_when_due`).
        let next_index = active.index.checked_next().unwrap_or(active.index);
        let next = match plan.take_unused(next_index) {
            Some(seg) => NextSegment::Ready(next_index, prepared_at_open(seg, next_index)),
            None => NextSegment::Empty,
        };
        let next_started = matches!(next, NextSegment::Ready(..));
        let extent = match extent_path {
            Some(path) => {
                let first_index = shared
                    .segments
                    .read()
                    .first()
                    .map_or(active.index, |entry| entry.index);
                let mut writer = ExtentWriter::open(&storage, path, Extent::default())?;
                writer
                    .update(|e| {
                        e.durable_seq = e.durable_seq.max(log_end);
                        e.closed_cleanly = false;
                        e.first_index = e.first_index.max(first_index.get());
                        e.last_index = e.last_index.max(active.index.get());
                    })
                    .map_err(|e| IoFailure::new(IoOp::Sync, path, e))?;
                Some(Arc::new(parking_lot::Mutex::new(writer)))
            }
            None => None,
        };
        let recovered = Recovered {
            report: scan.report,
            last_seq,
            last_wall_ms: wall,
        };
        let wal = Wal {
            storage,
            dir: dir.to_path_buf(),
            opts,
            shared,
            current: active,
            next,
            next_started,
            last_written: last_seq,
            last_durable: last_seq,
            last_wall_ms: wall,
            poisoned: None,
            in_flight: None,
            buffer: WriteBuffer::default(),
            extent,
        };
        Ok((wal, recovered))
    }

    /// Writes one atomic unit (one record, or a batch): after a crash all frames of the
    /// unit are there or none is. The frames must carry the next global sequences in order;
    /// a misuse error writes nothing. A unit never spans two segments: if it does not fit
    /// in the current one, the log rotates first (which seals and syncs the current
    /// segment, so [`last_durable`](Self::last_durable) may move). The unit is written
    /// (visible to readers) but not durable until [`sync`](Self::sync).
    pub fn append(&mut self, unit: &[NewFrame<'_>]) -> Result<(), AppendError> {
        self.append_buffered(unit)?;
        self.flush()
    }

    /// As [`Wal::append`], but the unit is only encoded into the write buffer: it reaches
    /// the segment (and readers) at the next [`Wal::flush`], which stores everything
    /// buffered with one write. The writer of a group commit buffers every unit of the
    /// group and flushes once. A misuse error writes nothing.
    pub fn append_buffered(&mut self, unit: &[NewFrame<'_>]) -> Result<(), AppendError> {
        if let Some(cause) = &self.poisoned {
            return Err(AppendError::Poisoned {
                cause: cause.clone(),
            });
        }
        let bytes = self.check_unit(unit)?;
        let tenure = if self.current.tenure_pending {
            TENURE_FRAME_LEN as u64
        } else {
            0
        };
        if self.current.write_at as u64 + tenure + bytes > self.opts.frames_end() {
            self.flush()?;
            self.rotate()?;
        }
        if self.buffer.bytes.len() >= WRITE_BUFFER_BYTES_MAX {
            self.flush()?;
        }
        if self.buffer.bytes.is_empty() {
            self.buffer.at = self.current.write_at;
        }
        if self.current.tenure_pending {
            // Our tenure in a segment another writer created starts here: stored and
            // synced with our first unit, before anything of ours is acknowledged.
            let frame = encode_tenure_frame(
                self.current.index,
                self.last_written.next(),
                unit.first().map_or(self.last_wall_ms, |f| f.wall_ms),
                self.last_durable,
                self.opts.fencing,
            );
            self.buffer.bytes.extend_from_slice(&frame);
            self.current.write_at += TENURE_FRAME_LEN;
            self.current.tenure_pending = false;
        }
        let count = unit.len();
        let mut at = self.current.write_at;
        let seed = FrameCrcSeed::new(self.current.index);
        self.buffer
            .bytes
            .reserve(usize::try_from(bytes).unwrap_or(0));
        for (i, frame) in unit.iter().enumerate() {
            let mut flags = 0;
            if i == 0 {
                flags |= FLAG_FIRST;
            }
            if i + 1 == count {
                flags |= FLAG_LAST;
            }
            let header = FrameHeader {
                global_seq: frame.global_seq,
                lane: frame.lane,
                lane_seq: frame.lane_seq,
                wall_ms: frame.wall_ms,
                durable_hint: self.last_durable,
                flags,
            };
            // `check_unit` bounded key and payload, so the frame encodes.
            let encoded = encode_frame_into(
                &mut self.buffer.bytes,
                &seed,
                &header,
                frame.key,
                frame.payload,
            );
            let Some(len) = encoded else {
                return Err(self.stop(LogInvariant::FrameLengthRepresentable));
            };
            let slot = self.current.count + self.buffer.frames + i as u64;
            // Offsets fit in u32: segments are at most MAX_SEGMENT_SIZE bytes. Readers
            // look only below the published count, so recording early is safe.
            self.current.entry.record(slot, at as u32);
            at += len;
        }
        // Produced here, used at `flush`: the unit ends within the segment's frames.
        if at as u64 > self.opts.frames_end() {
            return Err(self.stop(LogInvariant::WriteWithinFrames));
        }
        self.current.write_at = at;
        self.buffer.frames += count as u64;
        if let Some(last) = unit.last() {
            self.buffer.last = Some((last.global_seq, last.wall_ms));
        }
        self.prepare_next_when_due();
        Ok(())
    }

    /// Starts preparing the next segment once the current one is half full, so it is
    /// ready before it is needed and a short-lived writer that appends little creates no
    /// file. A failed preparation is not retried here: the rotation prepares the segment
    /// itself and reports the error then.
    fn prepare_next_when_due(&mut self) {
        if self.next_started || (self.current.write_at as u64) < self.opts.segment_size / 2 {
            return;
        }
        self.next_started = true;
        let index = self
            .current
            .index
            .checked_next()
            .unwrap_or(self.current.index);
        self.next = NextSegment::start(
            &self.storage,
            &self.dir,
            index,
            self.opts.segment_size,
            self.opts.prepare_in_background,
        );
    }

    /// Stores everything buffered by [`Wal::append_buffered`] with one write and
    /// publishes it to readers (written, not yet durable). A failure poisons the log.
    ///
    /// # Errors
    /// [`AppendError::Poisoned`], or the store's I/O error (which poisons).
    pub fn flush(&mut self) -> Result<(), AppendError> {
        if let Some(cause) = &self.poisoned {
            return Err(AppendError::Poisoned {
                cause: cause.clone(),
            });
        }
        let Some((last_seq, last_wall_ms)) = self.buffer.last else {
            return Ok(());
        };
        // Used here, produced at `append_buffered`: the buffer holds the sequences right
        // after the last written one and ends at the write offset, within the frames.
        if last_seq.0.checked_sub(self.buffer.frames) != Some(self.last_written.0) {
            return Err(self.stop(LogInvariant::BufferedSequencesContiguous));
        }
        if self.buffer.at + self.buffer.bytes.len() != self.current.write_at
            || self.current.write_at as u64 > self.opts.frames_end()
        {
            return Err(self.stop(LogInvariant::WriteWithinFrames));
        }
        if self.current.reused {
            // The bytes after the frames are an earlier life's, not zeros: store the
            // padding a reader skips up to the next sector boundary with the frames, so
            // a sync (which continues on that boundary) leaves nothing else between units.
            // The next store starts at the write offset and overwrites it (unsynced).
            let end = sector_align_up(self.current.write_at).unwrap_or(self.current.write_at);
            let pad = end.saturating_sub(self.current.write_at);
            self.buffer.bytes.resize(self.buffer.bytes.len() + pad, 0);
        }
        if let Err(e) = self
            .current
            .segment
            .write(self.buffer.at, &[&self.buffer.bytes])
        {
            return Err(self
                .poison(IoFailure::new(IoOp::Write, &self.current.path, e))
                .into());
        }
        self.current.count += self.buffer.frames;
        self.current.entry.publish(self.current.count);
        self.last_written = last_seq;
        self.last_wall_ms = last_wall_ms;
        self.shared
            .written
            .store(self.last_written.0, Ordering::Release);
        self.buffer.bytes.clear();
        self.buffer.frames = 0;
        self.buffer.last = None;
        Ok(())
    }

    /// Validates a unit; returns the bytes it needs.
    fn check_unit(&self, unit: &[NewFrame<'_>]) -> Result<u64, AppendError> {
        if unit.is_empty() {
            return Err(AppendError::EmptyUnit);
        }
        let mut expected = self.buffer.last.map_or(self.last_written, |(seq, _)| seq);
        for frame in unit {
            expected = GlobalSeq(expected.0.checked_add(1).ok_or(
                AppendError::SequenceOutOfOrder {
                    expected,
                    found: frame.global_seq,
                },
            )?);
            if frame.global_seq != expected {
                return Err(AppendError::SequenceOutOfOrder {
                    expected,
                    found: frame.global_seq,
                });
            }
            if frame.key.len() > FRAME_KEY_LEN_MAX {
                return Err(AppendError::KeyTooLong {
                    global_seq: frame.global_seq,
                    len: frame.key.len(),
                    max: FRAME_KEY_LEN_MAX,
                });
            }
            let record = frame.key.len() as u64 + frame.payload.len() as u64;
            if record > u64::from(self.opts.max_record_bytes) {
                return Err(AppendError::RecordTooLarge {
                    global_seq: frame.global_seq,
                    bytes: record,
                    max: self.opts.max_record_bytes,
                });
            }
        }
        Ok(self
            .opts
            .unit_fits(unit.iter().map(|f| (f.key.len(), f.payload.len())))?)
    }

    /// Makes everything appended so far durable with one sync (fdatasync on real storage) of the current segment, and
    /// returns the new durable global sequence. A failure poisons the log; the sync is never
    /// retried.
    pub fn sync(&mut self) -> Result<GlobalSeq, SyncError> {
        match self.begin_sync()? {
            None => Ok(self.last_durable),
            Some(job) => {
                let result = job.run();
                self.finish_sync(job, result)
            }
        }
    }

    /// Starts a sync of everything appended so far, to be run by [`SyncJob::run`] on any
    /// thread while appends go on; [`Wal::finish_sync`] then makes it count. Returns
    /// `None` when everything is durable already or a sync is in flight (finish it
    /// first). Appends continue on a fresh sector, so the bytes being synced are never
    /// written again.
    ///
    /// # Errors
    /// [`SyncError::Poisoned`] once an earlier write or sync failed.
    pub fn begin_sync(&mut self) -> Result<Option<SyncJob<S>>, SyncError> {
        // A failed flush poisons; the check below then reports it.
        let _ = self.flush();
        if let Some(cause) = &self.poisoned {
            return Err(SyncError::Poisoned {
                cause: cause.clone(),
            });
        }
        if self.last_durable == self.last_written || self.in_flight.is_some() {
            return Ok(None);
        }
        let (from, to) = (self.current.synced_to, self.current.write_at);
        // Continue on a fresh sector: the one holding synced bytes is never written again.
        // The skipped bytes are zero and fit: frames end a sector before the segment does.
        let next = sector_align_up(to).filter(|next| *next as u64 <= self.opts.frames_end());
        // Produced here, used at `finish_sync`: a sync covers what was written, no more.
        let (Some(next), true) = (next, from <= to && self.last_durable <= self.last_written)
        else {
            return Err(self.stop_sync(LogInvariant::SyncWithinWritten));
        };
        self.current.write_at = next;
        self.in_flight = Some((self.current.index, next, self.last_written));
        Ok(Some(SyncJob {
            segment: self.current.segment.clone(),
            path: self.current.path.clone(),
            from,
            len: to - from,
            upto: self.last_written,
        }))
    }

    /// Records the outcome of a [`SyncJob`] from [`Wal::begin_sync`]: on success the log
    /// is durable up to the job's sequence (returned); on failure it is poisoned and the
    /// sync is never retried.
    ///
    /// # Errors
    /// [`SyncError::Io`] for the job's failure, [`SyncError::Poisoned`] if the log was
    /// poisoned meanwhile.
    pub fn finish_sync(
        &mut self,
        job: SyncJob<S>,
        result: io::Result<()>,
    ) -> Result<GlobalSeq, SyncError> {
        let in_flight = self.in_flight.take();
        // Used here, produced at `begin_sync`: this is the sync in flight, and it covers
        // nothing past the last write.
        if in_flight.is_none_or(|(_, _, upto)| upto != job.upto) || job.upto > self.last_written {
            return Err(self.stop_sync(LogInvariant::SyncWithinWritten));
        }
        if let Err(e) = result {
            return Err(self.poison(IoFailure::new(IoOp::Sync, &job.path, e)).into());
        }
        if let Some(cause) = &self.poisoned {
            return Err(SyncError::Poisoned {
                cause: cause.clone(),
            });
        }
        if let Some((index, synced_to, _)) = in_flight {
            if index == self.current.index {
                self.current.synced_to = self.current.synced_to.max(synced_to);
            }
        }
        self.last_durable = self.last_durable.max(job.upto);
        Ok(self.last_durable)
    }

    /// Seals the current segment and continues in the prepared next one.
    fn rotate(&mut self) -> Result<(), AppendError> {
        let index = self
            .current
            .index
            .checked_next()
            .ok_or(AppendError::OutOfSegmentIndexes {
                last: self.current.index,
            })?;
        #[cfg(feature = "tracing")]
        let _span = tracing::info_span!("tidelog.rotation", segment = index.get()).entered();
        let prepared = match self
            .next
            .take(&self.storage, &self.dir, index, self.opts.segment_size)
        {
            Ok(prepared) => prepared,
            // Nothing was stored and the current segment is untouched (not even sealed):
            // refuse this unit, not the log. The next rotation prepares the segment again.
            Err(f) if is_no_space(&f.source) => {
                return Err(AppendError::NoSpace {
                    dir: self.dir.clone(),
                    needed: self.opts.segment_size,
                })
            }
            Err(f) => return Err(self.poison(f).into()),
        };
        if let Err(stop) = seal(
            &*self.current.segment,
            self.current.index,
            &self.current.path,
            self.current.write_at,
            self.last_written,
            self.last_durable,
            self.last_wall_ms,
        ) {
            return Err(self.stop(stop));
        }
        // Everything in the sealed segment is now synced.
        self.last_durable = self.last_written;
        let path = segment_path(&self.dir, index);
        match start_segment(
            &self.shared,
            prepared,
            index,
            path,
            self.last_written.next(),
            &self.opts,
        ) {
            Ok(active) => self.current = active,
            Err(f) => return Err(self.poison(f).into()),
        }
        // The new segment exists (its header is synced) and everything before it is
        // durable: record both before any frame goes into it.
        let (last_index, durable) = (index.get(), self.last_durable);
        if let Err(f) = extent::note(self.extent.as_ref(), |e| {
            e.last_index = e.last_index.max(last_index);
            e.durable_seq = e.durable_seq.max(durable);
        }) {
            return Err(self.poison(f).into());
        }
        self.next_started = false;
        Ok(())
    }

    fn poison(&mut self, failure: IoFailure) -> IoFailure {
        if self.poisoned.is_none() {
            self.poisoned = Some(failure.cause());
        }
        failure
    }

    /// Poisons the log with `stop` (a failed operation or a broken invariant) and returns
    /// the append's error for it.
    fn stop(&mut self, stop: impl Into<Stop>) -> AppendError {
        let stop = stop.into();
        if self.poisoned.is_none() {
            self.poisoned = Some(stop.cause());
        }
        stop.into()
    }

    /// As [`Wal::stop`], for a sync.
    fn stop_sync(&mut self, invariant: LogInvariant) -> SyncError {
        if self.poisoned.is_none() {
            self.poisoned = Some(PoisonCause::Invariant(invariant));
        }
        SyncError::Invariant(invariant)
    }

    /// Last global sequence appended (stored in its segment with `pwrite`).
    #[must_use]
    pub fn last_written(&self) -> GlobalSeq {
        self.last_written
    }

    /// Last global sequence covered by a successful sync.
    #[must_use]
    pub fn last_durable(&self) -> GlobalSeq {
        self.last_durable
    }

    /// Wall clock of the last appended record.
    #[must_use]
    pub fn last_wall_ms(&self) -> u64 {
        self.last_wall_ms
    }

    /// The first failure, if the log is poisoned.
    #[must_use]
    pub fn poisoned(&self) -> Option<&PoisonCause> {
        self.poisoned.as_ref()
    }

    /// The options the log was opened with.
    #[must_use]
    pub fn options(&self) -> &WalOptions {
        &self.opts
    }

    /// The log directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Index of the segment being appended to.
    #[must_use]
    pub fn current_segment(&self) -> SegmentIndex {
        self.current.index
    }

    /// A reader usable from any thread while this writer appends.
    #[must_use]
    pub fn reader(&self) -> WalReader<S> {
        WalReader::new(Arc::clone(&self.shared))
    }

    /// A handle that removes the head of the log from any thread while this writer
    /// appends (see [`Truncator`](crate::Truncator)).
    #[must_use]
    pub fn truncator(&self) -> crate::Truncator<S> {
        crate::Truncator::new(
            self.storage.clone(),
            self.dir.clone(),
            Arc::clone(&self.shared),
            self.opts.segment_size,
        )
        .with_extent(self.extent.clone())
    }

    /// Records the durable end of the log in the extent record, and that the writer
    /// closed cleanly if everything written is durable (one sync). Call it only at close,
    /// after the last sync and with nothing more to append: a later recovery that must
    /// accept the loss of the log's end then knows exactly what was acknowledged. A log
    /// without an extent record does nothing.
    ///
    /// # Errors
    /// The failed write or sync of the extent file (the log itself is not poisoned: its
    /// records are durable, only the record of how far they reach is older).
    pub fn record_extent(&mut self) -> Result<(), OpenError> {
        let durable = self.last_durable;
        let clean = self.poisoned.is_none() && self.last_written == self.last_durable;
        extent::note(self.extent.as_ref(), |e| {
            e.durable_seq = e.durable_seq.max(durable);
            e.closed_cleanly = clean;
        })
        .map_err(OpenError::from)
    }

    /// The extent record as last written, if the log keeps one.
    #[must_use]
    pub fn extent(&self) -> Option<Extent> {
        self.extent.as_ref().map(|e| e.lock().current().clone())
    }
}

impl<S: Storage> Drop for Wal<S> {
    fn drop(&mut self) {
        self.next.finish();
    }
}

/// Whether an I/O error says the file system is full (or the quota used up).
fn is_no_space(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT))
}

/// The newest accepted segment as recovery left it: where the writer may continue.
#[derive(Debug, Clone, Copy)]
struct NewestSegment {
    /// Its position in [`OpenPlan::segments`].
    pos: usize,
    /// Where its frames end, or `None` if nothing may be appended there.
    append_at: Option<usize>,
    sealed: bool,
    /// The token whose tenure the segment ends in.
    tenure: FencingToken,
    /// Its format is the current one, so a tenure frame may go into it.
    continuable: bool,
    /// The sequences it holds.
    count: u64,
    /// Its header says its file is reused.
    reused: bool,
}

/// How the writer continues the newest segment ([`OpenPlan::continuation`]).
#[derive(Debug, Clone, Copy)]
struct Continuation {
    /// The segment's position in [`OpenPlan::segments`].
    pos: usize,
    /// Where its frames end (the writer starts on the sector after).
    append_at: usize,
    /// The sequences it holds.
    count: u64,
    /// It ends in another writer's tenure: a tenure frame carrying ours goes first.
    tenure_pending: bool,
    /// Its file is a reused one.
    reused: bool,
}

/// A segment file recovery found, as the opener hands it on to the writer.
struct RecoveredSegment<G> {
    index: SegmentIndex,
    path: PathBuf,
    /// Prepared and never used: the writer may start it as a fresh segment.
    unused: bool,
    /// The file, until the writer takes it (to continue in it, or to start it).
    file: Option<G>,
}

/// What the open makes of recovery's segments: the readers' entries, and which segment
/// the writer continues or starts.
struct OpenPlan<G> {
    /// Every segment file of the log directory, in index order.
    segments: Vec<RecoveredSegment<G>>,
    /// The readers' entries of the accepted segments, in order.
    entries: Vec<Arc<SegmentEntry>>,
    /// The newest accepted segment.
    newest: Option<NewestSegment>,
    /// Whether a refused (stale) segment follows the last accepted one.
    refused_after: bool,
    /// The newest segment that is part of the log or was refused.
    last_used: Option<SegmentIndex>,
}

impl<G: SegmentOps> OpenPlan<G> {
    /// Publishes the slots of every accepted segment in a reader's entry and notes the
    /// newest one.
    fn from_scan(scanned: Vec<recovery::ScannedSegment<G>>) -> Self {
        let mut plan = OpenPlan {
            segments: Vec::with_capacity(scanned.len()),
            entries: Vec::new(),
            newest: None,
            refused_after: false,
            last_used: None,
        };
        for (pos, seg) in scanned.into_iter().enumerate() {
            match &seg.state {
                SegmentState::Accepted(acc) => {
                    let entry = SegmentEntry::new(
                        seg.index,
                        acc.header.first_seq,
                        Arc::clone(seg.segment.region()),
                    );
                    for (slot, offset) in acc.slots.iter().enumerate() {
                        entry.record(slot as u64, *offset);
                    }
                    entry.publish(acc.slots.len() as u64);
                    plan.entries.push(Arc::new(entry));
                    plan.newest = Some(NewestSegment {
                        pos,
                        append_at: acc.append_at,
                        sealed: acc.sealed,
                        tenure: acc.tenure,
                        continuable: acc.version >= FORMAT_VERSION,
                        count: acc.slots.len() as u64,
                        reused: crate::format::header_is_reused(seg.segment.region().all()),
                    });
                    plan.last_used = Some(seg.index);
                }
                SegmentState::Refused => {
                    plan.refused_after = true;
                    plan.last_used = Some(seg.index);
                }
                // Removed by recovery: as if it never existed.
                SegmentState::Dropped | SegmentState::Unused => {}
            }
            plan.segments.push(RecoveredSegment {
                index: seg.index,
                unused: matches!(seg.state, SegmentState::Unused),
                path: seg.path,
                file: Some(seg.segment),
            });
        }
        plan
    }

    /// The newest segment, if a writer under `fencing` continues it (after the last
    /// synced sector, with a tenure frame first if another writer's tenure ends there):
    /// not if it is sealed, of an older format while another writer's, or a fenced
    /// writer's segment follows it, nor after a `jump` over an accepted loss.
    fn continuation(&self, fencing: FencingToken, jump: bool) -> Option<Continuation> {
        match self.newest {
            Some(NewestSegment {
                pos,
                append_at: Some(append_at),
                sealed: false,
                tenure,
                continuable,
                count,
                reused,
            }) if !self.refused_after && !jump && (tenure == fencing || continuable) => {
                Some(Continuation {
                    pos,
                    append_at,
                    count,
                    tenure_pending: tenure != fencing,
                    reused,
                })
            }
            _ => None,
        }
    }

    /// Takes the file of the unused segment `index`, if recovery found one.
    fn take_unused(&mut self, index: SegmentIndex) -> Option<G> {
        self.segments
            .iter_mut()
            .find(|s| s.unused && s.index == index)
            .and_then(|s| s.file.take())
    }
}

/// Syncs the last segment holding frames: after a process crash, what recovery found may
/// still be only in the page cache, and it is reported (and stamped in later frames) as
/// durable from now on. Earlier segments were synced when they were sealed.
fn sync_recovered<G: SegmentOps>(scan: &recovery::Scan<G>) -> Result<(), OpenError> {
    let last = scan
        .segments
        .iter()
        .rev()
        .find(|s| matches!(s.state, SegmentState::Accepted(_)));
    if let Some(seg) = last {
        seg.segment
            .sync(0, seg.segment.region().len())
            .map_err(|e| IoFailure::new(IoOp::Sync, &seg.path, e))?;
    }
    Ok(())
}

fn missing_segment(path: &Path) -> OpenError {
    OpenError::Io {
        op: IoOp::Open,
        path: path.to_path_buf(),
        source: std::io::Error::other("segment vanished during open"),
    }
}

/// Writes the seal frame at `at` and syncs the segment from its header on (a seal is rare;
/// syncing the whole used range keeps this simple and covers everything unsynced).
fn seal<G: SegmentOps>(
    segment: &G,
    index: SegmentIndex,
    path: &Path,
    at: usize,
    last: GlobalSeq,
    durable: GlobalSeq,
    wall_ms: u64,
) -> Result<(), Stop> {
    let header = FrameHeader {
        global_seq: last.next(),
        lane: LaneId(0),
        lane_seq: LaneSeq::ZERO,
        wall_ms,
        durable_hint: durable,
        flags: FLAG_FIRST | FLAG_LAST | FLAG_SEAL,
    };
    // Never an all-zero seal: a seal that does not encode stops the writer.
    let head = encode_frame_header(index, &header, &[], &[]).ok_or(LogInvariant::SealEncodes)?;
    segment
        .write(at, &[&head])
        .map_err(|e| IoFailure::new(IoOp::Write, path, e))?;
    let end = align_up(at + SEAL_FRAME_LEN).ok_or(LogInvariant::WriteWithinFrames)?;
    segment
        .sync(0, end)
        .map_err(|e| IoFailure::new(IoOp::Sync, path, e).into())
}

/// A prepared, unused segment recovery found: reused if its file carries the reuse mark.
fn prepared_at_open<G: SegmentOps>(segment: G, index: SegmentIndex) -> Prepared<G> {
    let reused = crate::format::has_reuse_mark(segment.region().all(), index);
    Prepared { segment, reused }
}

/// Writes and syncs the header of a prepared segment and makes it the active one.
fn start_segment<S: Storage>(
    shared: &Shared,
    prepared: Prepared<S::Segment>,
    index: SegmentIndex,
    path: PathBuf,
    first_seq: GlobalSeq,
    opts: &WalOptions,
) -> Result<Active<S>, IoFailure> {
    let Prepared { segment, reused } = prepared;
    let header = SegmentHeader {
        index,
        first_seq,
        fencing: opts.fencing,
        segment_size: opts.segment_size,
    };
    write_header(&segment, &header, reused, &path)?;
    let entry = Arc::new(SegmentEntry::new(
        index,
        first_seq,
        Arc::clone(segment.region()),
    ));
    shared.segments.write().push(Arc::clone(&entry));
    Ok(Active {
        segment: Arc::new(segment),
        entry,
        index,
        path,
        write_at: SECTOR_LEN,
        synced_to: SECTOR_LEN,
        count: 0,
        tenure_pending: false,
        reused,
    })
}

#[cfg(test)]
mod tests {
    //! The invariants of the writer's own state, broken on purpose through its private
    //! fields (no public path can break them): each must stop the log, poisoned and
    //! naming the invariant, with nothing of the unit stored.

    use super::*;
    use crate::format::FRAME_ALIGN;

    fn frame(seq: u64) -> NewFrame<'static> {
        NewFrame {
            global_seq: GlobalSeq(seq),
            lane: LaneId(1),
            lane_seq: LaneSeq(seq),
            wall_ms: 1,
            key: b"",
            payload: b"payload",
        }
    }

    fn open(dir: &Path) -> Wal {
        let opts = WalOptions {
            segment_size: 64 * 1024,
            prepare_in_background: false,
            ..WalOptions::default()
        };
        Wal::open(dir, opts).unwrap().0
    }

    fn assert_stopped_by(wal: &mut Wal, invariant: LogInvariant) {
        assert_eq!(wal.poisoned(), Some(&PoisonCause::Invariant(invariant)));
        assert!(matches!(
            wal.append(&[frame(wal.last_written().0 + 1)]),
            Err(AppendError::Poisoned { .. })
        ));
        assert!(wal.sync().is_err(), "a poisoned log must not sync");
    }

    #[test]
    fn buffered_frames_that_do_not_follow_the_last_written_stop_the_log_before_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let mut wal = open(dir.path());
        wal.append(&[frame(1)]).unwrap();
        wal.append_buffered(&[frame(2)]).unwrap();
        wal.buffer.frames += 1; // the count no longer matches the sequences
        let err = wal.flush().unwrap_err();
        assert!(
            matches!(
                err,
                AppendError::Invariant(LogInvariant::BufferedSequencesContiguous)
            ),
            "{err}"
        );
        assert!(wal.reader().get(GlobalSeq(2)).is_none(), "stored anyway");
        assert_eq!(wal.last_written(), GlobalSeq(1));
        assert_stopped_by(&mut wal, LogInvariant::BufferedSequencesContiguous);
    }

    #[test]
    fn a_write_offset_that_does_not_end_the_buffer_stops_the_log_before_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let mut wal = open(dir.path());
        wal.append_buffered(&[frame(1)]).unwrap();
        wal.current.write_at += FRAME_ALIGN;
        let err = wal.flush().unwrap_err();
        assert!(
            matches!(err, AppendError::Invariant(LogInvariant::WriteWithinFrames)),
            "{err}"
        );
        assert!(wal.reader().get(GlobalSeq(1)).is_none(), "stored anyway");
        assert_stopped_by(&mut wal, LogInvariant::WriteWithinFrames);
    }

    #[test]
    fn a_finished_sync_that_is_not_the_one_in_flight_stops_the_log_and_moves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut wal = open(dir.path());
        wal.append(&[frame(1)]).unwrap();
        let job = wal.begin_sync().unwrap().unwrap();
        // A job claiming more than was written when it began.
        let forged = SyncJob {
            upto: GlobalSeq(5),
            ..job
        };
        let result = forged.run();
        let err = wal.finish_sync(forged, result).unwrap_err();
        assert!(
            matches!(err, SyncError::Invariant(LogInvariant::SyncWithinWritten)),
            "{err}"
        );
        assert_eq!(wal.last_durable(), GlobalSeq::ZERO, "durable moved anyway");
        assert_stopped_by(&mut wal, LogInvariant::SyncWithinWritten);
    }

    #[test]
    fn a_sync_begun_with_the_synced_offset_past_the_write_offset_stops_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let mut wal = open(dir.path());
        wal.append(&[frame(1)]).unwrap();
        wal.current.synced_to = wal.current.write_at + SECTOR_LEN;
        let err = wal.begin_sync().unwrap_err();
        assert!(
            matches!(err, SyncError::Invariant(LogInvariant::SyncWithinWritten)),
            "{err}"
        );
        assert_stopped_by(&mut wal, LogInvariant::SyncWithinWritten);
    }
}
