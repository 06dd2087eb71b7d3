//! Authentication and authorisation over WebDAV: 401 for every method but OPTIONS,
//! isolation between users, read-only users, lock ownership, lockout, anonymous and
//! Digest access.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use reqwest::{Method, StatusCode};

use crate::harness::{add_user, basic, cli, get, new_client, put, Server, ADMIN_PASSWORD};

/// A request as `user` (None: no credentials at all).
async fn send(s: &Server, who: Option<(&str, &str)>, method: &str, path: &str, body: &str) -> reqwest::Response {
    let m = Method::from_bytes(method.as_bytes()).expect("method");
    let mut r = new_client().request(m, s.url(path)).body(body.to_owned());
    if let Some((u, p)) = who {
        r = r.header("Authorization", basic(u, p));
    }
    if matches!(method, "COPY" | "MOVE") {
        r = r.header("Destination", s.url("/moved.txt"));
    }
    r.send().await.expect("request")
}

const LOCKINFO: &str = r#"<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockinfo>"#;
const PROPPATCH: &str = r#"<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><x:a xmlns:x="urn:x">1</x:a></D:prop></D:set></D:propertyupdate>"#;

fn body_for(method: &str) -> &'static str {
    match method {
        "LOCK" => LOCKINFO,
        "PROPPATCH" => PROPPATCH,
        "PUT" => "changed",
        _ => "",
    }
}

const METHODS: [&str; 11] =
    ["GET", "HEAD", "PUT", "DELETE", "MKCOL", "COPY", "MOVE", "PROPFIND", "PROPPATCH", "LOCK", "UNLOCK"];

#[tokio::test]
async fn every_method_but_options_needs_credentials_and_changes_nothing_without_them() {
    let s = Server::start_with(&["--lockout-after", "1000"]);
    assert_eq!(put(&s, "/f.txt", "original").await, 201);
    for who in [None, Some(("admin", "wrong-password"))] {
        for method in METHODS {
            let path = if method == "MKCOL" { "/newdir" } else { "/f.txt" };
            let r = send(&s, who, method, path, body_for(method)).await;
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{method} as {who:?}");
            assert!(r.headers().get("www-authenticate").is_some(), "{method} without a challenge");
        }
    }
    assert_eq!(get(&s, "/f.txt").await, (200, b"original".to_vec()));
    assert_eq!(get(&s, "/moved.txt").await.0, 404);
    assert_eq!(get(&s, "/newdir/").await.0, 404);
    let lockdiscovery = send(&s, Some(("admin", ADMIN_PASSWORD)), "PROPFIND", "/f.txt", "").await;
    assert!(!lockdiscovery.text().await.expect("body").contains("activelock"));
}

#[tokio::test]
async fn options_answers_alike_for_existing_and_missing_paths_without_credentials() {
    let s = Server::start();
    assert_eq!(put(&s, "/exists.txt", "x").await, 201);
    let a = send(&s, None, "OPTIONS", "/exists.txt", "").await;
    let b = send(&s, None, "OPTIONS", "/missing/nothing.txt", "").await;
    assert_eq!(a.status(), StatusCode::OK);
    assert_eq!(a.status(), b.status());
    let strip = |r: &reqwest::Response| {
        let mut h: Vec<(String, String)> = r
            .headers()
            .iter()
            .filter(|(k, _)| *k != "date")
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
            .collect();
        h.sort();
        h
    };
    assert_eq!(strip(&a), strip(&b));
    assert_eq!(a.text().await.expect("a"), "");
    assert_eq!(b.text().await.expect("b"), "");
}

