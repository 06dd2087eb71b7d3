//! Starting and stopping the real server, and a small HTTP client vocabulary.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use reqwest::{Client, Method, RequestBuilder};

/// A running `wharf serve` with its own data directory.
pub struct Server {
    child: Option<Child>,
    pub base: String,
    pub data: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    args: Vec<String>,
    pub client: Client,
}

impl Server {
    /// Starts a server on a fresh temporary data directory.
    pub fn start() -> Server {
        Self::start_with(&[])
    }

    /// Starts a server on a fresh temporary data directory with extra `serve` flags.
    pub fn start_with(args: &[&str]) -> Server {
        let tmp = tempfile::tempdir().expect("temp dir");
        let data = tmp.path().join("data");
        let mut s = Self::start_in(&data, args);
        s._tmp = Some(tmp);
        s
    }

    /// Starts a server on `data` (which may hold a previous run's state).
    pub fn start_in(data: &Path, args: &[&str]) -> Server {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let (child, base) = spawn(data, &args);
        Server {
            child: Some(child),
            base,
            data: data.to_owned(),
            _tmp: None,
            args,
            client: Client::builder().build().expect("client"),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base.trim_end_matches('/'), path)
    }

    pub fn req(&self, method: &str, path: &str) -> RequestBuilder {
        let m = Method::from_bytes(method.as_bytes()).expect("method");
        self.client.request(m, self.url(path))
    }

    /// Kills the process with SIGKILL: no shutdown code runs.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Stops the server (SIGKILL) and starts it again on the same data directory.
    pub fn restart(&mut self) {
        self.kill();
        let (child, base) = spawn(&self.data, &self.args);
        self.child = Some(child);
        self.base = base;
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs the binary with `--listen 127.0.0.1:0` and reads the URL it prints.
fn spawn(data: &Path, args: &[String]) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wharf"))
        .arg("serve")
        .arg("--data")
        .arg(data)
        .arg("--listen")
        .arg("127.0.0.1:0")
        .args(args)
        .env("WHARF_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start wharf");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).expect("read banner");
    let base = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in banner {line:?}"))
        .to_owned();
    (child, base)
}

/// The text of a response body.
pub async fn text(resp: reqwest::Response) -> String {
    resp.text().await.expect("body")
}

/// PROPFIND with a depth and body; returns status and body text.
pub async fn propfind(s: &Server, path: &str, depth: &str, body: &str) -> (u16, String) {
    let r = s
        .req("PROPFIND", path)
        .header("Depth", depth)
        .header("Content-Type", "application/xml")
        .body(body.to_owned())
        .send()
        .await
        .expect("PROPFIND");
    (r.status().as_u16(), text(r).await)
}

/// PUT `body` at `path`, returning the status.
pub async fn put(s: &Server, path: &str, body: impl Into<reqwest::Body>) -> u16 {
    s.req("PUT", path).body(body).send().await.expect("PUT").status().as_u16()
}

/// MKCOL at `path`, returning the status.
pub async fn mkcol(s: &Server, path: &str) -> u16 {
    s.req("MKCOL", path).send().await.expect("MKCOL").status().as_u16()
}

/// GET `path`, returning status and bytes.
pub async fn get(s: &Server, path: &str) -> (u16, Vec<u8>) {
    let r = s.req("GET", path).send().await.expect("GET");
    (r.status().as_u16(), r.bytes().await.expect("body").to_vec())
}

/// Number of files in the blob store (to see whether bytes were copied).
pub fn blob_count(data: &Path) -> usize {
    fn walk(p: &Path) -> usize {
        std::fs::read_dir(p)
            .map(|rd| {
                rd.flatten()
                    .map(|e| if e.path().is_dir() { walk(&e.path()) } else { 1 })
                    .sum()
            })
            .unwrap_or(0)
    }
    walk(&data.join("blobs").join("blobs"))
}
