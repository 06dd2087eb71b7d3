//! The data directory's lock. `wharf serve` holds it for as long as it runs; the tools that
//! need the store to themselves (`wharf fsck --repair`, `wharf restore`) take it too, so
//! they refuse to run beside a server instead of deleting a blob an upload is adopting.
//! Administration commands and `wharf backup` work beside a server and never take it.
//!
//! It is an advisory lock on a file of the directory (`flock` on Linux): the kernel
//! releases it when its holder exits, however that happens, so a crash leaves nothing
//! stale behind.
//!
//! On a network file system shared by several machines `flock` may hold only within each
//! machine (SMB, some NFS setups), and SQLite's own locking is no better there: two nodes
//! would corrupt the database. So the holder also writes a *lease* into the file (its
//! machine's boot id, host name and pid, and the time), renewed every [`RENEW`] by a
//! running server. A lease from another machine younger than [`LEASE`] is refused even
//! when `flock` let us in; a lease from this machine needs no age check, since `flock`
//! works between the processes of one kernel.

use std::fs::{File, OpenOptions, TryLockError};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::{Error, Result};

/// The lock file's name in the data directory. Never part of a backup.
pub const LOCK_FILE: &str = "wharf.lock";

/// How often a running server renews its lease.
pub const RENEW: Duration = Duration::from_secs(10);

/// How long a lease from another machine keeps others out after its last renewal.
pub const LEASE: Duration = Duration::from_secs(30);

/// The held lock; dropping it releases it.
#[derive(Debug)]
pub struct DataDirLock {
    file: File,
}

impl DataDirLock {
    /// Takes the lock of `dir` (creating the directory if needed), or returns `None`
    /// when another process of this machine holds it. A live lease of another machine is
    /// an error naming it.
    pub fn try_take(dir: &Path) -> Result<Option<DataDirLock>> {
        let failed = |e: std::io::Error| Error::Internal(format!("cannot lock {}: {e}", dir.display()));
        std::fs::create_dir_all(dir).map_err(failed)?;
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(dir.join(LOCK_FILE))
            .map_err(failed)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Ok(None),
            Err(TryLockError::Error(e)) => return Err(failed(e)),
        }
        let ours = Lease::ours();
        let held = read_lease(&file).map_err(failed)?;
        if let Some(other) = Lease::parse(&held).filter(|l| l.elsewhere(&ours) && l.alive()) {
            return Err(Error::Internal(format!(
                "{} is in use by wharf on {} (pid {}, seen {} s ago), another machine: a network file system \
                 shared by several servers would corrupt the database. Give each server a data directory of \
                 its own; if that machine is gone, start again after {} s",
                dir.display(),
                other.host,
                other.pid,
                now().saturating_sub(other.seen),
                LEASE.as_secs()
            )));
        }
        let lock = DataDirLock { file };
        lock.write(&ours).map_err(failed)?;
        Ok(Some(lock))
    }

    /// Writes the lease afresh; a running server calls this every [`RENEW`]. Refuses if
    /// another machine's lease replaced ours (this one stalled past [`LEASE`]): the
    /// caller reports it, since two servers now use the directory.
    pub fn renew(&self) -> std::io::Result<()> {
        let held = read_lease(&self.file)?;
        let ours = Lease::ours();
        if let Some(other) = Lease::parse(&held).filter(|l| l.elsewhere(&ours)) {
            return Err(std::io::Error::other(format!(
                "the data directory's lease was taken over by wharf on {} (pid {})",
                other.host, other.pid
            )));
        }
        self.write(&ours)
    }

    /// Renews the lease every [`RENEW`] in the background for as long as `lock` is held
    /// (the task ends once the last `Arc` is dropped, which clears the lease).
    pub fn keep_renewed(lock: &std::sync::Arc<DataDirLock>) {
        let lock = std::sync::Arc::downgrade(lock);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(RENEW);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(held) = lock.upgrade() else { return };
                let renewed = tokio::task::spawn_blocking(move || held.renew()).await;
                match renewed.map_err(std::io::Error::other).and_then(|r| r) {
                    Ok(()) => {}
                    Err(e) => tracing::error!(error = %e, "renewing the data directory's lease failed"),
                }
            }
        });
    }

    fn write(&self, lease: &Lease) -> std::io::Result<()> {
        let lease = lease.to_string();
        self.file.write_all_at(lease.as_bytes(), 0)?;
        self.file.set_len(lease.len() as u64)
    }
}

