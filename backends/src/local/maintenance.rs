//! What the operator tools need of a local store besides serving: moving bytes that no
//! longer match their id out of the way (`wharf fsck --repair`), and making a blob of one
//! store present in another (`wharf backup`, `wharf restore`).
//!
//! Blobs are immutable files named by the hash of their bytes, so a hard link shares them
//! safely between stores: nothing ever writes into a blob file, a "delete" only removes one
//! name, and a commit of identical bytes renames a new file over the name.

use std::io;
use std::path::{Path, PathBuf};

use super::{blocking, sync_dir, LocalStore};
use crate::{BlobId, Error, Result};

/// How a blob came to be present in a store by [`LocalStore::take_from`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taken {
    /// It was there already.
    Present,
    /// Hard-linked: the two stores share the file.
    Linked,
    /// Copied, because the file system refused a link (another file system, or one
    /// without hard links).
    Copied,
}

impl LocalStore {
    /// The folder beside `blobs/` and `tmp/` where blobs moved aside by an operator tool
    /// wait to be looked at. Nothing lists or sweeps it.
    pub fn lost_and_found(&self) -> PathBuf {
        self.tmp.with_file_name("lost+found")
    }

    /// Moves a blob file into [`LocalStore::lost_and_found`] (as `<id>`, or `<id>.N` when
    /// an earlier one is there), and returns where it went; `None` if it was missing.
    pub(super) async fn move_aside(&self, id: &BlobId) -> Result<Option<PathBuf>> {
        let (from, dir, name) = (self.blob_path(id), self.lost_and_found(), id.as_str().to_owned());
        Ok(blocking(move || {
            std::fs::create_dir_all(&dir)?;
            let mut to = dir.join(&name);
            for n in 1.. {
                if !to.try_exists()? {
                    break;
                }
                to = dir.join(format!("{name}.{n}"));
            }
            match std::fs::rename(&from, &to) {
                Ok(()) => Ok(Some(to)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e),
            }
        })
        .await?)
    }

    /// Makes `id`, a blob of `source`, present in this store: a hard link where the file
    /// system allows one, a copy otherwise. A blob `source` no longer has (collected since
    /// the caller learnt of it) is [`Error::NotFound`]. A copy is written to `tmp/` and
    /// renamed into place, so a cut copy never shows under the id.
    pub async fn take_from(&self, source: &LocalStore, id: &BlobId) -> Result<Taken> {
        let (store, from, to) = (self.clone(), source.blob_path(id), self.blob_path(id));
        let taken = blocking(move || {
            if to.try_exists()? {
                return Ok(Taken::Present);
            }
            match std::fs::hard_link(&from, &to) {
                // The file is shared: syncing it here makes the source's bytes durable too
                // (they may only be in the page cache, under Process durability).
                Ok(()) if store.full() => std::fs::File::open(&to)?.sync_all().map(|()| Taken::Linked),
                Ok(()) => Ok(Taken::Linked),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(Taken::Present),
                // The source is gone; a missing fan-out directory here is made by the copy.
                Err(e) if e.kind() == io::ErrorKind::NotFound && !from.try_exists()? => Err(e),
                Err(_) => store.copy_in(&from, &to).map(|()| Taken::Copied),
            }
        })
        .await;
        match taken {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(Error::NotFound(id.clone())),
            other => Ok(other?),
        }
    }

    /// Copies `from` to a temp file and renames it to `to`. The source is opened first: once
    /// open, its bytes stay readable even if the source store deletes the name meanwhile.
    fn copy_in(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut source = std::fs::File::open(from)?;
        let (mut file, temp) = self.create_temp()?;
        io::copy(&mut source, &mut file)?;
        if self.full() {
            file.sync_all()?;
        }
        drop(file);
        let id = to.file_name().and_then(|n| n.to_str()).and_then(BlobId::parse);
        let id = id.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a blob path"))?;
        self.rename_into(temp, &id)
    }

    /// Fsyncs `blobs/` and every fan-out directory, so that the names a backup or restore
    /// linked or copied in survive a power loss (the files themselves are synced by the
    /// store they came from, or by [`LocalStore::take_from`]'s copy in Full durability).
    pub async fn sync_names(&self) -> Result<()> {
        let blobs = self.blobs.clone();
        Ok(blocking(move || {
            for byte in 0..=255u8 {
                sync_dir(&blobs.join(format!("{byte:02x}")))?;
            }
            sync_dir(&blobs)
        })
        .await?)
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;
    use crate::{BlobStore, Durability};

    async fn store_with(bytes: &'static [u8]) -> (tempfile::TempDir, LocalStore, BlobId) {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(dir.path().join("a"), Durability::Process).await.unwrap();
        let body = Box::pin(futures_util::stream::once(async move { Ok(bytes::Bytes::from_static(bytes)) }));
        let (id, _) = store.put(body, None).await.unwrap();
        (dir, store, id)
    }

    #[tokio::test]
    async fn taking_a_blob_on_the_same_file_system_links_it() {
        let (dir, source, id) = store_with(b"shared bytes").await;
        let dest = LocalStore::open(dir.path().join("b"), Durability::Full).await.unwrap();
        assert_eq!(dest.take_from(&source, &id).await.unwrap(), Taken::Linked);
        let (a, b) =
            (std::fs::metadata(source.blob_path(&id)).unwrap(), std::fs::metadata(dest.blob_path(&id)).unwrap());
        assert_eq!((a.ino(), a.nlink()), (b.ino(), 2), "one file, two names");
        assert_eq!(dest.take_from(&source, &id).await.unwrap(), Taken::Present);
        dest.sync_names().await.unwrap();
    }

    #[tokio::test]
    async fn taking_a_blob_the_source_no_longer_has_is_not_found() {
        let (dir, source, id) = store_with(b"collected meanwhile").await;
        source.delete(&id).await.unwrap();
        let dest = LocalStore::open(dir.path().join("b"), Durability::Process).await.unwrap();
        assert!(matches!(dest.take_from(&source, &id).await, Err(Error::NotFound(_))));
        assert!(dest.list().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_copy_lands_whole_under_its_id() {
        let (dir, source, id) = store_with(b"copied bytes").await;
        let dest = LocalStore::open(dir.path().join("b"), Durability::Process).await.unwrap();
        dest.copy_in(&source.blob_path(&id), &dest.blob_path(&id)).unwrap();
        assert_eq!(std::fs::read(dest.blob_path(&id)).unwrap(), b"copied bytes");
        assert_ne!(
            std::fs::metadata(dest.blob_path(&id)).unwrap().ino(),
            std::fs::metadata(source.blob_path(&id)).unwrap().ino()
        );
        assert!(std::fs::read_dir(dir.path().join("b").join("tmp")).unwrap().next().is_none(), "no temp file left");
    }

    #[tokio::test]
    async fn a_blob_moved_aside_leaves_the_store_and_keeps_its_bytes() {
        let (_dir, store, id) = store_with(b"damaged").await;
        let first = store.quarantine(&id).await.unwrap().unwrap();
        assert_eq!(first, store.lost_and_found().join(id.as_str()));
        assert_eq!(std::fs::read(&first).unwrap(), b"damaged");
        assert!(store.list().await.unwrap().is_empty());
        assert_eq!(store.quarantine(&id).await.unwrap(), None, "nothing left to move");
        // The same id damaged again does not overwrite the first one moved aside.
        std::fs::write(store.blob_path(&id), b"again").unwrap();
        let second = store.quarantine(&id).await.unwrap().unwrap();
        assert_eq!(second, store.lost_and_found().join(format!("{id}.1")));
    }
}
