//! Write transactions in two round trips to SQLite's thread.
//!
//! sqlx runs each SQLite connection on a thread of its own, and every statement is a
//! hand-off to that thread and back: two context switches or more, which on the machines
//! measured (BENCHMARKS.md, "FTP") cost several times what the statement itself does. A PUT
//! written statement by statement took nine such trips; an FTP upload that also sets the
//! file's time took sixteen. A [`Batch`] carries several statements in one trip, and a
//! [`WriteTx`] is a transaction that opens with a batch of reads and closes with a batch of
//! writes, so the decision between them is still made in Rust with everything the reads
//! returned, on a snapshot that nothing can change before the commit.

use std::sync::Arc;

use sqlx::pool::PoolConnection;
use sqlx::sqlite::{SqliteArguments, SqliteRow};
use sqlx::{Arguments, Encode, Sqlite, SqliteConnection, SqlitePool, Type};

use crate::cache::LookupCache;
use crate::{Error, Result};

/// Statements sent to SQLite in one trip. Their `?` placeholders take the bound values in
/// order across the whole batch (use plain `?`, never `?NNN`, which would count from the
/// batch's first value).
#[derive(Default)]
pub(crate) struct Batch {
    sql: String,
    args: SqliteArguments<'static>,
    /// The first value that could not be encoded, reported when the batch runs.
    error: Option<String>,
}

impl Batch {
    pub fn new() -> Batch {
        Batch::default()
    }

    /// Appends one statement.
    pub fn push(&mut self, statement: &str) -> &mut Batch {
        if !self.sql.is_empty() {
            self.sql.push_str(";\n");
        }
        self.sql.push_str(statement);
        self
    }

    /// Binds the next `?` of the batch.
    pub fn bind<T>(&mut self, value: T) -> &mut Batch
    where
        T: 'static + Send + Encode<'static, Sqlite> + Type<Sqlite>,
    {
        if let Err(e) = self.args.add(value) {
            self.error.get_or_insert(e.to_string());
        }
        self
    }

    /// This batch with `statement` (which binds nothing) run first.
    fn after(self, statement: &str) -> Batch {
        let sql = if self.sql.is_empty() { statement.to_owned() } else { format!("{statement};\n{}", self.sql) };
        Batch { sql, ..self }
    }

    /// Runs every statement and returns the rows of all of them, in order.
    pub async fn fetch_all(self, conn: &mut SqliteConnection) -> Result<Vec<SqliteRow>> {
        if let Some(e) = self.error {
            return Err(Error::Internal(format!("a value could not be bound: {e}")));
        }
        // fetch_all, never fetch_one or fetch_optional: those stop reading after the first
        // row, and SQLite's thread then stops executing the statements after it.
        Ok(sqlx::query_with(&self.sql, self.args).fetch_all(conn).await?)
    }
}

/// A write transaction on the single write connection. Dropping it before
/// [`WriteTx::commit`] succeeded rolls it back; the connection stays held until then, so
/// whatever the owner does between the commit and the drop (refreshing the lookup cache
/// with the rows it wrote) can't be overtaken by a later write.
pub(crate) struct WriteTx {
    conn: Option<PoolConnection<Sqlite>>,
    /// The writes were sent: from then on, only a successful commit says what happened.
    writing: bool,
    committed: bool,
    /// Emptied when the transaction is abandoned after its writes were sent: that commit
    /// may or may not have happened, so no cached lookup can be trusted to predate it.
    lookups: Arc<LookupCache>,
}

impl WriteTx {
    /// `BEGIN IMMEDIATE` and `reads`, in one trip. IMMEDIATE takes the write lock at once,
    /// so a transaction that read a snapshot can always write on it (no SQLITE_BUSY on
    /// the upgrade when another process, such as `wharf user`, wrote meanwhile).
    pub async fn begin(
        pool: &SqlitePool,
        lookups: &Arc<LookupCache>,
        reads: Batch,
    ) -> Result<(WriteTx, Vec<SqliteRow>)> {
        let conn = pool.acquire().await?;
        let mut tx = WriteTx { conn: Some(conn), writing: false, committed: false, lookups: lookups.clone() };
        let rows = reads.after("BEGIN IMMEDIATE").fetch_all(tx.conn()?).await?;
        Ok((tx, rows))
    }

    /// `BEGIN IMMEDIATE`, `writes` and `COMMIT`, all in one trip: for writes whose
    /// statements carry their own conditions, so nothing needs deciding in between.
    pub async fn once(
        pool: &SqlitePool,
        lookups: &Arc<LookupCache>,
        mut writes: Batch,
    ) -> Result<(WriteTx, Vec<SqliteRow>)> {
        let conn = pool.acquire().await?;
        let mut tx = WriteTx { conn: Some(conn), writing: true, committed: false, lookups: lookups.clone() };
        writes.push("COMMIT");
        let rows = writes.after("BEGIN IMMEDIATE").fetch_all(tx.conn()?).await?;
        tx.committed = true;
        Ok((tx, rows))
    }

