//! What could go wrong: a damaged header, a segment from a newer format, a missing
//! segment or a stray file is read as if it were a valid log (garbage returned, or data
//! after a gap silently dropped), or the error does not say which file.
mod common;
use common::*;
use tidelog_wal::format::HeaderIssue;
use tidelog_wal::{OpenError, RecoveryMode, SegmentIndex, Wal};

fn log_with_three_segments() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, _) = Wal::open(dir.path(), opts(RecoveryMode::AbsoluteConsistency)).unwrap();
    while wal.current_segment().get() < 3 {
        append_unit(&mut wal, 1).unwrap();
    }
    wal.sync().unwrap();
    dir
}

fn open_err(dir: &std::path::Path) -> OpenError {
    let before = snapshot(dir);
    let err = Wal::open(dir, opts(RecoveryMode::SkipCorrupted))
        .err()
        .expect("open must fail");
    assert_eq!(
        snapshot(dir),
        before,
        "a refused open changes nothing on disk"
    );
    err
}

#[test]
fn a_segment_with_wrong_magic_is_refused_naming_the_file() {
    let dir = log_with_three_segments();
    let seg = segment_files(dir.path())[1].clone();
    patch(&seg, 0, b"NOTALOG!");
    match open_err(dir.path()) {
        OpenError::BadSegmentHeader {
            path,
            issue: HeaderIssue::BadMagic,
        } => assert_eq!(path, seg),
        e => panic!("{e}"),
    }
}

#[test]
fn a_segment_of_a_newer_format_version_is_refused_with_the_version() {
    let dir = log_with_three_segments();
    let seg = segment_files(dir.path())[0].clone();
    patch(&seg, 8, &4u32.to_le_bytes());
    let err = open_err(dir.path());
    assert!(
        matches!(&err, OpenError::BadSegmentHeader { path, issue: HeaderIssue::UnsupportedVersion { found: 4 } } if *path == seg),
        "{err}"
    );
    assert!(err.to_string().contains("version 4"));
}

#[test]
fn a_header_with_a_bad_checksum_is_refused() {
    let dir = log_with_three_segments();
    let seg = segment_files(dir.path())[0].clone();
    patch(&seg, 24, &[9]);
    assert!(matches!(
        open_err(dir.path()),
        OpenError::BadSegmentHeader {
            issue: HeaderIssue::Checksum { .. },
            ..
        }
    ));
}

#[test]
fn a_header_from_another_segment_is_refused() {
    let dir = log_with_three_segments();
    let files = segment_files(dir.path());
    let header_of_second = std::fs::read(&files[1]).unwrap()[..64].to_vec();
    patch(&files[0], 0, &header_of_second);
    assert!(matches!(
        open_err(dir.path()),
        OpenError::BadSegmentHeader {
            issue: HeaderIssue::WrongIndex { .. },
            ..
        }
    ));
}

#[test]
fn a_gap_in_segment_indexes_is_refused_naming_the_missing_index() {
    let dir = log_with_three_segments();
    let files = segment_files(dir.path());
    std::fs::remove_file(&files[1]).unwrap();
    match open_err(dir.path()) {
        OpenError::SegmentGap { missing, path } => {
            assert_eq!(missing, SegmentIndex(2));
            assert_eq!(path, files[2]);
        }
        e => panic!("{e}"),
    }
}

#[test]
fn a_foreign_file_in_the_directory_is_refused_by_name() {
    let dir = log_with_three_segments();
    let stray = dir.path().join("notes.txt");
    std::fs::write(&stray, b"hello").unwrap();
    match open_err(dir.path()) {
        OpenError::ForeignFile { path } => assert_eq!(path, stray),
        e => panic!("{e}"),
    }
}
