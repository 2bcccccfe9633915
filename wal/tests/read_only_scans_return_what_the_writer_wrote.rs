//! What could go wrong with a read-only scan (`tidelog dump`, `tidelog stats`): it returns
//! bytes the writer never wrote, loses records, calls a tail being written corruption (or
//! corruption a tail), reads past damage in data that was durable, returns a fenced
//! writer's frames, or changes anything on disk.
mod common;
use common::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tidelog_wal::format::{
    encode_frame_header, FrameHeader, SegmentHeader, FLAG_FIRST, FLAG_LAST, SEGMENT_HEADER_LEN,
};
use tidelog_wal::scan::{LogEnd, LogSnapshot, ScanError, ScanOptions, SegmentRole};
use tidelog_wal::segment::segment_path;
use tidelog_wal::{
    DurabilityProof, FencingToken, GlobalSeq, LaneId, LaneSeq, RecoveryMode, SegmentIndex, Wal,
    WalOptions,
};

/// Every record of the snapshot, checked against the deterministic content of `common`.
fn scan_all(dir: &std::path::Path, options: ScanOptions) -> (Vec<u64>, Option<LogEnd>) {
    let snapshot = LogSnapshot::take(dir).unwrap();
    let mut records = snapshot.records(GlobalSeq(1), options);
    let mut seqs = Vec::new();
    for record in records.by_ref() {
        let record = record.unwrap();
        let seq = record.global_seq.0;
        assert_eq!(record.payload, payload(seq), "payload of {seq}");
        assert_eq!(record.key, key(seq), "key of {seq}");
        assert_eq!(record.lane, LaneId((seq % 5) as u32));
        assert_eq!(record.lane_seq, LaneSeq(seq));
        assert_eq!(record.wall_ms, 1_000 + seq);
        seqs.push(seq);
    }
    (seqs, records.end().cloned())
}

fn synced_log(dir: &std::path::Path, synced: u64, unsynced: u64) {
    let (mut wal, _) = Wal::open(dir, opts(RecoveryMode::AbsoluteConsistency)).unwrap();
    for _ in 0..synced {
        append_unit(&mut wal, 1).unwrap();
        wal.sync().unwrap();
    }
    for _ in 0..unsynced {
        append_unit(&mut wal, 1).unwrap();
    }
}

#[test]
fn a_scan_beside_an_open_writer_returns_every_record_across_rotations() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, _) = Wal::open(dir.path(), opts(RecoveryMode::AbsoluteConsistency)).unwrap();
    fill(&mut wal, 120, 4);
    wal.sync().unwrap();
    let expected = read_all(&wal.reader());
    assert!(wal.current_segment() > SegmentIndex(3), "the log rotated");
    let before = snapshot(dir.path());
    let (seqs, end) = scan_all(dir.path(), ScanOptions::default());
    assert_eq!(seqs, expected);
    assert!(matches!(end, Some(LogEnd::Clean { .. })), "{end:?}");
    assert_eq!(snapshot(dir.path()), before, "a scan changes nothing");

    let snap = LogSnapshot::take(dir.path()).unwrap();
    let roles: Vec<SegmentRole> = snap.segments().iter().map(|s| s.role).collect();
    let used = wal.current_segment().get() as usize;
    assert!(roles[..used - 1].iter().all(|r| *r == SegmentRole::Final));
    assert_eq!(roles[used - 1], SegmentRole::Newest);
    assert!(roles[used..].iter().all(|r| *r == SegmentRole::Prepared));
    let mut records = snap.records(GlobalSeq(1), ScanOptions::default());
    let count = records.by_ref().count() as u64;
    let summaries = records.summaries();
    assert_eq!(summaries.len(), used);
    assert_eq!(summaries.iter().map(|s| s.records).sum::<u64>(), count);
    assert!(summaries[..used - 1].iter().all(|s| s.sealed));
    assert_eq!(records.last_seq(), Some(GlobalSeq(count)));
    assert_eq!(records.bytes_read(), snap.data_bytes());
}

