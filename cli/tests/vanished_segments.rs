//! The commands on a database whose segment files were deleted or replaced by older
//! copies, with real files, as an operator's slip or a partial restore leaves them.
//! What could go wrong: `verify` calling such a log clean, `dump` or `stats` hiding the
//! loss, `append` handing out again sequences that were acknowledged, a loss accepted
//! without `--mode accept-loss`, or accepting it reusing a sequence.
mod common;
use common::*;
use std::path::Path;

fn receipt(out: &std::process::Output) -> serde_json::Value {
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The log's files and its extent record (the lease files change on every open).
fn log_files(db: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut files = snapshot(&db.join("wal"));
    files.push((db.join("EXTENT"), std::fs::read(db.join("EXTENT")).unwrap()));
    files
}

/// Every command refuses or flags the loss, and changes nothing.
fn every_command_sees_the_loss(db: &Path, readable: usize) {
    let before = log_files(db);
    let out = tidelog(&["verify", s(db)], b"");
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stdout));
    let report = text(&out.stdout);
    assert!(report.starts_with("corrupt"), "{report}");
    assert!(report.contains("had been acknowledged"), "{report}");

    let out = tidelog(&["dump", s(db)], b"");
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert_eq!(
        payloads(&out.stdout),
        (1..=readable).map(line).collect::<Vec<_>>(),
        "every readable record, then the loss"
    );
    assert!(
        text(&out.stderr).contains("missing"),
        "{}",
        text(&out.stderr)
    );

    let out = tidelog(&["stats", s(db)], b"");
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("LOSS"), "{}", text(&out.stdout));

    let out = tidelog(&["append", s(db), "--lane", "1"], b"more\n");
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).is_empty(),
        "no receipt for a log that lost records"
    );
    assert!(
        text(&out.stderr).contains("accept-loss"),
        "{}",
        text(&out.stderr)
    );

    let out = tidelog(&["recover", s(db), "--mode", "skip-corrupted"], b"");
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(
        log_files(db) == before,
        "refusals changed the log or its extent record"
    );
}

/// After `recover --mode accept-loss`, appends continue above every acknowledged global
/// and lane sequence; the log verifies clean again.
fn accepting_the_loss_never_reuses_a_sequence(db: &Path, acknowledged: u64) {
    let out = tidelog(&["recover", s(db), "--mode", "accept-loss"], b"");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report = text(&out.stdout);
    assert!(
        report.contains("accepted the loss of global sequences"),
        "{report}"
    );
    let r = receipt(&tidelog(
        &["append", s(db), "--lane", "1", "--json"],
        b"after\n",
    ));
    assert!(r["global_seq"].as_u64().unwrap() > acknowledged, "{r}");
    assert!(r["lane_seq"].as_u64().unwrap() > acknowledged, "{r}");
    let out = tidelog(&["verify", s(db)], b"");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    let out = tidelog(&["dump", s(db), "--lane", "4294967295"], b"");
    assert_eq!(out.status.code(), Some(0));
    assert!(
        text(&out.stdout).contains("were lost and the loss was accepted"),
        "the loss is a record of the log: {}",
        text(&out.stdout)
    );
}

#[test]
fn deleting_the_newest_segments_is_seen_by_every_command_and_accepted_only_explicitly() {
    let dir = tempfile::tempdir().unwrap();
    let db = database(dir.path(), 1500);
    let all = segments(&db);
    // The newest segment holding records, and the prepared one after it.
    let (holder, _) = find(&db, line(1500).as_bytes());
    let from = all.iter().position(|p| *p == holder).unwrap();
    let (first_gone, _) = find(&db, line(1).as_bytes());
    assert_ne!(first_gone, holder, "the test needs several segments");
    for path in &all[from..] {
        std::fs::remove_file(path).unwrap();
    }
    // Records of the deleted segment are gone; those before it can still be read.
    let left: Vec<Vec<u8>> = segments(&db)
        .iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    let held = |i: usize| {
        let needle = line(i);
        left.iter()
            .any(|bytes| bytes.windows(needle.len()).any(|w| w == needle.as_bytes()))
    };
    let readable = (1..=1500).take_while(|i| held(*i)).count();
    assert!(readable > 0 && readable < 1500);
    every_command_sees_the_loss(&db, readable);
    accepting_the_loss_never_reuses_a_sequence(&db, 1500);
}

#[test]
fn deleting_every_segment_is_seen_by_every_command_and_accepted_only_explicitly() {
    let dir = tempfile::tempdir().unwrap();
    let db = database(dir.path(), 300);
    for path in segments(&db) {
        std::fs::remove_file(path).unwrap();
    }
    every_command_sees_the_loss(&db, 0);
    accepting_the_loss_never_reuses_a_sequence(&db, 300);
}

#[test]
fn the_log_folder_replaced_by_an_older_copy_is_seen_and_accepted_only_explicitly() {
    let dir = tempfile::tempdir().unwrap();
    let db = database(dir.path(), 300);
    let old = dir.path().join("wal-copy");
    std::fs::create_dir(&old).unwrap();
    for path in segments(&db) {
        std::fs::copy(&path, old.join(path.file_name().unwrap())).unwrap();
    }
    let out = tidelog(
        &["append", s(&db), "--lane", "1"],
        lines(301..=600).as_bytes(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    std::fs::remove_dir_all(db.join("wal")).unwrap();
    std::fs::rename(&old, db.join("wal")).unwrap();
    every_command_sees_the_loss(&db, 300);
    accepting_the_loss_never_reuses_a_sequence(&db, 600);
}

#[test]
fn a_middle_segment_deleted_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = database(dir.path(), 1500);
    let all = segments(&db);
    std::fs::remove_file(&all[1]).unwrap();
    let out = tidelog(&["verify", s(&db)], b"");
    assert_eq!(out.status.code(), Some(3));
    assert!(
        text(&out.stdout).contains("segment 2 is missing"),
        "{}",
        text(&out.stdout)
    );
    let out = tidelog(&["append", s(&db), "--lane", "1"], b"more\n");
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("segment 2 is missing"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        text(&out.stderr).contains("1500 had been acknowledged"),
        "{}",
        text(&out.stderr)
    );
}
