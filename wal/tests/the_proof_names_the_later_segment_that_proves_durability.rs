//! What could go wrong: damage at the end of a sealed segment is proven durable by the
//! segment after it, and the error names the wrong file as that proof (the damaged
//! segment itself, say), sending an operator to the wrong place. Found missing by
//! cargo-mutants (docs/mutants.md).
mod common;
use common::*;
use tidelog_wal::{DurabilityProof, GlobalSeq, OpenError, RecoveryMode, Wal};

#[test]
fn the_later_segment_named_as_proof_is_the_one_after_the_damaged_segment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let o = opts(RecoveryMode::AbsoluteConsistency);
    let first_of_second = {
        let (mut wal, _) = Wal::open(dir.path(), o.clone()).expect("open");
        while wal.current_segment().get() < 2 {
            append_unit(&mut wal, 1).expect("append");
        }
        let first = GlobalSeq(wal.last_written().0);
        wal.sync().expect("sync");
        first
    };
    let (path, offset) = offsets_of(dir.path(), &[first_of_second.0 - 1]).remove(0);
    patch(&path, offset + 9, &[0x55]);
    match Wal::open(dir.path(), o) {
        Err(OpenError::CorruptDurableData {
            path: damaged,
            proof: DurabilityProof::LaterSegment { path: proof },
            ..
        }) => {
            assert_eq!(damaged, path);
            assert!(
                proof.ends_with("00000000000000000002.seg"),
                "proof names {}",
                proof.display()
            );
        }
        other => panic!(
            "expected a LaterSegment proof, got {:?}",
            other.map(|r| r.1.report)
        ),
    }
}
