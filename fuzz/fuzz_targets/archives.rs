#![no_main]
//! See `wharf_backends::archive::fuzzing::fuzz_archive` for what this target checks besides
//! "no panic".

libfuzzer_sys::fuzz_target!(|data: &[u8]| wharf_backends::archive::fuzzing::fuzz_archive(data));
