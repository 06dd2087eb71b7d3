#![no_main]
//! See `wharf::fuzzing::paths` for what this target checks besides "no panic".

libfuzzer_sys::fuzz_target!(|data: &[u8]| wharf::fuzzing::paths(data));
