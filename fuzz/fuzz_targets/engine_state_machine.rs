//! Fuzzes the engine as a state machine on the simulated disk: appends, batches, syncs,
//! reopens and power losses from the input bytes, checked against a model
//! (`tidelog_tests::state_machine`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    tidelog_tests::state_machine::run(data);
});
