//! Reads, subscriptions, appliers and closing. What could go wrong: a subscriber missing
//! or reordering records, a slow subscriber never catching up, the applied watermark
//! passing a lagging applier, calls after close doing anything but failing cleanly.

use std::thread;
use std::time::Duration;
use tidelog::{
    AppendError, Engine, GlobalSeq, HlcPoint, LaneId, LaneSeq, Options, ReadError,
    SubscriptionTarget,
};

#[test]
fn a_lane_subscriber_gets_every_record_of_its_lane_in_order_while_appends_continue() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), Options::default()).unwrap();
    let mut lane = engine.subscribe(SubscriptionTarget::Lane(LaneId(2)), 1);
    let writer = {
        let engine = engine.clone();
        thread::spawn(move || {
            for i in 0..300u32 {
                engine.append(i % 3, i.to_le_bytes().to_vec()).unwrap();
            }
        })
    };
    let mut got = Vec::new();
    while got.len() < 100 {
        let record = lane
            .next_timeout(Duration::from_secs(30))
            .unwrap()
            .expect("record in time");
        assert_eq!(record.lane(), LaneId(2));
        got.push(u32::from_le_bytes(record.payload().try_into().unwrap()));
    }
    writer.join().unwrap();
    assert_eq!(got, (0..300).filter(|i| i % 3 == 2).collect::<Vec<_>>());
    assert!(lane.try_next().unwrap().is_none());
}

#[test]
fn a_subscriber_that_starts_late_catches_up_from_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), Options::default()).unwrap();
    for i in 0..500u32 {
        engine.append(i % 4, vec![0u8; 64]).unwrap();
    }
    engine.sync().unwrap();
    let all: Vec<u64> = engine
        .subscribe(SubscriptionTarget::All, 101)
        .take(400)
        .map(|r| r.global_seq().get())
        .collect();
    assert_eq!(all, (101..=500).collect::<Vec<_>>());
    assert_eq!(engine.watermarks().global.emitted_hlc.global_sequence, 500);
}

#[test]
fn global_applied_is_the_minimum_over_registered_appliers() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), Options::default()).unwrap();
    let points: Vec<HlcPoint> = (0..10)
        .map(|i| engine.append_durable(1, vec![i]).unwrap().point)
        .collect();
    let fast = engine.register_applier("fast", HlcPoint::ORIGIN);
    let slow = engine.register_applier("slow", HlcPoint::ORIGIN);
    fast.report(points[8]);
    slow.report(points[3]);
    assert_eq!(engine.watermarks().global.applied_hlc, points[3]);
    assert_eq!(engine.appliers()[0].0, "slow");
    drop(slow);
    assert_eq!(engine.watermarks().global.applied_hlc, points[8]);
    // A lane report below the applier's global position does not lower the lane: having
    // applied the whole log up to points[8] covers lane 1 up to it.
    fast.report_on_lane(1, points[5]);
    assert_eq!(
        engine.watermarks().lanes[0].watermarks.applied_hlc,
        points[8]
    );
    // A lane report above it moves that lane alone.
    fast.report_on_lane(1, points[9]);
    assert_eq!(
        engine.watermarks().lanes[0].watermarks.applied_hlc,
        points[9]
    );
    assert_eq!(engine.watermarks().global.applied_hlc, points[8]);
}

#[test]
fn scan_returns_the_requested_lane_range_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), Options::default()).unwrap();
    for i in 0..20u8 {
        engine.append(u32::from(i % 2), vec![i]).unwrap();
    }
    engine.sync().unwrap();
    let odd: Vec<u8> = engine
        .scan(1, LaneSeq(3)..=LaneSeq(5))
        .unwrap()
        .map(|r| r.payload()[0])
        .collect();
    assert_eq!(odd, vec![5, 7, 9]);
    assert!(matches!(
        engine.read(1, LaneSeq(0)),
        Err(ReadError::ZeroLaneSeq)
    ));
    assert!(engine.read(1, LaneSeq(11)).unwrap().is_none());
}

#[test]
fn after_close_every_call_fails_cleanly_and_waiters_are_not_left_hanging() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), Options::default()).unwrap();
    let receipt = engine.append(1, b"last".to_vec()).unwrap();
    let clone = engine.clone();
    engine.close().unwrap();
    assert!(matches!(
        clone.append(1, b"late".to_vec()),
        Err(AppendError::Closed)
    ));
    assert!(matches!(clone.read(1, LaneSeq(1)), Err(ReadError::Closed)));
    assert!(
        clone.close().is_err(),
        "a second close says it was already closed"
    );
    assert!(
        engine
            .watermark_handle()
            .wait_for_durable(receipt.point, Duration::from_secs(1))
            .is_ok(),
        "close synced"
    );
    drop(engine);
    drop(clone);
    let engine = Engine::open(dir.path(), Options::default()).unwrap();
    assert_eq!(engine.scan_all(GlobalSeq(1)).unwrap().count(), 1);
}

