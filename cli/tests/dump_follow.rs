//! `tidelog dump --follow`, `--limit` and `--since` as a user would run them. What could go
//! wrong: a follower that stops at the end of what is there, misses or repeats a record
//! another process appends, prints a record before it is visible, ignores its limit, or
//! does not stop on Ctrl-C.
mod common;
use common::*;
use std::io::{BufRead, BufReader, Write};
use std::time::{Duration, Instant};

fn read_lines(stdout: &mut impl BufRead, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| {
            let mut line = String::new();
            stdout.read_line(&mut line).unwrap();
            line
        })
        .collect()
}

fn wait_exit(child: &mut std::process::Child) -> Option<i32> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        assert!(Instant::now() < deadline, "did not exit");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn dump_follow_prints_records_another_process_appends_and_stops_at_its_limit() {
    let dir = tempfile::tempdir().unwrap();
    let db = database(dir.path(), 5);
    let mut follow = spawn(&["dump", s(&db), "--follow", "--limit", "9", "--json"]);
    let mut out = BufReader::new(follow.stdout.take().unwrap());
    let first = read_lines(&mut out, 5);
    for (i, l) in first.iter().enumerate() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        assert_eq!(v["payload"], line(i + 1));
    }
    // Another process appends while the follower waits: it prints each record once the
    // writer has made it visible (the receipt says it is durable, hence visible).
    let mut writer = spawn(&["append", s(&db), "--lane", "2"]);
    let mut stdin = writer.stdin.take().unwrap();
    let mut receipts = BufReader::new(writer.stdout.take().unwrap());
    for n in 6..=9 {
        stdin
            .write_all(format!("{}\n", line(n)).as_bytes())
            .unwrap();
        stdin.flush().unwrap();
        assert!(read_lines(&mut receipts, 1)[0].starts_with("lane=2 "));
        let got = read_lines(&mut out, 1);
        let v: serde_json::Value = serde_json::from_str(&got[0]).unwrap();
        assert_eq!(v["payload"], line(n), "{got:?}");
        assert_eq!(v["global_seq"], n);
    }
    assert_eq!(wait_exit(&mut follow), Some(0), "stops after --limit 9");
    assert_eq!(read_lines(&mut out, 1), [""], "nothing after the limit");
    // A follower on lane 2 only, stopped by Ctrl-C.
    let mut lane = spawn(&["dump", s(&db), "--follow", "--lane", "2"]);
    let mut lane_out = BufReader::new(lane.stdout.take().unwrap());
    assert_eq!(
        payloads(read_lines(&mut lane_out, 4).concat().as_bytes()),
        (6..=9).map(line).collect::<Vec<_>>()
    );
    stdin.write_all(b"tenth\n").unwrap();
    stdin.flush().unwrap();
    assert_eq!(
        payloads(read_lines(&mut lane_out, 1).concat().as_bytes()),
        ["tenth"]
    );
    let killed = std::process::Command::new("kill")
        .args(["-INT", &lane.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    assert_eq!(wait_exit(&mut lane), Some(130));
    drop(stdin);
    assert_eq!(wait_exit(&mut writer), Some(0));
}

#[test]
fn since_keeps_records_from_a_time_on_and_limit_caps_a_plain_dump() {
    let dir = tempfile::tempdir().unwrap();
    let db = database(dir.path(), 5);
    let out = tidelog(&["dump", s(&db), "--since", "1d"], b"");
    assert_eq!(payloads(&out.stdout), (1..=5).map(line).collect::<Vec<_>>());
    let future = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        + 60_000)
        .to_string();
    let out = tidelog(&["dump", s(&db), "--since", &future], b"");
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    let out = tidelog(&["dump", s(&db), "--limit", "2"], b"");
    assert_eq!(payloads(&out.stdout), [line(1), line(2)]);
    // Stopping at the limit is not a log that ends there: no loss reported, exit 0.
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
    let out = tidelog(&["dump", s(&db), "--from", "3", "--limit", "1"], b"");
    assert_eq!(payloads(&out.stdout), [line(3)]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = tidelog(&["dump", s(&db), "--since", "yesterday"], b"");
    assert_eq!(out.status.code(), Some(64));
}
