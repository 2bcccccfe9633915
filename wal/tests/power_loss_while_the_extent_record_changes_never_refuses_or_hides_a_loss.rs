//! The extent record under power loss. What could go wrong: a crash while the record is
//! created, rewritten at a rotation, before a truncation or at close leaves a record that
//! does not verify (the database refuses to open), one that claims more than the log
//! holds (a refusal of an intact log), or one older than the data that was acknowledged
//! (a later loss of that data would go unseen). Sweeps the crash point over every
//! operation of a workload that creates the log, rotates, truncates and closes, each
//! unsynced sector kept, dropped, zeroed or garbage.

mod common;

use common::*;
use std::path::Path;
use tidelog_wal::extent;
use tidelog_wal::{GlobalSeq, RecoveryMode, SimDisk, Wal};

const WAL: &str = "/db/wal";
const EXTENT: &str = "/db/EXTENT";

fn open(disk: &SimDisk) -> Result<(Wal<SimDisk>, tidelog_wal::Recovered), tidelog_wal::OpenError> {
    Wal::open_with_extent(
        disk.clone(),
        Path::new(WAL),
        opts(RecoveryMode::AbsoluteConsistency),
        Path::new(EXTENT),
    )
}

/// Units of 1..=3 records, a sync every other unit, a truncation halfway, the record
/// updated at close; returns the durable sequence reached.
fn workload(disk: &SimDisk) -> GlobalSeq {
    let Ok((mut wal, _)) = open(disk) else {
        return GlobalSeq::ZERO;
    };
    let done = append_syncing_every_other(&mut wal, 60, |wal, u, durable| {
        let truncator = wal.truncator();
        u != 40
            || (truncator.remove_segments_below(GlobalSeq(30)).is_ok()
                && truncator.note_durable(durable).is_ok())
    });
    if done.completed {
        let _ = wal.record_extent();
    }
    done.durable
}

#[test]
fn a_power_loss_at_any_step_of_updating_the_extent_never_refuses_the_log_or_hides_a_loss() {
    let total = {
        let disk = SimDisk::new();
        workload(&disk);
        disk.ops()
    };
    assert!(total > 60, "{total}");
    let mut runs = 0;
    for k in 1..=total + 1 {
        for seed in 0..4u64 {
            let disk = SimDisk::new();
            disk.crash_at(k);
            let durable = workload(&disk);
            let image = disk.crash_image(seed * 7_919 + k);
            let recorded = extent::read(&image, Path::new(EXTENT))
                .unwrap_or_else(|e| panic!("op {k} seed {seed}: {e}"));
            let (wal, rec) =
                open(&image).unwrap_or_else(|e| panic!("op {k} seed {seed}: reopen failed: {e}"));
            assert!(
                rec.last_seq >= durable,
                "op {k} seed {seed}: lost synced records"
            );
            // The record on the crashed disk already covered the segment holding the last
            // synced record: had that segment vanished, the open would have seen it.
            if let (Some(recorded), true) = (recorded, durable > GlobalSeq::ZERO) {
                let holder = wal
                    .reader()
                    .get(durable)
                    .expect("the durable record is readable")
                    .segment();
                assert!(
                    recorded.last_index >= holder.get(),
                    "op {k} seed {seed}: record {recorded:?} does not reach segment {holder}"
                );
                assert!(recorded.durable_seq <= rec.last_seq, "op {k} seed {seed}");
            }
            let after = wal.extent().expect("the log keeps a record");
            assert!(after.durable_seq >= rec.last_seq, "op {k} seed {seed}");
            runs += 1;
        }
    }
    eprintln!("extent power-loss crash points run: {runs} ({total} operations x 4 damages)");
}

/// How the clean log is damaged before a recovery that accepts or cuts.
#[derive(Debug, Clone, Copy)]
enum Damage {
    /// The newest used segment cut short through its last records (acknowledged ones).
    CutThroughRecords,
    /// The newest used segment cut short after its last record (nothing acknowledged).
    CutAfterRecords,
    /// The newest used segment deleted, with the prepared one after it.
    NewestDeleted,
}

