//! Repairs, one finding at a time. Each repair re-derives what it fixes (a count is set
//! to the count of now, an orphan row is deleted only while it is still one), so a repair
//! never acts on a figure the check saw but that changed since. Repairs of a blob's count
//! and size come last, after the repairs of the tree, which can change what points at a
//! blob; the files pointing at those blobs are then found in one pass for all of them,
//! in the write transaction that sets them.
//!
//! What is left alone: a damaged database file (fsck repairs rows, not SQLite's format),
//! a missing root, a missing mount point, and content that is gone — the rows of files
//! whose blob is missing stay, so that their names, times and properties survive and a
//! GET fails instead of serving something else; uploading the same bytes again anywhere
//! brings the blob back for all of them, or the files can be deleted.

use super::{Finding, Outcome, Repair};
use crate::db::Handle;
use crate::{Repository, Result};

/// Tables a foreign key can dangle from (names from `PRAGMA foreign_key_check` are only
/// ever put into SQL when they are one of these).
const CHILD_TABLES: [&str; 3] = ["dead_props", "grants", "mounted_props"];

/// The outcome of each of `findings`, in their order.
pub(super) async fn all(repo: &Repository, findings: &[Finding]) -> Result<Vec<Outcome>> {
    let mut outcomes = Vec::with_capacity(findings.len());
    let mut of_blobs = Vec::new();
    for (n, finding) in findings.iter().enumerate() {
        match blob_repaired_by_count(finding) {
            Some(blob) => {
                of_blobs.push((n, blob));
                outcomes.push(Outcome::Found);
            }
            None => outcomes.push(one(repo, finding).await?),
        }
    }
    if of_blobs.is_empty() {
        return Ok(outcomes);
    }
    // Counted and written in one write transaction: nothing adds or drops a reference
    // between the count and the write.
    let blobs: Vec<&str> = of_blobs.iter().map(|(_, blob)| *blob).collect();
    let mut tx = repo.write.begin().await?;
    let pointing = super::check::files_of(&mut tx, &blobs).await?;
    for (n, blob) in of_blobs {
        let files = pointing.get(blob).map_or(&[][..], Vec::as_slice);
        outcomes[n] = Outcome::Repaired(match &findings[n] {
            Finding::SizeMismatch { actual, .. } => size(&mut tx, blob, files, *actual).await?,
            _ => refcount(&mut tx, blob, files.len()).await?,
        });
    }
    tx.commit().await?;
    Ok(outcomes)
}

/// The blob whose repair needs the files pointing at it.
fn blob_repaired_by_count(finding: &Finding) -> Option<&str> {
    match finding {
        Finding::RefcountMismatch { blob, .. } => Some(blob.as_str()),
        Finding::SizeMismatch { blob, .. } => Some(blob.as_str()),
        _ => None,
    }
}

async fn one(repo: &Repository, finding: &Finding) -> Result<Outcome> {
    let done = match finding {
        Finding::DatabaseDamaged { .. } => {
            return Ok(Outcome::Left("the database file is damaged: restore it from a backup"))
        }
        Finding::RootMissing => return Ok(Outcome::Left("the root collection is damaged: restore from a backup")),
        Finding::MountPointMissing { .. } => {
            return Ok(Outcome::Left("remove the share or home and add it again (wharf share / wharf user)"))
        }
        Finding::MissingBlob { .. } => {
            return Ok(Outcome::Left("content lost: upload the same bytes again, restore them, or delete the files"))
        }
        Finding::OrphanRow { table, rowid, .. } => orphan_row(repo, table, *rowid).await?,
        Finding::Unreachable { .. } => unreachable(repo).await?,
        Finding::CollectionHasContent { id, .. } => {
            exec(repo, "UPDATE resources SET blob_id = NULL, size = 0 WHERE id = ? AND is_collection = 1", *id).await?;
            Repair::ContentCleared
        }
        Finding::SizeWithoutContent { id, .. } => {
            exec(repo, "UPDATE resources SET size = 0 WHERE id = ? AND blob_id IS NULL", *id).await?;
            Repair::SizeSet(0)
        }
        Finding::RefcountMismatch { .. } | Finding::SizeMismatch { .. } => {
            return Err(crate::Error::Internal("a blob's count or size repaired on its own".into()))
        }
        Finding::OrphanBlobFile { blob } => {
            repo.blobs.delete(blob).await?;
            Repair::BlobDeleted
        }
        Finding::ContentMismatch { blob, .. } if is_inline(repo, blob).await? => {
            return Ok(Outcome::Left(
                "the damaged bytes are inline in the database: upload the files again or delete them",
            ))
        }
        Finding::ContentMismatch { blob, .. } => Repair::BlobMovedAside(repo.blobs.quarantine(blob).await?),
        Finding::LockRootMissing { token, .. } => {
            crate::db::query("DELETE FROM locks WHERE token = ?").bind(token).execute(&repo.write).await?;
            Repair::LockRemoved
        }
    };
    Ok(Outcome::Repaired(done))
}

