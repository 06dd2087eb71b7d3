//! The model's semantics, exercised through its public API on a real SQLite file and an
//! in-memory blob store.

use std::sync::Arc;

use bytes::Bytes;
use dav_model::condition::{Condition, IfHeader, List, Preconditions, Tag, Term};
use dav_model::identity::{Flags, Principal, Rights, View};
use dav_model::{ByteStream, Config, DavPath, Depth, Error, LockRequest, LockScope, PutOptions, Repository, Transfer};
use wharf_backends::{BlobStore, MemoryStore};

struct Fixture {
    repo: Repository,
    store: Arc<MemoryStore>,
    system: Principal,
    /// The database the repository is on (SQLite in `_dir`, or PostgreSQL).
    url: String,
    _dir: tempfile::TempDir,
}

impl Fixture {
    /// The whole store, unrestricted (adapters get a user's view; the semantics are the same).
    fn view(&self) -> View<'_> {
        self.repo.view(&self.system)
    }
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let url = match dav_model::testing::postgres_database().await {
        Some(url) => url,
        None => format!("sqlite://{}", dir.path().join("t.db").display()),
    };
    let store = Arc::new(MemoryStore::new());
    let repo = Repository::with_store(&url, store.clone(), Config::default()).await.unwrap();
    Fixture { repo, store, system: Principal::system(), url, _dir: dir }
}

fn p(s: &str) -> DavPath {
    DavPath::parse(s).unwrap()
}

fn body(s: &'static str) -> ByteStream {
    Box::pin(futures_util::stream::once(async move { Ok(Bytes::from_static(s.as_bytes())) }))
}

async fn put(f: &Fixture, path: &str, content: &'static str) -> Result<bool, Error> {
    Ok(f.view().put(&p(path), body(content), PutOptions::default()).await?.created)
}

/// Blobs held: files of the blob store and small contents inline in the database.
async fn blobs(f: &Fixture) -> usize {
    use sqlx::Connection;
    let sql = "SELECT COUNT(*) FROM blobs WHERE data IS NOT NULL AND refcount > 0";
    let inline: i64 = if f.url.starts_with("postgres") {
        let mut db = sqlx::PgConnection::connect(&f.url).await.unwrap();
        sqlx::query_as::<_, (i64,)>(sql).fetch_one(&mut db).await.unwrap().0
    } else {
        let mut db = sqlx::SqliteConnection::connect(&f.url).await.unwrap();
        sqlx::query_as::<_, (i64,)>(sql).fetch_one(&mut db).await.unwrap().0
    };
    f.store.list().await.unwrap().len() + inline as usize
}

fn copy<'a>(src: &'a DavPath, dst: &'a DavPath, pre: &'a Preconditions) -> Transfer<'a> {
    Transfer { src, dst, moving: false, depth: Depth::Infinity, overwrite: true, pre, principal: None }
}

#[tokio::test]
async fn deep_paths_resolve_in_one_lookup() {
    let f = fixture().await;
    let none = Preconditions::default();
    f.view().mkcol(&p("/a"), &none).await.unwrap();
    f.view().mkcol(&p("/a/b"), &none).await.unwrap();
    put(&f, "/a/b/c.txt", "hello").await.unwrap();
    let r = f.view().resolve(&p("/a/b/c.txt")).await.unwrap().unwrap();
    assert_eq!(r.size, 5);
    assert!(f.view().resolve(&p("/a/x/c.txt")).await.unwrap().is_none());
    assert!(f.view().resolve(&p("/")).await.unwrap().unwrap().is_collection);
}

#[tokio::test]
async fn identical_content_is_one_blob_and_copy_adds_none() {
    let f = fixture().await;
    put(&f, "/one", "same").await.unwrap();
    put(&f, "/two", "same").await.unwrap();
    let none = Preconditions::default();
    f.view().transfer(copy(&p("/one"), &p("/three"), &none)).await.unwrap();
    assert_eq!(blobs(&f).await, 1);
}

