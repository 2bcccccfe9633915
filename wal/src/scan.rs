//! Read-only scans of a log directory from outside its writer, for tools (`tidelog dump`,
//! `tidelog stats`) that must work while another process holds the log open and appends.
//!
//! Unlike [`Wal::open`](crate::Wal::open) and [`verify`](crate::verify), a scan maps
//! nothing: it reads segment files with positioned reads into its own buffer, so a live
//! writer storing into the same pages never changes bytes under a borrow (a frame read
//! half-written simply does not verify). It takes no lock, creates, repairs and removes
//! nothing.
//!
//! What a scan returns is a snapshot: the segments and headers as they were when
//! [`LogSnapshot::take`] listed the directory, and the newest segment up to what it held
//! when it was read. The rules, and why they hold while a writer appends:
//!
//! - A segment followed by a later one (valid header, not fenced) is *final*: the writer
//!   seals and syncs a segment before it writes the next one's header (`writer.rs`), and
//!   the snapshot read that header before it reads any segment body. A frame in a final
//!   segment that does not verify, or a missing seal, is damage to durable data
//!   ([`ScanError::CorruptFrame`]).
//! - In the newest segment the scan stops quietly at the first unit that does not verify:
//!   a torn tail left by a crash, or a unit the writer is storing right now
//!   ([`LogEnd::Tail`]). It is damage to durable data only if a valid frame further on was
//!   written when the bad one was already durable (its durable hint reaches it) *and*
//!   reading the bad one again still fails: a live writer may have finished it between
//!   the two reads, in which case the scan carries on.
//! - `*.seg.tmp` files (a segment being prepared) are ignored; trailing segments with an
//!   all-zero header are prepared and hold nothing yet (as recovery decides, a torn header
//!   over a zero body in the last segment counts as prepared).
//! - A segment written under a fencing token below an earlier segment's is refused: its
//!   frames are never returned (as recovery does), and it is listed in
//!   [`LogRecords::refused`].
//!
//! With [`ScanOptions::skip_corrupted`] the scan skips damaged durable data instead of
//! failing, the way [`RecoveryMode::SkipCorrupted`](crate::RecoveryMode::SkipCorrupted)
//! does: it resumes at the next valid unit and reports every skipped region in
//! [`LogRecords::skipped`]. A log recovered in that mode keeps its damaged bytes on disk,
//! so reading it again needs the same option.

#![deny(clippy::indexing_slicing)]

use crate::format::{
    decode_frame, Frame, FrameCheck, FrameHeader, FrameIssue, HeaderIssue, SegmentHeader,
    FRAME_HEADER_LEN, SECTOR_LEN, SEGMENT_HEADER_LEN,
};
use crate::ids::{FencingToken, SegmentIndex, SegmentOffset};
use crate::io::IoOp;
use crate::recovery::{DurabilityProof, RefusedSegment, SkippedRegion};
use crate::segment::{classify, segment_path, EntryKind};
use crate::walker::{
    frame_read_len, gap_skipped, may_be_unused, proof_of, proving_successor, segment_start,
    SegmentSource, SegmentStart, SegmentWalker, Step, Stop,
};
use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use tidelog_watermarks::{GlobalSeq, LaneId, LaneSeq};

/// Bytes read from a segment at a time (more when one frame is larger).
const WINDOW_BYTES: usize = 1 << 20;

/// Why a read-only scan could not go on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScanError {
    /// The OS refused an operation (a missing directory, permissions, a segment removed
    /// while it was read).
    #[error("I/O error {op} {}: {source}", path.display())]
    Io {
        /// What was being done.
        op: IoOp,
        /// On which file or directory.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// A file that is not a segment sits in the log directory.
    #[error("{} is not a tidelog segment; a log directory holds only segment files: move it away", path.display())]
    ForeignFile {
        /// The file.
        path: PathBuf,
    },
    /// Segment indexes are not contiguous: a segment file is missing.
    #[error("segment {missing} is missing before {}; the log cannot be read past a gap: restore it from a backup", path.display())]
    SegmentGap {
        /// The index that is missing.
        missing: SegmentIndex,
        /// The first file after the gap.
        path: PathBuf,
    },
    /// A segment header does not verify (or is of a format version this build cannot
    /// read: see [`HeaderIssue::UnsupportedVersion`]).
    #[error("segment {} has an invalid header: {issue}", path.display())]
    BadSegmentHeader {
        /// The segment file.
        path: PathBuf,
        /// What is wrong.
        issue: HeaderIssue,
    },
    /// A segment does not start where the previous one ended.
    #[error("segment {} starts at global sequence {found} but the log continues at {expected}; records are missing or duplicated", path.display())]
    SequenceMismatch {
        /// The segment file.
        path: PathBuf,
        /// Where the log continues.
        expected: GlobalSeq,
        /// Where the segment claims to start.
        found: GlobalSeq,
    },
    /// A frame that had been durable is damaged.
    #[error("durable data is corrupt in {} at offset {offset}: {issue} (durability proven by {proof}); the records from global sequence {first_lost} on in this segment cannot be read: restore the segment from a backup, or read past the damage knowingly (skip corrupted data)", path.display())]
    CorruptFrame {
        /// The segment file.
        path: PathBuf,
        /// Byte offset of the damaged frame.
        offset: SegmentOffset,
        /// First global sequence that cannot be read.
        first_lost: GlobalSeq,
        /// What is wrong.
        issue: FrameIssue,
        /// Why the damaged bytes must have been durable.
        proof: DurabilityProof,
    },
}

