//! `tidelog recover DIR [--mode MODE]`: opens the database with a recovery mode, which
//! repairs what recovery repairs (cuts a torn tail, removes leftovers, and in a tolerant
//! mode drops damaged durable data), reports what it truncated or skipped, and closes.
//! It changes the database, so it needs it to itself: it refuses while another process
//! holds it open (exit 4).

use crate::database::{self, DatabaseDir};
use crate::error::{CliError, Exit};
use crate::output::{say, Progress};
use serde_json::json;
use std::path::PathBuf;
use tidelog::wal::RemovalReason;
use tidelog::{Engine, Options, RecoveryMode, RecoveryReport};

/// How recovery treats damage to durable data (`tidelog::RecoveryMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Refuse: nothing durable is ever dropped; damaged durable data is an error (exit 3).
    #[value(alias = "absolute-consistency")]
    Absolute,
    /// Cut the log at the first damaged durable frame; everything after it is dropped.
    #[value(alias = "tolerate-corrupted-tail")]
    TolerateTail,
    /// Skip damaged regions and keep every valid record after them.
    SkipCorrupted,
    /// As skip-corrupted, and also open a log shorter than its extent record says it was
    /// (segments deleted, wal/ or a segment replaced by an older copy): the lost global
    /// sequences are written into the log as a record on lane 4294967295, and global and
    /// lane sequences continue above everything ever acknowledged.
    AcceptLoss,
}

impl From<Mode> for RecoveryMode {
    fn from(mode: Mode) -> RecoveryMode {
        match mode {
            Mode::Absolute => RecoveryMode::AbsoluteConsistency,
            Mode::TolerateTail => RecoveryMode::TolerateCorruptedTail,
            Mode::SkipCorrupted => RecoveryMode::SkipCorrupted,
            Mode::AcceptLoss => RecoveryMode::AcceptLoss,
        }
    }
}

/// Arguments of `recover`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
A torn tail (what a crash leaves) is cut in every mode: it was never durable. Damage to
data that had been durable is refused by the default mode (exit 3, nothing changed);
`tolerate-tail` and `skip-corrupted` drop it and report exactly what they dropped. A log
recovered with `skip-corrupted` keeps the damaged bytes on disk, and the extent record
(<dir>/EXTENT) remembers that their loss was accepted: the database opens (and `append`
works) in the default mode again; `tidelog dump --skip-corrupted` reads past them.
A log shorter than it was (segments deleted, an older copy restored) is refused by every
mode but `accept-loss`, which records the lost range in the log and never hands out a
sequence that was acknowledged before. The newest segment file cut short (`truncate -s`)
is refused by the default mode; if the extent record shows that nothing acknowledged went
with the cut, `tolerate-tail` (or `skip-corrupted`) cuts the log there and gives the file
its length back, else only `accept-loss` opens it. No mode ever hands out a sequence twice.

Examples:
  tidelog recover /var/lib/app/log
  tidelog verify /var/lib/app/log || tidelog recover /var/lib/app/log --mode skip-corrupted --json
  tidelog recover /var/lib/app/log --mode accept-loss")]
pub struct Args {
    /// The database directory.
    dir: PathBuf,
    /// What to do with damaged durable data.
    #[arg(long, value_enum, default_value_t = Mode::Absolute)]
    mode: Mode,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// Runs `recover`.
pub fn run(args: &Args) -> Result<Exit, CliError> {
    let db = DatabaseDir::existing(&args.dir)?;
    // A log with nothing to repair is reported without taking the writer lease, so the
    // directory stays byte for byte as it was.
    // The read-only check walks the whole log (the long part of a recovery: the open that
    // follows, when there is something to repair, reads it again from the page cache), so
    // its bar shows a percentage and a rate on a terminal.
    let checking = Progress::bytes(0, "checking");
    let clean = crate::precheck::clean_log(&db.dir, &mut |done, total| {
        checking.total(total);
        checking.set(done);
    });
    checking.finish();
    if let Some(clean) = clean {
        let report = RecoveryReport {
            segments: clean.segments,
            frames: clean.frames,
            ..RecoveryReport::default()
        };
        if args.json {
            say!("{}", to_json(&report, clean.last_seq.get()))?;
        } else {
            print_text(&report, clean.last_seq.get())?;
        }
        return Ok(Exit::Ok);
    }
    let options = database::engine_options_for(&db.dir, Options::default().segment_size)?
        .recovery_mode(args.mode.into());
    let progress = Progress::spinner(format!("recovering {}", db.dir.display()));
    let engine = Engine::open(&db.dir, options).map_err(|e| CliError::opening(&db.dir, e))?;
    let report = engine.recovery_report().clone();
    let last = engine.watermarks().global.durable_hlc.global_sequence;
    engine.close()?;
    progress.finish();
    if args.json {
        say!("{}", to_json(&report, last))?;
    } else {
        print_text(&report, last)?;
    }
    Ok(Exit::Ok)
}

fn removal(reason: RemovalReason) -> &'static str {
    match reason {
        RemovalReason::InterruptedPreparation => "interrupted-preparation",
        RemovalReason::AfterCut => "after-cut",
        RemovalReason::TornUnusedHeader => "torn-unused-header",
        RemovalReason::FencedWriter => "fenced-writer",
        RemovalReason::CutShort => "cut-short-restored",
        _ => "other",
    }
}

