//! The `tidelog` command: look inside a database, append to it, or watch a demo.
//!
//! Exit codes: 0 success; 1 an operation failed (the message says which and why);
//! 2 bad arguments (clap) or, for `verify`, a torn tail that opening would repair;
//! 3 corrupted durable data (`verify`).

use clap::{Parser, Subcommand};
use std::process::ExitCode;

mod append;
mod demo;
mod verify;

/// tidelog: an embeddable write-ahead log. This command looks inside databases.
#[derive(Debug, Parser)]
#[command(name = "tidelog", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Several threads append across lanes on a temporary directory (or --dir) while the
    /// watermarks are shown moving; ends with a summary.
    Demo(demo::Args),
    /// Appends standard input, one record per line, to a lane; prints each receipt once
    /// the record is durable.
    Append(append::Args),
    /// Checks every segment without changing anything. Exit 0 clean, 2 torn tail only,
    /// 3 corrupted durable data.
    Verify(verify::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo(args) => demo::run(&args),
        Command::Append(args) => append::run(&args),
        Command::Verify(args) => verify::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("tidelog: {message}");
            ExitCode::from(1)
        }
    }
}
