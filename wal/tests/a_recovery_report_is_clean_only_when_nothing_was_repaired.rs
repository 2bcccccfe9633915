//! What could go wrong: `RecoveryReport::is_clean` (what `verify` and operators rely on to
//! know that nothing was cut, skipped, refused or removed) says "clean" after a repair,
//! or the corruption error stops saying what proves the damaged data was durable. Found
//! missing by cargo-mutants (docs/mutants.md).
mod common;
use common::*;
use tidelog_wal::{OpenError, RecoveryMode, Wal};

/// Six synced single-record units, one segment.
fn log(dir: &std::path::Path) {
    let (mut wal, _) = Wal::open(dir, opts(RecoveryMode::AbsoluteConsistency)).expect("open");
    for _ in 0..6 {
        append_unit(&mut wal, 1).expect("append");
        wal.sync().expect("sync");
    }
}

#[test]
fn an_untouched_log_reports_clean() {
    let dir = tempfile::tempdir().expect("tempdir");
    log(dir.path());
    let (_, rec) = Wal::open(dir.path(), opts(RecoveryMode::AbsoluteConsistency)).expect("open");
    assert!(rec.report.is_clean(), "{:?}", rec.report);
}

#[test]
fn a_cut_torn_tail_alone_makes_the_report_not_clean() {
    let dir = tempfile::tempdir().expect("tempdir");
    log(dir.path());
    let (path, at) = offsets_of(dir.path(), &[6]).remove(0);
    patch(&path, at + 50, &[0xA5]);
    let (_, rec) = Wal::open(dir.path(), opts(RecoveryMode::AbsoluteConsistency)).expect("open");
    let report = &rec.report;
    assert!(report.torn_tail.is_some(), "{report:?}");
    assert!(
        report.skipped.is_empty()
            && report.refused_segments.is_empty()
            && report.removed_files.is_empty(),
        "only the torn tail: {report:?}"
    );
    assert!(!report.is_clean());
}

#[test]
fn a_skipped_region_alone_makes_the_report_not_clean() {
    let dir = tempfile::tempdir().expect("tempdir");
    log(dir.path());
    let (path, at) = offsets_of(dir.path(), &[3]).remove(0);
    patch(&path, at + 50, &[0xA5]);
    let (_, rec) = Wal::open(dir.path(), opts(RecoveryMode::SkipCorrupted)).expect("open");
    let report = &rec.report;
    assert_eq!(report.skipped.len(), 1, "{report:?}");
    assert!(report.torn_tail.is_none() && report.removed_files.is_empty());
    assert!(!report.is_clean());
}

#[test]
fn the_corruption_error_says_which_later_frame_proves_the_data_durable() {
    let dir = tempfile::tempdir().expect("tempdir");
    log(dir.path());
    let (path, at) = offsets_of(dir.path(), &[3]).remove(0);
    patch(&path, at + 50, &[0xA5]);
    let err = Wal::open(dir.path(), opts(RecoveryMode::AbsoluteConsistency))
        .err()
        .expect("refused");
    assert!(matches!(err, OpenError::CorruptDurableData { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("durability proven by frame 4 at") && text.contains("was durable"),
        "{text}"
    );
}
