//! davfs2 (`mount -t davfs`, on neon), replayed as its webdav.c sends requests: the
//! Depth 1 listing with Apache's `executable`, LOCK with `If-None-Match: *` to create,
//! If-Match writes with the ETag of the previous PUT, 1800 s locks, MOVE with Overwrite T.
//! neon submits lock tokens as tagged lists with the absolute URI of the resource.

use crate::clients_common::{dav_texts, timeout_near, Answer, Ua};
use crate::harness::{get, mkcol, multistatus, put, response, Server};

const UA: &str = "davfs2/1.6.1 neon/0.32.5";

const LIST: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<propfind xmlns="DAV:"><prop>
<resourcetype xmlns="DAV:"/>
<getcontentlength xmlns="DAV:"/>
<getetag xmlns="DAV:"/>
<getlastmodified xmlns="DAV:"/>
<executable xmlns="http://apache.org/dav/props/"/>
</prop></propfind>
"#;

/// neon's lockinfo: default namespace, the owner is the user name as text.
const NEON_LOCKINFO: &str = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<lockinfo xmlns='DAV:'>\n \
    <lockscope><exclusive/></lockscope>\n<locktype><write/></locktype><owner>admin</owner>\n</lockinfo>\n";

async fn neon_lock(ua: &Ua<'_>, path: &str, if_none_match: bool) -> Answer {
    let mut rb = ua
        .req("LOCK", path)
        .header("Depth", "0")
        .header("Timeout", "Second-1800")
        .header("Content-Type", "application/xml");
    if if_none_match {
        rb = rb.header("If-None-Match", "*");
    }
    ua.send(rb.body(NEON_LOCKINFO)).await
}

/// neon's If header for a request on a locked resource: `<absolute-URI> (<token>)`.
fn tagged(ua: &Ua<'_>, path: &str, token: &str) -> String {
    format!("<{}> (<{token}>)", ua.s.url(path))
}

#[tokio::test]
async fn propfind_depth_1_lists_props_and_executable_is_a_404_propstat() {
    let s = Server::start();
    assert_eq!(mkcol(&s, "/d").await, 201);
    assert_eq!(mkcol(&s, "/d/sub").await, 201);
    assert_eq!(put(&s, "/d/run.sh", "#!/bin/sh\n").await, 201);
    let ua = Ua::new(&s, UA);
    let a = ua.propfind("/d/", "1", LIST).await;
    assert_eq!(a.status, 207, "{}", a.body);
    let rs = multistatus(&a.body);
    assert_eq!(rs.len(), 3);
    for r in &rs {
        assert_eq!(r.propstats[0].status, 200, "{}", r.href);
        for p in ["resourcetype", "getetag", "getlastmodified"] {
            r.ok_text("DAV:", p);
        }
        assert_eq!(r.prop("http://apache.org/dav/props/", "executable").map(|(st, _)| st), Some(404), "{}", r.href);
    }
    assert_eq!(response(&rs, "/d/run.sh").ok_text("DAV:", "getcontentlength"), "10");
    let sub = response(&rs, "/d/sub/");
    assert!(sub.prop("DAV:", "resourcetype").is_some_and(|(_, p)| p.descendants == ["{DAV:}collection"]));
}

#[tokio::test]
async fn new_file_lock_with_if_none_match_creates_201_then_put_with_token() {
    let s = Server::start();
    let ua = Ua::new(&s, UA);
    let path = "/new.txt";
    let lock = neon_lock(&ua, path, true).await;
    assert_eq!(lock.status, 201, "{}", lock.body);
    let token = lock.lock_token();
    // A 201 tells davfs2 the file exists now: its PUT carries the token and no ETag
    // condition (webdav.c dav_lock sets *exists, dav_put then sends no If-None-Match).
    let a = ua.send(ua.req("PUT", path).header("If", tagged(&ua, path, &token)).body("content")).await;
    assert_eq!(a.status, 204, "{}", a.body);
    let etag = a.header("etag");
    assert!(!etag.is_empty());
    assert_eq!(get(&s, path).await, (200, b"content".to_vec()));
    // The next save reuses that ETag.
    let rb = ua.req("PUT", path).header("If", tagged(&ua, path, &token)).header("If-Match", &etag);
    assert_eq!(ua.send(rb.body("second")).await.status, 204);
}

