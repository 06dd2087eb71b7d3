//! Large reads: a span of an open file, streamed in chunks from the blocking pool, or
//! handed whole to a sender that can move the file's pages to a socket without copying.

use std::any::Any;
use std::fs::File;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::Stream;
use tokio::sync::mpsc;

use crate::ByteStream;

/// Chunk size of streamed reads: big enough that per-chunk hand-offs don't matter.
const STREAM_CHUNK: u64 = 1 << 20;

/// `len` bytes of `file` from `offset`.
#[derive(Clone, Debug)]
pub struct FileSpan {
    pub file: Arc<File>,
    pub offset: u64,
    pub len: u64,
}

/// What every [`ByteStream`] is: a stream of chunks that can be asked, before it is first
/// polled, whether it is a [`FileStream`] (see [`file_span`]).
pub trait ByteSource: Stream<Item = io::Result<Bytes>> + Send {
    fn as_any(&self) -> &dyn Any;
}

impl<S: Stream<Item = io::Result<Bytes>> + Send + 'static> ByteSource for S {
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// The file span `stream` would read, if it reads one and has not started: the caller may
/// then send the span itself and drop the stream. Streams built any other way (a small
/// body, an object store, a stream wrapped by another) answer `None` and are read as usual.
pub fn file_span(stream: &ByteStream) -> Option<FileSpan> {
    let file = stream.as_ref().get_ref().as_any().downcast_ref::<FileStream>()?;
    file.chunks.is_none().then(|| file.span.clone())
}

/// A span read lazily: the reading task starts at the first poll, so a stream whose span
/// was taken by [`file_span`] never reads.
pub(crate) struct FileStream {
    span: FileSpan,
    chunks: Option<mpsc::Receiver<io::Result<Bytes>>>,
}

impl FileStream {
    /// Never more than `len` bytes, even if the file grows meanwhile; a file that shrank is
    /// an error rather than a short body, since the caller has promised that many bytes.
    pub(crate) fn stream(file: File, offset: u64, len: u64) -> ByteStream {
        FileSpan { file: Arc::new(file), offset, len }.into_stream()
    }
}

impl FileSpan {
    /// The span's bytes as a [`FileStream`], for a sender that took the span and then
    /// finds it must read part of it after all.
    pub fn into_stream(self) -> ByteStream {
        Box::pin(FileStream { span: self, chunks: None })
    }
}

impl Stream for FileStream {
    type Item = io::Result<Bytes>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let span = &this.span;
        this.chunks.get_or_insert_with(|| read_in_chunks(span.clone())).poll_recv(cx)
    }
}

/// One blocking task reading straight into fresh chunks: tokio's `File` would hop to the
/// pool for every read and copy each buffer once more. The channel's small bound keeps
/// memory per download to a few chunks, and a departed client ends the task at its next send.
fn read_in_chunks(span: FileSpan) -> mpsc::Receiver<io::Result<Bytes>> {
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(2);
    tokio::task::spawn_blocking(move || {
        let mut done = 0;
        while done < span.len {
            let want = (span.len - done).min(STREAM_CHUNK) as usize;
            let item = read_at(&span.file, span.offset + done, want).map(Bytes::from);
            let failed = item.is_err();
            if tx.blocking_send(item).is_err() || failed {
                return;
            }
            done += want as u64;
        }
    });
    rx
}

/// Exactly `want` bytes at `offset` (pread: the file position is never shared state).
pub(crate) fn read_at(file: &File, offset: u64, want: usize) -> io::Result<Vec<u8>> {
    let buf =
        crate::chunk::fill(want, |buf, done| rustix::io::pread(file, buf, offset + done).map(|(read, _)| read.len()))?;
    if buf.len() < want {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "file shrank while being read"));
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use futures_util::TryStreamExt;

    use super::*;

    fn file_of(data: &[u8]) -> File {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(data).unwrap();
        file
    }

    #[tokio::test]
    async fn a_file_stream_reads_its_span_in_chunks() {
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let stream = FileStream::stream(file_of(&data), 100, 2_500_000);
        let chunks: Vec<Bytes> = stream.try_collect().await.unwrap();
        assert_eq!(chunks.len(), 3);
        assert_eq!(chunks.concat(), &data[100..2_500_100]);
    }

    #[tokio::test]
    async fn a_file_that_shrank_is_an_error_not_a_short_body() {
        let stream = FileStream::stream(file_of(&[7; 1000]), 0, 2000);
        let err = stream.try_collect::<Vec<Bytes>>().await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[tokio::test]
    async fn only_an_unstarted_file_stream_gives_its_span() {
        let mut stream = FileStream::stream(file_of(&[1; 10]), 2, 5);
        let span = file_span(&stream).unwrap();
        assert_eq!((span.offset, span.len), (2, 5));
        let other: ByteStream = Box::pin(futures_util::stream::once(async { Ok(Bytes::from_static(b"x")) }));
        assert!(file_span(&other).is_none());
        use futures_util::StreamExt;
        assert_eq!(stream.next().await.unwrap().unwrap(), &[1; 5][..]);
        assert!(file_span(&stream).is_none(), "a started stream has given bytes already");
    }
}
