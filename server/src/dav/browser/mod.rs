//! The browser front end: an HTML page for collections, its embedded assets, folder
//! downloads as zip, `Content-Disposition` for files, and the CSRF check every write goes
//! through. Like the rest of the WebDAV layer it only reads through the model's `View`;
//! the page's own actions are ordinary WebDAV requests (PUT, MKCOL, MOVE, DELETE).

use axum::http::{header, HeaderMap, HeaderValue, Uri};
use dav_model::Resource;
use percent_encoding::percent_decode_str;

pub mod assets;
pub mod csrf;
pub mod disposition;
pub mod download;
pub mod page;
pub mod zip;

/// The page and assets may load only themselves: no inline code, no other origin.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Column a listing is sorted by.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Sort {
    #[default]
    Name,
    Size,
    Modified,
}

impl Sort {
    pub fn as_str(self) -> &'static str {
        match self {
            Sort::Name => "name",
            Sort::Size => "size",
            Sort::Modified => "modified",
        }
    }
}

/// What a GET's query string asks the browser front end for. Unknown keys and values are
/// ignored: a query never makes a request fail.
#[derive(Debug, Default)]
pub struct Query {
    pub sort: Sort,
    pub desc: bool,
    /// `download=zip` on a collection.
    pub zip: bool,
    /// `download=1` (or any other value) on a file: save instead of show.
    pub attachment: bool,
    pub asset: Option<String>,
    pub version: Option<String>,
}

impl Query {
    pub fn parse(uri: &Uri) -> Query {
        let mut q = Query::default();
        let Some(query) = uri.query() else { return q };
        for pair in query.split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let v = percent_decode_str(v).decode_utf8_lossy();
            match k {
                "sort" => {
                    q.sort = match &*v {
                        "size" => Sort::Size,
                        "modified" => Sort::Modified,
                        _ => Sort::Name,
                    }
                }
                "order" => q.desc = v == "desc",
                "download" if v == "zip" => q.zip = true,
                "download" => q.attachment = true,
                "asset" => q.asset = Some(v.into_owned()),
                "v" => q.version = Some(v.into_owned()),
                _ => {}
            }
        }
        q
    }
}

/// Headers on the page and its assets: the CSP, no MIME sniffing, no referrer leaking
/// private paths to anyone.
pub fn secure(h: &mut HeaderMap) {
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
}

/// Headers on a file's GET or HEAD: its name for saving, and no sniffing. Types a browser
/// would run as a document on this origin (HTML, SVG, XML) are always attachments, so a
/// stored file can't script the front end with the viewer's credentials.
pub fn file_headers(uri: &Uri, r: &Resource, content_type: &str, h: &mut HeaderMap) {
    let lower;
    let ct = if content_type.bytes().any(|b| b.is_ascii_uppercase()) {
        lower = content_type.to_ascii_lowercase();
        &lower
    } else {
        content_type
    };
    let active = ["html", "xml", "svg"].iter().any(|t| ct.contains(t));
    let kind =
        if active || Query::parse(uri).attachment { disposition::Kind::Attachment } else { disposition::Kind::Inline };
    h.insert(header::CONTENT_DISPOSITION, disposition::value(kind, r.name()));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_parse_leniently() {
        let q = Query::parse(&Uri::from_static("/a/?sort=size&order=desc&x&download=zip"));
        assert_eq!((q.sort, q.desc, q.zip, q.attachment), (Sort::Size, true, true, false));
        let q = Query::parse(&Uri::from_static("/a?sort=%FF&download=1&asset=app.js"));
        assert_eq!((q.sort, q.attachment, q.asset.as_deref()), (Sort::Name, true, Some("app.js")));
    }
}
