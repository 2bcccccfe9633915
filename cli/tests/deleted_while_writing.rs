//! The database's files deleted while `tidelog append` writes to it. What could go wrong:
//! receipts printed for lines synced into a deleted file (they are gone), an exit code
//! of success, a message that does not say what happened.
mod common;
use common::*;
use std::io::{BufRead, BufReader, Write};

#[test]
fn append_prints_no_receipt_after_its_segment_file_is_deleted_and_fails_saying_why() {
    let dir = tempfile::tempdir().unwrap();
    let db = database(dir.path(), 10);
    let mut child = spawn(&["append", s(&db), "--lane", "1"]);
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    stdin.write_all(lines(11..=20).as_bytes()).unwrap();
    stdin.flush().unwrap();
    let mut receipt = String::new();
    for _ in 11..=20 {
        receipt.clear();
        stdout.read_line(&mut receipt).unwrap();
    }
    assert_eq!(receipt, "lane=1 lane_seq=20 global_seq=20\n");
    for segment in segments(&db) {
        std::fs::remove_file(segment).unwrap();
    }
    // Writing may fail once the writer has stopped reading: that is the point.
    let _ = stdin.write_all(lines(21..=30).as_bytes());
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let mut rest = Vec::new();
    std::io::Read::read_to_end(&mut stdout, &mut rest).unwrap();
    assert_eq!(
        text(&rest),
        "",
        "receipts for records synced into a deleted file"
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("deleted while the writer was using it"),
        "{}",
        text(&out.stderr)
    );
}
