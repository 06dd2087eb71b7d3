//! Small files: kept inline in the database and committed in groups, with the same
//! promises as every other upload (atomic, acknowledged only once durable, stored once).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::harness::{get, put, stored_blobs, Server};

/// Writers uploading at once, and files each writes in turn.
const WRITERS: usize = 24;
const FILES_EACH: usize = 400;

fn content(w: usize, i: usize) -> Vec<u8> {
    format!("writer {w} file {i}\n").repeat(1 + (w * 7 + i) % 300).into_bytes()
}

fn path(w: usize, i: usize) -> String {
    format!("/burst/w{w}-{i}")
}

/// Uploads writer `w`'s files one after another until the server goes away, and records
/// which were acknowledged.
async fn writer(s: Arc<Server>, w: usize, acked: Arc<Mutex<Vec<(usize, usize)>>>) {
    for i in 0..FILES_EACH {
        match s.req("PUT", &path(w, i)).body(content(w, i)).send().await {
            Ok(r) if r.status().as_u16() == 201 => acked.lock().expect("acked").push((w, i)),
            Ok(r) => panic!("PUT {} answered {}", path(w, i), r.status()),
            Err(_) => return,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_a_burst_of_small_puts_keeps_every_acknowledged_file_and_no_half_one() {
    let s = Arc::new(Server::start());
    assert_eq!(crate::harness::mkcol(&s, "/burst").await, 201);
    let acked = Arc::new(Mutex::new(Vec::new()));
    let writers: Vec<_> = (0..WRITERS).map(|w| tokio::spawn(writer(s.clone(), w, acked.clone()))).collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // SAFETY: kill(2) on our own child's pid; no memory is involved.
    unsafe { libc::kill(s.pid() as libc::pid_t, libc::SIGKILL) };
    for w in writers {
        w.await.expect("writer");
    }
    let mut s = Arc::try_unwrap(s).unwrap_or_else(|_| panic!("writers still hold the server"));
    let acked = acked.lock().expect("acked").clone();
    assert!(acked.len() > WRITERS, "the burst got going: {} acknowledged", acked.len());

    s.restart();
    for &(w, i) in &acked {
        assert_eq!(get(&s, &path(w, i)).await, (200, content(w, i)), "{} after restart", path(w, i));
    }
    // Each writer's next file was in flight at the kill: absent, or whole.
    for w in 0..WRITERS {
        let next = acked.iter().filter(|(aw, _)| *aw == w).count();
        match get(&s, &path(w, next)).await {
            (404, _) => {}
            (200, body) => assert_eq!(body, content(w, next), "{} is whole", path(w, next)),
            (status, _) => panic!("GET {} after restart: {status}", path(w, next)),
        }
    }
}

#[tokio::test]
async fn identical_small_bodies_are_stored_once() {
    let s = Server::start();
    let body = b"the same small body".to_vec();
    for i in 0..20 {
        assert_eq!(put(&s, &format!("/same-{i}"), body.clone()).await, 201);
    }
    assert_eq!(stored_blobs(&s.data).await, 1);
    for i in [0, 19] {
        assert_eq!(get(&s, &format!("/same-{i}")).await, (200, body.clone()));
    }
}

#[tokio::test]
async fn a_small_file_is_read_back_after_a_restart_from_the_database() {
    let mut s = Server::start();
    assert_eq!(put(&s, "/small.txt", b"kept inline".to_vec()).await, 201);
    assert!(std::fs::read_dir(s.data.join("blobs").join("blobs")).map_or(true, |d| d
        .flatten()
        .all(|sub| std::fs::read_dir(sub.path()).map_or(true, |mut f| f.next().is_none()))));
    s.restart();
    assert_eq!(get(&s, "/small.txt").await, (200, b"kept inline".to_vec()));
    let ranged = s.req("GET", "/small.txt").header("Range", "bytes=5-").send().await.expect("GET");
    assert_eq!(ranged.status().as_u16(), 206);
    assert_eq!(ranged.bytes().await.expect("body").as_ref(), b"inline");
}
