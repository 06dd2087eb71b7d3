//! What differs on the share `host`, a folder of the host served in place (README, "Host
//! folders"; `dav-model/src/mount/`). Everything protocol-level is the same as in the store:
//! rights, locks, dead properties, conditions. What differs:
//!
//! - names: the host's file system holds at most 255 bytes a name, so a longer one (which
//!   the store takes) is refused with 400 as soon as it is looked up in an existing
//!   folder; in a missing one, the look-up finds nothing first. Names starting with
//!   `.wharf-tmp-` are the folder's own temporary files: never found, refused to writers
//!   (403) once everything else allowed the write;
//! - quota: the share's cap counts the folder's files, the store's quota the store's
//!   (`Reference::check_quota`);
//! - COPY and MOVE between the folder and the store go member by member (`transfer.rs`).

use std::collections::BTreeMap;

use super::{parent, Reference};
use crate::state::{Key, Outcome};

/// Linux's NAME_MAX, in bytes.
const NAME_MAX: usize = 255;

/// What the names of the host folder's own temporary files start with.
pub const TEMP_PREFIX: &str = ".wharf-tmp-";

/// The two trees a stored path can lie in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tree {
    /// The native store: rows in SQL, bytes in the blob store.
    Store,
    /// The folder served as the share `host` (its root included).
    Host,
}

/// Where the host folder is mounted.
pub const HOST_ROOT: [&str; 2] = ["shares", "host"];

impl Tree {
    pub fn of(k: &Key) -> Tree {
        if k.len() >= HOST_ROOT.len() && k[..HOST_ROOT.len()] == HOST_ROOT {
            Tree::Host
        } else {
            Tree::Store
        }
    }
}

impl Reference {
    /// Whether something is at `k`, as a look-up there answers: on the host, a name too
    /// long for its file system in an existing folder is 400 instead.
    pub(super) fn look(&self, k: &Key) -> Result<bool, Outcome> {
        let too_long = k.last().is_some_and(|n| n.len() > NAME_MAX);
        if Tree::of(k) == Tree::Host && too_long && self.is_collection(&parent(k)) {
            return Err(Outcome::BadPath);
        }
        Ok(k.is_empty() || self.nodes.contains_key(k))
    }

    /// Whether the tree of `k` can create that name: 403 for the host folder's reserved
    /// names (too long ones were refused by [`Reference::look`] already).
    pub(super) fn creatable(k: &Key) -> Result<(), Outcome> {
        if Tree::of(k) == Tree::Host && k.last().is_some_and(|n| n.starts_with(TEMP_PREFIX)) {
            return Err(Outcome::Forbidden);
        }
        Ok(())
    }

    /// What the host folder should hold: each path below its root (as names) with a file's
    /// bytes, or `None` for a folder.
    pub fn host_folder(&self) -> BTreeMap<Vec<String>, Option<Vec<u8>>> {
        let below = self.nodes.iter().filter(|(k, _)| Tree::of(k) == Tree::Host && k.len() > HOST_ROOT.len());
        below.map(|(k, n)| (k[HOST_ROOT.len()..].to_vec(), n.content.clone())).collect()
    }
}
