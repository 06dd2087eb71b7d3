//! COPY and MOVE. Within one tree (the store, or the host folder) a transfer is one step:
//! the destination's subtree goes, the source's lands there with its properties. Between
//! the trees it is checked once as a whole, then carried out member by member (parents
//! first, members in name order) as the model's own MKCOL and PUT, each with its own
//! refusals (a name the host can't hold, the quota of the tree it lands in); what failed
//! is reported (207) and the rest still arrives. A MOVE then deletes its source only if
//! everything arrived (README, "Host folders"; `dav-model/src/mount/transfer.rs`).

use super::host::Tree;
use super::{Node, Reference, Step, D, R, W};
use crate::ops::{Sent, ViewPath, Who};
use crate::state::{Key, Outcome};

#[derive(Debug, Clone, Copy)]
pub(super) struct How {
    pub moving: bool,
    /// Depth infinity (always, for a MOVE).
    pub deep: bool,
    pub overwrite: bool,
}

impl Reference {
    pub(super) fn transfer(&mut self, who: Who, src: &ViewPath, dst: &ViewPath, how: How, sent: &Sent) -> Step {
        let s = if how.moving {
            Self::not_a_mount_point(src)?;
            self.need(who, src, D | R)?
        } else {
            self.need(who, src, R)?
        };
        Self::not_a_mount_point(dst)?;
        let d = self.need(who, dst, W)?;
        if how.overwrite && self.look(&d)? {
            self.need(who, dst, W | D)?;
        }
        if s == d || d.starts_with(&s) || s.starts_with(&d) {
            return Err(Outcome::Forbidden);
        }
        if !self.look(&s)? {
            return Err(Outcome::NotFound);
        }
        self.holds(who, &s, sent)?;
        if how.moving {
            self.check_write(who, &s, true, true, sent)?;
        }
        self.parent_collection(&d)?;
        let existing = self.look(&d)?;
        if existing && !how.overwrite {
            return Err(Outcome::PreconditionFailed);
        }
        self.check_write(who, &d, true, true, sent)?;
        if Tree::of(&s) == Tree::of(&d) {
            self.carry(&s, &d, how)?;
        } else {
            return self.across(who, &s, &d, how, existing);
        }
        Ok(if existing { Outcome::Done } else { Outcome::Created })
    }

    /// A transfer within one tree, once allowed: the destination's subtree (and its locks)
    /// goes, the source's (all of it, or for COPY Depth 0 just itself) lands there with
    /// its properties; a MOVE takes the source and its locks away, a COPY must fit the
    /// quota.
    fn carry(&mut self, s: &Key, d: &Key, how: How) -> Result<(), Outcome> {
        let carried = if how.deep { self.subtree(s) } else { vec![s.clone()] };
        if !how.moving {
            let adding = carried.iter().map(|k| self.nodes[k].len()).sum();
            self.check_quota(d, adding, self.subtree_bytes(d))?;
        }
        Self::creatable(d)?;
        let nodes: Vec<(Key, Node)> = carried.iter().map(|k| (k.clone(), self.nodes[k].clone())).collect();
        self.remove(d);
        if how.moving {
            self.remove(s);
        }
        for (k, n) in nodes {
            let mut at = d.clone();
            at.extend_from_slice(&k[s.len()..]);
            self.nodes.insert(at, n);
        }
        Ok(())
    }

    /// A transfer between the trees, once allowed as a whole. A destination in the way is
    /// deleted first, unless a file replaces a file: then the PUT replaces it in one step
    /// (and a refused PUT leaves it as it was).
    fn across(&mut self, who: Who, s: &Key, d: &Key, how: How, existing: bool) -> Step {
        if existing && (self.is_collection(d) || self.is_collection(s)) {
            self.remove(d);
        }
        let members = if how.deep { self.subtree(s) } else { vec![s.clone()] };
        let mut failed: Vec<(Key, Outcome)> = Vec::new();
        let mut skipped: Vec<Key> = Vec::new();
        for m in members {
            if skipped.iter().any(|above| m.starts_with(above)) {
                continue;
            }
            let mut t = d.clone();
            t.extend_from_slice(&m[s.len()..]);
            if let Err(e) = self.copy_one(&m, &t) {
                failed.push((t, e));
                skipped.push(m);
            }
        }
        if let Some((_, e)) = failed.iter().find(|(t, _)| t == d) {
            // Nothing arrived: the request failed as a whole.
            return Err(e.clone());
        }
        if !failed.is_empty() {
            return Ok(Outcome::Partial(failed.into_iter().map(|(t, e)| (self.show(who, &t), e)).collect()));
        }
        if how.moving {
            self.remove(s);
        }
        Ok(if existing { Outcome::Done } else { Outcome::Created })
    }

    /// One member of a transfer between trees, as the MKCOL or PUT of the model that
    /// carries it (its locks were proven as a whole): the new resource gets the source's
    /// dead properties, and only those.
    fn copy_one(&mut self, m: &Key, t: &Key) -> Result<(), Outcome> {
        let node = self.nodes[m].clone();
        let exists = self.look(t)?;
        if node.content.is_none() {
            if exists {
                return Err(Outcome::AlreadyExists);
            }
            Self::creatable(t)?;
        } else {
            if exists && self.is_collection(t) {
                return Err(Outcome::NotAllowed);
            }
            Self::creatable(t)?;
            self.check_quota(t, node.len(), self.nodes.get(t).map_or(0, Node::len))?;
            // A file replacing a file: as if deleted first (RFC 4918 9.8.4, 9.9.3), its
            // locks go with it.
            self.locks.retain(|l| &l.root != t);
        }
        self.nodes.insert(t.clone(), node);
        Ok(())
    }
}
