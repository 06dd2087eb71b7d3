//! Archives opened as read-only folders over WebDAV: `/d/photos.zip!/` is the root of the
//! file `/d/photos.zip`, its members are listed and read like files (ranges, validators,
//! strong ETags), every write into the view is refused with 403, COPY out extracts, and
//! the ordinary listing still shows the archive as the plain file it is. In the native
//! store and in a host folder shared to alice (`rwdl`) and bob (`r`).

use crate::archives_common::*;
use crate::harness::{header, multistatus, response};
use crate::host_common::{as_user, disk_names, snapshot, team, Host, ALICE, BOB};

/// Stores the sample as `/d/NAME`, then checks the Depth infinity listing of `/d/NAME!/`
/// and the bytes of every file member.
async fn serves_sample(fmt: Fmt, name: &str) {
    let s = stored(name, sample(fmt)).await;
    let root = format!("/d/{name}!/");
    assert_eq!(listing(&s, ADMIN, &root, "infinity").await, expected(&root, &SAMPLE_MEMBERS), "{fmt:?}");
    for m in SAMPLE_MEMBERS.iter().filter(|m| !m.ends_with('/')) {
        let (status, got) = fetch(&s, ADMIN, &format!("{root}{m}")).await;
        assert_eq!(status, 200, "{fmt:?} {m}");
        assert!(got == sample_bytes(m), "{fmt:?} {m}: {} bytes, not the member's", got.len());
    }
}

#[tokio::test]
async fn a_deflated_zip_serves_every_member() {
    serves_sample(Fmt::Zip, "photos.zip").await;
}

#[tokio::test]
async fn a_stored_zip_serves_every_member() {
    serves_sample(Fmt::ZipStored, "stored.zip").await;
}

#[tokio::test]
async fn a_zip64_zip_serves_every_member() {
    serves_sample(Fmt::Zip64, "big.zip").await;
}

#[tokio::test]
async fn a_ustar_tar_serves_every_member() {
    serves_sample(Fmt::Ustar, "sample.tar").await;
}

#[tokio::test]
async fn a_pax_tar_serves_every_member() {
    serves_sample(Fmt::Pax, "sample.tar").await;
}

#[tokio::test]
async fn a_gnu_tar_serves_every_member() {
    serves_sample(Fmt::Gnu, "sample.tar").await;
}

#[tokio::test]
async fn a_tar_gz_serves_every_member() {
    serves_sample(Fmt::TarGz, "sample.tar.gz").await;
}

#[tokio::test]
async fn a_tgz_serves_every_member() {
    serves_sample(Fmt::TarGz, "sample.tgz").await;
}

#[tokio::test]
async fn a_tar_zst_serves_every_member() {
    serves_sample(Fmt::TarZst, "sample.tar.zst").await;
}

#[tokio::test]
async fn a_tzst_serves_every_member() {
    serves_sample(Fmt::TarZst, "sample.tzst").await;
}

#[tokio::test]
async fn an_upper_case_extension_opens_too() {
    serves_sample(Fmt::Zip, "PHOTOS.ZIP").await;
    serves_sample(Fmt::TarGz, "Backup.TAR.GZ").await;
}

#[tokio::test]
async fn a_zip_without_folder_entries_still_shows_its_folders() {
    let s = stored("nodirs.zip", sample(Fmt::ZipNoDirs)).await;
    // `empty/` holds no file, so without folder entries it is not in the archive at all.
    let members = ["2019/", "2019/a.jpg", "2019/log.txt", "2019/nested/", "2019/nested/deep.txt", "readme.txt"];
    assert_eq!(listing(&s, ADMIN, "/d/nodirs.zip!/", "infinity").await, expected("/d/nodirs.zip!/", &members));
    assert_eq!(fetch(&s, ADMIN, "/d/nodirs.zip!/2019/nested/deep.txt").await, (200, DEEP.to_vec()));
}

/// A tree whose only file has a path of 180 bytes (over ustar's 100 + 155 split for the
/// last name: its file name alone is 120 bytes).
fn long_named(fmt: Fmt) -> (Vec<u8>, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let long = format!("{}/{}.txt", "d".repeat(55), "n".repeat(116));
    write_tree(dir.path(), &[(&long, b"long name".to_vec(), README_MTIME)], &[]);
    (pack(dir.path(), fmt, &[&long[..55]]), long)
}

