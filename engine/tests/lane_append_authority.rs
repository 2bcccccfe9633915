//! The seed's append-authority tests (`append_authority_tests.py`), case by case, with a
//! lane for a space: [`LaneLogs`] gives each lane a log and a writer lease of its own.
//! Every case runs over the in-memory lease backend, the file backend (a durable store
//! shared by processes) and, with feature `etcd`, a real etcd; the logs are real files
//! either way.
//!
//! What could go wrong: two holders of one lane; a non-holder writing instead of
//! forwarding; two writers' appends interleaved out of one contiguous order; a new holder
//! that does not continue from the head; a stale ex-holder forking the lane's log; a
//! lane nobody holds that nobody can append to.

mod common;

use common::stalling::Stalling;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tidelog::forward::LaneLogsError;
use tidelog::lease::{FileBackend, LeaseBackend, LeaseError, MemoryBackend};
use tidelog::{Appender, GlobalSeq, LaneLogs, LeaseOptions, OpenError, Options};

const SPACE: u32 = 7;

/// A lease store shared by the nodes of one scenario.
struct Store {
    backend: Arc<dyn LeaseBackend>,
}

/// Runs `scenario` once with a memory backend, once with a file backend, and (feature
/// `etcd`) once with a real etcd started on loopback.
fn for_each_store(scenario: impl Fn(&Path, &Store)) {
    #[cfg(feature = "etcd")]
    {
        // TLS with client certificates and user/password authentication.
        let server = common::etcd_server::EtcdServer::start_secure();
        let pki = server.pki();
        let backend = tidelog::lease::EtcdBackend::new(&server.endpoint())
            .and_then(|b| b.with_ca_pem(pki.ca_pem.as_bytes()))
            .and_then(|b| {
                b.with_client_cert_pem(
                    pki.client_cert_pem.as_bytes(),
                    pki.client_key_pem.as_bytes(),
                )
            })
            .expect("secure etcd")
            .with_user(common::etcd_server::USER, common::etcd_server::PASSWORD);
        let lanes = tempfile::tempdir().unwrap();
        scenario(
            lanes.path(),
            &Store {
                backend: Arc::new(backend),
            },
        );
    }
    #[cfg(feature = "etcd")]
    {
        let server = common::etcd_server::EtcdServer::start();
        let backend = tidelog::lease::EtcdBackend::new(&server.endpoint()).expect("etcd");
        let lanes = tempfile::tempdir().unwrap();
        scenario(
            lanes.path(),
            &Store {
                backend: Arc::new(backend),
            },
        );
    }
    let memory = tempfile::tempdir().unwrap();
    scenario(
        memory.path(),
        &Store {
            backend: Arc::new(MemoryBackend::new()),
        },
    );
    let file = tempfile::tempdir().unwrap();
    let leases = file.path().join("leases");
    scenario(
        &file.path().join("lanes"),
        &Store {
            backend: Arc::new(FileBackend::open(&leases).unwrap()),
        },
    );
}

fn options(backend: Arc<dyn LeaseBackend>, ttl: Duration) -> Options {
    let mut lease = LeaseOptions::default();
    lease.backend = Some(backend);
    lease.ttl = ttl;
    Options::default()
        .segment_size(256 * 1024)
        .max_record_bytes(16 * 1024)
        .max_batch_bytes(64 * 1024)
        .lease(lease)
}

/// A node on `root` with a long lease.
fn node(root: &Path, store: &Store) -> LaneLogs {
    LaneLogs::open(
        root,
        options(store.backend.clone(), Duration::from_secs(30)),
    )
    .unwrap()
}

/// The payloads of the lane, in order, and their global sequences.
fn events(node: &LaneLogs) -> (Vec<u64>, Vec<String>) {
    let records = node.records(SPACE, GlobalSeq(1), 1_000).unwrap();
    (
        records.iter().map(|r| r.global_seq.0).collect(),
        records
            .iter()
            .map(|r| String::from_utf8(r.payload.clone()).unwrap())
            .collect(),
    )
}

fn is_held(err: &LaneLogsError) -> bool {
    matches!(
        err,
        LaneLogsError::Open {
            source: OpenError::Lease(LeaseError::Held { .. }),
            ..
        }
    )
}

#[test]
fn only_one_node_holds_a_lane_at_a_time() {
    for_each_store(|root, store| {
        let (a, b) = (node(root, store), node(root, store));
        a.acquire(SPACE).unwrap();
        let refused = b.acquire(SPACE).unwrap_err();
        assert!(is_held(&refused), "{refused}");
        assert!(a.holds(SPACE) && !b.holds(SPACE));
        a.close().unwrap();
    });
}

