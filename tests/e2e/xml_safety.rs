//! Hostile XML request bodies: DTDs and entities (XXE, billion laughs), undefined
//! entities, oversized bodies and invalid namespace declarations are all refused.

use std::time::{Duration, Instant};

use crate::harness::{propfind, proppatch, put, Server};

/// Declares `&xxe;` as the contents of /etc/passwd.
const XXE_DTD: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>"#;

/// Something every /etc/passwd starts with.
const PASSWD_MARK: &str = "root:";

/// The classic exponential entity expansion: `&lol9;` is 10^9 "lol"s.
const BILLION_LAUGHS: &str = r#"<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>"#;

/// A PROPPATCH setting `{urn:x}p` to `value`, after `prolog`.
fn proppatch_body(prolog: &str, value: &str) -> String {
    format!(
        r#"{prolog}<D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><x:p xmlns:x="urn:x">{value}</x:p></D:prop></D:set></D:propertyupdate>"#
    )
}

/// A LOCK request with `owner` as the owner, after `prolog`.
fn lock_body(prolog: &str, owner: &str) -> String {
    format!(
        r#"{prolog}<D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype><D:owner>{owner}</D:owner></D:lockinfo>"#
    )
}

async fn lock(s: &Server, path: &str, body: String) -> (u16, String) {
    let r = s.req("LOCK", path).header("Content-Type", "application/xml").body(body);
    let r = r.send().await.expect("LOCK");
    (r.status().as_u16(), r.text().await.expect("body"))
}

/// The whole answer of an allprop PROPFIND Depth 0 on `path`.
async fn allprop(s: &Server, path: &str) -> String {
    let (status, xml) = propfind(s, path, "0", "").await;
    assert_eq!(status, 207);
    xml
}

async fn with_file() -> Server {
    let s = Server::start();
    assert_eq!(put(&s, "/a.txt", "content").await, 201);
    s
}

// --- DTDs and entities ----------------------------------------------------------------

#[tokio::test]
async fn propfind_with_an_external_entity_is_400_and_leaks_nothing() {
    let s = with_file().await;
    let body = format!(r#"{XXE_DTD}<D:propfind xmlns:D="DAV:"><D:prop>&xxe;<D:getetag/></D:prop></D:propfind>"#);
    let (status, text) = propfind(&s, "/a.txt", "0", &body).await;
    assert_eq!(status, 400);
    assert!(!text.contains(PASSWD_MARK), "{text}");
}

#[tokio::test]
async fn proppatch_with_an_external_entity_is_400_and_stores_nothing() {
    let s = with_file().await;
    let (status, text) = proppatch(&s, "/a.txt", &proppatch_body(XXE_DTD, "&xxe;")).await;
    assert_eq!(status, 400);
    assert!(!text.contains(PASSWD_MARK), "{text}");
    let after = allprop(&s, "/a.txt").await;
    assert!(!after.contains(PASSWD_MARK) && !after.contains("urn:x"), "{after}");
}

#[tokio::test]
async fn lock_with_an_external_entity_is_400_and_locks_nothing() {
    let s = with_file().await;
    let (status, text) = lock(&s, "/a.txt", lock_body(XXE_DTD, "&xxe;")).await;
    assert_eq!(status, 400);
    assert!(!text.contains(PASSWD_MARK), "{text}");
    assert_eq!(put(&s, "/a.txt", "still writable").await, 204);
}

#[tokio::test]
async fn external_dtd_subset_is_400() {
    let s = with_file().await;
    let body = r#"<?xml version="1.0"?><!DOCTYPE D:propfind SYSTEM "file:///etc/passwd">
        <D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>"#;
    let (status, text) = propfind(&s, "/a.txt", "0", body).await;
    assert_eq!(status, 400);
    assert!(!text.contains(PASSWD_MARK), "{text}");
}

#[tokio::test]
async fn billion_laughs_is_400_quickly() {
    let s = with_file().await;
    let started = Instant::now();
    let (status, _) = proppatch(&s, "/a.txt", &proppatch_body(BILLION_LAUGHS, "&lol9;")).await;
    assert_eq!(status, 400);
    assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());
}

#[tokio::test]
async fn billion_laughs_in_propfind_is_400() {
    let s = with_file().await;
    let body = format!(
        r#"{BILLION_LAUGHS}<D:propfind xmlns:D="DAV:"><D:prop><x:p xmlns:x="urn:&lol9;"/></D:prop></D:propfind>"#
    );
    assert_eq!(propfind(&s, "/a.txt", "0", &body).await.0, 400);
}

