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
    let mut durable = GlobalSeq::ZERO;
    let Ok((mut wal, _)) = open(disk) else {
        return durable;
    };
    for u in 0..60u64 {
        if append_unit(&mut wal, 1 + u % 3).is_err() {
            return durable;
        }
        durable = durable.max(wal.last_durable());
        if u % 2 == 1 {
            match wal.sync() {
                Ok(d) => durable = d,
                Err(_) => return durable,
            }
        }
        if u == 40 {
            let truncator = wal.truncator();
            if truncator.remove_segments_below(GlobalSeq(30)).is_err()
                || truncator.note_durable(durable).is_err()
            {
                return durable;
            }
        }
    }
    let _ = wal.record_extent();
    durable
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
