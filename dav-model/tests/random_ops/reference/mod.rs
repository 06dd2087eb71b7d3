//! The reference: the same semantics as the model, on a map of paths, written for
//! clarity rather than speed. Each operation checks, in the order the model does, the
//! principal's rights, the target's existence, the `If` header, the locks and the quota,
//! and answers the first refusal or applies the change.

use std::collections::BTreeMap;

use unicode_normalization::UnicodeNormalization;

use crate::ops::{grants, prop_xml, Area, Body, Instr, Request, Resolved, Sent, ViewPath, Who, PROPS};
use crate::state::{Content, Key, LockRow, Outcome, Props, Seen, Snapshot};

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
    quota: Option<u64>,
}

fn key(segments: &[&str]) -> Key {
    segments.iter().map(|s| s.to_string()).collect()
}

fn parent(k: &Key) -> Key {
    k[..k.len().saturating_sub(1)].to_vec()
}

impl Reference {
    /// The homes of both principals and the two shares, empty.
    pub fn new(quota: Option<u64>) -> Reference {
        let dirs =
            [&["home"][..], &["home", "alice"], &["home", "bob"], &["shares"], &["shares", "team"], &["shares", "ro"]];
        let nodes = dirs.iter().map(|d| (key(d), Node { content: None, props: Props::new() })).collect();
        Reference { nodes, locks: Vec::new(), quota }
    }

