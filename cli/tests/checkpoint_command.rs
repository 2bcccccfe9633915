//! `tidelog checkpoint` as a user would run it: how a shell user frees the disk of a log
//! that only grows. What could go wrong: a checkpoint that frees nothing, removes records
//! after its point, or leaves the log unable to take appends; a point outside the log or
//! a running writer that is not refused, or a refusal that changes files.
mod common;
use common::*;

#[test]
fn a_checkpoint_frees_the_segments_below_its_point_and_appends_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let db = database(dir.path(), 3000);
    let before = segments(&db).len();
    assert!(before >= 4, "the test needs several segments: {before}");

    let out = tidelog(&["checkpoint", s(&db), "--json"], b"");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["point"], 3000, "{report}");
    assert!(
        report["removed_segments"].as_u64().unwrap() >= 2,
        "{report}"
    );
    assert!(
        report["freed_bytes"].as_u64().unwrap() >= 2 * SEGMENT,
        "{report}"
    );
    assert!(segments(&db).len() < before);

    // What remains starts where the report says, ends at the point, and is clean.
    let starts = report["log_starts_at"].as_u64().unwrap() as usize;
    assert!(starts > 1 && starts <= 3000, "{report}");
    let got = payloads(&tidelog(&["dump", s(&db)], b"").stdout);
    assert_eq!(got, (starts..=3000).map(line).collect::<Vec<_>>());
    assert_eq!(tidelog(&["verify", s(&db)], b"").status.code(), Some(0));
    // The log goes on after its point, with no sequence reused.
    let out = tidelog(&["append", s(&db), "--lane", "1"], b"after\n");
    assert_eq!(
        text(&out.stdout),
        "lane=1 lane_seq=3001 global_seq=3001\n",
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_checkpoint_with_keep_log_removes_nothing_until_truncate_runs() {
    let dir = tempfile::tempdir().unwrap();
    let db = database(dir.path(), 2000);
    let state = dir.path().join("state.bin");
    std::fs::write(&state, vec![7u8; 5000]).unwrap();
    let before = segments(&db);
    let out = tidelog(
        &[
            "checkpoint",
            s(&db),
            "--at",
            "1500",
            "--state",
            s(&state),
            "--keep-log",
        ],
        b"",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("checkpoint at global sequence 1500"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(segments(&db), before);
    let stats = text(&tidelog(&["stats", s(&db)], b"").stdout);
    assert!(stats.contains("point global 1500"), "{stats}");

    let out = tidelog(&["truncate", s(&db), "--json"], b"");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        report["removed_segments"].as_u64().unwrap() >= 1,
        "{report}"
    );
    let starts = report["log_starts_at"].as_u64().unwrap() as usize;
    assert!(starts <= 1501, "records after the point are gone: {report}");
    let got = payloads(&tidelog(&["dump", s(&db)], b"").stdout);
    assert_eq!(got, (starts..=2000).map(line).collect::<Vec<_>>());
}

#[test]
fn a_checkpoint_outside_the_log_or_of_a_missing_state_file_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = database(dir.path(), 300);
    let before = snapshot(&db);

    let out = tidelog(&["checkpoint", s(&db), "--at", "301"], b"");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("the log holds 1 to 300 durably"),
        "{}",
        text(&out.stderr)
    );
    let out = tidelog(&["checkpoint", s(&db), "--at", "0"], b"");
    assert_eq!(out.status.code(), Some(64), "{}", text(&out.stderr));
    let missing = dir.path().join("no-such-state");
    let out = tidelog(&["checkpoint", s(&db), "--state", s(&missing)], b"");
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("reading the state file"));

    // Each was refused before the database was opened for writing: not even the lease
    // record was rewritten.
    assert_eq!(snapshot(&db), before);
}

#[test]
fn a_checkpoint_beside_a_running_writer_is_refused_with_exit_4() {
    let dir = tempfile::tempdir().unwrap();
    let db = database(dir.path(), 100);
    let mut writer = spawn(&["append", s(&db), "--lane", "2"]);
    wait_until("the writer holds the lease", || {
        text(&tidelog(&["stats", s(&db)], b"").stdout).contains("lease       held by")
    });
    let before = snapshot(&db.join("checkpoints"));
    let out = tidelog(&["checkpoint", s(&db)], b"");
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    assert_eq!(snapshot(&db.join("checkpoints")), before);
    drop(writer.stdin.take());
    assert!(writer.wait().unwrap().success());
}
