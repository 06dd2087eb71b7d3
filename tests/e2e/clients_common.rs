//! What every WebDAV client relies on (shared/clients.md, "Every client"), replayed as the
//! clients send it; plus the client vocabulary the other `clients_*` files share: a client
//! that sends a real User-Agent and never follows redirects, raw HTTP/1.1 exchanges (for
//! chunked bodies, `Expect: 100-continue` and bodiless PUTs), lock bodies and date checks.

use std::io::{BufRead, BufReader, Read, Write};
use std::time::Duration;

use reqwest::{Client, Method, RequestBuilder};

use crate::harness::{basic, client_builder, get, header, mkcol, multistatus, put, response, Server, ADMIN_PASSWORD};

/// A client as one real program: its User-Agent on every request, admin credentials,
/// and no redirect following (a redirect answered to a DAV method is a failure).
pub struct Ua<'a> {
    pub s: &'a Server,
    client: Client,
}

impl<'a> Ua<'a> {
    pub fn new(s: &'a Server, ua: &'static str) -> Ua<'a> {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(reqwest::header::AUTHORIZATION, basic("admin", ADMIN_PASSWORD).parse().expect("auth"));
        headers.insert(reqwest::header::USER_AGENT, ua.parse().expect("user agent"));
        let client = client_builder()
            .default_headers(headers)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        Ua { s, client }
    }

    pub fn req(&self, method: &str, path: &str) -> RequestBuilder {
        self.client.request(Method::from_bytes(method.as_bytes()).expect("method"), self.s.url(path))
    }

    /// Sends and returns status, headers and body text.
    pub async fn send(&self, rb: RequestBuilder) -> Answer {
        let r = rb.send().await.expect("request");
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        Answer { status, headers, body: r.text().await.expect("body") }
    }

    /// PROPFIND with `depth` and `body`, as the client sends it (XML content type).
    pub async fn propfind(&self, path: &str, depth: &str, body: &str) -> Answer {
        let rb = self.req("PROPFIND", path).header("Depth", depth);
        let rb = rb.header("Content-Type", "application/xml; charset=utf-8").body(body.to_owned());
        self.send(rb).await
    }

    /// LOCK with a lockinfo body; `headers` carry Depth, Timeout, If-None-Match...
    pub async fn lock(&self, path: &str, owner: &str, headers: &[(&str, &str)]) -> Answer {
        let mut rb = self.req("LOCK", path).header("Content-Type", "application/xml; charset=utf-8");
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        self.send(rb.body(lockinfo(owner))).await
    }
}

/// A whole answer.
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> String {
        self.headers.get(name).map(|v| v.to_str().expect("ASCII header").to_owned()).unwrap_or_default()
    }

    /// The token of the Lock-Token header, without the angle brackets.
    pub fn lock_token(&self) -> String {
        let v = self.header("lock-token");
        assert!(v.starts_with('<') && v.ends_with('>'), "Lock-Token {v:?} ({}): {}", self.status, self.body);
        v[1..v.len() - 1].to_owned()
    }
}

/// An exclusive write lockinfo with `owner` as the owner element's content.
pub fn lockinfo(owner: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\" ?>\n<D:lockinfo xmlns:D=\"DAV:\">\
         <D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype>\
         <D:owner>{owner}</D:owner></D:lockinfo>"
    )
}

/// Texts of the DAV: elements reached by the local-name `path` (a suffix of the element
/// chain), e.g. `["locktoken", "href"]`.
pub fn dav_texts(xml: &str, path: &[&str]) -> Vec<String> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::NsReader::from_str(xml);
    reader.config_mut().expand_empty_elements = true;
    // Open elements: DAV: ones by local name, others prefixed with `?` so they never match.
    let mut stack: Vec<String> = Vec::new();
    let at_path = |stack: &[String]| stack.len() >= path.len() && stack[stack.len() - path.len()..] == *path;
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    loop {
        let (ns, ev) = reader.read_resolved_event().unwrap_or_else(|e| panic!("{e}: {xml}"));
        let is_dav = matches!(ns, quick_xml::name::ResolveResult::Bound(n) if n.as_ref() == b"DAV:");
        match ev {
            Event::Start(e) => {
                let local = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                stack.push(if is_dav { local } else { format!("?{local}") });
                if at_path(&stack) {
                    current = Some(String::new());
                }
            }
            Event::Text(t) => {
                if let Some(c) = current.as_mut() {
                    c.push_str(&t.xml10_content().expect("text"));
                }
            }
            Event::End(_) => {
                if at_path(&stack) {
                    out.extend(current.take().map(|c| c.trim().to_owned()));
                }
                stack.pop();
            }
            Event::Eof => break,
            _ => {}
        }
    }
    out
}

