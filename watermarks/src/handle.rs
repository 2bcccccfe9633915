//! The shared handle: the writer advances through `lock()`, any thread waits on it.

use crate::clock::Clock;
use crate::error::WaitError;
use crate::future::WatermarkWait;
use crate::ids::LaneId;
use crate::point::{HlcPoint, WatermarkKind};
use crate::state::WatermarkState;
use crate::sync::{Arc, Condvar, Mutex, MutexGuard};
use crate::view::WatermarkView;
use crate::waiters::Wake;
use std::time::{Duration, Instant};

/// A cloneable handle on one [`WatermarkState`]. Cheap to clone; all clones see the same
/// frontiers.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use tidelog_watermarks::{HlcPoint, SystemClock, WatermarkState};
///
/// let handle = WatermarkState::handle(Arc::new(SystemClock::new()));
/// let point = HlcPoint { wall_ms: 1, global_sequence: 1 };
/// let waiter = {
///     let handle = handle.clone();
///     std::thread::spawn(move || handle.wait_for_durable(point, Duration::from_secs(5)))
/// };
/// {
///     let mut state = handle.lock();
///     state.advance_accepted_on_lane(7, point);
///     state.advance_written_on_lane(7, point);
///     state.advance_durable(point);
/// }
/// assert!(waiter.join().unwrap().is_ok());
/// assert_eq!(handle.lock().lane_watermark(7).durable_hlc, point);
/// ```
#[derive(Debug, Clone)]
pub struct WatermarkAdvanceHandle {
    state: Arc<Mutex<WatermarkState>>,
}

macro_rules! named_waits {
    ($($kind:ident: $global:ident, $lane:ident, $global_async:ident, $lane_async:ident;)*) => {
        $(
            #[doc = concat!("The global ", stringify!($kind), " watermark covering `target`, as a future; see [`Self::wait_for_async`].")]
            pub fn $global_async(&self, target: HlcPoint) -> WatermarkWait {
                self.wait_for_async(WatermarkKind::$kind, target)
            }

            #[doc = concat!("`lane`'s ", stringify!($kind), " watermark covering `target`, as a future; see [`Self::wait_for_async`].")]
            pub fn $lane_async(&self, lane: impl Into<LaneId>, target: HlcPoint) -> WatermarkWait {
                self.wait_for_on_lane_async(WatermarkKind::$kind, lane, target)
            }

            #[doc = concat!("Blocks until the global ", stringify!($kind), " watermark covers `target`; see [`Self::wait_for`].")]
            pub fn $global(&self, target: HlcPoint, timeout: Duration) -> Result<HlcPoint, WaitError> {
                self.wait_for(WatermarkKind::$kind, target, timeout)
            }

            #[doc = concat!("Blocks until `lane`'s ", stringify!($kind), " watermark covers `target`; see [`Self::wait_for`].")]
            pub fn $lane(
                &self,
                lane: impl Into<LaneId>,
                target: HlcPoint,
                timeout: Duration,
            ) -> Result<HlcPoint, WaitError> {
                self.wait_for_on_lane(WatermarkKind::$kind, lane, target, timeout)
            }
        )*
    };
}

impl WatermarkState {
    /// A new, empty state behind a shareable handle.
    pub fn handle(clock: std::sync::Arc<dyn Clock>) -> WatermarkAdvanceHandle {
        WatermarkAdvanceHandle::new(WatermarkState::new(clock))
    }
}

impl WatermarkAdvanceHandle {
    /// Shares `state`.
    pub fn new(state: WatermarkState) -> Self {
        WatermarkAdvanceHandle {
            state: Arc::new(Mutex::new(state)),
        }
    }

