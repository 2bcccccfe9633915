//! Helpers shared by the integration tests: deterministic records, small segments, and
//! reading a log back.
#![allow(dead_code, clippy::manual_is_multiple_of)]

mod db;
// Not every test opens these databases.
#[allow(unused_imports)]
pub use db::*;

use std::path::{Path, PathBuf};
use tidelog_wal::{
    GlobalSeq, LaneId, LaneSeq, NewFrame, RecoveryMode, Storage, Wal, WalOptions, WalReader,
};

/// Small segments so tests rotate often.
pub const SEGMENT: u64 = 8192;

pub fn opts(mode: RecoveryMode) -> WalOptions {
    WalOptions {
        segment_size: SEGMENT,
        max_record_bytes: 2048,
        recovery_mode: mode,
        prepare_in_background: false,
        ..WalOptions::default()
    }
}

/// The payload of record `seq`: its length and bytes depend on `seq` only.
pub fn payload(seq: u64) -> Vec<u8> {
    let len = (seq * 53 % 400) as usize;
    (0..len).map(|i| (seq as usize * 31 + i) as u8).collect()
}

pub fn key(seq: u64) -> Vec<u8> {
    if seq % 3 == 0 {
        format!("key-{seq}").into_bytes()
    } else {
        Vec::new()
    }
}

/// Appends one unit of `size` records starting right after the last written one.
pub fn append_unit<S: Storage>(
    wal: &mut Wal<S>,
    size: u64,
) -> Result<(), tidelog_wal::AppendError> {
    let first = wal.last_written().0 + 1;
    let payloads: Vec<(Vec<u8>, Vec<u8>)> = (first..first + size)
        .map(|s| (key(s), payload(s)))
        .collect();
    let unit: Vec<NewFrame<'_>> = payloads
        .iter()
        .enumerate()
        .map(|(i, (k, p))| {
            let seq = first + i as u64;
            NewFrame {
                global_seq: GlobalSeq(seq),
                lane: LaneId((seq % 5) as u32),
                lane_seq: LaneSeq(seq),
                wall_ms: 1_000 + seq,
                key: k,
                payload: p,
            }
        })
        .collect();
    wal.append(&unit)
}

/// Appends `units` units of 1..=3 records and syncs after every `sync_every` units.
pub fn fill<S: Storage>(wal: &mut Wal<S>, units: u64, sync_every: u64) {
    for u in 1..=units {
        append_unit(wal, 1 + u % 3).unwrap();
        if u % sync_every == 0 {
            wal.sync().unwrap();
        }
    }
}

/// Every readable record, checked against the deterministic content.
pub fn read_all<S: Storage>(reader: &WalReader<S>) -> Vec<u64> {
    reader
        .iter_from(GlobalSeq(1))
        .map(|f| {
            let seq = f.global_seq().0;
            assert_eq!(f.payload(), &payload(seq)[..], "payload of {seq}");
            assert_eq!(f.key(), &key(seq)[..], "key of {seq}");
            assert_eq!(f.lane_seq(), LaneSeq(seq));
            assert_eq!(f.lane(), LaneId((seq % 5) as u32), "lane of {seq}");
            assert_eq!(f.wall_ms(), 1_000 + seq, "wall time of {seq}");
            seq
        })
        .collect()
}

pub fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

/// Byte offsets of the frames of records `seqs`, read through a fresh open.
pub fn offsets_of(dir: &Path, seqs: &[u64]) -> Vec<(PathBuf, u64)> {
    let (wal, _) = Wal::open(dir, opts(RecoveryMode::AbsoluteConsistency)).unwrap();
    let reader = wal.reader();
    seqs.iter()
        .map(|s| {
            let f = reader.get(GlobalSeq(*s)).unwrap();
            (
                dir.join(tidelog_wal::segment::segment_file_name(f.segment())),
                f.offset().get(),
            )
        })
        .collect()
}

pub fn patch(path: &Path, at: u64, bytes: &[u8]) {
    use std::io::{Seek, SeekFrom, Write};
    let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.seek(SeekFrom::Start(at)).unwrap();
    f.write_all(bytes).unwrap();
    f.sync_all().unwrap();
}

pub fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    segment_files(dir)
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect()
}

/// The header of a segment file (its first 64 bytes) rewritten as format version 1, as a
/// build before tenure frames wrote it: a writer never continues such a segment.
pub fn as_version_1(header: &[u8]) -> Vec<u8> {
    let mut h = header[..64].to_vec();
    h[8..12].copy_from_slice(&1u32.to_le_bytes());
    let crc = tidelog_wal::format::mask_crc(crc32fast::hash(&h[..60]));
    h[60..64].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Rewrites the header of segment `index` of the log in `dir` on a simulated disk as
/// format version 1 (see [`as_version_1`]).
pub fn downgrade_to_version_1(disk: &tidelog_wal::SimDisk, dir: &Path, index: u64) {
    let path = tidelog_wal::segment::segment_path(dir, tidelog_wal::SegmentIndex(index));
    let bytes = disk.file_bytes(&path).expect("segment exists");
    disk.corrupt(&path, 0, &as_version_1(&bytes)).unwrap();
}
