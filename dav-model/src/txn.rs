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

use std::borrow::Cow;
use std::sync::Arc;

use crate::cache::LookupCache;
use crate::db::{pg_arguments, sqlite_arguments, Conn, Handle, Link, Pool, Row, Value};
use crate::path::DavPath;
use crate::resource::Resource;
use crate::{Error, Result};

/// Statements sent to the database together: to SQLite in one trip. Their `?`
/// placeholders take the bound values in order (use plain `?`, never `?NNN`).
///
/// PostgreSQL can't run several statements with values in one message, so there they run
/// one after another on the connection; `BEGIN IMMEDIATE` becomes `BEGIN` and the writer
/// lock (see `db`).
#[derive(Default, Clone)]
pub(crate) struct Batch {
    /// Mostly texts made once (`&'static`), so that building and joining batches copies
    /// no SQL.
    statements: Vec<Cow<'static, str>>,
    /// Where each statement's values start in `values`.
    starts: Vec<usize>,
    /// The values, kept so that a batch can be sent again or joined with others (see
    /// `group/`).
    values: Vec<Value>,
    /// For each statement, when the committer's own connection may skip it (see [`Only`]).
    only: Vec<Option<Only>>,
}

/// When a statement can change or return nothing, by what an earlier statement of its
/// batch (by index) changed: a promise its SQL guard already keeps (`changes()`, mostly).
/// The committer's own connection (`db/direct.rs`) then skips the statement, which is a
/// fifth of a small PUT's work there; elsewhere the statement runs, and its guard makes
/// it do nothing. A statement read by a `changes()` after it must not be skipped unless
/// that reader is too. One exception, without a guard: housekeeping whose rows the
/// batch's writer reads only when it applies (the collection of released inline blobs
/// after a PUT that replaced nothing); run anyway, it collects garbage left by others.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Only {
    /// Only if statement N changed a row (its triggers' rows count).
    IfChanged(usize),
    /// Only if statement N changed nothing.
    IfUnchanged(usize),
}

impl Only {
    /// Whether the statement runs, given what each statement before it changed.
    pub fn holds(self, changed: &[bool]) -> bool {
        match self {
            Only::IfChanged(n) => changed.get(n).copied().unwrap_or(true),
            Only::IfUnchanged(n) => !changed.get(n).copied().unwrap_or(false),
        }
    }

    fn shifted(self, by: usize) -> Only {
        match self {
            Only::IfChanged(n) => Only::IfChanged(n + by),
            Only::IfUnchanged(n) => Only::IfUnchanged(n + by),
        }
    }
}

impl Batch {
    pub fn new() -> Batch {
        Batch::default()
    }

    /// Appends one statement.
    pub fn push(&mut self, statement: impl Into<Cow<'static, str>>) -> &mut Batch {
        self.statements.push(statement.into());
        self.starts.push(self.values.len());
        self.only.push(None);
        self
    }

    /// Says when the statement pushed last may be skipped (see [`Only`]).
    pub fn only(&mut self, when: Only) -> &mut Batch {
        if let Some(last) = self.only.last_mut() {
            *last = Some(when);
        }
        self
    }

    /// Binds the next `?` of the batch.
    pub fn bind(&mut self, value: impl Into<Value>) -> &mut Batch {
        self.values.push(value.into());
        self
    }

    /// Statements in the batch.
    pub fn len(&self) -> usize {
        self.statements.len()
    }

    /// Each statement's text with its values and when it may be skipped. A borrowed text
    /// lives as long as the process, which lets the committer know a statement by the
    /// text's address.
    pub fn each_statement(&self) -> impl Iterator<Item = (&Cow<'static, str>, &[Value], Option<Only>)> {
        self.statements.iter().enumerate().map(|(i, s)| (s, self.values_of(i), self.only[i]))
    }

    /// This batch with `statement` (which binds nothing) run first.
    pub fn after(self, statement: &'static str) -> Batch {
        Batch::new().with(statement).then(self)
    }

    /// `self`, then `statement` (which binds nothing).
    pub fn with(mut self, statement: &'static str) -> Batch {
        self.push(statement);
        self
    }

    /// `self`, then the statements of `next`.
    pub fn then(mut self, next: Batch) -> Batch {
        let offset = self.values.len();
        let shift = self.statements.len();
        self.only.extend(next.only.into_iter().map(|o| o.map(|o| o.shifted(shift))));
        self.statements.extend(next.statements);
        self.starts.extend(next.starts.into_iter().map(|s| s + offset));
        self.values.extend(next.values);
        self
    }

    /// The values of statement `i`.
    fn values_of(&self, i: usize) -> &[Value] {
        let end = self.starts.get(i + 1).copied().unwrap_or(self.values.len());
        &self.values[self.starts[i]..end]
    }

    /// Runs every statement and returns the rows of all of them, in order.
    pub async fn fetch_all(self, conn: &mut (impl Handle + ?Sized)) -> Result<Vec<Row>> {
        Ok(self.fetch_per_statement(conn).await?.into_iter().flatten().collect())
    }

