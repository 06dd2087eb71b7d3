//! PUT, MKCOL, DELETE, PROPPATCH, LOCK, refresh and UNLOCK, in either tree.

use dav_model::PatchResult as P;

use super::host::{Tree, HOST_ROOT};
use super::{Lock, Node, Reference, Step, A, D, L, W};
use crate::ops::{prop_xml, Body, Instr, Sent, ViewPath, Who, PROPS};
use crate::state::{Outcome, Props};

impl Reference {
    pub(super) fn put(&mut self, who: Who, path: &ViewPath, body: Body, sent: &Sent) -> Step {
        let k = self.need(who, path, W)?;
        if Tree::of(&k) == Tree::Host && k.len() == HOST_ROOT.len() {
            // The mounted folder's root is refused before it is looked at.
            return Err(Outcome::NotAllowed);
        }
        let exists = self.look(&k)?;
        self.holds(who, &k, sent)?;
        self.parent_collection(&k)?;
        let old = self.nodes.get(&k).cloned();
        if old.as_ref().is_some_and(|n| n.content.is_none()) {
            return Err(Outcome::NotAllowed);
        }
        self.check_write(who, &k, false, !exists, sent)?;
        Self::creatable(&k)?;
        self.check_quota(&k, body.len as u64, old.as_ref().map_or(0, Node::len))?;
        let props = old.as_ref().map(|n| n.props.clone()).unwrap_or_default();
        self.nodes.insert(k, Node { content: Some(body.bytes()), props });
        Ok(if exists { Outcome::Done } else { Outcome::Created })
    }

    pub(super) fn mkcol(&mut self, who: Who, path: &ViewPath, sent: &Sent) -> Step {
        let k = self.need(who, path, W)?;
        if k.is_empty() || self.look(&k)? {
            return Err(Outcome::AlreadyExists);
        }
        self.parent_collection(&k)?;
        self.holds(who, &k, sent)?;
        self.check_write(who, &k, false, true, sent)?;
        Self::creatable(&k)?;
        self.nodes.insert(k, Node { content: None, props: Props::new() });
        Ok(Outcome::Created)
    }

    pub(super) fn delete(&mut self, who: Who, path: &ViewPath, sent: &Sent) -> Step {
        Self::not_a_mount_point(path)?;
        let k = self.need(who, path, D)?;
        if !self.look(&k)? {
            return Err(Outcome::NotFound);
        }
        self.holds(who, &k, sent)?;
        self.check_write(who, &k, true, true, sent)?;
        self.remove(&k);
        Ok(Outcome::Done)
    }

    pub(super) fn proppatch(&mut self, who: Who, path: &ViewPath, instrs: &[Instr], sent: &Sent) -> Step {
        let k = self.need(who, path, W)?;
        if !self.look(&k)? {
            return Err(Outcome::NotFound);
        }
        self.holds(who, &k, sent)?;
        self.check_write(who, &k, false, false, sent)?;
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

    pub(super) fn lock(&mut self, who: Who, path: &ViewPath, exclusive: bool, deep: bool, sent: &Sent) -> Step {
        let mut k = self.need(who, path, L)?;
        let existed = self.look(&k)?;
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
            Self::creatable(&k)?;
            self.nodes.insert(k.clone(), Node { content: Some(Vec::new()), props: Props::new() });
        }
        let deep = deep && existed && self.is_collection(&k);
        self.locks.push(Lock { token: String::new(), root: k, deep, exclusive, owner: who });
        Ok(if existed { Outcome::Done } else { Outcome::Created })
    }

    /// A refresh names its lock by a submitted token that covers the path; it must be the
    /// requester's own. (Several such tokens are never sent: the store would refresh
    /// whichever it found first.)
    pub(super) fn refresh(&mut self, who: Who, path: &ViewPath, sent: &Sent) -> Step {
        let k = self.need(who, path, L)?;
        self.look(&k)?;
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

    pub(super) fn unlock(&mut self, who: Who, path: &ViewPath, token: &str) -> Step {
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
