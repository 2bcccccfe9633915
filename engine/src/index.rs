//! The in-memory lane index: for each lane, the global sequence of each of its records,
//! in lane order. Rebuilt by scanning the log on open; extended by the writer after each
//! group; read by `read`, `scan` and lane subscriptions without touching the writer.
//!
//! After the head of the log was truncated away, a lane's index starts at the first of
//! its records the log still held at open (`first`); the lane's head before that comes
//! from the checkpoint recovery started from (`base`), so lane sequences continue. A
//! truncation while the engine runs drops the entries of the records it removed
//! ([`LaneIndex::forget_below`]), so the index holds one entry per record still in the
//! log, not per record ever appended.

use parking_lot::RwLock;
use std::collections::HashMap;
use tidelog_watermarks::{GlobalSeq, HlcPoint, LaneId, LaneSeq};

#[derive(Debug)]
struct Lane {
    /// Lane sequence of `seqs[0]`.
    first: u64,
    /// The point of record `first - 1` (origin when `first == 1`).
    base: HlcPoint,
    seqs: Vec<GlobalSeq>,
    /// Lane sequences with no record (skipped as corrupt by recovery), ascending. Their
    /// slots in `seqs` repeat the previous global sequence so `seqs` stays sorted.
    holes: Vec<u64>,
}

impl Lane {
    fn is_hole(&self, lane_seq: u64) -> bool {
        self.holes.binary_search(&lane_seq).is_ok()
    }

    /// Adds the record `lane_seq` at global sequence `seq`: ignored at or below the head,
    /// after a gap the missing lane sequences become holes.
    fn push(&mut self, lane_seq: LaneSeq, seq: GlobalSeq) {
        let mut next = self.first + self.seqs.len() as u64;
        if lane_seq.get() < next {
            return;
        }
        while next < lane_seq.get() {
            let filler = self
                .seqs
                .last()
                .copied()
                .unwrap_or(GlobalSeq(self.base.global_sequence));
            self.holes.push(next);
            self.seqs.push(filler);
            next += 1;
        }
        self.seqs.push(seq);
    }
}

/// Lane → global sequences of its records.
#[derive(Debug, Default)]
pub(crate) struct LaneIndex {
    lanes: RwLock<HashMap<LaneId, Lane>>,
}

impl LaneIndex {
    /// Adds records in log order. A lane's first record may have any lane sequence (its
    /// earlier records were truncated away); a later gap in a lane (records recovery
    /// skipped as corrupt) is kept as holes that read as absent, so lane sequences are
    /// never handed out twice. A record at or below a lane's head is ignored.
    pub(crate) fn extend(&self, records: impl IntoIterator<Item = (LaneId, LaneSeq, GlobalSeq)>) {
        let mut lanes = self.lanes.write();
        let mut records = records.into_iter().peekable();
        while let Some((lane, lane_seq, seq)) = records.next() {
            // A run of records on one lane (a batch's, usually) finds its lane once.
            let entries = lanes.entry(lane).or_insert_with(|| Lane {
                first: lane_seq.get(),
                base: HlcPoint::ORIGIN,
                seqs: Vec::new(),
                holes: Vec::new(),
            });
            entries.push(lane_seq, seq);
            while let Some((_, lane_seq, seq)) = records.next_if(|(next, _, _)| *next == lane) {
                entries.push(lane_seq, seq);
            }
        }
    }

    /// Each lane's last record below `start`, as (lane, global sequence): the records
    /// whose points become the lanes' bases when [`forget_below`](Self::forget_below)
    /// drops the entries below `start`.
    pub(crate) fn last_below(&self, start: GlobalSeq) -> Vec<(LaneId, GlobalSeq)> {
        self.lanes
            .read()
            .iter()
            .filter_map(|(lane, l)| {
                let count = l.seqs.partition_point(|s| *s < start);
                let last = count.checked_sub(1).and_then(|i| l.seqs.get(i))?;
                Some((*lane, *last))
            })
            .collect()
    }

    /// Drops the entries of every record below `start`, the log's first sequence once a
    /// truncation removed the segments before it. Lane sequences continue (each lane's
    /// `first` moves up by what it drops); `bases` holds the point of each lane's last
    /// dropped record (read before its segment went, see [`last_below`](Self::last_below)),
    /// which becomes the lane's base. Returns the number of entries dropped.
    pub(crate) fn forget_below(
        &self,
        start: GlobalSeq,
        bases: &HashMap<LaneId, HlcPoint>,
    ) -> usize {
        let mut lanes = self.lanes.write();
        let mut dropped = 0;
        for (lane, l) in lanes.iter_mut() {
            let count = l.seqs.partition_point(|s| *s < start);
            let Some(last) = count.checked_sub(1).and_then(|i| l.seqs.get(i)).copied() else {
                continue;
            };
            l.base = bases.get(lane).copied().unwrap_or(HlcPoint {
                wall_ms: l.base.wall_ms,
                global_sequence: last.0,
            });
            l.seqs.drain(..count);
            l.first += count as u64;
            let first = l.first;
            l.holes.retain(|h| *h >= first);
            if l.seqs.capacity() > 2 * l.seqs.len() + 1024 {
                l.seqs.shrink_to_fit();
            }
            dropped += count;
        }
        dropped
    }

