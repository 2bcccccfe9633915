//! The lease protocol: acquire, refresh, release, each one read and one compare-and-swap
//! on the backend.
//!
//! # Rules
//!
//! - **Term fence first.** A contender whose term is behind the published record's term
//!   is refused with `Fenced`, whether the lease is live, expired or released: a deposed
//!   primary can never take the writer slot back until it adopts the newer term.
//! - **One live holder.** A live lease (not expired, not released) of another holder is
//!   refused with `Held`.
//! - **Generations.** A new tenure (first acquire, a different holder, or an acquire after
//!   a release) gets the next generation. The same holder acquiring its own unreleased
//!   lease again continues its tenure: same generation, same `acquired_at_ms`, new expiry
//!   (and the new term, which can only be the same or higher).
//! - **Release keeps history.** Release publishes the record with `released: true` instead
//!   of deleting it, so the next holder's generation is higher than every generation
//!   before it and no two tenures ever share a fencing token. (The seed deleted the record
//!   and started again at generation 1; with equal tokens, a stale ex-holder's writes
//!   could not be told from the new holder's, which DESIGN.md forbids.)
//! - **Compare-and-swap decides.** Every change is conditional on the version that was
//!   read; losing that comparison is `LostRace` for an acquire and `Stale` for a refresh
//!   or release. Nothing is ever written unconditionally.
//! - **Holding is checked, not assumed.** `refresh` and `release` act only if the
//!   published record still carries the caller's holder id and token and is not released;
//!   a higher published term is `Fenced`, anything else `Stale`.

use std::sync::Arc;
use std::time::Duration;

use super::backend::{CasOutcome, LeaseBackend, Version};
use super::clock::{Clock, SystemClock};
use super::error::LeaseError;
use super::record::{DecodeError, WriterLease, BASE_TERM, FIRST_GENERATION};

/// Longest lease key (a database's or a lane's), in bytes. Keys are printable ASCII without spaces, so they are
/// safe as file names (once encoded) and etcd keys alike.
pub const LEASE_KEY_LEN_MAX: usize = 80;

/// Longest holder id, in bytes.
pub const HOLDER_ID_LEN_MAX: usize = 256;

/// Shortest TTL: one millisecond, the clock's resolution.
pub const TTL_MIN: Duration = Duration::from_millis(1);

/// Longest TTL: one day. A writer that dies holding a longer lease would block the
/// database for longer than any operator would wait.
pub const TTL_MAX: Duration = Duration::from_secs(24 * 60 * 60);

/// Takes, keeps and gives up writer leases on a [`LeaseBackend`].
///
/// Cheap to clone; clones share the backend and the clock. Each method is one read and at
/// most one compare-and-swap, so a manager holds no state of its own: any number of
/// managers, in any number of processes, can work on the same backend.
///
/// # Example
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use tidelog_lease::{LeaseError, LeaseManager, ManualClock, MemoryBackend};
///
/// let backend = Arc::new(MemoryBackend::new());
/// let clock = ManualClock::new(1_000);
/// let leases = LeaseManager::new(backend).with_clock(Arc::new(clock.clone()));
///
/// let lease = leases.try_acquire("main", "writer-a", Duration::from_secs(10))?;
/// assert_eq!((lease.term, lease.generation), (1, 1));
///
/// // Someone else is refused while the lease is live...
/// let refused = leases.try_acquire("main", "writer-b", Duration::from_secs(10));
/// assert!(matches!(refused, Err(LeaseError::Held { .. })));
///
/// // ...and takes it over, with the next generation, once it expires.
/// clock.advance(Duration::from_secs(10));
/// let taken = leases.try_acquire("main", "writer-b", Duration::from_secs(10))?;
/// assert!(taken.fencing_token() > lease.fencing_token());
///
/// // The old holder can no longer keep it alive.
/// assert!(matches!(
///     leases.refresh(&lease, Duration::from_secs(10)),
///     Err(LeaseError::Stale { .. })
/// ));
/// # Ok::<(), LeaseError>(())
/// ```
///
/// Only a [`LeaseBackend`] can be plugged in, and that trait has compare-and-swap in its
/// contract, so a store without it does not compile:
///
/// ```compile_fail,E0277
/// use std::sync::Arc;
/// use tidelog_lease::LeaseManager;
///
/// /// A store that can only overwrite: last writer wins.
/// #[derive(Debug)]
/// struct PlainStore;
/// impl PlainStore {
///     fn put(&self, _key: &str, _value: &[u8]) {}
/// }
///
/// let _ = LeaseManager::new(Arc::new(PlainStore));
/// ```
#[derive(Debug, Clone)]
pub struct LeaseManager {
    backend: Arc<dyn LeaseBackend>,
    clock: Arc<dyn Clock>,
}

