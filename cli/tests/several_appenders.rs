//! Two and three `tidelog append` processes on one database while the writer among them
//! finishes first or is killed (SIGKILL). What could go wrong: a follower fails
//! mid-stream when its writer leaves, a line forwarded just as the writer leaves is lost
//! or written twice, a record is written without its receipt, a receipt points at
//! another line, the survivors' lines land out of their input order, or a second
//! process exits 4 while the first is still opening the database.
mod common;
use common::*;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// One `tidelog append` child: its standard input, and its receipts as they arrive.
struct Appender {
    child: Child,
    stdin: Option<ChildStdin>,
    receipts: mpsc::Receiver<String>,
    got: Vec<String>,
    lane: u32,
}

impl Appender {
    fn start(db: &std::path::Path, lane: u32) -> Appender {
        let mut child = spawn(&[
            "append",
            s(db),
            "--lane",
            &lane.to_string(),
            "--segment-size",
            "64KiB",
        ]);
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let (tx, receipts) = mpsc::channel();
        std::thread::spawn(move || {
            for line in stdout.lines() {
                if tx.send(line.unwrap()).is_err() {
                    return;
                }
            }
        });
        Appender {
            child,
            stdin,
            receipts,
            got: Vec::new(),
            lane,
        }
    }

    /// The payload of this process's line `n`.
    fn line(&self, n: usize) -> String {
        format!("lane{}-line{n:05}", self.lane)
    }

    /// Writes lines `range` on a thread of its own (so a full pipe never blocks the
    /// test), closing standard input after them when `close`.
    fn feed(&mut self, range: std::ops::RangeInclusive<usize>, close: bool) {
        let text: String = range.map(|n| self.line(n) + "\n").collect();
        let mut stdin = self.stdin.take().unwrap();
        let keep = std::thread::spawn(move || {
            stdin.write_all(text.as_bytes()).unwrap();
            stdin.flush().unwrap();
            stdin
        });
        if !close {
            self.stdin = Some(keep.join().unwrap());
        }
    }

    /// Waits (bounded) until at least `n` receipts have arrived.
    fn wait_for_receipts(&mut self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.got.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.receipts.recv_timeout(left) {
                Ok(receipt) => self.got.push(receipt),
                Err(e) => panic!(
                    "lane {}: {} receipts of {n} ({e})",
                    self.lane,
                    self.got.len()
                ),
            }
        }
    }

    /// Waits (bounded) for the process to end; returns its exit code and every receipt.
    fn finish(mut self) -> (Option<i32>, Vec<String>, String) {
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "lane {} did not finish",
                self.lane
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        // The reader thread ends with standard output.
        while let Ok(receipt) = self.receipts.recv_timeout(Duration::from_secs(10)) {
            self.got.push(receipt);
        }
        let mut stderr = String::new();
        std::io::Read::read_to_string(self.child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
        (status.code(), self.got, stderr)
    }
}

/// The log as `dump --json` shows it: global sequence -> (lane, lane sequence, payload).
fn log(db: &std::path::Path) -> HashMap<u64, (u64, u64, String)> {
    let out = tidelog(&["dump", s(db), "--json"], b"");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    text(&out.stdout)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["global_seq"].as_u64().unwrap(),
                (
                    v["lane"].as_u64().unwrap(),
                    v["lane_seq"].as_u64().unwrap(),
                    v["payload"].as_str().unwrap().to_owned(),
                ),
            )
        })
        .collect()
}

/// Checks that receipt `i` of a process names the record holding its line `i + 1`, and
/// that each of its lines is in the log once: `complete` when every line of `count`
/// must be there, else (a killed process) only those with a receipt.
fn check(
    log: &HashMap<u64, (u64, u64, String)>,
    lane: u32,
    count: usize,
    receipts: &[String],
    complete: bool,
) {
    let line = |n: usize| format!("lane{lane}-line{n:05}");
    if complete {
        assert_eq!(receipts.len(), count, "lane {lane}: one receipt per line");
    }
    for (i, receipt) in receipts.iter().enumerate() {
        let fields: Vec<u64> = receipt
            .split(' ')
            .map(|f| f.split_once('=').unwrap().1.parse().unwrap())
            .collect();
        let record = log
            .get(&fields[2])
            .unwrap_or_else(|| panic!("lane {lane}: receipt {receipt} is not in the log"));
        assert_eq!(
            record,
            &(u64::from(lane), fields[1], line(i + 1)),
            "lane {lane}: receipt {i} names another record"
        );
    }
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (_, _, payload) in log.values() {
        *seen.entry(payload.as_str()).or_default() += 1;
    }
    let must = if complete { count } else { receipts.len() };
    for n in 1..=count {
        let times = seen.get(line(n).as_str()).copied().unwrap_or(0);
        if n <= must {
            assert_eq!(
                times, 1,
                "lane {lane}: line {n} is in the log {times} times"
            );
        } else {
            assert!(
                times <= 1,
                "lane {lane}: line {n} is in the log {times} times"
            );
        }
    }
    // The lane's records are its lines in input order.
    let mut ours: Vec<(u64, &String)> = log
        .values()
        .filter(|(l, _, _)| *l == u64::from(lane))
        .map(|(_, seq, payload)| (*seq, payload))
        .collect();
    ours.sort();
    for (i, (seq, payload)) in ours.iter().enumerate() {
        assert_eq!(
            *seq,
            i as u64 + 1,
            "lane {lane}: lane sequences are contiguous"
        );
        assert_eq!(**payload, line(i + 1), "lane {lane}: in input order");
    }
}