async fn serves_long_name(fmt: Fmt) {
    let (bytes, long) = long_named(fmt);
    let s = stored("long.tar", bytes).await;
    let dir = &long[..55];
    let want = expected("/d/long.tar!/", &[&format!("{dir}/"), &long]);
    assert_eq!(listing(&s, ADMIN, "/d/long.tar!/", "infinity").await, want);
    assert_eq!(fetch(&s, ADMIN, &format!("/d/long.tar!/{long}")).await, (200, b"long name".to_vec()));
}

#[tokio::test]
async fn pax_long_names_are_whole() {
    serves_long_name(Fmt::Pax).await;
}

#[tokio::test]
async fn gnu_long_names_are_whole() {
    serves_long_name(Fmt::Gnu).await;
}

async fn serves_utf8_names(fmt: Fmt) {
    let dir = tempfile::tempdir().expect("temp dir");
    let files = [
        ("ünïcödé/naïve café.txt", b"accents".to_vec(), README_MTIME),
        ("日本語.txt", b"kanji".to_vec(), README_MTIME),
    ];
    write_tree(dir.path(), &files, &[]);
    let s = stored("names.zip", pack(dir.path(), fmt, &["ünïcödé", "日本語.txt"])).await;
    let want = expected("/d/names.zip!/", &["ünïcödé/", "ünïcödé/naïve café.txt", "日本語.txt"]);
    assert_eq!(listing(&s, ADMIN, "/d/names.zip!/", "infinity").await, want);
    let path = "/d/names.zip!/%C3%BCn%C3%AFc%C3%B6d%C3%A9/na%C3%AFve%20caf%C3%A9.txt";
    assert_eq!(fetch(&s, ADMIN, path).await, (200, b"accents".to_vec()));
}

/// Info-ZIP 3.0 on Linux writes the UTF-8 bytes of a name with neither bit 11 nor a
/// Unicode path field; `unzip` shows them as UTF-8, and so must the server.
#[tokio::test]
async fn utf8_names_of_a_zip_from_info_zip_are_shown_as_written() {
    serves_utf8_names(Fmt::Zip).await;
}

#[tokio::test]
async fn utf8_names_of_a_zip_with_the_utf8_flag_are_shown_as_written() {
    serves_utf8_names(Fmt::ZipUtf8Flag).await;
}

#[tokio::test]
async fn depth_0_of_the_archive_root_is_one_collection() {
    let s = stored("photos.zip", sample(Fmt::Zip)).await;
    let (status, xml) = propfind_at(&s, ADMIN, "/d/photos.zip!/", "0").await;
    assert_eq!(status, 207, "{xml}");
    let rs = multistatus(&xml);
    assert_eq!(rs.len(), 1, "{xml}");
    let rt = rs[0].prop("DAV:", "resourcetype").expect("resourcetype").1;
    assert!(rt.descendants.contains(&"{DAV:}collection".to_owned()), "{xml}");
}

#[tokio::test]
async fn depth_1_of_a_nested_folder_lists_only_its_own_members() {
    let s = stored("photos.zip", sample(Fmt::TarGz)).await;
    let root = "/d/photos.zip!/";
    assert_eq!(listing(&s, ADMIN, root, "1").await, expected(root, &["2019/", "empty/", "readme.txt"]));
    let nested = "/d/photos.zip!/2019/";
    assert_eq!(listing(&s, ADMIN, nested, "1").await, expected(nested, &["a.jpg", "log.txt", "nested/"]));
    let deeper = "/d/photos.zip!/2019/nested/";
    assert_eq!(listing(&s, ADMIN, deeper, "infinity").await, expected(deeper, &["deep.txt"]));
    assert_eq!(fetch(&s, ADMIN, "/d/photos.zip!/2019/nested/deep.txt").await, (200, DEEP.to_vec()));
    assert_eq!(fetch(&s, ADMIN, "/d/photos.zip!/2019/missing.txt").await.0, 404);
}

