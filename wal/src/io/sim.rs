//! A simulated disk for crash and fault tests.
//!
//! Every file has two images: the page cache (what the program reads and stores into, a
//! shared anonymous mapping) and the durable image (what survives a power loss). A store
//! marks its 512-byte sectors dirty; a sync copies dirty sectors of its range to the
//! durable image. Directory entries are likewise durable only once their directory is
//! synced. A failed sync drops the dirty state of its range without making it durable, as
//! Linux does after an fsync error (fsyncgate): a later sync "succeeds" without writing.
//!
//! Operations are counted (see [`OpKind`]). A test can make the N-th operation of a kind
//! fail, once or from then on ([`SimDisk::fail`]), or make the machine die at the k-th
//! operation of any kind ([`SimDisk::crash_at`]); [`SimDisk::crash_image`] then gives the
//! disk as it would be after reboot: each dirty sector independently kept, dropped,
//! zeroed or filled with garbage, and unsynced directory operations undone.
//!
//! [`SimDisk`] is a cheap handle (`Clone` shares the disk), so a test can drop a log and
//! open it again on the same disk (a process crash: the page cache survives) or on the
//! crash image (a power loss).

use super::mapped::MappedRegion;
use super::sealed::{SegmentOps, StorageOps};
use parking_lot::Mutex;
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const SECTOR: usize = 512;

/// Kinds of operations the simulated disk counts and can fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpKind {
    /// Creating a file.
    Create,
    /// Opening (and mapping) a file.
    Open,
    /// Reserving and zero-filling a new file (fallocate).
    Allocate,
    /// Storing bytes into a mapping.
    Write,
    /// Syncing a file's data (fdatasync/msync), including the sync of a new file.
    Sync,
    /// Renaming a file.
    Rename,
    /// Deleting a file.
    Remove,
    /// Syncing a directory.
    DirSync,
}

impl OpKind {
    /// Every kind, for sweeps.
    pub const ALL: [OpKind; 8] = [
        OpKind::Create,
        OpKind::Open,
        OpKind::Allocate,
        OpKind::Write,
        OpKind::Sync,
        OpKind::Rename,
        OpKind::Remove,
        OpKind::DirSync,
    ];

    fn slot(self) -> usize {
        self as usize
    }
}

/// Whether an injected fault fires once or stays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultMode {
    /// Only the chosen operation fails.
    Once,
    /// The chosen operation and every later one of its kind fail.
    Persistent,
}

#[derive(Debug)]
struct Fault {
    kind: OpKind,
    at: u64,
    mode: FaultMode,
}

#[derive(Debug)]
struct SimFile {
    cache: Arc<MappedRegion>,
    len: usize,
    durable: Vec<u8>,
    dirty: BTreeSet<usize>,
}

#[derive(Debug, Default)]
struct SimState {
    ops: u64,
    per_kind: [u64; 8],
    crash_at: Option<u64>,
    crashed: bool,
    faults: Vec<Fault>,
    files: BTreeMap<u64, SimFile>,
    next_file: u64,
    names: BTreeMap<PathBuf, u64>,
    durable_names: BTreeMap<PathBuf, u64>,
    /// The next `rename` finds its target taken (see `occupy_next_rename_target`).
    occupy_next_rename: bool,
}

/// A simulated disk (see the module docs). `Clone` shares the same disk.
#[derive(Debug, Clone, Default)]
pub struct SimDisk {
    state: Arc<Mutex<SimState>>,
}

/// A file of the simulated disk, mapped.
#[derive(Debug)]
pub struct SimSegment {
    disk: SimDisk,
    file: u64,
    region: Arc<MappedRegion>,
    writable: bool,
}

fn crash_error() -> io::Error {
    io::Error::other("simulated machine crashed")
}

fn fault_error(kind: OpKind) -> io::Error {
    match kind {
        OpKind::Allocate => io::Error::from_raw_os_error(libc::ENOSPC),
        _ => io::Error::from_raw_os_error(libc::EIO),
    }
}

fn not_found() -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, "no such simulated file")
}

fn sectors(at: usize, len: usize) -> std::ops::Range<usize> {
    if len == 0 {
        return 0..0;
    }
    at / SECTOR..(at + len).div_ceil(SECTOR)
}

/// splitmix64: a tiny deterministic generator for crash damage.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

