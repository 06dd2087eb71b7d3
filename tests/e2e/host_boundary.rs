//! What a host folder may hold that the store never does: names in NFD or not UTF-8 at
//! all, FIFOs and sockets; and the browser's page and zip download over such a folder.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::time::Duration;

use crate::harness::{ftp_as, header, multistatus};
use crate::host_common::*;

/// GET as `who`, returning status and bytes; panics if no answer comes within 10 s.
async fn get_soon(h: &Host, who: (&str, &str), path: &str) -> (u16, Vec<u8>) {
    let fetch = async {
        let r = h.req(who, "GET", path).send().await.expect("GET");
        (r.status().as_u16(), r.bytes().await.expect("body").to_vec())
    };
    tokio::time::timeout(Duration::from_secs(10), fetch).await.unwrap_or_else(|_| panic!("GET {path} hangs"))
}

/// The hrefs (as sent, percent-encoded) of a Depth 1 PROPFIND of `path` as alice.
async fn listed(h: &Host, path: &str) -> Vec<String> {
    let (status, xml) = propfind_as(h, ALICE, path, "1", ALLPROP).await;
    assert_eq!(status, 207, "{xml}");
    multistatus(&xml).into_iter().map(|r| r.href).collect()
}

#[tokio::test]
async fn nfd_names_on_disk_are_listed_in_nfc_and_reachable_by_it() {
    let h = team().await;
    std::fs::write(h.disk("e\u{301}te\u{301}.txt"), "summer").expect("write NFD");
    let hrefs = listed(&h, "/team/").await;
    assert_eq!(hrefs.len(), 2, "{hrefs:?}");
    assert_eq!(decode(&hrefs[1]), "/team/\u{e9}t\u{e9}.txt", "{hrefs:?}");
    assert_eq!(get_soon(&h, ALICE, "/team/%C3%A9t%C3%A9.txt").await, (200, b"summer".to_vec()));
    // The NFD spelling of the URL names the same file.
    assert_eq!(get_soon(&h, ALICE, "/team/e%CC%81te%CC%81.txt").await, (200, b"summer".to_vec()));
}

#[tokio::test]
async fn a_put_to_the_nfc_name_of_an_nfd_file_replaces_that_file() {
    let h = team().await;
    let nfd = "e\u{301}te\u{301}.txt";
    std::fs::write(h.disk(nfd), "summer").expect("write NFD");
    let r = h.req(ALICE, "PUT", "/team/%C3%A9t%C3%A9.txt").body("autumn").send().await.expect("PUT");
    assert_eq!(r.status(), 204, "the file exists under that name");
    assert_eq!(disk_names(&h.folder()), [nfd], "one file, still spelled as on disk");
    assert_eq!(std::fs::read(h.disk(nfd)).expect("read"), b"autumn");
}

#[tokio::test]
async fn a_non_utf8_name_on_disk_is_listed_and_its_href_fetches_its_bytes() {
    let h = team().await;
    std::fs::write(h.folder().join(OsStr::from_bytes(b"caf\xe9.txt")), "latin-1 name").expect("write");
    std::fs::write(h.disk("caf\u{e9}.txt"), "utf-8 name").expect("write");
    let hrefs = listed(&h, "/team/").await;
    assert_eq!(hrefs.len(), 3, "{hrefs:?}");
    let utf8 = hrefs.iter().find(|href| decode(href) == "/team/caf\u{e9}.txt").expect("the UTF-8 name as is");
    let other = hrefs.iter().find(|href| href.contains("caf") && *href != utf8).expect("the Latin-1 name, escaped");
    assert_eq!(get_soon(&h, ALICE, other).await, (200, b"latin-1 name".to_vec()));
    assert_eq!(get_soon(&h, ALICE, utf8).await, (200, b"utf-8 name".to_vec()));
}

#[tokio::test]
async fn a_non_utf8_name_can_be_deleted_through_its_href() {
    let h = team().await;
    std::fs::write(h.folder().join(OsStr::from_bytes(b"caf\xe9.txt")), "latin-1 name").expect("write");
    std::fs::write(h.disk("cafe.txt"), "plain").expect("write");
    let hrefs = listed(&h, "/team/").await;
    let odd = hrefs.iter().find(|href| href.contains("caf") && !href.ends_with("cafe.txt")).expect("listed");
    assert_eq!(h.req(ALICE, "DELETE", odd).send().await.expect("DELETE").status(), 204);
    assert_eq!(disk_names(&h.folder()), ["cafe.txt"]);
}

