//! The store's invariants after every step. `Repository::fsck` (check only, every blob's
//! bytes verified) covers most: reachability, blob reference counts, missing and
//! unreferenced blob files, sizes, lock roots. Checked here besides, with SQL and on disk,
//! is what a finished operation leaves that fsck allows for in general: no blob at
//! reference count 0 (each operation collects its own garbage) and no upload left in
//! `tmp/`; that Depth infinity locks are rooted at collections; and that the quota's
//! figures agree with its limit (the bytes used are compared with the reference's).

use std::collections::BTreeSet;
use std::path::Path;

use dav_model::fsck::FsckOptions;
use dav_model::{DavPath, Repository};

use crate::state::{LockRow, Snapshot};

/// A connection of its own to the repository's database: the SQLite file in the data
/// directory, or the PostgreSQL database of the test command's second pass.
pub enum Db {
    Sqlite(sqlx::SqlitePool),
    Pg(sqlx::PgPool),
}

/// Runs `$sql` (placeholders `$1`, `$2`, … on both) with `$binds` on `$db` and reads the
/// rows as `$t`: the same text for either database.
macro_rules! fetch_all {
    ($db:expr, $t:ty, $sql:expr $(, $bind:expr)*) => {
        match $db {
            Db::Sqlite(pool) => sqlx::query_as::<_, $t>($sql)$(.bind($bind))*.fetch_all(pool).await,
            Db::Pg(pool) => sqlx::query_as::<_, $t>($sql)$(.bind($bind))*.fetch_all(pool).await,
        }
    };
}
pub(crate) use fetch_all;

impl Db {
    pub async fn open(dir: &Path, database: Option<&str>) -> Db {
        match database {
            Some(url) => {
                Db::Pg(sqlx::postgres::PgPoolOptions::new().max_connections(1).connect(url).await.expect("database"))
            }
            None => {
                let url = format!("sqlite://{}?mode=ro", dir.join("wharf.db").display());
                Db::Sqlite(
                    sqlx::sqlite::SqlitePoolOptions::new().max_connections(1).connect(&url).await.expect("database"),
                )
            }
        }
    }

    pub async fn close(&self) {
        match self {
            Db::Sqlite(pool) => pool.close().await,
            Db::Pg(pool) => pool.close().await,
        }
    }
}

/// Every unexpired lock row.
pub async fn lock_rows(db: &Db) -> Result<BTreeSet<LockRow>, String> {
    let rows = fetch_all!(
        db,
        (String, String, bool, bool, Option<String>),
        "SELECT token, root_path, depth_infinite <> 0, exclusive <> 0, principal FROM locks \
         WHERE expires_ns IS NULL OR expires_ns > $1",
        dav_model::now_ns()
    )
    .map_err(|e| e.to_string())?;
    rows.into_iter()
        .map(|(token, root, deep, exclusive, owner)| {
            let root =
                DavPath::from_key(&root).map_err(|e| e.to_string())?.segments().iter().map(|s| s.to_string()).collect();
            Ok(LockRow { token, root, deep, exclusive, owner: owner.unwrap_or_default() })
        })
        .collect()
}

/// Every broken invariant, one line each.
pub async fn check(repo: &Repository, db: &Db, data: &Path) -> Result<Vec<String>, String> {
    let mut out = fsck(repo).await?;
    out.extend(sql(db).await.map_err(|e| e.to_string())?);
    let left = std::fs::read_dir(data.join("blobs").join("tmp")).map_err(|e| e.to_string())?.count();
    if left > 0 {
        out.push(format!("{left} files left in the blob store's tmp/"));
    }
    let quota = repo.quota().await.map_err(|e| e.to_string())?;
    if let Some(limit) = repo.config().quota_bytes {
        if quota.used > limit || quota.available > limit - quota.used {
            out.push(format!("quota of {limit} bytes, {} used and {} available", quota.used, quota.available));
        }
    }
    Ok(out)
}

async fn fsck(repo: &Repository) -> Result<Vec<String>, String> {
    let options = FsckOptions { repair: false, verify_content: true };
    let report = repo.fsck(options).await.map_err(|e| e.to_string())?;
    Ok(report.problems.iter().map(|p| format!("fsck: {:?}", p.finding)).collect())
}

async fn sql(db: &Db) -> sqlx::Result<Vec<String>> {
    let rows = fetch_all!(db, (String,), "SELECT id FROM blobs WHERE refcount <= 0")?;
    Ok(rows.into_iter().map(|(id,)| format!("garbage left behind: blob {id}")).collect())
}

/// Depth infinity locks are rooted at collections.
pub fn deep_locks_on_collections(seen: &Snapshot) -> Vec<String> {
    let on_file = |l: &&LockRow| seen.nodes.get(&l.root).is_some_and(|n| n.content.is_some());
    seen.locks
        .iter()
        .filter(|l| l.deep)
        .filter(on_file)
        .map(|l| format!("depth infinity lock on a file: {l:?}"))
        .collect()
}
