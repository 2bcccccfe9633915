//! The async form of the waits: a future that parks its task's waker in the same targeted
//! waiter lists the blocking `wait_for_*` use.

use crate::error::WaitError;
use crate::handle::WatermarkAdvanceHandle;
use crate::ids::LaneId;
use crate::point::{HlcPoint, WatermarkKind};
use crate::waiters::{WaiterKey, Wake};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// A wait for one watermark (global or one lane's) to cover a target, as a [`Future`].
///
/// Made by [`WatermarkAdvanceHandle::wait_for_async`] and the named
/// `wait_for_<kind>_async` / `wait_for_<kind>_on_lane_async` methods. It needs no
/// particular runtime: polling it checks the frontier under the state's lock and, when the
/// target is not covered yet, leaves the task's [`Waker`](std::task::Waker) in the waiter
/// list of its `(kind, lane)`, ordered by target. An advance wakes only the futures (and
/// threads) whose target it covers; the poison latch, which lease loss also sets in the
/// engine, wakes every one and they resolve to [`WaitError::Poisoned`]. Dropping the future
/// takes its entry out of the list.
///
/// There is no timeout: wrap it in your runtime's (`tokio::time::timeout`, for instance);
/// a future dropped on timeout unregisters itself. Wakers are called with the state's lock
/// held, so a waker must not poll the future inline (no runtime does).
///
/// ```
/// use std::sync::Arc;
/// use tidelog_watermarks::{HlcPoint, SystemClock, WatermarkState};
///
/// let handle = WatermarkState::handle(Arc::new(SystemClock::new()));
/// let point = HlcPoint { wall_ms: 1, global_sequence: 1 };
/// let durable = handle.wait_for_durable_on_lane_async(7, point);
/// {
///     let mut state = handle.lock();
///     state.advance_accepted_on_lane(7, point);
///     state.advance_written_on_lane(7, point);
///     state.advance_durable(point);
/// }
/// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     let mut f = std::pin::pin!(f);
/// #     let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
/// #     loop { if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; } }
/// # }
/// assert_eq!(block_on(durable), Ok(point));
/// ```
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct WatermarkWait {
    handle: WatermarkAdvanceHandle,
    kind: WatermarkKind,
    lane: Option<LaneId>,
    target: HlcPoint,
    parked: Option<WaiterKey>,
}

impl WatermarkWait {
    pub(crate) fn new(
        handle: WatermarkAdvanceHandle,
        kind: WatermarkKind,
        lane: Option<LaneId>,
        target: HlcPoint,
    ) -> Self {
        WatermarkWait {
            handle,
            kind,
            lane,
            target,
            parked: None,
        }
    }

    /// The watermark waited on.
    #[must_use]
    pub fn kind(&self) -> WatermarkKind {
        self.kind
    }

    /// The lane waited on, or `None` for the global frontier.
    #[must_use]
    pub fn lane(&self) -> Option<LaneId> {
        self.lane
    }

    /// The point waited for.
    #[must_use]
    pub fn target(&self) -> HlcPoint {
        self.target
    }
}

impl Future for WatermarkWait {
    type Output = Result<HlcPoint, WaitError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let handle = this.handle.clone();
        let mut state = handle.lock();
        if state.is_poisoned() {
            // `wake_all` already dropped every parked entry.
            this.parked = None;
            return Poll::Ready(Err(WaitError::Poisoned {
                watermark: this.kind,
                lane: this.lane,
                target: this.target,
            }));
        }
        let current = state.current(this.kind, this.lane);
        if current.covers(this.target) {
            if let Some(key) = this.parked.take() {
                state.waiters.unpark(key);
            }
            return Poll::Ready(Ok(current));
        }
        this.parked = Some(match this.parked {
            Some(key) => state.waiters.repark_task(key, cx.waker()),
            None => state.waiters.park(
                this.kind,
                this.lane,
                this.target.global_sequence,
                Wake::Task(cx.waker().clone()),
            ),
        });
        Poll::Pending
    }
}

impl Drop for WatermarkWait {
    fn drop(&mut self) {
        if let Some(key) = self.parked.take() {
            self.handle.lock().waiters.unpark(key);
        }
    }
}
