//! A segment file deleted while the writer uses it (`rm`, a cleanup script, the database
//! directory removed). The writer's file descriptor still takes stores and syncs, into
//! an inode no directory names, so nothing synced after the deletion survives a reopen.
//!
//! What could go wrong: the engine goes on acknowledging appends as durable although
//! they are already gone; the failure is not reported as such; the next open does not
//! see the loss.

mod common;
use common::{segment_files, small};
use tidelog::{AppendError, Engine, OpenError};

#[test]
fn no_append_is_acknowledged_as_durable_after_its_segment_file_was_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let engine = Engine::open(&db, small()).unwrap();
    for i in 0..10 {
        engine.append_durable(1u32, format!("before-{i}")).unwrap();
    }
    for segment in segment_files(&db) {
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
    match Engine::open(&db, small()) {
        Err(OpenError::Wal(e)) => assert!(
            e.to_string().contains("acknowledged records are missing"),
            "{e}"
        ),
        other => panic!("the loss went unnoticed: {other:?}"),
    }
}
