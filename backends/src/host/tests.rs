//! Behaviour of a host tree, checked against real directories on disk.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;

use super::*;
use crate::tree::Kind;

fn p(segs: &[&str]) -> Vec<String> {
    segs.iter().map(|s| s.to_string()).collect()
}

fn body(chunks: Vec<Vec<u8>>) -> ByteStream {
    let items: Vec<std::io::Result<Bytes>> = chunks.into_iter().map(|c| Ok(Bytes::from(c))).collect();
    Box::pin(futures_util::stream::iter(items))
}

fn one(data: &[u8]) -> ByteStream {
    body(vec![data.to_vec()])
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + i / 251) as u8).collect()
}

struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    outside: PathBuf,
    tree: HostTree,
}

async fn fixture_with(opts: HostOptions) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let outside = dir.path().join("outside");
    std::fs::create_dir(&root).unwrap();
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("secret"), b"secret").unwrap();
    let tree = HostTree::open(&root, opts).await.unwrap();
    Fixture { _dir: dir, root, outside, tree }
}

async fn fixture() -> Fixture {
    fixture_with(HostOptions::default()).await
}

async fn put(tree: &HostTree, path: &[String], data: &[u8], how: Install) -> Result<Meta> {
    let staged = tree.stage(path, one(data), StageOptions::default()).await?;
    Ok(tree.install(staged, path, how).await?.meta)
}

async fn read_all(tree: &HostTree, path: &[String], range: Option<Range<u64>>) -> Result<Vec<u8>> {
    let (_, mut stream) = tree.read(path, range).await?;
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk?);
    }
    Ok(out)
}

async fn names_in(tree: &HostTree, dir: &[String]) -> Vec<String> {
    let mut names: Vec<String> = tree.list(dir).await.unwrap().into_iter().map(|e| e.name).collect();
    names.sort();
    names
}

fn on_disk(dir: &Path) -> Vec<Vec<u8>> {
    let mut names: Vec<Vec<u8>> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().as_bytes().to_vec()).collect();
    names.sort();
    names
}

fn mkfifo(path: &Path) {
    rustix::fs::mkfifoat(rustix::fs::CWD, path, Mode::from_raw_mode(0o644)).unwrap();
}

#[test]
fn a_tree_can_be_shared_between_tasks() {
    fn shared<T: Send + Sync + Clone + 'static>() {}
    shared::<HostTree>();
}

#[tokio::test]
async fn open_refuses_missing_roots_and_files() {
    let f = fixture().await;
    assert!(matches!(HostTree::open(&f.root.join("nope"), HostOptions::default()).await, Err(Error::Missing)));
    assert!(matches!(
        HostTree::open(&f.outside.join("secret"), HostOptions::default()).await,
        Err(Error::NotADirectory)
    ));
    assert_eq!(f.tree.root(), f.root);
}

#[tokio::test]
async fn round_trip_with_ranges_small_and_large() {
    let f = fixture().await;
    for (name, len) in [("small", 1000), ("medium", 200_000), ("large", 3_000_000)] {
        let data = pattern(len);
        let chunks = data.chunks(65_521).map(<[u8]>::to_vec).collect();
        let staged = f.tree.stage(&p(&[name]), body(chunks), StageOptions::default()).await.unwrap();
        assert_eq!(staged.size, len as u64);
        let meta = f.tree.install(staged, &p(&[name]), Install::Replace).await.unwrap().meta;
        assert_eq!((meta.kind, meta.size), (Kind::File, len as u64));
        assert_eq!(std::fs::read(f.root.join(name)).unwrap(), data);
        assert_eq!(read_all(&f.tree, &p(&[name]), None).await.unwrap(), data);
        let r = 10..(len as u64 - 10);
        assert_eq!(read_all(&f.tree, &p(&[name]), Some(r.clone())).await.unwrap(), data[10..len - 10]);
        // The end is clamped to the size; a start past it is refused.
        assert_eq!(read_all(&f.tree, &p(&[name]), Some(5..u64::MAX)).await.unwrap(), data[5..]);
        assert!(f.tree.read(&p(&[name]), Some(len as u64 + 1..len as u64 + 2)).await.is_err());
    }
}

