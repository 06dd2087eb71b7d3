//! Content-addressed blobs in a local directory.
//!
//! Layout under the root:
//! - `blobs/ab/cd/<id>`: committed blobs; the two-level fan-out keeps every directory small
//!   enough that lookups stay fast on filesystems with linear directory scans.
//! - `tmp/`: uploads in progress. It lives on the same filesystem as `blobs/` so that commit
//!   is a single atomic rename, and it is emptied at start-up because anything left there
//!   belongs to an upload that was never acknowledged.

use std::fs::File;
use std::io::{self, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use tokio::task::JoinHandle;

use crate::tempfile_path::TempPath;
use crate::{invalid_input, BlobId, BlobStore, ByteStream, Durability, Error, Result, Staged, StagedInner};

/// Incoming bodies usually arrive in chunks of a few KiB; gathering them into buffers this
/// large keeps the number of blocking-pool hops and `write` syscalls per GiB in the hundreds.
/// Two such buffers exist per upload (one filling, one being written), which bounds memory.
const WRITE_BUF: usize = 1 << 20;

/// Blobs (or ranges) up to this size are read whole in the call that opens them: one
/// blocking-pool hop per small GET. Larger ones are streamed by `stream_file`.
const SMALL_READ: usize = 256 * 1024;

/// Makes temp names unique within this process; the pid and clock make them unique across
/// processes, and `create_new` catches whatever is left.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A blob store in a local directory.
///
/// Only one process may use a given root at a time: opening a store discards the temp files
/// of any upload still running against the same root.
#[derive(Debug, Clone)]
pub struct LocalStore {
    blobs: PathBuf,
    tmp: PathBuf,
    durability: Durability,
}

impl LocalStore {
    /// Creates the directory layout if needed and discards uploads interrupted by a crash.
    pub async fn open(root: impl Into<PathBuf>, durability: Durability) -> Result<LocalStore> {
        let root = root.into();
        let store = LocalStore { blobs: root.join("blobs"), tmp: root.join("tmp"), durability };
        let (blobs, tmp) = (store.blobs.clone(), store.tmp.clone());
        blocking(move || {
            std::fs::create_dir_all(&blobs)?;
            std::fs::create_dir_all(&tmp)?;
            clean_dir(&tmp)
        })
        .await?;
        Ok(store)
    }

    /// Opens the store without discarding anything in `tmp/`: for a process (an
    /// administration command) that runs beside the server owning the store, whose
    /// uploads in progress live there.
    pub async fn attach(root: impl Into<PathBuf>, durability: Durability) -> Result<LocalStore> {
        let root = root.into();
        let store = LocalStore { blobs: root.join("blobs"), tmp: root.join("tmp"), durability };
        let (blobs, tmp) = (store.blobs.clone(), store.tmp.clone());
        blocking(move || {
            std::fs::create_dir_all(&blobs)?;
            std::fs::create_dir_all(&tmp)
        })
        .await?;
        Ok(store)
    }

    fn blob_path(&self, id: &BlobId) -> PathBuf {
        let (a, b) = fan_out(id);
        self.blobs.join(a).join(b).join(id.as_str())
    }

    fn create_temp(&self) -> io::Result<(File, TempPath)> {
        let pid = std::process::id();
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let mut attempts = 0;
        loop {
            let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
            let path = self.tmp.join(format!("{pid}-{nanos}-{n}.tmp"));
            match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(file) => return Ok((file, TempPath(path))),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempts < 16 => {
                    attempts += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

#[async_trait::async_trait]
impl BlobStore for LocalStore {
    async fn stage(&self, mut body: ByteStream, limit: Option<u64>) -> Result<Staged> {
        let store = self.clone();
        // Declared before the writer so that, on an early return, it is dropped after it:
        // the path is unlinked even if a detached write is still running on the open fd.
        let (file, temp) = blocking(move || store.create_temp()).await?;
        let mut writer = PipelinedWriter::new(file);
        let mut size: u64 = 0;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(Error::Body)?;
            size += chunk.len() as u64;
            if let Some(limit) = limit {
                if size > limit {
                    return Err(Error::TooLarge(limit));
                }
            }
            writer.push(&chunk).await?;
        }
        let hash = writer.finish(self.durability == Durability::Full).await?;
        Ok(Staged { id: BlobId(hash.to_hex().to_string()), size, inner: StagedInner::File(Some(temp)) })
    }

    async fn commit(&self, mut staged: Staged) -> Result<BlobId> {
        let temp = match &mut staged.inner {
            StagedInner::File(temp) => temp.take(),
            StagedInner::Memory(_) => None,
        };
        let Some(temp) = temp else {
            return Err(invalid_input("staged blob does not belong to a local store"));
        };
        let id = staged.id.clone();
        let dest = self.blob_path(&id);
        let blobs = self.blobs.clone();
        let full = self.durability == Durability::Full;
        blocking(move || {
            if dest.try_exists()? {
                // Identical content is already stored; the guard removes our copy.
                drop(temp);
                return Ok(());
            }
            let parent = ensure_fan_out(&blobs, &id, full)?;
            // A concurrent commit of the same id may win between the check and here; the
            // rename then atomically replaces identical bytes, which readers cannot notice.
            std::fs::rename(&temp.0, &dest)?;
            temp.disarm();
            if full {
                sync_dir(&parent)?;
            }
            Ok(())
        })
        .await?;
        Ok(staged.id)
    }

    async fn open(&self, id: &BlobId, range: Option<Range<u64>>) -> Result<ByteStream> {
        if let Some(r) = &range {
            if r.start > r.end {
                return Err(invalid_input(format!("byte range {}..{} is reversed", r.start, r.end)));
            }
        }
        let path = self.blob_path(id);
        match blocking(move || open_blob(&path, range)).await {
            Ok(Opened::Small(bytes)) => Ok(Box::pin(futures_util::stream::once(async move { Ok(bytes) }))),
            Ok(Opened::Large(file, len)) => Ok(stream_file(file, len)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(Error::NotFound(id.clone())),
            Err(e) => Err(e.into()),
        }
    }

    async fn delete(&self, id: &BlobId) -> Result<()> {
        // Not fsynced even in Full mode: a deletion lost to power failure only leaves an
        // unreferenced blob, which the next garbage-collection sweep removes again.
        match tokio::fs::remove_file(self.blob_path(id)).await {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }

    async fn list(&self) -> Result<Vec<BlobId>> {
        let blobs = self.blobs.clone();
        Ok(blocking(move || list_blobs(&blobs)).await?)
    }
}

/// The file and hasher, moved into a blocking task for each buffer and handed back after.
struct Sink {
    file: File,
    hasher: blake3::Hasher,
}

impl Sink {
    fn absorb(mut self: Box<Self>, buf: Vec<u8>) -> io::Result<(Box<Sink>, Vec<u8>)> {
        self.hasher.update(&buf);
        self.file.write_all(&buf)?;
        Ok((self, buf))
    }
}

type Absorbing = JoinHandle<io::Result<(Box<Sink>, Vec<u8>)>>;

/// The sink is boxed because the hasher is large and moves on every buffer hand-off.
enum SinkState {
    Idle(Box<Sink>),
    Busy(Absorbing),
    /// A write failed; the upload is being abandoned.
    Failed,
}

/// Double-buffered writer: the next buffer fills from the network while the previous one
/// is hashed and written on the blocking pool, so neither the async workers nor the disk
/// wait on each other, and memory stays at two buffers whatever the body size.
struct PipelinedWriter {
    sink: SinkState,
    filling: Vec<u8>,
    spare: Vec<u8>,
}

impl PipelinedWriter {
    fn new(file: File) -> Self {
        PipelinedWriter {
            sink: SinkState::Idle(Box::new(Sink { file, hasher: blake3::Hasher::new() })),
            filling: Vec::with_capacity(WRITE_BUF),
            spare: Vec::new(),
        }
    }

    async fn push(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let n = data.len().min(WRITE_BUF - self.filling.len());
            self.filling.extend_from_slice(&data[..n]);
            data = &data[n..];
            if self.filling.len() == WRITE_BUF {
                self.hand_off().await?;
            }
        }
        Ok(())
    }

    /// Waits for the in-flight buffer, if any, and takes the sink back.
    async fn idle_sink(&mut self) -> io::Result<Box<Sink>> {
        match std::mem::replace(&mut self.sink, SinkState::Failed) {
            SinkState::Idle(sink) => Ok(sink),
            SinkState::Busy(handle) => {
                let (sink, mut used) = handle.await.map_err(io::Error::other)??;
                used.clear();
                self.spare = used;
                Ok(sink)
            }
            SinkState::Failed => Err(io::Error::other("an earlier write of this upload failed")),
        }
    }

    async fn hand_off(&mut self) -> io::Result<()> {
        let sink = self.idle_sink().await?;
        let mut next = std::mem::take(&mut self.spare);
        next.reserve_exact(WRITE_BUF);
        let full = std::mem::replace(&mut self.filling, next);
        self.sink = SinkState::Busy(tokio::task::spawn_blocking(move || sink.absorb(full)));
        Ok(())
    }

    async fn finish(mut self, sync: bool) -> io::Result<blake3::Hash> {
        if !self.filling.is_empty() {
            self.hand_off().await?;
        }
        let sink = self.idle_sink().await?;
        blocking(move || {
            if sync {
                sink.file.sync_all()?;
            }
            Ok(sink.hasher.finalize())
        })
        .await
    }
}

/// Runs filesystem work off the async workers; a panicked task surfaces as an I/O error.
/// Chunk size of large reads: big enough that per-chunk hand-offs don't matter.
const STREAM_CHUNK: usize = 1 << 20;

/// Streams `len` bytes of `file` from one blocking task that reads straight into fresh
/// chunks. tokio's `File` would hop to the blocking pool for every read and copy each
/// buffer once more; this way a byte is copied once, from the page cache into its chunk.
/// The channel's small bound keeps memory per download to a few chunks, and a departed
/// client ends the task at its next send.
fn stream_file(file: File, len: u64) -> ByteStream {
    let (tx, rx) = tokio::sync::mpsc::channel::<io::Result<bytes::Bytes>>(2);
    tokio::task::spawn_blocking(move || {
        use std::io::Read;
        let mut left = len;
        let mut file = file;
        while left > 0 {
            let want = left.min(STREAM_CHUNK as u64);
            let mut chunk = Vec::with_capacity(want as usize);
            let got = match (&mut file).take(want).read_to_end(&mut chunk) {
                Ok(0) => Err(io::Error::new(io::ErrorKind::UnexpectedEof, "blob shorter than expected")),
                other => other,
            };
            let item = got.map(|n| {
                left -= n as u64;
                bytes::Bytes::from(chunk)
            });
            let failed = item.is_err();
            if tx.blocking_send(item).is_err() || failed {
                return;
            }
        }
    });
    let mut rx = rx;
    Box::pin(futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)))
}

enum Opened {
    Small(bytes::Bytes),
    Large(File, u64),
}

/// Opens a blob positioned at the range start. A small blob (or range) is read in the same
/// blocking call: one thread-pool hop per small GET instead of one per open and read.
/// Reading past the end is clamped, matching slice behaviour in the memory store.
fn open_blob(path: &Path, range: Option<Range<u64>>) -> io::Result<Opened> {
    use std::io::{Read, Seek};
    let mut file = File::open(path)?;
    let size = file.metadata()?.len();
    let (start, end) = match range {
        Some(r) => (r.start.min(size), r.end.min(size)),
        None => (0, size),
    };
    if start > 0 {
        file.seek(io::SeekFrom::Start(start))?;
    }
    let len = end - start;
    if len > SMALL_READ as u64 {
        return Ok(Opened::Large(file, len));
    }
    let mut buf = vec![0; len as usize];
    file.read_exact(&mut buf)?;
    Ok(Opened::Small(buf.into()))
}

async fn blocking<T, F>(f: F) -> io::Result<T>
where
    F: FnOnce() -> io::Result<T> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f).await.map_err(io::Error::other)?
}

fn fan_out(id: &BlobId) -> (&str, &str) {
    let s = id.as_str();
    (&s[0..2], &s[2..4])
}

/// Creates `ab/` and `ab/cd/` one level at a time so that, in Full mode, exactly the
/// directories whose entries changed get fsynced. Returns the blob's directory.
fn ensure_fan_out(blobs: &Path, id: &BlobId, full: bool) -> io::Result<PathBuf> {
    let (a, b) = fan_out(id);
    let first = blobs.join(a);
    let second = first.join(b);
    if second.is_dir() {
        return Ok(second);
    }
    for (dir, parent) in [(&first, blobs), (&second, first.as_path())] {
        match std::fs::create_dir(dir) {
            Ok(()) if full => sync_dir(parent)?,
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    Ok(second)
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn clean_dir(dir: &Path) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            match std::fs::remove_file(entry.path()) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
    }
    Ok(())
}

/// Entries that vanish mid-walk (a concurrent delete) are skipped; anything that is not a
/// well-formed id in its proper fan-out directory is ignored rather than reported, so a
/// stray file can never be mistaken for a blob and deleted by a sweep.
fn list_blobs(blobs: &Path) -> io::Result<Vec<BlobId>> {
    let mut ids = Vec::new();
    for first in read_dir_tolerant(blobs)? {
        let Some(a) = fan_out_name(&first) else {
            continue;
        };
        for second in read_dir_tolerant(&first.path())? {
            let Some(b) = fan_out_name(&second) else {
                continue;
            };
            for blob in read_dir_tolerant(&second.path())? {
                let name = blob.file_name();
                let Some(id) = name.to_str().and_then(BlobId::parse) else {
                    continue;
                };
                if fan_out(&id) == (a.as_str(), b.as_str()) {
                    ids.push(id);
                }
            }
        }
    }
    ids.sort();
    Ok(ids)
}

fn read_dir_tolerant(dir: &Path) -> io::Result<Vec<std::fs::DirEntry>> {
    match std::fs::read_dir(dir) {
        Ok(entries) => entries.collect(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

fn fan_out_name(entry: &std::fs::DirEntry) -> Option<String> {
    let name = entry.file_name().into_string().ok()?;
    let ok = name.len() == 2 && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    ok.then_some(name)
}

#[cfg(test)]
mod tests;