#[test]
fn dropping_the_last_handle_drains_and_syncs() {
    let dir = tempfile::tempdir().unwrap();
    {
        let engine = Engine::open(
            dir.path(),
            Options::default().sync_policy(tidelog::SyncPolicy::Never),
        )
        .unwrap();
        for i in 0..50u8 {
            engine.append(0, vec![i]).unwrap();
        }
    }
    let engine = Engine::open(dir.path(), Options::default()).unwrap();
    assert_eq!(engine.scan_all(GlobalSeq(1)).unwrap().count(), 50);
}

#[test]
fn a_database_reopened_with_another_segment_size_keeps_its_own_and_stays_writable() {
    let dir = tempfile::tempdir().unwrap();
    let small = Options::default()
        .segment_size(64 * 1024)
        .max_record_bytes(8 * 1024)
        .max_batch_bytes(16 * 1024);
    let engine = Engine::open(dir.path(), small).unwrap();
    engine.append_durable(1, b"first".to_vec()).unwrap();
    engine.close().unwrap();
    drop(engine);
    // Default options ask for 64 MiB segments; the log's 64 KiB ones are kept, and
    // writing well past 64 KiB rotates instead of storing past a segment's end.
    let engine = Engine::open(dir.path(), Options::default()).unwrap();
    assert_eq!(engine.options().segment_size, 64 * 1024);
    assert!(matches!(
        engine.append(1, vec![0u8; 40 * 1024]),
        Err(tidelog::AppendError::RecordTooLarge { .. })
    ));
    let payload = vec![7u8; 1000];
    for _ in 0..300 {
        engine.append_durable(1, payload.clone()).unwrap();
    }
    engine.close().unwrap();
    drop(engine);
    let engine = Engine::open(dir.path(), Options::default()).unwrap();
    assert_eq!(
        engine.read(1, LaneSeq(1)).unwrap().unwrap().payload(),
        b"first"
    );
    assert_eq!(
        engine.read(1, LaneSeq(301)).unwrap().unwrap().payload(),
        &payload[..]
    );
    let sizes: std::collections::BTreeSet<u64> = std::fs::read_dir(dir.path().join("wal"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .collect();
    assert_eq!(
        sizes,
        [64 * 1024].into(),
        "segments of another size appeared"
    );
}

#[test]
fn a_record_skipped_as_corrupt_reads_as_absent_and_its_lane_sequence_is_never_reused() {
    let dir = tempfile::tempdir().unwrap();
    let small = || {
        Options::default()
            .segment_size(64 * 1024)
            .max_record_bytes(8 * 1024)
            .max_batch_bytes(16 * 1024)
    };
    let engine = Engine::open(dir.path(), small()).unwrap();
    for i in 1..=200u32 {
        let payload = format!("rec-{i:04}-{}", "x".repeat(900));
        engine.append_durable(1, payload.into_bytes()).unwrap();
    }
    engine.close().unwrap();
    drop(engine);
    // Damage record 50's payload, in a sealed segment.
    let needle = b"rec-0050-";
    let (path, at) = std::fs::read_dir(dir.path().join("wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find_map(|path| {
            let bytes = std::fs::read(&path).unwrap();
            let at = bytes.windows(needle.len()).position(|w| w == needle)?;
            Some((path, at))
        })
        .expect("record 50 on disk");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[at + 20] ^= 0x40;
    std::fs::write(&path, bytes).unwrap();

    let mut options = small();
    options.recovery_mode = tidelog::RecoveryMode::SkipCorrupted;
    let engine = Engine::open(dir.path(), options).unwrap();
    assert!(engine.read(1, LaneSeq(50)).unwrap().is_none());
    let after = engine.read(1, LaneSeq(51)).unwrap().unwrap();
    assert!(after.payload().starts_with(b"rec-0051-"));
    let scanned: Vec<u64> = engine
        .scan(1, LaneSeq(49)..=LaneSeq(51))
        .unwrap()
        .map(|r| r.receipt().lane_seq.get())
        .collect();
    assert_eq!(scanned, [49, 51]);
    let next = engine.append_durable(1, b"next".to_vec()).unwrap();
    assert_eq!(
        next.lane_seq,
        LaneSeq(201),
        "a lane sequence was handed out twice"
    );
}
