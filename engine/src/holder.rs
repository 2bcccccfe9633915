//! The engine's side of the writer lease: take it on open, refresh it in the background,
//! and know, without asking the backend, whether it may still acknowledge.
//!
//! Fail closed: the writer may acknowledge only while [`Validity`] says the lease is
//! still ours. Validity is kept on the local monotonic clock, counted from the moment a
//! successful acquire or refresh was *sent*, and ends a safety margin (a fifth of the TTL)
//! before the backend would let anyone else take the lease, so a slow refresh, a paused
//! process or modest clock drift between machines makes this writer stop first. A refresh
//! that fails, or finds the lease taken or its term moved on, revokes validity at once and
//! poisons the engine.

use crate::error::{OpenError, WriterFailure};
use crate::lease::{FileBackend, LeaseError, LeaseManager, WriterLease};
use crate::marker::{self, HolderFile, Liveness};
use crate::options::LeaseOptions;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tidelog_wal::FencingToken;

/// Name of the lease directory of the default (file) backend, inside the database.
pub(crate) const LEASE_DIR: &str = "lease";

/// Until when this process may act as the writer, on the monotonic clock.
#[derive(Debug)]
pub(crate) struct Validity {
    base: Instant,
    /// Nanoseconds after `base`; 0 once revoked.
    until_ns: AtomicU64,
}

impl Validity {
    fn new() -> Self {
        Validity {
            base: Instant::now(),
            until_ns: AtomicU64::new(0),
        }
    }

    /// Whether the lease is still ours now.
    pub(crate) fn is_valid(&self) -> bool {
        let now = u64::try_from(self.base.elapsed().as_nanos()).unwrap_or(u64::MAX);
        now < self.until_ns.load(Ordering::Acquire)
    }

    fn extend_to(&self, deadline: Instant) {
        let ns = deadline.saturating_duration_since(self.base).as_nanos();
        self.until_ns
            .store(u64::try_from(ns).unwrap_or(u64::MAX), Ordering::Release);
    }

    fn revoke(&self) {
        self.until_ns.store(0, Ordering::Release);
    }
}

/// How long before the backend's expiry this process stops acting as the writer.
fn margin(ttl: Duration) -> Duration {
    ttl / 5
}

/// Who to tell when the lease is lost: the engine registers once it is built; a loss
/// before that (during a long recovery) is kept and delivered on registration.
#[derive(Default)]
struct Loss {
    failure: Option<WriterFailure>,
    notify: Option<Box<dyn FnOnce(WriterFailure) + Send>>,
}

fn report(loss: &Mutex<Loss>, failure: WriterFailure) {
    let mut slot = loss.lock().unwrap_or_else(PoisonError::into_inner);
    match slot.notify.take() {
        Some(notify) => {
            drop(slot);
            notify(failure);
        }
        None => slot.failure = Some(failure),
    }
}

/// The lease this engine holds, and its refresher.
pub(crate) struct LeaseHolder {
    loss: Arc<Mutex<Loss>>,
    manager: LeaseManager,
    lease: Arc<Mutex<WriterLease>>,
    validity: Arc<Validity>,
    ttl: Duration,
    stop: Arc<(Mutex<bool>, Condvar)>,
    refresher: Option<JoinHandle<()>>,
    predecessor_may_write: bool,
    /// Dropped after the lease is released (fields drop after `Drop::drop` runs).
    _alive: HolderFile,
}

impl std::fmt::Debug for LeaseHolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaseHolder")
            .field("lease", &self.lease())
            .field("valid", &self.validity.is_valid())
            .finish_non_exhaustive()
    }
}

/// A unique holder id for this open: process id, start time and a counter.
fn holder_id() -> String {
    static OPENS: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "tidelog-{}-{nanos:x}-{}",
        std::process::id(),
        OPENS.fetch_add(1, Ordering::Relaxed)
    )
}

impl LeaseHolder {
    /// Takes the lease of the database in `dir`, after creating this holder's liveness
    /// file (see [`marker::hold`]). With the default file backend (one machine), a live
    /// lease whose holder's liveness file is unlocked or gone belongs to a process that
    /// is no longer running: it is taken over with the next generation instead of waiting
    /// for it to expire.
    pub(crate) fn acquire(dir: &Path, options: &LeaseOptions) -> Result<LeaseHolder, OpenError> {
        let (backend, local) = match &options.backend {
            Some(backend) => (backend.clone(), false),
            None => {
                let backend = FileBackend::open(dir.join(LEASE_DIR))
                    .map_err(|source| OpenError::Lease(LeaseError::Backend(source)))?;
                (
                    Arc::new(backend) as Arc<dyn crate::lease::LeaseBackend>,
                    true,
                )
            }
        };
        let mut manager = LeaseManager::new(backend);
        if let Some(clock) = &options.clock {
            manager = manager.with_clock(clock.clone());
        }
        let id = holder_id();
        // Refused before anything is created (the liveness file would come and go), so an
        // open refused for a live writer's lease leaves the directory as it was.
        match manager.check_acquirable(&options.key, &id, options.term) {
            Err(LeaseError::Held { current, .. })
                if local && marker::liveness(dir, &current.holder_id)? != Liveness::Running => {}
            other => other.map_err(OpenError::Lease)?,
        }
        let alive = marker::hold(dir, &id)?;
        let before = manager.current(&options.key).map_err(OpenError::Lease)?;
        let sent = Instant::now();
        let lease =
            match manager.try_acquire_for_term(&options.key, &id, options.ttl, options.term) {
                Err(LeaseError::Held { current, .. })
                    if local && marker::liveness(dir, &current.holder_id)? != Liveness::Running =>
                {
                    manager.take_over(&current, &id, options.ttl, options.term)
                }
                other => other,
            }
            .map_err(OpenError::Lease)?;
        // The previous tenure ended without a release: unless its process is known to
        // be gone, it may still complete a store it had started (see `tidelog_wal::
        // takeover`).
        let predecessor_may_write = match &before {
            Some(previous) if !previous.released && previous.holder_id != id => {
                match marker::liveness(dir, &previous.holder_id)? {
                    Liveness::Running => true,
                    Liveness::Gone => false,
                    // With the file backend every holder has its file while it runs.
                    Liveness::NoFile => !local,
                }
            }
            _ => false,
        };
        let validity = Arc::new(Validity::new());
        validity.extend_to(sent + options.ttl - margin(options.ttl));
        let mut holder = LeaseHolder {
            loss: Arc::default(),
            manager,
            lease: Arc::new(Mutex::new(lease)),
            validity,
            ttl: options.ttl,
            stop: Arc::new((Mutex::new(false), Condvar::new())),
            refresher: None,
            predecessor_may_write,
            _alive: alive,
        };
        // Refresh from now on: recovery may take longer than the lease lasts.
        holder.start().map_err(|source| OpenError::Io {
            op: "starting the lease refresher for",
            path: dir.to_path_buf(),
            source,
        })?;
        Ok(holder)
    }

