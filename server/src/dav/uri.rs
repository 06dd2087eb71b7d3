//! Request URIs and hrefs. Paths are percent-decoded exactly once, must be UTF-8, and
//! become a normalised [`DavPath`]; hrefs are written back percent-encoded.

use axum::http::{HeaderMap, Uri};
use dav_model::DavPath;
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, CONTROLS};

use super::DavError;

/// Everything outside RFC 3986 unreserved characters and a few safe sub-delims.
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'[')
    .add(b']')
    .add(b'\\')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}')
    .add(b'&')
    .add(b'\'');

/// Decodes a raw (still percent-encoded) absolute path into a model path.
/// Segments are decoded one by one so an encoded `%2F` can't smuggle a separator in.
pub fn decode_path(raw: &str) -> Result<DavPath, DavError> {
    let mut decoded = String::with_capacity(raw.len());
    for (n, seg) in raw.split('/').enumerate() {
        let seg = percent_decode_str(seg)
            .decode_utf8()
            .map_err(|_| DavError::BadRequest("path is not valid UTF-8".into()))?;
        if seg.contains('/') {
            return Err(DavError::BadRequest("encoded '/' in a name".into()));
        }
        if n > 0 {
            decoded.push('/');
        }
        decoded.push_str(&seg);
    }
    Ok(DavPath::parse(&decoded)?)
}

/// The model path of a request.
pub fn request_path(uri: &Uri) -> Result<DavPath, DavError> {
    decode_path(uri.path())
}

/// The href of `path`; collections end in `/`.
pub fn href(path: &DavPath, collection: bool) -> String {
    let mut s = String::new();
    for seg in path.segments() {
        s.push('/');
        s.extend(utf8_percent_encode(seg, SEGMENT));
    }
    if collection || path.is_root() {
        s.push('/');
    }
    s
}

/// Maps a URI named in a header (Destination, If tags) to a path on this server: an
/// absolute path, or an absolute URI whose authority is ours. `None` means "elsewhere".
pub fn local_target(value: &str, headers: &HeaderMap) -> Option<Result<DavPath, DavError>> {
    if value.starts_with('/') {
        let path = value.split(['?', '#']).next().unwrap_or(value);
        return Some(decode_path(path));
    }
    let uri: Uri = value.parse().ok()?;
    let host = headers.get(axum::http::header::HOST).and_then(|h| h.to_str().ok());
    match (uri.authority(), host) {
        (Some(a), Some(h)) if a.as_str().eq_ignore_ascii_case(h) => Some(decode_path(uri.path())),
        (Some(_), Some(_)) => None,
        _ => Some(decode_path(uri.path())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn href_encodes_spaces_and_unicode_but_not_slashes() {
        let p = DavPath::parse("/a b/é#").unwrap();
        assert_eq!(href(&p, true), "/a%20b/%C3%A9%23/");
    }

    #[test]
    fn invalid_utf8_is_a_bad_request() {
        assert!(decode_path("/%ff%fe").is_err());
    }

    #[test]
    fn encoded_slash_is_refused() {
        assert!(decode_path("/a%2Fb").is_err());
    }

    #[test]
    fn encoded_dot_dot_cannot_escape() {
        assert!(decode_path("/%2e%2e/%2e%2e/etc/passwd").is_err());
    }

    #[test]
    fn foreign_destination_is_not_local() {
        let mut h = HeaderMap::new();
        h.insert("host", "127.0.0.1:8080".parse().unwrap());
        assert!(local_target("http://example.org/x", &h).is_none());
        let p = local_target("http://127.0.0.1:8080/a%20b", &h).unwrap().unwrap();
        assert_eq!(p.key(), "/a b");
    }
}
