//! PROPFIND (RFC 4918 9.1): depths, allprop/propname/prop requests, quota properties
//! (RFC 4331) and malformed requests.

use crate::harness::{mkcol, multistatus, propfind, proppatch, put, response, DavResponse, Server};

const ALLPROP: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>"#;

const PROPNAME: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<D:propfind xmlns:D="DAV:"><D:propname/></D:propfind>"#;

/// A dead property `{urn:wharf:test}note` whose value is easy to spot in a body.
const SET_NOTE: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<D:propertyupdate xmlns:D="DAV:" xmlns:T="urn:wharf:test">
  <D:set><D:prop><T:note>secret-note-value</T:note></D:prop></D:set>
</D:propertyupdate>"#;

const TEST_NS: &str = "urn:wharf:test";

/// A `prop` request for the given inner elements.
fn prop_body(inner: &str) -> String {
    format!(r#"<D:propfind xmlns:D="DAV:" xmlns:T="urn:wharf:test"><D:prop>{inner}</D:prop></D:propfind>"#)
}

/// PROPFIND that must answer 207; returns the parsed responses.
async fn propfind_ok(s: &Server, path: &str, depth: &str, body: &str) -> Vec<DavResponse> {
    let (status, xml) = propfind(s, path, depth, body).await;
    assert_eq!(status, 207, "{xml}");
    multistatus(&xml)
}

fn hrefs(responses: &[DavResponse]) -> Vec<&str> {
    let mut v: Vec<&str> = responses.iter().map(|r| r.href.as_str()).collect();
    v.sort_unstable();
    v
}

/// /c/, /c/f.txt, /c/sub/, /c/sub/deep.txt
async fn nested_tree(s: &Server) {
    assert_eq!(mkcol(s, "/c").await, 201);
    assert_eq!(mkcol(s, "/c/sub").await, 201);
    assert_eq!(put(s, "/c/f.txt", "file").await, 201);
    assert_eq!(put(s, "/c/sub/deep.txt", "deep").await, 201);
}

// --- Depth ----------------------------------------------------------------------------

#[tokio::test]
async fn depth_0_on_a_file_describes_only_that_file() {
    let s = Server::start();
    assert_eq!(put(&s, "/a.txt", "hello").await, 201);
    let rs = propfind_ok(&s, "/a.txt", "0", ALLPROP).await;
    assert_eq!(hrefs(&rs), ["/a.txt"]);
    assert_eq!(rs[0].ok_text("DAV:", "getcontentlength"), "5");
}

#[tokio::test]
async fn depth_1_lists_members_and_collection_hrefs_end_in_slash() {
    let s = Server::start();
    nested_tree(&s).await;
    let rs = propfind_ok(&s, "/c/", "1", ALLPROP).await;
    assert_eq!(hrefs(&rs), ["/c/", "/c/f.txt", "/c/sub/"]);
}

#[tokio::test]
async fn depth_1_marks_collections_in_resourcetype() {
    let s = Server::start();
    nested_tree(&s).await;
    let rs = propfind_ok(&s, "/c/", "1", &prop_body("<D:resourcetype/>")).await;
    let (_, sub) = response(&rs, "/c/sub/").prop("DAV:", "resourcetype").expect("resourcetype");
    assert_eq!(sub.descendants, ["{DAV:}collection"]);
    let (_, file) = response(&rs, "/c/f.txt").prop("DAV:", "resourcetype").expect("resourcetype");
    assert!(file.descendants.is_empty());
}

#[tokio::test]
async fn missing_depth_header_means_infinity() {
    let s = Server::start();
    nested_tree(&s).await;
    let r = s.req("PROPFIND", "/c/").body(ALLPROP).send().await.expect("PROPFIND");
    assert_eq!(r.status(), 207);
    let rs = multistatus(&r.text().await.expect("body"));
    assert_eq!(hrefs(&rs), ["/c/", "/c/f.txt", "/c/sub/", "/c/sub/deep.txt"]);
}

#[tokio::test]
async fn depth_infinity_lists_a_three_level_tree() {
    let s = Server::start();
    for dir in ["/a", "/a/b", "/a/b/c"] {
        assert_eq!(mkcol(&s, dir).await, 201);
    }
    for file in ["/a/1.txt", "/a/b/2.txt", "/a/b/c/3.txt"] {
        assert_eq!(put(&s, file, "x").await, 201);
    }
    let rs = propfind_ok(&s, "/a/", "infinity", ALLPROP).await;
    let expected = ["/a/", "/a/1.txt", "/a/b/", "/a/b/2.txt", "/a/b/c/", "/a/b/c/3.txt"];
    assert_eq!(hrefs(&rs), expected);
}

#[tokio::test]
async fn depth_infinity_beyond_the_limit_is_403_propfind_finite_depth() {
    let s = Server::start_with(&["--propfind-infinity-limit", "5"]);
    for i in 0..6 {
        assert_eq!(put(&s, &format!("/f{i}.txt"), "x").await, 201);
    }
    let (status, body) = propfind(&s, "/", "infinity", ALLPROP).await;
    assert_eq!(status, 403);
    assert!(body.contains("propfind-finite-depth"), "{body}");
}

#[tokio::test]
async fn depth_infinity_within_the_limit_is_answered() {
    let s = Server::start_with(&["--propfind-infinity-limit", "5"]);
    assert_eq!(mkcol(&s, "/d").await, 201);
    for i in 0..3 {
        assert_eq!(put(&s, &format!("/d/f{i}.txt"), "x").await, 201);
    }
    assert_eq!(propfind_ok(&s, "/d/", "infinity", ALLPROP).await.len(), 4);
}

#[tokio::test]
async fn depth_1_is_not_limited_by_the_infinity_limit() {
    let s = Server::start_with(&["--propfind-infinity-limit", "5"]);
    assert_eq!(mkcol(&s, "/d").await, 201);
    for i in 0..6 {
        assert_eq!(put(&s, &format!("/d/f{i}.txt"), "x").await, 201);
    }
    assert_eq!(propfind_ok(&s, "/d/", "1", ALLPROP).await.len(), 7);
}

#[tokio::test]
async fn hrefs_are_percent_encoded() {
    let s = Server::start();
    assert_eq!(mkcol(&s, "/a%20dir").await, 201);
    assert_eq!(put(&s, "/a%20dir/%C3%A9t%C3%A9.txt", "x").await, 201);
    let rs = propfind_ok(&s, "/a%20dir/", "1", ALLPROP).await;
    assert_eq!(hrefs(&rs), ["/a%20dir/", "/a%20dir/%C3%A9t%C3%A9.txt"]);
}

#[tokio::test]
async fn a_name_put_in_nfd_is_listed_in_nfc() {
    let s = Server::start();
    assert_eq!(mkcol(&s, "/d").await, 201);
    assert_eq!(put(&s, "/d/cafe%CC%81.txt", "x").await, 201);
    let rs = propfind_ok(&s, "/d/", "1", ALLPROP).await;
    assert_eq!(hrefs(&rs), ["/d/", "/d/caf%C3%A9.txt"]);
}

// --- allprop, propname, prop ----------------------------------------------------------

#[tokio::test]
async fn allprop_returns_live_and_dead_properties() {
    let s = Server::start();
    assert_eq!(put(&s, "/a.txt", "hello").await, 201);
    assert_eq!(proppatch(&s, "/a.txt", SET_NOTE).await.0, 207);
    let rs = propfind_ok(&s, "/a.txt", "0", ALLPROP).await;
    let r = &rs[0];
    assert!(r.ok_text("DAV:", "getetag").starts_with('"'));
    assert!(httpdate::parse_http_date(&r.ok_text("DAV:", "getlastmodified")).is_ok());
    let created = r.ok_text("DAV:", "creationdate");
    assert!(created.len() == 20 && created.ends_with('Z'), "{created}");
    assert_eq!(r.prop("DAV:", "resourcetype").map(|(s, _)| s), Some(200));
    assert_eq!(r.ok_text("DAV:", "getcontentlength"), "5");
    assert_eq!(r.ok_text(TEST_NS, "note"), "secret-note-value");
}

#[tokio::test]
async fn allprop_leaves_out_quota_properties() {
    let s = Server::start();
    let rs = propfind_ok(&s, "/", "0", ALLPROP).await;
    assert!(rs[0].prop("DAV:", "quota-used-bytes").is_none());
    assert!(rs[0].prop("DAV:", "quota-available-bytes").is_none());
}

#[tokio::test]
async fn allprop_of_one_resource_has_supportedlock_a_listing_leaves_it_out_propname_names_it() {
    let s = Server::start();
    assert_eq!(put(&s, "/a.txt", "hello").await, 201);
    let one = propfind_ok(&s, "/a.txt", "0", ALLPROP).await;
    assert_eq!(one[0].prop("DAV:", "supportedlock").map(|(s, _)| s), Some(200));
    assert_eq!(one[0].prop("DAV:", "lockdiscovery").map(|(s, _)| s), Some(200));
    let listing = propfind_ok(&s, "/", "1", ALLPROP).await;
    let member = response(&listing, "/a.txt");
    assert!(member.prop("DAV:", "supportedlock").is_none());
    assert_eq!(member.prop("DAV:", "lockdiscovery").map(|(s, _)| s), Some(200));
    let names = propfind_ok(&s, "/a.txt", "0", PROPNAME).await;
    assert_eq!(names[0].prop("DAV:", "supportedlock").map(|(s, _)| s), Some(200));
}

#[tokio::test]
async fn supportedlock_by_name_offers_exclusive_and_shared_write_locks() {
    let s = Server::start();
    assert_eq!(put(&s, "/a.txt", "hello").await, 201);
    let (status, xml) = propfind(&s, "/a.txt", "0", &prop_body("<D:supportedlock/>")).await;
    assert_eq!(status, 207);
    assert!(xml.contains("<D:exclusive/>") && xml.contains("<D:shared/>") && xml.contains("<D:write/>"), "{xml}");
}

#[tokio::test]
async fn allprop_with_include_returns_quota_used_bytes() {
    let s = Server::start();
    assert_eq!(put(&s, "/a.txt", "hello").await, 201);
    let body = r#"<D:propfind xmlns:D="DAV:"><D:allprop/>
        <D:include><D:quota-used-bytes/></D:include></D:propfind>"#;
    let rs = propfind_ok(&s, "/", "0", body).await;
    assert_eq!(rs[0].ok_text("DAV:", "quota-used-bytes"), "5");
    assert_eq!(rs[0].prop("DAV:", "getetag").map(|(s, _)| s), Some(200));
}

#[tokio::test]
async fn propname_returns_empty_elements_without_values() {
    let s = Server::start();
    assert_eq!(put(&s, "/a.txt", "hello").await, 201);
    assert_eq!(proppatch(&s, "/a.txt", SET_NOTE).await.0, 207);
    let (status, xml) = propfind(&s, "/a.txt", "0", PROPNAME).await;
    assert_eq!(status, 207);
    assert!(!xml.contains("secret-note-value"), "{xml}");
    let rs = multistatus(&xml);
    for (ns, local) in [(TEST_NS, "note"), ("DAV:", "getetag"), ("DAV:", "getcontentlength")] {
        let (status, p) = rs[0].prop(ns, local).unwrap_or_else(|| panic!("{local} missing: {xml}"));
        assert_eq!(status, 200);
        assert!(p.text.is_empty() && p.descendants.is_empty(), "{local} has a value: {xml}");
    }
}

#[tokio::test]
async fn prop_request_splits_found_and_missing_into_200_and_404() {
    let s = Server::start();
    assert_eq!(put(&s, "/a.txt", "hello").await, 201);
    let rs = propfind_ok(&s, "/a.txt", "0", &prop_body("<D:getetag/><T:absent/>")).await;
    let r = &rs[0];
    assert_eq!(r.propstats.len(), 2, "{r:?}");
    let ok = r.propstat(200).expect("200 propstat");
    let missing = r.propstat(404).expect("404 propstat");
    let names = |ps: &crate::harness::Propstat| ps.props.iter().map(|p| p.local.clone()).collect::<Vec<_>>();
    assert_eq!(names(ok), ["getetag"]);
    assert_eq!(names(missing), ["absent"]);
    assert_eq!(missing.props[0].ns, TEST_NS);
}

#[tokio::test]
async fn prop_request_returns_a_dead_property_by_name() {
    let s = Server::start();
    assert_eq!(put(&s, "/a.txt", "hello").await, 201);
    assert_eq!(proppatch(&s, "/a.txt", SET_NOTE).await.0, 207);
    let rs = propfind_ok(&s, "/a.txt", "0", &prop_body("<T:note/>")).await;
    assert_eq!(rs[0].ok_text(TEST_NS, "note"), "secret-note-value");
    assert!(rs[0].prop("DAV:", "getetag").is_none());
}

#[tokio::test]
async fn getcontenttype_matches_the_content_type_of_get() {
    let s = Server::start();
    assert_eq!(put(&s, "/a.txt", "hello").await, 201);
    let r = s.req("GET", "/a.txt").send().await.expect("GET");
    let rs = propfind_ok(&s, "/a.txt", "0", &prop_body("<D:getcontenttype/>")).await;
    assert_eq!(rs[0].ok_text("DAV:", "getcontenttype"), crate::harness::header(&r, "content-type"));
}

// --- Quota (RFC 4331) -----------------------------------------------------------------

const QUOTA: &str = "<D:quota-available-bytes/><D:quota-used-bytes/>";

#[tokio::test]
async fn quota_properties_of_a_collection_are_numbers() {
    let s = Server::start();
    assert_eq!(mkcol(&s, "/dir").await, 201);
    let rs = propfind_ok(&s, "/dir/", "0", &prop_body(QUOTA)).await;
    let available: u64 = rs[0].ok_text("DAV:", "quota-available-bytes").parse().expect("number");
    let used: u64 = rs[0].ok_text("DAV:", "quota-used-bytes").parse().expect("number");
    assert!(available > 0);
    assert_eq!(used, 0);
}

#[tokio::test]
async fn quota_used_bytes_reflects_a_put() {
    let s = Server::start();
    assert_eq!(put(&s, "/blob.bin", vec![7u8; 1234]).await, 201);
    let rs = propfind_ok(&s, "/", "0", &prop_body(QUOTA)).await;
    assert_eq!(rs[0].ok_text("DAV:", "quota-used-bytes"), "1234");
}

#[tokio::test]
async fn quota_available_bytes_honours_the_configured_quota() {
    let s = Server::start_with(&["--quota-bytes", "10000"]);
    assert_eq!(put(&s, "/blob.bin", vec![7u8; 1234]).await, 201);
    let rs = propfind_ok(&s, "/", "0", &prop_body(QUOTA)).await;
    assert_eq!(rs[0].ok_text("DAV:", "quota-available-bytes"), "8766");
}

#[tokio::test]
async fn quota_properties_are_404_on_a_file() {
    let s = Server::start();
    assert_eq!(put(&s, "/a.txt", "hello").await, 201);
    let rs = propfind_ok(&s, "/a.txt", "0", &prop_body(QUOTA)).await;
    assert_eq!(rs[0].prop("DAV:", "quota-used-bytes").map(|(s, _)| s), Some(404));
}

// --- Errors and defaults --------------------------------------------------------------

#[tokio::test]
async fn propfind_on_a_missing_resource_is_404() {
    let s = Server::start();
    assert_eq!(propfind(&s, "/nowhere.txt", "0", ALLPROP).await.0, 404);
}

#[tokio::test]
async fn malformed_xml_body_is_400() {
    let s = Server::start();
    let body = r#"<D:propfind xmlns:D="DAV:"><D:prop><D:getetag></D:prop></D:propfind>"#;
    assert_eq!(propfind(&s, "/", "0", body).await.0, 400);
}

#[tokio::test]
async fn invalid_depth_is_400() {
    let s = Server::start();
    assert_eq!(propfind(&s, "/", "2", ALLPROP).await.0, 400);
}

#[tokio::test]
async fn empty_body_means_allprop() {
    let s = Server::start();
    assert_eq!(put(&s, "/a.txt", "hello").await, 201);
    assert_eq!(proppatch(&s, "/a.txt", SET_NOTE).await.0, 207);
    let rs = propfind_ok(&s, "/a.txt", "0", "").await;
    assert_eq!(rs[0].ok_text("DAV:", "getcontentlength"), "5");
    assert!(rs[0].ok_text("DAV:", "getetag").starts_with('"'));
    assert_eq!(rs[0].ok_text(TEST_NS, "note"), "secret-note-value");
}

// --- Conditional PROPFIND -------------------------------------------------------------

#[tokio::test]
async fn propfind_ignores_if_modified_since() {
    let s = Server::start();
    assert_eq!(put(&s, "/a.txt", "hello").await, 201);
    let future = httpdate::fmt_http_date(std::time::SystemTime::now() + std::time::Duration::from_secs(86_400));
    let r = s.req("PROPFIND", "/a.txt").header("Depth", "0").header("If-Modified-Since", future);
    assert_eq!(r.send().await.expect("PROPFIND").status(), 207);
}

#[tokio::test]
async fn propfind_with_a_matching_if_none_match_is_412() {
    let s = Server::start();
    let r = s.req("PUT", "/a.txt").body("hello").send().await.expect("PUT");
    let etag = crate::harness::header(&r, "etag");
    let r = s.req("PROPFIND", "/a.txt").header("Depth", "0").header("If-None-Match", etag);
    assert_eq!(r.send().await.expect("PROPFIND").status(), 412);
}