impl SimState {
    fn op(&mut self, kind: OpKind) -> io::Result<()> {
        if self.crashed {
            return Err(crash_error());
        }
        self.ops += 1;
        if let Some(slot) = self.per_kind.get_mut(kind.slot()) {
            *slot += 1;
        }
        if self.crash_at == Some(self.ops) {
            self.crashed = true;
            return Err(crash_error());
        }
        let n = self.per_kind.get(kind.slot()).copied().unwrap_or(0);
        let fails = self.faults.iter().any(|f| {
            f.kind == kind
                && match f.mode {
                    FaultMode::Once => n == f.at,
                    FaultMode::Persistent => n >= f.at,
                }
        });
        if fails {
            return Err(fault_error(kind));
        }
        Ok(())
    }

    /// A file id never used before.
    fn new_file_id(&mut self) -> u64 {
        let id = self.next_file;
        self.next_file += 1;
        id
    }

    fn file(&mut self, path: &Path) -> io::Result<(u64, &mut SimFile)> {
        let id = *self.names.get(path).ok_or_else(not_found)?;
        let file = self.files.get_mut(&id).ok_or_else(not_found)?;
        Ok((id, file))
    }
}

impl SimDisk {
    /// An empty disk.
    #[must_use]
    pub fn new() -> SimDisk {
        SimDisk::default()
    }

    /// Operations run so far (all kinds). Run a workload once and read this to know how
    /// far to sweep [`crash_at`](SimDisk::crash_at).
    #[must_use]
    pub fn ops(&self) -> u64 {
        self.state.lock().ops
    }

    /// Operations of one kind run so far.
    #[must_use]
    pub fn ops_of(&self, kind: OpKind) -> u64 {
        self.state
            .lock()
            .per_kind
            .get(kind.slot())
            .copied()
            .unwrap_or(0)
    }

    /// The machine dies at the `k`-th operation counted from the disk's creation (that
    /// operation and everything after it fail, and nothing more reaches the disk).
    pub fn crash_at(&self, k: u64) {
        self.state.lock().crash_at = Some(k);
    }

    /// Whether the machine has died.
    #[must_use]
    pub fn is_crashed(&self) -> bool {
        self.state.lock().crashed
    }

    /// Makes the `nth` next operation of `kind` fail (1 = the very next one), once or from
    /// then on. Allocation fails with `ENOSPC`, everything else with `EIO`.
    pub fn fail(&self, kind: OpKind, nth: u64, mode: FaultMode) {
        let mut st = self.state.lock();
        let done = st.per_kind.get(kind.slot()).copied().unwrap_or(0);
        st.faults.push(Fault {
            kind,
            at: done + nth.max(1),
            mode,
        });
    }

    /// Makes the next `rename` (not a `replace`) find a zero-filled file of the source's
    /// length already under its target name, as if another process had just put one
    /// there (a deposed writer finishing its own preparation of the same segment).
    pub fn occupy_next_rename_target(&self) {
        self.state.lock().occupy_next_rename = true;
    }

    /// Removes every injected fault.
    pub fn clear_faults(&self) {
        self.state.lock().faults.clear();
    }

    /// The disk after a power loss now: a new, independent disk holding the durable image,
    /// with each dirty sector kept, dropped, zeroed or garbage (chosen from `seed`), and
    /// the directory entries as of each directory's last sync.
    #[must_use]
    pub fn crash_image(&self, seed: u64) -> SimDisk {
        let st = self.state.lock();
        let mut out = SimState {
            next_file: st.next_file,
            names: st.durable_names.clone(),
            durable_names: st.durable_names.clone(),
            ..SimState::default()
        };
        for &id in st.durable_names.values() {
            let Some(file) = st.files.get(&id) else {
                continue;
            };
            if out.files.contains_key(&id) {
                continue;
            }
            let mut content = file.durable.clone();
            content.resize(file.len, 0);
            let cache = file.cache.bytes(0, file.len).unwrap_or(&[]);
            for &sector in &file.dirty {
                let start = sector * SECTOR;
                let end = (start + SECTOR).min(file.len);
                let roll = mix(seed ^ mix(id) ^ mix(sector as u64));
                let (Some(dst), Some(src)) = (content.get_mut(start..end), cache.get(start..end))
                else {
                    continue;
                };
                match roll % 4 {
                    0 => dst.copy_from_slice(src),
                    1 => {}
                    2 => dst.fill(0),
                    _ => {
                        for (i, b) in dst.iter_mut().enumerate() {
                            *b = mix(roll ^ i as u64) as u8;
                        }
                    }
                }
            }
            let Ok(region) = MappedRegion::anonymous(file.len) else {
                continue;
            };
            if region.write_at(0, &[&content]).is_err() {
                continue;
            }
            out.files.insert(
                id,
                SimFile {
                    cache: Arc::new(region),
                    len: file.len,
                    durable: content,
                    dirty: BTreeSet::new(),
                },
            );
        }
        SimDisk {
            state: Arc::new(Mutex::new(out)),
        }
    }

