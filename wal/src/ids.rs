//! Newtypes for the numbers the log passes between its modules: segment indexes, fencing
//! tokens and byte offsets inside a segment. Sequences and lanes come from
//! `tidelog-watermarks` ([`GlobalSeq`](tidelog_watermarks::GlobalSeq) and friends).

use std::fmt;

/// Position of a segment file in the log. The first segment has index 1; indexes are
/// contiguous, and a gap is corruption.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct SegmentIndex(pub u64);

impl SegmentIndex {
    /// The first segment of a log.
    pub const FIRST: SegmentIndex = SegmentIndex(1);

    /// The segment that follows this one, or `None` on overflow (which no real log reaches).
    #[must_use]
    pub fn checked_next(self) -> Option<SegmentIndex> {
        self.0.checked_add(1).map(SegmentIndex)
    }

    /// The raw value, for encoding.
    #[must_use]
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for SegmentIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The writer's fencing token: the lease `term` and the `generation` within it. Every
/// segment carries the token of the writer that created it; tokens order lexicographically
/// (term first, then generation), and a writer holding a lower token than a segment on disk
/// has been fenced and must not write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct FencingToken {
    /// Lease term: moves forward whenever another holder takes the lease.
    pub term: u64,
    /// Generation within the term: moves forward on each hand-off inside a term.
    pub generation: u64,
}

impl FencingToken {
    /// The token of a single-process deployment without a lease.
    pub const INITIAL: FencingToken = FencingToken {
        term: 0,
        generation: 0,
    };

    /// A token from its parts.
    #[must_use]
    pub const fn new(term: u64, generation: u64) -> FencingToken {
        FencingToken { term, generation }
    }
}

impl fmt::Display for FencingToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "term {} generation {}", self.term, self.generation)
    }
}

/// A byte offset from the start of a segment file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct SegmentOffset(pub u64);

impl SegmentOffset {
    /// The raw value.
    #[must_use]
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for SegmentOffset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fencing_tokens_order_by_term_then_generation() {
        assert!(FencingToken::new(1, 9) < FencingToken::new(2, 0));
        assert!(FencingToken::new(2, 0) < FencingToken::new(2, 1));
        assert_eq!(FencingToken::new(3, 3), FencingToken::new(3, 3));
    }

    #[test]
    fn indexes_offsets_and_tokens_print_their_numbers() {
        assert_eq!(SegmentIndex(7).to_string(), "7");
        assert_eq!(SegmentOffset(4096).to_string(), "4096");
        assert_eq!(FencingToken::new(2, 3).to_string(), "term 2 generation 3");
    }

    #[test]
    fn segment_index_next_refuses_to_wrap() {
        assert_eq!(SegmentIndex(1).checked_next(), Some(SegmentIndex(2)));
        assert_eq!(SegmentIndex(u64::MAX).checked_next(), None);
    }
}
