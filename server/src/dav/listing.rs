//! A plain HTML index for GET on a collection, so a browser can at least browse and
//! download. The full file-browser page is a later front end's job.

use std::fmt::Write;

use axum::body::Body;
use axum::http::{header, HeaderValue, Response};
use dav_model::Resource;

use super::multistatus::escape;
use super::{uri, Ctx, DavResult};

pub async fn listing(cx: &Ctx, coll: &Resource, with_body: bool) -> DavResult {
    let entries = cx.view().list(coll).await?;
    let title = escape(&uri::href(&coll.path, true)).into_owned();
    let mut html = format!("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title></head><body><h1>{title}</h1><ul>\n");
    if !coll.path.is_root() {
        html.push_str("<li><a href=\"../\">../</a></li>\n");
    }
    for e in &entries {
        let r = &e.resource;
        let href = escape(&uri::href(&r.path, r.is_collection)).into_owned();
        let slash = if r.is_collection { "/" } else { "" };
        let _ = writeln!(html, "<li><a href=\"{href}\">{}{slash}</a></li>", escape(r.name()));
    }
    html.push_str("</ul></body></html>\n");
    let len = html.len();
    let mut resp = Response::new(if with_body { Body::from(html) } else { Body::empty() });
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    Ok(resp)
}
