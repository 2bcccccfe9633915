//! A lane's applied watermark is the minimum over the appliers, as the global one is.
//! What could go wrong: the lane's applied taking the highest point any applier reports,
//! so `wait_for_applied_on_lane` returns before the slowest applier applied the record.

use std::time::Duration;
use tidelog::{Engine, HlcPoint, Options};

#[test]
fn lane_applied_waits_for_the_slowest_applier_of_the_lane() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), Options::default()).unwrap();
    let receipts: Vec<_> = (0..4)
        .map(|i| engine.append_durable(5, vec![i]).unwrap())
        .collect();
    let fast = engine.register_applier("fast", HlcPoint::ORIGIN);
    let slow = engine.register_applier("slow", HlcPoint::ORIGIN);
    let marks = engine.watermark_handle();

    fast.report_on_lane(5, receipts[3].point);
    slow.report_on_lane(5, receipts[1].point);
    let applied = marks.lock().lane_watermark(5).applied_hlc.global_sequence;
    assert_eq!(
        applied, receipts[1].point.global_sequence,
        "lane applied is not the minimum"
    );
    let err = marks.wait_for_applied_on_lane(5, receipts[3].point, Duration::from_millis(20));
    assert!(
        err.is_err(),
        "returned before the slow applier applied the record"
    );

    slow.report_on_lane(5, receipts[3].point);
    marks
        .wait_for_applied_on_lane(5, receipts[3].point, Duration::from_secs(5))
        .unwrap();
}

#[test]
fn an_applier_that_has_not_reported_on_a_lane_holds_it_at_its_global_position() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), Options::default()).unwrap();
    let receipts: Vec<_> = (0..4)
        .map(|i| engine.append_durable(5, vec![i]).unwrap())
        .collect();
    let a = engine.register_applier("a", HlcPoint::ORIGIN);
    let b = engine.register_applier("b", HlcPoint::ORIGIN);
    a.report_on_lane(5, receipts[3].point);
    let marks = engine.watermark_handle();
    assert!(marks
        .wait_for_applied_on_lane(5, receipts[0].point, Duration::from_millis(20))
        .is_err());
    // b applied the whole log up to receipts[2]: that covers lane 5 up to there.
    b.report(receipts[2].point);
    marks
        .wait_for_applied_on_lane(5, receipts[2].point, Duration::from_secs(5))
        .unwrap();
    assert!(marks
        .wait_for_applied_on_lane(5, receipts[3].point, Duration::from_millis(20))
        .is_err());
    // Once b goes away, only a counts.
    drop(b);
    marks
        .wait_for_applied_on_lane(5, receipts[3].point, Duration::from_secs(5))
        .unwrap();
}
