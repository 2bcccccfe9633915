//! The segment walker: one reading of a segment's frames, shared by recovery
//! ([`Wal::open`](crate::Wal::open)), [`verify`](crate::verify) and the read-only scans of
//! [`crate::scan`]. It applies the unit grammar of `docs/format.md` and the part of the
//! decision table of `docs/recovery.md` that one segment's bytes decide; what the events
//! mean for the log (a torn tail, damage to durable data, a live writer's unit) is decided
//! by the caller, which knows what lies around the segment.
//!
//! The walker reads through a [`SegmentSource`]: a mapping of the whole segment
//! ([`MappedSegment`], recovery and verify) or windows read with positioned reads (the
//! scans, beside a live writer). From where the units start, [`SegmentWalker::next_unit`]
//! yields, one at a time:
//!
//! | step | found at the next unit start | the walker moves |
//! |---|---|---|
//! | [`Step::Unit`] | a complete unit: frames of consecutive sequences, the first flagged first, the last flagged last | past it |
//! | (none) | a tenure frame with a token at least the highest seen | past it, token raised |
//! | (none) | zeros up to the next sector boundary, bytes that are not zero after it (padding after a sync) | to the boundary |
//! | [`Step::Seal`] | a seal frame | not |
//! | [`Step::End`] | only zeros from here to the end of the segment | not |
//! | [`Step::Stop`] | anything else: a frame that does not verify, a unit whose flags break the nesting, a tenure frame below the highest token, a unit missing its last frame | not |
//!
//! After a stop, [`SegmentWalker::look_past`] looks at every aligned position after it
//! for frames with a sequence from the lost one on: a frame whose durable hint reaches it
//! (proof that the damage hit durable data), the first unit start (where a skipping reader
//! resumes, with [`SegmentWalker::resume`]) and the highest sequence still visible.
//!
//! Never panics on any bytes: every length is bounded by the source before it is used.

#![deny(clippy::indexing_slicing)]

use crate::format::HeaderIssue;
use crate::format::{
    align_up, could_start_frame, decode_frame, sector_align_up, Frame, FrameCheck, FrameIssue,
    SeqRule, FRAME_ALIGN, FRAME_HEADER_LEN,
};
use crate::ids::{FencingToken, SegmentIndex};
use crate::recovery::{DurabilityProof, SkippedRegion};
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use tidelog_watermarks::GlobalSeq;

/// Granularity at which runs of zeros are passed over when looking past a stop.
const ZERO_BLOCK_BYTES: u64 = 4096;

/// The bytes of one segment file, as the walker reads them.
pub(crate) trait SegmentSource {
    /// What reading can fail with ([`Infallible`] for a mapping).
    type Error;

    /// The segment's length in bytes (the file's: shorter than its header says when the
    /// file was cut short).
    fn len(&self) -> u64;

    /// Up to `want` bytes at `at`, fewer only at the end of the segment.
    fn bytes(&mut self, at: u64, want: usize) -> Result<&[u8], Self::Error>;

    /// Whether `[from, to)` (clamped to the segment) holds only zeros.
    fn is_zero(&mut self, from: u64, to: u64) -> Result<bool, Self::Error>;

    /// Decodes and verifies the frame at `at` (see [`decode_frame`]; the length bound is
    /// the end of the segment).
    fn frame(
        &mut self,
        at: u64,
        check: &FrameCheck,
    ) -> Result<Result<Frame<'_>, FrameIssue>, Self::Error>;
}

/// A whole segment in memory (a mapping): nothing to fail, and where its non-zero bytes
/// end is found once, from the end, because a mostly empty segment is the common case.
pub(crate) struct MappedSegment<'a> {
    bytes: &'a [u8],
    zero_from: usize,
}

impl<'a> MappedSegment<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        MappedSegment {
            bytes,
            zero_from: nonzero_end(bytes),
        }
    }

    /// A segment whose bytes from `zero_from` on are read as zeros: a reused file's
    /// earlier life after this one's (`reuse.rs`).
    pub(crate) fn zeros_from(bytes: &'a [u8], zero_from: usize) -> Self {
        MappedSegment {
            bytes,
            zero_from: zero_from.min(bytes.len()),
        }
    }

    /// Index one past the last non-zero byte of the segment (0 if it is all zeros), or
    /// where it is read as zeros from.
    pub(crate) fn zero_from(&self) -> usize {
        self.zero_from
    }
}

fn to_index(at: u64) -> usize {
    usize::try_from(at).unwrap_or(usize::MAX)
}

impl SegmentSource for MappedSegment<'_> {
    type Error = Infallible;

    fn len(&self) -> u64 {
        self.bytes.len() as u64
    }

    fn bytes(&mut self, at: u64, want: usize) -> Result<&[u8], Infallible> {
        let rest = self.bytes.get(to_index(at)..).unwrap_or(&[]);
        Ok(rest.get(..want).unwrap_or(rest))
    }

    fn is_zero(&mut self, from: u64, to: u64) -> Result<bool, Infallible> {
        let from = to_index(from);
        let to = to_index(to).min(self.zero_from);
        Ok(from >= to
            || self
                .bytes
                .get(from..to)
                .is_some_and(|b| b.iter().all(|&x| x == 0)))
    }

    fn frame(
        &mut self,
        at: u64,
        check: &FrameCheck,
    ) -> Result<Result<Frame<'_>, FrameIssue>, Infallible> {
        Ok(decode_frame(self.bytes, to_index(at), check))
    }
}

