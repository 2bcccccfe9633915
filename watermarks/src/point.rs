//! Points on the hybrid logical clock, and the six kinds of watermark.

use crate::ids::GlobalSeq;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A point in the log: the global sequence of a record and the wall-clock milliseconds the
/// writer stamped on it.
///
/// Coverage is decided by `global_sequence` only. `wall_ms` is informative (for humans and
/// time-based queries): two writers' clocks may disagree, the sequence never does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct HlcPoint {
    /// Milliseconds since the Unix epoch, never decreasing along the log.
    pub wall_ms: u64,
    /// Position in the global order; 0 is the origin.
    pub global_sequence: u64,
}

impl HlcPoint {
    /// The origin: before the first record.
    pub const ORIGIN: HlcPoint = HlcPoint {
        wall_ms: 0,
        global_sequence: 0,
    };

    /// A point from its parts.
    #[must_use]
    pub fn new(wall_ms: u64, seq: GlobalSeq) -> Self {
        HlcPoint {
            wall_ms,
            global_sequence: seq.get(),
        }
    }

    /// The global sequence as a newtype.
    #[must_use]
    pub fn seq(self) -> GlobalSeq {
        GlobalSeq(self.global_sequence)
    }

    /// Whether a frontier standing at `self` covers `target`: by sequence only, and the
    /// boundary (`self == target`) is covered.
    #[must_use]
    pub fn covers(self, target: HlcPoint) -> bool {
        self.global_sequence >= target.global_sequence
    }

    /// The point with the higher sequence (`self` on a tie, so a frontier never changes
    /// its wall stamp for the same sequence).
    #[must_use]
    pub fn max_by_seq(self, other: HlcPoint) -> HlcPoint {
        if other.global_sequence > self.global_sequence {
            other
        } else {
            self
        }
    }

    /// `self`, or `ceiling` when `self` lies beyond it: the clamping rule for advances that
    /// would break an invariant.
    #[must_use]
    pub fn clamp_to(self, ceiling: HlcPoint) -> HlcPoint {
        if self.global_sequence > ceiling.global_sequence {
            ceiling
        } else {
            self
        }
    }
}

impl fmt::Display for HlcPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "seq {} @ {} ms", self.global_sequence, self.wall_ms)
    }
}

/// How far a record has travelled. Each kind is a frontier, global and per lane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WatermarkKind {
    /// The writer thread gave the record its global sequence.
    Accepted,
    /// The frame bytes are stored in the segment file (page cache, with `pwrite`), checksummed.
    Written,
    /// A successful fdatasync covers the frame.
    Durable,
    /// Readers may see it.
    Visible,
    /// The caller (a projection or state machine) reports it has applied it.
    Applied,
    /// It has been handed to subscribers.
    Emitted,
}

impl WatermarkKind {
    /// All six kinds, in the order a record passes them.
    pub const ALL: [WatermarkKind; 6] = [
        WatermarkKind::Accepted,
        WatermarkKind::Written,
        WatermarkKind::Durable,
        WatermarkKind::Visible,
        WatermarkKind::Emitted,
        WatermarkKind::Applied,
    ];

    /// Lower-case name, as used in messages and JSON.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            WatermarkKind::Accepted => "accepted",
            WatermarkKind::Written => "written",
            WatermarkKind::Durable => "durable",
            WatermarkKind::Visible => "visible",
            WatermarkKind::Applied => "applied",
            WatermarkKind::Emitted => "emitted",
        }
    }
}

impl fmt::Display for WatermarkKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(wall_ms: u64, seq: u64) -> HlcPoint {
        HlcPoint {
            wall_ms,
            global_sequence: seq,
        }
    }

    #[test]
    fn coverage_ignores_wall_time_and_includes_the_boundary() {
        assert!(p(1, 10).covers(p(9_999, 10)));
        assert!(p(9_999, 9).covers(p(1, 9)));
        assert!(!p(9_999, 9).covers(p(1, 10)));
    }

    #[test]
    fn max_by_seq_picks_the_higher_sequence_even_with_an_older_wall() {
        assert_eq!(p(9_999, 5).max_by_seq(p(1, 10)), p(1, 10));
        assert_eq!(p(1, 10).max_by_seq(p(9_999, 5)), p(1, 10));
        assert_eq!(p(1, 10).max_by_seq(p(2, 10)), p(1, 10));
    }

    #[test]
    fn clamp_to_keeps_points_at_or_below_the_ceiling() {
        assert_eq!(p(1, 3).clamp_to(p(2, 3)), p(1, 3));
        assert_eq!(p(1, 4).clamp_to(p(2, 3)), p(2, 3));
    }

    #[test]
    fn a_point_prints_and_returns_its_sequence() {
        assert_eq!(p(9, 5).to_string(), "seq 5 @ 9 ms");
        assert_eq!(p(9, 5).seq(), GlobalSeq(5));
        assert_eq!(HlcPoint::new(9, GlobalSeq(5)), p(9, 5));
    }

    #[test]
    fn every_kind_has_a_distinct_name() {
        let mut names: Vec<_> = WatermarkKind::ALL.iter().map(|k| k.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), 6);
    }
}
