//! Trees: a hierarchy of names and bytes that lives outside Wharf's own store (a folder of
//! the host today; archives and object stores are further implementations). A tree knows
//! nothing of properties, locks, users or protocols: the model keeps those above it, the
//! same on every tree.
//!
//! The trait is small on purpose, in the spirit of libunftp's `StorageBackend`: the few
//! operations every tree has, and optional capabilities ([`Caps`]) whose default methods
//! answer [`Error::Unsupported`]. The model falls back to what every tree can do (copy,
//! then delete) where a capability is missing, so a new kind of tree is a new
//! implementation, never a branch in the callers.
//!
//! Paths are slices of names as the model spells them: valid UTF-8 in NFC. A tree maps
//! them to whatever its storage uses (see `host::names` for a host folder's bytes) and
//! back, one to one, so that every stored name is reachable and no two collide.

use std::ops::Range;

use crate::{ByteStream, Result};

#[allow(unused_imports)] // for the docs
use crate::Error;

/// What a name refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    /// A FIFO, socket or device node: listed by nobody, never opened (a FIFO would hang
    /// the reader).
    Special,
}

/// The identity of a stored object: the same for as long as the object exists (renames
/// included), different for an object that replaced it under the same name. The model
/// keys dead properties by it, so a file replaced by another program never inherits the
/// properties of the one it replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NodeId {
    pub dev: u64,
    pub ino: u64,
    /// Birth time where the file system records one (0 otherwise): inode numbers are
    /// reused quickly, birth times are not.
    pub birth_ns: i64,
}

impl NodeId {
    /// A compact text form, stored in the database beside dead properties.
    pub fn key(&self) -> String {
        format!("{:x}:{:x}:{:x}", self.dev, self.ino, self.birth_ns)
    }
}

/// What a tree knows about one name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    pub kind: Kind,
    pub size: u64,
    pub modified_ns: i64,
    /// Birth time where recorded, else the modification time.
    pub created_ns: i64,
    /// The last change of content or metadata (ctime): part of the version, so that
    /// content rewritten under a restored modification time still gets a new ETag.
    pub changed_ns: i64,
    pub node: NodeId,
}

/// Lowercase hex digits, as `blake3::Hash::to_hex` wrote them, for the ETags it made.
const HEX: &[u8; 16] = b"0123456789abcdef";

impl Meta {
    /// A strong validator: changes whenever the content can have changed (another
    /// object, another size, another modification or change time).
    pub fn version(&self) -> String {
        // One hash of the six fields in a row (what feeding them one by one hashed), and
        // hex of the 12 bytes shown: a listing computes one per member.
        let mut input = [0u8; 48];
        let fields = [self.node.dev, self.node.ino, self.size]
            .map(u64::to_le_bytes)
            .into_iter()
            .chain([self.node.birth_ns, self.modified_ns, self.changed_ns].map(i64::to_le_bytes));
        for (slot, bytes) in input.chunks_exact_mut(8).zip(fields) {
            slot.copy_from_slice(&bytes);
        }
        let hash = blake3::hash(&input);
        let mut tag = String::with_capacity(27);
        tag.push_str("\"h");
        for b in &hash.as_bytes()[..12] {
            tag.push(char::from(HEX[usize::from(b >> 4)]));
            tag.push(char::from(HEX[usize::from(b & 15)]));
        }
        tag.push('"');
        tag
    }

    pub fn is_dir(&self) -> bool {
        self.kind == Kind::Dir
    }
}

/// One member of a directory listing.
#[derive(Debug, Clone)]
pub struct DirEntry {
    /// The member's name as the model spells it (NFC, see the module comment).
    pub name: String,
    pub meta: Meta,
}

/// Optional capabilities. Everything else a tree must do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Caps {
    /// [`Tree::rename`]: an atomic move within the tree.
    pub rename: bool,
    /// [`Tree::copy`]: a server-side copy (clone or in-kernel copy on a host).
    pub copy: bool,
    /// [`Tree::set_modified`].
    pub set_times: bool,
    /// [`Install::Replace`] swaps content atomically (readers see old or new, never a mix).
    pub atomic_replace: bool,
    /// [`Install::CreateNew`] and `rename` without replace are atomic (no check-then-act).
    pub no_replace: bool,
    /// The tree refuses every write.
    pub read_only: bool,
}

/// How [`Tree::install`] treats an existing name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Install {
    /// Replace an existing file (never a directory).
    Replace,
    /// Fail with [`Error::Exists`] if the name exists, atomically.
    CreateNew,
}

