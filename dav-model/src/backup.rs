//! `wharf backup` and `wharf restore`: a consistent copy of a data directory taken while a
//! server runs on it, and bringing one back.
//!
//! A backup is a data directory of its own (`wharf serve --data BACKUP` serves it): the
//! database as one SQLite snapshot (`VACUUM INTO`), and exactly the blobs that snapshot
//! points at, hard-linked where the file system allows and copied otherwise.
//!
//! Why the order "snapshot, then link" is safe while a server writes and collects:
//! - a row only ever commits after its blob's file is in place, so every blob a snapshot
//!   points at had its file in the store when the snapshot was taken;
//! - a blob file never changes once in place (its name is the hash of its bytes; a commit
//!   of the same bytes renames identical bytes over it), so linking or copying it at any
//!   later moment gives exactly the bytes the snapshot means;
//! - the one thing that can happen meanwhile is that the server collects it, because a
//!   later write stopped pointing at it. Linking then fails with "not found", and a fresh
//!   snapshot is taken: it no longer points at that blob (or its file is back, uploaded
//!   again). Blobs linked already stay, so each round only has the few blobs written
//!   since to link, and rounds converge quickly. A blob missing from two snapshots in a row
//!   is not a race but damage of the store; the backup then completes without it and says
//!   so (`wharf fsck` reports the same).
//!
//! Finally every blob file the last snapshot does not point at is removed again, so a
//! backup never holds a blob that only a later state of the store referenced, and the
//! database is renamed to `wharf.db` last: a directory with a `wharf.db` is a complete
//! backup. Host folders served in place are not copied: their mounts and dead properties
//! are rows of the database, their files belong to the host.

use std::collections::HashSet;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{Connection, SqliteConnection};
use wharf_backends::{BlobId, BlobStore, Durability, LocalStore, Taken};

use crate::datadir::LOCK_FILE;
use crate::{Error, Result};

/// Snapshots taken before giving up on a store that collects faster than we can link.
const MAX_ROUNDS: u32 = 20;

const DB: &str = "wharf.db";
const PARTIAL: &str = "wharf.db.partial";

/// What a backup or restore holds and how its blobs got there.
#[derive(Debug, Clone, Default)]
pub struct Copied {
    pub blobs: u64,
    pub linked: u64,
    pub copied: u64,
    /// Snapshots taken (backup only): more than one when the server collected a blob of a
    /// snapshot before it was linked.
    pub rounds: u32,
    /// Blobs the database points at that the source store did not have.
    pub missing: Vec<BlobId>,
    /// Host folders whose mounts the database holds: `(stored path, folder)`. Their files
    /// are not part of the copy.
    pub host_folders: Vec<(String, String)>,
}

impl Copied {
    fn count(&mut self, taken: Taken) {
        match taken {
            Taken::Linked => self.linked += 1,
            Taken::Copied => self.copied += 1,
            Taken::Present => {}
        }
    }
}

/// Writes a backup of the data directory `data` to `dest`, which must not exist or be
/// empty. Works while a server runs on `data`.
pub async fn backup(data: &Path, dest: &Path) -> Result<Copied> {
    let source_db = data.join(DB);
    if !source_db.is_file() {
        return Err(Error::Internal(format!("no repository in {} (no {DB})", data.display())));
    }
    if let Some(s3) = crate::blobs::recorded_s3(&format!("sqlite://{}", source_db.display())).await? {
        return Err(Error::Internal(format!(
            "the blobs of {} are in {}: back the bucket up with its own tools (versioning, replication); \
             wharf backup copies only local blobs",
            data.display(),
            s3.url()
        )));
    }
    ensure_empty(dest, false)?;
    let source = LocalStore::attach(data.join("blobs"), Durability::Process).await?;
    let target = LocalStore::open(dest.join("blobs"), Durability::Full).await?;
    let mut live = connect(&source_db).await?;
    let snapshot = dest.join(PARTIAL);
    let mut out = Copied::default();
    let mut missed: HashSet<BlobId> = HashSet::new();
    let needed = loop {
        out.rounds += 1;
        remove_if_there(&snapshot)?;
        crate::db::query("VACUUM INTO ?").bind(snapshot.to_string_lossy().into_owned()).execute(&mut live).await?;
        let needed = referenced(&snapshot).await?;
        let mut missing = HashSet::new();
        for id in &needed {
            match target.take_from(&source, id).await {
                Ok(taken) => out.count(taken),
                Err(wharf_backends::Error::NotFound(_)) => {
                    missing.insert(id.clone());
                }
                Err(e) => return Err(e.into()),
            }
        }
        // Missing from this snapshot and the one before: damage, not a collection race.
        let raced = missing.difference(&missed).count();
        if raced == 0 {
            out.missing = missing.into_iter().collect();
            out.missing.sort();
            break needed;
        }
        if out.rounds == MAX_ROUNDS {
            return Err(Error::Internal(format!(
                "the server collected blobs faster than they could be linked, {MAX_ROUNDS} times"
            )));
        }
        missed = missing;
    };
    live.close().await?;
    for stale in target.list().await?.into_iter().filter(|id| !needed.contains(id)) {
        target.delete(&stale).await?;
    }
    out.blobs = (needed.len() - out.missing.len()) as u64;
    out.host_folders = finish_snapshot(&snapshot).await?;
    target.sync_names().await?;
    std::fs::rename(&snapshot, dest.join(DB)).map_err(io_error(dest))?;
    sync_dir(dest)?;
    Ok(out)
}

