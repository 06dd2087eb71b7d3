//! The load test: a few hundred clients, each in a folder of its own, mixing every method for
//! a while. Every answer must be the one the client's own requests call for (no 5xx, no cut
//! connection, no 423 from someone else's lock), and the server's memory and open file
//! descriptors must stay flat from the first quarter of the run to the last.
//!
//! `WHARF_LOAD_CLIENTS` (default 200) and `WHARF_LOAD_SECONDS` (default 20) set the size; the
//! full size is 300 clients for 60 seconds.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::{Client, Method};
use tokio::sync::Mutex;

use crate::harness::{basic, client_builder, Server, ADMIN_PASSWORD};
use crate::rng::Rng;

const LOCKINFO: &str = r#"<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype><D:owner>load</D:owner></D:lockinfo>"#;
const PROPPATCH: &str = r#"<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><x:n xmlns:x="urn:load">1</x:n></D:prop></D:set></D:propertyupdate>"#;

/// One client's session: a folder with a file that exists between its own steps.
struct Session {
    base: String,
    client: Client,
    errors: Arc<Mutex<Vec<String>>>,
}

impl Session {
    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    async fn expect(&self, method: &str, path: &str, headers: &[(&str, String)], body: Vec<u8>, ok: &[u16]) -> u16 {
        let mut req = self.client.request(Method::from_bytes(method.as_bytes()).expect("method"), self.url(path));
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let status = match req.body(body).send().await {
            Ok(r) => {
                let status = r.status().as_u16();
                // Read the whole answer: a client that stops reading is not the workload here.
                let _ = r.bytes().await;
                status
            }
            Err(e) => {
                self.errors.lock().await.push(format!("{method} {path}: {e}"));
                return 0;
            }
        };
        if !ok.contains(&status) {
            self.errors.lock().await.push(format!("{method} {path}: {status}"));
        }
        status
    }

    /// One round of every method on the client's own folder.
    async fn round(&self, dir: &str, rng: &mut Rng) {
        let file = format!("{dir}file.bin");
        let other = format!("{dir}other.bin");
        let len = rng.below(64 * 1024) as usize;
        let body = rng.bytes(len);
        self.expect("PUT", &file, &[], body, &[201, 204]).await;
        self.expect("GET", &file, &[], vec![], &[200]).await;
        self.expect("HEAD", &file, &[], vec![], &[200]).await;
        self.expect("PROPFIND", dir, &[("Depth", "1".into())], vec![], &[207]).await;
        self.expect("PROPPATCH", &file, &[], PROPPATCH.into(), &[207]).await;
        let dest = [("Destination", self.url(&other))];
        self.expect("COPY", &file, &dest, vec![], &[201, 204]).await;
        let moved = [("Destination", self.url(&format!("{dir}moved.bin")))];
        self.expect("MOVE", &other, &moved, vec![], &[201, 204]).await;
        let sub = format!("{dir}sub{}/", rng.below(1000));
        self.expect("MKCOL", &sub, &[], vec![], &[201, 405]).await;
        self.expect("DELETE", &sub, &[], vec![], &[204]).await;
        self.lock_round(&file).await;
        self.expect("OPTIONS", dir, &[], vec![], &[200]).await;
    }

    async fn lock_round(&self, file: &str) {
        let resp =
            self.client.request(Method::from_bytes(b"LOCK").expect("m"), self.url(file)).body(LOCKINFO).send().await;
        let token = match resp {
            Ok(r) if r.status().as_u16() == 200 => {
                r.headers().get("lock-token").and_then(|v| v.to_str().ok()).map(str::to_owned)
            }
            Ok(r) => {
                self.errors.lock().await.push(format!("LOCK {file}: {}", r.status()));
                None
            }
            Err(e) => {
                self.errors.lock().await.push(format!("LOCK {file}: {e}"));
                None
            }
        };
        if let Some(token) = token {
            self.expect("PUT", file, &[("If", format!("({token})"))], b"locked write".to_vec(), &[204]).await;
            self.expect("UNLOCK", file, &[("Lock-Token", token)], vec![], &[204]).await;
        }
    }
}

/// Resident memory in KiB and open descriptors of a process, from /proc.
fn usage(pid: u32) -> (u64, u64) {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count() as u64).expect("the server's descriptors");
    (crate::harness::rss_kib(pid), fds)
}

fn peak(samples: &[(u64, u64)]) -> (u64, u64) {
    samples.iter().fold((0, 0), |(r, f), (sr, sf)| (r.max(*sr), f.max(*sf)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundreds_of_clients_mixing_every_method_get_only_their_own_errors_in_flat_memory() {
    let _turn = crate::ONE_AT_A_TIME.lock().await;
    load(&[], "load test").await;
}

/// The same on a host folder served in place, with half the clients and time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_host_folder_hundreds_of_clients_get_only_their_own_errors_in_flat_memory() {
    let _turn = crate::ONE_AT_A_TIME.lock().await;
    let folder = tempfile::tempdir().expect("host folder");
    let path = folder.path().to_str().expect("UTF-8 temp path").to_owned();
    load(&["--folder", &path], "load test on a host folder").await;
}

async fn load(extra: &[&str], what: &str) {
    let host = !extra.is_empty();
    let clients = crate::setting("WHARF_LOAD_CLIENTS", 200) as usize / if host { 2 } else { 1 };
    let seconds = crate::setting("WHARF_LOAD_SECONDS", 20) / if host { 2 } else { 1 };
    let mut seed = Rng::from_env(what);
    // The content cache fills up to its bound (64 MiB by default) while the test runs:
    // growth by design, which a smaller bound keeps from hiding (or faking) a leak.
    let mut args = vec!["--lockout-after", "0", "--address-lockout-after", "0", "--content-cache-bytes", "4194304"];
    args.extend_from_slice(extra);
    let s = Server::start_with(&args);
    let auth = basic("admin", ADMIN_PASSWORD);
    let errors = Arc::new(Mutex::new(Vec::new()));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for n in 0..clients {
        let headers = [(reqwest::header::AUTHORIZATION, auth.parse().expect("header"))].into_iter().collect();
        let client = client_builder().default_headers(headers).pool_max_idle_per_host(1).build().expect("client");
        let session = Session { base: s.base.trim_end_matches('/').to_owned(), client, errors: errors.clone() };
        let mut rng = Rng::new(seed.next());
        tasks.push(tokio::spawn(async move {
            let dir = format!("/c{n}/");
            session.expect("MKCOL", &dir, &[], vec![], &[201]).await;
            while Instant::now() < deadline {
                session.round(&dir, &mut rng).await;
            }
        }));
    }
    let mut samples = Vec::new();
    while Instant::now() < deadline {
        samples.push(usage(s.pid()));
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    for t in tasks {
        t.await.expect("client task");
    }
    let errors = errors.lock().await;
    assert!(errors.is_empty(), "{} unexpected answers, first: {:#?}", errors.len(), &errors[..errors.len().min(20)]);
    let quarter = samples.len() / 4;
    assert!(quarter >= 2, "too few samples: {}", samples.len());
    let (first, last) = (peak(&samples[..quarter]), peak(&samples[samples.len() - quarter..]));
    println!("{what}: peak RSS {} → {} KiB, peak fds {} → {}", first.0, last.0, first.1, last.1);
    assert!(last.0 <= first.0 + first.0 / 4 + 16 * 1024, "memory grew: {first:?} → {last:?}");
    assert!(last.1 <= first.1 + 32, "descriptors grew: {first:?} → {last:?}");
}
