//! Departures from the plain protocol for particular clients, keyed on the User-Agent.
//! Each one is here because a client mishandles a correct answer; everyone else gets the
//! RFC 4918 answer.

use axum::http::{header, HeaderMap};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Quirks {
    /// Windows' WebClient (Explorer's drive mappings) asks for allprop and refuses a folder
    /// answer over `FileAttributesLimitInBytes` (1,000,000 bytes by default) without asking
    /// for compression. It only uses a few properties per member, so allprop sends those.
    pub compact_allprop: bool,
    /// Microsoft Office breaks on `DAV:lockroot` in lock answers and `lockdiscovery`.
    pub no_lockroot: bool,
}

impl Quirks {
    pub fn of(headers: &HeaderMap) -> Quirks {
        let agent = headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or_default();
        Quirks {
            compact_allprop: agent.starts_with("Microsoft-WebDAV-MiniRedir/"),
            no_lockroot: agent.contains("Microsoft Office"),
        }
    }
}

/// The live properties WebClient reads from a listing: kind, size and the two times.
pub const COMPACT_LIVE: &[&str] = &["creationdate", "getcontentlength", "getlastmodified", "resourcetype"];

/// Dead properties Explorer sets that a compact allprop still returns: the attribute bits
/// (hidden, read-only...). Its Win32 times are already in `creationdate`/`getlastmodified`.
pub fn compact_keeps_dead(ns: &str, local: &str) -> bool {
    ns != "urn:schemas-microsoft-com:" || local == "Win32FileAttributes"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quirks(agent: &str) -> Quirks {
        let mut h = HeaderMap::new();
        h.insert(header::USER_AGENT, agent.parse().unwrap());
        Quirks::of(&h)
    }

    #[test]
    fn explorer_gets_compact_listings() {
        assert!(quirks("Microsoft-WebDAV-MiniRedir/10.0.19045").compact_allprop);
        assert!(!quirks("rclone/v1.60.1").compact_allprop);
    }

    #[test]
    fn office_gets_no_lockroot() {
        assert!(quirks("Microsoft Office Word 2014").no_lockroot);
        assert!(quirks("Microsoft Office/16.0 (Windows NT 10.0; Microsoft Word 16.0.17928; Pro)").no_lockroot);
        assert!(!quirks("Microsoft-WebDAV-MiniRedir/10.0.19045").no_lockroot);
    }
}
