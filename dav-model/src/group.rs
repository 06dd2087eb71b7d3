//! Group commit: guarded writes that arrive together share one transaction and one trip
//! to SQLite's thread.
//!
//! A plain write (a new file's PUT, a file's times) is one batch of statements that carry
//! their own conditions ([`crate::txn`]), so it needs no decision between its reads and
//! its writes. Each used to cost a trip to the write connection's thread and a commit of
//! its own; under many concurrent small uploads those dominated the writer's time. Here a
//! single task takes every batch waiting for it and runs them as one:
//! `BEGIN IMMEDIATE; batch 1; batch 2; …; COMMIT`. Running them in one transaction in the
//! order they arrived is the same as running them one after another, since each batch's
//! guards see what the batches before it wrote.
//!
//! A write is answered only after the transaction holding it committed. If any statement
//! of a group fails, the group is rolled back and each of its batches runs again alone, so
//! one failing write never fails the others and each gets its own error.
//!
//! The task holds the write connection from `BEGIN` until the lookup cache has the rows
//! every batch wrote (in order: a later batch's row for a path wins), as [`WriteTx`] does
//! for a single writer.
//!
//! [`WriteTx`]: crate::txn::WriteTx

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use crate::cache::LookupCache;
use crate::db::direct::{Direct, Spec};
use crate::db::{Conn, Pool, Row};
use crate::path::DavPath;
use crate::resource::Resource;
use crate::txn::{rollback, Batch};
use crate::{Error, Result};

/// Most batches in one transaction: bounds how long the first of them waits, and how
/// many texts a group's joined statements can have (each is prepared once and cached by
/// its text; see `Repository::with_store`).
pub(crate) const MAX_GROUP: usize = 16;

/// The rows a write leaves at each path, for the lookup cache; `None` when it can't tell
/// (the cache is then emptied).
pub(crate) type Fresh = Option<Vec<(DavPath, Option<Resource>)>>;

type FreshOf = Box<dyn FnOnce(&[Row]) -> Fresh + Send>;

struct Job {
    writes: Batch,
    fresh: FreshOf,
    reply: oneshot::Sender<Result<Vec<Row>>>,
}

/// The queue of writes waiting for the committing task.
pub(crate) struct Committer {
    queue: mpsc::UnboundedSender<Job>,
}

impl Committer {
    /// Starts the committer: on an SQLite file, a thread with a connection of its own
    /// (`db/direct.rs`); otherwise a task on the write pool. It ends when the committer
    /// is dropped.
    pub fn start(pool: Pool, lookups: Arc<LookupCache>, direct: Option<Spec>) -> Committer {
        let (queue, jobs) = mpsc::unbounded_channel();
        match direct {
            Some(spec) => {
                let rt = tokio::runtime::Handle::current();
                let started = std::thread::Builder::new()
                    .name("wharf-committer".into())
                    .spawn(move || run_direct(jobs, pool, lookups, spec, rt));
                if let Err(e) = started {
                    // Jobs then fail with "the write queue is closed".
                    tracing::error!(%e, "the committer's thread did not start");
                }
            }
            None => {
                tokio::spawn(run(jobs, pool, lookups));
            }
        }
        Committer { queue }
    }

    /// Runs `writes` (statements guarded by their own conditions, without `BEGIN` or
    /// `COMMIT`) in a committed transaction and returns their rows. `fresh` tells the
    /// lookup cache what the rows mean; it runs while the write connection is held.
    pub async fn write(&self, writes: Batch, fresh: impl FnOnce(&[Row]) -> Fresh + Send + 'static) -> Result<Vec<Row>> {
        let (reply, answer) = oneshot::channel();
        let job = Job { writes, fresh: Box::new(fresh), reply };
        self.queue.send(job).map_err(|_| Error::Internal("the write queue is closed".into()))?;
        answer.await.map_err(|_| Error::Internal("a queued write was dropped".into()))?
    }
}

async fn run(mut jobs: mpsc::UnboundedReceiver<Job>, pool: Pool, lookups: Arc<LookupCache>) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    while jobs.recv_many(&mut group, MAX_GROUP).await > 0 {
        let taken = std::mem::take(&mut group);
        match pool.acquire().await {
            Ok(mut conn) => commit(&mut conn, &lookups, taken).await,
            Err(e) => {
                let message = e.to_string();
                for job in taken {
                    let _ = job.reply.send(Err(Error::Internal(format!("no write connection: {message}"))));
                }
            }
        }
    }
}

