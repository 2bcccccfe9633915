//! `tidelog dump DIR`: the records in global order, one per line, read straight from the
//! segment files. Strictly read-only: no lock, no mapping, no write; works while another
//! process holds the database open and appends (it prints a snapshot).

use crate::database::Database;
use crate::error::{CliError, Exit};
use crate::output::{escape, put_bytes, Progress};
use std::io::{BufWriter, Write};
use std::path::PathBuf;
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

Examples:
  tidelog dump /var/lib/app/log
  tidelog dump /var/lib/app/log --lane 7 --from 100 --json
  tidelog dump /var/lib/app/log --from 5000 | head")]
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
    #[arg(long)]
    skip_corrupted: bool,
}

/// Runs `dump`.
pub fn run(args: &Args) -> Result<Exit, CliError> {
    let db = Database::existing(&args.dir)?;
    let extent = db.extent()?;
    let accepted = extent
        .as_ref()
        .map(|e| e.accepted_losses.clone())
        .unwrap_or_default();
    let snapshot = LogSnapshot::take(&db.wal_dir())?.accepting(&accepted);
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
        let wanted = match args.lane {
            Some(lane) => record.lane.get() == lane && record.lane_seq.get() >= args.from,
            None => true,
        };
        if wanted && !print(&mut out, &record, args.json)? {
            return Ok(Exit::Ok); // the reader went away (`| head`)
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
