//! zstd streams (tar.zst): decompressed once for the index, recording restart points, and
//! later restarted at the restart point nearest before the bytes wanted.
//!
//! Decoder: libzstd through the `zstd` crate's `zstd_safe::DCtx`, streaming. zstd can only
//! be restarted where a frame begins: inside a frame, blocks refer back to a window of up to
//! the frame's window size (MiBs), and no decoder API takes such a window back. So the scan
//! records a restart point at the start of a frame when at least [`CHECKPOINT_SPACING`]
//! bytes of output came since the previous point (no bits, no window: a frame starts
//! afresh). Skippable frames are passed over by libzstd (they are restart places too).
//!
//! What that means for users: a .tar.zst made by `zstd` (or `tar --zstd`) is one frame,
//! even with `-T0`, `-B#`, `--rsyncable`, `--adapt` or `--long`, so reading a member of it
//! decompresses from the start of the archive up to that member. zstd decompresses at
//! about 1 GB/s, so that is a second per GB before the member. Archives made by `pzstd`
//! (shipped in Debian's zstd package) are sequences of independent frames, one per chunk of
//! input whose size follows the level's window (about 8 MB at the default level 3, 16 MiB
//! at `-9`), each behind a small skippable frame, and restart near any member; so do
//! concatenations (`cat a.zst b.zst`, or chunks compressed one by one).
//!
//! Memory: libzstd refuses frames whose window is over 2^27 bytes (its default limit, which
//! plain `--long` and `--ultra -22` stay within; `--long=28` and above go past it), so a
//! decoder holds at most about 128 MiB, and usually the few MiB the frame asks for.

use std::io::{self, Read, Seek, SeekFrom};

use zstd::zstd_safe::{self, DCtx, InBuffer, OutBuffer};

use super::codec::Scan;
use super::{corrupt, Checkpoint, Limits, SourceReader, CHECKPOINT_SPACING};

/// Compressed bytes read, and decompressed bytes produced, at a time.
const CHUNK: usize = 64 << 10;

/// What one decode call did.
struct Progress {
    written: usize,
    /// The call began a frame, which starts at this offset of the archive.
    frame_start: Option<u64>,
}

fn cut_short() -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, "zstd stream cut short")
}

/// The compressed side, shared by the scan and restarted reads.
struct Decoder {
    reader: SourceReader,
    dctx: DCtx<'static>,
    input: Vec<u8>,
    start: usize,
    end: usize,
    /// Offset in the archive of `input[start]`: the compressed bytes used so far.
    consumed: u64,
    /// No frame is under way: the next input byte starts one (or the stream may end here).
    between: bool,
    /// The last call filled its output, so libzstd may have more without new input.
    out_full: bool,
}

impl Decoder {
    /// A decoder at the start of the frame at `input` (0: the start of the file).
    fn at(mut reader: SourceReader, input: u64) -> io::Result<Decoder> {
        let dctx =
            DCtx::try_create().ok_or_else(|| io::Error::new(io::ErrorKind::OutOfMemory, "zstd: out of memory"))?;
        if input > 0 {
            reader.seek(SeekFrom::Start(input))?;
        }
        let input_buf = vec![0; CHUNK];
        Ok(Decoder {
            reader,
            dctx,
            input: input_buf,
            start: 0,
            end: 0,
            consumed: input,
            between: true,
            out_full: false,
        })
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

    /// Decompresses some of the stream into `out`; `None` at its end. A call that makes no
    /// output still returns (input used, a frame begun or ended).
    fn decode(&mut self, out: &mut [u8]) -> io::Result<Option<Progress>> {
        loop {
            if self.start == self.end && !self.out_full && !self.fill()? {
                return if self.between { Ok(None) } else { Err(cut_short()) };
            }
            let frame_start = (self.between && self.start < self.end).then_some(self.consumed);
            let mut src = InBuffer::around(&self.input[self.start..self.end]);
            let mut dst = OutBuffer::around(&mut *out);
            let result = self.dctx.decompress_stream(&mut dst, &mut src);
            let (read, written) = (src.pos(), dst.pos());
            self.start += read;
            self.consumed += read as u64;
            let hint =
                result.map_err(|code| corrupt(format!("zstd data damaged: {}", zstd_safe::get_error_name(code))))?;
            self.out_full = written == out.len();
            if read > 0 || written > 0 {
                // 0: a frame is done and all its output given
                self.between = hint == 0;
                return Ok(Some(Progress { written, frame_start }));
            }
            if self.start < self.end {
                return Err(io::Error::other("zstd: decoder made no progress"));
            }
            // nothing was pending after a full output: read on
        }
    }
}

/// The scan of a whole .zst for the index (see the module comment).
pub(crate) struct Scanner {
    decoder: io::Result<Decoder>,
    limits: Limits,
    out: Vec<u8>,
    start: usize,
    end: usize,
    /// Decompressed bytes so far.
    total: u64,
    points: Vec<Checkpoint>,
    /// A frame start far enough from the last point, kept once output follows it (a
    /// skippable frame at the very end is no place to restart).
    next_point: Option<Checkpoint>,
    /// The error the scan stopped with, given again to any later read.
    failed: Option<(io::ErrorKind, String)>,
}

impl Scanner {
    pub(crate) fn new(reader: SourceReader, limits: &Limits) -> Box<Scanner> {
        let start = Checkpoint { out: 0, input: 0, bits: 0, window: Vec::new() };
        Box::new(Scanner {
            decoder: Decoder::at(reader, 0),
            limits: *limits,
            out: vec![0; CHUNK],
            start: 0,
            end: 0,
            total: 0,
            points: vec![start],
            next_point: None,
            failed: None,
        })
    }

