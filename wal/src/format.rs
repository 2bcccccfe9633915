//! The on-disk format, in one place. `docs/format.md` says the same in prose.
//!
//! All integers are little-endian. A segment file is a fixed-size file:
//!
//! ```text
//! +----------------+---------+---------+-----+-------------+----------------------+
//! | segment header | frame 1 | frame 2 | ... | [seal frame]| zeros to the end     |
//! | 64 bytes       | 8-byte aligned frames                 | (preallocated space) |
//! +----------------+---------+---------+-----+-------------+----------------------+
//! ```
//!
//! ## Segment header ([`SEGMENT_HEADER_LEN`] = 64 bytes)
//!
//! ```text
//! offset  size  field
//!      0     8  magic               b"TDLGWAL\0"
//!      8     4  format_version      FORMAT_VERSION (1)
//!     12     4  header_len          SEGMENT_HEADER_LEN (lets a later version grow it)
//!     16     8  segment_index       must equal the index in the file name
//!     24     8  first_global_seq    global sequence of the first frame in this segment
//!     32     8  fencing_term        token of the writer that created the segment
//!     40     8  fencing_generation
//!     48     8  segment_size        total file length in bytes
//!     56     4  flags               version 3: HEADER_FLAG_REUSED; versions 1 and 2: zero
//!     60     4  header_crc          masked CRC-32 of bytes [0, 60)
//! ```
//!
//! ## Frame ([`FRAME_HEADER_LEN`] = 48 bytes of header, then key, payload, zero padding)
//!
//! ```text
//! offset  size  field
//!      0     4  frame_len           header + key + payload, unpadded; >= FRAME_HEADER_LEN
//!      4     4  crc                 masked CRC-32 of: segment_index (8 bytes LE) ++
//!                                   header bytes [8, 48) ++ key ++ payload
//!      8     8  global_seq          must be exactly the next sequence of the log
//!     16     8  lane_seq
//!     24     8  wall_ms
//!     32     8  durable_hint        the durable global sequence the writer knew when
//!                                   it wrote this frame (proves earlier frames synced)
//!     40     4  lane
//!     44     2  flags               FLAG_FIRST | FLAG_LAST | FLAG_SEAL; other bits invalid
//!     46     2  key_len             idempotency key length; key_len <= frame_len - 48
//!     48        key, then payload, then zeros up to the next multiple of 8
//! ```
//!
//! Between two units the writer may leave zeros up to the next [`SECTOR_LEN`] boundary:
//! it does so after every sync, so that no sector holding synced bytes is ever written
//! again. Readers skip such zero padding only between units.
//!
//! An atomic unit (one record or a batch) is a run of frames: the first carries
//! `FLAG_FIRST`, the last `FLAG_LAST` (a single-frame unit carries both). A unit never spans
//! two segments. A sealed segment ends with a seal frame: flags `FIRST|LAST|SEAL`, no key
//! or payload, lane and lane sequence 0, `global_seq` = the first sequence of the next
//! segment.
//!
//! A tenure frame (format version 2) opens a writer's tenure inside a segment it continues
//! (a segment created under an older token): flags `FIRST|TENURE|LAST`, no key, a 16-byte
//! payload holding the writer's fencing term and generation, lane and lane sequence 0,
//! `global_seq` = the next sequence of the log (not consumed, like a seal's). Recovery
//! takes the highest token seen so far, in headers and tenure frames, frame by frame: a
//! tenure frame below it, or a later segment created under a lower token, is a fenced
//! writer's and is refused; a token above the opener's means the opener is fenced.
//!
//! Why a frame cannot verify by accident: the CRC is masked (LevelDB's rotate-by-15 plus a
//! constant), so a zeroed or all-0xFF region never checks; the CRC covers the segment index,
//! so a frame copied from another segment never checks; `frame_len` is bounded before use;
//! the sequence must be the expected next one.
//!
//! Decoders here never panic: every length is bounded before it is used, and every read
//! goes through `get`.

#![deny(clippy::indexing_slicing)]

use crate::ids::{FencingToken, SegmentIndex};
use std::fmt;
use tidelog_watermarks::{GlobalSeq, LaneId, LaneSeq};

/// Identifies a tidelog segment file.
pub const SEGMENT_MAGIC: [u8; 8] = *b"TDLGWAL\0";
/// The format version this code writes for a segment made from a fresh, zero-filled file.
/// See `docs/format.md` for the rule. Version 2 adds the tenure frame ([`FLAG_TENURE`]),
/// which lets a new writer continue a segment.
pub const FORMAT_VERSION: u32 = 2;
/// The format version written for a segment made from a file reused after truncation
/// ([`SegmentHeader::encode_reused`]): version 3 gives the header's bytes 56..60 a meaning,
/// [`HEADER_FLAG_REUSED`]. A segment written as version 2 is the same as before, so a
/// build that reads only versions 1 and 2 still reads a log that never reused a file.
pub const REUSED_FORMAT_VERSION: u32 = 3;
/// The newest format version this code reads.
pub const NEWEST_READ_VERSION: u32 = REUSED_FORMAT_VERSION;
/// Header flag (version 3): the segment's file held an earlier segment (freed by
/// truncation) and was not zero-filled, so bytes past the end of this segment's frames may
/// be that earlier life's. None of them verifies here (the frame CRC covers the segment
/// index); recovery and the scans end the log at them instead of calling them a torn tail,
/// and the writer stores zeros up to the next sector boundary after every store.
pub const HEADER_FLAG_REUSED: u32 = 1;
const KNOWN_HEADER_FLAGS: u32 = HEADER_FLAG_REUSED;
/// The oldest format version this code reads. A version-1 segment never holds a tenure
/// frame, and a writer never continues one (it seals it and starts a version-2 segment).
pub const OLDEST_READ_VERSION: u32 = 1;

const MAGIC_AT: usize = 0;
const VERSION_AT: usize = MAGIC_AT + SEGMENT_MAGIC.len();
const HEADER_LEN_AT: usize = VERSION_AT + 4;
const INDEX_AT: usize = HEADER_LEN_AT + 4;
const FIRST_SEQ_AT: usize = INDEX_AT + 8;
const TERM_AT: usize = FIRST_SEQ_AT + 8;
const GENERATION_AT: usize = TERM_AT + 8;
const SEGMENT_SIZE_AT: usize = GENERATION_AT + 8;
const HEADER_FLAGS_AT: usize = SEGMENT_SIZE_AT + 8;
const HEADER_CRC_AT: usize = HEADER_FLAGS_AT + 4;
/// Length of the segment header in bytes.
pub const SEGMENT_HEADER_LEN: usize = HEADER_CRC_AT + 4;

