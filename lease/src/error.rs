//! Errors of the writer lease and of its backends.
//!
//! [`LeaseError`] keeps apart what a caller decides on: somebody else holds the lease
//! (`Held`), a concurrent contender changed it under us (`LostRace`), our own view is out
//! of date (`Stale`), we were deposed by a newer term (`Fenced`), the stored record cannot
//! be read (`InvalidFormat`), the request itself is wrong (`InvalidKey`, `InvalidHolderId`,
//! `InvalidTtl`), and the backend failed ([`BackendError`]).

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use thiserror::Error;

use super::record::{DecodeError, LeaseToken, WriterLease};

/// Why a lease operation did not happen.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum LeaseError {
    /// Another holder owns a live (unexpired, unreleased) lease.
    #[error(
        "the writer lease of '{}' is held by {current} for {} more unless it is \
         refreshed; wait for it to expire or be released, or follow that writer instead of \
         writing",
        current.database_key,
        human_ms(current.remaining_ms(*now_ms))
    )]
    Held {
        /// The published lease.
        current: Box<WriterLease>,
        /// The caller's clock when it decided, to compute the time left.
        now_ms: u64,
    },
    /// The lease changed between our read and our compare-and-swap: another contender
    /// wrote first. Retrying shows whether it is now held.
    #[error(
        "'{holder_id}' lost the race for the writer lease of '{database_key}': another \
         contender changed it first; it is now {}; retry to see whether it is held",
        describe(found.as_deref())
    )]
    LostRace {
        /// The key contended for.
        database_key: String,
        /// The contender that lost.
        holder_id: String,
        /// What was published after the loss, if anything.
        found: Option<Box<WriterLease>>,
    },
    /// The caller acted on a lease it no longer holds: the published record has another
    /// holder or token, was released, or is gone.
    #[error(
        "'{holder_id}' acted on a stale view of the writer lease of '{database_key}': it \
         expected to hold it at {expected}, but it is {}; stop writing and acquire again",
        describe(found.as_deref())
    )]
    Stale {
        /// The key acted on.
        database_key: String,
        /// The caller.
        holder_id: String,
        /// The token the caller believed it held.
        expected: LeaseToken,
        /// What is published, if anything.
        found: Option<Box<WriterLease>>,
    },
    /// The caller's term is behind the published (or current cluster) term: a newer
    /// primary owns the timeline, and the caller must not take or keep the lease.
    #[error(
        "'{holder_id}' is fenced from the writer lease of '{database_key}': its term \
         {attempted_term} is behind the current term {current_term}; stop writing, it was \
         deposed, and rejoin at term {current_term} or later"
    )]
    Fenced {
        /// The key.
        database_key: String,
        /// The deposed caller.
        holder_id: String,
        /// The caller's term.
        attempted_term: u64,
        /// The term that fences it.
        current_term: u64,
    },
    /// The stored record could not be read. The lease is neither taken nor changed: a
    /// record nobody understands must not be overwritten.
    #[error(
        "the writer lease record of '{database_key}' is unreadable ({source}); nothing was \
         changed: repair or delete it once you are sure no writer holds it"
    )]
    InvalidFormat {
        /// The key whose record is unreadable.
        database_key: String,
        /// What was wrong.
        #[source]
        source: DecodeError,
    },
    /// The database key is not usable as a lease key.
    #[error("'{key}' cannot name a writer lease: {reason}")]
    InvalidKey {
        /// The key given.
        key: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The holder id is not usable.
    #[error("'{holder_id}' cannot be a lease holder id: {reason}")]
    InvalidHolderId {
        /// The id given.
        holder_id: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The time-to-live is out of range.
    #[error("a lease time-to-live of {ttl:?} is not allowed: {reason}")]
    InvalidTtl {
        /// The TTL given.
        ttl: Duration,
        /// The allowed range.
        reason: &'static str,
    },
    /// The backend failed; whether the operation took effect is unknown, so a holder must
    /// treat its lease as lost until a `refresh` succeeds.
    #[error(transparent)]
    Backend(#[from] BackendError),
}

/// Says what a `found` record is, for error messages.
/// A span of milliseconds for people: `850 ms`, `9.2 s`.
fn human_ms(ms: u64) -> String {
    if ms < 1_000 {
        format!("{ms} ms")
    } else {
        format!("{:.1} s", ms as f64 / 1_000.0)
    }
}

fn describe(found: Option<&WriterLease>) -> String {
    match found {
        Some(lease) => format!("held by {lease}"),
        None => "absent".to_owned(),
    }
}

/// Why a backend could not carry out a read or a compare-and-swap. A lost comparison is
/// not an error: it is [`CasOutcome::Conflict`](super::CasOutcome::Conflict).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum BackendError {
    /// A file operation failed.
    #[error("lease backend could not {op} '{}': {source}", path.display())]
    Io {
        /// What was being done ("open", "lock", "write", "fsync", "rename", ...).
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// What the backend stores around a value is damaged (not the lease record itself).
    #[error(
        "lease backend data at '{location}' is damaged: {reason}; repair or delete it once \
         you are sure no writer holds the lease"
    )]
    Corrupt {
        /// Where (a file path, an etcd key).
        location: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// The backend could not be reached or did not answer.
    #[error("lease backend at {endpoint} did not answer: {source}")]
    Transport {
        /// The address tried.
        endpoint: String,
        /// The client's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The TLS handshake with the backend failed: its certificate is not trusted (not
    /// signed by the configured CA, wrong name, expired) or it refused ours.
    #[error(
        "TLS with the lease backend at {endpoint} failed: {detail}; check the CA certificate \
         the client trusts and, with mutual TLS, the client certificate and key"
    )]
    Tls {
        /// The address tried.
        endpoint: String,
        /// What the TLS layer said.
        detail: String,
    },
    /// The backend refused the credentials (user name and password).
    #[error(
        "the lease backend at {endpoint} refused the credentials of user '{user}': {detail}; \
         check the user name and password"
    )]
    Unauthorized {
        /// The address asked.
        endpoint: String,
        /// The user that tried.
        user: String,
        /// What the backend said.
        detail: String,
    },
    /// The backend answered something this client does not understand or refused the
    /// request.
    #[error("lease backend at {endpoint} answered unexpectedly: {detail}")]
    Protocol {
        /// The address asked.
        endpoint: String,
        /// What was wrong with the answer (status, body excerpt, missing field).
        detail: String,
    },
    /// The key cannot be stored by this backend.
    #[error("lease backend cannot store key '{key}': {reason}")]
    InvalidKey {
        /// The key given.
        key: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The value is larger than the backend accepts.
    #[error("a lease value of {len} bytes is more than the {max} this backend stores")]
    ValueTooLarge {
        /// Length given.
        len: usize,
        /// The backend's limit.
        max: usize,
    },
    /// The backend cannot be set up with the configuration given.
    #[error("lease backend configuration is invalid: {reason}")]
    InvalidConfig {
        /// What is wrong.
        reason: String,
    },
}
