//! Content-addressed blobs in a local directory.
//!
//! Layout under the root:
//! - `blobs/ab/<id>`: committed blobs, under the first two hex digits of their id. One level
//!   of 256 directories, all created when the store is opened, so committing a blob does
//!   not create one (with two levels, most new blobs of a young store made a directory, and
//!   ext4's inode allocation became most of a small upload's cost). A million blobs make
//!   ~4,000 entries per directory, which ext4 (htree), XFS and btrfs look up by hash.
//!   Pre-release builds used two levels (`blobs/ab/cd/<id>`); nothing was released with
//!   that layout, so there is no migration: such files are neither read nor listed (hence
//!   never swept).
//! - `tmp/`: uploads in progress. It lives on the same filesystem as `blobs/` so that commit
//!   is a single atomic rename, and it is emptied at start-up because anything left there
//!   belongs to an upload that was never acknowledged.
//!
//! Uploads take one of two paths, and on both every byte is hashed on the async worker that
//! received it (see [`Intake`]). A small body that arrives whole, without making us wait for
//! the network, stays in memory until `commit`, which creates, writes and renames its file
//! in one blocking call. Any other body streams into a temp file in `tmp/` through a
//! [`Pipeline`], which writes one buffer on the blocking pool while the next one fills.

use std::fs::File;
use std::io::{self, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::task::JoinHandle;

use crate::intake::Intake;
use crate::tempfile_path::TempPath;
use crate::{invalid_input, BlobId, BlobStore, ByteStream, Durability, Error, Result, Staged, StagedInner};

/// Incoming bodies usually arrive in chunks of a few KiB; gathering them into buffers this
/// large keeps the number of blocking-pool hops and `write` syscalls per GiB in the hundreds.
/// Two such buffers exist per upload (one filling, one being written), which bounds memory;
/// a body shorter than one buffer takes about its own size. For a 1 GiB FTP STOR, 512 KiB
/// buffers were slower (twice the hand-offs), and so were 2 and 4 MiB ones.
const WRITE_BUF: usize = 1 << 20;

/// Blobs (or ranges) up to this size are read whole in the call that opens them: one
/// blocking-pool hop per small GET. Larger ones are a `FileStream`.
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
        let opened = store.clone();
        blocking(move || {
            std::fs::create_dir_all(&opened.tmp)?;
            opened.create_fan_out()?;
            clean_dir(&opened.tmp)
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

    fn full(&self) -> bool {
        self.durability == Durability::Full
    }

    fn fan_dir(&self, id: &BlobId) -> PathBuf {
        self.blobs.join(fan_out(id))
    }

    fn blob_path(&self, id: &BlobId) -> PathBuf {
        self.fan_dir(id).join(id.as_str())
    }

    /// Creates `blobs/` and its 256 fan-out directories where missing. In Full durability,
    /// fsyncs `blobs/` when a directory was made, so that the layout survives power loss.
    fn create_fan_out(&self) -> io::Result<()> {
        std::fs::create_dir_all(&self.blobs)?;
        let mut made = false;
        for byte in 0..=255u8 {
            made |= created(std::fs::create_dir(self.blobs.join(format!("{byte:02x}"))))?;
        }
        if made && self.full() {
            sync_dir(&self.blobs)?;
        }
        Ok(())
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

    /// A body larger than one buffer, or one that kept us waiting, streams into a temp file
    /// through a [`Pipeline`].
    async fn stage_to_file(&self, first: Vec<u8>, mut upload: Upload) -> Result<Staged> {
        // Declared before the pipeline so that, on an early return, it is dropped after it:
        // the path is unlinked even if a detached write is still running on the open fd.
        let (file, temp) = upload.temp_file().await?;
        let mut pipeline = Pipeline::new(file);
        let mut buf = first;
        while !buf.is_empty() {
            let full = buf.len() == WRITE_BUF;
            buf = pipeline.push(buf).await?;
            // A buffer that is not full was the end of the body; the stream is not polled again.
            if full {
                upload.fill(&mut buf).await?;
            }
        }
        pipeline.finish(self.full()).await?;
        Ok(upload.intake.staged(StagedInner::File(Some(temp))))
    }

    /// Moves a finished temp file into place, unless identical content is already stored
    /// (dropping `temp` then removes our copy).
    fn place(&self, temp: TempPath, id: &BlobId) -> io::Result<()> {
        if self.blob_path(id).try_exists()? {
            return Ok(());
        }
        self.rename_into(temp, id)
    }

    /// Writes a buffered small body to a temp file and moves it into place: creating,
    /// writing, fsyncing and renaming in one blocking call, and no file at all when the
    /// content is already stored.
    fn write_and_place(&self, bytes: &[u8], id: &BlobId) -> io::Result<()> {
        if self.blob_path(id).try_exists()? {
            return Ok(());
        }
        let (mut file, temp) = self.create_temp()?;
        file.write_all(bytes)?;
        if self.full() {
            file.sync_all()?;
        }
        drop(file);
        self.rename_into(temp, id)
    }

    /// The rename that makes a blob visible. A concurrent commit of the same id may have won
    /// since the caller's check; the rename then atomically replaces identical bytes, which
    /// readers cannot notice. A fan-out directory removed behind our back is made again.
    fn rename_into(&self, temp: TempPath, id: &BlobId) -> io::Result<()> {
        let dest = self.blob_path(id);
        if let Err(e) = std::fs::rename(&temp.0, &dest) {
            if e.kind() != io::ErrorKind::NotFound {
                return Err(e);
            }
            created(std::fs::create_dir(self.fan_dir(id)))?;
            if self.full() {
                sync_dir(&self.blobs)?;
            }
            std::fs::rename(&temp.0, &dest)?;
        }
        temp.disarm();
        if self.full() {
            sync_dir(&self.fan_dir(id))?;
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl BlobStore for LocalStore {
    /// Into `lost+found/` beside `blobs/` (see [`LocalStore::lost_and_found`]).
    async fn quarantine(&self, id: &BlobId) -> Result<Option<PathBuf>> {
        self.move_aside(id).await
    }

    async fn stage(&self, body: ByteStream, limit: Option<u64>) -> Result<Staged> {
        let mut upload = Upload::new(self.clone(), body, limit);
        let mut first = Vec::new();
        upload.fill(&mut first).await?;
        if first.len() < WRITE_BUF && !upload.has_temp() {
            return Ok(upload.buffered(first));
        }
        self.stage_to_file(first, upload).await
    }

    async fn commit(&self, staged: Staged) -> Result<BlobId> {
        let store = self.clone();
        let id = staged.id.clone();
        match staged.inner {
            StagedInner::File(Some(temp)) => blocking(move || store.place(temp, &id)).await?,
            StagedInner::Buffered(bytes) => blocking(move || store.write_and_place(&bytes, &id)).await?,
            _ => return Err(invalid_input("staged blob does not belong to a local store")),
        }
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
            Ok(Opened::Large(file, start, len)) => Ok(crate::span::FileStream::stream(file, start, len)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(Error::NotFound(id.clone())),
            Err(e) => Err(e.into()),
        }
    }

    async fn delete(&self, id: &BlobId) -> Result<u64> {
        // Not fsynced even in Full mode: a deletion lost to power failure only leaves an
        // unreferenced blob, which the next garbage-collection sweep removes again.
        let path = self.blob_path(id);
        let remove =
            move || std::fs::symlink_metadata(&path).and_then(|m| std::fs::remove_file(&path).map(|()| m.len()));
        match blocking(remove).await {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
            other => Ok(other?),
        }
    }

    async fn list(&self) -> Result<Vec<BlobId>> {
        let blobs = self.blobs.clone();
        Ok(blocking(move || list_blobs(&blobs)).await?)
    }

    /// Creates, writes and removes a temp file in `tmp/`, as every streamed upload does.
    async fn probe(&self) -> Result<()> {
        let store = self.clone();
        Ok(blocking(move || {
            let (mut file, temp) = store.create_temp()?;
            file.write_all(b"readiness probe")?;
            std::fs::remove_file(&temp.0).map(|()| temp.disarm())
        })
        .await?)
    }
}

type Creating = JoinHandle<io::Result<(File, TempPath)>>;

/// An upload's temp file: not asked for yet, being created, or handed to the pipeline.
enum Temp {
    NotYet,
    Creating(Creating),
    Taken,
}

/// An upload being staged: its body (see [`Intake`]) and the temp file it will go to.
///
/// The temp file is created in the background the first time the body keeps us waiting, so
/// that making it overlaps the network; a small body that arrives whole at once needs no
/// file until commit.
struct Upload {
    store: LocalStore,
    intake: Intake,
    temp: Temp,
}

impl Upload {
    fn new(store: LocalStore, stream: ByteStream, limit: Option<u64>) -> Self {
        Upload { store, intake: Intake::new(stream, limit), temp: Temp::NotYet }
    }

    /// Appends to `buf` until it holds WRITE_BUF bytes or the body ends (it then holds fewer).
    async fn fill(&mut self, buf: &mut Vec<u8>) -> Result<()> {
        let (store, temp) = (&self.store, &mut self.temp);
        self.intake
            .fill(buf, WRITE_BUF, || {
                if let Temp::NotYet = temp {
                    *temp = Temp::Creating(create_temp(store));
                }
            })
            .await
    }

    fn has_temp(&self) -> bool {
        !matches!(self.temp, Temp::NotYet)
    }

    /// A body that arrived whole before its first buffer filled stays in memory until
    /// `commit` writes it: staging it needs no blocking-pool hop at all.
    fn buffered(self, body: Vec<u8>) -> Staged {
        self.intake.staged(StagedInner::Buffered(Bytes::from(body)))
    }

    /// The temp file, once created. Should the upload be dropped before that, the file is
    /// removed as soon as it exists: its guard is dropped with the task's output.
    async fn temp_file(&mut self) -> io::Result<(File, TempPath)> {
        let creating = match std::mem::replace(&mut self.temp, Temp::Taken) {
            Temp::Creating(creating) => creating,
            _ => create_temp(&self.store),
        };
        creating.await.map_err(io::Error::other)?
    }
}

fn create_temp(store: &LocalStore) -> Creating {
    let store = store.clone();
    tokio::task::spawn_blocking(move || store.create_temp())
}

/// Writes a large body one buffer at a time on the blocking pool while the caller fills
/// the next buffer from the network (and hashes it): memory stays at two buffers whatever
/// the body size, and the file is written in order.
struct Pipeline {
    state: State,
}

enum State {
    Idle {
        file: File,
        spare: Vec<u8>,
    },
    Busy(JoinHandle<io::Result<(File, Vec<u8>)>>),
    /// Stands in while the pipeline settles, and stays if a write failed.
    Failed,
}

impl Pipeline {
    fn new(file: File) -> Self {
        Pipeline { state: State::Idle { file, spare: Vec::with_capacity(WRITE_BUF) } }
    }

    /// Waits for the buffer being written, if any, then starts writing `buf`. Returns an
    /// empty buffer to fill next (the finished one's allocation).
    async fn push(&mut self, buf: Vec<u8>) -> io::Result<Vec<u8>> {
        let (mut file, spare) = self.settle().await?;
        self.state = State::Busy(tokio::task::spawn_blocking(move || {
            file.write_all(&buf)?;
            Ok((file, buf))
        }));
        Ok(spare)
    }

    async fn settle(&mut self) -> io::Result<(File, Vec<u8>)> {
        match std::mem::replace(&mut self.state, State::Failed) {
            State::Idle { file, spare } => Ok((file, spare)),
            State::Busy(writing) => {
                let (file, mut used) = writing.await.map_err(io::Error::other)??;
                used.clear();
                Ok((file, used))
            }
            State::Failed => Err(io::Error::other("an earlier write of this upload failed")),
        }
    }

    /// Waits for the last buffer and, in Full durability, fsyncs the file.
    async fn finish(mut self, sync: bool) -> io::Result<()> {
        let (file, _) = self.settle().await?;
        if sync {
            blocking(move || file.sync_all()).await?;
        }
        Ok(())
    }
}

enum Opened {
    Small(bytes::Bytes),
    Large(File, u64, u64),
}

/// Opens a blob for the range asked (its start and length). A small blob (or range) is read
/// in the same blocking call: one thread-pool hop per small GET instead of one per open and
/// read. Reading past the end is clamped, matching slice behaviour in the memory store.
fn open_blob(path: &Path, range: Option<Range<u64>>) -> io::Result<Opened> {
    let file = File::open(path)?;
    let size = file.metadata()?.len();
    let (start, end) = match range {
        Some(r) => (r.start.min(size), r.end.min(size)),
        None => (0, size),
    };
    let len = end - start;
    if len > SMALL_READ as u64 {
        return Ok(Opened::Large(file, start, len));
    }
    Ok(Opened::Small(crate::span::read_at(&file, start, len as usize)?.into()))
}

/// Runs filesystem work off the async workers; a panicked task surfaces as an I/O error.
async fn blocking<T, F>(f: F) -> io::Result<T>
where
    F: FnOnce() -> io::Result<T> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f).await.map_err(io::Error::other)?
}

/// The fan-out directory's name: the id's first two hex digits.
fn fan_out(id: &BlobId) -> &str {
    &id.as_str()[..2]
}

/// Whether a `create_dir` made the directory (`false`: it was already there).
fn created(result: io::Result<()>) -> io::Result<bool> {
    match result {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    }
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
    for dir in read_dir_tolerant(blobs)? {
        let Some(prefix) = fan_out_name(&dir) else {
            continue;
        };
        for blob in read_dir_tolerant(&dir.path())? {
            let name = blob.file_name();
            let Some(id) = name.to_str().and_then(BlobId::parse) else {
                continue;
            };
            if fan_out(&id) == prefix {
                ids.push(id);
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

mod maintenance;
pub use maintenance::Taken;

#[cfg(test)]
mod tests;
