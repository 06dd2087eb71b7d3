//! `wharf serve --blobs s3://BUCKET/PREFIX` against a real S3 server (`s3s-fs`, installed
//! by the test command), with the credentials in the server's environment as an operator
//! would give them. Objects are read straight off the S3 server's folder.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::harness::*;

const BUCKET: &str = "files";
const KEY: &str = "AKE2E";
const SECRET: &str = "SECRETE2E";

#[path = "../support/s3s_fs.rs"]
pub mod s3s_fs;

struct S3 {
    server: s3s_fs::S3sFs,
    endpoint: String,
}

impl S3 {
    fn start() -> S3 {
        let server = s3s_fs::S3sFs::start(BUCKET, KEY, SECRET);
        S3 { endpoint: server.endpoint.clone(), server }
    }

    fn root(&self) -> &Path {
        self.server.root.path()
    }

    /// Objects under `folder` of the server's prefix (`blobs`, `data`, `uploads`), and the
    /// parts of multipart uploads in progress when `folder` is `parts`.
    fn objects(&self, folder: &str) -> Vec<PathBuf> {
        if folder == "parts" {
            let entries = std::fs::read_dir(self.root()).unwrap();
            let names = entries.map(|e| e.unwrap().path());
            return names.filter(|p| p.to_string_lossy().contains(".part-")).collect();
        }
        match std::fs::read_dir(self.root().join(BUCKET).join("wharf").join(folder)) {
            Ok(entries) => entries.map(|e| e.unwrap().path()).collect(),
            Err(_) => Vec::new(),
        }
    }

    fn args<'a>(&'a self, grace: &'a str) -> Vec<&'a str> {
        vec!["--blobs", "s3://files/wharf", "--s3-endpoint", &self.endpoint, "--s3-grace-seconds", grace]
    }

    fn serve(&self, data: &Path) -> Server {
        Server::start_in_env(data, &self.args("3600"), &ENV)
    }
}

const ENV: [(&str, &str); 2] = [("AWS_ACCESS_KEY_ID", KEY), ("AWS_SECRET_ACCESS_KEY", SECRET)];

/// Distinct bytes per seed, so no two tests' files deduplicate.
fn content(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(7).wrapping_add(seed).wrapping_add((i >> 12) as u8)).collect()
}

async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..200 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("never happened: {what}");
}

#[tokio::test]
async fn a_file_put_over_webdav_is_an_object_named_by_its_content_and_reads_back() {
    let s3 = S3::start();
    let tmp = tempfile::tempdir().unwrap();
    let s = s3.serve(&tmp.path().join("data"));
    let body = content(100_000, 1);
    assert_eq!(put(&s, "/doc.bin", body.clone()).await, 201);
    let id = blake3::hash(&body).to_hex().to_string();
    let object = s3.root().join(BUCKET).join("wharf/blobs").join(&id);
    assert_eq!(std::fs::read(object).unwrap(), body, "the bytes are in the bucket under their content id");
    assert!(!s.data.join("blobs").exists(), "nothing is kept in the data directory's blob folder");
    assert_eq!(get(&s, "/doc.bin").await, (200, body));
}

#[tokio::test]
async fn a_large_upload_goes_up_in_parts_and_ranges_read_from_the_bucket() {
    let s3 = S3::start();
    let tmp = tempfile::tempdir().unwrap();
    let s = s3.serve(&tmp.path().join("data"));
    let body = content(20 << 20, 2);
    assert_eq!(put(&s, "/big.bin", body.clone()).await, 201);
    let resp = s.req("GET", "/big.bin").header("Range", "bytes=10000000-10000099").send().await.unwrap();
    assert_eq!(resp.status(), 206);
    assert_eq!(resp.bytes().await.unwrap(), &body[10_000_000..10_000_100]);
    assert_eq!(get(&s, "/big.bin").await.1, body);
    eventually("no marker is left", || s3.objects("uploads").is_empty()).await;
    assert_eq!(s3.objects("blobs").len(), 1, "one pointer");
    assert_eq!(s3.objects("data").len(), 1, "one copy of the bytes");
}

