//! FTP and WebDAV are two doors onto one tree: what one protocol stores, locks or dates,
//! the other sees. FTP is driven by Python's ftplib (a real client, standard library only).

use std::process::Command;

use crate::harness::{add_user, get, http_get, multistatus, propfind, proppatch, put, Server, ADMIN_PASSWORD};

const ALLPROP: &str = r#"<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>"#;

/// Runs `code` in Python with `f`, an `ftplib.FTP` logged in as `user` (see
/// [`crate::harness::ftp_as`]).
fn ftp(s: &Server, user: &str, password: &str, code: &str) -> String {
    crate::harness::ftp_as(s, user, password, code)
}

fn admin_ftp(s: &Server, code: &str) -> String {
    ftp(s, "admin", ADMIN_PASSWORD, code)
}

/// One property's text from a Depth 0 allprop answer.
async fn live_prop(s: &Server, path: &str, local: &str) -> String {
    let (status, xml) = propfind(s, path, "0", ALLPROP).await;
    assert_eq!(status, 207, "{xml}");
    multistatus(&xml)[0].ok_text("DAV:", local)
}

#[tokio::test]
async fn file_stored_by_ftp_has_the_same_bytes_size_and_mtime_over_webdav() {
    let s = Server::start();
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(s.data.with_extension("src"), &data).expect("write source");
    let mdtm = admin_ftp(
        &s,
        &format!(
            "f.storbinary('STOR up.bin', open({:?}, 'rb'))\nsay(f.sendcmd('MDTM up.bin'))\nsay(f.size('up.bin'))",
            s.data.with_extension("src")
        ),
    );
    let mut lines = mdtm.lines();
    let stamp = lines.next().expect("MDTM").trim_start_matches("213 ").to_owned();
    assert_eq!(lines.next(), Some("300000"));
    assert_eq!(get(&s, "/up.bin").await, (200, data));
    assert_eq!(live_prop(&s, "/up.bin", "getcontentlength").await, "300000");
    let modified = httpdate::parse_http_date(&live_prop(&s, "/up.bin", "getlastmodified").await).expect("date");
    let as_mdtm = mdtm_of(modified);
    assert_eq!(stamp, as_mdtm);
}

/// `YYYYMMDDHHMMSS` of a time, as MDTM prints it (UTC).
fn mdtm_of(t: std::time::SystemTime) -> String {
    let http = httpdate::fmt_http_date(t); // "Sun, 06 Nov 1994 08:49:37 GMT"
    let p: Vec<&str> = http.split([' ', ':']).collect();
    let month = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        .iter()
        .position(|m| *m == p[2])
        .expect("month")
        + 1;
    format!("{}{month:02}{}{}{}{}", p[3], p[1], p[4], p[5], p[6])
}

#[tokio::test]
async fn ftp_upload_has_the_etag_of_the_same_bytes_put_over_webdav() {
    let s = Server::start();
    admin_ftp(&s, "stor('a.txt', b'same bytes either way')");
    assert_eq!(put(&s, "/b.txt", "same bytes either way").await, 201);
    let a = live_prop(&s, "/a.txt", "getetag").await;
    assert!(a.starts_with('"') && a.len() > 2, "{a}");
    assert_eq!(a, live_prop(&s, "/b.txt", "getetag").await);
}

#[tokio::test]
async fn webdav_put_is_readable_by_retr() {
    let s = Server::start();
    assert_eq!(put(&s, "/from-dav.txt", "written over WebDAV").await, 201);
    let out = admin_ftp(&s, "say(retr('from-dav.txt').decode())");
    assert_eq!(out.trim(), "written over WebDAV");
}

#[tokio::test]
async fn windows_set_modification_time_shows_in_mdtm() {
    let s = Server::start();
    assert_eq!(put(&s, "/w.txt", "x").await, 201);
    let body = "<?xml version=\"1.0\"?><D:propertyupdate xmlns:D=\"DAV:\" xmlns:Z=\"urn:schemas-microsoft-com:\">\
                <D:set><D:prop><Z:Win32LastModifiedTime>Fri, 27 Nov 2026 10:20:30 GMT</Z:Win32LastModifiedTime>\
                </D:prop></D:set></D:propertyupdate>";
    assert_eq!(proppatch(&s, "/w.txt", body).await.0, 207);
    let out = admin_ftp(&s, "say(f.sendcmd('MDTM w.txt'))\nsay([fa['modify'] for n, fa in f.mlsd() if n == 'w.txt'])");
    assert_eq!(out, "213 20261127102030\n['20261127102030']\n");
}

