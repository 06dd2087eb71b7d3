//! Reverse proxies: who the client really is, and which scheme and host it used, when — and
//! only when — the TCP peer is a proxy the operator trusts.
//!
//! `Forwarded` (RFC 7239) and `X-Forwarded-For` are plain request headers: any client can send
//! them. Believing them from anyone would let one attacker rotate through invented addresses
//! past the brute-force guard, or pin a lockout on a victim's address. So the peer must be in
//! `--trusted-proxies`, and the chain is read from the right (the entries our own proxies
//! appended), skipping further trusted hops; the first address not trusted is the client.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, Request};
use axum::http::{Extensions, HeaderMap};
use ipnet::IpNet;

/// The client's address after proxy headers were weighed: what the guard counts and the
/// access log shows. Every request carries one (see [`layer`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

/// The scheme and host the client addressed, as a trusted proxy reported them. A COPY or
/// MOVE `Destination` names the public URL, which the back end would not recognise as its own.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PublicOrigin {
    pub scheme: Option<String>,
    pub host: Option<String>,
}

/// The configured trusted proxies.
#[derive(Clone, Debug, Default)]
pub struct Proxies {
    nets: Vec<IpNet>,
}

impl Proxies {
    pub fn new(nets: Vec<IpNet>) -> Proxies {
        Proxies { nets }
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.nets.iter().any(|n| n.contains(&ip))
    }

    /// The client address and public origin of a request that arrived from `peer`.
    pub fn resolve(&self, peer: IpAddr, headers: &HeaderMap) -> (IpAddr, Option<PublicOrigin>) {
        if !self.trusts(peer) {
            return (canonical(peer), None);
        }
        let hops = match forwarded_hops(headers) {
            Some(hops) => hops,
            None => x_forwarded_hops(headers),
        };
        // The nearest hop is the one our trusted proxy wrote: its scheme and host are what the
        // client used to reach that proxy.
        let origin = hops.last().map(|h| PublicOrigin { scheme: h.proto.clone(), host: h.host.clone() });
        let mut client = canonical(peer);
        for hop in hops.iter().rev() {
            let Some(addr) = hop.addr else { break };
            client = canonical(addr);
            if !self.trusts(addr) {
                break;
            }
        }
        (client, origin)
    }
}

/// One proxy's entry: the address it received the request from, and what that side used.
#[derive(Debug, Default, Clone)]
struct Hop {
    addr: Option<IpAddr>,
    proto: Option<String>,
    host: Option<String>,
}

/// `Forwarded: for=192.0.2.60;proto=https;host=example.com, for="[2001:db8::1]:4711"`, every
/// such header in order. `None` when there is none, so `X-Forwarded-*` is consulted instead.
fn forwarded_hops(headers: &HeaderMap) -> Option<Vec<Hop>> {
    let mut values = headers.get_all("forwarded").iter().peekable();
    values.peek()?;
    let mut hops = Vec::new();
    for value in values {
        let Ok(text) = value.to_str() else { return Some(Vec::new()) };
        for element in text.split(',') {
            let mut hop = Hop::default();
            for pair in element.split(';') {
                let Some((key, val)) = pair.split_once('=') else { continue };
                let val = val.trim().trim_matches('"');
                match key.trim().to_ascii_lowercase().as_str() {
                    "for" => hop.addr = node_addr(val),
                    "proto" => hop.proto = Some(val.to_ascii_lowercase()),
                    "host" => hop.host = Some(val.to_owned()),
                    _ => {}
                }
            }
            hops.push(hop);
        }
    }
    Some(hops)
}

/// `X-Forwarded-For: client, proxy1` with `X-Forwarded-Proto` and `X-Forwarded-Host` (whose
/// last values belong to the nearest proxy).
fn x_forwarded_hops(headers: &HeaderMap) -> Vec<Hop> {
    let list = |name: &str| -> Vec<String> {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect()
    };
    let mut hops: Vec<Hop> =
        list("x-forwarded-for").iter().map(|a| Hop { addr: node_addr(a), ..Hop::default() }).collect();
    let (proto, host) = (list("x-forwarded-proto").pop(), list("x-forwarded-host").pop());
    if proto.is_some() || host.is_some() {
        if hops.is_empty() {
            hops.push(Hop::default());
        }
        if let Some(last) = hops.last_mut() {
            last.proto = proto.map(|p| p.to_ascii_lowercase());
            last.host = host;
        }
    }
    hops
}

