//! `tidelog verify DIR`: a full check of every segment, changing nothing (segments are
//! mapped read-only; no lock is taken, so it also runs beside a writer).

use crate::database::DatabaseDir;
use crate::error::{CliError, Exit};
use crate::output::{say, Progress};
use std::path::PathBuf;
use tidelog::wal::io::RealStorage;
use tidelog::wal::{verify_with_extent_reporting, FindingKind, Verdict, VerifyReport, WalOptions};

/// Arguments of `verify`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Exit codes: 0 clean; 2 the only damage is a torn tail (or the leftover of an interrupted
segment preparation) that opening the database repairs; 3 durable data is corrupt, or the
log is not a valid log (bad header, missing segment, foreign file), or the log is shorter
than its extent record (<dir>/EXTENT) says it was: segments deleted, or wal/ or a segment
replaced by an older copy; the finding names the missing segments and the highest
acknowledged global sequence. Each problem is
reported with its file, offset and what is wrong.

While another process writes the database, a record being written at that moment may show
as a torn tail.

Examples:
  tidelog verify /var/lib/app/log
  tidelog verify /var/lib/app/log --json | jq .findings")]
pub struct Args {
    /// The database directory.
    dir: PathBuf,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// Runs `verify`.
pub fn run(args: &Args) -> Result<Exit, CliError> {
    let db = DatabaseDir::existing(&args.dir)?;
    // A bar with a percentage and a rate on a terminal, moved after each segment checked.
    let progress = Progress::bytes(0, "verifying");
    let report = verify_with_extent_reporting(
        &RealStorage,
        &db.wal_dir(),
        &WalOptions::default(),
        &db.extent_path(),
        &mut |done, total| {
            progress.total(total);
            progress.set(done);
        },
    )
    .map_err(CliError::Verify)?;
    progress.finish();
    let exit = match report.verdict {
        Verdict::Clean => Exit::Ok,
        Verdict::TornTailOnly => Exit::TornTail,
        Verdict::Corrupt => Exit::Corrupt,
    };
    // The exit status is the verdict, whether or not the reader of the text stayed to the end
    // (`tidelog verify DIR | head -1`).
    match print_report(args, &report) {
        Ok(()) | Err(CliError::OutputClosed) => Ok(exit),
        Err(e) => Err(e),
    }
}

/// Prints the verdict and the findings, as text or as one JSON object.
fn print_report(args: &Args, report: &VerifyReport) -> Result<(), CliError> {
    let verdict = match report.verdict {
        Verdict::Clean => "clean",
        Verdict::TornTailOnly => "torn-tail",
        Verdict::Corrupt => "corrupt",
    };
    if args.json {
        let findings: Vec<_> = report
            .findings
            .iter()
            .map(|f| {
                serde_json::json!({
                    "file": f.path.display().to_string(),
                    "offset": f.offset,
                    "kind": kind_name(&f.kind),
                    "problem": describe(&f.kind),
                })
            })
            .collect();
        let value = serde_json::json!({
            "verdict": verdict,
            "segments": report.segments,
            "records": report.frames,
            "last_global_seq": report.last_seq.get(),
            "findings": findings,
        });
        say!("{value}")?;
    } else {
        say!(
            "{verdict}: {} segments, {} records, last global sequence {}",
            report.segments,
            report.frames,
            report.last_seq
        )?;
        for f in &report.findings {
            say!(
                "  {} at offset {}: {}",
                f.path.display(),
                f.offset,
                describe(&f.kind)
            )?;
        }
    }
    Ok(())
}

fn kind_name(kind: &FindingKind) -> &'static str {
    match kind {
        FindingKind::TornTail { .. } => "torn-tail",
        FindingKind::CorruptFrame { .. } => "corrupt-frame",
        FindingKind::BadHeader(_) => "bad-header",
        FindingKind::SegmentGap { .. } => "segment-gap",
        FindingKind::SequenceMismatch { .. } => "sequence-mismatch",
        FindingKind::StaleFencing { .. } => "stale-fencing",
        FindingKind::ForeignFile => "foreign-file",
        FindingKind::InterruptedPreparation => "interrupted-preparation",
        FindingKind::LostRecords { .. } => "lost-records",
        FindingKind::BadExtent { .. } => "bad-extent",
        FindingKind::CutShort { .. } => "cut-short",
        _ => "other",
    }
}

fn describe(kind: &FindingKind) -> String {
    match kind {
        FindingKind::TornTail { bytes, issue } => format!(
            "torn tail: {issue}; opening the database cuts the log here and drops {bytes} bytes that were never durable"
        ),
        FindingKind::CorruptFrame { issue, proof } => format!(
            "corrupt durable data: {issue} (it had been durable: {proof}); restore from a backup, or `tidelog recover --mode tolerate-tail|skip-corrupted` to drop it knowingly"
        ),
        FindingKind::BadHeader(issue) => format!("bad segment header: {issue}"),
        FindingKind::SegmentGap { missing } => {
            format!("segment {missing} is missing before this one")
        }
        FindingKind::SequenceMismatch { expected, found } => format!(
            "segment starts at global sequence {found} but the log continues at {expected}"
        ),
        FindingKind::StaleFencing { token, fenced_by } => format!(
            "written by a fenced writer ({token}, fenced by {fenced_by}); its records are refused"
        ),
        FindingKind::ForeignFile => "not a tidelog segment: move it out of the log folder".into(),
        FindingKind::InterruptedPreparation => {
            "leftover of an interrupted segment preparation; opening the database removes it".into()
        }
        FindingKind::LostRecords { loss } => format!(
            "acknowledged records are gone: {loss}; restore the missing segments (or all of wal/) from a backup, or `tidelog recover --mode accept-loss` to continue without them knowingly"
        ),
        FindingKind::BadExtent { issue } => format!(
            "the extent record is damaged ({issue}): whether segments vanished cannot be told; restore it from a backup, or move it away and open the database to rebuild it"
        ),
        FindingKind::CutShort {
            file_len,
            segment_size,
        } => format!(
            "segment file cut short: {file_len} of its {segment_size} bytes are left, its records up to the cut are readable; unless a lost-records finding says acknowledged records went with the cut, `tidelog recover --mode tolerate-tail` cuts the log there and gives the file its length back"
        ),
        other => format!("{other:?}"),
    }
}
