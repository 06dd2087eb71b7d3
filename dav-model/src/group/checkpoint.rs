//! Checkpoints of the SQLite log (WAL) on a thread of their own, beside the committer.
//!
//! SQLite's automatic checkpoint runs on the connection that committed, right after its
//! commit: about every 300 small uploads the committer copied the last thousand pages of
//! the log into the database file and synced both, a read and a write per page, while
//! every upload waiting for the next commit waited for that too. Here the committer's
//! connection only counts the log's length (`LogWatch`), and past [`NUDGE_AT`] pages it
//! wakes this thread, which checkpoints on a connection of its own. A PASSIVE checkpoint
//! never blocks the writer, so commits go on meanwhile; measured, small PUTs went from
//! about 10,000 to 15,000 a second.
//!
//! The log starts over only when a write begins with every page of it copied, which a
//! checkpoint running beside a steady stream of commits rarely leaves. So the committer
//! still checkpoints itself once the log reaches [`OWN_AT`], after waiting for this
//! thread's checkpoint if one runs (SQLite would refuse a second): most of the log is
//! copied by then, the rest is, and the log starts over, so it stays about that long.

use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use crate::db::direct::{Direct, LogWatch, Spec};

/// Log length (pages) past which the checkpointer is woken: SQLite's default for its
/// automatic checkpoint.
const NUDGE_AT: i64 = 1000;

/// Log length at which the committer checkpoints itself (16 MiB of 4 KiB pages).
pub(super) const OWN_AT: i64 = 4 * NUDGE_AT;

pub(super) struct Checkpointer {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    /// The log length of the next wake. Each checkpoint copies the latest version of each
    /// page the log holds once, so one per [`NUDGE_AT`] pages written, not one after each
    /// commit (which copied the pages every commit touches again and again: twice the work).
    next_at: std::cell::Cell<i64>,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

#[derive(Default, Clone, Copy)]
struct State {
    wanted: bool,
    stop: bool,
}

impl Checkpointer {
    /// Starts the thread; `None` if it could not be started (the committer's own
    /// checkpoints then do all the work, at [`OWN_AT`]).
    pub fn start(spec: Spec, log: Arc<LogWatch>) -> Option<Checkpointer> {
        let shared = Arc::new(Shared::default());
        let theirs = shared.clone();
        let started =
            std::thread::Builder::new().name("wharf-checkpoint".into()).spawn(move || run(&theirs, &spec, &log));
        match started {
            Ok(thread) => Some(Checkpointer { shared, thread: Some(thread), next_at: NUDGE_AT.into() }),
            Err(e) => {
                tracing::warn!(%e, "the checkpoint thread did not start; the committer checkpoints itself");
                None
            }
        }
    }

    /// Called after each commit: wakes the thread each time the log has grown by
    /// [`NUDGE_AT`] pages.
    pub fn after_commit(&self, log: &LogWatch) {
        let frames = log.frames();
        if frames < self.next_at.get() - NUDGE_AT {
            // The log started over.
            self.next_at.set(NUDGE_AT);
        }
        if frames < self.next_at.get() {
            return;
        }
        self.next_at.set(frames + NUDGE_AT);
        if let Ok(mut state) = self.shared.state.lock() {
            if !state.wanted {
                state.wanted = true;
                self.shared.wake.notify_one();
            }
        }
    }

    /// Stops the thread and waits for it: its connection is closed on return.
    pub fn stop(mut self) {
        self.signal_stop();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }

    fn signal_stop(&self) {
        if let Ok(mut state) = self.shared.state.lock() {
            state.stop = true;
            self.shared.wake.notify_one();
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        // Unwinding or a forgotten `stop`: the thread ends on its own, unwaited.
        self.signal_stop();
    }
}

fn run(shared: &Shared, spec: &Spec, log: &LogWatch) {
    let mut conn: Option<Direct> = None;
    loop {
        let Some(state) = next(shared) else { return };
        if state.wanted {
            let _alone = log.checkpointing.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            checkpoint(&mut conn, spec);
        }
        if state.stop {
            return;
        }
    }
}

/// One PASSIVE checkpoint on the thread's connection, opened at the first.
fn checkpoint(conn: &mut Option<Direct>, spec: &Spec) {
    let c = match conn.as_mut() {
        Some(c) => c,
        None => match Direct::open(spec) {
            Ok(c) => conn.insert(c),
            Err(e) => return tracing::warn!(%e, "the checkpoint thread could not connect"),
        },
    };
    // Busy when another connection checkpoints at the moment: that one does the work.
    if let Err(e) = c.execute("PRAGMA wal_checkpoint(PASSIVE)") {
        tracing::debug!(%e, "a checkpoint did not run");
    }
}

/// Waits until a checkpoint is wanted or the thread should stop, and takes the request.
fn next(shared: &Shared) -> Option<State> {
    let mut state = shared.state.lock().ok()?;
    while !state.wanted && !state.stop {
        state = shared.wake.wait(state).ok()?;
    }
    let seen = *state;
    state.wanted = false;
    Some(seen)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Repository;

    /// A writer on a scratch database whose log is watched with `own_at`, after it wrote
    /// `pages` pages of filler in one commit; and the database file.
    async fn written(own_at: i64, pages: usize) -> (tempfile::TempDir, Direct, Arc<LogWatch>, Spec) {
        let (dir, repo) = Repository::scratch_sqlite().await;
        repo.close().await;
        let file = dir.path().join("t.db");
        let spec = Spec::for_file(&file.display().to_string(), wharf_backends::Durability::Process).unwrap();
        let mut writer = Direct::open(&spec).unwrap();
        let watch = Arc::new(LogWatch::new(own_at));
        writer.watch_log(watch.clone());
        let mut fill = crate::txn::Batch::new();
        fill.push("CREATE TABLE filler (x BLOB)");
        fill.push("INSERT INTO filler SELECT zeroblob(4000) FROM json_each(?)");
        fill.bind(format!("[{}]", vec!["0"; pages].join(",")));
        writer.run(&fill).unwrap();
        (dir, writer, watch, spec)
    }

    #[tokio::test]
    async fn a_watched_connection_checkpoints_itself_once_the_log_reaches_its_limit() {
        let (dir, _writer, watch, _) = written(100, 200).await;
        assert!(watch.frames() >= 200, "the hook counted the log: {}", watch.frames());
        let size = std::fs::metadata(dir.path().join("t.db")).unwrap().len();
        assert!(size >= 200 * 4000, "the database file holds the filler: {size} bytes");
    }

    #[tokio::test]
    async fn a_long_log_is_copied_into_the_database_by_the_checkpoint_thread() {
        let (dir, _writer, watch, spec) = written(i64::MAX, NUDGE_AT as usize + 100).await;
        let file = dir.path().join("t.db");
        assert!(watch.frames() >= NUDGE_AT, "the hook counted the log: {}", watch.frames());
        let before = std::fs::metadata(&file).unwrap().len();
        assert!(before < NUDGE_AT as u64 * 4000, "nothing copied yet: {before} bytes");
        let checkpointer = Checkpointer::start(spec, watch.clone()).unwrap();
        checkpointer.after_commit(&watch);
        checkpointer.stop();
        // The writer's connection is still open: only a checkpoint grew the file.
        let grown = std::fs::metadata(&file).unwrap().len() - before;
        assert!(grown >= NUDGE_AT as u64 * 4000, "the database file grew by {grown} bytes");
    }

    fn wanted(checkpointer: &Checkpointer) -> bool {
        std::mem::take(&mut checkpointer.shared.state.lock().unwrap().wanted)
    }

    #[tokio::test]
    async fn the_thread_is_woken_once_per_stretch_of_log_and_again_after_it_started_over() {
        let checkpointer = Checkpointer { shared: Arc::new(Shared::default()), thread: None, next_at: NUDGE_AT.into() };
        let watch = LogWatch::new(i64::MAX);
        let mut woken = Vec::new();
        for frames in [NUDGE_AT, NUDGE_AT + 10, 2 * NUDGE_AT - 1, 2 * NUDGE_AT, 5, NUDGE_AT] {
            watch.set_frames(frames);
            checkpointer.after_commit(&watch);
            woken.push(wanted(&checkpointer));
        }
        assert_eq!(woken, [true, false, false, true, false, true]);
    }

    #[tokio::test]
    async fn a_short_log_wakes_no_checkpoint() {
        let checkpointer = Checkpointer { shared: Arc::new(Shared::default()), thread: None, next_at: NUDGE_AT.into() };
        let watch = LogWatch::new(i64::MAX);
        watch.set_frames(NUDGE_AT - 1);
        checkpointer.after_commit(&watch);
        assert!(!checkpointer.shared.state.lock().unwrap().wanted);
        watch.set_frames(NUDGE_AT);
        checkpointer.after_commit(&watch);
        assert!(checkpointer.shared.state.lock().unwrap().wanted);
    }
}