const FRAME_LEN_AT: usize = 0;
const FRAME_CRC_AT: usize = FRAME_LEN_AT + 4;
const SEQ_AT: usize = FRAME_CRC_AT + 4;
const LANE_SEQ_AT: usize = SEQ_AT + 8;
const WALL_AT: usize = LANE_SEQ_AT + 8;
const HINT_AT: usize = WALL_AT + 8;
const LANE_AT: usize = HINT_AT + 8;
const FLAGS_AT: usize = LANE_AT + 4;
const KEY_LEN_AT: usize = FLAGS_AT + 2;
/// Length of a frame header in bytes.
pub const FRAME_HEADER_LEN: usize = KEY_LEN_AT + 2;
/// Frames start at multiples of this.
pub const FRAME_ALIGN: usize = 8;
/// The disk sector the log assumes. After a sync the writer continues at the next multiple
/// of this, so a sector holding synced bytes is never written again (a torn rewrite of it
/// could otherwise destroy durable frames). The skipped bytes are zeros.
pub const SECTOR_LEN: usize = 512;
/// Bytes a seal frame occupies: a bare header.
pub const SEAL_FRAME_LEN: usize = FRAME_HEADER_LEN;
/// Longest key, in bytes, a frame's 16-bit key length can name. The engine keeps
/// idempotency keys well below it (`tidelog::IDEMPOTENCY_KEY_LEN_MAX`).
pub const FRAME_KEY_LEN_MAX: usize = u16::MAX as usize;
/// Smallest segment size accepted: room for the header, one small frame and the seal.
pub const MIN_SEGMENT_SIZE: u64 = 4096;
/// Largest segment size: in-segment offsets are stored as `u32`.
pub const MAX_SEGMENT_SIZE: u64 = (u32::MAX as u64) & !(FRAME_ALIGN as u64 - 1);

/// Flag: the frame opens an atomic unit.
pub const FLAG_FIRST: u16 = 1;
/// Flag: the frame closes an atomic unit.
pub const FLAG_LAST: u16 = 1 << 1;
/// Flag: the frame seals its segment (see the module docs).
pub const FLAG_SEAL: u16 = 1 << 2;
/// Flag: the frame opens a writer's tenure in this segment and carries its fencing token
/// (format version 2; see the module docs).
pub const FLAG_TENURE: u16 = 1 << 3;
const KNOWN_FLAGS: u16 = FLAG_FIRST | FLAG_LAST | FLAG_SEAL | FLAG_TENURE;
/// The exact flags of a seal frame.
pub const SEAL_FLAGS: u16 = FLAG_FIRST | FLAG_LAST | FLAG_SEAL;
/// The exact flags of a tenure frame.
pub const TENURE_FLAGS: u16 = FLAG_FIRST | FLAG_LAST | FLAG_TENURE;
/// Payload of a tenure frame: the fencing term then the generation, 8 bytes each.
pub const TENURE_PAYLOAD_LEN: usize = 16;
/// Bytes a tenure frame occupies: a header and its payload.
pub const TENURE_FRAME_LEN: usize = FRAME_HEADER_LEN + TENURE_PAYLOAD_LEN;

const _: () = assert!(SEGMENT_HEADER_LEN == 64);
const _: () = assert!(FRAME_HEADER_LEN == 48);
const _: () = assert!(SEGMENT_HEADER_LEN % FRAME_ALIGN == 0);
const _: () = assert!(FRAME_HEADER_LEN % FRAME_ALIGN == 0);
const _: () = assert!(SECTOR_LEN % FRAME_ALIGN == 0 && SEAL_FRAME_LEN <= SECTOR_LEN);
const _: () = assert!(TENURE_FRAME_LEN % FRAME_ALIGN == 0 && TENURE_FRAME_LEN <= SECTOR_LEN);

const CRC_MASK_DELTA: u32 = 0xa282_ead8;

/// Masks a CRC the way LevelDB does (rotate right by 15, add a constant), so that a CRC
/// stored next to the data it covers does not make runs of zeros or 0xFF self-verifying.
#[must_use]
pub fn mask_crc(crc: u32) -> u32 {
    crc.rotate_right(15).wrapping_add(CRC_MASK_DELTA)
}

/// Rounds `len` up to the frame alignment. `None` on overflow.
#[must_use]
pub fn align_up(len: usize) -> Option<usize> {
    len.checked_add(FRAME_ALIGN - 1)
        .map(|v| v & !(FRAME_ALIGN - 1))
}

/// Rounds `offset` up to the next sector boundary. `None` on overflow.
#[must_use]
pub fn sector_align_up(offset: usize) -> Option<usize> {
    offset
        .checked_add(SECTOR_LEN - 1)
        .map(|v| v & !(SECTOR_LEN - 1))
}

/// Bytes a record frame with this key and payload occupies on disk, padding included.
#[must_use]
pub fn frame_len_on_disk(key_len: usize, payload_len: usize) -> Option<usize> {
    FRAME_HEADER_LEN
        .checked_add(key_len)?
        .checked_add(payload_len)
        .and_then(align_up)
}

/// The decoded contents of a segment header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentHeader {
    /// Index of the segment (matches the file name).
    pub index: SegmentIndex,
    /// Global sequence of the segment's first frame.
    pub first_seq: GlobalSeq,
    /// Token of the writer that created the segment.
    pub fencing: FencingToken,
    /// Total file length in bytes.
    pub segment_size: u64,
}

/// Why a segment header does not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HeaderIssue {
    /// The file is shorter than a header.
    TooShort {
        /// Bytes available.
        len: u64,
    },
    /// The header is all zeros: a prepared segment that was never used.
    Unused,
    /// The magic bytes are not tidelog's: not a segment.
    BadMagic,
    /// A version this code does not know how to read.
    UnsupportedVersion {
        /// Version found in the file.
        found: u32,
    },
    /// The stored header length disagrees with this version's.
    BadHeaderLen {
        /// Length found.
        found: u32,
    },
    /// Header flags this code does not know (version 3).
    UnknownFlags {
        /// The flags found.
        flags: u32,
    },
    /// The header checksum does not match.
    Checksum {
        /// Stored (masked) checksum.
        stored: u32,
        /// Computed (masked) checksum.
        computed: u32,
    },
    /// The header belongs to another segment than the file name says.
    WrongIndex {
        /// Index from the file name.
        expected: SegmentIndex,
        /// Index in the header.
        found: SegmentIndex,
    },
    /// The header's segment size disagrees with the file length.
    WrongSize {
        /// File length.
        file_len: u64,
        /// Size in the header.
        found: u64,
    },
}