    /// Current (page cache) content of a file, for tests that inspect or damage it.
    #[must_use]
    pub fn file_bytes(&self, path: &Path) -> Option<Vec<u8>> {
        let mut st = self.state.lock();
        let (_, file) = st.file(path).ok()?;
        file.cache.bytes(0, file.len).map(<[u8]>::to_vec)
    }

    /// Overwrites bytes of a file both in the page cache and on the durable image, as bit
    /// rot or a stray writer would. Not counted as an operation. Only for a disk no log has
    /// open.
    pub fn corrupt(&self, path: &Path, at: usize, bytes: &[u8]) -> io::Result<()> {
        let mut st = self.state.lock();
        let (_, file) = st.file(path)?;
        file.cache.write_at(at, &[bytes])?;
        let end = at.saturating_add(bytes.len());
        let dst = file.durable.get_mut(at..end).ok_or_else(not_found)?;
        dst.copy_from_slice(bytes);
        Ok(())
    }

    /// Creates a durable file with this content (a foreign file, for tests). Not counted.
    pub fn put_file(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        let mut st = self.state.lock();
        let region = MappedRegion::anonymous(bytes.len())?;
        region.write_at(0, &[bytes])?;
        let id = st.new_file_id();
        st.files.insert(
            id,
            SimFile {
                cache: Arc::new(region),
                len: bytes.len(),
                durable: bytes.to_vec(),
                dirty: BTreeSet::new(),
            },
        );
        st.names.insert(path.to_path_buf(), id);
        st.durable_names.insert(path.to_path_buf(), id);
        Ok(())
    }

    /// Paths of the files that exist now.
    #[must_use]
    pub fn paths(&self) -> Vec<PathBuf> {
        self.state.lock().names.keys().cloned().collect()
    }
}

impl StorageOps for SimDisk {
    type Segment = SimSegment;