#[tokio::test]
async fn replace_swaps_content_and_modified_time_is_applied() {
    let f = fixture().await;
    put(&f.tree, &p(&["a"]), b"old", Install::Replace).await.unwrap();
    let opts = StageOptions { limit: None, modified_ns: Some(1_000_000_000_123) };
    let staged = f.tree.stage(&p(&["a"]), one(b"new"), opts).await.unwrap();
    let meta = f.tree.install(staged, &p(&["a"]), Install::Replace).await.unwrap().meta;
    assert_eq!(meta.modified_ns, 1_000_000_000_123);
    assert_eq!(std::fs::read(f.root.join("a")).unwrap(), b"new");
    assert_eq!(on_disk(&f.root), vec![b"a".to_vec()]);
}

#[tokio::test]
async fn create_new_refuses_an_existing_name() {
    let f = fixture().await;
    put(&f.tree, &p(&["a"]), b"first", Install::CreateNew).await.unwrap();
    assert!(matches!(put(&f.tree, &p(&["a"]), b"second", Install::CreateNew).await, Err(Error::Exists)));
    assert_eq!(std::fs::read(f.root.join("a")).unwrap(), b"first");
    assert_eq!(on_disk(&f.root), vec![b"a".to_vec()]);
}

#[tokio::test]
async fn replace_refuses_a_directory() {
    let f = fixture().await;
    std::fs::create_dir(f.root.join("d")).unwrap();
    assert!(matches!(put(&f.tree, &p(&["d"]), b"x", Install::Replace).await, Err(Error::IsADirectory)));
    assert!(f.root.join("d").is_dir());
}

#[tokio::test]
async fn cut_body_keeps_old_content_and_leaves_no_temp_file() {
    let f = fixture().await;
    put(&f.tree, &p(&["a"]), b"old", Install::Replace).await.unwrap();
    for first in [10, 2_000_000] {
        let items = vec![Ok(Bytes::from(pattern(first))), Err(std::io::Error::other("client went away"))];
        let cut: ByteStream = Box::pin(futures_util::stream::iter(items));
        let result = f.tree.stage(&p(&["a"]), cut, StageOptions::default()).await;
        assert!(matches!(result, Err(Error::Body(_))));
        assert_eq!(std::fs::read(f.root.join("a")).unwrap(), b"old");
        assert_eq!(on_disk(&f.root), vec![b"a".to_vec()]);
    }
}

#[tokio::test]
async fn body_over_the_limit_is_refused_without_leftovers() {
    let f = fixture().await;
    let opts = StageOptions { limit: Some(100_000), modified_ns: None };
    let result = f.tree.stage(&p(&["big"]), body(vec![pattern(70_000), pattern(70_000)]), opts).await;
    assert!(matches!(result, Err(Error::TooLarge(100_000))));
    assert!(on_disk(&f.root).is_empty());
}

#[tokio::test]
async fn a_small_body_touches_the_disk_only_at_install() {
    let f = fixture().await;
    let staged = f.tree.stage(&p(&["a"]), one(b"data"), StageOptions::default()).await.unwrap();
    assert!(on_disk(&f.root).is_empty());
    f.tree.install(staged, &p(&["a"]), Install::Replace).await.unwrap();
    assert_eq!(on_disk(&f.root), vec![b"a".to_vec()]);
}

