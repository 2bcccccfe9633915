//! The checkpoint folder: naming, atomic writes, verification, readers, pins, retention.
//!
//! Invariants:
//! - A checkpoint file exists under its final name only complete and synced
//!   ([`tidelog_wal::files::write_atomic`]); a crash leaves at most a `*.tmp`, removed at
//!   the next open.
//! - Names never collide: `<point:020>-<id:020>-<random:016x>-<kind>.ckpt`, where `id`
//!   comes from an atomic counter that starts above every id on disk, and 64 random bits
//!   guard against another process; the rename never replaces a file, so even a collision
//!   could not overwrite one.
//! - Only a checkpoint that verifies is ever returned; one that fails is marked invalid,
//!   skipped in favour of the previous one, and removed by the next prune.
//! - Pruning never removes a checkpoint a reader has open, the first one (baseline), the
//!   last `keep_last`, a milestone or a pinned one.

use super::format::{self, CheckpointIssue, Decoded, LaneHead};
use super::{CheckpointError, CheckpointId, CheckpointInfo, CheckpointOptions};
use parking_lot::Mutex;
use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};
use tidelog_wal::files::{self, FileError};
use tidelog_wal::io::Storage;
use tidelog_watermarks::{GlobalSeq, HlcPoint};

const SUFFIX: &str = ".ckpt";
const TEMP_SUFFIX: &str = ".tmp";
const PIN_SUFFIX: &str = ".pin";

/// A checkpoint file name, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Name {
    pub(crate) seq: u64,
    pub(crate) id: u64,
    pub(crate) milestone: bool,
}

/// The file name of a checkpoint.
pub(crate) fn file_name(seq: u64, id: u64, random: u64, milestone: bool) -> String {
    let kind = if milestone { 'm' } else { 'n' };
    format!("{seq:020}-{id:020}-{random:016x}-{kind}{SUFFIX}")
}

/// Parses a checkpoint file name; `None` for anything else.
pub(crate) fn parse_name(name: &str) -> Option<Name> {
    let stem = name.strip_suffix(SUFFIX)?;
    let mut parts = stem.split('-');
    let (seq, id, random, kind) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some()
        || seq.len() != 20
        || id.len() != 20
        || random.len() != 16
        || !random.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return None;
    }
    let milestone = match kind {
        "m" => true,
        "n" => false,
        _ => return None,
    };
    Some(Name {
        seq: seq.parse().ok()?,
        id: id.parse().ok()?,
        milestone,
    })
}

/// 64 bits no other process will pick: a randomly keyed hash of time, pid and id.
fn random_bits(id: u64) -> u64 {
    let mut hasher = RandomState::new().build_hasher();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    hasher.write_u128(nanos);
    hasher.write_u32(std::process::id());
    hasher.write_u64(id);
    hasher.finish()
}

/// Verifies the content of the checkpoint file named `name`: it decodes and agrees with
/// its name. The one definition of "this checkpoint verifies".
pub(crate) fn verify(name: &Name, bytes: &[u8]) -> Result<Decoded, CheckpointIssue> {
    let decoded = format::decode(bytes)?;
    if decoded.point.global_sequence != name.seq
        || decoded.id != name.id
        || decoded.milestone != name.milestone
    {
        return Err(CheckpointIssue::NameMismatch);
    }
    Ok(decoded)
}

/// A checkpoint file of the folder, read and verified.
#[derive(Debug)]
pub(crate) struct Found {
    /// Its file name.
    pub(crate) name: String,
    /// What the name says.
    pub(crate) parsed: Name,
    /// Its length.
    pub(crate) bytes: u64,
    /// The point its header holds, or why it does not verify.
    pub(crate) verified: Result<HlcPoint, CheckpointIssue>,
    /// Each lane's head at its point (empty when it does not verify).
    pub(crate) lanes: Vec<LaneHead>,
    /// Whether a pin file names it.
    pub(crate) pinned: bool,
}

impl Found {
    /// The point it covers: from the header when it verifies, else from its name (the
    /// wall clock is then unknown, 0).
    pub(crate) fn point(&self) -> HlcPoint {
        self.verified.unwrap_or(HlcPoint {
            wall_ms: 0,
            global_sequence: self.parsed.seq,
        })
    }
}

