//! What could go wrong: a segment file that truncation freed is reused as a later segment
//! without being zero-filled, and its earlier life's frames come back (from recovery, a
//! reader, `verify` or a read-only scan as `tidelog dump` uses it); or the earlier life's
//! bytes after the new end are taken for a torn tail or damage, so a clean log reports a
//! repair, refuses to open or reports a loss; or a power loss in the middle of reusing a
//! file does either; or the files kept for reuse pile up.
mod common;
use common::*;
use std::path::Path;
use tidelog_wal::format::{header_is_reused, SEGMENT_HEADER_LEN};
use tidelog_wal::scan::{LogEnd, LogSnapshot, ScanOptions};
use tidelog_wal::segment::MAX_SPARE_SEGMENTS;
use tidelog_wal::{verify, GlobalSeq, RecoveryMode, SimDisk, Verdict, Wal};

fn spare_files(dir: &Path) -> usize {
    segment_files(dir)
        .iter()
        .filter(|p| p.to_string_lossy().ends_with(".seg.spare"))
        .count()
}

fn reused_segments(dir: &Path) -> usize {
    segment_files(dir)
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .filter(|p| {
            let bytes = std::fs::read(p).unwrap();
            header_is_reused(&bytes[..SEGMENT_HEADER_LEN])
        })
        .count()
}

/// Appends `units` units, syncing every other one and once at the end.
fn append_synced<S: tidelog_wal::Storage>(wal: &mut Wal<S>, units: u64) {
    for u in 0..units {
        append_unit(wal, 1 + u % 3).unwrap();
        if u % 2 == 1 {
            wal.sync().unwrap();
        }
    }
    wal.sync().unwrap();
}

/// The records the log holds from `first` on, checked byte for byte, must be exactly
/// `first..=last`.
fn assert_holds_exactly<S: tidelog_wal::Storage>(wal: &Wal<S>, first: u64, last: u64, what: &str) {
    let seqs = read_all(&wal.reader());
    assert_eq!(
        seqs,
        (first..=last).collect::<Vec<_>>(),
        "{what}: the log must hold exactly {first}..={last}"
    );
}

#[test]
fn segments_full_of_old_frames_are_reused_and_no_reader_ever_returns_one_of_them() {
    let dir = tempfile::tempdir().unwrap();
    let opts = opts(RecoveryMode::AbsoluteConsistency);
    let (mut wal, _) = Wal::open(dir.path(), opts.clone()).unwrap();
    append_synced(&mut wal, 120);
    assert!(
        wal.current_segment().get() >= 5,
        "the log spans several segments"
    );
    let floor = GlobalSeq(wal.last_durable().0 - 5);
    let report = wal.truncator().remove_segments_below(floor).unwrap();
    assert!(report.removed.len() >= 3, "{report:?}");
    assert_eq!(
        report.kept_for_reuse.len(),
        MAX_SPARE_SEGMENTS,
        "{report:?}"
    );
    assert_eq!(spare_files(dir.path()), MAX_SPARE_SEGMENTS);
    let first = report.first_seq.0;
    // Appends go on into the reused files: two rotations take both spares.
    let before = wal.current_segment();
    while wal.current_segment().get() < before.get() + 3 {
        append_synced(&mut wal, 10);
    }
    assert_eq!(spare_files(dir.path()), 0, "both spares were taken");
    assert!(
        reused_segments(dir.path()) >= 2,
        "the spares became segments"
    );
    // Records appended after the last sync and never synced: the reused segment's end is
    // then mid-sector with the earlier life's bytes after the padding.
    append_unit(&mut wal, 2).unwrap();
    wal.flush().unwrap();
    let last = wal.last_written().0;
    assert_holds_exactly(&wal, first, last, "reader beside the writer");
    drop(wal);

    let report = verify(dir.path(), &opts).unwrap();
    assert_eq!(report.verdict, Verdict::Clean, "{:?}", report.findings);
    assert_eq!(report.last_seq, GlobalSeq(last));

    let snapshot = LogSnapshot::take(dir.path()).unwrap();
    let mut records = snapshot.records(GlobalSeq(1), ScanOptions::default());
    let seqs: Vec<u64> = records.by_ref().map(|r| r.unwrap().global_seq.0).collect();
    assert_eq!(seqs, (first..=last).collect::<Vec<_>>(), "read-only scan");
    assert!(
        matches!(records.end(), Some(LogEnd::Clean { .. })),
        "the earlier life's bytes are no torn tail: {:?}",
        records.end()
    );

    let (wal, recovered) = Wal::open(dir.path(), opts.clone()).unwrap();
    assert!(
        recovered.report.is_clean(),
        "a reused segment opens cleanly: {:?}",
        recovered.report
    );
    assert_eq!(recovered.last_seq, GlobalSeq(last));
    assert_holds_exactly(&wal, first, last, "after recovery");
}

