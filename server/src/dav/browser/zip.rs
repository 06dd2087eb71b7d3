//! A streaming ZIP writer (PKWARE APPNOTE 6.3): every member is "stored" (no compression:
//! most files are compressed already, and it keeps CPU and memory flat), followed by a data
//! descriptor because its CRC-32 is only known once its bytes have gone by. Nothing is ever
//! sought back to, so the archive can go straight onto the wire. ZIP64 fields appear where a
//! size or offset needs them, so members and archives over 4 GiB work. The only state that
//! grows is the central directory (a few dozen bytes per member), which the format needs.

use bytes::{BufMut, Bytes, BytesMut};

const LOCAL: u32 = 0x0403_4b50;
const DESCRIPTOR: u32 = 0x0807_4b50;
const CENTRAL: u32 = 0x0201_4b50;
const END64: u32 = 0x0606_4b50;
const LOCATOR64: u32 = 0x0706_4b50;
const END: u32 = 0x0605_4b50;
const MAX32: u64 = 0xFFFF_FFFF;
const MAX16: u64 = 0xFFFF;
/// Bit 3: CRC and sizes follow the data; bit 11: names are UTF-8.
const FLAG_DESCRIPTOR: u16 = 1 << 3;
const FLAG_UTF8: u16 = 1 << 11;
/// 4.5 is the version that introduced ZIP64.
const VERSION: u16 = 45;
/// "Made by" Unix, so external attributes carry ordinary file modes.
const MADE_BY: u16 = (3 << 8) | VERSION;
const MODE_FILE: u32 = 0o100_644;
const MODE_DIR: u32 = 0o040_755;

/// The member being written.
struct Open {
    name: String,
    offset: u64,
    declared: u64,
    written: u64,
    crc: crc32fast::Hasher,
    zip64: bool,
    mtime: i64,
}

/// Writes an archive as a sequence of byte chunks; the caller sends each one on.
#[derive(Default)]
pub struct ZipWriter {
    offset: u64,
    entries: u64,
    central: BytesMut,
    open: Option<Open>,
}

impl ZipWriter {
    pub fn new() -> ZipWriter {
        ZipWriter::default()
    }

    fn emit(&mut self, b: BytesMut) -> Bytes {
        self.offset += b.len() as u64;
        b.freeze()
    }

    /// A folder entry (`name` ends in `/`): no data, so no descriptor.
    pub fn directory(&mut self, name: &str, mtime: i64) -> Bytes {
        let offset = self.offset;
        let mut b = BytesMut::new();
        local_header(&mut b, name, FLAG_UTF8, mtime, false);
        self.record(name, FLAG_UTF8, mtime, 0, 0, offset, true);
        self.emit(b)
    }

    /// Starts a file of `size` bytes; its data goes through [`ZipWriter::data`].
    pub fn begin_file(&mut self, name: &str, size: u64, mtime: i64) -> Bytes {
        let zip64 = size >= MAX32;
        let mut b = BytesMut::new();
        local_header(&mut b, name, FLAG_UTF8 | FLAG_DESCRIPTOR, mtime, zip64);
        let crc = crc32fast::Hasher::new();
        let offset = self.offset;
        self.open = Some(Open { name: name.to_owned(), offset, declared: size, written: 0, crc, zip64, mtime });
        self.emit(b)
    }

    /// Accounts for a chunk of the open file; the caller sends the chunk itself.
    pub fn data(&mut self, chunk: &[u8]) {
        if let Some(open) = &mut self.open {
            open.crc.update(chunk);
            open.written += chunk.len() as u64;
        }
        self.offset += chunk.len() as u64;
    }

    /// Ends the open file with its data descriptor. A length other than the declared one
    /// is an error: the local header's ZIP64 choice was made on it.
    pub fn end_file(&mut self) -> std::io::Result<Bytes> {
        let open = self.open.take().ok_or_else(|| std::io::Error::other("no open zip member"))?;
        if open.written != open.declared {
            return Err(std::io::Error::other(format!("{}: size changed while zipping", open.name)));
        }
        let crc = open.crc.finalize();
        let mut b = BytesMut::new();
        b.put_u32_le(DESCRIPTOR);
        b.put_u32_le(crc);
        if open.zip64 {
            b.put_u64_le(open.written);
            b.put_u64_le(open.written);
        } else {
            b.put_u32_le(open.written as u32);
            b.put_u32_le(open.written as u32);
        }
        let flags = FLAG_UTF8 | FLAG_DESCRIPTOR;
        self.record(&open.name, flags, open.mtime, crc, open.written, open.offset, false);
        Ok(self.emit(b))
    }

