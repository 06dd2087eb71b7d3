#![no_main]
//! See `wharf::fuzzing::if_header` for what this target checks besides "no panic".

libfuzzer_sys::fuzz_target!(|data: &[u8]| wharf::fuzzing::if_header(data));
