//! What could go wrong: the segment size limits drift from the format (in-segment offsets
//! are `u32`, frames are aligned), so a log accepts a segment size whose offsets overflow,
//! or whose end is not frame-aligned. Found missing by cargo-mutants (docs/mutants.md).
mod common;
use common::*;
use tidelog_wal::format::{FRAME_ALIGN, MAX_SEGMENT_SIZE, MIN_SEGMENT_SIZE};
use tidelog_wal::{OpenError, RecoveryMode, SimDisk, Wal, WalOptions};

#[test]
fn the_largest_segment_is_frame_aligned_and_its_offsets_fit_in_u32() {
    assert_eq!(MAX_SEGMENT_SIZE % FRAME_ALIGN as u64, 0);
    assert!(MAX_SEGMENT_SIZE <= u64::from(u32::MAX));
    assert!(MAX_SEGMENT_SIZE > u64::from(u32::MAX) - FRAME_ALIGN as u64);
    assert!(MIN_SEGMENT_SIZE < MAX_SEGMENT_SIZE);
}

#[test]
fn a_segment_size_past_the_u32_offsets_is_refused_before_anything_is_written() {
    let disk = SimDisk::new();
    for size in [
        MAX_SEGMENT_SIZE + FRAME_ALIGN as u64,
        u64::from(u32::MAX) + 1,
        MIN_SEGMENT_SIZE - 1,
    ] {
        let options = WalOptions {
            segment_size: size,
            ..opts(RecoveryMode::AbsoluteConsistency)
        };
        let err = Wal::open_with(disk.clone(), std::path::Path::new("/db/wal"), options)
            .err()
            .unwrap_or_else(|| panic!("segment size {size} accepted"));
        assert!(matches!(err, OpenError::InvalidOptions { .. }), "{err}");
    }
    assert!(disk.paths().is_empty(), "a refused open wrote files");
}
