//! File content over HTTP: PUT and GET round trips, response headers, byte ranges,
//! conditional requests and how request paths are decoded.

use std::time::{Duration, SystemTime};

use crate::harness::{get, header, mkcol, put, raw, Server};

/// Ten bytes whose offsets are easy to read in range assertions.
const TEN: &[u8] = b"0123456789";

/// A server holding `/ten.txt` = "0123456789".
async fn with_ten() -> Server {
    let s = Server::start();
    assert_eq!(put(&s, "/ten.txt", TEN).await, 201);
    s
}

/// GET with one extra header.
async fn get_with(s: &Server, path: &str, name: &str, value: &str) -> reqwest::Response {
    s.req("GET", path).header(name, value).send().await.expect("GET")
}

/// PUT with one extra header, returning the status.
async fn put_with(s: &Server, path: &str, name: &str, value: &str, body: &'static [u8]) -> u16 {
    let r = s.req("PUT", path).header(name, value).body(body).send().await;
    r.expect("PUT").status().as_u16()
}

async fn etag_of(s: &Server, path: &str) -> String {
    header(&s.req("HEAD", path).send().await.expect("HEAD"), "etag")
}

fn http_date(t: SystemTime) -> String {
    httpdate::fmt_http_date(t)
}

// --- PUT and GET ----------------------------------------------------------------------

#[tokio::test]
async fn put_then_get_returns_identical_bytes() {
    let s = Server::start();
    let body: Vec<u8> = (0..=255u8).chain((0..=255u8).rev()).collect();
    assert_eq!(put(&s, "/all-bytes.bin", body.clone()).await, 201);
    assert_eq!(get(&s, "/all-bytes.bin").await, (200, body));
}

#[tokio::test]
async fn five_mebibyte_body_round_trips_byte_for_byte() {
    let s = Server::start();
    let mut x: u32 = 0x9e37_79b9;
    let body: Vec<u8> = (0..5 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect();
    assert_eq!(put(&s, "/big.bin", body.clone()).await, 201);
    let (status, got) = get(&s, "/big.bin").await;
    assert_eq!(status, 200);
    assert_eq!(got.len(), body.len());
    assert!(got == body, "5 MiB body came back altered");
}

/// `len` bytes of a xorshift sequence: a byte shifted or repeated is noticed.
fn noise(len: usize) -> Vec<u8> {
    let mut x: u32 = 0x2545_f491;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// On plain HTTP/1 a large body leaves by `sendfile` (server/src/zero_copy.rs): whole, and
/// in ranges across its 4 MiB frames, between small answers on the same connection. An
/// HTML file is not compressed for a client that accepts gzip: file contents never are.
#[tokio::test]
async fn large_bodies_come_back_exact_whole_in_ranges_and_between_small_answers() {
    let s = Server::start();
    let body = noise(9 << 20);
    assert_eq!(put(&s, "/big.html", body.clone()).await, 201);
    assert_eq!(put(&s, "/small.txt", "small").await, 201);
    let tail = body.len() - 300_000;
    let cases = [
        (None, &body[..]),
        (Some("bytes=4194000-8389000"), &body[4_194_000..8_389_001]),
        (Some("bytes=-300000"), &body[tail..]),
    ];
    for (range, want) in cases {
        let mut req = s.req("GET", "/big.html").header("Accept-Encoding", "gzip");
        if let Some(range) = range {
            req = req.header("Range", range);
        }
        let r = req.send().await.expect("GET");
        assert!(r.headers().get("content-encoding").is_none(), "{range:?}: compressed");
        let got = r.bytes().await.expect("body");
        assert!(got == want, "{range:?}: {} bytes back, {} expected", got.len(), want.len());
        assert_eq!(get(&s, "/small.txt").await, (200, b"small".to_vec()));
    }
}

/// HTTP/2 in clear (prior knowledge) interleaves frames: its large bodies are streamed.
#[tokio::test]
async fn a_large_body_over_http2_in_clear_comes_back_exact() {
    let s = Server::start();
    let body = noise(5 << 20);
    assert_eq!(put(&s, "/big.bin", body.clone()).await, 201);
    let credentials = format!("admin:{}", crate::harness::ADMIN_PASSWORD);
    let out = std::process::Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "60", "--http2-prior-knowledge", "--user", &credentials])
        .args(["--write-out", "%{http_version}", &s.url("/big.bin")])
        .output()
        .expect("curl");
    let (got, version) = out.stdout.split_at(out.stdout.len().saturating_sub(1));
    assert_eq!(version, b"2", "{}", String::from_utf8_lossy(&out.stderr));
    assert!(got == body, "{} bytes back", got.len());
}

