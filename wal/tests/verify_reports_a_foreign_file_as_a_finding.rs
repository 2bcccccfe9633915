//! What could go wrong: `tidelog verify` stops with an error at a file that is not a
//! segment instead of reporting it as a finding and going on (open refuses such a
//! directory; verify is how an operator finds out why). Found missing by cargo-mutants
//! (docs/mutants.md).
mod common;
use common::*;
use tidelog_wal::{verify, FindingKind, OpenError, RecoveryMode, Verdict, Wal};

#[test]
fn verify_lists_a_foreign_file_as_a_finding_instead_of_failing() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let (mut wal, _) =
            Wal::open(dir.path(), opts(RecoveryMode::AbsoluteConsistency)).expect("open");
        fill(&mut wal, 10, 1);
    }
    let foreign = dir.path().join("notes.txt");
    std::fs::write(&foreign, b"not a segment").expect("write");
    let report = verify(dir.path(), &opts(RecoveryMode::AbsoluteConsistency)).expect("verify");
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.path == foreign && matches!(f.kind, FindingKind::ForeignFile)),
        "{report:?}"
    );
    assert_ne!(report.verdict, Verdict::Clean);
    assert!(foreign.exists(), "verify changes nothing");
    let err = Wal::open(dir.path(), opts(RecoveryMode::AbsoluteConsistency))
        .err()
        .expect("open refuses it");
    assert!(matches!(err, OpenError::ForeignFile { .. }), "{err}");
}
