//! The database directory: a marker file that says "this is a tidelog database, format
//! N", the log folder, the writer lease, and liveness files that tell a new writer whether
//! the processes that held the lease before it are still running.
//!
//! ```text
//! <dir>/TIDELOG    "tidelog database\nformat_version = 1\n"   (written once, atomically)
//! <dir>/holders/   one empty `<holder id>.alive` per open writer, locked while it runs
//! <dir>/lease/     the writer lease, with the default file backend (see `lease`)
//! <dir>/wal/       the log segments (tidelog-wal)
//! <dir>/EXTENT     what the log has held (highest durable sequence, segment range),
//!                  checked on every open (`tidelog_wal::extent`, `docs/format.md`)
//! ```
//!
//! Opening checks the marker before touching anything, so a foreign directory or a
//! database from a newer tidelog is refused unchanged.

use crate::error::OpenError;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Name of the marker file.
pub(crate) const MARKER: &str = "TIDELOG";
/// Name of the log folder inside the database directory.
pub const WAL_DIR: &str = "wal";
/// Name of the log's extent record, beside the log folder (see `tidelog_wal::extent`):
/// outside `wal/`, so that losing or replacing the folder, or files in it, is seen.
pub const EXTENT_FILE: &str = tidelog_wal::extent::EXTENT_FILE_NAME;
/// The directory format this build writes and the newest it reads.
pub const FORMAT_VERSION: u32 = 1;

const MARKER_HEADER: &str = "tidelog database";

fn io_error<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> OpenError + 'a {
    move |source| OpenError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// Reads the marker of the database in `dir` and returns the format version it names,
/// without creating, locking or changing anything: the read-only check tools make before
/// reading a database (the marker format is defined here only).
///
/// # Errors
/// [`OpenError::NotADatabase`] if `dir` has no marker file (a missing directory
/// included), [`OpenError::BadMarker`] if it cannot be parsed,
/// [`OpenError::NewerFormat`] if it names a format newer than [`FORMAT_VERSION`],
/// [`OpenError::Io`] if it cannot be read.
pub fn read_format_version(dir: &Path) -> Result<u32, OpenError> {
    let marker = dir.join(MARKER);
    match fs::read(&marker) {
        Ok(bytes) => parse_marker(&marker, &bytes),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Err(OpenError::NotADatabase {
            path: dir.to_path_buf(),
            marker: MARKER,
        }),
        Err(err) => Err(io_error("reading", &marker)(err)),
    }
}

/// Checks `dir` is a tidelog database of a format this build reads (or an empty or
/// missing directory), without changing anything. Returns whether it already is one.
pub(crate) fn inspect(dir: &Path) -> Result<bool, OpenError> {
    if fs::metadata(dir).is_ok_and(|meta| !meta.is_dir()) {
        return Err(OpenError::NotADirectory {
            path: dir.to_path_buf(),
        });
    }
    match read_format_version(dir) {
        Ok(_) => Ok(true),
        Err(OpenError::NotADatabase { .. }) => {
            let mut entries = match fs::read_dir(dir) {
                Ok(entries) => entries,
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(false),
                Err(err) => return Err(io_error("listing", dir)(err)),
            };
            // Only what an interrupted `create` leaves (an empty log folder, a marker
            // temp file) may be there: creating again completes it. Anything else, a
            // log folder with files in it included, is not ours to touch.
            for entry in entries.by_ref() {
                let entry = entry.map_err(io_error("listing", dir))?;
                if entry.file_name() == MARKER {
                    // Another process finished creating it meanwhile.
                    return read_format_version(dir).map(|_| true);
                }
                if !is_creation_leftover(&entry) {
                    return Err(OpenError::NotADatabase {
                        path: dir.to_path_buf(),
                        marker: MARKER,
                    });
                }
            }
            Ok(false)
        }
        Err(err) => Err(err),
    }
}

/// Whether `entry` is something [`create`] makes before the marker exists: the empty
/// log folder or the marker's temp file.
fn is_creation_leftover(entry: &fs::DirEntry) -> bool {
    let name = entry.file_name();
    if is_marker_temp(&name) {
        return entry.file_type().is_ok_and(|t| t.is_file());
    }
    name == WAL_DIR
        && entry.file_type().is_ok_and(|t| t.is_dir())
        && fs::read_dir(entry.path()).is_ok_and(|mut wal| wal.next().is_none())
}

