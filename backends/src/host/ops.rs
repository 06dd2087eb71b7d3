//! The operations of a host tree, each one call on the blocking pool.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, RenameFlags};
use rustix::io::Errno;

use super::fs::{self, Mapped, Stat, DIR_READ, FILE_READ, PATH};
use super::read::Opened;
use super::resolve::{entry, Entry};
use super::stage::{HostStaged, Temp};
use super::{last, names, walk, Inner};
use crate::tree::{DirEntry, Install, Installed, Kind, Meta};
use crate::{invalid_input, Error, Result};

/// For look-ups of something that must exist: a link that leaves the tree is `Escapes`,
/// anything else that finds nothing is `Missing` (a file on the way included: to a
/// reader, `a/b` under a file `a` is simply not there).
pub(super) fn lookup_err(e: io::Error) -> Error {
    match fs::errno(&e) {
        Some(Errno::XDEV) => Error::Escapes,
        Some(Errno::NOTDIR) => Error::Missing,
        _ => fs::map(e),
    }
}

/// For the parent of a name to create: a file on the way is `NotADirectory`.
fn parent_err(e: io::Error) -> Error {
    fs::map(e)
}

/// rename(2)'s refusals to replace, which the trait spells as the target's kind.
fn rename_err(e: io::Error) -> Error {
    match fs::errno(&e) {
        Some(Errno::XDEV) => Error::CrossDevice,
        Some(Errno::ISDIR | Errno::NOTEMPTY | Errno::EXIST) => Error::IsADirectory,
        _ => fs::map(e),
    }
}

/// Renames without ever replacing, atomically: `RENAME_NOREPLACE` where the file system
/// has it; else a hard link (which fails atomically on an existing name) for a file;
/// else, on file systems with neither, a check and a rename, the best they allow.
pub(super) fn rename_new(from_dir: BorrowedFd<'_>, from: &CStr, to_dir: BorrowedFd<'_>, to: &CStr) -> Result<()> {
    let err = match rfs::renameat_with(from_dir, from, to_dir, to, RenameFlags::NOREPLACE) {
        Ok(()) => return Ok(()),
        Err(Errno::EXIST) => return Err(Error::Exists),
        Err(Errno::INVAL) => Errno::INVAL,
        Err(e) => return Err(rename_err(e.into())),
    };
    let is_dir = fs::lstat_at(from_dir, from).mapped()?.is_dir();
    if !is_dir {
        match rfs::linkat(from_dir, from, to_dir, to, AtFlags::empty()) {
            Ok(()) => return rfs::unlinkat(from_dir, from, AtFlags::empty()).mapped(),
            Err(Errno::EXIST) => return Err(Error::Exists),
            Err(_) => {}
        }
    }
    match fs::lstat_at(to_dir, to) {
        Ok(_) => Err(Error::Exists),
        Err(e) if fs::is(&e, Errno::NOENT) => {
            rfs::renameat(from_dir, from, to_dir, to).map_err(|e| rename_err(e.into()))
        }
        Err(_) => Err(rename_err(err.into())),
    }
}

/// The bytes a read of `range` gives from a file of `size` bytes: up to its end.
pub(super) fn span(range: Option<std::ops::Range<u64>>, size: u64) -> Result<(u64, u64)> {
    match range {
        Some(r) if r.start > size => {
            Err(invalid_input(format!("byte range starts at {}, past the size {size}", r.start)))
        }
        Some(r) => Ok((r.start, r.end.min(size))),
        None => Ok((0, size)),
    }
}

impl Inner {
    pub(super) fn stat_now(&self, path: &[String]) -> Result<Option<Meta>> {
        match self.open(path, PATH) {
            Ok((fd, _)) => Ok(Some(fs::fstat(fd.as_fd()).mapped()?.meta())),
            Err(e) if fs::is_absent(&e) => Ok(None),
            Err(e) => Err(fs::map(e)),
        }
    }