/// The committer's thread: each group is written on its own connection (opened at the
/// first group, and again after one failed), while it holds the write pool's connection
/// so that nothing else writes meanwhile.
fn run_direct(
    mut jobs: mpsc::UnboundedReceiver<Job>,
    pool: Pool,
    lookups: Arc<LookupCache>,
    spec: Spec,
    rt: tokio::runtime::Handle,
) {
    let mut conn: Option<Direct> = None;
    while let Some(first) = jobs.blocking_recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match jobs.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        let token = rt.block_on(pool.acquire());
        let direct = match (token.as_ref(), conn.take()) {
            (Err(e), _) => Err(Error::Internal(format!("no write connection: {e}"))),
            (Ok(_), Some(open)) => Ok(open),
            (Ok(_), None) => Direct::open(&spec),
        };
        match direct {
            Ok(direct) => {
                if commit_direct(&direct, &lookups, group) {
                    conn = Some(direct);
                }
            }
            Err(e) => {
                let message = e.to_string();
                for job in group {
                    let _ = job.reply.send(Err(Error::Internal(message.clone())));
                }
            }
        }
        // A pool connection goes back to its pool through a task: spawned in the runtime.
        let _runtime = rt.enter();
        drop(token);
    }
}

/// [`commit`] on the committer's own connection. `false` when the connection is in a
/// state it can't be trusted to leave (a failed rollback): it is then closed.
fn commit_direct(conn: &Direct, lookups: &LookupCache, group: Vec<Job>) -> bool {
    let generation = lookups.generation();
    if group.len() > 1 {
        match in_transaction(conn, group.iter().map(|j| &j.writes)) {
            Ok(rows) => {
                answer(lookups, generation, group.into_iter().zip(rows));
                return true;
            }
            Err(e) => {
                tracing::debug!(%e, writes = group.len(), "a group commit failed; its writes run alone");
                if !rolled_back(conn) {
                    fail_all(group, &e);
                    return false;
                }
            }
        }
    }
    for job in group {
        let generation = lookups.generation();
        match in_transaction(conn, std::iter::once(&job.writes)) {
            Ok(mut rows) => answer(lookups, generation, std::iter::once((job, rows.pop().unwrap_or_default()))),
            Err(e) => {
                let _ = job.reply.send(Err(e));
                if !rolled_back(conn) {
                    return false;
                }
            }
        }
    }
    true
}

/// `BEGIN IMMEDIATE`, the batches, `COMMIT`; the rows of each batch.
fn in_transaction<'a>(conn: &Direct, batches: impl Iterator<Item = &'a Batch>) -> Result<Vec<Vec<Row>>> {
    conn.execute("BEGIN IMMEDIATE")?;
    let rows = batches.map(|b| Ok(conn.run(b)?.into_iter().flatten().collect())).collect::<Result<Vec<_>>>()?;
    conn.execute("COMMIT")?;
    Ok(rows)
}

fn rolled_back(conn: &Direct) -> bool {
    match conn.execute("ROLLBACK") {
        Ok(()) => true,
        // COMMIT itself failed after SQLite had already ended the transaction.
        Err(e) if e.to_string().contains("no transaction is active") => true,
        Err(e) => {
            tracing::error!(%e, "the committer's connection could not roll back; it is reopened");
            false
        }
    }
}

fn fail_all(group: Vec<Job>, e: &Error) {
    for job in group {
        let _ = job.reply.send(Err(Error::Internal(format!("the group's transaction failed: {e}"))));
    }
}

/// Commits `group` as one transaction, or each of its batches alone if that fails.
async fn commit(conn: &mut Conn, lookups: &LookupCache, group: Vec<Job>) {
    let generation = lookups.generation();
    if group.len() > 1 {
        let sizes: Vec<usize> = group.iter().map(|j| j.writes.len()).collect();
        let joined = group.iter().fold(Batch::new().with("BEGIN IMMEDIATE"), |b, j| b.then(j.writes.clone()));
        match joined.with("COMMIT").fetch_per_statement(conn).await {
            Ok(per_statement) => {
                let rows = split(per_statement, &sizes);
                return answer(lookups, generation, group.into_iter().zip(rows));
            }
            Err(e) => {
                tracing::debug!(%e, writes = group.len(), "a group commit failed; its writes run alone");
                rollback(conn).await;
            }
        }
    }
    for job in group {
        let generation = lookups.generation();
        let alone = job.writes.clone().after("BEGIN IMMEDIATE").with("COMMIT");
        match alone.fetch_all(conn).await {
            Ok(rows) => answer(lookups, generation, std::iter::once((job, rows))),
            Err(e) => {
                rollback(conn).await;
                let _ = job.reply.send(Err(e));
            }
        }
    }
}