#[tokio::test]
async fn a_non_utf8_name_does_not_break_an_ftp_listing() {
    let h = team().await;
    std::fs::write(h.folder().join(OsStr::from_bytes(b"caf\xe9.txt")), "latin-1 name").expect("write");
    std::fs::write(h.disk("plain.txt"), "plain").expect("write");
    let out = ftp_as(
        &h.s,
        ALICE.0,
        ALICE.1,
        "say(len([n for n, _ in f.mlsd('team') if n not in ('.', '..')]))\nsay('plain.txt' in f.nlst('team'))",
    );
    let out: Vec<&str> = out.lines().collect();
    assert_eq!(out, ["2", "True"]);
}

#[tokio::test]
async fn get_of_a_fifo_answers_promptly_with_a_client_error() {
    let h = team().await;
    mkfifo(&h.disk("pipe"));
    std::fs::write(h.disk("after.txt"), "still fine").expect("write");
    let (status, _) = get_soon(&h, ALICE, "/team/pipe").await;
    assert!((400..500).contains(&status), "GET of a FIFO: {status}");
    assert_eq!(get_soon(&h, ALICE, "/team/after.txt").await, (200, b"still fine".to_vec()));
}

#[tokio::test]
async fn a_folder_with_a_fifo_and_a_socket_still_lists() {
    let h = team().await;
    mkfifo(&h.disk("pipe"));
    let _socket = std::os::unix::net::UnixListener::bind(h.disk("sock")).expect("bind a socket");
    std::fs::write(h.disk("file.txt"), "x").expect("write");
    let listing = tokio::time::timeout(Duration::from_secs(10), listed(&h, "/team/")).await.expect("PROPFIND hangs");
    assert!(listing.iter().any(|href| href == "/team/file.txt"), "{listing:?}");
    let (status, xml) = propfind_as(&h, ALICE, "/team/", "infinity", ALLPROP).await;
    assert_eq!(status, 207, "{xml}");
}

#[tokio::test]
async fn a_zip_of_a_folder_with_a_fifo_omits_it_and_finishes() {
    let h = team().await;
    std::fs::create_dir(h.disk("box")).expect("mkdir");
    std::fs::write(h.disk("box/a.txt"), "alpha").expect("write");
    mkfifo(&h.disk("box/pipe"));
    std::fs::write(h.disk("box/z.txt"), "zulu").expect("write");
    let (status, zip) = get_soon(&h, ALICE, "/team/box/?download=zip").await;
    assert_eq!(status, 200);
    let tmp = tempfile::tempdir().expect("tmp");
    let path = tmp.path().join("box.zip");
    std::fs::write(&path, zip).expect("write zip");
    let path = path.to_str().expect("utf-8");
    unzip(&["-tq", path]);
    let names = String::from_utf8(unzip(&["-Z1", path])).expect("names");
    assert_eq!(names.lines().collect::<Vec<_>>(), ["box/", "box/a.txt", "box/z.txt"]);
    assert_eq!(unzip(&["-p", path, "box/z.txt"]), b"zulu");
}

#[tokio::test]
async fn ftp_retr_of_a_fifo_answers_promptly_with_an_error() {
    let h = team().await;
    mkfifo(&h.disk("pipe"));
    // Timeouts shorter than the test's: a hang shows as "timeout", not as a stuck test.
    let out = ftp_as(
        &h.s,
        ALICE.0,
        ALICE.1,
        "f.timeout = 8\nf.sock.settimeout(8)\n\
         try:\n    retr('team/pipe')\n    say('read')\n\
         except ftplib.Error as e:\n    say(str(e)[:1])\n\
         except socket.timeout:\n    say('timeout')\n\
         f.sock.settimeout(20)\nsay(code('NOOP'))",
    );
    let out: Vec<&str> = out.lines().collect();
    assert!(out.len() == 2 && (out[0] == "4" || out[0] == "5"), "RETR of a FIFO: {out:?}");
    assert_eq!(out[1], "200", "the session goes on");
}

