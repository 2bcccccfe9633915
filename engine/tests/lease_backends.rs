//! The writer lease contract, run over every backend: memory, files, and (with
//! `--features etcd`) a real etcd server.
//!
//! What could go wrong: two holders at once; a takeover that reuses a fencing token; a
//! deposed primary (lower term) taking the lease back after it expired; a stale holder
//! extending or releasing a lease that is no longer its own; a lost compare-and-swap
//! reported as success; a legacy record that no longer reads; a garbage record that gets
//! overwritten; a backend whose versions repeat after a delete (ABA).
//!
//! Each case is a function over a [`Fixture`]; `contract_suite!` instantiates all of them
//! as tests for one backend. Time is a [`ManualClock`], so expiry needs no sleeping.

mod common;

use common::hooked::{Cas, Hooked};

use std::any::Any;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use parking_lot::Mutex;
use tidelog::lease::{
    CasOutcome, DecodeError, LeaseBackend, LeaseError, LeaseManager, LeaseToken, ManualClock,
    Versioned, WriterLease, BASE_TERM,
};

const START_MS: u64 = 1_700_000_000_000;
const TTL: Duration = Duration::from_secs(10);
const TTL_MS: u64 = 10_000;

/// A store reached through fresh backend handles (as separate processes would), a shared
/// manual clock, and whatever must stay alive while the test runs (a temp dir, a server).
struct Fixture {
    open: Box<dyn Fn() -> Arc<dyn LeaseBackend>>,
    clock: ManualClock,
    _keep_alive: Box<dyn Any>,
}

impl Fixture {
    fn new(open: impl Fn() -> Arc<dyn LeaseBackend> + 'static, keep_alive: impl Any) -> Self {
        Fixture {
            open: Box::new(open),
            clock: ManualClock::new(START_MS),
            _keep_alive: Box::new(keep_alive),
        }
    }

    fn backend(&self) -> Arc<dyn LeaseBackend> {
        (self.open)()
    }

    /// A manager with its own backend handle, on the shared clock.
    fn manager(&self) -> LeaseManager {
        self.manager_on(self.backend())
    }

    fn manager_on(&self, backend: Arc<dyn LeaseBackend>) -> LeaseManager {
        LeaseManager::new(backend).with_clock(Arc::new(self.clock.clone()))
    }

    fn advance_ms(&self, ms: u64) {
        self.clock.advance(Duration::from_millis(ms));
    }

    fn raw(&self, key: &str) -> Option<Versioned> {
        self.backend().read(key).expect("backend read")
    }

    fn put_raw(&self, key: &str, bytes: &[u8]) {
        let outcome = self
            .backend()
            .put_if_absent(key, bytes)
            .expect("backend put");
        assert!(matches!(outcome, CasOutcome::Applied(_)), "{outcome:?}");
    }
}

fn token(term: u64, generation: u64) -> LeaseToken {
    LeaseToken { term, generation }
}

/// A backend that lets another contender write just before the next conditional put,
/// between the caller's read and its compare-and-swap.
fn interloper(inner: Arc<dyn LeaseBackend>, act: impl FnOnce() + Send + 'static) -> Arc<Hooked> {
    let once: Mutex<Option<Box<dyn FnOnce() + Send>>> = Mutex::new(Some(Box::new(act)));
    Arc::new(Hooked::new(inner, move |cas| {
        if cas != Cas::DeleteIfVersion {
            let act = once.lock().take();
            if let Some(act) = act {
                act();
            }
        }
    }))
}

/// The cases, each a behaviour of the lease that every backend must show.
mod cases {
    use super::*;

    pub fn the_first_acquire_takes_generation_one_at_the_base_term(fx: &Fixture) {
        let m = fx.manager();
        assert_eq!(m.current("db").unwrap(), None);
        let lease = m.try_acquire("db", "writer-a", TTL).unwrap();
        assert_eq!(lease.holder_id, "writer-a");
        assert_eq!(lease.fencing_token(), token(BASE_TERM, 1));
        assert_eq!(lease.acquired_at_ms, START_MS);
        assert_eq!(lease.expires_at_ms, START_MS + TTL_MS);
        assert!(!lease.released);
        assert_eq!(fx.manager().current("db").unwrap(), Some(lease));
    }

    pub fn only_one_holder_at_a_time_the_other_is_told_who_holds_it_and_until_when(fx: &Fixture) {
        let a = fx.manager().try_acquire("db", "writer-a", TTL).unwrap();
        fx.advance_ms(4_000);
        let err = fx.manager().try_acquire("db", "writer-b", TTL).unwrap_err();
        let message = err.to_string();
        match err {
            LeaseError::Held { current, now_ms } => {
                assert_eq!(*current, a);
                assert_eq!(current.remaining_ms(now_ms), 6_000);
            }
            other => panic!("expected Held, got {other:?}"),
        }
        assert!(message.contains("'writer-a'"), "{message}");
        assert!(message.contains("for 6.0 s more"), "{message}");
        assert_eq!(fx.manager().current("db").unwrap(), Some(a));
    }