impl Drop for DataDirLock {
    /// A server that stops cleanly leaves no lease: another machine may start at once.
    fn drop(&mut self) {
        let _ = self.file.set_len(0);
    }
}

/// Who holds the lock, as written in the file.
#[derive(Debug, PartialEq)]
struct Lease {
    boot: String,
    host: String,
    pid: u32,
    /// Seconds since the epoch of the last renewal.
    seen: u64,
}

impl Lease {
    fn ours() -> Lease {
        let read = |p: &str| std::fs::read_to_string(p).map(|s| s.trim().to_owned()).unwrap_or_default();
        Lease {
            boot: read("/proc/sys/kernel/random/boot_id"),
            host: read("/proc/sys/kernel/hostname"),
            pid: std::process::id(),
            seen: now(),
        }
    }

    fn parse(text: &str) -> Option<Lease> {
        let field = |name: &str| text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix('=')).map(str::trim);
        Some(Lease {
            boot: field("boot")?.to_owned(),
            host: field("host")?.to_owned(),
            pid: field("pid")?.parse().ok()?,
            seen: field("seen")?.parse().ok()?,
        })
    }

    /// Written by a process of another machine (another kernel) than `ours`.
    fn elsewhere(&self, ours: &Lease) -> bool {
        self.boot != ours.boot
    }

    /// Renewed within the last [`LEASE`].
    fn alive(&self) -> bool {
        now().saturating_sub(self.seen) < LEASE.as_secs()
    }
}

impl std::fmt::Display for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "wharf data directory lease\nboot={}\nhost={}\npid={}\nseen={}\n",
            self.boot, self.host, self.pid, self.seen
        )
    }
}

/// The lease as the file holds it now, read from its start (a lease is a few lines).
fn read_lease(file: &File) -> std::io::Result<String> {
    let mut buf = vec![0; 4096];
    let n = file.read_at(&mut buf, 0)?;
    buf.truncate(n);
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
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

    fn foreign(seen: u64) -> String {
        Lease { boot: "another-kernel".into(), host: "node-b".into(), pid: 77, seen }.to_string()
    }

    #[test]
    fn a_live_lease_of_another_machine_is_refused_with_its_name() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(LOCK_FILE), foreign(now())).unwrap();
        let err = DataDirLock::try_take(dir.path()).expect_err("another machine serves it");
        assert!(err.to_string().contains("node-b (pid 77"), "{err}");
    }

    #[test]
    fn a_lapsed_lease_of_another_machine_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(LOCK_FILE), foreign(now() - LEASE.as_secs() - 1)).unwrap();
        let held = DataDirLock::try_take(dir.path()).unwrap().expect("taken over");
        let lease = Lease::parse(&std::fs::read_to_string(dir.path().join(LOCK_FILE)).unwrap()).unwrap();
        assert_eq!(lease.pid, std::process::id(), "ours now");
        drop(held);
        assert_eq!(std::fs::read_to_string(dir.path().join(LOCK_FILE)).unwrap(), "", "released cleanly: no lease");
    }

    #[test]
    fn renewing_a_lease_another_machine_took_over_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let held = DataDirLock::try_take(dir.path()).unwrap().expect("free");
        held.renew().expect("still ours");
        held.renew().expect("still ours, read from the start again");
        std::fs::write(dir.path().join(LOCK_FILE), foreign(now())).unwrap();
        let err = held.renew().expect_err("taken over");
        assert!(err.to_string().contains("node-b"), "{err}");
    }

    #[test]
    fn a_lease_of_this_machine_left_by_a_crash_is_taken_over_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let crashed = Lease { pid: 1, ..Lease::ours() };
        std::fs::write(dir.path().join(LOCK_FILE), crashed.to_string()).unwrap();
        assert!(DataDirLock::try_take(dir.path()).unwrap().is_some(), "flock already proved its holder gone");
    }
}
