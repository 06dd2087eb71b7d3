//! A folder of the host over FTP (Python's ftplib), beside WebDAV: what FTP stores is on
//! disk, what other programs write shows at once, times set over FTP are the file's, and
//! WebDAV locks and rights hold on the FTP side too.

use crate::harness::ftp_as;
use crate::host_common::*;

fn alice_ftp(h: &Host, code: &str) -> String {
    ftp_as(&h.s, ALICE.0, ALICE.1, code)
}

#[tokio::test]
async fn a_file_stored_by_ftp_is_on_disk_with_its_bytes() {
    let h = team().await;
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let src = h.root.path().join("upload.src");
    std::fs::write(&src, &data).expect("write source");
    alice_ftp(&h, &format!("f.storbinary('STOR team/up.bin', open({src:?}, 'rb'))"));
    assert_eq!(std::fs::read(h.disk("up.bin")).expect("stored"), data);
    assert_eq!(disk_names(&h.folder()), ["up.bin"], "no temporary file is left behind");
}

#[tokio::test]
async fn site_utime_sets_the_mtime_on_disk() {
    let h = team().await;
    std::fs::write(h.disk("t.txt"), "x").expect("write");
    let out =
        alice_ftp(&h, "f.cwd('team')\nsay(code('SITE UTIME 20200102030405 t.txt'))\nsay(f.sendcmd('MDTM t.txt'))");
    assert_eq!(out, "200\n213 20200102030405\n");
    assert_eq!(mtime_secs(&h.disk("t.txt")), http_secs("Thu, 02 Jan 2020 03:04:05 GMT"));
}

#[tokio::test]
async fn mdtm_and_mlsd_show_the_mtime_set_on_disk() {
    let h = team().await;
    std::fs::write(h.disk("old.txt"), "x").expect("write");
    set_mtime(&h.disk("old.txt"), 1_234_567_890);
    let out = alice_ftp(
        &h,
        "f.cwd('team')\nsay(f.sendcmd('MDTM old.txt'))\nsay([fa['modify'] for n, fa in f.mlsd() if n == 'old.txt'])",
    );
    assert_eq!(out, "213 20090213233130\n['20090213233130']\n");
}

#[tokio::test]
async fn a_file_written_on_disk_shows_in_mlsd_size_and_retr_at_once() {
    let h = team().await;
    let before = alice_ftp(&h, "say(sorted(n for n, _ in f.mlsd('team') if n not in ('.', '..')))");
    assert_eq!(before, "[]\n");
    std::fs::write(h.disk("dropped.txt"), "from another program").expect("write");
    let out = alice_ftp(
        &h,
        "say(sorted(n for n, _ in f.mlsd('team') if n not in ('.', '..')))\n\
         say(f.size('team/dropped.txt'))\n\
         say(retr('team/dropped.txt').decode())",
    );
    assert_eq!(out, "['dropped.txt']\n20\nfrom another program\n");
}

#[tokio::test]
async fn a_file_deleted_on_disk_is_gone_over_ftp_at_once() {
    let h = team().await;
    std::fs::write(h.disk("brief.txt"), "here").expect("write");
    assert_eq!(alice_ftp(&h, "say(f.size('team/brief.txt'))"), "4\n");
    std::fs::remove_file(h.disk("brief.txt")).expect("remove");
    assert_eq!(alice_ftp(&h, "say(code('SIZE team/brief.txt'))"), "550\n");
}

#[tokio::test]
async fn mkd_rmd_and_dele_change_the_disk() {
    let h = team().await;
    std::fs::write(h.disk("gone.txt"), "x").expect("write");
    let out = alice_ftp(&h, "f.cwd('team')\nsay(code('MKD made'))\nsay(code('DELE gone.txt'))");
    assert_eq!(out, "257\n250\n");
    assert!(h.disk("made").is_dir());
    assert!(!h.disk("gone.txt").exists());
    assert_eq!(alice_ftp(&h, "say(code('RMD team/made'))"), "250\n");
    assert!(!h.disk("made").exists());
}

#[tokio::test]
async fn an_ftp_rename_within_the_folder_keeps_the_inode_and_dead_properties() {
    let h = team().await;
    std::fs::write(h.disk("old.txt"), "renamed").expect("write");
    let ino = inode(&h.disk("old.txt"));
    assert_eq!(proppatch_as(&h, ALICE, "/team/old.txt", &set_tag("kept")).await.0, 207);
    alice_ftp(&h, "f.rename('team/old.txt', 'team/new.txt')");
    assert!(!h.disk("old.txt").exists());
    assert_eq!(inode(&h.disk("new.txt")), ino);
    assert_eq!(tag(&h, ALICE, "/team/new.txt").await.as_deref(), Some("kept"));
}