#[tokio::test]
async fn users_see_only_their_own_home() {
    let s = Server::start();
    add_user(&s, "alice", "alice-pass-1", &[]);
    add_user(&s, "bob", "bob-pass-1", &[]);
    let alice = Some(("alice", "alice-pass-1"));
    let bob = Some(("bob", "bob-pass-1"));
    assert_eq!(send(&s, alice, "PUT", "/secret.txt", "alice only").await.status(), StatusCode::CREATED);
    assert_eq!(send(&s, bob, "GET", "/secret.txt", "").await.status(), StatusCode::NOT_FOUND);
    for path in ["/home/alice/secret.txt", "/../alice/secret.txt", "/%2e%2e/alice/secret.txt"] {
        let status = send(&s, bob, "GET", path, "").await.status();
        assert!(status == StatusCode::NOT_FOUND || status == StatusCode::BAD_REQUEST, "{path}: {status}");
    }
    assert_eq!(send(&s, bob, "PUT", "/secret.txt", "bob's").await.status(), StatusCode::CREATED);
    let listing = send(&s, bob, "PROPFIND", "/", "").await.text().await.expect("body");
    assert!(!listing.contains("alice"), "{listing}");
    let mine = send(&s, alice, "GET", "/secret.txt", "").await.text().await.expect("body");
    assert_eq!(mine, "alice only");
}

#[tokio::test]
async fn a_lock_token_works_only_for_the_principal_that_took_it() {
    let s = Server::start();
    add_user(&s, "alice", "alice-pass-1", &[]);
    add_user(&s, "bob", "bob-pass-1", &[]);
    cli(&s.data, &["share", "add", "team"], "");
    cli(&s.data, &["share", "grant", "team", "alice", "rwdl"], "");
    cli(&s.data, &["share", "grant", "team", "bob", "rwdl"], "");
    let (alice, bob) = (Some(("alice", "alice-pass-1")), Some(("bob", "bob-pass-1")));
    assert_eq!(send(&s, alice, "PUT", "/team/doc.txt", "v1").await.status(), StatusCode::CREATED);
    let lock = send(&s, alice, "LOCK", "/team/doc.txt", LOCKINFO).await;
    assert_eq!(lock.status(), StatusCode::OK);
    let token = lock.headers()["lock-token"].to_str().expect("token").to_owned();
    let stolen = new_client()
        .put(s.url("/team/doc.txt"))
        .header("Authorization", basic("bob", "bob-pass-1"))
        .header("If", format!("({token})"))
        .body("bob's")
        .send()
        .await
        .expect("PUT");
    assert_eq!(stolen.status(), StatusCode::LOCKED);
    let unlock = new_client()
        .request(Method::from_bytes(b"UNLOCK").expect("m"), s.url("/team/doc.txt"))
        .header("Authorization", basic("bob", "bob-pass-1"))
        .header("Lock-Token", token)
        .send()
        .await
        .expect("UNLOCK");
    assert_eq!(unlock.status(), StatusCode::FORBIDDEN);
    assert_eq!(send(&s, bob, "GET", "/team/doc.txt", "").await.text().await.expect("body"), "v1");
}

#[tokio::test]
async fn a_read_only_user_reads_but_every_write_is_403_and_changes_nothing() {
    let s = Server::start();
    add_user(&s, "reader", "reader-pass-1", &["--read-only"]);
    cli(&s.data, &["share", "add", "docs"], "");
    cli(&s.data, &["share", "grant", "docs", "admin", "rwdl"], "");
    cli(&s.data, &["share", "grant", "docs", "reader", "rwdl"], "");
    assert_eq!(put(&s, "/docs/a.txt", "content").await, 201);
    let reader = Some(("reader", "reader-pass-1"));
    assert_eq!(send(&s, reader, "GET", "/docs/a.txt", "").await.text().await.expect("body"), "content");
    assert_eq!(send(&s, reader, "PROPFIND", "/docs/", "").await.status(), StatusCode::MULTI_STATUS);
    for method in ["PUT", "DELETE", "MOVE", "PROPPATCH", "LOCK"] {
        let status = send(&s, reader, method, "/docs/a.txt", body_for(method)).await.status();
        assert_eq!(status, StatusCode::FORBIDDEN, "{method}");
    }
    assert_eq!(send(&s, reader, "MKCOL", "/docs/new", "").await.status(), StatusCode::FORBIDDEN);
    assert_eq!(send(&s, reader, "PUT", "/own.txt", "x").await.status(), StatusCode::FORBIDDEN);
    assert_eq!(get(&s, "/docs/a.txt").await, (200, b"content".to_vec()));
    assert_eq!(get(&s, "/docs/new/").await.0, 404);
}

