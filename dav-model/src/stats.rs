//! Figures for monitoring, as plain numbers. The server turns them into metrics at scrape
//! time; the model itself depends on no metrics library, so its API stays protocol- and
//! tool-agnostic.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::{now_ns, Repository, Result};

/// What the database holds now, and what the garbage collector has done since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Locks not yet expired.
    pub locks: u64,
    /// Bytes the files of the store hold: what the quota counts (a copy counts again, though
    /// it shares its blob). Host folders are not included.
    pub stored_bytes: u64,
    /// Blobs at least one file refers to.
    pub blobs: u64,
    pub gc: GcStats,
}

/// Garbage collection since the process started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GcStats {
    /// Collections run (after every DELETE and every overwrite, and at start-up).
    pub runs: u64,
    pub blobs_removed: u64,
    pub bytes_removed: u64,
}

/// Archive indexes since the process started (see `archive.rs`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ArchiveStats {
    /// Indexes made by reading an archive whole (or its central directory).
    pub built: u64,
    /// Indexes read back from the database instead.
    pub loaded: u64,
}

/// Login outcomes and lockouts since the process started, for every protocol together.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoginStats {
    /// Credentials accepted, from the cache or by verifying the password. WebDAV clients
    /// send credentials with every request, so each of their requests counts.
    pub ok: u64,
    /// Wrong user name or password.
    pub failed: u64,
    /// Refused unchecked because the user name or the address was locked out.
    pub locked_out: u64,
    /// Not checked because the database failed (not counted against the client).
    pub unavailable: u64,
    /// Times a user name, or a client address, became locked out.
    pub user_lockouts: u64,
    pub address_lockouts: u64,
}

#[derive(Debug, Default)]
pub(crate) struct GcCounters {
    runs: AtomicU64,
    blobs: AtomicU64,
    bytes: AtomicU64,
}

impl GcCounters {
    pub(crate) fn record(&self, blobs: u64, bytes: u64) {
        self.runs.fetch_add(1, Ordering::Relaxed);
        self.blobs.fetch_add(blobs, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Inline blobs deleted by the write that released them: no collector run.
    pub(crate) fn record_inline(&self, blobs: u64, bytes: u64) {
        self.blobs.fetch_add(blobs, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    fn snapshot(&self) -> GcStats {
        GcStats {
            runs: self.runs.load(Ordering::Relaxed),
            blobs_removed: self.blobs.load(Ordering::Relaxed),
            bytes_removed: self.bytes.load(Ordering::Relaxed),
        }
    }
}

/// The outcome counters of [`LoginStats`]; lockouts are counted by the guard.
#[derive(Debug, Default)]
pub(crate) struct LoginCounters {
    pub(crate) ok: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) locked_out: AtomicU64,
    pub(crate) unavailable: AtomicU64,
}

impl LoginCounters {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self, (user_lockouts, address_lockouts): (u64, u64)) -> LoginStats {
        LoginStats {
            ok: self.ok.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            locked_out: self.locked_out.load(Ordering::Relaxed),
            unavailable: self.unavailable.load(Ordering::Relaxed),
            user_lockouts,
            address_lockouts,
        }
    }
}

impl Repository {
    /// Reads the figures: one statement on a read connection. Every part is an aggregate over
    /// an index or a small table except the stored bytes, which scans the tree as the quota
    /// does; meant for a scrape every few seconds, not per request.
    pub async fn stats(&self) -> Result<Stats> {
        let (locks, stored_bytes, blobs): (i64, i64, i64) = crate::db::query_as(
            "SELECT (SELECT COUNT(*) FROM locks WHERE expires_ns IS NULL OR expires_ns > ?), \
                    (SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM resources), \
                    (SELECT COUNT(*) FROM blobs WHERE refcount > 0)",
        )
        .bind(now_ns())
        .fetch_one(&self.read)
        .await?;
        let count = |n: i64| n.max(0) as u64;
        Ok(Stats { locks: count(locks), stored_bytes: count(stored_bytes), blobs: count(blobs), gc: self.gc_stats() })
    }

    /// Archive indexes built and loaded since start, without touching the database.
    pub fn archive_stats(&self) -> ArchiveStats {
        self.archives.stats()
    }

    /// Garbage collection since start, without touching the database.
    pub fn gc_stats(&self) -> GcStats {
        self.gc_counts.snapshot()
    }
}

#[cfg(test)]
mod tests {
    use crate::{DavPath, LockRequest, LockScope, PutOptions, Repository};

    fn body(data: &'static [u8]) -> crate::ByteStream {
        Box::pin(futures_util::stream::once(async move { Ok(bytes::Bytes::from_static(data)) }))
    }

    #[tokio::test]
    async fn stats_count_stored_bytes_blobs_locks_and_collected_garbage() {
        let (_dir, repo) = Repository::scratch_with(crate::Config::blob_files_only()).await;
        let before = repo.stats().await.unwrap();
        let a = DavPath::parse("/a").unwrap();
        repo.put(&a, body(b"12345"), PutOptions::default()).await.unwrap();
        repo.put(&DavPath::parse("/b").unwrap(), body(b"123"), PutOptions::default()).await.unwrap();
        let lock = LockRequest {
            scope: LockScope::Exclusive,
            depth_infinite: false,
            owner_xml: None,
            principal: None,
            timeouts: vec![Some(60)],
        };
        repo.lock(&a, lock, &Default::default()).await.unwrap();
        let s = repo.stats().await.unwrap();
        assert_eq!((s.stored_bytes, s.blobs, s.locks), (before.stored_bytes + 8, before.blobs + 2, before.locks + 1));

        repo.put(&DavPath::parse("/b").unwrap(), body(b"replaced"), PutOptions::default()).await.unwrap();
        let after = repo.stats().await.unwrap();
        assert_eq!(after.gc.runs, s.gc.runs + 1, "an overwrite collects");
        assert_eq!((after.gc.blobs_removed, after.gc.bytes_removed), (s.gc.blobs_removed + 1, s.gc.bytes_removed + 3));
        assert_eq!((after.blobs, after.stored_bytes), (s.blobs, s.stored_bytes + 5));
    }

    #[tokio::test]
    async fn an_inline_content_released_by_an_overwrite_counts_as_collected() {
        let (_dir, repo) = Repository::scratch().await;
        let b = DavPath::parse("/b").unwrap();
        repo.put(&b, body(b"123"), PutOptions::default()).await.unwrap();
        let s = repo.stats().await.unwrap();
        repo.put(&b, body(b"replaced"), PutOptions::default()).await.unwrap();
        let after = repo.stats().await.unwrap();
        assert_eq!((after.gc.blobs_removed, after.gc.bytes_removed), (s.gc.blobs_removed + 1, s.gc.bytes_removed + 3));
        assert_eq!(after.blobs, s.blobs);
    }
}
