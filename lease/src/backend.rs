//! Where lease records live: a key-value store whose contract includes compare-and-swap.
//!
//! There is deliberately no unconditional put in [`LeaseBackend`]: every write names what
//! it expects to replace (nothing, or one exact [`Version`]), so "last writer wins" cannot
//! be expressed, and a store that cannot enforce a condition cannot implement the trait.
//! [`LeaseManager::new`](super::LeaseManager::new) takes only a `LeaseBackend`, so
//! plugging in a store without CAS is a compile error, not a runtime check.
//!
//! # Contract
//!
//! For each key, a backend keeps either nothing or one value with a [`Version`].
//!
//! 1. `read` returns the value and version as of one instant (never a value from one
//!    write with the version of another).
//! 2. `put_if_absent` writes only if the key holds nothing; `put_if_version` and
//!    `delete_if_version` act only if the key's current version equals `expected`. The
//!    comparison and the write are one atomic step with respect to every other client of
//!    the same store, in this process or any other.
//! 3. A condition that does not hold is reported as [`CasOutcome::Conflict`], and nothing
//!    changes.
//! 4. Versions of a key never repeat, not even after a delete and a new put: otherwise a
//!    client holding an old version could overwrite a newer value that happens to reuse it
//!    (the ABA problem).
//! 5. `Applied` means the write is durable as far as the backend goes (fsynced, or
//!    committed by the store's consensus). An `Err` means the outcome is unknown: the
//!    write may or may not have happened, and the caller must read again.

use std::fmt::{self, Debug};

use super::error::BackendError;

/// Largest value a backend must accept. Lease records are about 250 bytes.
pub const VALUE_LEN_MAX: usize = 64 * 1024;

/// The version of a key's value, as the backend counts it. Opaque apart from equality:
/// only the backend that produced it knows what the number means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Version(u64);

impl Version {
    /// Wraps a backend's version number.
    #[must_use]
    pub fn new(raw: u64) -> Self {
        Version(raw)
    }

    /// The backend's version number.
    #[must_use]
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}", self.0)
    }
}

/// A value and the version it was read at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned {
    /// The stored bytes.
    pub value: Vec<u8>,
    /// Their version.
    pub version: Version,
}

/// What a conditional write did.
#[must_use]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CasOutcome<T> {
    /// The condition held and the write was made; carries its result (the new version
    /// for a put).
    Applied(T),
    /// The condition did not hold; nothing changed.
    Conflict,
}

/// A key-value store with compare-and-swap, where lease records are kept. See the module
/// docs for the contract every implementation must keep.
pub trait LeaseBackend: Send + Sync + Debug {
    /// The current value of `key` and its version, or `None` if the key holds nothing.
    fn read(&self, key: &str) -> Result<Option<Versioned>, BackendError>;

    /// Writes `value` under `key` only if the key holds nothing.
    fn put_if_absent(&self, key: &str, value: &[u8]) -> Result<CasOutcome<Version>, BackendError>;

    /// Replaces the value of `key` only if its current version is `expected`.
    fn put_if_version(
        &self,
        key: &str,
        value: &[u8],
        expected: Version,
    ) -> Result<CasOutcome<Version>, BackendError>;

    /// Removes `key` only if its current version is `expected`.
    fn delete_if_version(
        &self,
        key: &str,
        expected: Version,
    ) -> Result<CasOutcome<()>, BackendError>;
}

/// Refuses values over [`VALUE_LEN_MAX`]; shared by the backends.
pub(crate) fn check_value_len(value: &[u8]) -> Result<(), BackendError> {
    if value.len() > VALUE_LEN_MAX {
        return Err(BackendError::ValueTooLarge {
            len: value.len(),
            max: VALUE_LEN_MAX,
        });
    }
    Ok(())
}
