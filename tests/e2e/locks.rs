//! LOCK and UNLOCK (RFC 4918 9.10, 9.11): what a write lock forbids, how its token lifts
//! that, and that locks outlive a restart and expire on time.

use std::time::Duration;

use crate::harness::{get, mkcol, propfind, put, Server};

const OWNER: &str = "http://example.org/~alice";

fn lockinfo(scope: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<D:lockinfo xmlns:D=\"DAV:\">\
         <D:lockscope><D:{scope}/></D:lockscope><D:locktype><D:write/></D:locktype>\
         <D:owner><D:href>{OWNER}</D:href></D:owner></D:lockinfo>"
    )
}

/// The answer to a LOCK: status, the token of the Lock-Token header, and the body.
struct Locked {
    status: u16,
    token: Option<String>,
    body: String,
}

impl Locked {
    fn token(&self) -> &str {
        self.token.as_deref().unwrap_or_else(|| panic!("no Lock-Token ({}): {}", self.status, self.body))
    }
}

/// LOCK `path` with `scope` (exclusive or shared) and extra headers.
async fn lock_with(s: &Server, path: &str, scope: &str, headers: &[(&str, &str)]) -> Locked {
    let mut r = s.req("LOCK", path).header("Content-Type", "application/xml").body(lockinfo(scope));
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    let resp = r.send().await.expect("LOCK");
    let status = resp.status().as_u16();
    let token = resp.headers().get("lock-token").map(|v| {
        let v = v.to_str().expect("ASCII Lock-Token");
        v.trim().trim_start_matches('<').trim_end_matches('>').to_owned()
    });
    Locked { status, token, body: resp.text().await.expect("LOCK body") }
}

async fn lock(s: &Server, path: &str, scope: &str) -> Locked {
    lock_with(s, path, scope, &[]).await
}

/// `(<token>)`, the If header that submits a lock token for the request URI.
fn submit(token: &str) -> String {
    format!("(<{token}>)")
}

/// PUT with the lock token submitted in an If header; returns the status.
async fn put_with_token(s: &Server, path: &str, token: &str, body: &'static str) -> u16 {
    let r = s.req("PUT", path).header("If", submit(token)).body(body).send().await.expect("PUT");
    r.status().as_u16()
}

async fn unlock(s: &Server, path: &str, token: &str) -> u16 {
    let r = s.req("UNLOCK", path).header("Lock-Token", format!("<{token}>")).send().await.expect("UNLOCK");
    r.status().as_u16()
}

async fn lockdiscovery(s: &Server, path: &str) -> String {
    let body = "<?xml version=\"1.0\"?><D:propfind xmlns:D=\"DAV:\"><D:prop><D:lockdiscovery/></D:prop></D:propfind>";
    let (status, xml) = propfind(s, path, "0", body).await;
    assert_eq!(status, 207, "{xml}");
    xml
}

/// The number N in the first `<D:timeout>Second-N</D:timeout>` of a body.
fn timeout_seconds(xml: &str) -> u64 {
    let rest = xml.split("<D:timeout>Second-").nth(1).unwrap_or_else(|| panic!("no timeout in {xml}"));
    rest.split('<').next().and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("bad timeout in {xml}"))
}

#[tokio::test]
async fn exclusive_lock_answers_with_token_and_lockdiscovery() {
    let s = Server::start();
    assert_eq!(put(&s, "/f", "content").await, 201);

    let l = lock(&s, "/f", "exclusive").await;

    assert_eq!(l.status, 200, "{}", l.body);
    assert!(l.token().starts_with("opaquelocktoken:"), "token {:?}", l.token);
    assert!(l.body.contains("<D:lockdiscovery>"), "{}", l.body);
    assert!(l.body.contains("<D:exclusive/>"), "{}", l.body);
    assert!(l.body.contains(&format!("<D:href>{}</D:href>", l.token())), "{}", l.body);
    assert!(l.body.contains(OWNER), "owner href missing: {}", l.body);
}

#[tokio::test]
async fn put_without_the_token_is_423_and_leaves_content() {
    let s = Server::start();
    assert_eq!(put(&s, "/f", "original").await, 201);
    let l = lock(&s, "/f", "exclusive").await;
    assert_eq!(l.status, 200);

    let r = s.req("PUT", "/f").body("intruder").send().await.expect("PUT");

    assert_eq!(r.status().as_u16(), 423);
    let body = r.text().await.expect("body");
    assert!(body.contains("lock-token-submitted"), "{body}");
    assert_eq!(get(&s, "/f").await, (200, b"original".to_vec()));
}