/// Reads and verifies the checkpoint file `name` of `dir`; `None` if it no longer exists
/// (removed since the folder was listed).
fn read_found<S: Storage>(
    storage: &S,
    dir: &Path,
    name: &str,
    parsed: Name,
) -> Result<Option<Found>, FileError> {
    let bytes = match files::read(storage, &dir.join(name)) {
        Ok(bytes) => bytes,
        Err(e) if e.source.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let decoded = verify(&parsed, &bytes);
    Ok(Some(Found {
        name: name.to_string(),
        lanes: decoded
            .as_ref()
            .map(|d| d.lanes.clone())
            .unwrap_or_default(),
        verified: decoded.map(|d| d.point),
        parsed,
        bytes: bytes.len() as u64,
        pinned: false,
    }))
}

/// What a checkpoint folder holds.
#[derive(Debug, Default)]
pub(crate) struct FolderScan {
    /// Every checkpoint file, in the order taken (point, then id).
    pub(crate) checkpoints: Vec<Found>,
    /// Interrupted writes (`*.tmp`).
    pub(crate) temps: Vec<PathBuf>,
}

/// Reads and verifies every checkpoint file of `dir`, changing nothing. A file that
/// disappears between the listing and its reading (pruned by the writer meanwhile) is left
/// out; a file that does not verify is listed with its issue.
pub(crate) fn scan_folder<S: Storage>(storage: &S, dir: &Path) -> Result<FolderScan, FileError> {
    let names = files::list(storage, dir)?;
    let mut scan = FolderScan::default();
    let mut pins = BTreeSet::new();
    for name in &names {
        let Some(name) = name.to_str() else { continue };
        if name.ends_with(TEMP_SUFFIX) {
            scan.temps.push(dir.join(name));
        } else if let Some(target) = name.strip_suffix(PIN_SUFFIX) {
            pins.insert(target.to_string());
        } else if let Some(parsed) = parse_name(name) {
            scan.checkpoints
                .extend(read_found(storage, dir, name, parsed)?);
        }
    }
    for found in &mut scan.checkpoints {
        found.pinned = pins.contains(&found.name);
    }
    scan.checkpoints
        .sort_by_key(|f| (f.parsed.seq, f.parsed.id));
    Ok(scan)
}

#[derive(Debug, Clone)]
struct Entry {
    name: String,
    point: HlcPoint,
    milestone: bool,
    pinned: bool,
    valid: bool,
    bytes: u64,
}

#[derive(Debug, Default)]
struct StoreState {
    /// By (point, id): the order checkpoints were taken in.
    entries: BTreeMap<(u64, u64), Entry>,
    /// Open readers per checkpoint id.
    readers: HashMap<u64, usize>,
}

/// What a prune removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// Checkpoints removed by retention.
    pub removed: Vec<CheckpointInfo>,
    /// Checkpoints removed because they failed verification.
    pub removed_invalid: Vec<PathBuf>,
    /// Checkpoints retention would remove but a reader has open.
    pub kept_open: Vec<CheckpointId>,
}

/// A checkpoint read back and verified. Keeps the file from being pruned while it lives.
#[derive(Debug)]
pub struct Checkpoint {
    info: CheckpointInfo,
    lanes: Vec<LaneHead>,
    state: Vec<u8>,
    _guard: ReaderGuard,
}

impl Checkpoint {
    /// Which checkpoint this is.
    #[must_use]
    pub fn info(&self) -> &CheckpointInfo {
        &self.info
    }
    /// The point it covers: the caller's state includes every record up to it.
    #[must_use]
    pub fn point(&self) -> HlcPoint {
        self.info.point
    }
    /// The caller's state, as handed to the engine.
    #[must_use]
    pub fn state(&self) -> &[u8] {
        &self.state
    }
    /// Each lane's head at the point.
    #[must_use]
    pub fn lane_heads(&self) -> &[LaneHead] {
        &self.lanes
    }
}

#[derive(Debug)]
struct ReaderGuard {
    state: Arc<Mutex<StoreState>>,
    id: u64,
}

impl Drop for ReaderGuard {
    fn drop(&mut self) {
        let mut state = self.state.lock();
        if let Some(count) = state.readers.get_mut(&self.id) {
            *count -= 1;
            if *count == 0 {
                state.readers.remove(&self.id);
            }
        }
    }
}

/// The checkpoint folder of one database.
pub(crate) struct Store<S: Storage> {
    storage: S,
    dir: PathBuf,
    options: CheckpointOptions,
    next_id: AtomicU64,
    state: Arc<Mutex<StoreState>>,
}

impl<S: Storage> Store<S> {
    /// Opens the folder: removes interrupted writes (`*.tmp`), verifies every checkpoint.
    pub(crate) fn open(
        storage: S,
        dir: PathBuf,
        options: CheckpointOptions,
    ) -> Result<Self, FileError> {
        files::create_dir_all(&storage, &dir)?;
        let scan = scan_folder(&storage, &dir)?;
        let mut state = StoreState::default();
        let mut max_id = 0;
        for found in scan.checkpoints {
            max_id = max_id.max(found.parsed.id);
            state.entries.insert(
                (found.parsed.seq, found.parsed.id),
                Entry {
                    point: found.point(),
                    milestone: found.parsed.milestone,
                    pinned: found.pinned,
                    valid: found.verified.is_ok(),
                    bytes: found.bytes,
                    name: found.name,
                },
            );
        }
        if !scan.temps.is_empty() {
            for temp in &scan.temps {
                files::remove(&storage, temp)?;
            }
            files::sync_dir(&storage, &dir)?;
        }
        Ok(Store {
            storage,
            dir,
            options,
            next_id: AtomicU64::new(max_id + 1),
            state: Arc::new(Mutex::new(state)),
        })
    }

