//! OPTIONS: advertises class 1 and 2 compliance and the methods. The same answer for
//! every path, existing or not, so it reveals nothing but the server's capabilities.

use axum::http::{header, HeaderValue, StatusCode};

use super::{empty, DavResult};

pub const ALLOW: &str = "OPTIONS, GET, HEAD, PUT, DELETE, MKCOL, COPY, MOVE, PROPFIND, PROPPATCH, LOCK, UNLOCK";

pub fn options() -> DavResult {
    let mut r = empty(StatusCode::OK);
    r.headers_mut().insert(header::ALLOW, HeaderValue::from_static(ALLOW));
    r.headers_mut().insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    Ok(r)
}
