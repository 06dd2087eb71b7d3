//! Who is asking, and what they see. A principal's view of the tree is a small mount
//! table: their home collection is their `/`, and each share granted to them appears as a
//! collection of that name at the top of their view. Rights are checked per mount.

use crate::path::DavPath;
use crate::{Error, Result};

/// Where homes, shares and the anonymous area live in the stored tree.
pub const HOMES: &str = "home";
pub const SHARES: &str = "shares";
pub const PUBLIC: &str = "public";

/// What a principal may do under a mount: a set of `r`ead, `w`rite, `d`elete, `l`ock and
/// `a`dmin (break other principals' locks).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Rights(u8);

impl Rights {
    pub const READ: Rights = Rights(1);
    pub const WRITE: Rights = Rights(2);
    pub const DELETE: Rights = Rights(4);
    pub const LOCK: Rights = Rights(8);
    pub const ADMIN: Rights = Rights(16);
    pub const ALL: Rights = Rights(31);
    const LETTERS: [(char, Rights); 5] =
        [('r', Self::READ), ('w', Self::WRITE), ('d', Self::DELETE), ('l', Self::LOCK), ('a', Self::ADMIN)];

    /// Parses letters such as `rwdl`; unknown letters are an error.
    pub fn parse(s: &str) -> Result<Rights> {
        s.chars().try_fold(Rights(0), |acc, c| {
            let (_, r) = Self::LETTERS
                .iter()
                .find(|(l, _)| *l == c)
                .ok_or_else(|| Error::BadRequest(format!("unknown right {c:?} (use r, w, d, l, a)")))?;
            Ok(acc.with(*r))
        })
    }

    pub fn with(self, other: Rights) -> Rights {
        Rights(self.0 | other.0)
    }

    pub fn contains(self, other: Rights) -> bool {
        self.0 & other.0 == other.0
    }

    /// What is left once a read-only flag applies.
    pub fn read_only(self) -> Rights {
        Rights(self.0 & Self::READ.0)
    }
}

impl std::fmt::Display for Rights {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (l, r) in Self::LETTERS {
            if self.contains(r) {
                write!(f, "{l}")?;
            }
        }
        Ok(())
    }
}

/// One entry of a view: paths under `view` are stored under `stored`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub view: DavPath,
    pub stored: DavPath,
    pub rights: Rights,
}

/// What a user's flags change in their view.
#[derive(Debug, Clone, Copy, Default)]
pub struct Flags {
    /// Every mount is capped to read.
    pub read_only: bool,
    /// Also sees the public area (what anonymous readers get) as `/public`, to publish there.
    pub admin: bool,
}

/// An authenticated user (or the anonymous reader) and their view of the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// `None` for the anonymous reader.
    pub user: Option<String>,
    /// Longest view prefix first, so the first match is the most specific mount. Shared:
    /// a principal is cloned out of the login cache for every request.
    mounts: std::sync::Arc<[Mount]>,
}

impl Principal {
    /// A user's view: home as `/` with every right (read only if the user is), plus shares,
    /// plus the public area for administrators.
    pub fn user(name: &str, flags: Flags, shares: &[(String, Rights)]) -> Result<Principal> {
        let cap = |r: Rights| if flags.read_only { r.read_only() } else { r };
        let mut mounts = vec![Mount { view: DavPath::root(), stored: home_of(name)?, rights: cap(Rights::ALL) }];
        for (share, rights) in shares {
            let view = DavPath::root().join(share)?;
            mounts.push(Mount { view, stored: share_path(share)?, rights: cap(*rights) });
        }
        if flags.admin {
            let public = DavPath::root().join(PUBLIC)?;
            mounts.push(Mount { view: public.clone(), stored: public, rights: cap(Rights::ALL) });
        }
        Ok(Principal::with_mounts(Some(name.to_owned()), mounts))
    }

    /// The anonymous reader: the public area as `/`, read only.
    pub fn anonymous() -> Principal {
        let stored = DavPath::root().join(PUBLIC).unwrap_or_default();
        Principal::with_mounts(None, vec![Mount { view: DavPath::root(), stored, rights: Rights::READ }])
    }

