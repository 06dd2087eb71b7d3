//! The model's operations on a mounted tree. Each decides exactly as its native twin does
//! (same lock checks, same conditions, same errors); only names and bytes come from the
//! tree. Writes stage their bytes first, then check and act inside a write transaction of
//! the database, so a lock or a condition can't change between the check and the act.

use std::ops::Range;

use wharf_backends::{ByteStream, Install, Kind, Meta, StageOptions};

use super::{props, resource_of, At};
use crate::condition::{EtagMatch, Preconditions};
use crate::db::Handle;
use crate::lock::{check_write, drop_subtree_locks, locks_in_scope, ActiveLock, WriteScope};
use crate::path::DavPath;
use crate::proppatch::{judge, op_name, refusals};
use crate::props::{PatchOp, PatchResult, PropName};
use crate::resource::{Entry, Resource};
use crate::times::time_prop;
use crate::{Error, PutOptions, PutOutcome, Repository, Result};

/// What is at `at` right now; special files are refused outright (never opened).
pub(crate) async fn stat(at: &At, path: &DavPath) -> Result<Option<Resource>> {
    match at.tree()?.stat(&at.rel).await? {
        Some(meta) if meta.kind == Kind::Special => Err(Error::Forbidden(format!("{path} is not a regular file"))),
        Some(meta) => Ok(Some(resource_of(path.clone(), &meta))),
        None => Ok(None),
    }
}

/// Files up to this size are read by GET's look-up itself.
const SMALL_BODY: u64 = 256 * 1024;

/// [`stat`] for a GET: a small file comes with its content, read in the same trip to the
/// disk as its metadata (the read's own check that it is still that version then holds
/// by construction). Anything else is looked up as usual.
pub(crate) async fn stat_for_read(at: &At, path: &DavPath) -> Result<Option<Resource>> {
    let Ok((meta, mut stream)) = at.tree()?.read(&at.rel, None).await else {
        return stat(at, path).await;
    };
    let mut r = resource_of(path.clone(), &meta);
    if meta.size <= SMALL_BODY {
        let mut body = bytes::BytesMut::with_capacity(meta.size as usize);
        while let Some(chunk) = futures_util::StreamExt::next(&mut stream).await {
            body.extend_from_slice(&chunk.map_err(wharf_backends::Error::Io)?);
        }
        // Shorter means cut while being read: read again, checked, when it is needed.
        r.small_body = (body.len() as u64 == meta.size).then(|| body.freeze());
    }
    Ok(Some(r))
}

/// The parent directory of `at` must exist (409 otherwise, as on the native store).
async fn parent_dir(at: &At) -> Result<()> {
    let parent = at.parent().ok_or_else(|| Error::NotAllowed("the root has no parent".into()))?;
    match parent.tree()?.stat(&parent.rel).await? {
        Some(m) if m.is_dir() => Ok(()),
        _ => Err(Error::Conflict("parent collection missing".into())),
    }
}

impl Repository {
    pub(crate) async fn mounted_entry(&self, at: &At, resource: &Resource) -> Result<Entry> {
        let mut conn = self.read.acquire().await?;
        let dead = match &resource.node {
            Some(node) => props::of(&mut conn, at, node).await?,
            None => Vec::new(),
        };
        let locks = self.locks_for_read(&mut conn, &resource.path).await?;
        let locks = locks.into_iter().filter(|l| l.covers(&resource.path)).collect();
        Ok(Entry { resource: resource.clone(), dead, locks })
    }

    /// One pass over the directory, then one query for the members' dead properties and
    /// one for the locks in scope: never a query per member.
    pub(crate) async fn mounted_list(&self, at: &At, parent: &Resource) -> Result<Vec<Entry>> {
        let mut members = at.tree()?.list(&at.rel).await?;
        members.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        let mut conn = self.read.acquire().await?;
        let mut dead = props::of_members(&mut conn, at, &members).await?;
        let locks = self.locks_for_read(&mut conn, &parent.path).await?;
        let mut out = Vec::with_capacity(members.len());
        for e in members {
            let Ok(path) = parent.path.join(&e.name) else {
                tracing::warn!(name = %e.name, dir = %parent.path, "a member's name can't be a path segment: skipped");
                continue;
            };
            out.push(Entry {
                dead: if dead.is_empty() { Vec::new() } else { dead.remove(&e.name).unwrap_or_default() },
                locks: locks.iter().filter(|l| l.covers(&path)).cloned().collect(),
                resource: resource_of(path, &e.meta),
            });
        }
        Ok(out)
    }

