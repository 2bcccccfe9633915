//! What could go wrong: recovery skips zero padding (left between units after a sync) in
//! the wrong place. Inside an open unit a zero gap means the rest of the unit never
//! reached the disk: joining a frame found past the gap would complete a unit that was
//! torn (found missing by cargo-mutants, docs/mutants.md). And after a reopen, appends
//! must continue right after the last frame (at most at the next sector boundary), not
//! further on.
mod common;
use common::*;
use tidelog_wal::format::{sector_align_up, SECTOR_LEN};
use tidelog_wal::{GlobalSeq, LaneId, LaneSeq, NewFrame, RecoveryMode, Wal};

fn frame(seq: u64, payload: &[u8]) -> NewFrame<'_> {
    NewFrame {
        global_seq: GlobalSeq(seq),
        lane: LaneId(0),
        lane_seq: LaneSeq(seq),
        wall_ms: 1_000 + seq,
        key: &[],
        payload,
    }
}

#[test]
fn a_frame_past_a_zero_gap_does_not_complete_a_torn_unit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let o = opts(RecoveryMode::AbsoluteConsistency);
    {
        let (mut wal, _) = Wal::open(dir.path(), o.clone()).expect("open");
        wal.append(&[frame(1, b"alone")]).expect("append");
        wal.sync().expect("sync");
        wal.append(&[frame(2, b"unit head"), frame(3, b"unit tail")])
            .expect("append");
        wal.sync().expect("sync");
    }
    // Move record 3 (the unit's closing frame) to the next sector boundary and zero its
    // old place: the unit now has a zero gap inside it.
    let offsets = offsets_of(dir.path(), &[2, 3]);
    let (path, at3) = offsets[1].clone();
    let bytes = std::fs::read(&path).expect("segment");
    let len3 = 48 + b"unit tail".len().next_multiple_of(8);
    let moved_to = sector_align_up(at3 as usize + 1).expect("aligned") as u64;
    let frame3 = bytes[at3 as usize..at3 as usize + len3].to_vec();
    patch(&path, at3, &vec![0; len3]);
    patch(&path, moved_to, &frame3);
    let (wal, rec) = Wal::open(dir.path(), o).expect("open");
    assert_eq!(
        rec.last_seq,
        GlobalSeq(1),
        "the torn unit was joined across the gap"
    );
    assert!(rec.report.torn_tail.is_some(), "{:?}", rec.report);
    let seqs: Vec<u64> = wal
        .reader()
        .iter_from(GlobalSeq(1))
        .map(|f| f.global_seq().0)
        .collect();
    assert_eq!(seqs, vec![1]);
}

#[test]
fn appends_after_a_reopen_continue_right_after_the_last_frame() {
    let dir = tempfile::tempdir().expect("tempdir");
    let o = opts(RecoveryMode::AbsoluteConsistency);
    // 48 + 16 bytes: the frame ends on an 8-byte boundary with a non-zero byte, so the end
    // of the frames and the end of the non-zero data coincide.
    let payload = [0xABu8; 16];
    {
        let (mut wal, _) = Wal::open(dir.path(), o.clone()).expect("open");
        wal.append(&[frame(1, &payload)]).expect("append");
        wal.sync().expect("sync");
    }
    let (path, at1) = offsets_of(dir.path(), &[1]).remove(0);
    {
        let (mut wal, rec) = Wal::open(dir.path(), o).expect("reopen");
        assert!(rec.report.is_clean(), "{:?}", rec.report);
        wal.append(&[frame(2, &payload)]).expect("append");
        wal.sync().expect("sync");
    }
    let (path2, at2) = offsets_of(dir.path(), &[2]).remove(0);
    assert_eq!(path2, path, "no rotation for one small record");
    let end1 = at1 + 64;
    assert!(
        at2 >= end1 && at2 <= end1.next_multiple_of(SECTOR_LEN as u64),
        "record 2 at {at2}, record 1 ends at {end1}"
    );
}
