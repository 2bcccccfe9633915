//! What could go wrong: a writer that lost its lease keeps writing and forks the log, or a
//! fenced writer opens the log and appends.
mod common;
use common::*;
use tidelog_wal::format::{
    encode_frame_header, FrameHeader, SegmentHeader, FLAG_FIRST, FLAG_LAST, SEGMENT_HEADER_LEN,
};
use tidelog_wal::segment::segment_path;
use tidelog_wal::{
    FencingToken, GlobalSeq, LaneId, LaneSeq, OpenError, RecoveryMode, SegmentIndex, Wal,
    WalOptions,
};

fn with_token(token: FencingToken) -> WalOptions {
    WalOptions {
        fencing: token,
        ..opts(RecoveryMode::AbsoluteConsistency)
    }
}

#[test]
fn a_writer_with_a_lower_token_than_the_log_cannot_open() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, _) = Wal::open(dir.path(), with_token(FencingToken::new(2, 1))).unwrap();
    append_unit(&mut wal, 1).unwrap();
    wal.sync().unwrap();
    drop(wal);
    let before = snapshot(dir.path());
    match Wal::open(dir.path(), with_token(FencingToken::new(2, 0))) {
        Err(OpenError::Fenced { found, ours, .. }) => {
            assert_eq!(found, FencingToken::new(2, 1));
            assert_eq!(ours, FencingToken::new(2, 0));
        }
        other => panic!("{:?}", other.map(|r| r.1)),
    }
    assert_eq!(snapshot(dir.path()), before);
}

#[test]
fn a_new_token_starts_a_new_segment_and_frames_of_a_stale_writer_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let old = FencingToken::new(1, 0);
    let new = FencingToken::new(2, 0);
    {
        let (mut wal, _) = Wal::open(dir.path(), with_token(old)).unwrap();
        append_unit(&mut wal, 1).unwrap();
        wal.sync().unwrap();
    }
    let (mut wal, _) = Wal::open(dir.path(), with_token(new)).unwrap();
    assert_eq!(
        wal.current_segment(),
        SegmentIndex(2),
        "a new token gets its own segment"
    );
    append_unit(&mut wal, 1).unwrap();
    wal.sync().unwrap();
    let next_index = SegmentIndex(wal.current_segment().get() + 1);
    drop(wal);
    // The stale writer (token 1) writes segment 3 after being fenced.
    let path = segment_path(dir.path(), next_index);
    let _ = std::fs::remove_file(&path);
    let mut bytes = vec![0u8; SEGMENT as usize];
    let header = SegmentHeader {
        index: next_index,
        first_seq: GlobalSeq(3),
        fencing: old,
        segment_size: SEGMENT,
    };
    bytes[..SEGMENT_HEADER_LEN].copy_from_slice(&header.encode());
    let frame = FrameHeader {
        global_seq: GlobalSeq(3),
        lane: LaneId(0),
        lane_seq: LaneSeq(1),
        wall_ms: 0,
        durable_hint: GlobalSeq(2),
        flags: FLAG_FIRST | FLAG_LAST,
    };
    let head = encode_frame_header(next_index, &frame, b"", b"forked!").unwrap();
    bytes[64..112].copy_from_slice(&head);
    bytes[112..119].copy_from_slice(b"forked!");
    std::fs::write(&path, &bytes).unwrap();

    let (mut wal, rec) = Wal::open(dir.path(), with_token(new)).unwrap();
    assert_eq!(rec.report.refused_segments.len(), 1, "{:?}", rec.report);
    let refused = &rec.report.refused_segments[0];
    assert_eq!(
        (refused.path.clone(), refused.token, refused.fenced_by),
        (path, old, new)
    );
    assert_eq!(rec.last_seq, GlobalSeq(2));
    assert!(
        wal.reader().get(GlobalSeq(3)).is_none(),
        "stale frames are never returned"
    );
    append_unit(&mut wal, 1).unwrap();
    wal.sync().unwrap();
    assert_eq!(
        wal.reader().get(GlobalSeq(3)).unwrap().payload(),
        &payload(3)[..]
    );
}