/// An address from a `for=` node or an X-Forwarded-For item: `192.0.2.1`, `192.0.2.1:80`,
/// `[2001:db8::1]`, `[2001:db8::1]:80`, `2001:db8::1`. Obfuscated names (`_hidden`,
/// `unknown`) are not addresses.
fn node_addr(node: &str) -> Option<IpAddr> {
    if let Ok(ip) = node.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(sock) = node.parse::<SocketAddr>() {
        return Some(sock.ip());
    }
    node.strip_prefix('[').and_then(|r| r.strip_suffix(']')).and_then(|r| r.parse().ok())
}

/// IPv4 clients of a dual-stack socket arrive as `::ffff:a.b.c.d`; ranges are written in IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The client's address: the one [`layer`] recorded, or the TCP peer for a request that
/// never went through it. Everything that counts or logs clients asks here.
pub fn client_addr(extensions: &Extensions) -> IpAddr {
    extensions.get::<ClientAddr>().map_or_else(|| tcp_peer(extensions), |c| c.0)
}

/// The TCP peer the accept loop recorded (`ConnectInfo`).
fn tcp_peer(extensions: &Extensions) -> IpAddr {
    extensions.get::<ConnectInfo<SocketAddr>>().map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip())
}

/// Records [`ClientAddr`] (and [`PublicOrigin`] behind a trusted proxy) on a request, before
/// anything else looks at it (called by `edge`).
pub fn mark(proxies: &Proxies, req: &mut Request) {
    let (client, origin) = proxies.resolve(tcp_peer(req.extensions()), req.headers());
    req.extensions_mut().insert(ClientAddr(client));
    if let Some(origin) = origin {
        req.extensions_mut().insert(origin);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxies(list: &[&str]) -> Proxies {
        Proxies::new(list.iter().map(|n| n.parse().unwrap()).collect())
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn headers_from_an_untrusted_peer_are_ignored() {
        let p = proxies(&["10.0.0.0/8"]);
        let h = headers(&[("x-forwarded-for", "1.2.3.4"), ("forwarded", "for=5.6.7.8;proto=https")]);
        assert_eq!(p.resolve(ip("192.0.2.9"), &h), (ip("192.0.2.9"), None));
    }

    #[test]
    fn a_trusted_proxy_names_the_client() {
        let p = proxies(&["10.0.0.0/8"]);
        let h = headers(&[("x-forwarded-for", "203.0.113.5"), ("x-forwarded-proto", "https")]);
        let (client, origin) = p.resolve(ip("10.0.0.2"), &h);
        assert_eq!(client, ip("203.0.113.5"));
        assert_eq!(origin.unwrap().scheme.as_deref(), Some("https"));
    }

    #[test]
    fn a_spoofed_entry_left_of_the_real_client_is_not_believed() {
        let p = proxies(&["10.0.0.0/8"]);
        let h = headers(&[("x-forwarded-for", "1.1.1.1, 203.0.113.5, 10.0.0.3")]);
        assert_eq!(p.resolve(ip("10.0.0.2"), &h).0, ip("203.0.113.5"));
    }

    #[test]
    fn forwarded_wins_over_x_forwarded_for_and_reads_quoted_ipv6() {
        let p = proxies(&["127.0.0.1/32"]);
        let h = headers(&[
            ("forwarded", "for=\"[2001:db8::7]:4711\";proto=https;host=files.example.org"),
            ("x-forwarded-for", "1.2.3.4"),
        ]);
        let (client, origin) = p.resolve(ip("127.0.0.1"), &h);
        assert_eq!(client, ip("2001:db8::7"));
        assert_eq!(origin.unwrap().host.as_deref(), Some("files.example.org"));
    }

    #[test]
    fn an_obfuscated_client_leaves_the_proxy_as_the_client() {
        let p = proxies(&["127.0.0.1/32"]);
        let h = headers(&[("forwarded", "for=_hidden")]);
        assert_eq!(p.resolve(ip("127.0.0.1"), &h).0, ip("127.0.0.1"));
    }

    #[test]
    fn ipv4_mapped_peers_match_ipv4_ranges() {
        let p = proxies(&["127.0.0.1/32"]);
        let h = headers(&[("x-forwarded-for", "198.51.100.1")]);
        assert_eq!(p.resolve(ip("::ffff:127.0.0.1"), &h).0, ip("198.51.100.1"));
    }
}
