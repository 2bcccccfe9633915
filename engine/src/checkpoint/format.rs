//! The checkpoint file format, in one place. `docs/checkpoints.md` says the same in prose.
//!
//! All integers are little-endian. A checkpoint file is:
//!
//! ```text
//! offset  size  field
//!      0     8  magic            b"TDLGCKPT"
//!      8     4  format_version   CHECKPOINT_VERSION (1)
//!     12     4  flags            FLAG_MILESTONE; other bits invalid
//!     16     8  point_seq        global sequence the snapshot covers (everything <= it)
//!     24     8  point_wall_ms    wall clock of that record (informative)
//!     32     8  id               checkpoint id: unique and increasing within a database
//!     40     4  lane_count       number of lane heads that follow
//!     44     4  reserved         zero
//!     48     8  state_len        bytes of caller state that follow the lane heads
//!     56     4  reserved         zero
//!     60     4  header_crc       masked CRC-32 of bytes [0, 60)
//!     64        lane heads: lane_count x 32 bytes
//!                 +0  4  lane
//!                 +4  4  reserved zero
//!                 +8  8  lane_seq    last lane sequence of the lane at point_seq
//!                +16  8  seq         global sequence of that record
//!                +24  8  wall_ms     its wall clock
//!         ...   state (state_len bytes)
//!     end-4  4  body_crc         masked CRC-32 of everything from 64 to end-4
//! ```
//!
//! The file length must be exactly `64 + 32 * lane_count + state_len + 4`: a torn file
//! (shorter), a file with trailing garbage, a zeroed or 0xFF region (masked CRCs) never
//! verify. The header has its own checksum so a damaged length is never trusted.
//! Decoding never panics: every length is bounded before it is used.

#![deny(clippy::indexing_slicing)]

use std::fmt;
use tidelog_wal::format::mask_crc;
use tidelog_watermarks::{HlcPoint, LaneId, LaneSeq};

/// Identifies a tidelog checkpoint file.
pub const CHECKPOINT_MAGIC: [u8; 8] = *b"TDLGCKPT";
/// The checkpoint format version this code writes and reads.
pub const CHECKPOINT_VERSION: u32 = 1;
/// Flag: the checkpoint is a milestone (kept by retention forever).
pub const FLAG_MILESTONE: u32 = 1;

const MAGIC_AT: usize = 0;
const VERSION_AT: usize = MAGIC_AT + CHECKPOINT_MAGIC.len();
const FLAGS_AT: usize = VERSION_AT + 4;
const POINT_SEQ_AT: usize = FLAGS_AT + 4;
const POINT_WALL_AT: usize = POINT_SEQ_AT + 8;
const ID_AT: usize = POINT_WALL_AT + 8;
const LANE_COUNT_AT: usize = ID_AT + 8;
const RESERVED1_AT: usize = LANE_COUNT_AT + 4;
const STATE_LEN_AT: usize = RESERVED1_AT + 4;
const RESERVED2_AT: usize = STATE_LEN_AT + 8;
const HEADER_CRC_AT: usize = RESERVED2_AT + 4;
/// Length of the checkpoint header.
pub const CHECKPOINT_HEADER_LEN: usize = HEADER_CRC_AT + 4;
/// Length of one lane head entry.
pub const LANE_HEAD_LEN: usize = 32;
const BODY_CRC_LEN: usize = 4;

const _: () = assert!(CHECKPOINT_HEADER_LEN == 64);

/// Where one lane stood at the checkpoint's point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LaneHead {
    /// The lane.
    pub lane: LaneId,
    /// Its last lane sequence at the point (0: none yet).
    pub lane_seq: LaneSeq,
    /// The point of that record.
    pub point: HlcPoint,
}

/// A decoded checkpoint file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Decoded {
    pub(crate) point: HlcPoint,
    pub(crate) id: u64,
    pub(crate) milestone: bool,
    pub(crate) lanes: Vec<LaneHead>,
    pub(crate) state: Vec<u8>,
}