impl ScanError {
    /// Whether the error means the log on disk is damaged (as opposed to an I/O failure
    /// or a log written by a newer tidelog).
    #[must_use]
    pub fn is_corruption(&self) -> bool {
        match self {
            ScanError::Io { .. } => false,
            ScanError::BadSegmentHeader { issue, .. } => !matches!(
                issue,
                HeaderIssue::UnsupportedVersion { .. } | HeaderIssue::UnknownFlags { .. }
            ),
            ScanError::ForeignFile { .. }
            | ScanError::SegmentGap { .. }
            | ScanError::SequenceMismatch { .. }
            | ScanError::CorruptFrame { .. } => true,
        }
    }
}

fn io_err(op: IoOp, path: &Path) -> impl FnOnce(io::Error) -> ScanError + '_ {
    move |source| ScanError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// What a segment is in the snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SegmentRole {
    /// A later segment follows it: it is final and must end with a seal.
    Final,
    /// The newest segment with data: a writer may be appending to it.
    Newest,
    /// Written by a writer that had been fenced: never read.
    Refused {
        /// The higher token of an earlier segment.
        fenced_by: FencingToken,
    },
    /// Prepared ahead of need, holds nothing yet.
    Prepared,
}

/// One segment file of a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentInfo {
    /// Its index.
    pub index: SegmentIndex,
    /// Its path.
    pub path: PathBuf,
    /// The file's length in bytes.
    pub len_bytes: u64,
    /// Its header (`None` for a prepared segment).
    pub header: Option<SegmentHeader>,
    /// What it is.
    pub role: SegmentRole,
}

/// Options of a scan.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScanOptions {
    /// Skip damaged durable data (reported in [`LogRecords::skipped`]) instead of stopping
    /// with [`ScanError::CorruptFrame`].
    pub skip_corrupted: bool,
}

/// A record read by a scan, with where it lies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScannedRecord {
    /// Position in the global order.
    pub global_seq: GlobalSeq,
    /// Its lane.
    pub lane: LaneId,
    /// Position within the lane.
    pub lane_seq: LaneSeq,
    /// Wall clock given at append, milliseconds since the Unix epoch.
    pub wall_ms: u64,
    /// Idempotency key (may be empty).
    pub key: Vec<u8>,
    /// Payload.
    pub payload: Vec<u8>,
    /// The segment holding it.
    pub segment: SegmentIndex,
    /// Byte offset of its frame in that segment.
    pub offset: SegmentOffset,
}

/// What a scan read from one segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentSummary {
    /// The segment.
    pub index: SegmentIndex,
    /// First global sequence read in it.
    pub first_seq: Option<GlobalSeq>,
    /// Last global sequence read in it.
    pub last_seq: Option<GlobalSeq>,
    /// Records read in it.
    pub records: u64,
    /// Whether it ends with a valid seal.
    pub sealed: bool,
}

/// How the scanned log ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LogEnd {
    /// No segment holds data.
    Empty,
    /// Zeros after the last complete unit of the newest segment: a clean end.
    Clean {
        /// The newest segment.
        path: PathBuf,
        /// Where the next unit would go.
        offset: SegmentOffset,
    },
    /// The newest segment is sealed; a writer continues in the next one.
    Sealed {
        /// The newest segment.
        path: PathBuf,
    },
    /// Bytes that do not verify after the last complete unit of the newest segment,
    /// and nothing proves them durable: a torn tail left by a crash (recovery would cut
    /// it), or a unit a writer was storing while the scan read it.
    Tail {
        /// The newest segment.
        path: PathBuf,
        /// Where the last complete unit ends.
        offset: SegmentOffset,
        /// What the first invalid frame looked like.
        issue: FrameIssue,
    },
    /// (With [`ScanOptions::skip_corrupted`].) The newest segment ends in damaged durable
    /// data, reported in [`LogRecords::skipped`].
    Skipped {
        /// The newest segment.
        path: PathBuf,
    },
}