#[tokio::test]
async fn lockout_engages_after_repeated_failures_and_lifts_after_its_period() {
    let s = Server::start_with(&["--lockout-after", "3", "--lockout-seconds", "2"]);
    for _ in 0..3 {
        assert_eq!(send(&s, Some(("admin", "nope")), "GET", "/", "").await.status(), StatusCode::UNAUTHORIZED);
    }
    let locked = send(&s, Some(("admin", ADMIN_PASSWORD)), "PROPFIND", "/", "").await;
    assert_eq!(locked.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(locked.headers().get("retry-after").is_some());
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let after = send(&s, Some(("admin", ADMIN_PASSWORD)), "PROPFIND", "/", "").await;
    assert_eq!(after.status(), StatusCode::MULTI_STATUS);
}

#[tokio::test]
async fn anonymous_mode_reads_the_public_area_and_cannot_write() {
    let s = Server::start_with(&["--anonymous"]);
    let r = send(&s, None, "PROPFIND", "/", "").await;
    assert_eq!(r.status(), StatusCode::MULTI_STATUS);
    assert_eq!(send(&s, None, "PUT", "/x.txt", "x").await.status(), StatusCode::FORBIDDEN);
    assert_eq!(send(&s, None, "MKCOL", "/d", "").await.status(), StatusCode::FORBIDDEN);
    let wrong = send(&s, Some(("admin", "wrong")), "PROPFIND", "/", "").await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn anonymous_access_is_off_by_default() {
    let s = Server::start();
    assert_eq!(send(&s, None, "PROPFIND", "/", "").await.status(), StatusCode::UNAUTHORIZED);
}

/// curl, a real Digest client, with `--digest` and the given algorithm.
fn curl_digest(s: &Server, user: &str, password: &str, path: &str) -> String {
    let out = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "--digest", "-u"])
        .arg(format!("{user}:{password}"))
        .arg(s.url(path))
        .output()
        .expect("run curl");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn digest_authentication_works_for_users_with_digest_credentials() {
    let s = Server::start_with(&["--digest"]);
    add_user(&s, "win", "windows-pass-1", &["--digest"]);
    assert_eq!(send(&s, Some(("win", "windows-pass-1")), "PUT", "/d.txt", "x").await.status(), StatusCode::CREATED);
    assert_eq!(curl_digest(&s, "win", "windows-pass-1", "/d.txt"), "200");
    assert_eq!(curl_digest(&s, "win", "wrong", "/d.txt"), "401");
}

#[tokio::test]
async fn digest_challenge_is_offered_only_when_enabled() {
    let plain = Server::start();
    let r = send(&plain, None, "GET", "/", "").await;
    let challenges: Vec<_> = r.headers().get_all("www-authenticate").iter().collect();
    assert!(challenges.iter().all(|v| v.to_str().unwrap_or("").starts_with("Basic")));
    let digest = Server::start_with(&["--digest"]);
    let r = send(&digest, None, "GET", "/", "").await;
    assert!(r.headers().get_all("www-authenticate").iter().any(|v| v.to_str().unwrap_or("").starts_with("Digest")));
}

/// Starts `wharf serve` on `data` without WHARF_ADMIN_PASSWORD; returns the child and the
/// lines it printed up to and including the banner.
#[allow(clippy::zombie_processes)] // the caller kills and waits for the child it gets
fn serve_without_password(data: &Path) -> (std::process::Child, Vec<String>) {
    use std::io::BufRead;
    let mut child = crate::harness::wharf(data)
        .args(["serve", "--ftp-listen", "off", "--admin-listen", "off", "--listen", "127.0.0.1:0", "--data"])
        .arg(data)
        .env_remove("WHARF_ADMIN_PASSWORD")
        .env("WHARF_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start wharf");
    let mut out = std::io::BufReader::new(child.stdout.take().expect("stdout"));
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        assert!(out.read_line(&mut line).expect("read") > 0, "no banner: {lines:?}");
        let done = line.contains("http://");
        lines.push(line.trim().to_owned());
        if done {
            return (child, lines);
        }
    }
}