#[tokio::test]
async fn contents_in_the_bucket_survive_a_restart() {
    let s3 = S3::start();
    let tmp = tempfile::tempdir().unwrap();
    let mut s = s3.serve(&tmp.path().join("data"));
    let (small, large) = (content(50_000, 3), content(9 << 20, 3));
    assert_eq!(put(&s, "/a.bin", small.clone()).await, 201);
    assert_eq!(put(&s, "/b.bin", large.clone()).await, 201);
    s.restart();
    assert_eq!(get(&s, "/a.bin").await, (200, small));
    assert_eq!(get(&s, "/b.bin").await, (200, large));
}

#[tokio::test]
async fn copying_a_file_adds_no_object_and_deleting_both_removes_it() {
    let s3 = S3::start();
    let tmp = tempfile::tempdir().unwrap();
    let s = s3.serve(&tmp.path().join("data"));
    assert_eq!(put(&s, "/one.bin", content(200_000, 4)).await, 201);
    let copy = s.req("COPY", "/one.bin").header("Destination", s.url("/two.bin")).send().await.unwrap();
    assert_eq!(copy.status(), 201);
    assert_eq!(s3.objects("blobs").len(), 1, "the copy shares the object");
    assert_eq!(s.req("DELETE", "/one.bin").send().await.unwrap().status(), 204);
    assert_eq!(s3.objects("blobs").len(), 1, "still referenced by the copy");
    assert_eq!(s.req("DELETE", "/two.bin").send().await.unwrap().status(), 204);
    assert!(s3.objects("blobs").is_empty(), "garbage collection deleted the object");
}

#[tokio::test]
async fn an_upload_cut_off_midway_leaves_the_old_content_and_nothing_in_the_bucket() {
    let s3 = S3::start();
    let tmp = tempfile::tempdir().unwrap();
    let s = s3.serve(&tmp.path().join("data"));
    let old = content(30_000, 5);
    assert_eq!(put(&s, "/f.bin", old.clone()).await, 201);
    let conn = start_upload(&s, "/f.bin", 30 << 20, &content(12 << 20, 6));
    eventually("a part reached the bucket", || !s3.objects("parts").is_empty()).await;
    drop(conn);
    eventually("the unfinished upload was aborted", || {
        s3.objects("parts").is_empty() && s3.objects("data").is_empty() && s3.objects("uploads").is_empty()
    })
    .await;
    assert_eq!(get(&s, "/f.bin").await, (200, old));
    assert_eq!(s3.objects("blobs").len(), 1);
}

#[tokio::test]
async fn parts_left_by_a_killed_server_are_aborted_when_a_server_starts_past_the_grace_period() {
    let s3 = S3::start();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut s = Server::start_in_env(&data, &s3.args("1"), &ENV);
    let _conn = start_upload(&s, "/killed.bin", 30 << 20, &content(12 << 20, 7));
    eventually("a part reached the bucket", || !s3.objects("parts").is_empty()).await;
    s.kill();
    assert!(!s3.objects("uploads").is_empty(), "the marker tells the sweep where the parts are");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    s.restart();
    assert!(s3.objects("parts").is_empty(), "parts: {:?}", s3.objects("parts"));
    assert!(s3.objects("data").is_empty() && s3.objects("uploads").is_empty());
    assert_eq!(get(&s, "/killed.bin").await.0, 404, "nothing of the upload is visible");
}

