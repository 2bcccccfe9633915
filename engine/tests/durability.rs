//! Durability, visibility and poison through the engine, on the simulated disk.
//! What could go wrong: a reader seeing a record a crash could take back; a batch
//! half-present after a crash; a waiter or appender left hanging, or told "durable", after
//! a failed sync; an acknowledged record missing after reopen.

mod common;

use std::time::Duration;
use tidelog::wal::io::{FaultMode, OpKind};
use tidelog::wal::SimDisk;
use tidelog::{
    AppendError, BatchEntry, Engine, GlobalSeq, LaneSeq, Options, SyncError, SyncPolicy,
};

#[test]
fn under_the_default_nothing_is_visible_before_it_is_durable() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(
        dir.path(),
        Options::default().sync_policy(SyncPolicy::Never),
    )
    .unwrap();
    let receipt = engine.append(1, b"pending".to_vec()).unwrap();
    let marks = engine.watermarks();
    assert_eq!(marks.global.written_hlc, receipt.point);
    assert_eq!(marks.global.durable_hlc.global_sequence, 0);
    assert_eq!(marks.global.visible_hlc.global_sequence, 0);
    assert!(
        engine.read(1, LaneSeq(1)).unwrap().is_none(),
        "visible before durable"
    );
    assert_eq!(engine.scan_all(GlobalSeq(1)).unwrap().count(), 0);
    engine.sync().unwrap();
    assert_eq!(
        engine.read(1, LaneSeq(1)).unwrap().unwrap().payload(),
        b"pending"
    );
}

#[test]
fn visible_once_written_shows_records_before_the_sync() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options::default()
        .sync_policy(SyncPolicy::Never)
        .visibility(tidelog::Visibility::Written);
    let engine = Engine::open(dir.path(), options).unwrap();
    engine.append(1, b"early".to_vec()).unwrap();
    assert_eq!(
        engine.read(1, LaneSeq(1)).unwrap().unwrap().payload(),
        b"early"
    );
    assert_eq!(engine.watermarks().global.durable_hlc.global_sequence, 0);
}

#[test]
fn every_n_records_syncs_only_when_n_are_waiting() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(
        dir.path(),
        Options::default().sync_policy(SyncPolicy::EveryRecords(3)),
    )
    .unwrap();
    let marks = engine.watermark_handle();
    engine.append(1, b"a".to_vec()).unwrap();
    let second = engine.append(1, b"b".to_vec()).unwrap();
    assert_eq!(marks.lock().snapshot().durable_hlc.global_sequence, 0);
    let third = engine.append(1, b"c".to_vec()).unwrap();
    assert!(marks
        .wait_for_durable(third.point, Duration::from_secs(10))
        .is_ok());
    assert!(second.point.global_sequence < third.point.global_sequence);
}

#[test]
fn the_interval_policy_syncs_without_further_appends() {
    let dir = tempfile::tempdir().unwrap();
    let policy = SyncPolicy::EveryInterval(Duration::from_millis(20));
    let engine = Engine::open(dir.path(), Options::default().sync_policy(policy)).unwrap();
    let receipt = engine.append(1, b"a".to_vec()).unwrap();
    assert!(engine
        .watermark_handle()
        .wait_for_durable(receipt.point, Duration::from_secs(10))
        .is_ok());
}

#[test]
fn a_durable_append_answers_only_after_its_sync_even_when_the_policy_never_syncs() {
    let dir = tempfile::tempdir().unwrap();
    let disk = SimDisk::new();
    let options = common::small().sync_policy(SyncPolicy::Never);
    let engine = Engine::open_with_storage(disk.clone(), dir.path(), options).unwrap();
    let pending = engine.append(1, b"unsynced".to_vec()).unwrap();
    assert_eq!(engine.watermarks().global.durable_hlc.global_sequence, 0);
    let syncs_before = disk.ops_of(OpKind::Sync);
    let durable = engine.append_durable(1, b"synced".to_vec()).unwrap();
    assert!(
        disk.ops_of(OpKind::Sync) > syncs_before,
        "no sync ran for it"
    );
    let marks = engine.watermarks().global;
    assert!(marks.durable_hlc.global_sequence >= durable.point.global_sequence);
    assert!(marks.durable_hlc.global_sequence > pending.point.global_sequence);
}

