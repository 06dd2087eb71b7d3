//! The plain PUT, in one grouped trip: no conditions, no quota, no lock anywhere, and the
//! parent the early check saw. Its statements are guarded by all of that, so when
//! anything else holds they change nothing, and the caller takes the careful path
//! (`write_row`). Being guarded, they need no decision between reads and writes, so
//! concurrent plain PUTs share one transaction (see `group/`).

use super::{bind_file, push_update_file_set, NewContent, PutOptions, Replaced};
use crate::db::{Dialect, Row};
use crate::group::Coming;
use crate::lock::NO_LOCK_AT_ALL;
use crate::path::DavPath;
use crate::resource::{self, bind_walk, collection_etag, Resource, Tag, WALK};
use crate::txn::{Batch, Only};
use crate::{now_ns, Error, Repository, Result};

impl Repository {
    /// Writes a new file or replaces one. `None`: a guard held, nothing was written.
    /// `coming`: the write was announced to the committer.
    pub(super) async fn write_plain(
        &self,
        path: &DavPath,
        new: &NewContent<'_>,
        opts: &PutOptions,
        parent: &Resource,
        coming: Option<Coming<'_>>,
    ) -> Result<Option<(Resource, Replaced)>> {
        let writes = plain_batch(self.write.dialect(), path, new, opts, parent, now_ns());
        let at = path.clone();
        let fresh = move |rows: &[Row]| fresh(rows, &at);
        let rows = match coming {
            Some(coming) => coming.write(writes, fresh).await?,
            None => self.group.write(writes, fresh).await?,
        };
        let dropped = crate::inline::dropped(&rows);
        self.gc_counts.record_inline(dropped.blobs, dropped.bytes);
        let found = Found::read(&rows, path);
        match (found.file, found.parent, found.old) {
            (Some(file), None, Some(old)) => {
                let garbage = old.blob.is_some() && old.blob.as_ref() != new.blob && dropped.files_left;
                Ok(Some((file, Replaced { old: Some(old), garbage })))
            }
            (Some(file), Some(_), _) => Ok(Some((file, Replaced::default()))),
            // A guard held: nothing was written.
            (None, None, _) => Ok(None),
            _ => Err(Error::Internal("the plain PUT wrote an unexpected set of rows".into())),
        }
    }
}

/// The statements' text: the same for every plain PUT (so prepared statements are reused),
/// hence made once. On SQLite, the rows written are read back by a SELECT guarded by
/// `changes()` (what the statement before it did) rather than by `RETURNING`, for which
/// SQLite makes a temporary database each time; PostgreSQL has no `changes()`, and returns
/// them (see [`PgSql`]).
struct Sql {
    old: String,
    update: String,
    /// [`Sql::old`] and [`Sql::update`] on SQLite, where they come after the INSERT and
    /// hold back when it wrote (`changes()` is then the parent's touch's 1, or else the
    /// INSERT's 0).
    old_unless_inserted: String,
    update_unless_inserted: String,
    updated: String,
    insert: String,
    inserted: String,
    touch: String,
    touched: String,
}

