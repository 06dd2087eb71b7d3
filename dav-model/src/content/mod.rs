//! File content: atomic, streaming PUT and ranged reads.
//!
//! A PUT streams into the blob store while hashing; only when the whole body has arrived
//! does one transaction point the resource at the new blob. An interrupted body therefore
//! leaves the previous content, or nothing, never a truncated file.

mod plain;

use std::ops::Range;

use wharf_backends::{BlobId, ByteStream};

use crate::condition::Preconditions;
use crate::db::Handle;
use crate::inline::Gathered;
use crate::lock::{check_write, locks_in_scope, ActiveLock, WriteScope};
use crate::path::DavPath;
use crate::resource::{self, content_etag, Resource};
use crate::snapshot::{Snapshot, Wanted};
use crate::txn::{Batch, WriteTx};
use crate::{now_ns, Error, Repository, Result};

#[derive(Debug, Clone, Default)]
pub struct PutOptions {
    pub content_type: Option<String>,
    pub principal: Option<String>,
    pub pre: Preconditions,
    /// The modification time the client wants the new content to have (nanoseconds since
    /// the epoch, see [`crate::times::parse_unix_seconds`]), instead of now.
    pub modified_ns: Option<i64>,
    /// The body length the client announced besides the transfer (Finder's
    /// `X-Expected-Entity-Length` with a chunked body): a body of another length was cut
    /// or padded on the way, so it is refused and the previous content kept.
    pub expected_len: Option<u64>,
    /// Keep the first N bytes of the current content and write the body after them (FTP's
    /// REST before STOR, and APPE). The result still replaces the old content atomically;
    /// if the file changed between reading that prefix and committing, the write is refused.
    pub resume_at: Option<u64>,
    /// The body's length as its transfer declares it (`Content-Length`), when known: a
    /// small one lets the write join the committer's next group (see `group::Coming`).
    /// Only a hint; the bytes that arrive are what is stored.
    pub length_hint: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct PutOutcome {
    /// True when the resource did not exist before (HTTP 201 rather than 204).
    pub created: bool,
    pub resource: Resource,
}

impl Repository {
    /// Resolves a path for reading, through the lookup cache. A miss resolves the parent
    /// the same way (usually a hit: siblings share it) and then needs one indexed query.
    pub(crate) async fn resolve(&self, path: &DavPath) -> Result<Option<Resource>> {
        if let Some(at) = self.mounted(path).await? {
            return crate::mount::stat(&at, path).await;
        }
        if let Some(hit) = self.lookups.get(path) {
            return Ok(hit);
        }
        let generation = self.lookups.generation();
        let found = match (path.parent(), path.name()) {
            (Some(parent), Some(name)) => match Box::pin(self.resolve(&parent)).await? {
                Some(p) if p.is_collection => {
                    let mut conn = self.read.acquire().await?;
                    resource::child(&mut conn, &p, name).await?
                }
                _ => None,
            },
            _ => {
                let mut conn = self.read.acquire().await?;
                resource::lookup(&mut conn, path).await?
            }
        };
        self.lookups.insert(path, generation, found.clone());
        Ok(found)
    }

    /// [`Repository::resolve`] for a GET, which may bring a small file's content along
    /// (see `mount::stat_for_read`); [`Repository::read_content`] then needs no trip.
    pub(crate) async fn resolve_for_read(&self, path: &DavPath) -> Result<Option<Resource>> {
        if let Some(at) = self.mounted(path).await? {
            return crate::mount::stat_for_read(&at, path).await;
        }
        let (Some(parent), Some(name)) = (path.parent(), path.name()) else { return self.resolve(path).await };
        if let Some(hit) = self.lookups.get(path) {
            return Ok(hit);
        }
        // A miss reads a small file's inline content with its row: one query, not two.
        let generation = self.lookups.generation();
        let found = match self.resolve(&parent).await? {
            Some(p) if p.is_collection => {
                resource::child_with_content(&mut self.read.acquire().await?, &p, name).await?
            }
            _ => None,
        };
        self.lookups.insert(path, generation, found.as_ref().map(|(r, _)| r.clone()));
        Ok(found.map(|(mut r, data)| {
            if let (Some(id), Some(data)) = (&r.blob, data) {
                let data = bytes::Bytes::from(data);
                self.contents.insert(id, &data);
                r.small_body = Some(data);
            }
            r
        }))
    }

