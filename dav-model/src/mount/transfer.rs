//! COPY and MOVE that involve a mounted tree. Within one tree they are the tree's own
//! rename and copy (a MOVE is never a copy there, and `Overwrite: F` never replaces,
//! atomically); between trees (native to host, one host folder to another) they copy
//! member by member through the model's own operations, then delete the source, and
//! report what failed (RFC 4918 9.8.8: 207 when part of it did).

use std::collections::HashMap;

use super::{ops::stat, props, At};
use crate::condition::Preconditions;
use crate::db::Handle;
use crate::lock::{check_write, drop_subtree_locks, locks_in_scope, WriteScope};
use crate::path::DavPath;
use crate::props::DeadProp;
use crate::resource::Resource;
use crate::tree::{Depth, Transfer, TransferOutcome};
use crate::{Error, PutOptions, Repository, Result};

/// A transfer between trees under way: the preconditions and principal each step runs
/// with, what failed, and the sources copied (in the order they were, parents first).
struct Carry<'a> {
    pre: &'a Preconditions,
    principal: Option<&'a str>,
    /// The destination, when it is a file the PUT of a file replaces in one step.
    replacing: Option<&'a DavPath>,
    failed: Vec<(DavPath, Error)>,
    copied: Vec<Resource>,
}

impl Repository {
    /// A COPY or MOVE within one mounted tree.
    pub(crate) async fn mounted_transfer(&self, s: &At, d: &At, req: Transfer<'_>) -> Result<TransferOutcome> {
        let Transfer { src, dst, .. } = req;
        if s.rel.is_empty() || d.rel.is_empty() {
            return Err(Error::Forbidden("the root of a mounted folder can't be copied over or moved".into()));
        }
        let tree = s.tree()?;
        let caps = tree.caps();
        if (req.moving && !caps.rename) || (!req.moving && !caps.copy) {
            return self.transfer_across(req).await;
        }
        let mut tx = self.write.begin().await?;
        let source = stat(s, src).await?.ok_or(Error::NotFound)?;
        let src_locks = locks_in_scope(&mut tx, src).await?;
        self.evaluate(&mut tx, src, Some(&source), req.pre, &src_locks).await?;
        if req.moving {
            let scope = WriteScope { path: src, subtree: true, membership_changes: true };
            check_write(&src_locks, &scope, req.pre, req.principal)?;
        }
        let parent = d.parent().ok_or_else(|| Error::Conflict("parent collection missing".into()))?;
        if !tree.stat(&parent.rel).await?.is_some_and(|m| m.is_dir()) {
            return Err(Error::Conflict("parent collection missing".into()));
        }
        let existing = stat(d, dst).await?;
        if existing.is_some() && !req.overwrite {
            return Err(Error::PreconditionFailed);
        }
        if !req.moving && !source.is_collection && existing.as_ref().is_some_and(|e| !e.is_collection) {
            // Replaced in one step by the PUT of a transfer between trees: a failed copy
            // then leaves the old file.
            drop(tx);
            return self.transfer_across(req).await;
        }
        let dst_locks = locks_in_scope(&mut tx, dst).await?;
        check_write(
            &dst_locks,
            &WriteScope { path: dst, subtree: true, membership_changes: true },
            req.pre,
            req.principal,
        )?;
        if !req.moving {
            // A COPY Depth 0 of a folder makes an empty folder: its members add nothing.
            let adding = match (source.is_collection, req.depth) {
                (true, Depth::Infinity) => tree.used(&s.rel).await?,
                (true, _) => 0,
                (false, _) => source.size,
            };
            let removing = match &existing {
                Some(e) if e.is_collection => tree.used(&d.rel).await?,
                Some(e) => e.size,
                None => 0,
            };
            d.mount.check_quota(adding, removing).await?;
        }
        d.mount.forget_used();
        // A file replacing a file is one atomic rename; anything else clears the way first.
        let replace_in_place =
            req.moving && existing.as_ref().is_some_and(|e| !e.is_collection) && !source.is_collection;
        if existing.is_some() && !replace_in_place {
            tree.remove(&d.rel).await?;
        }
        props::forget_subtree(&mut tx, d).await?;
        if existing.is_some() {
            // What was there is gone, as after a DELETE: so are the locks rooted in it.
            drop_subtree_locks(&mut tx, dst).await?;
        }
        let raced = |e: wharf_backends::Error| match e {
            // Something appeared at the destination since it was checked: never replaced.
            wharf_backends::Error::Exists => Error::PreconditionFailed,
            other => other.into(),
        };
        if req.moving {
            match tree.rename(&s.rel, &d.rel, replace_in_place).await {
                // Another file system mounted inside the folder: copy, then delete.
                Err(wharf_backends::Error::CrossDevice) => {
                    drop(tx);
                    return self.transfer_across(req).await;
                }
                other => other.map_err(raced)?,
            }
            props::rename_subtree(&mut tx, s, d).await?;
            drop_subtree_locks(&mut tx, src).await?;
        } else {
            match (source.is_collection, req.depth) {
                (_, Depth::One) => return Err(Error::BadRequest("COPY takes Depth 0 or infinity".into())),
                (true, Depth::Zero) => {
                    tree.create_dir(&d.rel).await.map_err(raced)?;
                }
                _ => tree.copy(&s.rel, &d.rel).await.map_err(raced)?,
            }
            copy_props(&mut tx, s, d, req.depth == Depth::Infinity).await?;
        }
        tx.commit().await?;
        Ok(if existing.is_some() { TransferOutcome::Replaced } else { TransferOutcome::Created })
    }

