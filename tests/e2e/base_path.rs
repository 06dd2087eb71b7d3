//! `--base-path /dav`: Wharf served under a sub-path, as behind a proxy that maps
//! `https://example.org/dav/` to it. Hrefs, pages and redirects carry the prefix; nothing
//! outside it is served.

use crate::harness::*;

fn under_dav() -> Server {
    Server::start_with(&["--base-path", "/dav"])
}

#[tokio::test]
async fn the_banner_announces_the_prefix() {
    let s = under_dav();
    assert!(s.base.ends_with("/dav/"), "{}", s.base);
}

#[tokio::test]
async fn webdav_works_under_the_prefix_and_hrefs_carry_it() {
    let s = under_dav();
    assert_eq!(mkcol(&s, "/docs/").await, 201);
    assert_eq!(put(&s, "/docs/a b.txt", "hello").await, 201);
    assert_eq!(get(&s, "/docs/a%20b.txt").await, (200, b"hello".to_vec()));
    let (status, xml) = propfind(&s, "/docs/", "1", "").await;
    assert_eq!(status, 207);
    let hrefs: Vec<String> = multistatus(&xml).into_iter().map(|r| r.href).collect();
    assert_eq!(hrefs, ["/dav/docs/", "/dav/docs/a%20b.txt"]);
}

#[tokio::test]
async fn nothing_outside_the_prefix_is_served() {
    let s = under_dav();
    assert_eq!(put(&s, "/a.txt", "x").await, 201);
    assert_eq!(raw(&s, "GET", "/a.txt", b"").0, 404);
    assert_eq!(raw(&s, "PROPFIND", "/", b"").0, 404);
    assert_eq!(raw(&s, "GET", "/dava.txt", b"").0, 404, "a name merely starting with the prefix is outside");
}

#[tokio::test]
async fn the_bare_prefix_redirects_a_browser_to_the_collection() {
    let s = under_dav();
    let (status, resp) = raw(&s, "GET", "/dav", b"");
    assert_eq!(status, 301);
    assert!(resp.to_ascii_lowercase().contains("location: /dav/\r\n"), "{resp}");
}

#[tokio::test]
async fn copy_and_move_take_destinations_under_the_prefix() {
    let s = under_dav();
    assert_eq!(put(&s, "/a.txt", "payload").await, 201);
    let copy = s.req("COPY", "/a.txt").header("Destination", "/dav/b.txt").send().await.expect("COPY");
    assert_eq!(copy.status().as_u16(), 201);
    let moved = s.req("MOVE", "/b.txt").header("Destination", s.url("/c.txt")).send().await.expect("MOVE");
    assert_eq!(moved.status().as_u16(), 201);
    assert_eq!(get(&s, "/c.txt").await, (200, b"payload".to_vec()));
    let outside = s.req("COPY", "/a.txt").header("Destination", "/elsewhere/d.txt").send().await.expect("COPY");
    assert_eq!(outside.status().as_u16(), 502, "a path outside the prefix is not this server's");
}

#[tokio::test]
async fn lock_roots_carry_the_prefix() {
    let s = under_dav();
    let body = r#"<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockinfo>"#;
    let r = s.req("LOCK", "/locked.txt").body(body).send().await.expect("LOCK");
    assert_eq!(r.status().as_u16(), 201);
    assert!(text(r).await.contains("<D:href>/dav/locked.txt</D:href>"));
}

#[tokio::test]
async fn the_browser_page_links_and_assets_carry_the_prefix() {
    let s = under_dav();
    assert_eq!(mkcol(&s, "/photos/").await, 201);
    let page = text(s.req("GET", "/").header("Accept", "text/html").send().await.expect("page")).await;
    assert!(page.contains("href=\"/dav/photos/\""), "{page}");
    assert!(page.contains("href=\"/dav/\">Home</a>"), "{page}");
    let asset = page.split("src=\"").nth(1).and_then(|r| r.split('"').next()).expect("script link");
    assert!(asset.starts_with("/dav/?asset=app.js"), "{asset}");
    let asset = asset.replace("&amp;", "&");
    assert_eq!(raw(&s, "GET", &asset, b"").0, 200);
}

#[tokio::test]
async fn an_upload_from_the_page_under_the_prefix_is_accepted() {
    let s = under_dav();
    let origin = s.base.trim_end_matches('/').trim_end_matches("/dav").to_owned();
    let r = s
        .req("PUT", "/from-page.txt")
        .header("Origin", origin)
        .header("Sec-Fetch-Site", "same-origin")
        .header("X-Wharf-Request", "1")
        .body("uploaded")
        .send()
        .await
        .expect("PUT");
    assert_eq!(r.status().as_u16(), 201);
    assert_eq!(get(&s, "/from-page.txt").await, (200, b"uploaded".to_vec()));
}
