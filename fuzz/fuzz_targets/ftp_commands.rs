#![no_main]
//! See `wharf::fuzzing::ftp_commands` for what this target checks besides "no panic".

libfuzzer_sys::fuzz_target!(|data: &[u8]| wharf::fuzzing::ftp_commands(data));
