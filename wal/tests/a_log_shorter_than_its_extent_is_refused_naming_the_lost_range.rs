//! The extent record (kept outside the log directory) lets recovery tell an intact log
//! from one shorter than it was. Each row of `docs/recovery.md` about what lies outside
//! the segments: newest segments missing, a middle one, the first one, all of them, the
//! log directory or its newest segment replaced by an older copy.
//!
//! What could go wrong: any of these opening as a clean, shorter log (and the writer
//! handing out again sequences that were acknowledged), an error that does not name the
//! missing range or the highest acknowledged sequence, a refusal that changes files,
//! `verify` calling such a log clean, or a legitimate truncation taken for a loss.

mod common;

use common::{fill, Db};
use std::fs;
use std::path::{Path, PathBuf};
use tidelog_wal::extent::{self, Loss};
use tidelog_wal::io::RealStorage;
use tidelog_wal::{FindingKind, GlobalSeq, OpenError, RecoveryMode, SegmentIndex, Verdict};

/// Segment files (index, path), in order.
fn segments(dir: &Path) -> Vec<(u64, PathBuf)> {
    let mut all: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .map(|p| {
            let index = p.file_stem().unwrap().to_str().unwrap().parse().unwrap();
            (index, p)
        })
        .collect();
    all.sort();
    all
}

/// Opening is refused with `LostRecords`, changing nothing, and verify says corrupt
/// with the same loss.
fn refused(db: &Db) -> Loss {
    let before = db.image();
    let err = db
        .open(RecoveryMode::AbsoluteConsistency)
        .err()
        .expect("a shorter log must not open");
    let OpenError::LostRecords { extent, loss } = err else {
        panic!("expected LostRecords, got {err}");
    };
    assert_eq!(extent, db.extent);
    assert_eq!(db.image(), before, "a refused open changed files");
    let report = db.verify();
    assert_eq!(report.verdict, Verdict::Corrupt);
    assert!(
        report
            .findings
            .iter()
            .any(|f| matches!(&f.kind, FindingKind::LostRecords { .. })
                || matches!(&f.kind, FindingKind::SegmentGap { .. })),
        "{:?}",
        report.findings
    );
    loss
}

fn range(a: u64, b: u64) -> (SegmentIndex, SegmentIndex) {
    (SegmentIndex(a), SegmentIndex(b))
}

#[test]
fn an_intact_log_opens_and_verifies_clean_with_its_extent() {
    let db = Db::new();
    let last = db.write_and_close(300);
    let recorded = extent::read(&RealStorage, &db.extent).unwrap().unwrap();
    assert_eq!(recorded.durable_seq, last);
    assert!(recorded.last_index > 3, "{recorded:?}");
    let report = db.verify();
    assert_eq!(report.verdict, Verdict::Clean, "{:?}", report.findings);
    let (wal, recovered) = db.open(RecoveryMode::AbsoluteConsistency).unwrap();
    assert_eq!(recovered.last_seq, last);
    drop(wal);
}

#[test]
fn the_newest_segments_missing_are_refused_naming_them_and_the_acknowledged_sequence() {
    let db = Db::new();
    let last = db.write_and_close(300);
    let recorded = extent::read(&RealStorage, &db.extent).unwrap().unwrap();
    let segs = segments(&db.wal);
    // The newest used segment and the prepared one after it.
    let newest = recorded.last_index;
    for (index, path) in &segs {
        if *index >= newest {
            fs::remove_file(path).unwrap();
        }
    }
    let loss = refused(&db);
    assert_eq!(loss.missing_segments, vec![range(newest, newest)]);
    assert_eq!(loss.acknowledged, last);
    assert!(loss.log_ends_at < last);
    let message = OpenError::LostRecords {
        extent: db.extent.clone(),
        loss,
    }
    .to_string();
    assert!(
        message.contains(&format!("segment {newest} is missing")),
        "{message}"
    );
    assert!(
        message.contains(&format!("{last} had been acknowledged")),
        "{message}"
    );
}

#[test]
fn a_middle_segment_missing_is_refused_naming_it() {
    let db = Db::new();
    let last = db.write_and_close(300);
    fs::remove_file(&segments(&db.wal)[1].1).unwrap();
    let loss = refused(&db);
    assert_eq!(loss.missing_segments, vec![range(2, 2)]);
    assert_eq!(loss.acknowledged, last);
    // A hole, not a log that ends at 0: the segment before it is intact.
    assert!(loss.hole, "{loss:?}");
    let said = loss.to_string();
    assert!(
        said.contains("between intact segments") && !said.contains("ends at global sequence 0"),
        "{said}"
    );
    // verify says the same: the gap, not every segment gone.
    let report = tidelog_wal::verify_with_extent(
        &tidelog_wal::RealStorage,
        &db.wal,
        &tidelog_wal::WalOptions::default(),
        &db.extent,
    )
    .unwrap();
    assert!(
        report
            .findings
            .iter()
            .all(|f| !matches!(f.kind, tidelog_wal::FindingKind::LostRecords { .. })),
        "{:?}",
        report.findings
    );
}

