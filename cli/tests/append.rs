//! `tidelog append` run as a user would. What could go wrong: a receipt printed for a
//! record that is not durable, or only when standard input closes; a failure that exits 0
//! or hides which records were acknowledged; an existing database reopened with another
//! segment size.
mod common;
use common::*;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;

#[test]
fn append_prints_one_receipt_per_line_and_continues_sequences() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let out = tidelog(&["append", s(&db), "--lane", "3"], b"one\r\ntwo\n");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "lane=3 lane_seq=1 global_seq=1\nlane=3 lane_seq=2 global_seq=2\n"
    );
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
    let out = tidelog(&["append", s(&db), "--lane", "4", "--json"], b"three");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let receipt: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        receipt,
        serde_json::json!({"lane": 4, "lane_seq": 1, "global_seq": 3})
    );
    let dump = tidelog(&["dump", s(&db)], b"");
    assert_eq!(payloads(&dump.stdout), ["one", "two", "three"]);
}

#[test]
fn a_receipt_arrives_while_standard_input_is_still_open() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    for sync in ["group", "1", "5ms"] {
        let mut child = spawn(&["append", s(&db), "--lane", "1", "--sync", sync]);
        let mut stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        stdin.write_all(b"hello\n").unwrap();
        stdin.flush().unwrap();
        let mut receipt = String::new();
        stdout.read_line(&mut receipt).unwrap();
        assert!(
            receipt.starts_with("lane=1 lane_seq="),
            "--sync {sync}: {receipt:?}"
        );
        drop(stdin);
        assert!(child.wait().unwrap().success());
    }
}

#[test]
fn with_sync_never_receipts_come_after_the_final_sync() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let out = tidelog(
        &["append", s(&db), "--lane", "2", "--sync", "never"],
        b"a\nb\n",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).lines().count(), 2);
}

#[test]
fn a_stale_expectation_exits_5_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    assert!(tidelog(&["append", s(&db), "--lane", "1"], b"a\n")
        .status
        .success());
    let out = tidelog(&["append", s(&db), "--lane", "1", "--expect", "0"], b"b\n");
    assert_eq!(out.status.code(), Some(5));
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains("conflict on lane 1"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(payloads(&tidelog(&["dump", s(&db)], b"").stdout), ["a"]);
    // With the right expectation, each later line expects the receipt before it.
    let out = tidelog(
        &["append", s(&db), "--lane", "1", "--expect", "1"],
        b"b\nc\n",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "lane=1 lane_seq=2 global_seq=2\nlane=1 lane_seq=3 global_seq=3\n"
    );
}

/// Every entry under `dir` with its modification time and, for a regular file, its bytes.
fn entries(dir: &std::path::Path) -> Vec<(std::path::PathBuf, std::time::SystemTime, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        out.push((
            d.clone(),
            std::fs::metadata(&d).unwrap().modified().unwrap(),
            vec![],
        ));
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                stack.push(path);
            } else {
                let bytes = if meta.is_file() {
                    std::fs::read(&path).unwrap()
                } else {
                    vec![]
                };
                out.push((path, meta.modified().unwrap(), bytes));
            }
        }
    }
    out.sort();
    out
}

/// `append --lane LANE --expect EXPECT` exits 5 naming `message`, and no file of the
/// database changed (bytes, modification time) and none appeared or went.
fn refused_as_stale_changing_nothing(db: &Path, lane: &str, expect: &str, message: &str) {
    let before = entries(db);
    let out = tidelog(
        &["append", s(db), "--lane", lane, "--expect", expect],
        b"stale\n",
    );
    assert_eq!(out.status.code(), Some(5), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains(message), "{}", text(&out.stderr));
    let after = entries(db);
    let changed: Vec<_> = after
        .iter()
        .filter(|entry| !before.contains(entry))
        .map(|(path, _, _)| path)
        .collect();
    assert!(
        changed.is_empty() && before.len() == after.len(),
        "changed: {changed:?}"
    );
}

