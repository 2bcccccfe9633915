//! The async forms of the engine's appends and waits, under tokio's multi-thread runtime.
//! What could go wrong: an async durable append resolving before its record is durable;
//! appends from many tasks losing their total order; a task parked on an append or a
//! watermark never woken when a sync fails or the writer lease is lost.
#![cfg(not(loom))]

mod common;

use std::sync::Arc;
use std::time::Duration;
use tidelog::lease::{LeaseManager, MemoryBackend};
use tidelog::wal::io::{FaultMode, OpKind};
use tidelog::wal::SimDisk;
use tidelog::{
    AppendError, Engine, GlobalSeq, HlcPoint, LeaseOptions, Options, WaitError, WriterFailure,
};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap()
}

#[test]
fn async_durable_appends_from_many_tasks_resolve_once_durable_in_one_contiguous_order() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), Options::default()).unwrap();
    let receipts = runtime().block_on(async {
        let tasks: Vec<_> = (0..8u32)
            .map(|task| {
                let engine = engine.clone();
                tokio::spawn(async move {
                    let mut receipts = Vec::new();
                    for i in 0..40u32 {
                        let payload = format!("{task}-{i}").into_bytes();
                        let receipt = engine
                            .append_durable_async(task % 4, payload)
                            .await
                            .unwrap();
                        // Resolved only after the sync that covers it.
                        let durable = engine.watermark_handle().lock().lane_watermark(task % 4);
                        assert!(durable.durable_hlc.covers(receipt.point), "{receipt:?}");
                        receipts.push(receipt);
                    }
                    receipts
                })
            })
            .collect();
        let mut all = Vec::new();
        for task in tasks {
            all.extend(task.await.unwrap());
        }
        all
    });
    let mut sequences: Vec<u64> = receipts.iter().map(|r| r.point.global_sequence).collect();
    sequences.sort_unstable();
    let first = sequences[0];
    assert_eq!(sequences, (first..first + 320).collect::<Vec<_>>());
    for receipt in &receipts {
        assert!(engine
            .read(receipt.lane, receipt.lane_seq)
            .unwrap()
            .is_some());
    }
    engine.close().unwrap();
}

#[test]
fn an_async_append_then_an_async_lane_wait_sees_the_record_durable_and_visible() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), Options::default()).unwrap();
    runtime().block_on(async {
        let receipt = engine.append_async(3, b"x".to_vec()).await.unwrap();
        let marks = engine.watermark_handle();
        let durable = marks
            .wait_for_durable_on_lane_async(3, receipt.point)
            .await
            .unwrap();
        assert!(durable.covers(receipt.point));
        let visible = marks
            .wait_for_visible_on_lane_async(3, receipt.point)
            .await
            .unwrap();
        assert!(visible.covers(receipt.point));
        // A ticket from `submit` can be awaited too.
        let ticket = engine.submit(3, b"y".to_vec()).unwrap();
        let second = ticket.await.unwrap();
        assert_eq!(second.lane_seq.0, receipt.lane_seq.0 + 1);
    });
    engine.close().unwrap();
}

#[test]
fn an_oversized_async_append_fails_at_once_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), Options::default()).unwrap();
    let too_big = vec![0u8; engine.options().max_record_bytes as usize + 1];
    let outcome = runtime().block_on(engine.append_durable_async(1, too_big));
    assert!(
        matches!(outcome, Err(AppendError::RecordTooLarge { .. })),
        "{outcome:?}"
    );
    assert_eq!(engine.watermarks().global.accepted_hlc.global_sequence, 0);
}

#[test]
fn a_failed_sync_fails_the_async_durable_append_and_wakes_a_parked_async_wait() {
    let dir = tempfile::tempdir().unwrap();
    let disk = SimDisk::new();
    let engine = common::open_sim(&disk, dir.path());
    runtime().block_on(async {
        let far = HlcPoint::new(0, GlobalSeq(1_000_000));
        let parked = tokio::spawn(engine.watermark_handle().wait_for_durable_async(far));
        disk.fail(OpKind::Sync, 1, FaultMode::Persistent);
        let outcome = engine.append_durable_async(1, b"lost".to_vec()).await;
        assert!(
            matches!(outcome, Err(AppendError::Poisoned { .. })),
            "{outcome:?}"
        );
        let woken = tokio::time::timeout(Duration::from_secs(30), parked).await;
        assert!(
            matches!(woken, Ok(Ok(Err(WaitError::Poisoned { .. })))),
            "the parked wait must be woken by the poison: {woken:?}"
        );
    });
}

#[test]
fn losing_the_writer_lease_wakes_and_fails_parked_async_waits_and_appends() {
    let dir = tempfile::tempdir().unwrap();
    let shared = Arc::new(MemoryBackend::new());
    let mut lease = LeaseOptions::default();
    lease.backend = Some(shared.clone());
    lease.ttl = Duration::from_millis(300);
    let engine = Engine::open(dir.path(), Options::default().lease(lease)).unwrap();
    runtime().block_on(async {
        let receipt = engine.append_durable_async(1, b"kept".to_vec()).await.unwrap();
        let far = HlcPoint::new(0, GlobalSeq(receipt.point.global_sequence + 1_000));
        let parked = tokio::spawn(engine.watermark_handle().wait_for_durable_on_lane_async(1, far));
        let current = LeaseManager::new(shared.clone()).current("writer").unwrap().unwrap();
        LeaseManager::new(shared)
            .take_over(&current, "usurper", Duration::from_secs(60), current.term + 1)
            .unwrap();
        let woken = tokio::time::timeout(Duration::from_secs(30), parked).await;
        assert!(
            matches!(woken, Ok(Ok(Err(WaitError::Poisoned { .. })))),
            "the lease loss must wake the parked wait: {woken:?}"
        );
        let refused = engine.append_durable_async(1, b"refused".to_vec()).await.unwrap_err();
        assert!(
            matches!(&refused, AppendError::Poisoned { cause } if matches!(**cause, WriterFailure::LeaseLost(_))),
            "{refused}"
        );
    });
}
