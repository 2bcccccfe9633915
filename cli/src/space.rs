//! Freeing space on a full file system: `checkpoint` and `truncate` open the database in
//! the room its reserve keeps (`tidelog::reserve`) when nothing else is free, and put the
//! reserve back once they have freed segments.

use crate::error::CliError;
use std::path::Path;
use tidelog::reserve::{self, RESERVE_BYTES, RESERVE_FILE};
use tidelog::{Engine, Options};

/// Opens the database in `dir` as its writer in order to free space. When its file
/// system is full (the lease record or the extent record find no room), the database's
/// reserve is released and the open tried once more. Returns the engine and the bytes of
/// reserve released (0 when the first open succeeded).
///
/// # Errors
/// [`CliError::NoReserveLeft`] when the file system is full and no reserve is left,
/// [`CliError::FileSystemFull`] when even the reserve's room was not enough, the open's
/// other errors as they are.
pub fn open_to_free_space(dir: &Path, options: Options) -> Result<(Engine, u64), CliError> {
    let first = match Engine::open(dir, options.clone()) {
        Ok(engine) => return Ok((engine, 0)),
        Err(e) if reserve::is_no_space(&e) => e,
        Err(e) => return Err(CliError::Open(e)),
    };
    let released = reserve::release_reserve(dir).map_err(|source| CliError::Io {
        what: "removing the database's reserve",
        path: dir.join(RESERVE_FILE),
        source,
    })?;
    if released == 0 {
        return Err(CliError::NoReserveLeft {
            dir: dir.to_path_buf(),
            source: Box::new(first),
        });
    }
    let engine = Engine::open(dir, options).map_err(|e| CliError::opening(dir, e))?;
    Ok((engine, released))
}

/// What became of the reserve, once the engine is closed: put back if it is missing and
/// the file system has room for it and one more segment (`segment_size`), so that an
/// append is never short of space because of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReserveOutcome {
    /// Bytes of reserve this command released to open the database.
    pub released: u64,
    /// Whether the reserve is in place now.
    pub in_place: bool,
    /// Whether this command put it back.
    pub restored: bool,
}

impl ReserveOutcome {
    /// Puts the reserve of the database in `dir` back if it is missing and there is room.
    /// The room for one more segment is left free only when the log keeps no freed
    /// segment for reuse (the next segment is made from that one, taking no space).
    ///
    /// # Errors
    /// [`CliError::Io`] if writing it failed for another reason than a full file system.
    pub fn settle(dir: &Path, segment_size: u64, released: u64) -> Result<Self, CliError> {
        let had = reserve::has_reserve(dir);
        let headroom = if tidelog::wal::segment::has_spare(&dir.join(tidelog::layout::WAL_DIR)) {
            0
        } else {
            segment_size
        };
        let in_place = reserve::restore_reserve(dir, headroom).map_err(|source| CliError::Io {
            what: "putting the database's reserve back",
            path: dir.join(RESERVE_FILE),
            source,
        })?;
        Ok(ReserveOutcome {
            released,
            in_place,
            restored: in_place && !had,
        })
    }

    /// A line for the command's report, when there is something to say.
    #[must_use]
    pub fn sentence(&self, dir: &Path) -> Option<String> {
        let kib = RESERVE_BYTES / 1024;
        let path = dir.join(RESERVE_FILE);
        match (self.released > 0, self.in_place, self.restored) {
            (true, true, _) => Some(format!(
                "the file system was full: the database opened in the room of its reserve \
                 ({kib} KiB), which is back in place ({})",
                path.display()
            )),
            (_, false, _) => Some(format!(
                "the database's reserve ({}) is used up and comes back once {kib} KiB and a \
                 segment are free: free space, then run this command again",
                path.display()
            )),
            (false, true, true) => Some(format!(
                "put the database's reserve back ({kib} KiB, {})",
                path.display()
            )),
            (false, true, false) => None,
        }
    }

    /// The JSON fields of the outcome.
    #[must_use]
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "released_bytes": self.released,
            "in_place": self.in_place,
            "restored": self.restored,
        })
    }
}
