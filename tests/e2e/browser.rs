//! The browser front end over plain HTTP: the listing page, its assets and headers, the
//! CSRF check, Content-Disposition, and folders downloaded as streamed zips (checked with
//! Info-ZIP's `unzip`).

use std::io::Write;
use std::process::Command;

use futures_util::StreamExt;

use crate::harness::{self, header, mkcol, new_client, put, text, Server};

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

async fn page(s: &Server, path: &str) -> String {
    let r = s.req("GET", path).header("Accept", "text/html").send().await.expect("GET page");
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "content-type"), "text/html; charset=utf-8");
    text(r).await
}

/// Byte offset of a row in the page, panicking if it is missing.
fn at(html: &str, name: &str) -> usize {
    let needle = format!("data-name=\"{name}\"");
    html.find(&needle).unwrap_or_else(|| panic!("no row {name} in {html}"))
}

async fn sample_tree(s: &Server) {
    assert_eq!(mkcol(s, "/b-dir/").await, 201);
    assert_eq!(mkcol(s, "/a-dir/").await, 201);
    assert_eq!(put(s, "/zeta.txt", vec![b'z'; 2048]).await, 201);
    assert_eq!(put(s, "/alpha.txt", "0123456789").await, 201);
    assert_eq!(put(s, "/Mid.txt", vec![b'm'; 300]).await, 201);
}

#[tokio::test]
async fn listing_shows_folders_first_with_human_sizes() {
    let s = Server::start();
    sample_tree(&s).await;
    let html = page(&s, "/").await;
    assert!(at(&html, "a-dir") < at(&html, "b-dir"));
    assert!(at(&html, "b-dir") < at(&html, "alpha.txt"));
    assert!(at(&html, "alpha.txt") < at(&html, "Mid.txt") && at(&html, "Mid.txt") < at(&html, "zeta.txt"));
    assert!(html.contains(">2.0 KiB</td>"), "{html}");
    assert!(html.contains(">10 B</td>"));
    assert!(html.contains("href=\"/a-dir/\""));
    assert!(html.contains("href=\"/zeta.txt?download=1\""));
    assert!(!html.contains("<script>") && !html.contains("style="), "no inline code under the CSP");
    let sub = page(&s, "/a-dir/").await;
    assert!(sub.contains("<a href=\"/\">Home</a>") && sub.contains("<a href=\"/a-dir/\">a-dir</a>"));
    assert!(sub.contains("This folder is empty."));
}

#[tokio::test]
async fn sort_links_order_the_rows_server_side() {
    let s = Server::start();
    sample_tree(&s).await;
    let html = page(&s, "/?sort=size&order=desc").await;
    assert!(at(&html, "b-dir") < at(&html, "zeta.txt"), "folders stay first");
    assert!(at(&html, "zeta.txt") < at(&html, "Mid.txt") && at(&html, "Mid.txt") < at(&html, "alpha.txt"));
    // The active column's link flips the order; the others start ascending.
    assert!(html.contains("href=\"?sort=size&amp;order=asc\""));
    assert!(html.contains("href=\"?sort=name&amp;order=asc\""));
    let html = page(&s, "/?sort=size&order=asc").await;
    assert!(at(&html, "alpha.txt") < at(&html, "Mid.txt") && at(&html, "Mid.txt") < at(&html, "zeta.txt"));
    assert!(html.contains("href=\"?sort=size&amp;order=desc\""));
    let html = page(&s, "/?sort=name&order=desc").await;
    assert!(at(&html, "b-dir") < at(&html, "a-dir") && at(&html, "a-dir") < at(&html, "zeta.txt"));
    assert!(at(&html, "zeta.txt") < at(&html, "alpha.txt"));
    assert_eq!(put(&s, "/alpha.txt", "touched later").await, 204);
    let html = page(&s, "/?sort=modified&order=desc").await;
    assert!(at(&html, "alpha.txt") < at(&html, "zeta.txt"));
}

