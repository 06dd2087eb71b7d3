//! Side-by-side benchmark: Wharf and Apache httpd mod_dav (the reference) measured in the
//! same run on the same machine, reported as rates and ratios. Run with
//! `cargo bench -p wharf --bench dav`; set `WHARF_BENCH_SMALL=1` for a quick smoke run.
//!
//! Apache is started with `../shared/lab/apache-dav.sh` (found beside the repository, or
//! at `$WHARF_LAB`), which installs it from Debian's packages when missing.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{stream, StreamExt};
use reqwest::{Client, Method};

#[path = "memory.rs"]
mod memory;

struct Sizes {
    members: usize,
    propfinds: usize,
    gets: usize,
    big: u64,
}

fn sizes() -> Sizes {
    if std::env::var_os("WHARF_BENCH_SMALL").is_some() {
        Sizes { members: 500, propfinds: 5, gets: 2_000, big: 64 << 20 }
    } else {
        Sizes { members: 10_000, propfinds: 30, gets: 20_000, big: 1 << 30 }
    }
}

/// Concurrent connections for the small-request figures.
const CONCURRENCY: usize = 16;

#[derive(Default, Clone)]
struct Figures {
    put_small: f64,
    propfind: f64,
    propfind_bytes: usize,
    get_small: f64,
    put_big: f64,
    get_big: f64,
}

/// The admin password the benchmark gives the Wharf instances it starts.
const PASSWORD: &str = "bench-admin-password";

/// A server under test: where its collection lives and how to talk to it.
struct Target {
    name: &'static str,
    base: String,
    client: Client,
    /// `user:password` for curl, when the server needs credentials.
    curl_user: Option<String>,
}

impl Target {
    fn plain(name: &'static str, base: String) -> Target {
        Target { name, base, client: client(None), curl_user: None }
    }

    /// Wharf as its admin, working in `/public/` (which anonymous readers see as `/`).
    fn wharf(name: &'static str, url: &str) -> Target {
        let base = format!("{url}public/");
        Target { name, base, client: client(Some(PASSWORD)), curl_user: Some(format!("admin:{PASSWORD}")) }
    }
}

fn client(admin_password: Option<&str>) -> Client {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(p) = admin_password {
        use base64::Engine;
        let token = base64::engine::general_purpose::STANDARD.encode(format!("admin:{p}"));
        headers.insert(reqwest::header::AUTHORIZATION, format!("Basic {token}").parse().expect("header"));
    }
    Client::builder().pool_max_idle_per_host(64).default_headers(headers).build().expect("client")
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let sz = sizes();
    let tmp = tempfile::tempdir().expect("tmp");
    let (mut wharf, wharf_url) = start_wharf(&tmp.path().join("wharf"), &["--anonymous"]);
    let (apache_port, apache_root) = (free_port(), tmp.path().join("apache"));
    start_apache(apache_port, &apache_root);
    let apache = Target::plain("apache", format!("http://127.0.0.1:{apache_port}/"));
    let w = rt.block_on(run(&Target::wharf("wharf", &wharf_url), &sz));
    let a = rt.block_on(run(&apache, &sz));
    stop_apache(apache_port);
    let auth = rt.block_on(auth_cost(&wharf_url, &sz));
    let _ = wharf.kill();
    let full_data = tmp.path().join("wharf-full");
    let (mut full, full_url) = start_wharf(&full_data, &["--durability", "full"]);
    let f = rt.block_on(writes(&Target::wharf("wharf --durability full", &full_url), &sz));
    let _ = full.kill();
    report(&sz, &w, &a);
    report_durability(&w, &f);
    println!("\n| GET 4 KiB | req/s |\n|---|---:|");
    println!("| anonymous (no authentication) | {:.0} |", auth.0);
    println!("| authenticated (Basic, admin) | {:.0} |", auth.1);
    println!("| authenticated / anonymous | {:.2}x |", auth.1 / auth.0);
}

/// GET 4 KiB of the same files without and with credentials, alternating three times so
/// both see the same machine conditions; the best of each is kept.
async fn auth_cost(url: &str, sz: &Sizes) -> (f64, f64) {
    let (anon, admin) = (client(None), client(Some(PASSWORD)));
    let (mut a, mut b) = (0f64, 0f64);
    for _ in 0..3 {
        a = a.max(get_small(&anon, &format!("{url}bench/"), sz.members, sz.gets).await);
        b = b.max(get_small(&admin, &format!("{url}public/bench/"), sz.members, sz.gets).await);
    }
    eprintln!("GET 4 KiB anonymous {a:.0} req/s, authenticated {b:.0} req/s");
    (a, b)
}

