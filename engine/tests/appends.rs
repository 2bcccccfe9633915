//! Appending from many threads, across lanes, with expectations and idempotency keys.
//! What could go wrong: gaps or duplicates in global or lane sequences, a conflicting
//! append that still writes, a retried append written twice, sequences restarting after
//! a reopen.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::thread;
use std::time::Duration;
use tidelog::{AppendError, BatchEntry, Engine, GlobalSeq, LaneId, LaneSeq, Options};

#[test]
fn eight_threads_on_four_lanes_get_contiguous_global_and_lane_sequences() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Arc::new(Engine::open(dir.path(), common::small()).unwrap());
    let threads: Vec<_> = (0..8u32)
        .map(|t| {
            let engine = engine.clone();
            thread::spawn(move || {
                (0..200)
                    .map(|i| engine.append(t % 4, format!("t{t}-{i}")).unwrap())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let receipts: Vec<_> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    let mut globals: Vec<u64> = receipts.iter().map(|r| r.point.global_sequence).collect();
    globals.sort_unstable();
    assert_eq!(globals, (1..=1600).collect::<Vec<_>>());
    let mut by_lane: BTreeMap<LaneId, Vec<u64>> = BTreeMap::new();
    for r in &receipts {
        by_lane.entry(r.lane).or_default().push(r.lane_seq.get());
    }
    for (lane, mut seqs) in by_lane {
        seqs.sort_unstable();
        assert_eq!(seqs, (1..=400).collect::<Vec<_>>(), "lane {lane}");
    }
    engine.sync().unwrap();
    // The log agrees with the receipts, record by record.
    for r in &receipts {
        let record = engine.read(r.lane, r.lane_seq).unwrap().expect("visible");
        assert_eq!(record.receipt(), *r);
    }
}

#[test]
fn a_stale_expectation_is_refused_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), Options::default()).unwrap();
    engine
        .append_expecting(3, LaneSeq(0), b"first".to_vec())
        .unwrap();
    let err = engine
        .append_expecting(3, LaneSeq(0), b"stale".to_vec())
        .unwrap_err();
    assert!(
        matches!(
            err,
            AppendError::Conflict {
                lane: LaneId(3),
                expected: LaneSeq(0),
                actual: LaneSeq(1)
            }
        ),
        "{err}"
    );
    let ok = engine
        .append_expecting(3, LaneSeq(1), b"second".to_vec())
        .unwrap();
    assert_eq!(
        (ok.lane_seq, ok.global_seq()),
        (LaneSeq(2), GlobalSeq(2)),
        "the refused append took no sequence"
    );
    engine.sync().unwrap();
    let payloads: Vec<_> = engine
        .scan(3, LaneSeq(1)..=LaneSeq(10))
        .unwrap()
        .map(|r| r.payload().to_vec())
        .collect();
    assert_eq!(payloads, vec![b"first".to_vec(), b"second".to_vec()]);
}

#[test]
fn a_batch_with_one_stale_expectation_writes_none_of_its_records() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), Options::default()).unwrap();
    engine.append(1, b"x".to_vec()).unwrap();
    let mut stale = BatchEntry::new(1, b"b".to_vec());
    stale.expected_lane_seq = Some(LaneSeq(0));
    let err = engine
        .append_batch(vec![BatchEntry::new(2, b"a".to_vec()), stale])
        .unwrap_err();
    assert!(matches!(err, AppendError::Conflict { .. }), "{err}");
    engine.sync().unwrap();
    assert_eq!(engine.scan_all(GlobalSeq(1)).unwrap().count(), 1);
    assert!(engine.read(2, LaneSeq(1)).unwrap().is_none());
}

#[test]
fn a_batch_gets_consecutive_sequences_across_its_lanes() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), Options::default()).unwrap();
    let receipts = engine
        .append_batch(vec![
            BatchEntry::new(1, b"a".to_vec()),
            BatchEntry::new(2, b"b".to_vec()),
            BatchEntry::new(1, b"c".to_vec()),
        ])
        .unwrap();
    let seen: Vec<_> = receipts
        .iter()
        .map(|r| (r.lane.get(), r.lane_seq.get(), r.global_seq().get()))
        .collect();
    assert_eq!(seen, vec![(1, 1, 1), (2, 1, 2), (1, 2, 3)]);
}

#[test]
fn a_batch_of_lane_runs_numbers_indexes_and_makes_durable_every_record_of_every_run() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), Options::default()).unwrap();
    engine.append(1, b"before".to_vec()).unwrap();
    // Runs of one lane (1,1,1 then 2,2 then 1,1): each looks its lane up once in the
    // writer, the index and the watermarks, and must still number every record.
    let lanes = [1u32, 1, 1, 2, 2, 1, 1];
    let mut entries: Vec<BatchEntry> = lanes
        .iter()
        .enumerate()
        .map(|(i, lane)| BatchEntry::new(*lane, format!("r{i}")))
        .collect();
    // Expectations inside runs: the second record of lane 2's run follows its first.
    entries[4].expected_lane_seq = Some(LaneSeq(1));
    entries[5].expected_lane_seq = Some(LaneSeq(4));
    let receipts = engine.append_batch_durable(entries).unwrap();
    let seen: Vec<_> = receipts
        .iter()
        .map(|r| (r.lane.get(), r.lane_seq.get(), r.global_seq().get()))
        .collect();
    let expected = [
        (1, 2, 2),
        (1, 3, 3),
        (1, 4, 4),
        (2, 1, 5),
        (2, 2, 6),
        (1, 5, 7),
        (1, 6, 8),
    ];
    assert_eq!(seen, expected);
    for (i, receipt) in receipts.iter().enumerate() {
        let record = engine
            .read(receipt.lane, receipt.lane_seq)
            .unwrap()
            .unwrap();
        assert_eq!(record.payload(), format!("r{i}").as_bytes(), "{receipt:?}");
        let handle = engine.watermark_handle();
        let durable = handle.wait_for_durable_on_lane(receipt.lane, receipt.point, Duration::ZERO);
        assert!(durable.is_ok(), "{receipt:?}: {durable:?}");
    }
    let marks = engine.watermarks();
    let lane_durable = |lane: u32| {
        let view = marks.lanes.iter().find(|l| l.lane == LaneId(lane)).unwrap();
        view.watermarks.durable_hlc.seq().get()
    };
    assert_eq!((lane_durable(1), lane_durable(2)), (8, 6));
    // A stale expectation in the middle of a run still refuses the whole batch.
    let mut stale = vec![
        BatchEntry::new(2, b"x".to_vec()),
        BatchEntry::new(2, b"y".to_vec()),
    ];
    stale[1].expected_lane_seq = Some(LaneSeq(2));
    let err = engine.append_batch(stale).unwrap_err();
    assert!(matches!(err, AppendError::Conflict { .. }), "{err}");
    assert_eq!(
        engine.append(2, b"z".to_vec()).unwrap().lane_seq,
        LaneSeq(3)
    );
}