#[tokio::test]
async fn members_carry_their_own_length_time_type_and_a_strong_etag() {
    let s = stored("photos.zip", sample(Fmt::Zip)).await;
    // The type a plain file of the same name gets.
    assert_eq!(upload(&s, ADMIN, "/plain.jpg", b"x".to_vec()).await, 201);
    let (_, xml) = propfind_at(&s, ADMIN, "/plain.jpg", "0").await;
    let jpeg_type = multistatus(&xml)[0].ok_text("DAV:", "getcontenttype");
    let (status, xml) = propfind_at(&s, ADMIN, "/d/photos.zip!/2019/", "1").await;
    assert_eq!(status, 207, "{xml}");
    let rs = multistatus(&xml);
    let photo = response(&rs, "/d/photos.zip!/2019/a.jpg");
    assert_eq!(photo.ok_text("DAV:", "getcontentlength"), "100000");
    assert_eq!(photo.ok_text("DAV:", "getlastmodified"), httpdate::fmt_http_date(at(PHOTO_MTIME)));
    assert_eq!(photo.ok_text("DAV:", "getcontenttype"), jpeg_type);
    let log = response(&rs, "/d/photos.zip!/2019/log.txt");
    assert_eq!(log.ok_text("DAV:", "getlastmodified"), httpdate::fmt_http_date(at(LOG_MTIME)));
    assert!(log.ok_text("DAV:", "getcontenttype").starts_with("text/plain"), "{xml}");
    let (e1, e2) = (photo.ok_text("DAV:", "getetag"), log.ok_text("DAV:", "getetag"));
    for e in [&e1, &e2] {
        assert!(e.starts_with('"') && e.ends_with('"') && e.len() > 2, "a strong ETag, not {e}");
    }
    assert_ne!(e1, e2, "each member has its own ETag");
}

fn at(secs: u64) -> std::time::SystemTime {
    std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs)
}

#[tokio::test]
async fn head_of_a_member_has_its_length_time_and_etag() {
    let s = stored("photos.tar", sample(Fmt::Ustar)).await;
    let r = as_user(&s, ADMIN, "HEAD", "/d/photos.tar!/readme.txt").send().await.expect("HEAD");
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "content-length"), README.len().to_string());
    assert_eq!(header(&r, "last-modified"), httpdate::fmt_http_date(at(README_MTIME)));
    assert!(header(&r, "etag").starts_with('"'), "strong ETag: {:?}", header(&r, "etag"));
}

/// GET of `range` of `path`: checks the 206, its Content-Range and the bytes.
async fn check_range(s: &crate::harness::Server, path: &str, whole: &[u8], first: usize, last: usize) {
    let r = as_user(s, ADMIN, "GET", path).header("Range", format!("bytes={first}-{last}")).send().await.expect("GET");
    assert_eq!(r.status(), 206, "{path}");
    assert_eq!(header(&r, "content-range"), format!("bytes {first}-{last}/{}", whole.len()));
    let got = r.bytes().await.expect("body");
    assert!(got[..] == whole[first..=last], "{path}: bytes {first}-{last} differ");
}

#[tokio::test]
async fn a_range_of_a_deflated_zip_member_is_exact() {
    let s = stored("photos.zip", sample(Fmt::Zip)).await;
    check_range(&s, "/d/photos.zip!/2019/log.txt", &log(), 150_000, 150_999).await;
    check_range(&s, "/d/photos.zip!/2019/a.jpg", &photo(), 99_000, 99_999).await;
}

#[tokio::test]
async fn a_range_of_a_plain_tar_member_is_exact() {
    let s = stored("photos.tar", sample(Fmt::Gnu)).await;
    check_range(&s, "/d/photos.tar!/2019/a.jpg", &photo(), 12_345, 54_321).await;
}

/// An archive holding one 12 MiB text member, past several restart points of a
/// compressed stream.
fn big_log(fmt: Fmt) -> (Vec<u8>, Vec<u8>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let text = log_text(12 << 20);
    write_tree(dir.path(), &[("big.log", text.clone(), LOG_MTIME)], &[]);
    (pack(dir.path(), fmt, &["big.log"]), text)
}

