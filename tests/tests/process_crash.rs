//! Process crashes: a child process appends durable records on several lanes (singles and
//! batches) and reports every durable receipt on stdout; the parent SIGKILLs it after a
//! pseudo-random number of receipts, reopens the database and checks it; then the next
//! child continues on the same database. What could go wrong: an acknowledged record lost
//! or altered after a crash, a record that was never appended showing up, a batch cut in
//! half, a gap in the global sequence, or recovery refusing a database a crash left.
//!
//! `TIDELOG_CRASH_POINTS` sets the number of crash points (default 200; try 10000).
//! `kill -9` keeps the page cache, so this proves process crashes only; power loss is
//! covered by the simulated-disk sweeps. SIGKILL at each fdatasync in turn is in
//! `syscall_faults.rs`.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use tidelog_tests::appender::{check, record_ack, Acked};

/// A small deterministic generator, so a failing crash point can be replayed.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[test]
fn every_acknowledged_record_survives_sigkill_at_hundreds_of_crash_points() {
    let points: u64 = std::env::var("TIDELOG_CRASH_POINTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut acked: BTreeMap<u64, Acked> = BTreeMap::new();
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    for round in 0..points {
        let wanted = 1 + next(&mut rng) % 40;
        let mut child = Command::new(env!("CARGO_BIN_EXE_tidelog-crash-appender"))
            .arg(dir.path())
            .arg(round.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn child");
        let stdout = child.stdout.take().expect("child stdout");
        let mut lines = BufReader::new(stdout).lines();
        let mut seen = 0;
        while seen < wanted {
            let Some(Ok(line)) = lines.next() else {
                panic!("round {round}: the child stopped before {wanted} receipts");
            };
            assert!(!line.starts_with("FAILED"), "round {round}: {line}");
            if record_ack(&mut acked, &line, round) {
                seen += 1;
            }
        }
        child.kill().expect("SIGKILL the child");
        // Receipts printed before the kill landed are acknowledged too.
        for line in lines.map_while(Result::ok) {
            record_ack(&mut acked, &line, round);
        }
        child.wait().expect("reap the child");
        check(dir.path(), &acked, round);
    }
    eprintln!(
        "process crash harness: {points} SIGKILL crash points, {} acknowledged records checked",
        acked.len()
    );
}
