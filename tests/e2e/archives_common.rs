//! Shared setup of the archive tests: a sample tree packed by the real tools (Info-ZIP's
//! `zip`, GNU `tar`, `gzip`, `zstd`), and requests that look inside `NAME!` views.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use crate::harness::{Server, ADMIN_PASSWORD};
use crate::host_common::{as_user, hrefs};

pub const ADMIN: (&str, &str) = ("admin", ADMIN_PASSWORD);

pub const README: &[u8] = b"hello from inside the archive\n";
pub const DEEP: &[u8] = b"deep inside the archive\n";
/// Modification times of the sample's files (even seconds: a zip's DOS time has 2 s steps).
pub const README_MTIME: u64 = 1_500_000_000;
pub const PHOTO_MTIME: u64 = 1_560_000_000;
pub const LOG_MTIME: u64 = 1_565_000_000;
pub const DEEP_MTIME: u64 = 1_570_000_000;

/// Members of the sample, as paths inside the archive (folders end in `/`).
pub const SAMPLE_MEMBERS: [&str; 7] =
    ["2019/", "2019/a.jpg", "2019/log.txt", "2019/nested/", "2019/nested/deep.txt", "empty/", "readme.txt"];

/// Deterministic bytes that don't compress (xorshift).
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Text that compresses well but not absurdly (numbered lines), `len` bytes.
pub fn log_text(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 64);
    let mut i = 0u64;
    while out.len() < len {
        out.extend_from_slice(
            format!("{i:08} the quick brown fox jumps over the lazy dog {}\n", i * i % 9973).as_bytes(),
        );
        i += 1;
    }
    out.truncate(len);
    out
}

pub fn photo() -> Vec<u8> {
    noise(100_000, 7)
}

pub fn log() -> Vec<u8> {
    log_text(300_000)
}

/// The bytes of a file member of the sample.
pub fn sample_bytes(member: &str) -> Vec<u8> {
    match member {
        "readme.txt" => README.to_vec(),
        "2019/a.jpg" => photo(),
        "2019/log.txt" => log(),
        "2019/nested/deep.txt" => DEEP.to_vec(),
        other => panic!("no sample member {other}"),
    }
}

/// Sets the modification time of a file or folder.
pub fn set_mtime(p: &Path, secs: u64) {
    let f = std::fs::File::open(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    f.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(secs)).expect("set mtime");
}

/// Writes files (path, bytes, mtime) and empty folders (paths ending in `/`) below `dir`;
/// folders get a fixed time once everything is written.
pub fn write_tree(dir: &Path, files: &[(&str, Vec<u8>, u64)], empty_dirs: &[&str]) {
    for (rel, bytes, _) in files {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(&p, bytes).expect("write member");
    }
    for d in empty_dirs {
        std::fs::create_dir_all(dir.join(d)).expect("mkdir");
    }
    for (rel, _, mtime) in files {
        set_mtime(&dir.join(rel), *mtime);
    }
    for d in walk_dirs(dir) {
        set_mtime(&d, 1_400_000_000);
    }
}

fn walk_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("read_dir").flatten() {
        if e.file_type().expect("type").is_dir() {
            out.extend(walk_dirs(&e.path()));
            out.push(e.path());
        }
    }
    out
}

/// Runs `program args` in `dir` (UTC, UTF-8 locale); panics with its stderr on failure.
pub fn run(dir: &Path, program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .env("TZ", "UTC")
        .env("LC_ALL", "C.UTF-8")
        .output()
        .unwrap_or_else(|e| panic!("run {program}: {e}"));
    assert!(out.status.success(), "{program} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// How an archive is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fmt {
    /// `zip -r`: deflated members (folders as entries).
    Zip,
    /// `zip -0`: stored members.
    ZipStored,
    /// `zip -fz`: ZIP64 records.
    Zip64,
    /// Python's `zipfile`: UTF-8 names flagged by general-purpose bit 11 (Info-ZIP 3.0 on
    /// Linux writes UTF-8 names unflagged, even with `-UN=UTF8`).
    ZipUtf8Flag,
    /// `zip -D`: no folder entries.
    ZipNoDirs,
    Ustar,
    Pax,
    Gnu,
    TarGz,
    TarZst,
}

impl Fmt {
    /// The usual extension of the format.
    pub fn ext(self) -> &'static str {
        match self {
            Fmt::Zip | Fmt::ZipStored | Fmt::Zip64 | Fmt::ZipUtf8Flag | Fmt::ZipNoDirs => "zip",
            Fmt::Ustar | Fmt::Pax | Fmt::Gnu => "tar",
            Fmt::TarGz => "tar.gz",
            Fmt::TarZst => "tar.zst",
        }
    }
}