impl fmt::Display for HeaderIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeaderIssue::TooShort { len } => write!(f, "file of {len} bytes is shorter than a segment header"),
            HeaderIssue::Unused => write!(f, "segment header is all zeros (prepared, never used)"),
            HeaderIssue::BadMagic => write!(f, "bad magic: not a tidelog segment"),
            HeaderIssue::UnsupportedVersion { found } => write!(
                f,
                "format version {found} is not supported (this build reads versions {OLDEST_READ_VERSION} to {NEWEST_READ_VERSION}); use a tidelog build that supports it"
            ),
            HeaderIssue::UnknownFlags { flags } => write!(f, "header flags {flags:#x} are not known to this build; use a tidelog build that supports them"),
            HeaderIssue::BadHeaderLen { found } => write!(f, "header length {found} does not match version {FORMAT_VERSION}"),
            HeaderIssue::Checksum { stored, computed } => {
                write!(f, "header checksum mismatch (stored {stored:#010x}, computed {computed:#010x})")
            }
            HeaderIssue::WrongIndex { expected, found } => {
                write!(f, "header says segment {found} but the file name says {expected}")
            }
            HeaderIssue::WrongSize { file_len, found } => {
                write!(f, "header says {found} bytes but the file has {file_len}")
            }
        }
    }
}

fn get_u16(buf: &[u8], at: usize) -> Option<u16> {
    let bytes = buf.get(at..at.checked_add(2)?)?;
    Some(u16::from_le_bytes(bytes.try_into().ok()?))
}

fn get_u32(buf: &[u8], at: usize) -> Option<u32> {
    let bytes = buf.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes(bytes.try_into().ok()?))
}

fn get_u64(buf: &[u8], at: usize) -> Option<u64> {
    let bytes = buf.get(at..at.checked_add(8)?)?;
    Some(u64::from_le_bytes(bytes.try_into().ok()?))
}

fn put(buf: &mut [u8], at: usize, bytes: &[u8]) {
    if let Some(dst) = at
        .checked_add(bytes.len())
        .and_then(|end| buf.get_mut(at..end))
    {
        dst.copy_from_slice(bytes);
    }
}

impl SegmentHeader {
    /// Encodes the header with its checksum (version [`FORMAT_VERSION`], no flags).
    #[must_use]
    pub fn encode(&self) -> [u8; SEGMENT_HEADER_LEN] {
        self.encode_as(FORMAT_VERSION, 0)
    }

    /// Encodes the header of a segment whose file is reused (version
    /// [`REUSED_FORMAT_VERSION`], flag [`HEADER_FLAG_REUSED`]).
    #[must_use]
    pub fn encode_reused(&self) -> [u8; SEGMENT_HEADER_LEN] {
        self.encode_as(REUSED_FORMAT_VERSION, HEADER_FLAG_REUSED)
    }

    fn encode_as(&self, version: u32, flags: u32) -> [u8; SEGMENT_HEADER_LEN] {
        let mut buf = [0u8; SEGMENT_HEADER_LEN];
        put(&mut buf, MAGIC_AT, &SEGMENT_MAGIC);
        put(&mut buf, VERSION_AT, &version.to_le_bytes());
        put(
            &mut buf,
            HEADER_LEN_AT,
            &(SEGMENT_HEADER_LEN as u32).to_le_bytes(),
        );
        put(&mut buf, INDEX_AT, &self.index.0.to_le_bytes());
        put(&mut buf, FIRST_SEQ_AT, &self.first_seq.0.to_le_bytes());
        put(&mut buf, TERM_AT, &self.fencing.term.to_le_bytes());
        put(
            &mut buf,
            GENERATION_AT,
            &self.fencing.generation.to_le_bytes(),
        );
        put(&mut buf, SEGMENT_SIZE_AT, &self.segment_size.to_le_bytes());
        put(&mut buf, HEADER_FLAGS_AT, &flags.to_le_bytes());
        let crc = mask_crc(crc32fast::hash(buf.get(..HEADER_CRC_AT).unwrap_or(&[])));
        put(&mut buf, HEADER_CRC_AT, &crc.to_le_bytes());
        buf
    }

    /// Decodes and verifies the header at the start of `buf`, the whole segment file
    /// (its length is checked against the header). `expected` is the index from the file
    /// name. Never panics.
    pub fn decode(buf: &[u8], expected: SegmentIndex) -> Result<SegmentHeader, HeaderIssue> {
        Self::decode_head(buf, buf.len() as u64, expected)
    }

    /// The header of a segment file cut short: one that verifies in every field, but
    /// names a segment size above the file's length (`file_len`, at least
    /// [`SEGMENT_HEADER_LEN`]). `None` for any other header, a whole file included.
    /// Recovery reads such a file as the newest segment up to where it was cut. Never
    /// panics.
    #[must_use]
    pub fn decode_cut_short(
        head: &[u8],
        file_len: u64,
        expected: SegmentIndex,
    ) -> Option<SegmentHeader> {
        let size = get_u64(head, SEGMENT_SIZE_AT)?;
        if file_len >= size || file_len < SEGMENT_HEADER_LEN as u64 {
            return None;
        }
        Self::decode_head(head, size, expected).ok()
    }

