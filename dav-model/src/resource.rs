//! Resources as stored: one row each, found by walking (parent, name) from the root.

use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection};
use wharf_backends::BlobId;

use crate::lock::ActiveLock;
use crate::path::DavPath;
use crate::props::DeadProp;
use crate::Result;

pub(crate) const ROOT_ID: i64 = 1;

/// Columns selected for a resource, in the order [`Resource::from_row`] reads them.
pub(crate) const COLUMNS: &str =
    "id, parent_id, name, is_collection, blob_id, size, content_type, etag, created_ns, modified_ns";

#[derive(Debug, Clone)]
pub struct Resource {
    pub id: i64,
    pub path: DavPath,
    pub is_collection: bool,
    /// `None` for collections and for empty files (no blob needed for zero bytes).
    pub blob: Option<BlobId>,
    pub size: u64,
    /// As set by the client; adapters fall back to a guess from the name.
    pub content_type: Option<String>,
    /// Strong entity tag, quotes included.
    pub etag: String,
    pub created_ns: i64,
    pub modified_ns: i64,
}

/// One resource of a listing with everything a property answer needs, fetched in batches.
#[derive(Debug, Clone)]
pub struct Entry {
    pub resource: Resource,
    pub dead: Vec<DeadProp>,
    pub locks: Vec<ActiveLock>,
}

impl Resource {
    pub(crate) fn from_row(row: &SqliteRow, path: DavPath) -> Resource {
        let blob: Option<String> = row.get(4);
        Resource {
            id: row.get(0),
            path,
            is_collection: row.get::<i64, _>(3) != 0,
            blob: blob.as_deref().and_then(BlobId::parse),
            size: row.get::<i64, _>(5).max(0) as u64,
            content_type: row.get(6),
            etag: row.get(7),
            created_ns: row.get(8),
            modified_ns: row.get(9),
        }
    }

    /// The name of the row, as stored (column 2).
    pub(crate) fn row_name(row: &SqliteRow) -> String {
        row.get(2)
    }

    pub fn name(&self) -> &str {
        self.path.name().unwrap_or("")
    }
}

/// Resolves a path to its row, one indexed lookup per segment.
pub(crate) async fn lookup(conn: &mut SqliteConnection, path: &DavPath) -> Result<Option<Resource>> {
    let root_sql = format!("SELECT {COLUMNS} FROM resources WHERE id = ?");
    let mut row = sqlx::query(&root_sql).bind(ROOT_ID).fetch_one(&mut *conn).await?;
    let child_sql = format!("SELECT {COLUMNS} FROM resources WHERE parent_id = ? AND name = ?");
    for seg in path.segments() {
        let id: i64 = row.get(0);
        match sqlx::query(&child_sql).bind(id).bind(seg).fetch_optional(&mut *conn).await? {
            Some(r) => row = r,
            None => return Ok(None),
        }
    }
    Ok(Some(Resource::from_row(&row, path.clone())))
}

/// The members of a collection, in one indexed query, sorted by name.
pub(crate) async fn members(conn: &mut SqliteConnection, parent: &Resource) -> Result<Vec<Resource>> {
    let sql = format!("SELECT {COLUMNS} FROM resources WHERE parent_id = ? ORDER BY name");
    let rows = sqlx::query(&sql).bind(parent.id).fetch_all(&mut *conn).await?;
    rows.iter()
        .map(|row| Ok(Resource::from_row(row, parent.path.join(&Resource::row_name(row))?)))
        .collect()
}

/// Number of resources below `id` (not counting it), counting no further than `cap + 1`.
pub(crate) async fn count_descendants(conn: &mut SqliteConnection, id: i64, cap: u64) -> Result<u64> {
    let (n,): (i64,) = sqlx::query_as(
        "WITH RECURSIVE sub(id) AS (SELECT id FROM resources WHERE parent_id = ?1 \
         UNION ALL SELECT r.id FROM resources r JOIN sub ON r.parent_id = sub.id) \
         SELECT COUNT(*) FROM (SELECT 1 FROM sub LIMIT ?2)",
    )
    .bind(id)
    .bind(cap.saturating_add(1).min(i64::MAX as u64) as i64)
    .fetch_one(&mut *conn)
    .await?;
    Ok(n.max(0) as u64)
}

/// A strong ETag for file content: derived from the content hash, so identical bytes
/// give identical tags (the RFC 9110 meaning of a strong validator).
pub(crate) fn content_etag(blob: Option<&BlobId>) -> String {
    match blob {
        Some(b) => format!("\"{}\"", &b.as_str()[..32]),
        None => "\"empty\"".to_owned(),
    }
}

/// Collections change tag whenever their membership or properties change.
pub(crate) fn collection_etag(id: i64, modified_ns: i64) -> String {
    format!("\"c{id:x}-{modified_ns:x}\"")
}
