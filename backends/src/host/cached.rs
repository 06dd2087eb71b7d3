//! Look-ups and small reads answered from the kernel's caches on the calling thread.
//!
//! A hop to the blocking pool wakes two threads: on a small GET from a host folder the hop
//! cost more CPU than the open, stat and read it carried. The kernel can be asked to
//! refuse rather than wait: `openat2` with `RESOLVE_CACHED` fails with EAGAIN unless every
//! step of the walk is in the dentry cache, and `preadv2` with `RWF_NOWAIT` unless the
//! pages are in the page cache (io_uring's inline attempts rest on the same two flags).
//! So the async workers try these first, and whatever is refused, unusual (a link, a name
//! to confirm by a scan, another mount, a large file) or failing goes the usual way on
//! the blocking pool, which also gives errors their proper answer. A slow disk still
//! stalls no worker.
//!
//! Only on local file systems, where the `fstat` of an open file and the release of a
//! read-only one never wait for a device. On a network or FUSE file system, opening a
//! file can be a round trip even when its name is cached.

use std::fs::File;
use std::io::IoSliceMut;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::Ordering;

use bytes::Bytes;
use rustix::fs::{self as rfs, OFlags, ResolveFlags};
use rustix::io::{Errno, ReadWriteFlags};

use super::fs::{self, Stat, FILE_READ, PATH};
use super::read::{Opened, SMALL_READ};
use super::{ops, resolve, Inner};
use crate::tree::{Kind, Meta};

/// `statfs` magic numbers of the file systems the fast path is used on.
const LOCAL: [i64; 5] = [
    0xEF53,      // ext2, ext3, ext4
    0x5846_5342, // xfs
    0x9123_683E, // btrfs
    0x0102_1994, // tmpfs
    0xF2F5_2010, // f2fs
];

/// Whether the file system under `root` is one the fast path may be used on. (`f_type`'s
/// integer type differs between architectures, hence the cast.)
#[allow(clippy::unnecessary_cast)]
pub(super) fn usable(root: BorrowedFd<'_>) -> bool {
    rfs::fstatfs(root).is_ok_and(|st| LOCAL.contains(&(st.f_type as i64)))
}

/// Confined as [`fs::beneath_no_links`], and besides: only from the caches, and never
/// into another mount (which could be of any kind). One try: EAGAIN is the refusal.
fn open(root: BorrowedFd<'_>, bytes: &[u8], flags: OFlags) -> rustix::io::Result<OwnedFd> {
    let path: &[u8] = if bytes.is_empty() { b"." } else { bytes };
    let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_XDEV | ResolveFlags::CACHED;
    rfs::openat2(root, path, flags | OFlags::CLOEXEC, rfs::Mode::empty(), resolve)
}

impl Inner {
    /// [`Inner::stat_now`] for a name whose walk is cached.
    pub(super) fn stat_cached(&self, path: &[String]) -> Option<Meta> {
        let bytes = self.cached_bytes(path)?;
        let fd = self.refused(open(self.root_fd(), &bytes, PATH))?;
        Some(fs::fstat(fd.as_fd()).ok()?.meta())
    }

    /// [`Inner::read_now`] for a small regular file whose walk and content are cached.
    /// As there, an `O_PATH` look comes first, so that nothing but a regular file is
    /// ever opened.
    pub(super) fn read_cached(&self, path: &[String], range: Option<std::ops::Range<u64>>) -> Option<(Meta, Opened)> {
        let bytes = self.cached_bytes(path)?;
        let probe = self.refused(open(self.root_fd(), &bytes, PATH))?;
        let small = |st: &Stat| st.kind() == Some(Kind::File) && st.size <= SMALL_READ;
        if !small(&fs::fstat(probe.as_fd()).ok()?) {
            return None;
        }
        let file = File::from(self.refused(open(self.root_fd(), &bytes, FILE_READ))?);
        let st = fs::fstat(file.as_fd()).ok()?;
        if !small(&st) {
            return None;
        }
        let (start, end) = ops::span(range, st.size).ok()?;
        let content = self.read_now_or_never(&file, start, (end - start) as usize)?;
        Some((st.meta(), Opened::Small(content)))
    }

    /// The disk bytes of `path` when one `openat2` settles them (see `resolve`).
    fn cached_bytes(&self, path: &[String]) -> Option<Vec<u8>> {
        if !self.cached.load(Ordering::Relaxed) {
            return None;
        }
        resolve::direct_bytes(path)
    }

