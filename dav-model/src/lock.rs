//! Write locks (RFC 4918 section 6 and 9.10). Locks are rows keyed by the path of their
//! root, so they persist across restarts, can sit on URLs that map to nothing, and stay
//! behind when the resource they covered is moved away.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::condition::Preconditions;
use crate::db::Handle;
use crate::path::DavPath;
use crate::resource::{self, content_etag, Resource, Tag};
use crate::txn::Batch;
use crate::{now_ns, Error, Repository, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockScope {
    Exclusive,
    Shared,
}

#[derive(Debug, Clone)]
pub struct ActiveLock {
    pub token: String,
    pub root: DavPath,
    pub scope: LockScope,
    pub depth_infinite: bool,
    /// The DAV:owner content as the client sent it, self-contained XML.
    pub owner_xml: Option<String>,
    pub principal: Option<String>,
    /// Seconds granted; `None` for an infinite lock.
    pub timeout_secs: Option<u64>,
    pub expires_ns: Option<i64>,
}

impl ActiveLock {
    /// True when this lock covers `path`: rooted there, or above it with Depth infinity.
    pub fn covers(&self, path: &DavPath) -> bool {
        &self.root == path || (self.depth_infinite && path.starts_with(&self.root))
    }

    /// Seconds left before expiry, for the lockdiscovery `timeout` element.
    pub fn seconds_left(&self) -> Option<u64> {
        // Rounded up, so a lock just granted for 600 s reads Second-600, not 599.
        self.expires_ns.map(|e| ((e - now_ns()).max(0) as u64).div_ceil(1_000_000_000))
    }
}

#[derive(Debug, Clone)]
pub struct LockRequest {
    pub scope: LockScope,
    pub depth_infinite: bool,
    pub owner_xml: Option<String>,
    pub principal: Option<String>,
    /// Requested timeouts in preference order; `None` entries mean "Infinite".
    pub timeouts: Vec<Option<u64>>,
}

const LOCK_COLUMNS: &str =
    "token, root_path, depth_infinite, exclusive, owner_xml, principal, timeout_secs, expires_ns";

/// A lock from a row whose [`LOCK_COLUMNS`] start at column `at`.
pub(crate) fn lock_from_row_at(row: &crate::db::Row, at: usize) -> Result<ActiveLock> {
    Ok(ActiveLock {
        token: row.get(at),
        root: DavPath::from_key(&row.get::<String>(at + 1))?,
        depth_infinite: row.get::<i64>(at + 2) != 0,
        scope: if row.get::<i64>(at + 3) != 0 { LockScope::Exclusive } else { LockScope::Shared },
        owner_xml: row.get(at + 4),
        principal: row.get(at + 5),
        timeout_secs: row.get::<Option<i64>>(at + 6).map(|t| t.max(0) as u64),
        expires_ns: row.get(at + 7),
    })
}

/// Adds to `batch` the locks that may matter for `path` and everything below it, tagged
/// [`Tag::Lock`]: those rooted at the path's ancestors or the path itself, and those rooted
/// anywhere inside its subtree. One query.
pub(crate) fn push_locks_in_scope(batch: &mut Batch, path: &DavPath) {
    let tag = Tag::Lock as i64;
    batch.push(format!("SELECT {tag}, {LOCK_COLUMNS} FROM locks WHERE {IN_SCOPE}"));
    bind_in_scope(batch, path);
}

/// The guard of the plain writes, which are only tried while no lock exists anywhere
/// ([`LockRows::may_exist`]): one taken meanwhile, anywhere, sends them down the careful
/// path, which looks at the locks in scope. Cheaper than binding the path's scope.
pub(crate) const NO_LOCK_AT_ALL: &str = "NOT EXISTS (SELECT 1 FROM locks)";

/// Locks whose scope covers a path, bound by [`bind_in_scope`]. The ancestors come as one
/// JSON array, so the text is the same at every depth (prepared statements are cached by
/// their text).
const IN_SCOPE: &str = "(expires_ns IS NULL OR expires_ns > ?) \
     AND (root_path IN (SELECT value FROM json_each(?)) OR (root_path >= ? AND root_path < ?))";

fn bind_in_scope(batch: &mut Batch, path: &DavPath) {
    let keys: Vec<String> = path.ancestors_and_self().iter().map(|a| a.key()).collect();
    batch.bind(now_ns()).bind(crate::resource::json_array(&keys));
    let (lo, hi) = subtree_range(path);
    batch.bind(lo).bind(hi);
}

/// [`push_locks_in_scope`], run on its own.
pub(crate) async fn locks_in_scope(conn: &mut dyn Handle, path: &DavPath) -> Result<Vec<ActiveLock>> {
    let mut batch = Batch::new();
    push_locks_in_scope(&mut batch, path);
    batch.fetch_all(conn).await?.iter().map(|r| lock_from_row_at(r, 1)).collect()
}

/// Whether the locks table may hold a row, so that a write can skip looking for locks
/// before its transaction (most trees have none most of the time). Set before any lock is
/// inserted; cleared only by a writer that holds the write connection and saw the table
/// empty, so while it reads false no lock row exists.
///
/// On a database other servers share (PostgreSQL), another node may insert a lock at any
/// moment: there `shared` is set and every write looks.
#[derive(Debug, Default)]
pub(crate) struct LockRows(AtomicBool, bool);

impl LockRows {
    pub fn shared() -> LockRows {
        LockRows(AtomicBool::new(true), true)
    }

    pub fn may_exist(&self) -> bool {
        self.1 || self.0.load(Ordering::Acquire)
    }

    /// Whether a write may try its plain path, whose statements are guarded by "no lock
    /// row at all" and hold back otherwise: unless a lock is known here; on a shared
    /// database always, since the guard is read under the writer lock every node takes.
    pub fn plain_worth_trying(&self) -> bool {
        self.1 || !self.0.load(Ordering::Acquire)
    }

    fn expect(&self) {
        self.0.store(true, Ordering::Release);
    }

    /// Looks at the table again; `conn` must be the write connection, held across the
    /// change that may have emptied it.
    pub async fn recheck(&self, conn: &mut dyn Handle) -> Result<()> {
        let (any,): (bool,) = crate::db::query_as("SELECT EXISTS (SELECT 1 FROM locks)").fetch_one(&mut *conn).await?;
        self.0.store(any, Ordering::Release);
        Ok(())
    }
}

/// Key range holding every path strictly below `path` (`'/a/'` to `'/a0'`: `0` follows `/`).
fn subtree_range(path: &DavPath) -> (String, String) {
    if path.is_root() {
        return ("/".into(), "0".into());
    }
    let k = path.key();
    (format!("{k}/"), format!("{k}0"))
}

/// Removes the locks rooted at `path` or below it (after DELETE or MOVE of that subtree).
pub(crate) async fn drop_subtree_locks(conn: &mut dyn Handle, path: &DavPath) -> Result<()> {
    let (lo, hi) = subtree_range(path);
    crate::db::query("DELETE FROM locks WHERE root_path = ? OR (root_path >= ? AND root_path < ?)")
        .bind(path.key())
        .bind(lo)
        .bind(hi)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// What a write must prove: the lock tokens of every lock covering `path` (and, for
/// `subtree`, every lock inside it), plus the locks on the parent collection when the
/// parent's membership changes, must be submitted by the lock's own principal.
pub(crate) struct WriteScope<'a> {
    pub path: &'a DavPath,
    pub subtree: bool,
    pub membership_changes: bool,
}

pub(crate) fn check_write(
    locks: &[ActiveLock],
    scope: &WriteScope<'_>,
    pre: &Preconditions,
    principal: Option<&str>,
) -> Result<()> {
    let submitted: Vec<&str> = pre.if_header.iter().flat_map(|h| h.tokens()).collect();
    let parent = scope.path.parent();
    let mut blocked = Vec::new();
    for lock in locks {
        let relevant = lock.covers(scope.path)
            || (scope.subtree && lock.root.starts_with(scope.path))
            || (scope.membership_changes && parent.as_ref() == Some(&lock.root));
        let proven = submitted.contains(&lock.token.as_str()) && lock.principal.as_deref() == principal;
        if relevant && !proven {
            blocked.push(lock.root.clone());
        }
    }
    if blocked.is_empty() {
        Ok(())
    } else {
        Err(Error::Locked(blocked))
    }
}

impl Repository {
    /// Creates a lock. A LOCK on an unmapped URL creates an empty resource there
    /// (RFC 4918 7.3), reported through the returned `bool`.
    pub(crate) async fn lock(
        &self,
        path: &DavPath,
        req: LockRequest,
        pre: &Preconditions,
    ) -> Result<(ActiveLock, bool)> {
        if let Some(at) = self.mounted(path).await? {
            at.refuse_archive_writes()?;
        }
        let _gate = self.lock_gate.write().await;
        let mut tx = self.write.begin().await?;
        let target = self.lookup_in(&mut tx, path).await?;
        let locks = locks_in_scope(&mut tx, path).await?;
        self.evaluate(&mut tx, path, target.as_ref(), pre, &locks).await?;
        let conflicts: Vec<DavPath> = locks
            .iter()
            .filter(|l| l.covers(path) || (req.depth_infinite && l.root.starts_with(path)))
            .filter(|l| l.scope == LockScope::Exclusive || req.scope == LockScope::Exclusive)
            .map(|l| l.root.clone())
            .collect();
        if !conflicts.is_empty() {
            return Err(Error::ConflictingLock(conflicts));
        }
        let created = target.is_none();
        if created {
            check_write(
                &locks,
                &WriteScope { path, subtree: false, membership_changes: true },
                pre,
                req.principal.as_deref(),
            )?;
            self.create_empty(&mut tx, path).await?;
        }
        let timeout = self.grant_timeout(&req.timeouts);
        let lock = ActiveLock {
            token: format!("opaquelocktoken:{}", uuid::Uuid::new_v4()),
            root: path.clone(),
            scope: req.scope,
            depth_infinite: req.depth_infinite && target.as_ref().is_some_and(|r| r.is_collection),
            owner_xml: req.owner_xml,
            principal: req.principal,
            timeout_secs: Some(timeout),
            expires_ns: Some(now_ns() + timeout as i64 * 1_000_000_000),
        };
        self.lock_rows.expect();
        insert_lock(&mut tx, &lock).await?;
        self.commit(tx).await?;
        Ok((lock, created))
    }

    /// The resource at `path` as a transaction sees it, on whichever tree it lives.
    pub(crate) async fn lookup_in(&self, conn: &mut dyn Handle, path: &DavPath) -> Result<Option<Resource>> {
        match self.mounted(path).await? {
            Some(at) => crate::mount::stat(&at, path).await,
            None => resource::lookup(conn, path).await,
        }
    }

    /// The empty file a LOCK of an unmapped URL creates (RFC 4918 7.3).
    async fn create_empty(&self, conn: &mut dyn Handle, path: &DavPath) -> Result<()> {
        if let Some(at) = self.mounted(path).await? {
            return self.mounted_create_empty(&at).await.map(drop);
        }
        let parent = path.parent().ok_or(Error::Conflict("no parent".into()))?;
        let parent = resource::lookup(conn, &parent).await?.filter(|p| p.is_collection);
        let parent = parent.ok_or_else(|| Error::Conflict("parent collection missing".into()))?;
        let now = now_ns();
        crate::db::query(
            "INSERT INTO resources (parent_id, name, is_collection, size, etag, created_ns, modified_ns) \
             VALUES (?, ?, 0, 0, ?, ?, ?)",
        )
        .bind(parent.id)
        .bind(path.name().unwrap_or_default())
        .bind(content_etag(None))
        .bind(now)
        .bind(now)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    fn grant_timeout(&self, asked: &[Option<u64>]) -> u64 {
        let max = self.config.max_lock_timeout;
        match asked.first() {
            None => self.config.default_lock_timeout.min(max),
            Some(None) => max,
            Some(Some(s)) => (*s).clamp(1, max),
        }
    }

    /// Refreshes the lock whose token the client submitted in its `If` header.
    pub(crate) async fn refresh_lock(
        &self,
        path: &DavPath,
        pre: &Preconditions,
        principal: Option<&str>,
        timeouts: &[Option<u64>],
    ) -> Result<ActiveLock> {
        let mut tx = self.write.begin().await?;
        let target = self.lookup_in(&mut tx, path).await?;
        let locks = locks_in_scope(&mut tx, path).await?;
        self.evaluate(&mut tx, path, target.as_ref(), pre, &locks).await?;
        let submitted: Vec<&str> = pre.if_header.iter().flat_map(|h| h.tokens()).collect();
        let (mine, others): (Vec<ActiveLock>, Vec<ActiveLock>) = locks
            .into_iter()
            .filter(|l| l.covers(path) && submitted.contains(&l.token.as_str()))
            .partition(|l| l.principal.as_deref() == principal);
        // A client may submit other principals' tokens beside its own (a shared lock's
        // holders all know each other's): its own lock is the one refreshed.
        let Some(mut lock) = mine.into_iter().next() else {
            return Err(if others.is_empty() {
                Error::PreconditionFailed
            } else {
                Error::Forbidden("lock belongs to another principal".into())
            });
        };
        let timeout = self.grant_timeout(timeouts);
        lock.timeout_secs = Some(timeout);
        lock.expires_ns = Some(now_ns() + timeout as i64 * 1_000_000_000);
        crate::db::query("UPDATE locks SET timeout_secs = ?, expires_ns = ? WHERE token = ?")
            .bind(timeout as i64)
            .bind(lock.expires_ns)
            .bind(&lock.token)
            .execute(&mut tx)
            .await?;
        self.commit(tx).await?;
        Ok(lock)
    }

    /// Removes the lock `token`, which must cover `path` and belong to `principal`
    /// (unless `may_break`: an administrator removing someone else's lock).
    pub(crate) async fn unlock(
        &self,
        path: &DavPath,
        token: &str,
        principal: Option<&str>,
        may_break: bool,
    ) -> Result<()> {
        let mut conn = self.write.acquire().await?;
        let mut tx = conn.begin().await?;
        let locks = locks_in_scope(&mut tx, path).await?;
        let lock = locks.iter().find(|l| l.token == token && l.covers(path)).ok_or(Error::LockTokenMismatch)?;
        if lock.principal.as_deref() != principal && !may_break {
            return Err(Error::Forbidden("lock belongs to another principal".into()));
        }
        crate::db::query("DELETE FROM locks WHERE token = ?").bind(token).execute(&mut tx).await?;
        self.commit(tx).await?;
        self.lock_rows.recheck(&mut conn).await
    }

    /// Deletes expired lock rows; reads already ignore them, this only keeps the table small
    /// (and lets writes skip the lock lookup again once it is empty).
    pub async fn purge_expired_locks(&self) -> Result<u64> {
        let mut conn = self.write.acquire().await?;
        // In a write transaction, so under PostgreSQL's writer lock: a bare DELETE of
        // several rows could deadlock with a MOVE or DELETE removing locks of a subtree.
        let mut tx = conn.begin().await?;
        let r = crate::db::query("DELETE FROM locks WHERE expires_ns IS NOT NULL AND expires_ns <= ?")
            .bind(now_ns())
            .execute(&mut tx)
            .await?;
        tx.commit().await?;
        self.lock_rows.recheck(&mut conn).await?;
        Ok(r.rows_affected())
    }
}

async fn insert_lock(conn: &mut dyn Handle, lock: &ActiveLock) -> Result<()> {
    crate::db::query(&format!("INSERT INTO locks ({LOCK_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"))
        .bind(&lock.token)
        .bind(lock.root.key())
        .bind(lock.depth_infinite as i64)
        .bind((lock.scope == LockScope::Exclusive) as i64)
        .bind(&lock.owner_xml)
        .bind(&lock.principal)
        .bind(lock.timeout_secs.map(|t| t as i64))
        .bind(lock.expires_ns)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
