//! Starting and stopping the real server, and a small HTTP client vocabulary.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use reqwest::{Client, Method, RequestBuilder};

#[path = "../support/postgres.rs"]
mod postgres;

/// The password the harness gives the `admin` user the server creates on first start.
pub const ADMIN_PASSWORD: &str = "harness-admin-secret";

/// `Authorization` value for `user`:`password` with HTTP Basic.
pub fn basic(user: &str, password: &str) -> String {
    use base64::Engine;
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
}

/// A client that sends the admin's credentials with every request.
fn admin_client() -> Client {
    let mut headers = reqwest::header::HeaderMap::new();
    let value = basic("admin", ADMIN_PASSWORD).parse().expect("header value");
    headers.insert(reqwest::header::AUTHORIZATION, value);
    client_builder().default_headers(headers).build().expect("client")
}

/// reqwest is built with rustls but without a crypto provider of its own (the S3 client's
/// choice: ring, as the server's TLS, not aws-lc; see backends/Cargo.toml), so a process
/// installs one before its first client. Every test client is made through here.
pub fn client_builder() -> reqwest::ClientBuilder {
    let _ = rustls::crypto::ring::default_provider().install_default();
    Client::builder()
}

/// A client with no credentials and no settings.
pub fn new_client() -> Client {
    client_builder().build().expect("client")
}

/// A GET without credentials.
pub async fn http_get(url: impl reqwest::IntoUrl) -> reqwest::Result<reqwest::Response> {
    new_client().get(url).send().await
}

