//! One line of text per finding and per repair, for the command line and for test
//! failures. Blob ids are shortened to 16 digits: enough to find the file, short enough
//! to read.

use std::fmt;

use super::{Counts, Finding, Outcome, Repair, Report};
use crate::DavPath;

fn short(blob: &str) -> &str {
    blob.get(..16).unwrap_or(blob)
}

fn paths(list: &[DavPath]) -> String {
    if list.is_empty() {
        return "no file".into();
    }
    list.iter().map(DavPath::key).collect::<Vec<_>>().join(", ")
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Finding::DatabaseDamaged { message } => write!(f, "database damaged: {message}"),
            Finding::RootMissing => write!(f, "the root collection is missing or not a collection"),
            Finding::OrphanRow { table, rowid, parent } => {
                write!(f, "orphan row {rowid} of {table}: its {parent} row is missing")
            }
            Finding::Unreachable { id, parent_id, name } => match parent_id {
                Some(p) => write!(f, "resource {id} ({name:?}) is unreachable from the root (parent {p})"),
                None => write!(f, "resource {id} ({name:?}) is unreachable from the root (no parent)"),
            },
            Finding::CollectionHasContent { path, .. } => write!(f, "collection {path} has content"),
            Finding::SizeWithoutContent { path, size, .. } => write!(f, "file {path} has no content but size {size}"),
            Finding::RefcountMismatch { blob, recorded, actual } => match recorded {
                Some(r) => write!(f, "blob {} counted {r} references, has {actual}", short(blob)),
                None => write!(f, "blob {} has {actual} references but no count", short(blob)),
            },
            Finding::MissingBlob { blob, paths: p } => {
                write!(f, "blob {} is missing from the store: content lost for {}", short(blob), paths(p))
            }
            Finding::OrphanBlobFile { blob } => write!(f, "blob file {} is not referenced", short(blob.as_str())),
            Finding::ContentMismatch { blob, paths: p } => {
                write!(f, "blob {} does not hash to its id: damaged content of {}", short(blob.as_str()), paths(p))
            }
            Finding::SizeMismatch { blob, recorded, actual, paths: p } => {
                write!(f, "blob {} holds {actual} bytes, {} says {recorded}", short(blob.as_str()), paths(p))
            }
            Finding::LockRootMissing { token, root } => {
                write!(f, "lock {token} is rooted at {root}, which does not exist")
            }
            Finding::MountPointMissing { mount_id, path } => {
                write!(f, "mount {mount_id} is at {path}, which is not a collection")
            }
        }
    }
}

impl fmt::Display for Repair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Repair::RowDeleted => write!(f, "row deleted"),
            Repair::RefcountSet(n) => write!(f, "count set to {n}"),
            Repair::ContentCleared => write!(f, "content reference cleared"),
            Repair::SizeSet(n) => write!(f, "size set to {n}"),
            Repair::BlobDeleted => write!(f, "file deleted"),
            Repair::BlobMovedAside(Some(to)) => {
                write!(f, "file moved to {}; its files lost their content", to.display())
            }
            Repair::BlobMovedAside(None) => write!(f, "file deleted; its files lost their content"),
            Repair::LockRemoved => write!(f, "lock removed"),
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Found => write!(f, "found"),
            Outcome::Repaired(r) => write!(f, "repaired: {r}"),
            Outcome::Left(why) => write!(f, "not repaired: {why}"),
        }
    }
}

impl fmt::Display for Counts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} resources, {} blobs referenced, {} blob files, {} locks",
            self.resources, self.blobs, self.blob_files, self.locks
        )?;
        if self.bytes_verified > 0 {
            write!(f, ", {} bytes verified", self.bytes_verified)?;
        }
        Ok(())
    }
}

/// The whole report, one line per problem and repair, for test failure messages.
impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in &self.problems {
            writeln!(f, "{} ({})", p.finding, p.outcome)?;
        }
        for r in &self.remaining {
            writeln!(f, "still: {r}")?;
        }
        write!(f, "checked {}", self.counts)
    }
}
