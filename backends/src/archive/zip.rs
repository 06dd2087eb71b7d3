//! Zip archives, read by hand: the central directory is the index, each member's bytes
//! are found through its local header, and deflated members are inflated on demand.
//!
//! No zip crate: the parts Wharf needs are small (end records, central entries, a few
//! extra fields), and reading them here lets every declared size and count be checked
//! against the real file before anything is allocated or trusted.

use std::collections::HashMap;
use std::io::{self, Read, Seek, SeekFrom};

use super::{archive_error, corrupt, safe_path, Data, Format, Index, Limits, Member, SourceReader};
use crate::{Error, Result};

const EOCD_SIG: u32 = 0x0605_4b50;
const EOCD64_LOCATOR_SIG: u32 = 0x0706_4b50;
const EOCD64_SIG: u32 = 0x0606_4b50;
const CENTRAL_SIG: u32 = 0x0201_4b50;
const LOCAL_SIG: u32 = 0x0403_4b50;
const EOCD_LEN: u64 = 22;
const CENTRAL_LEN: u64 = 46;
const LOCAL_LEN: u64 = 30;
/// The value a 32-bit field holds when the real one is in the ZIP64 extra field.
const FULL32: u64 = 0xFFFF_FFFF;

const FLAG_ENCRYPTED: u16 = 1;
const FLAG_UTF8: u16 = 1 << 11;
const EXTRA_ZIP64: u16 = 0x0001;
const EXTRA_TIMESTAMP: u16 = 0x5455;
const EXTRA_UNICODE_PATH: u16 = 0x7075;
const HOST_UNIX: u16 = 3;
const DOS_DIRECTORY: u32 = 0x10;
const S_IFMT: u32 = 0o170_000;
const S_IFDIR: u32 = 0o040_000;
const S_IFLNK: u32 = 0o120_000;

/// Below this size a member is never refused for its ratio: a small file of zeros or
/// repeated text compresses extremely well, yet costs nothing to inflate.
const RATIO_FLOOR: u64 = 1 << 20;

/// Reads the central directory (and each member's local header) into an index.
pub(super) fn index(mut reader: SourceReader, limits: &Limits) -> Result<Index> {
    let dir = find_directory(&mut reader).map_err(archive_error)?;
    if dir.entries > limits.max_members {
        return Err(Error::Archive(format!(
            "the zip holds {} members, over the limit of {}",
            dir.entries, limits.max_members
        )));
    }
    let entries = read_directory(&mut reader, &dir).map_err(archive_error)?;
    let mut members: Vec<Option<Member>> = Vec::with_capacity(entries.len());
    let mut seen: HashMap<Vec<String>, usize> = HashMap::new();
    let mut total = 0u64;
    for e in &entries {
        let Some((path, dir)) = listed_path(e) else { continue };
        let member =
            if dir { directory(e, path) } else { file(&mut reader, e, path, limits).map_err(archive_error)? };
        total = total.saturating_add(member.size);
        if total > limits.max_total {
            return Err(Error::Archive(format!(
                "the zip's members hold more than {} bytes uncompressed, the limit",
                limits.max_total
            )));
        }
        if let Some(earlier) = seen.insert(member.path.clone(), members.len()) {
            tracing::warn!(member = %e.name, "zip member named twice: the later entry wins");
            members[earlier] = None;
        }
        members.push(Some(member));
    }
    Ok(Index { format: Format::Zip, members: members.into_iter().flatten().collect(), checkpoints: vec![] })
}

/// A reader of a deflated member's bytes, positioned at its start. It yields exactly
/// `size` bytes or fails with `InvalidData`: a stream that ends early or runs on is
/// damage, and must not reach a client as a shorter or longer file.
pub(super) fn inflate(
    mut reader: SourceReader,
    offset: u64,
    compressed: u64,
    size: u64,
) -> io::Result<impl Read + Send> {
    reader.seek(SeekFrom::Start(offset))?;
    Ok(Exact { inner: flate2::read::DeflateDecoder::new(reader.take(compressed)), left: size })
}

/// Holds a reader to exactly `left` more bytes.
struct Exact<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 || out.is_empty() {
            return self.check_end().map(|()| 0);
        }
        let want = out.len().min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut out[..want]).map_err(damaged)?;
        if n == 0 {
            return Err(corrupt("zip member's compressed data ends before its size"));
        }
        self.left -= n as u64;
        if self.left == 0 {
            // Checked with the last byte, so a caller reading exactly the size learns of
            // a stream that runs on.
            self.check_end()?;
        }
        Ok(n)
    }
}