#[tokio::test]
async fn dropped_staged_body_removes_its_temp_file() {
    let f = fixture().await;
    // Larger than what waits in memory until install.
    let staged = f.tree.stage(&p(&["a"]), body(vec![pattern(100_000)]), StageOptions::default()).await.unwrap();
    assert_eq!(on_disk(&f.root).len(), 1);
    drop(staged);
    for _ in 0..100 {
        if on_disk(&f.root).is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("temp file left behind: {:?}", on_disk(&f.root));
}

#[tokio::test]
async fn list_hides_temp_files_and_specials() {
    let f = fixture().await;
    std::fs::write(f.root.join("file"), b"x").unwrap();
    std::fs::create_dir(f.root.join("dir")).unwrap();
    std::fs::write(f.root.join(".wharf-tmp-0123"), b"partial").unwrap();
    mkfifo(&f.root.join("fifo"));
    let _socket = std::os::unix::net::UnixListener::bind(f.root.join("socket")).unwrap();
    assert_eq!(names_in(&f.tree, &[]).await, ["dir", "file"]);
    assert!(f.tree.stat(&p(&[".wharf-tmp-0123"])).await.unwrap().is_none());
    assert!(matches!(read_all(&f.tree, &p(&[".wharf-tmp-0123"]), None).await, Err(Error::Missing)));
    assert_eq!(f.tree.stat(&p(&["socket"])).await.unwrap().map(|m| m.kind), Some(Kind::Special));
}

#[tokio::test]
async fn temp_names_are_refused_as_targets() {
    let f = fixture().await;
    std::fs::write(f.root.join("a"), b"x").unwrap();
    let tmp = p(&[".wharf-tmp-x"]);
    assert!(matches!(f.tree.stage(&tmp, one(b"x"), StageOptions::default()).await, Err(Error::Escapes)));
    assert!(matches!(f.tree.create_dir(&tmp).await, Err(Error::Escapes)));
    assert!(matches!(f.tree.rename(&p(&["a"]), &tmp, false).await, Err(Error::Escapes)));
    assert!(matches!(f.tree.copy(&p(&["a"]), &tmp).await, Err(Error::Escapes)));
    assert_eq!(on_disk(&f.root), vec![b"a".to_vec()]);
}

#[tokio::test]
async fn links_leaving_the_tree_are_absent() {
    let f = fixture().await;
    std::os::unix::fs::symlink("/etc", f.root.join("etc")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", f.root.join("passwd")).unwrap();
    std::os::unix::fs::symlink("../outside", f.root.join("up")).unwrap();
    std::os::unix::fs::symlink(f.outside.join("secret"), f.root.join("secret")).unwrap();
    for name in ["etc", "passwd", "up", "secret"] {
        assert!(f.tree.stat(&p(&[name])).await.unwrap().is_none(), "{name}");
        let read = read_all(&f.tree, &p(&[name]), None).await;
        assert!(matches!(read, Err(Error::Escapes | Error::Missing)), "{name}: {read:?}");
    }
    assert!(f.tree.stat(&p(&["up", "secret"])).await.unwrap().is_none());
    assert!(matches!(read_all(&f.tree, &p(&["up", "secret"]), None).await, Err(Error::Escapes | Error::Missing)));
    assert!(matches!(f.tree.list(&p(&["up"])).await, Err(Error::Missing)));
    assert!(names_in(&f.tree, &[]).await.is_empty());
}

#[tokio::test]
async fn a_link_to_a_file_inside_the_tree_is_followed() {
    let f = fixture().await;
    std::fs::create_dir(f.root.join("real")).unwrap();
    std::fs::write(f.root.join("real/file"), b"inside").unwrap();
    std::fs::create_dir(f.root.join("other")).unwrap();
    std::os::unix::fs::symlink("../real/file", f.root.join("other/alias")).unwrap();
    assert_eq!(read_all(&f.tree, &p(&["other", "alias"]), None).await.unwrap(), b"inside");
    let listed = f.tree.list(&p(&["other"])).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0].name.as_str(), listed[0].meta.kind), ("alias", Kind::File));
}

#[tokio::test]
async fn a_link_to_a_folder_is_not_followed_anywhere_on_a_path() {
    let f = fixture().await;
    std::fs::create_dir(f.root.join("real")).unwrap();
    std::fs::write(f.root.join("real/file"), b"inside").unwrap();
    std::fs::create_dir(f.root.join("other")).unwrap();
    std::os::unix::fs::symlink("../real", f.root.join("other/alias")).unwrap();
    assert!(f.tree.stat(&p(&["other", "alias"])).await.unwrap().is_none());
    assert!(f.tree.stat(&p(&["other", "alias", "file"])).await.unwrap().is_none());
    assert!(read_all(&f.tree, &p(&["other", "alias", "file"]), None).await.is_err());
    assert!(matches!(f.tree.list(&p(&["other", "alias"])).await, Err(Error::Missing)));
    assert!(f.tree.list(&p(&["other"])).await.unwrap().is_empty());
    let put = put(&f.tree, &p(&["other", "alias", "new"]), b"x", Install::Replace).await;
    assert!(put.is_err(), "{put:?}");
    assert!(!f.root.join("real/new").exists());
}

