//! What could go wrong: every writer that opens the log starts a new segment file (and
//! prepares another), so short-lived writers fill the disk with nearly empty segments; or
//! continuing a segment under a new fencing token loses the no-fork rule, or a power loss
//! in the middle of a reopen and its first appends loses synced records.
mod common;
use common::*;
use std::path::Path;
use tidelog_wal::{FencingToken, GlobalSeq, RecoveryMode, SegmentIndex, SimDisk, Wal, WalOptions};

const BIG: u64 = 256 * 1024;

fn with(token: FencingToken, segment_size: u64) -> WalOptions {
    WalOptions {
        fencing: token,
        segment_size,
        ..opts(RecoveryMode::AbsoluteConsistency)
    }
}

#[test]
fn two_hundred_short_lived_writers_share_one_segment_and_every_record_comes_back() {
    let dir = tempfile::tempdir().unwrap();
    for generation in 1..=200u64 {
        // Every other writer takes a new token, as a new lease tenure would.
        let token = FencingToken::new(1, generation.div_ceil(2));
        let (mut wal, rec) = Wal::open(dir.path(), with(token, BIG)).unwrap();
        assert!(rec.report.is_clean(), "{:?}", rec.report);
        assert_eq!(
            wal.current_segment(),
            SegmentIndex(1),
            "writer {generation}"
        );
        append_unit(&mut wal, 1).unwrap();
        wal.sync().unwrap();
    }
    assert_eq!(
        segment_files(dir.path()).len(),
        1,
        "200 records of 200 writers, 512 bytes each, fit in half a segment: nothing prepared"
    );
    let (wal, rec) = Wal::open(dir.path(), with(FencingToken::new(1, 100), BIG)).unwrap();
    assert_eq!(rec.last_seq, GlobalSeq(200));
    assert_eq!(read_all(&wal.reader()), (1..=200).collect::<Vec<u64>>());
}

#[test]
fn opening_a_clean_log_and_closing_it_without_appends_changes_no_byte() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut wal, _) = Wal::open(dir.path(), with(FencingToken::new(1, 1), BIG)).unwrap();
        fill(&mut wal, 5, 1);
    }
    let before = snapshot(dir.path());
    for token in [
        FencingToken::new(1, 1),
        FencingToken::new(1, 2),
        FencingToken::new(2, 7),
    ] {
        let (mut wal, rec) = Wal::open(dir.path(), with(token, BIG)).unwrap();
        assert!(rec.report.is_clean());
        // A sync with nothing appended writes nothing either.
        wal.sync().unwrap();
        drop(wal);
        assert_eq!(snapshot(dir.path()), before, "token {token}");
        assert!(tidelog_wal::verify(dir.path(), &with(token, BIG)).is_ok());
    }
}

#[test]
fn the_next_segment_is_prepared_only_once_the_current_one_is_half_full() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, _) = Wal::open(dir.path(), with(FencingToken::INITIAL, SEGMENT)).unwrap();
    let mut seen_one = 0;
    while segment_files(dir.path()).len() == 1 {
        append_unit(&mut wal, 1).unwrap();
        wal.sync().unwrap();
        seen_one += 1;
        assert!(seen_one < 20, "a second segment is prepared at some point");
    }
    let prepared = segment_files(dir.path())[1].clone();
    assert!(
        std::fs::read(&prepared).unwrap().iter().all(|&b| b == 0),
        "prepared, unused"
    );
    // The header's sector, then one sector per synced record: the 8th record reaches past
    // the middle of the 8 KiB segment.
    assert_eq!(seen_one, 8);
    assert_eq!(wal.current_segment(), SegmentIndex(1));
}

#[test]
fn a_segment_of_the_older_format_is_sealed_and_a_new_one_started() {
    let disk = SimDisk::new();
    let dir = Path::new("/db/wal");
    {
        let (mut wal, _) =
            Wal::open_with(disk.clone(), dir, with(FencingToken::INITIAL, BIG)).expect("open");
        append_unit(&mut wal, 2).unwrap();
        wal.sync().unwrap();
    }
    downgrade_to_version_1(&disk, dir, 1);
    let (mut wal, _) =
        Wal::open_with(disk.clone(), dir, with(FencingToken::new(1, 2), BIG)).unwrap();
    assert_eq!(wal.current_segment(), SegmentIndex(2));
    append_unit(&mut wal, 1).unwrap();
    wal.sync().unwrap();
    drop(wal);
    let (wal, rec) = Wal::open_with(disk, dir, with(FencingToken::new(1, 3), BIG)).unwrap();
    assert!(rec.report.is_clean(), "{:?}", rec.report);
    assert_eq!(read_all(&wal.reader()), vec![1, 2, 3]);
}

/// A first writer leaves three synced units; a second writer (new token) continues the
/// segment: it appends units of 1..=3 records with a sync after each. Returns the last
/// sequence the second writer had made durable.
fn second_tenure(disk: &SimDisk) -> GlobalSeq {
    let dir = Path::new("/db/wal");
    let Ok((mut wal, _)) =
        Wal::open_with(disk.clone(), dir, with(FencingToken::new(1, 2), SEGMENT))
    else {
        return GlobalSeq(6);
    };
    let mut durable = GlobalSeq(6);
    for u in 0..8u64 {
        if append_unit(&mut wal, 1 + u % 3).is_err() {
            break;
        }
        match wal.sync() {
            Ok(d) => durable = d,
            Err(_) => break,
        }
    }
    durable
}

fn first_tenure(disk: &SimDisk) {
    let (mut wal, _) = Wal::open_with(
        disk.clone(),
        Path::new("/db/wal"),
        with(FencingToken::new(1, 1), SEGMENT),
    )
    .unwrap();
    for size in [1, 2, 3] {
        append_unit(&mut wal, size).unwrap();
        wal.sync().unwrap();
    }
}

#[test]
fn a_power_loss_at_any_step_of_a_continued_tenure_keeps_every_synced_record() {
    let (base, total) = {
        let disk = SimDisk::new();
        first_tenure(&disk);
        let base = disk.ops();
        second_tenure(&disk);
        (base, disk.ops())
    };
    assert!(total - base > 20, "{} operations", total - base);
    let mut runs = 0;
    for k in base + 1..=total + 1 {
        for seed in 0..4u64 {
            let disk = SimDisk::new();
            first_tenure(&disk);
            disk.crash_at(k);
            let durable = second_tenure(&disk);
            let image = disk.crash_image(seed * 7_919 + k);
            let (wal, rec) = Wal::open_with(
                image,
                Path::new("/db/wal"),
                with(FencingToken::new(1, 3), SEGMENT),
            )
            .unwrap_or_else(|e| panic!("crash at op {k} seed {seed}: reopen failed: {e}"));
            let seqs = read_all(&wal.reader());
            assert!(
                rec.last_seq >= durable,
                "crash at op {k} seed {seed}: {} < {durable}",
                rec.last_seq
            );
            assert_eq!(
                seqs,
                (1..=rec.last_seq.0).collect::<Vec<u64>>(),
                "crash at op {k} seed {seed}"
            );
            runs += 1;
        }
    }
    assert!(runs > 80, "{runs}");
}
