//! What could go wrong: a writer that lost its lease while paused between its last lease
//! check and its store (SIGSTOP, a VM freeze) wakes up and completes its stores into the
//! files it still has open. Without fencing off, such a store overwrites the seal its
//! successor put on the segment; the next recovery then finds a segment that never ends
//! where the next one begins and refuses the log, or cuts away the successor's
//! acknowledged records. With it, everything the old writer stores after the hand-off
//! lands in files no name leads to, and nothing of it is ever read.
mod common;
use common::*;
use std::path::Path;
use tidelog_wal::io::{FaultMode, IoOp, OpKind};
use tidelog_wal::{
    FencingToken, GlobalSeq, LaneId, LaneSeq, NewFrame, OpenError, RealStorage, RecoveryMode,
    SimDisk, Storage, Wal, WalOptions,
};

const OLD: FencingToken = FencingToken::new(1, 1);
const NEW: FencingToken = FencingToken::new(1, 2);

fn with(token: FencingToken, fence_off_predecessor: bool) -> WalOptions {
    WalOptions {
        fencing: token,
        fence_off_predecessor,
        ..opts(RecoveryMode::AbsoluteConsistency)
    }
}

/// Appends records `from..from + count` whose payloads say who wrote them.
fn append_marked<S: tidelog_wal::Storage>(wal: &mut Wal<S>, from: u64, count: u64, who: &str) {
    try_append_marked(wal, from, count, who).unwrap();
}

/// As [`append_marked`] for a writer that may be refused: stops at the first failure.
fn try_append_marked<S: tidelog_wal::Storage>(
    wal: &mut Wal<S>,
    from: u64,
    count: u64,
    who: &str,
) -> Result<(), String> {
    for seq in from..from + count {
        let payload = format!("{who}-{seq}-{}", "x".repeat(300));
        wal.append(&[NewFrame {
            global_seq: GlobalSeq(seq),
            lane: LaneId(1),
            lane_seq: LaneSeq(seq),
            wall_ms: 1_000 + seq,
            key: b"",
            payload: payload.as_bytes(),
        }])
        .map_err(|e| e.to_string())?;
        wal.sync().map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Every record of the log in `dir` on `storage` as (global sequence, payload), after a
/// recovery.
fn recovered<S: Storage>(storage: &S, dir: &Path) -> Vec<(u64, String)> {
    let (wal, _) =
        Wal::open_with(storage.clone(), dir, with(FencingToken::new(1, 3), false)).unwrap();
    let reader = wal.reader();
    (1..=wal.last_written().0)
        .map(|seq| {
            let frame = reader.get(GlobalSeq(seq)).expect("no gaps");
            (seq, String::from_utf8(frame.payload().to_vec()).unwrap())
        })
        .collect()
}

/// The old writer appends 8 records (its segment half full, it has prepared the next); a
/// successor takes over while the old writer still holds its files, continues the same
/// segment and appends 3; the old writer wakes and appends 40 more (enough to rotate into
/// the segment it had prepared and on); the successor appends 2. Only the old writer's
/// first 8 and the successor's 5 are ever read.
fn stale_stores_are_never_read<S: Storage>(storage: &S, dir: &Path, real_files: bool) {
    let (mut old, _) = Wal::open_with(storage.clone(), dir, with(OLD, false)).unwrap();
    append_marked(&mut old, 1, 8, "old");
    let (mut new, took_over) = Wal::open_with(storage.clone(), dir, with(NEW, true)).unwrap();
    assert_eq!(took_over.last_seq, GlobalSeq(8));
    let fenced = took_over.report.fenced_off.expect("fenced off");
    assert!(fenced.copied.is_some(), "{fenced:?}");
    assert!(
        !fenced.removed.is_empty(),
        "the old writer's prepared segment"
    );
    assert_eq!(new.current_segment().get(), 1, "the successor continues");
    append_marked(&mut new, 9, 3, "new");
    // The stale writer's stores land in files no name leads to. On a real file system
    // its first sync says so (the file has no name left: nothing it syncs there is
    // durable) and it is poisoned; the simulated disk does not model link counts.
    let stale = try_append_marked(&mut old, 9, 40, "stale");
    if real_files {
        let err = stale.expect_err("a deposed writer's sync into an unlinked file succeeded");
        assert!(
            err.contains("deleted while the writer was using it"),
            "{err}"
        );
    }
    append_marked(&mut new, 12, 2, "new");
    drop((old, new));
    let expected: Vec<(u64, String)> = (1..=13)
        .map(|seq| {
            let who = if seq <= 8 { "old" } else { "new" };
            (seq, format!("{who}-{seq}-{}", "x".repeat(300)))
        })
        .collect();
    assert_eq!(recovered(storage, dir), expected);
}

#[test]
fn stores_of_a_deposed_writer_after_the_hand_off_are_never_read() {
    let dir = tempfile::tempdir().unwrap();
    stale_stores_are_never_read(&RealStorage, dir.path(), true);
}

#[test]
fn stores_of_a_deposed_writer_on_the_simulated_disk_are_never_read() {
    stale_stores_are_never_read(&SimDisk::new(), Path::new("/db/wal"), false);
}

#[test]
fn a_segment_put_in_place_after_the_fence_off_is_removed_and_prepared_again() {
    // The old writer finishes preparing the successor's next segment just before the
    // successor's own preparation renames into place.
    let disk = SimDisk::new();
    let dir = Path::new("/db/wal");
    {
        let (mut old, _) = Wal::open_with(disk.clone(), dir, with(OLD, false)).unwrap();
        append_marked(&mut old, 1, 2, "old");
    }
    // A segment of an older format is sealed, not continued: the open prepares a new one.
    downgrade_to_version_1(&disk, dir, 1);
    disk.occupy_next_rename_target();
    let (mut new, _) = Wal::open_with(disk.clone(), dir, with(NEW, true)).unwrap();
    append_marked(&mut new, 3, 2, "new");
    drop(new);
    let seqs: Vec<u64> = recovered(&disk, dir).iter().map(|(seq, _)| *seq).collect();
    assert_eq!(seqs, [1, 2, 3, 4]);
}

#[test]
fn without_a_fence_off_a_segment_name_found_taken_is_an_error() {
    // The file could be anyone's: a new log whose first segment's name is taken.
    let disk = SimDisk::new();
    disk.occupy_next_rename_target();
    match Wal::open_with(disk.clone(), Path::new("/db/wal"), with(OLD, false)) {
        Err(OpenError::Io { op, source, .. }) => {
            assert_eq!(op, IoOp::Rename);
            assert_eq!(source.kind(), std::io::ErrorKind::AlreadyExists);
        }
        other => panic!("{:?}", other.map(|r| r.1)),
    }
}

#[test]
fn a_fenced_off_open_whose_preparation_fails_otherwise_reports_that_failure() {
    let disk = SimDisk::new();
    let dir = Path::new("/db/wal");
    {
        let (mut old, _) = Wal::open_with(disk.clone(), dir, with(OLD, false)).unwrap();
        append_marked(&mut old, 1, 2, "old");
    }
    // A segment of an older format is sealed, not continued: the open prepares a new one.
    downgrade_to_version_1(&disk, dir, 1);
    // The fence-off's replace is the first rename, the preparation's the second.
    disk.fail(OpKind::Rename, 2, FaultMode::Once);
    match Wal::open_with(disk.clone(), dir, with(NEW, true)) {
        Err(OpenError::Io { op, .. }) => assert_eq!(op, IoOp::Rename),
        other => panic!("{:?}", other.map(|r| r.1)),
    }
}

/// The inode of every segment file in `dir`, by name.
fn inodes(dir: &Path) -> Vec<(std::path::PathBuf, u64)> {
    use std::os::unix::fs::MetadataExt;
    segment_files(dir)
        .into_iter()
        .map(|path| {
            let ino = std::fs::metadata(&path).unwrap().ino();
            (path, ino)
        })
        .collect()
}

#[test]
fn a_log_is_copied_only_when_a_predecessor_may_still_write() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut first, _) = Wal::open(dir.path(), with(OLD, false)).unwrap();
        append_marked(&mut first, 1, 2, "old");
    }
    let before = inodes(dir.path());
    let (_, reopened) = Wal::open(dir.path(), with(NEW, false)).unwrap();
    assert_eq!(reopened.report.fenced_off, None);
    assert_eq!(reopened.last_seq, GlobalSeq(2));
    let after = inodes(dir.path());
    assert_eq!(
        after.first(),
        before.first(),
        "the used segment stays the same file"
    );

    let (_, taken_over) = Wal::open(dir.path(), with(FencingToken::new(1, 3), true)).unwrap();
    assert_eq!(taken_over.last_seq, GlobalSeq(2));
    let copied = inodes(dir.path());
    let last_used = &taken_over
        .report
        .fenced_off
        .expect("fenced off")
        .copied
        .expect("copied");
    let ino =
        |list: &[(std::path::PathBuf, u64)]| list.iter().find(|(p, _)| p == last_used).map(|e| e.1);
    assert_ne!(
        ino(&copied),
        ino(&after),
        "the last used segment is a new file"
    );
}

