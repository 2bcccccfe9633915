//! The five workloads of issue #8. Each runs one system once in a fresh directory, is
//! bounded in records and seconds, and returns named figures.

use crate::disk;
use crate::error::BenchError;
use crate::peer::{Peer, System};
use crate::stats::sorted_quantile;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// One figure from one run: metric name, value, unit, and whether more is better.
#[derive(Debug, Clone)]
pub struct Figure {
    /// Metric name, e.g. `p50`.
    pub metric: &'static str,
    /// Its value in `unit`.
    pub value: f64,
    /// The unit, e.g. `us`.
    pub unit: &'static str,
    /// Whether a higher value is better (throughput) or a lower one (latency, bytes).
    pub higher_is_better: bool,
}

fn figure(metric: &'static str, value: f64, unit: &'static str, higher: bool) -> Figure {
    Figure {
        metric,
        value,
        unit,
        higher_is_better: higher,
    }
}

/// Limits every workload obeys.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// Time a timed loop runs, per system and case.
    pub run: Duration,
    /// Records one loop (or one writer thread) appends at most.
    pub max_records: u64,
}

/// A fresh directory for one run under `base`, removed when dropped.
fn scratch(base: &Path) -> Result<tempfile::TempDir, BenchError> {
    tempfile::Builder::new()
        .prefix("tidelog-bench-")
        .tempdir_in(base)
        .map_err(|e| BenchError::io("create a directory in", base, e))
}

/// Records appended, untimed, after open and before timing starts.
pub const WARM_UP_RECORDS: usize = 20;

/// Opens `system` in `dir`, lets it settle, and appends [`WARM_UP_RECORDS`] untimed
/// records of `size` bytes to lane 1, so every system is timed in its steady state.
fn open_warm(system: &System, dir: &Path, size: usize) -> Result<Box<dyn Peer>, BenchError> {
    let peer = (system.open)(dir)?;
    peer.settle()?;
    let record = vec![0x11u8; size];
    for _ in 0..WARM_UP_RECORDS {
        peer.append_durable(1, &record)?;
    }
    Ok(peer)
}

/// Latency figures of one run: p50, p99, p99.9 and the worst, named by `names` in that
/// order, from `samples` (sorted here).
fn latency_figures(
    samples: &mut [f64],
    names: [&'static str; 4],
    unit: &'static str,
) -> Vec<Figure> {
    samples.sort_by(f64::total_cmp);
    let q = |p| sorted_quantile(samples, p).unwrap_or(f64::NAN);
    let values = [q(0.5), q(0.99), q(0.999), q(1.0)];
    names
        .into_iter()
        .zip(values)
        .map(|(name, value)| figure(name, value, unit, false))
        .collect()
}

/// The names of per-append latency figures.
const APPEND_LATENCY: [&str; 4] = ["p50", "p99", "p99.9", "max"];

/// Workload 1: one writer, each record durable before the next; latency percentiles.
///
/// # Errors
/// The first failed append.
pub fn one_writer(
    system: &System,
    base: &Path,
    size: usize,
    bounds: Bounds,
) -> Result<Vec<Figure>, BenchError> {
    let dir = scratch(base)?;
    let peer = open_warm(system, dir.path(), size)?;
    let record = vec![0xA5u8; size];
    let mut micros = Vec::new();
    let started = Instant::now();
    while (micros.len() as u64) < bounds.max_records && started.elapsed() < bounds.run {
        let t0 = Instant::now();
        peer.append_durable(1, &record)?;
        micros.push(t0.elapsed().as_secs_f64() * 1e6);
    }
    peer.close()?;
    Ok(latency_figures(&mut micros, APPEND_LATENCY, "us"))
}

/// Runs `writers` threads, each appending durable records of `size` bytes to the lane
/// `lane_of(thread, i)` gives for its `i`th record, until the time bound or each has
/// written `max_records`. Returns records written, seconds taken and every append's
/// latency in microseconds.
fn closed_loop(
    peer: &dyn Peer,
    writers: u32,
    size: usize,
    bounds: Bounds,
    lane_of: impl Fn(u32, u64) -> u32 + Sync,
) -> Result<(u64, f64, Vec<f64>), BenchError> {
    let total = AtomicU64::new(0);
    let started = Instant::now();
    let micros = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..writers)
            .map(|thread| {
                let (total, lane_of) = (&total, &lane_of);
                scope.spawn(move || -> Result<Vec<f64>, BenchError> {
                    let record = vec![0x5Au8; size];
                    let mut micros = Vec::new();
                    let mut i = 0;
                    while i < bounds.max_records && started.elapsed() < bounds.run {
                        let t0 = Instant::now();
                        peer.append_durable(lane_of(thread, i), &record)?;
                        micros.push(t0.elapsed().as_secs_f64() * 1e6);
                        i += 1;
                        total.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(micros)
                })
            })
            .collect();
        let mut all = Vec::new();
        for handle in handles {
            all.extend(handle.join().unwrap_or(Ok(Vec::new()))?);
        }
        Ok::<_, BenchError>(all)
    })?;
    Ok((
        total.load(Ordering::Relaxed),
        started.elapsed().as_secs_f64(),
        micros,
    ))
}

