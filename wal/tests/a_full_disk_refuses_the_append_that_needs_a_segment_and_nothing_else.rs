//! What could go wrong: the disk fills up. Opening the log then fails because it wants
//! room for a new segment; the append that needs the next segment poisons the log (so
//! nothing more can be written even once space is freed); or the error does not say how
//! much room is needed.
mod common;
use common::*;
use std::path::Path;
use tidelog_wal::io::{FaultMode, OpKind};
use tidelog_wal::{AppendError, GlobalSeq, RecoveryMode, SimDisk, Wal};

#[test]
fn an_append_that_needs_a_segment_on_a_full_disk_is_refused_and_the_log_goes_on_once_there_is_room()
{
    let disk = SimDisk::new();
    let dir = Path::new("/db/wal");
    let (mut wal, _) =
        Wal::open_with(disk.clone(), dir, opts(RecoveryMode::AbsoluteConsistency)).expect("open");
    // The disk is full from now on: no segment can be prepared.
    disk.fail(OpKind::Allocate, 1, FaultMode::Persistent);
    let refused = loop {
        let before = wal.last_written();
        match append_unit(&mut wal, 1) {
            Ok(()) => {
                wal.sync().expect("syncs need no new space");
                assert!(before.0 < 40, "the segment fills up at some point");
            }
            Err(e) => break (e, before),
        }
    };
    let (err, last) = refused;
    match &err {
        AppendError::NoSpace { dir: d, needed } => {
            assert_eq!(d, dir);
            assert_eq!(*needed, SEGMENT);
        }
        other => panic!("{other:?}"),
    }
    let message = err.to_string();
    assert!(
        message.contains(&format!("needs {SEGMENT} bytes")) && message.contains("truncation"),
        "{message}"
    );
    assert!(
        wal.poisoned().is_none(),
        "a full disk does not poison the log"
    );
    assert_eq!(
        wal.last_written(),
        last,
        "nothing of the refused unit was written"
    );
    assert_eq!(wal.sync().expect("still syncs"), last);
    // Refused again while the disk stays full, still without poisoning.
    assert!(matches!(
        append_unit(&mut wal, 1),
        Err(AppendError::NoSpace { .. })
    ));
    // Reopening a log that needs no new segment needs no space either.
    drop(wal);
    let (mut wal, rec) = Wal::open_with(disk.clone(), dir, opts(RecoveryMode::AbsoluteConsistency))
        .expect("open on a full disk");
    assert_eq!(rec.last_seq, last);
    // Room again: the same append goes through, into the next segment.
    disk.clear_faults();
    append_unit(&mut wal, 1).expect("append once there is room");
    wal.sync().unwrap();
    assert_eq!(wal.current_segment().get(), 2);
    drop(wal);
    let (wal, rec) = Wal::open_with(disk, dir, opts(RecoveryMode::AbsoluteConsistency)).unwrap();
    assert!(rec.report.is_clean(), "{:?}", rec.report);
    assert_eq!(
        read_all(&wal.reader()),
        (1..=last.0 + 1).collect::<Vec<u64>>()
    );
    assert_eq!(rec.last_seq, GlobalSeq(last.0 + 1));
}
