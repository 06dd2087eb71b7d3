//! Archives opened as read-only folders over FTP (Python's ftplib) and in the browser front
//! end: `CWD` into `NAME!`, listings, RETR with REST, SIZE and MDTM of members, writes
//! refused with 5xx; the listing page of an archive, the link to it from its folder's page,
//! members downloaded, and folders inside an archive downloaded as zips.

use std::time::{Duration, UNIX_EPOCH};

use crate::archives_common::*;
use crate::harness::{ftp_as, header, Server, ADMIN_PASSWORD};
use crate::host_common::{as_user, team, unzip, Host, BOB};

fn admin_ftp(s: &Server, code: &str) -> String {
    ftp_as(s, "admin", ADMIN_PASSWORD, code)
}

/// `YYYYMMDDHHMMSS` of a time in seconds since the epoch, as MDTM and MLSD print it (UTC).
fn stamp(secs: u64) -> String {
    let http = httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(secs)); // "Sun, 06 Nov 1994 08:49:37 GMT"
    let p: Vec<&str> = http.split([' ', ':']).collect();
    let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let month = months.iter().position(|m| *m == p[2]).expect("month") + 1;
    format!("{}{month:02}{}{}{}{}", p[3], p[1], p[4], p[5], p[6])
}

#[tokio::test]
async fn cwd_into_an_archive_and_nlst_shows_its_members() {
    let s = stored("photos.zip", sample(Fmt::Zip)).await;
    let out = admin_ftp(
        &s,
        "f.cwd('d/photos.zip!')\nsay(f.pwd())\nsay(sorted(f.nlst()))\n\
         f.cwd('2019')\nsay(sorted(f.nlst()))\nf.cwd('..')\nsay(sorted(f.nlst()))",
    );
    let top = "['2019', 'empty', 'readme.txt']";
    assert_eq!(out, format!("/d/photos.zip!\n{top}\n['a.jpg', 'log.txt', 'nested']\n{top}\n"));
}

#[tokio::test]
async fn mlsd_of_an_archive_folder_gives_each_members_type_size_and_time() {
    let s = stored("photos.tar", sample(Fmt::Ustar)).await;
    let out = admin_ftp(
        &s,
        "facts = {n: fa for n, fa in f.mlsd('d/photos.tar!/2019') if n not in ('.', '..')}\n\
         say(sorted(facts))\n\
         for n in sorted(facts):\n    say((n, facts[n]['type'], facts[n].get('size'), facts[n].get('modify')))",
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "['a.jpg', 'log.txt', 'nested']", "{out}");
    assert_eq!(lines[1], format!("('a.jpg', 'file', '100000', '{}')", stamp(PHOTO_MTIME)));
    assert_eq!(lines[2], format!("('log.txt', 'file', '{}', '{}')", log().len(), stamp(LOG_MTIME)));
    assert!(lines[3].starts_with("('nested', 'dir',"), "{out}");
}

#[tokio::test]
async fn list_of_an_archive_shows_a_line_per_member() {
    let s = stored("photos.tar.zst", sample(Fmt::TarZst)).await;
    let out =
        admin_ftp(&s, "lines = []\nf.retrlines('LIST d/photos.tar.zst!', lines.append)\nfor l in lines:\n    say(l)");
    let mut names: Vec<&str> = out.lines().filter_map(|l| l.split_whitespace().last()).collect();
    names.sort();
    assert_eq!(names, ["2019", "empty", "readme.txt"], "{out}");
    let readme = out.lines().find(|l| l.ends_with(" readme.txt")).expect("readme line");
    assert!(readme.starts_with('-'), "a file: {readme}");
    assert!(readme.split_whitespace().any(|w| w == README.len().to_string()), "its size: {readme}");
    let dir = out.lines().find(|l| l.ends_with(" 2019")).expect("2019 line");
    assert!(dir.starts_with('d'), "a folder: {dir}");
}

