//! Six frontiers side by side: the shape of both the global watermarks and each lane's.

use crate::point::{HlcPoint, WatermarkKind};
use serde::{Deserialize, Serialize};

/// The six watermarks of one scope (the whole database, or one lane).
///
/// Invariants (kept by `WatermarkState`, checked in debug builds):
/// `accepted >= written >= durable`, `accepted >= visible >= applied`,
/// `emitted >= visible`, all compared by sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Frontiers {
    /// See [`WatermarkKind::Accepted`].
    pub accepted_hlc: HlcPoint,
    /// See [`WatermarkKind::Written`].
    pub written_hlc: HlcPoint,
    /// See [`WatermarkKind::Durable`].
    pub durable_hlc: HlcPoint,
    /// See [`WatermarkKind::Visible`].
    pub visible_hlc: HlcPoint,
    /// See [`WatermarkKind::Applied`].
    pub applied_hlc: HlcPoint,
    /// See [`WatermarkKind::Emitted`].
    pub emitted_hlc: HlcPoint,
}

/// A lane's watermarks.
pub type LaneWatermarks = Frontiers;

/// The global watermarks, as returned by `WatermarkState::snapshot`.
pub type WatermarkSnapshot = Frontiers;

impl Frontiers {
    /// Every frontier at `point`: the state of a scope recovered from disk, where all that
    /// was found is durable and visible. Never the origin unless `point` is.
    #[must_use]
    pub fn for_bootstrap(point: HlcPoint) -> Self {
        Frontiers {
            accepted_hlc: point,
            written_hlc: point,
            durable_hlc: point,
            visible_hlc: point,
            applied_hlc: point,
            emitted_hlc: point,
        }
    }

    /// The frontier of one kind.
    #[must_use]
    pub fn current(&self, kind: WatermarkKind) -> HlcPoint {
        match kind {
            WatermarkKind::Accepted => self.accepted_hlc,
            WatermarkKind::Written => self.written_hlc,
            WatermarkKind::Durable => self.durable_hlc,
            WatermarkKind::Visible => self.visible_hlc,
            WatermarkKind::Applied => self.applied_hlc,
            WatermarkKind::Emitted => self.emitted_hlc,
        }
    }

    pub(crate) fn slot_mut(&mut self, kind: WatermarkKind) -> &mut HlcPoint {
        match kind {
            WatermarkKind::Accepted => &mut self.accepted_hlc,
            WatermarkKind::Written => &mut self.written_hlc,
            WatermarkKind::Durable => &mut self.durable_hlc,
            WatermarkKind::Visible => &mut self.visible_hlc,
            WatermarkKind::Applied => &mut self.applied_hlc,
            WatermarkKind::Emitted => &mut self.emitted_hlc,
        }
    }

    /// `visible - durable` in sequences: negative while readers lag durability, positive
    /// when records are visible before they are durable (the visible-once-written option).
    #[must_use]
    pub fn visible_minus_durable_seq(&self) -> i64 {
        signed_difference(
            self.visible_hlc.global_sequence,
            self.durable_hlc.global_sequence,
        )
    }

    /// The first invariant this scope breaks, if any, as a sentence.
    #[must_use]
    pub fn broken_invariant(&self) -> Option<&'static str> {
        let seq = |kind| self.current(kind).global_sequence;
        use WatermarkKind::*;
        if seq(Accepted) < seq(Written) {
            Some("written is ahead of accepted")
        } else if seq(Written) < seq(Durable) {
            Some("durable is ahead of written")
        } else if seq(Accepted) < seq(Visible) {
            Some("visible is ahead of accepted")
        } else if seq(Visible) < seq(Applied) {
            Some("applied is ahead of visible")
        } else if seq(Emitted) < seq(Visible) {
            Some("emitted is behind visible")
        } else if seq(Accepted) < seq(Emitted) {
            Some("emitted is ahead of accepted")
        } else {
            None
        }
    }
}

/// `a - b` as a signed number, saturating at the ends of `i64`.
fn signed_difference(a: u64, b: u64) -> i64 {
    if a >= b {
        i64::try_from(a - b).unwrap_or(i64::MAX)
    } else {
        i64::try_from(b - a).map_or(i64::MIN, |d| -d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_difference_is_negative_when_the_second_is_larger() {
        assert_eq!(signed_difference(3, 10), -7);
        assert_eq!(signed_difference(10, 3), 7);
        assert_eq!(signed_difference(u64::MAX, 0), i64::MAX);
        assert_eq!(signed_difference(0, u64::MAX), i64::MIN);
        assert_eq!(signed_difference(0, 5), -5);
    }

    #[test]
    fn default_frontiers_keep_every_invariant() {
        assert_eq!(Frontiers::default().broken_invariant(), None);
    }

    /// Frontiers with sequences (accepted, written, durable, visible, applied, emitted).
    fn at(seqs: [u64; 6]) -> Frontiers {
        let p = |s| HlcPoint {
            wall_ms: 1,
            global_sequence: s,
        };
        Frontiers {
            accepted_hlc: p(seqs[0]),
            written_hlc: p(seqs[1]),
            durable_hlc: p(seqs[2]),
            visible_hlc: p(seqs[3]),
            applied_hlc: p(seqs[4]),
            emitted_hlc: p(seqs[5]),
        }
    }

    #[test]
    fn broken_invariant_accepts_frontiers_that_are_equal_or_strictly_ordered() {
        assert_eq!(at([5; 6]).broken_invariant(), None);
        assert_eq!(at([9, 7, 5, 6, 4, 8]).broken_invariant(), None);
    }

    #[test]
    fn broken_invariant_names_each_broken_invariant_alone() {
        let cases = [
            ([3, 4, 0, 0, 0, 0], "written is ahead of accepted"),
            ([5, 3, 4, 0, 0, 0], "durable is ahead of written"),
            ([3, 3, 3, 4, 0, 4], "visible is ahead of accepted"),
            ([5, 5, 5, 3, 4, 3], "applied is ahead of visible"),
            ([5, 5, 5, 4, 0, 3], "emitted is behind visible"),
            ([5, 5, 5, 4, 0, 6], "emitted is ahead of accepted"),
        ];
        for (seqs, broken) in cases {
            assert_eq!(at(seqs).broken_invariant(), Some(broken), "{seqs:?}");
        }
    }

    #[test]
    fn visible_minus_durable_is_signed() {
        assert_eq!(at([9, 9, 7, 4, 0, 4]).visible_minus_durable_seq(), -3);
        assert_eq!(at([9, 2, 2, 6, 0, 6]).visible_minus_durable_seq(), 4);
    }

    #[test]
    fn broken_invariant_names_a_durable_frontier_ahead_of_written() {
        let mut f = Frontiers::default();
        f.accepted_hlc.global_sequence = 5;
        f.written_hlc.global_sequence = 3;
        f.durable_hlc.global_sequence = 4;
        assert_eq!(f.broken_invariant(), Some("durable is ahead of written"));
    }
}
