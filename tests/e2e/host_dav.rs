//! A folder of the host served in place over WebDAV, shared to alice (`rwdl`) and bob
//! (`r`): every method works on the real files, writes land on disk at once, and changes
//! made by other programs show at once.

use std::time::Duration;

use crate::harness::multistatus;
use crate::host_common::*;

#[tokio::test]
async fn a_put_by_alice_is_on_disk_with_its_bytes() {
    let h = team().await;
    assert_eq!(put_as(&h, ALICE, "/team/a.txt", "first version").await, 201);
    assert_eq!(std::fs::read(h.disk("a.txt")).expect("on disk"), b"first version");
    assert_eq!(put_as(&h, ALICE, "/team/a.txt", "second, longer version").await, 204);
    assert_eq!(std::fs::read(h.disk("a.txt")).expect("on disk"), b"second, longer version");
    assert_eq!(disk_names(&h.folder()), ["a.txt"], "no temporary file is left behind");
}

#[tokio::test]
async fn a_large_put_streams_to_disk_intact() {
    let h = team().await;
    let chunk: Vec<u8> = (0..1u32 << 20).map(|i| (i % 251) as u8).collect();
    let chunks: Vec<Vec<u8>> = (0..24u8).map(|k| chunk.iter().map(|b| b ^ k).collect()).collect();
    let stream = futures_util::stream::iter(chunks.clone().into_iter().map(Ok::<_, std::io::Error>));
    assert_eq!(put_as(&h, ALICE, "/team/big.bin", reqwest::Body::wrap_stream(stream)).await, 201);
    let want: Vec<u8> = chunks.concat();
    let got = std::fs::read(h.disk("big.bin")).expect("on disk");
    assert_eq!(got.len(), want.len());
    assert!(got == want, "the bytes on disk differ");
}

#[tokio::test]
async fn concurrent_puts_to_one_file_leave_one_whole_version() {
    let h = team().await;
    let bodies: Vec<Vec<u8>> = (0..12u8).map(|k| vec![b'a' + k; 256 * 1024]).collect();
    let puts = bodies.iter().map(|b| put_as(&h, ALICE, "/team/contended.bin", b.clone()));
    let statuses = futures_util::future::join_all(puts).await;
    assert!(statuses.iter().all(|&s| s == 201 || s == 204), "{statuses:?}");
    let got = std::fs::read(h.disk("contended.bin")).expect("on disk");
    assert!(
        bodies.contains(&got),
        "the file mixes uploads ({} bytes, starts {:?})",
        got.len(),
        &got[..8.min(got.len())]
    );
    assert_eq!(disk_names(&h.folder()), ["contended.bin"], "no temporary file is left behind");
}

#[tokio::test]
async fn a_put_replaces_the_file_by_a_rename_so_readers_of_the_old_file_keep_it() {
    let h = team().await;
    std::fs::write(h.disk("doc.txt"), "old bytes").expect("write");
    let before = inode(&h.disk("doc.txt"));
    assert_eq!(put_as(&h, ALICE, "/team/doc.txt", "new bytes").await, 204);
    assert_ne!(inode(&h.disk("doc.txt")), before, "an atomic PUT puts a new file in place");
    assert_eq!(std::fs::read(h.disk("doc.txt")).expect("read"), b"new bytes");
}

#[tokio::test]
async fn a_cut_upload_leaves_the_old_file_and_no_temporary_file() {
    let h = team().await;
    std::fs::write(h.disk("keep.txt"), "previous content").expect("write");
    // A streamed body that fails half-way: the connection is cut mid-upload.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        vec![Ok(vec![b'x'; 64 * 1024]), Ok(vec![b'y'; 64 * 1024]), Err(std::io::Error::other("client gave up"))];
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    let _ = h.req(ALICE, "PUT", "/team/keep.txt").header("Content-Length", "10000000").body(body).send().await;
    assert_eq!(std::fs::read(h.disk("keep.txt")).expect("read"), b"previous content");
    // The server cleans its temporary file up when it notices the cut.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !temp_files(&h.folder()).is_empty() {
        assert!(std::time::Instant::now() < deadline, "left behind: {:?}", temp_files(&h.folder()));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(get_as(&h, ALICE, "/team/keep.txt").await, (200, b"previous content".to_vec()));
}

