//! The group committer's own connection to an SQLite database (see `group/`).
//!
//! Through sqlx, a group of plain writes was one text of up to 170 statements, sent to the
//! write connection's thread and answered row by row over a channel. Each distinct group
//! size was a distinct text, prepared whole the first time it appeared (a sixth of the
//! instructions of the first thousand small PUTs), and each row and each statement's end
//! was a message between threads. Here the committer's thread holds a connection of its
//! own: every statement is prepared once by its own text, whatever group it comes in, and
//! rows are read where they are made.
//!
//! SQLite allows one writer at a time, so this connection writes only while the committer
//! holds the write pool's one connection, as a token: no other write of this process can
//! run meanwhile, and neither connection waits on the other's lock (another process, such
//! as `wharf user add`, is waited for up to the busy timeout, as by the pool's).

use std::path::PathBuf;
use std::time::Duration;

use rusqlite::{ffi, Connection, ErrorCode, OpenFlags};
use wharf_backends::Durability;

use super::prepared::{Prepared, Text};
use super::Row;
use crate::txn::Batch;
use crate::{Error, Result};

/// Where the committer's connection goes, and how durable its commits are.
#[derive(Clone, Debug)]
pub(crate) struct Spec {
    path: PathBuf,
    pub(crate) durability: Durability,
}

impl Spec {
    /// `file` is where SQLite says the database is (`pragma_database_list`, which names
    /// the file whatever URL opened it); empty for a database in memory, which only the
    /// connection that made it can see.
    pub fn for_file(file: &str, durability: Durability) -> Option<Spec> {
        if file.is_empty() {
            return None;
        }
        Some(Spec { path: PathBuf::from(file), durability })
    }
}

/// An open connection, with the settings the write pool's has.
pub(crate) struct Direct {
    // Before `conn`, so that the statements are finalized before it closes (fields drop
    // in order): SQLite does not close a connection that still has statements.
    prepared: Prepared,
    conn: Connection,
    /// What the log hook writes to, after `conn`: it must outlive the connection's hook.
    log: Option<std::sync::Arc<LogWatch>>,
}

/// The length of the log (WAL) as the last commit on a watched connection left it, in
/// frames (pages). A watched connection checkpoints by itself only once the log reaches
/// `own_at`; below that, checkpoints are somebody else's work (see `group/checkpoint.rs`).
#[derive(Debug)]
pub(crate) struct LogWatch {
    frames: std::sync::atomic::AtomicI64,
    own_at: i64,
    /// Held by whoever checkpoints through this watch. SQLite refuses a second checkpoint
    /// while one runs; the watched connection's own one waits for the other's instead, so
    /// that it copies the rest of the log and the log can start over.
    pub checkpointing: std::sync::Mutex<()>,
}

impl LogWatch {
    pub fn new(own_at: i64) -> LogWatch {
        LogWatch { frames: std::sync::atomic::AtomicI64::new(0), own_at, checkpointing: std::sync::Mutex::new(()) }
    }

    pub fn frames(&self) -> i64 {
        self.frames.load(std::sync::atomic::Ordering::Relaxed)
    }

    #[cfg(test)]
    pub fn set_frames(&self, frames: i64) {
        self.frames.store(frames, std::sync::atomic::Ordering::Relaxed);
    }
}

/// SQLite's log hook, called after each commit: replaces its automatic checkpoint, which
/// is itself such a hook, by one that only runs at `own_at`.
unsafe extern "C" fn log_written(
    watch: *mut std::ffi::c_void,
    db: *mut ffi::sqlite3,
    name: *const std::ffi::c_char,
    frames: std::ffi::c_int,
) -> std::ffi::c_int {
    // SAFETY: the `LogWatch` the connection holds for as long as its hook is set.
    let watch = unsafe { &*(watch as *const LogWatch) };
    watch.frames.store(i64::from(frames), std::sync::atomic::Ordering::Relaxed);
    if i64::from(frames) >= watch.own_at {
        let _alone = watch.checkpointing.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        // A PASSIVE checkpoint, as SQLite's own hook runs; its failure fails no commit.
        // SAFETY: the connection and database name SQLite passed in.
        unsafe { ffi::sqlite3_wal_checkpoint(db, name) };
    }
    ffi::SQLITE_OK
}

