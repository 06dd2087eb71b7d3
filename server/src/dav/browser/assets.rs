//! The page's stylesheet and script, embedded in the binary (no CDN, no build step) and
//! served for `?asset=NAME` on any URL, before authentication: they are the same public
//! files for everyone, and a query parameter reserves no name in anybody's tree. The page
//! links them with a content hash (`&v=`), so they can be cached for good.

use std::sync::OnceLock;

use axum::body::Body;
use axum::http::{header, HeaderValue, Method, Response, StatusCode};

use super::{secure, Query};
use crate::dav::empty;

struct Asset {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

const ASSETS: &[Asset] = &[
    Asset {
        name: "app.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../../../assets/app.css"),
    },
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../../assets/app.js"),
    },
    Asset { name: "favicon.svg", content_type: "image/svg+xml", bytes: include_bytes!("../../../assets/favicon.svg") },
];

/// A short hash of all assets, changing whenever any of them does.
pub fn version() -> &'static str {
    static V: OnceLock<String> = OnceLock::new();
    V.get_or_init(|| {
        let mut h = blake3::Hasher::new();
        for a in ASSETS {
            h.update(a.bytes);
        }
        h.finalize().to_hex()[..12].to_owned()
    })
}

/// The URL of an asset, for the page's links.
pub fn url(name: &str) -> String {
    format!("{}/?asset={name}&v={}", crate::dav::uri::base_path(), version())
}

/// The answer to a GET or HEAD naming an asset, or `None` when the request names none.
pub fn serve(method: &Method, query: &Query) -> Option<Response<Body>> {
    let name = query.asset.as_deref()?;
    if method != Method::GET && method != Method::HEAD {
        return None;
    }
    let Some(a) = ASSETS.iter().find(|a| a.name == name) else {
        return Some(empty(StatusCode::NOT_FOUND));
    };
    let body = if method == Method::GET { Body::from(a.bytes) } else { Body::empty() };
    let mut resp = Response::new(body);
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(a.content_type));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(a.bytes.len()));
    let cache =
        if query.version.as_deref() == Some(version()) { "public, max-age=31536000, immutable" } else { "no-cache" };
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    secure(h);
    Some(resp)
}
