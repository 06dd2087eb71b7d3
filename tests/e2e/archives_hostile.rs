//! Hostile and damaged archives opened as folders: members that climb out (`../`, absolute
//! and drive paths) or are symlinks are never listed or reachable, a zip bomb's member and
//! archives over the `--archive-max-*` caps are refused with 422, damaged archives answer
//! what they can and 422 for the rest, and a file that only has an archive's name is 422.
//! After each, the server still stores and serves ordinary files.

use std::os::unix::fs::symlink;

use crate::archives_common::*;
use crate::harness::{ftp_as, Server, ADMIN_PASSWORD};
use crate::host_common::{as_user, disk_names, snapshot, team, BOB};

/// What the hostile members hold: any answer showing it leaked one.
const MARKER: &str = "HOSTILE-MEMBER-MARKER-5d21";

/// PROPFIND allprop as `who`, the whole response.
async fn propfind_resp(s: &Server, who: (&str, &str), path: &str, depth: &str) -> reqwest::Response {
    let body = r#"<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>"#;
    let rb = as_user(s, who, "PROPFIND", path).header("Depth", depth).header("Content-Type", "application/xml");
    rb.body(body).send().await.expect("PROPFIND")
}

async fn get_resp(s: &Server, who: (&str, &str), path: &str) -> reqwest::Response {
    as_user(s, who, "GET", path).send().await.expect("GET")
}

/// Panics if a Depth infinity listing of `root` shows anything but `ok.txt`, or any answer
/// shows what a hostile member holds.
async fn only_ok_txt(s: &Server, who: (&str, &str), root: &str, unreachable: &[&str]) {
    let (status, xml) = propfind_at(s, who, root, "infinity").await;
    assert_eq!(status, 207, "{xml}");
    assert!(!xml.contains(MARKER) && !xml.contains("root:x:0:0"), "{xml}");
    assert_eq!(listing(s, who, root, "infinity").await, expected(root, &["ok.txt"]));
    assert_eq!(fetch(s, who, &format!("{root}ok.txt")).await, (200, b"ok\n".to_vec()));
    for rel in unreachable {
        let (status, body) = fetch(s, who, &format!("{root}{rel}")).await;
        let body = String::from_utf8_lossy(&body);
        assert_eq!(status, 404, "{rel}: {body}");
        assert!(!body.contains(MARKER) && !body.contains("root:x:0:0"), "{rel}: {body}");
    }
}

/// A tar made with `tar -P` (names kept as given) holding `ok.txt` and members named
/// `../secret.txt`, `sub/../../secret.txt`, `/etc/passwd`, an absolute path to a temporary
/// file, and `C:\x.txt`.
fn traversal_tar() -> Vec<u8> {
    let tmp = tempfile::tempdir().expect("temp dir");
    std::fs::write(tmp.path().join("secret.txt"), MARKER).expect("write");
    let work = tmp.path().join("in");
    write_tree(
        &work,
        &[("ok.txt", b"ok\n".to_vec(), README_MTIME), ("C:\\x.txt", MARKER.into(), README_MTIME)],
        &["sub"],
    );
    let abs = tmp.path().join("secret.txt");
    let abs = abs.to_str().expect("utf-8 temp path");
    let out = tmp.path().join("t.tar");
    let out = out.to_str().expect("utf-8 temp path");
    let members = ["ok.txt", "../secret.txt", "sub/../../secret.txt", "/etc/passwd", abs, "C:\\x.txt"];
    let mut args = vec!["-P", "--hard-dereference", "--format=gnu", "-cf", out];
    args.extend_from_slice(&members);
    run(&work, "tar", &args);
    std::fs::read(out).expect("read tar")
}

