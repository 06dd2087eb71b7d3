//! GET and HEAD: content streamed from the blob store, with single and multiple byte
//! ranges (RFC 9110 14), If-Range, and conditional requests answered by the model.

use std::ops::Range;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, Response, StatusCode};
use bytes::Bytes;
use dav_model::{ByteStream, Error, Resource};
use futures_util::StreamExt;

use super::props::content_type;
use super::time::{http_date_bytes, parse_http_date};
use super::{empty, headers, uri, Ctx, DavResult};
use crate::zero_copy::ZeroCopy;

/// More ranges than this in one request are answered with the whole content instead.
const MAX_RANGES: usize = 32;

pub async fn get(cx: &Ctx, req: Request, with_body: bool) -> DavResult {
    let path = uri::request_path(req.uri())?;
    let target = cx.view().resolve_for_read(&path).await?.ok_or(Error::NotFound)?;
    let pre = headers::preconditions(&req)?;
    match cx.view().check_read(&path, Some(&target), &pre, true).await {
        Err(Error::NotModified) => {
            let mut r = empty(StatusCode::NOT_MODIFIED);
            validators(r.headers_mut(), &target);
            return Ok(r);
        }
        other => other?,
    }
    if target.is_collection {
        return super::listing::listing(cx, req.uri(), &target, with_body).await;
    }
    let ranges = requested_ranges(req.headers(), &target);
    let ctype = content_type(&target).to_owned();
    let body = Sender { cx, zero_copy: req.extensions().get::<ZeroCopy>(), with_body };
    let mut resp = match ranges {
        None => whole(body, &target).await?,
        Some(r) if r.is_empty() => {
            let mut resp = empty(StatusCode::RANGE_NOT_SATISFIABLE);
            let v = format!("bytes */{}", target.size);
            resp.headers_mut().insert(header::CONTENT_RANGE, hv(&v));
            return Ok(resp);
        }
        Some(r) if r.len() == 1 => single(body, &target, r[0].clone()).await?,
        Some(r) => return multiple(cx, &target, r, &ctype, with_body).await,
    };
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, hv(&ctype));
    super::browser::file_headers(req.uri(), &target, &ctype, h);
    Ok(resp)
}

fn hv(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"))
}

fn validators(h: &mut HeaderMap, r: &Resource) {
    h.insert(header::ETAG, hv(&r.etag));
    if let Ok(v) = HeaderValue::from_bytes(&http_date_bytes(r.modified_ns)) {
        h.insert(header::LAST_MODIFIED, v);
    }
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
}

/// How a response's content is sent: not at all (HEAD), streamed, or by the connection from
/// the file when it can (see `zero_copy.rs`).
#[derive(Clone, Copy)]
struct Sender<'a> {
    cx: &'a Ctx,
    zero_copy: Option<&'a ZeroCopy>,
    with_body: bool,
}

impl Sender<'_> {
    async fn content(self, r: &Resource, range: Option<Range<u64>>) -> Result<Body, Error> {
        if !self.with_body {
            return Ok(Body::empty());
        }
        let stream = self.cx.view().read_content(r, range).await?;
        match (self.zero_copy, wharf_backends::file_span(&stream)) {
            (Some(zero_copy), Some(span)) => Ok(zero_copy.body(span)),
            _ => Ok(Body::from_stream(stream)),
        }
    }
}

/// A response with room for a file's headers (validators, length, type, disposition and
/// the ones every answer gets), so that they are not inserted into a map that grows twice.
fn file_response(body: Body) -> Response<Body> {
    let mut resp = Response::new(body);
    *resp.headers_mut() = HeaderMap::with_capacity(12);
    resp
}

async fn whole(body: Sender<'_>, r: &Resource) -> DavResult {
    let mut resp = file_response(body.content(r, None).await?);
    validators(resp.headers_mut(), r);
    resp.headers_mut().insert(header::CONTENT_LENGTH, HeaderValue::from(r.size));
    Ok(resp)
}