/// Brings the backup `backup` back into the data directory `data`: the database copied
/// (never linked: a server writes it in place), the blobs linked or copied. `data` must be
/// empty unless `force`, which replaces the database and blob store it holds. The server
/// must not be running on `data` (see [`crate::datadir::DataDirLock`]).
pub async fn restore(backup: &Path, data: &Path, force: bool) -> Result<Copied> {
    let backup_db = backup.join(DB);
    if !backup_db.is_file() {
        return Err(Error::Internal(format!("{} is not a backup (no {DB})", backup.display())));
    }
    ensure_empty(data, force)?;
    for stale in [DB, "wharf.db-wal", "wharf.db-shm", PARTIAL] {
        remove_if_there(&data.join(stale))?;
    }
    match std::fs::remove_dir_all(data.join("blobs")) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io_error(data)(e)),
        _ => {}
    }
    let source = LocalStore::attach(backup.join("blobs"), Durability::Process).await?;
    let target = LocalStore::open(data.join("blobs"), Durability::Full).await?;
    let mut out = Copied { rounds: 1, ..Copied::default() };
    for id in source.list().await? {
        out.count(target.take_from(&source, &id).await?);
        out.blobs += 1;
    }
    target.sync_names().await?;
    let partial = data.join(PARTIAL);
    std::fs::copy(&backup_db, &partial).map_err(io_error(data))?;
    out.host_folders = finish_snapshot(&partial).await?;
    std::fs::rename(&partial, data.join(DB)).map_err(io_error(data))?;
    sync_dir(data)?;
    Ok(out)
}

/// Refuses a directory holding anything but the lock file, unless `force`; creates it.
fn ensure_empty(dir: &Path, force: bool) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(io_error(dir))?;
    let mut entries = std::fs::read_dir(dir).map_err(io_error(dir))?;
    let taken = entries.any(|e| e.map_or(true, |e| e.file_name() != LOCK_FILE));
    if taken && !force {
        return Err(Error::Conflict(format!("{} is not empty", dir.display())));
    }
    Ok(())
}

async fn connect(db: &Path) -> Result<SqliteConnection> {
    crate::db::configure_sqlite();
    let opts = SqliteConnectOptions::from_str(&format!("sqlite://{}", db.display()))?
        .create_if_missing(false)
        .busy_timeout(Duration::from_secs(30));
    Ok(SqliteConnection::connect_with(&opts).await?)
}

/// The blobs the snapshot's files point at.
async fn referenced(snapshot: &Path) -> Result<HashSet<BlobId>> {
    let mut conn = connect(snapshot).await?;
    let rows: Vec<(String,)> =
        // Inline blobs are in the snapshot itself.
        crate::db::query_as(
            "SELECT DISTINCT r.blob_id FROM resources r JOIN blobs b ON b.id = r.blob_id \
             WHERE r.blob_id IS NOT NULL AND b.data IS NULL \
             UNION SELECT blob_id FROM resources WHERE blob_id NOT IN (SELECT id FROM blobs)",
        )
        .fetch_all(&mut conn)
        .await?;
    conn.close().await?;
    // An id that is not one can name no file: fsck reports it, the backup leaves it out.
    Ok(rows.into_iter().filter_map(|(id,)| BlobId::parse(&id)).collect())
}

/// Drops blob rows already at refcount 0 from a copied database (the collector would: their
/// files are not part of the copy), makes it durable, and returns its host folders.
async fn finish_snapshot(db: &Path) -> Result<Vec<(String, String)>> {
    let mut conn = connect(db).await?;
    crate::db::query("DELETE FROM blobs WHERE refcount <= 0").execute(&mut conn).await?;
    let mounts: Vec<(String, String)> =
        crate::db::query_as("SELECT stored_path, source FROM mounts ORDER BY stored_path").fetch_all(&mut conn).await?;
    crate::db::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&mut conn).await?;
    conn.close().await?;
    std::fs::File::open(db).and_then(|f| f.sync_all()).map_err(io_error(db))?;
    Ok(mounts)
}

fn remove_if_there(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_error(path)(e)),
        _ => Ok(()),
    }
}

fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir).and_then(|f| f.sync_all()).map_err(io_error(dir))
}