fn to_json(report: &RecoveryReport, last: u64) -> serde_json::Value {
    json!({
        "clean": report.is_clean(),
        "segments": report.segments,
        "records": report.frames,
        "last_global_seq": last,
        "torn_tail": report.torn_tail.as_ref().map(|t| json!({
            "file": t.path.display().to_string(),
            "offset": t.offset,
            "bytes_dropped": t.bytes_dropped,
            "problem": t.issue.to_string(),
        })),
        "skipped": report.skipped.iter().map(|s| json!({
            "file": s.path.display().to_string(),
            "offset": s.offset,
            "bytes": s.len,
            "first_lost_global_seq": s.first_lost.get(),
            "resumed_at_global_seq": s.resumed_at.map(tidelog::GlobalSeq::get),
            "problem": s.issue.to_string(),
            "durable_proof": s.proof.to_string(),
        })).collect::<Vec<_>>(),
        "refused_segments": report.refused_segments.iter().map(|r| json!({
            "file": r.path.display().to_string(),
            "token": r.token.to_string(),
            "fenced_by": r.fenced_by.to_string(),
        })).collect::<Vec<_>>(),
        "accepted_loss": report.accepted_loss.map(|(first, last)| json!({
            "first_global_seq": first.get(),
            "last_global_seq": last.get(),
        })),
        "removed_files": report.removed_files.iter().map(|f| json!({
            "file": f.path.display().to_string(),
            "reason": removal(f.reason),
        })).collect::<Vec<_>>(),
    })
}

fn print_text(report: &RecoveryReport, last: u64) -> Result<(), CliError> {
    say!(
        "{}: {} segments, {} records, last global sequence {last}",
        if report.is_clean() {
            "clean"
        } else {
            "repaired"
        },
        report.segments,
        report.frames
    )?;
    if let Some(t) = &report.torn_tail {
        say!(
            "  truncated a torn tail in {} at offset {}: {} bytes dropped that were never durable ({})",
            t.path.display(),
            t.offset,
            t.bytes_dropped,
            t.issue
        )?;
    }
    for s in &report.skipped {
        say!(
            "  skipped damaged durable data in {} at offset {}: {} bytes lost from global sequence {}{} ({}; durable: {})",
            s.path.display(),
            s.offset,
            s.len,
            s.first_lost,
            s.resumed_at
                .map_or_else(String::new, |r| format!(", the log resumes at {r}")),
            s.issue,
            s.proof
        )?;
    }
    for r in &report.refused_segments {
        say!(
            "  refused {}: written by a fenced writer ({}, fenced by {})",
            r.path.display(),
            r.token,
            r.fenced_by
        )?;
    }
    for f in &report.removed_files {
        if f.reason == RemovalReason::CutShort {
            say!(
                "  {} was cut short: the log was cut there and the file given its full length back",
                f.path.display()
            )?;
        } else {
            say!("  removed {} ({})", f.path.display(), removal(f.reason))?;
        }
    }
    if let Some((first, last)) = report.accepted_loss {
        say!(
            "  accepted the loss of global sequences {first} to {last}: recorded in the log (lane {}); sequences continue above {last}",
            tidelog::LOSS_LANE
        )?;
    }
    Ok(())
}
