//! LOCK and UNLOCK (RFC 4918 9.10, 9.11). A LOCK without a body refreshes the lock whose
//! token the `If` header names.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue, Response, StatusCode};
use dav_model::{ActiveLock, Depth, LockRequest, LockScope};

use super::props::write_activelock;
use super::quirks::Quirks;
use super::{body, empty, headers, uri, Ctx, DavError, DavResult};
use crate::xml::{self, parse_lockinfo};

pub async fn lock(cx: &Ctx, req: Request) -> DavResult {
    let path = uri::request_path(req.uri())?;
    let pre = headers::preconditions(&req)?;
    let timeouts = headers::timeouts(req.headers())?;
    let depth = headers::depth(req.headers(), Depth::Infinity)?;
    let lockroot = !Quirks::of(req.headers()).no_lockroot;
    let body = body::read_xml(req.into_body(), cx.state.max_xml_bytes).await?;
    let Some(info) = parse_lockinfo(&body)? else {
        let lock = cx.view().refresh_lock(&path, &pre, &timeouts).await?;
        return Ok(answer(&lock, StatusCode::OK, false, lockroot));
    };
    if depth == Depth::One {
        return Err(DavError::BadRequest("LOCK takes Depth 0 or infinity".into()));
    }
    let request = LockRequest {
        scope: match info.scope {
            xml::LockScope::Exclusive => LockScope::Exclusive,
            xml::LockScope::Shared => LockScope::Shared,
        },
        depth_infinite: depth == Depth::Infinity,
        owner_xml: info.owner,
        principal: None,
        timeouts,
    };
    let (lock, created) = cx.view().lock(&path, request, &pre).await?;
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok(answer(&lock, status, true, lockroot))
}

fn answer(lock: &ActiveLock, status: StatusCode, with_token: bool, lockroot: bool) -> Response<Body> {
    let mut xml =
        String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<D:prop xmlns:D=\"DAV:\"><D:lockdiscovery>");
    write_activelock(&mut xml, lock, lockroot);
    xml.push_str("</D:lockdiscovery></D:prop>");
    let mut resp = Response::new(Body::from(xml));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/xml; charset=utf-8"));
    if with_token {
        if let Ok(v) = HeaderValue::from_str(&format!("<{}>", lock.token)) {
            h.insert(super::headers::LOCK_TOKEN, v);
        }
    }
    resp
}

pub async fn unlock(cx: &Ctx, req: Request) -> DavResult {
    let path = uri::request_path(req.uri())?;
    let token = headers::lock_token(req.headers())?;
    cx.view().unlock(&path, &token).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}
