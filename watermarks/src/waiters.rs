//! Parked waiters, indexed so an advance wakes only the waiters it satisfies.
//!
//! Each waiter parks on a condition variable of its own (a blocking `wait_for_*`) or
//! leaves its task's [`Waker`] (a [`WatermarkWait`](crate::WatermarkWait) future),
//! registered under its `(kind, scope)` and ordered by target sequence. Advancing a frontier to sequence `s`
//! pops exactly the entries with target `<= s` and notifies each once. Waiters on other
//! kinds, other lanes or higher targets are not touched. The poison latch drains and
//! notifies everyone. All of this happens under the state's mutex, and a waiter checks
//! its condition under that same mutex before parking, so no wake-up can be lost.

use crate::ids::LaneId;
use crate::point::WatermarkKind;
use crate::sync::{Arc, Condvar};
use std::collections::{BTreeMap, HashMap};
use std::task::Waker;

/// Where a frontier lives: the whole database or one lane.
pub(crate) type Scope = Option<LaneId>;

/// Identifies one parked waiter for removal on timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WaiterKey {
    kind: WatermarkKind,
    scope: Scope,
    target: u64,
    id: u64,
}

/// How to wake one waiter: a parked thread's condition variable, or a future's task.
#[derive(Debug)]
pub(crate) enum Wake {
    /// A thread blocked in `wait_for_*`.
    Thread(Arc<Condvar>),
    /// A task awaiting a [`WatermarkWait`](crate::WatermarkWait).
    Task(Waker),
}

impl Wake {
    fn wake(self) {
        match self {
            Wake::Thread(condvar) => condvar.notify_one(),
            Wake::Task(waker) => waker.wake(),
        }
    }
}

/// The waiters of one `(kind, scope)`, ordered by `(target sequence, waiter id)`.
type Queue = BTreeMap<(u64, u64), Wake>;

#[derive(Debug, Default)]
pub(crate) struct WaiterRegistry {
    parked: HashMap<(WatermarkKind, Scope), Queue>,
    next_id: u64,
    count: usize,
}

impl WaiterRegistry {
    pub(crate) fn park(
        &mut self,
        kind: WatermarkKind,
        scope: Scope,
        target: u64,
        wake: Wake,
    ) -> WaiterKey {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        self.parked
            .entry((kind, scope))
            .or_default()
            .insert((target, id), wake);
        self.count += 1;
        WaiterKey {
            kind,
            scope,
            target,
            id,
        }
    }

    /// Keeps a future's registration current: replaces the waker of the entry `key` if it
    /// is still parked (a future polled again by another task), or parks it anew if an
    /// advance or poison took the entry away. Returns the key to drop it by.
    pub(crate) fn repark_task(&mut self, key: WaiterKey, waker: &Waker) -> WaiterKey {
        if let Some(Wake::Task(parked)) = self
            .parked
            .get_mut(&(key.kind, key.scope))
            .and_then(|queue| queue.get_mut(&(key.target, key.id)))
        {
            if !parked.will_wake(waker) {
                parked.clone_from(waker);
            }
            return key;
        }
        self.park(key.kind, key.scope, key.target, Wake::Task(waker.clone()))
    }

    /// Forgets a waiter that gave up (timeout, or a future dropped). A no-op if an advance already woke it.
    pub(crate) fn unpark(&mut self, key: WaiterKey) {
        let scope_key = (key.kind, key.scope);
        if let Some(queue) = self.parked.get_mut(&scope_key) {
            if queue.remove(&(key.target, key.id)).is_some() {
                self.count -= 1;
            }
            if queue.is_empty() {
                self.parked.remove(&scope_key);
            }
        }
    }

    /// Wakes the waiters of `(kind, scope)` whose target is at or below `reached`.
    pub(crate) fn wake_covered(&mut self, kind: WatermarkKind, scope: Scope, reached: u64) {
        if self.count == 0 {
            return;
        }
        let scope_key = (kind, scope);
        let Some(queue) = self.parked.get_mut(&scope_key) else {
            return;
        };
        while let Some(entry) = queue.first_entry() {
            if entry.key().0 > reached {
                break;
            }
            entry.remove().wake();
            self.count -= 1;
        }
        if queue.is_empty() {
            self.parked.remove(&scope_key);
        }
    }

    /// Wakes every waiter (the poison latch).
    pub(crate) fn wake_all(&mut self) {
        for (_, queue) in self.parked.drain() {
            for (_, wake) in queue {
                wake.wake();
            }
        }
        self.count = 0;
    }

    /// How many waiters are parked.
    pub(crate) fn len(&self) -> usize {
        self.count
    }
}
