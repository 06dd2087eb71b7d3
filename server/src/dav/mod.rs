//! The WebDAV protocol layer (RFC 4918) over axum. Each method lives in its own module and
//! talks only to the [`dav_model::Repository`]; no storage decision is made here.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, Response, StatusCode};
use dav_model::identity::{Authenticator, Principal, View};
use dav_model::Repository;
use tower_http::compression::predicate::{And, Predicate, SizeAbove};
use tower_http::compression::{Compression, CompressionLayer};

use crate::config::Settings;

mod auth;
mod body;
mod browser;
pub(crate) mod digest;
mod error;
pub(crate) mod get;
pub(crate) mod headers;
mod listing;
mod lock;
mod multistatus;
mod options;
mod propfind;
mod proppatch;
mod props;
mod put;
mod quirks;
mod time;
mod tree;
pub(crate) mod uri;

pub use error::DavError;

/// What every handler needs.
#[derive(Clone)]
pub struct State {
    pub repo: Arc<Repository>,
    pub auth: Arc<Authenticator>,
    pub max_xml_bytes: usize,
    pub infinity_limit: u64,
    /// Offer HTTP Digest besides Basic.
    pub digest: bool,
    /// Requests without credentials read the public area instead of getting a 401.
    pub anonymous: bool,
    /// Whose `Forwarded` headers are believed.
    pub proxies: Arc<crate::proxy::Proxies>,
    /// Log one line per request (target `wharf::access`).
    pub access_log: bool,
}

impl State {
    pub fn new(repo: Arc<Repository>, auth: Arc<Authenticator>, s: &Settings) -> State {
        State {
            repo,
            auth,
            max_xml_bytes: s.max_xml_bytes,
            infinity_limit: s.propfind_infinity_limit,
            digest: s.digest,
            anonymous: s.anonymous,
            proxies: Arc::new(crate::proxy::Proxies::new(s.trusted_proxies.clone())),
            access_log: s.access_log,
        }
    }
}

/// One request's context: the shared state and the principal it runs as.
pub struct Ctx {
    pub state: State,
    pub principal: Principal,
}

impl Ctx {
    /// The tree as this request's principal sees it; every handler goes through this.
    pub fn view(&self) -> View<'_> {
        self.state.repo.view(&self.principal)
    }
}

pub type DavResult = Result<Response<Body>, DavError>;

/// The WebDAV and browser application: every request, whatever its path and method, goes
/// to [`dispatch`], inside compression, inside the edge layer (`edge.rs`). A tower stack
/// of our own rather than an axum `Router`: with one route for everything, the router's
/// matching, parameters and boxing were a tenth of a small GET's instructions.
pub type Service = crate::edge::Edge<Compression<Dispatch, And<SizeAbove, Markup>>>;

pub fn service(state: State) -> Service {
    use tower::Layer;
    let edge = crate::edge::EdgeLayer::new(state.proxies.clone(), state.access_log);
    let compression = CompressionLayer::new().gzip(true).compress_when(SizeAbove::new(1024).and(Markup));
    // Outside compression: metrics and the access log see what goes over the wire.
    edge.layer(compression.layer(Dispatch(state)))
}

/// The innermost service: [`dispatch`], boxed (its future holds the request's state).
#[derive(Clone)]
pub struct Dispatch(State);

impl tower::Service<Request> for Dispatch {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let state = self.0.clone();
        Box::pin(async move { Ok(dispatch(state, req).await) })
    }
}

/// gzip for XML and HTML answers when the client accepts it: a PROPFIND listing shrinks
/// about tenfold. File contents (answers that offer byte ranges) are left alone, even of
/// HTML files: most are compressed already, compressing them would break byte ranges and
/// cost CPU on every download, and a large file's body is placeholders the connection
/// replaces (`zero_copy.rs`).
#[derive(Clone, Copy)]
pub struct Markup;

impl Predicate for Markup {
    fn should_compress<B: http_body::Body>(&self, response: &Response<B>) -> bool {
        let h = response.headers();
        let ct = h.get(axum::http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
        let markup = ct.starts_with("application/xml") || ct.starts_with("text/html");
        markup && !h.contains_key(axum::http::header::ACCEPT_RANGES)
    }
}

async fn dispatch(state: State, req: Request) -> Response<Body> {
    let req = match uri::rebase(req) {
        Ok(req) => req,
        Err(resp) => return finish(*resp),
    };
    let method = req.method().clone();
    let uri = req.uri().clone();
    if method == axum::http::Method::OPTIONS {
        // Answered before authentication, identically for every path (see options.rs).
        return finish(options::options().unwrap_or_else(|e| e.into_response(&method)));
    }
    // The page's assets are public and the same for everyone (see browser/assets.rs).
    if let Some(resp) = browser::assets::serve(&method, &browser::Query::parse(&uri)) {
        return finish(resp);
    }
    // Before authentication: a forged request learns nothing, not even whether it would log in.
    let public = req.extensions().get::<crate::proxy::PublicOrigin>();
    if let Some(why) = browser::csrf::refusal(&method, req.headers(), &uri, public) {
        tracing::debug!(%method, %uri, why, "refused as cross-site");
        return finish(empty(StatusCode::FORBIDDEN));
    }
    // Only the head is borrowed while authenticating: a body can't be shared across tasks.
    let (head, body) = req.into_parts();
    // Boxed, like the methods' futures below.
    let principal = match Box::pin(auth::authenticate(&state, &head)).await {
        Ok(p) => p,
        Err(challenge) => return finish(challenge),
    };
    let req = Request::from_parts(head, body);
    let cx = Ctx { state, principal };
    // Each method's future is boxed: unboxed, this future would be as large as the largest
    // of them (about 12 KiB), and every layer above moves it by value when it wraps it;
    // those copies were a fifth of a small GET's instructions (callgrind).
    let result = match method.as_str() {
        "GET" => Box::pin(get::get(&cx, req, true)).await,
        "HEAD" => Box::pin(get::get(&cx, req, false)).await,
        "PUT" => Box::pin(put::put(&cx, req)).await,
        "DELETE" => Box::pin(tree::delete(&cx, req)).await,
        "MKCOL" => Box::pin(tree::mkcol(&cx, req)).await,
        "COPY" => Box::pin(tree::transfer(&cx, req, false)).await,
        "MOVE" => Box::pin(tree::transfer(&cx, req, true)).await,
        "PROPFIND" => Box::pin(propfind::propfind(&cx, req)).await,
        "PROPPATCH" => Box::pin(proppatch::proppatch(&cx, req)).await,
        "LOCK" => Box::pin(lock::lock(&cx, req)).await,
        "UNLOCK" => Box::pin(lock::unlock(&cx, req)).await,
        _ => Err(DavError::MethodNotAllowed),
    };
    let resp = result.unwrap_or_else(|e| e.into_response(&method));
    tracing::debug!(%method, %uri, status = resp.status().as_u16(), "request");
    finish(resp)
}

/// Headers every answer carries.
fn finish(mut resp: Response<Body>) -> Response<Body> {
    // Names made once: a `&str` name is parsed and checked on every insert.
    const DAV: HeaderName = HeaderName::from_static("dav");
    const MS_AUTHOR_VIA: HeaderName = HeaderName::from_static("ms-author-via");
    resp.headers_mut().insert(DAV, HeaderValue::from_static("1, 2"));
    resp.headers_mut().insert(MS_AUTHOR_VIA, HeaderValue::from_static("DAV"));
    resp
}

/// A response with no body and the given status.
pub(crate) fn empty(status: StatusCode) -> Response<Body> {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = status;
    r
}