    /// Replaces (or creates) the content at `path` with `body`.
    pub(crate) async fn put(&self, path: &DavPath, body: ByteStream, opts: PutOptions) -> Result<PutOutcome> {
        if let Some(at) = self.mounted(path).await? {
            return self.mounted_put(&at, path, body, opts).await;
        }
        let limit = self.config.max_upload_bytes;
        let max_inline = self.config.inline_max.min(crate::inline::INLINE_CAP);
        let early = self.check_put_early(path, &opts).await?;
        // A plain write of a body its length says is small goes to the committer once that
        // body is read and hashed: it can join the group the committer is about to commit.
        let small = opts.length_hint.or(opts.expected_len).is_some_and(|n| n <= max_inline);
        let plain = early.plain_parent().is_some() && opts.resume_at.is_none();
        let mut coming = (small && plain).then(|| self.group.announce());
        let current = early.target.clone();
        let (body, prefix_of) = match opts.resume_at.filter(|&n| n > 0) {
            Some(at) => self.resumed_body(current, at, body).await?,
            None => (body, None),
        };
        let (staged, inline) = match crate::inline::gather(body, max_inline, limit).await? {
            Gathered::Whole(bytes) => (None, Some(bytes)),
            Gathered::Stream(body) => (Some(self.blobs.stage(body, limit).await?), None),
        };
        if inline.is_none() {
            // Larger than announced: it takes a while yet.
            coming = None;
        }
        let size = staged.as_ref().map_or_else(|| inline.as_ref().map_or(0, |b| b.len() as u64), |s| s.size);
        if let Some(expected) = opts.expected_len.filter(|&n| n != size) {
            // Dropping `staged` discards it: nothing was committed yet.
            return Err(Error::BadRequest(format!("body of {size} bytes where {expected} were announced")));
        }
        // Only a blob file needs the guard: an inline one commits with its reference.
        // Zero bytes need no blob at all.
        let staged = staged.filter(|s| s.size > 0);
        let adopting = match &staged {
            Some(_) => Some(self.gc_guard.adopting().await?),
            None => None,
        };
        let blob = match (staged, &inline) {
            (Some(staged), _) => Some(self.blobs.commit(staged).await?),
            (None, Some(bytes)) => Some(crate::inline::id_of(bytes)),
            (None, None) => None,
        };
        let new = NewContent { blob: blob.as_ref(), inline: inline.as_ref(), size, prefix_of: prefix_of.as_ref() };
        let written = match early.plain_parent() {
            Some(parent) => match self.write_plain(path, &new, &opts, parent, coming).await {
                Ok(Some(done)) => Ok(done),
                Ok(None) => self.write_row(path, &new, &opts).await,
                Err(e) => Err(e),
            },
            // Not plain, so never announced: `coming` is `None` here.
            None => self.write_row(path, &new, &opts).await,
        };
        drop(adopting);
        let (resource, replaced) = match written {
            Ok(w) => w,
            Err(e) => {
                // Refused after the blob was committed (quota, a lock taken meanwhile...):
                // don't leave it for the next start-up's sweep.
                if let (Some(b), None) = (&blob, &inline) {
                    self.forget_unadopted(b).await;
                }
                return Err(e);
            }
        };
        if let (Some(id), Some(data)) = (&blob, &inline) {
            self.contents.offer(id, data);
        }
        if replaced.garbage {
            self.collect_garbage().await?;
        }
        Ok(PutOutcome { created: replaced.old.is_none(), resource })
    }

