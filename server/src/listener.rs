//! Guarding connections so that a request-target with a `#fragment` never reaches a handler.
//!
//! The `http` crate silently drops a fragment when it parses a URI, so the request line
//! `DELETE /litmus/frag/#ment HTTP/1.1` would arrive as `DELETE /litmus/frag/` and delete the
//! collection. RFC 9112's origin-form has no fragment, so such a request must be answered 400.
//! hyper offers no hook between its request-line parser and the `http` URI, so [`GuardedStream`]
//! sits under hyper instead: it follows the HTTP/1.x message framing of the bytes hyper reads and
//! turns a `#` inside a request-target into a space. hyper's strict request-line parser (the
//! default; `allow_multiple_spaces_in_request_line_delimiters` must stay off) then rejects the
//! line as malformed, answers 400 and closes the connection — before any routing happens.
//!
//! The framing is followed only far enough to know which bytes are request lines: body bytes are
//! counted, never scanned or altered. Whenever the framer cannot be sure where it is (HTTP/2
//! prior knowledge, a malformed length, an oversized header section) it stops touching the
//! connection altogether, and hyper reports whatever is wrong itself. The server never switches
//! protocols (no handler answers 101 or tunnels CONNECT), so every byte it reads is HTTP/1.x or
//! HTTP/2.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A header section (or trailer section) larger than this is not followed; hyper's own limit
/// decides its fate. Keeps the framer's work per request bounded.
const MAX_HEAD: usize = 64 * 1024;
/// Longest header line kept for inspection. Only `Content-Length` and `Transfer-Encoding` are
/// ever parsed, and legitimate values of those are far shorter.
const LINE_CAP: usize = 1024;
/// The request line of the HTTP/2 connection preface; after it the bytes are binary frames.
const H2_PREFACE_LINE: &[u8] = b"PRI * HTTP/2.0";

/// A byte stream that rewrites `#` in HTTP/1.x request-targets to a space as the server reads
/// it (see the module documentation); everything else passes through unchanged. Generic so that
/// plain TCP and TLS streams are guarded the same way (`http_server` wraps both).
pub struct GuardedStream<S> {
    inner: S,
    framer: Framer,
}

impl<S> GuardedStream<S> {
    pub fn new(inner: S) -> Self {
        Self { inner, framer: Framer::new() }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for GuardedStream<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        this.framer.feed(&mut buf.filled_mut()[before..]);
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for GuardedStream<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// Where in the HTTP/1.x request stream the next byte belongs. `Idle` is between messages,
/// where empty lines are skipped (as hyper does); in `RequestLine`, `spaces` counts the SP bytes
/// so far, so 1 means "in the target"; `remaining` counts body or chunk bytes still to come;
/// `ChunkSize` holds the size so far, its number of hex digits, and whether the digits are over
/// (`;`, whitespace or CR seen); `ChunkEnd` is the CRLF after chunk data (`cr` once CR was
/// seen); `PassThrough` means the framing is no longer followed and bytes go through untouched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Idle,
    RequestLine { spaces: u8 },
    Headers,
    Body { remaining: u64 },
    ChunkSize { size: u64, digits: u8, ext: bool },
    ChunkData { remaining: u64 },
    ChunkEnd { cr: bool },
    Trailers,
    PassThrough,
}

/// Incremental HTTP/1.x request framing over the bytes the server reads. State is a few words
/// plus one header line of at most [`LINE_CAP`] bytes.
struct Framer {
    phase: Phase,
    /// The first bytes of the current request line (enough to recognise the HTTP/2 preface)
    /// and the line's full length so far.
    start: [u8; H2_PREFACE_LINE.len() + 1],
    start_len: usize,
    /// The current header or trailer line, truncated at [`LINE_CAP`] (`line_overflow` then).
    line: Vec<u8>,
    line_overflow: bool,
    /// Bytes of the current header or trailer section.
    head_len: usize,
    content_length: Option<u64>,
    /// `Some(chunked?)` once a `Transfer-Encoding` header was seen; the last one counts.
    transfer_chunked: Option<bool>,
}

impl Framer {
    fn new() -> Self {
        Self {
            phase: Phase::Idle,
            start: [0; H2_PREFACE_LINE.len() + 1],
            start_len: 0,
            line: Vec::new(),
            line_overflow: false,
            head_len: 0,
            content_length: None,
            transfer_chunked: None,
        }
    }

