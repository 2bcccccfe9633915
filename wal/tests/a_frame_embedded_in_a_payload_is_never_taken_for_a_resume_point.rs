//! What could go wrong: after a damaged frame, recovery looks at every aligned position
//! for the next valid frame (proof of durability, and where `SkipCorrupted` resumes). A
//! record's payload can hold the exact bytes of an earlier frame of the same segment (a
//! log of logs, a copied record); its checksum verifies. Taking it for a resume point
//! would return an old record again, out of order. Only frames after the lost sequence
//! may count. Found missing by cargo-mutants (docs/mutants.md).
mod common;
use common::*;
use std::path::Path;
use tidelog_wal::format::frame_len_on_disk;
use tidelog_wal::{GlobalSeq, LaneId, LaneSeq, NewFrame, OpenError, RecoveryMode, Wal};

fn append(wal: &mut Wal, seq: u64, payload: &[u8]) {
    let frame = NewFrame {
        global_seq: GlobalSeq(seq),
        lane: LaneId(0),
        lane_seq: LaneSeq(seq),
        wall_ms: 1_000 + seq,
        key: &[],
        payload,
    };
    wal.append(&[frame]).expect("append");
    wal.sync().expect("sync");
}

/// Record 1 is "first"; record 2's payload is record 1's whole frame and a tail; records
/// 3..=6 are plain. Returns (segment path, offset of record 2, payload of record 2).
fn log_with_an_embedded_frame(dir: &Path) -> (std::path::PathBuf, u64, Vec<u8>) {
    let o = opts(RecoveryMode::AbsoluteConsistency);
    {
        let (mut wal, _) = Wal::open(dir, o.clone()).expect("open");
        append(&mut wal, 1, b"first");
    }
    let (path, at1) = offsets_of(dir, &[1]).remove(0);
    let bytes = std::fs::read(&path).expect("segment");
    let len = frame_len_on_disk(0, 5).expect("len");
    let mut embedded = bytes[at1 as usize..at1 as usize + len].to_vec();
    embedded.extend_from_slice(b"tail of record two");
    {
        let (mut wal, _) = Wal::open(dir, o).expect("reopen");
        append(&mut wal, 2, &embedded);
        for seq in 3..=6 {
            append(&mut wal, seq, format!("record {seq}").as_bytes());
        }
    }
    let (path2, at2) = offsets_of(dir, &[2]).remove(0);
    assert_eq!(path2, path, "both in the first segment");
    (path, at2, embedded)
}

fn payloads(wal: &Wal) -> Vec<(u64, Vec<u8>)> {
    wal.reader()
        .iter_from(GlobalSeq(1))
        .map(|f| (f.global_seq().0, f.payload().to_vec()))
        .collect()
}

#[test]
fn skip_corrupted_resumes_at_the_next_real_frame_not_at_a_copy_inside_the_damaged_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (path, at2, embedded) = log_with_an_embedded_frame(dir.path());
    // Damage the tail of record 2's payload: its checksum fails, the embedded copy of
    // record 1 inside it stays intact.
    let tail_at = at2 + 48 + embedded.len() as u64 - 3;
    patch(&path, tail_at, b"X");
    let (wal, rec) = Wal::open(dir.path(), opts(RecoveryMode::SkipCorrupted)).expect("open");
    assert_eq!(rec.report.skipped.len(), 1, "{:?}", rec.report);
    let s = &rec.report.skipped[0];
    assert_eq!(
        (s.first_lost, s.resumed_at),
        (GlobalSeq(2), Some(GlobalSeq(3)))
    );
    let got = payloads(&wal);
    let seqs: Vec<u64> = got.iter().map(|(s, _)| *s).collect();
    assert_eq!(seqs, vec![1, 3, 4, 5, 6]);
    assert_eq!(got[0].1, b"first");
    assert_eq!(got[1].1, b"record 3");
}

#[test]
fn the_strict_mode_names_the_damage_and_the_checksum_in_its_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (path, at2, embedded) = log_with_an_embedded_frame(dir.path());
    patch(&path, at2 + 48 + embedded.len() as u64 - 3, b"X");
    let err = Wal::open(dir.path(), opts(RecoveryMode::AbsoluteConsistency))
        .err()
        .expect("refused");
    assert!(matches!(err, OpenError::CorruptDurableData { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("frame checksum mismatch") && text.contains(&format!("offset {at2}")),
        "{text}"
    );
}
