//! A segment file deleted while the writer uses it (`rm`, a cleanup script, the database
//! directory removed). The writer's file descriptor still takes stores and syncs, into
//! an inode no directory names, so nothing synced after the deletion survives a reopen.
//!
//! What could go wrong: the engine goes on acknowledging appends as durable although
//! they are already gone; the failure is not reported as such; the next open does not
//! see the loss.

use tidelog::{AppendError, Engine, OpenError, Options};

fn segments(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    files.sort();
    files
}

fn options() -> Options {
    Options::default()
        .segment_size(1 << 20)
        .max_record_bytes(64 * 1024)
        .max_batch_bytes(256 * 1024)
}

#[test]
fn no_append_is_acknowledged_as_durable_after_its_segment_file_was_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let engine = Engine::open(&db, options()).unwrap();
    for i in 0..10 {
        engine.append_durable(1u32, format!("before-{i}")).unwrap();
    }
    for segment in segments(&db) {
        std::fs::remove_file(segment).unwrap();
    }

    let err = engine
        .append_durable(1u32, "after the deletion")
        .expect_err("a record synced into a deleted file was acknowledged as durable");
    let message = err.to_string();
    assert!(
        matches!(err, AppendError::Poisoned { .. }),
        "not a poison: {err:?}"
    );
    assert!(
        message.contains("deleted while the writer was using it"),
        "the error does not say what happened: {message}"
    );
    // Nothing after it is acknowledged either.
    assert!(matches!(
        engine.append_durable(1u32, "later"),
        Err(AppendError::Poisoned { .. })
    ));
    let _ = engine.close();

    // The next open sees that acknowledged records are gone (the extent record), rather
    // than starting a fresh log over them.
    match Engine::open(&db, options()) {
        Err(OpenError::Wal(e)) => assert!(
            e.to_string().contains("acknowledged records are missing"),
            "{e}"
        ),
        other => panic!("the loss went unnoticed: {other:?}"),
    }
}