    /// Everything, unrestricted: for local tools and tests that work on the whole store.
    pub fn system() -> Principal {
        Principal::with_mounts(
            None,
            vec![Mount { view: DavPath::root(), stored: DavPath::root(), rights: Rights::ALL }],
        )
    }

    fn with_mounts(user: Option<String>, mut mounts: Vec<Mount>) -> Principal {
        mounts.sort_by_key(|m| std::cmp::Reverse(m.view.segments().len()));
        Principal { user, mounts: mounts.into() }
    }

    pub fn mounts(&self) -> &[Mount] {
        &self.mounts
    }

    /// The mount a view path falls under (the root mount catches everything else).
    pub fn mount_of(&self, view: &DavPath) -> Option<&Mount> {
        self.mounts.iter().find(|m| view.starts_with(&m.view))
    }

    /// The stored path and rights for a path of this principal's view.
    pub fn to_stored(&self, view: &DavPath) -> Option<(DavPath, Rights)> {
        let m = self.mount_of(view)?;
        Some((view.rebase(&m.view, &m.stored)?, m.rights))
    }

    /// The view path of a stored path, if this principal can see it.
    pub fn to_view(&self, stored: &DavPath) -> Option<DavPath> {
        let m =
            self.mounts.iter().filter(|m| stored.starts_with(&m.stored)).max_by_key(|m| m.stored.segments().len())?;
        stored.rebase(&m.stored, &m.view)
    }
}

pub fn home_of(user: &str) -> Result<DavPath> {
    DavPath::root().join(HOMES)?.join(user)
}

pub fn share_path(share: &str) -> Result<DavPath> {
    DavPath::root().join(SHARES)?.join(share)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> DavPath {
        DavPath::parse(s).unwrap()
    }

    #[test]
    fn home_is_the_root_of_a_users_view() {
        let alice = Principal::user("alice", Flags::default(), &[]).unwrap();
        assert_eq!(alice.to_stored(&p("/docs/a.txt")).unwrap().0, p("/home/alice/docs/a.txt"));
        assert_eq!(alice.to_view(&p("/home/alice/docs")).unwrap(), p("/docs"));
        assert!(alice.to_view(&p("/home/bob/x")).is_none());
    }

    #[test]
    fn a_share_appears_at_the_top_of_the_view_with_its_rights() {
        let alice =
            Principal::user("alice", Flags::default(), &[("team".into(), Rights::parse("rl").unwrap())]).unwrap();
        let (stored, rights) = alice.to_stored(&p("/team/plan.txt")).unwrap();
        assert_eq!(stored, p("/shares/team/plan.txt"));
        assert!(rights.contains(Rights::READ) && !rights.contains(Rights::WRITE));
        assert_eq!(alice.to_view(&p("/shares/team/plan.txt")).unwrap(), p("/team/plan.txt"));
    }

    #[test]
    fn read_only_users_keep_only_read() {
        let r =
            Principal::user("ro", Flags { read_only: true, admin: false }, &[("team".into(), Rights::ALL)]).unwrap();
        assert_eq!(r.to_stored(&p("/x")).unwrap().1, Rights::READ);
        assert_eq!(r.to_stored(&p("/team/x")).unwrap().1, Rights::READ);
    }

    #[test]
    fn administrators_see_the_public_area() {
        let admin = Principal::user("root", Flags { read_only: false, admin: true }, &[]).unwrap();
        assert_eq!(admin.to_stored(&p("/public/a.txt")).unwrap().0, p("/public/a.txt"));
        let user = Principal::user("u", Flags::default(), &[]).unwrap();
        assert_eq!(user.to_stored(&p("/public/a.txt")).unwrap().0, p("/home/u/public/a.txt"));
    }

    #[test]
    fn rights_round_trip_through_letters() {
        assert_eq!(Rights::parse("rwdla").unwrap(), Rights::ALL);
        assert_eq!(Rights::parse("lr").unwrap().to_string(), "rl");
        assert!(Rights::parse("rx").is_err());
    }
}