#[tokio::test]
async fn an_upload_in_progress_is_a_hidden_temporary_file_beside_the_target() {
    let h = team().await;
    std::fs::create_dir(h.disk("dir")).expect("mkdir");
    std::fs::write(h.disk("dir/doc.txt"), "old").expect("write");
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Result<Vec<u8>, std::io::Error>>();
    tx.send(Ok(vec![b'n'; 100_000])).expect("send");
    let body = futures_util::stream::unfold(rx, |mut rx| async { rx.recv().await.map(|chunk| (chunk, rx)) });
    let put = tokio::spawn(h.req(ALICE, "PUT", "/team/dir/doc.txt").body(reqwest::Body::wrap_stream(body)).send());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while temp_files(&h.disk("dir")).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "no temporary file in the target's folder: {:?}",
            disk_names(&h.disk("dir"))
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, xml) = propfind_as(&h, BOB, "/team/dir/", "1", ALLPROP).await;
    assert_eq!(hrefs(status, &xml), ["/team/dir/", "/team/dir/doc.txt"]);
    assert_eq!(get_as(&h, BOB, "/team/dir/doc.txt").await, (200, b"old".to_vec()), "the old file until the end");
    tx.send(Ok(b"end".to_vec())).expect("send");
    drop(tx);
    assert_eq!(put.await.expect("task").expect("PUT").status(), 204);
    let mut want = vec![b'n'; 100_000];
    want.extend_from_slice(b"end");
    assert_eq!(std::fs::read(h.disk("dir/doc.txt")).expect("read"), want);
    assert_eq!(disk_names(&h.disk("dir")), ["doc.txt"]);
}

#[tokio::test]
async fn temporary_files_are_never_listed_or_served() {
    let h = team().await;
    std::fs::write(h.disk(".wharf-tmp-abc123"), "half an upload").expect("write");
    std::fs::write(h.disk("real.txt"), "real").expect("write");
    let (status, xml) = propfind_as(&h, ALICE, "/team/", "1", ALLPROP).await;
    assert_eq!(hrefs(status, &xml), ["/team/", "/team/real.txt"]);
    assert_eq!(get_as(&h, ALICE, "/team/.wharf-tmp-abc123").await.0, 404);
}

#[tokio::test]
async fn get_head_and_range_read_the_file_on_disk() {
    let h = team().await;
    std::fs::write(h.disk("digits.txt"), "0123456789").expect("write");
    assert_eq!(get_as(&h, ALICE, "/team/digits.txt").await, (200, b"0123456789".to_vec()));
    let head = h.req(BOB, "HEAD", "/team/digits.txt").send().await.expect("HEAD");
    assert_eq!(head.status(), 200);
    assert_eq!(crate::harness::header(&head, "content-length"), "10");
    assert!(!crate::harness::header(&head, "etag").is_empty(), "an ETag");
    let ranged = h.req(BOB, "GET", "/team/digits.txt").header("Range", "bytes=2-4").send().await.expect("GET");
    assert_eq!(ranged.status(), 206);
    assert_eq!(crate::harness::header(&ranged, "content-range"), "bytes 2-4/10");
    assert_eq!(ranged.text().await.expect("body"), "234");
}

