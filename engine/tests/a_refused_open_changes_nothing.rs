//! An open refused because another process's writer holds the lease must leave the
//! database as it found it. What could go wrong: the refused open creates its liveness
//! file and removes it again (the holders folder changes), rewrites the lease record,
//! the published watermarks or the extent record, or touches a segment, so that a
//! command that did nothing still changes the directory (and its backups and checksums).

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};
use tidelog::lease::LeaseError;
use tidelog::{Engine, OpenError, Options};

/// A path, its modification time and, for a regular file, its bytes.
type Entry = (PathBuf, SystemTime, Option<Vec<u8>>);

/// Every file, socket and folder under `dir`: its path, its modification time and, for a
/// regular file, its bytes; sorted.
fn snapshot(dir: &Path) -> Vec<Entry> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(folder) = stack.pop() {
        let modified = std::fs::metadata(&folder).unwrap().modified().unwrap();
        out.push((folder.clone(), modified, None));
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let meta = std::fs::symlink_metadata(&path).unwrap();
                // The writer's socket for forwarded appends has no bytes to read.
                let bytes = meta.is_file().then(|| std::fs::read(&path).unwrap());
                out.push((path.clone(), meta.modified().unwrap(), bytes));
            }
        }
    }
    out.sort();
    out
}

/// The paths whose entry differs between two snapshots (added, removed, other bytes or
/// another modification time).
fn changed<'a>(before: &'a [Entry], after: &'a [Entry]) -> Vec<&'a Path> {
    let mut out: Vec<&Path> = before
        .iter()
        .filter(|entry| !after.contains(entry))
        .chain(after.iter().filter(|entry| !before.contains(entry)))
        .map(|(path, _, _)| path.as_path())
        .collect();
    out.sort();
    out.dedup();
    out
}

#[test]
fn an_open_refused_for_a_live_writers_lease_changes_no_byte_and_no_modification_time() {
    let dir = tempfile::tempdir().unwrap();
    // A TTL far beyond the test, so the live writer's refresher writes nothing meanwhile.
    let options = || Options::default().lease_ttl(Duration::from_secs(600));
    let writer = Engine::open(dir.path(), options()).unwrap();
    writer.append_durable(1, b"held".to_vec()).unwrap();
    let before = snapshot(dir.path());
    for _ in 0..2 {
        match Engine::open(dir.path(), options()) {
            Err(OpenError::Lease(LeaseError::Held { .. })) => {}
            other => panic!("expected the lease to be held, got {other:?}"),
        }
        assert_eq!(changed(&before, &snapshot(dir.path())), Vec::<&Path>::new());
    }
    writer.close().unwrap();
}