#[tokio::test]
async fn retr_streams_a_member_with_its_bytes() {
    let s = stored("photos.zip", sample(Fmt::Zip)).await;
    let tmp = tempfile::tempdir().expect("tmp");
    let (a, b) = (tmp.path().join("a.jpg"), tmp.path().join("log.txt"));
    admin_ftp(
        &s,
        &format!(
            "f.cwd('d/photos.zip!/2019')\nopen({a:?}, 'wb').write(retr('a.jpg'))\n\
             open({b:?}, 'wb').write(retr('log.txt'))"
        ),
    );
    assert!(std::fs::read(&a).expect("a.jpg") == photo(), "a stored member's bytes differ");
    assert!(std::fs::read(&b).expect("log.txt") == log(), "a deflated member's bytes differ");
}

#[tokio::test]
async fn retr_after_rest_resumes_a_member_at_the_offset() {
    let s = stored("photos.tar.gz", sample(Fmt::TarGz)).await;
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("tail");
    admin_ftp(
        &s,
        &format!(
            "b = io.BytesIO()\nf.retrbinary('RETR d/photos.tar.gz!/2019/log.txt', b.write, rest=123456)\n\
             open({out:?}, 'wb').write(b.getvalue())"
        ),
    );
    let got = std::fs::read(&out).expect("tail");
    assert_eq!(got.len(), log().len() - 123_456);
    assert!(got[..] == log()[123_456..], "the resumed bytes differ");
}

#[tokio::test]
async fn size_and_mdtm_of_a_member_are_its_own() {
    let s = stored("photos.zip", sample(Fmt::Zip)).await;
    let out = admin_ftp(
        &s,
        "say(f.size('d/photos.zip!/readme.txt'))\nsay(f.sendcmd('MDTM d/photos.zip!/readme.txt'))\n\
         say(f.size('d/photos.zip!/2019/log.txt'))\nsay(code('SIZE d/photos.zip!/missing.txt'))",
    );
    let want = format!("{}\n213 {}\n{}\n550\n", README.len(), stamp(README_MTIME), log().len());
    assert_eq!(out, want);
}

#[tokio::test]
async fn stor_appe_dele_mkd_rmd_and_rename_inside_an_archive_are_refused() {
    let bytes = sample(Fmt::Zip);
    let s = stored("photos.zip", bytes.clone()).await;
    let out = admin_ftp(
        &s,
        "f.cwd('d/photos.zip!')\n\
         for cmd in ('STOR new.txt', 'STOR readme.txt', 'APPE readme.txt'):\n\
         \x20   try:\n        f.storbinary(cmd, io.BytesIO(b'x'))\n        say(cmd + ' done')\n\
         \x20   except ftplib.Error as e:\n        say(cmd + ' ' + str(e)[:3])\n\
         for cmd in ('DELE readme.txt', 'MKD newdir', 'RMD empty', 'RNFR readme.txt', 'RNTO renamed.txt'):\n\
         \x20   say(cmd + ' ' + code(cmd))",
    );
    for line in out.lines().filter(|l| !l.starts_with("RNFR")) {
        let reply = line.rsplit(' ').next().expect("reply");
        assert!(reply.starts_with('5'), "{line} (all: {out})");
    }
    assert_eq!(out.lines().count(), 8, "{out}");
    assert_eq!(fetch(&s, ADMIN, "/d/photos.zip").await, (200, bytes), "the archive file changed");
    assert_eq!(listing(&s, ADMIN, "/d/", "1").await, ["/d/", "/d/photos.zip"], "something appeared beside it");
    let root = "/d/photos.zip!/";
    assert_eq!(listing(&s, ADMIN, root, "infinity").await, expected(root, &SAMPLE_MEMBERS));
}

#[tokio::test]
async fn bob_reads_an_archive_on_the_share_over_ftp() {
    let h = team().await;
    std::fs::write(h.disk("photos.zip"), sample(Fmt::Zip)).expect("write archive");
    let tmp = tempfile::tempdir().expect("tmp");
    let deep = tmp.path().join("deep");
    let out = ftp_as(
        &h.s,
        BOB.0,
        BOB.1,
        &format!(
            "say(sorted(f.nlst('team')))\nf.cwd('team/photos.zip!/2019/nested')\nsay(sorted(f.nlst()))\n\
             open({deep:?}, 'wb').write(retr('deep.txt'))"
        ),
    );
    assert_eq!(out, "['photos.zip']\n['deep.txt']\n", "the share lists the archive as a file only");
    assert_eq!(std::fs::read(&deep).expect("deep"), DEEP);
}

