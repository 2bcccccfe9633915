//! What could go wrong: the machine dies again while recovery repairs the log after a
//! power loss (cutting and zeroing a torn tail, resetting a torn unused header, removing
//! a leftover temporary segment, syncing), and the second reboot loses synced records,
//! returns altered ones or refuses to open. This is where a dirty sector can hold bytes
//! that differ from its durable content (zeros over a torn tail), so "dropped" and
//! "zeroed" damage differ. Sweeps the first crash over the whole workload and the second
//! over every operation of the recovery that follows.
mod common;
use common::*;
use tidelog_wal::{GlobalSeq, SimDisk};

/// Units of 1..=3 records, a sync every other unit; returns the durable point.
fn workload(disk: &SimDisk) -> GlobalSeq {
    let Ok((mut wal, _)) = open_sim(disk.clone()) else {
        return GlobalSeq::ZERO;
    };
    append_syncing_every_other(&mut wal, 24, |_, _, _| true).durable
}

#[test]
fn a_second_power_loss_at_any_operation_of_recovery_keeps_every_synced_record() {
    let total = {
        let disk = SimDisk::new();
        workload(&disk);
        disk.ops()
    };
    let mut crashes = 0;
    for k in 1..=total {
        let disk = SimDisk::new();
        disk.crash_at(k);
        let durable = workload(&disk);
        for seed in 0..2u64 {
            let seed = seed * 7_919 + k;
            // How many operations the recovery of this image makes.
            let recovery_ops = {
                let image = disk.crash_image(seed);
                drop(open_sim(image.clone()));
                image.ops()
            };
            for k2 in 1..=recovery_ops {
                // crash_image is deterministic: the same image each time.
                let image = disk.crash_image(seed);
                image.crash_at(k2);
                // (The last operations may come after open returns, when the log is
                // dropped; the crash fires there then.)
                drop(open_sim(image.clone()));
                assert!(image.is_crashed(), "k {k} k2 {k2}: the crash did not fire");
                for seed2 in 0..2u64 {
                    let again = image.crash_image(seed2 * 31 + k2);
                    let (wal, rec) = open_sim(again).unwrap_or_else(|e| {
                        panic!("crash at {k}, again at recovery op {k2}: reopen failed: {e}")
                    });
                    let seqs = read_all(&wal.reader());
                    assert_eq!(seqs, (1..=rec.last_seq.0).collect::<Vec<_>>());
                    assert!(
                        rec.last_seq >= durable,
                        "crash at {k}, again at recovery op {k2}: synced records lost"
                    );
                    crashes += 1;
                }
            }
        }
    }
    eprintln!("double power losses (during the workload, then during recovery): {crashes}");
    assert!(crashes > 50, "only {crashes} double crashes ran");
}