#[test]
fn a_durable_batch_answers_only_after_its_sync_even_when_the_policy_never_syncs() {
    let dir = tempfile::tempdir().unwrap();
    let disk = SimDisk::new();
    let options = common::small().sync_policy(SyncPolicy::Never);
    let engine = Engine::open_with_storage(disk.clone(), dir.path(), options).unwrap();
    let plain = engine
        .append_batch(vec![BatchEntry::new(1, b"a".to_vec())])
        .unwrap();
    assert_eq!(engine.watermarks().global.durable_hlc.global_sequence, 0);
    let syncs_before = disk.ops_of(OpKind::Sync);
    let receipts = engine
        .append_batch_durable(
            (0..50)
                .map(|i| BatchEntry::new(i % 3, format!("b{i}").into_bytes()))
                .collect(),
        )
        .unwrap();
    assert_eq!(receipts.len(), 50);
    assert!(
        disk.ops_of(OpKind::Sync) > syncs_before,
        "no sync ran for it"
    );
    let durable = engine.watermarks().global.durable_hlc.global_sequence;
    assert!(durable >= receipts.last().unwrap().point.global_sequence);
    assert!(durable > plain[0].point.global_sequence);
}

#[test]
fn a_durable_batch_whose_sync_fails_is_refused_and_durable_stays_put() {
    let dir = tempfile::tempdir().unwrap();
    let disk = SimDisk::new();
    let engine = common::open_sim(&disk, dir.path());
    let safe = engine
        .append_batch_durable(vec![BatchEntry::new(1, b"safe".to_vec())])
        .unwrap();
    disk.fail(OpKind::Sync, 1, FaultMode::Once);
    let err = engine
        .append_batch_durable(vec![
            BatchEntry::new(1, b"unsure".to_vec()),
            BatchEntry::new(2, b"unsure".to_vec()),
        ])
        .unwrap_err();
    assert!(matches!(err, AppendError::Poisoned { .. }), "{err}");
    assert_eq!(engine.watermarks().global.durable_hlc, safe[0].point);
}

#[test]
fn a_lone_durable_append_under_every_n_records_gets_its_sync_instead_of_hanging() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(
        dir.path(),
        Options::default().sync_policy(SyncPolicy::EveryRecords(1_000)),
    )
    .unwrap();
    let plain = engine.append(1, b"plain".to_vec()).unwrap();
    assert_eq!(
        engine.watermarks().global.durable_hlc.global_sequence,
        0,
        "a plain append was synced before the policy's n-th record"
    );
    let durable = engine.append_durable(1, b"durable".to_vec()).unwrap();
    let marks = engine.watermarks().global;
    assert!(marks.durable_hlc.global_sequence >= durable.point.global_sequence);
    assert!(marks.durable_hlc.global_sequence > plain.point.global_sequence);
}

#[test]
fn a_failed_sync_poisons_waiters_appenders_and_sync_and_reopen_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let disk = SimDisk::new();
    let engine = common::open_sim(&disk, dir.path());
    let durable = engine.append_durable(1, b"safe".to_vec()).unwrap();
    disk.fail(OpKind::Sync, 1, FaultMode::Once);
    let err = engine.append_durable(1, b"unsure".to_vec()).unwrap_err();
    assert!(matches!(err, AppendError::Poisoned { .. }), "{err}");
    let later = engine.append(1, b"refused".to_vec()).unwrap_err();
    assert!(matches!(later, AppendError::Poisoned { .. }), "{later}");
    assert!(later.to_string().contains("reopen"), "{later}");
    assert!(matches!(engine.sync(), Err(SyncError::Poisoned { .. })));
    assert_eq!(
        engine.watermarks().global.durable_hlc,
        durable.point,
        "durable froze at the last good sync"
    );
    assert!(engine.watermarks().poisoned);
    assert!(matches!(engine.close(), Err(SyncError::Poisoned { .. })));
    drop(engine);
    disk.clear_faults();
    let engine = common::open_sim(&disk, dir.path());
    assert_eq!(
        engine.read(1, LaneSeq(1)).unwrap().unwrap().payload(),
        b"safe"
    );
    engine.append_durable(1, b"again".to_vec()).unwrap();
}

#[test]
fn a_failed_write_poisons_the_engine_and_nothing_after_it_is_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let disk = SimDisk::new();
    let engine = common::open_sim(&disk, dir.path());
    engine.append_durable(2, b"one".to_vec()).unwrap();
    disk.fail(OpKind::Write, 1, FaultMode::Persistent);
    assert!(matches!(
        engine.append(2, b"two".to_vec()),
        Err(AppendError::Poisoned { .. })
    ));
    assert!(matches!(
        engine.append(2, b"three".to_vec()),
        Err(AppendError::Poisoned { .. })
    ));
    assert_eq!(engine.watermarks().global.accepted_hlc.global_sequence, 1);
}

/// A 1000-byte payload starting with `label`, so the workload spans several segments.
fn padded(label: String) -> Vec<u8> {
    let mut bytes = label.into_bytes();
    bytes.resize(1000, b'.');
    bytes
}

