#![no_main]
//! See `wharf::fuzzing::headers` for what this target checks besides "no panic".

libfuzzer_sys::fuzz_target!(|data: &[u8]| wharf::fuzzing::headers(data));