/// A zip made by `zip` holding `ok.txt` and members renamed in place (same lengths, so
/// every offset stays right) to `../evil.txt`, `..\evil2.txt`, `/etc/passwd` and
/// `C:\x.txt`.
fn traversal_zip() -> Vec<u8> {
    let tmp = tempfile::tempdir().expect("temp dir");
    let files: Vec<(&str, Vec<u8>, u64)> = ["zz/evil.txt", "zz/evil2.txt", "xetc/passwd", "C_/x.txt"]
        .into_iter()
        .map(|n| (n, MARKER.as_bytes().to_vec(), README_MTIME))
        .chain([("ok.txt", b"ok\n".to_vec(), README_MTIME)])
        .collect();
    write_tree(tmp.path(), &files, &[]);
    let mut zip = pack(tmp.path(), Fmt::ZipNoDirs, &["ok.txt", "zz", "xetc", "C_"]);
    for (from, to) in [
        (&b"zz/evil.txt"[..], &b"../evil.txt"[..]),
        (b"zz/evil2.txt", b"..\\evil2.txt"),
        (b"xetc/passwd", b"/etc/passwd"),
        (b"C_/x.txt", b"C:\\x.txt"),
    ] {
        let mut hits = 0;
        while let Some(at) = zip.windows(from.len()).position(|w| w == from) {
            zip[at..at + from.len()].copy_from_slice(to);
            hits += 1;
        }
        assert_eq!(hits, 2, "{} in the local header and the central directory", String::from_utf8_lossy(from));
    }
    zip
}

/// A tree of `ok.txt` and symlinks: to `/etc/passwd`, to `../outside/secret.txt`, to
/// `/etc`, and to `ok.txt` itself; packed as `fmt` (links stored as links).
fn symlinks(fmt: Fmt) -> Vec<u8> {
    let tmp = tempfile::tempdir().expect("temp dir");
    write_tree(tmp.path(), &[("ok.txt", b"ok\n".to_vec(), README_MTIME)], &[]);
    for (name, target) in
        [("pw", "/etc/passwd"), ("up", "../outside/secret.txt"), ("etc", "/etc"), ("inside", "ok.txt")]
    {
        symlink(target, tmp.path().join(name)).expect("symlink");
    }
    let inputs = ["ok.txt", "pw", "up", "etc", "inside"];
    if fmt.ext() == "zip" {
        let out = tmp.path().join("out.zip");
        let mut args = vec!["-q", "-y", out.to_str().expect("utf-8 temp path")];
        args.extend_from_slice(&inputs);
        run(tmp.path(), "zip", &args);
        return std::fs::read(out).expect("read zip");
    }
    pack(tmp.path(), fmt, &inputs)
}

#[tokio::test]
async fn traversal_members_of_a_tar_are_never_listed_or_reachable() {
    let s = stored("evil.tar", traversal_tar()).await;
    let unreachable = ["secret.txt", "etc/passwd", "passwd", "x.txt", "C:%5Cx.txt", "sub/", "tmp/"];
    only_ok_txt(&s, ADMIN, "/d/evil.tar!/", &unreachable).await;
    assert_eq!(listing(&s, ADMIN, "/d/", "infinity").await, ["/d/", "/d/evil.tar"], "nothing appeared beside it");
    assert_still_serving(&s).await;
}

#[tokio::test]
async fn traversal_members_of_a_zip_are_never_listed_or_reachable() {
    let s = stored("evil.zip", traversal_zip()).await;
    let unreachable = ["evil.txt", "evil2.txt", "etc/passwd", "passwd", "x.txt", "C:%5Cx.txt", "..%5Cevil2.txt"];
    only_ok_txt(&s, ADMIN, "/d/evil.zip!/", &unreachable).await;
    assert_eq!(listing(&s, ADMIN, "/d/", "infinity").await, ["/d/", "/d/evil.zip"], "nothing appeared beside it");
    assert_still_serving(&s).await;
}

#[tokio::test]
async fn traversal_members_on_a_host_share_reach_nothing_outside_the_folder() {
    let h = team().await;
    std::fs::write(h.outside().join("secret.txt"), MARKER).expect("write outside");
    std::fs::write(h.disk("evil.tar"), traversal_tar()).expect("write archive");
    std::fs::write(h.disk("evil.zip"), traversal_zip()).expect("write archive");
    let before = (snapshot(&h.folder()), snapshot(&h.outside()));
    only_ok_txt(&h.s, BOB, "/team/evil.tar!/", &["secret.txt", "outside/secret.txt", "etc/passwd"]).await;
    only_ok_txt(&h.s, BOB, "/team/evil.zip!/", &["evil.txt", "outside/secret.txt", "etc/passwd"]).await;
    assert_eq!((snapshot(&h.folder()), snapshot(&h.outside())), before, "something changed on disk");
    assert_eq!(disk_names(h.root.path()), ["folder", "outside"], "something appeared beside the folder");
    assert_eq!(listing(&h.s, BOB, "/team/", "1").await, ["/team/", "/team/evil.tar", "/team/evil.zip"]);
    assert_still_serving(&h.s).await;
}

