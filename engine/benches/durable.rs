//! The engine against the disk, in one run: each figure is reported with the physical
//! baseline measured beside it, so ratios are fair on any machine.
//!
//! `cargo bench -p tidelog --bench durable` (set `TIDELOG_BENCH_DIR` to choose the disk;
//! default: the system temp dir). Every workload is bounded in records and time.
#![allow(missing_docs)]

use std::path::PathBuf;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};
use tidelog::baseline::{pwrite_fdatasync, RawSyncRun};
use tidelog::{Appender, Engine, Follower, Options};

const RUN_LIMIT: Duration = Duration::from_secs(3);

fn base_dir() -> PathBuf {
    std::env::var_os("TIDELOG_BENCH_DIR").map_or_else(std::env::temp_dir, PathBuf::from)
}

fn p50(mut samples: Vec<Duration>) -> Duration {
    samples.sort_unstable();
    samples.get(samples.len() / 2).copied().unwrap_or_default()
}

/// Plain `pwrite` + `fdatasync` of `size` bytes at increasing offsets of a file that was
/// pre-filled with zeros (the cheapest honest baseline, `tidelog::baseline`): per-operation
/// latencies.
fn raw_write_fdatasync(size: usize, count: usize) -> Vec<Duration> {
    let dir = tempfile::tempdir_in(base_dir()).expect("tempdir");
    let run = RawSyncRun {
        size,
        file_bytes: size * count,
        max_writes: count,
        limit: RUN_LIMIT,
    };
    pwrite_fdatasync(&dir.path().join("raw"), run).expect("raw baseline")
}

fn open(dir: &std::path::Path) -> Engine {
    Engine::open(dir, Options::default()).expect("open")
}

fn one_writer_latency(size: usize, count: usize) -> Vec<Duration> {
    let dir = tempfile::tempdir_in(base_dir()).expect("tempdir");
    let engine = open(dir.path());
    let payload = vec![7u8; size];
    let mut samples = Vec::with_capacity(count);
    let started = Instant::now();
    for _ in 0..count {
        let t0 = Instant::now();
        engine.append_durable(1, payload.clone()).expect("append");
        samples.push(t0.elapsed());
        if started.elapsed() > RUN_LIMIT {
            break;
        }
    }
    engine.close().expect("close");
    samples
}

/// `writers` threads, each appending durable records of `size` bytes in a closed loop for
/// a fixed time. Returns (records/s, records per fsync).
fn concurrent_durable(writers: u32, size: usize) -> (f64, f64) {
    let dir = tempfile::tempdir_in(base_dir()).expect("tempdir");
    let engine = Arc::new(open(dir.path()));
    let started = Instant::now();
    let threads: Vec<_> = (0..writers)
        .map(|w| {
            let engine = engine.clone();
            thread::spawn(move || {
                let payload = vec![7u8; size];
                let mut n = 0u64;
                while started.elapsed() < RUN_LIMIT {
                    engine
                        .append_durable(w % 16, payload.clone())
                        .expect("append");
                    n += 1;
                }
                n
            })
        })
        .collect();
    let records: u64 = threads.into_iter().map(|t| t.join().expect("writer")).sum();
    let elapsed = started.elapsed().as_secs_f64();
    let (syncs, _) = engine.io_counters();
    engine.close().expect("close");
    (
        records as f64 / elapsed,
        records as f64 / syncs.max(1) as f64,
    )
}

/// Sequential writes of `chunk` bytes, each followed by fdatasync, into a pre-filled
/// 64 MiB file (wrapping around, like a preallocated segment): the disk's raw
/// write-plus-fdatasync bandwidth at that size, MB/s.
fn raw_bandwidth(chunk: usize) -> f64 {
    let dir = tempfile::tempdir_in(base_dir()).expect("tempdir");
    let run = RawSyncRun {
        size: chunk,
        file_bytes: 64 << 20,
        max_writes: usize::MAX,
        limit: RUN_LIMIT,
    };
    let samples = pwrite_fdatasync(&dir.path().join("raw"), run).expect("raw baseline");
    let busy: Duration = samples.iter().sum();
    (samples.len() * chunk) as f64 / busy.as_secs_f64() / 1e6
}

/// One thread appends 64 B records without waiting; returns (accepted/s, durable/s).
fn pipelined(records: u32) -> (f64, f64) {
    let dir = tempfile::tempdir_in(base_dir()).expect("tempdir");
    let engine = open(dir.path());
    let started = Instant::now();
    let tickets: Vec<_> = (0..records)
        .map(|i| engine.submit(i % 8, vec![7u8; 64]).expect("submit"))
        .collect();
    let mut last = None;
    for ticket in tickets {
        last = Some(ticket.wait().expect("append"));
    }
    let accepted = started.elapsed().as_secs_f64();
    if let Some(last) = last {
        engine
            .watermark_handle()
            .wait_for_durable(last.point, Duration::from_secs(60))
            .expect("durable");
    }
    let durable = started.elapsed().as_secs_f64();
    engine.close().expect("close");
    (f64::from(records) / accepted, f64::from(records) / durable)
}

