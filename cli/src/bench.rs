//! `tidelog bench`: the engine's own benchmark (the figures of
//! `engine/benches/durable.rs`, same definitions), each beside the raw
//! `pwrite` + `fdatasync` baseline measured in the same run on the same disk, each workload
//! bounded in time. Runs in temporary directories (under `--dir` if given), removed after.

use crate::database;
use crate::error::{CliError, Exit};
use crate::output::{say, Progress};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};
use tidelog::baseline::{pwrite_fdatasync, RawSyncRun};
use tidelog::Engine;

/// Payload of the latency figure.
const LATENCY_BYTES: usize = 256;
/// Payload of the pipelined figure.
const PIPELINED_BYTES: usize = 64;
/// Most records one workload writes, whatever the time limit.
const RECORDS_MAX: usize = 1_000_000;

/// Arguments of `bench`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Figures (definitions of engine/benches/durable.rs):
  latency     one writer appends 256 B records, each waited durable: p50 and p99, beside
              pwrite + fdatasync of 256 B into a pre-filled file (the disk's own cost)
  concurrent  N writers append records of --size bytes in a closed loop, each waited
              durable: records/s and records per fdatasync, beside the raw fdatasyncs/s
  pipelined   one thread submits 64 B records without waiting, then waits for the last
              to be durable: records/s accepted and durable
Each workload runs for --seconds (and at most 1,000,000 records).

Examples:
  tidelog bench
  tidelog bench --dir /mnt/fast-disk --seconds 5 --writers 64 --json")]
pub struct Args {
    /// Where to create the temporary benchmark directories (default: the system's
    /// temporary directory). Measure on the disk your database will use.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Time limit of each workload, in seconds.
    #[arg(long, default_value_t = 1.0, value_parser = parse_seconds)]
    seconds: f64,
    /// Concurrent durable writers of the `concurrent` workload.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1024))]
    writers: u32,
    /// Record size of the `concurrent` workload, in bytes.
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u32).range(1..=(1 << 20)))]
    size: u32,
    /// Segment size of the benchmark databases: bytes or with a unit (64KiB, 64MiB,
    /// 1GiB; default 64MiB; preparing segments happens before the timed loops).
    #[arg(long, value_name = "SIZE", default_value = "64MiB", value_parser = crate::units::parse_segment_size)]
    segment_size: u64,
    /// Print the figures as one JSON object.
    #[arg(long)]
    json: bool,
}

fn parse_seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(s) if s > 0.0 && s <= 600.0 => Ok(s),
        _ => Err(format!("expected seconds between 0 and 600, not `{text}`")),
    }
}

/// Latency percentiles of a sample, in microseconds.
#[derive(Debug, Clone, Copy)]
struct Percentiles {
    p50_us: f64,
    p99_us: f64,
    samples: usize,
    /// Operations per second of busy time.
    rate_per_s: f64,
}

fn percentiles(mut samples: Vec<Duration>) -> Percentiles {
    samples.sort_unstable();
    let busy: Duration = samples.iter().sum();
    let at = |p: f64| {
        let i = ((samples.len().saturating_sub(1)) as f64 * p).round() as usize;
        samples.get(i).map_or(0.0, |d| d.as_secs_f64() * 1e6)
    };
    Percentiles {
        p50_us: at(0.5),
        p99_us: at(0.99),
        samples: samples.len(),
        rate_per_s: samples.len() as f64 / busy.as_secs_f64().max(f64::MIN_POSITIVE),
    }
}

