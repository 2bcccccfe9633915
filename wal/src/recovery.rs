//! Recovery: read every segment in order, classify every anomaly, and decide what the log
//! is. `docs/recovery.md` holds the decision table; each row is a test in `wal/tests/`.
//!
//! | found | what recovery does |
//! |---|---|
//! | zeros after the last valid frame | clean end: nothing |
//! | invalid frame (or a unit without its closing frame) in the last segment, nothing later proves it durable | torn tail: cut at the start of its unit, zero the rest, sync, report the bytes dropped |
//! | invalid frame that a later frame's durable hint, or a later segment, proves was durable | `AbsoluteConsistency`: error; `TolerateCorruptedTail`: cut there, drop everything after, report; `SkipCorrupted`: skip to the next valid unit, report exactly what was skipped |
//! | invalid header, wrong magic or version, gap in segment indexes, foreign file | typed error naming the file |
//! | segment whose fencing token is below an earlier segment's | its frames are refused, reported, never returned |
//!
//! Proof of durability: the writer stamps every frame with the durable sequence it knew;
//! a valid frame further on whose stamp reaches the damaged frame's sequence proves the
//! damaged frame had been synced. A later segment proves it too, because the writer seals
//! and syncs a segment before it writes the next one's header.
//!
//! The scan only reads; it returns a plan (zero a range, remove a file) that
//! [`Wal::open_with`](crate::Wal::open_with) carries out and [`verify`] never does.

#![deny(clippy::indexing_slicing)]

use crate::error::OpenError;
use crate::format::{
    Frame, FrameHeader, FrameIssue, HeaderIssue, SegmentHeader, FRAME_HEADER_LEN, SECTOR_LEN,
    SEGMENT_HEADER_LEN,
};
use crate::ids::{FencingToken, SegmentIndex};
use crate::io::sealed::SegmentOps;
use crate::io::{IoOp, RealStorage, Storage};
use crate::reader::MISSING;
use crate::segment::{classify, segment_path, EntryKind};
use crate::walker::{
    gap_skipped, may_be_unused, proof_of, proving_successor, segment_start, After, MappedSegment,
    SegmentStart, SegmentWalker, Step, Stop,
};
use crate::WalOptions;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tidelog_watermarks::GlobalSeq;

/// What recovery does with damage to data that had been durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RecoveryMode {
    /// Refuse to open: acknowledged data is damaged and nothing is silently lost. Default.
    #[default]
    AbsoluteConsistency,
    /// Cut the log at the first damaged frame and drop everything after it (reported).
    TolerateCorruptedTail,
    /// Skip damaged regions, keep every valid unit after them (each skip reported).
    SkipCorrupted,
    /// As `SkipCorrupted`, and also open a log shorter than its extent record says it was
    /// (segments deleted, an older copy restored): the lost range is recorded as accepted
    /// in the extent record and the log continues above every sequence ever handed out.
    /// Without an extent record, as `SkipCorrupted`.
    AcceptLoss,
}

/// Why a damaged frame must have been durable.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DurabilityProof {
    /// A valid frame further on was written when the durable point already covered the
    /// damaged one.
    LaterFrame {
        /// Its segment.
        path: PathBuf,
        /// Its offset.
        offset: u64,
        /// Its global sequence.
        global_seq: GlobalSeq,
        /// The durable sequence it carries.
        durable_hint: GlobalSeq,
    },
    /// A later segment exists, and the writer syncs a segment before it starts the next.
    LaterSegment {
        /// The later segment.
        path: PathBuf,
    },
}

impl fmt::Display for DurabilityProof {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DurabilityProof::LaterFrame {
                path,
                offset,
                global_seq,
                durable_hint,
            } => write!(
                f,
                "frame {global_seq} at {}:{offset} written when {durable_hint} was durable",
                path.display()
            ),
            DurabilityProof::LaterSegment { path } => {
                write!(f, "later segment {}", path.display())
            }
        }
    }
}

/// A torn tail that recovery cut off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    /// The last segment.
    pub path: PathBuf,
    /// Where the log now ends.
    pub offset: u64,
    /// Non-zero bytes dropped after that point.
    pub bytes_dropped: u64,
    /// What the first invalid frame looked like.
    pub issue: FrameIssue,
}

/// Durable data skipped or cut under a tolerant [`RecoveryMode`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedRegion {
    /// The segment.
    pub path: PathBuf,
    /// Start of the skipped bytes.
    pub offset: u64,
    /// Number of skipped bytes.
    pub len: u64,
    /// First global sequence lost.
    pub first_lost: GlobalSeq,
    /// First global sequence kept after the region, if any was.
    pub resumed_at: Option<GlobalSeq>,
    /// What was wrong.
    pub issue: FrameIssue,
    /// Why it had been durable.
    pub proof: DurabilityProof,
}

/// A segment refused because a stale (fenced) writer wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedSegment {
    /// The segment.
    pub path: PathBuf,
    /// Its token.
    pub token: FencingToken,
    /// The higher token of an earlier segment.
    pub fenced_by: FencingToken,
}

/// Why recovery removed or reset a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RemovalReason {
    /// A segment preparation interrupted by a crash (`*.seg.tmp`).
    InterruptedPreparation,
    /// A segment after a cut made by `TolerateCorruptedTail`.
    AfterCut,
    /// A prepared segment whose header write was torn by a crash (header reset to zeros).
    TornUnusedHeader,
    /// A segment after the end of the log written (or prepared) by a fenced writer after
    /// its successor took over: never read, removed so the log can continue.
    FencedWriter,
    /// The newest segment's file was cut short (shorter than its header says): the
    /// records still in it are kept and the file is restored to its full length, zeros
    /// after them, so the writer can continue in it (tolerant modes and `AcceptLoss`).
    CutShort,
}

/// A file recovery removed or reset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemovedFile {
    /// The file.
    pub path: PathBuf,
    /// Why.
    pub reason: RemovalReason,
}

