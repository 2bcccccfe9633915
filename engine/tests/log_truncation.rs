//! What could go wrong: truncation deletes a segment an applier, a subscriber, a log hold
//! or the recovery checkpoint still needs, or keeps segments nothing needs (the disk never
//! shrinks) without saying why; after a reopen a truncated lane restarts its sequence,
//! reads of truncated records return garbage or panic, or a log with a hole before it
//! opens silently.
mod common;
use common::{padded_payload, truncation_options};
use tidelog::checkpoint::LogClaim;
use tidelog::wal::SimDisk;
use tidelog::{Engine, GlobalSeq, HlcPoint, LaneSeq, SubscriptionTarget};

fn fill(engine: &Engine<SimDisk>, from: u64, to: u64) -> HlcPoint {
    for i in from..=to {
        let payload = padded_payload(i);
        // Lane 9 gets records only at the start: its records are all truncated later.
        let lane = if i <= 3 { 9 } else { 1 + (i % 2) as u32 };
        engine.append(lane, payload).unwrap();
    }
    engine.sync().unwrap()
}

#[test]
fn truncation_stops_at_the_lowest_holder_names_it_and_removes_everything_below() {
    let dir = tempfile::tempdir().unwrap();
    let disk = SimDisk::new();
    let engine = Engine::open_with_storage(disk.clone(), dir.path(), truncation_options()).unwrap();
    let early = fill(&engine, 1, 20);
    let status = engine.truncation_status();
    assert_eq!(status.holding_back(), vec![&LogClaim::NoCheckpoint]);
    assert_eq!(
        engine.truncate_log().unwrap().removed.removed.len(),
        0,
        "no checkpoint: nothing goes"
    );

    let applier = engine.register_applier("projection", early);
    let subscription = engine.subscribe(SubscriptionTarget::All, early.global_sequence + 40);
    let point = fill(&engine, 21, 120);
    engine.checkpoint(point, b"state").unwrap();
    // The applier is the lowest holder: nothing at or after its point + 1 may go.
    let status = engine.truncation_status();
    assert_eq!(status.floor, early.seq().next());
    assert!(
        matches!(status.holding_back()[..], [LogClaim::Applier { ref name, .. }] if name == "projection")
    );
    let report = engine.truncate_log().unwrap();
    assert!(engine.wal_first_readable() <= early.seq().next());
    let segments_before = report.status.segments;

    // The applier moves on: the subscriber holds now.
    applier.report(point);
    let status = engine.truncation_status();
    assert!(matches!(
        status.holding_back()[..],
        [LogClaim::Subscriber { .. }]
    ));
    assert_eq!(status.floor, GlobalSeq(early.global_sequence + 40));
    drop(subscription);
    // Then a named hold (what followers and backups use).
    let hold = engine.hold_log("follower-b", GlobalSeq(80));
    let status = engine.truncation_status();
    assert!(
        matches!(status.holding_back()[..], [LogClaim::Hold { ref name }] if name == "follower-b")
    );
    let report = engine.truncate_log().unwrap();
    assert!(!report.removed.removed.is_empty());
    assert!(
        report.removed.first_seq <= GlobalSeq(80),
        "the segment holding 80 stays"
    );
    assert!(
        engine.read(1u32, LaneSeq(40)).unwrap().is_some(),
        "record 80 is readable"
    );
    drop(hold);
    // Only the checkpoint (and the applier, caught up to it) hold now; everything below
    // the checkpoint's segment goes.
    let status = engine.truncation_status();
    assert_eq!(status.floor, point.seq().next());
    assert!(status
        .holding_back()
        .iter()
        .any(|h| matches!(h, LogClaim::Checkpoint { .. })));
    assert!(status.removable_segments > 0);
    let report = engine.truncate_log().unwrap();
    assert!(report.removed.first_seq <= point.seq().next());
    let status = engine.truncation_status();
    assert_eq!(status.removable_segments, 0);
    assert!(status.segments < segments_before);
    assert!(status.log_starts_at > GlobalSeq(80));

    // A truncated record is a typed error, in this process and after a reopen.
    let err = engine.read(9u32, LaneSeq(1)).unwrap_err();
    assert!(matches!(err, tidelog::ReadError::Truncated { .. }), "{err}");
    drop(applier);
    drop(engine);
    let engine = Engine::open_with_storage(disk.clone(), dir.path(), truncation_options()).unwrap();
    let err = engine.read(9u32, LaneSeq(3)).unwrap_err();
    assert!(matches!(err, tidelog::ReadError::Truncated { .. }), "{err}");
    assert!(engine.read(9u32, LaneSeq(4)).unwrap().is_none());
    // Lane sequences continue where they were, even for a lane with no record left.
    let next = engine.append(9u32, b"again".to_vec()).unwrap();
    assert_eq!(next.lane_seq, LaneSeq(4));
    let next = engine.append(1u32, b"again".to_vec()).unwrap();
    assert_eq!(
        next.lane_seq,
        LaneSeq(60),
        "59 records 4, 6, ..., 120 before"
    );
    assert_eq!(next.point.global_sequence, 122);
    let mut all = engine.subscribe(SubscriptionTarget::All, 1);
    assert!(matches!(
        all.try_next(),
        Err(tidelog::SubscribeError::Truncated { .. })
    ));
}

