//! What could go wrong (fsyncgate): after a failed fsync the kernel has dropped the dirty
//! pages; a log that retries the sync and sees success would acknowledge data that is not
//! on disk. The log must poison itself, never call sync again, and reopen from disk.
mod common;
use common::*;
use std::path::Path;
use tidelog_wal::io::{FaultMode, OpKind};
use tidelog_wal::{AppendError, GlobalSeq, RecoveryMode, SimDisk, SyncError, Wal};

#[test]
fn a_failed_sync_poisons_the_log_and_no_later_call_reaches_the_disk() {
    let disk = SimDisk::new();
    let dir = Path::new("/db/wal");
    let o = opts(RecoveryMode::AbsoluteConsistency);
    let (mut wal, _) = Wal::open_with(disk.clone(), dir, o.clone()).unwrap();
    append_unit(&mut wal, 2).unwrap();
    let durable = wal.sync().unwrap();
    append_unit(&mut wal, 1).unwrap();
    disk.fail(OpKind::Sync, 1, FaultMode::Once);
    assert!(matches!(
        wal.sync(),
        Err(SyncError::Io {
            op: tidelog_wal::io::IoOp::Sync,
            ..
        })
    ));
    let syncs = disk.ops_of(OpKind::Sync);
    let writes = disk.ops_of(OpKind::Write);
    assert!(matches!(wal.sync(), Err(SyncError::Poisoned { .. })));
    assert!(matches!(
        append_unit(&mut wal, 1),
        Err(AppendError::Poisoned { .. })
    ));
    assert_eq!(
        disk.ops_of(OpKind::Sync),
        syncs,
        "the sync is never retried"
    );
    assert_eq!(
        disk.ops_of(OpKind::Write),
        writes,
        "nothing is written after poison"
    );
    assert_eq!(
        wal.last_durable(),
        durable,
        "durable never passes the last good sync"
    );
    assert!(wal.poisoned().is_some());
    // Every later error names the first failure, and what to do.
    let later = wal.sync().unwrap_err().to_string();
    let segment = dir.join("00000000000000000001.seg");
    let cause = format!("syncing {} failed (", segment.display());
    for part in [&cause[..], "os error 5)", "reopen it to recover"] {
        assert!(later.contains(part), "{later:?} lacks {part:?}");
    }
    drop(wal);
    // Power loss after the failure: the record whose sync failed is not on disk.
    let (wal, rec) = Wal::open_with(disk.crash_image(7), dir, o).unwrap();
    assert_eq!(rec.last_seq, durable);
    assert_eq!(read_all(&wal.reader()), vec![1, 2]);
    assert_eq!(durable, GlobalSeq(2));
}
