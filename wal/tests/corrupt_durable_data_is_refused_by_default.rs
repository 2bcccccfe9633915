//! What could go wrong: a damaged frame in the middle of acknowledged data is mistaken for
//! the end of the log, silently losing everything after it (FAST 2018).
mod common;
use common::*;
use tidelog_wal::{DurabilityProof, OpenError, RecoveryMode, Wal};

#[test]
fn a_damaged_frame_followed_by_frames_that_prove_it_durable_is_an_error_naming_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let o = opts(RecoveryMode::AbsoluteConsistency);
    {
        let (mut wal, _) = Wal::open(dir.path(), o.clone()).unwrap();
        for _ in 0..6 {
            append_unit(&mut wal, 1).unwrap();
            wal.sync().unwrap();
        }
    }
    let (path, offset) = offsets_of(dir.path(), &[3]).remove(0);
    patch(&path, offset + 20, &[0xFF]);
    let before = snapshot(dir.path());
    match Wal::open(dir.path(), o) {
        Err(OpenError::CorruptDurableData {
            path: p,
            offset: off,
            proof,
            ..
        }) => {
            assert_eq!(p, path);
            assert_eq!(off, offset);
            assert!(
                matches!(proof, DurabilityProof::LaterFrame { .. }),
                "{proof:?}"
            );
        }
        other => panic!("expected corruption error, got {:?}", other.map(|r| r.1)),
    }
    assert_eq!(
        snapshot(dir.path()),
        before,
        "a refused open changes nothing"
    );
}

#[test]
fn damage_at_the_end_of_a_sealed_segment_is_proven_durable_by_the_next_segment() {
    let dir = tempfile::tempdir().unwrap();
    let o = opts(RecoveryMode::AbsoluteConsistency);
    let first_of_second = {
        let (mut wal, _) = Wal::open(dir.path(), o.clone()).unwrap();
        while wal.current_segment().get() < 2 {
            append_unit(&mut wal, 1).unwrap();
        }
        let first = tidelog_wal::GlobalSeq(wal.last_written().0);
        wal.sync().unwrap();
        first
    };
    // The last record of segment 1 is the one before the first of segment 2.
    let (path, offset) = offsets_of(dir.path(), &[first_of_second.0 - 1]).remove(0);
    assert!(path.ends_with("00000000000000000001.seg"));
    patch(&path, offset + 9, &[0x55]);
    assert!(matches!(
        Wal::open(dir.path(), o),
        Err(OpenError::CorruptDurableData { .. })
    ));
}
