//! What could go wrong: a segment that does not continue where the previous one ended, or
//! a sealed segment whose seal was lost, is read as if the log were contiguous, silently
//! dropping or duplicating sequences.
mod common;
use common::*;
use tidelog_wal::format::{FrameIssue, SegmentHeader, FRAME_HEADER_LEN};
use tidelog_wal::{
    verify, Finding, FindingKind, GlobalSeq, OpenError, RecoveryMode, SegmentIndex, Verdict, Wal,
};

fn two_segments(dir: &std::path::Path) -> u64 {
    let (mut wal, _) = Wal::open(dir, opts(RecoveryMode::AbsoluteConsistency)).unwrap();
    while wal.current_segment().get() < 2 {
        append_unit(&mut wal, 1).unwrap();
    }
    append_unit(&mut wal, 1).unwrap();
    wal.sync().unwrap();
    wal.last_written().0
}

#[test]
fn a_segment_that_starts_at_the_wrong_sequence_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    two_segments(dir.path());
    let second = segment_files(dir.path())[1].clone();
    let bytes = std::fs::read(&second).unwrap();
    let mut header = SegmentHeader::decode(&bytes, SegmentIndex(2)).unwrap();
    header.first_seq = GlobalSeq(header.first_seq.0 + 5);
    patch(&second, 0, &header.encode());
    match Wal::open(dir.path(), opts(RecoveryMode::AbsoluteConsistency)) {
        Err(OpenError::SequenceMismatch {
            path,
            expected,
            found,
        }) => {
            assert_eq!(path, second);
            assert_eq!(found.0, expected.0 + 5);
        }
        other => panic!("{:?}", other.map(|r| r.1)),
    }
}

#[test]
fn a_sealed_segment_that_lost_its_seal_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let last = two_segments(dir.path());
    // Segment 2 holds the last two records; the one before them ends segment 1.
    let seq = last - 2;
    let (path, offset) = offsets_of(dir.path(), &[seq]).remove(0);
    assert!(path.ends_with("00000000000000000001.seg"));
    let frame_len = (FRAME_HEADER_LEN + key(seq).len() + payload(seq).len()).div_ceil(8) * 8;
    let end = offset as usize + frame_len;
    let size = std::fs::metadata(&path).unwrap().len() as usize;
    patch(&path, end as u64, &vec![0u8; size - end]);
    match Wal::open(dir.path(), opts(RecoveryMode::AbsoluteConsistency)) {
        Err(OpenError::CorruptDurableData { issue, .. }) => {
            assert_eq!(issue, FrameIssue::MissingSeal)
        }
        other => panic!("{:?}", other.map(|r| r.1)),
    }
    // Skipping keeps everything, and says what it skipped.
    let (wal, rec) = Wal::open(dir.path(), opts(RecoveryMode::SkipCorrupted)).unwrap();
    assert_eq!(rec.report.skipped.len(), 1);
    assert_eq!(rec.report.skipped[0].issue, FrameIssue::MissingSeal);
    assert_eq!(read_all(&wal.reader()), (1..=last).collect::<Vec<_>>());
}

/// Rewrites segment 2's header so it claims to start `delta` sequences away from where
/// segment 1 ended. Returns segment 2's path and the sequence it should start at.
fn shift_second_segment(dir: &std::path::Path, delta: i64) -> (std::path::PathBuf, u64) {
    let second = segment_files(dir)[1].clone();
    let bytes = std::fs::read(&second).unwrap();
    let mut header = SegmentHeader::decode(&bytes, SegmentIndex(2)).unwrap();
    let expected = header.first_seq.0;
    header.first_seq = GlobalSeq(expected.checked_add_signed(delta).unwrap());
    patch(&second, 0, &header.encode());
    (second, expected)
}

#[test]
fn a_segment_that_starts_behind_where_the_previous_ended_is_refused_in_every_mode() {
    for mode in [
        RecoveryMode::AbsoluteConsistency,
        RecoveryMode::TolerateCorruptedTail,
        RecoveryMode::SkipCorrupted,
    ] {
        let dir = tempfile::tempdir().unwrap();
        two_segments(dir.path());
        let (second, expected) = shift_second_segment(dir.path(), -1);
        let before = snapshot(dir.path());
        // Accepting it would hand out sequence `expected - 1` twice.
        match Wal::open(dir.path(), opts(mode)) {
            Err(OpenError::SequenceMismatch {
                path,
                expected: e,
                found,
            }) => {
                assert_eq!(path, second, "{mode:?}");
                assert_eq!((e.0, found.0), (expected, expected - 1), "{mode:?}");
            }
            other => panic!("{mode:?}: {:?}", other.map(|r| r.1)),
        }
        assert_eq!(
            snapshot(dir.path()),
            before,
            "{mode:?}: a refused open changed files"
        );
    }
}

