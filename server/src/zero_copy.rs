//! Large file bodies sent from the page cache by `sendfile`, never copied through the
//! server's memory.
//!
//! hyper writes a body only from buffers it is given. Reading a gigabyte into buffers and
//! writing them out again costs two copies per byte: about three times the CPU of nginx,
//! which uses `sendfile`. So a GET of a large file on a plain-TCP HTTP/1 connection gives
//! hyper *placeholder* frames instead: slices of one private static buffer
//! ([`PLACEHOLDER`]), the body's file span queued on the connection when hyper polls the
//! first. The connection's stream ([`ZeroCopyStream`]) knows placeholder bytes by their address
//! when hyper writes them, and sends the span's bytes in their place.
//!
//! A slow disk stalls no worker: `sendfile` runs on the worker only for bytes `cachestat`
//! finds in the page cache. Once a span meets bytes that are not, the rest of it is read on
//! the blocking pool, a chunk ahead, and written from those buffers as any streamed body:
//! `cachestat` also counts pages whose read is still under way (our own reads start
//! readahead), and `sendfile` would wait for them. Two gaps remain: a page evicted in the
//! moment between the check and the send, and readahead started by another reader of the
//! same file, make the worker wait for that read. Without `cachestat` (kernels before 6.5,
//! seccomp filters, files the process neither owns nor may write) everything takes the
//! pool. A pump thread splicing into a pipe kept the disk off the worker entirely, but cost
//! more CPU and throughput than the pipe's wake-ups were worth.

//! Why the right bytes go out:
//! - HTTP/1 writes one message at a time and a body's frames in the order they were polled,
//!   so placeholders reach the stream in the order their spans were queued. Each body's
//!   frames start at its own offset in the buffer (its tag), and the stream checks that every
//!   placeholder slice starts exactly where the next unsent byte of the head span lies;
//!   anything else, or plain bytes in the middle of a span, fails the connection.
//! - hyper keeps our `Bytes` as they are rather than copying them: it queues buffers when
//!   the stream takes vectored writes, and [`ZeroCopyStream`] always does. (hyper's
//!   `writev(false)` or `pipeline_flush(true)` would make it copy them: `http_server.rs`
//!   must set neither, and its tests send such a body through the real builder.)
//! - Only hyper reads these bodies: compression leaves file contents alone (`dav::Markup`)
//!   and the edge layer counts frames without reading them.
//! - Never under TLS (the bytes must be encrypted) or HTTP/2 (frames interleave): those
//!   connections carry no [`ZeroCopy`] handle, and GET streams as before.

use std::cell::UnsafeCell;
use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, IoSlice};
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};

use axum::body::Body;
use bytes::{Buf, Bytes};
use futures_util::StreamExt;
use http_body::{Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;
use wharf_backends::{ByteStream, FileSpan};

/// The largest placeholder frame: `sendfile` is asked for up to this much at once.
const FRAME: usize = 4 << 20;
/// Distinct starting offsets of frames in the placeholder buffer.
const TAGS: usize = 4096;

/// Never read or written: only its addresses mean something (see the module documentation).
/// In a cell so that it lies in `.bss`, not 4 MiB of zeros in the binary.
static PLACEHOLDER: Placeholder = Placeholder(UnsafeCell::new([0; FRAME + TAGS]));

struct Placeholder(UnsafeCell<[u8; FRAME + TAGS]>);

// SAFETY: nothing ever writes through the cell; it is shared as plain immutable bytes.
unsafe impl Sync for Placeholder {}

fn placeholder() -> &'static [u8; FRAME + TAGS] {
    // SAFETY: never written (see above), so a shared reference is always valid.
    unsafe { &*PLACEHOLDER.0.get() }
}

fn is_placeholder(slice: &[u8]) -> bool {
    placeholder().as_ptr_range().contains(&slice.as_ptr())
}

/// A plain-TCP HTTP/1 connection's queue of file spans standing behind placeholder frames;
/// handlers find it among the request's extensions.
#[derive(Clone, Default)]
pub struct ZeroCopy(Arc<Mutex<Queue>>);

#[derive(Default)]
struct Queue {
    spans: VecDeque<Queued>,
    bodies: usize,
}

struct Queued {
    span: FileSpan,
    tag: usize,
}

impl ZeroCopy {
    /// A response body of the span's bytes, sent by this connection's [`ZeroCopyStream`] stream.
    pub fn body(&self, span: FileSpan) -> Body {
        Body::new(SpanBody { span, queue: self.clone(), tag: None, polled: 0 })
    }

