//! The committer on an SQLite file: a thread that writes each group on a connection of
//! its own (`db/direct.rs`) while it holds the write pool's one connection, so that
//! nothing else of this process writes meanwhile.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use super::checkpoint::{Checkpointer, OWN_AT};
use super::{answer, fail, Announced, Job, Message, MAX_GROUP};
use crate::cache::LookupCache;
use crate::db::direct::{Direct, LogWatch, Spec};
use crate::db::{Pool, Row};
use crate::txn::Batch;
use crate::{Durability, Result};

/// The thread's loop. The connection is opened at the first group, and again after one
/// was left in a state it can't be trusted in (a failed rollback, a panic).
pub(super) fn run(
    mut messages: mpsc::UnboundedReceiver<Message>,
    coming: Arc<Announced>,
    pool: Pool,
    lookups: Arc<LookupCache>,
    spec: Spec,
    rt: tokio::runtime::Handle,
) {
    // For the whole thread, unwinding included: a pool connection goes back to its pool
    // through a task spawned on the runtime.
    let _runtime = rt.enter();
    let mut conn: Option<Direct> = None;
    let log = Arc::new(LogWatch::new(OWN_AT));
    let mut checkpointer = Checkpointer::start(spec.clone(), log.clone());
    // Without the checkpoint thread, the connection keeps SQLite's automatic checkpoint.
    let writer = Writer { spec: &spec, log: checkpointer.is_some().then_some(&log) };
    while let Some(message) = messages.blocking_recv() {
        let (group, stop) = gather(message, &mut messages, &coming, patience(spec.durability));
        if !group.is_empty() {
            match rt.block_on(pool.acquire()) {
                Ok(token) => {
                    let committed = std::panic::catch_unwind(AssertUnwindSafe(|| {
                        commit(&mut conn, &writer, &lookups, group);
                    }));
                    if committed.is_err() {
                        // The group's writers learn that their writes were dropped.
                        tracing::error!("a group commit panicked; the committer's connection is reopened");
                        conn = None;
                    }
                    drop(token);
                    if let Some(checkpointer) = &checkpointer {
                        checkpointer.after_commit(&log);
                    }
                }
                Err(e) => fail(group, &format!("no write connection: {e}")),
            }
        }
        if let Some(done) = stop {
            // Its connection first: the last one to close folds the log into the file.
            if let Some(checkpointer) = checkpointer.take() {
                checkpointer.stop();
            }
            drop(conn.take());
            let _ = done.send(());
            return;
        }
    }
}

/// How a group waits for writes announced to the committer (see [`super::Coming`]).
#[derive(Clone, Copy)]
struct Patience {
    /// The longest wait: about a small upload's own time from its request's head to its
    /// batch, under load.
    most: Duration,
    /// Announcements older than this no longer make a group wait.
    recent: Duration,
}

pub(super) const MAX_WAIT: Duration = Duration::from_micros(300);

const PATIENCE: Patience = Patience { most: MAX_WAIT, recent: Duration::from_millis(2) };

/// Whether to wait for announced writes at all. Under Full durability a commit costs an
/// fsync, which a larger group shares. Under Process it costs less than the wait: a curl
/// upload of 10,000 small files took 0.78–1.25 s without it, 0.91–1.28 s with it, in six
/// alternated rounds (and wrk's PUT rate was no lower).
fn patience(durability: Durability) -> Patience {
    match durability {
        Durability::Full => PATIENCE,
        Durability::Process => Patience { most: Duration::ZERO, ..PATIENCE },
    }
}

/// How long the committer sleeps between looks at its queue while it waits.
const NAP: Duration = Duration::from_micros(20);