/// The record read, with its version for the compare-and-swap.
struct Published {
    lease: WriterLease,
    version: Version,
}

impl LeaseManager {
    /// A manager on `backend`, judging expiry by the system clock.
    #[must_use]
    pub fn new(backend: Arc<dyn LeaseBackend>) -> Self {
        LeaseManager {
            backend,
            clock: Arc::new(SystemClock),
        }
    }

    /// The same manager judging expiry by `clock`.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The manager's clock reading, in ms since the Unix epoch.
    #[must_use]
    pub fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// The published record of `database_key`, live, expired or released; `None` if the
    /// key has never been leased.
    pub fn current(&self, database_key: &str) -> Result<Option<WriterLease>, LeaseError> {
        check_key(database_key)?;
        Ok(self.read(database_key)?.map(|published| published.lease))
    }

    /// Takes the lease of `database_key` for `holder_id`, for `ttl`, at [`BASE_TERM`].
    /// See [`LeaseManager::try_acquire_for_term`].
    pub fn try_acquire(
        &self,
        database_key: &str,
        holder_id: &str,
        ttl: Duration,
    ) -> Result<WriterLease, LeaseError> {
        self.try_acquire_for_term(database_key, holder_id, ttl, BASE_TERM)
    }

    /// Takes the lease of `database_key` for `holder_id`, for `ttl`, stamped with `term`.
    ///
    /// Errors, in the order they are checked: `Fenced` if `term` is behind the published
    /// term (even on an expired or released lease); `Held` if another holder's lease is
    /// live; `LostRace` if the record changed between our read and our write. On success
    /// the returned lease is what was published (see the module docs for generations).
    pub fn try_acquire_for_term(
        &self,
        database_key: &str,
        holder_id: &str,
        ttl: Duration,
        term: u64,
    ) -> Result<WriterLease, LeaseError> {
        self.acquire(database_key, holder_id, ttl, term, None)
    }

    /// Takes over the tenure `dead`, live or not, for `holder_id`, with the next
    /// generation: for a caller that has proof the holder is gone (on one machine: the
    /// holder's lock on the database was released by the kernel when its process died).
    /// If the published record is no longer `dead`'s tenure, this is
    /// [`LeaseManager::try_acquire_for_term`], with the same errors.
    pub fn take_over(
        &self,
        dead: &WriterLease,
        holder_id: &str,
        ttl: Duration,
        term: u64,
    ) -> Result<WriterLease, LeaseError> {
        self.acquire(&dead.database_key, holder_id, ttl, term, Some(dead))
    }

    /// Whether [`LeaseManager::try_acquire_for_term`] would be refused now with `Fenced`
    /// or `Held` (the same errors, checked in the same order), found by reading the
    /// record only: nothing is written. A refusal is final for now; `Ok` is a forecast
    /// (another contender may still take the lease first), so acquire for real after it.
    /// A caller refuses early with it so that a refused open changes no file.
    pub fn check_acquirable(
        &self,
        database_key: &str,
        holder_id: &str,
        term: u64,
    ) -> Result<(), LeaseError> {
        check_key(database_key)?;
        check_holder(holder_id)?;
        let published = self.read(database_key)?;
        self.next_lease(database_key, holder_id, 0, term, None, published.as_ref())
            .map(drop)
    }

    fn acquire(
        &self,
        database_key: &str,
        holder_id: &str,
        ttl: Duration,
        term: u64,
        dead: Option<&WriterLease>,
    ) -> Result<WriterLease, LeaseError> {
        check_key(database_key)?;
        check_holder(holder_id)?;
        let ttl_ms = ttl_ms(ttl)?;
        let published = self.read(database_key)?;
        let next = self.next_lease(
            database_key,
            holder_id,
            ttl_ms,
            term,
            dead,
            published.as_ref(),
        )?;
        let version = published.map(|p| p.version);
        match self.publish(&next, version)? {
            CasOutcome::Applied(_) => Ok(next),
            CasOutcome::Conflict => Err(LeaseError::LostRace {
                database_key: database_key.to_owned(),
                holder_id: holder_id.to_owned(),
                found: self.read(database_key)?.map(|p| Box::new(p.lease)),
            }),
        }
    }

