//! Wharf with its blobs in S3 (`--blobs s3://…` on a local `s3s-fs`) beside Wharf with
//! its blobs on local disk, in one run: `cargo bench -p wharf --bench s3`
//! (`WHARF_BENCH_SMALL=1` for a quick smoke run). Small files are left out: up to
//! `--inline-max-bytes` (16 KiB) they live in the database whichever blob store is used.
//! Measured: PUT and GET of 1 MiB files (16 at a time; three rounds, the two servers'
//! order swapped each round, medians), then one large PUT and GET each (curl for the GET).

use std::time::Instant;

use futures_util::{stream, StreamExt};
use reqwest::Client;

#[path = "http.rs"]
mod http;
#[path = "memory.rs"]
mod memory;
#[path = "../support/s3s_fs.rs"]
mod s3s_fs;

use http::*;

struct Sizes {
    files: usize,
    big: u64,
}

fn sizes() -> Sizes {
    if std::env::var_os("WHARF_BENCH_SMALL").is_some() {
        Sizes { files: 40, big: 64 << 20 }
    } else {
        Sizes { files: 400, big: 1 << 30 }
    }
}

struct Server {
    name: &'static str,
    base: String,
    client: Client,
}

#[derive(Default, Clone)]
struct Runs {
    put_mib: Vec<f64>,
    get_mib: Vec<f64>,
    put_big: f64,
    get_big: f64,
}

const FILE: usize = 1 << 20;

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let sz = sizes();
    let tmp = tempfile::tempdir().expect("tmp");
    let s3 = s3s_fs::S3sFs::start("bench", "AKBENCH", "SECRETBENCH");
    let env = [("AWS_ACCESS_KEY_ID", "AKBENCH"), ("AWS_SECRET_ACCESS_KEY", "SECRETBENCH")];
    let s3_flags = ["--blobs", "s3://bench/wharf", "--s3-endpoint", &s3.endpoint];
    let (mut local, local_url) = start_wharf(&tmp.path().join("local"), &[]);
    let (mut remote, remote_url) = start_wharf_env(&tmp.path().join("s3"), &s3_flags, &env);
    let servers = [
        Server { name: "local disk", base: local_url, client: client(Some(PASSWORD)) },
        Server { name: "S3 (s3s-fs)", base: remote_url, client: client(Some(PASSWORD)) },
    ];
    let runs = rt.block_on(measure(&servers, &sz));
    let _ = local.kill();
    let _ = remote.kill();
    let direct = direct(&s3, &tmp.path().join("direct.bin"), sz.big);
    report(&sz, &servers, &runs, direct);
}

/// The S3 server's own rate for one large object, without Wharf: rclone uploads and
/// reads a file of the same size straight to and from the bucket.
fn direct(s3: &s3s_fs::S3sFs, file: &std::path::Path, size: u64) -> (f64, f64) {
    std::fs::write(file, vec![0x5a_u8; size as usize]).expect("write the direct file");
    let rclone = |args: &[&str]| {
        let start = Instant::now();
        // Debian's rclone 1.60 fails on AWS_CA_BUNDLE with its own HTTP transport; the
        // endpoint is plain HTTP anyway.
        let status = std::process::Command::new("rclone")
            .env_remove("AWS_CA_BUNDLE")
            .args(args)
            .args(["--s3-provider", "Other", "--s3-endpoint", &s3.endpoint, "--s3-access-key-id", "AKBENCH"])
            .args(["--s3-secret-access-key", "SECRETBENCH", "--s3-upload-cutoff", "8M", "--s3-chunk-size", "8M"])
            .args(["--s3-upload-concurrency", "2", "--s3-disable-checksum"])
            .status()
            .expect("run rclone (install it from Debian's packages)");
        assert!(status.success(), "rclone {args:?}");
        size as f64 / 1e6 / start.elapsed().as_secs_f64()
    };
    let path = file.to_str().expect("utf-8 temp path");
    let put = rclone(&["copyto", path, ":s3:bench/direct/big.bin"]);
    let get = rclone(&["cat", ":s3:bench/direct/big.bin", "--discard"]);
    (put, get)
}