/// Index one past the last non-zero byte (0 if all zero). Block-wise from the end,
/// because a mostly empty 64 MiB segment is the common case.
pub(crate) fn nonzero_end(bytes: &[u8]) -> usize {
    const BLOCK: usize = 4096;
    let mut end = bytes.len();
    while end > 0 {
        let start = end.saturating_sub(BLOCK);
        let block = bytes.get(start..end).unwrap_or(&[]);
        if block.iter().fold(0u8, |acc, &b| acc | b) != 0 {
            return start + block.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
        }
        end = start;
    }
    0
}

/// What the walker found at the next unit start.
#[derive(Debug)]
pub(crate) enum Step<T> {
    /// A complete unit: what the caller kept of each frame, in order.
    Unit(Vec<T>),
    /// A seal frame at [`SegmentWalker::at`]: the segment is complete.
    Seal,
    /// Only zeros from `at` to the end of the segment: the units end there.
    End {
        /// Where the next unit would start.
        at: u64,
    },
    /// Bytes that are not a valid unit.
    Stop(Stop),
}

/// Where and why a walk stopped before the end of a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stop {
    /// Start of the unit the problem belongs to: where the units read so far end.
    pub(crate) unit_start: u64,
    /// Where the invalid frame (or the missing part of the unit) is.
    pub(crate) bad_at: u64,
    /// The first sequence not read.
    pub(crate) lost_from: GlobalSeq,
    /// What is wrong.
    pub(crate) issue: FrameIssue,
}

/// What lies after a stop ([`SegmentWalker::look_past`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct After {
    /// A valid frame whose durable hint reaches the lost sequence: (offset, seq, hint).
    pub(crate) proof: Option<(u64, GlobalSeq, GlobalSeq)>,
    /// The first valid frame that opens a unit: (offset, seq).
    pub(crate) resync: Option<(u64, GlobalSeq)>,
    /// The highest valid sequence seen.
    pub(crate) max_seen: Option<GlobalSeq>,
    /// Whether any byte from the unit start on is not zero.
    pub(crate) nonzero: bool,
}

/// Reads the units of one segment in order (see the module docs).
pub(crate) struct SegmentWalker<S> {
    source: S,
    index: SegmentIndex,
    /// Where the next unit starts.
    at: u64,
    /// The sequence it must carry.
    seq: GlobalSeq,
    /// The highest fencing token seen so far in the log, raised by tenure frames.
    tenure: FencingToken,
}

impl<S: SegmentSource> SegmentWalker<S> {
    /// A walker over segment `index` whose first unit starts at `at` with sequence `seq`;
    /// `tenure` is the highest fencing token seen in the log so far (a tenure frame below
    /// it is a fenced writer's).
    pub(crate) fn new(
        source: S,
        index: SegmentIndex,
        at: u64,
        seq: GlobalSeq,
        tenure: FencingToken,
    ) -> Self {
        SegmentWalker {
            source,
            index,
            at,
            seq,
            tenure,
        }
    }

    /// Where the next unit starts.
    pub(crate) fn at(&self) -> u64 {
        self.at
    }

    /// The sequence the next unit must start with.
    pub(crate) fn seq(&self) -> GlobalSeq {
        self.seq
    }

    /// The highest fencing token seen so far (the segment's tenure up to here).
    pub(crate) fn tenure(&self) -> FencingToken {
        self.tenure
    }

    /// The source.
    pub(crate) fn source(&self) -> &S {
        &self.source
    }

    /// The source, to forget what it buffered (a live writer may have changed it).
    pub(crate) fn source_mut(&mut self) -> &mut S {
        &mut self.source
    }

    /// Makes the next sequence at least `seq`: sequences seen in an unreadable rest of the
    /// segment are never handed out again.
    pub(crate) fn raise_seq(&mut self, seq: GlobalSeq) {
        self.seq = self.seq.max(seq);
    }

    /// Continues at the unit start `at` with sequence `seq` (after a stop, where
    /// [`look_past`](Self::look_past) found the next unit).
    pub(crate) fn resume(&mut self, at: u64, seq: GlobalSeq) {
        self.at = at;
        self.seq = seq;
    }