    pub fn a_lease_is_held_until_the_millisecond_it_expires(fx: &Fixture) {
        fx.manager().try_acquire("db", "writer-a", TTL).unwrap();
        fx.advance_ms(TTL_MS - 1);
        let err = fx.manager().try_acquire("db", "writer-b", TTL).unwrap_err();
        assert!(matches!(err, LeaseError::Held { .. }), "{err:?}");
        fx.advance_ms(1);
        let b = fx.manager().try_acquire("db", "writer-b", TTL).unwrap();
        assert_eq!(b.holder_id, "writer-b");
    }

    pub fn an_expired_lease_goes_to_a_new_holder_with_the_next_generation(fx: &Fixture) {
        let a = fx.manager().try_acquire("db", "writer-a", TTL).unwrap();
        fx.advance_ms(TTL_MS + 5);
        let b = fx.manager().try_acquire("db", "writer-b", TTL).unwrap();
        assert_eq!(b.fencing_token(), token(BASE_TERM, 2));
        assert!(b.fencing_token() > a.fencing_token());
        assert_eq!(b.acquired_at_ms, START_MS + TTL_MS + 5);
        assert_eq!(fx.manager().current("db").unwrap(), Some(b));
    }

    pub fn the_same_holder_acquiring_again_keeps_its_generation_and_extends_expiry(fx: &Fixture) {
        let m = fx.manager();
        m.try_acquire("db", "writer-a", TTL).unwrap();
        fx.advance_ms(3_000);
        let again = m.try_acquire("db", "writer-a", TTL).unwrap();
        assert_eq!(again.fencing_token(), token(BASE_TERM, 1));
        assert_eq!(again.acquired_at_ms, START_MS);
        assert_eq!(again.expires_at_ms, START_MS + 3_000 + TTL_MS);
        // Expired but untaken: nobody else wrote in between, the tenure goes on.
        fx.advance_ms(TTL_MS * 2);
        let later = m.try_acquire("db", "writer-a", TTL).unwrap();
        assert_eq!(later.fencing_token(), token(BASE_TERM, 1));
    }

    pub fn release_lets_another_holder_in_at_once_with_a_higher_generation(fx: &Fixture) {
        let m = fx.manager();
        let a = m.try_acquire("db", "writer-a", TTL).unwrap();
        m.release(&a).unwrap();
        let published = m.current("db").unwrap().unwrap();
        assert!(published.released);
        assert!(!published.is_live(m.now_ms()));
        let b = fx.manager().try_acquire("db", "writer-b", TTL).unwrap();
        assert_eq!(b.fencing_token(), token(BASE_TERM, 2));
        assert!(!b.released);
    }

    pub fn the_same_holder_acquiring_after_its_release_starts_a_new_generation(fx: &Fixture) {
        let m = fx.manager();
        let first = m.try_acquire("db", "writer-a", TTL).unwrap();
        m.release(&first).unwrap();
        let second = m.try_acquire("db", "writer-a", TTL).unwrap();
        assert_eq!(second.fencing_token(), token(BASE_TERM, 2));
    }

    pub fn refresh_extends_expiry_and_keeps_the_token(fx: &Fixture) {
        let m = fx.manager();
        let lease = m
            .try_acquire("db", "writer-a", Duration::from_secs(1))
            .unwrap();
        fx.advance_ms(500);
        let refreshed = m.refresh(&lease, TTL).unwrap();
        assert_eq!(refreshed.fencing_token(), lease.fencing_token());
        assert_eq!(refreshed.acquired_at_ms, lease.acquired_at_ms);
        assert_eq!(refreshed.expires_at_ms, START_MS + 500 + TTL_MS);
        assert_eq!(m.current("db").unwrap(), Some(refreshed.clone()));
        // The refreshed lease keeps others out past the original expiry.
        fx.advance_ms(1_000);
        let err = fx.manager().try_acquire("db", "writer-b", TTL).unwrap_err();
        assert!(matches!(err, LeaseError::Held { .. }), "{err:?}");
    }