    /// The record an acquire by `holder_id` would publish over `published`, or why it is
    /// refused (`Fenced`, then `Held`).
    fn next_lease(
        &self,
        database_key: &str,
        holder_id: &str,
        ttl_ms: u64,
        term: u64,
        dead: Option<&WriterLease>,
        published: Option<&Published>,
    ) -> Result<WriterLease, LeaseError> {
        let now_ms = self.now_ms();
        let next = match published {
            None => WriterLease {
                database_key: database_key.to_owned(),
                holder_id: holder_id.to_owned(),
                term,
                generation: FIRST_GENERATION,
                acquired_at_ms: now_ms,
                expires_at_ms: now_ms.saturating_add(ttl_ms),
                released: false,
            },
            Some(Published { lease: current, .. }) => {
                if term < current.term {
                    return Err(LeaseError::Fenced {
                        database_key: database_key.to_owned(),
                        holder_id: holder_id.to_owned(),
                        attempted_term: term,
                        current_term: current.term,
                    });
                }
                let ours = current.holder_id == holder_id;
                let proven_dead = dead.is_some_and(|dead| holds(dead, current));
                if current.is_live(now_ms) && !ours && !proven_dead {
                    return Err(LeaseError::Held {
                        current: Box::new(current.clone()),
                        now_ms,
                    });
                }
                let continued_tenure = ours && !current.released;
                let (generation, acquired_at_ms) = if continued_tenure {
                    (current.generation, current.acquired_at_ms)
                } else {
                    (next_generation(current)?, now_ms)
                };
                WriterLease {
                    database_key: database_key.to_owned(),
                    holder_id: holder_id.to_owned(),
                    term,
                    generation,
                    acquired_at_ms,
                    expires_at_ms: now_ms.saturating_add(ttl_ms).max(acquired_at_ms),
                    released: false,
                }
            }
        };
        Ok(next)
    }

    /// Extends `lease` to expire `ttl` from now, if the caller still holds it.
    ///
    /// Refused with `Fenced` if the published term moved past `lease.term`, and with
    /// `Stale` if the published record is gone, released, or carries another holder or
    /// token. A holder's own expired lease that nobody took over can still be refreshed:
    /// nobody else can have written in between. Returns the new published record.
    pub fn refresh(&self, lease: &WriterLease, ttl: Duration) -> Result<WriterLease, LeaseError> {
        let ttl_ms = ttl_ms(ttl)?;
        let published = self.still_held(lease)?;
        let now_ms = self.now_ms();
        let mut next = published.lease.clone();
        next.expires_at_ms = now_ms.saturating_add(ttl_ms).max(next.acquired_at_ms);
        match self.publish(&next, Some(published.version))? {
            CasOutcome::Applied(_) => Ok(next),
            CasOutcome::Conflict => Err(self.lost_hold(lease)?),
        }
    }

    /// Like [`LeaseManager::refresh`], but first fails closed with `Fenced`, without
    /// touching the backend, when `lease.term` is behind `current_term` (the term the
    /// caller has learnt the cluster is at).
    pub fn refresh_for_term(
        &self,
        lease: &WriterLease,
        ttl: Duration,
        current_term: u64,
    ) -> Result<WriterLease, LeaseError> {
        if lease.fenced_by_term(current_term) {
            return Err(LeaseError::Fenced {
                database_key: lease.database_key.clone(),
                holder_id: lease.holder_id.clone(),
                attempted_term: lease.term,
                current_term,
            });
        }
        self.refresh(lease, ttl)
    }

    /// Gives `lease` up, if the caller still holds it: publishes it as released (and
    /// expired now), so anyone at a term not behind it may take it at once, with the next
    /// generation. Refused like [`LeaseManager::refresh`]; releasing twice is `Stale`.
    pub fn release(&self, lease: &WriterLease) -> Result<(), LeaseError> {
        let published = self.still_held(lease)?;
        let now_ms = self.now_ms();
        let mut next = published.lease.clone();
        next.released = true;
        next.expires_at_ms = next.expires_at_ms.min(now_ms).max(next.acquired_at_ms);
        match self.publish(&next, Some(published.version))? {
            CasOutcome::Applied(_) => Ok(()),
            CasOutcome::Conflict => Err(self.lost_hold(lease)?),
        }
    }

    /// Reads and decodes the record of `database_key`.
    fn read(&self, database_key: &str) -> Result<Option<Published>, LeaseError> {
        let Some(stored) = self.backend.read(database_key)? else {
            return Ok(None);
        };
        let invalid = |source| LeaseError::InvalidFormat {
            database_key: database_key.to_owned(),
            source,
        };
        let lease = WriterLease::decode(&stored.value).map_err(invalid)?;
        if lease.database_key != database_key {
            return Err(invalid(DecodeError::InvalidValue {
                field: "database_key",
                reason: "names another key than the one it is stored under",
            }));
        }
        Ok(Some(Published {
            lease,
            version: stored.version,
        }))
    }

    /// Writes `lease` if the record is still at `expected` (absent when `None`).
    fn publish(
        &self,
        lease: &WriterLease,
        expected: Option<Version>,
    ) -> Result<CasOutcome<Version>, LeaseError> {
        let bytes = lease.encode();
        let outcome = match expected {
            None => self.backend.put_if_absent(&lease.database_key, &bytes)?,
            Some(version) => self
                .backend
                .put_if_version(&lease.database_key, &bytes, version)?,
        };
        Ok(outcome)
    }

