//! The S3 blob store against a real S3 server: `s3s-fs` (the test command installs it with
//! `cargo install`), started on a free loopback port over a temporary folder, so what the
//! store leaves behind can be read straight off that folder.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use wharf_backends::{BlobId, BlobStore, ByteStream, Error, S3Options, S3Store};

const BUCKET: &str = "wharf";

#[path = "../../tests/support/s3s_fs.rs"]
mod s3s_fs;

struct S3Server(s3s_fs::S3sFs);

impl S3Server {
    fn start() -> S3Server {
        S3Server(s3s_fs::S3sFs::start(BUCKET, "AKWHARF", "SECRETWHARF"))
    }

    fn options(&self) -> S3Options {
        let mut options = S3Options::from_url(&format!("s3://{BUCKET}/node")).unwrap();
        options.endpoint = Some(self.0.endpoint.clone());
        options.region = Some("us-east-1".into());
        options.credentials = Some(("AKWHARF".into(), "SECRETWHARF".into()));
        options
    }

    async fn store(&self) -> S3Store {
        S3Store::open(self.options()).await.unwrap()
    }

    /// A store with no grace period, opened (so sweeping) once everything written so far
    /// is in the past: S3 gives times in whole seconds.
    async fn sweeper(&self) -> S3Store {
        let mut options = self.options();
        options.grace = Duration::ZERO;
        tokio::time::sleep(Duration::from_millis(1100)).await;
        S3Store::open(options).await.unwrap()
    }

    /// Every file the server holds, relative to its root: objects, and the parts and
    /// records of multipart uploads in progress (`.upload-*`, `.upload_id-*.part-*`).
    /// s3s-fs keeps each object's metadata in a `.bucket-*.object-*.json` file beside, which
    /// it leaves when the object is deleted: those say nothing about what Wharf left.
    fn files(&self) -> Vec<String> {
        let mut out = Vec::new();
        walk(self.0.root.path(), self.0.root.path(), &mut out);
        out.sort();
        out
    }

    fn object(&self, key: &str) -> PathBuf {
        self.0.root.path().join(BUCKET).join("node").join(key)
    }
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy();
        if name.starts_with(".bucket-") && name.ends_with(".json") {
            continue;
        }
        if path.is_dir() {
            walk(root, &path, out);
        } else {
            out.push(path.strip_prefix(root).unwrap().display().to_string());
        }
    }
}

/// `len` bytes that differ from one test to another, in chunks of 64 KiB.
fn body(len: usize, seed: u8) -> (Vec<u8>, ByteStream) {
    let data: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect();
    let chunks: Vec<std::io::Result<Bytes>> = data.chunks(64 << 10).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    (data, Box::pin(futures_util::stream::iter(chunks)))
}

async fn read(store: &S3Store, id: &BlobId, range: Option<std::ops::Range<u64>>) -> Vec<u8> {
    let chunks: Vec<Bytes> = store.open(id, range).await.unwrap().try_collect().await.unwrap();
    chunks.concat()
}