/// `first` and the writes queued behind it, up to a group's size or a stop, waiting as
/// `patience` says for writes still `coming`.
fn gather(
    first: Message,
    messages: &mut mpsc::UnboundedReceiver<Message>,
    coming: &Announced,
    patience: Patience,
) -> (Vec<Job>, Option<oneshot::Sender<()>>) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    let mut next = Some(first);
    let mut waited: Option<Instant> = None;
    while let Some(message) = next.take() {
        match message {
            Message::Write(job) => group.push(job),
            Message::Stop(done) => return (group, Some(done)),
        }
        while group.len() < MAX_GROUP {
            next = messages.try_recv().ok();
            if next.is_some() {
                break;
            }
            if !coming.worth_waiting(patience.recent) {
                // A write queued between the look at the queue and this one joins too.
                next = messages.try_recv().ok();
                break;
            }
            if waited.get_or_insert_with(Instant::now).elapsed() >= patience.most {
                break;
            }
            std::thread::sleep(NAP);
        }
    }
    (group, None)
}

/// What the committer's connection is opened with: where, and the watch of its log when
/// the checkpoint thread runs.
struct Writer<'a> {
    spec: &'a Spec,
    log: Option<&'a Arc<LogWatch>>,
}

/// Commits `group` as one transaction, or each of its batches alone if that fails.
fn commit(conn: &mut Option<Direct>, writer: &Writer<'_>, lookups: &LookupCache, group: Vec<Job>) {
    if group.len() > 1 {
        let generation = lookups.generation();
        match in_transaction(conn, writer, group.iter().map(|j| &j.writes)) {
            Ok(rows) => return answer(lookups, generation, group.into_iter().zip(rows)),
            Err(e) => {
                tracing::debug!(%e, writes = group.len(), "a group commit failed; its writes run alone");
                settle(conn);
            }
        }
    }
    for job in group {
        let generation = lookups.generation();
        match in_transaction(conn, writer, std::iter::once(&job.writes)) {
            Ok(mut rows) => answer(lookups, generation, std::iter::once((job, rows.pop().unwrap_or_default()))),
            Err(e) => {
                let _ = job.reply.send(Err(e));
                settle(conn);
            }
        }
    }
}

/// `BEGIN IMMEDIATE`, the batches, `COMMIT`: the rows of each batch.
fn in_transaction<'a>(
    conn: &mut Option<Direct>,
    writer: &Writer<'_>,
    batches: impl Iterator<Item = &'a Batch>,
) -> Result<Vec<Vec<Row>>> {
    let c = match conn {
        Some(c) => c,
        None => {
            let mut opened = Direct::open(writer.spec)?;
            if let Some(log) = writer.log {
                opened.watch_log(log.clone());
            }
            conn.insert(opened)
        }
    };
    c.execute("BEGIN IMMEDIATE")?;
    let rows = batches.map(|b| Ok(c.run(b)?.into_iter().flatten().collect())).collect::<Result<Vec<_>>>()?;
    c.execute("COMMIT")?;
    Ok(rows)
}