    /// Entries the index holds: one per record of a lane still in the log (and per hole).
    pub(crate) fn entries(&self) -> usize {
        self.lanes.read().values().map(|l| l.seqs.len()).sum()
    }

    /// Records where a lane stood before the first record the index holds: `head` at
    /// `point`. Lanes the index already holds records of keep what they have.
    pub(crate) fn seed(&self, lane: LaneId, head: LaneSeq, point: HlcPoint) {
        let mut lanes = self.lanes.write();
        let entry = lanes.entry(lane).or_insert_with(|| Lane {
            first: head.get() + 1,
            base: point,
            seqs: Vec::new(),
            holes: Vec::new(),
        });
        if entry.first == head.get() + 1 {
            entry.base = point;
        }
    }

    /// The first lane sequence of `lane` whose record has a global sequence of at least
    /// `seq` (one past the head if none has).
    pub(crate) fn first_from(&self, lane: LaneId, seq: GlobalSeq) -> Option<LaneSeq> {
        let lanes = self.lanes.read();
        let l = lanes.get(&lane)?;
        Some(LaneSeq(
            l.first + l.seqs.partition_point(|s| *s < seq) as u64,
        ))
    }

    /// The global sequence of `lane`'s record `lane_seq`, if written and indexed.
    pub(crate) fn lookup(&self, lane: LaneId, lane_seq: LaneSeq) -> Option<GlobalSeq> {
        let lanes = self.lanes.read();
        let entries = lanes.get(&lane)?;
        if entries.is_hole(lane_seq.get()) {
            return None;
        }
        let index = usize::try_from(lane_seq.get().checked_sub(entries.first)?).ok()?;
        entries.seqs.get(index).copied()
    }

    /// The global sequences of `lane`'s records `from..=to` that are indexed.
    pub(crate) fn range(&self, lane: LaneId, from: LaneSeq, to: LaneSeq) -> Vec<GlobalSeq> {
        let lanes = self.lanes.read();
        let Some(entries) = lanes.get(&lane) else {
            return Vec::new();
        };
        let start = usize::try_from(from.get().saturating_sub(entries.first)).unwrap_or(usize::MAX);
        let end = usize::try_from(to.get().saturating_add(1).saturating_sub(entries.first))
            .unwrap_or(usize::MAX)
            .min(entries.seqs.len());
        let Some(slots) = entries.seqs.get(start..end) else {
            return Vec::new();
        };
        slots
            .iter()
            .zip(entries.first + start as u64..)
            .filter(|(_, lane_seq)| !entries.is_hole(*lane_seq))
            .map(|(seq, _)| *seq)
            .collect()
    }

    /// The last lane sequence of every lane.
    pub(crate) fn heads(&self) -> HashMap<LaneId, LaneSeq> {
        self.lanes
            .read()
            .iter()
            .map(|(lane, l)| (*lane, LaneSeq(l.first - 1 + l.seqs.len() as u64)))
            .collect()
    }