impl<R: Read> Exact<R> {
    /// Fails unless the stream has ended where the member's size says, or isn't there yet.
    fn check_end(&mut self) -> io::Result<()> {
        if self.left > 0 {
            return Ok(());
        }
        match self.inner.read(&mut [0u8; 1]).map_err(damaged)? {
            0 => Ok(()),
            _ => Err(corrupt("zip member inflates to more than its size")),
        }
    }
}

/// The inflater reports a malformed stream as `InvalidInput`; to callers it is damage to
/// the archive (`InvalidData`). Errors of the source itself pass unchanged.
fn damaged(e: io::Error) -> io::Error {
    match e.kind() {
        io::ErrorKind::InvalidInput => corrupt(format!("zip member's compressed data is damaged: {e}")),
        _ => e,
    }
}

/// Where the central directory is, as the end records state it (checked against the file).
struct Directory {
    offset: u64,
    size: u64,
    entries: u64,
}

/// Finds the end of central directory record (and its ZIP64 form, if a locator precedes it).
fn find_directory(r: &mut SourceReader) -> io::Result<Directory> {
    let file = r.size();
    let tail_len = file.min(EOCD_LEN + 0xFFFF);
    let start = file - tail_len;
    let mut tail = vec![0u8; tail_len as usize];
    r.seek(SeekFrom::Start(start))?;
    r.read_exact(&mut tail)?;
    let at = find_eocd(&tail)
        .ok_or_else(|| corrupt("not a readable zip: end of central directory not found (is the file cut short?)"))?;
    let eocd = &tail[at..];
    let eocd_pos = start + at as u64;
    let split = |disk: u16| disk != 0 && disk != 0xFFFF;
    if split(le16(eocd, 4)) || split(le16(eocd, 6)) {
        return Err(corrupt("split (multi-part) zip archives are not supported"));
    }
    let mut dir =
        Directory { entries: le16(eocd, 10).into(), size: le32(eocd, 12).into(), offset: le32(eocd, 16).into() };
    let mut end = eocd_pos;
    if eocd_pos >= 20 {
        let mut locator = [0u8; 20];
        r.seek(SeekFrom::Start(eocd_pos - 20))?;
        r.read_exact(&mut locator)?;
        if le32(&locator, 0) == EOCD64_LOCATOR_SIG {
            (dir, end) = read_eocd64(r, &locator, eocd_pos - 20)?;
        }
    }
    let fits = dir.offset.checked_add(dir.size).is_some_and(|e| e <= end);
    if !fits {
        return Err(corrupt(format!(
            "zip central directory ({} bytes at {}) runs past the end of the archive",
            dir.size, dir.offset
        )));
    }
    if dir.entries.saturating_mul(CENTRAL_LEN) > dir.size {
        return Err(corrupt(format!(
            "zip central directory claims {} entries, more than its {} bytes can hold",
            dir.entries, dir.size
        )));
    }
    Ok(dir)
}

/// The end record's place in `tail`: the last signature whose comment ends the file, or
/// failing that (bytes appended after the comment) the last one whose comment fits.
fn find_eocd(tail: &[u8]) -> Option<usize> {
    let last = tail.len().checked_sub(EOCD_LEN as usize)?;
    let mut fallback = None;
    for i in (0..=last).rev().filter(|&i| le32(&tail[i..], 0) == EOCD_SIG) {
        let end = i + EOCD_LEN as usize + usize::from(le16(&tail[i..], 20));
        if end == tail.len() {
            return Some(i);
        }
        if end < tail.len() && fallback.is_none() {
            fallback = Some(i);
        }
    }
    fallback
}

/// The ZIP64 end record the locator points at, and where the central directory must end.
fn read_eocd64(r: &mut SourceReader, locator: &[u8], locator_pos: u64) -> io::Result<(Directory, u64)> {
    if le32(locator, 16) > 1 {
        return Err(corrupt("split (multi-part) zip archives are not supported"));
    }
    let at = le64(locator, 8);
    if at.checked_add(56).is_none_or(|e| e > locator_pos) {
        return Err(corrupt("zip64 end of central directory lies outside the archive"));
    }
    let mut rec = [0u8; 56];
    r.seek(SeekFrom::Start(at))?;
    r.read_exact(&mut rec)?;
    if le32(&rec, 0) != EOCD64_SIG {
        return Err(corrupt("zip64 end of central directory not found where its locator says"));
    }
    if le32(&rec, 16) != 0 || le32(&rec, 20) != 0 {
        return Err(corrupt("split (multi-part) zip archives are not supported"));
    }
    Ok((Directory { entries: le64(&rec, 32), size: le64(&rec, 40), offset: le64(&rec, 48) }, at))
}