/// A running `wharf serve` with its own data directory.
pub struct Server {
    child: Option<Child>,
    pub base: String,
    /// `host:port` of the FTP side.
    pub ftp: String,
    /// `host:port` of the operations listener (`/metrics`, `/livez`, `/readyz`); empty when
    /// the test turned it off.
    pub ops: String,
    pub data: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    args: Vec<String>,
    /// Environment variables of the process, beside the test's own (S3 credentials).
    env: Vec<(String, String)>,
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
        Self::start_in_env(data, args, &[])
    }

    /// Starts a server on `data` with extra environment variables.
    pub fn start_in_env(data: &Path, args: &[&str], env: &[(&str, &str)]) -> Server {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let (child, Banner { base, ftp, ops }) = spawn(data, &args, &env);
        let data = data.to_owned();
        Server { child: Some(child), base, ftp, ops, data, _tmp: None, args, env, client: admin_client() }
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
        let (child, Banner { base, ftp, ops }) = spawn(&self.data, &self.args, &self.env);
        self.child = Some(child);
        self.base = base;
        self.ftp = ftp;
        self.ops = ops;
    }

    /// Sends SIGTERM and returns at once (see [`Server::terminate`] to wait for the exit).
    pub fn sigterm(&self) {
        if let Some(child) = &self.child {
            // SAFETY: kill(2) on our own child's pid; no memory is involved.
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        }
    }

    /// Sends SIGTERM and waits up to `limit` for the process to exit; true if it did.
    pub fn terminate(&mut self, limit: std::time::Duration) -> bool {
        self.sigterm();
        let Some(child) = self.child.as_mut() else { return true };
        let deadline = std::time::Instant::now() + limit;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                self.child = None;
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        false
    }

    /// `host:port` of the HTTP side, for raw sockets (the base URL may carry a base path).
    pub fn authority(&self) -> &str {
        self.base.trim_start_matches("http://").split('/').next().unwrap_or_default()
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

/// The addresses a starting server prints.
struct Banner {
    base: String,
    ftp: String,
    ops: String,
}

/// Runs the binary on free loopback ports (`--listen`, `--ftp-listen` and `--admin-listen`
/// `127.0.0.1:0`, unless `args` names its own FTP or operations address) and reads the
/// addresses it prints.
fn spawn(data: &Path, args: &[String], env: &[(String, String)]) -> (Child, Banner) {
    let given = |flag: &str| args.iter().any(|a| a.starts_with(flag));
    let ftp_default = if given("--ftp-listen") { &[][..] } else { &["--ftp-listen", "127.0.0.1:0"][..] };
    let ops_default = if given("--admin-listen") { &[][..] } else { &["--admin-listen", "127.0.0.1:0"][..] };
    let mut child = wharf(data)
        .arg("serve")
        .arg("--data")
        .arg(data)
        .arg("--listen")
        .arg("127.0.0.1:0")
        .args(ftp_default)
        .args(ops_default)
        .args(args)
        .env("WHARF_LOG", "warn")
        .env("WHARF_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start wharf");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    let (mut ftp, mut ops) = (String::new(), String::new());
    let base = loop {
        line.clear();
        assert!(stdout.read_line(&mut line).expect("read banner") > 0, "wharf exited before its banner");
        let url = line.split_whitespace().find(|w| w.starts_with("http://") || w.starts_with("https://"));
        if let Some(addr) = line.split_whitespace().find_map(|w| w.strip_prefix("ftp://")) {
            ftp = addr.trim_end_matches('/').to_owned();
        } else if line.starts_with("wharf: operations on ") {
            ops = url.expect("operations URL").trim_start_matches("http://").trim_end_matches('/').to_owned();
        } else if let Some(url) = url {
            break url.to_owned();
        }
    };
    (child, Banner { base, ftp, ops })
}

/// The binary, to run on the data directory `data`: with its database when the suite
/// runs on PostgreSQL (see [`database_env`]).
pub fn wharf(data: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wharf"));
    command.envs(database_env(data));
    command
}

/// With `WHARF_TEST_POSTGRES` set to a server's URL (the test command's PostgreSQL pass,
/// see `tests/postgres.sh`), `WHARF_DATABASE` naming a database of that server for the
/// data directory `data`: one per directory, created on first use, so that a restart or
/// an administration command finds the same state. Nothing otherwise: SQLite in `data`.
pub fn database_env(data: &Path) -> Vec<(String, String)> {
    use std::hash::{Hash, Hasher};
    let Some(server) = std::env::var("WHARF_TEST_POSTGRES").ok().filter(|s| !s.is_empty()) else {
        return Vec::new();
    };
    // The path as given: tests name each data directory one way throughout.
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    data.hash(&mut hasher);
    let name = format!("d_{:016x}", hasher.finish());
    vec![("WHARF_DATABASE".to_owned(), create_database(&server, &name))]
}

/// Creates the database `name` on the PostgreSQL server at `server` unless it exists;
/// returns its URL.
pub fn create_database(server: &str, name: &str) -> String {
    match postgres::create_database(server, name) {
        Ok(url) => url,
        Err(e) if e.contains("already exists") => postgres::database_url(server, name),
        Err(e) => panic!("CREATE DATABASE {name}: {e}"),
    }
}

/// Runs `wharf ARGS --data DIR`, feeding `stdin`; panics unless it succeeds.
pub fn cli(data: &Path, args: &[&str], stdin: &str) {
    let mut child = wharf(data)
        .args(args)
        .arg("--data")
        .arg(data)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("run wharf");
    child.stdin.take().expect("stdin").write_all(stdin.as_bytes()).expect("write stdin");
    assert!(child.wait().expect("wait").success(), "wharf {args:?} failed");
}

/// Runs `wharf ARGS --data DIR` and returns what it printed; panics unless it succeeds.
pub fn cli_output(data: &Path, args: &[&str]) -> String {
    let out = wharf(data).args(args).arg("--data").arg(data).output().expect("run wharf");
    assert!(out.status.success(), "wharf {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `code` in Python with `f`, an `ftplib.FTP` logged in as `user`, and returns what it
/// printed. `code` may call `say(x)`, `stor(name, bytes)`, `retr(name)` and `code(cmd)` (the
/// reply code of a command, error or not); errors it doesn't catch fail the test.
pub fn ftp_as(s: &Server, user: &str, password: &str, code: &str) -> String {
    let (host, port) = s.ftp.rsplit_once(':').expect("ftp address");
    let script = format!(
        "import ftplib, io, socket, struct, sys, time\n\
         f = ftplib.FTP()\n\
         f.connect({host:?}, {port}, timeout=20)\n\
         f.login({user:?}, {password:?})\n\
         def say(x): print(x, flush=True)\n\
         def stor(name, data): f.storbinary('STOR ' + name, io.BytesIO(data))\n\
         def retr(name):\n    b = io.BytesIO(); f.retrbinary('RETR ' + name, b.write); return b.getvalue()\n\
         def code(cmd):\n    try:\n        return f.sendcmd(cmd)[:3]\n    except ftplib.Error as e:\n        return str(e)[:3]\n\
         {code}\n\
         f.quit()\n"
    );
    let out = Command::new("python3").arg("-c").arg(&script).output().expect("run python3");
    assert!(out.status.success(), "ftplib script failed:\n{}\n{script}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn add_user(s: &Server, name: &str, password: &str, extra: &[&str]) {
    let mut args = vec!["user", "add", name, "--password-stdin"];
    args.extend_from_slice(extra);
    cli(&s.data, &args, &format!("{password}\n"));
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
/// Blobs the store holds: files of its blob store, and small contents kept inline in its
/// database (referenced ones; released ones go with the write that released them).
pub async fn stored_blobs(data: &Path) -> usize {
    fn walk(p: &Path) -> usize {
        std::fs::read_dir(p)
            .map(|rd| rd.flatten().map(|e| if e.path().is_dir() { walk(&e.path()) } else { 1 }).sum())
            .unwrap_or(0)
    }
    let files = walk(&data.join("blobs").join("blobs"));
    let inline = db_count(data, "SELECT COUNT(*) FROM blobs WHERE data IS NOT NULL AND refcount > 0").await;
    files + inline as usize
}

/// The one integer `sql` returns, read straight from the database of `data` (SQLite's
/// file, or PostgreSQL's database in the suite's PostgreSQL pass).
pub async fn db_count(data: &Path, sql: &str) -> i64 {
    db_value(data, sql, None).await.and_then(|v| v.parse().ok()).expect("one integer")
}

/// The one value `sql` returns (as text), binding `bind` to `$1`; `None` for no row.
pub async fn db_value(data: &Path, sql: &str, bind: Option<&str>) -> Option<String> {
    use sqlx::{ConnectOptions, Connection};
    if let Some((_, url)) = database_env(data).pop() {
        return pg_value(&url, sql, bind).await;
    }
    let text = format!("SELECT CAST(({sql}) AS TEXT)");
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(data.join("wharf.db")).read_only(true);
    let mut db = options.connect().await.expect("open wharf.db");
    let row: Option<(Option<String>,)> = sqlx::query_as(&text).bind(bind).fetch_optional(&mut db).await.expect("query");
    db.close().await.expect("close wharf.db");
    row.and_then(|(v,)| v)
}

/// [`db_value`] on the PostgreSQL database at `url`.
pub async fn pg_value(url: &str, sql: &str, bind: Option<&str>) -> Option<String> {
    use sqlx::Connection;
    let text = format!("SELECT CAST(({sql}) AS TEXT)");
    let mut db = sqlx::PgConnection::connect(url).await.expect("open the test database");
    let row: Option<(Option<String>,)> = sqlx::query_as(&text).bind(bind).fetch_optional(&mut db).await.expect("query");
    db.close().await.expect("close");
    row.and_then(|(v,)| v)
}

/// PROPPATCH with `body`; returns status and body text.
pub async fn proppatch(s: &Server, path: &str, body: &str) -> (u16, String) {
    let r = s
        .req("PROPPATCH", path)
        .header("Content-Type", "application/xml")
        .body(body.to_owned())
        .send()
        .await
        .expect("PROPPATCH");
    (r.status().as_u16(), text(r).await)
}

/// A header of a response as text ("" when absent).
pub fn header(resp: &reqwest::Response, name: &str) -> String {
    resp.headers().get(name).map(|v| v.to_str().expect("ASCII header").to_owned()).unwrap_or_default()
}

/// Sends `method target` byte for byte as the admin over a fresh connection (see
/// [`raw_as`]).
pub fn raw(s: &Server, method: &str, target: &str, body: &[u8]) -> (u16, String) {
    raw_as(s, ("admin", ADMIN_PASSWORD), method, target, &[], body)
}

/// Sends `method target` byte for byte as `who` over a fresh connection, bypassing the
/// URL normalisation of the HTTP client (which would resolve `%2e%2e` itself), with extra
/// headers. Returns the status and the whole response, head and body, as (lossy) text.
pub fn raw_as(
    s: &Server,
    who: (&str, &str),
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String) {
    use std::io::{Read, Write};
    let authority = s.authority();
    let mut conn = std::net::TcpStream::connect(authority).expect("connect");
    conn.set_read_timeout(Some(std::time::Duration::from_secs(10))).expect("timeout");
    let mut head = format!(
        "{method} {target} HTTP/1.1\r\nHost: {authority}\r\nAuthorization: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
        basic(who.0, who.1),
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    conn.write_all(head.as_bytes()).expect("write head");
    conn.write_all(body).expect("write body");
    let mut out = Vec::new();
    conn.read_to_end(&mut out).expect("read response");
    let out = String::from_utf8_lossy(&out).into_owned();
    let status = out.split(' ').nth(1).and_then(|c| c.parse().ok());
    let status = status.unwrap_or_else(|| panic!("no status in {out:?}"));
    (status, out)
}

/// One property element of a parsed `propstat`.
#[derive(Debug, Default, Clone)]
pub struct Prop {
    pub ns: String,
    pub local: String,
    /// All text inside the element, references resolved.
    pub text: String,
    /// The element's own `xml:lang` attribute.
    pub lang: Option<String>,
    /// `{ns}local` of every element below it, in document order.
    pub descendants: Vec<String>,
}

/// One `DAV:propstat`: its status code, properties and `DAV:error` conditions.
#[derive(Debug, Default, Clone)]
pub struct Propstat {
    pub status: u16,
    pub props: Vec<Prop>,
    pub errors: Vec<String>,
}

/// One `DAV:response` of a multistatus.
#[derive(Debug, Default, Clone)]
pub struct DavResponse {
    pub href: String,
    pub propstats: Vec<Propstat>,
}

impl DavResponse {
    /// The status of the propstat holding `{ns}local`, and the property, if any holds it.
    pub fn prop(&self, ns: &str, local: &str) -> Option<(u16, &Prop)> {
        self.propstats.iter().find_map(|ps| {
            let p = ps.props.iter().find(|p| p.ns == ns && p.local == local)?;
            Some((ps.status, p))
        })
    }

    /// The text of a property found with 200, panicking otherwise.
    pub fn ok_text(&self, ns: &str, local: &str) -> String {
        match self.prop(ns, local) {
            Some((200, p)) => p.text.clone(),
            other => panic!("{{{ns}}}{local} not 200 on {}: {other:?}", self.href),
        }
    }

    /// The propstat with `status`, if there is one.
    pub fn propstat(&self, status: u16) -> Option<&Propstat> {
        self.propstats.iter().find(|ps| ps.status == status)
    }
}

/// Parses a multistatus body (panics unless it is well-formed XML).
pub fn multistatus(xml: &str) -> Vec<DavResponse> {
    let mut p = MsParser::default();
    let mut reader = quick_xml::NsReader::from_str(xml);
    reader.config_mut().expand_empty_elements = true;
    loop {
        let (ns, event) = reader.read_resolved_event().unwrap_or_else(|e| panic!("{e}: {xml}"));
        let ns = match ns {
            quick_xml::name::ResolveResult::Bound(n) => String::from_utf8_lossy(n.as_ref()).into_owned(),
            _ => String::new(),
        };
        use quick_xml::events::Event;
        match event {
            Event::Start(e) => p.start(ns, &e),
            Event::End(_) => p.end(),
            Event::Text(t) => p.text(&t.xml10_content().expect("text")),
            Event::CData(t) => p.text(&t.xml10_content().expect("cdata")),
            Event::GeneralRef(r) => p.text(&resolve_ref(&r)),
            Event::Eof => break,
            _ => {}
        }
    }
    p.out
}

/// The response whose href is `href`, panicking with the hrefs present otherwise.
pub fn response<'a>(responses: &'a [DavResponse], href: &str) -> &'a DavResponse {
    responses.iter().find(|r| r.href == href).unwrap_or_else(|| {
        let hrefs: Vec<&str> = responses.iter().map(|r| r.href.as_str()).collect();
        panic!("no response for {href}; got {hrefs:?}")
    })
}

fn resolve_ref(r: &quick_xml::events::BytesRef<'_>) -> String {
    match r.resolve_char_ref().expect("char ref") {
        Some(c) => c.to_string(),
        None => quick_xml::escape::resolve_xml_entity(&r.decode().expect("name")).expect("entity").to_owned(),
    }
}

#[derive(Default)]
struct MsParser {
    out: Vec<DavResponse>,
    /// `{ns}local` of the open elements.
    stack: Vec<String>,
    /// Stack height just below the property element being read.
    prop_at: Option<usize>,
    status: String,
}

impl MsParser {
    fn start(&mut self, ns: String, e: &quick_xml::events::BytesStart<'_>) {
        let local = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
        let name = format!("{{{ns}}}{local}");
        let parent = self.stack.last().map(String::as_str);
        if self.prop_at.is_some() {
            self.current_prop().descendants.push(name.clone());
        } else if parent == Some("{DAV:}prop") && self.in_propstat() {
            let lang = e
                .attributes()
                .flatten()
                .find(|a| a.key.as_ref() == b"xml:lang")
                .map(|a| a.unescape_value().expect("lang").into_owned());
            let prop = Prop { ns, local, lang, ..Prop::default() };
            self.last_propstat().props.push(prop);
            self.prop_at = Some(self.stack.len());
        } else if parent == Some("{DAV:}error") && self.in_propstat() {
            self.last_propstat().errors.push(local);
        } else if name == "{DAV:}response" {
            self.out.push(DavResponse::default());
        } else if name == "{DAV:}propstat" {
            self.out.last_mut().expect("response").propstats.push(Propstat::default());
        }
        self.status.clear();
        self.stack.push(name);
    }

    fn end(&mut self) {
        let name = self.stack.pop().unwrap_or_default();
        if self.prop_at == Some(self.stack.len()) {
            self.prop_at = None;
        } else if self.prop_at.is_none() && name == "{DAV:}status" && self.in_propstat() {
            let code = self.status.split_whitespace().nth(1).and_then(|c| c.parse().ok());
            self.last_propstat().status = code.unwrap_or_else(|| panic!("bad status {:?}", self.status));
        }
    }

    fn text(&mut self, t: &str) {
        let here = self.stack.last().map(String::as_str);
        let parent = self.stack.len().checked_sub(2).map(|i| self.stack[i].as_str());
        if self.prop_at.is_some() {
            self.current_prop().text.push_str(t);
        } else if here == Some("{DAV:}href") && parent == Some("{DAV:}response") {
            self.out.last_mut().expect("response").href.push_str(t.trim());
        } else if here == Some("{DAV:}status") {
            self.status.push_str(t);
        }
    }

    fn in_propstat(&self) -> bool {
        self.stack.iter().any(|n| n == "{DAV:}propstat")
    }

    fn last_propstat(&mut self) -> &mut Propstat {
        let r = self.out.last_mut().expect("response");
        r.propstats.last_mut().expect("propstat")
    }

    fn current_prop(&mut self) -> &mut Prop {
        self.last_propstat().props.last_mut().expect("prop")
    }
}

/// Starts a PUT of `total` bytes at `path` as the admin and sends `first` of them; the caller
/// sends the rest (or doesn't), to have an upload in flight.
pub fn start_upload(s: &Server, path: &str, total: usize, first: &[u8]) -> std::net::TcpStream {
    let authority = s.authority();
    let mut conn = std::net::TcpStream::connect(authority).expect("connect");
    conn.set_read_timeout(Some(std::time::Duration::from_secs(30))).expect("timeout");
    let auth = basic("admin", ADMIN_PASSWORD);
    let head =
        format!("PUT {path} HTTP/1.1\r\nHost: {authority}\r\nAuthorization: {auth}\r\nContent-Length: {total}\r\n\r\n");
    conn.write_all(head.as_bytes()).expect("head");
    conn.write_all(first).expect("first part");
    conn
}

/// Resident memory of a process in KiB, from /proc.
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).expect("VmRSS");
    line.split_whitespace().nth(1).and_then(|n| n.parse().ok()).expect("VmRSS value")
}
