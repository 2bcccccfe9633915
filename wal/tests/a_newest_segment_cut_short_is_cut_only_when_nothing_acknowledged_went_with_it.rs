//! The newest segment file cut short (as by `truncate -s`), read against the extent
//! record: the rows of `docs/recovery.md` for a file shorter than its header says.
//!
//! What could go wrong: a cut-short file refused by every mode (its header's size check
//! failing first), so nothing gets past it; the default mode cutting it silently; a cut
//! that took acknowledged records taken for a torn tail (no `LostRecords`, the loss not
//! recorded); the writer handing out again a sequence that was cut off; the file left
//! short, so the writer cannot continue in it; `verify` calling it clean.

mod common;

use common::{append_unit, fill, opts, read_all, Db, SEGMENT};
use std::fs;
use std::path::{Path, PathBuf};
use tidelog_wal::format::sector_align_up;
use tidelog_wal::{FindingKind, GlobalSeq, OpenError, RecoveryMode, RemovalReason, Verdict, Wal};

/// The file and offset of record `seq`.
fn frame_of(wal: &Wal, seq: u64) -> (PathBuf, u64) {
    let frame = wal.reader().get(GlobalSeq(seq)).expect("record present");
    let name = tidelog_wal::segment::segment_file_name(frame.segment());
    (PathBuf::new().join(name), frame.offset().get())
}

fn cut(path: &Path, len: u64) {
    let file = fs::OpenOptions::new().write(true).open(path).unwrap();
    file.set_len(len).unwrap();
    file.sync_all().unwrap();
}

/// The default mode refuses with `SegmentCutShort` (nothing changed) and `verify` says
/// corrupt with a cut-short finding; returns whether verify also found lost records.
fn refused_as_cut_short(db: &Db, log_ends_at: u64) -> bool {
    let before = db.image();
    match db.open(RecoveryMode::AbsoluteConsistency) {
        Err(OpenError::SegmentCutShort {
            segment_size,
            log_ends_at: ends,
            ..
        }) => {
            assert_eq!(segment_size, SEGMENT);
            assert_eq!(ends, GlobalSeq(log_ends_at));
        }
        other => panic!("expected SegmentCutShort, got {:?}", other.err()),
    }
    assert_eq!(db.image(), before, "a refused open changed files");
    verified_as_cut_short(db)
}

fn verified_as_cut_short(db: &Db) -> bool {
    let report = db.verify();
    assert_eq!(report.verdict, Verdict::Corrupt, "{:?}", report.findings);
    assert!(
        report
            .findings
            .iter()
            .any(|f| matches!(f.kind, FindingKind::CutShort { segment_size, .. } if segment_size == SEGMENT)),
        "{:?}",
        report.findings
    );
    assert!(
        !report
            .findings
            .iter()
            .any(|f| matches!(f.kind, FindingKind::TornTail { .. })),
        "a cut is not a crash's torn tail: {:?}",
        report.findings
    );
    report
        .findings
        .iter()
        .any(|f| matches!(f.kind, FindingKind::LostRecords { .. }))
}

#[test]
fn a_cut_above_everything_acknowledged_is_refused_by_default_and_cut_by_tolerate_tail() {
    let db = Db::new();
    let recorded = db.write_and_close(40).0;
    // A later writer appends and syncs, then dies before it closes: the extent record
    // still says `recorded`, the newest segment holds more.
    let (mut wal, _) = db.open(RecoveryMode::AbsoluteConsistency).unwrap();
    for _ in 0..3 {
        append_unit(&mut wal, 1).unwrap();
    }
    wal.sync().unwrap();
    let written = wal.last_durable().0;
    let (segment, at) = frame_of(&wal, recorded + 1);
    assert_eq!(
        frame_of(&wal, written).0,
        segment,
        "the test needs the new records in the same segment"
    );
    assert_eq!(frame_of(&wal, recorded).0, segment);
    drop(wal);
    let path = db.wal.join(&segment);
    // Cut through the first frame written after the record's last update.
    cut(&path, at + 20);

    assert!(
        !refused_as_cut_short(&db, recorded),
        "nothing the extent record saw durable is gone"
    );
    let (mut wal, recovered) = db.open(RecoveryMode::TolerateCorruptedTail).unwrap();
    assert!(
        recovered
            .report
            .removed_files
            .iter()
            .any(|f| f.path == path && f.reason == RemovalReason::CutShort),
        "{:?}",
        recovered.report
    );
    assert_eq!(fs::metadata(&path).unwrap().len(), SEGMENT, "file restored");
    assert_eq!(read_all(&wal.reader()), (1..=recorded).collect::<Vec<_>>());
    // The writer did not close cleanly: what the cut took may have been acknowledged, so
    // it is recorded as lost and never handed out again.
    let (first, last) = recovered.report.accepted_loss.expect("the cut is recorded");
    assert_eq!(first, GlobalSeq(recorded + 1));
    assert!(last.0 >= written, "{last} below {written}");
    append_unit(&mut wal, 1).unwrap();
    wal.sync().unwrap();
    let next = wal.last_durable().0;
    assert!(next > written, "sequence {next} handed out again");
    wal.record_extent().unwrap();
    drop(wal);

    let (wal, recovered) = db.open(RecoveryMode::AbsoluteConsistency).unwrap();
    assert!(recovered.report.is_clean(), "{:?}", recovered.report);
    let mut expected: Vec<u64> = (1..=recorded).collect();
    expected.push(next);
    assert_eq!(read_all(&wal.reader()), expected);
    drop(wal);
    let report = db.verify();
    assert_eq!(report.verdict, Verdict::Clean, "{:?}", report.findings);
}

