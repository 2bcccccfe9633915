//! The appending child of the process-crash harnesses, and the parent's checks.
//!
//! The child ([`append_until_killed`], run by the `tidelog-crash-appender` binary and by
//! the ignored `crash_child` test) appends on four lanes, singles and batches of three,
//! and prints `ACK <global> <lane> <lane_seq> <payload>` for each record once it is
//! durable. On the first error it prints `FAILED durable=<seq> <error>` on stdout and the
//! error on stderr, and stops: no receipt can follow a failure. The parent records each
//! receipt ([`record_ack`]) and after each crash reopens the database and checks it
//! ([`check`]).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::time::Duration;
use tidelog::{BatchEntry, Engine, GlobalSeq, Options, Receipt};

/// Small segments, so the run rotates often. `TIDELOG_APPENDER_PREPARE=inline` prepares
/// segments on the writer thread instead of a thread per segment (strace counts calls per
/// thread, so that is how a fault reaches the N-th segment's fallocate).
#[must_use]
pub fn options() -> Options {
    let mut options = Options::default()
        .segment_size(64 * 1024)
        .max_record_bytes(4096)
        .max_batch_bytes(16 * 1024);
    if std::env::var("TIDELOG_APPENDER_PREPARE").as_deref() == Ok("inline") {
        options.prepare_segments_in_background = false;
    }
    options
}

/// How a child run ended, when it was not killed.
#[derive(Debug, PartialEq, Eq)]
pub enum ChildEnd {
    /// Appended `limit` records and closed cleanly.
    Finished,
    /// An operation failed; the message is on stdout and stderr.
    Failed,
}

/// Opens `dir` and appends up to `limit` records (`u64::MAX`: until killed), printing a
/// receipt line for each once durable; see the module docs.
pub fn append_until_killed(dir: &Path, round: &str, limit: u64, out: &mut impl Write) -> ChildEnd {
    let engine = match Engine::open(dir, options()) {
        Ok(engine) => engine,
        Err(e) => return fail(out, 0, &format!("opening the database failed: {e}")),
    };
    let mut i = 0u64;
    while i < limit {
        let acked = if i % 5 == 4 {
            append_batch(&engine, round, i)
        } else {
            let payload = format!("r{round}-{i}-s{}", "x".repeat((i % 7 * 40) as usize));
            engine
                .append_durable((i % 4) as u32, payload.clone().into_bytes())
                .map(|receipt| vec![(receipt, payload)])
                .map_err(|e| e.to_string())
        };
        match acked {
            Ok(acked) => {
                for (receipt, payload) in &acked {
                    print_ack(out, receipt, payload);
                }
                i += acked.len() as u64;
            }
            Err(e) => {
                let durable = engine.watermarks().global.durable_hlc.global_sequence;
                return fail(out, durable, &e);
            }
        }
        if out.flush().is_err() {
            return ChildEnd::Failed;
        }
    }
    let durable = engine.watermarks().global.durable_hlc.global_sequence;
    match engine.close() {
        Ok(()) => ChildEnd::Finished,
        Err(e) => fail(out, durable, &format!("closing failed: {e}")),
    }
}

fn append_batch(engine: &Engine, round: &str, i: u64) -> Result<Vec<(Receipt, String)>, String> {
    let payloads: Vec<String> = (0..3).map(|j| format!("r{round}-{i}-b{j}")).collect();
    let entries = payloads
        .iter()
        .enumerate()
        .map(|(j, p)| BatchEntry::new(j as u32, p.clone().into_bytes()))
        .collect();
    let receipts = engine.append_batch(entries).map_err(|e| e.to_string())?;
    let last = receipts.last().map(|r| r.point).unwrap_or_default();
    engine
        .watermark_handle()
        .wait_for_durable(last, Duration::from_secs(60))
        .map_err(|e| {
            // A wait error does not carry the writer's failure; `sync` reports it.
            let cause = engine
                .sync()
                .err()
                .map(|c| c.to_string())
                .unwrap_or_default();
            format!("{e}; {cause}")
        })?;
    Ok(receipts.into_iter().zip(payloads).collect())
}

fn fail(out: &mut impl Write, durable: u64, message: &str) -> ChildEnd {
    let _ = writeln!(out, "FAILED durable={durable} {message}");
    let _ = out.flush();
    eprintln!("tidelog-crash-appender: {message}");
    ChildEnd::Failed
}

/// Prints one receipt line.
pub fn print_ack(out: &mut impl Write, receipt: &Receipt, payload: &str) {
    let (global, lane, lane_seq) = (receipt.global_seq(), receipt.lane, receipt.lane_seq);
    let _ = writeln!(out, "ACK {global} {lane} {lane_seq} {payload}");
}

/// A receipt the child printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acked {
    /// The lane.
    pub lane: u32,
    /// The sequence within the lane.
    pub lane_seq: u64,
    /// The payload, as text.
    pub payload: String,
}

/// Parses a receipt line: `(global, receipt)`.
#[must_use]
pub fn parse(line: &str) -> Option<(u64, Acked)> {
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

/// Records the receipt on `line`, if it is one; returns whether it was.
///
/// # Panics
/// If a global sequence is acknowledged twice.
pub fn record_ack(acked: &mut BTreeMap<u64, Acked>, line: &str, round: u64) -> bool {
    let Some((global, record)) = parse(line) else {
        return false;
    };
    assert!(
        acked.insert(global, record).is_none(),
        "round {round}: global {global} acknowledged twice"
    );
    true
}

/// Reopens the database after a crash and checks it against every receipt so far: each
/// present byte for byte at its sequence, nothing never appended, no gap, no partial
/// batch. Returns the number of records in the log.
///
/// # Panics
/// On any violation: that is the finding.
pub fn check(dir: &Path, acked: &BTreeMap<u64, Acked>, round: u64) -> u64 {
    let engine = Engine::open(dir, options())
        .unwrap_or_else(|e| panic!("round {round}: reopen after the crash failed: {e}"));
    let mut expected_global = 1;
    let mut batches: BTreeMap<(String, String), usize> = BTreeMap::new();
    let records = engine
        .scan_all(GlobalSeq(1))
        .unwrap_or_else(|e| panic!("round {round}: scan failed: {e}"));
    for record in records {
        let global = record.global_seq().get();
        assert_eq!(
            global, expected_global,
            "round {round}: global sequence has a gap"
        );
        expected_global += 1;
        let payload = String::from_utf8(record.payload().to_vec())
            .unwrap_or_else(|_| panic!("round {round}: record {global} is not a child's"));
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
    let close = engine.close();
    assert!(close.is_ok(), "round {round}: close failed: {close:?}");
    last
}
