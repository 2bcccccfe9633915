//! Several real processes on one database: one writer, the others forwarding, a writer
//! killed with SIGKILL mid-stream, and a writer paused with SIGSTOP past its lease and
//! woken after its replacement. What could go wrong: two writers, a fork, a forwarded
//! record lost or written twice, sequences with gaps after a hand-off, a woken writer's
//! late stores read back, a live writer's lease taken over because another process died.

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

/// Reads the next `count` lines, each an `ack KEY SEQ`.
fn read_acks(out: &mut BufReader<ChildStdout>, count: usize, into: &mut BTreeMap<String, u64>) {
    for _ in 0..count {
        let line = next_line(out).expect("an ack");
        let mut parts = line.split(' ');
        assert_eq!(parts.next(), Some("ack"), "{line}");
        let key = parts.next().expect("key").to_owned();
        let seq = parts.next().expect("seq").parse().expect("seq number");
        assert!(
            into.insert(key, seq).is_none(),
            "acknowledged twice: {line}"
        );
    }
}

/// Reads `ack KEY SEQ` lines until the stream ends; returns the `role` lines met.
fn acks(out: &mut BufReader<ChildStdout>, into: &mut BTreeMap<String, u64>) -> Vec<String> {
    let mut roles = Vec::new();
    while let Some(line) = next_line(out) {
        if let Some(role) = line.strip_prefix("role ") {
            roles.push(role.to_owned());
            continue;
        }
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
    roles
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
    read_acks(&mut follower_out, 50, &mut acked);
    writer.kill().expect("SIGKILL the writer");
    writer.wait().expect("reap");
    acks(&mut writer_out, &mut acked);
    let roles = acks(&mut follower_out, &mut acked);
    // A killed writer's process is gone: its successor need not fence the log off.
    assert_eq!(roles, ["writer"], "the follower took over without fencing");
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

/// Sends `signal` to the child `pid` (a process this test started).
fn signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{signal} {pid}");
}

#[test]
fn a_writer_paused_past_its_lease_is_replaced_and_on_waking_writes_nothing_that_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let (mut old, mut old_out) = spawn(dir.path(), "old", 3_000, false);
    assert_eq!(next_line(&mut old_out).as_deref(), Some("role writer"));
    let mut acked = BTreeMap::new();
    read_acks(&mut old_out, 30, &mut acked);
    // Paused mid-stream, holding its files, its socket and its liveness file.
    signal(old.id(), "STOP");
    let leases = tidelog::lease::LeaseManager::new(std::sync::Arc::new(
        tidelog::lease::FileBackend::open(dir.path().join("lease")).expect("lease backend"),
    ));
    let lease = leases.current("writer").expect("read").expect("a lease");
    // The lease is defined by time: wait until the backend's clock passes its expiry.
    while leases.now_ms() <= lease.expires_at_ms {
        let left = lease.expires_at_ms + 1 - leases.now_ms();
        std::thread::sleep(std::time::Duration::from_millis(left));
    }

    // A new process becomes the writer without waiting for the paused one, and fences
    // the log off because that process is still there.
    let (mut new, mut new_out) = spawn(dir.path(), "new", 100, true);
    assert_eq!(
        next_line(&mut new_out).as_deref(),
        Some("role writer fenced")
    );
    read_acks(&mut new_out, 100, &mut acked);

    // The old writer wakes: whatever it had in flight is refused or lands in files
    // nobody reads; it finds it is no longer the writer and forwards the rest.
    signal(old.id(), "CONT");
    let roles = acks(&mut old_out, &mut acked);
    assert!(old.wait().unwrap().success(), "the old writer gave up");
    assert_eq!(roles, ["follower"], "the woken writer followed the new one");
    // The paused process is gone now, but the new writer is not: a third process must
    // follow it, not take its lease over.
    let (mut third, mut third_out) = spawn(dir.path(), "third", 10, false);
    assert_eq!(next_line(&mut third_out).as_deref(), Some("role follower"));
    assert!(acks(&mut third_out, &mut acked).is_empty());
    assert!(third.wait().unwrap().success());
    drop(new.stdin.take());
    acks(&mut new_out, &mut acked);
    assert!(new.wait().unwrap().success());
    assert_eq!(acked.len(), 3_110, "every append acknowledged once");
    assert_eq!(check(dir.path(), &acked, &["old", "new", "third"]), 3_110);
}

#[test]
fn two_processes_racing_to_open_a_new_database_make_one_writer_and_one_follower() {
    for round in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        let mut racers: Vec<_> = ["x", "y"]
            .iter()
            .map(|name| spawn(dir.path(), name, 20, true))
            .collect();
        let roles: Vec<String> = racers
            .iter_mut()
            .map(|(_, out)| next_line(out).expect("a role"))
            .collect();
        let writers = roles
            .iter()
            .filter(|r| r.starts_with("role writer"))
            .count();
        assert_eq!(writers, 1, "round {round}: {roles:?}");
        assert!(
            roles.contains(&"role follower".to_owned()),
            "round {round}: {roles:?}"
        );
        // The follower finishes through the writer; then the writer is let go.
        let mut acked = BTreeMap::new();
        let (writer_at, follower_at) = if roles[0].starts_with("role writer") {
            (0, 1)
        } else {
            (1, 0)
        };
        read_acks(&mut racers[follower_at].1, 20, &mut acked);
        read_acks(&mut racers[writer_at].1, 20, &mut acked);
        for (child, out) in &mut racers {
            drop(child.stdin.take());
            acks(out, &mut acked);
            assert!(child.wait().unwrap().success());
        }
        assert_eq!(check(dir.path(), &acked, &["x", "y"]), 40);
    }
}
