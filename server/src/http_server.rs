//! The HTTP(S) accept loop: our own, because `axum::serve` cannot terminate TLS.
//!
//! Each accepted TCP connection gets `TCP_NODELAY` and its own task, which performs the TLS
//! handshake when TLS is configured, wraps the stream in a [`GuardedStream`] (request-targets
//! with a `#` fragment are refused, see `listener.rs`) and serves it with hyper-util's auto
//! builder: HTTP/1.1 with keep-alive, or HTTP/2 (over TLS by ALPN, or in clear by prior
//! knowledge).
//!
//! **The client's address** reaches handlers the way `axum::serve` delivers it: every request
//! carries an `axum::extract::ConnectInfo<SocketAddr>` extension ([`WithPeer`] adds it).
//! Handlers take the `ConnectInfo<SocketAddr>` extractor, or read
//! `req.extensions().get::<ConnectInfo<SocketAddr>>()`. It is the TCP peer; no proxy header
//! is trusted. The application is any tower service of requests with axum's body (an axum
//! `Router`, or the WebDAV application of `dav/`).
//!
//! **Nothing a client does can hold a connection without bound before its request is read:**
//! the TLS handshake has 10 s; the first bytes (read here to tell HTTP/1 from HTTP/2, since
//! hyper-util's own detection has no timeout) and every HTTP/1 request head, also between
//! keep-alive requests, have 30 s; an HTTP/2 peer that stops answering pings is dropped. An
//! HTTP/2 connection that stays idle but answers pings is kept, as HTTP/2 clients expect.
//!
//! **Shutdown** stops accepting, asks every connection to finish (HTTP/1 closes after the
//! response in progress, HTTP/2 sends GOAWAY) and waits up to the grace period
//! (`--grace-seconds`, 10 s by default) before cutting whatever is left; an upload cut then
//! leaves the previous content, like any interrupted PUT.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use std::convert::Infallible;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio::time::timeout;
use tokio_rustls::TlsAcceptor;

use crate::listener::GuardedStream;
use crate::zero_copy::{ZeroCopy, ZeroCopyStream};

/// The time limits the server runs with (tests shorten them).
#[derive(Clone, Copy, Debug)]
struct Limits {
    /// Longest a TLS handshake may take; a client that stalls it is dropped.
    handshake: Duration,
    /// Longest the server waits for a whole HTTP/1 request head, and for the first bytes of a
    /// connection. hyper's default, made explicit since it doubles as the keep-alive idle limit.
    header_read: Duration,
    /// How long shutdown waits for in-flight requests before closing their connections.
    grace: Duration,
}

const LIMITS: Limits =
    Limits { handshake: Duration::from_secs(10), header_read: Duration::from_secs(30), grace: Duration::from_secs(10) };
/// HTTP/2 keep-alive: a ping this often, and the connection is dropped if one goes unanswered
/// for [`H2_PING_TIMEOUT`], so vanished peers do not pin connections.
const H2_PING_INTERVAL: Duration = Duration::from_secs(60);
const H2_PING_TIMEOUT: Duration = Duration::from_secs(20);
/// What an HTTP/2 prior-knowledge client sends first (RFC 9113 §3.4).
const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Serves `app` on `listener` (HTTPS when `tls` is given) until `shutdown` completes, then
/// drains connections as described in the module documentation. Accept errors are logged and
/// retried, never returned: one bad moment (EMFILE) must not stop the server.
pub async fn run<A: App>(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    app: A,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) -> io::Result<()> {
    run_with(listener, tls, app, shutdown, Limits { grace, ..LIMITS }).await
}

/// What can be served: a service of requests with axum's body that never fails (errors are
/// responses), cheap to clone (hyper-util clones it for each request).
pub trait App:
    tower::Service<Request<Body>, Response = Response<Body>, Error = Infallible, Future: Send + 'static>
    + Clone
    + Send
    + Sync
    + 'static
{
}

impl<S> App for S where
    S: tower::Service<Request<Body>, Response = Response<Body>, Error = Infallible, Future: Send + 'static>
        + Clone
        + Send
        + Sync
        + 'static
{
}

/// The application as one connection serves it: hyper's body made axum's, and the peer's
/// address on every request.
#[derive(Clone)]
struct WithPeer<A> {
    app: A,
    peer: SocketAddr,
    /// On plain-TCP HTTP/1 connections: large file bodies go out by `sendfile`.
    zero_copy: Option<ZeroCopy>,
}

