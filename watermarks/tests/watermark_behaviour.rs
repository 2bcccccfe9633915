//! Behaviour of the watermark state and its waits: every advance, clamp, wait, timeout,
//! bootstrap and poison rule. If one of these fails, a caller waiting for durability or
//! visibility could be told a record is safe when it is not, or never be told at all.

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};
use tidelog_watermarks::{
    Clock, GlobalSeq, HlcPoint, LaneId, ManualClock, SystemClock, WaitError,
    WatermarkAdvanceHandle, WatermarkKind, WatermarkState,
};

const LONG: Duration = Duration::from_secs(30);
const SHORT: Duration = Duration::from_millis(1);

fn p(seq: u64) -> HlcPoint {
    HlcPoint {
        wall_ms: 1_000 + seq,
        global_sequence: seq,
    }
}

fn state() -> WatermarkState {
    WatermarkState::new(Arc::new(SystemClock::new()))
}

fn handle() -> WatermarkAdvanceHandle {
    WatermarkState::handle(Arc::new(SystemClock::new()))
}

/// Writes and syncs `lane` up to `seq` (one record).
fn write_durable(state: &mut WatermarkState, lane: u32, seq: u64) {
    state.advance_accepted_on_lane(lane, p(seq));
    state.advance_written_on_lane(lane, p(seq));
    state.advance_durable(p(seq));
}

/// Puts every kind at a different sequence, globally and on lane 3:
/// accepted 60, written 50, durable 40, emitted 35, visible 30, applied 20.
fn distinct_frontiers(state: &mut WatermarkState) {
    for seq in [20, 30, 40, 50, 60] {
        state.advance_accepted_on_lane(3, p(seq));
    }
    for seq in [20, 30, 40, 50] {
        state.advance_written_on_lane(3, p(seq));
    }
    state.advance_durable(p(40));
    state.advance_visible_on_lane(3, p(30));
    state.advance_emitted_on_lane(3, p(35));
    state.set_applied(p(20));
    state.set_applied_on_lane(3, p(20));
}

fn distinct_value(kind: WatermarkKind) -> u64 {
    match kind {
        WatermarkKind::Accepted => 60,
        WatermarkKind::Written => 50,
        WatermarkKind::Durable => 40,
        WatermarkKind::Emitted => 35,
        WatermarkKind::Visible => 30,
        WatermarkKind::Applied => 20,
    }
}

#[test]
fn every_wait_reads_its_own_kind_globally_and_on_a_lane() {
    let handle = handle();
    distinct_frontiers(&mut handle.lock());
    for kind in WatermarkKind::ALL {
        let at = distinct_value(kind);
        for lane in [None, Some(LaneId(3))] {
            let wait = |seq| match lane {
                None => handle.wait_for(kind, p(seq), SHORT),
                Some(lane) => handle.wait_for_on_lane(kind, lane, p(seq), SHORT),
            };
            assert!(wait(at).is_ok(), "{kind} {lane:?} must cover {at}");
            match wait(at + 1) {
                Err(WaitError::WaitTimeout {
                    watermark,
                    lane: l,
                    target,
                    ..
                }) => {
                    assert_eq!((watermark, l, target), (kind, lane, p(at + 1)));
                }
                other => panic!(
                    "{kind} {lane:?} at {at} must not cover {}: {other:?}",
                    at + 1
                ),
            }
        }
    }
}

