//! Scale out: Wharf with its metadata in PostgreSQL and its blobs in S3, on one node and on
//! three nodes behind a round-robin nginx, beside Wharf on SQLite and local disk, all in
//! one run: `cargo bench -p wharf --bench scale` (`WHARF_BENCH_SMALL=1` for a quick smoke
//! run: 500 members, 64 MiB instead of 1 GiB).
//!
//! Setups: A = SQLite + local disk, one node (the reference); B = PostgreSQL + S3, one
//! node; C = PostgreSQL + S3, three nodes sharing one database and one bucket, the client
//! talking to nginx in front of them. PostgreSQL is a throwaway cluster
//! (`tests/postgres.sh`), S3 a local `s3s-fs` (`tests/support/s3s_fs.rs`), nginx Debian's.
//!
//! Measured, as in the `dav` bench: a collection of 10,000 members of 4 KiB is written on
//! each setup; then three rounds, the setups' order rotated each round, each measuring
//! PROPFIND Depth 1 `allprop` of the collection (2 at a time), GETs of its members and
//! PUTs of 4 KiB into a new collection (16 at a time); medians of the rounds are reported.
//! Then one 1 GiB PUT and GET per setup (curl for the GET, median of three). Figures are
//! printed as rates and as ratios to A.

use std::path::Path;
use std::process::{Child, Command};

use reqwest::Client;

#[path = "http.rs"]
mod http;
#[path = "memory.rs"]
mod memory;
#[path = "../support/postgres.rs"]
mod postgres;
#[path = "../support/round_robin.rs"]
mod round_robin;
#[path = "../support/s3s_fs.rs"]
mod s3s_fs;

use http::*;
use round_robin::RoundRobin;

const BUCKET: &str = "bench";
const KEY: &str = "AKSCALE";
const SECRET: &str = "SECRETSCALE";
const ENV: [(&str, &str); 2] = [("AWS_ACCESS_KEY_ID", KEY), ("AWS_SECRET_ACCESS_KEY", SECRET)];
const ROUNDS: usize = 3;

struct Sizes {
    members: usize,
    propfinds: usize,
    gets: usize,
    puts: usize,
    big: u64,
}

fn sizes() -> Sizes {
    if std::env::var_os("WHARF_BENCH_SMALL").is_some() {
        Sizes { members: 500, propfinds: 5, gets: 2_000, puts: 300, big: 64 << 20 }
    } else {
        Sizes { members: 10_000, propfinds: 20, gets: 20_000, puts: 2_000, big: 1 << 30 }
    }
}

/// A throwaway PostgreSQL cluster (`tests/postgres.sh`), stopped on drop.
struct Postgres {
    /// `postgres://postgres@127.0.0.1:PORT/postgres`.
    url: String,
    dir: tempfile::TempDir,
}

impl Postgres {
    fn script() -> &'static str {
        concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/postgres.sh")
    }

    fn start() -> Postgres {
        // Directly in /tmp: the script hands the folder to the `postgres` user when run as root.
        let dir = tempfile::Builder::new().prefix("wharf-bench-pg.").tempdir().expect("PostgreSQL folder");
        let out = Command::new("bash").arg(Self::script()).arg("start").arg(dir.path()).output().expect("postgres.sh");
        assert!(out.status.success(), "postgres.sh start: {}", String::from_utf8_lossy(&out.stderr));
        let url = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        Postgres { url, dir }
    }

    /// A new database on the cluster, and its URL for `--database`.
    fn database(&self, name: &str) -> String {
        postgres::create_database(&self.url, name).unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"))
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = Command::new("bash").arg(Self::script()).arg("stop").arg(self.dir.path()).status();
    }
}

/// A Wharf server, killed on drop.
struct Node {
    child: Child,
    url: String,
}

impl Node {
    fn start(data: &Path, args: &[&str]) -> Node {
        let (child, url) = start_wharf_env(data, args, &ENV);
        Node { child, url }
    }