#[test]
fn skip_corrupted_reports_the_sequences_a_segment_that_starts_ahead_leaves_out() {
    let dir = tempfile::tempdir().unwrap();
    two_segments(dir.path());
    let (second, expected) = shift_second_segment(dir.path(), 5);
    let (_wal, rec) = Wal::open(dir.path(), opts(RecoveryMode::SkipCorrupted)).unwrap();
    let gap = &rec.report.skipped[0];
    assert_eq!(gap.path, second);
    assert_eq!((gap.offset, gap.len), (0, 0));
    assert_eq!(gap.first_lost, GlobalSeq(expected));
    assert_eq!(gap.resumed_at, Some(GlobalSeq(expected + 5)));
    assert_eq!(
        gap.issue,
        FrameIssue::UnexpectedSequence {
            expected: GlobalSeq(expected),
            found: GlobalSeq(expected + 5)
        }
    );
}

#[test]
fn tolerate_corrupted_tail_cuts_the_log_before_a_segment_that_starts_ahead() {
    let dir = tempfile::tempdir().unwrap();
    two_segments(dir.path());
    let (second, expected) = shift_second_segment(dir.path(), 5);
    let (wal, rec) = Wal::open(dir.path(), opts(RecoveryMode::TolerateCorruptedTail)).unwrap();
    assert!(rec.report.skipped.is_empty(), "{:?}", rec.report.skipped);
    assert!(rec.report.removed_files.iter().any(|r| r.path == second));
    assert_eq!(read_all(&wal.reader()), (1..expected).collect::<Vec<_>>());
    // The log continues right where segment 1 ended.
    let mut wal = wal;
    append_unit(&mut wal, 1).unwrap();
    wal.sync().unwrap();
    drop(wal);
    let (wal, rec) = Wal::open(dir.path(), opts(RecoveryMode::AbsoluteConsistency)).unwrap();
    assert!(rec.report.is_clean(), "{:?}", rec.report);
    assert_eq!(read_all(&wal.reader()), (1..=expected).collect::<Vec<_>>());
}

#[test]
fn verify_stops_at_a_segment_that_starts_behind_but_reads_on_past_one_that_starts_ahead() {
    // Behind: the rest would repeat sequences, so nothing after it can be judged.
    let dir = tempfile::tempdir().unwrap();
    two_segments(dir.path());
    let (second, expected) = shift_second_segment(dir.path(), -1);
    let report = verify(dir.path(), &opts(RecoveryMode::AbsoluteConsistency)).unwrap();
    assert_eq!(report.verdict, Verdict::Corrupt);
    assert_eq!(report.segments, 1, "{report:?}");
    assert_eq!(report.last_seq, GlobalSeq(expected - 1));
    assert_eq!(
        report.findings,
        vec![Finding {
            path: second,
            offset: 0,
            kind: FindingKind::SequenceMismatch {
                expected: GlobalSeq(expected),
                found: GlobalSeq(expected - 1),
            },
        }]
    );
    // Ahead: a gap, and the segment after it is still read (here its frames do not match
    // its shifted header, which is a second finding).
    let dir = tempfile::tempdir().unwrap();
    two_segments(dir.path());
    let (second, expected) = shift_second_segment(dir.path(), 5);
    let report = verify(dir.path(), &opts(RecoveryMode::AbsoluteConsistency)).unwrap();
    assert_eq!(report.segments, 2, "{report:?}");
    assert_eq!(report.findings.len(), 2, "{report:?}");
    assert_eq!(
        report.findings[0].kind,
        FindingKind::SequenceMismatch {
            expected: GlobalSeq(expected),
            found: GlobalSeq(expected + 5),
        }
    );
    assert_eq!(report.findings[1].path, second);
}

#[test]
fn a_first_segment_that_claims_sequence_zero_is_refused_in_every_mode() {
    for mode in [
        RecoveryMode::AbsoluteConsistency,
        RecoveryMode::TolerateCorruptedTail,
        RecoveryMode::SkipCorrupted,
    ] {
        let dir = tempfile::tempdir().unwrap();
        two_segments(dir.path());
        let first = segment_files(dir.path())[0].clone();
        let bytes = std::fs::read(&first).unwrap();
        let mut header = SegmentHeader::decode(&bytes, SegmentIndex(1)).unwrap();
        header.first_seq = GlobalSeq::ZERO;
        patch(&first, 0, &header.encode());
        let before = snapshot(dir.path());
        // Sequence zero is never a record's: accepting it would number the log wrongly.
        match Wal::open(dir.path(), opts(mode)) {
            Err(OpenError::SequenceMismatch {
                path,
                expected,
                found,
            }) => {
                assert_eq!(path, first, "{mode:?}");
                assert_eq!((expected, found), (GlobalSeq::ZERO, GlobalSeq::ZERO));
            }
            other => panic!("{mode:?}: {:?}", other.map(|r| r.1)),
        }
        assert_eq!(
            snapshot(dir.path()),
            before,
            "{mode:?}: a refused open changed files"
        );
    }
}
