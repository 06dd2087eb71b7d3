//! Evaluating preconditions against stored state. Writes and reads differ only in what a
//! matching `If-None-Match` means (412 for writes, 304 for reads), so both share this code.

use crate::condition::{Condition, EtagMatch, IfHeader, Preconditions, Tag};
use crate::db::Handle;
use crate::lock::{locks_in_scope, ActiveLock};
use crate::path::DavPath;
use crate::resource::Resource;
use crate::{Error, Repository, Result};

/// Strong comparison (RFC 9110 8.8.3.2): weak tags never match.
fn strong_eq(a: &str, b: &str) -> bool {
    !a.starts_with("W/") && !b.starts_with("W/") && a == b
}

/// Weak comparison, used by If-None-Match.
fn weak_eq(a: &str, b: &str) -> bool {
    a.trim_start_matches("W/") == b.trim_start_matches("W/")
}

fn matches(m: &EtagMatch, target: Option<&Resource>, eq: fn(&str, &str) -> bool) -> bool {
    match (m, target) {
        (_, None) => false,
        (EtagMatch::Any, Some(_)) => true,
        (EtagMatch::Tags(tags), Some(r)) => tags.iter().any(|t| eq(t, &r.etag)),
    }
}

fn modified_secs(r: &Resource) -> i64 {
    r.modified_ns.div_euclid(1_000_000_000)
}

/// RFC 9110 13.2.2 order for the standard validators. `read` selects the GET/HEAD outcome
/// (304) for a matching If-None-Match or an unmodified If-Modified-Since.
pub fn check_validators(target: Option<&Resource>, pre: &Preconditions, read: bool) -> Result<()> {
    if let Some(m) = &pre.if_match {
        if !matches(m, target, strong_eq) {
            return Err(Error::PreconditionFailed);
        }
    } else if let (Some(t), Some(r)) = (pre.if_unmodified_since, target) {
        if modified_secs(r) > t {
            return Err(Error::PreconditionFailed);
        }
    }
    if let Some(m) = &pre.if_none_match {
        if matches(m, target, weak_eq) {
            return Err(if read { Error::NotModified } else { Error::PreconditionFailed });
        }
    } else if let (true, Some(t), Some(r)) = (read, pre.if_modified_since, target) {
        if modified_secs(r) <= t {
            return Err(Error::NotModified);
        }
    }
    Ok(())
}

/// The state an `If` list is checked against: the resource's ETag and the locks covering it.
struct State {
    etag: Option<String>,
    tokens: Vec<String>,
}

impl Repository {
    /// Checks every precondition of a write on `path`; `locks` are the locks in scope of
    /// `path` (already loaded by the caller, who needs them for the lock check too).
    pub(crate) async fn evaluate(
        &self,
        conn: &mut dyn Handle,
        path: &DavPath,
        target: Option<&Resource>,
        pre: &Preconditions,
        locks: &[ActiveLock],
    ) -> Result<()> {
        check_validators(target, pre, false)?;
        match &pre.if_header {
            Some(h) if !if_header_holds(self, conn, h, path, target, locks).await? => Err(Error::PreconditionFailed),
            _ => Ok(()),
        }
    }

    /// Preconditions of a request that changes nothing: validators plus the `If` header.
    /// `get` selects the GET/HEAD outcomes (304); other methods (PROPFIND) get 412.
    pub(crate) async fn check_read(
        &self,
        path: &DavPath,
        target: Option<&Resource>,
        pre: &Preconditions,
        get: bool,
    ) -> Result<()> {
        check_validators(target, pre, get)?;
        if let Some(h) = &pre.if_header {
            let mut conn = self.read.acquire().await?;
            let locks = locks_in_scope(&mut conn, path).await?;
            if !if_header_holds(self, &mut conn, h, path, target, &locks).await? {
                return Err(Error::PreconditionFailed);
            }
        }
        Ok(())
    }
}

async fn if_header_holds(
    repo: &Repository,
    conn: &mut dyn Handle,
    header: &IfHeader,
    path: &DavPath,
    target: Option<&Resource>,
    locks: &[ActiveLock],
) -> Result<bool> {
    let own = State {
        etag: target.map(|r| r.etag.clone()),
        tokens: locks.iter().filter(|l| l.covers(path)).map(|l| l.token.clone()).collect(),
    };
    for list in &header.lists {
        let state = match &list.resource {
            Tag::RequestUri => None,
            Tag::Path(p) if p == path => None,
            Tag::Path(p) => Some(state_of(repo, conn, p).await?),
            Tag::Foreign(_) => Some(State { etag: None, tokens: Vec::new() }),
        };
        let state = state.as_ref().unwrap_or(&own);
        let holds = list.terms.iter().all(|t| {
            let v = match &t.condition {
                Condition::Token(tok) => state.tokens.iter().any(|s| s == tok),
                Condition::ETag(e) => state.etag.as_deref().is_some_and(|cur| strong_eq(e, cur)),
            };
            v != t.negated
        });
        if holds {
            return Ok(true);
        }
    }
    Ok(false)
}

async fn state_of(repo: &Repository, conn: &mut dyn Handle, path: &DavPath) -> Result<State> {
    let r = repo.lookup_in(conn, path).await?;
    let locks = locks_in_scope(conn, path).await?;
    Ok(State {
        etag: r.map(|r| r.etag),
        tokens: locks.into_iter().filter(|l| l.covers(path)).map(|l| l.token).collect(),
    })
}
