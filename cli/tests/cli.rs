//! The `tidelog` binary run as a user would. What could go wrong: a receipt printed for
//! a record that is not durable, a failure that exits 0, verify changing the database.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn tidelog(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tidelog"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run tidelog");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin)
        .expect("write stdin");
    child.wait_with_output().expect("wait")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn append_prints_one_receipt_per_line_and_continues_sequences() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let db = db.to_str().unwrap();
    let out = tidelog(&["append", db, "--lane", "3"], b"one\ntwo\n");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "lane=3 lane_seq=1 global_seq=1\nlane=3 lane_seq=2 global_seq=2\n"
    );
    let out = tidelog(&["append", db, "--lane", "4", "--json"], b"three\n");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let receipt: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        receipt,
        serde_json::json!({"lane": 4, "lane_seq": 1, "global_seq": 3})
    );
}

#[test]
fn a_stale_expectation_exits_non_zero_and_prints_no_receipt() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().to_str().unwrap();
    assert!(tidelog(&["append", db, "--lane", "1"], b"a\n")
        .status
        .success());
    let out = tidelog(&["append", db, "--lane", "1", "--expect", "0"], b"b\n");
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains("conflict on lane 1"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn verify_reports_a_clean_database_and_refuses_a_foreign_directory() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let db = db.to_str().unwrap();
    assert!(tidelog(&["append", db, "--lane", "1"], b"x\ny\n")
        .status
        .success());
    let out = tidelog(&["verify", db, "--json"], b"");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["verdict"], "clean");
    assert_eq!(report["records"], 2);
    let foreign = tidelog(&["verify", dir.path().to_str().unwrap()], b"");
    assert_eq!(foreign.status.code(), Some(1));
    assert!(text(&foreign.stderr).contains("not a tidelog database"));
}

#[test]
fn bad_arguments_exit_with_a_usage_error() {
    let out = tidelog(
        &["append", "/tmp/x", "--lane", "1", "--sync", "sometimes"],
        b"",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("--sync must be"));
    let out = tidelog(&["append", "/tmp/x"], b"");
    assert_eq!(out.status.code(), Some(2), "clap's usage error");
}

#[test]
fn the_demo_runs_on_a_temporary_directory_and_summarizes() {
    let out = tidelog(&["demo", "--threads", "2", "--records", "50"], b"");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("100 durable, 100 read back"), "{stdout}");
    assert!(stdout.contains("records per fsync"), "{stdout}");
}
