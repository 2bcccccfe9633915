//! The in-memory lane index: for each lane, the global sequence of each of its records,
//! in lane order. Rebuilt by scanning the log on open; extended by the writer after each
//! group; read by `read`, `scan` and lane subscriptions without touching the writer.

use parking_lot::RwLock;
use std::collections::HashMap;
use tidelog_watermarks::{GlobalSeq, LaneId, LaneSeq};

/// Lane → global sequences of its records (index `lane_seq - 1`).
#[derive(Debug, Default)]
pub(crate) struct LaneIndex {
    lanes: RwLock<HashMap<LaneId, Vec<GlobalSeq>>>,
}

impl LaneIndex {
    /// Adds records, which must continue each lane's sequence in order.
    pub(crate) fn extend(&self, records: impl IntoIterator<Item = (LaneId, LaneSeq, GlobalSeq)>) {
        let mut lanes = self.lanes.write();
        for (lane, lane_seq, seq) in records {
            let entries = lanes.entry(lane).or_default();
            debug_assert_eq!(
                entries.len() as u64 + 1,
                lane_seq.get(),
                "lane {lane} out of order"
            );
            entries.push(seq);
        }
    }

    /// The global sequence of `lane`'s record `lane_seq`, if written.
    pub(crate) fn lookup(&self, lane: LaneId, lane_seq: LaneSeq) -> Option<GlobalSeq> {
        let index = usize::try_from(lane_seq.get().checked_sub(1)?).ok()?;
        self.lanes.read().get(&lane)?.get(index).copied()
    }

    /// The global sequences of `lane`'s records `from..=to` that exist.
    pub(crate) fn range(&self, lane: LaneId, from: LaneSeq, to: LaneSeq) -> Vec<GlobalSeq> {
        let lanes = self.lanes.read();
        let Some(entries) = lanes.get(&lane) else {
            return Vec::new();
        };
        let start = usize::try_from(from.get().max(1) - 1).unwrap_or(usize::MAX);
        let end = usize::try_from(to.get())
            .unwrap_or(usize::MAX)
            .min(entries.len());
        entries
            .get(start..end)
            .map(<[GlobalSeq]>::to_vec)
            .unwrap_or_default()
    }

    /// The last lane sequence of every lane.
    pub(crate) fn heads(&self) -> HashMap<LaneId, LaneSeq> {
        self.lanes
            .read()
            .iter()
            .map(|(lane, entries)| (*lane, LaneSeq(entries.len() as u64)))
            .collect()
    }
}