/// One `Second-N` timeout with N within two seconds below `granted` (a lock answer
/// reports the time left, which starts running when the lock is granted).
pub fn timeout_near(timeouts: &[String], granted: u64) -> bool {
    let n = timeouts.first().and_then(|t| t.strip_prefix("Second-")).and_then(|n| n.parse::<u64>().ok());
    timeouts.len() == 1 && n.is_some_and(|n| n <= granted && n + 2 >= granted)
}

/// Strict IMF-fixdate (RFC 9110 5.6.7): `Sun, 06 Nov 1994 08:49:37 GMT`, day name right.
pub fn is_imf_fixdate(s: &str) -> bool {
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    let shape = b.len() == 29
        && DAYS.contains(&&s[..3])
        && &s[3..5] == ", "
        && digits(5..7)
        && b[7] == b' '
        && MONTHS.contains(&&s[8..11])
        && b[11] == b' '
        && digits(12..16)
        && b[16] == b' '
        && digits(17..19)
        && b[19] == b':'
        && digits(20..22)
        && b[22] == b':'
        && digits(23..25)
        && &s[25..] == " GMT";
    // Round trip: the day name must match the date.
    shape && httpdate::parse_http_date(s).is_ok_and(|t| httpdate::fmt_http_date(t) == s)
}

/// RFC 3339 date-time in UTC with a `Z`: `2024-05-01T12:00:00Z` (fraction allowed).
pub fn is_rfc3339_z(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    let head = b.len() >= 20
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19);
    let tail = &s[19.min(s.len())..];
    let frac_ok = match tail.strip_prefix('.') {
        Some(f) => f.len() >= 2 && f.ends_with('Z') && f[..f.len() - 1].bytes().all(|c| c.is_ascii_digit()),
        None => tail == "Z",
    };
    head && frac_ok
}

/// How a raw request carries its body.
pub enum RawBody<'a> {
    /// Neither Content-Length nor Transfer-Encoding, and no bytes.
    Nothing,
    Length(&'a [u8]),
    /// `Transfer-Encoding: chunked`, one chunk per slice.
    Chunked(&'a [&'a [u8]]),
    /// `Content-Length` plus `Expect: 100-continue`: the body goes out only after the
    /// interim 100 arrives (which the exchange asserts).
    ExpectContinue(&'a [u8]),
}

/// One HTTP/1.1 exchange over a fresh connection, byte for byte as a client would send
/// it. Returns the final status and the response head and body as text.
pub fn raw_exchange(
    s: &Server,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: RawBody<'_>,
) -> (u16, String) {
    let authority = s.authority();
    let conn = std::net::TcpStream::connect(authority).expect("connect");
    conn.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nAuthorization: {}\r\nConnection: close\r\n",
        basic("admin", ADMIN_PASSWORD)
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    match &body {
        RawBody::Nothing => {}
        RawBody::Length(b) => head.push_str(&format!("Content-Length: {}\r\n", b.len())),
        RawBody::Chunked(_) => head.push_str("Transfer-Encoding: chunked\r\n"),
        RawBody::ExpectContinue(b) => {
            head.push_str(&format!("Content-Length: {}\r\nExpect: 100-continue\r\n", b.len()))
        }
    }
    head.push_str("\r\n");
    let mut reader = BufReader::new(conn.try_clone().expect("clone"));
    let mut w = conn;
    w.write_all(head.as_bytes()).expect("write head");
    // A server may answer (423, 412...) before reading the body and close the connection:
    // legal HTTP, so a failed body write is not a test failure; the answer decides.
    match body {
        RawBody::Nothing => {}
        RawBody::Length(b) => {
            let _ = w.write_all(b);
        }
        RawBody::Chunked(chunks) => {
            let mut wire = Vec::new();
            for c in chunks.iter().filter(|c| !c.is_empty()) {
                wire.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
                wire.extend_from_slice(c);
                wire.extend_from_slice(b"\r\n");
            }
            wire.extend_from_slice(b"0\r\n\r\n");
            let _ = w.write_all(&wire);
        }
        RawBody::ExpectContinue(b) => {
            let mut interim = String::new();
            loop {
                let mut line = String::new();
                assert!(reader.read_line(&mut line).expect("read interim") > 0, "closed before 100: {interim}");
                interim.push_str(&line);
                if line == "\r\n" {
                    break;
                }
            }
            assert!(interim.starts_with("HTTP/1.1 100"), "expected 100 Continue, got {interim:?}");
            w.write_all(b).expect("write body");
        }
    }
    // Keep what arrived even if the connection is then reset (the server closing with an
    // unread body in its buffer sends RST after the answer).
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match reader.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    let out = String::from_utf8_lossy(&out).into_owned();
    let status = out.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or_else(|| panic!("no status: {out:?}"));
    (status, out)
}