    /// Reads the next unit; `keep` makes what the caller keeps of each of its frames
    /// (given its offset). Moves past the unit only if it is complete.
    pub(crate) fn next_unit<T>(
        &mut self,
        mut keep: impl FnMut(u64, &Frame<'_>) -> T,
    ) -> Result<Step<T>, S::Error> {
        let mut unit: Vec<T> = Vec::new();
        let mut at = self.at;
        let mut seq = self.seq;
        let len = self.source.len();
        loop {
            let check = FrameCheck {
                segment: self.index,
                seq: SeqRule::Exactly(seq),
            };
            let issue = match self.source.frame(at, &check)? {
                Ok(frame) if frame.header.is_seal() && unit.is_empty() => return Ok(Step::Seal),
                Ok(frame) if frame.header.is_tenure() && unit.is_empty() => {
                    match frame.tenure_token() {
                        Some(found) if found >= self.tenure => {
                            self.tenure = found;
                            at = at.saturating_add(frame.len_on_disk as u64);
                            self.at = at;
                            continue;
                        }
                        Some(found) => FrameIssue::StaleTenure { found },
                        None => FrameIssue::BadFlags {
                            flags: frame.header.flags,
                        },
                    }
                }
                Ok(frame) if frame.header.is_first() == unit.is_empty() => {
                    let last = frame.header.is_last();
                    unit.push(keep(at, &frame));
                    at = at.saturating_add(frame.len_on_disk as u64);
                    seq = seq.next();
                    if last {
                        self.at = at;
                        self.seq = seq;
                        return Ok(Step::Unit(unit));
                    }
                    continue;
                }
                Ok(_) => FrameIssue::BrokenUnit,
                Err(issue) => issue,
            };
            let rest_zero = self.source.is_zero(at, len)?;
            if unit.is_empty() {
                if rest_zero {
                    return Ok(Step::End { at });
                }
                // Zero padding to the next sector boundary between units (after a sync).
                if let Some(next) = sector_align_up(to_index(at))
                    .map(|n| n as u64)
                    .filter(|n| *n > at && *n < len)
                {
                    if self.source.is_zero(at, next)? {
                        at = next;
                        self.at = next;
                        continue;
                    }
                }
            }
            return Ok(Step::Stop(Stop {
                unit_start: self.at,
                bad_at: at,
                lost_from: self.seq,
                issue: if rest_zero {
                    FrameIssue::PartialUnit
                } else {
                    issue
                },
            }));
        }
    }

    /// Looks at every aligned position after `stop` for valid frames carrying a sequence
    /// from the lost one on (see [`After`]).
    pub(crate) fn look_past(&mut self, stop: &Stop) -> Result<After, S::Error> {
        let end = self.source.len();
        let check = FrameCheck {
            segment: self.index,
            seq: SeqRule::After(GlobalSeq(stop.lost_from.0.saturating_sub(1))),
        };
        let first = stop.bad_at.saturating_add(FRAME_ALIGN as u64);
        let mut after = After {
            proof: None,
            resync: None,
            max_seen: None,
            nonzero: !self.source.is_zero(stop.unit_start, first)?,
        };
        let mut at = first;
        while at < end {
            if at % ZERO_BLOCK_BYTES == 0
                && self
                    .source
                    .is_zero(at, at.saturating_add(ZERO_BLOCK_BYTES))?
            {
                at = at.saturating_add(ZERO_BLOCK_BYTES);
                continue;
            }
            let head = self.source.bytes(at, FRAME_HEADER_LEN)?;
            let head_zero = head
                .get(..FRAME_ALIGN)
                .unwrap_or(head)
                .iter()
                .all(|&b| b == 0);
            if !head_zero {
                after.nonzero = true;
                if could_start_frame(head, end - at) {
                    if let Ok(frame) = self.source.frame(at, &check)? {
                        let h = frame.header;
                        if after.resync.is_none() && h.is_first() {
                            after.resync = Some((at, h.global_seq));
                        }
                        if after.proof.is_none() && h.durable_hint >= stop.lost_from {
                            after.proof = Some((at, h.global_seq, h.durable_hint));
                        }
                        after.max_seen = after.max_seen.max(Some(h.global_seq));
                    }
                }
            }
            at = at.saturating_add(FRAME_ALIGN as u64);
        }
        Ok(after)
    }
}

/// How many bytes to read for a frame whose header (its first bytes) is `head`, at a
/// position `remaining` bytes before the end of the segment: the whole frame when its
/// length is plausible, else the header alone (the decoder then refuses the length).
pub(crate) fn frame_read_len(head: &[u8], remaining: u64) -> usize {
    let frame_len = head
        .get(..4)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u32::from_le_bytes);
    if u64::from(frame_len) <= remaining {
        align_up(frame_len as usize).map_or(FRAME_HEADER_LEN, |l| l.max(FRAME_HEADER_LEN))
    } else {
        FRAME_HEADER_LEN
    }
}

// What the walks of recovery, verify and the scans decide alike about the segments
// around the one walked: where each must start, what proves a stop hit durable data, and
// what a skip reports.

/// Whether the sequences `from..=to` lie inside one of the `accepted` ranges (losses
/// accepted explicitly and kept in the extent record): damage and gaps there are passed
/// over by every reader.
pub(crate) fn covered(accepted: &[(GlobalSeq, GlobalSeq)], from: GlobalSeq, to: GlobalSeq) -> bool {
    from <= to && accepted.iter().any(|(a, b)| *a <= from && to <= *b)
}