#[test]
fn named_waits_are_bound_to_the_kind_their_name_says() {
    let handle = handle();
    distinct_frontiers(&mut handle.lock());
    type Named = fn(&WatermarkAdvanceHandle, HlcPoint, Duration) -> Result<HlcPoint, WaitError>;
    type NamedLane =
        fn(&WatermarkAdvanceHandle, u32, HlcPoint, Duration) -> Result<HlcPoint, WaitError>;
    let named: [(WatermarkKind, Named, NamedLane); 6] = [
        (
            WatermarkKind::Accepted,
            |h, t, d| h.wait_for_accepted(t, d),
            |h, l, t, d| h.wait_for_accepted_on_lane(l, t, d),
        ),
        (
            WatermarkKind::Written,
            |h, t, d| h.wait_for_written(t, d),
            |h, l, t, d| h.wait_for_written_on_lane(l, t, d),
        ),
        (
            WatermarkKind::Durable,
            |h, t, d| h.wait_for_durable(t, d),
            |h, l, t, d| h.wait_for_durable_on_lane(l, t, d),
        ),
        (
            WatermarkKind::Visible,
            |h, t, d| h.wait_for_visible(t, d),
            |h, l, t, d| h.wait_for_visible_on_lane(l, t, d),
        ),
        (
            WatermarkKind::Applied,
            |h, t, d| h.wait_for_applied(t, d),
            |h, l, t, d| h.wait_for_applied_on_lane(l, t, d),
        ),
        (
            WatermarkKind::Emitted,
            |h, t, d| h.wait_for_emitted(t, d),
            |h, l, t, d| h.wait_for_emitted_on_lane(l, t, d),
        ),
    ];
    for (kind, global, lane) in named {
        let at = distinct_value(kind);
        assert!(global(&handle, p(at), SHORT).is_ok(), "{kind}");
        assert!(global(&handle, p(at + 1), SHORT).is_err(), "{kind}");
        assert!(lane(&handle, 3, p(at), SHORT).is_ok(), "{kind} on lane");
        assert!(
            lane(&handle, 3, p(at + 1), SHORT).is_err(),
            "{kind} on lane"
        );
    }
}

#[test]
fn accepted_on_a_lane_also_raises_the_global_frontier() {
    let mut s = state();
    s.advance_accepted_on_lane(5, p(7));
    assert_eq!(s.lane_watermark(5).accepted_hlc, p(7));
    assert_eq!(s.snapshot().accepted_hlc, p(7));
    assert_eq!(s.lane_watermark(6).accepted_hlc, HlcPoint::ORIGIN);
}

#[test]
fn an_older_point_never_moves_any_frontier_back() {
    let mut s = state();
    distinct_frontiers(&mut s);
    let before = (s.snapshot(), s.lane_watermark(3));
    s.advance_accepted_on_lane(3, p(1));
    s.advance_written_on_lane(3, p(1));
    s.advance_durable(p(1));
    s.advance_visible_on_lane(3, p(1));
    s.advance_emitted_on_lane(3, p(1));
    s.advance_visible_and_emitted(p(1));
    s.set_applied(p(1));
    s.set_applied_on_lane(3, p(1));
    assert_eq!((s.snapshot(), s.lane_watermark(3)), before);
}

#[test]
fn written_is_clamped_to_the_lanes_accepted_frontier() {
    let mut s = state();
    s.advance_accepted_on_lane(1, p(4));
    s.advance_written_on_lane(1, p(9));
    assert_eq!(s.lane_watermark(1).written_hlc, p(4));
    assert_eq!(s.snapshot().written_hlc, p(4));
}

#[test]
fn durable_is_clamped_to_the_written_frontier() {
    let mut s = state();
    s.advance_accepted_on_lane(1, p(9));
    s.advance_written_on_lane(1, p(6));
    s.advance_durable(p(9));
    assert_eq!(s.snapshot().durable_hlc, p(6));
    assert_eq!(s.lane_watermark(1).durable_hlc, p(6));
}

#[test]
fn a_lanes_durable_is_its_highest_written_point_that_the_sync_covers() {
    let mut s = state();
    for (lane, seq) in [(1, 3), (2, 4), (1, 7), (2, 8), (1, 10)] {
        s.advance_accepted_on_lane(lane, p(seq));
        s.advance_written_on_lane(lane, p(seq));
    }
    s.advance_durable(p(8));
    assert_eq!(s.lane_watermark(1).durable_hlc, p(7));
    assert_eq!(s.lane_watermark(2).durable_hlc, p(8));
    s.advance_durable(p(10));
    assert_eq!(s.lane_watermark(1).durable_hlc, p(10));
    assert_eq!(s.lane_watermark(2).durable_hlc, p(8));
}

#[test]
fn a_lane_written_below_an_earlier_sync_point_is_durable_at_once() {
    let mut s = state();
    write_durable(&mut s, 1, 10);
    s.advance_accepted_on_lane(2, p(5));
    s.advance_written_on_lane(2, p(5));
    assert_eq!(s.lane_watermark(2).durable_hlc, p(5));
}