/// Durable 256 B appends, one thread then 16, locally on the writer and forwarded from a
/// follower over the socket, on the same database: (local p50, forwarded p50, local/s,
/// forwarded/s).
fn forwarded() -> (Duration, Duration, f64, f64) {
    let dir = tempfile::tempdir_in(base_dir()).expect("tempdir");
    let engine = Arc::new(open(dir.path()));
    let follower = Arc::new(Follower::connect(dir.path()).expect("follower"));
    let payload = vec![7u8; 256];
    let mut local = Vec::new();
    let mut remote = Vec::new();
    let started = Instant::now();
    while started.elapsed() < RUN_LIMIT && local.len() < 2_000 {
        // Alternate so both see the same disk conditions.
        let t0 = Instant::now();
        engine.append_durable(1, payload.clone()).expect("local");
        local.push(t0.elapsed());
        let t0 = Instant::now();
        follower
            .append_durable(2, payload.clone())
            .expect("forwarded");
        remote.push(t0.elapsed());
    }
    let rate = |forward: bool| {
        let started = Instant::now();
        let threads: Vec<_> = (0..16u32)
            .map(|w| {
                let engine = engine.clone();
                let dir = dir.path().to_path_buf();
                thread::spawn(move || {
                    // One connection per thread, as separate processes would have.
                    let follower = forward.then(|| Follower::connect(&dir).expect("follower"));
                    let mut n = 0u64;
                    while started.elapsed() < RUN_LIMIT {
                        let payload = vec![7u8; 256];
                        match &follower {
                            Some(f) => f.append_durable(w, payload).map(|_| ()),
                            None => engine.append_durable(w, payload).map(|_| ()),
                        }
                        .expect("append");
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        let n: u64 = threads.into_iter().map(|t| t.join().expect("thread")).sum();
        n as f64 / started.elapsed().as_secs_f64()
    };
    let local_rate = rate(false);
    let remote_rate = rate(true);
    drop(follower);
    engine.close().expect("close");
    (p50(local), p50(remote), local_rate, remote_rate)
}

/// Whether workload `name` was asked for: every workload unless names are given
/// (`cargo bench -p tidelog --bench durable -- latency concurrent bandwidth forwarded pipelined`).
fn wanted(name: &str) -> bool {
    let asked: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    asked.is_empty() || asked.iter().any(|a| a == name)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // cargo's bench discovery
    }
    println!("tidelog engine benchmarks ({})", base_dir().display());

    if wanted("latency") {
        let raw = p50(raw_write_fdatasync(256, 2_000));
        let ours = p50(one_writer_latency(256, 2_000));
        println!(
            "1 writer, 256 B, durable each: p50 {ours:?} vs write+fdatasync {raw:?}: ratio {:.2} (goal <= 1.2)",
            ours.as_secs_f64() / raw.as_secs_f64()
        );
    }

    if wanted("concurrent") {
        for writers in [16, 64] {
            let (rate, per_sync) = concurrent_durable(writers, 128);
            println!("{writers} writers, 128 B, durable: {rate:.0} records/s, {per_sync:.1} records per fdatasync");
        }
    }

    if wanted("bandwidth") {
        // 16 appenders that each wait for durability never have more than 16 x 4 KiB in
        // flight, so the comparable raw figure writes 64 KiB per fdatasync; the 1 MiB
        // figure is the disk's ceiling, out of reach of any closed-loop 16-writer load.
        let raw_64k = raw_bandwidth(64 << 10);
        let raw_1m = raw_bandwidth(1 << 20);
        let (rate, per_sync) = concurrent_durable(16, 4096);
        let mb = rate * 4096.0 / 1e6;
        println!(
            "16 writers, 4 KiB, durable: {mb:.1} MB/s ({per_sync:.1} records per fdatasync) vs raw write+fdatasync of 64 KiB {raw_64k:.1} MB/s: {:.0}% (goal >= 70%); raw 1 MiB ceiling {raw_1m:.1} MB/s",
            100.0 * mb / raw_64k
        );
    }

    if wanted("forwarded") {
        let (local, remote, local_rate, remote_rate) = forwarded();
        println!(
            "forwarded from a follower, 256 B durable: p50 {remote:?} vs local {local:?} ({:.2}x); 16 threads {remote_rate:.0} vs {local_rate:.0} records/s ({:.2}x)",
            remote.as_secs_f64() / local.as_secs_f64(),
            remote_rate / local_rate
        );
    }

    if wanted("pipelined") {
        let (accepted, durable) = pipelined(200_000);
        println!(
            "pipelined 64 B appends: {accepted:.0} records/s accepted, {durable:.0} records/s durable"
        );
    }
}
