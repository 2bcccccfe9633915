//! Appliers: projections or state machines that report how far they have applied the
//! log. The global applied watermark is the minimum over registered appliers.

use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::sync::Arc;
use tidelog_watermarks::{HlcPoint, LaneId, WatermarkAdvanceHandle};

#[derive(Debug, Default)]
pub(crate) struct ApplierSet {
    next_id: u64,
    points: BTreeMap<u64, (String, HlcPoint)>,
}

impl ApplierSet {
    fn minimum(&self) -> Option<HlcPoint> {
        self.points
            .values()
            .map(|(_, point)| *point)
            .min_by_key(|point| point.global_sequence)
    }

    /// Names and points of the registered appliers, lowest first.
    pub(crate) fn list(&self) -> Vec<(String, HlcPoint)> {
        let mut list: Vec<_> = self.points.values().cloned().collect();
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
            set.points.insert(id, (name, from));
            id
        };
        Applier { id, set, marks }
    }

    /// This applier has applied everything up to `point`. Moves the global applied
    /// watermark to the new minimum over appliers (never backwards, never past visible).
    pub fn report(&self, point: HlcPoint) {
        let mut set = self.set.lock();
        if let Some((_, current)) = set.points.get_mut(&self.id) {
            *current = current.max_by_seq(point);
        }
        if let Some(minimum) = set.minimum() {
            self.marks.lock().set_applied(minimum);
        }
    }

    /// This applier has applied `lane` up to `point` (the lane's applied watermark).
    pub fn report_on_lane(&self, lane: impl Into<LaneId>, point: HlcPoint) {
        self.marks.lock().set_applied_on_lane(lane, point);
    }

    /// Where this applier stands.
    #[must_use]
    pub fn position(&self) -> HlcPoint {
        self.set
            .lock()
            .points
            .get(&self.id)
            .map_or(HlcPoint::ORIGIN, |(_, point)| *point)
    }
}

impl Drop for Applier {
    fn drop(&mut self) {
        let mut set = self.set.lock();
        set.points.remove(&self.id);
        if let Some(minimum) = set.minimum() {
            self.marks.lock().set_applied(minimum);
        }
    }
}