#[test]
fn global_visibility_carries_each_lane_to_its_highest_covered_write() {
    let mut s = state();
    for (lane, seq) in [(1, 1), (2, 2), (1, 3)] {
        s.advance_accepted_on_lane(lane, p(seq));
        s.advance_written_on_lane(lane, p(seq));
    }
    s.advance_visible_and_emitted(p(2));
    assert_eq!(s.lane_watermark(1).visible_hlc, p(1));
    assert_eq!(s.lane_watermark(2).visible_hlc, p(2));
    assert_eq!(s.lane_watermark(1).emitted_hlc, p(1));
    assert_eq!(s.snapshot().visible_hlc, p(2));
    assert_eq!(s.snapshot().emitted_hlc, p(2));
}

#[test]
fn visible_is_clamped_to_accepted_and_drags_emitted_along() {
    let mut s = state();
    s.advance_accepted_on_lane(1, p(5));
    s.advance_visible_on_lane(1, p(8));
    let lane = s.lane_watermark(1);
    assert_eq!(lane.visible_hlc, p(5));
    assert_eq!(lane.emitted_hlc, p(5));
    assert_eq!(s.snapshot().emitted_hlc, p(5));
}

#[test]
fn emitted_may_run_ahead_of_visible_but_not_of_accepted() {
    let mut s = state();
    s.advance_accepted_on_lane(1, p(5));
    s.advance_emitted_on_lane(1, p(4));
    assert_eq!(s.lane_watermark(1).emitted_hlc, p(4));
    assert_eq!(s.lane_watermark(1).visible_hlc, HlcPoint::ORIGIN);
    s.advance_emitted_on_lane(1, p(9));
    assert_eq!(s.lane_watermark(1).emitted_hlc, p(5));
}

#[test]
fn applied_is_clamped_to_visible_globally_and_per_lane() {
    let mut s = state();
    write_durable(&mut s, 1, 6);
    s.advance_visible_on_lane(1, p(4));
    s.set_applied(p(6));
    s.set_applied_on_lane(1, p(6));
    assert_eq!(s.snapshot().applied_hlc, p(4));
    assert_eq!(s.lane_watermark(1).applied_hlc, p(4));
}

#[test]
fn a_poisoned_state_never_advances_durable_even_when_written_is_ahead() {
    let mut s = state();
    write_durable(&mut s, 0, 5);
    s.mark_writer_crashed();
    s.advance_accepted_on_lane(0, p(9));
    s.advance_written_on_lane(0, p(9));
    s.advance_durable(p(9));
    assert_eq!(s.snapshot().durable_hlc, p(5));
    assert_eq!(s.lane_watermark(0).durable_hlc, p(5));
}

#[test]
fn poison_survives_a_bootstrap_reset_and_durable_stays_frozen() {
    let mut s = state();
    s.mark_writer_crashed();
    s.reset_to_bootstrap_lanes(p(10), p(10), [(1u32, p(10))], [(1u32, p(10))]);
    assert!(s.is_poisoned());
    assert_eq!(s.snapshot().durable_hlc, HlcPoint::ORIGIN);
    assert_eq!(s.lane_watermark(1).durable_hlc, HlcPoint::ORIGIN);
}

#[test]
fn bootstrap_reset_seeds_lanes_from_recovered_points() {
    let mut s = state();
    s.reset_to_bootstrap_lanes(
        p(12),
        p(12),
        [(1u32, p(7)), (2, p(12))],
        [(1u32, p(7)), (2, p(12))],
    );
    assert_eq!(s.snapshot().durable_hlc, p(12));
    assert_eq!(s.snapshot().accepted_hlc, p(12));
    assert_eq!(s.lane_watermark(1).durable_hlc, p(7));
    assert_eq!(s.lane_watermark(1).visible_hlc, p(7));
    assert_eq!(s.lane_watermark(2).written_hlc, p(12));
    // New writes continue from there.
    write_durable(&mut s, 1, 13);
    assert_eq!(s.lane_watermark(1).durable_hlc, p(13));
}