#[tokio::test]
async fn put_with_the_token_succeeds() {
    let s = Server::start();
    assert_eq!(put(&s, "/f", "original").await, 201);
    let l = lock(&s, "/f", "exclusive").await;

    assert_eq!(put_with_token(&s, "/f", l.token(), "owner's write").await, 204);

    assert_eq!(get(&s, "/f").await, (200, b"owner's write".to_vec()));
}

#[tokio::test]
async fn lock_survives_a_restart() {
    let mut s = Server::start();
    assert_eq!(put(&s, "/f", "original").await, 201);
    let token = lock(&s, "/f", "exclusive").await.token().to_owned();

    let old_pid = s.pid();
    s.restart();
    assert_ne!(s.pid(), old_pid, "the lock must outlive the process that granted it");

    assert!(lockdiscovery(&s, "/f").await.contains(&token), "lock lost by restart");
    assert_eq!(put(&s, "/f", "intruder").await, 423);
    assert_eq!(put_with_token(&s, "/f", &token, "owner's write").await, 204);
    assert_eq!(get(&s, "/f").await, (200, b"owner's write".to_vec()));
}

#[tokio::test]
async fn unlock_with_the_token_releases_the_lock() {
    let s = Server::start();
    assert_eq!(put(&s, "/f", "original").await, 201);
    let l = lock(&s, "/f", "exclusive").await;

    assert_eq!(unlock(&s, "/f", l.token()).await, 204);

    assert_eq!(put(&s, "/f", "anyone").await, 204);
    assert!(!lockdiscovery(&s, "/f").await.contains(l.token()));
}

#[tokio::test]
async fn unlock_with_a_wrong_token_is_409() {
    let s = Server::start();
    assert_eq!(put(&s, "/f", "original").await, 201);
    let l = lock(&s, "/f", "exclusive").await;

    let wrong = "opaquelocktoken:00000000-0000-0000-0000-000000000000";
    assert_eq!(unlock(&s, "/f", wrong).await, 409);

    assert_eq!(put(&s, "/f", "intruder").await, 423, "the real lock must still hold");
    assert!(lockdiscovery(&s, "/f").await.contains(l.token()));
}

#[tokio::test]
async fn lock_expires_after_its_timeout() {
    let s = Server::start();
    assert_eq!(put(&s, "/f", "original").await, 201);
    let l = lock_with(&s, "/f", "exclusive", &[("Timeout", "Second-1")]).await;
    assert_eq!(l.status, 200);
    assert_eq!(put(&s, "/f", "too early").await, 423);

    tokio::time::sleep(Duration::from_millis(2500)).await;

    assert_eq!(put(&s, "/f", "after expiry").await, 204);
    assert!(!lockdiscovery(&s, "/f").await.contains(l.token()));
}

#[tokio::test]
async fn lock_on_an_unmapped_url_creates_an_empty_resource() {
    let s = Server::start();

    let l = lock(&s, "/new", "exclusive").await;

    assert_eq!(l.status, 201, "{}", l.body);
    assert_eq!(get(&s, "/new").await, (200, Vec::new()));
    assert_eq!(put(&s, "/new", "intruder").await, 423);
}

#[tokio::test]
async fn depth_infinity_lock_on_a_collection_covers_new_members() {
    let s = Server::start();
    assert_eq!(mkcol(&s, "/c").await, 201);
    let l = lock_with(&s, "/c", "exclusive", &[("Depth", "infinity")]).await;
    assert_eq!(l.status, 200, "{}", l.body);
    assert!(l.body.contains("<D:depth>infinity</D:depth>"), "{}", l.body);

    assert_eq!(put(&s, "/c/new", "intruder").await, 423);
    assert_eq!(get(&s, "/c/new").await.0, 404);

    assert_eq!(put_with_token(&s, "/c/new", l.token(), "owner's file").await, 201);
    assert_eq!(get(&s, "/c/new").await, (200, b"owner's file".to_vec()));
}

#[tokio::test]
async fn two_shared_locks_are_both_granted() {
    let s = Server::start();
    assert_eq!(put(&s, "/f", "x").await, 201);

    let first = lock(&s, "/f", "shared").await;
    let second = lock(&s, "/f", "shared").await;

    assert_eq!((first.status, second.status), (200, 200), "{} / {}", first.body, second.body);
    assert_ne!(first.token(), second.token());
    let xml = lockdiscovery(&s, "/f").await;
    assert!(xml.contains(first.token()) && xml.contains(second.token()), "{xml}");
    assert_eq!(xml.matches("<D:shared/>").count(), 2, "{xml}");
}

