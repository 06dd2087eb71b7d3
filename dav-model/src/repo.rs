//! The repository: the SQLite database holding the tree, plus the blob store holding bytes.

use std::path::Path;
use std::sync::Arc;

use wharf_backends::{BlobId, BlobStore, Durability};

use crate::db::Pool;
use crate::{DavPath, Result};

/// Limits and policies of the model. Adapters fill it from the server's configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub durability: Durability,
    /// Total bytes the tree may hold; `None` means "as much as the disk has".
    pub quota_bytes: Option<u64>,
    /// Largest accepted PUT body.
    pub max_upload_bytes: Option<u64>,
    /// Lock timeout granted when the client asks for none.
    pub default_lock_timeout: u64,
    /// Longest lock timeout granted (an `Infinite` request gets this).
    pub max_lock_timeout: u64,
    /// Owner and group given to files and folders Wharf creates in host folders (for
    /// containers with mapped ids); `None` leaves the process's own.
    pub host_owner: Option<u32>,
    pub host_group: Option<u32>,
    /// Permission bits of files and folders Wharf creates in host folders; `None` lets
    /// the umask decide.
    pub host_file_mode: Option<u32>,
    pub host_dir_mode: Option<u32>,
    /// Blobs up to this size that arrive whole are kept in the database with their rows
    /// (see `inline.rs`); 0 keeps every blob a file. At most [`crate::inline::INLINE_CAP`].
    pub inline_max: u64,
    /// Bytes of small contents kept in memory for reads (see `inline.rs`); 0 turns the
    /// cache off.
    pub content_cache_bytes: u64,
    /// Caps on what an archive opened as a folder may make the server do.
    pub archive_limits: wharf_backends::archive::Limits,
    /// Blobs in this S3 bucket instead of `blobs/` in the data directory (see `blobs.rs`).
    pub s3: Option<wharf_backends::S3Options>,
    /// The database: `postgres://…` for one that several servers share; `None` for
    /// `wharf.db` in the data directory (SQLite).
    pub database: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            durability: Durability::Process,
            quota_bytes: None,
            max_upload_bytes: None,
            default_lock_timeout: 3600,
            max_lock_timeout: 7 * 24 * 3600,
            host_owner: None,
            host_group: None,
            host_file_mode: None,
            host_dir_mode: None,
            inline_max: crate::inline::DEFAULT_INLINE_MAX,
            content_cache_bytes: crate::inline::DEFAULT_CACHE_BYTES,
            archive_limits: Default::default(),
            s3: None,
            database: None,
        }
    }
}

/// RFC 4331 quota figures of the repository.
#[derive(Debug, Clone, Copy)]
pub struct Quota {
    pub used: u64,
    pub available: u64,
}

pub struct Repository {
    /// Several connections for concurrent reads (WAL readers never block).
    pub(crate) read: Pool,
    /// One connection for writes, so write transactions queue here instead of
    /// failing with SQLITE_BUSY when two deferred transactions both try to upgrade.
    pub(crate) write: Pool,
    pub(crate) blobs: Arc<dyn BlobStore>,
    /// Held shared from "blob file appears" to "row referencing it commits", and
    /// exclusively by the garbage collector, so GC never deletes a blob being adopted.
    pub(crate) gc_guard: crate::db::CollectorGuard,
    pub(crate) config: Config,
    pub(crate) data_dir: Option<std::path::PathBuf>,
    pub(crate) lookups: Arc<crate::cache::LookupCache>,
    /// Plain guarded writes, committed in groups (see `group/`).
    pub(crate) group: crate::group::Committer,
    /// Connections of their own for listings, on an SQLite file (see `db/direct.rs`).
    pub(crate) readers: Option<Arc<crate::db::direct::Readers>>,
    pub(crate) lock_rows: crate::lock::LockRows,
    pub(crate) mounts: crate::mount::MountTable,
    /// Held exclusively while a LOCK is created, and shared by the plain writes to mounted
    /// trees that saw no lock (see `mount::ops`): those act outside any transaction, and
    /// this keeps a lock from appearing between their look and their act.
    pub(crate) lock_gate: tokio::sync::RwLock<()>,
    /// The last readiness answer (see `health.rs`).
    pub(crate) ready: crate::health::ReadyCache,
    pub(crate) gc_counts: crate::stats::GcCounters,
    /// Small contents recently written or read, by id (see `inline.rs`).
    pub(crate) contents: crate::inline::ContentCache,
    /// Archive indexes in memory and builds under way (see `archive.rs`).
    pub(crate) archives: crate::archive::Archives,
}

