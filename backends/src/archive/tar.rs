//! The tar walk: headers read once, in order, to list members and where their bytes are
//! (an offset of the file for a plain tar, of the decompressed stream for tar.gz and
//! tar.zst). Written here rather than taken from the `tar` crate so that every size the
//! archive declares is capped before anything is allocated by it, and offsets are exact.
//!
//! Understood: v7, ustar (with its name prefix), pax extended headers (`path`,
//! `linkpath`, `size`, `mtime`) and GNU long names and link names. Symbolic links,
//! devices and FIFOs are left out; a hard link is shown as a second name for the member
//! it names, if that member is in the archive (so it never reaches outside it).

use std::collections::HashMap;
use std::io::{self, Read, Seek, SeekFrom};

use super::codec::Scan;
use super::{archive_error, corrupt, safe_path, Data, Format, Index, Limits, Member, SourceReader};
use crate::{Error, Result};

const BLOCK: u64 = 512;
/// Largest pax header or GNU long name accepted: names are short, a bigger one is hostile.
const MAX_META: u64 = 1 << 20;

/// Whether `h` (one 512-byte block) carries a valid header checksum.
pub(super) fn header_checksum_ok(h: &[u8]) -> bool {
    let Some(want) = number(&h[148..156]) else { return false };
    let unsigned: u64 =
        h.iter().enumerate().map(|(i, &b)| if (148..156).contains(&i) { 32 } else { u64::from(b) }).sum();
    let signed: i64 =
        h.iter().enumerate().map(|(i, &b)| if (148..156).contains(&i) { 32 } else { i64::from(b as i8) }).sum();
    want == unsigned || signed >= 0 && want == signed as u64
}

/// The index of a plain tar: member data is skipped by seeking, so only headers are read.
pub(super) fn index_plain(mut reader: SourceReader, limits: &Limits) -> Result<Index> {
    let size = reader.size();
    let mut members = walk(&mut Plain(&mut reader), limits, |offset| Data::Stored { offset })?;
    for m in &mut members {
        if let Data::Stored { offset } = m.data {
            if offset.saturating_add(m.size) > size && m.refused.is_none() {
                m.refused = Some("the archive is cut short in this member".into());
            }
        }
    }
    Ok(Index { format: Format::Tar, members, checkpoints: Vec::new() })
}

/// The index of a compressed tar: the walk reads the whole decompressed stream once, and
/// the scanner records restart points meanwhile.
pub(super) fn index_stream(scan: Box<dyn Scan>, format: Format, limits: &Limits) -> Result<Index> {
    let mut counted = Counted { inner: scan, pos: 0 };
    let members = walk(&mut counted, limits, |offset| Data::Stream { offset })?;
    Ok(Index { format, members, checkpoints: counted.inner.finish() })
}

/// What the walk needs of its input: reading headers, skipping data, and where it is.
trait Input: Read {
    fn skip(&mut self, n: u64) -> io::Result<()>;
    fn pos(&self) -> u64;
}

struct Plain<'a>(&'a mut SourceReader);

impl Read for Plain<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl Input for Plain<'_> {
    fn skip(&mut self, n: u64) -> io::Result<()> {
        let to = self.0.position().saturating_add(n);
        if to > self.0.size() {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the archive is cut short"));
        }
        self.0.seek(SeekFrom::Start(to)).map(drop)
    }
    fn pos(&self) -> u64 {
        self.0.position()
    }
}

struct Counted {
    inner: Box<dyn Scan>,
    pos: u64,
}

