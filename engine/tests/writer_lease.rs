//! The engine holds the writer lease while it writes.
//! What could go wrong: two writers at once; a successor kept waiting by a writer that
//! closed; a segment without its writer's fencing token; a writer that keeps
//! acknowledging after its lease was taken or ran out; a deposed writer's records
//! showing up in the log after its successor's.

use std::sync::Arc;
use std::time::{Duration, Instant};
mod common;
use common::stalling::Stalling;
use tidelog::lease::{LeaseBackend, LeaseManager, MemoryBackend};
use tidelog::wal::format::{HeaderIssue, SegmentHeader};
use tidelog::wal::{FencingToken, SegmentIndex};
use tidelog::{AppendError, Engine, LaneSeq, LeaseOptions, Options, WriterFailure};

/// The fencing token in the header of every segment of the database in `dir`, in order.
fn segment_tokens(dir: &std::path::Path) -> Vec<FencingToken> {
    let mut names: Vec<_> = std::fs::read_dir(dir.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".seg"))
        .collect();
    names.sort();
    names
        .iter()
        .filter_map(|name| {
            let index: u64 = name.trim_end_matches(".seg").parse().unwrap();
            let bytes = std::fs::read(dir.join("wal").join(name)).unwrap();
            // A prepared segment nobody has written to yet has no header.
            match SegmentHeader::decode(&bytes, SegmentIndex(index)) {
                Ok(header) => Some(header.fencing),
                Err(HeaderIssue::Unused) => None,
                Err(issue) => panic!("{name}: {issue:?}"),
            }
        })
        .collect()
}

/// The fencing tokens the log carries, in order: each segment header's, then those of
/// the tenure frames in it (a writer continuing another's segment writes one first).
fn log_tokens(dir: &std::path::Path) -> Vec<FencingToken> {
    use tidelog::wal::format::{decode_frame, FrameCheck, SeqRule, FRAME_ALIGN};
    let mut names: Vec<_> = std::fs::read_dir(dir.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".seg"))
        .collect();
    names.sort();
    let mut tokens = Vec::new();
    for name in names {
        let index = SegmentIndex(name.trim_end_matches(".seg").parse().unwrap());
        let bytes = std::fs::read(dir.join("wal").join(&name)).unwrap();
        let Ok(header) = SegmentHeader::decode(&bytes, index) else {
            continue;
        };
        tokens.push(header.fencing);
        let check = FrameCheck {
            segment: index,
            seq: SeqRule::After(tidelog::GlobalSeq(0)),
        };
        for at in (512..bytes.len()).step_by(FRAME_ALIGN) {
            if let Ok(frame) = decode_frame(&bytes, at, &check) {
                tokens.extend(frame.tenure_token());
            }
        }
    }
    tokens
}

#[test]
fn closing_releases_the_lease_and_the_next_writer_stamps_the_next_generation() {
    let dir = tempfile::tempdir().unwrap();
    let first = Engine::open(dir.path(), Options::default()).unwrap();
    let first_lease = first.writer_lease().unwrap();
    first.append_durable(1, b"a".to_vec()).unwrap();
    first.close().unwrap();
    assert!(first.writer_lease().is_none());
    drop(first);

    let started = Instant::now();
    let second = Engine::open(dir.path(), Options::default()).unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the successor waited for the lease to expire"
    );
    assert_eq!(
        second.recovery_report().fenced_off,
        None,
        "a predecessor that released the lease cannot write: nothing to fence off"
    );
    let second_lease = second.writer_lease().unwrap();
    assert_eq!(second_lease.generation, first_lease.generation + 1);
    assert_ne!(second_lease.holder_id, first_lease.holder_id);
    second.append_durable(1, b"b".to_vec()).unwrap();
    second.close().unwrap();
    let token = |l: &tidelog::lease::WriterLease| FencingToken::new(l.term, l.generation);
    assert_eq!(
        segment_tokens(dir.path()),
        [token(&first_lease)],
        "the second writer continues the first one's segment"
    );
    assert_eq!(
        log_tokens(dir.path()),
        [token(&first_lease), token(&second_lease)],
        "after a tenure frame carrying its token"
    );
}

fn with_backend(backend: Arc<dyn LeaseBackend>, ttl: Duration) -> Options {
    let mut lease = LeaseOptions::default();
    lease.backend = Some(backend);
    lease.ttl = ttl;
    Options::default().lease(lease)
}

