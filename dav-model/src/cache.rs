//! A cache of path lookups for the read path (GET, HEAD, PROPFIND, and the early checks of
//! writes). A write that knows exactly which rows it changed (a PUT: the file and its
//! parent; a PROPPATCH: its target) stores those rows as written, and a MKCOL drops the two
//! it changed; every other write empties the cache, so nothing has to work out which paths
//! a MOVE of a large collection touched.
//!
//! Rows a write stores take only free room: a sync client uploading thousands of new files
//! must not push out the paths being read. A lookup that finds the cache full drops an
//! eighth of it to make room, not all of it.
//!
//! A generation counter, bumped by every invalidation, keeps lookups that raced a write
//! out: a lookup reads the generation before it queries, and its answer is only inserted
//! if no invalidation happened meanwhile. Insertions and invalidations hold the same lock,
//! so an answer computed before a write can never land after that write's invalidation.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::path::DavPath;
use crate::resource::Resource;

/// Entries kept at most.
const CAPACITY: usize = 16_384;

#[derive(Default)]
pub(crate) struct LookupCache {
    generation: AtomicU64,
    entries: Mutex<HashMap<DavPath, Option<Resource>>>,
    /// Caches nothing: on a database that other servers write too (PostgreSQL), no
    /// process sees every write, and a lookup cached here could outlive another node's
    /// MOVE or DELETE.
    off: bool,
}

impl LookupCache {
    /// A cache that keeps nothing (see `off`).
    pub fn off() -> LookupCache {
        LookupCache { off: true, ..LookupCache::default() }
    }

    /// Read this before querying the database, and pass it to [`LookupCache::insert`].
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The cached lookup of `path` (which may be "no such resource").
    pub fn get(&self, path: &DavPath) -> Option<Option<Resource>> {
        if self.off {
            return None;
        }
        self.entries.lock().ok()?.get(path).cloned()
    }

    /// Caches what a lookup that started at `generation` found, unless a write committed
    /// since.
    pub fn insert(&self, path: &DavPath, generation: u64, value: Option<Resource>) {
        let Ok(mut entries) = self.entries.lock() else { return };
        if self.off || generation != self.generation() {
            return;
        }
        if entries.len() >= CAPACITY && !entries.contains_key(path) {
            // Whichever entries the map's order gives first: it is seeded at random.
            let victims: Vec<DavPath> = entries.keys().take(CAPACITY / 8).cloned().collect();
            for victim in victims {
                entries.remove(&victim);
            }
        }
        entries.insert(path.clone(), value);
    }

    /// After a write that changed exactly the rows at `paths` (a MKCOL: the new collection
    /// and its parent): they are dropped, and lookups that raced the write are kept out.
    pub fn forget(&self, paths: &[DavPath]) {
        if let Ok(mut entries) = self.entries.lock() {
            self.generation.fetch_add(1, Ordering::AcqRel);
            for path in paths {
                entries.remove(path);
            }
        }
    }

    /// After a write that may have changed any row.
    pub fn invalidate(&self) {
        if let Ok(mut entries) = self.entries.lock() {
            self.generation.fetch_add(1, Ordering::AcqRel);
            entries.clear();
        }
    }

    /// After a write that produced exactly these rows (the resource now at each path, or
    /// none). Only for a writer that still holds the write connection, which read
    /// `since` once it had it: no later write of this process can have committed, and if
    /// anything else changed the cache meanwhile, the paths are dropped instead.
    pub fn refresh(&self, since: u64, rows: Vec<(DavPath, Option<Resource>)>) {
        if self.off {
            return;
        }
        if let Ok(mut entries) = self.entries.lock() {
            let current = self.generation.fetch_add(1, Ordering::AcqRel);
            if current != since {
                for (path, _) in &rows {
                    entries.remove(path);
                }
                return;
            }
            for (path, row) in rows {
                if entries.len() < CAPACITY || entries.contains_key(&path) {
                    entries.insert(path, row);
                } else {
                    entries.remove(&path);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(s: &str) -> DavPath {
        DavPath::parse(s).unwrap()
    }

    #[test]
    fn a_refresh_keeps_other_paths() {
        let cache = LookupCache::default();
        let g = cache.generation();
        cache.insert(&path("/a"), g, None);
        cache.insert(&path("/b"), g, None);
        cache.refresh(cache.generation(), vec![(path("/a"), None)]);
        assert!(matches!(cache.get(&path("/b")), Some(None)));
    }

    #[test]
    fn a_refresh_stores_the_written_rows_and_keeps_racing_lookups_out() {
        let cache = LookupCache::default();
        let started = cache.generation();
        cache.refresh(started, vec![(path("/a"), None)]);
        cache.insert(&path("/b"), started, None);
        assert!(matches!(cache.get(&path("/a")), Some(None)));
        assert!(cache.get(&path("/b")).is_none());
    }

    #[test]
    fn a_refresh_after_another_change_drops_its_paths_instead() {
        let cache = LookupCache::default();
        let since = cache.generation();
        cache.insert(&path("/a"), since, None);
        cache.invalidate();
        cache.refresh(since, vec![(path("/a"), None)]);
        assert!(cache.get(&path("/a")).is_none());
    }

    #[test]
    fn full_invalidation_empties_the_cache() {
        let cache = LookupCache::default();
        cache.insert(&path("/a"), cache.generation(), None);
        cache.invalidate();
        assert!(cache.get(&path("/a")).is_none());
    }

    #[test]
    fn forgetting_drops_only_the_given_paths_and_keeps_racing_lookups_out() {
        let cache = LookupCache::default();
        let started = cache.generation();
        cache.insert(&path("/a"), started, None);
        cache.insert(&path("/b"), started, None);
        cache.forget(&[path("/a")]);
        cache.insert(&path("/c"), started, None);
        assert!(cache.get(&path("/a")).is_none());
        assert!(matches!(cache.get(&path("/b")), Some(None)), "untouched by the write");
        assert!(cache.get(&path("/c")).is_none(), "its lookup started before the write");
    }

    #[test]
    fn written_rows_take_only_free_room_and_reads_make_room() {
        let cache = LookupCache::default();
        let g = cache.generation();
        let many: Vec<DavPath> = (0..CAPACITY).map(|i| path(&format!("/r{i}"))).collect();
        for p in &many {
            cache.insert(p, g, None);
        }
        cache.refresh(cache.generation(), vec![(path("/new"), None), (many[0].clone(), None)]);
        assert!(cache.get(&path("/new")).is_none(), "no room for a new path written");
        assert!(matches!(cache.get(&many[0]), Some(None)), "a path already there is updated");
        cache.insert(&path("/read"), cache.generation(), None);
        assert!(matches!(cache.get(&path("/read")), Some(None)), "a read makes room");
        let kept = many.iter().filter(|p| cache.get(p).is_some()).count();
        assert!(kept >= CAPACITY - CAPACITY / 8 - 1, "an eighth went, not all: {kept}");
    }
}
