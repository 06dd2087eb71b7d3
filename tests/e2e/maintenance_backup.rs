//! `wharf backup` taken while clients keep writing, and `wharf restore` of it: the restored
//! store is consistent and holds, for every path, a state the clients were told about.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::harness::{add_user, get, put, Server};
use crate::maintenance::{blob_path, fsck, wharf};

/// Paths each writer owns: every path has one writer, so its operations are a sequence.
const WRITERS: usize = 3;
const PATHS_PER_WRITER: usize = 8;

/// One operation of the workload: sent and acknowledged at these instants, leaving the path
/// with `content` (`None`: deleted).
#[derive(Debug, Clone)]
struct Op {
    sent: Instant,
    acked: Instant,
    content: Option<Vec<u8>>,
}

type History = Arc<Mutex<HashMap<String, Vec<Op>>>>;

/// The bytes of version `n` of `path`: unique per version, and every seventh one larger than
/// a write buffer, so it streams through a temp file.
fn version(path: &str, n: usize) -> Vec<u8> {
    let line = format!("{path} version {n}\n");
    let size = if n % 7 == 3 { 1_300_000 } else { 200 + n * 37 };
    line.bytes().cycle().take(size).collect()
}

/// Seeds every path of writer `w` with version 0, then overwrites, deletes and recreates them
/// until `stop`, recording each acknowledged operation.
async fn writer(s: Arc<Server>, w: usize, history: History, stop: Arc<std::sync::atomic::AtomicBool>) {
    let paths: Vec<String> = (0..PATHS_PER_WRITER).map(|i| format!("/w{w}-{i}.bin")).collect();
    let mut n = 0;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        for (i, path) in paths.iter().enumerate() {
            n += 1;
            // Seeded paths (even ones) are only ever overwritten; the others are also deleted.
            let delete = i % 2 == 1 && n % 3 == 0 && n > PATHS_PER_WRITER;
            let sent = Instant::now();
            let content = if delete { None } else { Some(version(path, n)) };
            let status = match &content {
                Some(bytes) => s.req("PUT", path).body(bytes.clone()).send().await.expect("PUT").status().as_u16(),
                None => s.req("DELETE", path).send().await.expect("DELETE").status().as_u16(),
            };
            assert!([201, 204, 404].contains(&status), "{path}: {status}");
            if status == 404 {
                continue; // deleted already: nothing changed
            }
            let op = Op { sent, acked: Instant::now(), content };
            history.lock().expect("history").entry(path.clone()).or_default().push(op);
        }
    }
}

/// Whether `found` (a path's content in the backup, `None`: absent) is a state the path was
/// in between the last operation acknowledged before the backup began and the last one
/// sent before it ended.
fn plausible(ops: &[Op], found: Option<&[u8]>, began: Instant, ended: Instant) -> bool {
    let first = ops.iter().rposition(|op| op.acked < began);
    let last = ops.iter().rposition(|op| op.sent < ended);
    let states = |from: Option<usize>| {
        let lo = from.unwrap_or(0);
        let before_any = from.is_none().then_some(None);
        let after: Vec<Option<&[u8]>> = match last {
            Some(hi) if hi >= lo => ops[lo..=hi].iter().map(|op| op.content.as_deref()).collect(),
            _ => Vec::new(),
        };
        before_any.into_iter().chain(after).collect::<Vec<_>>()
    };
    states(first).contains(&found)
}

