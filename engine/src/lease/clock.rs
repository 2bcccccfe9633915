//! The wall clock that lease expiry is judged by, injectable so that expiry can be tested
//! without waiting.
//!
//! Expiry compares wall-clock milliseconds written by one process with the clock of
//! another, so every process sharing a lease must keep its clock synchronized (NTP) to
//! well within the TTL; see `docs/lease.md` for the margins the holder keeps.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The one wall-clock trait of tidelog (the watermarks stamp points with it too). The
/// system clock reads a clock set before 1970 as 0: every lease then looks live, which
/// fails closed (nobody can poach) rather than open.
pub use tidelog_watermarks::{Clock, SystemClock};

/// A clock that reads what the test set. Clones share the same time, so one clone can be
/// handed to a [`LeaseManager`](super::LeaseManager) and the other kept to move time.
#[derive(Debug, Default, Clone)]
pub struct ManualClock {
    now_ms: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock reading `now_ms`.
    #[must_use]
    pub fn new(now_ms: u64) -> Self {
        ManualClock {
            now_ms: Arc::new(AtomicU64::new(now_ms)),
        }
    }

    /// Sets the time, forwards or backwards.
    pub fn set_ms(&self, now_ms: u64) {
        self.now_ms.store(now_ms, Ordering::SeqCst);
    }

    /// Moves the time forward by `delta` (whole milliseconds), saturating.
    pub fn advance(&self, delta: Duration) {
        let delta_ms = u64::try_from(delta.as_millis()).unwrap_or(u64::MAX);
        // The closure always returns `Some`, so the update cannot fail.
        let _ = self
            .now_ms
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |current| {
                Some(current.saturating_add(delta_ms))
            });
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.now_ms.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_of_a_manual_clock_share_their_time() {
        let clock = ManualClock::new(1_000);
        let handed_out = clock.clone();
        clock.advance(Duration::from_millis(250));
        assert_eq!(handed_out.now_ms(), 1_250);
        handed_out.set_ms(5);
        assert_eq!(clock.now_ms(), 5);
    }

    #[test]
    fn advancing_past_the_end_of_time_saturates() {
        let clock = ManualClock::new(u64::MAX - 1);
        clock.advance(Duration::from_millis(10));
        assert_eq!(clock.now_ms(), u64::MAX);
    }

    #[test]
    fn the_system_clock_reads_after_2020() {
        assert!(SystemClock.now_ms() > 1_577_836_800_000);
    }
}
