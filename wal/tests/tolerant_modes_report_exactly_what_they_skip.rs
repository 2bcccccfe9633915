//! What could go wrong: a tolerant recovery mode loses more than the damaged unit, or
//! loses it without saying so, or returns garbage from the damaged region.
mod common;
use common::*;
use tidelog_wal::{GlobalSeq, RecoveryMode, RemovalReason, Wal};

fn damaged_log(dir: &std::path::Path) -> (std::path::PathBuf, u64, u64) {
    {
        let (mut wal, _) = Wal::open(dir, opts(RecoveryMode::AbsoluteConsistency)).unwrap();
        for _ in 0..60 {
            append_unit(&mut wal, 1).unwrap();
            wal.sync().unwrap();
        }
        assert!(wal.current_segment().get() >= 3);
    }
    let (path, offset) = offsets_of(dir, &[5]).remove(0);
    patch(&path, offset + 30, &[0x01, 0x02]);
    let last = 60;
    (path, offset, last)
}

#[test]
fn tolerate_corrupted_tail_cuts_at_the_damaged_unit_and_drops_later_segments() {
    let dir = tempfile::tempdir().unwrap();
    let (path, offset, _) = damaged_log(dir.path());
    let (mut wal, rec) = Wal::open(dir.path(), opts(RecoveryMode::TolerateCorruptedTail)).unwrap();
    assert_eq!(rec.last_seq, GlobalSeq(4));
    assert_eq!(rec.report.skipped.len(), 1, "{:?}", rec.report);
    let s = &rec.report.skipped[0];
    assert_eq!(
        (s.path.clone(), s.offset, s.first_lost, s.resumed_at),
        (path, offset, GlobalSeq(5), None)
    );
    assert!(rec
        .report
        .removed_files
        .iter()
        .any(|r| r.reason == RemovalReason::AfterCut));
    assert_eq!(read_all(&wal.reader()), vec![1, 2, 3, 4]);
    // The cut log takes new records and reopens cleanly under the strict mode.
    append_unit(&mut wal, 1).unwrap();
    wal.sync().unwrap();
    drop(wal);
    let (_, rec) = Wal::open(dir.path(), opts(RecoveryMode::AbsoluteConsistency)).unwrap();
    assert_eq!(rec.last_seq, GlobalSeq(5));
}

#[test]
fn skip_corrupted_keeps_every_unit_after_the_damage_and_reports_the_hole() {
    let dir = tempfile::tempdir().unwrap();
    let (path, offset, last) = damaged_log(dir.path());
    let (wal, rec) = Wal::open(dir.path(), opts(RecoveryMode::SkipCorrupted)).unwrap();
    assert_eq!(rec.last_seq, GlobalSeq(last));
    assert_eq!(rec.report.skipped.len(), 1, "{:?}", rec.report);
    let s = &rec.report.skipped[0];
    assert_eq!(
        (s.path.clone(), s.offset, s.first_lost, s.resumed_at),
        (path, offset, GlobalSeq(5), Some(GlobalSeq(6)))
    );
    assert!(s.len >= 48);
    let seqs = read_all(&wal.reader());
    let expected: Vec<u64> = (1..=last).filter(|s| *s != 5).collect();
    assert_eq!(seqs, expected);
    assert!(wal.reader().get(GlobalSeq(5)).is_none());
}

#[test]
fn skip_corrupted_never_hands_out_again_a_sequence_seen_past_damage_it_cannot_resume_after() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut wal, _) = Wal::open(dir.path(), opts(RecoveryMode::AbsoluteConsistency)).unwrap();
        // Units [1], [2], [3, 4, 5], each synced: 4 and 5 were written when 2 was durable.
        for size in [1, 1, 3] {
            append_unit(&mut wal, size).unwrap();
            wal.sync().unwrap();
        }
    }
    // Record 2 damaged, and the first frame of the unit after it: 4 and 5 prove 2 was
    // durable, but no unit starts after the damage to resume at.
    for (path, offset) in offsets_of(dir.path(), &[2, 3]) {
        patch(&path, offset + 30, &[0x01, 0x02]);
    }
    let (mut wal, rec) = Wal::open(dir.path(), opts(RecoveryMode::SkipCorrupted)).unwrap();
    assert_eq!(
        rec.last_seq,
        GlobalSeq(5),
        "the log continues above 5, seen past the damage: {:?}",
        rec.report
    );
    assert_eq!(read_all(&wal.reader()), vec![1]);
    append_unit(&mut wal, 1).unwrap();
    wal.sync().unwrap();
    drop(wal);
    let (wal, rec) = Wal::open(dir.path(), opts(RecoveryMode::SkipCorrupted)).unwrap();
    assert_eq!(rec.last_seq, GlobalSeq(6));
    assert_eq!(read_all(&wal.reader()), vec![1, 6]);
}