fn inode(path: &Path) -> Option<u64> {
    std::fs::metadata(path).ok().map(|m| m.ino())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_during_uploads_restores_to_a_consistent_store_of_acknowledged_states() {
    let s = Arc::new(Server::start());
    // Larger than what the database keeps inline, so they are blob files to share.
    let big = |i: usize| version("stable", i).repeat(200);
    let stable: Vec<(String, Vec<u8>)> = (0..3).map(|i| (format!("/stable-{i}"), big(i))).collect();
    for (path, bytes) in &stable {
        assert_eq!(put(&s, path, bytes.clone()).await, 201);
    }
    let history: History = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers: Vec<_> =
        (0..WRITERS).map(|w| tokio::spawn(writer(s.clone(), w, history.clone(), stop.clone()))).collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let backup = s.data.with_file_name("backup");
    let (data, dest) = (s.data.to_str().expect("UTF-8").to_owned(), backup.to_str().expect("UTF-8").to_owned());
    let began = Instant::now();
    let (ok, out) =
        tokio::task::spawn_blocking(move || wharf(&["backup", "--data", &data, &dest])).await.expect("backup");
    let ended = Instant::now();
    assert!(ok && out.contains(" 0 copied"), "{out}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in writers {
        w.await.expect("writer");
    }

    // On the same file system the backup shares the source's files (those not rewritten).
    for (_, bytes) in &stable {
        let blob = blake3::hash(bytes).to_hex().to_string();
        let (source, copy) = (blob_path(&s.data, &blob), blob_path(&backup, &blob));
        assert_eq!(inode(&source), inode(&copy), "{blob} is one file");
        assert!(inode(&copy).is_some());
    }
    let (ok, out) = fsck(&backup, &["--verify-content"]);
    assert!(ok, "the backup itself is consistent: {out}");

    let restored = s.data.with_file_name("restored");
    let (ok, out) = wharf(&["restore", backup.to_str().expect("UTF-8"), "--data", restored.to_str().expect("UTF-8")]);
    assert!(ok && out.contains("fsck: 0 problems"), "{out}");
    let r = Server::start_in(&restored, &[]);
    let history = history.lock().expect("history").clone();
    let during = history.values().flatten().filter(|op| op.acked > began && op.sent < ended).count();
    assert!(during > 0, "the clients kept writing while the backup ran");
    assert_eq!(history.len(), WRITERS * PATHS_PER_WRITER);
    for (path, bytes) in &stable {
        assert_eq!(&get(&r, path).await, &(200, bytes.clone()), "{path}");
    }
    for (path, ops) in &history {
        let (status, bytes) = get(&r, path).await;
        let found = (status == 200).then_some(bytes.as_slice());
        assert!(status == 200 || status == 404, "{path}: {status}");
        assert!(plausible(ops, found, began, ended), "{path}: {:?} is no acknowledged state", found.map(|b| b.len()));
    }
    drop(r);
    let (ok, out) = fsck(&restored, &["--verify-content"]);
    assert!(ok && out.contains("; consistent"), "{out}");
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[tokio::test]
async fn a_backup_says_host_folders_are_not_in_it_and_a_restore_will_not_overwrite() {
    let s = Server::start();
    let folder = tempfile::tempdir().expect("host folder");
    std::fs::write(folder.path().join("photo.jpg"), b"jpeg").expect("host file");
    let data = s.data.to_str().expect("UTF-8");
    let (ok, out) =
        wharf(&["share", "add", "photos", "--host", folder.path().to_str().expect("UTF-8"), "--data", data]);
    assert!(ok, "{out}");
    add_user(&s, "alice", "pw", &[]);
    let backup = s.data.with_file_name("backup");
    let (ok, out) = wharf(&["backup", "--data", data, backup.to_str().expect("UTF-8")]);
    assert!(ok && out.contains("/shares/photos serves the host folder") && out.contains("its files are not"), "{out}");
    let (ok, out) = wharf(&["backup", "--data", data, backup.to_str().expect("UTF-8")]);
    assert!(!ok && out.contains("is not empty"), "a second backup into the first: {out}");
    assert!(!walk(&backup).iter().any(|p| p.ends_with("photo.jpg")));

    let other = s.data.with_file_name("other");
    std::fs::create_dir_all(&other).expect("dir");
    std::fs::write(other.join("keep.txt"), b"mine").expect("file");
    let (ok, out) = wharf(&["restore", backup.to_str().expect("UTF-8"), "--data", other.to_str().expect("UTF-8")]);
    assert!(!ok && out.contains("is not empty"), "{out}");
    let (ok, out) =
        wharf(&["restore", backup.to_str().expect("UTF-8"), "--data", other.to_str().expect("UTF-8"), "--force"]);
    assert!(ok && out.contains("fsck: 0 problems"), "{out}");
    let r = Server::start_in(&other, &[]);
    assert_eq!(get(&r, "/").await.0, 200, "the restored store serves");
    let (ok, out) = wharf(&["user", "list", "--data", other.to_str().expect("UTF-8")]);
    assert!(ok && out.contains("alice"), "users came back: {out}");
}
