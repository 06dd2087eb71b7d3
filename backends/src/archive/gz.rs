//! gzip streams (tar.gz): decompressed once for the index, recording restart points, and
//! later restarted at the restart point nearest before the bytes wanted.
//!
//! Crate: `libz-rs-sys`, the zlib-compatible C API of zlib-rs. It is pure Rust (no C is
//! built, its symbols are not exported) and the same zlib-rs that flate2 already uses here.
//! flate2 does not expose what restarting inside a deflate stream needs: the `Z_BLOCK` flush
//! (stop at each deflate block boundary), `data_type` (whether inflate stopped at one, and
//! how many bits of the last byte it has not used yet), `inflateGetDictionary` (the last
//! 32 KiB of output, which later blocks may copy from), `inflatePrime` and
//! `inflateSetDictionary` (to load those bits and that window into a fresh raw inflater).
//! C zlib through `libz-sys` would do as well, but means a C build and a second zlib.
//!
//! Restart points: the scan inflates with `Z_BLOCK`; where inflate stops between two blocks
//! of a member (not after its last block) and at least [`CHECKPOINT_SPACING`] bytes of output
//! came since the previous point, it records the output offset, the offset of the next
//! compressed byte, the number of bits of the byte before it not yet used, and the window.
//! A restart reads from that byte before, primes a raw inflater with its unused bits, gives
//! it the window as dictionary and goes on. The first point (input 0) means the very start,
//! gzip header included.
//!
//! Members: `cat a.gz b.gz` decompresses to both outputs, as `gzip -d` gives. After a member,
//! a next byte other than gzip's first magic byte ends the stream (trailing zeros of tape
//! padding are ignored, as gzip ignores them). The scan inflates each member with zlib's gzip
//! wrapper, which checks the header and the trailer's CRC-32 and length. A restarted read
//! begins inside a member, so it inflates raw and skips that member's trailer unchecked: it
//! reads the version of the archive the scan checked (see [`super::Source`]).

use std::ffi::CStr;
use std::io::{self, Read, Seek, SeekFrom};

use libz_rs_sys as z;

use super::codec::Scan;
use super::{corrupt, Checkpoint, Limits, SourceReader, CHECKPOINT_SPACING};

/// Compressed bytes read, and decompressed bytes produced, at a time: large enough that
/// the cost of a call (at most one per deflate block, with `Z_BLOCK`) disappears.
const CHUNK: usize = 64 << 10;
/// deflate's largest window: all the history a restart needs.
const WINDOW: usize = 32 << 10;
/// Window bits of a gzip member: zlib parses the header and checks the trailer.
const GZIP: i32 = 15 + 16;
/// Window bits of raw deflate: a restart inside a member.
const RAW: i32 = -15;
/// The first byte of every gzip member.
const MAGIC: u8 = 0x1f;
/// CRC-32 and length after a member's deflate data.
const TRAILER: usize = 8;

/// `data_type` after `inflate`: the bits of the last byte not yet used (when fewer than 8).
const DT_BITS: i32 = 7;
/// `data_type`: set when 8 or more bits are held, which leaves no clean restart point.
const DT_MANY_BITS: i32 = 0x38;
/// `data_type`: the block just finished was the member's last.
const DT_LAST: i32 = 64;
/// `data_type`: inflate stopped at a block boundary.
const DT_BOUNDARY: i32 = 128;

/// A zlib inflate stream, owned, ended on drop. The `z_stream` is boxed so that its address
/// stays the same from one call to the next, as zlib expects.
struct Inflate {
    strm: Box<z::z_stream>,
}

// SAFETY: the stream and the state it points to belong to this value alone and hold nothing
// tied to a thread; the input and output pointers are set only for the length of one call.
unsafe impl Send for Inflate {}

/// What one call of `inflate` did.
struct Step {
    read: usize,
    written: usize,
    code: i32,
    data_type: i32,
}

