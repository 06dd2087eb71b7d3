//! Entry points for the fuzz targets in `fuzz/` (cargo fuzz): every parser a client's bytes
//! reach. Each takes arbitrary bytes and panics only when a parser panics or breaks a promise
//! its callers rely on, so a fuzzer finds wrong answers as well as crashes. Not part of the
//! server's API; public only so the fuzz crate can call it.

use std::path::Path;

use axum::http::{Extensions, HeaderMap, HeaderValue};
use dav_model::DavPath;
use dav_model::PatchOp;
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;

use crate::dav::{get, headers, uri};

/// PROPFIND, PROPPATCH and LOCK bodies. A property value the PROPPATCH parser keeps must be
/// namespace-well-formed on its own: it is pasted verbatim into later responses.
pub fn xml_bodies(data: &[u8]) {
    let _ = crate::xml::parse_propfind(data);
    let _ = crate::xml::parse_lockinfo(data);
    if let Ok(ops) = crate::xml::parse_proppatch(data) {
        for op in ops {
            if let PatchOp::Set(prop) = op {
                assert_self_contained(&prop.xml);
            }
        }
    }
}

fn assert_self_contained(xml: &str) {
    let mut reader = NsReader::from_str(xml);
    let mut depth = 0usize;
    loop {
        let (ns, event) = reader.read_resolved_event().unwrap_or_else(|e| panic!("kept value is not XML ({e}): {xml}"));
        assert!(!matches!(ns, ResolveResult::Unknown(_)), "kept value uses an undeclared prefix: {xml}");
        match event {
            Event::Start(_) => depth += 1,
            Event::End(_) => depth = depth.saturating_sub(1),
            Event::Eof => break,
            _ => {}
        }
    }
    assert_eq!(depth, 0, "kept value is not one whole element: {xml}");
}

/// The `If` header, with tags resolved the way the server resolves them.
pub fn if_header(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = crate::if_header::parse_if_header(text, |raw| uri::decode_path(raw).ok());
}

/// `Depth`, `Timeout`, `Overwrite`, `Lock-Token`, `Destination` and `Range`, one per line.
/// Ranges must lie inside the content, be non-empty and few.
pub fn headers(data: &[u8]) {
    let mut lines = data.split(|b| *b == b'\n');
    let mut h = HeaderMap::new();
    for name in ["depth", "timeout", "overwrite", "lock-token", "destination", "host"] {
        if let Some(v) = lines.next().and_then(|l| HeaderValue::from_bytes(l).ok()) {
            h.insert(name, v);
        }
    }
    let _ = headers::depth(&h, dav_model::Depth::Infinity);
    let _ = headers::timeouts(&h);
    let _ = headers::overwrite(&h);
    let _ = headers::lock_token(&h);
    let ext = Extensions::new();
    if let Some(dest) = h.get("destination").and_then(|v| v.to_str().ok()) {
        let _ = uri::local_target(dest, &uri::Own::of(&h, &ext));
    }
    let (Some(size), Some(spec)) = (lines.next(), lines.next()) else { return };
    let size = size.iter().fold(0u64, |n, b| n.wrapping_mul(31).wrapping_add(u64::from(*b)));
    let Ok(spec) = std::str::from_utf8(spec) else { return };
    if let Some(ranges) = get::parse_ranges(spec, size) {
        assert!(ranges.len() <= 32, "{} ranges", ranges.len());
        for r in ranges {
            assert!(r.start < r.end && r.end <= size, "{r:?} of {size} bytes from {spec:?}");
        }
    }
}

/// Request paths: a decoded path never holds `.`, `..` or `/` in a name, and its href
/// decodes back to the same path.
pub fn paths(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(path) = uri::decode_path(text) else { return };
    for seg in path.segments().iter().map(|s| &**s) {
        assert!(seg != "." && seg != ".." && !seg.contains('/') && !seg.is_empty(), "segment {seg:?} of {text:?}");
    }
    let again = uri::decode_path(&uri::href(&path, false)).expect("an href decodes");
    assert_eq!(again, path, "href round trip of {text:?}");
}

/// FTP paths (`CWD`, `RETR` … arguments) and `SITE UTIME` arguments. A resolved path stays
/// in the view: resolving it again from the top gives itself.
pub fn ftp_commands(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (cwd, arg) = text.split_once('\n').unwrap_or(("/", text));
    let cwd = DavPath::parse(cwd).unwrap_or_default();
    if let Ok(path) = crate::ftp::path::resolve(&cwd, Path::new(arg)) {
        let again = crate::ftp::path::resolve(&DavPath::root(), Path::new(&path.to_string()));
        assert_eq!(again.ok().as_ref(), Some(&path), "{arg:?} from {cwd}");
    }
    if let Some((path, _)) = crate::ftp::site::parse(arg) {
        assert!(!path.is_empty());
    }
}