    pub fn refresh_by_a_holder_whose_lease_was_taken_over_is_stale(fx: &Fixture) {
        let a = fx.manager().try_acquire("db", "writer-a", TTL).unwrap();
        fx.advance_ms(TTL_MS);
        let b = fx.manager().try_acquire("db", "writer-b", TTL).unwrap();
        let err = fx.manager().refresh(&a, TTL).unwrap_err();
        let message = err.to_string();
        match err {
            LeaseError::Stale {
                holder_id,
                expected,
                found,
                ..
            } => {
                assert_eq!(holder_id, "writer-a");
                assert_eq!(expected, token(BASE_TERM, 1));
                assert_eq!(found.as_deref(), Some(&b));
            }
            other => panic!("expected Stale, got {other:?}"),
        }
        assert!(message.contains("generation 1"), "{message}");
        assert!(message.contains("'writer-b'"), "{message}");
        assert_eq!(fx.manager().current("db").unwrap(), Some(b));
    }

    pub fn release_by_a_holder_whose_lease_was_taken_over_is_stale_and_changes_nothing(
        fx: &Fixture,
    ) {
        let a = fx.manager().try_acquire("db", "writer-a", TTL).unwrap();
        fx.advance_ms(TTL_MS);
        let b = fx.manager().try_acquire("db", "writer-b", TTL).unwrap();
        let err = fx.manager().release(&a).unwrap_err();
        assert!(matches!(err, LeaseError::Stale { .. }), "{err:?}");
        assert_eq!(fx.manager().current("db").unwrap(), Some(b));
    }

    pub fn releasing_twice_is_stale_the_second_time(fx: &Fixture) {
        let m = fx.manager();
        let a = m.try_acquire("db", "writer-a", TTL).unwrap();
        m.release(&a).unwrap();
        match m.release(&a).unwrap_err() {
            LeaseError::Stale { found, .. } => assert!(found.unwrap().released),
            other => panic!("expected Stale, got {other:?}"),
        }
        let err = m.refresh(&a, TTL).unwrap_err();
        assert!(matches!(err, LeaseError::Stale { .. }), "{err:?}");
    }

    pub fn refresh_of_a_lease_whose_record_vanished_is_stale_with_nothing_found(fx: &Fixture) {
        let m = fx.manager();
        let a = m.try_acquire("db", "writer-a", TTL).unwrap();
        let version = fx.raw("db").unwrap().version;
        let deleted = fx.backend().delete_if_version("db", version).unwrap();
        assert_eq!(deleted, CasOutcome::Applied(()));
        match m.refresh(&a, TTL).unwrap_err() {
            LeaseError::Stale { found, .. } => assert_eq!(found, None),
            other => panic!("expected Stale, got {other:?}"),
        }
    }

    pub fn acquire_stamps_the_term_into_the_fencing_token(fx: &Fixture) {
        let lease = fx
            .manager()
            .try_acquire_for_term("db", "writer-a", TTL, 7)
            .unwrap();
        assert_eq!(lease.term, 7);
        assert_eq!(lease.fencing_token(), token(7, 1));
        assert!(!lease.fenced_by_term(7));
        assert!(lease.fenced_by_term(8));
    }

    pub fn a_contender_behind_the_published_term_is_fenced_even_on_an_expired_lease(fx: &Fixture) {
        fx.manager()
            .try_acquire_for_term("db", "new-primary", Duration::from_millis(1), 5)
            .unwrap();
        fx.advance_ms(10);
        let err = fx
            .manager()
            .try_acquire_for_term("db", "ex-primary", TTL, 4)
            .unwrap_err();
        let message = err.to_string();
        match err {
            LeaseError::Fenced {
                holder_id,
                attempted_term,
                current_term,
                ..
            } => {
                assert_eq!(holder_id, "ex-primary");
                assert_eq!((attempted_term, current_term), (4, 5));
            }
            other => panic!("expected Fenced, got {other:?}"),
        }
        assert!(
            message.contains("term 4 is behind the current term 5"),
            "{message}"
        );
        // The term-agnostic acquire is at the base term, behind 5 too.
        let err = fx
            .manager()
            .try_acquire("db", "ex-primary", TTL)
            .unwrap_err();
        assert!(matches!(err, LeaseError::Fenced { .. }), "{err:?}");
        assert_eq!(
            fx.manager().current("db").unwrap().unwrap().holder_id,
            "new-primary"
        );
    }

    pub fn a_contender_behind_the_published_term_is_fenced_even_on_a_released_lease(fx: &Fixture) {
        let m = fx.manager();
        let primary = m.try_acquire_for_term("db", "primary", TTL, 5).unwrap();
        m.release(&primary).unwrap();
        let err = m
            .try_acquire_for_term("db", "ex-primary", TTL, 4)
            .unwrap_err();
        assert!(matches!(err, LeaseError::Fenced { .. }), "{err:?}");
    }

