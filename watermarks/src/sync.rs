//! The one place that chooses between real and model-checked synchronization.
//!
//! Normal builds use `parking_lot` and `std`; under `RUSTFLAGS="--cfg loom"` the same names
//! resolve to loom's types, so the loom models in `tests/loom.rs` drive the real watermark
//! code, not a copy of it. The API is by-value (`wait` takes and returns the guard) because
//! that is the shape both backends can provide.

#[cfg(not(loom))]
mod imp {
    pub(crate) use parking_lot::MutexGuard;
    pub(crate) use std::sync::Arc;
    use std::time::Instant;

    /// A mutex whose `lock` cannot fail (parking_lot has no poisoning).
    #[derive(Debug, Default)]
    pub(crate) struct Mutex<T>(parking_lot::Mutex<T>);

    impl<T> Mutex<T> {
        pub(crate) fn new(value: T) -> Self {
            Mutex(parking_lot::Mutex::new(value))
        }

        pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
            self.0.lock()
        }
    }

    /// A condition variable used by exactly one waiter (see `waiters.rs`).
    #[derive(Debug, Default)]
    pub(crate) struct Condvar(parking_lot::Condvar);

    impl Condvar {
        pub(crate) fn new() -> Self {
            Condvar(parking_lot::Condvar::new())
        }

        pub(crate) fn notify_one(&self) {
            self.0.notify_one();
        }

        /// Blocks until notified or `deadline`; returns the guard and whether it timed out.
        pub(crate) fn wait_until<'a, T>(
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
    pub(crate) use loom::sync::Arc;
    pub(crate) use loom::sync::MutexGuard;
    use std::time::Instant;

    /// loom's mutex, with poisoning turned into a panic (a panic inside a model is a
    /// failure of the model anyway).
    #[derive(Debug)]
    pub(crate) struct Mutex<T>(loom::sync::Mutex<T>);

    impl<T> Mutex<T> {
        pub(crate) fn new(value: T) -> Self {
            Mutex(loom::sync::Mutex::new(value))
        }

        pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
            self.0
                .lock()
                .expect("a model thread panicked while holding the lock")
        }
    }

    /// loom's condition variable. loom does not model time: a timed wait is an untimed
    /// wait, so a lost wake-up shows up as a deadlock that loom reports.
    #[derive(Debug)]
    pub(crate) struct Condvar(loom::sync::Condvar);

    impl Condvar {
        pub(crate) fn new() -> Self {
            Condvar(loom::sync::Condvar::new())
        }

        pub(crate) fn notify_one(&self) {
            self.0.notify_one();
        }

        pub(crate) fn wait_until<'a, T>(
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

pub(crate) use imp::{Arc, Condvar, Mutex, MutexGuard};
