//! What every WebDAV and browser request passes first, outermost in the application
//! (`dav::service`): the client's address (`proxy`), then the metrics and the access log
//! (`ops::http`).
//!
//! A tower layer written out by hand rather than two `axum::middleware::from_fn` layers:
//! those box every request's future, clone and box the inner service for each call, and
//! take the request apart for extractors. Together that was 14% of the instructions of a
//! small GET (callgrind).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use axum::extract::Request;
use axum::response::Response;
use tower::{Layer, Service};

use crate::ops::http::{observe_request, observe_response, Pending};
use crate::proxy::Proxies;

#[derive(Clone)]
pub struct EdgeLayer {
    proxies: Arc<Proxies>,
    access_log: bool,
}

impl EdgeLayer {
    pub fn new(proxies: Arc<Proxies>, access_log: bool) -> Self {
        EdgeLayer { proxies, access_log }
    }
}

impl<S> Layer<S> for EdgeLayer {
    type Service = Edge<S>;

    fn layer(&self, inner: S) -> Edge<S> {
        Edge { inner, proxies: self.proxies.clone(), access_log: self.access_log }
    }
}

#[derive(Clone)]
pub struct Edge<S> {
    inner: S,
    proxies: Arc<Proxies>,
    access_log: bool,
}

impl<S, B> Service<Request> for Edge<S>
where
    S: Service<Request, Response = axum::http::Response<B>, Error = Infallible>,
    B: http_body::Body<Data = axum::body::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = EdgeFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request) -> Self::Future {
        // First: everything after sees the client address a trusted proxy reported.
        crate::proxy::mark(&self.proxies, &mut req);
        let (req, done) = observe_request(self.access_log, req);
        EdgeFuture { inner: self.inner.call(req), done: Some(done) }
    }
}

pin_project_lite::pin_project! {
    pub struct EdgeFuture<F> {
        #[pin]
        inner: F,
        // Taken when the response is ready.
        done: Option<Pending>,
    }
}

impl<F, B> Future for EdgeFuture<F>
where
    F: Future<Output = Result<axum::http::Response<B>, Infallible>>,
    B: http_body::Body<Data = axum::body::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Ok(resp) = ready!(this.inner.poll(cx));
        let resp = resp.map(axum::body::Body::new);
        Poll::Ready(Ok(match this.done.take() {
            Some(done) => observe_response(done, resp),
            // Polled again after it was ready: a caller's mistake, answered without a record.
            None => resp,
        }))
    }
}
