//! The database under the model: SQLite (embedded, the default) or PostgreSQL (shared by
//! several nodes), behind one small set of types.
//!
//! The model's statements are plain SQL written once, with `?` placeholders and values of
//! a few kinds ([`Value`]), read back as a few Rust types ([`Row`]); where the two
//! databases differ in more than placeholders, the model asks [`Dialect`] and writes each
//! its own statement. Each database keeps its strengths: SQLite has one write connection
//! (whose thread runs a batch of statements in one trip, see `txn.rs`), PostgreSQL a pool
//! whose write transactions queue on one advisory lock, so that every node sees the same
//! single-writer order the model was written for, while reads run concurrently.

pub(crate) mod direct;
mod guard;
mod library;
pub(crate) use library::configure as configure_sqlite;
mod prepared;
mod query;
mod row;
pub(crate) mod sql;

use std::str::FromStr;
use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::postgres::PgConnection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection as _, PgPool, Postgres, Sqlite, SqliteConnection, SqlitePool};
use wharf_backends::Durability;

pub(crate) use guard::CollectorGuard;
pub(crate) use query::{pg_arguments, query, query_as, sqlite_arguments, Value};
pub(crate) use row::Row;

/// A database, opened: pools for reads and for writes, and the collector's guard.
pub(crate) struct Opened {
    pub read: Pool,
    pub write: Pool,
    pub collector: CollectorGuard,
    /// Where the group committer opens its own connection (SQLite files only).
    pub direct: Option<direct::Spec>,
}

/// Connects to the database at `url` (`sqlite://FILE`, or `postgres://…` /
/// `postgresql://…`) and brings its schema up to date.
pub(crate) async fn open(url: &str, durability: Durability) -> crate::Result<Opened> {
    if is_postgres(url) {
        open_postgres(url).await
    } else {
        let (read, write, direct) = open_sqlite(url, durability).await?;
        Ok(Opened { read, write, collector: CollectorGuard::default(), direct })
    }
}

/// The read pool and the one write connection of an SQLite database, migrated.
async fn open_sqlite(url: &str, durability: Durability) -> crate::Result<(Pool, Pool, Option<direct::Spec>)> {
    library::configure();
    let sync = match durability {
        Durability::Process => SqliteSynchronous::Normal,
        Durability::Full => SqliteSynchronous::Full,
    };
    let opts = SqliteConnectOptions::from_str(url)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(sync)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(30));
    // No ping before each acquire: these are local files, not network connections.
    let pool = || SqlitePoolOptions::new().test_before_acquire(false);
    // Room for the joined statements of every group size besides the single ones, for
    // groups committed through this connection (a database in memory, see `group/`).
    let cache = 128 + 2 * crate::group::MAX_GROUP;
    let write = pool().max_connections(1).connect_with(opts.clone().statement_cache_capacity(cache)).await?;
    sqlx::migrate!("../migrations/sqlite").run(&write).await?;
    let (file,): (String,) =
        sqlx::query_as("SELECT file FROM pragma_database_list WHERE name = 'main'").fetch_one(&write).await?;
    let direct = direct::Spec::for_file(&file, durability);
    let read = pool().max_connections(8).connect_with(opts.read_only(true)).await?;
    Ok((Pool::Sqlite(read), Pool::Sqlite(write), direct))
}

/// Three pools, so that no kind of work can take the connections another needs: reads;
/// writes, whose transactions queue on the writer lock (each waiting one holds its
/// connection); and the collector's guard, held by uploads while their writes commit.
/// Several nodes starting at once migrate one after another (sqlx holds an advisory lock
/// while it migrates).
async fn open_postgres(url: &str) -> crate::Result<Opened> {
    let pool = |n| {
        sqlx::postgres::PgPoolOptions::new()
            .max_connections(n)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(60))
            .connect(url)
    };
    // Sixteen connections a node, so that a few nodes fit PostgreSQL's default of 100.
    let write = pool(4).await?;
    sqlx::migrate!("../migrations/postgres").run(&write).await?;
    Ok(Opened {
        read: Pool::Pg { pool: pool(8).await?, writer: false },
        write: Pool::Pg { pool: write, writer: true },
        collector: CollectorGuard::shared(pool(4).await?),
        direct: None,
    })
}

/// The database of the repository in `dir`: `database` if given, else `dir/wharf.db`.
pub(crate) fn url(dir: &std::path::Path, database: Option<&str>) -> String {
    match database {
        Some(url) => url.to_owned(),
        None => format!("sqlite://{}", dir.join("wharf.db").display()),
    }
}

fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// Which SQL a statement must be written in, where the two differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

/// The advisory lock every PostgreSQL write transaction takes first ("Wharf" and a
/// version byte): the cluster-wide counterpart of SQLite's one write connection.
const WRITER_LOCK: i64 = 0x5768_6172_6601;

/// Connections to the database, for reads or for writes.
#[derive(Clone)]
pub(crate) enum Pool {
    Sqlite(SqlitePool),
    /// `writer`: transactions begun here take the writer lock.
    Pg {
        pool: PgPool,
        writer: bool,
    },
}

impl Pool {
    pub fn dialect(&self) -> Dialect {
        match self {
            Pool::Sqlite(_) => Dialect::Sqlite,
            Pool::Pg { .. } => Dialect::Postgres,
        }
    }

    /// One connection to an existing database, to read it without migrating it (SQLite's
    /// read-only).
    pub async fn connect_existing(url: &str) -> Result<Pool, sqlx::Error> {
        if is_postgres(url) {
            let pool = sqlx::postgres::PgPoolOptions::new().max_connections(1).connect(url).await?;
            return Ok(Pool::Pg { pool, writer: false });
        }
        let options = SqliteConnectOptions::from_str(url)?.read_only(true);
        Ok(Pool::Sqlite(SqlitePoolOptions::new().max_connections(1).connect_with(options).await?))
    }

