//! What a wait can end in besides success.

use crate::ids::LaneId;
use crate::point::{HlcPoint, WatermarkKind};

/// Why a `wait_for_*` call returned without its target being covered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WaitError {
    /// The full timeout passed and the watermark still does not cover the target.
    #[error(
        "timed out after {waited_ms} ms waiting for the {watermark} watermark{} to reach sequence {} (it may still get there: wait again, or check that the writer is making progress)",
        lane_suffix(*lane),
        target.global_sequence
    )]
    WaitTimeout {
        /// The watermark that was waited on.
        watermark: WatermarkKind,
        /// The lane waited on, or `None` for the global frontier.
        lane: Option<LaneId>,
        /// The point waited for.
        target: HlcPoint,
        /// How long the wait lasted.
        waited_ms: u64,
    },
    /// The writer failed (a write or a sync returned an error) and the poison latch is
    /// set: the watermark will never move again in this process.
    #[error(
        "the writer crashed (a write or fsync failed) while waiting for the {watermark} watermark{} to reach sequence {}: nothing more becomes durable in this process; close and reopen the database to recover from what is on disk",
        lane_suffix(*lane),
        target.global_sequence
    )]
    Poisoned {
        /// The watermark that was waited on.
        watermark: WatermarkKind,
        /// The lane waited on, or `None` for the global frontier.
        lane: Option<LaneId>,
        /// The point waited for.
        target: HlcPoint,
    },
}

fn lane_suffix(lane: Option<LaneId>) -> String {
    lane.map_or_else(String::new, |lane| format!(" of lane {lane}"))
}
