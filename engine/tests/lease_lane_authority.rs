//! One append authority per lane, decided by lane leases (the seed's "one authority per
//! space"), over the memory and file backends.
//!
//! What could go wrong: two appenders both told to write a lane; a non-holder told to
//! write instead of forwarding; a free lane that nobody can take; a hand-off that keeps
//! the old holder writing or reuses its token; two contenders racing for a free lane both
//! routed to themselves.

use std::sync::{Arc, Barrier};
use std::time::Duration;

use tidelog::lease::{
    AppendRoute, FileBackend, LaneAuthority, LeaseBackend, LeaseError, LeaseManager, ManualClock,
    MemoryBackend,
};
use tidelog::watermarks::LaneId;

const TTL: Duration = Duration::from_secs(10);
const LANE: LaneId = LaneId(1);

/// One store and clock, reached by as many nodes as a scenario needs.
struct Env {
    open: Box<dyn Fn() -> Arc<dyn LeaseBackend>>,
    clock: ManualClock,
}

impl Env {
    /// A lease manager of its own on the shared store and clock.
    fn leases(&self) -> LeaseManager {
        LeaseManager::new((self.open)()).with_clock(Arc::new(self.clock.clone()))
    }

    /// The lane authority of `holder` over the lanes of database "space".
    fn authority(&self, holder: &str) -> LaneAuthority {
        LaneAuthority::new(self.leases(), "space", holder, TTL).expect("authority")
    }
}

/// Runs `scenario` once over a memory backend and once over a file backend, each with
/// its own clock starting at 1 000 000 ms.
fn for_each_backend(scenario: impl Fn(&Env)) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().to_path_buf();
    let memory = MemoryBackend::new();
    let envs = [
        (
            "memory",
            Env {
                open: Box::new(move || Arc::new(memory.clone())),
                clock: ManualClock::new(1_000_000),
            },
        ),
        (
            "file",
            Env {
                open: Box::new(move || Arc::new(FileBackend::open(&path).expect("open"))),
                clock: ManualClock::new(1_000_000),
            },
        ),
    ];
    for (name, env) in &envs {
        eprintln!("backend: {name}");
        scenario(env);
    }
}

fn holder_of(route: &AppendRoute) -> (&'static str, &str) {
    match route {
        AppendRoute::Local(lease) => ("local", lease.holder_id.as_str()),
        AppendRoute::Forward(lease) => ("forward", lease.holder_id.as_str()),
    }
}

#[test]
fn only_one_node_holds_a_lane_at_a_time() {
    for_each_backend(|env| {
        let (a, b) = (env.authority("A"), env.authority("B"));
        a.acquire(LANE).unwrap();
        let err = b.acquire(LANE).unwrap_err();
        assert!(matches!(err, LeaseError::Held { .. }), "{err:?}");
        assert!(a.holds(LANE).unwrap());
        assert!(!b.holds(LANE).unwrap());
    });
}

#[test]
fn a_non_holder_is_routed_to_the_holder_instead_of_writing() {
    for_each_backend(|env| {
        let (a, b) = (env.authority("A"), env.authority("B"));
        let held = a.acquire(LANE).unwrap();
        assert_eq!(b.route(LANE).unwrap(), AppendRoute::Forward(held.clone()));
        assert_eq!(a.route(LANE).unwrap(), AppendRoute::Local(held));
        assert!(!b.holds(LANE).unwrap(), "routing must not take the lane");
    });
}

#[test]
fn an_unleased_lane_is_acquired_by_its_first_appender() {
    for_each_backend(|env| {
        let a = env.authority("A");
        assert!(!a.holds(LANE).unwrap());
        match a.route(LANE).unwrap() {
            AppendRoute::Local(lease) => {
                assert_eq!(lease.database_key, "space/lane/1");
                assert_eq!(lease.generation, 1);
            }
            other => panic!("expected Local, got {other:?}"),
        }
        assert!(a.holds(LANE).unwrap());
    });
}

#[test]
fn a_lane_hands_off_after_expiry_and_the_new_holder_has_a_higher_token() {
    for_each_backend(|env| {
        let (a, b) = (env.authority("A"), env.authority("B"));
        let old = a.acquire(LANE).unwrap();
        env.clock.advance(TTL);
        let AppendRoute::Local(new) = b.route(LANE).unwrap() else {
            panic!("B must take the expired lane");
        };
        assert!(new.fencing_token() > old.fencing_token());
        assert_eq!(a.route(LANE).unwrap(), AppendRoute::Forward(new));
    });
}

#[test]
fn a_stale_ex_holder_cannot_keep_the_lane_it_lost() {
    for_each_backend(|env| {
        let (a, b) = (env.authority("A"), env.authority("B"));
        let old = a.acquire(LANE).unwrap();
        env.clock.advance(TTL);
        b.acquire(LANE).unwrap();
        // A still has its old record in hand, but cannot extend or release it...
        let leases = env.leases();
        let err = leases.refresh(&old, TTL).unwrap_err();
        assert!(matches!(err, LeaseError::Stale { .. }), "{err:?}");
        let err = leases.release(&old).unwrap_err();
        assert!(matches!(err, LeaseError::Stale { .. }), "{err:?}");
        // ...and its appends are routed to B.
        assert!(!a.holds(LANE).unwrap());
        assert_eq!(holder_of(&a.route(LANE).unwrap()), ("forward", "B"));
    });
}

#[test]
fn lanes_are_independent_of_each_other_and_of_the_database_lease() {
    for_each_backend(|env| {
        let (a, b) = (env.authority("A"), env.authority("B"));
        // C holds the lease of the database itself; lanes have leases of their own.
        env.leases().try_acquire("space", "C", TTL).unwrap();
        assert_eq!(holder_of(&a.route(LaneId(1)).unwrap()), ("local", "A"));
        assert_eq!(holder_of(&b.route(LaneId(2)).unwrap()), ("local", "B"));
        assert_eq!(holder_of(&a.route(LaneId(2)).unwrap()), ("forward", "B"));
        assert_eq!(
            env.leases().current("space").unwrap().unwrap().holder_id,
            "C"
        );
    });
}

#[test]
fn contenders_racing_for_a_free_lane_agree_on_one_holder() {
    for_each_backend(|env| {
        const CONTENDERS: usize = 4;
        for lane in 10..16 {
            let lane = LaneId(lane);
            let barrier = Arc::new(Barrier::new(CONTENDERS));
            let handles: Vec<_> = (0..CONTENDERS)
                .map(|index| {
                    let mine = env.authority(&format!("node-{index}"));
                    let barrier = Arc::clone(&barrier);
                    std::thread::spawn(move || {
                        barrier.wait();
                        mine.route(lane).unwrap()
                    })
                })
                .collect();
            let routes: Vec<AppendRoute> = handles.into_iter().map(|h| h.join().unwrap()).collect();
            let locals: Vec<&AppendRoute> = routes
                .iter()
                .filter(|route| matches!(route, AppendRoute::Local(_)))
                .collect();
            assert_eq!(locals.len(), 1, "lane {lane}: {routes:?}");
            let (_, winner) = holder_of(locals[0]);
            for route in &routes {
                assert_eq!(holder_of(route).1, winner, "lane {lane}: {routes:?}");
            }
        }
    });
}

#[test]
fn a_database_key_too_long_for_lane_keys_is_refused() {
    let leases = LeaseManager::new(Arc::new(MemoryBackend::new()));
    let err = LaneAuthority::new(leases, &"d".repeat(65), "A", TTL).unwrap_err();
    assert!(matches!(err, LeaseError::InvalidKey { .. }), "{err:?}");
}
