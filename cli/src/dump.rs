//! `tidelog dump DIR`: the records in global order, one per line, read straight from the
//! segment files. Strictly read-only: no lock, no mapping, no write; works while another
//! process holds the database open and appends (it prints a snapshot).

use crate::database::DatabaseDir;
use crate::error::{CliError, Exit};
use crate::output::{escape, put_bytes, Progress};
use crate::signals;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::time::Duration;
use tidelog::forward::FollowError;
use tidelog::wal::scan::{LogSnapshot, ScanOptions, ScannedRecord};
use tidelog::GlobalSeq;

/// Arguments of `dump`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Output, one record per line, in global order:
  lane=L lane_seq=S global_seq=G wall_ms=W [key=K] payload=P
where K and P are escaped so a line never breaks: \\\\ \\n \\r \\t, other control
characters as \\u{..}, bytes that are not UTF-8 as \\xNN.
--json: one object per line with lane, lane_seq, global_seq, wall_ms and payload (a UTF-8
string), or payload_base64 when the payload is not UTF-8 (and key / key_base64 when the
record has an idempotency key).

The newest segment is read up to its last complete record: a torn tail or a record being
written right now ends the dump quietly. Damage to durable data is reported on standard
error with its file and offset, after the records before it, and exits 3. So does a log
shorter than its extent record (<dir>/EXTENT) says it was (segments deleted, an older
copy restored): every record still readable is printed, then what is missing, exit 3.

--follow: after the records already there, keeps printing records as the writer (another
process) makes them visible, like `tail -f`; only what the writer published as visible
is printed, so never a record a crash could take back. Stops after --limit records, or
on SIGINT/SIGTERM (exit 130/143), or when standard output is closed (exit 0). Works
with no writer running: it waits for one.

