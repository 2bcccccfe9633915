//! Process crashes: a child process appends durable records on several lanes (singles and
//! batches) and reports every durable receipt on stdout; the parent SIGKILLs it after a
//! pseudo-random number of receipts, reopens the database and checks it; then the next
//! child continues on the same database. What could go wrong: an acknowledged record lost
//! or altered after a crash, a record that was never appended showing up, a batch cut in
//! half, a gap in the global sequence, or recovery refusing a database a crash left.
//!
//! `TIDELOG_CRASH_POINTS` sets the number of crash points (default 200; try 10000).
//! `kill -9` keeps the page cache, so this proves process crashes only; power loss is
//! covered by the simulated-disk sweeps.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use tidelog::{BatchEntry, Engine, GlobalSeq, Options};

const CHILD_ENV: &str = "TIDELOG_CRASH_CHILD_DIR";
const ROUND_ENV: &str = "TIDELOG_CRASH_CHILD_ROUND";

/// The child: appends until killed, printing `ACK <global> <lane> <lane_seq> <payload>`
/// once each record is durable. Only runs when the parent sets the environment.
#[test]
#[ignore = "the crash harness runs this in a child process"]
fn crash_child() {
    let (Some(dir), Some(round)) = (std::env::var_os(CHILD_ENV), std::env::var_os(ROUND_ENV))
    else {
        return;
    };
    let round = round.to_string_lossy().into_owned();
    let engine = Engine::open(&dir, options()).expect("child opens the database");
    let mut out = std::io::stdout().lock();
    for i in 0u64.. {
        if i % 5 == 4 {
            let payloads: Vec<String> = (0..3).map(|j| format!("r{round}-{i}-b{j}")).collect();
            let entries = payloads
                .iter()
                .enumerate()
                .map(|(j, p)| BatchEntry::new(j as u32, p.clone().into_bytes()))
                .collect();
            let receipts = engine.append_batch(entries).expect("batch");
            let last = receipts.last().expect("non-empty").point;
            engine
                .watermark_handle()
                .wait_for_durable(last, std::time::Duration::from_secs(60))
                .expect("durable");
            for (receipt, payload) in receipts.iter().zip(&payloads) {
                print_ack(&mut out, receipt, payload);
            }
        } else {
            let payload = format!("r{round}-{i}-s{}", "x".repeat((i % 7 * 40) as usize));
            let receipt = engine
                .append_durable((i % 4) as u32, payload.clone().into_bytes())
                .expect("append");
            print_ack(&mut out, &receipt, &payload);
        }
        out.flush().expect("flush");
    }
}

/// Small segments, so the run rotates often.
fn options() -> Options {
    Options::default()
        .segment_size(64 * 1024)
        .max_record_bytes(4096)
        .max_batch_bytes(16 * 1024)
}

fn print_ack(out: &mut impl Write, receipt: &tidelog::Receipt, payload: &str) {
    let (global, lane, lane_seq) = (receipt.global_seq(), receipt.lane, receipt.lane_seq);
    writeln!(out, "ACK {global} {lane} {lane_seq} {payload}").expect("stdout");
}

/// Records the receipt on `line`, if it is one; a sequence acknowledged twice fails.
fn record_ack(acked: &mut BTreeMap<u64, Acked>, line: &str, round: u64) -> bool {
    let Some((global, record)) = parse(line) else {
        return false;
    };
    assert!(
        acked.insert(global, record).is_none(),
        "round {round}: global {global} acknowledged twice"
    );
    true
}

/// A small deterministic generator, so a failing crash point can be replayed.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Acked {
    lane: u32,
    lane_seq: u64,
    payload: String,
}

fn parse(line: &str) -> Option<(u64, Acked)> {
    let mut parts = line.strip_prefix("ACK ")?.splitn(4, ' ');
    let global = parts.next()?.parse().ok()?;
    let lane = parts.next()?.parse().ok()?;
    let lane_seq = parts.next()?.parse().ok()?;
    let payload = parts.next()?.to_owned();
    Some((
        global,
        Acked {
            lane,
            lane_seq,
            payload,
        },
    ))
}

#[test]
fn every_acknowledged_record_survives_sigkill_at_hundreds_of_crash_points() {
    let points: u64 = std::env::var("TIDELOG_CRASH_POINTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = std::env::current_exe().expect("test binary");
    let mut acked: BTreeMap<u64, Acked> = BTreeMap::new();
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    for round in 0..points {
        let wanted = 1 + next(&mut rng) % 40;
        let mut child = Command::new(&exe)
            .args([
                "--ignored",
                "--exact",
                "crash_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, dir.path())
            .env(ROUND_ENV, round.to_string())
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

/// Reopens the database after a crash and checks it against every receipt so far.
fn check(dir: &std::path::Path, acked: &BTreeMap<u64, Acked>, round: u64) {
    let engine = Engine::open(dir, options())
        .unwrap_or_else(|e| panic!("round {round}: reopen after SIGKILL failed: {e}"));
    let mut expected_global = 1;
    let mut batches: BTreeMap<(String, String), usize> = BTreeMap::new();
    for record in engine.scan_all(GlobalSeq(1)).expect("scan") {
        let global = record.global_seq().get();
        assert_eq!(
            global, expected_global,
            "round {round}: global sequence has a gap"
        );
        expected_global += 1;
        let payload =
            String::from_utf8(record.payload().to_vec()).expect("a payload some child wrote");
        let mut parts = payload.splitn(3, '-');
        let (Some(r), Some(i), Some(kind)) = (parts.next(), parts.next(), parts.next()) else {
            panic!("round {round}: record {global} was never appended: {payload:?}");
        };
        assert!(
            r.starts_with('r')
                && i.parse::<u64>().is_ok()
                && (kind.starts_with('s') || kind.starts_with('b')),
            "round {round}: record {global} was never appended: {payload:?}"
        );
        if kind.starts_with('b') {
            *batches.entry((r.to_owned(), i.to_owned())).or_default() += 1;
        }
        if let Some(ack) = acked.get(&global) {
            let found = Acked {
                lane: record.lane().get(),
                lane_seq: record.lane_seq().get(),
                payload,
            };
            assert_eq!(
                &found, ack,
                "round {round}: acknowledged record {global} altered"
            );
        }
    }
    let last = expected_global - 1;
    if let Some((&highest, _)) = acked.last_key_value() {
        assert!(
            last >= highest,
            "round {round}: acknowledged record {highest} lost (log ends at {last})"
        );
    }
    for ((r, i), count) in batches {
        assert_eq!(count, 3, "round {round}: batch {r}-{i} is partial");
    }
    engine.close().expect("close");
}
