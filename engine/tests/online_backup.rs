//! What could go wrong: a backup taken while appends go on copies a torn or half-written
//! tail, misses records up to its point, holds records past it, lacks the checkpoint the
//! copied log needs, or does not open as a normal database.
mod common;
use std::sync::atomic::{AtomicBool, Ordering};
use tidelog::{CheckpointOptions, Engine, GlobalSeq, Options};

fn options() -> Options {
    common::small().checkpoints(CheckpointOptions {
        keep_last: 2,
        log_for_last: 1,
        auto_truncate: true,
    })
}

fn payload(i: u64) -> Vec<u8> {
    let mut bytes = format!("p{i}").into_bytes();
    bytes.resize(200 + (i % 300) as usize, (i % 251) as u8);
    bytes
}

#[test]
fn a_backup_taken_during_concurrent_appends_opens_and_holds_exactly_the_prefix_up_to_its_point() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), options()).unwrap();
    // History before: a checkpoint has truncated the log, so the copy needs it.
    for i in 1..=2000u64 {
        engine.append(1, payload(i)).unwrap();
    }
    let point = engine.sync().unwrap();
    engine.checkpoint(point, b"snapshot-2000").unwrap();
    assert!(engine.truncation_status().log_starts_at > GlobalSeq(1));
    let stop = AtomicBool::new(false);
    let backups = tempfile::tempdir().unwrap();
    let reports = std::thread::scope(|s| {
        let appender = s.spawn(|| {
            let mut i = 2001u64;
            while !stop.load(Ordering::Relaxed) && i < 200_000 {
                engine.append(1, payload(i)).unwrap();
                i += 1;
            }
            i
        });
        let reports: Vec<_> = (0..3)
            .map(|n| {
                let dest = backups.path().join(format!("copy-{n}"));
                let report = engine.backup_to(&dest).unwrap();
                (dest, report)
            })
            .collect();
        stop.store(true, Ordering::Relaxed);
        let appended = appender.join().unwrap();
        assert!(appended > 2001, "appends ran during the backups");
        reports
    });
    for (dest, report) in reports {
        assert!(report.point >= point.seq());
        assert!(dest.join(tidelog::checkpoint::BACKUP_MARKER).exists());
        let copy = Engine::open(&dest, options()).unwrap();
        let recovered = copy
            .recovered_checkpoint()
            .expect("the checkpoint was copied");
        assert_eq!(recovered.point.seq(), point.seq());
        let restored = copy.latest_checkpoint().unwrap().unwrap();
        assert_eq!(restored.state(), b"snapshot-2000");
        // Exactly the prefix: everything after the checkpoint up to the backup's point,
        // in order and byte for byte, and nothing after it.
        let seqs: Vec<u64> = copy
            .scan_all(point.seq().next())
            .unwrap()
            .map(|r| {
                assert_eq!(r.payload(), &payload(r.global_seq().0)[..]);
                r.global_seq().0
            })
            .collect();
        assert_eq!(
            seqs,
            (point.global_sequence + 1..=report.point.0).collect::<Vec<_>>()
        );
        // The copy is a normal database: it takes appends after its point.
        let next = copy.append(1, b"on the copy".to_vec()).unwrap();
        assert_eq!(next.point.global_sequence, report.point.0 + 1);
        copy.close().unwrap();
    }
    // A destination that is already a database is refused.
    let err = engine.backup_to(backups.path().join("copy-0")).unwrap_err();
    assert!(
        matches!(
            err,
            tidelog::checkpoint::BackupError::DestinationExists { .. }
        ),
        "{err}"
    );
}

/// What `tidelog backup`'s bar is drawn from: the log bytes copied, rising after each
/// segment to a total that they reach at the end and never pass.
#[test]
fn a_backup_reports_its_progress_rising_to_the_log_bytes_it_copied() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), common::small()).unwrap();
    for i in 1..=3000u64 {
        engine.append(1, payload(i)).unwrap();
    }
    engine.sync().unwrap();
    let backups = tempfile::tempdir().unwrap();
    let mut seen: Vec<(u64, u64)> = Vec::new();
    let report = engine
        .backup_to_reporting(backups.path().join("copy"), |done, total| {
            seen.push((done, total));
        })
        .unwrap();
    assert!(report.segments >= 2, "{report:?}");
    assert_eq!(seen.first().map(|s| s.0), Some(0), "{seen:?}");
    assert!(seen.iter().all(|(done, total)| done <= total), "{seen:?}");
    assert!(seen.windows(2).all(|w| w[0].0 <= w[1].0), "{seen:?}");
    let log_bytes = report.bytes; // no checkpoints here: every byte is log
    assert_eq!(seen.last(), Some(&(log_bytes, log_bytes)), "{seen:?}");
    // One report before the first segment, one after each, one at the end.
    assert_eq!(seen.len(), report.segments + 2, "{seen:?}");
    engine.close().unwrap();
}

/// A copy inside the database it copies would become part of it (and of every later
/// backup); both backups refuse it before creating anything, through `..` and links too.
#[test]
fn a_backup_into_the_database_it_copies_is_refused_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let engine = Engine::open(&db, options()).unwrap();
    engine.append_durable(1, b"one".to_vec()).unwrap();
    let link = dir.path().join("link-to-db");
    std::os::unix::fs::symlink(&db, &link).unwrap();
    let inside = [
        db.join("backups").join("today"),
        dir.path().join("db").join("..").join("db").join("copy"),
        link.join("copy"),
    ];
    for dest in &inside {
        let err = engine.backup_to(dest).unwrap_err();
        assert!(
            matches!(
                err,
                tidelog::checkpoint::BackupError::DestinationInsideDatabase { .. }
            ),
            "{dest:?}: {err}"
        );
        let err = tidelog::checkpoint::backup_from_files(&db, dest).unwrap_err();
        assert!(
            matches!(
                err,
                tidelog::checkpoint::BackupError::DestinationInsideDatabase { .. }
            ),
            "{dest:?}: {err}"
        );
    }
    assert!(!db.join("backups").exists() && !db.join("copy").exists());
    // Beside the database, the same names are fine.
    let report = engine.backup_to(dir.path().join("copy")).unwrap();
    assert_eq!(report.point, GlobalSeq(1));
    engine.close().unwrap();
}
