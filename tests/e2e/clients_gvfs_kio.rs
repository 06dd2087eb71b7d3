//! GNOME GVfs (Nautilus) and KDE KIO (Dolphin), replayed: GVfs' mount probe and walk up
//! the parents, its HEAD-then-PUT create and If-Match replace, MOVE without Depth; KIO's
//! reliance on the first `<response>`, and its exact MKCOL/MOVE/COPY status codes.

use crate::clients_common::Ua;
use crate::harness::{get, mkcol, multistatus, put, Server};

const GVFS: &str = "gvfs/1.50.3";
const KIO: &str = "Mozilla/5.0 (X11; Linux x86_64) KIO/5.115 dolphin/23.08";

const GVFS_PROPS: &str = r#"<?xml version="1.0" encoding="utf-8" ?>
<D:propfind xmlns:D="DAV:"><D:prop><D:creationdate/><D:displayname/><D:getcontentlength/>
<D:getcontenttype/><D:getetag/><D:getlastmodified/><D:resourcetype/></D:prop></D:propfind>"#;

const KIO_PROPS: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<D:propfind xmlns:D="DAV:"><D:prop><D:creationdate/><D:getcontentlength/><D:displayname/>
<D:source/><D:getcontentlanguage/><D:getcontenttype/><D:getlastmodified/><D:getetag/>
<D:supportedlock/><D:lockdiscovery/><D:resourcetype/><D:quota-available-bytes/>
<D:quota-used-bytes/></D:prop></D:propfind>"#;

#[tokio::test]
async fn gvfs_mount_options_answers_2xx_with_dav_header() {
    let s = Server::start();
    assert_eq!(mkcol(&s, "/share").await, 201);
    let ua = Ua::new(&s, GVFS);
    for path in ["/share/", "/share", "/"] {
        let a = ua.send(ua.req("OPTIONS", path)).await;
        assert!((200..300).contains(&a.status), "{path}: {}", a.status);
        assert!(!a.header("dav").is_empty(), "{path}");
    }
}

#[tokio::test]
async fn gvfs_walks_up_the_parents_with_options_and_propfind() {
    let s = Server::start();
    assert_eq!(mkcol(&s, "/a").await, 201);
    assert_eq!(mkcol(&s, "/a/b").await, 201);
    assert_eq!(mkcol(&s, "/a/b/c").await, 201);
    let ua = Ua::new(&s, GVFS);
    for path in ["/a/b/c/", "/a/b/", "/a/", "/"] {
        let a = ua.send(ua.req("OPTIONS", path)).await;
        assert!((200..300).contains(&a.status) && !a.header("dav").is_empty(), "OPTIONS {path}");
        let a = ua.propfind(path, "0", GVFS_PROPS).await;
        assert_eq!(a.status, 207, "PROPFIND {path}");
        let rs = multistatus(&a.body);
        assert_eq!(rs.len(), 1);
        assert_eq!(rs[0].href, path);
        assert_eq!(rs[0].propstats[0].status, 200);
    }
}

#[tokio::test]
async fn gvfs_create_is_head_404_then_put_201() {
    let s = Server::start();
    let ua = Ua::new(&s, GVFS);
    assert_eq!(ua.send(ua.req("HEAD", "/Untitled%20Document")).await.status, 404);
    let a = ua.send(ua.req("PUT", "/Untitled%20Document").body("hello")).await;
    assert_eq!(a.status, 201);
    assert!(!a.header("etag").is_empty());
    assert_eq!(get(&s, "/Untitled%20Document").await, (200, b"hello".to_vec()));
}

#[tokio::test]
async fn gvfs_replace_head_with_if_match_is_412_when_changed_elsewhere() {
    let s = Server::start();
    let ua = Ua::new(&s, GVFS);
    let etag = ua.send(ua.req("PUT", "/doc.txt").body("v1")).await.header("etag");
    assert_eq!(ua.send(ua.req("HEAD", "/doc.txt").header("If-Match", &etag)).await.status, 200);
    assert_eq!(put(&s, "/doc.txt", "changed elsewhere").await, 204);
    assert_eq!(ua.send(ua.req("HEAD", "/doc.txt").header("If-Match", &etag)).await.status, 412);
    let a = ua.send(ua.req("PUT", "/doc.txt").header("If-Match", &etag).body("v2")).await;
    assert_eq!(a.status, 412);
    assert_eq!(get(&s, "/doc.txt").await, (200, b"changed elsewhere".to_vec()));
}