#[test]
fn from_starts_at_that_sequence_and_passes_over_earlier_segments() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, _) = Wal::open(dir.path(), opts(RecoveryMode::AbsoluteConsistency)).unwrap();
    fill(&mut wal, 120, 4);
    wal.sync().unwrap();
    let last = wal.last_written().0;
    let from = last - 5;
    let snap = LogSnapshot::take(dir.path()).unwrap();
    let mut records = snap.records(GlobalSeq(from), ScanOptions::default());
    let seqs: Vec<u64> = records.by_ref().map(|r| r.unwrap().global_seq.0).collect();
    assert_eq!(seqs, (from..=last).collect::<Vec<_>>());
    assert!(
        records.summaries().len() < wal.current_segment().get() as usize,
        "segments wholly below `from` are not read"
    );
}

#[test]
fn an_unsynced_torn_tail_ends_the_scan_quietly_where_its_unit_starts() {
    let dir = tempfile::tempdir().unwrap();
    synced_log(dir.path(), 3, 1);
    let (path, offset) = offsets_of(dir.path(), &[4]).remove(0);
    patch(&path, offset + 50, &[0xEE; 4]);
    let (seqs, end) = scan_all(dir.path(), ScanOptions::default());
    assert_eq!(seqs, vec![1, 2, 3]);
    match end {
        Some(LogEnd::Tail {
            path: p, offset: o, ..
        }) => assert_eq!((p, o.get()), (path, offset)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn damage_in_a_final_segment_is_corruption_naming_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, _) = Wal::open(dir.path(), opts(RecoveryMode::AbsoluteConsistency)).unwrap();
    fill(&mut wal, 60, 4);
    wal.sync().unwrap();
    drop(wal);
    // Record 6 is a unit of its own (see `fill`), in the first segment.
    let (path, offset) = offsets_of(dir.path(), &[6]).remove(0);
    assert_eq!(path, segment_path(dir.path(), SegmentIndex(1)));
    patch(&path, offset + 60, &[0x5A]);
    let before = snapshot(dir.path());
    let snap = LogSnapshot::take(dir.path()).unwrap();
    assert_eq!(snap.segments()[0].role, SegmentRole::Final);
    let results: Vec<_> = snap.records(GlobalSeq(1), ScanOptions::default()).collect();
    assert_eq!(
        results.len(),
        6,
        "records 1 to 5, then the error, then nothing"
    );
    for (i, r) in results[..5].iter().enumerate() {
        assert_eq!(r.as_ref().unwrap().global_seq, GlobalSeq(i as u64 + 1));
    }
    match &results[5] {
        Err(
            e @ ScanError::CorruptFrame {
                path: p,
                offset: o,
                first_lost,
                ..
            },
        ) => {
            assert_eq!((p, o.get(), *first_lost), (&path, offset, GlobalSeq(6)));
            assert!(e.is_corruption());
            assert!(e.to_string().contains(&path.display().to_string()), "{e}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(snapshot(dir.path()), before);
}

#[test]
fn a_final_segment_zeroed_from_a_record_on_is_a_missing_seal_proven_by_the_next_segment() {
    let dir = tempfile::tempdir().unwrap();
    synced_log(dir.path(), 40, 0);
    let first = segment_path(dir.path(), SegmentIndex(1));
    let in_first: Vec<(std::path::PathBuf, u64)> =
        offsets_of(dir.path(), &(1..=40).collect::<Vec<_>>())
            .into_iter()
            .filter(|(p, _)| *p == first)
            .collect();
    let last_seq = in_first.len() as u64;
    assert!(last_seq < 40, "the log rotated");
    let (_, offset) = in_first[in_first.len() - 1];
    patch(&first, offset, &vec![0u8; (SEGMENT - offset) as usize]);
    let snap = LogSnapshot::take(dir.path()).unwrap();
    let err = snap
        .records(GlobalSeq(1), ScanOptions::default())
        .find_map(Result::err)
        .expect("an error");
    match err {
        ScanError::CorruptFrame {
            path,
            first_lost,
            issue: tidelog_wal::format::FrameIssue::MissingSeal,
            proof: DurabilityProof::LaterSegment { path: later },
            ..
        } => {
            assert_eq!((path, first_lost), (first, GlobalSeq(last_seq)));
            assert_eq!(later, segment_path(dir.path(), SegmentIndex(2)));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn damage_in_the_newest_segment_proven_durable_by_a_later_frame_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    synced_log(dir.path(), 10, 0);
    let (path, offset) = offsets_of(dir.path(), &[4]).remove(0);
    assert_eq!(path, segment_path(dir.path(), SegmentIndex(1)));
    patch(&path, offset + 12, &[0x42]);
    let snap = LogSnapshot::take(dir.path()).unwrap();
    assert_eq!(snap.segments()[0].role, SegmentRole::Newest);
    let err = snap
        .records(GlobalSeq(1), ScanOptions::default())
        .find_map(Result::err)
        .expect("an error");
    assert!(
        matches!(
            err,
            ScanError::CorruptFrame {
                proof: DurabilityProof::LaterFrame { .. },
                first_lost: GlobalSeq(4),
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn a_unit_finished_by_the_writer_between_two_reads_is_read_again_not_called_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    synced_log(dir.path(), 10, 0);
    let (path, offset) = offsets_of(dir.path(), &[4]).remove(0);
    let original = std::fs::read(&path).unwrap();
    // Record 4 looks half-written (zeros), records 5.. (whose durable hints cover 4) are
    // there: what a reader sees when its read of 4 raced the writer's store.
    patch(&path, offset, &[0u8; 48]);
    let snap = LogSnapshot::take(dir.path()).unwrap();
    let mut records = snap.records(GlobalSeq(1), ScanOptions::default());
    assert_eq!(records.next().unwrap().unwrap().global_seq, GlobalSeq(1));
    // The scan has read record 4's bytes by now; the writer's store lands after.
    std::fs::write(&path, &original).unwrap();
    let rest: Vec<u64> = records.map(|r| r.unwrap().global_seq.0).collect();
    assert_eq!(rest, (2..=10).collect::<Vec<_>>());
}

#[test]
fn skipping_corrupted_data_resumes_at_the_next_unit_and_reports_the_region() {
    let dir = tempfile::tempdir().unwrap();
    synced_log(dir.path(), 10, 0);
    let (path, offset) = offsets_of(dir.path(), &[4]).remove(0);
    patch(&path, offset + 12, &[0x42]);
    let options = ScanOptions {
        skip_corrupted: true,
    };
    let snap = LogSnapshot::take(dir.path()).unwrap();
    let mut records = snap.records(GlobalSeq(1), options);
    let seqs: Vec<u64> = records.by_ref().map(|r| r.unwrap().global_seq.0).collect();
    assert_eq!(seqs, vec![1, 2, 3, 5, 6, 7, 8, 9, 10]);
    let skipped = records.skipped();
    assert_eq!(skipped.len(), 1, "{skipped:?}");
    assert_eq!(
        (
            skipped[0].path.clone(),
            skipped[0].offset,
            skipped[0].first_lost,
            skipped[0].resumed_at
        ),
        (path, offset, GlobalSeq(4), Some(GlobalSeq(5)))
    );
}

#[test]
fn foreign_files_and_gaps_are_refused_but_segments_in_preparation_are_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, _) = Wal::open(dir.path(), opts(RecoveryMode::AbsoluteConsistency)).unwrap();
    fill(&mut wal, 60, 4);
    wal.sync().unwrap();
    drop(wal);
    std::fs::write(dir.path().join("00000000000000000099.seg.tmp"), b"half").unwrap();
    assert!(scan_all(dir.path(), ScanOptions::default()).0.len() > 10);

    std::fs::write(dir.path().join("notes.txt"), b"hello").unwrap();
    let err = LogSnapshot::take(dir.path()).unwrap_err();
    assert!(
        matches!(&err, ScanError::ForeignFile { path } if path.ends_with("notes.txt")),
        "{err:?}"
    );
    std::fs::remove_file(dir.path().join("notes.txt")).unwrap();

    std::fs::remove_file(segment_path(dir.path(), SegmentIndex(2))).unwrap();
    let err = LogSnapshot::take(dir.path()).unwrap_err();
    assert!(
        matches!(
            err,
            ScanError::SegmentGap {
                missing: SegmentIndex(2),
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.is_corruption());

    let missing = LogSnapshot::take(&dir.path().join("nowhere")).unwrap_err();
    assert!(matches!(missing, ScanError::Io { .. }), "{missing:?}");
    assert!(!missing.is_corruption());
}

#[test]
fn a_newer_format_version_is_an_unsupported_header_not_corruption() {
    let dir = tempfile::tempdir().unwrap();
    synced_log(dir.path(), 2, 0);
    let path = segment_path(dir.path(), SegmentIndex(1));
    patch(&path, 8, &4u32.to_le_bytes());
    let err = LogSnapshot::take(dir.path()).unwrap_err();
    assert!(matches!(err, ScanError::BadSegmentHeader { .. }), "{err:?}");
    assert!(!err.is_corruption(), "{err}");
}

#[test]
fn a_fenced_writers_segment_is_refused_and_never_returned() {
    let dir = tempfile::tempdir().unwrap();
    let old = FencingToken::new(1, 0);
    let new = FencingToken::new(2, 0);
    let with = |fencing| WalOptions {
        fencing,
        ..opts(RecoveryMode::AbsoluteConsistency)
    };
    {
        let (mut wal, _) = Wal::open(dir.path(), with(old)).unwrap();
        append_unit(&mut wal, 1).unwrap();
        wal.sync().unwrap();
    }
    let (mut wal, _) = Wal::open(dir.path(), with(new)).unwrap();
    append_unit(&mut wal, 1).unwrap();
    wal.sync().unwrap();
    let next_index = SegmentIndex(wal.current_segment().get() + 1);
    drop(wal);
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

    let snap = LogSnapshot::take(dir.path()).unwrap();
    let mut records = snap.records(GlobalSeq(1), ScanOptions::default());
    let seqs: Vec<u64> = records.by_ref().map(|r| r.unwrap().global_seq.0).collect();
    assert_eq!(seqs, vec![1, 2]);
    assert_eq!(records.refused().len(), 1);
    assert_eq!(
        (records.refused()[0].token, records.refused()[0].fenced_by),
        (old, new)
    );
}

#[test]
fn scans_beside_a_live_writer_always_return_a_valid_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let (mut wal, _) = Wal::open(&path, opts(RecoveryMode::AbsoluteConsistency)).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut units = 0u64;
            while !stop.load(Ordering::Acquire) && units < 3_000 {
                units += 1;
                append_unit(&mut wal, 1 + units % 3).unwrap();
                if units.is_multiple_of(2) {
                    wal.sync().unwrap();
                }
            }
            wal.sync().unwrap();
            wal.last_written().0
        })
    };
    let mut scans = 0;
    let mut longest = 0;
    while scans < 200 && !writer.is_finished() {
        let (seqs, end) = scan_all(&path, ScanOptions::default());
        assert_eq!(
            seqs,
            (1..=seqs.len() as u64).collect::<Vec<_>>(),
            "a contiguous prefix"
        );
        assert!(end.is_some());
        longest = longest.max(seqs.len());
        scans += 1;
    }
    stop.store(true, Ordering::Release);
    let last = writer.join().unwrap();
    let (seqs, _) = scan_all(&path, ScanOptions::default());
    assert_eq!(
        seqs.len() as u64,
        last,
        "after the writer stops, everything"
    );
    assert!(scans > 0 && longest <= last as usize);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(32))]

    /// Whatever bytes a damage leaves, a scan never panics and never returns a record that
    /// was not written: without skipping, a prefix of the log; with skipping, a subsequence.
    #[test]
    fn damaged_bytes_never_make_a_scan_panic_or_return_what_was_not_written(
        damages in proptest::collection::vec((0usize..4, 0u64..8192, proptest::collection::vec(proptest::prelude::any::<u8>(), 1..64)), 1..4),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, _) = Wal::open(dir.path(), opts(RecoveryMode::AbsoluteConsistency)).unwrap();
        fill(&mut wal, 40, 3);
        wal.sync().unwrap();
        let written = read_all(&wal.reader());
        drop(wal);
        let files = segment_files(dir.path());
        for (file, at, bytes) in &damages {
            let path = &files[file % files.len()];
            let at = (*at).min(SEGMENT - bytes.len() as u64);
            patch(path, at, bytes);
        }
        for skip_corrupted in [false, true] {
            let Ok(snap) = LogSnapshot::take(dir.path()) else { continue };
            let mut seen = Vec::new();
            for record in snap.records(GlobalSeq(1), ScanOptions { skip_corrupted }) {
                let Ok(record) = record else { break };
                let seq = record.global_seq.0;
                proptest::prop_assert_eq!(&record.payload, &payload(seq));
                proptest::prop_assert_eq!(&record.key, &key(seq));
                seen.push(seq);
            }
            if skip_corrupted {
                proptest::prop_assert!(seen.windows(2).all(|w| w[0] < w[1]));
                proptest::prop_assert!(seen.iter().all(|s| written.contains(s)));
            } else {
                proptest::prop_assert_eq!(&seen[..], &written[..seen.len()]);
            }
        }
    }
}

/// The log of `synced_log(8, 0)`: one used segment, half full, and the writer's prepared,
/// unused next one; returns that prepared segment's path.
fn log_with_a_prepared_segment(dir: &std::path::Path) -> std::path::PathBuf {
    synced_log(dir, 8, 0);
    let files = segment_files(dir);
    assert_eq!(files.len(), 2, "{files:?}");
    files[1].clone()
}

/// The first error a whole scan of `dir` meets, taking the snapshot included.
fn first_scan_error(dir: &std::path::Path) -> Option<ScanError> {
    match LogSnapshot::take(dir) {
        Err(err) => Some(err),
        Ok(snapshot) => snapshot
            .records(GlobalSeq(1), ScanOptions::default())
            .find_map(Result::err),
    }
}

#[test]
fn a_torn_header_of_the_last_prepared_segment_is_an_unused_segment_to_a_scan() {
    let dir = tempfile::tempdir().unwrap();
    let prepared = log_with_a_prepared_segment(dir.path());
    // A crash while the header was being stored: the first bytes are not a header.
    patch(&prepared, 0, b"torn header bytes");
    let (seqs, end) = scan_all(dir.path(), ScanOptions::default());
    assert_eq!(seqs, (1..=8).collect::<Vec<u64>>());
    assert!(matches!(end, Some(LogEnd::Clean { .. })), "{end:?}");
}

#[test]
fn a_last_segment_with_a_bad_header_and_data_behind_it_is_not_taken_for_unused() {
    let dir = tempfile::tempdir().unwrap();
    let prepared = log_with_a_prepared_segment(dir.path());
    patch(&prepared, 0, b"torn header bytes");
    // Bytes further on: this segment was written to, so its header matters.
    patch(&prepared, 8192 - 64, b"data");
    let failed = first_scan_error(dir.path());
    assert!(
        matches!(failed, Some(ScanError::BadSegmentHeader { .. })),
        "{failed:?}"
    );
}

#[test]
fn only_the_last_segment_may_have_a_torn_header_and_count_as_unused() {
    let dir = tempfile::tempdir().unwrap();
    let prepared = log_with_a_prepared_segment(dir.path());
    // Another prepared segment after it, zero-filled: the torn one is no longer last.
    let zeros = std::fs::read(&prepared).unwrap();
    std::fs::write(segment_path(dir.path(), SegmentIndex(3)), &zeros).unwrap();
    patch(&prepared, 0, b"torn header bytes");
    let failed = first_scan_error(dir.path());
    assert!(
        matches!(failed, Some(ScanError::BadSegmentHeader { .. })),
        "{failed:?}"
    );
}
