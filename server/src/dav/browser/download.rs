//! `GET /dir/?download=zip`: the folder's tree as a zip, built while it is sent. A task
//! walks the tree through the principal's `View` (so rights and shares apply as for any
//! other read) and streams each member's blob through; a small bounded channel to the
//! response body is the only buffer, so memory stays flat whatever the folder's size, and
//! a client that goes away stops the walk.

use std::io;

use axum::body::Body;
use axum::http::{header, HeaderValue, Response};
use bytes::Bytes;
use dav_model::identity::View;
use dav_model::{Error, Resource};
use futures_util::StreamExt;
use tokio::sync::mpsc;

use super::disposition::{self, Kind};
use super::zip::ZipWriter;
use crate::dav::{Ctx, DavResult};

/// Chunks in flight between the walk and the connection.
const CHANNEL: usize = 4;

type Tx = mpsc::Sender<io::Result<Bytes>>;

pub async fn zip(cx: &Ctx, coll: &Resource, with_body: bool) -> DavResult {
    let top = coll.path.name().unwrap_or("files").to_owned();
    let body = if with_body {
        let (tx, rx) = mpsc::channel(CHANNEL);
        let (repo, principal, root) = (cx.state.repo.clone(), cx.principal.clone(), coll.clone());
        let prefix = format!("{}/", member_name(&top));
        tokio::spawn(async move {
            let view = repo.view(&principal);
            if let Err(e) = write_tree(&view, root, prefix, &tx).await {
                tracing::debug!(error = %e, "zip download ended early");
                // The client sees a cut transfer rather than a well-formed but partial zip.
                let _ = tx.send(Err(e)).await;
            }
        });
        Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async { rx.recv().await.map(|c| (c, rx)) }))
    } else {
        Body::empty()
    };
    let mut resp = Response::new(body);
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/zip"));
    h.insert(header::CONTENT_DISPOSITION, disposition::value(Kind::Attachment, &format!("{top}.zip")));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    Ok(resp)
}

/// Depth first: a folder's entry, its files, then each subfolder, all sorted by name.
/// Only the folders still to visit are held, never file contents.
async fn write_tree(view: &View<'_>, root: Resource, prefix: String, tx: &Tx) -> io::Result<()> {
    let mut zip = ZipWriter::new();
    let mut pending = vec![(prefix, root)];
    while let Some((prefix, dir)) = pending.pop() {
        check_len(&prefix)?;
        send(tx, zip.directory(&prefix, secs(&dir))).await?;
        let mut members = view.list(&dir).await.map_err(model)?;
        members.sort_by(|a, b| a.resource.name().cmp(b.resource.name()));
        let mut subdirs = Vec::new();
        for m in members {
            let r = m.resource;
            let name = format!("{prefix}{}", member_name(r.name()));
            if r.is_collection {
                subdirs.push((format!("{name}/"), r));
            } else {
                write_file(view, &mut zip, &name, &r, tx).await?;
            }
        }
        pending.extend(subdirs.into_iter().rev());
    }
    send(tx, zip.finish()).await
}

async fn write_file(view: &View<'_>, zip: &mut ZipWriter, name: &str, r: &Resource, tx: &Tx) -> io::Result<()> {
    check_len(name)?;
    send(tx, zip.begin_file(name, r.size, secs(r))).await?;
    if r.size > 0 {
        let mut content = view.read_content(r, None).await.map_err(model)?;
        while let Some(chunk) = content.next().await {
            let chunk = chunk?;
            zip.data(&chunk);
            send(tx, chunk).await?;
        }
    }
    send(tx, zip.end_file()?).await
}

async fn send(tx: &Tx, b: Bytes) -> io::Result<()> {
    tx.send(Ok(b)).await.map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "client went away"))
}

/// A view name as a zip member name: `\` is a separator to Windows extractors, so it must
/// not let a name climb out of its folder.
fn member_name(name: &str) -> String {
    name.replace('\\', "_")
}

/// Zip names are at most 65535 bytes long.
fn check_len(name: &str) -> io::Result<()> {
    if name.len() > usize::from(u16::MAX) {
        return Err(io::Error::other("path too long for a zip member"));
    }
    Ok(())
}

fn secs(r: &Resource) -> i64 {
    r.modified_ns.div_euclid(1_000_000_000)
}

fn model(e: Error) -> io::Error {
    io::Error::other(e.to_string())
}