    /// A COPY or MOVE between two trees: checked once as a whole, then carried out member
    /// by member with the model's own MKCOL, PUT and DELETE (each proving the request's
    /// lock tokens, so locks taken meanwhile still hold), dead properties and modification
    /// times carried along. A MOVE deletes its source only when everything arrived.
    pub(crate) async fn transfer_across(&self, req: Transfer<'_>) -> Result<TransferOutcome> {
        let Transfer { src, dst, .. } = req;
        if self.mounted(src).await?.is_some_and(|a| a.rel.is_empty()) && req.moving {
            return Err(Error::Forbidden("the root of a mounted folder can't be moved".into()));
        }
        if self.mounted(dst).await?.is_some_and(|a| a.rel.is_empty()) {
            return Err(Error::Forbidden("the root of a mounted folder can't be copied over".into()));
        }
        if req.depth == Depth::One && !req.moving {
            return Err(Error::BadRequest("COPY takes Depth 0 or infinity".into()));
        }
        // Checked in the native store's order: the source, its conditions and locks, the
        // destination's parent, what is there, then the destination's locks.
        let source = self.resolve(src).await?.ok_or(Error::NotFound)?;
        {
            let mut conn = self.read.acquire().await?;
            let src_locks = locks_in_scope(&mut conn, src).await?;
            self.evaluate(&mut conn, src, Some(&source), req.pre, &src_locks).await?;
            if req.moving {
                let scope = WriteScope { path: src, subtree: true, membership_changes: true };
                check_write(&src_locks, &scope, req.pre, req.principal)?;
            }
        }
        let parent = dst.parent().ok_or_else(|| Error::Conflict("parent collection missing".into()))?;
        if !self.resolve(&parent).await?.is_some_and(|p| p.is_collection) {
            return Err(Error::Conflict("parent collection missing".into()));
        }
        let existing = self.resolve(dst).await?;
        if existing.is_some() && !req.overwrite {
            return Err(Error::PreconditionFailed);
        }
        let dst_locks = locks_in_scope(&mut self.read.acquire().await?, dst).await?;
        let scope = WriteScope { path: dst, subtree: true, membership_changes: true };
        check_write(&dst_locks, &scope, req.pre, req.principal)?;
        let inner = Preconditions::proving(req.pre.if_header.iter().flat_map(|h| h.tokens()));
        // A file over a file is replaced by the PUT itself, atomically: if the copy fails,
        // the old file is still there (else its dead properties and locks then go, see
        // `set_dead_props`). Anything else makes way first.
        if existing.as_ref().is_some_and(|e| e.is_collection || source.is_collection) {
            self.delete(dst, &inner, req.principal).await?;
        }
        let deep = req.moving || req.depth == Depth::Infinity;
        let replacing = existing.as_ref().is_some_and(|e| !e.is_collection && !source.is_collection).then_some(dst);
        let mut carry =
            Carry { pre: &inner, principal: req.principal, replacing, failed: Vec::new(), copied: Vec::new() };
        self.copy_member(&source, dst, deep, &mut carry).await;
        if let Some(pos) = carry.failed.iter().position(|(p, _)| p == dst) {
            // Nothing arrived: the request failed as a whole.
            return Err(carry.failed.swap_remove(pos).1);
        }
        if req.moving && carry.failed.is_empty() {
            self.remove_moved(&mut carry).await;
        }
        Ok(match (carry.failed.is_empty(), existing.is_some()) {
            (false, _) => TransferOutcome::Partial(carry.failed),
            (true, true) => TransferOutcome::Replaced,
            (true, false) => TransferOutcome::Created,
        })
    }