#[tokio::test]
async fn put_of_a_new_resource_is_201_created() {
    let s = Server::start();
    assert_eq!(put(&s, "/new.txt", "fresh").await, 201);
}

#[tokio::test]
async fn put_over_an_existing_resource_is_204_and_replaces_content() {
    let s = with_ten().await;
    assert_eq!(put(&s, "/ten.txt", "replaced").await, 204);
    assert_eq!(get(&s, "/ten.txt").await, (200, b"replaced".to_vec()));
}

#[tokio::test]
async fn put_into_a_missing_parent_is_409_conflict() {
    let s = Server::start();
    assert_eq!(put(&s, "/no/such/dir/file.txt", "x").await, 409);
    assert_eq!(get(&s, "/no/such/dir/file.txt").await.0, 404);
}

#[tokio::test]
async fn put_on_a_collection_is_405() {
    let s = Server::start();
    assert_eq!(mkcol(&s, "/dir").await, 201);
    assert_eq!(put(&s, "/dir", "x").await, 405);
    assert_eq!(put(&s, "/dir/", "x").await, 405);
}

// --- Response headers -----------------------------------------------------------------

#[tokio::test]
async fn get_has_strong_etag_last_modified_length_and_accept_ranges() {
    let s = with_ten().await;
    let r = s.req("GET", "/ten.txt").send().await.expect("GET");
    assert_eq!(r.status(), 200);
    let etag = header(&r, "etag");
    assert!(etag.starts_with('"') && etag.ends_with('"') && etag.len() > 2, "not a strong ETag: {etag:?}");
    let modified = httpdate::parse_http_date(&header(&r, "last-modified")).expect("Last-Modified is an HTTP-date");
    let age = SystemTime::now().duration_since(modified).unwrap_or_default();
    assert!(age < Duration::from_secs(120), "Last-Modified is {age:?} old");
    assert_eq!(header(&r, "content-length"), "10");
    assert_eq!(header(&r, "accept-ranges"), "bytes");
}

#[tokio::test]
async fn put_answers_with_the_etag_get_reports() {
    let s = Server::start();
    let r = s.req("PUT", "/a.txt").body("abc").send().await.expect("PUT");
    let put_etag = header(&r, "etag");
    assert!(!put_etag.is_empty());
    assert_eq!(etag_of(&s, "/a.txt").await, put_etag);
}

#[tokio::test]
async fn content_type_is_guessed_from_the_extension() {
    let s = with_ten().await;
    let r = s.req("GET", "/ten.txt").send().await.expect("GET");
    assert!(header(&r, "content-type").starts_with("text/plain"), "{}", header(&r, "content-type"));
}

#[tokio::test]
async fn content_type_sent_with_put_wins_over_the_extension() {
    let s = Server::start();
    assert_eq!(put_with(&s, "/data.txt", "Content-Type", "application/x-wharf-test", b"{}").await, 201);
    let r = s.req("GET", "/data.txt").send().await.expect("GET");
    assert_eq!(header(&r, "content-type"), "application/x-wharf-test");
}

#[tokio::test]
async fn head_has_the_headers_of_get_and_no_body() {
    let s = with_ten().await;
    let g = s.req("GET", "/ten.txt").send().await.expect("GET");
    let h = s.req("HEAD", "/ten.txt").send().await.expect("HEAD");
    assert_eq!(h.status(), 200);
    for name in ["etag", "last-modified", "content-length", "accept-ranges", "content-type"] {
        assert_eq!(header(&h, name), header(&g, name), "{name}");
    }
    assert!(h.bytes().await.expect("body").is_empty());
}