    /// Refuses before a byte is read when the answer can't be a success, from cached
    /// lookups; the transaction checks everything again. When no lock exists anywhere and
    /// the request has no conditions, the target is not even looked up unless cached (a
    /// collection there is then found by the transaction), and a new file is plain.
    async fn check_put_early(&self, path: &DavPath, opts: &PutOptions) -> Result<Early> {
        let parent = match path.parent() {
            Some(p) => self.resolve(&p).await?,
            None => None,
        };
        let resuming = opts.resume_at.is_some_and(|n| n > 0);
        if !resuming && opts.pre.is_empty() && self.lock_rows.plain_worth_trying() {
            // What the cache knows of the target costs nothing: a collection is refused
            // now, and a file to replace goes straight to the careful path.
            let known = self.lookups.get(path).flatten();
            let (parent, target) = self.check_put(path, parent, known, &[], opts)?;
            let plain = self.config.quota_bytes.is_none();
            return Ok(Early { parent, target, plain });
        }
        let target = self.resolve(path).await?;
        let mut conn = self.read.acquire().await?;
        let locks = if self.lock_rows.may_exist() { locks_in_scope(&mut conn, path).await? } else { Vec::new() };
        self.evaluate(&mut conn, path, target.as_ref(), &opts.pre, &locks).await?;
        let (parent, target) = self.check_put(path, parent, target, &locks, opts)?;
        Ok(Early { parent, target, plain: false })
    }

    /// The transaction of a PUT, in two trips to SQLite (see [`crate::txn`]): read and
    /// check again, then point the row at the new content and commit. Returns the resource
    /// as written and what it replaced.
    async fn write_row(&self, path: &DavPath, new: &NewContent<'_>, opts: &PutOptions) -> Result<(Resource, Replaced)> {
        let wanted = Wanted { parent: true, used: self.config.quota_bytes.is_some() };
        let (mut tx, rows) = WriteTx::begin(&self.write, &self.lookups, Snapshot::batch(path, wanted)).await?;
        let snap = Snapshot::read(&rows, path)?;
        self.evaluate(tx.conn()?, path, snap.target.as_ref(), &opts.pre, &snap.locks).await?;
        let (parent, old) = self.check_put(path, snap.parent, snap.target, &snap.locks, opts)?;
        if new.prefix_of.is_some() && old.as_ref().map(|r| &r.etag) != new.prefix_of {
            // The kept prefix is no longer the file's: a retry would succeed.
            return Err(Error::PreconditionFailed);
        }
        self.check_quota_of(snap.used.unwrap_or(0), new.size, old.as_ref().map_or(0, |r| r.size))?;
        let now = now_ns();
        let mut writes = Batch::new();
        new.push_inline(&mut writes);
        match &old {
            Some(r) => push_update_file(&mut writes, r.id, new, opts, now),
            None => {
                push_insert_file(&mut writes, parent.id, path, new, opts, now);
                resource::push_touch(&mut writes, parent.id, now);
            }
        }
        let releasing = old.as_ref().is_some_and(|r| r.blob.is_some() && r.blob.as_ref() != new.blob);
        if releasing {
            crate::inline::push_drop_garbage(&mut writes, None);
        }
        // RETURNING hands back the row as written: no SELECT after it.
        let rows = tx.commit(writes).await?;
        let row = rows.first().ok_or_else(|| Error::Internal("PUT wrote no row".into()))?;
        let written = Resource::from_row(row, path.clone());
        // Only this file's row and, for a new file, its parent's changed; the cache gets
        // them as written while the write connection is still held.
        let mut fresh = vec![(path.clone(), Some(written.clone()))];
        if old.is_none() {
            fresh.push((parent.path.clone(), Some(parent.touched(now))));
        }
        tx.finish(fresh);
        // The rows after the written one: read by their tags, which the written row (its
        // first column an id, untagged) must not be mistaken for.
        let dropped = crate::inline::dropped(&rows[1..]);
        self.gc_counts.record_inline(dropped.blobs, dropped.bytes);
        Ok((written, Replaced { old, garbage: releasing && dropped.files_left }))
    }

    /// Deletes a just-committed blob that no row took, unless another upload of the same
    /// bytes adopted it meanwhile. Best effort: the start-up sweep catches what this misses.
    async fn forget_unadopted(&self, blob: &BlobId) {
        let _exclusive = match self.gc_guard.collecting().await {
            Ok(guard) => guard,
            Err(e) => return tracing::warn!(%e, "could not delete an unadopted blob"),
        };
        let adopted: std::result::Result<Option<(i64,)>, _> =
            crate::db::query_as("SELECT refcount FROM blobs WHERE id = ? AND refcount > 0")
                .bind(blob.as_str())
                .fetch_optional(&self.write)
                .await;
        if let Ok(None) = adopted {
            if let Err(e) = self.blobs.delete(blob).await {
                tracing::warn!(%e, "could not delete an unadopted blob");
            }
        }
    }