fn io_error(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::Internal(format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;
    use crate::fsck::{Finding, FsckOptions};
    use crate::{Config, DavPath, PutOptions, Repository};

    fn p(s: &str) -> DavPath {
        DavPath::parse(s).unwrap()
    }

    async fn put(repo: &Repository, path: &str, bytes: &'static [u8]) {
        let body = Box::pin(futures_util::stream::once(async move { Ok(bytes::Bytes::from_static(bytes)) }));
        repo.put(&p(path), body, PutOptions::default()).await.unwrap();
    }

    async fn read(repo: &Repository, path: &str) -> Vec<u8> {
        use futures_util::StreamExt;
        let r = repo.resolve(&p(path)).await.unwrap().unwrap();
        let mut stream = repo.read_content(&r, None).await.unwrap();
        let mut out = Vec::new();
        while let Some(chunk) = stream.next().await {
            out.extend_from_slice(&chunk.unwrap());
        }
        out
    }

    #[tokio::test]
    async fn a_backup_restores_to_a_consistent_store_with_the_same_bytes_sharing_the_files() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let repo = Repository::open(&data, Config::blob_files_only()).await.unwrap();
        put(&repo, "/a", b"first").await;
        put(&repo, "/b", b"second").await;
        let done = backup(&data, &dir.path().join("backup")).await.unwrap();
        assert_eq!((done.blobs, done.linked, done.rounds), (2, 2, 1));
        // Written after the backup: not in it.
        put(&repo, "/a", b"later").await;
        repo.close().await;

        let restored = dir.path().join("restored");
        let back = restore(&dir.path().join("backup"), &restored, false).await.unwrap();
        assert_eq!((back.blobs, back.linked), (2, 2));
        let repo = Repository::open_maintenance(&restored, None).await.unwrap();
        let report = repo.fsck(FsckOptions { repair: false, verify_content: true }).await.unwrap();
        assert!(report.is_clean(), "{report}");
        assert_eq!(read(&repo, "/a").await, b"first");
        assert_eq!(read(&repo, "/b").await, b"second");
        let blob = repo.resolve(&p("/b")).await.unwrap().unwrap().blob.unwrap();
        let file = |root: &Path| root.join("blobs/blobs").join(&blob.as_str()[..2]).join(blob.as_str());
        assert_eq!(std::fs::metadata(file(&restored)).unwrap().ino(), std::fs::metadata(file(&data)).unwrap().ino());
    }

    #[tokio::test]
    async fn inline_contents_travel_in_the_database_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let repo = Repository::open(&data, Config::default()).await.unwrap();
        put(&repo, "/small", b"kept in the database").await;
        let done = backup(&data, &dir.path().join("backup")).await.unwrap();
        assert_eq!(done.blobs, 0, "no blob file to link");
        repo.close().await;

        let restored = dir.path().join("restored");
        restore(&dir.path().join("backup"), &restored, false).await.unwrap();
        let repo = Repository::open_maintenance(&restored, None).await.unwrap();
        let report = repo.fsck(FsckOptions { repair: false, verify_content: true }).await.unwrap();
        assert!(report.is_clean(), "{report}");
        assert_eq!(read(&repo, "/small").await, b"kept in the database");
    }

    #[tokio::test]
    async fn a_backup_never_overwrites_and_a_restore_only_with_force() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        Repository::open(&data, Config::default()).await.unwrap().close().await;
        let dest = dir.path().join("backup");
        std::fs::create_dir_all(&dest).unwrap();
        std::fs::write(dest.join("precious"), b"x").unwrap();
        assert!(matches!(backup(&data, &dest).await, Err(Error::Conflict(_))));
        std::fs::remove_file(dest.join("precious")).unwrap();
        backup(&data, &dest).await.unwrap();
        assert!(matches!(restore(&dest, &data, false).await, Err(Error::Conflict(_))));
        restore(&dest, &data, true).await.unwrap();
    }

    #[tokio::test]
    async fn a_blob_already_missing_from_the_store_is_reported_and_left_out() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let repo = Repository::open(&data, Config::blob_files_only()).await.unwrap();
        put(&repo, "/kept", b"kept").await;
        put(&repo, "/lost", b"lost").await;
        let lost = repo.resolve(&p("/lost")).await.unwrap().unwrap().blob.unwrap();
        repo.blobs.delete(&lost).await.unwrap();
        let done = backup(&data, &dir.path().join("backup")).await.unwrap();
        assert_eq!((done.missing.clone(), done.blobs, done.rounds), (vec![lost.clone()], 1, 2));
        let backed = Repository::open_maintenance(&dir.path().join("backup"), None).await.unwrap();
        let report = backed.fsck(FsckOptions::default()).await.unwrap();
        let expected = Finding::MissingBlob { blob: lost.0.clone(), paths: vec![p("/lost")] };
        assert_eq!(report.problems.iter().map(|p| &p.finding).collect::<Vec<_>>(), [&expected]);
    }
}
