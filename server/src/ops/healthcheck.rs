//! `wharf healthcheck`: asks a running server's `/readyz` and exits 0 when it is ready, 1
//! otherwise. It is the container image's `HEALTHCHECK`, which has no curl: a hand-written
//! HTTP/1.1 request over one TCP connection is all it takes, so no HTTP client is linked in.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Connecting, asking and reading the answer together; a server that takes longer is not
/// healthy, whatever it would have said.
const TIMEOUT: Duration = Duration::from_secs(3);
/// More than any `/readyz` answer; a longer one is read no further.
const MAX_ANSWER: u64 = 64 * 1024;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The operations listener to ask, as given to `wharf serve` (default 127.0.0.1:8081).
    /// An unspecified address (0.0.0.0, ::) is asked on loopback.
    #[arg(long, env = "WHARF_ADMIN_LISTEN")]
    pub admin_listen: Option<String>,
}

pub async fn run(args: Args) -> Result<(), String> {
    let Some(addr) = crate::config::parse_admin_listen(args.admin_listen.as_deref())? else {
        return Err("the operations listener is off (--admin-listen off): there is nothing to ask".into());
    };
    let addr = on_loopback(addr);
    let (status, body) = match tokio::time::timeout(TIMEOUT, ask(addr)).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(e)) => return Err(format!("not ready: cannot ask http://{addr}/readyz: {e}")),
        Err(_) => return Err(format!("not ready: no answer from http://{addr}/readyz within {} s", TIMEOUT.as_secs())),
    };
    match status {
        200 => Ok(()),
        _ => Err(format!("not ready ({status}): {}", first_line(&body))),
    }
}

/// A server listening on every address is reached through loopback.
fn on_loopback(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => SocketAddr::new(Ipv4Addr::LOCALHOST.into(), addr.port()),
        IpAddr::V6(ip) if ip.is_unspecified() => SocketAddr::new(Ipv6Addr::LOCALHOST.into(), addr.port()),
        _ => addr,
    }
}

async fn ask(addr: SocketAddr) -> io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(addr).await?;
    let request = format!("GET /readyz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut answer = Vec::new();
    stream.take(MAX_ANSWER).read_to_end(&mut answer).await?;
    parse(&answer)
}

/// The status code and body of an HTTP/1.x answer (the body as sent: `/readyz` answers with
/// a `Content-Length`, never chunked).
fn parse(answer: &[u8]) -> io::Result<(u16, String)> {
    let text = String::from_utf8_lossy(answer);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut status_line = head.lines().next().unwrap_or_default().split(' ');
    let code = match (status_line.next(), status_line.next()) {
        (Some(version), Some(code)) if version.starts_with("HTTP/1.") => code.parse().ok(),
        _ => None,
    };
    let code = code.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "the answer is not HTTP/1.x"))?;
    Ok((code, body.to_owned()))
}

/// What is worth printing of a reason: its first line, without control characters.
fn first_line(body: &str) -> String {
    let line = body.lines().next().unwrap_or_default();
    line.chars().filter(|c| !c.is_control()).take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unspecified_address_is_asked_on_loopback() {
        let v4: SocketAddr = "0.0.0.0:8081".parse().unwrap();
        assert_eq!(on_loopback(v4), "127.0.0.1:8081".parse().unwrap());
        let v6: SocketAddr = "[::]:9000".parse().unwrap();
        assert_eq!(on_loopback(v6), "[::1]:9000".parse().unwrap());
        let given: SocketAddr = "192.0.2.1:8081".parse().unwrap();
        assert_eq!(on_loopback(given), given);
    }

    #[test]
    fn the_status_and_reason_come_from_the_answer() {
        let answer = b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 10\r\n\r\ndraining\n";
        assert_eq!(parse(answer).unwrap(), (503, "draining\n".to_owned()));
        assert!(parse(b"SSH-2.0-OpenSSH\r\n").is_err());
        assert!(parse(b"").is_err());
        assert_eq!(first_line("database: locked\nmore"), "database: locked");
    }
}
