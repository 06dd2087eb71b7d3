//! The checks. The database is read in one read transaction, so its figures agree with
//! each other even while a server writes; the blob store is listed after it, and blob
//! findings are confirmed once more (see [`confirmed`]).

use std::collections::{HashMap, HashSet};

use futures_util::StreamExt;
use wharf_backends::BlobId;

use super::{Counts, Finding};
use crate::db::Handle;
use crate::resource::ROOT_ID;
use crate::{now_ns, DavPath, Repository, Result};

/// Longest parent chain followed when naming a resource: deeper is a cycle.
const MAX_DEPTH: usize = 4096;

/// Every resource the root leads to through collections.
pub(super) const REACHABLE: &str = "WITH RECURSIVE reach(id) AS ( \
       SELECT id FROM resources WHERE id = 1 AND is_collection = 1 \
       UNION \
       SELECT r.id FROM resources r JOIN reach ON r.parent_id = reach.id \
       JOIN resources c ON c.id = reach.id AND c.is_collection = 1)";

pub(super) async fn run(repo: &Repository, verify_content: bool) -> Result<(Vec<Finding>, Counts)> {
    let mut findings = Vec::new();
    let mut counts = Counts::default();
    let mut tx = repo.read.begin().await?;
    database(&mut tx, &mut findings).await?;
    tree(&mut tx, &mut findings, &mut counts).await?;
    let refs = refcounts(&mut tx, &mut findings).await?;
    locks_and_mounts(&mut tx, &mut findings, &mut counts).await?;
    let blob_findings = blob_files(repo, &mut tx, &refs, &mut counts).await?;
    tx.commit().await?;
    findings.extend(confirmed(repo, blob_findings).await?);
    if verify_content {
        let mut conn = repo.read.acquire().await?;
        verify(repo, &mut conn, &refs, &mut findings, &mut counts).await?;
    }
    Ok((findings, counts))
}

/// SQLite's own checks: page integrity, and foreign keys (which SQLite enforces only on
/// connections that ask). PostgreSQL enforces foreign keys always and checks its pages
/// itself, so there is nothing of this kind to ask it.
async fn database(conn: &mut dyn Handle, out: &mut Vec<Finding>) -> Result<()> {
    if conn.dialect() == crate::db::Dialect::Postgres {
        return Ok(());
    }
    let messages: Vec<(String,)> = crate::db::query_as("PRAGMA integrity_check").fetch_all(&mut *conn).await?;
    for (message,) in messages.into_iter().filter(|(m,)| m != "ok") {
        out.push(Finding::DatabaseDamaged { message });
    }
    // Resources with a missing parent are reported as unreachable, with the rest of them.
    let rows: Vec<(String, Option<i64>, String)> = crate::db::query_as(
        "SELECT \"table\", rowid, parent FROM pragma_foreign_key_check WHERE \"table\" <> 'resources'",
    )
    .fetch_all(&mut *conn)
    .await?;
    for (table, rowid, parent) in rows {
        out.push(Finding::OrphanRow { table, rowid: rowid.unwrap_or(-1), parent });
    }
    Ok(())
}

async fn tree(conn: &mut dyn Handle, out: &mut Vec<Finding>, counts: &mut Counts) -> Result<()> {
    let (n,): (i64,) = crate::db::query_as("SELECT COUNT(*) FROM resources").fetch_one(&mut *conn).await?;
    counts.resources = n.max(0) as u64;
    let root: Option<(bool,)> =
        crate::db::query_as("SELECT is_collection FROM resources WHERE id = ? AND parent_id IS NULL")
            .bind(ROOT_ID)
            .fetch_optional(&mut *conn)
            .await?;
    if root != Some((true,)) {
        out.push(Finding::RootMissing);
        return Ok(());
    }
    let unreachable: Vec<(i64, Option<i64>, String)> = crate::db::query_as(&format!(
        "{REACHABLE} SELECT id, parent_id, name FROM resources WHERE id NOT IN (SELECT id FROM reach) ORDER BY id"
    ))
    .fetch_all(&mut *conn)
    .await?;
    for (id, parent_id, name) in unreachable {
        out.push(Finding::Unreachable { id, parent_id, name });
    }
    let holding: Vec<(i64,)> = crate::db::query_as(&format!(
        "{REACHABLE} SELECT id FROM resources WHERE is_collection = 1 AND (blob_id IS NOT NULL OR size <> 0) \
         AND id IN (SELECT id FROM reach)"
    ))
    .fetch_all(&mut *conn)
    .await?;
    for (id,) in holding {
        out.push(Finding::CollectionHasContent { id, path: path_of(conn, id).await? });
    }
    let sized: Vec<(i64, i64)> =
        crate::db::query_as("SELECT id, size FROM resources WHERE is_collection = 0 AND blob_id IS NULL AND size <> 0")
            .fetch_all(&mut *conn)
            .await?;
    for (id, size) in sized {
        out.push(Finding::SizeWithoutContent { id, path: path_of(conn, id).await?, size });
    }
    Ok(())
}