    /// As [`decode`](Self::decode), for a reader that holds only the first bytes of the
    /// file (at least [`SEGMENT_HEADER_LEN`]) and knows the file's length. Never panics.
    pub fn decode_head(
        head: &[u8],
        file_len: u64,
        expected: SegmentIndex,
    ) -> Result<SegmentHeader, HeaderIssue> {
        let too_short = HeaderIssue::TooShort { len: file_len };
        if file_len < SEGMENT_HEADER_LEN as u64 {
            return Err(too_short);
        }
        let head = head.get(..SEGMENT_HEADER_LEN).ok_or(too_short)?;
        if head.iter().all(|&b| b == 0) {
            return Err(HeaderIssue::Unused);
        }
        if head.get(MAGIC_AT..VERSION_AT) != Some(&SEGMENT_MAGIC[..]) {
            return Err(HeaderIssue::BadMagic);
        }
        let version = get_u32(head, VERSION_AT).ok_or(too_short)?;
        if !(OLDEST_READ_VERSION..=NEWEST_READ_VERSION).contains(&version) {
            return Err(HeaderIssue::UnsupportedVersion { found: version });
        }
        let stored = get_u32(head, HEADER_CRC_AT).ok_or(too_short)?;
        let computed = mask_crc(crc32fast::hash(head.get(..HEADER_CRC_AT).ok_or(too_short)?));
        if stored != computed {
            return Err(HeaderIssue::Checksum { stored, computed });
        }
        let header_len = get_u32(head, HEADER_LEN_AT).ok_or(too_short)?;
        if header_len as usize != SEGMENT_HEADER_LEN {
            return Err(HeaderIssue::BadHeaderLen { found: header_len });
        }
        let flags = header_flags(head);
        if flags & !KNOWN_HEADER_FLAGS != 0 {
            return Err(HeaderIssue::UnknownFlags { flags });
        }
        let index = SegmentIndex(get_u64(head, INDEX_AT).ok_or(too_short)?);
        if index != expected {
            return Err(HeaderIssue::WrongIndex {
                expected,
                found: index,
            });
        }
        let segment_size = get_u64(head, SEGMENT_SIZE_AT).ok_or(too_short)?;
        if segment_size != file_len {
            return Err(HeaderIssue::WrongSize {
                file_len,
                found: segment_size,
            });
        }
        Ok(SegmentHeader {
            index,
            first_seq: GlobalSeq(get_u64(head, FIRST_SEQ_AT).ok_or(too_short)?),
            fencing: FencingToken {
                term: get_u64(head, TERM_AT).ok_or(too_short)?,
                generation: get_u64(head, GENERATION_AT).ok_or(too_short)?,
            },
            segment_size,
        })
    }
}

/// The format version stored in a segment header that [`SegmentHeader::decode`] accepted
/// (`None` if the bytes are too short to hold one).
#[must_use]
pub fn header_version(head: &[u8]) -> Option<u32> {
    get_u32(head, VERSION_AT)
}

/// The flags of a segment header (bytes 56..60, from version 3 on; 0 for older versions,
/// whose bytes there are reserved).
#[must_use]
pub fn header_flags(head: &[u8]) -> u32 {
    match header_version(head) {
        Some(v) if v >= REUSED_FORMAT_VERSION => get_u32(head, HEADER_FLAGS_AT).unwrap_or(0),
        _ => 0,
    }
}

/// Whether a segment header that [`SegmentHeader::decode`] accepted carries
/// [`HEADER_FLAG_REUSED`].
#[must_use]
pub fn header_is_reused(head: &[u8]) -> bool {
    header_flags(head) & HEADER_FLAG_REUSED != 0
}

/// Length of the mark a reused file carries at offset [`SECTOR_LEN`] while it is a
/// prepared, never used segment (see [`encode_reuse_mark`]).
pub const REUSE_MARK_LEN: usize = 24;
const REUSE_MARK_MAGIC: [u8; 8] = *b"TDLGREU\0";

/// The mark stored at offset [`SECTOR_LEN`] (the first frame's place) of a file prepared
/// for reuse as segment `index`, its header sector zeroed: 4 zero bytes (a frame length
/// of 0, so it never reads as a frame), the magic `TDLGREU\0`, the index, and a masked
/// CRC-32 of bytes 0..20. With the header zero (or torn by a crash while the rotation
/// wrote it), the mark says the segment is prepared and unused although its body is not
/// zero. The writer's first frame overwrites it, after the header is synced.
#[must_use]
pub fn encode_reuse_mark(index: SegmentIndex) -> [u8; REUSE_MARK_LEN] {
    let mut buf = [0u8; REUSE_MARK_LEN];
    put(&mut buf, 4, &REUSE_MARK_MAGIC);
    put(&mut buf, 12, &index.0.to_le_bytes());
    let crc = mask_crc(crc32fast::hash(buf.get(..20).unwrap_or(&[])));
    put(&mut buf, 20, &crc.to_le_bytes());
    buf
}

/// Whether `segment_bytes` (a whole segment file, or at least its first
/// `SECTOR_LEN + REUSE_MARK_LEN` bytes) carries the reuse mark of segment `index` at
/// offset [`SECTOR_LEN`]. Never panics.
#[must_use]
pub fn has_reuse_mark(segment_bytes: &[u8], index: SegmentIndex) -> bool {
    segment_bytes
        .get(SECTOR_LEN..SECTOR_LEN + REUSE_MARK_LEN)
        .is_some_and(|mark| mark == encode_reuse_mark(index))
}

/// The fixed fields of a frame header (everything but length and checksum).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// Position in the global order.
    pub global_seq: GlobalSeq,
    /// Lane of the record (0 for a seal).
    pub lane: LaneId,
    /// Position within the lane (0 for a seal).
    pub lane_seq: LaneSeq,
    /// Wall clock of the record, milliseconds since the Unix epoch (informative).
    pub wall_ms: u64,
    /// Durable global sequence the writer knew when it wrote this frame.
    pub durable_hint: GlobalSeq,
    /// `FLAG_*` bits.
    pub flags: u16,
}

impl FrameHeader {
    /// Whether the frame opens an atomic unit.
    #[must_use]
    pub fn is_first(&self) -> bool {
        self.flags & FLAG_FIRST != 0
    }
    /// Whether the frame closes an atomic unit.
    #[must_use]
    pub fn is_last(&self) -> bool {
        self.flags & FLAG_LAST != 0
    }
    /// Whether this is a seal frame.
    #[must_use]
    pub fn is_seal(&self) -> bool {
        self.flags & FLAG_SEAL != 0
    }
    /// Whether this is a tenure frame.
    #[must_use]
    pub fn is_tenure(&self) -> bool {
        self.flags & FLAG_TENURE != 0
    }
}

/// Encodes a tenure frame (see the module docs) for segment `segment`: the writer holding
/// `token` continues the log there at `next_seq`.
#[must_use]
pub fn encode_tenure_frame(
    segment: SegmentIndex,
    next_seq: GlobalSeq,
    wall_ms: u64,
    durable_hint: GlobalSeq,
    token: FencingToken,
) -> [u8; TENURE_FRAME_LEN] {
    let header = FrameHeader {
        global_seq: next_seq,
        lane: LaneId(0),
        lane_seq: LaneSeq::ZERO,
        wall_ms,
        durable_hint,
        flags: TENURE_FLAGS,
    };
    let payload = tenure_payload(token);
    let mut out = [0u8; TENURE_FRAME_LEN];
    if let Some(head) = encode_frame_header(segment, &header, &[], &payload) {
        put(&mut out, 0, &head);
        put(&mut out, FRAME_HEADER_LEN, &payload);
    }
    out
}