/// Everything recovery found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Segments holding frames that were read.
    pub segments: u64,
    /// Record frames recovered.
    pub frames: u64,
    /// The torn tail cut off, if any.
    pub torn_tail: Option<TornTail>,
    /// Durable data skipped or cut (tolerant modes only).
    pub skipped: Vec<SkippedRegion>,
    /// Segments refused for a stale fencing token.
    pub refused_segments: Vec<RefusedSegment>,
    /// Files removed or reset.
    pub removed_files: Vec<RemovedFile>,
    /// What was done, before reading, to keep out a previous writer that may still be
    /// running ([`WalOptions::fence_off_predecessor`](crate::WalOptions)); not a repair.
    pub fenced_off: Option<crate::takeover::FenceReport>,
    /// Global sequences (inclusive) recorded as lost by this recovery under
    /// [`RecoveryMode::AcceptLoss`] or a tolerant cut: the end of the log was gone, and the
    /// log continues above this range. `None` when nothing new was accepted.
    pub accepted_loss: Option<(GlobalSeq, GlobalSeq)>,
}

impl RecoveryReport {
    /// Whether recovery found nothing at all to repair or report.
    #[must_use]
    pub fn is_clean(&self) -> bool {
        self.torn_tail.is_none()
            && self.skipped.is_empty()
            && self.refused_segments.is_empty()
            && self.removed_files.is_empty()
            && self.accepted_loss.is_none()
    }
}

/// One problem found by [`verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The file.
    pub path: PathBuf,
    /// Byte offset in it.
    pub offset: u64,
    /// What it is.
    pub kind: FindingKind,
}

/// Kinds of [`Finding`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FindingKind {
    /// A torn tail: recovery would cut it (normal after a crash).
    TornTail {
        /// Non-zero bytes after the cut.
        bytes: u64,
        /// The first invalid frame.
        issue: FrameIssue,
    },
    /// Damage to data that had been durable.
    CorruptFrame {
        /// What is wrong.
        issue: FrameIssue,
        /// Why it had been durable.
        proof: DurabilityProof,
    },
    /// A segment header does not verify.
    BadHeader(HeaderIssue),
    /// A segment index is missing.
    SegmentGap {
        /// The missing index.
        missing: SegmentIndex,
    },
    /// A segment does not start where the previous one ended.
    SequenceMismatch {
        /// Where the log continues.
        expected: GlobalSeq,
        /// Where the segment starts.
        found: GlobalSeq,
    },
    /// A segment written by a fenced writer.
    StaleFencing {
        /// Its token.
        token: FencingToken,
        /// The higher earlier token.
        fenced_by: FencingToken,
    },
    /// A file that is not a segment.
    ForeignFile,
    /// The log is shorter than its extent record says it was: segments vanished or were
    /// replaced by older copies (the finding's path is the extent record).
    LostRecords {
        /// What is missing.
        loss: crate::extent::Loss,
    },
    /// The extent record holds no valid slot.
    BadExtent {
        /// What is wrong.
        issue: String,
    },
    /// The newest segment's file is shorter than its header says (cut short, as by
    /// `truncate -s`): its records up to the cut are readable, the rest is gone. Whether
    /// anything acknowledged went with it is a [`FindingKind::LostRecords`] finding of its
    /// own (when the log keeps an extent record).
    CutShort {
        /// The file's length.
        file_len: u64,
        /// The length its header names.
        segment_size: u64,
    },
    /// A leftover of an interrupted segment preparation (harmless).
    InterruptedPreparation,
}

/// Overall result of [`verify`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing to report.
    Clean,
    /// Only what a crash leaves behind (torn tail, leftovers); opening repairs it.
    TornTailOnly,
    /// Durable data is damaged, or the directory is not a valid log.
    Corrupt,
}

/// Result of [`verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// The overall verdict.
    pub verdict: Verdict,
    /// Every problem, in log order.
    pub findings: Vec<Finding>,
    /// Segments read.
    pub segments: u64,
    /// Valid record frames found.
    pub frames: u64,
    /// Last valid global sequence.
    pub last_seq: GlobalSeq,
}

/// Checks the whole log in `dir` read-only and reports every problem with its file,
/// offset and reason. Changes nothing on disk (segments are mapped read-only).
pub fn verify(dir: &Path, opts: &WalOptions) -> Result<VerifyReport, OpenError> {
    verify_with(&RealStorage, dir, opts)
}