#[tokio::test]
async fn ftp_rename_is_a_move_that_keeps_dead_properties() {
    let s = Server::start();
    assert_eq!(put(&s, "/old.txt", "x").await, 201);
    let body = r#"<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><x:tag xmlns:x="urn:x">kept</x:tag></D:prop></D:set></D:propertyupdate>"#;
    assert_eq!(proppatch(&s, "/old.txt", body).await.0, 207);
    admin_ftp(&s, "f.rename('old.txt', 'new.txt')");
    assert_eq!(get(&s, "/old.txt").await.0, 404);
    let (_, xml) = propfind(&s, "/new.txt", "0", ALLPROP).await;
    assert_eq!(multistatus(&xml)[0].ok_text("urn:x", "tag"), "kept");
}

/// A WebDAV lock by one user refuses another user's STOR, DELE and rename over FTP.
#[tokio::test]
async fn webdav_lock_by_one_user_blocks_ftp_writes_by_another() {
    let s = Server::start();
    add_user(&s, "bob", "bob-secret-1", &["--admin"]);
    assert_eq!(put(&s, "/public/shared.txt", "original").await, 201);
    let lockinfo = r#"<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype><D:owner>admin</D:owner></D:lockinfo>"#;
    let r = s.req("LOCK", "/public/shared.txt").header("Depth", "0").body(lockinfo).send().await.expect("LOCK");
    assert_eq!(r.status().as_u16(), 200);
    let out = ftp(
        &s,
        "bob",
        "bob-secret-1",
        "f.cwd('public')\n\
         try:\n    stor('shared.txt', b'overwritten')\n    say('stored')\nexcept ftplib.Error as e:\n    say(str(e)[:3])\n\
         say(code('DELE shared.txt'))\n\
         say(code('RNFR shared.txt'))\n\
         say(code('RNTO moved.txt'))",
    );
    assert_eq!(out, "450\n450\n350\n450\n", "STOR, DELE, RNFR, RNTO");
    assert_eq!(get(&s, "/public/shared.txt").await, (200, b"original".to_vec()));
}

#[tokio::test]
async fn lock_holder_is_refused_over_ftp_too_without_the_token() {
    // FTP can't submit a lock token, so the lock's owner can't write over FTP either:
    // the lock protects the file until it is released.
    let s = Server::start();
    assert_eq!(put(&s, "/mine.txt", "v1").await, 201);
    let lockinfo = r#"<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockinfo>"#;
    let r = s.req("LOCK", "/mine.txt").body(lockinfo).send().await.expect("LOCK");
    assert_eq!(r.status().as_u16(), 200);
    let out = admin_ftp(&s, "try:\n    stor('mine.txt', b'v2')\nexcept ftplib.Error as e:\n    say(str(e)[:3])");
    assert_eq!(out, "450\n");
}

#[tokio::test]
async fn interrupted_stor_keeps_the_previous_content() {
    let s = Server::start();
    assert_eq!(put(&s, "/keep.txt", "previous content").await, 201);
    // Send part of a body, then reset the data connection (SO_LINGER 0): the server sees an
    // error, not an end of file, and must not commit. The pause lets the server take the data
    // connection first: reset while still queued, it vanishes, and libunftp waits for it.
    admin_ftp(
        &s,
        "conn = f.transfercmd('STOR keep.txt')\n\
         conn.sendall(b'partial' * 10000)\n\
         time.sleep(1)\n\
         conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))\n\
         conn.close()\n\
         try:\n    f.voidresp()\nexcept ftplib.Error as e:\n    say(str(e)[:3])",
    );
    assert_eq!(get(&s, "/keep.txt").await, (200, b"previous content".to_vec()));
}

#[tokio::test]
async fn rest_then_stor_resumes_an_upload() {
    let s = Server::start();
    assert_eq!(put(&s, "/r.txt", "hello, wo").await, 201);
    admin_ftp(&s, "f.storbinary('STOR r.txt', io.BytesIO(b'world!'), rest=7)");
    assert_eq!(get(&s, "/r.txt").await, (200, b"hello, world!".to_vec()));
}

#[tokio::test]
async fn appe_appends_to_the_file() {
    let s = Server::start();
    assert_eq!(put(&s, "/log.txt", "one\n").await, 201);
    admin_ftp(&s, "f.storbinary('APPE log.txt', io.BytesIO(b'two\\n'))");
    assert_eq!(get(&s, "/log.txt").await, (200, b"one\ntwo\n".to_vec()));
}

#[tokio::test]
async fn mlst_of_a_relative_path_is_taken_from_the_working_directory() {
    let s = Server::start();
    assert_eq!(crate::harness::mkcol(&s, "/sub").await, 201);
    assert_eq!(put(&s, "/sub/inner.txt", "12345").await, 201);
    let out = admin_ftp(&s, "f.cwd('sub')\nsay(f.sendcmd('MLST inner.txt'))");
    assert!(out.contains("size=5;"), "{out}");
}

