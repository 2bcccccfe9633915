//! What could go wrong: truncation deletes a segment that still holds a sequence at or
//! above the floor, deletes the writer's segment, leaves a hole after a crash mid-way
//! (recovery would refuse the log), or a truncated log no longer opens; a prefix copy does
//! not open, or holds more or less than the prefix asked for.
mod common;
use common::*;
use std::path::Path;
use tidelog_wal::{GlobalSeq, RecoveryMode, SimDisk, Wal};

fn wal_dir() -> &'static Path {
    Path::new("/db/wal")
}

#[test]
fn segments_wholly_below_the_floor_are_removed_and_the_rest_reopen_intact() {
    let disk = SimDisk::new();
    let opts = opts(RecoveryMode::AbsoluteConsistency);
    let (mut wal, _) = Wal::open_with(disk.clone(), wal_dir(), opts.clone()).unwrap();
    fill(&mut wal, 120, 2);
    wal.sync().unwrap();
    let last = wal.last_written();
    let truncator = wal.truncator();
    let segments = truncator.segments();
    assert!(segments.len() >= 5, "the workload spans segments");
    // A floor inside the fourth segment: the first three go, the fourth stays.
    let floor = GlobalSeq(segments[3].first_seq.0 + 1);
    let report = truncator.remove_segments_below(floor).unwrap();
    assert_eq!(report.removed.len(), 3);
    assert_eq!(report.first_seq, segments[3].first_seq);
    assert!(report.first_seq <= floor);
    let reader = wal.reader();
    assert_eq!(reader.first_seq(), segments[3].first_seq);
    assert!(reader.get(GlobalSeq(1)).is_none());
    assert!(reader.get(floor).is_some());
    // A floor past everything never removes the writer's segment.
    truncator
        .remove_segments_below(GlobalSeq(u64::MAX))
        .unwrap();
    assert_eq!(truncator.segments().len(), 1);
    let kept_first = truncator.first_seq();
    drop(wal);
    let (wal, recovered) = Wal::open_with(disk, wal_dir(), opts).unwrap();
    assert_eq!(recovered.last_seq, last);
    let seqs = read_all(&wal.reader());
    let expected: Vec<u64> = (kept_first.0..=last.0).collect();
    assert_eq!(seqs, expected);
}

#[test]
fn a_crash_at_any_step_of_truncation_leaves_a_contiguous_log_that_opens() {
    let opts = opts(RecoveryMode::AbsoluteConsistency);
    let run = |disk: &SimDisk| -> Option<(GlobalSeq, GlobalSeq)> {
        let (mut wal, _) = Wal::open_with(disk.clone(), wal_dir(), opts.clone()).ok()?;
        fill(&mut wal, 80, 2);
        wal.sync().ok()?;
        let floor = wal.truncator().segments().get(4)?.first_seq;
        let before = disk.ops();
        let _ = wal.truncator().remove_segments_below(floor);
        Some((GlobalSeq(before), wal.last_written()))
    };
    let probe = SimDisk::new();
    let (start, last) = run(&probe).unwrap();
    let end = probe.ops();
    assert!(end > start.0 + 4, "truncation took steps");
    for k in start.0 + 1..=end {
        for seed in 0..3 {
            let disk = SimDisk::new();
            disk.crash_at(k);
            let _ = run(&disk);
            let image = disk.crash_image(seed);
            let (wal, recovered) = Wal::open_with(image, wal_dir(), opts.clone())
                .unwrap_or_else(|e| panic!("crash at {k} seed {seed}: {e}"));
            assert_eq!(recovered.last_seq, last, "crash at {k}");
            let seqs = read_all(&wal.reader());
            let first = wal.reader().first_seq().0;
            assert_eq!(seqs, (first..=last.0).collect::<Vec<_>>(), "crash at {k}");
        }
    }
}

#[test]
fn a_prefix_copy_opens_as_a_log_ending_exactly_at_its_point() {
    let disk = SimDisk::new();
    let opts = opts(RecoveryMode::AbsoluteConsistency);
    let (mut wal, _) = Wal::open_with(disk.clone(), wal_dir(), opts.clone()).unwrap();
    // One-record units: every sequence ends a unit, so any durable one may be copied up to.
    for _ in 0..120 {
        append_unit(&mut wal, 1).unwrap();
        wal.sync().unwrap();
    }
    let reader = wal.reader();
    let truncator = wal.truncator();
    assert_eq!(truncator.segment_size(), opts.segment_size);
    assert!(format!("{truncator:?}").starts_with("Truncator"));
    let segments = truncator.segments();
    // A point in the middle of a segment, and the last sequence of a sealed one.
    let sealed_end = GlobalSeq(segments[2].first_seq.0 - 1);
    // Also the first sequence of a segment: that segment is copied up to its first frame.
    let segment_start = segments[2].first_seq;
    for upto in [GlobalSeq(17), sealed_end, segment_start, wal.last_durable()] {
        let dest = Path::new("/copy").join(upto.0.to_string());
        let report = reader
            .copy_prefix(&disk, &dest, upto, opts.segment_size)
            .unwrap();
        assert_eq!(report.last_seq, upto);
        assert_eq!(report.first_seq, GlobalSeq(1));
        assert!(report.bytes > 0);
        // More appends after the copy change nothing in it.
        let (copy, recovered) = Wal::open_with(disk.clone(), &dest, opts.clone()).unwrap();
        assert_eq!(recovered.last_seq, upto);
        assert_eq!(read_all(&copy.reader()), (1..=upto.0).collect::<Vec<_>>());
    }
    fill(&mut wal, 5, 1);
}

#[test]
fn a_prefix_copy_on_a_real_disk_creates_its_missing_destination_directories() {
    let root = tempfile::tempdir().unwrap();
    let opts = opts(RecoveryMode::AbsoluteConsistency);
    let (mut wal, _) = Wal::open(&root.path().join("wal"), opts.clone()).unwrap();
    fill(&mut wal, 20, 1);
    let upto = wal.last_durable();
    let dest = root.path().join("backups").join("first");
    let report = wal
        .reader()
        .copy_prefix(
            &tidelog_wal::io::RealStorage,
            &dest,
            upto,
            opts.segment_size,
        )
        .unwrap();
    assert_eq!(report.last_seq, upto);
    let (copy, recovered) = Wal::open(&dest, opts).unwrap();
    assert_eq!(recovered.last_seq, upto);
    assert_eq!(read_all(&copy.reader()), (1..=upto.0).collect::<Vec<_>>());
}