    /// Members below `at`, walking the tree, counting at most to `cap + 1`.
    pub(crate) async fn mounted_count_below(&self, at: &At, cap: u64) -> Result<u64> {
        let tree = at.tree()?;
        let mut n = 0u64;
        let mut pending = vec![at.rel.clone()];
        while let Some(dir) = pending.pop() {
            for e in tree.list(&dir).await? {
                n += 1;
                if n > cap {
                    return Ok(n);
                }
                if e.meta.is_dir() {
                    let mut sub = dir.clone();
                    sub.push(e.name);
                    pending.push(sub);
                }
            }
        }
        Ok(n)
    }

    /// The content as the caller decided on it: if the file changed since (another
    /// program wrote it), the headers already chosen would describe other bytes.
    pub(crate) async fn mounted_read(
        &self,
        at: &At,
        resource: &Resource,
        range: Option<Range<u64>>,
    ) -> Result<ByteStream> {
        if resource.is_collection {
            return Err(Error::NotAllowed("a collection has no content".into()));
        }
        let (meta, stream) = at.tree()?.read(&at.rel, range).await?;
        if meta.version() != resource.etag {
            return Err(Error::Conflict(format!("{} changed while it was being opened; try again", resource.path)));
        }
        Ok(stream)
    }

    /// A PUT on a mounted tree: the body is staged beside its target, then installed by
    /// one rename. Without conditions, a resumed body or any lock in the repository, the
    /// rename happens under the write connection alone (which keeps a LOCK from slipping
    /// in between) and the database is touched only to carry a replaced file's
    /// properties over; otherwise inside a transaction that checks everything again.
    pub(crate) async fn mounted_put(
        &self,
        at: &At,
        path: &DavPath,
        body: ByteStream,
        opts: PutOptions,
    ) -> Result<PutOutcome> {
        let tree = at.tree()?;
        if at.rel.is_empty() {
            return Err(Error::NotAllowed("PUT on a collection".into()));
        }
        let resuming = opts.resume_at.is_some_and(|n| n > 0);
        let capped = at.mount.info.quota_bytes.is_some();
        let plain = !resuming && !capped && opts.pre.is_empty() && !self.lock_rows.may_exist();
        // Refuse before a byte is read when the answer can't be a success; the plain case
        // learns what it replaced from the install itself.
        let mut current = None;
        if !plain {
            // In the native store's order: conditions, then the parent, then the target.
            current = stat(at, path).await?;
            let mut conn = self.read.acquire().await?;
            let locks = self.locks_for_read(&mut conn, path).await?;
            self.evaluate(&mut conn, path, current.as_ref(), &opts.pre, &locks).await?;
            parent_dir(at).await?;
            check_put(path, current.as_ref(), &locks, &opts)?;
        }
        let (body, prefix_of) = match opts.resume_at.filter(|&n| n > 0) {
            Some(n) => self.resumed_body(current.clone(), n, body).await?,
            None => (body, None),
        };
        // Under a cap, a body may not grow past what is left of it while it arrives.
        let room = match at.mount.info.quota_bytes {
            Some(cap) => Some(cap.saturating_sub(at.mount.used().await?) + current.as_ref().map_or(0, |r| r.size)),
            None => None,
        };
        let limit = match (self.config.max_upload_bytes, room) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let stage = StageOptions { limit, modified_ns: opts.modified_ns };
        let staged = match tree.stage(&at.rel, body, stage).await {
            Ok(staged) => staged,
            Err(wharf_backends::Error::TooLarge(n)) if Some(n) == room => return Err(Error::InsufficientStorage),
            Err(other) => return Err(refused(at, other).await),
        };
        if let Some(expected) = opts.expected_len.filter(|&n| n != staged.size) {
            let size = staged.size;
            return Err(Error::BadRequest(format!("body of {size} bytes where {expected} were announced")));
        }
        if plain {
            let gate = self.lock_gate.read().await;
            if !self.lock_rows.may_exist() {
                let done = tree.install(staged, &at.rel, Install::Replace).await.map_err(|e| match e {
                    wharf_backends::Error::IsADirectory => Error::NotAllowed("PUT on a collection".into()),
                    other => parent_missing(other),
                })?;
                drop(gate);
                // The figure RFC 4331 reports moves with this write, as after a careful one.
                at.mount.adjust_used(done.meta.size, done.replaced.as_ref().map_or(0, |m| m.size));
                if let Some(old) = &done.replaced {
                    props::carry(&mut self.write.acquire().await?, at, &old.node, &done.meta.node).await?;
                }
                let resource = resource_of(path.clone(), &done.meta);
                return Ok(PutOutcome { created: done.replaced.is_none(), resource });
            }
        }
        self.install_checked(at, path, staged, &opts, prefix_of).await
    }

