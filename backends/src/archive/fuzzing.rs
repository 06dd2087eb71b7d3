//! Entry point of the `archives` fuzz target (`fuzz/fuzz_targets/archives.rs`): the bytes of
//! a file a client uploaded and then opened as `NAME.zip!/`. Not part of the crate's API;
//! public only so the fuzz crate can call it.
#![doc(hidden)]

use std::collections::HashSet;
use std::io::Write;
use std::ops::Range;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use futures_util::StreamExt;

use super::{build_index, safe_path, ArchiveTree, Catalog, Checkpoint, Data, Format, Index, Limits, Member, Source};
use crate::tree::Tree;
use crate::{ByteStream, Error, Result};

/// Small caps, so that no input makes an iteration slow or huge.
const LIMITS: Limits = Limits { max_members: 10_000, max_total: 64 << 20, max_ratio: 200 };

/// Members read back per archive. A compressed tar of many small members would otherwise
/// make one iteration decompress its stream once per member (a server reads a member only
/// when asked, restarting at most [`super::CHECKPOINT_SPACING`] before it).
const MAX_READS: usize = 64;

/// Runs `data` through every archive reader a client reaches, as the server does: the
/// format sniffed from its first bytes, the index built by [`build_index`] (zip central
/// directory, plain tar walk, or the tar walk over the gzip or zstd scanner), laid out by
/// [`Catalog`], listed, and its members read through [`ArchiveTree::read`] (on the blocking
/// pool over a `SourceReader`). A plain tar is also read with the checksums of its ustar
/// headers made right, and that gzipped and zstd-compressed, so that the walks and the
/// restarted reads see tar structures a fuzzer could hardly write otherwise.
///
/// Panics (so the fuzzer reports it) on a panic anywhere in that, and when a promise breaks:
/// - an archive is indexed or refused with [`Error::Archive`]: from a source that never
///   fails, no other error (which the model reports as a server failure, and retries);
/// - the index has the format sniffed, stays within [`Limits`], lists each path once, every
///   path as [`safe_path`] leaves it, folders empty; restart points begin at 0 and ascend;
/// - `Index::decode(index.encode())` gives the index back (and any input that decodes as
///   a stored index round-trips too);
/// - no read asks the source for bytes outside the archive;
/// - listing shows what `stat` shows, and a file's size is its member's;
/// - a read of every listed, non-refused member (the first [`MAX_READS`]), whole and one
///   range of it, yields exactly the bytes asked for or ends in an error, never more; a
///   range read that succeeds gives the same bytes as a whole read that succeeds;
/// - a gzipped or zstd-compressed tar lists the same members as the tar itself.
pub fn fuzz_archive(data: &[u8]) {
    if let Ok(stored) = Index::decode(data) {
        assert_eq!(Index::decode(&stored.encode()).ok().as_ref(), Some(&stored), "stored index round trip");
    }
    let data = Bytes::copy_from_slice(data);
    runtime().block_on(async move {
        let mut plain = check(data.clone()).await;
        if Format::sniff(&data[..data.len().min(512)]) == Some(Format::Tar) {
            let fixed = with_checksums(&data);
            if fixed != data {
                plain = check(fixed.clone()).await;
            }
            for compressed in [gzip(&fixed), zstd(&fixed)] {
                let listed = check(compressed).await;
                assert_eq!(listed, plain, "a compressed tar lists other members than the tar");
            }
        }
    });
}

/// `data` with the checksum of every 512-byte block that carries the ustar magic made right,
/// so that a fuzzer's change to a header's fields reaches the walk.
fn with_checksums(data: &Bytes) -> Bytes {
    let mut out = data.to_vec();
    for h in out.chunks_exact_mut(512).filter(|h| &h[257..262] == b"ustar") {
        h[148..156].fill(b' ');
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    }
    out.into()
}

/// One multi-thread runtime for the whole run: the fuzz thread only waits in `block_on`,
/// so the parsers' own `block_on` calls (in `SourceReader`) run on its blocking pool.
fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("a tokio runtime")
    })
}

fn gzip(data: &[u8]) -> Bytes {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(data).expect("gzip in memory");
    gz.finish().expect("gzip in memory").into()
}

fn zstd(data: &[u8]) -> Bytes {
    zstd::bulk::compress(data, 1).expect("zstd in memory").into()
}

/// What a listing shows of a member, to compare a tar with its compressed forms.
type Listed = Option<Vec<(Vec<String>, bool, u64, i64, bool)>>;

/// Indexes, lays out, lists and reads one archive; returns its members (`None`: refused).
async fn check(data: Bytes) -> Listed {
    let sniffed = Format::sniff(&data[..data.len().min(512)]);
    let (chunk, seed) = (1 + data.len() % 4096, data.len() as u64);
    let source = Arc::new(Mem { data, chunk });
    let index = match build_index(source.clone(), LIMITS, Arc::new(AtomicBool::new(false))).await {
        Ok(index) => index,
        Err(Error::Archive(_)) => return None,
        Err(e) => panic!("an archive refused with {e:?}, not Error::Archive"),
    };
    check_index(&index, sniffed, source.size());
    let listed = index.members.iter().map(|m| (m.path.clone(), m.dir, m.size, m.modified_ns, m.refused.is_some()));
    let listed = Some(listed.collect());
    let index = Arc::new(index);
    let tree = ArchiveTree::new(source, Arc::new(Catalog::new(index.clone(), "fuzz", 0)));
    check_listing(&tree, &index).await;
    let readable = index.members.iter().filter(|m| !m.dir && m.refused.is_none());
    for (i, m) in readable.take(MAX_READS).enumerate() {
        check_reads(&tree, m, seed + i as u64).await;
    }
    listed
}

