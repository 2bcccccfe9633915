//! What could go wrong: a crash leaves half a frame at the end of the log, and recovery
//! either refuses to open (treating it as corruption), returns the half frame, or forgets
//! to zero it so that a later append could resurrect stale bytes.
mod common;
use common::*;
use tidelog_wal::{format::FrameIssue, GlobalSeq, RecoveryMode, Wal};

#[test]
fn a_torn_last_frame_is_cut_zeroed_synced_and_reported_with_the_bytes_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let o = opts(RecoveryMode::AbsoluteConsistency);
    let (durable, torn_seq) = {
        let (mut wal, _) = Wal::open(dir.path(), o.clone()).unwrap();
        for _ in 0..5 {
            append_unit(&mut wal, 1).unwrap();
        }
        let durable = wal.sync().unwrap();
        append_unit(&mut wal, 1).unwrap();
        (durable, wal.last_written())
    };
    let (path, offset) = offsets_of(dir.path(), &[torn_seq.0]).remove(0);
    // Damage the unsynced frame's payload, as a crash that wrote only its first sector.
    patch(&path, offset + 60, &[0xAB; 8]);
    let (wal, rec) = Wal::open(dir.path(), o.clone()).unwrap();
    let torn = rec.report.torn_tail.clone().expect("torn tail reported");
    assert_eq!(torn.path, path);
    assert_eq!(torn.offset, offset);
    assert!(torn.bytes_dropped >= 68, "{torn:?}");
    assert!(matches!(torn.issue, FrameIssue::Checksum { .. }));
    assert_eq!(rec.last_seq, durable);
    assert_eq!(read_all(&wal.reader()), (1..=durable.0).collect::<Vec<_>>());
    drop(wal);
    let bytes = std::fs::read(&path).unwrap();
    assert!(
        bytes[offset as usize..].iter().all(|&b| b == 0),
        "rest zeroed"
    );
    let (_, again) = Wal::open(dir.path(), o).unwrap();
    assert!(again.report.torn_tail.is_none());
    assert_eq!(again.last_seq, GlobalSeq(durable.0));
}
