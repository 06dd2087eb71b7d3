//! HTTP measurements and reference servers shared by the WebDAV benchmarks; each benchmark
//! uses part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{stream, StreamExt};
use reqwest::{Client, Method};

/// Concurrent connections for the small-request figures.
pub const CONCURRENCY: usize = 16;

/// The admin password the benchmark gives the Wharf instances it starts.
pub const PASSWORD: &str = "bench-admin-password";

pub fn client(admin_password: Option<&str>) -> Client {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(p) = admin_password {
        use base64::Engine;
        let token = base64::engine::general_purpose::STANDARD.encode(format!("admin:{p}"));
        headers.insert(reqwest::header::AUTHORIZATION, format!("Basic {token}").parse().expect("header"));
    }
    // reqwest has rustls without a provider (see backends/Cargo.toml): ring, installed here.
    let _ = rustls::crypto::ring::default_provider().install_default();
    Client::builder().pool_max_idle_per_host(64).default_headers(headers).build().expect("client")
}

pub async fn send(client: &Client, method: &str, url: &str) -> reqwest::StatusCode {
    let m = Method::from_bytes(method.as_bytes()).expect("method");
    client.request(m, url).send().await.expect("request").status()
}

pub fn rate(n: usize, t: Duration) -> f64 {
    n as f64 / t.as_secs_f64()
}

