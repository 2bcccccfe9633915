//! `checkpoint::list_checkpoints`, the read-only listing tools use on a database another
//! process may be writing. What could go wrong: the listing removes an interrupted write,
//! a damaged checkpoint or anything else the engine's open would clean up (or rewrites a
//! file); a damaged checkpoint fails the whole listing, is reported as valid, or panics;
//! the listing disagrees with what the engine itself holds (ids, points, pins, kinds).
mod common;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;
use tidelog::checkpoint::{list_checkpoints, CheckpointIssue, ListedCheckpoint};
use tidelog::{CheckpointInfo, CheckpointKind, CheckpointOptions, Engine, Options};

fn options() -> Options {
    common::small().checkpoints(CheckpointOptions {
        keep_last: 100,
        log_for_last: 1,
        auto_truncate: true,
    })
}

/// Every file and directory under `root`: its length, modification time and content.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, (u64, SystemTime, Vec<u8>)> {
    let mut out = BTreeMap::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let meta = entry.metadata().unwrap();
            let content = if meta.is_dir() {
                dirs.push(entry.path());
                Vec::new()
            } else {
                std::fs::read(entry.path()).unwrap()
            };
            out.insert(
                entry.path(),
                (meta.len(), meta.modified().unwrap(), content),
            );
        }
        let meta = std::fs::metadata(&dir).unwrap();
        out.insert(dir, (0, meta.modified().unwrap(), Vec::new()));
    }
    out
}

/// Appends one record and checkpoints at it.
fn checkpoint(engine: &Engine, label: &str, kind: CheckpointKind) -> CheckpointInfo {
    engine.append(1, label.as_bytes().to_vec()).unwrap();
    let point = engine.sync().unwrap();
    engine
        .checkpoint_as(point, kind, |out| {
            out.extend_from_slice(label.repeat(50).as_bytes());
            Ok(())
        })
        .unwrap()
}

fn valid(listed: &[ListedCheckpoint]) -> Vec<CheckpointInfo> {
    listed
        .iter()
        .filter(|l| !l.is_damaged())
        .map(|l| l.info.clone())
        .collect()
}

#[test]
fn the_listing_matches_the_engine_and_changes_no_file_not_even_an_interrupted_write() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let engine = Engine::open(&db, options()).unwrap();
    let first = checkpoint(&engine, "first", CheckpointKind::Regular);
    let milestone = checkpoint(&engine, "milestone", CheckpointKind::Milestone);
    let third = checkpoint(&engine, "third", CheckpointKind::Regular);
    engine.pin_checkpoint(third.id).unwrap();

    // While the engine is open: the same checkpoints, pins and kinds as it holds.
    let live = list_checkpoints(&db).unwrap();
    assert_eq!(live.len(), 3);
    assert!(live.iter().all(|l| l.damage.is_none()), "{live:?}");
    assert_eq!(valid(&live), engine.checkpoints());
    let ids: Vec<_> = live.iter().map(|l| l.info.id).collect();
    assert_eq!(ids, vec![first.id, milestone.id, third.id]);
    assert_eq!(live[0].info.point, first.point);
    assert!(live[1].info.milestone && !live[1].info.pinned);
    assert!(live[2].info.pinned && !live[2].info.milestone);
    engine.close().unwrap();
    drop(engine);

    // An interrupted write the engine's open would remove.
    let folder = db.join("checkpoints");
    std::fs::write(folder.join("leftover.ckpt.tmp"), b"half a checkpoint").unwrap();
    let before = snapshot(&db);
    let listed = list_checkpoints(&db).unwrap();
    assert_eq!(snapshot(&db), before, "listing changed the database");
    assert_eq!(valid(&listed), valid(&live));
    assert!(folder.join("leftover.ckpt.tmp").exists());
}

