//! Group commit: guarded writes that arrive together share one transaction.
//!
//! A plain write (a new file's PUT, a file's times) is one batch of statements that carry
//! their own conditions ([`crate::txn`]), so it needs no decision between its reads and
//! its writes. Each used to cost a trip to the write connection's thread and a commit of
//! its own; under many concurrent small uploads those dominated the writer's time. Here a
//! single committer takes every batch waiting for it and runs them as one:
//! `BEGIN IMMEDIATE; batch 1; batch 2; …; COMMIT`. Running them in one transaction in the
//! order they arrived is the same as running them one after another, since each batch's
//! guards see what the batches before it wrote.
//!
//! A write is answered only after the transaction holding it committed. If any statement
//! of a group fails, the group is rolled back and each of its batches runs again alone, so
//! one failing write never fails the others and each gets its own error.
//!
//! The committer holds the write pool's connection from `BEGIN` until the lookup cache has
//! the rows every batch wrote (in order: a later batch's row for a path wins), as
//! [`WriteTx`] does for a single writer. On an SQLite file it is a thread that writes on a
//! connection of its own while it holds that one ([`direct`]); elsewhere (PostgreSQL, or
//! SQLite in memory) a task that joins the group into one batch on the pool's connection.
//!
//! [`WriteTx`]: crate::txn::WriteTx

mod checkpoint;
mod direct;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use crate::cache::LookupCache;
use crate::db::direct::Spec;
use crate::db::{Conn, Pool, Row};
use crate::path::DavPath;
use crate::resource::Resource;
use crate::txn::{rollback, Batch};
use crate::{Error, Result};

/// Most batches in one transaction: bounds how long the first of them waits, and, where a
/// group is joined into one batch, how many texts those can have (each is prepared once
/// and cached by its text; see `db::open_sqlite`).
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

enum Message {
    Write(Job),
    /// Commit what came before, close the connection and stop; then say so.
    Stop(oneshot::Sender<()>),
}

/// The queue of writes waiting for the committer.
pub(crate) struct Committer {
    queue: mpsc::UnboundedSender<Message>,
    /// Writes announced but not queued yet, and when the last was announced (see
    /// [`Committer::announce`]).
    pub(crate) coming: Arc<Announced>,
}

/// What the committer knows of writes on their way.
#[derive(Default)]
pub(crate) struct Announced {
    pub(crate) pending: AtomicUsize,
    /// Nanoseconds since [`Announced::epoch`] at the latest announcement.
    pub(crate) latest_ns: AtomicU64,
}

impl Announced {
    fn epoch() -> Instant {
        static EPOCH: OnceLock<Instant> = OnceLock::new();
        *EPOCH.get_or_init(Instant::now)
    }

    fn now_ns() -> u64 {
        u64::try_from(Announced::epoch().elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn add(&self) {
        self.latest_ns.store(Announced::now_ns(), Ordering::Relaxed);
        self.pending.fetch_add(1, Ordering::Relaxed);
    }

    /// Whether a group should wait: a write is on its way and one was announced within
    /// `recent`. An upload whose client stalls mid-body stays on its way, but stops
    /// counting once no other write has been announced for that long.
    pub fn worth_waiting(&self, recent: Duration) -> bool {
        let since = Announced::now_ns().saturating_sub(self.latest_ns.load(Ordering::Relaxed));
        self.pending.load(Ordering::Acquire) > 0 && u128::from(since) < recent.as_nanos()
    }
}

/// A write on its way to the committer: its body is being read, and its batch will follow
/// shortly. While one is on its way and one was announced lately, the committer on an
/// SQLite file with Full durability waits a moment (at most [`direct::MAX_WAIT`]) before
/// it commits what it has, so that concurrent small uploads share one commit and its
/// fsync instead of trickling in groups of one or two: every commit writes the pages all
/// its writes touch (the parent's row, the index leaves) once. With Process durability
/// a commit is cheaper than the wait (see `direct::patience`). Dropped when its batch is queued,
/// or when the write goes another way or fails; one whose client stalls stops counting
/// once nothing else has been announced for a while (see [`Announced::worth_waiting`]).
pub(crate) struct Coming<'a> {
    committer: &'a Committer,
}

impl Drop for Coming<'_> {
    fn drop(&mut self) {
        self.committer.coming.pending.fetch_sub(1, Ordering::Release);
    }
}