impl Inflate {
    fn new(window_bits: i32) -> io::Result<Inflate> {
        let mut strm = Box::<z::z_stream>::default();
        let size = std::mem::size_of::<z::z_stream>() as i32;
        // SAFETY: `strm` is a valid z_stream whose allocator fields `default()` set (the Rust
        // allocator); the version is zlib's own static NUL-terminated string and `size` the
        // size of the struct, as zlib checks.
        let code = unsafe { z::inflateInit2_(&mut *strm, window_bits, z::zlibVersion(), size) };
        let inflate = Inflate { strm };
        inflate.check(code)?;
        Ok(inflate)
    }

    /// Starts over (a new member, or raw deflate), keeping the memory.
    fn reset(&mut self, window_bits: i32) -> io::Result<()> {
        // SAFETY: the stream was initialised by `new` and is ended only by `drop`.
        let code = unsafe { z::inflateReset2(&mut *self.strm, window_bits) };
        self.check(code)
    }

    /// Feeds the `bits` low bits of `value` before any input (a restart inside a byte).
    fn prime(&mut self, bits: u8, value: u8) -> io::Result<()> {
        // SAFETY: the stream was initialised by `new` and is ended only by `drop`.
        let code = unsafe { z::inflatePrime(&mut *self.strm, i32::from(bits), i32::from(value)) };
        self.check(code)
    }

    /// Gives a raw inflater the output that came before the restart point.
    fn set_dictionary(&mut self, window: &[u8]) -> io::Result<()> {
        let len = window.len().min(WINDOW);
        // SAFETY: initialised stream; the pointer and length describe the live `window`
        // (at most 32 KiB, so the length fits), which zlib only reads during the call.
        let code = unsafe { z::inflateSetDictionary(&mut *self.strm, window.as_ptr(), len as u32) };
        self.check(code)
    }

    /// The last 32 KiB of output of this member (less at its start).
    fn window(&self) -> io::Result<Vec<u8>> {
        let mut window = vec![0u8; WINDOW];
        let mut len: u32 = 0;
        // SAFETY: initialised stream, opened with 15 window bits, so its window holds at most
        // 32 KiB and `window` has room for all of it; `len` is a valid place to write.
        let code = unsafe { z::inflateGetDictionary(&*self.strm, window.as_mut_ptr(), &mut len) };
        self.check(code)?;
        window.truncate(len as usize);
        Ok(window)
    }

    /// Inflates from `input` into `output`, stopping at the next block boundary at the latest.
    fn inflate(&mut self, input: &[u8], output: &mut [u8]) -> Step {
        let input = &input[..input.len().min(u32::MAX as usize)];
        let out_len = output.len().min(u32::MAX as usize);
        let s = &mut *self.strm;
        s.next_in = input.as_ptr();
        s.avail_in = input.len() as u32;
        s.next_out = output.as_mut_ptr();
        s.avail_out = out_len as u32;
        // SAFETY: initialised stream; next_in/avail_in describe `input` and next_out/avail_out
        // (part of) `output`, both borrowed for the whole call; the pointers are cleared right
        // after it, so none outlives those borrows.
        let code = unsafe { z::inflate(s, z::Z_BLOCK) };
        let step = Step {
            read: input.len() - s.avail_in as usize,
            written: out_len - s.avail_out as usize,
            code,
            data_type: s.data_type,
        };
        s.next_in = std::ptr::null();
        s.avail_in = 0;
        s.next_out = std::ptr::null_mut();
        s.avail_out = 0;
        step
    }

    /// zlib's own words for what went wrong.
    fn message(&self) -> String {
        if self.strm.msg.is_null() {
            return "unknown error".into();
        }
        // SAFETY: zlib sets `msg` only to static NUL-terminated strings.
        unsafe { CStr::from_ptr(self.strm.msg) }.to_string_lossy().into_owned()
    }

