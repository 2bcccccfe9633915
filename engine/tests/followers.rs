//! Followers and hand-off within one process (the multi-process versions live in the
//! `tests` crate). What could go wrong: a second handle that cannot write, or that writes
//! a fork of its own; forwarded appends out of the writer's order or lost; a refusal
//! reported as success; a follower that cannot take over when the writer is gone.

use std::collections::BTreeSet;
use std::sync::Arc;
use tidelog::{AppendError, Appender, Database, Follower, LaneSeq, Options};

#[test]
fn a_second_handle_follows_and_appends_from_both_share_one_contiguous_order() {
    let dir = tempfile::tempdir().unwrap();
    let writer = Arc::new(Database::open(dir.path(), Options::default()).unwrap());
    let follower = Arc::new(Database::open(dir.path(), Options::default()).unwrap());
    assert!(writer.is_writer());
    assert!(!follower.is_writer());

    let threads: Vec<_> = (0..8u32)
        .map(|t| {
            let db = if t % 2 == 0 {
                writer.clone()
            } else {
                follower.clone()
            };
            std::thread::spawn(move || {
                (0..40)
                    .map(|i| {
                        let payload = format!("{t}-{i}").into_bytes();
                        (db.append_durable(t % 4, payload.clone()).unwrap(), payload)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let appended: Vec<_> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();

    let globals: BTreeSet<u64> = appended
        .iter()
        .map(|(r, _)| r.point.global_sequence)
        .collect();
    assert_eq!(
        globals,
        (1..=320).collect(),
        "gaps or duplicates in the total order"
    );
    let engine = writer.engine().unwrap();
    for lane in 0..4u32 {
        let mut seqs: Vec<u64> = appended
            .iter()
            .filter(|(r, _)| r.lane == lane)
            .map(|(r, _)| r.lane_seq.0)
            .collect();
        seqs.sort_unstable();
        assert_eq!(seqs, (1..=80).collect::<Vec<_>>(), "lane {lane}");
    }
    for (receipt, payload) in &appended {
        let record = engine
            .read(receipt.lane, receipt.lane_seq)
            .unwrap()
            .unwrap();
        assert_eq!(record.payload(), payload.as_slice());
        assert_eq!(record.receipt(), *receipt);
    }
}

#[test]
fn a_forwarded_stale_expectation_is_refused_with_the_writers_head_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let writer = Database::open(dir.path(), Options::default()).unwrap();
    writer.append_durable(5, b"one".to_vec()).unwrap();
    let follower = Follower::connect(dir.path()).unwrap();
    let err = follower
        .append_expecting(5, LaneSeq(0), b"stale".to_vec())
        .unwrap_err();
    assert!(
        matches!(
            err,
            AppendError::Conflict {
                expected: LaneSeq(0),
                actual: LaneSeq(1),
                ..
            }
        ),
        "{err}"
    );
    let ok = follower
        .append_expecting(5, LaneSeq(1), b"two".to_vec())
        .unwrap();
    assert_eq!(ok.lane_seq, LaneSeq(2));
    assert_eq!(
        ok.point.global_sequence, 2,
        "the refused append wrote something"
    );
}

#[test]
fn a_forwarded_append_the_writer_refuses_is_an_error_not_a_receipt() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options::default().max_record_bytes(8);
    let _writer = Database::open(dir.path(), options).unwrap();
    let follower = Follower::connect(dir.path()).unwrap();
    let err = follower.append(1, vec![0u8; 64]).unwrap_err();
    assert!(matches!(err, AppendError::WriterRefused { .. }), "{err}");
    assert!(
        err.to_string().contains("64"),
        "{err} does not say what was wrong"
    );
}

#[test]
fn when_the_writer_closes_a_follower_takes_over_and_continues_the_sequence() {
    let dir = tempfile::tempdir().unwrap();
    let writer = Database::open(dir.path(), Options::default()).unwrap();
    let follower = Database::open(dir.path(), Options::default()).unwrap();
    let before = follower.append_durable(1, b"forwarded".to_vec()).unwrap();
    writer.close().unwrap();
    drop(writer);

    // The first append after the writer left may have been lost with it; the
    // idempotency key makes the retry safe.
    let mut attempts = 0;
    let after = loop {
        attempts += 1;
        match follower.append_idempotent(1, b"after-key".to_vec(), b"after".to_vec()) {
            Ok(receipt) => break receipt,
            Err(AppendError::Unanswered { .. } | AppendError::NoWriter { .. }) if attempts < 3 => {}
            Err(err) => panic!("{err}"),
        }
    };
    assert!(follower.is_writer(), "the follower did not take over");
    assert_eq!(
        after.point.global_sequence,
        before.point.global_sequence + 1
    );
    assert_eq!(after.lane_seq, LaneSeq(2));
    let again = follower
        .append_idempotent(1, b"after-key".to_vec(), b"after".to_vec())
        .unwrap();
    assert_eq!(again, after, "the retry wrote a duplicate");
    let engine = follower.engine().unwrap();
    assert_eq!(
        engine.read(1, LaneSeq(1)).unwrap().unwrap().payload(),
        b"forwarded"
    );
}

#[test]
fn a_followers_watermarks_follow_what_the_writer_made_durable() {
    let dir = tempfile::tempdir().unwrap();
    let writer = Database::open(dir.path(), Options::default()).unwrap();
    let follower = Follower::connect(dir.path()).unwrap();
    let engine = writer.engine().unwrap();
    let token = engine.writer_lease().unwrap().fencing_token();
    for i in 0..5u32 {
        let receipt = if i % 2 == 0 {
            engine.append_durable(1, b"local".to_vec()).unwrap()
        } else {
            follower.append_durable(2, b"forwarded".to_vec()).unwrap()
        };
        let published = follower.watermarks().unwrap();
        assert_eq!(published.global.durable_hlc, receipt.point);
        assert_eq!(published.global.visible_hlc, receipt.point);
        assert_eq!(published.token, token);
        assert_eq!(published.global, engine.watermarks().global);
    }
}

#[test]
fn a_follower_reads_what_the_writer_made_visible_and_nothing_beyond() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options::default().sync_policy(tidelog::SyncPolicy::Never);
    let writer = Database::open(dir.path(), options).unwrap();
    let engine = writer.engine().unwrap();
    let follower = Follower::connect(dir.path()).unwrap();
    let first = engine.append_durable(1, b"one".to_vec()).unwrap();
    let pending = engine.append(2, b"not yet durable".to_vec()).unwrap();

    let seen = follower.records_from(tidelog::GlobalSeq(1), 100).unwrap();
    assert_eq!(
        seen.len(),
        1,
        "a record the writer had not made visible was returned"
    );
    assert_eq!(seen[0].global_seq, first.point.seq());
    assert_eq!(seen[0].payload, b"one");

    engine.sync().unwrap();
    let seen = follower.records_from(tidelog::GlobalSeq(1), 100).unwrap();
    let payloads: Vec<&[u8]> = seen.iter().map(|r| r.payload.as_slice()).collect();
    assert_eq!(payloads, [&b"one"[..], &b"not yet durable"[..]]);
    assert_eq!(seen[1].lane_seq, pending.lane_seq);
    assert_eq!(
        follower.records_from(pending.point.seq(), 1).unwrap().len(),
        1,
        "reading from a sequence starts there"
    );
}

#[test]
fn log_truncation_keeps_what_a_follower_still_reads_and_frees_it_when_the_follower_goes() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options::default()
        .segment_size(64 * 1024)
        .max_record_bytes(8 * 1024)
        .max_batch_bytes(16 * 1024);
    let writer = Database::open(dir.path(), options).unwrap();
    let engine = writer.engine().unwrap();
    let follower = Follower::connect(dir.path()).unwrap();
    let first = engine.append_durable(1, b"first".to_vec()).unwrap();
    assert_eq!(
        follower.records_from(first.point.seq(), 1).unwrap().len(),
        1
    );
    let mut last = first;
    for _ in 0..300 {
        last = engine.append_durable(1, vec![7u8; 1000]).unwrap();
    }
    engine.checkpoint(last.point, b"state").unwrap();

    let status = engine.truncation_status();
    assert_eq!(status.floor, first.point.seq(), "{status:?}");
    assert!(
        status
            .holding_back()
            .iter()
            .any(|h| matches!(h, tidelog::checkpoint::LogClaim::Follower { .. })),
        "the follower is not named as what holds truncation back: {status:?}"
    );
    engine.truncate_log().unwrap();
    assert_eq!(
        follower.records_from(first.point.seq(), 1).unwrap()[0].payload,
        b"first",
        "truncation removed what the follower still reads"
    );

    drop(follower);
    let status = engine.truncation_status();
    assert!(status.floor > first.point.seq(), "{status:?}");
    let removed = engine.truncate_log().unwrap();
    assert!(removed.status.removable_segments > 0, "{removed:?}");
}

#[test]
fn a_follower_waiting_for_a_sequence_wakes_when_the_writer_makes_it_visible() {
    let dir = tempfile::tempdir().unwrap();
    let engine = tidelog::Engine::open(dir.path(), Options::default()).unwrap();
    let follower = Follower::connect(dir.path()).unwrap();
    let waiter = std::thread::spawn(move || {
        let published = follower
            .wait_for_visible(tidelog::GlobalSeq(3), std::time::Duration::from_secs(60))
            .unwrap();
        let records = follower.records_from(tidelog::GlobalSeq(1), 10).unwrap();
        (published, records)
    });
    for i in 0..3 {
        engine
            .append_durable(1, format!("r{i}").into_bytes())
            .unwrap();
    }
    let (published, records) = waiter.join().unwrap();
    assert!(published.global.visible_hlc.global_sequence >= 3);
    let payloads: Vec<_> = records.iter().map(|r| r.payload.clone()).collect();
    assert_eq!(payloads, [b"r0".to_vec(), b"r1".to_vec(), b"r2".to_vec()]);
    engine.close().unwrap();
}

#[test]
fn a_follower_waiting_past_what_the_writer_made_visible_times_out_with_the_visible_point() {
    let dir = tempfile::tempdir().unwrap();
    let engine = tidelog::Engine::open(dir.path(), Options::default()).unwrap();
    engine.append_durable(1, b"only".to_vec()).unwrap();
    let follower = Database::open(dir.path(), Options::default()).unwrap();
    assert!(!follower.is_writer());
    let err = follower
        .wait_for_visible(tidelog::GlobalSeq(2), std::time::Duration::from_millis(200))
        .unwrap_err();
    match err {
        tidelog::forward::FollowError::TimedOut {
            waiting_for,
            visible,
            ..
        } => {
            assert_eq!(waiting_for, tidelog::GlobalSeq(2));
            assert_eq!(visible, tidelog::GlobalSeq(1));
        }
        other => panic!("{other}"),
    }
    engine.close().unwrap();
}

#[test]
fn a_follower_subscription_returns_every_record_in_order_as_the_writer_makes_it_visible() {
    let dir = tempfile::tempdir().unwrap();
    let engine = tidelog::Engine::open(dir.path(), Options::default()).unwrap();
    engine.append_durable(1, b"before".to_vec()).unwrap();
    let follower = Follower::connect(dir.path()).unwrap();
    let reader = std::thread::spawn(move || {
        let mut records = follower.subscribe(tidelog::GlobalSeq(1));
        let mut seen = Vec::new();
        // More than one read batch (256), most of them written after the reader started.
        while seen.len() < 301 {
            let record = records
                .next_timeout(std::time::Duration::from_secs(60))
                .unwrap()
                .expect("a record within the timeout");
            seen.push((record.global_seq.0, record.payload));
        }
        let after = records
            .next_timeout(std::time::Duration::from_millis(100))
            .unwrap();
        (seen, after, records.position())
    });
    for i in 0..300 {
        engine
            .append_durable(2, format!("r{i}").into_bytes())
            .unwrap();
    }
    let (seen, after, position) = reader.join().unwrap();
    assert_eq!(seen[0], (1, b"before".to_vec()));
    for (i, (seq, payload)) in seen.iter().enumerate().skip(1) {
        assert_eq!(*seq, i as u64 + 1);
        assert_eq!(payload, format!("r{}", i - 1).as_bytes());
    }
    assert!(after.is_none(), "nothing more was appended");
    assert_eq!(position, tidelog::GlobalSeq(302));
    engine.close().unwrap();
}

#[test]
fn a_writer_that_closes_answers_every_append_its_followers_already_sent() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let dir = tempfile::tempdir().unwrap();
    let writer = tidelog::Engine::open(dir.path(), Options::default()).unwrap();
    let started = Arc::new(AtomicUsize::new(0));
    let followers: Vec<_> = (0..4u32)
        .map(|t| {
            let (dir, started) = (dir.path().to_path_buf(), started.clone());
            std::thread::spawn(move || {
                let follower = Follower::connect(&dir).unwrap();
                let mut receipts = Vec::new();
                for i in 0.. {
                    match follower.append_durable(t, format!("{t}-{i}").into_bytes()) {
                        Ok(receipt) => receipts.push(receipt),
                        // The only acceptable end: a send the closing writer refused,
                        // so nothing of it was written.
                        Err(AppendError::NoWriter { .. }) => break,
                        Err(err) => panic!("follower {t}, append {i}: {err}"),
                    }
                    if i == 0 {
                        started.fetch_add(1, Ordering::SeqCst);
                    }
                }
                receipts
            })
        })
        .collect();
    // Close while every follower (its connection accepted) has appends in flight.
    while started.load(Ordering::SeqCst) < 4 {
        std::thread::yield_now();
    }
    writer.close().unwrap();
    let answered: Vec<_> = followers
        .into_iter()
        .flat_map(|f| f.join().unwrap())
        .collect();
    drop(writer);
    let engine = tidelog::Engine::open(dir.path(), Options::default()).unwrap();
    for receipt in &answered {
        assert!(
            engine
                .read(receipt.lane, receipt.lane_seq)
                .unwrap()
                .is_some(),
            "an answered append is missing: {receipt:?}"
        );
    }
    let total = engine.watermarks().global.durable_hlc.global_sequence;
    assert_eq!(
        total,
        answered.len() as u64,
        "every record written was answered"
    );
}
