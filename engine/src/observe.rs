//! Metrics and tracing, each behind its cargo feature (`metrics`: through the `metrics`
//! facade, to whatever recorder the program installs; `tracing`: spans through the
//! `tracing` crate). With a feature off, its macros here expand to nothing: no call, no
//! clock read, no argument evaluated, on the append path or anywhere else.
//!
//! Names (all prefixed `tidelog_`; durations in seconds): `fsync_seconds`,
//! `sync_records`, `sync_bytes` (per sync), `queue_depth` (requests waiting when a group
//! starts), `group_requests` (requests per group commit), `segment_prepare_seconds`
//! (from `tidelog-wal`), `recovery_seconds`, `recovery_bytes_scanned`,
//! `lease_refreshes_total`, `lease_losses_total`, `poison_events_total` (by `cause`).
//! Spans: `tidelog.open`, `tidelog.recovery`, `tidelog.rotation` (from `tidelog-wal`),
//! `tidelog.checkpoint`, `tidelog.truncation`, `tidelog.handoff`.

/// Runs its statements only with the `metrics` feature; otherwise expands to nothing.
macro_rules! metric {
    ($($body:tt)*) => {
        #[cfg(feature = "metrics")]
        {
            $($body)*
        }
    };
}

/// Enters a span named `$name` until the end of the enclosing block, only with the
/// `tracing` feature; otherwise expands to nothing.
macro_rules! span {
    ($name:literal $(, $($field:tt)*)?) => {
        #[cfg(feature = "tracing")]
        let _span = tracing::info_span!($name $(, $($field)*)?).entered();
    };
}

pub(crate) use {metric, span};

/// What the writer counts between syncs for the per-sync metrics: nothing without the
/// `metrics` feature (a zero-sized type whose methods are empty).
#[derive(Debug, Default)]
pub(crate) struct SyncMeter {
    #[cfg(feature = "metrics")]
    unsynced: (u64, u64),
    #[cfg(feature = "metrics")]
    in_flight: (u64, u64),
}

impl SyncMeter {
    /// A group commit of `requests` requests carrying `records` records and `bytes`
    /// payload bytes was written.
    #[inline(always)]
    pub(crate) fn group(&mut self, requests: usize, records: usize, bytes: u64) {
        metric! {
            metrics::histogram!("tidelog_group_requests").record(requests as f64);
            self.unsynced.0 += records as u64;
            self.unsynced.1 += bytes;
        }
        let _ = (requests, records, bytes);
    }

    /// A sync of everything written so far started.
    #[inline(always)]
    pub(crate) fn sync_started(&mut self) {
        metric! {
            self.in_flight = std::mem::take(&mut self.unsynced);
        }
    }

    /// That sync succeeded after `took`.
    #[inline(always)]
    pub(crate) fn synced(&mut self, took: std::time::Duration) {
        metric! {
            let (records, bytes) = std::mem::take(&mut self.in_flight);
            metrics::histogram!("tidelog_fsync_seconds").record(took.as_secs_f64());
            metrics::histogram!("tidelog_sync_records").record(records as f64);
            metrics::histogram!("tidelog_sync_bytes").record(bytes as f64);
        }
        let _ = took;
    }
}

/// Times a step for a histogram (`metrics` feature); a zero-sized no-op without it.
#[derive(Debug)]
pub(crate) struct Stopwatch {
    #[cfg(feature = "metrics")]
    started: std::time::Instant,
}

impl Stopwatch {
    /// Starts timing.
    #[inline(always)]
    pub(crate) fn start() -> Self {
        Stopwatch {
            #[cfg(feature = "metrics")]
            started: std::time::Instant::now(),
        }
    }

    /// Records the time since [`Stopwatch::start`] in seconds into `histogram`.
    #[inline(always)]
    pub(crate) fn record(self, histogram: &'static str) {
        metric! {
            metrics::histogram!(histogram).record(self.started.elapsed().as_secs_f64());
        }
        let _ = histogram;
    }
}

/// The name a poison event is counted under.
#[cfg(feature = "metrics")]
pub(crate) fn cause(failure: &crate::WriterFailure) -> &'static str {
    match failure {
        crate::WriterFailure::Append(_) => "append",
        crate::WriterFailure::Sync(_) => "sync",
        crate::WriterFailure::LeaseLost(_) => "lease_lost",
        crate::WriterFailure::LeaseExpired => "lease_expired",
        crate::WriterFailure::Invariant { .. } => "invariant",
    }
}

#[cfg(test)]
mod tests {
    /// Without the `metrics` feature the writer carries nothing for metrics and the
    /// timers read no clock: they are zero-sized (their methods' bodies are compiled out).
    #[test]
    #[cfg(not(feature = "metrics"))]
    fn without_the_metrics_feature_the_meters_are_zero_sized() {
        assert_eq!(std::mem::size_of::<super::SyncMeter>(), 0);
        assert_eq!(std::mem::size_of::<super::Stopwatch>(), 0);
    }
}