fn tenure_payload(token: FencingToken) -> [u8; TENURE_PAYLOAD_LEN] {
    let mut payload = [0u8; TENURE_PAYLOAD_LEN];
    put(&mut payload, 0, &token.term.to_le_bytes());
    put(&mut payload, 8, &token.generation.to_le_bytes());
    payload
}

impl Frame<'_> {
    /// The fencing token a tenure frame carries (`None` for any other frame).
    #[must_use]
    pub fn tenure_token(&self) -> Option<FencingToken> {
        if !self.header.is_tenure() {
            return None;
        }
        Some(FencingToken {
            term: get_u64(self.payload, 0)?,
            generation: get_u64(self.payload, 8)?,
        })
    }
}

/// Encodes the 48-byte header of a frame carrying `key` and `payload` in segment
/// `segment`, checksum included. `None` if the key or the frame is too long to encode.
#[must_use]
pub fn encode_frame_header(
    segment: SegmentIndex,
    header: &FrameHeader,
    key: &[u8],
    payload: &[u8],
) -> Option<[u8; FRAME_HEADER_LEN]> {
    let mut buf = header_fields(header, key.len(), payload.len())?;
    let crc = frame_crc(segment, buf.get(SEQ_AT..).unwrap_or(&[]), key, payload);
    put(&mut buf, FRAME_CRC_AT, &crc.to_le_bytes());
    Some(buf)
}

/// A frame header's fields, checksum left zero. `None` if the key or the frame is too
/// long to encode.
fn header_fields(
    header: &FrameHeader,
    key_len: usize,
    payload_len: usize,
) -> Option<[u8; FRAME_HEADER_LEN]> {
    let key_len_field = u16::try_from(key_len).ok()?;
    let frame_len = u32::try_from(
        FRAME_HEADER_LEN
            .checked_add(key_len)?
            .checked_add(payload_len)?,
    )
    .ok()?;
    let mut buf = [0u8; FRAME_HEADER_LEN];
    put(&mut buf, FRAME_LEN_AT, &frame_len.to_le_bytes());
    put(&mut buf, SEQ_AT, &header.global_seq.0.to_le_bytes());
    put(&mut buf, LANE_SEQ_AT, &header.lane_seq.0.to_le_bytes());
    put(&mut buf, WALL_AT, &header.wall_ms.to_le_bytes());
    put(&mut buf, HINT_AT, &header.durable_hint.0.to_le_bytes());
    put(&mut buf, LANE_AT, &header.lane.0.to_le_bytes());
    put(&mut buf, FLAGS_AT, &header.flags.to_le_bytes());
    put(&mut buf, KEY_LEN_AT, &key_len_field.to_le_bytes());
    Some(buf)
}

fn frame_crc(segment: SegmentIndex, fixed: &[u8], key: &[u8], payload: &[u8]) -> u32 {
    let mut hasher = FrameCrcSeed::new(segment).0;
    hasher.update(fixed);
    hasher.update(key);
    hasher.update(payload);
    mask_crc(hasher.finalize())
}

/// A frame checksum's state after the segment index, which every frame of a segment's
/// checksum starts with: made once per unit, continued over each frame's bytes by
/// [`encode_frame_into`].
#[derive(Clone)]
pub(crate) struct FrameCrcSeed(crc32fast::Hasher);

impl FrameCrcSeed {
    pub(crate) fn new(segment: SegmentIndex) -> Self {
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&segment.0.to_le_bytes());
        FrameCrcSeed(hasher)
    }
}

/// Appends to `out` the whole frame carrying `key` and `payload` in the segment `seed`
/// was made for: header, key, payload and zero padding to [`FRAME_ALIGN`], the same bytes
/// as [`encode_frame_header`] followed by key, payload and padding. The writer's encoder:
/// the record is copied once, straight into the write buffer, and the checksum is one
/// pass over the bytes just written (header fields, key and payload lie contiguous there).
/// Returns the bytes appended, or `None` with nothing appended if the key or the frame is
/// too long to encode.
pub(crate) fn encode_frame_into(
    out: &mut Vec<u8>,
    seed: &FrameCrcSeed,
    header: &FrameHeader,
    key: &[u8],
    payload: &[u8],
) -> Option<usize> {
    let fields = header_fields(header, key.len(), payload.len())?;
    let len = frame_len_on_disk(key.len(), payload.len())?;
    let start = out.len();
    let covered = start.checked_add(FRAME_HEADER_LEN + key.len() + payload.len())?;
    out.reserve(len);
    out.extend_from_slice(&fields);
    out.extend_from_slice(key);
    out.extend_from_slice(payload);
    out.resize(start + len, 0);
    let mut hasher = seed.0.clone();
    hasher.update(out.get(start + SEQ_AT..covered).unwrap_or(&[]));
    let crc = mask_crc(hasher.finalize());
    put(out.get_mut(start..)?, FRAME_CRC_AT, &crc.to_le_bytes());
    Some(len)
}

/// Which global sequence the decoder accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqRule {
    /// Only this sequence (normal reading: frames are contiguous).
    Exactly(GlobalSeq),
    /// Any sequence strictly greater (resynchronising after a bad region).
    After(GlobalSeq),
}

/// What the decoder needs to know about where it reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameCheck {
    /// Index of the segment the bytes belong to (covered by the checksum).
    pub segment: SegmentIndex,
    /// Accepted global sequences.
    pub seq: SeqRule,
}