/// What the database says of blobs: the counts recorded in `blobs`, and the actual
/// number of files pointing at each.
pub(super) struct Refs {
    recorded: HashMap<String, i64>,
    pub actual: HashMap<String, i64>,
    /// The smallest and largest size recorded by the files pointing at each blob.
    sizes: HashMap<String, (i64, i64)>,
    /// Blobs whose bytes are inline in the database (see `inline.rs`), not files.
    inline: HashSet<String>,
}

async fn refcounts(conn: &mut dyn Handle, out: &mut Vec<Finding>) -> Result<Refs> {
    let recorded: HashMap<String, i64> =
        crate::db::query_as("SELECT id, refcount FROM blobs").fetch_all(&mut *conn).await?.into_iter().collect();
    // One pass over the files gives every blob's references and recorded sizes, which
    // `verify` compares with the bytes without a query per blob.
    let per_blob: Vec<(String, i64, i64, i64)> = crate::db::query_as(
        "SELECT blob_id, COUNT(*), MIN(size), MAX(size) FROM resources WHERE blob_id IS NOT NULL GROUP BY blob_id",
    )
    .fetch_all(&mut *conn)
    .await?;
    let actual: HashMap<String, i64> = per_blob.iter().map(|(id, n, _, _)| (id.clone(), *n)).collect();
    let sizes: HashMap<String, (i64, i64)> = per_blob.into_iter().map(|(id, _, lo, hi)| (id, (lo, hi))).collect();
    let ids: HashSet<&String> = recorded.keys().chain(actual.keys()).collect();
    let mut ids: Vec<&String> = ids.into_iter().collect();
    ids.sort();
    for id in ids {
        let (rec, act) = (recorded.get(id).copied(), actual.get(id).copied().unwrap_or(0));
        if rec.unwrap_or(0) != act {
            out.push(Finding::RefcountMismatch { blob: id.clone(), recorded: rec, actual: act });
        }
    }
    let inline: HashSet<String> = crate::db::query_as("SELECT id FROM blobs WHERE data IS NOT NULL")
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .map(|(id,)| id)
        .collect();
    Ok(Refs { recorded, actual, sizes, inline })
}

async fn locks_and_mounts(conn: &mut dyn Handle, out: &mut Vec<Finding>, counts: &mut Counts) -> Result<()> {
    let mounts: Vec<(i64, String)> =
        crate::db::query_as("SELECT id, stored_path FROM mounts ORDER BY id").fetch_all(&mut *conn).await?;
    let mut mounted = Vec::new();
    for (mount_id, path) in mounts {
        let at = DavPath::from_key(&path).ok();
        let found = match &at {
            Some(p) => crate::resource::lookup(conn, p).await?,
            None => None,
        };
        if !found.is_some_and(|r| r.is_collection) {
            out.push(Finding::MountPointMissing { mount_id, path });
        }
        mounted.extend(at);
    }
    let locks: Vec<(String, String)> = crate::db::query_as(
        "SELECT token, root_path FROM locks WHERE expires_ns IS NULL OR expires_ns > ? ORDER BY token",
    )
    .bind(now_ns())
    .fetch_all(&mut *conn)
    .await?;
    counts.locks = locks.len() as u64;
    for (token, root) in locks {
        let exists = match DavPath::from_key(&root) {
            Ok(p) if mounted.iter().any(|m| p.starts_with(m)) => true,
            Ok(p) => crate::resource::lookup(conn, &p).await?.is_some(),
            Err(_) => false,
        };
        if !exists {
            out.push(Finding::LockRootMissing { token, root });
        }
    }
    Ok(())
}