/// The rows of each batch, from the rows of each statement of the joined batch (`BEGIN`,
/// the batches of `sizes` statements each, `COMMIT`).
fn split(per_statement: Vec<Vec<Row>>, sizes: &[usize]) -> Vec<Vec<Row>> {
    let mut statements = per_statement.into_iter().skip(1);
    sizes.iter().map(|&n| statements.by_ref().take(n).flatten().collect()).collect()
}

/// After the commit: the cache learns every batch's rows in order, then each writer gets
/// its own.
fn answer(lookups: &LookupCache, generation: u64, done: impl Iterator<Item = (Job, Vec<Row>)>) {
    let mut fresh = Some(Vec::new());
    let mut replies = Vec::new();
    for (job, rows) in done {
        match ((job.fresh)(&rows), fresh.as_mut()) {
            (Some(rows), Some(all)) => all.extend(rows),
            _ => fresh = None,
        }
        replies.push((job.reply, rows));
    }
    match fresh {
        Some(rows) => lookups.refresh(generation, rows),
        None => lookups.invalidate(),
    }
    for (reply, rows) in replies {
        let _ = reply.send(Ok(rows));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Repository;

    fn set_root_time(ns: i64) -> Batch {
        let mut b = Batch::new();
        b.push("UPDATE resources SET modified_ns = ? WHERE id = 1 RETURNING modified_ns").bind(ns);
        b
    }

    fn failing() -> Batch {
        let mut b = Batch::new();
        // Id 1 is the root's.
        b.push(
            "INSERT INTO resources (id, parent_id, name, is_collection, etag, created_ns, modified_ns) \
                VALUES (1, NULL, 'x', 1, '', 0, 0)",
        );
        b
    }

    async fn write(repo: &Repository, batch: Batch) -> Result<Vec<i64>> {
        let rows = repo.group.write(batch, |_| Some(Vec::new())).await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// Writes queued while the write connection is busy: the first is taken alone, the
    /// rest wait and then form one group.
    async fn queued_behind_a_busy_writer(repo: &Repository, batches: Vec<Batch>) -> Vec<Result<Vec<i64>>> {
        let busy = repo.write.acquire().await.unwrap();
        let writes = futures_util::future::join_all(batches.into_iter().map(|b| write(repo, b)));
        let release = async {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            drop(busy);
        };
        tokio::join!(writes, release).0
    }

    #[tokio::test]
    async fn writes_of_one_group_each_get_their_own_rows_in_order() {
        let (_dir, repo) = Repository::scratch().await;
        let results = queued_behind_a_busy_writer(&repo, (1..=4).map(set_root_time).collect()).await;
        let rows: Vec<Vec<i64>> = results.into_iter().map(|r| r.unwrap()).collect();
        assert_eq!(rows, [vec![1], vec![2], vec![3], vec![4]]);
        let (last,): (i64,) =
            crate::db::query_as("SELECT modified_ns FROM resources WHERE id = 1").fetch_one(&repo.read).await.unwrap();
        assert_eq!(last, 4, "the group ran in the order the writes arrived");
    }

    #[tokio::test]
    async fn a_failing_write_fails_alone_and_the_rest_of_its_group_commits() {
        let (_dir, repo) = Repository::scratch().await;
        let batches = vec![set_root_time(1), set_root_time(2), failing(), set_root_time(3)];
        let results = queued_behind_a_busy_writer(&repo, batches).await;
        assert!(results[2].is_err());
        let ok: Vec<Vec<i64>> = [0, 1, 3].iter().map(|&i| results[i].as_ref().unwrap().clone()).collect();
        assert_eq!(ok, [vec![1], vec![2], vec![3]]);
        let (last,): (i64,) =
            crate::db::query_as("SELECT modified_ns FROM resources WHERE id = 1").fetch_one(&repo.read).await.unwrap();
        assert_eq!(last, 3);
    }
}