    /// Decodes until some output is ready; false at the end of the stream.
    fn refill(&mut self) -> io::Result<bool> {
        let decoder = self.decoder.as_mut().map_err(|e| io::Error::new(e.kind(), e.to_string()))?;
        loop {
            let Some(progress) = decoder.decode(&mut self.out)? else { return Ok(false) };
            if let Some(input) = progress.frame_start {
                let last = self.points.last().map_or(0, |p| p.out);
                if self.total - last >= CHECKPOINT_SPACING && self.next_point.is_none() {
                    self.next_point = Some(Checkpoint { out: self.total, input, bits: 0, window: Vec::new() });
                }
            }
            if progress.written > 0 {
                self.points.extend(self.next_point.take());
            }
            self.total += progress.written as u64;
            super::codec::check_limits(self.total, decoder.consumed, &self.limits)?;
            if progress.written > 0 {
                (self.start, self.end) = (0, progress.written);
                return Ok(true);
            }
        }
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

/// A reader of the decompressed stream from `offset` on: it starts at the frame of the last
/// checkpoint at or before `offset` (reading nothing of the file before it) and discards
/// the output up to `offset`.
pub(crate) fn open_at(
    reader: SourceReader,
    checkpoints: &[Checkpoint],
    offset: u64,
) -> io::Result<Box<dyn Read + Send>> {
    let i = checkpoints.partition_point(|p| p.out <= offset);
    let (input, from) = match i.checked_sub(1).map(|i| &checkpoints[i]) {
        Some(p) if p.bits != 0 || !p.window.is_empty() || (p.input == 0 && p.out > 0) => {
            return Err(corrupt("damaged zstd restart point"))
        }
        Some(p) => (p.input, p.out),
        None => (0, 0),
    };
    let decoder = Decoder::at(reader, input)?;
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
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "offset past the end of the zstd stream"));
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
pub(super) mod tests {
    //! Also the helpers of the gzip tests: an archive in memory, real compressors, checks.

    use std::io::{self, Read, Write};
    use std::ops::Range;
    use std::process::{Command, Stdio};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    use bytes::Bytes;
    use futures_util::StreamExt;

    use super::super::codec::Scan;
    use super::super::{Checkpoint, Limits, Source, SourceReader, CHECKPOINT_SPACING};
    use super::{open_at, Scanner};
    use crate::{ByteStream, Result};

    pub(in crate::archive) type MakeScan = fn(SourceReader, &Limits) -> Box<dyn Scan>;
    pub(in crate::archive) type OpenAt = fn(SourceReader, &[Checkpoint], u64) -> io::Result<Box<dyn Read + Send>>;

    /// An archive in memory, served in 64 KiB chunks as they are polled, counting the
    /// bytes handed out (what a restarted read costs).
    pub(in crate::archive) struct MemSource {
        data: Bytes,
        served: Arc<AtomicU64>,
    }

    impl MemSource {
        pub(in crate::archive) fn new(data: Vec<u8>) -> Arc<MemSource> {
            Arc::new(MemSource { data: data.into(), served: Arc::new(AtomicU64::new(0)) })
        }

        /// Bytes handed out so far.
        pub(in crate::archive) fn served(&self) -> u64 {
            self.served.load(Ordering::Relaxed)
        }
    }

    #[async_trait::async_trait]
    impl Source for MemSource {
        fn size(&self) -> u64 {
            self.data.len() as u64
        }

