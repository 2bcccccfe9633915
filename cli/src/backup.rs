//! `tidelog backup DIR DEST`: a consistent copy of a database, taken online. With no
//! writer running, this process opens the database as its writer for the copy
//! (`Engine::backup_to`); while another process writes, it copies from the files
//! (`tidelog::checkpoint::backup_from_files`) at the durable point that writer
//! published, holding the writer's log truncation off with a follower's cursor. Either
//! way the copy opens as a normal database ending exactly at that point.

use crate::database::{self, DatabaseDir};
use crate::error::{CliError, Exit};
use crate::output::{say, Progress};
use crate::units::{format_duration, format_rate, format_size};
use std::path::PathBuf;
use std::time::Instant;
use tidelog::checkpoint::BackupReport;
use tidelog::{Engine, Options};

/// Arguments of `backup`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
The copy holds every record up to one durable point and nothing after it, with the
checkpoints covering at most that point, and a BACKUP file naming the point; it opens
(`tidelog dump DEST`, or the library) as a normal database. Appends by another process
go on during the backup and are not slowed. DEST must be new or empty. A copy without
its BACKUP file is incomplete (the backup failed): delete it and run again.

Exit codes: 0 copied; 1 failed (DEST exists as a database, I/O error, ...); 3 the source
holds damaged durable data.

Examples:
  tidelog backup /var/lib/app/log /backups/app-2026-12-03
  tidelog backup /var/lib/app/log /backups/app-$(date +%F) --json")]
pub struct Args {
    /// The database directory.
    dir: PathBuf,
    /// Where to put the copy (a new or empty directory).
    dest: PathBuf,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// Runs `backup`.
pub fn run(args: &Args) -> Result<Exit, CliError> {
    let db = DatabaseDir::existing(&args.dir)?;
    // A destination that cannot take the copy is refused before the database is opened:
    // nothing changes in either.
    tidelog::checkpoint::check_backup_destination(&db.dir, &args.dest)?;
    let options = database::engine_options_for(&db.dir, Options::default().segment_size)?;
    let progress = Progress::spinner(format!("opening {}", db.dir.display()));
    let started = Instant::now();
    let (report, online) = match Engine::open(&db.dir, options) {
        Ok(engine) => {
            progress.finish();
            let bar = Progress::bytes(0, "backup");
            let report = engine.backup_to_reporting(&args.dest, |done, total| {
                bar.total(total);
                bar.set(done);
            });
            bar.finish();
            engine.close()?;
            (report?, false)
        }
        // Another process is the writer: copy from the files beside it.
        Err(tidelog::OpenError::Lease(
            tidelog::lease::LeaseError::Held { .. } | tidelog::lease::LeaseError::LostRace { .. },
        )) => {
            progress.finish();
            let bar = Progress::bytes(0, "backup");
            let report = tidelog::checkpoint::backup_from_files_reporting(
                &db.dir,
                &args.dest,
                |done, total| {
                    bar.total(total);
                    bar.set(done);
                },
            )?;
            bar.finish();
            (report, true)
        }
        Err(err) => return Err(err.into()),
    };
    progress.finish();
    let elapsed = started.elapsed();
    print(args, &report, online, elapsed)?;
    Ok(Exit::Ok)
}

fn print(
    args: &Args,
    report: &BackupReport,
    online: bool,
    elapsed: std::time::Duration,
) -> Result<(), CliError> {
    if args.json {
        say!(
            "{}",
            serde_json::json!({
                "dest": args.dest.display().to_string(),
                "point": report.point.get(),
                "log_starts_at": report.log_starts_at.get(),
                "segments": report.segments,
                "checkpoints": report.checkpoints,
                "bytes": report.bytes,
                "beside_a_writer": online,
                "seconds": elapsed.as_secs_f64(),
            })
        )?;
        return Ok(());
    }
    say!(
        "backup of {} in {}: every record up to global sequence {}{}",
        args.dir.display(),
        args.dest.display(),
        report.point,
        if online {
            " (the durable point the writer, another process, had published)"
        } else {
            ""
        }
    )?;
    say!(
        "  {} segments (log from global sequence {}), {} checkpoints, {} in {} ({})",
        report.segments,
        report.log_starts_at,
        report.checkpoints,
        format_size(report.bytes),
        format_duration(elapsed),
        format_rate(report.bytes, elapsed)
    )?;
    Ok(())
}