    pub fn the_term_fence_is_checked_before_the_holder_so_a_live_lease_says_fenced(fx: &Fixture) {
        fx.manager()
            .try_acquire_for_term("db", "primary", TTL, 5)
            .unwrap();
        let err = fx
            .manager()
            .try_acquire_for_term("db", "ex-primary", TTL, 4)
            .unwrap_err();
        assert!(matches!(err, LeaseError::Fenced { .. }), "{err:?}");
    }

    pub fn a_contender_at_the_same_or_a_higher_term_takes_an_expired_lease_with_the_next_generation(
        fx: &Fixture,
    ) {
        fx.manager()
            .try_acquire_for_term("db", "old", Duration::from_millis(1), 5)
            .unwrap();
        fx.advance_ms(10);
        let same = fx
            .manager()
            .try_acquire_for_term("db", "same-term", Duration::from_millis(1), 5)
            .unwrap();
        assert_eq!(same.fencing_token(), token(5, 2));
        fx.advance_ms(10);
        let higher = fx
            .manager()
            .try_acquire_for_term("db", "new", TTL, 6)
            .unwrap();
        assert_eq!(higher.holder_id, "new");
        assert_eq!(higher.fencing_token(), token(6, 3));
    }

    pub fn a_higher_term_does_not_poach_a_live_lease(fx: &Fixture) {
        let a = fx
            .manager()
            .try_acquire_for_term("db", "primary", TTL, 5)
            .unwrap();
        let err = fx
            .manager()
            .try_acquire_for_term("db", "candidate", TTL, 6)
            .unwrap_err();
        assert!(matches!(err, LeaseError::Held { .. }), "{err:?}");
        assert_eq!(fx.manager().current("db").unwrap(), Some(a));
    }

    pub fn refresh_for_term_fails_closed_once_the_term_moves_past_the_holder(fx: &Fixture) {
        let m = fx.manager();
        let lease = m.try_acquire_for_term("db", "deposed", TTL, 4).unwrap();
        let before = fx.raw("db").unwrap();
        fx.advance_ms(1_000);
        match m.refresh_for_term(&lease, TTL, 5).unwrap_err() {
            LeaseError::Fenced {
                holder_id,
                attempted_term,
                current_term,
                ..
            } => {
                assert_eq!(holder_id, "deposed");
                assert_eq!((attempted_term, current_term), (4, 5));
            }
            other => panic!("expected Fenced, got {other:?}"),
        }
        // Fenced before touching the backend: the record is exactly as it was.
        assert_eq!(fx.raw("db").unwrap(), before);
    }

    pub fn refresh_for_term_extends_the_lease_while_the_term_holds(fx: &Fixture) {
        let m = fx.manager();
        let lease = m
            .try_acquire_for_term("db", "primary", Duration::from_secs(1), 5)
            .unwrap();
        fx.advance_ms(20);
        let refreshed = m.refresh_for_term(&lease, TTL, 5).unwrap();
        assert_eq!(refreshed.fencing_token(), token(5, 1));
        assert_eq!(refreshed.expires_at_ms, START_MS + 20 + TTL_MS);
    }

    pub fn a_holder_deposed_by_a_higher_term_is_fenced_on_refresh_and_release(fx: &Fixture) {
        let old = fx
            .manager()
            .try_acquire_for_term("db", "old-primary", TTL, 4)
            .unwrap();
        fx.advance_ms(TTL_MS);
        fx.manager()
            .try_acquire_for_term("db", "new-primary", TTL, 5)
            .unwrap();
        for err in [
            fx.manager().refresh(&old, TTL).unwrap_err(),
            fx.manager().release(&old).unwrap_err(),
        ] {
            match err {
                LeaseError::Fenced {
                    attempted_term,
                    current_term,
                    ..
                } => assert_eq!((attempted_term, current_term), (4, 5)),
                other => panic!("expected Fenced, got {other:?}"),
            }
        }
    }

    pub fn losing_the_compare_and_swap_on_acquire_is_lost_race_naming_the_winner(fx: &Fixture) {
        let rival = fx.manager();
        let racing = interloper(fx.backend(), move || {
            rival.try_acquire("db", "writer-b", TTL).unwrap();
        });
        let err = fx
            .manager_on(racing)
            .try_acquire("db", "writer-a", TTL)
            .unwrap_err();
        let message = err.to_string();
        match err {
            LeaseError::LostRace {
                holder_id, found, ..
            } => {
                assert_eq!(holder_id, "writer-a");
                assert_eq!(found.unwrap().holder_id, "writer-b");
            }
            other => panic!("expected LostRace, got {other:?}"),
        }
        assert!(message.contains("'writer-b'"), "{message}");
        assert_eq!(
            fx.manager().current("db").unwrap().unwrap().holder_id,
            "writer-b"
        );
    }

