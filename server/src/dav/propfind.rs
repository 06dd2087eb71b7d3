//! PROPFIND (RFC 4918 9.1): allprop (with include), propname and prop, Depth 0, 1 and
//! infinity. The answer is streamed: a task walks the tree and sends chunks as they fill.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue, Response, StatusCode};
use bytes::Bytes;
use dav_model::identity::View;
use dav_model::{Depth, Entry, Error, PropName, Quota};
use tokio::sync::mpsc;

use super::multistatus::{Multistatus, Propstat};
use super::props::{live_names, write_empty, write_live, write_value};
use super::quirks::{compact_keeps_dead, Quirks, COMPACT_LIVE};
use super::{body, headers, uri, Ctx, DavResult};
use crate::xml::{parse_propfind, PropfindRequest};

pub async fn propfind(cx: &Ctx, req: Request) -> DavResult {
    let path = uri::request_path(req.uri())?;
    let depth = headers::depth(req.headers(), Depth::Infinity)?;
    let pre = headers::preconditions(&req)?;
    let mut quirks = Quirks::of(req.headers());
    // The compact allprop is for listings, where Windows' size limit bites. Asking about one
    // resource, Explorer gets every property, `supportedlock` and `lockdiscovery` included.
    quirks.compact_allprop &= depth != Depth::Zero;
    let body = body::read_xml(req.into_body(), cx.state.max_xml_bytes).await?;
    let request = parse_propfind(&body)?;
    let view = cx.view();
    let target = view.resolve(&path).await?.ok_or(Error::NotFound)?;
    view.check_read(&path, Some(&target), &pre, false).await?;
    if depth == Depth::Infinity && target.is_collection {
        let n = view.count_below(&target, cx.state.infinity_limit).await?;
        if n > cx.state.infinity_limit {
            return Err(Error::InfiniteDepthTooLarge(cx.state.infinity_limit).into());
        }
    }
    let wants_quota = match &request {
        PropfindRequest::Prop(names) => names.iter().any(|n| n.is_dav() && n.local.starts_with("quota-")),
        PropfindRequest::AllProp { include } => include.iter().any(|n| n.is_dav() && n.local.starts_with("quota-")),
        PropfindRequest::PropName => false,
    };
    let quota = if wants_quota { Some(view.quota(&path).await?) } else { None };
    let root = view.entry(&target).await?;
    let (tx, rx) = mpsc::channel::<std::io::Result<Bytes>>(4);
    let (repo, principal) = (cx.state.repo.clone(), cx.principal.clone());
    tokio::spawn(async move {
        let view = repo.view(&principal);
        let single = depth == Depth::Zero;
        let walk = Walk { view: &view, request: &request, quota, quirks, single, tx: &tx };
        if let Err(e) = walk.run(root, depth).await {
            tracing::error!(error = %e, "PROPFIND stream aborted");
            let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
        }
    });
    // poll_fn over the receiver, not unfold: layers such as compression may poll again
    // after the end, which unfold answers with a panic.
    let mut rx = rx;
    let stream = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
    let mut resp = Response::new(Body::from_stream(stream));
    *resp.status_mut() = StatusCode::MULTI_STATUS;
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/xml; charset=utf-8"));
    Ok(resp)
}

/// Scratch space for one response's two propstats, reused across every member.
#[derive(Default)]
struct Buffers {
    found: String,
    missing: String,
}

struct Walk<'a> {
    view: &'a View<'a>,
    request: &'a PropfindRequest,
    quota: Option<Quota>,
    quirks: Quirks,
    /// A Depth 0 request: its allprop also carries `supportedlock`, which is the same for
    /// every resource and so left out of listings, where it would only add size.
    single: bool,
    tx: &'a mpsc::Sender<std::io::Result<Bytes>>,
}

impl Walk<'_> {
    async fn run(&self, root: Entry, depth: Depth) -> Result<(), Error> {
        let mut ms = Multistatus::new();
        let mut bufs = Buffers::default();
        let mut stack = Vec::new();
        if root.resource.is_collection && depth != Depth::Zero {
            stack.push((root.resource.clone(), depth == Depth::Infinity));
        }
        self.write(&mut ms, &root, &mut bufs);
        while let Some((coll, deeper)) = stack.pop() {
            for entry in self.view.list(&coll).await? {
                self.write(&mut ms, &entry, &mut bufs);
                if let Some(chunk) = ms.ready_chunk() {
                    self.send(chunk).await?;
                }
                if deeper && entry.resource.is_collection {
                    stack.push((entry.resource, true));
                }
            }
        }
        self.send(ms.finish()).await
    }

    async fn send(&self, chunk: Bytes) -> Result<(), Error> {
        // A closed channel means the client went away: stop walking.
        self.tx.send(Ok(chunk)).await.map_err(|_| Error::Aborted("client disconnected".into()))
    }

    fn write(&self, ms: &mut Multistatus, entry: &Entry, bufs: &mut Buffers) {
        let href = uri::href(&entry.resource.path, entry.resource.is_collection);
        let Buffers { found, missing } = bufs;
        found.clear();
        missing.clear();
        match self.request {
            PropfindRequest::PropName => {
                for n in live_names(entry, false) {
                    write_empty(found, &PropName::dav(n));
                }
                for d in &entry.dead {
                    write_empty(found, &d.name);
                }
            }
            PropfindRequest::AllProp { include } => {
                let compact = self.quirks.compact_allprop;
                let single = self.single.then_some("supportedlock");
                let live =
                    || live_names(entry, true).filter(move |n| !compact || COMPACT_LIVE.contains(n)).chain(single);
                let dead =
                    || entry.dead.iter().filter(move |d| !compact || compact_keeps_dead(&d.name.ns, &d.name.local));
                for n in live() {
                    write_value(found, n, entry, self.quota, self.lockroot());
                }
                for d in dead() {
                    found.push_str(&d.xml);
                }
                for n in include {
                    let shown = (n.is_dav() && live().any(|l| l == n.local)) || dead().any(|d| &d.name == n);
                    if !shown {
                        self.write_named(entry, n, found, missing);
                    }
                }
            }
            PropfindRequest::Prop(names) => {
                for n in names {
                    self.write_named(entry, n, found, missing);
                }
            }
        }
        let mut stats = Vec::with_capacity(2);
        if !found.is_empty() || missing.is_empty() {
            stats.push(Propstat { status: StatusCode::OK, props: found, error: None });
        }
        if !missing.is_empty() {
            stats.push(Propstat { status: StatusCode::NOT_FOUND, props: missing, error: None });
        }
        ms.response(&href, &stats);
    }

    fn lockroot(&self) -> bool {
        !self.quirks.no_lockroot
    }

    fn write_named(&self, entry: &Entry, n: &PropName, found: &mut String, missing: &mut String) {
        if let Some(d) = entry.dead.iter().find(|d| &d.name == n) {
            found.push_str(&d.xml);
        } else if !(n.is_dav() && write_live(found, &n.local, entry, self.quota, self.lockroot())) {
            write_empty(missing, n);
        }
    }
}
