//! A folder of the host as a [`Tree`].
//!
//! The folder is shared with other programs and users, so its contents are not trusted:
//! any name may be a link planted to lead out, and may be swapped between two calls. Hence
//! the root is opened once and every look-up is an `openat2` beneath it
//! (`RESOLVE_BENEATH`), which the kernel checks at every step of the walk; operations
//! that act on a name itself (create, unlink, rename) act on it relative to its parent's
//! fd, so a link swapped in for a parent can't redirect them either. No absolute host path
//! is ever built from a request.
//!
//! Every system call that may wait for a disk runs on tokio's blocking pool, in as few
//! hops as the operation allows (one for a stat, a listing, or a small read or upload).
//! Stats and small reads all in the kernel's caches are answered without a hop (`cached`).
//!
//! Layout of this module: `names` (disk bytes ↔ model names), `resolve` (paths → fds),
//! `fs` (the system calls and their errors), `ops` and `walk` (what each operation does),
//! `stage` (taking in bodies), `read` (giving them out), `cached` (the calls made without
//! a hop).

mod cached;
mod fs;
mod names;
mod ops;
mod read;
mod resolve;
mod stage;
mod walk;

#[cfg(test)]
mod tests;

use std::ops::Range;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use rustix::fs::{self as rfs, Mode, OFlags};
use rustix::io::Errno;

use crate::tree::{Caps, DirEntry, Install, Installed, Meta, StageOptions, Tree, TreeStaged};
use crate::{ByteStream, Durability, Error, Result};
use fs::Mapped;

/// How a host tree writes. The mode and owner options exist because the folder is usually
/// shared with other programs running as other users, which expect files they can read
/// whatever Wharf's own umask and user are.
#[derive(Debug, Clone, Default)]
pub struct HostOptions {
    /// Refuse every write ([`Error::ReadOnly`]).
    pub read_only: bool,
    /// [`Durability::Full`] fsyncs each file before it is renamed into place, and the
    /// directory after each rename, mkdir or removal.
    pub durability: Durability,
    /// Owner given to files and directories Wharf creates (`None`: Wharf's own user).
    pub owner: Option<u32>,
    /// Group given likewise.
    pub group: Option<u32>,
    /// Mode of created files, applied exactly (the umask does not apply); `None`: 0o666
    /// less the umask, as any program would create them.
    pub file_mode: Option<u32>,
    /// Mode of created directories likewise; `None`: 0o777 less the umask.
    pub dir_mode: Option<u32>,
}

/// A folder of the host. Cheap to clone: clones share the root fd.
#[derive(Clone)]
pub struct HostTree {
    inner: Arc<Inner>,
}

pub(super) struct Inner {
    root: PathBuf,
    /// Resolution-only handle on the root, the base of every look-up.
    fd: OwnedFd,
    /// Device and inode of the root, so that `install` can refuse a body staged in
    /// another tree.
    id: (u64, u64),
    opts: HostOptions,
    /// An ownership change we may not make is reported once, not on every upload.
    chown_warned: AtomicBool,
    /// Which calls to try without a hop first (see `cached`).
    cached: cached::Cached,
}

impl std::fmt::Debug for HostTree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostTree").field("root", &self.inner.root).field("opts", &self.inner.opts).finish()
    }
}

impl HostTree {
    /// Opens the folder at `root`, which must exist and be a directory. Fails with
    /// [`Error::Unsupported`] on kernels without `openat2` (before Linux 5.6): without it
    /// look-ups can't be confined to the folder.
    pub async fn open(root: &Path, opts: HostOptions) -> Result<HostTree> {
        let path = root.to_path_buf();
        let inner = blocking(move || {
            let fd = rfs::openat(rfs::CWD, &path, fs::DIR_PATH | OFlags::CLOEXEC, Mode::empty()).mapped()?;
            match fs::beneath(fd.as_fd(), b"", fs::DIR_PATH) {
                // EPERM: a seccomp filter that predates openat2 (an `O_PATH` open of a
                // directory we just opened needs no permission).
                Err(e) if fs::is(&e, Errno::NOSYS) || fs::is(&e, Errno::PERM) => {
                    return Err(Error::Unsupported("openat2 (Linux 5.6 or later)"));
                }
                result => drop(result.mapped()?),
            }
            let st = fs::fstat(fd.as_fd()).mapped()?;
            let cached = cached::Cached::probe(fd.as_fd());
            Ok(Inner { root: path, fd, id: (st.dev, st.ino), opts, chown_warned: AtomicBool::new(false), cached })
        })
        .await?;
        Ok(HostTree { inner: Arc::new(inner) })
    }

    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    /// Runs `op` on the blocking pool with the path checked and owned.
    async fn run<T, F>(&self, path: &[String], op: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Inner, &[String]) -> Result<T> + Send + 'static,
    {
        let path = checked(path)?;
        let inner = self.inner.clone();
        blocking(move || op(&inner, &path)).await
    }

    fn writable(&self) -> Result<()> {
        if self.inner.opts.read_only {
            return Err(Error::ReadOnly);
        }
        Ok(())
    }
}

impl Inner {
    fn full(&self) -> bool {
        self.opts.durability == Durability::Full
    }

    /// After a change to `dir`'s entries, in Full durability.
    fn synced(&self, dir: std::os::fd::BorrowedFd<'_>) -> Result<()> {
        if self.full() {
            fs::sync_dir(dir).mapped()?;
        }
        Ok(())
    }

