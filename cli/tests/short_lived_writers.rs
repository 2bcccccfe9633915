//! What could go wrong: every `tidelog append` run starts a new segment file and prepares
//! another, so a job appending one line at a time fills the disk with nearly empty
//! segments; or a command that has nothing to do (a `recover` of a clean log, a refused
//! `append --expect`, the read-only commands) still rewrites files in the database.
mod common;
use common::*;
use std::path::{Path, PathBuf};

/// Every entry under `dir`: directories by name, files with their bytes (so sizes and
/// contents), sorted.
fn tree(dir: &Path) -> Vec<(PathBuf, Option<Vec<u8>>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                out.push((path.clone(), None));
                stack.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap();
                out.push((path, Some(bytes)));
            }
        }
    }
    out.sort();
    out
}

/// How many one-line `append` processes to run: 200 by default (about 9 s on a 2-core
/// machine; 1,000 took 43 s there), `TIDELOG_SHORT_APPENDS=1000` for the figure.
fn runs() -> usize {
    std::env::var("TIDELOG_SHORT_APPENDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200)
}

#[test]
fn a_thousand_one_line_appends_keep_every_record_in_at_most_three_segments_and_no_other_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let runs = runs();
    // Small segments: 512 KiB, where every run costs one 512-byte sector.
    let size = (512 * 1024).to_string();
    for i in 1..=runs {
        let out = tidelog(
            &["append", s(&db), "--lane", "1", "--segment-size", &size],
            format!("{}\n", line(i)).as_bytes(),
        );
        assert!(out.status.success(), "run {i}: {}", text(&out.stderr));
        assert_eq!(
            text(&out.stdout),
            format!("lane=1 lane_seq={i} global_seq={i}\n"),
            "run {i}"
        );
    }
    let out = tidelog(&["dump", s(&db)], b"");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        payloads(&out.stdout),
        (1..=runs).map(line).collect::<Vec<_>>()
    );
    let segments = segments(&db);
    let wal_entries = std::fs::read_dir(db.join("wal")).unwrap().count();
    assert_eq!(
        wal_entries,
        segments.len(),
        "nothing but segments in the log folder"
    );
    assert!(
        segments.len() <= 3,
        "{runs} runs left {} segments: {segments:?}",
        segments.len()
    );
    assert_eq!(tidelog(&["verify", s(&db)], b"").status.code(), Some(0));
}

#[test]
fn commands_with_nothing_to_do_leave_the_directory_byte_for_byte_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let db = database(dir.path(), 40);
    // A second run continues the first one's segment.
    let out = tidelog(&["append", s(&db), "--lane", "2"], b"two\n");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let before = tree(&db);
    let size = (2 * SEGMENT).to_string();
    for (args, exit) in [
        (&["recover", s(&db)][..], 0),
        (&["recover", s(&db), "--json"], 0),
        (&["recover", s(&db), "--mode", "skip-corrupted"], 0),
        (&["append", s(&db), "--lane", "1", "--expect", "39"], 5),
        (&["append", s(&db), "--lane", "2", "--expect", "0"], 5),
        (
            &["append", s(&db), "--lane", "1", "--segment-size", &size],
            1,
        ),
        (&["dump", s(&db)], 0),
        (&["dump", s(&db), "--json"], 0),
        (&["stats", s(&db)], 0),
        (&["stats", s(&db), "--json"], 0),
        (&["verify", s(&db)], 0),
        (&["verify", s(&db), "--json"], 0),
    ] {
        let out = tidelog(args, b"more\n");
        assert_eq!(
            out.status.code(),
            Some(exit),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(tree(&db) == before, "{args:?} changed the directory");
    }
    let out = tidelog(&["recover", s(&db), "--json"], b"");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["clean"], true);
    assert_eq!(report["records"], 41);
    assert_eq!(report["last_global_seq"], 41);
    let out = tidelog(&["append", s(&db), "--lane", "1", "--expect", "39"], b"x\n");
    assert!(
        text(&out.stderr).contains("it is at 40"),
        "{}",
        text(&out.stderr)
    );
    // The right expectation still appends.
    let out = tidelog(&["append", s(&db), "--lane", "1", "--expect", "40"], b"x\n");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "lane=1 lane_seq=41 global_seq=42\n");
}
