//! The storage layer under the log: a trait with a real implementation (files stored with
//! `pwrite`, synced with `fdatasync`, read through a read-only shared mapping, reserved
//! with `fallocate`) and, with the `testing` feature, a simulated disk for crash and
//! fault tests.
//!
//! The log is generic over [`Storage`] and monomorphized, so production code calls the
//! real implementation directly and pays nothing for the seam. The trait is sealed: its
//! operations hand out shared mappings whose soundness rests on invariants only this crate
//! keeps (see `mapped`), so outside code can name `Storage` in bounds but not call or
//! implement it.

pub(crate) mod mapped;
pub mod real;
#[cfg(any(test, feature = "testing"))]
pub mod sim;

pub use real::RealStorage;
#[cfg(any(test, feature = "testing"))]
pub use sim::{FaultMode, OpKind, SimDisk};

use std::fmt;

/// A storage backend the log can run on: [`RealStorage`], or the simulated disk
/// (`SimDisk`, with the `testing` feature).
pub trait Storage: sealed::StorageOps + Clone + Send + Sync + 'static {}

impl Storage for RealStorage {}
#[cfg(any(test, feature = "testing"))]
impl Storage for SimDisk {}

/// The kind of storage operation that failed, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IoOp {
    /// Listing the log directory.
    List,
    /// Creating the log directory or a segment file.
    Create,
    /// Reserving disk space (fallocate) and zero-filling a new segment.
    Allocate,
    /// Opening and mapping a segment.
    Open,
    /// Reading a segment's bytes (read-only scans from outside the writer).
    Read,
    /// Storing bytes into a segment file (`pwrite`).
    Write,
    /// fdatasync of a segment.
    Sync,
    /// Renaming a prepared segment into place.
    Rename,
    /// Deleting a file.
    Remove,
    /// fsync of the log directory.
    DirSync,
}

impl fmt::Display for IoOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            IoOp::List => "listing",
            IoOp::Create => "creating",
            IoOp::Allocate => "allocating",
            IoOp::Open => "opening",
            IoOp::Read => "reading",
            IoOp::Write => "writing",
            IoOp::Sync => "syncing",
            IoOp::Rename => "renaming",
            IoOp::Remove => "removing",
            IoOp::DirSync => "syncing the directory of",
        };
        f.write_str(s)
    }
}

pub(crate) mod sealed {
    use super::mapped::MappedRegion;
    use std::ffi::OsString;
    use std::io;
    use std::path::Path;
    use std::sync::Arc;

    /// Directory and file operations. Every method is one operation of its kind for the
    /// simulated disk's counters and fault plans.
    pub trait StorageOps {
        /// An open, mapped segment file.
        type Segment: SegmentOps;
        /// Creates `dir` (and parents) if missing.
        fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
        /// Names of the entries of `dir`.
        fn list(&self, dir: &Path) -> io::Result<Vec<OsString>>;
        /// Creates a new file of `len` bytes, reserves its blocks, fills it with zeros and
        /// syncs its data, so later syncs of stores into it have no metadata to commit.
        fn create_zeroed(&self, path: &Path, len: u64) -> io::Result<()>;
        /// Opens and maps an existing segment (whole file).
        fn open_segment(&self, path: &Path, writable: bool) -> io::Result<Self::Segment>;
        /// Renames a file (replacing nothing: the target must not exist).
        fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
        /// Renames a file over an existing one in one atomic step (rename(2)): whoever
        /// opens `to` afterwards gets the new file; whoever had the old one open keeps a
        /// file that no name reaches any more.
        fn replace(&self, from: &Path, to: &Path) -> io::Result<()>;
        /// Deletes a file.
        fn remove(&self, path: &Path) -> io::Result<()>;
        /// fsync of a directory, making creations, renames and deletions in it durable.
        fn sync_dir(&self, dir: &Path) -> io::Result<()>;
        /// Creates a new file (the path must not exist) of `len` bytes holding `data`
        /// then zeros (`len >= data.len()`): one create and one write operation. Neither
        /// the bytes nor the name are durable until [`sync_file`](Self::sync_file) and
        /// [`sync_dir`](Self::sync_dir).
        fn write_new(&self, path: &Path, data: &[u8], len: u64) -> io::Result<()>;
        /// fsync of a file's data (one sync operation).
        fn sync_file(&self, path: &Path) -> io::Result<()>;
        /// The whole content of a file (one open operation).
        fn read_all(&self, path: &Path) -> io::Result<Vec<u8>>;
    }

    /// A mapped segment.
    pub trait SegmentOps: Send + Sync + 'static {
        /// The shared mapping (readers keep it alive through the `Arc`).
        fn region(&self) -> &Arc<MappedRegion>;
        /// Stores `parts` one after the other at `at` (one write operation).
        fn write(&self, at: usize, parts: &[&[u8]]) -> io::Result<()>;
        /// Makes `[at, at + len)` durable (one sync operation).
        fn sync(&self, at: usize, len: usize) -> io::Result<()>;
    }
}
