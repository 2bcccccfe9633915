//! Memory for idempotency keys stays flat: 10 million keyed appends (16-byte keys,
//! 16-byte payloads, 1 MiB segments) with a checkpoint and log truncation every 100,000
//! records, sampling the process's resident set (`/proc/self/statm`) every million. The
//! writer remembers only the keys of records still in the log (the window documented on
//! `Engine::append_idempotent`), so the last sample must stay within a small factor of
//! the first. The run fails (exit 1) if the number of keys remembered at the end is
//! above 1.5x the number after the first tenth. `TIDELOG_KEYS_CONTROL=1` makes the same
//! appends without keys, for contrast: what the RSS grows by there is not key memory.
//! The per-lane index is shrunk by truncation too (one entry per retained record).
//!
//! `cargo bench -p tidelog --bench idempotency_keys_memory`. `TIDELOG_KEYS_RECORDS`
//! sets the number of appends (default 10,000,000; samples every tenth of it);
//! `TIDELOG_BENCH_DIR` chooses the disk. Linux only (reads `/proc`).
#![allow(missing_docs)]
// `is_multiple_of` needs a newer Rust than the workspace promises.
#![allow(clippy::manual_is_multiple_of)]

use std::path::PathBuf;
use std::time::Instant;
use tidelog::{CheckpointOptions, Engine, Options, SyncPolicy};

const CHECKPOINT_EVERY: u64 = 100_000;
const THREADS: u64 = 4;

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn main() {
    let total: u64 = std::env::var("TIDELOG_KEYS_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000)
        .max(THREADS * 10);
    let sample_every = total / 10;
    let control = std::env::var_os("TIDELOG_KEYS_CONTROL").is_some_and(|v| v == "1");
    let base = std::env::var_os("TIDELOG_BENCH_DIR").map_or_else(std::env::temp_dir, PathBuf::from);
    let dir = tempfile::tempdir_in(base).unwrap();
    let mut options = Options::default()
        .segment_size(1 << 20)
        .max_batch_bytes(512 * 1024)
        .max_record_bytes(64 * 1024)
        .sync_policy(SyncPolicy::EveryRecords(4096))
        .checkpoints(CheckpointOptions {
            keep_last: 2,
            log_for_last: 1,
            auto_truncate: true,
        });
    options.prepare_segments_in_background = true;
    let engine = Engine::open(dir.path(), options).unwrap();
    let started = Instant::now();
    let mut samples = Vec::new();
    let mut done = 0u64;
    // Rounds of `CHECKPOINT_EVERY` appends from `THREADS` threads (pipelined through the
    // writer's groups), then a checkpoint, which truncates the log.
    while done < total {
        let round = CHECKPOINT_EVERY.min(total - done);
        std::thread::scope(|scope| {
            for t in 0..THREADS {
                let engine = &engine;
                scope.spawn(move || {
                    let mut i = done + t;
                    while i < done + round {
                        let key = format!("key{i:013}");
                        let lane = (t + 1) as u32;
                        let payload = i.to_le_bytes().repeat(2);
                        if control {
                            engine.append(lane, payload).unwrap();
                        } else {
                            engine.append_idempotent(lane, key, payload).unwrap();
                        }
                        i += THREADS;
                    }
                });
            }
        });
        let before = done;
        done += round;
        let point = engine.sync().unwrap();
        engine.checkpoint(point, b"state").unwrap();
        if done / sample_every > before / sample_every {
            let rss = rss_bytes();
            println!(
                "{:>12} keyed appends  rss {:>7.1} MiB  keys remembered {:>8}  {:.1}s",
                done,
                rss as f64 / (1 << 20) as f64,
                engine.idempotency_keys(),
                started.elapsed().as_secs_f64()
            );
            samples.push((rss, engine.idempotency_keys()));
        }
    }
    let (first, first_keys) = samples[0];
    let (last, last_keys) = *samples.last().unwrap();
    let max = samples.iter().map(|s| s.0).max().unwrap();
    let ratio = last as f64 / first as f64;
    println!(
        "rss after the first tenth {:.1} MiB, at the end {:.1} MiB (x{:.2}), peak {:.1} MiB; {} appends in {:.1}s",
        first as f64 / (1 << 20) as f64,
        last as f64 / (1 << 20) as f64,
        ratio,
        max as f64 / (1 << 20) as f64,
        total,
        started.elapsed().as_secs_f64()
    );
    println!("keys remembered after the first tenth {first_keys}, at the end {last_keys}");
    if last_keys as f64 > 1.5 * first_keys as f64 {
        eprintln!("memory grew with the number of keyed appends");
        std::process::exit(1);
    }
}
