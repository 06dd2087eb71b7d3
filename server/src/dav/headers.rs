//! Typed readings of the request headers WebDAV adds (Depth, Overwrite, Timeout,
//! Lock-Token, If) and the RFC 9110 validators, turned into model types.

use axum::http::{header, HeaderMap};
use dav_model::condition::{EtagMatch, Preconditions};
use dav_model::Depth;

use super::time::parse_http_date;
use super::uri::{local_target, Own};
use super::DavError;
use crate::if_header::parse_if_header;

fn text<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, DavError> {
    match headers.get(name) {
        None => Ok(None),
        Some(v) => v.to_str().map(Some).map_err(|_| DavError::BadRequest(format!("{name} is not ASCII"))),
    }
}

/// The Depth header, or `default` when absent. Anything else than 0, 1, infinity is a 400.
pub fn depth(headers: &HeaderMap, default: Depth) -> Result<Depth, DavError> {
    match text(headers, "depth")?.map(str::trim) {
        None => Ok(default),
        Some("0") => Ok(Depth::Zero),
        Some("1") => Ok(Depth::One),
        Some(v) if v.eq_ignore_ascii_case("infinity") => Ok(Depth::Infinity),
        Some(v) => Err(DavError::BadRequest(format!("invalid Depth {v:?}"))),
    }
}

/// Overwrite: T (the default) or F.
pub fn overwrite(headers: &HeaderMap) -> Result<bool, DavError> {
    match text(headers, "overwrite")?.map(str::trim) {
        None | Some("T") | Some("t") => Ok(true),
        Some("F") | Some("f") => Ok(false),
        Some(v) => Err(DavError::BadRequest(format!("invalid Overwrite {v:?}"))),
    }
}

/// Timeout: a list of `Second-N` and `Infinite`; `None` stands for Infinite. Unknown
/// entries are skipped, as RFC 4918 10.7 lets the server pick.
pub fn timeouts(headers: &HeaderMap) -> Result<Vec<Option<u64>>, DavError> {
    let Some(v) = text(headers, "timeout")? else { return Ok(Vec::new()) };
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
    let v = text(headers, "lock-token")?.ok_or_else(|| DavError::BadRequest("missing Lock-Token".into()))?;
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
    let if_header = match text(headers, "if")? {
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
        if_match: text(headers, header::IF_MATCH.as_str())?.map(etag_match),
        if_none_match: text(headers, header::IF_NONE_MATCH.as_str())?.map(etag_match),
        if_modified_since: text(headers, header::IF_MODIFIED_SINCE.as_str())?.and_then(parse_http_date),
        if_unmodified_since: text(headers, header::IF_UNMODIFIED_SINCE.as_str())?.and_then(parse_http_date),
    })
}
