//! `tidelog demo` and `tidelog bench`, bounded. What could go wrong: a summary that
//! does not match what was appended, a benchmark that runs unbounded or reports nothing.
mod common;
use common::*;

#[test]
fn the_demo_runs_on_a_temporary_directory_and_summarizes() {
    let out = tidelog(&["demo", "--threads", "2", "--records", "50"], b"");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("100 durable, 100 read back"), "{stdout}");
    assert!(stdout.contains("records per fsync"), "{stdout}");
    assert!(stdout.contains("p50"), "{stdout}");
    // Six watermarks, explained, in units people read.
    for name in [
        "accepted", "written", "durable", "visible", "applied", "emitted", "per lane",
    ] {
        assert!(stdout.contains(name), "{name}: {stdout}");
    }
    assert!(stdout.contains("64 MiB segments"), "{stdout}");
    let latency = stdout.lines().find(|l| l.contains("p50")).unwrap();
    assert!(
        [" µs", " ms", " s "]
            .iter()
            .any(|unit| latency.contains(unit)),
        "{latency}"
    );
    assert!(
        !latency.contains("Duration") && !stdout.contains("MB/s"),
        "{stdout}"
    );
}

#[test]
fn the_demo_on_an_existing_database_keeps_its_records_and_segment_size() {
    let dir = tempfile::tempdir().unwrap();
    let db = database(dir.path(), 5);
    let out = tidelog(
        &[
            "demo",
            "--dir",
            s(&db),
            "--threads",
            "2",
            "--records",
            "400",
        ],
        b"",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("800 durable, 805 read back"),
        "{}",
        text(&out.stdout)
    );
    assert!(segments(&db)
        .iter()
        .all(|p| std::fs::metadata(p).unwrap().len() == SEGMENT));
}

#[test]
fn bench_reports_every_figure_beside_its_baseline_within_its_time_bound() {
    let dir = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let out = tidelog(
        &[
            "bench",
            "--dir",
            s(dir.path()),
            "--seconds",
            "0.1",
            "--writers",
            "2",
            "--segment-size",
            "1048576",
            "--json",
        ],
        b"",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for figure in [
        &v["latency"]["p50_us"],
        &v["latency"]["p99_us"],
        &v["latency"]["raw_p50_us"],
        &v["concurrent"]["records_per_s"],
        &v["concurrent"]["records_per_fdatasync"],
        &v["concurrent"]["raw_fdatasyncs_per_s"],
        &v["pipelined"]["accepted_per_s"],
        &v["pipelined"]["durable_per_s"],
    ] {
        assert!(figure.as_f64().is_some_and(|f| f > 0.0), "{v}");
    }
    assert!(v["latency"]["p99_us"].as_f64() >= v["latency"]["p50_us"].as_f64());
    assert_eq!(v["concurrent"]["writers"], 2);
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "temporary directories removed"
    );
}