#[tokio::test]
async fn dangling_and_looping_links_do_not_fail_list() {
    let f = fixture().await;
    std::os::unix::fs::symlink("nowhere", f.root.join("dangling")).unwrap();
    std::os::unix::fs::symlink("loop2", f.root.join("loop1")).unwrap();
    std::os::unix::fs::symlink("loop1", f.root.join("loop2")).unwrap();
    std::os::unix::fs::symlink(".", f.root.join("self")).unwrap();
    std::fs::write(f.root.join("ok"), b"x").unwrap();
    assert_eq!(names_in(&f.tree, &[]).await, ["ok"]);
    for name in ["dangling", "loop1"] {
        assert!(f.tree.stat(&p(&[name])).await.unwrap().is_none());
        assert!(read_all(&f.tree, &p(&[name]), None).await.is_err());
    }
}

#[tokio::test]
async fn fifo_is_special_and_read_refuses_promptly() {
    let f = fixture().await;
    mkfifo(&f.root.join("fifo"));
    assert_eq!(f.tree.stat(&p(&["fifo"])).await.unwrap().map(|m| m.kind), Some(Kind::Special));
    let read = tokio::time::timeout(Duration::from_secs(5), f.tree.read(&p(&["fifo"]), None)).await;
    assert!(matches!(read, Ok(Err(Error::Special))));
    let touch = tokio::time::timeout(Duration::from_secs(5), f.tree.set_modified(&p(&["fifo"]), 0)).await;
    assert!(matches!(touch, Ok(Err(Error::Special))));
    assert!(names_in(&f.tree, &[]).await.is_empty());
}

#[tokio::test]
async fn read_of_a_directory_is_refused() {
    let f = fixture().await;
    std::fs::create_dir(f.root.join("d")).unwrap();
    assert!(matches!(f.tree.read(&p(&["d"]), None).await, Err(Error::IsADirectory)));
    std::fs::write(f.root.join("file"), b"x").unwrap();
    assert!(matches!(f.tree.list(&p(&["file"])).await, Err(Error::NotADirectory)));
    assert!(matches!(f.tree.list(&p(&["none"])).await, Err(Error::Missing)));
}

#[tokio::test]
async fn remove_of_a_dir_with_a_link_out_spares_the_outside() {
    let f = fixture().await;
    std::fs::create_dir_all(f.root.join("d/sub")).unwrap();
    std::fs::write(f.root.join("d/sub/file"), b"x").unwrap();
    std::os::unix::fs::symlink(&f.outside, f.root.join("d/out")).unwrap();
    std::os::unix::fs::symlink(&f.outside, f.root.join("d/sub/out")).unwrap();
    f.tree.remove(&p(&["d"])).await.unwrap();
    assert!(!f.root.join("d").exists());
    assert_eq!(std::fs::read(f.outside.join("secret")).unwrap(), b"secret");
    assert!(matches!(f.tree.remove(&p(&["d"])).await, Err(Error::Missing)));
}

#[tokio::test]
async fn remove_of_a_link_removes_the_link_only() {
    let f = fixture().await;
    std::os::unix::fs::symlink(&f.outside, f.root.join("out")).unwrap();
    f.tree.remove(&p(&["out"])).await.unwrap();
    assert!(on_disk(&f.root).is_empty());
    assert!(f.outside.join("secret").exists());
}

