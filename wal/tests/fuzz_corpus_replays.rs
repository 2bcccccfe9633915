//! What could go wrong: an input the fuzzer once found (or kept as interesting) breaks
//! again. Replays every checked-in corpus file through the same functions the fuzz
//! targets call, on stable Rust.
use std::path::Path;

fn replay(target: &str, run: fn(&[u8])) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        run(&bytes);
        n += 1;
    }
    n
}

#[test]
fn every_frame_decode_corpus_input_replays_without_a_finding() {
    assert!(replay("frame_decode", tidelog_wal::fuzzing::frame_decode) > 0);
}

#[test]
fn every_segment_recovery_corpus_input_replays_without_a_finding() {
    assert!(replay("segment_recovery", tidelog_wal::fuzzing::segment_recovery) > 0);
}