async fn is_inline(repo: &Repository, blob: &wharf_backends::BlobId) -> Result<bool> {
    let (n,): (i64,) = crate::db::query_as("SELECT COUNT(*) FROM blobs WHERE id = ? AND data IS NOT NULL")
        .bind(blob.as_str())
        .fetch_one(&repo.write)
        .await?;
    Ok(n > 0)
}

async fn exec(repo: &Repository, sql: &str, id: i64) -> Result<()> {
    crate::db::query(sql).bind(id).execute(&repo.write).await?;
    Ok(())
}

async fn orphan_row(repo: &Repository, table: &str, rowid: i64) -> Result<Repair> {
    let Some(table) = CHILD_TABLES.iter().find(|t| **t == table) else {
        return Err(crate::Error::Internal(format!("unexpected table {table} in a foreign key check")));
    };
    // Deleted only while the check still names it (the pragma takes the table as argument).
    crate::db::query(&format!(
        "DELETE FROM {table} WHERE rowid = ?1 AND rowid IN (SELECT rowid FROM pragma_foreign_key_check('{table}'))"
    ))
    .bind(rowid)
    .execute(&repo.write)
    .await?;
    Ok(Repair::RowDeleted)
}

/// Deletes every resource that is unreachable now, in one statement, so that members
/// whose parent goes with them never dangle. Their dead properties go along (ON DELETE
/// CASCADE), the triggers release their blobs, and the collector takes blobs left without
/// a file: no user could reach those files, and the server's view has no place to show
/// them again. Later findings of the same run find nothing left to delete.
async fn unreachable(repo: &Repository) -> Result<Repair> {
    let sql = format!(
        "{} DELETE FROM resources WHERE id NOT IN (SELECT id FROM reach) \
         AND EXISTS (SELECT 1 FROM resources WHERE id = 1 AND is_collection = 1)",
        super::check::REACHABLE
    );
    crate::db::query(&sql).execute(&repo.write).await?;
    Ok(Repair::RowDeleted)
}

async fn refcount(conn: &mut dyn Handle, blob: &str, files: usize) -> Result<Repair> {
    let (actual,): (i64,) = crate::db::query_as(
        "INSERT INTO blobs (id, refcount) VALUES (?, ?) \
         ON CONFLICT (id) DO UPDATE SET refcount = excluded.refcount RETURNING refcount",
    )
    .bind(blob)
    .bind(files as i64)
    .fetch_one(&mut *conn)
    .await?;
    Ok(Repair::RefcountSet(actual))
}

async fn size(conn: &mut dyn Handle, blob: &str, files: &[i64], actual: u64) -> Result<Repair> {
    let size = actual as i64;
    for &id in files {
        crate::db::query("UPDATE resources SET size = ? WHERE id = ? AND blob_id = ?")
            .bind(size)
            .bind(id)
            .bind(blob)
            .execute(&mut *conn)
            .await?;
    }
    Ok(Repair::SizeSet(size))
}
