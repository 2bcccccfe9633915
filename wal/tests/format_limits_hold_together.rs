//! What could go wrong: the segment size limits drift from the format (in-segment offsets
//! are `u32`, frames are aligned), so a log accepts a segment size whose offsets overflow,
//! or whose end is not frame-aligned. Found missing by cargo-mutants (docs/mutants.md).
mod common;
use common::*;
use tidelog_wal::format::{FRAME_ALIGN, MAX_SEGMENT_SIZE, MIN_SEGMENT_SIZE};
use tidelog_wal::{OpenError, RecoveryMode, SimDisk, Wal, WalOptions};

#[test]
fn the_largest_segment_is_frame_aligned_and_its_offsets_fit_in_u32() {
    // Read at run time (not in a const block): a changed constant must fail this test,
    // not the build.
    let max = std::hint::black_box(MAX_SEGMENT_SIZE);
    assert_eq!(max % FRAME_ALIGN as u64, 0);
    assert!(max <= u64::from(u32::MAX));
    assert!(max > u64::from(u32::MAX) - FRAME_ALIGN as u64);
    assert!(std::hint::black_box(MIN_SEGMENT_SIZE) < max);
}

#[test]
fn a_segment_size_past_the_u32_offsets_is_refused_before_anything_is_written() {
    let disk = SimDisk::new();
    for size in [
        std::hint::black_box(MAX_SEGMENT_SIZE).saturating_add(FRAME_ALIGN as u64),
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