/// One central directory entry, as the archive states it (ZIP64 values applied).
struct Entry {
    made_by: u16,
    flags: u16,
    method: u16,
    dos_time: u16,
    dos_date: u16,
    crc32: u32,
    compressed: u64,
    size: u64,
    local: u64,
    external: u32,
    name: String,
    /// From the extended timestamp extra field, seconds since 1970.
    mtime: Option<u32>,
}

fn read_directory(r: &mut SourceReader, dir: &Directory) -> io::Result<Vec<Entry>> {
    r.seek(SeekFrom::Start(dir.offset))?;
    let mut cd = io::BufReader::with_capacity(1 << 16, r.by_ref().take(dir.size));
    // `entries` was checked against the directory's size, itself within the file; the
    // vector still grows as entries are read, not by what the archive declares.
    let mut entries = Vec::with_capacity(dir.entries.min(1 << 12) as usize);
    for _ in 0..dir.entries {
        entries.push(read_entry(&mut cd).map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => corrupt("zip central directory is shorter than its entries"),
            _ => e,
        })?);
    }
    Ok(entries)
}

fn read_entry(r: &mut impl Read) -> io::Result<Entry> {
    let mut h = [0u8; CENTRAL_LEN as usize];
    r.read_exact(&mut h)?;
    if le32(&h, 0) != CENTRAL_SIG {
        return Err(corrupt("zip central directory entry has a bad signature"));
    }
    let mut raw = vec![0u8; le16(&h, 28).into()];
    r.read_exact(&mut raw)?;
    let mut extra = vec![0u8; le16(&h, 30).into()];
    r.read_exact(&mut extra)?;
    let mut comment = vec![0u8; le16(&h, 32).into()];
    r.read_exact(&mut comment)?;
    let flags = le16(&h, 8);
    let mut e = Entry {
        made_by: le16(&h, 4),
        flags,
        method: le16(&h, 10),
        dos_time: le16(&h, 12),
        dos_date: le16(&h, 14),
        crc32: le32(&h, 16),
        compressed: le32(&h, 20).into(),
        size: le32(&h, 24).into(),
        local: le32(&h, 42).into(),
        external: le32(&h, 38),
        name: decode_name(&raw, flags, &extra),
        mtime: field(&extra, EXTRA_TIMESTAMP).and_then(ext_mtime),
    };
    apply_zip64(&mut e, field(&extra, EXTRA_ZIP64).unwrap_or(&[]))?;
    Ok(e)
}

/// Replaces each 32-bit field that is all ones by the next 64-bit value of the ZIP64
/// extra field, in the order the format fixes: size, compressed size, offset.
fn apply_zip64(e: &mut Entry, mut data: &[u8]) -> io::Result<()> {
    for (value, what) in [(&mut e.size, "size"), (&mut e.compressed, "compressed size"), (&mut e.local, "offset")] {
        if *value == FULL32 {
            let Some((v, rest)) = data.split_first_chunk::<8>() else {
                return Err(corrupt(format!("zip member {:?}: its zip64 extra field lacks its {what}", e.name)));
            };
            *value = u64::from_le_bytes(*v);
            data = rest;
        }
    }
    Ok(())
}

/// The fields of an extra block: (id, data). A malformed tail (some writers pad) ends it.
fn extra_fields(mut extra: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        let (head, rest) = extra.split_first_chunk::<4>()?;
        let len = usize::from(u16::from_le_bytes([head[2], head[3]]));
        let data = rest.get(..len)?;
        extra = &rest[len..];
        Some((u16::from_le_bytes([head[0], head[1]]), data))
    })
}

fn field(extra: &[u8], id: u16) -> Option<&[u8]> {
    extra_fields(extra).find(|(i, _)| *i == id).map(|(_, d)| d)
}

/// The modification time of an extended timestamp field (flag bit 0), unsigned as
/// Info-ZIP writes it past 2038.
fn ext_mtime(data: &[u8]) -> Option<u32> {
    let (&flags, rest) = data.split_first()?;
    let t = rest.first_chunk::<4>()?;
    (flags & 1 != 0).then(|| u32::from_le_bytes(*t))
}