#[tokio::test]
async fn symlink_members_of_a_tar_are_never_listed_or_reachable() {
    let s = stored("links.tar", symlinks(Fmt::Ustar)).await;
    only_ok_txt(&s, ADMIN, "/d/links.tar!/", &["pw", "up", "etc", "etc/passwd", "inside"]).await;
    assert_still_serving(&s).await;
}

#[tokio::test]
async fn symlink_members_of_a_zip_are_never_listed_or_reachable() {
    let s = stored("links.zip", symlinks(Fmt::Zip)).await;
    only_ok_txt(&s, ADMIN, "/d/links.zip!/", &["pw", "up", "etc", "etc/passwd", "inside"]).await;
    assert_still_serving(&s).await;
}

#[tokio::test]
async fn symlink_members_of_a_tar_zst_on_a_host_share_are_never_listed_or_reachable() {
    let h = team().await;
    std::fs::write(h.outside().join("secret.txt"), MARKER).expect("write outside");
    std::fs::write(h.disk("links.tar.zst"), symlinks(Fmt::TarZst)).expect("write archive");
    only_ok_txt(&h.s, BOB, "/team/links.tar.zst!/", &["pw", "up", "etc", "etc/passwd", "inside"]).await;
    assert_still_serving(&h.s).await;
}

/// A deflated zip of `zeros.bin` (50 MiB of zeros: a ratio near 1,000) and `ok.txt`.
fn bomb() -> Vec<u8> {
    let tmp = tempfile::tempdir().expect("temp dir");
    let files = [("zeros.bin", vec![0u8; 50 << 20], README_MTIME), ("ok.txt", b"ok\n".to_vec(), README_MTIME)];
    write_tree(tmp.path(), &files, &[]);
    pack(tmp.path(), Fmt::Zip, &["zeros.bin", "ok.txt"])
}

#[tokio::test]
async fn a_zip_bomb_member_is_refused_with_422_and_its_sibling_still_reads() {
    let bytes = bomb();
    assert!(bytes.len() < 1 << 20, "the bomb is small: {} bytes", bytes.len());
    let s = stored("bomb.zip", bytes).await;
    assert_unprocessable("GET of the bomb", get_resp(&s, ADMIN, "/d/bomb.zip!/zeros.bin").await).await;
    let ranged = as_user(&s, ADMIN, "GET", "/d/bomb.zip!/zeros.bin").header("Range", "bytes=40000000-40000099");
    assert_unprocessable("ranged GET of the bomb", ranged.send().await.expect("GET")).await;
    assert_eq!(fetch(&s, ADMIN, "/d/bomb.zip!/ok.txt").await, (200, b"ok\n".to_vec()));
    assert_still_serving(&s).await;
}

#[tokio::test]
async fn a_zip_bomb_member_is_refused_over_ftp() {
    let s = stored("bomb.zip", bomb()).await;
    let out = ftp_as(
        &s,
        "admin",
        ADMIN_PASSWORD,
        "f.cwd('d/bomb.zip!')\ntry:\n    say(len(retr('zeros.bin')))\nexcept ftplib.Error as e:\n    say(str(e)[:3])\n\
         say(retr('ok.txt').decode())",
    );
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with('5'), "RETR of the bomb: {out}");
    assert_eq!(lines[1], "ok", "{out}");
    assert_still_serving(&s).await;
}

/// A zip of `text.log` (2 MiB of numbered lines, deflated about 10 times smaller; over
/// 1 MiB, as a member too small to matter may be spared the check) and `noise.bin` (which
/// doesn't compress).
fn compressible() -> Vec<u8> {
    let tmp = tempfile::tempdir().expect("temp dir");
    let files = [("text.log", log_text(2 << 20), LOG_MTIME), ("noise.bin", noise(100_000, 3), LOG_MTIME)];
    write_tree(tmp.path(), &files, &[]);
    pack(tmp.path(), Fmt::Zip, &["text.log", "noise.bin"])
}