#[tokio::test]
async fn create_dir_reports_exists_and_missing_parents() {
    let f = fixture().await;
    let meta = f.tree.create_dir(&p(&["d"])).await.unwrap();
    assert_eq!(meta.kind, Kind::Dir);
    assert!(matches!(f.tree.create_dir(&p(&["d"])).await, Err(Error::Exists)));
    assert!(matches!(f.tree.create_dir(&p(&["x", "y"])).await, Err(Error::Missing)));
    std::fs::write(f.root.join("file"), b"x").unwrap();
    assert!(matches!(f.tree.create_dir(&p(&["file", "y"])).await, Err(Error::NotADirectory)));
}

#[tokio::test]
async fn rename_without_replace_refuses_an_existing_target() {
    let f = fixture().await;
    std::fs::write(f.root.join("a"), b"a").unwrap();
    std::fs::write(f.root.join("b"), b"b").unwrap();
    assert!(matches!(f.tree.rename(&p(&["a"]), &p(&["b"]), false).await, Err(Error::Exists)));
    assert_eq!(std::fs::read(f.root.join("b")).unwrap(), b"b");
    f.tree.rename(&p(&["a"]), &p(&["b"]), true).await.unwrap();
    assert_eq!(std::fs::read(f.root.join("b")).unwrap(), b"a");
    f.tree.rename(&p(&["b"]), &p(&["c"]), false).await.unwrap();
    assert_eq!(on_disk(&f.root), vec![b"c".to_vec()]);
}

#[tokio::test]
async fn rename_onto_a_directory_or_into_itself_fails() {
    let f = fixture().await;
    std::fs::create_dir_all(f.root.join("d/sub")).unwrap();
    std::fs::write(f.root.join("a"), b"a").unwrap();
    assert!(matches!(f.tree.rename(&p(&["a"]), &p(&["d"]), true).await, Err(Error::IsADirectory)));
    assert!(matches!(f.tree.rename(&p(&["d"]), &p(&["d", "sub", "d"]), false).await, Err(Error::Io(_))));
    assert!(matches!(f.tree.rename(&p(&["none"]), &p(&["x"]), false).await, Err(Error::Missing)));
}

#[tokio::test]
async fn copy_of_a_directory_tree() {
    let f = fixture().await;
    std::fs::create_dir_all(f.root.join("src/sub/deeper")).unwrap();
    std::fs::write(f.root.join("src/a"), b"a").unwrap();
    std::fs::write(f.root.join("src/sub/deeper/b"), pattern(300_000)).unwrap();
    std::fs::write(f.root.join("src/.wharf-tmp-zz"), b"partial").unwrap();
    std::os::unix::fs::symlink("a", f.root.join("src/link")).unwrap();
    mkfifo(&f.root.join("src/fifo"));
    f.tree.copy(&p(&["src"]), &p(&["dst"])).await.unwrap();
    assert_eq!(std::fs::read(f.root.join("dst/a")).unwrap(), b"a");
    assert_eq!(std::fs::read(f.root.join("dst/sub/deeper/b")).unwrap(), pattern(300_000));
    assert_eq!(std::fs::read_link(f.root.join("dst/link")).unwrap(), Path::new("a"));
    assert_eq!(on_disk(&f.root.join("dst")), vec![b"a".to_vec(), b"link".to_vec(), b"sub".to_vec()]);
    assert!(matches!(f.tree.copy(&p(&["src"]), &p(&["dst"])).await, Err(Error::Exists)));
    // A copy into its own subtree ends, copying what was there before.
    f.tree.copy(&p(&["src"]), &p(&["src", "sub", "again"])).await.unwrap();
    assert!(f.root.join("src/sub/again/sub/deeper/b").exists());
    assert!(!f.root.join("src/sub/again/sub/again").exists());
}

#[tokio::test]
async fn copy_of_a_file_is_a_new_file() {
    let f = fixture().await;
    std::fs::write(f.root.join("a"), b"content").unwrap();
    let old = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
    std::fs::File::options().write(true).open(f.root.join("a")).unwrap().set_modified(old).unwrap();
    f.tree.copy(&p(&["a"]), &p(&["b"])).await.unwrap();
    assert_eq!(std::fs::read(f.root.join("b")).unwrap(), b"content");
    assert_ne!(std::fs::metadata(f.root.join("b")).unwrap().modified().unwrap(), old);
    assert_eq!(on_disk(&f.root), vec![b"a".to_vec(), b"b".to_vec()]);
}