#[test]
fn a_writer_whose_refresh_stalls_stops_acknowledging_and_its_successor_owns_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let shared = Arc::new(MemoryBackend::new());
    let stalling = Stalling::new(shared.clone());
    let ttl = Duration::from_millis(600);
    let old = Engine::open(dir.path(), with_backend(stalling.backend(), ttl)).unwrap();
    old.append_durable(1, b"before".to_vec()).unwrap();
    stalling.stall();

    // The old writer must refuse durability before anyone else can take the lease.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut acknowledged = vec![old.read(1, LaneSeq(1)).unwrap().unwrap().receipt()];
    let refused = loop {
        match old.append_durable(1, b"maybe".to_vec()) {
            Ok(receipt) => {
                acknowledged.push(receipt);
                let lease = LeaseManager::new(shared.clone())
                    .current("writer")
                    .unwrap()
                    .unwrap();
                let now = LeaseManager::new(shared.clone()).now_ms();
                assert!(
                    lease.is_live(now),
                    "{receipt:?} acknowledged after the lease expired"
                );
            }
            Err(err) => break err,
        }
        assert!(Instant::now() < deadline, "never stopped acknowledging");
    };
    assert!(
        matches!(
            &refused,
            AppendError::Poisoned { cause } if matches!(**cause, WriterFailure::LeaseExpired)
        ),
        "{refused}"
    );
    assert!(refused.to_string().contains("lease"), "{refused}");
    let acknowledged_by_old = old.watermarks().global.durable_hlc.global_sequence;
    assert_eq!(
        acknowledged.last().unwrap().point.global_sequence,
        acknowledged_by_old
    );

    // Once the lease has expired on the backend, a successor takes over: the old
    // engine's liveness file is still locked (a paused process), so it waits for expiry.
    let successor = loop {
        match Engine::open(dir.path(), with_backend(shared.clone(), ttl)) {
            Ok(engine) => break engine,
            Err(tidelog::OpenError::Lease(tidelog::lease::LeaseError::Held { .. })) => {
                assert!(Instant::now() < deadline, "successor never got the lease");
                std::thread::yield_now();
            }
            Err(err) => panic!("{err}"),
        }
    };
    // The old writer may still store into the files it holds: the successor moved the
    // log out of its reach before reading it.
    let fenced = successor.recovery_report().fenced_off.clone();
    assert!(
        fenced.as_ref().is_some_and(|f| f.copied.is_some()),
        "a running predecessor's log was not fenced off: {fenced:?}"
    );
    // It continues after whatever the old writer got onto disk: everything it
    // acknowledged, and possibly a record whose acknowledgement it refused.
    let theirs = successor.append_durable(2, b"successor".to_vec()).unwrap();
    assert!(theirs.point.global_sequence > acknowledged_by_old);

    // The old writer wakes up: its refresh finds the lease taken; it still refuses.
    stalling.resume();
    let late = old.append(1, b"late".to_vec()).unwrap_err();
    assert!(matches!(late, AppendError::Poisoned { .. }), "{late}");
    drop(old);
    successor.close().unwrap();
    drop(successor);

    // The log holds the old writer's acknowledged prefix, then the successor's: no fork.
    let reopened = Engine::open(dir.path(), with_backend(shared, ttl)).unwrap();
    let all: Vec<_> = reopened.scan_all(tidelog::GlobalSeq(1)).unwrap().collect();
    let sequences: Vec<u64> = all
        .iter()
        .map(|r| r.receipt().point.global_sequence)
        .collect();
    let expected: Vec<u64> = (1..=sequences.len() as u64).collect();
    assert_eq!(sequences, expected, "sequences not contiguous");
    assert_eq!(all.last().unwrap().payload(), b"successor");
    assert_eq!(
        reopened.read(2, LaneSeq(1)).unwrap().unwrap().payload(),
        b"successor"
    );
    assert!(all.iter().all(|r| r.payload() != b"late"));
    for receipt in acknowledged {
        let record = reopened.read(1, receipt.lane_seq).unwrap().unwrap();
        assert_eq!(record.receipt(), receipt, "an acknowledged record was lost");
    }
}

#[test]
fn a_writer_whose_lease_is_taken_fails_closed_and_wakes_its_waiters() {
    let dir = tempfile::tempdir().unwrap();
    let shared = Arc::new(MemoryBackend::new());
    let ttl = Duration::from_millis(300);
    let engine = Engine::open(dir.path(), with_backend(shared.clone(), ttl)).unwrap();
    let receipt = engine.append_durable(1, b"kept".to_vec()).unwrap();
    // Somebody deposes this writer with a newer term (an operator, a cluster manager).
    let current = LeaseManager::new(shared.clone())
        .current("writer")
        .unwrap()
        .unwrap();
    LeaseManager::new(shared)
        .take_over(
            &current,
            "usurper",
            Duration::from_secs(60),
            current.term + 1,
        )
        .unwrap();
    // A waiter for something that will never come is woken by the loss, not a timeout.
    let far = tidelog::HlcPoint::new(0, tidelog::GlobalSeq(receipt.point.global_sequence + 1_000));
    let woken = engine
        .watermark_handle()
        .wait_for_durable(far, Duration::from_secs(60));
    assert!(
        matches!(woken, Err(tidelog::WaitError::Poisoned { .. })),
        "{woken:?}"
    );
    let err = engine.append(1, b"refused".to_vec()).unwrap_err();
    assert!(
        matches!(
            &err,
            AppendError::Poisoned { cause } if matches!(**cause, WriterFailure::LeaseLost(_))
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains("term"),
        "{err} does not say it was fenced"
    );
}
