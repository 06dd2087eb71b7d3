//! The system calls a host tree makes, over rustix, and the mapping of their errors.
//!
//! Everything here is relative to a directory fd: no function takes an absolute path, so
//! no function can be talked into leaving the tree by a name.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, ResolveFlags, StatxFlags};
use rustix::io::Errno;

use crate::tree::{Kind, Meta, NodeId};
use crate::Error;

/// Resolution-only handle: enough to be a `dirfd` and to be `fstat`ed, and it opens
/// directories we may not read and FIFOs without blocking.
pub(super) const PATH: OFlags = OFlags::PATH;
pub(super) const DIR_PATH: OFlags = OFlags::PATH.union(OFlags::DIRECTORY);
pub(super) const DIR_READ: OFlags = OFlags::RDONLY.union(OFlags::DIRECTORY);
/// How content is opened once an `O_PATH` look has shown a regular file: should the name
/// have been swapped for a FIFO or a terminal meanwhile, the open still can't block or
/// take a controlling terminal, and the `fstat` after it refuses the result.
pub(super) const FILE_READ: OFlags = OFlags::RDONLY.union(OFlags::NONBLOCK).union(OFlags::NOCTTY);

pub(super) fn errno(e: &io::Error) -> Option<Errno> {
    Errno::from_io_error(e)
}

pub(super) fn is(e: &io::Error, n: Errno) -> bool {
    errno(e) == Some(n)
}

/// Errors meaning "nothing there" to a look-up: the name is absent, a parent is a file,
/// or a link dangles, loops or leaves the tree (which is reported as absent, never as
/// what lies outside).
pub(super) fn is_absent(e: &io::Error) -> bool {
    matches!(errno(e), Some(Errno::NOENT | Errno::NOTDIR | Errno::XDEV | Errno::LOOP))
}

/// The one mapping from errno to the tree's errors; callers catch the few cases whose
/// meaning depends on the operation (EXDEV of a rename, EISDIR of a replace) first.
pub(super) fn map(e: io::Error) -> Error {
    match errno(&e) {
        Some(Errno::NOENT | Errno::LOOP) => Error::Missing,
        Some(Errno::EXIST) => Error::Exists,
        Some(Errno::NOTDIR) => Error::NotADirectory,
        Some(Errno::ISDIR) => Error::IsADirectory,
        Some(Errno::XDEV) => Error::Escapes,
        Some(Errno::NOSPC | Errno::DQUOT) => Error::NoSpace,
        Some(Errno::ROFS) => Error::ReadOnly,
        Some(Errno::NAMETOOLONG) => Error::NameTooLong,
        Some(Errno::ACCESS | Errno::PERM) => Error::Denied,
        Some(Errno::NOTEMPTY) => Error::NotEmpty,
        _ => Error::Io(e),
    }
}

/// `.mapped()?` instead of `?`: a bare `?` would turn every io::Error into `Error::Io`,
/// losing Missing, Exists and the rest.
pub(super) trait Mapped<T> {
    fn mapped(self) -> crate::Result<T>;
}

impl<T> Mapped<T> for io::Result<T> {
    fn mapped(self) -> crate::Result<T> {
        self.map_err(map)
    }
}

impl<T> Mapped<T> for rustix::io::Result<T> {
    fn mapped(self) -> crate::Result<T> {
        self.map_err(|e| map(e.into()))
    }
}

/// Opens `path` (bytes relative to `root`, empty for the root itself) with the whole walk
/// confined beneath `root`: `..` and links may move about inside the tree, but any step
/// out of it (an absolute link, `../` past the root, a /proc magic link) fails with EXDEV
/// instead of being taken. The kernel answers EAGAIN when a concurrent rename elsewhere
/// made it unsure; trying again is what it asks for.
pub(super) fn beneath(root: BorrowedFd<'_>, path: &[u8], flags: OFlags) -> io::Result<OwnedFd> {
    open_beneath(root, path, flags, ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS)
}

/// [`beneath`], following no link at all (ELOOP where there is one).
pub(super) fn beneath_no_links(root: BorrowedFd<'_>, path: &[u8], flags: OFlags) -> io::Result<OwnedFd> {
    open_beneath(root, path, flags, ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS)
}

fn open_beneath(root: BorrowedFd<'_>, path: &[u8], flags: OFlags, resolve: ResolveFlags) -> io::Result<OwnedFd> {
    let path: &[u8] = if path.is_empty() { b"." } else { path };
    let mut tries = 0;
    loop {
        match rfs::openat2(root, path, flags | OFlags::CLOEXEC, Mode::empty(), resolve) {
            Err(Errno::AGAIN | Errno::INTR) if tries < 32 => tries += 1,
            result => return result.map_err(io::Error::from),
        }
    }
}