#[tokio::test]
async fn a_range_deep_in_a_large_tar_gz_member_is_exact() {
    let (bytes, text) = big_log(Fmt::TarGz);
    let s = stored("big.tar.gz", bytes).await;
    check_range(&s, "/d/big.tar.gz!/big.log", &text, 10_000_000, 10_065_535).await;
    check_range(&s, "/d/big.tar.gz!/big.log", &text, 3, 9).await;
}

#[tokio::test]
async fn a_range_deep_in_a_large_tar_zst_member_is_exact() {
    let (bytes, text) = big_log(Fmt::TarZst);
    let s = stored("big.tar.zst", bytes).await;
    check_range(&s, "/d/big.tar.zst!/big.log", &text, 9_437_184, 9_502_719).await;
}

#[tokio::test]
async fn if_none_match_with_a_members_etag_is_304() {
    let s = stored("photos.zip", sample(Fmt::Zip)).await;
    let r = as_user(&s, ADMIN, "GET", "/d/photos.zip!/readme.txt").send().await.expect("GET");
    let etag = header(&r, "etag");
    assert_eq!(r.bytes().await.expect("body").as_ref(), README);
    let r = as_user(&s, ADMIN, "GET", "/d/photos.zip!/readme.txt").header("If-None-Match", &etag).send().await;
    assert_eq!(r.expect("GET").status(), 304);
    let r = as_user(&s, ADMIN, "GET", "/d/photos.zip!/2019/a.jpg").header("If-None-Match", &etag).send().await;
    assert_eq!(r.expect("GET").status(), 200, "another member's ETag doesn't match");
}

#[tokio::test]
async fn a_members_etag_changes_when_the_archive_file_changes() {
    let s = stored("photos.zip", sample(Fmt::Zip)).await;
    let r = as_user(&s, ADMIN, "GET", "/d/photos.zip!/readme.txt").send().await.expect("GET");
    let old = header(&r, "etag");
    assert_eq!(upload(&s, ADMIN, "/d/photos.zip", sample_with_readme(Fmt::Zip, b"second edition\n")).await, 204);
    let r = as_user(&s, ADMIN, "GET", "/d/photos.zip!/readme.txt").header("If-None-Match", &old).send().await;
    let r = r.expect("GET");
    assert_eq!(r.status(), 200, "the old ETag no longer matches");
    assert_ne!(header(&r, "etag"), old);
    assert_eq!(r.bytes().await.expect("body").as_ref(), b"second edition\n");
}

#[tokio::test]
async fn the_parent_listing_shows_the_archive_as_a_plain_file() {
    let bytes = sample(Fmt::Zip);
    let s = stored("photos.zip", bytes.clone()).await;
    // Looking inside first must not make the view appear in the listing.
    assert_eq!(fetch(&s, ADMIN, "/d/photos.zip!/readme.txt").await.0, 200);
    assert_eq!(listing(&s, ADMIN, "/d/", "1").await, ["/d/", "/d/photos.zip"]);
    assert_eq!(listing(&s, ADMIN, "/d/", "infinity").await, ["/d/", "/d/photos.zip"]);
    let (_, xml) = propfind_at(&s, ADMIN, "/d/", "1").await;
    let rs = multistatus(&xml);
    let file = response(&rs, "/d/photos.zip");
    assert_eq!(file.ok_text("DAV:", "getcontentlength"), bytes.len().to_string());
    let rt = file.prop("DAV:", "resourcetype").expect("resourcetype").1;
    assert!(!rt.descendants.contains(&"{DAV:}collection".to_owned()), "{xml}");
    assert_eq!(fetch(&s, ADMIN, "/d/photos.zip").await, (200, bytes), "the file itself is served as it is");
}