    /// Appends a member's central directory record.
    #[allow(clippy::too_many_arguments)]
    fn record(&mut self, name: &str, flags: u16, mtime: i64, crc: u32, size: u64, offset: u64, dir: bool) {
        let mut zip64 = BytesMut::new();
        if size >= MAX32 {
            zip64.put_u64_le(size);
            zip64.put_u64_le(size);
        }
        if offset >= MAX32 {
            zip64.put_u64_le(offset);
        }
        let extra = extras(&zip64, mtime);
        let (time, date) = dos_time(mtime);
        let c = &mut self.central;
        c.put_u32_le(CENTRAL);
        c.put_u16_le(MADE_BY);
        c.put_u16_le(VERSION);
        c.put_u16_le(flags);
        c.put_u16_le(0); // stored
        c.put_u16_le(time);
        c.put_u16_le(date);
        c.put_u32_le(crc);
        c.put_u32_le(size.min(MAX32) as u32);
        c.put_u32_le(size.min(MAX32) as u32);
        c.put_u16_le(name.len() as u16);
        c.put_u16_le(extra.len() as u16);
        c.put_u16_le(0); // comment
        c.put_u16_le(0); // disk
        c.put_u16_le(0); // internal attributes
        let mode = if dir { (MODE_DIR << 16) | 0x10 } else { MODE_FILE << 16 };
        c.put_u32_le(mode);
        c.put_u32_le(offset.min(MAX32) as u32);
        c.put_slice(name.as_bytes());
        c.put_slice(&extra);
        self.entries += 1;
    }

    /// The central directory and end records: the archive's last bytes.
    pub fn finish(mut self) -> Bytes {
        let start = self.offset;
        let size = self.central.len() as u64;
        let mut b = std::mem::take(&mut self.central);
        if self.entries >= MAX16 || start >= MAX32 || size >= MAX32 {
            let end64 = start + size;
            b.put_u32_le(END64);
            b.put_u64_le(44); // size of the rest of this record
            b.put_u16_le(MADE_BY);
            b.put_u16_le(VERSION);
            b.put_u32_le(0);
            b.put_u32_le(0);
            b.put_u64_le(self.entries);
            b.put_u64_le(self.entries);
            b.put_u64_le(size);
            b.put_u64_le(start);
            b.put_u32_le(LOCATOR64);
            b.put_u32_le(0);
            b.put_u64_le(end64);
            b.put_u32_le(1);
        }
        b.put_u32_le(END);
        b.put_u16_le(0);
        b.put_u16_le(0);
        b.put_u16_le(self.entries.min(MAX16) as u16);
        b.put_u16_le(self.entries.min(MAX16) as u16);
        b.put_u32_le(size.min(MAX32) as u32);
        b.put_u32_le(start.min(MAX32) as u32);
        b.put_u16_le(0);
        self.emit(b)
    }
}

/// A local header. With a descriptor, CRC and sizes are zero here (APPNOTE 4.4.4); a ZIP64
/// member marks its sizes 0xFFFFFFFF and carries the (zero) 64-bit fields in an extra.
fn local_header(b: &mut BytesMut, name: &str, flags: u16, mtime: i64, zip64: bool) {
    let mut z = BytesMut::new();
    if zip64 {
        z.put_u64_le(0);
        z.put_u64_le(0);
    }
    let extra = extras(&z, mtime);
    let (time, date) = dos_time(mtime);
    let size = if zip64 { MAX32 as u32 } else { 0 };
    b.put_u32_le(LOCAL);
    b.put_u16_le(VERSION);
    b.put_u16_le(flags);
    b.put_u16_le(0);
    b.put_u16_le(time);
    b.put_u16_le(date);
    b.put_u32_le(0);
    b.put_u32_le(size);
    b.put_u32_le(size);
    b.put_u16_le(name.len() as u16);
    b.put_u16_le(extra.len() as u16);
    b.put_slice(name.as_bytes());
    b.put_slice(&extra);
}

/// The ZIP64 extra (when it has fields) and an "extended timestamp" extra: DOS times have
/// two-second steps and no time zone, Unix seconds are exact.
fn extras(zip64: &[u8], mtime: i64) -> BytesMut {
    let mut e = BytesMut::new();
    if !zip64.is_empty() {
        e.put_u16_le(0x0001);
        e.put_u16_le(zip64.len() as u16);
        e.put_slice(zip64);
    }
    e.put_u16_le(0x5455);
    e.put_u16_le(5);
    e.put_u8(1); // modification time present
    e.put_u32_le(mtime.clamp(0, i64::from(u32::MAX)) as u32);
    e
}