    /// Queues a span; returns its tag.
    fn push(&self, span: FileSpan) -> usize {
        let mut queue = self.lock();
        let tag = queue.bodies % TAGS;
        queue.bodies += 1;
        queue.spans.push_back(Queued { span, tag });
        tag
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        // The queue's state stays consistent at every step, so a poisoned lock is still usable.
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The placeholder frames of one span, up to [`FRAME`] bytes each. The span is queued
/// when hyper polls the first frame, which it does after the response head is buffered.
struct SpanBody {
    span: FileSpan,
    queue: ZeroCopy,
    /// The span's tag, once queued.
    tag: Option<usize>,
    /// Bytes polled so far.
    polled: u64,
}

impl http_body::Body for SpanBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<io::Result<Frame<Bytes>>>> {
        let this = self.get_mut();
        let left = this.span.len - this.polled;
        if left == 0 {
            return Poll::Ready(None);
        }
        let tag = *this.tag.get_or_insert_with(|| this.queue.push(this.span.clone()));
        let n = left.min(FRAME as u64) as usize;
        this.polled += n as u64;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(&placeholder()[tag..tag + n])))))
    }

    fn is_end_stream(&self) -> bool {
        self.polled == self.span.len
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.span.len - self.polled)
    }
}

/// A plain TCP connection whose writes of placeholder bytes send file spans instead.
pub struct ZeroCopyStream {
    inner: TcpStream,
    queue: ZeroCopy,
    /// Bytes of the head span already sent.
    sent: u64,
    /// The rest of the head span, read on the blocking pool as any streamed body: some of
    /// it was not in the page cache, so readahead may be under way (`cachestat` counts
    /// pages still being read, and `sendfile` would wait for them), or this file can't be
    /// sent by `sendfile`.
    rest: Option<ByteStream>,
    /// Bytes of the head span read from `rest`, next to send.
    read: Bytes,
}

impl ZeroCopyStream {
    pub fn new(inner: TcpStream) -> (ZeroCopyStream, ZeroCopy) {
        let queue = ZeroCopy::default();
        (ZeroCopyStream { inner, queue: queue.clone(), sent: 0, rest: None, read: Bytes::new() }, queue)
    }