fn sql() -> &'static Sql {
    static SQL: std::sync::OnceLock<Sql> = std::sync::OnceLock::new();
    SQL.get_or_init(|| {
        let (target, parent, old) = (Tag::Target as i64, Tag::Parent as i64, Tag::Replaced as i64);
        let columns = resource::COLUMNS;
        let guards = format!(
            "(SELECT id FROM walk WHERE i = ?) = ? \
             AND EXISTS (SELECT 1 FROM resources WHERE id = ? AND is_collection = 1) AND {NO_LOCK_AT_ALL}"
        );
        let old =
            format!("SELECT {old}, {columns} FROM resources WHERE parent_id = ? AND name = ? AND is_collection = 0");
        let update = format!(
            "{WALK} UPDATE resources SET {} WHERE parent_id = ? AND name = ? AND is_collection = 0 AND {guards}",
            super::UPDATE_FILE_SET
        );
        Sql {
            old_unless_inserted: format!("{old} AND {UNLESS_INSERTED}"),
            update_unless_inserted: format!("{update} AND {UNLESS_INSERTED}"),
            old,
            update,
            updated: format!(
                "SELECT {target}, {columns} FROM resources WHERE parent_id = ? AND name = ? AND changes() = 1"
            ),
            insert: format!(
                "{WALK} INSERT INTO resources \
                   (parent_id, name, is_collection, blob_id, size, content_type, etag, created_ns, modified_ns) \
                 SELECT ?, ?, 0, ?, ?, ?, ?, ?, ? WHERE {guards} ON CONFLICT (parent_id, name) DO NOTHING"
            ),
            inserted: format!(
                "SELECT {target}, {columns} FROM resources WHERE id = last_insert_rowid() AND changes() = 1"
            ),
            // changes() is still the INSERT's: the parent is touched only with it.
            touch: "UPDATE resources SET modified_ns = ?, etag = ? WHERE id = ? AND changes() = 1".into(),
            touched: format!("SELECT {parent}, {columns} FROM resources WHERE id = ? AND changes() = 1"),
        }
    })
}

/// The guard of the statements that replace a file on SQLite (see [`Sql::old_unless_inserted`]).
const UNLESS_INSERTED: &str = "changes() = 0";

/// The UPDATE and INSERT on SQLite for a parent `depth` segments below the root. Their
/// guard finds the parent by one index lookup per segment; the recursive walk of
/// [`Sql`], whose text is the same at every depth, costs SQLite a temporary table and a
/// JSON parse per segment, a tenth of a small PUT's instructions. Prepared statements are
/// cached by their text, hence one text per depth, made once.
struct AtDepth {
    update: String,
    insert: String,
}

/// Deeper parents take the walk of [`Sql`].
const MAX_DEPTH: usize = 24;

fn at_depth(depth: usize) -> Option<&'static AtDepth> {
    static SQL: std::sync::OnceLock<Vec<AtDepth>> = std::sync::OnceLock::new();
    let all = SQL.get_or_init(|| {
        (0..=MAX_DEPTH)
            .map(|depth| {
                // The parent's id, found from the root's by the names bound in order.
                let mut found = resource::ROOT_ID.to_string();
                for _ in 0..depth {
                    found = format!("(SELECT id FROM resources WHERE parent_id = {found} AND name = ?)");
                }
                let guards = format!(
                    "{found} = ? AND EXISTS (SELECT 1 FROM resources WHERE id = ? AND is_collection = 1) \
                     AND {NO_LOCK_AT_ALL}"
                );
                AtDepth {
                    update: format!(
                        "UPDATE resources SET {} WHERE parent_id = ? AND name = ? AND is_collection = 0 AND {guards} \
                         AND {UNLESS_INSERTED}",
                        super::UPDATE_FILE_SET
                    ),
                    insert: format!(
                        "INSERT INTO resources \
                           (parent_id, name, is_collection, blob_id, size, content_type, etag, created_ns, modified_ns) \
                         SELECT ?, ?, 0, ?, ?, ?, ?, ?, ? WHERE {guards} ON CONFLICT (parent_id, name) DO NOTHING"
                    ),
                }
            })
            .collect()
    });
    all.get(depth)
}

/// The statements on PostgreSQL: the UPDATE returns the row it wrote, and the INSERT and
/// the parent's touch are one statement whose touch happens only if the INSERT did.
struct PgSql {
    update: String,
    insert_and_touch: String,
}