    pub async fn acquire(&self) -> Result<Conn, sqlx::Error> {
        Ok(match self {
            Pool::Sqlite(p) => Conn::Sqlite(p.acquire().await?),
            Pool::Pg { pool, writer } => Conn::Pg { conn: pool.acquire().await?, writer: *writer },
        })
    }

    /// A transaction on a connection of its own.
    pub async fn begin(&self) -> Result<Tx<'static>, sqlx::Error> {
        match self {
            Pool::Sqlite(p) => Ok(Tx::Sqlite(p.begin().await?)),
            Pool::Pg { pool, writer } => pg_begin(pool.begin().await?, *writer).await,
        }
    }

    pub async fn close(&self) {
        match self {
            Pool::Sqlite(p) => close_fully(p).await,
            Pool::Pg { pool, .. } => close_fully(pool).await,
        }
    }
}

/// sqlx's `close` can return with a connection left idle in the pool: one whose return
/// had passed its "is the pool closed?" check when the close began, and was pinged and
/// put back while the close waited for it (sqlx 0.8's `return_to_pool`). On SQLite that
/// connection keeps the log open. Closing again closes what came back; each round waits
/// for the connections still out, so this does not spin.
async fn close_fully<DB: sqlx::Database>(pool: &sqlx::Pool<DB>) {
    for _ in 0..8 {
        pool.close().await;
        if pool.size() == 0 {
            return;
        }
    }
    tracing::warn!(open = pool.size(), "connections were still open after the pool closed");
}

/// Takes the writer lock inside a PostgreSQL transaction.
pub(crate) async fn pg_lock_writer(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(WRITER_LOCK).execute(conn).await.map(|_| ())
}

/// A write transaction takes the writer lock; a read transaction reads one snapshot
/// throughout, as SQLite's do.
async fn pg_begin(mut tx: sqlx::Transaction<'_, Postgres>, writer: bool) -> Result<Tx<'_>, sqlx::Error> {
    if writer {
        pg_lock_writer(&mut tx).await?;
    } else {
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY").execute(&mut *tx).await?;
    }
    Ok(Tx::Pg(tx))
}

/// One connection taken from a [`Pool`].
pub(crate) enum Conn {
    Sqlite(PoolConnection<Sqlite>),
    Pg { conn: PoolConnection<Postgres>, writer: bool },
}

impl Conn {
    /// A transaction on this connection.
    pub async fn begin(&mut self) -> Result<Tx<'_>, sqlx::Error> {
        match self {
            Conn::Sqlite(c) => Ok(Tx::Sqlite(c.begin().await?)),
            Conn::Pg { conn, writer } => pg_begin(conn.begin().await?, *writer).await,
        }
    }

    /// Closes the connection when it is dropped instead of returning it to its pool.
    pub fn close_on_drop(&mut self) {
        match self {
            Conn::Sqlite(c) => c.close_on_drop(),
            Conn::Pg { conn, .. } => conn.close_on_drop(),
        }
    }
}

/// A transaction; dropped without [`Tx::commit`], it rolls back.
pub(crate) enum Tx<'c> {
    Sqlite(sqlx::Transaction<'c, Sqlite>),
    Pg(sqlx::Transaction<'c, Postgres>),
}

impl Tx<'_> {
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        match self {
            Tx::Sqlite(t) => t.commit().await,
            Tx::Pg(t) => t.commit().await,
        }
    }
}

/// A connection a statement can run on, borrowed from a [`Conn`] or a [`Tx`].
pub(crate) enum Link<'a> {
    Sqlite(&'a mut SqliteConnection),
    Pg(&'a mut PgConnection),
}

/// Something holding a connection: what helpers that run several statements take.
pub(crate) trait Handle: Send {
    fn link(&mut self) -> Link<'_>;

    fn dialect(&mut self) -> Dialect {
        match self.link() {
            Link::Sqlite(_) => Dialect::Sqlite,
            Link::Pg(_) => Dialect::Postgres,
        }
    }
}

impl Handle for Conn {
    fn link(&mut self) -> Link<'_> {
        match self {
            Conn::Sqlite(c) => Link::Sqlite(c),
            Conn::Pg { conn, .. } => Link::Pg(conn),
        }
    }
}

impl Handle for Tx<'_> {
    fn link(&mut self) -> Link<'_> {
        match self {
            Tx::Sqlite(t) => Link::Sqlite(t),
            Tx::Pg(t) => Link::Pg(t),
        }
    }
}

/// Where a statement runs: any connection of a pool, or a given one.
pub(crate) enum Target<'a> {
    Pool(&'a Pool),
    Link(Link<'a>),
}

/// What queries accept to run on: `&pool`, `&mut conn`, `&mut tx`.
pub(crate) trait On<'a> {
    fn target(self) -> Target<'a>;
}

impl<'a> On<'a> for &'a Pool {
    fn target(self) -> Target<'a> {
        Target::Pool(self)
    }
}

impl<'a, H: Handle + ?Sized> On<'a> for &'a mut H {
    fn target(self) -> Target<'a> {
        Target::Link(self.link())
    }
}

impl<H: Handle + ?Sized> Handle for &mut H {
    fn link(&mut self) -> Link<'_> {
        (**self).link()
    }
}

/// A connection of its own (backups and checks open one on a given file).
impl Handle for SqliteConnection {
    fn link(&mut self) -> Link<'_> {
        Link::Sqlite(self)
    }
}