    /// Sends up to `slice.len()` bytes of the head span, which `slice` stands for.
    fn poll_span(&mut self, cx: &mut Context<'_>, slice: &[u8]) -> Poll<io::Result<usize>> {
        let span = self.check(slice)?;
        let want = slice.len();
        let sent = loop {
            if !self.read.is_empty() {
                let n = want.min(self.read.len());
                let sent = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.read[..n]))?;
                self.read.advance(sent);
                break sent;
            }
            if let Some(rest) = &mut self.rest {
                // A stream that ends early has found the file shorter than the span.
                self.read = ready!(rest.poll_next_unpin(cx)).ok_or_else(shrank)??;
                continue;
            }
            if cached(&span.file, span.offset + self.sent, want) {
                match ready!(self.poll_sendfile(cx, &span, want)) {
                    Err(e) if unsendable(&e) => {}
                    sent => break sent?,
                }
            }
            let rest = FileSpan { file: span.file.clone(), offset: span.offset + self.sent, len: span.len - self.sent };
            self.rest = Some(rest.into_stream());
        };
        self.sent += sent as u64;
        if self.sent == span.len {
            self.queue.lock().spans.pop_front();
            (self.sent, self.rest) = (0, None);
        }
        Poll::Ready(Ok(sent))
    }

    /// That `slice` starts at the head span's next unsent byte and does not run past its
    /// frame. Returns the head span.
    fn check(&self, slice: &[u8]) -> io::Result<FileSpan> {
        let queue = self.queue.lock();
        let head = queue.spans.front().ok_or_else(|| out_of_step("placeholder bytes without a file span"))?;
        let in_frame = (self.sent % FRAME as u64) as usize;
        let frame_left = (FRAME - in_frame) as u64;
        let at = placeholder()[head.tag + in_frame..].as_ptr();
        if slice.as_ptr() != at || slice.len() as u64 > frame_left.min(head.span.len - self.sent) {
            return Err(out_of_step("placeholder bytes out of step with their file span"));
        }
        Ok(head.span.clone())
    }

    /// Sends up to `n` bytes of `span` from its next unsent byte, without blocking on the
    /// socket.
    fn poll_sendfile(&mut self, cx: &mut Context<'_>, span: &FileSpan, n: usize) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.inner.poll_write_ready(cx))?;
            let mut offset = span.offset + self.sent;
            // `try_io` clears the readiness when the socket is full, so the next poll waits.
            let sent = self.inner.try_io(Interest::WRITABLE, || {
                rustix::fs::sendfile(&self.inner, &*span.file, Some(&mut offset), n).map_err(Into::into)
            });
            match sent {
                Ok(0) => return Poll::Ready(Err(shrank())),
                Ok(sent) => {
                    crate::ops::metrics::global().sent_from_page_cache(sent as u64);
                    return Poll::Ready(Ok(sent));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncWrite for ZeroCopyStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[IoSlice::new(buf)])
    }

    /// Plain bytes up to the first placeholder are written as they are; a placeholder slice
    /// first in line is sent from its file span.
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let Some(first) = bufs.iter().position(|b| !b.is_empty()) else { return Poll::Ready(Ok(0)) };
        if is_placeholder(&bufs[first]) {
            return this.poll_span(cx, &bufs[first]);
        }
        if this.sent > 0 {
            return Poll::Ready(Err(out_of_step("plain bytes inside a file span")));
        }
        let end = bufs[first..].iter().position(|b| is_placeholder(b)).map_or(bufs.len(), |n| first + n);
        Pin::new(&mut this.inner).poll_write_vectored(cx, &bufs[first..end])
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

impl AsyncRead for ZeroCopyStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

/// Whether every page of `len` bytes at `offset` is in the page cache, by `cachestat`
/// (Linux 6.5). Any failure answers no: an older kernel (then never asked again), a
/// seccomp filter, or a file the process may neither write nor owns.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
fn cached(file: &File, offset: u64, len: usize) -> bool {
    use std::sync::atomic::{AtomicBool, Ordering};
    #[repr(C)]
    struct Range {
        offset: u64,
        len: u64,
    }
    #[repr(C)]
    #[derive(Default)]
    struct Stat {
        cached: u64,
        dirty: u64,
        writeback: u64,
        evicted: u64,
        recently_evicted: u64,
    }
    const SYS_CACHESTAT: libc::c_long = 451;
    static MISSING: AtomicBool = AtomicBool::new(false);
    if len == 0 {
        return true;
    }
    if MISSING.load(Ordering::Relaxed) {
        return false;
    }
    let range = Range { offset, len: len as u64 };
    let mut stat = Stat::default();
    // SAFETY: the descriptor is open for the call, `range` is read and `stat` written by the
    // kernel, both laid out as its `struct cachestat_range` and `struct cachestat`.
    let done = unsafe { libc::syscall(SYS_CACHESTAT, file.as_raw_fd(), &range, &mut stat, 0u32) };
    if done != 0 {
        if io::Error::last_os_error().raw_os_error() == Some(libc::ENOSYS) {
            MISSING.store(true, Ordering::Relaxed);
        }
        return false;
    }
    let page = rustix::param::page_size() as u64;
    let pages = (offset + len as u64 - 1) / page - offset / page + 1;
    stat.cached >= pages
}

/// Elsewhere the system call's number differs; the pool serves every span.
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn cached(_: &File, _: u64, _: usize) -> bool {
    false
}

/// `sendfile` refusing this file (a file system without it): the pool serves it instead.
fn unsendable(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ENOSYS | libc::EOPNOTSUPP))
}

fn out_of_step(what: &str) -> io::Error {
    io::Error::other(format!("zero-copy send: {what}"))
}

