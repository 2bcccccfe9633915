//! The one-shot reply slot between an appender and the writer thread.
//!
//! The appender parks on the slot; the writer fills it exactly once. If the writer drops
//! the reply side without filling it (it stopped), the slot is marked abandoned and the
//! appender wakes with `None`. An async appender polls the slot instead of parking
//! ([`Pending::poll_reply`]): its task's waker is kept in the slot and woken by the same
//! fill or abandon. Built on the watermarks crate's `sync` shim, so the loom
//! model in `tests/loom_handoff.rs` checks this very code: no receipt is lost, and no
//! appender hangs when the writer stops.

use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};
use tidelog_watermarks::sync::{Arc, Condvar, Mutex};

#[derive(Debug)]
enum SlotState<T> {
    Empty,
    Filled(T),
    Abandoned,
    Taken,
}

#[derive(Debug)]
struct Slot<T> {
    state: Mutex<(SlotState<T>, Option<Waker>)>,
    ready: Condvar,
}

/// The writer's side: fill it once with [`ReplyTo::send`].
#[derive(Debug)]
pub struct ReplyTo<T> {
    slot: Option<Arc<Slot<T>>>,
}

/// The appender's side: [`Pending::wait`] for the reply.
#[derive(Debug)]
pub struct Pending<T> {
    slot: Arc<Slot<T>>,
}

/// A connected pair of reply slot ends.
pub fn oneshot<T>() -> (ReplyTo<T>, Pending<T>) {
    let slot = Arc::new(Slot {
        state: Mutex::new((SlotState::Empty, None)),
        ready: Condvar::new(),
    });
    (
        ReplyTo {
            slot: Some(slot.clone()),
        },
        Pending { slot },
    )
}

impl<T> ReplyTo<T> {
    /// Delivers the reply and wakes the appender.
    pub fn send(mut self, value: T) {
        if let Some(slot) = self.slot.take() {
            Self::finish(&slot, SlotState::Filled(value));
        }
    }

    fn finish(slot: &Slot<T>, state: SlotState<T>) {
        let waker = {
            let mut guard = slot.state.lock();
            guard.0 = state;
            slot.ready.notify_one();
            guard.1.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl<T> Drop for ReplyTo<T> {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            Self::finish(&slot, SlotState::Abandoned);
        }
    }
}

impl<T> Pending<T> {
    /// Blocks until the writer replies (`Some`) or drops the request unanswered (`None`).
    pub fn wait(self) -> Option<T> {
        let mut guard = self.slot.state.lock();
        loop {
            match std::mem::replace(&mut guard.0, SlotState::Taken) {
                SlotState::Filled(value) => return Some(value),
                SlotState::Abandoned | SlotState::Taken => return None,
                SlotState::Empty => {
                    guard.0 = SlotState::Empty;
                    let until = Instant::now() + Duration::from_secs(3600);
                    guard = self.slot.ready.wait_until(guard, until).0;
                }
            }
        }
    }

    /// The reply if it is there (`Ready(Some)`), `Ready(None)` if the writer dropped the
    /// request unanswered (or the reply was already taken); otherwise keeps `cx`'s waker
    /// for the writer to wake and returns `Pending`.
    pub fn poll_reply(&self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let mut guard = self.slot.state.lock();
        match std::mem::replace(&mut guard.0, SlotState::Taken) {
            SlotState::Filled(value) => Poll::Ready(Some(value)),
            SlotState::Abandoned | SlotState::Taken => Poll::Ready(None),
            SlotState::Empty => {
                guard.0 = SlotState::Empty;
                match &mut guard.1 {
                    Some(waker) if waker.will_wake(cx.waker()) => {}
                    slot => *slot = Some(cx.waker().clone()),
                }
                Poll::Pending
            }
        }
    }
}