#[tokio::test]
async fn a_put_onto_a_fifo_is_refused_promptly_and_leaves_the_fifo() {
    use std::os::unix::fs::FileTypeExt;
    let h = team().await;
    mkfifo(&h.disk("pipe"));
    let put = h.req(ALICE, "PUT", "/team/pipe").body("bytes").send();
    let r = tokio::time::timeout(Duration::from_secs(10), put).await.expect("PUT onto a FIFO hangs").expect("PUT");
    assert_eq!(r.status(), 403);
    let ft = std::fs::symlink_metadata(h.disk("pipe")).expect("still there").file_type();
    assert!(ft.is_fifo(), "a refused PUT leaves the FIFO");
}

#[tokio::test]
async fn the_listing_page_of_a_host_folder_shows_its_files() {
    let h = team().await;
    std::fs::create_dir(h.disk("sub")).expect("mkdir");
    std::fs::write(h.disk("report.pdf"), vec![b'p'; 2048]).expect("write");
    std::fs::write(h.disk("notes.txt"), "0123456789").expect("write");
    let r = h.req(BOB, "GET", "/team/").header("Accept", "text/html").send().await.expect("GET");
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "content-type"), "text/html; charset=utf-8");
    let html = r.text().await.expect("page");
    for name in ["sub", "report.pdf", "notes.txt"] {
        assert!(html.contains(&format!("data-name=\"{name}\"")), "no row {name}: {html}");
    }
    assert!(html.contains("href=\"/team/sub/\""), "{html}");
    assert!(html.contains(">2.0 KiB</td>") && html.contains(">10 B</td>"), "{html}");
}

#[tokio::test]
async fn a_zip_download_of_a_host_folder_holds_its_files_and_bytes() {
    let h = team().await;
    let binary: Vec<u8> = (0..100_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    std::fs::create_dir_all(h.disk("pack/sub/deeper")).expect("mkdir");
    std::fs::create_dir(h.disk("pack/empty")).expect("mkdir");
    std::fs::write(h.disk("pack/a.txt"), "alpha").expect("write");
    std::fs::write(h.disk("pack/sub/b.bin"), &binary).expect("write");
    std::fs::write(h.disk("pack/sub/deeper/c.txt"), "deep").expect("write");
    let r = h.req(BOB, "GET", "/team/pack/?download=zip").send().await.expect("GET");
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "content-type"), "application/zip");
    let tmp = tempfile::tempdir().expect("tmp");
    let path = tmp.path().join("pack.zip");
    std::fs::write(&path, r.bytes().await.expect("body")).expect("write zip");
    let path = path.to_str().expect("utf-8");
    unzip(&["-tq", path]);
    let names = String::from_utf8(unzip(&["-Z1", path])).expect("names");
    let mut names: Vec<&str> = names.lines().collect();
    names.sort();
    let want = [
        "pack/",
        "pack/a.txt",
        "pack/empty/",
        "pack/sub/",
        "pack/sub/b.bin",
        "pack/sub/deeper/",
        "pack/sub/deeper/c.txt",
    ];
    assert_eq!(names, want);
    assert_eq!(unzip(&["-p", path, "pack/a.txt"]), b"alpha");
    assert_eq!(unzip(&["-p", path, "pack/sub/b.bin"]), binary);
    assert_eq!(unzip(&["-p", path, "pack/sub/deeper/c.txt"]), b"deep");
}

#[tokio::test]
async fn a_name_too_long_for_the_disk_is_a_client_error() {
    let h = team().await;
    // The store takes names up to 1020 bytes; Linux file names stop at 255.
    let long = "n".repeat(300);
    let put = h.req(ALICE, "PUT", &format!("/team/{long}")).body("x").send().await.expect("PUT").status().as_u16();
    assert!((400..500).contains(&put), "PUT of a 300-byte name: {put}");
    let mkcol = h.req(ALICE, "MKCOL", &format!("/team/{long}")).send().await.expect("MKCOL").status().as_u16();
    assert!((400..500).contains(&mkcol), "MKCOL of a 300-byte name: {mkcol}");
    assert_eq!(disk_names(&h.folder()), Vec::<String>::new());
}
