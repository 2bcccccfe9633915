//! What could go wrong: `tidelog verify`'s progress bar never reaches its end, goes
//! backwards, or counts what it does not check (the segments a verify walks are the
//! ones holding data, whole).
mod common;
use common::*;
use tidelog_wal::io::RealStorage;
use tidelog_wal::{
    verify_reporting, verify_with_extent_reporting, FindingKind, RecoveryMode, Verdict, Wal,
};

#[test]
fn verify_reports_bytes_checked_rising_to_the_total_of_the_segments_with_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let (mut wal, _) =
            Wal::open(dir.path(), opts(RecoveryMode::AbsoluteConsistency)).expect("open");
        fill(&mut wal, 400, 100);
    }
    let mut seen: Vec<(u64, u64)> = Vec::new();
    let report = verify_reporting(
        dir.path(),
        &opts(RecoveryMode::AbsoluteConsistency),
        &mut |done, total| seen.push((done, total)),
    )
    .expect("verify");
    assert_eq!(report.verdict, Verdict::Clean);
    let (first, last) = (seen[0], seen[seen.len() - 1]);
    assert_eq!(first.0, 0, "{seen:?}");
    assert_eq!(last.0, last.1, "ends at its total: {seen:?}");
    assert!(
        seen.windows(2)
            .all(|w| w[0].0 <= w[1].0 && w[0].1 == w[1].1),
        "{seen:?}"
    );
    assert!(report.segments >= 2, "{report:?}");
    assert_eq!(
        seen.len() as u64,
        report.segments + 1,
        "one report per segment: {seen:?}"
    );
}

/// The extent-checked verify (what `tidelog verify` and `recover` run) reports its
/// progress the same way, and still finds a log shorter than its record.
#[test]
fn verify_against_the_extent_record_reports_progress_to_its_total_and_still_finds_a_loss() {
    let root = tempfile::tempdir().expect("tempdir");
    let (wal_dir, extent) = (root.path().join("wal"), root.path().join("EXTENT"));
    let options = opts(RecoveryMode::AbsoluteConsistency);
    {
        let (mut wal, _) =
            Wal::open_with_extent(RealStorage, &wal_dir, options.clone(), &extent).expect("open");
        fill(&mut wal, 400, 100);
        wal.sync().expect("sync");
        wal.record_extent().expect("extent");
    }
    let mut seen: Vec<(u64, u64)> = Vec::new();
    let report = verify_with_extent_reporting(
        &RealStorage,
        &wal_dir,
        &options,
        &extent,
        &mut |done, total| seen.push((done, total)),
    )
    .expect("verify");
    assert_eq!(report.verdict, Verdict::Clean, "{report:?}");
    let last = seen[seen.len() - 1];
    assert!(
        last.1 > 0 && last.0 == last.1,
        "ends at its total: {seen:?}"
    );
    assert_eq!(seen.len() as u64, report.segments + 1, "{seen:?}");

    // The newest segment holding data removed: the loss is still found while reporting.
    let mut with_data: Vec<_> = std::fs::read_dir(&wal_dir)
        .expect("list")
        .map(|e| e.expect("entry").path())
        .collect();
    with_data.sort();
    let newest = with_data
        .into_iter()
        .rev()
        .find(|p| std::fs::metadata(p).is_ok_and(|m| m.len() > 0))
        .expect("a segment");
    std::fs::remove_file(newest).expect("remove");
    let report =
        verify_with_extent_reporting(&RealStorage, &wal_dir, &options, &extent, &mut |_, _| {})
            .expect("verify");
    assert!(
        report
            .findings
            .iter()
            .any(|f| matches!(f.kind, FindingKind::LostRecords { .. })),
        "{report:?}"
    );
}
