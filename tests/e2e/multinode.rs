//! Three servers on one PostgreSQL database and one S3 bucket, as they run behind a load
//! balancer: a lock, a file, a password and a crash seen from every node. Needs the suite's
//! PostgreSQL pass (`WHARF_TEST_POSTGRES`, set by `tests/run.sh`), nginx (the round-robin
//! proxy) and litmus; the SQLite pass skips this module.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::StreamExt;

use crate::harness::*;

use crate::s3_blobs::s3s_fs;

#[path = "../support/round_robin.rs"]
mod round_robin;
use round_robin::RoundRobin;

const BUCKET: &str = "files";
const KEY: &str = "AKNODES";
const SECRET: &str = "SECRETNODES";
const ENV: [(&str, &str); 2] = [("AWS_ACCESS_KEY_ID", KEY), ("AWS_SECRET_ACCESS_KEY", SECRET)];

/// The servers, their bucket, their database and the proxy in front of them.
struct Cluster {
    nodes: Vec<Server>,
    s3: s3s_fs::S3sFs,
    database: String,
    proxy: RoundRobin,
    _tmp: tempfile::TempDir,
}

impl Cluster {
    /// Three nodes on a new database and bucket, started at once as a cluster's first
    /// start would be (they must agree on who sets the repository up).
    fn start() -> Cluster {
        Cluster::start_with(&[])
    }

    /// [`Cluster::start`] with more flags for every node.
    fn start_with(extra: &[&str]) -> Cluster {
        let tmp = tempfile::tempdir().expect("temp dir");
        let s3 = s3s_fs::S3sFs::start(BUCKET, KEY, SECRET);
        let database = fresh_database();
        let args = [
            "--database",
            &database,
            "--blobs",
            "s3://files/wharf",
            "--s3-endpoint",
            &s3.endpoint,
            "--s3-grace-seconds",
            "2",
        ];
        let args: Vec<&str> = args.iter().chain(extra).copied().collect();
        let args = &args[..];
        let nodes: Vec<Server> = std::thread::scope(|scope| {
            let starting: Vec<_> = (1..=3)
                .map(|n| {
                    let data = tmp.path().join(format!("node{n}"));
                    scope.spawn(move || Server::start_in_env(&data, args, &ENV))
                })
                .collect();
            starting.into_iter().map(|s| s.join().expect("a node started")).collect()
        });
        let authorities: Vec<String> = nodes.iter().map(|n| n.authority().to_owned()).collect();
        let proxy = RoundRobin::start(&tmp.path().join("proxy"), &authorities);
        Cluster { nodes, s3, database, proxy, _tmp: tmp }
    }

    fn node(&self, n: usize) -> &Server {
        &self.nodes[n - 1]
    }

    /// Objects and multipart parts in the bucket, by folder of the prefix (`parts`: the
    /// parts of uploads in progress, which s3s-fs keeps beside the buckets).
    fn objects(&self, folder: &str) -> Vec<PathBuf> {
        let root = self.s3.root.path();
        if folder == "parts" {
            let names = std::fs::read_dir(root).expect("the S3 folder").map(|e| e.expect("entry").path());
            return names.filter(|p| p.to_string_lossy().contains(".part-")).collect();
        }
        match std::fs::read_dir(root.join(BUCKET).join("wharf").join(folder)) {
            Ok(entries) => entries.map(|e| e.expect("entry").path()).collect(),
            Err(_) => Vec::new(),
        }
    }
}

/// A database of its own on the suite's PostgreSQL server.
fn fresh_database() -> String {
    let server = std::env::var("WHARF_TEST_POSTGRES")
        .ok()
        .filter(|s| !s.is_empty())
        .expect("the multi-node tests run in the PostgreSQL pass of tests/run.sh (WHARF_TEST_POSTGRES)");
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros());
    let name = format!("cluster_{}_{now}_{n}", std::process::id());
    create_database(&server, &name)
}

const LOCK_BODY: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype>
<D:owner>node test</D:owner></D:lockinfo>"#;

