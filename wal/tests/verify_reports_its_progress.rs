//! What could go wrong: `tidelog verify`'s progress bar never reaches its end, goes
//! backwards, or counts what it does not check (the segments a verify walks are the
//! ones holding data, whole).
mod common;
use common::*;
use tidelog_wal::{verify_reporting, RecoveryMode, Verdict, Wal};

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
