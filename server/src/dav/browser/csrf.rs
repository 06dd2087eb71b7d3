//! Cross-site request forgery defence for every state-changing method. A browser names the
//! page a request comes from in `Origin` (and, in recent ones, `Sec-Fetch-Site`); WebDAV
//! clients send neither, so they are unaffected. A request from a browser must come from
//! this server's own origin and carry `X-Wharf-Request`, which a page elsewhere can't add
//! without a CORS preflight this server never grants.

use axum::http::{header, HeaderMap, Method, Uri};

/// The custom header the file-browser page sends with every write.
pub const MARKER: &str = "x-wharf-request";

/// Methods that change state; GET, HEAD, OPTIONS and PROPFIND don't.
fn changes_state(m: &Method) -> bool {
    matches!(m.as_str(), "PUT" | "DELETE" | "MKCOL" | "COPY" | "MOVE" | "PROPPATCH" | "LOCK" | "UNLOCK" | "POST")
}

/// Why a request is refused, or `None` when it may go on. Behind a trusted proxy the page's
/// origin is the public one the proxy reported (`public`), not the back end's Host.
pub fn refusal(
    method: &Method,
    headers: &HeaderMap,
    uri: &Uri,
    public: Option<&crate::proxy::PublicOrigin>,
) -> Option<&'static str> {
    if !changes_state(method) {
        return None;
    }
    let site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    if site.is_some_and(|s| s.eq_ignore_ascii_case("cross-site")) {
        return Some("cross-site request");
    }
    let origin = headers.get(header::ORIGIN)?.to_str().ok();
    let own = headers.get(header::HOST).and_then(|h| h.to_str().ok()).or(uri.authority().map(|a| a.as_str()));
    // This server as the request names it, and as the client reached it through the proxy.
    let names =
        [(own, uri.scheme_str()), (public.and_then(|p| p.host.as_deref()), public.and_then(|p| p.scheme.as_deref()))];
    let same = names.into_iter().any(|(host, scheme)| match (origin, host) {
        (Some(o), Some(host)) => same_origin(o, host, scheme),
        _ => false,
    });
    if !same {
        return Some("Origin is not this server");
    }
    if !headers.contains_key(MARKER) {
        return Some("browser request without X-Wharf-Request");
    }
    None
}

/// Whether `origin` (`scheme://host[:port]`) names `own` (the Host header). Over HTTP/1.1
/// the request carries no scheme; one port serves either TLS or not, so host and port
/// decide, with the default port of the origin's scheme made explicit on both sides. When
/// the request does carry a scheme (HTTP/2), it must match too.
fn same_origin(origin: &str, own: &str, scheme: Option<&str>) -> bool {
    let Some((o_scheme, o_host)) = origin.split_once("://") else {
        return false; // "null" and garbage
    };
    if scheme.is_some_and(|s| !s.eq_ignore_ascii_case(o_scheme)) {
        return false;
    }
    let default = match o_scheme.to_ascii_lowercase().as_str() {
        "http" => "80",
        "https" => "443",
        _ => return false,
    };
    with_port(o_host, default).eq_ignore_ascii_case(&with_port(own, default))
}

/// `host:port`, adding `default` when the authority has no port (IPv6 literals kept whole).
fn with_port(authority: &str, default: &str) -> String {
    let has_port = match authority.rfind(']') {
        Some(end) => authority[end..].contains(':'),
        None => authority.contains(':'),
    };
    if has_port {
        authority.to_owned()
    } else {
        format!("{authority}:{default}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(method: &str, pairs: &[(&'static str, &str)]) -> Option<&'static str> {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, "files.example:8080".parse().unwrap());
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        refusal(&Method::from_bytes(method.as_bytes()).unwrap(), &h, &Uri::from_static("/a"), None)
    }

    #[test]
    fn webdav_clients_without_origin_pass() {
        assert_eq!(check("PUT", &[]), None);
        assert_eq!(check("MOVE", &[("sec-fetch-site", "same-origin")]), None);
    }

    #[test]
    fn foreign_or_null_origins_are_refused() {
        assert!(check("PUT", &[("origin", "http://evil.example"), (MARKER, "1")]).is_some());
        assert!(check("DELETE", &[("origin", "null"), (MARKER, "1")]).is_some());
        assert!(check("PUT", &[("origin", "http://files.example:8081"), (MARKER, "1")]).is_some());
        assert!(check("POST", &[("sec-fetch-site", "cross-site")]).is_some());
    }

    #[test]
    fn same_origin_needs_the_marker() {
        assert_eq!(check("PUT", &[("origin", "http://files.example:8080"), (MARKER, "1")]), None);
        assert!(check("PUT", &[("origin", "http://files.example:8080")]).is_some());
    }

    #[test]
    fn reads_are_never_refused() {
        assert_eq!(check("GET", &[("origin", "http://evil.example")]), None);
        assert_eq!(check("PROPFIND", &[("sec-fetch-site", "cross-site")]), None);
    }

    #[test]
    fn default_ports_are_implied() {
        assert!(same_origin("https://h.example", "h.example:443", None));
        assert!(same_origin("http://[::1]", "[::1]:80", None));
        assert!(!same_origin("https://h.example", "h.example:80", None));
        assert!(!same_origin("http://h.example", "h.example", Some("https")));
    }
}