    fn check(&self, code: i32) -> io::Result<()> {
        match code {
            z::Z_OK => Ok(()),
            z::Z_MEM_ERROR => Err(io::Error::new(io::ErrorKind::OutOfMemory, "gzip: out of memory")),
            z::Z_DATA_ERROR | z::Z_NEED_DICT => Err(corrupt(format!("gzip data damaged: {}", self.message()))),
            code => Err(io::Error::other(format!("gzip: zlib failed ({code}: {})", self.message()))),
        }
    }
}

impl Drop for Inflate {
    fn drop(&mut self) {
        // SAFETY: the stream was initialised by `new` (or left with no state if that failed,
        // which inflateEnd refuses harmlessly) and is ended only here.
        unsafe { z::inflateEnd(&mut *self.strm) };
    }
}

/// Where the decoder is in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before a member: the next byte tells whether one follows.
    Between,
    /// In a member read from its header (gzip wrapper: header and trailer checked).
    Member,
    /// In a member entered at a restart point (raw deflate: its trailer is skipped).
    RawMember,
    /// Skipping what is left of a trailer after raw deflate ended.
    Trailer(usize),
    Done,
}

/// What one decode call did.
struct Progress {
    written: usize,
    /// The call stopped between two blocks of a member, at a place a restart can use.
    boundary: bool,
    bits: u8,
}

/// The compressed side, shared by the scan and restarted reads: input buffering, the
/// inflater and the walk from member to member.
struct Decoder {
    reader: SourceReader,
    inflate: Option<Inflate>,
    input: Vec<u8>,
    start: usize,
    end: usize,
    /// Offset in the archive of `input[start]`: the compressed bytes used so far.
    consumed: u64,
    state: State,
    /// The last call filled its output, so inflate may have more without new input.
    out_full: bool,
}

fn cut_short() -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, "gzip stream cut short")
}

impl Decoder {
    fn at_start(reader: SourceReader) -> Decoder {
        Decoder::new(reader, None, 0, State::Between)
    }

    fn new(reader: SourceReader, inflate: Option<Inflate>, consumed: u64, state: State) -> Decoder {
        let input = vec![0; CHUNK];
        Decoder { reader, inflate, input, start: 0, end: 0, consumed, state, out_full: false }
    }

    /// A decoder inside a member, at `point` (never the start of the file).
    fn restart(mut reader: SourceReader, point: &Checkpoint) -> io::Result<Decoder> {
        if point.bits > 7 || point.window.len() > WINDOW || point.input == 0 {
            return Err(corrupt("damaged gzip restart point"));
        }
        let mut inflate = Inflate::new(RAW)?;
        reader.seek(SeekFrom::Start(point.input - u64::from(point.bits > 0)))?;
        if point.bits > 0 {
            // deflate reads bits from the low end: the unused ones are the byte's top bits
            let mut byte = [0u8; 1];
            reader.read_exact(&mut byte)?;
            inflate.prime(point.bits, byte[0] >> (8 - point.bits))?;
        }
        if !point.window.is_empty() {
            inflate.set_dictionary(&point.window)?;
        }
        Ok(Decoder::new(reader, Some(inflate), point.input, State::RawMember))
    }

    /// Makes sure some input is at hand; false at the end of the file.
    fn fill(&mut self) -> io::Result<bool> {
        if self.start < self.end {
            return Ok(true);
        }
        let n = self.reader.read(&mut self.input)?;
        (self.start, self.end) = (0, n);
        Ok(n > 0)
    }

    /// Decompresses some of the stream into `out`; `None` at its end.
    fn decode(&mut self, out: &mut [u8]) -> io::Result<Option<Progress>> {
        loop {
            match self.state {
                State::Done => return Ok(None),
                State::Between => self.next_member()?,
                State::Trailer(left) => self.skip_trailer(left)?,
                State::Member | State::RawMember => return self.inflate_some(out).map(Some),
            }
        }
    }

    fn next_member(&mut self) -> io::Result<()> {
        if !self.fill()? || self.input[self.start] != MAGIC {
            self.state = State::Done; // the end, or trailing bytes gzip ignores too
            return Ok(());
        }
        match &mut self.inflate {
            Some(inflate) => inflate.reset(GZIP)?,
            None => self.inflate = Some(Inflate::new(GZIP)?),
        }
        self.state = State::Member;
        Ok(())
    }

