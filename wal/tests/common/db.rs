//! The databases the integration tests open: a log on real files with its extent record
//! beside it, and a log on a simulated disk (the power-loss sweeps).

use super::{append_unit, fill, opts};
use std::path::{Path, PathBuf};
use tidelog_wal::io::RealStorage;
use tidelog_wal::{
    verify_with_extent, GlobalSeq, OpenError, Recovered, RecoveryMode, SimDisk, Storage,
    VerifyReport, Wal,
};

/// A log on real files in `<tmp>/wal` with its extent record in `<tmp>/EXTENT`, outside
/// the log directory; both go when the value is dropped.
pub struct Db {
    root: tempfile::TempDir,
    /// The log directory.
    pub wal: PathBuf,
    /// The extent record.
    pub extent: PathBuf,
}

impl Db {
    /// A database with no files yet.
    pub fn new() -> Db {
        let root = tempfile::tempdir().unwrap();
        Db {
            wal: root.path().join("wal"),
            extent: root.path().join("EXTENT"),
            root,
        }
    }

    /// The temporary directory holding the log directory and the extent record.
    pub fn dir(&self) -> &Path {
        self.root.path()
    }

    /// Opens the log against its extent record, recovering in `mode`.
    pub fn open(&self, mode: RecoveryMode) -> Result<(Wal, Recovered), OpenError> {
        Wal::open_with_extent(RealStorage, &self.wal, opts(mode), &self.extent)
    }

    /// Appends `units` units (a sync every four), syncs and records the extent as a close
    /// does; returns the last sequence, durable.
    pub fn write_and_close(&self, units: u64) -> GlobalSeq {
        let (mut wal, _) = self.open(RecoveryMode::AbsoluteConsistency).unwrap();
        fill(&mut wal, units, 4);
        wal.sync().unwrap();
        wal.record_extent().unwrap();
        wal.last_durable()
    }

    /// Every file of the log directory (sorted), then the extent record: what a refused
    /// open must leave as it was.
    pub fn image(&self) -> Vec<(PathBuf, Vec<u8>)> {
        let mut files = super::snapshot(&self.wal);
        files.push((self.extent.clone(), std::fs::read(&self.extent).unwrap()));
        files
    }

    /// `verify` of the log against its extent record.
    pub fn verify(&self) -> VerifyReport {
        verify_with_extent(
            &RealStorage,
            &self.wal,
            &opts(RecoveryMode::AbsoluteConsistency),
            &self.extent,
        )
        .unwrap()
    }
}

/// Where the power-loss sweeps keep their log on the simulated disk.
pub const SIM_WAL: &str = "/db/wal";

/// Opens the log at [`SIM_WAL`] on `disk` (a clone shares its files), recovering in the
/// default mode.
pub fn open_sim(disk: SimDisk) -> Result<(Wal<SimDisk>, Recovered), OpenError> {
    Wal::open_with(
        disk,
        Path::new(SIM_WAL),
        opts(RecoveryMode::AbsoluteConsistency),
    )
}

/// What a power-loss workload did before it stopped.
#[derive(Debug, Default)]
pub struct Workload {
    /// The last sequence of each unit appended, in order.
    pub ends: Vec<u64>,
    /// The highest sequence the log said was durable.
    pub durable: GlobalSeq,
    /// Whether every unit went through (no operation failed).
    pub completed: bool,
}

/// The workload of the power-loss sweeps on an open log: `units` units of 1..=3 records,
/// a sync after every other unit, and `after_unit(wal, u, durable)` after unit `u` (and
/// its sync). Stops at the first failed operation (the simulated disk crashed) or when
/// `after_unit` returns false.
pub fn append_syncing_every_other<S: Storage>(
    wal: &mut Wal<S>,
    units: u64,
    mut after_unit: impl FnMut(&mut Wal<S>, u64, GlobalSeq) -> bool,
) -> Workload {
    let mut done = Workload::default();
    for u in 0..units {
        if append_unit(wal, 1 + u % 3).is_err() {
            return done;
        }
        done.ends.push(wal.last_written().0);
        done.durable = done.durable.max(wal.last_durable());
        if u % 2 == 1 {
            match wal.sync() {
                Ok(d) => done.durable = d,
                Err(_) => return done,
            }
        }
        if !after_unit(wal, u, done.durable) {
            return done;
        }
    }
    done.completed = true;
    done
}
