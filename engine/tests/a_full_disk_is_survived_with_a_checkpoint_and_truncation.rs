//! What could go wrong: when the disk fills up, the append that needs the log's next
//! segment poisons the engine, so the database cannot even take the checkpoint and
//! truncate the log that would free space, and someone has to delete files by hand; or the
//! error does not say how much room is needed.
mod common;
use common::{padded_payload, truncation_options};
use tidelog::wal::io::{FaultMode, OpKind};
use tidelog::wal::SimDisk;
use tidelog::{AppendError, Engine, GlobalSeq};

#[test]
fn a_full_disk_refuses_appends_without_poisoning_and_a_checkpoint_and_truncation_let_it_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let disk = SimDisk::new();
    let engine = Engine::open_with_storage(disk.clone(), dir.path(), truncation_options()).unwrap();
    for i in 1..=30 {
        engine.append_durable(1, padded_payload(i)).unwrap();
    }
    // The disk is full: no segment can be prepared any more.
    disk.fail(OpKind::Allocate, 1, FaultMode::Persistent);
    let mut appended = 30;
    let err = loop {
        match engine.append_durable(1, padded_payload(appended + 1)) {
            Ok(_) => appended += 1,
            Err(e) => break e,
        }
        assert!(appended < 60, "the segment fills up at some point");
    };
    match &err {
        AppendError::NoSpace { needed, .. } => assert_eq!(*needed, 8 * 1024),
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("needs 8192 bytes"), "{err}");
    assert!(engine.failure().is_none(), "a full disk poisons nothing");
    // The database goes on: a checkpoint, then truncation, which frees old segments.
    let point = engine.sync().unwrap();
    assert_eq!(point.global_sequence, appended);
    engine.checkpoint(point, b"state").unwrap();
    let removed = engine.truncate_log().unwrap().removed.removed;
    assert!(!removed.is_empty(), "truncation frees segments");
    // The simulated disk counts no space: the room truncation freed is given back here.
    disk.clear_faults();
    let receipt = engine
        .append_durable(1, padded_payload(appended + 1))
        .unwrap();
    assert_eq!(receipt.global_seq(), GlobalSeq(appended + 1));
    engine.close().unwrap();
    drop(engine);
    let engine = Engine::open_with_storage(disk, dir.path(), truncation_options()).unwrap();
    let last = engine
        .read(1, receipt.lane_seq)
        .unwrap()
        .expect("the last record");
    assert_eq!(last.payload(), &padded_payload(appended + 1)[..]);
}
