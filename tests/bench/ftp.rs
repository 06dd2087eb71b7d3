//! Side-by-side FTP benchmark: Wharf's FTP front end and pure-ftpd (the reference) measured in
//! the same run on the same machine with the same clients, reported as rates, times and
//! ratios. Run with `cargo bench -p wharf --bench ftp`; set `WHARF_BENCH_SMALL=1` for a
//! quick smoke run.
//!
//! Clients: curl for the large STOR and RETR, lftp's `mirror -R` for many small files, and
//! a minimal control-connection client of our own for MLSD (it reads the listing as fast as
//! the server sends it and only counts lines afterwards, so the figure is the server's).
//! curl and lftp come from Debian's packages (`apt-get install curl lftp`).
//!
//! pure-ftpd is started with `../shared/lab/ftp/pureftpd.sh` (found beside the repository,
//! or at `$WHARF_LAB`), which installs it from Debian's packages when missing. Both servers
//! run at the same time, and every measurement alternates between them, so both see the
//! same machine conditions; each figure is the median of several runs.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::{stream, StreamExt};

#[path = "memory.rs"]
mod memory;
#[path = "scratch.rs"]
mod scratch;

struct Sizes {
    /// The large STOR/RETR file.
    big: u64,
    /// Small files (4 KiB) per mirror run; the first mirror's folder is the small listing.
    files: usize,
    /// Entries in the large listing.
    list: usize,
    /// Runs of each transfer measurement per server (the median is reported).
    reps: usize,
    /// Runs of each listing per server.
    list_reps: usize,
}

fn sizes() -> Sizes {
    if std::env::var_os("WHARF_BENCH_SMALL").is_some() {
        Sizes { big: 64 << 20, files: 200, list: 1_000, reps: 3, list_reps: 5 }
    } else {
        Sizes { big: 1 << 30, files: 2_000, list: 10_000, reps: 5, list_reps: 7 }
    }
}

const SMALL: usize = 4096;

/// The admin password the benchmark gives the Wharf instance it starts.
const PASSWORD: &str = "bench-admin-password";

/// A running FTP server and how to log in to it.
struct Server {
    name: &'static str,
    port: u16,
    user: &'static str,
    password: &'static str,
    /// Wharf's WebDAV address, for making the large listing.
    http: Option<String>,
    child: Child,
    /// Wharf's stdout, kept open so its banner lines never meet a closed pipe.
    _stdout: Option<BufReader<ChildStdout>>,
}

impl Server {
    fn url(&self, path: &str) -> String {
        format!("ftp://{}:{}@127.0.0.1:{}{path}", self.user, self.password, self.port)
    }

    fn control(&self) -> Ftp {
        Ftp::login(self.port, self.user, self.password)
    }

