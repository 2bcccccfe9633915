//! A [`LeaseBackend`] on the local file system: one file per key in a directory, safe when
//! processes on the same machine race on it.
//!
//! # Layout
//!
//! For a key `k`, with `e` its file-name encoding (bytes outside `[A-Za-z0-9_-]`, and a
//! leading `.`, become `%XX`, so the encoding is injective and never names a hidden file
//! or `..`):
//!
//! | file | role |
//! |---|---|
//! | `e.lease` | the value and its version, replaced atomically by rename |
//! | `e.lock` | empty; `flock(LOCK_EX)` on it serializes every read-compare-write of `k` |
//! | `e.tmp.<pid>.<n>` | a new `e.lease` being written; renamed over it once fsynced |
//!
//! `e.lease` is a small envelope around the value:
//!
//! ```text
//! tidelog-lease-file 1\n      magic and envelope version
//! version <u64>\n             the value's version, decimal
//! present\n | deleted\n       `deleted` is a tombstone: the key holds nothing
//! <value bytes>               to the end of the file (empty for a tombstone)
//! ```
//!
//! A delete writes a tombstone rather than removing the file, so the version counter of a
//! key survives it and versions never repeat (contract rule 4).
//!
//! # Why it holds between processes
//!
//! Every conditional write takes an exclusive `flock` on `e.lock`, reads `e.lease`,
//! compares, writes the new envelope to a temp file, fsyncs it, renames it over `e.lease`
//! and fsyncs the directory, then unlocks by closing. `flock` locks belong to the open
//! file description, so two threads of one process exclude each other too, and the kernel
//! drops the lock of a process that dies. A plain `read` takes no lock: rename replaces
//! the file atomically, so a reader sees one whole envelope, old or new.
//!
//! Assumes a local file system with POSIX rename and working `flock` (not NFS).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::backend::{
    check_value_len, CasOutcome, LeaseBackend, Version, Versioned, VALUE_LEN_MAX,
};
use super::error::BackendError;

const MAGIC_LINE: &[u8] = b"tidelog-lease-file 1";
const PRESENT: &[u8] = b"present";
const DELETED: &[u8] = b"deleted";
/// Longest envelope header: magic, `version ` and 20 digits, a state word, three newlines.
const HEADER_LEN_MAX: usize = 96;
/// Longest file name an encoded key may produce, leaving room for the suffixes within
/// the usual 255-byte limit.
const STEM_LEN_MAX: usize = 200;

/// Distinguishes temp files of threads of one process; the pid distinguishes processes.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Lease records as files in one directory. See the module docs.
#[derive(Debug, Clone)]
pub struct FileBackend {
    dir: PathBuf,
}

/// What `e.lease` says.
#[derive(Debug, PartialEq, Eq)]
enum Envelope {
    Missing,
    Deleted { version: u64 },
    Present { version: u64, value: Vec<u8> },
}

impl Envelope {
    fn current_version(&self) -> Option<Version> {
        match self {
            Envelope::Present { version, .. } => Some(Version::new(*version)),
            Envelope::Missing | Envelope::Deleted { .. } => None,
        }
    }

    /// The version the next write gets: one past anything this key has had.
    fn next_version(&self) -> u64 {
        match self {
            Envelope::Missing => 1,
            Envelope::Deleted { version } | Envelope::Present { version, .. } => {
                version.saturating_add(1)
            }
        }
    }
}

/// The files of one key.
struct KeyFiles {
    lease: PathBuf,
    lock: PathBuf,
    temp_prefix: String,
}

