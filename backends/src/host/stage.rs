//! Taking in a body: into a temp file beside its target, so that install is one rename.
//!
//! A small body that arrives whole stays in memory until install, which creates, writes,
//! stamps, (in Full durability) syncs and renames its temp file in one blocking call: a
//! small upload costs one trip to the blocking pool, not two. A larger one is written one
//! buffer at a time on the blocking pool while the next buffer fills from the network.

use std::collections::hash_map::RandomState;
use std::ffi::CString;
use std::fs::File;
use std::hash::{BuildHasher, Hasher};
use std::io::{self, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use rustix::fs::{self as rfs, AtFlags};
use rustix::io::Errno;
use tokio::task::JoinHandle;

use super::fs::{self, Mapped};
use super::names::TEMP_PREFIX;
use super::{blocking, Inner};
use crate::tree::{StageOptions, TreeStaged};
use crate::{invalid_input, ByteStream, Error, Result};

/// Bodies up to this size that arrive without making us wait take the one-call path.
const SMALL_BODY: usize = 64 * 1024;

/// Write buffer of larger bodies: few hops and syscalls per GiB, two buffers per upload.
const WRITE_BUF: usize = 1 << 20;

/// Makes temp names unique within the process; the hash keys make them unpredictable
/// (another user of the folder can't pre-create them), and O_EXCL catches the rest.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

fn temp_name() -> CString {
    let mut h = RandomState::new().build_hasher();
    h.write_u64(TEMP_COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u32(std::process::id());
    let name = format!("{TEMP_PREFIX}{:016x}", h.finish());
    // Built from ASCII and hex digits: never contains NUL.
    CString::new(name).unwrap_or_default()
}

/// A temp file in its directory, removed when dropped unless it was renamed into place.
pub(super) struct Temp {
    dir: Arc<OwnedFd>,
    name: CString,
    file: File,
    live: bool,
}

impl Temp {
    /// Creates a temp file in `dir` with the configured owner and mode.
    pub(super) fn create(inner: &Inner, dir: Arc<OwnedFd>) -> Result<Temp> {
        let mode = inner.opts.file_mode.unwrap_or(0o666);
        let mut tries = 0;
        let (name, fd) = loop {
            let name = temp_name();
            match fs::create_file(dir.as_fd(), &name, mode) {
                Ok(fd) => break (name, fd),
                Err(e) if fs::is(&e, Errno::EXIST) && tries < 16 => tries += 1,
                Err(e) => return Err(fs::map(e)),
            }
        };
        let mut temp = Temp { dir, name, file: File::from(fd), live: true };
        if let Err(e) = inner.adopt(temp.file.as_fd(), false) {
            temp.remove_now();
            return Err(e);
        }
        Ok(temp)
    }

    /// The directory, to act in while the temp file itself changes state.
    pub(super) fn dir_handle(&self) -> Arc<OwnedFd> {
        self.dir.clone()
    }

    pub(super) fn name(&self) -> &CString {
        &self.name
    }

    pub(super) fn file(&self) -> &File {
        &self.file
    }

    /// After the last write: the modification time asked for, and in Full durability an
    /// fsync, so that the rename never exposes a name whose data a power loss would drop.
    pub(super) fn finish(&self, inner: &Inner, modified_ns: Option<i64>) -> Result<()> {
        if let Some(ns) = modified_ns {
            fs::set_mtime(self.file.as_fd(), ns).mapped()?;
        }
        if inner.full() {
            self.file.sync_all().mapped()?;
        }
        Ok(())
    }

    /// The name now belongs to the installed file: dropping must not remove it.
    pub(super) fn installed(&mut self) {
        self.live = false;
    }

    /// Removes the temp file here and now (on the blocking pool already).
    pub(super) fn remove_now(&mut self) {
        if std::mem::take(&mut self.live) {
            let _ = rfs::unlinkat(self.dir.as_fd(), &self.name, AtFlags::empty());
        }
    }
}

impl Drop for Temp {
    /// An abandoned upload: the unlink goes to the blocking pool when there is one, so
    /// dropping never blocks an async worker on the file system.
    fn drop(&mut self) {
        if !self.live {
            return;
        }
        self.live = false;
        let (dir, name) = (self.dir.clone(), std::mem::take(&mut self.name));
        let unlink = move || {
            let _ = rfs::unlinkat(dir.as_fd(), &name, AtFlags::empty());
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn_blocking(unlink)),
            Err(_) => unlink(),
        }
    }
}

/// The host tree's staged body: its temp file (or, for a small body, its bytes), and what
/// it was staged for, so that install can refuse it for another tree or directory.
pub(super) struct HostStaged {
    pending: Pending,
    tree: (u64, u64),
    parent: Vec<String>,
}

enum Pending {
    File(Temp),
    Memory { bytes: Vec<u8>, modified_ns: Option<i64> },
}

impl HostStaged {
    pub(super) fn check(&self, inner: &Inner, path: &[String]) -> Result<()> {
        let parent = path.split_last().map_or(&[][..], |(_, parent)| parent);
        if self.tree != inner.id || self.parent != parent {
            return Err(invalid_input("staged body was staged for another path"));
        }
        Ok(())
    }

    /// The temp file, written here and now for a body still in memory (the caller is on
    /// the blocking pool already).
    pub(super) fn temp(&mut self, inner: &Inner) -> Result<&mut Temp> {
        if let Pending::Memory { bytes, modified_ns } = &self.pending {
            let mut temp = create(inner, &self.parent)?;
            let written = temp.file.write_all(bytes).mapped().and_then(|()| temp.finish(inner, *modified_ns));
            if let Err(e) = written {
                temp.remove_now();
                return Err(e);
            }
            self.pending = Pending::File(temp);
        }
        match &mut self.pending {
            Pending::File(temp) => Ok(temp),
            Pending::Memory { .. } => Err(invalid_input("a staged body was not written")),
        }
    }

    /// Removes the temp file, if there is one yet.
    pub(super) fn discard(&mut self) {
        if let Pending::File(temp) = &mut self.pending {
            temp.remove_now();
        }
    }
}

/// The body as it comes in, counted against the limit.
struct Body {
    stream: ByteStream,
    /// What was left of the last chunk when the previous buffer filled up.
    rest: Bytes,
    size: u64,
    limit: Option<u64>,
}

impl Body {
    /// Appends to `buf` until it holds `cap` bytes (`Ok(false)`) or the body ends
    /// (`Ok(true)`).
    async fn fill(&mut self, buf: &mut Vec<u8>, cap: usize) -> Result<bool> {
        loop {
            let take = self.rest.len().min(cap - buf.len());
            buf.extend_from_slice(&self.rest.split_to(take));
            if buf.len() == cap {
                return Ok(false);
            }
            let Some(chunk) = self.stream.next().await else {
                return Ok(true);
            };
            let chunk = chunk.map_err(Error::Body)?;
            self.size += chunk.len() as u64;
            if let Some(limit) = self.limit.filter(|&limit| self.size > limit) {
                return Err(Error::TooLarge(limit));
            }
            self.rest = chunk;
        }
    }
}

pub(super) async fn stage(
    inner: Arc<Inner>,
    path: Vec<String>,
    body: ByteStream,
    opts: StageOptions,
) -> Result<TreeStaged> {
    let mut body = Body { stream: body, rest: Bytes::new(), size: 0, limit: opts.limit };
    let mut first = Vec::new();
    let ended = body.fill(&mut first, SMALL_BODY).await?;
    let parent = path[..path.len().saturating_sub(1)].to_vec();
    let tree = inner.id;
    if ended {
        let pending = Pending::Memory { bytes: first, modified_ns: opts.modified_ns };
        return Ok(TreeStaged { size: body.size, inner: Box::new(HostStaged { pending, tree, parent }) });
    }
    let (for_create, for_finish) = (inner.clone(), inner);
    let (temp, file) = blocking(move || {
        let temp = create(&for_create, &parent)?;
        let file = temp.file.try_clone().mapped()?;
        Ok((HostStaged { pending: Pending::File(temp), tree, parent }, file))
    })
    .await?;
    let written = write_rest(&mut body, first, file).await;
    let staged = blocking(move || {
        let mut staged = temp;
        let finished = written.and_then(|()| staged.temp(&for_finish)?.finish(&for_finish, opts.modified_ns));
        match finished {
            Ok(()) => Ok(staged),
            Err(e) => {
                staged.discard();
                Err(e)
            }
        }
    })
    .await?;
    Ok(TreeStaged { size: body.size, inner: Box::new(staged) })
}

/// A temp file in the parent of the target, which must exist.
fn create(inner: &Inner, parent: &[String]) -> Result<Temp> {
    let (dir, _) = inner.open(parent, fs::DIR_PATH).map_err(fs::map)?;
    Temp::create(inner, Arc::new(dir))
}

/// Writes `first` and the rest of the body, one buffer on the blocking pool while the
/// next one fills. The body is not polled again once it has ended.
async fn write_rest(body: &mut Body, first: Vec<u8>, file: File) -> Result<()> {
    let mut writer = Writer::Idle(file, Vec::with_capacity(WRITE_BUF));
    let mut buf = writer.push(first).await?;
    while !body.fill(&mut buf, WRITE_BUF).await? {
        buf = writer.push(buf).await?;
    }
    writer.push(buf).await?;
    // An empty push only waits for the write before it: the last one.
    writer.push(Vec::new()).await.map(drop)
}

enum Writer {
    Idle(File, Vec<u8>),
    Busy(JoinHandle<io::Result<(File, Vec<u8>)>>),
    Failed,
}

impl Writer {
    /// Waits for the buffer being written, then starts writing `buf` (nothing when it
    /// is empty). Returns an empty buffer to fill next.
    async fn push(&mut self, buf: Vec<u8>) -> Result<Vec<u8>> {
        let (mut file, mut spare) = match std::mem::replace(self, Writer::Failed) {
            Writer::Idle(file, spare) => (file, spare),
            Writer::Busy(writing) => writing.await.map_err(|e| Error::Io(io::Error::other(e)))?.mapped()?,
            Writer::Failed => return Err(Error::Io(io::Error::other("an earlier write of this upload failed"))),
        };
        spare.clear();
        if buf.is_empty() {
            *self = Writer::Idle(file, buf);
            return Ok(spare);
        }
        *self = Writer::Busy(tokio::task::spawn_blocking(move || {
            file.write_all(&buf)?;
            Ok((file, buf))
        }));
        Ok(spare)
    }
}