#[tokio::test]
async fn hostile_names_render_as_text() {
    let s = Server::start();
    assert_eq!(put(&s, "/%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E.txt", "x").await, 201);
    assert_eq!(mkcol(&s, "/%22%3E%3Cscript%3Ealert(2)%3C%2Fscript%3E/").await, 400, "'/' can't be in a name");
    assert_eq!(mkcol(&s, "/%22%27%3E%3Cb%3E/").await, 201);
    let html = page(&s, "/").await;
    assert!(!html.contains("<img src=x"), "{html}");
    assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;.txt"));
    assert!(!html.contains("<b>") && html.contains("&quot;'&gt;&lt;b&gt;"));
    let r = s.req("GET", "/%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E.txt").send().await.expect("GET");
    let cd = header(&r, "content-disposition");
    assert!(cd.starts_with("inline; filename=\"<img src=x onerror=alert(1)>.txt\"; filename*=UTF-8''%3Cimg"), "{cd}");
}

#[tokio::test]
async fn page_and_assets_carry_a_strict_policy() {
    let s = Server::start();
    let r = s.req("GET", "/").header("Accept", "text/html").send().await.expect("GET");
    assert_eq!(header(&r, "content-security-policy"), CSP);
    assert_eq!(header(&r, "x-content-type-options"), "nosniff");
    assert_eq!(header(&r, "referrer-policy"), "no-referrer");
    let html = text(r).await;
    let js = html.split("<script src=\"").nth(1).and_then(|t| t.split('"').next()).expect("script link");
    assert!(js.starts_with("/?asset=app.js&amp;v="), "{js}");
    // Assets are public: a client without credentials gets them.
    let anon = new_client();
    for (name, ctype) in [
        ("app.js", "text/javascript; charset=utf-8"),
        ("app.css", "text/css; charset=utf-8"),
        ("favicon.svg", "image/svg+xml"),
    ] {
        let r = anon.get(s.url(&format!("/some/where/?asset={name}"))).send().await.expect("asset");
        assert_eq!(r.status(), 200, "{name}");
        assert_eq!(header(&r, "content-type"), ctype);
        assert_eq!(header(&r, "content-security-policy"), CSP);
        assert_eq!(header(&r, "x-content-type-options"), "nosniff");
        assert!(!r.bytes().await.expect("body").is_empty());
    }
    assert_eq!(anon.get(s.url("/?asset=../Cargo.toml")).send().await.expect("asset").status(), 404);
    assert_eq!(anon.get(s.url("/")).send().await.expect("page").status(), 401, "the page needs a login");
}

#[tokio::test]
async fn cross_origin_writes_are_refused() {
    let s = Server::start();
    let own = s.base.trim_end_matches('/').to_owned();
    let evil = s.req("PUT", "/evil.txt").header("Origin", "http://evil.example").header("X-Wharf-Request", "1");
    assert_eq!(evil.body("x").send().await.expect("PUT").status(), 403);
    assert_eq!(harness::get(&s, "/evil.txt").await.0, 404, "nothing written");
    let form = s.req("POST", "/").header("Origin", "http://evil.example").header("Content-Type", "text/plain");
    assert_eq!(form.body("x").send().await.expect("POST").status(), 403);
    let unmarked = s.req("PUT", "/page.txt").header("Origin", &own);
    assert_eq!(unmarked.body("x").send().await.expect("PUT").status(), 403, "browser write without the marker");
    let page = s.req("PUT", "/page.txt").header("Origin", &own).header("X-Wharf-Request", "1");
    assert_eq!(page.body("from the page").send().await.expect("PUT").status(), 201);
    assert_eq!(put(&s, "/client.txt", "from a WebDAV client").await, 201);
    let fetch = s.req("DELETE", "/client.txt").header("Sec-Fetch-Site", "cross-site");
    assert_eq!(fetch.send().await.expect("DELETE").status(), 403);
    assert_eq!(harness::get(&s, "/client.txt").await.0, 200);
    let mv = s.req("MOVE", "/page.txt").header("Origin", &own).header("X-Wharf-Request", "1");
    let mv = mv.header("Destination", "/renamed.txt").header("Overwrite", "F");
    assert_eq!(mv.send().await.expect("MOVE").status(), 201);
}

