//! What could go wrong: the first open of a new database dies (crash, I/O error) after it
//! made the log folder or the marker's temp file but before the marker was in place, and
//! every later open refuses the directory as "not a tidelog database". Found by the strace
//! harness (`tests/tests/syscall_faults.rs`, EIO from the marker's fsync).

use tidelog::{Engine, OpenError, Options};

fn leftovers(dir: &std::path::Path, temp_marker: Option<&[u8]>) {
    std::fs::create_dir_all(dir.join("wal")).unwrap();
    if let Some(bytes) = temp_marker {
        std::fs::write(dir.join("TIDELOG.tmp"), bytes).unwrap();
    }
}

#[test]
fn an_empty_log_folder_and_a_torn_marker_temp_file_are_completed_by_the_next_open() {
    let base = tempfile::tempdir().unwrap();
    let dir = base.path().join("db");
    leftovers(&dir, Some(b"tidelog da"));
    let engine =
        Engine::open(&dir, Options::default()).expect("the interrupted creation is finished");
    engine.append_durable(1, b"first".to_vec()).unwrap();
    engine.close().unwrap();
    drop(engine);
    assert!(
        !dir.join("TIDELOG.tmp").exists(),
        "the temp marker was renamed into place"
    );
    let engine = Engine::open(&dir, Options::default()).unwrap();
    assert_eq!(engine.scan_all(tidelog::GlobalSeq(1)).unwrap().count(), 1);
}

#[test]
fn an_empty_log_folder_alone_is_completed_by_the_next_open() {
    let base = tempfile::tempdir().unwrap();
    let dir = base.path().join("db");
    leftovers(&dir, None);
    Engine::open(&dir, Options::default()).expect("the interrupted creation is finished");
}

#[test]
fn a_log_folder_holding_files_without_a_marker_is_still_refused_unchanged() {
    let base = tempfile::tempdir().unwrap();
    let dir = base.path().join("db");
    leftovers(&dir, Some(b""));
    std::fs::write(dir.join("wal").join("00000000000000000001.seg"), b"data").unwrap();
    let err = Engine::open(&dir, Options::default()).unwrap_err();
    assert!(matches!(err, OpenError::NotADatabase { .. }), "{err}");
    assert!(dir.join("TIDELOG.tmp").exists() && !dir.join("TIDELOG").exists());
}

#[test]
fn a_foreign_file_beside_the_leftovers_is_still_refused() {
    let base = tempfile::tempdir().unwrap();
    let dir = base.path().join("db");
    leftovers(&dir, Some(b""));
    std::fs::write(dir.join("notes.txt"), b"mine").unwrap();
    let err = Engine::open(&dir, Options::default()).unwrap_err();
    assert!(matches!(err, OpenError::NotADatabase { .. }), "{err}");
}
