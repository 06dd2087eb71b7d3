//! Consistency checks of a repository, and repairs of what they find (`wharf fsck`).
//!
//! The invariants checked, each a [`Finding`] when it does not hold:
//! - the database file is sound (`PRAGMA integrity_check`) and every foreign key names an
//!   existing row (`PRAGMA foreign_key_check`: dead properties of deleted resources,
//!   grants of deleted users or shares, mounted properties of removed mounts);
//! - every resource is reachable from the root through collections; collections hold no
//!   content, and a file without content has size 0;
//! - every blob's recorded reference count equals the number of files pointing at it;
//! - every blob a file points at exists in the blob store, and every blob file in the store
//!   is one a file points at (or garbage the collector already knows of);
//! - with `verify_content`, every blob's bytes hash to its id and are as long as the files
//!   pointing at it say (the quota is the sum of those sizes: no figure of it is stored);
//! - every unexpired lock rooted in the store has a resource at its root (LOCK creates one,
//!   DELETE and MOVE take their locks along); locks inside host folders are not checked,
//!   since other programs may remove files there;
//! - every mount's stored path is a collection of the store.
//!
//! Blob rows at refcount 0 are garbage waiting for the collector, not a problem.
//!
//! The check only reads, and in this process it runs under the exclusive garbage-collector
//! guard, so no upload is between its blob and its row. Beside a server in another process
//! it still reads a consistent snapshot of the database, but blob files come and go under
//! it; each blob finding is therefore confirmed against the store and database once more
//! before it is reported. Repairs need the store to themselves: the command line refuses
//! `--repair` while a server runs on the data directory.

mod check;
mod describe;
mod repair;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use wharf_backends::{BlobId, LocalStore};

use crate::{Config, DavPath, Repository, Result};

/// What [`Repository::fsck`] does.
#[derive(Debug, Clone, Copy, Default)]
pub struct FsckOptions {
    /// Repair what can be repaired (see [`Outcome`]), then check again.
    pub repair: bool,
    /// Read every blob, hash it and compare with its id and its files' sizes.
    pub verify_content: bool,
}

/// One invariant that does not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// `PRAGMA integrity_check` found the database file itself damaged.
    DatabaseDamaged { message: String },
    /// The root row is missing or not a collection: nothing else about the tree is
    /// trustworthy, and nothing is deleted as unreachable.
    RootMissing,
    /// A row whose foreign key names a row that is not there.
    OrphanRow { table: String, rowid: i64, parent: String },
    /// A resource the root does not lead to through collections (its parent is missing,
    /// is a file, or the parents form a cycle).
    Unreachable { id: i64, parent_id: Option<i64>, name: String },
    /// A collection pointing at a blob, or with a size (resource `id`).
    CollectionHasContent { id: i64, path: DavPath },
    /// A file without content whose size is not 0 (resource `id`).
    SizeWithoutContent { id: i64, path: DavPath, size: i64 },
    /// `recorded` is `None` when the blob has no row at all.
    RefcountMismatch { blob: String, recorded: Option<i64>, actual: i64 },
    /// Files point at a blob the store does not have: their content is lost.
    MissingBlob { blob: String, paths: Vec<DavPath> },
    /// A blob file nothing points at and the collector does not know of.
    OrphanBlobFile { blob: BlobId },
    /// The blob's bytes do not hash to its id (found with `verify_content`).
    ContentMismatch { blob: BlobId, paths: Vec<DavPath> },
    /// The blob holds `actual` bytes, files pointing at it say `recorded`.
    SizeMismatch { blob: BlobId, recorded: i64, actual: u64, paths: Vec<DavPath> },
    /// An unexpired lock whose root is not a resource (or not a path at all).
    LockRootMissing { token: String, root: String },
    /// A mount whose stored path is not a collection of the store.
    MountPointMissing { mount_id: i64, path: String },
}

/// What became of a finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A check without repair: nothing was changed.
    Found,
    Repaired(Repair),
    /// Repair was asked for, but this is beyond it; says why and what an operator can do.
    Left(&'static str),
}

