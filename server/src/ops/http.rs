//! Request metrics and the access log for HTTP, as one middleware around the WebDAV router.
//!
//! Bodies are counted as they stream, by wrapping the request and response bodies: nothing
//! is buffered, so a 1 GiB upload costs one atomic add per chunk. A request is recorded
//! when its response body ends (or is dropped, when the client goes away), so durations and
//! the access log cover the whole transfer, not just the time to the first byte.

use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{ConnectInfo, Request};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use http_body::{Frame, SizeHint};

use super::metrics::{global, Protocol, Status};

/// The middleware: `axum::middleware::from_fn(move |req, next| observe(access_log, req, next))`.
/// With `access_log`, one line per request at info level, target `wharf::access`.
pub async fn observe(access_log: bool, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let log = access_log.then(|| AccessLine {
        client: client(&req),
        method: req.method().clone(),
        // The path only: a query string may carry a token, and no header is ever logged.
        path: req.uri().path().to_owned(),
    });
    let method = method_label(req.method());
    let received = Arc::new(AtomicU64::new(0));
    let req = req.map(|body| Body::new(Incoming { inner: body, received: received.clone() }));
    let resp = next.run(req).await;
    let done = Done { started, method, status: resp.status(), received, sent: 0, log };
    resp.map(|body| Body::new(Outgoing { inner: body, done }))
}

/// Methods become one of a fixed set of labels, so a client inventing methods cannot make
/// new series.
fn method_label(method: &Method) -> &'static str {
    const KNOWN: [&str; 13] = [
        "GET",
        "HEAD",
        "PUT",
        "POST",
        "DELETE",
        "OPTIONS",
        "MKCOL",
        "COPY",
        "MOVE",
        "PROPFIND",
        "PROPPATCH",
        "LOCK",
        "UNLOCK",
    ];
    KNOWN.iter().find(|m| **m == method.as_str()).copied().unwrap_or("other")
}

/// The client as the proxy layer resolved it, or the TCP peer.
fn client(req: &Request) -> IpAddr {
    match req.extensions().get::<crate::proxy::ClientAddr>() {
        Some(client) => client.0,
        None => req.extensions().get::<ConnectInfo<SocketAddr>>().map_or(IpAddr::from([0, 0, 0, 0]), |c| c.0.ip()),
    }
}

struct AccessLine {
    client: IpAddr,
    method: Method,
    path: String,
}

/// What is recorded when the response body is finished with.
struct Done {
    started: Instant,
    method: &'static str,
    status: StatusCode,
    /// Shared with the request body, which the handler may still hold.
    received: Arc<AtomicU64>,
    sent: u64,
    log: Option<AccessLine>,
}

impl Drop for Done {
    fn drop(&mut self) {
        let elapsed = self.started.elapsed();
        global().request(Protocol::Webdav, self.method, Status::Http(self.status.as_u16()), elapsed);
        if let Some(line) = &self.log {
            tracing::info!(
                target: "wharf::access",
                client = %line.client,
                method = %line.method,
                path = %line.path,
                status = self.status.as_u16(),
                bytes_in = self.received.load(Ordering::Relaxed),
                bytes_out = self.sent,
                seconds = elapsed.as_secs_f64(),
                "request"
            );
        }
    }
}

/// A request body that counts what the handler reads of it.
struct Incoming {
    inner: Body,
    received: Arc<AtomicU64>,
}

impl HttpBody for Incoming {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(data) = frame.data_ref() {
                this.received.fetch_add(data.len() as u64, Ordering::Relaxed);
                global().received(Protocol::Webdav, data.len() as u64);
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A response body that counts what is sent of it, and records the request when dropped.
struct Outgoing {
    inner: Body,
    done: Done,
}

impl HttpBody for Outgoing {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(data) = frame.data_ref() {
                this.done.sent += data.len() as u64;
                global().sent(Protocol::Webdav, data.len() as u64);
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_methods_share_one_label() {
        assert_eq!(method_label(&Method::from_bytes(b"PROPFIND").unwrap()), "PROPFIND");
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::from_bytes(b"BREW").unwrap()), "other");
        assert_eq!(method_label(&Method::from_bytes(b"propfind").unwrap()), "other");
    }
}
