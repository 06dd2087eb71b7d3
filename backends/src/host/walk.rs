//! Walks of whole subtrees: removal, copy, space used.
//!
//! Each walk keeps an explicit stack of open directories rather than recursing, so a
//! deeply nested tree can exhaust file descriptors (an error) but never the thread's
//! stack (an abort). Every step is relative to the directory fd above it and opens
//! subdirectories with `O_NOFOLLOW`: a link is never entered, whatever it points to and
//! whatever another program swaps in during the walk.

use std::collections::HashSet;
use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

use super::fs::{self, Mapped, FILE_READ};
use super::{names, Inner};
use crate::Result;

/// How often a directory that refilled while it was being emptied is emptied again.
const REMOVE_TRIES: u8 = 3;

fn is_dot(name: &CStr) -> bool {
    name == c"." || name == c".."
}

/// Removes `name` from `dir`: a file or link with one unlink, a directory with all it
/// holds. Links inside are removed, never followed.
pub(super) fn remove(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<()> {
    match rfs::unlinkat(dir, name, AtFlags::empty()) {
        // EISDIR on Linux; EPERM is what POSIX allows for a directory.
        Err(Errno::ISDIR | Errno::PERM) => {}
        result => return Ok(result?),
    }
    let top = match fs::open_subdir(dir, name) {
        Ok(top) => top,
        // Not a directory after all (or swapped for a link): the unlink's error stands,
        // unless it has meanwhile become removable.
        Err(e) if fs::is(&e, Errno::LOOP) || fs::is(&e, Errno::NOTDIR) => {
            return Ok(rfs::unlinkat(dir, name, AtFlags::empty())?);
        }
        Err(e) => return Err(e),
    };
    let mut stack: Vec<(rfs::Dir, CString, u8)> = vec![(top, name.to_owned(), 0)];
    while let Some((current, _, _)) = stack.last_mut() {
        let Some(item) = current.read() else {
            let Some((_, name, tries)) = stack.pop() else { break };
            let parent = match stack.last() {
                Some((above, _, _)) => above.fd()?,
                None => dir,
            };
            match rfs::unlinkat(parent, &name, AtFlags::REMOVEDIR) {
                Ok(()) | Err(Errno::NOENT) => {}
                // Something was created in it meanwhile: empty it again, a few times.
                Err(Errno::NOTEMPTY) if tries < REMOVE_TRIES => {
                    let again = fs::open_subdir(parent, &name)?;
                    stack.push((again, name, tries + 1));
                }
                Err(e) => return Err(e.into()),
            }
            continue;
        };
        let item = item?;
        let name = item.file_name();
        if is_dot(name) {
            continue;
        }
        let at = current.fd()?;
        let sub = match rfs::unlinkat(at, name, AtFlags::empty()) {
            Ok(()) | Err(Errno::NOENT) => continue,
            Err(Errno::ISDIR | Errno::PERM) => match fs::open_subdir(at, name) {
                Ok(sub) => sub,
                Err(e) if fs::is(&e, Errno::NOENT) => continue,
                Err(e) if fs::is(&e, Errno::LOOP) || fs::is(&e, Errno::NOTDIR) => {
                    rfs::unlinkat(at, name, AtFlags::empty())?;
                    continue;
                }
                Err(e) => return Err(e),
            },
            Err(e) => return Err(e.into()),
        };
        stack.push((sub, name.to_owned(), 0));
    }
    Ok(())
}

fn id_of(fd: BorrowedFd<'_>) -> io::Result<(u64, u64)> {
    let st = fs::fstat(fd)?;
    Ok((st.dev, st.ino))
}

/// Copies the members of `src` into the new, empty directory `dst`: files as new files,
/// directories as new directories, links as links, FIFOs and devices not at all. The
/// directories this copy creates are skipped as sources, so copying a directory into
/// itself ends instead of chasing its own output.
pub(super) fn copy_tree(inner: &Inner, src: rfs::Dir, dst: OwnedFd) -> Result<()> {
    let mut made = HashSet::from([id_of(dst.as_fd()).mapped()?]);
    let mut stack = vec![(src, dst)];
    while let Some((from, to)) = stack.last_mut() {
        let Some(item) = from.read() else {
            if let Some((_, to)) = stack.pop() {
                inner.synced(to.as_fd())?;
            }
            continue;
        };
        let item = item.mapped()?;
        let name = item.file_name();
        if is_dot(name) || names::is_temp(name.to_bytes()) {
            continue;
        }
        let (from, to) = (from.fd().mapped()?, to.as_fd());
        let st = match fs::lstat_at(from, name) {
            Ok(st) => st,
            Err(e) if fs::is(&e, Errno::NOENT) => continue,
            Err(e) => return Err(fs::map(e)),
        };
        let next = match st.file_type {
            FileType::RegularFile => {
                copy_file(inner, from, to, name)?;
                None
            }
            FileType::Symlink => {
                let target = rfs::readlinkat(from, name, Vec::new()).mapped()?;
                rfs::symlinkat(&target, to, name).mapped()?;
                None
            }
            FileType::Directory => {
                let sub = match fs::open_subdir(from, name) {
                    Ok(sub) => sub,
                    Err(e) if fs::is_absent(&e) => continue,
                    Err(e) => return Err(fs::map(e)),
                };
                if made.contains(&id_of(sub.fd().mapped()?).mapped()?) {
                    continue;
                }
                let dir = inner.make_dir(to, name)?;
                made.insert(id_of(dir.as_fd()).mapped()?);
                Some((sub, dir))
            }
            _ => {
                tracing::debug!(name = %names::encode(name.to_bytes()), "not copying a FIFO, socket or device");
                None
            }
        };
        stack.extend(next);
    }
    Ok(())
}

/// One file of a directory copy. Unlike the top-level copy there is no temp file: the
/// directory is new and not yet complete anyway.
fn copy_file(inner: &Inner, from: BorrowedFd<'_>, to: BorrowedFd<'_>, name: &CStr) -> Result<()> {
    let source = match rfs::openat(from, name, FILE_READ | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::NOENT | Errno::LOOP) => return Ok(()),
        Err(e) => return Err(fs::map(e.into())),
    };
    let st = fs::fstat(source.as_fd()).mapped()?;
    if st.file_type != FileType::RegularFile {
        return Ok(()); // swapped for something else since the listing
    }
    let copy = fs::create_file(to, name, inner.opts.file_mode.unwrap_or(0o666)).mapped()?;
    inner.adopt(copy.as_fd(), false)?;
    inner.adopt_copy(copy.as_fd(), &st)?;
    fs::copy_data(source.as_fd(), copy.as_fd()).mapped()?;
    if inner.full() {
        rfs::fsync(&copy).mapped()?;
    }
    Ok(())
}

/// Bytes held by the regular files below `top`, links not followed. Members that vanish
/// or can't be read are left out: a quota figure is an estimate, not a reason to fail.
pub(super) fn used(top: rfs::Dir) -> io::Result<u64> {
    let mut total = 0u64;
    let mut stack = vec![top];
    while let Some(current) = stack.last_mut() {
        let Some(item) = current.read() else {
            stack.pop();
            continue;
        };
        let Ok(item) = item else { continue };
        let name = item.file_name();
        if is_dot(name) || names::is_temp(name.to_bytes()) {
            continue;
        }
        let at = current.fd()?;
        match fs::lstat_at(at, name) {
            Ok(st) if st.file_type == FileType::RegularFile => total = total.saturating_add(st.size),
            Ok(st) if st.is_dir() => {
                if let Ok(sub) = fs::open_subdir(at, name) {
                    stack.push(sub);
                }
            }
            _ => {}
        }
    }
    Ok(total)
}
