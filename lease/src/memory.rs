//! An in-memory [`LeaseBackend`], for tests and for leases shared by handles inside one
//! process. Clones share one store.
//!
//! Atomicity comes from one mutex around the map. Versions come from one counter for the
//! whole store, so they never repeat, not even for a key deleted and written again.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

use super::backend::{check_value_len, CasOutcome, LeaseBackend, Version, Versioned};
use super::error::BackendError;

/// A lease store in memory. Clones share the same keys.
#[derive(Debug, Default, Clone)]
pub struct MemoryBackend {
    state: Arc<Mutex<State>>,
}

#[derive(Debug, Default)]
struct State {
    entries: HashMap<String, Versioned>,
    /// The last version handed out, for any key.
    last_version: u64,
}

impl State {
    fn next_version(&mut self) -> Version {
        self.last_version += 1;
        Version::new(self.last_version)
    }

    fn put(&mut self, key: &str, value: &[u8]) -> Version {
        let version = self.next_version();
        self.entries.insert(
            key.to_owned(),
            Versioned {
                value: value.to_vec(),
                version,
            },
        );
        version
    }

    fn version_of(&self, key: &str) -> Option<Version> {
        self.entries.get(key).map(|entry| entry.version)
    }
}

impl MemoryBackend {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        MemoryBackend::default()
    }
}

impl LeaseBackend for MemoryBackend {
    fn read(&self, key: &str) -> Result<Option<Versioned>, BackendError> {
        Ok(self.state.lock().entries.get(key).cloned())
    }

    fn put_if_absent(&self, key: &str, value: &[u8]) -> Result<CasOutcome<Version>, BackendError> {
        check_value_len(value)?;
        let mut state = self.state.lock();
        if state.entries.contains_key(key) {
            return Ok(CasOutcome::Conflict);
        }
        Ok(CasOutcome::Applied(state.put(key, value)))
    }

    fn put_if_version(
        &self,
        key: &str,
        value: &[u8],
        expected: Version,
    ) -> Result<CasOutcome<Version>, BackendError> {
        check_value_len(value)?;
        let mut state = self.state.lock();
        if state.version_of(key) != Some(expected) {
            return Ok(CasOutcome::Conflict);
        }
        Ok(CasOutcome::Applied(state.put(key, value)))
    }

    fn delete_if_version(
        &self,
        key: &str,
        expected: Version,
    ) -> Result<CasOutcome<()>, BackendError> {
        let mut state = self.state.lock();
        if state.version_of(key) != Some(expected) {
            return Ok(CasOutcome::Conflict);
        }
        state.entries.remove(key);
        Ok(CasOutcome::Applied(()))
    }
}
