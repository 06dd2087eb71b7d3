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

use sqlx::error::BoxDynError;
use sqlx::pool::PoolConnection;
use sqlx::sqlite::{SqliteArguments, SqliteRow};
use sqlx::{Arguments, Encode, Sqlite, SqliteConnection, SqlitePool, Type};

use crate::cache::LookupCache;
use crate::path::DavPath;
use crate::resource::Resource;
use crate::{Error, Result};

/// Statements sent to SQLite in one trip. Their `?` placeholders take the bound values in
/// order across the whole batch (use plain `?`, never `?NNN`, which would count from the
/// batch's first value).
#[derive(Default, Clone)]
pub(crate) struct Batch {
    sql: String,
    statements: usize,
    /// The values, kept so that a batch can be sent again or joined with others (see
    /// `group.rs`): each adds its value to the arguments when the batch runs.
    binds: Vec<Bind>,
}

type Bind = Arc<dyn Fn(&mut SqliteArguments<'static>) -> std::result::Result<(), BoxDynError> + Send + Sync>;

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
        self.statements += 1;
        self
    }

    /// Binds the next `?` of the batch.
    pub fn bind<T>(&mut self, value: T) -> &mut Batch
    where
        T: 'static + Send + Sync + Clone + Encode<'static, Sqlite> + Type<Sqlite>,
    {
        self.binds.push(Arc::new(move |args| args.add(value.clone())));
        self
    }

    /// Statements in the batch.
    pub fn len(&self) -> usize {
        self.statements
    }

    /// This batch with `statement` (which binds nothing) run first.
    pub fn after(self, statement: &str) -> Batch {
        Batch::new().with(statement).then(self)
    }

    /// `self`, then `statement` (which binds nothing).
    pub fn with(mut self, statement: &str) -> Batch {
        self.push(statement);
        self
    }

    /// `self`, then the statements of `next`.
    pub fn then(mut self, next: Batch) -> Batch {
        if next.sql.is_empty() {
            return self;
        }
        if !self.sql.is_empty() {
            self.sql.push_str(";\n");
        }
        self.sql.push_str(&next.sql);
        self.statements += next.statements;
        self.binds.extend(next.binds);
        self
    }

    fn arguments(&self) -> Result<SqliteArguments<'static>> {
        let mut args = SqliteArguments::default();
        for bind in &self.binds {
            bind(&mut args).map_err(|e| Error::Internal(format!("a value could not be bound: {e}")))?;
        }
        // sqlx binds NULL to a `?` without a value: a miscount would go unnoticed.
        debug_assert_eq!(self.sql.matches('?').count(), args.len(), "values bound to: {}", self.sql);
        Ok(args)
    }

    /// Runs every statement and returns the rows of all of them, in order.
    pub async fn fetch_all(self, conn: &mut SqliteConnection) -> Result<Vec<SqliteRow>> {
        let args = self.arguments()?;
        // fetch_all, never fetch_one or fetch_optional: those stop reading after the first
        // row, and SQLite's thread then stops executing the statements after it.
        Ok(sqlx::query_with(&self.sql, args).fetch_all(conn).await?)
    }

    /// Runs every statement and returns the rows of each, in order: what `group.rs` needs
    /// to hand the writes it joined their own rows back.
    pub async fn fetch_per_statement(self, conn: &mut SqliteConnection) -> Result<Vec<Vec<SqliteRow>>> {
        use futures_util::TryStreamExt;
        let args = self.arguments()?;
        let mut out = vec![Vec::new()];
        // Deprecated only because other drivers can't run several statements at once;
        // every batch here relies on SQLite's doing so.
        #[allow(deprecated)]
        let mut results = sqlx::query_with(&self.sql, args).fetch_many(conn);
        while let Some(item) = results.try_next().await? {
            match item {
                sqlx::Either::Left(_done) => out.push(Vec::new()),
                sqlx::Either::Right(row) => out.last_mut().expect("one list at least").push(row),
            }
        }
        out.pop();
        Ok(out)
    }
}

