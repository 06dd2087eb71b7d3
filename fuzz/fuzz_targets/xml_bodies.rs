#![no_main]
//! See `wharf::fuzzing::xml_bodies` for what this target checks besides "no panic".

libfuzzer_sys::fuzz_target!(|data: &[u8]| wharf::fuzzing::xml_bodies(data));