    /// One `getdents` pass with one `statx` per member; links are followed (beneath the
    /// root, from the in-tree path of the member) only for members that are links.
    pub(super) fn list_now(&self, path: &[String]) -> Result<Vec<DirEntry>> {
        let (fd, dir_path) = match self.open(path, DIR_READ) {
            Ok(opened) => opened,
            Err(e) if fs::is(&e, Errno::NOTDIR) => {
                return Err(match self.stat_now(path)? {
                    Some(_) => Error::NotADirectory,
                    None => Error::Missing,
                });
            }
            // As for `stat`: a link leading out is simply not there.
            Err(e) if fs::is_absent(&e) => return Err(Error::Missing),
            Err(e) => return Err(fs::map(e)),
        };
        // Names are given over all entries, shown or not, exactly as `resolve::scan` gives
        // them: a name shown for one entry must be the name that resolves to it.
        let mut dir = rfs::Dir::new(fd).mapped()?;
        let mut all = fs::read_names(&mut dir).mapped()?;
        all.retain(|name| !names::is_temp(name.as_bytes()));
        let shown = names::listing(&all.iter().map(|n| n.as_bytes()).collect::<Vec<_>>());
        let at = dir.fd().mapped()?;
        let mut entries = Vec::with_capacity(all.len());
        for (bytes, name) in all.iter().zip(shown) {
            let Some(meta) = self.member(at, &dir_path, bytes) else { continue };
            match name {
                Some(name) => entries.push(DirEntry { name, meta }),
                None => tracing::debug!(name = %names::encode(bytes.as_bytes()), "leaving out a name too long to show"),
            }
        }
        Ok(entries)
    }

    /// A listing member's metadata, or `None` (with a log line) for what is not shown.
    fn member(&self, dir: BorrowedFd<'_>, dir_path: &[u8], name: &CStr) -> Option<Meta> {
        let shown = || names::encode(name.to_bytes());
        let st = match fs::lstat_at(dir, name) {
            Ok(st) => st,
            Err(e) => {
                tracing::debug!(name = %shown(), error = %e, "leaving out a member that can't be read");
                return None;
            }
        };
        let st = if st.file_type == FileType::Symlink {
            let path = fs::join(dir_path, name.to_bytes());
            match fs::beneath(self.root_fd(), &path, PATH).and_then(|fd| fs::fstat(fd.as_fd())) {
                Ok(target) if target.is_dir() => {
                    tracing::debug!(name = %shown(), "leaving out a link to a folder (not followed)");
                    return None;
                }
                Ok(target) => target,
                Err(e) => {
                    tracing::debug!(name = %shown(), error = %e, "leaving out a link that leaves the tree, dangles or loops");
                    return None;
                }
            }
        } else {
            st
        };
        if st.kind() != Some(Kind::File) && st.kind() != Some(Kind::Dir) {
            tracing::debug!(name = %shown(), "leaving out a FIFO, socket or device");
            return None;
        }
        Some(st.meta())
    }

    /// Opens a regular file (or, with `dirs`, a directory) for reading. A resolution-only
    /// look comes first, so that a FIFO or device is refused before anything opens it.
    pub(super) fn open_content(&self, path: &[String], dirs: bool) -> Result<(OwnedFd, Stat)> {
        let (probe, bytes) = self.open(path, PATH).map_err(lookup_err)?;
        let accept = |st: &Stat| match st.kind() {
            Some(Kind::File) => Ok(()),
            Some(Kind::Dir) if dirs => Ok(()),
            Some(Kind::Dir) => Err(Error::IsADirectory),
            _ => Err(Error::Special),
        };
        let st = fs::fstat(probe.as_fd()).mapped()?;
        accept(&st)?;
        let flags = if st.is_dir() { DIR_READ } else { FILE_READ };
        let fd = fs::beneath(self.root_fd(), &bytes, flags).map_err(lookup_err)?;
        let st = fs::fstat(fd.as_fd()).mapped()?;
        accept(&st)?;
        Ok((fd, st))
    }

    pub(super) fn read_now(&self, path: &[String], range: Option<std::ops::Range<u64>>) -> Result<(Meta, Opened)> {
        let (fd, st) = self.open_content(path, false)?;
        let meta = st.meta();
        let (start, end) = span(range, meta.size)?;
        let opened = Opened::open(std::fs::File::from(fd), start, end - start).mapped()?;
        Ok((meta, opened))
    }

    /// A failed install discards the body here, rather than leaving the unlink to the
    /// drop (which runs later, on another blocking task): the caller can't retry with a
    /// consumed `TreeStaged` anyway, and must not find the temp file still there.
    pub(super) fn install_now(&self, mut staged: HostStaged, path: &[String], how: Install) -> Result<Installed> {
        let installed = self.try_install(&mut staged, path, how);
        if installed.is_err() {
            staged.discard();
        }
        installed
    }

