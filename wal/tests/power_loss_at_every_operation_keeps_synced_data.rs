//! What could go wrong: the machine dies at any point of a workload (mid-frame, mid-batch,
//! mid-rotation, mid-segment-preparation) and after reboot, with unsynced sectors kept,
//! dropped, zeroed or garbage, the log loses synced records, returns altered records,
//! returns part of a batch, or refuses to open. Sweeps the crash point over every operation.
mod common;
use common::*;
use tidelog_wal::SimDisk;

/// Units of 1..=3 records, a sync every other unit.
fn workload(disk: &SimDisk) -> Workload {
    let Ok((mut wal, _)) = open_sim(disk.clone()) else {
        return Workload::default();
    };
    append_syncing_every_other(&mut wal, 36, |_, _, _| true)
}

#[test]
fn after_a_power_loss_at_any_operation_synced_records_come_back_exactly_and_batches_whole() {
    let total = {
        let disk = SimDisk::new();
        workload(&disk);
        disk.ops()
    };
    assert!(total > 50);
    let mut runs = 0;
    for k in 1..=total + 1 {
        for seed in 0..4u64 {
            let disk = SimDisk::new();
            disk.crash_at(k);
            let Workload { ends, durable, .. } = workload(&disk);
            let image = disk.crash_image(seed * 1_000 + k);
            let (wal, rec) = open_sim(image)
                .unwrap_or_else(|e| panic!("crash at op {k} seed {seed}: reopen failed: {e}"));
            // read_all checks every returned byte against what was appended.
            let seqs = read_all(&wal.reader());
            assert_eq!(
                seqs,
                (1..=rec.last_seq.0).collect::<Vec<_>>(),
                "op {k} seed {seed}"
            );
            assert!(
                rec.last_seq >= durable,
                "op {k} seed {seed}: lost synced records"
            );
            let appended = ends.last().copied().unwrap_or(0);
            assert!(
                rec.last_seq.0 <= appended,
                "op {k} seed {seed}: records never appended"
            );
            assert!(
                rec.last_seq.0 == 0 || ends.contains(&rec.last_seq.0),
                "op {k} seed {seed}: a batch came back in part (last {})",
                rec.last_seq
            );
            runs += 1;
        }
    }
    eprintln!("power-loss crash points run: {runs} ({total} operations x 4 damages)");
}
