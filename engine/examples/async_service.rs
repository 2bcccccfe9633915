//! An async service under tokio: request handlers append records and answer only once
//! they are durable, without blocking a runtime thread on the sync; a background task
//! awaits the visible watermark to publish progress. Any runtime works: the futures park
//! their task's waker in the engine's waiter lists.
//!
//! `cargo run -p tidelog --example async_service`

use std::time::Duration;
use tidelog::{Engine, Options};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let engine = Engine::open(dir.path(), Options::default())?;

    // A "handler" per request: 200 concurrent requests over 8 lanes (accounts).
    let handlers: Vec<_> = (0..200u32)
        .map(|request| {
            let engine = engine.clone();
            tokio::spawn(async move {
                let event = format!("deposit #{request}");
                // Answered after the group commit that covers it.
                engine.append_durable_async(request % 8, event).await
            })
        })
        .collect();

    let mut last = None;
    for handler in handlers {
        let receipt = handler.await??;
        last = Some(last.map_or(receipt.point, |p: tidelog::HlcPoint| {
            p.max_by_seq(receipt.point)
        }));
    }
    let last = last.ok_or("no receipts")?;

    // A watcher waits (asynchronously, with a timeout from the runtime) until everything
    // is visible to readers and subscribers.
    let marks = engine.watermark_handle();
    let visible =
        tokio::time::timeout(Duration::from_secs(5), marks.wait_for_visible_async(last)).await??;
    println!(
        "200 durable deposits, visible up to global sequence {}; in {} syncs",
        visible.global_sequence,
        engine.io_counters().0
    );

    // The blocking close is fine here: it runs once, at shutdown.
    tokio::task::spawn_blocking(move || engine.close()).await??;
    Ok(())
}