/// Why a checkpoint file does not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CheckpointIssue {
    /// Shorter than a header: torn or empty.
    TooShort {
        /// Its length.
        len: u64,
    },
    /// Not a checkpoint file.
    BadMagic,
    /// Written by a newer tidelog.
    UnsupportedVersion {
        /// The version found.
        found: u32,
    },
    /// The header checksum does not match.
    HeaderChecksum,
    /// Unknown flag bits or non-zero reserved fields.
    BadField,
    /// The length the header announces is not the file's length (torn or padded).
    LengthMismatch {
        /// Bytes the header announces.
        expected: u64,
        /// Bytes the file has.
        found: u64,
    },
    /// The body checksum does not match.
    BodyChecksum,
    /// The file verifies, but its header names another point, id or kind than its file
    /// name does (a file copied or renamed by hand).
    NameMismatch,
}

impl fmt::Display for CheckpointIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckpointIssue::TooShort { len } => write!(f, "only {len} bytes: torn or empty"),
            CheckpointIssue::BadMagic => f.write_str("wrong magic: not a tidelog checkpoint"),
            CheckpointIssue::UnsupportedVersion { found } => {
                write!(f, "format version {found} is newer than this build reads")
            }
            CheckpointIssue::HeaderChecksum => f.write_str("header checksum mismatch"),
            CheckpointIssue::BadField => f.write_str("unknown flags or non-zero reserved field"),
            CheckpointIssue::LengthMismatch { expected, found } => {
                write!(f, "header announces {expected} bytes, file has {found}")
            }
            CheckpointIssue::BodyChecksum => f.write_str("body checksum mismatch"),
            CheckpointIssue::NameMismatch => {
                f.write_str("header names another point, id or kind than the file name")
            }
        }
    }
}

fn crc(parts: &[&[u8]]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    for part in parts {
        hasher.update(part);
    }
    mask_crc(hasher.finalize())
}

fn put(buf: &mut [u8], at: usize, bytes: &[u8]) {
    if let Some(dst) = buf.get_mut(at..at + bytes.len()) {
        dst.copy_from_slice(bytes);
    }
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    bytes
        .get(at..at + 4)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u32::from_le_bytes)
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    bytes
        .get(at..at + 8)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u64::from_le_bytes)
}

/// Encodes a checkpoint file.
pub(crate) fn encode(
    point: HlcPoint,
    id: u64,
    milestone: bool,
    lanes: &[LaneHead],
    state: &[u8],
) -> Vec<u8> {
    let body_len = lanes.len() * LANE_HEAD_LEN + state.len();
    let mut out = vec![0u8; CHECKPOINT_HEADER_LEN + body_len + BODY_CRC_LEN];
    put(&mut out, MAGIC_AT, &CHECKPOINT_MAGIC);
    put(&mut out, VERSION_AT, &CHECKPOINT_VERSION.to_le_bytes());
    let flags = if milestone { FLAG_MILESTONE } else { 0 };
    put(&mut out, FLAGS_AT, &flags.to_le_bytes());
    put(&mut out, POINT_SEQ_AT, &point.global_sequence.to_le_bytes());
    put(&mut out, POINT_WALL_AT, &point.wall_ms.to_le_bytes());
    put(&mut out, ID_AT, &id.to_le_bytes());
    put(&mut out, LANE_COUNT_AT, &(lanes.len() as u32).to_le_bytes());
    put(&mut out, STATE_LEN_AT, &(state.len() as u64).to_le_bytes());
    let header_crc = crc(&[out.get(..HEADER_CRC_AT).unwrap_or(&[])]);
    put(&mut out, HEADER_CRC_AT, &header_crc.to_le_bytes());
    let mut at = CHECKPOINT_HEADER_LEN;
    for head in lanes {
        put(&mut out, at, &head.lane.0.to_le_bytes());
        put(&mut out, at + 8, &head.lane_seq.get().to_le_bytes());
        put(&mut out, at + 16, &head.point.global_sequence.to_le_bytes());
        put(&mut out, at + 24, &head.point.wall_ms.to_le_bytes());
        at += LANE_HEAD_LEN;
    }
    put(&mut out, at, state);
    let body_end = CHECKPOINT_HEADER_LEN + body_len;
    let body_crc = crc(&[out.get(CHECKPOINT_HEADER_LEN..body_end).unwrap_or(&[])]);
    put(&mut out, body_end, &body_crc.to_le_bytes());
    out
}

