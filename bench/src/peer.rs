//! What every system under test offers the workloads, and the list of systems this build
//! has (each peer only with its cargo feature).

use crate::error::BenchError;
use crate::peers;
use std::path::Path;

/// One open log or database under test. Every append returns only once the record is
/// durable (synced to the disk); the workloads time exactly that.
pub trait Peer: Send + Sync {
    /// Appends one record to `lane` and returns once it is durable.
    ///
    /// # Errors
    /// The system's error, wrapped.
    fn append_durable(&self, lane: u32, record: &[u8]) -> Result<(), BenchError>;

    /// Appends `records` to `lane` with one sync for all of them; returns once all are
    /// durable.
    ///
    /// # Errors
    /// The system's error, wrapped.
    fn append_batch_durable(&self, lane: u32, records: &[Vec<u8>]) -> Result<(), BenchError>;

    /// How many records the system holds (after a reopen: how many it recovered).
    ///
    /// # Errors
    /// The system's error, wrapped.
    fn count(&self) -> Result<u64, BenchError>;

    /// Returns once one-off work the system started at open in the background is done,
    /// so that the timed loop measures the steady state. Most systems have none.
    ///
    /// # Errors
    /// The system's error, wrapped.
    fn settle(&self) -> Result<(), BenchError> {
        Ok(())
    }

    /// Flushes and closes; the handle must not be used afterwards.
    ///
    /// # Errors
    /// The system's error, wrapped.
    fn close(&self) -> Result<(), BenchError>;
}

/// Opens (creating, or recovering what is there) a system's log in a directory.
pub type OpenFn = fn(&Path) -> Result<Box<dyn Peer>, BenchError>;

/// One system the harness can run.
#[derive(Clone, Copy)]
pub struct System {
    /// Its name in tables and on the command line.
    pub name: &'static str,
    /// Opens or recovers it in a directory.
    pub open: OpenFn,
    /// Whether this is the physical `pwrite`+`fdatasync` baseline (run only where a
    /// baseline applies: no concurrency, no lanes).
    pub baseline: bool,
}

impl std::fmt::Debug for System {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

/// Every system this build has: tidelog first (the ratios' reference), the raw baseline,
/// the naive group commit (a baseline that runs every workload), then the peers whose
/// features are on.
#[must_use]
pub fn built_systems() -> Vec<System> {
    // `mut` is unused only in a build without peers.
    #[allow(unused_mut)]
    let mut systems = vec![
        System {
            name: "tidelog",
            open: peers::tidelog::open,
            baseline: false,
        },
        System {
            name: "baseline",
            open: peers::baseline::open,
            baseline: true,
        },
        System {
            name: "group-commit",
            open: peers::group_commit::open,
            baseline: false,
        },
    ];
    #[cfg(feature = "okaywal")]
    systems.push(System {
        name: "okaywal",
        open: peers::okaywal::open,
        baseline: false,
    });
    #[cfg(feature = "raft-engine")]
    systems.push(System {
        name: "raft-engine",
        open: peers::raft_engine::open,
        baseline: false,
    });
    #[cfg(feature = "sqlite")]
    systems.push(System {
        name: "sqlite",
        open: peers::sqlite::open,
        baseline: false,
    });
    #[cfg(feature = "fjall")]
    systems.push(System {
        name: "fjall",
        open: peers::fjall::open,
        baseline: false,
    });
    #[cfg(feature = "rocksdb")]
    systems.push(System {
        name: "rocksdb",
        open: peers::rocksdb::open,
        baseline: false,
    });
    systems
}

/// The systems named in `names` (comma-separated), or all built ones for `None`.
///
/// # Errors
/// [`BenchError::UnknownSystem`] for a name this build does not have.
pub fn select(names: Option<&str>) -> Result<Vec<System>, BenchError> {
    let built = built_systems();
    let Some(names) = names else {
        return Ok(built);
    };
    names
        .split(',')
        .map(|name| {
            built
                .iter()
                .find(|s| s.name == name.trim())
                .copied()
                .ok_or_else(|| BenchError::UnknownSystem {
                    name: name.to_owned(),
                    built: built.iter().map(|s| s.name).collect::<Vec<_>>().join(", "),
                })
        })
        .collect()
}

/// A key that sorts records of a lane in append order, for the key-value peers:
/// lane (4 bytes) then sequence (8 bytes), big-endian.
#[cfg(any(feature = "fjall", feature = "rocksdb", test))]
#[must_use]
pub fn lane_key(lane: u32, seq: u64) -> [u8; 12] {
    let mut key = [0u8; 12];
    key[..4].copy_from_slice(&lane.to_be_bytes());
    key[4..].copy_from_slice(&seq.to_be_bytes());
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lane_keys_sort_by_lane_then_sequence() {
        assert!(lane_key(1, 2) < lane_key(1, 10));
        assert!(lane_key(1, u64::MAX) < lane_key(2, 0));
    }

    #[test]
    fn an_unknown_system_name_is_refused_with_the_built_list() {
        let err = select(Some("tidelog,nosuch")).unwrap_err();
        assert!(err.to_string().contains("nosuch"));
        assert!(err.to_string().contains("tidelog, baseline"));
        assert_eq!(select(Some("baseline")).unwrap()[0].name, "baseline");
        assert_eq!(
            select(Some("group-commit")).unwrap()[0].name,
            "group-commit"
        );
    }
}