impl<A: App> tower::Service<Request<Incoming>> for WithPeer<A> {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = A::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.app.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Incoming>) -> A::Future {
        let mut req = req.map(Body::new);
        req.extensions_mut().insert(ConnectInfo(self.peer));
        if let Some(zero_copy) = &self.zero_copy {
            req.extensions_mut().insert(zero_copy.clone());
        }
        self.app.call(req)
    }
}

async fn run_with<A: App>(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    app: A,
    shutdown: impl Future<Output = ()>,
    limits: Limits,
) -> io::Result<()> {
    let connections = Arc::new(Connections::new(tls, app, limits));
    let graceful = GracefulShutdown::new();
    let mut tasks = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                // Reap finished connections so the set holds only live ones.
                while tasks.try_join_next().is_some() {}
                tasks.spawn(connections.clone().serve(stream, peer, graceful.watcher()));
            }
            Err(e) if is_peer_error(&e) => {}
            Err(e) => {
                // Typically EMFILE: pause so a spinning loop does not starve live connections.
                tracing::error!(error = %e, "accept failed");
                tokio::select! {
                    () = &mut shutdown => break,
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    }
    drop(listener);
    if timeout(limits.grace, graceful.shutdown()).await.is_err() {
        tracing::warn!(grace = ?limits.grace, "connections still busy after the grace period; closing them");
    }
    tasks.shutdown().await;
    Ok(())
}

/// A peer that gave up between connecting and being accepted is not worth a word.
fn is_peer_error(e: &io::Error) -> bool {
    use io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    matches!(e.kind(), ConnectionAborted | ConnectionRefused | ConnectionReset)
}

/// What every connection task shares.
struct Connections<A> {
    tls: Option<TlsAcceptor>,
    app: A,
    /// The same settings twice, pinned to one protocol each: the protocol is chosen by
    /// [`sniff`], under a timeout, rather than by hyper-util's untimed detection.
    http1: Builder<TokioExecutor>,
    http2: Builder<TokioExecutor>,
    limits: Limits,
}

impl<A: App> Connections<A> {
    fn new(tls: Option<Arc<rustls::ServerConfig>>, app: A, limits: Limits) -> Self {
        let mut builder = Builder::new(TokioExecutor::new());
        // Never `writev(false)` nor `pipeline_flush(true)`: hyper would then copy body
        // buffers, and `zero_copy.rs`'s placeholders would go out as zeros.
        builder.http1().timer(TokioTimer::new()).header_read_timeout(limits.header_read).keep_alive(true);
        builder
            .http2()
            .timer(TokioTimer::new())
            .keep_alive_interval(H2_PING_INTERVAL)
            .keep_alive_timeout(H2_PING_TIMEOUT);
        Connections {
            tls: tls.map(TlsAcceptor::from),
            app,
            http1: builder.clone().http1_only(),
            http2: builder.http2_only(),
            limits,
        }
    }

    /// One connection, start to end. Failures only concern this client: logged at debug level.
    async fn serve(self: Arc<Self>, stream: TcpStream, peer: SocketAddr, watcher: Watcher) {
        let _open = crate::ops::metrics::global().http_connection();
        // Responses are written whole; Nagle would only delay small ones.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(%peer, error = %e, "cannot set TCP_NODELAY");
        }
        let Some(acceptor) = &self.tls else {
            let (stream, zero_copy) = ZeroCopyStream::new(stream);
            return self.serve_http(stream, peer, watcher, Some(zero_copy)).await;
        };
        match timeout(self.limits.handshake, acceptor.accept(stream)).await {
            Ok(Ok(tls)) => self.serve_http(tls, peer, watcher, None).await,
            Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
            Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
        }
    }

    async fn serve_http<S>(&self, mut io: S, peer: SocketAddr, watcher: Watcher, zero_copy: Option<ZeroCopy>)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (is_h2, head) = match timeout(self.limits.header_read, sniff(&mut io)).await {
            Ok(Ok(Some(found))) => found,
            Ok(Ok(None)) => return,
            Ok(Err(e)) => {
                tracing::debug!(%peer, error = %e, "reading the first bytes failed");
                return;
            }
            Err(_) => {
                tracing::debug!(%peer, "no request within the header timeout");
                return;
            }
        };
        let zero_copy = zero_copy.filter(|_| !is_h2);
        let service = TowerToHyperService::new(WithPeer { app: self.app.clone(), peer, zero_copy });
        let io = TokioIo::new(GuardedStream::new(Replay { head, at: 0, inner: io }));
        let builder = if is_h2 { &self.http2 } else { &self.http1 };
        if let Err(e) = watcher.watch(builder.serve_connection(io, service)).await {
            tracing::debug!(%peer, error = %e, "connection ended with an error");
        }
    }
}

