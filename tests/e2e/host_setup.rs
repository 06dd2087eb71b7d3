//! Setting host folders up: `wharf share add --host` (and `--read-only`), `share list` and
//! `share del`, homes on host folders (`user add/set --home`, `serve --folder`), and the
//! owner and modes of what Wharf creates there (`--host-uid/-gid/-file-mode/-dir-mode`).

use std::os::unix::fs::MetadataExt;

use crate::harness::{add_user, cli, cli_output, ftp_as, Server};
use crate::host_common::*;

/// Runs `wharf ARGS --data DIR`; returns whether it succeeded.
fn cli_succeeds(data: &std::path::Path, args: &[&str], stdin: &str) -> bool {
    use std::io::Write;
    let mut child = crate::harness::wharf(data)
        .args(args)
        .arg("--data")
        .arg(data)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("run wharf");
    child.stdin.take().expect("stdin").write_all(stdin.as_bytes()).expect("write stdin");
    child.wait().expect("wait").success()
}

fn utf8(p: &std::path::Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

#[tokio::test]
async fn share_list_shows_the_host_folder_of_each_host_share() {
    let h = team().await;
    let other = host_root();
    let ro = other.path().join("folder");
    cli(&h.s.data, &["share", "add", "archive", "--host", utf8(&ro), "--read-only"], "");
    cli(&h.s.data, &["share", "add", "plain"], "");
    let out = cli_output(&h.s.data, &["share", "list"]);
    let mut lines = out.lines();
    let head = lines.next().expect("header");
    assert!(head.split_whitespace().any(|c| c == "FOLDER"), "{out}");
    let row = |name: &str| {
        out.lines().find(|l| l.split_whitespace().next() == Some(name)).unwrap_or_else(|| panic!("no {name}: {out}"))
    };
    assert!(row("team").contains(utf8(&h.folder())), "{out}");
    assert!(row("team").contains("alice:rwdl"), "{out}");
    assert!(row("archive").contains(utf8(&ro)), "{out}");
    assert!(!row("plain").contains(utf8(&h.folder())) && !row("plain").contains(utf8(&ro)), "{out}");
}

#[tokio::test]
async fn share_del_stops_serving_the_folder_and_leaves_its_files() {
    let h = team().await;
    std::fs::create_dir(h.disk("sub")).expect("mkdir");
    std::fs::write(h.disk("sub/kept.txt"), "kept").expect("write");
    std::fs::write(h.disk("top.txt"), "top").expect("write");
    let before = snapshot(&h.folder());
    cli(&h.s.data, &["share", "del", "team"], "");
    wait_for_status(&h.s, ALICE, "/team/top.txt", 404).await;
    assert_eq!(as_user(&h.s, ALICE, "GET", "/team/").send().await.expect("GET").status(), 404);
    assert_eq!(snapshot(&h.folder()), before, "the folder's files are left alone");
    assert!(!cli_output(&h.s.data, &["share", "list"]).lines().any(|l| l.starts_with("team")));
}

#[tokio::test]
async fn share_add_of_a_missing_folder_or_a_file_fails_and_adds_nothing() {
    let s = Server::start();
    let root = host_root();
    let missing = root.path().join("no-such-folder");
    let file = root.path().join("a-file");
    std::fs::write(&file, "not a folder").expect("write");
    assert!(!cli_succeeds(&s.data, &["share", "add", "ghost", "--host", utf8(&missing)], ""));
    assert!(!cli_succeeds(&s.data, &["share", "add", "flat", "--host", utf8(&file)], ""));
    assert!(!missing.exists(), "the folder is not made up");
    let list = cli_output(&s.data, &["share", "list"]);
    assert!(!list.contains("ghost") && !list.contains("flat"), "{list}");
}

#[tokio::test]
async fn user_add_with_a_missing_home_folder_fails_and_adds_no_user() {
    let s = Server::start();
    let root = host_root();
    let missing = root.path().join("nowhere");
    assert!(!cli_succeeds(
        &s.data,
        &["user", "add", "dave", "--password-stdin", "--home", utf8(&missing)],
        "dave-pass-1\n"
    ));
    assert!(!cli_output(&s.data, &["user", "list"]).contains("dave"));
}

/// A server with alice granted `rwdl` on `ro`, a read-only host folder holding `doc.txt`.
async fn read_only_share() -> (Server, tempfile::TempDir) {
    let s = Server::start();
    let root = host_root();
    let dir = root.path().join("folder");
    std::fs::write(dir.join("doc.txt"), "read me").expect("write");
    add_user(&s, ALICE.0, ALICE.1, &[]);
    cli(&s.data, &["share", "add", "ro", "--host", utf8(&dir), "--read-only"], "");
    cli(&s.data, &["share", "grant", "ro", ALICE.0, "rwdl"], "");
    wait_for_folder(&s, ALICE, &dir, "/ro/").await;
    (s, root)
}

#[tokio::test]
async fn a_read_only_host_share_refuses_every_webdav_write_even_with_rwdl() {
    let (s, root) = read_only_share().await;
    let dir = root.path().join("folder");
    let r = as_user(&s, ALICE, "GET", "/ro/doc.txt").send().await.expect("GET");
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.expect("body"), "read me");
    let before = snapshot(&dir);
    let attempts: [(&str, &str, String); 7] = [
        ("PUT", "/ro/doc.txt", "changed".into()),
        ("PUT", "/ro/new.txt", "new".into()),
        ("DELETE", "/ro/doc.txt", String::new()),
        ("MKCOL", "/ro/d", String::new()),
        ("MOVE", "/ro/doc.txt", String::new()),
        ("PROPPATCH", "/ro/doc.txt", set_tag("x")),
        ("LOCK", "/ro/doc.txt", LOCKINFO.into()),
    ];
    for (method, path, body) in attempts {
        let r = as_user(&s, ALICE, method, path).header("Destination", s.url("/ro/moved.txt")).body(body);
        assert_eq!(r.send().await.expect(method).status(), 403, "{method} {path}");
    }
    // Nor may anything come in from elsewhere.
    assert_eq!(as_user(&s, ALICE, "PUT", "/mine.txt").body("mine").send().await.expect("PUT").status(), 201);
    let copy = as_user(&s, ALICE, "COPY", "/mine.txt").header("Destination", s.url("/ro/mine.txt"));
    assert_eq!(copy.send().await.expect("COPY").status(), 403);
    assert_eq!(snapshot(&dir), before);
}

