//! `tidelog append DIR --lane N`: each line of standard input becomes exactly one record,
//! and gets exactly one receipt, printed (and flushed) once the record is durable, in
//! input order.
//!
//! The command opens a [`Database`]: the writer when it can be, else a follower that
//! forwards to the process that is. Every line carries an idempotency key (`PREFIX:LINE`,
//! the prefix a fresh run id unless `--key-prefix` names one), so when the writer
//! leaves or dies with a line in flight, the line is sent again, to the next writer (this
//! process, if it takes over), and lands once: the writer answers a key it has seen with
//! the receipt it gave it.
//!
//! As the writer, lines are appended without waiting for each sync (the `--sync` policy
//! decides when to sync) and a printer thread prints each receipt once its record is
//! durable; should this process stop being the writer with records not yet durable,
//! the printer sends those lines again by key, in order, before any later line is
//! appended, so the log keeps the input's order. As a follower, each line is a durable
//! forwarded append.
//!
//! SIGINT or SIGTERM stops the reading; what was accepted is made durable, its receipts
//! printed, the database closed (lease released, nothing temporary left) and the command
//! exits 130 or 143. On any failure the command makes durable what it can, prints
//! receipts for exactly what is durable, says what happened on standard error and exits
//! non-zero.

use crate::database;
use crate::error::{CliError, Exit};
use crate::signals;
use crossbeam_channel::{bounded, Receiver, Sender};
use std::hash::{BuildHasher, Hasher};
use std::io::{BufRead, Read, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tidelog::lease::LeaseToken;
use tidelog::Appender as _;
use tidelog::{AppendError, Database, Engine, LaneSeq, Receipt, SyncPolicy, WaitError};

const DEFAULT_SEGMENT_SIZE: u64 = 64 * 1024 * 1024;
/// How long the printer blocks on one durability wait before it looks again (a wait that
/// times out is not an error: the record may be waiting for a later sync).
const RECHECK: Duration = Duration::from_millis(200);
/// Lines read ahead of the appends, and receipts waiting for the printer.
const WINDOW: usize = 4096;
/// How long a line is sent again while no writer answers, in lease TTLs: a writer that
/// died is replaced within one TTL (at once when its process is gone).
const GIVE_UP_TTLS: u32 = 3;
/// Room a key needs after its prefix: `:` and the line number.
const LINE_SUFFIX_BYTES: usize = 1 + 20;

/// Arguments of `append`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Prints, as soon as each record is durable (fdatasync), one line:
  lane=N lane_seq=S global_seq=G
(--json: {\"lane\":N,\"lane_seq\":S,\"global_seq\":G}). A record without a receipt was not
acknowledged. Lines are split on \\n (a trailing \\r is dropped); a line longer than the
largest record (4 MiB, or half a segment if less) stops the command.

Several `append` processes may run on one database at once: one is the writer, the
others forward their lines to it, and when it leaves or dies another takes over. Each
line carries an idempotency key (PREFIX:LINE_NUMBER, stored with the record and shown by
`dump`), so a line whose writer went away mid-append is sent again and still lands
exactly once. With --key-prefix, running the same input again with the same prefix
appends only the lines that are not in the log yet (and prints the receipts of those
that are).

SIGINT (Ctrl-C) or SIGTERM: stops reading, makes durable what was accepted, prints those
receipts, closes the database and exits 130 (SIGINT) or 143 (SIGTERM). A second signal
exits at once.

Exit codes: 0 every line appended and durable; 1 failure (message on standard error);
3 the log is damaged or shorter than its extent record says (nothing was written; see
`tidelog verify` and `tidelog recover`); 4 another process holds the database without
answering; 5 --expect found the lane at another sequence (nothing more was written);
64 bad command line; 130/143 stopped by SIGINT/SIGTERM.

Examples:
  printf 'one\\ntwo\\n' | tidelog append /var/lib/app/log --lane 7
  tail -f events.log | tidelog append /var/lib/app/log --lane 1 --json
  tidelog append /var/lib/app/log --lane 2 --key-prefix import-2026-12-03 < batch.txt
  echo 'debit 10' | tidelog append /var/lib/app/log --lane 3 --expect 41
  tidelog append /tmp/db --lane 1 --segment-size 1MiB < lines.txt")]
pub struct Args {
    /// The database directory (created if missing or empty).
    dir: PathBuf,
    /// The lane to append to.
    #[arg(long, value_name = "N")]
    lane: u32,
    /// Segment size for a new database: bytes or with a unit (64KiB, 64MiB, 1GiB; a
    /// multiple of 512 between 4 KiB and 4 GiB; default 64MiB). An existing database
    /// keeps its own.
    #[arg(long, value_name = "SIZE", value_parser = crate::units::parse_segment_size)]
    segment_size: Option<u64>,
    /// When to fdatasync: `group` (every group commit), `never` (only at the end), N
    /// (every N records) or Nms (every N milliseconds). Receipts wait for durability.
    #[arg(long, value_name = "POLICY", default_value = "group", value_parser = parse_sync)]
    sync: SyncPolicy,
    /// Optimistic concurrency: the lane sequence the lane must be at before the first
    /// record (0 for an empty lane); each later record expects the one before it.
    #[arg(long, value_name = "LANE_SEQ")]
    expect: Option<u64>,
    /// The idempotency keys' prefix: line L gets the key PREFIX:L. Reuse a prefix to
    /// resume an input after a failure without writing any line twice. Default: a new
    /// run id (`append-...`) for every run.
    #[arg(long, value_name = "PREFIX", value_parser = parse_key_prefix)]
    key_prefix: Option<String>,
    /// Print receipts as JSON objects.
    #[arg(long)]
    json: bool,
}

/// Parses `--sync`.
fn parse_sync(text: &str) -> Result<SyncPolicy, String> {
    let positive = |n: &str| n.parse::<u32>().ok().filter(|n| *n > 0);
    match text {
        "group" => Ok(SyncPolicy::EveryGroup),
        "never" => Ok(SyncPolicy::Never),
        ms if ms.ends_with("ms") => positive(ms.trim_end_matches("ms"))
            .map(|n| SyncPolicy::EveryInterval(Duration::from_millis(u64::from(n))))
            .ok_or_else(|| format!("`{ms}` is not a positive number of milliseconds")),
        n => positive(n)
            .map(SyncPolicy::EveryRecords)
            .ok_or_else(|| format!("expected `group`, `never`, N or Nms, not `{n}`")),
    }
}

/// Parses `--key-prefix`: not empty, and short enough for a line number after it.
fn parse_key_prefix(text: &str) -> Result<String, String> {
    let max = tidelog::IDEMPOTENCY_KEY_LEN_MAX - LINE_SUFFIX_BYTES;
    if text.is_empty() {
        return Err("the key prefix must not be empty".to_owned());
    }
    if text.len() > max {
        return Err(format!(
            "the key prefix is {} bytes; at most {max} leave room for the line number",
            text.len()
        ));
    }
    Ok(text.to_owned())
}

/// A prefix no other run uses: the process id, the time and a random number.
fn run_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut random = std::collections::hash_map::RandomState::new().build_hasher();
    random.write_u128(nanos);
    format!(
        "append-{:x}-{:x}-{:08x}",
        std::process::id(),
        nanos,
        random.finish() as u32
    )
}

/// Runs `append`.
pub fn run(args: &Args) -> Result<Exit, CliError> {
    // Caught before the database is opened, so a signal during the open still closes it.
    let signal = signals::catch()?;
    let segment_size = match (database::segment_size(&args.dir)?, args.segment_size) {
        (Some(existing), Some(asked)) if existing != asked => {
            return Err(CliError::SegmentSizeMismatch {
                path: args.dir.clone(),
                existing,
                asked,
            })
        }
        (Some(existing), _) => existing,
        (None, asked) => asked.unwrap_or(DEFAULT_SEGMENT_SIZE),
    };
    let options = database::engine_options(segment_size).sync_policy(args.sync);
    let max = options.max_record_bytes;
    // A stale expectation is refused before the database is opened for writing, so the
    // refusal changes nothing on disk (the writer, if any, still checks it for real).
    if let Some(expected) = args.expect.map(LaneSeq) {
        if let Some(actual) = crate::precheck::lane_head(&args.dir, args.lane.into())
            .filter(|actual| *actual != expected)
        {
            return Err(CliError::Append(tidelog::AppendError::Conflict {
                lane: args.lane.into(),
                expected,
                actual,
            }));
        }
    }
    let give_up = options.lease.ttl * GIVE_UP_TTLS;
    let db =
        Arc::new(Database::open(&args.dir, options).map_err(|e| CliError::opening(&args.dir, e))?);
    let lines = read_lines(max)?;
    let target = Target {
        db: db.clone(),
        lane: args.lane,
        give_up,
    };
    let (items, pending) = bounded(WINDOW);
    let printer = {
        let (target, json) = (target.clone(), args.json);
        std::thread::Builder::new()
            .name("tidelog-receipts".into())
            .spawn(move || print_receipts(&target, &pending, json))
            .map_err(|source| CliError::Io {
                what: "starting the receipt printer for",
                path: args.dir.clone(),
                source,
            })?
    };
    let mut appender = Appender {
        target,
        prefix: args.key_prefix.clone().unwrap_or_else(run_id),
        expected: args.expect.map(LaneSeq),
        items,
        engine: None,
    };
    let mut caught = None;
    let mut failure = None;
    let mut number = 0u64;
    loop {
        if let Ok(sig) = signal.try_recv() {
            caught = Some(sig);
            break;
        }
        crossbeam_channel::select! {
            recv(signal) -> sig => {
                caught = sig.ok();
                break;
            }
            recv(lines) -> line => match line {
                // End of input.
                Err(_) => break,
                Ok(Err(err)) => {
                    failure = Some(err);
                    break;
                }
                Ok(Ok(payload)) => {
                    number += 1;
                    match appender.append(number, payload) {
                        Ok(true) => {}
                        // The printer stopped: its error says why.
                        Ok(false) => break,
                        Err(err) => {
                            failure = Some(err);
                            break;
                        }
                    }
                }
            }
        }
    }
    drop(appender);
    // Make durable what was accepted (or learn that nothing more will be): the printer
    // then acknowledges exactly what is durable. A failed sync is the printer's to
    // handle: it sends again, by key, what did not become durable.
    if let Some(engine) = db.engine() {
        let _ = engine.sync();
    }
    let printed = printer
        .join()
        .unwrap_or(Err(CliError::ThreadPanicked("receipt printer")));
    let closed = match db.close() {
        // Deposed: the lines it held were sent again to the writer that replaced it.
        Err(tidelog::SyncError::Poisoned { cause }) if cause.is_lease_loss() => Ok(()),
        other => other,
    };
    match (failure, printed, closed) {
        (Some(e), ..) | (None, Err(e), _) => Err(e),
        (None, Ok(()), Err(e)) => Err(e.into()),
        (None, Ok(()), Ok(())) => Ok(match caught {
            Some(sig) => {
                eprintln!(
                    "tidelog: {}: stopped after {number} lines, each durable with its receipt printed; the rest of standard input was not read",
                    signals::name(sig)
                );
                Exit::Signal(signals::exit_code(sig))
            }
            None => Exit::Ok,
        }),
    }
}

/// Where lines go: the database, a lane, and how long to keep sending a line while no
/// writer answers.
#[derive(Debug, Clone)]
struct Target {
    db: Arc<Database>,
    lane: u32,
    give_up: Duration,
}

impl Target {
    /// Appends durably through the database (forwarded, or locally when this process is
    /// the writer), sending again under the same key while the writer is gone or
    /// changing: the key makes the line land once however many times it is sent.
    fn append_exactly_once(
        &self,
        key: &[u8],
        expected: Option<LaneSeq>,
        payload: &[u8],
    ) -> Result<Receipt, AppendError> {
        let started = Instant::now();
        let mut pause = Duration::from_millis(1);
        loop {
            match self.db.append_idempotent_expecting(
                self.lane,
                key.to_vec(),
                expected,
                payload.to_vec(),
            ) {
                // No writer took it, it went away unanswered, or it refused while
                // closing: nothing was written, or the key finds what was.
                Err(
                    AppendError::NoWriter { .. }
                    | AppendError::Unanswered { .. }
                    | AppendError::WriterRefused { .. },
                ) if started.elapsed() < self.give_up => {
                    // Back off while a successor recovers and takes the lease.
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(100));
                }
                other => return other,
            }
        }
    }
}

/// What the printer gets, in input order.
enum Item {
    /// A receipt that is already durable (a forwarded or durable append).
    Durable(Receipt),
    /// A record this process's engine has written; printed once durable, sent again by
    /// key if the engine stops before it is.
    Written {
        receipt: Receipt,
        engine: Engine,
        key: Vec<u8>,
        payload: Vec<u8>,
    },
    /// Answered once every item before it is settled.
    Barrier(Sender<()>),
}

/// Appends the lines in order, each with its key.
struct Appender {
    target: Target,
    prefix: String,
    expected: Option<LaneSeq>,
    items: Sender<Item>,
    /// The engine (and its tenure) the last line was written to locally, if the last
    /// line went that way.
    engine: Option<LeaseToken>,
}

impl Appender {
    /// Appends line `number`; `false` when the printer has stopped.
    fn append(&mut self, number: u64, payload: Vec<u8>) -> Result<bool, CliError> {
        let key = format!("{}:{number}", self.prefix).into_bytes();
        if self.expected.is_none() {
            if let Some((engine, tenure)) = self.local_engine() {
                // Anything written under another tenure, or sent through the database,
                // is settled first, so the log keeps the input's order.
                if self.engine != Some(tenure) && !self.settle() {
                    return Ok(false);
                }
                match engine.append_idempotent(self.target.lane, key.clone(), payload.clone()) {
                    Ok(receipt) => {
                        self.engine = Some(tenure);
                        return Ok(self.send(Item::Written {
                            receipt,
                            engine,
                            key,
                            payload,
                        }));
                    }
                    // Deposed: the line goes to the new writer below.
                    Err(AppendError::Poisoned { cause }) if cause.is_lease_loss() => {}
                    Err(err) => return Err(err.into()),
                }
            }
        }
        if self.engine.take().is_some() && !self.settle() {
            return Ok(false);
        }
        let receipt = self
            .target
            .append_exactly_once(&key, self.expected, &payload)?;
        self.expected = self.expected.map(|_| receipt.lane_seq);
        Ok(self.send(Item::Durable(receipt)))
    }

    /// This process's engine and its tenure, when it is the writer.
    fn local_engine(&self) -> Option<(Engine, LeaseToken)> {
        if !self.target.db.is_writer() {
            return None;
        }
        let engine = self.target.db.engine()?;
        let tenure = engine.writer_lease()?.fencing_token();
        Some((engine, tenure))
    }

    /// Waits until the printer has settled every line sent so far; `false` if it stopped.
    fn settle(&self) -> bool {
        let (done, settled) = bounded(1);
        self.send(Item::Barrier(done)) && settled.recv().is_ok()
    }

    fn send(&self, item: Item) -> bool {
        self.items.send(item).is_ok()
    }
}

/// Reads standard input on a thread of its own (so a signal can stop the command while
/// a read blocks): each line, or the error that ends the input.
fn read_lines(max: u32) -> Result<Receiver<Result<Vec<u8>, CliError>>, CliError> {
    let (lines, received) = bounded(WINDOW);
    std::thread::Builder::new()
        .name("tidelog-stdin".into())
        .spawn(move || {
            let stdin = std::io::stdin();
            let mut input = stdin.lock();
            let mut line = Vec::new();
            for number in 1u64.. {
                let next = match next_line(&mut input, max, number, &mut line) {
                    Ok(false) => return,
                    Ok(true) => Ok(line.clone()),
                    Err(err) => Err(err),
                };
                let stop = next.is_err();
                if lines.send(next).is_err() || stop {
                    return;
                }
            }
        })
        .map_err(|source| CliError::Io {
            what: "starting the reader of standard input in",
            path: PathBuf::from("this process"),
            source,
        })?;
    Ok(received)
}

/// Reads the next line (without its line end) of at most `max` bytes; `false` at the end.
fn next_line(
    input: &mut impl BufRead,
    max: u32,
    number: u64,
    line: &mut Vec<u8>,
) -> Result<bool, CliError> {
    line.clear();
    // Read at most one byte more than a record plus its line end, so an endless line
    // costs bounded memory.
    let limit = u64::from(max) + 2;
    let n = input
        .by_ref()
        .take(limit)
        .read_until(b'\n', line)
        .map_err(CliError::Stdin)?;
    if n == 0 {
        return Ok(false);
    }
    if line.last() == Some(&b'\n') {
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
    }
    if line.len() > max as usize {
        return Err(CliError::LineTooLong { line: number, max });
    }
    Ok(true)
}

fn receipt_line(receipt: &Receipt, json: bool) -> String {
    if json {
        serde_json::json!({
            "lane": receipt.lane.get(),
            "lane_seq": receipt.lane_seq.get(),
            "global_seq": receipt.global_seq().get(),
        })
        .to_string()
    } else {
        format!(
            "lane={} lane_seq={} global_seq={}",
            receipt.lane,
            receipt.lane_seq,
            receipt.global_seq()
        )
    }
}

/// Whether `receipt`'s record, written by `engine`, became durable: waits while the
/// engine is healthy; once it has failed, only what it made durable before counts.
fn became_durable(engine: &Engine, receipt: &Receipt) -> bool {
    let marks = engine.watermark_handle();
    loop {
        match marks.wait_for_durable(receipt.point, RECHECK) {
            Ok(_) => return true,
            // Under `--sync never` a record waits for the final sync.
            Err(WaitError::WaitTimeout { .. }) if engine.failure().is_none() => {}
            Err(_) => return engine.watermarks().global.durable_hlc.covers(receipt.point),
        }
    }
}

/// Prints (and flushes) each receipt, in order, once its record is durable; a record the
/// engine could not make durable (it stopped being the writer, or failed) is sent again
/// by key through the database. Returns when every item is settled, or at the first
/// failure (after printing every receipt before it).
fn print_receipts(target: &Target, pending: &Receiver<Item>, json: bool) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    for item in pending {
        let receipt = match item {
            Item::Durable(receipt) => receipt,
            Item::Barrier(done) => {
                let _ = done.send(());
                continue;
            }
            Item::Written {
                receipt,
                engine,
                key,
                payload,
            } => {
                if became_durable(&engine, &receipt) {
                    receipt
                } else {
                    target.append_exactly_once(&key, None, &payload)?
                }
            }
        };
        writeln!(out, "{}", receipt_line(&receipt, json))
            .and_then(|()| out.flush())
            .map_err(CliError::Stdout)?;
    }
    Ok(())
}