fn check_index(index: &Index, sniffed: Option<Format>, archive_size: u64) {
    assert_eq!(Some(index.format), sniffed, "indexed as another format than sniffed");
    assert!(index.members.len() as u64 <= LIMITS.max_members, "{} members", index.members.len());
    let total = index.members.iter().try_fold(0u64, |t, m| t.checked_add(m.size));
    assert!(total.is_some_and(|t| t <= LIMITS.max_total), "members hold {total:?} bytes");
    let mut paths = HashSet::new();
    for m in &index.members {
        assert!(!m.path.is_empty(), "a member at the root: {m:?}");
        for seg in &m.path {
            assert_eq!(safe_path(seg), Some(vec![seg.clone()]), "unsafe name in {m:?}");
        }
        assert!(paths.insert(&m.path), "{:?} listed twice", m.path);
        assert!(!m.dir || m.size == 0, "a folder with a size: {m:?}");
        if m.refused.is_none() {
            match m.data {
                Data::Stored { offset } if !m.dir => {
                    assert!(offset.checked_add(m.size).is_some_and(|e| e <= archive_size), "{m:?} past the end")
                }
                Data::Deflated { offset, compressed } => {
                    assert!(offset.checked_add(compressed).is_some_and(|e| e <= archive_size), "{m:?} past the end")
                }
                _ => {}
            }
        }
    }
    match index.format {
        Format::Zip | Format::Tar => assert!(index.checkpoints.is_empty(), "restart points in an uncompressed archive"),
        Format::TarGz | Format::TarZst => {
            let start = Checkpoint { out: 0, input: 0, bits: 0, window: Vec::new() };
            assert_eq!(index.checkpoints.first(), Some(&start), "restart points");
            for pair in index.checkpoints.windows(2) {
                assert!(pair[0].out < pair[1].out && pair[0].input < pair[1].input, "restart points out of order");
            }
        }
    }
    let again = Index::decode(&index.encode()).ok();
    assert!(again.as_ref() == Some(index), "index round trip gave {again:?} for {index:?}");
}

/// Lists every folder from the root: each entry is what `stat` says, each file as large as
/// its member.
async fn check_listing(tree: &ArchiveTree, index: &Index) {
    let sizes: std::collections::HashMap<&[String], u64> =
        index.members.iter().map(|m| (m.path.as_slice(), m.size)).collect();
    let mut dirs = vec![Vec::<String>::new()];
    while let Some(dir) = dirs.pop() {
        let entries = tree.list(&dir).await.unwrap_or_else(|e| panic!("listing {dir:?}: {e}"));
        for entry in entries {
            let mut path = dir.clone();
            path.push(entry.name);
            let stat = tree.stat(&path).await.expect("stat of an archive");
            assert_eq!(stat.as_ref(), Some(&entry.meta), "stat of {path:?} differs from its listing");
            if entry.meta.is_dir() {
                dirs.push(path);
            } else {
                assert_eq!(sizes.get(path.as_slice()), Some(&entry.meta.size), "size of {path:?}");
            }
        }
    }
    let used = tree.used(&[]).await.expect("used");
    assert!(used <= LIMITS.max_total, "{used} bytes used");
}

/// Reads member `m` whole, then one range of it (chosen by `seed`).
async fn check_reads(tree: &ArchiveTree, m: &Member, seed: u64) {
    let whole = match tree.read(&m.path, None).await {
        Ok((meta, body)) => {
            assert_eq!(meta.size, m.size, "size of {:?}", m.path);
            drain(body, m.size, &m.path).await
        }
        // a file that is also the folder of other members is shown as the folder
        Err(Error::IsADirectory) => return,
        Err(e) => panic!("reading {:?}: {e:?}", m.path),
    };
    let size = m.size;
    let start = seed.wrapping_mul(7919) % (size + 1);
    let end = if seed.is_multiple_of(2) { size } else { start + (size - start) / 2 };
    let range = start..end;
    let Ok((_, body)) = tree.read(&m.path, Some(range.clone())).await else {
        panic!("range {range:?} of {:?} refused", m.path)
    };
    let part = drain(body, end - start, &m.path).await;
    if let (Some(whole), Some(part)) = (whole, part) {
        let want = &whole[start as usize..end as usize];
        assert!(part == want, "range {range:?} of {:?} differs from the whole read", m.path);
    }
}

/// The body's bytes, or `None` if it ended in an error; panics if it gives more than `len`
/// bytes, or ends without error short of them.
async fn drain(mut body: ByteStream, len: u64, path: &[String]) -> Option<Vec<u8>> {
    let mut got = Vec::new();
    while let Some(chunk) = body.next().await {
        match chunk {
            Ok(chunk) => {
                got.extend_from_slice(&chunk);
                assert!(got.len() as u64 <= len, "{path:?}: more than the {len} bytes asked for");
            }
            Err(_) => return None,
        }
    }
    assert_eq!(got.len() as u64, len, "{path:?}: a body ended early without an error");
    Some(got)
}

/// An archive in memory, served in chunks of `chunk` bytes.
struct Mem {
    data: Bytes,
    chunk: usize,
}

#[async_trait::async_trait]
impl Source for Mem {
    fn size(&self) -> u64 {
        self.data.len() as u64
    }

    async fn read(&self, range: Range<u64>) -> Result<ByteStream> {
        assert!(
            range.start <= range.end && range.end <= self.size(),
            "read of {range:?} of a {} byte archive",
            self.size()
        );
        let data = self.data.slice(range.start as usize..range.end as usize);
        let (len, chunk) = (data.len(), self.chunk);
        let chunks = (0..len).step_by(chunk).map(move |at| Ok(data.slice(at..(at + chunk).min(len))));
        Ok(Box::pin(futures_util::stream::iter(chunks)))
    }
}
