//! Fuzzes the frame and segment-header decoders with arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    tidelog_wal::fuzzing::frame_decode(data);
});
