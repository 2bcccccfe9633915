//! What could go wrong: a crash while a segment is being prepared leaves `*.seg.tmp`
//! behind, and the next open either refuses it as a foreign file or keeps it forever.
mod common;
use common::*;
use tidelog_wal::{RecoveryMode, RemovalReason, Wal};

#[test]
fn a_leftover_temporary_segment_is_removed_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let o = opts(RecoveryMode::AbsoluteConsistency);
    {
        let (mut wal, _) = Wal::open(dir.path(), o.clone()).unwrap();
        append_unit(&mut wal, 1).unwrap();
        wal.sync().unwrap();
    }
    let leftover = dir.path().join("00000000000000000007.seg.tmp");
    std::fs::write(&leftover, vec![0u8; 100]).unwrap();
    let (wal, rec) = Wal::open(dir.path(), o).unwrap();
    assert!(rec
        .report
        .removed_files
        .iter()
        .any(|r| r.path == leftover && r.reason == RemovalReason::InterruptedPreparation));
    assert!(!leftover.exists());
    assert_eq!(read_all(&wal.reader()), vec![1]);
}
