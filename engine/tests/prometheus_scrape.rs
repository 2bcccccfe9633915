//! With the `metrics` and `tracing` features, the Prometheus example's scrape shows every
//! metric and span tidelog emits. What could go wrong: a metric or span removed or
//! renamed, or emitted on a path the workload takes but never recorded.
//! `cargo test -p tidelog --features metrics,tracing --test prometheus_scrape`

#[path = "../examples/prometheus.rs"]
#[allow(dead_code)]
mod example;

use std::net::TcpListener;

#[test]
fn a_scrape_over_loopback_shows_every_metric_and_span_of_a_workload() {
    let handle = example::install().unwrap();
    let address = example::serve(handle, TcpListener::bind("127.0.0.1:0").unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    example::workload(dir.path()).unwrap();
    let page = example::scrape(address).unwrap();

    // Histograms are exported as summaries: `NAME{quantile=...}`, `NAME_sum`, `NAME_count`.
    for histogram in [
        "tidelog_fsync_seconds",
        "tidelog_sync_records",
        "tidelog_sync_bytes",
        "tidelog_group_requests",
        "tidelog_segment_prepare_seconds",
        "tidelog_recovery_seconds",
        "tidelog_recovery_bytes_scanned",
    ] {
        let count = value(&page, &format!("{histogram}_count"));
        assert!(count >= 1.0, "{histogram} never recorded:\n{page}");
    }
    assert!(value(&page, "tidelog_sync_records_sum") >= 160.0, "{page}");
    assert!(
        value(&page, "tidelog_sync_bytes_sum") >= 160_000.0,
        "{page}"
    );
    assert!(page.contains("tidelog_queue_depth "), "{page}");
    assert!(
        value(&page, "tidelog_lease_refreshes_total") >= 1.0,
        "{page}"
    );
    assert!(value(&page, "tidelog_lease_losses_total") >= 1.0, "{page}");
    assert!(
        value(&page, "tidelog_poison_events_total{cause=\"lease_lost\"}") >= 1.0,
        "{page}"
    );
    for span in [
        "open",
        "recovery",
        "rotation",
        "checkpoint",
        "truncation",
        "handoff",
    ] {
        let key = format!("tidelog_span_seconds_count{{span=\"tidelog.{span}\"}}");
        assert!(value(&page, &key) >= 1.0, "span {span} missing:\n{page}");
    }
}

/// The value of the sample named exactly `key` (name and labels), or 0.
fn value(page: &str, key: &str) -> f64 {
    page.lines()
        .find_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            (name == key).then(|| value.parse().ok()).flatten()
        })
        .unwrap_or(0.0)
}