    pub fn losing_the_compare_and_swap_on_a_takeover_is_lost_race(fx: &Fixture) {
        fx.manager().try_acquire("db", "writer-a", TTL).unwrap();
        fx.advance_ms(TTL_MS);
        let rival = fx.manager();
        let racing = interloper(fx.backend(), move || {
            rival.try_acquire("db", "writer-c", TTL).unwrap();
        });
        let err = fx
            .manager_on(racing)
            .try_acquire("db", "writer-b", TTL)
            .unwrap_err();
        match err {
            LeaseError::LostRace { found, .. } => {
                let winner = found.unwrap();
                assert_eq!(winner.holder_id, "writer-c");
                assert_eq!(winner.generation, 2);
            }
            other => panic!("expected LostRace, got {other:?}"),
        }
    }

    pub fn losing_the_compare_and_swap_on_refresh_is_stale(fx: &Fixture) {
        let a = fx.manager().try_acquire("db", "writer-a", TTL).unwrap();
        fx.advance_ms(TTL_MS);
        let rival = fx.manager();
        let racing = interloper(fx.backend(), move || {
            rival.try_acquire("db", "writer-b", TTL).unwrap();
        });
        match fx.manager_on(racing).refresh(&a, TTL).unwrap_err() {
            LeaseError::Stale { found, .. } => assert_eq!(found.unwrap().holder_id, "writer-b"),
            other => panic!("expected Stale, got {other:?}"),
        }
    }

