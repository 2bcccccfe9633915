//! What callers hand in and get back: receipts and records.

use tidelog_wal::FrameRef;
use tidelog_watermarks::{GlobalSeq, HlcPoint, LaneId, LaneSeq};

/// Proof that the writer gave a record its place: lane, lane sequence and point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Receipt {
    /// The record's lane.
    pub lane: LaneId,
    /// Its position in the lane (contiguous from 1).
    pub lane_seq: LaneSeq,
    /// Its global sequence and wall stamp.
    pub point: HlcPoint,
}

impl Receipt {
    /// The global sequence.
    #[must_use]
    pub fn global_seq(&self) -> GlobalSeq {
        self.point.seq()
    }
}

/// When an append is answered. The rule on every path: an append is answered once
/// written unless it asks for [`Durability::Durable`]. The convenience methods pick one
/// by where their receipt goes: on [`Engine`](crate::Engine) (the writer's own process,
/// where the watermark handle can wait) the plain methods are `Written` and the
/// `_durable` ones `Durable`; a receipt that crosses a process (every append method of
/// [`Follower`](crate::Follower), [`Database`](crate::Database) and
/// [`LaneLogs`](crate::LaneLogs)) is `Durable`, because the caller cannot wait on the
/// writer's watermarks and a keyed retry must find the record after the writer dies.
/// Each handle states its choice once, as its
/// [`Appender::DURABILITY`](crate::Appender::DURABILITY).
/// [`Append`] carries it explicitly, unchanged through every path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Durability {
    /// Answered once the writer has written the record (readable in this process,
    /// ordered, not yet synced: a crash may still take it).
    #[default]
    Written,
    /// Answered once the sync that covers the record has succeeded.
    Durable,
}

/// One append, described once: the lane, the payload, an optional idempotency key, an
/// optional expected lane sequence and when to be answered. Every append path (the
/// [`Engine`](crate::Engine) methods, [`Follower`](crate::Follower) over the socket,
/// [`Database`](crate::Database), [`LaneLogs`](crate::LaneLogs)) builds one, hands it
/// to the engine's single validation ([`Engine::append_with`](crate::Engine::append_with))
/// and, when forwarded, sends it unchanged over the wire. Misuse (a key over
/// [`IDEMPOTENCY_KEY_LEN_MAX`](crate::IDEMPOTENCY_KEY_LEN_MAX), a payload over
/// [`Options::max_record_bytes`](crate::Options::max_record_bytes), a record that does
/// not fit a segment once framed) is refused there with nothing written, never a poison.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let engine = tidelog::Engine::open(dir.path(), tidelog::Options::default())?;
/// use tidelog::{Append, LaneSeq};
///
/// let order = Append::new(7, b"order placed".to_vec())
///     .key(b"order-17".to_vec())
///     .expecting(LaneSeq(0))
///     .durable();
/// let first = engine.append_with(order.clone())?;
/// assert_eq!(engine.append_with(order)?, first); // the key answers the retry
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Append {
    /// The lane to append to.
    pub lane: LaneId,
    /// The record.
    pub payload: Vec<u8>,
    /// Idempotency key (empty for none): a record with this key still in the log is
    /// returned instead of writing again.
    pub key: Vec<u8>,
    /// Optimistic concurrency: the lane's last lane sequence must be this (0 for an
    /// empty lane), else [`AppendError::Conflict`](crate::AppendError::Conflict).
    pub expected: Option<LaneSeq>,
    /// When the append is answered.
    pub durability: Durability,
}

impl Append {
    /// A plain append of `payload` to `lane`: no key, no expectation, answered once
    /// written.
    pub fn new(lane: impl Into<LaneId>, payload: impl Into<Vec<u8>>) -> Append {
        Append {
            lane: lane.into(),
            payload: payload.into(),
            key: Vec::new(),
            expected: None,
            durability: Durability::Written,
        }
    }

    /// With an idempotency key.
    #[must_use]
    pub fn key(mut self, key: impl Into<Vec<u8>>) -> Append {
        self.key = key.into();
        self
    }

    /// Only if the lane's last lane sequence is `expected`.
    #[must_use]
    pub fn expecting(mut self, expected: LaneSeq) -> Append {
        self.expected = Some(expected);
        self
    }

    /// With the expectation given, or none.
    #[must_use]
    pub fn expecting_if(mut self, expected: Option<LaneSeq>) -> Append {
        self.expected = expected;
        self
    }

    /// Answered once durable.
    #[must_use]
    pub fn durable(self) -> Append {
        self.durability(Durability::Durable)
    }

    /// Answered as `durability` says.
    #[must_use]
    pub fn durability(mut self, durability: Durability) -> Append {
        self.durability = durability;
        self
    }

    /// Whether it is answered only once durable.
    #[must_use]
    pub fn is_durable(&self) -> bool {
        self.durability == Durability::Durable
    }
}

/// One record of an `append_batch`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchEntry {
    /// The lane to append to.
    pub lane: LaneId,
    /// The payload.
    pub payload: Vec<u8>,
    /// Optimistic concurrency: the lane sequence the lane must be at before this record
    /// (its last record's), or `None` for no check.
    pub expected_lane_seq: Option<LaneSeq>,
}

impl BatchEntry {
    /// A record for `lane` without an expectation.
    pub fn new(lane: impl Into<LaneId>, payload: impl Into<Vec<u8>>) -> Self {
        BatchEntry {
            lane: lane.into(),
            payload: payload.into(),
            expected_lane_seq: None,
        }
    }
}

/// A record read back from the log, zero-copy over the mapped segment.
#[derive(Debug, Clone)]
pub struct Record {
    frame: FrameRef,
}

impl Record {
    pub(crate) fn new(frame: FrameRef) -> Self {
        Record { frame }
    }

    /// The record's lane.
    #[must_use]
    pub fn lane(&self) -> LaneId {
        self.frame.lane()
    }

    /// Its lane sequence.
    #[must_use]
    pub fn lane_seq(&self) -> LaneSeq {
        self.frame.lane_seq()
    }

    /// Its global sequence.
    #[must_use]
    pub fn global_seq(&self) -> GlobalSeq {
        self.frame.global_seq()
    }

    /// Its point (global sequence and wall stamp).
    #[must_use]
    pub fn point(&self) -> HlcPoint {
        HlcPoint::new(self.frame.wall_ms(), self.frame.global_seq())
    }

    /// The payload bytes.
    #[must_use]
    pub fn payload(&self) -> &[u8] {
        self.frame.payload()
    }

    /// The idempotency key it was appended with (empty if none).
    #[must_use]
    pub fn idempotency_key(&self) -> &[u8] {
        self.frame.key()
    }

    /// The receipt it was acknowledged with.
    #[must_use]
    pub fn receipt(&self) -> Receipt {
        Receipt {
            lane: self.lane(),
            lane_seq: self.lane_seq(),
            point: self.point(),
        }
    }
}