/// The segments of a log directory, listed and their headers read at one moment. Take
/// it with [`LogSnapshot::take`], then read records with [`LogSnapshot::records`].
///
/// ```
/// use tidelog_wal::scan::{LogSnapshot, ScanOptions};
/// use tidelog_wal::{GlobalSeq, LaneId, LaneSeq, NewFrame, Wal, WalOptions};
///
/// let dir = tempfile::tempdir()?;
/// let (mut wal, _) = Wal::open(dir.path(), WalOptions { segment_size: 1 << 16, ..WalOptions::default() })?;
/// let frame = NewFrame {
///     global_seq: GlobalSeq(1), lane: LaneId(2), lane_seq: LaneSeq(1),
///     wall_ms: 0, key: b"", payload: b"hello",
/// };
/// wal.append(&[frame])?;
/// wal.sync()?;
/// // The writer is still open: the scan reads beside it.
/// let snapshot = LogSnapshot::take(dir.path())?;
/// let mut records = snapshot.records(GlobalSeq(1), ScanOptions::default());
/// let first = records.next().unwrap()?;
/// assert_eq!((first.lane, first.payload.as_slice()), (LaneId(2), &b"hello"[..]));
/// assert!(records.next().is_none());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct LogSnapshot {
    dir: PathBuf,
    segments: Vec<SegmentInfo>,
    /// Sequence ranges whose loss was accepted (from the extent record).
    accepted: Vec<(GlobalSeq, GlobalSeq)>,
    /// Where [`LogSnapshot::take_readable`] stopped listing segments, if it did: the
    /// scan yields this problem after the records of the segments before it.
    cut: Option<Cut>,
}

/// A problem in the list of segments that ends a [`LogSnapshot::take_readable`] snapshot.
#[derive(Debug, Clone)]
enum Cut {
    /// A segment index is missing before `path`.
    Gap {
        missing: SegmentIndex,
        path: PathBuf,
    },
    /// The header of `path` does not verify.
    BadHeader { path: PathBuf, issue: HeaderIssue },
}

impl Cut {
    fn error(&self) -> ScanError {
        match self {
            Cut::Gap { missing, path } => ScanError::SegmentGap {
                missing: *missing,
                path: path.clone(),
            },
            Cut::BadHeader { path, issue } => ScanError::BadSegmentHeader {
                path: path.clone(),
                issue: *issue,
            },
        }
    }
}

impl LogSnapshot {
    /// Lists the log directory `dir` and reads every segment header, read-only.
    ///
    /// # Errors
    /// A missing or unreadable directory, a foreign file, a gap in segment indexes, or a
    /// header that does not verify in a segment that holds data.
    pub fn take(dir: &Path) -> Result<LogSnapshot, ScanError> {
        Self::list(dir, false)
    }

    /// Like [`take`](Self::take), but a gap in segment indexes or a segment whose header
    /// does not verify (a bad header, a segment file cut short) ends the snapshot instead
    /// of failing it: the snapshot holds the segments before the problem, and
    /// [`records`](Self::records) yields their records, then the problem as its error
    /// ([`ScanError::SegmentGap`] or [`ScanError::BadSegmentHeader`], naming the file).
    /// The newest segment's file cut short is read too, up to the cut, before the error
    /// ([`HeaderIssue::WrongSize`]).
    /// For reading what is still readable of a damaged log (`tidelog dump`); what the
    /// log is worth (verify, recovery) is decided with [`take`](Self::take).
    ///
    /// # Errors
    /// A missing or unreadable directory, or a foreign file.
    pub fn take_readable(dir: &Path) -> Result<LogSnapshot, ScanError> {
        Self::list(dir, true)
    }

    /// Whether the snapshot was ended early by a gap or a bad header
    /// ([`take_readable`](Self::take_readable)).
    #[must_use]
    pub fn is_cut(&self) -> bool {
        self.cut.is_some()
    }

