//! One host folder served in one run by Wharf (`--folder`, as the admin, with Basic
//! credentials on every request), Apache mod_dav and nginx's dav modules, all three on the
//! same directory. Run with `cargo bench -p wharf --bench host`; `WHARF_BENCH_SMALL=1` for
//! a quick smoke run.
//!
//! The machine is shared and noisy, so each small-request figure is measured three times,
//! with the servers' order rotated every round, and the median is reported.

use std::process::Child;

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
    puts: usize,
    propfinds: usize,
    gets: usize,
    big: u64,
}

fn sizes() -> Sizes {
    if std::env::var_os("WHARF_BENCH_SMALL").is_some() {
        Sizes { members: 500, puts: 300, propfinds: 4, gets: 2_000, big: 64 << 20 }
    } else {
        Sizes { members: 10_000, puts: 2_000, propfinds: 10, gets: 20_000, big: 1 << 30 }
    }
}

/// A server of the folder: its URL for the folder's root and a client for it.
struct Server {
    name: &'static str,
    base: String,
    client: Client,
    curl_user: Option<String>,
}

#[derive(Default, Clone)]
struct Runs {
    propfind: Vec<f64>,
    get_small: Vec<f64>,
    put_small: Vec<f64>,
    put_big: f64,
    get_big: f64,
}

/// Wharf runs as root here; the files it creates get www-data's ids, like those the other
/// two servers create, so each server can read what the others wrote.
const WWW_DATA: &str = "33";

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let sz = sizes();
    let tmp = scratch::Scratch::new();
    let folder = tmp.path().join("folder");
    std::fs::create_dir_all(&folder).expect("folder");
    let (apache_port, nginx_port) = (free_port(), free_port());
    start_apache(apache_port, &folder);
    start_nginx(nginx_port, &folder);
    let folder_arg = folder.to_str().expect("utf-8 temp path");
    let flags = ["--folder", folder_arg, "--host-uid", WWW_DATA, "--host-gid", WWW_DATA];
    let (mut wharf, url): (Child, String) = start_wharf(&tmp.path().join("wharf-data"), &flags);
    let servers = [
        Server {
            name: "wharf",
            base: url,
            client: client(Some(PASSWORD)),
            curl_user: Some(format!("admin:{PASSWORD}")),
        },
        Server::plain("apache", apache_port),
        Server::plain("nginx", nginx_port),
    ];
    let runs = rt.block_on(measure(&servers, &sz));
    // Waited for, so that the scratch file system is no longer busy when it is unmounted.
    let _ = (wharf.kill(), wharf.wait());
    stop_apache(apache_port);
    stop_nginx(nginx_port);
    println!("\nFiles on {}.", tmp.describe());
    report(&sz, &servers, &runs);
}

impl Server {
    fn plain(name: &'static str, port: u16) -> Server {
        Server { name, base: format!("http://127.0.0.1:{port}/"), client: client(None), curl_user: None }
    }
}

async fn measure(servers: &[Server], sz: &Sizes) -> Vec<Runs> {
    let mut runs = vec![Runs::default(); servers.len()];
    // The shared collection every server lists and reads, written by Wharf.
    let shared = format!("{}shared/", servers[0].base);
    send(&servers[0].client, "MKCOL", &shared).await;
    put_small(&servers[0].client, &shared, sz.members).await;
    for round in 0..3 {
        for k in 0..servers.len() {
            let i = (k + round) % servers.len();
            let s = &servers[i];
            let coll = format!("{}shared/", s.base);
            let (p, _) = propfind(&s.client, &coll, sz.propfinds).await;
            let g = get_small(&s.client, &coll, sz.members, sz.gets).await;
            let own = format!("{}put-{}-{round}/", s.base, s.name);
            send(&s.client, "MKCOL", &own).await;
            let w = put_small(&s.client, &own, sz.puts).await;
            eprintln!("round {round} {}: PROPFIND {p:.1}/s, GET 4 KiB {g:.0}/s, PUT 4 KiB {w:.0}/s", s.name);
            runs[i].propfind.push(p);
            runs[i].get_small.push(g);
            runs[i].put_small.push(w);
        }
    }
    for (i, s) in servers.iter().enumerate() {
        runs[i].put_big = put_big(&s.client, &format!("{}big-{}.bin", s.base, s.name), sz.big).await;
        eprintln!("{}: PUT big {:.0} MB/s", s.name, runs[i].put_big);
    }
    // Everyone reads the same large file.
    let targets: Vec<_> =
        servers.iter().map(|s| (s.curl_user.as_deref(), format!("{}big-wharf.bin", s.base))).collect();
    for (i, speed) in get_big_alternated(&targets).into_iter().enumerate() {
        runs[i].get_big = speed;
        eprintln!("{}: GET big {speed:.0} MB/s", servers[i].name);
    }
    runs
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

fn report(sz: &Sizes, servers: &[Server], runs: &[Runs]) {
    let (n, mb) = (sz.members, sz.big >> 20);
    let names: Vec<&str> = servers.iter().map(|s| s.name).collect();
    println!("\n| one host folder | {} | Wharf / Apache | Wharf / nginx |", names.join(" | "));
    println!("|---|{}---:|---:|", "---:|".repeat(servers.len()));
    let row = |what: String, unit: &str, f: &dyn Fn(&Runs) -> f64| {
        let v: Vec<f64> = runs.iter().map(f).collect();
        let cells: Vec<String> = v.iter().map(|x| format!("{x:.0} {unit}")).collect();
        println!("| {what} | {} | {:.2}x | {:.2}x |", cells.join(" | "), v[0] / v[1], v[0] / v[2]);
    };
    row(format!("PROPFIND Depth 1 allprop, {n} files"), "req/s", &|r| median(&r.propfind));
    row("GET 4 KiB".into(), "req/s", &|r| median(&r.get_small));
    row("PUT 4 KiB".into(), "req/s", &|r| median(&r.put_small));
    row(format!("PUT {mb} MiB"), "MB/s", &|r| r.put_big);
    row(format!("GET {mb} MiB"), "MB/s", &|r| r.get_big);
}