#[test]
fn concurrent_appends_serialize_into_one_total_order() {
    for_each_store(|root, store| {
        let (a, b) = (node(root, store), node(root, store));
        a.acquire(SPACE).unwrap();
        a.append(SPACE, "1").unwrap();
        b.append(SPACE, "2").unwrap(); // forwarded
        a.append(SPACE, "3").unwrap();
        assert_eq!(
            events(&a),
            (vec![1, 2, 3], vec!["1".into(), "2".into(), "3".into()])
        );
        assert_eq!(events(&b), events(&a), "both nodes read the one order");
        b.close().unwrap();
        a.close().unwrap();
    });
}

#[test]
fn a_non_holder_forwards_rather_than_writing_directly() {
    for_each_store(|root, store| {
        let (a, b) = (node(root, store), node(root, store));
        a.acquire(SPACE).unwrap();
        assert!(!b.holds(SPACE));
        let receipt = b.append(SPACE, "fwd").unwrap();
        assert_eq!(receipt.point.global_sequence, 1);
        assert!(!b.holds(SPACE), "forwarding does not take the lane");
        assert!(a.holds(SPACE));
        assert_eq!(events(&a).1, ["fwd"]);
        b.close().unwrap();
        a.close().unwrap();
    });
}

/// Node A, whose lease backend can be stalled (A "dies": its lease runs out unrefreshed
/// while its process stays), and node B, both on `root`, with a short lease: short for a
/// quick take-over, long enough that B's own refresher keeps it through a scheduling
/// stall on a loaded machine (500 ms was not: B lost it between acquire and append).
fn stallable_pair(root: &Path, store: &Store) -> (LaneLogs, Arc<Stalling>, LaneLogs) {
    let ttl = Duration::from_millis(2000);
    let stalling = Stalling::new(store.backend.clone());
    let a = LaneLogs::open(root, options(stalling.backend(), ttl)).unwrap();
    let b = LaneLogs::open(root, options(store.backend.clone(), ttl)).unwrap();
    (a, stalling, b)
}

/// B acquires the lane as soon as A's lease has run out.
fn take_over(b: &LaneLogs) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match b.acquire(SPACE) {
            Ok(()) => return,
            Err(err) if is_held(&err) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(err) => panic!("{err}"),
        }
    }
}

#[test]
fn a_lease_hand_off_resumes_from_the_head() {
    for_each_store(|root, store| {
        let (a, stalling, b) = stallable_pair(root, store);
        a.acquire(SPACE).unwrap();
        a.append(SPACE, "0").unwrap();
        a.append(SPACE, "1").unwrap();
        stalling.stall(); // A "dies": its lease is never refreshed again
        take_over(&b);
        assert!(b.holds(SPACE));
        b.append(SPACE, "2").unwrap();
        assert_eq!(
            events(&b),
            (vec![1, 2, 3], vec!["0".into(), "1".into(), "2".into()])
        );
        stalling.resume();
        drop(a);
        b.close().unwrap();
    });
}

#[test]
fn a_stale_ex_holder_cannot_fork_the_log() {
    for_each_store(|root, store| {
        let (a, stalling, b) = stallable_pair(root, store);
        a.acquire(SPACE).unwrap();
        a.append(SPACE, "0").unwrap();
        stalling.stall();
        take_over(&b);
        b.append(SPACE, "1").unwrap();
        // A still has its writer open, but it is no longer the holder: its append goes
        // to B.
        assert!(!a.holds(SPACE));
        a.append(SPACE, "2").unwrap();
        assert!(!a.holds(SPACE) && b.holds(SPACE));
        assert_eq!(
            events(&b),
            (vec![1, 2, 3], vec!["0".into(), "1".into(), "2".into()])
        );
        stalling.resume();
        a.close().unwrap();
        b.close().unwrap();
    });
}

#[test]
fn an_unleased_lane_is_acquired_by_its_first_append() {
    for_each_store(|root, store| {
        let a = node(root, store);
        a.append(SPACE, "x").unwrap(); // no explicit acquire
        assert!(a.holds(SPACE));
        assert_eq!(events(&a).1, ["x"]);
        a.close().unwrap();
    });
}

#[test]
fn different_lanes_may_have_different_holders() {
    for_each_store(|root, store| {
        let (a, b) = (node(root, store), node(root, store));
        a.append(1, "a1").unwrap();
        b.append(2, "b2").unwrap();
        assert!(a.holds(1) && !a.holds(2) && b.holds(2) && !b.holds(1));
        // Each forwards to the other's lane.
        a.append(2, "a2").unwrap();
        b.append(1, "b1").unwrap();
        let payloads = |lane: u32| -> Vec<String> {
            a.records(lane, GlobalSeq(1), 10)
                .unwrap()
                .iter()
                .map(|r| String::from_utf8(r.payload.clone()).unwrap())
                .collect()
        };
        assert_eq!(payloads(1), ["a1", "b1"]);
        assert_eq!(payloads(2), ["b2", "a2"]);
        a.close().unwrap();
        b.close().unwrap();
    });
}
