//! Appends durable records from one thread and prints the median latency: the smallest
//! program to profile or trace (`strace -f -T`) the durable append path.
//!
//! `cargo run --release -p tidelog --example durable_appends -- [COUNT] [SIZE]`

use std::time::{Duration, Instant};
use tidelog::{Engine, Options};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let count: usize = args.next().map_or(Ok(1_000), |a| a.parse())?;
    let size: usize = args.next().map_or(Ok(256), |a| a.parse())?;
    let dir = tempfile::tempdir()?;
    let engine = Engine::open(dir.path(), Options::default())?;
    let mut latencies: Vec<Duration> = Vec::with_capacity(count);
    for _ in 0..count {
        let started = Instant::now();
        engine.append_durable(1, vec![7u8; size])?;
        latencies.push(started.elapsed());
    }
    engine.close()?;
    latencies.sort_unstable();
    let p50 = latencies
        .get(latencies.len() / 2)
        .copied()
        .unwrap_or_default();
    println!("{count} durable appends of {size} B: p50 {p50:?}");
    Ok(())
}