#[tokio::test]
async fn downloads_name_the_file_in_both_forms() {
    let s = Server::start();
    assert_eq!(put(&s, "/na%C3%AFve%20r%C3%A9sum%C3%A9.txt", "0123456789").await, 201);
    let r = s.req("GET", "/na%C3%AFve%20r%C3%A9sum%C3%A9.txt").send().await.expect("GET");
    assert_eq!(header(&r, "content-type"), "text/plain");
    assert_eq!(
        header(&r, "content-disposition"),
        "inline; filename=\"na_ve r_sum_.txt\"; filename*=UTF-8''na%C3%AFve%20r%C3%A9sum%C3%A9.txt"
    );
    let r = s.req("GET", "/na%C3%AFve%20r%C3%A9sum%C3%A9.txt?download=1").header("Range", "bytes=2-4").send().await;
    let r = r.expect("GET");
    assert_eq!(r.status(), 206, "ranges still work");
    assert!(header(&r, "content-disposition").starts_with("attachment; filename=\"na_ve r_sum_.txt\"; filename*="));
    let etag = header(&r, "etag");
    assert_eq!(text(r).await, "234");
    let r = s.req("GET", "/na%C3%AFve%20r%C3%A9sum%C3%A9.txt?download=1").header("If-None-Match", etag).send().await;
    assert_eq!(r.expect("GET").status(), 304, "so do conditional requests");
    assert_eq!(put(&s, "/page.html", "<script>alert(1)</script>").await, 201);
    let r = s.req("GET", "/page.html").send().await.expect("GET");
    assert!(header(&r, "content-disposition").starts_with("attachment;"), "HTML is never shown on our origin");
}

/// Runs `unzip` with `args`, returning stdout; panics with stderr on failure.
fn unzip(args: &[&str]) -> Vec<u8> {
    let out = Command::new("unzip").args(args).env("LC_ALL", "C.UTF-8").output().expect("run unzip");
    assert!(out.status.success(), "unzip {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

#[tokio::test]
async fn a_folder_downloads_as_a_zip_of_every_file() {
    let s = Server::start();
    let binary: Vec<u8> = (0..200_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    for dir in ["/z/", "/z/sub/", "/z/sub/deeper/", "/z/empty/"] {
        assert_eq!(mkcol(&s, dir).await, 201);
    }
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("/z/a.txt", b"alpha".to_vec()),
        ("/z/%C3%BCn%C3%AF.txt", "ünï".as_bytes().to_vec()),
        ("/z/nothing", Vec::new()),
        ("/z/sub/b.bin", binary),
        ("/z/sub/deeper/c.txt", b"deep".to_vec()),
    ];
    for (path, body) in &files {
        assert_eq!(put(&s, path, body.clone()).await, 201);
    }
    let r = s.req("GET", "/z/?download=zip").send().await.expect("zip");
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "content-type"), "application/zip");
    assert_eq!(header(&r, "content-disposition"), "attachment; filename=\"z.zip\"; filename*=UTF-8''z.zip");
    let tmp = tempfile::tempdir().expect("tmp");
    let zip = tmp.path().join("z.zip");
    std::fs::write(&zip, r.bytes().await.expect("body")).expect("write zip");
    let zip = zip.to_str().expect("utf-8 path");
    unzip(&["-tq", zip]);
    let names = String::from_utf8(unzip(&["-Z1", zip])).expect("utf-8 names");
    let names: Vec<&str> = names.lines().collect();
    let expected = [
        "z/",
        "z/a.txt",
        "z/nothing",
        "z/ünï.txt",
        "z/empty/",
        "z/sub/",
        "z/sub/b.bin",
        "z/sub/deeper/",
        "z/sub/deeper/c.txt",
    ];
    assert_eq!(names, expected);
    for (path, body) in &files {
        let name = percent_encoding::percent_decode_str(&path[1..]).decode_utf8().expect("utf-8");
        assert_eq!(&unzip(&["-p", zip, &name]), body, "{name}");
    }
}

/// 1 MiB of a pattern that differs per file, so a member swapped or shifted is noticed.
fn block(seed: u8) -> bytes::Bytes {
    (0..1u32 << 20).map(|i| (i % 251) as u8 ^ seed).collect::<Vec<u8>>().into()
}