#[tokio::test]
async fn gvfs_replace_put_with_current_if_match_succeeds() {
    let s = Server::start();
    let ua = Ua::new(&s, GVFS);
    let etag = ua.send(ua.req("PUT", "/doc.txt").body("v1")).await.header("etag");
    let head = ua.send(ua.req("HEAD", "/doc.txt").header("If-Match", &etag)).await;
    assert_eq!(head.status, 200);
    assert_eq!(head.header("etag"), etag);
    let a = ua.send(ua.req("PUT", "/doc.txt").header("If-Match", &etag).body("v2")).await;
    assert_eq!(a.status, 204);
    assert_eq!(get(&s, "/doc.txt").await, (200, b"v2".to_vec()));
}

#[tokio::test]
async fn gvfs_move_without_depth_moves_the_whole_tree() {
    let s = Server::start();
    assert_eq!(mkcol(&s, "/t").await, 201);
    assert_eq!(mkcol(&s, "/t/s").await, 201);
    assert_eq!(put(&s, "/t/a.txt", "a").await, 201);
    assert_eq!(put(&s, "/t/s/b.txt", "b").await, 201);
    let ua = Ua::new(&s, GVFS);
    let rb = ua.req("MOVE", "/t/").header("Destination", s.url("/u/")).header("Overwrite", "F");
    assert_eq!(ua.send(rb).await.status, 201);
    assert_eq!(get(&s, "/u/a.txt").await, (200, b"a".to_vec()));
    assert_eq!(get(&s, "/u/s/b.txt").await, (200, b"b".to_vec()));
    assert_eq!(ua.send(ua.req("HEAD", "/t/")).await.status, 404);
    assert_eq!(ua.send(ua.req("HEAD", "/t/s/b.txt")).await.status, 404);
}

#[tokio::test]
async fn kio_first_response_of_a_listing_is_the_target_itself() {
    let s = Server::start();
    assert_eq!(mkcol(&s, "/d").await, 201);
    // Names that sort before the collection's own href.
    for name in ["!first.txt", "0.txt", "%20space.txt"] {
        assert_eq!(put(&s, &format!("/d/{name}"), "x").await, 201);
    }
    assert_eq!(mkcol(&s, "/d/-sub").await, 201);
    let ua = Ua::new(&s, KIO);
    for (path, href) in [("/d", "/d/"), ("/d/", "/d/")] {
        let a = ua.propfind(path, "1", KIO_PROPS).await;
        assert_eq!(a.status, 207);
        let rs = multistatus(&a.body);
        assert_eq!(rs.len(), 5);
        assert_eq!(rs[0].href, href);
        assert_eq!(rs[0].propstats[0].status, 200);
    }
    let a = ua.propfind("/d/0.txt", "0", KIO_PROPS).await;
    assert_eq!(multistatus(&a.body)[0].href, "/d/0.txt");
}

#[tokio::test]
async fn kio_mkcol_is_exactly_201_then_405_when_it_exists() {
    let s = Server::start();
    let ua = Ua::new(&s, KIO);
    assert_eq!(ua.send(ua.req("MKCOL", "/New%20Folder")).await.status, 201);
    assert_eq!(ua.send(ua.req("MKCOL", "/New%20Folder")).await.status, 405);
    assert_eq!(ua.send(ua.req("MKCOL", "/New%20Folder/")).await.status, 405);
    assert_eq!(put(&s, "/file", "x").await, 201);
    assert_eq!(ua.send(ua.req("MKCOL", "/file")).await.status, 405);
}

#[tokio::test]
async fn kio_move_and_copy_succeed_with_201_or_204_only() {
    let s = Server::start();
    assert_eq!(put(&s, "/a.txt", "a").await, 201);
    assert_eq!(mkcol(&s, "/dir").await, 201);
    assert_eq!(put(&s, "/dir/in.txt", "in").await, 201);
    let ua = Ua::new(&s, KIO);
    let transfer = |m: &str, from: &str, to: &str, overwrite: &str| {
        ua.req(m, from).header("Destination", s.url(to)).header("Overwrite", overwrite).header("Depth", "infinity")
    };
    assert_eq!(ua.send(transfer("COPY", "/a.txt", "/b.txt", "F")).await.status, 201);
    assert_eq!(ua.send(transfer("COPY", "/a.txt", "/b.txt", "T")).await.status, 204);
    assert_eq!(ua.send(transfer("COPY", "/dir/", "/dir2/", "F")).await.status, 201);
    assert_eq!(ua.send(transfer("MOVE", "/b.txt", "/c.txt", "F")).await.status, 201);
    assert_eq!(ua.send(transfer("MOVE", "/c.txt", "/a.txt", "T")).await.status, 204);
    assert_eq!(ua.send(transfer("MOVE", "/dir2/", "/dir/", "T")).await.status, 204);
    assert_eq!(get(&s, "/dir/in.txt").await, (200, b"in".to_vec()));
    assert_eq!(get(&s, "/a.txt").await, (200, b"a".to_vec()));
    assert_eq!(get(&s, "/c.txt").await.0, 404);
}
