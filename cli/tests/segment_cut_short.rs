//! The commands on a database whose newest segment file was cut short with `truncate -s`,
//! with real files. What could go wrong: every command refusing the file at its header's
//! size check so nothing gets past it; `dump` printing nothing of the cut file; `verify`
//! not saying what is missing; `recover --mode tolerate-tail` cutting away records that
//! were acknowledged (or refusing a cut that took none); the file left short so `append`
//! fails after recovery; a sequence handed out twice.
mod common;
use common::*;
use std::path::Path;

fn receipt(out: &std::process::Output) -> serde_json::Value {
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `truncate -s LEN PATH`, the tool an operator would use.
fn truncate(path: &Path, len: usize) {
    let out = std::process::Command::new("truncate")
        .args(["-s", &len.to_string(), s(path)])
        .output()
        .expect("run truncate");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(std::fs::metadata(path).unwrap().len(), len as u64);
}

/// The log's files and its extent record (the lease files change on every open).
fn log_files(db: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut files = snapshot(&db.join("wal"));
    files.push((db.join("EXTENT"), std::fs::read(db.join("EXTENT")).unwrap()));
    files
}

/// `verify` exits 3 naming the cut (and, if `lost`, the acknowledged records gone);
/// `dump` prints records `1..=readable` then exits 3 naming the file.
fn verify_and_dump_see_the_cut(db: &Path, file: &Path, readable: usize, lost: bool) {
    let out = tidelog(&["verify", s(db)], b"");
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stdout));
    let report = text(&out.stdout);
    assert!(report.starts_with("corrupt"), "{report}");
    assert!(report.contains("cut short"), "{report}");
    assert_eq!(report.contains("had been acknowledged"), lost, "{report}");

    let out = tidelog(&["dump", s(db)], b"");
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert_eq!(
        payloads(&out.stdout),
        (1..=readable).map(line).collect::<Vec<_>>(),
        "every record readable in the cut file too"
    );
    let name = file.file_name().unwrap().to_str().unwrap();
    assert!(text(&out.stderr).contains(name), "{}", text(&out.stderr));
}

#[test]
fn a_cut_that_took_acknowledged_records_is_named_and_only_accept_loss_opens_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = database(dir.path(), 1500);
    let (holder, at) = find(&db, line(1490).as_bytes());
    assert_eq!(find(&db, line(1500).as_bytes()).0, holder);
    truncate(&holder, at);
    verify_and_dump_see_the_cut(&db, &holder, 1489, true);

    let before = log_files(&db);
    for mode in ["absolute", "tolerate-tail", "skip-corrupted"] {
        let out = tidelog(&["recover", s(&db), "--mode", mode], b"");
        assert_eq!(out.status.code(), Some(3), "{mode}: {}", text(&out.stderr));
        let stderr = text(&out.stderr);
        assert!(stderr.contains("1500 had been acknowledged"), "{stderr}");
        assert!(stderr.contains("accept-loss"), "{stderr}");
    }
    let out = tidelog(&["append", s(&db), "--lane", "1"], b"more\n");
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(text(&out.stdout).is_empty(), "no receipt");
    assert!(log_files(&db) == before, "refusals changed the log");

    let out = tidelog(&["recover", s(&db), "--mode", "accept-loss"], b"");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report = text(&out.stdout);
    assert!(
        report.contains("accepted the loss of global sequences 1490 to 1500"),
        "{report}"
    );
    assert!(report.contains("was cut short"), "{report}");
    assert_eq!(std::fs::metadata(&holder).unwrap().len(), SEGMENT);
    let r = receipt(&tidelog(
        &["append", s(&db), "--lane", "1", "--json"],
        b"after\n",
    ));
    assert!(r["global_seq"].as_u64().unwrap() > 1500, "{r}");
    assert!(r["lane_seq"].as_u64().unwrap() > 1500, "{r}");
    let out = tidelog(&["verify", s(&db)], b"");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
}

#[test]
fn a_cut_that_took_nothing_acknowledged_is_cut_by_tolerate_tail_and_the_writer_continues() {
    let dir = tempfile::tempdir().unwrap();
    let db = database(dir.path(), 1500);
    let (holder, at) = find(&db, line(1500).as_bytes());
    // Past the last record, into the preallocated zeros (the record may sit near the end
    // of its segment, depending on how the group commits fell: never into its reserved
    // last sector).
    let len = (at + 1024).min(SEGMENT as usize - 256);
    assert!(
        len > at + line(1500).len() + 64,
        "the cut must be past the record"
    );
    truncate(&holder, len);
    verify_and_dump_see_the_cut(&db, &holder, 1500, false);

    let before = log_files(&db);
    let out = tidelog(&["append", s(&db), "--lane", "1"], b"more\n");
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("tolerate-tail"),
        "{}",
        text(&out.stderr)
    );
    assert!(log_files(&db) == before, "a refusal changed the log");

    let out = tidelog(&["recover", s(&db), "--mode", "tolerate-tail"], b"");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("was cut short"),
        "{}",
        text(&out.stdout)
    );
    assert!(
        !text(&out.stdout).contains("accepted the loss"),
        "nothing acknowledged was lost: {}",
        text(&out.stdout)
    );
    assert_eq!(std::fs::metadata(&holder).unwrap().len(), SEGMENT);
    let r = receipt(&tidelog(
        &["append", s(&db), "--lane", "1", "--json"],
        b"after\n",
    ));
    assert_eq!(r["global_seq"].as_u64(), Some(1501), "{r}");
    assert_eq!(
        find(&db, b"after").0,
        holder,
        "the writer continues in the restored file"
    );
    let out = tidelog(&["verify", s(&db)], b"");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    let out = tidelog(&["dump", s(&db)], b"");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(payloads(&out.stdout).len(), 1501);
}
