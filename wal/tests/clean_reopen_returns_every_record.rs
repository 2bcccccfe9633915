//! What could go wrong: records lost or altered across rotation and reopen, a clean log
//! reported as damaged, or sequences that restart after reopen.
mod common;
use common::*;
use tidelog_wal::{GlobalSeq, RecoveryMode, Wal};

#[test]
fn a_clean_log_reopens_with_every_record_byte_for_byte_and_a_clean_report() {
    let dir = tempfile::tempdir().unwrap();
    let o = opts(RecoveryMode::AbsoluteConsistency);
    let last = {
        let (mut wal, rec) = Wal::open(dir.path(), o.clone()).unwrap();
        assert!(rec.report.is_clean());
        fill(&mut wal, 120, 4);
        wal.sync().unwrap();
        assert!(wal.current_segment().get() > 3, "the test must rotate");
        assert_eq!(wal.last_durable(), wal.last_written());
        assert_eq!(wal.last_wall_ms(), 1_000 + wal.last_written().0);
        wal.last_written()
    };
    let (mut wal, rec) = Wal::open(dir.path(), o.clone()).unwrap();
    assert!(rec.report.is_clean(), "{:?}", rec.report);
    assert_eq!(rec.last_seq, last);
    assert_eq!(rec.last_wall_ms, 1_000 + last.0);
    assert_eq!(
        wal.last_wall_ms(),
        1_000 + last.0,
        "the writer continues from it"
    );
    let seqs = read_all(&wal.reader());
    assert_eq!(seqs, (1..=last.0).collect::<Vec<_>>());
    // Sequences continue where they stopped.
    append_unit(&mut wal, 2).unwrap();
    wal.sync().unwrap();
    drop(wal);
    let (wal, rec) = Wal::open(dir.path(), o).unwrap();
    assert_eq!(rec.last_seq, GlobalSeq(last.0 + 2));
    assert_eq!(read_all(&wal.reader()).len() as u64, last.0 + 2);
}

#[test]
fn the_directory_holds_only_segment_files_named_by_index() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, _) = Wal::open(dir.path(), opts(RecoveryMode::AbsoluteConsistency)).unwrap();
    fill(&mut wal, 40, 1);
    drop(wal);
    for path in segment_files(dir.path()) {
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        assert!(name.ends_with(".seg") && name.len() == 24, "{name}");
        assert_eq!(std::fs::metadata(&path).unwrap().len(), SEGMENT);
    }
}

#[test]
fn each_frame_read_back_says_whether_it_ends_its_unit() {
    let dir = tempfile::tempdir().unwrap();
    let o = opts(RecoveryMode::AbsoluteConsistency);
    {
        let (mut wal, _) = Wal::open(dir.path(), o.clone()).unwrap();
        append_unit(&mut wal, 3).unwrap();
        append_unit(&mut wal, 1).unwrap();
        append_unit(&mut wal, 2).unwrap();
        wal.sync().unwrap();
    }
    let (wal, _) = Wal::open(dir.path(), o).unwrap();
    let ends: Vec<bool> = wal
        .reader()
        .iter_from(GlobalSeq(1))
        .map(|f| f.ends_unit())
        .collect();
    assert_eq!(ends, [false, false, true, true, false, true]);
    let shown = format!("{:?}", wal.reader().get(GlobalSeq(3)).unwrap());
    assert!(
        shown.starts_with("FrameRef") && shown.contains("global_seq: GlobalSeq(3)"),
        "{shown}"
    );
}
