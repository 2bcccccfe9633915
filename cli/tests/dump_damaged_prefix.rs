//! `dump` on a log damaged in its segment list (a middle segment deleted, a bad header
//! in a later segment, a sealed segment cut short), with real files. What could go
//! wrong: `dump` printing nothing because the damage is found before the first record
//! is read, printing records past the damage, or exiting 0 without naming the damage.
mod common;
use common::*;
use std::path::Path;

/// The first global sequence of segment `pos` (0-based), read from the intact log.
fn first_seq_of(db: &Path, pos: usize) -> usize {
    let snapshot = tidelog::wal::scan::LogSnapshot::take(&db.join("wal")).unwrap();
    let header = snapshot.segments()[pos]
        .header
        .expect("a segment with data");
    usize::try_from(header.first_seq.0).unwrap()
}

/// `dump` prints exactly records `1..=readable`, then exits 3 naming `file` and `what`.
fn dump_prints_the_prefix(db: &Path, readable: usize, file: &Path, what: &str) {
    let out = tidelog(&["dump", s(db)], b"");
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert_eq!(
        payloads(&out.stdout),
        (1..=readable).map(line).collect::<Vec<_>>(),
        "every record before the damage, in order, and none after"
    );
    let stderr = text(&out.stderr);
    let name = file.file_name().unwrap().to_str().unwrap();
    assert!(stderr.contains(name), "{stderr}");
    assert!(stderr.contains(what), "{stderr}");
}

#[test]
fn dump_prints_the_records_before_a_deleted_middle_segment_then_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    let db = database(dir.path(), 1500);
    let all = segments(&db);
    assert!(all.len() >= 4, "{} segments", all.len());
    let readable = first_seq_of(&db, 1) - 1;
    assert!(readable > 0);
    std::fs::remove_file(&all[1]).unwrap();
    dump_prints_the_prefix(&db, readable, &all[2], "missing");
}

#[test]
fn dump_prints_the_records_before_a_bad_header_in_a_later_segment_then_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    let db = database(dir.path(), 1500);
    let all = segments(&db);
    assert!(all.len() >= 4, "{} segments", all.len());
    let readable = first_seq_of(&db, 2) - 1;
    // The magic bytes of the third segment's header.
    patch(&all[2], 0, b"NOTALOG!");
    dump_prints_the_prefix(&db, readable, &all[2], "header");
}

#[test]
fn dump_prints_the_records_before_a_truncated_sealed_segment_then_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    let db = database(dir.path(), 1500);
    let all = segments(&db);
    assert!(all.len() >= 4, "{} segments", all.len());
    let readable = first_seq_of(&db, 1) - 1;
    let len = std::fs::metadata(&all[1]).unwrap().len();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&all[1])
        .unwrap();
    file.set_len(len / 2).unwrap();
    drop(file);
    dump_prints_the_prefix(&db, readable, &all[1], "");
}
