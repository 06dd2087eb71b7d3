//! fsck against stores damaged on purpose: each damage is found, and repaired where it can
//! be, with the store consistent afterwards.

use futures_util::stream;

use super::*;
use crate::condition::Preconditions;
use crate::props::{DeadProp, PatchOp, PropName};
use crate::{ByteStream, LockRequest, LockScope, PutOptions, Transfer};

fn p(s: &str) -> DavPath {
    DavPath::parse(s).unwrap()
}

fn body(bytes: &'static [u8]) -> ByteStream {
    Box::pin(stream::once(async move { Ok(bytes::Bytes::from_static(bytes)) }))
}

const CHECK: FsckOptions = FsckOptions { repair: false, verify_content: false };
const REPAIR: FsckOptions = FsckOptions { repair: true, verify_content: false };
const VERIFY: FsckOptions = FsckOptions { repair: false, verify_content: true };

/// A repository on disk (a real blob store) holding `/d/a` and `/d/b` with the same bytes,
/// and `/d/c` with others, all as blob files.
async fn store() -> (tempfile::TempDir, Repository) {
    store_with(Config::blob_files_only()).await
}

/// The same with small contents inline in the database.
async fn inline_store() -> (tempfile::TempDir, Repository) {
    store_with(Config::default()).await
}

async fn store_with(config: Config) -> (tempfile::TempDir, Repository) {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repository::open(dir.path(), config).await.unwrap();
    repo.mkcol(&p("/d"), &Preconditions::default(), None).await.unwrap();
    for (path, bytes) in [("/d/a", &b"shared"[..]), ("/d/b", b"shared"), ("/d/c", b"other")] {
        let bytes: &'static [u8] = bytes;
        repo.put(&p(path), body(bytes), PutOptions::default()).await.unwrap();
    }
    (dir, repo)
}

async fn blob_of(repo: &Repository, path: &str) -> BlobId {
    repo.resolve(&p(path)).await.unwrap().unwrap().blob.unwrap()
}

async fn sql(repo: &Repository, statement: &str) {
    crate::db::query(statement).execute(&repo.write).await.unwrap();
}

fn findings(report: &Report) -> Vec<&Finding> {
    report.problems.iter().map(|p| &p.finding).collect()
}

fn blob_file(dir: &tempfile::TempDir, blob: &BlobId) -> std::path::PathBuf {
    dir.path().join("blobs").join("blobs").join(&blob.as_str()[..2]).join(blob.as_str())
}

#[tokio::test]
async fn a_store_after_every_kind_of_operation_is_clean() {
    let (_dir, repo) = store().await;
    every_kind_of_operation(&repo).await;
}

#[tokio::test]
async fn a_store_with_inline_contents_after_every_kind_of_operation_is_clean() {
    let (_dir, repo) = inline_store().await;
    every_kind_of_operation(&repo).await;
    assert!(repo.blobs.list().await.unwrap().is_empty(), "small contents made no blob files");
}

/// COPY, MOVE, an overwrite, DELETE, PROPPATCH and LOCK, then a verifying check.
async fn every_kind_of_operation(repo: &Repository) {
    let pre = Preconditions::default();
    let (d, e, a, z) = (p("/d"), p("/e"), p("/e/a"), p("/e/z"));
    repo.transfer(Transfer::deep(&d, &e, false, &pre)).await.unwrap();
    repo.transfer(Transfer::deep(&a, &z, true, &pre)).await.unwrap();
    repo.put(&p("/d/c"), body(b"overwritten"), PutOptions::default()).await.unwrap();
    repo.delete(&p("/e/b"), &pre, None).await.unwrap();
    let xml = "<C:k xmlns:C=\"urn:c\">v</C:k>".to_owned();
    let prop = DeadProp { name: PropName::new("urn:c", "k"), xml, text: Some("v".into()) };
    repo.proppatch(&p("/d/a"), &[PatchOp::Set(prop)], &pre, None).await.unwrap();
    let req = LockRequest {
        scope: LockScope::Exclusive,
        depth_infinite: false,
        owner_xml: None,
        principal: None,
        timeouts: vec![],
    };
    repo.lock(&p("/d/new"), req, &pre).await.unwrap();
    let report = repo.fsck(VERIFY).await.unwrap();
    assert!(report.is_clean(), "{report}");
    assert_eq!(report.counts.blobs, 3, "{report}");
    assert_eq!(report.counts.bytes_verified, 6 + 5 + 11);
}

#[tokio::test]
async fn the_check_works_on_a_store_in_memory() {
    let (_dir, repo) = Repository::scratch().await;
    repo.put(&p("/f"), body(b"in memory"), PutOptions::default()).await.unwrap();
    assert!(repo.fsck(VERIFY).await.unwrap().is_clean());
    sql(&repo, "UPDATE blobs SET refcount = 5").await;
    assert!(!repo.fsck(CHECK).await.unwrap().is_consistent());
}

