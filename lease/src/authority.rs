//! An append authority per lane: one holder per lane at a time, decided by a writer lease
//! under the key `<database_key>/lane/<lane>`.
//!
//! This is the lease-level half of the "one authority per space" model: [`LaneAuthority::
//! route`] tells a would-be appender whether to write itself (it holds the lane, taking
//! an unleased, expired or released lane on the way) or to forward the append to the
//! holder it names. Moving the append to the holder, and keeping one total order, is the
//! engine's job; this type only decides who.

use std::time::Duration;

use tidelog_watermarks::LaneId;

use super::error::LeaseError;
use super::manager::{LeaseManager, LEASE_KEY_LEN_MAX};
use super::record::{WriterLease, BASE_TERM};

/// Longest lane key suffix: `/lane/` and the ten digits of `u32::MAX`.
const LANE_SUFFIX_LEN_MAX: usize = 16;

/// Where an append to a lane must go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppendRoute {
    /// This holder owns the lane: append locally, stamped with this tenure's token.
    Local(WriterLease),
    /// Another holder owns the lane: forward the append to the holder this record names.
    Forward(WriterLease),
}

/// Decides, lane by lane, whether one holder (a process, a node) may append.
#[derive(Debug, Clone)]
pub struct LaneAuthority {
    leases: LeaseManager,
    database_key: String,
    holder_id: String,
    ttl: Duration,
    term: u64,
}

impl LaneAuthority {
    /// The authority of `holder_id` over the lanes of `database_key`, taking lane leases
    /// for `ttl` at [`BASE_TERM`]. The database key must leave room for the lane suffix
    /// (at most 64 bytes).
    pub fn new(
        leases: LeaseManager,
        database_key: &str,
        holder_id: &str,
        ttl: Duration,
    ) -> Result<Self, LeaseError> {
        if database_key.len() > LEASE_KEY_LEN_MAX - LANE_SUFFIX_LEN_MAX {
            return Err(LeaseError::InvalidKey {
                key: database_key.to_owned(),
                reason: "a database key with lanes must be at most 64 bytes",
            });
        }
        Ok(LaneAuthority {
            leases,
            database_key: database_key.to_owned(),
            holder_id: holder_id.to_owned(),
            ttl,
            term: BASE_TERM,
        })
    }

    /// The same authority taking lane leases at `term`.
    #[must_use]
    pub fn with_term(mut self, term: u64) -> Self {
        self.term = term;
        self
    }

    /// The lease key of `lane`: `<database_key>/lane/<lane>`.
    #[must_use]
    pub fn lane_key(&self, lane: LaneId) -> String {
        format!("{}/lane/{}", self.database_key, lane.get())
    }

    /// Takes (or continues) the lease of `lane`; errors as
    /// [`LeaseManager::try_acquire_for_term`].
    pub fn acquire(&self, lane: LaneId) -> Result<WriterLease, LeaseError> {
        self.leases
            .try_acquire_for_term(&self.lane_key(lane), &self.holder_id, self.ttl, self.term)
    }

    /// True when the published lease of `lane` is live and ours.
    pub fn holds(&self, lane: LaneId) -> Result<bool, LeaseError> {
        let now_ms = self.leases.now_ms();
        Ok(self
            .leases
            .current(&self.lane_key(lane))?
            .is_some_and(|lease| lease.is_live(now_ms) && lease.holder_id == self.holder_id))
    }

    /// Where an append to `lane` must go. A lane nobody holds (never leased, expired or
    /// released) is acquired on the way, so the first append to a lane makes its
    /// appender the holder. A contender that loses the race for a free lane is routed to
    /// the winner.
    pub fn route(&self, lane: LaneId) -> Result<AppendRoute, LeaseError> {
        let key = self.lane_key(lane);
        let now_ms = self.leases.now_ms();
        if let Some(current) = self.leases.current(&key)? {
            if current.is_live(now_ms) && current.holder_id != self.holder_id {
                return Ok(AppendRoute::Forward(current));
            }
        }
        match self.acquire(lane) {
            Ok(lease) => Ok(AppendRoute::Local(lease)),
            Err(LeaseError::Held { current, .. }) => Ok(AppendRoute::Forward(*current)),
            Err(LeaseError::LostRace {
                found: Some(winner),
                ..
            }) if winner.is_live(self.leases.now_ms()) && winner.holder_id != self.holder_id => {
                Ok(AppendRoute::Forward(*winner))
            }
            Err(other) => Err(other),
        }
    }
}
