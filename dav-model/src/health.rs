//! Readiness: whether this process can take writes right now, asked by orchestrators and
//! load balancers (`/readyz`). A server whose database is locked by another program, or
//! whose blob store's disk refuses files, still answers reads and `OPTIONS`, but every
//! upload would fail: traffic is better sent elsewhere until it recovers.
//!
//! Probes write, and readiness is polled often and from many places, so one answer serves
//! every caller for [`CACHE_FOR`]: a scrape storm is not a write storm.

use std::time::{Duration, Instant};

use sqlx::{ConnectOptions, Connection};

use crate::Repository;

/// How long one answer is reused.
const CACHE_FOR: Duration = Duration::from_secs(1);
/// How long the database may take to grant a write transaction before we call it failing.
/// Our own writes hold it for milliseconds; only a stuck or foreign writer takes this long.
const DB_BUSY: Duration = Duration::from_millis(1500);
/// Whole-probe limit, should a file system hang rather than fail.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// The last answer and when it was given.
#[derive(Default)]
pub(crate) struct ReadyCache(tokio::sync::Mutex<Option<(Instant, Result<(), String>)>>);

impl Repository {
    /// `Ok` when the database grants a write transaction and the blob store takes a file,
    /// otherwise a short reason (`database: ...` or `blob store: ...`). Concurrent callers
    /// wait for one probe rather than each running their own.
    pub async fn check_ready(&self) -> Result<(), String> {
        let mut last = self.ready.0.lock().await;
        if let Some((at, answer)) = &*last {
            if at.elapsed() < CACHE_FOR {
                return answer.clone();
            }
        }
        let answer = self.probe().await;
        *last = Some((Instant::now(), answer.clone()));
        answer
    }

    async fn probe(&self) -> Result<(), String> {
        let timed_out = |what: &str| format!("{what}: no answer within {} s", PROBE_TIMEOUT.as_secs());
        match tokio::time::timeout(PROBE_TIMEOUT, self.probe_database()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(format!("database: {e}")),
            Err(_) => return Err(timed_out("database")),
        }
        match tokio::time::timeout(PROBE_TIMEOUT, self.blobs.probe()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(format!("blob store: {e}")),
            Err(_) => Err(timed_out("blob store")),
        }
    }

    /// `BEGIN IMMEDIATE` (take the write lock) and roll back, on a connection of its own: the
    /// shared writer may be busy with a long transaction of ours, and a probe cut short by
    /// its timeout must never leave that connection inside a transaction. The connection
    /// is closed after each probe, so a cut one takes its transaction with it.
    ///
    /// On PostgreSQL, a fresh connection answering a query is the probe: writers there
    /// wait on a lock the database itself hands out, not on a file.
    async fn probe_database(&self) -> crate::Result<()> {
        match &self.write {
            crate::db::Pool::Sqlite(pool) => {
                let options = (*pool.connect_options()).clone().create_if_missing(false).busy_timeout(DB_BUSY);
                let mut conn = options.connect().await?;
                sqlx::query("BEGIN IMMEDIATE").execute(&mut conn).await?;
                sqlx::query("ROLLBACK").execute(&mut conn).await?;
                conn.close().await?;
            }
            crate::db::Pool::Pg { pool, .. } => {
                let mut conn = (*pool.connect_options()).connect().await?;
                sqlx::query("SELECT 1").execute(&mut conn).await?;
                conn.close().await?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    async fn on_disk() -> (tempfile::TempDir, Repository) {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::open(dir.path(), crate::Config::default()).await.unwrap();
        (dir, repo)
    }

    #[tokio::test]
    async fn a_healthy_repository_is_ready() {
        let (_dir, repo) = on_disk().await;
        assert_eq!(repo.check_ready().await, Ok(()));
    }

    #[tokio::test]
    async fn a_database_locked_by_another_writer_is_not_ready_until_released() {
        let (dir, repo) = on_disk().await;
        let url = format!("sqlite://{}", dir.path().join("wharf.db").display());
        let mut other = sqlx::SqliteConnection::connect(&url).await.unwrap();
        crate::db::query("BEGIN EXCLUSIVE").execute(&mut other).await.unwrap();
        let answer = repo.check_ready().await;
        assert!(answer.as_ref().is_err_and(|e| e.starts_with("database: ")), "{answer:?}");
        crate::db::query("ROLLBACK").execute(&mut other).await.unwrap();
        tokio::time::sleep(CACHE_FOR).await;
        assert_eq!(repo.check_ready().await, Ok(()));
    }

    #[tokio::test]
    async fn a_blob_store_that_cannot_stage_is_not_ready() {
        let (dir, repo) = on_disk().await;
        let tmp = dir.path().join("blobs").join("tmp");
        std::fs::remove_dir_all(&tmp).unwrap();
        std::fs::write(&tmp, b"").unwrap();
        let answer = repo.check_ready().await;
        assert!(answer.as_ref().is_err_and(|e| e.starts_with("blob store: ")), "{answer:?}");
    }

    #[tokio::test]
    async fn answers_within_a_second_are_reused() {
        let (dir, repo) = on_disk().await;
        let repo = Arc::new(repo);
        assert_eq!(repo.check_ready().await, Ok(()));
        // Broken now, but the answer of a moment ago still stands.
        let tmp = dir.path().join("blobs").join("tmp");
        std::fs::remove_dir_all(&tmp).unwrap();
        std::fs::write(&tmp, b"").unwrap();
        assert_eq!(repo.check_ready().await, Ok(()));
        tokio::time::sleep(CACHE_FOR).await;
        assert!(repo.check_ready().await.is_err());
    }
}
