//! Reading files into fresh buffers, for the streams of large reads.

use std::io;
use std::mem::MaybeUninit;

/// Up to `want` bytes in a fresh vector, read straight into its spare capacity by `read`
/// (given the room left and the bytes read so far; it returns how many it read, 0 at the
/// end of the file), in as few calls as the kernel allows. Zeroing each chunk first would
/// pass over every byte of a download once more; `read_to_end` would start with small
/// reads and double them (seven per MiB), even into reserved capacity.
pub(crate) fn fill(
    want: usize,
    mut read: impl FnMut(&mut [MaybeUninit<u8>], u64) -> rustix::io::Result<usize>,
) -> io::Result<Vec<u8>> {
    let mut chunk: Vec<u8> = Vec::with_capacity(want);
    while chunk.len() < want {
        let room = want - chunk.len();
        let done = chunk.len() as u64;
        let n = match read(&mut chunk.spare_capacity_mut()[..room], done) {
            Ok(n) => n.min(room),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        };
        if n == 0 {
            break;
        }
        // SAFETY: `read` initialized the first `n` bytes of the spare capacity it was given.
        unsafe { chunk.set_len(chunk.len() + n) };
    }
    Ok(chunk)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_chunk_holds_what_the_file_has_up_to_what_was_wanted() {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(b"0123456789").unwrap();
        let at = |offset: u64| {
            let file = &file;
            move |buf: &mut [MaybeUninit<u8>], done: u64| {
                rustix::io::pread(file, buf, offset + done).map(|(f, _)| f.len())
            }
        };
        assert_eq!(fill(4, at(2)).unwrap(), b"2345");
        assert_eq!(fill(100, at(6)).unwrap(), b"6789", "cut at the end of the file");
        assert!(fill(4, at(10)).unwrap().is_empty());
    }
}
