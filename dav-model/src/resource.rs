//! Resources as stored: one row each, found by walking (parent, name) from the root.

use wharf_backends::BlobId;

use crate::db::{Dialect, Handle, Row};
use crate::lock::ActiveLock;
use crate::path::DavPath;
use crate::props::DeadProp;
use crate::txn::Batch;
use crate::{Error, Result};

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
    /// The identity of the object in a mounted tree (`None` on the native store), which
    /// its dead properties are stamped with.
    pub(crate) node: Option<wharf_backends::NodeId>,
    /// The whole content of a small file, when the look-up that found it also read it
    /// (GET's, on a mounted tree: one trip to the disk instead of two).
    pub(crate) small_body: Option<bytes::Bytes>,
}

/// One resource of a listing with everything a property answer needs, fetched in batches.
#[derive(Debug, Clone)]
pub struct Entry {
    pub resource: Resource,
    pub dead: Vec<DeadProp>,
    pub locks: Vec<ActiveLock>,
}

impl Resource {
    /// This resource seen at `path` (a view path or a stored one): cheaper than a clone
    /// whose path is then replaced.
    pub(crate) fn at(&self, path: DavPath) -> Resource {
        Resource {
            id: self.id,
            path,
            is_collection: self.is_collection,
            blob: self.blob.clone(),
            size: self.size,
            content_type: self.content_type.clone(),
            etag: self.etag.clone(),
            created_ns: self.created_ns,
            modified_ns: self.modified_ns,
            node: self.node,
            small_body: self.small_body.clone(),
        }
    }

    pub(crate) fn from_row(row: &Row, path: DavPath) -> Resource {
        Resource::from_row_at(row, 0, path)
    }

    /// From a row whose [`COLUMNS`] start at column `at` (after a tag, see [`Tag`]).
    pub(crate) fn from_row_at(row: &Row, at: usize, path: DavPath) -> Resource {
        let blob: Option<String> = row.get(at + 4);
        Resource {
            id: row.get(at),
            path,
            is_collection: row.get::<i64>(at + 3) != 0,
            blob: blob.and_then(BlobId::parse_owned),
            size: row.get::<i64>(at + 5).max(0) as u64,
            content_type: row.get(at + 6),
            etag: row.get(at + 7),
            created_ns: row.get(at + 8),
            modified_ns: row.get(at + 9),
            node: None,
            small_body: None,
        }
    }

    /// This collection as [`touch`] leaves it at `now`.
    pub(crate) fn touched(mut self, now: i64) -> Resource {
        self.modified_ns = now;
        self.etag = collection_etag(self.id, now);
        self
    }

    pub fn name(&self) -> &str {
        self.path.name().unwrap_or("")
    }
}

/// What a row of a statement batch holds, in its first column: statements that read
/// different things in one trip (see [`crate::txn`]) tag their rows with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tag {
    /// The parent collection of the path in question.
    Parent = 0,
    /// The resource at the path in question.
    Target = 1,
    /// A lock in scope of the path.
    Lock = 2,
    /// Bytes used by the whole tree.
    Used = 3,
    /// Whether released blob files wait for the collector (see `inline::push_drop_garbage`).
    Garbage = 4,
    /// An inline blob deleted with the write that released it, and its size.
    Released = 5,
    /// The row a write is about to replace, as it was.
    Replaced = 6,
}

impl Tag {
    pub(crate) fn of(row: &Row) -> Option<Tag> {
        match row.try_get::<i64>(0).ok()? {
            0 => Some(Tag::Parent),
            1 => Some(Tag::Target),
            2 => Some(Tag::Lock),
            3 => Some(Tag::Used),
            4 => Some(Tag::Garbage),
            5 => Some(Tag::Released),
            6 => Some(Tag::Replaced),
            _ => None,
        }
    }
}

