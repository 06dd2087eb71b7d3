//! An archive file of the host as a share of its own (`wharf share add NAME --archive
//! FILE`), and the index of a new archive built once however many requests ask for it.

use std::time::{Duration, Instant};

use crate::archives_common::{fetch, listing, pack, sample_tree, Fmt, ADMIN, README};
use crate::harness::{add_user, cli, http_get, Server};
use crate::host_common::as_user;

const ALICE: (&str, &str) = ("alice", "alice-pass-1");

/// A server with `/arch` serving `FILE`, a tar.gz of the sample tree, granted to alice.
fn archive_share(s: &Server, dir: &std::path::Path) -> std::path::PathBuf {
    let file = dir.join("sample.tar.gz");
    std::fs::write(&file, pack(sample_tree().path(), Fmt::TarGz, &["readme.txt", "2019", "empty"])).expect("write");
    add_user(s, ALICE.0, ALICE.1, &[]);
    cli(&s.data, &["share", "add", "arch", "--archive", file.to_str().expect("utf-8 temp path")], "");
    cli(&s.data, &["share", "grant", "arch", "alice", "rwdl"], "");
    file
}

/// Waits for the running server to pick up a share made by the command line.
async fn until_served(s: &Server, who: (&str, &str), path: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while fetch(s, who, path).await.0 != 200 {
        assert!(Instant::now() < deadline, "{path} never served");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The value of a counter of the server's `/metrics`.
async fn counter(s: &Server, name: &str) -> u64 {
    let body = http_get(format!("http://{}/metrics", s.ops)).await.expect("scrape").text().await.expect("body");
    let line = body.lines().find(|l| l.split_whitespace().next() == Some(name));
    line.and_then(|l| l.split_whitespace().nth(1)).and_then(|v| v.parse().ok()).unwrap_or(0)
}

#[tokio::test]
async fn an_archive_share_lists_and_serves_its_members() {
    let s = Server::start();
    let dir = tempfile::tempdir().expect("temp dir");
    archive_share(&s, dir.path());
    until_served(&s, ALICE, "/arch/readme.txt").await;
    assert_eq!(fetch(&s, ALICE, "/arch/readme.txt").await, (200, README.to_vec()));
    let members = listing(&s, ALICE, "/arch/", "1").await;
    assert_eq!(members, ["/arch/", "/arch/2019/", "/arch/empty/", "/arch/readme.txt"]);
}

#[tokio::test]
async fn an_archive_share_refuses_writes_whatever_the_grant() {
    let s = Server::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let file = archive_share(&s, dir.path());
    until_served(&s, ALICE, "/arch/readme.txt").await;
    let before = std::fs::read(&file).expect("read");
    for (method, path) in [("PUT", "/arch/new.txt"), ("DELETE", "/arch/readme.txt"), ("MKCOL", "/arch/d/")] {
        let r = as_user(&s, ALICE, method, path).send().await.expect("request");
        assert_eq!(r.status(), 403, "{method} {path}");
        let body = r.text().await.expect("body");
        // Refused by the share's rights (an archive share grants reading only) or by the
        // archive itself: either way with a reason.
        assert!(body.contains("read-only") || body.contains(" right on "), "{method} {path}: {body}");
    }
    assert_eq!(std::fs::read(&file).expect("read"), before);
}

#[test]
fn share_add_refuses_a_file_that_is_not_an_archive() {
    let s = Server::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("notes.zip");
    std::fs::write(&file, "not an archive at all").expect("write");
    let out = crate::harness::wharf(&s.data)
        .args(["share", "add", "x", "--archive", file.to_str().expect("utf-8 temp path"), "--data"])
        .arg(&s.data)
        .output()
        .expect("run wharf");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a zip, tar"), "{out:?}");
}

#[tokio::test]
async fn many_requests_for_a_new_archive_build_its_index_once() {
    let s = Server::start();
    let body = pack(sample_tree().path(), Fmt::TarGz, &["readme.txt", "2019", "empty"]);
    assert_eq!(as_user(&s, ADMIN, "PUT", "/a.tgz").body(body).send().await.expect("PUT").status(), 201);
    let before = counter(&s, "wharf_archive_indexes_built_total").await;
    let asks = (0..16).map(|_| fetch(&s, ADMIN, "/a.tgz!/readme.txt"));
    for (status, bytes) in futures_util::future::join_all(asks).await {
        assert_eq!((status, bytes), (200, README.to_vec()));
    }
    assert_eq!(counter(&s, "wharf_archive_indexes_built_total").await, before + 1);
}

#[tokio::test]
async fn after_a_restart_the_index_comes_from_the_database() {
    let mut s = Server::start();
    let body = pack(sample_tree().path(), Fmt::TarGz, &["readme.txt", "2019", "empty"]);
    assert_eq!(as_user(&s, ADMIN, "PUT", "/a.tgz").body(body).send().await.expect("PUT").status(), 201);
    assert_eq!(fetch(&s, ADMIN, "/a.tgz!/readme.txt").await.0, 200);
    s.restart();
    assert_eq!(fetch(&s, ADMIN, "/a.tgz!/readme.txt").await, (200, README.to_vec()));
    assert_eq!(counter(&s, "wharf_archive_indexes_built_total").await, 0);
    assert_eq!(counter(&s, "wharf_archive_indexes_loaded_total").await, 1);
}