/// Runs `bench`.
pub fn run(args: &Args) -> Result<Exit, CliError> {
    let base = match &args.dir {
        Some(dir) => dir.clone(),
        None => std::env::temp_dir(),
    };
    let limit = Duration::from_secs_f64(args.seconds);
    let progress = Progress::steps(5);
    progress.message("raw pwrite + fdatasync, 256 B".into());
    let raw = percentiles(raw_write_fdatasync(&base, LATENCY_BYTES, limit)?);
    progress.step("1 writer, 256 B, durable each".into());
    let ours = percentiles(one_writer_latency(&base, args.segment_size, limit)?);
    progress.step(format!(
        "{} writers, {} B, durable",
        args.writers, args.size
    ));
    let (rate, per_sync) = concurrent_durable(
        &base,
        args.segment_size,
        args.writers,
        args.size as usize,
        limit,
    )?;
    progress.step("raw pwrite + fdatasync, concurrent size".into());
    let raw_concurrent = percentiles(raw_write_fdatasync(&base, args.size as usize, limit)?);
    progress.step("pipelined 64 B submits".into());
    let (accepted, durable) = pipelined(&base, args.segment_size, limit)?;
    progress.finish();
    let raw_syncs_per_s = raw_concurrent.rate_per_s;
    if args.json {
        let value = json!({
            "dir": base.display().to_string(),
            "seconds_per_workload": args.seconds,
            "latency": {
                "record_bytes": LATENCY_BYTES,
                "p50_us": ours.p50_us,
                "p99_us": ours.p99_us,
                "samples": ours.samples,
                "raw_p50_us": raw.p50_us,
                "raw_p99_us": raw.p99_us,
                "raw_samples": raw.samples,
                "p50_ratio": ours.p50_us / raw.p50_us.max(f64::MIN_POSITIVE),
            },
            "concurrent": {
                "writers": args.writers,
                "record_bytes": args.size,
                "records_per_s": rate,
                "records_per_fdatasync": per_sync,
                "raw_fdatasyncs_per_s": raw_syncs_per_s,
            },
            "pipelined": {
                "record_bytes": PIPELINED_BYTES,
                "accepted_per_s": accepted,
                "durable_per_s": durable,
            },
        });
        say!("{value}")?;
    } else {
        say!(
            "tidelog bench in {} ({} s per workload)",
            base.display(),
            args.seconds
        )?;
        say!(
            "  1 writer, {LATENCY_BYTES} B, durable each: p50 {:.0} us, p99 {:.0} us ({} records) vs pwrite+fdatasync p50 {:.0} us, p99 {:.0} us: p50 ratio {:.2}",
            ours.p50_us,
            ours.p99_us,
            ours.samples,
            raw.p50_us,
            raw.p99_us,
            ours.p50_us / raw.p50_us.max(f64::MIN_POSITIVE)
        )?;
        say!(
            "  {} writers, {} B, durable: {rate:.0} records/s, {per_sync:.1} records per fdatasync (raw: {raw_syncs_per_s:.0} fdatasyncs/s of {} B)",
            args.writers, args.size, args.size
        )?;
        say!(
            "  pipelined {PIPELINED_BYTES} B submits from one thread: {accepted:.0} records/s accepted, {durable:.0} records/s durable"
        )?;
    }
    Ok(Exit::Ok)
}

fn temp_in(base: &Path) -> Result<tempfile::TempDir, CliError> {
    tempfile::tempdir_in(base).map_err(|source| CliError::Io {
        what: "creating a temporary directory in",
        path: base.to_path_buf(),
        source,
    })
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> CliError + 'a {
    move |source| CliError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// Plain `pwrite` + `fdatasync` of `size` bytes at increasing offsets of a 16 MiB file
/// pre-filled with zeros (the cheapest honest baseline, `tidelog::baseline`):
/// per-operation latencies.
fn raw_write_fdatasync(
    base: &Path,
    size: usize,
    limit: Duration,
) -> Result<Vec<Duration>, CliError> {
    let dir = temp_in(base)?;
    let run = RawSyncRun {
        size,
        file_bytes: 16 << 20,
        max_writes: RECORDS_MAX,
        limit,
    };
    pwrite_fdatasync(&dir.path().join("raw"), run).map_err(|e| CliError::Io {
        what: e.op,
        path: e.path,
        source: e.source,
    })
}

/// Opens a benchmark database and waits (at most 60 s) until the engine has prepared
/// its next segment in the background: that one-off zero-fill and fsync of a whole
/// segment would otherwise compete with the first timed appends.
fn open(dir: &Path, segment_size: u64) -> Result<Engine, CliError> {
    let engine = Engine::open(dir, database::engine_options(segment_size))?;
    let wal = database::wal_dir(dir);
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        let preparing = std::fs::read_dir(&wal)
            .map_err(io("listing", &wal))?
            .filter_map(Result::ok)
            .any(|e| e.file_name().to_string_lossy().ends_with(".seg.tmp"));
        if !preparing {
            break;
        }
        thread::sleep(Duration::from_millis(5));
    }
    Ok(engine)
}

