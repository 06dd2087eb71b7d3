//! What both sides are compared on: outcomes of operations and the observable state
//! after each (every resource with its bytes, dead properties and covering locks; every
//! lock; the bytes in use).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use dav_model::PatchResult;

/// Quotas: the store's (`Config::quota_bytes`) and the host share's cap (`wharf share add
/// --quota-bytes`); each counts only its own tree's files.
#[derive(Debug, Clone, Copy, Default)]
pub struct Limits {
    pub store: Option<u64>,
    pub host: Option<u64>,
}

/// A stored path as its NFC segments (`[]` is the root of the store).
pub type Key = Vec<String>;

/// Dead properties: (namespace, local name) → the stored XML.
pub type Props = BTreeMap<(String, String), String>;

/// File bytes, printed by length and hash so that a failure report stays readable.
#[derive(Clone, PartialEq, Eq)]
pub struct Content(pub Vec<u8>);

impl fmt::Debug for Content {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hash = blake3::hash(&self.0).to_hex();
        write!(f, "{} bytes #{}", self.0.len(), &hash[..8])
    }
}

/// One resource as observed: `content` is `None` for a collection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub content: Option<Content>,
    pub props: Props,
    /// Tokens of the locks covering it.
    pub locks: BTreeSet<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct LockRow {
    pub token: String,
    pub root: Key,
    pub deep: bool,
    pub exclusive: bool,
    pub owner: String,
}

/// Everything compared after a step.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub nodes: BTreeMap<Key, Seen>,
    pub locks: BTreeSet<LockRow>,
    /// Bytes used in the store (what its quota counts) and in the host folder.
    pub used: u64,
    pub host_used: u64,
    /// Names listed at the top of each principal's view.
    pub tops: BTreeMap<&'static str, BTreeSet<String>>,
}

impl Snapshot {
    /// What differs from `expected`, one line per difference; empty when equal.
    pub fn diff(&self, expected: &Snapshot) -> Vec<String> {
        let mut out = Vec::new();
        let keys: BTreeSet<&Key> = self.nodes.keys().chain(expected.nodes.keys()).collect();
        for k in keys {
            let (got, want) = (self.nodes.get(k), expected.nodes.get(k));
            if got != want {
                out.push(format!("at {}: store {got:?}, reference {want:?}", show(k)));
            }
        }
        for l in self.locks.symmetric_difference(&expected.locks) {
            let side = if self.locks.contains(l) { "only in the store" } else { "only in the reference" };
            out.push(format!("lock {side}: {l:?}"));
        }
        if self.used != expected.used {
            out.push(format!("bytes used: store {}, reference {}", self.used, expected.used));
        }
        if self.host_used != expected.host_used {
            out.push(format!(
                "bytes used in the host folder: store {}, reference {}",
                self.host_used, expected.host_used
            ));
        }
        if self.tops != expected.tops {
            out.push(format!("tops of the views: store {:?}, reference {:?}", self.tops, expected.tops));
        }
        out
    }
}

/// A key as a path, long names shortened.
pub fn show(k: &Key) -> String {
    let short = |s: &String| {
        if s.len() > 24 {
            format!("{}…[{}B]", s.chars().take(6).collect::<String>(), s.len())
        } else {
            s.clone()
        }
    };
    format!("/{}", k.iter().map(short).collect::<Vec<_>>().join("/"))
}

/// What an operation answered, at the granularity of a status code and what it reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// 201: a PUT, MKCOL, COPY or MOVE that created its target, or a LOCK of an unmapped URL.
    Created,
    /// 200/204: replaced an existing target, deleted, locked an existing resource, unlocked.
    Done,
    /// PROPPATCH's per-property results (a 207 either way).
    Patched(Vec<PatchResult>),
    Forbidden,
    NotFound,
    /// 409: the parent collection is missing.
    Conflict,
    /// 405 for MKCOL on a mapped URL.
    AlreadyExists,
    /// 405: PUT on a collection.
    NotAllowed,
    PreconditionFailed,
    /// 423, with the roots of the locks whose tokens were missing (as the requester's view
    /// paths, sorted).
    Locked(Vec<String>),
    /// 423 for a LOCK that conflicts, with the conflicting roots.
    ConflictingLock(Vec<String>),
    /// 409 for UNLOCK with a token that does not cover the path.
    TokenMismatch,
    InsufficientStorage,
    /// 400: a name the host folder's file system can't hold.
    BadPath,
    /// 207: a COPY or MOVE between trees that arrived only in part; what failed (as the
    /// requester's view paths), in the order it was tried.
    Partial(Vec<(String, Outcome)>),
    /// Anything else: always a failure of the test.
    Unexpected(String),
}

impl Outcome {
    /// Sorted, without duplicates, as both sides report lock roots.
    pub fn roots(mut paths: Vec<String>) -> Vec<String> {
        paths.sort();
        paths.dedup();
        paths
    }
}
