//! Opening what is not a usable database. What could go wrong: tidelog writing into a
//! foreign directory, a newer format, or a database another writer has open.

use std::fs;
use tidelog::{Engine, OpenError, Options};

fn listing(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let bytes = if e.path().is_file() {
                fs::read(e.path()).unwrap()
            } else {
                Vec::new()
            };
            (e.file_name().to_string_lossy().into_owned(), bytes)
        })
        .collect();
    entries.sort();
    entries
}

#[test]
fn a_foreign_directory_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("notes.txt"), b"mine").unwrap();
    let before = listing(dir.path());
    let err = Engine::open(dir.path(), Options::default()).unwrap_err();
    assert!(matches!(err, OpenError::NotADatabase { .. }), "{err}");
    assert!(err.to_string().contains("not a tidelog database"), "{err}");
    assert_eq!(listing(dir.path()), before);
}

#[test]
fn a_database_from_a_newer_format_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    Engine::open(dir.path(), Options::default())
        .unwrap()
        .close()
        .unwrap();
    fs::write(
        dir.path().join("TIDELOG"),
        b"tidelog database\nformat_version = 99\n",
    )
    .unwrap();
    let before = listing(dir.path());
    let err = Engine::open(dir.path(), Options::default()).unwrap_err();
    assert!(
        matches!(err, OpenError::NewerFormat { found: 99, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("upgrade"), "{err}");
    assert_eq!(listing(dir.path()), before);
}

#[test]
fn a_second_writer_on_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let first = Engine::open(dir.path(), Options::default()).unwrap();
    let err = Engine::open(dir.path(), Options::default()).unwrap_err();
    assert!(
        matches!(
            err,
            OpenError::Lease(tidelog::lease::LeaseError::Held { .. })
        ),
        "{err}"
    );
    let holder = first.writer_lease().unwrap().holder_id;
    assert!(
        err.to_string().contains(&holder),
        "{err} does not name {holder}"
    );
    first.close().unwrap();
    drop(first);
    Engine::open(dir.path(), Options::default()).unwrap();
}

#[test]
fn impossible_options_are_refused_with_the_allowed_range() {
    let dir = tempfile::tempdir().unwrap();
    let err = Engine::open(dir.path(), Options::default().channel_capacity(0)).unwrap_err();
    assert!(matches!(err, OpenError::InvalidOptions { .. }), "{err}");
    let err = Engine::open(dir.path(), Options::default().segment_size(1 << 20)).unwrap_err();
    assert!(err.to_string().contains("segment_size"), "{err}");
}