    pub fn a_legacy_record_without_format_or_term_reads_at_the_base_term_and_can_be_taken_over(
        fx: &Fixture,
    ) {
        let legacy = format!(
            r#"{{"database_key":"db","holder_id":"old-writer","generation":4,
                "acquired_at_ms":{START_MS},"expires_at_ms":{}}}"#,
            START_MS + 1_000
        );
        fx.put_raw("db", legacy.as_bytes());
        let m = fx.manager();
        let current = m.current("db").unwrap().unwrap();
        assert_eq!(current.holder_id, "old-writer");
        assert_eq!(current.fencing_token(), token(BASE_TERM, 4));
        let err = m.try_acquire("db", "writer-b", TTL).unwrap_err();
        assert!(matches!(err, LeaseError::Held { .. }), "{err:?}");
        fx.advance_ms(1_000);
        let taken = m.try_acquire("db", "writer-b", TTL).unwrap();
        assert_eq!(taken.fencing_token(), token(BASE_TERM, 5));
        let raw = String::from_utf8(fx.raw("db").unwrap().value).unwrap();
        assert!(
            raw.contains("\"format\": 1"),
            "rewritten in the current format: {raw}"
        );
    }

    pub fn a_garbage_record_is_invalid_format_and_is_never_overwritten(fx: &Fixture) {
        fx.put_raw("db", b"\x00\xffnot a lease");
        let before = fx.raw("db").unwrap();
        let m = fx.manager();
        for err in [
            m.current("db").unwrap_err(),
            m.try_acquire("db", "writer-a", TTL).unwrap_err(),
        ] {
            let message = err.to_string();
            match err {
                LeaseError::InvalidFormat {
                    database_key,
                    source: DecodeError::NotJson { .. },
                } => assert_eq!(database_key, "db"),
                other => panic!("expected InvalidFormat, got {other:?}"),
            }
            assert!(message.contains("not valid JSON"), "{message}");
        }
        assert_eq!(fx.raw("db").unwrap(), before);
    }

    pub fn a_record_naming_another_key_is_invalid_format(fx: &Fixture) {
        let lease = WriterLease {
            database_key: "other".into(),
            holder_id: "writer-a".into(),
            term: 1,
            generation: 1,
            acquired_at_ms: START_MS,
            expires_at_ms: START_MS + TTL_MS,
            released: false,
        };
        fx.put_raw("db", &lease.encode());
        match fx.manager().try_acquire("db", "writer-b", TTL).unwrap_err() {
            LeaseError::InvalidFormat {
                source: DecodeError::InvalidValue { field, .. },
                ..
            } => assert_eq!(field, "database_key"),
            other => panic!("expected InvalidFormat, got {other:?}"),
        }
    }

    pub fn a_record_from_a_newer_format_is_refused_not_guessed(fx: &Fixture) {
        let future = br#"{"format":9,"database_key":"db","holder_id":"x","term":1,
            "generation":1,"acquired_at_ms":0,"expires_at_ms":0}"#;
        fx.put_raw("db", future);
        match fx.manager().try_acquire("db", "writer-a", TTL).unwrap_err() {
            LeaseError::InvalidFormat {
                source: DecodeError::UnsupportedVersion { found: 9, .. },
                ..
            } => {}
            other => panic!("expected InvalidFormat, got {other:?}"),
        }
    }

    pub fn invalid_requests_are_refused_before_the_backend_is_touched(fx: &Fixture) {
        let m = fx.manager();
        let bad_key = m.try_acquire("has space", "writer-a", TTL).unwrap_err();
        assert!(
            matches!(bad_key, LeaseError::InvalidKey { .. }),
            "{bad_key:?}"
        );
        let empty_key = m.current("").unwrap_err();
        assert!(
            matches!(empty_key, LeaseError::InvalidKey { .. }),
            "{empty_key:?}"
        );
        let bad_holder = m.try_acquire("db", "", TTL).unwrap_err();
        assert!(
            matches!(bad_holder, LeaseError::InvalidHolderId { .. }),
            "{bad_holder:?}"
        );
        let zero_ttl = m.try_acquire("db", "writer-a", Duration::ZERO).unwrap_err();
        assert!(
            matches!(zero_ttl, LeaseError::InvalidTtl { .. }),
            "{zero_ttl:?}"
        );
        assert_eq!(fx.raw("db"), None);
    }

    pub fn keys_are_independent(fx: &Fixture) {
        let m = fx.manager();
        let one = m.try_acquire("db-1", "writer-a", TTL).unwrap();
        let two = m.try_acquire("db/lane/2", "writer-b", TTL).unwrap();
        assert_eq!(one.generation, 1);
        assert_eq!(two.generation, 1);
        assert_eq!(m.current("db-1").unwrap(), Some(one));
        assert_eq!(m.current("db/lane/2").unwrap(), Some(two));
    }

    pub fn the_backend_refuses_put_if_absent_on_a_key_that_holds_a_value(fx: &Fixture) {
        let backend = fx.backend();
        let CasOutcome::Applied(version) = backend.put_if_absent("k", b"one").unwrap() else {
            panic!("the first put_if_absent must apply");
        };
        assert_eq!(
            backend.put_if_absent("k", b"two").unwrap(),
            CasOutcome::Conflict
        );
        let stored = fx.raw("k").unwrap();
        assert_eq!(
            (stored.value.as_slice(), stored.version),
            (&b"one"[..], version)
        );
    }

    pub fn the_backend_refuses_writes_and_deletes_at_a_stale_version(fx: &Fixture) {
        let backend = fx.backend();
        let CasOutcome::Applied(first) = backend.put_if_absent("k", b"one").unwrap() else {
            panic!("put_if_absent must apply");
        };
        let CasOutcome::Applied(second) = backend.put_if_version("k", b"two", first).unwrap()
        else {
            panic!("put_if_version at the current version must apply");
        };
        assert_ne!(first, second);
        assert_eq!(
            backend.put_if_version("k", b"three", first).unwrap(),
            CasOutcome::Conflict
        );
        assert_eq!(
            backend.delete_if_version("k", first).unwrap(),
            CasOutcome::Conflict
        );
        assert_eq!(fx.raw("k").unwrap().value, b"two");
        assert_eq!(
            backend.delete_if_version("k", second).unwrap(),
            CasOutcome::Applied(())
        );
        assert_eq!(fx.raw("k"), None);
        assert_eq!(
            backend.put_if_version("k", b"four", second).unwrap(),
            CasOutcome::Conflict,
            "a deleted key has no version to match"
        );
        assert_eq!(fx.raw("k"), None);
    }

    pub fn the_backend_never_repeats_a_version_after_a_delete(fx: &Fixture) {
        let backend = fx.backend();
        let mut seen = Vec::new();
        for round in 0..3 {
            let CasOutcome::Applied(version) = backend.put_if_absent("k", b"v").unwrap() else {
                panic!("put_if_absent on an empty key must apply (round {round})");
            };
            assert!(!seen.contains(&version), "version {version} repeated");
            seen.push(version);
            assert_eq!(
                backend.delete_if_version("k", version).unwrap(),
                CasOutcome::Applied(())
            );
        }
        // An old version must not match the key's new incarnation (ABA).
        let CasOutcome::Applied(current) = backend.put_if_absent("k", b"new").unwrap() else {
            panic!("put_if_absent after the deletes must apply");
        };
        assert!(!seen.contains(&current), "version {current} repeated");
        for old in seen {
            assert_eq!(
                backend.put_if_version("k", b"x", old).unwrap(),
                CasOutcome::Conflict
            );
        }
    }

    pub fn racing_threads_leave_exactly_one_winner_per_round(fx: &Fixture) {
        const CONTENDERS: usize = 6;
        const ROUNDS: usize = 8;
        for round in 0..ROUNDS {
            let key = format!("race-{round}");
            let barrier = Arc::new(Barrier::new(CONTENDERS));
            let handles: Vec<_> = (0..CONTENDERS)
                .map(|contender| {
                    let manager = fx.manager();
                    let barrier = Arc::clone(&barrier);
                    let key = key.clone();
                    std::thread::spawn(move || {
                        barrier.wait();
                        let holder = format!("writer-{contender}");
                        (holder.clone(), manager.try_acquire(&key, &holder, TTL))
                    })
                })
                .collect();
            let mut winners = Vec::new();
            for handle in handles {
                let (holder, result) = handle.join().unwrap();
                match result {
                    Ok(lease) => winners.push((holder, lease)),
                    Err(LeaseError::Held { .. } | LeaseError::LostRace { .. }) => {}
                    Err(other) => panic!("unexpected error: {other:?}"),
                }
            }
            assert_eq!(winners.len(), 1, "round {round}: winners {winners:?}");
            let published = fx.manager().current(&key).unwrap();
            assert_eq!(published.as_ref(), Some(&winners[0].1));
        }
    }
}