/// How a segment's first sequence fits the log before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SegmentStart {
    /// It starts where the log continues (or it is the first, or the sequences between
    /// are an accepted loss).
    Continues,
    /// Sequences `expected..found` are missing: a tolerant reader skips them.
    Gap {
        /// Where the log continues.
        expected: GlobalSeq,
    },
    /// It starts at or below where the log already is (or at zero): never readable.
    Overlap {
        /// Where the log continues.
        expected: GlobalSeq,
    },
}

/// Checks a segment starting at `found` against the sequence the log continues at
/// (`None` for the first segment read).
pub(crate) fn segment_start(
    expected: Option<GlobalSeq>,
    found: GlobalSeq,
    accepted: &[(GlobalSeq, GlobalSeq)],
) -> SegmentStart {
    let expected = expected.unwrap_or(found);
    if found > expected {
        if covered(accepted, expected, GlobalSeq(found.0.saturating_sub(1))) {
            SegmentStart::Continues
        } else {
            SegmentStart::Gap { expected }
        }
    } else if found == expected && found != GlobalSeq::ZERO {
        SegmentStart::Continues
    } else {
        SegmentStart::Overlap { expected }
    }
}

/// The region a tolerant reader skips for a gap between segments: the segment at `path`
/// starts at `found`, the log continued at `expected`.
pub(crate) fn gap_skipped(path: &Path, expected: GlobalSeq, found: GlobalSeq) -> SkippedRegion {
    SkippedRegion {
        path: path.to_path_buf(),
        offset: 0,
        len: 0,
        first_lost: expected,
        resumed_at: Some(found),
        issue: FrameIssue::UnexpectedSequence { expected, found },
        proof: DurabilityProof::LaterSegment {
            path: path.to_path_buf(),
        },
    }
}

/// The first of the segments after the one walked (their headers' fencing tokens in
/// order, `None` where a header does not verify) written under a token of at least
/// `floor`: it proves the walked one was synced, seal included, since the writer syncs a
/// segment before it starts the next. A fenced writer's segments (lower tokens) prove
/// nothing. Returns its position among `later`.
pub(crate) fn proving_successor(
    later: impl IntoIterator<Item = Option<FencingToken>>,
    floor: Option<FencingToken>,
) -> Option<usize> {
    later
        .into_iter()
        .position(|token| token.is_some() && token >= floor)
}

/// Why the bytes of a stop in the segment at `path` must have been durable: a later frame
/// of the segment whose durable hint reaches them, else the `later` segment that proves
/// the whole segment synced; `None` when nothing does (the end of the log: a torn tail,
/// or a unit being written).
pub(crate) fn proof_of(
    path: &Path,
    after: Option<&After>,
    later: Option<PathBuf>,
) -> Option<DurabilityProof> {
    match (after.and_then(|a| a.proof), later) {
        (Some((offset, global_seq, durable_hint)), _) => Some(DurabilityProof::LaterFrame {
            path: path.to_path_buf(),
            offset,
            global_seq,
            durable_hint,
        }),
        (None, Some(later)) => Some(DurabilityProof::LaterSegment { path: later }),
        (None, None) => None,
    }
}

impl After {
    /// Where reading resumes when the damage after `stop` lies inside a loss accepted
    /// earlier (passed over in every mode, reported by none).
    pub(crate) fn resume_in_accepted(
        &self,
        stop: &Stop,
        accepted: &[(GlobalSeq, GlobalSeq)],
    ) -> Option<(u64, GlobalSeq)> {
        self.resync.filter(|(_, seq)| {
            covered(accepted, stop.lost_from, GlobalSeq(seq.0.saturating_sub(1)))
        })
    }
}

impl Stop {
    /// The region a tolerant reader skips from this stop's unit to `skipped_to` in the
    /// segment at `path`, resuming at `resumed_at` (or at no sequence in this segment).
    pub(crate) fn skipped(
        &self,
        path: &Path,
        skipped_to: u64,
        resumed_at: Option<GlobalSeq>,
        proof: DurabilityProof,
    ) -> SkippedRegion {
        SkippedRegion {
            path: path.to_path_buf(),
            offset: self.unit_start,
            len: skipped_to.saturating_sub(self.unit_start),
            first_lost: self.lost_from,
            resumed_at,
            issue: self.issue,
            proof,
        }
    }
}