#[tokio::test]
async fn set_modified_shows_on_disk() {
    let f = fixture().await;
    std::fs::write(f.root.join("a"), b"a").unwrap();
    std::fs::create_dir(f.root.join("d")).unwrap();
    for name in ["a", "d"] {
        let meta = f.tree.set_modified(&p(&[name]), 1_234_567_890_000_000_001).await.unwrap();
        assert_eq!(meta.modified_ns, 1_234_567_890_000_000_001);
        let disk = std::fs::metadata(f.root.join(name)).unwrap();
        assert_eq!((disk.mtime(), disk.mtime_nsec()), (1_234_567_890, 1));
    }
}

const NFD: &[u8] = "cafe\u{301}".as_bytes();
const NFC: &str = "caf\u{e9}";

#[tokio::test]
async fn nfd_name_is_listed_as_nfc_and_reachable_by_it() {
    let f = fixture().await;
    std::fs::write(f.root.join(OsStr::from_bytes(NFD)), b"from a mac").unwrap();
    assert_eq!(names_in(&f.tree, &[]).await, [NFC]);
    assert_eq!(read_all(&f.tree, &p(&[NFC]), None).await.unwrap(), b"from a mac");
    // Writing under the NFC name replaces that entry instead of adding a look-alike.
    put(&f.tree, &p(&[NFC]), b"updated", Install::Replace).await.unwrap();
    assert_eq!(on_disk(&f.root), vec![NFD.to_vec()]);
    assert_eq!(std::fs::read(f.root.join(OsStr::from_bytes(NFD))).unwrap(), b"updated");
    assert!(matches!(f.tree.create_dir(&p(&[NFC])).await, Err(Error::Exists)));
}

#[tokio::test]
async fn nfd_directory_is_reachable_on_the_way() {
    let f = fixture().await;
    std::fs::create_dir(f.root.join(OsStr::from_bytes(NFD))).unwrap();
    put(&f.tree, &p(&[NFC, "inner"]), b"x", Install::CreateNew).await.unwrap();
    assert_eq!(names_in(&f.tree, &p(&[NFC])).await, ["inner"]);
    assert!(f.root.join(OsStr::from_bytes(NFD)).join("inner").exists());
    assert!(f.tree.stat(&p(&[NFC, "inner"])).await.unwrap().is_some());
}

#[tokio::test]
async fn nfd_and_nfc_twins_are_listed_distinctly_and_both_reachable() {
    let f = fixture().await;
    std::fs::write(f.root.join(OsStr::from_bytes(NFD)), b"nfd").unwrap();
    std::fs::write(f.root.join(NFC), b"nfc").unwrap();
    let listed = names_in(&f.tree, &[]).await;
    assert_eq!(listed.len(), 2);
    assert!(listed.contains(&NFC.to_owned()));
    let escaped = listed.into_iter().find(|n| n != NFC).unwrap();
    assert_eq!(read_all(&f.tree, &p(&[NFC]), None).await.unwrap(), b"nfc");
    assert_eq!(read_all(&f.tree, &p(&[&escaped]), None).await.unwrap(), b"nfd");
    // Once the twin is gone, the escaped spelling names nothing: one name per entry.
    std::fs::remove_file(f.root.join(NFC)).unwrap();
    assert!(f.tree.stat(&p(&[&escaped])).await.unwrap().is_none());
    assert_eq!(read_all(&f.tree, &p(&[NFC]), None).await.unwrap(), b"nfd");
}

#[tokio::test]
async fn non_utf8_name_is_listed_and_readable() {
    let f = fixture().await;
    std::fs::write(f.root.join(OsStr::from_bytes(b"caf\xe9")), b"latin-1").unwrap();
    let listed = names_in(&f.tree, &[]).await;
    assert_eq!(listed, ["caf\u{F7E9}"]);
    assert_eq!(read_all(&f.tree, &p(&[&listed[0]]), None).await.unwrap(), b"latin-1");
    f.tree.rename(&p(&[&listed[0]]), &p(&["cafe"]), false).await.unwrap();
    assert_eq!(on_disk(&f.root), vec![b"cafe".to_vec()]);
}

