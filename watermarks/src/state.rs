//! The watermark state: global frontiers, a frontier set per lane, the poison latch, the
//! wall clock, and the parked waiters.
//!
//! # Rules every advance follows
//!
//! - **Monotonic.** A frontier only moves to a higher sequence; an older point is ignored.
//! - **Clamped, never broken.** An advance that would break an invariant is clamped to the
//!   frontier it must stay under: written and visible and emitted to accepted (of the same
//!   scope), durable to written, applied to visible. Advancing visible drags emitted along
//!   (`emitted >= visible`).
//! - **Lane durability follows the sequence axis.** Global durable is the physical sync
//!   point. A lane's durable is the highest *written point of that lane* whose sequence
//!   the global durable covers, whatever the wall stamps say. Lane visibility follows
//!   global visibility by the same rule when it is advanced globally.
//! - **Poison is forever.** After `mark_writer_crashed`, durable never moves again (later
//!   `advance_durable` calls are no-ops), every waiter is woken, every wait fails at once,
//!   and bootstrap resets keep the latch.
//! - **Targeted wake-ups.** An advance wakes only the waiters whose target it covers on
//!   the frontier it moved.

use crate::clock::Clock;
use crate::frontiers::Frontiers;
use crate::ids::{GlobalSeq, LaneId};
use crate::point::{HlcPoint, WatermarkKind};
use crate::view::{LaneView, WatermarkView};
use crate::waiters::{Scope, WaiterRegistry};
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

/// A lane's frontiers plus the lane's written points that the global durable and visible
/// frontiers have not yet covered (in sequence order, since a lane is written in order).
#[derive(Debug, Default)]
struct LaneState {
    marks: Frontiers,
    not_yet_durable: VecDeque<HlcPoint>,
    not_yet_visible: VecDeque<HlcPoint>,
}

/// Global and per-lane watermarks with their waiters and poison latch. See the module
/// documentation for the rules of every advance.
///
/// Usually shared through a [`WatermarkAdvanceHandle`](crate::WatermarkAdvanceHandle):
/// the writer advances through `handle.lock()`, callers wait through the handle.
#[derive(Debug)]
pub struct WatermarkState {
    clock: Arc<dyn Clock>,
    global: Frontiers,
    lanes: HashMap<LaneId, LaneState>,
    lanes_not_yet_durable: BTreeSet<LaneId>,
    lanes_not_yet_visible: BTreeSet<LaneId>,
    poisoned: bool,
    last_wall_ms: u64,
    pub(crate) waiters: WaiterRegistry,
}