#[tokio::test]
async fn a_wrong_reference_count_is_set_to_the_actual_one() {
    let (_dir, repo) = store().await;
    let shared = blob_of(&repo, "/d/a").await;
    sql(&repo, &format!("UPDATE blobs SET refcount = 7 WHERE id = '{shared}'")).await;
    let report = repo.fsck(CHECK).await.unwrap();
    let expected = Finding::RefcountMismatch { blob: shared.0.clone(), recorded: Some(7), actual: 2 };
    assert_eq!(findings(&report), [&expected]);
    let report = repo.fsck(REPAIR).await.unwrap();
    assert_eq!(report.problems[0].outcome, Outcome::Repaired(Repair::RefcountSet(2)));
    assert!(report.is_consistent(), "{report}");
    // The count is right again: deleting both files frees the blob.
    let pre = Preconditions::default();
    repo.delete(&p("/d/a"), &pre, None).await.unwrap();
    repo.delete(&p("/d/b"), &pre, None).await.unwrap();
    assert!(repo.blobs.list().await.unwrap().iter().all(|b| *b != shared));
}

#[tokio::test]
async fn a_missing_blob_names_the_files_that_lost_their_content_and_is_left_alone() {
    let (dir, repo) = store().await;
    let shared = blob_of(&repo, "/d/a").await;
    std::fs::remove_file(blob_file(&dir, &shared)).unwrap();
    let report = repo.fsck(REPAIR).await.unwrap();
    let expected = Finding::MissingBlob { blob: shared.0.clone(), paths: vec![p("/d/a"), p("/d/b")] };
    assert_eq!(findings(&report), [&expected]);
    assert!(matches!(report.problems[0].outcome, Outcome::Left(_)));
    assert_eq!(report.remaining, [expected]);
    assert!(repo.resolve(&p("/d/a")).await.unwrap().is_some(), "the file's row stays");
    // The same bytes uploaded anywhere bring the content back for both files.
    repo.put(&p("/again"), body(b"shared"), PutOptions::default()).await.unwrap();
    assert!(repo.fsck(CHECK).await.unwrap().is_clean());
}

#[tokio::test]
async fn blobs_lost_together_each_name_their_own_files() {
    let (dir, repo) = store().await;
    let (shared, other) = (blob_of(&repo, "/d/a").await, blob_of(&repo, "/d/c").await);
    std::fs::remove_file(blob_file(&dir, &shared)).unwrap();
    std::fs::remove_file(blob_file(&dir, &other)).unwrap();
    let report = repo.fsck(CHECK).await.unwrap();
    let mut expected = vec![
        Finding::MissingBlob { blob: shared.0.clone(), paths: vec![p("/d/a"), p("/d/b")] },
        Finding::MissingBlob { blob: other.0.clone(), paths: vec![p("/d/c")] },
    ];
    expected.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
    let mut found: Vec<Finding> = report.problems.into_iter().map(|p| p.finding).collect();
    found.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
    assert_eq!(found, expected);
}

#[tokio::test]
async fn counts_and_sizes_of_several_blobs_are_repaired_in_one_run() {
    let (_dir, repo) = store().await;
    let (shared, other) = (blob_of(&repo, "/d/a").await, blob_of(&repo, "/d/c").await);
    sql(&repo, "UPDATE blobs SET refcount = 9").await;
    sql(&repo, "UPDATE resources SET size = 99 WHERE name IN ('b', 'c')").await;
    let report = repo.fsck(FsckOptions { repair: true, verify_content: true }).await.unwrap();
    assert_eq!(report.problems.len(), 4, "{report}");
    assert!(report.is_consistent(), "{report}");
    for (path, size) in [("/d/a", 6), ("/d/b", 6), ("/d/c", 5)] {
        assert_eq!(repo.resolve(&p(path)).await.unwrap().unwrap().size, size, "{path}");
    }
    let counts: Vec<(String, i64)> =
        crate::db::query_as("SELECT id, refcount FROM blobs ORDER BY id").fetch_all(&repo.read).await.unwrap();
    let mut expected = vec![(shared.0.clone(), 2), (other.0.clone(), 1)];
    expected.sort();
    assert_eq!(counts, expected);
}

#[tokio::test]
async fn an_unreferenced_blob_file_is_deleted() {
    let (dir, repo) = store().await;
    let stray = BlobId(blake3::hash(b"stray").to_hex().to_string());
    std::fs::write(blob_file(&dir, &stray), b"stray").unwrap();
    let report = repo.fsck(REPAIR).await.unwrap();
    assert_eq!(findings(&report), [&Finding::OrphanBlobFile { blob: stray.clone() }]);
    assert!(report.is_consistent(), "{report}");
    assert!(!blob_file(&dir, &stray).exists());
}

#[tokio::test]
async fn damaged_bytes_are_found_only_by_verifying_and_moved_aside() {
    let (dir, repo) = store().await;
    let other = blob_of(&repo, "/d/c").await;
    std::fs::write(blob_file(&dir, &other), b"OTHER").unwrap();
    assert!(repo.fsck(CHECK).await.unwrap().is_clean(), "same length, same name: only the bytes tell");
    let report = repo.fsck(FsckOptions { repair: true, verify_content: true }).await.unwrap();
    assert_eq!(findings(&report), [&Finding::ContentMismatch { blob: other.clone(), paths: vec![p("/d/c")] }]);
    let aside = dir.path().join("blobs").join("lost+found").join(other.as_str());
    assert_eq!(report.problems[0].outcome, Outcome::Repaired(Repair::BlobMovedAside(Some(aside.clone()))));
    assert_eq!(std::fs::read(aside).unwrap(), b"OTHER");
    assert!(matches!(&report.remaining[..], [Finding::MissingBlob { .. }]), "the file lost its content");
}