/// A member's name as text: UTF-8 when the entry says so, else the Info-ZIP Unicode Path
/// field if it still matches the name (its CRC says the name was not changed by a tool
/// unaware of the field), else UTF-8 if the bytes are valid UTF-8 (Info-ZIP on Unix
/// stores the file system's UTF-8 names without setting the flag; CP437 text is almost
/// never valid UTF-8 once it has a byte over 0x7F), else CP437, the format's original code
/// page, which decodes any bytes, so every name stays readable.
fn decode_name(raw: &[u8], flags: u16, extra: &[u8]) -> String {
    if flags & FLAG_UTF8 == 0 {
        if let Some(s) = field(extra, EXTRA_UNICODE_PATH).and_then(|d| unicode_path(raw, d)) {
            return s;
        }
    }
    match std::str::from_utf8(raw) {
        Ok(s) => s.to_owned(),
        Err(_) => raw.iter().map(|&b| cp437(b)).collect(),
    }
}

fn unicode_path(raw: &[u8], data: &[u8]) -> Option<String> {
    let (&version, rest) = data.split_first()?;
    let (crc, name) = rest.split_first_chunk::<4>()?;
    let mut sum = flate2::Crc::new();
    sum.update(raw);
    if version != 1 || u32::from_le_bytes(*crc) != sum.sum() {
        return None;
    }
    String::from_utf8(name.to_vec()).ok()
}

/// What an entry shows as: its path and whether it is a directory, or `None` (logged) for
/// an entry that must not appear: an unsafe name, the root itself, a symbolic link.
fn listed_path(e: &Entry) -> Option<(Vec<String>, bool)> {
    let unix_mode = (e.made_by >> 8 == HOST_UNIX).then_some((e.external >> 16) & S_IFMT);
    let skip = |why: &str| tracing::warn!(member = %e.name, "zip member skipped: {why}");
    let Some(path) = safe_path(&e.name) else {
        skip("its name leads outside the archive or holds control characters");
        return None;
    };
    if path.is_empty() {
        skip("it names the archive's root");
        return None;
    }
    if unix_mode == Some(S_IFLNK) {
        skip("symbolic links are not followed");
        return None;
    }
    let dir = e.name.ends_with(['/', '\\']) || e.external & DOS_DIRECTORY != 0 || unix_mode == Some(S_IFDIR);
    Some((path, dir))
}

fn directory(e: &Entry, path: Vec<String>) -> Member {
    Member {
        path,
        dir: true,
        size: 0,
        modified_ns: modified_ns(e),
        data: Data::Stored { offset: 0 },
        crc32: None,
        refused: None,
    }
}

/// A file member, refused (but listed) if it can't or mustn't be read.
fn file(r: &mut SourceReader, e: &Entry, path: Vec<String>, limits: &Limits) -> io::Result<Member> {
    let mut refused = refusal(e, limits);
    let mut offset = 0;
    if refused.is_none() {
        match locate(r, e)? {
            Ok(start) => offset = start,
            Err(why) => refused = Some(why),
        }
    }
    if let Some(why) = &refused {
        tracing::warn!(member = %e.name, "zip member listed but refused: {why}");
    }
    let data = match e.method {
        8 => Data::Deflated { offset, compressed: e.compressed },
        _ => Data::Stored { offset },
    };
    Ok(Member { path, dir: false, size: e.size, modified_ns: modified_ns(e), data, crc32: Some(e.crc32), refused })
}

/// Why a member can't be read, judged from its central entry alone.
fn refusal(e: &Entry, limits: &Limits) -> Option<String> {
    if e.flags & FLAG_ENCRYPTED != 0 {
        return Some("it is encrypted".into());
    }
    match e.method {
        0 if e.compressed != e.size => Some("its stored size disagrees with its compressed size".into()),
        8 if e.size > RATIO_FLOOR && e.size > limits.max_ratio.saturating_mul(e.compressed.max(1)) => {
            Some(format!("compression ratio over the limit of {}", limits.max_ratio))
        }
        0 | 8 => None,
        m => Some(format!("compression method {m} is not supported")),
    }
}

