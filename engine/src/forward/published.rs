//! The writer's global watermarks, published in a small file in the database directory
//! for followers and tools in other processes. Defined once, here.
//!
//! ```text
//! offset size field
//!      0    8 magic "TLWMARK1"
//!      8    4 version (u32 LE, 1)
//!     12    4 zero
//!     16    8 term        (fencing token of the writer that published)
//!     24    8 generation
//!     32   96 accepted, written, durable, visible, applied, emitted: (wall_ms u64, global_seq u64) each
//!    128    4 CRC-32 (crc32fast) of bytes 0..128
//!    132    4 zero
//! ```
//!
//! The writer overwrites it in place after each sync (and each group when records are
//! visible once written); it is a hint for other processes and never synced: the log is
//! the truth. A reader that catches a write half-done sees a bad checksum and reads again.

use crate::lease::LeaseToken;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::Path;
use tidelog_watermarks::{Frontiers, GlobalSeq, HlcPoint};

/// Name of the published watermarks file in the database directory.
pub const WATERMARKS_FILE: &str = "WATERMARKS";
const MAGIC: &[u8; 8] = b"TLWMARK1";
const VERSION: u32 = 1;
const LEN: usize = 136;
const CRC_AT: usize = 128;

/// The writer's watermarks as last published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublishedWatermarks {
    /// The publishing writer's fencing token.
    pub token: LeaseToken,
    /// Its global watermarks.
    pub global: Frontiers,
}

/// Why the published watermarks could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PublishedError {
    /// No writer has published yet, or the file cannot be read.
    #[error("cannot read the published watermarks at {path}: {source}; is a writer running?")]
    Unreadable {
        /// The file.
        path: std::path::PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The file does not hold a valid record (even after re-reading).
    #[error("the published watermarks at {path} are damaged ({reason}); the writer rewrites them after its next sync")]
    Damaged {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong.
        reason: &'static str,
    },
}

fn points(frontiers: &Frontiers) -> [HlcPoint; 6] {
    [
        frontiers.accepted_hlc,
        frontiers.written_hlc,
        frontiers.durable_hlc,
        frontiers.visible_hlc,
        frontiers.applied_hlc,
        frontiers.emitted_hlc,
    ]
}

fn encode(marks: &PublishedWatermarks) -> [u8; LEN] {
    let mut buf = [0u8; LEN];
    buf[..8].copy_from_slice(MAGIC);
    buf[8..12].copy_from_slice(&VERSION.to_le_bytes());
    buf[16..24].copy_from_slice(&marks.token.term.to_le_bytes());
    buf[24..32].copy_from_slice(&marks.token.generation.to_le_bytes());
    for (i, point) in points(&marks.global).iter().enumerate() {
        let at = 32 + i * 16;
        buf[at..at + 8].copy_from_slice(&point.wall_ms.to_le_bytes());
        buf[at + 8..at + 16].copy_from_slice(&point.global_sequence.to_le_bytes());
    }
    let crc = crc32fast::hash(&buf[..CRC_AT]);
    buf[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_le_bytes());
    buf
}

fn u64_at(buf: &[u8], at: usize) -> u64 {
    let mut out = [0u8; 8];
    if let Some(bytes) = buf.get(at..at + 8) {
        out.copy_from_slice(bytes);
    }
    u64::from_le_bytes(out)
}

fn decode(buf: &[u8]) -> Result<PublishedWatermarks, &'static str> {
    if buf.len() < LEN {
        return Err("shorter than a record");
    }
    if &buf[..8] != MAGIC {
        return Err("bad magic");
    }
    let mut crc = [0u8; 4];
    crc.copy_from_slice(&buf[CRC_AT..CRC_AT + 4]);
    if crc32fast::hash(&buf[..CRC_AT]) != u32::from_le_bytes(crc) {
        return Err("bad checksum");
    }
    let mut version = [0u8; 4];
    version.copy_from_slice(&buf[8..12]);
    if u32::from_le_bytes(version) != VERSION {
        return Err("unknown version");
    }
    let point = |i: usize| {
        let at = 32 + i * 16;
        HlcPoint::new(u64_at(buf, at), GlobalSeq(u64_at(buf, at + 8)))
    };
    Ok(PublishedWatermarks {
        token: LeaseToken {
            term: u64_at(buf, 16),
            generation: u64_at(buf, 24),
        },
        global: Frontiers {
            accepted_hlc: point(0),
            written_hlc: point(1),
            durable_hlc: point(2),
            visible_hlc: point(3),
            applied_hlc: point(4),
            emitted_hlc: point(5),
        },
    })
}

