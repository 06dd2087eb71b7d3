//! Where names and bytes live. A blob store keeps immutable byte strings under the hash of
//! their content; a [`Tree`] is a foreign hierarchy of names and bytes (a host folder).
//! Properties, locks, users and protocols live in `dav-model`, never here.
//!
//! Writing is two-phase ([`BlobStore::stage`] then [`BlobStore::commit`]) so that the model
//! can hold its garbage-collection guard only for the short moment between "the blob file
//! appears under its id" and "the database row that references it commits", never for the
//! whole (possibly long) upload.

use std::ops::Range;
use std::pin::Pin;

use bytes::Bytes;

pub mod archive;
mod chunk;
mod host;
mod intake;
mod local;
mod memory;
mod s3;
mod span;
pub mod tree;

pub use host::{HostOptions, HostTree};
pub use local::{LocalStore, Taken};
pub use memory::MemoryStore;
pub use s3::{S3Options, S3Store};
pub use span::{file_span, ByteSource, FileSpan};
pub use tree::{Caps, DirEntry, Install, Installed, Kind, Meta, NodeId, StageOptions, Tree, TreeStaged};

/// A stream of body chunks, as both HTTP and FTP adapters can produce one. Any `Stream` of
/// chunks coerces to it; a large file read may also be taken whole as a [`FileSpan`].
pub type ByteStream = Pin<Box<dyn ByteSource>>;

/// Content id: lowercase hex of the BLAKE3 hash of the bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlobId(pub String);

impl BlobId {
    /// Accepts only 64 lowercase hex digits, so an id can never name a path outside the store.
    pub fn parse(s: &str) -> Option<BlobId> {
        Self::valid(s).then(|| BlobId(s.to_owned()))
    }

    /// [`BlobId::parse`] keeping the text it was given (a listing reads one per file).
    pub fn parse_owned(s: String) -> Option<BlobId> {
        Self::valid(&s).then_some(BlobId(s))
    }