/// Large files leave by `sendfile` from the file on disk (server/src/zero_copy.rs), whole
/// and in a range across its 4 MiB frames; after another program truncates the file, the
/// next GET answers its new size and bytes, never stale ones.
#[tokio::test]
async fn a_large_file_on_disk_reads_back_exact_whole_and_in_ranges() {
    let h = team().await;
    let data: Vec<u8> = (0..9u32 << 20).map(|i| (i.wrapping_mul(2_654_435_761) >> 9) as u8).collect();
    std::fs::write(h.disk("large.bin"), &data).expect("write");
    let (status, got) = get_as(&h, BOB, "/team/large.bin").await;
    assert_eq!(status, 200);
    assert!(got == data, "{} bytes back", got.len());
    let ranged = h.req(BOB, "GET", "/team/large.bin").header("Range", "bytes=4000000-8500000").send().await;
    let ranged = ranged.expect("GET");
    assert_eq!(ranged.status(), 206);
    assert!(ranged.bytes().await.expect("body") == data[4_000_000..8_500_001]);
    std::fs::write(h.disk("large.bin"), &data[..5 << 20]).expect("truncate");
    let (status, got) = get_as(&h, ALICE, "/team/large.bin").await;
    assert_eq!(status, 200);
    assert!(got == data[..5 << 20], "{} bytes back", got.len());
}

#[tokio::test]
async fn a_file_changed_on_disk_gets_a_new_etag() {
    let h = team().await;
    std::fs::write(h.disk("e.txt"), "version one").expect("write");
    let first = live(&h, ALICE, "/team/e.txt", "getetag").await;
    let r = h.req(ALICE, "GET", "/team/e.txt").header("If-None-Match", &first).send().await.expect("GET");
    assert_eq!(r.status(), 304);
    std::fs::write(h.disk("e.txt"), "version two!").expect("rewrite");
    let second = live(&h, ALICE, "/team/e.txt", "getetag").await;
    assert_ne!(first, second);
    let r = h.req(ALICE, "GET", "/team/e.txt").header("If-None-Match", &first).send().await.expect("GET");
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.expect("body"), "version two!");
}

#[tokio::test]
async fn a_file_written_with_std_fs_shows_in_propfind_and_get_at_once() {
    let h = team().await;
    let (status, xml) = propfind_as(&h, BOB, "/team/", "1", ALLPROP).await;
    assert_eq!(hrefs(status, &xml), ["/team/"]);
    std::fs::write(h.disk("dropped.txt"), "from another program").expect("write");
    let (status, xml) = propfind_as(&h, BOB, "/team/", "1", ALLPROP).await;
    assert_eq!(hrefs(status, &xml), ["/team/", "/team/dropped.txt"]);
    assert_eq!(get_as(&h, BOB, "/team/dropped.txt").await, (200, b"from another program".to_vec()));
    std::fs::remove_file(h.disk("dropped.txt")).expect("remove");
    assert_eq!(get_as(&h, BOB, "/team/dropped.txt").await.0, 404);
    let (status, xml) = propfind_as(&h, BOB, "/team/", "1", ALLPROP).await;
    assert_eq!(hrefs(status, &xml), ["/team/"]);
}

#[tokio::test]
async fn a_same_size_rewrite_on_disk_gets_a_new_etag() {
    let h = team().await;
    std::fs::write(h.disk("s.txt"), "aaaa").expect("write");
    let first = live(&h, ALICE, "/team/s.txt", "getetag").await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    std::fs::write(h.disk("s.txt"), "bbbb").expect("rewrite in place");
    assert_ne!(live(&h, ALICE, "/team/s.txt", "getetag").await, first);
}

#[tokio::test]
async fn the_modification_time_set_on_disk_is_getlastmodified() {
    let h = team().await;
    std::fs::write(h.disk("old.txt"), "x").expect("write");
    set_mtime(&h.disk("old.txt"), 1_234_567_890);
    assert_eq!(live(&h, ALICE, "/team/old.txt", "getlastmodified").await, "Fri, 13 Feb 2009 23:31:30 GMT");
    let r = h.req(ALICE, "GET", "/team/old.txt").send().await.expect("GET");
    assert_eq!(crate::harness::header(&r, "last-modified"), "Fri, 13 Feb 2009 23:31:30 GMT");
}

