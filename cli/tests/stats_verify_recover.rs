//! `tidelog stats`, `verify` and `recover` on healthy databases. What could go wrong:
//! figures that disagree with what was appended, verify or stats changing the database,
//! recover reporting a repair it did not make.
mod common;
use common::*;

#[test]
fn stats_reports_sequences_lanes_and_segments_of_what_was_appended() {
    let dir = tempfile::tempdir().unwrap();
    let db = database(dir.path(), 900);
    assert!(tidelog(&["append", s(&db), "--lane", "5"], b"x\ny\n")
        .status
        .success());
    let before = snapshot(&db);
    let out = tidelog(&["stats", s(&db), "--json"], b"");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stats["format_version"], 1);
    assert_eq!(stats["records"], 902);
    assert_eq!(stats["first_global_seq"], 1);
    assert_eq!(stats["last_global_seq"], 902);
    assert!(stats["last_wall_ms"].as_u64().unwrap() > 1_600_000_000_000);
    assert_eq!(stats["end"]["kind"], "clean");
    assert_eq!(
        stats["lanes"],
        serde_json::json!([
            {"lane": 1, "records": 900, "last_lane_seq": 900, "last_global_seq": 900,
             "only_in_checkpoint": false},
            {"lane": 5, "records": 2, "last_lane_seq": 2, "last_global_seq": 902,
             "only_in_checkpoint": false},
        ])
    );
    let segs = stats["segments"].as_array().unwrap();
    assert_eq!(segs.len(), segments(&db).len());
    assert_eq!(stats["segment_count"], segs.len());
    assert_eq!(stats["bytes"], SEGMENT * segs.len() as u64);
    // Data segments chain: each starts right after the one before, all records counted.
    let data: Vec<&serde_json::Value> = segs.iter().filter(|s| s["records"] != 0).collect();
    assert!(data.len() > 1);
    assert_eq!(data[0]["first_global_seq"], 1);
    for pair in data.windows(2) {
        assert_eq!(
            pair[1]["first_global_seq"].as_u64().unwrap(),
            pair[0]["last_global_seq"].as_u64().unwrap() + 1
        );
        assert_eq!(pair[0]["role"], "final");
        assert_eq!(pair[0]["sealed"], true);
    }
    assert_eq!(data.last().unwrap()["last_global_seq"], 902);
    assert_eq!(
        data.iter()
            .map(|s| s["records"].as_u64().unwrap())
            .sum::<u64>(),
        902
    );
    let plain = tidelog(&["stats", s(&db)], b"");
    assert_eq!(plain.status.code(), Some(0));
    let plain = text(&plain.stdout);
    assert!(
        plain.contains("records     902, global sequences 1 to 902"),
        "{plain}"
    );
    assert!(
        plain.contains("lane 5: 2 records, last lane sequence 2"),
        "{plain}"
    );
    assert_eq!(snapshot(&db), before, "stats changes nothing");
}

#[test]
fn verify_calls_a_healthy_database_clean_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = database(dir.path(), 600);
    let before = snapshot(&db);
    let out = tidelog(&["verify", s(&db), "--json"], b"");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["verdict"], "clean");
    assert_eq!(report["records"], 600);
    assert_eq!(report["last_global_seq"], 600);
    assert_eq!(report["findings"], serde_json::json!([]));
    let out = tidelog(&["verify", s(&db)], b"");
    assert!(
        text(&out.stdout).starts_with("clean: "),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(snapshot(&db), before);
}

#[test]
fn recover_on_a_healthy_database_reports_clean_and_keeps_every_record() {
    let dir = tempfile::tempdir().unwrap();
    let db = database(dir.path(), 300);
    for mode in ["absolute", "tolerate-tail", "skip-corrupted"] {
        let out = tidelog(&["recover", s(&db), "--mode", mode, "--json"], b"");
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["clean"], true, "{report}");
        assert_eq!(report["records"], 300);
        assert_eq!(report["last_global_seq"], 300);
    }
    let out = tidelog(&["dump", s(&db)], b"");
    assert_eq!(
        payloads(&out.stdout),
        (1..=300).map(line).collect::<Vec<_>>()
    );
}

#[test]
fn a_deleted_reserve_is_shown_by_stats_and_put_back_by_the_next_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let db = database(dir.path(), 300);
    let reserve_bytes = |db: &std::path::Path| {
        let out = tidelog(&["stats", s(db), "--json"], b"");
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        stats["reserve_bytes"].as_u64()
    };
    assert_eq!(reserve_bytes(&db), Some(256 * 1024));
    std::fs::remove_file(db.join("RESERVE")).unwrap();
    assert_eq!(reserve_bytes(&db), None);
    let out = tidelog(&["stats", s(&db)], b"");
    assert!(
        text(&out.stdout).contains("reserve     none (RESERVE is missing"),
        "{}",
        text(&out.stdout)
    );
    let out = tidelog(&["checkpoint", s(&db), "--at", "100"], b"");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(reserve_bytes(&db), Some(256 * 1024));
}