/// Decodes and verifies a checkpoint file.
pub(crate) fn decode(bytes: &[u8]) -> Result<Decoded, CheckpointIssue> {
    let header = bytes
        .get(..CHECKPOINT_HEADER_LEN)
        .ok_or(CheckpointIssue::TooShort {
            len: bytes.len() as u64,
        })?;
    if header.get(..8) != Some(&CHECKPOINT_MAGIC[..]) {
        return Err(CheckpointIssue::BadMagic);
    }
    if crc(&[header.get(..HEADER_CRC_AT).unwrap_or(&[])]) != u32_at(header, HEADER_CRC_AT) {
        return Err(CheckpointIssue::HeaderChecksum);
    }
    let version = u32_at(header, VERSION_AT);
    if version != CHECKPOINT_VERSION {
        return Err(CheckpointIssue::UnsupportedVersion { found: version });
    }
    let flags = u32_at(header, FLAGS_AT);
    if flags & !FLAG_MILESTONE != 0
        || u32_at(header, RESERVED1_AT) != 0
        || u32_at(header, RESERVED2_AT) != 0
    {
        return Err(CheckpointIssue::BadField);
    }
    let lane_count = u64::from(u32_at(header, LANE_COUNT_AT));
    let state_len = u64_at(header, STATE_LEN_AT);
    let expected = lane_count
        .checked_mul(LANE_HEAD_LEN as u64)
        .and_then(|l| l.checked_add(state_len))
        .and_then(|l| l.checked_add((CHECKPOINT_HEADER_LEN + BODY_CRC_LEN) as u64))
        .unwrap_or(u64::MAX);
    if expected != bytes.len() as u64 {
        return Err(CheckpointIssue::LengthMismatch {
            expected,
            found: bytes.len() as u64,
        });
    }
    let body_end = bytes.len() - BODY_CRC_LEN;
    let body = bytes
        .get(CHECKPOINT_HEADER_LEN..body_end)
        .ok_or(CheckpointIssue::BodyChecksum)?;
    if crc(&[body]) != u32_at(bytes, body_end) {
        return Err(CheckpointIssue::BodyChecksum);
    }
    let lanes_len = (lane_count as usize) * LANE_HEAD_LEN;
    let lanes = body
        .get(..lanes_len)
        .unwrap_or(&[])
        .chunks_exact(LANE_HEAD_LEN)
        .map(|entry| LaneHead {
            lane: LaneId(u32_at(entry, 0)),
            lane_seq: LaneSeq(u64_at(entry, 8)),
            point: HlcPoint {
                global_sequence: u64_at(entry, 16),
                wall_ms: u64_at(entry, 24),
            },
        })
        .collect();
    Ok(Decoded {
        point: HlcPoint {
            global_sequence: u64_at(header, POINT_SEQ_AT),
            wall_ms: u64_at(header, POINT_WALL_AT),
        },
        id: u64_at(header, ID_AT),
        milestone: flags & FLAG_MILESTONE != 0,
        lanes,
        state: body.get(lanes_len..).unwrap_or(&[]).to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> Vec<u8> {
        let lanes = [LaneHead {
            lane: LaneId(3),
            lane_seq: LaneSeq(9),
            point: HlcPoint {
                wall_ms: 5,
                global_sequence: 40,
            },
        }];
        encode(
            HlcPoint {
                wall_ms: 7,
                global_sequence: 42,
            },
            11,
            true,
            &lanes,
            b"state bytes",
        )
    }

    #[test]
    fn a_checkpoint_round_trips() {
        let decoded = decode(&sample()).unwrap();
        assert_eq!(decoded.point.global_sequence, 42);
        assert_eq!(decoded.id, 11);
        assert!(decoded.milestone);
        assert_eq!(decoded.lanes.len(), 1);
        assert_eq!(decoded.lanes[0].lane_seq, LaneSeq(9));
        assert_eq!(decoded.state, b"state bytes");
    }

    #[test]
    fn every_truncation_and_every_flipped_bit_is_detected() {
        let bytes = sample();
        for len in 0..bytes.len() {
            assert!(decode(&bytes[..len]).is_err(), "cut at {len}");
        }
        for at in 0..bytes.len() {
            for bit in 0..8 {
                let mut damaged = bytes.clone();
                damaged[at] ^= 1 << bit;
                assert!(decode(&damaged).is_err(), "bit {bit} of byte {at}");
            }
        }
        let mut padded = bytes.clone();
        padded.push(0);
        assert!(decode(&padded).is_err());
        assert!(decode(&vec![0; bytes.len()]).is_err());
        assert!(decode(&vec![0xff; bytes.len()]).is_err());
    }

    proptest! {
        #[test]
        fn decoding_any_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode(&bytes);
        }
    }
}