#[tokio::test]
async fn a_bang_name_without_an_archive_file_is_an_ordinary_name() {
    let s = stored("notes.txt", b"x".to_vec()).await;
    assert_eq!(as_user(&s, ADMIN, "MKCOL", "/d/ghost.zip!").send().await.expect("MKCOL").status(), 201);
    assert_eq!(upload(&s, ADMIN, "/d/ghost.zip!/inside.txt", b"ordinary".to_vec()).await, 201);
    assert_eq!(fetch(&s, ADMIN, "/d/ghost.zip!/inside.txt").await, (200, b"ordinary".to_vec()));
    assert_eq!(as_user(&s, ADMIN, "MKCOL", "/d/folder.zip").send().await.expect("MKCOL").status(), 201);
    assert_eq!(propfind_at(&s, ADMIN, "/d/folder.zip!/", "1").await.0, 404, "a folder is not an archive");
    assert_eq!(upload(&s, ADMIN, "/d/notes!", b"bang".to_vec()).await, 201, "a name without an archive extension");
    assert_eq!(fetch(&s, ADMIN, "/d/notes!").await, (200, b"bang".to_vec()));
}

#[tokio::test]
async fn put_and_mkcol_into_an_archive_are_403_and_change_nothing() {
    let bytes = sample(Fmt::Zip);
    let s = stored("photos.zip", bytes.clone()).await;
    for (method, path) in [
        ("PUT", "/d/photos.zip!/new.txt"),
        ("PUT", "/d/photos.zip!/readme.txt"),
        ("PUT", "/d/photos.zip!/2019/nested/new.txt"),
        ("MKCOL", "/d/photos.zip!/newdir"),
        ("MKCOL", "/d/photos.zip!/2019/newdir"),
    ] {
        let rb = as_user(&s, ADMIN, method, path);
        let rb = if method == "PUT" { rb.body("nope") } else { rb };
        assert_read_only(&format!("{method} {path}"), rb.send().await.expect(method)).await;
    }
    assert_eq!(fetch(&s, ADMIN, "/d/photos.zip").await, (200, bytes));
    assert_eq!(listing(&s, ADMIN, "/d/photos.zip!/", "infinity").await, expected("/d/photos.zip!/", &SAMPLE_MEMBERS));
}

#[tokio::test]
async fn delete_inside_an_archive_is_403_and_changes_nothing() {
    let bytes = sample(Fmt::TarGz);
    let s = stored("photos.tar.gz", bytes.clone()).await;
    for path in ["/d/photos.tar.gz!/readme.txt", "/d/photos.tar.gz!/2019/", "/d/photos.tar.gz!/"] {
        assert_read_only(&format!("DELETE {path}"), as_user(&s, ADMIN, "DELETE", path).send().await.expect("DELETE"))
            .await;
    }
    assert_eq!(fetch(&s, ADMIN, "/d/photos.tar.gz").await, (200, bytes));
    assert_eq!(fetch(&s, ADMIN, "/d/photos.tar.gz!/readme.txt").await, (200, README.to_vec()));
}

#[tokio::test]
async fn proppatch_and_lock_inside_an_archive_are_403() {
    let s = stored("photos.zip", sample(Fmt::Zip)).await;
    let patch = r#"<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><x:tag xmlns:x="urn:x">v</x:tag></D:prop></D:set></D:propertyupdate>"#;
    let r = as_user(&s, ADMIN, "PROPPATCH", "/d/photos.zip!/readme.txt").header("Content-Type", "application/xml");
    assert_read_only("PROPPATCH", r.body(patch).send().await.expect("PROPPATCH")).await;
    for path in ["/d/photos.zip!/readme.txt", "/d/photos.zip!/2019/", "/d/photos.zip!/not-yet.txt"] {
        let r = as_user(&s, ADMIN, "LOCK", path).body(crate::host_common::LOCKINFO).send().await.expect("LOCK");
        assert_read_only(&format!("LOCK {path}"), r).await;
    }
    // Nothing was locked: the archive file itself can still be replaced.
    assert_eq!(upload(&s, ADMIN, "/d/photos.zip", sample(Fmt::Zip)).await, 204);
}

/// COPY or MOVE as `who` with a Destination on the same server.
async fn transfer(
    s: &crate::harness::Server,
    who: (&str, &str),
    method: &str,
    from: &str,
    to: &str,
) -> reqwest::Response {
    as_user(s, who, method, from).header("Destination", s.url(to)).send().await.expect(method)
}