    /// Follows `buf` (freshly read bytes, in order) and rewrites request-target `#` in place.
    fn feed(&mut self, buf: &mut [u8]) {
        let mut at = 0;
        while at < buf.len() {
            let rest = &mut buf[at..];
            at += match self.phase {
                Phase::PassThrough => return,
                Phase::Idle => self.skip_empty_lines(rest),
                Phase::RequestLine { spaces } => self.request_line(rest, spaces),
                Phase::Headers | Phase::Trailers => self.head_line(rest),
                Phase::Body { remaining } => {
                    let (used, left) = skip(rest.len(), remaining);
                    self.phase = if left == 0 { Phase::Idle } else { Phase::Body { remaining: left } };
                    used
                }
                Phase::ChunkData { remaining } => {
                    let (used, left) = skip(rest.len(), remaining);
                    self.phase =
                        if left == 0 { Phase::ChunkEnd { cr: false } } else { Phase::ChunkData { remaining: left } };
                    used
                }
                Phase::ChunkSize { size, digits, ext } => self.chunk_size(rest, size, digits, ext),
                Phase::ChunkEnd { cr } => self.chunk_end(rest[0], cr),
            };
        }
    }

    /// Returns how many bytes were consumed; zero only when a request line starts right here.
    fn skip_empty_lines(&mut self, rest: &[u8]) -> usize {
        let skipped = rest.iter().position(|&b| b != b'\r' && b != b'\n');
        if skipped.is_some() {
            self.phase = Phase::RequestLine { spaces: 0 };
            self.start_len = 0;
            self.content_length = None;
            self.transfer_chunked = None;
        }
        skipped.unwrap_or(rest.len())
    }

    /// The one place bytes change: a `#` between the first and the second space. The
    /// line's end, its spaces and any `#` are found with `memchr` rather than byte by byte.
    fn request_line(&mut self, rest: &mut [u8], mut spaces: u8) -> usize {
        let (end, len) = (memchr::memchr(b'\n', rest), rest.len());
        let line = &mut rest[..end.unwrap_or(len)];
        // The line's first bytes as they came, before any change.
        let room = self.start.len().saturating_sub(self.start_len);
        let kept = line.len().min(room);
        if kept > 0 {
            self.start[self.start_len..self.start_len + kept].copy_from_slice(&line[..kept]);
        }
        self.start_len += line.len();
        // Past the second space, nothing in the line is a target's byte any more.
        let mut from = 0;
        while spaces < 2 {
            let Some(i) = memchr::memchr2(b' ', b'#', &line[from..]) else { break };
            let at = from + i;
            if line[at] == b' ' {
                spaces += 1;
            } else if spaces == 1 {
                line[at] = b' ';
            }
            from = at + 1;
        }
        match end {
            Some(i) => {
                self.end_request_line();
                i + 1
            }
            None => {
                self.phase = Phase::RequestLine { spaces };
                len
            }
        }
    }

    fn end_request_line(&mut self) {
        let line = &self.start[..self.start_len.min(self.start.len())];
        let is_preface = self.start_len <= self.start.len() && strip_cr(line) == H2_PREFACE_LINE;
        self.phase = if is_preface { Phase::PassThrough } else { Phase::Headers };
        self.head_len = 0;
    }

    /// Header and trailer lines: one `memchr` scan for LF. A line read whole is looked at
    /// where it is; one cut between reads is kept up to the cap until its end comes.
    fn head_line(&mut self, rest: &[u8]) -> usize {
        let end = memchr::memchr(b'\n', rest);
        let segment = &rest[..end.unwrap_or(rest.len())];
        let used = segment.len() + usize::from(end.is_some());
        self.head_len += used;
        if self.head_len > MAX_HEAD {
            self.phase = Phase::PassThrough;
            return used;
        }
        if end.is_some() && self.line.is_empty() && !self.line_overflow {
            self.line_overflow = segment.len() > LINE_CAP;
            self.end_head_line(segment);
            return used;
        }
        let room = LINE_CAP - self.line.len();
        self.line_overflow |= segment.len() > room;
        self.line.extend_from_slice(&segment[..segment.len().min(room)]);
        if end.is_some() {
            let mut line = std::mem::take(&mut self.line);
            self.end_head_line(&line);
            line.clear();
            self.line = line;
        }
        used
    }

