//! What could go wrong with the group write buffer: readers seeing frames that were never
//! stored, a failed store leaving part of a group published, or sequence checks ignoring
//! frames still in the buffer.
mod common;
use common::*;
use std::path::Path;
use tidelog_wal::io::{FaultMode, OpKind};
use tidelog_wal::{AppendError, GlobalSeq, LaneId, LaneSeq, NewFrame, RecoveryMode, SimDisk, Wal};

fn frame(seq: u64) -> NewFrame<'static> {
    NewFrame {
        global_seq: GlobalSeq(seq),
        lane: LaneId(1),
        lane_seq: LaneSeq(seq),
        wall_ms: seq,
        key: b"",
        payload: b"buffered",
    }
}

#[test]
fn buffered_frames_are_invisible_until_one_flush_stores_them_all() {
    let disk = SimDisk::new();
    let (mut wal, _) = Wal::open_with(
        disk.clone(),
        Path::new("/db/wal"),
        opts(RecoveryMode::AbsoluteConsistency),
    )
    .unwrap();
    let reader = wal.reader();
    let writes = disk.ops_of(OpKind::Write);
    for seq in 1..=3 {
        wal.append_buffered(&[frame(seq)]).unwrap();
    }
    assert!(
        reader.get(GlobalSeq(1)).is_none(),
        "buffered, not yet stored"
    );
    assert_eq!(wal.last_written(), GlobalSeq::ZERO);
    assert!(
        matches!(
            wal.append_buffered(&[frame(3)]),
            Err(AppendError::SequenceOutOfOrder {
                expected: GlobalSeq(4),
                found: GlobalSeq(3)
            })
        ),
        "sequence checks count buffered frames"
    );
    wal.flush().unwrap();
    assert_eq!(
        disk.ops_of(OpKind::Write),
        writes + 1,
        "one store for the group"
    );
    let seqs: Vec<u64> = reader
        .iter_from(GlobalSeq(1))
        .map(|f| f.global_seq().0)
        .collect();
    assert_eq!(seqs, vec![1, 2, 3]);
    assert_eq!(wal.sync().unwrap(), GlobalSeq(3));
}

#[test]
fn a_failed_flush_poisons_and_publishes_nothing_of_the_group() {
    let disk = SimDisk::new();
    let (mut wal, _) = Wal::open_with(
        disk.clone(),
        Path::new("/db/wal"),
        opts(RecoveryMode::AbsoluteConsistency),
    )
    .unwrap();
    let reader = wal.reader();
    wal.append_buffered(&[frame(1)]).unwrap();
    wal.append_buffered(&[frame(2)]).unwrap();
    disk.fail(OpKind::Write, 1, FaultMode::Once);
    assert!(wal.flush().is_err());
    assert!(reader.get(GlobalSeq(1)).is_none());
    assert!(matches!(
        wal.append(&[frame(3)]),
        Err(AppendError::Poisoned { .. })
    ));
}
