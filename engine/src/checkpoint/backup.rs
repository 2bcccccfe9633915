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

use super::store::parse_name;
use super::{format, CheckpointError, CheckpointInfo};
use crate::error::OpenError;
use crate::marker;
use std::path::{Path, PathBuf};
use tidelog_wal::files::{self, FileError};
use tidelog_wal::io::Storage;
use tidelog_watermarks::GlobalSeq;

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
    /// The destination lies inside the database being copied: the copy would become part
    /// of what it copies. Nothing was created.
    #[error("backup destination {} lies inside the database {} it would copy; nothing was created: choose a directory outside it", dest.display(), database.display())]
    DestinationInsideDatabase {
        /// The database being copied.
        database: PathBuf,
        /// The destination.
        dest: PathBuf,
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
    /// [`backup_from_files`]: the writer's published watermarks cannot be read.
    #[error("backup failed: {0}")]
    Published(#[from] crate::forward::PublishedError),
    /// [`backup_from_files`]: the read cursor that keeps the writer's truncation off the
    /// copy could not be published.
    #[error("backup failed holding the log against truncation: {0}")]
    Follow(#[from] crate::forward::FollowError),
    /// [`backup_from_files`]: the durable point the writer published is not in the log
    /// files (a writer that was replaced meanwhile); nothing consistent to copy.
    #[error("the writer published global sequence {point} as durable but the log files do not hold it; retry the backup")]
    PointMissing {
        /// The published durable point.
        point: GlobalSeq,
    },
    /// [`backup_from_files`]: the log cannot be read, or holds damaged durable data.
    #[error("backup failed reading the log: {0}")]
    Scan(#[from] tidelog_wal::ScanError),
}

/// What [`Engine::backup_to`](crate::Engine::backup_to) copied.
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

/// Copies the database in `dir` into `dest` (a new or empty directory) while another
/// process is its writer and appends: the backup a process that is not the writer takes,
/// reading files only, with no lock and nothing written to `dir` but a follower's read
/// cursor (`followers/`, which keeps the writer from truncating the log under the copy;
/// gone when this returns).
///
/// Consistent the same way as [`Engine::backup_to`](crate::Engine::backup_to): the copy holds every record up to
/// the durable point `P` the writer last published (read first) and nothing after it.
/// Every byte up to `P` is durable and never written again; checkpoints covering at most
/// `P` are copied (verified); sealed segments are copied whole and the segment holding
/// `P` up to the end of its frame, zeros after. Last, the `BACKUP` marker.
///
/// # Errors
/// [`BackupError`]; on error the destination lacks its `BACKUP` marker.
pub fn backup_from_files(
    dir: impl AsRef<Path>,
    dest: impl AsRef<Path>,
) -> Result<BackupReport, BackupError> {
    backup_from_files_reporting(dir, dest, |_, _| {})
}

/// [`backup_from_files`], telling `progress` after each file it copied how many bytes of
/// the log it has copied so far and how many it will copy in all (for a progress bar).
///
/// # Errors
/// As [`backup_from_files`].
pub fn backup_from_files_reporting(
    dir: impl AsRef<Path>,
    dest: impl AsRef<Path>,
    mut progress: impl FnMut(u64, u64),
) -> Result<BackupReport, BackupError> {
    use tidelog_wal::format::{align_up, FRAME_HEADER_LEN};
    use tidelog_wal::{LogSnapshot, ScanOptions, SegmentRole};
    let (dir, dest) = (dir.as_ref(), dest.as_ref());
    let storage = &tidelog_wal::io::RealStorage;
    check_backup_destination(dir, dest)?;
    // A cursor at the start keeps the writer's truncation off every segment while the
    // copy reads them (no writer answering: nobody truncates).
    let follower = crate::forward::Follower::connect(dir).ok();
    if let Some(follower) = &follower {
        follower.records_from(GlobalSeq(1), 0)?;
    }
    let point = crate::forward::read_published(dir)?
        .global
        .durable_hlc
        .seq();
    create_database(dest)?;
    let mut report = BackupReport::empty(point);
    let listed = super::list_checkpoints(dir)?
        .into_iter()
        .filter(|listed| !listed.is_damaged())
        .map(|listed| listed.info);
    copy_checkpoints(storage, listed, Listing::Live, dest, &mut report)?;
    let wal = dir.join(marker::WAL_DIR);
    let wal_dest = dest.join(marker::WAL_DIR);
    let snapshot = LogSnapshot::take(&wal)?;
    let last = match point.0 {
        0 => None,
        _ => match snapshot.records(point, ScanOptions::default()).next() {
            Some(Ok(record)) if record.global_seq == point => Some(record),
            Some(Err(err)) => return Err(err.into()),
            _ => return Err(BackupError::PointMissing { point }),
        },
    };
    if let Some(last) = &last {
        let copied = |segment: &tidelog_wal::SegmentInfo| {
            segment.index <= last.segment && !matches!(segment.role, SegmentRole::Prepared)
        };
        let total: u64 = snapshot
            .segments()
            .iter()
            .filter(|s| copied(s))
            .map(|s| s.len_bytes)
            .sum();
        let mut done = 0;
        progress(done, total);
        for segment in snapshot.segments() {
            if !copied(segment) {
                continue;
            }
            let bytes = files::read(storage, &segment.path)?;
            let end = if segment.index == last.segment {
                let len = FRAME_HEADER_LEN + last.key.len() + last.payload.len();
                (last.offset.0 as usize + align_up(len).unwrap_or(len)).min(bytes.len())
            } else {
                bytes.len()
            };
            let target = wal_dest.join(segment.path.file_name().unwrap_or_default());
            files::write_synced(storage, &target, &bytes[..end], segment.len_bytes)?;
            if report.log_starts_at == GlobalSeq::ZERO {
                if let Some(header) = &segment.header {
                    report.log_starts_at = header.first_seq;
                }
            }
            report.segments += 1;
            report.bytes += end as u64;
            done += segment.len_bytes;
            progress(done, total);
        }
    }
    files::sync_dir(storage, &wal_dest)?;
    finish(storage, dir, dest, &report)?;
    drop(follower);
    Ok(report)
}

impl BackupReport {
    /// The report of a copy at `point` before anything is copied.
    pub(crate) fn empty(point: GlobalSeq) -> Self {
        Self {
            point,
            log_starts_at: GlobalSeq::ZERO,
            checkpoints: 0,
            segments: 0,
            bytes: 0,
        }
    }
}

/// Checks, changing nothing, that `dest` can receive a backup of the database in `dir`:
/// it must not lie inside `dir` (links and `..` resolved), and must be missing, empty or
/// what an interrupted creation left, not a database nor anything else. Both backups check
/// it themselves; a program (the `tidelog backup` command) calls it first so that a bad
/// destination is refused before the database is even opened.
///
/// # Errors
/// [`BackupError::DestinationInsideDatabase`], [`BackupError::DestinationExists`], or
/// [`BackupError::Destination`] (not empty and not a database, not a directory,
/// unreadable).
pub fn check_backup_destination(dir: &Path, dest: &Path) -> Result<(), BackupError> {
    if lies_within(dest, dir) {
        return Err(BackupError::DestinationInsideDatabase {
            database: dir.to_path_buf(),
            dest: dest.to_path_buf(),
        });
    }
    if marker::inspect(dest).map_err(destination_error(dest))? {
        return Err(BackupError::DestinationExists {
            path: dest.to_path_buf(),
        });
    }
    Ok(())
}

/// Whether `path` (which need not exist yet) is `dir` or lies below it, links resolved:
/// the nearest existing ancestor of `path` is resolved and the rest appended to it.
fn lies_within(path: &Path, dir: &Path) -> bool {
    let Ok(dir) = dir.canonicalize() else {
        return false;
    };
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        match std::env::current_dir() {
            Ok(cwd) => cwd.join(path),
            Err(_) => return false,
        }
    };
    let mut rest = Vec::new();
    let mut existing = absolute.as_path();
    loop {
        if let Ok(resolved) = existing.canonicalize() {
            let full = rest.iter().rev().fold(resolved, |p, c| p.join(c));
            return full.starts_with(&dir);
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                existing = parent;
            }
            _ => return false,
        }
    }
}

/// Makes the destination a database (its marker and log folder), so the copy opens as
/// one once its `BACKUP` marker is in place.
pub(crate) fn create_database(dest: &Path) -> Result<(), BackupError> {
    marker::create(dest).map_err(destination_error(dest))
}

fn destination_error(dest: &Path) -> impl Fn(OpenError) -> BackupError + '_ {
    |source| BackupError::Destination {
        path: dest.to_path_buf(),
        source: Box::new(source),
    }
}

