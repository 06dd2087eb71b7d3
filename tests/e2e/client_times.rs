//! Times and upload headers of real clients, replayed request by request with each
//! client's User-Agent: Windows Explorer's `Win32*Time` PROPPATCH under a lock, WinSCP's
//! `getlastmodified`, Cyberduck's `lastmodified`, GVfs' `X-OC-Mtime` and Finder's chunked
//! PUT guarded by `X-Expected-Entity-Length`.

use std::io::{Read, Write};

use crate::harness::{basic, header, multistatus, text, DavResponse, Server, ADMIN_PASSWORD};

const WINDOWS: &str = "Microsoft-WebDAV-MiniRedir/10.0.19045";
const WINSCP: &str = "WinSCP/6.3.5 neon/0.33.0";
const CYBERDUCK: &str = "Cyberduck/8.7.0.40629 (Mac OS X/14.0) (aarch64)";
const GVFS: &str = "gvfs/1.50.3";
const FINDER: &str = "WebDAVFS/3.0.0 (03008000) Darwin/22.1.0 (arm64)";

const MS: &str = "urn:schemas-microsoft-com:";
/// Reads results back with the full allprop (Explorer's own is compact: see `quirks.rs`).
const READER: &str = "wharf-e2e";
const CREATED: &str = "Thu, 26 Nov 2026 05:56:29 GMT";
const CREATED_3339: &str = "2026-11-26T05:56:29Z";
const MODIFIED: &str = "Fri, 27 Nov 2026 10:00:00 GMT";
const MODIFIED_AGAIN: &str = "Sat, 28 Nov 2026 11:30:15 GMT";
const ACCESSED: &str = "Sun, 29 Nov 2026 12:00:00 GMT";

/// Explorer's PROPPATCH after it created or wrote a file.
fn win32_times(created: &str, accessed: &str, modified: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\" ?><D:propertyupdate xmlns:D=\"DAV:\" \
         xmlns:Z=\"urn:schemas-microsoft-com:\"><D:set><D:prop>\
         <Z:Win32CreationTime>{created}</Z:Win32CreationTime>\
         <Z:Win32LastAccessTime>{accessed}</Z:Win32LastAccessTime>\
         <Z:Win32LastModifiedTime>{modified}</Z:Win32LastModifiedTime>\
         <Z:Win32FileAttributes>00000020</Z:Win32FileAttributes>\
         </D:prop></D:set></D:propertyupdate>"
    )
}

