//! HTTPS end to end: a self-signed certificate made by the `openssl` command, the real binary,
//! and the real `curl` as the client (HTTP/1.1 and HTTP/2 over TLS with ALPN).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::harness::{Server, ADMIN_PASSWORD};

/// A server on HTTPS with the certificate that clients must trust.
struct Tls {
    server: Server,
    cert: PathBuf,
    dir: tempfile::TempDir,
}

/// Makes a self-signed P-256 certificate for 127.0.0.1 in `dir`; returns (cert, key).
fn self_signed(dir: &Path) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let status = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .args(["-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"])
        .stderr(Stdio::null())
        .status()
        .expect("run openssl");
    assert!(status.success(), "openssl failed");
    (cert, key)
}

fn start() -> Tls {
    let dir = tempfile::tempdir().expect("temp dir");
    let (cert, key) = self_signed(dir.path());
    let (c, k) = (cert.to_str().expect("UTF-8 path"), key.to_str().expect("UTF-8 path"));
    let server = Server::start_with(&["--tls-cert", c, "--tls-key", k]);
    assert!(server.base.starts_with("https://127.0.0.1:"), "banner URL {}", server.base);
    Tls { server, cert, dir }
}

impl Tls {
    /// Runs `curl` trusting our certificate, as the admin, with `args` before the URL of `path`.
    fn curl(&self, args: &[&str], path: &str) -> Output {
        let output = Command::new("curl")
            .args(["--silent", "--show-error", "--max-time", "30", "--cacert"])
            .arg(&self.cert)
            .args(["--user", &format!("admin:{ADMIN_PASSWORD}")])
            .args(args)
            .arg(self.server.url(path))
            .output()
            .expect("run curl");
        assert!(output.status.success(), "curl {args:?} {path}: {}", String::from_utf8_lossy(&output.stderr));
        output
    }

    /// The `-w` write-out of a request whose body is discarded.
    fn write_out(&self, format: &str, args: &[&str], path: &str) -> String {
        let args = [args, &["--output", "/dev/null", "--write-out", format]].concat();
        String::from_utf8(self.curl(&args, path).stdout).expect("UTF-8 write-out")
    }

    fn authority(&self) -> &str {
        self.server.base.trim_start_matches("https://").trim_end_matches('/')
    }
}

/// Bytes every value of which occurs, in a length that spans several TLS records.
fn payload() -> Vec<u8> {
    (0..300_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect()
}

#[test]
fn put_then_get_over_https_returns_the_same_bytes() {
    let t = start();
    let body = payload();
    for (version, name) in [("--http1.1", "/h1.bin"), ("--http2", "/h2.bin")] {
        let upload = t.dir.path().join("upload.bin");
        std::fs::write(&upload, &body).expect("write upload");
        let put = t.write_out("%{http_code}", &[version, "--upload-file", upload.to_str().expect("path")], name);
        assert_eq!(put, "201", "{version}");
        let got = t.curl(&[version], name).stdout;
        assert!(got == body, "{version}: {} bytes back, {} sent", got.len(), body.len());
    }
}

#[test]
fn propfind_over_https_is_multistatus() {
    let t = start();
    for version in ["--http1.1", "--http2"] {
        let out =
            t.curl(&[version, "--request", "PROPFIND", "--header", "Depth: 1", "--write-out", "%{http_code}"], "/");
        let text = String::from_utf8(out.stdout).expect("UTF-8");
        assert!(text.ends_with("207"), "{version}: {text}");
        assert!(text.contains("multistatus"), "{version}: {text}");
    }
}

#[test]
fn http2_is_negotiated_over_tls() {
    let t = start();
    assert_eq!(t.write_out("%{http_version}", &["--http2"], "/"), "2");
    assert_eq!(t.write_out("%{http_version}", &["--http1.1"], "/"), "1.1");
}

#[test]
fn plain_http_to_the_tls_port_is_served_nothing() {
    let t = start();
    let mut conn = std::net::TcpStream::connect(t.authority()).expect("connect");
    conn.set_read_timeout(Some(Duration::from_secs(15))).expect("timeout");
    let request = format!("GET / HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n", t.authority());
    conn.write_all(request.as_bytes()).expect("write");
    let mut answer = Vec::new();
    let _ = conn.read_to_end(&mut answer);
    assert!(!answer.starts_with(b"HTTP/"), "answered in clear: {:?}", String::from_utf8_lossy(&answer));
    // curl sees no HTTP response either, and the server goes on serving HTTPS.
    let plain = t.server.url("/").replacen("https://", "http://", 1);
    let status = Command::new("curl").args(["--silent", "--max-time", "15", &plain]).status().expect("run curl");
    assert!(!status.success(), "plain HTTP got an answer");
    assert_eq!(t.write_out("%{http_code}", &["--request", "PROPFIND"], "/"), "207");
}

#[test]
fn a_client_that_does_not_trust_the_certificate_is_refused() {
    let t = start();
    let status = Command::new("curl")
        .args(["--silent", "--max-time", "15", "--output", "/dev/null", &t.server.url("/")])
        .env_remove("CURL_CA_BUNDLE")
        .status()
        .expect("run curl");
    // 60: the peer certificate cannot be authenticated with the known CA certificates.
    assert_eq!(status.code(), Some(60), "an unknown certificate was not refused as such");
}

#[test]
fn an_unusable_certificate_stops_the_server_with_a_clear_message() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_, key) = self_signed(dir.path());
    let missing = dir.path().join("missing.pem");
    let out = crate::harness::wharf(&dir.path().join("data"))
        .arg("serve")
        .arg("--data")
        .arg(dir.path().join("data"))
        .args(["--listen", "127.0.0.1:0", "--admin-listen", "off", "--tls-cert"])
        .arg(&missing)
        .arg("--tls-key")
        .arg(&key)
        .output()
        .expect("run wharf");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("TLS") && stderr.contains("missing.pem"), "{stderr}");
    assert!(out.stdout.is_empty(), "it served: {}", String::from_utf8_lossy(&out.stdout));
}
