//! Look-ups and small reads answered from the kernel's caches on the calling thread.
//!
//! A hop to the blocking pool wakes two threads: on a small GET from a host folder the hop
//! cost more CPU than the open, stat and read it carried. The kernel can be asked to
//! refuse rather than wait: `openat2` with `RESOLVE_CACHED` fails with EAGAIN unless every
//! step of the walk is in the dentry cache, and `preadv2` with `RWF_NOWAIT` unless the
//! pages are in the page cache (io_uring's inline attempts rest on the same two flags).
//! So the async workers try these first, and whatever is refused, unusual (a link, a name
//! to confirm by a scan, another mount, a large file) or failing goes the usual way on
//! the blocking pool, which also gives errors their proper answer.
//!
//! What else a read may do is kept off the workers too:
//! - A read that would update the access time (which dirties the inode and may wait for
//!   the journal) is left to the pool: under `relatime` the first read after a change and
//!   one a day, under `strictatime` every read (no cached reads there at all).
//! - The last close of a file deleted meanwhile frees it; such handles are closed on the
//!   pool. A file deleted between our `fstat` and our close is still freed here: a window
//!   of microseconds.
//! - Only on ext4, xfs, btrfs and f2fs, where opening a cached file is no round trip (on a
//!   network or FUSE file system it can be, name cached or not). Their permission checks
//!   may still read an ACL the kernel has not cached yet, once per file.

use std::io::IoSliceMut;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use rustix::fs::{self as rfs, OFlags, ResolveFlags, StatVfsMountFlags};
use rustix::io::{Errno, ReadWriteFlags};

use super::fs::{self, Stat, FILE_READ, PATH};
use super::read::{Opened, SMALL_READ};
use super::{ops, resolve, Inner};
use crate::tree::{Kind, Meta};

/// `statfs` magic numbers of the file systems the fast path is used on.
const LOCAL: [u32; 4] = [
    0xEF53,      // ext2, ext3, ext4
    0x5846_5342, // xfs
    0x9123_683E, // btrfs
    0xF2F5_2010, // f2fs
];

/// relatime updates an access time older than this, whatever the other times say.
const RELATIME_DAY_NS: i64 = 24 * 3600 * 1_000_000_000;

/// What a tree may do without a hop, decided when it is opened and narrowed when the
/// kernel turns out to lack a flag.
pub(super) struct Cached {
    walks: AtomicBool,
    reads: AtomicBool,
    /// The mount has `noatime`: reads never write the inode.
    noatime: bool,
}

impl Cached {
    /// From the file system and mount options under `root`. (`f_type`'s integer type
    /// differs between architectures, hence the cast.)
    #[allow(clippy::unnecessary_cast)]
    pub(super) fn probe(root: BorrowedFd<'_>) -> Cached {
        let local = rfs::fstatfs(root).is_ok_and(|st| LOCAL.contains(&(st.f_type as u32)));
        let flags = rfs::fstatvfs(root).map_or(StatVfsMountFlags::empty(), |st| st.f_flag);
        let noatime = flags.contains(StatVfsMountFlags::NOATIME);
        let lazy_atime = noatime || flags.contains(StatVfsMountFlags::RELATIME);
        Cached { walks: AtomicBool::new(local), reads: AtomicBool::new(local && lazy_atime), noatime }
    }

    /// Whether reading a file with these times leaves its access time alone (the
    /// kernel's relatime rule, `relatime_need_update`, turned around).
    fn read_is_quiet(&self, st: &Stat) -> bool {
        if self.noatime {
            return true;
        }
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
        let now_ns = now.map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
        // A minute's margin for clocks: coarse kernel time, and our read coming later.
        st.atime_ns > st.mtime_ns
            && st.atime_ns > st.ctime_ns
            && now_ns - st.atime_ns < RELATIME_DAY_NS - 60_000_000_000
    }
}

/// Confined as [`fs::beneath_no_links`], and besides: only from the caches, and never
/// into another mount (which could be of any kind). One try: EAGAIN is the refusal.
fn open(root: BorrowedFd<'_>, bytes: &[u8], flags: OFlags) -> rustix::io::Result<OwnedFd> {
    let path: &[u8] = if bytes.is_empty() { b"." } else { bytes };
    let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_XDEV | ResolveFlags::CACHED;
    rfs::openat2(root, path, flags | OFlags::CLOEXEC, rfs::Mode::empty(), resolve)
}

