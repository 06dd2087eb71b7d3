//! The repository as one principal sees it: the API every protocol adapter uses. Paths in
//! and out are the principal's view paths; each operation checks the principal's rights
//! on the mount it touches, then runs on the stored tree.

use std::ops::Range;

use wharf_backends::ByteStream;

use super::{Principal, Rights};
use crate::condition::{Preconditions, Tag};
use crate::lock::{ActiveLock, LockRequest};
use crate::path::DavPath;
use crate::props::{PatchOp, PatchResult, PropName};
use crate::resource::{Entry, Resource};
use crate::tree::{Transfer, TransferOutcome};
use crate::{Error, PutOptions, PutOutcome, Quota, Repository, Result};

/// See [`View::allowed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Allowed {
    /// Create files and folders inside (a collection).
    pub create_inside: bool,
    /// Rename within its parent: a MOVE needs delete here and write in the parent.
    pub rename: bool,
    pub delete: bool,
}

pub struct View<'a> {
    repo: &'a Repository,
    principal: &'a Principal,
}

impl Repository {
    /// The tree as `principal` sees it.
    pub fn view<'a>(&'a self, principal: &'a Principal) -> View<'a> {
        View { repo: self, principal }
    }
}

impl View<'_> {
    pub fn principal(&self) -> &Principal {
        self.principal
    }

    fn user(&self) -> Option<&str> {
        self.principal.user.as_deref()
    }

    /// The stored path of a view path, if the principal holds `need` there.
    fn stored(&self, path: &DavPath, need: Rights) -> Result<DavPath> {
        match self.principal.to_stored(path) {
            Some((stored, rights)) if rights.contains(need) => Ok(stored),
            Some(_) => Err(Error::Forbidden(format!("no {need} right on {path}"))),
            None => Err(Error::NotFound),
        }
    }

    fn rights(&self, path: &DavPath) -> Rights {
        self.principal.to_stored(path).map(|(_, r)| r).unwrap_or_default()
    }

    /// What the principal may do at `path`, for front ends that offer only possible actions
    /// (the browser page shows no Upload on a read-only share). Advice only: every
    /// operation still checks for itself.
    pub fn allowed(&self, path: &DavPath) -> Allowed {
        if crate::archive::split(path).is_some() {
            // Inside an archive opened as a folder: nothing can be changed there.
            return Allowed { create_inside: false, rename: false, delete: false };
        }
        let here = self.rights(path);
        let fixed = self.not_a_mount_point(path).is_err();
        let parent_writable = path.parent().is_some_and(|p| self.rights(&p).contains(Rights::WRITE));
        Allowed {
            create_inside: here.contains(Rights::WRITE),
            rename: !fixed && parent_writable && here.contains(Rights::DELETE.with(Rights::READ)),
            delete: !fixed && here.contains(Rights::DELETE),
        }
    }

    /// Mount points (a user's `/` and shares) can't be deleted or moved away.
    fn not_a_mount_point(&self, path: &DavPath) -> Result<()> {
        if self.principal.mounts().iter().any(|m| &m.view == path) {
            return Err(Error::Forbidden(format!("{path} is a mount point")));
        }
        Ok(())
    }

    fn to_view(&self, stored: &DavPath) -> Option<DavPath> {
        self.principal.to_view(stored)
    }

    fn out(&self, mut r: Resource) -> Result<Resource> {
        r.path = self.to_view(&r.path).ok_or(Error::NotFound)?;
        Ok(r)
    }

    fn out_lock(&self, mut l: ActiveLock) -> ActiveLock {
        // A lock rooted above the view (on a share's parent, say) shows at the mount point.
        l.root = self.to_view(&l.root).unwrap_or_else(|| self.mount_view_of(&l.root));
        l
    }

    fn mount_view_of(&self, stored: &DavPath) -> DavPath {
        let m = self.principal.mounts().iter().find(|m| m.stored.starts_with(stored));
        m.map(|m| m.view.clone()).unwrap_or_default()
    }

    fn out_entry(&self, e: Entry) -> Result<Entry> {
        Ok(Entry {
            resource: self.out(e.resource)?,
            dead: e.dead,
            locks: e.locks.into_iter().map(|l| self.out_lock(l)).collect(),
        })
    }

    /// Maps model errors that name stored paths back to view paths.
    fn err(&self, e: Error) -> Error {
        let map = |paths: Vec<DavPath>| paths.iter().map(|p| self.to_view(p).unwrap_or_default()).collect();
        match e {
            Error::Locked(p) => Error::Locked(map(p)),
            Error::ConflictingLock(p) => Error::ConflictingLock(map(p)),
            other => other,
        }
    }

    /// `If` header tags name view paths; the model evaluates them on stored paths.
    fn pre(&self, pre: &Preconditions) -> Preconditions {
        let mut pre = pre.clone();
        for list in pre.if_header.iter_mut().flat_map(|h| h.lists.iter_mut()) {
            if let Tag::Path(p) = &list.resource {
                list.resource = match self.principal.to_stored(p) {
                    Some((stored, _)) => Tag::Path(stored),
                    None => Tag::Foreign(p.to_string()),
                };
            }
        }
        pre
    }

    /// The stored twin of a resource handed back by this view.
    fn stored_resource(&self, r: &Resource, need: Rights) -> Result<Resource> {
        Ok(r.at(self.stored(&r.path, need)?))
    }

    pub async fn resolve(&self, path: &DavPath) -> Result<Option<Resource>> {
        let stored = self.stored(path, Rights::READ)?;
        match self.repo.resolve(&stored).await? {
            Some(mut r) => {
                r.path = path.clone();
                Ok(Some(r))
            }
            None => Ok(None),
        }
    }

    /// [`View::resolve`] for a GET: a small file on a mounted tree comes with its content,
    /// so [`View::read_content`] of it costs nothing more.
    pub async fn resolve_for_read(&self, path: &DavPath) -> Result<Option<Resource>> {
        let stored = self.stored(path, Rights::READ)?;
        match self.repo.resolve_for_read(&stored).await? {
            Some(mut r) => {
                r.path = path.clone();
                Ok(Some(r))
            }
            None => Ok(None),
        }
    }

    pub async fn check_read(
        &self,
        path: &DavPath,
        target: Option<&Resource>,
        pre: &Preconditions,
        get: bool,
    ) -> Result<()> {
        let stored = self.stored(path, Rights::READ)?;
        let target = match target {
            // The usual case (a GET's own target): mapped once.
            Some(t) if t.path == *path => Some(t.at(stored.clone())),
            Some(t) => Some(self.stored_resource(t, Rights::READ)?),
            None => None,
        };
        self.repo.check_read(&stored, target.as_ref(), &self.pre(pre), get).await
    }

    pub async fn entry(&self, resource: &Resource) -> Result<Entry> {
        let stored = self.stored_resource(resource, Rights::READ)?;
        self.out_entry(self.repo.entry(&stored).await?)
    }

    /// Members of a collection, plus the mount points (shares) that sit directly in it.
    pub async fn list(&self, parent: &Resource) -> Result<Vec<Entry>> {
        let stored = self.stored_resource(parent, Rights::READ)?;
        let mounts: Vec<_> = self
            .principal
            .mounts()
            .iter()
            .filter(|m| m.view.parent().as_ref() == Some(&parent.path) && m.rights.contains(Rights::READ))
            .collect();
        let listed = self.repo.list(&stored).await?;
        let mut out = Vec::with_capacity(listed.len() + mounts.len());
        for e in listed {
            let e = self.out_entry(e)?;
            if !mounts.iter().any(|m| m.view == e.resource.path) {
                out.push(e);
            }
        }
        for m in mounts {
            if let Some(r) = self.repo.resolve(&m.stored).await? {
                out.push(self.out_entry(self.repo.entry(&r).await?)?);
            }
        }
        Ok(out)
    }

    /// Counts what a Depth infinity listing would show, mounted shares included.
    pub async fn count_below(&self, resource: &Resource, cap: u64) -> Result<u64> {
        let stored = self.stored_resource(resource, Rights::READ)?;
        let mut n = self.repo.count_below(&stored, cap).await?;
        let below =
            self.principal.mounts().iter().filter(|m| m.view != resource.path && m.view.starts_with(&resource.path));
        for m in below {
            if let Some(root) = self.repo.resolve(&m.stored).await? {
                n = n.saturating_add(1).saturating_add(self.repo.count_below(&root, cap).await?);
            }
        }
        Ok(n)
    }

    /// RFC 4331 figures of the tree `path` lies in (a mounted folder has its own).
    pub async fn quota(&self, path: &DavPath) -> Result<Quota> {
        let stored = self.stored(path, Rights::READ)?;
        self.repo.quota_at(&stored).await
    }

    pub async fn read_content(&self, resource: &Resource, range: Option<Range<u64>>) -> Result<ByteStream> {
        let stored = self.stored_resource(resource, Rights::READ)?;
        self.repo.read_content(&stored, range).await
    }

    /// A resumed write (`resume_at`) keeps the current bytes, so it also needs read.
    pub async fn put(&self, path: &DavPath, body: ByteStream, mut opts: PutOptions) -> Result<PutOutcome> {
        let need = if opts.resume_at.unwrap_or(0) > 0 { Rights::WRITE.with(Rights::READ) } else { Rights::WRITE };
        let stored = self.stored(path, need)?;
        opts.pre = self.pre(&opts.pre);
        opts.principal = self.user().map(str::to_owned);
        let mut outcome = self.repo.put(&stored, body, opts).await.map_err(|e| self.err(e))?;
        outcome.resource = self.out(outcome.resource)?;
        Ok(outcome)
    }

    pub async fn mkcol(&self, path: &DavPath, pre: &Preconditions) -> Result<Resource> {
        let stored = self.stored(path, Rights::WRITE)?;
        let r = self.repo.mkcol(&stored, &self.pre(pre), self.user()).await.map_err(|e| self.err(e))?;
        self.out(r)
    }

    pub async fn delete(&self, path: &DavPath, pre: &Preconditions) -> Result<()> {
        self.not_a_mount_point(path)?;
        let stored = self.stored(path, Rights::DELETE)?;
        self.repo.delete(&stored, &self.pre(pre), self.user()).await.map_err(|e| self.err(e))
    }

    /// COPY needs read on the source; MOVE needs delete there. Both need write on the
    /// destination, and delete too when they replace something.
    pub async fn transfer(&self, req: Transfer<'_>) -> Result<TransferOutcome> {
        let src = if req.moving {
            self.not_a_mount_point(req.src)?;
            self.stored(req.src, Rights::DELETE.with(Rights::READ))?
        } else {
            self.stored(req.src, Rights::READ)?
        };
        self.not_a_mount_point(req.dst)?;
        let mut dst = self.stored(req.dst, Rights::WRITE)?;
        if req.overwrite && self.repo.resolve(&dst).await?.is_some() {
            dst = self.stored(req.dst, Rights::WRITE.with(Rights::DELETE))?;
        }
        let pre = self.pre(req.pre);
        let stored = Transfer { src: &src, dst: &dst, pre: &pre, principal: self.user(), ..req };
        match self.repo.transfer(stored).await.map_err(|e| self.err(e))? {
            TransferOutcome::Partial(failed) => Ok(TransferOutcome::Partial(
                failed.into_iter().map(|(p, e)| (self.to_view(&p).unwrap_or_default(), self.err(e))).collect(),
            )),
            done => Ok(done),
        }
    }

    pub async fn proppatch(
        &self,
        path: &DavPath,
        ops: &[PatchOp],
        pre: &Preconditions,
    ) -> Result<Vec<(PropName, PatchResult)>> {
        let stored = self.stored(path, Rights::WRITE)?;
        self.repo.proppatch(&stored, ops, &self.pre(pre), self.user()).await.map_err(|e| self.err(e))
    }

    /// LOCK needs the lock right; locking an unmapped URL creates a resource, so also write.
    pub async fn lock(&self, path: &DavPath, mut req: LockRequest, pre: &Preconditions) -> Result<(ActiveLock, bool)> {
        let mut stored = self.stored(path, Rights::LOCK)?;
        if self.repo.resolve(&stored).await?.is_none() {
            stored = self.stored(path, Rights::LOCK.with(Rights::WRITE))?;
        }
        req.principal = self.user().map(str::to_owned);
        let (lock, created) = self.repo.lock(&stored, req, &self.pre(pre)).await.map_err(|e| self.err(e))?;
        Ok((self.out_lock(lock), created))
    }

    pub async fn refresh_lock(
        &self,
        path: &DavPath,
        pre: &Preconditions,
        timeouts: &[Option<u64>],
    ) -> Result<ActiveLock> {
        let stored = self.stored(path, Rights::LOCK)?;
        let lock = self.repo.refresh_lock(&stored, &self.pre(pre), self.user(), timeouts).await;
        Ok(self.out_lock(lock.map_err(|e| self.err(e))?))
    }

    /// Removes a lock; someone else's lock only with the admin right there.
    pub async fn unlock(&self, path: &DavPath, token: &str) -> Result<()> {
        let stored = self.stored(path, Rights::LOCK)?;
        let may_break = self.rights(path).contains(Rights::ADMIN);
        self.repo.unlock(&stored, token, self.user(), may_break).await
    }
}