#[tokio::test]
async fn archive_max_ratio_refuses_members_compressed_beyond_it() {
    let s = stored("text.zip", compressible()).await;
    assert_eq!(fetch(&s, ADMIN, "/d/text.zip!/text.log").await, (200, log_text(2 << 20)), "within the default 200");
    let s = stored_with(&["--archive-max-ratio", "2"], "text.zip", compressible()).await;
    assert_unprocessable("GET over the ratio", get_resp(&s, ADMIN, "/d/text.zip!/text.log").await).await;
    assert_eq!(fetch(&s, ADMIN, "/d/text.zip!/noise.bin").await, (200, noise(100_000, 3)));
    assert_still_serving(&s).await;
}

#[tokio::test]
async fn an_archive_over_archive_max_members_is_refused_with_422() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let names: Vec<String> = (0..12).map(|i| format!("f{i:02}.txt")).collect();
    let files: Vec<(&str, Vec<u8>, u64)> =
        names.iter().map(|n| (n.as_str(), n.as_bytes().to_vec(), README_MTIME)).collect();
    write_tree(tmp.path(), &files, &[]);
    let inputs: Vec<&str> = names.iter().map(String::as_str).collect();
    let s = stored_with(&["--archive-max-members", "10"], "many.zip", pack(tmp.path(), Fmt::Zip, &inputs)).await;
    assert_unprocessable("PROPFIND", propfind_resp(&s, ADMIN, "/d/many.zip!/", "1").await).await;
    assert_unprocessable("GET of a member", get_resp(&s, ADMIN, "/d/many.zip!/f00.txt").await).await;
    // The sample has 7 members: within the cap.
    assert_eq!(upload(&s, ADMIN, "/d/few.zip", sample(Fmt::Zip)).await, 201);
    assert_eq!(fetch(&s, ADMIN, "/d/few.zip!/readme.txt").await, (200, README.to_vec()));
    assert_still_serving(&s).await;
}

#[tokio::test]
async fn an_archive_over_archive_max_bytes_is_refused_with_422() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let files = [("a.bin", noise(300_000, 1), README_MTIME), ("b.bin", noise(300_000, 2), README_MTIME)];
    write_tree(tmp.path(), &files, &[]);
    let big = pack(tmp.path(), Fmt::Ustar, &["a.bin", "b.bin"]);
    let s = stored_with(&["--archive-max-bytes", "500000"], "big.tar", big).await;
    assert_unprocessable("PROPFIND", propfind_resp(&s, ADMIN, "/d/big.tar!/", "1").await).await;
    // The sample holds about 400,000 bytes: within the cap.
    assert_eq!(upload(&s, ADMIN, "/d/small.tar", sample(Fmt::Ustar)).await, 201);
    assert_eq!(fetch(&s, ADMIN, "/d/small.tar!/2019/a.jpg").await, (200, photo()));
    assert_still_serving(&s).await;
}

/// A tar.gz of `a-first.txt`, `b-second.txt` and `z-big.bin` (1 MiB that doesn't
/// compress), cut in the middle: inside `z-big.bin`.
fn truncated_tar_gz() -> Vec<u8> {
    let tmp = tempfile::tempdir().expect("temp dir");
    let files = [
        ("a-first.txt", b"first\n".to_vec(), README_MTIME),
        ("b-second.txt", b"second\n".to_vec(), README_MTIME),
        ("z-big.bin", noise(1 << 20, 9), README_MTIME),
    ];
    write_tree(tmp.path(), &files, &[]);
    let mut bytes = pack(tmp.path(), Fmt::TarGz, &["a-first.txt", "b-second.txt", "z-big.bin"]);
    bytes.truncate(bytes.len() / 2);
    bytes
}