    fn try_install(&self, staged: &mut HostStaged, path: &[String], how: Install) -> Result<Installed> {
        let name = last(path)?;
        staged.check(self, path)?;
        let temp = staged.temp(self)?;
        let dir = temp.dir_handle();
        let dir = dir.as_fd();
        let (target, replaced) = match entry(dir, name).mapped()? {
            Entry::Nameless => return Err(Error::Escapes),
            Entry::Found(_) if how == Install::CreateNew => return Err(Error::Exists),
            Entry::Found(bytes) => {
                let old = fs::lstat_at(dir, &bytes).mapped()?;
                if old.is_dir() {
                    return Err(Error::IsADirectory);
                }
                if old.file_type != FileType::Symlink && old.kind() != Some(Kind::File) {
                    // A FIFO, socket or device is never replaced by an upload.
                    return Err(Error::Special);
                }
                // A replaced link was no object of the tree's own: nothing carries over.
                let replaced = (old.kind() == Some(Kind::File)).then(|| old.meta());
                if replaced.is_some() && self.opts.file_mode.is_none() {
                    // New content, same permissions: a private file stays private.
                    rfs::fchmod(temp.file().as_fd(), Mode::from_raw_mode(old.mode & 0o7777)).mapped()?;
                }
                (bytes, replaced)
            }
            Entry::Absent(bytes) => (bytes, None),
        };
        match how {
            Install::Replace => rfs::renameat(dir, temp.name(), dir, &target).map_err(|e| rename_err(e.into()))?,
            Install::CreateNew => rename_new(dir, temp.name(), dir, &target)?,
        }
        temp.installed();
        self.synced(dir)?;
        Ok(Installed { meta: fs::fstat(temp.file().as_fd()).mapped()?.meta(), replaced })
    }

    /// Removes directory `path` only if it is empty (`rmdir`): [`Error::NotEmpty`] if
    /// anything at all is in it, shown or not.
    pub(super) fn remove_empty_dir_now(&self, path: &[String]) -> Result<()> {
        let name = path.last().ok_or(Error::Escapes)?;
        let (dir, _) = self.parent(path).map_err(lookup_err)?;
        let Entry::Found(bytes) = entry(dir.as_fd(), name).mapped()? else {
            return Err(Error::Missing);
        };
        match rfs::unlinkat(dir.as_fd(), &bytes, AtFlags::REMOVEDIR) {
            Err(Errno::NOTEMPTY | Errno::EXIST) => Err(Error::NotEmpty),
            result => result.mapped(),
        }?;
        self.synced(dir.as_fd())
    }

    pub(super) fn create_dir_now(&self, path: &[String]) -> Result<Meta> {
        let name = last(path)?;
        let (dir, _) = self.parent(path).map_err(parent_err)?;
        let bytes = match entry(dir.as_fd(), name).mapped()? {
            Entry::Found(_) => return Err(Error::Exists),
            Entry::Nameless => return Err(Error::Escapes),
            Entry::Absent(bytes) => bytes,
        };
        let made = self.make_dir(dir.as_fd(), &bytes)?;
        self.synced(dir.as_fd())?;
        Ok(fs::fstat(made.as_fd()).mapped()?.meta())
    }

    /// Makes directory `name` in `dir` with the configured owner and mode, and opens it
    /// without following a link that might have replaced it meanwhile.
    pub(super) fn make_dir(&self, dir: BorrowedFd<'_>, name: &CStr) -> Result<OwnedFd> {
        rfs::mkdirat(dir, name, Mode::from_raw_mode(self.opts.dir_mode.unwrap_or(0o777))).mapped()?;
        let made = rfs::openat(dir, name, DIR_READ | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty()).mapped()?;
        self.adopt(made.as_fd(), true)?;
        Ok(made)
    }

    pub(super) fn remove_now(&self, path: &[String]) -> Result<()> {
        let name = path.last().ok_or(Error::Escapes)?;
        let (dir, _) = self.parent(path).map_err(lookup_err)?;
        let Entry::Found(bytes) = entry(dir.as_fd(), name).mapped()? else {
            return Err(Error::Missing);
        };
        walk::remove(dir.as_fd(), &bytes).mapped()?;
        self.synced(dir.as_fd())
    }