/// What [`Tree::install`] did.
#[derive(Debug, Clone)]
pub struct Installed {
    /// The new file.
    pub meta: Meta,
    /// The file it replaced, if any (seen in the same step as the replacement, so a
    /// caller needs no look-up of its own beforehand).
    pub replaced: Option<Meta>,
}

/// Options of [`Tree::stage`].
#[derive(Debug, Clone, Copy, Default)]
pub struct StageOptions {
    /// Largest body accepted ([`Error::TooLarge`] beyond it).
    pub limit: Option<u64>,
    /// The modification time the new content gets, instead of the time it was written.
    pub modified_ns: Option<i64>,
}

/// A body received but not yet visible under its name. Dropping it discards the bytes.
pub struct TreeStaged {
    pub size: u64,
    /// The implementation's handle (for a host folder: the temp file and its directory).
    pub inner: Box<dyn std::any::Any + Send + Sync>,
}

#[async_trait::async_trait]
pub trait Tree: Send + Sync + 'static {
    fn caps(&self) -> Caps;

    /// What `path` names, or `None`. A symbolic link that leaves the tree, dangles or
    /// loops is reported as absent; it is never followed out of the tree.
    async fn stat(&self, path: &[String]) -> Result<Option<Meta>>;

    /// The members of directory `dir`, in no particular order, in one pass. Members that
    /// can't be shown (links leaving the tree, dangling or looping, names that can't be
    /// represented, the tree's own temporary files) are left out, with a log line.
    async fn list(&self, dir: &[String]) -> Result<Vec<DirEntry>>;

    /// Streams the file at `path`, or the byte range `range` of it, as it is now; also
    /// returns its metadata as opened, so the caller can tell whether it is still the
    /// version it decided on. The stream never yields more than the returned size (or the
    /// range) even if the file grows meanwhile. Directories and special files are refused.
    async fn read(&self, path: &[String], range: Option<Range<u64>>) -> Result<(Meta, ByteStream)>;

    /// Takes in a body for `path` without making it visible: into a temporary file beside
    /// the target on a host, so that [`Tree::install`] is one atomic rename.
    async fn stage(&self, path: &[String], body: ByteStream, opts: StageOptions) -> Result<TreeStaged>;

    /// Makes a staged body visible at `path` (which must be the path it was staged for)
    /// and returns the new file's metadata and the replaced one's.
    async fn install(&self, staged: TreeStaged, path: &[String], how: Install) -> Result<Installed>;

    /// Creates directory `path`: [`Error::Exists`] if the name is taken, [`Error::Missing`]
    /// if the parent is missing.
    async fn create_dir(&self, path: &[String]) -> Result<Meta>;

    /// Removes a file, or a directory with everything below it. Links are removed, never
    /// followed.
    async fn remove(&self, path: &[String]) -> Result<()>;

    /// Removes directory `path` only if nothing at all is in it ([`Error::NotEmpty`]
    /// otherwise): what a MOVE to another tree does once it moved every member it saw,
    /// so that nothing it could not see (or that arrived meanwhile) goes with it.
    async fn remove_empty_dir(&self, path: &[String]) -> Result<()>;

    /// Bytes that can still be written.
    async fn available(&self) -> Result<u64>;

    /// Bytes the files below `dir` hold (a walk; for quota reports).
    async fn used(&self, dir: &[String]) -> Result<u64>;

    /// Moves `from` to `to` atomically. Without `replace`, fails with [`Error::Exists`]
    /// if `to` exists, atomically; with it, replaces a file at `to` (not a directory).
    async fn rename(&self, _from: &[String], _to: &[String], _replace: bool) -> Result<()> {
        Err(crate::Error::Unsupported("rename"))
    }

    /// Copies a file or a whole directory to `to`, which must not exist. Links are copied
    /// as links.
    async fn copy(&self, _from: &[String], _to: &[String]) -> Result<()> {
        Err(crate::Error::Unsupported("copy"))
    }

    /// Sets the modification time of `path`.
    async fn set_modified(&self, _path: &[String], _modified_ns: i64) -> Result<Meta> {
        Err(crate::Error::Unsupported("set times"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> Meta {
        Meta {
            kind: Kind::File,
            size: 4096,
            modified_ns: 1_764_000_000_123_456_789,
            created_ns: 1_764_000_000_000_000_000,
            changed_ns: 1_764_000_001_000_000_000,
            node: NodeId { dev: 2049, ino: 1_234_567, birth_ns: 1_764_000_000_000_000_000 },
        }
    }

    /// Clients keep ETags across restarts and upgrades: the same file must keep its own.
    #[test]
    fn a_version_is_the_same_from_release_to_release() {
        assert_eq!(meta().version(), "\"h0484d945877f9739e24b5d34\"");
    }
}