/// Whether a segment whose header reads as `issue` can be one prepared ahead of need and
/// never used (if its body is all zeros): an all-zero header, or, for the `last` segment
/// only, a header store torn by a crash during a rotation (frames follow a synced header,
/// so nothing was written after it).
pub(crate) fn may_be_unused(issue: &HeaderIssue, last: bool) -> bool {
    match issue {
        HeaderIssue::Unused => true,
        HeaderIssue::BadMagic | HeaderIssue::Checksum { .. } => last,
        _ => false,
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::format::{
        encode_frame_header, encode_tenure_frame, FrameHeader, FLAG_FIRST, FLAG_LAST, SEAL_FLAGS,
        SECTOR_LEN, SEGMENT_HEADER_LEN,
    };
    use tidelog_watermarks::{LaneId, LaneSeq};

    const SEG: SegmentIndex = SegmentIndex(3);
    const START: u64 = SEGMENT_HEADER_LEN as u64;

    /// A segment image of `len` bytes, frames written at chosen offsets.
    struct Image(Vec<u8>);

    impl Image {
        fn new(len: usize) -> Self {
            Image(vec![0; len])
        }

        /// Writes a frame of sequence `seq` with `flags` at `at`; returns where the next
        /// frame goes.
        fn frame(&mut self, at: usize, seq: u64, hint: u64, flags: u16, payload: &[u8]) -> usize {
            let header = FrameHeader {
                global_seq: GlobalSeq(seq),
                lane: LaneId(1),
                lane_seq: LaneSeq(seq),
                wall_ms: 1000 + seq,
                durable_hint: GlobalSeq(hint),
                flags,
            };
            let head = encode_frame_header(SEG, &header, b"", payload).unwrap();
            self.0[at..at + FRAME_HEADER_LEN].copy_from_slice(&head);
            self.0[at + FRAME_HEADER_LEN..at + FRAME_HEADER_LEN + payload.len()]
                .copy_from_slice(payload);
            align_up(at + FRAME_HEADER_LEN + payload.len()).unwrap()
        }

        fn record(&mut self, at: usize, seq: u64) -> usize {
            self.frame(
                at,
                seq,
                seq.saturating_sub(1),
                FLAG_FIRST | FLAG_LAST,
                b"abc",
            )
        }

        fn walker(&self) -> SegmentWalker<MappedSegment<'_>> {
            SegmentWalker::new(
                MappedSegment::new(&self.0),
                SEG,
                START,
                GlobalSeq(1),
                FencingToken::default(),
            )
        }
    }

    fn steps(image: &Image) -> Vec<Step<(u64, GlobalSeq)>> {
        let mut walker = image.walker();
        let mut out = Vec::new();
        loop {
            let Ok(step) = walker.next_unit(|at, f| (at, f.header.global_seq));
            let done = !matches!(step, Step::Unit(_));
            out.push(step);
            if done {
                return out;
            }
        }
    }

    #[test]
    fn units_are_yielded_in_order_and_zeros_end_the_walk() {
        let mut img = Image::new(4096);
        let next = img.record(START as usize, 1);
        let next = img.frame(next, 2, 1, FLAG_FIRST, b"a");
        let end = img.frame(next, 3, 1, FLAG_LAST, b"b");
        let s = steps(&img);
        assert!(matches!(&s[0], Step::Unit(f) if f == &[(START, GlobalSeq(1))]));
        assert!(matches!(&s[1], Step::Unit(f) if f.len() == 2 && f[1].1 == GlobalSeq(3)));
        assert!(matches!(s[2], Step::End { at } if at == end as u64));
    }

    #[test]
    fn a_seal_ends_the_segment_where_it_lies() {
        let mut img = Image::new(4096);
        let next = img.record(START as usize, 1);
        img.frame(next, 2, 1, SEAL_FLAGS, b"");
        let mut walker = img.walker();
        assert!(matches!(walker.next_unit(|_, _| ()), Ok(Step::Unit(_))));
        assert!(matches!(walker.next_unit(|_, _| ()), Ok(Step::Seal)));
        assert_eq!(walker.at(), next as u64);
    }

    #[test]
    fn zero_padding_to_a_sector_boundary_is_passed_over_between_units() {
        let mut img = Image::new(4096);
        img.record(START as usize, 1);
        img.record(SECTOR_LEN, 2);
        let s = steps(&img);
        assert!(matches!(&s[1], Step::Unit(f) if f == &[(SECTOR_LEN as u64, GlobalSeq(2))]));
        assert!(matches!(s[2], Step::End { .. }));
        // Padding reaches only the next boundary: a unit a sector further on is not found.
        let mut img = Image::new(4096);
        img.record(START as usize, 1);
        img.record(2 * SECTOR_LEN, 2);
        let s = steps(&img);
        assert!(matches!(&s[1], Step::Stop(stop) if stop.unit_start == SECTOR_LEN as u64));
    }

    #[test]
    fn zeros_inside_an_open_unit_are_a_partial_unit_not_padding() {
        let mut img = Image::new(4096);
        let next = img.frame(START as usize, 1, 0, FLAG_FIRST, b"a");
        // The unit's last frame lies after a zero gap: it never closes the unit.
        img.frame(2 * SECTOR_LEN, 2, 0, FLAG_LAST, b"b");
        let s = steps(&img);
        let Step::Stop(stop) = &s[0] else {
            panic!("{:?}", s[0])
        };
        assert_eq!((stop.unit_start, stop.bad_at), (START, next as u64));
        assert_ne!(stop.issue, FrameIssue::PartialUnit);
        let mut img = Image::new(4096);
        let next = img.frame(START as usize, 1, 0, FLAG_FIRST, b"a");
        let s = steps(&img);
        assert!(matches!(&s[0], Step::Stop(stop)
            if stop.issue == FrameIssue::PartialUnit && stop.bad_at == next as u64));
    }

    #[test]
    fn a_stop_leaves_the_walker_at_the_start_of_the_broken_unit() {
        let mut img = Image::new(4096);
        let next = img.record(START as usize, 1);
        img.record(next, 2);
        img.0[next + 20] ^= 0xff;
        let mut walker = img.walker();
        assert!(matches!(walker.next_unit(|_, _| ()), Ok(Step::Unit(_))));
        let Ok(Step::Stop(stop)) = walker.next_unit(|_, _| ()) else {
            panic!("no stop")
        };
        assert_eq!(
            (stop.unit_start, stop.lost_from),
            (next as u64, GlobalSeq(2))
        );
        assert!(matches!(stop.issue, FrameIssue::Checksum { .. }));
        assert_eq!((walker.at(), walker.seq()), (next as u64, GlobalSeq(2)));
    }

    #[test]
    fn a_tenure_frame_raises_the_token_and_a_lower_one_stops_the_walk() {
        let mut img = Image::new(4096);
        let high = FencingToken {
            term: 2,
            generation: 1,
        };
        let low = FencingToken {
            term: 1,
            generation: 9,
        };
        let t = encode_tenure_frame(SEG, GlobalSeq(1), 0, GlobalSeq(0), high);
        let at = START as usize;
        img.0[at..at + t.len()].copy_from_slice(&t);
        let next = img.record(align_up(at + t.len()).unwrap(), 1);
        let t = encode_tenure_frame(SEG, GlobalSeq(2), 0, GlobalSeq(1), low);
        img.0[next..next + t.len()].copy_from_slice(&t);
        let mut walker = img.walker();
        assert!(matches!(walker.next_unit(|_, _| ()), Ok(Step::Unit(_))));
        assert_eq!(walker.tenure(), high);
        let Ok(Step::Stop(stop)) = walker.next_unit(|_, _| ()) else {
            panic!("no stop")
        };
        assert_eq!(stop.issue, FrameIssue::StaleTenure { found: low });
    }

    #[test]
    fn a_frame_that_opens_a_unit_inside_an_open_one_breaks_the_unit() {
        let mut img = Image::new(4096);
        let next = img.frame(START as usize, 1, 0, FLAG_FIRST, b"a");
        img.frame(next, 2, 0, FLAG_FIRST | FLAG_LAST, b"b");
        let s = steps(&img);
        assert!(matches!(&s[0], Step::Stop(stop)
            if stop.issue == FrameIssue::BrokenUnit && stop.unit_start == START));
    }

    #[test]
    fn a_stop_whose_only_bytes_are_its_own_still_counts_as_bytes_after_the_end() {
        let mut img = Image::new(4096);
        let next = img.record(START as usize, 1);
        img.0[next..next + 8].copy_from_slice(&[0xab; 8]);
        let mut walker = img.walker();
        let _ = walker.next_unit(|_, _| ());
        let Ok(Step::Stop(stop)) = walker.next_unit(|_, _| ()) else {
            panic!("no stop")
        };
        let Ok(after) = walker.look_past(&stop);
        assert!(after.nonzero);
        assert_eq!((after.proof, after.resync), (None, None));
    }

    #[test]
    fn a_unit_on_a_block_boundary_after_a_stop_is_found() {
        let mut img = Image::new(3 * 4096);
        let next = img.record(START as usize, 1);
        img.record(next, 2);
        img.0[next + 20] ^= 1;
        img.frame(4096, 3, 2, FLAG_FIRST | FLAG_LAST, b"c");
        let mut walker = img.walker();
        let _ = walker.next_unit(|_, _| ());
        let Ok(Step::Stop(stop)) = walker.next_unit(|_, _| ()) else {
            panic!("no stop")
        };
        let Ok(after) = walker.look_past(&stop);
        assert_eq!(after.resync, Some((4096, GlobalSeq(3))));
        assert_eq!(after.proof, Some((4096, GlobalSeq(3), GlobalSeq(2))));
    }

    #[test]
    fn a_tenure_frame_carrying_the_current_token_is_passed_over() {
        let token = FencingToken {
            term: 3,
            generation: 2,
        };
        let mut img = Image::new(4096);
        let t = encode_tenure_frame(SEG, GlobalSeq(1), 0, GlobalSeq(0), token);
        let at = START as usize;
        img.0[at..at + t.len()].copy_from_slice(&t);
        let next = align_up(at + t.len()).unwrap();
        img.record(next, 1);
        let mut walker =
            SegmentWalker::new(MappedSegment::new(&img.0), SEG, START, GlobalSeq(1), token);
        let Ok(Step::Unit(f)) = walker.next_unit(|at, _| at) else {
            panic!("the tenure frame stopped the walk")
        };
        assert_eq!(f, vec![next as u64]);
        assert_eq!(walker.tenure(), token);
    }

    #[test]
    fn looking_past_a_stop_finds_the_proof_the_resume_point_and_the_highest_sequence() {
        let mut img = Image::new(8192);
        let next = img.record(START as usize, 1);
        let bad = img.record(next, 2);
        img.0[next + 20] ^= 1;
        // Seq 3 was written when 1 was durable; seq 4 when 2 was: it proves 2 durable.
        let n3 = img.frame(bad, 3, 1, FLAG_FIRST | FLAG_LAST, b"c");
        let n4 = img.frame(n3, 4, 2, FLAG_FIRST, b"d");
        img.frame(n4 + 4096, 9, 2, FLAG_LAST, b"e");
        let mut walker = img.walker();
        let _ = walker.next_unit(|_, _| ());
        let Ok(Step::Stop(stop)) = walker.next_unit(|_, _| ()) else {
            panic!("no stop")
        };
        let Ok(after) = walker.look_past(&stop);
        assert_eq!(after.resync, Some((bad as u64, GlobalSeq(3))));
        assert_eq!(after.proof, Some((n3 as u64, GlobalSeq(4), GlobalSeq(2))));
        assert_eq!(after.max_seen, Some(GlobalSeq(9)));
        assert!(after.nonzero);
        walker.resume(bad as u64, GlobalSeq(3));
        let Ok(Step::Unit(f)) = walker.next_unit(|at, _| at) else {
            panic!("no unit after resuming")
        };
        assert_eq!(f, vec![bad as u64]);
    }

    #[test]
    fn a_raised_sequence_is_what_the_next_unit_must_carry_and_is_never_lowered() {
        let mut img = Image::new(4096);
        let next = img.record(START as usize, 5);
        img.record(next, 6);
        let mut walker = img.walker();
        walker.raise_seq(GlobalSeq(5));
        walker.raise_seq(GlobalSeq(2));
        assert_eq!(walker.seq(), GlobalSeq(5));
        let Ok(Step::Unit(f)) = walker.next_unit(|_, f| f.header.global_seq) else {
            panic!("the unit carrying the raised sequence was not read")
        };
        assert_eq!(f, vec![GlobalSeq(5)]);
        // Raised past what the segment holds: the next unit's sequence no longer fits.
        walker.raise_seq(GlobalSeq(9));
        assert!(matches!(walker.next_unit(|_, _| ()), Ok(Step::Stop(_))));
    }

    #[test]
    fn nothing_after_a_torn_unit_is_no_proof_and_no_resume_point() {
        let mut img = Image::new(4096);
        let next = img.record(START as usize, 1);
        img.record(next, 2);
        img.0[next + 20] ^= 1;
        let mut walker = img.walker();
        let _ = walker.next_unit(|_, _| ());
        let Ok(Step::Stop(stop)) = walker.next_unit(|_, _| ()) else {
            panic!("no stop")
        };
        let Ok(after) = walker.look_past(&stop);
        assert_eq!(
            (after.proof, after.resync, after.max_seen),
            (None, None, None)
        );
        assert!(after.nonzero);
    }

    #[test]
    fn the_walker_never_panics_on_arbitrary_bytes() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for round in 0..64 {
            let mut img = Image::new(1024 + round * 8);
            for b in img.0.iter_mut().skip(SEGMENT_HEADER_LEN) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                *b = if round % 2 == 0 {
                    state as u8
                } else {
                    (state as u8) & 3
                };
            }
            let mut walker = img.walker();
            for _ in 0..64 {
                match walker.next_unit(|_, _| ()) {
                    Ok(Step::Stop(stop)) => {
                        let _ = walker.look_past(&stop);
                        break;
                    }
                    Ok(Step::Unit(_)) => {}
                    _ => break,
                }
            }
        }
    }

    #[test]
    fn a_mapping_answers_zero_ranges_and_short_reads_at_its_end() {
        let mut bytes = vec![0u8; 10_000];
        bytes[5000] = 1;
        let mut src = MappedSegment::new(&bytes);
        assert_eq!(src.zero_from(), 5001);
        assert_eq!(src.is_zero(0, 5000), Ok(true));
        assert_eq!(src.is_zero(4999, 5001), Ok(false));
        assert_eq!(src.is_zero(5001, u64::MAX), Ok(true));
        assert_eq!(src.bytes(9_990, 100).map(<[u8]>::len), Ok(10));
        assert_eq!(src.bytes(u64::MAX, 100).map(<[u8]>::len), Ok(0));
        assert_eq!(frame_read_len(&[0; 48], 100), FRAME_HEADER_LEN);
        assert_eq!(frame_read_len(&[60, 0, 0, 0], 100), 64);
        assert_eq!(frame_read_len(&[60, 0, 0, 0], 59), FRAME_HEADER_LEN);
    }

    #[test]
    fn a_segment_continues_the_log_only_where_it_left_off_or_across_an_accepted_loss() {
        let s = |e: Option<u64>, f: u64, acc: &[(u64, u64)]| {
            let acc: Vec<_> = acc
                .iter()
                .map(|(a, b)| (GlobalSeq(*a), GlobalSeq(*b)))
                .collect();
            segment_start(e.map(GlobalSeq), GlobalSeq(f), &acc)
        };
        assert_eq!(s(None, 7, &[]), SegmentStart::Continues);
        assert_eq!(
            s(None, 0, &[]),
            SegmentStart::Overlap {
                expected: GlobalSeq(0)
            }
        );
        assert_eq!(s(Some(7), 7, &[]), SegmentStart::Continues);
        assert_eq!(
            s(Some(7), 9, &[]),
            SegmentStart::Gap {
                expected: GlobalSeq(7)
            }
        );
        assert_eq!(
            s(Some(7), 5, &[]),
            SegmentStart::Overlap {
                expected: GlobalSeq(7)
            }
        );
        assert_eq!(s(Some(7), 9, &[(7, 8)]), SegmentStart::Continues);
        assert_eq!(s(Some(7), 9, &[(6, 10)]), SegmentStart::Continues);
        assert_eq!(
            s(Some(7), 10, &[(7, 8)]),
            SegmentStart::Gap {
                expected: GlobalSeq(7)
            }
        );
        assert_eq!(
            s(Some(7), 9, &[(8, 8)]),
            SegmentStart::Gap {
                expected: GlobalSeq(7)
            }
        );
        assert!(!covered(
            &[(GlobalSeq(1), GlobalSeq(9))],
            GlobalSeq(5),
            GlobalSeq(4)
        ));
        assert!(covered(
            &[(GlobalSeq(1), GlobalSeq(9))],
            GlobalSeq(5),
            GlobalSeq(5)
        ));
    }

    #[test]
    fn only_a_later_segment_under_a_token_at_least_the_floor_proves_a_segment_synced() {
        let t = |term| {
            Some(FencingToken {
                term,
                generation: 0,
            })
        };
        let floor = t(5);
        assert_eq!(proving_successor([None, t(4), t(5), t(9)], floor), Some(2));
        assert_eq!(proving_successor([t(6)], floor), Some(0));
        assert_eq!(proving_successor([None, t(4)], floor), None);
        assert_eq!(proving_successor([None, t(1)], None), Some(1));
    }

    #[test]
    fn a_later_frame_proves_a_stop_before_a_later_segment_does() {
        let path = Path::new("s");
        let later = Some(PathBuf::from("later"));
        let mut after = After {
            proof: None,
            resync: Some((64, GlobalSeq(4))),
            max_seen: None,
            nonzero: true,
        };
        assert_eq!(proof_of(path, Some(&after), None), None);
        assert_eq!(
            proof_of(path, None, later.clone()),
            Some(DurabilityProof::LaterSegment {
                path: PathBuf::from("later")
            })
        );
        after.proof = Some((128, GlobalSeq(5), GlobalSeq(3)));
        assert_eq!(
            proof_of(path, Some(&after), later),
            Some(DurabilityProof::LaterFrame {
                path: path.to_path_buf(),
                offset: 128,
                global_seq: GlobalSeq(5),
                durable_hint: GlobalSeq(3),
            })
        );
        let stop = Stop {
            unit_start: 16,
            bad_at: 24,
            lost_from: GlobalSeq(2),
            issue: FrameIssue::PartialUnit,
        };
        let accepted = [(GlobalSeq(2), GlobalSeq(3))];
        assert_eq!(
            after.resume_in_accepted(&stop, &accepted),
            Some((64, GlobalSeq(4)))
        );
        assert_eq!(
            after.resume_in_accepted(&stop, &[(GlobalSeq(3), GlobalSeq(3))]),
            None
        );
        let region = stop.skipped(
            path,
            64,
            Some(GlobalSeq(4)),
            DurabilityProof::LaterSegment {
                path: PathBuf::from("later"),
            },
        );
        assert_eq!(
            (region.offset, region.len, region.first_lost),
            (16, 48, GlobalSeq(2))
        );
        let gap = gap_skipped(path, GlobalSeq(3), GlobalSeq(8));
        assert_eq!(
            (gap.first_lost, gap.resumed_at),
            (GlobalSeq(3), Some(GlobalSeq(8)))
        );
    }

    #[test]
    fn only_an_all_zero_header_or_the_last_segments_torn_one_may_be_unused() {
        assert!(may_be_unused(&HeaderIssue::Unused, false));
        assert!(may_be_unused(&HeaderIssue::BadMagic, true));
        assert!(!may_be_unused(&HeaderIssue::BadMagic, false));
        assert!(may_be_unused(
            &HeaderIssue::Checksum {
                stored: 1,
                computed: 2
            },
            true
        ));
        assert!(!may_be_unused(
            &HeaderIssue::Checksum {
                stored: 1,
                computed: 2
            },
            false
        ));
    }

    #[test]
    fn nonzero_end_finds_the_last_non_zero_byte() {
        let mut v = vec![0u8; 10_000];
        assert_eq!(nonzero_end(&v), 0);
        v[0] = 1;
        assert_eq!(nonzero_end(&v), 1);
        v[8191] = 1;
        assert_eq!(nonzero_end(&v), 8192);
        v[9_999] = 1;
        assert_eq!(nonzero_end(&v), 10_000);
    }
}
