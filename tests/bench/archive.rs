//! An archive opened as a folder: a 1 GiB tar.gz (made by Debian's tar and gzip in this
//! run) in a host folder served by Wharf. Measures the first listing (which builds the
//! index: one full decompression), then fetching a member near the archive's end, beside
//! `gzip -dc` of the whole archive and `tar -xzf ARCHIVE MEMBER` of the same member. Run
//! with `cargo bench -p wharf --bench archive`; `WHARF_BENCH_SMALL=1` for a quick run.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Instant;

#[path = "http.rs"]
mod http;
#[path = "memory.rs"]
mod memory;

use http::*;

const LAST: &str = "zz-last.txt";

fn main() {
    let small = std::env::var_os("WHARF_BENCH_SMALL").is_some();
    let (files, file_size) = if small { (16, 4 << 20) } else { (256, 4 << 20) };
    let tmp = tempfile::tempdir().expect("tmp");
    let folder = tmp.path().join("folder");
    let src = tmp.path().join("src");
    std::fs::create_dir_all(&folder).expect("folder");
    std::fs::create_dir_all(&src).expect("src");
    let mut names = Vec::new();
    for i in 0..files {
        let name = format!("part-{i:04}.txt");
        std::fs::write(src.join(&name), text(file_size, i as u64 + 1)).expect("write");
        names.push(name);
    }
    std::fs::write(src.join(LAST), text(1 << 20, 99_999)).expect("write");
    names.push(LAST.to_owned());
    let archive = folder.join("big.tar.gz");
    let made = timed(|| run(Command::new("tar").arg("-czf").arg(&archive).arg("-C").arg(&src).args(&names)));
    let size = std::fs::metadata(&archive).expect("archive").len();
    let total = files as u64 * file_size as u64 + (1 << 20);
    eprintln!("made {} MB of tar.gz from {} MB in {made:.1} s", size >> 20, total >> 20);
    std::fs::remove_dir_all(&src).expect("clean");

    let mut gunzip = Vec::new();
    let mut tar_x = Vec::new();
    for _ in 0..3 {
        gunzip.push(timed(|| run(&mut shell(&format!("gzip -dc '{}' > /dev/null", archive.display())))));
        let out = tempfile::tempdir().expect("tmp");
        let cmd = format!("cd '{}' && tar -xzf '{}' {LAST}", out.path().display(), archive.display());
        tar_x.push(timed(|| run(&mut shell(&cmd))));
    }

    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let data = tmp.path().join("wharf-data");
    let folder_arg = folder.to_str().expect("utf-8 temp path");
    let (mut wharf, url) = start_wharf(&data, &["--folder", folder_arg]);
    let c = client(Some(PASSWORD));
    let view = format!("{url}big.tar.gz!/");
    let member = format!("{view}{LAST}");
    let (first_listing, fetches, ranges) = rt.block_on(async {
        let first = timed_async(|| async { list(&c, &view).await }).await;
        let mut fetches = Vec::new();
        let mut ranges = Vec::new();
        for _ in 0..5 {
            fetches.push(timed_async(|| async { fetch(&c, &member, None).await }).await);
            ranges.push(timed_async(|| async { fetch(&c, &member, Some("bytes=500000-500099")).await }).await);
        }
        (first, fetches, ranges)
    });
    let _ = wharf.kill();
    let _ = wharf.wait();
    // A new process: the index comes from the database, not from decompressing again.
    let (mut wharf, url) = start_wharf(&data, &["--folder", folder_arg]);
    let member = format!("{url}big.tar.gz!/{LAST}");
    let after_restart = rt.block_on(timed_async(|| async { fetch(&c, &member, None).await }));
    let _ = wharf.kill();

    let (g, t, f, r) = (median(gunzip), median(tar_x), median(fetches), median(ranges));
    println!("\n## Archives: a member near the end of a {} MB tar.gz ({} MB inside)\n", size >> 20, total >> 20);
    println!("| | seconds | vs `tar -xzf ARCHIVE MEMBER` |");
    println!("|---|---:|---:|");
    let row = |what: &str, s: f64| println!("| {what} | {s:.3} | {:.3}x |", s / t);
    row("`gzip -dc ARCHIVE > /dev/null` (whole archive)", g);
    row(&format!("`tar -xzf ARCHIVE {LAST}`"), t);
    row("Wharf: first PROPFIND of `big.tar.gz!/` (builds the index)", first_listing);
    row(&format!("Wharf: GET `big.tar.gz!/{LAST}` (1 MiB, index in memory)"), f);
    row("Wharf: GET of 100 bytes of it (Range)", r);
    row("Wharf: the same GET after a restart (index from the database)", after_restart);
}

async fn list(c: &reqwest::Client, url: &str) {
    let m = reqwest::Method::from_bytes(b"PROPFIND").expect("method");
    let resp = c.request(m, url).header("Depth", "1").send().await.expect("PROPFIND");
    assert_eq!(resp.status().as_u16(), 207);
    assert!(resp.text().await.expect("body").contains(LAST));
}

async fn fetch(c: &reqwest::Client, url: &str, range: Option<&str>) {
    let mut req = c.get(url);
    if let Some(r) = range {
        req = req.header("Range", r);
    }
    let resp = req.send().await.expect("GET");
    assert!(resp.status().is_success(), "GET {url}: {}", resp.status());
    let body = resp.bytes().await.expect("body");
    assert!(!body.is_empty());
}

/// Text lines of words and numbers: compresses about 3:1, like source code or logs.
fn text(len: usize, seed: u64) -> Vec<u8> {
    const WORDS: [&str; 12] =
        ["wharf", "archive", "member", "offset", "window", "block", "stream", "index", "tar", "gzip", "bytes", "fn"];
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut out = Vec::with_capacity(len + 64);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        for k in 0..(x % 7) + 1 {
            out.extend_from_slice(WORDS[((x >> (k * 4)) % 12) as usize].as_bytes());
            out.push(b' ');
        }
        let _ = writeln!(out, "{}", x % 1_000_000_007);
    }
    out.truncate(len);
    out
}

fn shell(script: &str) -> Command {
    let mut c = Command::new("sh");
    c.arg("-c").arg(script);
    c
}

fn run(c: &mut Command) {
    let ok = c.stdout(Stdio::null()).status().expect("run").success();
    assert!(ok, "{c:?} failed");
}

fn timed(f: impl FnOnce()) -> f64 {
    let t = Instant::now();
    f();
    t.elapsed().as_secs_f64()
}

async fn timed_async<F: std::future::Future<Output = ()>>(f: impl FnOnce() -> F) -> f64 {
    let t = Instant::now();
    f().await;
    t.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
