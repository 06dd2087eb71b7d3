//! PROPPATCH (RFC 4918 9.2): dead properties are stored as sent, removed on request,
//! set all-or-nothing, kept across restarts, and follow their resource on COPY and MOVE.

use crate::harness::{mkcol, multistatus, propfind, proppatch, put, DavResponse, Server};

const Z: &str = "urn:wharf:z";

/// `{urn:wharf:z}author` holding a child in another namespace, with `xml:lang`.
const SET_AUTHOR: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:wharf:z">
  <D:set><D:prop>
    <Z:author xml:lang="fr"><Y:name xmlns:Y="urn:wharf:y">Anne</Y:name></Z:author>
  </D:prop></D:set>
</D:propertyupdate>"#;

const REMOVE_AUTHOR: &str = r#"<D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:wharf:z">
  <D:remove><D:prop><Z:author/></D:prop></D:remove>
</D:propertyupdate>"#;

/// Sets `{urn:wharf:z}name` to `value`.
fn set_body(name: &str, value: &str) -> String {
    format!(
        r#"<D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:wharf:z">
        <D:set><D:prop><Z:{name}>{value}</Z:{name}></D:prop></D:set></D:propertyupdate>"#
    )
}

/// PROPFIND Depth 0 for `{urn:wharf:z}name` on `path`; the single response.
async fn read_prop(s: &Server, path: &str, name: &str) -> DavResponse {
    let body = format!(r#"<D:propfind xmlns:D="DAV:"><D:prop><Z:{name} xmlns:Z="urn:wharf:z"/></D:prop></D:propfind>"#);
    let (status, xml) = propfind(s, path, "0", &body).await;
    assert_eq!(status, 207, "{xml}");
    multistatus(&xml).into_iter().next().expect("one response")
}

/// The status PROPFIND reports for `{urn:wharf:z}name` (200 set, 404 not).
async fn prop_status(s: &Server, path: &str, name: &str) -> u16 {
    read_prop(s, path, name).await.prop(Z, name).expect("named in answer").0
}

async fn file(s: &Server, path: &str) {
    assert_eq!(put(s, path, "content").await, 201);
}

/// PROPPATCH that must answer 207 with a single 200 propstat.
async fn patch_ok(s: &Server, path: &str, body: &str) {
    let (status, xml) = proppatch(s, path, body).await;
    assert_eq!(status, 207, "{xml}");
    let rs = multistatus(&xml);
    let codes: Vec<u16> = rs[0].propstats.iter().map(|p| p.status).collect();
    assert_eq!(codes, [200], "{xml}");
}

#[tokio::test]
async fn set_answers_207_with_200_for_the_property() {
    let s = Server::start();
    file(&s, "/a.txt").await;
    let (status, xml) = proppatch(&s, "/a.txt", SET_AUTHOR).await;
    assert_eq!(status, 207);
    let rs = multistatus(&xml);
    assert_eq!(rs[0].href, "/a.txt");
    let (code, p) = rs[0].prop(Z, "author").expect("author in answer");
    assert_eq!(code, 200);
    assert!(p.text.is_empty(), "PROPPATCH answers names only: {xml}");
}

#[tokio::test]
async fn dead_property_reads_back_with_its_namespaced_child_and_xml_lang() {
    let s = Server::start();
    file(&s, "/a.txt").await;
    patch_ok(&s, "/a.txt", SET_AUTHOR).await;
    let r = read_prop(&s, "/a.txt", "author").await;
    let (code, p) = r.prop(Z, "author").expect("author");
    assert_eq!(code, 200);
    assert_eq!(p.lang.as_deref(), Some("fr"));
    assert_eq!(p.descendants, ["{urn:wharf:y}name"]);
    assert_eq!(p.text, "Anne");
}

#[tokio::test]
async fn xml_lang_inherited_from_the_request_is_kept() {
    let s = Server::start();
    file(&s, "/a.txt").await;
    let body = r#"<D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:wharf:z" xml:lang="de">
        <D:set><D:prop><Z:greeting>hallo</Z:greeting></D:prop></D:set></D:propertyupdate>"#;
    patch_ok(&s, "/a.txt", body).await;
    let r = read_prop(&s, "/a.txt", "greeting").await;
    let (_, p) = r.prop(Z, "greeting").expect("greeting");
    assert_eq!((p.lang.as_deref(), p.text.as_str()), (Some("de"), "hallo"));
}

#[tokio::test]
async fn escaped_markup_in_a_value_round_trips_as_text() {
    let s = Server::start();
    file(&s, "/a.txt").await;
    patch_ok(&s, "/a.txt", &set_body("expr", "a &lt; b &amp;&amp; c &gt; d")).await;
    let r = read_prop(&s, "/a.txt", "expr").await;
    assert_eq!(r.prop(Z, "expr").expect("expr").1.text, "a < b && c > d");
}

#[tokio::test]
async fn set_again_replaces_the_value() {
    let s = Server::start();
    file(&s, "/a.txt").await;
    patch_ok(&s, "/a.txt", &set_body("color", "red")).await;
    patch_ok(&s, "/a.txt", &set_body("color", "blue")).await;
    assert_eq!(read_prop(&s, "/a.txt", "color").await.ok_text(Z, "color"), "blue");
}

#[tokio::test]
async fn remove_deletes_a_dead_property() {
    let s = Server::start();
    file(&s, "/a.txt").await;
    patch_ok(&s, "/a.txt", SET_AUTHOR).await;
    patch_ok(&s, "/a.txt", REMOVE_AUTHOR).await;
    assert_eq!(prop_status(&s, "/a.txt", "author").await, 404);
}

#[tokio::test]
async fn dead_properties_can_be_set_on_collections() {
    let s = Server::start();
    assert_eq!(mkcol(&s, "/dir").await, 201);
    patch_ok(&s, "/dir/", &set_body("color", "green")).await;
    assert_eq!(read_prop(&s, "/dir/", "color").await.ok_text(Z, "color"), "green");
}

#[tokio::test]
async fn setting_a_protected_property_fails_the_whole_request() {
    let s = Server::start();
    file(&s, "/a.txt").await;
    let body = r#"<D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:wharf:z">
        <D:set><D:prop><Z:color>red</Z:color><D:getetag>"forged"</D:getetag></D:prop></D:set>
        </D:propertyupdate>"#;
    let (status, xml) = proppatch(&s, "/a.txt", body).await;
    assert_eq!(status, 207, "{xml}");
    let rs = multistatus(&xml);
    let forbidden = rs[0].propstat(403).expect("403 propstat");
    assert_eq!(forbidden.props[0].local, "getetag");
    assert_eq!(forbidden.errors, ["cannot-modify-protected-property"]);
    let dependent = rs[0].propstat(424).expect("424 propstat");
    assert_eq!(dependent.props[0].local, "color");
    assert!(rs[0].propstat(200).is_none(), "{xml}");
    assert_eq!(prop_status(&s, "/a.txt", "color").await, 404);
}

#[tokio::test]
async fn a_failed_proppatch_leaves_existing_properties_alone() {
    let s = Server::start();
    file(&s, "/a.txt").await;
    patch_ok(&s, "/a.txt", SET_AUTHOR).await;
    let body = r#"<D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:wharf:z">
        <D:remove><D:prop><Z:author/></D:prop></D:remove>
        <D:remove><D:prop><D:getlastmodified/></D:prop></D:remove></D:propertyupdate>"#;
    assert_eq!(proppatch(&s, "/a.txt", body).await.0, 207);
    assert_eq!(prop_status(&s, "/a.txt", "author").await, 200);
}

#[tokio::test]
async fn proppatch_on_a_missing_resource_is_404() {
    let s = Server::start();
    assert_eq!(proppatch(&s, "/nowhere.txt", SET_AUTHOR).await.0, 404);
}

#[tokio::test]
async fn proppatch_without_instructions_is_400() {
    let s = Server::start();
    file(&s, "/a.txt").await;
    let body = r#"<D:propertyupdate xmlns:D="DAV:"/>"#;
    assert_eq!(proppatch(&s, "/a.txt", body).await.0, 400);
}

#[tokio::test]
async fn dead_properties_survive_a_restart() {
    let mut s = Server::start();
    file(&s, "/a.txt").await;
    patch_ok(&s, "/a.txt", SET_AUTHOR).await;
    s.restart();
    let r = read_prop(&s, "/a.txt", "author").await;
    let (code, p) = r.prop(Z, "author").expect("author");
    assert_eq!((code, p.text.as_str(), p.lang.as_deref()), (200, "Anne", Some("fr")));
}

#[tokio::test]
async fn copy_copies_dead_properties() {
    let s = Server::start();
    file(&s, "/a.txt").await;
    patch_ok(&s, "/a.txt", &set_body("color", "red")).await;
    let r = s.req("COPY", "/a.txt").header("Destination", s.url("/b.txt")).send().await;
    assert_eq!(r.expect("COPY").status(), 201);
    assert_eq!(read_prop(&s, "/b.txt", "color").await.ok_text(Z, "color"), "red");
    assert_eq!(read_prop(&s, "/a.txt", "color").await.ok_text(Z, "color"), "red");
}

#[tokio::test]
async fn copy_of_a_collection_copies_its_members_dead_properties() {
    let s = Server::start();
    assert_eq!(mkcol(&s, "/src").await, 201);
    file(&s, "/src/a.txt").await;
    patch_ok(&s, "/src/a.txt", &set_body("color", "red")).await;
    let r = s.req("COPY", "/src/").header("Destination", s.url("/dst/")).send().await;
    assert_eq!(r.expect("COPY").status(), 201);
    assert_eq!(read_prop(&s, "/dst/a.txt", "color").await.ok_text(Z, "color"), "red");
}

#[tokio::test]
async fn move_moves_dead_properties() {
    let s = Server::start();
    file(&s, "/a.txt").await;
    patch_ok(&s, "/a.txt", &set_body("color", "red")).await;
    let r = s.req("MOVE", "/a.txt").header("Destination", s.url("/b.txt")).send().await;
    assert_eq!(r.expect("MOVE").status(), 201);
    assert_eq!(read_prop(&s, "/b.txt", "color").await.ok_text(Z, "color"), "red");
    assert_eq!(propfind(&s, "/a.txt", "0", "").await.0, 404);
}

#[tokio::test]
async fn overwriting_copy_replaces_the_destination_dead_properties() {
    let s = Server::start();
    file(&s, "/a.txt").await;
    file(&s, "/b.txt").await;
    patch_ok(&s, "/b.txt", &set_body("stale", "old")).await;
    let r = s.req("COPY", "/a.txt").header("Destination", s.url("/b.txt")).send().await;
    assert_eq!(r.expect("COPY").status(), 204);
    assert_eq!(prop_status(&s, "/b.txt", "stale").await, 404);
}