    /// Gives a created file or directory the configured owner and mode. A refused owner
    /// change (Wharf not running as root) is logged once and otherwise ignored: the
    /// content is stored all the same, as the administrator would rather have it.
    fn adopt(&self, fd: std::os::fd::BorrowedFd<'_>, dir: bool) -> Result<()> {
        let (owner, group) = (self.opts.owner, self.opts.group);
        if owner.is_some() || group.is_some() {
            let uid = owner.map(rfs::Uid::from_raw);
            let gid = group.map(rfs::Gid::from_raw);
            match rfs::fchown(fd, uid, gid) {
                Err(Errno::PERM) => {
                    if !self.chown_warned.swap(true, Ordering::Relaxed) {
                        tracing::warn!(root = %self.root.display(), ?owner, ?group, "may not give created files the configured owner; keeping Wharf's");
                    }
                }
                result => result.mapped()?,
            }
        }
        if let Some(mode) = if dir { self.opts.dir_mode } else { self.opts.file_mode } {
            rfs::fchmod(fd, Mode::from_raw_mode(mode)).mapped()?;
        }
        Ok(())
    }
}

/// Checks every segment; the model already guarantees them, but a slash, NUL or dot
/// segment slipping through would change what the path means on disk.
fn checked(path: &[String]) -> Result<Vec<String>> {
    if valid(path) {
        Ok(path.to_vec())
    } else {
        Err(Error::Escapes)
    }
}

fn valid(path: &[String]) -> bool {
    path.iter().all(|seg| names::valid_segment(seg))
}

/// The last segment: the one a write creates. Refuses the root and the tree's own temp
/// names (which also refuses every alias spelling, see `names::canon`).
fn last(path: &[String]) -> Result<&str> {
    let name = path.last().ok_or(Error::Escapes)?;
    if names::canon(name) == names::Canon::Alias {
        return Err(Error::Escapes);
    }
    Ok(name)
}

/// Runs file-system work off the async workers; a panicked task surfaces as an I/O error.
async fn blocking<T, F>(f: F) -> Result<T>
where
    F: FnOnce() -> Result<T> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f).await.map_err(|e| Error::Io(std::io::Error::other(e)))?
}

#[async_trait::async_trait]
impl Tree for HostTree {
    fn caps(&self) -> Caps {
        Caps {
            rename: true,
            copy: true,
            set_times: true,
            atomic_replace: true,
            no_replace: true,
            read_only: self.inner.opts.read_only,
        }
    }

    async fn stat(&self, path: &[String]) -> Result<Option<Meta>> {
        if let Some(meta) = valid(path).then(|| self.inner.stat_cached(path)).flatten() {
            return Ok(Some(meta));
        }
        self.run(path, |t, p| t.stat_now(p)).await
    }

    async fn list(&self, dir: &[String]) -> Result<Vec<DirEntry>> {
        self.run(dir, |t, p| t.list_now(p)).await
    }

    async fn read(&self, path: &[String], range: Option<Range<u64>>) -> Result<(Meta, ByteStream)> {
        if let Some(r) = &range {
            if r.start > r.end {
                return Err(crate::invalid_input(format!("byte range {}..{} is reversed", r.start, r.end)));
            }
        }
        if let Some((meta, opened)) = valid(path).then(|| self.inner.read_cached(path, range.clone())).flatten() {
            return Ok((meta, opened.into_stream()));
        }
        let (meta, opened) = self.run(path, move |t, p| t.read_now(p, range)).await?;
        Ok((meta, opened.into_stream()))
    }

    async fn stage(&self, path: &[String], body: ByteStream, opts: StageOptions) -> Result<TreeStaged> {
        self.writable()?;
        let path = checked(path)?;
        last(&path)?;
        stage::stage(self.inner.clone(), path, body, opts).await
    }

    async fn install(&self, staged: TreeStaged, path: &[String], how: Install) -> Result<Installed> {
        let staged = staged
            .inner
            .downcast::<stage::HostStaged>()
            .map_err(|_| crate::invalid_input("staged body does not belong to a host tree"))?;
        self.writable()?;
        self.run(path, move |t, p| t.install_now(*staged, p, how)).await
    }

    async fn create_dir(&self, path: &[String]) -> Result<Meta> {
        self.writable()?;
        self.run(path, |t, p| t.create_dir_now(p)).await
    }

    async fn remove(&self, path: &[String]) -> Result<()> {
        self.writable()?;
        self.run(path, |t, p| t.remove_now(p)).await
    }

    async fn remove_empty_dir(&self, path: &[String]) -> Result<()> {
        self.writable()?;
        self.run(path, |t, p| t.remove_empty_dir_now(p)).await
    }

    async fn available(&self) -> Result<u64> {
        self.run(&[], |t, _| fs::available(t.root_fd()).mapped()).await
    }

    async fn used(&self, dir: &[String]) -> Result<u64> {
        self.run(dir, |t, p| t.used_now(p)).await
    }

    async fn rename(&self, from: &[String], to: &[String], replace: bool) -> Result<()> {
        self.writable()?;
        let to = checked(to)?;
        self.run(from, move |t, p| t.rename_now(p, &to, replace)).await
    }

    async fn copy(&self, from: &[String], to: &[String]) -> Result<()> {
        self.writable()?;
        let to = checked(to)?;
        self.run(from, move |t, p| t.copy_now(p, &to)).await
    }

    async fn set_modified(&self, path: &[String], modified_ns: i64) -> Result<Meta> {
        self.writable()?;
        self.run(path, move |t, p| t.set_modified_now(p, modified_ns)).await
    }
}
