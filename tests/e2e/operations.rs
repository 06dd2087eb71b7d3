//! The operations listener (`/metrics`, `/livez`, `/readyz`), `wharf healthcheck`, the access
//! log, and FTP's graceful stop.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use prometheus_parse::{LineInfo, Scrape, Value};

use crate::harness::*;

/// GET `path` on the operations listener: status, `Content-Type` and body.
async fn ops_get(s: &Server, path: &str) -> (u16, String, String) {
    let r = http_get(format!("http://{}{path}", s.ops)).await.expect("operations request");
    let (status, content_type) = (r.status().as_u16(), header(&r, "content-type"));
    (status, content_type, text(r).await)
}

/// `/metrics`, parsed as Prometheus would; every line that is not a comment must be a sample.
async fn scrape(s: &Server) -> Scrape {
    let (status, content_type, body) = ops_get(s, "/metrics").await;
    assert_eq!(status, 200);
    assert!(content_type.starts_with("application/openmetrics-text; version=1.0.0"), "{content_type}");
    assert!(body.ends_with("# EOF\n"), "{body}");
    for line in body.lines().filter(|l| !l.starts_with('#')) {
        assert!(matches!(LineInfo::parse(line), LineInfo::Sample { .. }), "not a sample: {line:?}");
    }
    Scrape::parse(body.lines().map(|l| Ok(l.to_owned()))).expect("a Prometheus text exposition")
}

/// The value of the sample `name` whose labels include `labels`; 0 when there is none yet.
fn value(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    let matching =
        scrape.samples.iter().find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(v)));
    match matching.map(|s| &s.value) {
        None => 0.0,
        Some(Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v)) => *v,
        Some(other) => panic!("{name} is not a plain value: {other:?}"),
    }
}

/// A sample's name, some of its labels, and how much it should grow.
type Growth<'a> = (&'a str, &'a [(&'a str, &'a str)], f64);