    fn list(dir: &Path, readable: bool) -> Result<LogSnapshot, ScanError> {
        let mut cut = None;
        let mut names: Vec<_> = std::fs::read_dir(dir)
            .and_then(|entries| entries.map(|e| e.map(|e| e.file_name())).collect())
            .map_err(io_err(IoOp::List, dir))?;
        names.sort();
        let mut indexes = Vec::new();
        for name in names {
            match classify(&name) {
                Some(EntryKind::Segment(index)) => indexes.push(index),
                // A segment being prepared, or the leftover of an interrupted preparation.
                Some(EntryKind::Temp(_) | EntryKind::Spare(_)) => {}
                None => {
                    return Err(ScanError::ForeignFile {
                        path: dir.join(name),
                    })
                }
            }
        }
        indexes.sort();
        for pair in indexes.windows(2) {
            if let [a, b] = pair {
                if a.0.checked_add(1) != Some(b.0) {
                    let gap = Cut::Gap {
                        missing: SegmentIndex(a.0.saturating_add(1)),
                        path: segment_path(dir, *b),
                    };
                    if !readable {
                        return Err(gap.error());
                    }
                    cut = Some((gap, *b));
                    break;
                }
            }
        }
        let mut cut = cut.map(|(gap, from)| {
            indexes.retain(|i| *i < from);
            gap
        });
        let mut files = Vec::with_capacity(indexes.len());
        let mut headers = Vec::with_capacity(indexes.len());
        for index in indexes {
            let mut file = SegmentFile::open(segment_path(dir, index))?;
            headers.push(file.header(index)?);
            files.push((index, file));
        }
        let used_end = used_end(&mut files, &headers)?;
        // The newest segment's file cut short: read up to the cut, then the problem.
        let mut cut_short = false;
        if let (true, None, Some(pos)) = (readable, &cut, used_end.checked_sub(1)) {
            if let (Some((index, file)), Some(header)) = (files.get_mut(pos), headers.get_mut(pos))
            {
                if let (Err(issue @ HeaderIssue::WrongSize { .. }), Some(found)) =
                    (*header, file.cut_short_header(*index)?)
                {
                    cut = Some(Cut::BadHeader {
                        path: file.path.clone(),
                        issue,
                    });
                    *header = Ok(found);
                    cut_short = true;
                }
            }
        }
        let mut segments = Vec::with_capacity(files.len());
        let mut max_token: Option<FencingToken> = None;
        for (pos, (index, file)) in files.into_iter().enumerate() {
            let header = headers.get(pos).and_then(|h| h.as_ref().ok()).copied();
            let role = match header {
                _ if pos >= used_end => SegmentRole::Prepared,
                None => {
                    let issue = match headers.get(pos) {
                        Some(Err(issue)) => *issue,
                        _ => HeaderIssue::Unused,
                    };
                    let bad = Cut::BadHeader {
                        path: file.path,
                        issue,
                    };
                    if !readable {
                        return Err(bad.error());
                    }
                    cut = Some(bad);
                    break;
                }
                Some(h) => match max_token.filter(|max| h.fencing < *max) {
                    Some(fenced_by) => SegmentRole::Refused { fenced_by },
                    None => {
                        let floor = max_token.map_or(h.fencing, |m| m.max(h.fencing));
                        max_token = Some(floor);
                        let later = headers
                            .iter()
                            .take(used_end)
                            .skip(pos + 1)
                            .map(|h| h.as_ref().ok().map(|h| h.fencing));
                        let followed = proving_successor(later, Some(floor)).is_some();
                        if followed {
                            SegmentRole::Final
                        } else {
                            SegmentRole::Newest
                        }
                    }
                },
            };
            segments.push(SegmentInfo {
                index,
                path: file.path,
                len_bytes: file.len,
                header: if role == SegmentRole::Prepared {
                    None
                } else {
                    header
                },
                role,
            });
        }
        if cut.is_some() && !cut_short {
            // Followed by the segment the problem is in: its end is not the log's end.
            if let Some(last) = segments
                .iter_mut()
                .rev()
                .find(|s| s.role == SegmentRole::Newest)
            {
                last.role = SegmentRole::Final;
            }
        }
        Ok(LogSnapshot {
            dir: dir.to_path_buf(),
            segments,
            accepted: Vec::new(),
            cut,
        })
    }

    /// Passes over gaps and damage inside these ranges of sequences, whose loss was
    /// accepted explicitly (the extent record's
    /// [`accepted_losses`](crate::extent::Extent::accepted_losses)), as recovery does:
    /// they are neither errors nor skipped regions.
    #[must_use]
    pub fn accepting(mut self, accepted: &[(GlobalSeq, GlobalSeq)]) -> Self {
        self.accepted = accepted.to_vec();
        self
    }

    /// The log directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Every segment file, in index order.
    #[must_use]
    pub fn segments(&self) -> &[SegmentInfo] {
        &self.segments
    }

    /// Bytes of the segments that hold data (what a full scan reads at most).
    #[must_use]
    pub fn data_bytes(&self) -> u64 {
        self.segments
            .iter()
            .filter(|s| matches!(s.role, SegmentRole::Final | SegmentRole::Newest))
            .map(|s| s.len_bytes)
            .sum()
    }

    /// The records from global sequence `from` on, in order. Segments wholly below `from`
    /// are passed over without being read (so they are not checked either).
    #[must_use]
    pub fn records(&self, from: GlobalSeq, options: ScanOptions) -> LogRecords<'_> {
        LogRecords {
            snapshot: self,
            options,
            from,
            pos: 0,
            cursor: None,
            expected: None,
            ready: VecDeque::new(),
            end: None,
            done: false,
            bytes_before: 0,
            skipped: Vec::new(),
            refused: Vec::new(),
            summaries: Vec::new(),
            last_seq: None,
            last_wall_ms: None,
            max_token: None,
        }
    }
}

/// How many leading segments hold data: trailing segments with an all-zero header (or,
/// for the last one, a torn header) over a zero body are prepared and unused. A header
/// that did not verify over a non-zero body is read again: a writer may have started the
/// segment after the snapshot read its header, and then it is not part of the snapshot.
fn used_end(
    files: &mut [(SegmentIndex, SegmentFile)],
    headers: &[Result<SegmentHeader, HeaderIssue>],
) -> Result<usize, ScanError> {
    let count = files.len();
    let mut used_end = count;
    while let Some(pos) = used_end.checked_sub(1) {
        let (Some((index, file)), Some(header)) = (files.get_mut(pos), headers.get(pos)) else {
            break;
        };
        let unused = match header {
            Ok(_) => false,
            Err(issue) => {
                (may_be_unused(issue, pos + 1 == count) && file.is_prepared_unused(*index)?)
                    || file.header(*index)?.is_ok()
            }
        };
        if !unused {
            break;
        }
        used_end = pos;
    }
    Ok(used_end)
}