impl WatermarkState {
    /// Everything at the origin: a new, empty database.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        WatermarkState {
            clock,
            global: Frontiers::default(),
            lanes: HashMap::new(),
            lanes_not_yet_durable: BTreeSet::new(),
            lanes_not_yet_visible: BTreeSet::new(),
            poisoned: false,
            last_wall_ms: 0,
            waiters: WaiterRegistry::default(),
        }
    }

    /// A state seeded from `point`: every global frontier and lane 0's frontiers stand at
    /// `point` (what recovery found), not at the origin.
    pub fn for_bootstrap(point: HlcPoint, clock: Arc<dyn Clock>) -> Self {
        let mut state = WatermarkState::new(clock);
        state.global = Frontiers::for_bootstrap(point);
        state.last_wall_ms = point.wall_ms;
        state.lanes.insert(
            LaneId(0),
            LaneState {
                marks: Frontiers::for_bootstrap(point),
                ..LaneState::default()
            },
        );
        state
    }

    /// Re-seeds the state from what recovery found: global durable and visible points,
    /// and per lane the last durable and visible points. Everything recovered is written
    /// and accepted. A lane's durable covers its visible (by sequence); nothing moves
    /// backwards, and the poison latch survives.
    pub fn reset_to_bootstrap_lanes(
        &mut self,
        durable: HlcPoint,
        visible: HlcPoint,
        lane_durable: impl IntoIterator<Item = (impl Into<LaneId>, HlcPoint)>,
        lane_visible: impl IntoIterator<Item = (impl Into<LaneId>, HlcPoint)>,
    ) {
        let top = durable.max_by_seq(visible);
        for kind in [WatermarkKind::Accepted, WatermarkKind::Written] {
            self.raise(kind, None, top);
        }
        if !self.poisoned {
            self.raise(WatermarkKind::Durable, None, top);
        }
        for kind in [WatermarkKind::Visible, WatermarkKind::Emitted] {
            self.raise(kind, None, visible);
        }
        self.last_wall_ms = self.last_wall_ms.max(top.wall_ms);

        let mut seeds: HashMap<LaneId, (HlcPoint, HlcPoint)> = HashMap::new();
        for (lane, point) in lane_durable {
            let seed = seeds.entry(lane.into()).or_default();
            seed.0 = seed.0.max_by_seq(point);
        }
        for (lane, point) in lane_visible {
            let seed = seeds.entry(lane.into()).or_default();
            seed.1 = seed.1.max_by_seq(point);
        }
        for (lane, (lane_durable, lane_visible)) in seeds {
            let lane_top = lane_durable.max_by_seq(lane_visible).clamp_to(top);
            let scope = Some(lane);
            for kind in [WatermarkKind::Accepted, WatermarkKind::Written] {
                self.raise(kind, scope, lane_top);
            }
            if !self.poisoned {
                self.raise(WatermarkKind::Durable, scope, lane_top);
            }
            let lane_visible = lane_visible.clamp_to(lane_top);
            for kind in [WatermarkKind::Visible, WatermarkKind::Emitted] {
                self.raise(kind, scope, lane_visible);
            }
            self.debug_check(scope);
        }
        self.debug_check(None);
    }

    /// A new point for `seq`, stamped with the clock but never earlier than the last
    /// stamp, so wall time along the log never decreases even if the clock steps back.
    pub fn stamp(&mut self, seq: GlobalSeq) -> HlcPoint {
        self.last_wall_ms = self.last_wall_ms.max(self.clock.now_ms());
        HlcPoint::new(self.last_wall_ms, seq)
    }

    /// The writer gave `point` to a record of `lane`.
    pub fn advance_accepted_on_lane(&mut self, lane: impl Into<LaneId>, point: HlcPoint) {
        let lane = lane.into();
        self.raise(WatermarkKind::Accepted, Some(lane), point);
        self.raise(WatermarkKind::Accepted, None, point);
        self.last_wall_ms = self.last_wall_ms.max(point.wall_ms);
        self.debug_check(Some(lane));
    }

    /// The frame at `point` of `lane` is stored in its segment (page cache). Clamped to the lane's
    /// accepted frontier.
    pub fn advance_written_on_lane(&mut self, lane: impl Into<LaneId>, point: HlcPoint) {
        let lane = lane.into();
        let ceiling = self.lane_watermark(lane).accepted_hlc;
        let point = point.clamp_to(ceiling);
        if !self.raise(WatermarkKind::Written, Some(lane), point) {
            return;
        }
        self.raise(WatermarkKind::Written, None, point);
        let global = self.global;
        let state = self.lanes.entry(lane).or_default();
        if global.durable_hlc.covers(point) {
            // Written below a sync point that is already reached (out-of-order callers).
            let durable = point;
            self.raise(WatermarkKind::Durable, Some(lane), durable);
        } else {
            state.not_yet_durable.push_back(point);
            self.lanes_not_yet_durable.insert(lane);
        }
        let state = self.lanes.entry(lane).or_default();
        if global.visible_hlc.covers(point) {
            self.raise_visible(Some(lane), point);
        } else {
            state.not_yet_visible.push_back(point);
            self.lanes_not_yet_visible.insert(lane);
        }
        self.debug_check(Some(lane));
    }

    /// A sync covered everything up to `point`: the global durable frontier moves there
    /// (clamped to written), and each lane's durable moves to its highest written point
    /// at or below it. A no-op once poisoned.
    pub fn advance_durable(&mut self, point: HlcPoint) {
        if self.poisoned {
            return;
        }
        let point = point.clamp_to(self.global.written_hlc);
        if !self.raise(WatermarkKind::Durable, None, point) {
            return;
        }
        let reached = point.global_sequence;
        let lanes = split_covered(
            &mut self.lanes_not_yet_durable,
            &mut self.lanes,
            reached,
            |s| &mut s.not_yet_durable,
        );
        for (lane, lane_point) in lanes {
            self.raise(WatermarkKind::Durable, Some(lane), lane_point);
            self.debug_check(Some(lane));
        }
        self.debug_check(None);
    }

    /// Readers may see `lane` up to `point`. Clamped to the lane's accepted frontier;
    /// emitted follows.
    pub fn advance_visible_on_lane(&mut self, lane: impl Into<LaneId>, point: HlcPoint) {
        let lane = lane.into();
        let point = point.clamp_to(self.lane_watermark(lane).accepted_hlc);
        self.raise_visible(Some(lane), point);
        self.raise_visible(None, point);
        if let Some(state) = self.lanes.get_mut(&lane) {
            while state
                .not_yet_visible
                .front()
                .is_some_and(|p| point.covers(*p))
            {
                state.not_yet_visible.pop_front();
            }
        }
        self.debug_check(Some(lane));
    }

    /// Subscribers of `lane` have been handed everything up to `point`. Clamped to the
    /// lane's accepted frontier.
    pub fn advance_emitted_on_lane(&mut self, lane: impl Into<LaneId>, point: HlcPoint) {
        let lane = lane.into();
        let point = point.clamp_to(self.lane_watermark(lane).accepted_hlc);
        self.raise(WatermarkKind::Emitted, Some(lane), point);
        self.raise(WatermarkKind::Emitted, None, point);
        self.debug_check(Some(lane));
    }

    /// Readers and subscribers may see everything up to `point` (clamped to global
    /// accepted). Each lane's visible and emitted move to its highest written point at or
    /// below it.
    pub fn advance_visible_and_emitted(&mut self, point: HlcPoint) {
        let point = point.clamp_to(self.global.accepted_hlc);
        if !self.raise_visible(None, point) {
            return;
        }
        let reached = point.global_sequence;
        let lanes = split_covered(
            &mut self.lanes_not_yet_visible,
            &mut self.lanes,
            reached,
            |s| &mut s.not_yet_visible,
        );
        for (lane, lane_point) in lanes {
            self.raise_visible(Some(lane), lane_point);
            self.debug_check(Some(lane));
        }
        self.debug_check(None);
    }

    /// The global applied frontier (the minimum over appliers, computed by the caller),
    /// clamped to global visible.
    pub fn set_applied(&mut self, point: HlcPoint) {
        let point = point.clamp_to(self.global.visible_hlc);
        self.raise(WatermarkKind::Applied, None, point);
        self.debug_check(None);
    }

    /// A lane's applied frontier, clamped to the lane's visible.
    pub fn set_applied_on_lane(&mut self, lane: impl Into<LaneId>, point: HlcPoint) {
        let lane = lane.into();
        let point = point.clamp_to(self.lane_watermark(lane).visible_hlc);
        self.raise(WatermarkKind::Applied, Some(lane), point);
        self.debug_check(Some(lane));
    }

    /// Sets the poison latch: durable freezes forever and every waiter wakes with
    /// `Poisoned`. Idempotent.
    pub fn mark_writer_crashed(&mut self) {
        self.poisoned = true;
        self.waiters.wake_all();
    }

    /// Whether the poison latch is set.
    #[must_use]
    pub fn is_poisoned(&self) -> bool {
        self.poisoned
    }

    /// The global frontiers.
    #[must_use]
    pub fn snapshot(&self) -> Frontiers {
        self.global
    }

    /// A lane's frontiers (all at the origin for a lane never seen).
    #[must_use]
    pub fn lane_watermark(&self, lane: impl Into<LaneId>) -> Frontiers {
        self.lanes
            .get(&lane.into())
            .map(|state| state.marks)
            .unwrap_or_default()
    }

    /// The frontier of `kind` in `scope` (`None`: global).
    #[must_use]
    pub fn current(&self, kind: WatermarkKind, lane: Option<LaneId>) -> HlcPoint {
        match lane {
            None => self.global.current(kind),
            Some(lane) => self.lane_watermark(lane).current(kind),
        }
    }

    /// Global and per-lane frontiers, lanes in id order, for monitoring.
    #[must_use]
    pub fn snapshot_view(&self) -> WatermarkView {
        let mut lanes: Vec<LaneView> = self
            .lanes
            .iter()
            .map(|(lane, state)| LaneView::new(*lane, state.marks))
            .collect();
        lanes.sort_by_key(|view| view.lane);
        WatermarkView {
            global: self.global,
            visible_minus_durable_seq: self.global.visible_minus_durable_seq(),
            poisoned: self.poisoned,
            lanes,
        }
    }

    /// How many waiters are parked right now.
    #[must_use]
    pub fn parked_waiters(&self) -> usize {
        self.waiters.len()
    }

    fn raise_visible(&mut self, scope: Scope, point: HlcPoint) -> bool {
        let moved = self.raise(WatermarkKind::Visible, scope, point);
        self.raise(WatermarkKind::Emitted, scope, point);
        moved
    }

    /// Moves one frontier forward (never back) and wakes the waiters it satisfies.
    /// Returns whether it moved.
    fn raise(&mut self, kind: WatermarkKind, scope: Scope, point: HlcPoint) -> bool {
        let frontiers = match scope {
            None => &mut self.global,
            Some(lane) => &mut self.lanes.entry(lane).or_default().marks,
        };
        let slot = frontiers.slot_mut(kind);
        if slot.covers(point) {
            return false;
        }
        *slot = point;
        self.waiters
            .wake_covered(kind, scope, point.global_sequence);
        true
    }

    fn debug_check(&self, scope: Scope) {
        if cfg!(debug_assertions) {
            let marks = self.current_frontiers(scope);
            if let Some(broken) = marks.broken_invariant() {
                panic!("watermark invariant broken in {scope:?}: {broken}: {marks:?}");
            }
            if scope.is_some() {
                assert!(
                    self.global.durable_hlc.covers(marks.durable_hlc),
                    "lane durable ahead of global durable in {scope:?}"
                );
            }
        }
    }

    fn current_frontiers(&self, scope: Scope) -> Frontiers {
        match scope {
            None => self.global,
            Some(lane) => self.lane_watermark(lane),
        }
    }
}

/// Pops, for every lane in `pending`, the queued points at or below `reached`, and returns
/// each such lane with the highest point popped. Lanes left with nothing queued leave
/// `pending`.
fn split_covered(
    pending: &mut BTreeSet<LaneId>,
    lanes: &mut HashMap<LaneId, LaneState>,
    reached: u64,
    queue_of: fn(&mut LaneState) -> &mut VecDeque<HlcPoint>,
) -> Vec<(LaneId, HlcPoint)> {
    let mut covered = Vec::new();
    pending.retain(|lane| {
        let Some(state) = lanes.get_mut(lane) else {
            return false;
        };
        let queue = queue_of(state);
        let mut highest = None;
        while let Some(front) = queue.front().copied() {
            if front.global_sequence > reached {
                break;
            }
            highest = Some(front);
            queue.pop_front();
        }
        if let Some(point) = highest {
            covered.push((*lane, point));
        }
        !queue.is_empty()
    });
    covered
}