/// Asserts that each sample of `checks` grew by exactly its amount between two scrapes.
fn assert_grew(before: &Scrape, after: &Scrape, checks: &[Growth<'_>]) {
    for (name, labels, by) in checks {
        let grew = value(after, name, labels) - value(before, name, labels);
        assert_eq!(grew, *by, "{name}{labels:?} grew by {grew}, not {by}");
    }
}

/// Polls `/readyz` until its status is `want` (at most 10 s); returns the body.
async fn readyz_until(s: &Server, want: u16) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, _, body) = ops_get(s, "/readyz").await;
        if status == want {
            return body;
        }
        assert!(Instant::now() < deadline, "/readyz stayed {status} ({body:?}), expected {want}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs `wharf healthcheck --admin-listen ADDR`: whether it succeeded, and its stderr.
fn healthcheck(addr: &str) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_wharf"))
        .args(["healthcheck", "--admin-listen", addr])
        .env_remove("WHARF_ADMIN_LISTEN")
        .output()
        .expect("run wharf healthcheck");
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

const LOCK_BODY: &str = "<?xml version=\"1.0\"?><D:lockinfo xmlns:D=\"DAV:\"><D:lockscope><D:exclusive/></D:lockscope>\
     <D:locktype><D:write/></D:locktype></D:lockinfo>";

#[tokio::test]
async fn metrics_follow_webdav_and_ftp_traffic_logins_locks_and_garbage_collection() {
    let s = Server::start();
    let before = scrape(&s).await;
    assert_eq!(put(&s, "/m.bin", vec![7u8; 1000]).await, 201);
    assert_eq!(get(&s, "/m.bin").await, (200, vec![7u8; 1000]));
    let lock = s.req("LOCK", "/m.bin").header("Timeout", "Second-600").body(LOCK_BODY).send().await.expect("LOCK");
    assert_eq!(lock.status(), 200);
    let token = header(&lock, "lock-token");
    let unlock = s.req("UNLOCK", "/m.bin").header("Lock-Token", token).send().await.expect("UNLOCK");
    assert_eq!(unlock.status(), 204);
    assert_eq!(s.req("DELETE", "/m.bin").send().await.expect("DELETE").status(), 204);
    let wrong = s.client.get(s.url("/")).header("Authorization", basic("admin", "wrong")).send().await.expect("GET");
    assert_eq!(wrong.status(), 401);
    let out = ftp_as(&s, "admin", ADMIN_PASSWORD, "stor('f.bin', b'x' * 5000)\nsay(len(retr('f.bin')))");
    assert_eq!(out, "5000\n");
    let lock = s.req("LOCK", "/f.bin").header("Timeout", "Second-600").body(LOCK_BODY).send().await.expect("LOCK");
    assert_eq!(lock.status(), 200);

    let after = scrape(&s).await;
    let webdav = |method, status| [("protocol", "webdav"), ("method", method), ("status", status)];
    let ftp = |method| [("protocol", "ftp"), ("method", method), ("status", "ok")];
    assert_grew(
        &before,
        &after,
        &[
            ("wharf_requests_total", &webdav("PUT", "201"), 1.0),
            ("wharf_requests_total", &webdav("GET", "200"), 1.0),
            ("wharf_requests_total", &webdav("GET", "401"), 1.0),
            ("wharf_requests_total", &webdav("LOCK", "200"), 2.0),
            ("wharf_requests_total", &webdav("DELETE", "204"), 1.0),
            ("wharf_request_duration_seconds_count", &[("protocol", "webdav"), ("method", "PUT")], 1.0),
            ("wharf_received_bytes_total", &[("protocol", "webdav")], 1000.0 + 2.0 * LOCK_BODY.len() as f64),
            ("wharf_requests_total", &ftp("STOR"), 1.0),
            ("wharf_requests_total", &ftp("RETR"), 1.0),
            ("wharf_received_bytes_total", &[("protocol", "ftp")], 5000.0),
            ("wharf_sent_bytes_total", &[("protocol", "ftp")], 5000.0),
            // Six authenticated WebDAV requests and one FTP login; one wrong password.
            ("wharf_logins_total", &[("result", "ok")], 7.0),
            ("wharf_logins_total", &[("result", "failed")], 1.0),
            ("wharf_locks_held", &[], 1.0),
            ("wharf_stored_bytes", &[], 5000.0),
            ("wharf_stored_blobs", &[], 1.0),
            ("wharf_gc_runs_total", &[], 1.0),
            ("wharf_gc_removed_blobs_total", &[], 1.0),
            ("wharf_gc_removed_bytes_total", &[], 1000.0),
        ],
    );
    let sent = value(&after, "wharf_sent_bytes_total", &[("protocol", "webdav")])
        - value(&before, "wharf_sent_bytes_total", &[("protocol", "webdav")]);
    assert!(sent >= 1000.0, "the GET's body at least: {sent}");
    assert!(value(&after, "wharf_http_open_connections", &[]) >= 1.0, "the client's keep-alive connection");
}

/// A large download on plain HTTP/1 leaves by `sendfile` (server/src/zero_copy.rs): all of a
/// file just written is in the page cache, so all of it is counted there.
#[tokio::test]
async fn a_large_download_is_sent_from_the_page_cache() {
    let s = Server::start();
    let body: Vec<u8> = (0..6u32 << 20).map(|i| (i.wrapping_mul(2_654_435_761) >> 5) as u8).collect();
    assert_eq!(put(&s, "/large.bin", body.clone()).await, 201);
    let before = scrape(&s).await;
    assert_eq!(get(&s, "/large.bin").await, (200, body.clone()));
    let after = scrape(&s).await;
    assert_grew(&before, &after, &[("wharf_sendfile_bytes_total", &[], body.len() as f64)]);
}

#[tokio::test]
async fn metrics_carry_no_user_name_path_or_unbounded_label() {
    let s = Server::start();
    add_user(&s, "carol-the-user", "pw", &[]);
    let carol = new_client();
    let put = carol.put(s.url("/secret-name.txt")).header("Authorization", basic("carol-the-user", "pw"));
    assert_eq!(put.body("x").send().await.expect("PUT").status(), 201);
    assert_eq!(s.req("BREW", "/coffee-pot").send().await.expect("BREW").status(), 405);
    ftp_as(&s, "carol-the-user", "pw", "stor('ftp-name.bin', b'y')");
    let after = scrape(&s).await;
    let allowed = ["protocol", "method", "status", "result", "scope", "le"];
    for sample in &after.samples {
        assert!(sample.metric.starts_with("wharf_"), "{}", sample.metric);
        for (k, v) in sample.labels.iter() {
            assert!(allowed.contains(&k.as_str()), "label {k} on {}", sample.metric);
            for private in ["carol", "secret", "name", "coffee", "BREW", "/"] {
                assert!(!v.contains(private), "{k}={v:?} on {}", sample.metric);
            }
        }
    }
    let brew = [("protocol", "webdav"), ("method", "other"), ("status", "405")];
    assert_eq!(value(&after, "wharf_requests_total", &brew), 1.0, "unknown methods share one label");
}

#[tokio::test]
async fn livez_and_readyz_answer_and_healthcheck_agrees() {
    let s = Server::start();
    assert_eq!(ops_get(&s, "/livez").await.0, 200);
    let (status, content_type, body) = ops_get(&s, "/readyz").await;
    assert_eq!((status, body.as_str()), (200, "ready\n"));
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    assert_eq!(ops_get(&s, "/nothing-here").await.0, 404);
    assert_eq!(healthcheck(&s.ops), (true, String::new()));
}

#[tokio::test]
async fn the_operations_endpoints_are_ordinary_paths_on_the_webdav_port() {
    let s = Server::start();
    assert_eq!(get(&s, "/metrics").await.0, 404);
    assert_eq!(put(&s, "/metrics", "my own file").await, 201);
    assert_eq!(get(&s, "/metrics").await, (200, b"my own file".to_vec()));
    assert_eq!(get(&s, "/readyz").await.0, 404);
}

#[tokio::test]
async fn readyz_is_503_while_another_program_holds_the_database_write_lock() {
    use sqlx::Connection;
    let s = Server::start();
    let url = format!("sqlite://{}", s.data.join("wharf.db").display());
    let mut other = sqlx::SqliteConnection::connect(&url).await.expect("open the server's database");
    sqlx::query("BEGIN EXCLUSIVE").execute(&mut other).await.expect("take the write lock");
    let reason = readyz_until(&s, 503).await;
    assert!(reason.starts_with("database: "), "{reason:?}");
    let (ok, stderr) = healthcheck(&s.ops);
    assert!(!ok && stderr.contains("not ready (503): database: "), "{stderr}");
    sqlx::query("ROLLBACK").execute(&mut other).await.expect("release");
    assert_eq!(readyz_until(&s, 200).await, "ready\n");
    assert!(healthcheck(&s.ops).0);
}

#[tokio::test]
async fn readyz_is_503_while_the_blob_store_cannot_stage_uploads() {
    let s = Server::start();
    let tmp = s.data.join("blobs").join("tmp");
    std::fs::remove_dir_all(&tmp).expect("remove tmp");
    std::fs::write(&tmp, b"not a directory").expect("a file in its place");
    let reason = readyz_until(&s, 503).await;
    assert!(reason.starts_with("blob store: "), "{reason:?}");
    std::fs::remove_file(&tmp).expect("remove the file");
    std::fs::create_dir(&tmp).expect("tmp again");
    readyz_until(&s, 200).await;
}

#[tokio::test]
async fn readyz_says_draining_after_sigterm_until_the_server_is_gone() {
    let mut s = Server::start_with(&["--grace-seconds", "20"]);
    let body = vec![b'd'; 100_000];
    let mut conn = start_upload(&s, "/slow.bin", body.len(), &body[..1000]);
    std::thread::sleep(Duration::from_millis(300));
    s.sigterm();
    let reason = readyz_until(&s, 503).await;
    assert!(reason.starts_with("draining"), "{reason:?}");
    assert_eq!(ops_get(&s, "/livez").await.0, 200, "alive while draining");
    let (ok, stderr) = healthcheck(&s.ops);
    assert!(!ok && stderr.contains("draining"), "{stderr}");
    conn.write_all(&body[1000..]).expect("the rest of the upload");
    let mut answer = String::new();
    let _ = conn.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 201 "), "{answer}");
    assert!(s.terminate(Duration::from_secs(10)), "the server exits once the upload is done");
    let (ok, stderr) = healthcheck(&s.ops);
    assert!(!ok && stderr.starts_with("wharf: not ready: cannot ask http://"), "{stderr}");
}

#[tokio::test]
async fn healthcheck_fails_when_the_operations_listener_is_off_or_silent() {
    let (ok, stderr) = healthcheck("off");
    assert!(!ok && stderr.contains("off"), "{stderr}");
    // A listener that accepts and never answers: the healthcheck gives up after its timeout.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let started = Instant::now();
    let (ok, stderr) = healthcheck(&silent.local_addr().expect("addr").to_string());
    assert!(!ok && stderr.contains("no answer"), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(6), "{:?}", started.elapsed());
}

#[tokio::test]
async fn the_access_log_has_one_line_per_request_without_credentials_or_query() {
    let tmp = tempfile::tempdir().expect("tmp");
    let log = tmp.path().join("wharf.log");
    let mut child = crate::harness::wharf(&tmp.path().join("data"))
        .args(["serve", "--listen", "127.0.0.1:0", "--ftp-listen", "127.0.0.1:0", "--admin-listen", "off"])
        .args(["--access-log", "--data"])
        .arg(tmp.path().join("data"))
        .env("WHARF_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("WHARF_LOG", "warn,wharf::access=info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("start wharf");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let (mut ftp, mut line) = (String::new(), String::new());
    let base = loop {
        line.clear();
        assert!(out.read_line(&mut line).expect("banner") > 0, "no banner");
        if let Some(addr) = line.split_whitespace().find_map(|w| w.strip_prefix("ftp://")) {
            ftp = addr.trim_end_matches('/').to_owned();
        } else if let Some(url) = line.split_whitespace().find(|w| w.starts_with("http://")) {
            break url.trim_end_matches('/').to_owned();
        }
    };
    let auth = basic("admin", ADMIN_PASSWORD);
    let client = new_client();
    let put = client.put(format!("{base}/logged.txt?token=s3cr3t-query")).header("Authorization", &auth);
    assert_eq!(put.body("12345").send().await.expect("PUT").status(), 201);
    let (host, port) = ftp.rsplit_once(':').expect("ftp address");
    let script = format!(
        "import ftplib, io\nf = ftplib.FTP(); f.connect({host:?}, {port}, timeout=20)\n\
         f.login('admin', {ADMIN_PASSWORD:?})\nf.retrbinary('RETR logged.txt', lambda b: None)\nf.quit()\n"
    );
    let py = Command::new("python3").arg("-c").arg(&script).output().expect("python3");
    assert!(py.status.success(), "{}", String::from_utf8_lossy(&py.stderr));
    let _ = child.kill();
    let _ = child.wait();
    let text = std::fs::read_to_string(&log).expect("read log");
    let lines: Vec<&str> = text.lines().filter(|l| l.contains("wharf::access")).collect();
    assert_eq!(lines.len(), 2, "{text}");
    let http = lines[0];
    for field in ["client=127.0.0.1", "method=PUT", "path=/logged.txt", "status=201", "bytes_in=5"] {
        assert!(http.contains(field), "{field} missing: {http}");
    }
    let retr = lines[1];
    for field in ["protocol=\"ftp\"", "user=admin", "command=\"RETR\"", "status=\"ok\"", "bytes=5"] {
        assert!(retr.contains(field), "{field} missing: {retr}");
    }
    for secret in ["s3cr3t", ADMIN_PASSWORD, "Basic "] {
        assert!(!text.contains(secret), "{secret} logged: {text}");
    }
}

/// A Python ftplib client driven line by line: it prints what it did, and waits on stdin
/// where the test must act first.
struct Script {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Script {
    fn start(s: &Server, code: &str) -> Script {
        let (host, port) = s.ftp.rsplit_once(':').expect("ftp address");
        let script = format!(
            "import ftplib, sys\nf = ftplib.FTP(); f.connect({host:?}, {port}, timeout=30)\n\
             f.login('admin', {ADMIN_PASSWORD:?})\n\
             def say(x): print(x, flush=True)\n\
             def wait(): sys.stdin.readline()\n{code}\n"
        );
        let mut child = Command::new("python3")
            .arg("-c")
            .arg(&script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        Script { child, stdin, stdout }
    }

    fn said(&mut self) -> String {
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("read from the script");
        line.trim().to_owned()
    }

    fn go_on(&mut self) {
        self.stdin.write_all(b"\n").and_then(|()| self.stdin.flush()).expect("write to the script");
    }
}

impl Drop for Script {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn sigterm_during_an_ftp_upload_lets_it_finish_within_the_grace_period() {
    let mut s = Server::start_with(&["--grace-seconds", "20"]);
    let mut client = Script::start(
        &s,
        "f.voidcmd('TYPE I')\nconn = f.transfercmd('STOR slow.bin')\nconn.sendall(b'a' * 100000)\n\
         say('half')\nwait()\nconn.sendall(b'b' * 100000)\nconn.close()\nsay(f.voidresp()[:3])",
    );
    assert_eq!(client.said(), "half");
    std::thread::sleep(Duration::from_millis(300));
    s.sigterm();
    std::thread::sleep(Duration::from_millis(1000));
    assert!(TcpStream::connect(&s.ftp).is_err(), "no new FTP session while draining");
    client.go_on();
    assert_eq!(client.said(), "226", "the upload in flight completes");
    let started = Instant::now();
    assert!(s.terminate(Duration::from_secs(10)), "the server exits once the upload is done");
    assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
    s.restart();
    let mut want = vec![b'a'; 100_000];
    want.extend_from_slice(&[b'b'; 100_000]);
    assert_eq!(get(&s, "/slow.bin").await, (200, want));
}

#[tokio::test]
async fn an_idle_ftp_session_does_not_delay_the_stop() {
    let mut s = Server::start_with(&["--grace-seconds", "30"]);
    let mut client = Script::start(&s, "f.pwd()\nsay('in')\nwait()");
    assert_eq!(client.said(), "in");
    let started = Instant::now();
    assert!(s.terminate(Duration::from_secs(10)), "the server exits");
    assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
    assert!(TcpStream::connect(&s.ftp).is_err());
}
