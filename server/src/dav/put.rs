//! PUT: the body streams into the model's atomic upload.

use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use dav_model::times::parse_unix_seconds;
use dav_model::PutOptions;

use super::{body, empty, headers, uri, Ctx, DavError, DavResult};

/// The ownCloud convention (GVfs, ownCloud and Nextcloud clients): the file's modification
/// time in Unix seconds. Answered with `X-OC-MTime: accepted` when applied.
const X_OC_MTIME: &str = "x-oc-mtime";
/// macOS Finder sends its chunked uploads' length here; a body of another length was cut.
const X_EXPECTED_ENTITY_LENGTH: &str = "x-expected-entity-length";

pub async fn put(cx: &Ctx, req: Request) -> DavResult {
    let path = uri::request_path(req.uri())?;
    let h = req.headers();
    if h.contains_key(header::CONTENT_RANGE) {
        // RFC 9110 14.5: a server that doesn't apply partial PUTs must refuse them.
        return Err(DavError::BadRequest("Content-Range on PUT is not supported".into()));
    }
    let opts = PutOptions {
        content_type: h.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned),
        principal: None,
        pre: headers::preconditions(&req)?,
        // Both are client conventions, not HTTP: a value that doesn't parse is ignored.
        modified_ns: text(h, X_OC_MTIME).and_then(parse_unix_seconds),
        expected_len: text(h, X_EXPECTED_ENTITY_LENGTH).and_then(|v| v.trim().parse().ok()),
        resume_at: None,
        length_hint: http_body::Body::size_hint(req.body()).exact(),
    };
    let mtime_set = opts.modified_ns.is_some();
    let outcome = cx.view().put(&path, body::content_stream(req.into_body()), opts).await?;
    let mut resp = empty(if outcome.created { StatusCode::CREATED } else { StatusCode::NO_CONTENT });
    if let Ok(v) = HeaderValue::from_str(&outcome.resource.etag) {
        resp.headers_mut().insert(header::ETAG, v);
    }
    if mtime_set {
        resp.headers_mut().insert("x-oc-mtime", HeaderValue::from_static("accepted"));
    }
    Ok(resp)
}

fn text<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}