/// The writer's handle on the published file.
#[derive(Debug)]
pub(crate) struct Publisher {
    file: File,
    token: LeaseToken,
}

impl Publisher {
    /// A new file for this writer's tenure, renamed over the previous writer's: a
    /// previous writer that is still running (paused, deposed) keeps writing into a file
    /// no name leads to, and followers never read its figures again.
    /// The file holds `global` from the moment it appears.
    pub(crate) fn create(
        dir: &Path,
        token: LeaseToken,
        global: Frontiers,
    ) -> std::io::Result<Publisher> {
        let temp = dir.join(format!(
            "{WATERMARKS_FILE}.{}-{}.{}.tmp",
            token.term,
            token.generation,
            std::process::id()
        ));
        let file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&temp)?;
        let publisher = Publisher { file, token };
        publisher.publish(global);
        std::fs::rename(&temp, dir.join(WATERMARKS_FILE))?;
        Ok(publisher)
    }

    /// Overwrites the record; a failure only leaves followers with older figures.
    pub(crate) fn publish(&self, global: Frontiers) {
        let _ = self.file.write_all_at(
            &encode(&PublishedWatermarks {
                token: self.token,
                global,
            }),
            0,
        );
    }
}

/// Reads the watermarks the writer of the database in `dir` last published.
///
/// # Errors
/// [`PublishedError`] when there is no readable, valid record.
pub fn read_published(dir: &Path) -> Result<PublishedWatermarks, PublishedError> {
    let path = dir.join(WATERMARKS_FILE);
    let file = File::open(&path).map_err(|source| PublishedError::Unreadable {
        path: path.clone(),
        source,
    })?;
    let mut reason = "never read";
    // A read racing the writer's overwrite fails its checksum; the next one will not.
    for _ in 0..16 {
        let mut buf = [0u8; LEN];
        match file.read_exact_at(&mut buf, 0) {
            Ok(()) => match decode(&buf) {
                Ok(marks) => return Ok(marks),
                Err(why) => reason = why,
            },
            Err(source) if source.kind() == std::io::ErrorKind::UnexpectedEof => {
                reason = "shorter than a record";
            }
            Err(source) => return Err(PublishedError::Unreadable { path, source }),
        }
    }
    Err(PublishedError::Damaged { path, reason })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> PublishedWatermarks {
        let p = |s| HlcPoint::new(1_000 + s, GlobalSeq(s));
        PublishedWatermarks {
            token: LeaseToken {
                term: 3,
                generation: 9,
            },
            global: Frontiers {
                accepted_hlc: p(6),
                written_hlc: p(5),
                durable_hlc: p(4),
                visible_hlc: p(3),
                applied_hlc: p(1),
                emitted_hlc: p(2),
            },
        }
    }

    #[test]
    fn a_published_record_reads_back_field_for_field() {
        let marks = sample();
        assert_eq!(decode(&encode(&marks)), Ok(marks));
    }

    #[test]
    fn any_flipped_bit_or_truncation_is_refused_never_misread() {
        let bytes = encode(&sample());
        for bit in 0..CRC_AT * 8 {
            let mut damaged = bytes;
            damaged[bit / 8] ^= 1 << (bit % 8);
            assert!(decode(&damaged).is_err(), "bit {bit}");
        }
        for cut in 0..LEN {
            assert!(decode(&bytes[..cut]).is_err(), "cut {cut}");
        }
    }
}
