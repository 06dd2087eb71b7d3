//! Archives read in place: a zip, tar, tar.gz or tar.zst file of any tree (a blob of the
//! native store, a file of a host folder) shown as a read-only tree of its members.
//!
//! Nothing is extracted. An archive is read through a [`Source`] (random access to its
//! bytes), once, to make an [`Index`]: its members and where each one's bytes are. The
//! caller keeps that index (the model stores it in its database, keyed by the archive's
//! identity) and hands it back to [`ArchiveTree`], which then answers every request from
//! the index and a read of just the bytes it needs:
//! - zip: members are read from their offsets (stored members by a plain range read,
//!   deflated ones through an inflater), the central directory being the index;
//! - tar: the headers are walked once, members are ranges of the file;
//! - tar.gz and tar.zst: the walk decompresses the whole archive once and records restart
//!   points every few MiB of output ([`Checkpoint`]): reading a member later decompresses
//!   from the nearest restart point before it, never from the start.
//!
//! Decompression and parsing are blocking work: they run on the blocking pool over a
//! [`SourceReader`], and hand results back over bounded channels, so a large archive never
//! stalls an async worker and a departed client stops the work at its next chunk.
//!
//! Hostile archives are expected: member names are normalised by [`safe_path`] (no `..`,
//! no absolute or drive paths, backslashes are separators) or skipped; links are never
//! followed out of the archive; [`Limits`] caps members, total size and compression ratio;
//! nothing is ever allocated by a size the archive merely declares.

mod codec;
mod encode;
pub mod fuzzing;
mod gz;
mod names;
mod tar;
mod tree;
mod zip;
mod zst;

pub use names::safe_path;
pub use tree::{ArchiveTree, Catalog};

use std::io;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;

use crate::{ByteStream, Error, Result};

/// The kinds of archive Wharf opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Zip,
    Tar,
    TarGz,
    TarZst,
}

impl Format {
    /// The format a file name promises (`.zip`, `.tar`, `.tar.gz`, `.tgz`, `.tar.zst`,
    /// `.tzst`, any case): only such files can be opened as folders, so that a name like
    /// `notes!` next to a plain `notes` stays an ordinary name.
    pub fn from_name(name: &str) -> Option<Format> {
        let lower = name.to_ascii_lowercase();
        let ends = |s: &str| lower.len() > s.len() && lower.ends_with(s);
        if ends(".zip") {
            Some(Format::Zip)
        } else if ends(".tar") {
            Some(Format::Tar)
        } else if ends(".tar.gz") || ends(".tgz") {
            Some(Format::TarGz)
        } else if ends(".tar.zst") || ends(".tzst") {
            Some(Format::TarZst)
        } else {
            None
        }
    }

    /// The format the first bytes show, whatever the name says (a `.tar.gz` that is
    /// really a zip is read as a zip): `head` is the archive's first 512 bytes or all of
    /// a shorter one.
    pub fn sniff(head: &[u8]) -> Option<Format> {
        if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
            Some(Format::Zip)
        } else if head.starts_with(&[0x1f, 0x8b]) {
            Some(Format::TarGz)
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Some(Format::TarZst)
        } else if head.len() >= 262 && &head[257..262] == b"ustar"
            // A pre-POSIX (v7) tar has no magic, but a valid header checksum.
            || head.len() >= 512 && tar::header_checksum_ok(&head[..512])
        {
            Some(Format::Tar)
        } else {
            None
        }
    }

    /// A short tag, stored with the index.
    pub fn tag(self) -> u8 {
        match self {
            Format::Zip => 1,
            Format::Tar => 2,
            Format::TarGz => 3,
            Format::TarZst => 4,
        }
    }

    fn from_tag(t: u8) -> Option<Format> {
        [Format::Zip, Format::Tar, Format::TarGz, Format::TarZst].into_iter().find(|f| f.tag() == t)
    }
}

/// Random access to an archive's bytes. Implementations make sure every read comes from
/// the same version of the archive the index was made of (content addressing gives that
/// for free; a host file is checked against its identity), failing otherwise.
#[async_trait::async_trait]
pub trait Source: Send + Sync + 'static {
    fn size(&self) -> u64;
    /// The bytes of `range` (within `0..size()`), streamed.
    async fn read(&self, range: Range<u64>) -> Result<ByteStream>;
}