/// Zips `sys.argv[2:]` (files and folders, recursively) into `sys.argv[1]`, deflated.
const PY_ZIP: &str = "import os, sys, zipfile
with zipfile.ZipFile(sys.argv[1], 'w', zipfile.ZIP_DEFLATED) as z:
    for top in sys.argv[2:]:
        if not os.path.isdir(top):
            z.write(top)
        for root, dirs, files in os.walk(top):
            dirs.sort()
            z.write(root)
            for f in sorted(files):
                z.write(os.path.join(root, f))
";

/// Packs `inputs` (paths relative to `dir`) as `fmt` with the real tool and returns the
/// archive's bytes.
pub fn pack(dir: &Path, fmt: Fmt, inputs: &[&str]) -> Vec<u8> {
    let out_dir = tempfile::tempdir().expect("temp dir");
    let out = out_dir.path().join(format!("out.{}", fmt.ext()));
    let out_s = out.to_str().expect("utf-8 temp path");
    let zip = |flags: &[&str]| {
        let mut args = vec!["-q", "-r"];
        args.extend_from_slice(flags);
        args.push(out_s);
        args.extend_from_slice(inputs);
        run(dir, "zip", &args);
    };
    let tar = |flags: &[&str]| {
        let mut args = vec!["--sort=name", "--owner=0", "--group=0", "--numeric-owner"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&["-cf", out_s]);
        args.extend_from_slice(inputs);
        run(dir, "tar", &args);
    };
    match fmt {
        Fmt::Zip => zip(&[]),
        Fmt::ZipStored => zip(&["-0"]),
        Fmt::Zip64 => zip(&["-fz"]),
        Fmt::ZipUtf8Flag => {
            let mut args = vec!["-c", PY_ZIP, out_s];
            args.extend_from_slice(inputs);
            run(dir, "python3", &args);
        }
        Fmt::ZipNoDirs => zip(&["-D"]),
        Fmt::Ustar => tar(&["--format=ustar"]),
        Fmt::Pax => tar(&["--format=pax"]),
        Fmt::Gnu => tar(&["--format=gnu"]),
        Fmt::TarGz => tar(&["-z"]),
        Fmt::TarZst => tar(&["-I", "zstd"]),
    }
    std::fs::read(&out).expect("read archive")
}

/// The sample tree written below a fresh temporary folder.
pub fn sample_tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let files = [
        ("readme.txt", README.to_vec(), README_MTIME),
        ("2019/a.jpg", photo(), PHOTO_MTIME),
        ("2019/log.txt", log(), LOG_MTIME),
        ("2019/nested/deep.txt", DEEP.to_vec(), DEEP_MTIME),
    ];
    write_tree(dir.path(), &files, &["empty"]);
    dir
}

/// The sample packed as `fmt`.
pub fn sample(fmt: Fmt) -> Vec<u8> {
    let tree = sample_tree();
    pack(tree.path(), fmt, &["readme.txt", "2019", "empty"])
}

/// The sample with `readme.txt` holding `readme` instead, packed as `fmt`.
pub fn sample_with_readme(fmt: Fmt, readme: &[u8]) -> Vec<u8> {
    let tree = sample_tree();
    std::fs::write(tree.path().join("readme.txt"), readme).expect("write");
    set_mtime(&tree.path().join("readme.txt"), README_MTIME + 2);
    pack(tree.path(), fmt, &["readme.txt", "2019", "empty"])
}