#[tokio::test]
async fn first_start_prints_a_generated_admin_password_once_and_it_works() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("data");
    let (mut first, lines) = serve_without_password(&data);
    let password = lines
        .iter()
        .find_map(|l| l.strip_prefix("wharf: created user admin with password "))
        .and_then(|rest| rest.split_whitespace().next())
        .expect("generated password line")
        .to_owned();
    let url = lines.last().and_then(|l| l.split_whitespace().find(|w| w.starts_with("http://"))).expect("url");
    let ok = new_client()
        .request(Method::from_bytes(b"PROPFIND").expect("m"), url)
        .header("Authorization", basic("admin", &password))
        .send()
        .await
        .expect("PROPFIND");
    assert_eq!(ok.status(), StatusCode::MULTI_STATUS);
    first.kill().expect("kill");
    first.wait().expect("wait");
    let (mut second, lines) = serve_without_password(&data);
    assert!(lines.iter().all(|l| !l.contains("password")), "printed again: {lines:?}");
    second.kill().expect("kill");
    second.wait().expect("wait");
}

#[tokio::test]
async fn logins_failures_and_lockouts_are_logged_without_passwords() {
    let tmp = tempfile::tempdir().expect("tmp");
    let log = tmp.path().join("wharf.log");
    let mut child = crate::harness::wharf(&tmp.path().join("data"))
        .args(["serve", "--ftp-listen", "off", "--admin-listen", "off", "--listen", "127.0.0.1:0"])
        .args(["--lockout-after", "2", "--data"])
        .arg(tmp.path().join("data"))
        .env("WHARF_ADMIN_PASSWORD", "Correct-Horse-7")
        .env("WHARF_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("start wharf");
    let mut banner = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().expect("stdout")), &mut banner)
        .expect("banner");
    let url = banner.split_whitespace().find(|w| w.starts_with("http://")).expect("url").to_owned();
    let propfind = |password: &'static str| {
        let url = url.clone();
        async move {
            let m = Method::from_bytes(b"PROPFIND").expect("m");
            let r = new_client().request(m, url).header("Authorization", basic("admin", password)).send().await;
            r.expect("PROPFIND").status()
        }
    };
    assert_eq!(propfind("Correct-Horse-7").await, StatusCode::MULTI_STATUS);
    assert_eq!(propfind("Wrong-Guess-1").await, StatusCode::UNAUTHORIZED);
    assert_eq!(propfind("Wrong-Guess-2").await, StatusCode::UNAUTHORIZED);
    assert_eq!(propfind("Wrong-Guess-3").await, StatusCode::TOO_MANY_REQUESTS);
    child.kill().expect("kill");
    child.wait().expect("wait");
    let text = std::fs::read_to_string(&log).expect("read log");
    assert!(text.contains("login failed"), "{text}");
    assert!(text.contains("locked out"), "{text}");
    assert!(text.lines().any(|l| l.contains("login") && l.contains("admin") && !l.contains("failed")), "{text}");
    for secret in ["Correct-Horse-7", "Wrong-Guess-1", "Wrong-Guess-2", "Wrong-Guess-3"] {
        assert!(!text.contains(secret), "the log holds a password: {text}");
    }
}
