//! What could go wrong: the idempotency-key map grows without bound (memory rises with
//! every keyed append ever made), a retry inside the window (a record still in the log)
//! appends a duplicate instead of returning the original receipt, before or after a
//! reopen, or keys of truncated records are kept forever.
mod common;
use common::{padded_payload, truncation_options};
use tidelog::wal::SimDisk;
use tidelog::Engine;

#[test]
fn a_retry_inside_the_window_returns_the_original_receipt_also_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let disk = SimDisk::new();
    let engine = Engine::open_with_storage(disk.clone(), dir.path(), truncation_options()).unwrap();
    let receipts: Vec<_> = (0..40u64)
        .map(|i| {
            engine
                .append_idempotent(1, format!("k{i}"), padded_payload(i))
                .unwrap()
        })
        .collect();
    let point = engine.sync().unwrap();
    let retry = engine
        .append_idempotent(1, "k7", b"other".to_vec())
        .unwrap();
    assert_eq!(retry, receipts[7]);
    assert_eq!(engine.sync().unwrap(), point, "a retry writes nothing");
    assert_eq!(engine.idempotency_keys(), 40);
    drop(engine);

    let engine = Engine::open_with_storage(disk.clone(), dir.path(), truncation_options()).unwrap();
    assert_eq!(
        engine.idempotency_keys(),
        40,
        "keys are rebuilt from the log"
    );
    for i in [0usize, 19, 39] {
        let retry = engine
            .append_idempotent(1, format!("k{i}"), b"other".to_vec())
            .unwrap();
        assert_eq!(retry, receipts[i], "key k{i} after reopen");
    }
    assert_eq!(
        engine.sync().unwrap(),
        point,
        "retries after reopen write nothing"
    );
}

#[test]
fn after_truncation_removes_a_records_segment_its_key_is_forgotten_and_the_map_shrinks() {
    let dir = tempfile::tempdir().unwrap();
    let disk = SimDisk::new();
    let engine = Engine::open_with_storage(disk.clone(), dir.path(), truncation_options()).unwrap();
    let receipts: Vec<_> = (0..100u64)
        .map(|i| {
            engine
                .append_idempotent(1, format!("k{i}"), padded_payload(i))
                .unwrap()
        })
        .collect();
    let point = engine.sync().unwrap();
    engine.checkpoint(point, b"state").unwrap();
    engine.truncate_log().unwrap();
    let starts_at = engine.truncation_status().log_starts_at;
    assert!(
        starts_at > receipts[0].point.seq(),
        "the test needs truncation to remove the first records"
    );
    // The writer drops keys below the log's start at its next group.
    let kept = receipts
        .iter()
        .position(|r| r.point.seq() >= starts_at)
        .unwrap();
    let newest = engine
        .append_idempotent(1, "k99", b"other".to_vec())
        .unwrap();
    assert_eq!(newest, receipts[99], "a key still in the log is remembered");
    assert_eq!(engine.idempotency_keys(), (100 - kept) as u64);
    assert!(engine.idempotency_keys() < 100, "the map shrank");

    // The window's edge: a retry of a truncated record's key appends anew.
    let again = engine
        .append_idempotent(1, "k0", b"again".to_vec())
        .unwrap();
    assert_ne!(again, receipts[0]);
    assert!(again.point.seq() > point.seq());
    drop(engine);

    // After reopen the window is the retained log again: k0's new record and k99.
    let engine = Engine::open_with_storage(disk.clone(), dir.path(), truncation_options()).unwrap();
    assert_eq!(engine.idempotency_keys(), (100 - kept + 1) as u64);
    assert_eq!(
        engine.append_idempotent(1, "k0", b"x".to_vec()).unwrap(),
        again
    );
    assert_eq!(
        engine.append_idempotent(1, "k99", b"x".to_vec()).unwrap(),
        receipts[99]
    );
}
