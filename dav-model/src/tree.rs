//! Namespace operations: MKCOL, DELETE, COPY and MOVE (RFC 4918 9.3, 9.6, 9.8, 9.9).
//! A MOVE re-parents one row; a COPY copies rows and shares blobs; a DELETE removes a
//! subtree in one transaction and lets the collector reclaim blobs nobody references.

use std::collections::HashMap;

use crate::condition::Preconditions;
use crate::db::{Dialect, Handle};
use crate::lock::{check_write, drop_subtree_locks, locks_in_scope, WriteScope};
use crate::path::DavPath;
use crate::props::DeadProp;
use crate::resource::{self, Entry, Resource};
use crate::ActiveLock;
use crate::{now_ns, Error, Repository, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Depth {
    Zero,
    One,
    Infinity,
}

#[derive(Debug)]
pub enum TransferOutcome {
    /// The destination did not exist (201).
    Created,
    /// The destination existed and was replaced (204).
    Replaced,
    /// A transfer between trees that arrived only in part (207): what failed, and why.
    /// A MOVE keeps its source then.
    Partial(Vec<(DavPath, Error)>),
}

/// Recursive CTE selecting `?1` and every row below it.
const SUBTREE: &str = "WITH RECURSIVE sub(id) AS (SELECT ?1 UNION ALL \
    SELECT r.id FROM resources r JOIN sub ON r.parent_id = sub.id)";

impl Repository {
    pub(crate) async fn mkcol(&self, path: &DavPath, pre: &Preconditions, principal: Option<&str>) -> Result<Resource> {
        if let Some(at) = self.mounted(path).await? {
            return self.mounted_mkcol(&at, path, pre, principal).await;
        }
        let mut tx = self.write.begin().await?;
        if resource::lookup(&mut tx, path).await?.is_some() {
            return Err(Error::AlreadyExists);
        }
        let parent = self.parent_collection(&mut tx, path).await?;
        let locks = locks_in_scope(&mut tx, path).await?;
        self.evaluate(&mut tx, path, None, pre, &locks).await?;
        check_write(&locks, &WriteScope { path, subtree: false, membership_changes: true }, pre, principal)?;
        resource::insert_collection(&mut tx, parent.id, path.name().unwrap_or_default(), now_ns()).await?;
        let created = resource::lookup(&mut tx, path).await?.ok_or(Error::NotFound)?;
        // The new collection's row and its parent's (touched): nothing else changed.
        let parent_path = path.parent().ok_or(Error::NotFound)?;
        self.commit_touching(tx, &[path.clone(), parent_path]).await?;
        Ok(created)
    }

    /// The existing parent collection of `path`, or 409 Conflict.
    async fn parent_collection(&self, conn: &mut dyn Handle, path: &DavPath) -> Result<Resource> {
        let parent = path.parent().ok_or_else(|| Error::NotAllowed("the root has no parent".into()))?;
        resource::lookup(conn, &parent)
            .await?
            .filter(|p| p.is_collection)
            .ok_or_else(|| Error::Conflict("parent collection missing".into()))
    }

    pub(crate) async fn delete(&self, path: &DavPath, pre: &Preconditions, principal: Option<&str>) -> Result<()> {
        if path.is_root() {
            return Err(Error::Forbidden("the root collection can't be deleted".into()));
        }
        if let Some(at) = self.mounted(path).await? {
            return self.mounted_delete(&at, path, pre, principal).await;
        }
        let mut tx = self.write.begin().await?;
        let target = resource::lookup(&mut tx, path).await?.ok_or(Error::NotFound)?;
        let locks = locks_in_scope(&mut tx, path).await?;
        self.evaluate(&mut tx, path, Some(&target), pre, &locks).await?;
        let scope = WriteScope { path, subtree: true, membership_changes: true };
        check_write(&locks, &scope, pre, principal)?;
        remove_subtree(&mut tx, &target).await?;
        if let Some(parent) = self.parent_id(&mut tx, path).await? {
            resource::touch(&mut tx, parent, now_ns()).await?;
        }
        self.commit(tx).await?;
        self.collect_garbage().await?;
        Ok(())
    }

    async fn parent_id(&self, conn: &mut dyn Handle, path: &DavPath) -> Result<Option<i64>> {
        match path.parent() {
            Some(p) => Ok(resource::lookup(conn, &p).await?.map(|r| r.id)),
            None => Ok(None),
        }
    }

    /// COPY (`moving == false`) or MOVE of `src` to `dst`.
    pub(crate) async fn transfer(&self, req: Transfer<'_>) -> Result<TransferOutcome> {
        let Transfer { src, dst, .. } = req;
        if src == dst {
            return Err(Error::Forbidden("source and destination are the same".into()));
        }
        if dst.starts_with(src) || (req.moving && src.is_root()) {
            return Err(Error::Forbidden("destination lies inside the source".into()));
        }
        if src.starts_with(dst) {
            // Overwriting an ancestor would delete the source itself.
            return Err(Error::Forbidden("destination contains the source".into()));
        }
        let (at_src, at_dst) = (self.mounted(src).await?, self.mounted(dst).await?);
        for (at, writes) in [(&at_src, req.moving), (&at_dst, true)] {
            if let Some(at) = at.as_ref().filter(|_| writes) {
                at.refuse_archive_writes()?;
            }
        }
        match (at_src, at_dst) {
            (None, None) => {}
            (Some(s), Some(d)) if s.same_mount(&d) => return self.mounted_transfer(&s, &d, req).await,
            _ => return self.transfer_across(req).await,
        }
        let mut tx = self.write.begin().await?;
        let source = resource::lookup(&mut tx, src).await?.ok_or(Error::NotFound)?;
        let src_locks = locks_in_scope(&mut tx, src).await?;
        self.evaluate(&mut tx, src, Some(&source), req.pre, &src_locks).await?;
        if req.moving {
            let scope = WriteScope { path: src, subtree: true, membership_changes: true };
            check_write(&src_locks, &scope, req.pre, req.principal)?;
        }
        let parent = self.parent_collection(&mut tx, dst).await?;
        let existing = resource::lookup(&mut tx, dst).await?;
        if existing.is_some() && !req.overwrite {
            return Err(Error::PreconditionFailed);
        }
        let dst_locks = locks_in_scope(&mut tx, dst).await?;
        let scope = WriteScope { path: dst, subtree: true, membership_changes: true };
        check_write(&dst_locks, &scope, req.pre, req.principal)?;
        if let Some(old) = &existing {
            remove_subtree(&mut tx, old).await?;
        }
        let now = now_ns();
        if req.moving {
            self.relink(&mut tx, &source, parent.id, dst).await?;
            drop_subtree_locks(&mut tx, src).await?;
            if let Some(old_parent) = self.parent_id(&mut tx, src).await? {
                resource::touch(&mut tx, old_parent, now).await?;
            }
        } else {
            if req.depth == Depth::One {
                return Err(Error::BadRequest("COPY takes Depth 0 or infinity".into()));
            }
            if self.config.quota_bytes.is_some() {
                let deep = source.is_collection && req.depth == Depth::Infinity;
                let adding = if deep { subtree_bytes(&mut tx, source.id).await? } else { source.size };
                self.check_quota(&mut tx, adding, 0).await?;
            }
            copy_subtree(&mut tx, &source, parent.id, dst, req.depth == Depth::Infinity, now).await?;
        }
        resource::touch(&mut tx, parent.id, now).await?;
        self.commit(tx).await?;
        if existing.is_some() {
            self.collect_garbage().await?;
        }
        Ok(if existing.is_some() { TransferOutcome::Replaced } else { TransferOutcome::Created })
    }

    /// MOVE is a rename of one row, whatever the size of the subtree below it.
    async fn relink(&self, conn: &mut dyn Handle, source: &Resource, parent: i64, dst: &DavPath) -> Result<()> {
        crate::db::query("UPDATE resources SET parent_id = ?, name = ? WHERE id = ?")
            .bind(parent)
            .bind(dst.name().unwrap_or_default())
            .bind(source.id)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    /// Members of a collection with their dead properties and locks: three queries.
    pub(crate) async fn list(&self, parent: &Resource) -> Result<Vec<Entry>> {
        if let Some(at) = self.mounted(&parent.path).await? {
            return self.mounted_list(&at, parent).await;
        }
        let (members, dead) = match &self.readers {
            Some(readers) => resource::members_on(readers, parent).await?,
            None => {
                let mut conn = self.read.acquire().await?;
                (
                    resource::members(&mut conn, parent).await?,
                    crate::props::dead_props_of_members(&mut conn, parent.id).await?,
                )
            }
        };
        let locks = match self.lock_rows.may_exist() {
            true => locks_in_scope(&mut self.read.acquire().await?, &parent.path).await?,
            false => Vec::new(),
        };
        let mut out = entries(members, dead, &locks);
        // A member that is a mount point is the mounted tree's root, with its properties.
        for e in out.iter_mut().filter(|e| e.resource.is_collection) {
            if self.mounted(&e.resource.path).await?.is_some() {
                if let Some(root) = self.resolve(&e.resource.path).await? {
                    *e = self.entry(&root).await?;
                }
            }
        }
        Ok(out)
    }

    /// A single resource as a listing entry.
    pub(crate) async fn entry(&self, resource: &Resource) -> Result<Entry> {
        if let Some(at) = self.mounted(&resource.path).await? {
            return self.mounted_entry(&at, resource).await;
        }
        let mut conn = self.read.acquire().await?;
        let locks = self.locks_if_any(&mut conn, &resource.path).await?;
        let dead = crate::props::dead_props_of(&mut conn, resource.id).await?;
        let locks = locks.into_iter().filter(|l| l.covers(&resource.path)).collect();
        Ok(Entry { resource: resource.clone(), dead, locks })
    }

    /// The locks in scope of `path` for a read, without a query while no lock exists.
    async fn locks_if_any(&self, conn: &mut dyn Handle, path: &DavPath) -> Result<Vec<ActiveLock>> {
        if self.lock_rows.may_exist() {
            locks_in_scope(conn, path).await
        } else {
            Ok(Vec::new())
        }
    }

    /// How many resources lie below `resource`, counting at most to `cap + 1`.
    pub(crate) async fn count_below(&self, resource: &Resource, cap: u64) -> Result<u64> {
        if let Some(at) = self.mounted(&resource.path).await? {
            return self.mounted_count_below(&at, cap).await;
        }
        let mut conn = self.read.acquire().await?;
        resource::count_descendants(&mut conn, resource.id, cap).await
    }
}

fn entries(list: Vec<Resource>, mut dead: HashMap<i64, Vec<DeadProp>>, locks: &[ActiveLock]) -> Vec<Entry> {
    list.into_iter()
        .map(|r| Entry {
            dead: dead.remove(&r.id).unwrap_or_default(),
            locks: locks.iter().filter(|l| l.covers(&r.path)).cloned().collect(),
            resource: r,
        })
        .collect()
}

/// Arguments of [`Repository::transfer`].
pub struct Transfer<'a> {
    pub src: &'a DavPath,
    pub dst: &'a DavPath,
    pub moving: bool,
    pub depth: Depth,
    pub overwrite: bool,
    pub pre: &'a Preconditions,
    pub principal: Option<&'a str>,
}

#[cfg(test)]
impl<'a> Transfer<'a> {
    /// A COPY or MOVE of the whole subtree that replaces nothing, by no one in particular:
    /// what the model's tests ask for.
    pub(crate) fn deep(src: &'a DavPath, dst: &'a DavPath, moving: bool, pre: &'a Preconditions) -> Transfer<'a> {
        Transfer { src, dst, moving, depth: Depth::Infinity, overwrite: false, pre, principal: None }
    }
}

pub(crate) async fn remove_subtree(conn: &mut dyn Handle, target: &Resource) -> Result<()> {
    crate::db::query(&format!("{SUBTREE} DELETE FROM dead_props WHERE resource_id IN (SELECT id FROM sub)"))
        .bind(target.id)
        .execute(&mut *conn)
        .await?;
    crate::db::query(&format!("{SUBTREE} DELETE FROM resources WHERE id IN (SELECT id FROM sub)"))
        .bind(target.id)
        .execute(&mut *conn)
        .await?;
    drop_subtree_locks(conn, &target.path).await
}

/// Bytes held by the files at and below resource `id`, which a deep COPY adds.
async fn subtree_bytes(conn: &mut dyn Handle, id: i64) -> Result<u64> {
    let (bytes,): (i64,) = crate::db::query_as(&format!(
        "{SUBTREE} SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM resources WHERE id IN (SELECT id FROM sub)"
    ))
    .bind(id)
    .fetch_one(&mut *conn)
    .await?;
    Ok(bytes.max(0) as u64)
}

/// Copies rows level by level (one INSERT ... SELECT per source collection) and their
/// dead properties; blobs are shared, the refcount triggers account for the new rows.
async fn copy_subtree(
    conn: &mut dyn Handle,
    source: &Resource,
    parent: i64,
    dst: &DavPath,
    deep: bool,
    now: i64,
) -> Result<()> {
    let (new_root,) = crate::db::query_as::<(i64,)>(
        "INSERT INTO resources (parent_id, name, is_collection, blob_id, size, content_type, etag, created_ns, modified_ns) \
         SELECT ?, ?, is_collection, blob_id, size, content_type, etag, ?, ? FROM resources WHERE id = ? RETURNING id",
    )
    .bind(parent)
    .bind(dst.name().unwrap_or_default())
    .bind(now)
    .bind(now)
    .bind(source.id)
    .fetch_one(&mut *conn)
    .await?;
    copy_dead_props(conn, source.id, new_root).await?;
    if source.is_collection {
        crate::db::query("UPDATE resources SET etag = ? WHERE id = ?")
            .bind(resource::collection_etag(new_root, now))
            .bind(new_root)
            .execute(&mut *conn)
            .await?;
    }
    if !(deep && source.is_collection) {
        return Ok(());
    }
    let mut pending = vec![(source.id, new_root)];
    while let Some((from, to)) = pending.pop() {
        pending.extend(copy_members(conn, from, to, now).await?);
    }
    Ok(())
}

/// Copies the members of collection `from` into `to` with three statements, whatever
/// their number, and returns the (source, copy) id pairs of member collections.
async fn copy_members(conn: &mut dyn Handle, from: i64, to: i64, now: i64) -> Result<Vec<(i64, i64)>> {
    crate::db::query(
        "INSERT INTO resources (parent_id, name, is_collection, blob_id, size, content_type, etag, created_ns, modified_ns) \
         SELECT ?1, name, is_collection, blob_id, size, content_type, etag, ?2, modified_ns \
         FROM resources WHERE parent_id = ?3",
    )
    .bind(to)
    .bind(now)
    .bind(from)
    .execute(&mut *conn)
    .await?;
    crate::db::query(
        "INSERT INTO dead_props (resource_id, namespace, name, xml) \
         SELECT n.id, d.namespace, d.name, d.xml FROM resources o \
         JOIN dead_props d ON d.resource_id = o.id \
         JOIN resources n ON n.parent_id = ?1 AND n.name = o.name WHERE o.parent_id = ?2",
    )
    .bind(to)
    .bind(from)
    .execute(&mut *conn)
    .await?;
    // The ETag of `collection_etag`, made by the database for every copied collection.
    let etag = match conn.dialect() {
        Dialect::Sqlite => "printf('\"c%x-%x\"', id, ?1)",
        Dialect::Postgres => "'\"c' || to_hex(id) || '-' || to_hex(?1) || '\"'",
    };
    crate::db::query(&format!("UPDATE resources SET etag = {etag} WHERE parent_id = ?2 AND is_collection = 1"))
        .bind(now)
        .bind(to)
        .execute(&mut *conn)
        .await?;
    let pairs = crate::db::query_as(
        "SELECT o.id, n.id FROM resources o JOIN resources n ON n.parent_id = ?1 AND n.name = o.name \
         WHERE o.parent_id = ?2 AND o.is_collection = 1",
    )
    .bind(to)
    .bind(from)
    .fetch_all(&mut *conn)
    .await?;
    Ok(pairs)
}

async fn copy_dead_props(conn: &mut dyn Handle, from: i64, to: i64) -> Result<()> {
    crate::db::query("INSERT INTO dead_props (resource_id, namespace, name, xml) SELECT ?, namespace, name, xml FROM dead_props WHERE resource_id = ?")
        .bind(to)
        .bind(from)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