#[tokio::test]
async fn propfind_depth_0_1_and_infinity_show_the_tree_on_disk() {
    let h = team().await;
    std::fs::create_dir_all(h.disk("sub/deeper")).expect("mkdir");
    std::fs::write(h.disk("top.txt"), "12345").expect("write");
    std::fs::write(h.disk("sub/inner.txt"), "abc").expect("write");
    std::fs::write(h.disk("sub/deeper/deep.txt"), "").expect("write");
    let (status, xml) = propfind_as(&h, BOB, "/team/", "0", ALLPROP).await;
    assert_eq!(hrefs(status, &xml), ["/team/"]);
    let (status, xml) = propfind_as(&h, BOB, "/team/", "1", ALLPROP).await;
    let mut got = hrefs(status, &xml);
    got.sort();
    assert_eq!(got, ["/team/", "/team/sub/", "/team/top.txt"]);
    let rs = multistatus(&xml);
    let top = crate::harness::response(&rs, "/team/top.txt");
    assert_eq!(top.ok_text("DAV:", "getcontentlength"), "5");
    let sub = crate::harness::response(&rs, "/team/sub/");
    assert!(sub.prop("DAV:", "resourcetype").expect("resourcetype").1.descendants.contains(&"{DAV:}collection".into()));
    let (status, xml) = propfind_as(&h, BOB, "/team/", "infinity", ALLPROP).await;
    let mut got = hrefs(status, &xml);
    got.sort();
    let want = [
        "/team/",
        "/team/sub/",
        "/team/sub/deeper/",
        "/team/sub/deeper/deep.txt",
        "/team/sub/inner.txt",
        "/team/top.txt",
    ];
    assert_eq!(got, want);
}

#[tokio::test]
async fn dead_properties_are_set_and_removed_without_touching_the_file() {
    let h = team().await;
    std::fs::write(h.disk("p.txt"), "content").expect("write");
    set_mtime(&h.disk("p.txt"), 1_500_000_000);
    let (status, xml) = proppatch_as(&h, ALICE, "/team/p.txt", &set_tag("blue")).await;
    assert_eq!(status, 207, "{xml}");
    assert_eq!(multistatus(&xml)[0].propstats[0].status, 200, "{xml}");
    assert_eq!(tag(&h, BOB, "/team/p.txt").await.as_deref(), Some("blue"), "bob reads alice's property");
    let (status, xml) = proppatch_as(&h, ALICE, "/team/p.txt", REMOVE_TAG).await;
    assert_eq!(status, 207, "{xml}");
    assert_eq!(tag(&h, ALICE, "/team/p.txt").await, None);
    assert_eq!(std::fs::read(h.disk("p.txt")).expect("read"), b"content");
    assert_eq!(mtime_secs(&h.disk("p.txt")), 1_500_000_000, "a dead property is not a change of the file");
    assert_eq!(disk_names(&h.folder()), ["p.txt"], "properties are not stored in the folder");
}

#[tokio::test]
async fn mkcol_makes_a_directory_on_disk() {
    let h = team().await;
    assert_eq!(h.req(ALICE, "MKCOL", "/team/made").send().await.expect("MKCOL").status(), 201);
    assert!(h.disk("made").is_dir());
    assert_eq!(h.req(ALICE, "MKCOL", "/team/made").send().await.expect("MKCOL").status(), 405);
    assert_eq!(h.req(ALICE, "MKCOL", "/team/no/such/parent").send().await.expect("MKCOL").status(), 409);
    assert!(!h.disk("no").exists());
}

#[tokio::test]
async fn delete_removes_files_and_whole_directories_from_disk() {
    let h = team().await;
    std::fs::create_dir_all(h.disk("d/e")).expect("mkdir");
    std::fs::write(h.disk("d/e/f.txt"), "f").expect("write");
    std::fs::write(h.disk("g.txt"), "g").expect("write");
    std::fs::write(h.disk("stays.txt"), "stays").expect("write");
    assert_eq!(h.req(ALICE, "DELETE", "/team/g.txt").send().await.expect("DELETE").status(), 204);
    assert_eq!(h.req(ALICE, "DELETE", "/team/d/").send().await.expect("DELETE").status(), 204);
    assert_eq!(disk_names(&h.folder()), ["stays.txt"]);
    assert_eq!(h.req(ALICE, "DELETE", "/team/g.txt").send().await.expect("DELETE").status(), 404);
}