        async fn read(&self, range: Range<u64>) -> Result<ByteStream> {
            let data = self.data.slice(range.start as usize..range.end as usize);
            let len = data.len();
            let chunks = (0..len).step_by(64 << 10).map(move |at| data.slice(at..(at + (64 << 10)).min(len)));
            let served = self.served.clone();
            Ok(Box::pin(futures_util::stream::iter(chunks).map(move |chunk| {
                served.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                Ok(chunk)
            })))
        }
    }

    /// `len` bytes of text lines, varied but compressible (about 3:1), the same every run.
    pub(in crate::archive) fn text(len: usize, seed: u64) -> Vec<u8> {
        const WORDS: [&str; 16] = [
            "wharf", "archive", "member", "offset", "window", "block", "frame", "stream", "restart", "point",
            "deflate", "zstd", "tar", "header", "index", "bytes",
        ];
        let mut x = seed | 1;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut out = Vec::with_capacity(len + 64);
        while out.len() < len {
            for _ in 0..1 + next() % 8 {
                out.extend_from_slice(WORDS[(next() % 16) as usize].as_bytes());
                out.push(b' ');
            }
            out.extend_from_slice(format!("{}\n", next() % 1_000_000_007).as_bytes());
        }
        out.truncate(len);
        out
    }

    /// What a program prints for `input` on its standard input.
    pub(in crate::archive) fn run(program: &str, args: &[&str], input: &[u8]) -> Vec<u8> {
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{program} (apt-get install gzip zstd): {e}"));
        let mut stdin = child.stdin.take().unwrap();
        let input = input.to_vec();
        let writer = std::thread::spawn(move || stdin.write_all(&input));
        let out = child.wait_with_output().unwrap();
        writer.join().unwrap().unwrap();
        assert!(out.status.success(), "{program} {args:?} failed");
        out.stdout
    }

    pub(in crate::archive) fn reader(src: &Arc<MemSource>) -> SourceReader {
        SourceReader::new(src.clone(), tokio::runtime::Handle::current(), None)
    }

    /// What a scan gave: its output up to where it ended, how it ended, its restart points.
    pub(in crate::archive) struct Scanned {
        pub(in crate::archive) out: Vec<u8>,
        pub(in crate::archive) end: io::Result<()>,
        pub(in crate::archive) points: Vec<Checkpoint>,
    }

    pub(in crate::archive) async fn scan(src: &Arc<MemSource>, limits: Limits, make: MakeScan) -> Scanned {
        let src = src.clone();
        tokio::task::spawn_blocking(move || {
            let mut scanner = make(reader(&src), &limits);
            let (mut out, mut buf) = (Vec::new(), vec![0u8; 10_000]);
            let end = loop {
                match scanner.read(&mut buf) {
                    Ok(0) => break Ok(()),
                    Ok(n) => out.extend_from_slice(&buf[..n]),
                    Err(e) => break Err(e),
                }
            };
            Scanned { out, end, points: scanner.finish() }
        })
        .await
        .unwrap()
    }

    /// Reads `len` bytes (fewer at the end) from `offset` through `open`, checks them against
    /// `data`, and returns how many compressed bytes that read.
    pub(in crate::archive) async fn check_open(
        src: &Arc<MemSource>,
        points: &[Checkpoint],
        open: OpenAt,
        data: &Arc<Vec<u8>>,
        offset: u64,
        len: usize,
    ) -> u64 {
        let (src, points, data) = (src.clone(), points.to_vec(), data.clone());
        tokio::task::spawn_blocking(move || {
            src.served.store(0, Ordering::Relaxed);
            let reader = open(reader(&src), &points, offset).unwrap();
            let mut got = Vec::new();
            reader.take(len as u64).read_to_end(&mut got).unwrap();
            let at = offset as usize;
            let want = &data[at..at.saturating_add(len).min(data.len())];
            assert!(got.len() == want.len() && got == want, "wrong bytes read from offset {offset}");
            src.served.load(Ordering::Relaxed)
        })
        .await
        .unwrap()
    }

    /// Restart points in order, the first at the start, spaced as promised.
    pub(in crate::archive) fn check_points(points: &[Checkpoint], len: usize) {
        assert_eq!(points[0], Checkpoint { out: 0, input: 0, bits: 0, window: vec![] });
        for pair in points.windows(2) {
            assert!(pair[1].out >= pair[0].out + CHECKPOINT_SPACING, "points too close");
            assert!(pair[1].input > pair[0].input);
            assert!(pair[1].out < len as u64);
        }
    }

    /// Offsets worth reading from: the start, around each restart point, the end.
    pub(in crate::archive) fn offsets(points: &[Checkpoint], len: usize) -> Vec<u64> {
        let mut at = vec![0, 1, len as u64 - 1000, len as u64];
        for p in &points[1..] {
            at.extend([p.out - 1, p.out, p.out + 1, p.out + 12_345]);
        }
        at
    }

