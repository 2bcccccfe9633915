//! The lane index (one entry per record, kept in memory for lane reads) is shrunk when
//! truncation removes the head of the log. What could go wrong: the index keeps an entry
//! for every record ever appended (memory grows with the appends, not with the retained
//! log); a shrink that drops too much (a record still in the log unreadable through its
//! lane) or moves lane sequences (the next append of a lane, or a lane whose records were
//! all truncated, handed a lane sequence twice, also after a checkpoint and reopen).
mod common;
use common::{padded_payload, truncation_options};
use tidelog::wal::SimDisk;
use tidelog::{Engine, LaneSeq, ReadError};

#[test]
fn truncation_drops_the_index_entries_of_removed_records_and_lane_sequences_continue() {
    let dir = tempfile::tempdir().unwrap();
    let disk = SimDisk::new();
    let engine = Engine::open_with_storage(disk.clone(), dir.path(), truncation_options()).unwrap();
    // Lane 9 has records only at the start; lanes 1 to 3 throughout.
    let mut receipts = Vec::new();
    for i in 0..5u64 {
        receipts.push(engine.append(9, padded_payload(i)).unwrap());
    }
    for i in 5..200u64 {
        receipts.push(
            engine
                .append((i % 3 + 1) as u32, padded_payload(i))
                .unwrap(),
        );
    }
    assert_eq!(engine.lane_index_entries(), 200);
    let point = engine.sync().unwrap();
    engine.checkpoint(point, b"state").unwrap();
    engine.truncate_log().unwrap();
    let starts_at = engine.truncation_status().log_starts_at;
    assert!(
        starts_at > receipts[10].point.seq(),
        "the test needs truncation to remove lane 9 and more"
    );
    let retained = receipts
        .iter()
        .filter(|r| r.point.seq() >= starts_at)
        .count() as u64;
    assert_eq!(
        engine.lane_index_entries(),
        retained,
        "one entry per record still in the log"
    );

    // Every record still in the log reads through its lane; removed ones are Truncated.
    for (i, r) in receipts.iter().enumerate() {
        let read = engine.read(r.lane, r.lane_seq);
        if r.point.seq() >= starts_at {
            let record = read.unwrap().expect("a retained record");
            assert_eq!(
                record.payload(),
                &padded_payload(i as u64)[..],
                "record {i}"
            );
        } else {
            assert!(
                matches!(read, Err(ReadError::Truncated { .. })),
                "record {i}: {read:?}"
            );
        }
    }
    // A checkpoint now takes lane heads from the shrunk index: lane 9, all of whose
    // records were removed, stands at its last record's point (read before it went).
    let point = engine.sync().unwrap();
    engine.checkpoint(point, b"state").unwrap();
    let checkpoint = engine.latest_checkpoint().unwrap().unwrap();
    let lane_9 = checkpoint
        .lane_heads()
        .iter()
        .find(|h| h.lane.get() == 9)
        .copied()
        .expect("lane 9 in the checkpoint");
    assert_eq!(
        (lane_9.lane_seq, lane_9.point),
        (LaneSeq(5), receipts[4].point)
    );
    drop(checkpoint);
    let next =
        |engine: &Engine<SimDisk>, lane: u32| engine.append(lane, padded_payload(999)).unwrap();
    assert_eq!(next(&engine, 9).lane_seq, LaneSeq(6), "lane 9 continues");
    let head_2 = receipts.iter().filter(|r| r.lane.get() == 2).count() as u64;
    assert_eq!(next(&engine, 2).lane_seq, LaneSeq(head_2 + 1));
    engine.truncate_log().unwrap();
    drop(engine);
    // Reopened from the checkpoint, lanes continue where they were.
    let engine = Engine::open_with_storage(disk, dir.path(), truncation_options()).unwrap();
    assert_eq!(next(&engine, 9).lane_seq, LaneSeq(7));
    assert_eq!(next(&engine, 2).lane_seq, LaneSeq(head_2 + 2));
}
