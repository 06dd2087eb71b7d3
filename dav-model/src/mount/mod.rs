//! The mount table: stored paths (a share's root, a user's home) backed by a foreign
//! [`Tree`] instead of the native store, such as a folder of the host served in place.
//!
//! Every operation of the model starts by asking [`Repository::mounted`] where its path
//! lives. The native store answers with its own SQL tree (names are rows beside their
//! properties, so one transaction covers both); a mounted path goes to `ops`, which keeps
//! everything protocol-level (rights were checked by the view; locks, conditions, dead
//! properties, ETags, times) above the tree exactly as the native store does, and asks the
//! tree only for names and bytes. Adapters never know which kind of tree they are on, and
//! a new kind of tree is a new `Tree` implementation, not a new branch here.
//!
//! Nothing about a mounted tree is cached: every lookup asks the tree, so changes made by
//! other programs show at once.

mod ops;
pub(crate) use ops::{stat, stat_for_read};
mod props;
mod transfer;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use wharf_backends::{HostOptions, HostTree, Meta, Tree};

use crate::path::DavPath;
use crate::resource::Resource;
use crate::{Error, Repository, Result};

/// The kinds of tree a mount can be; stored in `mounts.kind`.
pub const HOST: &str = "host";

/// A mount as configured (`wharf share add NAME --host DIR`), for listings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountInfo {
    pub stored: DavPath,
    pub kind: String,
    pub source: String,
    pub read_only: bool,
    /// A cap on the bytes the folder's files may hold.
    pub quota_bytes: Option<u64>,
}

/// An opened mount.
pub(crate) struct Mounted {
    pub id: i64,
    pub info: MountInfo,
    /// The tree, or why it could not be opened (a folder that went away): every request
    /// under the mount then fails with that reason instead of reaching the native store.
    pub tree: std::result::Result<Arc<dyn Tree>, String>,
    /// Bytes the files hold, as last walked, and when: a capped mount checks writes
    /// against it, adjusted by its own writes, walking again once it is a few seconds old.
    pub used: std::sync::Mutex<Option<(std::time::Instant, u64)>>,
}

/// How old the walked figure of a capped mount's bytes may be before a write walks again.
const USED_FRESH: std::time::Duration = std::time::Duration::from_secs(5);

impl Mounted {
    pub fn tree(&self) -> Result<&dyn Tree> {
        match &self.tree {
            Ok(t) => Ok(t.as_ref()),
            Err(why) => Err(Error::Internal(format!("{} is unavailable: {why}", self.info.stored))),
        }
    }

    /// Bytes the mount's files hold: walked, or the recent walk adjusted since.
    pub async fn used(&self) -> Result<u64> {
        let cached = *self.used.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, n)) = cached.filter(|(at, _)| at.elapsed() < USED_FRESH) {
            return Ok(n);
        }
        let root: &[String] = &[];
        let n = self.tree()?.used(root).await?;
        *self.used.lock().unwrap_or_else(|e| e.into_inner()) = Some((std::time::Instant::now(), n));
        Ok(n)
    }

    /// After a write of this process: the figure moves by what it added or removed.
    pub fn adjust_used(&self, added: u64, removed: u64) {
        if let Some((_, n)) = self.used.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            *n = n.saturating_add(added).saturating_sub(removed);
        }
    }

    /// After a change whose size is not known at once (a DELETE, a COPY of a folder).
    pub fn forget_used(&self) {
        *self.used.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// Refuses a write that would take the files past the mount's cap (507).
    pub async fn check_quota(&self, adding: u64, removing: u64) -> Result<()> {
        let Some(cap) = self.info.quota_bytes else { return Ok(()) };
        if self.used().await?.saturating_sub(removing).saturating_add(adding) > cap {
            return Err(Error::InsufficientStorage);
        }
        Ok(())
    }
}

/// A stored path inside a mount: the mount and the names below its root.
#[derive(Clone)]
pub(crate) struct At {
    pub mount: Arc<Mounted>,
    pub rel: Vec<String>,
}

impl At {
    /// The key of this path in `mounted_props`: `''` for the mount's root, `/a/b` below.
    pub fn key(&self) -> String {
        rel_key(&self.rel)
    }

    pub fn tree(&self) -> Result<&dyn Tree> {
        self.mount.tree()
    }

    pub fn parent(&self) -> Option<At> {
        let mut rel = self.rel.clone();
        rel.pop()?;
        Some(At { mount: self.mount.clone(), rel })
    }

    pub fn same_mount(&self, other: &At) -> bool {
        self.mount.id == other.mount.id
    }
}

