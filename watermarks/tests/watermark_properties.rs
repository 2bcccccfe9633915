//! Properties over random histories: whatever advances arrive, in whatever order, every
//! invariant holds after each one, no frontier ever moves back, and a parked waiter is
//! woken with success exactly when its target is covered. A failure here means some
//! interleaving of writer events could report a record as durable or visible when it is
//! not.

use proptest::prelude::*;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};
use tidelog_watermarks::{
    Frontiers, HlcPoint, LaneId, SystemClock, WaitError, WatermarkKind, WatermarkState,
};

#[derive(Debug, Clone)]
enum Op {
    Accepted(u32, HlcPoint),
    Written(u32, HlcPoint),
    Durable(HlcPoint),
    Visible(u32, HlcPoint),
    Emitted(u32, HlcPoint),
    VisibleAndEmitted(HlcPoint),
    Applied(HlcPoint),
    AppliedOnLane(u32, HlcPoint),
    Bootstrap(HlcPoint, u32, HlcPoint),
    Poison,
}

fn point() -> impl Strategy<Value = HlcPoint> {
    (0u64..10_000, 0u64..64).prop_map(|(wall_ms, global_sequence)| HlcPoint {
        wall_ms,
        global_sequence,
    })
}

fn op() -> impl Strategy<Value = Op> {
    let lane = 0u32..4;
    prop_oneof![
        4 => (lane.clone(), point()).prop_map(|(l, p)| Op::Accepted(l, p)),
        4 => (lane.clone(), point()).prop_map(|(l, p)| Op::Written(l, p)),
        3 => point().prop_map(Op::Durable),
        2 => (lane.clone(), point()).prop_map(|(l, p)| Op::Visible(l, p)),
        1 => (lane.clone(), point()).prop_map(|(l, p)| Op::Emitted(l, p)),
        2 => point().prop_map(Op::VisibleAndEmitted),
        1 => point().prop_map(Op::Applied),
        1 => (lane.clone(), point()).prop_map(|(l, p)| Op::AppliedOnLane(l, p)),
        1 => (point(), lane, point()).prop_map(|(g, l, p)| Op::Bootstrap(g, l, p)),
        1 => Just(Op::Poison),
    ]
}

fn apply(state: &mut WatermarkState, op: &Op) {
    match *op {
        Op::Accepted(l, p) => state.advance_accepted_on_lane(l, p),
        Op::Written(l, p) => state.advance_written_on_lane(l, p),
        Op::Durable(p) => state.advance_durable(p),
        Op::Visible(l, p) => state.advance_visible_on_lane(l, p),
        Op::Emitted(l, p) => state.advance_emitted_on_lane(l, p),
        Op::VisibleAndEmitted(p) => state.advance_visible_and_emitted(p),
        Op::Applied(p) => state.set_applied(p),
        Op::AppliedOnLane(l, p) => state.set_applied_on_lane(l, p),
        Op::Bootstrap(g, l, p) => state.reset_to_bootstrap_lanes(g, g, [(l, p)], [(l, p)]),
        Op::Poison => state.mark_writer_crashed(),
    }
}

