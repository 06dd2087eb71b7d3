//! Windows Explorer's WebClient (Microsoft-WebDAV-MiniRedir), replayed: its allprop
//! PROPFIND with an empty body, its file creation sequence, MOVE with an absolute
//! Destination and `Overwrite: F`, and the size of a large folder listing.

use std::time::Instant;

use futures_util::StreamExt;

use crate::clients_common::{dav_texts, Answer, Ua};
use crate::harness::{get, mkcol, multistatus, put, response, Server};

const UA: &str = "Microsoft-WebDAV-MiniRedir/10.0.19045";

/// The owner element WebClient puts in its LOCK bodies.
const OWNER: &str = "<D:href>DESKTOP-7Q2K\\admin</D:href>";

/// PROPFIND as WebClient sends it: `translate: f`, no body (allprop).
async fn win_propfind(ua: &Ua<'_>, path: &str, depth: &str) -> Answer {
    let rb = ua
        .req("PROPFIND", path)
        .header("Depth", depth)
        .header("translate", "f")
        .header("Connection", "Keep-Alive")
        .header("Content-Length", "0");
    ua.send(rb).await
}

async fn win_move(ua: &Ua<'_>, from: &str, to: &str) -> Answer {
    let rb = ua.req("MOVE", from).header("Destination", ua.s.url(to)).header("Overwrite", "F").header("translate", "f");
    ua.send(rb).await
}

#[tokio::test]
async fn propfind_depth_0_with_empty_body_is_allprop() {
    let s = Server::start();
    assert_eq!(mkcol(&s, "/docs").await, 201);
    assert_eq!(put(&s, "/docs/report.docx", "PK\x03\x04 not really").await, 201);
    let ua = Ua::new(&s, UA);
    for (path, collection) in [("/docs", true), ("/docs/report.docx", false), ("/", true)] {
        let a = win_propfind(&ua, path, "0").await;
        assert_eq!(a.status, 207, "{path}: {}", a.body);
        let rs = multistatus(&a.body);
        assert_eq!(rs.len(), 1, "{path}");
        let r = &rs[0];
        assert_eq!(r.propstats.len(), 1, "allprop has nothing missing: {:?}", r.propstats);
        for p in ["creationdate", "getlastmodified", "resourcetype", "getetag", "supportedlock", "lockdiscovery"] {
            assert!(r.prop("DAV:", p).is_some(), "{path}: Depth 0 is a full allprop, {p} included");
        }
        let is_coll = r.prop("DAV:", "resourcetype").is_some_and(|(_, p)| p.descendants == ["{DAV:}collection"]);
        assert_eq!(is_coll, collection, "{path}");
        if !collection {
            assert_eq!(r.ok_text("DAV:", "getcontentlength"), "15");
        }
    }
}

#[tokio::test]
async fn propfind_of_a_new_name_is_404_before_creation() {
    let s = Server::start();
    let ua = Ua::new(&s, UA);
    assert_eq!(win_propfind(&ua, "/New Text Document.txt", "0").await.status, 404);
    assert_eq!(win_propfind(&ua, "/New%20Text%20Document.txt", "0").await.status, 404);
}

#[tokio::test]
async fn file_creation_sequence_put_lock_proppatch_put_unlock() {
    let s = Server::start();
    let ua = Ua::new(&s, UA);
    let path = "/New%20Text%20Document.txt";
    assert_eq!(win_propfind(&ua, path, "0").await.status, 404);
    let a = ua.send(ua.req("PUT", path).header("translate", "f").header("Content-Length", "0")).await;
    assert_eq!(a.status, 201);
    let lock = ua.lock(path, OWNER, &[("Timeout", "Second-3600"), ("translate", "f")]).await;
    assert_eq!(lock.status, 200, "{}", lock.body);
    let token = lock.lock_token();
    let submit = format!("(<{token}>)");
    let times = r#"<?xml version="1.0" encoding="utf-8" ?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:schemas-microsoft-com:"><D:set><D:prop><Z:Win32CreationTime>Mon, 15 Jan 2024 10:00:00 GMT</Z:Win32CreationTime><Z:Win32LastAccessTime>Mon, 15 Jan 2024 10:00:00 GMT</Z:Win32LastAccessTime><Z:Win32LastModifiedTime>Mon, 15 Jan 2024 10:00:00 GMT</Z:Win32LastModifiedTime><Z:Win32FileAttributes>00000020</Z:Win32FileAttributes></D:prop></D:set></D:propertyupdate>"#;
    let patch = |body: &'static str| {
        ua.req("PROPPATCH", path).header("If", submit.clone()).header("Content-Type", "text/xml").body(body)
    };
    let a = ua.send(patch(times)).await;
    assert_eq!(a.status, 207, "{}", a.body);
    // Which times stick is tested in client_times.rs; here: each property got a status.
    assert_eq!(multistatus(&a.body)[0].propstats.iter().map(|p| p.props.len()).sum::<usize>(), 4, "{}", a.body);
    let a = ua.send(ua.req("HEAD", path).header("translate", "f")).await;
    assert_eq!(a.status, 200);
    let a = ua.send(ua.req("PUT", path).header("If", submit.clone()).body("hello from explorer")).await;
    assert_eq!(a.status, 204, "{}", a.body);
    assert!(!a.header("etag").is_empty());
    assert_eq!(ua.send(patch(times)).await.status, 207);
    let a = ua.send(ua.req("UNLOCK", path).header("Lock-Token", format!("<{token}>")).header("translate", "f")).await;
    assert_eq!(a.status, 204);
    assert_eq!(get(&s, path).await, (200, b"hello from explorer".to_vec()));
}

