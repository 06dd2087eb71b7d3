//! Reading a file out: small ones whole in the call that opened them, large ones streamed.

use std::fs::File;
use std::io;

use bytes::Bytes;

use crate::ByteStream;

/// Files (or ranges) up to this size are read in the blocking call that opens them: one
/// blocking-pool hop per small GET.
pub(super) const SMALL_READ: u64 = 256 * 1024;

/// Chunk size of larger reads: big enough that per-chunk hand-offs don't matter.
const STREAM_CHUNK: u64 = 1 << 20;

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
            Opened::Large { file, offset, len } => stream(file, offset, len),
        }
    }
}

/// Exactly `want` bytes at `offset` (pread: the file position is never shared state).
fn read_at(file: &File, offset: u64, want: usize) -> io::Result<Vec<u8>> {
    let buf =
        crate::chunk::fill(want, |buf, done| rustix::io::pread(file, buf, offset + done).map(|(read, _)| read.len()))?;
    if buf.len() < want {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "file shrank while being read"));
    }
    Ok(buf)
}

/// Streams from one blocking task that reads straight into fresh chunks, never more than
/// `len` bytes even if the file grows meanwhile. The channel's small bound keeps memory
/// per download to a few chunks, and a departed client ends the task at its next send.
fn stream(file: File, offset: u64, len: u64) -> ByteStream {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<io::Result<Bytes>>(2);
    tokio::task::spawn_blocking(move || {
        let mut done = 0;
        while done < len {
            let want = (len - done).min(STREAM_CHUNK) as usize;
            let item = read_at(&file, offset + done, want).map(Bytes::from);
            let failed = item.is_err();
            if tx.blocking_send(item).is_err() || failed {
                return;
            }
            done += want as u64;
        }
    });
    Box::pin(futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)))
}
