//! What could go wrong: two checkpoints taken in the same instant get the same name and one
//! overwrites the other; retention removes the baseline, one of the last N, a milestone, a
//! pinned one or one a reader has open; it keeps what it should remove (the disk grows);
//! a damaged checkpoint is returned instead of skipped.
mod common;
use std::collections::BTreeSet;
use tidelog::wal::SimDisk;
use tidelog::{CheckpointKind, CheckpointOptions, Engine, GlobalSeq, HlcPoint, Options};

fn options(keep_last: usize) -> Options {
    common::small().checkpoints(CheckpointOptions {
        keep_last,
        log_for_last: 1,
        auto_truncate: true,
    })
}

fn checkpoint(
    engine: &Engine<SimDisk>,
    label: &str,
    kind: CheckpointKind,
) -> tidelog::CheckpointInfo {
    engine.append(1, label.as_bytes().to_vec()).unwrap();
    let point = engine.sync().unwrap();
    engine
        .checkpoint_as(point, kind, |out| {
            out.extend_from_slice(label.as_bytes());
            Ok(())
        })
        .unwrap()
}

#[test]
fn a_thousand_checkpoints_in_a_tight_loop_from_four_threads_never_collide() {
    let dir = tempfile::tempdir().unwrap();
    let disk = SimDisk::new();
    let engine = Engine::open_with_storage(disk.clone(), dir.path(), options(10_000)).unwrap();
    engine.append(1, b"x".to_vec()).unwrap();
    let point = engine.sync().unwrap();
    let infos: Vec<tidelog::CheckpointInfo> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|t| {
                let engine = engine.clone();
                s.spawn(move || {
                    (0..250)
                        .map(|i| {
                            engine
                                .checkpoint(point, format!("{t}-{i}").as_bytes())
                                .unwrap()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .flat_map(|h| h.join().unwrap())
            .collect();
        handles
    });
    let names: BTreeSet<_> = infos.iter().map(|i| i.path.clone()).collect();
    let ids: BTreeSet<_> = infos.iter().map(|i| i.id).collect();
    assert_eq!(names.len(), 1000, "every checkpoint has its own file");
    assert_eq!(ids.len(), 1000);
    let files = disk
        .paths()
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "ckpt"))
        .count();
    assert_eq!(files, 1000, "no file was overwritten");
    assert_eq!(engine.checkpoints().len(), 1000);
    drop(engine);
    // Every one reads back with its own content after a reopen.
    let engine = Engine::open_with_storage(disk, dir.path(), options(10_000)).unwrap();
    assert_eq!(engine.checkpoints().len(), 1000);
    let latest = engine.latest_checkpoint().unwrap().unwrap();
    let newest = infos.iter().max_by_key(|i| i.id).unwrap();
    assert_eq!(latest.info().id, newest.id);
}

#[test]
fn retention_keeps_the_first_the_last_n_milestones_pinned_and_open_ones_and_prunes_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let disk = SimDisk::new();
    let engine = Engine::open_with_storage(disk.clone(), dir.path(), options(2)).unwrap();
    let first = checkpoint(&engine, "c0", CheckpointKind::Regular);
    let pinned = checkpoint(&engine, "c1", CheckpointKind::Regular);
    engine.pin_checkpoint(pinned.id).unwrap();
    let milestone = checkpoint(&engine, "c2", CheckpointKind::Milestone);
    let opened = checkpoint(&engine, "c3", CheckpointKind::Regular);
    let reader = engine
        .checkpoint_at_or_before(opened.point.seq())
        .unwrap()
        .unwrap();
    assert_eq!(reader.info().id, opened.id);
    let plain = checkpoint(&engine, "c4", CheckpointKind::Regular);
    let last1 = checkpoint(&engine, "c5", CheckpointKind::Regular);
    let last2 = checkpoint(&engine, "c6", CheckpointKind::Regular);
    let kept: Vec<_> = engine.checkpoints().into_iter().map(|c| c.id).collect();
    assert_eq!(
        kept,
        vec![
            first.id,
            pinned.id,
            milestone.id,
            opened.id,
            last1.id,
            last2.id
        ],
        "c4 pruned, c3 kept while open"
    );
    assert!(!disk.paths().contains(&plain.path));
    // Once the reader is gone, an on-demand prune removes it.
    drop(reader);
    let report = engine.prune_checkpoints().unwrap();
    assert_eq!(
        report.removed.iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![opened.id]
    );
    // Unpinned, the pinned one goes too; pins survive a reopen until then.
    drop(engine);
    let engine = Engine::open_with_storage(disk.clone(), dir.path(), options(2)).unwrap();
    assert!(engine
        .checkpoints()
        .iter()
        .any(|c| c.id == pinned.id && c.pinned));
    engine.prune_checkpoints().unwrap();
    assert!(engine.checkpoints().iter().any(|c| c.id == pinned.id));
    engine.unpin_checkpoint(pinned.id).unwrap();
    engine.prune_checkpoints().unwrap();
    let kept: Vec<_> = engine.checkpoints().into_iter().map(|c| c.id).collect();
    assert_eq!(kept, vec![first.id, milestone.id, last1.id, last2.id]);
    let baseline = engine
        .checkpoint_at_or_before(first.point.seq())
        .unwrap()
        .unwrap();
    assert_eq!(baseline.state(), b"c0");
}

#[test]
fn a_damaged_newest_checkpoint_is_skipped_for_the_previous_one_and_pruned() {
    let dir = tempfile::tempdir().unwrap();
    let disk = SimDisk::new();
    let mut opts = options(5);
    opts.checkpoints.log_for_last = 2;
    let engine = Engine::open_with_storage(disk.clone(), dir.path(), opts.clone()).unwrap();
    let older = checkpoint(&engine, "older", CheckpointKind::Regular);
    let newer = checkpoint(&engine, "newer", CheckpointKind::Regular);
    drop(engine);
    // Flip one byte of the newest one's state.
    let len = disk.file_bytes(&newer.path).unwrap().len();
    disk.corrupt(&newer.path, len - 6, &[0xAA]).unwrap();
    let engine = Engine::open_with_storage(disk.clone(), dir.path(), opts).unwrap();
    assert_eq!(engine.recovered_checkpoint().map(|c| c.id), Some(older.id));
    let latest = engine.latest_checkpoint().unwrap().unwrap();
    assert_eq!(latest.state(), b"older");
    assert!(engine
        .checkpoint_at_or_before(GlobalSeq(u64::MAX))
        .unwrap()
        .is_some_and(|c| c.info().id == older.id));
    let report = engine.prune_checkpoints().unwrap();
    assert_eq!(report.removed_invalid, vec![newer.path.clone()]);
    assert!(!disk.paths().contains(&newer.path));
}

#[test]
fn a_checkpoint_past_the_durable_point_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let disk = SimDisk::new();
    let engine = Engine::open_with_storage(disk, dir.path(), options(2)).unwrap();
    let durable = engine.sync().unwrap();
    let err = engine
        .checkpoint(
            HlcPoint {
                wall_ms: 0,
                global_sequence: durable.global_sequence + 5,
            },
            b"ahead",
        )
        .unwrap_err();
    assert!(
        matches!(err, tidelog::CheckpointError::NotDurable { .. }),
        "{err}"
    );
    assert!(engine.checkpoints().is_empty());
}