/// Workload 2: `writers` concurrent writers of durable 128-byte records; records/s and
/// per-append latency.
///
/// # Errors
/// The first failed append.
pub fn concurrent(
    system: &System,
    base: &Path,
    writers: u32,
    bounds: Bounds,
) -> Result<Vec<Figure>, BenchError> {
    let (_, _, figures) = concurrent_sized(system, base, writers, 128, bounds)?;
    Ok(figures)
}

/// Writers and record size of workload 6.
pub const BULK_WRITERS: u32 = 16;
/// Record size of workload 6.
pub const BULK_RECORD_BYTES: usize = 4096;

/// Workload 6: 16 concurrent writers of durable 4 KiB records; MB/s of payload made
/// durable, records/s and append latency.
///
/// # Errors
/// The first failed append.
pub fn bulk(system: &System, base: &Path, bounds: Bounds) -> Result<Vec<Figure>, BenchError> {
    let (records, seconds, rest) =
        concurrent_sized(system, base, BULK_WRITERS, BULK_RECORD_BYTES, bounds)?;
    let megabytes = (records * BULK_RECORD_BYTES as u64) as f64 / 1e6;
    let mut figures = vec![figure("MB/s", megabytes / seconds, "MB/s", true)];
    figures.extend(rest);
    Ok(figures)
}

/// `writers` closed-loop writers of durable `size`-byte records, each on its own lane:
/// records, seconds, and the records/s and latency figures.
fn concurrent_sized(
    system: &System,
    base: &Path,
    writers: u32,
    size: usize,
    bounds: Bounds,
) -> Result<(u64, f64, Vec<Figure>), BenchError> {
    let dir = scratch(base)?;
    let peer = open_warm(system, dir.path(), size)?;
    let (records, seconds, mut micros) =
        closed_loop(&*peer, writers, size, bounds, |thread, _| thread + 1)?;
    peer.close()?;
    let mut figures = vec![figure("records/s", records as f64 / seconds, "rec/s", true)];
    figures.extend(latency_figures(&mut micros, APPEND_LATENCY, "us"));
    Ok((records, seconds, figures))
}

/// Records per batch and batches in workload 3.
pub const BATCH_RECORDS: usize = 1_000;
/// Batches in workload 3.
pub const BATCHES: usize = 100;
/// Record size in workload 3.
pub const BATCH_RECORD_BYTES: usize = 170;

