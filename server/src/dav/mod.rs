//! The WebDAV protocol layer (RFC 4918) over axum. Each method lives in its own module and
//! talks only to the [`dav_model::Repository`]; no storage decision is made here.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, Response, StatusCode};
use axum::Router;
use dav_model::Repository;

use crate::config::Settings;

mod body;
mod error;
mod get;
mod headers;
mod listing;
mod lock;
mod multistatus;
mod options;
mod propfind;
mod proppatch;
mod props;
mod put;
mod time;
mod tree;
mod uri;

pub use error::DavError;

/// What every handler needs.
#[derive(Clone)]
pub struct State {
    pub repo: Arc<Repository>,
    pub max_xml_bytes: usize,
    pub infinity_limit: u64,
}

impl State {
    pub fn new(repo: Arc<Repository>, s: &Settings) -> State {
        State { repo, max_xml_bytes: s.max_xml_bytes, infinity_limit: s.propfind_infinity_limit }
    }
}

pub type DavResult = Result<Response<Body>, DavError>;

pub fn router(state: State) -> Router {
    Router::new().fallback(move |req: Request| {
        let state = state.clone();
        async move { dispatch(state, req).await }
    })
}

async fn dispatch(state: State, req: Request) -> Response<Body> {
    let method = req.method().clone();
    let uri = req.uri().clone();
    let result = match method.as_str() {
        "OPTIONS" => options::options(),
        "GET" => get::get(&state, req, true).await,
        "HEAD" => get::get(&state, req, false).await,
        "PUT" => put::put(&state, req).await,
        "DELETE" => tree::delete(&state, req).await,
        "MKCOL" => tree::mkcol(&state, req).await,
        "COPY" => tree::transfer(&state, req, false).await,
        "MOVE" => tree::transfer(&state, req, true).await,
        "PROPFIND" => propfind::propfind(&state, req).await,
        "PROPPATCH" => proppatch::proppatch(&state, req).await,
        "LOCK" => lock::lock(&state, req).await,
        "UNLOCK" => lock::unlock(&state, req).await,
        _ => Err(DavError::MethodNotAllowed),
    };
    let mut resp = result.unwrap_or_else(|e| e.into_response(&method));
    tracing::debug!(%method, %uri, status = resp.status().as_u16(), "request");
    resp.headers_mut().insert("DAV", HeaderValue::from_static("1, 2"));
    resp.headers_mut().insert("MS-Author-Via", HeaderValue::from_static("DAV"));
    resp
}

/// A response with no body and the given status.
pub(crate) fn empty(status: StatusCode) -> Response<Body> {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = status;
    r
}
