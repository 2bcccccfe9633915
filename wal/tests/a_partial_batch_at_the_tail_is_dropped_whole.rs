//! What could go wrong: a crash in the middle of writing a batch leaves its first frames
//! valid; recovery must not return a part of an atomic unit.
mod common;
use common::*;
use tidelog_wal::{format::FrameIssue, RecoveryMode, Wal};

#[test]
fn a_batch_whose_last_frame_is_missing_is_dropped_entirely() {
    let dir = tempfile::tempdir().unwrap();
    let o = opts(RecoveryMode::AbsoluteConsistency);
    let durable = {
        let (mut wal, _) = Wal::open(dir.path(), o.clone()).unwrap();
        append_unit(&mut wal, 2).unwrap();
        let durable = wal.sync().unwrap();
        append_unit(&mut wal, 3).unwrap();
        durable
    };
    let offs = offsets_of(dir.path(), &[durable.0 + 1, durable.0 + 3]);
    let (path, first_off) = offs[0].clone();
    let (_, last_off) = offs[1].clone();
    let len = std::fs::metadata(&path).unwrap().len();
    // The last frame of the batch never reached the disk.
    patch(&path, last_off, &vec![0u8; (len - last_off) as usize]);
    let (wal, rec) = Wal::open(dir.path(), o).unwrap();
    assert_eq!(rec.last_seq, durable);
    let torn = rec
        .report
        .torn_tail
        .expect("partial unit reported as torn tail");
    assert_eq!(torn.offset, first_off);
    assert_eq!(torn.issue, FrameIssue::PartialUnit);
    assert!(wal
        .reader()
        .get(tidelog_wal::GlobalSeq(durable.0 + 1))
        .is_none());
}
