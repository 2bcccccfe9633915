//! `tidelog stats DIR`: what the log holds, from disk, read-only (works while another
//! process writes). The durable point is what the log holds: every fully verified frame.

use crate::database::DatabaseDir;
use crate::error::{CliError, Exit};
use crate::output::{say, utc, Progress};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::PathBuf;
use tidelog::wal::scan::{LogEnd, LogSnapshot, ScanOptions, SegmentRole, SegmentSummary};
use tidelog::GlobalSeq;

/// Arguments of `stats`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Reports the format version; the last global sequence and its wall time; per lane the
record count and last lane sequence; the segments (count, bytes, each one's first and
last global sequence) and how the log ends (clean, sealed, or a torn or in-progress tail);
the checkpoints (each one's id, point, size, whether pinned, a milestone or damaged); the
writer lease (holder, fencing token) and the watermarks the writer published.
Reads every segment and checkpoint; exits 3 if durable log data is damaged, or if the log
is shorter than its extent record (<dir>/EXTENT) or the durable watermark the writer
published says it was (flagged as LOSS, with what is missing). (A damaged
checkpoint is reported, not an exit code: recovery skips it).

Examples:
  tidelog stats /var/lib/app/log
  tidelog stats /var/lib/app/log --json | jq .lanes")]
pub struct Args {
    /// The database directory.
    dir: PathBuf,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Default)]
struct LaneStats {
    records: u64,
    last_lane_seq: u64,
    last_global_seq: u64,
    /// Every record of the lane went with truncation; its head comes from the checkpoint.
    only_in_checkpoint: bool,
}