#[tokio::test]
async fn put_with_if_none_match_on_a_lock_created_file_is_412() {
    // The sequence the brief describes (PUT with If-None-Match: * after the LOCK made the
    // file) cannot succeed: the LOCK created an empty resource, so `*` matches it.
    let s = Server::start();
    let ua = Ua::new(&s, UA);
    let token = neon_lock(&ua, "/n.txt", true).await.lock_token();
    let rb = ua.req("PUT", "/n.txt").header("If", tagged(&ua, "/n.txt", &token)).header("If-None-Match", "*");
    assert_eq!(ua.send(rb.body("x")).await.status, 412);
    assert_eq!(get(&s, "/n.txt").await, (200, Vec::new()));
}

#[tokio::test]
async fn put_with_if_none_match_creates_201_when_mounted_without_locks() {
    let s = Server::start();
    let ua = Ua::new(&s, UA);
    let a = ua.send(ua.req("PUT", "/nolocks.txt").header("If-None-Match", "*").body("x")).await;
    assert_eq!(a.status, 201);
    assert!(!a.header("etag").is_empty());
    let a = ua.send(ua.req("PUT", "/nolocks.txt").header("If-None-Match", "*").body("y")).await;
    assert_eq!(a.status, 412);
    assert_eq!(get(&s, "/nolocks.txt").await, (200, b"x".to_vec()));
}

#[tokio::test]
async fn existing_file_lock_with_if_none_match_is_412_and_takes_no_lock() {
    let s = Server::start();
    assert_eq!(put(&s, "/f.txt", "there").await, 201);
    let ua = Ua::new(&s, UA);
    let a = neon_lock(&ua, "/f.txt", true).await;
    assert_eq!(a.status, 412, "{}", a.body);
    assert!(a.header("lock-token").is_empty());
    // Not locked: another writer still gets through.
    assert_eq!(put(&s, "/f.txt", "other").await, 204);
}

#[tokio::test]
async fn put_with_if_match_of_previous_put_etag_is_204_and_stale_is_412() {
    let s = Server::start();
    let ua = Ua::new(&s, UA);
    let first = ua.send(ua.req("PUT", "/f.txt").header("If-None-Match", "*").body("v1")).await;
    assert_eq!(first.status, 201);
    let e1 = first.header("etag");
    let second = ua.send(ua.req("PUT", "/f.txt").header("If-Match", &e1).body("v2")).await;
    assert_eq!(second.status, 204);
    let e2 = second.header("etag");
    assert_ne!(e1, e2);
    let stale = ua.send(ua.req("PUT", "/f.txt").header("If-Match", &e1).body("v3")).await;
    assert_eq!(stale.status, 412);
    assert_eq!(get(&s, "/f.txt").await, (200, b"v2".to_vec()));
    assert_eq!(ua.send(ua.req("PUT", "/f.txt").header("If-Match", &e2).body("v3")).await.status, 204);
}

#[tokio::test]
async fn lock_timeout_1800_is_granted_and_refreshed() {
    let s = Server::start();
    assert_eq!(put(&s, "/f.txt", "x").await, 201);
    let ua = Ua::new(&s, UA);
    let lock = neon_lock(&ua, "/f.txt", false).await;
    assert_eq!(lock.status, 200, "{}", lock.body);
    assert!(timeout_near(&dav_texts(&lock.body, &["activelock", "timeout"]), 1800), "{}", lock.body);
    assert_eq!(dav_texts(&lock.body, &["activelock", "owner"]), ["admin"]);
    let token = lock.lock_token();
    let rb = ua.req("LOCK", "/f.txt").header("If", format!("(<{token}>)")).header("Timeout", "Second-1800");
    let a = ua.send(rb).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(timeout_near(&dav_texts(&a.body, &["activelock", "timeout"]), 1800), "{}", a.body);
    assert_eq!(dav_texts(&a.body, &["activelock", "locktoken", "href"]), [token.as_str()]);
    let a = ua.send(ua.req("UNLOCK", "/f.txt").header("Lock-Token", format!("<{token}>"))).await;
    assert_eq!(a.status, 204);
}

#[tokio::test]
async fn move_with_overwrite_t_replaces_the_target() {
    let s = Server::start();
    assert_eq!(put(&s, "/a.txt", "a").await, 201);
    assert_eq!(put(&s, "/b.txt", "b").await, 201);
    let ua = Ua::new(&s, UA);
    let rb = ua.req("MOVE", "/a.txt").header("Destination", s.url("/b.txt")).header("Overwrite", "T");
    assert_eq!(ua.send(rb.header("Depth", "infinity")).await.status, 204);
    assert_eq!(get(&s, "/a.txt").await.0, 404);
    assert_eq!(get(&s, "/b.txt").await, (200, b"a".to_vec()));
    let rb = ua.req("MOVE", "/b.txt").header("Destination", s.url("/c.txt")).header("Overwrite", "T");
    assert_eq!(ua.send(rb).await.status, 201);
}
