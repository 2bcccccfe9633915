//! Wall clocks for stamping points. The system clock for production, a manual one for
//! tests that need to control time (a clock that stalls or steps backwards).

use std::fmt::Debug;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of wall-clock milliseconds since the Unix epoch. It may go backwards; the
/// watermark state never lets stamped points do so (see `WatermarkState::stamp`).
pub trait Clock: Send + Sync + Debug {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;
}

/// The operating system's real-time clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl SystemClock {
    /// The system clock.
    #[must_use]
    pub fn new() -> Self {
        SystemClock
    }
}

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        // A clock before 1970 is reported as 0 rather than failing: stamps stay monotonic
        // through `WatermarkState::stamp` regardless.
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }
}

/// A clock that shows what the test sets, for deterministic stamps and for lease expiry
/// without waiting (the one manual clock of tidelog: the watermarks and the lease take
/// it alike). Clones share the same time, so one clone can be handed out (in an `Arc`,
/// as a `dyn Clock`) and the other kept to move time.
#[derive(Debug, Default, Clone)]
pub struct ManualClock {
    now_ms: Arc<AtomicU64>,
}

impl ManualClock {
    /// A manual clock showing `now_ms`.
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
