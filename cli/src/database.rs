//! The database directory as the read-only commands see it, checked before anything is
//! read: the directory exists, holds a tidelog marker of a format this build reads.
//!
//! The layout is the engine's (`engine/src/marker.rs`): `<dir>/TIDELOG` (the marker, read
//! with [`tidelog::layout::read_format_version`], which defines its format), `<dir>/holders/`
//! (liveness files of the writer), `<dir>/wal/` (the segments). Nothing here creates, locks or writes anything.

use crate::error::CliError;
use std::path::{Path, PathBuf};
use tidelog::wal::extent::{self, Extent, Loss};
use tidelog::wal::io::RealStorage;

/// An existing tidelog database directory.
#[derive(Debug, Clone)]
pub struct DatabaseDir {
    /// The directory.
    pub dir: PathBuf,
    /// The format version its marker names.
    pub format_version: u32,
}

impl DatabaseDir {
    /// Checks that `dir` is a tidelog database this build reads, changing nothing.
    pub fn existing(dir: &Path) -> Result<DatabaseDir, CliError> {
        match std::fs::metadata(dir) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => return Err(CliError::NotADatabase(dir.to_path_buf())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(CliError::Missing(dir.to_path_buf()))
            }
            Err(source) => {
                return Err(CliError::Io {
                    what: "inspecting",
                    path: dir.to_path_buf(),
                    source,
                })
            }
        }
        let format_version = tidelog::layout::read_format_version(dir).map_err(|e| match e {
            tidelog::OpenError::NotADatabase { .. } => CliError::NotADatabase(dir.to_path_buf()),
            tidelog::OpenError::BadMarker { path, reason } => CliError::BadMarker { path, reason },
            tidelog::OpenError::NewerFormat {
                found, supported, ..
            } => CliError::NewerFormat {
                path: dir.to_path_buf(),
                found,
                supported,
            },
            tidelog::OpenError::Io { op, path, source } => CliError::Io {
                what: op,
                path,
                source,
            },
            other => CliError::Open(other),
        })?;
        Ok(DatabaseDir {
            dir: dir.to_path_buf(),
            format_version,
        })
    }

    /// The log's extent record, beside the log folder.
    pub fn extent_path(&self) -> PathBuf {
        self.dir.join(tidelog::layout::EXTENT_FILE)
    }

    /// The extent record, read before a read-only scan (`None` if there is none).
    pub fn extent(&self) -> Result<Option<Extent>, CliError> {
        extent::read(&RealStorage, &self.extent_path()).map_err(CliError::Verify)
    }

    /// What a read-only scan that read up to `log_ends_at` is missing according to the
    /// extent record read before it (`before`) and again now.
    pub fn loss(
        &self,
        before: Option<&Extent>,
        segments: &[tidelog::wal::scan::SegmentInfo],
        log_ends_at: tidelog::GlobalSeq,
    ) -> Result<Option<Loss>, CliError> {
        extent::check_snapshot(
            &RealStorage,
            &self.extent_path(),
            before,
            segments,
            log_ends_at,
        )
        .map_err(CliError::Verify)
    }

    /// The log folder.
    pub fn wal_dir(&self) -> PathBuf {
        wal_dir(&self.dir)
    }
}

/// The log folder of a database directory.
pub fn wal_dir(dir: &Path) -> PathBuf {
    dir.join(tidelog::layout::WAL_DIR)
}

/// The size of the segments of the log in `dir`, if it has any: every segment of a log
/// has the size the log was created with, and the writer must keep using it.
pub fn segment_size(dir: &Path) -> Result<Option<u64>, CliError> {
    if std::fs::metadata(dir).is_ok_and(|meta| !meta.is_dir()) {
        return Err(CliError::Open(tidelog::OpenError::NotADirectory {
            path: dir.to_path_buf(),
        }));
    }
    let wal = wal_dir(dir);
    let entries = match std::fs::read_dir(&wal) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(CliError::Io {
                what: "listing",
                path: wal,
                source,
            })
        }
    };
    let newest = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_str().is_some_and(|n| n.ends_with(".seg")))
        .max_by_key(|e| e.file_name());
    let Some(entry) = newest else {
        return Ok(None);
    };
    let len = entry
        .metadata()
        .map_err(|source| CliError::Io {
            what: "inspecting",
            path: entry.path(),
            source,
        })?
        .len();
    // A newest segment cut short (`truncate -s`) keeps the size its header names: the
    // one recovery gives it back.
    Ok(Some(cut_short_size(&entry.path(), len).unwrap_or(len)))
}

