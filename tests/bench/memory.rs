//! Shared by the benchmarks: warming the memory a large upload's page cache will use.

use std::io::Write;
use std::path::Path;

/// Writes and deletes `size` bytes in `dir`, before a large upload. On this VM the first
/// write into memory the guest has not touched for a while runs several times slower (the
/// host backs it only then): `dd` of 1 GiB took 2.5 s of system time once and 0.25 s on
/// each run after it. Whichever server happened to store first paid for that; this way
/// each finds the page cache's memory as the previous run left it.
pub fn warm(dir: &Path, size: u64) {
    let path = dir.join("warm-up.bin");
    let chunk = vec![0x5a_u8; 1 << 20];
    let mut file = std::fs::File::create(&path).expect("create warm-up file");
    for _ in 0..size.div_ceil(chunk.len() as u64) {
        file.write_all(&chunk).expect("write warm-up file");
    }
    drop(file);
    std::fs::remove_file(&path).expect("remove warm-up file");
}
