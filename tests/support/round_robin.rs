//! nginx (Debian's package) as an operator would put it in front of several Wharf nodes:
//! each request to the next node in turn, bodies streamed both ways, connections to the
//! nodes kept alive. Shared by the multi-node tests (`tests/e2e/multinode.rs`) and the
//! scale benchmark (`tests/bench/scale.rs`); stopped on drop.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct RoundRobin {
    child: Child,
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub url: String,
}

impl RoundRobin {
    /// Starts nginx in `dir` (made if missing) over the nodes at `authorities` (`host:port`).
    pub fn start(dir: &Path, authorities: &[String]) -> RoundRobin {
        std::fs::create_dir_all(dir.join("tmp")).expect("proxy folder");
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        std::fs::write(dir.join("nginx.conf"), conf(dir, port, authorities)).expect("nginx.conf");
        let mut child = Command::new("nginx")
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .arg("-e")
            .arg(dir.join("error.log"))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("nginx (Debian's nginx package)");
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return RoundRobin { child, url: format!("http://127.0.0.1:{port}") };
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("nginx did not start: {}", std::fs::read_to_string(dir.join("error.log")).unwrap_or_default());
    }
}

impl Drop for RoundRobin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Round robin over the nodes; no connection closed after nginx's default 1,000 requests;
/// `user root` when run as root, so its workers can write their temporary folder.
fn conf(dir: &Path, port: u16, authorities: &[String]) -> String {
    let upstreams: String = authorities.iter().map(|a| format!("server {a}; ")).collect();
    let d = dir.display();
    // SAFETY: geteuid has no preconditions and cannot fail.
    let user = if unsafe { libc::geteuid() } == 0 { "user root root;" } else { "" };
    format!(
        "{user} daemon off; worker_processes auto; pid {d}/nginx.pid; error_log {d}/error.log;\n\
         events {{ worker_connections 1024; }}\n\
         http {{ access_log off; client_body_temp_path {d}/tmp; proxy_temp_path {d}/tmp;\n\
           keepalive_requests 1000000;\n\
           upstream wharf {{ {upstreams} keepalive 32; keepalive_requests 1000000; }}\n\
           server {{ listen 127.0.0.1:{port}; client_max_body_size 0;\n\
             location / {{ proxy_pass http://wharf; proxy_http_version 1.1;\n\
               proxy_set_header Connection \"\"; proxy_set_header Host $http_host;\n\
               proxy_request_buffering off; proxy_buffering off; proxy_next_upstream off; }} }} }}\n"
    )
}