#[tokio::test]
async fn undefined_entity_reference_is_400() {
    let s = with_file().await;
    let (status, _) = proppatch(&s, "/a.txt", &proppatch_body("", "a &undefined; b")).await;
    assert_eq!(status, 400);
    assert!(!allprop(&s, "/a.txt").await.contains("urn:x"));
}

#[tokio::test]
async fn undefined_entity_in_a_lock_owner_is_400() {
    let s = with_file().await;
    assert_eq!(lock(&s, "/a.txt", lock_body("", "&nobody;")).await.0, 400);
}

#[tokio::test]
async fn nul_character_reference_is_400() {
    let s = with_file().await;
    assert_eq!(proppatch(&s, "/a.txt", &proppatch_body("", "a&#0;b")).await.0, 400);
}

#[tokio::test]
async fn deeply_nested_value_is_400_quickly() {
    let s = with_file().await;
    let depth = 50_000;
    let value = format!("{}{}", "<x:n>".repeat(depth), "</x:n>".repeat(depth));
    let started = Instant::now();
    assert_eq!(proppatch(&s, "/a.txt", &proppatch_body("", &value)).await.0, 400);
    assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());
}

// --- Size limit -----------------------------------------------------------------------

/// A PROPFIND allprop body padded with a comment to exactly `len` bytes.
fn padded_propfind(len: usize) -> String {
    let (head, tail) = (r#"<D:propfind xmlns:D="DAV:"><D:allprop/><!--"#, "--></D:propfind>");
    let pad = len - head.len() - tail.len();
    format!("{head}{}{tail}", "x".repeat(pad))
}

#[tokio::test]
async fn propfind_body_over_max_xml_bytes_is_413() {
    let s = Server::start_with(&["--max-xml-bytes", "1000"]);
    assert_eq!(propfind(&s, "/", "0", &padded_propfind(1001)).await.0, 413);
}

#[tokio::test]
async fn propfind_body_at_max_xml_bytes_is_accepted() {
    let s = Server::start_with(&["--max-xml-bytes", "1000"]);
    assert_eq!(propfind(&s, "/", "0", &padded_propfind(1000)).await.0, 207);
}

#[tokio::test]
async fn proppatch_body_over_max_xml_bytes_is_413_and_stores_nothing() {
    let s = Server::start_with(&["--max-xml-bytes", "1000"]);
    assert_eq!(put(&s, "/a.txt", "content").await, 201);
    let big = "v".repeat(2000);
    assert_eq!(proppatch(&s, "/a.txt", &proppatch_body("", &big)).await.0, 413);
    assert!(!allprop(&s, "/a.txt").await.contains(&big));
}

#[tokio::test]
async fn lock_body_over_max_xml_bytes_is_413() {
    let s = Server::start_with(&["--max-xml-bytes", "1000"]);
    assert_eq!(put(&s, "/a.txt", "content").await, 201);
    assert_eq!(lock(&s, "/a.txt", lock_body("", &"o".repeat(2000))).await.0, 413);
}

// --- Namespaces -----------------------------------------------------------------------

#[tokio::test]
async fn prefix_undeclaration_in_propfind_is_400() {
    let s = with_file().await;
    let body = r#"<D:propfind xmlns:D="DAV:" xmlns:bar=""><D:allprop/></D:propfind>"#;
    assert_eq!(propfind(&s, "/a.txt", "0", body).await.0, 400);
}

#[tokio::test]
async fn prefix_undeclaration_in_proppatch_is_400() {
    let s = with_file().await;
    let body = r#"<D:propertyupdate xmlns:D="DAV:"><D:set><D:prop>
        <x:p xmlns:x="urn:x"><x:q xmlns:x="">v</x:q></x:p></D:prop></D:set></D:propertyupdate>"#;
    assert_eq!(proppatch(&s, "/a.txt", body).await.0, 400);
}

#[tokio::test]
async fn unbound_prefix_is_400() {
    let s = with_file().await;
    let body = r#"<D:propfind xmlns:D="DAV:"><D:prop><nope:p/></D:prop></D:propfind>"#;
    assert_eq!(propfind(&s, "/a.txt", "0", body).await.0, 400);
}