#[tokio::test]
async fn an_interrupted_stor_leaves_the_old_file_on_disk() {
    let h = team().await;
    std::fs::write(h.disk("keep.txt"), "previous content").expect("write");
    // Part of a body, then a reset of the data connection (SO_LINGER 0): an error, not an
    // end. The pause lets the server start reading first: once, on a loaded machine, a reset
    // sent at once left the STOR unanswered for 20 s (libunftp seemingly still waiting for
    // the data connection; not reproduced since, so noted rather than fixed).
    alice_ftp(
        &h,
        "conn = f.transfercmd('STOR team/keep.txt')\n\
         conn.sendall(b'partial' * 10000)\n\
         time.sleep(0.5)\n\
         conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))\n\
         conn.close()\n\
         try:\n    f.voidresp()\nexcept ftplib.Error as e:\n    say(str(e)[:3])",
    );
    assert_eq!(std::fs::read(h.disk("keep.txt")).expect("read"), b"previous content");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while disk_names(&h.folder()) != ["keep.txt"] {
        assert!(std::time::Instant::now() < deadline, "left behind: {:?}", disk_names(&h.folder()));
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn bob_with_read_only_rights_retrieves_but_cannot_store_delete_or_rename() {
    let h = team().await;
    std::fs::write(h.disk("doc.txt"), "alice's").expect("write");
    let out = ftp_as(
        &h.s,
        BOB.0,
        BOB.1,
        "f.cwd('team')\nsay(retr('doc.txt').decode())\n\
         try:\n    stor('doc.txt', b'bob')\n    say('stored')\nexcept ftplib.Error as e:\n    say(str(e)[:3])\n\
         try:\n    stor('new.txt', b'bob')\n    say('stored')\nexcept ftplib.Error as e:\n    say(str(e)[:3])\n\
         say(code('DELE doc.txt'))\nsay(code('MKD d'))\nsay(code('RNFR doc.txt'))\nsay(code('RNTO x.txt'))",
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "alice's");
    for (what, got) in ["STOR", "STOR new", "DELE", "MKD"].iter().zip(&lines[1..5]) {
        assert!(got.starts_with('5'), "{what} by bob: {got} ({out})");
    }
    assert!(lines[6].starts_with('5'), "RNTO by bob: {out}");
    assert_eq!(disk_names(&h.folder()), ["doc.txt"]);
    assert_eq!(std::fs::read(h.disk("doc.txt")).expect("read"), b"alice's");
}

#[tokio::test]
async fn a_webdav_lock_by_alice_refuses_bobs_stor_dele_and_rename_with_450() {
    let h = team_with("rwdl", "rwd", &[]).await;
    std::fs::write(h.disk("shared.txt"), "original").expect("write");
    let r = h.req(ALICE, "LOCK", "/team/shared.txt").body(LOCKINFO).send().await.expect("LOCK");
    assert_eq!(r.status(), 200);
    let out = ftp_as(
        &h.s,
        BOB.0,
        BOB.1,
        "f.cwd('team')\n\
         try:\n    stor('shared.txt', b'overwritten')\n    say('stored')\nexcept ftplib.Error as e:\n    say(str(e)[:3])\n\
         say(code('DELE shared.txt'))\nsay(code('RNFR shared.txt'))\nsay(code('RNTO moved.txt'))",
    );
    assert_eq!(out, "450\n450\n350\n450\n", "STOR, DELE, RNFR, RNTO");
    assert_eq!(std::fs::read(h.disk("shared.txt")).expect("read"), b"original");
    assert_eq!(disk_names(&h.folder()), ["shared.txt"]);
}

#[tokio::test]
async fn rest_and_appe_continue_a_file_on_disk() {
    let h = team().await;
    std::fs::write(h.disk("r.txt"), "hello, wo").expect("write");
    std::fs::write(h.disk("log.txt"), "one\n").expect("write");
    alice_ftp(
        &h,
        "f.storbinary('STOR team/r.txt', io.BytesIO(b'world!'), rest=7)\n\
         f.storbinary('APPE team/log.txt', io.BytesIO(b'two\\n'))",
    );
    assert_eq!(std::fs::read(h.disk("r.txt")).expect("read"), b"hello, world!");
    assert_eq!(std::fs::read(h.disk("log.txt")).expect("read"), b"one\ntwo\n");
}

#[tokio::test]
async fn a_file_stored_over_ftp_is_served_over_webdav_with_the_same_bytes_and_time() {
    let h = team().await;
    alice_ftp(&h, "stor('team/both.txt', b'one tree')\nsay(code('SITE UTIME 20210304050607 team/both.txt'))");
    let r = h.req(BOB, "GET", "/team/both.txt").send().await.expect("GET");
    assert_eq!(r.status(), 200);
    assert_eq!(crate::harness::header(&r, "last-modified"), "Thu, 04 Mar 2021 05:06:07 GMT");
    assert_eq!(r.text().await.expect("body"), "one tree");
}

#[tokio::test]
async fn a_user_whose_home_is_a_host_folder_sees_it_as_the_ftp_root() {
    let s = crate::harness::Server::start();
    let root = host_root();
    let dir = root.path().join("folder");
    std::fs::write(dir.join("at-root.txt"), "root file").expect("write");
    crate::harness::add_user(&s, "carol", "carol-pass-1", &["--home", dir.to_str().expect("utf-8")]);
    wait_for_folder(&s, ("carol", "carol-pass-1"), &dir, "/").await;
    let out = ftp_as(
        &s,
        "carol",
        "carol-pass-1",
        "say(sorted(f.nlst()))\nstor('from-ftp.txt', b'ftp')\nf.cwd('..')\nsay(sorted(f.nlst()))",
    );
    assert_eq!(out, "['at-root.txt']\n['at-root.txt', 'from-ftp.txt']\n");
    assert_eq!(std::fs::read(dir.join("from-ftp.txt")).expect("stored"), b"ftp");
    assert_eq!(disk_names(&root.path().join("outside")), Vec::<String>::new());
}
