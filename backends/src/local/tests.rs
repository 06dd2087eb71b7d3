//! Behaviour of the local store, checked against what actually lands on disk.

use super::*;
use bytes::Bytes;
use futures_util::StreamExt;

fn body(chunks: Vec<Vec<u8>>) -> ByteStream {
    let items: Vec<io::Result<Bytes>> = chunks.into_iter().map(|c| Ok(Bytes::from(c))).collect();
    Box::pin(futures_util::stream::iter(items))
}

fn one(data: &[u8]) -> ByteStream {
    body(vec![data.to_vec()])
}

/// Deterministic, non-repeating enough that misplaced chunks would be noticed.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + i / 251) as u8).collect()
}

/// Splits into odd-sized chunks so that chunk and buffer boundaries never line up.
fn odd_chunks(data: &[u8]) -> Vec<Vec<u8>> {
    data.chunks(65_521).map(<[u8]>::to_vec).collect()
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files_in(&path));
        } else {
            out.push(path);
        }
    }
    out
}

async fn read_all(store: &LocalStore, id: &BlobId, range: Option<Range<u64>>) -> Vec<u8> {
    let mut stream = store.open(id, range).await.unwrap();
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk.unwrap());
    }
    out
}

async fn fresh(durability: Durability) -> (tempfile::TempDir, LocalStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path(), durability).await.unwrap();
    (dir, store)
}

#[tokio::test]
async fn open_creates_layout() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("nested/store");
    LocalStore::open(&root, Durability::Process).await.unwrap();
    assert!(root.join("blobs").is_dir());
    assert!(root.join("tmp").is_dir());
    let fan_out = std::fs::read_dir(root.join("blobs")).unwrap().filter(|e| e.as_ref().unwrap().path().is_dir());
    assert_eq!(fan_out.count(), 256);
    assert!(root.join("blobs/00").is_dir() && root.join("blobs/ff").is_dir());
}

#[tokio::test]
async fn committed_blob_lands_in_fan_out_path() {
    let (dir, store) = fresh(Durability::Process).await;
    let (id, size) = store.put(one(b"hello world"), None).await.unwrap();
    assert_eq!(id.as_str(), blake3::hash(b"hello world").to_hex().as_str());
    assert_eq!(size, 11);
    let s = id.as_str();
    let path = dir.path().join("blobs").join(&s[..2]).join(s);
    assert_eq!(std::fs::read(path).unwrap(), b"hello world");
    assert_eq!(files_in(&dir.path().join("blobs")).len(), 1);
    assert!(files_in(&dir.path().join("tmp")).is_empty());
}

#[tokio::test]
async fn large_body_round_trips_byte_for_byte() {
    let (dir, store) = fresh(Durability::Process).await;
    let data = pattern(3 * WRITE_BUF + 12_345);
    let (id, size) = store.put(body(odd_chunks(&data)), None).await.unwrap();
    assert_eq!(size, data.len() as u64);
    assert_eq!(id.as_str(), blake3::hash(&data).to_hex().as_str());
    assert_eq!(read_all(&store, &id, None).await, data);
    assert_eq!(files_in(&dir.path().join("blobs")).len(), 1);
}

#[tokio::test]
async fn bodies_around_the_buffer_size_round_trip() {
    let (dir, store) = fresh(Durability::Process).await;
    for len in [1, 65_521, 65_522, WRITE_BUF - 1, WRITE_BUF, WRITE_BUF + 1, 2 * WRITE_BUF] {
        let data = pattern(len);
        let (id, size) = store.put(body(odd_chunks(&data)), None).await.unwrap();
        assert_eq!(size, len as u64);
        assert_eq!(id.as_str(), blake3::hash(&data).to_hex().as_str(), "{len} bytes");
        assert_eq!(read_all(&store, &id, None).await, data, "{len} bytes");
    }
    assert!(files_in(&dir.path().join("tmp")).is_empty());
}

#[tokio::test]
async fn single_chunk_larger_than_buffer_is_split_correctly() {
    let (_dir, store) = fresh(Durability::Process).await;
    let data = pattern(2 * WRITE_BUF + 7);
    let (id, _) = store.put(one(&data), None).await.unwrap();
    assert_eq!(read_all(&store, &id, None).await, data);
}

#[tokio::test]
async fn empty_body_is_a_valid_blob() {
    let (_dir, store) = fresh(Durability::Process).await;
    let (id, size) = store.put(body(Vec::new()), None).await.unwrap();
    assert_eq!(size, 0);
    assert_eq!(id.as_str(), blake3::hash(b"").to_hex().as_str());
    assert!(read_all(&store, &id, None).await.is_empty());
}