    fn skip_trailer(&mut self, left: usize) -> io::Result<()> {
        if !self.fill()? {
            return Err(cut_short());
        }
        let n = left.min(self.end - self.start);
        self.start += n;
        self.consumed += n as u64;
        self.state = if n == left { State::Between } else { State::Trailer(left - n) };
        Ok(())
    }

    /// One inflate call that makes progress: output, input used, or the member's end.
    fn inflate_some(&mut self, out: &mut [u8]) -> io::Result<Progress> {
        loop {
            if self.start == self.end && !self.out_full && !self.fill()? {
                return Err(cut_short());
            }
            let Some(inflate) = self.inflate.as_mut() else {
                return Err(io::Error::other("gzip: no inflater"));
            };
            let step = inflate.inflate(&self.input[self.start..self.end], out);
            self.start += step.read;
            self.consumed += step.read as u64;
            self.out_full = step.written == out.len();
            match step.code {
                z::Z_OK | z::Z_BUF_ERROR => {}
                z::Z_STREAM_END if self.state == State::RawMember => self.state = State::Trailer(TRAILER),
                z::Z_STREAM_END => self.state = State::Between,
                code => inflate.check(code)?,
            }
            if step.read > 0 || step.written > 0 || step.code == z::Z_STREAM_END {
                let dt = step.data_type;
                let boundary = step.code == z::Z_OK && dt & DT_BOUNDARY != 0 && dt & (DT_LAST | DT_MANY_BITS) == 0;
                return Ok(Progress { written: step.written, boundary, bits: (dt & DT_BITS) as u8 });
            }
            if self.start < self.end {
                return Err(io::Error::other("gzip: inflate made no progress"));
            }
            // nothing was pending after a full output: read on
        }
    }
}

/// The scan of a whole .gz for the index (see the module comment).
pub(crate) struct Scanner {
    decoder: Decoder,
    limits: Limits,
    out: Vec<u8>,
    start: usize,
    end: usize,
    /// Decompressed bytes so far.
    total: u64,
    points: Vec<Checkpoint>,
    /// The error the scan stopped with, given again to any later read.
    failed: Option<(io::ErrorKind, String)>,
}

impl Scanner {
    pub(crate) fn new(reader: SourceReader, limits: &Limits) -> Box<Scanner> {
        let start = Checkpoint { out: 0, input: 0, bits: 0, window: Vec::new() };
        Box::new(Scanner {
            decoder: Decoder::at_start(reader),
            limits: *limits,
            out: vec![0; CHUNK],
            start: 0,
            end: 0,
            total: 0,
            points: vec![start],
            failed: None,
        })
    }

    /// Decodes until some output is ready; false at the end of the stream.
    fn refill(&mut self) -> io::Result<bool> {
        loop {
            let Some(progress) = self.decoder.decode(&mut self.out)? else { return Ok(false) };
            self.total += progress.written as u64;
            super::codec::check_limits(self.total, self.decoder.consumed, &self.limits)?;
            if progress.boundary {
                self.maybe_checkpoint(progress.bits)?;
            }
            if progress.written > 0 {
                (self.start, self.end) = (0, progress.written);
                return Ok(true);
            }
        }
    }

    fn maybe_checkpoint(&mut self, bits: u8) -> io::Result<()> {
        let last = self.points.last().map_or(0, |p| p.out);
        if self.total - last < CHECKPOINT_SPACING {
            return Ok(());
        }
        let Some(inflate) = self.decoder.inflate.as_ref() else { return Ok(()) };
        let window = inflate.window()?;
        self.points.push(Checkpoint { out: self.total, input: self.decoder.consumed, bits, window });
        Ok(())
    }
}