#[tokio::test]
async fn a_repository_refuses_to_start_against_other_blobs_than_its_own() {
    let s3 = S3::start();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut s = s3.serve(&data);
    assert_eq!(put(&s, "/x.bin", content(40_000, 8)).await, 201);
    s.kill();
    let out = crate::harness::wharf(&data)
        .args(["serve", "--listen", "127.0.0.1:0", "--ftp-listen", "off", "--admin-listen", "off", "--data"])
        .arg(&data)
        .env("WHARF_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("s3://files/wharf"), "the message names where the blobs are: {err}");
}

#[tokio::test]
async fn fsck_finds_the_blobs_in_the_recorded_bucket() {
    let s3 = S3::start();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut s = s3.serve(&data);
    let body = content(60_000, 9);
    assert_eq!(put(&s, "/checked.bin", body.clone()).await, 201);
    s.kill();
    let fsck = |extra: &[&str]| {
        crate::harness::wharf(&data)
            .args(["fsck", "--verify-content"])
            .args(extra)
            .arg("--data")
            .arg(&data)
            .envs(ENV)
            .output()
            .unwrap()
    };
    let clean = fsck(&[]);
    assert!(clean.status.success(), "{}", String::from_utf8_lossy(&clean.stdout));
    let id = blake3::hash(&body).to_hex().to_string();
    std::fs::write(s3.root().join(BUCKET).join("wharf/blobs").join(&id), b"rotted").unwrap();
    let damaged = fsck(&[]);
    assert!(!damaged.status.success(), "a changed object is found");
    let report = String::from_utf8_lossy(&damaged.stdout);
    assert!(report.contains(&id[..16]) && report.contains("checked.bin"), "{report}");
}

#[tokio::test]
async fn a_second_repository_is_refused_the_prefix_of_the_first() {
    let s3 = S3::start();
    let tmp = tempfile::tempdir().unwrap();
    let _first = s3.serve(&tmp.path().join("one"));
    let out = crate::harness::wharf(&tmp.path().join("two"))
        .args(["serve", "--listen", "127.0.0.1:0", "--ftp-listen", "off", "--admin-listen", "off", "--data"])
        .arg(tmp.path().join("two"))
        .args(s3.args("3600"))
        .envs(ENV)
        .env("WHARF_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .output()
        .unwrap();
    assert!(!out.status.success(), "two databases would collect each other's blobs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("another repository"), "{err}");
}

#[tokio::test]
async fn a_running_server_sweeps_leftovers_once_they_pass_the_grace_period() {
    let s3 = S3::start();
    let tmp = tempfile::tempdir().unwrap();
    let mut s = Server::start_in_env(&tmp.path().join("data"), &s3.args("5"), &ENV);
    let _conn = start_upload(&s, "/lost.bin", 30 << 20, &content(12 << 20, 10));
    eventually("a part reached the bucket", || !s3.objects("parts").is_empty()).await;
    s.kill();
    s.restart();
    assert!(!s3.objects("parts").is_empty(), "too young to be swept at start");
    eventually("the running server swept the parts", || {
        s3.objects("parts").is_empty() && s3.objects("uploads").is_empty()
    })
    .await;
}

#[tokio::test]
async fn ftp_stores_into_the_bucket_and_resumes_a_download_from_it() {
    let s3 = S3::start();
    let tmp = tempfile::tempdir().unwrap();
    let s = s3.serve(&tmp.path().join("data"));
    let code = "data = bytes((i * 7 + i // 4096) % 256 for i in range(10 * 1024 * 1024))\n\
                stor('ftp.bin', data)\n\
                say(retr('ftp.bin') == data)\n\
                f.sendcmd('TYPE I')\n\
                conn = f.transfercmd('RETR ftp.bin', rest=9000000)\n\
                tail = b''\n\
                while True:\n    chunk = conn.recv(65536)\n    if not chunk: break\n    tail += chunk\n\
                conn.close(); f.voidresp()\n\
                say(tail == data[9000000:])";
    let out = ftp_as(&s, "admin", ADMIN_PASSWORD, code);
    assert_eq!(out.lines().collect::<Vec<_>>(), ["True", "True"], "{out}");
    assert_eq!(s3.objects("data").len(), 1, "10 MiB went up as parts to data/");
    let (status, body) = get(&s, "/ftp.bin").await;
    assert_eq!((status, body.len()), (200, 10 << 20), "the same file over WebDAV");
}