/// A recursive CTE `walk(id, i)` from the root down `segments`, one step per segment along
/// the (parent, name) index; binds the root, the segments and their number, in that order.
///
/// The segment is picked with json_extract rather than joined from json_each: a scalar
/// lets SQLite use the (parent_id, name) index; a join made it scan all siblings.
pub(crate) const WALK: &str = "WITH RECURSIVE walk(id, i) AS (SELECT ?, 0 UNION ALL \
    SELECT r.id, walk.i + 1 FROM walk JOIN resources r \
    ON r.parent_id = walk.id AND r.name = json_extract(?, '$[' || walk.i || ']') WHERE walk.i < ?)";

pub(crate) fn bind_walk(batch: &mut Batch, segments: &[std::sync::Arc<str>]) {
    batch.bind(ROOT_ID).bind(json_array(segments)).bind(segments.len() as i64);
}

/// Adds to `batch` the row of `path`, tagged [`Tag::Target`], if there is one: one query
/// whatever the path's depth.
pub(crate) fn push_lookup(batch: &mut Batch, path: &DavPath) {
    let tag = Tag::Target as i64;
    batch.push(format!("{WALK} SELECT {tag}, {COLUMNS} FROM resources WHERE id = (SELECT id FROM walk WHERE i = ?)"));
    bind_walk(batch, path.segments());
    batch.bind(path.segments().len() as i64);
}

/// Adds to `batch` the rows of `path`'s parent ([`Tag::Parent`]) and of `path` itself
/// ([`Tag::Target`]), each if there is one, in one walk. `path` must not be the root.
pub(crate) fn push_lookup_with_parent(batch: &mut Batch, path: &DavPath) {
    let (parent, target) = (Tag::Parent as i64, Tag::Target as i64);
    let above = &path.segments()[..path.segments().len().saturating_sub(1)];
    batch.push(format!(
        "{WALK}, parent(id) AS (SELECT id FROM walk WHERE i = ?) \
         SELECT {parent}, {COLUMNS} FROM resources WHERE id = (SELECT id FROM parent) UNION ALL \
         SELECT {target}, {COLUMNS} FROM resources WHERE parent_id = (SELECT id FROM parent) AND name = ?"
    ));
    bind_walk(batch, above);
    batch.bind(above.len() as i64).bind(path.name().unwrap_or_default().to_owned());
}

/// Resolves a path to its row in one query whatever its depth.
pub(crate) async fn lookup(conn: &mut dyn Handle, path: &DavPath) -> Result<Option<Resource>> {
    let mut batch = Batch::new();
    push_lookup(&mut batch, path);
    let rows = batch.fetch_all(conn).await?;
    Ok(rows.first().map(|r| Resource::from_row_at(r, 1, path.clone())))
}

/// The member `name` of collection `parent`: one lookup in the (parent, name) index.
pub(crate) async fn child(conn: &mut dyn Handle, parent: &Resource, name: &str) -> Result<Option<Resource>> {
    let sql = format!("SELECT {COLUMNS} FROM resources WHERE parent_id = ? AND name = ?");
    let row = crate::db::query(&sql).bind(parent.id).bind(name).fetch_optional(&mut *conn).await?;
    Ok(row.map(|r| Resource::from_row(&r, parent.path.child_normalized(name))))
}

/// [`child`] for a read: also the inline content of a small file, from the same query.
pub(crate) async fn child_with_content(
    conn: &mut dyn Handle,
    parent: &Resource,
    name: &str,
) -> Result<Option<(Resource, Option<Vec<u8>>)>> {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let sql = SQL.get_or_init(|| {
        format!(
            "SELECT {COLUMNS}, (SELECT data FROM blobs WHERE blobs.id = resources.blob_id) \
             FROM resources WHERE parent_id = ? AND name = ?"
        )
    });
    let row = crate::db::query(sql).bind(parent.id).bind(name).fetch_optional(&mut *conn).await?;
    Ok(row.map(|r| (Resource::from_row(&r, parent.path.child_normalized(name)), r.get(10))))
}

