//! The append limits are inclusive: a key of exactly `IDEMPOTENCY_KEY_LEN_MAX` bytes, a
//! payload of exactly `max_record_bytes`, a batch of exactly `max_batch_records` records
//! and of exactly `max_batch_bytes` bytes are accepted, and one byte or one record more
//! is refused with nothing written; an append is answered once written unless it asks
//! to be durable.
//! What could go wrong: an off-by-one in the engine's one validation (`check_key`,
//! `check_unit`, the batch bounds) that refuses what the documentation promises to take,
//! or takes one byte more than it promises; a plain append that waits for a sync. Found
//! by the mutation run of `docs/mutants.md`: `>` turned into `>=` and
//! `Append::is_durable` always `true` went unnoticed before this file. And the shorthands
//! of every handle (the `Appender` trait's provided methods): a follower, a database or
//! the lanes answering a plain append before it is durable (their receipt crosses a
//! process), or the engine's plain shorthands waiting for a sync.

use tidelog::{
    Append, AppendError, Appender, BatchEntry, Database, Engine, Follower, GlobalSeq, LaneLogs,
    LaneSeq, Options, Receipt, IDEMPOTENCY_KEY_LEN_MAX,
};

const RECORD_MAX: u32 = 4 * 1024;
const BATCH_RECORDS_MAX: usize = 8;
const BATCH_BYTES_MAX: u64 = 16 * 1024;

fn options() -> Options {
    let mut options = Options::default()
        .segment_size(1024 * 1024)
        .max_record_bytes(RECORD_MAX)
        .max_batch_bytes(BATCH_BYTES_MAX);
    options.max_batch_records = BATCH_RECORDS_MAX;
    options
}

fn records(engine: &Engine) -> usize {
    engine.scan_all(GlobalSeq(1)).unwrap().count()
}

#[test]
fn a_key_of_exactly_the_limit_is_accepted_and_one_byte_more_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), options()).unwrap();
    engine
        .append_with(
            Append::new(1, b"p".to_vec())
                .key(vec![b'k'; IDEMPOTENCY_KEY_LEN_MAX])
                .durable(),
        )
        .expect("a key of exactly the limit is accepted");
    let err = engine
        .append_with(
            Append::new(1, b"p".to_vec())
                .key(vec![b'k'; IDEMPOTENCY_KEY_LEN_MAX + 1])
                .durable(),
        )
        .unwrap_err();
    assert!(matches!(err, AppendError::KeyTooLong { .. }), "{err}");
    assert_eq!(records(&engine), 1);
}

#[test]
fn a_payload_of_exactly_max_record_bytes_is_accepted_and_one_byte_more_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), options()).unwrap();
    engine
        .append_durable(1, vec![7u8; RECORD_MAX as usize])
        .expect("a payload of exactly the limit is accepted");
    let err = engine
        .append_durable(1, vec![7u8; RECORD_MAX as usize + 1])
        .unwrap_err();
    assert!(matches!(err, AppendError::RecordTooLarge { .. }), "{err}");
    assert_eq!(records(&engine), 1);
}

#[test]
fn a_batch_of_exactly_max_batch_records_is_accepted_and_one_record_more_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), options()).unwrap();
    let batch = |n: usize| (0..n).map(|_| BatchEntry::new(1, b"r".to_vec())).collect();
    let receipts = engine
        .append_batch_durable(batch(BATCH_RECORDS_MAX))
        .expect("a batch of exactly the record limit is accepted");
    assert_eq!(receipts.len(), BATCH_RECORDS_MAX);
    let err = engine
        .append_batch_durable(batch(BATCH_RECORDS_MAX + 1))
        .unwrap_err();
    assert!(matches!(err, AppendError::BatchOutOfBounds { .. }), "{err}");
    assert_eq!(records(&engine), BATCH_RECORDS_MAX);
}

#[test]
fn a_batch_of_exactly_max_batch_bytes_is_accepted_and_one_byte_more_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), options()).unwrap();
    // Four records of a quarter of the byte limit each: within the record limit too.
    let quarter = (BATCH_BYTES_MAX / 4) as usize;
    let batch = |last: usize| {
        let mut entries: Vec<BatchEntry> = (0..3)
            .map(|_| BatchEntry::new(2, vec![1u8; quarter]))
            .collect();
        entries.push(BatchEntry::new(2, vec![1u8; last]));
        entries
    };
    assert!(quarter <= RECORD_MAX as usize);
    engine
        .append_batch_durable(batch(quarter))
        .expect("a batch of exactly the byte limit is accepted");
    let err = engine.append_batch_durable(batch(quarter + 1)).unwrap_err();
    assert!(matches!(err, AppendError::BatchOutOfBounds { .. }), "{err}");
    assert_eq!(records(&engine), 4);
}