/// After a failure: the connection is left outside any transaction, or closed.
fn settle(conn: &mut Option<Direct>) {
    let Some(c) = conn.as_mut() else { return };
    if c.in_transaction() {
        if let Err(e) = c.execute("ROLLBACK") {
            tracing::error!(%e, "the committer's connection could not roll back; it is reopened");
            *conn = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use tokio::sync::{mpsc, oneshot};

    use super::super::{Announced, Job, Message};
    use super::{gather, Patience};
    use crate::path::DavPath;
    use crate::txn::Batch;
    use crate::Repository;

    fn job() -> Message {
        let (reply, _) = oneshot::channel();
        Message::Write(Job { writes: Batch::new(), fresh: Box::new(|_| None), reply })
    }

    fn patience(most: Duration, recent: Duration) -> Patience {
        Patience { most, recent }
    }

    const LONG: Duration = Duration::from_secs(60);

    #[test]
    fn a_group_waits_for_a_write_announced_before_it_was_gathered() {
        let (queue, mut messages) = mpsc::unbounded_channel();
        let coming = Arc::new(Announced::default());
        coming.add();
        let (late_queue, late_coming) = (queue.clone(), coming.clone());
        let late = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            let _ = late_queue.send(job());
            late_coming.pending.fetch_sub(1, Ordering::Release);
        });
        let (group, stop) = gather(job(), &mut messages, &coming, patience(LONG, LONG));
        late.join().unwrap();
        assert_eq!(group.len(), 2);
        assert!(stop.is_none());
    }

    #[test]
    fn with_process_durability_a_group_is_committed_without_waiting_for_announced_writes() {
        assert_eq!(super::patience(crate::Durability::Process).most, Duration::ZERO);
        assert_eq!(super::patience(crate::Durability::Full).most, super::MAX_WAIT);
        // An announced write that never comes: any wait at all would last a minute.
        let (_queue, mut messages) = mpsc::unbounded_channel();
        let coming = Announced::default();
        coming.add();
        let started = Instant::now();
        let (group, _) = gather(job(), &mut messages, &coming, patience(Duration::ZERO, LONG));
        assert_eq!(group.len(), 1);
        assert!(started.elapsed() < Duration::from_secs(30));
    }

    #[test]
    fn a_group_waits_no_longer_than_its_limit_for_an_announced_write() {
        let (_queue, mut messages) = mpsc::unbounded_channel();
        let coming = Announced::default();
        coming.add();
        let started = Instant::now();
        let (group, _) = gather(job(), &mut messages, &coming, patience(Duration::from_millis(10), LONG));
        assert_eq!(group.len(), 1);
        assert!(started.elapsed() >= Duration::from_millis(10));
    }

    #[test]
    fn a_write_announced_long_ago_makes_no_group_wait() {
        let (_queue, mut messages) = mpsc::unbounded_channel();
        let coming = Announced::default();
        coming.add();
        std::thread::sleep(Duration::from_millis(20));
        let started = Instant::now();
        let (group, _) = gather(job(), &mut messages, &coming, patience(LONG, Duration::from_millis(10)));
        assert_eq!(group.len(), 1);
        assert!(started.elapsed() < Duration::from_secs(30));
    }

    #[test]
    fn a_group_with_nothing_announced_is_committed_at_once() {
        let (queue, mut messages) = mpsc::unbounded_channel();
        let _ = queue.send(job());
        let started = Instant::now();
        let (group, _) = gather(job(), &mut messages, &Announced::default(), patience(LONG, LONG));
        assert_eq!(group.len(), 2, "what was queued joins");
        assert!(started.elapsed() < Duration::from_secs(30));
    }

    /// Whether a new connection is the only one to `file`: leaving WAL mode needs every
    /// other connection closed.
    fn alone(file: &std::path::Path) -> bool {
        let Ok(conn) = rusqlite::Connection::open(file) else { return false };
        conn.query_row("PRAGMA journal_mode = DELETE", [], |r| r.get::<_, String>(0)).is_ok_and(|m| m == "delete")
    }

    #[tokio::test]
    async fn a_closed_repository_leaves_no_connection_to_its_database_open() {
        let (dir, repo) = Repository::scratch_sqlite().await;
        let body: crate::ByteStream =
            Box::pin(futures_util::stream::once(async { Ok(bytes::Bytes::from_static(b"small")) }));
        // A plain PUT: the committer opens its connection.
        repo.put(&DavPath::parse("/f").unwrap(), body, crate::PutOptions::default()).await.unwrap();
        // A listing: a reader of its own opens too.
        let root = repo.resolve(&DavPath::root()).await.unwrap().unwrap();
        assert_eq!(repo.list(&root).await.unwrap().len(), 1);
        repo.close().await;
        // sqlx finishes closing its connections on their own threads: allow it a moment.
        let file = dir.path().join("t.db");
        let mut closed = false;
        for _ in 0..100 {
            closed = alone(&file);
            if closed {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert!(closed, "a connection to the database outlived the repository's close");
    }

    #[tokio::test]
    async fn writes_after_close_fail_rather_than_wait() {
        let (_dir, repo) = Repository::scratch_sqlite().await;
        repo.group.close().await;
        let mut batch = crate::txn::Batch::new();
        batch.push("SELECT 1");
        assert!(repo.group.write(batch, |_| Some(Vec::new())).await.is_err());
    }
}