#[tokio::test]
async fn aliases_of_a_name_name_nothing() {
    let f = fixture().await;
    std::fs::write(f.root.join(NFC), b"x").unwrap();
    // "é" spelled as its two escaped bytes.
    let alias = p(&["caf\u{F7C3}\u{F7A9}"]);
    assert!(f.tree.stat(&alias).await.unwrap().is_none());
    assert!(matches!(put(&f.tree, &alias, b"y", Install::Replace).await, Err(Error::Escapes)));
    assert_eq!(std::fs::read(f.root.join(NFC)).unwrap(), b"x");
}

#[tokio::test]
async fn owner_and_mode_options_apply_to_created_files() {
    // Whoever runs the tests: the one owner a test may always give.
    let probe = tempfile::tempfile().unwrap().metadata().unwrap();
    let (uid, gid) = (probe.uid(), probe.gid());
    let opts = HostOptions {
        owner: Some(uid),
        group: Some(gid),
        file_mode: Some(0o640),
        dir_mode: Some(0o750),
        ..HostOptions::default()
    };
    let f = fixture_with(opts).await;
    put(&f.tree, &p(&["a"]), b"x", Install::Replace).await.unwrap();
    f.tree.create_dir(&p(&["d"])).await.unwrap();
    let file = std::fs::metadata(f.root.join("a")).unwrap();
    assert_eq!((file.permissions().mode() & 0o7777, file.uid(), file.gid()), (0o640, uid, gid));
    let dir = std::fs::metadata(f.root.join("d")).unwrap();
    assert_eq!((dir.permissions().mode() & 0o7777, dir.uid(), dir.gid()), (0o750, uid, gid));
}

#[tokio::test]
async fn full_durability_works() {
    let f = fixture_with(HostOptions { durability: Durability::Full, ..HostOptions::default() }).await;
    put(&f.tree, &p(&["small"]), b"x", Install::CreateNew).await.unwrap();
    let staged = f.tree.stage(&p(&["large"]), body(vec![pattern(2_000_000)]), StageOptions::default()).await.unwrap();
    f.tree.install(staged, &p(&["large"]), Install::Replace).await.unwrap();
    f.tree.create_dir(&p(&["d"])).await.unwrap();
    f.tree.copy(&p(&["large"]), &p(&["d", "copy"])).await.unwrap();
    f.tree.rename(&p(&["small"]), &p(&["d", "small"]), false).await.unwrap();
    f.tree.remove(&p(&["d"])).await.unwrap();
    assert_eq!(on_disk(&f.root), vec![b"large".to_vec()]);
}

#[tokio::test]
async fn stage_under_a_parent_linked_outside_creates_nothing_there() {
    let f = fixture().await;
    std::os::unix::fs::symlink(&f.outside, f.root.join("out")).unwrap();
    let result = put(&f.tree, &p(&["out", "planted"]), b"x", Install::Replace).await;
    assert!(matches!(result, Err(Error::Escapes | Error::Missing)), "{:?}", result.err());
    let result = f.tree.stage(&p(&["out", "big"]), body(vec![pattern(2_000_000)]), StageOptions::default()).await;
    assert!(matches!(result, Err(Error::Escapes | Error::Missing)), "{:?}", result.err());
    assert!(matches!(f.tree.create_dir(&p(&["out", "d"])).await, Err(Error::Escapes | Error::Missing)));
    assert!(matches!(f.tree.remove(&p(&["out", "secret"])).await, Err(Error::Escapes | Error::Missing)));
    assert_eq!(on_disk(&f.outside), vec![b"secret".to_vec()]);
}