/// A JSON array of strings, for `json_extract`.
pub(crate) fn json_array(items: &[impl AsRef<str>]) -> String {
    let mut s = String::from("[");
    for (n, item) in items.iter().enumerate() {
        if n > 0 {
            s.push(',');
        }
        s.push('"');
        for c in item.as_ref().chars() {
            match c {
                '"' => s.push_str("\\\""),
                '\\' => s.push_str("\\\\"),
                c if (c as u32) < 0x20 => s.push_str(&format!("\\u{:04x}", c as u32)),
                c => s.push(c),
            }
        }
        s.push('"');
    }
    s.push(']');
    s
}

/// The members of a collection, in one indexed query, sorted by name.
///
/// The database aggregates the rows into one JSON array: on SQLite, a listing of 10,000
/// members then crosses from the database thread as one value instead of 10,000 row
/// messages, which was most of the cost of a large PROPFIND.
pub(crate) async fn members(conn: &mut dyn Handle, parent: &Resource) -> Result<Vec<Resource>> {
    let sql = match conn.dialect() {
        Dialect::Sqlite => format!(
            "SELECT json_group_array(json_array({COLUMNS})) FROM \
             (SELECT {COLUMNS} FROM resources WHERE parent_id = ? ORDER BY name) AS members"
        ),
        Dialect::Postgres => format!(
            "SELECT CAST(COALESCE(json_agg(json_build_array({COLUMNS}) ORDER BY name), '[]') AS TEXT) \
             FROM resources WHERE parent_id = ?"
        ),
    };
    let (json,): (String,) = crate::db::query_as(&sql).bind(parent.id).fetch_one(&mut *conn).await?;
    type Row = (i64, Option<i64>, String, i64, Option<String>, i64, Option<String>, String, i64, i64);
    let rows: Vec<Row> = serde_json::from_str(&json).map_err(|e| Error::Internal(format!("member listing: {e}")))?;
    Ok(rows
        .into_iter()
        .map(|(id, _parent, name, coll, blob, size, content_type, etag, created_ns, modified_ns)| Resource {
            id,
            path: parent.path.child_normalized(name),
            is_collection: coll != 0,
            blob: blob.as_deref().and_then(BlobId::parse),
            size: size.max(0) as u64,
            content_type,
            etag,
            created_ns,
            modified_ns,
            node: None,
            small_body: None,
        })
        .collect())
}

/// [`members`] and their dead properties, read on a connection of their own (an SQLite
/// file, see `db/direct.rs`): rows are read where SQLite makes them, with no JSON between.
pub(crate) async fn members_on(
    readers: &std::sync::Arc<crate::db::direct::Readers>,
    parent: &Resource,
) -> Result<(Vec<Resource>, std::collections::HashMap<i64, Vec<crate::props::DeadProp>>)> {
    static MEMBERS: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let members = MEMBERS.get_or_init(|| format!("SELECT {COLUMNS} FROM resources WHERE parent_id = ? ORDER BY name"));
    let mut batch = Batch::new();
    batch.push(members).bind(parent.id);
    batch.push(crate::props::DEAD_PROPS_OF_MEMBERS).bind(parent.id);
    let mut results = readers.run(batch).await?.into_iter();
    let (rows, dead) = (results.next().unwrap_or_default(), results.next().unwrap_or_default());
    let broken = |e: sqlx::Error| Error::Internal(format!("member listing: {e}"));
    let members = rows
        .iter()
        .map(|row| Ok(Resource::from_row(row, parent.path.child_normalized(row.try_get::<String>(2).map_err(broken)?))))
        .collect::<Result<Vec<_>>>()?;
    Ok((members, crate::props::group_dead_props(&dead).map_err(broken)?))
}

/// Number of resources below `id` (not counting it), counting no further than `cap + 1`.
pub(crate) async fn count_descendants(conn: &mut dyn Handle, id: i64, cap: u64) -> Result<u64> {
    let (n,): (i64,) = crate::db::query_as(
        "WITH RECURSIVE sub(id) AS (SELECT id FROM resources WHERE parent_id = ?1 \
         UNION ALL SELECT r.id FROM resources r JOIN sub ON r.parent_id = sub.id) \
         SELECT COUNT(*) FROM (SELECT 1 FROM sub LIMIT ?2) AS capped",
    )
    .bind(id)
    .bind(cap.saturating_add(1).min(i64::MAX as u64) as i64)
    .fetch_one(&mut *conn)
    .await?;
    Ok(n.max(0) as u64)
}