fn shrank() -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, "file shrank while being sent")
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use http_body::Body as _;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    /// A connection's two ends: the server's, zero-copy, and the client's.
    async fn connection() -> (ZeroCopyStream, ZeroCopy, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let (stream, queue) = ZeroCopyStream::new(server);
        (stream, queue, client)
    }

    /// A file of `len` bytes that differ from their neighbours, and the bytes.
    fn pattern_file(len: usize) -> (Arc<File>, Vec<u8>) {
        let data: Vec<u8> = (0..len as u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8).collect();
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(&data).unwrap();
        (Arc::new(file), data)
    }

    async fn next_frame(body: &mut Body) -> Option<Result<Frame<Bytes>, axum::Error>> {
        std::future::poll_fn(|cx| Pin::new(&mut *body).poll_frame(cx)).await
    }

    /// Writes `head`, then the body's frames, in pieces as hyper may, and reads what arrives.
    async fn send(stream: &mut ZeroCopyStream, client: &mut TcpStream, head: &[u8], body: Body) -> io::Result<Vec<u8>> {
        let reader = async {
            let mut got = Vec::new();
            client.read_to_end(&mut got).await.map(|_| got)
        };
        let writer = async {
            let written = async {
                stream.write_all(head).await?;
                let mut body = body;
                while let Some(frame) = next_frame(&mut body).await {
                    let data = frame.map_err(io::Error::other)?.into_data().unwrap_or_default();
                    let (first, rest) = data.split_at(data.len().min(1000));
                    stream.write_all(first).await?;
                    stream.write_all(rest).await?;
                }
                Ok(())
            };
            let written: io::Result<()> = written.await;
            // Closed either way, as hyper closes a connection whose write failed.
            stream.shutdown().await?;
            written
        };
        let (got, written) = tokio::join!(reader, writer);
        written.map(|()| got.unwrap())
    }

    #[tokio::test]
    async fn a_span_arrives_exact_after_its_head() {
        let (mut stream, queue, mut client) = connection().await;
        let (file, data) = pattern_file(FRAME * 2 + 12_345);
        let span = FileSpan { file, offset: 777, len: (FRAME + 5000) as u64 };
        let got = send(&mut stream, &mut client, b"HEAD\r\n\r\n", queue.body(span)).await.unwrap();
        assert_eq!(&got[..8], b"HEAD\r\n\r\n");
        assert!(got[8..] == data[777..777 + FRAME + 5000], "{} bytes arrived", got.len());
        assert!(queue.lock().spans.is_empty());
    }

    #[tokio::test]
    async fn bytes_not_in_the_page_cache_are_read_on_the_pool_and_arrive_exact() {
        let (file, data) = pattern_file(3 << 20);
        file.sync_all().unwrap();
        rustix::fs::fadvise(&*file, 0, None, rustix::fs::Advice::DontNeed).unwrap();
        if cached(&file, 0, 4096) || !cached_known() {
            eprintln!("skipped: no cachestat here, or the pages stayed cached");
            return;
        }
        let (mut stream, queue, mut client) = connection().await;
        let span = FileSpan { file: file.clone(), offset: 0, len: data.len() as u64 };
        let got = send(&mut stream, &mut client, b"", queue.body(span)).await.unwrap();
        assert!(got == data);
    }

    fn read_at(file: &File, offset: u64, n: usize) -> io::Result<Vec<u8>> {
        use std::os::unix::fs::FileExt;
        let mut buf = vec![0; n];
        file.read_exact_at(&mut buf, offset).map(|()| buf)
    }

    /// Whether this kernel answers `cachestat` (a file just read is cached).
    fn cached_known() -> bool {
        let (file, data) = pattern_file(8192);
        let _ = read_at(&file, 0, data.len());
        cached(&file, 0, data.len())
    }

    #[test]
    fn cachestat_tells_pages_read_from_pages_dropped() {
        if !cached_known() {
            eprintln!("skipped: this kernel has no cachestat");
            return;
        }
        let (file, data) = pattern_file(1 << 20);
        file.sync_all().unwrap();
        rustix::fs::fadvise(&*file, 0, None, rustix::fs::Advice::DontNeed).unwrap();
        if cached(&file, 0, 4096) {
            eprintln!("skipped: dropping the pages did not (tmpfs?)");
            return;
        }
        assert!(!cached(&file, 0, data.len()));
        // No readahead, so that exactly the pages read are cached.
        rustix::fs::fadvise(&*file, 0, None, rustix::fs::Advice::Random).unwrap();
        assert_eq!(read_at(&file, 4096, 8192).unwrap(), &data[4096..12288]);
        assert!(cached(&file, 4096, 8192) && cached(&file, 5000, 7000));
        assert!(!cached(&file, 4096, 8193), "one more byte is on a page not read");
        assert!(!cached(&file, 900_000, 4096));
    }

    #[tokio::test]
    async fn a_file_shorter_than_its_span_fails_the_write_instead_of_sending_less() {
        let (mut stream, queue, mut client) = connection().await;
        let (file, _) = pattern_file(10_000);
        let span = FileSpan { file, offset: 0, len: 20_000 };
        let err = send(&mut stream, &mut client, b"", queue.body(span)).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[tokio::test]
    async fn placeholder_bytes_without_a_span_fail_the_write() {
        let (mut stream, _queue, _client) = connection().await;
        let err = stream.write_all(&placeholder()[..100]).await.unwrap_err();
        assert!(err.to_string().contains("without a file span"), "{err}");
    }

    #[tokio::test]
    async fn placeholder_bytes_out_of_their_order_fail_the_write() {
        let (mut stream, queue, _client) = connection().await;
        let (file, _) = pattern_file(10_000);
        let mut body = queue.body(FileSpan { file, offset: 0, len: 10_000 });
        let frame = next_frame(&mut body).await.unwrap().unwrap().into_data().unwrap();
        let err = stream.write_all(&frame[10..]).await.unwrap_err();
        assert!(err.to_string().contains("out of step"), "skipped bytes: {err}");
        stream.write_all(&frame[..10]).await.unwrap();
        let err = stream.write_all(b"plain").await.unwrap_err();
        assert!(err.to_string().contains("inside a file span"), "{err}");
    }
}
