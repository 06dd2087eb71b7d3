//! A fresh file system for a benchmark's files, the same for every server in the run.
//!
//! Creating many small files costs what the file system's recent history makes it cost.
//! On ext4 without a journal (this project's build machines), allocating an inode skips
//! every inode freed in the last 60 to 360 seconds, one cached block lookup each; after a
//! test suite or an earlier run deleted a few hundred thousand files, the same server's
//! small PUTs measured anywhere from 3,000 to 27,000 per second, depending on which block
//! group its files landed in. A new ext4 file system with a journal (what `mkfs.ext4`
//! makes by default, and what most hosts run) has no such history.
//!
//! As root, with `mkfs.ext4` at hand, the scratch directory is such a file system: a
//! sparse image in the temp directory, mounted through a loop device, unmounted on drop.
//! Elsewhere, or with `WHARF_BENCH_FS=tmp`, it is a plain temp directory, and the report
//! says so.

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Scratch {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    mounted: bool,
}

/// Room for four 1 GiB uploads and the small files beside them; sparse, so only what is
/// written takes space.
const IMAGE_BYTES: u64 = 16 << 30;

impl Scratch {
    pub fn new() -> Scratch {
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = tmp.path().join("fs");
        std::fs::create_dir_all(&dir).expect("scratch dir");
        let mounted = std::env::var("WHARF_BENCH_FS").map_or(true, |v| v != "tmp") && mount(tmp.path(), &dir);
        if mounted {
            // Should the run be killed, this is what `umount` is for.
            eprintln!("scratch: {} is a fresh ext4 file system", dir.display());
        }
        let scratch = Scratch { _tmp: tmp, dir, mounted };
        // Apache and nginx run as www-data, which must be able to reach the files.
        use std::os::unix::fs::PermissionsExt;
        for p in [scratch._tmp.path(), &scratch.dir] {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        }
        scratch
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// One line for the report: where the files were.
    pub fn describe(&self) -> String {
        if self.mounted {
            format!("a new ext4 file system with a journal ({} GiB sparse image, loop device)", IMAGE_BYTES >> 30)
        } else {
            "a temp directory on the machine's own file system".to_owned()
        }
    }
}

/// Makes and mounts the image; false (with a line saying why) when it can't.
fn mount(tmp: &Path, dir: &Path) -> bool {
    let image = tmp.join("fs.img");
    let made = std::fs::File::create(&image).and_then(|f| f.set_len(IMAGE_BYTES));
    let ok = made.is_ok()
        // Inode tables and journal written now, not by the kernel's lazy-init thread
        // during the measurements.
        && run(Command::new("mkfs.ext4").args(["-q", "-F", "-E", "lazy_itable_init=0,lazy_journal_init=0"]).arg(&image))
        && run(Command::new("mount").args(["-o", "loop"]).arg(&image).arg(dir));
    if !ok {
        eprintln!("scratch: could not mount a fresh ext4 file system; using a temp directory");
        let _ = std::fs::remove_file(&image);
    }
    ok
}

fn run(cmd: &mut Command) -> bool {
    cmd.output().map(|o| o.status.success()).unwrap_or(false)
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if self.mounted && !run(Command::new("umount").arg(&self.dir)) {
            // Lazily, so the temp directory can still go; the servers may hold files open.
            let _ = run(Command::new("umount").arg("-l").arg(&self.dir));
        }
    }
}