/// Closes `fds` on the blocking pool when they may hold the last reference to a deleted
/// file, here otherwise.
fn close(st: &Stat, fds: Vec<OwnedFd>) {
    if st.nlink == 0 {
        drop(tokio::task::spawn_blocking(move || drop(fds)));
    }
}

impl Inner {
    /// [`Inner::stat_now`] for a name whose walk is cached.
    pub(super) fn stat_cached(&self, path: &[String]) -> Option<Meta> {
        let bytes = self.cached_bytes(path)?;
        let fd = self.refused(open(self.root_fd(), &bytes, PATH), &self.cached.walks)?;
        let st = fs::fstat(fd.as_fd()).ok()?;
        close(&st, vec![fd]);
        Some(st.meta())
    }

    /// [`Inner::read_now`] for a small regular file whose walk and content are cached.
    /// As there, an `O_PATH` look comes first, so that nothing but a regular file is
    /// ever opened.
    pub(super) fn read_cached(&self, path: &[String], range: Option<std::ops::Range<u64>>) -> Option<(Meta, Opened)> {
        if !self.cached.reads.load(Ordering::Relaxed) {
            return None;
        }
        let bytes = self.cached_bytes(path)?;
        let probe = self.refused(open(self.root_fd(), &bytes, PATH), &self.cached.walks)?;
        let fit = |st: &Stat| st.kind() == Some(Kind::File) && st.size <= SMALL_READ && self.cached.read_is_quiet(st);
        let st = fs::fstat(probe.as_fd()).ok()?;
        if !fit(&st) {
            close(&st, vec![probe]);
            return None;
        }
        let file = self.refused(open(self.root_fd(), &bytes, FILE_READ), &self.cached.walks)?;
        let st = fs::fstat(file.as_fd()).ok()?;
        let content = fit(&st)
            .then(|| ops::span(range, st.size).ok())
            .flatten()
            .and_then(|(start, end)| self.read_now_or_never(file.as_fd(), start, (end - start) as usize));
        close(&st, vec![probe, file]);
        Some((st.meta(), Opened::Small(content?)))
    }

    /// The disk bytes of `path` when one `openat2` settles them (see `resolve`).
    fn cached_bytes(&self, path: &[String]) -> Option<Vec<u8>> {
        if !self.cached.walks.load(Ordering::Relaxed) {
            return None;
        }
        resolve::direct_bytes(path)
    }

    /// `len` bytes at `offset`, all from the page cache, or `None`.
    fn read_now_or_never(&self, file: BorrowedFd<'_>, offset: u64, len: usize) -> Option<Bytes> {
        let mut buf = vec![0; len];
        let mut done = 0;
        while done < len {
            let mut slice = [IoSliceMut::new(&mut buf[done..])];
            match rustix::io::preadv2(file, &mut slice, offset + done as u64, ReadWriteFlags::NOWAIT) {
                Ok(0) => return None,
                Ok(n) => done += n,
                Err(Errno::INTR) => {}
                Err(e) => return self.refused(Err(e), &self.cached.reads),
            }
        }
        Some(buf.into())
    }

    /// The result's value, or `None`; a kernel or file system without the flag behind
    /// `enabled` (EINVAL, EOPNOTSUPP, ENOSYS) turns that flag's calls off for this tree,
    /// rather than have every request try them in vain.
    fn refused<T>(&self, result: rustix::io::Result<T>, enabled: &AtomicBool) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(Errno::INVAL | Errno::OPNOTSUPP | Errno::NOSYS) => {
                if enabled.swap(false, Ordering::Relaxed) {
                    tracing::debug!(root = %self.root.display(), "a cached call is refused here; the blocking pool does it");
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

    /// The tests need cached reads where their temp directory is: a local file system
    /// mounted `relatime` or `noatime` (as /tmp is on the machines that run them).
    fn assert_cached_reads(tree: &HostTree) {
        assert!(
            tree.inner.cached.reads.load(Ordering::Relaxed),
            "the temp directory is not on a local file system mounted relatime"
        );
    }

    #[tokio::test]
    async fn a_cached_read_gives_what_the_blocking_read_gives() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.txt"), b"hello, cache").unwrap();
        let tree = tree(dir.path()).await;
        assert_cached_reads(&tree);
        let path = p(&["a.txt"]);
        let slow = tree.inner.read_now(&path, Some(7..100)).unwrap();
        let (meta, fast) = tree.inner.read_cached(&path, Some(7..100)).expect("a file just read is in the caches");
        assert_eq!(meta, slow.0);
        match (fast, slow.1) {
            (Opened::Small(a), Opened::Small(b)) => assert_eq!((&a[..], &b[..]), (&b"cache"[..], &b"cache"[..])),
            _ => panic!("small reads"),
        }
    }

    #[tokio::test]
    async fn a_read_that_would_update_the_access_time_is_left_to_the_blocking_pool() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a"), b"new").unwrap();
        let tree = tree(dir.path()).await;
        assert_cached_reads(&tree);
        if tree.inner.cached.noatime {
            return assert!(tree.inner.read_cached(&p(&["a"]), None).is_some(), "noatime: no read writes the inode");
        }
        // Just written: relatime updates the access time at the first read.
        assert!(tree.inner.read_cached(&p(&["a"]), None).is_none());
        tree.inner.read_now(&p(&["a"]), None).unwrap();
        assert!(tree.inner.read_cached(&p(&["a"]), None).is_some());
    }

