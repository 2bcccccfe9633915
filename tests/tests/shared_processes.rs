//! Several real processes on one database: one writer, the others forwarding, and a
//! writer killed with SIGKILL mid-stream. What could go wrong: two writers, a fork, a
//! forwarded record lost or written twice, sequences with gaps after a hand-off.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use tidelog::{Engine, GlobalSeq, Options};

const APPENDER: &str = env!("CARGO_BIN_EXE_tidelog-shared-appender");

fn spawn(dir: &Path, name: &str, count: u32, hold: bool) -> (Child, BufReader<ChildStdout>) {
    let mut command = Command::new(APPENDER);
    command.arg(dir).arg(name).arg(count.to_string());
    if hold {
        command.arg("--hold");
    }
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn the appender");
    let stdout = BufReader::new(child.stdout.take().expect("stdout"));
    (child, stdout)
}

fn next_line(out: &mut BufReader<ChildStdout>) -> Option<String> {
    let mut line = String::new();
    match out.read_line(&mut line) {
        Ok(0) | Err(_) => None,
        Ok(_) => Some(line.trim_end().to_owned()),
    }
}

/// Reads `ack KEY SEQ` lines until the stream ends.
fn acks(out: &mut BufReader<ChildStdout>, into: &mut BTreeMap<String, u64>) {
    while let Some(line) = next_line(out) {
        let mut parts = line.split(' ');
        if parts.next() == Some("ack") {
            let key = parts.next().expect("key").to_owned();
            let seq = parts.next().expect("seq").parse().expect("seq number");
            assert!(
                into.insert(key, seq).is_none(),
                "acknowledged twice: {line}"
            );
        }
    }
}

/// Reopens the database and checks: contiguous global sequences, every acknowledged key
/// present exactly once at its acknowledged sequence, nothing never appended.
fn check(dir: &Path, acked: &BTreeMap<String, u64>, names: &[&str]) -> usize {
    let engine = Engine::open(dir, Options::default()).expect("reopen");
    let records: Vec<_> = engine.scan_all(GlobalSeq(1)).expect("scan").collect();
    let seqs: Vec<u64> = records
        .iter()
        .map(|r| r.receipt().point.global_sequence)
        .collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>(), "gaps");
    let mut seen = BTreeSet::new();
    for record in &records {
        let payload = String::from_utf8(record.payload().to_vec()).expect("utf-8 payload");
        assert!(
            names.iter().any(|n| payload.starts_with(&format!("{n}-"))),
            "a record nobody appended: {payload}"
        );
        assert!(seen.insert(payload.clone()), "written twice: {payload}");
    }
    let by_payload: BTreeMap<String, u64> = records
        .iter()
        .map(|r| {
            let payload = String::from_utf8(r.payload().to_vec()).expect("utf-8");
            (payload, r.receipt().point.global_sequence)
        })
        .collect();
    for (key, seq) in acked {
        assert_eq!(
            by_payload.get(key),
            Some(seq),
            "acknowledged {key} lost or moved"
        );
    }
    engine.close().expect("close");
    records.len()
}

#[test]
fn three_processes_appending_through_one_writer_share_one_total_order() {
    let dir = tempfile::tempdir().unwrap();
    let (mut writer, mut writer_out) = spawn(dir.path(), "w", 100, true);
    assert_eq!(next_line(&mut writer_out).as_deref(), Some("role writer"));
    let followers: Vec<_> = ["a", "b"]
        .iter()
        .map(|name| spawn(dir.path(), name, 100, false))
        .collect();
    let mut acked = BTreeMap::new();
    for (mut child, mut out) in followers {
        assert_eq!(next_line(&mut out).as_deref(), Some("role follower"));
        acks(&mut out, &mut acked);
        assert!(child.wait().unwrap().success());
    }
    drop(writer.stdin.take()); // let the writer close
    acks(&mut writer_out, &mut acked);
    assert!(writer.wait().unwrap().success());
    assert_eq!(acked.len(), 300);
    assert_eq!(check(dir.path(), &acked, &["w", "a", "b"]), 300);
}

#[test]
fn when_the_writer_is_killed_a_follower_takes_over_and_nothing_acknowledged_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let (mut writer, mut writer_out) = spawn(dir.path(), "w", 1_000_000, true);
    assert_eq!(next_line(&mut writer_out).as_deref(), Some("role writer"));
    let (mut follower, mut follower_out) = spawn(dir.path(), "f", 300, false);
    assert_eq!(
        next_line(&mut follower_out).as_deref(),
        Some("role follower")
    );

    // Let the follower forward some, then kill the writer mid-stream.
    let mut acked = BTreeMap::new();
    for _ in 0..50 {
        let line = next_line(&mut follower_out).expect("follower ack");
        let mut parts = line.split(' ').skip(1);
        let key = parts.next().expect("key").to_owned();
        acked.insert(key, parts.next().expect("seq").parse().expect("seq"));
    }
    writer.kill().expect("SIGKILL the writer");
    writer.wait().expect("reap");
    acks(&mut writer_out, &mut acked);
    acks(&mut follower_out, &mut acked);
    assert!(
        follower.wait().unwrap().success(),
        "the follower did not carry on"
    );
    assert_eq!(
        acked.keys().filter(|k| k.starts_with("f-")).count(),
        300,
        "every forwarded append acknowledged once"
    );
    check(dir.path(), &acked, &["w", "f"]);
}
