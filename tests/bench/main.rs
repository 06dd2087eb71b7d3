//! Side-by-side benchmark: Wharf and Apache httpd mod_dav (the reference) measured in the
//! same run on the same machine, reported as rates and ratios. Run with
//! `cargo bench -p wharf --bench dav`; set `WHARF_BENCH_SMALL=1` for a quick smoke run.
//!
//! Apache is started with `../shared/lab/apache-dav.sh` (found beside the repository, or
//! at `$WHARF_LAB`), which installs it from Debian's packages when missing.

use reqwest::Client;

#[path = "http.rs"]
mod http;
#[path = "memory.rs"]
mod memory;

use http::*;

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

#[derive(Default, Clone)]
struct Figures {
    put_small: f64,
    propfind: f64,
    propfind_bytes: usize,
    get_small: f64,
    put_big: f64,
    get_big: f64,
}

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