#[tokio::test]
async fn a_read_only_host_share_refuses_ftp_writes() {
    let (s, root) = read_only_share().await;
    let dir = root.path().join("folder");
    let out = ftp_as(
        &s,
        ALICE.0,
        ALICE.1,
        "f.cwd('ro')\nsay(retr('doc.txt').decode())\n\
         try:\n    stor('new.txt', b'x')\n    say('stored')\nexcept ftplib.Error as e:\n    say(str(e)[:1])\n\
         say(code('DELE doc.txt')[:1])\nsay(code('MKD d')[:1])",
    );
    assert_eq!(out, "read me\n5\n5\n5\n");
    assert_eq!(disk_names(&dir), ["doc.txt"]);
}

#[tokio::test]
async fn a_user_whose_home_is_a_host_folder_has_it_as_their_root() {
    let s = Server::start();
    let root = host_root();
    let dir = root.path().join("folder");
    std::fs::write(dir.join("already.txt"), "there").expect("write");
    add_user(&s, "carol", "carol-pass-1", &["--home", utf8(&dir)]);
    add_user(&s, ALICE.0, ALICE.1, &[]);
    let carol = ("carol", "carol-pass-1");
    wait_for_folder(&s, carol, &dir, "/").await;
    assert_eq!(as_user(&s, carol, "PUT", "/new.txt").body("carol's").send().await.expect("PUT").status(), 201);
    assert_eq!(std::fs::read(dir.join("new.txt")).expect("on disk"), b"carol's");
    assert_eq!(as_user(&s, carol, "MKCOL", "/made").send().await.expect("MKCOL").status(), 201);
    assert!(dir.join("made").is_dir());
    let r = as_user(&s, carol, "PROPFIND", "/").header("Depth", "1").body(ALLPROP).send().await.expect("PROPFIND");
    let status = r.status().as_u16();
    let mut got = hrefs(status, &r.text().await.expect("body"));
    got.sort();
    assert_eq!(got, ["/", "/already.txt", "/made/", "/new.txt"]);
    // Nobody else sees it.
    assert_eq!(as_user(&s, ALICE, "GET", "/already.txt").send().await.expect("GET").status(), 404);
    assert_eq!(disk_names(&root.path().join("outside")), Vec::<String>::new());
}