impl Direct {
    pub fn open(spec: &Spec) -> Result<Direct> {
        Direct::open_with(spec, OpenFlags::SQLITE_OPEN_READ_WRITE)
    }

    /// A connection that only reads (see [`Readers`]).
    fn open_reader(spec: &Spec) -> Result<Direct> {
        Direct::open_with(spec, OpenFlags::SQLITE_OPEN_READ_ONLY)
    }

    fn open_with(spec: &Spec, access: OpenFlags) -> Result<Direct> {
        let conn = Connection::open_with_flags(&spec.path, access | OpenFlags::SQLITE_OPEN_NO_MUTEX).map_err(db)?;
        conn.busy_timeout(Duration::from_secs(30)).map_err(db)?;
        let sync = match spec.durability {
            Durability::Process => "NORMAL",
            Durability::Full => "FULL",
        };
        // The file is in WAL mode already (the pool set it when it opened the database).
        conn.execute_batch(&format!("PRAGMA synchronous = {sync}; PRAGMA foreign_keys = ON;")).map_err(db)?;
        Ok(Direct { prepared: Prepared::default(), conn, log: None })
    }

    /// Keeps `watch` up to date with the log's length after each commit, and leaves
    /// checkpoints below its `own_at` to another connection.
    pub fn watch_log(&mut self, watch: std::sync::Arc<LogWatch>) {
        let arg = std::sync::Arc::as_ptr(&watch) as *mut std::ffi::c_void;
        // SAFETY: `watch` is kept in `self.log`, which drops after `conn`, so the hook's
        // argument outlives every call SQLite makes to it.
        unsafe { ffi::sqlite3_wal_hook(self.conn.handle(), Some(log_written), arg) };
        self.log = Some(watch);
    }

    /// One statement that binds nothing and returns no rows (`BEGIN`, `COMMIT`), prepared once.
    pub fn execute(&mut self, sql: &'static str) -> Result<()> {
        self.statement(Text::Static(sql), &[]).map(drop)
    }

    /// Inside a transaction (a failed statement may or may not have ended it).
    pub fn in_transaction(&self) -> bool {
        !self.conn.is_autocommit()
    }

    /// Runs every statement of `batch` and returns the rows of each, in order; one its
    /// [`crate::txn::Only`] says can do nothing is skipped and has no rows. A failing statement stops
    /// the batch; the transaction it was in is left to the caller.
    pub fn run(&mut self, batch: &Batch) -> Result<Vec<Vec<Row>>> {
        let mut out = Vec::with_capacity(batch.len());
        let mut changed = Vec::with_capacity(batch.len());
        for (sql, values, only) in batch.each_statement() {
            if only.is_some_and(|o| !o.holds(&changed)) {
                out.push(Vec::new());
                changed.push(false);
                continue;
            }
            let before = self.total_changes();
            out.push(self.statement(Text::of(sql), values)?);
            changed.push(self.total_changes() != before);
        }
        Ok(out)
    }

    /// Rows changed on this connection since it opened, triggers' included.
    fn total_changes(&self) -> i64 {
        // SAFETY: the connection's own handle, open for as long as `self` is.
        unsafe { ffi::sqlite3_total_changes64(self.conn.handle()) }
    }

    fn statement(&mut self, text: Text<'_>, values: &[super::Value]) -> Result<Vec<Row>> {
        // SAFETY: the connection every statement of `prepared` was prepared on, open for
        // as long as `self` is.
        unsafe { self.prepared.run(self.conn.handle(), text, values) }
    }
}

/// Read-only connections of their own for listings, used on tokio's blocking threads.
///
/// Through sqlx, each row of a query is a message from the connection's thread, so a
/// listing of 10,000 members was aggregated by SQLite into one JSON text and parsed back,
/// which was a third of a large PROPFIND's instructions. Here the rows are read where
/// they are made. Every statement a reader runs is autocommit, as the pool's reads are.
pub(crate) struct Readers {
    spec: Spec,
    /// Connections not in use; `None` once closed.
    idle: std::sync::Mutex<Option<Vec<Direct>>>,
}

/// Idle readers kept at most; more are opened while that many listings run at once.
const MAX_IDLE_READERS: usize = 4;