#[tokio::test]
async fn exclusive_lock_on_a_shared_locked_resource_is_423() {
    let s = Server::start();
    assert_eq!(put(&s, "/f", "x").await, 201);
    assert_eq!(lock(&s, "/f", "shared").await.status, 200);

    let l = lock(&s, "/f", "exclusive").await;

    assert_eq!(l.status, 423, "{}", l.body);
    assert!(l.body.contains("no-conflicting-lock"), "{}", l.body);
    assert_eq!(lockdiscovery(&s, "/f").await.matches("<D:activelock>").count(), 1);
}

#[tokio::test]
async fn lock_refresh_sets_the_new_timeout() {
    let s = Server::start();
    assert_eq!(put(&s, "/f", "x").await, 201);
    let l = lock_with(&s, "/f", "exclusive", &[("Timeout", "Second-3600")]).await;
    assert!(timeout_seconds(&l.body) > 3000, "{}", l.body);

    let r = s
        .req("LOCK", "/f")
        .header("If", submit(l.token()))
        .header("Timeout", "Second-100")
        .send()
        .await
        .expect("LOCK refresh");

    assert_eq!(r.status().as_u16(), 200);
    let body = r.text().await.expect("body");
    let secs = timeout_seconds(&body);
    assert!((95..=100).contains(&secs), "refreshed timeout {secs}: {body}");
    assert!(body.contains(l.token()), "{body}");
    let secs = timeout_seconds(&lockdiscovery(&s, "/f").await);
    assert!((95..=100).contains(&secs), "stored timeout {secs}");
}

#[tokio::test]
async fn delete_of_a_collection_with_a_locked_member_is_423_and_deletes_nothing() {
    let s = Server::start();
    assert_eq!(mkcol(&s, "/c").await, 201);
    assert_eq!(put(&s, "/c/locked", "guarded").await, 201);
    assert_eq!(put(&s, "/c/free", "unguarded").await, 201);
    assert_eq!(lock(&s, "/c/locked", "exclusive").await.status, 200);

    let r = s.req("DELETE", "/c").send().await.expect("DELETE");

    assert_eq!(r.status().as_u16(), 423);
    let body = r.text().await.expect("body");
    assert!(body.contains("/c/locked"), "the 423 should name the lock root: {body}");
    assert_eq!(get(&s, "/c/locked").await, (200, b"guarded".to_vec()));
    assert_eq!(get(&s, "/c/free").await, (200, b"unguarded".to_vec()));
}

#[tokio::test]
async fn move_of_a_locked_file_without_its_token_is_423() {
    let s = Server::start();
    assert_eq!(put(&s, "/f", "guarded").await, 201);
    assert_eq!(lock(&s, "/f", "exclusive").await.status, 200);

    let r = s.req("MOVE", "/f").header("Destination", s.url("/g")).send().await.expect("MOVE");

    assert_eq!(r.status().as_u16(), 423);
    assert_eq!(get(&s, "/f").await, (200, b"guarded".to_vec()));
    assert_eq!(get(&s, "/g").await.0, 404);
}

/// COPY /src to /dst, with an optional If header; returns the status.
async fn copy_src_to_dst(s: &Server, if_header: Option<&str>) -> u16 {
    let mut r = s.req("COPY", "/src").header("Destination", s.url("/dst"));
    if let Some(h) = if_header {
        r = r.header("If", h);
    }
    r.send().await.expect("COPY").status().as_u16()
}

#[tokio::test]
async fn copy_onto_a_locked_destination_without_its_token_is_423() {
    let s = Server::start();
    assert_eq!(put(&s, "/src", "new").await, 201);
    assert_eq!(put(&s, "/dst", "guarded").await, 201);
    let l = lock(&s, "/dst", "exclusive").await;

    assert_eq!(copy_src_to_dst(&s, None).await, 423);
    assert_eq!(get(&s, "/dst").await, (200, b"guarded".to_vec()));
    let tagged = format!("<{}> (<{}>)", s.url("/dst"), l.token());
    assert_eq!(copy_src_to_dst(&s, Some(&tagged)).await, 204);
    assert_eq!(get(&s, "/dst").await, (200, b"new".to_vec()));
}