#[tokio::test]
async fn full_durability_round_trips() {
    let (dir, store) = fresh(Durability::Full).await;
    for len in [10, WRITE_BUF + 1] {
        let data = pattern(len);
        let (id, _) = store.put(body(odd_chunks(&data)), None).await.unwrap();
        assert_eq!(read_all(&store, &id, None).await, data);
    }
    assert!(files_in(&dir.path().join("tmp")).is_empty());
    assert_eq!(files_in(&dir.path().join("blobs")).len(), 2);
}

#[tokio::test]
async fn identical_content_is_stored_once() {
    let (dir, store) = fresh(Durability::Process).await;
    let (a, _) = store.put(one(b"same bytes"), None).await.unwrap();
    let (b, _) = store.put(body(vec![b"same ".to_vec(), b"bytes".to_vec()]), None).await.unwrap();
    assert_eq!(a, b);
    assert_eq!(files_in(&dir.path().join("blobs")).len(), 1);
    assert!(files_in(&dir.path().join("tmp")).is_empty());
}

#[tokio::test]
async fn concurrent_commits_of_same_content_agree() {
    for len in [WRITE_BUF / 2, WRITE_BUF + 3] {
        concurrent_commits_of(pattern(len)).await;
    }
}

async fn concurrent_commits_of(data: Vec<u8>) {
    let (dir, store) = fresh(Durability::Process).await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = store.clone();
        let data = data.clone();
        tasks.push(tokio::spawn(async move { store.put(one(&data), None).await.unwrap().0 }));
    }
    let mut ids = Vec::new();
    for task in tasks {
        ids.push(task.await.unwrap());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1);
    assert_eq!(read_all(&store, &ids[0], None).await, data);
    assert_eq!(files_in(&dir.path().join("blobs")).len(), 1);
    assert!(files_in(&dir.path().join("tmp")).is_empty());
}

#[tokio::test]
async fn staged_blob_is_invisible_until_committed() {
    let (dir, store) = fresh(Durability::Process).await;
    // A small body waits in memory, a large one in a temp file.
    for (data, temp_files) in [(b"pending".to_vec(), 0), (pattern(WRITE_BUF + 5), 1)] {
        let staged = store.stage(one(&data), None).await.unwrap();
        assert_eq!(files_in(&dir.path().join("tmp")).len(), temp_files);
        assert!(matches!(store.open(&staged.id, None).await, Err(Error::NotFound(_))));
        let id = store.commit(staged).await.unwrap();
        assert_eq!(read_all(&store, &id, None).await, data);
        assert!(files_in(&dir.path().join("tmp")).is_empty());
    }
}

#[tokio::test]
async fn dropping_staged_blob_leaves_no_file() {
    let (dir, store) = fresh(Durability::Process).await;
    let small = store.stage(one(b"abandoned"), None).await.unwrap();
    let large = store.stage(one(&pattern(WRITE_BUF + 5)), None).await.unwrap();
    assert_eq!(files_in(&dir.path().join("tmp")).len(), 1);
    drop((small, large));
    assert!(files_in(&dir.path().join("tmp")).is_empty());
    assert!(files_in(&dir.path().join("blobs")).is_empty());
}

/// A body fed by hand, to make the store wait for the network.
fn channel() -> (tokio::sync::mpsc::Sender<io::Result<Bytes>>, ByteStream) {
    let (tx, mut rx) = tokio::sync::mpsc::channel(4);
    (tx, Box::pin(futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))))
}

/// Stages, on a task of its own, a body the test feeds piece by piece through the sender.
fn stage_fed(
    store: &LocalStore,
) -> (tokio::sync::mpsc::Sender<io::Result<Bytes>>, tokio::task::JoinHandle<Result<Staged>>) {
    let (tx, stream) = channel();
    let store = store.clone();
    (tx, tokio::spawn(async move { store.stage(stream, None).await }))
}