/// Blobs files point at that the store lacks, and files of the store nothing points at.
async fn blob_files(
    repo: &Repository,
    conn: &mut dyn Handle,
    refs: &Refs,
    counts: &mut Counts,
) -> Result<Vec<Finding>> {
    let files: HashSet<BlobId> = repo.blobs.list().await?.into_iter().collect();
    counts.blob_files = files.len() as u64;
    counts.blobs = refs.actual.len() as u64;
    let mut out = Vec::new();
    let mut missing: Vec<&str> = refs
        .actual
        .keys()
        .filter(|blob| !refs.inline.contains(*blob) && !BlobId::parse(blob).is_some_and(|id| files.contains(&id)))
        .map(String::as_str)
        .collect();
    missing.sort();
    let pointing = files_of(conn, &missing).await?;
    for blob in missing {
        out.push(Finding::MissingBlob { blob: blob.to_owned(), paths: paths_of(conn, &pointing, blob).await? });
    }
    let mut files: Vec<BlobId> = files.into_iter().collect();
    files.sort();
    for blob in files {
        // A row at refcount 0 or below is garbage the collector will take with its file.
        if !refs.actual.contains_key(blob.as_str()) && !refs.recorded.contains_key(blob.as_str()) {
            out.push(Finding::OrphanBlobFile { blob });
        }
    }
    Ok(out)
}

/// The blob findings that still hold now. Beside a server in another process, a blob can
/// be collected after the snapshot that saw it referenced, and an upload's file appears a
/// moment before the row pointing at it commits.
async fn confirmed(repo: &Repository, findings: Vec<Finding>) -> Result<Vec<Finding>> {
    let mut conn = repo.read.acquire().await?;
    let blobs: Vec<&str> = findings.iter().filter_map(blob_of).map(|(blob, _)| blob).collect();
    let pointing = files_of(&mut conn, &blobs).await?;
    let mut holding = Vec::with_capacity(findings.len());
    for finding in &findings {
        let Some((blob, want_file)) = blob_of(finding) else {
            holding.push(true);
            continue;
        };
        let refs = pointing.get(blob).map_or(0, Vec::len);
        let (rows, inline): (i64, i64) = crate::db::query_as(
            "SELECT (SELECT COUNT(*) FROM blobs WHERE id = ?1), \
                    (SELECT COUNT(*) FROM blobs WHERE id = ?1 AND data IS NOT NULL)",
        )
        .bind(blob)
        .fetch_one(&mut conn)
        .await?;
        let file = match BlobId::parse(blob) {
            Some(id) => exists(repo, &id).await?,
            None => false,
        };
        holding.push(if want_file { file && refs == 0 && rows == 0 } else { !file && inline == 0 && refs > 0 });
    }
    Ok(findings.into_iter().zip(holding).filter_map(|(f, holds)| holds.then_some(f)).collect())
}

/// The blob a finding is about, and whether it says the blob's file is there.
fn blob_of(finding: &Finding) -> Option<(&str, bool)> {
    match finding {
        Finding::MissingBlob { blob, .. } => Some((blob.as_str(), false)),
        Finding::OrphanBlobFile { blob } => Some((blob.as_str(), true)),
        _ => None,
    }
}