#[test]
fn a_log_that_starts_after_the_newest_valid_checkpoint_is_refused_not_opened_silently() {
    let dir = tempfile::tempdir().unwrap();
    let disk = SimDisk::new();
    let engine = Engine::open_with_storage(disk.clone(), dir.path(), truncation_options()).unwrap();
    let point = fill(&engine, 1, 60);
    let info = engine.checkpoint(point, b"state").unwrap();
    engine.truncate_log().unwrap();
    assert!(engine.truncation_status().log_starts_at > GlobalSeq(1));
    drop(engine);
    // Without the checkpoint the records before the log's start are gone: refuse.
    let bytes = disk.file_bytes(&info.path).unwrap();
    disk.corrupt(&info.path, 20, &[bytes[20] ^ 1]).unwrap();
    let err =
        Engine::open_with_storage(disk.clone(), dir.path(), truncation_options()).unwrap_err();
    assert!(matches!(err, tidelog::OpenError::LogGap { .. }), "{err}");
    // Nothing was changed by the refusal: restoring the byte opens it again.
    disk.corrupt(&info.path, 20, &[bytes[20]]).unwrap();
    let engine = Engine::open_with_storage(disk, dir.path(), truncation_options()).unwrap();
    assert_eq!(engine.recovered_checkpoint().map(|c| c.id), Some(info.id));
}

trait FirstReadable {
    fn wal_first_readable(&self) -> GlobalSeq;
}

impl FirstReadable for Engine<SimDisk> {
    fn wal_first_readable(&self) -> GlobalSeq {
        self.truncation_status().log_starts_at
    }
}

#[test]
fn a_checkpoint_beyond_the_end_of_the_log_is_refused_as_lost_durable_records() {
    let ahead = tempfile::tempdir().unwrap();
    let behind = tempfile::tempdir().unwrap();
    let info = {
        let engine = Engine::open(ahead.path(), tidelog::Options::default()).unwrap();
        for i in 0..10u32 {
            engine.append(1, i.to_le_bytes().to_vec()).unwrap();
        }
        let point = engine.sync().unwrap();
        engine.checkpoint(point, b"ten").unwrap()
    };
    {
        let engine = Engine::open(behind.path(), tidelog::Options::default()).unwrap();
        for i in 0..5u32 {
            engine.append(1, i.to_le_bytes().to_vec()).unwrap();
        }
        engine.close().unwrap();
    }
    // The log holds 5 records, the checkpoint claims 10: durable records are missing.
    let target = behind
        .path()
        .join("checkpoints")
        .join(info.path.file_name().unwrap());
    std::fs::copy(&info.path, &target).unwrap();
    let err = Engine::open(behind.path(), tidelog::Options::default()).unwrap_err();
    assert!(
        matches!(err, tidelog::OpenError::CheckpointBeyondLog { .. }),
        "{err}"
    );
}
