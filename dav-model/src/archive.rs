//! Archives opened as read-only folders: `…/photos.zip!/2019/a.jpg` is member
//! `2019/a.jpg` of the file `…/photos.zip`, on any tree (the native store, a host folder).
//!
//! A segment `NAME!` where `NAME` has an archive's extension (`wharf_backends::archive::
//! Format::from_name`) and no entry `NAME!` exists opens the file `NAME` as a mount of an
//! `ArchiveTree`, made on the spot: everything else (listings, reads, ranges, conditions,
//! ETags, refusals of writes) is the mounted-tree code the host folders use. Ordinary
//! listings never show `NAME!`, so sync clients see archives as the plain files they are.
//!
//! The index of an archive is made once (`build_index`: a read of the central directory
//! of a zip, a walk of a tar, a full decompression of a compressed tar recording restart
//! points) and kept at three levels: the catalogs in memory, the `archive_indexes` table,
//! and a build shared by every request that arrives while it runs. Keys name the bytes,
//! not the path (a blob's content id; a host file's identity, size and times), so no
//! entry can go stale; unused rows are dropped once the table is over its size.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, Weak};

use wharf_backends::archive::{build_index, ArchiveTree, Catalog, Format, Index, Source};
use wharf_backends::{BlobId, BlobStore, ByteStream, Kind, Meta};

use crate::mount::{At, MountInfo, Mounted};
use crate::path::DavPath;
use crate::{Error, Repository, Result};

/// What `mounts.kind`-like listings call an archive view.
pub const ARCHIVE: &str = "archive";

/// Catalogs kept in memory; each holds its archive's member list.
const CACHED_CATALOGS: usize = 64;
/// Bytes of stored indexes kept in the database before the least recently used go.
const STORED_BYTES: i64 = 512 << 20;

/// The archive a stored path opens, if it opens one: the archive file's path, the path of
/// the archive as a folder (`…/NAME!`), and the names below it.
pub(crate) fn split(stored: &DavPath) -> Option<(DavPath, DavPath, Vec<String>)> {
    let segs = stored.segments();
    let i = segs.iter().position(|s| s.strip_suffix('!').is_some_and(|n| Format::from_name(n).is_some()))?;
    let file = DavPath::from_segments(segs[..i].iter().cloned().chain([segs[i][..segs[i].len() - 1].into()]));
    let root = DavPath::from_segments(segs[..=i].iter().cloned());
    Some((file, root, segs[i + 1..].iter().map(|s| s.to_string()).collect()))
}

/// The archive indexes this process knows: catalogs in memory and builds under way.
#[derive(Default)]
pub(crate) struct Archives {
    cached: Mutex<HashMap<String, (u64, Cached)>>,
    tick: std::sync::atomic::AtomicU64,
    building: Mutex<HashMap<String, Weak<Building>>>,
    built: std::sync::atomic::AtomicU64,
    loaded: std::sync::atomic::AtomicU64,
}

/// A catalog, or why the archive can't be read (damage is a property of the bytes, so a
/// refusal is remembered as well as a success; a failed read of the source is not).
type Cached = std::result::Result<Arc<Catalog>, String>;

/// One build of an index, shared by the requests waiting for it.
#[derive(Default)]
struct Building {
    done: tokio::sync::OnceCell<std::result::Result<Cached, String>>,
}

impl Archives {
    pub(crate) fn stats(&self) -> crate::ArchiveStats {
        use std::sync::atomic::Ordering::Relaxed;
        crate::ArchiveStats { built: self.built.load(Relaxed), loaded: self.loaded.load(Relaxed) }
    }

    fn get(&self, key: &str) -> Option<Cached> {
        let tick = self.tick.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut cached = self.cached.lock().unwrap_or_else(|e| e.into_inner());
        let (used, hit) = cached.get_mut(key)?;
        *used = tick;
        Some(hit.clone())
    }

    fn put(&self, key: &str, value: Cached) {
        let tick = self.tick.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut cached = self.cached.lock().unwrap_or_else(|e| e.into_inner());
        if cached.len() >= CACHED_CATALOGS {
            if let Some(oldest) = cached.iter().min_by_key(|(_, (used, _))| *used).map(|(k, _)| k.clone()) {
                cached.remove(&oldest);
            }
        }
        cached.insert(key.to_owned(), (tick, value));
    }

    /// The build of `key` under way, joined, or a new one.
    fn building(&self, key: &str) -> Arc<Building> {
        let mut map = self.building.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, b| b.strong_count() > 0);
        if let Some(b) = map.get(key).and_then(Weak::upgrade) {
            return b;
        }
        let b = Arc::new(Building::default());
        map.insert(key.to_owned(), Arc::downgrade(&b));
        b
    }
}