    /// `host:port`, for nginx's upstream.
    fn authority(&self) -> &str {
        self.url.trim_start_matches("http://").trim_end_matches('/')
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One setup under test: the URL the client talks to and what serves it.
struct Setup {
    name: &'static str,
    base: String,
    client: Client,
    _proxy: Option<RoundRobin>,
    _nodes: Vec<Node>,
}

impl Setup {
    fn new(name: &'static str, base: String, nodes: Vec<Node>, proxy: Option<RoundRobin>) -> Setup {
        Setup { name, base, client: client(Some(PASSWORD)), _proxy: proxy, _nodes: nodes }
    }
}

/// A: SQLite in the data folder, blobs on local disk.
fn setup_a(tmp: &Path) -> Setup {
    let node = Node::start(&tmp.join("a"), &[]);
    Setup::new("A: SQLite + disk, 1 node", node.url.clone(), vec![node], None)
}

/// The flags of a node on PostgreSQL database `db` with its blobs under `prefix` of the bucket.
fn pg_s3_args<'a>(db: &'a str, prefix: &'a str, s3: &'a s3s_fs::S3sFs) -> [&'a str; 6] {
    ["--database", db, "--blobs", prefix, "--s3-endpoint", &s3.endpoint]
}

/// B: one node on PostgreSQL and S3.
fn setup_b(tmp: &Path, pg: &Postgres, s3: &s3s_fs::S3sFs) -> Setup {
    let db = pg.database("scale_one");
    let node = Node::start(&tmp.join("b"), &pg_s3_args(&db, "s3://bench/one", s3));
    Setup::new("B: PG + S3, 1 node", node.url.clone(), vec![node], None)
}

/// C: three nodes on one PostgreSQL database and one bucket prefix, behind nginx. The
/// nodes start one after another, so only the first creates the admin user.
fn setup_c(tmp: &Path, pg: &Postgres, s3: &s3s_fs::S3sFs) -> Setup {
    let db = pg.database("scale_three");
    let args = pg_s3_args(&db, "s3://bench/three", s3);
    let nodes: Vec<Node> = (1..=3).map(|n| Node::start(&tmp.join(format!("c{n}")), &args)).collect();
    let authorities: Vec<String> = nodes.iter().map(|n| n.authority().to_owned()).collect();
    let proxy = RoundRobin::start(&tmp.join("proxy"), &authorities);
    Setup::new("C: PG + S3, 3 nodes + nginx", format!("{}/", proxy.url), nodes, Some(proxy))
}

#[derive(Default, Clone)]
struct Runs {
    put_members: f64,
    propfind: Vec<f64>,
    propfind_bytes: usize,
    get_small: Vec<f64>,
    put_small: Vec<f64>,
    /// MiB/s.
    put_big: f64,
    /// MiB/s.
    get_big: f64,
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let sz = sizes();
    // Declared first, dropped last: the servers go before their database and bucket.
    let pg = Postgres::start();
    let s3 = s3s_fs::S3sFs::start(BUCKET, KEY, SECRET);
    let tmp = tempfile::tempdir().expect("tmp");
    eprintln!("PostgreSQL at {}, S3 at {}", pg.url, s3.endpoint);
    let setups = [setup_a(tmp.path()), setup_b(tmp.path(), &pg, &s3), setup_c(tmp.path(), &pg, &s3)];
    let before = load_average();
    let runs = rt.block_on(measure(&setups, &sz));
    report(&sz, &setups, &runs);
    println!("(load average {before} before the measurements, {} after)", load_average());
}

/// The one-minute load average, to tell a busy machine's run from a quiet one's.
fn load_average() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace().next().unwrap_or("?").to_owned()
}

async fn measure(setups: &[Setup], sz: &Sizes) -> Vec<Runs> {
    let mut runs = vec![Runs::default(); setups.len()];
    for (s, r) in setups.iter().zip(runs.iter_mut()) {
        fill(s, r, sz).await;
    }
    for round in 0..ROUNDS {
        for k in 0..setups.len() {
            let i = (k + round) % setups.len();
            small_round(&setups[i], &mut runs[i], sz, round).await;
        }
    }
    // The large transfers in the reverse order, A last.
    for i in (0..setups.len()).rev() {
        big(&setups[i], &mut runs[i], sz).await;
    }
    runs
}