fn pg_sql() -> &'static PgSql {
    static SQL: std::sync::OnceLock<PgSql> = std::sync::OnceLock::new();
    SQL.get_or_init(|| {
        let sqlite = sql();
        let (target, parent) = (Tag::Target as i64, Tag::Parent as i64);
        let columns = resource::COLUMNS;
        let insert = sqlite.insert.strip_prefix(WALK).expect("the insert starts with the walk");
        PgSql {
            update: format!("{} RETURNING {target}, {columns}", sqlite.update),
            insert_and_touch: format!(
                "{WALK}, ins AS ({insert} RETURNING {columns}), \
                 touch AS (UPDATE resources SET modified_ns = ?, etag = ? \
                   WHERE id = ? AND EXISTS (SELECT 1 FROM ins) RETURNING {columns}) \
                 SELECT {target}, * FROM ins UNION ALL SELECT {parent}, * FROM touch"
            ),
        }
    })
}

/// The statements. On SQLite: the INSERT of a new file and the touch of its parent; if
/// that wrote nothing, the file being replaced and its UPDATE, then the deletion of the
/// inline blobs released. A new file is the common case, and the committer then skips the
/// rest (see [`Only`]). On PostgreSQL, which has no `changes()`: the file being replaced,
/// its UPDATE, the INSERT with the touch, the deletion.
fn plain_batch(
    dialect: Dialect,
    path: &DavPath,
    new: &NewContent<'_>,
    opts: &PutOptions,
    parent: &Resource,
    now: i64,
) -> Batch {
    let above = &path.segments()[..path.segments().len().saturating_sub(1)];
    let name = path.name().unwrap_or_default().to_owned();
    let sql = sql();
    let pg = dialect == Dialect::Postgres;
    let by_depth = if pg { None } else { at_depth(above.len()) };
    let (update, insert) = match by_depth {
        Some(at) => (&at.update, &at.insert),
        None if pg => (&pg_sql().update, &pg_sql().insert_and_touch),
        None => (&sql.update_unless_inserted, &sql.insert),
    };
    // The walk's values come first in its statements; the guard's, last in both kinds.
    let bind_walk_if_any = |b: &mut Batch| {
        if by_depth.is_none() {
            bind_walk(b, above);
        }
    };
    let bind_guards = |b: &mut Batch| {
        match by_depth {
            Some(_) => above.iter().for_each(|segment| _ = b.bind(segment)),
            None => _ = b.bind(above.len() as i64),
        }
        b.bind(parent.id).bind(parent.id);
    };
    let push_update = |b: &mut Batch| {
        b.push(update);
        bind_walk_if_any(b);
        push_update_file_set(b, new, opts, now);
        b.bind(parent.id).bind(name.clone());
        bind_guards(b);
    };
    let push_insert = |b: &mut Batch| {
        b.push(insert);
        bind_walk_if_any(b);
        bind_file(b, parent.id, path, new, opts, now);
        bind_guards(b);
    };
    let mut b = Batch::new();
    new.push_inline(&mut b);
    if pg {
        b.push(&sql.old).bind(parent.id).bind(name.clone());
        push_update(&mut b);
        push_insert(&mut b);
        b.bind(now).bind(collection_etag(parent.id, now)).bind(parent.id);
        crate::inline::push_drop_garbage(&mut b, None);
        return b;
    }
    let inserting = b.len();
    push_insert(&mut b);
    let (inserted, not_inserted) = (Only::IfChanged(inserting), Only::IfUnchanged(inserting));
    b.push(&sql.inserted).only(inserted);
    b.push(&sql.touch).only(inserted).bind(now).bind(collection_etag(parent.id, now)).bind(parent.id);
    b.push(&sql.touched).only(inserted).bind(parent.id);
    b.push(&sql.old_unless_inserted).only(not_inserted).bind(parent.id).bind(name.clone());
    let updating = b.len();
    push_update(&mut b);
    b.only(not_inserted);
    b.push(&sql.updated).only(Only::IfChanged(updating)).bind(parent.id).bind(name.clone());
    // Also when neither wrote: the blob row pushed above is then garbage.
    crate::inline::push_drop_garbage(&mut b, Some(not_inserted));
    b
}

/// The rows of a plain PUT, by their tag.
#[derive(Default)]
struct Found {
    file: Option<Resource>,
    parent: Option<Resource>,
    old: Option<Resource>,
}