    /// CPU time used so far by the server process and its children that have ended (pure-ftpd
    /// runs each session in processes of its own, which the master reaps), in seconds.
    fn cpu_seconds(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
        let fields: Vec<f64> = after.split_whitespace().map(|f| f.parse().unwrap_or(0.0)).collect();
        // utime, stime, cutime, cstime are fields 14-17 of stat(5); `after` starts at field 3.
        let ticks: f64 = fields.get(11..15).map(|f| f.iter().sum()).unwrap_or(0.0);
        ticks / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Figures of one server; every vector holds one entry per run.
#[derive(Default)]
struct Figures {
    stor: Vec<f64>,
    retr: Vec<f64>,
    mirror: Vec<Duration>,
    mirror_cpu: Vec<f64>,
    list_small: Vec<Duration>,
    list_big: Vec<Duration>,
}

fn main() {
    let sz = sizes();
    let load_before = load_average();
    for tool in ["curl", "lftp"] {
        let found = Command::new(tool).arg("--version").stdout(Stdio::null()).status().is_ok_and(|s| s.success());
        assert!(found, "{tool} is missing: apt-get install {tool}");
    }
    // Both servers' files on a fresh file system (see `scratch.rs`), which pure-ftpd's
    // user can reach.
    let tmp = scratch::Scratch::new();
    eprintln!("files on {}", tmp.describe());
    let src_dir = source_dir(&sz, tmp.path());
    let src = src_dir.path().to_owned();
    eprintln!("sources in {} (tmpfs: {})", src.display(), src.starts_with("/dev/shm"));
    let big = src.join("big.bin");
    write_random(&big, sz.big);
    for rep in 0..sz.reps {
        let dir = src.join(format!("small-{rep}"));
        std::fs::create_dir(&dir).expect("mkdir");
        for i in 0..sz.files {
            let mut body = vec![0u8; SMALL];
            getrandom::fill(&mut body).expect("random");
            std::fs::write(dir.join(format!("file-{i:05}.bin")), body).expect("small file");
        }
    }

    let wharf = start_wharf(&tmp.path().join("wharf"));
    let pure_root = tmp.path().join("pure-ftpd");
    let pure = start_pureftpd(free_port(), &pure_root);
    let servers = [&wharf, &pure];
    let mut figures = [Figures::default(), Figures::default()];

    // 1. Large STOR and RETR with curl. The source file differs in its first bytes on each
    //    run, so no run stores content the server already has, and each stored file is
    //    deleted again before the next run: on this machine's disk a GiB written while the
    //    previous ones are still there goes several times slower than one written after a
    //    delete (plain `dd` shows the same), so every run starts from the same state.
    let src_file = std::fs::OpenOptions::new().write(true).open(&big).expect("open big");
    for rep in 0..sz.reps {
        src_file.write_at(&(rep as u64 + 1).to_le_bytes(), 0).expect("mark big");
        for i in order(rep) {
            memory::warm(tmp.path(), sz.big);
            let mbps = stor(servers[i], &big, "/big.bin", sz.big);
            let mut c = servers[i].control();
            assert_eq!(c.size("/big.bin"), sz.big, "{}: size after STOR", servers[i].name);
            c.command("DELE /big.bin", 2);
            eprintln!("{}: STOR {} MiB {mbps:.0} MB/s", servers[i].name, sz.big >> 20);
            figures[i].stor.push(mbps);
        }
    }
    for s in servers {
        stor(s, &big, "/retr.bin", sz.big);
    }
    for rep in 0..sz.reps {
        for i in order(rep) {
            let mbps = retr(servers[i], "/retr.bin", sz.big);
            eprintln!("{}: RETR {} MiB {mbps:.0} MB/s", servers[i].name, sz.big >> 20);
            figures[i].retr.push(mbps);
        }
    }
    for s in servers {
        s.control().command("DELE /retr.bin", 2);
    }

    // 2. Many small files with lftp's mirror, a fresh set of files on each run, once the
    //    deleted GiB files' blocks have been given back (the disk is mounted with `discard`).
    sync();
    std::thread::sleep(Duration::from_secs(3));
    for rep in 0..sz.reps {
        for i in order(rep) {
            let dst = format!("/mirror-{rep}");
            let (time, cpu) = mirror(servers[i], &src.join(format!("small-{rep}")), &dst);
            let (_, files) = servers[i].control().mlsd(&dst);
            assert_eq!(files.len(), sz.files, "{}: files after the mirror", servers[i].name);
            assert!(files.iter().all(|(_, size)| *size == SMALL as u64), "{}: sizes after the mirror", servers[i].name);
            eprintln!(
                "{}: mirror {} files in {:.2} s ({:.0} files/s), server CPU {cpu:.2} s",
                servers[i].name,
                sz.files,
                time.as_secs_f64(),
                sz.files as f64 / time.as_secs_f64()
            );
            figures[i].mirror.push(time);
            figures[i].mirror_cpu.push(cpu);
        }
    }

    // 3. MLSD of the first mirror's folder and of a larger one, made beforehand (not timed):
    //    through WebDAV for Wharf, straight on disk for pure-ftpd.
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    rt.block_on(fill_over_webdav(wharf.http.as_deref().expect("url"), "list", sz.list));
    fill_on_disk(&pure_root.join("list"), sz.list);
    for (dir, n) in [("/mirror-0", sz.files), ("/list", sz.list)] {
        let mut controls = [wharf.control(), pure.control()];
        for rep in 0..sz.list_reps {
            for i in order(rep) {
                let (time, files) = controls[i].mlsd(dir);
                assert_eq!(files.len(), n, "{}: entries listed in {dir}", servers[i].name);
                let f = &mut figures[i];
                if n == sz.list { &mut f.list_big } else { &mut f.list_small }.push(time);
            }
        }
    }

    report(&sz, &figures[0], &figures[1]);
    println!("\nLoad average (1, 5, 15 min) before: {load_before}; after: {}", load_average());
}

/// Other work on the machine shows here; the benchmark alternates servers, but a busy
/// machine still widens the spread.
fn load_average() -> String {
    let s = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    s.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

/// Which server goes first alternates between runs.
fn order(rep: usize) -> [usize; 2] {
    if rep.is_multiple_of(2) {
        [0, 1]
    } else {
        [1, 0]
    }
}

/// A tmpfs for the source files when it has room (so reading them costs the client no disk
/// time), else the benchmark's own temporary folder.
fn source_dir(sz: &Sizes, fallback: &Path) -> tempfile::TempDir {
    let need = sz.big + (sz.reps * sz.files * SMALL) as u64 + (256 << 20);
    let shm = Path::new("/dev/shm");
    if free_bytes(shm) >= need {
        if let Ok(d) = tempfile::Builder::new().prefix("wharf-ftp-bench").tempdir_in(shm) {
            return d;
        }
    }
    tempfile::Builder::new().prefix("sources").tempdir_in(fallback).expect("source dir")
}

fn free_bytes(path: &Path) -> u64 {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).expect("path");
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return 0;
    }
    st.f_bavail as u64 * st.f_frsize as u64
}

fn write_random(path: &Path, size: u64) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).expect("create big"));
    let mut chunk = vec![0u8; 8 << 20];
    let mut left = size;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        getrandom::fill(&mut chunk[..n]).expect("random");
        f.write_all(&chunk[..n]).expect("write big");
        left -= n as u64;
    }
    f.flush().expect("flush big");
}