/// Why the bytes at an offset are not a valid frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameIssue {
    /// Fewer bytes remain than a frame header.
    Truncated {
        /// Bytes left in the segment.
        remaining: u64,
    },
    /// The length field is below a header or runs past the segment end.
    LengthOutOfBounds {
        /// The stored length.
        frame_len: u32,
    },
    /// The key length does not fit in the frame.
    KeyLengthOutOfBounds {
        /// The stored key length.
        key_len: u16,
    },
    /// Unknown flag bits, or a seal with contents.
    BadFlags {
        /// The stored flags.
        flags: u16,
    },
    /// The global sequence is not the expected one.
    UnexpectedSequence {
        /// Expected sequence (or the bound it must exceed).
        expected: GlobalSeq,
        /// Stored sequence.
        found: GlobalSeq,
    },
    /// The checksum does not match.
    Checksum {
        /// Stored (masked) checksum.
        stored: u32,
        /// Computed (masked) checksum.
        computed: u32,
    },
    /// A unit opened while another was still open, or a frame continues a unit that was
    /// never opened.
    BrokenUnit,
    /// The log ends inside a unit whose closing frame is missing.
    PartialUnit,
    /// A segment followed by another one ends without its seal frame.
    MissingSeal,
    /// A tenure frame carries a fencing token below one seen earlier in the log: a fenced
    /// writer wrote here after its successor.
    StaleTenure {
        /// The token of the tenure frame (a higher one was seen before it).
        found: FencingToken,
    },
}

impl fmt::Display for FrameIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameIssue::Truncated { remaining } => {
                write!(f, "only {remaining} bytes left, less than a frame header")
            }
            FrameIssue::LengthOutOfBounds { frame_len } => {
                write!(f, "frame length {frame_len} is out of bounds")
            }
            FrameIssue::KeyLengthOutOfBounds { key_len } => {
                write!(f, "key length {key_len} does not fit in the frame")
            }
            FrameIssue::BadFlags { flags } => write!(f, "invalid frame flags {flags:#06x}"),
            FrameIssue::UnexpectedSequence { expected, found } => {
                write!(f, "frame has global sequence {found}, expected {expected}")
            }
            FrameIssue::Checksum { stored, computed } => {
                write!(
                    f,
                    "frame checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"
                )
            }
            FrameIssue::BrokenUnit => write!(f, "atomic unit boundaries are inconsistent"),
            FrameIssue::PartialUnit => write!(f, "atomic unit is missing its closing frame"),
            FrameIssue::MissingSeal => {
                write!(f, "segment is followed by another but has no seal frame")
            }
            FrameIssue::StaleTenure { found } => write!(
                f,
                "tenure frame of fencing token {found}, below a token seen before it: a fenced writer's"
            ),
        }
    }
}

/// Whether the header bytes `head` could start a frame of at most `max_len` bytes: its
/// length is in bounds and its flags are known. Verifies nothing else; a scan looking for
/// frames among arbitrary bytes uses it to pass over positions before reading a whole
/// frame (which [`decode_frame`] then verifies).
#[must_use]
pub fn could_start_frame(head: &[u8], max_len: u64) -> bool {
    let (Some(len), Some(flags)) = (get_u32(head, FRAME_LEN_AT), get_u16(head, FLAGS_AT)) else {
        return false;
    };
    len as usize >= FRAME_HEADER_LEN && u64::from(len) <= max_len && flags & !KNOWN_FLAGS == 0
}

/// A verified frame, borrowing its key and payload from the buffer it was decoded from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The header fields.
    pub header: FrameHeader,
    /// Idempotency key (may be empty).
    pub key: &'a [u8],
    /// Payload.
    pub payload: &'a [u8],
    /// Bytes the frame occupies, padding included: the next frame starts this far on.
    pub len_on_disk: usize,
}