    /// Registers who to tell, once, when the lease is lost; told at once if it already
    /// was.
    pub(crate) fn on_lost(&self, notify: impl FnOnce(WriterFailure) + Send + 'static) {
        let mut slot = self.loss.lock().unwrap_or_else(PoisonError::into_inner);
        match slot.failure.take() {
            Some(failure) => {
                drop(slot);
                notify(failure);
            }
            None => slot.notify = Some(Box::new(notify)),
        }
    }

    /// The lease as last published by this holder.
    pub(crate) fn lease(&self) -> WriterLease {
        self.lease
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The fencing token to stamp on segments.
    pub(crate) fn fencing_token(&self) -> FencingToken {
        let token = self.lease().fencing_token();
        FencingToken::new(token.term, token.generation)
    }

    /// Whether the writer before this one may still be running and storing into the
    /// log's files: the log must then be fenced off before it is read.
    pub(crate) fn predecessor_may_write(&self) -> bool {
        self.predecessor_may_write
    }

    /// The validity the writer checks before acknowledging.
    pub(crate) fn validity(&self) -> Arc<Validity> {
        self.validity.clone()
    }

    /// Starts refreshing every third of the TTL; on the first failure validity is revoked
    /// and the loss reported once.
    fn start(&mut self) -> std::io::Result<()> {
        let loss = self.loss.clone();
        let manager = self.manager.clone();
        let lease = self.lease.clone();
        let validity = self.validity.clone();
        let stop = self.stop.clone();
        let ttl = self.ttl;
        let spawned = std::thread::Builder::new()
            .name("tidelog-lease".into())
            .spawn(move || {
                let (stopped, wake) = &*stop;
                loop {
                    {
                        let guard = stopped.lock().unwrap_or_else(PoisonError::into_inner);
                        let (guard, _) = wake
                            .wait_timeout_while(guard, ttl / 3, |stopped| !*stopped)
                            .unwrap_or_else(PoisonError::into_inner);
                        if *guard {
                            return;
                        }
                    }
                    // The backend call runs without the lock, so `release` never waits on
                    // a slow or hung backend.
                    let sent = Instant::now();
                    let current = lease.lock().unwrap_or_else(PoisonError::into_inner).clone();
                    let outcome = manager.refresh(&current, ttl);
                    let guard = stopped.lock().unwrap_or_else(PoisonError::into_inner);
                    if *guard {
                        return; // released meanwhile: validity stays revoked
                    }
                    match outcome {
                        Ok(next) => {
                            crate::observe::metric!(metrics::counter!(
                                "tidelog_lease_refreshes_total"
                            )
                            .increment(1));
                            *lease.lock().unwrap_or_else(PoisonError::into_inner) = next;
                            validity.extend_to(sent + ttl - margin(ttl));
                        }
                        Err(source) => {
                            crate::observe::metric!(metrics::counter!(
                                "tidelog_lease_losses_total"
                            )
                            .increment(1));
                            validity.revoke();
                            drop(guard);
                            report(&loss, WriterFailure::LeaseLost(source));
                            return;
                        }
                    }
                }
            });
        self.refresher = Some(spawned?);
        Ok(())
    }

    /// Stops refreshing and releases the lease so the next writer need not wait for it
    /// to expire. A lease already lost or expired is left as it is. Does not wait for a
    /// refresh stuck on the backend: that thread finds itself stopped and exits.
    pub(crate) fn release(&mut self) {
        let was_valid = {
            let (stopped, wake) = &*self.stop;
            let mut stopped = stopped.lock().unwrap_or_else(PoisonError::into_inner);
            *stopped = true;
            wake.notify_all();
            let valid = self.validity.is_valid();
            self.validity.revoke();
            valid
        };
        if let Some(handle) = self.refresher.take() {
            if handle.is_finished() {
                // It only returns; a panic in it would be a bug in this module.
                let _ = handle.join();
            }
        }
        if was_valid {
            // Nothing can be done about a failed release: the lease expires on its own.
            let _ = self.manager.release(&self.lease());
        }
    }
}

impl Drop for LeaseHolder {
    fn drop(&mut self) {
        self.release();
    }
}