/// Workload 3: up to 100 batches of 1,000 records of 170 bytes, one sync per batch
/// (stopping early at five times the time bound); records/s and batch latency.
///
/// # Errors
/// The first failed batch.
pub fn batches(system: &System, base: &Path, bounds: Bounds) -> Result<Vec<Figure>, BenchError> {
    let dir = scratch(base)?;
    let peer = open_warm(system, dir.path(), BATCH_RECORD_BYTES)?;
    let batch: Vec<Vec<u8>> = (0..BATCH_RECORDS)
        .map(|i| vec![(i % 251) as u8; BATCH_RECORD_BYTES])
        .collect();
    let mut millis = Vec::with_capacity(BATCHES);
    let started = Instant::now();
    while millis.len() < BATCHES && started.elapsed() < bounds.run * 5 {
        let t0 = Instant::now();
        peer.append_batch_durable(1, &batch)?;
        millis.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    let seconds = started.elapsed().as_secs_f64();
    peer.close()?;
    let records = (millis.len() * BATCH_RECORDS) as f64;
    let mut figures = vec![figure("records/s", records / seconds, "rec/s", true)];
    figures.extend(latency_figures(
        &mut millis,
        ["batch p50", "batch p99", "batch p99.9", "batch max"],
        "ms",
    ));
    Ok(figures)
}

/// Lanes in workload 4.
pub const LANES: u32 = 1_000;
/// Concurrent writers in workload 4.
pub const LANE_WRITERS: u32 = 16;

/// Workload 4: 16 writers spread durable 1 KiB records over 1,000 lanes; records/s,
/// per-append latency and the disk bytes (allocated, as `du` counts, after close) per
/// record.
///
/// # Errors
/// The first failed append.
pub fn lanes(system: &System, base: &Path, bounds: Bounds) -> Result<Vec<Figure>, BenchError> {
    let dir = scratch(base)?;
    let peer = open_warm(system, dir.path(), 1024)?;
    let (records, seconds, mut micros) =
        closed_loop(&*peer, LANE_WRITERS, 1024, bounds, |thread, i| {
            // Thread t walks lanes t, t+16, t+32, ...: every lane is written, no two threads
            // share one.
            let per_thread = LANES / LANE_WRITERS;
            let step = u32::try_from(i % u64::from(per_thread)).unwrap_or(0);
            1 + thread + step * LANE_WRITERS
        })?;
    peer.close()?;
    drop(peer);
    let (_, allocated) = disk::usage(dir.path())?;
    let mut figures = vec![figure("records/s", records as f64 / seconds, "rec/s", true)];
    figures.extend(latency_figures(&mut micros, APPEND_LATENCY, "us"));
    figures.push(figure(
        "disk/record",
        allocated as f64 / (records + WARM_UP_RECORDS as u64) as f64,
        "B",
        false,
    ));
    Ok(figures)
}

/// Record size of the recovery workload's log.
pub const RECOVERY_RECORD_BYTES: usize = 1024;

/// What the fill process reports: records it wrote, each acknowledged durable.
///
/// Fills `dir` with `bytes` of payload in durable batches of 1,000 records of 1 KiB, then
/// closes the system cleanly (`clean`) or exits at once as a crash would. Run in a child
/// process so that the crash leaves exactly what a killed process leaves.
///
/// # Errors
/// The first failed batch.
pub fn fill(system: &System, dir: &Path, bytes: u64, clean: bool) -> Result<u64, BenchError> {
    let peer = (system.open)(dir)?;
    let batch: Vec<Vec<u8>> = (0..BATCH_RECORDS)
        .map(|i| vec![(i % 253) as u8 | 1; RECOVERY_RECORD_BYTES])
        .collect();
    let per_batch = (BATCH_RECORDS * RECOVERY_RECORD_BYTES) as u64;
    let mut written = 0u64;
    while written * (RECOVERY_RECORD_BYTES as u64) < bytes {
        peer.append_batch_durable(1, &batch)?;
        written += BATCH_RECORDS as u64;
        debug_assert!(written * (RECOVERY_RECORD_BYTES as u64) <= bytes + per_batch);
    }
    if clean {
        peer.close()?;
        drop(peer);
    } else {
        // A crash: no close, no destructor. Every batch was durable when acknowledged.
        std::mem::forget(peer);
    }
    Ok(written)
}

/// Fills a log for the recovery workload: `(system, dir, bytes, clean)` to records
/// written, as [`fill`] does (the harness runs it in a child process).
pub type FillFn = dyn Fn(&System, &Path, u64, bool) -> Result<u64, BenchError>;

/// Workload 5: recovery time of a log of `bytes`, after a clean close or after a crash
/// with the last write torn. The log is filled by a child process (`fill_child`), the
/// open is timed here, then (untimed) the records are counted: fewer than acknowledged
/// (less the torn last batch) is reported as lost data.
///
/// # Errors
/// The fill, the tear or the open failed, or records were lost.
pub fn recovery(
    system: &System,
    base: &Path,
    bytes: u64,
    torn: bool,
    fill_child: &FillFn,
) -> Result<Vec<Figure>, BenchError> {
    let dir = scratch(base)?;
    let written = fill_child(system, dir.path(), bytes, !torn)?;
    if torn {
        disk::tear_last_write(dir.path())?;
    }
    let t0 = Instant::now();
    let peer = (system.open)(dir.path())?;
    let millis = t0.elapsed().as_secs_f64() * 1e3;
    let found = peer.count()?;
    peer.close()?;
    let may_lose = if torn { BATCH_RECORDS as u64 } else { 0 };
    if found + may_lose < written {
        return Err(BenchError::LostRecords {
            system: system.name,
            expected: written - may_lose,
            found,
        });
    }
    Ok(vec![
        figure("open", millis, "ms", false),
        figure(
            "MiB/s",
            bytes as f64 / (1 << 20) as f64 / (millis / 1e3),
            "MiB/s",
            true,
        ),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peer::select;

    fn tiny() -> Bounds {
        Bounds {
            run: Duration::from_secs(2),
            max_records: 20,
        }
    }

    fn in_process(system: &System, dir: &Path, bytes: u64, clean: bool) -> Result<u64, BenchError> {
        fill(system, dir, bytes, clean)
    }

    #[test]
    fn every_built_in_system_runs_the_write_workloads_within_their_bounds() {
        let base = tempfile::tempdir().unwrap();
        for system in select(Some("tidelog,baseline,group-commit")).unwrap() {
            let latency = one_writer(&system, base.path(), 256, tiny()).unwrap();
            assert!(latency[0].value > 0.0 && latency[0].value <= latency[1].value);
            let rate = concurrent(&system, base.path(), 4, tiny()).unwrap();
            assert!(rate[0].value > 0.0);
        }
    }

    #[test]
    fn every_write_workload_reports_p50_p99_p99_9_and_the_worst_latency_in_order() {
        let base = tempfile::tempdir().unwrap();
        let system = select(Some("group-commit")).unwrap()[0];
        let figures = [
            one_writer(&system, base.path(), 256, tiny()).unwrap(),
            concurrent(&system, base.path(), 4, tiny()).unwrap(),
            lanes(&system, base.path(), tiny()).unwrap(),
        ];
        for run in &figures {
            let latency: Vec<&Figure> = run.iter().filter(|f| f.unit == "us").collect();
            let names: Vec<&str> = latency.iter().map(|f| f.metric).collect();
            assert_eq!(names, APPEND_LATENCY, "{run:?}");
            assert!(
                latency.windows(2).all(|w| w[0].value <= w[1].value),
                "{run:?}"
            );
        }
    }

    #[test]
    fn the_latency_figures_are_taken_by_rank_with_the_worst_last() {
        let mut samples: Vec<f64> = (1..=1000).rev().map(f64::from).collect();
        let figures = latency_figures(&mut samples, APPEND_LATENCY, "us");
        let values: Vec<f64> = figures.iter().map(|f| f.value).collect();
        assert_eq!(values, [501.0, 990.0, 999.0, 1000.0]);
    }

    #[test]
    fn tidelog_recovers_every_acknowledged_record_after_a_clean_close() {
        let base = tempfile::tempdir().unwrap();
        let system = select(Some("tidelog")).unwrap()[0];
        let figures = recovery(&system, base.path(), 2 << 20, false, &in_process).unwrap();
        assert_eq!(figures[0].metric, "open");
    }

    #[test]
    fn a_system_that_loses_records_is_reported_not_timed() {
        let base = tempfile::tempdir().unwrap();
        let system = select(Some("baseline")).unwrap()[0];
        // A fill that claims more than it wrote stands in for a system that lost data.
        let lying = |s: &System, d: &Path, b: u64, c: bool| fill(s, d, b, c).map(|n| n + 1);
        let err = recovery(&system, base.path(), 1 << 20, false, &lying).unwrap_err();
        assert!(matches!(err, BenchError::LostRecords { .. }), "{err}");
    }
}