#[test]
fn a_cut_that_took_acknowledged_records_is_refused_naming_them_and_accepted_only_explicitly() {
    let db = Db::new();
    let acknowledged = db.write_and_close(40).0;
    let lost_from = acknowledged - 3;
    let (mut wal, _) = db.open(RecoveryMode::AbsoluteConsistency).unwrap();
    let (segment, at) = frame_of(&wal, lost_from);
    assert_eq!(frame_of(&wal, acknowledged).0, segment);
    wal.record_extent().unwrap();
    drop(wal);
    let path = db.wal.join(&segment);
    cut(&path, at + 20);

    // The unit the cut went through is gone whole: the log ends before its first record.
    let mut ends = None;
    for mode in [
        RecoveryMode::AbsoluteConsistency,
        RecoveryMode::TolerateCorruptedTail,
        RecoveryMode::SkipCorrupted,
    ] {
        let before = db.image();
        match db.open(mode) {
            Err(OpenError::LostRecords { loss, .. }) => {
                assert!(loss.log_ends_at < GlobalSeq(lost_from), "{mode:?}");
                assert!(loss.log_ends_at.0 + 3 >= lost_from, "{mode:?}: {loss}");
                assert_eq!(*ends.get_or_insert(loss.log_ends_at), loss.log_ends_at);
                assert_eq!(loss.acknowledged, GlobalSeq(acknowledged), "{mode:?}");
                assert!(loss.missing_segments.is_empty());
            }
            other => panic!("{mode:?}: expected LostRecords, got {:?}", other.err()),
        }
        assert_eq!(db.image(), before, "{mode:?}: a refused open changed files");
    }
    assert!(verified_as_cut_short(&db), "verify names the lost records");
    let lost_from = ends.unwrap().0 + 1;

    let (mut wal, recovered) = db.open(RecoveryMode::AcceptLoss).unwrap();
    assert_eq!(
        recovered.report.accepted_loss,
        Some((GlobalSeq(lost_from), GlobalSeq(acknowledged))),
        "a clean close makes the lost range exact"
    );
    assert_eq!(fs::metadata(&path).unwrap().len(), SEGMENT, "file restored");
    append_unit(&mut wal, 1).unwrap();
    wal.sync().unwrap();
    assert_eq!(wal.last_durable().0, acknowledged + 1);
    wal.record_extent().unwrap();
    drop(wal);

    let (wal, _) = db.open(RecoveryMode::AbsoluteConsistency).unwrap();
    let mut expected: Vec<u64> = (1..lost_from).collect();
    expected.push(acknowledged + 1);
    assert_eq!(read_all(&wal.reader()), expected);
}

#[test]
fn a_cut_through_unused_zeros_after_a_clean_close_lets_the_writer_continue_in_the_restored_file() {
    let db = Db::new();
    let acknowledged = db.write_and_close(40).0;
    let (mut wal, _) = db.open(RecoveryMode::AbsoluteConsistency).unwrap();
    let (segment, at) = frame_of(&wal, acknowledged);
    wal.record_extent().unwrap();
    drop(wal);
    let path = db.wal.join(&segment);
    let written_end = sector_align_up(usize::try_from(at).unwrap() + 1000).unwrap() as u64;
    assert!(written_end < SEGMENT);
    cut(&path, written_end);
    let files = fs::read_dir(&db.wal).unwrap().count();

    assert!(!refused_as_cut_short(&db, acknowledged));
    let (mut wal, recovered) = db.open(RecoveryMode::TolerateCorruptedTail).unwrap();
    assert_eq!(
        recovered.report.accepted_loss, None,
        "a clean close: nothing past the acknowledged end was handed out"
    );
    assert_eq!(fs::metadata(&path).unwrap().len(), SEGMENT, "file restored");
    append_unit(&mut wal, 1).unwrap();
    wal.sync().unwrap();
    assert_eq!(wal.last_durable().0, acknowledged + 1);
    assert_eq!(
        frame_of(&wal, acknowledged + 1).0,
        segment,
        "the writer continues in the restored file"
    );
    assert_eq!(fs::read_dir(&db.wal).unwrap().count(), files);
    wal.record_extent().unwrap();
    drop(wal);
    let (wal, recovered) = db.open(RecoveryMode::AbsoluteConsistency).unwrap();
    assert!(recovered.report.is_clean(), "{:?}", recovered.report);
    assert_eq!(
        read_all(&wal.reader()),
        (1..=acknowledged + 1).collect::<Vec<_>>()
    );
}

#[test]
fn without_an_extent_record_tolerate_tail_cuts_a_file_cut_short_and_the_default_refuses() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("wal");
    let (mut wal, _) = Wal::open(&dir, opts(RecoveryMode::AbsoluteConsistency)).unwrap();
    fill(&mut wal, 40, 4);
    wal.sync().unwrap();
    let last = wal.last_durable().0;
    let (segment, at) = frame_of(&wal, last - 2);
    drop(wal);
    cut(&dir.join(&segment), at + 20);
    assert!(matches!(
        Wal::open(&dir, opts(RecoveryMode::AbsoluteConsistency)),
        Err(OpenError::SegmentCutShort { .. })
    ));
    let (mut wal, _) = Wal::open(&dir, opts(RecoveryMode::TolerateCorruptedTail)).unwrap();
    assert_eq!(read_all(&wal.reader()), (1..last - 2).collect::<Vec<_>>());
    append_unit(&mut wal, 1).unwrap();
    wal.sync().unwrap();
    drop(wal);
    let (wal, _) = Wal::open(&dir, opts(RecoveryMode::AbsoluteConsistency)).unwrap();
    assert_eq!(read_all(&wal.reader()).len() as u64, last - 2);
}
