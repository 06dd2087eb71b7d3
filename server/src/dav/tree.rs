//! MKCOL, DELETE, COPY and MOVE: header parsing here, semantics in the model.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue, Method, Response, StatusCode};
use dav_model::{DavPath, Depth, Transfer, TransferOutcome};

use super::error::member_status;
use super::multistatus::Multistatus;
use super::{body, empty, headers, uri, Ctx, DavError, DavResult};

pub async fn mkcol(cx: &Ctx, req: Request) -> DavResult {
    let path = uri::request_path(req.uri())?;
    if body::has_body(req.headers()) {
        // RFC 4918 9.3: we define no MKCOL body, so any body is unsupported.
        return Err(DavError::UnsupportedMediaType);
    }
    let pre = headers::preconditions(&req)?;
    cx.view().mkcol(&path, &pre).await?;
    Ok(empty(StatusCode::CREATED))
}

pub async fn delete(cx: &Ctx, req: Request) -> DavResult {
    let path = uri::request_path(req.uri())?;
    if req.uri().path().contains('#') {
        return Err(DavError::BadRequest("fragment in request URI".into()));
    }
    let depth = headers::depth(req.headers(), Depth::Infinity)?;
    if depth != Depth::Infinity {
        return Err(DavError::BadRequest("DELETE takes Depth infinity".into()));
    }
    let pre = headers::preconditions(&req)?;
    cx.view().delete(&path, &pre).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

pub async fn transfer(cx: &Ctx, req: Request, moving: bool) -> DavResult {
    let h = req.headers();
    let src = uri::request_path(req.uri())?;
    let dest = h
        .get(headers::DESTINATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| DavError::BadRequest("missing Destination".into()))?;
    let dst = uri::local_target(dest, &uri::Own::of(h, req.extensions())).ok_or(DavError::BadGateway)??;
    let depth = headers::depth(h, Depth::Infinity)?;
    if moving && depth != Depth::Infinity {
        return Err(DavError::BadRequest("MOVE takes Depth infinity".into()));
    }
    let pre = headers::preconditions(&req)?;
    let outcome = cx
        .view()
        .transfer(Transfer {
            src: &src,
            dst: &dst,
            moving,
            depth,
            overwrite: headers::overwrite(h)?,
            pre: &pre,
            principal: None,
        })
        .await?;
    Ok(match outcome {
        TransferOutcome::Created => empty(StatusCode::CREATED),
        TransferOutcome::Replaced => empty(StatusCode::NO_CONTENT),
        TransferOutcome::Partial(failed) => partial(failed, req_method(moving)),
    })
}

fn req_method(moving: bool) -> Method {
    Method::from_bytes(if moving { b"MOVE" } else { b"COPY" }).unwrap_or(Method::POST)
}

/// 207 naming each member that could not be copied or moved between trees, with why.
fn partial(failed: Vec<(DavPath, dav_model::Error)>, method: Method) -> Response<Body> {
    let mut m = Multistatus::new();
    for (path, e) in failed {
        m.status_response(&uri::href(&path, false), member_status(e, &method));
    }
    let mut resp = Response::new(Body::from(m.finish()));
    *resp.status_mut() = StatusCode::MULTI_STATUS;
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/xml; charset=utf-8"));
    resp
}
