//! The host folder's invariants after every step, read from the disk itself rather than
//! through the model: it holds exactly what the reference says the share holds (names as
//! written, NFC, and bytes); no temporary file `.wharf-tmp-*` outlives the operation that
//! made it; every row of dead properties is stamped with the object now at its path (one
//! left for an object gone is never shown, so only this finds it); every lock rooted in
//! the folder has something at its root.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::invariants::{fetch_all, Db};

use crate::reference::{HOST_ROOT, TEMP_PREFIX};
use crate::state::{show, LockRow};

/// Paths below the folder's root, as names, with a file's bytes or `None` for a folder.
pub type Folder = BTreeMap<Vec<String>, Option<Vec<u8>>>;

pub async fn check(root: &Path, expected: &Folder, db: &Db, locks: &BTreeSet<LockRow>) -> Vec<String> {
    let mut out = Vec::new();
    let mut found = Folder::new();
    walk(root, &mut Vec::new(), &mut found, &mut out);
    for k in found.keys().chain(expected.keys()).collect::<BTreeSet<_>>() {
        let (disk, want) = (found.get(k), expected.get(k));
        if disk != want {
            let desc = |e: Option<&Option<Vec<u8>>>| match e {
                None => "nothing".to_owned(),
                Some(None) => "a folder".to_owned(),
                Some(Some(b)) => format!("{} bytes #{}", b.len(), &blake3::hash(b).to_hex()[..8]),
            };
            out.push(format!("on disk at {}: {}, reference {}", show(k), desc(disk), desc(want)));
        }
    }
    match props_rows(db).await {
        Ok(rows) => {
            for (path, node) in rows {
                if node_at(&root.join(path.trim_start_matches('/'))).as_ref() != Some(&node) {
                    out.push(format!("dead properties of object {node} at {path:?}, which is not there"));
                }
            }
        }
        Err(e) => out.push(format!("mounted_props unreadable: {e}")),
    }
    for l in locks.iter().filter(|l| l.root.starts_with(&HOST_ROOT.map(String::from))) {
        let below: PathBuf = l.root[HOST_ROOT.len()..].iter().collect();
        if std::fs::symlink_metadata(root.join(below)).is_err() {
            out.push(format!("lock {} rooted at {}, which is not on disk", l.token, show(&l.root)));
        }
    }
    out
}

fn walk(dir: &Path, at: &mut Vec<String>, found: &mut Folder, out: &mut Vec<String>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => return out.push(format!("{} unreadable: {e}", dir.display())),
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            out.push(format!("a name that is not UTF-8 on disk: {}", path.display()));
            continue;
        };
        at.push(name.clone());
        if name.starts_with(TEMP_PREFIX) {
            out.push(format!("temporary file left behind: {}", show(at)));
        } else {
            match std::fs::symlink_metadata(&path) {
                Ok(m) if m.is_dir() => {
                    found.insert(at.clone(), None);
                    walk(&path, at, found, out);
                }
                Ok(m) if m.is_file() => {
                    found.insert(at.clone(), std::fs::read(&path).ok());
                }
                Ok(_) => out.push(format!("neither file nor folder on disk: {}", show(at))),
                Err(e) => out.push(format!("{} unreadable: {e}", path.display())),
            }
        }
        at.pop();
    }
}

/// Each (path, object) that dead properties of the folder are stored for.
async fn props_rows(db: &Db) -> sqlx::Result<Vec<(String, String)>> {
    fetch_all!(db, (String, String), "SELECT DISTINCT path, node FROM mounted_props ORDER BY path")
}

/// The identity the model stamps dead properties with (`NodeId::key`): device, inode and
/// birth time where the file system records one.
fn node_at(path: &Path) -> Option<String> {
    let m = std::fs::metadata(path).ok()?;
    let birth = m.created().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
    let birth_ns = birth.map_or(0, |d| d.as_nanos() as i64);
    Some(format!("{:x}:{:x}:{:x}", m.dev(), m.ino(), birth_ns))
}
