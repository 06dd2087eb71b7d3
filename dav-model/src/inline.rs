//! Small contents: kept inline in the database, and cached in memory for reads.
//!
//! A small PUT stored as a file of the blob store costs a file create, a write and a
//! rename besides its transaction, and a read of it a trip to the blocking pool. Most
//! files a sync client moves are small, so blobs up to [`Config::inline_max`] that
//! arrive whole go into the `data` column of their `blobs` row instead, written by the
//! same transaction that points a resource at them. They keep everything a blob file
//! has: the BLAKE3 id (so identical bodies are stored once, inline or not), the
//! reference count kept by triggers, garbage collection, streaming reads.
//!
//! Inline blobs need no garbage-collection guard: the row that holds the bytes and the
//! row that references them commit together. Releasing the last reference leaves the
//! row at refcount 0; the writes that can release one delete such rows in their own
//! transaction ([`push_drop_garbage`]), and the collector takes any left over.
//!
//! [`ContentCache`] keeps recently written or read small contents in memory, keyed by
//! their id: content addressing means an entry can never be stale, so no write has to
//! invalidate it.
//!
//! [`Config::inline_max`]: crate::Config::inline_max

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use bytes::Bytes;
use wharf_backends::{BlobId, ByteStream};

use crate::resource::Tag;
use crate::txn::Batch;

/// Default of [`crate::Config::inline_max`]: a 4 KiB file is one database page of data.
pub const DEFAULT_INLINE_MAX: u64 = 16 * 1024;

/// Largest allowed [`crate::Config::inline_max`]: inline bytes are written twice (to the
/// write-ahead log, then to the database at a checkpoint), which only pays for small ones.
pub const INLINE_CAP: u64 = 512 * 1024;

/// Default of [`crate::Config::content_cache_bytes`].
pub const DEFAULT_CACHE_BYTES: u64 = 64 << 20;

/// Contents larger than this are never cached: a few large files would push out
/// thousands of small ones.
const CACHE_ENTRY_MAX: usize = 256 * 1024;

/// A body read as far as deciding where it goes.
pub(crate) enum Gathered {
    /// The whole body, at most the inline size and not empty.
    Whole(Bytes),
    /// A larger (or empty) body, for the blob store: what was read, then the rest.
    Stream(ByteStream),
}

/// Reads `body` until it ends or proves longer than `max`. Chunks are awaited as they
/// come, so a small body sent in pieces is kept inline as well. `limit` is the largest
/// upload accepted.
pub(crate) async fn gather(mut body: ByteStream, max: u64, limit: Option<u64>) -> crate::Result<Gathered> {
    use futures_util::StreamExt;
    if max == 0 {
        return Ok(Gathered::Stream(body));
    }
    let mut read: Vec<Bytes> = Vec::new();
    let mut len = 0u64;
    while len <= max {
        match body.next().await {
            Some(chunk) => {
                let chunk = chunk.map_err(wharf_backends::Error::Body)?;
                len += chunk.len() as u64;
                read.push(chunk);
            }
            None if len == 0 => return Ok(Gathered::Stream(Box::pin(futures_util::stream::empty()))),
            None => {
                if let Some(limit) = limit.filter(|&l| len > l) {
                    return Err(crate::Error::TooLarge(limit));
                }
                let whole = if read.len() == 1 { read.remove(0) } else { read.concat().into() };
                return Ok(Gathered::Whole(whole));
            }
        }
    }
    let head = futures_util::stream::iter(read.into_iter().map(Ok));
    Ok(Gathered::Stream(Box::pin(head.chain(body))))
}

/// The content id of `data`, as the blob store would name it.
pub(crate) fn id_of(data: &[u8]) -> BlobId {
    BlobId(blake3::hash(data).to_hex().to_string())
}

/// Adds to `batch` the storing of `data` as the inline content of blob `id`, at refcount
/// 0: the statement that then points a resource at it counts the reference.
///
/// An existing row keeps its bytes where they are, except a file blob already released
/// (refcount 0, perhaps being deleted by the collector right now): that one takes the
/// bytes inline, so the reference about to be added never depends on a file the collector
/// may already have removed.
pub(crate) fn push_store(batch: &mut Batch, id: &BlobId, data: &Bytes) {
    batch.push(
        "INSERT INTO blobs (id, refcount, data) VALUES (?, 0, ?) \
         ON CONFLICT (id) DO UPDATE SET data = excluded.data WHERE blobs.refcount <= 0 AND blobs.data IS NULL",
    );
    batch.bind(id.as_str().to_owned()).bind(data.clone());
}

/// Adds to `batch` a row tagged [`Tag::Released`] with the number and bytes of released
/// inline blobs and a row tagged [`Tag::Garbage`] saying whether released blob files wait
/// for the collector (read in one statement, before the deletion, since it leaves those),
/// then the deletion of the released inline blobs. No `RETURNING`: SQLite makes a
/// temporary database for each statement that has one.
/// `only`: when the committer may skip both (see [`crate::txn::Only`]).
pub(crate) fn push_drop_garbage(batch: &mut Batch, only: Option<crate::txn::Only>) {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let found = SQL.get_or_init(|| {
        let (released, garbage) = (Tag::Released as i64, Tag::Garbage as i64);
        // An integer rather than EXISTS's boolean: PostgreSQL's UNION wants one type.
        format!(
            "SELECT {released}, COUNT(*), COALESCE(SUM(length(data)), 0) FROM blobs \
             WHERE refcount <= 0 AND data IS NOT NULL \
             UNION ALL SELECT {garbage}, \
               CASE WHEN EXISTS (SELECT 1 FROM blobs WHERE refcount <= 0 AND data IS NULL) THEN 1 ELSE 0 END, 0"
        )
    });
    batch.push(found);
    if let Some(only) = only {
        batch.only(only);
    }
    batch.push("DELETE FROM blobs WHERE refcount <= 0 AND data IS NOT NULL");
    if let Some(only) = only {
        batch.only(only);
    }
}

