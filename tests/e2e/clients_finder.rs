//! macOS Finder (webdavfs), replayed: the mount probe, the empty-PUT / LOCK / chunked PUT
//! / UNLOCK write sequence, MOVE without Overwrite, conditional and ranged GETs, Unicode
//! NFD names, and the flood of AppleDouble and `.DS_Store` probes.

use std::time::{Duration, Instant};

use crate::clients_common::{dav_texts, raw_exchange, raw_header, timeout_near, RawBody, Ua};
use crate::harness::{get, mkcol, multistatus, put, Server};

const UA: &str = "WebDAVFS/3.0.0 (03008000) Darwin/22.1.0 (arm64)";

const OWNER: &str = "<D:href>http://www.apple.com/webdav_fs/</D:href>";

const STAT: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<D:propfind xmlns:D="DAV:">
<D:prop>
<D:getlastmodified/>
<D:getcontentlength/>
<D:creationdate/>
<D:resourcetype/>
</D:prop>
</D:propfind>
"#;

/// The hrefs of a listing of the root, without `/public/` (administrators see it there).
fn root_hrefs(xml: &str) -> Vec<String> {
    let mut hrefs: Vec<String> = multistatus(xml).into_iter().map(|r| r.href).filter(|h| h != "/public/").collect();
    hrefs.sort();
    hrefs
}

const QUOTA: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<D:propfind xmlns:D="DAV:">
<D:prop>
<D:quota-available-bytes/>
<D:quota-used-bytes/>
</D:prop>
</D:propfind>
"#;

#[tokio::test]
async fn mount_options_then_propfind_depth_0_on_root_with_quota() {
    let s = Server::start();
    assert_eq!(put(&s, "/f.bin", vec![7u8; 1000]).await, 201);
    let ua = Ua::new(&s, UA);
    let a = ua.send(ua.req("OPTIONS", "/")).await;
    assert_eq!(a.status, 200);
    assert!(a.header("dav").split(',').any(|c| c.trim() == "2"), "read-write needs class 2: {:?}", a.header("dav"));
    let a = ua.propfind("/", "0", STAT).await;
    assert_eq!(a.status, 207, "{}", a.body);
    let rs = multistatus(&a.body);
    assert_eq!(rs.len(), 1);
    assert_eq!(rs[0].href, "/");
    assert_eq!(rs[0].propstats[0].status, 200);
    for p in ["getlastmodified", "creationdate", "resourcetype"] {
        rs[0].ok_text("DAV:", p);
    }
    let a = ua.propfind("/", "0", QUOTA).await;
    assert_eq!(a.status, 207, "{}", a.body);
    let r = &multistatus(&a.body)[0];
    let avail: u64 = r.ok_text("DAV:", "quota-available-bytes").parse().expect("number");
    let used: u64 = r.ok_text("DAV:", "quota-used-bytes").parse().expect("number");
    assert!(avail > 0, "Finder shows a full disk as read-only");
    assert!(used >= 1000, "used {used}");
}

#[tokio::test]
async fn write_sequence_empty_put_lock_chunked_put_with_token_unlock() {
    let s = Server::start();
    assert_eq!(mkcol(&s, "/Documents").await, 201);
    let ua = Ua::new(&s, UA);
    let path = "/Documents/notes.txt";
    let a = ua.send(ua.req("PUT", path).header("Content-Length", "0")).await;
    assert_eq!(a.status, 201);
    let lock = ua.lock(path, OWNER, &[("Depth", "0"), ("Timeout", "Second-600")]).await;
    assert_eq!(lock.status, 200, "{}", lock.body);
    // Finder takes the token from the body only.
    let tokens = dav_texts(&lock.body, &["lockdiscovery", "activelock", "locktoken", "href"]);
    assert_eq!(tokens.len(), 1, "{}", lock.body);
    let token = tokens[0].clone();
    assert_eq!(dav_texts(&lock.body, &["activelock", "owner", "href"]), ["http://www.apple.com/webdav_fs/"]);
    let timeout = dav_texts(&lock.body, &["activelock", "timeout"]);
    assert!(timeout_near(&timeout, 600), "{timeout:?}");
    let submit = format!("(<{token}>)");
    let headers = [("If", submit.as_str()), ("X-Expected-Entity-Length", "11"), ("Content-Type", "text/plain")];
    let (status, resp) = raw_exchange(&s, "PUT", path, &headers, RawBody::Chunked(&[b"hello", b" ", b"world"]));
    assert_eq!(status, 204, "{resp}");
    assert!(!raw_header(&resp, "etag").is_empty());
    // Refresh at half the timeout: no body, the token in If.
    let a = ua.send(ua.req("LOCK", path).header("If", submit.clone()).header("Timeout", "Second-600")).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let a = ua.send(ua.req("UNLOCK", path).header("Lock-Token", format!("<{token}>"))).await;
    assert_eq!(a.status, 204);
    assert_eq!(get(&s, path).await, (200, b"hello world".to_vec()));
}

