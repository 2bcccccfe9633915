//! Helpers shared by the engine's integration tests.
#![allow(dead_code)]

#[cfg(feature = "etcd")]
pub mod etcd_server;
pub mod hooked;
pub mod stalling;

use std::path::Path;
use tidelog::wal::SimDisk;
use tidelog::{CheckpointOptions, Engine, Options};

/// Small segments so tests rotate; background preparation off for a fixed op order.
/// Options for tests: small segments.
pub fn small() -> Options {
    let mut options = Options::default()
        .segment_size(256 * 1024)
        .max_record_bytes(16 * 1024)
        .max_batch_bytes(64 * 1024);
    options.prepare_segments_in_background = false;
    options
}

/// Opens the engine in `dir` with its log on the simulated `disk`.
pub fn open_sim(disk: &SimDisk, dir: &Path) -> Engine<SimDisk> {
    Engine::open_with_storage(disk.clone(), dir, small()).expect("open on the simulated disk")
}

/// The segment files of the database in `db`, in log order.
pub fn segment_files(db: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(db.join("wal"))
        .expect("list wal/")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    files.sort();
    files
}

/// Options for the truncation tests: 8 KiB segments (a few 700-byte records each), inline
/// preparation, and checkpoints that truncate only when the test asks (`truncate_log`),
/// keeping the log of the newest checkpoint only.
pub fn truncation_options() -> Options {
    let mut options = Options::default()
        .segment_size(8 * 1024)
        .max_record_bytes(2 * 1024)
        .max_batch_bytes(4 * 1024)
        .checkpoints(CheckpointOptions {
            keep_last: 2,
            log_for_last: 1,
            auto_truncate: false,
        });
    options.prepare_segments_in_background = false;
    options
}

/// Record `i`'s payload for the truncation tests: `r{i}` padded to 700 bytes.
pub fn padded_payload(i: u64) -> Vec<u8> {
    let mut payload = format!("r{i}").into_bytes();
    payload.resize(700, b'.');
    payload
}