#[tokio::test]
async fn folders_are_proppatched_too() {
    let s = Server::start();
    let ua = Ua::new(&s, UA);
    assert_eq!(ua.send(ua.req("MKCOL", "/New%20folder").header("translate", "f")).await.status, 201);
    let body = r#"<?xml version="1.0" encoding="utf-8" ?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:schemas-microsoft-com:"><D:set><D:prop><Z:Win32FileAttributes>00000010</Z:Win32FileAttributes></D:prop></D:set></D:propertyupdate>"#;
    let a = ua.send(ua.req("PROPPATCH", "/New%20folder").header("Content-Type", "text/xml").body(body)).await;
    assert_eq!(a.status, 207, "{}", a.body);
    assert_eq!(multistatus(&a.body)[0].href, "/New%20folder/");
}

#[tokio::test]
async fn move_with_absolute_destination_and_overwrite_f_creates_201() {
    let s = Server::start();
    assert_eq!(put(&s, "/a.txt", "a").await, 201);
    assert_eq!(mkcol(&s, "/dir").await, 201);
    let ua = Ua::new(&s, UA);
    assert_eq!(win_move(&ua, "/a.txt", "/dir/b%20renamed.txt").await.status, 201);
    assert_eq!(get(&s, "/a.txt").await.0, 404);
    assert_eq!(get(&s, "/dir/b%20renamed.txt").await, (200, b"a".to_vec()));
    assert_eq!(win_move(&ua, "/dir", "/dir2").await.status, 201);
    assert_eq!(get(&s, "/dir2/b%20renamed.txt").await.0, 200);
}

#[tokio::test]
async fn move_with_overwrite_f_onto_existing_target_is_412_and_changes_nothing() {
    let s = Server::start();
    assert_eq!(put(&s, "/a.txt", "a").await, 201);
    assert_eq!(put(&s, "/b.txt", "b").await, 201);
    let ua = Ua::new(&s, UA);
    assert_eq!(win_move(&ua, "/a.txt", "/b.txt").await.status, 412);
    assert_eq!(get(&s, "/a.txt").await, (200, b"a".to_vec()));
    assert_eq!(get(&s, "/b.txt").await, (200, b"b".to_vec()));
}

#[tokio::test]
async fn lock_without_depth_with_host_backslash_user_owner_is_echoed() {
    let s = Server::start();
    assert_eq!(put(&s, "/f.txt", "x").await, 201);
    let ua = Ua::new(&s, UA);
    let a = ua.lock("/f.txt", OWNER, &[("Timeout", "Second-3600")]).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(dav_texts(&a.body, &["owner", "href"]), ["DESKTOP-7Q2K\\admin"]);
}