/// MS-DOS time and date (UTC), clamped to the years DOS can express (1980–2107).
fn dos_time(secs: i64) -> (u16, u16) {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = crate::dav::time::civil_from_days(days);
    if y < 1980 {
        return (0, (1 << 5) | 1);
    }
    let y = y.min(2107);
    let time = ((rem / 3600) << 11) | ((rem % 3600 / 60) << 5) | (rem % 60 / 2);
    let date = ((y - 1980) << 9) | (i64::from(m) << 5) | i64::from(d);
    (time as u16, date as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn archive(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut z = ZipWriter::new();
        let mut out = z.directory("top/", 0).to_vec();
        for (name, data) in files {
            out.extend_from_slice(&z.begin_file(name, data.len() as u64, 1_700_000_000));
            z.data(data);
            out.extend_from_slice(data);
            out.extend_from_slice(&z.end_file().unwrap());
        }
        out.extend_from_slice(&z.finish());
        out
    }

    #[test]
    fn end_record_points_at_the_central_directory() {
        let zip = archive(&[("top/a.txt", b"hello"), ("top/é.txt", b"")]);
        let end = &zip[zip.len() - 22..];
        assert_eq!(&end[..4], &END.to_le_bytes());
        let entries = u16::from_le_bytes([end[10], end[11]]);
        let start = u32::from_le_bytes([end[16], end[17], end[18], end[19]]) as usize;
        assert_eq!(entries, 3);
        assert_eq!(&zip[start..start + 4], &CENTRAL.to_le_bytes());
    }

    #[test]
    fn descriptor_carries_the_crc() {
        let zip = archive(&[("top/a.txt", b"hello")]);
        let crc = crc32fast::hash(b"hello").to_le_bytes();
        assert!(zip.windows(8).any(|w| w[..4] == DESCRIPTOR.to_le_bytes() && w[4..] == crc));
    }

    #[test]
    fn a_wrong_length_is_an_error() {
        let mut z = ZipWriter::new();
        z.begin_file("a", 3, 0);
        z.data(b"ab");
        assert!(z.end_file().is_err());
    }

    #[test]
    fn dos_dates() {
        // 2023-11-14 22:13:20 UTC
        let (time, date) = dos_time(1_700_000_000);
        assert_eq!(date, ((2023 - 1980) << 9) | (11 << 5) | 14);
        assert_eq!(time, (22 << 11) | (13 << 5) | 10);
        assert_eq!(dos_time(0).1, (1 << 5) | 1);
    }

    /// A 5 GiB member (so ZIP64 sizes) followed by one at an offset past 4 GiB (so ZIP64
    /// offsets and end records), written as a sparse file of zeros and checked by Info-ZIP.
    #[test]
    fn zip64_archives_pass_unzip() {
        use std::io::{Seek, SeekFrom, Write};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.zip");
        let mut f = std::fs::File::create(&path).unwrap();
        let mut z = ZipWriter::new();
        let size = 5u64 << 30;
        f.write_all(&z.begin_file("zeros", size, 1_700_000_000)).unwrap();
        // Account for 5 GiB of zeros without hashing them all: CRCs combine.
        let mut zeros = crc32fast::Hasher::new();
        zeros.update(&[0u8; 1 << 20]);
        for _ in 0..size >> 20 {
            let open = z.open.as_mut().unwrap();
            open.crc.combine(&zeros);
            open.written += 1 << 20;
            z.offset += 1 << 20;
        }
        f.seek(SeekFrom::Current(size as i64)).unwrap();
        f.write_all(&z.end_file().unwrap()).unwrap();
        f.write_all(&z.begin_file("after", 2, 1_700_000_000)).unwrap();
        z.data(b"hi");
        f.write_all(b"hi").unwrap();
        f.write_all(&z.end_file().unwrap()).unwrap();
        f.write_all(&z.finish()).unwrap();
        // Listing reads every ZIP64 field; testing and extracting the member past 4 GiB
        // follows its 64-bit offset. (The e2e tests check whole archives' CRCs.)
        for args in [&["-lv"][..], &["-tq"], &["-p"]] {
            let mut cmd = std::process::Command::new("unzip");
            let out = cmd.args(args).arg(&path).arg("after").output().expect("unzip (tests/run.sh installs it)");
            let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
            assert!(out.status.success(), "unzip {args:?}: {stdout}{stderr}");
            if args == ["-p"] {
                assert_eq!(stdout, "hi");
            }
        }
    }
}
