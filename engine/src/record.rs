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
