//! The read side: zero-copy access to frames by global sequence, from any thread, while
//! the writer appends.
//!
//! Invariants:
//! - A reader never sees past the published end. The writer copies a whole unit into the
//!   mapping, records each frame's offset in the segment's dense offset index, then
//!   publishes the last sequence of the unit with a `Release` store; a reader loads the
//!   published sequence with `Acquire` before it looks at the index or the bytes.
//! - Readers never take a lock the writer holds while appending. The segment list is
//!   behind a read-write lock that the writer takes for writing only when it rotates.
//! - Every frame read is verified again (checksum, sequence) before it is handed out.

use crate::format::{decode_frame, FrameCheck, FrameHeader, SeqRule, FRAME_HEADER_LEN};
use crate::ids::{SegmentIndex, SegmentOffset};
use crate::io::mapped::MappedRegion;
use crate::io::{RealStorage, Storage};
use parking_lot::RwLock;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use tidelog_watermarks::{GlobalSeq, LaneId, LaneSeq};

const CHUNK: usize = 4096;
/// Offset-index value of a sequence that recovery skipped (`SkipCorrupted`).
pub(crate) const MISSING: u32 = u32::MAX;

/// Dense map from "n-th sequence of the segment" to the frame's byte offset, grown in
/// chunks so memory follows use. Written by the writer only, below nothing published.
struct OffsetIndex {
    chunks: Box<[OnceLock<Box<[AtomicU32]>>]>,
}

impl OffsetIndex {
    fn new(max_entries: usize) -> OffsetIndex {
        let n = max_entries.div_ceil(CHUNK).max(1);
        OffsetIndex {
            chunks: (0..n).map(|_| OnceLock::new()).collect(),
        }
    }

    fn set(&self, slot: usize, offset: u32) -> bool {
        let Some(chunk) = self.chunks.get(slot / CHUNK) else {
            return false;
        };
        let chunk = chunk.get_or_init(|| (0..CHUNK).map(|_| AtomicU32::new(MISSING)).collect());
        match chunk.get(slot % CHUNK) {
            Some(cell) => {
                cell.store(offset, Ordering::Relaxed);
                true
            }
            None => false,
        }
    }

    fn get(&self, slot: usize) -> Option<u32> {
        let v = self
            .chunks
            .get(slot / CHUNK)?
            .get()?
            .get(slot % CHUNK)?
            .load(Ordering::Relaxed);
        (v != MISSING).then_some(v)
    }
}

/// One segment as readers see it.
pub(crate) struct SegmentEntry {
    pub(crate) index: SegmentIndex,
    pub(crate) first_seq: GlobalSeq,
    pub(crate) region: Arc<MappedRegion>,
    offsets: OffsetIndex,
    /// Number of sequences (frames or skipped holes) published in this segment.
    published: AtomicU64,
}

impl SegmentEntry {
    pub(crate) fn new(
        index: SegmentIndex,
        first_seq: GlobalSeq,
        region: Arc<MappedRegion>,
    ) -> SegmentEntry {
        let max_entries = region.len() / FRAME_HEADER_LEN + 1;
        SegmentEntry {
            index,
            first_seq,
            region,
            offsets: OffsetIndex::new(max_entries),
            published: AtomicU64::new(0),
        }
    }

    /// Records the offset of the `slot`-th sequence of the segment (not yet published).
    /// `false` if the slot is beyond the index (cannot happen for a frame that fits).
    pub(crate) fn record(&self, slot: u64, offset: u32) -> bool {
        usize::try_from(slot).is_ok_and(|s| self.offsets.set(s, offset))
    }

    /// Publishes the first `count` sequences of the segment.
    pub(crate) fn publish(&self, count: u64) {
        self.published.store(count, Ordering::Release);
    }

    fn frame(self: &Arc<Self>, seq: GlobalSeq) -> Option<FrameRef> {
        let slot = seq.0.checked_sub(self.first_seq.0)?;
        if slot >= self.published.load(Ordering::Acquire) {
            return None;
        }
        let offset = self.offsets.get(usize::try_from(slot).ok()?)? as usize;
        let check = FrameCheck {
            segment: self.index,
            seq: SeqRule::Exactly(seq),
        };
        // Bound the borrowed bytes by the frame's own length so nothing unpublished is
        // borrowed.
        let head = self.region.bytes(offset, FRAME_HEADER_LEN)?;
        let len = u32::from_le_bytes(head.get(..4)?.try_into().ok()?) as usize;
        let end = offset.checked_add(crate::format::align_up(len)?)?;
        let bytes = self.region.bytes(0, end)?;
        let frame = decode_frame(bytes, offset, &check).ok()?;
        if frame.header.is_seal() {
            return None;
        }
        Some(FrameRef {
            segment: Arc::clone(self),
            offset,
            header: frame.header,
            key_len: frame.key.len(),
            payload_len: frame.payload.len(),
        })
    }
}

/// State shared by the writer and its readers.
pub(crate) struct Shared {
    pub(crate) segments: RwLock<Vec<Arc<SegmentEntry>>>,
    /// Last global sequence whose whole unit is in the mapping.
    pub(crate) written: AtomicU64,
}

impl Shared {
    /// The first sequence the log holds; one past the written end if it holds none.
    pub(crate) fn first_seq(&self) -> GlobalSeq {
        let written = GlobalSeq(self.written.load(Ordering::Acquire));
        self.segments
            .read()
            .first()
            .map_or(written.next(), |s| s.first_seq.min(written.next()))
    }

