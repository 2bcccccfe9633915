//! Bad command lines, missing and foreign directories. What could go wrong: a usage
//! error that exits with a code scripts read as something else (clap's 2 is `verify`'s
//! torn tail), a command that creates or changes a directory it was wrongly pointed at,
//! a command without help.
mod common;
use common::*;

#[test]
fn bad_command_lines_exit_64_with_a_usage_message() {
    for args in [
        &[][..],
        &["frobnicate"],
        &["dump"],
        &["append", "/tmp/x"],
        &["append", "/tmp/x", "--lane", "one"],
        &["append", "/tmp/x", "--lane", "1", "--sync", "sometimes"],
        &["recover", "/tmp/x", "--mode", "yolo"],
        &["bench", "--seconds", "0"],
        &["dump", "/tmp/x", "--from", "-3"],
    ] {
        let out = tidelog(args, b"");
        assert_eq!(
            out.status.code(),
            Some(64),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(out.stdout.is_empty(), "{args:?}");
        assert!(!out.stderr.is_empty(), "{args:?}");
    }
    let out = tidelog(
        &["append", "/tmp/x", "--lane", "1", "--sync", "sometimes"],
        b"",
    );
    assert!(text(&out.stderr).contains("expected `group`, `never`, N or Nms"));
}

#[test]
fn a_bad_segment_size_is_a_usage_error_that_creates_nothing_and_units_are_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    for bad in ["64XB", "1KiB", "5GiB", "5000", "", "1.5MiB"] {
        let out = tidelog(
            &["append", s(&db), "--lane", "1", "--segment-size", bad],
            b"x\n",
        );
        assert_eq!(out.status.code(), Some(64), "{bad}: {}", text(&out.stderr));
        assert!(
            text(&out.stderr).contains("--segment-size"),
            "{bad}: {}",
            text(&out.stderr)
        );
        assert!(!db.exists(), "{bad}: the directory was created");
    }
    let out = tidelog(
        &["append", s(&db), "--lane", "1", "--segment-size", "1MiB"],
        b"x\n",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(segments(&db)
        .iter()
        .all(|p| std::fs::metadata(p).unwrap().len() == 1 << 20));
    // The same size written another way is the same size; another one is refused, in
    // words a person reads.
    let out = tidelog(
        &["append", s(&db), "--lane", "1", "--segment-size", "1048576"],
        b"y\n",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = tidelog(
        &["append", s(&db), "--lane", "1", "--segment-size", "64MiB"],
        b"z\n",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("has segments of 1 MiB; --segment-size 64 MiB applies only"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn append_help_lists_every_exit_code_append_returns() {
    let out = tidelog(&["append", "--help"], b"");
    assert_eq!(out.status.code(), Some(0));
    let help = text(&out.stdout);
    let codes = help
        .split("Exit codes:")
        .nth(1)
        .unwrap_or_else(|| panic!("no exit codes in: {help}"));
    // Every code `append` can end with: success, failure, a damaged or shortened log,
    // a busy database, a conflict, a usage error, SIGINT and SIGTERM.
    for code in ["0 ", "1 ", "3 ", "4 ", "5 ", "64 ", "130/143 "] {
        assert!(
            codes.contains(code),
            "exit code {code}missing from: {codes}"
        );
    }
}

#[test]
fn every_command_has_help_with_examples_and_the_exit_codes_are_listed() {
    let out = tidelog(&["--help"], b"");
    assert_eq!(out.status.code(), Some(0));
    let help = text(&out.stdout);
    for needle in [
        "Exit codes:",
        "64",
        "demo",
        "append",
        "dump",
        "verify",
        "stats",
        "recover",
        "bench",
    ] {
        assert!(help.contains(needle), "{needle}: {help}");
    }
    for command in [
        "demo", "append", "dump", "verify", "stats", "recover", "bench",
    ] {
        let out = tidelog(&[command, "--help"], b"");
        assert_eq!(out.status.code(), Some(0), "{command}");
        assert!(
            text(&out.stdout).contains("Examples:"),
            "{command}: {}",
            text(&out.stdout)
        );
    }
    assert_eq!(tidelog(&["--version"], b"").status.code(), Some(0));
}

#[test]
fn a_missing_directory_is_refused_and_not_created_by_read_only_commands_and_recover() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nowhere");
    for command in ["dump", "stats", "verify", "recover"] {
        let out = tidelog(&[command, s(&missing)], b"");
        assert_eq!(out.status.code(), Some(1), "{command}");
        assert!(
            text(&out.stderr).contains("does not exist"),
            "{}",
            text(&out.stderr)
        );
        assert!(out.stdout.is_empty());
        assert!(!missing.exists(), "{command} created it");
    }
}

#[test]
fn a_foreign_directory_is_refused_by_every_command_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let foreign = dir.path().join("photos");
    std::fs::create_dir(&foreign).unwrap();
    std::fs::write(foreign.join("cat.jpg"), b"not a database").unwrap();
    let before = snapshot(&foreign);
    let runs: [&[&str]; 6] = [
        &["dump", s(&foreign)],
        &["stats", s(&foreign)],
        &["verify", s(&foreign)],
        &["recover", s(&foreign)],
        &["append", s(&foreign), "--lane", "1"],
        &[
            "demo",
            "--dir",
            s(&foreign),
            "--threads",
            "1",
            "--records",
            "1",
        ],
    ];
    for args in runs {
        let out = refused(args);
        assert!(
            text(&out.stderr).contains("is not a tidelog database"),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(!text(&out.stdout).contains("lane="), "{args:?}");
        assert_eq!(snapshot(&foreign), before, "{args:?} changed it");
    }
}

/// Runs `tidelog args...` with one line of input and checks it failed (exit 1).
fn refused(args: &[&str]) -> std::process::Output {
    let out = tidelog(args, b"record\n");
    assert_eq!(
        out.status.code(),
        Some(1),
        "{args:?}: {}",
        text(&out.stderr)
    );
    out
}

#[test]
fn a_file_given_as_the_database_is_refused_as_not_a_directory_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("notes.txt");
    std::fs::write(&file, b"not a database").unwrap();
    let copy = dir.path().join("copy");
    let runs: [&[&str]; 7] = [
        &["append", s(&file), "--lane", "1"],
        &["recover", s(&file)],
        &["dump", s(&file)],
        &["stats", s(&file)],
        &["verify", s(&file)],
        &["backup", s(&file), s(&copy)],
        &[
            "demo",
            "--dir",
            s(&file),
            "--threads",
            "1",
            "--records",
            "1",
        ],
    ];
    for args in runs {
        let message = text(&refused(args).stderr);
        assert!(
            message.contains("is not a directory") || message.contains("is not a tidelog database"),
            "{args:?}: {message}"
        );
        assert!(!message.contains("failed"), "{args:?}: {message}");
        assert_eq!(std::fs::read(&file).unwrap(), b"not a database", "{args:?}");
        assert!(!copy.exists(), "{args:?}");
    }
}

#[test]
fn a_database_of_a_newer_format_is_refused_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let db = database(dir.path(), 3);
    std::fs::write(
        db.join("TIDELOG"),
        "tidelog database\nformat_version = 99\n",
    )
    .unwrap();
    let before = snapshot(&db);
    for args in [
        &["dump", s(&db)][..],
        &["stats", s(&db)],
        &["verify", s(&db)],
        &["recover", s(&db)],
        &["append", s(&db), "--lane", "1"],
    ] {
        let out = tidelog(args, b"x\n");
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(
            text(&out.stderr).contains("99"),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    assert_eq!(snapshot(&db), before);
}