#[tokio::test]
async fn chunked_put_without_the_token_is_refused_while_locked() {
    let s = Server::start();
    assert_eq!(put(&s, "/f.txt", "old").await, 201);
    let ua = Ua::new(&s, UA);
    assert_eq!(ua.lock("/f.txt", OWNER, &[("Depth", "0"), ("Timeout", "Second-600")]).await.status, 200);
    let (status, _) = raw_exchange(&s, "PUT", "/f.txt", &[], RawBody::Chunked(&[b"new"]));
    assert_eq!(status, 423);
    assert_eq!(get(&s, "/f.txt").await, (200, b"old".to_vec()));
}

#[tokio::test]
async fn move_without_overwrite_header_replaces_the_target() {
    let s = Server::start();
    assert_eq!(put(&s, "/a.txt", "a").await, 201);
    assert_eq!(put(&s, "/b.txt", "b").await, 201);
    let ua = Ua::new(&s, UA);
    let a = ua.send(ua.req("MOVE", "/a.txt").header("Destination", s.url("/b.txt"))).await;
    assert_eq!(a.status, 204);
    assert_eq!(get(&s, "/a.txt").await.0, 404);
    assert_eq!(get(&s, "/b.txt").await, (200, b"a".to_vec()));
}

#[tokio::test]
async fn get_with_if_modified_since_answers_304_when_unchanged() {
    let s = Server::start();
    assert_eq!(put(&s, "/f.txt", "0123456789").await, 201);
    let ua = Ua::new(&s, UA);
    let lm = ua.send(ua.req("HEAD", "/f.txt")).await.header("last-modified");
    let a = ua.send(ua.req("GET", "/f.txt").header("If-Modified-Since", &lm)).await;
    assert_eq!(a.status, 304);
    assert!(a.body.is_empty());
    let a = ua.send(ua.req("GET", "/f.txt").header("If-Modified-Since", "Sun, 06 Nov 1994 08:49:37 GMT")).await;
    assert_eq!((a.status, a.body.as_str()), (200, "0123456789"));
}

#[tokio::test]
async fn get_with_range_answers_206_with_the_bytes() {
    let s = Server::start();
    assert_eq!(put(&s, "/f.txt", "0123456789").await, 201);
    let ua = Ua::new(&s, UA);
    let a = ua.send(ua.req("GET", "/f.txt").header("Range", "bytes=2-5")).await;
    assert_eq!((a.status, a.body.as_str()), (206, "2345"));
    assert_eq!(a.header("content-range"), "bytes 2-5/10");
}

#[tokio::test]
async fn get_with_if_range_serves_the_range_only_while_fresh() {
    let s = Server::start();
    assert_eq!(put(&s, "/f.txt", "0123456789").await, 201);
    let ua = Ua::new(&s, UA);
    let head = ua.send(ua.req("HEAD", "/f.txt")).await;
    let (etag, lm) = (head.header("etag"), head.header("last-modified"));
    for validator in [etag.as_str(), lm.as_str()] {
        let a = ua.send(ua.req("GET", "/f.txt").header("Range", "bytes=5-").header("If-Range", validator)).await;
        assert_eq!((a.status, a.body.as_str()), (206, "56789"), "If-Range {validator}");
    }
    assert_eq!(put(&s, "/f.txt", "abcdefghij").await, 204);
    let a = ua.send(ua.req("GET", "/f.txt").header("Range", "bytes=5-").header("If-Range", &etag)).await;
    assert_eq!((a.status, a.body.as_str()), (200, "abcdefghij"));
}