#[test]
fn a_damaged_checkpoint_file_is_listed_with_its_issue_and_left_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let engine = Engine::open(&db, options()).unwrap();
    let infos: Vec<CheckpointInfo> = ["a", "b", "c", "d"]
        .iter()
        .map(|label| checkpoint(&engine, label, CheckpointKind::Regular))
        .collect();
    engine.close().unwrap();
    drop(engine);

    // b: one flipped bit in its state; c: torn; d: renamed to another id.
    let mut bytes = std::fs::read(&infos[1].path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x10;
    std::fs::write(&infos[1].path, bytes).unwrap();
    let len = std::fs::metadata(&infos[2].path).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&infos[2].path)
        .unwrap()
        .set_len(len - 7)
        .unwrap();
    let d_name = infos[3].path.file_name().unwrap().to_str().unwrap();
    let (point, rest) = d_name.split_once('-').unwrap();
    let (_, rest) = rest.split_once('-').unwrap();
    let renamed = infos[3]
        .path
        .with_file_name(format!("{point}-{:020}-{rest}", infos[3].id.0 + 1000));
    std::fs::rename(&infos[3].path, &renamed).unwrap();

    let before = snapshot(&db);
    let listed = list_checkpoints(&db).unwrap();
    assert_eq!(snapshot(&db), before, "listing changed the database");
    assert_eq!(listed.len(), 4, "{listed:?}");
    assert_eq!(listed[0].info, infos[0]);
    assert_eq!(listed[0].damage, None);
    assert_eq!(listed[1].info.id, infos[1].id);
    assert_eq!(listed[1].damage, Some(CheckpointIssue::BodyChecksum));
    assert_eq!(listed[2].info.id, infos[2].id);
    assert_eq!(
        listed[2].info.point.global_sequence,
        infos[2].point.global_sequence
    );
    assert!(
        matches!(
            listed[2].damage,
            Some(CheckpointIssue::LengthMismatch { found, .. }) if found == len - 7
        ),
        "{:?}",
        listed[2].damage
    );
    assert_eq!(listed[2].info.bytes, len - 7);
    assert_eq!(listed[3].info.path, renamed);
    assert_eq!(listed[3].damage, Some(CheckpointIssue::NameMismatch));

    // The engine agrees: only the first verifies, and recovery starts from it.
    let engine = Engine::open(&db, options()).unwrap();
    assert_eq!(engine.checkpoints(), valid(&listed));
    assert_eq!(
        engine.recovered_checkpoint().map(|c| c.id),
        Some(infos[0].id)
    );
}

#[test]
fn a_database_without_a_checkpoint_folder_has_none_and_a_missing_one_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(list_checkpoints(dir.path()).unwrap(), Vec::new());
    assert!(!dir.path().join("checkpoints").exists(), "nothing created");
    let missing = dir.path().join("missing");
    let err = list_checkpoints(&missing).expect_err("no such directory");
    assert!(
        matches!(&err, tidelog::CheckpointError::Io(e) if e.path == missing),
        "{err}"
    );
    assert!(!missing.exists(), "nothing created");
}

#[test]
fn listing_while_the_engine_checkpoints_and_prunes_never_fails_nor_sees_a_damaged_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let engine = Engine::open(
        &db,
        common::small().checkpoints(CheckpointOptions {
            keep_last: 1,
            log_for_last: 1,
            auto_truncate: true,
        }),
    )
    .unwrap();
    let done = std::sync::atomic::AtomicBool::new(false);
    let listings = std::thread::scope(|s| {
        let lister = s.spawn(|| {
            let mut listings = 0u32;
            // At least a few listings even if the writer finishes first.
            while !done.load(std::sync::atomic::Ordering::Acquire) || listings < 10 {
                let listed = list_checkpoints(&db).expect("listing beside a writer");
                assert!(
                    listed.iter().all(|l| l.damage.is_none()),
                    "a checkpoint being written or pruned showed as damaged: {listed:?}"
                );
                listings += 1;
            }
            listings
        });
        for i in 0..300 {
            checkpoint(&engine, &format!("round {i}"), CheckpointKind::Regular);
        }
        done.store(true, std::sync::atomic::Ordering::Release);
        lister.join().unwrap()
    });
    assert!(listings >= 10);
    // Retention kept the first and the last; the listing agrees once the writer is idle.
    assert_eq!(valid(&list_checkpoints(&db).unwrap()), engine.checkpoints());
    assert_eq!(engine.checkpoints().len(), 2);
}
