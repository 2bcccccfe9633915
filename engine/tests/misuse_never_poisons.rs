//! Misuse is refused with nothing written and never poisons: a key, a record or a batch
//! that does not fit, on every path (local, batch, forwarded, `Database`, `LaneLogs`).
//! What could go wrong: a too-long key accepted, or refused only by the log underneath,
//! which poisons the writer so that one caller's bad argument fails every later append;
//! a record under `max_record_bytes` that still does not fit a segment poisoning the
//! writer; a forwarded refusal that leaves the connection or the writer unusable.

use tidelog::forward::LaneLogsError;
use tidelog::{
    Append, AppendError, Appender, BatchEntry, Database, Engine, Follower, GlobalSeq, LaneLogs,
    LaneSeq, Options, IDEMPOTENCY_KEY_LEN_MAX, LOSS_LANE,
};

/// Every later append still works and the log holds exactly `expected` records.
fn still_appendable(engine: &Engine, expected: u64) {
    let receipt = engine
        .append_durable(1, b"after".to_vec())
        .expect("the engine must go on after refused misuse");
    assert_eq!(
        receipt.point.global_sequence,
        expected + 1,
        "something was written"
    );
    assert!(engine.failure().is_none(), "misuse poisoned the engine");
    let all: Vec<_> = engine.scan_all(GlobalSeq(1)).unwrap().collect();
    assert_eq!(all.len() as u64, expected + 1);
}

fn small_segments() -> Options {
    // A record just under max_record_bytes cannot fit a 64 KiB segment with its header,
    // frame header and reserved last sector.
    Options::default()
        .segment_size(64 * 1024)
        .max_record_bytes(64 * 1024 - 1)
        .max_batch_bytes(64 * 1024 - 1)
}

#[test]
fn a_too_long_key_on_the_engine_is_refused_and_the_engine_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), Options::default()).unwrap();
    engine.append_durable(1, b"first".to_vec()).unwrap();
    for len in [IDEMPOTENCY_KEY_LEN_MAX + 1, 2048, 70 * 1024] {
        let err = engine
            .append_idempotent(1, vec![b'k'; len], b"p".to_vec())
            .unwrap_err();
        assert!(
            matches!(err, AppendError::KeyTooLong { size, max } if size == len && max == IDEMPOTENCY_KEY_LEN_MAX),
            "{err}"
        );
    }
    still_appendable(&engine, 1);
}

#[test]
fn a_record_under_the_limit_that_does_not_fit_a_segment_is_refused_without_poisoning() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), small_segments()).unwrap();
    engine.append_durable(1, b"first".to_vec()).unwrap();
    let err = engine.append(1, vec![7u8; 64 * 1024 - 1]).unwrap_err();
    assert!(matches!(err, AppendError::UnitTooLarge { .. }), "{err}");
    let err = engine
        .append_idempotent(1, b"key".to_vec(), vec![7u8; 64 * 1024 - 1])
        .unwrap_err();
    assert!(matches!(err, AppendError::UnitTooLarge { .. }), "{err}");
    still_appendable(&engine, 1);
}

#[test]
fn a_batch_that_does_not_fit_a_segment_is_refused_whole_without_poisoning() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), small_segments()).unwrap();
    engine.append_durable(1, b"first".to_vec()).unwrap();
    // Within max_batch_bytes, but with frame headers it needs more than a segment.
    let entries: Vec<_> = (0..64)
        .map(|i| BatchEntry::new(i % 3, vec![1u8; 1000]))
        .collect();
    let err = engine.append_batch_durable(entries).unwrap_err();
    assert!(matches!(err, AppendError::UnitTooLarge { .. }), "{err}");
    still_appendable(&engine, 1);
}

#[test]
fn a_too_long_key_through_database_is_refused_and_the_database_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path(), Options::default()).unwrap();
    assert!(db.is_writer());
    db.append_durable(1, b"first".to_vec()).unwrap();
    for len in [2048, 70 * 1024] {
        let err = db
            .append_idempotent(1, vec![b'k'; len], b"p".to_vec())
            .unwrap_err();
        assert!(matches!(err, AppendError::KeyTooLong { .. }), "{err}");
    }
    let receipt = db
        .append_idempotent(1, b"ok".to_vec(), b"p".to_vec())
        .unwrap();
    assert_eq!(receipt.point.global_sequence, 2);
    still_appendable(&db.engine().unwrap(), 2);
}

#[test]
fn a_too_long_key_or_record_forwarded_by_a_follower_is_refused_and_both_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path(), Options::default()).unwrap();
    db.append_durable(1, b"first".to_vec()).unwrap();
    let follower = Follower::connect(dir.path()).unwrap();
    for len in [2048, 70 * 1024] {
        let err = follower
            .append_idempotent(1, vec![b'k'; len], b"p".to_vec())
            .unwrap_err();
        assert!(matches!(err, AppendError::KeyTooLong { .. }), "{err}");
    }
    // Larger than the writer's max_record_bytes (4 MiB): refused by the writer.
    let err = follower.append(1, vec![0u8; 5 * 1024 * 1024]).unwrap_err();
    assert!(matches!(err, AppendError::WriterRefused { .. }), "{err}");
    // Larger than any forwarded frame: refused before it is sent.
    let err = follower.append(1, vec![0u8; 65 * 1024 * 1024]).unwrap_err();
    assert!(matches!(err, AppendError::RecordTooLarge { .. }), "{err}");
    let receipt = follower.append_durable(1, b"forwarded".to_vec()).unwrap();
    assert_eq!(receipt.point.global_sequence, 2);
    still_appendable(&db.engine().unwrap(), 2);
}

