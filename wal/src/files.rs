//! Small whole files next to the log (checkpoints, pins, backup markers), written and read
//! through the same [`Storage`] as the segments, so the simulated disk counts, fails and
//! crashes every step of them too.
//!
//! [`write_atomic`] is the one way to publish such a file: write it under a temporary
//! name, sync its data, rename it to its final name (never replacing a file), sync the
//! directory. After a crash at any step the final name either does not exist or holds the
//! complete content; the temporary name may be left behind and is the caller's to clean.

use crate::io::{IoOp, Storage};
use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};

/// A file operation next to the log failed.
#[derive(Debug, thiserror::Error)]
#[error("I/O error {op} {}: {source}; check the disk and permissions, then retry", path.display())]
pub struct FileError {
    /// What was being done.
    pub op: IoOp,
    /// On which file or directory.
    pub path: PathBuf,
    /// The OS error.
    #[source]
    pub source: io::Error,
}

impl From<crate::error::IoFailure> for FileError {
    fn from(f: crate::error::IoFailure) -> FileError {
        FileError {
            op: f.op,
            path: f.path,
            source: f.source,
        }
    }
}

impl FileError {
    fn new(op: IoOp, path: &Path) -> impl FnOnce(io::Error) -> FileError + '_ {
        move |source| FileError {
            op,
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Creates `dir` and its parents if missing.
///
/// # Errors
/// The OS error.
pub fn create_dir_all<S: Storage>(storage: &S, dir: &Path) -> Result<(), FileError> {
    storage
        .create_dir_all(dir)
        .map_err(FileError::new(IoOp::Create, dir))
}

/// Names of the entries of `dir`, sorted.
///
/// # Errors
/// The OS error.
pub fn list<S: Storage>(storage: &S, dir: &Path) -> Result<Vec<OsString>, FileError> {
    let mut names = storage.list(dir).map_err(FileError::new(IoOp::List, dir))?;
    names.sort();
    Ok(names)
}

/// Writes `bytes` to `dir/final_name` atomically (see the module docs), through
/// `dir/temp_name`. Fails without touching anything if `final_name` exists.
///
/// # Errors
/// The first failed step; the temporary file may remain.
pub fn write_atomic<S: Storage>(
    storage: &S,
    dir: &Path,
    temp_name: &str,
    final_name: &str,
    bytes: &[u8],
) -> Result<(), FileError> {
    let temp = dir.join(temp_name);
    let path = dir.join(final_name);
    storage
        .write_new(&temp, bytes, bytes.len() as u64)
        .map_err(FileError::new(IoOp::Create, &temp))?;
    storage
        .sync_file(&temp)
        .map_err(FileError::new(IoOp::Sync, &temp))?;
    storage
        .rename(&temp, &path)
        .map_err(FileError::new(IoOp::Rename, &temp))?;
    sync_dir(storage, dir)
}

/// Writes a new file of `len` bytes holding `data` then zeros and syncs its data (its
/// name is durable after [`sync_dir`]).
///
/// # Errors
/// The first failed step.
pub fn write_synced<S: Storage>(
    storage: &S,
    path: &Path,
    data: &[u8],
    len: u64,
) -> Result<(), FileError> {
    storage
        .write_new(path, data, len)
        .map_err(FileError::new(IoOp::Create, path))?;
    storage
        .sync_file(path)
        .map_err(FileError::new(IoOp::Sync, path))
}

/// The whole content of a file.
///
/// # Errors
/// The OS error (`NotFound` if it does not exist).
pub fn read<S: Storage>(storage: &S, path: &Path) -> Result<Vec<u8>, FileError> {
    storage
        .read_all(path)
        .map_err(FileError::new(IoOp::Open, path))
}

/// Deletes a file (durable after [`sync_dir`]).
///
/// # Errors
/// The OS error.
pub fn remove<S: Storage>(storage: &S, path: &Path) -> Result<(), FileError> {
    storage
        .remove(path)
        .map_err(FileError::new(IoOp::Remove, path))
}

/// fsync of `dir`: creations, renames and deletions in it become durable.
///
/// # Errors
/// The OS error.
pub fn sync_dir<S: Storage>(storage: &S, dir: &Path) -> Result<(), FileError> {
    storage
        .sync_dir(dir)
        .map_err(FileError::new(IoOp::DirSync, dir))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::{OpKind, SimDisk};

    #[test]
    fn an_atomic_write_is_either_whole_or_absent_after_a_crash_at_any_step() {
        let dir = PathBuf::from("/sim/files");
        let probe = SimDisk::new();
        write_atomic(&probe, &dir, "a.tmp", "a", b"content").unwrap();
        let steps = probe.ops();
        assert_eq!(steps, 5, "create, write, sync, rename, dir sync");
        for k in 1..=steps {
            for seed in 0..8 {
                let disk = SimDisk::new();
                disk.crash_at(k);
                assert!(write_atomic(&disk, &dir, "a.tmp", "a", b"content").is_err());
                let image = disk.crash_image(seed);
                if let Some(bytes) = image.file_bytes(&dir.join("a")) {
                    assert_eq!(bytes, b"content", "crash at {k}, seed {seed}");
                }
            }
        }
        assert_eq!(probe.ops_of(OpKind::Rename), 1);
    }

    #[test]
    fn an_atomic_write_never_replaces_an_existing_file() {
        let dir = PathBuf::from("/sim/files");
        let disk = SimDisk::new();
        write_atomic(&disk, &dir, "a.tmp", "a", b"first").unwrap();
        assert!(write_atomic(&disk, &dir, "b.tmp", "a", b"second").is_err());
        assert_eq!(read(&disk, &dir.join("a")).unwrap(), b"first");
    }
}