/// The value of `name` in a raw response head ("" when absent).
pub fn raw_header(resp: &str, name: &str) -> String {
    let head = resp.split("\r\n\r\n").next().unwrap_or_default();
    head.lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim().to_owned())
        .unwrap_or_default()
}

const UA: &str = "rclone/v1.60.1";

const PROPS: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<D:propfind xmlns:D="DAV:" xmlns:X="urn:x-client:none"><D:prop><D:getlastmodified/><D:creationdate/>
<D:getetag/><D:resourcetype/><D:getcontentlength/><X:nothing/></D:prop></D:propfind>"#;

async fn tree(s: &Server) {
    assert_eq!(mkcol(s, "/dir").await, 201);
    assert_eq!(mkcol(s, "/dir/sub").await, 201);
    assert_eq!(put(s, "/dir/f.txt", "file").await, 201);
}

#[tokio::test]
async fn options_on_mount_url_with_and_without_slash_advertises_class_2() {
    let s = Server::start();
    assert_eq!(mkcol(&s, "/mnt").await, 201);
    let ua = Ua::new(&s, UA);
    // Clients probe before they authenticate: OPTIONS must not need credentials.
    let anonymous = client_builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    for path in ["/", "/mnt", "/mnt/"] {
        for a in [ua.send(ua.req("OPTIONS", path)).await, {
            let r = anonymous.request(Method::OPTIONS, s.url(path)).send().await.expect("OPTIONS");
            Answer { status: r.status().as_u16(), headers: r.headers().clone(), body: String::new() }
        }] {
            assert!((200..300).contains(&a.status), "OPTIONS {path}: {}", a.status);
            assert_eq!(a.header("dav"), "1, 2", "OPTIONS {path}");
            assert_eq!(a.header("ms-author-via"), "DAV", "OPTIONS {path}");
        }
    }
}

#[tokio::test]
async fn propfind_on_collection_without_slash_is_answered_directly_with_slashed_hrefs() {
    let s = Server::start();
    tree(&s).await;
    let a = Ua::new(&s, UA).propfind("/dir", "1", PROPS).await;
    assert_eq!(a.status, 207, "no redirect: {}", a.header("location"));
    let rs = multistatus(&a.body);
    assert_eq!(rs[0].href, "/dir/");
    response(&rs, "/dir/sub/");
    response(&rs, "/dir/f.txt");
}

#[tokio::test]
async fn missing_resource_is_plain_404_for_propfind_head_and_get() {
    let s = Server::start();
    let ua = Ua::new(&s, UA);
    for depth in ["0", "1"] {
        let a = ua.propfind("/nope", depth, PROPS).await;
        assert_eq!(a.status, 404, "PROPFIND Depth {depth}: {}", a.body);
        assert!(!a.body.contains("multistatus"), "{}", a.body);
    }
    for m in ["HEAD", "GET"] {
        assert_eq!(ua.send(ua.req(m, "/nope/deeper.txt")).await.status, 404, "{m}");
    }
}

