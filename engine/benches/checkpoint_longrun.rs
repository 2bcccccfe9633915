//! Long run: append continuously with a checkpoint every `M` records, for many segments'
//! worth of data, at 1x, 4x and 16x the base volume. Reports the peak disk usage (log
//! segments plus checkpoints, sampled before and after every checkpoint) and the reopen
//! time (median of 3) after each run: with checkpoints and truncation, both must stay
//! flat as the total written grows. For contrast, the same 16x volume without
//! checkpoints: its disk and reopen time grow with the volume.
//!
//! `cargo bench -p tidelog --bench checkpoint_longrun`. Bounded: the base volume is
//! `TIDELOG_LONGRUN_BASE_MB` (default 8) MiB, so the largest run writes 16 x that
//! (128 MiB by default) twice; `TIDELOG_BENCH_DIR` chooses the disk.
#![allow(missing_docs)]
// `is_multiple_of` needs a newer Rust than the workspace promises.
#![allow(clippy::manual_is_multiple_of)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tidelog::{BatchEntry, CheckpointOptions, Engine, Options, SyncPolicy};

const SEGMENT_BYTES: u64 = 1 << 20;
const RECORD_BYTES: usize = 1000;
const BATCH_RECORDS: usize = 64;
/// A checkpoint every this many records (about 2 segments' worth).
const CHECKPOINT_EVERY: u64 = 2048;
const STATE_BYTES: usize = 16 * 1024;

fn base_dir() -> PathBuf {
    std::env::var_os("TIDELOG_BENCH_DIR").map_or_else(std::env::temp_dir, PathBuf::from)
}

fn base_mib() -> u64 {
    std::env::var("TIDELOG_LONGRUN_BASE_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8)
        .clamp(1, 256)
}

fn options() -> Options {
    let mut options = Options::default()
        .segment_size(SEGMENT_BYTES)
        .max_batch_bytes(512 * 1024)
        .max_record_bytes(64 * 1024)
        .sync_policy(SyncPolicy::EveryRecords(1024))
        .checkpoints(CheckpointOptions {
            keep_last: 3,
            log_for_last: 2,
            auto_truncate: true,
        });
    options.prepare_segments_in_background = true;
    options
}

fn disk_usage(dir: &Path) -> u64 {
    let mut total = 0;
    for sub in ["wal", "checkpoints"] {
        if let Ok(entries) = std::fs::read_dir(dir.join(sub)) {
            total += entries
                .filter_map(Result::ok)
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum::<u64>();
        }
    }
    total
}

struct Outcome {
    written: u64,
    peak: u64,
    final_usage: u64,
    reopen: Duration,
    replayed: u64,
}

fn run(records: u64, checkpoints: bool) -> Outcome {
    let dir = tempfile::tempdir_in(base_dir()).expect("tempdir");
    let engine = Engine::open(dir.path(), options()).expect("open");
    let state = vec![7u8; STATE_BYTES];
    let mut peak = 0;
    let mut appended = 0u64;
    while appended < records {
        let batch: Vec<BatchEntry> = (0..BATCH_RECORDS)
            .map(|i| {
                BatchEntry::new(
                    1 + (i % 4) as u32,
                    vec![(appended % 251) as u8; RECORD_BYTES],
                )
            })
            .collect();
        engine.append_batch(batch).expect("append");
        appended += BATCH_RECORDS as u64;
        if checkpoints && appended % CHECKPOINT_EVERY == 0 {
            let point = engine.sync().expect("sync");
            peak = peak.max(disk_usage(dir.path()));
            engine.checkpoint(point, &state).expect("checkpoint");
        }
        if appended % CHECKPOINT_EVERY == 0 {
            peak = peak.max(disk_usage(dir.path()));
        }
    }
    engine.close().expect("close");
    drop(engine);
    let final_usage = disk_usage(dir.path());
    peak = peak.max(final_usage);
    let mut times = Vec::new();
    let mut replayed = 0;
    for _ in 0..3 {
        let start = Instant::now();
        let engine = Engine::open(dir.path(), options()).expect("reopen");
        times.push(start.elapsed());
        let from = engine
            .recovered_checkpoint()
            .map_or(1, |c| c.point.global_sequence + 1);
        replayed = appended + 1 - from;
        engine.close().expect("close");
        drop(engine);
    }
    times.sort_unstable();
    Outcome {
        written: appended * RECORD_BYTES as u64,
        peak,
        final_usage,
        reopen: times[1],
        replayed,
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn main() {
    let base_records = base_mib() * 1024 * 1024 / RECORD_BYTES as u64;
    let base_records = base_records / CHECKPOINT_EVERY * CHECKPOINT_EVERY;
    println!(
        "checkpoint long run: {RECORD_BYTES} B records, {} MiB segments, checkpoint every {CHECKPOINT_EVERY} records, keep_last 3, log kept after the 2nd newest",
        SEGMENT_BYTES >> 20
    );
    println!("| scale | written MiB | peak disk MiB | final disk MiB | records replayed at reopen | reopen p50 ms |");
    println!("|---|---|---|---|---|---|");
    for (scale, checkpoints) in [(1, true), (4, true), (16, true), (16, false)] {
        // Half an interval past the last checkpoint, so reopen has a tail to replay.
        let o = run(base_records * scale + CHECKPOINT_EVERY / 2, checkpoints);
        let label = if checkpoints {
            format!("{scale}x")
        } else {
            format!("{scale}x, no checkpoints")
        };
        println!(
            "| {label} | {:.0} | {:.1} | {:.1} | {} | {:.1} |",
            mib(o.written),
            mib(o.peak),
            mib(o.final_usage),
            o.replayed,
            o.reopen.as_secs_f64() * 1000.0
        );
    }
}