/// Caps on what an archive may make the server do. An archive over a cap is refused with
/// [`Error::Archive`] (a member over the ratio cap is listed but refused on reading).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Members an index may hold.
    pub max_members: u64,
    /// Bytes all members may hold together, uncompressed.
    pub max_total: u64,
    /// Uncompressed bytes per compressed byte, for a member (zip) or the whole stream
    /// (tar.gz, tar.zst). Deflate reaches about 1,030 on zeros; real data rarely 20.
    pub max_ratio: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_members: 1_000_000, max_total: 1 << 40, max_ratio: 200 }
    }
}

/// Where a member's bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Data {
    /// As they are, at `offset` of the archive (a plain tar, a zip member stored).
    Stored { offset: u64 },
    /// Raw deflate at `offset` of the archive, `compressed` bytes long (a zip member).
    Deflated { offset: u64, compressed: u64 },
    /// At `offset` of the archive's decompressed stream (tar.gz, tar.zst).
    Stream { offset: u64 },
}

/// One member of an archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Its path inside the archive, as [`safe_path`] made it.
    pub path: Vec<String>,
    pub dir: bool,
    pub size: u64,
    pub modified_ns: i64,
    pub data: Data,
    /// The zip CRC-32 of its bytes, checked when a member is read whole.
    pub crc32: Option<u32>,
    /// Why it can't be read, if it can't (over the ratio cap, cut short by a truncated
    /// archive): such a member is still listed, and a read of it fails with this reason.
    pub refused: Option<String>,
}

/// A place to restart decompression from: `out` bytes of output into the stream, `input`
/// bytes (plus `bits` bits, for deflate) into the archive, with the window of output the
/// decompressor needs there (empty where a new frame or stream begins).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub out: u64,
    pub input: u64,
    pub bits: u8,
    pub window: Vec<u8>,
}

/// What an archive holds, made once by [`build_index`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Index {
    pub format: Format,
    pub members: Vec<Member>,
    /// Restart points of a compressed tar, in order of `out` (the first at 0).
    pub checkpoints: Vec<Checkpoint>,
}

impl Index {
    /// A compact binary form, for the model to store.
    pub fn encode(&self) -> Vec<u8> {
        encode::encode(self)
    }

    pub fn decode(bytes: &[u8]) -> Result<Index> {
        encode::decode(bytes).ok_or_else(|| Error::Archive("stored archive index is damaged".into()))
    }
}

/// Output spacing of restart points in compressed tars: restarting costs at most this much
/// decompression, and each point keeps a 32 KiB window.
pub const CHECKPOINT_SPACING: u64 = 4 << 20;

/// Reads the whole archive once and makes its index, on the blocking pool. Dropping the
/// returned future, or setting `cancel`, stops the work at its next chunk.
pub async fn build_index(source: Arc<dyn Source>, limits: Limits, cancel: Arc<AtomicBool>) -> Result<Index> {
    let head = read_all(&*source, 0..source.size().min(512)).await?;
    let format =
        Format::sniff(&head).ok_or_else(|| Error::Archive("not a zip, tar, tar.gz or tar.zst archive".into()))?;
    let guard = CancelOnDrop(cancel.clone());
    let rt = tokio::runtime::Handle::current();
    let result = tokio::task::spawn_blocking(move || {
        let reader = SourceReader::new(source, rt, Some(cancel));
        match format {
            Format::Zip => zip::index(reader, &limits),
            Format::Tar => tar::index_plain(reader, &limits),
            Format::TarGz => tar::index_stream(gz::Scanner::new(reader, &limits), format, &limits),
            Format::TarZst => tar::index_stream(zst::Scanner::new(reader, &limits), format, &limits),
        }
    })
    .await
    .map_err(|e| Error::Io(io::Error::other(e)))?;
    drop(guard);
    result
}

/// Sets the flag when the future holding it is dropped, so blocking work started for a
/// request that went away stops too.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// The whole of a (small) range, collected.
pub(crate) async fn read_all(source: &dyn Source, range: Range<u64>) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity((range.end - range.start).min(1 << 20) as usize);
    let mut s = source.read(range).await?;
    while let Some(chunk) = s.next().await {
        out.extend_from_slice(&chunk?);
    }
    Ok(out)
}

/// Blocking `Read + Seek` over a [`Source`], for parsers and decompressors on the blocking
/// pool. Sequential reads keep one range stream open; a seek drops it and the next read
/// opens another at the new place.
pub(crate) struct SourceReader {
    source: Arc<dyn Source>,
    rt: tokio::runtime::Handle,
    cancel: Option<Arc<AtomicBool>>,
    pos: u64,
    buf: Bytes,
    stream: Option<ByteStream>,
}

