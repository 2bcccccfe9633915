//! The one place that chooses between real and model-checked synchronization.
//!
//! Normal builds use `parking_lot` and `std`; under `RUSTFLAGS="--cfg loom"` the same names
//! resolve to loom's types, so the loom models in `tests/loom.rs` drive the real watermark
//! code, not a copy of it. The API is by-value (`wait` takes and returns the guard) because
//! that is the shape both backends can provide. Public so the engine's own handoff
//! primitives use the same switch.

#[cfg(not(loom))]
mod imp {
    pub use parking_lot::MutexGuard;
    pub use std::sync::Arc;
    use std::time::Instant;

    /// A mutex whose `lock` cannot fail (parking_lot has no poisoning).
    #[derive(Debug, Default)]
    pub struct Mutex<T>(parking_lot::Mutex<T>);

    impl<T> Mutex<T> {
        /// A mutex holding `value`.
        pub fn new(value: T) -> Self {
            Mutex(parking_lot::Mutex::new(value))
        }

        /// Locks the mutex, blocking until it is free.
        pub fn lock(&self) -> MutexGuard<'_, T> {
            self.0.lock()
        }
    }

    /// A condition variable used by exactly one waiter (see `waiters.rs`).
    #[derive(Debug, Default)]
    pub struct Condvar(parking_lot::Condvar);

    impl Condvar {
        /// A condition variable nobody waits on yet.
        pub fn new() -> Self {
            Condvar(parking_lot::Condvar::new())
        }

        /// Wakes one waiter, if any.
        pub fn notify_one(&self) {
            self.0.notify_one();
        }

        /// Blocks until notified or `deadline`; returns the guard and whether it timed out.
        pub fn wait_until<'a, T>(
            &self,
            mut guard: MutexGuard<'a, T>,
            deadline: Instant,
        ) -> (MutexGuard<'a, T>, bool) {
            let result = self.0.wait_until(&mut guard, deadline);
            (guard, result.timed_out())
        }
    }
}

#[cfg(loom)]
mod imp {
    pub use loom::sync::Arc;
    pub use loom::sync::MutexGuard;
    use std::time::Instant;

    /// loom's mutex, with poisoning turned into a panic (a panic inside a model is a
    /// failure of the model anyway).
    #[derive(Debug)]
    pub struct Mutex<T>(loom::sync::Mutex<T>);

    impl<T> Mutex<T> {
        /// A mutex holding `value`.
        pub fn new(value: T) -> Self {
            Mutex(loom::sync::Mutex::new(value))
        }

        /// Locks the mutex, blocking until it is free.
        pub fn lock(&self) -> MutexGuard<'_, T> {
            self.0
                .lock()
                .expect("a model thread panicked while holding the lock")
        }
    }

    /// loom's condition variable. loom does not model time: a timed wait is an untimed
    /// wait, so a lost wake-up shows up as a deadlock that loom reports.
    #[derive(Debug)]
    pub struct Condvar(loom::sync::Condvar);

    impl Condvar {
        /// A condition variable nobody waits on yet.
        pub fn new() -> Self {
            Condvar(loom::sync::Condvar::new())
        }

        /// Wakes one waiter, if any.
        pub fn notify_one(&self) {
            self.0.notify_one();
        }

        /// Blocks until notified (loom: no timeout; see the type's docs).
        pub fn wait_until<'a, T>(
            &self,
            guard: MutexGuard<'a, T>,
            _deadline: Instant,
        ) -> (MutexGuard<'a, T>, bool) {
            let guard = self
                .0
                .wait(guard)
                .expect("a model thread panicked while holding the lock");
            (guard, false)
        }
    }
}

pub use imp::{Arc, Condvar, Mutex, MutexGuard};
