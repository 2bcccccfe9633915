//! What could go wrong: some interleaving of appends, batches, syncs, crashes with random
//! damage to unsynced bytes, and reopens loses a synced record, returns an altered or
//! never-written record, or returns part of a batch. Checked against a plain in-memory
//! model of the log.
mod common;
use common::*;
use proptest::prelude::*;
use std::path::Path;
use tidelog_wal::{GlobalSeq, RecoveryMode, SimDisk, Wal};

#[derive(Debug, Clone)]
enum Op {
    Append(u64),
    Sync,
    /// Process crash: the page cache survives.
    Restart,
    /// Power loss: unsynced sectors damaged with this seed.
    PowerLoss(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (1u64..=4).prop_map(Op::Append),
        3 => Just(Op::Sync),
        1 => Just(Op::Restart),
        1 => any::<u64>().prop_map(Op::PowerLoss),
    ]
}

/// The model: unit boundaries (last sequence of each unit) and the durable point.
struct Model {
    unit_ends: Vec<u64>,
    durable: u64,
}

fn check_recovered(
    wal: &Wal<SimDisk>,
    last: GlobalSeq,
    model: &mut Model,
) -> Result<(), TestCaseError> {
    prop_assert!(
        last.0 >= model.durable,
        "synced record lost: {} < {}",
        last.0,
        model.durable
    );
    prop_assert!(
        last.0 == 0 || model.unit_ends.contains(&last.0),
        "partial unit: {}",
        last.0
    );
    prop_assert_eq!(read_all(&wal.reader()), (1..=last.0).collect::<Vec<_>>());
    model.unit_ends.retain(|e| *e <= last.0);
    model.durable = last.0;
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    #[test]
    fn the_log_matches_a_model_through_appends_syncs_crashes_and_reopens(ops in proptest::collection::vec(op(), 1..60)) {
        let dir = Path::new("/db/wal");
        let o = opts(RecoveryMode::AbsoluteConsistency);
        let mut disk = SimDisk::new();
        let (mut wal, _) = Wal::open_with(disk.clone(), dir, o.clone()).unwrap();
        let mut model = Model { unit_ends: Vec::new(), durable: 0 };
        for op in ops {
            match op {
                Op::Append(n) => {
                    append_unit(&mut wal, n).unwrap();
                    model.unit_ends.push(wal.last_written().0);
                    // A rotation syncs everything before it.
                    model.durable = model.durable.max(wal.last_durable().0);
                }
                Op::Sync => model.durable = wal.sync().unwrap().0,
                Op::Restart => {
                    drop(wal);
                    let (w, rec) = Wal::open_with(disk.clone(), dir, o.clone()).unwrap();
                    wal = w;
                    // The page cache survived: nothing written is lost.
                    prop_assert_eq!(rec.last_seq.0, model.unit_ends.last().copied().unwrap_or(0));
                    check_recovered(&wal, rec.last_seq, &mut model)?;
                }
                Op::PowerLoss(seed) => {
                    drop(wal);
                    disk = disk.crash_image(seed);
                    let (w, rec) = Wal::open_with(disk.clone(), dir, o.clone()).unwrap();
                    wal = w;
                    check_recovered(&wal, rec.last_seq, &mut model)?;
                }
            }
        }
    }
}
