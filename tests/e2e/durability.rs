//! Atomic uploads and crash safety: a body that never arrives whole changes nothing, and a
//! server killed with SIGKILL mid-upload leaves a consistent, fully readable store.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::harness::{self, get, put, stored_blobs, Server};

fn tmp_dir(data: &Path) -> PathBuf {
    data.join("blobs").join("tmp")
}

/// Files in the blob store's directory of uploads in progress.
fn tmp_files(data: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(tmp_dir(data)).map(|rd| rd.flatten().map(|e| e.path()).collect()).unwrap_or_default()
}

/// Polls `cond` every 50 ms for up to five seconds.
async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..100 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting until {what}");
}

/// Opens a raw connection and sends the head of `PUT path` with the given framing header.
async fn start_raw_put(s: &Server, path: &str, framing: &str) -> TcpStream {
    let host = s.authority();
    let mut sock = TcpStream::connect(host).await.expect("connect");
    let auth = harness::basic("admin", harness::ADMIN_PASSWORD);
    let head = format!("PUT {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: {auth}\r\n{framing}\r\n\r\n");
    sock.write_all(head.as_bytes()).await.expect("send head");
    sock
}

/// Waits until the server is staging the upload, then hangs up on it.
async fn hang_up_mid_upload(s: &Server, mut sock: TcpStream) {
    sock.flush().await.expect("flush");
    eventually("the upload is being staged", || tmp_files(&s.data).len() == 1).await;
    drop(sock);
}

async fn assert_old_content_survives(s: &Server) {
    eventually("the staged upload is discarded", || tmp_files(&s.data).is_empty()).await;
    assert_eq!(get(s, "/f").await, (200, b"old".to_vec()));
    assert_eq!(stored_blobs(&s.data).await, 1, "no blob may be committed for a cut-off body");
}

#[tokio::test]
async fn upload_cut_off_mid_body_leaves_the_old_content() {
    let s = Server::start();
    assert_eq!(put(&s, "/f", "old").await, 201);

    let mut sock = start_raw_put(&s, "/f", "Content-Length: 1000000").await;
    sock.write_all(&vec![b'n'; 500_000]).await.expect("send half the body");
    hang_up_mid_upload(&s, sock).await;

    assert_old_content_survives(&s).await;
}

#[tokio::test]
async fn chunked_upload_cut_off_before_the_last_chunk_leaves_the_old_content() {
    let s = Server::start();
    assert_eq!(put(&s, "/f", "old").await, 201);

    let mut sock = start_raw_put(&s, "/f", "Transfer-Encoding: chunked").await;
    let chunk = vec![b'n'; 0x10000];
    for _ in 0..8 {
        sock.write_all(b"10000\r\n").await.expect("chunk size");
        sock.write_all(&chunk).await.expect("chunk data");
        sock.write_all(b"\r\n").await.expect("chunk end");
    }
    hang_up_mid_upload(&s, sock).await;

    assert_old_content_survives(&s).await;
}

#[tokio::test]
async fn upload_of_a_new_file_cut_off_mid_body_creates_nothing() {
    let s = Server::start();

    let mut sock = start_raw_put(&s, "/new", "Content-Length: 1000000").await;
    sock.write_all(&vec![b'n'; 500_000]).await.expect("send half the body");
    hang_up_mid_upload(&s, sock).await;

    eventually("the staged upload is discarded", || tmp_files(&s.data).is_empty()).await;
    assert_eq!(get(&s, "/new").await.0, 404);
    assert_eq!(stored_blobs(&s.data).await, 0);
}

/// Size of each large upload interrupted by the kill.
const BIG: usize = 20 << 20;
const BIG_UPLOADS: usize = 8;
const CHUNK: usize = 64 << 10;

/// Byte `pos` of large upload `i`: distinct per upload, so every upload has its own blob.
fn big_byte(i: usize, pos: usize) -> u8 {
    ((pos % 251) as u8) ^ (i as u8).wrapping_mul(37)
}

