//! Entry points of the fuzz targets in `fuzz/`, public so that the corpus replay test
//! (`wal/tests/fuzz_corpus_replays.rs`) runs exactly the code the fuzzer runs. Each
//! function panics only when an invariant of the log is broken: that is the finding.

use crate::format::{
    decode_frame, encode_frame_header, FrameCheck, SegmentHeader, SeqRule, FRAME_HEADER_LEN,
};
use crate::ids::SegmentIndex;
use crate::io::SimDisk;
use crate::recovery::{verify_with, RecoveryMode};
use crate::writer::{NewFrame, Wal, WalOptions};
use std::path::Path;
use tidelog_watermarks::{GlobalSeq, LaneId, LaneSeq};

fn u64_at(data: &[u8], at: usize) -> u64 {
    let mut buf = [0u8; 8];
    if let Some(src) = data.get(at..at + 8) {
        buf.copy_from_slice(src);
    }
    u64::from_le_bytes(buf)
}

/// Feeds arbitrary bytes to the frame and header decoders. Input: 8 bytes of expected
/// sequence, 1 byte of segment index, 2 bytes of offset, then the buffer. A frame that
/// verifies must re-encode to the same header bytes and lie inside the buffer.
///
/// # Panics
/// If a decoded frame is inconsistent with its bytes.
pub fn frame_decode(data: &[u8]) {
    let seq = GlobalSeq(u64_at(data, 0));
    let segment = SegmentIndex(u64::from(data.get(8).copied().unwrap_or(1)));
    let at = usize::from(u16::from_le_bytes([
        data.get(9).copied().unwrap_or(0),
        data.get(10).copied().unwrap_or(0),
    ]));
    let buf = data.get(11..).unwrap_or(&[]);
    let _ = SegmentHeader::decode(buf, segment);
    for rule in [SeqRule::Exactly(seq), SeqRule::After(seq)] {
        let check = FrameCheck { segment, seq: rule };
        if let Ok(frame) = decode_frame(buf, at, &check) {
            let used = FRAME_HEADER_LEN + frame.key.len() + frame.payload.len();
            assert!(used <= frame.len_on_disk, "frame longer than its slot");
            assert!(at + frame.len_on_disk <= buf.len(), "frame past the buffer");
            let again = encode_frame_header(segment, &frame.header, frame.key, frame.payload);
            assert_eq!(
                again.as_ref().map(|h| &h[..]),
                buf.get(at..at + FRAME_HEADER_LEN),
                "a verified frame must re-encode to its own bytes"
            );
        }
    }
}

const FUZZ_SEGMENT: u64 = 4096;

fn fuzz_opts(mode: RecoveryMode) -> WalOptions {
    WalOptions {
        segment_size: FUZZ_SEGMENT,
        max_record_bytes: 1024,
        recovery_mode: mode,
        prepare_in_background: false,
        ..WalOptions::default()
    }
}

fn payload_for(seq: u64) -> Vec<u8> {
    (0..(seq * 37 % 300)).map(|i| (seq + i) as u8).collect()
}

/// Appends units of 1 to 3 records from `from`, syncing every third unit, and returns the
/// last sequence written.
fn write_units(wal: &mut Wal<SimDisk>, from: u64, count: u64) -> u64 {
    let mut seq = from;
    let mut unit_no = 0u64;
    while seq < from + count {
        let size = 1 + unit_no % 3;
        let payloads: Vec<Vec<u8>> = (seq..seq + size).map(payload_for).collect();
        let unit: Vec<NewFrame<'_>> = payloads
            .iter()
            .enumerate()
            .map(|(i, p)| NewFrame {
                global_seq: GlobalSeq(seq + i as u64),
                lane: LaneId((seq % 4) as u32),
                lane_seq: LaneSeq(seq + i as u64),
                wall_ms: seq,
                key: if i == 0 { b"k" } else { b"" },
                payload: p,
            })
            .collect();
        if wal.append(&unit).is_err() {
            break;
        }
        seq += size;
        unit_no += 1;
        if unit_no % 3 == 0 && wal.sync().is_err() {
            break;
        }
    }
    wal.last_written().0
}

/// Builds a small log on a simulated disk, damages it as `data` says, then recovers it in
/// the mode `data[0]` picks and checks what comes back. `data[1]` even: the rest of `data`
/// replaces the first segment's bytes; odd: the rest is a list of (offset u16, byte)
/// patches over the log's files.
///
/// # Panics
/// If recovery returns a log that breaks an invariant: frames out of order or past the
/// recovered end, or a log that cannot take and keep a new record.
pub fn segment_recovery(data: &[u8]) {
    let mode = match data.first().copied().unwrap_or(0) % 3 {
        0 => RecoveryMode::AbsoluteConsistency,
        1 => RecoveryMode::TolerateCorruptedTail,
        _ => RecoveryMode::SkipCorrupted,
    };
    let raw = data.get(1).copied().unwrap_or(0) % 2 == 0;
    let rest = data.get(2..).unwrap_or(&[]);
    let dir = Path::new("/fuzz/wal");
    let disk = SimDisk::new();
    {
        let Ok((mut wal, _)) = Wal::open_with(disk.clone(), dir, fuzz_opts(mode)) else {
            return;
        };
        write_units(&mut wal, 1, 60);
    }
    let mut files = disk.paths();
    files.sort();
    if raw {
        if let Some(first) = files.first() {
            let n = rest.len().min(FUZZ_SEGMENT as usize);
            let _ = disk.corrupt(first, 0, rest.get(..n).unwrap_or(&[]));
        }
    } else {
        for patch in rest.chunks_exact(3) {
            let (Some(&lo), Some(&hi), Some(&value)) = (patch.first(), patch.get(1), patch.get(2))
            else {
                continue;
            };
            let offset = usize::from(u16::from_le_bytes([lo, hi]));
            let file = offset / 1024 % files.len().max(1);
            let at = offset % FUZZ_SEGMENT as usize;
            if let Some(path) = files.get(file) {
                let _ = disk.corrupt(path, at, &[value]);
            }
        }
    }
    let _ = verify_with(&disk, dir, &fuzz_opts(mode));
    let last = match Wal::open_with(disk.clone(), dir, fuzz_opts(mode)) {
        Ok((mut wal, recovered)) => {
            let reader = wal.reader();
            let mut prev = GlobalSeq::ZERO;
            for frame in reader.iter_from(GlobalSeq(1)) {
                assert!(frame.global_seq() > prev, "frames out of order");
                assert!(
                    frame.global_seq() <= recovered.last_seq,
                    "frame past the end"
                );
                prev = frame.global_seq();
            }
            let written = write_units(&mut wal, recovered.last_seq.0 + 1, 4);
            assert!(wal.sync().is_ok(), "a recovered log must take new records");
            written
        }
        Err(_) => return,
    };
    let reopened = Wal::open_with(disk, dir, fuzz_opts(mode));
    let (_, recovered) = match reopened {
        Ok(ok) => ok,
        Err(e) => panic!("a log that recovered once must reopen: {e}"),
    };
    assert_eq!(recovered.last_seq.0, last, "synced records must come back");
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_fuzz_entry_points_accept_empty_and_short_inputs() {
        for input in [&[][..], &[1], &[2, 1], &[1, 1, 5, 0, 7]] {
            super::frame_decode(input);
            super::segment_recovery(input);
        }
    }
}
