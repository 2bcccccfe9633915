//! `tidelog dump` run as a user would. What could go wrong: output that differs from
//! what was appended, a payload that breaks the line format or the JSON, filters that
//! drop or add records, a dump that writes to the database.
mod common;
use base64::Engine as _;
use common::*;

#[test]
fn dump_prints_exactly_what_was_appended_as_text_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let input: &[u8] = b"plain\nwith\ttab and \\ backslash\n\xff\xfe not utf8\ncaf\xc3\xa9\n";
    let out = tidelog(&["append", s(&db), "--lane", "7"], input);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let before = snapshot(&db);

    let out = tidelog(&["dump", s(&db)], b"");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        out.stderr.is_empty(),
        "no progress bar off a terminal: {}",
        text(&out.stderr)
    );
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 4);
    for (i, l) in lines.iter().enumerate() {
        let prefix = format!("lane=7 lane_seq={} global_seq={} wall_ms=", i + 1, i + 1);
        assert!(l.starts_with(&prefix), "{l}");
    }
    assert_eq!(
        payloads(&out.stdout),
        [
            "plain",
            "with\\ttab and \\\\ backslash",
            "\\xff\\xfe not utf8",
            "caf\u{e9}"
        ]
    );

    let out = tidelog(&["dump", s(&db), "--json"], b"");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let records: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let originals: Vec<&[u8]> = input.split(|b| *b == b'\n').take(4).collect();
    assert_eq!(records.len(), 4);
    for (i, (record, original)) in records.iter().zip(originals).enumerate() {
        assert_eq!(record["lane"], 7);
        assert_eq!(record["lane_seq"], i as u64 + 1);
        assert_eq!(record["global_seq"], i as u64 + 1);
        assert!(record["wall_ms"].as_u64().unwrap() > 1_600_000_000_000);
        let bytes = match (record.get("payload"), record.get("payload_base64")) {
            (Some(p), None) => p.as_str().unwrap().as_bytes().to_vec(),
            (None, Some(b)) => base64::engine::general_purpose::STANDARD
                .decode(b.as_str().unwrap())
                .unwrap(),
            other => panic!("exactly one payload field: {other:?}"),
        };
        assert_eq!(bytes, original, "record {i}");
    }
    assert!(
        records[2].get("payload_base64").is_some(),
        "not UTF-8 goes to base64"
    );
    assert_eq!(snapshot(&db), before, "dump changes nothing");
}

#[test]
fn lane_and_from_select_records_by_lane_sequence_or_global_sequence() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    for (lane, input) in [("1", "a1\na2\na3\n"), ("2", "b1\nb2\n"), ("1", "a4\n")] {
        assert!(
            tidelog(&["append", s(&db), "--lane", lane], input.as_bytes())
                .status
                .success()
        );
    }
    let dump = |args: &[&str]| {
        let mut all = vec!["dump", s(&db)];
        all.extend_from_slice(args);
        let out = tidelog(&all, b"");
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        payloads(&out.stdout)
    };
    assert_eq!(dump(&[]), ["a1", "a2", "a3", "b1", "b2", "a4"]);
    assert_eq!(dump(&["--from", "4"]), ["b1", "b2", "a4"]);
    assert_eq!(dump(&["--lane", "1"]), ["a1", "a2", "a3", "a4"]);
    assert_eq!(dump(&["--lane", "1", "--from", "3"]), ["a3", "a4"]);
    assert_eq!(dump(&["--lane", "2", "--from", "2"]), ["b2"]);
    assert!(dump(&["--lane", "9"]).is_empty());
    assert!(dump(&["--from", "100"]).is_empty());
}

#[test]
fn a_dump_across_many_segments_returns_every_record_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let db = database(dir.path(), 1500);
    assert!(segments(&db).len() > 3, "the log rotated");
    let out = tidelog(&["dump", s(&db)], b"");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let expected: Vec<String> = (1..=1500).map(line).collect();
    assert_eq!(payloads(&out.stdout), expected);
    let out = tidelog(&["dump", s(&db), "--from", "1400"], b"");
    assert_eq!(payloads(&out.stdout), expected[1399..].to_vec());
}

#[test]
fn a_database_with_no_records_dumps_nothing_and_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    assert!(tidelog(&["append", s(&db), "--lane", "1"], b"")
        .status
        .success());
    let out = tidelog(&["dump", s(&db)], b"");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty());
    let out = tidelog(&["stats", s(&db), "--json"], b"");
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stats["records"], 0);
}
