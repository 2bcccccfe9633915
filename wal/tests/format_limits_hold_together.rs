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

#[test]
fn max_record_bytes_outside_one_byte_to_four_gib_minus_64_is_refused() {
    let disk = SimDisk::new();
    let with = |max_record_bytes| WalOptions {
        max_record_bytes,
        ..opts(RecoveryMode::AbsoluteConsistency)
    };
    for bad in [0, u32::MAX - 63, u32::MAX] {
        let err = Wal::open_with(disk.clone(), std::path::Path::new("/db/bad"), with(bad))
            .err()
            .unwrap_or_else(|| panic!("max_record_bytes {bad} accepted"));
        assert!(matches!(err, OpenError::InvalidOptions { .. }), "{err}");
    }
    assert!(disk.paths().is_empty(), "a refused open wrote files");
    for good in [1, u32::MAX - 64] {
        let dir = format!("/db/{good}");
        Wal::open_with(disk.clone(), std::path::Path::new(&dir), with(good))
            .unwrap_or_else(|e| panic!("max_record_bytes {good} refused: {e}"));
    }
}

/// A unit of one frame per payload, starting at sequence `first`.
fn new_frames(payloads: &[Vec<u8>], first: u64) -> Vec<tidelog_wal::NewFrame<'_>> {
    use tidelog_wal::{GlobalSeq, LaneId, LaneSeq, NewFrame};
    payloads
        .iter()
        .enumerate()
        .map(|(i, p)| NewFrame {
            global_seq: GlobalSeq(first + i as u64),
            lane: LaneId(1),
            lane_seq: LaneSeq(first + i as u64),
            wall_ms: 0,
            key: b"",
            payload: p,
        })
        .collect()
}

#[test]
fn a_unit_filling_a_segment_between_header_and_seal_sectors_fits_and_one_more_byte_does_not() {
    use tidelog_wal::format::{frame_len_on_disk, SECTOR_LEN};
    use tidelog_wal::{AppendError, GlobalSeq};
    // Frames go between the header's sector and the seal's: SEGMENT - 2 sectors.
    let capacity = SEGMENT as usize - 2 * SECTOR_LEN;
    let frame = frame_len_on_disk(0, 1000).unwrap();
    let whole = capacity / frame;
    let last = capacity - whole * frame;
    let last_payload = last - frame_len_on_disk(0, 0).unwrap();
    let payloads: Vec<Vec<u8>> = (0..whole)
        .map(|_| vec![7u8; 1000])
        .chain([vec![7u8; last_payload]])
        .collect();
    let disk = SimDisk::new();
    let dir = std::path::Path::new("/db/wal");
    let (mut wal, _) =
        Wal::open_with(disk.clone(), dir, opts(RecoveryMode::AbsoluteConsistency)).unwrap();
    // One byte more (8 on disk) than the capacity: refused, nothing written.
    let mut over = payloads.clone();
    over.last_mut().unwrap().push(7);
    match wal.append(&new_frames(&over, 1)) {
        Err(AppendError::UnitTooLarge { bytes, capacity: c }) => {
            assert_eq!((bytes, c), (capacity as u64 + 8, capacity as u64));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(wal.last_written(), GlobalSeq::ZERO);
    // Exactly the capacity: fits in one segment, and reads back after a reopen.
    let n = payloads.len() as u64;
    wal.append(&new_frames(&payloads, 1)).unwrap();
    assert_eq!(
        wal.current_segment().get(),
        1,
        "it filled the first segment"
    );
    wal.sync().unwrap();
    drop(wal);
    let (wal, rec) =
        Wal::open_with(disk.clone(), dir, opts(RecoveryMode::AbsoluteConsistency)).unwrap();
    assert!(rec.report.is_clean(), "{:?}", rec.report);
    assert_eq!(rec.last_seq, GlobalSeq(n));
    let lens: Vec<usize> = wal
        .reader()
        .iter_from(GlobalSeq(1))
        .map(|f| f.payload().len())
        .collect();
    assert_eq!(lens, payloads.iter().map(Vec::len).collect::<Vec<_>>());
}

#[test]
fn a_reopen_keeps_the_segment_size_the_log_was_created_with() {
    let disk = SimDisk::new();
    let dir = std::path::Path::new("/db/wal");
    let created = opts(RecoveryMode::AbsoluteConsistency);
    {
        let (mut wal, _) = Wal::open_with(disk.clone(), dir, created.clone()).unwrap();
        fill(&mut wal, 30, 2);
        wal.sync().unwrap();
    }
    // Asked for another size, the log keeps its own: segments of one log share one size.
    let asked = WalOptions {
        segment_size: 4 * SEGMENT,
        ..created.clone()
    };
    let (mut wal, _) = Wal::open_with(disk.clone(), dir, asked.clone()).unwrap();
    assert_eq!(wal.options().segment_size, SEGMENT);
    fill(&mut wal, 30, 2);
    wal.sync().unwrap();
    let last = wal.last_written().0;
    drop(wal);
    for path in disk.paths() {
        assert_eq!(
            disk.file_bytes(&path).map(|b| b.len() as u64),
            Some(SEGMENT),
            "{path:?}"
        );
    }
    let (wal, rec) = Wal::open_with(disk.clone(), dir, asked).unwrap();
    assert!(rec.report.is_clean(), "{:?}", rec.report);
    assert_eq!(read_all(&wal.reader()), (1..=last).collect::<Vec<_>>());
}