fn parse_marker(path: &Path, bytes: &[u8]) -> Result<u32, OpenError> {
    let bad = |reason| OpenError::BadMarker {
        path: path.to_path_buf(),
        reason,
    };
    let text = std::str::from_utf8(bytes).map_err(|_| bad("not UTF-8"))?;
    let mut lines = text.lines();
    if lines.next() != Some(MARKER_HEADER) {
        return Err(bad("first line is not \"tidelog database\""));
    }
    let version = lines
        .find_map(|line| line.strip_prefix("format_version = "))
        .ok_or_else(|| bad("no format_version line"))?
        .trim()
        .parse::<u32>()
        .map_err(|_| bad("format_version is not a number"))?;
    if version > FORMAT_VERSION {
        return Err(OpenError::NewerFormat {
            path: path.parent().unwrap_or(path).to_path_buf(),
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    Ok(version)
}

/// Makes `dir` a tidelog database: creates it, the log folder and the marker (temp file,
/// fsync, rename, fsync directory), in an order where a crash or an I/O error leaves
/// either a complete marker or no marker with only an empty log folder and a temp file,
/// which [`inspect`] accepts so that the next open creates the marker again.
pub(crate) fn create(dir: &Path) -> Result<(), OpenError> {
    fs::create_dir_all(dir).map_err(io_error("creating", dir))?;
    let wal = dir.join(WAL_DIR);
    fs::create_dir_all(&wal).map_err(io_error("creating", &wal))?;
    // A name of this process's own: two processes creating the same database at once
    // each write their own (identical) marker, and the second rename replaces the first.
    let temp = dir.join(format!("{MARKER}.{}.tmp", std::process::id()));
    let mut file = File::create(&temp).map_err(io_error("creating", &temp))?;
    write!(file, "{MARKER_HEADER}\nformat_version = {FORMAT_VERSION}\n")
        .map_err(io_error("writing", &temp))?;
    file.sync_all().map_err(io_error("syncing", &temp))?;
    let marker = dir.join(MARKER);
    match fs::rename(&temp, &marker) {
        Ok(()) => {}
        // A process creating it at the same time removed our temp file as a leftover
        // after putting its own marker in place.
        Err(err) if err.kind() == std::io::ErrorKind::NotFound && marker.exists() => {}
        Err(err) => return Err(io_error("renaming", &temp)(err)),
    }
    sync_dir(dir)?;
    // Room for the writes that free space on a full file system (`reserve`). A file
    // system too full for it still gets its database: the reserve is a safety margin.
    let _ = crate::reserve::restore_reserve(dir, 0);
    // Temp files of interrupted creations are of no use once the marker is in place.
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            if is_marker_temp(&entry.file_name()) {
                let _ = fs::remove_file(entry.path());
            }
        }
    }
    Ok(())
}

/// Whether `name` is a temp file of the marker (`TIDELOG.<pid>.tmp`, or `TIDELOG.tmp`
/// from older builds).
fn is_marker_temp(name: &std::ffi::OsStr) -> bool {
    name.to_str().is_some_and(|name| {
        name.strip_prefix(MARKER)
            .is_some_and(|rest| rest.starts_with('.') && rest.ends_with(".tmp"))
    })
}

/// fsyncs a directory so that entries created or renamed in it survive a crash.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), OpenError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error("syncing directory", dir))
}

/// Name of the folder of holder liveness files.
pub(crate) const HOLDERS_DIR: &str = "holders";

/// The liveness file of one would-be writer: `<dir>/holders/<holder id>.alive`, held with
/// an exclusive advisory lock for as long as the value lives, removed when it is dropped.
/// The kernel drops the lock when the process dies, however it dies, so a file that can
/// be locked belongs to a process that is gone.
#[derive(Debug)]
pub(crate) struct HolderFile {
    path: PathBuf,
    file: Option<File>,
}

impl Drop for HolderFile {
    fn drop(&mut self) {
        // Remove while still locked: whoever opens the name afterwards finds nothing, and
        // whoever opened it before finds it unlocked once the file is closed below.
        let _ = fs::remove_file(&self.path);
        drop(self.file.take());
    }
}

/// The file name of a holder's liveness file: the id, its bytes other than ASCII letters,
/// digits, `-` and `_` written as `.xx` hex, so any id makes one safe name.
fn holder_file_name(holder_id: &str) -> String {
    let mut name = String::with_capacity(holder_id.len() + 6);
    for b in holder_id.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
            name.push(char::from(b));
        } else {
            name.push_str(&format!(".{b:02x}"));
        }
    }
    name.push_str(".alive");
    name
}