/// Whether the checkpoints listed for a copy are held still while it copies them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Listing {
    /// The copy holds the checkpoint lock (the online backup): a listed file that is
    /// gone is an error.
    Held,
    /// Another process's writer may prune a listed checkpoint before it is read (the
    /// backup from files): one that is gone is skipped, an older or newer one serves.
    Live,
}

/// Copies into `dest`'s checkpoint folder every checkpoint of `listed` that covers at
/// most the report's point: each read, verified, then written atomically, its pin with
/// it; counts them and their bytes in `report`. The one checkpoint-copy loop of the online
/// backup and the backup from files.
///
/// # Errors
/// [`BackupError::Checkpoint`] if a checkpoint does not verify (nothing of it written),
/// [`BackupError::Io`] if a file cannot be read or written.
pub(crate) fn copy_checkpoints<S: Storage>(
    storage: &S,
    listed: impl IntoIterator<Item = CheckpointInfo>,
    listing: Listing,
    dest: &Path,
    report: &mut BackupReport,
) -> Result<(), BackupError> {
    let ckpt_dest = dest.join(super::CHECKPOINT_DIR);
    files::create_dir_all(storage, &ckpt_dest)?;
    for info in listed {
        if info.point.global_sequence > report.point.0 {
            continue;
        }
        let bytes = match files::read(storage, &info.path) {
            Ok(bytes) => bytes,
            Err(err)
                if listing == Listing::Live
                    && err.source.kind() == std::io::ErrorKind::NotFound =>
            {
                continue
            }
            Err(err) => return Err(err.into()),
        };
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
    Ok(())
}

/// Completes a copy whose checkpoints and segments are in place: the lease records
/// ([`copy_lease`]), then the marker that says the copy is whole ([`BACKUP_MARKER`], the
/// one place its text is defined), written last and atomically, so a copy without it was
/// interrupted.
pub(crate) fn finish<S: Storage>(
    storage: &S,
    dir: &Path,
    dest: &Path,
    report: &BackupReport,
) -> Result<(), FileError> {
    copy_lease(storage, dir, dest)?;
    let text = format!(
        "tidelog backup\npoint = {}\nlog_starts_at = {}\ncheckpoints = {}\nsegments = {}\n",
        report.point.0, report.log_starts_at.0, report.checkpoints, report.segments
    );
    files::write_atomic(
        storage,
        dest,
        &format!("{BACKUP_MARKER}.tmp"),
        BACKUP_MARKER,
        text.as_bytes(),
    )
}

/// Copies the file lease's records (`lease/*.lease`) into the copy: its segments carry the
/// fencing tokens of the writers that wrote them, and the copy's first writer must take
/// a later generation than theirs, or its recovery would take those segments for a newer
/// writer's. The copy's first opener finds the record's holder not running there (no
/// liveness file in the copy) and takes over with the next generation. A database on
/// another lease backend has no `lease/` folder: nothing to copy.
pub(crate) fn copy_lease<S: Storage>(
    storage: &S,
    dir: &Path,
    dest: &Path,
) -> Result<(), FileError> {
    let source = dir.join(crate::holder::LEASE_DIR);
    let names = match files::list(storage, &source) {
        Ok(names) => names,
        Err(err) if err.source.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(err),
    };
    let target = dest.join(crate::holder::LEASE_DIR);
    files::create_dir_all(storage, &target)?;
    for name in names {
        let Some(name) = name.to_str().filter(|n| n.ends_with(".lease")) else {
            continue;
        };
        let bytes = files::read(storage, &source.join(name))?;
        files::write_atomic(
            storage,
            &target,
            &format!("{name}.backup-tmp"),
            name,
            &bytes,
        )?;
    }
    Ok(())
}
