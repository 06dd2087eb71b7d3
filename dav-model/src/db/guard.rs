//! The collector's guard: uploads hold it shared from "the blob is in the store" to "a row
//! references it", and the garbage collector holds it exclusively, so the collector never
//! deletes a blob an upload is about to reference (the upload may have found the blob
//! already stored, and skipped storing it again).
//!
//! Within one process a read-write lock is enough. Servers sharing a PostgreSQL database
//! and a bucket also take PostgreSQL's advisory lock of the same name, shared or exclusive,
//! so a collector on one node waits for uploads on every node. The advisory lock belongs to
//! a transaction on a connection of the guard's own pool: dropping the guard rolls the
//! transaction back, which releases the lock even when the wait for it was cut short (a
//! request cancelled meanwhile), and uploads holding it never take the connections their
//! own writes need.

use sqlx::{PgPool, Postgres, Transaction};
use tokio::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

/// The advisory lock's key ("Wharf" and 2; the writer's is 1).
const COLLECTOR_LOCK: i64 = 0x5768_6172_6602;

#[derive(Default)]
pub(crate) struct CollectorGuard {
    local: RwLock<()>,
    /// Connections for the advisory lock, on a database other servers share.
    shared: Option<PgPool>,
}

/// The guard, held; dropping it releases it.
pub(crate) struct Held<G> {
    _local: G,
    _remote: Option<Transaction<'static, Postgres>>,
}

impl CollectorGuard {
    pub fn shared(pool: PgPool) -> CollectorGuard {
        CollectorGuard { local: RwLock::new(()), shared: Some(pool) }
    }

    /// Held by an upload whose blob is in the store until its row commits.
    pub async fn adopting(&self) -> Result<Held<RwLockReadGuard<'_, ()>>, sqlx::Error> {
        let local = self.local.read().await;
        let remote = self.remote("SELECT pg_advisory_xact_lock_shared($1)").await?;
        Ok(Held { _local: local, _remote: remote })
    }

    /// Held by the collector, and by repairs.
    pub async fn collecting(&self) -> Result<Held<RwLockWriteGuard<'_, ()>>, sqlx::Error> {
        let local = self.local.write().await;
        let remote = self.remote("SELECT pg_advisory_xact_lock($1)").await?;
        Ok(Held { _local: local, _remote: remote })
    }

    /// Held by a check that changes nothing: it keeps this process's collector and uploads
    /// out of its way, but not other servers', whose moving state it confirms again finding
    /// by finding (see `fsck`), rather than stalling every node's uploads while it lists.
    pub async fn checking(&self) -> RwLockWriteGuard<'_, ()> {
        self.local.write().await
    }

    async fn remote(&self, lock: &str) -> Result<Option<Transaction<'static, Postgres>>, sqlx::Error> {
        let Some(pool) = &self.shared else { return Ok(None) };
        let mut tx = pool.begin().await?;
        sqlx::query(lock).bind(COLLECTOR_LOCK).execute(&mut *tx).await?;
        Ok(Some(tx))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use wharf_backends::Durability;

    const WAIT: Duration = Duration::from_millis(300);

    /// Two servers' connections to one new PostgreSQL database.
    async fn two_servers() -> (crate::db::Opened, crate::db::Opened) {
        let url = crate::testing::postgres_database().await.expect("WHARF_TEST_POSTGRES: a PostgreSQL server");
        let a = crate::db::open(&url, Durability::Process).await.expect("server a");
        let b = crate::db::open(&url, Durability::Process).await.expect("server b");
        (a, b)
    }

    #[tokio::test]
    #[ignore = "needs PostgreSQL (WHARF_TEST_POSTGRES): run by the test command's second pass"]
    async fn a_collector_on_one_server_waits_for_an_upload_adopting_on_another() {
        let (a, b) = two_servers().await;
        let adopting = a.collector.adopting().await.unwrap();
        let beside = tokio::time::timeout(WAIT, b.collector.adopting()).await;
        assert!(beside.expect("uploads share the guard").is_ok());
        assert!(tokio::time::timeout(WAIT, b.collector.collecting()).await.is_err(), "collected beside an upload");
        drop(adopting);
        let collecting = tokio::time::timeout(Duration::from_secs(5), b.collector.collecting()).await;
        assert!(collecting.expect("the guard came free").is_ok());
    }

    #[tokio::test]
    #[ignore = "needs PostgreSQL (WHARF_TEST_POSTGRES): run by the test command's second pass"]
    async fn write_transactions_of_two_servers_take_turns() {
        let (a, b) = two_servers().await;
        let first = a.write.begin().await.unwrap();
        assert!(tokio::time::timeout(WAIT, b.write.begin()).await.is_err(), "two writers at once");
        drop(first);
        let second = tokio::time::timeout(Duration::from_secs(5), b.write.begin()).await;
        assert!(second.expect("the writer lock came free").is_ok());
    }
}
