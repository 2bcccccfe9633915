//! Real syscall faults against a real appending process, injected with `strace`: SIGKILL
//! at the N-th `fdatasync` in turn, `EIO` from the N-th `fdatasync` / `fsync` / `msync`,
//! `ENOSPC` from the N-th `fallocate` (the call `posix_fallocate` makes when a segment is
//! prepared). The child is `tidelog-crash-appender` (see `tidelog_tests::appender`).
//!
//! What could go wrong: a record acknowledged before its sync lost after a kill at a sync;
//! a receipt printed after a failed sync, or past the durable point the engine held when
//! it failed; a failure the process does not name; a database a fault left that cannot be
//! reopened, or that lost an acknowledged record, returns one never appended, a partial
//! batch or a gap.
//!
//! Needs `strace` (`.ci/run` installs it and sets `TIDELOG_REQUIRE_STRACE=1`, which turns
//! a missing `strace` into a failure). `TIDELOG_STRACE_POINTS` sets how many fdatasync
//! crash points and EIO positions run (default 40 and 8; try 400).
//!
//! `strace` counts calls per thread: "the N-th fdatasync" is the N-th one of the thread
//! that reaches N first, which is the writer thread for all but the first (at open).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use tidelog_tests::appender::{check, record_ack, Acked};

const APPENDER: &str = env!("CARGO_BIN_EXE_tidelog-crash-appender");