/// `a/b` from `a` and `b`, for the in-tree path of a directory member.
pub(super) fn join(dir: &[u8], name: &[u8]) -> Vec<u8> {
    let mut path = Vec::with_capacity(dir.len() + 1 + name.len());
    if !dir.is_empty() {
        path.extend_from_slice(dir);
        path.push(b'/');
    }
    path.extend_from_slice(name);
    path
}

pub(super) fn cstring(bytes: &[u8]) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| io::Error::from(Errno::INVAL))
}

/// What one `statx` (or, on kernels without it, `fstatat`) tells.
#[derive(Debug, Clone, Copy)]
pub(super) struct Stat {
    pub file_type: FileType,
    pub size: u64,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
    pub btime_ns: Option<i64>,
    pub dev: u64,
    pub ino: u64,
    pub mode: u32,
    /// For the cached reads, which must not be the read that updates the access time.
    pub atime_ns: i64,
    /// 0 for a file deleted while open: its last close frees it, which may wait for the disk.
    pub nlink: u64,
}

impl Stat {
    pub fn kind(&self) -> Option<Kind> {
        match self.file_type {
            FileType::RegularFile => Some(Kind::File),
            FileType::Directory => Some(Kind::Dir),
            FileType::Symlink => None,
            _ => Some(Kind::Special),
        }
    }

    pub fn is_dir(&self) -> bool {
        self.file_type == FileType::Directory
    }

    /// Only for a stat that followed links (a link has no meta of its own in a tree).
    pub fn meta(&self) -> Meta {
        let kind = self.kind().unwrap_or(Kind::Special);
        Meta {
            kind,
            size: if kind == Kind::File { self.size } else { 0 },
            modified_ns: self.mtime_ns,
            created_ns: self.btime_ns.unwrap_or(self.mtime_ns),
            changed_ns: self.ctime_ns,
            node: NodeId { dev: self.dev, ino: self.ino, birth_ns: self.btime_ns.unwrap_or(0) },
        }
    }
}

fn ns(sec: i64, nsec: u32) -> i64 {
    sec.saturating_mul(1_000_000_000).saturating_add(i64::from(nsec))
}

/// Stats `name` in `dir` (`c""` with EMPTY_PATH: `dir` itself). `statx` because only it
/// reports birth times, which make node ids outlive inode reuse.
pub(super) fn stat_at(dir: BorrowedFd<'_>, name: &CStr, flags: AtFlags) -> io::Result<Stat> {
    let mask = StatxFlags::BASIC_STATS | StatxFlags::BTIME;
    match rfs::statx(dir, name, flags, mask) {
        Ok(x) => {
            let btime = x.stx_mask & StatxFlags::BTIME.bits() != 0;
            Ok(Stat {
                file_type: FileType::from_raw_mode(x.stx_mode.into()),
                size: x.stx_size,
                mtime_ns: ns(x.stx_mtime.tv_sec, x.stx_mtime.tv_nsec),
                ctime_ns: ns(x.stx_ctime.tv_sec, x.stx_ctime.tv_nsec),
                btime_ns: btime.then(|| ns(x.stx_btime.tv_sec, x.stx_btime.tv_nsec)),
                dev: rfs::makedev(x.stx_dev_major, x.stx_dev_minor),
                ino: x.stx_ino,
                mode: u32::from(x.stx_mode),
                atime_ns: ns(x.stx_atime.tv_sec, x.stx_atime.tv_nsec),
                nlink: u64::from(x.stx_nlink),
            })
        }
        Err(Errno::NOSYS) => stat_fallback(dir, name, flags),
        Err(e) => Err(e.into()),
    }
}

/// The `struct stat` field types differ between architectures, hence the casts.
#[allow(clippy::unnecessary_cast, clippy::useless_conversion)]
fn stat_fallback(dir: BorrowedFd<'_>, name: &CStr, flags: AtFlags) -> io::Result<Stat> {
    let st = rfs::statat(dir, name, flags)?;
    let mtime = ns(st.st_mtime as i64, st.st_mtime_nsec as u32);
    Ok(Stat {
        file_type: FileType::from_raw_mode(st.st_mode as _),
        size: st.st_size as u64,
        mtime_ns: mtime,
        ctime_ns: ns(st.st_ctime as i64, st.st_ctime_nsec as u32),
        btime_ns: None,
        dev: st.st_dev as u64,
        ino: st.st_ino as u64,
        mode: st.st_mode as u32,
        atime_ns: ns(st.st_atime as i64, st.st_atime_nsec as u32),
        nlink: st.st_nlink as u64,
    })
}