/// A log of 40 units closed cleanly, copied (every byte durable) onto a fresh disk with
/// `damage` done to it; returns the disk and the acknowledged end.
fn damaged(damage: Damage) -> (SimDisk, GlobalSeq) {
    let disk = SimDisk::new();
    let (mut wal, _) = open(&disk).unwrap();
    for u in 0..40u64 {
        append_unit(&mut wal, 1 + u % 3).unwrap();
    }
    wal.sync().unwrap();
    wal.record_extent().unwrap();
    let acknowledged = wal.last_durable();
    drop(wal);
    let mut files: Vec<_> = disk
        .paths()
        .into_iter()
        .map(|p| {
            let bytes = disk.file_bytes(&p).unwrap();
            (p, bytes)
        })
        .collect();
    files.sort();
    let newest = files
        .iter()
        .rposition(|(p, b)| p.starts_with(WAL) && b[..64].iter().any(|&x| x != 0))
        .expect("a used segment");
    let written = files[newest].1.iter().rposition(|&b| b != 0).unwrap() + 1;
    match damage {
        Damage::CutThroughRecords => files[newest].1.truncate(written - 100),
        Damage::CutAfterRecords => files[newest].1.truncate(written + 1024),
        Damage::NewestDeleted => {
            let gone = files[newest].0.clone();
            files.retain(|(p, _)| !p.starts_with(WAL) || *p < gone);
        }
    }
    let copy = SimDisk::new();
    for (path, bytes) in &files {
        copy.put_file(path, bytes).unwrap();
    }
    (copy, acknowledged)
}

fn open_in(
    disk: &SimDisk,
    mode: RecoveryMode,
) -> Result<(Wal<SimDisk>, tidelog_wal::Recovered), tidelog_wal::OpenError> {
    Wal::open_with_extent(disk.clone(), Path::new(WAL), opts(mode), Path::new(EXTENT))
}

/// The recovery an operator runs (`mode`), then one unit appended and synced, and the
/// close; returns the highest sequence acknowledged after recovery, if one was.
fn recover_and_append(disk: &SimDisk, mode: RecoveryMode) -> Option<GlobalSeq> {
    let (mut wal, _) = open_in(disk, mode).ok()?;
    append_unit(&mut wal, 1).ok()?;
    let acknowledged = wal.sync().ok()?;
    let _ = wal.record_extent();
    Some(acknowledged)
}

#[test]
fn a_power_loss_at_any_step_of_accepting_a_loss_or_restoring_a_cut_file_never_refuses_or_reuses() {
    let mut runs = 0;
    for (damage, mode) in [
        (Damage::CutThroughRecords, RecoveryMode::AcceptLoss),
        (Damage::CutAfterRecords, RecoveryMode::TolerateCorruptedTail),
        (Damage::NewestDeleted, RecoveryMode::AcceptLoss),
    ] {
        let total = {
            let (disk, _) = damaged(damage);
            let before = disk.ops();
            assert!(recover_and_append(&disk, mode).is_some(), "{damage:?}");
            disk.ops() - before
        };
        for k in 1..=total + 1 {
            for seed in 0..4u64 {
                let (disk, acknowledged) = damaged(damage);
                disk.crash_at(disk.ops() + k);
                let after = recover_and_append(&disk, mode);
                let what = format!("{damage:?} op {k} seed {seed}");
                // The default mode either sees the loss (or the cut) or opens a log whose
                // loss was recorded: never a shorter log as if nothing happened.
                match open_in(&disk.crash_image(seed), RecoveryMode::AbsoluteConsistency) {
                    Ok((_, rec)) => {
                        assert!(rec.last_seq >= acknowledged, "{what}: loss hidden");
                        assert!(rec.last_seq >= after.unwrap_or_default(), "{what}");
                    }
                    Err(
                        tidelog_wal::OpenError::LostRecords { .. }
                        | tidelog_wal::OpenError::SegmentCutShort { .. },
                    ) => {}
                    Err(e) => panic!("{what}: default open: {e}"),
                }
                // The operator's mode always opens, and never hands out a sequence twice.
                let image = disk.crash_image(seed);
                let (mut wal, _) =
                    open_in(&image, mode).unwrap_or_else(|e| panic!("{what}: reopen: {e}"));
                append_unit(&mut wal, 1).unwrap();
                let next = wal.sync().unwrap();
                assert!(next > acknowledged, "{what}: {next} handed out again");
                assert!(
                    next > after.unwrap_or_default(),
                    "{what}: {next} handed out again"
                );
                runs += 1;
            }
        }
    }
    eprintln!("accept/restore power-loss crash points run: {runs}");
}