    /// Locks the state to advance or read it. Advances made through the guard wake the
    /// waiters they satisfy. Keep the guard briefly: waiters re-check under this lock.
    pub fn lock(&self) -> MutexGuard<'_, WatermarkState> {
        self.state.lock()
    }

    /// Sets the poison latch (see [`WatermarkState::mark_writer_crashed`]).
    pub fn mark_writer_crashed(&self) {
        self.lock().mark_writer_crashed();
    }

    /// Whether the poison latch is set.
    #[must_use]
    pub fn is_poisoned(&self) -> bool {
        self.lock().is_poisoned()
    }

    /// A serializable view of all frontiers.
    #[must_use]
    pub fn snapshot_view(&self) -> WatermarkView {
        self.lock().snapshot_view()
    }

    /// Blocks until the global `kind` watermark covers `target` (by sequence; equal is
    /// covered) and returns the frontier then.
    ///
    /// # Errors
    /// [`WaitError::Poisoned`] at once when the poison latch is set, even if the target
    /// was covered before; [`WaitError::WaitTimeout`] when `timeout` passes first.
    pub fn wait_for(
        &self,
        kind: WatermarkKind,
        target: HlcPoint,
        timeout: Duration,
    ) -> Result<HlcPoint, WaitError> {
        self.wait(kind, None, target, timeout)
    }

    /// Blocks until `lane`'s `kind` watermark covers `target`; otherwise as
    /// [`Self::wait_for`].
    ///
    /// # Errors
    /// As [`Self::wait_for`].
    pub fn wait_for_on_lane(
        &self,
        kind: WatermarkKind,
        lane: impl Into<LaneId>,
        target: HlcPoint,
        timeout: Duration,
    ) -> Result<HlcPoint, WaitError> {
        self.wait(kind, Some(lane.into()), target, timeout)
    }

    /// The global `kind` watermark covering `target` (by sequence), as a [`Future`]
    /// that resolves to the frontier then, like [`Self::wait_for`] without a timeout
    /// (wrap it in your runtime's). Runtime-agnostic: see [`WatermarkWait`].
    ///
    /// # Errors
    /// The future resolves to [`WaitError::Poisoned`] when the poison latch is set, even
    /// if the target was covered before.
    ///
    /// [`Future`]: std::future::Future
    pub fn wait_for_async(&self, kind: WatermarkKind, target: HlcPoint) -> WatermarkWait {
        WatermarkWait::new(self.clone(), kind, None, target)
    }

    /// `lane`'s `kind` watermark covering `target`, as a future; otherwise as
    /// [`Self::wait_for_async`].
    ///
    /// # Errors
    /// As [`Self::wait_for_async`].
    pub fn wait_for_on_lane_async(
        &self,
        kind: WatermarkKind,
        lane: impl Into<LaneId>,
        target: HlcPoint,
    ) -> WatermarkWait {
        WatermarkWait::new(self.clone(), kind, Some(lane.into()), target)
    }

    named_waits! {
        Accepted: wait_for_accepted, wait_for_accepted_on_lane, wait_for_accepted_async, wait_for_accepted_on_lane_async;
        Written: wait_for_written, wait_for_written_on_lane, wait_for_written_async, wait_for_written_on_lane_async;
        Durable: wait_for_durable, wait_for_durable_on_lane, wait_for_durable_async, wait_for_durable_on_lane_async;
        Visible: wait_for_visible, wait_for_visible_on_lane, wait_for_visible_async, wait_for_visible_on_lane_async;
        Applied: wait_for_applied, wait_for_applied_on_lane, wait_for_applied_async, wait_for_applied_on_lane_async;
        Emitted: wait_for_emitted, wait_for_emitted_on_lane, wait_for_emitted_async, wait_for_emitted_on_lane_async;
    }

    fn wait(
        &self,
        kind: WatermarkKind,
        lane: Option<LaneId>,
        target: HlcPoint,
        timeout: Duration,
    ) -> Result<HlcPoint, WaitError> {
        let started = Instant::now();
        let deadline = started.checked_add(timeout);
        let mut state = self.lock();
        let mut parked = None;
        let condvar = Arc::new(Condvar::new());
        loop {
            if state.is_poisoned() {
                // `wake_all` already dropped every parked entry.
                return Err(WaitError::Poisoned {
                    watermark: kind,
                    lane,
                    target,
                });
            }
            let current = state.current(kind, lane);
            if current.covers(target) {
                if let Some(key) = parked.take() {
                    state.waiters.unpark(key);
                }
                return Ok(current);
            }
            let now = Instant::now();
            if deadline.is_some_and(|deadline| now >= deadline) {
                if let Some(key) = parked.take() {
                    state.waiters.unpark(key);
                }
                let waited_ms =
                    u64::try_from(now.duration_since(started).as_millis()).unwrap_or(u64::MAX);
                return Err(WaitError::WaitTimeout {
                    watermark: kind,
                    lane,
                    target,
                    waited_ms,
                });
            }
            if parked.is_none() {
                parked = Some(state.waiters.park(
                    kind,
                    lane,
                    target.global_sequence,
                    Wake::Thread(condvar.clone()),
                ));
            }
            // An unbounded timeout (deadline overflow) waits in long slices.
            let until = deadline.unwrap_or_else(|| now + Duration::from_secs(3600));
            state = condvar.wait_until(state, until).0;
        }
    }
}
