//! Replays the checked-in corpus of the `engine_state_machine` fuzz target on stable Rust,
//! plus a few hand-written operation sequences.
//!
//! What could go wrong: an input the fuzzer found, or one it kept for covering a path
//! (a power loss mid-rotation, a crash armed inside a batch, a reopen after a torn tail),
//! makes the engine lose a durable record, return one never appended, cut a batch or
//! leave a gap again.

use std::path::Path;
use tidelog_tests::state_machine::run;

#[test]
fn every_engine_state_machine_corpus_input_replays_against_the_model() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/engine_state_machine");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("corpus entry").path();
        let bytes = std::fs::read(&path).expect("read corpus file");
        eprintln!("replaying {}", path.display());
        run(&bytes);
        n += 1;
    }
    assert!(n >= 10, "the corpus has only {n} inputs");
}

#[test]
fn durable_appends_batches_then_a_power_loss_armed_mid_workload_keep_every_durable_record() {
    // policy 0 (sync every group); durable append; batch of 3; arm a crash 5 ops ahead;
    // appends until it fires; reboot with damage seed 7; durable append; clean reopen.
    let ops = [
        0, 2, 1, 40, 3, 2, 0, 10, 1, 20, 2, 30, 6, 4, 0, 2, 90, 1, 1, 80, 2, 3, 70, 7, 7, 2, 3, 50,
        5,
    ];
    run(&ops);
}

#[test]
fn appends_under_the_never_policy_then_a_power_loss_may_lose_only_unsynced_records() {
    let ops = [
        1, 0, 1, 100, 0, 2, 100, 4, 0, 3, 200, 0, 0, 200, 7, 3, 2, 1, 10, 5,
    ];
    run(&ops);
}