    /// Each lane's last lane sequence at global sequence `at`, with that record's global
    /// sequence (`None` when only the seeded base point is known, which is returned).
    /// Lanes with no record at or before `at` are left out. Exact for any `at` at or after
    /// the start of what the index holds.
    pub(crate) fn heads_at(
        &self,
        at: GlobalSeq,
    ) -> Vec<(LaneId, LaneSeq, Result<GlobalSeq, HlcPoint>)> {
        self.lanes
            .read()
            .iter()
            .filter_map(|(lane, l)| {
                let count = l.seqs.partition_point(|s| *s <= at);
                let head = l.first - 1 + count as u64;
                if head == 0 {
                    return None;
                }
                let last = match count.checked_sub(1).and_then(|i| l.seqs.get(i)) {
                    Some(seq) => Ok(*seq),
                    None => Err(l.base),
                };
                Some((*lane, LaneSeq(head), last))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lane_with_a_skipped_record_reads_it_as_absent_and_never_reuses_its_sequence() {
        let index = LaneIndex::default();
        index.extend([
            (LaneId(1), LaneSeq(1), GlobalSeq(1)),
            (LaneId(1), LaneSeq(3), GlobalSeq(4)),
            (LaneId(1), LaneSeq(3), GlobalSeq(5)),
        ]);
        assert_eq!(index.lookup(LaneId(1), LaneSeq(2)), None);
        assert_eq!(index.lookup(LaneId(1), LaneSeq(3)), Some(GlobalSeq(4)));
        assert_eq!(
            index.range(LaneId(1), LaneSeq(1), LaneSeq(3)),
            vec![GlobalSeq(1), GlobalSeq(4)]
        );
        assert_eq!(index.heads()[&LaneId(1)], LaneSeq(3));
        assert_eq!(index.first_from(LaneId(1), GlobalSeq(2)), Some(LaneSeq(3)));
    }

    #[test]
    fn forgetting_truncated_records_keeps_lookups_heads_and_the_base_right() {
        let index = LaneIndex::default();
        index.extend([
            (LaneId(1), LaneSeq(1), GlobalSeq(1)),
            (LaneId(2), LaneSeq(1), GlobalSeq(2)),
            (LaneId(1), LaneSeq(2), GlobalSeq(3)),
            (LaneId(1), LaneSeq(4), GlobalSeq(5)),
            (LaneId(1), LaneSeq(5), GlobalSeq(6)),
        ]);
        assert_eq!(index.entries(), 6, "five records and one hole");
        let mut last = index.last_below(GlobalSeq(5));
        last.sort();
        assert_eq!(
            last,
            vec![(LaneId(1), GlobalSeq(3)), (LaneId(2), GlobalSeq(2))]
        );
        let point = |seq| HlcPoint {
            wall_ms: 100 + seq,
            global_sequence: seq,
        };
        let bases = HashMap::from([(LaneId(1), point(3)), (LaneId(2), point(2))]);
        assert_eq!(index.forget_below(GlobalSeq(5), &bases), 4);
        assert_eq!(index.entries(), 2);
        assert_eq!(index.lookup(LaneId(1), LaneSeq(2)), None, "dropped");
        assert_eq!(index.lookup(LaneId(1), LaneSeq(4)), Some(GlobalSeq(5)));
        assert_eq!(index.lookup(LaneId(1), LaneSeq(5)), Some(GlobalSeq(6)));
        let heads = index.heads();
        assert_eq!(
            (heads[&LaneId(1)], heads[&LaneId(2)]),
            (LaneSeq(5), LaneSeq(1))
        );
        assert_eq!(index.first_from(LaneId(1), GlobalSeq(1)), Some(LaneSeq(4)));
        assert_eq!(index.first_from(LaneId(2), GlobalSeq(1)), Some(LaneSeq(2)));
        let mut at = index.heads_at(GlobalSeq(4));
        at.sort_by_key(|(lane, _, _)| *lane);
        assert_eq!(
            at,
            vec![
                (LaneId(1), LaneSeq(3), Err(point(3))),
                (LaneId(2), LaneSeq(1), Err(point(2)))
            ]
        );
        index.extend([(LaneId(2), LaneSeq(2), GlobalSeq(7))]);
        assert_eq!(index.lookup(LaneId(2), LaneSeq(2)), Some(GlobalSeq(7)));
    }

    #[test]
    fn a_lane_whose_head_was_truncated_continues_its_sequence() {
        let index = LaneIndex::default();
        index.extend([
            (LaneId(1), LaneSeq(5), GlobalSeq(20)),
            (LaneId(1), LaneSeq(6), GlobalSeq(22)),
        ]);
        index.seed(
            LaneId(2),
            LaneSeq(3),
            HlcPoint {
                wall_ms: 1,
                global_sequence: 9,
            },
        );
        assert_eq!(index.lookup(LaneId(1), LaneSeq(4)), None);
        assert_eq!(index.lookup(LaneId(1), LaneSeq(6)), Some(GlobalSeq(22)));
        assert_eq!(
            index.range(LaneId(1), LaneSeq(1), LaneSeq(9)),
            vec![GlobalSeq(20), GlobalSeq(22)]
        );
        assert_eq!(
            index.range(LaneId(1), LaneSeq(6), LaneSeq(6)),
            vec![GlobalSeq(22)]
        );
        let heads = index.heads();
        assert_eq!(heads[&LaneId(1)], LaneSeq(6));
        assert_eq!(heads[&LaneId(2)], LaneSeq(3));
        assert_eq!(index.first_from(LaneId(2), GlobalSeq(1)), Some(LaneSeq(4)));
        assert_eq!(index.first_from(LaneId(1), GlobalSeq(21)), Some(LaneSeq(6)));
        let mut at = index.heads_at(GlobalSeq(21));
        at.sort_by_key(|(lane, _, _)| *lane);
        assert_eq!(at[0], (LaneId(1), LaneSeq(5), Ok(GlobalSeq(20))));
        assert_eq!(at[1].1, LaneSeq(3));
    }
}
