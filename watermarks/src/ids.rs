//! Newtypes for the numbers that cross module boundaries: global sequences, lanes and
//! lane sequences. Every layer of tidelog (watermarks, log, engine) speaks these.
//!
//! Sequences start at 1; 0 is the origin ("nothing yet"). Transitions are named
//! (`next`) and checked: a sequence that would overflow is a bug, not a wrap.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Position of a record in the database's single total order. 0 means "before the first
/// record"; the first record gets 1.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct GlobalSeq(pub u64);

impl GlobalSeq {
    /// The origin: no record has this sequence.
    pub const ZERO: GlobalSeq = GlobalSeq(0);

    /// The sequence that follows this one.
    ///
    /// # Panics
    /// On overflow of `u64`, which 2^64 appends cannot reach in practice; wrapping would
    /// silently reuse sequences, so it is refused loudly.
    #[must_use]
    #[allow(clippy::expect_used)] // 2^64 appends cannot happen; a wrap would reuse sequences
    pub fn next(self) -> GlobalSeq {
        GlobalSeq(self.0.checked_add(1).expect("global sequence overflow"))
    }

    /// The raw value, for encoding.
    #[must_use]
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for GlobalSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Identifier of a lane: an independent stream with its own contiguous lane sequence,
/// interleaved with the others in the global order.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct LaneId(pub u32);

impl LaneId {
    /// The raw value, for encoding.
    #[must_use]
    pub fn get(self) -> u32 {
        self.0
    }
}

impl From<u32> for LaneId {
    fn from(value: u32) -> Self {
        LaneId(value)
    }
}

impl PartialEq<u32> for LaneId {
    fn eq(&self, other: &u32) -> bool {
        self.0 == *other
    }
}

impl fmt::Display for LaneId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Position of a record within its lane. Contiguous per lane, starting at 1; 0 means
/// "the lane is empty".
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct LaneSeq(pub u64);

impl LaneSeq {
    /// The origin: an empty lane.
    pub const ZERO: LaneSeq = LaneSeq(0);

    /// The lane sequence that follows this one.
    ///
    /// # Panics
    /// On overflow of `u64` (see [`GlobalSeq::next`]).
    #[must_use]
    #[allow(clippy::expect_used)] // as GlobalSeq::next
    pub fn next(self) -> LaneSeq {
        LaneSeq(self.0.checked_add(1).expect("lane sequence overflow"))
    }

    /// The raw value, for encoding.
    #[must_use]
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for LaneSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_moves_each_sequence_forward_by_exactly_one() {
        assert_eq!(GlobalSeq(7).next(), GlobalSeq(8));
        assert_eq!(LaneSeq(0).next(), LaneSeq(1));
    }

    #[test]
    #[should_panic(expected = "global sequence overflow")]
    fn global_sequence_refuses_to_wrap() {
        let _ = GlobalSeq(u64::MAX).next();
    }

    #[test]
    fn sequences_and_lanes_print_and_return_their_raw_value() {
        assert_eq!(GlobalSeq(42).to_string(), "42");
        assert_eq!(LaneSeq(43).to_string(), "43");
        assert_eq!(LaneId(44).to_string(), "44");
        assert_eq!(GlobalSeq(45).get(), 45);
        assert_eq!(LaneSeq(46).get(), 46);
        assert_eq!(LaneId(47).get(), 47);
    }

    #[test]
    fn lane_id_compares_with_its_raw_value() {
        assert_eq!(LaneId::from(3), 3u32);
        assert_ne!(LaneId(3), 4u32);
    }
}