impl FileBackend {
    /// A backend keeping its files in `dir`, created if needed.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, BackendError> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(io_error("create directory", &dir))?;
        if !dir.is_dir() {
            return Err(BackendError::InvalidConfig {
                reason: format!("'{}' is not a directory", dir.display()),
            });
        }
        // Make the directory's own entry durable, so a lease written into it survives.
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            sync_dir(parent)?;
        }
        Ok(FileBackend { dir })
    }

    /// The directory holding the lease files.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The path of the file holding `key`'s value (for operators and tests).
    pub fn lease_path(&self, key: &str) -> Result<PathBuf, BackendError> {
        Ok(self.files(key)?.lease)
    }

    fn files(&self, key: &str) -> Result<KeyFiles, BackendError> {
        let stem = encode_key(key)?;
        Ok(KeyFiles {
            lease: self.dir.join(format!("{stem}.lease")),
            lock: self.dir.join(format!("{stem}.lock")),
            temp_prefix: format!("{stem}.tmp"),
        })
    }

    /// Runs `op` holding the exclusive lock of `key`'s files.
    fn locked<T>(
        &self,
        files: &KeyFiles,
        op: impl FnOnce() -> Result<T, BackendError>,
    ) -> Result<T, BackendError> {
        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&files.lock)
            .map_err(io_error("open lock file", &files.lock))?;
        lock_exclusive(&lock).map_err(io_error("lock", &files.lock))?;
        let result = op();
        // Closing the only descriptor of this open file description drops the lock.
        drop(lock);
        result
    }

    /// Writes `envelope` bytes to a temp file, fsyncs it, renames it over the lease file
    /// and fsyncs the directory.
    fn replace(&self, files: &KeyFiles, bytes: &[u8]) -> Result<(), BackendError> {
        let temp = self.dir.join(format!(
            "{}.{}.{}",
            files.temp_prefix,
            std::process::id(),
            TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let written = write_synced(&temp, bytes);
        if let Err(err) = written {
            // The temp file is ours alone; removing it only tidies up.
            let _ = fs::remove_file(&temp);
            return Err(err);
        }
        if let Err(source) = fs::rename(&temp, &files.lease) {
            let _ = fs::remove_file(&temp);
            return Err(BackendError::Io {
                op: "rename into place",
                path: files.lease.clone(),
                source,
            });
        }
        sync_dir(&self.dir)
    }

    fn read_envelope(files: &KeyFiles) -> Result<Envelope, BackendError> {
        let file = match File::open(&files.lease) {
            Ok(file) => file,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Envelope::Missing),
            Err(source) => {
                return Err(BackendError::Io {
                    op: "open",
                    path: files.lease.clone(),
                    source,
                })
            }
        };
        let limit = HEADER_LEN_MAX + VALUE_LEN_MAX;
        let mut bytes = Vec::new();
        file.take(limit as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(io_error("read", &files.lease))?;
        if bytes.len() > limit {
            return Err(corrupt(&files.lease, "it is larger than any lease file"));
        }
        parse_envelope(&bytes).map_err(|reason| corrupt(&files.lease, reason))
    }
}

impl LeaseBackend for FileBackend {
    fn read(&self, key: &str) -> Result<Option<Versioned>, BackendError> {
        let files = self.files(key)?;
        Ok(match Self::read_envelope(&files)? {
            Envelope::Present { version, value } => Some(Versioned {
                value,
                version: Version::new(version),
            }),
            Envelope::Missing | Envelope::Deleted { .. } => None,
        })
    }

    fn put_if_absent(&self, key: &str, value: &[u8]) -> Result<CasOutcome<Version>, BackendError> {
        check_value_len(value)?;
        let files = self.files(key)?;
        self.locked(&files, || {
            let current = Self::read_envelope(&files)?;
            if current.current_version().is_some() {
                return Ok(CasOutcome::Conflict);
            }
            let version = current.next_version();
            self.replace(&files, &envelope_bytes(version, Some(value)))?;
            Ok(CasOutcome::Applied(Version::new(version)))
        })
    }

    fn put_if_version(
        &self,
        key: &str,
        value: &[u8],
        expected: Version,
    ) -> Result<CasOutcome<Version>, BackendError> {
        check_value_len(value)?;
        let files = self.files(key)?;
        self.locked(&files, || {
            let current = Self::read_envelope(&files)?;
            if current.current_version() != Some(expected) {
                return Ok(CasOutcome::Conflict);
            }
            let version = current.next_version();
            self.replace(&files, &envelope_bytes(version, Some(value)))?;
            Ok(CasOutcome::Applied(Version::new(version)))
        })
    }

    fn delete_if_version(
        &self,
        key: &str,
        expected: Version,
    ) -> Result<CasOutcome<()>, BackendError> {
        let files = self.files(key)?;
        self.locked(&files, || {
            let current = Self::read_envelope(&files)?;
            if current.current_version() != Some(expected) {
                return Ok(CasOutcome::Conflict);
            }
            self.replace(&files, &envelope_bytes(current.next_version(), None))?;
            Ok(CasOutcome::Applied(()))
        })
    }
}

/// The file-name stem of `key` (see the module docs).
fn encode_key(key: &str) -> Result<String, BackendError> {
    let invalid = |reason| BackendError::InvalidKey {
        key: key.to_owned(),
        reason,
    };
    if key.is_empty() {
        return Err(invalid("it is empty"));
    }
    let mut stem = String::with_capacity(key.len());
    for (index, byte) in key.bytes().enumerate() {
        let plain = byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-';
        if plain || (byte == b'.' && index > 0) {
            stem.push(char::from(byte));
        } else {
            stem.push_str(&format!("%{byte:02X}"));
        }
    }
    if stem.len() > STEM_LEN_MAX {
        return Err(invalid("its file name would be longer than 200 bytes"));
    }
    Ok(stem)
}

fn envelope_bytes(version: u64, value: Option<&[u8]>) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(HEADER_LEN_MAX + value.map_or(0, <[u8]>::len));
    bytes.extend_from_slice(MAGIC_LINE);
    bytes.extend_from_slice(format!("\nversion {version}\n").as_bytes());
    bytes.extend_from_slice(if value.is_some() { PRESENT } else { DELETED });
    bytes.push(b'\n');
    bytes.extend_from_slice(value.unwrap_or_default());
    bytes
}