/// One writer, 256 B records, each waited durable.
fn one_writer_latency(
    base: &Path,
    segment_size: u64,
    limit: Duration,
) -> Result<Vec<Duration>, CliError> {
    let dir = temp_in(base)?;
    let engine = open(dir.path(), segment_size)?;
    let payload = vec![7u8; LATENCY_BYTES];
    let mut samples = Vec::new();
    let started = Instant::now();
    while started.elapsed() < limit && samples.len() < RECORDS_MAX {
        let t0 = Instant::now();
        engine.append_durable(1, payload.clone())?;
        samples.push(t0.elapsed());
    }
    engine.close()?;
    Ok(samples)
}

/// `writers` threads append durable records of `size` bytes in a closed loop for the
/// time limit. Returns (records/s, records per fdatasync).
fn concurrent_durable(
    base: &Path,
    segment_size: u64,
    writers: u32,
    size: usize,
    limit: Duration,
) -> Result<(f64, f64), CliError> {
    let dir = temp_in(base)?;
    let engine = Arc::new(open(dir.path(), segment_size)?);
    let per_writer = RECORDS_MAX / writers as usize;
    let started = Instant::now();
    let threads: Vec<_> = (0..writers)
        .map(|w| {
            let engine = engine.clone();
            thread::spawn(move || -> Result<u64, CliError> {
                let payload = vec![7u8; size];
                let mut n = 0u64;
                while started.elapsed() < limit && (n as usize) < per_writer {
                    engine.append_durable(w % 16, payload.clone())?;
                    n += 1;
                }
                Ok(n)
            })
        })
        .collect();
    let mut records = 0u64;
    for t in threads {
        records += t
            .join()
            .map_err(|_| CliError::ThreadPanicked("benchmark writer"))??;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let (syncs, _) = engine.io_counters();
    engine.close()?;
    Ok((
        records as f64 / elapsed,
        records as f64 / syncs.max(1) as f64,
    ))
}

/// One thread submits 64 B records without waiting for the time limit, then waits for
/// each answer and for the last to be durable. Returns (accepted/s, durable/s).
fn pipelined(base: &Path, segment_size: u64, limit: Duration) -> Result<(f64, f64), CliError> {
    let dir = temp_in(base)?;
    let engine = open(dir.path(), segment_size)?;
    let started = Instant::now();
    let mut tickets = Vec::new();
    let mut i = 0u32;
    while started.elapsed() < limit && tickets.len() < RECORDS_MAX {
        tickets.push(engine.submit(i % 8, vec![7u8; PIPELINED_BYTES])?);
        i = i.wrapping_add(1);
    }
    let records = tickets.len() as f64;
    let mut last = None;
    for ticket in tickets {
        last = Some(ticket.wait()?);
    }
    let accepted = started.elapsed().as_secs_f64();
    if let Some(last) = last {
        engine
            .watermark_handle()
            .wait_for_durable(last.point, Duration::from_secs(60))?;
    }
    let durable = started.elapsed().as_secs_f64();
    engine.close()?;
    Ok((records / accepted, records / durable))
}
