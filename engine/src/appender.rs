//! The append methods every handle on a database offers, written once: each handle
//! ([`Engine`](crate::Engine), [`Follower`](crate::Follower),
//! [`Database`](crate::Database), [`LaneLogs`](crate::LaneLogs)) implements only
//! [`Appender::append_with`], its one door for an [`Append`]; the convenience methods
//! build that value here and nowhere else, so a key, an expectation or a durability means
//! the same whatever handle it went through.

use crate::record::{Append, Durability, Receipt};
use tidelog_watermarks::{LaneId, LaneSeq};

/// A handle that appends: one [`Append`] in, a [`Receipt`] out. The provided methods are
/// shorthands for [`Appender::append_with`] of the value they name; they are answered as
/// [`Appender::DURABILITY`] says, except [`Appender::append_durable`], always durable.
///
/// Generic code can append through any handle:
///
/// ```
/// use tidelog::{Appender, Receipt};
///
/// fn place_order<A: Appender>(log: &A, order: &[u8]) -> Result<Receipt, A::Error> {
///     log.append_idempotent(7, order.to_vec(), b"order placed".to_vec())
/// }
///
/// # let dir = tempfile::tempdir()?;
/// let engine = tidelog::Engine::open(dir.path(), tidelog::Options::default())?;
/// let first = place_order(&engine, b"order-17")?;
/// assert_eq!(place_order(&engine, b"order-17")?, first); // the key answers the retry
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait Appender {
    /// What a refused or failed append reports.
    type Error;

    /// When the convenience methods are answered (see [`Durability`] for the rule):
    /// [`Durability::Written`] on the [`Engine`](crate::Engine), in the writer's own
    /// process, where the watermark handle can wait for a sync;
    /// [`Durability::Durable`] on the handles whose receipt crosses a process
    /// ([`Follower`](crate::Follower), [`Database`](crate::Database),
    /// [`LaneLogs`](crate::LaneLogs)).
    const DURABILITY: Durability;

    /// Appends what `append` describes (lane, payload, key, expectation, durability),
    /// validated by the engine's one validation whatever handle it came through.
    ///
    /// # Errors
    /// The handle's: see each implementation.
    fn append_with(&self, append: Append) -> Result<Receipt, Self::Error>;

    /// Appends `payload` to `lane`, answered as [`Appender::DURABILITY`] says.
    ///
    /// # Errors
    /// As [`Appender::append_with`].
    fn append(
        &self,
        lane: impl Into<LaneId>,
        payload: impl Into<Vec<u8>>,
    ) -> Result<Receipt, Self::Error> {
        self.append_with(Append::new(lane, payload).durability(Self::DURABILITY))
    }

    /// Appends `payload` to `lane`, answered only once the record is durable (the same
    /// as [`Appender::append`] on a handle whose receipt crosses a process).
    ///
    /// # Errors
    /// As [`Appender::append_with`].
    fn append_durable(
        &self,
        lane: impl Into<LaneId>,
        payload: impl Into<Vec<u8>>,
    ) -> Result<Receipt, Self::Error> {
        self.append_with(Append::new(lane, payload).durable())
    }

    /// Appends only if `lane`'s last lane sequence is `expected` (0 for an empty lane).
    ///
    /// # Errors
    /// [`AppendError::Conflict`](crate::AppendError::Conflict) when it is not (nothing
    /// written), else as [`Appender::append_with`].
    fn append_expecting(
        &self,
        lane: impl Into<LaneId>,
        expected: LaneSeq,
        payload: impl Into<Vec<u8>>,
    ) -> Result<Receipt, Self::Error> {
        self.append_with(
            Append::new(lane, payload)
                .expecting(expected)
                .durability(Self::DURABILITY),
        )
    }

    /// Appends with an idempotency key: if a record with this key is still in the log,
    /// returns that record's receipt and writes nothing. The way to retry an append whose
    /// outcome was not learnt ([`AppendError::Unanswered`](crate::AppendError::Unanswered)
    /// from a handle that forwards), to this writer or its successor.
    ///
    /// # Errors
    /// As [`Appender::append_with`];
    /// [`AppendError::KeyTooLong`](crate::AppendError::KeyTooLong) above
    /// [`IDEMPOTENCY_KEY_LEN_MAX`](crate::IDEMPOTENCY_KEY_LEN_MAX).
    fn append_idempotent(
        &self,
        lane: impl Into<LaneId>,
        key: impl Into<Vec<u8>>,
        payload: impl Into<Vec<u8>>,
    ) -> Result<Receipt, Self::Error> {
        self.append_with(
            Append::new(lane, payload)
                .key(key)
                .durability(Self::DURABILITY),
        )
    }

    /// [`Appender::append_idempotent`] that also expects `lane` to be at `expected`
    /// (when given). The key is looked up before the expectation, so retrying an append
    /// that landed returns its receipt rather than a conflict: how a caller appends
    /// exactly once with optimistic concurrency.
    ///
    /// # Errors
    /// As [`Appender::append_idempotent`];
    /// [`AppendError::Conflict`](crate::AppendError::Conflict) when the lane is elsewhere
    /// (nothing written).
    fn append_idempotent_expecting(
        &self,
        lane: impl Into<LaneId>,
        key: impl Into<Vec<u8>>,
        expected: Option<LaneSeq>,
        payload: impl Into<Vec<u8>>,
    ) -> Result<Receipt, Self::Error> {
        self.append_with(
            Append::new(lane, payload)
                .key(key)
                .expecting_if(expected)
                .durability(Self::DURABILITY),
        )
    }
}