impl Repository {
    /// Opens (creating if needed) the repository in `dir`: `dir/wharf.db` (or the database
    /// of `config.database`) and its blobs, in `dir/blobs/` or the S3 bucket of `config.s3`.
    pub async fn open(dir: &Path, config: Config) -> Result<Repository> {
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|e| crate::Error::Internal(format!("cannot create {}: {e}", dir.display())))?;
        let opened = crate::blobs::Opened::open(dir, config.s3.as_ref(), config.durability).await?;
        let url = crate::db::url(dir, config.database.as_deref());
        let s3 = config.s3.clone();
        let mut repo = Self::with_store(&url, opened.store(), config).await?;
        opened.check(&repo.write, s3.as_ref()).await?;
        repo.data_dir = Some(dir.to_owned());
        repo.reload_mounts().await?;
        repo.collect_garbage().await?;
        repo.sweep_orphans().await?;
        Ok(repo)
    }

    /// Opens a repository on a database URL (`sqlite://FILE` or `postgres://…`) and a blob
    /// store (tests use a MemoryStore).
    pub async fn with_store(url: &str, blobs: Arc<dyn BlobStore>, config: Config) -> Result<Repository> {
        let crate::db::Opened { read, write, collector: gc_guard, direct } =
            crate::db::open(url, config.durability).await?;
        let shared = write.dialect() == crate::db::Dialect::Postgres;
        let lock_rows = if shared { crate::lock::LockRows::shared() } else { Default::default() };
        lock_rows.recheck(&mut write.acquire().await?).await?;
        let mounts = Default::default();
        let contents = crate::inline::ContentCache::new(config.content_cache_bytes);
        let lookups = Arc::new(if shared { crate::cache::LookupCache::off() } else { Default::default() });
        let readers = direct.clone().map(|spec| Arc::new(crate::db::direct::Readers::new(spec)));
        let group = crate::group::Committer::start(write.clone(), lookups.clone(), direct);
        let repo = Repository {
            read,
            write,
            blobs,
            gc_guard,
            config,
            data_dir: None,
            lookups,
            group,
            readers,
            lock_rows,
            mounts,
            lock_gate: Default::default(),
            ready: Default::default(),
            gc_counts: Default::default(),
            contents,
            archives: Default::default(),
        };
        Ok(repo)
    }

    /// Commits a write transaction and invalidates cached lookups.
    pub(crate) async fn commit(&self, tx: crate::db::Tx<'_>) -> Result<()> {
        tx.commit().await?;
        self.lookups.invalidate();
        Ok(())
    }

    /// Commits a write transaction that changed only the rows at `paths`, and drops those
    /// from the cached lookups (the rest stay valid).
    pub(crate) async fn commit_touching(&self, tx: crate::db::Tx<'_>, paths: &[DavPath]) -> Result<()> {
        tx.commit().await?;
        self.lookups.forget(paths);
        Ok(())
    }

    /// Whether other servers may use this database too (PostgreSQL): what a process
    /// remembers may then be stale, and what every server must agree on lives in the
    /// database.
    pub(crate) fn is_shared(&self) -> bool {
        self.write.dialect() == crate::db::Dialect::Postgres
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub async fn close(&self) {
        // First: the committer's own connection must not outlive the pools' (see `group/`).
        self.group.close().await;
        if let Some(readers) = &self.readers {
            readers.close();
        }
        self.read.close().await;
        self.write.close().await;
    }

    /// Deletes blobs no resource references any more. Runs under the exclusive GC guard,
    /// so no upload is between committing its blob and committing its row.
    pub async fn collect_garbage(&self) -> Result<u64> {
        let _guard = self.gc_guard.collecting().await?;
        // Inline blobs go with their rows, in one statement. It runs in a write transaction,
        // so under PostgreSQL's writer lock: a bare DELETE of several rows deadlocked with
        // a committing group of uploads releasing or adopting the same rows.
        let mut tx = self.write.begin().await?;
        let inline: Vec<(i64,)> =
            crate::db::query_as("DELETE FROM blobs WHERE refcount <= 0 AND data IS NOT NULL RETURNING length(data)")
                .fetch_all(&mut tx)
                .await?;
        tx.commit().await?;
        let (mut n, mut bytes) = (inline.len() as u64, inline.iter().map(|(len,)| len.max(&0).unsigned_abs()).sum());
        let rows: Vec<(String,)> =
            crate::db::query_as("SELECT id FROM blobs WHERE refcount <= 0").fetch_all(&self.write).await?;
        for (id,) in rows {
            if let Some(blob) = BlobId::parse(&id) {
                bytes += self.blobs.delete(&blob).await?;
                n += 1;
            }
            let mut tx = self.write.begin().await?;
            crate::db::query("DELETE FROM blobs WHERE id = ? AND refcount <= 0").bind(&id).execute(&mut tx).await?;
            tx.commit().await?;
        }
        self.gc_counts.record(n, bytes);
        Ok(n)
    }

    /// What a shared blob store needs now and then while the server runs: leftovers of
    /// uploads that servers sharing it lost in crashes, and blobs past the store's grace
    /// period that no row knows about. Returns how many went.
    pub async fn sweep_blob_store(&self) -> Result<u64> {
        let leftovers = self.blobs.sweep_leftovers().await?;
        Ok(leftovers + self.sweep_orphans().await?)
    }

    /// Deletes blob files no row knows about: left by a crash (or a failed precondition)
    /// between a blob's commit and its row's. Run at start-up, before any upload; in a
    /// store other servers share, only blobs past its grace period are candidates.
    ///
    /// The store is listed before the guard is taken (listing a large bucket takes a while,
    /// and uploads wait for the guard); a blob an upload adopts after the listing has its
    /// row by the time the guard is ours, so it is not deleted.
    async fn sweep_orphans(&self) -> Result<u64> {
        let listed = self.blobs.list_settled().await?;
        let _guard = self.gc_guard.collecting().await?;
        let known: std::collections::HashSet<String> =
            crate::db::query_as::<(String,)>("SELECT id FROM blobs WHERE refcount > 0")
                .fetch_all(&self.write)
                .await?
                .into_iter()
                .map(|(id,)| id)
                .collect();
        let mut n = 0;
        for id in listed {
            if !known.contains(id.as_str()) {
                self.blobs.delete(&id).await?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// RFC 4331 figures for `stored`: a mounted folder reports what its files hold and
    /// what its file system has left; the native store its own totals.
    pub async fn quota_at(&self, stored: &crate::DavPath) -> Result<Quota> {
        match self.mounted(stored).await? {
            Some(at) => {
                let used = at.mount.used().await?;
                let mut available = at.tree()?.available().await?;
                if let Some(cap) = at.mount.info.quota_bytes {
                    available = available.min(cap.saturating_sub(used));
                }
                Ok(Quota { used, available })
            }
            None => self.quota().await,
        }
    }

    /// Bytes stored in the tree and bytes still available under the quota or on disk.
    pub async fn quota(&self) -> Result<Quota> {
        let (used,): (i64,) = crate::db::query_as("SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM resources")
            .fetch_one(&self.read)
            .await?;
        let used = used.max(0) as u64;
        let disk = self.data_dir.as_deref().and_then(disk_available);
        let by_quota = self.config.quota_bytes.map(|q| q.saturating_sub(used));
        let available = match (by_quota, disk) {
            (Some(q), Some(d)) => q.min(d),
            (Some(q), None) => q,
            (None, Some(d)) => d,
            (None, None) => u64::MAX / 2,
        };
        Ok(Quota { used, available })
    }
}

#[cfg(test)]
impl Config {
    /// Every blob a file of the blob store, for tests of those files.
    pub(crate) fn blob_files_only() -> Config {
        Config { inline_max: 0, ..Config::default() }
    }
}

#[cfg(test)]
impl Repository {
    /// A repository on a fresh SQLite file with blobs in memory, for unit tests; the
    /// directory lives as long as the returned guard.
    pub(crate) async fn scratch() -> (tempfile::TempDir, Repository) {
        Repository::scratch_with(Config::default()).await
    }

    pub(crate) async fn scratch_with(config: Config) -> (tempfile::TempDir, Repository) {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = match crate::testing::postgres_database().await {
            Some(url) => url,
            None => format!("sqlite://{}", dir.path().join("t.db").display()),
        };
        let store = Arc::new(wharf_backends::MemoryStore::new());
        let repo = Repository::with_store(&url, store, config).await.expect("scratch repository");
        (dir, repo)
    }

    /// A scratch repository on SQLite whatever the test run's database, for tests of what
    /// only SQLite has (the lookup cache: a shared database caches no lookups).
    pub(crate) async fn scratch_sqlite() -> (tempfile::TempDir, Repository) {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = Arc::new(wharf_backends::MemoryStore::new());
        let repo = Repository::with_store(&url, store, Config::default()).await.expect("scratch repository");
        (dir, repo)
    }
}

/// Free bytes on the filesystem holding `dir` (std has no statvfs, hence libc).
#[cfg(unix)]
fn disk_available(dir: &Path) -> Option<u64> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let c = CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs only writes into the zeroed struct we own; the path is NUL-terminated.
    unsafe {
        let mut st: libc::statvfs = std::mem::zeroed();
        if libc::statvfs(c.as_ptr(), &mut st) != 0 {
            return None;
        }
        Some(st.f_bavail as u64 * st.f_frsize as u64)
    }
}

#[cfg(not(unix))]
fn disk_available(_dir: &Path) -> Option<u64> {
    None
}
