//! Side-by-side benchmark: Wharf (with its default durability and with `--durability
//! full`), Apache httpd mod_dav and nginx's dav modules, measured in the same run on the
//! same machine, reported as rates and ratios. Run with `cargo bench -p wharf --bench
//! dav`; set `WHARF_BENCH_SMALL=1` for a quick smoke run.
//!
//! Apache and nginx are started with `../shared/lab/apache-dav.sh` and `nginx-dav.sh`
//! (found beside the repository, or at `$WHARF_LAB`), which install them from Debian's
//! packages when missing. The machine is shared and noisy, so every small-request figure
//! is measured in three rounds with the servers' order rotated each round, and the median
//! is reported.

use std::path::Path;

use reqwest::Client;

#[path = "http.rs"]
mod http;
#[path = "memory.rs"]
mod memory;
#[path = "scratch.rs"]
mod scratch;

use http::*;

struct Sizes {
    members: usize,
    propfinds: usize,
    gets: usize,
    puts: usize,
    /// Files of the `curl --parallel` upload.
    uploads: usize,
    big: u64,
}

fn sizes() -> Sizes {
    if std::env::var_os("WHARF_BENCH_SMALL").is_some() {
        Sizes { members: 500, propfinds: 5, gets: 2_000, puts: 300, uploads: 300, big: 64 << 20 }
    } else {
        Sizes { members: 10_000, propfinds: 20, gets: 20_000, puts: 2_000, uploads: 10_000, big: 1 << 30 }
    }
}

/// A server under test: where its collections live and how to talk to it.
struct Target {
    name: &'static str,
    base: String,
    client: Client,
    /// `user:password` for curl, when the server needs credentials.
    curl_user: Option<String>,
}

impl Target {
    fn plain(name: &'static str, port: u16) -> Target {
        Target { name, base: format!("http://127.0.0.1:{port}/"), client: client(None), curl_user: None }
    }

    /// Wharf as its admin, working in `/public/` (which anonymous readers see as `/`).
    fn wharf(name: &'static str, url: &str) -> Target {
        let base = format!("{url}public/");
        Target { name, base, client: client(Some(PASSWORD)), curl_user: Some(format!("admin:{PASSWORD}")) }
    }
}

#[derive(Default, Clone)]
struct Runs {
    put_members: f64,
    propfind: Vec<f64>,
    propfind_bytes: usize,
    get_small: Vec<f64>,
    put_small: Vec<f64>,
    /// Seconds for the `curl --parallel` upload.
    upload: Vec<f64>,
    put_big: f64,
    get_big: f64,
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let sz = sizes();
    let tmp = scratch::Scratch::new();
    let files = tmp.path().join("upload");
    write_upload_files(&files, sz.uploads);
    let (mut wharf, wharf_url) = start_wharf(&tmp.path().join("wharf"), &["--anonymous"]);
    let (mut full, full_url) = start_wharf(&tmp.path().join("wharf-full"), &["--durability", "full"]);
    let (apache_port, nginx_port) = (free_port(), free_port());
    start_apache(apache_port, &tmp.path().join("apache"));
    start_nginx(nginx_port, &tmp.path().join("nginx"));
    let targets = [
        Target::wharf("wharf", &wharf_url),
        Target::plain("apache", apache_port),
        Target::plain("nginx", nginx_port),
        Target::wharf("wharf --durability full", &full_url),
    ];
    let runs = rt.block_on(measure(&targets, &sz, &files));
    let auth = rt.block_on(auth_cost(&wharf_url, &sz));
    // Waited for, so that the scratch file system is no longer busy when it is unmounted.
    let _ = (wharf.kill(), full.kill(), wharf.wait(), full.wait());
    stop_apache(apache_port);
    stop_nginx(nginx_port);
    println!("\nFiles on {}.", tmp.describe());
    report(&sz, &targets, &runs);
    report_durability(&sz, &runs[0], &runs[3]);
    println!("\n| GET 4 KiB | req/s |\n|---|---:|");
    println!("| anonymous (no authentication) | {:.0} |", auth.0);
    println!("| authenticated (Basic, admin) | {:.0} |", auth.1);
    println!("| authenticated / anonymous | {:.2}x |", auth.1 / auth.0);
}

