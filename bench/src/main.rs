//! `tidelog-bench`: the same workloads against tidelog, the physical `pwrite`+`fdatasync`
//! baseline and peer engines (each behind its cargo feature), in one run on one disk,
//! alternating systems within each repetition; medians and tidelog's lead over each.
//!
//! ```text
//! cargo run --release -p tidelog-bench --features all-peers -- --seconds 1 --reps 3
//! ```
//!
//! See `docs/benchmarks.md` for the workloads, what each peer is asked to do, and
//! measured figures.
#![deny(unsafe_code)]

mod disk;
mod error;
mod peer;
mod peers;
mod report;
mod stats;
mod workloads;

use clap::{Parser, Subcommand};
use error::BenchError;
use peer::System;
use report::Results;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Duration;
use workloads::Bounds;

/// Benchmarks tidelog against the disk and peer engines.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Seconds each timed loop runs per system and case.
    #[arg(long, default_value_t = 1.0)]
    seconds: f64,
    /// Repetitions; each runs every case on every system, in a rotating order.
    #[arg(long, default_value_t = 3)]
    reps: usize,
    /// Records one loop (or one writer thread) appends at most.
    #[arg(long, default_value_t = 20_000)]
    max_records: u64,
    /// Payload of the recovery workload's log, in MiB (the issue's full size: 1024).
    #[arg(long, default_value_t = 64)]
    recovery_mib: u64,
    /// Systems to run, comma-separated (default: every one this build has).
    #[arg(long)]
    systems: Option<String>,
    /// Workloads to run, comma-separated numbers 1 to 6.
    #[arg(long, default_value = "1,2,3,4,5,6")]
    workloads: String,
    /// Where the logs are created (default: `TIDELOG_BENCH_DIR`, else the temp dir).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Also write every sample as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Internal>,
}

#[derive(Debug, Subcommand)]
enum Internal {
    /// (internal) Fills a log for the recovery workload and exits, cleanly or as a crash.
    #[command(hide = true)]
    Fill {
        system: String,
        dir: PathBuf,
        bytes: u64,
        #[arg(value_parser = ["clean", "crash"])]
        end: String,
    },
}

fn main() -> ExitCode {
    let args = Args::parse();
    let outcome = match &args.command {
        Some(Internal::Fill {
            system,
            dir,
            bytes,
            end,
        }) => fill_here(system, dir, *bytes, end == "clean"),
        None => run(&args),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("tidelog-bench: {err}");
            ExitCode::FAILURE
        }
    }
}

/// The child side of the recovery workload: prints the records written, then exits
/// without running destructors when it stands for a crash.
fn fill_here(name: &str, dir: &Path, bytes: u64, clean: bool) -> Result<(), BenchError> {
    let system = peer::select(Some(name))?[0];
    let written = workloads::fill(&system, dir, bytes, clean)?;
    println!("{written}");
    if !clean {
        std::process::exit(0);
    }
    Ok(())
}

/// The parent side: runs this binary's `fill` in a child and reads what it wrote.
fn fill_in_child(system: &System, dir: &Path, bytes: u64, clean: bool) -> Result<u64, BenchError> {
    let exe = std::env::current_exe().map_err(|e| BenchError::io("find", "current exe", e))?;
    let output = Command::new(&exe)
        .arg("fill")
        .arg(system.name)
        .arg(dir)
        .arg(bytes.to_string())
        .arg(if clean { "clean" } else { "crash" })
        .output()
        .map_err(|e| BenchError::io("run", &exe, e))?;
    let written = String::from_utf8_lossy(&output.stdout).trim().parse().ok();
    match written {
        Some(n) if output.status.success() => Ok(n),
        _ => {
            eprint!("{}", String::from_utf8_lossy(&output.stderr));
            Err(BenchError::FillFailed {
                system: system.name,
                status: output.status,
            })
        }
    }
}

