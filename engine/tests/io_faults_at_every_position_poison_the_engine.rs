//! I/O errors through the whole engine: for every kind of disk operation (create, open,
//! fallocate, write, sync, rename, remove, directory sync) and every position it takes in
//! a workload of durable appends and batches across rotations, fail it once and
//! persistently on the simulated disk.
//!
//! What could go wrong: the durable watermark passing the last sync that succeeded (a
//! power loss right after the fault then loses a record the engine called durable); a
//! waiter parked on the durable watermark left hanging or told "durable"; a receipt
//! handed out after the failure; an error other than `Poisoned`; a log that cannot be
//! reopened, or reopens with a gap, a partial batch or a record never appended.

use std::time::Duration;
use tidelog::wal::io::{FaultMode, OpKind};
use tidelog::wal::SimDisk;
use tidelog::{
    AppendError, BatchEntry, Engine, GlobalSeq, HlcPoint, Options, SyncError, WaitError,
};

/// Tiny segments and inline preparation: the workload rotates, in a fixed order.
fn options() -> Options {
    let mut options = Options::default()
        .segment_size(8 * 1024)
        .max_record_bytes(2 * 1024)
        .max_batch_bytes(4 * 1024);
    options.prepare_segments_in_background = false;
    options
}

const ROUNDS: u32 = 10;
/// Records one clean run appends: per round one single and a batch of 3.
const RECORDS: u64 = ROUNDS as u64 * 4;

fn payload(i: u32, j: u32) -> Vec<u8> {
    let mut bytes = format!("r{i}-{j}-").into_bytes();
    bytes.resize(if j == 0 { 900 } else { 60 }, b'a' + (i % 26) as u8);
    bytes
}

/// Every payload the workload appends, in order.
fn attempted() -> Vec<Vec<u8>> {
    (0..ROUNDS)
        .flat_map(|i| (0..4).map(move |j| payload(i, j)))
        .collect()
}

/// What a run acknowledged, and how it ended.
struct Run {
    acked: Vec<Vec<u8>>,
    failed: bool,
    /// An append was refused for want of space for the next segment (`Allocate` faults
    /// fail with ENOSPC): refused, not a failure; once the fault is cleared (room freed)
    /// the same append is made again and must succeed.
    full: bool,
}

fn is_poisoned(err: &AppendError) -> bool {
    matches!(err, AppendError::Poisoned { .. })
}

/// Durable appends and batches; after the first failure every call must fail with
/// `Poisoned` and nothing more is acknowledged.
fn workload(engine: &Engine<SimDisk>, case: &str, disk: &SimDisk) -> Run {
    let mut run = Run {
        acked: Vec::new(),
        failed: false,
        full: false,
    };
    for i in 0..ROUNDS {
        let single = payload(i, 0);
        let mut outcome = engine.append_durable(i % 3, single.clone());
        if matches!(outcome, Err(AppendError::NoSpace { .. })) && !run.failed {
            run.full = true;
            disk.clear_faults();
            outcome = engine.append_durable(i % 3, single.clone());
        }
        match outcome {
            Ok(_) if run.failed => panic!("{case}: a receipt after the failure"),
            Ok(_) => run.acked.push(single),
            Err(e) => {
                assert!(is_poisoned(&e), "{case}: {e}");
                run.failed = true;
            }
        }
        let batch: Vec<Vec<u8>> = (1..4).map(|j| payload(i, j)).collect();
        let entries: Vec<BatchEntry> = batch
            .iter()
            .enumerate()
            .map(|(j, p)| BatchEntry::new(j as u32, p.clone()))
            .collect();
        let mut outcome = engine.append_batch(entries.clone());
        if matches!(outcome, Err(AppendError::NoSpace { .. })) && !run.failed {
            run.full = true;
            disk.clear_faults();
            outcome = engine.append_batch(entries);
        }
        match outcome {
            Ok(_) if run.failed => panic!("{case}: a batch receipt after the failure"),
            Ok(receipts) => {
                let last = receipts.last().expect("receipts").point;
                match engine
                    .watermark_handle()
                    .wait_for_durable(last, Duration::from_secs(30))
                {
                    Ok(_) => run.acked.extend(batch),
                    Err(e) => {
                        assert!(matches!(e, WaitError::Poisoned { .. }), "{case}: {e}");
                        run.failed = true;
                    }
                }
            }
            Err(e) => {
                assert!(is_poisoned(&e), "{case}: {e}");
                run.failed = true;
            }
        }
    }
    run
}

