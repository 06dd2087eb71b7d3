//! Shared setup of the host-folder tests: a server with a folder of the host shared to two
//! users, requests as either of them, and looks at the disk.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use reqwest::{Method, RequestBuilder};

use crate::harness::{add_user, basic, cli, multistatus, new_client, Server};

pub const ALICE: (&str, &str) = ("alice", "alice-pass-1");
pub const BOB: (&str, &str) = ("bob", "bob-pass-1");

pub const ALLPROP: &str = r#"<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>"#;
pub const LOCKINFO: &str = r#"<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype><D:owner>e2e</D:owner></D:lockinfo>"#;

/// A server, and a folder of the host served as the share `team`.
pub struct Host {
    pub s: Server,
    /// Holds `folder` (the served folder) and `outside` (a sibling it must never reach).
    pub root: tempfile::TempDir,
}

impl Host {
    /// The served folder on disk.
    pub fn folder(&self) -> PathBuf {
        self.root.path().join("folder")
    }

    /// A path below the served folder on disk.
    pub fn disk(&self, rel: &str) -> PathBuf {
        self.folder().join(rel)
    }

    /// A sibling of the served folder, for what must stay out of reach.
    pub fn outside(&self) -> PathBuf {
        self.root.path().join("outside")
    }

    /// A request as `who`.
    pub fn req(&self, who: (&str, &str), method: &str, path: &str) -> RequestBuilder {
        as_user(&self.s, who, method, path)
    }
}

/// A request to `s` as `who` (user, password).
pub fn as_user(s: &Server, who: (&str, &str), method: &str, path: &str) -> RequestBuilder {
    let m = Method::from_bytes(method.as_bytes()).expect("method");
    new_client().request(m, s.url(path)).header("Authorization", basic(who.0, who.1))
}

/// A fresh root with an empty `folder` and `outside`.
pub fn host_root() -> tempfile::TempDir {
    let root = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(root.path().join("folder")).expect("folder");
    std::fs::create_dir(root.path().join("outside")).expect("outside");
    root
}

/// A server with alice and bob, and the share `team` serving a fresh folder of the host,
/// granted to alice with `alice_rights` and to bob with `bob_rights`.
pub async fn team_with(alice_rights: &str, bob_rights: &str, serve_args: &[&str]) -> Host {
    let s = Server::start_with(serve_args);
    let root = host_root();
    add_user(&s, ALICE.0, ALICE.1, &[]);
    add_user(&s, BOB.0, BOB.1, &[]);
    let dir = root.path().join("folder");
    cli(&s.data, &["share", "add", "team", "--host", dir.to_str().expect("utf-8 temp path")], "");
    cli(&s.data, &["share", "grant", "team", ALICE.0, alice_rights], "");
    cli(&s.data, &["share", "grant", "team", BOB.0, bob_rights], "");
    let host = Host { s, root };
    wait_for_folder(&host.s, ALICE, &dir, "/team/").await;
    wait_for_folder(&host.s, BOB, &dir, "/team/").await;
    host
}

/// alice `rwdl`, bob `r` on `team`.
pub async fn team() -> Host {
    team_with("rwdl", "r", &[]).await
}

/// Waits (up to 10 s) until `who` sees the folder `dir` of the host at `view` (ending in
/// `/`): a probe file written there on disk must be readable through the server. The
/// server picks up `wharf share`/`wharf user` changes within two seconds.
pub async fn wait_for_folder(s: &Server, who: (&str, &str), dir: &Path, view: &str) {
    let name = format!(".probe-{}", std::process::id());
    let probe = dir.join(&name);
    std::fs::write(&probe, b"probe").expect("write probe");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = as_user(s, who, "GET", &format!("{view}{name}")).send().await.expect("GET probe");
        if r.status() == 200 && r.bytes().await.expect("probe body").as_ref() == b"probe" {
            break;
        }
        assert!(Instant::now() < deadline, "{} never saw {} at {view}", who.0, dir.display());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    std::fs::remove_file(&probe).expect("remove probe");
}