/// A log of six synced records on a simulated disk, its writer still open, as a paused
/// old writer would leave it.
fn old_log(disk: &tidelog_wal::SimDisk) -> Wal<tidelog_wal::SimDisk> {
    let (mut old, _) = Wal::open_with(disk.clone(), Path::new("/db/wal"), with(OLD, false))
        .expect("the workload runs before any crash");
    append_marked(&mut old, 1, 6, "old");
    old
}

#[test]
fn a_power_loss_at_any_step_of_fencing_off_keeps_every_synced_record() {
    let takeover = |disk: tidelog_wal::SimDisk| {
        Wal::open_with(disk, Path::new("/db/wal"), with(NEW, true)).map(|(wal, _)| wal)
    };
    let (base, steps) = {
        let disk = tidelog_wal::SimDisk::new();
        let _old = old_log(&disk);
        let base = disk.ops();
        drop(takeover(disk.clone()).expect("takeover"));
        (base, disk.ops() - base)
    };
    assert!(
        steps > 4,
        "copy, sync, rename, removals, directory sync: {steps}"
    );
    let mut crashes = 0;
    for k in base + 1..=base + steps {
        let disk = tidelog_wal::SimDisk::new();
        let old = old_log(&disk);
        assert_eq!(disk.ops(), base);
        disk.crash_at(k);
        drop(takeover(disk.clone()));
        assert!(disk.is_crashed(), "step {k}: the crash did not fire");
        drop(old);
        for seed in 0..3u64 {
            let image = disk.crash_image(seed * 7_919 + k);
            let (wal, rec) = Wal::open_with(image, Path::new("/db/wal"), with(NEW, true))
                .unwrap_or_else(|e| panic!("crash at step {k}: reopen failed: {e}"));
            assert_eq!(rec.last_seq, GlobalSeq(6), "crash at step {k}");
            let reader = wal.reader();
            for seq in 1..=6 {
                let frame = reader.get(GlobalSeq(seq)).expect("every synced record");
                let expected = format!("old-{seq}-{}", "x".repeat(300));
                assert_eq!(frame.payload(), expected.as_bytes(), "crash at step {k}");
            }
            crashes += 1;
        }
    }
    assert!(crashes >= 12, "{crashes} simulated crashes");
}