#[tokio::test]
async fn read_only_user_cannot_store() {
    let s = Server::start();
    add_user(&s, "reader", "reader-secret-1", &["--read-only"]);
    let out = ftp(&s, "reader", "reader-secret-1", "say(code('MKD d'))\nsay(len(f.nlst()))");
    assert_eq!(out, "550\n0\n");
}

#[tokio::test]
async fn users_see_only_their_own_tree_over_ftp() {
    let s = Server::start();
    add_user(&s, "carol", "carol-secret-1", &[]);
    assert_eq!(put(&s, "/admin-only.txt", "secret").await, 201);
    let out = ftp(
        &s,
        "carol",
        "carol-secret-1",
        "f.cwd('/../../..')\nsay(f.nlst())\nsay(code('SIZE /../admin-only.txt'))\nsay(code('SIZE ../../home/admin/admin-only.txt'))",
    );
    assert_eq!(out, "[]\n550\n550\n");
}

#[tokio::test]
async fn ftp_and_webdav_share_the_failed_login_guard() {
    let s = Server::start_with(&["--lockout-after", "2"]);
    let (host, port) = s.ftp.rsplit_once(':').expect("ftp address");
    let script = format!(
        "import ftplib\n\
         for pw in ['bad1', 'bad2', {ADMIN_PASSWORD:?}]:\n\
         \x20   f = ftplib.FTP(); f.connect({host:?}, {port}, timeout=30)\n\
         \x20   try:\n        f.login('admin', pw); print('ok')\n\
         \x20   except ftplib.error_perm as e:\n        print(str(e)[:3])\n"
    );
    let out = Command::new("python3").arg("-c").arg(&script).output().expect("python3");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "530\n530\n530\n");
    // The lockout covers WebDAV too, password right or not.
    assert_eq!(get(&s, "/").await.0, 429);
}

#[tokio::test]
async fn ftp_can_be_turned_off() {
    let s = Server::start_with(&["--ftp-listen", "off"]);
    assert!(s.ftp.is_empty(), "FTP address announced: {}", s.ftp);
    assert_eq!(get(&s, "/").await.0, 200);
}

#[tokio::test]
async fn sigterm_stops_ftp_and_webdav_together() {
    let mut s = Server::start();
    // An idle FTP session must not keep the process alive.
    let mut control = std::net::TcpStream::connect(&s.ftp).expect("connect FTP");
    let mut greeting = [0u8; 3];
    std::io::Read::read_exact(&mut control, &mut greeting).expect("greeting");
    assert_eq!(&greeting, b"220");
    assert!(s.terminate(std::time::Duration::from_secs(15)), "still running 15 s after SIGTERM");
    assert!(std::net::TcpStream::connect(&s.ftp).is_err(), "FTP still accepts");
    assert!(http_get(s.url("/")).await.is_err(), "HTTP still accepts");
}

#[tokio::test]
async fn site_utime_sets_the_modification_time_webdav_shows() {
    let s = Server::start();
    assert_eq!(put(&s, "/a file.txt", "x").await, 201);
    assert_eq!(put(&s, "/b.txt", "y").await, 201);
    let out = admin_ftp(
        &s,
        "say(f.sendcmd('SITE UTIME 20200102030405 a file.txt')[:3])\n\
         say(f.sendcmd('SITE UTIME b.txt 20000101000000 20210304050607 20000101000000 UTC')[:3])\n\
         say(code('SITE UTIME 20200102030405 missing.txt'))\n\
         say(code('SITE UTIME yesterday b.txt'))\n\
         say(f.sendcmd('MDTM b.txt'))",
    );
    assert_eq!(out, "200\n200\n550\n501\n213 20210304050607\n");
    assert_eq!(live_prop(&s, "/a%20file.txt", "getlastmodified").await, "Thu, 02 Jan 2020 03:04:05 GMT");
}

/// Resuming keeps the bytes already there, so it needs the read right as well as write.
#[tokio::test]
async fn resumed_upload_needs_the_read_right() {
    let s = Server::start();
    add_user(&s, "dora", "dora-secret-1", &[]);
    crate::harness::cli(&s.data, &["share", "add", "drop"], "");
    crate::harness::cli(&s.data, &["share", "grant", "drop", "dora", "w"], "");
    let out = ftp(
        &s,
        "dora",
        "dora-secret-1",
        "stor('drop/box.txt', b'first')\n\
         try:\n    f.storbinary('STOR drop/box.txt', io.BytesIO(b'more'), rest=5)\n    say('resumed')\n\
         except ftplib.Error as e:\n    say(str(e)[:3])",
    );
    assert_eq!(out, "550\n");
}