/// [`verify`], telling `progress` after each segment it checked how many bytes of
/// segments it has checked and how many it will check in all (for a progress bar).
///
/// # Errors
/// As [`verify`].
pub fn verify_reporting(
    dir: &Path,
    opts: &WalOptions,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<VerifyReport, OpenError> {
    verify_inner(&RealStorage, dir, opts, &[], progress)
}

/// [`verify`] on any storage (the simulated disk in tests).
pub fn verify_with<S: Storage>(
    storage: &S,
    dir: &Path,
    opts: &WalOptions,
) -> Result<VerifyReport, OpenError> {
    verify_inner(storage, dir, opts, &[], &mut |_, _| {})
}

fn verify_inner<S: Storage>(
    storage: &S,
    dir: &Path,
    opts: &WalOptions,
    accepted: &[(GlobalSeq, GlobalSeq)],
    progress: &mut dyn FnMut(u64, u64),
) -> Result<VerifyReport, OpenError> {
    let scan = scan_full(
        storage,
        dir,
        opts,
        ScanMode::Verify,
        accepted,
        progress,
        &mut |_| {},
    )?;
    Ok(verdict_of(scan))
}

/// [`verify_with`], and the log checked against its extent record `extent` (see
/// [`crate::extent`]): a log shorter than the record says it was is a
/// [`FindingKind::LostRecords`] finding, a damaged record a [`FindingKind::BadExtent`]
/// one; both make the verdict [`Verdict::Corrupt`]. Changes nothing; runs beside a writer.
pub fn verify_with_extent<S: Storage>(
    storage: &S,
    dir: &Path,
    opts: &WalOptions,
    extent: &Path,
) -> Result<VerifyReport, OpenError> {
    verify_with_extent_reporting(storage, dir, opts, extent, &mut |_, _| {})
}

/// [`verify_with_extent`], telling `progress` the bytes of segments checked so far and in
/// all after each segment (as [`verify_reporting`] does), for a progress bar.
pub fn verify_with_extent_reporting<S: Storage>(
    storage: &S,
    dir: &Path,
    opts: &WalOptions,
    extent: &Path,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<VerifyReport, OpenError> {
    let before = crate::extent::read(storage, extent);
    let accepted = match &before {
        Ok(Some(e)) => e.accepted_losses.clone(),
        _ => Vec::new(),
    };
    let mut scan = scan_full(
        storage,
        dir,
        opts,
        ScanMode::Verify,
        &accepted,
        progress,
        &mut |_| {},
    )?;
    let after = crate::extent::read(storage, extent);
    // A scan that stopped at a hole read nothing: the gap finding names what is missing,
    // and comparing the record with an empty observation would call every segment gone.
    let stopped_at_hole = scan
        .findings
        .iter()
        .any(|f| matches!(f.kind, FindingKind::SegmentGap { .. }));
    match (before, after) {
        (Ok(Some(_)), Ok(Some(_))) if stopped_at_hole => {}
        (Ok(Some(tail)), Ok(Some(head))) => {
            let observed = crate::extent::observe(&scan);
            if let Some(loss) = crate::extent::compare(&tail, &head, &observed) {
                scan.findings.push(Finding {
                    path: extent.to_path_buf(),
                    offset: 0,
                    kind: FindingKind::LostRecords { loss },
                });
            }
        }
        (Err(OpenError::BadExtent { issue, .. }), _)
        | (_, Err(OpenError::BadExtent { issue, .. })) => {
            scan.findings.push(Finding {
                path: extent.to_path_buf(),
                offset: 0,
                kind: FindingKind::BadExtent { issue },
            });
        }
        (Err(err), _) | (_, Err(err)) => return Err(err),
        // No record (yet): nothing to compare with.
        _ => {}
    }
    Ok(verdict_of(scan))
}

fn verdict_of<G>(scan: Scan<G>) -> VerifyReport {
    let corrupt = scan.findings.iter().any(|f| {
        !matches!(
            f.kind,
            FindingKind::TornTail { .. } | FindingKind::InterruptedPreparation
        )
    });
    let verdict = if corrupt {
        Verdict::Corrupt
    } else if scan.findings.is_empty() {
        Verdict::Clean
    } else {
        Verdict::TornTailOnly
    };
    VerifyReport {
        verdict,
        findings: scan.findings,
        segments: scan.report.segments,
        frames: scan.report.frames,
        last_seq: scan.last_seq,
    }
}

/// Whether the scan serves `open` (with a mode) or `verify`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScanMode {
    Recover(RecoveryMode),
    Verify,
}

/// A repair the scan asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Action {
    /// Store zeros over `[from, to)` of the segment at this position, then sync.
    Zero {
        segment: usize,
        from: usize,
        to: usize,
    },
    /// Remove a file.
    Remove(PathBuf),
    /// Give the segment at this position, cut short, its full length again (see
    /// [`restore_length`]).
    Restore { segment: usize, len: u64 },
}

/// What the scan learned about one segment file.
pub(crate) enum SegmentState {
    /// Prepared, never used (all-zero header and body, or a torn header over zeros).
    Unused,
    /// Written by a fenced writer: never read.
    Refused,
    /// Dropped after a tolerated cut.
    Dropped,
    /// Part of the log.
    Accepted(AcceptedSegment),
}

/// A segment that is part of the log.
pub(crate) struct AcceptedSegment {
    pub(crate) header: SegmentHeader,
    /// Offset of each sequence from `header.first_seq` on (`MISSING` for skipped ones).
    pub(crate) slots: Vec<u32>,
    /// Where the next frame would go, or `None` if nothing may be appended here (sealed,
    /// or damaged beyond repair in a tolerant mode).
    pub(crate) append_at: Option<usize>,
    /// Whether the segment ends with a valid seal.
    pub(crate) sealed: bool,
    /// The token of the writer whose tenure the segment ends in: its header's, or that of
    /// its last tenure frame.
    pub(crate) tenure: FencingToken,
    /// The format version of its header (a writer continues only the current version).
    pub(crate) version: u32,
}

/// One segment file of the log directory, as the scan read it.
pub(crate) struct ScannedSegment<G> {
    pub(crate) index: SegmentIndex,
    pub(crate) path: PathBuf,
    pub(crate) segment: G,
    /// Its header, or what is wrong with it (a cut-short newest file's header is taken as
    /// valid, see [`read_cut_short`]).
    pub(crate) header: Result<SegmentHeader, HeaderIssue>,
    pub(crate) state: SegmentState,
}

pub(crate) struct Scan<G> {
    pub(crate) segments: Vec<ScannedSegment<G>>,
    pub(crate) report: RecoveryReport,
    pub(crate) findings: Vec<Finding>,
    pub(crate) actions: Vec<Action>,
    pub(crate) last_seq: GlobalSeq,
    pub(crate) last_wall_ms: u64,
    /// Ranges of sequences whose loss was accepted explicitly (from the extent record):
    /// a gap or a damaged region inside one is passed over in every mode.
    pub(crate) accepted: Vec<(GlobalSeq, GlobalSeq)>,
    /// The newest used segment, if its file was cut short: read up to the cut.
    pub(crate) cut_short: Option<CutShort>,
}

/// The newest segment's file, shorter than its header says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CutShort {
    /// The segment file.
    pub(crate) path: PathBuf,
    /// Its length now.
    pub(crate) file_len: u64,
    /// The length its header names (what a restore gives it back).
    pub(crate) segment_size: u64,
}