#[tokio::test]
async fn copy_and_move_into_an_archive_are_403_and_keep_the_source() {
    let s = stored("photos.zip", sample(Fmt::Zip)).await;
    assert_eq!(upload(&s, ADMIN, "/d/other.txt", b"other".to_vec()).await, 201);
    for (method, from, to) in [
        ("COPY", "/d/other.txt", "/d/photos.zip!/other.txt"),
        ("MOVE", "/d/other.txt", "/d/photos.zip!/2019/other.txt"),
        ("COPY", "/d/photos.zip!/readme.txt", "/d/photos.zip!/copy.txt"),
        ("MOVE", "/d/photos.zip!/readme.txt", "/d/photos.zip!/renamed.txt"),
    ] {
        assert_read_only(&format!("{method} {from} {to}"), transfer(&s, ADMIN, method, from, to).await).await;
    }
    assert_eq!(fetch(&s, ADMIN, "/d/other.txt").await, (200, b"other".to_vec()));
    assert_eq!(
        listing(&s, ADMIN, "/d/photos.zip!/", "1").await,
        expected("/d/photos.zip!/", &["2019/", "empty/", "readme.txt"])
    );
}

#[tokio::test]
async fn move_out_of_an_archive_is_403_and_creates_nothing() {
    let s = stored("photos.zip", sample(Fmt::Zip)).await;
    let r = transfer(&s, ADMIN, "MOVE", "/d/photos.zip!/readme.txt", "/d/readme.txt").await;
    assert_read_only("MOVE of a member", r).await;
    let r = transfer(&s, ADMIN, "MOVE", "/d/photos.zip!/2019/", "/d/2019/").await;
    assert_read_only("MOVE of a folder", r).await;
    assert_eq!(listing(&s, ADMIN, "/d/", "1").await, ["/d/", "/d/photos.zip"]);
    assert_eq!(fetch(&s, ADMIN, "/d/photos.zip!/readme.txt").await, (200, README.to_vec()));
}

#[tokio::test]
async fn copy_out_of_an_archive_extracts_a_member_into_the_store() {
    let s = stored("photos.tar.zst", sample(Fmt::TarZst)).await;
    let r = transfer(&s, ADMIN, "COPY", "/d/photos.tar.zst!/2019/a.jpg", "/d/a.jpg").await;
    assert_eq!(r.status(), 201);
    assert_eq!(fetch(&s, ADMIN, "/d/a.jpg").await, (200, photo()));
    assert_eq!(listing(&s, ADMIN, "/d/", "1").await, ["/d/", "/d/a.jpg", "/d/photos.tar.zst"]);
    assert_eq!(fetch(&s, ADMIN, "/d/photos.tar.zst!/2019/a.jpg").await, (200, photo()), "the member stays");
}

#[tokio::test]
async fn copy_out_of_an_archive_extracts_a_folder_into_the_store() {
    let s = stored("photos.zip", sample(Fmt::Zip)).await;
    let r = transfer(&s, ADMIN, "COPY", "/d/photos.zip!/2019/", "/out/").await;
    assert_eq!(r.status(), 201);
    assert_eq!(
        listing(&s, ADMIN, "/out/", "infinity").await,
        expected("/out/", &["a.jpg", "log.txt", "nested/", "nested/deep.txt"])
    );
    assert_eq!(fetch(&s, ADMIN, "/out/log.txt").await, (200, log()));
    assert_eq!(fetch(&s, ADMIN, "/out/nested/deep.txt").await, (200, DEEP.to_vec()));
    // The copy is an ordinary folder: it can be written.
    assert_eq!(upload(&s, ADMIN, "/out/nested/new.txt", b"new".to_vec()).await, 201);
}

// --- A host folder shared to alice (rwdl) and bob (r) ---

/// The team share with `photos.zip` (the sample) written on disk by another program.
async fn team_with_zip() -> Host {
    let h = team().await;
    std::fs::write(h.disk("photos.zip"), sample(Fmt::Zip)).expect("write archive");
    h
}

#[tokio::test]
async fn a_zip_on_a_host_share_opens_for_a_read_only_user() {
    let h = team_with_zip().await;
    let root = "/team/photos.zip!/";
    assert_eq!(listing(&h.s, BOB, root, "infinity").await, expected(root, &SAMPLE_MEMBERS));
    assert_eq!(fetch(&h.s, BOB, "/team/photos.zip!/2019/a.jpg").await, (200, photo()));
    assert_eq!(fetch(&h.s, BOB, "/team/photos.zip!/2019/nested/deep.txt").await, (200, DEEP.to_vec()));
    assert_eq!(disk_names(&h.folder()), ["photos.zip"], "nothing was extracted or cached in the folder");
}