// --- The browser front end ---

/// The listing page of `path` as `who`.
async fn page(s: &Server, who: (&str, &str), path: &str) -> String {
    let r = as_user(s, who, "GET", path).header("Accept", "text/html").send().await.expect("GET page");
    let status = r.status().as_u16();
    let ctype = header(&r, "content-type");
    let body = r.text().await.expect("body");
    assert_eq!(status, 200, "{path}: {body}");
    assert_eq!(ctype, "text/html; charset=utf-8", "{path}");
    body
}

/// The `data-name`s of the rows of a page, sorted.
fn rows(html: &str) -> Vec<String> {
    let mut v: Vec<String> =
        html.split("data-name=\"").skip(1).filter_map(|t| t.split('"').next()).map(str::to_owned).collect();
    v.sort();
    v
}

/// The `href`s of the links of class `archive` on a page, percent-decoded.
fn archive_links(html: &str) -> Vec<String> {
    html.split("<a ")
        .skip(1)
        .map(|t| &t[..t.find('>').unwrap_or(t.len())])
        .filter(|attrs| attrs.contains("class=\"archive\""))
        .filter_map(|attrs| attrs.split("href=\"").nth(1).and_then(|h| h.split('"').next()))
        .map(|h| crate::host_common::decode(&h.replace("&amp;", "&")))
        .collect()
}

#[tokio::test]
async fn the_archive_root_as_html_is_a_listing_page_of_its_members() {
    let s = stored("photos.zip", sample(Fmt::Zip)).await;
    assert_eq!(rows(&page(&s, ADMIN, "/d/photos.zip!/").await), ["2019", "empty", "readme.txt"]);
    assert_eq!(rows(&page(&s, ADMIN, "/d/photos.zip!/2019/").await), ["a.jpg", "log.txt", "nested"]);
}

#[tokio::test]
async fn the_folder_page_links_an_archive_file_to_its_view() {
    let s = stored("photos.zip", sample(Fmt::Zip)).await;
    assert_eq!(upload(&s, ADMIN, "/d/notes.txt", b"plain".to_vec()).await, 201);
    assert_eq!(as_user(&s, ADMIN, "MKCOL", "/d/folder.zip").send().await.expect("MKCOL").status(), 201);
    let html = page(&s, ADMIN, "/d/").await;
    assert_eq!(rows(&html), ["folder.zip", "notes.txt", "photos.zip"]);
    let links = archive_links(&html);
    assert_eq!(links.len(), 1, "one archive link, on the archive's row only: {links:?}");
    assert!(links[0].ends_with("photos.zip!/"), "{links:?}");
    let row = &html[html.find("data-name=\"photos.zip\"").expect("row")..];
    let row = &row[..row.find("</tr>").expect("row end")];
    assert!(row.contains("class=\"archive\""), "the link is in the archive's row: {row}");
    // And it leads to the archive's page.
    let target = if links[0].starts_with('/') { links[0].clone() } else { format!("/d/{}", links[0]) };
    assert_eq!(rows(&page(&s, ADMIN, &target).await), ["2019", "empty", "readme.txt"]);
}

#[tokio::test]
async fn the_page_inside_an_archive_offers_no_write_actions() {
    let s = stored("photos.zip", sample(Fmt::Zip)).await;
    let html = page(&s, ADMIN, "/d/photos.zip!/2019/").await;
    assert!(html.contains("data-write=\"0\""), "{html}");
    for control in ["id=\"mkdir\"", "id=\"pick\"", "data-act=\"rename\"", "data-act=\"delete\"", "Drop files"] {
        assert!(!html.contains(control), "{control} offered inside a read-only archive: {html}");
    }
}

