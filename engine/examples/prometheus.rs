//! tidelog's metrics and spans, exported to Prometheus on loopback.
//!
//! Installs the `metrics` facade's Prometheus recorder and a small `tracing` subscriber
//! that turns tidelog's spans into a `tidelog_span_seconds{span=...}` histogram, serves
//! `GET /metrics` on 127.0.0.1, runs a workload that touches every instrumented path
//! (durable appends across rotations, a checkpoint, a truncation, a reopen, a hand-off to
//! a second handle, a writer deposed from its lease), scrapes itself once and prints the
//! tidelog lines. With a number of seconds as argument it keeps serving that long, for a
//! real Prometheus (`scrape_configs: - targets: ['127.0.0.1:PORT']`).
//!
//! `cargo run -p tidelog --features metrics,tracing --example prometheus [-- SECONDS]`

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tidelog::lease::{LeaseManager, MemoryBackend};
use tidelog::{CheckpointOptions, Database, Engine, LeaseOptions, Options};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let seconds: u64 = std::env::args().nth(1).map_or(Ok(0), |a| a.parse())?;
    let handle = install()?;
    let address = serve(handle, TcpListener::bind("127.0.0.1:0")?)?;
    println!("serving http://{address}/metrics");
    let dir = tempfile::tempdir()?;
    workload(dir.path())?;
    let page = scrape(address)?;
    for line in page.lines().filter(|l| l.starts_with("tidelog_")) {
        println!("{line}");
    }
    if seconds > 0 {
        println!("serving for {seconds} s more");
        std::thread::sleep(Duration::from_secs(seconds));
    }
    Ok(())
}

/// Installs the Prometheus recorder (metrics) and the span-timing subscriber (tracing),
/// process-wide.
pub fn install() -> Result<PrometheusHandle, Box<dyn std::error::Error>> {
    let handle = PrometheusBuilder::new().install_recorder()?;
    tracing::subscriber::set_global_default(SpanTimes::default())?;
    Ok(handle)
}

/// Serves the handle's rendering on every connection to `listener`, on a thread of its
/// own; returns the address.
pub fn serve(
    handle: PrometheusHandle,
    listener: TcpListener,
) -> Result<SocketAddr, Box<dyn std::error::Error>> {
    let address = listener.local_addr()?;
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            // A client that hangs up early is its own problem.
            let _ = answer(&handle, stream);
        }
    });
    Ok(address)
}

fn answer(handle: &PrometheusHandle, stream: TcpStream) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    // The request line and headers, up to the blank line.
    while reader.read_line(&mut line)? > 2 {
        line.clear();
    }
    let body = handle.render();
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// One `GET /metrics` over plain HTTP/1.1; the body.
pub fn scrape(address: SocketAddr) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(address)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    Ok(body)
}

/// Touches every instrumented path of the engine, in `dir`.
pub fn workload(dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let options = Options::default()
        .segment_size(64 * 1024)
        .max_record_bytes(4 * 1024)
        .max_batch_bytes(16 * 1024)
        .checkpoints(CheckpointOptions {
            keep_last: 1,
            log_for_last: 1,
            auto_truncate: false,
        });
    let db = dir.join("events");
    let engine = Engine::open(&db, options.clone())?;
    // Durable appends from 4 threads: groups, syncs, rotations, segment preparation.
    std::thread::scope(|scope| {
        for lane in 0..4u32 {
            let engine = engine.clone();
            scope.spawn(move || {
                for _ in 0..40 {
                    engine
                        .append_durable(lane, vec![7u8; 1_000])
                        .expect("append");
                }
            });
        }
    });
    let point = engine.sync()?;
    engine.checkpoint(point, b"state")?;
    engine.truncate_log()?;
    engine.close()?;

    // Reopen (recovery), with a second handle following, then hand the log over to it.
    let writer = Engine::open(&db, options.clone())?;
    let follower = Database::open(&db, options)?;
    writer.close()?;
    follower.acquire()?;
    follower.close()?;

    // A writer whose lease is short (refreshed often) and then taken: a lease loss and a
    // poison event.
    let backend = Arc::new(MemoryBackend::new());
    let mut lease = LeaseOptions::default();
    lease.backend = Some(backend.clone());
    lease.ttl = Duration::from_millis(300);
    let deposed = Engine::open(dir.join("deposed"), Options::default().lease(lease))?;
    let refreshed_by = Instant::now() + Duration::from_secs(10);
    let first = deposed.writer_lease().map(|l| l.expires_at_ms);
    // A refresh moves the lease's expiry; wait (bounded) for one to happen.
    while deposed.writer_lease().map(|l| l.expires_at_ms) == first && Instant::now() < refreshed_by
    {
        std::thread::sleep(Duration::from_millis(10));
    }
    let current = LeaseManager::new(backend.clone())
        .current("writer")?
        .ok_or("no lease")?;
    LeaseManager::new(backend).take_over(
        &current,
        "usurper",
        Duration::from_secs(60),
        current.term + 1,
    )?;
    let lost_by = Instant::now() + Duration::from_secs(10);
    while deposed.failure().is_none() && Instant::now() < lost_by {
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(deposed);
    Ok(())
}

/// A `tracing` subscriber that times tidelog's spans (`tidelog.*`) from creation to
/// close into `tidelog_span_seconds{span=NAME}`.
#[derive(Default)]
struct SpanTimes {
    next: AtomicU64,
    open: Mutex<HashMap<u64, (&'static str, Instant)>>,
}

impl tracing::Subscriber for SpanTimes {
    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        metadata.is_span() && metadata.name().starts_with("tidelog.")
    }

    fn new_span(&self, span: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.insert(id, (span.metadata().name(), Instant::now()));
        tracing::span::Id::from_u64(id)
    }

    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}

    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}

    fn event(&self, _: &tracing::Event<'_>) {}

    fn enter(&self, _: &tracing::span::Id) {}

    fn exit(&self, _: &tracing::span::Id) {}

    fn try_close(&self, id: tracing::span::Id) -> bool {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((name, started)) = open.remove(&id.into_u64()) {
            metrics::histogram!("tidelog_span_seconds", "span" => name)
                .record(started.elapsed().as_secs_f64());
        }
        true
    }
}
