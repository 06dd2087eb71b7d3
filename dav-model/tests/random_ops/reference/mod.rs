//! The reference: the same semantics as the model, on a map of paths, written for
//! clarity rather than speed. Each operation checks, in the order the model does, the
//! principal's rights, the target's existence, the `If` header, the locks and the quota,
//! and answers the first refusal or applies the change.
//!
//! The share `host` is a folder of the host served in place (`host.rs` says what differs
//! there: names its file system can't hold, its own quota); COPY and MOVE within one tree
//! and between the two are in `transfer.rs`, the other operations in `ops.rs`.

mod host;
mod ops;
mod transfer;

use std::collections::{BTreeMap, BTreeSet};

use unicode_normalization::UnicodeNormalization;

use crate::ops::{grants, rights, Area, Request, Resolved, Sent, ViewPath, Who};
use crate::state::{Content, Key, Limits, LockRow, Outcome, Props, Seen, Snapshot};
use host::Tree;
pub use host::{HOST_ROOT, TEMP_PREFIX};

const R: u8 = 1;
const W: u8 = 2;
const D: u8 = 4;
const L: u8 = 8;
const A: u8 = 16;

#[derive(Debug, Clone)]
struct Node {
    /// `None` for a collection.
    content: Option<Vec<u8>>,
    props: Props,
}

impl Node {
    fn len(&self) -> u64 {
        self.content.as_ref().map_or(0, |c| c.len() as u64)
    }
}

#[derive(Debug, Clone)]
struct Lock {
    /// Empty until the store's token for it is known (see [`Reference::name_new_lock`]).
    token: String,
    root: Key,
    deep: bool,
    exclusive: bool,
    owner: Who,
}

impl Lock {
    fn covers(&self, k: &Key) -> bool {
        &self.root == k || (self.deep && k.starts_with(&self.root))
    }
}

type Step = Result<Outcome, Outcome>;

pub struct Reference {
    /// Every resource but the root of the store, which always exists.
    nodes: BTreeMap<Key, Node>,
    locks: Vec<Lock>,
    limits: Limits,
}

fn key(segments: &[&str]) -> Key {
    segments.iter().map(|s| s.to_string()).collect()
}

fn parent(k: &Key) -> Key {
    k[..k.len().saturating_sub(1)].to_vec()
}

/// Where each area's top lies in the store.
fn base(who: Who, area: Area) -> Key {
    match area.share() {
        Some(share) => key(&["shares", share]),
        None => key(&["home", who.name()]),
    }
}

impl Reference {
    /// The homes of both principals and the three shares, empty.
    pub fn new(limits: Limits) -> Reference {
        let dirs = [
            &["home"][..],
            &["home", "alice"],
            &["home", "bob"],
            &["shares"],
            &["shares", "team"],
            &["shares", "ro"],
            &["shares", "host"],
        ];
        let nodes = dirs.iter().map(|d| (key(d), Node { content: None, props: Props::new() })).collect();
        Reference { nodes, locks: Vec::new(), limits }
    }

    /// Applies one request and answers what the store should.
    pub fn apply(&mut self, r: &Resolved) -> Outcome {
        let (who, sent) = (r.who, &r.sent);
        let step = match &r.request {
            Request::Put { path, body } => self.put(who, path, *body, sent),
            Request::Mkcol { path } => self.mkcol(who, path, sent),
            Request::Delete { path } => self.delete(who, path, sent),
            Request::Transfer { src, dst, moving, deep, overwrite } => {
                let how = transfer::How { moving: *moving, deep: *deep || *moving, overwrite: *overwrite };
                self.transfer(who, src, dst, how, sent)
            }
            Request::PropPatch { path, instrs } => self.proppatch(who, path, instrs, sent),
            Request::Lock { path, exclusive, deep } => self.lock(who, path, *exclusive, *deep, sent),
            Request::Refresh { path } => self.refresh(who, path, sent),
            Request::Unlock { path, token } => self.unlock(who, path, token),
        };
        step.unwrap_or_else(|refused| refused)
    }

    /// Gives the lock just granted the store's token; returns its root.
    pub fn name_new_lock(&mut self, token: &str) -> Option<Key> {
        let lock = self.locks.iter_mut().find(|l| l.token.is_empty())?;
        lock.token = token.to_owned();
        Some(lock.root.clone())
    }

    /// Where a stored path appears in `who`'s view, if it does.
    pub fn view_of(&self, who: Who, k: &Key) -> Option<ViewPath> {
        [Area::Home, Area::Team, Area::Ro, Area::Host].into_iter().find_map(|area| {
            let base = base(who, area);
            k.starts_with(&base).then(|| ViewPath { area, names: k[base.len()..].to_vec() })
        })
    }

    /// Every resource `who` can see (their `/` and the shares included), as view paths,
    /// with whether it is a collection.
    pub fn visible(&self, who: Who) -> Vec<(ViewPath, bool)> {
        let seen = self.nodes.iter().map(|(k, n)| (self.view_of(who, k), n.content.is_none()));
        seen.filter_map(|(v, collection)| Some((v?, collection))).collect()
    }

    /// What the store should show.
    pub fn snapshot(&self) -> Snapshot {
        let nodes = self.nodes.iter().map(|(k, n)| (k.clone(), self.seen(k, n))).collect();
        let locks = self
            .locks
            .iter()
            .map(|l| LockRow {
                token: l.token.clone(),
                root: l.root.clone(),
                deep: l.deep,
                exclusive: l.exclusive,
                owner: l.owner.name().to_owned(),
            })
            .collect();
        let tops = [Who::Alice, Who::Bob].map(|w| (w.name(), self.top_of_view(w))).into_iter().collect();
        Snapshot { nodes, locks, used: self.used(Tree::Store), host_used: self.used(Tree::Host), tops }
    }

