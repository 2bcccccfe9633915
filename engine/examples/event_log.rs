//! An event log with appliers: orders are appended on a lane per customer, two appliers
//! (a running total and a per-customer count) consume them through subscriptions and
//! report how far they applied; a checkpoint of the totals is taken at the applied point,
//! and the log is reopened to show the state coming back from the checkpoint plus the
//! records after it.
//!
//! `cargo run -p tidelog --example event_log`

use std::collections::BTreeMap;
use std::time::Duration;
use tidelog::{Engine, HlcPoint, Options, SubscriptionTarget};

const CUSTOMERS: u32 = 4;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let engine = Engine::open(dir.path(), Options::default())?;

    // Two consumers, each with its own subscription and applier registration.
    let totals = engine.register_applier("revenue", HlcPoint::default());
    let counts = engine.register_applier("orders-per-customer", HlcPoint::default());
    let mut revenue_feed = engine.subscribe(SubscriptionTarget::All, 1);
    let mut count_feed = engine.subscribe(SubscriptionTarget::All, 1);

    // Producers: 4 threads, one per customer lane, 25 durable orders each.
    std::thread::scope(|scope| {
        for customer in 1..=CUSTOMERS {
            let engine = engine.clone();
            scope.spawn(move || {
                for order in 1..=25u64 {
                    let amount = u64::from(customer) * 100 + order;
                    engine
                        .append_durable(customer, amount.to_string())
                        .expect("append");
                }
            });
        }
    });

    let mut revenue = 0u64;
    while let Some(record) = revenue_feed.next_timeout(Duration::from_millis(200))? {
        revenue += std::str::from_utf8(record.payload())?.parse::<u64>()?;
        totals.report(record.point());
    }
    let mut per_customer: BTreeMap<u32, u64> = BTreeMap::new();
    while let Some(record) = count_feed.next_timeout(Duration::from_millis(200))? {
        *per_customer.entry(record.lane().0).or_default() += 1;
        counts.report(record.point());
    }
    let applied = engine.watermarks().global.applied_hlc;
    println!("revenue {revenue}, orders per customer {per_customer:?}");
    println!("applied up to global sequence {}", applied.global_sequence);

    // Snapshot the revenue at the applied point; the log before it may now be truncated.
    engine.checkpoint(applied, revenue.to_string().as_bytes())?;
    engine.append_durable(1, "1000")?; // one more order after the checkpoint
    drop((totals, counts, revenue_feed, count_feed));
    engine.close()?;

    // Restart: state from the checkpoint, then the records after it.
    let engine = Engine::open(dir.path(), Options::default())?;
    let checkpoint = engine.latest_checkpoint()?.ok_or("no checkpoint")?;
    let mut restored: u64 = std::str::from_utf8(checkpoint.state())?.parse()?;
    let mut rest = engine.subscribe(
        SubscriptionTarget::All,
        checkpoint.point().global_sequence + 1,
    );
    while let Some(record) = rest.next_timeout(Duration::from_millis(200))? {
        restored += std::str::from_utf8(record.payload())?.parse::<u64>()?;
    }
    println!("after reopen: revenue {restored} (checkpoint + replay)");
    assert_eq!(restored, revenue + 1000);
    engine.close()?;
    Ok(())
}