    /// The careful end of a PUT: conditions and locks checked again, and the rename, in
    /// one transaction of the database.
    async fn install_checked(
        &self,
        at: &At,
        path: &DavPath,
        staged: wharf_backends::TreeStaged,
        opts: &PutOptions,
        prefix_of: Option<String>,
    ) -> Result<PutOutcome> {
        let mut tx = self.write.begin().await?;
        let target = stat(at, path).await?;
        let locks = locks_in_scope(&mut tx, path).await?;
        self.evaluate(&mut tx, path, target.as_ref(), &opts.pre, &locks).await?;
        check_put(path, target.as_ref(), &locks, opts)?;
        let replaced = target.as_ref().map_or(0, |t| t.size);
        at.mount.check_quota(staged.size, replaced).await?;
        if prefix_of.is_some() && target.as_ref().map(|r| &r.etag) != prefix_of.as_ref() {
            // The kept prefix is no longer the file's: a retry would succeed.
            return Err(Error::PreconditionFailed);
        }
        let how = match opts.pre.if_none_match {
            Some(EtagMatch::Any) => Install::CreateNew,
            _ => Install::Replace,
        };
        let size = staged.size;
        let meta = at
            .tree()?
            .install(staged, &at.rel, how)
            .await
            .map_err(|e| match e {
                wharf_backends::Error::Exists => Error::PreconditionFailed,
                other => parent_missing(other),
            })?
            .meta;
        at.mount.adjust_used(size, replaced);
        props::adopt(&mut tx, at, target.as_ref().and_then(|t| t.node.as_ref()), &meta.node).await?;
        tx.commit().await?;
        Ok(PutOutcome { created: target.is_none(), resource: resource_of(path.clone(), &meta) })
    }

    pub(crate) async fn mounted_mkcol(
        &self,
        at: &At,
        path: &DavPath,
        pre: &Preconditions,
        principal: Option<&str>,
    ) -> Result<Resource> {
        let mut tx = self.write.begin().await?;
        if at.rel.is_empty() || stat(at, path).await?.is_some() {
            return Err(Error::AlreadyExists);
        }
        parent_dir(at).await?;
        let locks = locks_in_scope(&mut tx, path).await?;
        self.evaluate(&mut tx, path, None, pre, &locks).await?;
        check_write(&locks, &WriteScope { path, subtree: false, membership_changes: true }, pre, principal)?;
        let meta = at.tree()?.create_dir(&at.rel).await.map_err(parent_missing)?;
        props::forget_subtree(&mut tx, at).await?;
        tx.commit().await?;
        Ok(resource_of(path.clone(), &meta))
    }

    pub(crate) async fn mounted_delete(
        &self,
        at: &At,
        path: &DavPath,
        pre: &Preconditions,
        principal: Option<&str>,
    ) -> Result<()> {
        at.refuse_archive_writes()?;
        if at.rel.is_empty() {
            return Err(Error::Forbidden("the root of a mounted folder can't be deleted".into()));
        }
        let mut tx = self.write.begin().await?;
        let target = stat(at, path).await?.ok_or(Error::NotFound)?;
        let locks = locks_in_scope(&mut tx, path).await?;
        self.evaluate(&mut tx, path, Some(&target), pre, &locks).await?;
        check_write(&locks, &WriteScope { path, subtree: true, membership_changes: true }, pre, principal)?;
        at.tree()?.remove(&at.rel).await?;
        at.mount.forget_used();
        props::forget_subtree(&mut tx, at).await?;
        drop_subtree_locks(&mut tx, path).await?;
        tx.commit().await?;
        Ok(())
    }