#[tokio::test]
async fn a_tar_gz_put_by_alice_is_a_folder_for_bob() {
    let h = team().await;
    assert_eq!(upload(&h.s, ALICE, "/team/backup.tar.gz", sample(Fmt::TarGz)).await, 201);
    let root = "/team/backup.tar.gz!/";
    assert_eq!(listing(&h.s, BOB, root, "1").await, expected(root, &["2019/", "empty/", "readme.txt"]));
    check_member_range(&h, BOB, "/team/backup.tar.gz!/2019/log.txt", &log(), 200_000, 200_099).await;
}

async fn check_member_range(h: &Host, who: (&str, &str), path: &str, whole: &[u8], first: usize, last: usize) {
    let r = h.req(who, "GET", path).header("Range", format!("bytes={first}-{last}")).send().await.expect("GET");
    assert_eq!(r.status(), 206, "{path}");
    assert_eq!(r.bytes().await.expect("body")[..], whole[first..=last]);
}

#[tokio::test]
async fn the_share_listing_shows_the_archive_as_a_plain_file() {
    let h = team_with_zip().await;
    assert_eq!(fetch(&h.s, BOB, "/team/photos.zip!/readme.txt").await.0, 200);
    assert_eq!(listing(&h.s, BOB, "/team/", "1").await, ["/team/", "/team/photos.zip"]);
    assert_eq!(listing(&h.s, ALICE, "/team/", "infinity").await, ["/team/", "/team/photos.zip"]);
}

#[tokio::test]
async fn an_archive_rewritten_on_disk_shows_new_bytes_and_a_new_etag_at_once() {
    let h = team_with_zip().await;
    let r = h.req(BOB, "GET", "/team/photos.zip!/readme.txt").send().await.expect("GET");
    let old = header(&r, "etag");
    assert_eq!(r.bytes().await.expect("body").as_ref(), README);
    std::fs::write(h.disk("photos.zip"), sample_with_readme(Fmt::Zip, b"rewritten on disk\n")).expect("rewrite");
    let r = h.req(BOB, "GET", "/team/photos.zip!/readme.txt").header("If-None-Match", &old).send().await;
    let r = r.expect("GET");
    assert_eq!(r.status(), 200);
    assert_ne!(header(&r, "etag"), old);
    assert_eq!(r.bytes().await.expect("body").as_ref(), b"rewritten on disk\n");
}

#[tokio::test]
async fn alice_cannot_write_into_an_archive_on_the_share_despite_her_rights() {
    let h = team_with_zip().await;
    let before = snapshot(&h.folder());
    for (method, path) in [
        ("PUT", "/team/photos.zip!/new.txt"),
        ("MKCOL", "/team/photos.zip!/newdir"),
        ("DELETE", "/team/photos.zip!/readme.txt"),
        ("DELETE", "/team/photos.zip!/2019/"),
    ] {
        let rb = h.req(ALICE, method, path);
        let rb = if method == "PUT" { rb.body("nope") } else { rb };
        assert_read_only(&format!("{method} {path}"), rb.send().await.expect(method)).await;
    }
    let r = transfer(&h.s, ALICE, "MOVE", "/team/photos.zip!/readme.txt", "/team/readme.txt").await;
    assert_read_only("MOVE out", r).await;
    assert_eq!(snapshot(&h.folder()), before, "the folder on disk changed");
}

#[tokio::test]
async fn copy_out_of_a_host_archive_writes_the_member_to_disk() {
    let h = team_with_zip().await;
    let r = transfer(&h.s, ALICE, "COPY", "/team/photos.zip!/2019/log.txt", "/team/log.txt").await;
    assert_eq!(r.status(), 201);
    assert_eq!(std::fs::read(h.disk("log.txt")).expect("extracted on disk"), log());
    assert_eq!(disk_names(&h.folder()), ["log.txt", "photos.zip"]);
}