#[tokio::test]
async fn litmus_passes_through_a_round_robin_proxy_over_three_nodes() {
    let c = Cluster::start();
    let work = tempfile::tempdir().expect("temp dir");
    let out = Command::new("litmus")
        .arg(format!("{}/", c.proxy.url))
        .args(["admin", ADMIN_PASSWORD])
        .current_dir(work.path())
        .output()
        .expect("litmus");
    let text = String::from_utf8_lossy(&out.stdout);
    // "<- summary for `basic': of 16 tests run: 16 passed, 0 failed. 100.0%"
    let summaries: Vec<&str> = text.lines().filter(|l| l.starts_with("<- summary")).collect();
    let count = |after: &str| -> u32 {
        let numbers = summaries.iter().filter_map(|l| l.split(after).nth(1)?.split_whitespace().next());
        numbers.filter_map(|n| n.parse::<u32>().ok()).sum()
    };
    let (passed, run) = (count("tests run: "), count("': of "));
    assert_eq!((passed, run), (104, 104), "{text}");
    assert!(!text.contains("WARNING"), "{text}");
}

#[tokio::test]
async fn a_lock_taken_through_one_node_blocks_a_put_through_another() {
    let c = Cluster::start();
    assert_eq!(put(c.node(1), "/locked.txt", "v1").await, 201);
    let lock = c.node(1).req("LOCK", "/locked.txt").header("Timeout", "Second-600").body(LOCK_BODY);
    let lock = lock.send().await.expect("LOCK");
    assert_eq!(lock.status(), 200);
    let token = header(&lock, "lock-token");

    assert_eq!(put(c.node(2), "/locked.txt", "v2").await, 423);
    let with_token = c.node(3).req("PUT", "/locked.txt").header("If", format!("({token})")).body("v3");
    assert_eq!(with_token.send().await.expect("PUT").status(), 204);
    assert_eq!(get(c.node(2), "/locked.txt").await, (200, b"v3".to_vec()));
}

#[tokio::test]
async fn a_file_written_through_one_node_is_read_through_the_others_at_once() {
    let c = Cluster::start();
    for round in 0..20u8 {
        let (small, large) = (vec![round; 3000], vec![round; 300_000]);
        assert!([201, 204].contains(&put(c.node(2), "/small.bin", small.clone()).await));
        assert!([201, 204].contains(&put(c.node(2), "/large.bin", large.clone()).await));
        assert_eq!(get(c.node(3), "/small.bin").await, (200, small), "round {round}");
        assert_eq!(get(c.node(1), "/large.bin").await, (200, large), "round {round}");
        let moved = format!("/moved-{round}.bin");
        let mv = c.node(3).req("MOVE", "/small.bin").header("Destination", c.node(3).url(&moved)).send().await;
        assert_eq!(mv.expect("MOVE").status(), 201);
        assert_eq!(get(c.node(1), "/small.bin").await.0, 404, "round {round}: the MOVE shows on node 1");
        assert_eq!(get(c.node(2), &moved).await.0, 200, "round {round}");
    }
}

#[tokio::test]
async fn a_password_changed_through_one_node_is_refused_by_the_others_within_seconds() {
    let c = Cluster::start();
    let with_db = |n: usize| {
        let mut command = crate::harness::wharf(&c.node(n).data);
        command.env("WHARF_DATABASE", &c.database).env("WHARF_LOG", "warn");
        command
    };
    let run = |n: usize, args: &[&str], stdin: &str| {
        use std::io::Write;
        let mut child = with_db(n).args(args).arg("--data").arg(&c.node(n).data).stdin(Stdio::piped()).spawn().unwrap();
        child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        assert!(child.wait().unwrap().success(), "wharf {args:?}");
    };
    run(1, &["user", "add", "carol", "--password-stdin"], "first-Pass-1\n");
    let as_carol = |n: usize, password: &'static str| {
        let s = c.node(n);
        s.client.get(s.url("/")).header("Authorization", basic("carol", password)).send()
    };
    for n in 1..=3 {
        assert_eq!(as_carol(n, "first-Pass-1").await.expect("GET").status(), 200, "node {n}");
    }
    run(1, &["user", "passwd", "carol", "--password-stdin"], "second-Pass-2\n");
    let changed = Instant::now();
    for n in [2, 3] {
        loop {
            let status = as_carol(n, "first-Pass-1").await.expect("GET").status();
            if status == 401 {
                break;
            }
            assert!(changed.elapsed() < Duration::from_secs(5), "node {n} still takes the old password");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(as_carol(n, "second-Pass-2").await.expect("GET").status(), 200, "node {n}");
    }
}