/// Decodes and verifies the frame at `at` in `segment_bytes` (the whole segment, so the
/// length bound is the segment end). Never panics on any input.
pub fn decode_frame<'a>(
    segment_bytes: &'a [u8],
    at: usize,
    check: &FrameCheck,
) -> Result<Frame<'a>, FrameIssue> {
    let rest = segment_bytes.get(at..).unwrap_or(&[]);
    let truncated = FrameIssue::Truncated {
        remaining: rest.len() as u64,
    };
    let head = rest.get(..FRAME_HEADER_LEN).ok_or(truncated)?;
    let frame_len = get_u32(head, FRAME_LEN_AT).ok_or(truncated)?;
    let len = frame_len as usize;
    if len < FRAME_HEADER_LEN || len > rest.len() {
        return Err(FrameIssue::LengthOutOfBounds { frame_len });
    }
    let len_on_disk = align_up(len)
        .filter(|l| *l <= rest.len())
        .ok_or(FrameIssue::LengthOutOfBounds { frame_len })?;
    let global_seq = GlobalSeq(get_u64(head, SEQ_AT).ok_or(truncated)?);
    match check.seq {
        SeqRule::Exactly(expected) if global_seq != expected => {
            return Err(FrameIssue::UnexpectedSequence {
                expected,
                found: global_seq,
            })
        }
        SeqRule::After(bound) if global_seq <= bound => {
            return Err(FrameIssue::UnexpectedSequence {
                expected: GlobalSeq(bound.0.saturating_add(1)),
                found: global_seq,
            })
        }
        _ => {}
    }
    let flags = get_u16(head, FLAGS_AT).ok_or(truncated)?;
    let key_len = get_u16(head, KEY_LEN_AT).ok_or(truncated)?;
    let body = rest.get(FRAME_HEADER_LEN..len).ok_or(truncated)?;
    let key = body
        .get(..key_len as usize)
        .ok_or(FrameIssue::KeyLengthOutOfBounds { key_len })?;
    let payload = body.get(key_len as usize..).unwrap_or(&[]);
    let stored = get_u32(head, FRAME_CRC_AT).ok_or(truncated)?;
    let computed = frame_crc(
        check.segment,
        head.get(SEQ_AT..).ok_or(truncated)?,
        key,
        payload,
    );
    if stored != computed {
        return Err(FrameIssue::Checksum { stored, computed });
    }
    let is_seal = flags & FLAG_SEAL != 0;
    let is_tenure = flags & FLAG_TENURE != 0;
    if flags & !KNOWN_FLAGS != 0
        || (is_seal && (flags != SEAL_FLAGS || len != FRAME_HEADER_LEN))
        || (is_tenure && (flags != TENURE_FLAGS || key_len != 0 || len != TENURE_FRAME_LEN))
    {
        return Err(FrameIssue::BadFlags { flags });
    }
    Ok(Frame {
        header: FrameHeader {
            global_seq,
            lane: LaneId(get_u32(head, LANE_AT).ok_or(truncated)?),
            lane_seq: LaneSeq(get_u64(head, LANE_SEQ_AT).ok_or(truncated)?),
            wall_ms: get_u64(head, WALL_AT).ok_or(truncated)?,
            durable_hint: GlobalSeq(get_u64(head, HINT_AT).ok_or(truncated)?),
            flags,
        },
        key,
        payload,
        len_on_disk,
    })
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn record(seq: u64, flags: u16) -> FrameHeader {
        FrameHeader {
            global_seq: GlobalSeq(seq),
            lane: LaneId(3),
            lane_seq: LaneSeq(9),
            wall_ms: 1_700_000_000_000,
            durable_hint: GlobalSeq(seq.saturating_sub(1)),
            flags,
        }
    }

    fn frame_bytes(segment: u64, header: &FrameHeader, key: &[u8], payload: &[u8]) -> Vec<u8> {
        let head = encode_frame_header(SegmentIndex(segment), header, key, payload).unwrap();
        let mut out = head.to_vec();
        out.extend_from_slice(key);
        out.extend_from_slice(payload);
        out.resize(align_up(out.len()).unwrap(), 0);
        out
    }

    fn check(segment: u64, seq: u64) -> FrameCheck {
        FrameCheck {
            segment: SegmentIndex(segment),
            seq: SeqRule::Exactly(GlobalSeq(seq)),
        }
    }

    #[test]
    fn a_frame_round_trips_through_encode_and_decode() {
        let h = record(5, FLAG_FIRST | FLAG_LAST);
        let bytes = frame_bytes(2, &h, b"key", b"hello");
        let f = decode_frame(&bytes, 0, &check(2, 5)).unwrap();
        assert_eq!(f.header, h);
        assert_eq!(f.key, b"key");
        assert_eq!(f.payload, b"hello");
        assert_eq!(f.len_on_disk, 56);
    }

    #[test]
    fn the_writers_one_pass_encoder_writes_the_same_bytes_as_header_then_key_payload_and_padding() {
        let mut out = vec![0xAB; 5];
        let mut expected = out.clone();
        for (i, (key, payload)) in [(0, 0), (0, 170), (3, 5), (7, 1), (0, 1_000), (130, 4_096)]
            .into_iter()
            .enumerate()
        {
            let (key, payload) = (vec![0x4B; key], vec![i as u8; payload]);
            let header = record(40 + i as u64, FLAG_FIRST);
            let seed = FrameCrcSeed::new(SegmentIndex(6));
            let len = encode_frame_into(&mut out, &seed, &header, &key, &payload).unwrap();
            let frame = frame_bytes(6, &header, &key, &payload);
            assert_eq!(len, frame.len());
            expected.extend_from_slice(&frame);
            assert_eq!(out, expected, "key {} payload {}", key.len(), payload.len());
        }
        let too_long = vec![0u8; FRAME_KEY_LEN_MAX + 1];
        let seed = FrameCrcSeed::new(SegmentIndex(6));
        assert_eq!(
            encode_frame_into(&mut out, &seed, &record(1, 0), &too_long, b""),
            None
        );
        assert_eq!(out, expected, "nothing appended for a key too long");
    }

    #[test]
    fn all_zero_and_all_ff_regions_never_verify() {
        let zeros = vec![0u8; 256];
        assert!(decode_frame(&zeros, 0, &check(1, 0)).is_err());
        let ff = vec![0xffu8; 256];
        for seq in [0, 1, u64::MAX] {
            assert!(decode_frame(&ff, 0, &check(1, seq)).is_err());
        }
        assert_ne!(mask_crc(crc32fast::hash(&[0u8; 40])), 0);
    }

    #[test]
    fn a_frame_from_another_segment_does_not_verify() {
        let bytes = frame_bytes(2, &record(5, FLAG_FIRST | FLAG_LAST), b"", b"x");
        assert!(matches!(
            decode_frame(&bytes, 0, &check(3, 5)),
            Err(FrameIssue::Checksum { .. })
        ));
    }

    #[test]
    fn a_frame_with_the_wrong_sequence_for_its_position_does_not_verify() {
        let bytes = frame_bytes(1, &record(5, FLAG_FIRST | FLAG_LAST), b"", b"x");
        assert!(matches!(
            decode_frame(&bytes, 0, &check(1, 6)),
            Err(FrameIssue::UnexpectedSequence { .. })
        ));
    }

    #[test]
    fn zero_and_oversized_lengths_are_refused_before_use() {
        let mut bytes = frame_bytes(1, &record(1, FLAG_FIRST | FLAG_LAST), b"", b"abc");
        bytes[..4].copy_from_slice(&0u32.to_le_bytes());
        assert!(matches!(
            decode_frame(&bytes, 0, &check(1, 1)),
            Err(FrameIssue::LengthOutOfBounds { frame_len: 0 })
        ));
        bytes[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            decode_frame(&bytes, 0, &check(1, 1)),
            Err(FrameIssue::LengthOutOfBounds { .. })
        ));
    }

    #[test]
    fn a_single_flipped_bit_anywhere_in_a_frame_is_detected() {
        let bytes = frame_bytes(1, &record(1, FLAG_FIRST | FLAG_LAST), b"k", b"payload!");
        let used = FRAME_HEADER_LEN + 1 + 8;
        for bit in 0..used * 8 {
            let mut damaged = bytes.clone();
            damaged[bit / 8] ^= 1 << (bit % 8);
            assert!(
                decode_frame(&damaged, 0, &check(1, 1)).is_err(),
                "bit {bit}"
            );
        }
    }

    #[test]
    fn a_segment_header_round_trips_and_checks_its_index_and_size() {
        let h = SegmentHeader {
            index: SegmentIndex(7),
            first_seq: GlobalSeq(100),
            fencing: FencingToken::new(2, 3),
            segment_size: 4096,
        };
        let mut file = vec![0u8; 4096];
        file[..SEGMENT_HEADER_LEN].copy_from_slice(&h.encode());
        assert_eq!(SegmentHeader::decode(&file, SegmentIndex(7)), Ok(h));
        assert!(matches!(
            SegmentHeader::decode(&file, SegmentIndex(8)),
            Err(HeaderIssue::WrongIndex { .. })
        ));
        assert!(matches!(
            SegmentHeader::decode(&file[..2048], SegmentIndex(7)),
            Err(HeaderIssue::WrongSize { .. })
        ));
        assert_eq!(
            SegmentHeader::decode_head(&file[..SEGMENT_HEADER_LEN], 4096, SegmentIndex(7)),
            Ok(h),
            "the header alone decodes when the file length is known"
        );
        assert!(matches!(
            SegmentHeader::decode_head(&file[..SEGMENT_HEADER_LEN], 8192, SegmentIndex(7)),
            Err(HeaderIssue::WrongSize { file_len: 8192, .. })
        ));
        file[30] ^= 1;
        assert!(matches!(
            SegmentHeader::decode(&file, SegmentIndex(7)),
            Err(HeaderIssue::Checksum { .. })
        ));
    }

    #[test]
    fn a_header_reads_as_cut_short_only_when_the_file_is_shorter_and_all_else_verifies() {
        let h = SegmentHeader {
            index: SegmentIndex(7),
            first_seq: GlobalSeq(100),
            fencing: FencingToken::new(2, 3),
            segment_size: 4096,
        };
        let head = h.encode();
        let cut =
            |len: u64, index: u64| SegmentHeader::decode_cut_short(&head, len, SegmentIndex(index));
        assert_eq!(cut(2048, 7), Some(h));
        assert_eq!(cut(SEGMENT_HEADER_LEN as u64, 7), Some(h));
        assert_eq!(cut(4096, 7), None, "a whole file is not cut short");
        assert_eq!(cut(8192, 7), None, "a longer file is not cut short");
        assert_eq!(cut(SEGMENT_HEADER_LEN as u64 - 1, 7), None);
        assert_eq!(cut(2048, 8), None, "the index still has to match");
        let mut bad = head;
        bad[20] ^= 1;
        assert_eq!(
            SegmentHeader::decode_cut_short(&bad, 2048, SegmentIndex(7)),
            None
        );
        assert_eq!(
            SegmentHeader::decode_cut_short(&head[..40], 2048, SegmentIndex(7)),
            None
        );
    }

    #[test]
    fn a_newer_format_version_is_reported_as_unsupported() {
        let h = SegmentHeader {
            index: SegmentIndex(1),
            first_seq: GlobalSeq(1),
            fencing: FencingToken::INITIAL,
            segment_size: 64,
        };
        let mut file = h.encode().to_vec();
        file[VERSION_AT..VERSION_AT + 4].copy_from_slice(&4u32.to_le_bytes());
        assert_eq!(
            SegmentHeader::decode(&file, SegmentIndex(1)),
            Err(HeaderIssue::UnsupportedVersion { found: 4 })
        );
    }

    #[test]
    fn a_version_1_header_still_decodes_and_says_its_version() {
        let h = SegmentHeader {
            index: SegmentIndex(1),
            first_seq: GlobalSeq(1),
            fencing: FencingToken::INITIAL,
            segment_size: 4096,
        };
        let mut file = vec![0u8; 4096];
        file[..SEGMENT_HEADER_LEN].copy_from_slice(&h.encode());
        assert_eq!(header_version(&file), Some(FORMAT_VERSION));
        file[VERSION_AT..VERSION_AT + 4].copy_from_slice(&1u32.to_le_bytes());
        let crc = mask_crc(crc32fast::hash(&file[..HEADER_CRC_AT]));
        file[HEADER_CRC_AT..SEGMENT_HEADER_LEN].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(SegmentHeader::decode(&file, SegmentIndex(1)), Ok(h));
        assert_eq!(header_version(&file), Some(1));
    }

    #[test]
    fn a_tenure_frame_round_trips_with_its_token_and_takes_no_sequence() {
        let token = FencingToken::new(3, 9);
        let bytes = encode_tenure_frame(SegmentIndex(2), GlobalSeq(7), 5, GlobalSeq(6), token);
        let f = decode_frame(&bytes, 0, &check(2, 7)).unwrap();
        assert!(f.header.is_tenure() && f.header.is_first() && f.header.is_last());
        assert!(!f.header.is_seal());
        assert_eq!(f.tenure_token(), Some(token));
        assert_eq!(f.len_on_disk, TENURE_FRAME_LEN);
        assert!(
            decode_frame(&bytes, 0, &check(3, 7)).is_err(),
            "covered by the segment index"
        );
        let record = frame_bytes(2, &record(7, FLAG_FIRST | FLAG_LAST), b"", b"x");
        let f = decode_frame(&record, 0, &check(2, 7)).unwrap();
        assert_eq!(f.tenure_token(), None, "a record carries no token");
    }

    #[test]
    fn a_tenure_flag_on_anything_but_a_bare_tenure_frame_is_invalid() {
        let token_payload = tenure_payload(FencingToken::new(1, 1));
        for (flags, key, payload) in [
            (FLAG_FIRST | FLAG_TENURE, &b""[..], &token_payload[..]),
            (TENURE_FLAGS | FLAG_SEAL, b"", &token_payload[..]),
            (TENURE_FLAGS, b"k", &token_payload[..15]),
            (TENURE_FLAGS, b"", &token_payload[..8]),
            (TENURE_FLAGS, b"", b"0123456789abcdefX"),
        ] {
            let bytes = frame_bytes(1, &record(1, flags), key, payload);
            assert!(
                matches!(
                    decode_frame(&bytes, 0, &check(1, 1)),
                    Err(FrameIssue::BadFlags { .. })
                ),
                "{flags:#x} {key:?} {payload:?}"
            );
        }
    }

    proptest! {
        #[test]
        fn the_frame_decoder_never_panics_on_random_bytes(
            bytes in proptest::collection::vec(any::<u8>(), 0..512),
            at in 0usize..600,
            seq in any::<u64>(),
            segment in any::<u64>(),
        ) {
            let _ = decode_frame(&bytes, at, &check(segment, seq));
            let _ = decode_frame(&bytes, at, &FrameCheck { segment: SegmentIndex(segment), seq: SeqRule::After(GlobalSeq(seq)) });
            let _ = SegmentHeader::decode(&bytes, SegmentIndex(segment));
        }

        #[test]
        fn any_encoded_frame_decodes_to_itself(
            key in proptest::collection::vec(any::<u8>(), 0..40),
            payload in proptest::collection::vec(any::<u8>(), 0..300),
            seq in 1u64..u64::MAX,
        ) {
            let h = record(seq, FLAG_FIRST);
            let bytes = frame_bytes(4, &h, &key, &payload);
            let f = decode_frame(&bytes, 0, &check(4, seq)).unwrap();
            prop_assert_eq!(f.header, h);
            prop_assert_eq!(f.key, &key[..]);
            prop_assert_eq!(f.payload, &payload[..]);
            prop_assert_eq!(f.len_on_disk, bytes.len());
        }
    }
}
