//! Blobs in a hash map, for tests of code above the store. It keeps whole bodies in memory,
//! so it is unsuitable for real uploads.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Mutex, MutexGuard};

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;

use crate::{invalid_input, BlobId, BlobStore, ByteStream, Error, Result, Staged, StagedInner};

#[derive(Debug, Default)]
pub struct MemoryStore {
    blobs: Mutex<HashMap<BlobId, Bytes>>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// A test that panicked while holding the lock must not make every later call fail: the
    /// map is only ever updated by single inserts and removes, so it cannot be half-written.
    fn blobs(&self) -> MutexGuard<'_, HashMap<BlobId, Bytes>> {
        self.blobs.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[async_trait::async_trait]
impl BlobStore for MemoryStore {
    async fn stage(&self, mut body: ByteStream, limit: Option<u64>) -> Result<Staged> {
        let mut buf = BytesMut::new();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(Error::Body)?;
            if let Some(limit) = limit {
                if (buf.len() + chunk.len()) as u64 > limit {
                    return Err(Error::TooLarge(limit));
                }
            }
            buf.extend_from_slice(&chunk);
        }
        let bytes = buf.freeze();
        Ok(Staged {
            id: BlobId(blake3::hash(&bytes).to_hex().to_string()),
            size: bytes.len() as u64,
            inner: StagedInner::Memory(bytes),
        })
    }

    async fn commit(&self, staged: Staged) -> Result<BlobId> {
        let StagedInner::Memory(bytes) = staged.inner else {
            return Err(invalid_input("staged blob does not belong to a memory store"));
        };
        self.blobs().entry(staged.id.clone()).or_insert(bytes);
        Ok(staged.id)
    }

    async fn open(&self, id: &BlobId, range: Option<Range<u64>>) -> Result<ByteStream> {
        let bytes = self.blobs().get(id).cloned().ok_or_else(|| Error::NotFound(id.clone()))?;
        let bytes = match range {
            None => bytes,
            Some(r) if r.start > r.end => {
                return Err(invalid_input(format!("byte range {}..{} is reversed", r.start, r.end)))
            }
            Some(r) => {
                let len = bytes.len() as u64;
                let (start, end) = (r.start.min(len), r.end.min(len));
                // Both bounds are clamped to the length, which is a usize.
                bytes.slice(start as usize..end as usize)
            }
        };
        Ok(Box::pin(futures_util::stream::iter([Ok(bytes)])))
    }

    async fn delete(&self, id: &BlobId) -> Result<u64> {
        Ok(self.blobs().remove(id).map_or(0, |b| b.len() as u64))
    }

    async fn list(&self) -> Result<Vec<BlobId>> {
        let mut ids: Vec<BlobId> = self.blobs().keys().cloned().collect();
        ids.sort();
        Ok(ids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(chunks: &[&[u8]]) -> ByteStream {
        let items: Vec<std::io::Result<Bytes>> = chunks.iter().map(|c| Ok(Bytes::copy_from_slice(c))).collect();
        Box::pin(futures_util::stream::iter(items))
    }

    async fn read_all(store: &MemoryStore, id: &BlobId, range: Option<Range<u64>>) -> Vec<u8> {
        let mut stream = store.open(id, range).await.unwrap();
        let mut out = Vec::new();
        while let Some(chunk) = stream.next().await {
            out.extend_from_slice(&chunk.unwrap());
        }
        out
    }

    #[tokio::test]
    async fn id_is_blake3_of_content() {
        let store = MemoryStore::new();
        let (id, size) = store.put(body(&[b"hello ", b"world"]), None).await.unwrap();
        assert_eq!(id.as_str(), blake3::hash(b"hello world").to_hex().as_str());
        assert_eq!(size, 11);
        assert_eq!(read_all(&store, &id, None).await, b"hello world");
    }

    #[tokio::test]
    async fn identical_content_is_stored_once() {
        let store = MemoryStore::new();
        let (a, _) = store.put(body(&[b"same"]), None).await.unwrap();
        let (b, _) = store.put(body(&[b"sa", b"me"]), None).await.unwrap();
        assert_eq!(a, b);
        assert_eq!(store.list().await.unwrap(), vec![a]);
    }

    #[tokio::test]
    async fn staged_blob_is_invisible_until_committed() {
        let store = MemoryStore::new();
        let staged = store.stage(body(&[b"pending"]), None).await.unwrap();
        let id = staged.id.clone();
        assert!(matches!(store.open(&id, None).await, Err(Error::NotFound(_))));
        drop(staged);
        assert!(store.list().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn limit_exceeded_is_refused() {
        let store = MemoryStore::new();
        let err = store.stage(body(&[b"12345", b"6"]), Some(5)).await;
        assert!(matches!(err, Err(Error::TooLarge(5))));
        let ok = store.stage(body(&[b"12345"]), Some(5)).await.unwrap();
        assert_eq!(ok.size, 5);
    }

    #[tokio::test]
    async fn stream_error_is_reported_as_io() {
        let store = MemoryStore::new();
        let items =
            vec![Ok(Bytes::from_static(b"partial")), Err(std::io::Error::from(std::io::ErrorKind::ConnectionReset))];
        let err = store.stage(Box::pin(futures_util::stream::iter(items)), None).await;
        assert!(matches!(err, Err(Error::Body(_))));
        assert!(store.list().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn range_reads_only_that_range() {
        let store = MemoryStore::new();
        let (id, _) = store.put(body(&[b"0123456789"]), None).await.unwrap();
        assert_eq!(read_all(&store, &id, Some(2..5)).await, b"234");
        assert_eq!(read_all(&store, &id, Some(8..100)).await, b"89");
        assert!(read_all(&store, &id, Some(20..30)).await.is_empty());
        assert!(matches!(store.open(&id, Some(Range { start: 5, end: 2 })).await, Err(Error::Io(_))));
    }

    #[tokio::test]
    async fn delete_removes_and_tolerates_missing() {
        let store = MemoryStore::new();
        let (id, _) = store.put(body(&[b"gone soon"]), None).await.unwrap();
        assert_eq!(store.delete(&id).await.unwrap(), 9);
        assert!(matches!(store.open(&id, None).await, Err(Error::NotFound(_))));
        assert_eq!(store.delete(&id).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn list_returns_committed_ids() {
        let store = MemoryStore::new();
        let (a, _) = store.put(body(&[b"a"]), None).await.unwrap();
        let (b, _) = store.put(body(&[b"b"]), None).await.unwrap();
        let mut expected = vec![a, b];
        expected.sort();
        assert_eq!(store.list().await.unwrap(), expected);
    }
}