fn io_err(op: IoOp, path: &Path, source: std::io::Error) -> OpenError {
    OpenError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// Reads the log in `dir`, passing over gaps and damage inside `accepted` ranges of
/// sequences. In `Verify` mode segments are mapped read-only, problems become findings
/// and nothing is planned; in `Recover` mode fatal problems are errors and repairs are
/// planned in `actions`. `visit` is given every record frame of every complete unit the
/// walk keeps, in log order (see [`Wal::open_with_extent_visiting`](crate::Wal::open_with_extent_visiting)).
pub(crate) fn scan_accepting<S: Storage>(
    storage: &S,
    dir: &Path,
    opts: &WalOptions,
    mode: ScanMode,
    accepted: &[(GlobalSeq, GlobalSeq)],
    visit: &mut dyn FnMut(&Frame<'_>),
) -> Result<Scan<S::Segment>, OpenError> {
    scan_full(storage, dir, opts, mode, accepted, &mut |_, _| {}, visit)
}

/// [`scan_accepting`], telling `progress` the bytes of segments
/// walked so far and in all.
fn scan_full<S: Storage>(
    storage: &S,
    dir: &Path,
    opts: &WalOptions,
    mode: ScanMode,
    accepted: &[(GlobalSeq, GlobalSeq)],
    progress: &mut dyn FnMut(u64, u64),
    visit: &mut dyn FnMut(&Frame<'_>),
) -> Result<Scan<S::Segment>, OpenError> {
    let verify = mode == ScanMode::Verify;
    let mut out = Scan {
        segments: Vec::new(),
        report: RecoveryReport::default(),
        findings: Vec::new(),
        actions: Vec::new(),
        last_seq: GlobalSeq::ZERO,
        last_wall_ms: 0,
        accepted: accepted.to_vec(),
        cut_short: None,
    };
    let names = storage.list(dir).map_err(|e| io_err(IoOp::List, dir, e))?;
    let mut indexes = Vec::new();
    let mut names: Vec<_> = names.into_iter().collect();
    names.sort();
    for name in names {
        let path = dir.join(&name);
        match classify(&name) {
            Some(EntryKind::Segment(index)) => indexes.push(index),
            // A freed segment kept for reuse: not part of the log.
            Some(EntryKind::Spare(_)) => {}
            Some(EntryKind::Temp(_)) => {
                out.findings.push(Finding {
                    path: path.clone(),
                    offset: 0,
                    kind: FindingKind::InterruptedPreparation,
                });
                out.report.removed_files.push(RemovedFile {
                    path: path.clone(),
                    reason: RemovalReason::InterruptedPreparation,
                });
                out.actions.push(Action::Remove(path));
            }
            None if verify => {
                out.findings.push(Finding {
                    path,
                    offset: 0,
                    kind: FindingKind::ForeignFile,
                });
                return Ok(out);
            }
            None => return Err(OpenError::ForeignFile { path }),
        }
    }
    indexes.sort();
    for pair in indexes.windows(2) {
        if let [a, b] = pair {
            if a.0.checked_add(1) != Some(b.0) {
                let missing = SegmentIndex(a.0.saturating_add(1));
                let path = segment_path(dir, *b);
                if verify {
                    out.findings.push(Finding {
                        path,
                        offset: 0,
                        kind: FindingKind::SegmentGap { missing },
                    });
                    return Ok(out);
                }
                return Err(OpenError::SegmentGap { missing, path });
            }
        }
    }
    for index in indexes {
        let path = segment_path(dir, index);
        let segment = storage
            .open_segment(&path, !verify)
            .map_err(|e| io_err(IoOp::Open, &path, e))?;
        let header = SegmentHeader::decode(segment.region().all(), index);
        out.segments.push(ScannedSegment {
            index,
            path,
            segment,
            header,
            state: SegmentState::Unused,
        });
    }
    let used_end = trailing_unused(&mut out, verify);
    let cut_short_at = read_cut_short(&mut out, used_end);
    if !verify {
        if let Some((path, found)) = out
            .segments
            .iter()
            .take(used_end)
            .filter_map(|s| s.header.as_ref().ok().map(|h| (&s.path, h.fencing)))
            .find(|(_, t)| *t > opts.fencing)
        {
            return Err(OpenError::Fenced {
                path: path.clone(),
                found,
                ours: opts.fencing,
            });
        }
    }
    let walked = walk(&mut out, used_end, mode, progress, visit)?;
    if let (Some(found), Some(path), false) = (walked.max_token, &walked.tenure_raised_in, verify) {
        if found > opts.fencing {
            // A later writer's tenure frame: this opener is fenced (nothing changed yet).
            return Err(OpenError::Fenced {
                path: path.clone(),
                found,
                ours: opts.fencing,
            });
        }
    }
    if !verify {
        remove_fenced_tail(&mut out);
    }
    if let Some(pos) = cut_short_at {
        note_cut_short(&mut out, pos, verify);
    }
    if walked.cut {
        // After a cut, prepared segments beyond it would leave a gap: remove them too.
        for seg in out.segments.iter_mut().skip(used_end) {
            out.report.removed_files.push(RemovedFile {
                path: seg.path.clone(),
                reason: RemovalReason::AfterCut,
            });
            out.actions.push(Action::Remove(seg.path.clone()));
            seg.state = SegmentState::Dropped;
        }
    }
    Ok(out)
}

/// Takes the header of the newest used segment (the one before `used_end`) as valid if
/// its file was cut short ([`SegmentHeader::decode_cut_short`]), so the walk reads it up
/// to the cut; returns its position. Only the newest: a cut-short segment followed by a
/// later one lost data the later one proves durable, and stays a bad header.
fn read_cut_short<G: SegmentOps>(out: &mut Scan<G>, used_end: usize) -> Option<usize> {
    let pos = used_end.checked_sub(1)?;
    let seg = out.segments.get_mut(pos)?;
    if !matches!(seg.header, Err(HeaderIssue::WrongSize { .. })) {
        return None;
    }
    let bytes = seg.segment.region().all();
    let found = SegmentHeader::decode_cut_short(bytes, bytes.len() as u64, seg.index)?;
    seg.header = Ok(found);
    out.cut_short = Some(CutShort {
        path: seg.path.clone(),
        file_len: bytes.len() as u64,
        segment_size: found.segment_size,
    });
    Some(pos)
}

/// Reports the cut-short newest segment at `pos` after the walk read it: a finding (the
/// torn tail at the cut is part of it, not a crash's), and for recovery a restore of its
/// length, planned after the zeroing of any partial unit at the cut. Whether recovery may
/// carry it out (the mode, the extent record) is decided by the opener.
fn note_cut_short<G>(out: &mut Scan<G>, pos: usize, verify: bool) {
    let Some(cut) = out.cut_short.clone() else {
        return;
    };
    if !matches!(
        out.segments.get(pos).map(|s| &s.state),
        Some(SegmentState::Accepted(_))
    ) {
        // Refused (a fenced writer's) or dropped after a cut: never read, nothing to keep.
        out.cut_short = None;
        return;
    }
    out.findings
        .retain(|f| !(f.path == cut.path && matches!(f.kind, FindingKind::TornTail { .. })));
    out.findings.push(Finding {
        path: cut.path.clone(),
        offset: cut.file_len,
        kind: FindingKind::CutShort {
            file_len: cut.file_len,
            segment_size: cut.segment_size,
        },
    });
    if !verify {
        out.report.removed_files.push(RemovedFile {
            path: cut.path.clone(),
            reason: RemovalReason::CutShort,
        });
        out.actions.push(Action::Restore {
            segment: pos,
            len: cut.segment_size,
        });
    }
}

/// Finds the trailing unused segments (planning the reset of a torn unused header) and
/// returns how many segments are in use.
fn trailing_unused<G: SegmentOps>(out: &mut Scan<G>, verify: bool) -> usize {
    let segments = &out.segments;
    let mut used_end = segments.len();
    while let Some(pos) = used_end.checked_sub(1) {
        let Some(seg) = segments.get(pos) else {
            break;
        };
        let bytes = seg.segment.region().all();
        // Frames start at the second sector; the first holds only the header. A reused
        // file's body is marked instead of zero (`reuse.rs`).
        let body_zero = crate::reuse::is_prepared_unused(bytes, seg.index);
        let is_last = pos + 1 == segments.len();
        let unused = match &seg.header {
            Err(HeaderIssue::Unused) => body_zero,
            Err(issue) if may_be_unused(issue, is_last) && body_zero => {
                // The header store of a rotation torn by a crash: nothing was written
                // after it (frames follow a synced header), so the segment is unused.
                out.report.removed_files.push(RemovedFile {
                    path: seg.path.clone(),
                    reason: RemovalReason::TornUnusedHeader,
                });
                if !verify {
                    // The whole sector: a torn store may have left garbage past the
                    // header's 64 bytes too, where the walk would later read it as a
                    // torn tail in front of the frames the next writer stores.
                    out.actions.push(Action::Zero {
                        segment: pos,
                        from: 0,
                        to: SECTOR_LEN,
                    });
                }
                true
            }
            _ => false,
        };
        if !unused {
            break;
        }
        used_end = pos;
    }
    used_end
}

/// Everything the walk over used segments carries from one segment to the next.
struct Walk {
    expected: Option<GlobalSeq>,
    max_token: Option<FencingToken>,
    /// The segment where `max_token` was last raised by a tenure frame.
    tenure_raised_in: Option<PathBuf>,
    cut: bool,
}

/// The first segment after `pos` (among the used ones) written under a token of at least
/// `floor`: it proves `pos` was synced, since the writer syncs a segment before it starts
/// the next. Segments of fenced writers (lower tokens) prove nothing.
fn later_segment<G>(
    segments: &[ScannedSegment<G>],
    used_end: usize,
    pos: usize,
    floor: Option<FencingToken>,
) -> Option<PathBuf> {
    let later = segments
        .iter()
        .take(used_end)
        .skip(pos + 1)
        .map(|s| s.header.as_ref().ok().map(|h| h.fencing));
    proving_successor(later, floor)
        .and_then(|i| segments.get(pos + 1 + i))
        .map(|s| s.path.clone())
}

/// Walks the used segments in order; returns what the walk ended with (whether the log
/// was cut, the highest token).
fn walk<G: SegmentOps>(
    out: &mut Scan<G>,
    used_end: usize,
    mode: ScanMode,
    progress: &mut dyn FnMut(u64, u64),
    visit: &mut dyn FnMut(&Frame<'_>),
) -> Result<Walk, OpenError> {
    let total: u64 = out
        .segments
        .iter()
        .take(used_end)
        .map(|s| s.segment.region().len() as u64)
        .sum();
    let mut done = 0;
    progress(done, total);
    let mut w = Walk {
        expected: None,
        max_token: None,
        tenure_raised_in: None,
        cut: false,
    };
    for pos in 0..used_end {
        let Some((path, header)) = out.segments.get(pos).map(|s| (s.path.clone(), s.header)) else {
            break;
        };
        let state = if w.cut {
            out.report.removed_files.push(RemovedFile {
                path: path.clone(),
                reason: RemovalReason::AfterCut,
            });
            out.actions.push(Action::Remove(path));
            SegmentState::Dropped
        } else {
            match header {
                Ok(header) => {
                    let ctx = SegmentCtx {
                        pos,
                        header,
                        path: &path,
                        used_end,
                        mode,
                    };
                    match walk_segment(out, &mut w, &ctx, visit)? {
                        Some(state) => state,
                        None => return Ok(w),
                    }
                }
                Err(HeaderIssue::Unused) if only_fenced_from(out, used_end, pos, w.max_token) => {
                    // A prepared, never used segment followed only by segments a fenced
                    // writer created: the log ends before it.
                    refuse_from(out, used_end, pos, w.max_token);
                    return Ok(w);
                }
                Err(issue) => {
                    if mode == ScanMode::Verify {
                        out.findings.push(Finding {
                            path,
                            offset: 0,
                            kind: FindingKind::BadHeader(issue),
                        });
                        return Ok(w);
                    }
                    return Err(OpenError::BadSegmentHeader { path, issue });
                }
            }
        };
        if let Some(seg) = out.segments.get_mut(pos) {
            seg.state = state;
            done += seg.segment.region().len() as u64;
            progress(done, total);
        }
    }
    Ok(w)
}

/// Whether segment `pos` (an all-zero header) has a zero body and every used segment after
/// it is unused too or was created under a token below `max`: a fenced writer's.
fn only_fenced_from<G: SegmentOps>(
    out: &Scan<G>,
    used_end: usize,
    pos: usize,
    max: Option<FencingToken>,
) -> bool {
    let Some(max) = max else {
        return false;
    };
    let zero_body = |p: usize| {
        out.segments
            .get(p)
            .is_some_and(|s| crate::reuse::is_prepared_unused(s.segment.region().all(), s.index))
    };
    zero_body(pos)
        && (pos + 1..used_end).all(|p| match out.segments.get(p).map(|s| &s.header) {
            Some(Ok(h)) => h.fencing < max,
            Some(Err(HeaderIssue::Unused)) => zero_body(p),
            _ => false,
        })
}

/// Marks segments `pos..used_end` as a fenced writer's (see [`only_fenced_from`]).
fn refuse_from<G: SegmentOps>(
    out: &mut Scan<G>,
    used_end: usize,
    pos: usize,
    max: Option<FencingToken>,
) {
    let Some(max) = max else {
        return;
    };
    for p in pos..used_end {
        let Some(seg) = out.segments.get_mut(p) else {
            continue;
        };
        if let Ok(h) = seg.header {
            seg.state = SegmentState::Refused;
            out.report.refused_segments.push(RefusedSegment {
                path: seg.path.clone(),
                token: h.fencing,
                fenced_by: max,
            });
            out.findings.push(Finding {
                path: seg.path.clone(),
                offset: 0,
                kind: FindingKind::StaleFencing {
                    token: h.fencing,
                    fenced_by: max,
                },
            });
        }
    }
}

/// Removes every segment after the last accepted one when a fenced writer's segment is
/// among them: nothing there is ever read, and the writer continues the log in its
/// newest segment as if they had never been made.
fn remove_fenced_tail<G>(out: &mut Scan<G>) {
    let Some(last) = out
        .segments
        .iter()
        .rposition(|s| matches!(s.state, SegmentState::Accepted(_)))
    else {
        return;
    };
    let tail = out.segments.get_mut(last + 1..).unwrap_or(&mut []);
    if !tail
        .iter()
        .any(|s| matches!(s.state, SegmentState::Refused))
    {
        return;
    }
    for seg in tail {
        out.report.removed_files.push(RemovedFile {
            path: seg.path.clone(),
            reason: RemovalReason::FencedWriter,
        });
        out.actions.push(Action::Remove(seg.path.clone()));
        seg.state = SegmentState::Dropped;
    }
}

/// Where [`walk_segment`] is in the log.
struct SegmentCtx<'a> {
    pos: usize,
    header: SegmentHeader,
    path: &'a Path,
    used_end: usize,
    mode: ScanMode,
}

/// Scans one used segment with a valid header. `Ok(None)` stops the walk (verify only).
fn walk_segment<G: SegmentOps>(
    out: &mut Scan<G>,
    w: &mut Walk,
    ctx: &SegmentCtx<'_>,
    visit: &mut dyn FnMut(&Frame<'_>),
) -> Result<Option<SegmentState>, OpenError> {
    let SegmentCtx {
        pos,
        header,
        path,
        mode,
        ..
    } = *ctx;
    // A later segment proves this one was synced, unless a fenced writer wrote it (the
    // floor includes the tenure frames read so far, so it is computed again after each).
    let later =
        |w: &Walk, out: &Scan<G>| later_segment(&out.segments, ctx.used_end, pos, w.max_token);
    if let Some(max) = w.max_token.filter(|max| header.fencing < *max) {
        out.report.refused_segments.push(RefusedSegment {
            path: path.to_path_buf(),
            token: header.fencing,
            fenced_by: max,
        });
        out.findings.push(Finding {
            path: path.to_path_buf(),
            offset: 0,
            kind: FindingKind::StaleFencing {
                token: header.fencing,
                fenced_by: max,
            },
        });
        return Ok(Some(SegmentState::Refused));
    }
    w.max_token = Some(
        w.max_token
            .map_or(header.fencing, |m| m.max(header.fencing)),
    );
    let (expected, gap) = match segment_start(w.expected, header.first_seq, &out.accepted) {
        SegmentStart::Continues => (None, false),
        SegmentStart::Gap { expected } => (Some(expected), true),
        SegmentStart::Overlap { expected } => (Some(expected), false),
    };
    if let Some(expected) = expected {
        let found = header.first_seq;
        let mismatch = OpenError::SequenceMismatch {
            path: path.to_path_buf(),
            expected,
            found,
        };
        match mode {
            ScanMode::Verify => {
                out.findings.push(Finding {
                    path: path.to_path_buf(),
                    offset: 0,
                    kind: FindingKind::SequenceMismatch { expected, found },
                });
                if !gap {
                    return Ok(None);
                }
            }
            ScanMode::Recover(RecoveryMode::SkipCorrupted | RecoveryMode::AcceptLoss) if gap => {
                out.report.skipped.push(gap_skipped(path, expected, found));
            }
            ScanMode::Recover(RecoveryMode::TolerateCorruptedTail) if gap => {
                w.cut = true;
                out.report.removed_files.push(RemovedFile {
                    path: path.to_path_buf(),
                    reason: RemovalReason::AfterCut,
                });
                out.actions.push(Action::Remove(path.to_path_buf()));
                return Ok(Some(SegmentState::Dropped));
            }
            ScanMode::Recover(_) => return Err(mismatch),
        }
    }
    let Some(region) = out
        .segments
        .get(pos)
        .map(|s| Arc::clone(s.segment.region()))
    else {
        return Ok(None);
    };
    let bytes = region.all();
    // A reused file holds an earlier life's bytes after this one's: in the newest
    // segment, where the log may end, they read as zeros (`reuse.rs`). An older one ends
    // with its seal, and anything else there is damage a later segment proves, as in a
    // fresh file.
    let source = match crate::format::header_is_reused(bytes) {
        true if later(w, out).is_none() => MappedSegment::zeros_from(
            bytes,
            crate::reuse::life_end(bytes, header.index, header.first_seq),
        ),
        true => MappedSegment::zeros_from(bytes, bytes.len()),
        false => MappedSegment::new(bytes),
    };
    let zero_from = source.zero_from();
    let mut accepted = AcceptedSegment {
        header,
        slots: Vec::new(),
        append_at: None,
        sealed: false,
        tenure: header.fencing,
        version: crate::format::header_version(bytes).unwrap_or(0),
    };
    let token = w.max_token.unwrap_or(header.fencing);
    let mut walker = SegmentWalker::new(
        source,
        header.index,
        SEGMENT_HEADER_LEN as u64,
        header.first_seq,
        token,
    );
    out.report.segments += 1;
    loop {
        let Ok(step) = walker.next_unit(KeptFrame::new);
        let token = walker.tenure();
        if Some(token) > w.max_token {
            w.max_token = Some(token);
            w.tenure_raised_in = Some(path.to_path_buf());
        }
        accepted.tenure = token;
        let (stop, after) = match step {
            Step::Unit(frames) => {
                out.report.frames += frames.len() as u64;
                // A segment with a valid header is at most `MAX_SEGMENT_SIZE` (< 4 GiB) long.
                accepted.slots.extend(
                    frames
                        .iter()
                        .map(|f| u32::try_from(f.offset).unwrap_or(MISSING)),
                );
                if let Some(last) = frames.last() {
                    out.last_wall_ms = last.header.wall_ms;
                }
                if mode != ScanMode::Verify {
                    for kept in &frames {
                        visit(&kept.frame_in(bytes));
                    }
                }
                continue;
            }
            Step::Seal => {
                accepted.sealed = true;
                break;
            }
            Step::End { at } if later(w, out).is_none() => {
                accepted.append_at = Some(at as usize);
                break;
            }
            // Zeros where the seal should be, yet a later segment exists.
            Step::End { at } => (
                Stop {
                    unit_start: at,
                    bad_at: at,
                    lost_from: walker.seq(),
                    issue: FrameIssue::MissingSeal,
                },
                None,
            ),
            Step::Stop(stop) => {
                let Ok(after) = walker.look_past(&stop);
                (stop, Some(after))
            }
        };
        match handle_stop(out, w, path, &stop, after, later(w, out), mode, zero_from)? {
            StopOutcome::CutHere => {
                accepted.append_at = Some(stop.unit_start as usize);
                break;
            }
            StopOutcome::EndHere => {
                // Sequences seen in the unreadable rest are never reused.
                if let Some(max) = after.and_then(|a| a.max_seen) {
                    walker.raise_seq(GlobalSeq(max.0.saturating_add(1)));
                }
                break;
            }
            StopOutcome::Resume(resume_at, resume_seq) => {
                let holes = resume_seq.0.saturating_sub(walker.seq().0);
                accepted
                    .slots
                    .extend(std::iter::repeat_n(MISSING, holes as usize));
                walker.resume(resume_at, resume_seq);
            }
        }
    }
    let seq = walker.seq();
    w.expected = Some(seq);
    out.last_seq = GlobalSeq(seq.0.saturating_sub(1));
    Ok(Some(SegmentState::Accepted(accepted)))
}

/// What recovery keeps of a frame while its unit is read: where it is and how long its
/// parts are, so it can be handed to a visitor from the mapping once the unit is complete.
struct KeptFrame {
    offset: u64,
    header: FrameHeader,
    key_len: usize,
    payload_len: usize,
    len_on_disk: usize,
}

impl KeptFrame {
    fn new(offset: u64, frame: &Frame<'_>) -> Self {
        KeptFrame {
            offset,
            header: frame.header,
            key_len: frame.key.len(),
            payload_len: frame.payload.len(),
            len_on_disk: frame.len_on_disk,
        }
    }

    /// The frame again, borrowed from `bytes`, the segment it was decoded from.
    fn frame_in<'a>(&self, bytes: &'a [u8]) -> Frame<'a> {
        let key_at = (self.offset as usize).saturating_add(FRAME_HEADER_LEN);
        let payload_at = key_at.saturating_add(self.key_len);
        Frame {
            header: self.header,
            key: bytes.get(key_at..payload_at).unwrap_or(&[]),
            payload: bytes
                .get(payload_at..payload_at.saturating_add(self.payload_len))
                .unwrap_or(&[]),
            len_on_disk: self.len_on_disk,
        }
    }
}

enum StopOutcome {
    /// The log ends at the stop's unit start; appends may continue there.
    CutHere,
    /// Nothing more in this segment is read or appended to.
    EndHere,
    /// Scanning resumes at (offset, sequence).
    Resume(u64, GlobalSeq),
}

#[allow(clippy::too_many_arguments)]
fn handle_stop<G: SegmentOps>(
    out: &mut Scan<G>,
    w: &mut Walk,
    path: &Path,
    stop: &Stop,
    after: Option<After>,
    later_segment: Option<PathBuf>,
    mode: ScanMode,
    zero_from: usize,
) -> Result<StopOutcome, OpenError> {
    let unit_start = stop.unit_start as usize;
    let resync = after.and_then(|a| a.resync);
    let pos = out
        .segments
        .iter()
        .position(|s| s.path == path)
        .unwrap_or(0);
    let dropped = zero_from.saturating_sub(unit_start) as u64;
    let proof = proof_of(path, after.as_ref(), later_segment);
    let Some(proof) = proof else {
        // Torn tail: nothing proves the lost bytes were ever synced.
        out.findings.push(Finding {
            path: path.to_path_buf(),
            offset: stop.unit_start,
            kind: FindingKind::TornTail {
                bytes: dropped,
                issue: stop.issue,
            },
        });
        out.report.torn_tail = Some(TornTail {
            path: path.to_path_buf(),
            offset: stop.unit_start,
            bytes_dropped: dropped,
            issue: stop.issue,
        });
        if dropped > 0 {
            out.actions.push(Action::Zero {
                segment: pos,
                from: unit_start,
                to: zero_from,
            });
        }
        return Ok(StopOutcome::CutHere);
    };
    // Damage inside a loss accepted earlier is passed over in every mode.
    let accepted = after.is_some_and(|a| a.resume_in_accepted(stop, &out.accepted).is_some());
    let recovery_mode = match mode {
        _ if accepted => RecoveryMode::SkipCorrupted,
        ScanMode::Recover(m) => m,
        ScanMode::Verify => {
            out.findings.push(Finding {
                path: path.to_path_buf(),
                offset: stop.bad_at,
                kind: FindingKind::CorruptFrame {
                    issue: stop.issue,
                    proof: proof.clone(),
                },
            });
            RecoveryMode::SkipCorrupted
        }
    };
    let resumed_at = match recovery_mode {
        RecoveryMode::AbsoluteConsistency => {
            return Err(OpenError::CorruptDurableData {
                path: path.to_path_buf(),
                offset: stop.bad_at,
                issue: stop.issue,
                proof,
            })
        }
        RecoveryMode::TolerateCorruptedTail => None,
        RecoveryMode::SkipCorrupted | RecoveryMode::AcceptLoss => resync,
    };
    let skipped_to = resumed_at.map_or(zero_from.max(unit_start) as u64, |(off, _)| off);
    out.report
        .skipped
        .push(stop.skipped(path, skipped_to, resumed_at.map(|(_, seq)| seq), proof));
    match (recovery_mode, resumed_at) {
        (RecoveryMode::TolerateCorruptedTail, _) => {
            w.cut = true;
            if dropped > 0 {
                out.actions.push(Action::Zero {
                    segment: pos,
                    from: unit_start,
                    to: zero_from,
                });
            }
            Ok(StopOutcome::CutHere)
        }
        (_, Some((off, seq))) => Ok(StopOutcome::Resume(off, seq)),
        (_, None) => Ok(StopOutcome::EndHere),
    }
}

/// Gives a segment file that was cut short its full length `len` again, atomically: a
/// new file of `len` zeroed bytes is prepared under a temporary name, the cut file's
/// bytes are copied into it and synced, and it is renamed over the cut file (the
/// directory synced). A crash before the rename leaves the cut file and a leftover that
/// the next recovery removes; after it, the whole file. Returns the new file, mapped.
fn restore_length<S: Storage>(
    storage: &S,
    dir: &Path,
    seg: &ScannedSegment<S::Segment>,
    len: u64,
) -> Result<S::Segment, OpenError> {
    let tmp = crate::segment::temp_path(dir, seg.index);
    storage
        .create_zeroed(&tmp, len)
        .map_err(|e| io_err(IoOp::Allocate, &tmp, e))?;
    let copy = storage
        .open_segment(&tmp, true)
        .map_err(|e| io_err(IoOp::Open, &tmp, e))?;
    let bytes = seg.segment.region().all();
    copy.write(0, &[bytes])
        .map_err(|e| io_err(IoOp::Write, &tmp, e))?;
    copy.sync(0, bytes.len())
        .map_err(|e| io_err(IoOp::Sync, &tmp, e))?;
    drop(copy);
    storage
        .replace(&tmp, &seg.path)
        .map_err(|e| io_err(IoOp::Rename, &seg.path, e))?;
    storage
        .sync_dir(dir)
        .map_err(|e| io_err(IoOp::DirSync, dir, e))?;
    storage
        .open_segment(&seg.path, true)
        .map_err(|e| io_err(IoOp::Open, &seg.path, e))
}

/// Carries out the repairs planned by a recovery scan: zero torn tails and sync them,
/// restore the length of a segment file cut short, remove leftover files, then sync the
/// directory once.
pub(crate) fn apply<S: Storage>(
    storage: &S,
    dir: &Path,
    scan: &mut Scan<S::Segment>,
) -> Result<(), OpenError> {
    static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];
    let mut removed = false;
    let actions = std::mem::take(&mut scan.actions);
    for action in &actions {
        match action {
            Action::Restore { segment, len } => {
                let Some(seg) = scan.segments.get_mut(*segment) else {
                    continue;
                };
                seg.segment = restore_length(storage, dir, seg, *len)?;
            }
            Action::Zero { segment, from, to } => {
                let Some(seg) = scan.segments.get(*segment) else {
                    continue;
                };
                let mut at = *from;
                while at < *to {
                    let n = (*to - at).min(ZEROS.len());
                    seg.segment
                        .write(at, &[ZEROS.get(..n).unwrap_or(&[])])
                        .map_err(|e| io_err(IoOp::Write, &seg.path, e))?;
                    at += n;
                }
                seg.segment
                    .sync(*from, to.saturating_sub(*from))
                    .map_err(|e| io_err(IoOp::Sync, &seg.path, e))?;
            }
            Action::Remove(path) => {
                match storage.remove(path) {
                    Ok(()) => {}
                    // Gone already: a deposed writer still running elsewhere finished or
                    // dropped its own preparation. Either way the file is not there.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io_err(IoOp::Remove, path, e)),
                }
                removed = true;
            }
        }
    }
    if removed {
        storage
            .sync_dir(dir)
            .map_err(|e| io_err(IoOp::DirSync, dir, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::format::align_up;

    #[test]
    fn align_up_rounds_to_frames() {
        assert_eq!(align_up(49), Some(56));
        assert_eq!(align_up(48), Some(48));
    }
}