/// Dirty pages of the previous measurement are written out first, not during the next one.
fn sync() {
    unsafe { libc::sync() };
}

/// STOR with curl from the file on disk, in MB/s.
fn stor(s: &Server, src: &Path, name: &str, size: u64) -> f64 {
    sync();
    let out = Command::new("curl")
        .args(["-sS", "-T"])
        .arg(src)
        .args(["-w", "%{time_pretransfer} %{time_total} %{size_upload}"])
        .arg(s.url(name))
        .output()
        .expect("run curl");
    assert!(out.status.success(), "{}: curl STOR failed: {}", s.name, String::from_utf8_lossy(&out.stderr));
    transfer_rate(s, &out.stdout, size)
}

/// RETR with curl to /dev/null, in MB/s.
fn retr(s: &Server, name: &str, size: u64) -> f64 {
    sync();
    let out = Command::new("curl")
        .args(["-sS", "-o", "/dev/null", "-w", "%{time_pretransfer} %{time_total} %{size_download}"])
        .arg(s.url(name))
        .output()
        .expect("run curl");
    assert!(out.status.success(), "{}: curl RETR failed: {}", s.name, String::from_utf8_lossy(&out.stderr));
    transfer_rate(s, &out.stdout, size)
}

/// The rate of the transfer itself, from the data connection to the server's closing
/// reply: curl's pre-transfer phase (connect, login, PASV) is left out, because curl 7.88
/// sometimes sits idle there for its 200 ms happy-eyeballs timeout before it even opens the
/// data connection (seen with both servers, in about one transfer in five), which would
/// otherwise be a large part of a 1 GiB transfer at several GB/s.
fn transfer_rate(s: &Server, out: &[u8], size: u64) -> f64 {
    let text = String::from_utf8_lossy(out);
    let v: Vec<f64> = text.split_whitespace().map(|w| w.parse().expect("curl figure")).collect();
    let [pretransfer, total, bytes] = v[..] else { panic!("curl printed {text:?}") };
    assert_eq!(bytes as u64, size, "{}: bytes curl transferred", s.name);
    if pretransfer > 0.1 {
        eprintln!("{}: (curl waited {:.0} ms before the transfer; not counted)", s.name, pretransfer * 1e3);
    }
    size as f64 / 1e6 / (total - pretransfer)
}

