//! A store without compare-and-swap cannot be used for leases.
//!
//! What could go wrong: a "last writer wins" store plugged into the lease lets two
//! writers both believe they hold it. `LeaseManager::new` accepts only a `LeaseBackend`,
//! whose contract has no unconditional write; the `compile_fail` example on
//! `LeaseManager` shows such a store does not compile. Rustdoc on stable does not check
//! which error a `compile_fail` example fails with, so this test checks the property
//! itself at run time: whether a type implements `LeaseBackend`, found by method
//! resolution (the trait-bound impl wins when it applies, the fallback otherwise).

use std::marker::PhantomData;

use tidelog::lease::{FileBackend, LeaseBackend, MemoryBackend};

/// A store that can only overwrite.
#[derive(Debug)]
#[allow(dead_code)]
struct PlainStore;

#[allow(dead_code)]
impl PlainStore {
    fn get(&self, _key: &str) -> Option<Vec<u8>> {
        None
    }
    fn put(&self, _key: &str, _value: &[u8]) {}
}

struct Probe<T>(PhantomData<T>);

trait IsLeaseBackend {
    fn is_lease_backend(&self) -> bool {
        true
    }
}
impl<T: LeaseBackend> IsLeaseBackend for Probe<T> {}

trait NotLeaseBackend {
    fn is_lease_backend(&self) -> bool {
        false
    }
}
impl<T> NotLeaseBackend for &Probe<T> {}

macro_rules! is_lease_backend {
    ($t:ty) => {
        (&Probe::<$t>(PhantomData)).is_lease_backend()
    };
}

#[test]
fn a_store_without_compare_and_swap_is_not_a_lease_backend() {
    assert!(!is_lease_backend!(PlainStore));
}

#[test]
fn the_shipped_backends_are_lease_backends() {
    assert!(is_lease_backend!(MemoryBackend));
    assert!(is_lease_backend!(FileBackend));
    #[cfg(feature = "etcd")]
    assert!(is_lease_backend!(tidelog::lease::EtcdBackend));
}