/// A segment file read through a window of positioned reads.
#[derive(Debug)]
struct SegmentFile {
    file: File,
    path: PathBuf,
    len: u64,
    /// File offset of `buf[0]`.
    start: u64,
    buf: Vec<u8>,
}

impl SegmentFile {
    fn open(path: PathBuf) -> Result<SegmentFile, ScanError> {
        let file = File::open(&path).map_err(io_err(IoOp::Open, &path))?;
        let len = file.metadata().map_err(io_err(IoOp::Open, &path))?.len();
        Ok(SegmentFile {
            file,
            path,
            len,
            start: 0,
            buf: Vec::new(),
        })
    }

    /// Reads the header afresh.
    fn header(
        &mut self,
        index: SegmentIndex,
    ) -> Result<Result<SegmentHeader, HeaderIssue>, ScanError> {
        self.invalidate();
        let len = self.len;
        let head = self.bytes(0, SEGMENT_HEADER_LEN)?;
        Ok(SegmentHeader::decode_head(head, len, index))
    }

    /// The header of a file cut short ([`SegmentHeader::decode_cut_short`]), if it is one.
    fn cut_short_header(
        &mut self,
        index: SegmentIndex,
    ) -> Result<Option<SegmentHeader>, ScanError> {
        self.invalidate();
        let len = self.len;
        let head = self.bytes(0, SEGMENT_HEADER_LEN)?;
        Ok(SegmentHeader::decode_cut_short(head, len, index))
    }

    /// Forgets what was read, so the next access reads the file again.
    fn invalidate(&mut self) {
        self.buf.clear();
    }

    /// Whether the file, its header all zeros or torn, is a prepared segment never used:
    /// a zero body, or a reused file's mark (as recovery decides, `reuse.rs`).
    fn is_prepared_unused(&mut self, index: SegmentIndex) -> Result<bool, ScanError> {
        let head = self.bytes(0, SECTOR_LEN + crate::format::REUSE_MARK_LEN)?;
        if crate::format::has_reuse_mark(head, index) {
            return Ok(true);
        }
        let len = self.len;
        self.is_zero(SECTOR_LEN as u64, len)
    }
}

impl SegmentSource for SegmentFile {
    type Error = ScanError;

    fn len(&self) -> u64 {
        self.len
    }

    /// Up to `want` bytes at `at` (fewer at the end of the file).
    fn bytes(&mut self, at: u64, want: usize) -> Result<&[u8], ScanError> {
        let end = at.saturating_add(want as u64).min(self.len);
        let Some(n) = end
            .checked_sub(at)
            .and_then(|n| usize::try_from(n).ok())
            .filter(|n| *n > 0)
        else {
            return Ok(&[]);
        };
        let buffered_end = self.start.saturating_add(self.buf.len() as u64);
        if at < self.start || end > buffered_end {
            let size = (self.len - at).min(n.max(WINDOW_BYTES) as u64);
            let size = usize::try_from(size).unwrap_or(n);
            self.buf.clear();
            self.buf.resize(size, 0);
            self.start = at;
            if let Err(e) = self.file.read_exact_at(&mut self.buf, at) {
                self.buf.clear();
                return Err(io_err(IoOp::Read, &self.path)(e));
            }
        }
        let off = usize::try_from(at - self.start).unwrap_or(usize::MAX);
        Ok(self.buf.get(off..off.saturating_add(n)).unwrap_or_default())
    }

    /// Whether `[from, to)` holds only zeros.
    fn is_zero(&mut self, from: u64, to: u64) -> Result<bool, ScanError> {
        let mut at = from;
        while at < to.min(self.len) {
            let want = usize::try_from((to - at).min(WINDOW_BYTES as u64)).unwrap_or(0);
            let chunk = self.bytes(at, want)?;
            if chunk.is_empty() {
                break;
            }
            if chunk.iter().any(|&b| b != 0) {
                return Ok(false);
            }
            at += chunk.len() as u64;
        }
        Ok(true)
    }

    /// Decodes the frame at `at`, reading all of it into the window first.
    fn frame(
        &mut self,
        at: u64,
        check: &FrameCheck,
    ) -> Result<Result<Frame<'_>, FrameIssue>, ScanError> {
        let remaining = self.len.saturating_sub(at);
        let want = frame_read_len(self.bytes(at, FRAME_HEADER_LEN)?, remaining);
        let bytes = self.bytes(at, want)?;
        Ok(decode_frame(bytes, 0, check))
    }
}

/// A frame read by a scan, its key and payload copied out of the window.
struct OwnedFrame {
    header: FrameHeader,
    key: Vec<u8>,
    payload: Vec<u8>,
}

impl OwnedFrame {
    fn new(frame: &Frame<'_>) -> Self {
        OwnedFrame {
            header: frame.header,
            key: frame.key.to_vec(),
            payload: frame.payload.to_vec(),
        }
    }
}