    fn segment_for(&self, seq: GlobalSeq) -> Option<Arc<SegmentEntry>> {
        let segments = self.segments.read();
        let pos = segments.partition_point(|s| s.first_seq <= seq);
        segments.get(pos.checked_sub(1)?).cloned()
    }
}

/// A zero-copy view of one frame. Keeps its segment's mapping alive.
#[derive(Clone)]
pub struct FrameRef {
    segment: Arc<SegmentEntry>,
    offset: usize,
    header: FrameHeader,
    key_len: usize,
    payload_len: usize,
}

impl FrameRef {
    /// Position in the global order.
    #[must_use]
    pub fn global_seq(&self) -> GlobalSeq {
        self.header.global_seq
    }
    /// The record's lane.
    #[must_use]
    pub fn lane(&self) -> LaneId {
        self.header.lane
    }
    /// Position within the lane.
    #[must_use]
    pub fn lane_seq(&self) -> LaneSeq {
        self.header.lane_seq
    }
    /// Wall clock given at append, milliseconds.
    #[must_use]
    pub fn wall_ms(&self) -> u64 {
        self.header.wall_ms
    }
    /// Whether this frame is the last of its atomic unit.
    #[must_use]
    pub fn ends_unit(&self) -> bool {
        self.header.is_last()
    }
    /// Idempotency key (may be empty).
    #[must_use]
    pub fn key(&self) -> &[u8] {
        self.segment
            .region
            .bytes(self.offset + FRAME_HEADER_LEN, self.key_len)
            .unwrap_or(&[])
    }
    /// Payload.
    #[must_use]
    pub fn payload(&self) -> &[u8] {
        self.segment
            .region
            .bytes(
                self.offset + FRAME_HEADER_LEN + self.key_len,
                self.payload_len,
            )
            .unwrap_or(&[])
    }
    /// Segment holding the frame.
    #[must_use]
    pub fn segment(&self) -> SegmentIndex {
        self.segment.index
    }
    /// Byte offset of the frame in its segment.
    #[must_use]
    pub fn offset(&self) -> SegmentOffset {
        SegmentOffset(self.offset as u64)
    }
}

impl std::fmt::Debug for FrameRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameRef")
            .field("global_seq", &self.header.global_seq)
            .field("lane", &self.header.lane)
            .field("lane_seq", &self.header.lane_seq)
            .field("key_len", &self.key_len)
            .field("payload_len", &self.payload_len)
            .finish()
    }
}

/// Reads the log from any thread while the writer appends. Cheap to clone.
///
/// Sees frames up to the published written end ([`last_written`](Self::last_written)),
/// which may be ahead of the durable point: a caller that must only show durable records
/// bounds its reads by [`Wal::last_durable`](crate::Wal::last_durable).
pub struct WalReader<S: Storage = RealStorage> {
    pub(crate) shared: Arc<Shared>,
    _storage: PhantomData<fn() -> S>,
}

impl<S: Storage> Clone for WalReader<S> {
    fn clone(&self) -> Self {
        WalReader {
            shared: Arc::clone(&self.shared),
            _storage: PhantomData,
        }
    }
}

impl<S: Storage> WalReader<S> {
    pub(crate) fn new(shared: Arc<Shared>) -> WalReader<S> {
        WalReader {
            shared,
            _storage: PhantomData,
        }
    }

    /// The last global sequence published as written.
    #[must_use]
    pub fn last_written(&self) -> GlobalSeq {
        GlobalSeq(self.shared.written.load(Ordering::Acquire))
    }

    /// The frame with this global sequence, if it is published and was not lost to a
    /// corruption skipped at recovery. O(1) after a binary search over segments.
    #[must_use]
    pub fn get(&self, seq: GlobalSeq) -> Option<FrameRef> {
        if seq == GlobalSeq::ZERO || seq > self.last_written() {
            return None;
        }
        self.shared.segment_for(seq)?.frame(seq)
    }

    /// The first global sequence the log still holds (sequences below it were truncated
    /// away); one past the written end if it holds none.
    #[must_use]
    pub fn first_seq(&self) -> GlobalSeq {
        self.shared.first_seq()
    }

    /// Frames from `seq` (or the first sequence the log still holds, if later) on, in
    /// order, up to the written end as it is when each frame is reached. Sequences skipped
    /// at recovery, or truncated away meanwhile, are passed over.
    pub fn iter_from(&self, seq: GlobalSeq) -> impl Iterator<Item = FrameRef> {
        let reader = self.clone();
        let mut next = seq.max(GlobalSeq(1)).max(self.first_seq());
        std::iter::from_fn(move || loop {
            if next > reader.last_written() {
                return None;
            }
            let seq = next;
            next = next.next();
            if let Some(frame) = reader.get(seq) {
                return Some(frame);
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_offset_index_returns_only_what_was_recorded() {
        let index = OffsetIndex::new(10_000);
        assert_eq!(index.get(5), None);
        assert!(index.set(5, 640));
        assert!(index.set(9_999, 8));
        assert!(!index.set(1 << 40, 8));
        assert_eq!(index.get(5), Some(640));
        assert_eq!(index.get(9_999), Some(8));
        assert_eq!(index.get(6), None);
    }
}