#[test]
fn a_poisoned_wait_fails_at_once_even_when_its_target_was_covered() {
    let handle = handle();
    write_durable(&mut handle.lock(), 0, 5);
    handle.mark_writer_crashed();
    let started = Instant::now();
    let result = handle.wait_for_durable(p(1), LONG);
    assert!(matches!(
        result,
        Err(WaitError::Poisoned {
            watermark: WatermarkKind::Durable,
            ..
        })
    ));
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn the_handle_reports_poison_only_after_the_writer_crashed() {
    let handle = handle();
    let other = handle.clone();
    assert!(!handle.is_poisoned());
    other.mark_writer_crashed();
    assert!(handle.is_poisoned(), "every clone sees the latch");
    assert!(handle.snapshot_view().poisoned);
}

#[test]
fn a_wait_without_a_deadline_parks_until_its_target_is_covered() {
    let handle = handle();
    let waiter = {
        let handle = handle.clone();
        // `Duration::MAX` overflows every deadline: the wait has none.
        thread::spawn(move || handle.wait_for_written(p(2), Duration::MAX))
    };
    wait_until_parked(&handle, 1);
    let mut state = handle.lock();
    state.advance_accepted_on_lane(1, p(2));
    state.advance_written_on_lane(1, p(2));
    drop(state);
    assert_eq!(waiter.join().expect("waiter"), Ok(p(2)));
    assert_eq!(handle.lock().parked_waiters(), 0);
}

#[test]
fn poison_wakes_every_parked_waiter_of_every_kind() {
    let handle = handle();
    let waiters: Vec<_> = WatermarkKind::ALL
        .into_iter()
        .flat_map(|kind| [(kind, None), (kind, Some(LaneId(2)))])
        .map(|(kind, lane)| {
            let handle = handle.clone();
            thread::spawn(move || match lane {
                None => handle.wait_for(kind, p(100), LONG),
                Some(lane) => handle.wait_for_on_lane(kind, lane, p(100), LONG),
            })
        })
        .collect();
    wait_until_parked(&handle, waiters.len());
    handle.mark_writer_crashed();
    for waiter in waiters {
        let result = waiter.join().expect("waiter thread");
        assert!(
            matches!(result, Err(WaitError::Poisoned { .. })),
            "{result:?}"
        );
    }
    assert_eq!(handle.lock().parked_waiters(), 0);
}

#[test]
fn a_parked_waiter_returns_when_another_thread_covers_its_target() {
    let handle = handle();
    let waiter = {
        let handle = handle.clone();
        thread::spawn(move || handle.wait_for_durable_on_lane(4, p(3), LONG))
    };
    wait_until_parked(&handle, 1);
    write_durable(&mut handle.lock(), 4, 2);
    assert_eq!(handle.lock().parked_waiters(), 1, "seq 2 does not cover 3");
    write_durable(&mut handle.lock(), 4, 3);
    assert_eq!(waiter.join().expect("waiter"), Ok(p(3)));
}

#[test]
fn an_advance_wakes_only_the_waiters_it_covers() {
    let handle = handle();
    let waiters: Vec<_> = (1..=8)
        .map(|seq| {
            let handle = handle.clone();
            thread::spawn(move || handle.wait_for_durable(p(seq), LONG))
        })
        .collect();
    let other_kind = {
        let handle = handle.clone();
        thread::spawn(move || handle.wait_for_visible(p(1), Duration::from_millis(200)))
    };
    wait_until_parked(&handle, 9);
    write_durable(&mut handle.lock(), 0, 4);
    assert_eq!(
        handle.lock().parked_waiters(),
        5,
        "targets 5..=8 and the visible waiter stay parked"
    );
    for (i, waiter) in waiters.into_iter().enumerate() {
        if i < 4 {
            assert_eq!(waiter.join().expect("waiter"), Ok(p(4)));
        } else {
            drop(waiter);
        }
    }
    assert!(matches!(
        other_kind.join().expect("visible waiter"),
        Err(WaitError::WaitTimeout {
            watermark: WatermarkKind::Visible,
            ..
        })
    ));
    handle.mark_writer_crashed();
}

#[test]
fn a_timeout_lasts_the_full_duration_and_reports_it() {
    let handle = handle();
    let timeout = Duration::from_millis(120);
    let started = Instant::now();
    let result = handle.wait_for_applied_on_lane(9, p(1), timeout);
    let elapsed = started.elapsed();
    assert!(elapsed >= timeout, "returned after {elapsed:?}");
    match result {
        Err(WaitError::WaitTimeout {
            watermark,
            lane,
            target,
            waited_ms,
        }) => {
            assert_eq!(
                (watermark, lane, target),
                (WatermarkKind::Applied, Some(LaneId(9)), p(1))
            );
            assert!(waited_ms >= 120, "waited_ms {waited_ms}");
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert_eq!(
        handle.lock().parked_waiters(),
        0,
        "a timed-out waiter unparks itself"
    );
}

#[test]
fn a_zero_timeout_still_succeeds_when_already_covered() {
    let handle = handle();
    write_durable(&mut handle.lock(), 0, 3);
    assert_eq!(handle.wait_for_durable(p(3), Duration::ZERO), Ok(p(3)));
}

#[test]
fn wait_errors_say_what_to_do() {
    let timeout = WaitError::WaitTimeout {
        watermark: WatermarkKind::Durable,
        lane: Some(LaneId(2)),
        target: p(9),
        waited_ms: 5,
    };
    let text = timeout.to_string();
    assert!(text.contains("durable watermark of lane 2"), "{text}");
    assert!(text.contains("sequence 9"), "{text}");
    let poisoned = WaitError::Poisoned {
        watermark: WatermarkKind::Visible,
        lane: None,
        target: p(1),
    };
    assert!(poisoned.to_string().contains("reopen"), "{poisoned}");
}

#[test]
fn stamps_never_go_back_when_the_clock_does() {
    let clock = ManualClock::new(5_000);
    let mut s = WatermarkState::new(Arc::new(clock.clone()));
    let first = s.stamp(GlobalSeq(1));
    clock.set_ms(1_000);
    let second = s.stamp(GlobalSeq(2));
    clock.advance(std::time::Duration::from_millis(10_000));
    let third = s.stamp(GlobalSeq(3));
    assert_eq!(
        first,
        HlcPoint {
            wall_ms: 5_000,
            global_sequence: 1
        }
    );
    assert_eq!(
        second,
        HlcPoint {
            wall_ms: 5_000,
            global_sequence: 2
        }
    );
    assert_eq!(
        third,
        HlcPoint {
            wall_ms: 11_000,
            global_sequence: 3
        }
    );
    assert!(SystemClock::new().now_ms() > 1_600_000_000_000);
}

#[test]
fn bootstrap_stamps_continue_after_the_recovered_wall_time() {
    let clock = ManualClock::new(10);
    let mut s = WatermarkState::for_bootstrap(p(50), Arc::new(clock));
    assert_eq!(s.stamp(GlobalSeq(51)).wall_ms, p(50).wall_ms);
}

#[test]
fn the_view_lists_lanes_in_order_and_serializes() {
    let mut s = state();
    write_durable(&mut s, 7, 1);
    write_durable(&mut s, 2, 2);
    s.advance_visible_and_emitted(p(1));
    let view = s.snapshot_view();
    let lanes: Vec<u32> = view.lanes.iter().map(|l| l.lane.get()).collect();
    assert_eq!(lanes, vec![2, 7]);
    assert_eq!(view.lanes[0].visible_minus_durable_seq, -2);
    assert_eq!(view.lanes[1].visible_minus_durable_seq, 0);
    assert_eq!(view.visible_minus_durable_seq, -1);
    let json = serde_json::to_value(&view).expect("serialize");
    assert_eq!(json["global"]["durable_hlc"]["global_sequence"], 2);
    assert_eq!(json["lanes"][0]["lane"], 2);
    let back: tidelog_watermarks::WatermarkView = serde_json::from_value(json).expect("parse");
    assert_eq!(back, view);
}

/// Blocks (yielding) until `n` waiters are parked, with a bounded deadline.
fn wait_until_parked(handle: &WatermarkAdvanceHandle, n: usize) {
    let deadline = Instant::now() + LONG;
    while handle.lock().parked_waiters() < n {
        assert!(Instant::now() < deadline, "waiters never parked");
        thread::yield_now();
    }
}
