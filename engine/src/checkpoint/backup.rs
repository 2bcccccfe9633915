//! Online backup: a consistent copy of the database at a durable point, while appends go
//! on.
//!
//! Order of work, and why it is consistent:
//! 1. The durable point `P` is read; everything up to it is on disk and its bytes are never
//!    written again (synced sectors are never rewritten; sealed segments never change).
//! 2. A [`LogHold`](super::LogHold) named "backup" and the checkpoint lock keep
//!    checkpoints, retention and truncation still for the duration; appends are not
//!    blocked.
//! 3. Every valid checkpoint covering at most `P` is copied (verified, atomically), then
//!    the log up to `P`: sealed segments whole, the segment holding `P` up to the end of
//!    that frame. Segments are copied, not hard-linked: the source segment keeps being
//!    written after `P`.
//! 4. Last, the `BACKUP` marker is written atomically. A copy without it is incomplete.
//!
//! The copy is a normal database directory: `Engine::open` on it recovers from its newest
//! checkpoint and the log after it, ending exactly at `P`.

use super::holds::HoldKind;
use super::store::parse_name;
use super::{format, CheckpointError, LogHold};
use crate::engine::Engine;
use crate::error::OpenError;
use crate::marker;
use std::path::{Path, PathBuf};
use tidelog_wal::files::{self, FileError};
use tidelog_wal::io::Storage;
use tidelog_watermarks::{GlobalSeq, WatermarkKind};

/// Name of the file that marks a complete backup.
pub const BACKUP_MARKER: &str = "BACKUP";

/// Why a backup failed. The destination may hold a partial copy without a `BACKUP`
/// marker; delete it and retry.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackupError {
    /// The destination already holds a database.
    #[error("backup destination {} already holds a tidelog database; choose an empty or new directory", path.display())]
    DestinationExists {
        /// The destination.
        path: PathBuf,
    },
    /// The destination could not be prepared.
    #[error("backup destination {} cannot be used: {source}", path.display())]
    Destination {
        /// The destination.
        path: PathBuf,
        /// Why.
        #[source]
        source: Box<OpenError>,
    },
    /// A checkpoint could not be read or written.
    #[error("backup failed copying checkpoints: {0}")]
    Checkpoint(#[from] CheckpointError),
    /// A file operation failed.
    #[error("backup failed: {0}")]
    Io(#[from] FileError),
}

/// What [`Engine::backup_to`] copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupReport {
    /// The copy holds every record up to this point and nothing after it.
    pub point: GlobalSeq,
    /// First sequence of the copied log (0 if the copy holds no record).
    pub log_starts_at: GlobalSeq,
    /// Checkpoints copied.
    pub checkpoints: usize,
    /// Log segments copied.
    pub segments: usize,
    /// Bytes copied (checkpoints and segment content).
    pub bytes: u64,
}

impl<S: Storage> Engine<S> {
    /// Copies the database, consistent at the current durable point, into `dest` (a new
    /// or empty directory) while appends continue; see the `checkpoint::backup` module
    /// docs. The copy opens as a normal database.
    ///
    /// # Errors
    /// [`BackupError`]; on error the destination lacks its `BACKUP` marker.
    pub fn backup_to(&self, dest: impl AsRef<Path>) -> Result<BackupReport, BackupError> {
        let dest = dest.as_ref();
        let ckpt = self.ckpt()?;
        let destination = |source| BackupError::Destination {
            path: dest.to_path_buf(),
            source: Box::new(source),
        };
        if marker::inspect(dest).map_err(destination)? {
            return Err(BackupError::DestinationExists {
                path: dest.to_path_buf(),
            });
        }
        marker::create(dest).map_err(destination)?;
        let _hold = LogHold::register(&ckpt.holds, HoldKind::Named("backup".into()), GlobalSeq(1));
        let _serial = ckpt.serial.lock();
        let point = self
            .watermark_handle()
            .lock()
            .current(WatermarkKind::Durable, None)
            .seq();
        let storage = ckpt.store.storage();
        let mut report = BackupReport {
            point,
            log_starts_at: GlobalSeq::ZERO,
            checkpoints: 0,
            segments: 0,
            bytes: 0,
        };
        let ckpt_dest = dest.join(super::CHECKPOINT_DIR);
        files::create_dir_all(storage, &ckpt_dest)?;
        for info in ckpt.store.list() {
            if info.point.global_sequence > point.0 {
                continue;
            }
            let bytes = files::read(storage, &info.path)?;
            if let Err(issue) = format::decode(&bytes) {
                return Err(CheckpointError::Corrupt {
                    path: info.path,
                    issue,
                }
                .into());
            }
            let Some(name) = info.path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if parse_name(name).is_none() {
                continue;
            }
            files::write_atomic(storage, &ckpt_dest, &format!("{name}.tmp"), name, &bytes)?;
            if info.pinned {
                let pin = format!("{name}.pin");
                files::write_atomic(storage, &ckpt_dest, &format!("{pin}.tmp"), &pin, &[])?;
            }
            report.checkpoints += 1;
            report.bytes += bytes.len() as u64;
        }
        let copied = self.wal_reader().copy_prefix(
            storage,
            &dest.join(marker::WAL_DIR),
            point,
            ckpt.truncator.segment_size(),
        )?;
        report.log_starts_at = copied.first_seq;
        report.segments = copied.segments.len();
        report.bytes += copied.bytes;
        let text = format!(
            "tidelog backup\npoint = {}\nlog_starts_at = {}\ncheckpoints = {}\nsegments = {}\n",
            point.0, copied.first_seq.0, report.checkpoints, report.segments
        );
        files::write_atomic(
            storage,
            dest,
            &format!("{BACKUP_MARKER}.tmp"),
            BACKUP_MARKER,
            text.as_bytes(),
        )?;
        Ok(report)
    }
}
