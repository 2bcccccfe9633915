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

#[test]
fn a_leftover_that_cannot_be_removed_fails_the_open_and_stays_for_the_next_one() {
    use std::path::Path;
    use tidelog_wal::io::{FaultMode, IoOp, OpKind};
    use tidelog_wal::{OpenError, SimDisk};
    let disk = SimDisk::new();
    let dir = Path::new("/db/wal");
    let o = opts(RecoveryMode::AbsoluteConsistency);
    {
        let (mut wal, _) = Wal::open_with(disk.clone(), dir, o.clone()).unwrap();
        append_unit(&mut wal, 1).unwrap();
        wal.sync().unwrap();
    }
    let leftover = dir.join("00000000000000000007.seg.tmp");
    disk.put_file(&leftover, &[0u8; 100]).unwrap();
    // The removal fails (EIO): the open says so instead of carrying on as if it had worked.
    disk.fail(
        OpKind::Remove,
        disk.ops_of(OpKind::Remove) + 1,
        FaultMode::Once,
    );
    match Wal::open_with(disk.clone(), dir, o.clone()) {
        Err(OpenError::Io { op, path, .. }) => {
            assert_eq!((op, path.as_path()), (IoOp::Remove, leftover.as_path()));
        }
        other => panic!("{:?}", other.map(|r| r.1)),
    }
    assert!(disk.file_bytes(&leftover).is_some());
    // Once the disk works again the next open removes it.
    let (wal, rec) = Wal::open_with(disk.clone(), dir, o).unwrap();
    assert!(rec.report.removed_files.iter().any(|r| r.path == leftover));
    assert!(disk.file_bytes(&leftover).is_none());
    assert_eq!(read_all(&wal.reader()), vec![1]);
}

#[test]
fn rotation_uses_the_prepared_segment_without_removing_or_preparing_it_again() {
    use std::path::Path;
    use tidelog_wal::io::OpKind;
    use tidelog_wal::{SimDisk, WalOptions};
    for background in [false, true] {
        let disk = SimDisk::new();
        let o = WalOptions {
            prepare_in_background: background,
            ..opts(RecoveryMode::AbsoluteConsistency)
        };
        let (mut wal, _) = Wal::open_with(disk.clone(), Path::new("/db/wal"), o).unwrap();
        fill(&mut wal, 60, 2);
        let segments = wal.current_segment().get();
        assert!(segments > 3, "the test must rotate");
        drop(wal);
        // One file prepared per segment (and the next one once the last is half full):
        // none thrown away and redone.
        assert_eq!(disk.ops_of(OpKind::Remove), 0, "background {background}");
        let prepared = disk.ops_of(OpKind::Allocate);
        assert!(
            prepared == segments || prepared == segments + 1,
            "background {background}: {prepared} preparations for {segments} segments"
        );
    }
}
