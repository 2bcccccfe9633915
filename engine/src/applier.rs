//! Appliers: projections or state machines that report how far they have applied the
//! log. The global applied watermark is the minimum over registered appliers, and so is
//! each lane's: an applier's position on a lane is the highest of what it reported on
//! that lane and its global position (having applied the whole log up to a point covers
//! every lane up to it).

use parking_lot::Mutex;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use tidelog_watermarks::{HlcPoint, LaneId, WatermarkAdvanceHandle, WatermarkState};

#[derive(Debug, Default)]
struct Position {
    name: String,
    global: HlcPoint,
    lanes: BTreeMap<LaneId, HlcPoint>,
}

impl Position {
    fn on_lane(&self, lane: LaneId) -> HlcPoint {
        self.lanes
            .get(&lane)
            .map_or(self.global, |point| point.max_by_seq(self.global))
    }
}

#[derive(Debug, Default)]
pub(crate) struct ApplierSet {
    next_id: u64,
    points: BTreeMap<u64, Position>,
}

impl ApplierSet {
    fn minimum(&self) -> Option<HlcPoint> {
        self.points
            .values()
            .map(|position| position.global)
            .min_by_key(|point| point.global_sequence)
    }

    fn minimum_on_lane(&self, lane: LaneId) -> Option<HlcPoint> {
        self.points
            .values()
            .map(|position| position.on_lane(lane))
            .min_by_key(|point| point.global_sequence)
    }

    /// Every lane some applier reported on.
    fn lanes(&self) -> BTreeSet<LaneId> {
        self.points
            .values()
            .flat_map(|position| position.lanes.keys().copied())
            .collect()
    }

    /// Moves the global applied watermark and every reported lane's to the minimum over
    /// appliers (the watermarks never move back).
    fn publish(&self, marks: &mut WatermarkState) {
        if let Some(minimum) = self.minimum() {
            marks.set_applied(minimum);
        }
        for lane in self.lanes() {
            if let Some(minimum) = self.minimum_on_lane(lane) {
                marks.set_applied_on_lane(lane, minimum);
            }
        }
    }

    /// Names and points of the registered appliers, lowest first.
    pub(crate) fn list(&self) -> Vec<(String, HlcPoint)> {
        let mut list: Vec<_> = self
            .points
            .values()
            .map(|position| (position.name.clone(), position.global))
            .collect();
        list.sort_by_key(|(_, point)| point.global_sequence);
        list
    }
}

/// A registered applier. Report progress with [`Applier::report`]; dropping it
/// unregisters it.
#[derive(Debug)]
pub struct Applier {
    id: u64,
    set: Arc<Mutex<ApplierSet>>,
    marks: WatermarkAdvanceHandle,
}

impl Applier {
    pub(crate) fn register(
        set: Arc<Mutex<ApplierSet>>,
        marks: WatermarkAdvanceHandle,
        name: String,
        from: HlcPoint,
    ) -> Self {
        let id = {
            let mut set = set.lock();
            let id = set.next_id;
            set.next_id += 1;
            set.points.insert(
                id,
                Position {
                    name,
                    global: from,
                    lanes: BTreeMap::new(),
                },
            );
            id
        };
        Applier { id, set, marks }
    }

    /// This applier has applied everything up to `point`. Moves the global applied
    /// watermark to the new minimum over appliers (never backwards, never past visible),
    /// and each lane's applied watermark to its minimum over appliers.
    pub fn report(&self, point: HlcPoint) {
        let mut set = self.set.lock();
        if let Some(position) = set.points.get_mut(&self.id) {
            position.global = position.global.max_by_seq(point);
        }
        set.publish(&mut self.marks.lock());
    }

    /// This applier has applied `lane` up to `point`. The lane's applied watermark moves
    /// to the minimum over every registered applier's position on the lane (never
    /// backwards, never past the lane's visible).
    pub fn report_on_lane(&self, lane: impl Into<LaneId>, point: HlcPoint) {
        let lane = lane.into();
        let mut set = self.set.lock();
        if let Some(position) = set.points.get_mut(&self.id) {
            let current = position.lanes.entry(lane).or_insert(HlcPoint::ORIGIN);
            *current = current.max_by_seq(point);
        }
        if let Some(minimum) = set.minimum_on_lane(lane) {
            self.marks.lock().set_applied_on_lane(lane, minimum);
        }
    }

    /// Where this applier stands.
    #[must_use]
    pub fn position(&self) -> HlcPoint {
        self.set
            .lock()
            .points
            .get(&self.id)
            .map_or(HlcPoint::ORIGIN, |position| position.global)
    }
}

impl Drop for Applier {
    fn drop(&mut self) {
        let mut set = self.set.lock();
        set.points.remove(&self.id);
        set.publish(&mut self.marks.lock());
    }
}