fn all_frontiers(state: &WatermarkState) -> Vec<(Option<u32>, Frontiers)> {
    let mut all = vec![(None, state.snapshot())];
    all.extend((0..4).map(|lane| (Some(lane), state.lane_watermark(lane))));
    all
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_advances_keep_every_invariant_and_never_move_a_frontier_back(ops in prop::collection::vec(op(), 1..80)) {
        let mut state = WatermarkState::new(Arc::new(SystemClock::new()));
        let mut before = all_frontiers(&state);
        for op in &ops {
            let durable_before = state.snapshot().durable_hlc;
            let was_poisoned = state.is_poisoned();
            apply(&mut state, op);
            let after = all_frontiers(&state);
            let global_durable = state.snapshot().durable_hlc;
            for ((scope, old), (_, new)) in before.iter().zip(&after) {
                prop_assert_eq!(new.broken_invariant(), None, "{:?} after {:?}: {:?}", scope, op, new);
                prop_assert!(global_durable.covers(new.durable_hlc), "lane durable ahead of global");
                for kind in WatermarkKind::ALL {
                    prop_assert!(new.current(kind).covers(old.current(kind)), "{} of {:?} moved back after {:?}", kind, scope, op);
                }
            }
            if was_poisoned {
                prop_assert_eq!(global_durable, durable_before, "durable moved after poison");
                prop_assert!(state.is_poisoned());
            }
            before = after;
        }
    }

    #[test]
    fn lane_durable_is_the_highest_write_of_the_lane_the_sync_covers(
        lanes in prop::collection::vec(0u32..4, 1..40),
        sync_at in prop::collection::vec(any::<bool>(), 40),
    ) {
        let mut state = WatermarkState::new(Arc::new(SystemClock::new()));
        let mut written: Vec<(u32, HlcPoint)> = Vec::new();
        let mut synced = 0;
        for (i, lane) in lanes.iter().enumerate() {
            let p = HlcPoint { wall_ms: 40 - i as u64, global_sequence: i as u64 + 1 };
            state.advance_accepted_on_lane(*lane, p);
            state.advance_written_on_lane(*lane, p);
            written.push((*lane, p));
            if sync_at[i] {
                state.advance_durable(p);
                synced = p.global_sequence;
            }
            for lane in 0..4 {
                let expected = written
                    .iter()
                    .filter(|(l, p)| *l == lane && p.global_sequence <= synced)
                    .map(|(_, p)| *p)
                    .next_back()
                    .unwrap_or(HlcPoint::ORIGIN);
                prop_assert_eq!(state.lane_watermark(lane).durable_hlc, expected);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn parked_waiters_succeed_exactly_when_their_target_is_covered(
        waits in prop::collection::vec((0usize..6, prop::option::of(0u32..3), 1u64..20), 1..8),
        advances in prop::collection::vec((0u32..3, 1u64..20), 0..12),
    ) {
        let handle = WatermarkState::handle(Arc::new(SystemClock::new()));
        let threads: Vec<_> = waits
            .iter()
            .map(|&(kind, lane, seq)| {
                let handle = handle.clone();
                let kind = WatermarkKind::ALL[kind];
                let target = HlcPoint { wall_ms: 0, global_sequence: seq };
                let thread = thread::spawn(move || match lane {
                    None => handle.wait_for(kind, target, Duration::from_secs(30)),
                    Some(lane) => handle.wait_for_on_lane(kind, LaneId(lane), target, Duration::from_secs(30)),
                });
                (kind, lane.map(LaneId), target, thread)
            })
            .collect();
        let deadline = Instant::now() + Duration::from_secs(30);
        while handle.lock().parked_waiters() < threads.len() {
            prop_assert!(Instant::now() < deadline, "waiters never parked");
            thread::yield_now();
        }
        {
            let mut state = handle.lock();
            let mut seq = 0;
            for (lane, step) in &advances {
                seq += step;
                let p = HlcPoint { wall_ms: seq, global_sequence: seq };
                state.advance_accepted_on_lane(*lane, p);
                state.advance_written_on_lane(*lane, p);
                state.advance_durable(p);
                state.advance_visible_and_emitted(p);
                state.set_applied(p);
                state.set_applied_on_lane(*lane, p);
            }
        }
        let covered = |kind, lane, target| handle.lock().current(kind, lane).covers(target);
        let (done, pending): (Vec<_>, Vec<_>) = threads
            .into_iter()
            .partition(|(kind, lane, target, _)| covered(*kind, *lane, *target));
        for (kind, lane, target, thread) in done {
            let result = thread.join().expect("waiter");
            prop_assert!(matches!(result, Ok(p) if p.covers(target)), "{} {:?} {:?}: {:?}", kind, lane, target, result);
        }
        prop_assert_eq!(handle.lock().parked_waiters(), pending.len(), "an uncovered waiter was unparked");
        handle.mark_writer_crashed();
        for (_, _, _, thread) in pending {
            let result = thread.join().expect("waiter");
            prop_assert!(matches!(result, Err(WaitError::Poisoned { .. })), "{:?}", result);
        }
    }
}
