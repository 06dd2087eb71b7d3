//! COPY and MOVE between trees: the store and a host folder, or two host folders. Bytes,
//! dead properties and modification times arrive; a partial failure is a 207.

use crate::harness::multistatus;
use crate::host_common::*;

#[tokio::test]
async fn a_move_from_the_store_into_the_folder_and_back_keeps_bytes_dead_properties_and_times() {
    let h = team().await;
    // alice's home lives in the store; /team/ is the host folder.
    assert_eq!(put_as(&h, ALICE, "/x.txt", "stored bytes").await, 201);
    assert_eq!(proppatch_as(&h, ALICE, "/x.txt", &set_tag("travels")).await.0, 207);
    let old = "<?xml version=\"1.0\"?><D:propertyupdate xmlns:D=\"DAV:\"><D:set><D:prop>\
               <D:getlastmodified>Sun, 01 Mar 2015 12:00:00 GMT</D:getlastmodified></D:prop></D:set></D:propertyupdate>";
    assert_eq!(proppatch_as(&h, ALICE, "/x.txt", old).await.0, 207);

    assert_eq!(transfer(&h, ALICE, "MOVE", "/x.txt", "/team/x.txt", &[]).await, 201);
    assert_eq!(get_as(&h, ALICE, "/x.txt").await.0, 404, "gone from the store");
    assert_eq!(std::fs::read(h.disk("x.txt")).expect("on disk"), b"stored bytes");
    assert_eq!(mtime_secs(&h.disk("x.txt")), http_secs("Sun, 01 Mar 2015 12:00:00 GMT"));
    assert_eq!(tag(&h, ALICE, "/team/x.txt").await.as_deref(), Some("travels"));

    assert_eq!(transfer(&h, ALICE, "MOVE", "/team/x.txt", "/back.txt", &[]).await, 201);
    assert!(!h.disk("x.txt").exists(), "gone from the folder");
    assert_eq!(get_as(&h, ALICE, "/back.txt").await, (200, b"stored bytes".to_vec()));
    assert_eq!(tag(&h, ALICE, "/back.txt").await.as_deref(), Some("travels"));
    assert_eq!(live(&h, ALICE, "/back.txt", "getlastmodified").await, "Sun, 01 Mar 2015 12:00:00 GMT");
}

#[tokio::test]
async fn a_copy_of_a_store_folder_into_the_host_folder_copies_the_whole_tree() {
    let h = team().await;
    for dir in ["/d", "/d/sub"] {
        assert_eq!(h.req(ALICE, "MKCOL", dir).send().await.expect("MKCOL").status(), 201);
    }
    assert_eq!(put_as(&h, ALICE, "/d/a.txt", "a").await, 201);
    assert_eq!(put_as(&h, ALICE, "/d/sub/b.txt", "b").await, 201);
    assert_eq!(proppatch_as(&h, ALICE, "/d/sub/", &set_tag("folder prop")).await.0, 207);
    let old = "<?xml version=\"1.0\"?><D:propertyupdate xmlns:D=\"DAV:\"><D:set><D:prop>\
               <D:getlastmodified>Sun, 01 Mar 2015 12:00:00 GMT</D:getlastmodified></D:prop></D:set></D:propertyupdate>";
    assert_eq!(proppatch_as(&h, ALICE, "/d/a.txt", old).await.0, 207);
    assert_eq!(transfer(&h, ALICE, "COPY", "/d/", "/team/d/", &[]).await, 201);
    assert_eq!(std::fs::read(h.disk("d/a.txt")).expect("copied"), b"a");
    assert_eq!(mtime_secs(&h.disk("d/a.txt")), http_secs("Sun, 01 Mar 2015 12:00:00 GMT"));
    assert_eq!(std::fs::read(h.disk("d/sub/b.txt")).expect("copied"), b"b");
    assert_eq!(tag(&h, ALICE, "/team/d/sub/").await.as_deref(), Some("folder prop"));
    assert_eq!(get_as(&h, ALICE, "/d/sub/b.txt").await, (200, b"b".to_vec()), "the source stays");
}

#[tokio::test]
async fn a_move_into_the_folder_that_fails_for_one_member_is_207_and_keeps_that_member() {
    let h = team().await;
    // The store takes names up to 1020 bytes; Linux file names stop at 255.
    let long = "n".repeat(300);
    assert_eq!(h.req(ALICE, "MKCOL", "/batch").send().await.expect("MKCOL").status(), 201);
    assert_eq!(put_as(&h, ALICE, "/batch/fine.txt", "fine").await, 201);
    assert_eq!(put_as(&h, ALICE, &format!("/batch/{long}"), "too long for disk").await, 201);
    let r = h.req(ALICE, "MOVE", "/batch/").header("Destination", h.s.url("/team/batch/")).send().await;
    let r = r.expect("MOVE");
    assert_eq!(r.status(), 207);
    let xml = r.text().await.expect("body");
    let rs = multistatus(&xml);
    assert!(rs.iter().any(|r| r.href.ends_with(&long)), "the failed member is reported: {xml}");
    assert_eq!(std::fs::read(h.disk("batch/fine.txt")).expect("moved"), b"fine");
    assert_eq!(get_as(&h, ALICE, &format!("/batch/{long}")).await, (200, b"too long for disk".to_vec()));
}