    /// Applies one request and answers what the store should.
    pub fn apply(&mut self, r: &Resolved) -> Outcome {
        let (who, sent) = (r.who, &r.sent);
        let step = match &r.request {
            Request::Put { path, body } => self.put(who, path, *body, sent),
            Request::Mkcol { path } => self.mkcol(who, path, sent),
            Request::Delete { path } => self.delete(who, path, sent),
            Request::Transfer { src, dst, moving, deep, overwrite } => {
                self.transfer(who, src, dst, *moving, *deep || *moving, *overwrite, sent)
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
        let under =
            |base: &[&str], area| k.starts_with(&key(base)).then(|| ViewPath { area, names: k[base.len()..].to_vec() });
        under(&["home", who.name()], Area::Home)
            .or_else(|| under(&["shares", "team"], Area::Team))
            .or_else(|| under(&["shares", "ro"], Area::Ro))
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
        Snapshot { nodes, locks, used: self.used(), tops }
    }

    fn seen(&self, k: &Key, n: &Node) -> Seen {
        let locks = self.locks.iter().filter(|l| l.covers(k)).map(|l| l.token.clone()).collect();
        Seen { content: n.content.clone().map(Content), props: n.props.clone(), locks }
    }

    /// Names listed at the top of `who`'s view: their home's members, then the shares.
    fn top_of_view(&self, who: Who) -> std::collections::BTreeSet<String> {
        let home = key(&["home", who.name()]);
        let mut names: std::collections::BTreeSet<String> =
            self.nodes.keys().filter(|k| k.len() == 3 && k.starts_with(&home)).map(|k| k[2].clone()).collect();
        names.extend(grants(who).iter().map(|(share, _)| share.to_string()));
        names
    }

    fn used(&self) -> u64 {
        self.nodes.values().filter_map(|n| n.content.as_ref()).map(|c| c.len() as u64).sum()
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
        let (mut k, letters) = match path.area {
            Area::Home => (key(&["home", who.name()]), "rwdla"),
            Area::Team => (key(&["shares", "team"]), grants(who)[0].1),
            Area::Ro => (key(&["shares", "ro"]), grants(who)[1].1),
        };
        k.extend(path.names.iter().map(|n| n.nfc().collect::<String>()));
        (k, letters.chars().fold(0, |acc, c| acc | bit(c)))
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

    fn check_quota(&self, adding: u64, removing: u64) -> Result<(), Outcome> {
        match self.quota {
            Some(limit) if self.used() - removing + adding > limit => Err(Outcome::InsufficientStorage),
            _ => Ok(()),
        }
    }

    // ---- the subtree helpers ----

    fn subtree(&self, k: &Key) -> Vec<Key> {
        self.nodes.keys().filter(|n| n.starts_with(k)).cloned().collect()
    }

    fn subtree_bytes(&self, k: &Key) -> u64 {
        let files = self.nodes.iter().filter(|(n, _)| n.starts_with(k));
        files.filter_map(|(_, n)| n.content.as_ref()).map(|c| c.len() as u64).sum()
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

// ---- the operations ----

impl Reference {
    fn put(&mut self, who: Who, path: &ViewPath, body: Body, sent: &Sent) -> Step {
        let k = self.need(who, path, W)?;
        self.holds(who, &k, sent)?;
        self.parent_collection(&k)?;
        let old = self.nodes.get(&k).cloned();
        if old.as_ref().is_some_and(|n| n.content.is_none()) {
            return Err(Outcome::NotAllowed);
        }
        self.check_write(who, &k, false, old.is_none(), sent)?;
        let old_len = old.as_ref().and_then(|n| n.content.as_ref()).map_or(0, |c| c.len() as u64);
        self.check_quota(body.len as u64, old_len)?;
        let props = old.as_ref().map(|n| n.props.clone()).unwrap_or_default();
        self.nodes.insert(k, Node { content: Some(body.bytes()), props });
        Ok(if old.is_some() { Outcome::Done } else { Outcome::Created })
    }

    fn mkcol(&mut self, who: Who, path: &ViewPath, sent: &Sent) -> Step {
        let k = self.need(who, path, W)?;
        if k.is_empty() || self.nodes.contains_key(&k) {
            return Err(Outcome::AlreadyExists);
        }
        self.parent_collection(&k)?;
        self.holds(who, &k, sent)?;
        self.check_write(who, &k, false, true, sent)?;
        self.nodes.insert(k, Node { content: None, props: Props::new() });
        Ok(Outcome::Created)
    }

    fn delete(&mut self, who: Who, path: &ViewPath, sent: &Sent) -> Step {
        Self::not_a_mount_point(path)?;
        let k = self.need(who, path, D)?;
        if !self.nodes.contains_key(&k) {
            return Err(Outcome::NotFound);
        }
        self.holds(who, &k, sent)?;
        self.check_write(who, &k, true, true, sent)?;
        self.remove(&k);
        Ok(Outcome::Done)
    }

    #[allow(clippy::too_many_arguments)]
    fn transfer(
        &mut self,
        who: Who,
        src: &ViewPath,
        dst: &ViewPath,
        moving: bool,
        deep: bool,
        overwrite: bool,
        sent: &Sent,
    ) -> Step {
        let s = if moving {
            Self::not_a_mount_point(src)?;
            self.need(who, src, D | R)?
        } else {
            self.need(who, src, R)?
        };
        Self::not_a_mount_point(dst)?;
        let d = self.need(who, dst, W)?;
        let existing = self.nodes.contains_key(&d);
        if overwrite && existing {
            self.need(who, dst, W | D)?;
        }
        if s == d || d.starts_with(&s) || s.starts_with(&d) {
            return Err(Outcome::Forbidden);
        }
        if !self.nodes.contains_key(&s) {
            return Err(Outcome::NotFound);
        }
        self.holds(who, &s, sent)?;
        if moving {
            self.check_write(who, &s, true, true, sent)?;
        }
        self.parent_collection(&d)?;
        if existing && !overwrite {
            return Err(Outcome::PreconditionFailed);
        }
        self.check_write(who, &d, true, true, sent)?;
        self.carry(&s, &d, moving, deep)?;
        Ok(if existing { Outcome::Done } else { Outcome::Created })
    }

    /// What a COPY or MOVE does once allowed: the destination's subtree (and its locks)
    /// goes, the source's (all of it, or for COPY Depth 0 just itself) lands there with
    /// its properties; a MOVE takes the source and its locks away, a COPY must fit the quota.
    fn carry(&mut self, s: &Key, d: &Key, moving: bool, deep: bool) -> Result<(), Outcome> {
        let removed = self.subtree_bytes(d);
        let carried = if deep { self.subtree(s) } else { vec![s.clone()] };
        if !moving {
            let adding = carried.iter().filter_map(|k| self.nodes[k].content.as_ref()).map(|c| c.len() as u64).sum();
            self.check_quota(adding, removed)?;
        }
        let nodes: Vec<(Key, Node)> = carried.iter().map(|k| (k.clone(), self.nodes[k].clone())).collect();
        self.remove(d);
        if moving {
            self.remove(s);
        }
        for (k, n) in nodes {
            let mut at = d.clone();
            at.extend_from_slice(&k[s.len()..]);
            self.nodes.insert(at, n);
        }
        Ok(())
    }

    fn proppatch(&mut self, who: Who, path: &ViewPath, instrs: &[Instr], sent: &Sent) -> Step {
        let k = self.need(who, path, W)?;
        if !k.is_empty() && !self.nodes.contains_key(&k) {
            return Err(Outcome::NotFound);
        }
        self.holds(who, &k, sent)?;
        self.check_write(who, &k, false, false, sent)?;
        use dav_model::PatchResult as P;
        let refused = |i: &Instr| match *i {
            Instr::Set(p, _) => PROPS[p] == ("DAV:", "getetag"),
            Instr::Remove(p) => PROPS[p].0 == "DAV:" && PROPS[p].1 != "displayname",
        };
        if instrs.iter().any(refused) {
            let results = instrs.iter().map(|i| if refused(i) { P::Protected } else { P::FailedDependency });
            return Ok(Outcome::Patched(results.collect()));
        }
        let node = self.nodes.get_mut(&k).expect("checked above");
        for i in instrs {
            let name = |p: usize| (PROPS[p].0.to_owned(), PROPS[p].1.to_owned());
            match *i {
                Instr::Set(p, _) if PROPS[p] == ("DAV:", "getlastmodified") => {}
                Instr::Set(p, v) => drop(node.props.insert(name(p), prop_xml(p, v))),
                Instr::Remove(p) => drop(node.props.remove(&name(p))),
            }
        }
        Ok(Outcome::Patched(vec![P::Ok; instrs.len()]))
    }

    fn lock(&mut self, who: Who, path: &ViewPath, exclusive: bool, deep: bool, sent: &Sent) -> Step {
        let mut k = self.need(who, path, L)?;
        let existed = k.is_empty() || self.nodes.contains_key(&k);
        if !existed {
            k = self.need(who, path, L | W)?;
        }
        self.holds(who, &k, sent)?;
        let conflicts: Vec<String> = self
            .locks
            .iter()
            .filter(|l| l.covers(&k) || (deep && l.root.starts_with(&k)))
            .filter(|l| l.exclusive || exclusive)
            .map(|l| self.show(who, &l.root))
            .collect();
        if !conflicts.is_empty() {
            return Err(Outcome::ConflictingLock(Outcome::roots(conflicts)));
        }
        if !existed {
            self.check_write(who, &k, false, true, sent)?;
            self.parent_collection(&k)?;
            self.nodes.insert(k.clone(), Node { content: Some(Vec::new()), props: Props::new() });
        }
        let deep = deep && existed && self.is_collection(&k);
        self.locks.push(Lock { token: String::new(), root: k, deep, exclusive, owner: who });
        Ok(if existed { Outcome::Done } else { Outcome::Created })
    }

    /// A refresh names its lock by a submitted token that covers the path; it must be the
    /// requester's own. (Several such tokens are never sent: the store would refresh
    /// whichever it found first.)
    fn refresh(&mut self, who: Who, path: &ViewPath, sent: &Sent) -> Step {
        let k = self.need(who, path, L)?;
        self.holds(who, &k, sent)?;
        let tokens = sent.tokens();
        let sent: Vec<_> = self.locks.iter().filter(|l| l.covers(&k) && tokens.contains(&l.token.as_str())).collect();
        // The requester's own lock is the one refreshed, whatever other tokens came along.
        match (sent.iter().any(|l| l.owner == who), sent.is_empty()) {
            (true, _) => Ok(Outcome::Done),
            (false, true) => Err(Outcome::PreconditionFailed),
            (false, false) => Err(Outcome::Forbidden),
        }
    }

    fn unlock(&mut self, who: Who, path: &ViewPath, token: &str) -> Step {
        let k = self.need(who, path, L)?;
        let Some(at) = self.locks.iter().position(|l| l.token == token && l.covers(&k)) else {
            return Err(Outcome::TokenMismatch);
        };
        if self.locks[at].owner != who && self.need(who, path, A).is_err() {
            return Err(Outcome::Forbidden);
        }
        self.locks.remove(at);
        Ok(Outcome::Done)
    }
}