#[test]
fn an_empty_batch_is_refused_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), options()).unwrap();
    let err = engine.append_batch(Vec::new()).unwrap_err();
    assert!(
        matches!(err, AppendError::BatchOutOfBounds { records: 0, .. }),
        "{err}"
    );
    assert_eq!(records(&engine), 0);
}

#[test]
fn a_plain_append_under_sync_never_is_answered_without_a_sync_and_a_durable_one_with_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = options();
    options.sync_policy = tidelog::SyncPolicy::Never;
    let engine = Engine::open(dir.path(), options).unwrap();
    let written = engine.append(1, b"written".to_vec()).unwrap();
    assert_eq!(
        engine.io_counters().0,
        0,
        "a written append must not wait for a sync"
    );
    assert!(!engine.watermarks().global.durable_hlc.covers(written.point));
    let durable = engine.append_durable(1, b"durable".to_vec()).unwrap();
    assert_eq!(
        engine.io_counters().0,
        1,
        "a durable append gets a sync of its own"
    );
    assert!(engine.watermarks().global.durable_hlc.covers(durable.point));
}

/// Appends to `lane` of `log` through each shorthand of the [`Appender`] trait, the durable
/// one last (its sync covers what came before), and says of each whether `writer` had
/// made the record durable when the shorthand answered.
fn durable_when_answered<A: Appender>(
    log: &A,
    writer: &Engine,
    lane: u32,
) -> Vec<(&'static str, bool)>
where
    A::Error: std::fmt::Debug,
{
    let durable = |receipt: Receipt| writer.watermarks().global.durable_hlc.covers(receipt.point);
    let plain = log.append(lane, b"plain".to_vec()).unwrap();
    let plain = ("append", durable(plain));
    let expecting = log.append_expecting(lane, LaneSeq(1), b"expecting".to_vec());
    let expecting = ("append_expecting", durable(expecting.unwrap()));
    let keyed = log.append_idempotent(lane, b"k1".to_vec(), b"keyed".to_vec());
    let keyed = ("append_idempotent", durable(keyed.unwrap()));
    let both =
        log.append_idempotent_expecting(lane, b"k2".to_vec(), Some(LaneSeq(3)), b"b".to_vec());
    let both = ("append_idempotent_expecting", durable(both.unwrap()));
    let synced = log.append_durable(lane, b"durable".to_vec()).unwrap();
    vec![
        plain,
        expecting,
        keyed,
        both,
        ("append_durable", durable(synced)),
    ]
}

#[test]
fn the_shorthands_are_durable_on_a_follower_a_database_and_the_lanes_and_written_on_the_engine() {
    let mut options = options();
    options.sync_policy = tidelog::SyncPolicy::Never;
    let names = [
        "append",
        "append_expecting",
        "append_idempotent",
        "append_idempotent_expecting",
        "append_durable",
    ];
    let all = |durable: bool| names.iter().map(|&n| (n, durable)).collect::<Vec<_>>();
    let mut engine_answers = all(false);
    engine_answers[4].1 = true;

    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), options.clone()).unwrap();
    assert_eq!(durable_when_answered(&engine, &engine, 1), engine_answers);
    let follower = Follower::connect(dir.path()).unwrap();
    assert_eq!(durable_when_answered(&follower, &engine, 2), all(true));
    let database = Database::open(dir.path(), options.clone()).unwrap();
    assert!(!database.is_writer(), "the engine holds the lease");
    assert_eq!(durable_when_answered(&database, &engine, 3), all(true));
    drop((follower, database));
    engine.close().unwrap();

    // The lanes forward to the lane's holder, here an engine of this process.
    let root = tempfile::tempdir().unwrap();
    let lanes = LaneLogs::open(root.path(), options.clone()).unwrap();
    let mut lane_options = options;
    lane_options.lease.key = format!("{}/lane/4", lane_options.lease.key);
    let holder = Engine::open(lanes.lane_dir(4.into()), lane_options).unwrap();
    assert_eq!(durable_when_answered(&lanes, &holder, 4), all(true));
    assert!(!lanes.holds(4), "the engine holds the lane");
    lanes.close().unwrap();
    holder.close().unwrap();
}