    fn valid(s: &str) -> bool {
        // Every byte checked without an early exit, which the compiler turns into a few
        // vector instructions: a listing checks one id per file.
        s.len() == 64 && s.bytes().fold(true, |ok, b| ok & ((b.wrapping_sub(b'0') < 10) | (b.wrapping_sub(b'a') < 6)))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for BlobId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// How hard the store tries to keep acknowledged data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Survives the process being killed (data is in the OS page cache before we answer).
    #[default]
    Process,
    /// Also survives power loss: blob files and their directory are fsynced before commit.
    Full,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("blob {0} not found")]
    NotFound(BlobId),
    #[error("body larger than the limit of {0} bytes")]
    TooLarge(u64),
    /// The body stream itself failed (the client went away): nothing was stored.
    #[error("body stream failed: {0}")]
    Body(std::io::Error),
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// A tree has nothing under that name (or a parent on the way is missing).
    #[error("no such file or directory")]
    Missing,
    #[error("the name is taken")]
    Exists,
    /// A parent on the way is a file, or a directory was found where a file was needed.
    #[error("not a directory")]
    NotADirectory,
    #[error("is a directory")]
    IsADirectory,
    /// The path would leave the tree (a link pointing out), or names something the tree
    /// keeps for itself (its temporary files).
    #[error("outside the tree")]
    Escapes,
    /// A FIFO, socket or device node: never opened.
    #[error("not a regular file or directory")]
    Special,
    #[error("the tree is read-only")]
    ReadOnly,
    /// A write into an archive opened as a folder.
    #[error("an archive opened as a folder is read-only")]
    ArchiveReadOnly,
    /// An optional capability this tree lacks (see `tree::Caps`).
    #[error("{0} is not supported by this tree")]
    Unsupported(&'static str),
    /// A rename between file systems: the caller copies instead.
    #[error("crosses file systems")]
    CrossDevice,
    #[error("no space left")]
    NoSpace,
    /// The host's own permissions refuse Wharf's process.
    #[error("permission denied by the file system")]
    Denied,
    /// A directory removed only when empty still holds something.
    #[error("not empty")]
    NotEmpty,
    /// A name (or path) longer than the tree's file system allows.
    #[error("name too long")]
    NameTooLong,
    /// An archive that can't be read as one (damaged, cut short, unsupported) or that a
    /// limit refuses (too many members, a compression ratio over the cap).
    #[error("{0}")]
    Archive(String),
}

pub type Result<T> = std::result::Result<T, Error>;

/// Caller mistakes (a reversed range, a `Staged` from another kind of store) are reported as
/// I/O errors so that the public error type stays as small as the model needs.
pub(crate) fn invalid_input(msg: impl Into<String>) -> Error {
    Error::Io(std::io::Error::new(std::io::ErrorKind::InvalidInput, msg.into()))
}

/// Bytes received and hashed but not yet visible under their id. Dropping it without
/// committing discards the bytes (an interrupted upload leaves nothing behind).
pub struct Staged {
    pub id: BlobId,
    pub size: u64,
    /// Store-specific handle (a temp file path, or the bytes in memory).
    pub(crate) inner: StagedInner,
}

impl Staged {
    /// The whole body, when the store kept it in memory rather than in a temp file (a
    /// small body that arrived in one go): the model can then keep it inline in its
    /// database and drop this without committing.
    pub fn in_memory(&self) -> Option<&Bytes> {
        match &self.inner {
            StagedInner::Buffered(b) | StagedInner::Memory(b) => Some(b),
            StagedInner::File(_) | StagedInner::S3(_) => None,
        }
    }
}

pub(crate) enum StagedInner {
    /// A local store's temp file, renamed into place by commit.
    File(Option<tempfile_path::TempPath>),
    /// A local store's small body, written and renamed into place by commit in one go.
    Buffered(Bytes),
    /// A memory store's bytes.
    Memory(Bytes),
    /// An S3 store's completed upload under `tmp/`, copied under its id by commit.
    S3(s3::Pending),
}

pub(crate) mod tempfile_path {
    /// A temp file removed on drop unless it has been persisted (renamed into place).
    pub struct TempPath(pub std::path::PathBuf);
    impl TempPath {
        /// Called once the file has been renamed away, so that dropping the guard cannot
        /// remove whatever might later appear under the old name.
        pub fn disarm(mut self) {
            self.0 = std::path::PathBuf::new();
            std::mem::forget(self);
        }
    }
    impl Drop for TempPath {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

#[async_trait::async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// Takes in `body` while hashing it: into temporary storage, or (a small body) into
    /// memory. `limit` caps the size.
    async fn stage(&self, body: ByteStream, limit: Option<u64>) -> Result<Staged>;
    /// Makes staged bytes readable under their id. Idempotent: identical content already
    /// present is kept once.
    async fn commit(&self, staged: Staged) -> Result<BlobId>;
    /// Streams a blob, or the byte range `range` of it.
    async fn open(&self, id: &BlobId, range: Option<Range<u64>>) -> Result<ByteStream>;
    /// Removes a blob and returns the bytes it held (0 if it was missing, which is not an
    /// error), so the garbage collector can report what it freed.
    async fn delete(&self, id: &BlobId) -> Result<u64>;
    /// All ids present, for fsck.
    async fn list(&self) -> Result<Vec<BlobId>>;
    /// The ids no upload in flight can still be committing, for the sweep that deletes
    /// blobs no row knows about. In a store only this process writes, all of them (the
    /// sweep runs before the first upload); in one that servers share, those older than the
    /// store's grace period.
    async fn list_settled(&self) -> Result<Vec<BlobId>> {
        self.list().await
    }
    /// Removes what interrupted uploads left in the store itself, where a crash can leave
    /// something no drop cleaned up. Returns how many leftovers went.
    async fn sweep_leftovers(&self) -> Result<u64> {
        Ok(0)
    }
    /// Proves the store still takes new bytes, for readiness checks: a store on disk writes
    /// and removes a file where uploads are staged. One with nothing to check says yes.
    async fn probe(&self) -> Result<()> {
        Ok(())
    }

    /// Stage and commit in one go, for callers that need no GC guard (tests, tools).
    async fn put(&self, body: ByteStream, limit: Option<u64>) -> Result<(BlobId, u64)> {
        let staged = self.stage(body, limit).await?;
        let size = staged.size;
        Ok((self.commit(staged).await?, size))
    }

    /// Takes a blob out of the store to where an operator can still look at it: fsck does
    /// this with bytes that no longer match their id, which may be the only copy of
    /// something a user had. Returns where it went; a store without such a place deletes
    /// the blob and returns `None`.
    async fn quarantine(&self, id: &BlobId) -> Result<Option<std::path::PathBuf>> {
        self.delete(id).await.map(|_| None)
    }
}

#[cfg(test)]
mod tests {
    use super::BlobId;

    #[test]
    fn a_blob_id_is_64_lowercase_hex_digits_and_nothing_else() {
        let hex = "0123456789abcdef".repeat(4);
        assert!(BlobId::parse(&hex).is_some());
        assert!(BlobId::parse(&hex[..63]).is_none());
        assert!(BlobId::parse(&format!("{hex}0")).is_none());
        // The bytes either side of each range, and a path's.
        for bad in ['/', ':', '`', 'g', 'A', 'F', '.', '\0'] {
            let id: String = hex.chars().take(63).chain([bad]).collect();
            assert!(BlobId::parse(&id).is_none(), "{bad:?}");
            let id: String = [bad].into_iter().chain(hex.chars().skip(1)).collect();
            assert!(BlobId::parse_owned(id).is_none(), "{bad:?} first");
        }
    }
}
