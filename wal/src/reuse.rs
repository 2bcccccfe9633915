//! How recovery and the scans read a segment whose file is reused (header flag
//! [`HEADER_FLAG_REUSED`](crate::format::HEADER_FLAG_REUSED)), kept apart from their
//! frame walks: each asks one question here and changes nothing else.
//!
//! A reused file's bytes after this life's frames are not zeros but an earlier life's:
//! frames whose CRC covers the earlier segment index, so none verifies under this one.
//! (CRC-32 detects every error burst of at most 32 bits; two indexes below 2^32 differ
//! only in the index's low 4 bytes, so the checksums of the same bytes under the two
//! indexes always differ. Their sequences are also all below this segment's first.)
//! Where zeros after the last unit mean "clean end" in a fresh file, here the end of this
//! life is [`life_end`]: past the last frame that verifies under this segment's index.

#![deny(clippy::indexing_slicing)]

use crate::format::{
    decode_frame, has_reuse_mark, sector_align_up, FrameCheck, SeqRule, FRAME_ALIGN,
    FRAME_HEADER_LEN, SECTOR_LEN,
};
use crate::ids::SegmentIndex;
use crate::walker::nonzero_end;
use tidelog_watermarks::GlobalSeq;

/// Whether a segment whose header is all zeros (or, for the newest, torn) is a prepared
/// segment that was never used: its body is all zeros (a fresh file), or it carries the
/// reuse mark of its index at the first frame's place (a reused file, see
/// [`crate::segment`]). The writer overwrites the mark with its first frame only after the
/// header is synced, so a header that does not verify over a marked body was never
/// followed by a frame.
pub(crate) fn is_prepared_unused(bytes: &[u8], index: SegmentIndex) -> bool {
    has_reuse_mark(bytes, index) || nonzero_end(bytes.get(SECTOR_LEN..).unwrap_or(&[])) == 0
}

/// Offset past which a reused segment holds nothing of its own life: the end of the last
/// frame anywhere in it that verifies under `index` with a sequence from `first_seq` on,
/// rounded up to a sector ([`SECTOR_LEN`] if there is none). Recovery reads the segment
/// as if the bytes from there on were zeros: a log ending there ends cleanly; a log ending
/// before it has this life's bytes after its end (a torn tail of a crash), which recovery
/// zeroes up to here, so no unacknowledged frame of this life is ever read later.
///
/// Every 8-byte position is looked at; most are passed over on the length or sequence
/// field alone (an earlier life's frames carry lower sequences), so the CRC is computed
/// only for plausible frames.
pub(crate) fn life_end(bytes: &[u8], index: SegmentIndex, first_seq: GlobalSeq) -> usize {
    // No sequence in this segment lies further above its first than it holds frames.
    let most = (bytes.len() / FRAME_HEADER_LEN) as u64 + 1;
    let last_seq = GlobalSeq(first_seq.0.saturating_add(most));
    let mut end = SECTOR_LEN;
    let mut at = SECTOR_LEN;
    while at + FRAME_HEADER_LEN <= bytes.len() {
        if let Some(seq) = plausible_seq(bytes, at).filter(|s| *s >= first_seq && *s <= last_seq) {
            let check = FrameCheck {
                segment: index,
                seq: SeqRule::Exactly(seq),
            };
            if let Ok(frame) = decode_frame(bytes, at, &check) {
                end = end.max(at.saturating_add(frame.len_on_disk));
            }
        }
        at += FRAME_ALIGN;
    }
    sector_align_up(end).map_or(bytes.len(), |e| e.min(bytes.len()))
}

/// The sequence field of a frame header at `at` whose length field is in bounds.
fn plausible_seq(bytes: &[u8], at: usize) -> Option<GlobalSeq> {
    let head = bytes.get(at..at.checked_add(FRAME_HEADER_LEN)?)?;
    let len = u32::from_le_bytes(head.get(..4)?.try_into().ok()?) as usize;
    if len < FRAME_HEADER_LEN || len > bytes.len() - at {
        return None;
    }
    Some(GlobalSeq(u64::from_le_bytes(
        head.get(8..16)?.try_into().ok()?,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{
        encode_frame_header, encode_reuse_mark, FrameHeader, FLAG_FIRST, FLAG_LAST,
    };
    use tidelog_watermarks::{LaneId, LaneSeq};

    fn frame(index: u64, seq: u64, payload: &[u8]) -> Vec<u8> {
        let header = FrameHeader {
            global_seq: GlobalSeq(seq),
            lane: LaneId(1),
            lane_seq: LaneSeq(seq),
            wall_ms: 1,
            durable_hint: GlobalSeq::ZERO,
            flags: FLAG_FIRST | FLAG_LAST,
        };
        let mut bytes = encode_frame_header(SegmentIndex(index), &header, &[], payload)
            .unwrap()
            .to_vec();
        bytes.extend_from_slice(payload);
        bytes.resize(bytes.len().div_ceil(8) * 8, 0);
        bytes
    }

    #[test]
    fn an_earlier_lifes_frames_never_extend_the_life_of_the_reused_segment() {
        let mut bytes = vec![0u8; 8192];
        // The earlier life, segment 3, sequences 1..: frames everywhere.
        let mut at = SECTOR_LEN;
        let mut seq = 1;
        while at + 200 < bytes.len() {
            let f = frame(3, seq, &[7u8; 100]);
            bytes[at..at + f.len()].copy_from_slice(&f);
            at += f.len();
            seq += 1;
        }
        // Same bytes, same sequences, read as segment 9 starting at 1: none verifies.
        assert_eq!(life_end(&bytes, SegmentIndex(9), GlobalSeq(1)), SECTOR_LEN);
        // This life: two frames of segment 9 from sequence 500 on.
        let mut at = SECTOR_LEN;
        for seq in [500, 501] {
            let f = frame(9, seq, b"new");
            bytes[at..at + f.len()].copy_from_slice(&f);
            at += f.len();
        }
        assert_eq!(life_end(&bytes, SegmentIndex(9), GlobalSeq(500)), 1024);
        assert_eq!(at, SECTOR_LEN + 2 * 56);
    }

    #[test]
    fn a_frame_of_this_life_past_a_gap_of_old_bytes_is_found() {
        let mut bytes = vec![0xA5u8; 16384];
        let f = frame(9, 502, b"late");
        bytes[4096..4096 + f.len()].copy_from_slice(&f);
        assert_eq!(life_end(&bytes, SegmentIndex(9), GlobalSeq(500)), 4608);
    }

    #[test]
    fn a_marked_body_or_a_zero_body_is_a_prepared_unused_segment_and_nothing_else_is() {
        let mut bytes = vec![0u8; 4096];
        assert!(is_prepared_unused(&bytes, SegmentIndex(4)));
        bytes[2000] = 1;
        assert!(!is_prepared_unused(&bytes, SegmentIndex(4)));
        bytes[SECTOR_LEN..SECTOR_LEN + 24].copy_from_slice(&encode_reuse_mark(SegmentIndex(4)));
        assert!(is_prepared_unused(&bytes, SegmentIndex(4)));
        assert!(
            !is_prepared_unused(&bytes, SegmentIndex(5)),
            "another index's mark"
        );
        let f = frame(4, 1, b"used");
        bytes[SECTOR_LEN..SECTOR_LEN + f.len()].copy_from_slice(&f);
        assert!(!is_prepared_unused(&bytes, SegmentIndex(4)));
    }
}