    /// The connection, for the rare check that needs another query in between (an `If`
    /// header naming another resource).
    pub fn conn(&mut self) -> Result<&mut SqliteConnection> {
        match self.conn.as_mut() {
            Some(c) => Ok(&mut **c),
            None => Err(Error::Internal("write transaction already closed".into())),
        }
    }

    /// `writes` and `COMMIT`, in one trip; returns the rows the writes returned. When a
    /// write fails, SQLite's thread stops before the COMMIT and the drop rolls back.
    pub async fn commit(&mut self, mut writes: Batch) -> Result<Vec<SqliteRow>> {
        writes.push("COMMIT");
        self.writing = true;
        let rows = writes.fetch_all(self.conn()?).await?;
        self.committed = true;
        Ok(rows)
    }
}

impl Drop for WriteTx {
    fn drop(&mut self) {
        let Some(mut conn) = self.conn.take() else { return };
        if self.committed {
            return;
        }
        let lookups = self.writing.then(|| self.lookups.clone());
        match tokio::runtime::Handle::try_current() {
            // The ROLLBACK queues behind whatever the connection's thread is still running
            // for this transaction; only then is the outcome final and the cache emptied.
            Ok(rt) => {
                rt.spawn(async move {
                    if let Err(e) = sqlx::query("ROLLBACK").execute(&mut *conn).await {
                        // "no transaction is active": the batch's COMMIT had run after all.
                        tracing::debug!(%e, "rollback of an abandoned write transaction");
                    }
                    if let Some(lookups) = lookups {
                        lookups.invalidate();
                    }
                });
            }
            // No runtime to roll back on: closing the connection rolls back instead.
            Err(_) => {
                conn.close_on_drop();
                if let Some(lookups) = lookups {
                    lookups.invalidate();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Config, Repository};

    async fn repo() -> (tempfile::TempDir, Repository) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = Arc::new(wharf_backends::MemoryStore::new());
        (dir, Repository::with_store(&url, store, Config::default()).await.unwrap())
    }

    async fn root_modified(repo: &Repository) -> i64 {
        sqlx::query_as::<_, (i64,)>("SELECT modified_ns FROM resources WHERE id = 1")
            .fetch_one(&repo.read)
            .await
            .unwrap()
            .0
    }

    fn touch_root() -> Batch {
        let mut b = Batch::new();
        b.push("UPDATE resources SET modified_ns = ? WHERE id = 1").bind(42_i64);
        b
    }

    #[tokio::test]
    async fn reads_and_writes_share_one_transaction_with_the_reads_rows_returned() {
        let (_dir, repo) = repo().await;
        let mut reads = Batch::new();
        reads.push("SELECT ?").bind(7_i64);
        let (mut tx, rows) = WriteTx::begin(&repo.write, &repo.lookups, reads).await.unwrap();
        assert_eq!(sqlx::Row::get::<i64, _>(&rows[0], 0), 7);
        tx.commit(touch_root()).await.unwrap();
        drop(tx);
        assert_eq!(root_modified(&repo).await, 42);
    }

    #[tokio::test]
    async fn a_failed_write_batch_stops_before_its_commit_and_is_rolled_back() {
        let (_dir, repo) = repo().await;
        let before = root_modified(&repo).await;
        let (mut tx, _) = WriteTx::begin(&repo.write, &repo.lookups, Batch::new()).await.unwrap();
        let mut writes = touch_root();
        // Id 1 is the root's: the insert fails after the update ran.
        writes.push(
            "INSERT INTO resources (id, parent_id, name, is_collection, etag, created_ns, modified_ns) \
             VALUES (1, NULL, 'x', 1, '', 0, 0)",
        );
        assert!(tx.commit(writes).await.is_err());
        drop(tx);
        // The next transaction waits for the rollback, which frees the one write connection.
        let (tx, _) = WriteTx::begin(&repo.write, &repo.lookups, Batch::new()).await.unwrap();
        drop(tx);
        assert_eq!(root_modified(&repo).await, before);
    }

    #[tokio::test]
    async fn a_transaction_dropped_before_its_commit_leaves_the_connection_usable() {
        let (_dir, repo) = repo().await;
        let (tx, _) = WriteTx::begin(&repo.write, &repo.lookups, Batch::new()).await.unwrap();
        drop(tx);
        let (mut tx, _) = WriteTx::begin(&repo.write, &repo.lookups, Batch::new()).await.unwrap();
        tx.commit(touch_root()).await.unwrap();
        drop(tx);
        assert_eq!(root_modified(&repo).await, 42);
    }
}