async fn exists(repo: &Repository, id: &BlobId) -> Result<bool> {
    match repo.blobs.open(id, Some(0..0)).await {
        Ok(_) => Ok(true),
        Err(wharf_backends::Error::NotFound(_)) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Reads every blob files point at: its hash must be its id, its length their size.
async fn verify(
    repo: &Repository,
    conn: &mut dyn Handle,
    refs: &Refs,
    out: &mut Vec<Finding>,
    counts: &mut Counts,
) -> Result<()> {
    let mut blobs: Vec<BlobId> = refs.actual.keys().filter_map(|b| BlobId::parse(b)).collect();
    blobs.sort();
    // Paths are looked up once, for all the damaged blobs, after the reading.
    let mut damaged: Vec<(BlobId, Option<(i64, u64)>)> = Vec::new();
    for blob in blobs {
        let Some((hash, len)) = hash_of(repo, &blob).await? else { continue };
        counts.bytes_verified += len;
        if hash != blob.as_str() {
            damaged.push((blob, None));
            continue;
        }
        let (lo, hi) = refs.sizes.get(blob.as_str()).copied().unwrap_or((len as i64, len as i64));
        if let Some(recorded) = [lo, hi].into_iter().find(|&size| size != len as i64) {
            damaged.push((blob, Some((recorded, len))));
        }
    }
    let names: Vec<&str> = damaged.iter().map(|(blob, _)| blob.as_str()).collect();
    let pointing = files_of(conn, &names).await?;
    for (blob, sizes) in damaged {
        let paths = paths_of(conn, &pointing, blob.as_str()).await?;
        out.push(match sizes {
            None => Finding::ContentMismatch { blob, paths },
            Some((recorded, actual)) => Finding::SizeMismatch { blob, recorded, actual, paths },
        });
    }
    Ok(())
}

/// The BLAKE3 hash (as hex) and length of a blob's bytes; `None` if it is missing, which
/// the listing already reported.
async fn hash_of(repo: &Repository, blob: &BlobId) -> Result<Option<(String, u64)>> {
    let inline: Option<(Vec<u8>,)> = crate::db::query_as("SELECT data FROM blobs WHERE id = ? AND data IS NOT NULL")
        .bind(blob.as_str())
        .fetch_optional(&repo.read)
        .await?;
    if let Some((data,)) = inline {
        return Ok(Some((blake3::hash(&data).to_hex().to_string(), data.len() as u64)));
    }
    let mut stream = match repo.blobs.open(blob, None).await {
        Ok(s) => s,
        Err(wharf_backends::Error::NotFound(_)) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let mut hasher = blake3::Hasher::new();
    let mut len = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| crate::Error::Blob(e.into()))?;
        hasher.update(&chunk);
        len += chunk.len() as u64;
    }
    Ok(Some((hasher.finalize().to_hex().to_string(), len)))
}

/// The files pointing at each of `blobs`, in order of id, found in one pass over the
/// files. The files keep no index by blob: it would cost every upload a write to a page
/// picked at random by the hash, and only fsck asks.
pub(super) async fn files_of(conn: &mut dyn Handle, blobs: &[&str]) -> Result<HashMap<String, Vec<i64>>> {
    let mut pointing: HashMap<String, Vec<i64>> = HashMap::new();
    if blobs.is_empty() {
        return Ok(pointing);
    }
    let rows: Vec<(String, i64)> = crate::db::query_as(
        "SELECT blob_id, id FROM resources WHERE blob_id IN (SELECT value FROM json_each(?)) ORDER BY id",
    )
    .bind(crate::resource::json_array(blobs))
    .fetch_all(&mut *conn)
    .await?;
    for (blob, id) in rows {
        pointing.entry(blob).or_default().push(id);
    }
    Ok(pointing)
}

async fn paths_of(conn: &mut dyn Handle, pointing: &HashMap<String, Vec<i64>>, blob: &str) -> Result<Vec<DavPath>> {
    let ids = pointing.get(blob).map_or(&[][..], Vec::as_slice);
    let mut paths = Vec::with_capacity(ids.len());
    for &id in ids {
        paths.push(path_of(conn, id).await?);
    }
    Ok(paths)
}

/// The path of resource `id`, walking up its parents. An unreachable resource gets the
/// path as far as its parents go, under `/?`.
pub(super) async fn path_of(conn: &mut dyn Handle, id: i64) -> Result<DavPath> {
    let mut names = Vec::new();
    let mut at = id;
    while at != ROOT_ID && names.len() < MAX_DEPTH {
        let row: Option<(Option<i64>, String)> =
            crate::db::query_as("SELECT parent_id, name FROM resources WHERE id = ?")
                .bind(at)
                .fetch_optional(&mut *conn)
                .await?;
        let Some((parent, name)) = row else {
            names.push("?".to_owned());
            break;
        };
        names.push(name);
        match parent {
            Some(p) => at = p,
            None => break,
        }
    }
    let mut path = DavPath::root();
    for name in names.into_iter().rev() {
        path = path.child_normalized(name);
    }
    Ok(path)
}