// --- Ranges ---------------------------------------------------------------------------

#[tokio::test]
async fn single_range_is_206_with_content_range_and_exact_bytes() {
    let s = with_ten().await;
    let r = get_with(&s, "/ten.txt", "Range", "bytes=2-5").await;
    assert_eq!(r.status(), 206);
    assert_eq!(header(&r, "content-range"), "bytes 2-5/10");
    assert_eq!(header(&r, "content-length"), "4");
    assert_eq!(&r.bytes().await.expect("body")[..], b"2345");
}

#[tokio::test]
async fn a_range_ending_at_the_largest_number_is_the_rest_not_an_overflow() {
    let s = with_ten().await;
    let r = get_with(&s, "/ten.txt", "Range", "bytes=3-18446744073709551615").await;
    assert_eq!(r.status(), 206);
    assert_eq!(header(&r, "content-range"), "bytes 3-9/10");
    assert_eq!(&r.bytes().await.expect("body")[..], b"3456789");
}

#[tokio::test]
async fn suffix_range_returns_the_last_bytes() {
    let s = with_ten().await;
    let r = get_with(&s, "/ten.txt", "Range", "bytes=-3").await;
    assert_eq!(r.status(), 206);
    assert_eq!(header(&r, "content-range"), "bytes 7-9/10");
    assert_eq!(&r.bytes().await.expect("body")[..], b"789");
}

#[tokio::test]
async fn open_ended_range_returns_the_rest() {
    let s = with_ten().await;
    let r = get_with(&s, "/ten.txt", "Range", "bytes=4-").await;
    assert_eq!(r.status(), 206);
    assert_eq!(header(&r, "content-range"), "bytes 4-9/10");
    assert_eq!(&r.bytes().await.expect("body")[..], b"456789");
}

#[tokio::test]
async fn multiple_ranges_are_multipart_byteranges() {
    let s = with_ten().await;
    let r = get_with(&s, "/ten.txt", "Range", "bytes=0-1,6-8").await;
    assert_eq!(r.status(), 206);
    let ctype = header(&r, "content-type");
    let boundary = ctype
        .strip_prefix("multipart/byteranges; boundary=")
        .unwrap_or_else(|| panic!("content type {ctype:?}"))
        .to_owned();
    let declared: usize = header(&r, "content-length").parse().expect("length");
    let body = String::from_utf8(r.bytes().await.expect("body").to_vec()).expect("text");
    assert_eq!(body.len(), declared);
    let first = "Content-Range: bytes 0-1/10\r\n\r\n01\r\n";
    let second = "Content-Range: bytes 6-8/10\r\n\r\n678\r\n";
    let (a, b) = (body.find(first), body.find(second));
    assert!(a.is_some() && b.is_some() && a < b, "{body:?}");
    assert_eq!(body.matches(&format!("--{boundary}\r\n")).count(), 2, "{body:?}");
    assert!(body.ends_with(&format!("--{boundary}--\r\n")), "{body:?}");
}

#[tokio::test]
async fn range_past_the_end_is_clamped_to_the_size() {
    let s = with_ten().await;
    let r = get_with(&s, "/ten.txt", "Range", "bytes=7-100").await;
    assert_eq!(r.status(), 206);
    assert_eq!(header(&r, "content-range"), "bytes 7-9/10");
    assert_eq!(&r.bytes().await.expect("body")[..], b"789");
}

#[tokio::test]
async fn invalid_range_is_ignored() {
    let s = with_ten().await;
    let r = get_with(&s, "/ten.txt", "Range", "bytes=5-2").await;
    assert_eq!(r.status(), 200);
    assert_eq!(&r.bytes().await.expect("body")[..], TEN);
}