impl SourceReader {
    pub(crate) fn new(source: Arc<dyn Source>, rt: tokio::runtime::Handle, cancel: Option<Arc<AtomicBool>>) -> Self {
        SourceReader { source, rt, cancel, pos: 0, buf: Bytes::new(), stream: None }
    }

    pub(crate) fn size(&self) -> u64 {
        self.source.size()
    }

    pub(crate) fn position(&self) -> u64 {
        self.pos
    }

    fn cancelled(&self) -> bool {
        self.cancel.as_ref().is_some_and(|c| c.load(Ordering::Relaxed))
    }

    fn fill(&mut self) -> io::Result<()> {
        if self.cancelled() {
            // Not `Interrupted`: `read_exact` and `io::copy` retry on that kind.
            return Err(io::Error::other("cancelled"));
        }
        let size = self.source.size();
        if self.pos >= size {
            return Ok(());
        }
        if self.stream.is_none() {
            let (source, range) = (self.source.clone(), self.pos..size);
            let s = self.rt.block_on(async move { source.read(range).await }).map_err(into_io)?;
            self.stream = Some(s);
        }
        let Some(stream) = self.stream.as_mut() else { return Ok(()) };
        match self.rt.block_on(stream.next()) {
            Some(chunk) => self.buf = chunk?,
            None => {
                self.stream = None;
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "archive shorter than its size"));
            }
        }
        Ok(())
    }
}

impl io::Read for SourceReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.buf.is_empty() {
            self.fill()?;
        }
        let n = self.buf.len().min(out.len());
        out[..n].copy_from_slice(&self.buf[..n]);
        bytes::Buf::advance(&mut self.buf, n);
        self.pos += n as u64;
        Ok(n)
    }
}

impl io::Seek for SourceReader {
    fn seek(&mut self, to: io::SeekFrom) -> io::Result<u64> {
        let size = self.source.size() as i128;
        let target = match to {
            io::SeekFrom::Start(n) => n as i128,
            io::SeekFrom::End(d) => size + d as i128,
            io::SeekFrom::Current(d) => self.pos as i128 + d as i128,
        };
        if target < 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "seek before the start"));
        }
        let target = target as u64;
        let ahead = target.wrapping_sub(self.pos);
        if target >= self.pos && ahead <= self.buf.len() as u64 {
            bytes::Buf::advance(&mut self.buf, ahead as usize);
        } else {
            self.buf = Bytes::new();
            self.stream = None;
        }
        self.pos = target;
        Ok(target)
    }
}

pub(crate) fn into_io(e: Error) -> io::Error {
    match e {
        Error::Io(e) | Error::Body(e) => e,
        other => io::Error::other(other.to_string()),
    }
}

/// The sending end of a member being read out on the blocking pool.
pub(crate) struct Sink(tokio::sync::mpsc::Sender<io::Result<Bytes>>);

impl Sink {
    /// Fails once the reader is gone (the client left): the work then stops.
    pub(crate) fn send(&self, chunk: Bytes) -> io::Result<()> {
        self.0.blocking_send(Ok(chunk)).map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "reader gone"))
    }
}

/// Runs `work` on the blocking pool, streaming what it sends; an error it returns ends the
/// stream with that error (the client sees a cut body, never a wrong one).
pub(crate) fn spawn_stream(work: impl FnOnce(&Sink) -> io::Result<()> + Send + 'static) -> ByteStream {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<io::Result<Bytes>>(4);
    tokio::task::spawn_blocking(move || {
        let sink = Sink(tx);
        if let Err(e) = work(&sink) {
            let _ = sink.0.blocking_send(Err(e));
        }
    });
    Box::pin(futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)))
}

/// An error found in an archive's own bytes, as an I/O error a `Read` can return.
pub(crate) fn corrupt(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// An archive over one of the [`Limits`]: refused whole, never listed in part (unlike
/// damage, which spares the members before it).
pub(crate) fn over_limit(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, OverLimit(msg.into()))
}

pub(crate) fn is_over_limit(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<OverLimit>())
}

#[derive(Debug)]
struct OverLimit(String);

impl std::fmt::Display for OverLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for OverLimit {}

/// Turns what a parser or decompressor failed with into the crate's error: damage to the
/// archive is [`Error::Archive`], anything else (the source failing) stays what it was.
pub(crate) fn archive_error(e: io::Error) -> Error {
    match e.kind() {
        io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof => Error::Archive(e.to_string()),
        _ => Error::Io(e),
    }
}
