//! `tidelog verify DIR`: a read-only check of every segment.

use std::path::PathBuf;
use std::process::ExitCode;
use tidelog::wal::{verify, FindingKind, Verdict, WalOptions};

/// Arguments of `verify`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The database directory.
    dir: PathBuf,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// Runs `verify`.
pub fn run(args: &Args) -> Result<ExitCode, String> {
    if !args.dir.join("TIDELOG").is_file() {
        return Err(format!(
            "{} is not a tidelog database (no TIDELOG file)",
            args.dir.display()
        ));
    }
    let report =
        verify(&args.dir.join("wal"), &WalOptions::default()).map_err(|e| e.to_string())?;
    let verdict = match report.verdict {
        Verdict::Clean => "clean",
        Verdict::TornTailOnly => "torn-tail",
        Verdict::Corrupt => "corrupt",
    };
    let describe = |kind: &FindingKind| format!("{kind:?}");
    if args.json {
        let findings: Vec<_> = report
            .findings
            .iter()
            .map(|f| {
                serde_json::json!({
                    "file": f.path.display().to_string(),
                    "offset": f.offset,
                    "problem": describe(&f.kind),
                })
            })
            .collect();
        let value = serde_json::json!({
            "verdict": verdict,
            "segments": report.segments,
            "records": report.frames,
            "last_global_seq": report.last_seq.get(),
            "findings": findings,
        });
        println!("{value}");
    } else {
        println!(
            "{verdict}: {} segments, {} records, last global sequence {}",
            report.segments, report.frames, report.last_seq
        );
        for f in &report.findings {
            println!(
                "  {} at offset {}: {}",
                f.path.display(),
                f.offset,
                describe(&f.kind)
            );
        }
    }
    Ok(match report.verdict {
        Verdict::Clean => ExitCode::SUCCESS,
        Verdict::TornTailOnly => ExitCode::from(2),
        Verdict::Corrupt => ExitCode::from(3),
    })
}
