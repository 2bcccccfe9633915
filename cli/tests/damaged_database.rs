//! The commands on damaged databases. What could go wrong: damaged durable data printed
//! as if it were a record, reported with the wrong exit code or without its file and
//! offset, repaired by a command that must not change anything, or dropped by `recover`
//! without saying so; a torn tail mistaken for corruption.
mod common;
use common::*;

/// A database of 1500 records whose record 100 (in the first, sealed segment) has one
/// byte flipped. Returns the database and the damaged segment.
fn damaged(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let db = database(dir, 1500);
    let (segment, at) = find(&db, line(100).as_bytes());
    assert_eq!(segment, segments(&db)[0]);
    let byte = std::fs::read(&segment).unwrap()[at + 20];
    patch(&segment, at as u64 + 20, &[byte ^ 0x40]);
    (db, segment)
}

#[test]
fn damage_in_a_sealed_segment_stops_dump_and_stats_with_exit_3_after_the_valid_records() {
    let dir = tempfile::tempdir().unwrap();
    let (db, segment) = damaged(dir.path());
    let before = snapshot(&db);

    let out = tidelog(&["dump", s(&db)], b"");
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert_eq!(
        payloads(&out.stdout),
        (1..=99).map(line).collect::<Vec<_>>(),
        "exactly the records before the damage, never the damaged bytes"
    );
    let stderr = text(&out.stderr);
    assert!(stderr.contains(s(&segment)), "{stderr}");
    assert!(stderr.contains("durable data is corrupt"), "{stderr}");
    assert!(stderr.contains("at offset"), "{stderr}");

    let out = tidelog(&["dump", s(&db), "--json"], b"");
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(text(&out.stdout).lines().count(), 99);

    let out = tidelog(&["stats", s(&db)], b"");
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains(s(&segment)));

    let out = tidelog(&["verify", s(&db), "--json"], b"");
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["verdict"], "corrupt");
    let finding = &report["findings"][0];
    assert_eq!(finding["file"], s(&segment));
    assert_eq!(finding["kind"], "corrupt-frame");
    assert!(finding["offset"].as_u64().unwrap() > 0);

    let out = tidelog(&["recover", s(&db)], b"");
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("corrupt"),
        "{}",
        text(&out.stderr)
    );
    // Opening takes (and, refused, releases) the writer lease before recovery: only the
    // liveness files and the lease's own files may change.
    let without_lock = |snap: Vec<(std::path::PathBuf, Vec<u8>)>| {
        snap.into_iter()
            .filter(|(p, _)| {
                !p.components()
                    .any(|c| c.as_os_str() == "lease" || c.as_os_str() == "holders")
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        without_lock(snapshot(&db)),
        without_lock(before),
        "nothing changed"
    );
}

#[test]
fn skip_corrupted_recovers_and_reads_everything_but_the_damaged_record() {
    // The damaged record is alone in its lane (a hole inside a lane is covered by the
    // engine's own test, `a_record_skipped_as_corrupt_reads_as_absent_...`).
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let size = SEGMENT.to_string();
    for (lane, input) in [
        ("1", lines(1..=99)),
        ("9", "lonely record\n".to_owned()),
        ("1", lines(100..=1500)),
    ] {
        let out = tidelog(
            &["append", s(&db), "--lane", lane, "--segment-size", &size],
            input.as_bytes(),
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    let (segment, at) = find(&db, b"lonely record");
    // Each `append` run is a new writer tenure and starts a segment of its own; the
    // damage must be in a sealed one, not the last.
    assert_ne!(Some(&segment), segments(&db).last());
    patch(&segment, at as u64 + 3, b"L");

    let out = tidelog(
        &["recover", s(&db), "--mode", "skip-corrupted", "--json"],
        b"",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["clean"], false);
    let skipped = report["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 1, "{report}");
    assert_eq!(skipped[0]["file"], s(&segment));
    assert_eq!(skipped[0]["first_lost_global_seq"], 100);
    assert_eq!(skipped[0]["resumed_at_global_seq"], 101);
    assert_eq!(report["records"], 1500);

    // The damaged bytes stay on disk, and the extent record remembers their loss was
    // accepted: dump passes over them saying so, and the database is appendable again.
    let out = tidelog(&["dump", s(&db)], b"");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        payloads(&out.stdout),
        (1..=1500).map(line).collect::<Vec<_>>()
    );
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("global sequences 100 to 100 were lost and the loss was accepted"),
        "{stderr}"
    );
    let out = tidelog(&["append", s(&db), "--lane", "1", "--json"], b"after\n");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let receipt: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(receipt["global_seq"].as_u64().unwrap() > 1500, "{receipt}");
    assert_eq!(tidelog(&["verify", s(&db)], b"").status.code(), Some(0));
}

#[test]
fn tolerate_tail_cuts_the_log_at_the_damage_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = damaged(dir.path());
    let out = tidelog(&["recover", s(&db), "--mode", "tolerate-tail"], b"");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report = text(&out.stdout);
    assert!(report.starts_with("repaired: "), "{report}");
    assert!(report.contains("skipped damaged durable data"), "{report}");
    assert!(
        report.contains("removed"),
        "later segments are removed: {report}"
    );
    assert!(
        report.contains("accepted the loss of global sequences 100 to"),
        "{report}"
    );
    let out = tidelog(&["dump", s(&db)], b"");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let printed = payloads(&out.stdout);
    assert_eq!(printed[..99], (1..=99).map(line).collect::<Vec<_>>()[..]);
    assert_eq!(
        printed.len(),
        100,
        "the survivors and the record of the loss"
    );
    assert!(
        printed[99].contains("were lost and the loss was accepted"),
        "{}",
        printed[99]
    );
    assert_eq!(tidelog(&["verify", s(&db)], b"").status.code(), Some(0));
    // The cut sequences were acknowledged: they are never handed out again.
    let out = tidelog(&["append", s(&db), "--lane", "1", "--json"], b"after\n");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let receipt: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(receipt["global_seq"].as_u64().unwrap() > 1500, "{receipt}");
}

#[test]
fn a_torn_tail_is_exit_2_for_verify_invisible_to_dump_and_cut_by_recover() {
    let dir = tempfile::tempdir().unwrap();
    let db = database(dir.path(), 50);
    let out = tidelog(&["stats", s(&db), "--json"], b"");
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let end = &stats["end"];
    assert_eq!(end["kind"], "clean");
    // Half a frame of garbage where the next record would go: what a crash during a write
    // leaves behind.
    let file = std::path::PathBuf::from(end["file"].as_str().unwrap());
    let offset = end["offset"].as_u64().unwrap();
    patch(&file, offset, &[0xAB; 40]);

    let out = tidelog(&["verify", s(&db)], b"");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains("torn tail"),
        "{}",
        text(&out.stdout)
    );
    let out = tidelog(&["dump", s(&db)], b"");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        payloads(&out.stdout),
        (1..=50).map(line).collect::<Vec<_>>()
    );
    let out = tidelog(&["stats", s(&db), "--json"], b"");
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stats["end"]["kind"], "tail");
    assert_eq!(stats["end"]["offset"], offset);

    let out = tidelog(&["recover", s(&db), "--json"], b"");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["torn_tail"]["offset"], offset, "{report}");
    assert_eq!(report["torn_tail"]["bytes_dropped"], 40);
    assert_eq!(report["records"], 50);
    assert_eq!(tidelog(&["verify", s(&db)], b"").status.code(), Some(0));
    assert_eq!(payloads(&tidelog(&["dump", s(&db)], b"").stdout).len(), 50);
}

#[test]
fn a_missing_segment_or_a_foreign_file_in_the_log_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let db = database(dir.path(), 1500);
    let stray = db.join("wal").join("notes.txt");
    std::fs::write(&stray, b"hello").unwrap();
    for command in ["dump", "stats", "verify"] {
        let out = tidelog(&[command, s(&db)], b"");
        assert_eq!(
            out.status.code(),
            Some(3),
            "{command}: {}",
            text(&out.stderr)
        );
        assert!(out.stdout.is_empty() || command == "verify");
    }
    std::fs::remove_file(&stray).unwrap();
    std::fs::remove_file(&segments(&db)[1]).unwrap();
    for command in ["dump", "stats", "verify", "recover"] {
        let out = tidelog(&[command, s(&db)], b"");
        assert_eq!(
            out.status.code(),
            Some(3),
            "{command}: {}",
            text(&out.stderr)
        );
    }
}
