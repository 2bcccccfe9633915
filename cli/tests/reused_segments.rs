//! Segments that a checkpoint freed are reused by later appends, as a shell user runs it.
//! What could go wrong: a reused segment file, whose bytes after its new records are the
//! old records of its earlier life, makes `verify` report damage or a torn tail, makes
//! `dump` print an old record or stop early, or makes the next writer refuse to open.
mod common;
use common::*;

fn count_with_suffix(db: &std::path::Path, suffix: &str) -> usize {
    std::fs::read_dir(db.join("wal"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(suffix)
        })
        .count()
}

/// Segments whose header names format version 3 (a reused file).
fn reused_segments(db: &std::path::Path) -> usize {
    segments(db)
        .iter()
        .filter(|p| std::fs::read(p).unwrap()[8..12] == 3u32.to_le_bytes())
        .count()
}

#[test]
fn records_appended_into_reused_segments_are_dumped_alone_and_verify_is_clean() {
    let dir = tempfile::tempdir().unwrap();
    let db = database(dir.path(), 3000);
    let out = tidelog(&["checkpoint", s(&db), "--json"], b"");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let starts = report["log_starts_at"].as_u64().unwrap() as usize;
    assert_eq!(
        count_with_suffix(&db, ".seg.spare"),
        2,
        "two freed segments kept"
    );
    let stats = text(&tidelog(&["stats", s(&db)], b"").stdout);
    assert!(
        stats.contains(&format!(
            "spares      2 files, {} bytes (freed segments kept for reuse",
            2 * SEGMENT
        )),
        "{stats}"
    );

    // Two processes append after the checkpoint: their rotations take the spares.
    for range in [3001..=4000, 4001..=5000] {
        let out = tidelog(
            &["append", s(&db), "--lane", "1"],
            lines(range.clone()).as_bytes(),
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert_eq!(text(&out.stdout).lines().count(), range.count());
    }
    assert_eq!(count_with_suffix(&db, ".seg.spare"), 0);
    assert_eq!(reused_segments(&db), 2, "both spares became segments");

    let out = tidelog(&["verify", s(&db)], b"");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    let got = payloads(&tidelog(&["dump", s(&db)], b"").stdout);
    assert_eq!(got, (starts..=5000).map(line).collect::<Vec<_>>());
    let out = tidelog(&["stats", s(&db)], b"");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = tidelog(&["append", s(&db), "--lane", "1"], b"last\n");
    assert_eq!(
        text(&out.stdout),
        "lane=1 lane_seq=5001 global_seq=5001\n",
        "{}",
        text(&out.stderr)
    );
}