#[tokio::test]
async fn a_member_downloads_with_its_name() {
    let s = stored("photos.tar.gz", sample(Fmt::TarGz)).await;
    let r = as_user(&s, ADMIN, "GET", "/d/photos.tar.gz!/2019/a.jpg?download=1").send().await.expect("GET");
    assert_eq!(r.status(), 200);
    let cd = header(&r, "content-disposition");
    assert!(cd.starts_with("attachment; filename=\"a.jpg\""), "{cd}");
    assert!(r.bytes().await.expect("body")[..] == photo()[..], "the member's bytes differ");
}

/// GET `path?download=zip` as `who`; returns the zip's member names (sorted) and the zip
/// on disk (kept in `tmp`).
async fn download_zip(s: &Server, who: (&str, &str), path: &str, tmp: &tempfile::TempDir) -> (Vec<String>, String) {
    let r = as_user(s, who, "GET", &format!("{path}?download=zip")).send().await.expect("zip");
    assert_eq!(r.status(), 200, "{path}");
    assert_eq!(header(&r, "content-type"), "application/zip");
    let zip = tmp.path().join("download.zip");
    std::fs::write(&zip, r.bytes().await.expect("body")).expect("write zip");
    let zip = zip.to_str().expect("utf-8 path").to_owned();
    unzip(&["-tq", &zip]);
    let names = String::from_utf8(unzip(&["-Z1", &zip])).expect("utf-8 names");
    let mut names: Vec<String> = names.lines().map(str::to_owned).collect();
    names.sort();
    (names, zip)
}

#[tokio::test]
async fn a_folder_inside_an_archive_downloads_as_a_zip() {
    let s = stored("photos.zip", sample(Fmt::Zip)).await;
    let tmp = tempfile::tempdir().expect("tmp");
    let (names, zip) = download_zip(&s, ADMIN, "/d/photos.zip!/2019/", &tmp).await;
    assert_eq!(names, ["2019/", "2019/a.jpg", "2019/log.txt", "2019/nested/", "2019/nested/deep.txt"]);
    for m in ["2019/a.jpg", "2019/log.txt", "2019/nested/deep.txt"] {
        assert!(unzip(&["-p", &zip, m]) == sample_bytes(m), "{m} differs in the zip");
    }
}

#[tokio::test]
async fn the_archive_root_downloads_as_a_zip_of_every_member() {
    let s = stored("photos.tar.zst", sample(Fmt::TarZst)).await;
    let tmp = tempfile::tempdir().expect("tmp");
    let (names, zip) = download_zip(&s, ADMIN, "/d/photos.tar.zst!/", &tmp).await;
    // One top folder (named after the archive), holding the members.
    let top = names[0].clone();
    assert!(top.ends_with('/') && top.matches('/').count() == 1, "{names:?}");
    let inner: Vec<&str> = names[1..].iter().map(|n| n.strip_prefix(top.as_str()).unwrap_or(n)).collect();
    assert_eq!(inner, SAMPLE_MEMBERS, "{names:?}");
    assert_eq!(unzip(&["-p", &zip, &format!("{top}readme.txt")]), README);
}

#[tokio::test]
async fn bob_browses_an_archive_on_the_share() {
    let h: Host = team().await;
    std::fs::write(h.disk("photos.zip"), sample(Fmt::Zip)).expect("write archive");
    let html = page(&h.s, BOB, "/team/").await;
    assert_eq!(rows(&html), ["photos.zip"]);
    let links = archive_links(&html);
    assert!(links.len() == 1 && links[0].ends_with("photos.zip!/"), "{links:?}");
    assert_eq!(rows(&page(&h.s, BOB, "/team/photos.zip!/2019/").await), ["a.jpg", "log.txt", "nested"]);
    let tmp = tempfile::tempdir().expect("tmp");
    let (names, _) = download_zip(&h.s, BOB, "/team/photos.zip!/2019/nested/", &tmp).await;
    assert_eq!(names, ["nested/", "nested/deep.txt"]);
}