/// `root` followed by each member, as sorted hrefs (what a Depth infinity listing shows).
pub fn expected(root: &str, members: &[&str]) -> Vec<String> {
    let mut v: Vec<String> =
        std::iter::once(root.to_owned()).chain(members.iter().map(|m| format!("{root}{m}"))).collect();
    v.sort();
    v
}

/// PROPFIND allprop at `depth` as `who`: status and body.
pub async fn propfind_at(s: &Server, who: (&str, &str), path: &str, depth: &str) -> (u16, String) {
    let body = r#"<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>"#;
    let rb = as_user(s, who, "PROPFIND", path).header("Depth", depth).header("Content-Type", "application/xml");
    let r = rb.body(body).send().await.expect("PROPFIND");
    (r.status().as_u16(), r.text().await.expect("body"))
}

/// The sorted, decoded hrefs of a PROPFIND at `depth` as `who` (which must answer 207).
pub async fn listing(s: &Server, who: (&str, &str), path: &str, depth: &str) -> Vec<String> {
    let (status, xml) = propfind_at(s, who, path, depth).await;
    let mut v = hrefs(status, &xml);
    v.sort();
    v
}

/// GET as `who`: status and bytes.
pub async fn fetch(s: &Server, who: (&str, &str), path: &str) -> (u16, Vec<u8>) {
    let r = as_user(s, who, "GET", path).send().await.expect("GET");
    (r.status().as_u16(), r.bytes().await.expect("body").to_vec())
}

/// PUT as `who`, returning the status.
pub async fn upload(s: &Server, who: (&str, &str), path: &str, body: Vec<u8>) -> u16 {
    as_user(s, who, "PUT", path).body(body).send().await.expect("PUT").status().as_u16()
}

/// A server with the admin's folder `/d/` holding `name` with `bytes`.
pub async fn stored(name: &str, bytes: Vec<u8>) -> Server {
    stored_with(&[], name, bytes).await
}

/// Like [`stored`], with extra `serve` flags.
pub async fn stored_with(args: &[&str], name: &str, bytes: Vec<u8>) -> Server {
    let s = Server::start_with(args);
    assert_eq!(as_user(&s, ADMIN, "MKCOL", "/d/").send().await.expect("MKCOL").status(), 201);
    assert_eq!(upload(&s, ADMIN, &format!("/d/{name}"), bytes).await, 201);
    s
}

/// Panics unless `resp` is a 403 with a text/plain body saying the archive is read-only.
pub async fn assert_read_only(what: &str, resp: reqwest::Response) {
    let status = resp.status().as_u16();
    let ctype = crate::harness::header(&resp, "content-type");
    let body = resp.text().await.expect("body");
    assert_eq!(status, 403, "{what}: {body}");
    assert!(ctype.starts_with("text/plain"), "{what}: content type {ctype:?}, body {body:?}");
    assert!(body.to_lowercase().contains("read-only"), "{what}: the body should say why: {body:?}");
    for stored in ["/home/", "/shares/"] {
        assert!(!body.contains(stored), "{what}: the body names a stored path: {body:?}");
    }
}

/// Panics unless `resp` is a 422 with a text/plain body that says something.
pub async fn assert_unprocessable(what: &str, resp: reqwest::Response) {
    let status = resp.status().as_u16();
    let ctype = crate::harness::header(&resp, "content-type");
    let body = resp.text().await.expect("body");
    assert_eq!(status, 422, "{what}: {body}");
    assert!(ctype.starts_with("text/plain"), "{what}: content type {ctype:?}, body {body:?}");
    assert!(!body.trim().is_empty(), "{what}: a 422 should say what is wrong with the archive");
}

/// Panics unless the server still stores and serves an ordinary file.
pub async fn assert_still_serving(s: &Server) {
    let name = format!("/healthy-{}.txt", std::time::UNIX_EPOCH.elapsed().expect("clock").as_nanos());
    assert_eq!(upload(s, ADMIN, &name, b"still here".to_vec()).await, 201, "the server stopped storing files");
    assert_eq!(fetch(s, ADMIN, &name).await, (200, b"still here".to_vec()), "the server stopped serving files");
}
