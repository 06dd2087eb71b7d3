//! rclone (webdav backend, vendor "other"), Cyberduck and WinSCP, replayed: rclone's
//! listing, MKCOL status codes, cleanup after a failed upload and `rclone about`;
//! Cyberduck's login HEAD, `Expect: 100-continue` and resumed uploads; WinSCP's strict
//! date parsing.

use crate::clients_common::{is_imf_fixdate, raw_exchange, raw_header, RawBody, Ua};
use crate::harness::{get, mkcol, multistatus, put, response, Server};

const RCLONE: &str = "rclone/v1.60.1";
const CYBERDUCK: &str = "Cyberduck/8.7.0.40629 (Mac OS X/13.2) (arm64)";
const WINSCP: &str = "WinSCP/6.1 neon/0.32.2";

const RCLONE_LIST: &str = r#"<?xml version="1.0"?>
<d:propfind  xmlns:d="DAV:">
 <d:prop>
  <d:displayname />
  <d:getlastmodified />
  <d:getcontentlength />
  <d:resourcetype />
 </d:prop>
</d:propfind>
"#;

const RCLONE_QUOTA: &str = r#"<?xml version="1.0"?>
<d:propfind  xmlns:d="DAV:">
 <d:prop>
  <d:quota-available-bytes />
  <d:quota-used-bytes />
 </d:prop>
</d:propfind>
"#;

#[tokio::test]
async fn rclone_propfind_depth_1_lists_names_times_sizes_and_types() {
    let s = Server::start();
    assert_eq!(mkcol(&s, "/remote").await, 201);
    assert_eq!(mkcol(&s, "/remote/sub%20dir").await, 201);
    assert_eq!(put(&s, "/remote/file%20one.bin", vec![1u8; 123]).await, 201);
    let ua = Ua::new(&s, RCLONE);
    let a = ua.propfind("/remote/", "1", RCLONE_LIST).await;
    assert_eq!(a.status, 207, "{}", a.body);
    let rs = multistatus(&a.body);
    assert_eq!(rs.len(), 3);
    assert_eq!(rs[0].href, "/remote/");
    for r in &rs {
        // Older rclone reads only the first propstat.
        assert_eq!(r.propstats[0].status, 200, "{}", r.href);
        assert!(is_imf_fixdate(&r.ok_text("DAV:", "getlastmodified")));
    }
    let file = response(&rs, "/remote/file%20one.bin");
    assert_eq!(file.ok_text("DAV:", "displayname"), "file one.bin");
    assert_eq!(file.ok_text("DAV:", "getcontentlength"), "123");
    assert!(file.prop("DAV:", "resourcetype").is_some_and(|(st, p)| st == 200 && p.descendants.is_empty()));
    let dir = response(&rs, "/remote/sub%20dir/");
    assert_eq!(dir.ok_text("DAV:", "displayname"), "sub dir");
    assert!(dir.prop("DAV:", "resourcetype").is_some_and(|(_, p)| p.descendants == ["{DAV:}collection"]));
}

#[tokio::test]
async fn rclone_mkcol_is_405_when_it_exists_and_409_when_the_parent_is_missing() {
    let s = Server::start();
    let ua = Ua::new(&s, RCLONE);
    assert_eq!(ua.send(ua.req("MKCOL", "/p/c/")).await.status, 409);
    // rclone then creates the parent and retries.
    assert_eq!(ua.send(ua.req("MKCOL", "/p/")).await.status, 201);
    assert_eq!(ua.send(ua.req("MKCOL", "/p/c/")).await.status, 201);
    assert_eq!(ua.send(ua.req("MKCOL", "/p/c/")).await.status, 405);
}

#[tokio::test]
async fn rclone_failed_put_followed_by_delete_leaves_nothing() {
    let s = Server::start_with(&["--max-upload-bytes", "8"]);
    let ua = Ua::new(&s, RCLONE);
    let a = ua.send(ua.req("PUT", "/big.bin").body(vec![0u8; 64])).await;
    assert_eq!(a.status, 413);
    assert_eq!(ua.send(ua.req("DELETE", "/big.bin")).await.status, 404);
    assert_eq!(get(&s, "/big.bin").await.0, 404);
    // Over an existing file: the failed upload keeps the old bytes, the DELETE removes them.
    assert_eq!(put(&s, "/old.bin", "old").await, 201);
    assert_eq!(ua.send(ua.req("PUT", "/old.bin").body(vec![0u8; 64])).await.status, 413);
    assert_eq!(get(&s, "/old.bin").await, (200, b"old".to_vec()));
    assert_eq!(ua.send(ua.req("DELETE", "/old.bin")).await.status, 204);
    assert_eq!(get(&s, "/old.bin").await.0, 404);
}

