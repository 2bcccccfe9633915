//! # tidelog-lease
//!
//! The writer lease of tidelog: one writer per database (or per lane), with a fencing
//! token that orders every tenure after the ones before it. It needs nothing of the
//! engine (`tidelog` uses it, re-exported as `tidelog::lease`); any program that wants one
//! writer per key with fencing tokens can use it alone.
//!
//! A [`WriterLease`] record per key says who holds it (`holder_id`), under which fencing
//! token ([`LeaseToken`]: `term`, then `generation`) and until when (`expires_at_ms`). A
//! [`LeaseManager`] takes, refreshes and releases it with one read and one
//! compare-and-swap on a [`LeaseBackend`], whose contract has no unconditional write:
//!
//! | backend | where | between |
//! |---|---|---|
//! | [`MemoryBackend`] | a map in memory | threads of one process; tests |
//! | [`FileBackend`] | one file per key in a directory, `flock` + rename | processes on one machine |
//! | `EtcdBackend` (feature `etcd`) | etcd keys, transactions on `mod_revision` | machines |
//!
//! Expiry is judged by an injectable [`Clock`] (wall-clock ms), so all processes sharing
//! a lease must keep their clocks synchronized to well within the TTL. [`LaneAuthority`]
//! applies the same lease to single lanes, for the one-authority-per-space model.
//!
//! What the engine does with a lease (refresh in the background, fail closed when a
//! refresh fails or the term moves on, stamp the token into segments) is not here: this
//! module only decides who holds what. `docs/lease.md` states the format, the CAS
//! contract, the fencing rules and the clock assumptions.
//!
//! Invariants kept: at most one live holder per key at any instant of the backend's
//! history; a new tenure's token is greater than every token published for the key
//! before it; a record that cannot be decoded is never overwritten.
#![deny(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod authority;
mod backend;
mod clock;
mod error;
#[cfg(feature = "etcd")]
mod etcd;
mod file;
#[cfg(feature = "testing")]
pub mod fuzzing;
mod manager;
mod memory;
mod record;

pub use authority::{AppendRoute, LaneAuthority};
pub use backend::{CasOutcome, LeaseBackend, Version, Versioned, VALUE_LEN_MAX};
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{BackendError, LeaseError};
#[cfg(feature = "etcd")]
pub use etcd::EtcdBackend;
pub use file::FileBackend;
pub use manager::{LeaseManager, HOLDER_ID_LEN_MAX, LEASE_KEY_LEN_MAX, TTL_MAX, TTL_MIN};
pub use memory::MemoryBackend;
pub use record::{
    DecodeError, LeaseToken, WriterLease, BASE_TERM, FIRST_GENERATION, RECORD_FORMAT_VERSION,
    RECORD_LEN_MAX,
};