    pub(crate) fn storage(&self) -> &S {
        &self.storage
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    pub(crate) fn options(&self) -> &CheckpointOptions {
        &self.options
    }

    /// Writes a new checkpoint atomically and records it.
    pub(crate) fn write(
        &self,
        point: HlcPoint,
        milestone: bool,
        lanes: &[LaneHead],
        state: &[u8],
    ) -> Result<CheckpointInfo, CheckpointError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let name = file_name(point.global_sequence, id, random_bits(id), milestone);
        let temp = format!("{name}{TEMP_SUFFIX}");
        let bytes = format::encode(point, id, milestone, lanes, state);
        if let Err(e) = files::write_atomic(&self.storage, &self.dir, &temp, &name, &bytes) {
            // Best effort; the next open removes it otherwise.
            let _ = files::remove(&self.storage, &self.dir.join(&temp));
            return Err(CheckpointError::Io(e));
        }
        let entry = Entry {
            name,
            point,
            milestone,
            pinned: false,
            valid: true,
            bytes: bytes.len() as u64,
        };
        let info = self.info(id, &entry);
        self.state
            .lock()
            .entries
            .insert((point.global_sequence, id), entry);
        Ok(info)
    }

    fn info(&self, id: u64, entry: &Entry) -> CheckpointInfo {
        CheckpointInfo {
            id: CheckpointId(id),
            point: entry.point,
            milestone: entry.milestone,
            pinned: entry.pinned,
            path: self.dir.join(&entry.name),
            bytes: entry.bytes,
        }
    }

    /// Every valid checkpoint, oldest first.
    pub(crate) fn list(&self) -> Vec<CheckpointInfo> {
        let state = self.state.lock();
        state
            .entries
            .iter()
            .filter(|(_, e)| e.valid)
            .map(|((_, id), e)| self.info(*id, e))
            .collect()
    }

    /// The newest checkpoint covering at most `seq` that verifies; invalid ones on the way
    /// are marked and skipped.
    pub(crate) fn open_at_or_before(
        &self,
        seq: GlobalSeq,
    ) -> Result<Option<Checkpoint>, CheckpointError> {
        let mut bound = (seq.0, u64::MAX);
        loop {
            let (key, entry) = {
                let mut state = self.state.lock();
                let Some((key, entry)) = state
                    .entries
                    .range(..=bound)
                    .rev()
                    .find(|(_, e)| e.valid)
                    .map(|(k, e)| (*k, e.clone()))
                else {
                    return Ok(None);
                };
                *state.readers.entry(key.1).or_default() += 1;
                (key, entry)
            };
            let guard = ReaderGuard {
                state: Arc::clone(&self.state),
                id: key.1,
            };
            let path = self.dir.join(&entry.name);
            let decoded = files::read(&self.storage, &path)
                .map_err(CheckpointError::Io)
                .and_then(|bytes| {
                    let name = Name {
                        seq: key.0,
                        id: key.1,
                        milestone: entry.milestone,
                    };
                    verify(&name, &bytes).map_err(|issue| CheckpointError::Corrupt { path, issue })
                });
            match decoded {
                Ok(d) => {
                    return Ok(Some(Checkpoint {
                        info: self.info(key.1, &entry),
                        lanes: d.lanes,
                        state: d.state,
                        _guard: guard,
                    }))
                }
                Err(CheckpointError::Io(e)) => return Err(CheckpointError::Io(e)),
                _ => {
                    if let Some(e) = self.state.lock().entries.get_mut(&key) {
                        e.valid = false;
                    }
                    bound = match key.1.checked_sub(1) {
                        Some(id) => (key.0, id),
                        None => match key.0.checked_sub(1) {
                            Some(seq) => (seq, u64::MAX),
                            None => return Ok(None),
                        },
                    };
                }
            }
        }
    }