/// The collection of `members` files of 4 KiB that PROPFIND lists and GET reads.
async fn fill(s: &Setup, r: &mut Runs, sz: &Sizes) {
    let coll = format!("{}bench/", s.base);
    assert!(send(&s.client, "MKCOL", &coll).await.is_success(), "{}: MKCOL", s.name);
    r.put_members = put_small(&s.client, &coll, sz.members).await;
    eprintln!("{}: {} members written at {:.0} PUT/s", s.name, sz.members, r.put_members);
}

async fn small_round(s: &Setup, r: &mut Runs, sz: &Sizes, round: usize) {
    let coll = format!("{}bench/", s.base);
    let (p, bytes) = propfind(&s.client, &coll, sz.propfinds).await;
    let g = get_small(&s.client, &coll, sz.members, sz.gets).await;
    let own = format!("{}put-{round}/", s.base);
    assert!(send(&s.client, "MKCOL", &own).await.is_success(), "{}: MKCOL", s.name);
    let w = put_small(&s.client, &own, sz.puts).await;
    eprintln!("round {round} {}: PROPFIND {p:.1}/s ({bytes} bytes), GET {g:.0}/s, PUT {w:.0}/s", s.name);
    r.propfind.push(p);
    r.propfind_bytes = bytes;
    r.get_small.push(g);
    r.put_small.push(w);
}

/// One large PUT (streamed by the bench's client) and GET (curl) per setup, in MiB/s.
async fn big(s: &Setup, r: &mut Runs, sz: &Sizes) {
    const MB_PER_MIB: f64 = (1 << 20) as f64 / 1e6;
    let url = format!("{}big.bin", s.base);
    r.put_big = put_big(&s.client, &url, sz.big).await / MB_PER_MIB;
    r.get_big = get_big(Some(&format!("admin:{PASSWORD}")), &url).await / MB_PER_MIB;
    eprintln!("{}: PUT big {:.0} MiB/s, GET big {:.0} MiB/s", s.name, r.put_big, r.get_big);
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// With thousands separators, as BENCHMARKS.md writes them.
fn fmt(x: f64) -> String {
    if x >= 100.0 {
        let digits = format!("{x:.0}");
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        out
    } else {
        format!("{x:.1}")
    }
}

fn report(sz: &Sizes, s: &[Setup], runs: &[Runs]) {
    let n = fmt(sz.members as f64);
    let big = if sz.big >= 1 << 30 { format!("{} GiB", sz.big >> 30) } else { format!("{} MiB", sz.big >> 20) };
    println!("\n| measurement | {} | {} | {} | B / A | C / A | C / B |", s[0].name, s[1].name, s[2].name);
    println!("|---|---:|---:|---:|---:|---:|---:|");
    let row = |what: String, unit: &str, f: &dyn Fn(&Runs) -> f64| {
        let v: Vec<f64> = runs.iter().map(f).collect();
        let cells: Vec<String> = v.iter().map(|x| format!("{} {unit}", fmt(*x))).collect();
        let ratios = format!("{:.2}x | {:.2}x | {:.2}x", v[1] / v[0], v[2] / v[0], v[2] / v[1]);
        println!("| {what} | {} | {ratios} |", cells.join(" | "));
    };
    row(format!("PROPFIND Depth 1 allprop, {n} members"), "req/s", &|r| median(&r.propfind));
    row("GET 4 KiB".into(), "req/s", &|r| median(&r.get_small));
    row("PUT 4 KiB".into(), "req/s", &|r| median(&r.put_small));
    row(format!("PUT {big}"), "MiB/s", &|r| r.put_big);
    row(format!("GET {big}"), "MiB/s", &|r| r.get_big);
    let fills: Vec<String> = runs.iter().map(|r| format!("{} req/s", fmt(r.put_members))).collect();
    println!("| PUT 4 KiB, the first {n} (fills the collection; one run) | {} | | | |", fills.join(" | "));
    let sizes: Vec<String> = runs.iter().map(|r| format!("{} bytes", fmt(r.propfind_bytes as f64))).collect();
    println!("| PROPFIND answer size | {} | | | |", sizes.join(" | "));
    println!("(small requests: medians of {ROUNDS} rounds, the setups' order rotated each round)");
}