#[tokio::test]
async fn copy_within_the_folder_copies_the_bytes_and_dead_properties() {
    let h = team().await;
    std::fs::write(h.disk("src.txt"), "copy me").expect("write");
    assert_eq!(proppatch_as(&h, ALICE, "/team/src.txt", &set_tag("copied")).await.0, 207);
    assert_eq!(transfer(&h, ALICE, "COPY", "/team/src.txt", "/team/dst.txt", &[]).await, 201);
    assert_eq!(std::fs::read(h.disk("dst.txt")).expect("copy"), b"copy me");
    assert_eq!(std::fs::read(h.disk("src.txt")).expect("source"), b"copy me");
    assert_ne!(inode(&h.disk("src.txt")), inode(&h.disk("dst.txt")));
    assert_eq!(tag(&h, ALICE, "/team/dst.txt").await.as_deref(), Some("copied"));
}

#[tokio::test]
async fn copy_of_a_directory_within_the_folder_copies_the_tree() {
    let h = team().await;
    std::fs::create_dir_all(h.disk("a/b")).expect("mkdir");
    std::fs::write(h.disk("a/one.txt"), "one").expect("write");
    std::fs::write(h.disk("a/b/two.txt"), "two").expect("write");
    assert_eq!(transfer(&h, ALICE, "COPY", "/team/a/", "/team/c/", &[]).await, 201);
    assert_eq!(std::fs::read(h.disk("c/one.txt")).expect("copy"), b"one");
    assert_eq!(std::fs::read(h.disk("c/b/two.txt")).expect("copy"), b"two");
    assert_eq!(std::fs::read(h.disk("a/b/two.txt")).expect("source"), b"two");
}

#[tokio::test]
async fn move_within_the_folder_is_a_rename_that_keeps_the_inode_and_dead_properties() {
    let h = team().await;
    std::fs::write(h.disk("before.txt"), "moving").expect("write");
    let ino = inode(&h.disk("before.txt"));
    assert_eq!(proppatch_as(&h, ALICE, "/team/before.txt", &set_tag("follows")).await.0, 207);
    std::fs::create_dir(h.disk("dir")).expect("mkdir");
    assert_eq!(transfer(&h, ALICE, "MOVE", "/team/before.txt", "/team/dir/after.txt", &[]).await, 201);
    assert!(!h.disk("before.txt").exists());
    assert_eq!(inode(&h.disk("dir/after.txt")), ino, "a rename, not a copy");
    assert_eq!(std::fs::read(h.disk("dir/after.txt")).expect("read"), b"moving");
    assert_eq!(tag(&h, ALICE, "/team/dir/after.txt").await.as_deref(), Some("follows"));
    assert_eq!(get_as(&h, ALICE, "/team/before.txt").await.0, 404);
}

#[tokio::test]
async fn move_of_a_directory_within_the_folder_keeps_its_inode() {
    let h = team().await;
    std::fs::create_dir_all(h.disk("from/inner")).expect("mkdir");
    std::fs::write(h.disk("from/inner/x.txt"), "x").expect("write");
    let ino = inode(&h.disk("from"));
    assert_eq!(transfer(&h, ALICE, "MOVE", "/team/from/", "/team/to/", &[]).await, 201);
    assert_eq!(inode(&h.disk("to")), ino);
    assert_eq!(std::fs::read(h.disk("to/inner/x.txt")).expect("read"), b"x");
    assert!(!h.disk("from").exists());
}

