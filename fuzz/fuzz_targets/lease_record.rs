//! Fuzzes the writer lease record decoder with arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    tidelog::lease::fuzzing::lease_record(data);
});