#[tokio::test]
async fn hrefs_are_percent_encoded_once_and_under_the_request_path() {
    let s = Server::start();
    assert_eq!(mkcol(&s, "/a%20b").await, 201);
    assert_eq!(put(&s, "/a%20b/%C3%BC%20100%25.txt", "x").await, 201);
    assert_eq!(mkcol(&s, "/a%20b/caf%C3%A9").await, 201);
    let a = Ua::new(&s, UA).propfind("/a%20b/", "1", PROPS).await;
    assert_eq!(a.status, 207, "{}", a.body);
    let mut hrefs: Vec<String> = multistatus(&a.body).into_iter().map(|r| r.href).collect();
    hrefs.sort();
    assert_eq!(hrefs, ["/a%20b/", "/a%20b/%C3%BC%20100%25.txt", "/a%20b/caf%C3%A9/"]);
    for h in &hrefs {
        let once = percent_encoding::percent_decode_str(h).decode_utf8().expect("UTF-8");
        assert!(once.starts_with("/a b/"), "{h} decodes to {once}");
    }
}

#[tokio::test]
async fn ok_propstat_comes_first_in_every_response() {
    let s = Server::start();
    tree(&s).await;
    let a = Ua::new(&s, UA).propfind("/dir/", "1", PROPS).await;
    assert_eq!(a.status, 207);
    let rs = multistatus(&a.body);
    assert_eq!(rs.len(), 3);
    for r in &rs {
        assert_eq!(r.propstats[0].status, 200, "{}: {:?}", r.href, r.propstats);
        assert!(r.propstats[1..].iter().all(|p| p.status != 200), "{}", r.href);
    }
}

#[tokio::test]
async fn getlastmodified_is_imf_fixdate_and_creationdate_is_rfc3339_utc() {
    let s = Server::start();
    tree(&s).await;
    let a = Ua::new(&s, UA).propfind("/dir/", "1", PROPS).await;
    for r in multistatus(&a.body) {
        let lm = r.ok_text("DAV:", "getlastmodified");
        assert!(is_imf_fixdate(&lm), "{}: getlastmodified {lm:?}", r.href);
        let cd = r.ok_text("DAV:", "creationdate");
        assert!(is_rfc3339_z(&cd), "{}: creationdate {cd:?}", r.href);
    }
}

#[tokio::test]
async fn getetag_is_the_strong_etag_header() {
    let s = Server::start();
    let ua = Ua::new(&s, UA);
    let put_etag = ua.send(ua.req("PUT", "/f.txt").body("abc")).await.header("etag");
    let head = ua.send(ua.req("HEAD", "/f.txt")).await.header("etag");
    let a = ua.propfind("/f.txt", "0", PROPS).await;
    let prop = multistatus(&a.body)[0].ok_text("DAV:", "getetag");
    assert!(put_etag.starts_with('"') && put_etag.ends_with('"') && put_etag.len() > 2, "{put_etag:?}");
    assert_eq!(head, put_etag);
    assert_eq!(prop, put_etag);
}

#[tokio::test]
async fn lock_on_unmapped_url_creates_empty_resource_with_201() {
    let s = Server::start();
    let ua = Ua::new(&s, UA);
    let a = ua.lock("/new.txt", "<D:href>mailto:a@example.org</D:href>", &[("Depth", "0")]).await;
    assert_eq!(a.status, 201, "{}", a.body);
    assert_eq!(get(&s, "/new.txt").await, (200, Vec::new()));
}

#[tokio::test]
async fn lock_answer_has_token_header_and_same_token_in_body_lockdiscovery() {
    let s = Server::start();
    assert_eq!(put(&s, "/f.txt", "x").await, 201);
    let ua = Ua::new(&s, UA);
    let a = ua.lock("/f.txt", "<D:href>mailto:a@example.org</D:href>", &[("Depth", "0")]).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let token = a.lock_token();
    let in_body = dav_texts(&a.body, &["prop", "lockdiscovery", "activelock", "locktoken", "href"]);
    assert_eq!(in_body, [token]);
}

#[tokio::test]
async fn lock_without_depth_header_is_accepted() {
    let s = Server::start();
    assert_eq!(put(&s, "/f.txt", "x").await, 201);
    let ua = Ua::new(&s, UA);
    let a = ua.lock("/f.txt", "<D:href>me</D:href>", &[("Timeout", "Second-3600")]).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(!a.lock_token().is_empty());
}

