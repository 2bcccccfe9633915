//! A lease backend that runs a hook before each compare-and-swap of the backend it wraps:
//! the tests' way to stall a refresher or slip a contender's write in between a caller's
//! read and its compare-and-swap.

use std::sync::Arc;
use tidelog::lease::{BackendError, CasOutcome, LeaseBackend, Version, Versioned};

/// Which compare-and-swap is about to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cas {
    PutIfAbsent,
    PutIfVersion,
    DeleteIfVersion,
}

/// Passes every call to `inner`, running `hook` before each compare-and-swap (reads pass
/// untouched).
pub struct Hooked {
    inner: Arc<dyn LeaseBackend>,
    hook: Box<dyn Fn(Cas) + Send + Sync>,
}

impl std::fmt::Debug for Hooked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hooked")
    }
}

impl Hooked {
    pub fn new(inner: Arc<dyn LeaseBackend>, hook: impl Fn(Cas) + Send + Sync + 'static) -> Hooked {
        Hooked {
            inner,
            hook: Box::new(hook),
        }
    }
}

impl LeaseBackend for Hooked {
    fn read(&self, key: &str) -> Result<Option<Versioned>, BackendError> {
        self.inner.read(key)
    }
    fn put_if_absent(&self, key: &str, value: &[u8]) -> Result<CasOutcome<Version>, BackendError> {
        (self.hook)(Cas::PutIfAbsent);
        self.inner.put_if_absent(key, value)
    }
    fn put_if_version(
        &self,
        key: &str,
        value: &[u8],
        expected: Version,
    ) -> Result<CasOutcome<Version>, BackendError> {
        (self.hook)(Cas::PutIfVersion);
        self.inner.put_if_version(key, value, expected)
    }
    fn delete_if_version(
        &self,
        key: &str,
        expected: Version,
    ) -> Result<CasOutcome<()>, BackendError> {
        (self.hook)(Cas::DeleteIfVersion);
        self.inner.delete_if_version(key, expected)
    }
}
