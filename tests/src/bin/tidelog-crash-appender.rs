//! `tidelog-crash-appender DIR ROUND [LIMIT]`: the appending child of the crash and
//! syscall-fault harnesses (`tidelog_tests::appender`). Exit 0 after LIMIT records and a
//! clean close, 1 after a failure (the message on stderr names it), 2 on bad arguments.

use std::path::PathBuf;
use std::process::ExitCode;
use tidelog_tests::appender::{append_until_killed, ChildEnd};

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let (Some(dir), Some(round)) = (args.next(), args.next()) else {
        eprintln!("usage: tidelog-crash-appender DIR ROUND [LIMIT]");
        return ExitCode::from(2);
    };
    let limit = match args.next().map(|l| l.to_string_lossy().parse::<u64>()) {
        None => u64::MAX,
        Some(Ok(limit)) => limit,
        Some(Err(e)) => {
            eprintln!("tidelog-crash-appender: LIMIT must be a number of records: {e}");
            return ExitCode::from(2);
        }
    };
    let round = round.to_string_lossy().into_owned();
    let mut out = std::io::stdout().lock();
    match append_until_killed(&PathBuf::from(dir), &round, limit, &mut out) {
        ChildEnd::Finished => ExitCode::SUCCESS,
        ChildEnd::Failed => ExitCode::from(1),
    }
}
