//! What could go wrong: a frame whose unit flags do not fit the unit around it (a frame
//! that opens a unit while another is still open, or continues one that was never
//! opened) has a valid checksum (a writer bug, a crafted or stale frame) and recovery
//! accepts it, joining or splitting atomic units. It must be `BrokenUnit`: corruption
//! when later frames prove it durable. Found missing by cargo-mutants (docs/mutants.md).
mod common;
use common::*;
use tidelog_wal::format::{
    decode_frame, encode_frame_header, FrameCheck, FrameIssue, SeqRule, FLAG_FIRST, FLAG_LAST,
};
use tidelog_wal::{GlobalSeq, OpenError, RecoveryMode, SegmentIndex, Wal};

/// Record 1 alone, records 2 and 3 as one unit, then 4..=7 alone; all synced.
fn log(dir: &std::path::Path) {
    let (mut wal, _) = Wal::open(dir, opts(RecoveryMode::AbsoluteConsistency)).expect("open");
    for size in [1, 2, 1, 1, 1, 1] {
        append_unit(&mut wal, size).expect("append");
        wal.sync().expect("sync");
    }
}

/// Rewrites the flags of record `seq` and re-signs its header, so only the flags differ.
fn set_flags(dir: &std::path::Path, seq: u64, flags: u16) {
    let (path, at) = offsets_of(dir, &[seq]).remove(0);
    let bytes = std::fs::read(&path).expect("segment");
    let check = FrameCheck {
        segment: SegmentIndex(1),
        seq: SeqRule::Exactly(GlobalSeq(seq)),
    };
    let frame = decode_frame(&bytes, at as usize, &check).expect("a valid frame");
    let mut header = frame.header;
    header.flags = flags;
    let signed =
        encode_frame_header(SegmentIndex(1), &header, frame.key, frame.payload).expect("encodable");
    patch(&path, at, &signed);
}

fn broken_unit(dir: &std::path::Path) {
    match Wal::open(dir, opts(RecoveryMode::AbsoluteConsistency)) {
        Err(OpenError::CorruptDurableData { issue, .. }) => {
            assert_eq!(issue, FrameIssue::BrokenUnit);
        }
        other => panic!(
            "expected BrokenUnit corruption, got {:?}",
            other.map(|r| r.1.report)
        ),
    }
}

#[test]
fn a_frame_that_opens_a_unit_inside_an_open_unit_is_a_broken_unit() {
    let dir = tempfile::tempdir().expect("tempdir");
    log(dir.path());
    set_flags(dir.path(), 3, FLAG_FIRST | FLAG_LAST);
    broken_unit(dir.path());
}

#[test]
fn a_frame_that_continues_a_unit_never_opened_is_a_broken_unit() {
    let dir = tempfile::tempdir().expect("tempdir");
    log(dir.path());
    set_flags(dir.path(), 4, FLAG_LAST);
    broken_unit(dir.path());
}

#[test]
fn the_re_signed_frames_are_otherwise_untouched() {
    let dir = tempfile::tempdir().expect("tempdir");
    log(dir.path());
    set_flags(dir.path(), 3, FLAG_LAST);
    set_flags(dir.path(), 4, FLAG_FIRST | FLAG_LAST);
    let (wal, rec) = Wal::open(dir.path(), opts(RecoveryMode::AbsoluteConsistency)).expect("open");
    assert!(rec.report.is_clean(), "{:?}", rec.report);
    assert_eq!(read_all(&wal.reader()), (1..=7).collect::<Vec<_>>());
}
