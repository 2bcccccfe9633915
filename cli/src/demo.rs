//! `tidelog demo`: the README's first command. Appenders on several threads and lanes
//! wait for durability while a monitor prints the watermarks as they move.

use crate::error::{CliError, Exit};
use crate::output::say;
use crate::units::{format_duration, format_rate, format_size};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};
use tidelog::{Engine, GlobalSeq, Options};

/// Arguments of `demo`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where to create the database (default: a temporary directory, deleted after).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Appending threads.
    #[arg(long, default_value_t = 8)]
    threads: u32,
    /// Lanes the threads spread over.
    #[arg(long, default_value_t = 4)]
    lanes: u32,
    /// Records each thread appends (each waits until durable).
    #[arg(long, default_value_t = 2_000)]
    records: u32,
    /// Payload size in bytes.
    #[arg(long, default_value_t = 128)]
    size: usize,
}

/// Runs the demo.
pub fn run(args: &Args) -> Result<Exit, CliError> {
    let temp = match &args.dir {
        Some(_) => None,
        None => Some(tempfile::tempdir().map_err(|source| CliError::Io {
            what: "creating a temporary directory in",
            path: std::env::temp_dir(),
            source,
        })?),
    };
    let dir = match (&args.dir, &temp) {
        (Some(dir), _) => dir.clone(),
        (None, Some(temp)) => temp.path().to_path_buf(),
        (None, None) => std::env::temp_dir(),
    };
    let lanes = args.lanes.max(1);
    // An existing database (--dir) keeps its segment size.
    let options = crate::database::engine_options_for(&dir, Options::default().segment_size)?;
    say!(
        "tidelog demo: {} threads append {} durable records of {} each across {} lanes in {} ({} segments)",
        args.threads,
        args.records,
        format_size(args.size as u64),
        lanes,
        dir.display(),
        format_size(options.segment_size)
    )?;
    say!("{LEGEND}")?;
    let engine = Engine::open(&dir, options).map_err(|e| CliError::opening(&dir, e))?;
    let done = Arc::new(AtomicBool::new(false));
    let monitor = {
        let (engine, done) = (engine.clone(), done.clone());
        thread::spawn(move || -> Result<(), CliError> {
            while !done.load(Ordering::Acquire) {
                print_watermarks(&engine)?;
                thread::sleep(Duration::from_millis(250)); // display cadence, not synchronization
            }
            Ok(())
        })
    };
    let started = Instant::now();
    let workers: Vec<_> = (0..args.threads)
        .map(|t| {
            let engine = engine.clone();
            let (records, size) = (args.records, args.size);
            thread::spawn(move || -> Result<Vec<Duration>, CliError> {
                let mut latencies = Vec::with_capacity(records as usize);
                for i in 0..records {
                    let payload = vec![b'a' + (i % 26) as u8; size];
                    let t0 = Instant::now();
                    engine.append_durable(t % lanes, payload)?;
                    latencies.push(t0.elapsed());
                }
                Ok(latencies)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for worker in workers {
        latencies.extend(
            worker
                .join()
                .map_err(|_| CliError::ThreadPanicked("appender"))??,
        );
    }
    let elapsed = started.elapsed();
    done.store(true, Ordering::Release);
    monitor
        .join()
        .map_err(|_| CliError::ThreadPanicked("monitor"))??;
    print_watermarks(&engine)?;
    let (syncs, groups) = engine.io_counters();
    let total = latencies.len();
    let readback = engine
        .scan_all(GlobalSeq(1))
        .map_err(CliError::Read)?
        .count();
    engine.close()?;
    latencies.sort_unstable();
    let pct = |p: f64| {
        latencies
            .get(((total as f64 - 1.0) * p) as usize)
            .copied()
            .unwrap_or_default()
    };
    say!("\nsummary")?;
    say!("  records        {total} durable, {readback} read back")?;
    say!(
        "  time           {} for {} of payload",
        format_duration(elapsed),
        format_size((total * args.size) as u64)
    )?;
    say!(
        "  throughput     {:.0} records/s, {}",
        total as f64 / elapsed.as_secs_f64(),
        format_rate((total * args.size) as u64, elapsed)
    )?;
    say!(
        "  latency        p50 {}  p99 {}  max {} (from the append to its durable receipt)",
        format_duration(pct(0.5)),
        format_duration(pct(0.99)),
        format_duration(pct(1.0))
    )?;
    say!(
        "  fsyncs         {syncs} for {groups} group commits: {:.1} records per fsync",
        total as f64 / syncs.max(1) as f64
    )?;
    if args.dir.is_some() {
        say!("  database kept in {}", dir.display())?;
    }
    Ok(Exit::Ok)
}

/// What the watermark lines mean, printed before them.
const LEGEND: &str = "\
Each line shows the six watermarks: the global sequence number up to which records are
accepted (queued), written (in the log file), durable (fdatasync'd), visible (readable),
applied (reported applied by every registered applier: the demo registers none, so it
stays at 0) and emitted (handed to subscribers, which with none is as far as visible).
`per lane, durable L:G` says that
lane L's records are durable up to global sequence G (its durable watermark).";

fn print_watermarks(engine: &Engine) -> Result<(), CliError> {
    let view = engine.watermarks();
    let g = view.global;
    let lanes: Vec<String> = view
        .lanes
        .iter()
        .map(|l| format!("{}:{}", l.lane, l.watermarks.durable_hlc.global_sequence))
        .collect();
    say!(
        "  accepted {:>6}  written {:>6}  durable {:>6}  visible {:>6}  applied {:>6}  emitted {:>6}  | per lane, durable {}",
        g.accepted_hlc.global_sequence,
        g.written_hlc.global_sequence,
        g.durable_hlc.global_sequence,
        g.visible_hlc.global_sequence,
        g.applied_hlc.global_sequence,
        g.emitted_hlc.global_sequence,
        lanes.join(" ")
    )
}
