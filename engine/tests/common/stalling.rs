//! A lease backend whose writes hang once stalled: a refresher stuck on an unreachable
//! backend, or a process paused past its lease, for the tests of hand-off.

use super::hooked::Hooked;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use tidelog::lease::LeaseBackend;

#[derive(Debug, Default)]
struct Gate {
    stalled: AtomicBool,
    resumed: (Mutex<bool>, Condvar),
}

impl Gate {
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

/// Passes everything to the wrapped backend until [`Stalling::stall`]; from then on
/// every compare-and-swap waits until [`Stalling::resume`] (reads still pass).
#[derive(Debug)]
pub struct Stalling {
    gate: Arc<Gate>,
    backend: Arc<Hooked>,
}

impl Stalling {
    pub fn new(inner: Arc<dyn LeaseBackend>) -> Arc<Stalling> {
        let gate = Arc::new(Gate::default());
        let hooked = {
            let gate = gate.clone();
            Hooked::new(inner, move |_| gate.wait_if_stalled())
        };
        Arc::new(Stalling {
            gate,
            backend: Arc::new(hooked),
        })
    }

    /// The backend to hand to the engine.
    pub fn backend(&self) -> Arc<dyn LeaseBackend> {
        self.backend.clone()
    }

    /// From now on, compare-and-swaps hang until [`Stalling::resume`].
    pub fn stall(&self) {
        self.gate.stalled.store(true, Ordering::SeqCst);
    }

    /// Lets every hung and later compare-and-swap through.
    pub fn resume(&self) {
        let (done, wake) = &self.gate.resumed;
        *done.lock().unwrap() = true;
        wake.notify_all();
    }
}
