//! SIGINT and SIGTERM for commands that must stop cleanly (`append`, `dump --follow`):
//! the first one is handed to the command, which stops taking work, finishes what it
//! accepted and exits `128 + signal` (130, 143); a second one exits at once, as a user
//! pressing Ctrl-C twice expects.

use crate::error::CliError;
use crossbeam_channel::Receiver;
use signal_hook::consts::{SIGINT, SIGTERM};

/// Starts catching SIGINT and SIGTERM; the first one caught arrives on the returned
/// channel (its number).
///
/// # Errors
/// [`CliError::Io`] if the handlers cannot be installed.
pub fn catch() -> Result<Receiver<i32>, CliError> {
    let io = |source| CliError::Io {
        what: "catching SIGINT and SIGTERM in",
        path: std::path::PathBuf::from("this process"),
        source,
    };
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM]).map_err(io)?;
    let (caught, signal) = crossbeam_channel::bounded(1);
    std::thread::Builder::new()
        .name("tidelog-signals".into())
        .spawn(move || {
            let mut seen = false;
            for number in signals.forever() {
                if seen {
                    eprintln!(
                        "tidelog: {} again: exiting at once (opening the database repairs what this leaves)",
                        name(number)
                    );
                    std::process::exit(exit_code(number));
                }
                seen = true;
                let _ = caught.try_send(number);
            }
        })
        .map_err(io)?;
    Ok(signal)
}

/// The conventional exit code of a command stopped by `signal`: 128 plus its number.
#[must_use]
pub fn exit_code(signal: i32) -> i32 {
    128 + signal
}

/// `SIGINT`, `SIGTERM`.
#[must_use]
pub fn name(signal: i32) -> &'static str {
    match signal {
        SIGINT => "SIGINT",
        SIGTERM => "SIGTERM",
        _ => "a signal",
    }
}