#[tokio::test]
async fn user_set_home_moves_a_users_root_to_the_folder_and_none_moves_it_back() {
    let s = Server::start();
    let root = host_root();
    let dir = root.path().join("folder");
    std::fs::write(dir.join("on-disk.txt"), "disk").expect("write");
    add_user(&s, "erin", "erin-pass-1", &[]);
    let erin = ("erin", "erin-pass-1");
    assert_eq!(as_user(&s, erin, "PUT", "/in-store.txt").body("store").send().await.expect("PUT").status(), 201);
    cli(&s.data, &["user", "set", "erin", "--home", utf8(&dir)], "");
    wait_for_folder(&s, erin, &dir, "/").await;
    assert_eq!(as_user(&s, erin, "GET", "/on-disk.txt").send().await.expect("GET").text().await.expect("body"), "disk");
    assert_eq!(as_user(&s, erin, "GET", "/in-store.txt").send().await.expect("GET").status(), 404);
    cli(&s.data, &["user", "set", "erin", "--home", "none"], "");
    wait_for_status(&s, erin, "/in-store.txt", 200).await;
    assert_eq!(as_user(&s, erin, "GET", "/on-disk.txt").send().await.expect("GET").status(), 404);
    assert_eq!(disk_names(&dir), ["on-disk.txt"], "the folder is left alone");
}

#[tokio::test]
async fn serve_folder_makes_the_folder_the_admins_root() {
    let root = host_root();
    let dir = root.path().join("folder");
    std::fs::write(dir.join("hello.txt"), "hello").expect("write");
    let s = Server::start_with(&["--folder", utf8(&dir)]);
    assert_eq!(crate::harness::get(&s, "/hello.txt").await, (200, b"hello".to_vec()));
    assert_eq!(crate::harness::put(&s, "/from-admin.txt", "admin's").await, 201);
    assert_eq!(std::fs::read(dir.join("from-admin.txt")).expect("on disk"), b"admin's");
    let (status, xml) = crate::harness::propfind(&s, "/", "1", ALLPROP).await;
    let got = hrefs(status, &xml);
    assert!(got.contains(&"/hello.txt".to_owned()) && got.contains(&"/from-admin.txt".to_owned()), "{got:?}");
}

#[tokio::test]
async fn created_files_and_folders_get_the_configured_owner_group_and_modes() {
    let args = ["--host-uid", "4321", "--host-gid", "4322", "--host-file-mode", "640", "--host-dir-mode", "750"];
    let h = team_with("rwdl", "r", &args).await;
    assert_eq!(as_user(&h.s, ALICE, "PUT", "/team/f.txt").body("f").send().await.expect("PUT").status(), 201);
    assert_eq!(as_user(&h.s, ALICE, "MKCOL", "/team/d").send().await.expect("MKCOL").status(), 201);
    ftp_as(&h.s, ALICE.0, ALICE.1, "stor('team/d/g.txt', b'g')");
    let copy = as_user(&h.s, ALICE, "COPY", "/team/f.txt").header("Destination", h.s.url("/team/d/copy.txt"));
    assert_eq!(copy.send().await.expect("COPY").status(), 201);
    for (rel, mode) in [("f.txt", 0o640), ("d", 0o750), ("d/g.txt", 0o640), ("d/copy.txt", 0o640)] {
        let m = std::fs::metadata(h.disk(rel)).expect("made");
        assert_eq!((m.uid(), m.gid()), (4321, 4322), "owner of {rel}");
        assert_eq!(m.mode() & 0o7777, mode, "mode of {rel}: {:o}", m.mode() & 0o7777);
    }
}

