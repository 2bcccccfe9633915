//! A reader that leaves early (`tidelog stats DIR | head -1`). What could go wrong: a
//! command panicking with "failed printing to stdout" and exiting 101, or `verify` losing
//! its verdict because nobody read its text.
mod common;
use common::*;
use std::process::{Command, Output, Stdio};

/// Runs `tidelog args...` with standard output a pipe whose reading end is already
/// closed, so the first line it prints meets a closed pipe, every time.
fn with_output_closed(args: &[&str]) -> Output {
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    Command::new(env!("CARGO_BIN_EXE_tidelog"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .expect("run tidelog")
}

#[test]
fn every_printing_command_ends_quietly_when_its_reader_has_gone() {
    let dir = tempfile::tempdir().unwrap();
    let db = database(dir.path(), 300);
    let backup = dir.path().join("copy");
    let commands: Vec<Vec<&str>> = vec![
        vec!["stats", s(&db)],
        vec!["stats", s(&db), "--json"],
        vec!["dump", s(&db)],
        vec!["recover", s(&db)],
        vec!["checkpoint", s(&db), "--at", "100"],
        vec!["truncate", s(&db)],
        vec!["backup", s(&db), s(&backup)],
        vec!["completions", "bash"],
        vec!["demo", "--records", "20", "--threads", "1"],
    ];
    for args in commands {
        let out = with_output_closed(&args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "tidelog {args:?}: {}",
            text(&out.stderr)
        );
        assert!(
            out.stderr.is_empty(),
            "tidelog {args:?} printed on standard error: {}",
            text(&out.stderr)
        );
    }
    // What the commands did before printing stands: the checkpoint is there, the copy too.
    let out = tidelog(&["verify", s(&backup)], b"");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = tidelog(&["stats", s(&db), "--json"], b"");
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stats["last_global_seq"], 300);
    assert!(
        stats["checkpoint_count"].as_u64().is_some_and(|n| n > 0),
        "{stats}"
    );
}

#[test]
fn verify_keeps_its_verdict_as_exit_status_when_its_reader_has_gone() {
    let dir = tempfile::tempdir().unwrap();
    let db = database(dir.path(), 300);
    assert_eq!(
        with_output_closed(&["verify", s(&db)]).status.code(),
        Some(0)
    );
    // Damage a durable record in the middle of the first segment.
    let first = segments(&db).into_iter().next().expect("a segment");
    let mut bytes = std::fs::read(&first).unwrap();
    let at = bytes
        .windows(13)
        .position(|w| w == b"record-000050")
        .unwrap();
    bytes[at] ^= 0xff;
    std::fs::write(&first, bytes).unwrap();
    let out = with_output_closed(&["verify", s(&db)]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
}