/// Runs `stats`.
pub fn run(args: &Args) -> Result<Exit, CliError> {
    let db = DatabaseDir::existing(&args.dir)?;
    let extent = db.extent()?;
    // Read before the log, so that records a live writer adds meanwhile never look like
    // a published point beyond the log.
    let published_before = tidelog::forward::read_published(&db.dir).ok();
    let accepted = extent
        .as_ref()
        .map(|e| e.accepted_losses.clone())
        .unwrap_or_default();
    let snapshot = LogSnapshot::take(&db.wal_dir())?.accepting(&accepted);
    let progress = Progress::bytes(snapshot.data_bytes(), "stats");
    let mut records = snapshot.records(GlobalSeq(1), ScanOptions::default());
    let mut lanes: BTreeMap<u32, LaneStats> = BTreeMap::new();
    let mut total = 0u64;
    let mut first = None;
    while let Some(record) = records.next() {
        let record = record?;
        total += 1;
        first.get_or_insert(record.global_seq.get());
        let lane = lanes.entry(record.lane.get()).or_default();
        lane.records += 1;
        lane.last_lane_seq = record.lane_seq.get();
        lane.last_global_seq = record.global_seq.get();
        if total.is_multiple_of(4096) {
            progress.set(records.bytes_read());
        }
    }
    progress.finish();
    let summaries: BTreeMap<u64, &SegmentSummary> = records
        .summaries()
        .iter()
        .map(|s| (s.index.get(), s))
        .collect();
    let segments: Vec<serde_json::Value> = snapshot
        .segments()
        .iter()
        .map(|info| {
            let summary = summaries.get(&info.index.get());
            json!({
                "index": info.index.get(),
                "file": info.path.display().to_string(),
                "bytes": info.len_bytes,
                "role": role_name(info.role),
                "first_global_seq": summary.and_then(|s| s.first_seq).map(GlobalSeq::get),
                "last_global_seq": summary.and_then(|s| s.last_seq).map(GlobalSeq::get),
                "records": summary.map_or(0, |s| s.records),
                "sealed": summary.is_some_and(|s| s.sealed),
            })
        })
        .collect();
    let (end, end_text) = describe_end(records.end());
    let bytes: u64 = snapshot.segments().iter().map(|s| s.len_bytes).sum();
    let last_seq = records.last_seq().map(GlobalSeq::get);
    let last_wall_ms = records.last_wall_ms();
    let loss = db.loss(
        extent.as_ref(),
        snapshot.segments(),
        GlobalSeq(last_seq.unwrap_or(0)),
    )?;
    // Freed segments kept for reuse: disk the log holds that no record is in.
    let spares: Vec<(String, u64)> = tidelog::wal::segment::spare_files(&db.wal_dir())
        .iter()
        .map(|path| {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            (name, std::fs::metadata(path).map_or(0, |m| m.len()))
        })
        .collect();
    let spare_bytes: u64 = spares.iter().map(|(_, len)| len).sum();
    // The room kept for freeing space on a full file system (None: there is none).
    let reserve_bytes = std::fs::metadata(db.dir.join(tidelog::reserve::RESERVE_FILE))
        .ok()
        .filter(std::fs::Metadata::is_file)
        .map(|m| m.len());
    let checkpoints = tidelog::checkpoint::list_checkpoints(&db.dir)?;
    let damaged = checkpoints.iter().filter(|c| c.is_damaged()).count();
    // A lane whose records all went with truncation still stands where the checkpoint
    // recovery starts from (the newest that verifies) says.
    if let Some(start) = checkpoints.iter().rev().find(|c| !c.is_damaged()) {
        for head in &start.lane_heads {
            lanes.entry(head.lane.get()).or_insert(LaneStats {
                records: 0,
                last_lane_seq: head.lane_seq.get(),
                last_global_seq: head.point.global_sequence,
                only_in_checkpoint: true,
            });
        }
    }
    let checkpoints_json: Vec<serde_json::Value> = checkpoints
        .iter()
        .map(|c| {
            json!({
                "id": c.info.id.0,
                "global_seq": c.info.point.global_sequence,
                "wall_ms": (!c.is_damaged()).then_some(c.info.point.wall_ms),
                "bytes": c.info.bytes,
                "pinned": c.info.pinned,
                "milestone": c.info.milestone,
                "damaged": c.is_damaged(),
                "problem": c.damage.map(|issue| issue.to_string()),
                "file": c.info.path.display().to_string(),
            })
        })
        .collect();
    let lease = writer_lease(&db.dir);
    let published = tidelog::forward::read_published(&db.dir).ok();
    // What the log says against what the writer published: a durable watermark above the
    // log's end means acknowledged records are gone.
    let contradiction = published_before
        .as_ref()
        .map(|p| p.global.durable_hlc.global_sequence)
        .filter(|durable| *durable > last_seq.unwrap_or(0))
        .map(|durable| {
            format!(
                "the writer published durable global sequence {durable} but the log ends at {}",
                last_seq.unwrap_or(0)
            )
        });
    let extent_json = extent.as_ref().map(|e| {
        json!({
            "durable_global_seq": e.durable_seq.get(),
            "first_segment": e.first_index,
            "last_segment": e.last_index,
            "closed_cleanly": e.closed_cleanly,
            "accepted_losses": e.accepted_losses.iter().map(|(a, b)| json!([a.get(), b.get()])).collect::<Vec<_>>(),
        })
    });
    let loss_json = loss.as_ref().map(|l| {
        json!({
            "missing_segments": l.missing_segments.iter().map(|(a, b)| json!([a.get(), b.get()])).collect::<Vec<_>>(),
            "log_ends_at": l.log_ends_at.get(),
            "acknowledged": l.acknowledged.get(),
            "problem": l.to_string(),
        })
    });
    let lost = loss.is_some() || contradiction.is_some();
    let lease_json = lease.as_ref().map(|(lease, now_ms)| {
        json!({
            "holder_id": lease.holder_id,
            "term": lease.term,
            "generation": lease.generation,
            "acquired_at_ms": lease.acquired_at_ms,
            "expires_at_ms": lease.expires_at_ms,
            "released": lease.released,
            "live": lease.is_live(*now_ms),
        })
    });
    // The watermarks as the watermarks crate serializes them (`Frontiers`), not a
    // second hand-written shape.
    let published_json = published.map(|p| {
        json!({
            "term": p.token.term,
            "generation": p.token.generation,
            "global": p.global,
        })
    });
    if args.json {
        let lanes: Vec<serde_json::Value> = lanes
            .iter()
            .map(|(lane, s)| {
                json!({
                    "lane": lane,
                    "records": s.records,
                    "last_lane_seq": s.last_lane_seq,
                    "last_global_seq": s.last_global_seq,
                    "only_in_checkpoint": s.only_in_checkpoint,
                })
            })
            .collect();
        let value = json!({
            "dir": db.dir.display().to_string(),
            "format_version": db.format_version,
            "records": total,
            "first_global_seq": first,
            "last_global_seq": last_seq,
            "last_wall_ms": last_wall_ms,
            "end": end,
            "lanes": lanes,
            "segments": segments,
            "segment_count": snapshot.segments().len(),
            "spare_segments": spares.len(),
            "spare_bytes": spare_bytes,
            "reserve_bytes": reserve_bytes,
            "bytes": bytes,
            "checkpoint_count": checkpoints.len(),
            "damaged_checkpoints": damaged,
            "checkpoints": checkpoints_json,
            "lease": lease_json,
            "published_watermarks": published_json,
            "extent": extent_json,
            "loss": loss_json,
            "contradiction": contradiction,
        });
        say!("{value}")?;
        return Ok(if lost { Exit::Corrupt } else { Exit::Ok });
    }
    say!(
        "database    {} (format version {})",
        db.dir.display(),
        db.format_version
    )?;
    match (first, last_seq, last_wall_ms) {
        (Some(first), Some(last), Some(wall)) => say!(
            "records     {total}, global sequences {first} to {last}; last written {} (wall_ms {wall})",
            utc(wall)
        ),
        _ => say!("records     0"),
    }?;
    say!("log end     {end_text}")?;
    match &lease {
        Some((lease, now_ms)) => say!(
            "lease       {} by {}, fencing token (term {}, generation {}), {}",
            if lease.released {
                "released"
            } else if lease.is_live(*now_ms) {
                "held"
            } else {
                "expired"
            },
            lease.holder_id,
            lease.term,
            lease.generation,
            if lease.is_live(*now_ms) {
                format!("expires in {} ms", lease.remaining_ms(*now_ms))
            } else {
                format!("expired at {}", utc(lease.expires_at_ms))
            }
        ),
        None => say!("lease       never taken"),
    }?;
    if let Some(p) = published {
        say!(
            "watermarks  published by generation {}: written {}, durable {}, visible {}, applied {}",
            p.token.generation,
            p.global.written_hlc.global_sequence,
            p.global.durable_hlc.global_sequence,
            p.global.visible_hlc.global_sequence,
            p.global.applied_hlc.global_sequence
        )?;
    }
    if let Some(e) = &extent {
        say!(
            "extent      durable global {}, segments {} to {}{}{}",
            e.durable_seq,
            e.first_index,
            e.last_index,
            if e.closed_cleanly {
                ", closed cleanly"
            } else {
                ""
            },
            if e.accepted_losses.is_empty() {
                String::new()
            } else {
                format!(
                    ", accepted losses {}",
                    e.accepted_losses
                        .iter()
                        .map(|(a, b)| format!("{a} to {b}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        )?;
    }
    if let Some(loss) = &loss {
        say!("LOSS        acknowledged records are missing: {loss}")?;
        eprintln!(
            "tidelog: acknowledged records are missing from the log: {loss}; restore the missing segments from a backup, or `tidelog recover --mode accept-loss`"
        );
    }
    if let Some(contradiction) = &contradiction {
        say!("LOSS        {contradiction}")?;
        eprintln!("tidelog: {contradiction}: acknowledged records are missing from the log");
    }
    let with_data = snapshot
        .segments()
        .iter()
        .filter(|s| matches!(s.role, SegmentRole::Final | SegmentRole::Newest))
        .count();
    say!(
        "segments    {} files, {bytes} bytes ({with_data} holding data)",
        snapshot.segments().len()
    )?;
    for info in snapshot.segments() {
        let summary = summaries.get(&info.index.get());
        let range = match summary.and_then(|s| s.first_seq.zip(s.last_seq)) {
            Some((a, b)) => format!("global {a} to {b}"),
            None => "no records".to_owned(),
        };
        say!(
            "  {}  {:<8} {:>11} bytes  {range}{}",
            info.path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            role_name(info.role),
            info.len_bytes,
            if summary.is_some_and(|s| s.sealed) {
                ", sealed"
            } else {
                ""
            }
        )?;
    }
    if !spares.is_empty() {
        say!(
            "spares      {} files, {spare_bytes} bytes (freed segments kept for reuse by the next rotations)",
            spares.len()
        )?;
        for (name, len) in &spares {
            say!("  {name}  {len:>11} bytes")?;
        }
    }
    match reserve_bytes {
        Some(len) => say!(
            "reserve     {len} bytes ({}: room kept for `tidelog checkpoint` and `truncate` on a full file system)",
            tidelog::reserve::RESERVE_FILE
        ),
        None => say!(
            "reserve     none ({} is missing or in use: `tidelog checkpoint` or `truncate` puts it back once there is room; until then a full file system cannot be recovered from without freeing space by hand)",
            tidelog::reserve::RESERVE_FILE
        ),
    }?;
    match damaged {
        0 => say!("checkpoints {}", checkpoints.len()),
        n => say!("checkpoints {} ({n} damaged)", checkpoints.len()),
    }?;
    for c in &checkpoints {
        let mut notes = Vec::new();
        if c.info.pinned {
            notes.push("pinned".to_owned());
        }
        if c.info.milestone {
            notes.push("milestone".to_owned());
        }
        if let Some(issue) = c.damage {
            notes.push(format!("DAMAGED ({issue}): recovery skips it"));
        }
        say!(
            "  checkpoint {}: point global {}, {} bytes{}",
            c.info.id.0,
            c.info.point.global_sequence,
            c.info.bytes,
            if notes.is_empty() {
                String::new()
            } else {
                format!(", {}", notes.join(", "))
            }
        )?;
    }
    say!("lanes       {}", lanes.len())?;
    for (lane, s) in &lanes {
        if s.only_in_checkpoint {
            say!(
                "  lane {lane}: no record left in the log, last lane sequence {} (global {}, \
                 kept by the checkpoint)",
                s.last_lane_seq,
                s.last_global_seq
            )?;
        } else {
            say!(
                "  lane {lane}: {} records, last lane sequence {} (global {})",
                s.records,
                s.last_lane_seq,
                s.last_global_seq
            )?;
        }
    }
    for refused in records.refused() {
        say!(
            "refused     {} (written by fenced writer {}, fenced by {})",
            refused.path.display(),
            refused.token,
            refused.fenced_by
        )?;
    }
    Ok(if lost { Exit::Corrupt } else { Exit::Ok })
}

fn role_name(role: SegmentRole) -> &'static str {
    match role {
        SegmentRole::Final => "final",
        SegmentRole::Newest => "newest",
        SegmentRole::Refused { .. } => "refused",
        SegmentRole::Prepared => "prepared",
        _ => "other",
    }
}

/// How the log ends, as JSON and as text.
fn describe_end(end: Option<&LogEnd>) -> (serde_json::Value, String) {
    match end {
        Some(LogEnd::Clean { path, offset }) => (
            json!({"kind": "clean", "file": path.display().to_string(), "offset": offset.get()}),
            format!("clean, next record at {} offset {offset}", path.display()),
        ),
        Some(LogEnd::Sealed { path }) => (
            json!({"kind": "sealed", "file": path.display().to_string()}),
            format!("{} is sealed", path.display()),
        ),
        Some(LogEnd::Tail {
            path,
            offset,
            issue,
        }) => (
            json!({
                "kind": "tail",
                "file": path.display().to_string(),
                "offset": offset.get(),
                "problem": issue.to_string(),
            }),
            format!(
                "a torn tail (recovery would cut it) or a record being written, at {} offset {offset}: {issue}",
                path.display()
            ),
        ),
        Some(LogEnd::Skipped { path }) => (
            json!({"kind": "skipped", "file": path.display().to_string()}),
            format!("damaged durable data skipped at the end of {}", path.display()),
        ),
        Some(LogEnd::Empty) | None => (json!({"kind": "empty"}), "empty".to_owned()),
        // A kind of end this build does not know how to describe.
        Some(other) => (json!({"kind": "unknown"}), format!("{other:?}")),
    }
}

/// The writer lease of the database, read without creating anything (the file backend
/// in `<dir>/lease`), with the clock reading it was judged at.
fn writer_lease(dir: &std::path::Path) -> Option<(tidelog::lease::WriterLease, u64)> {
    let lease_dir = dir.join("lease");
    if !lease_dir.is_dir() {
        return None;
    }
    let backend = tidelog::lease::FileBackend::open(lease_dir).ok()?;
    let manager = tidelog::lease::LeaseManager::new(std::sync::Arc::new(backend));
    let lease = manager
        .current(&tidelog::LeaseOptions::default().key)
        .ok()??;
    Some((lease, manager.now_ms()))
}