#[tokio::test]
async fn read_only_tree_refuses_every_write() {
    let f = fixture_with(HostOptions { read_only: true, ..HostOptions::default() }).await;
    std::fs::write(f.root.join("a"), b"a").unwrap();
    assert!(f.tree.caps().read_only);
    assert!(matches!(f.tree.stage(&p(&["b"]), one(b"x"), StageOptions::default()).await, Err(Error::ReadOnly)));
    assert!(matches!(f.tree.create_dir(&p(&["d"])).await, Err(Error::ReadOnly)));
    assert!(matches!(f.tree.remove(&p(&["a"])).await, Err(Error::ReadOnly)));
    assert!(matches!(f.tree.rename(&p(&["a"]), &p(&["b"]), false).await, Err(Error::ReadOnly)));
    assert!(matches!(f.tree.copy(&p(&["a"]), &p(&["b"])).await, Err(Error::ReadOnly)));
    assert!(matches!(f.tree.set_modified(&p(&["a"]), 0).await, Err(Error::ReadOnly)));
    assert_eq!(read_all(&f.tree, &p(&["a"]), None).await.unwrap(), b"a");
}

#[tokio::test]
async fn bad_segments_are_refused() {
    let f = fixture().await;
    for bad in ["..", ".", "", "a/b", "a\0"] {
        assert!(matches!(f.tree.stat(&p(&[bad])).await, Err(Error::Escapes)), "{bad:?}");
    }
}

#[tokio::test]
async fn used_sums_files_and_available_is_reported() {
    let f = fixture().await;
    std::fs::create_dir_all(f.root.join("d/sub")).unwrap();
    std::fs::write(f.root.join("d/a"), pattern(1000)).unwrap();
    std::fs::write(f.root.join("d/sub/b"), pattern(500)).unwrap();
    std::os::unix::fs::symlink(&f.outside, f.root.join("d/out")).unwrap();
    assert_eq!(f.tree.used(&p(&["d"])).await.unwrap(), 1500);
    assert!(f.tree.available().await.unwrap() > 0);
}

#[tokio::test]
async fn remove_of_a_wide_nested_tree_and_never_of_the_root() {
    let f = fixture().await;
    for i in 0..30 {
        let dir = f.root.join(format!("top/d{i}/e{i}"));
        std::fs::create_dir_all(&dir).unwrap();
        for j in 0..20 {
            std::fs::write(dir.join(format!("f{j}")), b"x").unwrap();
        }
    }
    f.tree.remove(&p(&["top"])).await.unwrap();
    assert!(on_disk(&f.root).is_empty());
    assert!(matches!(f.tree.remove(&[]).await, Err(Error::Escapes)));
    assert!(f.root.is_dir());
}

/// A body that panics if polled again after it ended, as some streams may.
fn strict(chunks: Vec<Vec<u8>>) -> ByteStream {
    let mut chunks = chunks.into_iter();
    let mut ended = false;
    Box::pin(futures_util::stream::poll_fn(move |_| {
        assert!(!ended, "body polled after it ended");
        let next = chunks.next().map(|c| Ok(Bytes::from(c)));
        ended = next.is_none();
        std::task::Poll::Ready(next)
    }))
}

#[tokio::test]
async fn a_body_is_never_polled_after_its_end() {
    let f = fixture().await;
    for len in [10, 65_536, 1_500_000, 2 << 20] {
        let data = pattern(len);
        let chunks = data.chunks(100_000).map(<[u8]>::to_vec).collect();
        let staged = f.tree.stage(&p(&["a"]), strict(chunks), StageOptions::default()).await.unwrap();
        f.tree.install(staged, &p(&["a"]), Install::Replace).await.unwrap();
        assert_eq!(std::fs::read(f.root.join("a")).unwrap(), data, "{len}");
    }
}

#[tokio::test]
async fn an_nfd_file_beside_an_unshown_nfc_twin_keeps_its_escaped_name() {
    let f = fixture().await;
    std::fs::write(f.root.join(OsStr::from_bytes(NFD)), b"nfd").unwrap();
    mkfifo(&f.root.join(NFC));
    let listed = names_in(&f.tree, &[]).await;
    assert_eq!(listed.len(), 1);
    assert_ne!(listed[0], NFC, "the NFC name resolves to the FIFO");
    assert_eq!(read_all(&f.tree, &p(&[&listed[0]]), None).await.unwrap(), b"nfd");
}