    fn create_dir_all(&self, _dir: &Path) -> io::Result<()> {
        if self.state.lock().crashed {
            return Err(crash_error());
        }
        Ok(())
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<OsString>> {
        let st = self.state.lock();
        if st.crashed {
            return Err(crash_error());
        }
        Ok(st
            .names
            .keys()
            .filter(|p| p.parent() == Some(dir))
            .filter_map(|p| p.file_name().map(OsString::from))
            .collect())
    }

    fn create_zeroed(&self, path: &Path, len: u64) -> io::Result<()> {
        let mut st = self.state.lock();
        st.op(OpKind::Create)?;
        if st.names.contains_key(path) {
            return Err(io::Error::new(io::ErrorKind::AlreadyExists, "file exists"));
        }
        let id = st.new_file_id();
        st.files.insert(
            id,
            SimFile {
                cache: Arc::new(MappedRegion::anonymous(0)?),
                len: 0,
                durable: Vec::new(),
                dirty: BTreeSet::new(),
            },
        );
        st.names.insert(path.to_path_buf(), id);
        st.op(OpKind::Allocate)?;
        let len = usize::try_from(len)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "file too large"))?;
        let region = Arc::new(MappedRegion::anonymous(len)?);
        if let Some(file) = st.files.get_mut(&id) {
            file.cache = region;
            file.len = len;
            file.dirty = sectors(0, len).collect();
        }
        st.op(OpKind::Sync)?;
        if let Some(file) = st.files.get_mut(&id) {
            file.durable = vec![0; len];
            file.dirty.clear();
        }
        Ok(())
    }

    fn open_segment(&self, path: &Path, writable: bool) -> io::Result<SimSegment> {
        let mut st = self.state.lock();
        st.op(OpKind::Open)?;
        let (id, file) = st.file(path)?;
        if file.len == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "cannot map an empty file",
            ));
        }
        Ok(SimSegment {
            disk: self.clone(),
            file: id,
            region: Arc::clone(&file.cache),
            writable,
        })
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut st = self.state.lock();
        st.op(OpKind::Rename)?;
        if std::mem::take(&mut st.occupy_next_rename) {
            let len = st.file(from)?.1.len;
            let id = st.new_file_id();
            let cache = Arc::new(MappedRegion::anonymous(len)?);
            st.files.insert(
                id,
                SimFile {
                    cache,
                    len,
                    durable: vec![0; len],
                    dirty: BTreeSet::new(),
                },
            );
            st.names.insert(to.to_path_buf(), id);
            st.durable_names.insert(to.to_path_buf(), id);
        }
        if st.names.contains_key(to) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "target exists",
            ));
        }
        let id = st.names.remove(from).ok_or_else(not_found)?;
        st.names.insert(to.to_path_buf(), id);
        Ok(())
    }

    fn replace(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut st = self.state.lock();
        st.op(OpKind::Rename)?;
        let id = st.names.remove(from).ok_or_else(not_found)?;
        st.names.insert(to.to_path_buf(), id);
        Ok(())
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        let mut st = self.state.lock();
        st.op(OpKind::Remove)?;
        st.names.remove(path).map(|_| ()).ok_or_else(not_found)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut st = self.state.lock();
        st.op(OpKind::DirSync)?;
        st.durable_names.retain(|p, _| p.parent() != Some(dir));
        let current: Vec<(PathBuf, u64)> = st
            .names
            .iter()
            .filter(|(p, _)| p.parent() == Some(dir))
            .map(|(p, id)| (p.clone(), *id))
            .collect();
        st.durable_names.extend(current);
        Ok(())
    }

    fn write_new(&self, path: &Path, data: &[u8], len: u64) -> io::Result<()> {
        let len = usize::try_from(len)
            .ok()
            .filter(|l| *l >= data.len())
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "bad file length"))?;
        let mut st = self.state.lock();
        st.op(OpKind::Create)?;
        if st.names.contains_key(path) {
            return Err(io::Error::new(io::ErrorKind::AlreadyExists, "file exists"));
        }
        let id = st.new_file_id();
        // The name exists (unsynced) with nothing durable in it: a crash before the data
        // sync leaves zeros or damaged sectors, never the new content for certain.
        st.files.insert(
            id,
            SimFile {
                cache: Arc::new(MappedRegion::anonymous(len)?),
                len,
                durable: vec![0; len],
                dirty: BTreeSet::new(),
            },
        );
        st.names.insert(path.to_path_buf(), id);
        st.op(OpKind::Write)?;
        if let Some(file) = st.files.get_mut(&id) {
            file.cache.write_at(0, &[data])?;
            file.dirty.extend(sectors(0, len));
        }
        Ok(())
    }

    fn sync_file(&self, path: &Path) -> io::Result<()> {
        let mut st = self.state.lock();
        let result = st.op(OpKind::Sync);
        let crashed = st.crashed;
        let (_, file) = st.file(path)?;
        let dirty: Vec<usize> = std::mem::take(&mut file.dirty).into_iter().collect();
        match result {
            Ok(()) => {
                let cache = file.cache.bytes(0, file.len).unwrap_or(&[]);
                for sector in dirty {
                    let start = sector * SECTOR;
                    let end = (start + SECTOR).min(file.len);
                    if let (Some(dst), Some(src)) =
                        (file.durable.get_mut(start..end), cache.get(start..end))
                    {
                        dst.copy_from_slice(src);
                    }
                }
                Ok(())
            }
            Err(e) => {
                if crashed {
                    // The machine died: the sectors stay dirty for the crash image.
                    file.dirty.extend(dirty);
                }
                Err(e)
            }
        }
    }

    fn read_all(&self, path: &Path) -> io::Result<Vec<u8>> {
        let mut st = self.state.lock();
        st.op(OpKind::Open)?;
        let (_, file) = st.file(path)?;
        Ok(file.cache.bytes(0, file.len).unwrap_or(&[]).to_vec())
    }
}

impl SegmentOps for SimSegment {
    fn region(&self) -> &Arc<MappedRegion> {
        &self.region
    }