/// `method path` as `agent`, with `headers` and `body`; returns the response.
async fn send(
    s: &Server,
    agent: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> reqwest::Response {
    let mut r = s.req(method, path).header("User-Agent", agent).body(body.to_owned());
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    r.send().await.unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

/// A 207 answer parsed, after checking the status.
async fn multi(resp: reqwest::Response) -> Vec<DavResponse> {
    let status = resp.status().as_u16();
    let xml = text(resp).await;
    assert_eq!(status, 207, "{xml}");
    multistatus(&xml)
}

/// Asserts that every property of a PROPPATCH answer got `status`, and returns their names.
fn all_with(rs: &[DavResponse], status: u16) -> Vec<String> {
    assert_eq!(rs.len(), 1, "{rs:?}");
    assert!(rs[0].propstats.iter().all(|ps| ps.status == status), "{rs:?}");
    rs[0].propstats.iter().flat_map(|ps| ps.props.iter().map(|p| p.local.clone())).collect()
}

/// PROPFIND Depth 0 allprop (Explorer's empty body) as `agent`.
async fn allprop(s: &Server, agent: &str, path: &str) -> DavResponse {
    let resp = send(s, agent, "PROPFIND", path, &[("Depth", "0")], "").await;
    multi(resp).await.remove(0)
}

#[tokio::test]
async fn windows_explorer_creates_a_file_and_sets_its_times() {
    let s = Server::start();
    let f = &[("translate", "f")];
    assert_eq!(send(&s, WINDOWS, "PROPFIND", "/report.docx", &[("Depth", "0")], "").await.status(), 404);
    let created = send(&s, WINDOWS, "PUT", "/report.docx", f, "").await;
    assert_eq!(created.status(), 201);
    let lockinfo = "<?xml version=\"1.0\" encoding=\"utf-8\" ?><D:lockinfo xmlns:D=\"DAV:\">\
        <D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype>\
        <D:owner><D:href>DESKTOP-1\\alice</D:href></D:owner></D:lockinfo>";
    let locked = send(&s, WINDOWS, "LOCK", "/report.docx", &[("Timeout", "Second-3600")], lockinfo).await;
    assert_eq!(locked.status(), 200);
    let token = header(&locked, "lock-token");
    let if_token = format!("({token})");
    let with_lock = &[("If", if_token.as_str())];

    let body = win32_times(CREATED, ACCESSED, MODIFIED);
    let unlocked = send(&s, WINDOWS, "PROPPATCH", "/report.docx", &[], &body).await;
    assert_eq!(unlocked.status(), 423, "the lock must be submitted");
    let rs = multi(send(&s, WINDOWS, "PROPPATCH", "/report.docx", with_lock, &body).await).await;
    assert_eq!(all_with(&rs, 200).len(), 4);

    let head = send(&s, WINDOWS, "HEAD", "/report.docx", f, "").await;
    assert_eq!(head.status(), 200);
    assert_eq!(header(&head, "last-modified"), MODIFIED);
    assert_eq!(header(&head, "etag"), header(&created, "etag"), "setting times keeps a file's ETag");

    let written = send(&s, WINDOWS, "PUT", "/report.docx", with_lock, "quarterly figures").await;
    assert_eq!(written.status(), 204);
    let body = win32_times(CREATED, ACCESSED, MODIFIED_AGAIN);
    let rs = multi(send(&s, WINDOWS, "PROPPATCH", "/report.docx", with_lock, &body).await).await;
    all_with(&rs, 200);
    assert_eq!(send(&s, WINDOWS, "UNLOCK", "/report.docx", &[("Lock-Token", &token)], "").await.status(), 204);

    let r = allprop(&s, READER, "/report.docx").await;
    assert_eq!(r.ok_text("DAV:", "getlastmodified"), MODIFIED_AGAIN);
    assert_eq!(r.ok_text("DAV:", "creationdate"), CREATED_3339);
    assert_eq!(r.ok_text("DAV:", "getetag"), header(&written, "etag"));
    assert_eq!(r.ok_text(MS, "Win32CreationTime"), CREATED);
    assert_eq!(r.ok_text(MS, "Win32LastAccessTime"), ACCESSED);
    assert_eq!(r.ok_text(MS, "Win32LastModifiedTime"), MODIFIED_AGAIN);
    assert_eq!(r.ok_text(MS, "Win32FileAttributes"), "00000020");
    let get = send(&s, WINDOWS, "GET", "/report.docx", f, "").await;
    assert_eq!(header(&get, "last-modified"), MODIFIED_AGAIN);
    assert_eq!(text(get).await, "quarterly figures");
}

#[tokio::test]
async fn windows_explorer_sets_the_times_of_a_folder() {
    let s = Server::start();
    assert_eq!(send(&s, WINDOWS, "MKCOL", "/Photos", &[], "").await.status(), 201);
    let before = allprop(&s, READER, "/Photos/").await.ok_text("DAV:", "getetag");
    let body = win32_times(CREATED, ACCESSED, MODIFIED);
    all_with(&multi(send(&s, WINDOWS, "PROPPATCH", "/Photos/", &[], &body).await).await, 200);
    let r = allprop(&s, READER, "/Photos/").await;
    assert_eq!(r.ok_text("DAV:", "getlastmodified"), MODIFIED);
    assert_eq!(r.ok_text("DAV:", "creationdate"), CREATED_3339);
    assert_ne!(r.ok_text("DAV:", "getetag"), before, "a collection's properties changed");
}

#[tokio::test]
async fn an_unparsable_windows_time_fails_the_whole_proppatch() {
    let s = Server::start();
    let put = send(&s, WINDOWS, "PUT", "/a.txt", &[], "a").await;
    assert_eq!(put.status(), 201);
    let before = allprop(&s, READER, "/a.txt").await;
    let body = win32_times(CREATED, ACCESSED, "the day before yesterday");
    let rs = multi(send(&s, WINDOWS, "PROPPATCH", "/a.txt", &[], &body).await).await;
    let conflict = rs[0].propstat(409).expect("409 propstat");
    let names: Vec<&str> = conflict.props.iter().map(|p| p.local.as_str()).collect();
    assert_eq!(names, ["Win32LastModifiedTime"]);
    let dependent = rs[0].propstat(424).expect("424 propstat");
    assert_eq!(dependent.props.len(), 3, "{rs:?}");
    assert!(rs[0].propstat(200).is_none(), "{rs:?}");

    let after = allprop(&s, READER, "/a.txt").await;
    for live in ["getlastmodified", "creationdate", "getetag"] {
        assert_eq!(after.ok_text("DAV:", live), before.ok_text("DAV:", live), "{live}");
    }
    assert!(after.prop(MS, "Win32CreationTime").is_none(), "{after:?}");
}

#[tokio::test]
async fn winscp_sets_getlastmodified_after_an_upload() {
    let s = Server::start();
    let put = send(&s, WINSCP, "PUT", "/notes.txt", &[], "notes").await;
    assert_eq!(put.status(), 201);
    let body = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<propertyupdate xmlns=\"DAV:\"><set><prop>\
        <getlastmodified>Sun, 06 Nov 1994 08:49:37 GMT</getlastmodified></prop></set></propertyupdate>";
    let rs = multi(send(&s, WINSCP, "PROPPATCH", "/notes.txt", &[], body).await).await;
    assert_eq!(all_with(&rs, 200), ["getlastmodified"]);
    let r = allprop(&s, WINSCP, "/notes.txt").await;
    assert_eq!(r.ok_text("DAV:", "getlastmodified"), "Sun, 06 Nov 1994 08:49:37 GMT");
    assert_eq!(r.ok_text("DAV:", "getetag"), header(&put, "etag"));
    let shown = r.propstats.iter().flat_map(|ps| &ps.props).filter(|p| p.local == "getlastmodified").count();
    assert_eq!(shown, 1, "the live value only, no dead copy: {r:?}");
    let head = send(&s, WINSCP, "HEAD", "/notes.txt", &[], "").await;
    assert_eq!(header(&head, "last-modified"), "Sun, 06 Nov 1994 08:49:37 GMT");

    let remove = "<D:propertyupdate xmlns:D=\"DAV:\"><D:remove><D:prop><D:getlastmodified/></D:prop>\
        </D:remove></D:propertyupdate>";
    let rs = multi(send(&s, WINSCP, "PROPPATCH", "/notes.txt", &[], remove).await).await;
    all_with(&rs, 403);
}

#[tokio::test]
async fn creationdate_is_set_from_rfc3339_only() {
    let s = Server::start();
    assert_eq!(send(&s, WINSCP, "PUT", "/c.txt", &[], "c").await.status(), 201);
    let set = |v: &str| {
        format!(
            "<D:propertyupdate xmlns:D=\"DAV:\"><D:set><D:prop><D:creationdate>{v}</D:creationdate>\
             </D:prop></D:set></D:propertyupdate>"
        )
    };
    let rs = multi(send(&s, WINSCP, "PROPPATCH", "/c.txt", &[], &set("2001-02-03T05:05:06+01:00")).await).await;
    all_with(&rs, 200);
    assert_eq!(allprop(&s, WINSCP, "/c.txt").await.ok_text("DAV:", "creationdate"), "2001-02-03T04:05:06Z");
    let rs = multi(send(&s, WINSCP, "PROPPATCH", "/c.txt", &[], &set(MODIFIED)).await).await;
    all_with(&rs, 409);
    assert_eq!(allprop(&s, WINSCP, "/c.txt").await.ok_text("DAV:", "creationdate"), "2001-02-03T04:05:06Z");
}

#[tokio::test]
async fn cyberduck_sets_its_lastmodified_property() {
    let s = Server::start();
    assert_eq!(send(&s, CYBERDUCK, "PUT", "/photo.jpg", &[("Expect", "100-continue")], "jpeg").await.status(), 201);
    let server_time = allprop(&s, CYBERDUCK, "/photo.jpg").await.ok_text("DAV:", "getlastmodified");
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?><D:propertyupdate xmlns:D=\"DAV:\" \
         xmlns:s=\"SAR:\"><D:set><D:prop><s:lastmodified>{MODIFIED}</s:lastmodified>\
         <s:lastmodified_server>{server_time}</s:lastmodified_server></D:prop></D:set></D:propertyupdate>"
    );
    let rs = multi(send(&s, CYBERDUCK, "PROPPATCH", "/photo.jpg", &[], &body).await).await;
    assert_eq!(all_with(&rs, 200).len(), 2);
    let r = allprop(&s, CYBERDUCK, "/photo.jpg").await;
    assert_eq!(r.ok_text("DAV:", "getlastmodified"), MODIFIED);
    assert_eq!(r.ok_text("SAR:", "lastmodified"), MODIFIED);
    assert_eq!(r.ok_text("SAR:", "lastmodified_server"), server_time);
}

#[tokio::test]
async fn gvfs_put_carries_its_modification_time() {
    let s = Server::start();
    let put = send(&s, GVFS, "PUT", "/song.ogg", &[("X-OC-Mtime", "1700000000")], "ogg").await;
    assert_eq!(put.status(), 201);
    assert_eq!(header(&put, "x-oc-mtime"), "accepted");
    let head = send(&s, GVFS, "HEAD", "/song.ogg", &[], "").await;
    assert_eq!(header(&head, "last-modified"), "Tue, 14 Nov 2023 22:13:20 GMT");

    let replaced = send(&s, GVFS, "PUT", "/song.ogg", &[("X-OC-Mtime", "1600000000")], "ogg 2").await;
    assert_eq!(replaced.status(), 204);
    assert_eq!(header(&replaced, "x-oc-mtime"), "accepted");
    let r = allprop(&s, GVFS, "/song.ogg").await;
    assert_eq!(r.ok_text("DAV:", "getlastmodified"), "Sun, 13 Sep 2020 12:26:40 GMT");

    let ignored = send(&s, GVFS, "PUT", "/song.ogg", &[("X-OC-Mtime", "yesterday")], "ogg 3").await;
    assert_eq!(ignored.status(), 204);
    assert_eq!(header(&ignored, "x-oc-mtime"), "");
    let head = send(&s, GVFS, "HEAD", "/song.ogg", &[], "").await;
    assert_ne!(header(&head, "last-modified"), "Sun, 13 Sep 2020 12:26:40 GMT", "an invalid X-OC-Mtime is ignored");
}

/// Sends a raw HTTP/1.1 request (head lines without the request line, Host and
/// Authorization) and a body written as given; returns the status and the whole answer.
fn raw_request(s: &Server, request_line: &str, headers: &[&str], body: &[u8]) -> (u16, String) {
    let authority = s.authority();
    let mut conn = std::net::TcpStream::connect(authority).expect("connect");
    conn.set_read_timeout(Some(std::time::Duration::from_secs(10))).expect("timeout");
    let mut head =
        format!("{request_line}\r\nHost: {authority}\r\nAuthorization: {}\r\n", basic("admin", ADMIN_PASSWORD));
    for h in headers {
        head.push_str(h);
        head.push_str("\r\n");
    }
    head.push_str("Connection: close\r\n\r\n");
    conn.write_all(head.as_bytes()).expect("write head");
    conn.write_all(body).expect("write body");
    let mut out = Vec::new();
    conn.read_to_end(&mut out).expect("read response");
    let out = String::from_utf8_lossy(&out).into_owned();
    let status = out.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or_else(|| panic!("no status in {out:?}"));
    (status, out)
}

/// `data` in HTTP/1.1 chunked transfer coding, in chunks of four bytes.
fn chunked(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for c in data.chunks(4) {
        out.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
        out.extend_from_slice(c);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

#[tokio::test]
async fn finder_chunked_put_is_checked_against_the_expected_length() {
    let s = Server::start();
    assert_eq!(send(&s, FINDER, "PUT", "/Report.pages", &[], "").await.status(), 201);
    let lockinfo = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<D:lockinfo xmlns:D=\"DAV:\">\n\
        <D:lockscope><D:exclusive/></D:lockscope>\n<D:locktype><D:write/></D:locktype>\n\
        <D:owner>\n<D:href>http://www.apple.com/webdav_fs/</D:href>\n</D:owner>\n</D:lockinfo>\n";
    let lock_headers = [("Depth", "0"), ("Timeout", "Second-600")];
    let locked = send(&s, FINDER, "LOCK", "/Report.pages", &lock_headers, lockinfo).await;
    assert_eq!(locked.status(), 200);
    let token = header(&locked, "lock-token");
    let if_token = format!("If: ({token})");
    let agent = format!("User-Agent: {FINDER}");

    let data = b"eleven byte";
    let put = |announced: usize| {
        let expected = format!("X-Expected-Entity-Length: {announced}");
        let headers = [agent.as_str(), if_token.as_str(), "Transfer-Encoding: chunked", expected.as_str()];
        raw_request(&s, "PUT /Report.pages HTTP/1.1", &headers, &chunked(data)).0
    };
    assert_eq!(put(data.len()), 204);
    assert_eq!(put(4096), 400, "a cut upload must not replace the file");
    let get = send(&s, FINDER, "GET", "/Report.pages", &[], "").await;
    assert_eq!(text(get).await, "eleven byte");
    assert_eq!(send(&s, FINDER, "UNLOCK", "/Report.pages", &[("Lock-Token", &token)], "").await.status(), 204);
}

#[tokio::test]
async fn put_without_length_or_body_makes_an_empty_file() {
    let s = Server::start();
    let agent = format!("User-Agent: {FINDER}");
    let (status, answer) = raw_request(&s, "PUT /empty.txt HTTP/1.1", &[agent.as_str()], b"");
    assert_eq!(status, 201, "{answer}");
    let r = allprop(&s, FINDER, "/empty.txt").await;
    assert_eq!(r.ok_text("DAV:", "getcontentlength"), "0");
}