impl Read for Scanner {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some((kind, msg)) = &self.failed {
            return Err(io::Error::new(*kind, msg.clone()));
        }
        if buf.is_empty() {
            return Ok(0);
        }
        if self.start == self.end {
            match self.refill() {
                Ok(true) => {}
                Ok(false) => return Ok(0),
                Err(e) => {
                    self.failed = Some((e.kind(), e.to_string()));
                    return Err(e);
                }
            }
        }
        let n = buf.len().min(self.end - self.start);
        buf[..n].copy_from_slice(&self.out[self.start..self.start + n]);
        self.start += n;
        Ok(n)
    }
}

impl Scan for Scanner {
    fn finish(self: Box<Self>) -> Vec<Checkpoint> {
        self.points
    }
}

/// A reader of the decompressed stream from `offset` on: it restarts at the last checkpoint
/// at or before `offset` (reading nothing of the file before that point's byte) and
/// discards the output up to `offset`, at most about [`CHECKPOINT_SPACING`].
pub(crate) fn open_at(
    reader: SourceReader,
    checkpoints: &[Checkpoint],
    offset: u64,
) -> io::Result<Box<dyn Read + Send>> {
    let i = checkpoints.partition_point(|p| p.out <= offset);
    let (decoder, from) = match i.checked_sub(1).map(|i| &checkpoints[i]) {
        Some(p) if p.input > 0 => (Decoder::restart(reader, p)?, p.out),
        Some(p) if p.out > 0 => return Err(corrupt("damaged gzip restart point")),
        _ => (Decoder::at_start(reader), 0),
    };
    let mut restarted = Restarted { decoder, out: vec![0; CHUNK], start: 0, end: 0 };
    restarted.skip(offset - from)?;
    Ok(Box::new(restarted))
}

/// The decompressed stream from a restart point on.
struct Restarted {
    decoder: Decoder,
    out: Vec<u8>,
    start: usize,
    end: usize,
}

impl Restarted {
    fn refill(&mut self) -> io::Result<bool> {
        loop {
            let Some(progress) = self.decoder.decode(&mut self.out)? else { return Ok(false) };
            if progress.written > 0 {
                (self.start, self.end) = (0, progress.written);
                return Ok(true);
            }
        }
    }

    fn skip(&mut self, mut n: u64) -> io::Result<()> {
        while n > 0 {
            if self.start == self.end && !self.refill()? {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "offset past the end of the gzip stream"));
            }
            let k = n.min((self.end - self.start) as u64);
            self.start += k as usize;
            n -= k;
        }
        Ok(())
    }
}

impl Read for Restarted {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() || (self.start == self.end && !self.refill()?) {
            return Ok(0);
        }
        let n = buf.len().min(self.end - self.start);
        buf[..n].copy_from_slice(&self.out[self.start..self.start + n]);
        self.start += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::Arc;

    use super::super::codec::Scan;
    use super::super::zst::tests::{check_open, check_points, offsets, reader, run, scan, text, MemSource};
    use super::super::{Limits, SourceReader};
    use super::{open_at, Scanner, WINDOW};