/// Tiny segments: the workload rotates several times.
fn rotating() -> tidelog::Options {
    let mut options = Options::default()
        .segment_size(8 * 1024)
        .max_record_bytes(2 * 1024)
        .max_batch_bytes(4 * 1024);
    options.prepare_segments_in_background = false;
    options
}

/// Rounds of the power-loss workload: `TIDELOG_POWER_LOSS_ROUNDS` (default 6; each round
/// is a durable append and a batch of 4).
fn rounds() -> u32 {
    env_or("TIDELOG_POWER_LOSS_ROUNDS", 6)
}

/// Damages per crash point: `TIDELOG_POWER_LOSS_DAMAGES` (default 3).
fn damages() -> u64 {
    env_or("TIDELOG_POWER_LOSS_DAMAGES", 3)
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Every payload the workload can append, in order.
fn attempted() -> Vec<Vec<u8>> {
    (0..rounds())
        .flat_map(|i| {
            std::iter::once(padded(format!("single-{i}")))
                .chain((0..4).map(move |j| format!("batch-{i}-{j}").into_bytes()))
        })
        .collect()
}

/// Runs a workload of single appends and batches of 4; returns the payloads acknowledged
/// as durable.
fn workload(engine: &Engine<SimDisk>) -> Vec<Vec<u8>> {
    let mut acked = Vec::new();
    for i in 0..rounds() {
        let payload = padded(format!("single-{i}"));
        if engine.append_durable(i % 2, payload.clone()).is_ok() {
            acked.push(payload);
        }
        let batch: Vec<Vec<u8>> = (0..4)
            .map(|j| format!("batch-{i}-{j}").into_bytes())
            .collect();
        let entries = batch
            .iter()
            .enumerate()
            .map(|(j, p)| BatchEntry::new(j as u32 % 3, p.clone()))
            .collect();
        if let Ok(receipts) = engine.append_batch(entries) {
            let last = receipts.last().unwrap().point;
            if engine
                .watermark_handle()
                .wait_for_durable(last, Duration::from_secs(10))
                .is_ok()
            {
                acked.extend(batch);
            }
        }
    }
    acked
}

#[test]
fn after_a_power_loss_at_any_operation_batches_are_all_or_none_and_acknowledged_records_survive() {
    let dir = tempfile::tempdir().unwrap();
    let total = {
        let disk = SimDisk::new();
        let engine = Engine::open_with_storage(disk.clone(), dir.path(), rotating()).unwrap();
        workload(&engine);
        engine.close().unwrap();
        disk.ops()
    };
    let mut crashes = 0;
    for k in 1..=total {
        for seed in 0..damages() {
            let run = tempfile::tempdir().unwrap();
            let disk = SimDisk::new();
            disk.crash_at(k);
            let acked = match Engine::open_with_storage(disk.clone(), run.path(), rotating()) {
                Ok(engine) => {
                    let acked = workload(&engine);
                    drop(engine);
                    acked
                }
                Err(_) => Vec::new(),
            };
            let image = disk.crash_image(seed);
            let engine = Engine::open_with_storage(image, run.path(), rotating())
                .unwrap_or_else(|e| panic!("reopen after crash at op {k} (seed {seed}): {e}"));
            let found: Vec<Vec<u8>> = engine
                .scan_all(GlobalSeq(1))
                .unwrap()
                .map(|r| r.payload().to_vec())
                .collect();
            for payload in &acked {
                assert!(
                    found.contains(payload),
                    "crash at {k}/{seed}: acknowledged {:?} lost",
                    String::from_utf8_lossy(payload)
                );
            }
            // In the order appended, and nothing that was never appended.
            let all = attempted();
            assert!(
                found.len() <= all.len() && found.iter().zip(&all).all(|(f, a)| f == a),
                "crash at {k}/{seed}: the log is not a prefix of what was appended"
            );
            for i in 0..rounds() {
                let present = (0..4)
                    .filter(|j| found.contains(&format!("batch-{i}-{j}").into_bytes()))
                    .count();
                assert!(
                    present == 0 || present == 4,
                    "crash at {k}/{seed}: batch {i} is partial ({present}/4)"
                );
            }
            for (n, record) in engine.scan_all(GlobalSeq(1)).unwrap().enumerate() {
                assert_eq!(
                    record.global_seq(),
                    GlobalSeq(n as u64 + 1),
                    "sequences contiguous after crash"
                );
            }
            crashes += 1;
        }
    }
    eprintln!(
        "power-loss sweep: {crashes} simulated crashes over {total} operations x {} damages",
        damages()
    );
    assert!(crashes >= damages() * 20, "the sweep ran {crashes} crashes");
}