fn clean_ops(kind: OpKind) -> u64 {
    let dir = tempfile::tempdir().expect("tempdir");
    let disk = SimDisk::new();
    let engine = Engine::open_with_storage(disk.clone(), dir.path(), options()).expect("open");
    let run = workload(&engine, "clean run", &disk);
    assert!(!run.failed && run.acked.len() as u64 == RECORDS);
    engine.close().expect("close");
    disk.ops_of(kind)
}

/// One fault: runs the workload with a waiter parked on the last record, then a power
/// loss, then checks the reopened log.
fn fault_case(kind: OpKind, nth: u64, mode: FaultMode) {
    let case = format!("{kind:?} #{nth} {mode:?}");
    let dir = tempfile::tempdir().expect("tempdir");
    let disk = SimDisk::new();
    disk.fail(kind, nth, mode);
    let (acked, durable) = match Engine::open_with_storage(disk.clone(), dir.path(), options()) {
        Err(e) => {
            // A fault during open: a typed error, nothing acknowledged.
            assert!(!e.to_string().is_empty(), "{case}");
            (Vec::new(), 0)
        }
        Ok(engine) => {
            let handle = engine.watermark_handle();
            let target = HlcPoint::new(0, GlobalSeq(RECORDS));
            let waiter = std::thread::spawn(move || {
                handle.wait_for_durable(target, Duration::from_secs(60))
            });
            let run = workload(&engine, &case, &disk);
            let marks = engine.watermarks();
            let durable = marks.global.durable_hlc.global_sequence;
            if run.full {
                assert!(!marks.poisoned, "{case}: a full disk poisoned the engine");
            }
            let waited = waiter.join().expect("waiter thread");
            if run.failed {
                assert!(marks.poisoned, "{case}: a failure without poison");
                assert!(
                    matches!(waited, Err(WaitError::Poisoned { .. })),
                    "{case}: the parked waiter got {waited:?}"
                );
                assert!(
                    matches!(engine.sync(), Err(SyncError::Poisoned { .. })),
                    "{case}: sync after the failure"
                );
                let late = engine.append(0, b"late".to_vec());
                assert!(
                    late.as_ref().is_err_and(is_poisoned),
                    "{case}: an append after the failure: {late:?}"
                );
            } else {
                assert!(waited.is_ok(), "{case}: {waited:?}");
            }
            drop(engine);
            (run.acked, durable)
        }
    };
    // Power loss right after: only what was synced survives.
    disk.clear_faults();
    let image = disk.crash_image(nth);
    let engine = Engine::open_with_storage(image, dir.path(), options())
        .unwrap_or_else(|e| panic!("{case}: reopen after the fault and a power loss failed: {e}"));
    let found: Vec<Vec<u8>> = engine
        .scan_all(GlobalSeq(1))
        .expect("scan")
        .enumerate()
        .map(|(n, r)| {
            assert_eq!(r.global_seq(), GlobalSeq(n as u64 + 1), "{case}: a gap");
            r.payload().to_vec()
        })
        .collect();
    assert!(
        found.len() as u64 >= durable,
        "{case}: the durable watermark reached {durable} but {} records survived",
        found.len()
    );
    let all = attempted();
    assert!(
        found.iter().zip(&all).all(|(f, a)| f == a) && found.len() <= all.len(),
        "{case}: the log is not a prefix of what was appended"
    );
    assert!(
        found.len() >= acked.len(),
        "{case}: {} acknowledged, {} survived",
        acked.len(),
        found.len()
    );
    // Batches whole: records 1..=3 of a round come back together.
    let batch_records = found.iter().filter(|p| p.len() == 60);
    assert_eq!(batch_records.count() % 3, 0, "{case}: a partial batch");
}

#[test]
fn every_io_fault_at_every_position_poisons_and_durable_never_passes_the_last_good_sync() {
    let mut cases = 0;
    for kind in OpKind::ALL {
        let total = clean_ops(kind);
        for nth in 1..=total {
            for mode in [FaultMode::Once, FaultMode::Persistent] {
                fault_case(kind, nth, mode);
                cases += 1;
            }
        }
    }
    eprintln!("engine I/O fault sweep: {cases} faults injected");
    assert!(cases >= 100, "the sweep covered only {cases} cases");
}