/// `followers` processes forward lines while the writer (started first) leaves, by
/// finishing its input or by SIGKILL; every line of every survivor lands exactly once.
fn writer_leaves(followers: u32, kill: bool) {
    const LINES: usize = 1500;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let mut writer = Appender::start(&db, 1);
    writer.feed(1..=1, false);
    writer.wait_for_receipts(1);
    let mut others: Vec<Appender> = (0..followers)
        .map(|i| Appender::start(&db, 2 + i))
        .collect();
    for other in &mut others {
        other.feed(1..=LINES / 2, false);
    }
    // The writer carries on while the followers forward to it...
    writer.feed(2..=LINES, false);
    for other in &mut others {
        other.wait_for_receipts(50);
    }
    // ...and leaves with their lines in flight.
    let (code, receipts) = if kill {
        writer.child.kill().unwrap();
        let (code, receipts, _) = writer.finish();
        (code, receipts)
    } else {
        let (code, receipts, stderr) = writer.finish();
        assert_eq!(code, Some(0), "{stderr}");
        (code, receipts)
    };
    // The rest of the followers' input comes after the writer has gone.
    for other in &mut others {
        other.feed(LINES / 2 + 1..=LINES, true);
    }
    let mut results = Vec::new();
    for other in others {
        let lane = other.lane;
        let (code, receipts, stderr) = other.finish();
        assert_eq!(code, Some(0), "lane {lane}: {stderr}");
        results.push((lane, receipts));
    }
    let log = log(&db);
    check(&log, 1, LINES, &receipts, !kill);
    if kill {
        assert_eq!(code, None, "killed by a signal");
    }
    for (lane, receipts) in &results {
        check(&log, *lane, LINES, receipts, true);
    }
    // Global sequences are contiguous: nothing was lost in between.
    let mut seqs: Vec<u64> = log.keys().copied().collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
    let out = tidelog(&["verify", s(&db)], b"");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
}

#[test]
fn a_follower_takes_over_when_the_writer_finishes_first_and_every_line_lands_once() {
    writer_leaves(1, false);
}

#[test]
fn two_followers_carry_on_when_the_writer_finishes_first_and_every_line_lands_once() {
    writer_leaves(2, false);
}

#[test]
fn a_follower_takes_over_when_the_writer_is_killed_and_every_line_lands_once() {
    writer_leaves(1, true);
}

#[test]
fn two_followers_carry_on_when_the_writer_is_killed_and_every_line_lands_once() {
    writer_leaves(2, true);
}

#[test]
fn appenders_started_together_on_a_new_database_all_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let mut all: Vec<Appender> = (1..=3).map(|lane| Appender::start(&db, lane)).collect();
    for appender in &mut all {
        appender.feed(1..=20, true);
    }
    let mut results = Vec::new();
    for appender in all {
        let lane = appender.lane;
        let (code, receipts, stderr) = appender.finish();
        assert_eq!(code, Some(0), "lane {lane}: {stderr}");
        results.push((lane, receipts));
    }
    let log = log(&db);
    for (lane, receipts) in &results {
        check(&log, *lane, 20, receipts, true);
    }
}

#[test]
fn the_same_key_prefix_run_again_appends_only_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let first = tidelog(
        &["append", s(&db), "--lane", "1", "--key-prefix", "import"],
        b"a\nb\n",
    );
    assert_eq!(first.status.code(), Some(0), "{}", text(&first.stderr));
    let again = tidelog(
        &["append", s(&db), "--lane", "1", "--key-prefix", "import"],
        b"a\nb\nc\n",
    );
    assert_eq!(again.status.code(), Some(0), "{}", text(&again.stderr));
    assert_eq!(
        text(&again.stdout),
        format!("{}lane=1 lane_seq=3 global_seq=3\n", text(&first.stdout)),
        "the receipts of the lines already there, then the new one"
    );
    assert_eq!(
        payloads(&tidelog(&["dump", s(&db)], b"").stdout),
        ["a", "b", "c"]
    );
    let dump = text(&tidelog(&["dump", s(&db)], b"").stdout);
    assert!(dump.contains("key=import:3 "), "{dump}");
}
