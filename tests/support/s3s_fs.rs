//! A real S3 server for tests: `s3s-fs` (the test command installs it with `cargo
//! install`) on a free loopback port over a temporary folder, one bucket made, stopped on
//! drop. Shared by the blob-store tests (`backends/tests/s3.rs`) and the end-to-end tests
//! (`tests/e2e/s3_blobs.rs`) and the S3 benchmark (`tests/bench/s3.rs`).
#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct S3sFs {
    child: Child,
    /// The server's folder: each bucket a folder in it, objects as files.
    pub root: tempfile::TempDir,
    pub endpoint: String,
}

impl S3sFs {
    pub fn start(bucket: &str, key: &str, secret: &str) -> S3sFs {
        let root = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(root.path().join(bucket)).expect("bucket folder");
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut child = Command::new("s3s-fs")
            .args(["--host", "127.0.0.1", "--port", &port.to_string(), "--access-key", key, "--secret-key", secret])
            .arg(root.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("s3s-fs must be installed: cargo install s3s-fs@0.14.1 --locked --features binary");
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return S3sFs { child, root, endpoint: format!("http://127.0.0.1:{port}") };
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("s3s-fs did not start on port {port}");
    }
}

impl Drop for S3sFs {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