    /// `len` bytes at `offset`, all from the page cache, or `None`.
    fn read_now_or_never(&self, file: &File, offset: u64, len: usize) -> Option<Bytes> {
        let mut buf = vec![0; len];
        let mut done = 0;
        while done < len {
            let mut slice = [IoSliceMut::new(&mut buf[done..])];
            match rustix::io::preadv2(file, &mut slice, offset + done as u64, ReadWriteFlags::NOWAIT) {
                Ok(0) => return None,
                Ok(n) => done += n,
                Err(Errno::INTR) => {}
                other => {
                    self.refused(other)?;
                }
            }
        }
        Some(buf.into())
    }

    /// The result's value, or `None`; a kernel or file system without the flags
    /// (EINVAL, EOPNOTSUPP, ENOSYS) turns the fast path off for this tree, rather than
    /// have every request try it in vain.
    fn refused<T>(&self, result: rustix::io::Result<T>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(Errno::INVAL | Errno::OPNOTSUPP | Errno::NOSYS) => {
                if self.cached.swap(false, Ordering::Relaxed) {
                    tracing::debug!(root = %self.root.display(), "cached look-ups refused here; using the blocking pool only");
                }
                None
            }
            Err(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::host::{HostOptions, HostTree};
    use crate::tree::Tree;

    fn p(segs: &[&str]) -> Vec<String> {
        segs.iter().map(|s| s.to_string()).collect()
    }

    async fn tree(root: &Path) -> HostTree {
        HostTree::open(root, HostOptions::default()).await.unwrap()
    }

    /// The temp directory's file system decides whether there is a fast path at all; the
    /// tests need one (the machines that run them have /tmp on ext4 or tmpfs).
    fn local(root: &Path) -> bool {
        usable(std::fs::File::open(root).unwrap().as_fd())
    }

    #[tokio::test]
    async fn a_cached_read_gives_what_the_blocking_read_gives() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.txt"), b"hello, cache").unwrap();
        let tree = tree(dir.path()).await;
        let path = p(&["a.txt"]);
        let slow = tree.inner.read_now(&path, Some(7..100)).unwrap();
        assert!(local(dir.path()), "this test needs a local file system for its temp directory");
        let (meta, fast) = tree.inner.read_cached(&path, Some(7..100)).expect("a file just read is in the caches");
        assert_eq!(meta, slow.0);
        match (fast, slow.1) {
            (Opened::Small(a), Opened::Small(b)) => assert_eq!((&a[..], &b[..]), (&b"cache"[..], &b"cache"[..])),
            _ => panic!("small reads"),
        }
        assert_eq!(tree.inner.stat_cached(&path), Some(meta));
    }

    #[tokio::test]
    async fn cached_reads_leave_all_but_small_regular_files_to_the_blocking_pool() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        assert!(local(root), "this test needs a local file system for its temp directory");
        std::fs::write(root.join("small"), b"x").unwrap();
        std::fs::write(root.join("large"), vec![7u8; SMALL_READ as usize + 1]).unwrap();
        std::fs::create_dir(root.join("dir")).unwrap();
        std::os::unix::fs::symlink("small", root.join("link")).unwrap();
        rfs::mkfifoat(rfs::CWD, root.join("fifo"), rfs::Mode::from_raw_mode(0o644)).unwrap();
        let tree = tree(root).await;
        assert!(tree.inner.read_cached(&p(&["small"]), None).is_some());
        for name in ["large", "dir", "link", "fifo", "missing"] {
            assert!(tree.inner.read_cached(&p(&[name]), None).is_none(), "{name}");
        }
        // The usual way still answers each of them as it should.
        let (_, link) = tree.read(&p(&["link"]), None).await.unwrap();
        drop(link);
        assert_eq!(
            tree.read(&p(&["fifo"]), None).await.err().map(|e| e.to_string()),
            Some(crate::Error::Special.to_string())
        );
        assert_eq!(tree.read(&p(&["large"]), None).await.unwrap().0.size, SMALL_READ + 1);
    }

    #[tokio::test]
    async fn cached_look_ups_never_go_through_a_link_or_into_another_tree() {
        let dir = tempfile::tempdir().unwrap();
        let (root, outside) = (dir.path().join("root"), dir.path().join("outside"));
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("secret"), b"secret").unwrap();
        std::os::unix::fs::symlink(&outside, root.join("out")).unwrap();
        std::os::unix::fs::symlink("..", root.join("up")).unwrap();
        let tree = tree(&root).await;
        for path in [p(&["out", "secret"]), p(&["up", "outside", "secret"])] {
            assert!(tree.inner.read_cached(&path, None).is_none());
            assert!(tree.inner.stat_cached(&path).is_none());
            assert!(tree.read(&path, None).await.is_err(), "{path:?}");
        }
    }
}