    /// The body of a resumed write: the current content's first `at` bytes, then `body`.
    /// Also returns the ETag those bytes were read under.
    pub(crate) async fn resumed_body(
        &self,
        current: Option<Resource>,
        at: u64,
        body: ByteStream,
    ) -> Result<(ByteStream, Option<String>)> {
        use futures_util::StreamExt;
        let Some(current) = current else { return Err(Error::RangeNotSatisfiable { size: 0 }) };
        if at > current.size {
            return Err(Error::RangeNotSatisfiable { size: current.size });
        }
        let prefix = self.read_content(&current, Some(0..at)).await?;
        Ok((Box::pin(prefix.chain(body)), Some(current.etag)))
    }

    /// Parent must be a collection, target must not be one, locks must allow (the
    /// conditions are [`Repository::evaluate`]'s). Returns the parent and the existing
    /// resource, if any. `parent` and `target` are the looked-up parent collection and
    /// resource at `path`, `locks` the locks in scope of `path`.
    fn check_put(
        &self,
        path: &DavPath,
        parent: Option<Resource>,
        target: Option<Resource>,
        locks: &[ActiveLock],
        opts: &PutOptions,
    ) -> Result<(Resource, Option<Resource>)> {
        if path.is_root() {
            return Err(Error::NotAllowed("PUT on the root collection".into()));
        }
        let parent =
            parent.filter(|p| p.is_collection).ok_or_else(|| Error::Conflict("parent collection missing".into()))?;
        if target.as_ref().is_some_and(|t| t.is_collection) {
            return Err(Error::NotAllowed("PUT on a collection".into()));
        }
        let scope = WriteScope { path, subtree: false, membership_changes: target.is_none() };
        check_write(locks, &scope, &opts.pre, opts.principal.as_deref())?;
        Ok((parent, target))
    }

    pub(crate) async fn check_quota(&self, conn: &mut dyn Handle, adding: u64, removing: u64) -> Result<()> {
        if self.config.quota_bytes.is_none() {
            return Ok(());
        }
        let (used,): (i64,) = crate::db::query_as("SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM resources")
            .fetch_one(&mut *conn)
            .await?;
        self.check_quota_of(used.max(0) as u64, adding, removing)
    }

    /// Whether a tree using `used` bytes may take `adding` more while `removing` go.
    fn check_quota_of(&self, used: u64, adding: u64, removing: u64) -> Result<()> {
        let Some(limit) = self.config.quota_bytes else { return Ok(()) };
        if used.saturating_sub(removing).saturating_add(adding) > limit {
            return Err(Error::InsufficientStorage);
        }
        Ok(())
    }

    /// Streams the content of a file, or the byte range `range` of it.
    pub(crate) async fn read_content(&self, resource: &Resource, range: Option<Range<u64>>) -> Result<ByteStream> {
        if let Some(body) = &resource.small_body {
            let len = body.len() as u64;
            let range = range.map_or(0..len, |r| r.start.min(len)..r.end.min(len));
            let part = body.slice(range.start as usize..range.end as usize);
            return Ok(Box::pin(futures_util::stream::once(async move { Ok(part) })));
        }
        if let Some(at) = self.mounted(&resource.path).await? {
            return self.mounted_read(&at, resource, range).await;
        }
        if resource.is_collection {
            return Err(Error::NotAllowed("a collection has no content".into()));
        }
        match &resource.blob {
            // Perhaps inline: never a file of the blob store.
            Some(id) if resource.size <= crate::inline::INLINE_CAP => {
                let whole = self.small_content(id).await?;
                let len = whole.len() as u64;
                let range = range.map_or(0..len, |r| r.start.min(len)..r.end.min(len));
                let part = whole.slice(range.start as usize..range.end as usize);
                Ok(Box::pin(futures_util::stream::once(async move { Ok(part) })))
            }
            Some(id) => Ok(self.blobs.open(id, range).await?),
            None => Ok(Box::pin(futures_util::stream::empty())),
        }
    }

