//! GET and HEAD on a collection: the browser front end's page (whatever the `Accept`
//! header says: an HTML index is the one useful answer), or with `?download=zip` the
//! folder as a zip. Members come from the principal's `View`; the HTML lives in
//! `browser::page`.

use std::cmp::Ordering;

use axum::body::Body;
use axum::http::{header, HeaderValue, Response, Uri};
use dav_model::{Entry, Resource};

use super::browser::{self, Query, Sort};
use super::{Ctx, DavResult};

pub async fn listing(cx: &Ctx, uri: &Uri, coll: &Resource, with_body: bool) -> DavResult {
    let q = Query::parse(uri);
    if q.zip {
        return browser::download::zip(cx, coll, with_body).await;
    }
    let view = cx.view();
    let mut members = view.list(coll).await?;
    sort(&mut members, q.sort, q.desc);
    let offer = browser::page::Offer {
        here: view.allowed(&coll.path),
        members: members.iter().map(|m| view.allowed(&m.resource.path)).collect(),
    };
    let html = browser::page::render(&coll.path, &members, q.sort, q.desc, &offer);
    let len = html.len();
    let mut resp = Response::new(if with_body { Body::from(html) } else { Body::empty() });
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    // The page shows the tree as it is now; always ask again.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    browser::secure(h);
    Ok(resp)
}

/// Folders first, then by the column. Names (case-insensitively, then exactly) order the
/// ties, so the result is stable; `desc` reverses the column, never the folders-first.
fn sort(members: &mut [Entry], by: Sort, desc: bool) {
    members.sort_by_cached_key(|e| (e.resource.name().to_lowercase(), e.resource.name().to_owned()));
    if by == Sort::Name && desc {
        members.reverse();
    }
    members.sort_by(|a, b| {
        let (a, b) = (&a.resource, &b.resource);
        let column = match by {
            Sort::Name => Ordering::Equal,
            Sort::Size => a.size.cmp(&b.size),
            Sort::Modified => a.modified_ns.cmp(&b.modified_ns),
        };
        let column = if desc { column.reverse() } else { column };
        b.is_collection.cmp(&a.is_collection).then(column)
    });
}