/// A body that sends `len` bytes slowly, so the upload is still under way when its node
/// is killed.
fn slow_body(seed: u8, len: usize) -> reqwest::Body {
    let chunk = 256 << 10;
    let chunks = (0..len / chunk).map(move |i| {
        let bytes: Vec<u8> = (0..chunk).map(|j| (j as u8).wrapping_add(seed).wrapping_add(i as u8)).collect();
        Ok::<_, std::io::Error>(bytes)
    });
    let stream = futures_util::stream::iter(chunks).then(|c| async move {
        tokio::time::sleep(Duration::from_millis(40)).await;
        c
    });
    reqwest::Body::wrap_stream(stream)
}

#[tokio::test]
async fn a_node_killed_during_20_uploads_leaves_no_partial_file_and_no_orphan_anywhere() {
    let mut c = Cluster::start();
    let victim = c.node(2);
    let uploads: Vec<_> = (0..20u8)
        .map(|i| {
            let request = victim.req("PUT", &format!("/upload-{i}.bin")).body(slow_body(i, 24 << 20));
            tokio::spawn(async move { request.send().await.map(|r| r.status().as_u16()) })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    while c.objects("parts").len() < 5 {
        assert!(Instant::now() < deadline, "uploads never reached the bucket");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    c.nodes[1].kill();
    let statuses: Vec<_> = futures_util::future::join_all(uploads).await;
    assert!(statuses.iter().all(|s| !matches!(s, Ok(Ok(201)))), "an upload finished before the kill");

    for n in [1, 3] {
        let (status, xml) = propfind(c.node(n), "/", "1", "").await;
        assert_eq!(status, 207);
        assert!(!xml.contains("upload-"), "node {n} shows a file of the killed uploads: {xml}");
    }
    // The surviving nodes' sweeps abort the killed node's uploads once past the grace
    // period (2 s), and nothing else is left.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left: Vec<_> = ["parts", "uploads", "data", "names"].iter().flat_map(|f| c.objects(f)).collect();
        if left.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "left in the bucket: {left:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(c.objects("blobs").is_empty(), "{:?}", c.objects("blobs"));
    let data = &c.node(1).data;
    let blob_rows = db_count_in(&c.database, "SELECT COUNT(*) FROM blobs").await;
    let file_rows = db_count_in(&c.database, "SELECT COUNT(*) FROM resources WHERE name LIKE 'upload-%'").await;
    assert_eq!((blob_rows, file_rows), (0, 0), "rows left ({})", data.display());
}

/// The one integer `sql` returns from the cluster's database.
async fn db_count_in(url: &str, sql: &str) -> i64 {
    pg_value(url, sql, None).await.and_then(|n| n.parse().ok()).expect(sql)
}

#[tokio::test]
async fn failed_logins_spread_over_the_nodes_lock_the_user_out_on_every_node() {
    let c = Cluster::start();
    let attempt = |n: usize, password: &'static str| {
        let s = c.node(n);
        s.client.get(s.url("/")).header("Authorization", basic("admin", password)).send()
    };
    // Five wrong guesses (the default limit), one or two per node: no node alone saw five.
    for n in [1, 2, 3, 1, 2] {
        assert_eq!(attempt(n, "wrong guess").await.expect("GET").status(), 401, "node {n}");
    }
    for n in [3, 2, 1] {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let status = attempt(n, ADMIN_PASSWORD).await.expect("GET").status();
            if status == 429 {
                break;
            }
            assert!(Instant::now() < deadline, "node {n} still lets the locked-out user in ({status})");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[tokio::test]
async fn digest_logins_work_when_challenge_and_answer_reach_different_nodes() {
    let c = Cluster::start_with(&["--digest"]);
    // Each of curl's requests goes to the next node: the challenge's nonce comes from one,
    // the answer to it reaches another, which must recognise the nonce as the cluster's.
    for _ in 0..3 {
        let out = Command::new("curl")
            .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", "--digest", "-u"])
            .arg(format!("admin:{ADMIN_PASSWORD}"))
            .arg(format!("{}/", c.proxy.url))
            .output()
            .expect("curl");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "200", "{}", String::from_utf8_lossy(&out.stderr));
    }
}