    /// The published record, if it is still `lease`'s tenure; otherwise why not.
    fn still_held(&self, lease: &WriterLease) -> Result<Published, LeaseError> {
        check_key(&lease.database_key)?;
        let published = self.read(&lease.database_key)?;
        match published {
            Some(published) if holds(lease, &published.lease) => Ok(published),
            other => Err(not_held(lease, other.map(|p| p.lease))),
        }
    }

    /// The error for a refresh or release whose compare-and-swap lost.
    fn lost_hold(&self, lease: &WriterLease) -> Result<LeaseError, LeaseError> {
        let found = self.read(&lease.database_key)?.map(|p| p.lease);
        Ok(not_held(lease, found))
    }
}

/// True when `published` is still the tenure `lease` describes.
fn holds(lease: &WriterLease, published: &WriterLease) -> bool {
    !published.released
        && published.holder_id == lease.holder_id
        && published.fencing_token() == lease.fencing_token()
}

/// Why `lease` is no longer held, given what is published.
fn not_held(lease: &WriterLease, found: Option<WriterLease>) -> LeaseError {
    match found {
        Some(current) if current.term > lease.term => LeaseError::Fenced {
            database_key: lease.database_key.clone(),
            holder_id: lease.holder_id.clone(),
            attempted_term: lease.term,
            current_term: current.term,
        },
        found => LeaseError::Stale {
            database_key: lease.database_key.clone(),
            holder_id: lease.holder_id.clone(),
            expected: lease.fencing_token(),
            found: found.map(Box::new),
        },
    }
}

fn next_generation(current: &WriterLease) -> Result<u64, LeaseError> {
    current
        .generation
        .checked_add(1)
        .ok_or_else(|| LeaseError::InvalidFormat {
            database_key: current.database_key.clone(),
            source: DecodeError::InvalidValue {
                field: "generation",
                reason: "is at its maximum and cannot advance",
            },
        })
}

fn check_key(key: &str) -> Result<(), LeaseError> {
    let invalid = |reason| {
        Err(LeaseError::InvalidKey {
            key: key.to_owned(),
            reason,
        })
    };
    if key.is_empty() {
        return invalid("it is empty");
    }
    if key.len() > LEASE_KEY_LEN_MAX {
        return invalid("it is longer than 80 bytes");
    }
    if !key.bytes().all(|byte| byte.is_ascii_graphic()) {
        return invalid("only printable ASCII without spaces is allowed");
    }
    Ok(())
}

fn check_holder(holder_id: &str) -> Result<(), LeaseError> {
    let invalid = |reason| {
        Err(LeaseError::InvalidHolderId {
            holder_id: holder_id.to_owned(),
            reason,
        })
    };
    if holder_id.is_empty() {
        return invalid("it is empty");
    }
    if holder_id.len() > HOLDER_ID_LEN_MAX {
        return invalid("it is longer than 256 bytes");
    }
    if holder_id.chars().any(char::is_control) {
        return invalid("it contains control characters");
    }
    Ok(())
}

fn ttl_ms(ttl: Duration) -> Result<u64, LeaseError> {
    if !(TTL_MIN..=TTL_MAX).contains(&ttl) {
        return Err(LeaseError::InvalidTtl {
            ttl,
            reason: "it must be from 1 ms to 24 hours",
        });
    }
    // Within TTL_MAX the milliseconds fit a u64; a sub-millisecond rest rounds down.
    Ok(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_must_be_short_printable_ascii() {
        assert!(check_key("tenant-4/orders/lane/17").is_ok());
        assert!(check_key("").is_err());
        assert!(check_key("has space").is_err());
        assert!(check_key("tab\t").is_err());
        assert!(check_key("é").is_err());
        assert!(check_key(&"k".repeat(LEASE_KEY_LEN_MAX)).is_ok());
        assert!(check_key(&"k".repeat(LEASE_KEY_LEN_MAX + 1)).is_err());
    }

    #[test]
    fn holder_ids_must_be_non_empty_bounded_and_without_controls() {
        assert!(check_holder("host-a/pid 12/ünïcode").is_ok());
        assert!(check_holder("").is_err());
        assert!(check_holder("a\nb").is_err());
        assert!(check_holder(&"h".repeat(HOLDER_ID_LEN_MAX + 1)).is_err());
    }

    #[test]
    fn ttls_outside_one_millisecond_to_one_day_are_refused() {
        assert_eq!(ttl_ms(TTL_MIN).unwrap(), 1);
        assert_eq!(ttl_ms(TTL_MAX).unwrap(), 86_400_000);
        assert!(ttl_ms(Duration::ZERO).is_err());
        assert!(ttl_ms(Duration::from_micros(999)).is_err());
        assert!(ttl_ms(TTL_MAX + Duration::from_millis(1)).is_err());
    }
}
