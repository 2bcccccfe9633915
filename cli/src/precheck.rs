//! What a writing command can learn without opening the database for writing, so that a
//! command with nothing to do changes nothing: taking the writer lease rewrites the lease
//! record (a new generation) and the published watermarks, and a refused command should
//! leave the directory byte for byte as it was.
//!
//! Every answer here is read-only and conservative: when it is not sure (a writer may be
//! live, the log does not read cleanly, a truncated log whose checkpoint cannot say where a
//! lane stands), it says so and the command opens the database the ordinary way, whose
//! answer is final.

use crate::database::wal_dir;
use std::path::Path;
use tidelog::wal::scan::{LogSnapshot, ScanOptions};
use tidelog::wal::{Verdict, VerifyReport, WalOptions};
use tidelog::{LaneId, LaneSeq};

/// Whether a writer may hold the database now: its lease record is unreleased and
/// unexpired, or cannot be read. A lease never taken (no lease folder) is not held.
pub fn writer_may_be_live(dir: &Path) -> bool {
    let lease_dir = dir.join("lease");
    if !lease_dir.is_dir() {
        return false;
    }
    let Ok(backend) = tidelog::lease::FileBackend::open(lease_dir) else {
        return true;
    };
    let manager = tidelog::lease::LeaseManager::new(std::sync::Arc::new(backend));
    match manager.current(&tidelog::LeaseOptions::default().key) {
        Ok(None) => false,
        Ok(Some(lease)) => !lease.released && lease.is_live(manager.now_ms()),
        Err(_) => true,
    }
}

/// The read-only check of a log that recovery would find nothing to repair in: no writer
/// may be live and `verify` finds nothing at all. `None` when that is not certain.
/// `progress` is told the bytes checked so far and in all after each segment.
pub fn clean_log(dir: &Path, progress: &mut dyn FnMut(u64, u64)) -> Option<VerifyReport> {
    if writer_may_be_live(dir) {
        return None;
    }
    // Checked against the extent record: a log shorter than it was is not clean.
    let report = tidelog::wal::verify_with_extent_reporting(
        &tidelog::wal::io::RealStorage,
        &wal_dir(dir),
        &WalOptions::default(),
        &dir.join(tidelog::layout::EXTENT_FILE),
        progress,
    )
    .ok()?;
    (report.verdict == Verdict::Clean && report.findings.is_empty()).then_some(report)
}

/// The lane sequence of the last record of `lane` in the log (0 for a lane that has none
/// in a log never truncated), read without opening it for writing. `None` when not
/// certain: a writer may be live (it may append meanwhile), the log does not scan cleanly,
/// or the log was truncated, holds no record of the lane and no checkpoint that verifies
/// reaches up to where it starts. A lane none of whose records the truncated log still holds
/// takes its head from the checkpoint recovery would start from.
pub fn lane_head(dir: &Path, lane: LaneId) -> Option<LaneSeq> {
    if writer_may_be_live(dir) {
        return None;
    }
    // Only a log the extent record has nothing against: a log shorter than it was is
    // refused by the open, and after an accepted loss lanes continue above their last
    // record, which only the engine knows.
    let extent = dir.join(tidelog::layout::EXTENT_FILE);
    let recorded = tidelog::wal::extent::read(&tidelog::wal::io::RealStorage, &extent).ok()?;
    if recorded
        .as_ref()
        .is_some_and(|e| !e.accepted_losses.is_empty())
    {
        return None;
    }
    let snapshot = LogSnapshot::take(&wal_dir(dir)).ok()?;
    let mut head = None;
    let mut last = tidelog::GlobalSeq(0);
    for record in snapshot.records(tidelog::GlobalSeq(1), ScanOptions::default()) {
        let record = record.ok()?;
        last = record.global_seq;
        if record.lane == lane {
            head = Some(record.lane_seq);
        }
    }
    let loss = tidelog::wal::extent::check_snapshot(
        &tidelog::wal::io::RealStorage,
        &extent,
        recorded.as_ref(),
        snapshot.segments(),
        last,
    )
    .ok()?;
    if loss.is_some() {
        return None;
    }
    // A log whose first segment starts at sequence 1 (or that holds none) has every record
    // it ever had: a lane with none there has none at all.
    let first = snapshot
        .segments()
        .iter()
        .find_map(|segment| segment.header.as_ref().map(|h| h.first_seq));
    if let Some(head) = head {
        return Some(head);
    }
    if first.is_none_or(|seq| seq == tidelog::GlobalSeq(1)) {
        return Some(LaneSeq(0));
    }
    // Truncated below a checkpoint: the checkpoint recovery starts from (the newest that
    // verifies) holds every lane's head at its point, and the log holds every record after
    // it. A lane it does not name had no record by then.
    let start = tidelog::checkpoint::list_checkpoints(dir)
        .ok()?
        .into_iter()
        .rev()
        .find(|listed| !listed.is_damaged())?;
    let covered = start.info.point.global_sequence;
    if covered > last.0 || first.is_some_and(|seq| seq.0 > covered.saturating_add(1)) {
        return None;
    }
    Some(
        start
            .lane_heads
            .iter()
            .find(|h| h.lane == lane)
            .map_or(LaneSeq(0), |h| h.lane_seq),
    )
}