#[test]
fn the_first_segment_missing_is_refused_though_a_truncated_log_starts_later_too() {
    let db = Db::new();
    let last = db.write_and_close(300);
    fs::remove_file(&segments(&db.wal)[0].1).unwrap();
    let loss = refused(&db);
    assert_eq!(loss.missing_segments, vec![range(1, 1)]);
    assert_eq!(loss.acknowledged, last);
}

#[test]
fn every_segment_missing_is_refused_naming_the_whole_range() {
    let db = Db::new();
    let last = db.write_and_close(300);
    let newest = extent::read(&RealStorage, &db.extent)
        .unwrap()
        .unwrap()
        .last_index;
    for (_, path) in segments(&db.wal) {
        fs::remove_file(path).unwrap();
    }
    let loss = refused(&db);
    assert_eq!(loss.missing_segments, vec![range(1, newest)]);
    assert_eq!(loss.log_ends_at, GlobalSeq(0));
    assert_eq!(loss.acknowledged, last);
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

#[test]
fn the_log_directory_replaced_by_an_older_copy_is_refused() {
    let db = Db::new();
    db.write_and_close(100);
    let old = db.wal.with_file_name("wal-old");
    copy_dir(&db.wal, &old);
    let last = db.write_and_close(200);
    fs::remove_dir_all(&db.wal).unwrap();
    fs::rename(&old, &db.wal).unwrap();
    let loss = refused(&db);
    assert_eq!(loss.acknowledged, last);
    assert!(loss.log_ends_at < last);
}

#[test]
fn the_newest_segment_replaced_by_an_older_copy_is_refused() {
    let db = Db::new();
    db.write_and_close(100);
    let newest = segments(&db.wal)
        .into_iter()
        .rev()
        .find(|(_, p)| fs::read(p).unwrap().iter().any(|b| *b != 0))
        .unwrap();
    let copy = fs::read(&newest.1).unwrap();
    // A few more records, in the same segment, made durable and recorded at close.
    let (mut wal, _) = db.open(RecoveryMode::AbsoluteConsistency).unwrap();
    fill(&mut wal, 2, 1);
    wal.sync().unwrap();
    wal.record_extent().unwrap();
    let last = wal.last_durable();
    assert_eq!(
        wal.current_segment().get(),
        newest.0,
        "the records went elsewhere"
    );
    drop(wal);
    fs::write(&newest.1, copy).unwrap();
    let loss = refused(&db);
    assert!(loss.missing_segments.is_empty());
    assert_eq!(loss.acknowledged, last);
}

#[test]
fn a_sealed_segment_replaced_by_an_older_copy_is_refused() {
    let db = Db::new();
    // An older copy of segment 2, taken while it was the newest and before its seal.
    let (mut wal, _) = db.open(RecoveryMode::AbsoluteConsistency).unwrap();
    while wal.current_segment().get() < 2 {
        fill(&mut wal, 1, 1);
    }
    fill(&mut wal, 3, 1);
    wal.sync().unwrap();
    let copy = fs::read(segments(&db.wal)[1].1.clone()).unwrap();
    while wal.current_segment().get() < 4 {
        fill(&mut wal, 1, 1);
    }
    wal.sync().unwrap();
    drop(wal);
    fs::write(&segments(&db.wal)[1].1, copy).unwrap();
    let err = db
        .open(RecoveryMode::AbsoluteConsistency)
        .err()
        .expect("must not open");
    assert!(matches!(err, OpenError::CorruptDurableData { .. }), "{err}");
}

#[test]
fn truncation_below_a_floor_is_not_taken_for_a_loss() {
    let db = Db::new();
    let (mut wal, _) = db.open(RecoveryMode::AbsoluteConsistency).unwrap();
    fill(&mut wal, 300, 4);
    wal.sync().unwrap();
    let truncator = wal.truncator();
    let report = truncator.remove_segments_below(GlobalSeq(200)).unwrap();
    assert!(!report.removed.is_empty());
    let first = truncator.segments()[0].index.get();
    assert_eq!(
        extent::read(&RealStorage, &db.extent)
            .unwrap()
            .unwrap()
            .first_index,
        first
    );
    let last = wal.last_durable();
    drop(wal);
    let (_, recovered) = db.open(RecoveryMode::AbsoluteConsistency).unwrap();
    assert_eq!(recovered.last_seq, last);
}

#[test]
fn a_damaged_extent_record_is_refused_and_a_missing_one_is_rebuilt() {
    let db = Db::new();
    let last = db.write_and_close(50);
    let good = fs::read(&db.extent).unwrap();
    fs::write(&db.extent, vec![0xA5u8; good.len()]).unwrap();
    let err = db
        .open(RecoveryMode::AbsoluteConsistency)
        .err()
        .expect("must not open");
    assert!(matches!(err, OpenError::BadExtent { .. }), "{err}");
    fs::remove_file(&db.extent).unwrap();
    let (_, recovered) = db.open(RecoveryMode::AbsoluteConsistency).unwrap();
    assert_eq!(recovered.last_seq, last);
    let rebuilt = extent::read(&RealStorage, &db.extent).unwrap().unwrap();
    assert_eq!(rebuilt.durable_seq, last);
}
