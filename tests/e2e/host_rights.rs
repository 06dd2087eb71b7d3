//! Rights, locks and client-set times on a host folder: bob (`r`) changes nothing, locks
//! hold across users, and the times clients set are the files' own.

use crate::harness::multistatus;
use crate::host_common::*;

#[tokio::test]
async fn bob_with_read_only_rights_reads_but_every_write_is_403_and_changes_nothing_on_disk() {
    let h = team().await;
    std::fs::create_dir(h.disk("dir")).expect("mkdir");
    std::fs::write(h.disk("doc.txt"), "alice's").expect("write");
    assert_eq!(get_as(&h, BOB, "/team/doc.txt").await, (200, b"alice's".to_vec()));
    assert_eq!(propfind_as(&h, BOB, "/team/", "1", ALLPROP).await.0, 207);
    let before = snapshot(&h.folder());
    let attempts: Vec<(&str, &str, Option<&str>, String)> = vec![
        ("PUT", "/team/doc.txt", None, "bob's".into()),
        ("PUT", "/team/new.txt", None, "bob's".into()),
        ("DELETE", "/team/doc.txt", None, String::new()),
        ("DELETE", "/team/dir/", None, String::new()),
        ("MKCOL", "/team/bobdir", None, String::new()),
        ("PROPPATCH", "/team/doc.txt", None, set_tag("bob")),
        ("LOCK", "/team/doc.txt", None, LOCKINFO.into()),
        ("MOVE", "/team/doc.txt", Some("/team/moved.txt"), String::new()),
        ("COPY", "/team/doc.txt", Some("/team/copied.txt"), String::new()),
    ];
    for (method, path, dest, body) in attempts {
        let mut r = h.req(BOB, method, path).body(body);
        if let Some(d) = dest {
            r = r.header("Destination", h.s.url(d));
        }
        let status = r.send().await.expect(method).status().as_u16();
        assert_eq!(status, 403, "{method} {path} by bob");
    }
    assert_eq!(snapshot(&h.folder()), before);
    assert_eq!(tag(&h, ALICE, "/team/doc.txt").await, None);
}

#[tokio::test]
async fn a_lock_by_alice_makes_bobs_put_423_until_she_unlocks() {
    let h = team_with("rwdl", "rw", &[]).await;
    std::fs::write(h.disk("doc.txt"), "v1").expect("write");
    let lock = h.req(ALICE, "LOCK", "/team/doc.txt").header("Timeout", "Second-600").body(LOCKINFO).send().await;
    let lock = lock.expect("LOCK");
    assert_eq!(lock.status(), 200);
    let token = crate::harness::header(&lock, "lock-token");
    assert!(token.starts_with('<'), "{token}");
    assert_eq!(put_as(&h, BOB, "/team/doc.txt", "bob's").await, 423);
    let stolen = h.req(BOB, "PUT", "/team/doc.txt").header("If", format!("({token})")).body("bob's").send().await;
    assert_eq!(stolen.expect("PUT").status(), 423, "a token is only good for who took it");
    assert_eq!(std::fs::read(h.disk("doc.txt")).expect("read"), b"v1");
    let (_, xml) = propfind_as(&h, BOB, "/team/doc.txt", "0", ALLPROP).await;
    assert!(xml.contains("activelock"), "bob sees the lock: {xml}");
    let mine = h.req(ALICE, "PUT", "/team/doc.txt").header("If", format!("({token})")).body("v2").send().await;
    assert_eq!(mine.expect("PUT").status(), 204);
    assert_eq!(std::fs::read(h.disk("doc.txt")).expect("read"), b"v2");
    let unlock = h.req(ALICE, "UNLOCK", "/team/doc.txt").header("Lock-Token", &token).send().await;
    assert_eq!(unlock.expect("UNLOCK").status(), 204);
    assert_eq!(put_as(&h, BOB, "/team/doc.txt", "bob's").await, 204);
    assert_eq!(std::fs::read(h.disk("doc.txt")).expect("read"), b"bob's");
}

#[tokio::test]
async fn a_lock_on_a_folder_protects_new_members_from_others() {
    let h = team_with("rwdl", "rw", &[]).await;
    std::fs::create_dir(h.disk("locked")).expect("mkdir");
    let lock = h.req(ALICE, "LOCK", "/team/locked/").header("Depth", "infinity").body(LOCKINFO).send().await;
    assert_eq!(lock.expect("LOCK").status(), 200);
    assert_eq!(put_as(&h, BOB, "/team/locked/bob.txt", "x").await, 423);
    assert!(!h.disk("locked/bob.txt").exists());
}

#[tokio::test]
async fn a_lock_on_a_new_name_makes_an_empty_file_on_disk() {
    let h = team().await;
    let r = h.req(ALICE, "LOCK", "/team/reserved.txt").body(LOCKINFO).send().await.expect("LOCK");
    assert_eq!(r.status(), 201);
    assert_eq!(std::fs::read(h.disk("reserved.txt")).expect("made"), b"");
}

#[tokio::test]
async fn proppatch_of_win32_last_modified_time_sets_the_mtime_on_disk() {
    let h = team().await;
    std::fs::write(h.disk("w.txt"), "x").expect("write");
    let body = "<?xml version=\"1.0\"?><D:propertyupdate xmlns:D=\"DAV:\" xmlns:Z=\"urn:schemas-microsoft-com:\">\
                <D:set><D:prop><Z:Win32LastModifiedTime>Fri, 27 Nov 2026 10:20:30 GMT</Z:Win32LastModifiedTime>\
                </D:prop></D:set></D:propertyupdate>";
    let (status, xml) = proppatch_as(&h, ALICE, "/team/w.txt", body).await;
    assert_eq!(status, 207);
    assert_eq!(multistatus(&xml)[0].propstats[0].status, 200, "{xml}");
    assert_eq!(mtime_secs(&h.disk("w.txt")), http_secs("Fri, 27 Nov 2026 10:20:30 GMT"));
    assert_eq!(live(&h, BOB, "/team/w.txt", "getlastmodified").await, "Fri, 27 Nov 2026 10:20:30 GMT");
}

#[tokio::test]
async fn proppatch_of_getlastmodified_sets_the_mtime_on_disk() {
    let h = team().await;
    std::fs::write(h.disk("g.txt"), "x").expect("write");
    let body = "<?xml version=\"1.0\"?><D:propertyupdate xmlns:D=\"DAV:\"><D:set><D:prop>\
                <D:getlastmodified>Thu, 02 Jan 2020 03:04:05 GMT</D:getlastmodified></D:prop></D:set></D:propertyupdate>";
    let (status, xml) = proppatch_as(&h, ALICE, "/team/g.txt", body).await;
    assert_eq!(status, 207);
    assert_eq!(multistatus(&xml)[0].propstats[0].status, 200, "{xml}");
    assert_eq!(mtime_secs(&h.disk("g.txt")), http_secs("Thu, 02 Jan 2020 03:04:05 GMT"));
}

#[tokio::test]
async fn put_with_x_oc_mtime_sets_the_mtime_on_disk() {
    let h = team().await;
    let r = h.req(ALICE, "PUT", "/team/song.ogg").header("X-OC-Mtime", "1700000000").body("ogg").send().await;
    let r = r.expect("PUT");
    assert_eq!(r.status(), 201);
    assert_eq!(crate::harness::header(&r, "x-oc-mtime"), "accepted");
    assert_eq!(mtime_secs(&h.disk("song.ogg")), 1_700_000_000);
    assert_eq!(std::fs::read(h.disk("song.ogg")).expect("read"), b"ogg");
}