impl Found {
    fn read(rows: &[Row], path: &DavPath) -> Found {
        let mut found = Found::default();
        for row in rows {
            match Tag::of(row) {
                Some(Tag::Target) => found.file = Some(Resource::from_row_at(row, 1, path.clone())),
                Some(Tag::Parent) => {
                    found.parent = Some(Resource::from_row_at(row, 1, path.parent().unwrap_or_default()))
                }
                Some(Tag::Replaced) => found.old = Some(Resource::from_row_at(row, 1, path.clone())),
                _ => {}
            }
        }
        found
    }
}

/// What the rows leave in the lookup cache: the file and, for a new one, its parent.
fn fresh(rows: &[Row], path: &DavPath) -> crate::group::Fresh {
    let found = Found::read(rows, path);
    let mut out: Vec<(DavPath, Option<Resource>)> = found.file.map(|f| (path.clone(), Some(f))).into_iter().collect();
    out.extend(found.parent.map(|p| (p.path.clone(), Some(p))));
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::super::*;
    use super::*;
    use crate::{LockRequest, LockScope, Transfer};

    fn p(s: &str) -> DavPath {
        DavPath::parse(s).unwrap()
    }

    /// What the database holds at `path`, past the lookup cache.
    async fn stored(repo: &Repository, path: &DavPath) -> Option<Resource> {
        resource::lookup(&mut repo.read.acquire().await.unwrap(), path).await.unwrap()
    }

    const EMPTY: NewContent<'static> = NewContent { blob: None, inline: None, size: 0, prefix_of: None };

    /// The folder `/d`, as the early check of a PUT into it would have seen it.
    async fn folder(repo: &Repository) -> Resource {
        repo.mkcol(&p("/d"), &Preconditions::default(), None).await.unwrap();
        repo.resolve(&p("/d")).await.unwrap().unwrap()
    }

    /// A MOVE of the collection at `from` to `to`, as a client's would be.
    async fn move_collection(repo: &Repository, from: &str, to: &str) {
        let (src, dst, pre) = (p(from), p(to), Preconditions::default());
        repo.transfer(Transfer::deep(&src, &dst, true, &pre)).await.unwrap();
    }

    fn body(data: &'static [u8]) -> crate::ByteStream {
        Box::pin(futures_util::stream::once(async move { Ok(bytes::Bytes::from_static(data)) }))
    }

    fn announced(repo: &Repository) -> (usize, u64) {
        let coming = &repo.group.coming;
        (
            coming.pending.load(std::sync::atomic::Ordering::Acquire),
            coming.latest_ns.load(std::sync::atomic::Ordering::Relaxed),
        )
    }

    #[tokio::test]
    async fn a_small_plain_put_announces_itself_and_leaves_nothing_announced() {
        let (_dir, repo) = Repository::scratch().await;
        folder(&repo).await;
        let opts = PutOptions { length_hint: Some(5), ..PutOptions::default() };
        repo.put(&p("/d/f"), body(b"small"), opts).await.unwrap();
        let (pending, latest) = announced(&repo);
        assert_eq!(pending, 0);
        assert!(latest > 0, "announced");
    }

    #[tokio::test]
    async fn a_refused_small_put_leaves_nothing_announced() {
        let (_dir, repo) = Repository::scratch().await;
        folder(&repo).await;
        let opts = PutOptions { length_hint: Some(5), expected_len: Some(5), ..PutOptions::default() };
        assert!(repo.put(&p("/d/f"), body(b"longer than said"), opts).await.is_err());
        assert_eq!(announced(&repo).0, 0);
    }

    #[tokio::test]
    async fn a_put_of_unknown_length_is_not_announced() {
        let (_dir, repo) = Repository::scratch().await;
        folder(&repo).await;
        repo.put(&p("/d/f"), body(b"small"), PutOptions::default()).await.unwrap();
        assert_eq!(announced(&repo), (0, 0));
    }

    #[tokio::test]
    async fn the_plain_insert_holds_back_when_a_lock_covers_the_parent() {
        let (_dir, repo) = Repository::scratch().await;
        let d = folder(&repo).await;
        let req = LockRequest {
            scope: LockScope::Exclusive,
            depth_infinite: true,
            owner_xml: None,
            principal: Some("alice".into()),
            timeouts: vec![],
        };
        repo.lock(&p("/d"), req, &Preconditions::default()).await.unwrap();
        let done = repo.write_plain(&p("/d/f"), &EMPTY, &PutOptions::default(), &d, None).await.unwrap();
        assert!(done.is_none());
        assert!(stored(&repo, &p("/d/f")).await.is_none());
    }

    #[tokio::test]
    async fn the_plain_insert_holds_back_when_the_parent_moved_away() {
        let (_dir, repo) = Repository::scratch().await;
        let d = folder(&repo).await;
        move_collection(&repo, "/d", "/e").await;
        let done = repo.write_plain(&p("/d/f"), &EMPTY, &PutOptions::default(), &d, None).await.unwrap();
        assert!(done.is_none());
        assert!(stored(&repo, &p("/e/f")).await.is_none());
    }

    #[tokio::test]
    async fn the_plain_insert_holds_back_when_an_ancestor_of_the_parent_moved_away() {
        let (_dir, repo) = Repository::scratch().await;
        let pre = Preconditions::default();
        for c in ["/a", "/a/b", "/a/b/c"] {
            repo.mkcol(&p(c), &pre, None).await.unwrap();
        }
        let c = repo.resolve(&p("/a/b/c")).await.unwrap().unwrap();
        move_collection(&repo, "/a/b", "/a/e").await;
        let done = repo.write_plain(&p("/a/b/c/f"), &EMPTY, &PutOptions::default(), &c, None).await.unwrap();
        assert!(done.is_none());
        assert!(stored(&repo, &p("/a/e/c/f")).await.is_none());
    }

    /// A repository on a file, whose writes the committer runs on its own connection
    /// (skipping what their `Only`s allow), and one in memory, whose writes run through
    /// the pool with every statement.
    async fn both_kinds() -> Vec<(Option<tempfile::TempDir>, Repository)> {
        let (dir, on_file) = Repository::scratch_sqlite().await;
        let store = std::sync::Arc::new(wharf_backends::MemoryStore::new());
        let in_memory = Repository::with_store("sqlite::memory:", store, crate::Config::default()).await.unwrap();
        vec![(Some(dir), on_file), (None, in_memory)]
    }

    #[tokio::test]
    async fn the_plain_write_finds_its_parent_at_every_depth() {
        for (_dir, repo) in both_kinds().await {
            let root = repo.resolve(&DavPath::root()).await.unwrap().unwrap();
            assert!(repo.write_plain(&p("/f"), &EMPTY, &PutOptions::default(), &root, None).await.unwrap().is_some());
            let mut dir = String::new();
            for depth in 1..=super::MAX_DEPTH + 2 {
                dir.push_str(&format!("/d{depth}"));
                repo.mkcol(&p(&dir), &Preconditions::default(), None).await.unwrap();
                let parent = repo.resolve(&p(&dir)).await.unwrap().unwrap();
                let file = p(&format!("{dir}/f"));
                let written = repo.write_plain(&file, &EMPTY, &PutOptions::default(), &parent, None).await.unwrap();
                assert!(written.as_ref().is_some_and(|(_, r)| r.old.is_none()), "a new file at depth {depth}");
                let again = repo.write_plain(&file, &EMPTY, &PutOptions::default(), &parent, None).await.unwrap();
                assert!(again.is_some_and(|(_, r)| r.old.is_some()), "a replaced file at depth {depth}");
            }
        }
    }

    #[tokio::test]
    async fn replacing_inline_content_drops_the_released_blob_on_either_connection() {
        for (_dir, repo) in both_kinds().await {
            let d = folder(&repo).await;
            for content in [&b"first"[..], b"second"] {
                let data = bytes::Bytes::from_static(content);
                let id = crate::inline::id_of(&data);
                let new = NewContent { blob: Some(&id), inline: Some(&data), size: data.len() as u64, prefix_of: None };
                let d = repo.resolve(&d.path).await.unwrap().unwrap();
                repo.write_plain(&p("/d/f"), &new, &PutOptions::default(), &d, None).await.unwrap().unwrap();
            }
            let blobs: Vec<(i64,)> =
                crate::db::query_as("SELECT refcount FROM blobs").fetch_all(&repo.read).await.unwrap();
            assert_eq!(blobs, [(1,)], "only the second content is left");
        }
    }

    #[tokio::test]
    async fn a_plain_write_held_back_by_its_guard_leaves_no_blob_behind() {
        for (_dir, repo) in both_kinds().await {
            let d = folder(&repo).await;
            move_collection(&repo, "/d", "/e").await;
            let data = bytes::Bytes::from_static(b"orphan");
            let id = crate::inline::id_of(&data);
            let new = NewContent { blob: Some(&id), inline: Some(&data), size: 6, prefix_of: None };
            assert!(repo.write_plain(&p("/d/f"), &new, &PutOptions::default(), &d, None).await.unwrap().is_none());
            let (n,): (i64,) = crate::db::query_as("SELECT COUNT(*) FROM blobs").fetch_one(&repo.read).await.unwrap();
            assert_eq!(n, 0);
        }
    }

    #[tokio::test]
    async fn the_plain_insert_leaves_an_existing_name_and_its_parent_alone() {
        let (_dir, repo) = Repository::scratch().await;
        let d = folder(&repo).await;
        repo.mkcol(&p("/d/sub"), &Preconditions::default(), None).await.unwrap();
        let before = stored(&repo, &p("/d")).await.unwrap();
        let done = repo.write_plain(&p("/d/sub"), &EMPTY, &PutOptions::default(), &d, None).await.unwrap();
        assert!(done.is_none());
        let after = stored(&repo, &p("/d")).await.unwrap();
        assert_eq!((after.etag, after.modified_ns), (before.etag, before.modified_ns), "parent untouched");
    }

    #[tokio::test]
    async fn the_plain_insert_touches_the_parent_it_inserted_into() {
        let (_dir, repo) = Repository::scratch().await;
        let d = folder(&repo).await;
        let (file, _) = repo.write_plain(&p("/d/f"), &EMPTY, &PutOptions::default(), &d, None).await.unwrap().unwrap();
        let stored = stored(&repo, &p("/d")).await.unwrap();
        assert_eq!(stored.modified_ns, file.created_ns);
        assert_eq!(
            repo.resolve(&p("/d")).await.unwrap().unwrap().etag,
            stored.etag,
            "the cache has the touched parent"
        );
    }

    #[tokio::test]
    async fn the_plain_write_replaces_a_file_and_says_what_it_replaced() {
        let (_dir, repo) = Repository::scratch().await;
        let d = folder(&repo).await;
        let (first, _) = repo.write_plain(&p("/d/f"), &EMPTY, &PutOptions::default(), &d, None).await.unwrap().unwrap();
        let d = repo.resolve(&p("/d")).await.unwrap().unwrap();
        let data = bytes::Bytes::from_static(b"new");
        let id = crate::inline::id_of(&data);
        let new = NewContent { blob: Some(&id), inline: Some(&data), size: 3, prefix_of: None };
        let (file, replaced) =
            repo.write_plain(&p("/d/f"), &new, &PutOptions::default(), &d, None).await.unwrap().unwrap();
        assert_eq!(replaced.old.map(|r| r.id), Some(first.id));
        assert_eq!((file.id, file.size), (first.id, 3));
        assert_eq!(stored(&repo, &p("/d")).await.unwrap().etag, d.etag, "replacing a member leaves its parent alone");
    }
}