/// The segment being read.
struct Cursor {
    walker: SegmentWalker<SegmentFile>,
    index: SegmentIndex,
    role: SegmentRole,
    summary: SegmentSummary,
    /// A unit start that was read again after a later frame proved it durable.
    reread_at: Option<u64>,
    /// The next segment that holds data, if any (proof that this one was synced).
    next_path: Option<PathBuf>,
    /// The segment's header says its file is reused: bytes after its last unit may be an
    /// earlier life's.
    reused: bool,
}

impl Cursor {
    fn file(&self) -> &SegmentFile {
        self.walker.source()
    }
}

/// The records of a [`LogSnapshot`], in global order. Yields `Err` once, then ends; after
/// the last record, [`end`](Self::end) says how the log ended.
pub struct LogRecords<'a> {
    snapshot: &'a LogSnapshot,
    options: ScanOptions,
    from: GlobalSeq,
    /// Position of the next segment to open.
    pos: usize,
    cursor: Option<Cursor>,
    /// Where the next segment must start.
    expected: Option<GlobalSeq>,
    ready: VecDeque<ScannedRecord>,
    end: Option<LogEnd>,
    done: bool,
    /// Bytes of the segments already passed.
    bytes_before: u64,
    skipped: Vec<SkippedRegion>,
    refused: Vec<RefusedSegment>,
    summaries: Vec<SegmentSummary>,
    last_seq: Option<GlobalSeq>,
    last_wall_ms: Option<u64>,
    /// The highest fencing token of the segments and tenure frames read so far: a later
    /// segment created under a lower one is a fenced writer's.
    max_token: Option<FencingToken>,
}

impl std::fmt::Debug for LogRecords<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogRecords")
            .field("dir", &self.snapshot.dir)
            .field("from", &self.from)
            .field("bytes_read", &self.bytes_read())
            .field("end", &self.end)
            .finish_non_exhaustive()
    }
}

impl Iterator for LogRecords<'_> {
    type Item = Result<ScannedRecord, ScanError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(record) = self.ready.pop_front() {
                return Some(Ok(record));
            }
            if self.done {
                return None;
            }
            if let Err(e) = self.step() {
                self.done = true;
                self.cursor = None;
                return Some(Err(e));
            }
        }
    }
}