fn report(sz: &Sizes, w: &Figures, a: &Figures) {
    let n = sz.members;
    let mb = sz.big >> 20;
    println!("\n| measurement | Wharf | Apache mod_dav | Wharf / Apache |");
    println!("|---|---:|---:|---:|");
    let row = |name: String, w: f64, a: f64, unit: &str| {
        println!("| {name} | {w:.0} {unit} | {a:.0} {unit} | {:.2}x |", w / a);
    };
    row(format!("PROPFIND Depth 1 allprop, {n} members"), w.propfind, a.propfind, "req/s");
    row("GET 4 KiB".into(), w.get_small, a.get_small, "req/s");
    row("PUT 4 KiB".into(), w.put_small, a.put_small, "req/s");
    row(format!("PUT {mb} MiB"), w.put_big, a.put_big, "MB/s");
    row(format!("GET {mb} MiB"), w.get_big, a.get_big, "MB/s");
    println!("| PROPFIND Depth 1 allprop answer size | {} bytes | {} bytes | |", w.propfind_bytes, a.propfind_bytes);
}

/// The cost of `--durability full`: only writes differ.
fn report_durability(process: &Figures, full: &Figures) {
    println!("\n| durability | PUT 4 KiB | PUT large |");
    println!("|---|---:|---:|");
    println!("| process (default) | {:.0} req/s | {:.0} MB/s |", process.put_small, process.put_big);
    println!("| full | {:.0} req/s | {:.0} MB/s |", full.put_small, full.put_big);
}

async fn writes(t: &Target, sz: &Sizes) -> Figures {
    let (name, base, client) = (t.name, &t.base, &t.client);
    let coll = format!("{base}bench/");
    send(client, "MKCOL", &coll).await;
    let mut f = Figures { put_small: put_small(client, &coll, sz.members.min(2_000)).await, ..Default::default() };
    f.put_big = put_big(client, &format!("{base}big.bin"), sz.big).await;
    eprintln!("{name}: PUT 4 KiB {:.0} req/s, PUT big {:.0} MB/s", f.put_small, f.put_big);
    f
}

async fn run(t: &Target, sz: &Sizes) -> Figures {
    let (name, base, client) = (t.name, &t.base, &t.client);
    let mut f = Figures::default();
    let coll = format!("{base}bench/");
    send(client, "MKCOL", &coll).await;
    f.put_small = put_small(client, &coll, sz.members).await;
    eprintln!("{name}: PUT 4 KiB {:.0} req/s", f.put_small);
    (f.propfind, f.propfind_bytes) = propfind(client, &coll, sz.propfinds).await;
    eprintln!("{name}: PROPFIND {:.1} req/s ({} bytes)", f.propfind, f.propfind_bytes);
    f.get_small = get_small(client, &coll, sz.members, sz.gets).await;
    eprintln!("{name}: GET 4 KiB {:.0} req/s", f.get_small);
    let big = format!("{base}big.bin");
    f.put_big = put_big(client, &big, sz.big).await;
    eprintln!("{name}: PUT big {:.0} MB/s", f.put_big);
    f.get_big = get_big(t.curl_user.as_deref(), &big).await;
    eprintln!("{name}: GET big {:.0} MB/s", f.get_big);
    f
}

async fn send(client: &Client, method: &str, url: &str) -> reqwest::StatusCode {
    let m = Method::from_bytes(method.as_bytes()).expect("method");
    client.request(m, url).send().await.expect("request").status()
}

fn rate(n: usize, t: Duration) -> f64 {
    n as f64 / t.as_secs_f64()
}

async fn put_small(client: &Client, coll: &str, n: usize) -> f64 {
    let start = Instant::now();
    stream::iter(0..n)
        .map(|i| {
            let body = vec![(i % 251) as u8; 4096];
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

async fn propfind(client: &Client, coll: &str, reps: usize) -> (f64, usize) {
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

async fn get_small(client: &Client, coll: &str, members: usize, n: usize) -> f64 {
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

async fn put_big(client: &Client, url: &str, size: u64) -> f64 {
    memory::warm(&std::env::temp_dir(), size);
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
async fn get_big(user: Option<&str>, url: &str) -> f64 {
    let mut runs: Vec<f64> = (0..3)
        .map(|_| {
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
        })
        .collect();
    runs.sort_by(f64::total_cmp);
    runs[1]
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("port")
}

fn start_wharf(data: &std::path::Path, args: &[&str]) -> (Child, String) {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(env!("CARGO_BIN_EXE_wharf"))
        .args(["serve", "--ftp-listen", "off", "--listen", "127.0.0.1:0", "--data"])
        .arg(data)
        .args(args)
        .env("WHARF_LOG", "warn")
        .env("WHARF_ADMIN_PASSWORD", PASSWORD)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start wharf");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("banner");
    let url = line.split_whitespace().find(|w| w.starts_with("http://")).expect("url").to_owned();
    (child, url)
}

fn lab() -> PathBuf {
    std::env::var_os("WHARF_LAB")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/lab"))
}

fn start_apache(port: u16, root: &std::path::Path) {
    let status = Command::new("bash")
        .arg(lab().join("apache-dav.sh"))
        .arg(port.to_string())
        .arg(root)
        .status()
        .expect("run apache-dav.sh");
    assert!(status.success(), "apache-dav.sh failed");
    std::thread::sleep(Duration::from_millis(500));
}

fn stop_apache(port: u16) {
    if let Ok(pid) = std::fs::read_to_string(format!("/tmp/apache-dav-{port}/httpd.pid")) {
        let _ = Command::new("kill").arg(pid.trim()).status();
    }
}
