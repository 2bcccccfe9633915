//! What could go wrong: a failed write, sync, fallocate (ENOSPC), open, create, rename or
//! directory sync panics, acknowledges durability it does not have, or leaves a log that
//! cannot be reopened. For every kind of operation and every position in a workload, fail
//! it once and persistently; the durable point must never pass the last good sync and a
//! reopen must return every durable record.
mod common;
use common::*;
use std::path::Path;
use tidelog_wal::io::{FaultMode, OpKind};
use tidelog_wal::{GlobalSeq, RecoveryMode, SimDisk, Wal};

/// Runs the workload until the first error; returns the last durable sequence.
fn workload(disk: &SimDisk) -> GlobalSeq {
    let dir = Path::new("/db/wal");
    let Ok((mut wal, _)) =
        Wal::open_with(disk.clone(), dir, opts(RecoveryMode::AbsoluteConsistency))
    else {
        return GlobalSeq::ZERO;
    };
    let mut durable = wal.last_durable();
    for u in 0..40u64 {
        if let Err(e) = append_unit(&mut wal, 1 + u % 3) {
            if matches!(e, tidelog_wal::AppendError::NoSpace { .. }) {
                // A full disk refuses the unit that needs a segment, and poisons nothing.
                assert!(wal.poisoned().is_none());
                break;
            }
            assert!(wal.poisoned().is_some());
            assert!(append_unit(&mut wal, 1).is_err() && wal.sync().is_err());
            break;
        }
        // Rotation syncs; take that into account.
        durable = durable.max(wal.last_durable());
        if u % 2 == 1 {
            match wal.sync() {
                Ok(d) => durable = d,
                Err(_) => {
                    assert!(wal.sync().is_err(), "poison is sticky");
                    break;
                }
            }
        }
    }
    assert!(wal.last_durable() <= durable.max(wal.last_durable()));
    durable
}

#[test]
fn every_kind_of_io_fault_at_every_position_keeps_durable_records() {
    let mut cases = 0;
    for kind in OpKind::ALL {
        let total = {
            let disk = SimDisk::new();
            workload(&disk);
            disk.ops_of(kind)
        };
        for nth in 1..=total {
            for mode in [FaultMode::Once, FaultMode::Persistent] {
                let disk = SimDisk::new();
                disk.fail(kind, nth, mode);
                let durable = workload(&disk);
                disk.clear_faults();
                // Power loss right after: only what was synced may be relied on.
                let image = disk.crash_image(nth);
                let (wal, rec) = Wal::open_with(
                    image,
                    Path::new("/db/wal"),
                    opts(RecoveryMode::AbsoluteConsistency),
                )
                .unwrap_or_else(|e| panic!("{kind:?} #{nth} {mode:?}: reopen failed: {e}"));
                assert!(
                    rec.last_seq >= durable,
                    "{kind:?} #{nth} {mode:?}: lost durable records"
                );
                let seqs = read_all(&wal.reader());
                assert_eq!(seqs, (1..=rec.last_seq.0).collect::<Vec<_>>());
                cases += 1;
            }
        }
    }
    assert!(
        cases > 100,
        "the sweep must cover the workload ({cases} cases)"
    );
    eprintln!("io fault cases run: {cases}");
}

#[test]
fn enospc_while_preparing_a_segment_is_a_typed_error_that_poisons_nothing() {
    let disk = SimDisk::new();
    let dir = Path::new("/db/wal");
    let (mut wal, _) =
        Wal::open_with(disk.clone(), dir, opts(RecoveryMode::AbsoluteConsistency)).unwrap();
    disk.fail(OpKind::Allocate, 1, FaultMode::Persistent);
    let err = loop {
        if let Err(e) = append_unit(&mut wal, 1) {
            break e;
        }
        wal.sync().unwrap();
    };
    assert!(
        matches!(err, tidelog_wal::AppendError::NoSpace { needed, .. } if needed == SEGMENT),
        "{err}"
    );
    assert!(wal.poisoned().is_none());
    let durable = wal.last_durable();
    drop(wal);
    disk.clear_faults();
    let (_, rec) = Wal::open_with(disk, dir, opts(RecoveryMode::AbsoluteConsistency)).unwrap();
    assert!(rec.last_seq >= durable);
}
