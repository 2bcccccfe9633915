//! A lease backend whose writes hang once stalled: a refresher stuck on an unreachable
//! backend, or a process paused past its lease, for the tests of hand-off.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use tidelog::lease::{BackendError, CasOutcome, LeaseBackend, Version, Versioned};

/// Passes everything to `inner` until [`Stalling::stall`]; from then on every
/// compare-and-swap waits until [`Stalling::resume`] (reads still pass).
#[derive(Debug)]
pub struct Stalling {
    inner: Arc<dyn LeaseBackend>,
    stalled: AtomicBool,
    resumed: (Mutex<bool>, Condvar),
}

impl Stalling {
    pub fn new(inner: Arc<dyn LeaseBackend>) -> Arc<Stalling> {
        Arc::new(Stalling {
            inner,
            stalled: AtomicBool::new(false),
            resumed: (Mutex::new(false), Condvar::new()),
        })
    }

    /// From now on, compare-and-swaps hang until [`Stalling::resume`].
    pub fn stall(&self) {
        self.stalled.store(true, Ordering::SeqCst);
    }

    /// Lets every hung and later compare-and-swap through.
    pub fn resume(&self) {
        let (done, wake) = &self.resumed;
        *done.lock().unwrap() = true;
        wake.notify_all();
    }

    fn wait_if_stalled(&self) {
        if self.stalled.load(Ordering::SeqCst) {
            let (done, wake) = &self.resumed;
            let mut done = done.lock().unwrap();
            while !*done {
                done = wake.wait(done).unwrap();
            }
        }
    }
}

impl LeaseBackend for Stalling {
    fn read(&self, key: &str) -> Result<Option<Versioned>, BackendError> {
        self.inner.read(key)
    }
    fn put_if_absent(&self, key: &str, value: &[u8]) -> Result<CasOutcome<Version>, BackendError> {
        self.wait_if_stalled();
        self.inner.put_if_absent(key, value)
    }
    fn put_if_version(
        &self,
        key: &str,
        value: &[u8],
        expected: Version,
    ) -> Result<CasOutcome<Version>, BackendError> {
        self.wait_if_stalled();
        self.inner.put_if_version(key, value, expected)
    }
    fn delete_if_version(
        &self,
        key: &str,
        expected: Version,
    ) -> Result<CasOutcome<()>, BackendError> {
        self.wait_if_stalled();
        self.inner.delete_if_version(key, expected)
    }
}
