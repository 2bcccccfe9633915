//! What could go wrong: a writer that lost its lease keeps writing and forks the log, or a
//! fenced writer opens the log and appends. A new writer continues the newest segment
//! after a tenure frame carrying its token; recovery takes the highest token frame by frame.
mod common;
use common::*;
use tidelog_wal::format::{
    encode_frame_header, FrameHeader, SegmentHeader, FLAG_FIRST, FLAG_LAST, SEGMENT_HEADER_LEN,
};
use tidelog_wal::segment::segment_path;
use tidelog_wal::{
    FencingToken, GlobalSeq, LaneId, LaneSeq, OpenError, RecoveryMode, RemovalReason, SegmentIndex,
    Wal, WalOptions,
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
fn a_new_token_continues_the_segment_after_a_tenure_frame_and_a_stale_writers_segment_is_refused() {
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
        SegmentIndex(1),
        "a new token continues the newest segment"
    );
    append_unit(&mut wal, 1).unwrap();
    wal.sync().unwrap();
    let next_index = SegmentIndex(wal.current_segment().get() + 1);
    drop(wal);
    // The stale writer (token 1), whose tenure ended in segment 1 where its successor's
    // tenure frame now stands, writes segment 2 after being fenced.
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
    bytes[512..560].copy_from_slice(&head);
    bytes[560..567].copy_from_slice(b"forked!");
    std::fs::write(&path, &bytes).unwrap();

    let (mut wal, rec) = Wal::open(dir.path(), with_token(new)).unwrap();
    assert_eq!(rec.report.refused_segments.len(), 1, "{:?}", rec.report);
    let refused = &rec.report.refused_segments[0];
    assert_eq!(
        (refused.path.clone(), refused.token, refused.fenced_by),
        (path.clone(), old, new)
    );
    assert!(
        rec.report
            .removed_files
            .iter()
            .any(|f| f.path == path && f.reason == RemovalReason::FencedWriter),
        "the stale segment after the end of the log is removed: {:?}",
        rec.report
    );
    assert_eq!(rec.last_seq, GlobalSeq(2));
    assert!(
        wal.reader().get(GlobalSeq(3)).is_none(),
        "stale frames are never returned"
    );
    assert_eq!(wal.current_segment(), SegmentIndex(1));
    append_unit(&mut wal, 1).unwrap();
    wal.sync().unwrap();
    assert_eq!(
        wal.reader().get(GlobalSeq(3)).unwrap().payload(),
        &payload(3)[..]
    );
    drop(wal);
    let (wal, rec) = Wal::open(dir.path(), with_token(new)).unwrap();
    assert!(rec.report.is_clean(), "{:?}", rec.report);
    assert_eq!(read_all(&wal.reader()), vec![1, 2, 3]);
}

#[test]
fn a_writer_below_a_tenure_frames_token_is_fenced_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    for token in [FencingToken::new(1, 1), FencingToken::new(1, 2)] {
        let (mut wal, _) = Wal::open(dir.path(), with_token(token)).unwrap();
        append_unit(&mut wal, 1).unwrap();
        wal.sync().unwrap();
    }
    assert_eq!(
        segment_files(dir.path()).len(),
        1,
        "one segment, two tenures"
    );
    let before = snapshot(dir.path());
    // Above the header's token (1, 1), below the tenure frame's (1, 2).
    match Wal::open(dir.path(), with_token(FencingToken::new(1, 1))) {
        Err(OpenError::Fenced { found, ours, .. }) => {
            assert_eq!(found, FencingToken::new(1, 2));
            assert_eq!(ours, FencingToken::new(1, 1));
        }
        other => panic!("{:?}", other.map(|r| r.1)),
    }
    assert_eq!(snapshot(dir.path()), before);
}

#[test]
fn a_tenure_frame_below_an_earlier_one_ends_the_log_there() {
    use tidelog_wal::format::{encode_tenure_frame, SECTOR_LEN};
    let dir = tempfile::tempdir().unwrap();
    for token in [FencingToken::new(1, 1), FencingToken::new(1, 3)] {
        let (mut wal, _) = Wal::open(dir.path(), with_token(token)).unwrap();
        append_unit(&mut wal, 1).unwrap();
        wal.sync().unwrap();
    }
    // A writer of generation 2, deposed before it wrote, stores its tenure frame and a
    // record after its successor's: never returned, cut as a torn tail.
    let seg = segment_path(dir.path(), SegmentIndex(1));
    let mut bytes = std::fs::read(&seg).unwrap();
    let at = 3 * SECTOR_LEN;
    let stale = encode_tenure_frame(
        SegmentIndex(1),
        GlobalSeq(3),
        0,
        GlobalSeq(2),
        FencingToken::new(1, 2),
    );
    bytes[at..at + stale.len()].copy_from_slice(&stale);
    let frame = FrameHeader {
        global_seq: GlobalSeq(3),
        lane: LaneId(0),
        lane_seq: LaneSeq(1),
        wall_ms: 0,
        durable_hint: GlobalSeq(2),
        flags: FLAG_FIRST | FLAG_LAST,
    };
    let head = encode_frame_header(SegmentIndex(1), &frame, b"", b"forked!").unwrap();
    let at = at + stale.len();
    bytes[at..at + 48].copy_from_slice(&head);
    bytes[at + 48..at + 55].copy_from_slice(b"forked!");
    std::fs::write(&seg, &bytes).unwrap();
    let (wal, rec) = Wal::open(dir.path(), with_token(FencingToken::new(1, 4))).unwrap();
    assert_eq!(rec.last_seq, GlobalSeq(2));
    let torn = rec.report.torn_tail.expect("cut");
    assert!(
        matches!(
            torn.issue,
            tidelog_wal::format::FrameIssue::StaleTenure { .. }
        ),
        "{torn:?}"
    );
    assert!(wal.reader().get(GlobalSeq(3)).is_none());
}