/// Where a member's data begins: after its local header, whose name and extra lengths
/// may differ from the central entry's. `Ok(Err(why))` for a member whose header or
/// data is not all there (an archive cut short, or lying): it is refused, the rest served.
fn locate(r: &mut SourceReader, e: &Entry) -> io::Result<std::result::Result<u64, String>> {
    let file = r.size();
    if e.local.checked_add(LOCAL_LEN).is_none_or(|end| end > file) {
        return Ok(Err("its local header lies past the end of the archive (cut short?)".into()));
    }
    skip_to(r, e.local)?;
    let mut h = [0u8; LOCAL_LEN as usize];
    r.read_exact(&mut h)?;
    if le32(&h, 0) != LOCAL_SIG {
        return Ok(Err("its local header is missing or damaged".into()));
    }
    let start = e.local + LOCAL_LEN + u64::from(le16(&h, 26)) + u64::from(le16(&h, 28));
    match start.checked_add(e.compressed) {
        Some(end) if end <= file => Ok(Ok(start)),
        _ => Ok(Err("its data is cut short: it runs past the end of the archive".into())),
    }
}

/// Moves to `to`, reading forward over a short gap rather than seeking, so the local
/// headers of many small members come from one open range of the source, not one each.
fn skip_to(r: &mut SourceReader, to: u64) -> io::Result<()> {
    let gap = to.wrapping_sub(r.position());
    if to >= r.position() && gap <= 256 << 10 {
        let skipped = io::copy(&mut r.by_ref().take(gap), &mut io::sink())?;
        if skipped == gap {
            return Ok(());
        }
    }
    r.seek(SeekFrom::Start(to)).map(drop)
}

/// The extended timestamp if present (true UTC), else the MS-DOS date and time, which are
/// local time of an unknown zone: taken as UTC.
fn modified_ns(e: &Entry) -> i64 {
    let secs = e.mtime.map_or_else(|| dos_seconds(e.dos_date, e.dos_time), i64::from);
    secs.saturating_mul(1_000_000_000)
}

/// Seconds since 1970 of an MS-DOS date and time; a zero month or day (written by some
/// tools for "no date") counts as the first.
fn dos_seconds(date: u16, time: u16) -> i64 {
    let year = 1980 + i64::from(date >> 9);
    let month = i64::from(((date >> 5) & 0xF).clamp(1, 12));
    let day = i64::from((date & 0x1F).max(1));
    let (h, m, s) = (i64::from(time >> 11), i64::from((time >> 5) & 0x3F), i64::from(time & 0x1F) * 2);
    days_from_civil(year, month, day) * 86_400 + h * 3_600 + m * 60 + s
}

/// Days since 1970-01-01 of a proleptic Gregorian date (years counted from March, so the
/// leap day falls at the end of the counted year).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Code page 437 (the IBM PC's), which names without the UTF-8 flag are in.
fn cp437(b: u8) -> char {
    match b.checked_sub(0x80) {
        None => char::from(b),
        Some(i) => CP437_HIGH[usize::from(i)],
    }
}

#[rustfmt::skip]
const CP437_HIGH: [char; 128] = [
    'Ç', 'ü', 'é', 'â', 'ä', 'à', 'å', 'ç', 'ê', 'ë', 'è', 'ï', 'î', 'ì', 'Ä', 'Å',
    'É', 'æ', 'Æ', 'ô', 'ö', 'ò', 'û', 'ù', 'ÿ', 'Ö', 'Ü', '¢', '£', '¥', '₧', 'ƒ',
    'á', 'í', 'ó', 'ú', 'ñ', 'Ñ', 'ª', 'º', '¿', '⌐', '¬', '½', '¼', '¡', '«', '»',
    '░', '▒', '▓', '│', '┤', '╡', '╢', '╖', '╕', '╣', '║', '╗', '╝', '╜', '╛', '┐',
    '└', '┴', '┬', '├', '─', '┼', '╞', '╟', '╚', '╔', '╩', '╦', '╠', '═', '╬', '╧',
    '╨', '╤', '╥', '╙', '╘', '╒', '╓', '╫', '╪', '┘', '┌', '█', '▄', '▌', '▐', '▀',
    'α', 'ß', 'Γ', 'π', 'Σ', 'σ', 'µ', 'τ', 'Φ', 'Θ', 'Ω', 'δ', '∞', 'φ', 'ε', '∩',
    '≡', '±', '≥', '≤', '⌠', '⌡', '÷', '≈', '°', '∙', '·', '√', 'ⁿ', '²', '■', '\u{a0}',
];

/// Little-endian fields of a record already read whole; callers index within its length.
fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn le64(b: &[u8], at: usize) -> u64 {
    u64::from(le32(b, at)) | (u64::from(le32(b, at + 4)) << 32)
}

#[cfg(test)]
mod tests;
