//! SIGINT and SIGTERM during `tidelog append`. What could go wrong: the process dies
//! without a word, a printed receipt is not in the log, a temporary file is left for
//! `verify` to call a torn tail, the lease stays held by the stopped process, or the exit
//! code does not say which signal stopped it.
mod common;
use common::*;
use std::io::{BufRead, BufReader, Write};
use std::time::{Duration, Instant};

fn stop_with(signal: &str, code: i32) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let mut child = spawn(&["append", s(&db), "--lane", "1", "--segment-size", "64KiB"]);
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    // Enough to rotate segments, so one is being prepared in the background.
    stdin.write_all(lines(1..=1000).as_bytes()).unwrap();
    stdin.flush().unwrap();
    let mut receipts = Vec::new();
    for _ in 0..1000 {
        let mut receipt = String::new();
        stdout.read_line(&mut receipt).unwrap();
        receipts.push(receipt);
    }
    // Standard input stays open: the command is blocked reading it.
    let killed = std::process::Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "append did not stop on {signal}");
        std::thread::sleep(Duration::from_millis(10));
    };
    drop(stdin);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(code), "{signal}: {stderr}");
    assert!(rest.is_empty(), "{rest}");
    assert!(stderr.contains(&format!("SIG{signal}")), "{stderr}");
    // Clean: no temporary file, no torn tail, and every printed receipt in the log.
    let out = tidelog(&["verify", s(&db)], b"");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    let wal: Vec<String> = std::fs::read_dir(db.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(wal.iter().all(|name| name.ends_with(".seg")), "{wal:?}");
    let out = tidelog(&["dump", s(&db)], b"");
    assert_eq!(
        payloads(&out.stdout),
        (1..=1000).map(line).collect::<Vec<_>>()
    );
    // The lease was released: another writer gets in at once.
    let out = tidelog(&["stats", s(&db), "--json"], b"");
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stats["lease"]["live"], false, "{stats}");
    let out = tidelog(&["recover", s(&db)], b"");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

#[test]
fn sigint_stops_append_cleanly_with_every_receipt_durable_and_exits_130() {
    stop_with("INT", 130);
}

#[test]
fn sigterm_stops_append_cleanly_with_every_receipt_durable_and_exits_143() {
    stop_with("TERM", 143);
}
