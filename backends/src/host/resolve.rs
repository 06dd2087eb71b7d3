//! From model paths to open file descriptors, never leaving the root.
//!
//! The common case costs one `openat2` for the whole path: every segment's decoded bytes,
//! resolved beneath the root. Only when that finds nothing and a segment could be the NFC
//! spelling of a non-NFC name on disk (a non-ASCII segment) do we go segment by segment,
//! scanning directories for the twin; an escaped non-NFC name is always checked that way,
//! because it is valid only while its plain spelling is taken (see `names`).
//!
//! Symbolic links are followed only as the last name of a path and only to files inside
//! the tree. A link to a folder would show one folder under two paths (a lock or a
//! property on one would not cover the other) and a link to an ancestor would make every
//! recursive walk (Depth infinity, a zip of the folder) endless.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::OFlags;
use rustix::io::Errno;

use super::fs::{self, DIR_PATH};
use super::names::{self, Canon};
use super::Inner;

/// What a name in a directory stands for on disk.
pub(super) enum Entry {
    /// An entry exists under these bytes (perhaps a link, not followed).
    Found(CString),
    /// Nothing yet; creating the name means creating these bytes.
    Absent(CString),
    /// The name can stand for nothing (an alias, a reserved name, an escaped twin whose
    /// plain form is free): absent for readers, refused to writers.
    Nameless,
}

/// The first try at a path: all segments decoded.
struct Plan {
    bytes: Vec<u8>,
    /// A miss may be a non-NFC twin on disk.
    fold: bool,
    /// A hit must be confirmed by a scan (an escaped twin).
    verify: bool,
}

fn plan(segs: &[String]) -> Option<Plan> {
    let mut plan = Plan { bytes: Vec::new(), fold: false, verify: false };
    for seg in segs {
        match names::canon(seg) {
            Canon::Alias => return None,
            Canon::Plain { fold } => plan.fold |= fold,
            Canon::EscapedFold => plan.verify = true,
        }
        if !plan.bytes.is_empty() {
            plan.bytes.push(b'/');
        }
        plan.bytes.extend_from_slice(&names::decode(seg));
    }
    Some(plan)
}

/// The disk bytes of `segs` when one `openat2` of them settles what the path names (it
/// may still find nothing, which then needs the usual look-up's NFC twin search).
pub(super) fn direct_bytes(segs: &[String]) -> Option<Vec<u8>> {
    plan(segs).filter(|plan| !plan.verify).map(|plan| plan.bytes)
}

fn enoent() -> io::Error {
    io::Error::from(Errno::NOENT)
}

impl Inner {
    pub(super) fn root_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Opens `segs` (links inside the tree followed) with `flags`, and returns the disk
    /// path it took, relative to the root. Names that stand for nothing are ENOENT.
    pub(super) fn open(&self, segs: &[String], flags: OFlags) -> io::Result<(OwnedFd, Vec<u8>)> {
        let plan = plan(segs).ok_or_else(enoent)?;
        if !plan.verify {
            match self.open_bytes(&plan.bytes, flags) {
                Err(e) if plan.fold && fs::is(&e, Errno::NOENT) => {}
                result => return result.map(|fd| (fd, plan.bytes)),
            }
        }
        let bytes = self.slow_path(segs)?;
        self.open_bytes(&bytes, flags).map(|fd| (fd, bytes))
    }

    /// One `openat2` when the path holds no link (the usual case). Otherwise only the last
    /// name may be one, and only to a file: anything else is ELOOP, which callers treat
    /// as absent.
    fn open_bytes(&self, bytes: &[u8], flags: OFlags) -> io::Result<OwnedFd> {
        match fs::beneath_no_links(self.root_fd(), bytes, flags) {
            Err(e) if fs::is(&e, Errno::LOOP) => {}
            result => return result,
        }
        let parent = bytes.iter().rposition(|&b| b == b'/').map_or(&[][..], |i| &bytes[..i]);
        fs::beneath_no_links(self.root_fd(), parent, DIR_PATH)?;
        let fd = fs::beneath(self.root_fd(), bytes, flags)?;
        if fs::fstat(fd.as_fd())?.is_dir() {
            return Err(io::Error::from(Errno::LOOP));
        }
        Ok(fd)
    }

    /// The parent directory of `segs` (resolution-only handle) and its disk path, for
    /// operations that act on the last name itself, never through it.
    pub(super) fn parent(&self, segs: &[String]) -> io::Result<(OwnedFd, Vec<u8>)> {
        let parent = segs.split_last().map_or(&[][..], |(_, parent)| parent);
        self.open(parent, DIR_PATH)
    }

    /// Segment by segment: each directory on the way is opened beneath the root (none of
    /// them through a link) and the segment looked up in it.
    fn slow_path(&self, segs: &[String]) -> io::Result<Vec<u8>> {
        let mut path = Vec::new();
        for seg in segs {
            let dir = fs::beneath_no_links(self.root_fd(), &path, DIR_PATH)?;
            let bytes = match entry(dir.as_fd(), seg)? {
                Entry::Found(b) | Entry::Absent(b) => b,
                Entry::Nameless => return Err(enoent()),
            };
            path = fs::join(&path, bytes.as_bytes());
        }
        Ok(path)
    }
}

/// Looks `name` up in `dir`: its decoded bytes if present; else, for a name that may be
/// a fold, the entry a listing would show under it. ASCII names cost one `statx` at most.
pub(super) fn entry(dir: BorrowedFd<'_>, name: &str) -> io::Result<Entry> {
    let fold = match names::canon(name) {
        Canon::Alias => return Ok(Entry::Nameless),
        Canon::EscapedFold => return Ok(scan(dir, name)?.map_or(Entry::Nameless, Entry::Found)),
        Canon::Plain { fold } => fold,
    };
    let decoded = fs::cstring(&names::decode(name))?;
    match fs::lstat_at(dir, &decoded) {
        Ok(_) => Ok(Entry::Found(decoded)),
        Err(e) if fs::is(&e, Errno::NOENT) && fold => Ok(scan(dir, name)?.map_or(Entry::Absent(decoded), Entry::Found)),
        Err(e) if fs::is(&e, Errno::NOENT) => Ok(Entry::Absent(decoded)),
        Err(e) => Err(e),
    }
}

/// The entry of `dir` that a listing shows as `name`, by the listing's own rules, so
/// that what is listed is exactly what can be reached.
fn scan(dir: BorrowedFd<'_>, name: &str) -> io::Result<Option<CString>> {
    let mut handle = fs::open_dir(dir)?;
    let mut entries = fs::read_names(&mut handle)?;
    entries.retain(|e| !names::is_temp(e.as_bytes()));
    let bytes: Vec<&[u8]> = entries.iter().map(|e| e.as_bytes()).collect();
    let shown = names::listing(&bytes);
    let at = shown.iter().position(|n| n.as_deref() == Some(name));
    Ok(at.map(|i| entries.swap_remove(i)))
}
