//! `wharf user ...` and `wharf share ...` on a data directory: alone, and beside a running
//! server, whose logins must follow the changes and whose uploads must not be disturbed.

use std::io::Write;
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use dav_model::identity::password::verify_password;

use crate::harness::{basic, Server};

/// Runs `wharf ARGS --data DATA`, feeding `stdin` when given (else stdin is /dev/null).
fn wharf(data: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = crate::harness::wharf(data)
        .args(args)
        .arg("--data")
        .arg(data)
        .env("WHARF_LOG", "warn")
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run wharf");
    if let Some(text) = stdin {
        child.stdin.take().expect("stdin").write_all(text.as_bytes()).expect("write stdin");
    }
    child.wait_with_output().expect("wait for wharf")
}

/// Runs a command that must succeed and returns its standard output.
fn ok(data: &Path, args: &[&str], stdin: Option<&str>) -> String {
    let out = wharf(data, args, stdin);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "wharf {args:?} failed: {stderr}");
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// Runs a command that must fail with exit code 1 and returns its standard error.
fn fails(data: &Path, args: &[&str], stdin: Option<&str>) -> String {
    let out = wharf(data, args, stdin);
    assert_eq!(out.status.code(), Some(1), "wharf {args:?} should fail: {out:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The stored password hash of `user`, read straight from the database.
async fn stored_hash(data: &Path, user: &str) -> String {
    crate::harness::db_value(data, "SELECT password_hash FROM users WHERE name = $1", Some(user))
        .await
        .expect("user row")
}

/// The line of a table whose first column is `name`.
fn row<'a>(table: &'a str, name: &str) -> &'a str {
    table.lines().find(|l| l.split_whitespace().next() == Some(name)).unwrap_or_else(|| panic!("{name} in {table}"))
}

#[tokio::test]
async fn users_and_shares_round_trip_on_a_fresh_directory() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let data = tmp.path().join("data");
    ok(&data, &["user", "add", "alice", "--password-stdin", "--digest"], Some("first pw\n"));
    ok(&data, &["user", "add", "bob", "--read-only", "--password-stdin"], Some("bobs\r\n"));
    assert!(verify_password(&stored_hash(&data, "alice").await, "first pw"));
    assert!(verify_password(&stored_hash(&data, "bob").await, "bobs"), "CRLF is not part of the password");
    assert!(fails(&data, &["user", "add", "alice", "--password-stdin"], Some("x\n")).contains("already exists"));
    assert!(fails(&data, &["user", "add", ".hidden", "--password-stdin"], Some("x\n")).contains("invalid user name"));
    assert!(fails(&data, &["user", "add", "carol", "--password-stdin"], Some("\n")).contains("empty"));

    ok(&data, &["share", "add", "team"], None);
    ok(&data, &["share", "grant", "team", "alice", "rwl"], None);
    ok(&data, &["share", "grant", "team", "bob", "r"], None);
    assert!(fails(&data, &["share", "grant", "team", "nobody", "r"], None).contains("no user named nobody"));
    assert!(fails(&data, &["share", "grant", "nothing", "bob", "r"], None).contains("no share named nothing"));
    assert!(fails(&data, &["share", "grant", "team", "bob", "rx"], None).contains("unknown right"));
    let shares = ok(&data, &["share", "list"], None);
    assert!(row(&shares, "team").contains("alice:rwl, bob:r"), "{shares}");

    let users = ok(&data, &["user", "list"], None);
    assert!(row(&users, "NAME").contains("FLAGS"), "{users}");
    assert!(row(&users, "alice").contains("digest") && row(&users, "alice").contains("team:rwl"), "{users}");
    assert!(row(&users, "bob").contains("read-only"), "{users}");

    ok(&data, &["share", "revoke", "team", "bob"], None);
    assert!(fails(&data, &["share", "revoke", "team", "bob"], None).contains("no grant"));
    ok(&data, &["user", "set", "bob", "--read-only", "false", "--admin", "true"], None);
    let users = ok(&data, &["user", "list"], None);
    assert!(row(&users, "bob").contains("admin") && !row(&users, "bob").contains("read-only"), "{users}");
    assert!(fails(&data, &["user", "set", "bob"], None).contains("nothing to change"));

    ok(&data, &["user", "passwd", "alice", "--password-stdin"], Some("second pw\n"));
    assert!(verify_password(&stored_hash(&data, "alice").await, "second pw"));
    assert!(!row(&ok(&data, &["user", "list"], None), "alice").contains("digest"), "no --digest drops the HA1");

    ok(&data, &["user", "del", "bob"], None);
    assert!(!ok(&data, &["user", "list"], None).contains("bob"));
    assert!(fails(&data, &["user", "del", "bob"], None).contains("no user named bob"));
    assert!(fails(&data, &["user", "passwd", "bob", "--password-stdin"], Some("x\n")).contains("no user named bob"));
    ok(&data, &["share", "del", "team"], None);
    assert!(fails(&data, &["share", "del", "team"], None).contains("no share named team"));
}

#[tokio::test]
async fn a_password_is_never_read_from_a_non_terminal_unless_asked() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let data = tmp.path().join("data");
    let err = fails(&data, &["user", "add", "alice"], None);
    assert!(err.contains("--password-stdin"), "{err}");
    assert!(!ok(&data, &["user", "list"], None).contains("alice"));
}

/// Sends a PUT as `user`, returning the status.
async fn put_as(s: &Server, user: &str, password: &str, path: &str, body: &'static str) -> u16 {
    let req = s.req("PUT", path).header("Authorization", basic(user, password)).body(body);
    req.send().await.expect("PUT").status().as_u16()
}

/// Polls `f` every 100 ms until it returns `want`, for up to five seconds (the server
/// picks up changes made by another process within two).
async fn eventually<F, Fut>(what: &str, want: u16, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = u16>,
{
    let mut last = 0;
    for _ in 0..50 {
        last = f().await;
        if last == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what}: expected {want}, last got {last}");
}

#[tokio::test]
async fn administration_beside_a_running_server_applies_without_a_restart() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let data = tmp.path().join("data");
    let server = Server::start_in(&data, &[]);
    // Stands for an upload in progress: the administration commands must leave it alone.
    let upload = data.join("blobs").join("tmp").join("in-flight.tmp");
    std::fs::write(&upload, b"partial").expect("fake upload");

    ok(&data, &["user", "add", "carol", "--password-stdin"], Some("carol pw\n"));
    eventually("carol can log in", 201, || put_as(&server, "carol", "carol pw", "/hello.txt", "hi")).await;

    ok(&data, &["share", "add", "team"], None);
    ok(&data, &["share", "grant", "team", "carol", "rw"], None);
    eventually("carol sees the share", 201, || put_as(&server, "carol", "carol pw", "/team/plan.txt", "p")).await;
    assert!(ok(&data, &["user", "list"], None).contains("team:rw"));

    ok(&data, &["user", "passwd", "carol", "--password-stdin"], Some("new pw\n"));
    eventually("the old password stops working", 401, || put_as(&server, "carol", "carol pw", "/probe.txt", "a")).await;
    assert_eq!(put_as(&server, "carol", "new pw", "/a.txt", "a").await, 201);

    ok(&data, &["user", "del", "carol"], None);
    eventually("a deleted user is refused", 401, || put_as(&server, "carol", "new pw", "/b.txt", "b")).await;
    assert!(upload.exists(), "an administration command removed an upload in progress");
    drop(server);
}