impl Readers {
    pub fn new(spec: Spec) -> Readers {
        Readers { spec, idle: std::sync::Mutex::new(Some(Vec::new())) }
    }

    /// Runs `batch` (statements that only read) on a reader, off the async workers.
    pub async fn run(self: &std::sync::Arc<Self>, batch: Batch) -> Result<Vec<Vec<Row>>> {
        let this = self.clone();
        let read = tokio::task::spawn_blocking(move || {
            let taken = this.idle.lock().map_err(|_| closed())?.as_mut().ok_or_else(closed)?.pop();
            let mut conn = match taken {
                Some(conn) => conn,
                None => Direct::open_reader(&this.spec)?,
            };
            let rows = conn.run(&batch);
            if let Ok(mut idle) = this.idle.lock() {
                match idle.as_mut() {
                    Some(idle) if idle.len() < MAX_IDLE_READERS && !conn.in_transaction() => idle.push(conn),
                    _ => drop(conn),
                }
            }
            rows
        });
        read.await.map_err(|e| Error::Internal(format!("a read on its own connection failed: {e}")))?
    }

    /// Closes the idle readers; a read in progress closes its own when it ends.
    pub fn close(&self) {
        if let Ok(mut idle) = self.idle.lock() {
            *idle = None;
        }
    }
}

fn closed() -> Error {
    Error::Internal("the database is closed".into())
}

