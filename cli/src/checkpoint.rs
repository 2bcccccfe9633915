//! `tidelog checkpoint DIR`: records that the records up to a point are consumed (their
//! effect kept elsewhere, or in a state file handed to the checkpoint), so that log
//! truncation may remove the segments below it. From the shell this is how a full disk is
//! made usable again without deleting files by hand.

use crate::database::{self, DatabaseDir};
use crate::error::{CliError, Exit};
use crate::output::say;
use crate::units::format_size;
use std::path::PathBuf;
use tidelog::{Engine, GlobalSeq, Options};

/// Arguments of `checkpoint`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
A checkpoint says: the state built from the records up to this point is kept elsewhere
(or in --state FILE, stored in the checkpoint and handed back by recovery), so the log
before it is no longer needed to rebuild it. The point must be durable and still in the
log; it defaults to the last durable record. The segments wholly below the point (and
below every applier, follower and hold) are then removed, as the engine does after every
checkpoint, and the report says what was freed and what holds the rest; --keep-log
leaves them for a later `tidelog truncate`. Once removed, `dump` starts later and
`append --key-prefix` no longer recognises the keys of removed lines.

It opens the database as its writer, so it needs it to itself: exit 4 while another
process writes.

Exit codes: 0 done; 1 failed (the point is not in the log, the state file cannot be
read); 3 damaged durable data; 4 another process has the database open for writing.

Examples:
  tidelog checkpoint /var/lib/app/log
  tidelog checkpoint /var/lib/app/log --at 120000 --state app-state.bin
  tidelog checkpoint /var/lib/app/log --json")]
pub struct Args {
    /// The database directory.
    dir: PathBuf,
    /// The global sequence the checkpoint covers (default: the last durable record).
    #[arg(long, value_name = "GLOBAL_SEQ", value_parser = clap::value_parser!(u64).range(1..))]
    at: Option<u64>,
    /// A file whose bytes are stored as the checkpoint's state (default: empty).
    #[arg(long, value_name = "FILE")]
    state: Option<PathBuf>,
    /// Keep the segments below the point (a later `tidelog truncate` removes them).
    #[arg(long)]
    keep_log: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// Runs `checkpoint`.
pub fn run(args: &Args) -> Result<Exit, CliError> {
    let db = DatabaseDir::existing(&args.dir)?;
    // Read the state before opening: a missing file changes nothing.
    let state = match &args.state {
        Some(path) => std::fs::read(path).map_err(|source| CliError::Io {
            what: "reading the state file",
            path: path.clone(),
            source,
        })?,
        None => Vec::new(),
    };
    // A point past the end of a log nobody writes is refused before the open, which
    // would take the writer lease (a new generation) and rewrite files for nothing.
    if let (Some(asked), Some(clean)) =
        (args.at, crate::precheck::clean_log(&db.dir, &mut |_, _| {}))
    {
        let last = clean.last_seq.get();
        if asked > last {
            let first = (last + 1).saturating_sub(clean.frames).max(1);
            return Err(CliError::PointOutsideLog { asked, first, last });
        }
    }
    let mut options = database::engine_options_for(&db.dir, Options::default().segment_size)?;
    options.checkpoints.auto_truncate = !args.keep_log;
    let segment_size = options.segment_size;
    let (engine, released) = crate::space::open_to_free_space(&db.dir, options)?;
    let outcome = checkpoint_and_truncate(&engine, args, &state);
    engine.close()?;
    let report = outcome?;
    let reserve = crate::space::ReserveOutcome::settle(&db.dir, segment_size, released)?;
    if args.json {
        let mut json = serde_json::json!({
            "point": report.point,
            "checkpoint": report.path.display().to_string(),
            "state_bytes": state.len(),
        });
        if let Some(t) = &report.truncation {
            json["removed_segments"] = t.removed_segments.into();
            json["freed_bytes"] = t.freed_bytes.into();
            json["log_starts_at"] = t.log_starts_at.into();
            json["held_by"] = t.held_by.clone().into();
        }
        json["reserve"] = reserve.json();
        say!("{json}")?;
        return Ok(Exit::Ok);
    }
    say!(
        "checkpoint at global sequence {} ({} of state) in {}",
        report.point,
        format_size(state.len() as u64),
        report.path.display()
    )?;
    match &report.truncation {
        Some(t) => {
            say!(
                "removed {} segments, freed {}; the log now starts at global sequence {}",
                t.removed_segments,
                format_size(t.freed_bytes),
                t.log_starts_at
            )?;
            if !t.held_by.is_empty() {
                say!("what remains is held by: {}", t.held_by.join(", "))?;
            }
        }
        None => say!(
            "the log was kept (--keep-log): `tidelog truncate` frees the segments below the point"
        )?,
    }
    if let Some(line) = reserve.sentence(&db.dir) {
        say!("{line}")?;
    }
    Ok(Exit::Ok)
}

/// What `checkpoint` did.
struct Report {
    point: u64,
    path: PathBuf,
    truncation: Option<Truncation>,
}

struct Truncation {
    removed_segments: usize,
    freed_bytes: u64,
    log_starts_at: u64,
    held_by: Vec<String>,
}

fn checkpoint_and_truncate(engine: &Engine, args: &Args, state: &[u8]) -> Result<Report, CliError> {
    let durable = engine.sync()?;
    let last = durable.global_sequence;
    let first = engine.truncation_status().log_starts_at.get();
    let seq = args.at.unwrap_or(last);
    if seq == 0 || seq > last || seq < first {
        return Err(CliError::PointOutsideLog {
            asked: seq,
            first,
            last,
        });
    }
    let point = engine
        .scan_all(GlobalSeq(seq))
        .map_err(CliError::Read)?
        .next()
        .filter(|record| record.global_seq() == GlobalSeq(seq))
        .map(|record| record.point())
        .ok_or(CliError::PointOutsideLog {
            asked: seq,
            first,
            last,
        })?;
    let before = engine.truncation_status();
    let info = engine.checkpoint(point, state)?;
    let truncation = (!args.keep_log).then(|| {
        let after = engine.truncation_status();
        Truncation {
            removed_segments: before.segments.saturating_sub(after.segments),
            freed_bytes: before.log_bytes.saturating_sub(after.log_bytes),
            log_starts_at: after.log_starts_at.get(),
            held_by: after
                .holding_back()
                .iter()
                .map(ToString::to_string)
                .collect(),
        }
    });
    Ok(Report {
        point: seq,
        path: info.path,
        truncation,
    })
}
