//! A cache of path lookups for the read path (GET, HEAD, PROPFIND, and the early checks of
//! writes). A write that knows exactly which rows it changed (a PUT: the file and its
//! parent; a PROPPATCH: its target) stores those rows as written, and a MKCOL drops the two
//! it changed; every other write empties the cache, so nothing has to work out which paths
//! a MOVE of a large collection touched.
//!
//! Rows a write stores take only free room: a sync client uploading thousands of new files
//! must not push out the paths being read. A lookup that finds the cache full makes room
//! by the CLOCK policy: a hand sweeps the entries, sparing (once) each one read since it
//! last passed, and evicts the first one that was not. Paths being read stay; the
//! negative lookups of new uploads, never read again, go first. (Evicting an arbitrary
//! eighth of the map instead made a GET of 10,000 files, after 12,000 uploads had looked
//! up their new paths, run at three quarters of its rate on a warm cache.)
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
    entries: Mutex<Entries>,
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
        self.entries.lock().ok()?.read(path)
    }

    /// Caches what a lookup that started at `generation` found, unless a write committed
    /// since.
    pub fn insert(&self, path: &DavPath, generation: u64, value: Option<Resource>) {
        let Ok(mut entries) = self.entries.lock() else { return };
        if self.off || generation != self.generation() {
            return;
        }
        entries.put(path, value, Room::Make);
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
                entries.put(&path, row, Room::TakeFree);
            }
        }
    }
}

/// Whether storing an entry may evict another.
#[derive(PartialEq)]
enum Room {
    Make,
    TakeFree,
}

/// The entries, in slots the CLOCK hand sweeps, and where each path's slot is.
#[derive(Default)]
struct Entries {
    slots: Vec<Slot>,
    index: HashMap<DavPath, usize, foldhash::quality::RandomState>,
    hand: usize,
}

struct Slot {
    path: DavPath,
    value: Option<Resource>,
    /// Read since the hand last passed.
    read: bool,
}

impl Entries {
    fn read(&mut self, path: &DavPath) -> Option<Option<Resource>> {
        let slot = &mut self.slots[*self.index.get(path)?];
        slot.read = true;
        Some(slot.value.clone())
    }

    fn put(&mut self, path: &DavPath, value: Option<Resource>, room: Room) {
        if let Some(&i) = self.index.get(path) {
            self.slots[i].value = value;
            return;
        }
        let slot = Slot { path: path.clone(), value, read: false };
        if self.slots.len() < CAPACITY {
            self.index.insert(path.clone(), self.slots.len());
            self.slots.push(slot);
        } else if room == Room::Make {
            let i = self.victim();
            self.index.remove(&self.slots[i].path);
            self.index.insert(path.clone(), i);
            self.slots[i] = slot;
        }
    }

    /// The slot to reuse: the first the hand finds unread since its last pass, clearing
    /// the marks it passes (so within two turns at most).
    fn victim(&mut self) -> usize {
        loop {
            let i = self.hand;
            self.hand = (i + 1) % self.slots.len();
            if !std::mem::take(&mut self.slots[i].read) {
                return i;
            }
        }
    }

    fn remove(&mut self, path: &DavPath) {
        let Some(i) = self.index.remove(path) else { return };
        self.slots.swap_remove(i);
        if let Some(moved) = self.slots.get(i) {
            if let Some(at) = self.index.get_mut(&moved.path) {
                *at = i;
            }
        }
        if self.hand >= self.slots.len() {
            self.hand = 0;
        }
    }

    fn clear(&mut self) {
        self.slots.clear();
        self.index.clear();
        self.hand = 0;
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
        assert_eq!(kept, CAPACITY - 1, "one entry made room");
    }

    #[test]
    fn entries_being_read_outlive_lookups_never_read_again() {
        let cache = LookupCache::default();
        let hot: Vec<DavPath> = (0..CAPACITY / 2).map(|i| path(&format!("/hot{i}"))).collect();
        for p in &hot {
            cache.insert(p, cache.generation(), None);
            cache.get(p);
        }
        // Uploads look up three times the cache's size of new paths, each once.
        for i in 0..3 * CAPACITY {
            cache.insert(&path(&format!("/new{i}")), cache.generation(), None);
            if i % 64 == 0 {
                // The hot paths are still being read meanwhile.
                for p in hot.iter().skip(i / 64 % 8).step_by(8) {
                    cache.get(p);
                }
            }
        }
        let kept = hot.iter().filter(|p| cache.get(p).is_some()).count();
        assert!(kept > hot.len() * 9 / 10, "only {kept} of {} read paths kept", hot.len());
    }

    #[test]
    fn removing_an_entry_keeps_the_others_findable() {
        let cache = LookupCache::default();
        let g = cache.generation();
        for name in ["/a", "/b", "/c"] {
            cache.insert(&path(name), g, None);
        }
        cache.forget(&[path("/a")]);
        assert!(cache.get(&path("/a")).is_none());
        assert!(matches!(cache.get(&path("/b")), Some(None)));
        assert!(matches!(cache.get(&path("/c")), Some(None)));
    }
}