    /// The whole content of a small blob, from the cache, the database or its file, and
    /// cached for the next read.
    pub(crate) async fn small_content(&self, id: &BlobId) -> Result<bytes::Bytes> {
        use futures_util::TryStreamExt;
        if let Some(hit) = self.contents.get(id) {
            return Ok(hit);
        }
        let inline: Option<(Option<Vec<u8>>,)> = crate::db::query_as("SELECT data FROM blobs WHERE id = ?")
            .bind(id.as_str())
            .fetch_optional(&self.read)
            .await?;
        let data = match inline.and_then(|(d,)| d) {
            Some(d) => bytes::Bytes::from(d),
            None => {
                let file = self.blobs.open(id, None).await?;
                let chunks: Vec<bytes::Bytes> = file.try_collect().await.map_err(wharf_backends::Error::Io)?;
                chunks.concat().into()
            }
        };
        self.contents.insert(id, &data);
        Ok(data)
    }
}

/// What a PUT writes: the committed blob (none for zero bytes), its bytes when they are
/// kept inline, its size, and for a resumed write the ETag its kept prefix was read under.
struct NewContent<'a> {
    blob: Option<&'a BlobId>,
    inline: Option<&'a bytes::Bytes>,
    size: u64,
    prefix_of: Option<&'a String>,
}

impl NewContent<'_> {
    /// The inline blob's row, before the statement that references it.
    fn push_inline(&self, batch: &mut Batch) {
        if let (Some(id), Some(data)) = (self.blob, self.inline) {
            crate::inline::push_store(batch, id, data);
        }
    }
}

/// What a PUT's transaction replaced: the previous resource, and whether blob files it
/// released wait for the collector.
#[derive(Default)]
struct Replaced {
    old: Option<Resource>,
    garbage: bool,
}

/// What the early check of a PUT found.
struct Early {
    parent: Resource,
    /// The current resource, when it was looked up (always for a resumed write, which
    /// needs its content).
    target: Option<Resource>,
    /// Nothing but the tree's shape can refuse the write (see [`Repository::write_plain`]).
    plain: bool,
}

impl Early {
    fn plain_parent(&self) -> Option<&Resource> {
        self.plain.then_some(&self.parent)
    }
}

/// The columns a new content sets on a file's row; bound by [`push_update_file_set`].
const UPDATE_FILE_SET: &str =
    "blob_id = ?, size = ?, etag = ?, modified_ns = ?, content_type = COALESCE(?, content_type)";

fn push_update_file(batch: &mut Batch, id: i64, new: &NewContent<'_>, opts: &PutOptions, now: i64) {
    batch.push(format!("UPDATE resources SET {UPDATE_FILE_SET} WHERE id = ? RETURNING {}", resource::COLUMNS));
    push_update_file_set(batch, new, opts, now);
    batch.bind(id);
}

fn push_update_file_set(batch: &mut Batch, new: &NewContent<'_>, opts: &PutOptions, now: i64) {
    batch
        .bind(new.blob.map(|b| b.as_str().to_owned()))
        .bind(new.size as i64)
        .bind(content_etag(new.blob))
        .bind(opts.modified_ns.unwrap_or(now))
        .bind(opts.content_type.clone());
}

fn push_insert_file(
    batch: &mut Batch,
    parent_id: i64,
    path: &DavPath,
    new: &NewContent<'_>,
    opts: &PutOptions,
    now: i64,
) {
    batch.push(format!(
        "INSERT INTO resources (parent_id, name, is_collection, blob_id, size, content_type, etag, created_ns, modified_ns) \
         VALUES (?, ?, 0, ?, ?, ?, ?, ?, ?) RETURNING {}",
        resource::COLUMNS
    ));
    bind_file(batch, parent_id, path, new, opts, now);
}

/// The values of a new file's row, in the column order of `INSERT INTO resources` above.
fn bind_file(batch: &mut Batch, parent_id: i64, path: &DavPath, new: &NewContent<'_>, opts: &PutOptions, now: i64) {
    batch
        .bind(parent_id)
        .bind(path.name().unwrap_or_default().to_owned())
        .bind(new.blob.map(|b| b.as_str().to_owned()))
        .bind(new.size as i64)
        .bind(opts.content_type.clone())
        .bind(content_etag(new.blob))
        .bind(now)
        .bind(opts.modified_ns.unwrap_or(now));
}