#[tokio::test]
async fn blob_is_reclaimed_only_when_its_last_reference_goes() {
    let f = fixture().await;
    let none = Preconditions::default();
    put(&f, "/one", "data").await.unwrap();
    f.view().transfer(copy(&p("/one"), &p("/two"), &none)).await.unwrap();
    f.view().delete(&p("/one"), &none).await.unwrap();
    assert_eq!(blobs(&f).await, 1);
    f.view().delete(&p("/two"), &none).await.unwrap();
    assert_eq!(blobs(&f).await, 0);
}

#[tokio::test]
async fn overwriting_content_reclaims_the_old_blob() {
    let f = fixture().await;
    assert!(put(&f, "/f", "old").await.unwrap());
    assert!(!put(&f, "/f", "new").await.unwrap());
    assert_eq!(blobs(&f).await, 1);
}

#[tokio::test]
async fn put_without_parent_is_a_conflict() {
    let f = fixture().await;
    assert!(matches!(put(&f, "/missing/f", "x").await, Err(Error::Conflict(_))));
}

#[tokio::test]
async fn locked_resource_refuses_writes_without_its_token() {
    let f = fixture().await;
    put(&f, "/f", "x").await.unwrap();
    let req = LockRequest {
        scope: LockScope::Exclusive,
        depth_infinite: false,
        owner_xml: None,
        principal: None,
        timeouts: vec![],
    };
    let (lock, created) = f.view().lock(&p("/f"), req, &Preconditions::default()).await.unwrap();
    assert!(!created);
    assert!(matches!(put(&f, "/f", "y").await, Err(Error::Locked(_))));
    let term = Term { negated: false, condition: Condition::Token(lock.token.clone()) };
    let pre = Preconditions {
        if_header: Some(IfHeader { lists: vec![List { resource: Tag::RequestUri, terms: vec![term] }] }),
        ..Default::default()
    };
    let opts = PutOptions { pre, ..Default::default() };
    f.view().put(&p("/f"), body("y"), opts).await.unwrap();
}

#[tokio::test]
async fn move_takes_the_subtree_and_leaves_nothing_behind() {
    let f = fixture().await;
    let none = Preconditions::default();
    f.view().mkcol(&p("/a"), &none).await.unwrap();
    put(&f, "/a/f", "x").await.unwrap();
    let (a, b) = (p("/a"), p("/b"));
    f.view().transfer(Transfer { moving: true, ..copy(&a, &b, &none) }).await.unwrap();
    assert!(f.view().resolve(&p("/a/f")).await.unwrap().is_none());
    assert_eq!(f.view().resolve(&p("/b/f")).await.unwrap().unwrap().size, 1);
}

#[tokio::test]
async fn a_cached_lookup_never_outlives_a_write() {
    let f = fixture().await;
    let none = Preconditions::default();
    assert!(f.view().resolve(&p("/f")).await.unwrap().is_none());
    put(&f, "/f", "x").await.unwrap();
    assert_eq!(f.view().resolve(&p("/f")).await.unwrap().unwrap().size, 1);
    f.view().delete(&p("/f"), &none).await.unwrap();
    assert!(f.view().resolve(&p("/f")).await.unwrap().is_none());
}

#[tokio::test]
async fn a_write_only_share_takes_uploads_but_is_neither_listed_nor_readable() {
    let f = fixture().await;
    let none = Preconditions::default();
    for d in ["/home", "/home/u", "/shares", "/shares/drop"] {
        f.view().mkcol(&p(d), &none).await.unwrap();
    }
    let u = Principal::user("u", Flags::default(), &[("drop".into(), Rights::WRITE)]).unwrap();
    let v = f.repo.view(&u);
    let root = v.resolve(&p("/")).await.unwrap().unwrap();
    assert!(v.list(&root).await.unwrap().is_empty());
    v.put(&p("/drop/f"), body("x"), PutOptions::default()).await.unwrap();
    assert!(matches!(v.resolve(&p("/drop/f")).await, Err(Error::Forbidden(_))));
    assert_eq!(f.view().resolve(&p("/shares/drop/f")).await.unwrap().unwrap().size, 1);
}