/// Reads until the bytes are, or cannot be, the HTTP/2 connection preface. Returns whether
/// they are and the bytes read, or `None` if the client closed without sending anything.
async fn sniff<S: AsyncRead + Unpin>(io: &mut S) -> io::Result<Option<(bool, Vec<u8>)>> {
    let mut head = [0; H2_PREFACE.len()];
    let mut filled = 0;
    loop {
        let n = io.read(&mut head[filled..]).await?;
        if n == 0 && filled == 0 {
            return Ok(None);
        }
        filled += n;
        let matches = head[..filled] == H2_PREFACE[..filled];
        if n == 0 || !matches || filled == H2_PREFACE.len() {
            return Ok(Some((matches && filled == H2_PREFACE.len(), head[..filled].to_vec())));
        }
    }
}

/// A stream whose first bytes were already read by [`sniff`]: they are read again before the
/// rest, so hyper (and the [`GuardedStream`] framer) see the connection from its first byte.
struct Replay<S> {
    head: Vec<u8>,
    at: usize,
    inner: S,
}

impl<S: AsyncRead + Unpin> AsyncRead for Replay<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let rest = this.head.get(this.at..).unwrap_or_default();
        if rest.is_empty() {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        }
        let n = rest.len().min(buf.remaining());
        buf.put_slice(&rest[..n]);
        this.at += n;
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Replay<S> {
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

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use axum::routing::get;
    use axum::Router;
    use tokio::io::AsyncWriteExt;
    use tokio::sync::oneshot;
    use tokio::task::JoinHandle;

    use super::*;

    const SHORT: Limits = Limits {
        handshake: Duration::from_millis(300),
        header_read: Duration::from_millis(300),
        grace: Duration::from_millis(500),
    };

    /// `/peer` answers the client address it was given; `/slow/MS` answers after MS ms.
    fn app() -> Router {
        async fn peer(ConnectInfo(addr): ConnectInfo<SocketAddr>) -> String {
            addr.to_string()
        }
        async fn slow(axum::extract::Path(ms): axum::extract::Path<u64>) -> &'static str {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            "done"
        }
        Router::new().route("/peer", get(peer)).route("/slow/{ms}", get(slow))
    }

    struct Running {
        addr: SocketAddr,
        stop: oneshot::Sender<()>,
        task: JoinHandle<io::Result<()>>,
    }

    async fn start(tls: Option<Arc<rustls::ServerConfig>>, limits: Limits) -> Running {
        start_app(app(), tls, limits).await
    }

    async fn start_app(app: Router, tls: Option<Arc<rustls::ServerConfig>>, limits: Limits) -> Running {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown = async move {
            let _ = stopped.await;
        };
        let task = tokio::spawn(run_with(listener, tls, app, shutdown, limits));
        Running { addr, stop, task }
    }

    /// Reads until the server closes, failing the test after 5 s.
    async fn read_all(stream: &mut TcpStream) -> String {
        let mut out = Vec::new();
        timeout(Duration::from_secs(5), stream.read_to_end(&mut out)).await.unwrap().unwrap();
        String::from_utf8_lossy(&out).into_owned()
    }

    async fn send(addr: SocketAddr, path: &str) -> (TcpStream, SocketAddr) {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let local = stream.local_addr().unwrap();
        (stream, local)
    }

    #[tokio::test]
    async fn handlers_see_the_client_address() {
        let server = start(None, SHORT).await;
        let (mut stream, local) = send(server.addr, "/peer").await;
        let response = read_all(&mut stream).await;
        assert!(response.starts_with("HTTP/1.1 200 "), "{response:?}");
        assert!(response.ends_with(&format!("\r\n\r\n{local}")), "{response:?}");
    }

    #[tokio::test]
    async fn silent_and_stalling_clients_are_dropped_after_the_header_timeout() {
        let server = start(None, SHORT).await;
        for first_bytes in [&b""[..], b"PRI * HTTP/2.0\r\n", b"GET /peer HTTP/1.1\r\nHost"] {
            let mut stream = TcpStream::connect(server.addr).await.unwrap();
            stream.write_all(first_bytes).await.unwrap();
            let started = Instant::now();
            let response = read_all(&mut stream).await;
            assert!(started.elapsed() >= Duration::from_millis(250), "{first_bytes:?}");
            assert!(!response.contains(" 200 "), "{first_bytes:?}: {response:?}");
        }
    }

    #[tokio::test]
    async fn a_stalled_tls_handshake_is_dropped_and_the_server_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = crate::tls::tests::self_signed(dir.path(), "s");
        let server = start(Some(crate::tls::load(&cert, &key).unwrap()), SHORT).await;
        let mut silent = TcpStream::connect(server.addr).await.unwrap();
        assert_eq!(read_all(&mut silent).await, "");
        // Plain HTTP is no TLS ClientHello: the handshake fails and nothing is served in clear.
        let (mut plain, _) = send(server.addr, "/peer").await;
        assert!(!read_all(&mut plain).await.contains("HTTP/1.1 200"));
        assert!(!server.task.is_finished());
    }

    #[tokio::test]
    async fn shutdown_finishes_requests_in_flight_and_stops_accepting() {
        let server = start(None, SHORT).await;
        let (mut stream, _) = send(server.addr, "/slow/200").await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        server.stop.send(()).unwrap();
        let response = read_all(&mut stream).await;
        assert!(response.starts_with("HTTP/1.1 200 ") && response.ends_with("done"), "{response:?}");
        server.task.await.unwrap().unwrap();
        assert!(TcpStream::connect(server.addr).await.is_err());
    }

    #[tokio::test]
    async fn shutdown_cuts_requests_that_outlast_the_grace_period() {
        let server = start(None, SHORT).await;
        let (mut stream, _) = send(server.addr, "/slow/60000").await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        let started = Instant::now();
        server.stop.send(()).unwrap();
        server.task.await.unwrap().unwrap();
        assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
        assert_eq!(read_all(&mut stream).await, "");
    }

    /// `/file` answers the whole file as `zero_copy.rs` sends it, or 500 where it can't.
    fn zero_copy_app(file: Arc<std::fs::File>, len: u64) -> Router {
        use axum::response::IntoResponse;
        let answer = move |req: Request<Body>| async move {
            let Some(zero_copy) = req.extensions().get::<ZeroCopy>() else {
                return (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "no zero copy").into_response();
            };
            let body = zero_copy.body(wharf_backends::FileSpan { file, offset: 0, len });
            let mut resp = Response::new(body);
            resp.headers_mut().insert("content-length", len.into());
            resp
        };
        Router::new().route("/file", get(answer))
    }

    /// The bodies of the HTTP/1.1 responses in `bytes`, each framed by its Content-Length.
    fn bodies(mut bytes: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&bytes[..end]).to_lowercase();
            assert!(head.starts_with("http/1.1 200 "), "{head}");
            let len: usize = head.split("content-length: ").nth(1).unwrap().lines().next().unwrap().parse().unwrap();
            out.push(bytes[end + 4..end + 4 + len].to_vec());
            bytes = &bytes[end + 4 + len..];
        }
        out
    }

    #[tokio::test]
    async fn a_file_body_goes_out_exact_through_hypers_http1_even_pipelined() {
        use std::io::Write;
        let data: Vec<u8> = (0..9u32 << 20).map(|i| (i.wrapping_mul(2_654_435_761) >> 7) as u8).collect();
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(&data).unwrap();
        let server = start_app(zero_copy_app(Arc::new(file), data.len() as u64), None, SHORT).await;
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        let two = b"GET /file HTTP/1.1\r\nHost: x\r\n\r\nGET /file HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        stream.write_all(two).await.unwrap();
        let mut got = Vec::new();
        timeout(Duration::from_secs(20), stream.read_to_end(&mut got)).await.unwrap().unwrap();
        let bodies = bodies(&got);
        assert_eq!(bodies.len(), 2);
        assert!(bodies.iter().all(|b| *b == data), "a body came back altered");
    }

    #[tokio::test]
    async fn bytes_read_to_choose_the_protocol_are_replayed() {
        let mut input: &[u8] = b"GET / HTTP/1.1\r\n\r\n";
        let (is_h2, head) = sniff(&mut input).await.unwrap().unwrap();
        assert!(!is_h2);
        let mut replay = Replay { head, at: 0, inner: input };
        let mut all = String::new();
        replay.read_to_string(&mut all).await.unwrap();
        assert_eq!(all, "GET / HTTP/1.1\r\n\r\n");

        let mut input: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0";
        let (is_h2, head) = sniff(&mut input).await.unwrap().unwrap();
        assert!(is_h2 && head == H2_PREFACE && input == b"\0\0");
        assert!(sniff(&mut &b""[..]).await.unwrap().is_none());
    }
}
