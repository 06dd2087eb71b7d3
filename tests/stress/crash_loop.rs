//! The crash loop: workers upload, overwrite, move, copy and delete (each delete and overwrite
//! collects garbage) while the server is SIGKILLed at a random moment, round after round. After
//! every restart the store must be whole: `wharf fsck` finds nothing (its first check is the
//! database's own integrity check), every acknowledged write is there with its exact bytes, and the one
//! operation each worker had in flight is either wholly there or wholly absent, never half.
//!
//! `WHARF_CRASH_ROUNDS` (default 12) sets the number of kills; the full size is 200.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use reqwest::{Client, Method, StatusCode};

use crate::harness::{get, Server};
use crate::rng::Rng;

const WORKERS: usize = 6;
/// Paths per worker: few, so operations keep landing on files that exist.
const FILES: [&str; 6] = ["f0", "f1", "f2", "d/g0", "d/g1", "d/g2"];

type Content = Option<Arc<Vec<u8>>>;

/// An operation's effect: the value each path has once it is applied.
struct Effect {
    path: String,
    before: Content,
    after: Content,
}

/// One worker: its own paths, so the order of its acknowledged writes is known exactly.
struct Worker {
    n: usize,
    acked: HashMap<String, Content>,
    /// The operation that was in flight when the server died: all of it or none of it.
    in_flight: Vec<Effect>,
    rng: Rng,
    failures: Vec<String>,
    /// Acknowledged operations, and interrupted ones found applied or not: the summary line
    /// shows the loop really crashed in the middle of things.
    acks: u64,
    interrupted: (u64, u64),
}

impl Worker {
    fn path(&self, name: &str) -> String {
        format!("/w{}/{name}", self.n)
    }

    /// Runs operations until one fails to get an answer (the server died).
    async fn run(mut self, s: Arc<String>, client: Client) -> Worker {
        loop {
            let (method, from, to, body) = self.pick();
            let effects = self.effects(&method, &from, &to, &body);
            let mut req = client.request(method.clone(), format!("{s}{}", from.trim_start_matches('/')));
            if let Some(to) = &to {
                req = req.header("Destination", format!("{s}{}", to.trim_start_matches('/')));
            }
            if let Some(body) = &body {
                req = req.body(body.to_vec());
            }
            match req.send().await {
                Err(_) => {
                    self.in_flight = effects;
                    return self;
                }
                Ok(resp) => self.settle(&method, &from, resp.status(), effects),
            }
        }
    }

    fn pick(&mut self) -> (Method, String, Option<String>, Option<Arc<Vec<u8>>>) {
        let (a, b) = (self.rng.below(FILES.len() as u64) as usize, self.rng.below(FILES.len() as u64) as usize);
        let (from, to) = (self.path(FILES[a]), self.path(FILES[b]));
        match self.rng.below(10) {
            0..=4 => {
                let len = match self.rng.below(4) {
                    0 => 0,
                    1 | 2 => 1 + self.rng.below(8 * 1024) as usize,
                    _ => 8 * 1024 + self.rng.below(400 * 1024) as usize,
                };
                (Method::PUT, from, None, Some(Arc::new(self.rng.bytes(len))))
            }
            5 | 6 if from != to => (Method::from_bytes(b"MOVE").expect("method"), from, Some(to), None),
            7 if from != to => (Method::from_bytes(b"COPY").expect("method"), from, Some(to), None),
            _ => (Method::DELETE, from, None, None),
        }
    }

    fn effects(&self, method: &Method, from: &str, to: &Option<String>, body: &Content) -> Vec<Effect> {
        let now = |p: &str| self.acked.get(p).cloned().flatten();
        let effect = |path: &str, after: Content| Effect { path: path.to_owned(), before: now(path), after };
        match (method.as_str(), to) {
            ("PUT", _) => vec![effect(from, body.clone())],
            ("DELETE", _) => vec![effect(from, None)],
            ("MOVE", Some(to)) if now(from).is_some() => vec![effect(to, now(from)), effect(from, None)],
            ("COPY", Some(to)) if now(from).is_some() => vec![effect(to, now(from))],
            _ => Vec::new(),
        }
    }

    fn settle(&mut self, method: &Method, from: &str, status: StatusCode, effects: Vec<Effect>) {
        let missing = self.acked.get(from).cloned().flatten().is_none();
        let expected = status.is_success() || (status == StatusCode::NOT_FOUND && missing && method != Method::PUT);
        if !expected {
            self.failures.push(format!("{method} {from}: {status}"));
        }
        if status.is_success() {
            self.acks += 1;
            for e in effects {
                self.acked.insert(e.path, e.after);
            }
        }
    }