#[tokio::test]
async fn lock_refresh_without_body_answers_200() {
    let s = Server::start();
    assert_eq!(put(&s, "/f.txt", "x").await, 201);
    let ua = Ua::new(&s, UA);
    let token = ua.lock("/f.txt", "me", &[("Depth", "0"), ("Timeout", "Second-600")]).await.lock_token();
    let rb = ua.req("LOCK", "/f.txt").header("If", format!("(<{token}>)")).header("Timeout", "Second-600");
    let a = ua.send(rb).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(dav_texts(&a.body, &["activelock", "locktoken", "href"]), [token]);
}

#[tokio::test]
async fn put_with_content_length_stores_the_body() {
    let s = Server::start();
    let (status, resp) = raw_exchange(&s, "PUT", "/cl.txt", &[], RawBody::Length(b"hello"));
    assert_eq!(status, 201, "{resp}");
    assert_eq!(get(&s, "/cl.txt").await, (200, b"hello".to_vec()));
}

#[tokio::test]
async fn put_with_chunked_body_stores_all_chunks() {
    let s = Server::start();
    let (status, resp) = raw_exchange(&s, "PUT", "/ch.txt", &[], RawBody::Chunked(&[b"hel", b"lo ", b"world"]));
    assert_eq!(status, 201, "{resp}");
    assert_eq!(get(&s, "/ch.txt").await, (200, b"hello world".to_vec()));
}

#[tokio::test]
async fn put_with_expect_100_continue_gets_interim_100_then_stores() {
    let s = Server::start();
    let (status, resp) = raw_exchange(&s, "PUT", "/e.txt", &[], RawBody::ExpectContinue(b"expected"));
    assert_eq!(status, 201, "{resp}");
    assert_eq!(get(&s, "/e.txt").await, (200, b"expected".to_vec()));
}

#[tokio::test]
async fn put_without_length_or_body_makes_empty_file() {
    let s = Server::start();
    let (status, resp) = raw_exchange(&s, "PUT", "/empty.txt", &[], RawBody::Nothing);
    assert_eq!(status, 201, "{resp}");
    assert_eq!(get(&s, "/empty.txt").await, (200, Vec::new()));
}

#[tokio::test]
async fn put_answers_carry_etag_on_create_and_replace() {
    let s = Server::start();
    let first = s.req("PUT", "/f.txt").body("one").send().await.expect("PUT");
    assert_eq!(first.status(), 201);
    let second = s.req("PUT", "/f.txt").body("two").send().await.expect("PUT");
    assert_eq!(second.status(), 204);
    let (a, b) = (header(&first, "etag"), header(&second, "etag"));
    assert!(!a.is_empty() && !b.is_empty() && a != b, "{a:?} {b:?}");
    let (status, raw) = raw_exchange(&s, "PUT", "/g.txt", &[], RawBody::Nothing);
    assert_eq!(status, 201);
    assert!(!raw_header(&raw, "etag").is_empty(), "{raw}");
}

#[tokio::test]
async fn proppatch_always_answers_207_with_a_status_per_property() {
    let s = Server::start();
    tree(&s).await;
    let ua = Ua::new(&s, UA);
    let bodies = [
        r#"<D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:x"><D:set><D:prop><Z:a>1</Z:a></D:prop></D:set></D:propertyupdate>"#,
        r#"<D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:x"><D:remove><D:prop><Z:never/></D:prop></D:remove></D:propertyupdate>"#,
        r#"<D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><D:getetag>"x"</D:getetag></D:prop></D:set></D:propertyupdate>"#,
    ];
    for path in ["/dir/f.txt", "/dir/", "/dir"] {
        for body in bodies {
            let a = ua.send(ua.req("PROPPATCH", path).header("Content-Type", "text/xml").body(body)).await;
            assert_eq!(a.status, 207, "{path} {body}: {}", a.body);
            let rs = multistatus(&a.body);
            assert_eq!(rs.len(), 1);
            assert!(!rs[0].propstats.is_empty() && rs[0].propstats.iter().all(|p| !p.props.is_empty()), "{}", a.body);
        }
    }
}
