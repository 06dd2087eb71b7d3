//! `Content-Disposition` (RFC 6266) with the name encoded per RFC 8187 (ex-5987): an ASCII
//! `filename=` fallback for old agents, in which anything that could end the quoted string,
//! smuggle a path or be mis-decoded is replaced, plus `filename*=UTF-8''` with the exact
//! name percent-encoded. No byte of a user's name reaches the header raw.

use axum::http::HeaderValue;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// RFC 8187 `attr-char` is ALPHA / DIGIT and these; everything else is percent-encoded.
const ATTR: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'!')
    .remove(b'#')
    .remove(b'$')
    .remove(b'&')
    .remove(b'+')
    .remove(b'-')
    .remove(b'.')
    .remove(b'^')
    .remove(b'_')
    .remove(b'`')
    .remove(b'|')
    .remove(b'~');

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Shown by the browser when it can.
    Inline,
    /// Saved as a file.
    Attachment,
}

/// The header value for a resource called `name`.
pub fn value(kind: Kind, name: &str) -> HeaderValue {
    let kind = match kind {
        Kind::Inline => "inline",
        Kind::Attachment => "attachment",
    };
    let mut v = String::with_capacity(kind.len() + 3 * name.len() + 32);
    v.push_str(kind);
    v.push_str("; filename=\"");
    push_fallback(&mut v, name);
    v.push_str("\"; filename*=UTF-8''");
    v.extend(utf8_percent_encode(name, ATTR));
    // Only visible ASCII is ever written above, so this can't fail; stay safe anyway.
    HeaderValue::try_from(v).unwrap_or_else(|_| HeaderValue::from_static("attachment"))
}

/// Appends the name with every character outside printable ASCII, and `"`, `\`, `%`, `/`,
/// replaced by `_` (some agents percent-decode or unescape `filename=`).
fn push_fallback(v: &mut String, name: &str) {
    let safe = |c: char| (c.is_ascii_graphic() || c == ' ') && !matches!(c, '"' | '\\' | '%' | '/');
    let start = v.len();
    v.extend(name.chars().map(|c| if safe(c) { c } else { '_' }));
    if v[start..].trim_matches(['_', ' ', '.']).is_empty() {
        v.truncate(start);
        v.push_str("download");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unicode_names_get_both_forms() {
        let v = value(Kind::Attachment, "naïve résumé.txt");
        assert_eq!(
            v.to_str().unwrap(),
            "attachment; filename=\"na_ve r_sum_.txt\"; filename*=UTF-8''na%C3%AFve%20r%C3%A9sum%C3%A9.txt"
        );
    }

    #[test]
    fn quotes_and_line_breaks_never_reach_the_header() {
        let v = value(Kind::Inline, "a\"b\r\nSet-Cookie: x=1;.txt");
        let s = v.to_str().unwrap();
        assert!(!s.contains('\r') && !s.contains('\n'));
        assert!(s.starts_with("inline; filename=\"a_b__Set-Cookie: x=1;.txt\"; filename*=UTF-8''a%22b%0D%0A"));
    }

    #[test]
    fn unusable_names_fall_back() {
        assert!(value(Kind::Inline, "日本").to_str().unwrap().contains("filename=\"download\""));
    }
}
