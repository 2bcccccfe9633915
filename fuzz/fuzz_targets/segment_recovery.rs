//! Fuzzes segment scanning and recovery: a small log on a simulated disk, damaged as the
//! input says, recovered in every mode.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    tidelog_wal::fuzzing::segment_recovery(data);
});