    #[tokio::test]
    async fn cached_reads_leave_all_but_small_regular_files_to_the_blocking_pool() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join("small"), b"x").unwrap();
        std::fs::write(root.join("large"), vec![7u8; SMALL_READ as usize + 1]).unwrap();
        std::fs::create_dir(root.join("dir")).unwrap();
        std::os::unix::fs::symlink("small", root.join("link")).unwrap();
        rfs::mkfifoat(rfs::CWD, root.join("fifo"), rfs::Mode::from_raw_mode(0o644)).unwrap();
        let tree = tree(root).await;
        assert_cached_reads(&tree);
        for name in ["small", "large", "link"] {
            tree.inner.read_now(&p(&[name]), None).unwrap();
        }
        assert!(tree.inner.read_cached(&p(&["small"]), None).is_some());
        for name in ["large", "dir", "link", "fifo", "missing"] {
            assert!(tree.inner.read_cached(&p(&[name]), None).is_none(), "{name}");
        }
        // The usual way still answers each of them as it should.
        assert!(tree.read(&p(&["link"]), None).await.is_ok());
        assert_eq!(
            tree.read(&p(&["fifo"]), None).await.err().map(|e| e.to_string()),
            Some(crate::Error::Special.to_string())
        );
        assert_eq!(tree.read(&p(&["large"]), None).await.unwrap().0.size, SMALL_READ + 1);
    }

    #[tokio::test]
    async fn a_cached_stat_is_the_blocking_stat() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir(root.join("dir")).unwrap();
        std::fs::write(root.join("dir/file"), b"x").unwrap();
        rfs::mkfifoat(rfs::CWD, root.join("fifo"), rfs::Mode::from_raw_mode(0o644)).unwrap();
        let tree = tree(root).await;
        assert_cached_reads(&tree);
        for path in [p(&[]), p(&["dir"]), p(&["dir", "file"]), p(&["fifo"])] {
            let slow = tree.inner.stat_now(&path).unwrap();
            assert_eq!(tree.inner.stat_cached(&path), slow, "{path:?}");
        }
    }

    #[tokio::test]
    async fn names_only_a_directory_scan_can_settle_are_not_answered_from_the_cache() {
        let dir = tempfile::tempdir().unwrap();
        let temp = format!("{}0123", super::super::names::TEMP_PREFIX);
        std::fs::write(dir.path().join(&temp), b"a temp file").unwrap();
        let tree = tree(dir.path()).await;
        assert_cached_reads(&tree);
        assert!(tree.inner.stat_cached(&p(&[temp.as_str()])).is_none());
        assert!(tree.inner.read_cached(&p(&[temp.as_str()]), None).is_none());
        assert_eq!(tree.stat(&p(&[temp.as_str()])).await.ok().flatten(), None, "a temp file is never shown");
    }

    #[tokio::test]
    async fn cached_look_ups_never_go_through_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let (root, outside) = (dir.path().join("root"), dir.path().join("outside"));
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("secret"), b"secret").unwrap();
        std::fs::write(root.join("inside"), b"inside").unwrap();
        std::os::unix::fs::symlink(&outside, root.join("out")).unwrap();
        std::os::unix::fs::symlink("..", root.join("up")).unwrap();
        let tree = tree(&root).await;
        assert_cached_reads(&tree);
        tree.inner.read_now(&p(&["inside"]), None).unwrap();
        assert!(tree.inner.read_cached(&p(&["inside"]), None).is_some(), "the fast path is on");
        for path in [p(&["out", "secret"]), p(&["up", "outside", "secret"])] {
            assert!(tree.inner.read_cached(&path, None).is_none());
            assert!(tree.inner.stat_cached(&path).is_none());
            assert!(tree.read(&path, None).await.is_err(), "{path:?}");
        }
    }
}