impl LogRecords<'_> {
    /// How the log ended, once every record has been returned (`None` before, or after
    /// an error).
    #[must_use]
    pub fn end(&self) -> Option<&LogEnd> {
        self.end.as_ref()
    }

    /// Bytes of segment files read or passed over so far (for progress against
    /// [`LogSnapshot::data_bytes`]).
    #[must_use]
    pub fn bytes_read(&self) -> u64 {
        self.bytes_before + self.cursor.as_ref().map_or(0, |c| c.walker.at())
    }

    /// Damaged durable data skipped (only with [`ScanOptions::skip_corrupted`]).
    #[must_use]
    pub fn skipped(&self) -> &[SkippedRegion] {
        &self.skipped
    }

    /// Segments refused for a stale fencing token.
    #[must_use]
    pub fn refused(&self) -> &[RefusedSegment] {
        &self.refused
    }

    /// What was read from each segment finished so far (segments passed over below
    /// `from` are not listed).
    #[must_use]
    pub fn summaries(&self) -> &[SegmentSummary] {
        &self.summaries
    }

    /// The last global sequence read (whatever `from` was), if any.
    #[must_use]
    pub fn last_seq(&self) -> Option<GlobalSeq> {
        self.last_seq
    }

    /// Wall clock of the last record read, if any.
    #[must_use]
    pub fn last_wall_ms(&self) -> Option<u64> {
        self.last_wall_ms
    }

    /// Reads one unit, or opens the next segment, or finishes.
    fn step(&mut self) -> Result<(), ScanError> {
        let Some(mut cursor) = self.cursor.take() else {
            return self.open_next();
        };
        let tenure = cursor.walker.tenure();
        let step = cursor
            .walker
            .next_unit(|offset, frame| (offset, OwnedFrame::new(frame)))?;
        if cursor.walker.tenure() > tenure {
            self.raise_tenure(&mut cursor);
        }
        match step {
            Step::Unit(frames) => {
                self.take_unit(&mut cursor, frames);
                self.cursor = Some(cursor);
            }
            Step::Seal => {
                cursor.summary.sealed = true;
                if cursor.role == SegmentRole::Newest {
                    self.end = Some(LogEnd::Sealed {
                        path: cursor.file().path.clone(),
                    });
                }
                self.finish_segment(cursor);
            }
            Step::End { at } => self.ended(cursor, at)?,
            Step::Stop(stop) => self.stopped(cursor, &stop)?,
        }
        Ok(())
    }

    fn take_unit(&mut self, cursor: &mut Cursor, frames: Vec<(u64, OwnedFrame)>) {
        for (offset, frame) in frames {
            let h = frame.header;
            cursor.summary.first_seq.get_or_insert(h.global_seq);
            cursor.summary.last_seq = Some(h.global_seq);
            cursor.summary.records += 1;
            self.last_seq = Some(h.global_seq);
            self.last_wall_ms = Some(h.wall_ms);
            if h.global_seq >= self.from {
                self.ready.push_back(ScannedRecord {
                    global_seq: h.global_seq,
                    lane: h.lane,
                    lane_seq: h.lane_seq,
                    wall_ms: h.wall_ms,
                    key: frame.key,
                    payload: frame.payload,
                    segment: cursor.index,
                    offset: SegmentOffset(offset),
                });
            }
        }
    }

    /// A tenure frame raised the token: later segments under a lower one are a fenced
    /// writer's and prove nothing; the segment is the newest unless a later one is not.
    fn raise_tenure(&mut self, cursor: &mut Cursor) {
        let tenure = cursor.walker.tenure();
        self.max_token = self.max_token.max(Some(tenure));
        let later = self.snapshot.segments.get(self.pos..).unwrap_or(&[]);
        let tokens = later.iter().map(|s| match s.role {
            SegmentRole::Final | SegmentRole::Newest => s.header.map(|h| h.fencing),
            SegmentRole::Refused { .. } | SegmentRole::Prepared => None,
        });
        let next = proving_successor(tokens, Some(tenure)).and_then(|i| later.get(i));
        cursor.next_path = next.map(|n| n.path.clone());
        if next.is_none() {
            cursor.role = SegmentRole::Newest;
        }
    }

    fn finish_segment(&mut self, cursor: Cursor) {
        self.max_token = self.max_token.max(Some(cursor.walker.tenure()));
        self.bytes_before += cursor.file().len;
        self.expected = Some(cursor.walker.seq());
        self.summaries.push(cursor.summary);
    }

    /// Opens the next segment that holds data, passing over refused segments and those
    /// wholly below `from`; or ends the scan.
    fn open_next(&mut self) -> Result<(), ScanError> {
        let segments = &self.snapshot.segments;
        while let Some(info) = segments.get(self.pos) {
            self.pos += 1;
            let header = match (info.role, info.header) {
                // Below a token a tenure frame raised: a fenced writer's.
                (SegmentRole::Final | SegmentRole::Newest, Some(h))
                    if self.max_token.is_some_and(|max| h.fencing < max) =>
                {
                    self.refused.push(RefusedSegment {
                        path: info.path.clone(),
                        token: h.fencing,
                        fenced_by: self.max_token.unwrap_or(h.fencing),
                    });
                    continue;
                }
                (SegmentRole::Final | SegmentRole::Newest, Some(h)) => h,
                (SegmentRole::Refused { fenced_by }, Some(h)) => {
                    self.refused.push(RefusedSegment {
                        path: info.path.clone(),
                        token: h.fencing,
                        fenced_by,
                    });
                    continue;
                }
                _ => continue,
            };
            let next = segments
                .iter()
                .skip(self.pos)
                .find(|s| matches!(s.role, SegmentRole::Final | SegmentRole::Newest));
            // Every record of this segment is below where the next one starts.
            if next
                .and_then(|n| n.header)
                .is_some_and(|n| n.first_seq <= self.from)
                && info.role == SegmentRole::Final
            {
                self.bytes_before += info.len_bytes;
                self.expected = None;
                continue;
            }
            self.check_start(info, &header)?;
            let mut file = SegmentFile::open(info.path.clone())?;
            let reused = crate::format::header_is_reused(file.bytes(0, SEGMENT_HEADER_LEN)?);
            self.cursor = Some(Cursor {
                reused,
                walker: SegmentWalker::new(
                    file,
                    info.index,
                    SEGMENT_HEADER_LEN as u64,
                    header.first_seq,
                    self.max_token
                        .map_or(header.fencing, |m| m.max(header.fencing)),
                ),
                index: info.index,
                role: info.role,
                summary: SegmentSummary {
                    index: info.index,
                    first_seq: None,
                    last_seq: None,
                    records: 0,
                    sealed: false,
                },
                reread_at: None,
                next_path: next.map(|n| n.path.clone()),
            });
            return Ok(());
        }
        self.done = true;
        if let Some(cut) = &self.snapshot.cut {
            return Err(cut.error());
        }
        if self.end.is_none() {
            self.end = Some(LogEnd::Empty);
        }
        Ok(())
    }

    /// A segment must start where the log continues.
    fn check_start(&mut self, info: &SegmentInfo, header: &SegmentHeader) -> Result<(), ScanError> {
        let found = header.first_seq;
        let expected = match segment_start(self.expected, found, &self.snapshot.accepted) {
            SegmentStart::Continues => return Ok(()),
            SegmentStart::Gap { expected } if self.options.skip_corrupted => {
                self.skipped.push(gap_skipped(&info.path, expected, found));
                return Ok(());
            }
            SegmentStart::Gap { expected } | SegmentStart::Overlap { expected } => expected,
        };
        Err(ScanError::SequenceMismatch {
            path: info.path.clone(),
            expected: if expected == GlobalSeq::ZERO {
                GlobalSeq(1)
            } else {
                expected
            },
            found,
        })
    }

    /// Only zeros from `at` on: the end of the log in the newest segment; in a final one
    /// (a later segment proves it was synced, seal included), a missing seal.
    fn ended(&mut self, cursor: Cursor, at: u64) -> Result<(), ScanError> {
        let path = cursor.file().path.clone();
        if cursor.role != SegmentRole::Final {
            self.end = Some(LogEnd::Clean {
                path,
                offset: SegmentOffset(at),
            });
            self.finish_segment(cursor);
            return Ok(());
        }
        let proof = DurabilityProof::LaterSegment {
            path: cursor.next_path.clone().unwrap_or_else(|| path.clone()),
        };
        let lost_from = cursor.walker.seq();
        if !self.options.skip_corrupted {
            return Err(ScanError::CorruptFrame {
                path,
                offset: SegmentOffset(at),
                first_lost: lost_from,
                issue: FrameIssue::MissingSeal,
                proof,
            });
        }
        self.skipped.push(SkippedRegion {
            path,
            offset: at,
            len: cursor.file().len.saturating_sub(at),
            first_lost: lost_from,
            resumed_at: None,
            issue: FrameIssue::MissingSeal,
            proof,
        });
        self.finish_segment(cursor);
        Ok(())
    }

    /// Decides what a stop means: the end of the log, a unit still being written, or
    /// damage to durable data.
    fn stopped(&mut self, mut cursor: Cursor, stop: &Stop) -> Result<(), ScanError> {
        let after = cursor.walker.look_past(stop)?;
        let path = cursor.file().path.clone();
        let later = (cursor.role == SegmentRole::Final)
            .then(|| cursor.next_path.clone().unwrap_or_else(|| path.clone()));
        let proof = match proof_of(&path, Some(&after), later) {
            Some(proof) => proof,
            None => {
                // Nothing proves the bytes were durable: the end of the log. In a reused
                // file, bytes that start on a sector boundary between units with no frame
                // of this life after them are the earlier life's: a clean end, as
                // recovery decides (`reuse::life_end`).
                let earlier_life = cursor.reused
                    && stop.bad_at == stop.unit_start
                    && stop.unit_start % SECTOR_LEN as u64 == 0
                    && after.max_seen.is_none();
                self.end = Some(if after.nonzero && !earlier_life {
                    LogEnd::Tail {
                        path,
                        offset: SegmentOffset(stop.unit_start),
                        issue: stop.issue,
                    }
                } else {
                    LogEnd::Clean {
                        path,
                        offset: SegmentOffset(stop.unit_start),
                    }
                });
                self.finish_segment(cursor);
                return Ok(());
            }
        };
        if cursor.role == SegmentRole::Newest && cursor.reread_at != Some(stop.unit_start) {
            // A live writer may have finished the unit since it was read: read it again.
            cursor.reread_at = Some(stop.unit_start);
            cursor.walker.source_mut().invalidate();
            self.cursor = Some(cursor);
            return Ok(());
        }
        if let Some((offset, seq)) = after.resume_in_accepted(stop, &self.snapshot.accepted) {
            cursor.walker.resume(offset, seq);
            self.cursor = Some(cursor);
            return Ok(());
        }
        if !self.options.skip_corrupted {
            return Err(ScanError::CorruptFrame {
                path,
                offset: SegmentOffset(stop.bad_at),
                first_lost: stop.lost_from,
                issue: stop.issue,
                proof,
            });
        }
        let resume = after.resync;
        let skipped_to = resume.map_or(cursor.file().len, |(off, _)| off);
        self.skipped
            .push(stop.skipped(&path, skipped_to, resume.map(|(_, seq)| seq), proof));
        match resume {
            Some((offset, seq)) => {
                cursor.walker.resume(offset, seq);
                self.cursor = Some(cursor);
            }
            None => {
                // Sequences seen in the unreadable rest are never reused by the log.
                if let Some(max) = after.max_seen {
                    cursor.walker.raise_seq(max.next());
                }
                if cursor.role == SegmentRole::Newest {
                    self.end = Some(LogEnd::Skipped { path });
                }
                self.finish_segment(cursor);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_returns_fewer_bytes_only_at_the_end_of_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let data: Vec<u8> = (0..3 * WINDOW_BYTES + 17)
            .map(|i| (i % 251) as u8)
            .collect();
        std::fs::write(&path, &data).unwrap();
        let mut file = SegmentFile::open(path).unwrap();
        let len = data.len() as u64;
        for (at, want) in [
            (0u64, 10usize),
            (WINDOW_BYTES as u64 - 3, 10),
            (5, 2 * WINDOW_BYTES),
            (len - 4, 10),
            (len, 10),
            (len + 9, 1),
        ] {
            let got = file.bytes(at, want).unwrap().to_vec();
            let start = (at as usize).min(data.len());
            let stop = (at as usize).saturating_add(want).min(data.len());
            assert_eq!(got, data[start..stop].to_vec(), "at {at} want {want}");
        }
        assert!(!file.is_zero(0, len).unwrap());
    }
}