#[tokio::test]
async fn a_move_between_two_host_folders_keeps_bytes_dead_properties_and_times() {
    let h = team().await;
    let other = host_root();
    let dir = other.path().join("folder");
    crate::harness::cli(&h.s.data, &["share", "add", "other", "--host", dir.to_str().expect("utf-8")], "");
    crate::harness::cli(&h.s.data, &["share", "grant", "other", ALICE.0, "rwdl"], "");
    wait_for_folder(&h.s, ALICE, &dir, "/other/").await;
    std::fs::write(h.disk("m.txt"), "between folders").expect("write");
    set_mtime(&h.disk("m.txt"), 1_400_000_000);
    assert_eq!(proppatch_as(&h, ALICE, "/team/m.txt", &set_tag("crossed")).await.0, 207);
    assert_eq!(transfer(&h, ALICE, "MOVE", "/team/m.txt", "/other/m.txt", &[]).await, 201);
    assert!(!h.disk("m.txt").exists());
    assert_eq!(std::fs::read(dir.join("m.txt")).expect("moved"), b"between folders");
    assert_eq!(mtime_secs(&dir.join("m.txt")), 1_400_000_000);
    assert_eq!(tag(&h, ALICE, "/other/m.txt").await.as_deref(), Some("crossed"));
}

#[tokio::test]
async fn dead_properties_follow_a_rename_through_wharf_but_not_a_file_recreated_by_another_program() {
    let h = team().await;
    std::fs::write(h.disk("a.txt"), "a").expect("write");
    assert_eq!(proppatch_as(&h, ALICE, "/team/a.txt", &set_tag("mine")).await.0, 207);
    std::fs::remove_file(h.disk("a.txt")).expect("remove");
    std::fs::write(h.disk("a.txt"), "someone else's a").expect("recreate");
    assert_eq!(tag(&h, ALICE, "/team/a.txt").await, None, "a new file under an old name");
}

#[tokio::test]
async fn a_file_replaced_by_another_programs_rename_does_not_inherit_dead_properties() {
    let h = team().await;
    std::fs::write(h.disk("b.txt"), "b").expect("write");
    assert_eq!(proppatch_as(&h, ALICE, "/team/b.txt", &set_tag("mine")).await.0, 207);
    // An editor's save: write a new file beside it, rename it over the old one.
    std::fs::write(h.disk("b.txt.swp"), "saved by an editor").expect("write");
    std::fs::rename(h.disk("b.txt.swp"), h.disk("b.txt")).expect("rename");
    assert_eq!(tag(&h, ALICE, "/team/b.txt").await, None);
    assert_eq!(get_as(&h, ALICE, "/team/b.txt").await, (200, b"saved by an editor".to_vec()));
}

#[tokio::test]
async fn a_property_set_after_another_program_recreated_a_file_is_kept() {
    let h = team().await;
    std::fs::write(h.disk("c.txt"), "c").expect("write");
    assert_eq!(proppatch_as(&h, ALICE, "/team/c.txt", &set_tag("old")).await.0, 207);
    std::fs::remove_file(h.disk("c.txt")).expect("remove");
    std::fs::write(h.disk("c.txt"), "new c").expect("recreate");
    assert_eq!(proppatch_as(&h, ALICE, "/team/c.txt", &set_tag("new")).await.0, 207);
    assert_eq!(tag(&h, ALICE, "/team/c.txt").await.as_deref(), Some("new"));
}

#[tokio::test]
async fn quota_available_bytes_is_the_free_space_of_the_folders_file_system() {
    // The store is capped at 10 MB; the host folder is not part of the store.
    let h = team_with("rwdl", "r", &["--quota-bytes", "10000000"]).await;
    let body =
        r#"<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop><D:quota-available-bytes/></D:prop></D:propfind>"#;
    let low = free_bytes(&h.folder());
    let (status, xml) = propfind_as(&h, ALICE, "/team/", "0", body).await;
    let high = free_bytes(&h.folder());
    assert_eq!(status, 207, "{xml}");
    let reported: u64 = multistatus(&xml)[0].ok_text("DAV:", "quota-available-bytes").parse().expect("a number");
    let slack = 256 << 20; // other tests write to the same file system meanwhile
    assert!(
        reported + slack >= low.min(high) && reported <= low.max(high) + slack,
        "reported {reported}, statvfs says {low}..{high}"
    );
    assert!(reported > 10_000_000 || low < 10_000_000, "the store's quota is not the folder's");
}

#[tokio::test]
async fn a_move_out_of_the_folder_leaves_what_it_could_not_carry() {
    let h = team().await;
    std::fs::create_dir(h.disk("d")).expect("mkdir");
    std::fs::write(h.disk("d/file.txt"), "moves").expect("write");
    mkfifo(&h.disk("d/pipe"));
    let r = h.req(ALICE, "MOVE", "/team/d/").header("Destination", h.s.url("/d/")).send().await.expect("MOVE");
    assert_eq!(r.status(), 207, "{}", r.text().await.unwrap_or_default());
    assert_eq!(get_as(&h, ALICE, "/d/file.txt").await, (200, b"moves".to_vec()));
    assert!(!h.disk("d/file.txt").exists(), "what arrived left the folder");
    assert!(h.disk("d/pipe").exists(), "what could not be carried stays");
}