/// Whether `strace` can run here; a missing one fails the test under
/// `TIDELOG_REQUIRE_STRACE=1` and is reported loudly otherwise.
fn strace_available(test: &str) -> bool {
    let works = Command::new("strace")
        .args(["-qq", "-e", "trace=none", "--", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !works {
        assert!(
            std::env::var("TIDELOG_REQUIRE_STRACE").as_deref() != Ok("1"),
            "strace is missing or cannot trace here, and TIDELOG_REQUIRE_STRACE=1: install it (apt-get install strace)"
        );
        eprintln!("SKIPPED {test}: strace is not installed or cannot trace here; install strace to run it");
    }
    works
}

fn points(default: u64) -> u64 {
    std::env::var("TIDELOG_STRACE_POINTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs the appender under `strace -f` with one injection rule; strace's own trace goes
/// to a file so the child's stderr stays its own.
fn run_injected(dir: &Path, round: u64, limit: u64, inject: &str) -> Output {
    run_injected_with(dir, round, limit, inject, "background")
}

/// As [`run_injected`], with segments prepared `inline` on the writer thread or in the
/// `background` (see `tidelog_tests::appender::options`).
fn run_injected_with(dir: &Path, round: u64, limit: u64, inject: &str, prepare: &str) -> Output {
    let trace = dir.with_extension("strace");
    Command::new("strace")
        .arg("-f")
        .arg("-qq")
        .arg("-o")
        .arg(&trace)
        .args(["-e", "signal=none"])
        .args(["-e", "trace=fdatasync,fsync,msync,fallocate"])
        .args(["-e", inject])
        .arg("--")
        .arg(APPENDER)
        .arg(dir)
        .arg(round.to_string())
        .arg(limit.to_string())
        .env("TIDELOG_APPENDER_PREPARE", prepare)
        .stdin(Stdio::null())
        .output()
        .expect("run strace")
}

/// Killed by a signal (strace re-raises the tracee's fatal signal on itself).
fn killed(output: &Output) -> bool {
    use std::os::unix::process::ExitStatusExt;
    output.status.signal() == Some(9)
}

/// The receipts and the failure line of a run, checked for order: nothing after FAILED,
/// and no receipt past the durable point the engine held when it failed.
fn receipts(output: &Output, acked: &mut BTreeMap<u64, Acked>, round: u64) -> Option<String> {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let mut failed: Option<String> = None;
    let mut highest = 0;
    for line in stdout.lines() {
        if let Some(rest) = line.strip_prefix("FAILED ") {
            failed = Some(rest.to_owned());
            continue;
        }
        assert!(
            failed.is_none(),
            "round {round}: a receipt was printed after the failure: {line}"
        );
        if record_ack(acked, line, round) {
            highest = highest.max(
                line.split(' ')
                    .nth(1)
                    .and_then(|g| g.parse().ok())
                    .unwrap_or(0),
            );
        }
    }
    if let Some(failure) = &failed {
        let durable: u64 = failure
            .strip_prefix("durable=")
            .and_then(|r| r.split(' ').next())
            .and_then(|d| d.parse().ok())
            .unwrap_or_else(|| panic!("round {round}: unreadable failure line {failure:?}"));
        assert!(
            highest <= durable,
            "round {round}: receipt {highest} printed past the durable point {durable}"
        );
    }
    failed
}

#[test]
fn sigkill_at_each_fdatasync_in_turn_loses_no_acknowledged_record() {
    if !strace_available("sigkill_at_each_fdatasync_in_turn_loses_no_acknowledged_record") {
        return;
    }
    let n_max = points(40);
    let base = tempfile::tempdir().expect("tempdir");
    let dir = base.path().join("db");
    let mut acked = BTreeMap::new();
    let mut kills = 0;
    for n in 1..=n_max {
        let output = run_injected(
            &dir,
            n,
            2 * n_max + 40,
            &format!("inject=fdatasync:signal=KILL:when={n}"),
        );
        let failed = receipts(&output, &mut acked, n);
        assert!(failed.is_none(), "round {n}: the child failed: {failed:?}");
        if killed(&output) {
            kills += 1;
        } else {
            assert!(
                output.status.success(),
                "round {n}: neither killed nor finished: {output:?}"
            );
        }
        check(&dir, &acked, n);
    }
    // Each run makes far more than n_max syncs, but strace counts per thread and the
    // writer hands some syncs to its syncer thread: nearly every injection must fire.
    assert!(
        kills * 10 >= n_max * 9,
        "only {kills} of {n_max} runs were killed at their fdatasync"
    );
    eprintln!(
        "strace SIGKILL at fdatasync: {kills} crash points, {} acknowledged records checked",
        acked.len()
    );
}

/// One EIO case on a fresh database: the child must stop, name the failure, print no
/// receipt past it, and the reopened database must hold every receipt.
fn eio_case(syscalls: &str, n: u64, limit: u64) -> bool {
    let base = tempfile::tempdir().expect("tempdir");
    let dir = base.path().join("db");
    let output = run_injected(
        &dir,
        n,
        limit,
        &format!("inject={syscalls}:error=EIO:when={n}"),
    );
    let mut acked = BTreeMap::new();
    let failed = receipts(&output, &mut acked, n);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let fired = failed.is_some();
    if fired {
        assert_eq!(output.status.code(), Some(1), "{syscalls} #{n}: {stderr}");
        assert!(
            stderr.contains("Input/output error") && stderr.contains("failed"),
            "{syscalls} #{n}: the message does not name the failure: {stderr}"
        );
        if syscalls == "fsync" && n == 1 {
            // The first fsync is the new database's marker file.
            assert!(
                stderr.contains("syncing")
                    && stderr.contains("TIDELOG.")
                    && stderr.contains(".tmp"),
                "the marker's failed fsync is not named: {stderr}"
            );
        }
    } else {
        assert!(output.status.success(), "{syscalls} #{n}: {stderr}");
    }
    check(&dir, &acked, n);
    fired
}

#[test]
fn eio_from_fdatasync_fsync_or_msync_stops_acknowledgements_and_reopen_recovers() {
    if !strace_available(
        "eio_from_fdatasync_fsync_or_msync_stops_acknowledgements_and_reopen_recovers",
    ) {
        return;
    }
    let n_max = points(8);
    let mut faults = 0;
    for syscalls in ["fdatasync", "fsync", "fdatasync,fsync,msync"] {
        for n in 1..=n_max {
            // Enough records that the writer reaches its n-th fdatasync.
            if eio_case(syscalls, n, 2 * n_max + 40) {
                faults += 1;
            } else {
                // fsync runs only at segment creation and directory syncs: a few per run.
                assert!(
                    syscalls == "fsync" && n > 2,
                    "{syscalls} #{n}: the injected EIO never reached the process"
                );
            }
        }
    }
    assert!(faults >= 2 * n_max, "only {faults} EIO faults fired");
    eprintln!("strace EIO: {faults} injected sync failures, each named and recovered");
}

#[test]
fn enospc_from_fallocate_is_named_and_reopen_recovers() {
    if !strace_available("enospc_from_fallocate_is_named_and_reopen_recovers") {
        return;
    }
    let mut faults = 0;
    // strace counts per thread. `1` fails the first segment's fallocate (at open, main
    // thread). With inline preparation the writer thread prepares the later segments,
    // each once the one before is half full; a failed preparation ahead is retried when
    // the segment is needed, so only a persistent ENOSPC (`N+`) stops the log (the
    // append that needs the segment is refused, naming ENOSPC and the room needed).
    for (when, prepare) in [("1", "background"), ("2+", "inline"), ("4+", "inline")] {
        let base = tempfile::tempdir().expect("tempdir");
        let dir = base.path().join("db");
        // 3000 records of up to 240 bytes fill several 64 KiB segments.
        let inject = format!("inject=fallocate:error=ENOSPC:when={when}");
        let output = run_injected_with(&dir, 1, 3000, &inject, prepare);
        let mut acked = BTreeMap::new();
        let failed = receipts(&output, &mut acked, 1);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            failed.is_some(),
            "fallocate {when}: no failure reported: {stderr}"
        );
        assert_eq!(output.status.code(), Some(1), "fallocate {when}: {stderr}");
        assert!(
            stderr.contains("No space left on device"),
            "fallocate {when}: the message does not name ENOSPC: {stderr}"
        );
        if when == "4+" {
            assert!(
                !acked.is_empty(),
                "fallocate {when}: the fault came before any append"
            );
        }
        faults += 1;
        check(&dir, &acked, 1);
    }
    eprintln!(
        "strace ENOSPC: {faults} injected persistent fallocate failures, each named and recovered"
    );
}

#[test]
fn a_single_enospc_while_preparing_a_segment_ahead_is_retried_when_it_is_needed() {
    if !strace_available(
        "a_single_enospc_while_preparing_a_segment_ahead_is_retried_when_it_is_needed",
    ) {
        return;
    }
    let base = tempfile::tempdir().expect("tempdir");
    let dir = base.path().join("db");
    let output = run_injected_with(
        &dir,
        1,
        3000,
        "inject=fallocate:error=ENOSPC:when=3",
        "inline",
    );
    let mut acked = BTreeMap::new();
    let failed = receipts(&output, &mut acked, 1);
    assert!(
        failed.is_none(),
        "a transient ENOSPC stopped the log: {failed:?}"
    );
    assert!(output.status.success(), "{output:?}");
    let trace = std::fs::read_to_string(dir.with_extension("strace")).expect("trace");
    assert!(trace.contains("ENOSPC"), "the fault was never injected");
    assert_eq!(acked.len(), 3002, "every record acknowledged");
    check(&dir, &acked, 1);
}