#[tokio::test]
async fn rclone_about_reads_quota_from_propfind_depth_0_on_root() {
    let s = Server::start_with(&["--quota-bytes", "1000000"]);
    assert_eq!(put(&s, "/a.bin", vec![1u8; 1000]).await, 201);
    let ua = Ua::new(&s, RCLONE);
    let a = ua.propfind("/", "0", RCLONE_QUOTA).await;
    assert_eq!(a.status, 207, "{}", a.body);
    let rs = multistatus(&a.body);
    assert_eq!(rs.len(), 1);
    assert_eq!(rs[0].propstats.len(), 1, "both quota properties are known: {:?}", rs[0].propstats);
    let used: u64 = rs[0].ok_text("DAV:", "quota-used-bytes").parse().expect("number");
    let avail: u64 = rs[0].ok_text("DAV:", "quota-available-bytes").parse().expect("number");
    assert_eq!(used, 1000);
    assert_eq!(avail, 1_000_000 - 1000);
}

#[tokio::test]
async fn cyberduck_head_on_home_at_login_is_200() {
    let s = Server::start();
    let ua = Ua::new(&s, CYBERDUCK);
    let a = ua.send(ua.req("HEAD", "/")).await;
    assert_eq!(a.status, 200);
    assert!(a.body.is_empty());
}

#[tokio::test]
async fn cyberduck_put_with_expect_100_continue_stores_and_answers_etag() {
    let s = Server::start();
    let headers = [("User-Agent", CYBERDUCK), ("Content-Type", "application/octet-stream")];
    let (status, resp) = raw_exchange(&s, "PUT", "/upload.bin", &headers, RawBody::ExpectContinue(b"0123456789"));
    assert_eq!(status, 201, "{resp}");
    assert!(!raw_header(&resp, "etag").is_empty(), "{resp}");
    let (status, resp) = raw_exchange(&s, "PUT", "/upload.bin", &headers, RawBody::ExpectContinue(b"replaced"));
    assert_eq!(status, 204, "{resp}");
    assert_eq!(get(&s, "/upload.bin").await, (200, b"replaced".to_vec()));
}

#[tokio::test]
async fn cyberduck_resume_with_content_range_is_refused_and_content_unchanged() {
    let s = Server::start();
    assert_eq!(put(&s, "/part.bin", "0123456789").await, 201);
    let ua = Ua::new(&s, CYBERDUCK);
    let a = ua.send(ua.req("PUT", "/part.bin").header("Content-Range", "bytes 0-3/10").body("abcd")).await;
    assert!(a.status == 400 || a.status == 501, "Content-Range must not be ignored: {}", a.status);
    assert_eq!(get(&s, "/part.bin").await, (200, b"0123456789".to_vec()));
    let a = ua.send(ua.req("PUT", "/fresh.bin").header("Content-Range", "bytes 0-3/10").body("abcd")).await;
    assert!(a.status == 400 || a.status == 501, "{}", a.status);
    assert_eq!(get(&s, "/fresh.bin").await.0, 404);
}

#[tokio::test]
async fn winscp_getlastmodified_is_strict_imf_fixdate_everywhere() {
    let s = Server::start();
    assert_eq!(mkcol(&s, "/w").await, 201);
    assert_eq!(put(&s, "/w/f.txt", "x").await, 201);
    let ua = Ua::new(&s, WINSCP);
    let allprop = r#"<?xml version="1.0" encoding="utf-8"?><propfind xmlns="DAV:"><allprop/></propfind>"#;
    for (path, depth) in [("/", "1"), ("/w/", "1"), ("/w/f.txt", "0")] {
        let a = ua.propfind(path, depth, allprop).await;
        assert_eq!(a.status, 207);
        for r in multistatus(&a.body) {
            let lm = r.ok_text("DAV:", "getlastmodified");
            assert!(is_imf_fixdate(&lm), "{}: {lm:?}", r.href);
        }
    }
    for m in ["HEAD", "GET"] {
        let lm = ua.send(ua.req(m, "/w/f.txt")).await.header("last-modified");
        assert!(is_imf_fixdate(&lm), "{m} Last-Modified {lm:?}");
    }
}

#[tokio::test]
async fn winscp_proppatch_of_getlastmodified_after_upload_answers_207() {
    // WinSCP ignores the per-property outcome (which client_times.rs covers), not the 207.
    let s = Server::start();
    let ua = Ua::new(&s, WINSCP);
    assert_eq!(ua.send(ua.req("PUT", "/up.txt").body("data")).await.status, 201);
    let body = r#"<?xml version="1.0" encoding="utf-8"?><propertyupdate xmlns="DAV:"><set><prop><getlastmodified>Mon, 15 Jan 2024 10:00:00 GMT</getlastmodified></prop></set></propertyupdate>"#;
    let a = ua.send(ua.req("PROPPATCH", "/up.txt").header("Content-Type", "application/xml").body(body)).await;
    assert_eq!(a.status, 207, "{}", a.body);
    assert_eq!(multistatus(&a.body)[0].href, "/up.txt");
    assert_eq!(get(&s, "/up.txt").await, (200, b"data".to_vec()));
}