fn run(args: &Args) -> Result<(), BenchError> {
    let systems = peer::select(args.systems.as_deref())?;
    let base = args
        .dir
        .clone()
        .or_else(|| std::env::var_os("TIDELOG_BENCH_DIR").map(PathBuf::from))
        .unwrap_or_else(std::env::temp_dir);
    let bounds = Bounds {
        run: Duration::from_secs_f64(args.seconds.max(0.01)),
        max_records: args.max_records.max(1),
    };
    let wanted: Vec<&str> = args.workloads.split(',').map(str::trim).collect();
    let recovery_bytes = args.recovery_mib.max(1) << 20;
    let mut results = Results::default();
    for rep in 0..args.reps.max(1) {
        // Rotate the order each repetition so no system always runs first on a cold
        // disk or last on a hot one.
        let mut order = systems.clone();
        order.rotate_left(rep % systems.len().max(1));
        eprintln!("repetition {} of {}", rep + 1, args.reps.max(1));
        for case in cases(&wanted) {
            for system in &order {
                if case.baseline_applies || !system.baseline {
                    eprintln!("  {} on {}", case.name, system.name);
                    // A system that fails a case (e.g. refuses to open a torn log) is
                    // reported as failing it; the other systems still run.
                    match case.run(system, &base, bounds, recovery_bytes) {
                        Ok(figures) => results.add(&case.name, system.name, figures),
                        Err(err) => {
                            eprintln!("    failed: {err}");
                            results.fail(&case.name, system.name, err.to_string());
                        }
                    }
                }
            }
        }
    }
    let names: Vec<&'static str> = systems.iter().map(|s| s.name).collect();
    print!("{}", results.table(&names));
    if let Some(path) = &args.json {
        let json = serde_json::json!({
            "command": std::env::args().collect::<Vec<_>>().join(" "),
            "seconds": args.seconds,
            "reps": args.reps,
            "recovery_mib": args.recovery_mib,
            "dir": base,
            "results": results.json_rows(),
            "failures": results.failures(),
        });
        let text = serde_json::to_string_pretty(&json).unwrap_or_default();
        std::fs::write(path, text).map_err(|e| BenchError::io("write", path, e))?;
    }
    Ok(())
}

/// One workload with its parameter.
struct Case {
    name: String,
    kind: Kind,
    baseline_applies: bool,
}

enum Kind {
    OneWriter(usize),
    Concurrent(u32),
    Batches,
    Lanes,
    Recovery { torn: bool },
    Bulk,
}

impl Case {
    fn run(
        &self,
        system: &System,
        base: &Path,
        bounds: Bounds,
        recovery_bytes: u64,
    ) -> Result<Vec<workloads::Figure>, BenchError> {
        match self.kind {
            Kind::OneWriter(size) => workloads::one_writer(system, base, size, bounds),
            Kind::Concurrent(writers) => workloads::concurrent(system, base, writers, bounds),
            Kind::Batches => workloads::batches(system, base, bounds),
            Kind::Lanes => workloads::lanes(system, base, bounds),
            Kind::Bulk => workloads::bulk(system, base, bounds),
            Kind::Recovery { torn } => {
                workloads::recovery(system, base, recovery_bytes, torn, &fill_in_child)
            }
        }
    }
}

fn cases(wanted: &[&str]) -> Vec<Case> {
    let mut out = Vec::new();
    let case = |name: String, kind, baseline_applies| Case {
        name,
        kind,
        baseline_applies,
    };
    if wanted.contains(&"1") {
        for size in [256, 1024, 4096] {
            out.push(case(
                format!("w1 1 writer {size}B"),
                Kind::OneWriter(size),
                true,
            ));
        }
    }
    if wanted.contains(&"2") {
        for writers in [1, 4, 16, 64] {
            // The baseline has no group commit: with several writers it is no bound.
            out.push(case(
                format!("w2 {writers} writers"),
                Kind::Concurrent(writers),
                writers == 1,
            ));
        }
    }
    if wanted.contains(&"3") {
        out.push(case("w3 batch 1000x170B".to_owned(), Kind::Batches, true));
    }
    if wanted.contains(&"4") {
        out.push(case("w4 1000 lanes 1KiB".to_owned(), Kind::Lanes, false));
    }
    if wanted.contains(&"6") {
        // Group commit against group commit: the raw baseline has none, so it bounds
        // nothing here; the naive group commit does.
        out.push(case("w6 16 writers 4KiB".to_owned(), Kind::Bulk, false));
    }
    if wanted.contains(&"5") {
        out.push(case(
            "w5 recover clean".to_owned(),
            Kind::Recovery { torn: false },
            true,
        ));
        out.push(case(
            "w5 recover torn".to_owned(),
            Kind::Recovery { torn: true },
            true,
        ));
    }
    out
}
