//! Reading a file out: small ones whole in the call that opened them, large ones as a
//! [`FileStream`].

use std::fs::File;
use std::io;

use bytes::Bytes;

use crate::span::{read_at, FileStream};
use crate::ByteStream;

/// Files (or ranges) up to this size are read in the blocking call that opens them: one
/// blocking-pool hop per small GET.
pub(super) const SMALL_READ: u64 = 256 * 1024;

pub(super) enum Opened {
    Small(Bytes),
    Large { file: File, offset: u64, len: u64 },
}

impl Opened {
    /// `len` bytes from `offset`, as sized by the `fstat` the caller answered with. A file
    /// that shrank meanwhile is an error rather than a short body: the caller has already
    /// promised that many bytes.
    pub(super) fn open(file: File, offset: u64, len: u64) -> io::Result<Opened> {
        if len > SMALL_READ {
            return Ok(Opened::Large { file, offset, len });
        }
        Ok(Opened::Small(read_at(&file, offset, len as usize)?.into()))
    }

    pub(super) fn into_stream(self) -> ByteStream {
        match self {
            Opened::Small(bytes) => Box::pin(futures_util::stream::once(async move { Ok(bytes) })),
            Opened::Large { file, offset, len } => FileStream::stream(file, offset, len),
        }
    }
}