    /// Compares what the restarted server serves with what was acknowledged, then takes
    /// what it serves as the new truth.
    async fn verify(&mut self, s: &Server) {
        let mut seen = HashMap::new();
        for name in FILES {
            let path = self.path(name);
            seen.insert(path.clone(), fetch(s, &path).await);
        }
        let in_flight = std::mem::take(&mut self.in_flight);
        let all_before = in_flight.iter().all(|e| same(&seen[&e.path], &e.before));
        let all_after = in_flight.iter().all(|e| same(&seen[&e.path], &e.after));
        if !in_flight.is_empty() && !all_before && !all_after {
            self.failures.push(format!("worker {}: the interrupted operation is half applied", self.n));
        }
        if !in_flight.is_empty() && (!all_before || !all_after) {
            let (applied, not) = &mut self.interrupted;
            *if all_after { applied } else { not } += 1;
        }
        let touched: Vec<&str> = in_flight.iter().map(|e| e.path.as_str()).collect();
        for (path, got) in &seen {
            let want = self.acked.get(path).cloned().flatten();
            if !touched.contains(&path.as_str()) && !same(got, &want) {
                let lens = (got.as_ref().map(|b| b.len()), want.as_ref().map(|b| b.len()));
                self.failures.push(format!("{path}: serves {:?} bytes, acknowledged {:?}", lens.0, lens.1));
            }
        }
        self.acked = seen;
    }
}

fn same(a: &Content, b: &Content) -> bool {
    a.as_deref() == b.as_deref()
}

async fn fetch(s: &Server, path: &str) -> Content {
    match get(s, path).await {
        (404, _) => None,
        (200, bytes) => Some(Arc::new(bytes)),
        (other, _) => panic!("GET {path} after restart: {other}"),
    }
}

/// `wharf fsck`, beside the restarted server: the database's own integrity check, then the
/// model's invariants.
fn check_store(s: &Server) -> Option<String> {
    let fsck = std::process::Command::new(env!("CARGO_BIN_EXE_wharf"))
        .args(["fsck", "--data"])
        .arg(&s.data)
        .output()
        .expect("run wharf fsck");
    (!fsck.status.success()).then(|| format!("fsck: {}", String::from_utf8_lossy(&fsck.stdout)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_sigkill_and_nothing_is_half_visible() {
    let _turn = crate::ONE_AT_A_TIME.lock().await;
    crash_loop(Server::start(), "crash loop").await;
}

/// The same on a host folder served in place: its files are the truth, written by rename.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_host_folder_acknowledged_writes_survive_sigkill_and_nothing_is_half_visible() {
    let _turn = crate::ONE_AT_A_TIME.lock().await;
    let folder = tempfile::tempdir().expect("host folder");
    let path = folder.path().to_str().expect("UTF-8 temp path").to_owned();
    crash_loop(Server::start_with(&["--folder", &path]), "crash loop on a host folder").await;
}

async fn crash_loop(mut s: Server, what: &str) {
    let rounds = crate::setting("WHARF_CRASH_ROUNDS", 12);
    let mut rng = Rng::from_env(what);
    let mut workers: Vec<Worker> = (0..WORKERS)
        .map(|n| Worker {
            n,
            acked: HashMap::new(),
            in_flight: Vec::new(),
            rng: Rng::new(rng.next()),
            failures: vec![],
            acks: 0,
            interrupted: (0, 0),
        })
        .collect();
    for w in &workers {
        assert_eq!(crate::harness::mkcol(&s, &w.path("")).await, 201);
        assert_eq!(crate::harness::mkcol(&s, &w.path("d/")).await, 201);
    }
    // The harness's client: the admin's credentials on every request.
    let client = s.client.clone();
    for round in 0..rounds {
        let base = Arc::new(s.base.clone());
        let tasks: Vec<_> = workers.drain(..).map(|w| tokio::spawn(w.run(base.clone(), client.clone()))).collect();
        tokio::time::sleep(Duration::from_millis(100 + rng.below(1500))).await;
        s.kill();
        for t in tasks {
            workers.push(t.await.expect("worker"));
        }
        s.restart();
        for w in &mut workers {
            w.verify(&s).await;
        }
        let problems = check_store(&s);
        let failures: Vec<&String> = workers.iter().flat_map(|w| &w.failures).chain(&problems).collect();
        assert!(failures.is_empty(), "round {round}: {failures:#?}");
    }
    let acks: u64 = workers.iter().map(|w| w.acks).sum();
    let (applied, not) = workers.iter().fold((0, 0), |(a, n), w| (a + w.interrupted.0, n + w.interrupted.1));
    println!(
        "{what}: {rounds} kills, {acks} acknowledged operations, interrupted ones {applied} applied and {not} not"
    );
    assert!(acks > rounds, "the workload hardly ran");
}
