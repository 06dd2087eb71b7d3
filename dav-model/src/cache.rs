//! A cache of path lookups for the read path (GET, HEAD, PROPFIND). Every committed write
//! bumps one generation counter, which invalidates all entries at once: nothing has to
//! work out which paths a MOVE of a large collection touched, and a read never sees an
//! answer older than the last write that finished before it began.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::path::DavPath;
use crate::resource::Resource;

/// Entries kept at most; the map is simply emptied when it fills.
const CAPACITY: usize = 16_384;

#[derive(Default)]
pub(crate) struct LookupCache {
    generation: AtomicU64,
    entries: Mutex<HashMap<DavPath, (u64, Option<Resource>)>>,
}

impl LookupCache {
    /// Read this before querying the database, and pass it to [`LookupCache::insert`].
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The cached lookup of `path` (which may be "no such resource"), if still current.
    pub fn get(&self, path: &DavPath) -> Option<Option<Resource>> {
        let current = self.generation();
        let entries = self.entries.lock().ok()?;
        entries.get(path).filter(|(g, _)| *g == current).map(|(_, r)| r.clone())
    }

    pub fn insert(&self, path: &DavPath, generation: u64, value: Option<Resource>) {
        if generation != self.generation() {
            return;
        }
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= CAPACITY {
                entries.clear();
            }
            entries.insert(path.clone(), (generation, value));
        }
    }

    /// Called after every committed write.
    pub fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }
}