    fn gz_scan(reader: SourceReader, limits: &Limits) -> Box<dyn Scan> {
        Scanner::new(reader, limits)
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn scan_matches_gzip_and_restarts_anywhere() {
        let data = Arc::new(text(20 << 20, 1));
        let gz = run("gzip", &["-c"], &data);
        let src = MemSource::new(gz.clone());
        let s = scan(&src, Limits::default(), gz_scan).await;
        s.end.unwrap();
        assert!(s.out == *data, "scan output differs");
        check_points(&s.points, data.len());
        assert!(s.points.len() >= 4, "{} points", s.points.len());
        assert!(s.points[1..].iter().all(|p| p.window.len() == WINDOW && p.bits < 8));
        assert!(s.points.iter().any(|p| p.bits != 0), "no point inside a byte: inflatePrime untested");
        for offset in offsets(&s.points, data.len()) {
            check_open(&src, &s.points, open_at, &data, offset, 300_000).await;
        }
        // near the end: one restart's worth of input, not the whole file
        let served = check_open(&src, &s.points, open_at, &data, data.len() as u64 - 1000, 1000).await;
        let last = s.points.last().unwrap();
        assert!(served <= gz.len() as u64 - last.input + (128 << 10), "read {served} of {}", gz.len());
        assert!(served < gz.len() as u64 / 3, "read {served} of {}", gz.len());
        // from a point to the very end
        check_open(&src, &s.points, open_at, &data, s.points[1].out + 5, usize::MAX).await;
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn pigz_output_restarts() {
        let data = Arc::new(text(20 << 20, 9));
        let gz = run("pigz", &["-c", "-p", "2"], &data);
        let src = MemSource::new(gz);
        let s = scan(&src, Limits::default(), gz_scan).await;
        s.end.unwrap();
        assert!(s.out == *data);
        check_points(&s.points, data.len());
        assert!(s.points.len() >= 2);
        for offset in offsets(&s.points, data.len()) {
            check_open(&src, &s.points, open_at, &data, offset, 100_000).await;
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn members_follow_each_other() {
        let (a, b, c) = (text(9 << 20, 3), text(7 << 20, 4), text(1000, 5));
        let mut gz = run("gzip", &["-c", "-1"], &a);
        gz.extend(run("gzip", &["-c", "-9"], &b));
        gz.extend(run("gzip", &["-c"], &c));
        gz.extend([0u8; 512]); // tape padding, ignored as gzip does
        let data = Arc::new([a, b, c].concat());
        let src = MemSource::new(gz);
        let s = scan(&src, Limits::default(), gz_scan).await;
        s.end.unwrap();
        assert!(s.out == *data);
        check_points(&s.points, data.len());
        assert!(s.points.iter().any(|p| p.out > 9 << 20), "no point in the second member");
        for p in &s.points {
            // each read runs on through the following member boundaries to the end
            check_open(&src, &s.points, open_at, &data, p.out + 3, usize::MAX).await;
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn truncated_gives_the_prefix_then_fails() {
        let data = text(8 << 20, 6);
        let gz = run("gzip", &["-c"], &data);
        let src = MemSource::new(gz[..gz.len() * 6 / 10].to_vec());
        let s = scan(&src, Limits::default(), gz_scan).await;
        assert_eq!(s.end.unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
        assert!(s.out.len() > data.len() / 2 && data.starts_with(&s.out), "{} bytes before the cut", s.out.len());
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn damaged_crc_fails() {
        let data = text(1 << 20, 7);
        let mut gz = run("gzip", &["-c"], &data);
        let at = gz.len() - 8;
        gz[at] ^= 1;
        let s = scan(&MemSource::new(gz), Limits::default(), gz_scan).await;
        assert_eq!(s.end.unwrap_err().kind(), io::ErrorKind::InvalidData);
        assert!(data.starts_with(&s.out));
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn bomb_stops_early() {
        let gz = run("sh", &["-c", "head -c 209715200 /dev/zero | gzip -c"], b"");
        let src = MemSource::new(gz);
        let limits = Limits { max_ratio: 50, ..Limits::default() };
        let s = scan(&src, limits, gz_scan).await;
        assert_eq!(s.end.unwrap_err().kind(), io::ErrorKind::InvalidData);
        assert!(s.out.len() < 8 << 20, "{} bytes out", s.out.len());
        let limits = Limits { max_total: 5 << 20, ..Limits::default() };
        let s = scan(&src, limits, gz_scan).await;
        assert_eq!(s.end.unwrap_err().kind(), io::ErrorKind::InvalidData);
        assert!(s.out.len() <= 5 << 20);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn open_past_the_end_fails() {
        let data = text(100_000, 8);
        let src = MemSource::new(run("gzip", &["-c"], &data));
        let points = scan(&src, Limits::default(), gz_scan).await.points;
        let src2 = src.clone();
        let err = tokio::task::spawn_blocking(move || open_at(reader(&src2), &points, 100_001).err())
            .await
            .unwrap()
            .expect("opened past the end");
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }
}