/// Explorer only reads kind, size, times and attributes from a listing, and refuses folder
/// answers over 1,000,000 bytes: its allprop leaves out the rest, including the Win32 times
/// it set itself (they are in `creationdate`/`getlastmodified`). Others get the full allprop.
#[tokio::test]
async fn allprop_listing_for_explorer_keeps_to_what_it_reads() {
    let s = Server::start();
    assert_eq!(put(&s, "/a.txt", "x").await, 201);
    let ua = Ua::new(&s, UA);
    let times = "<?xml version=\"1.0\"?><D:propertyupdate xmlns:D=\"DAV:\" xmlns:Z=\"urn:schemas-microsoft-com:\">\
                 <D:set><D:prop><Z:Win32LastModifiedTime>Fri, 27 Nov 2026 10:20:30 GMT</Z:Win32LastModifiedTime>\
                 <Z:Win32FileAttributes>00000022</Z:Win32FileAttributes><x:tag xmlns:x=\"urn:x\">t</x:tag>\
                 </D:prop></D:set></D:propertyupdate>";
    assert_eq!(crate::harness::proppatch(&s, "/a.txt", times).await.0, 207);
    let a = win_propfind(&ua, "/", "1").await;
    let r = response(&multistatus(&a.body), "/a.txt").clone();
    let mut names: Vec<String> = r.propstats[0].props.iter().map(|p| format!("{{{}}}{}", p.ns, p.local)).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "{DAV:}creationdate",
            "{DAV:}getcontentlength",
            "{DAV:}getlastmodified",
            "{DAV:}resourcetype",
            "{urn:schemas-microsoft-com:}Win32FileAttributes",
            "{urn:x}tag",
        ]
    );
    assert_eq!(r.ok_text("DAV:", "getlastmodified"), "Fri, 27 Nov 2026 10:20:30 GMT");
    let (_, full) = crate::harness::propfind(&s, "/a.txt", "0", "").await;
    let full = &multistatus(&full)[0];
    for p in ["getetag", "displayname", "getcontenttype", "lockdiscovery"] {
        full.ok_text("DAV:", p);
    }
    full.ok_text("urn:schemas-microsoft-com:", "Win32LastModifiedTime");
}

/// SabreDAV's notes: Office breaks on `lockroot`, which RFC 4918 puts in every activelock.
/// Office's user agents get activelocks without it; every other client keeps it.
#[tokio::test]
async fn lock_answer_omits_lockroot_for_office() {
    let s = Server::start();
    assert_eq!(put(&s, "/f.docx", "x").await, 201);
    let ua = Ua::new(&s, "Microsoft Office Word 2014");
    let a = ua.lock("/f.docx", OWNER, &[("Timeout", "Second-3600")]).await;
    assert_eq!(a.status, 200);
    assert!(dav_texts(&a.body, &["activelock", "lockroot", "href"]).is_empty(), "{}", a.body);
}

/// Members of the big folder, named like Explorer names copied files.
const MEMBERS: usize = 10_000;

#[tokio::test]
async fn allprop_listing_of_10000_members_reports_its_size() {
    let s = Server::start();
    assert_eq!(mkcol(&s, "/big").await, 201);
    let started = Instant::now();
    let statuses: Vec<u16> = futures_util::stream::iter(0..MEMBERS)
        .map(|i| {
            let rb = s.req("PUT", &format!("/big/IMG_{i:05}.JPG")).body(format!("{i}"));
            async move { rb.send().await.expect("PUT").status().as_u16() }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    assert!(statuses.iter().all(|&st| st == 201), "some PUT failed");
    eprintln!("created {MEMBERS} members in {:?}", started.elapsed());
    let ua = Ua::new(&s, UA);
    let listing = |encoding: &'static str| {
        let rb = ua.req("PROPFIND", "/big").header("Depth", "1").header("translate", "f").header("Content-Length", "0");
        let rb = if encoding.is_empty() { rb } else { rb.header("Accept-Encoding", encoding) };
        async move {
            let r = rb.send().await.expect("PROPFIND");
            assert_eq!(r.status(), 207);
            let enc = crate::harness::header(&r, "content-encoding");
            (enc, r.bytes().await.expect("body"))
        }
    };
    let listed = Instant::now();
    let (plain_enc, plain) = listing("").await;
    let elapsed = listed.elapsed();
    let (gzip_enc, gzipped) = listing("gzip, deflate").await;
    eprintln!(
        "Depth 1 allprop of {MEMBERS} members: {} bytes ({} per member) in {elapsed:?}; {} bytes with gzip; \
         Windows' FileAttributesLimitInBytes is 1,000,000",
        plain.len(),
        plain.len() / (MEMBERS + 1),
        gzipped.len()
    );
    assert!(plain_enc.is_empty(), "compressed without being asked: {plain_enc}");
    assert_eq!(gzip_enc, "gzip");
    assert!(gzipped.len() < 1_000_000, "{} bytes even compressed", gzipped.len());
    // Uncompressed, no multistatus of 10,000 members fits in 1,000,000 bytes (href and status
    // alone take ~100 bytes each); the compact allprop keeps a 3,000-member folder under it.
    assert!(plain.len() * 3_000 / MEMBERS < 1_000_000, "{} bytes per member", plain.len() / MEMBERS);
    let bytes = plain;
    let rs = multistatus(std::str::from_utf8(&bytes).expect("UTF-8"));
    assert_eq!(rs.len(), MEMBERS + 1);
    assert_eq!(rs[0].href, "/big/");
    response(&rs, "/big/IMG_09999.JPG").ok_text("DAV:", "getlastmodified");
}