/// Creates and locks the liveness file of `holder_id` in `dir`. The file is locked under
/// a temporary name and only then renamed into place, so a liveness file that can be
/// seen is locked until its process closes it or dies.
pub(crate) fn hold(dir: &Path, holder_id: &str) -> Result<HolderFile, OpenError> {
    let holders = dir.join(HOLDERS_DIR);
    fs::create_dir_all(&holders).map_err(io_error("creating", &holders))?;
    let path = holders.join(holder_file_name(holder_id));
    let temp = holders.join(format!("{}.tmp", holder_file_name(holder_id)));
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&temp)
        .map_err(io_error("creating", &temp))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(fs::TryLockError::WouldBlock) => {
            return Err(OpenError::Io {
                op: "locking",
                path: temp,
                source: std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    "another open with the same holder id holds this liveness file",
                ),
            })
        }
        Err(fs::TryLockError::Error(source)) => {
            return Err(OpenError::Io {
                op: "locking",
                path: temp,
                source,
            })
        }
    }
    fs::rename(&temp, &path).map_err(io_error("renaming", &temp))?;
    Ok(HolderFile {
        path,
        file: Some(file),
    })
}

/// What the liveness file of a lease holder says about its process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Liveness {
    /// Its file is locked: the process is running (possibly paused).
    Running,
    /// Its file exists and nobody holds its lock: the process is gone (the stale file is
    /// removed).
    Gone,
    /// It has no file here: it closed cleanly, or it runs on another machine.
    NoFile,
}

/// What the liveness file of `holder_id` in `dir` says.
pub(crate) fn liveness(dir: &Path, holder_id: &str) -> Result<Liveness, OpenError> {
    let path = dir.join(HOLDERS_DIR).join(holder_file_name(holder_id));
    let file = match OpenOptions::new().write(true).open(&path) {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Liveness::NoFile),
        Err(err) => return Err(io_error("opening", &path)(err)),
    };
    match file.try_lock() {
        Ok(()) => {
            // Ours now: nobody else can be using it. A failed removal leaves a file the
            // next look finds unlocked again.
            let _ = fs::remove_file(&path);
            Ok(Liveness::Gone)
        }
        Err(fs::TryLockError::WouldBlock) => Ok(Liveness::Running),
        Err(fs::TryLockError::Error(source)) => Err(OpenError::Io {
            op: "locking",
            path,
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_marker_from_a_newer_format_is_refused_with_both_versions() {
        let err = parse_marker(
            Path::new("/db/TIDELOG"),
            b"tidelog database\nformat_version = 9\n",
        )
        .expect_err("newer");
        assert!(matches!(
            err,
            OpenError::NewerFormat {
                found: 9,
                supported: FORMAT_VERSION,
                ..
            }
        ));
    }

    #[test]
    fn a_marker_without_the_header_line_is_damaged() {
        let err = parse_marker(Path::new("/db/TIDELOG"), b"something else\n").expect_err("bad");
        assert!(matches!(err, OpenError::BadMarker { .. }));
    }

    #[test]
    fn reading_the_format_version_reads_a_created_marker_and_creates_none() {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = dir.path().join("db");
        assert!(matches!(
            read_format_version(&db),
            Err(OpenError::NotADatabase { .. })
        ));
        assert!(!db.exists(), "nothing created for a missing directory");
        fs::create_dir(&db).expect("mkdir");
        assert!(matches!(
            read_format_version(&db),
            Err(OpenError::NotADatabase { .. })
        ));
        assert_eq!(
            fs::read_dir(&db).expect("list").count(),
            0,
            "nothing created in an empty directory"
        );
        create(&db).expect("create");
        assert_eq!(read_format_version(&db).expect("read"), FORMAT_VERSION);
        fs::write(db.join(MARKER), "tidelog database\nformat_version = 99\n").expect("write");
        assert!(matches!(
            read_format_version(&db),
            Err(OpenError::NewerFormat { found: 99, .. })
        ));
    }

    #[test]
    fn the_current_marker_parses_to_the_current_version() {
        let text = format!("{MARKER_HEADER}\nformat_version = {FORMAT_VERSION}\n");
        assert_eq!(
            parse_marker(Path::new("x"), text.as_bytes()).expect("ok"),
            FORMAT_VERSION
        );
    }
}
