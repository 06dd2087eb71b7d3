//! The collector's guard: uploads hold it shared from "the blob is in the store" to "a row
//! references it", and the garbage collector holds it exclusively, so the collector never
//! deletes a blob an upload is about to reference (the upload may have found the blob
//! already stored, and skipped storing it again).
//!
//! Within one process a read-write lock is enough. Servers sharing a PostgreSQL database
//! and a bucket also take PostgreSQL's advisory lock of the same name, shared or exclusive,
//! so a collector on one node waits for uploads on every node.

use sqlx::pool::PoolConnection;
use sqlx::{PgPool, Postgres};
use tokio::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::Pool;

/// The advisory lock's key ("Wharf" and 2; the writer's is 1).
const COLLECTOR_LOCK: i64 = 0x5768_6172_6602;

#[derive(Default)]
pub(crate) struct CollectorGuard {
    local: RwLock<()>,
    shared: Option<PgPool>,
}

/// The guard, held; dropping it releases it.
pub(crate) struct Held<G> {
    _local: G,
    remote: Option<(PoolConnection<Postgres>, &'static str)>,
}

impl CollectorGuard {
    pub fn new(pool: &Pool) -> CollectorGuard {
        match pool {
            Pool::Sqlite(_) => CollectorGuard::default(),
            Pool::Pg { pool, .. } => CollectorGuard { local: RwLock::new(()), shared: Some(pool.clone()) },
        }
    }

    /// Held by an upload whose blob is in the store until its row commits.
    pub async fn adopting(&self) -> Result<Held<RwLockReadGuard<'_, ()>>, sqlx::Error> {
        let local = self.local.read().await;
        let remote = self.remote("SELECT pg_advisory_lock_shared($1)", "SELECT pg_advisory_unlock_shared($1)").await?;
        Ok(Held { _local: local, remote })
    }

    /// Held by the collector (and the checks that compare the store with the rows).
    pub async fn collecting(&self) -> Result<Held<RwLockWriteGuard<'_, ()>>, sqlx::Error> {
        let local = self.local.write().await;
        let remote = self.remote("SELECT pg_advisory_lock($1)", "SELECT pg_advisory_unlock($1)").await?;
        Ok(Held { _local: local, remote })
    }

    async fn remote(
        &self,
        lock: &str,
        unlock: &'static str,
    ) -> Result<Option<(PoolConnection<Postgres>, &'static str)>, sqlx::Error> {
        let Some(pool) = &self.shared else { return Ok(None) };
        let mut conn = pool.acquire().await?;
        sqlx::query(lock).bind(COLLECTOR_LOCK).execute(&mut *conn).await?;
        Ok(Some((conn, unlock)))
    }
}

impl<G> Drop for Held<G> {
    fn drop(&mut self) {
        let Some((mut conn, unlock)) = self.remote.take() else { return };
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(async move {
                    if sqlx::query(unlock).bind(COLLECTOR_LOCK).execute(&mut *conn).await.is_err() {
                        // Ending the session releases its advisory locks.
                        conn.close_on_drop();
                    }
                });
            }
            Err(_) => conn.close_on_drop(),
        }
    }
}
