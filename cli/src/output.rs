//! Shared output helpers: payload escaping for plain lines, UTF-8-or-base64 for JSON, UTC
//! times, and progress bars that only a terminal sees.

use crate::error::CliError;
use base64::Engine as _;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::{IsTerminal, Write};
use std::time::Duration;

/// Bytes as one line of text: printable UTF-8 as is; backslash, tab, CR, LF and other
/// control characters escaped (`\\`, `\t`, `\r`, `\n`, `\u{1b}`); bytes that are not UTF-8
/// as `\xNN`. The escaping is reversible, and the result never holds a line break.
pub fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// Adds `bytes` to a JSON object as `name` (a UTF-8 string) or, when it is not UTF-8, as
/// `<name>_base64` (standard alphabet, padded).
pub fn put_bytes(
    object: &mut serde_json::Map<String, serde_json::Value>,
    name: &str,
    bytes: &[u8],
) {
    match std::str::from_utf8(bytes) {
        Ok(text) => {
            object.insert(name.to_owned(), text.into());
        }
        Err(_) => {
            let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
            object.insert(format!("{name}_base64"), encoded.into());
        }
    }
}

/// Milliseconds since the Unix epoch as an RFC 3339 UTC time (`2026-11-22T10:04:05.123Z`).
pub fn utc(wall_ms: u64) -> String {
    let secs = wall_ms / 1000;
    let days = i64::try_from(secs / 86_400).unwrap_or(i64::MAX / 2);
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm, proleptic Gregorian).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        wall_ms % 1000
    )
}

/// A progress bar on standard error, drawn only when standard error is a terminal, so
/// scripts and tests never see it.
pub struct Progress(ProgressBar);

impl Progress {
    /// A bar counting `total` bytes.
    pub fn bytes(total: u64, what: &'static str) -> Progress {
        let bar = if std::io::stderr().is_terminal() {
            ProgressBar::new(total)
        } else {
            ProgressBar::hidden()
        };
        if let Ok(style) = ProgressStyle::with_template(
            "{msg} [{bar:30}] {percent:>3}% {bytes}/{total_bytes} ({bytes_per_sec}, {eta} left)",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(what);
        Progress(bar)
    }

    /// A spinner for work whose size is not known ahead.
    pub fn spinner(what: String) -> Progress {
        let bar = if std::io::stderr().is_terminal() {
            ProgressBar::new_spinner()
        } else {
            ProgressBar::hidden()
        };
        bar.set_message(what);
        bar.enable_steady_tick(Duration::from_millis(120));
        Progress(bar)
    }

    /// A bar counting `total` steps.
    pub fn steps(total: u64) -> Progress {
        let bar = if std::io::stderr().is_terminal() {
            ProgressBar::new(total)
        } else {
            ProgressBar::hidden()
        };
        if let Ok(style) = ProgressStyle::with_template("[{bar:20}] {pos}/{len} {msg}") {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.enable_steady_tick(Duration::from_millis(200));
        Progress(bar)
    }

    /// Sets what the bar counts up to.
    pub fn total(&self, total: u64) {
        self.0.set_length(total);
    }

    /// Moves the bar to `position`.
    pub fn set(&self, position: u64) {
        self.0.set_position(position);
    }

    /// Moves on one step and names it.
    pub fn step(&self, what: String) {
        self.0.inc(1);
        self.0.set_message(what);
    }

    /// Names the current step.
    pub fn message(&self, what: String) {
        self.0.set_message(what);
    }

    /// Removes the bar.
    pub fn finish(&self) {
        self.0.finish_and_clear();
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}

/// Prints one line on standard output, like `println!`, but returns a failure instead of
/// panicking: [`CliError::OutputClosed`] when the reader went away (`tidelog stats DIR |
/// head -1`), [`CliError::Stdout`] for any other write error.
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::output::line(format_args!($($arg)*))
    };
}
pub(crate) use say;

/// The function behind [`say!`]: writes `args` and a line break to standard output.
pub fn line(args: std::fmt::Arguments<'_>) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    out.write_fmt(args)
        .and_then(|()| out.write_all(b"\n"))
        .map_err(stdout_error)
}

/// Writes `bytes` to standard output as they are; fails as [`say!`] does.
pub fn write_all(bytes: &[u8]) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(stdout_error)
}

/// A closed pipe is [`CliError::OutputClosed`]; any other write error is
/// [`CliError::Stdout`].
fn stdout_error(e: std::io::Error) -> CliError {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        CliError::OutputClosed
    } else {
        CliError::Stdout(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_keeps_text_and_makes_everything_else_visible_on_one_line() {
        assert_eq!(escape(b"hello, world"), "hello, world");
        assert_eq!(escape("caf\u{e9}".as_bytes()), "caf\u{e9}");
        assert_eq!(escape(b"a\nb\tc\\d\r"), "a\\nb\\tc\\\\d\\r");
        assert_eq!(escape(b"\x1b[0m"), "\\u{1b}[0m");
        assert_eq!(escape(&[0xff, b'x', 0xc3]), "\\xffx\\xc3");
    }

    #[test]
    fn json_bytes_are_text_when_utf8_and_base64_otherwise() {
        let mut object = serde_json::Map::new();
        put_bytes(&mut object, "payload", b"ok");
        put_bytes(&mut object, "key", &[0xff, 0x00]);
        assert_eq!(
            serde_json::Value::Object(object),
            serde_json::json!({"payload": "ok", "key_base64": "/wA="})
        );
    }

    #[test]
    fn utc_times_match_known_dates() {
        assert_eq!(utc(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(utc(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(utc(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
    }
}