#[test]
fn a_stale_expectation_on_a_lane_without_records_changes_no_byte_and_no_modification_time() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    assert!(tidelog(&["append", s(&db), "--lane", "1"], b"a\n")
        .status
        .success());
    // Lane 7 has no record in a log never truncated: it is at 0, so expecting 3 is stale.
    refused_as_stale_changing_nothing(&db, "7", "3", "conflict on lane 7");
    // Expecting 0 on that lane is right: it appends.
    let out = tidelog(&["append", s(&db), "--lane", "7", "--expect", "0"], b"c\n");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "lane=7 lane_seq=1 global_seq=2\n");
}

#[test]
fn a_stale_expectation_on_a_lane_whose_records_were_all_truncated_changes_no_byte() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let small = ["--segment-size", "65536"];
    let lane1 = tidelog(
        &[&["append", s(&db), "--lane", "1"][..], &small].concat(),
        b"a\nb\nc\n",
    );
    assert!(lane1.status.success(), "{}", text(&lane1.stderr));
    // Enough of lane 2 to fill the first segment, then a checkpoint that frees it: lane 1
    // keeps no record in the log, only its head (3) in the checkpoint.
    let filler: Vec<u8> = (0..400)
        .flat_map(|i| format!("{i:0>120}\n").into_bytes())
        .collect();
    assert!(tidelog(&["append", s(&db), "--lane", "2"], &filler)
        .status
        .success());
    let checkpoint = tidelog(&["checkpoint", s(&db)], b"");
    assert!(checkpoint.status.success(), "{}", text(&checkpoint.stderr));
    // One segment or two, depending on how the group commits padded lane 2's records.
    let freed = text(&checkpoint.stdout);
    assert!(
        freed.contains("removed ") && !freed.contains("removed 0 "),
        "{freed}"
    );
    let stats = text(&tidelog(&["stats", s(&db)], b"").stdout);
    assert!(
        stats.contains("lane 1: no record left in the log, last lane sequence 3"),
        "{stats}"
    );
    refused_as_stale_changing_nothing(
        &db,
        "1",
        "0",
        "expected it at lane sequence 0 but it is at 3",
    );
    // The right expectation appends after the truncated records.
    let out = tidelog(&["append", s(&db), "--lane", "1", "--expect", "3"], b"d\n");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("lane=1 lane_seq=4 "),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn a_line_longer_than_a_record_stops_after_acknowledging_the_lines_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    // 64 KiB segments take records of up to half a segment.
    let mut input = b"fine\n".to_vec();
    input.extend(vec![b'y'; 40 * 1024]);
    input.extend(b"\nnever\n");
    let out = tidelog(
        &["append", s(&db), "--lane", "1", "--segment-size", "65536"],
        &input,
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout), "lane=1 lane_seq=1 global_seq=1\n");
    assert!(
        text(&out.stderr).contains("line 2 of standard input is longer"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(payloads(&tidelog(&["dump", s(&db)], b"").stdout), ["fine"]);
}

#[test]
fn an_existing_database_keeps_its_segment_size() {
    let dir = tempfile::tempdir().unwrap();
    let db = database(dir.path(), 10);
    let before = segments(&db)
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .collect::<Vec<_>>();
    assert!(before.iter().all(|l| *l == SEGMENT));
    // Enough to rotate several times: every new segment has the database's size.
    let out = tidelog(
        &["append", s(&db), "--lane", "2"],
        lines(11..=2000).as_bytes(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let after: Vec<u64> = segments(&db)
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .collect();
    assert!(after.len() > 3, "{after:?}");
    assert!(after.iter().all(|l| *l == SEGMENT), "{after:?}");
    let out = tidelog(
        &["append", s(&db), "--lane", "2", "--segment-size", "1048576"],
        b"z\n",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("applies only to a new database"));
    assert!(out.stdout.is_empty());
}
