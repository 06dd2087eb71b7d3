//! The data directory's lock. `wharf serve` holds it for as long as it runs; the tools that
//! need the store to themselves (`wharf fsck --repair`, `wharf restore`) take it too, so
//! they refuse to run beside a server instead of deleting a blob an upload is adopting.
//! Administration commands and `wharf backup` work beside a server and never take it.
//!
//! It is an advisory lock on a file of the directory (`flock` on Linux): the kernel
//! releases it when its holder exits, however that happens, so a crash leaves nothing
//! stale behind.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::Path;

use crate::{Error, Result};

/// The lock file's name in the data directory. Never part of a backup.
pub const LOCK_FILE: &str = "wharf.lock";

/// The held lock; dropping it releases it.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
}

impl DataDirLock {
    /// Takes the lock of `dir` (creating the directory if needed), or returns `None`
    /// when another process holds it.
    pub fn try_take(dir: &Path) -> Result<Option<DataDirLock>> {
        let failed = |e: std::io::Error| Error::Internal(format!("cannot lock {}: {e}", dir.display()));
        std::fs::create_dir_all(dir).map_err(failed)?;
        let file =
            OpenOptions::new().create(true).truncate(false).write(true).open(dir.join(LOCK_FILE)).map_err(failed)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(DataDirLock { _file: file })),
            Err(TryLockError::WouldBlock) => Ok(None),
            Err(TryLockError::Error(e)) => Err(failed(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_one_holder_at_a_time_and_free_again_once_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let held = DataDirLock::try_take(dir.path()).unwrap().expect("free at first");
        assert!(DataDirLock::try_take(dir.path()).unwrap().is_none(), "taken");
        drop(held);
        assert!(DataDirLock::try_take(dir.path()).unwrap().is_some(), "released");
    }
}