    /// The source side of a MOVE between trees, once everything arrived: each file only
    /// if it is still the version that was copied, each folder only once empty, so that
    /// nothing the copy did not carry (a member another program added meanwhile, or one
    /// the listing leaves out: a FIFO, a link, an upload in progress) is lost with it.
    async fn remove_moved(&self, carry: &mut Carry<'_>) {
        while let Some(r) = carry.copied.pop() {
            let removed = if r.is_collection {
                self.remove_empty(&r, carry).await
            } else {
                let mut pre = carry.pre.clone();
                pre.if_match = Some(crate::condition::EtagMatch::Tags(vec![r.etag.clone()]));
                self.delete(&r.path, &pre, carry.principal).await
            };
            if let Err(e) = removed {
                carry.failed.push((r.path.clone(), e));
            }
        }
    }

    /// Deletes a collection that holds nothing any more (409 otherwise).
    async fn remove_empty(&self, r: &Resource, carry: &Carry<'_>) -> Result<()> {
        let Some(at) = self.mounted(&r.path).await? else {
            if !self.list(r).await?.is_empty() {
                return Err(Error::Conflict("the folder holds more than could be moved".into()));
            }
            return self.delete(&r.path, carry.pre, carry.principal).await;
        };
        let mut tx = self.write.begin().await?;
        at.tree()?.remove_empty_dir(&at.rel).await?;
        props::forget_subtree(&mut tx, &at).await?;
        drop_subtree_locks(&mut tx, &r.path).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Copies `src` to `dst` (and, when `deep`, everything below it), recording what
    /// failed instead of stopping: the rest still arrives.
    async fn copy_member(&self, src: &Resource, dst: &DavPath, deep: bool, carry: &mut Carry<'_>) {
        if let Err(e) = self.copy_one(src, dst, carry).await {
            carry.failed.push((dst.clone(), e));
            return;
        }
        carry.copied.push(src.clone());
        if !(deep && src.is_collection) {
            return;
        }
        let members = match self.list(src).await {
            Ok(m) => m,
            Err(e) => {
                carry.failed.push((dst.clone(), e));
                return;
            }
        };
        for m in members {
            match dst.join(m.resource.name()) {
                Ok(to) => Box::pin(self.copy_member(&m.resource, &to, deep, carry)).await,
                Err(e) => carry.failed.push((m.resource.path.clone(), e)),
            }
        }
    }

    /// One resource, without its members: a collection or the file's bytes, its dead
    /// properties and its modification time.
    async fn copy_one(&self, src: &Resource, dst: &DavPath, carry: &Carry<'_>) -> Result<()> {
        let dead = self.entry(src).await?.dead;
        if src.is_collection {
            self.mkcol(dst, carry.pre, carry.principal).await?;
        } else {
            let body = self.read_content(src, None).await?;
            let opts = PutOptions {
                content_type: src.content_type.clone(),
                principal: carry.principal.map(str::to_owned),
                pre: carry.pre.clone(),
                modified_ns: Some(src.modified_ns),
                ..PutOptions::default()
            };
            self.put(dst, body, opts).await?;
        }
        let replaced = (carry.replacing == Some(dst)).then_some(carry.pre);
        self.set_dead_props(dst, &dead, replaced).await
    }

    /// Stores dead properties as they are (no interpretation: they were interpreted when
    /// first set) on the resource now at `path`. With `replaced`, that resource is a file
    /// that replaced another in one step, which must end as if that one had been deleted
    /// first (RFC 4918 9.8.4, 9.9.3), as in a transfer within the store: the dead
    /// properties the PUT kept go, and so do the locks rooted there (each one proven by
    /// the request's tokens, in `replaced`; a lock taken on the new file since stays).
    async fn set_dead_props(&self, path: &DavPath, dead: &[DeadProp], replaced: Option<&Preconditions>) -> Result<()> {
        if dead.is_empty() && replaced.is_none() {
            return Ok(());
        }
        let mut tx = self.write.begin().await?;
        match self.mounted(path).await? {
            Some(at) => {
                let node = stat(&at, path).await?.and_then(|r| r.node).ok_or(Error::NotFound)?;
                if replaced.is_some() {
                    props::forget_subtree(&mut tx, &at).await?;
                }
                for p in dead {
                    props::set(&mut tx, &at, &node, p).await?;
                }
            }
            None => {
                let target = crate::resource::lookup(&mut tx, path).await?.ok_or(Error::NotFound)?;
                if replaced.is_some() {
                    crate::db::query("DELETE FROM dead_props WHERE resource_id = ?")
                        .bind(target.id)
                        .execute(&mut tx)
                        .await?;
                }
                for p in dead {
                    crate::db::query(
                        "INSERT INTO dead_props (resource_id, namespace, name, xml) VALUES (?, ?, ?, ?) \
                         ON CONFLICT (resource_id, namespace, name) DO UPDATE SET xml = excluded.xml",
                    )
                    .bind(target.id)
                    .bind(&p.name.ns)
                    .bind(&p.name.local)
                    .bind(&p.xml)
                    .execute(&mut tx)
                    .await?;
                }
            }
        }
        for token in replaced.iter().flat_map(|pre| pre.if_header.iter()).flat_map(|h| h.tokens()) {
            crate::db::query("DELETE FROM locks WHERE root_path = ? AND token = ?")
                .bind(path.key())
                .bind(token)
                .execute(&mut tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

/// Copies the property rows of the subtree at `s` to the objects now at the same places
/// below `d`, for rows still stamped with the object at their source path.
async fn copy_props(conn: &mut dyn Handle, s: &At, d: &At, deep: bool) -> Result<()> {
    let rows = props::subtree(conn, s).await?;
    let mut nodes: HashMap<Vec<String>, Option<(String, wharf_backends::NodeId)>> = HashMap::new();
    let tree = s.tree()?;
    for (rest, node, prop) in rows {
        if !deep && !rest.is_empty() {
            continue;
        }
        if !nodes.contains_key(&rest) {
            let from = [s.rel.as_slice(), rest.as_slice()].concat();
            let to = [d.rel.as_slice(), rest.as_slice()].concat();
            let pair = match (tree.stat(&from).await?, tree.stat(&to).await?) {
                (Some(a), Some(b)) => Some((a.node.key(), b.node)),
                _ => None,
            };
            nodes.insert(rest.clone(), pair);
        }
        if let Some(Some((src_node, dst_node))) = nodes.get(&rest) {
            if *src_node == node {
                let at = At { mount: d.mount.clone(), rel: [d.rel.as_slice(), rest.as_slice()].concat() };
                props::set(conn, &at, dst_node, &prop).await?;
            }
        }
    }
    Ok(())
}