impl At {
    /// Refuses a write (or a lock, or a property change) inside an archive, before it is
    /// tried: a MOVE out of one would otherwise copy everything and then fail to delete.
    pub(crate) fn refuse_archive_writes(&self) -> Result<()> {
        if self.mount.info.kind == ARCHIVE {
            return Err(wharf_backends::Error::ArchiveReadOnly.into());
        }
        Ok(())
    }
}

/// An archive file as opened for one request: where its bytes come from, and what names
/// them.
struct Opened {
    source: Arc<dyn Source>,
    key: String,
    modified_ns: i64,
}

impl Repository {
    /// The mount a path inside an archive resolves to (see the module comment), or `None`
    /// if there is no such file (then `NAME!` is an ordinary name).
    pub(crate) async fn archive_at(&self, file: DavPath, root: DavPath, rel: Vec<String>) -> Result<Option<At>> {
        let Some(opened) = self.open_archive(&file).await? else { return Ok(None) };
        self.archive_view(opened, root, rel).await.map(Some)
    }

    /// The mount of an opened archive, at `root`.
    async fn archive_view(&self, opened: Opened, root: DavPath, rel: Vec<String>) -> Result<At> {
        let file = opened.key.clone();
        let catalog = self.catalog(&opened).await?;
        let tree = ArchiveTree::new(opened.source.clone(), catalog);
        let info = MountInfo {
            stored: root,
            kind: ARCHIVE.into(),
            source: file.to_string(),
            read_only: true,
            quota_bytes: None,
        };
        // Negative, so never a configured mount's id: dead properties (keyed by mount id)
        // can't be found here, and two archives are never "the same mount".
        let hash = blake3::hash(opened.key.as_bytes());
        let id = -(i64::from_le_bytes(hash.as_bytes()[..8].try_into().unwrap_or_default()) & i64::MAX) - 1;
        let mount = Mounted { id, info, tree: Ok(Arc::new(tree)), used: Default::default() };
        Ok(At { mount: Arc::new(mount), rel })
    }

    /// A share of an archive file (`wharf share add NAME --archive FILE`): its mount serves
    /// the file's folder, read-only, and the file opens as above.
    pub(crate) async fn archive_share_at(&self, share: At) -> Result<At> {
        let unavailable = || Error::Internal(format!("the archive {} is unavailable", share.mount.info.source));
        let name = std::path::Path::new(&share.mount.info.source).file_name().and_then(|n| n.to_str());
        let name: String = unicode_normalization::UnicodeNormalization::nfc(name.ok_or_else(unavailable)?).collect();
        let file = At { mount: share.mount.clone(), rel: vec![name] };
        let opened = self.open_tree_file(file).await?.ok_or_else(unavailable)?;
        self.archive_view(opened, share.mount.info.stored.clone(), share.rel).await
    }

    /// A file of a mounted tree, as an archive's source.
    async fn open_tree_file(&self, at: At) -> Result<Option<Opened>> {
        let Some(meta) = at.tree()?.stat(&at.rel).await?.filter(|m| m.kind == Kind::File) else { return Ok(None) };
        let key = format!("host:{}:{}", at.mount.id, meta.version());
        let modified_ns = meta.modified_ns;
        let source = Arc::new(TreeSource { at, meta });
        Ok(Some(Opened { source, key, modified_ns }))
    }

    /// The archive file at `file`: a file of a mounted tree, or of the native store.
    async fn open_archive(&self, file: &DavPath) -> Result<Option<Opened>> {
        if let Some(at) = self.mount_of(file) {
            return self.open_tree_file(at).await;
        }
        let Some(r) = Box::pin(self.resolve(file)).await?.filter(|r| !r.is_collection) else { return Ok(None) };
        let Some(id) = r.blob.clone() else {
            return Err(Error::Unprocessable("an empty file is not an archive".into()));
        };
        let key = format!("blob:{id}");
        let source: Arc<dyn Source> = if r.size <= crate::inline::INLINE_CAP {
            Arc::new(MemorySource(self.small_content(&id).await?))
        } else {
            Arc::new(BlobSource { blobs: self.blobs.clone(), id, size: r.size })
        };
        Ok(Some(Opened { source, key, modified_ns: r.modified_ns }))
    }

    /// The catalog of an opened archive: from memory, from the database, or built (once,
    /// however many requests ask meanwhile).
    async fn catalog(&self, opened: &Opened) -> Result<Arc<Catalog>> {
        if let Some(hit) = self.archives.get(&opened.key) {
            return hit.map_err(Error::Unprocessable);
        }
        let building = self.archives.building(&opened.key);
        let done = building.done.get_or_init(|| self.load_or_build(opened)).await.clone();
        match done {
            Ok(cached) => {
                self.archives.put(&opened.key, cached.clone());
                cached.map_err(Error::Unprocessable)
            }
            Err(why) => Err(Error::Internal(why)),
        }
    }