/// Instantiates every case as a test over the backend that `$fixture` builds.
macro_rules! contract_suite {
    ($fixture:path) => {
        contract_suite!(@cases $fixture;
            the_first_acquire_takes_generation_one_at_the_base_term,
            only_one_holder_at_a_time_the_other_is_told_who_holds_it_and_until_when,
            a_lease_is_held_until_the_millisecond_it_expires,
            an_expired_lease_goes_to_a_new_holder_with_the_next_generation,
            the_same_holder_acquiring_again_keeps_its_generation_and_extends_expiry,
            release_lets_another_holder_in_at_once_with_a_higher_generation,
            the_same_holder_acquiring_after_its_release_starts_a_new_generation,
            refresh_extends_expiry_and_keeps_the_token,
            refresh_by_a_holder_whose_lease_was_taken_over_is_stale,
            release_by_a_holder_whose_lease_was_taken_over_is_stale_and_changes_nothing,
            releasing_twice_is_stale_the_second_time,
            refresh_of_a_lease_whose_record_vanished_is_stale_with_nothing_found,
            acquire_stamps_the_term_into_the_fencing_token,
            a_contender_behind_the_published_term_is_fenced_even_on_an_expired_lease,
            a_contender_behind_the_published_term_is_fenced_even_on_a_released_lease,
            the_term_fence_is_checked_before_the_holder_so_a_live_lease_says_fenced,
            a_contender_at_the_same_or_a_higher_term_takes_an_expired_lease_with_the_next_generation,
            a_higher_term_does_not_poach_a_live_lease,
            refresh_for_term_fails_closed_once_the_term_moves_past_the_holder,
            refresh_for_term_extends_the_lease_while_the_term_holds,
            a_holder_deposed_by_a_higher_term_is_fenced_on_refresh_and_release,
            losing_the_compare_and_swap_on_acquire_is_lost_race_naming_the_winner,
            losing_the_compare_and_swap_on_a_takeover_is_lost_race,
            losing_the_compare_and_swap_on_refresh_is_stale,
            a_legacy_record_without_format_or_term_reads_at_the_base_term_and_can_be_taken_over,
            a_garbage_record_is_invalid_format_and_is_never_overwritten,
            a_record_naming_another_key_is_invalid_format,
            a_record_from_a_newer_format_is_refused_not_guessed,
            invalid_requests_are_refused_before_the_backend_is_touched,
            keys_are_independent,
            the_backend_refuses_put_if_absent_on_a_key_that_holds_a_value,
            the_backend_refuses_writes_and_deletes_at_a_stale_version,
            the_backend_never_repeats_a_version_after_a_delete,
            racing_threads_leave_exactly_one_winner_per_round,
        );
    };
    (@cases $fixture:path; $($case:ident,)*) => {
        $(
            #[test]
            fn $case() {
                let fixture = $fixture();
                super::cases::$case(&fixture);
            }
        )*
    };
}

mod memory {
    use super::*;
    use tidelog::lease::MemoryBackend;

    fn fixture() -> Fixture {
        let store = MemoryBackend::new();
        Fixture::new(move || Arc::new(store.clone()) as Arc<dyn LeaseBackend>, ())
    }

    contract_suite!(fixture);
}

mod file {
    use super::*;
    use tidelog::lease::FileBackend;

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("leases");
        Fixture::new(
            move || Arc::new(FileBackend::open(&path).expect("open")) as Arc<dyn LeaseBackend>,
            dir,
        )
    }

    contract_suite!(fixture);
}

#[cfg(feature = "etcd")]
mod etcd {
    use super::*;
    use crate::common::etcd_server::{self, EtcdServer};
    use tidelog::lease::{BackendError, EtcdBackend};

