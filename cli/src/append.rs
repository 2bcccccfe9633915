//! `tidelog append DIR --lane N`: stdin lines become records; a receipt line is printed
//! (and flushed) for each record only once it is durable.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use tidelog::{Engine, LaneSeq, Options, SyncPolicy};

/// Arguments of `append`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The database directory (created if missing).
    dir: PathBuf,
    /// The lane to append to.
    #[arg(long)]
    lane: u32,
    /// Segment size in bytes for a new database.
    #[arg(long, default_value_t = 64 * 1024 * 1024)]
    segment_size: u64,
    /// Sync policy: `group` (every group commit), `never` (only at the end), or a number N
    /// (every N records).
    #[arg(long, default_value = "group")]
    sync: String,
    /// Optimistic concurrency: the lane sequence the lane must be at before the first
    /// record (0 for an empty lane).
    #[arg(long)]
    expect: Option<u64>,
    /// Print receipts as JSON objects.
    #[arg(long)]
    json: bool,
}

fn parse_sync(text: &str) -> Result<SyncPolicy, String> {
    match text {
        "group" => Ok(SyncPolicy::EveryGroup),
        "never" => Ok(SyncPolicy::Never),
        n => n
            .parse::<u32>()
            .ok()
            .filter(|n| *n > 0)
            .map(SyncPolicy::EveryRecords)
            .ok_or_else(|| {
                format!("--sync must be `group`, `never` or a positive number, not {n:?}")
            }),
    }
}

/// Runs `append`.
pub fn run(args: &Args) -> Result<ExitCode, String> {
    let policy = parse_sync(&args.sync)?;
    let options = Options::default()
        .segment_size(args.segment_size)
        .sync_policy(policy);
    let engine = Engine::open(&args.dir, options).map_err(|e| e.to_string())?;
    let stdin = std::io::stdin();
    let mut stdout = std::io::stdout().lock();
    let mut expected = args.expect.map(LaneSeq);
    let mut pending = Vec::new();
    for line in stdin.lock().split(b'\n') {
        let mut payload = line.map_err(|e| format!("reading standard input failed: {e}"))?;
        if payload.last() == Some(&b'\r') {
            payload.pop();
        }
        let receipt = match expected {
            Some(lane_seq) => engine.append_expecting(args.lane, lane_seq, payload),
            None => engine.append(args.lane, payload),
        }
        .map_err(|e| e.to_string())?;
        expected = expected.map(|_| receipt.lane_seq);
        pending.push(receipt);
        if policy != SyncPolicy::Never {
            // Print every receipt that is durable by now, in order.
            let durable = engine.watermarks().global.durable_hlc;
            let ready = pending
                .iter()
                .take_while(|r| durable.covers(r.point))
                .count();
            for receipt in pending.drain(..ready) {
                print_receipt(&mut stdout, &receipt, args.json)?;
            }
        }
    }
    engine.sync().map_err(|e| e.to_string())?;
    for receipt in pending.drain(..) {
        print_receipt(&mut stdout, &receipt, args.json)?;
    }
    engine.close().map_err(|e| e.to_string())?;
    Ok(ExitCode::SUCCESS)
}

fn print_receipt(
    out: &mut impl Write,
    receipt: &tidelog::Receipt,
    json: bool,
) -> Result<(), String> {
    let line = if json {
        serde_json::json!({
            "lane": receipt.lane.get(),
            "lane_seq": receipt.lane_seq.get(),
            "global_seq": receipt.global_seq().get(),
        })
        .to_string()
    } else {
        format!(
            "lane={} lane_seq={} global_seq={}",
            receipt.lane,
            receipt.lane_seq,
            receipt.global_seq()
        )
    };
    writeln!(out, "{line}")
        .and_then(|()| out.flush())
        .map_err(|e| format!("writing standard output failed: {e}"))
}