async fn eventually(mut cond: impl FnMut() -> bool) {
    for _ in 0..500 {
        if cond() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("condition never met");
}

#[tokio::test]
async fn a_body_that_keeps_us_waiting_gets_its_temp_file_meanwhile() {
    let (dir, store) = fresh(Durability::Process).await;
    let tmp = dir.path().join("tmp");
    let (tx, staging) = stage_fed(&store);
    let data = pattern(2 * WRITE_BUF + 10);
    let (first, rest) = data.split_at(100);
    tx.send(Ok(Bytes::copy_from_slice(first))).await.unwrap();
    eventually(|| files_in(&tmp).len() == 1).await;
    // Past the first buffer, and waiting again: still the one temp file.
    let (second, third) = rest.split_at(WRITE_BUF);
    tx.send(Ok(Bytes::copy_from_slice(second))).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert_eq!(files_in(&tmp).len(), 1);
    tx.send(Ok(Bytes::copy_from_slice(third))).await.unwrap();
    drop(tx);
    let staged = staging.await.unwrap().unwrap();
    let id = store.commit(staged).await.unwrap();
    assert_eq!(read_all(&store, &id, None).await, data);
    assert!(files_in(&tmp).is_empty());
}

#[tokio::test]
async fn a_body_cut_while_we_wait_leaves_nothing() {
    let (dir, store) = fresh(Durability::Process).await;
    let tmp = dir.path().join("tmp");
    let (tx, staging) = stage_fed(&store);
    tx.send(Ok(Bytes::from_static(b"never finished"))).await.unwrap();
    eventually(|| files_in(&tmp).len() == 1).await;
    tx.send(Err(io::Error::from(io::ErrorKind::ConnectionReset))).await.unwrap();
    assert!(matches!(staging.await.unwrap(), Err(Error::Body(_))));
    assert!(files_in(&tmp).is_empty());
    assert!(files_in(&dir.path().join("blobs")).is_empty());
}

#[tokio::test]
async fn a_missing_fan_out_directory_is_made_again() {
    let (dir, store) = fresh(Durability::Full).await;
    let staged = store.stage(one(b"homeless"), None).await.unwrap();
    std::fs::remove_dir(dir.path().join("blobs").join(fan_out(&staged.id))).unwrap();
    let id = store.commit(staged).await.unwrap();
    assert_eq!(read_all(&store, &id, None).await, b"homeless");
}

#[tokio::test]
async fn stream_error_leaves_no_temp_file() {
    let (dir, store) = fresh(Durability::Process).await;
    // Enough data first that a buffer is already being written when the error arrives.
    let mut items: Vec<io::Result<Bytes>> =
        odd_chunks(&pattern(2 * WRITE_BUF + 99)).into_iter().map(|c| Ok(Bytes::from(c))).collect();
    items.push(Err(io::Error::from(io::ErrorKind::ConnectionReset)));
    let result = store.stage(Box::pin(futures_util::stream::iter(items)), None).await;
    match result {
        Err(Error::Body(e)) => assert_eq!(e.kind(), io::ErrorKind::ConnectionReset),
        other => panic!("expected an I/O error, got {:?}", other.map(|s| s.size)),
    }
    assert!(files_in(&dir.path().join("tmp")).is_empty());
    assert!(files_in(&dir.path().join("blobs")).is_empty());
}

#[tokio::test]
async fn limit_exceeded_is_refused() {
    let (dir, store) = fresh(Durability::Process).await;
    let data = pattern(WRITE_BUF + 10);
    let limit = WRITE_BUF as u64 + 9;
    let result = store.stage(body(odd_chunks(&data)), Some(limit)).await;
    assert!(matches!(result, Err(Error::TooLarge(l)) if l == limit));
    assert!(files_in(&dir.path().join("tmp")).is_empty());
    assert!(files_in(&dir.path().join("blobs")).is_empty());
}

#[tokio::test]
async fn body_exactly_at_limit_is_accepted() {
    let (_dir, store) = fresh(Durability::Process).await;
    let staged = store.stage(one(b"12345"), Some(5)).await.unwrap();
    assert_eq!(staged.size, 5);
}

#[tokio::test]
async fn range_reads_only_that_range() {
    let (_dir, store) = fresh(Durability::Process).await;
    let data = pattern(SMALL_READ * 3 + 500);
    let (id, _) = store.put(one(&data), None).await.unwrap();
    let (start, end) = (SMALL_READ as u64 - 10, 2 * SMALL_READ as u64 + 20);
    assert_eq!(read_all(&store, &id, Some(start..end)).await, &data[start as usize..end as usize]);
    assert!(read_all(&store, &id, Some(7..7)).await.is_empty());
    let len = data.len() as u64;
    assert_eq!(read_all(&store, &id, Some(len - 3..len + 100)).await, &data[data.len() - 3..]);
    assert!(read_all(&store, &id, Some(len + 1..len + 2)).await.is_empty());
    assert!(matches!(store.open(&id, Some(Range { start: 5, end: 2 })).await, Err(Error::Io(_))));
}

#[tokio::test]
async fn a_large_read_is_a_span_of_the_blob_file() {
    let (_dir, store) = fresh(Durability::Process).await;
    let data = pattern(SMALL_READ * 3);
    let (id, _) = store.put(one(&data), None).await.unwrap();
    let stream = store.open(&id, Some(10..SMALL_READ as u64 * 2)).await.unwrap();
    let span = crate::file_span(&stream).unwrap();
    assert_eq!((span.offset, span.len), (10, SMALL_READ as u64 * 2 - 10));
    assert_eq!(crate::span::read_at(&span.file, span.offset, 5).unwrap(), &data[10..15]);
}

#[tokio::test]
async fn a_small_blob_comes_in_one_chunk() {
    let (_dir, store) = fresh(Durability::Process).await;
    let data = pattern(SMALL_READ);
    let (id, _) = store.put(one(&data), None).await.unwrap();
    let chunks: Vec<_> = store.open(&id, None).await.unwrap().collect().await;
    assert_eq!(chunks.len(), 1);
    assert_eq!(chunks[0].as_ref().unwrap().len(), SMALL_READ);
}

#[tokio::test]
async fn missing_blob_is_not_found() {
    let (_dir, store) = fresh(Durability::Process).await;
    let id = BlobId("ab".repeat(32));
    assert!(matches!(store.open(&id, None).await, Err(Error::NotFound(i)) if i == id));
}

#[tokio::test]
async fn delete_removes_file_and_tolerates_missing() {
    let (dir, store) = fresh(Durability::Process).await;
    let (id, _) = store.put(one(b"gone soon"), None).await.unwrap();
    assert_eq!(store.delete(&id).await.unwrap(), 9, "the bytes freed");
    assert!(files_in(&dir.path().join("blobs")).is_empty());
    assert!(matches!(store.open(&id, None).await, Err(Error::NotFound(_))));
    assert_eq!(store.delete(&id).await.unwrap(), 0);
}

#[tokio::test]
async fn the_probe_leaves_nothing_and_fails_when_uploads_could_not_be_staged() {
    let (dir, store) = fresh(Durability::Process).await;
    store.probe().await.unwrap();
    assert!(files_in(&dir.path().join("tmp")).is_empty());
    // A file where `tmp/` should be: no upload could be staged (root ignores permissions).
    std::fs::remove_dir_all(dir.path().join("tmp")).unwrap();
    std::fs::write(dir.path().join("tmp"), b"").unwrap();
    assert!(store.probe().await.is_err());
}

#[tokio::test]
async fn list_returns_committed_ids() {
    let (dir, store) = fresh(Durability::Process).await;
    let (a, _) = store.put(one(b"first"), None).await.unwrap();
    let (b, _) = store.put(one(b"second"), None).await.unwrap();
    let staged = store.stage(one(b"not committed"), None).await.unwrap();
    // Strays a sweep must never treat as blobs.
    let blobs = dir.path().join("blobs");
    std::fs::write(blobs.join("README"), b"x").unwrap();
    let wrong = if fan_out(&a) == "00" { "01" } else { "00" };
    std::fs::write(blobs.join(wrong).join(a.as_str()), b"x").unwrap();
    std::fs::write(blobs.join(wrong).join("not-an-id"), b"x").unwrap();
    // The pre-release two-level layout is not read either.
    let old = BlobId(blake3::hash(b"old layout").to_hex().to_string());
    let old_dir = blobs.join(fan_out(&old)).join(&old.as_str()[2..4]);
    std::fs::create_dir_all(&old_dir).unwrap();
    std::fs::write(old_dir.join(old.as_str()), b"old layout").unwrap();

    let mut expected = vec![a, b];
    expected.sort();
    assert_eq!(store.list().await.unwrap(), expected);
    drop(staged);
}

#[tokio::test]
async fn open_cleans_leftover_temp_files() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path(), Durability::Process).await.unwrap();
    let (id, _) = store.put(one(b"kept"), None).await.unwrap();
    let staged = store.stage(one(&pattern(WRITE_BUF + 5)), None).await.unwrap();
    // Simulate a crash: the guard never runs.
    std::mem::forget(staged);
    std::fs::write(dir.path().join("tmp").join("stray.tmp"), b"x").unwrap();
    assert_eq!(files_in(&dir.path().join("tmp")).len(), 2);

    let reopened = LocalStore::open(dir.path(), Durability::Process).await.unwrap();
    assert!(files_in(&dir.path().join("tmp")).is_empty());
    assert_eq!(read_all(&reopened, &id, None).await, b"kept");
}

#[tokio::test]
async fn commit_rejects_memory_staged_blob() {
    let (_dir, store) = fresh(Durability::Process).await;
    let staged = crate::MemoryStore::new().stage(one(b"elsewhere"), None).await.unwrap();
    assert!(matches!(store.commit(staged).await, Err(Error::Io(_))));
}