    /// A whole header or trailer line (`line_overflow` if it was longer than the cap).
    fn end_head_line(&mut self, line: &[u8]) {
        let empty = !self.line_overflow && strip_cr(line).is_empty();
        match self.phase {
            Phase::Headers if empty => self.end_headers(),
            Phase::Headers => self.header(strip_cr(line)),
            Phase::Trailers if empty => self.phase = Phase::Idle,
            _ => {}
        }
        self.line_overflow = false;
    }

    /// Records the two headers that decide where the body ends (RFC 9112 §6.3, as hyper reads
    /// them); anything hyper would reject as ambiguous ends the framing.
    fn header(&mut self, line: &[u8]) {
        let Some(colon) = line.iter().position(|&b| b == b':') else { return };
        let (name, value) = (&line[..colon], trim_ows(&line[colon + 1..]));
        let is_length = name.eq_ignore_ascii_case(b"content-length");
        if !is_length && !name.eq_ignore_ascii_case(b"transfer-encoding") {
            return;
        }
        if self.line_overflow {
            self.phase = Phase::PassThrough;
        } else if is_length {
            match (parse_decimal(value), self.content_length) {
                (Some(n), None) => self.content_length = Some(n),
                (Some(n), Some(previous)) if n == previous => {}
                _ => self.phase = Phase::PassThrough,
            }
        } else {
            let last = value.rsplit(|&b| b == b',').next().unwrap_or_default();
            self.transfer_chunked = Some(trim_ows(last).eq_ignore_ascii_case(b"chunked"));
        }
    }

    fn end_headers(&mut self) {
        self.phase = match (self.transfer_chunked, self.content_length) {
            (Some(true), _) => Phase::ChunkSize { size: 0, digits: 0, ext: false },
            // A request whose final coding is not chunked has no knowable end; hyper rejects it.
            (Some(false), _) => Phase::PassThrough,
            (None, Some(n)) if n > 0 => Phase::Body { remaining: n },
            (None, _) => Phase::Idle,
        };
    }

    /// `1*HEXDIG [ BWS ";" ext ] CRLF`; extensions are skipped unparsed.
    fn chunk_size(&mut self, rest: &[u8], mut size: u64, mut digits: u8, mut ext: bool) -> usize {
        for (i, &byte) in rest.iter().enumerate() {
            if byte == b'\n' {
                self.phase = match (digits, size) {
                    (0, _) => Phase::PassThrough,
                    (_, 0) => {
                        self.head_len = 0;
                        Phase::Trailers
                    }
                    (_, n) => Phase::ChunkData { remaining: n },
                };
                return i + 1;
            }
            if ext {
                continue;
            }
            match (char::from(byte).to_digit(16), digits) {
                (Some(v), 0..=15) => {
                    size = size << 4 | u64::from(v);
                    digits += 1;
                }
                (None, 1..) if matches!(byte, b';' | b' ' | b'\t' | b'\r') => ext = true,
                _ => {
                    self.phase = Phase::PassThrough;
                    return rest.len();
                }
            }
        }
        self.phase = Phase::ChunkSize { size, digits, ext };
        rest.len()
    }