    fn seen(&self, k: &Key, n: &Node) -> Seen {
        let locks = self.locks.iter().filter(|l| l.covers(k)).map(|l| l.token.clone()).collect();
        Seen { content: n.content.clone().map(Content), props: n.props.clone(), locks }
    }

    /// Names listed at the top of `who`'s view: their home's members, then the shares.
    fn top_of_view(&self, who: Who) -> BTreeSet<String> {
        let home = key(&["home", who.name()]);
        let mut names: BTreeSet<String> =
            self.nodes.keys().filter(|k| k.len() == 3 && k.starts_with(&home)).map(|k| k[2].clone()).collect();
        names.extend(grants(who).iter().map(|(share, _)| share.to_string()));
        names
    }

    /// Bytes the files of one tree hold.
    fn used(&self, tree: Tree) -> u64 {
        self.nodes.iter().filter(|(k, _)| Tree::of(k) == tree).map(|(_, n)| n.len()).sum()
    }

    // ---- paths and rights ----

    /// The stored path of a view path, if `who` holds `need` there (View::stored).
    fn need(&self, who: Who, path: &ViewPath, need: u8) -> Result<Key, Outcome> {
        let (k, rights) = self.stored(who, path);
        if rights & need != need {
            return Err(Outcome::Forbidden);
        }
        Ok(k)
    }

    /// The stored path of a view path, and `who`'s rights there.
    fn stored(&self, who: Who, path: &ViewPath) -> (Key, u8) {
        let mut k = base(who, path.area);
        k.extend(path.names.iter().map(|n| n.nfc().collect::<String>()));
        (k, rights(who, path.area).chars().fold(0, |acc, c| acc | bit(c)))
    }

    /// A principal's `/` and the shares can't be deleted, moved away or replaced.
    fn not_a_mount_point(path: &ViewPath) -> Result<(), Outcome> {
        if path.names.is_empty() {
            return Err(Outcome::Forbidden);
        }
        Ok(())
    }

    fn show(&self, who: Who, k: &Key) -> String {
        self.view_of(who, k).map_or_else(|| "/".to_owned(), |v| v.raw())
    }

    fn is_collection(&self, k: &Key) -> bool {
        k.is_empty() || self.nodes.get(k).is_some_and(|n| n.content.is_none())
    }

    fn parent_collection(&self, k: &Key) -> Result<(), Outcome> {
        if self.is_collection(&parent(k)) {
            Ok(())
        } else {
            Err(Outcome::Conflict)
        }
    }

    // ---- conditions and locks ----

    /// The `If` header: a proving header always holds; a token must be one of the locks
    /// covering the request URI, or the tagged path.
    fn holds(&self, who: Who, k: &Key, sent: &Sent) -> Result<(), Outcome> {
        let (token, at) = match sent {
            Sent::Untagged(t) => (t, k.clone()),
            Sent::Tagged { token, at } => (token, self.stored(who, at).0),
            _ => return Ok(()),
        };
        match self.locks.iter().any(|l| &l.token == token && l.covers(&at)) {
            true => Ok(()),
            false => Err(Outcome::PreconditionFailed),
        }
    }

    /// Every lock that covers `k` (or lies below it, for `subtree`; or sits on its parent,
    /// when the parent's membership changes) must be proven by its owner's token.
    fn check_write(&self, who: Who, k: &Key, subtree: bool, membership: bool, sent: &Sent) -> Result<(), Outcome> {
        let submitted = sent.tokens();
        let blocked: Vec<String> = self
            .locks
            .iter()
            .filter(|l| {
                let relevant = l.covers(k)
                    || (subtree && l.root.starts_with(k))
                    || (membership && l.root == parent(k) && !k.is_empty());
                let proven = submitted.contains(&l.token.as_str()) && l.owner == who;
                relevant && !proven
            })
            .map(|l| self.show(who, &l.root))
            .collect();
        if blocked.is_empty() {
            Ok(())
        } else {
            Err(Outcome::Locked(Outcome::roots(blocked)))
        }
    }

    /// The quota of the tree `k` lies in: the store's, or the host folder's cap.
    fn check_quota(&self, k: &Key, adding: u64, removing: u64) -> Result<(), Outcome> {
        let tree = Tree::of(k);
        let limit = match tree {
            Tree::Store => self.limits.store,
            Tree::Host => self.limits.host,
        };
        match limit {
            Some(limit) if self.used(tree) - removing + adding > limit => Err(Outcome::InsufficientStorage),
            _ => Ok(()),
        }
    }

    // ---- the subtree helpers ----

    /// `k` and everything below it, parents first and members in name order (the order
    /// a transfer between trees copies them in).
    fn subtree(&self, k: &Key) -> Vec<Key> {
        self.nodes.keys().filter(|n| n.starts_with(k)).cloned().collect()
    }

    fn subtree_bytes(&self, k: &Key) -> u64 {
        self.nodes.iter().filter(|(n, _)| n.starts_with(k)).map(|(_, n)| n.len()).sum()
    }

    /// Removes `k` and everything below it, with the locks rooted there.
    fn remove(&mut self, k: &Key) {
        self.nodes.retain(|n, _| !n.starts_with(k));
        self.locks.retain(|l| !l.root.starts_with(k));
    }
}

fn bit(c: char) -> u8 {
    match c {
        'r' => R,
        'w' => W,
        'd' => D,
        'l' => L,
        'a' => A,
        _ => 0,
    }
}
