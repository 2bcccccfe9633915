//! What could go wrong: a segment that does not continue where the previous one ended, or
//! a sealed segment whose seal was lost, is read as if the log were contiguous, silently
//! dropping or duplicating sequences.
mod common;
use common::*;
use tidelog_wal::format::{FrameIssue, SegmentHeader, FRAME_HEADER_LEN};
use tidelog_wal::{GlobalSeq, OpenError, RecoveryMode, SegmentIndex, Wal};

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