fn big_content(i: usize, range: std::ops::Range<usize>) -> Vec<u8> {
    range.map(|p| big_byte(i, p)).collect()
}

fn small_content(i: usize) -> Vec<u8> {
    format!("small file {i} written while large uploads ran\n").repeat(100 * (i + 1)).into_bytes()
}

/// The body of large upload `i`, yielding 64 KiB chunks with a pause before each.
fn slow_body(i: usize) -> reqwest::Body {
    let chunks = futures_util::stream::unfold(0usize, move |off| async move {
        if off >= BIG {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        let end = (off + CHUNK).min(BIG);
        Some((Ok::<_, std::io::Error>(Bytes::from(big_content(i, off..end))), end))
    });
    reqwest::Body::wrap_stream(chunks.boxed())
}

/// A server killed while `BIG_UPLOADS` large PUTs were in flight, and the small files
/// that were acknowledged (201) before the kill.
struct Crashed {
    server: Server,
    small: Vec<(String, Vec<u8>)>,
}

fn big_path(i: usize) -> String {
    format!("/big-{i}")
}

async fn crash_during_uploads() -> Crashed {
    let mut s = Server::start();
    let mut uploads = Vec::new();
    for i in 0..BIG_UPLOADS {
        let req = s.req("PUT", &big_path(i)).body(slow_body(i));
        uploads.push(tokio::spawn(async move { req.send().await.map(|r| r.status().as_u16()) }));
    }
    eventually("every large upload is being staged", || tmp_files(&s.data).len() == BIG_UPLOADS).await;
    let mut small = Vec::new();
    for i in 0..4 {
        let (path, body) = (format!("/small-{i}"), small_content(i));
        assert_eq!(put(&s, &path, body.clone()).await, 201);
        small.push((path, body));
    }
    assert!(uploads.iter().all(|u| !u.is_finished()), "large uploads finished before the kill");
    s.kill();
    for u in uploads {
        let _ = u.await;
    }
    Crashed { server: s, small }
}

async fn integrity_check(db: &Path) -> String {
    let mut conn = SqliteConnectOptions::new().filename(db).connect().await.expect("open wharf.db");
    let (verdict,): (String,) =
        sqlx::query_as("PRAGMA integrity_check").fetch_one(&mut conn).await.expect("integrity_check");
    conn.close().await.expect("close");
    verdict
}

#[tokio::test]
async fn sigkill_during_uploads_leaves_an_intact_database() {
    let c = crash_during_uploads().await;

    let verdict = integrity_check(&c.server.data.join("wharf.db")).await;

    assert_eq!(verdict, "ok");
}

#[tokio::test]
async fn acknowledged_writes_survive_sigkill() {
    let mut c = crash_during_uploads().await;

    c.server.restart();

    for (path, body) in &c.small {
        assert_eq!(&get(&c.server, path).await, &(200, body.clone()), "{path} after restart");
    }
}

#[tokio::test]
async fn uploads_interrupted_by_sigkill_are_absent_or_complete_never_truncated() {
    let mut c = crash_during_uploads().await;

    c.server.restart();

    for i in 0..BIG_UPLOADS {
        let (status, body) = get(&c.server, &big_path(i)).await;
        match status {
            404 => {}
            200 => {
                assert_eq!(body.len(), BIG, "{} is truncated", big_path(i));
                assert!(body == big_content(i, 0..BIG), "{} has wrong bytes", big_path(i));
            }
            other => panic!("GET {} after restart: {other}", big_path(i)),
        }
    }
}

#[tokio::test]
async fn restart_after_sigkill_discards_staged_uploads_and_orphan_blobs() {
    let mut c = crash_during_uploads().await;
    let data = c.server.data.clone();

    c.server.restart();

    assert_eq!(tmp_files(&data), Vec::<PathBuf>::new(), "leftover temp files in blobs/tmp");
    let mut present = c.small.len();
    for i in 0..BIG_UPLOADS {
        present += usize::from(get(&c.server, &big_path(i)).await.0 == 200);
    }
    assert_eq!(stored_blobs(&data).await, present, "one blob file per stored file, no orphans");
}