    fn zst_scan(reader: SourceReader, limits: &Limits) -> Box<dyn Scan> {
        Scanner::new(reader, limits)
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn single_frame_restarts_from_the_start() {
        let data = Arc::new(text(12 << 20, 11));
        let zst = run("zstd", &["-q", "-c"], &data);
        let src = MemSource::new(zst.clone());
        let s = scan(&src, Limits::default(), zst_scan).await;
        s.end.unwrap();
        assert!(s.out == *data, "scan output differs");
        assert_eq!(s.points, vec![Checkpoint { out: 0, input: 0, bits: 0, window: vec![] }]);
        for offset in [0, 1, 5 << 20, data.len() as u64 - 1000, data.len() as u64] {
            check_open(&src, &s.points, open_at, &data, offset, 200_000).await;
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn concatenated_frames_give_restart_points() {
        let (a, b) = (text(10 << 20, 12), text(10 << 20, 13));
        let first = run("zstd", &["-q", "-c"], &a);
        let zst = [first.clone(), run("zstd", &["-q", "-c", "-9"], &b)].concat();
        let data = Arc::new([a, b].concat());
        let src = MemSource::new(zst.clone());
        let s = scan(&src, Limits::default(), zst_scan).await;
        s.end.unwrap();
        assert!(s.out == *data);
        check_points(&s.points, data.len());
        let second = Checkpoint { out: 10 << 20, input: first.len() as u64, bits: 0, window: vec![] };
        assert_eq!(s.points[1..], [second]);
        for offset in offsets(&s.points, data.len()) {
            check_open(&src, &s.points, open_at, &data, offset, 200_000).await;
        }
        let served = check_open(&src, &s.points, open_at, &data, data.len() as u64 - 1000, 1000).await;
        assert!(served <= (zst.len() - first.len()) as u64, "read {served} of {}", zst.len());
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn pzstd_frames_and_skippable_frames() {
        let data = Arc::new(text(20 << 20, 14));
        let mut zst = run("pzstd", &["-q", "-c", "-p", "1"], &data);
        // a skippable frame of our own at the end, with an odd payload
        zst.extend([0x5a, 0x2a, 0x4d, 0x18, 5, 0, 0, 0, 1, 2, 3, 4, 5]);
        let src = MemSource::new(zst.clone());
        let s = scan(&src, Limits::default(), zst_scan).await;
        s.end.unwrap();
        assert!(s.out == *data);
        check_points(&s.points, data.len());
        assert!(s.points.len() >= 2, "pzstd made {} restart points", s.points.len());
        for offset in offsets(&s.points, data.len()) {
            check_open(&src, &s.points, open_at, &data, offset, 200_000).await;
        }
        let served = check_open(&src, &s.points, open_at, &data, data.len() as u64 - 1000, 1000).await;
        assert!(served < zst.len() as u64 / 2, "read {served} of {}", zst.len());
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn truncated_gives_the_prefix_then_fails() {
        let data = text(8 << 20, 15);
        let zst = run("zstd", &["-q", "-c"], &data);
        let s = scan(&MemSource::new(zst[..zst.len() * 6 / 10].to_vec()), Limits::default(), zst_scan).await;
        assert_eq!(s.end.unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
        assert!(s.out.len() > data.len() / 2 && data.starts_with(&s.out), "{} bytes before the cut", s.out.len());
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn damaged_data_fails() {
        let data = text(4 << 20, 16);
        let mut zst = run("zstd", &["-q", "-c"], &data);
        let at = zst.len() / 2;
        zst[at] ^= 0x55;
        let s = scan(&MemSource::new(zst), Limits::default(), zst_scan).await;
        assert_eq!(s.end.unwrap_err().kind(), io::ErrorKind::InvalidData);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn bomb_stops_early() {
        let zst = run("sh", &["-c", "head -c 209715200 /dev/zero | zstd -q -c"], b"");
        let src = MemSource::new(zst);
        let s = scan(&src, Limits { max_ratio: 50, ..Limits::default() }, zst_scan).await;
        assert_eq!(s.end.unwrap_err().kind(), io::ErrorKind::InvalidData);
        assert!(s.out.len() < 8 << 20, "{} bytes out", s.out.len());
        let s = scan(&src, Limits { max_total: 5 << 20, max_ratio: u64::MAX, ..Limits::default() }, zst_scan).await;
        assert_eq!(s.end.unwrap_err().kind(), io::ErrorKind::InvalidData);
        assert!(s.out.len() <= 5 << 20);
    }
}
