//! The RFC 4918 section 10.4 `If` request header.
//!
//! ```text
//! If = 1*No-tag-list | 1*Tagged-list
//! No-tag-list = List
//! Tagged-list = Resource-Tag 1*List
//! List = "(" 1*Condition ")"
//! Condition = ["Not"] (State-token | "[" entity-tag "]")
//! Resource-Tag = "<" Simple-ref ">"
//! State-token = Coded-URL = "<" absolute-URI ">"
//! ```
//!
//! Only the syntax is handled here; whether the conditions hold is the model's call.
//! A header we cannot parse must fail the request (412 or 400), never be ignored, since
//! it is how a client proves it holds a lock.

use std::fmt;

use dav_model::condition::{Condition, IfHeader, List, Tag, Term};
use dav_model::path::DavPath;

/// A syntax error in an `If` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfError(String);

impl fmt::Display for IfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid If header: {}", self.0)
    }
}

impl std::error::Error for IfError {}

/// Parses an `If` header value. `resolve` maps a resource tag (an absolute URI or an
/// absolute path, as written) to a path when it names a resource of this server;
/// other tags become [`Tag::Foreign`] so that their lists can only fail.
pub fn parse_if_header(value: &str, resolve: impl Fn(&str) -> Option<DavPath>) -> Result<IfHeader, IfError> {
    let mut cursor = Cursor { rest: value };
    let mut lists = Vec::new();
    // `None` until the first list or tag tells which of the two forms this is.
    let mut tagged = None;
    let mut tag = Tag::RequestUri;
    while let Some(c) = cursor.peek() {
        match c {
            '<' if tagged == Some(false) => {
                return Err(error("resource tag after an untagged list"));
            }
            '<' => {
                tagged = Some(true);
                let raw = cursor.angle_bracketed()?;
                tag = resolve(raw).map_or_else(|| Tag::Foreign(raw.to_owned()), Tag::Path);
                if cursor.peek() != Some('(') {
                    return Err(error("resource tag not followed by a list"));
                }
            }
            '(' => {
                tagged.get_or_insert(false);
                lists.push(List { resource: tag.clone(), terms: cursor.list()? });
            }
            other => return Err(error(&format!("unexpected {other:?}"))),
        }
    }
    if lists.is_empty() {
        return Err(error("no list"));
    }
    Ok(IfHeader { lists })
}

/// The unread part of the header.
struct Cursor<'a> {
    rest: &'a str,
}

impl<'a> Cursor<'a> {
    /// The next character after optional whitespace (LWS), without consuming it.
    fn peek(&mut self) -> Option<char> {
        self.rest = self.rest.trim_start_matches([' ', '\t', '\r', '\n']);
        self.rest.chars().next()
    }

    fn bump(&mut self) {
        let mut chars = self.rest.chars();
        chars.next();
        self.rest = chars.as_str();
    }

    /// `"(" 1*Condition ")"`, the opening parenthesis not yet consumed.
    fn list(&mut self) -> Result<Vec<Term>, IfError> {
        self.bump();
        let mut terms = Vec::new();
        loop {
            match self.peek() {
                Some(')') if terms.is_empty() => return Err(error("empty list")),
                Some(')') => {
                    self.bump();
                    return Ok(terms);
                }
                Some(_) => terms.push(self.condition()?),
                None => return Err(error("unclosed list")),
            }
        }
    }

    /// `["Not"] (State-token | "[" entity-tag "]")`.
    fn condition(&mut self) -> Result<Term, IfError> {
        let negated = self.rest.get(..3).is_some_and(|s| s.eq_ignore_ascii_case("not"));
        if negated {
            self.rest = &self.rest[3..];
        }
        let condition = match self.peek() {
            Some('<') => Condition::Token(self.angle_bracketed()?.to_owned()),
            Some('[') => Condition::ETag(self.entity_tag()?.to_owned()),
            _ => return Err(error("expected a state token or an entity tag")),
        };
        Ok(Term { negated, condition })
    }

    /// The text between `<` and `>`, the `<` not yet consumed.
    fn angle_bracketed(&mut self) -> Result<&'a str, IfError> {
        self.bump();
        let (inside, rest) = self.rest.split_once('>').ok_or_else(|| error("unclosed '<'"))?;
        if inside.is_empty() || inside.contains(['<', ' ', '\t']) {
            return Err(error(&format!("invalid URI <{inside}>")));
        }
        self.rest = rest;
        Ok(inside)
    }

    /// `"[" entity-tag "]"`, the `[` not yet consumed; returns the entity tag as written.
    /// The tag is scanned quote to quote because `]` may legally appear inside it.
    fn entity_tag(&mut self) -> Result<&'a str, IfError> {
        self.bump();
        let tag = self.rest.trim_start_matches([' ', '\t']);
        let opaque = tag.strip_prefix("W/").unwrap_or(tag);
        let quoted = opaque.strip_prefix('"').ok_or_else(|| error("entity tag not quoted"))?;
        let close = quoted.find('"').ok_or_else(|| error("unclosed entity tag"))?;
        let len = tag.len() - quoted.len() + close + 1;
        let rest = tag[len..].trim_start_matches([' ', '\t']);
        self.rest = rest.strip_prefix(']').ok_or_else(|| error("unclosed '['"))?;
        Ok(&tag[..len])
    }
}

