//! Every command on a database that another process (a `tidelog append` child with its
//! standard input still open) holds open and writes. What could go wrong: a read-only
//! command takes the lock, blocks or breaks the writer, returns a record the writer never
//! acknowledged or calls a record being written corruption; `recover` gets in; a second
//! `append` writes on its own instead of forwarding to the writer.
mod common;
use common::*;
use std::io::{BufRead, BufReader, Write};
use std::process::ChildStdout;

fn receipt(stdout: &mut BufReader<ChildStdout>) -> String {
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    line
}

fn no_segment_in_preparation(db: &std::path::Path) -> bool {
    std::fs::read_dir(db.join("wal"))
        .unwrap()
        .all(|e| !e.unwrap().file_name().to_string_lossy().ends_with(".tmp"))
}

#[test]
fn read_only_commands_work_recover_is_refused_and_append_forwards_while_another_process_appends() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let mut child = spawn(&["append", s(&db), "--lane", "1", "--segment-size", "65536"]);
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    stdin.write_all(b"first\n").unwrap();
    stdin.flush().unwrap();
    assert_eq!(receipt(&mut stdout), "lane=1 lane_seq=1 global_seq=1\n");

    let out = tidelog(&["dump", s(&db)], b"");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(payloads(&out.stdout), ["first"]);

    let out = tidelog(&["stats", s(&db), "--json"], b"");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stats["records"], 1);
    assert_eq!(stats["lease"]["live"], true, "{stats}");
    assert_eq!(stats["lease"]["generation"], 1);
    // The watermarks' own serde view, field for field.
    let published = tidelog::forward::read_published(&db).unwrap();
    assert_eq!(
        stats["published_watermarks"]["global"],
        serde_json::to_value(published.global).unwrap()
    );
    assert_eq!(
        stats["published_watermarks"]["global"]["durable_hlc"]["global_sequence"],
        1
    );

    // The writer prepares its next segment in the background; a preparation in
    // progress is reported as a leftover, so check once it is done.
    wait_until("the next segment to be prepared", || {
        no_segment_in_preparation(&db)
    });
    let out = tidelog(&["verify", s(&db), "--json"], b"");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["records"], 1);

    let out = tidelog(&["recover", s(&db)], b"");
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("is held by"),
        "{}",
        text(&out.stderr)
    );
    // Times are said for people, not as milliseconds since the epoch.
    let digits = text(&out.stderr)
        .split(|c: char| !c.is_ascii_digit())
        .map(str::len)
        .max()
        .unwrap_or(0);
    assert!(digits < 12, "{}", text(&out.stderr));
    // A second `append` forwards to the writer and gets the writer's receipt.
    let out = tidelog(&["append", s(&db), "--lane", "2"], b"forwarded\n");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "lane=2 lane_seq=1 global_seq=2\n");

    // The writer carries on, unharmed, after the forwarded record.
    stdin.write_all(b"second\n").unwrap();
    stdin.flush().unwrap();
    assert_eq!(receipt(&mut stdout), "lane=1 lane_seq=2 global_seq=3\n");
    let out = tidelog(&["dump", s(&db)], b"");
    assert_eq!(payloads(&out.stdout), ["first", "forwarded", "second"]);
    drop(stdin);
    assert!(child.wait().unwrap().success());
    assert_eq!(receipt(&mut stdout), "", "nothing after the last receipt");
}

#[test]
fn dumps_during_a_burst_of_appends_are_always_a_prefix_of_what_is_acknowledged_at_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let db = database(dir.path(), 1);
    let mut child = spawn(&["append", s(&db), "--lane", "1"]);
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let feeder = std::thread::spawn(move || {
        for chunk in (2..=3000).collect::<Vec<_>>().chunks(100) {
            let text = lines(chunk[0]..=chunk[chunk.len() - 1]);
            stdin.write_all(text.as_bytes()).unwrap();
        }
    });
    assert!(receipt(&mut stdout).starts_with("lane=1 lane_seq=2 "));
    // Keep reading receipts so the child never blocks on a full pipe.
    let receipts = std::thread::spawn(move || 1 + stdout.lines().count());
    let expected: Vec<String> = (1..=3000).map(line).collect();
    let mut longest = 0;
    for _ in 0..8 {
        let out = tidelog(&["dump", s(&db)], b"");
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let got = payloads(&out.stdout);
        assert_eq!(got, expected[..got.len()].to_vec(), "a prefix, in order");
        longest = longest.max(got.len());
    }
    feeder.join().unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(receipts.join().unwrap(), 2999, "one receipt per line");
    let all = tidelog(&["dump", s(&db)], b"");
    assert_eq!(payloads(&all.stdout), expected);
    assert!(longest >= 2);
}
