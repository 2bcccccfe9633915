//! `tidelog truncate DIR`: removes the log segments nothing needs any more (wholly below
//! what the newest checkpoint, the appliers, subscribers, followers and holds still
//! read) and says what holds the rest.

use crate::database::{self, DatabaseDir};
use crate::error::{CliError, Exit};
use crate::output::say;
use crate::units::format_size;
use std::path::PathBuf;
use tidelog::Options;

/// Arguments of `truncate`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Only whole segments go, and only those wholly below the lowest point still needed: the
newest checkpoint (recovery starts there; with no checkpoint, nothing can go), every
applier, subscriber and follower (another process reading with `Follower`, its cursor in
followers/) and named holds (a backup in progress). The report names what holds the
rest. It opens the database as its writer, so it needs it to itself: exit 4 while
another process writes (that process's own truncation applies there).

Exit codes: 0 done (even if nothing could go); 1 failed; 3 damaged durable data;
4 another process has the database open for writing.

Examples:
  tidelog truncate /var/lib/app/log
  tidelog truncate /var/lib/app/log --json")]
pub struct Args {
    /// The database directory.
    dir: PathBuf,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// Runs `truncate`.
pub fn run(args: &Args) -> Result<Exit, CliError> {
    let db = DatabaseDir::existing(&args.dir)?;
    let options = database::engine_options_for(&db.dir, Options::default().segment_size)?;
    let segment_size = options.segment_size;
    let (engine, released) = crate::space::open_to_free_space(&db.dir, options)?;
    let before = engine.truncation_status();
    let truncated = engine.truncate_log();
    let after = engine.truncation_status();
    engine.close()?;
    let report = truncated?;
    let reserve = crate::space::ReserveOutcome::settle(&db.dir, segment_size, released)?;
    let freed = before.log_bytes.saturating_sub(after.log_bytes);
    let holding: Vec<String> = after
        .holding_back()
        .iter()
        .map(ToString::to_string)
        .collect();
    if args.json {
        say!(
            "{}",
            serde_json::json!({
                "removed_segments": report.removed.removed.len(),
                "freed_bytes": freed,
                "log_starts_at": report.removed.first_seq.get(),
                "segments": after.segments,
                "log_bytes": after.log_bytes,
                "floor": after.floor.get(),
                "held_by": holding,
                "reserve": reserve.json(),
            })
        )?;
        return Ok(Exit::Ok);
    }
    say!(
        "removed {} segments, freed {}; the log now starts at global sequence {} ({} segments, {})",
        report.removed.removed.len(),
        format_size(freed),
        report.removed.first_seq,
        after.segments,
        format_size(after.log_bytes)
    )?;
    if holding.is_empty() {
        say!("nothing holds the log back beyond the segment being written")?;
    } else {
        say!(
            "what remains is held from global sequence {} by: {}",
            after.floor,
            holding.join(", ")
        )?;
    }
    if let Some(line) = reserve.sentence(&db.dir) {
        say!("{line}")?;
    }
    Ok(Exit::Ok)
}