#[tokio::test]
async fn move_of_a_directory_carries_the_dead_properties_of_its_members() {
    let h = team().await;
    std::fs::create_dir_all(h.disk("from/inner")).expect("mkdir");
    std::fs::write(h.disk("from/inner/x.txt"), "x").expect("write");
    assert_eq!(proppatch_as(&h, ALICE, "/team/from/inner/x.txt", &set_tag("deep")).await.0, 207);
    assert_eq!(proppatch_as(&h, ALICE, "/team/from/inner/", &set_tag("middle")).await.0, 207);
    assert_eq!(transfer(&h, ALICE, "MOVE", "/team/from/", "/team/to/", &[]).await, 201);
    assert_eq!(tag(&h, ALICE, "/team/to/inner/x.txt").await.as_deref(), Some("deep"));
    assert_eq!(tag(&h, ALICE, "/team/to/inner/").await.as_deref(), Some("middle"));
    // A new folder under the old name starts bare.
    std::fs::create_dir_all(h.disk("from/inner")).expect("mkdir");
    std::fs::write(h.disk("from/inner/x.txt"), "x").expect("write");
    assert_eq!(tag(&h, ALICE, "/team/from/inner/x.txt").await, None);
}

#[tokio::test]
async fn a_file_deleted_and_recreated_through_wharf_has_no_old_dead_properties() {
    let h = team().await;
    assert_eq!(put_as(&h, ALICE, "/team/r.txt", "one").await, 201);
    assert_eq!(proppatch_as(&h, ALICE, "/team/r.txt", &set_tag("old")).await.0, 207);
    assert_eq!(h.req(ALICE, "DELETE", "/team/r.txt").send().await.expect("DELETE").status(), 204);
    assert_eq!(put_as(&h, ALICE, "/team/r.txt", "two").await, 201);
    assert_eq!(tag(&h, ALICE, "/team/r.txt").await, None);
}

#[tokio::test]
async fn a_put_over_an_existing_file_keeps_its_dead_properties() {
    let h = team().await;
    std::fs::write(h.disk("k.txt"), "one").expect("write");
    assert_eq!(proppatch_as(&h, ALICE, "/team/k.txt", &set_tag("kept")).await.0, 207);
    assert_eq!(put_as(&h, ALICE, "/team/k.txt", "two").await, 204);
    assert_eq!(tag(&h, ALICE, "/team/k.txt").await.as_deref(), Some("kept"), "a PUT changes content, not the resource");
}

#[tokio::test]
async fn move_with_overwrite_false_onto_an_existing_file_is_412_and_changes_nothing() {
    let h = team().await;
    std::fs::write(h.disk("a.txt"), "a").expect("write");
    std::fs::write(h.disk("b.txt"), "b").expect("write");
    assert_eq!(transfer(&h, ALICE, "MOVE", "/team/a.txt", "/team/b.txt", &[("Overwrite", "F")]).await, 412);
    assert_eq!(transfer(&h, ALICE, "COPY", "/team/a.txt", "/team/b.txt", &[("Overwrite", "F")]).await, 412);
    assert_eq!(std::fs::read(h.disk("a.txt")).expect("a"), b"a");
    assert_eq!(std::fs::read(h.disk("b.txt")).expect("b"), b"b");
}

#[tokio::test]
async fn move_with_overwrite_replaces_the_existing_file_with_204() {
    let h = team().await;
    std::fs::write(h.disk("a.txt"), "a").expect("write");
    std::fs::write(h.disk("b.txt"), "b").expect("write");
    let ino = inode(&h.disk("a.txt"));
    assert_eq!(transfer(&h, ALICE, "MOVE", "/team/a.txt", "/team/b.txt", &[]).await, 204);
    assert_eq!(disk_names(&h.folder()), ["b.txt"]);
    assert_eq!(std::fs::read(h.disk("b.txt")).expect("b"), b"a");
    assert_eq!(inode(&h.disk("b.txt")), ino);
}

#[tokio::test]
async fn a_put_over_a_file_keeps_its_permissions() {
    use std::os::unix::fs::PermissionsExt;
    let h = team().await;
    std::fs::write(h.disk("private.txt"), "old").expect("write");
    std::fs::set_permissions(h.disk("private.txt"), std::fs::Permissions::from_mode(0o600)).expect("chmod");
    assert_eq!(put_as(&h, ALICE, "/team/private.txt", "new").await, 204);
    let mode = std::fs::metadata(h.disk("private.txt")).expect("stat").permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(std::fs::read(h.disk("private.txt")).expect("read"), b"new");
}