    fn write(&self, at: usize, parts: &[&[u8]]) -> io::Result<()> {
        let mut st = self.disk.state.lock();
        st.op(OpKind::Write)?;
        if !self.writable {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "segment opened read-only",
            ));
        }
        self.region.write_at(at, parts)?;
        let len: usize = parts.iter().map(|p| p.len()).sum();
        if let Some(file) = st.files.get_mut(&self.file) {
            file.dirty.extend(sectors(at, len));
        }
        Ok(())
    }

    fn sync(&self, at: usize, len: usize) -> io::Result<()> {
        let mut st = self.disk.state.lock();
        let result = st.op(OpKind::Sync);
        let crashed = st.crashed;
        let Some(file) = st.files.get_mut(&self.file) else {
            return Err(not_found());
        };
        let range = sectors(at, len);
        let in_range: Vec<usize> = file.dirty.range(range).copied().collect();
        match result {
            Ok(()) => {
                let cache = file.cache.bytes(0, file.len).unwrap_or(&[]);
                for sector in in_range {
                    let start = sector * SECTOR;
                    let end = (start + SECTOR).min(file.len);
                    if let (Some(dst), Some(src)) =
                        (file.durable.get_mut(start..end), cache.get(start..end))
                    {
                        dst.copy_from_slice(src);
                    }
                    file.dirty.remove(&sector);
                }
                Ok(())
            }
            Err(e) => {
                // fsyncgate: after a failed sync the kernel forgets the dirty pages.
                if !crashed {
                    for sector in in_range {
                        file.dirty.remove(&sector);
                    }
                }
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> PathBuf {
        PathBuf::from("/sim/wal")
    }

    #[test]
    fn synced_bytes_survive_a_crash_and_unsynced_names_do_not() {
        let disk = SimDisk::new();
        let a = dir().join("a");
        let b = dir().join("b");
        disk.create_zeroed(&a, 4096).unwrap();
        disk.sync_dir(&dir()).unwrap();
        disk.create_zeroed(&b, 4096).unwrap();
        let seg = disk.open_segment(&a, true).unwrap();
        seg.write(0, &[b"durable"]).unwrap();
        seg.sync(0, 7).unwrap();
        for seed in 0..16 {
            let img = disk.crash_image(seed);
            assert_eq!(img.paths(), vec![a.clone()]);
            assert_eq!(&img.file_bytes(&a).unwrap()[..7], b"durable");
        }
    }

    #[test]
    fn unsynced_sectors_are_damaged_in_every_way_across_seeds() {
        let disk = SimDisk::new();
        let a = dir().join("a");
        disk.create_zeroed(&a, 4096).unwrap();
        disk.sync_dir(&dir()).unwrap();
        let seg = disk.open_segment(&a, true).unwrap();
        seg.write(0, &[&[7u8; 512]]).unwrap();
        let mut seen = BTreeSet::new();
        for seed in 0..64 {
            let bytes = disk.crash_image(seed).file_bytes(&a).unwrap();
            let kind = if bytes[..512].iter().all(|&b| b == 7) {
                "kept"
            } else if bytes[..512].iter().all(|&b| b == 0) {
                "dropped or zeroed"
            } else {
                "garbage"
            };
            seen.insert(kind);
        }
        assert_eq!(seen.len(), 3, "{seen:?}");
    }

    #[test]
    fn a_failed_sync_forgets_the_dirty_sectors_like_linux() {
        let disk = SimDisk::new();
        let a = dir().join("a");
        disk.create_zeroed(&a, 4096).unwrap();
        disk.sync_dir(&dir()).unwrap();
        let seg = disk.open_segment(&a, true).unwrap();
        seg.write(0, &[b"lost"]).unwrap();
        disk.fail(OpKind::Sync, 1, FaultMode::Once);
        assert!(seg.sync(0, 4).is_err());
        seg.sync(0, 4).unwrap();
        assert_eq!(&disk.crash_image(1).file_bytes(&a).unwrap()[..4], &[0; 4]);
    }

    #[test]
    fn the_machine_dies_at_the_chosen_operation() {
        let disk = SimDisk::new();
        disk.crash_at(2);
        let a = dir().join("a");
        assert!(disk.create_zeroed(&a, 4096).is_err());
        assert!(disk.is_crashed());
        assert_eq!(disk.ops(), 2);
        assert!(disk.sync_dir(&dir()).is_err());
    }

    #[test]
    fn a_persistent_fault_keeps_failing() {
        let disk = SimDisk::new();
        disk.fail(OpKind::DirSync, 2, FaultMode::Persistent);
        assert!(disk.sync_dir(&dir()).is_ok());
        assert!(disk.sync_dir(&dir()).is_err());
        assert!(disk.sync_dir(&dir()).is_err());
    }
}