#[test]
fn truncation_keeps_at_most_two_freed_segments_for_reuse_and_deletes_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, _) = Wal::open(dir.path(), opts(RecoveryMode::AbsoluteConsistency)).unwrap();
    append_synced(&mut wal, 80);
    let floor = GlobalSeq(wal.last_durable().0 / 2);
    let first = wal.truncator().remove_segments_below(floor).unwrap();
    append_synced(&mut wal, 80);
    let floor = GlobalSeq(wal.last_durable().0 - 1);
    let second = wal.truncator().remove_segments_below(floor).unwrap();
    assert!(first.removed.len() + second.removed.len() > 4);
    assert_eq!(spare_files(dir.path()), MAX_SPARE_SEGMENTS);
    let segments = segment_files(dir.path()).len() - MAX_SPARE_SEGMENTS;
    assert!(
        segments <= 2,
        "the log holds its newest segment and at most a prepared one: {:?}",
        segment_files(dir.path())
    );
}

#[test]
fn a_freed_segment_a_reader_still_holds_a_frame_of_is_deleted_not_reused() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, _) = Wal::open(dir.path(), opts(RecoveryMode::AbsoluteConsistency)).unwrap();
    append_synced(&mut wal, 60);
    let held = wal.reader().get(GlobalSeq(1)).unwrap();
    let bytes = held.payload().to_vec();
    let report = wal
        .truncator()
        .remove_segments_below(GlobalSeq(wal.last_durable().0 - 1))
        .unwrap();
    assert!(report.removed.len() >= 2, "{report:?}");
    assert!(
        report
            .kept_for_reuse
            .iter()
            .all(|p| !p.to_string_lossy().contains("00000000000000000001")),
        "segment 1 is still read: {report:?}"
    );
    // Rotations reuse the others; the held frame keeps its bytes.
    append_synced(&mut wal, 60);
    assert_eq!(held.payload(), &bytes[..]);
}

/// Fills four segments, truncates below the newest (two of the freed ones kept as
/// spares), then appends across rotations into both reused files, syncing every other unit; returns the appended units'
/// last sequences and the durable sequence. Stops at the first failure (the crash).
fn reuse_workload(disk: &SimDisk) -> Workload {
    let Ok((mut wal, _)) = open_sim(disk.clone()) else {
        return Workload::default();
    };
    append_syncing_every_other(&mut wal, 80, |wal, u, _| {
        let floor = GlobalSeq(wal.last_durable().0.saturating_sub(3));
        u != 40 || wal.truncator().remove_segments_below(floor).is_ok()
    })
}

#[test]
fn a_power_loss_at_every_step_of_reusing_a_segment_never_yields_an_old_frame_nor_refuses_to_open() {
    let total = {
        let disk = SimDisk::new();
        let ends = reuse_workload(&disk).ends;
        assert_eq!(ends.len(), 80);
        // The workload does reuse: the segment after the truncation is a reused file.
        let (wal, _) = open_sim(disk.clone()).unwrap();
        let reused = (1..=wal.current_segment().get())
            .filter_map(|i| {
                let name = tidelog_wal::segment::segment_file_name(tidelog_wal::SegmentIndex(i));
                disk.file_bytes(&Path::new(SIM_WAL).join(name))
            })
            .filter(|bytes| header_is_reused(bytes))
            .count();
        assert_eq!(reused, 2, "both spares became segments");
        disk.ops()
    };
    let mut reopened = 0;
    for k in 1..=total {
        for seed in 0..3u64 {
            let disk = SimDisk::new();
            disk.crash_at(k);
            let Workload { ends, durable, .. } = reuse_workload(&disk);
            let image = disk.crash_image(seed * 7_919 + k);
            let (mut wal, rec) = open_sim(image.clone())
                .unwrap_or_else(|e| panic!("crash at op {k} seed {seed}: reopen refused: {e}"));
            let what = format!("crash at op {k} seed {seed}");
            assert!(rec.report.skipped.is_empty(), "{what}: {:?}", rec.report);
            assert!(
                rec.report.accepted_loss.is_none(),
                "{what}: {:?}",
                rec.report
            );
            assert!(rec.last_seq >= durable, "{what}: lost synced records");
            assert!(
                rec.last_seq.0 == 0 || ends.contains(&rec.last_seq.0),
                "{what}: ends at {} which no unit ended at",
                rec.last_seq
            );
            let first = wal.reader().first_seq().0;
            assert_holds_exactly(&wal, first, rec.last_seq.0, &what);
            // The next writer continues over the reused file's bytes; what it syncs comes
            // back alone after one more reopen.
            append_unit(&mut wal, 2).unwrap();
            let last = wal.sync().unwrap().0;
            drop(wal);
            let (wal, again) =
                open_sim(image).unwrap_or_else(|e| panic!("{what}: second reopen refused: {e}"));
            assert!(again.report.is_clean(), "{what}: {:?}", again.report);
            assert_holds_exactly(&wal, first, last, &what);
            reopened += 1;
        }
    }
    assert_eq!(reopened, total * 3);
}