async fn measure(targets: &[Target], sz: &Sizes, files: &Path) -> Vec<Runs> {
    let mut runs = vec![Runs::default(); targets.len()];
    for (t, r) in targets.iter().zip(runs.iter_mut()) {
        let coll = format!("{}bench/", t.base);
        send(&t.client, "MKCOL", &coll).await;
        r.put_members = put_small(&t.client, &coll, sz.members).await;
        eprintln!("{}: {} members written at {:.0} PUT/s", t.name, sz.members, r.put_members);
    }
    for round in 0..3 {
        for k in 0..targets.len() {
            let i = (k + round) % targets.len();
            let (t, r) = (&targets[i], &mut runs[i]);
            let coll = format!("{}bench/", t.base);
            let (p, bytes) = propfind(&t.client, &coll, sz.propfinds).await;
            let g = get_small(&t.client, &coll, sz.members, sz.gets).await;
            let own = format!("{}put-{round}/", t.base);
            send(&t.client, "MKCOL", &own).await;
            let w = put_small(&t.client, &own, sz.puts).await;
            let up = format!("{}upload-{round}/", t.base);
            send(&t.client, "MKCOL", &up).await;
            let u = curl_upload(t.curl_user.as_deref(), &up, files, sz.uploads);
            eprintln!("round {round} {}: PROPFIND {p:.1}/s, GET {g:.0}/s, PUT {w:.0}/s, upload {u:.2} s", t.name);
            r.propfind.push(p);
            r.propfind_bytes = bytes;
            r.get_small.push(g);
            r.put_small.push(w);
            r.upload.push(u);
        }
    }
    for (t, r) in targets.iter().zip(runs.iter_mut()) {
        r.put_big = put_big(&t.client, &format!("{}big.bin", t.base), sz.big).await;
        eprintln!("{}: PUT big {:.0} MB/s", t.name, r.put_big);
    }
    let bigs: Vec<_> = targets.iter().map(|t| (t.curl_user.as_deref(), format!("{}big.bin", t.base))).collect();
    for ((t, r), speed) in targets.iter().zip(runs.iter_mut()).zip(get_big_alternated(&bigs)) {
        r.get_big = speed;
        eprintln!("{}: GET big {speed:.0} MB/s", t.name);
    }
    runs
}

/// `n` files of 4 KiB, each with its own bytes (identical bodies would be stored once
/// by Wharf, which would flatter it).
fn write_upload_files(dir: &Path, n: usize) {
    std::fs::create_dir_all(dir).expect("upload dir");
    for i in 0..n {
        let mut body = vec![(i % 251) as u8; 4096];
        body[..8].copy_from_slice(&(i as u64 ^ 0x5eed_f11e).to_le_bytes());
        std::fs::write(dir.join(format!("{i}")), body).expect("upload file");
    }
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

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

fn report(sz: &Sizes, t: &[Target], runs: &[Runs]) {
    let (n, mb, u) = (sz.members, sz.big >> 20, sz.uploads);
    println!("\n| measurement | {} | {} | {} | Wharf / Apache | Wharf / nginx |", t[0].name, t[1].name, t[2].name);
    println!("|---|---:|---:|---:|---:|---:|");
    let row = |what: String, unit: &str, higher_is_better: bool, f: &dyn Fn(&Runs) -> f64| {
        let v: Vec<f64> = runs.iter().map(f).collect();
        let ratio = |other: f64| if higher_is_better { v[0] / other } else { other / v[0] };
        let cells: Vec<String> = v[..3].iter().map(|x| format!("{x:.2} {unit}")).collect();
        println!("| {what} | {} | {:.2}x | {:.2}x |", cells.join(" | "), ratio(v[1]), ratio(v[2]));
    };
    row(format!("PROPFIND Depth 1 allprop, {n} members"), "req/s", true, &|r| median(&r.propfind));
    row("GET 4 KiB".into(), "req/s", true, &|r| median(&r.get_small));
    row("PUT 4 KiB".into(), "req/s", true, &|r| median(&r.put_small));
    row(format!("{u} × 4 KiB, curl --parallel-max 16"), "s", false, &|r| median(&r.upload));
    row(format!("PUT {mb} MiB"), "MB/s", true, &|r| r.put_big);
    row(format!("GET {mb} MiB"), "MB/s", true, &|r| r.get_big);
    let sizes: Vec<String> = runs[..3].iter().map(|r| format!("{} bytes", r.propfind_bytes)).collect();
    println!("| PROPFIND answer size | {} | | |", sizes.join(" | "));
    println!("(ratios: higher is better for Wharf; for the upload, the others' seconds over Wharf's)");
}

/// The cost of `--durability full`, on the same workloads.
fn report_durability(sz: &Sizes, process: &Runs, full: &Runs) {
    println!("\n| durability | PUT 4 KiB | {} × 4 KiB, curl | PUT {} MiB |", sz.uploads, sz.big >> 20);
    println!("|---|---:|---:|---:|");
    for (name, r) in [("process (default)", process), ("full", full)] {
        let (p, u) = (median(&r.put_small), median(&r.upload));
        println!("| {name} | {p:.0} req/s | {u:.2} s | {:.0} MB/s |", r.put_big);
    }
}