/// A write transaction on the single write connection. It holds that connection until it
/// is dropped, so what its owner does after the commit (storing the rows it wrote in the
/// lookup cache, [`WriteTx::finish`]) can't be overtaken by a later write of this process.
///
/// Dropped before its commit, it rolls back; dropped after its writes were sent but not
/// finished (a request cancelled mid-trip, an error after the commit), it empties the
/// lookup cache, since what was committed is then unknown.
pub(crate) struct WriteTx {
    conn: Option<PoolConnection<Sqlite>>,
    phase: Phase,
    lookups: Arc<LookupCache>,
    /// The cache's generation when the connection was ours: a change since (another
    /// process's, seen by the authenticator's watch) makes `finish` drop the rows' paths
    /// instead of storing rows that may predate it.
    generation: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Reading,
    Writing,
    Committed,
    Finished,
}

impl WriteTx {
    async fn start(pool: &SqlitePool, lookups: &Arc<LookupCache>, phase: Phase) -> Result<WriteTx> {
        let conn = pool.acquire().await?;
        Ok(WriteTx { conn: Some(conn), phase, lookups: lookups.clone(), generation: lookups.generation() })
    }

    /// `BEGIN IMMEDIATE` and `reads`, in one trip. IMMEDIATE takes the write lock at once,
    /// so a transaction that read a snapshot can always write on it (no SQLITE_BUSY on
    /// the upgrade when another process, such as `wharf user`, wrote meanwhile).
    pub async fn begin(
        pool: &SqlitePool,
        lookups: &Arc<LookupCache>,
        reads: Batch,
    ) -> Result<(WriteTx, Vec<SqliteRow>)> {
        let mut tx = WriteTx::start(pool, lookups, Phase::Reading).await?;
        let rows = reads.after("BEGIN IMMEDIATE").fetch_all(tx.conn()?).await?;
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
        self.phase = Phase::Writing;
        let rows = writes.fetch_all(self.conn()?).await?;
        self.phase = Phase::Committed;
        Ok(rows)
    }

    /// After the commit: `fresh` are the rows the transaction changed, as written (or none
    /// at a path it deleted); the cache takes them and the connection is released.
    pub fn finish(mut self, fresh: Vec<(DavPath, Option<Resource>)>) {
        if self.phase == Phase::Committed {
            self.lookups.refresh(self.generation, fresh);
            self.phase = Phase::Finished;
        }
    }
}

impl Drop for WriteTx {
    fn drop(&mut self) {
        let Some(mut conn) = self.conn.take() else { return };
        let lookups = self.lookups.clone();
        match self.phase {
            Phase::Finished => {}
            Phase::Committed => lookups.invalidate(),
            Phase::Reading | Phase::Writing => {
                let forget = self.phase == Phase::Writing;
                match tokio::runtime::Handle::try_current() {
                    // The ROLLBACK queues behind whatever the connection's thread is still
                    // running for this transaction; only then is the outcome final.
                    Ok(rt) => {
                        rt.spawn(async move {
                            rollback(&mut conn).await;
                            if forget {
                                lookups.invalidate();
                            }
                        });
                    }
                    // No runtime to roll back on: closing the connection rolls back instead.
                    Err(_) => {
                        conn.close_on_drop();
                        if forget {
                            lookups.invalidate();
                        }
                    }
                }
            }
        }
    }
}

