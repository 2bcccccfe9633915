//! Serializable views of the watermarks, for monitoring and the `stats` command.

use crate::frontiers::Frontiers;
use crate::ids::LaneId;
use serde::{Deserialize, Serialize};

/// Global and per-lane frontiers at one instant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatermarkView {
    /// The global frontiers.
    pub global: Frontiers,
    /// Global `visible - durable`, in sequences (signed).
    pub visible_minus_durable_seq: i64,
    /// Whether the poison latch is set.
    pub poisoned: bool,
    /// Every lane seen, in id order.
    pub lanes: Vec<LaneView>,
}

/// One lane's frontiers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaneView {
    /// The lane.
    pub lane: LaneId,
    /// Its frontiers.
    pub watermarks: Frontiers,
    /// The lane's `visible - durable`, in sequences (signed): negative while visibility
    /// lags durability.
    pub visible_minus_durable_seq: i64,
}

impl LaneView {
    pub(crate) fn new(lane: LaneId, watermarks: Frontiers) -> Self {
        LaneView {
            lane,
            watermarks,
            visible_minus_durable_seq: watermarks.visible_minus_durable_seq(),
        }
    }
}