    /// Pins or unpins a checkpoint (a `<name>.pin` file records it across reopens).
    pub(crate) fn set_pinned(&self, id: CheckpointId, pinned: bool) -> Result<(), CheckpointError> {
        let mut state = self.state.lock();
        let Some(entry) = state
            .entries
            .values_mut()
            .find(|e| parse_name(&e.name).is_some_and(|n| n.id == id.0) && e.valid)
        else {
            return Err(CheckpointError::NotFound { id });
        };
        if entry.pinned == pinned {
            return Ok(());
        }
        let pin = format!("{}{PIN_SUFFIX}", entry.name);
        if pinned {
            let temp = format!("{pin}{TEMP_SUFFIX}");
            files::write_atomic(&self.storage, &self.dir, &temp, &pin, &[])?;
        } else {
            files::remove(&self.storage, &self.dir.join(&pin))?;
            files::sync_dir(&self.storage, &self.dir)?;
        }
        entry.pinned = pinned;
        Ok(())
    }

    /// Removes every checkpoint retention does not keep (see the module docs) and every
    /// invalid one; syncs the folder once.
    pub(crate) fn prune(&self) -> Result<PruneReport, CheckpointError> {
        let mut state = self.state.lock();
        let valid: Vec<(u64, u64)> = state
            .entries
            .iter()
            .filter(|(_, e)| e.valid)
            .map(|(k, _)| *k)
            .collect();
        let mut keep: BTreeSet<(u64, u64)> = valid
            .iter()
            .rev()
            .take(self.options.keep_last)
            .copied()
            .collect();
        keep.extend(valid.first().copied());
        let mut report = PruneReport::default();
        let mut doomed = Vec::new();
        for (key, entry) in &state.entries {
            if entry.valid && (keep.contains(key) || entry.milestone || entry.pinned) {
                continue;
            }
            if entry.valid && state.readers.contains_key(&key.1) {
                report.kept_open.push(CheckpointId(key.1));
                continue;
            }
            doomed.push(*key);
        }
        for key in doomed {
            let Some(entry) = state.entries.get(&key).cloned() else {
                continue;
            };
            let path = self.dir.join(&entry.name);
            files::remove(&self.storage, &path)?;
            state.entries.remove(&key);
            if entry.valid {
                report.removed.push(self.info(key.1, &entry));
            } else {
                report.removed_invalid.push(path);
            }
        }
        if !report.removed.is_empty() || !report.removed_invalid.is_empty() {
            files::sync_dir(&self.storage, &self.dir)?;
        }
        Ok(report)
    }

    /// The checkpoint the log must be kept for: the oldest of the newest
    /// `log_for_last` valid ones (recovery falls back to it if newer ones are damaged).
    pub(crate) fn claiming_checkpoint(&self) -> Option<CheckpointInfo> {
        let state = self.state.lock();
        state
            .entries
            .iter()
            .rev()
            .filter(|(_, e)| e.valid)
            .take(self.options.log_for_last.max(1))
            .last()
            .map(|((_, id), e)| self.info(*id, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back_and_sort_by_point_then_id() {
        let a = file_name(9, 1, 0xabc, false);
        let b = file_name(10, 0, 0x1, true);
        assert!(a < b);
        assert_eq!(
            parse_name(&a),
            Some(Name {
                seq: 9,
                id: 1,
                milestone: false
            })
        );
        assert_eq!(parse_name(&b).map(|n| n.milestone), Some(true));
        for other in ["x.ckpt", &format!("{a}.tmp"), &format!("{a}.pin")] {
            assert_eq!(parse_name(other), None, "{other}");
        }
    }

    #[test]
    fn a_checkpoint_removed_after_the_listing_is_left_out_but_a_read_error_is_not() {
        use tidelog_wal::io::{FaultMode, OpKind, SimDisk};
        let disk = SimDisk::new();
        let dir = PathBuf::from("/sim/checkpoints");
        let point = HlcPoint {
            wall_ms: 1,
            global_sequence: 5,
        };
        let name = file_name(5, 1, 7, false);
        disk.put_file(
            &dir.join(&name),
            &format::encode(point, 1, false, &[], b"s"),
        )
        .expect("put");
        let parsed = || parse_name(&name).expect("name");
        let found = read_found(&disk, &dir, &name, parsed())
            .expect("read")
            .expect("present");
        assert_eq!(found.verified, Ok(point));
        let gone = file_name(6, 2, 7, false);
        let parsed_gone = parse_name(&gone).expect("name");
        assert!(read_found(&disk, &dir, &gone, parsed_gone)
            .expect("a vanished file is no error")
            .is_none());
        disk.fail(OpKind::Open, 1, FaultMode::Once);
        assert!(read_found(&disk, &dir, &name, parsed()).is_err());
    }

    #[test]
    fn the_random_part_differs_between_calls_with_the_same_id() {
        assert_ne!(random_bits(1), random_bits(1));
    }

    #[test]
    fn a_corrupt_issue_is_reported_by_the_decoder() {
        assert_eq!(
            format::decode(&[0; 10]),
            Err(CheckpointIssue::TooShort { len: 10 })
        );
    }
}