impl Read for Counted {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Input for Counted {
    fn skip(&mut self, n: u64) -> io::Result<()> {
        let got = io::copy(&mut self.by_ref().take(n), &mut io::sink())?;
        if got < n {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the archive is cut short"));
        }
        Ok(())
    }
    fn pos(&self) -> u64 {
        self.pos
    }
}

/// Names and times a pax header or GNU long name sets for the next member.
#[derive(Default)]
struct Pending {
    path: Option<String>,
    link: Option<String>,
    size: Option<u64>,
    mtime_ns: Option<i64>,
}

/// Walks headers until the end marker or the end of the input. Damage (a bad header, a
/// cut, a decompressor refusing a bomb) ends the walk: the members before it stay listed,
/// the one it cut is refused, and only an archive with no readable member at all fails.
/// A failure of the source itself (or a cancel) fails the whole walk, so that an index
/// is never stored incomplete for a reason that may pass.
fn walk(input: &mut dyn Input, limits: &Limits, at: impl Fn(u64) -> Data) -> Result<Vec<Member>> {
    let mut w = Walk { members: Vec::new(), by_path: HashMap::new(), total: 0 };
    let result = w.run(input, limits, &at);
    match result {
        Ok(()) => {}
        Err(e) if super::is_over_limit(&e) => return Err(Error::Archive(e.to_string())),
        Err(e) if !matches!(e.kind(), io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof) => {
            return Err(Error::Io(e));
        }
        Err(e) if w.members.is_empty() => return Err(archive_error(e)),
        Err(e) => tracing::warn!(error = %e, "tar archive damaged; members before the damage are listed"),
    }
    Ok(w.members)
}

struct Walk {
    members: Vec<Member>,
    by_path: HashMap<Vec<String>, usize>,
    total: u64,
}

impl Walk {
    fn run(&mut self, input: &mut dyn Input, limits: &Limits, at: &dyn Fn(u64) -> Data) -> io::Result<()> {
        let mut pending = Pending::default();
        let mut h = [0u8; BLOCK as usize];
        loop {
            if !read_block(input, &mut h)? || h.iter().all(|&b| b == 0) {
                return Ok(());
            }
            if !header_checksum_ok(&h) {
                return Err(corrupt(format!("damaged tar header at offset {}", input.pos() - BLOCK)));
            }
            let declared = number(&h[124..136]).ok_or_else(|| corrupt("bad size field in a tar header"))?;
            let kind = h[156];
            match kind {
                b'x' | b'g' | b'L' | b'K' => {
                    let data = read_meta(input, declared)?;
                    match kind {
                        b'x' => pax(&data, &mut pending),
                        b'L' => pending.path = Some(c_string(&data)),
                        b'K' => pending.link = Some(c_string(&data)),
                        _ => {} // global pax headers: nothing Wharf shows depends on them
                    }
                    continue;
                }
                _ => {}
            }
            let size = pending.size.unwrap_or(declared);
            let offset = input.pos();
            let name = pending.path.take().unwrap_or_else(|| header_name(&h));
            let link = pending.link.take().unwrap_or_else(|| c_string(&h[157..257]));
            let mtime_ns = pending.mtime_ns.take().or_else(|| Some(seconds_ns(number(&h[136..148])?)));
            pending = Pending::default();
            let stored = if matches!(kind, b'0' | 0 | b'7' | b'S') { size } else { 0 };
            let m = Member {
                path: Vec::new(),
                dir: kind == b'5',
                size: if kind == b'5' { 0 } else { size },
                modified_ns: mtime_ns.unwrap_or(0),
                data: at(offset),
                crc32: None,
                refused: (kind == b'S').then(|| "sparse files are not supported".to_owned()),
            };
            self.add(m, kind, &name, &link, limits)?;
            if let Err(e) = input.skip(padded(stored)) {
                // Not always the last: a later copy of a name takes the earlier one's place.
                if let Some(cut) = self.members.iter_mut().rev().find(|m| m.data == at(offset)) {
                    cut.refused = Some(format!("the archive is damaged in this member: {e}"));
                }
                return Err(e);
            }
        }
    }