#[tokio::test]
async fn more_than_32_ranges_get_the_whole_content() {
    let s = with_ten().await;
    let many = vec!["0-0"; 33].join(",");
    let r = get_with(&s, "/ten.txt", "Range", &format!("bytes={many}")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(&r.bytes().await.expect("body")[..], TEN);
}

#[tokio::test]
async fn unsatisfiable_range_is_416_naming_the_size() {
    let s = with_ten().await;
    let r = get_with(&s, "/ten.txt", "Range", "bytes=1000-").await;
    assert_eq!(r.status(), 416);
    assert_eq!(header(&r, "content-range"), "bytes */10");
}

#[tokio::test]
async fn if_range_with_the_current_etag_honours_the_range() {
    let s = with_ten().await;
    let etag = etag_of(&s, "/ten.txt").await;
    let r = s.req("GET", "/ten.txt").header("Range", "bytes=2-5").header("If-Range", etag);
    let r = r.send().await.expect("GET");
    assert_eq!(r.status(), 206);
    assert_eq!(&r.bytes().await.expect("body")[..], b"2345");
}

#[tokio::test]
async fn if_range_with_a_stale_etag_returns_the_whole_content() {
    let s = with_ten().await;
    let stale = etag_of(&s, "/ten.txt").await;
    assert_eq!(put(&s, "/ten.txt", "abcdefghij").await, 204);
    let r = s.req("GET", "/ten.txt").header("Range", "bytes=2-5").header("If-Range", stale);
    let r = r.send().await.expect("GET");
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "content-range"), "");
    assert_eq!(&r.bytes().await.expect("body")[..], b"abcdefghij");
}

// --- Conditional requests -------------------------------------------------------------

#[tokio::test]
async fn if_none_match_with_the_current_etag_is_304_with_etag() {
    let s = with_ten().await;
    let etag = etag_of(&s, "/ten.txt").await;
    let r = get_with(&s, "/ten.txt", "If-None-Match", &etag).await;
    assert_eq!(r.status(), 304);
    assert_eq!(header(&r, "etag"), etag);
    assert!(r.bytes().await.expect("body").is_empty());
}

#[tokio::test]
async fn if_none_match_with_another_etag_returns_the_content() {
    let s = with_ten().await;
    let r = get_with(&s, "/ten.txt", "If-None-Match", "\"something-else\"").await;
    assert_eq!(r.status(), 200);
    assert_eq!(&r.bytes().await.expect("body")[..], TEN);
}

#[tokio::test]
async fn get_with_a_wrong_if_match_is_412() {
    let s = with_ten().await;
    assert_eq!(get_with(&s, "/ten.txt", "If-Match", "\"not-the-etag\"").await.status(), 412);
}

#[tokio::test]
async fn put_with_a_wrong_if_match_is_412_and_keeps_the_content() {
    let s = with_ten().await;
    assert_eq!(put_with(&s, "/ten.txt", "If-Match", "\"not-the-etag\"", b"changed").await, 412);
    assert_eq!(get(&s, "/ten.txt").await, (200, TEN.to_vec()));
}

#[tokio::test]
async fn put_with_the_current_if_match_succeeds() {
    let s = with_ten().await;
    let etag = etag_of(&s, "/ten.txt").await;
    assert_eq!(put_with(&s, "/ten.txt", "If-Match", &etag, b"changed").await, 204);
    assert_eq!(get(&s, "/ten.txt").await, (200, b"changed".to_vec()));
}

#[tokio::test]
async fn put_with_if_none_match_star_on_an_existing_resource_is_412() {
    let s = with_ten().await;
    assert_eq!(put_with(&s, "/ten.txt", "If-None-Match", "*", b"changed").await, 412);
    assert_eq!(get(&s, "/ten.txt").await, (200, TEN.to_vec()));
}

#[tokio::test]
async fn put_with_if_none_match_star_creates_a_new_resource() {
    let s = Server::start();
    assert_eq!(put_with(&s, "/new.txt", "If-None-Match", "*", b"created").await, 201);
}