/// Marks a collection as changed (new modification time and ETag) after its membership
/// or properties changed.
pub(crate) async fn touch(conn: &mut dyn Handle, id: i64, now: i64) -> Result<()> {
    let mut batch = Batch::new();
    push_touch(&mut batch, id, now);
    batch.fetch_all(conn).await?;
    Ok(())
}

/// [`touch`], as one statement of a batch.
pub(crate) fn push_touch(batch: &mut Batch, id: i64, now: i64) {
    batch.push("UPDATE resources SET modified_ns = ?, etag = ? WHERE id = ?");
    batch.bind(now).bind(collection_etag(id, now)).bind(id);
}

/// Inserts an empty collection `name` into `parent` and touches both; returns its id.
pub(crate) async fn insert_collection(conn: &mut dyn Handle, parent: i64, name: &str, now: i64) -> Result<i64> {
    let (id,) = crate::db::query_as::<(i64,)>(
        "INSERT INTO resources (parent_id, name, is_collection, etag, created_ns, modified_ns) VALUES (?, ?, 1, '', ?, ?) \
         RETURNING id",
    )
    .bind(parent)
    .bind(name)
    .bind(now)
    .bind(now)
    .fetch_one(&mut *conn)
    .await?;
    touch(conn, id, now).await?;
    touch(conn, parent, now).await?;
    Ok(id)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_array_escapes_quotes_backslashes_and_controls() {
        let items = vec!["a\"b".to_owned(), "c\\d".to_owned(), "e\u{1}".to_owned(), "é".to_owned()];
        assert_eq!(json_array(&items), r#"["a\"b","c\\d","e\u0001","é"]"#);
    }

    #[tokio::test]
    async fn a_listing_read_on_its_own_connection_matches_the_pools() {
        use crate::props::{DeadProp, PatchOp, PropName};
        let (_dir, repo) = crate::Repository::scratch_sqlite().await;
        let readers = repo.readers.clone().expect("an SQLite file has readers");
        let body = |b: &'static [u8]| -> crate::ByteStream {
            Box::pin(futures_util::stream::once(async move { Ok(bytes::Bytes::from_static(b)) }))
        };
        let path = |s: &str| DavPath::parse(s).unwrap();
        repo.mkcol(&path("/c"), &Default::default(), None).await.unwrap();
        for name in ["b.txt", "a \"q\".bin", "é"] {
            repo.put(&path(&format!("/c/{name}")), body(b"bytes"), Default::default()).await.unwrap();
        }
        repo.mkcol(&path("/c/sub"), &Default::default(), None).await.unwrap();
        let xml = "<C:colour xmlns:C=\"urn:c\">red</C:colour>".to_owned();
        let set = PatchOp::Set(DeadProp { name: PropName::new("urn:c", "colour"), xml, text: Some("red".into()) });
        repo.proppatch(&path("/c/b.txt"), &[set], &Default::default(), None).await.unwrap();
        let parent = repo.resolve(&path("/c")).await.unwrap().unwrap();
        let (members, dead) = members_on(&readers, &parent).await.unwrap();
        let mut conn = repo.read.acquire().await.unwrap();
        let pooled = super::members(&mut conn, &parent).await.unwrap();
        let pooled_dead = crate::props::dead_props_of_members(&mut conn, parent.id).await.unwrap();
        let view = |rs: &[Resource]| rs.iter().map(|r| format!("{:?}", r)).collect::<Vec<_>>();
        assert_eq!(view(&members), view(&pooled));
        assert_eq!(members.len(), 4);
        assert_eq!(format!("{dead:?}"), format!("{pooled_dead:?}"));
        assert_eq!(dead.len(), 1);
    }
}
