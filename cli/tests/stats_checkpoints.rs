//! `tidelog stats` lists the checkpoints. What could go wrong: checkpoints taken through the
//! engine missing from the listing or shown with the wrong id, point, size, pin or kind; a
//! damaged checkpoint file shown as healthy, failing the whole command, or cleaned up by
//! it (stats must change nothing).
mod common;
use common::*;
use std::path::Path;
use tidelog::{CheckpointInfo, CheckpointKind, CheckpointOptions, Engine, Options};

/// A database in `dir/db` with 30 records on lane 1 and a checkpoint after every 10th: the
/// second a milestone, the third pinned.
fn database_with_checkpoints(dir: &Path) -> (std::path::PathBuf, Vec<CheckpointInfo>) {
    let db = dir.join("db");
    let options = Options::default()
        .segment_size(SEGMENT)
        .max_record_bytes(16 * 1024)
        .max_batch_bytes(32 * 1024)
        .checkpoints(CheckpointOptions {
            keep_last: 10,
            log_for_last: 1,
            auto_truncate: true,
        });
    let engine = Engine::open(&db, options).unwrap();
    let mut infos = Vec::new();
    for round in 0..3 {
        for i in 1..=10 {
            engine.append(1, line(round * 10 + i).into_bytes()).unwrap();
        }
        let point = engine.sync().unwrap();
        let kind = if round == 1 {
            CheckpointKind::Milestone
        } else {
            CheckpointKind::Regular
        };
        let state = format!("state after round {round}").repeat(round + 1);
        infos.push(
            engine
                .checkpoint_as(point, kind, |out| {
                    out.extend_from_slice(state.as_bytes());
                    Ok(())
                })
                .unwrap(),
        );
    }
    engine.pin_checkpoint(infos[2].id).unwrap();
    infos[2].pinned = true;
    engine.close().unwrap();
    (db, infos)
}

#[test]
fn stats_lists_each_checkpoint_with_its_point_size_pin_and_kind() {
    let dir = tempfile::tempdir().unwrap();
    let (db, infos) = database_with_checkpoints(dir.path());
    let before = snapshot(&db);
    let out = tidelog(&["stats", s(&db), "--json"], b"");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stats["records"], 30);
    assert_eq!(stats["checkpoint_count"], 3);
    assert_eq!(stats["damaged_checkpoints"], 0);
    let listed = stats["checkpoints"].as_array().unwrap();
    assert_eq!(listed.len(), 3);
    for (json, info) in listed.iter().zip(&infos) {
        assert_eq!(json["id"], info.id.0);
        assert_eq!(json["global_seq"], info.point.global_sequence);
        assert_eq!(json["wall_ms"], info.point.wall_ms);
        assert_eq!(json["bytes"], info.bytes);
        assert_eq!(
            json["bytes"],
            std::fs::metadata(&info.path).unwrap().len(),
            "the size on disk"
        );
        assert_eq!(json["pinned"], info.pinned);
        assert_eq!(json["milestone"], info.milestone);
        assert_eq!(json["damaged"], false);
        assert_eq!(json["problem"], serde_json::Value::Null);
        assert_eq!(json["file"], info.path.display().to_string());
    }
    let points: Vec<u64> = listed
        .iter()
        .map(|c| c["global_seq"].as_u64().unwrap())
        .collect();
    assert_eq!(points, vec![10, 20, 30]);

    let plain = tidelog(&["stats", s(&db)], b"");
    assert_eq!(plain.status.code(), Some(0), "{}", text(&plain.stderr));
    let plain = text(&plain.stdout);
    assert!(plain.contains("checkpoints 3\n"), "{plain}");
    let lines = [
        format!(
            "  checkpoint {}: point global 10, {} bytes\n",
            infos[0].id.0, infos[0].bytes
        ),
        format!(
            "  checkpoint {}: point global 20, {} bytes, milestone\n",
            infos[1].id.0, infos[1].bytes
        ),
        format!(
            "  checkpoint {}: point global 30, {} bytes, pinned\n",
            infos[2].id.0, infos[2].bytes
        ),
    ];
    for line in &lines {
        assert!(plain.contains(line.as_str()), "{line:?} not in\n{plain}");
    }
    assert_eq!(snapshot(&db), before, "stats changes nothing");
}

#[test]
fn stats_shows_a_damaged_checkpoint_as_damaged_and_leaves_it_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let (db, infos) = database_with_checkpoints(dir.path());
    let len = std::fs::metadata(&infos[1].path).unwrap().len();
    patch(&infos[1].path, len - 10, b"\xff");
    let before = snapshot(&db);
    let out = tidelog(&["stats", s(&db), "--json"], b"");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stats["checkpoint_count"], 3);
    assert_eq!(stats["damaged_checkpoints"], 1);
    let listed = stats["checkpoints"].as_array().unwrap();
    let damaged: Vec<bool> = listed
        .iter()
        .map(|c| c["damaged"].as_bool().unwrap())
        .collect();
    assert_eq!(damaged, vec![false, true, false]);
    assert_eq!(listed[1]["id"], infos[1].id.0);
    assert_eq!(listed[1]["global_seq"], 20);
    assert_eq!(listed[1]["wall_ms"], serde_json::Value::Null);
    assert_eq!(listed[1]["problem"], "body checksum mismatch");

    let plain = tidelog(&["stats", s(&db)], b"");
    assert_eq!(plain.status.code(), Some(0), "{}", text(&plain.stderr));
    let plain = text(&plain.stdout);
    assert!(plain.contains("checkpoints 3 (1 damaged)\n"), "{plain}");
    let line = format!(
        "  checkpoint {}: point global 20, {} bytes, milestone, DAMAGED (body checksum mismatch): recovery skips it\n",
        infos[1].id.0, len
    );
    assert!(plain.contains(&line), "{line:?} not in\n{plain}");
    assert_eq!(snapshot(&db), before, "stats changes nothing");
}

#[test]
fn stats_of_a_database_without_checkpoints_lists_none() {
    let dir = tempfile::tempdir().unwrap();
    let db = database(dir.path(), 5);
    let out = tidelog(&["stats", s(&db), "--json"], b"");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stats["checkpoint_count"], 0);
    assert_eq!(stats["checkpoints"], serde_json::json!([]));
    let plain = text(&tidelog(&["stats", s(&db)], b"").stdout);
    assert!(plain.contains("checkpoints 0\n"), "{plain}");
}