    async fn load_or_build(&self, opened: &Opened) -> std::result::Result<Cached, String> {
        let index = match self.stored_index(&opened.key).await {
            Ok(Some(index)) => {
                self.archives.loaded.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                index
            }
            _ => {
                let cancel = Arc::new(AtomicBool::new(false));
                let built = build_index(opened.source.clone(), self.config.archive_limits, cancel).await;
                self.archives.built.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                match built {
                    Ok(index) => {
                        if let Err(e) = self.store_index(&opened.key, &index).await {
                            tracing::warn!(key = opened.key, error = %e, "archive index not stored");
                        }
                        index
                    }
                    Err(wharf_backends::Error::Archive(why)) => return Ok(Err(why)),
                    Err(e) => return Err(format!("the archive could not be read: {e}")),
                }
            }
        };
        // Laying out a large index takes a while: not on an async worker.
        let (key, modified_ns) = (opened.key.clone(), opened.modified_ns);
        let catalog = tokio::task::spawn_blocking(move || Catalog::new(Arc::new(index), &key, modified_ns));
        Ok(Ok(Arc::new(catalog.await.map_err(|e| e.to_string())?)))
    }

    async fn stored_index(&self, key: &str) -> Result<Option<Index>> {
        let row: Option<(Vec<u8>,)> = crate::db::query_as("SELECT data FROM archive_indexes WHERE key = ?")
            .bind(key)
            .fetch_optional(&self.read)
            .await?;
        let Some((data,)) = row else { return Ok(None) };
        let index = tokio::task::spawn_blocking(move || Index::decode(&data))
            .await
            .map_err(|e| Error::Internal(e.to_string()))??;
        crate::db::query("UPDATE archive_indexes SET used_ns = ? WHERE key = ?")
            .bind(crate::now_ns())
            .bind(key)
            .execute(&self.write)
            .await?;
        Ok(Some(index))
    }

    /// Stores an index, then drops the least recently used ones past the table's size.
    async fn store_index(&self, key: &str, index: &Index) -> Result<()> {
        let mut tx = self.write.begin().await?;
        crate::db::query(
            "INSERT INTO archive_indexes (key, data, used_ns) VALUES (?, ?, ?) \
             ON CONFLICT (key) DO UPDATE SET data = excluded.data, used_ns = excluded.used_ns",
        )
        .bind(key)
        .bind(index.encode())
        .bind(crate::now_ns())
        .execute(&mut tx)
        .await?;
        crate::db::query(
            "DELETE FROM archive_indexes WHERE key IN (SELECT key FROM (SELECT key, SUM(length(data)) \
             OVER (ORDER BY used_ns DESC) AS running FROM archive_indexes) AS ranked WHERE running > ?)",
        )
        .bind(STORED_BYTES)
        .execute(&mut tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// A file of a mounted tree, read only as long as it is the version the index was made of.
struct TreeSource {
    at: At,
    meta: Meta,
}

#[async_trait::async_trait]
impl Source for TreeSource {
    fn size(&self) -> u64 {
        self.meta.size
    }

    async fn read(&self, range: Range<u64>) -> wharf_backends::Result<ByteStream> {
        let tree = self.at.tree().map_err(|e| wharf_backends::Error::Io(std::io::Error::other(e.to_string())))?;
        let (now, stream) = tree.read(&self.at.rel, Some(range)).await?;
        if now.version() != self.meta.version() {
            return Err(wharf_backends::Error::Archive("the archive changed while it was being read".into()));
        }
        Ok(stream)
    }
}

/// A blob of the native store: content addressed, so always the bytes the index names.
struct BlobSource {
    blobs: Arc<dyn BlobStore>,
    id: BlobId,
    size: u64,
}

#[async_trait::async_trait]
impl Source for BlobSource {
    fn size(&self) -> u64 {
        self.size
    }

    async fn read(&self, range: Range<u64>) -> wharf_backends::Result<ByteStream> {
        self.blobs.open(&self.id, Some(range)).await
    }
}

/// A small archive kept inline in the database, read whole once.
struct MemorySource(bytes::Bytes);

#[async_trait::async_trait]
impl Source for MemorySource {
    fn size(&self) -> u64 {
        self.0.len() as u64
    }

    async fn read(&self, range: Range<u64>) -> wharf_backends::Result<ByteStream> {
        let end = range.end.min(self.size());
        let part = self.0.slice(range.start.min(end) as usize..end as usize);
        Ok(Box::pin(futures_util::stream::once(async move { Ok(part) })))
    }
}