pub async fn put_small(client: &Client, coll: &str, n: usize) -> f64 {
    let start = Instant::now();
    stream::iter(0..n)
        .map(|i| {
            // Each body its own: identical ones would be stored once by Wharf.
            let mut body = vec![(i % 251) as u8; 4096];
            body[..8].copy_from_slice(&(i as u64).to_le_bytes());
            let url = format!("{coll}file-{i:05}.bin");
            async move {
                let r = client.put(url).body(body).send().await.expect("PUT");
                assert!(r.status().is_success(), "PUT failed: {}", r.status());
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect::<Vec<()>>()
        .await;
    rate(n, start.elapsed())
}

pub async fn propfind(client: &Client, coll: &str, reps: usize) -> (f64, usize) {
    let body = r#"<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>"#;
    let start = Instant::now();
    let sizes: Vec<usize> = stream::iter(0..reps)
        .map(|_| async move {
            let r = client
                .request(Method::from_bytes(b"PROPFIND").expect("method"), coll)
                .header("Depth", "1")
                .body(body)
                .send()
                .await
                .expect("PROPFIND");
            assert_eq!(r.status().as_u16(), 207);
            r.bytes().await.expect("body").len()
        })
        .buffer_unordered(2)
        .collect()
        .await;
    (rate(reps, start.elapsed()), sizes.first().copied().unwrap_or(0))
}

pub async fn get_small(client: &Client, coll: &str, members: usize, n: usize) -> f64 {
    let start = Instant::now();
    stream::iter(0..n)
        .map(|i| {
            let url = format!("{coll}file-{:05}.bin", (i * 7919) % members);
            async move {
                let r = client.get(url).send().await.expect("GET");
                assert!(r.status().is_success());
                assert_eq!(r.bytes().await.expect("body").len(), 4096);
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect::<Vec<()>>()
        .await;
    rate(n, start.elapsed())
}

pub async fn put_big(client: &Client, url: &str, size: u64) -> f64 {
    crate::memory::warm(&std::env::temp_dir(), size);
    let chunk = Bytes::from(vec![0x5a; 1 << 20]);
    let chunks = size / chunk.len() as u64;
    let body = stream::iter((0..chunks).map(move |i| {
        let mut c = chunk.to_vec();
        c[..8].copy_from_slice(&i.to_le_bytes());
        Ok::<_, std::io::Error>(Bytes::from(c))
    }));
    let start = Instant::now();
    let r = client
        .put(url)
        .header("Content-Length", size)
        .body(reqwest::Body::wrap_stream(body))
        .send()
        .await
        .expect("PUT big");
    assert!(r.status().is_success(), "big PUT: {}", r.status());
    size as f64 / 1e6 / start.elapsed().as_secs_f64()
}

/// Large downloads are timed with curl, a lean client, so the figure is the server's rather
/// than the benchmark's own HTTP stack; the median of three runs is reported.
pub async fn get_big(user: Option<&str>, url: &str) -> f64 {
    get_big_alternated(&[(user, url.to_owned())])[0]
}

/// [`get_big`] of several servers: three rounds with every server once per round, in an
/// order rotated each round, and each one's median. A slow spell of a noisy machine then
/// falls on all of them alike, not on the one whose three runs it happened to meet.
pub fn get_big_alternated(targets: &[(Option<&str>, String)]) -> Vec<f64> {
    let mut runs = vec![Vec::new(); targets.len()];
    for round in 0..3 {
        for k in 0..targets.len() {
            let i = (k + round) % targets.len();
            runs[i].push(curl_get(targets[i].0, &targets[i].1));
        }
    }
    runs.iter_mut()
        .map(|r| {
            r.sort_by(f64::total_cmp);
            r[1]
        })
        .collect()
}

/// MB/s of one GET of `url` with curl, the body thrown away.
fn curl_get(user: Option<&str>, url: &str) -> f64 {
    let mut curl = Command::new("curl");
    if let Some(u) = user {
        curl.args(["-u", u]);
    }
    let out = curl
        .args(["-s", "-o", "/dev/null", "-w", "%{speed_download}", url])
        .output()
        .expect("run curl (install it from Debian's packages)");
    let bytes_per_s: f64 = String::from_utf8_lossy(&out.stdout).trim().parse().expect("curl speed");
    bytes_per_s / 1e6
}

/// Seconds curl takes to upload the `n` files named `0`..`n` in `dir` into `coll`, 16 at a
/// time over reused connections (`curl --parallel`), as a sync tool would.
pub fn curl_upload(user: Option<&str>, coll: &str, dir: &Path, n: usize) -> f64 {
    let config = dir.with_extension(format!("curl-{}", coll.len()));
    let mut lines = String::new();
    for i in 0..n {
        let file = dir.join(i.to_string());
        lines.push_str(&format!(
            "url = \"{coll}f-{i:05}\"\nupload-file = \"{}\"\noutput = \"/dev/null\"\n",
            file.display()
        ));
    }
    std::fs::write(&config, lines).expect("curl config");
    let mut curl = Command::new("curl");
    if let Some(u) = user {
        curl.args(["-u", u]);
    }
    curl.args(["-s", "--no-progress-meter", "--fail", "--parallel", "--parallel-max", "16", "-K"]).arg(&config);
    let start = Instant::now();
    let status = curl.status().expect("run curl (install it from Debian's packages)");
    let took = start.elapsed().as_secs_f64();
    assert!(status.success(), "curl upload into {coll} failed: {status}");
    let _ = std::fs::remove_file(config);
    took
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("port")
}

// A benchmark that fails here ends the process, which reaps the child.
#[allow(clippy::zombie_processes)]
pub fn start_wharf(data: &std::path::Path, args: &[&str]) -> (Child, String) {
    start_wharf_env(data, args, &[])
}

/// `start_wharf` with extra environment variables (S3 credentials).
#[allow(clippy::zombie_processes)]
pub fn start_wharf_env(data: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> (Child, String) {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(env!("CARGO_BIN_EXE_wharf"))
        .envs(env.iter().copied())
        .args(["serve", "--ftp-listen", "off", "--admin-listen", "off", "--listen", "127.0.0.1:0", "--data"])
        .arg(data)
        .args(args)
        .env("WHARF_LOG", "warn")
        .env("WHARF_ADMIN_PASSWORD", PASSWORD)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start wharf");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    loop {
        line.clear();
        if out.read_line(&mut line).unwrap_or(0) == 0 {
            let _ = child.wait();
            panic!("wharf exited before its banner");
        }
        if let Some(url) = line.split_whitespace().find(|w| w.starts_with("http://")) {
            return (child, url.to_owned());
        }
    }
}

pub fn lab() -> PathBuf {
    std::env::var_os("WHARF_LAB")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/lab"))
}

/// Starts a reference server with its lab script (`apache-dav.sh`, `nginx-dav.sh`), which
/// takes the port and the folder to serve.
fn start_lab(script: &str, port: u16, root: &Path) {
    let status = Command::new("bash").arg(lab().join(script)).arg(port.to_string()).arg(root).status().expect(script);
    assert!(status.success(), "{script} failed");
    std::thread::sleep(Duration::from_millis(500));
}

/// Stops a reference server by the pid file its lab script named.
fn stop_lab(pid_file: &str) {
    if let Ok(pid) = std::fs::read_to_string(pid_file) {
        let _ = Command::new("kill").arg(pid.trim()).status();
    }
}

pub fn start_apache(port: u16, root: &Path) {
    start_lab("apache-dav.sh", port, root);
}

pub fn stop_apache(port: u16) {
    stop_lab(&format!("/tmp/apache-dav-{port}/httpd.pid"));
}

pub fn start_nginx(port: u16, root: &Path) {
    start_lab("nginx-dav.sh", port, root);
}

pub fn stop_nginx(port: u16) {
    stop_lab(&format!("/tmp/nginx-dav-{port}/nginx.pid"));
}