pub(super) fn fstat(fd: BorrowedFd<'_>) -> io::Result<Stat> {
    stat_at(fd, c"", AtFlags::EMPTY_PATH)
}

/// The entry itself, a link not followed.
pub(super) fn lstat_at(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<Stat> {
    stat_at(dir, name, AtFlags::SYMLINK_NOFOLLOW)
}

/// A readable handle on the directory `dir` (which may be an `O_PATH` handle, which
/// `getdents` refuses).
pub(super) fn open_dir(dir: BorrowedFd<'_>) -> io::Result<rfs::Dir> {
    let fd = rfs::openat(dir, c".", DIR_READ | OFlags::CLOEXEC, Mode::empty())?;
    Ok(rfs::Dir::new(fd)?)
}

/// The names in `dir`, without `.` and `..`.
pub(super) fn read_names(dir: &mut rfs::Dir) -> io::Result<Vec<CString>> {
    let mut names = Vec::new();
    while let Some(entry) = dir.read() {
        let entry = entry?;
        let name = entry.file_name();
        if name != c"." && name != c".." {
            names.push(name.to_owned());
        }
    }
    Ok(names)
}

/// Makes a rename, unlink or mkdir in `dir` durable: the entry lives in the directory,
/// so fsyncing the file alone would not keep it after a power loss.
pub(super) fn sync_dir(dir: BorrowedFd<'_>) -> io::Result<()> {
    let fd = rfs::openat(dir, c".", DIR_READ | OFlags::CLOEXEC, Mode::empty())?;
    Ok(rfs::fsync(fd)?)
}

/// Sets the modification time, leaving the access time alone.
pub(super) fn set_mtime(fd: BorrowedFd<'_>, modified_ns: i64) -> io::Result<()> {
    let last_modification =
        rfs::Timespec { tv_sec: modified_ns.div_euclid(1_000_000_000), tv_nsec: modified_ns.rem_euclid(1_000_000_000) };
    let last_access = rfs::Timespec { tv_sec: 0, tv_nsec: rfs::UTIME_OMIT };
    Ok(rfs::futimens(fd, &rfs::Timestamps { last_access, last_modification })?)
}

/// Creates `name` in `dir` exclusively, never through a link planted under that name.
pub(super) fn create_file(dir: BorrowedFd<'_>, name: &CStr, mode: u32) -> io::Result<OwnedFd> {
    let flags = OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    Ok(rfs::openat(dir, name, flags, Mode::from_raw_mode(mode))?)
}

/// Opens the subdirectory `name` of `dir` for reading, failing (ELOOP or ENOTDIR) rather
/// than following a link that was put in its place.
pub(super) fn open_subdir(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<rfs::Dir> {
    let flags = DIR_READ | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    Ok(rfs::Dir::new(rfs::openat(dir, name, flags, Mode::empty())?)?)
}

/// Copies all of `src` to `dst` (both at offset 0, `dst` empty): a reflink where the file
/// system shares blocks, else `copy_file_range` (in-kernel, server-side on NFS), else
/// plain reads and writes.
pub(super) fn copy_data(src: BorrowedFd<'_>, dst: BorrowedFd<'_>) -> io::Result<()> {
    if rfs::ioctl_ficlone(dst, src).is_ok() {
        return Ok(());
    }
    let mut copied = 0u64;
    loop {
        match rfs::copy_file_range(src, None, dst, None, 1 << 30) {
            Ok(0) => return Ok(()),
            Ok(n) => copied += n as u64,
            Err(Errno::INTR) => {}
            Err(Errno::NOSYS | Errno::XDEV | Errno::INVAL | Errno::OPNOTSUPP) if copied == 0 => break,
            Err(e) => return Err(e.into()),
        }
    }
    let mut src = std::fs::File::from(src.try_clone_to_owned()?);
    let mut dst = std::fs::File::from(dst.try_clone_to_owned()?);
    io::copy(&mut src, &mut dst).map(drop)
}

pub(super) fn available(root: BorrowedFd<'_>) -> io::Result<u64> {
    let vfs = rfs::fstatvfs(root)?;
    Ok(vfs.f_bavail.saturating_mul(vfs.f_frsize))
}