/// Reads an envelope; the error names what is wrong. Never panics.
fn parse_envelope(bytes: &[u8]) -> Result<Envelope, &'static str> {
    let mut parts = bytes.splitn(4, |byte| *byte == b'\n');
    let (Some(magic), Some(version_line), Some(state), Some(value)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("its header is cut short");
    };
    if magic != MAGIC_LINE {
        return Err("it does not start with the tidelog lease file magic line");
    }
    let version = version_line
        .strip_prefix(b"version ")
        .and_then(|digits| std::str::from_utf8(digits).ok())
        .and_then(|digits| digits.parse::<u64>().ok())
        .ok_or("its version line is not 'version <number>'")?;
    if version == 0 {
        return Err("its version is 0; versions start at 1");
    }
    match state {
        PRESENT => Ok(Envelope::Present {
            version,
            value: value.to_vec(),
        }),
        DELETED if value.is_empty() => Ok(Envelope::Deleted { version }),
        DELETED => Err("it is a tombstone with a value after it"),
        _ => Err("its state line is neither 'present' nor 'deleted'"),
    }
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), BackendError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(io_error("create", path))?;
    file.write_all(bytes).map_err(io_error("write", path))?;
    file.sync_all().map_err(io_error("fsync", path))
}

fn sync_dir(dir: &Path) -> Result<(), BackendError> {
    File::open(dir)
        .and_then(|handle| handle.sync_all())
        .map_err(io_error("fsync directory", dir))
}

fn io_error(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> BackendError {
    let path = path.to_path_buf();
    move |source| BackendError::Io { op, path, source }
}

fn corrupt(path: &Path, reason: &'static str) -> BackendError {
    BackendError::Corrupt {
        location: path.display().to_string(),
        reason,
    }
}

/// Takes an exclusive `flock` on `file`, waiting for other holders.
#[allow(unsafe_code)]
fn lock_exclusive(file: &File) -> io::Result<()> {
    loop {
        // SAFETY: `flock` reads no memory of ours; the descriptor is valid because `file`
        // is borrowed for the whole call.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
        if rc == 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_encoding_is_injective_and_never_hidden_or_a_path() {
        assert_eq!(encode_key("main").unwrap(), "main");
        assert_eq!(encode_key("db/lane/7").unwrap(), "db%2Flane%2F7");
        assert_eq!(encode_key("..").unwrap(), "%2E.");
        assert_eq!(encode_key("a%2F").unwrap(), "a%252F");
        assert_ne!(encode_key("a/").unwrap(), encode_key("a%2F").unwrap());
        assert!(encode_key("").is_err());
        assert!(encode_key(&"/".repeat(67)).is_err());
    }

    #[test]
    fn envelopes_round_trip() {
        let present = envelope_bytes(7, Some(b"{\"a\":1}\nmore"));
        assert_eq!(
            parse_envelope(&present).unwrap(),
            Envelope::Present {
                version: 7,
                value: b"{\"a\":1}\nmore".to_vec()
            }
        );
        let deleted = envelope_bytes(8, None);
        assert_eq!(
            parse_envelope(&deleted).unwrap(),
            Envelope::Deleted { version: 8 }
        );
    }

    #[test]
    fn damaged_envelopes_are_named_not_trusted() {
        let cases: &[(&[u8], &str)] = &[
            (b"", "cut short"),
            (b"tidelog-lease-file 1\nversion 3\n", "cut short"),
            (b"tidelog-lease-file 9\nversion 3\npresent\n{}", "magic"),
            (
                b"tidelog-lease-file 1\nversion x\npresent\n{}",
                "version line",
            ),
            (
                b"tidelog-lease-file 1\nversion 0\npresent\n{}",
                "version is 0",
            ),
            (
                b"tidelog-lease-file 1\nversion 99999999999999999999999\npresent\n",
                "version line",
            ),
            (b"tidelog-lease-file 1\nversion 3\nmaybe\n{}", "state line"),
            (b"tidelog-lease-file 1\nversion 3\ndeleted\n{}", "tombstone"),
        ];
        for (bytes, expected) in cases {
            let reason = parse_envelope(bytes).unwrap_err();
            assert!(reason.contains(expected), "{reason:?} for {bytes:?}");
        }
    }
}
