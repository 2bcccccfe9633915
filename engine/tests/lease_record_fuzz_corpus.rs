//! Replays the checked-in corpus of the `lease_record` fuzz target on stable Rust.
//!
//! What could go wrong: an input the fuzzer once found (or a hand-written edge case)
//! panics the decoder again, or a record that must stay readable (a legacy one without
//! `term` or `format`) stops decoding. Files named `valid-*` must decode; files named
//! `invalid-*` must be refused; every file goes through the same check as the fuzz target.

use std::path::{Path, PathBuf};

use tidelog::lease::{fuzzing, WriterLease};

fn corpus() -> Vec<(String, Vec<u8>)> {
    let dir: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/lease_record");
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut files: Vec<(String, Vec<u8>)> = entries
        .map(|entry| {
            let path = entry.expect("corpus entry").path();
            let name = path
                .file_name()
                .expect("file name")
                .to_string_lossy()
                .into_owned();
            (name, std::fs::read(&path).expect("read corpus file"))
        })
        .collect();
    files.sort();
    files
}

#[test]
fn every_lease_record_corpus_input_replays_without_a_finding() {
    let files = corpus();
    assert!(
        files.len() >= 10,
        "the corpus has only {} files",
        files.len()
    );
    for (name, bytes) in &files {
        eprintln!("replaying {name}");
        fuzzing::lease_record(bytes);
    }
}

#[test]
fn the_named_corpus_cases_decode_or_are_refused_as_their_names_say() {
    for (name, bytes) in corpus() {
        let decoded = WriterLease::decode(&bytes);
        if name.starts_with("valid-") {
            assert!(decoded.is_ok(), "{name}: {decoded:?}");
        } else if name.starts_with("invalid-") {
            assert!(decoded.is_err(), "{name}: {decoded:?}");
        }
    }
}