    fn add(&mut self, mut m: Member, kind: u8, name: &str, link: &str, limits: &Limits) -> io::Result<()> {
        let Some(path) = safe_path(name) else {
            tracing::warn!(member = name, "tar member skipped: its name leaves the archive");
            return Ok(());
        };
        if path.is_empty() {
            return Ok(()); // the archive's own root (`./`), which is there anyway
        }
        match kind {
            b'0' | 0 | b'7' | b'5' | b'S' => {}
            b'1' => {
                // A hard link: another name for a member already listed, never a path outside.
                let Some(target) = safe_path(link).and_then(|p| self.by_path.get(&p)).map(|&i| &self.members[i]) else {
                    tracing::warn!(member = name, link, "tar hard link skipped: its target is not in the archive");
                    return Ok(());
                };
                m = Member { path: Vec::new(), ..target.clone() };
            }
            _ => {
                tracing::debug!(member = name, kind, "tar member skipped: a link or special file");
                return Ok(());
            }
        }
        m.path = path;
        self.total = self.total.saturating_add(m.size);
        if self.total > limits.max_total {
            return Err(super::over_limit(format!(
                "the archive holds more than the limit of {} bytes",
                limits.max_total
            )));
        }
        match self.by_path.get(&m.path) {
            Some(&i) => self.members[i] = m, // a later copy of a name replaces the earlier, as tar -x does
            None => {
                if self.members.len() as u64 >= limits.max_members {
                    return Err(super::over_limit(format!(
                        "the archive holds more than {} members",
                        limits.max_members
                    )));
                }
                self.by_path.insert(m.path.clone(), self.members.len());
                self.members.push(m);
            }
        }
        Ok(())
    }
}

/// One block, or `false` at a clean end of input (a tar without its end marker).
fn read_block(input: &mut dyn Input, h: &mut [u8; BLOCK as usize]) -> io::Result<bool> {
    let mut got = 0;
    while got < h.len() {
        match input.read(&mut h[got..]) {
            Ok(0) if got == 0 => return Ok(false),
            Ok(0) => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the archive is cut short in a header")),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof && got == 0 => return Ok(false),
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

fn read_meta(input: &mut dyn Input, size: u64) -> io::Result<Vec<u8>> {
    if size > MAX_META {
        return Err(corrupt(format!("a tar extended header of {size} bytes is over the limit of {MAX_META}")));
    }
    let mut data = vec![0; size as usize];
    input.read_exact(&mut data)?;
    input.skip(padded(size) - size)?;
    Ok(data)
}

/// `n` rounded up to whole blocks; a size within a block of `u64::MAX` (which no archive
/// can hold) stays unrounded rather than wrapping to a small number.
fn padded(n: u64) -> u64 {
    n.div_ceil(BLOCK).checked_mul(BLOCK).unwrap_or(n)
}

/// A header's time in seconds, as nanoseconds; past what those can count (a 12-digit octal
/// or a base-256 field can say more), the latest time they can.
fn seconds_ns(secs: u64) -> i64 {
    i64::try_from(secs).unwrap_or(i64::MAX).saturating_mul(1_000_000_000)
}

/// The name of a ustar header: the prefix field joined on, for POSIX ustar only (GNU tar
/// uses that space for other things).
fn header_name(h: &[u8]) -> String {
    let name = c_string(&h[0..100]);
    if &h[257..263] == b"ustar\0" {
        let prefix = c_string(&h[345..500]);
        if !prefix.is_empty() {
            return format!("{prefix}/{name}");
        }
    }
    name
}

/// Text up to the first NUL; bytes that are not UTF-8 are read as Latin-1 (old tars).
fn c_string(b: &[u8]) -> String {
    let b = b.split(|&c| c == 0).next().unwrap_or_default();
    match std::str::from_utf8(b) {
        Ok(s) => s.to_owned(),
        Err(_) => b.iter().map(|&c| char::from(c)).collect(),
    }
}

/// A numeric field: octal text (spaces and NULs around it), or GNU's base-256 form.
fn number(f: &[u8]) -> Option<u64> {
    if f.first().is_some_and(|&b| b & 0x80 != 0) {
        if f[0] & 0x40 != 0 {
            return None; // negative
        }
        let mut v: u64 = u64::from(f[0] & 0x3f);
        for &b in &f[1..] {
            v = v.checked_mul(256)?.checked_add(u64::from(b))?;
        }
        return Some(v);
    }
    let s = std::str::from_utf8(f).ok()?.trim_matches(|c: char| c == ' ' || c == '\0');
    if s.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(s, 8).ok()
}

/// Records of a pax extended header: `LEN key=value\n`, LEN counting the whole record.
fn pax(data: &[u8], p: &mut Pending) {
    let mut rest = data;
    while !rest.is_empty() {
        let Some(sp) = rest.iter().position(|&b| b == b' ') else { return };
        let Some(len) = std::str::from_utf8(&rest[..sp]).ok().and_then(|s| s.parse::<usize>().ok()) else { return };
        if len <= sp + 1 || len > rest.len() {
            return;
        }
        let record = &rest[sp + 1..len];
        let record = record.strip_suffix(b"\n").unwrap_or(record);
        if let Some(eq) = record.iter().position(|&b| b == b'=') {
            let value = String::from_utf8_lossy(&record[eq + 1..]).into_owned();
            match &record[..eq] {
                b"path" => p.path = Some(value),
                b"linkpath" => p.link = Some(value),
                b"size" => p.size = value.parse().ok(),
                b"mtime" => p.mtime_ns = pax_time(&value),
                _ => {}
            }
        }
        rest = &rest[len..];
    }
}

/// A pax time: decimal seconds with an optional fraction.
fn pax_time(v: &str) -> Option<i64> {
    let (secs, frac) = v.split_once('.').unwrap_or((v, ""));
    let secs: i64 = secs.parse().ok()?;
    let digits: String = frac.chars().take(9).collect();
    let ns = if digits.is_empty() { 0 } else { format!("{digits:0<9}").parse::<i64>().ok()? };
    secs.checked_mul(1_000_000_000)?.checked_add(if secs < 0 { -ns } else { ns })
}

#[cfg(test)]
mod tests;