#[test]
fn a_too_long_key_through_lane_logs_is_refused_and_the_lane_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let lanes = LaneLogs::open(dir.path(), Options::default()).unwrap();
    lanes.append(3, b"first".to_vec()).unwrap();
    let err = lanes
        .append_idempotent(3, vec![b'k'; 70 * 1024], b"p".to_vec())
        .unwrap_err();
    assert!(
        matches!(
            err,
            LaneLogsError::Append {
                source: AppendError::KeyTooLong { .. },
                ..
            }
        ),
        "{err}"
    );
    let receipt = lanes.append(3, b"after".to_vec()).unwrap();
    assert_eq!(receipt.point.global_sequence, 2);
    lanes.close().unwrap();
}

#[test]
fn every_engine_append_method_refuses_a_record_that_does_not_fit_before_the_writer_sees_it() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), small_segments()).unwrap();
    engine.append_durable(1, b"first".to_vec()).unwrap();
    let big = || vec![7u8; 64 * 1024 - 1];
    let unit = |result: Result<(), AppendError>| {
        let err = result.unwrap_err();
        assert!(matches!(err, AppendError::UnitTooLarge { .. }), "{err}");
    };
    unit(
        engine
            .append_with(Append::new(1, big()).key(b"k".to_vec()).durable())
            .map(|_| ()),
    );
    unit(engine.try_append(1, big()).map(|_| ()));
    unit(engine.append_expecting(1, LaneSeq(1), big()).map(|_| ()));
    unit(engine.submit(1, big()).map(|_| ()));
    unit(
        engine
            .submit_with(Append::new(1, big()).durable())
            .map(|_| ()),
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    unit(runtime.block_on(engine.append_async(1, big())).map(|_| ()));
    unit(
        runtime
            .block_on(engine.append_durable_async(1, big()))
            .map(|_| ()),
    );
    // A key one byte over the limit on the one description is refused the same way.
    let err = engine
        .append_with(Append::new(1, b"p".to_vec()).key(vec![b'k'; IDEMPOTENCY_KEY_LEN_MAX + 1]))
        .unwrap_err();
    assert!(matches!(err, AppendError::KeyTooLong { .. }), "{err}");
    still_appendable(&engine, 1);
}

#[test]
fn a_record_that_does_not_fit_a_segment_is_refused_on_every_cross_process_path_and_each_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path(), small_segments()).unwrap();
    db.append_durable(1, b"first".to_vec()).unwrap();
    let big = || vec![7u8; 64 * 1024 - 1];
    let err = db.append_with(Append::new(1, big()).durable()).unwrap_err();
    assert!(matches!(err, AppendError::UnitTooLarge { .. }), "{err}");
    let follower = Follower::connect(dir.path()).unwrap();
    // The writer validates what the follower sent, unchanged, with the same check.
    let err = follower.append_with(Append::new(1, big())).unwrap_err();
    assert!(
        matches!(&err, AppendError::WriterRefused { message } if message.contains("does not fit in a segment")),
        "{err}"
    );
    let receipt = follower
        .append_with(Append::new(1, b"forwarded".to_vec()).key(b"f".to_vec()))
        .unwrap();
    assert_eq!(receipt.point.global_sequence, 2);
    still_appendable(&db.engine().unwrap(), 2);
    drop(follower);
    db.close().unwrap();

    let root = tempfile::tempdir().unwrap();
    let lanes = LaneLogs::open(root.path(), small_segments()).unwrap();
    lanes.append(3, b"first".to_vec()).unwrap();
    let err = lanes.append_with(Append::new(3, big())).unwrap_err();
    assert!(
        matches!(
            err,
            LaneLogsError::Append {
                source: AppendError::UnitTooLarge { .. },
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(
        lanes
            .append(3, b"after".to_vec())
            .unwrap()
            .point
            .global_sequence,
        2
    );
    lanes.close().unwrap();
}

#[test]
fn the_loss_lane_is_refused_on_every_path_so_only_the_engine_writes_there() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path(), Options::default()).unwrap();
    db.append_durable(1, b"first".to_vec()).unwrap();
    let engine = db.engine().unwrap();
    let refusals = [
        engine.append(LOSS_LANE, b"a".to_vec()).unwrap_err(),
        engine.append_durable(LOSS_LANE, b"a".to_vec()).unwrap_err(),
        engine
            .append_idempotent(LOSS_LANE, b"key".to_vec(), b"a".to_vec())
            .unwrap_err(),
        engine
            .append_with(Append::new(LOSS_LANE, b"a".to_vec()).expecting(LaneSeq(0)))
            .unwrap_err(),
        engine
            .append_batch_durable(vec![
                BatchEntry::new(2, b"a".to_vec()),
                BatchEntry::new(LOSS_LANE, b"b".to_vec()),
            ])
            .unwrap_err(),
    ];
    for err in &refusals {
        assert!(
            matches!(err, AppendError::ReservedLane { lane } if *lane == LOSS_LANE),
            "{err}"
        );
    }
    // Forwarded from another process's follower: the writer refuses it the same way.
    let follower = Follower::connect(dir.path()).unwrap();
    let err = follower.append(LOSS_LANE, b"a".to_vec()).unwrap_err();
    assert!(
        matches!(&err, AppendError::WriterRefused { .. }) && err.to_string().contains("reserved"),
        "{err}"
    );
    still_appendable(&engine, 1);
}