fn error(reason: &str) -> IfError {
    IfError(reason.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tags on this server are `http://dav.example/...` URIs or absolute paths.
    fn local(raw: &str) -> Option<DavPath> {
        let path = raw.strip_prefix("http://dav.example").unwrap_or(raw);
        path.starts_with('/').then(|| DavPath::parse(path).ok()).flatten()
    }

    fn parse(value: &str) -> Result<IfHeader, IfError> {
        parse_if_header(value, local)
    }

    fn token(t: &str) -> Term {
        Term { negated: false, condition: Condition::Token(t.into()) }
    }

    #[test]
    fn untagged_list_applies_to_request_uri() {
        let h = parse("(<opaquelocktoken:a-b>)").unwrap();
        assert_eq!(h.lists, vec![List { resource: Tag::RequestUri, terms: vec![token("opaquelocktoken:a-b")] }]);
    }

    #[test]
    fn tagged_list_maps_to_path() {
        let h = parse("<http://dav.example/a/b> (<urn:x>) </c> ([\"e\"])").unwrap();
        let a_b = Tag::Path(DavPath::parse("/a/b").unwrap());
        assert_eq!(h.lists[0], List { resource: a_b, terms: vec![token("urn:x")] });
        assert_eq!(h.lists[1].resource, Tag::Path(DavPath::parse("/c").unwrap()));
    }

    #[test]
    fn foreign_tag_is_kept_raw() {
        let h = parse("<http://other.example/x> (<urn:x>)").unwrap();
        assert_eq!(h.lists[0].resource, Tag::Foreign("http://other.example/x".into()));
    }

    #[test]
    fn every_list_after_a_tag_gets_that_tag() {
        let h = parse("</a> (<urn:x>) (<urn:y>) </b> (<urn:z>)").unwrap();
        let tags: Vec<_> = h.lists.iter().map(|l| l.resource.clone()).collect();
        let path = |p| Tag::Path(DavPath::parse(p).unwrap());
        assert_eq!(tags, vec![path("/a"), path("/a"), path("/b")]);
    }

    #[test]
    fn not_etag_condition() {
        let h = parse("(NOT [W/\"v1\"] not <DAV:no-lock>)").unwrap();
        assert_eq!(
            h.lists[0].terms,
            vec![
                Term { negated: true, condition: Condition::ETag("W/\"v1\"".into()) },
                Term { negated: true, condition: Condition::Token("DAV:no-lock".into()) },
            ]
        );
    }

    #[test]
    fn entity_tag_may_contain_a_bracket() {
        let h = parse("([\"a]b\"])").unwrap();
        assert_eq!(h.lists[0].terms[0].condition, Condition::ETag("\"a]b\"".into()));
    }

    #[test]
    fn lists_are_alternatives() {
        let h = parse("(<urn:a> [\"e\"]) (Not <DAV:no-lock>)").unwrap();
        assert_eq!(h.lists.len(), 2);
        assert_eq!(h.lists[0].terms.len(), 2);
        assert_eq!(h.lists[1].terms.len(), 1);
        assert_eq!(h.tokens().collect::<Vec<_>>(), vec!["urn:a", "DAV:no-lock"]);
    }

    #[test]
    fn whitespace_between_tokens_is_optional() {
        let spaced = parse(" ( <urn:a>\t[\"e\"] ) ").unwrap();
        let tight = parse("(<urn:a>[\"e\"])").unwrap();
        assert_eq!(spaced, tight);
    }

    #[test]
    fn unbalanced_list_is_an_error() {
        for bad in ["(<urn:a>", "<urn:a>)", "(<urn:a>))", "((<urn:a>)", "([\"e\")", "(<urn:a)"] {
            assert!(parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn empty_list_is_an_error() {
        assert!(parse("()").is_err());
        assert!(parse("").is_err());
    }

    #[test]
    fn trailing_garbage_is_an_error() {
        assert!(parse("(<urn:a>) x").is_err());
        assert!(parse("(Nothing <urn:a>)").is_err());
        assert!(parse("(<urn:a> [e])").is_err());
    }

    #[test]
    fn mixing_tagged_and_untagged_lists_is_an_error() {
        let err = parse("(<urn:a>) </b> (<urn:b>)").unwrap_err();
        assert!(err.to_string().contains("untagged"), "{err}");
        assert!(parse("</b>").is_err());
    }
}
