//! The tar walk and the archive tree over archives made by Debian's tar (and Python's
//! tarfile, for members tar itself refuses to write), from index to bytes read back.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use futures_util::TryStreamExt;

use super::super::zst::tests::{run, text, MemSource};
use super::super::{build_index, ArchiveTree, Catalog, Data, Format, Index, Limits, Source};
use crate::tree::Tree;

fn sh(dir: &Path, script: &str) {
    let ok = Command::new("sh").arg("-c").arg(script).current_dir(dir).status().expect("sh").success();
    assert!(ok, "failed: {script}");
}

/// Writes `files` (relative path, bytes) under `dir/src`.
fn populate(dir: &Path, files: &[(&str, &[u8])]) {
    for (name, bytes) in files {
        let p = dir.join("src").join(name);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, bytes).expect("write");
    }
}

async fn index_of(archive: Vec<u8>) -> (Arc<MemSource>, crate::Result<Index>) {
    let src = MemSource::new(archive);
    let idx = build_index(src.clone(), Limits::default(), Arc::new(AtomicBool::new(false))).await;
    (src, idx)
}

async fn tree_of(archive: Vec<u8>) -> ArchiveTree {
    let (src, idx) = index_of(archive).await;
    let catalog = Catalog::new(Arc::new(idx.expect("index")), "test", 0);
    ArchiveTree::new(src, Arc::new(catalog))
}