#[tokio::test]
async fn if_modified_since_in_the_future_is_304() {
    let s = with_ten().await;
    let future = http_date(SystemTime::now() + Duration::from_secs(86_400));
    let r = get_with(&s, "/ten.txt", "If-Modified-Since", &future).await;
    assert_eq!(r.status(), 304);
    assert!(r.bytes().await.expect("body").is_empty());
}

#[tokio::test]
async fn if_modified_since_in_the_past_returns_the_content() {
    let s = with_ten().await;
    let r = get_with(&s, "/ten.txt", "If-Modified-Since", "Mon, 01 Jan 2001 00:00:00 GMT").await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn put_with_if_unmodified_since_in_the_past_is_412() {
    let s = with_ten().await;
    let past = "Mon, 01 Jan 2001 00:00:00 GMT";
    assert_eq!(put_with(&s, "/ten.txt", "If-Unmodified-Since", past, b"changed").await, 412);
    assert_eq!(get(&s, "/ten.txt").await, (200, TEN.to_vec()));
}

#[tokio::test]
async fn put_with_content_range_is_400_and_keeps_the_content() {
    let s = with_ten().await;
    assert_eq!(put_with(&s, "/ten.txt", "Content-Range", "bytes 0-1/10", b"ab").await, 400);
    assert_eq!(get(&s, "/ten.txt").await, (200, TEN.to_vec()));
}

// --- Request paths --------------------------------------------------------------------

#[tokio::test]
async fn names_with_spaces_round_trip() {
    let s = Server::start();
    assert_eq!(mkcol(&s, "/my%20folder").await, 201);
    assert_eq!(put(&s, "/my%20folder/a%20file.txt", "spaced").await, 201);
    assert_eq!(get(&s, "/my%20folder/a%20file.txt").await, (200, b"spaced".to_vec()));
}

#[tokio::test]
async fn percent_encoded_unicode_names_round_trip() {
    let s = Server::start();
    assert_eq!(mkcol(&s, "/%E6%97%A5%E6%9C%AC").await, 201);
    let path = "/%E6%97%A5%E6%9C%AC/%F0%9F%93%84%20r%C3%A9sum%C3%A9.txt";
    assert_eq!(put(&s, path, "unicode").await, 201);
    assert_eq!(get(&s, path).await, (200, b"unicode".to_vec()));
}

#[tokio::test]
async fn nfd_name_finds_the_nfc_stored_resource() {
    let s = Server::start();
    // "café.txt" with a precomposed é (NFC), then asked for with e + U+0301 (NFD).
    assert_eq!(put(&s, "/caf%C3%A9.txt", "coffee").await, 201);
    assert_eq!(get(&s, "/cafe%CC%81.txt").await, (200, b"coffee".to_vec()));
}

#[tokio::test]
async fn encoded_dot_dot_never_leaves_the_tree() {
    let s = with_ten().await;
    for method in ["GET", "PROPFIND"] {
        let (status, resp) = raw(&s, method, "/%2e%2e/%2e%2e/etc/passwd", b"");
        assert!(status == 400 || status == 404, "{method}: {status}\n{resp}");
        assert!(!resp.contains("root:"), "{method} leaked /etc/passwd:\n{resp}");
    }
}

#[tokio::test]
async fn invalid_utf8_percent_encoding_is_400() {
    let s = Server::start();
    assert_eq!(get(&s, "/%ff%fe.txt").await.0, 400);
    assert_eq!(put(&s, "/%ff%fe.txt", "x").await, 400);
}

#[tokio::test]
async fn nul_in_a_name_is_400() {
    let s = Server::start();
    assert_eq!(put(&s, "/a%00b.txt", "x").await, 400);
}

#[tokio::test]
async fn a_put_refused_over_quota_leaves_no_blob_behind() {
    let s = Server::start_with(&["--quota-bytes", "1000"]);
    assert_eq!(put(&s, "/small.bin", vec![1u8; 500]).await, 201);
    assert_eq!(put(&s, "/big.bin", vec![2u8; 5000]).await, 507);
    assert_eq!(crate::harness::stored_blobs(&s.data).await, 1, "the refused body's blob is still on disk");
}