    /// All instructions or none, as on the native store. The modification time a client
    /// sets becomes the real file's; a creation time can't be set on a host (Linux keeps
    /// birth times read-only), so it is accepted and only kept where it is also a dead
    /// property (Explorer's `Win32CreationTime`).
    pub(crate) async fn mounted_proppatch(
        &self,
        at: &At,
        path: &DavPath,
        ops: &[PatchOp],
        pre: &Preconditions,
        principal: Option<&str>,
    ) -> Result<Vec<(PropName, PatchResult)>> {
        at.refuse_archive_writes()?;
        let mut tx = self.write.begin().await?;
        let target = stat(at, path).await?.ok_or(Error::NotFound)?;
        let locks = locks_in_scope(&mut tx, path).await?;
        self.evaluate(&mut tx, path, Some(&target), pre, &locks).await?;
        check_write(&locks, &WriteScope { path, subtree: false, membership_changes: false }, pre, principal)?;
        let (failures, times) = judge(ops);
        if let Some(refused) = refusals(ops, &failures) {
            return Ok(refused);
        }
        let node = target.node.ok_or_else(|| Error::Internal("a mounted resource without identity".into()))?;
        props::adopt(&mut tx, at, None, &node).await?;
        for op in ops {
            match op {
                PatchOp::Set(p) if time_prop(&p.name).is_some_and(|t| !t.dead) => {}
                PatchOp::Set(p) => props::set(&mut tx, at, &node, p).await?,
                PatchOp::Remove(n) => props::remove(&mut tx, at, n).await?,
            }
        }
        if let Some(ns) = times.modified_ns {
            at.tree()?.set_modified(&at.rel, ns).await?;
        }
        tx.commit().await?;
        Ok(ops.iter().map(|op| (op_name(op).clone(), PatchResult::Ok)).collect())
    }

    /// The empty file a LOCK of an unmapped URL creates (RFC 4918 7.3).
    pub(crate) async fn mounted_create_empty(&self, at: &At) -> Result<Meta> {
        let tree = at.tree()?;
        let empty = Box::pin(futures_util::stream::empty());
        let staged = match tree.stage(&at.rel, empty, StageOptions::default()).await {
            Ok(staged) => staged,
            Err(e) => return Err(refused(at, e).await),
        };
        Ok(tree.install(staged, &at.rel, Install::CreateNew).await.map_err(parent_missing)?.meta)
    }

    /// Locks in scope of `path` for a read, without a query while no lock exists.
    pub(crate) async fn locks_for_read(&self, conn: &mut dyn Handle, path: &DavPath) -> Result<Vec<ActiveLock>> {
        if self.lock_rows.may_exist() {
            locks_in_scope(conn, path).await
        } else {
            Ok(Vec::new())
        }
    }
}

/// A parent missing (or a file where a folder should be) is a 409, as on the native store.
fn parent_missing(e: wharf_backends::Error) -> Error {
    match e {
        wharf_backends::Error::Missing | wharf_backends::Error::NotADirectory => {
            Error::Conflict("parent collection missing".into())
        }
        other => other.into(),
    }
}

/// Why staging a body failed. A name the tree keeps for itself is refused before the
/// stage looks at the parent; under a missing parent it is a 409 all the same, as any
/// other name there, and as the careful path (which looks at the parent first) answers.
async fn refused(at: &At, e: wharf_backends::Error) -> Error {
    if matches!(e, wharf_backends::Error::Escapes) {
        if let Err(missing) = parent_dir(at).await {
            return missing;
        }
    }
    parent_missing(e)
}

/// A PUT's own refusals, once the conditions held: a collection can't be overwritten with
/// content, and locks in scope must be proven.
fn check_put(path: &DavPath, target: Option<&Resource>, locks: &[ActiveLock], opts: &PutOptions) -> Result<()> {
    if target.is_some_and(|t| t.is_collection) {
        return Err(Error::NotAllowed("PUT on a collection".into()));
    }
    let scope = WriteScope { path, subtree: false, membership_changes: target.is_none() };
    check_write(locks, &scope, &opts.pre, opts.principal.as_deref())
}
