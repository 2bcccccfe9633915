//! The database directory: a marker file that says "this is a tidelog database, format
//! N", the log folder, the writer lease, and a lock file that tells a new writer whether
//! the last one on this machine is still running.
//!
//! ```text
//! <dir>/TIDELOG    "tidelog database\nformat_version = 1\n"   (written once, atomically)
//! <dir>/LOCK       empty; held with an exclusive advisory lock while a writer is open
//! <dir>/lease/     the writer lease, with the default file backend (see `lease`)
//! <dir>/wal/       the log segments (tidelog-wal)
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
/// Name of the lock file.
pub(crate) const LOCK: &str = "LOCK";
/// Name of the log folder inside the database directory.
pub const WAL_DIR: &str = "wal";
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
    if name.as_os_str() == format!("{MARKER}.tmp").as_str() {
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
    let temp = dir.join(format!("{MARKER}.tmp"));
    let mut file = File::create(&temp).map_err(io_error("creating", &temp))?;
    write!(file, "{MARKER_HEADER}\nformat_version = {FORMAT_VERSION}\n")
        .map_err(io_error("writing", &temp))?;
    file.sync_all().map_err(io_error("syncing", &temp))?;
    let marker = dir.join(MARKER);
    fs::rename(&temp, &marker).map_err(io_error("renaming", &temp))?;
    sync_dir(dir)
}

/// fsyncs a directory so that entries created or renamed in it survive a crash.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), OpenError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error("syncing directory", dir))
}

/// The exclusive writer lock of a database, held for as long as the value lives.
#[derive(Debug)]
pub(crate) struct DirLock {
    _file: File,
}

/// Takes the writer lock of `dir`, or `None` while another open file holds it (a live
/// writer on this machine, possibly paused). The lock is not what keeps writers apart:
/// the lease is. It tells a new writer that the previous holder's process is gone.
pub(crate) fn lock(dir: &Path) -> Result<Option<DirLock>, OpenError> {
    let path: PathBuf = dir.join(LOCK);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io_error("opening", &path))?;
    match file.try_lock() {
        Ok(()) => Ok(Some(DirLock { _file: file })),
        Err(fs::TryLockError::WouldBlock) => Ok(None),
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