--since keeps records appended at or after a time: a duration ago (90s, 10m, 2h, 1d) or
milliseconds since the epoch (the records' wall_ms).

Examples:
  tidelog dump /var/lib/app/log
  tidelog dump /var/lib/app/log --lane 7 --from 100 --json
  tidelog dump /var/lib/app/log --from 5000 | head
  tidelog dump /var/lib/app/log --follow --since 10m
  tidelog dump /var/lib/app/log --follow --lane 3 --limit 100 --json")]
pub struct Args {
    /// The database directory.
    dir: PathBuf,
    /// Only this lane's records.
    #[arg(long, value_name = "N")]
    lane: Option<u32>,
    /// Start at this sequence: a global sequence, or a lane sequence when --lane is given.
    #[arg(long, value_name = "SEQ", default_value_t = 1)]
    from: u64,
    /// One JSON object per line.
    #[arg(long)]
    json: bool,
    /// Read past damaged durable data (as `recover --mode skip-corrupted` does), report
    /// each skipped region on standard error; still exits 3.
    #[arg(long, conflicts_with = "follow")]
    skip_corrupted: bool,
    /// Keep printing records as they become visible (like `tail -f`), until --limit,
    /// SIGINT or SIGTERM.
    #[arg(long)]
    follow: bool,
    /// Stop after printing this many records.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    limit: Option<u64>,
    /// Only records appended at or after this time: a duration ago (90s, 10m, 2h, 1d) or
    /// milliseconds since the epoch.
    #[arg(long, value_name = "WHEN", value_parser = parse_since)]
    since: Option<u64>,
}

/// Parses `--since` into milliseconds since the epoch.
fn parse_since(text: &str) -> Result<u64, String> {
    let bad = || {
        format!("`{text}` is not a time: write a duration ago (90s, 10m, 2h, 1d) or milliseconds since the epoch")
    };
    if let Ok(ms) = text.parse::<u64>() {
        return Ok(ms);
    }
    let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().map_err(|_| bad())?;
    let unit_ms: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" | "min" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(bad()),
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    Ok(now.saturating_sub(number.saturating_mul(unit_ms)))
}

impl Args {
    /// Whether `record` passes the lane, `--from` and `--since` filters.
    fn wants(&self, record: &ScannedRecord) -> bool {
        let lane = match self.lane {
            Some(lane) => record.lane.get() == lane && record.lane_seq.get() >= self.from,
            None => true,
        };
        lane && self.since.is_none_or(|since| record.wall_ms >= since)
    }
}

/// Runs `dump`.
pub fn run(args: &Args) -> Result<Exit, CliError> {
    let db = DatabaseDir::existing(&args.dir)?;
    if args.follow {
        return follow(args, &db);
    }
    let extent = db.extent()?;
    let accepted = extent
        .as_ref()
        .map(|e| e.accepted_losses.clone())
        .unwrap_or_default();
    let snapshot = LogSnapshot::take_readable(&db.wal_dir())?.accepting(&accepted);
    // Lane sequences are not in global order across lanes: a lane's `--from` filters.
    let global_from = match args.lane {
        Some(_) => GlobalSeq(1),
        None => GlobalSeq(args.from),
    };
    let options = ScanOptions {
        skip_corrupted: args.skip_corrupted,
    };
    let mut records = snapshot.records(global_from, options);
    let progress = Progress::bytes(snapshot.data_bytes(), "dump");
    let mut out = BufWriter::new(std::io::stdout().lock());
    let mut failure = None;
    let mut count = 0u64;
    let mut printed = 0u64;
    // Whether the scan stopped at --limit, before the log's end: then where the log ends
    // is not known from it, and nothing is concluded about records past the limit.
    let mut stopped_at_limit = false;
    while let Some(record) = records.next() {
        let record = match record {
            Ok(record) => record,
            Err(e) => {
                failure = Some(e);
                break;
            }
        };
        count += 1;
        if count.is_multiple_of(1024) {
            progress.set(records.bytes_read());
        }
        if args.wants(&record) {
            if !print(&mut out, &record, args.json)? {
                return Ok(Exit::Ok); // the reader went away (`| head`)
            }
            printed += 1;
            if args.limit == Some(printed) {
                stopped_at_limit = true;
                break;
            }
        }
    }
    progress.set(records.bytes_read());
    progress.finish();
    if let Err(e) = out.flush() {
        return broken_pipe_or(e);
    }
    for region in records.skipped() {
        eprintln!(
            "tidelog: skipped damaged durable data in {} at offset {} ({} bytes, from global sequence {}{}): {} (durable: {})",
            region.path.display(),
            region.offset,
            region.len,
            region.first_lost,
            region
                .resumed_at
                .map_or_else(String::new, |s| format!(", resumed at {s}")),
            region.issue,
            region.proof
        );
    }
    for (first, last) in &accepted {
        eprintln!(
            "tidelog: note: global sequences {first} to {last} were lost and the loss was accepted (tidelog recover); they are passed over"
        );
    }
    for refused in records.refused() {
        eprintln!(
            "tidelog: note: {} was written by a fenced writer ({}, fenced by {}); its records are not part of the log",
            refused.path.display(),
            refused.token,
            refused.fenced_by
        );
    }
    if let Some(e) = failure {
        return Err(e.into());
    }
    if stopped_at_limit {
        // What was asked for was printed; whether the log is whole past it is `verify`'s
        // question (a dump that stops early must not call the unread rest missing).
        return Ok(if records.skipped().is_empty() {
            Exit::Ok
        } else {
            Exit::Corrupt
        });
    }
    // Only a scan from the start reads to the log's end; with --from, a log ending
    // before it is taken to end just there.
    let log_ends_at = records
        .last_seq()
        .unwrap_or(GlobalSeq(global_from.0.saturating_sub(1)));
    if let Some(loss) = db.loss(extent.as_ref(), snapshot.segments(), log_ends_at)? {
        eprintln!(
            "tidelog: acknowledged records are missing from the log: {loss} (extent record {}); restore the missing segments from a backup, or `tidelog recover --mode accept-loss`",
            db.extent_path().display()
        );
        return Ok(Exit::Corrupt);
    }
    if records.skipped().is_empty() {
        Ok(Exit::Ok)
    } else {
        Ok(Exit::Corrupt)
    }
}

/// How long `--follow` waits for the writer before it looks at the signals again.
const FOLLOW_WAIT: Duration = Duration::from_millis(200);
/// Records `--follow` reads at a time.
const FOLLOW_BATCH: usize = 256;

/// `dump --follow`: every visible record from `--from` on, then each one as the writer
/// publishes it, until `--limit`, a signal or a closed output. Reads files only
/// ([`tidelog::forward::read_visible`], [`tidelog::forward::wait_for_visible`]): no
/// lock, no connection to the writer, nothing written.
fn follow(args: &Args, db: &DatabaseDir) -> Result<Exit, CliError> {
    let signal = signals::catch()?;
    let mut out = std::io::stdout().lock();
    let mut next = match args.lane {
        Some(_) => GlobalSeq(1),
        None => GlobalSeq(args.from.max(1)),
    };
    let mut printed = 0u64;
    // Set when the writer published a point the log files do not show yet.
    let mut ahead = false;
    loop {
        if let Ok(sig) = signal.try_recv() {
            return Ok(Exit::Signal(signals::exit_code(sig)));
        }
        let batch = match tidelog::forward::read_visible(&db.dir, next, FOLLOW_BATCH) {
            Ok(batch) => batch,
            // No writer has published yet: wait for one.
            Err(FollowError::Published(_)) => Vec::new(),
            Err(err) => return Err(err.into()),
        };
        if batch.is_empty() {
            if ahead {
                // Published past what the files show (a writer mid-rotation): look again
                // shortly rather than spin on a watermark that is already there.
                std::thread::sleep(FOLLOW_WAIT);
            }
            ahead = match tidelog::forward::wait_for_visible(&db.dir, next, FOLLOW_WAIT) {
                Ok(_) => true,
                Err(FollowError::TimedOut { .. }) => false,
                Err(err) => return Err(err.into()),
            };
            continue;
        }
        ahead = false;
        for record in batch {
            next = record.global_seq.next();
            if !args.wants(&record) {
                continue;
            }
            if !print(&mut out, &record, args.json)? {
                return Ok(Exit::Ok);
            }
            printed += 1;
            if args.limit == Some(printed) {
                return match out.flush() {
                    Ok(()) => Ok(Exit::Ok),
                    Err(e) => broken_pipe_or(e),
                };
            }
        }
        if let Err(e) = out.flush() {
            return broken_pipe_or(e);
        }
    }
}

/// Prints one record; `false` if standard output was closed by its reader.
fn print(out: &mut impl Write, record: &ScannedRecord, json: bool) -> Result<bool, CliError> {
    let written = if json {
        let mut object = serde_json::Map::new();
        object.insert("lane".into(), record.lane.get().into());
        object.insert("lane_seq".into(), record.lane_seq.get().into());
        object.insert("global_seq".into(), record.global_seq.get().into());
        object.insert("wall_ms".into(), record.wall_ms.into());
        if !record.key.is_empty() {
            put_bytes(&mut object, "key", &record.key);
        }
        put_bytes(&mut object, "payload", &record.payload);
        writeln!(out, "{}", serde_json::Value::Object(object))
    } else {
        let key = if record.key.is_empty() {
            String::new()
        } else {
            format!(" key={}", escape(&record.key))
        };
        writeln!(
            out,
            "lane={} lane_seq={} global_seq={} wall_ms={}{key} payload={}",
            record.lane,
            record.lane_seq,
            record.global_seq,
            record.wall_ms,
            escape(&record.payload)
        )
    };
    match written {
        Ok(()) => Ok(true),
        Err(e) => broken_pipe_or(e).map(|_| false),
    }
}

/// A closed pipe ends the output quietly; any other write error is a failure.
fn broken_pipe_or(e: std::io::Error) -> Result<Exit, CliError> {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        Ok(Exit::Ok)
    } else {
        Err(CliError::Stdout(e))
    }
}
