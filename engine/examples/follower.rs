//! A follower process: this program opens a database as its writer, then starts itself
//! again as a second process (`follower.rs --follow DIR`) that forwards its appends to
//! the writer over the database's socket and reads every record back from the log files
//! as the writer makes them visible. One total order for both processes.
//!
//! `cargo run -p tidelog --example follower`

use std::process::Command;
use std::time::Duration;
use tidelog::{Appender, Engine, Follower, GlobalSeq, Options};

const EACH: u32 = 20;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if let [_, flag, dir] = &args[..] {
        if flag == "--follow" {
            return follow(dir);
        }
    }

    let dir = tempfile::tempdir()?;
    let writer = Engine::open(dir.path(), Options::default())?; // serves followers
    let child = Command::new(std::env::current_exe()?)
        .arg("--follow")
        .arg(dir.path())
        .spawn()?;
    for i in 0..EACH {
        writer.append_durable(1, format!("writer {i}"))?;
    }
    let output = child.wait_with_output()?;
    if !output.status.success() {
        return Err(format!("the follower process failed: {}", output.status).into());
    }
    let records = writer.scan_all(GlobalSeq(1))?.count();
    println!(
        "writer: {} records in one order from two processes",
        records
    );
    assert_eq!(records, 2 * EACH as usize);
    writer.close()?;
    Ok(())
}

/// The second process: append through the writer, then read everything back.
fn follow(dir: &str) -> Result<(), Box<dyn std::error::Error>> {
    let follower = Follower::connect(dir)?;
    for i in 0..EACH {
        let receipt = follower.append_durable(2, format!("follower {i}"))?;
        if i == 0 {
            println!(
                "follower: first forwarded record got global sequence {}",
                receipt.point.global_sequence
            );
        }
    }
    let mut records = follower.subscribe(GlobalSeq(1));
    let mut mine = 0;
    while mine < EACH {
        let record = records
            .next_timeout(Duration::from_secs(10))?
            .ok_or("the writer stopped publishing")?;
        if record.lane.0 == 2 {
            mine += 1;
        }
    }
    println!(
        "follower: read back all {mine} of its records, up to global sequence {}",
        records.position()
    );
    Ok(())
}