#[tokio::test]
async fn damaged_inline_bytes_are_found_by_verifying_and_left_for_the_operator() {
    let (_dir, repo) = inline_store().await;
    let other = blob_of(&repo, "/d/c").await;
    sql(&repo, &format!("UPDATE blobs SET data = x'4f54484552' WHERE id = '{other}'")).await;
    assert!(repo.fsck(CHECK).await.unwrap().is_clean(), "only the bytes tell");
    let report = repo.fsck(FsckOptions { repair: true, verify_content: true }).await.unwrap();
    assert_eq!(findings(&report), [&Finding::ContentMismatch { blob: other.clone(), paths: vec![p("/d/c")] }]);
    assert!(matches!(report.problems[0].outcome, Outcome::Left(_)), "{report}");
}

#[tokio::test]
async fn a_size_that_disagrees_with_the_blob_is_corrected() {
    let (_dir, repo) = store().await;
    sql(&repo, "UPDATE resources SET size = 99 WHERE name = 'c'").await;
    let report = repo.fsck(FsckOptions { repair: true, verify_content: true }).await.unwrap();
    let blob = blob_of(&repo, "/d/c").await;
    assert_eq!(findings(&report), [&Finding::SizeMismatch { blob, recorded: 99, actual: 5, paths: vec![p("/d/c")] }]);
    assert!(report.is_consistent(), "{report}");
    assert_eq!(repo.resolve(&p("/d/c")).await.unwrap().unwrap().size, 5);
}

#[tokio::test]
async fn orphan_rows_and_unreachable_resources_are_deleted() {
    let (_dir, repo) = store().await;
    sql(&repo, "PRAGMA foreign_keys = OFF").await;
    sql(&repo, "INSERT INTO dead_props (resource_id, namespace, name, xml) VALUES (9999, 'urn:c', 'k', '<k/>')").await;
    let d = repo.resolve(&p("/d")).await.unwrap().unwrap().id;
    sql(&repo, &format!("UPDATE resources SET parent_id = 8888 WHERE id = {d}")).await;
    sql(&repo, "PRAGMA foreign_keys = ON").await;
    let report = repo.fsck(REPAIR).await.unwrap();
    let found = findings(&report);
    assert!(matches!(found[0], Finding::OrphanRow { table, .. } if table == "dead_props"), "{report}");
    let cut_off = found.iter().filter(|f| matches!(f, Finding::Unreachable { .. })).count();
    assert_eq!(cut_off, 4, "/d and its three files: {report}");
    assert!(report.is_consistent(), "{report}");
    assert!(repo.blobs.list().await.unwrap().is_empty(), "their blobs were collected");
}

#[tokio::test]
async fn a_lock_whose_root_is_gone_is_removed() {
    let (_dir, repo) = store().await;
    let req = LockRequest {
        scope: LockScope::Shared,
        depth_infinite: false,
        owner_xml: None,
        principal: None,
        timeouts: vec![],
    };
    let (lock, _) = repo.lock(&p("/d/a"), req, &Preconditions::default()).await.unwrap();
    sql(&repo, "UPDATE locks SET root_path = '/d/gone'").await;
    let report = repo.fsck(REPAIR).await.unwrap();
    let expected = Finding::LockRootMissing { token: lock.token, root: "/d/gone".into() };
    assert_eq!(findings(&report), [&expected]);
    assert!(report.is_consistent(), "{report}");
    assert!(!repo.lock_rows.may_exist(), "writes skip the lock query again");
}

#[tokio::test]
async fn a_collection_with_content_and_an_empty_file_with_a_size_are_set_right() {
    let (_dir, repo) = store().await;
    let blob = blob_of(&repo, "/d/c").await;
    sql(&repo, &format!("UPDATE resources SET blob_id = '{blob}', size = 5 WHERE name = 'd'")).await;
    repo.put(&p("/d/empty"), body(b""), PutOptions::default()).await.unwrap();
    sql(&repo, "UPDATE resources SET size = 3 WHERE name = 'empty'").await;
    let report = repo.fsck(REPAIR).await.unwrap();
    let found = findings(&report);
    assert!(matches!(found[0], Finding::CollectionHasContent { path, .. } if *path == p("/d")), "{report}");
    assert!(matches!(found[1], Finding::SizeWithoutContent { size: 3, .. }), "{report}");
    assert_eq!(found.len(), 2, "the triggers counted the collection's reference: {report}");
    assert!(report.is_consistent(), "{report}");
    assert_eq!(repo.resolve(&p("/d/c")).await.unwrap().unwrap().blob, Some(blob), "the file keeps its content");
}
