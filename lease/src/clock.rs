//! The wall clock that lease expiry is judged by, injectable so that expiry can be tested
//! without waiting.
//!
//! Expiry compares wall-clock milliseconds written by one process with the clock of
//! another, so every process sharing a lease must keep its clock synchronized (NTP) to
//! well within the TTL; see `docs/lease.md` for the margins the holder keeps.

/// The one wall-clock trait of tidelog (the watermarks stamp points with it too), its
/// system clock and its manual clock for tests. The system clock reads a clock set before
/// 1970 as 0: every lease then looks live, which fails closed (nobody can poach) rather
/// than open. Clones of a [`ManualClock`] share their time: hand one to a
/// [`LeaseManager`](super::LeaseManager) and keep the other to move time.
pub use tidelog_watermarks::{Clock, ManualClock, SystemClock};
