//! The `tidelog` command: look inside a database, append to it (from several processes
//! at once, each line exactly once), follow it, check, repair, back up and truncate it,
//! measure the engine, or watch a demo.
//!
//! Exit codes (also in `cli/README.md` and `tidelog --help`): 0 success; 1 the operation
//! failed; 2 `verify` found only a torn tail; 3 durable data is corrupt; 4 another process
//! has the database open for writing; 5 `append --expect` conflict; 64 bad command line;
//! 130/143 stopped cleanly by SIGINT/SIGTERM.

use clap::{Parser, Subcommand};
use error::{CliError, Exit};
use std::process::ExitCode;

mod append;
mod backup;
mod bench;
mod checkpoint;
mod database;
mod demo;
mod dump;
mod error;
mod output;
mod precheck;
mod recover;
mod signals;
mod space;
mod stats;
mod truncate;
mod units;
mod verify;

const EXIT_CODES: &str = "\
Exit codes:
  0   success
  1   the operation failed (the message on standard error says why and what to do)
  2   verify: the only damage is a torn tail that opening the database repairs
  3   durable data is corrupt (verify, dump, stats, recover, backup, truncate, checkpoint)
  4   another process has the database open for writing (recover, truncate, checkpoint), or holds
      it without answering (append)
  5   append --expect: the lane is at another sequence; nothing more was written
  64  bad command line (unknown command or option, bad value)
  130 stopped by SIGINT (Ctrl-C), 143 by SIGTERM (append, dump --follow), cleanly

Read-only commands (dump, stats, verify) take no lock and change nothing: they work while
another process appends. A database is a directory holding TIDELOG, wal/, lease/,
holders/, checkpoints/ and RESERVE (room kept for freeing space on a full file system).";

/// tidelog: an embeddable write-ahead log. This command appends to, reads, checks,
/// repairs and measures tidelog databases.
#[derive(Debug, Parser)]
#[command(name = "tidelog", version, about, after_help = EXIT_CODES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Several threads append durable records across lanes on a temporary directory (or
    /// --dir) while the watermarks are shown moving; ends with a summary.
    #[command(
        after_help = "Examples:\n  tidelog demo\n  tidelog demo --threads 16 --records 10000 --dir /tmp/demo-db"
    )]
    Demo(demo::Args),
    /// Appends standard input, one record per line, to a lane; prints each receipt as
    /// soon as the record is durable.
    Append(append::Args),
    /// Prints the records in global order, one per line (or JSON); read-only.
    Dump(dump::Args),
    /// Checks every segment without changing anything. Exit 0 clean, 2 torn tail only,
    /// 3 corrupted durable data.
    Verify(verify::Args),
    /// Shows what the log holds: sequences, lanes, segments; read-only.
    Stats(stats::Args),
    /// Runs recovery with a recovery mode and reports what it truncated or skipped.
    Recover(recover::Args),
    /// Copies a database consistently, online: while another process appends.
    Backup(backup::Args),
    /// Removes the log segments nothing needs any more; says what holds the rest.
    Truncate(truncate::Args),
    /// Records that the records up to a point are consumed (a checkpoint) and frees the
    /// segments below it (`--keep-log` leaves them for `tidelog truncate`).
    Checkpoint(checkpoint::Args),
    /// Measures the engine on this machine's disk beside the raw write+fdatasync cost.
    Bench(bench::Args),
    /// Prints a shell completion script (bash, zsh, fish, elvish, powershell).
    #[command(after_help = "\
Examples:
  tidelog completions bash > /etc/bash_completion.d/tidelog
  tidelog completions zsh > \"${fpath[1]}/_tidelog\"
  tidelog completions fish > ~/.config/fish/completions/tidelog.fish")]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version print to standard output and succeed; every other
            // parse failure is a usage error (64, not clap's 2, which `verify` uses).
            let _ = e.print();
            return if e.use_stderr() {
                Exit::Usage.into()
            } else {
                Exit::Ok.into()
            };
        }
    };
    let result: Result<Exit, CliError> = match cli.command {
        Command::Demo(args) => demo::run(&args),
        Command::Append(args) => append::run(&args),
        Command::Dump(args) => dump::run(&args),
        Command::Verify(args) => verify::run(&args),
        Command::Stats(args) => stats::run(&args),
        Command::Recover(args) => recover::run(&args),
        Command::Backup(args) => backup::run(&args),
        Command::Truncate(args) => truncate::run(&args),
        Command::Checkpoint(args) => checkpoint::run(&args),
        Command::Bench(args) => bench::run(&args),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            // Generated into memory, then written: a closed pipe ends the command quietly
            // instead of panicking inside the generator.
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "tidelog", &mut script);
            output::write_all(&script).map(|()| Exit::Ok)
        }
    };
    match result {
        Ok(exit) => exit.into(),
        // The reader of standard output went away (`tidelog stats DIR | head -1`): it has
        // what it wanted; the command ends quietly, as one whose output was cut short does.
        Err(CliError::OutputClosed) => Exit::Ok.into(),
        Err(e) => {
            eprintln!("tidelog: {e}");
            e.exit().into()
        }
    }
}