impl<'a> Coming<'a> {
    /// [`Committer::write`], no longer announced once it is queued.
    pub async fn write(self, writes: Batch, fresh: impl FnOnce(&[Row]) -> Fresh + Send + 'static) -> Result<Vec<Row>> {
        let committer = self.committer;
        let answer = committer.send(writes, Box::new(fresh));
        drop(self);
        Committer::answer(answer?).await
    }
}

impl Committer {
    /// Starts the committer: on an SQLite file, a thread with a connection of its own
    /// (`db/direct.rs`); otherwise a task on the write pool. It ends when the committer
    /// is dropped.
    pub fn start(pool: Pool, lookups: Arc<LookupCache>, direct: Option<Spec>) -> Committer {
        let (queue, jobs) = mpsc::unbounded_channel();
        let coming = Arc::new(Announced::default());
        match direct {
            Some(spec) => {
                let rt = tokio::runtime::Handle::current();
                let announced = coming.clone();
                let started = std::thread::Builder::new()
                    .name("wharf-committer".into())
                    .spawn(move || direct::run(jobs, announced, pool, lookups, spec, rt));
                if let Err(e) = started {
                    // Jobs then fail with "the write queue is closed".
                    tracing::error!(%e, "the committer's thread did not start");
                }
            }
            None => {
                tokio::spawn(run(jobs, pool, lookups));
            }
        }
        Committer { queue, coming }
    }

    /// Announces a write that will come soon (see [`Coming`]).
    pub fn announce(&self) -> Coming<'_> {
        self.coming.add();
        Coming { committer: self }
    }

    /// Runs `writes` (statements guarded by their own conditions, without `BEGIN` or
    /// `COMMIT`) in a committed transaction and returns their rows. `fresh` tells the
    /// lookup cache what the rows mean; it runs while the write connection is held.
    pub async fn write(&self, writes: Batch, fresh: impl FnOnce(&[Row]) -> Fresh + Send + 'static) -> Result<Vec<Row>> {
        Committer::answer(self.send(writes, Box::new(fresh))?).await
    }

    fn send(&self, writes: Batch, fresh: FreshOf) -> Result<oneshot::Receiver<Result<Vec<Row>>>> {
        let (reply, answer) = oneshot::channel();
        let job = Job { writes, fresh, reply };
        self.queue.send(Message::Write(job)).map_err(|_| Error::Internal("the write queue is closed".into()))?;
        Ok(answer)
    }

    async fn answer(answer: oneshot::Receiver<Result<Vec<Row>>>) -> Result<Vec<Row>> {
        answer.await.map_err(|_| Error::Internal("a queued write was dropped".into()))?
    }

    /// Commits the writes queued so far and stops; later writes fail. The committer's own
    /// connection is closed when this returns, so the pools' closing is the last one and
    /// SQLite checkpoints its log into the database file.
    pub async fn close(&self) {
        let (done, stopped) = oneshot::channel();
        if self.queue.send(Message::Stop(done)).is_ok() {
            let _ = stopped.await;
        }
    }
}

async fn run(mut messages: mpsc::UnboundedReceiver<Message>, pool: Pool, lookups: Arc<LookupCache>) {
    let mut received = Vec::with_capacity(MAX_GROUP);
    while messages.recv_many(&mut received, MAX_GROUP).await > 0 {
        let (group, stop) = split_messages(std::mem::take(&mut received));
        if !group.is_empty() {
            match pool.acquire().await {
                Ok(mut conn) => commit(&mut conn, &lookups, group).await,
                Err(e) => fail(group, &format!("no write connection: {e}")),
            }
        }
        if let Some(done) = stop {
            let _ = done.send(());
            return;
        }
    }
}

/// The writes among `messages`, up to a stop if there is one (writes after it are
/// dropped: their writers learn that the queue closed).
fn split_messages(messages: Vec<Message>) -> (Vec<Job>, Option<oneshot::Sender<()>>) {
    let mut jobs = Vec::with_capacity(messages.len());
    for message in messages {
        match message {
            Message::Write(job) => jobs.push(job),
            Message::Stop(done) => return (jobs, Some(done)),
        }
    }
    (jobs, None)
}

fn fail(group: Vec<Job>, why: &str) {
    for job in group {
        let _ = job.reply.send(Err(Error::Internal(why.to_owned())));
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
