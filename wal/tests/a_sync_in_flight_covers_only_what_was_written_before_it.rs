//! What could go wrong with a sync that runs on another thread while appends go on: the
//! log counting records appended during the sync as durable, a sector being rewritten
//! while it is synced, or a failed background sync not poisoning the log.
mod common;
use common::*;
use std::path::Path;
use tidelog_wal::io::{FaultMode, OpKind};
use tidelog_wal::{AppendError, GlobalSeq, RecoveryMode, SimDisk, SyncError, Wal};

#[test]
fn appends_during_an_in_flight_sync_are_not_durable_until_a_later_sync() {
    let disk = SimDisk::new();
    let dir = Path::new("/db/wal");
    let o = opts(RecoveryMode::AbsoluteConsistency);
    let (mut wal, _) = Wal::open_with(disk.clone(), dir, o.clone()).unwrap();
    append_unit(&mut wal, 3).unwrap();
    let job = wal.begin_sync().unwrap().expect("something to sync");
    assert_eq!(job.upto(), GlobalSeq(3));
    // Its debug form says what it syncs.
    let shown = format!("{job:?}");
    assert!(
        shown.starts_with("SyncJob") && shown.contains("upto: GlobalSeq(3)"),
        "{shown}"
    );
    assert!(
        wal.begin_sync().unwrap().is_none(),
        "one sync in flight at a time"
    );
    append_unit(&mut wal, 2).unwrap();
    let result = std::thread::scope(|s| s.spawn(|| job.run()).join().unwrap());
    assert_eq!(wal.finish_sync(job, result).unwrap(), GlobalSeq(3));
    assert_eq!(wal.last_durable(), GlobalSeq(3));
    assert_eq!(wal.last_written(), GlobalSeq(5));
    // A power loss now keeps 1..=3 whatever happens to the unsynced sectors.
    for seed in 0..8 {
        let image = disk.crash_image(seed);
        let (reopened, _) = Wal::open_with(image, dir, o.clone()).unwrap();
        let seqs = read_all(&reopened.reader());
        assert!(seqs.starts_with(&[1, 2, 3]), "seed {seed}: {seqs:?}");
    }
    assert_eq!(wal.sync().unwrap(), GlobalSeq(5));
}

#[test]
fn a_failed_background_sync_poisons_the_log() {
    let disk = SimDisk::new();
    let dir = Path::new("/db/wal");
    let (mut wal, _) =
        Wal::open_with(disk.clone(), dir, opts(RecoveryMode::AbsoluteConsistency)).unwrap();
    append_unit(&mut wal, 2).unwrap();
    disk.fail(OpKind::Sync, 1, FaultMode::Once);
    let job = wal.begin_sync().unwrap().expect("something to sync");
    let result = job.run();
    assert!(result.is_err());
    assert!(matches!(
        wal.finish_sync(job, result),
        Err(SyncError::Io { .. })
    ));
    assert_eq!(wal.last_durable(), GlobalSeq::ZERO);
    assert!(matches!(wal.begin_sync(), Err(SyncError::Poisoned { .. })));
    assert!(matches!(
        append_unit(&mut wal, 1),
        Err(AppendError::Poisoned { .. })
    ));
}

#[test]
fn a_sync_in_flight_across_a_rotation_leaves_the_new_segment_to_the_next_sync() {
    let dir = Path::new("/db/wal");
    let o = opts(RecoveryMode::AbsoluteConsistency);
    // How many one-record units segment 1 holds (the same appends, on a scratch disk).
    let fit = {
        let (mut wal, _) = Wal::open_with(SimDisk::new(), dir, o.clone()).unwrap();
        let mut n = 0;
        while {
            append_unit(&mut wal, 1).unwrap();
            wal.current_segment().get() == 1
        } {
            n += 1;
        }
        n
    };
    let disk = SimDisk::new();
    let (mut wal, _) = Wal::open_with(disk.clone(), dir, o.clone()).unwrap();
    for _ in 0..fit {
        append_unit(&mut wal, 1).unwrap();
    }
    let job = wal.begin_sync().unwrap().expect("something to sync");
    append_unit(&mut wal, 1).unwrap();
    assert_eq!(wal.current_segment().get(), 2, "the unit rotated");
    let result = job.run();
    wal.finish_sync(job, result).unwrap();
    // Segment 1's sync says nothing about segment 2: the next sync must cover it whole.
    append_unit(&mut wal, 1).unwrap();
    let last = wal.sync().unwrap();
    assert_eq!(last, wal.last_written());
    for seed in 0..8 {
        let (reopened, _) = Wal::open_with(disk.crash_image(seed), dir, o.clone()).unwrap();
        assert_eq!(
            read_all(&reopened.reader()),
            (1..=last.0).collect::<Vec<_>>(),
            "seed {seed}"
        );
    }
}