/// A repair done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Repair {
    RowDeleted,
    /// The blob's row now holds the actual count (a blob at 0 is then collected).
    RefcountSet(i64),
    /// A collection's content reference was cleared.
    ContentCleared,
    SizeSet(i64),
    /// The blob file was deleted (nothing referenced it).
    BlobDeleted,
    /// The blob file was moved out of the store, to this path if the store has a place for
    /// it; the files that pointed at it have lost their content.
    BlobMovedAside(Option<PathBuf>),
    LockRemoved,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub finding: Finding,
    pub outcome: Outcome,
}

/// Everything [`Repository::fsck`] found and did.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub problems: Vec<Problem>,
    /// After a repair, what a second check still found (empty without repair).
    pub remaining: Vec<Finding>,
    pub counts: Counts,
}

/// What was looked at, for the summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub resources: u64,
    /// Blobs that files point at.
    pub blobs: u64,
    pub blob_files: u64,
    pub locks: u64,
    /// Bytes read and hashed with `verify_content`.
    pub bytes_verified: u64,
}

impl Report {
    /// Nothing was found.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }

    /// The store is consistent now: nothing was found, or a repair left nothing behind.
    pub fn is_consistent(&self) -> bool {
        if self.problems.iter().any(|p| p.outcome == Outcome::Found) {
            return false;
        }
        self.remaining.is_empty()
    }
}

impl Repository {
    /// Checks the invariants listed in the module documentation and, with
    /// `options.repair`, repairs what it can and checks again. Cheap on a small store
    /// without `verify_content`: a handful of queries and one listing of the blob store.
    pub async fn fsck(&self, options: FsckOptions) -> Result<Report> {
        if !options.repair {
            let _guard = self.gc_guard.checking().await;
            let (findings, counts) = check::run(self, options.verify_content).await?;
            let problems = findings.into_iter().map(|finding| Problem { finding, outcome: Outcome::Found }).collect();
            return Ok(Report { problems, remaining: Vec::new(), counts });
        }
        let guard = self.gc_guard.collecting().await?;
        let (findings, counts) = check::run(self, options.verify_content).await?;
        let outcomes = repair::all(self, &findings).await?;
        let problems: Vec<Problem> =
            findings.into_iter().zip(outcomes).map(|(finding, outcome)| Problem { finding, outcome }).collect();
        self.lookups.invalidate();
        self.lock_rows.recheck(&mut self.write.acquire().await?).await?;
        drop(guard);
        if !problems.is_empty() {
            // Blobs whose count a repair set to 0 go the way of any garbage.
            self.collect_garbage().await?;
        }
        let guard = self.gc_guard.checking().await;
        let (remaining, _) = check::run(self, options.verify_content).await?;
        drop(guard);
        Ok(Report { problems, remaining, counts })
    }

    /// Opens the repository in `dir` for `wharf fsck` and `wharf restore`: like
    /// [`Repository::open_admin`] it leaves `tmp/` alone and collects nothing, so the
    /// check sees the store as it is, but blob files it deletes or moves aside really go.
    /// Refuses a directory without a database rather than creating an empty one.
    pub async fn open_maintenance(dir: &Path, database: Option<&str>) -> Result<Repository> {
        let db = dir.join("wharf.db");
        if database.is_none() && !db.is_file() {
            return Err(crate::Error::Internal(format!("no repository in {} (no wharf.db)", dir.display())));
        }
        let config = Config::default();
        let url = crate::db::url(dir, database);
        let store: Arc<dyn wharf_backends::BlobStore> = match crate::blobs::recorded_s3(&url).await? {
            Some(s3) => Arc::new(wharf_backends::S3Store::connect(s3).await?),
            None => Arc::new(LocalStore::attach(dir.join("blobs"), config.durability).await?),
        };
        let mut repo = Self::with_store(&url, store, config).await?;
        repo.data_dir = Some(dir.to_owned());
        Ok(repo)
    }
}