    fn chunk_end(&mut self, byte: u8, cr: bool) -> usize {
        self.phase = match (byte, cr) {
            (b'\r', false) => Phase::ChunkEnd { cr: true },
            (b'\n', _) => Phase::ChunkSize { size: 0, digits: 0, ext: false },
            _ => Phase::PassThrough,
        };
        1
    }
}

/// Body bytes are only counted: returns how many of `available` bytes belong to the body and
/// how many body bytes are still to come after them.
fn skip(available: usize, remaining: u64) -> (usize, u64) {
    let take = u64::try_from(available).unwrap_or(u64::MAX).min(remaining);
    // `take <= available`, so it fits.
    (usize::try_from(take).unwrap_or(available), remaining - take)
}

fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// Digits only, like hyper: no sign, no whitespace, no overflow.
fn parse_decimal(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    s.iter().try_fold(0u64, |n, &b| {
        let digit = char::from(b).to_digit(10)?;
        n.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use axum::body::Bytes;
    use axum::extract::State;
    use axum::http::{Method, Uri};
    use axum::routing::any;
    use axum::Router;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    use super::*;

    /// Feeds `input` to one framer in pieces cut at `cuts` (ascending) and returns what the
    /// server would have read, plus where the framer ended.
    fn run(input: &[u8], cuts: &[usize]) -> (Vec<u8>, Phase) {
        let mut out = input.to_vec();
        let mut framer = Framer::new();
        let mut from = 0;
        for &to in cuts.iter().chain([&input.len()]) {
            framer.feed(&mut out[from..to]);
            from = to;
        }
        (out, framer.phase)
    }

    /// Parts of a byte stream; `true` marks request-targets, where `#` must become a space.
    fn expand(parts: &[(&str, bool)]) -> (Vec<u8>, Vec<u8>) {
        let input: String = parts.iter().map(|(s, _)| *s).collect();
        let expected: String =
            parts.iter().map(|&(s, target)| if target { s.replace('#', " ") } else { s.to_owned() }).collect();
        (input.into_bytes(), expected.into_bytes())
    }

    /// A chunked PUT (extensions, trailers, `#` everywhere), a Content-Length POST whose body is
    /// a fragment-bearing request line, and a bare-LF OPTIONS, pipelined on one connection.
    fn pipeline() -> (Vec<u8>, Vec<u8>) {
        let post_body = "DELETE /x#y HTTP/1.1\r\n\r\n";
        let post_head = format!(" HTTP/1.1\nhost: x\ncontent-LENGTH: {}\n\n", post_body.len());
        expand(&[
            ("PUT ", false),
            ("/up#load#", true),
            (" HTTP/1.1\r\nHost: x\r\nX-Note: a#b\r\nTRANSFER-encoding: gzip ,  Chunked \r\n\r\n", false),
            ("5;name=#v\r\nab#cd\r\n10\r\nDELETE /x#y HTTP\r\n0\r\nX-Trailer: #t\r\n\r\n", false),
            ("\r\n\r\nPOST ", false),
            ("/p#", true),
            (&post_head, false),
            (post_body, false),
            ("OPTIONS ", false),
            ("#", true),
            (" HTTP/1.1\r\n\r\n", false),
        ])
    }

    #[test]
    fn only_target_hashes_change_at_every_pair_of_split_points() {
        let (input, expected) = pipeline();
        for a in 0..=input.len() {
            for b in a..=input.len() {
                assert_eq!(run(&input, &[a, b]), (expected.clone(), Phase::Idle), "cut at {a} and {b}");
            }
        }
    }

    #[test]
    fn only_target_hashes_change_when_fed_byte_by_byte() {
        let (input, expected) = pipeline();
        let cuts: Vec<usize> = (1..input.len()).collect();
        assert_eq!(run(&input, &cuts), (expected, Phase::Idle));
    }

    #[test]
    fn only_target_hashes_change_under_random_splits() {
        let (input, expected) = pipeline();
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        for round in 0..2000 {
            let mut cuts = Vec::new();
            for at in 1..input.len() {
                // xorshift64: enough randomness to vary piece sizes.
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                if seed.is_multiple_of(round % 40 + 2) {
                    cuts.push(at);
                }
            }
            assert_eq!(run(&input, &cuts), (expected.clone(), Phase::Idle), "cuts {cuts:?}");
        }
    }

    #[test]
    fn hash_outside_the_target_is_left_alone() {
        let input = b"G#T /a HTTP/1.1#\r\nX-#: #\r\n\r\nGET /b HTTP/1.1\r\n\r\n";
        assert_eq!(run(input, &[]), (input.to_vec(), Phase::Idle));
    }

    #[test]
    fn content_length_body_is_not_scanned() {
        let input = b"PUT /a HTTP/1.1\r\nContent-Length: 21\r\n\r\nGET /#x HTTP/1.1\r\n\r\n\n";
        assert_eq!(run(input, &[]), (input.to_vec(), Phase::Idle));
    }

    /// Asserts that after `prefix` the framer no longer touches anything.
    fn assert_passes_through(prefix: &[u8]) {
        let input = [prefix, b"GET /#x HTTP/1.1\r\n\r\n"].concat();
        assert_eq!(run(&input, &[]), (input.clone(), Phase::PassThrough));
    }

    #[test]
    fn http2_preface_switches_to_pass_through() {
        assert_passes_through(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x12\x04\x00\x00\x00\x00\x00\n");
    }

    #[test]
    fn unparsable_content_length_switches_to_pass_through() {
        assert_passes_through(b"PUT /a HTTP/1.1\r\nContent-Length: +5\r\n\r\n");
        assert_passes_through(b"PUT /a HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n");
    }

    #[test]
    fn conflicting_content_lengths_switch_to_pass_through() {
        assert_passes_through(b"PUT /a HTTP/1.1\r\nContent-Length: 5\r\ncontent-length: 6\r\n\r\n");
    }

    #[test]
    fn transfer_coding_not_ending_in_chunked_switches_to_pass_through() {
        assert_passes_through(b"PUT /a HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n");
    }

    #[test]
    fn malformed_chunk_framing_switches_to_pass_through() {
        assert_passes_through(b"PUT /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n");
        assert_passes_through(b"PUT /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nabc\r\n");
        assert_passes_through(b"PUT /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n11112222333344445\r\n");
    }

    #[test]
    fn header_section_over_64_kib_switches_to_pass_through() {
        let big = format!("GET /a HTTP/1.1\r\nX-Big: {}\r\n\r\n", "a".repeat(MAX_HEAD));
        assert_passes_through(big.as_bytes());
    }

    #[test]
    fn overlong_length_header_switches_to_pass_through() {
        let long = format!("PUT /a HTTP/1.1\r\nContent-Length: {}1\r\n\r\n1", "0".repeat(LINE_CAP));
        assert_passes_through(long.as_bytes());
    }

    type Seen = Arc<Mutex<Vec<(Method, String, Bytes)>>>;

    async fn record(State(seen): State<Seen>, method: Method, uri: Uri, body: Bytes) -> String {
        let len = body.len();
        seen.lock().unwrap().push((method, uri.to_string(), body));
        len.to_string()
    }

    /// Serves a router that records every request it gets, the way `serve` serves the real one.
    async fn serve_recorder() -> (SocketAddr, Seen) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Seen::default();
        let app = Router::new().route("/{*path}", any(record)).with_state(seen.clone());
        let grace = std::time::Duration::from_secs(10);
        tokio::spawn(crate::http_server::run(listener, None, app, std::future::pending(), grace));
        (addr, seen)
    }

    /// Sends raw bytes and reads until the server closes the connection.
    async fn exchange(addr: SocketAddr, request: &[u8]) -> String {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(request).await.unwrap();
        let mut response = Vec::new();
        let read = stream.read_to_end(&mut response);
        tokio::time::timeout(Duration::from_secs(10), read).await.unwrap().unwrap();
        String::from_utf8(response).unwrap()
    }

    #[tokio::test]
    async fn fragment_in_request_target_is_answered_400_without_reaching_the_handler() {
        let (addr, seen) = serve_recorder().await;
        for line in ["DELETE /a/#b HTTP/1.1", "DELETE /litmus/frag/#ment HTTP/1.1", "DELETE /a/# HTTP/1.1"] {
            let response = exchange(addr, format!("{line}\r\nHost: x\r\n\r\n").as_bytes()).await;
            assert!(response.starts_with("HTTP/1.1 400 "), "{line}: {response:?}");
        }
        assert!(seen.lock().unwrap().is_empty());
        // The same request without the fragment does get through.
        let response = exchange(addr, b"DELETE /a/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await;
        assert!(response.starts_with("HTTP/1.1 200 "), "{response:?}");
        assert_eq!(seen.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn http2_prior_knowledge_is_left_to_hyper() {
        let (addr, _) = serve_recorder().await;
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let empty_settings = [0, 0, 0, 4, 0, 0, 0, 0, 0];
        stream.write_all(&[b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".as_slice(), &empty_settings].concat()).await.unwrap();
        let mut frame_header = [0; 9];
        let read = stream.read_exact(&mut frame_header);
        tokio::time::timeout(Duration::from_secs(10), read).await.unwrap().unwrap();
        assert_eq!(frame_header[3], 4, "the server's first frame is SETTINGS: {frame_header:?}");
    }

    #[tokio::test]
    async fn keep_alive_requests_with_hash_in_bodies_reach_the_handler_intact() {
        let (addr, seen) = serve_recorder().await;
        let put_body = "DELETE /x#y HTTP/1.1\r\nHost: x\r\n\r\n#";
        let requests = format!(
            "GET /one HTTP/1.1\r\nHost: x\r\n\r\n\
             PUT /two HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\na#b\r\n0\r\n\r\n\
             PUT /three HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{put_body}",
            put_body.len()
        );
        let response = exchange(addr, requests.as_bytes()).await;
        assert_eq!(response.matches("HTTP/1.1 200 OK").count(), 3, "{response:?}");
        let seen = seen.lock().unwrap();
        let expected = [
            (Method::GET, "/one".to_owned(), Bytes::new()),
            (Method::PUT, "/two".to_owned(), Bytes::from_static(b"a#b")),
            (Method::PUT, "/three".to_owned(), Bytes::from(put_body)),
        ];
        assert_eq!(*seen, expected);
    }
}