#[tokio::test]
async fn a_truncated_tar_gz_lists_the_members_before_the_cut() {
    let s = stored("cut.tar.gz", truncated_tar_gz()).await;
    let got = listing(&s, ADMIN, "/d/cut.tar.gz!/", "1").await;
    for want in ["/d/cut.tar.gz!/", "/d/cut.tar.gz!/a-first.txt", "/d/cut.tar.gz!/b-second.txt"] {
        assert!(got.iter().any(|h| h == want), "{want} missing from {got:?}");
    }
    assert_eq!(fetch(&s, ADMIN, "/d/cut.tar.gz!/a-first.txt").await, (200, b"first\n".to_vec()));
    assert_eq!(fetch(&s, ADMIN, "/d/cut.tar.gz!/b-second.txt").await, (200, b"second\n".to_vec()));
    assert_still_serving(&s).await;
}

#[tokio::test]
async fn a_member_cut_short_by_a_truncated_tar_gz_is_422() {
    let s = stored("cut.tar.gz", truncated_tar_gz()).await;
    assert_unprocessable("GET of the cut member", get_resp(&s, ADMIN, "/d/cut.tar.gz!/z-big.bin").await).await;
    assert_eq!(fetch(&s, ADMIN, "/d/cut.tar.gz!/a-first.txt").await, (200, b"first\n".to_vec()));
    assert_still_serving(&s).await;
}

#[tokio::test]
async fn a_zip_without_its_end_of_central_directory_is_422() {
    let mut bytes = sample(Fmt::Zip);
    // No archive comment: the end record is the last 22 bytes.
    assert_eq!(&bytes[bytes.len() - 22..bytes.len() - 18], b"PK\x05\x06");
    bytes.truncate(bytes.len() - 22);
    let s = stored("broken.zip", bytes).await;
    assert_unprocessable("PROPFIND", propfind_resp(&s, ADMIN, "/d/broken.zip!/", "1").await).await;
    assert_unprocessable("GET of a member", get_resp(&s, ADMIN, "/d/broken.zip!/readme.txt").await).await;
    assert_still_serving(&s).await;
}

#[tokio::test]
async fn a_text_file_named_like_a_zip_is_422_with_a_reason() {
    let s = stored("x.zip", b"just some text, not an archive\n".to_vec()).await;
    assert_unprocessable("PROPFIND", propfind_resp(&s, ADMIN, "/d/x.zip!/", "1").await).await;
    let page = as_user(&s, ADMIN, "GET", "/d/x.zip!/").header("Accept", "text/html").send().await.expect("GET");
    assert_unprocessable("the page", page).await;
    assert_unprocessable("GET of a member", get_resp(&s, ADMIN, "/d/x.zip!/a.txt").await).await;
    assert_eq!(fetch(&s, ADMIN, "/d/x.zip").await, (200, b"just some text, not an archive\n".to_vec()));
    assert_still_serving(&s).await;
}

#[tokio::test]
async fn an_empty_file_named_like_a_tar_is_422() {
    let s = stored("empty.tar", Vec::new()).await;
    assert_unprocessable("PROPFIND", propfind_resp(&s, ADMIN, "/d/empty.tar!/", "1").await).await;
    assert_still_serving(&s).await;
}

#[tokio::test]
async fn a_text_file_named_like_a_tar_gz_on_a_host_share_is_422_for_bob() {
    let h = team().await;
    std::fs::write(h.disk("notes.tar.gz"), "not compressed at all\n").expect("write");
    assert_unprocessable("PROPFIND", propfind_resp(&h.s, BOB, "/team/notes.tar.gz!/", "1").await).await;
    assert_unprocessable("GET", get_resp(&h.s, BOB, "/team/notes.tar.gz!/x").await).await;
    assert_eq!(disk_names(&h.folder()), ["notes.tar.gz"]);
    assert_still_serving(&h.s).await;
}

#[tokio::test]
async fn a_text_file_named_like_a_zip_is_refused_over_ftp() {
    let s = stored("x.zip", b"just some text\n".to_vec()).await;
    let out = ftp_as(&s, "admin", ADMIN_PASSWORD, "say(code('CWD d/x.zip!'))\nsay(code('SIZE d/x.zip!/a.txt'))");
    assert!(out.lines().all(|l| l.starts_with('5')), "{out}");
    assert_eq!(out.lines().count(), 2, "{out}");
    assert_still_serving(&s).await;
}