    fn fixture() -> Fixture {
        let server = EtcdServer::start();
        let endpoint = server.endpoint();
        Fixture::new(
            move || {
                Arc::new(EtcdBackend::new(&endpoint).expect("etcd backend"))
                    as Arc<dyn LeaseBackend>
            },
            server,
        )
    }

    contract_suite!(fixture);

    #[test]
    fn an_unreachable_etcd_is_a_transport_error_naming_the_endpoint() {
        // Bind and drop a listener to find a loopback port with nothing behind it.
        let port = etcd_server::free_port();
        let endpoint = format!("http://127.0.0.1:{port}");
        let backend = EtcdBackend::new(&endpoint)
            .unwrap()
            .with_timeout(Duration::from_secs(2));
        let err = LeaseManager::new(Arc::new(backend))
            .try_acquire("db", "writer-a", TTL)
            .unwrap_err();
        assert!(
            matches!(err, LeaseError::Backend(BackendError::Transport { .. })),
            "{err:?}"
        );
        assert!(err.to_string().contains(&endpoint), "{err}");
    }
}

/// The same contract over an etcd with TLS (a CA the test makes), client certificates
/// required, and user/password authentication on; and what it refuses.
#[cfg(feature = "etcd")]
mod etcd_secure {
    use super::*;
    use crate::common::etcd_server::{EtcdServer, PASSWORD, USER};
    use tidelog::lease::{BackendError, EtcdBackend};

    fn client(server: &EtcdServer) -> EtcdBackend {
        let pki = server.pki();
        EtcdBackend::new(&server.endpoint())
            .unwrap()
            .with_ca_pem(pki.ca_pem.as_bytes())
            .unwrap()
            .with_client_cert_pem(
                pki.client_cert_pem.as_bytes(),
                pki.client_key_pem.as_bytes(),
            )
            .unwrap()
    }

    fn fixture() -> Fixture {
        let server = EtcdServer::start_secure();
        let backend = client(&server).with_user(USER, PASSWORD);
        Fixture::new(
            move || Arc::new(backend.clone()) as Arc<dyn LeaseBackend>,
            server,
        )
    }

    contract_suite!(fixture);

    #[test]
    fn a_secure_etcd_refuses_a_wrong_password_with_a_clear_error() {
        let server = EtcdServer::start_secure();
        let backend = client(&server).with_user(USER, "not the password");
        let err = LeaseManager::new(Arc::new(backend))
            .try_acquire("db", "writer-a", TTL)
            .unwrap_err();
        assert!(
            matches!(&err, LeaseError::Backend(BackendError::Unauthorized { user, .. }) if user == USER),
            "{err:?}"
        );
        let message = err.to_string();
        assert!(
            message.contains("refused the credentials") && message.contains("password"),
            "{message}"
        );
    }

    #[test]
    fn a_secure_etcd_without_a_user_is_refused_and_nothing_is_written() {
        let server = EtcdServer::start_secure();
        let anonymous = client(&server);
        assert!(
            anonymous.read("db").is_err(),
            "auth is on: no token, no read"
        );
        let authorized = client(&server).with_user(USER, PASSWORD);
        assert!(authorized.read("db").unwrap().is_none());
    }

    #[test]
    fn a_server_certificate_from_an_untrusted_ca_is_refused_with_a_clear_error() {
        let server = EtcdServer::start_secure();
        let pki = server.pki();
        let backend = EtcdBackend::new(&server.endpoint())
            .unwrap()
            .with_ca_pem(pki.rogue_ca_pem.as_bytes())
            .unwrap()
            .with_client_cert_pem(
                pki.client_cert_pem.as_bytes(),
                pki.client_key_pem.as_bytes(),
            )
            .unwrap()
            .with_user(USER, PASSWORD);
        let err = LeaseManager::new(Arc::new(backend))
            .try_acquire("db", "writer-a", TTL)
            .unwrap_err();
        assert!(
            matches!(&err, LeaseError::Backend(BackendError::Tls { .. })),
            "{err:?}"
        );
        let message = err.to_string();
        assert!(message.contains("certificate"), "{message}");
        assert!(message.contains(&server.endpoint()), "{message}");
    }

    #[test]
    fn a_client_without_a_certificate_is_refused_by_a_mutual_tls_etcd() {
        let server = EtcdServer::start_secure();
        let backend = EtcdBackend::new(&server.endpoint())
            .unwrap()
            .with_ca_pem(server.pki().ca_pem.as_bytes())
            .unwrap()
            .with_user(USER, PASSWORD);
        let err = backend.read("db").unwrap_err();
        assert!(
            matches!(
                err,
                BackendError::Tls { .. } | BackendError::Transport { .. }
            ),
            "{err:?}"
        );
    }
}