/// A full disk is the client's 507, as a full blob store is; anything else is ours.
fn db(e: rusqlite::Error) -> Error {
    match e.sqlite_error_code() {
        Some(ErrorCode::DiskFull) => Error::InsufficientStorage,
        _ => Error::Internal(format!("database error: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::txn::Only;
    use crate::Repository;

    /// A migrated scratch database (kept while the test runs) and a committer's
    /// connection to it.
    async fn scratch() -> (tempfile::TempDir, Repository, Direct) {
        let (dir, repo) = Repository::scratch_sqlite().await;
        let file = dir.path().join("t.db").display().to_string();
        let conn = Direct::open(&Spec::for_file(&file, Durability::Process).expect("a file")).expect("open");
        (dir, repo, conn)
    }

    #[tokio::test]
    async fn the_committer_connects_to_the_file_the_pools_opened_and_not_to_a_memory_database() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("w.db");
        let opened = crate::db::open(&format!("sqlite://{}", file.display()), Durability::Process).await.unwrap();
        let spec = opened.direct.expect("a file has a spec");
        assert_eq!(spec.path.canonicalize().unwrap(), file.canonicalize().unwrap());
        let memory = crate::db::open("sqlite::memory:", Durability::Process).await.unwrap();
        assert!(memory.direct.is_none());
    }

    #[tokio::test]
    async fn rows_read_on_the_committers_connection_decode_as_the_pools_do() {
        let (_dir, _repo, mut conn) = scratch().await;
        let mut b = Batch::new();
        b.push("SELECT ?, 2.5, 'text', x'0102', NULL, 1 = 1").bind(7_i64);
        let rows = conn.run(&b).unwrap().remove(0);
        let row = &rows[0];
        assert_eq!(row.get::<i64>(0), 7);
        assert_eq!(row.get::<f64>(1), 2.5);
        assert_eq!(row.get::<String>(2), "text");
        assert_eq!(row.get::<Vec<u8>>(3), vec![1, 2]);
        assert_eq!(row.get::<Option<String>>(4), None);
        assert!(row.get::<bool>(5));
        assert!(row.try_get::<i64>(2).is_err(), "text is not read as a number");
    }

    #[tokio::test]
    async fn each_statement_of_a_batch_gets_its_own_values_and_rows() {
        let (_dir, _repo, mut conn) = scratch().await;
        let mut b = Batch::new();
        b.push("SELECT ?, ?").bind(1_i64).bind("a");
        b.push("SELECT 0 WHERE 0");
        b.push("SELECT ? UNION ALL SELECT ?").bind(2_i64).bind(3_i64);
        let rows = conn.run(&b).unwrap();
        let firsts: Vec<Vec<i64>> = rows.iter().map(|r| r.iter().map(|row| row.get(0)).collect()).collect();
        assert_eq!(firsts, [vec![1], vec![], vec![2, 3]]);
        assert_eq!(rows[0][0].get::<String>(1), "a");
    }

    /// A table `t` and a batch that inserts into it unless a row 1 is there, then reads
    /// back with guards of its own and with [`Only`]s that promise the same.
    fn guarded_batch(conn: &mut Direct) -> Batch {
        let mut setup = Batch::new();
        setup.push("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY)");
        conn.run(&setup).unwrap();
        let mut b = Batch::new();
        b.push("INSERT INTO t (id) VALUES (1) ON CONFLICT DO NOTHING");
        b.push("SELECT 'inserted' WHERE changes() = 1").only(Only::IfChanged(0));
        b.push("SELECT 'was there' WHERE changes() = 0").only(Only::IfUnchanged(0));
        b
    }

    #[tokio::test]
    async fn a_statement_whose_only_does_not_hold_is_skipped_and_has_no_rows() {
        let (_dir, _repo, mut conn) = scratch().await;
        let batch = guarded_batch(&mut conn);
        let texts = |rows: Vec<Vec<Row>>| -> Vec<Vec<String>> {
            rows.iter().map(|r| r.iter().map(|row| row.get(0)).collect()).collect()
        };
        let first = texts(conn.run(&batch).unwrap());
        assert_eq!(first, [vec![], vec!["inserted".to_owned()], vec![]]);
        let again = texts(conn.run(&batch).unwrap());
        assert_eq!(again, [vec![], vec![], vec!["was there".to_owned()]]);
    }

    #[tokio::test]
    async fn only_refers_to_statements_of_its_own_batch_once_batches_are_joined() {
        let (_dir, _repo, mut conn) = scratch().await;
        let mut lead = Batch::new();
        lead.push("SELECT 'lead'");
        let joined = lead.then(guarded_batch(&mut conn));
        let rows = conn.run(&joined).unwrap();
        let counts: Vec<usize> = rows.iter().map(Vec::len).collect();
        assert_eq!(counts, [1, 0, 1, 0]);
    }

    #[tokio::test]
    async fn a_statement_with_too_few_values_is_refused_rather_than_run_with_nulls() {
        let (_dir, _repo, mut conn) = scratch().await;
        let mut b = Batch::new();
        b.push("SELECT ?, ?").bind(1_i64);
        assert!(matches!(conn.run(&b), Err(Error::Internal(_))));
    }

    #[tokio::test]
    async fn a_statement_that_failed_runs_again_with_other_values() {
        let (_dir, _repo, mut conn) = scratch().await;
        let mut make = Batch::new();
        make.push("CREATE TEMP TABLE t (n INTEGER PRIMARY KEY)");
        conn.run(&make).unwrap();
        let insert = |n: i64| {
            let mut b = Batch::new();
            b.push("INSERT INTO t (n) VALUES (?) RETURNING n").bind(n);
            b
        };
        assert_eq!(conn.run(&insert(1)).unwrap()[0][0].get::<i64>(0), 1);
        assert!(matches!(conn.run(&insert(1)), Err(Error::Internal(m)) if m.contains("UNIQUE")));
        assert_eq!(conn.run(&insert(2)).unwrap()[0][0].get::<i64>(0), 2);
    }

    #[tokio::test]
    async fn texts_made_for_one_batch_are_prepared_by_their_content() {
        let (_dir, _repo, mut conn) = scratch().await;
        for n in 0..3_i64 {
            let mut b = Batch::new();
            b.push(format!("SELECT ? + {}", 10)).bind(n);
            b.push(String::from("SELECT 'same text', ?")).bind(n);
            let rows = conn.run(&b).unwrap();
            assert_eq!(rows[0][0].get::<i64>(0), n + 10);
            assert_eq!(rows[1][0].get::<i64>(1), n);
        }
    }

    #[tokio::test]
    async fn a_text_of_two_statements_is_refused_rather_than_cut_short() {
        let (_dir, _repo, mut conn) = scratch().await;
        let mut b = Batch::new();
        b.push("SELECT 1; SELECT 2");
        assert!(matches!(conn.run(&b), Err(Error::Internal(m)) if m.contains("more than one statement")));
        let mut b = Batch::new();
        b.push("SELECT ?; ").bind("");
        assert_eq!(conn.run(&b).unwrap()[0][0].get::<String>(0), "", "a trailing semicolon and an empty text");
    }
}
