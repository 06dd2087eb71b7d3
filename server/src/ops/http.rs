//! Request metrics and the access log for HTTP, recorded by `edge` around the WebDAV router.
//!
//! Bodies are counted as they stream, by wrapping the request and response bodies: nothing
//! is buffered, so a 1 GiB upload costs one atomic add per chunk. A request is recorded
//! when its response body ends (or is dropped, when the client goes away), so durations and
//! the access log cover the whole transfer, not just the time to the first byte.

use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::Request;
use axum::http::{Method, StatusCode};
use axum::response::Response;
use http_body::{Frame, SizeHint};

use super::metrics::{global, Protocol, Status};

/// The request's half of the recording (called by `edge`): starts the clock and counts the
/// request body as it streams. With `access_log`, one line per request at info level,
/// target `wharf::access`, written when [`observe_response`]'s body is finished with.
pub(crate) fn observe_request(access_log: bool, req: Request) -> (Request, Pending) {
    let started = Instant::now();
    let log = access_log.then(|| AccessLine {
        client: crate::proxy::client_addr(req.extensions()),
        method: req.method().clone(),
        // The path only: a query string may carry a token, and no header is ever logged.
        path: req.uri().path().to_owned(),
    });
    let method = method_label(req.method());
    let received = Arc::new(AtomicU64::new(0));
    let counter = received.clone();
    let req = req.map(|inner| {
        let tally = move |n| {
            counter.fetch_add(n, Ordering::Relaxed);
            global().received(Protocol::Webdav, n);
        };
        Body::new(Counted { inner, tally })
    });
    (req, Pending { started, method, received, log })
}

/// A request whose response is not ready yet. Nothing is recorded if it is dropped as it
/// is (the client went away before an answer).
pub(crate) struct Pending {
    started: Instant,
    method: &'static str,
    received: Arc<AtomicU64>,
    log: Option<AccessLine>,
}

/// The response's half: counts the body as it streams, and records the request when the
/// body is finished with.
pub(crate) fn observe_response(pending: Pending, resp: Response) -> Response {
    let Pending { started, method, received, log } = pending;
    let mut done = Done { started, method, status: resp.status(), received, sent: 0, log };
    resp.map(|inner| {
        // Through a reference, so the closure owns the whole `Done` (not just its `sent`
        // field): dropped with the body, it records the request then.
        let tally = move |n| {
            let done = &mut done;
            done.sent += n;
            global().sent(Protocol::Webdav, n);
        };
        Body::new(Counted { inner, tally })
    })
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

/// A body that reports the size of each data frame as it passes, to `tally`. Owning `tally`,
/// it also decides when the request is recorded: the response's tally holds the [`Done`],
/// which records when the body is finished with.
struct Counted<F> {
    inner: Body,
    tally: F,
}

impl<F: FnMut(u64) + Unpin> HttpBody for Counted<F> {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(data) = frame.data_ref() {
                (this.tally)(data.len() as u64);
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