#[tokio::test]
async fn replacing_by_copy_needs_the_delete_right_at_the_destination() {
    let f = fixture().await;
    let none = Preconditions::default();
    for d in ["/home", "/home/u", "/shares", "/shares/team"] {
        f.view().mkcol(&p(d), &none).await.unwrap();
    }
    put(&f, "/shares/team/old", "old").await.unwrap();
    let u = Principal::user("u", Flags::default(), &[("team".into(), Rights::parse("rw").unwrap())]).unwrap();
    let v = f.repo.view(&u);
    v.put(&p("/mine"), body("new"), PutOptions::default()).await.unwrap();
    let (src, dst) = (p("/mine"), p("/team/old"));
    assert!(matches!(v.transfer(copy(&src, &dst, &none)).await, Err(Error::Forbidden(_))));
    let fresh = p("/team/fresh");
    v.transfer(copy(&src, &fresh, &none)).await.unwrap();
}

/// Uploads racing a MOVE of their folder: each either lands and is then found where the
/// folder went, or is refused and found nowhere. None is lost or left at the old path.
#[tokio::test]
async fn uploads_racing_a_move_of_their_folder_land_in_it_or_are_refused() {
    let f = fixture().await;
    let none = Preconditions::default();
    f.view().mkcol(&p("/d"), &none).await.unwrap();
    put(&f, "/d/first", "x").await.unwrap();
    let names: Vec<String> = (0..40).map(|i| format!("f{i}")).collect();
    // Staggered starts, so that some uploads are checked before the move and written after.
    let uploads = futures_util::future::join_all(names.iter().enumerate().map(|(i, n)| {
        let path = p(&format!("/d/{n}"));
        let view = f.view();
        async move {
            for _ in 0..i {
                tokio::task::yield_now().await;
            }
            view.put(&path, body("racing"), PutOptions::default()).await.map(|o| o.created)
        }
    }));
    let (d, e) = (p("/d"), p("/e"));
    let moving = async {
        for _ in 0..names.len() / 2 {
            tokio::task::yield_now().await;
        }
        f.view().transfer(Transfer { moving: true, ..copy(&d, &e, &none) }).await.unwrap();
    };
    let (results, ()) = tokio::join!(uploads, moving);
    assert!(f.view().resolve(&p("/d")).await.unwrap().is_none(), "the folder moved away");
    let stored = results.iter().any(Result::is_ok);
    for (name, result) in names.iter().zip(results) {
        let landed = f.view().resolve(&p(&format!("/e/{name}"))).await.unwrap();
        match result {
            Ok(created) => assert!(created && landed.is_some_and(|r| r.size == 6), "{name} was stored"),
            Err(Error::Conflict(_)) => assert!(landed.is_none(), "{name} was refused"),
            Err(other) => panic!("{name}: {other:?}"),
        }
    }
    assert_eq!(blobs(&f).await, 1 + stored as usize, "`first`'s blob, and one for every stored racer");
}

/// Uploads racing a DELETE of their folder: each is refused or deleted with the folder, and
/// no row or blob is left behind either way.
#[tokio::test]
async fn uploads_racing_a_delete_of_their_folder_leave_nothing_behind() {
    let f = fixture().await;
    let none = Preconditions::default();
    f.view().mkcol(&p("/d"), &none).await.unwrap();
    put(&f, "/d/first", "x").await.unwrap();
    let uploads = futures_util::future::join_all((0..40).map(|i| {
        let path = p(&format!("/d/f{i}"));
        let view = f.view();
        async move {
            for _ in 0..i {
                tokio::task::yield_now().await;
            }
            view.put(&path, body("racing"), PutOptions::default()).await
        }
    }));
    let deleting = async {
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
        f.view().delete(&p("/d"), &none).await.unwrap();
    };
    let (results, ()) = tokio::join!(uploads, deleting);
    for result in results {
        assert!(matches!(result, Ok(_) | Err(Error::Conflict(_))), "{result:?}");
    }
    assert!(f.view().resolve(&p("/d")).await.unwrap().is_none());
    f.repo.collect_garbage().await.unwrap();
    assert_eq!(blobs(&f).await, 0);
}