#[tokio::test]
async fn a_put_over_an_existing_file_keeps_the_configured_mode() {
    let h = team_with("rwdl", "r", &["--host-file-mode", "600"]).await;
    std::fs::write(h.disk("existing.txt"), "old").expect("write");
    assert_eq!(as_user(&h.s, ALICE, "PUT", "/team/existing.txt").body("new").send().await.expect("PUT").status(), 204);
    let m = std::fs::metadata(h.disk("existing.txt")).expect("there");
    assert_eq!(m.mode() & 0o7777, 0o600, "{:o}", m.mode() & 0o7777);
    assert_eq!(std::fs::read(h.disk("existing.txt")).expect("read"), b"new");
}

#[tokio::test]
async fn a_served_folder_that_is_removed_fails_requests_without_falling_back_to_the_store() {
    let h = team().await;
    std::fs::write(h.disk("x.txt"), "x").expect("write");
    std::fs::remove_dir_all(h.folder()).expect("remove the folder");
    let put = as_user(&h.s, ALICE, "PUT", "/team/new.txt").body("lost?").send().await.expect("PUT");
    assert!(!put.status().is_success(), "PUT into a vanished folder: {}", put.status());
    assert_ne!(as_user(&h.s, ALICE, "GET", "/team/new.txt").send().await.expect("GET").status(), 200);
    assert_ne!(as_user(&h.s, ALICE, "GET", "/team/x.txt").send().await.expect("GET").status(), 200);
    assert!(!h.folder().exists(), "the folder is not made again");
    // The rest of the server carries on.
    assert_eq!(as_user(&h.s, ALICE, "PUT", "/elsewhere.txt").body("ok").send().await.expect("PUT").status(), 201);
}

#[tokio::test]
async fn the_servers_own_data_directory_is_never_served() {
    let h = team().await;
    let data = h.s.data.clone();
    let above = data.parent().expect("data has a parent").to_owned();
    let own = cli_succeeds(&data, &["share", "add", "own", "--host", utf8(&data)], "");
    let holder = cli_succeeds(&data, &["share", "add", "holder", "--host", utf8(&above)], "");
    for (added, name) in [(own, "own"), (holder, "holder")] {
        if added {
            cli(&data, &["share", "grant", name, ALICE.0, "rwdl"], "");
        }
    }
    // A share added after them: once alice sees it, the server has read the others too.
    let later = host_root();
    cli(&data, &["share", "add", "later", "--host", utf8(&later.path().join("folder"))], "");
    cli(&data, &["share", "grant", "later", ALICE.0, "r"], "");
    wait_for_folder(&h.s, ALICE, &later.path().join("folder"), "/later/").await;
    for path in ["/own/wharf.db", "/holder/data/wharf.db"] {
        let r = as_user(&h.s, ALICE, "GET", path).send().await.expect("GET");
        assert_ne!(r.status(), 200, "GET {path} serves the server's own database");
    }
    let (status, xml) = propfind_as(&h, ALICE, "/holder/data/", "1", ALLPROP).await;
    assert!(status != 207 || !xml.contains("wharf.db"), "the data directory is listed: {xml}");
}

/// A server with alice granted `rwdl` on `capped`, a host folder holding at most 10,000
/// bytes, which already holds a 4,000-byte file written by another program.
async fn capped() -> (Server, tempfile::TempDir) {
    let s = Server::start();
    let root = host_root();
    let dir = root.path().join("folder");
    std::fs::write(dir.join("there.bin"), vec![1u8; 4000]).expect("write");
    add_user(&s, ALICE.0, ALICE.1, &[]);
    cli(&s.data, &["share", "add", "capped", "--host", utf8(&dir), "--quota-bytes", "10000"], "");
    cli(&s.data, &["share", "grant", "capped", ALICE.0, "rwdl"], "");
    wait_for_folder(&s, ALICE, &dir, "/capped/").await;
    (s, root)
}

