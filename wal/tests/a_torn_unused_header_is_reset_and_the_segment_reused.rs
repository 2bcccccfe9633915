//! What could go wrong: a crash tore the header store of a rotation (the next segment's
//! header, nothing after it). Recovery must reset that header and reuse the segment, so
//! appends continue and the next open is clean; it must not do the same to a damaged
//! header of a last segment that holds frames, which is corruption. Found missing by
//! cargo-mutants (docs/mutants.md).
mod common;
use common::*;
use tidelog_wal::{OpenError, RecoveryMode, RemovalReason, Wal};

/// A synced log whose last file is a segment prepared ahead, all zeros.
fn log(dir: &std::path::Path) -> std::path::PathBuf {
    let (mut wal, _) = Wal::open(dir, opts(RecoveryMode::AbsoluteConsistency)).expect("open");
    fill(&mut wal, 30, 1);
    // The next segment is prepared once the current one is half full.
    for _ in 0..20 {
        if segment_files(dir).len() > wal.current_segment().get() as usize {
            break;
        }
        append_unit(&mut wal, 1).expect("append");
        wal.sync().expect("sync");
    }
    drop(wal);
    let last = segment_files(dir).pop().expect("segments");
    let bytes = std::fs::read(&last).expect("last segment");
    assert!(
        bytes.iter().all(|&b| b == 0),
        "the last segment is prepared, unused"
    );
    last
}

/// Opens the log in `dir` whose last segment `last` has a torn header: recovery reports
/// the header reset, 30 more units go in, synced, and the next open is clean and returns
/// every record.
fn is_reset_and_later_appends_survive_a_reopen(dir: &std::path::Path, last: &std::path::Path) {
    let (mut wal, rec) = Wal::open(dir, opts(RecoveryMode::AbsoluteConsistency)).expect("open");
    assert!(
        rec.report
            .removed_files
            .iter()
            .any(|r| r.path == last && r.reason == RemovalReason::TornUnusedHeader),
        "{:?}",
        rec.report
    );
    let before = rec.last_seq.0;
    fill(&mut wal, 30, 1);
    let after = wal.last_durable().0;
    assert!(after > before);
    drop(wal);
    let (wal, rec) = Wal::open(dir, opts(RecoveryMode::AbsoluteConsistency))
        .unwrap_or_else(|e| panic!("the reset segment does not reopen: {e}"));
    assert!(rec.report.is_clean(), "{:?}", rec.report);
    assert_eq!(read_all(&wal.reader()), (1..=after).collect::<Vec<_>>());
}

#[test]
fn a_torn_header_over_an_empty_body_is_reset_and_appends_continue_across_reopens() {
    let dir = tempfile::tempdir().expect("tempdir");
    let last = log(dir.path());
    // Half a header: the magic and garbage where the rest should be.
    patch(&last, 0, b"TDLGWAL\0\x01\x00\x00\x00\xde\xad\xbe\xef");
    is_reset_and_later_appends_survive_a_reopen(dir.path(), &last);
}

#[test]
fn a_header_sector_torn_into_garbage_past_the_header_is_reset_whole_and_later_appends_survive() {
    let dir = tempfile::tempdir().expect("tempdir");
    let last = log(dir.path());
    // A torn sector store leaves garbage in the whole sector, not only in the header's
    // 64 bytes; resetting only those left the rest to be cut later as a torn tail in
    // front of the next writer's synced records.
    let garbage: Vec<u8> = (0..512u32).map(|i| (i * 37 + 11) as u8).collect();
    patch(&last, 0, &garbage);
    is_reset_and_later_appends_survive_a_reopen(dir.path(), &last);
}

#[test]
fn a_damaged_header_of_a_last_segment_with_frames_is_refused_not_reset() {
    let dir = tempfile::tempdir().expect("tempdir");
    let prepared = log(dir.path());
    // Without the prepared segment, the last file is the one holding the newest frames.
    std::fs::remove_file(&prepared).expect("remove");
    let last = segment_files(dir.path()).pop().expect("segments");
    patch(&last, 20, &[0x5A]);
    let before = snapshot(dir.path());
    let err = Wal::open(dir.path(), opts(RecoveryMode::AbsoluteConsistency))
        .err()
        .expect("refused");
    assert!(matches!(err, OpenError::BadSegmentHeader { .. }), "{err}");
    assert_eq!(
        snapshot(dir.path()),
        before,
        "a refused open changes nothing"
    );
}