/// `lftp mirror -R --parallel=4` of `src` into `dst`: the wall time of the whole lftp run
/// (start, logins, transfers) and the server's CPU time over it.
fn mirror(s: &Server, src: &Path, dst: &str) -> (Duration, f64) {
    sync();
    let cpu = s.cpu_seconds();
    let script = format!("set ftp:ssl-allow no; mirror -R --parallel=4 {} {dst}; quit", src.display());
    let start = Instant::now();
    let out = Command::new("lftp")
        .args(["-u", &format!("{},{}", s.user, s.password), "-p", &s.port.to_string(), "-e", &script, "127.0.0.1"])
        .stdin(Stdio::null())
        .output()
        .expect("run lftp");
    let time = start.elapsed();
    assert!(out.status.success(), "{}: lftp failed: {}", s.name, String::from_utf8_lossy(&out.stderr));
    // Let pure-ftpd's master reap the session processes, whose CPU time it then carries.
    std::thread::sleep(Duration::from_millis(300));
    (time, s.cpu_seconds() - cpu)
}

/// `n` files of 4 KiB in the folder `name` of Wharf's admin, through WebDAV.
async fn fill_over_webdav(url: &str, name: &str, n: usize) {
    use base64::Engine;
    let token = base64::engine::general_purpose::STANDARD.encode(format!("admin:{PASSWORD}"));
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(reqwest::header::AUTHORIZATION, format!("Basic {token}").parse().expect("header"));
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder().default_headers(headers).build().expect("client");
    let coll = format!("{url}{name}/");
    let mkcol = reqwest::Method::from_bytes(b"MKCOL").expect("method");
    let r = client.request(mkcol, &coll).send().await.expect("MKCOL");
    assert!(r.status().is_success(), "MKCOL: {}", r.status());
    stream::iter(0..n)
        .map(|i| {
            let (client, url) = (&client, format!("{coll}file-{i:05}.bin"));
            async move {
                let r = client.put(url).body(vec![(i % 251) as u8; SMALL]).send().await.expect("PUT");
                assert!(r.status().is_success(), "PUT: {}", r.status());
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<()>>()
        .await;
}

/// `n` files of 4 KiB straight in pure-ftpd's root, owned by its FTP user.
fn fill_on_disk(dir: &Path, n: usize) {
    std::fs::create_dir(dir).expect("mkdir");
    for i in 0..n {
        std::fs::write(dir.join(format!("file-{i:05}.bin")), vec![(i % 251) as u8; SMALL]).expect("file");
    }
    let status = Command::new("chown").args(["-R", "alice:alice"]).arg(dir).status().expect("chown");
    assert!(status.success(), "chown failed");
}

/// A minimal FTP client on the control connection, for SIZE, DELE and timed MLSD.
struct Ftp {
    ctrl: BufReader<TcpStream>,
}

impl Ftp {
    fn login(port: u16, user: &str, password: &str) -> Ftp {
        let s = TcpStream::connect(("127.0.0.1", port)).expect("connect FTP");
        s.set_nodelay(true).expect("nodelay");
        s.set_read_timeout(Some(Duration::from_secs(300))).expect("timeout");
        let mut f = Ftp { ctrl: BufReader::new(s) };
        let (code, text) = f.reply();
        assert_eq!(code / 100, 2, "greeting: {text}");
        f.command(&format!("USER {user}"), 3);
        f.command(&format!("PASS {password}"), 2);
        f.command("TYPE I", 2);
        f
    }

    /// One reply, multi-line ones whole.
    fn reply(&mut self) -> (u16, String) {
        let mut text = String::new();
        self.ctrl.read_line(&mut text).expect("read reply");
        assert!(text.len() >= 4, "FTP connection closed: {text:?}");
        let code: u16 = text[..3].parse().expect("reply code");
        if text.as_bytes()[3] == b'-' {
            let end = format!("{code} ");
            loop {
                let mut line = String::new();
                let n = self.ctrl.read_line(&mut line).expect("read reply");
                assert!(n > 0, "FTP connection closed in a reply");
                text.push_str(&line);
                if line.starts_with(&end) {
                    break;
                }
            }
        }
        (code, text)
    }

    /// Sends `line` and expects a reply of class `class` (1-5), which it returns.
    fn command(&mut self, line: &str, class: u16) -> String {
        self.ctrl.get_mut().write_all(format!("{line}\r\n").as_bytes()).expect("send command");
        let (code, text) = self.reply();
        assert_eq!(code / 100, class, "{line}: {text}");
        text
    }

    fn passive(&mut self) -> TcpStream {
        let text = self.command("PASV", 2);
        let inner = &text[text.find('(').expect("PASV (") + 1..text.find(')').expect("PASV )")];
        let n: Vec<u16> = inner.split(',').map(|x| x.trim().parse().expect("PASV number")).collect();
        let host = format!("{}.{}.{}.{}", n[0], n[1], n[2], n[3]);
        TcpStream::connect((host.as_str(), n[4] * 256 + n[5])).expect("connect data")
    }

    fn size(&mut self, path: &str) -> u64 {
        self.command(&format!("SIZE {path}"), 2)[4..].trim().parse().expect("SIZE")
    }

    /// MLSD of `path`: the time from PASV to the closing reply, and the files listed with
    /// their sizes (directories left out).
    fn mlsd(&mut self, path: &str) -> (Duration, Vec<(String, u64)>) {
        let start = Instant::now();
        let mut data = self.passive();
        self.command(&format!("MLSD {path}"), 1);
        let mut body = Vec::new();
        data.read_to_end(&mut body).expect("read listing");
        let (code, text) = self.reply();
        let time = start.elapsed();
        assert_eq!(code / 100, 2, "MLSD {path}: {text}");
        let files = String::from_utf8_lossy(&body)
            .lines()
            .filter_map(|line| {
                let (facts, name) = line.split_once(' ')?;
                let facts = facts.to_ascii_lowercase();
                let fact =
                    |k: &str| facts.split(';').find_map(|f| f.strip_prefix(k)?.strip_prefix('=').map(str::to_owned));
                (fact("type")? == "file")
                    .then(|| (name.to_owned(), fact("size").and_then(|s| s.parse().ok()).unwrap_or(0)))
            })
            .collect();
        (time, files)
    }
}

fn median_f(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn median_t(v: &[Duration]) -> f64 {
    median_f(&v.iter().map(Duration::as_secs_f64).collect::<Vec<_>>())
}

fn runs_f(v: &[f64]) -> String {
    v.iter().map(|x| format!("{x:.0}")).collect::<Vec<_>>().join(", ")
}

fn runs_t(v: &[Duration], scale: f64, digits: usize) -> String {
    v.iter().map(|x| format!("{:.*}", digits, x.as_secs_f64() * scale)).collect::<Vec<_>>().join(", ")
}

fn verdict(ratio: f64, target: Option<f64>) -> String {
    match target {
        Some(t) if ratio >= t => format!("≥ {t:.1}x: met"),
        Some(t) => format!("≥ {t:.1}x: missed"),
        None => String::new(),
    }
}

fn report(sz: &Sizes, w: &Figures, p: &Figures) {
    let mb = sz.big >> 20;
    let n = sz.files;
    println!("\nRatios are Wharf / pure-ftpd for rates and pure-ftpd / Wharf for times: above 1x, Wharf is better.");
    println!("\n| measurement | Wharf | pure-ftpd | Wharf / pure-ftpd | target |");
    println!("|---|---:|---:|---:|---|");
    let rate = |name: String, w: &[f64], p: &[f64], target: Option<f64>| {
        let (w, p) = (median_f(w), median_f(p));
        println!("| {name} | {w:.0} MB/s | {p:.0} MB/s | {:.2}x | {} |", w / p, verdict(w / p, target));
    };
    rate(format!("STOR {mb} MiB (curl)"), &w.stor, &p.stor, Some(0.8));
    rate(format!("RETR {mb} MiB (curl)"), &w.retr, &p.retr, Some(1.0));
    let (wm, pm) = (median_t(&w.mirror), median_t(&p.mirror));
    println!(
        "| lftp mirror -R --parallel=4, {n} × 4 KiB, wall time | {wm:.2} s | {pm:.2} s | {:.2}x | {} |",
        pm / wm,
        verdict(pm / wm, Some(1.0))
    );
    println!("| same, files/s | {:.0} files/s | {:.0} files/s | {:.2}x | |", n as f64 / wm, n as f64 / pm, pm / wm);
    let (wc, pc) = (median_f(&w.mirror_cpu), median_f(&p.mirror_cpu));
    println!(
        "| same, server CPU per file | {:.2} ms | {:.2} ms | {:.2}x | |",
        wc * 1e3 / n as f64,
        pc * 1e3 / n as f64,
        pc / wc
    );
    for (label, wl, pl) in [(n, &w.list_small, &p.list_small), (sz.list, &w.list_big, &p.list_big)] {
        let (wt, pt) = (median_t(wl), median_t(pl));
        println!("| MLSD, {label} entries | {:.1} ms | {:.1} ms | {:.2}x | |", wt * 1e3, pt * 1e3, pt / wt);
    }
    println!("\nAll runs (in order; the table shows each median):");
    println!("- STOR MB/s: Wharf {}; pure-ftpd {}", runs_f(&w.stor), runs_f(&p.stor));
    println!("- RETR MB/s: Wharf {}; pure-ftpd {}", runs_f(&w.retr), runs_f(&p.retr));
    println!("- mirror s: Wharf {}; pure-ftpd {}", runs_t(&w.mirror, 1.0, 2), runs_t(&p.mirror, 1.0, 2));
    println!("- mirror server CPU s: Wharf {}; pure-ftpd {}", runs_f2(&w.mirror_cpu), runs_f2(&p.mirror_cpu));
    println!("- MLSD {n} ms: Wharf {}; pure-ftpd {}", runs_t(&w.list_small, 1e3, 1), runs_t(&p.list_small, 1e3, 1));
    println!("- MLSD {} ms: Wharf {}; pure-ftpd {}", sz.list, runs_t(&w.list_big, 1e3, 1), runs_t(&p.list_big, 1e3, 1));
}

fn runs_f2(v: &[f64]) -> String {
    v.iter().map(|x| format!("{x:.2}")).collect::<Vec<_>>().join(", ")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("port")
}

fn start_wharf(data: &Path) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wharf"))
        .args(["serve", "--listen", "127.0.0.1:0", "--ftp-listen", "127.0.0.1:0", "--admin-listen", "off", "--data"])
        .arg(data)
        .env("WHARF_LOG", "warn")
        .env("WHARF_ADMIN_PASSWORD", PASSWORD)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start wharf");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let (mut port, mut http) = (None, None);
    while http.is_none() {
        let mut line = String::new();
        assert!(out.read_line(&mut line).expect("banner") > 0, "wharf exited before its banner");
        for w in line.split_whitespace() {
            if let Some(rest) = w.strip_prefix("ftp://") {
                port = rest.trim_end_matches('/').rsplit(':').next().and_then(|p| p.parse::<u16>().ok());
            } else if w.starts_with("http://") {
                http = Some(w.to_owned());
            }
        }
    }
    Server {
        name: "wharf",
        port: port.expect("wharf printed no ftp:// line"),
        user: "admin",
        password: PASSWORD,
        http,
        child,
        _stdout: Some(out),
    }
}

fn lab() -> PathBuf {
    std::env::var_os("WHARF_LAB")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/lab"))
}

/// pure-ftpd in the foreground (the script execs it, so the child is the server's master
/// process), once its control port answers.
fn start_pureftpd(port: u16, root: &Path) -> Server {
    let mut child = Command::new("bash")
        .arg(lab().join("ftp/pureftpd.sh"))
        .arg(port.to_string())
        .arg(root)
        // pure-ftpd stops a listing at 10,000 lines by default (`-L`); list everything, as
        // Wharf does.
        .env("PUREFTPD_EXTRA", "-L 1000000:5")
        .stdout(Stdio::null())
        .spawn()
        .expect("run pureftpd.sh");
    // The first start may install the package.
    let deadline = Instant::now() + Duration::from_secs(300);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Some(status) = child.try_wait().expect("wait") {
            panic!("pureftpd.sh exited: {status}");
        }
        assert!(Instant::now() < deadline, "pure-ftpd did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    Server { name: "pure-ftpd", port, user: "alice", password: "secret1", http: None, child, _stdout: None }
}