async fn single(body: Sender<'_>, r: &Resource, range: Range<u64>) -> DavResult {
    let len = range.end - range.start;
    let cr = format!("bytes {}-{}/{}", range.start, range.end - 1, r.size);
    let mut resp = file_response(body.content(r, Some(range)).await?);
    *resp.status_mut() = StatusCode::PARTIAL_CONTENT;
    validators(resp.headers_mut(), r);
    resp.headers_mut().insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    resp.headers_mut().insert(header::CONTENT_RANGE, hv(&cr));
    Ok(resp)
}

/// A `multipart/byteranges` body, streamed part by part; its length is known up front.
async fn multiple(cx: &Ctx, r: &Resource, ranges: Vec<Range<u64>>, ctype: &str, with_body: bool) -> DavResult {
    let boundary = format!("wharf-{}", &r.etag.trim_matches('"').chars().take(16).collect::<String>());
    let heads: Vec<String> = ranges
        .iter()
        .map(|g| {
            format!(
                "\r\n--{boundary}\r\nContent-Type: {ctype}\r\nContent-Range: bytes {}-{}/{}\r\n\r\n",
                g.start,
                g.end - 1,
                r.size
            )
        })
        .collect();
    let tail = format!("\r\n--{boundary}--\r\n");
    let total: u64 = heads.iter().map(|h| h.len() as u64).sum::<u64>()
        + ranges.iter().map(|g| g.end - g.start).sum::<u64>()
        + tail.len() as u64;
    let body = if with_body {
        let mut parts: Vec<ByteStream> = Vec::new();
        for (head, g) in heads.into_iter().zip(ranges) {
            parts.push(Box::pin(futures_util::stream::once(async move { Ok(Bytes::from(head)) })));
            parts.push(cx.view().read_content(r, Some(g)).await?);
        }
        parts.push(Box::pin(futures_util::stream::once(async move { Ok(Bytes::from(tail)) })));
        Body::from_stream(futures_util::stream::iter(parts).flatten())
    } else {
        Body::empty()
    };
    let mut resp = Response::new(body);
    *resp.status_mut() = StatusCode::PARTIAL_CONTENT;
    validators(resp.headers_mut(), r);
    let h = resp.headers_mut();
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(total));
    h.insert(header::CONTENT_TYPE, hv(&format!("multipart/byteranges; boundary={boundary}")));
    Ok(resp)
}

/// The satisfiable ranges asked for; `None` means "send everything" (no or unusable
/// Range header, or a failed If-Range), an empty list means 416.
fn requested_ranges(h: &HeaderMap, r: &Resource) -> Option<Vec<Range<u64>>> {
    let spec = h.get(header::RANGE)?.to_str().ok()?.trim();
    if let Some(ir) = h.get(header::IF_RANGE).and_then(|v| v.to_str().ok()) {
        let ir = ir.trim();
        let fresh = if ir.starts_with('"') {
            ir == r.etag
        } else {
            parse_http_date(ir) == Some(r.modified_ns.div_euclid(1_000_000_000))
        };
        if !fresh {
            return None;
        }
    }
    parse_ranges(spec, r.size)
}

/// The satisfiable parts of a `bytes=` range set over `size` bytes, each non-empty and within
/// the content; `None` for a set that is not understood or asks for too many parts.
pub fn parse_ranges(spec: &str, size: u64) -> Option<Vec<Range<u64>>> {
    let sets = spec.strip_prefix("bytes=")?;
    let mut out = Vec::new();
    for part in sets.split(',') {
        let (a, b) = part.trim().split_once('-')?;
        let range = match (a.trim(), b.trim()) {
            ("", n) => {
                let n: u64 = n.parse().ok()?;
                (n > 0).then(|| size.saturating_sub(n)..size)
            }
            (a, "") => Some(a.parse().ok()?..size),
            (a, b) => {
                let (a, b): (u64, u64) = (a.parse().ok()?, b.parse().ok()?);
                if b < a {
                    return None;
                }
                Some(a..b.saturating_add(1).min(size))
            }
        };
        if let Some(g) = range.filter(|g| g.start < size && g.start < g.end) {
            out.push(g);
        }
        if out.len() > MAX_RANGES {
            return None;
        }
    }
    Some(out)
}
