//! Preconditions a client attaches to a request: RFC 4918 `If` lists and the RFC 9110
//! validators. Parsing their header syntax is the adapter's job; evaluating them against
//! the stored state is the model's, so that every protocol gets the same answer.

use crate::path::DavPath;

/// One condition inside an `If` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// A state token, e.g. `opaquelocktoken:...` or `DAV:no-lock`, written between `<>`.
    Token(String),
    /// An entity tag, exactly as sent between `[]` (quotes included, `W/` kept).
    ETag(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Term {
    pub negated: bool,
    pub condition: Condition,
}

/// A parenthesised list: all its terms must hold. `resource` is the tag of a tagged list
/// (already mapped to a path by the adapter); `None` means the request URI.
/// A tag naming a URL outside this server is kept as `Foreign` so it can only fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct List {
    pub resource: Tag,
    pub terms: Vec<Term>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tag {
    RequestUri,
    Path(DavPath),
    Foreign(String),
}

/// The whole `If` header: satisfied when, for some list, all its terms hold
/// (RFC 4918 10.4.3: lists are alternatives).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IfHeader {
    pub lists: Vec<List>,
}

impl IfHeader {
    /// Every lock token mentioned (negated or not): RFC 4918 counts a token as
    /// "submitted" when it appears in the header, whatever the list's outcome.
    pub fn tokens(&self) -> impl Iterator<Item = &str> {
        self.lists.iter().flat_map(|l| l.terms.iter()).filter_map(|t| match &t.condition {
            Condition::Token(tok) => Some(tok.as_str()),
            Condition::ETag(_) => None,
        })
    }
}

/// RFC 9110 `If-Match` / `If-None-Match` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EtagMatch {
    Any,
    Tags(Vec<String>),
}

/// All preconditions of one request, protocol-neutral.
#[derive(Debug, Clone, Default)]
pub struct Preconditions {
    pub if_header: Option<IfHeader>,
    pub if_match: Option<EtagMatch>,
    pub if_none_match: Option<EtagMatch>,
    /// Seconds since the Unix epoch.
    pub if_modified_since: Option<i64>,
    pub if_unmodified_since: Option<i64>,
}

impl Preconditions {
    /// Preconditions that only submit `tokens` and demand nothing: for the steps a
    /// request is made of (a COPY between trees is a MKCOL or PUT per member), whose own
    /// conditions were checked once, up front. The last list, `(Not <DAV:no-lock>)`,
    /// always holds (no resource is in that state), so the header is satisfied while the
    /// tokens still count as submitted for the lock checks.
    pub fn proving<'a>(tokens: impl Iterator<Item = &'a str>) -> Preconditions {
        let term = |negated, tok: &str| Term { negated, condition: Condition::Token(tok.to_owned()) };
        let mut lists: Vec<List> =
            tokens.map(|t| List { resource: Tag::RequestUri, terms: vec![term(false, t)] }).collect();
        lists.push(List { resource: Tag::RequestUri, terms: vec![term(true, "DAV:no-lock")] });
        Preconditions { if_header: Some(IfHeader { lists }), ..Preconditions::default() }
    }

    /// True when the request carries no condition at all.
    pub fn is_empty(&self) -> bool {
        self.if_header.is_none()
            && self.if_match.is_none()
            && self.if_none_match.is_none()
            && self.if_modified_since.is_none()
            && self.if_unmodified_since.is_none()
    }
}
