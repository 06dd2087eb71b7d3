//! Graceful stop over HTTP: SIGTERM stops accepting at once, lets an upload in flight finish
//! within `--grace-seconds`, and one still running at the deadline leaves the old content.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::harness::*;

fn status_of(mut conn: TcpStream) -> Option<u16> {
    let mut out = Vec::new();
    let _ = conn.read_to_end(&mut out);
    String::from_utf8_lossy(&out).split(' ').nth(1).and_then(|c| c.parse().ok())
}

#[tokio::test]
async fn sigterm_during_an_upload_lets_it_finish_within_the_grace_period() {
    let mut s = Server::start_with(&["--grace-seconds", "20"]);
    assert_eq!(put(&s, "/big.bin", "old").await, 201);
    let body = vec![b'n'; 1 << 20];
    let mut conn = start_upload(&s, "/big.bin", body.len(), &body[..1000]);
    std::thread::sleep(Duration::from_millis(300));
    s.sigterm();
    std::thread::sleep(Duration::from_millis(1500));
    let authority = s.authority().to_owned();
    assert!(TcpStream::connect(&authority).is_err(), "new connections are refused while draining");
    conn.write_all(&body[1000..]).expect("the rest, after the signal");
    assert_eq!(status_of(conn), Some(204), "the upload in flight completes");
    let started = Instant::now();
    assert!(s.terminate(Duration::from_secs(10)), "the server exits once nothing is in flight");
    assert!(started.elapsed() < Duration::from_secs(5));
    s.restart();
    assert_eq!(get(&s, "/big.bin").await, (200, body));
}

#[tokio::test]
async fn an_upload_cut_by_the_deadline_leaves_the_previous_content() {
    let mut s = Server::start_with(&["--grace-seconds", "1"]);
    assert_eq!(put(&s, "/doc.txt", "previous").await, 201);
    let conn = start_upload(&s, "/doc.txt", 1 << 20, &[b'x'; 1000]);
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    assert!(s.terminate(Duration::from_secs(10)), "the server stops at the deadline");
    assert!(started.elapsed() < Duration::from_secs(4), "took {:?}", started.elapsed());
    drop(conn);
    s.restart();
    assert_eq!(get(&s, "/doc.txt").await, (200, b"previous".to_vec()));
}

#[tokio::test]
async fn an_idle_keep_alive_connection_does_not_delay_the_stop() {
    let mut s = Server::start_with(&["--grace-seconds", "30"]);
    let authority = s.authority().to_owned();
    let mut idle = TcpStream::connect(&authority).expect("connect");
    let head =
        format!("GET / HTTP/1.1\r\nHost: {authority}\r\nAuthorization: {}\r\n\r\n", basic("admin", ADMIN_PASSWORD));
    idle.write_all(head.as_bytes()).expect("request");
    let mut first = [0u8; 12];
    idle.read_exact(&mut first).expect("response");
    let started = Instant::now();
    assert!(s.terminate(Duration::from_secs(10)));
    assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
}