#[test]
fn a_retried_idempotent_append_returns_the_original_receipt_even_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let first = {
        let engine = Engine::open(dir.path(), Options::default()).unwrap();
        let first = engine
            .append_idempotent(5, b"order-17".to_vec(), b"pay".to_vec())
            .unwrap();
        let again = engine
            .append_idempotent(5, b"order-17".to_vec(), b"pay".to_vec())
            .unwrap();
        assert_eq!(first, again);
        engine.close().unwrap();
        first
    };
    let engine = Engine::open(dir.path(), Options::default()).unwrap();
    let retried = engine
        .append_idempotent(5, b"order-17".to_vec(), b"pay".to_vec())
        .unwrap();
    assert_eq!(retried, first);
    let next = engine.append(5, b"other".to_vec()).unwrap();
    assert_eq!(next.lane_seq, LaneSeq(2), "the retry wrote nothing");
}

#[test]
fn reopening_continues_global_and_lane_sequences() {
    let dir = tempfile::tempdir().unwrap();
    {
        let engine = Engine::open(dir.path(), common::small()).unwrap();
        for i in 0..300u32 {
            engine.append(i % 3, vec![7u8; 1000]).unwrap();
        }
        engine.close().unwrap();
    }
    let engine = Engine::open(dir.path(), common::small()).unwrap();
    let marks = engine.watermarks();
    assert_eq!(marks.global.durable_hlc.global_sequence, 300);
    assert_eq!(marks.global.visible_hlc.global_sequence, 300);
    let next = engine.append(1, b"next".to_vec()).unwrap();
    assert_eq!(
        (next.global_seq(), next.lane_seq),
        (GlobalSeq(301), LaneSeq(101))
    );
    assert!(
        next.point.wall_ms >= marks.global.durable_hlc.wall_ms,
        "wall time never goes back"
    );
}

#[test]
fn an_oversized_record_is_refused_before_it_reaches_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), Options::default().max_record_bytes(100)).unwrap();
    let err = engine.append(1, vec![0u8; 101]).unwrap_err();
    assert!(
        matches!(
            err,
            AppendError::RecordTooLarge {
                size: 101,
                max: 100
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("nothing was written"));
    assert_eq!(
        engine.append(1, vec![0u8; 100]).unwrap().global_seq(),
        GlobalSeq(1)
    );
    let too_many = engine.append_batch(Vec::new()).unwrap_err();
    assert!(matches!(
        too_many,
        AppendError::BatchOutOfBounds { records: 0, .. }
    ));
}

#[test]
fn try_append_says_would_block_when_the_queue_is_full() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), Options::default().channel_capacity(1)).unwrap();
    // Holding the watermark lock stalls the writer at the start of its next group.
    let marks = engine.watermark_handle();
    let stall = marks.lock();
    let blocked: Vec<_> = (0..2)
        .map(|i| {
            let engine = engine.clone();
            thread::spawn(move || engine.append(1, vec![i]).unwrap())
        })
        .collect();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while engine.queued() < 1 {
        assert!(std::time::Instant::now() < deadline);
        thread::yield_now();
    }
    assert!(matches!(
        engine.try_append(1, vec![9]),
        Err(AppendError::WouldBlock)
    ));
    drop(stall);
    let lane_seqs: HashSet<u64> = blocked
        .into_iter()
        .map(|t| t.join().unwrap().lane_seq.get())
        .collect();
    assert_eq!(
        lane_seqs,
        HashSet::from([1, 2]),
        "nothing of the refused try_append was written"
    );
}

#[test]
fn submitted_appends_from_one_thread_are_ordered_as_submitted() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), Options::default()).unwrap();
    let tickets: Vec<_> = (0..500u32)
        .map(|i| engine.submit(1, i.to_le_bytes().to_vec()).unwrap())
        .collect();
    let receipts: Vec<_> = tickets.into_iter().map(|t| t.wait().unwrap()).collect();
    let lane_seqs: Vec<u64> = receipts.iter().map(|r| r.lane_seq.get()).collect();
    assert_eq!(lane_seqs, (1..=500).collect::<Vec<_>>());
    engine.sync().unwrap();
    let payloads: Vec<u32> = engine
        .scan(1, LaneSeq(1)..=LaneSeq(500))
        .unwrap()
        .map(|r| u32::from_le_bytes(r.payload().try_into().unwrap()))
        .collect();
    assert_eq!(payloads, (0..500).collect::<Vec<_>>());
}