/// Rolls back an abandoned transaction. "No transaction is active" means its COMMIT ran
/// after all; any other failure leaves the transaction's state unknown, so the connection
/// is closed rather than handed to the next writer still inside it.
pub(crate) async fn rollback(conn: &mut PoolConnection<Sqlite>) {
    if let Err(e) = sqlx::query("ROLLBACK").execute(&mut **conn).await {
        let idle = e.as_database_error().is_some_and(|d| d.message().contains("no transaction is active"));
        if !idle {
            tracing::warn!(%e, "rollback of an abandoned write transaction failed; closing its connection");
            conn.close_on_drop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Repository;

    async fn root_modified(repo: &Repository) -> i64 {
        sqlx::query_as::<_, (i64,)>("SELECT modified_ns FROM resources WHERE id = 1")
            .fetch_one(&repo.read)
            .await
            .unwrap()
            .0
    }

    /// A transaction that read nothing yet.
    async fn begin(repo: &Repository) -> WriteTx {
        WriteTx::begin(&repo.write, &repo.lookups, Batch::new()).await.unwrap().0
    }

    /// A lookup cached beside the transaction's work, and a transaction that committed.
    async fn committed_beside_a_cached_lookup(repo: &Repository) -> (WriteTx, DavPath) {
        let elsewhere = DavPath::parse("/elsewhere").unwrap();
        repo.lookups.insert(&elsewhere, repo.lookups.generation(), None);
        let mut tx = begin(repo).await;
        tx.commit(touch_root()).await.unwrap();
        (tx, elsewhere)
    }

    fn touch_root() -> Batch {
        let mut b = Batch::new();
        b.push("UPDATE resources SET modified_ns = ? WHERE id = 1").bind(42_i64);
        b
    }

    #[tokio::test]
    async fn reads_and_writes_share_one_transaction_with_the_reads_rows_returned() {
        let (_dir, repo) = Repository::scratch().await;
        let mut reads = Batch::new();
        reads.push("SELECT ?").bind(7_i64);
        let (mut tx, rows) = WriteTx::begin(&repo.write, &repo.lookups, reads).await.unwrap();
        assert_eq!(sqlx::Row::get::<i64, _>(&rows[0], 0), 7);
        tx.commit(touch_root()).await.unwrap();
        tx.finish(vec![]);
        assert_eq!(root_modified(&repo).await, 42);
    }

    #[tokio::test]
    async fn a_failed_write_batch_stops_before_its_commit_and_is_rolled_back() {
        let (_dir, repo) = Repository::scratch().await;
        let before = root_modified(&repo).await;
        let mut tx = begin(&repo).await;
        let mut writes = touch_root();
        // Id 1 is the root's: the insert fails after the update ran.
        writes.push(
            "INSERT INTO resources (id, parent_id, name, is_collection, etag, created_ns, modified_ns) \
             VALUES (1, NULL, 'x', 1, '', 0, 0)",
        );
        assert!(tx.commit(writes).await.is_err());
        drop(tx);
        // The next transaction waits for the rollback, which frees the one write connection.
        drop(begin(&repo).await);
        assert_eq!(root_modified(&repo).await, before);
    }

    #[tokio::test]
    async fn a_transaction_dropped_before_its_commit_leaves_the_connection_usable() {
        let (_dir, repo) = Repository::scratch().await;
        drop(begin(&repo).await);
        let mut tx = begin(&repo).await;
        tx.commit(touch_root()).await.unwrap();
        tx.finish(vec![]);
        assert_eq!(root_modified(&repo).await, 42);
    }

    #[tokio::test]
    async fn a_transaction_committed_but_not_finished_empties_the_lookup_cache() {
        let (_dir, repo) = Repository::scratch().await;
        let (tx, elsewhere) = committed_beside_a_cached_lookup(&repo).await;
        drop(tx);
        assert!(repo.lookups.get(&elsewhere).is_none());
    }

    #[tokio::test]
    async fn a_finished_transaction_keeps_the_other_cached_lookups() {
        let (_dir, repo) = Repository::scratch().await;
        let (tx, elsewhere) = committed_beside_a_cached_lookup(&repo).await;
        tx.finish(vec![]);
        assert!(repo.lookups.get(&elsewhere).is_some());
    }
}
