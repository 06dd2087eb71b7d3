//! PROPPATCH (RFC 4918 9.2): all instructions succeed together or none is applied.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue, Response, StatusCode};
use dav_model::PatchResult;

use super::multistatus::{Multistatus, Propstat};
use super::props::write_empty;
use super::{body, headers, uri, Ctx, DavResult};
use crate::xml::parse_proppatch;

pub async fn proppatch(cx: &Ctx, req: Request) -> DavResult {
    let path = uri::request_path(req.uri())?;
    let pre = headers::preconditions(&req)?;
    let body = body::read_xml(req.into_body(), cx.state.max_xml_bytes).await?;
    let ops = parse_proppatch(&body)?;
    let results = cx.view().proppatch(&path, &ops, &pre).await?;
    let target = cx.view().resolve(&path).await?;
    let collection = target.is_some_and(|r| r.is_collection);
    let group = |want: PatchResult| {
        let mut s = String::new();
        results.iter().filter(|(_, r)| *r == want).for_each(|(n, _)| write_empty(&mut s, n));
        s
    };
    let (ok, protected, invalid, failed) = (
        group(PatchResult::Ok),
        group(PatchResult::Protected),
        group(PatchResult::Invalid),
        group(PatchResult::FailedDependency),
    );
    let mut stats = Vec::new();
    if !ok.is_empty() {
        stats.push(Propstat { status: StatusCode::OK, props: &ok, error: None });
    }
    if !protected.is_empty() {
        let error = Some("cannot-modify-protected-property");
        stats.push(Propstat { status: StatusCode::FORBIDDEN, props: &protected, error });
    }
    if !invalid.is_empty() {
        // A value the model could not interpret (a time that is no date): 409, as RFC 4918
        // 9.2.1 suggests for "semantics of the property" violations.
        stats.push(Propstat { status: StatusCode::CONFLICT, props: &invalid, error: None });
    }
    if !failed.is_empty() {
        stats.push(Propstat { status: StatusCode::FAILED_DEPENDENCY, props: &failed, error: None });
    }
    let mut ms = Multistatus::new();
    ms.response(&uri::href(&path, collection), &stats);
    let mut resp = Response::new(Body::from(ms.finish()));
    *resp.status_mut() = StatusCode::MULTI_STATUS;
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/xml; charset=utf-8"));
    Ok(resp)
}
