//! What could go wrong: `tidelog verify` repairs (or damages) what it inspects, or cannot
//! tell a harmless torn tail from corruption of durable data.
mod common;
use common::*;
use tidelog_wal::{verify, FindingKind, RecoveryMode, Verdict, Wal};

fn log(dir: &std::path::Path, synced: u64, unsynced: u64) {
    let (mut wal, _) = Wal::open(dir, opts(RecoveryMode::AbsoluteConsistency)).unwrap();
    for _ in 0..synced {
        append_unit(&mut wal, 1).unwrap();
        wal.sync().unwrap();
    }
    for _ in 0..unsynced {
        append_unit(&mut wal, 1).unwrap();
    }
}

#[test]
fn verify_calls_a_healthy_log_clean() {
    let dir = tempfile::tempdir().unwrap();
    log(dir.path(), 30, 0);
    let report = verify(dir.path(), &opts(RecoveryMode::AbsoluteConsistency)).unwrap();
    assert_eq!(report.verdict, Verdict::Clean, "{report:?}");
    assert_eq!(report.frames, 30);
    assert_eq!(report.last_seq.0, 30);
}

#[test]
fn verify_reports_a_torn_tail_and_leaves_it_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    log(dir.path(), 3, 1);
    let (path, offset) = offsets_of(dir.path(), &[4]).remove(0);
    patch(&path, offset + 50, &[0xEE; 4]);
    let before = snapshot(dir.path());
    let report = verify(dir.path(), &opts(RecoveryMode::AbsoluteConsistency)).unwrap();
    assert_eq!(report.verdict, Verdict::TornTailOnly, "{report:?}");
    assert_eq!(report.findings[0].path, path);
    assert_eq!(report.findings[0].offset, offset);
    assert!(matches!(
        report.findings[0].kind,
        FindingKind::TornTail { .. }
    ));
    assert_eq!(snapshot(dir.path()), before);
}

#[test]
fn verify_reports_corruption_of_durable_data_with_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    log(dir.path(), 10, 0);
    let (path, offset) = offsets_of(dir.path(), &[4]).remove(0);
    patch(&path, offset + 12, &[0x42]);
    let before = snapshot(dir.path());
    let report = verify(dir.path(), &opts(RecoveryMode::AbsoluteConsistency)).unwrap();
    assert_eq!(report.verdict, Verdict::Corrupt);
    let f = &report.findings[0];
    assert_eq!((f.path.clone(), f.offset), (path, offset));
    assert!(matches!(f.kind, FindingKind::CorruptFrame { .. }));
    assert_eq!(snapshot(dir.path()), before);
}