/// What the statements of [`push_drop_garbage`] found.
pub(crate) struct Dropped {
    pub blobs: u64,
    pub bytes: u64,
    /// Released blob files wait for the collector.
    pub files_left: bool,
}

pub(crate) fn dropped(rows: &[crate::db::Row]) -> Dropped {
    let mut out = Dropped { blobs: 0, bytes: 0, files_left: false };
    let count = |row: &crate::db::Row, i: usize| row.try_get::<i64>(i).unwrap_or(0).max(0) as u64;
    for row in rows {
        match Tag::of(row) {
            Some(Tag::Released) => (out.blobs, out.bytes) = (count(row, 1), count(row, 2)),
            Some(Tag::Garbage) => out.files_left = row.try_get::<i64>(1).unwrap_or(1) != 0,
            _ => {}
        }
    }
    out
}

/// Recently used small contents by id, up to a total size. Eviction is the CLOCK
/// approximation of least-recently-used: the oldest entry goes first unless it was read
/// since it last came round, in which case it gets another round. A content just written
/// only takes room that is free ([`ContentCache::offer`]): a sync client uploading
/// thousands of new files would otherwise push out the files being read (the small-file
/// benchmark's GET rate halved after each round of uploads).
pub(crate) struct ContentCache {
    budget: usize,
    state: Mutex<Entries>,
}

#[derive(Default)]
struct Entries {
    /// Each content, and whether it was read since it last came round.
    map: HashMap<BlobId, (Bytes, bool), foldhash::quality::RandomState>,
    order: VecDeque<BlobId>,
    bytes: usize,
}

impl ContentCache {
    pub fn new(budget: u64) -> ContentCache {
        ContentCache { budget: usize::try_from(budget).unwrap_or(usize::MAX), state: Mutex::default() }
    }

    pub fn get(&self, id: &BlobId) -> Option<Bytes> {
        let mut s = self.state.lock().ok()?;
        let (data, read) = s.map.get_mut(id)?;
        *read = true;
        Some(data.clone())
    }

    /// A content just read: kept, pushing out what was least recently used if need be.
    pub fn insert(&self, id: &BlobId, data: &Bytes) {
        self.add(id, data, true);
    }

    /// A content just written: kept only if it fits in the room left.
    pub fn offer(&self, id: &BlobId, data: &Bytes) {
        self.add(id, data, false);
    }

    fn add(&self, id: &BlobId, data: &Bytes, evict: bool) {
        if data.len() > CACHE_ENTRY_MAX || data.len() > self.budget {
            return;
        }
        let Ok(mut s) = self.state.lock() else { return };
        if s.map.contains_key(id) || (!evict && s.bytes + data.len() > self.budget) {
            return;
        }
        while s.bytes + data.len() > self.budget {
            let Some(old) = s.order.pop_front() else { break };
            match s.map.get_mut(&old) {
                Some((_, read)) if *read => {
                    *read = false;
                    s.order.push_back(old);
                }
                Some(_) => {
                    if let Some((gone, _)) = s.map.remove(&old) {
                        s.bytes -= gone.len();
                    }
                }
                None => {}
            }
        }
        s.bytes += data.len();
        s.order.push_back(id.clone());
        s.map.insert(id.clone(), (data.clone(), false));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> BlobId {
        BlobId(format!("{n:02x}").repeat(32))
    }

    #[test]
    fn the_cache_drops_its_oldest_entries_to_stay_within_its_budget() {
        let cache = ContentCache::new(10);
        cache.insert(&id(1), &Bytes::from_static(b"aaaa"));
        cache.insert(&id(2), &Bytes::from_static(b"bbbb"));
        cache.insert(&id(3), &Bytes::from_static(b"cccc"));
        assert!(cache.get(&id(1)).is_none());
        assert_eq!(cache.get(&id(2)).as_deref(), Some(&b"bbbb"[..]));
        assert_eq!(cache.get(&id(3)).as_deref(), Some(&b"cccc"[..]));
    }

    #[test]
    fn an_entry_read_since_it_came_round_outlives_newer_unread_ones() {
        let cache = ContentCache::new(10);
        cache.insert(&id(1), &Bytes::from_static(b"aaaa"));
        cache.insert(&id(2), &Bytes::from_static(b"bbbb"));
        assert!(cache.get(&id(1)).is_some());
        cache.insert(&id(3), &Bytes::from_static(b"cccc"));
        assert!(cache.get(&id(1)).is_some(), "read, so kept");
        assert!(cache.get(&id(2)).is_none(), "unread, so evicted");
    }

    #[test]
    fn a_written_content_takes_only_free_room() {
        let cache = ContentCache::new(10);
        cache.offer(&id(1), &Bytes::from_static(b"aaaa"));
        cache.insert(&id(2), &Bytes::from_static(b"bbbb"));
        cache.offer(&id(3), &Bytes::from_static(b"cccc"));
        assert!(cache.get(&id(1)).is_some(), "there was room for it");
        assert!(cache.get(&id(2)).is_some(), "not pushed out by a write");
        assert!(cache.get(&id(3)).is_none(), "no room left");
    }

    #[test]
    fn a_cache_without_budget_keeps_nothing() {
        let cache = ContentCache::new(0);
        cache.insert(&id(1), &Bytes::from_static(b"a"));
        assert!(cache.get(&id(1)).is_none());
    }
}