/// Waits for background removals (a dropped upload cleans up in a task of its own).
async fn settle(server: &S3Server, want: impl Fn(&[String]) -> bool) -> Vec<String> {
    for _ in 0..100 {
        let files = server.files();
        if want(&files) {
            return files;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.files()
}

#[tokio::test]
async fn a_small_blob_is_stored_under_its_content_id() {
    let server = S3Server::start();
    let store = server.store().await;
    let (data, stream) = body(4096, 1);
    let (id, size) = store.put(stream, None).await.unwrap();
    assert_eq!(size, 4096);
    assert_eq!(id.as_str(), blake3::hash(&data).to_hex().as_str());
    assert_eq!(std::fs::read(server.object(&format!("blobs/{id}"))).unwrap(), data);
    assert_eq!(read(&store, &id, None).await, data);
    assert_eq!(store.list().await.unwrap(), vec![id]);
}

#[tokio::test]
async fn a_large_body_goes_up_in_parts_and_is_named_by_a_pointer_under_its_id() {
    let server = S3Server::start();
    let store = server.store().await;
    let (data, stream) = body(20 << 20, 2);
    let (id, size) = store.put(stream, None).await.unwrap();
    assert_eq!(size, 20 << 20);
    assert_eq!(id.as_str(), blake3::hash(&data).to_hex().as_str());
    assert_eq!(read(&store, &id, None).await, data);
    let files = settle(&server, |f| f.len() == 3).await;
    assert_eq!(files.len(), 3, "a pointer, its data and its name; no marker or part: {files:?}");
    let pointer = server.object(&format!("blobs/{id}"));
    assert_eq!(std::fs::metadata(pointer).unwrap().len(), 0, "the pointer holds no bytes");
    let data_objects: Vec<_> = files.iter().filter(|f| f.contains("/node/data/")).collect();
    assert_eq!(data_objects.len(), 1);
    assert_eq!(std::fs::read(server.0.root.path().join(data_objects[0])).unwrap(), data, "one copy of the bytes");
}

#[tokio::test]
async fn a_large_blob_is_found_through_its_pointer_by_a_store_that_never_saw_it() {
    let server = S3Server::start();
    let (data, stream) = body(17 << 20, 13);
    let (id, _) = server.store().await.put(stream, None).await.unwrap();
    let fresh = server.store().await;
    assert_eq!(read(&fresh, &id, Some(5..105)).await, &data[5..105], "a range first: the pointer refuses it (416)");
    let other = server.store().await;
    assert_eq!(read(&other, &id, None).await, data);
    assert!(read(&other, &id, Some((17 << 20) + 1..(17 << 20) + 9)).await.is_empty());
}

#[tokio::test]
async fn deleting_a_large_blob_removes_its_pointer_and_its_data() {
    let server = S3Server::start();
    let store = server.store().await;
    let (_, stream) = body(9 << 20, 14);
    let (id, _) = store.put(stream, None).await.unwrap();
    assert_eq!(read(&store, &id, Some(0..10)).await.len(), 10);
    assert_eq!(store.delete(&id).await.unwrap(), 9 << 20, "the pointer knows the size");
    assert!(server.files().is_empty(), "left: {:?}", server.files());
    assert!(matches!(store.open(&id, None).await.err(), Some(Error::NotFound(_))), "the remembered pointer is dropped");
}

#[tokio::test]
async fn the_sweep_removes_data_no_pointer_names_and_keeps_the_rest() {
    let server = S3Server::start();
    let store = server.store().await;
    let (kept, stream) = body(9 << 20, 15);
    let (id, _) = store.put(stream, None).await.unwrap();
    let (_, orphan) = body(9 << 20, 16);
    std::mem::forget(store.stage(orphan, None).await.unwrap());
    let sweeper = server.sweeper().await;
    let files = server.files();
    assert_eq!(files.len(), 3, "the named blob's pointer, data and name only: {files:?}");
    assert_eq!(read(&sweeper, &id, None).await, kept);
}

#[tokio::test]
async fn ranges_read_only_their_bytes() {
    let server = S3Server::start();
    let store = server.store().await;
    let (data, stream) = body(9 << 20, 3);
    let (id, _) = store.put(stream, None).await.unwrap();
    assert_eq!(read(&store, &id, Some(100..200)).await, &data[100..200]);
    assert_eq!(read(&store, &id, Some((9 << 20) - 10..(9 << 20) + 50)).await, &data[(9 << 20) - 10..]);
    assert!(read(&store, &id, Some((9 << 20) + 5..(9 << 20) + 10)).await.is_empty(), "past the end: no bytes");
    assert!(read(&store, &id, Some(7..7)).await.is_empty());
}

#[tokio::test]
async fn a_missing_blob_is_not_found_even_for_an_empty_range() {
    let server = S3Server::start();
    let store = server.store().await;
    let missing = BlobId::parse(&"ab".repeat(32)).unwrap();
    assert!(matches!(store.open(&missing, None).await.err(), Some(Error::NotFound(_))));
    assert!(matches!(store.open(&missing, Some(0..0)).await.err(), Some(Error::NotFound(_))));
    assert_eq!(store.delete(&missing).await.unwrap(), 0);
}

#[tokio::test]
async fn identical_large_content_is_stored_once() {
    let server = S3Server::start();
    let store = server.store().await;
    let (_, first) = body(10 << 20, 4);
    let (_, second) = body(10 << 20, 4);
    let (a, _) = store.put(first, None).await.unwrap();
    let (b, _) = store.put(second, None).await.unwrap();
    assert_eq!(a, b);
    let files = settle(&server, |f| f.len() == 3).await;
    assert_eq!(files.len(), 3, "one pointer, one copy of the bytes, one name: {files:?}");
}

#[tokio::test]
async fn delete_removes_the_object_and_reports_its_size() {
    let server = S3Server::start();
    let store = server.store().await;
    let (_, stream) = body(5000, 5);
    let (id, _) = store.put(stream, None).await.unwrap();
    assert_eq!(store.delete(&id).await.unwrap(), 5000);
    assert!(store.list().await.unwrap().is_empty());
    assert!(server.files().is_empty(), "{:?}", server.files());
}

#[tokio::test]
async fn an_upload_dropped_before_commit_leaves_nothing() {
    let server = S3Server::start();
    let store = server.store().await;
    let (_, stream) = body(12 << 20, 6);
    let staged = store.stage(stream, None).await.unwrap();
    assert!(server.files().iter().any(|f| f.contains("/node/data/")), "the upload was completed");
    drop(staged);
    let files = settle(&server, |f| f.is_empty()).await;
    assert!(files.is_empty(), "left: {files:?}");
}

#[tokio::test]
async fn a_body_that_fails_midway_leaves_nothing() {
    let server = S3Server::start();
    let store = server.store().await;
    let (_, good) = body(11 << 20, 7);
    let failing = good.chain(futures_util::stream::iter([Err(std::io::Error::other("client went away"))]));
    let result = store.stage(Box::pin(failing), None).await;
    assert!(matches!(result.err(), Some(Error::Body(_))));
    let files = settle(&server, |f| f.is_empty()).await;
    assert!(files.is_empty(), "left: {files:?}");
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused_and_leaves_nothing() {
    let server = S3Server::start();
    let store = server.store().await;
    let (_, stream) = body(20 << 20, 8);
    let result = store.stage(stream, Some(10 << 20)).await;
    assert!(matches!(result.err(), Some(Error::TooLarge(_))));
    let files = settle(&server, |f| f.is_empty()).await;
    assert!(files.is_empty(), "left: {files:?}");
}

#[tokio::test]
async fn leftovers_of_a_killed_upload_are_swept_once_past_the_grace_period() {
    let server = S3Server::start();
    let store = server.store().await;
    let (_, stream) = body(12 << 20, 9);
    // A process killed after sending its parts runs no destructor.
    std::mem::forget(store.stage(stream, None).await.unwrap());
    let left = server.files();
    assert!(left.iter().any(|f| f.contains("/node/uploads/")), "the marker is there: {left:?}");
    assert!(left.iter().any(|f| f.contains("/node/data/")), "the upload is there: {left:?}");
    assert_eq!(store.sweep_leftovers().await.unwrap(), 0, "too young for a sweep: it may be another node's");
    assert_eq!(server.files(), left);
    let sweeper = server.sweeper().await;
    assert!(server.files().is_empty(), "left: {:?}", server.files());
    assert_eq!(sweeper.sweep_leftovers().await.unwrap(), 0);
}

#[tokio::test]
async fn young_blobs_are_not_yet_settled() {
    let server = S3Server::start();
    let store = server.store().await;
    let (_, stream) = body(100, 10);
    let (id, _) = store.put(stream, None).await.unwrap();
    assert!(store.list_settled().await.unwrap().is_empty(), "a day's grace by default");
    assert_eq!(server.sweeper().await.list_settled().await.unwrap(), vec![id]);
}

#[tokio::test]
async fn a_wrong_secret_is_refused_when_the_store_opens() {
    let server = S3Server::start();
    let mut options = server.options();
    options.credentials = Some(("AKWHARF".into(), "not-the-secret".into()));
    let err = S3Store::open(options).await.expect_err("refused");
    assert!(err.to_string().contains("s3://wharf/node"), "the message names the store: {err}");
}

#[tokio::test]
async fn quarantine_moves_the_blob_aside_in_the_bucket() {
    let server = S3Server::start();
    let store = server.store().await;
    let (data, stream) = body(300, 11);
    let (id, _) = store.put(stream, None).await.unwrap();
    let aside = store.quarantine(&id).await.unwrap().unwrap();
    assert_eq!(aside, PathBuf::from(format!("s3://{BUCKET}/node/quarantine/{id}")));
    assert_eq!(std::fs::read(server.object(&format!("quarantine/{id}"))).unwrap(), data);
    assert!(store.list().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_quarantined_large_blob_keeps_its_data_through_sweeps() {
    let server = S3Server::start();
    let store = server.store().await;
    let (data, stream) = body(9 << 20, 17);
    let (id, _) = store.put(stream, None).await.unwrap();
    store.quarantine(&id).await.unwrap();
    assert!(store.list().await.unwrap().is_empty());
    server.sweeper().await;
    let files = server.files();
    let data_objects: Vec<_> = files.iter().filter(|f| f.contains("/node/data/")).collect();
    assert_eq!(data_objects.len(), 1, "{files:?}");
    assert_eq!(std::fs::read(server.0.root.path().join(data_objects[0])).unwrap(), data);
}

#[tokio::test]
async fn the_probe_leaves_nothing() {
    let server = S3Server::start();
    let store = server.store().await;
    store.probe().await.unwrap();
    assert!(server.files().is_empty(), "{:?}", server.files());
}

#[tokio::test]
async fn parts_of_an_upload_killed_midway_are_aborted_by_the_sweep() {
    let server = S3Server::start();
    let store = server.store().await;
    // 9 MiB, then a client that never sends the rest: the first part goes up, then the
    // upload waits. Forgetting it there is what a killed process does.
    let (_, start) = body(9 << 20, 12);
    let stalled: ByteStream = Box::pin(start.chain(futures_util::stream::pending()));
    let mut staging = Box::pin(store.stage(stalled, None));
    let parts = |f: &[String]| f.iter().any(|f| f.contains(".part-"));
    for _ in 0..100 {
        if tokio::time::timeout(Duration::from_millis(50), &mut staging).await.is_ok() {
            panic!("a body that never ends was staged");
        }
        if parts(&server.files()) {
            break;
        }
    }
    std::mem::forget(staging);
    let left = server.files();
    assert!(parts(&left), "a part was sent: {left:?}");
    server.sweeper().await;
    assert!(server.files().is_empty(), "left: {:?}", server.files());
}

#[tokio::test]
async fn a_prefix_holds_the_blobs_of_one_repository_only() {
    let server = S3Server::start();
    let store = server.store().await;
    store.claim("repository-a").await.unwrap();
    store.claim("repository-a").await.expect("the same repository again, another node of it say");
    let err = server.store().await.claim("repository-b").await.expect_err("another repository's prefix");
    assert!(err.to_string().contains("repository-a"), "the message names the owner: {err}");
}

#[tokio::test]
async fn an_empty_blob_is_an_empty_object_and_reads_back_empty() {
    let server = S3Server::start();
    let store = server.store().await;
    let (id, size) = store.put(Box::pin(futures_util::stream::empty()), None).await.unwrap();
    assert_eq!((id.as_str(), size), (blake3::hash(b"").to_hex().as_str(), 0));
    assert!(read(&store, &id, None).await.is_empty());
    assert!(read(&store, &id, Some(0..10)).await.is_empty());
}

#[tokio::test]
async fn an_empty_object_under_the_id_of_content_is_an_error_not_an_empty_file() {
    let server = S3Server::start();
    let store = server.store().await;
    let (_, stream) = body(3000, 18);
    let (id, _) = store.put(stream, None).await.unwrap();
    // What a server that drops object metadata would make of a pointer.
    std::fs::write(server.object(&format!("blobs/{id}")), b"").unwrap();
    let err = store.open(&id, None).await.err().expect("refused");
    assert!(err.to_string().contains("names no data"), "{err}");
}

#[tokio::test]
async fn a_sweep_leaves_this_servers_uploads_in_progress_alone_whatever_their_age() {
    let server = S3Server::start();
    let mut options = server.options();
    options.grace = Duration::ZERO;
    let store = S3Store::open(options).await.unwrap();
    let (data, _) = body(20 << 20, 19);
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<std::io::Result<Bytes>>();
    tx.send(Ok(Bytes::copy_from_slice(&data[..9 << 20]))).unwrap();
    let body = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|chunk| (chunk, rx)) });
    let staging = tokio::spawn({
        let store = store.clone();
        async move { store.put(Box::pin(body), None).await }
    });
    let parts = |f: &[String]| f.iter().any(|f| f.contains(".part-"));
    let sent = settle(&server, parts).await;
    assert!(parts(&sent), "a part went up: {sent:?}");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(store.sweep_leftovers().await.unwrap(), 0, "older than the grace, but ours and alive");
    tx.send(Ok(Bytes::copy_from_slice(&data[9 << 20..]))).unwrap();
    drop(tx);
    let (id, _) = staging.await.unwrap().unwrap();
    assert_eq!(read(&store, &id, None).await, data);
}

#[tokio::test]
async fn when_two_servers_adopted_the_same_content_the_sweep_keeps_the_data_its_pointer_names() {
    let server = S3Server::start();
    let store = server.store().await;
    let (data, stream) = body(9 << 20, 20);
    let (id, _) = store.put(stream, None).await.unwrap();
    let files = server.files();
    let ours = files.iter().find(|f| f.contains("/node/data/")).expect("data").clone();
    // What the other server of the race left: its own copy and name, overwritten pointer.
    let theirs = "0123456789abcdef0123456789abcdef";
    std::fs::copy(server.0.root.path().join(&ours), server.object(&format!("data/{theirs}"))).unwrap();
    std::fs::write(server.object(&format!("names/{id}.{theirs}")), b"").unwrap();
    server.sweeper().await;
    let left = server.files();
    assert!(left.contains(&ours), "the data the pointer names stays: {left:?}");
    assert!(!left.iter().any(|f| f.contains(theirs)), "the other copy and its name go: {left:?}");
    assert_eq!(read(&store, &id, None).await, data);
}
