//! `tidelog backup`, `truncate` and `completions` as a user would run them. What could go
//! wrong: a backup taken while another process appends that does not open, holds a
//! record the source never made durable, misses one acknowledged before it began, or
//! overwrites a database; a truncate that removes what recovery needs or does not say
//! what holds the log; completions that do not name the commands.
mod common;
use common::*;
use std::io::{BufRead, BufReader, Write};

#[test]
fn a_backup_during_appends_by_another_process_opens_to_a_consistent_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let db = database(dir.path(), 1);
    let mut child = spawn(&["append", s(&db), "--lane", "1"]);
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let feeder = std::thread::spawn(move || {
        for chunk in (2..=3000).collect::<Vec<_>>().chunks(100) {
            let text = lines(chunk[0]..=chunk[chunk.len() - 1]);
            stdin.write_all(text.as_bytes()).unwrap();
        }
    });
    // Wait until a good part is acknowledged, then back up while the rest goes in.
    let mut acknowledged = 1;
    let mut receipt = String::new();
    while acknowledged < 500 {
        receipt.clear();
        stdout.read_line(&mut receipt).unwrap();
        acknowledged += 1;
    }
    let copy = dir.path().join("copy");
    let out = tidelog(&["backup", s(&db), s(&copy), "--json"], b"");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["beside_a_writer"], true, "{report}");
    let point = report["point"].as_u64().unwrap();
    let receipts = std::thread::spawn(move || acknowledged + stdout.lines().count());
    feeder.join().unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(receipts.join().unwrap(), 3000);
    assert!(
        point >= 500,
        "the copy misses acknowledged records: {point}"
    );
    assert!(copy.join("BACKUP").exists());
    // The copy is a database of its own: clean, exactly the source's first `point`.
    let out = tidelog(&["verify", s(&copy)], b"");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    let got = payloads(&tidelog(&["dump", s(&copy)], b"").stdout);
    assert_eq!(got, (1..=point as usize).map(line).collect::<Vec<_>>());
    // It takes appends of its own, after the point.
    let out = tidelog(&["append", s(&copy), "--lane", "1"], b"more\n");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        format!("lane=1 lane_seq={} global_seq={}\n", point + 1, point + 1)
    );
    // A destination that holds a database is refused and left alone.
    let before = snapshot(&copy);
    let out = tidelog(&["backup", s(&db), s(&copy)], b"");
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("already holds a tidelog database"));
    assert_eq!(snapshot(&copy), before);
}

#[test]
fn a_backup_with_no_writer_running_copies_everything() {
    let dir = tempfile::tempdir().unwrap();
    let db = database(dir.path(), 300);
    let copy = dir.path().join("copy");
    let out = tidelog(&["backup", s(&db), s(&copy)], b"");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("every record up to global sequence 300"),
        "{}",
        text(&out.stdout)
    );
    let got = payloads(&tidelog(&["dump", s(&copy)], b"").stdout);
    assert_eq!(got, (1..=300).map(line).collect::<Vec<_>>());
    // The source had had two writers (the one that built it, the backup's); the copy
    // takes a writer of its own after them.
    let out = tidelog(&["append", s(&copy), "--lane", "1"], b"more\n");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "lane=1 lane_seq=301 global_seq=301\n");
}

#[test]
fn a_backup_into_the_database_it_copies_is_refused_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = database(dir.path(), 50);
    let before = snapshot(&db);
    let inside = db.join("backups").join("today");
    let through_dots = dir.path().join("db").join("..").join("db").join("copy");
    for dest in [&inside, &db.join("wal").join("copy"), &through_dots] {
        let out = tidelog(&["backup", s(&db), s(dest)], b"");
        assert_eq!(
            out.status.code(),
            Some(1),
            "{dest:?}: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stderr).contains("lies inside the database"),
            "{dest:?}: {}",
            text(&out.stderr)
        );
        assert_eq!(snapshot(&db), before, "{dest:?}");
        assert!(!db.join("backups").exists() && !db.join("copy").exists());
    }
    // Beside a writer (the copy from files), the same.
    let mut writer = spawn(&["append", s(&db), "--lane", "2"]);
    let mut stdin = writer.stdin.take().unwrap();
    stdin.write_all(b"one\n").unwrap();
    let mut receipt = String::new();
    BufReader::new(writer.stdout.take().unwrap())
        .read_line(&mut receipt)
        .unwrap();
    assert!(receipt.starts_with("lane=2"), "{receipt}");
    let out = tidelog(&["backup", s(&db), s(&inside)], b"");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("lies inside the database"));
    assert!(!db.join("backups").exists());
    drop(stdin);
    assert!(writer.wait().unwrap().success());
}

#[test]
fn truncate_without_a_checkpoint_frees_nothing_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let db = database(dir.path(), 2000);
    let segments_before = segments(&db).len();
    assert!(segments_before > 2);
    let out = tidelog(&["truncate", s(&db)], b"");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("removed 0 segments"), "{stdout}");
    assert!(stdout.contains("no checkpoint yet"), "{stdout}");
    assert_eq!(
        payloads(&tidelog(&["dump", s(&db)], b"").stdout).len(),
        2000
    );
    // While another process writes, it needs the database to itself.
    let mut child = spawn(&["append", s(&db), "--lane", "1"]);
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    stdin.write_all(b"x\n").unwrap();
    stdin.flush().unwrap();
    let mut receipt = String::new();
    stdout.read_line(&mut receipt).unwrap();
    let out = tidelog(&["truncate", s(&db)], b"");
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    drop(stdin);
    assert!(child.wait().unwrap().success());
}

#[test]
fn completions_name_every_command_for_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let out = tidelog(&["completions", shell], b"");
        assert_eq!(out.status.code(), Some(0), "{shell}");
        let script = text(&out.stdout);
        for command in ["append", "dump", "backup", "truncate", "verify"] {
            assert!(script.contains(command), "{shell}: {command}");
        }
    }
    assert_eq!(
        tidelog(&["completions", "tcsh"], b"").status.code(),
        Some(64)
    );
}

#[test]
fn truncate_frees_the_segments_below_the_newest_checkpoint_and_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = database(dir.path(), 2000);
    {
        let options = tidelog::Options::default()
            .segment_size(SEGMENT)
            .max_record_bytes(32 * 1024)
            .max_batch_bytes(32 * 1024)
            // The checkpoint leaves the log alone: `tidelog truncate` is what frees it.
            .checkpoints(tidelog::checkpoint::CheckpointOptions {
                auto_truncate: false,
                ..Default::default()
            });
        let engine = tidelog::Engine::open(&db, options).unwrap();
        let point = engine.sync().unwrap();
        engine.checkpoint(point, b"state at 2000").unwrap();
        engine.close().unwrap();
    }
    let out = tidelog(&["truncate", s(&db), "--json"], b"");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let removed = report["removed_segments"].as_u64().unwrap() as usize;
    assert!(
        segments(&db).iter().all(|p| !p
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("00000000000000000001.")),
        "the first segment is gone"
    );
    assert!(removed > 0, "{report}");
    assert!(report["freed_bytes"].as_u64().unwrap() >= removed as u64 * SEGMENT);
    assert!(
        report["held_by"][0].as_str().unwrap().contains("at 2000"),
        "{report}"
    );
    // What is left still opens, from the checkpoint on.
    let out = tidelog(&["verify", s(&db)], b"");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
}