    /// Runs every statement and returns the rows of each, in order: what `group/` needs
    /// to hand the writes it joined their own rows back. A failing statement stops the
    /// batch, and the transaction it was in is left for the caller to roll back.
    pub async fn fetch_per_statement(self, conn: &mut (impl Handle + ?Sized)) -> Result<Vec<Vec<Row>>> {
        match conn.link() {
            Link::Sqlite(c) => self.sqlite(c).await,
            Link::Pg(c) => self.pg(c).await,
        }
    }

    async fn sqlite(self, conn: &mut sqlx::SqliteConnection) -> Result<Vec<Vec<Row>>> {
        use futures_util::TryStreamExt;
        let sql = self.statements.join(";\n");
        // sqlx binds NULL to a `?` without a value: a miscount would go unnoticed.
        debug_assert_eq!(crate::db::sql::placeholders(&sql), self.values.len(), "values bound to: {sql}");
        let args = sqlite_arguments(&self.values)?;
        let mut out = vec![Vec::new()];
        // Deprecated only because other drivers can't run several statements at once;
        // every batch on SQLite relies on its doing so, in one trip to its thread.
        #[allow(deprecated)]
        let mut results = sqlx::query_with(&sql, args).fetch_many(conn);
        while let Some(item) = results.try_next().await? {
            match item {
                sqlx::Either::Left(_done) => out.push(Vec::new()),
                sqlx::Either::Right(row) => out.last_mut().expect("one list at least").push(Row::Sqlite(row)),
            }
        }
        out.pop();
        Ok(out)
    }

    async fn pg(self, conn: &mut sqlx::PgConnection) -> Result<Vec<Vec<Row>>> {
        let mut out = Vec::with_capacity(self.statements.len());
        for (i, statement) in self.statements.iter().enumerate() {
            let values = self.values_of(i);
            debug_assert_eq!(crate::db::sql::placeholders(statement), values.len(), "values bound to: {statement}");
            if statement == "BEGIN IMMEDIATE" {
                sqlx::query("BEGIN").execute(&mut *conn).await?;
                crate::db::pg_lock_writer(conn).await?;
                out.push(Vec::new());
                continue;
            }
            let sql = crate::db::sql::numbered(statement);
            let rows = sqlx::query_with(&sql, pg_arguments(values)?).fetch_all(&mut *conn).await?;
            out.push(rows.into_iter().map(Row::Pg).collect());
        }
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
    conn: Option<Conn>,
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
    async fn start(pool: &Pool, lookups: &Arc<LookupCache>, phase: Phase) -> Result<WriteTx> {
        let conn = pool.acquire().await?;
        Ok(WriteTx { conn: Some(conn), phase, lookups: lookups.clone(), generation: lookups.generation() })
    }

    /// `BEGIN IMMEDIATE` and `reads`, in one trip. IMMEDIATE takes the write lock at once,
    /// so a transaction that read a snapshot can always write on it (no SQLITE_BUSY on
    /// the upgrade when another process, such as `wharf user`, wrote meanwhile).
    pub async fn begin(pool: &Pool, lookups: &Arc<LookupCache>, reads: Batch) -> Result<(WriteTx, Vec<Row>)> {
        let mut tx = WriteTx::start(pool, lookups, Phase::Reading).await?;
        let rows = reads.after("BEGIN IMMEDIATE").fetch_all(tx.conn()?).await?;
        Ok((tx, rows))
    }

    /// The connection, for the rare check that needs another query in between (an `If`
    /// header naming another resource).
    pub fn conn(&mut self) -> Result<&mut Conn> {
        match self.conn.as_mut() {
            Some(c) => Ok(c),
            None => Err(Error::Internal("write transaction already closed".into())),
        }
    }

    /// `writes` and `COMMIT`, in one trip; returns the rows the writes returned. When a
    /// write fails, SQLite's thread stops before the COMMIT and the drop rolls back.
    pub async fn commit(&mut self, mut writes: Batch) -> Result<Vec<Row>> {
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
pub(crate) async fn rollback(conn: &mut Conn) {
    if let Err(e) = crate::db::query("ROLLBACK").execute(&mut *conn).await {
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
        crate::db::query_as::<(i64,)>("SELECT modified_ns FROM resources WHERE id = 1")
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
        assert_eq!(Row::get::<i64>(&rows[0], 0), 7);
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
        let (_dir, repo) = Repository::scratch_sqlite().await;
        let (tx, elsewhere) = committed_beside_a_cached_lookup(&repo).await;
        drop(tx);
        assert!(repo.lookups.get(&elsewhere).is_none());
    }

    #[tokio::test]
    async fn a_finished_transaction_keeps_the_other_cached_lookups() {
        let (_dir, repo) = Repository::scratch_sqlite().await;
        let (tx, elsewhere) = committed_beside_a_cached_lookup(&repo).await;
        tx.finish(vec![]);
        assert!(repo.lookups.get(&elsewhere).is_some());
    }
}
