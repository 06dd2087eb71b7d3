//! Typed readings of the request headers WebDAV adds (Depth, Overwrite, Timeout,
//! Lock-Token, If) and the RFC 9110 validators, turned into model types.

use axum::http::{header, HeaderMap, HeaderName};
use dav_model::condition::{EtagMatch, Preconditions};
use dav_model::Depth;

use super::time::parse_http_date;
use super::uri::{local_target, Own};
use super::DavError;
use crate::if_header::parse_if_header;

/// WebDAV's own headers (RFC 4918 10), as values: a name given as text is parsed again
/// at every lookup.
pub const DEPTH: HeaderName = HeaderName::from_static("depth");
pub const OVERWRITE: HeaderName = HeaderName::from_static("overwrite");
pub const TIMEOUT: HeaderName = HeaderName::from_static("timeout");
pub const LOCK_TOKEN: HeaderName = HeaderName::from_static("lock-token");
pub const IF: HeaderName = HeaderName::from_static("if");
pub const DESTINATION: HeaderName = HeaderName::from_static("destination");

fn text(headers: &HeaderMap, name: HeaderName) -> Result<Option<&str>, DavError> {
    match headers.get(&name) {
        None => Ok(None),
        Some(v) => v.to_str().map(Some).map_err(|_| DavError::BadRequest(format!("{name} is not ASCII"))),
    }
}

/// The Depth header, or `default` when absent. Anything else than 0, 1, infinity is a 400.
pub fn depth(headers: &HeaderMap, default: Depth) -> Result<Depth, DavError> {
    match text(headers, DEPTH)?.map(str::trim) {
        None => Ok(default),
        Some("0") => Ok(Depth::Zero),
        Some("1") => Ok(Depth::One),
        Some(v) if v.eq_ignore_ascii_case("infinity") => Ok(Depth::Infinity),
        Some(v) => Err(DavError::BadRequest(format!("invalid Depth {v:?}"))),
    }
}

/// Overwrite: T (the default) or F.
pub fn overwrite(headers: &HeaderMap) -> Result<bool, DavError> {
    match text(headers, OVERWRITE)?.map(str::trim) {
        None | Some("T") | Some("t") => Ok(true),
        Some("F") | Some("f") => Ok(false),
        Some(v) => Err(DavError::BadRequest(format!("invalid Overwrite {v:?}"))),
    }
}

/// Timeout: a list of `Second-N` and `Infinite`; `None` stands for Infinite. Unknown
/// entries are skipped, as RFC 4918 10.7 lets the server pick.
pub fn timeouts(headers: &HeaderMap) -> Result<Vec<Option<u64>>, DavError> {
    let Some(v) = text(headers, TIMEOUT)? else { return Ok(Vec::new()) };
    Ok(v.split(',')
        .filter_map(|t| {
            let t = t.trim();
            if t.eq_ignore_ascii_case("infinite") {
                return Some(None);
            }
            let n = t.get(..7).filter(|p| p.eq_ignore_ascii_case("second-")).and(t.get(7..))?;
            n.parse::<u64>().ok().map(Some)
        })
        .collect())
}

/// The token of a `Lock-Token: <token>` header.
pub fn lock_token(headers: &HeaderMap) -> Result<String, DavError> {
    let v = text(headers, LOCK_TOKEN)?.ok_or_else(|| DavError::BadRequest("missing Lock-Token".into()))?;
    let v = v.trim();
    v.strip_prefix('<')
        .and_then(|s| s.strip_suffix('>'))
        .map(str::to_owned)
        .ok_or_else(|| DavError::BadRequest("Lock-Token must be a Coded-URL".into()))
}

fn etag_match(v: &str) -> EtagMatch {
    if v.trim() == "*" {
        return EtagMatch::Any;
    }
    EtagMatch::Tags(v.split(',').map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()).collect())
}

/// Every precondition header of the request.
pub fn preconditions<B>(req: &axum::http::Request<B>) -> Result<Preconditions, DavError> {
    let headers = req.headers();
    let if_header = match text(headers, IF)? {
        None => None,
        Some(v) => {
            let own = Own::of(headers, req.extensions());
            let resolve = |raw: &str| local_target(raw, &own).and_then(Result::ok);
            let parsed = parse_if_header(v, resolve).map_err(|e| DavError::BadRequest(format!("If header: {e}")))?;
            Some(parsed)
        }
    };
    Ok(Preconditions {
        if_header,
        if_match: text(headers, header::IF_MATCH)?.map(etag_match),
        if_none_match: text(headers, header::IF_NONE_MATCH)?.map(etag_match),
        if_modified_since: text(headers, header::IF_MODIFIED_SINCE)?.and_then(parse_http_date),
        if_unmodified_since: text(headers, header::IF_UNMODIFIED_SINCE)?.and_then(parse_http_date),
    })
}
