//! A process that shares a database with others, for the multi-process tests:
//! `tidelog-shared-appender DIR NAME COUNT [--hold]`.
//!
//! Opens DIR as a [`Database`] (writer if it gets the lease, else follower), prints
//! `role writer`, `role writer fenced` (it took over from a writer whose process may still
//! run) or `role follower`, then appends COUNT durable records on lane 1 with
//! idempotency key and payload `NAME-i`, printing `ack NAME-i GLOBAL_SEQ` once each is
//! durable, and a new `role` line before the ack of the first append after its role
//! changed (a follower that took over, a writer that was deposed). An append whose answer was lost (`Unanswered`) or that found no writer
//! (`NoWriter`) is retried with the same key, so it lands exactly once. With `--hold` it
//! then keeps the database open until its standard input closes, so others can forward
//! to it.
#![allow(clippy::print_stdout)]

use std::io::{Read, Write};
use std::time::{Duration, Instant};
use tidelog::{AppendError, Appender, Database, Options};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(dir), Some(name), Some(count)) = (args.get(1), args.get(2), args.get(3)) else {
        eprintln!("usage: tidelog-shared-appender DIR NAME COUNT [--hold]");
        std::process::exit(64);
    };
    let Ok(count) = count.parse::<u32>() else {
        eprintln!("COUNT must be a number, got {count}");
        std::process::exit(64);
    };
    let hold = args.iter().any(|a| a == "--hold");
    let options = Options::default().lease_ttl(Duration::from_secs(2));
    let db = match Database::open(dir, options) {
        Ok(db) => db,
        Err(err) => {
            eprintln!("open failed: {err}");
            std::process::exit(1);
        }
    };
    let mut out = std::io::stdout().lock();
    let mut role = role_of(&db);
    let _ = writeln!(out, "role {role}");
    let _ = out.flush();
    for i in 0..count {
        let key = format!("{name}-{i}");
        let deadline = Instant::now() + Duration::from_secs(30);
        let receipt = loop {
            match db.append_idempotent(1, key.clone().into_bytes(), key.clone().into_bytes()) {
                Ok(receipt) => break receipt,
                Err(AppendError::Unanswered { .. } | AppendError::NoWriter { .. })
                    if Instant::now() < deadline =>
                {
                    std::thread::yield_now();
                }
                Err(err) => {
                    eprintln!("append {key} failed: {err}");
                    std::process::exit(1);
                }
            }
        };
        let now = role_of(&db);
        if now != role {
            let _ = writeln!(out, "role {now}");
            role = now;
        }
        let _ = writeln!(out, "ack {key} {}", receipt.point.global_sequence);
        let _ = out.flush();
    }
    if hold {
        let mut sink = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut sink);
    }
    if let Err(err) = db.close() {
        eprintln!("close failed: {err}");
        std::process::exit(1);
    }
}

/// `writer`, `writer fenced` (its recovery moved the log out of reach of a predecessor
/// that may still be running) or `follower`.
fn role_of(db: &Database) -> &'static str {
    match db.engine() {
        Some(engine) if engine.recovery_report().fenced_off.is_some() => "writer fenced",
        Some(_) => "writer",
        None => "follower",
    }
}
