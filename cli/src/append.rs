//! `tidelog append DIR --lane N`: each line of standard input becomes a record; a receipt
//! line is printed (and flushed) for a record only once it is durable, in order. On any
//! failure the command makes durable what it can, prints receipts for exactly what is
//! durable, says what happened on standard error and exits non-zero.

use crate::database;
use crate::error::{CliError, Exit};
use std::io::{BufRead, Read, Write};
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;
use tidelog::{Engine, Follower, LaneSeq, Receipt, SyncPolicy, WaitError};

const DEFAULT_SEGMENT_SIZE: u64 = 64 * 1024 * 1024;
/// How long the printer blocks on one durability wait before it waits again (a wait that
/// times out is not an error: the record may be waiting for a later sync).
const RECHECK: Duration = Duration::from_secs(1);

/// Arguments of `append`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Prints, as soon as each record is durable (fdatasync), one line:
  lane=N lane_seq=S global_seq=G
(--json: {\"lane\":N,\"lane_seq\":S,\"global_seq\":G}). A record without a receipt was not
acknowledged. Lines are split on \\n (a trailing \\r is dropped); a line longer than the
largest record (4 MiB, or half a segment if less) stops the command.

Exit codes: 0 every line appended and durable; 1 failure (message on standard error);
4 another process has the database open for writing; 5 --expect found the lane at another
sequence (nothing more was written).

Examples:
  printf 'one\\ntwo\\n' | tidelog append /var/lib/app/log --lane 7
  tail -f events.log | tidelog append /var/lib/app/log --lane 1 --json
  echo 'debit 10' | tidelog append /var/lib/app/log --lane 3 --expect 41")]
pub struct Args {
    /// The database directory (created if missing or empty).
    dir: PathBuf,
    /// The lane to append to.
    #[arg(long, value_name = "N")]
    lane: u32,
    /// Segment size in bytes, for a new database (default 64 MiB; an existing database
    /// keeps its own).
    #[arg(long, value_name = "BYTES")]
    segment_size: Option<u64>,
    /// When to fdatasync: `group` (every group commit), `never` (only at the end), N
    /// (every N records) or Nms (every N milliseconds). Receipts wait for durability.
    #[arg(long, value_name = "POLICY", default_value = "group", value_parser = parse_sync)]
    sync: SyncPolicy,
    /// Optimistic concurrency: the lane sequence the lane must be at before the first
    /// record (0 for an empty lane); each later record expects the one before it.
    #[arg(long, value_name = "LANE_SEQ")]
    expect: Option<u64>,
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

/// Runs `append`.
pub fn run(args: &Args) -> Result<Exit, CliError> {
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
    let engine = match Engine::open(&args.dir, options) {
        Ok(engine) => engine,
        // Another process is the writer: forward to it.
        Err(tidelog::OpenError::Lease(tidelog::lease::LeaseError::Held { .. })) => {
            let follower = Follower::connect(&args.dir)?;
            forward_lines(&follower, args, max)?;
            return Ok(Exit::Ok);
        }
        Err(err) => return Err(err.into()),
    };
    let (receipts, pending) = mpsc::channel();
    let printer = {
        let engine = engine.clone();
        let json = args.json;
        std::thread::Builder::new()
            .name("tidelog-receipts".into())
            .spawn(move || print_receipts(&engine, &pending, json))
            .map_err(|source| CliError::Io {
                what: "starting the receipt printer for",
                path: args.dir.clone(),
                source,
            })?
    };
    let failure = append_lines(&engine, args, max, &receipts).err();
    drop(receipts);
    // Make durable what was accepted (or learn that nothing more will be): the printer
    // then acknowledges exactly what is durable.
    let synced = engine.sync();
    let printed = printer
        .join()
        .unwrap_or(Err(CliError::ThreadPanicked("receipt printer")));
    let closed = engine.close();
    match (failure, printed, synced, closed) {
        (Some(e), ..) | (None, Err(e), ..) => Err(e),
        (None, Ok(()), Err(e), _) | (None, Ok(()), Ok(_), Err(e)) => Err(e.into()),
        (None, Ok(()), Ok(_), Ok(())) => Ok(Exit::Ok),
    }
}

/// Reads the next line (without its line end) of at most `max` bytes; `None` at the end.
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

/// Forwards every line to the writer another process runs, printing each receipt as the
/// writer answers it: forwarded appends are answered only once durable.
fn forward_lines(follower: &Follower, args: &Args, max: u32) -> Result<(), CliError> {
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let mut out = std::io::stdout().lock();
    let mut expected = args.expect.map(LaneSeq);
    let mut line = Vec::new();
    for number in 1u64.. {
        if !next_line(&mut input, max, number, &mut line)? {
            break;
        }
        let payload = line.clone();
        let receipt = match expected {
            Some(lane_seq) => follower.append_expecting(args.lane, lane_seq, payload),
            None => follower.append_durable(args.lane, payload),
        }?;
        expected = expected.map(|_| receipt.lane_seq);
        writeln!(out, "{}", receipt_line(&receipt, args.json))
            .and_then(|()| out.flush())
            .map_err(CliError::Stdout)?;
    }
    Ok(())
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

/// Appends every line of standard input and hands each receipt to the printer. Stops at
/// the first failure, or when the printer has stopped (it can no longer acknowledge).
fn append_lines(
    engine: &Engine,
    args: &Args,
    max: u32,
    receipts: &mpsc::Sender<Receipt>,
) -> Result<(), CliError> {
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let mut expected = args.expect.map(LaneSeq);
    let mut line = Vec::new();
    for number in 1u64.. {
        if !next_line(&mut input, max, number, &mut line)? {
            return Ok(());
        }
        let payload = line.clone();
        let receipt = match expected {
            Some(lane_seq) => engine.append_expecting(args.lane, lane_seq, payload),
            None => engine.append(args.lane, payload),
        }?;
        expected = expected.map(|_| receipt.lane_seq);
        if receipts.send(receipt).is_err() {
            // The printer stopped: its error says why.
            return Ok(());
        }
    }
    Ok(())
}

/// Prints (and flushes) each receipt, in order, once its record is durable. Returns when
/// every receipt is printed, or when the writer is poisoned (after printing those that
/// were durable before the failure: the rest never will be).
fn print_receipts(
    engine: &Engine,
    pending: &mpsc::Receiver<Receipt>,
    json: bool,
) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    let marks = engine.watermark_handle();
    for receipt in pending {
        loop {
            match marks.wait_for_durable(receipt.point, RECHECK) {
                Ok(_) => break,
                // Under `--sync never` a record waits for the final sync.
                Err(WaitError::WaitTimeout { .. }) => continue,
                Err(_) => {
                    if engine.watermarks().global.durable_hlc.covers(receipt.point) {
                        break;
                    }
                    return Ok(());
                }
            }
        }
        writeln!(out, "{}", receipt_line(&receipt, json))
            .and_then(|()| out.flush())
            .map_err(CliError::Stdout)?;
    }
    Ok(())
}