#[tokio::test]
async fn nfd_names_find_resources_stored_in_nfc() {
    let s = Server::start();
    let nfc = "/caf%C3%A9.txt";
    let nfd = "/cafe%CC%81.txt";
    assert_eq!(put(&s, nfc, "nfc").await, 201);
    let ua = Ua::new(&s, UA);
    let a = ua.send(ua.req("GET", nfd)).await;
    assert_eq!((a.status, a.body.as_str()), (200, "nfc"));
    assert_eq!(ua.propfind(nfd, "0", STAT).await.status, 207);
    // Writing through the NFD name replaces the same resource.
    assert_eq!(ua.send(ua.req("PUT", nfd).body("nfd")).await.status, 204);
    let a = ua.propfind("/", "1", STAT).await;
    assert_eq!(root_hrefs(&a.body), ["/", nfc], "one resource, listed in NFC");
    assert_eq!(get(&s, nfc).await, (200, b"nfd".to_vec()));
}

#[tokio::test]
async fn nfd_named_folder_made_by_finder_is_reachable_by_nfc_name() {
    let s = Server::start();
    let ua = Ua::new(&s, UA);
    assert_eq!(ua.send(ua.req("MKCOL", "/Re%CC%81sume%CC%81")).await.status, 201);
    assert_eq!(put(&s, "/R%C3%A9sum%C3%A9/cv.pdf", "pdf").await, 201);
    let a = ua.propfind("/Re%CC%81sume%CC%81/", "1", STAT).await;
    assert_eq!(a.status, 207);
    assert_eq!(multistatus(&a.body).len(), 2);
}

/// Names Finder probes for in every folder it opens.
const PROBES: &[&str] = &[
    "._notes.txt",
    ".DS_Store",
    "._.",
    ".localized",
    ".ql_disablethumbnails",
    ".ql_disablecache",
    ".Spotlight-V100",
    ".metadata_never_index",
    ".hidden",
    "._Documents",
];

#[tokio::test]
async fn apple_double_and_ds_store_probes_answer_404_fast() {
    let s = Server::start();
    assert_eq!(mkcol(&s, "/Documents").await, 201);
    let ua = Ua::new(&s, UA);
    let mut total = Duration::ZERO;
    let mut slowest = Duration::ZERO;
    let n = 200;
    for i in 0..n {
        let name = PROBES[i % PROBES.len()];
        let path = if i % 2 == 0 { format!("/{name}") } else { format!("/Documents/{name}") };
        let started = Instant::now();
        let status = match i % 3 {
            0 => ua.propfind(&path, "0", STAT).await.status,
            1 => ua.send(ua.req("HEAD", &path)).await.status,
            _ => ua.send(ua.req("GET", &path)).await.status,
        };
        let took = started.elapsed();
        assert_eq!(status, 404, "{path}");
        total += took;
        slowest = slowest.max(took);
    }
    let avg = total / n as u32;
    eprintln!("{n} Finder probes: average {avg:?}, slowest {slowest:?}");
    assert!(avg < Duration::from_millis(50), "average probe {avg:?}");
}

#[tokio::test]
async fn apple_double_and_ds_store_are_stored_like_any_file() {
    let s = Server::start();
    let ua = Ua::new(&s, UA);
    let apple_double = b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        ";
    for (path, body) in [("/._notes.txt", &apple_double[..]), ("/.DS_Store", b"\x00\x00\x00\x01Bud1")] {
        let a = ua.send(ua.req("PUT", path).body(body.to_vec())).await;
        assert_eq!(a.status, 201, "{path}");
        assert_eq!(get(&s, path).await, (200, body.to_vec()));
    }
    let a = ua.propfind("/", "1", STAT).await;
    assert_eq!(root_hrefs(&a.body), ["/", "/.DS_Store", "/._notes.txt"]);
    assert_eq!(ua.send(ua.req("DELETE", "/._notes.txt")).await.status, 204);
    assert_eq!(get(&s, "/._notes.txt").await.0, 404);
}