async fn measure(servers: &[Server], sz: &Sizes) -> Vec<Runs> {
    let mut runs = vec![Runs::default(); servers.len()];
    for round in 0..3 {
        for k in 0..servers.len() {
            let i = (k + round) % servers.len();
            let s = &servers[i];
            let coll = format!("{}r{round}/", s.base);
            send(&s.client, "MKCOL", &coll).await;
            let put = put_files(&s.client, &coll, sz.files, round).await;
            let get = get_files(&s.client, &coll, sz.files).await;
            eprintln!("round {round} {}: PUT 1 MiB {put:.1} files/s, GET 1 MiB {get:.1} files/s", s.name);
            runs[i].put_mib.push(put);
            runs[i].get_mib.push(get);
        }
    }
    let user = format!("admin:{PASSWORD}");
    for (i, s) in servers.iter().enumerate() {
        let url = format!("{}big.bin", s.base);
        runs[i].put_big = put_big(&s.client, &url, sz.big).await;
        runs[i].get_big = get_big(Some(&user), &url).await;
        eprintln!("{}: PUT big {:.0} MB/s, GET big {:.0} MB/s", s.name, runs[i].put_big, runs[i].get_big);
    }
    runs
}

/// `n` files of 1 MiB, each its own bytes (identical ones would be stored once).
async fn put_files(client: &Client, coll: &str, n: usize, round: usize) -> f64 {
    let start = Instant::now();
    stream::iter(0..n)
        .map(|i| {
            let mut body = vec![(i % 251) as u8; FILE];
            body[..8].copy_from_slice(&(i as u64).to_le_bytes());
            body[8..16].copy_from_slice(&(round as u64).to_le_bytes());
            let url = format!("{coll}f-{i:04}.bin");
            async move {
                let r = client.put(url).body(body).send().await.expect("PUT");
                assert!(r.status().is_success(), "PUT: {}", r.status());
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect::<Vec<()>>()
        .await;
    rate(n, start.elapsed())
}

async fn get_files(client: &Client, coll: &str, n: usize) -> f64 {
    let start = Instant::now();
    stream::iter(0..n)
        .map(|i| {
            let url = format!("{coll}f-{i:04}.bin");
            async move {
                let r = client.get(url).send().await.expect("GET");
                assert!(r.status().is_success(), "GET: {}", r.status());
                assert_eq!(r.bytes().await.expect("body").len(), FILE);
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect::<Vec<()>>()
        .await;
    rate(n, start.elapsed())
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

fn report(sz: &Sizes, servers: &[Server], runs: &[Runs], direct: (f64, f64)) {
    println!("\n| Wharf, blobs on | {} | {} | S3 / local |", servers[0].name, servers[1].name);
    println!("|---|---:|---:|---:|");
    let row = |what: String, unit: &str, f: &dyn Fn(&Runs) -> f64| {
        let (a, b) = (f(&runs[0]), f(&runs[1]));
        println!("| {what} | {a:.1} {unit} | {b:.1} {unit} | {:.2}x |", b / a);
    };
    row(format!("PUT 1 MiB ({} files, 16 at a time)", sz.files), "files/s", &|r| median(&r.put_mib));
    row(format!("GET 1 MiB ({} files, 16 at a time)", sz.files), "files/s", &|r| median(&r.get_mib));
    row(format!("PUT {} MiB", sz.big >> 20), "MB/s", &|r| r.put_big);
    row(format!("GET {} MiB", sz.big >> 20), "MB/s", &|r| r.get_big);
    let mb = sz.big >> 20;
    println!(
        "\nThe S3 server alone (rclone straight to the bucket): PUT {mb} MiB {:.1} MB/s, GET {:.1} MB/s;",
        direct.0, direct.1
    );
    let (put, get) = (runs[1].put_big / direct.0, runs[1].get_big / direct.1);
    println!("Wharf on S3 reaches {put:.2}x of the server's own PUT rate and {get:.2}x of its GET rate.");
}