#[tokio::test]
async fn a_share_with_a_quota_refuses_a_put_past_it_with_507_and_keeps_the_disk_as_it_was() {
    let (s, root) = capped().await;
    let put = |path: &'static str, n: usize| as_user(&s, ALICE, "PUT", path).body(vec![2u8; n]).send();
    assert_eq!(put("/capped/fits.bin", 5000).await.expect("PUT").status(), 201);
    let before = snapshot(&root.path().join("folder"));
    assert_eq!(put("/capped/too-much.bin", 2000).await.expect("PUT").status(), 507);
    assert_eq!(snapshot(&root.path().join("folder")), before);
    // Replacing a file counts only what it adds.
    assert_eq!(put("/capped/fits.bin", 6000).await.expect("PUT").status(), 204);
}

#[tokio::test]
async fn a_share_with_a_quota_reports_it_in_the_rfc_4331_properties() {
    let (s, _root) = capped().await;
    let body = r#"<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop><D:quota-used-bytes/><D:quota-available-bytes/></D:prop></D:propfind>"#;
    let (status, xml) = send(as_user(&s, ALICE, "PROPFIND", "/capped/").header("Depth", "0").body(body)).await;
    assert_eq!(status, 207, "{xml}");
    let r = &crate::harness::multistatus(&xml)[0];
    assert_eq!(r.ok_text("DAV:", "quota-used-bytes"), "4000");
    assert_eq!(r.ok_text("DAV:", "quota-available-bytes"), "6000");
}

#[tokio::test]
async fn share_list_shows_a_share_quota() {
    let (s, _root) = capped().await;
    let out = cli_output(&s.data, &["share", "list"]);
    assert!(out.lines().any(|l| l.starts_with("capped") && l.contains("at most 10000 bytes")), "{out}");
}

#[tokio::test]
async fn the_server_can_be_restarted_and_serves_the_folder_again() {
    let mut h = team().await;
    std::fs::write(h.disk("persist.txt"), "still here").expect("write");
    assert_eq!(proppatch_as(&h, ALICE, "/team/persist.txt", &set_tag("kept")).await.0, 207);
    h.s.restart();
    assert_eq!(get_as(&h, ALICE, "/team/persist.txt").await, (200, b"still here".to_vec()));
    assert_eq!(tag(&h, ALICE, "/team/persist.txt").await.as_deref(), Some("kept"));
}

#[tokio::test]
async fn a_folder_missing_at_start_is_served_once_it_is_back() {
    let mut h = team().await;
    std::fs::write(h.disk("a.txt"), "back").expect("write");
    h.s.kill();
    let aside = h.root.path().join("aside");
    std::fs::rename(h.folder(), &aside).expect("move the folder away");
    h.s.restart();
    assert_ne!(get_as(&h, ALICE, "/team/a.txt").await.0, 200);
    std::fs::rename(&aside, h.folder()).expect("move the folder back");
    wait_for_status(&h.s, ALICE, "/team/a.txt", 200).await;
    assert_eq!(get_as(&h, ALICE, "/team/a.txt").await, (200, b"back".to_vec()));
}

#[tokio::test]
async fn a_copy_within_a_capped_share_past_its_cap_is_507() {
    let (s, root) = capped().await;
    let copy = |to: &str| as_user(&s, ALICE, "COPY", "/capped/there.bin").header("Destination", s.url(to)).send();
    assert_eq!(copy("/capped/one.bin").await.expect("COPY").status(), 201);
    assert_eq!(copy("/capped/two.bin").await.expect("COPY").status(), 507);
    assert!(!root.path().join("folder/two.bin").exists());
}

#[tokio::test]
async fn a_folder_overlapping_the_folder_of_another_share_is_refused() {
    let h = team().await;
    std::fs::create_dir(h.disk("inner")).expect("mkdir");
    for dir in [h.folder(), h.disk("inner"), h.root.path().to_owned()] {
        assert!(!cli_succeeds(&h.s.data, &["share", "add", "twin", "--host", utf8(&dir)], ""), "{}", dir.display());
    }
    assert!(!cli_output(&h.s.data, &["share", "list"]).contains("twin"));
}
