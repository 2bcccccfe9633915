//! Sizes and durations as people write and read them: `64MiB`, `1GiB`, `4096` on the
//! command line; `64 MiB`, `181.6 µs`, `2.4 s` in what the commands print.

use std::time::Duration;

/// Parses a byte size: a whole number, optionally followed by a unit (`B`, `KiB`, `MiB`,
/// `GiB`, `TiB`, powers of 1024; `k`/`K`/`KB`, `M`/`MB`, `G`/`GB` are taken as the same
/// powers of 1024, as `dd` and most tools that size files do). Spaces between the number
/// and the unit are allowed; case does not matter.
///
/// # Errors
/// A message saying what is wrong, for clap's usage error.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let bad = || {
        format!("`{text}` is not a size: write bytes (65536) or a number and a unit (64KiB, 64MiB, 1GiB)")
    };
    let number: u64 = number.parse().map_err(|_| bad())?;
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        _ => return Err(bad()),
    };
    number
        .checked_mul(multiplier)
        .ok_or_else(|| format!("`{text}` is too large"))
}

/// Parses `--segment-size`: a size (see [`parse_size`]) the log accepts for its segments,
/// checked here so that a bad value is a usage error that creates nothing.
///
/// # Errors
/// A message saying what is wrong and what is accepted.
pub fn parse_segment_size(text: &str) -> Result<u64, String> {
    use tidelog::wal::format::{MAX_SEGMENT_SIZE, MIN_SEGMENT_SIZE};
    let size = parse_size(text)?;
    if !(MIN_SEGMENT_SIZE..=MAX_SEGMENT_SIZE).contains(&size) {
        return Err(format!(
            "{} is not a segment size: it must be between {} and {} (64MiB is the default)",
            format_size(size),
            format_size(MIN_SEGMENT_SIZE),
            format_size(MAX_SEGMENT_SIZE)
        ));
    }
    if size % 512 != 0 {
        return Err(format!(
            "{size} bytes is not a segment size: it must be a multiple of 512 bytes (for example 64KiB or 64MiB)"
        ));
    }
    Ok(size)
}

/// A byte count for people: `512 B`, `64 KiB`, `1.5 MiB`, `4 GiB` (whole numbers print
/// without decimals).
#[must_use]
pub fn format_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut unit = 0;
    let mut whole = bytes;
    while unit + 1 < UNITS.len() && whole >= 1024 {
        whole /= 1024;
        unit += 1;
    }
    let scale = 1u64 << (10 * unit);
    if unit == 0 || bytes.is_multiple_of(scale) {
        format!("{} {}", bytes / scale, UNITS[unit])
    } else {
        format!("{:.1} {}", bytes as f64 / scale as f64, UNITS[unit])
    }
}

/// A duration for people, with four significant digits at most: `850 ns`, `181.6 µs`,
/// `12.35 ms`, `2.400 s`, `3 min 20 s`.
#[must_use]
pub fn format_duration(duration: Duration) -> String {
    let nanos = duration.as_nanos();
    if nanos < 1_000 {
        return format!("{nanos} ns");
    }
    let secs = duration.as_secs_f64();
    if secs >= 120.0 {
        let whole = duration.as_secs();
        return format!("{} min {} s", whole / 60, whole % 60);
    }
    let (value, unit) = if nanos < 1_000_000 {
        (nanos as f64 / 1e3, "µs")
    } else if nanos < 1_000_000_000 {
        (nanos as f64 / 1e6, "ms")
    } else {
        (secs, "s")
    };
    let decimals = if value >= 100.0 {
        1
    } else if value >= 10.0 {
        2
    } else {
        3
    };
    format!("{value:.decimals$} {unit}")
}

/// A rate for people: `12.3 k/s`-style with the unit named, e.g. `45.2 MiB/s`.
#[must_use]
pub fn format_rate(bytes: u64, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64();
    if secs <= 0.0 {
        return "-".to_owned();
    }
    let per_sec = (bytes as f64 / secs) as u64;
    format!("{}/s", format_size(per_sec))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_with_units_parse_to_powers_of_1024() {
        assert_eq!(parse_size("65536"), Ok(65536));
        assert_eq!(parse_size("64KiB"), Ok(64 << 10));
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("64 mib"), Ok(64 << 20));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert_eq!(parse_size("512B"), Ok(512));
        for bad in ["", "MiB", "64XB", "-1", "1.5MiB", "99999999999TiB"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn segment_sizes_outside_what_the_log_takes_are_refused() {
        assert_eq!(parse_segment_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_segment_size("4KiB"), Ok(4096));
        assert!(parse_segment_size("1KiB")
            .unwrap_err()
            .contains("between 4 KiB"));
        assert!(parse_segment_size("5GiB").is_err());
        assert!(parse_segment_size("5000")
            .unwrap_err()
            .contains("multiple of 512"));
    }

    #[test]
    fn sizes_and_durations_print_for_people() {
        assert_eq!(format_size(512), "512 B");
        assert_eq!(format_size(64 << 20), "64 MiB");
        assert_eq!(format_size(1536), "1.5 KiB");
        assert_eq!(format_size(1 << 30), "1 GiB");
        assert_eq!(format_duration(Duration::from_nanos(850)), "850 ns");
        assert_eq!(format_duration(Duration::from_nanos(181_600)), "181.6 µs");
        assert_eq!(format_duration(Duration::from_micros(12_345)), "12.35 ms");
        assert_eq!(format_duration(Duration::from_millis(2_400)), "2.400 s");
        assert_eq!(format_duration(Duration::from_secs(200)), "3 min 20 s");
        assert_eq!(format_rate(10 << 20, Duration::from_secs(2)), "5 MiB/s");
    }
}