pub(crate) fn rel_key(rel: &[String]) -> String {
    rel.iter().map(|s| format!("/{s}")).collect()
}

/// What the repository knows of its mounts; replaced whole on reload.
#[derive(Default)]
pub(crate) struct MountTable {
    mounts: RwLock<Arc<Vec<Arc<Mounted>>>>,
}

impl MountTable {
    fn snapshot(&self) -> Arc<Vec<Arc<Mounted>>> {
        self.mounts.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// A resource of a mounted tree, as the model shows it. Mounted resources have no row
/// (`id` 0) and no blob; their ETag is the tree's version of the object.
pub(crate) fn resource_of(path: DavPath, meta: &Meta) -> Resource {
    Resource {
        id: 0,
        path,
        is_collection: meta.is_dir(),
        blob: None,
        size: if meta.is_dir() { 0 } else { meta.size },
        content_type: None,
        etag: meta.version(),
        created_ns: meta.created_ns,
        modified_ns: meta.modified_ns,
        node: Some(meta.node),
        small_body: None,
    }
}

impl Repository {
    /// The mount `stored` lies in, if any: inside an archive (see `archive.rs`), or in a
    /// configured mount (the most specific one).
    pub(crate) async fn mounted(&self, stored: &DavPath) -> Result<Option<At>> {
        if let Some((file, root, rel)) = crate::archive::split(stored) {
            if let Some(at) = self.archive_at(file, root, rel).await? {
                return Ok(Some(at));
            }
        }
        match self.mount_of(stored) {
            Some(at) if at.mount.info.kind == crate::archive::ARCHIVE => self.archive_share_at(at).await.map(Some),
            other => Ok(other),
        }
    }

    /// The configured mount `stored` lies in, if any (the most specific one).
    pub(crate) fn mount_of(&self, stored: &DavPath) -> Option<At> {
        let table = self.mounts.snapshot();
        let mount = table
            .iter()
            .filter(|m| stored.starts_with(&m.info.stored))
            .max_by_key(|m| m.info.stored.segments().len())?
            .clone();
        let rel = stored.segments()[mount.info.stored.segments().len()..].iter().map(|s| s.to_string()).collect();
        Some(At { mount, rel })
    }

    /// Reads the mount table again, keeping trees already open for unchanged rows. Runs at
    /// start-up and whenever users or shares change (see the authenticator's watch).
    pub async fn reload_mounts(&self) -> Result<()> {
        let rows: Vec<(i64, String, String, String, bool, Option<i64>)> =
            crate::db::query_as("SELECT id, stored_path, kind, source, read_only, quota_bytes FROM mounts ORDER BY id")
                .fetch_all(&self.read)
                .await?;
        let old: HashMap<i64, Arc<Mounted>> = self.mounts.snapshot().iter().map(|m| (m.id, m.clone())).collect();
        let mut next = Vec::with_capacity(rows.len());
        for (id, stored, kind, source, read_only, quota) in rows {
            let quota_bytes = quota.map(|q| q.max(0) as u64);
            let info = MountInfo { stored: DavPath::from_key(&stored)?, kind, source, read_only, quota_bytes };
            match old.get(&id) {
                Some(m) if m.info == info && m.tree.is_ok() => next.push(m.clone()),
                _ => {
                    let tree = self.open_tree(&info).await;
                    if let Err(why) = &tree {
                        tracing::error!(mount = %info.stored, source = %info.source, %why, "mount unavailable");
                    }
                    next.push(Arc::new(Mounted { id, info, tree, used: Default::default() }));
                }
            }
        }
        *self.mounts.mounts.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(next);
        Ok(())
    }

    async fn open_tree(&self, info: &MountInfo) -> std::result::Result<Arc<dyn Tree>, String> {
        // Checked again as it resolves now: the folder may have been replaced by a link.
        let now = std::fs::canonicalize(&info.source).map_err(|e| e.to_string())?;
        self.check_source(&now).map_err(|e| e.to_string())?;
        match info.kind.as_str() {
            HOST => {
                let c = &self.config;
                let opts = HostOptions {
                    read_only: info.read_only,
                    durability: c.durability,
                    owner: c.host_owner,
                    group: c.host_group,
                    file_mode: c.host_file_mode,
                    dir_mode: c.host_dir_mode,
                };
                match HostTree::open(&PathBuf::from(&info.source), opts).await {
                    Ok(t) => Ok(Arc::new(t)),
                    Err(e) => Err(e.to_string()),
                }
            }
            // The archive's folder, read-only: the archive file is read beneath it, like
            // any host file (see `archive.rs`).
            crate::archive::ARCHIVE => {
                let dir = now.parent().ok_or("an archive share needs a file, not /")?;
                let opts = HostOptions { read_only: true, ..HostOptions::default() };
                match HostTree::open(dir, opts).await {
                    Ok(t) => Ok(Arc::new(t)),
                    Err(e) => Err(e.to_string()),
                }
            }
            other => Err(format!("unknown kind of mount {other:?}")),
        }
    }

    /// Whether a mount could not be opened (its folder was missing, say): the watch that
    /// reloads on changes then also tries again, so the folder is served once it is back.
    pub fn has_unavailable_mounts(&self) -> bool {
        self.mounts.snapshot().iter().any(|m| m.tree.is_err())
    }

    /// Every mount, for `wharf share list` and the like.
    pub async fn list_mounts(&self) -> Result<Vec<MountInfo>> {
        let rows: Vec<(String, String, String, bool, Option<i64>)> = crate::db::query_as(
            "SELECT stored_path, kind, source, read_only, quota_bytes FROM mounts ORDER BY stored_path",
        )
        .fetch_all(&self.read)
        .await?;
        rows.into_iter()
            .map(|(stored, kind, source, read_only, quota)| {
                let quota_bytes = quota.map(|q| q.max(0) as u64);
                Ok(MountInfo { stored: DavPath::from_key(&stored)?, kind, source, read_only, quota_bytes })
            })
            .collect()
    }
}

impl Repository {
    /// Checks that `dir` is a folder this server may serve at `stored`, and gives its
    /// canonical form (what the mount table stores, so a later change of the working
    /// directory changes nothing). A folder that holds or lies inside another mount's is
    /// refused: one file under two mounts would escape each mount's locks, properties and
    /// read-only setting, and a MOVE from one to the other could delete its own source.
    pub async fn host_folder(&self, dir: &std::path::Path, stored: &DavPath) -> Result<String> {
        let source = host_source(dir)?;
        let path = std::path::Path::new(&source);
        self.check_source(path)?;
        for m in self.list_mounts().await? {
            let other = std::path::Path::new(&m.source);
            if m.stored != *stored && (other.starts_with(path) || path.starts_with(other)) {
                return Err(Error::BadRequest(format!("{source} overlaps the folder served at {}", m.stored)));
            }
        }
        Ok(source)
    }

    /// Checks that `file` is an archive this server may serve as a share (a zip, tar,
    /// tar.gz or tar.zst by its first bytes, outside the data directory), and gives its
    /// canonical path.
    pub async fn archive_file(&self, file: &std::path::Path) -> Result<String> {
        let bad = |why: String| Error::BadRequest(format!("cannot serve {}: {why}", file.display()));
        let canonical = std::fs::canonicalize(file).map_err(|e| bad(e.to_string()))?;
        let mut head = vec![0; 512];
        let n = {
            use std::io::Read;
            let mut f = std::fs::File::open(&canonical).map_err(|e| bad(e.to_string()))?;
            if !f.metadata().map_err(|e| bad(e.to_string()))?.is_file() {
                return Err(bad("not a file".into()));
            }
            f.read(&mut head).map_err(|e| bad(e.to_string()))?
        };
        if wharf_backends::archive::Format::sniff(&head[..n]).is_none() {
            return Err(bad("not a zip, tar, tar.gz or tar.zst archive".into()));
        }
        self.check_source(&canonical)?;
        canonical.to_str().map(str::to_owned).ok_or_else(|| bad("the path is not valid UTF-8".into()))
    }

    /// A folder holding the server's own data directory, or inside it, would serve the
    /// database (password hashes) and the blob store to its users.
    fn check_source(&self, source: &std::path::Path) -> Result<()> {
        let Some(data) = self.data_dir.as_deref().and_then(|d| std::fs::canonicalize(d).ok()) else {
            return Ok(());
        };
        if data.starts_with(source) || source.starts_with(&data) {
            return Err(Error::BadRequest(format!(
                "{} holds or lies inside the data directory {}: it can't be served",
                source.display(),
                data.display()
            )));
        }
        Ok(())
    }
}

/// Checks that `dir` is an existing folder with a UTF-8 path, and gives its canonical form.
pub fn host_source(dir: &std::path::Path) -> Result<String> {
    let canonical =
        std::fs::canonicalize(dir).map_err(|e| Error::BadRequest(format!("cannot serve {}: {e}", dir.display())))?;
    if !canonical.is_dir() {
        return Err(Error::BadRequest(format!("{} is not a directory", dir.display())));
    }
    canonical
        .to_str()
        .map(str::to_owned)
        .ok_or_else(|| Error::BadRequest(format!("{} is not valid UTF-8", dir.display())))
}