#[tokio::test]
async fn a_two_gib_folder_streams_in_bounded_memory() {
    const FILES: u8 = 4;
    const MIB_PER_FILE: u64 = 512;
    let s = Server::start();
    assert_eq!(mkcol(&s, "/big/").await, 201);
    for k in 0..FILES {
        let chunk = block(k);
        let stream = futures_util::stream::iter((0..MIB_PER_FILE).map(move |_| Ok::<_, std::io::Error>(chunk.clone())));
        let r = s.req("PUT", &format!("/big/f{k}.bin")).body(reqwest::Body::wrap_stream(stream)).send().await;
        assert_eq!(r.expect("PUT").status(), 201);
    }
    // Uploads leave the allocator holding some memory; the zip must add little to it.
    let before = harness::rss_kib(s.pid());
    let r = s.req("GET", "/big/?download=zip").send().await.expect("zip");
    assert_eq!(r.status(), 200);
    let tmp = tempfile::tempdir().expect("tmp");
    let path = tmp.path().join("big.zip");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path).expect("create"));
    let (mut len, mut peak) = (0u64, 0u64);
    let mut body = r.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.expect("chunk");
        len += chunk.len() as u64;
        out.write_all(&chunk).expect("write");
        if len % (64 << 20) < chunk.len() as u64 {
            peak = peak.max(harness::rss_kib(s.pid()));
        }
    }
    out.flush().expect("flush");
    drop(out);
    assert!(peak > 0 && peak < 100 * 1024, "server RSS peaked at {peak} KiB");
    assert!(peak < before + 50 * 1024, "the zip grew the server from {before} to {peak} KiB");
    // Folder entry, then per file a local header, the data and a 16-byte descriptor, then
    // the central directory and the end record (no ZIP64 records below 4 GiB).
    let size = MIB_PER_FILE << 20;
    let expected = 43 + u64::from(FILES) * (49 + size + 16) + 59 + u64::from(FILES) * 65 + 22;
    assert_eq!(len, expected);
    let zip = path.to_str().expect("utf-8 path");
    unzip(&["-tq", zip]);
    // And the bytes themselves: the last member, piped out and compared block by block.
    let mut child = Command::new("unzip")
        .args(["-p", zip, "big/f3.bin"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("unzip -p");
    let mut stdout = child.stdout.take().expect("stdout");
    let (want, mut got) = (block(FILES - 1), vec![0u8; 1 << 20]);
    for n in 0..MIB_PER_FILE {
        std::io::Read::read_exact(&mut stdout, &mut got).expect("member bytes");
        assert!(got[..] == want[..], "block {n} of f3.bin differs");
    }
    assert_eq!(std::io::Read::read(&mut stdout, &mut got).expect("end"), 0);
    assert!(child.wait().expect("unzip").success());
}

/// The page of `path` as `user`.
async fn page_as(s: &Server, user: &str, password: &str, path: &str) -> String {
    let r = new_client()
        .get(s.url(path))
        .header("Authorization", harness::basic(user, password))
        .header("Accept", "text/html")
        .send()
        .await
        .expect("GET page");
    assert_eq!(r.status(), 200);
    text(r).await
}

#[tokio::test]
async fn a_read_only_share_offers_no_write_actions() {
    let s = Server::start();
    harness::add_user(&s, "reader", "reader-pass-1", &[]);
    harness::cli(&s.data, &["share", "add", "docs"], "");
    harness::cli(&s.data, &["share", "grant", "docs", "admin", "rwdl"], "");
    harness::cli(&s.data, &["share", "grant", "docs", "reader", "r"], "");
    assert_eq!(put(&s, "/docs/a.txt", "content").await, 201);
    let html = page_as(&s, "reader", "reader-pass-1", "/docs/").await;
    assert!(html.contains("data-name=\"a.txt\""), "{html}");
    assert!(html.contains("?download=1"), "downloads stay");
    for control in ["id=\"mkdir\"", "id=\"pick\"", "data-act=\"rename\"", "data-act=\"delete\"", "Drop files"] {
        assert!(!html.contains(control), "{control} offered on a read-only share: {html}");
    }
    assert!(html.contains("data-write=\"0\""));
}

#[tokio::test]
async fn the_owner_is_offered_every_action_but_shares_themselves_cannot_be_renamed() {
    let s = Server::start();
    harness::cli(&s.data, &["share", "add", "docs"], "");
    harness::cli(&s.data, &["share", "grant", "docs", "admin", "rwdl"], "");
    assert_eq!(put(&s, "/docs/a.txt", "content").await, 201);
    let inside = page(&s, "/docs/").await;
    for control in ["id=\"mkdir\"", "id=\"pick\"", "data-act=\"rename\"", "data-act=\"delete\"", "data-write=\"1\""] {
        assert!(inside.contains(control), "{control} missing: {inside}");
    }
    let top = page(&s, "/").await;
    let row = &top[at(&top, "docs")..];
    let row = &row[..row.find("</tr>").expect("row end")];
    assert!(!row.contains("data-act="), "a share's mount point has no rename or delete: {row}");
}