/// Waits (up to 10 s) until `GET view` as `who` answers `status`.
pub async fn wait_for_status(s: &Server, who: (&str, &str), view: &str, status: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = as_user(s, who, "GET", view).send().await.expect("GET").status().as_u16();
        if got == status {
            return;
        }
        assert!(Instant::now() < deadline, "GET {view} as {} stays {got}, not {status}", who.0);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Sends and returns status and body text.
pub async fn send(rb: RequestBuilder) -> (u16, String) {
    let r = rb.send().await.expect("request");
    (r.status().as_u16(), r.text().await.expect("body"))
}

/// PROPFIND as `who`, returning status and body.
pub async fn propfind_as(h: &Host, who: (&str, &str), path: &str, depth: &str, body: &str) -> (u16, String) {
    let rb = h.req(who, "PROPFIND", path).header("Depth", depth).header("Content-Type", "application/xml");
    send(rb.body(body.to_owned())).await
}

/// PROPPATCH as `who`, returning status and body.
pub async fn proppatch_as(h: &Host, who: (&str, &str), path: &str, body: &str) -> (u16, String) {
    send(h.req(who, "PROPPATCH", path).header("Content-Type", "application/xml").body(body.to_owned())).await
}

/// The hrefs of a 207 PROPFIND answer, percent-decoded, after checking the status.
pub fn hrefs(status: u16, xml: &str) -> Vec<String> {
    assert_eq!(status, 207, "{xml}");
    multistatus(xml).iter().map(|r| decode(&r.href)).collect()
}

/// A percent-encoded path, decoded (as UTF-8, lossily).
pub fn decode(href: &str) -> String {
    percent_encoding::percent_decode_str(href).decode_utf8_lossy().into_owned()
}

/// A PROPPATCH body setting `{urn:x}tag` to `value`.
pub fn set_tag(value: &str) -> String {
    format!(
        r#"<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><x:tag xmlns:x="urn:x">{value}</x:tag></D:prop></D:set></D:propertyupdate>"#
    )
}

pub const REMOVE_TAG: &str = r#"<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:"><D:remove><D:prop><x:tag xmlns:x="urn:x"/></D:prop></D:remove></D:propertyupdate>"#;

/// `{urn:x}tag` of `path` as `who`: Some(text) when set, None when not.
pub async fn tag(h: &Host, who: (&str, &str), path: &str) -> Option<String> {
    let body =
        r#"<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop><x:tag xmlns:x="urn:x"/></D:prop></D:propfind>"#;
    let (status, xml) = propfind_as(h, who, path, "0", body).await;
    assert_eq!(status, 207, "PROPFIND {path}: {xml}");
    match multistatus(&xml)[0].prop("urn:x", "tag") {
        Some((200, p)) => Some(p.text.clone()),
        Some((404, _)) => None,
        other => panic!("{{urn:x}}tag of {path}: {other:?}"),
    }
}

/// A live property's text of `path` (Depth 0 allprop) as `who`.
pub async fn live(h: &Host, who: (&str, &str), path: &str, local: &str) -> String {
    let (status, xml) = propfind_as(h, who, path, "0", ALLPROP).await;
    assert_eq!(status, 207, "PROPFIND {path}: {xml}");
    multistatus(&xml)[0].ok_text("DAV:", local)
}

/// The modification time of a file on disk, in whole seconds since the epoch.
pub fn mtime_secs(p: &Path) -> i64 {
    std::fs::metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())).mtime()
}

pub fn inode(p: &Path) -> u64 {
    std::fs::metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())).ino()
}

/// Seconds since the epoch of an HTTP date.
pub fn http_secs(date: &str) -> i64 {
    let t = httpdate::parse_http_date(date).unwrap_or_else(|e| panic!("{date}: {e}"));
    t.duration_since(SystemTime::UNIX_EPOCH).expect("after 1970").as_secs() as i64
}

/// Sets a file's modification time on disk, as another program would.
pub fn set_mtime(p: &Path, secs: u64) {
    let f = std::fs::File::options().write(true).open(p).expect("open for times");
    f.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(secs)).expect("set mtime");
}

/// Names in a folder on disk, sorted (hidden ones included).
pub fn disk_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Every path below `dir` (not following symlinks) with its bytes (None for folders and
/// symlinks, which show their target instead), for before/after comparisons.
pub fn snapshot(dir: &Path) -> Vec<(String, String)> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
        for e in std::fs::read_dir(dir).expect("read_dir").flatten() {
            let p = e.path();
            let rel = p.strip_prefix(base).expect("below").to_string_lossy().into_owned();
            let ft = e.file_type().expect("file type");
            if ft.is_symlink() {
                out.push((rel, format!("-> {}", std::fs::read_link(&p).expect("link").display())));
            } else if ft.is_dir() {
                out.push((rel.clone() + "/", String::new()));
                walk(base, &p, out);
            } else {
                out.push((rel, String::from_utf8_lossy(&std::fs::read(&p).expect("read")).into_owned()));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// Runs `unzip` with `args`, returning stdout; panics with stderr on failure.
pub fn unzip(args: &[&str]) -> Vec<u8> {
    let out = std::process::Command::new("unzip").args(args).env("LC_ALL", "C.UTF-8").output().expect("run unzip");
    assert!(out.status.success(), "unzip {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

/// Makes a FIFO at `p`.
pub fn mkfifo(p: &Path) {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(p.as_os_str().as_bytes()).expect("no NUL");
    // SAFETY: mkfifo(3) with a valid NUL-terminated path; no memory is shared.
    let rc = unsafe { libc::mkfifo(c.as_ptr(), 0o644) };
    assert_eq!(rc, 0, "mkfifo {}: {}", p.display(), std::io::Error::last_os_error());
}

/// Free bytes for unprivileged users on the file system holding `p`.
pub fn free_bytes(p: &Path) -> u64 {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(p.as_os_str().as_bytes()).expect("no NUL");
    // SAFETY: statvfs(3) fills the zeroed struct we own; the path is NUL-terminated.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    assert_eq!(rc, 0, "statvfs {}", p.display());
    st.f_bavail as u64 * st.f_frsize as u64
}

/// PUT as `who`, returning the status.
pub async fn put_as(h: &Host, who: (&str, &str), path: &str, body: impl Into<reqwest::Body>) -> u16 {
    h.req(who, "PUT", path).body(body).send().await.expect("PUT").status().as_u16()
}

/// GET as `who`, returning status and bytes.
pub async fn get_as(h: &Host, who: (&str, &str), path: &str) -> (u16, Vec<u8>) {
    let r = h.req(who, "GET", path).send().await.expect("GET");
    (r.status().as_u16(), r.bytes().await.expect("body").to_vec())
}

/// COPY or MOVE as `who` to `to` (a path on the same server), with extra headers.
pub async fn transfer(h: &Host, who: (&str, &str), method: &str, from: &str, to: &str, extra: &[(&str, &str)]) -> u16 {
    let mut r = h.req(who, method, from).header("Destination", h.s.url(to));
    for (k, v) in extra {
        r = r.header(*k, *v);
    }
    r.send().await.expect(method).status().as_u16()
}

pub fn temp_files(dir: &std::path::Path) -> Vec<String> {
    disk_names(dir).into_iter().filter(|n| n.starts_with(".wharf-tmp-")).collect()
}
