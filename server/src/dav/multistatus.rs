//! Writing `207 Multi-Status` bodies. Responses are appended to a buffer that the caller
//! drains in chunks while it produces more, so a Depth infinity answer is streamed and
//! never held whole in memory.

use axum::http::StatusCode;
use bytes::Bytes;

/// Above this many buffered bytes a chunk is ready to send.
const CHUNK: usize = 64 * 1024;

pub struct Multistatus {
    buf: String,
}

/// One `propstat`: a status, the property elements it covers, and an optional
/// precondition element (e.g. `cannot-modify-protected-property`).
pub struct Propstat<'a> {
    pub status: StatusCode,
    pub props: &'a str,
    pub error: Option<&'a str>,
}

impl Multistatus {
    pub fn new() -> Multistatus {
        let mut buf = Self::buffer();
        buf.push_str("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<D:multistatus xmlns:D=\"DAV:\">");
        Multistatus { buf }
    }

    fn buffer() -> String {
        String::with_capacity(CHUNK + 16 * 1024)
    }

    pub fn response(&mut self, href: &str, propstats: &[Propstat<'_>]) {
        self.buf.push_str("<D:response><D:href>");
        self.buf.push_str(&escape_text(href));
        self.buf.push_str("</D:href>");
        for ps in propstats {
            self.buf.push_str("<D:propstat><D:prop>");
            self.buf.push_str(ps.props);
            self.buf.push_str("</D:prop>");
            self.status(ps.status);
            if let Some(e) = ps.error {
                self.buf.push_str("<D:error><D:");
                self.buf.push_str(e);
                self.buf.push_str("/></D:error>");
            }
            self.buf.push_str("</D:propstat>");
        }
        self.buf.push_str("</D:response>");
    }

    /// A response carrying only a status for `href` (a member a COPY or MOVE could not
    /// carry over, RFC 4918 9.8.8).
    pub fn status_response(&mut self, href: &str, status: StatusCode) {
        self.buf.push_str("<D:response><D:href>");
        self.buf.push_str(&escape_text(href));
        self.buf.push_str("</D:href>");
        self.status(status);
        self.buf.push_str("</D:response>");
    }

    fn status(&mut self, status: StatusCode) {
        self.buf.push_str("<D:status>HTTP/1.1 ");
        self.buf.push_str(status.as_str());
        self.buf.push(' ');
        self.buf.push_str(status.canonical_reason().unwrap_or(""));
        self.buf.push_str("</D:status>");
    }

    /// A chunk to send, once enough has accumulated.
    pub fn ready_chunk(&mut self) -> Option<Bytes> {
        // The replacement keeps its capacity, so filling the next chunk never reallocates.
        (self.buf.len() >= CHUNK).then(|| Bytes::from(std::mem::replace(&mut self.buf, Self::buffer())))
    }

    /// Closes the document and returns what is left to send.
    pub fn finish(mut self) -> Bytes {
        self.buf.push_str("</D:multistatus>\n");
        Bytes::from(self.buf)
    }
}

/// Escapes attribute values (`&`, `<`, `>`, `"`).
pub fn escape(s: &str) -> std::borrow::Cow<'_, str> {
    escape_bytes(s, |b| matches!(b, b'&' | b'<' | b'>' | b'"'))
}

/// Escapes element content (`&`, `<`, `>`): a quote needs no escape there, and every
/// ETag has two, which made each member of a listing take the slow path.
pub fn escape_text(s: &str) -> std::borrow::Cow<'_, str> {
    // Most texts need nothing: memchr3 tells so many bytes at a time.
    if memchr::memchr3(b'&', b'<', b'>', s.as_bytes()).is_none() {
        return std::borrow::Cow::Borrowed(s);
    }
    escape_bytes(s, |b| matches!(b, b'&' | b'<' | b'>'))
}

fn escape_bytes(s: &str, special: impl Fn(u8) -> bool) -> std::borrow::Cow<'_, str> {
    // A byte scan: a pattern of several chars is matched char by char, several times
    // slower, and a large PROPFIND escapes a few texts per member.
    if !s.bytes().any(&special) {
        return std::borrow::Cow::Borrowed(s);
    }
    // Runs between the escaped bytes are copied whole.
    let mut out = String::with_capacity(s.len() + 12);
    let mut from = 0;
    for (i, b) in s.bytes().enumerate().filter(|&(_, b)| special(b)) {
        let entity = match b {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            _ => "&quot;",
        };
        // `i` is at an ASCII byte, so both slices end on char boundaries.
        out.push_str(&s[from..i]);
        out.push_str(entity);
        from = i + 1;
    }
    out.push_str(&s[from..]);
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_replaces_markup_and_keeps_the_rest() {
        assert_eq!(escape("plain é"), "plain é");
        assert_eq!(escape("\"x\""), "&quot;x&quot;");
        assert_eq!(escape("a<b>&c\"é\""), "a&lt;b&gt;&amp;c&quot;é&quot;");
        assert_eq!(escape_text("a<b>&c\"é\""), "a&lt;b&gt;&amp;c\"é\"");
    }

    #[test]
    fn propstats_carry_status_lines_and_conditions() {
        let mut m = Multistatus::new();
        let ps = [
            Propstat { status: StatusCode::OK, props: "<D:getetag>\"x\"</D:getetag>", error: None },
            Propstat {
                status: StatusCode::FORBIDDEN,
                props: "<D:getetag/>",
                error: Some("cannot-modify-protected-property"),
            },
        ];
        m.response("/a&b", &ps);
        let s = String::from_utf8(m.finish().to_vec()).unwrap();
        assert!(s.contains("<D:href>/a&amp;b</D:href>"));
        assert!(s.contains("<D:status>HTTP/1.1 200 OK</D:status>"));
        assert!(s.contains("HTTP/1.1 403 Forbidden</D:status><D:error><D:cannot-modify-protected-property/>"));
        assert!(s.ends_with("</D:multistatus>\n"));
    }
}
