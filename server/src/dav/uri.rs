//! Request URIs and hrefs. Paths are percent-decoded exactly once, must be UTF-8, and
//! become a normalised [`DavPath`]; hrefs are written back percent-encoded.

use std::sync::OnceLock;

use axum::http::{Extensions, HeaderMap, Uri};
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

/// The `--base-path` prefix (`/dav`, or empty). One process serves one prefix, so it is set
/// once at start rather than threaded through every handler that writes an href.
static BASE: OnceLock<String> = OnceLock::new();

/// Sets the prefix every href gets and every request path must carry. Only the first call
/// counts; the server makes it before it accepts anything.
pub fn set_base_path(base: &str) {
    let _ = BASE.set(base.to_owned());
}

/// The prefix, empty when Wharf is served at `/`.
pub fn base_path() -> &'static str {
    BASE.get().map_or("", String::as_str)
}

/// The part of a raw request path below the prefix (`/dav/a` → `/a`, `/dav` → `/`), or `None`
/// for a path outside it. Compared before percent-decoding: the prefix is plain ASCII.
pub fn strip_base(raw: &str) -> Option<&str> {
    let base = base_path();
    let rest = raw.strip_prefix(base)?;
    match rest {
        "" => Some("/"),
        r if r.starts_with('/') => Some(r),
        _ => None,
    }
}

/// A request with the base path taken off its URI, so handlers see paths as stored; or the
/// answer for one outside it: 404, or a redirect from `/dav` to `/dav/` for a browser.
pub fn rebase(mut req: axum::extract::Request) -> Result<axum::extract::Request, Box<axum::response::Response>> {
    if base_path().is_empty() {
        return Ok(req);
    }
    let uri = req.uri();
    let Some(rest) = strip_base(uri.path()) else {
        return Err(Box::new(super::empty(axum::http::StatusCode::NOT_FOUND)));
    };
    let query = uri.query().map(|q| format!("?{q}")).unwrap_or_default();
    if uri.path() == base_path() && matches!(req.method().as_str(), "GET" | "HEAD") {
        let mut resp = super::empty(axum::http::StatusCode::MOVED_PERMANENTLY);
        let location = format!("{}/{query}", base_path());
        if let Ok(v) = axum::http::HeaderValue::from_str(&location) {
            resp.headers_mut().insert(axum::http::header::LOCATION, v);
        }
        return Err(Box::new(resp));
    }
    let rebased: Uri =
        format!("{rest}{query}").parse().map_err(|_| Box::new(super::empty(axum::http::StatusCode::BAD_REQUEST)))?;
    *req.uri_mut() = rebased;
    Ok(req)
}

/// Decodes a raw (still percent-encoded) absolute path into a model path.
/// Segments are decoded one by one so an encoded `%2F` can't smuggle a separator in.
pub fn decode_path(raw: &str) -> Result<DavPath, DavError> {
    if !raw.contains('%') {
        return Ok(DavPath::parse(raw)?);
    }
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

/// Whether `b` stands for itself in a segment of an href. Most names need no escape,
/// and a table says so for a whole name in less than the encoder's iterator takes.
fn plain(b: u8) -> bool {
    static PLAIN: OnceLock<[bool; 128]> = OnceLock::new();
    let table = PLAIN.get_or_init(|| {
        let mut t = [false; 128];
        for (b, slot) in (0u8..128).zip(t.iter_mut()) {
            *slot = utf8_percent_encode(char::from(b).encode_utf8(&mut [0; 4]), SEGMENT).to_string().len() == 1;
        }
        t
    });
    table.get(usize::from(b)).copied().unwrap_or(false)
}

/// The href of `path`, under the base path; collections end in `/`.
pub fn href(path: &DavPath, collection: bool) -> String {
    let mut s =
        String::with_capacity(base_path().len() + path.segments().iter().map(|g| g.len() + 1).sum::<usize>() + 1);
    s.push_str(base_path());
    for seg in path.segments() {
        s.push('/');
        if seg.bytes().all(plain) {
            s.push_str(seg);
        } else {
            s.push_str(&std::borrow::Cow::from(utf8_percent_encode(seg, SEGMENT)));
        }
    }
    if collection || path.is_root() {
        s.push('/');
    }
    s
}

/// The authorities a request may call this server's own: the `Host` it was sent with and,
/// behind a trusted proxy, the public host the client used (a `Destination` names the URL
/// the client sees, `https://files.example.org/...`, not the back end's).
pub struct Own<'a> {
    host: Option<&'a str>,
    public: Option<&'a str>,
}

impl<'a> Own<'a> {
    pub fn of(headers: &'a HeaderMap, extensions: &'a Extensions) -> Own<'a> {
        Own {
            host: headers.get(axum::http::header::HOST).and_then(|h| h.to_str().ok()),
            public: extensions.get::<crate::proxy::PublicOrigin>().and_then(|o| o.host.as_deref()),
        }
    }

    fn knows_hosts(&self) -> bool {
        self.host.is_some() || self.public.is_some()
    }

    fn is_ours(&self, authority: &str) -> bool {
        [self.host, self.public].into_iter().flatten().any(|h| h.eq_ignore_ascii_case(authority))
    }
}

/// Maps a URI named in a header (Destination, If tags) to a path on this server: an
/// absolute path, or an absolute URI whose authority is ours, under the base path. `None`
/// means "elsewhere".
pub fn local_target(value: &str, own: &Own) -> Option<Result<DavPath, DavError>> {
    let path = if value.starts_with('/') {
        value.split(['?', '#']).next().unwrap_or(value)
    } else {
        let uri: Uri = value.parse().ok()?;
        match uri.authority() {
            Some(a) if own.knows_hosts() && !own.is_ours(a.as_str()) => return None,
            _ => return Some(decode_path(strip_base(uri.path())?)),
        }
    };
    Some(decode_path(strip_base(path)?))
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
    fn a_plain_name_is_its_own_href_and_every_other_name_is_what_the_encoder_makes() {
        for b in 1u8..128 {
            let name = format!("a{}b", char::from(b));
            let Ok(p) = DavPath::parse(&format!("/{name}")) else { continue };
            if p.segments().len() != 1 {
                continue; // `/` itself
            }
            let encoded = utf8_percent_encode(&p.segments()[0], SEGMENT).to_string();
            assert_eq!(href(&p, false), format!("/{encoded}"), "byte {b}");
        }
        assert_eq!(href(&DavPath::parse("/plain-name_1.txt").unwrap(), false), "/plain-name_1.txt");
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
        let ext = Extensions::new();
        let own = Own::of(&h, &ext);
        assert!(local_target("http://example.org/x", &own).is_none());
        let p = local_target("http://127.0.0.1:8080/a%20b", &own).unwrap().unwrap();
        assert_eq!(p.key(), "/a b");
    }

    #[test]
    fn the_public_host_a_trusted_proxy_reports_is_local() {
        let mut h = HeaderMap::new();
        h.insert("host", "backend:8080".parse().unwrap());
        let mut ext = Extensions::new();
        let public = Some("files.example.org".to_owned());
        ext.insert(crate::proxy::PublicOrigin { scheme: Some("https".into()), host: public });
        let own = Own::of(&h, &ext);
        let p = local_target("https://files.example.org/x", &own).unwrap().unwrap();
        assert_eq!(p.key(), "/x");
        assert!(local_target("https://elsewhere.example.org/x", &own).is_none());
    }
}
