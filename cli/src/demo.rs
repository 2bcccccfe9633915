//! `tidelog demo`: the README's first command. Appenders on several threads and lanes
//! wait for durability while a monitor prints the watermarks as they move.

use crate::error::{CliError, Exit};
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
    println!(
        "tidelog demo: {} threads append {} durable records of {} B each across {} lanes in {}",
        args.threads,
        args.records,
        args.size,
        lanes,
        dir.display()
    );
    // An existing database (--dir) keeps its segment size.
    let options = crate::database::engine_options_for(&dir, Options::default().segment_size)?;
    let engine = Engine::open(&dir, options)?;
    let done = Arc::new(AtomicBool::new(false));
    let monitor = {
        let (engine, done) = (engine.clone(), done.clone());
        thread::spawn(move || {
            while !done.load(Ordering::Acquire) {
                print_watermarks(&engine);
                thread::sleep(Duration::from_millis(250)); // display cadence, not synchronization
            }
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
        .map_err(|_| CliError::ThreadPanicked("monitor"))?;
    print_watermarks(&engine);
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
    println!("\nsummary");
    println!("  records        {total} durable, {readback} read back");
    println!(
        "  throughput     {:.0} records/s, {:.1} MB/s",
        total as f64 / elapsed.as_secs_f64(),
        (total * args.size) as f64 / elapsed.as_secs_f64() / 1e6
    );
    println!(
        "  latency        p50 {:?}  p99 {:?}  max {:?}",
        pct(0.5),
        pct(0.99),
        pct(1.0)
    );
    println!(
        "  fsyncs         {syncs} for {groups} group commits: {:.1} records per fsync",
        total as f64 / syncs.max(1) as f64
    );
    if args.dir.is_some() {
        println!("  database kept in {}", dir.display());
    }
    Ok(Exit::Ok)
}

fn print_watermarks(engine: &Engine) {
    let view = engine.watermarks();
    let g = view.global;
    let lanes: Vec<String> = view
        .lanes
        .iter()
        .map(|l| format!("{}:{}", l.lane, l.watermarks.durable_hlc.global_sequence))
        .collect();
    println!(
        "  accepted {:>7}  written {:>7}  durable {:>7}  visible {:>7}  | lane durable {}",
        g.accepted_hlc.global_sequence,
        g.written_hlc.global_sequence,
        g.durable_hlc.global_sequence,
        g.visible_hlc.global_sequence,
        lanes.join(" ")
    );
}