    pub(super) fn rename_now(&self, from: &[String], to: &[String], replace: bool) -> Result<()> {
        let from_name = from.last().ok_or(Error::Escapes)?;
        let to_name = last(to)?;
        let (from_dir, from_parent) = self.parent(from).map_err(lookup_err)?;
        let Entry::Found(source) = entry(from_dir.as_fd(), from_name).mapped()? else {
            return Err(Error::Missing);
        };
        let (to_dir, to_parent) = self.parent(to).map_err(parent_err)?;
        let target = match entry(to_dir.as_fd(), to_name).mapped()? {
            Entry::Nameless => return Err(Error::Escapes),
            Entry::Found(_) if !replace => return Err(Error::Exists),
            Entry::Found(bytes) if fs::lstat_at(to_dir.as_fd(), &bytes).mapped()?.is_dir() => {
                return Err(Error::IsADirectory);
            }
            Entry::Found(bytes) | Entry::Absent(bytes) => bytes,
        };
        if replace {
            rfs::renameat(&from_dir, &source, &to_dir, &target).map_err(|e| rename_err(e.into()))?;
        } else {
            rename_new(from_dir.as_fd(), &source, to_dir.as_fd(), &target)?;
        }
        self.synced(to_dir.as_fd())?;
        if from_parent != to_parent {
            self.synced(from_dir.as_fd())?;
        }
        Ok(())
    }

    /// Copies what `from` names (links inside the tree followed, as for a read) to `to`,
    /// which must not exist. A file goes to a temp file first and is renamed into place
    /// without replacing, so nobody sees it half-copied and a racing creator wins cleanly.
    pub(super) fn copy_now(&self, from: &[String], to: &[String]) -> Result<()> {
        let to_name = last(to)?;
        let (source, st) = self.open_content(from, true)?;
        let (to_dir, _) = self.parent(to).map_err(parent_err)?;
        let target = match entry(to_dir.as_fd(), to_name).mapped()? {
            Entry::Found(_) => return Err(Error::Exists),
            Entry::Nameless => return Err(Error::Escapes),
            Entry::Absent(bytes) => bytes,
        };
        if st.is_dir() {
            let made = self.make_dir(to_dir.as_fd(), &target)?;
            if let Err(e) = walk::copy_tree(self, rfs::Dir::new(source).mapped()?, made) {
                // Best effort: a partial copy is worse than none.
                let _ = walk::remove(to_dir.as_fd(), &target);
                return Err(e);
            }
        } else {
            let mut temp = Temp::create(self, std::sync::Arc::new(to_dir.try_clone().mapped()?))?;
            let copied = fs::copy_data(source.as_fd(), temp.file().as_fd())
                .mapped()
                .and_then(|()| self.adopt_copy(temp.file().as_fd(), &st))
                .and_then(|()| temp.finish(self, None))
                .and_then(|()| rename_new(to_dir.as_fd(), temp.name(), to_dir.as_fd(), &target));
            match copied {
                Ok(()) => temp.installed(),
                Err(e) => {
                    temp.remove_now();
                    return Err(e);
                }
            }
        }
        self.synced(to_dir.as_fd())
    }

    /// A copy is a new file, made as an upload would make it, except that it keeps the
    /// source's execute bits (as `cp` does) when no mode is configured.
    pub(super) fn adopt_copy(&self, fd: BorrowedFd<'_>, source: &Stat) -> Result<()> {
        if self.opts.file_mode.is_none() && source.mode & 0o111 != 0 {
            let mode = fs::fstat(fd).mapped()?.mode & 0o7777;
            rfs::fchmod(fd, Mode::from_raw_mode(mode | (source.mode & 0o111 & (mode >> 2)))).mapped()?;
        }
        Ok(())
    }

    pub(super) fn set_modified_now(&self, path: &[String], modified_ns: i64) -> Result<Meta> {
        let (fd, _) = self.open_content(path, true)?;
        fs::set_mtime(fd.as_fd(), modified_ns).mapped()?;
        Ok(fs::fstat(fd.as_fd()).mapped()?.meta())
    }

    pub(super) fn used_now(&self, path: &[String]) -> Result<u64> {
        let (fd, _) = self.open(path, PATH).map_err(lookup_err)?;
        let st = fs::fstat(fd.as_fd()).mapped()?;
        match st.kind() {
            Some(Kind::File) => Ok(st.size),
            Some(Kind::Dir) => walk::used(fs::open_dir(fd.as_fd()).mapped()?).mapped(),
            _ => Ok(0),
        }
    }
}