fn p(path: &str) -> Vec<String> {
    path.split('/').filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

async fn read(tree: &ArchiveTree, path: &str, range: Option<std::ops::Range<u64>>) -> Vec<u8> {
    let (_, s) = tree.read(&p(path), range).await.expect("read");
    let chunks: Vec<bytes::Bytes> = s.try_collect().await.expect("stream");
    chunks.concat()
}

fn paths(index: &Index) -> Vec<String> {
    let mut v: Vec<String> = index.members.iter().map(|m| m.path.join("/")).collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread")]
async fn gnu_tar_long_names_are_listed_whole() {
    let dir = tempfile::tempdir().expect("tempdir");
    let long = format!("{}/{}.txt", "d".repeat(120), "n".repeat(150));
    populate(dir.path(), &[(&long, b"deep")]);
    sh(dir.path(), "tar --format=gnu -cf a.tar -C src .");
    let (_, idx) = index_of(std::fs::read(dir.path().join("a.tar")).expect("read")).await;
    assert!(paths(&idx.expect("index")).contains(&long));
}

#[tokio::test(flavor = "multi_thread")]
async fn pax_tar_keeps_long_names_and_fractional_times() {
    let dir = tempfile::tempdir().expect("tempdir");
    let long = format!("{}/é-{}.txt", "p".repeat(130), "q".repeat(140));
    populate(dir.path(), &[(&long, b"pax")]);
    sh(
        dir.path(),
        &format!("touch -d '2021-03-04 05:06:07.25 UTC' 'src/{long}' && tar --format=pax -cf a.tar -C src ."),
    );
    let (_, idx) = index_of(std::fs::read(dir.path().join("a.tar")).expect("read")).await;
    let idx = idx.expect("index");
    let m = idx.members.iter().find(|m| m.path.join("/") == long).expect("member");
    assert_eq!(m.modified_ns, 1_614_834_367_250_000_000);
}

#[tokio::test(flavor = "multi_thread")]
async fn plain_tar_members_are_ranges_of_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let body = text(300_000, 7);
    populate(dir.path(), &[("a/b.txt", &body), ("c.txt", b"small")]);
    sh(dir.path(), "tar -cf a.tar -C src .");
    let tree = tree_of(std::fs::read(dir.path().join("a.tar")).expect("read")).await;
    assert_eq!(read(&tree, "a/b.txt", None).await, body);
    assert_eq!(read(&tree, "a/b.txt", Some(1000..2000)).await, &body[1000..2000]);
    assert_eq!(read(&tree, "c.txt", None).await, b"small");
}

#[tokio::test(flavor = "multi_thread")]
async fn folders_implied_by_member_paths_are_listed() {
    let dir = tempfile::tempdir().expect("tempdir");
    populate(dir.path(), &[("x/y/z.txt", b"z")]);
    // Only the file, no entries for its folders.
    sh(dir.path(), "tar -cf a.tar -C src x/y/z.txt");
    let tree = tree_of(std::fs::read(dir.path().join("a.tar")).expect("read")).await;
    let root = tree.list(&[]).await.expect("list");
    assert_eq!(root.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(), ["x"]);
    assert!(root[0].meta.is_dir());
    assert_eq!(tree.list(&p("x/y")).await.expect("list")[0].name, "z.txt");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_member_near_the_end_of_a_tar_gz_reads_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (first, last) = (text(9 << 20, 1), text(200_000, 2));
    populate(dir.path(), &[("1-first.txt", &first), ("2-last.txt", &last)]);
    sh(dir.path(), "tar -czf a.tgz -C src 1-first.txt 2-last.txt");
    let tree = tree_of(std::fs::read(dir.path().join("a.tgz")).expect("read")).await;
    assert_eq!(read(&tree, "2-last.txt", None).await, last);
    assert_eq!(read(&tree, "1-first.txt", Some(5_000_000..5_000_100)).await, &first[5_000_000..5_000_100]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tar_zst_member_reads_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let body = text(1 << 20, 3);
    populate(dir.path(), &[("m.txt", &body)]);
    sh(dir.path(), "tar -cf - -C src m.txt | zstd -q -o a.tar.zst");
    let (_, idx) = index_of(std::fs::read(dir.path().join("a.tar.zst")).expect("read")).await;
    assert_eq!(idx.as_ref().expect("index").format, Format::TarZst);
    let tree = tree_of(std::fs::read(dir.path().join("a.tar.zst")).expect("read")).await;
    assert_eq!(read(&tree, "m.txt", None).await, body);
}

#[tokio::test(flavor = "multi_thread")]
async fn hard_links_read_their_targets_bytes_and_symlinks_are_left_out() {
    let dir = tempfile::tempdir().expect("tempdir");
    populate(dir.path(), &[("orig.txt", b"original")]);
    sh(dir.path(), "cd src && ln orig.txt hard.txt && ln -s /etc/passwd sym && ln -s orig.txt rel && cd .. && tar -cf a.tar -C src .");
    let (_, idx) = index_of(std::fs::read(dir.path().join("a.tar")).expect("read")).await;
    assert_eq!(paths(&idx.expect("index")), ["hard.txt", "orig.txt"]);
    let tree = tree_of(std::fs::read(dir.path().join("a.tar")).expect("read")).await;
    assert_eq!(read(&tree, "hard.txt", None).await, b"original");
}

#[tokio::test(flavor = "multi_thread")]
async fn members_named_outside_the_archive_are_left_out() {
    let dir = tempfile::tempdir().expect("tempdir");
    sh(
        dir.path(),
        "python3 -c \"
import io, tarfile
t = tarfile.open('a.tar', 'w', format=tarfile.GNU_FORMAT)
for name in ['../evil', '/etc/passwd', 'ok/../../up', 'C:\\\\\\\\x', 'fine.txt']:
    i = tarfile.TarInfo(name); i.size = 4; t.addfile(i, io.BytesIO(b'evil'))
t.close()\"",
    );
    let (_, idx) = index_of(std::fs::read(dir.path().join("a.tar")).expect("read")).await;
    assert_eq!(paths(&idx.expect("index")), ["fine.txt"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cut_tar_lists_what_precedes_the_cut_and_refuses_the_cut_member() {
    let dir = tempfile::tempdir().expect("tempdir");
    populate(dir.path(), &[("1.txt", &text(10_000, 4)), ("2.txt", &text(100_000, 5))]);
    sh(dir.path(), "tar -cf a.tar -C src 1.txt 2.txt");
    let mut bytes = std::fs::read(dir.path().join("a.tar")).expect("read");
    bytes.truncate(bytes.len() / 2);
    let tree = tree_of(bytes).await;
    assert_eq!(read(&tree, "1.txt", None).await.len(), 10_000);
    assert!(matches!(tree.read(&p("2.txt"), None).await, Err(crate::Error::Archive(_))));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cut_tar_gz_lists_what_precedes_the_cut() {
    let dir = tempfile::tempdir().expect("tempdir");
    populate(dir.path(), &[("1.txt", &text(10_000, 4)), ("2.txt", &text(3 << 20, 5))]);
    sh(dir.path(), "tar -czf a.tgz -C src 1.txt 2.txt");
    let mut bytes = std::fs::read(dir.path().join("a.tgz")).expect("read");
    bytes.truncate(bytes.len() / 2);
    let (_, idx) = index_of(bytes).await;
    let idx = idx.expect("index");
    assert_eq!(paths(&idx), ["1.txt", "2.txt"]);
    assert!(idx.members[1].refused.is_some());
    assert!(idx.members[0].refused.is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn something_that_is_not_an_archive_is_refused() {
    let (_, idx) = index_of(b"just some text, not an archive at all".to_vec()).await;
    assert!(matches!(idx, Err(crate::Error::Archive(_))));
}

#[tokio::test(flavor = "multi_thread")]
async fn member_offsets_of_a_tar_gz_are_in_the_decompressed_stream() {
    let dir = tempfile::tempdir().expect("tempdir");
    populate(dir.path(), &[("f.txt", b"hello")]);
    sh(dir.path(), "tar -czf a.tgz -C src f.txt");
    let (_, idx) = index_of(std::fs::read(dir.path().join("a.tgz")).expect("read")).await;
    assert_eq!(idx.expect("index").members[0].data, Data::Stream { offset: 512 });
}

#[tokio::test(flavor = "multi_thread")]
async fn a_build_whose_request_went_away_stops_reading_the_archive() {
    let dir = tempfile::tempdir().expect("tempdir");
    populate(dir.path(), &[("big.txt", &text(64 << 20, 8))]);
    sh(dir.path(), "tar -czf a.tgz -C src big.txt");
    let src = MemSource::new(std::fs::read(dir.path().join("a.tgz")).expect("read"));
    let cancel = Arc::new(AtomicBool::new(false));
    let build = build_index(src.clone(), Limits::default(), cancel.clone());
    // The request gives up early: its future is dropped mid-build.
    assert!(tokio::time::timeout(std::time::Duration::from_millis(30), build).await.is_err());
    assert!(cancel.load(std::sync::atomic::Ordering::Relaxed), "dropping the build cancels it");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let stopped_at = src.served();
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(src.served(), stopped_at, "still reading after the build was dropped");
    assert!(stopped_at < src.size(), "read the whole archive anyway");
}

/// A ustar header block with the `size` and `mtime` fields given as they are (12 bytes
/// each, octal text or GNU base-256) and a right checksum.
fn header(name: &str, kind: u8, size: &[u8; 12], mtime: &[u8; 12]) -> Vec<u8> {
    let mut h = vec![0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    h[100..108].copy_from_slice(b"0000644\0");
    h[124..136].copy_from_slice(size);
    h[136..148].copy_from_slice(mtime);
    h[156] = kind;
    h[257..265].copy_from_slice(b"ustar\x0000");
    h[148..156].fill(b' ');
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    h
}

/// `data` padded to whole blocks.
fn blocks(data: &[u8]) -> Vec<u8> {
    let mut b = data.to_vec();
    b.resize(data.len().div_ceil(512) * 512, 0);
    b
}

/// GNU base-256 form of `n` in a 12-byte numeric field.
fn base256(n: u64) -> [u8; 12] {
    let mut f = [0u8; 12];
    f[0] = 0x80;
    f[4..].copy_from_slice(&n.to_be_bytes());
    f
}

#[tokio::test(flavor = "multi_thread")]
async fn an_mtime_too_late_for_nanoseconds_is_the_latest_time_not_an_overflow() {
    let four = b"00000000004\0";
    let archive = [
        header("octal.txt", b'0', four, b"777777777777"),
        blocks(b"late"),
        header("base256.txt", b'0', four, &base256(u64::MAX)),
        blocks(b"late"),
        vec![0; 1024],
    ]
    .concat();
    let (_, idx) = index_of(archive).await;
    let idx = idx.expect("index");
    assert_eq!(paths(&idx), ["base256.txt", "octal.txt"]);
    assert!(idx.members.iter().all(|m| m.modified_ns == i64::MAX), "{:?}", idx.members);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_enormous_size_on_a_skipped_member_is_damage_not_an_overflow() {
    let archive = [
        header("ok.txt", b'0', b"00000000002\0", b"00000000000\0"),
        blocks(b"ok"),
        // Left out for its name, so no limit looks at its size: skipping its data must
        // still not round the size up past u64::MAX.
        header("../up", b'0', &base256(u64::MAX), b"00000000000\0"),
        vec![0; 4096],
    ]
    .concat();
    for archive in [archive.clone(), run("gzip", &["-c"], &archive)] {
        let (_, idx) = index_of(archive).await;
        assert_eq!(paths(&idx.expect("index")), ["ok.txt"]);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cut_member_that_replaced_an_earlier_copy_of_its_name_is_refused() {
    let (two, big, zero) = (b"00000000002\0", b"00000001750\0", b"00000000000\0");
    let mut archive =
        [header("a", b'0', two, zero), blocks(b"aa"), header("b", b'0', two, zero), blocks(b"bb")].concat();
    // A second `a` (1000 bytes) takes the first one's place in the list, then is cut.
    archive.extend([header("a", b'0', big, zero), vec![b'x'; 100]].concat());
    for archive in [archive.clone(), run("gzip", &["-c"], &archive)] {
        let (_, idx) = index_of(archive).await;
        let idx = idx.expect("index");
        assert_eq!(paths(&idx), ["a", "b"]);
        assert!(idx.members[0].size == 1000 && idx.members[0].refused.is_some(), "{:?}", idx.members[0]);
        assert!(idx.members[1].refused.is_none());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_member_nested_thousands_of_folders_deep_is_left_out_without_exhausting_memory() {
    let dir = tempfile::tempdir().expect("tempdir");
    sh(
        dir.path(),
        "python3 -c \"
import io, tarfile
t = tarfile.open('a.tar', 'w', format=tarfile.PAX_FORMAT)
for name in ['a/' * 30000 + 'deep.txt', 'b/' * 200 + 'ok.txt']:
    i = tarfile.TarInfo(name); i.size = 2; t.addfile(i, io.BytesIO(b'hi'))
t.close()\"",
    );
    let tree = tree_of(std::fs::read(dir.path().join("a.tar")).expect("read")).await;
    assert_eq!(tree.list(&[]).await.expect("list").iter().map(|e| e.name.as_str()).collect::<Vec<_>>(), ["b"]);
    assert_eq!(read(&tree, &format!("{}ok.txt", "b/".repeat(200)), None).await, b"hi");
}
