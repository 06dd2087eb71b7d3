//! What a write is decided on, read in one trip at the start of its transaction (see
//! [`crate::txn`]): the resource at the path, its parent, the locks in scope and, under a
//! quota, the bytes the tree uses.

use crate::db::Row;
use crate::lock::{lock_from_row_at, push_locks_in_scope, ActiveLock};
use crate::path::DavPath;
use crate::resource::{push_lookup, push_lookup_with_parent, Resource, Tag};
use crate::txn::Batch;
use crate::{Error, Result};

#[derive(Debug, Default)]
pub(crate) struct Snapshot {
    pub parent: Option<Resource>,
    pub target: Option<Resource>,
    pub locks: Vec<ActiveLock>,
    /// Bytes used by the whole tree, when asked for.
    pub used: Option<u64>,
}

/// Which parts of a [`Snapshot`] to read besides the target and its locks.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Wanted {
    pub parent: bool,
    pub used: bool,
}

impl Snapshot {
    /// The reads, as one batch. `wanted.parent` needs a path other than the root.
    pub fn batch(path: &DavPath, wanted: Wanted) -> Batch {
        let mut batch = Batch::new();
        if wanted.parent && !path.is_root() {
            push_lookup_with_parent(&mut batch, path);
        } else {
            push_lookup(&mut batch, path);
        }
        push_locks_in_scope(&mut batch, path);
        if wanted.used {
            let tag = Tag::Used as i64;
            batch.push(format!("SELECT {tag}, CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM resources"));
        }
        batch
    }

    /// Sorts the rows the batch returned by their tag.
    pub fn read(rows: &[Row], path: &DavPath) -> Result<Snapshot> {
        let mut snap = Snapshot::default();
        for row in rows {
            match Tag::of(row) {
                Some(Tag::Parent) => {
                    let parent = path.parent().unwrap_or_default();
                    snap.parent = Some(Resource::from_row_at(row, 1, parent));
                }
                Some(Tag::Target) => snap.target = Some(Resource::from_row_at(row, 1, path.clone())),
                Some(Tag::Lock) => snap.locks.push(lock_from_row_at(row, 1)?),
                Some(Tag::Used) => snap.used = Some(row.try_get::<i64>(1)?.max(0) as u64),
                Some(Tag::Garbage | Tag::Released | Tag::Replaced) => {}
                None => return Err(Error::Internal("a row of the write snapshot has no tag".into())),
            }
        }
        Ok(snap)
    }
}
