//! PUT: the body streams into the model's atomic upload.

use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use dav_model::PutOptions;

use super::{body, empty, headers, uri, Ctx, DavError, DavResult};

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
        pre: headers::preconditions(h)?,
    };
    let outcome = cx.view().put(&path, body::content_stream(req.into_body()), opts).await?;
    let mut resp = empty(if outcome.created { StatusCode::CREATED } else { StatusCode::NO_CONTENT });
    if let Ok(v) = HeaderValue::from_str(&outcome.resource.etag) {
        resp.headers_mut().insert(header::ETAG, v);
    }
    Ok(resp)
}