/// The size the header of the segment file at `path` names, if the file (`len` bytes)
/// was cut short below it.
fn cut_short_size(path: &Path, len: u64) -> Option<u64> {
    use std::io::Read;
    use tidelog::wal::format::{SegmentHeader, SEGMENT_HEADER_LEN};
    let index = path.file_stem()?.to_str()?.parse().ok()?;
    let mut head = [0u8; SEGMENT_HEADER_LEN];
    std::fs::File::open(path).ok()?.read_exact(&mut head).ok()?;
    SegmentHeader::decode_cut_short(&head, len, tidelog::wal::SegmentIndex(index))
        .map(|header| header.segment_size)
}

/// Engine options for a log of `segment_size`-byte segments: the record and batch limits
/// are lowered to half a segment when the default (4 MiB, 16 MiB) would not fit in one,
/// since neither ever spans two segments.
pub fn engine_options(segment_size: u64) -> tidelog::Options {
    let options = tidelog::Options::default().segment_size(segment_size);
    let half = segment_size / 2;
    let max_record = u64::from(options.max_record_bytes).min(half);
    let max_batch = options.max_batch_bytes.min(half);
    options
        .max_record_bytes(u32::try_from(max_record).unwrap_or(u32::MAX))
        .max_batch_bytes(max_batch)
}

/// Engine options for the database in `dir`: its own segment size if it has segments
/// (every segment of a log has the size the log was created with, and the writer must
/// keep it), else `new_segment_size`.
pub fn engine_options_for(dir: &Path, new_segment_size: u64) -> Result<tidelog::Options, CliError> {
    Ok(engine_options(
        segment_size(dir)?.unwrap_or(new_segment_size),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_engines_marker_is_accepted_and_others_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("db");
        let err = DatabaseDir::existing(&db).unwrap_err();
        assert!(matches!(err, CliError::Missing(_)), "{err}");
        tidelog::Engine::open(&db, engine_options(64 * 1024))
            .unwrap()
            .close()
            .unwrap();
        assert_eq!(
            DatabaseDir::existing(&db).unwrap().format_version,
            tidelog::layout::FORMAT_VERSION
        );
        let marker = db.join("TIDELOG");
        for (text, bad) in [
            ("something else\n", "first line"),
            ("tidelog database\nformat_version = x\n", "not a number"),
        ] {
            std::fs::write(&marker, text).unwrap();
            let err = DatabaseDir::existing(&db).unwrap_err();
            assert!(
                matches!(&err, CliError::BadMarker { reason, .. } if reason.contains(bad)),
                "{err}"
            );
        }
        std::fs::write(&marker, "tidelog database\nformat_version = 7\n").unwrap();
        let err = DatabaseDir::existing(&db).unwrap_err();
        assert!(
            matches!(err, CliError::NewerFormat { found: 7, .. }),
            "{err}"
        );
        std::fs::remove_file(&marker).unwrap();
        let err = DatabaseDir::existing(&db).unwrap_err();
        assert!(matches!(err, CliError::NotADatabase(_)), "{err}");
    }

    #[test]
    fn small_segments_get_limits_that_fit_in_them() {
        let small = engine_options(64 * 1024);
        assert_eq!(small.max_record_bytes, 32 * 1024);
        assert_eq!(small.max_batch_bytes, 32 * 1024);
        let default = engine_options(64 * 1024 * 1024);
        let plain = tidelog::Options::default();
        assert_eq!(default.max_record_bytes, plain.max_record_bytes);
        assert_eq!(default.max_batch_bytes, plain.max_batch_bytes);
    }
}
