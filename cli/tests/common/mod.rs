//! Running the `tidelog` binary as a user would, and building databases to run it on.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Small segments so a few hundred records rotate.
pub const SEGMENT: u64 = 64 * 1024;

/// Runs `tidelog args...` with `stdin` and waits for it.
pub fn tidelog(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = spawn(args);
    let written = child.stdin.take().expect("stdin").write_all(stdin);
    // A command that refuses at once never reads its input.
    if let Err(e) = written {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "write stdin: {e}");
    }
    child.wait_with_output().expect("wait")
}

/// Starts `tidelog args...` with every stream piped.
pub fn spawn(args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_tidelog"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run tidelog")
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub fn s(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

/// The payload of line `i` of `lines`: unique, searchable in the segment files.
pub fn line(i: usize) -> String {
    format!("record-{i:06}-{}", "x".repeat(90))
}

pub fn lines(range: std::ops::RangeInclusive<usize>) -> String {
    range.map(|i| line(i) + "\n").collect()
}

/// A database in `dir/db` with `count` records (lines `1..=count`) on lane 1, in 64 KiB
/// segments.
pub fn database(dir: &Path, count: usize) -> PathBuf {
    let db = dir.join("db");
    let out = tidelog(
        &[
            "append",
            s(&db),
            "--lane",
            "1",
            "--segment-size",
            &SEGMENT.to_string(),
        ],
        lines(1..=count).as_bytes(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).lines().count(), count);
    db
}

/// The payloads of `dump`'s plain output.
pub fn payloads(stdout: &[u8]) -> Vec<String> {
    text(stdout)
        .lines()
        .map(|l| {
            l.split_once(" payload=")
                .unwrap_or_else(|| panic!("no payload in {l:?}"))
                .1
                .to_owned()
        })
        .collect()
}

/// Every file under `dir` with its bytes, sorted.
pub fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap();
                out.push((path, bytes));
            }
        }
    }
    out.sort();
    out
}

/// The log's segment files, in order.
pub fn segments(db: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(db.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    files.sort();
    files
}

/// The segment holding `needle`, and its offset there.
pub fn find(db: &Path, needle: &[u8]) -> (PathBuf, usize) {
    for path in segments(db) {
        let bytes = std::fs::read(&path).unwrap();
        if let Some(at) = bytes.windows(needle.len()).position(|w| w == needle) {
            return (path, at);
        }
    }
    panic!("{} not found", String::from_utf8_lossy(needle));
}

pub fn patch(path: &Path, at: u64, bytes: &[u8]) {
    use std::io::{Seek, SeekFrom};
    let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.seek(SeekFrom::Start(at)).unwrap();
    f.write_all(bytes).unwrap();
    f.sync_all().unwrap();
}

/// Waits (bounded) until `condition` holds; panics with `what` otherwise.
pub fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let started = Instant::now();
    while !condition() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}
