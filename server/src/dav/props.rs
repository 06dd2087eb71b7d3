//! Rendering properties as XML: live properties computed from the resource, dead ones
//! copied verbatim, and empty elements for names (propname) and 404 propstats.

use std::fmt::Write;

use dav_model::props::LIVE;
use dav_model::{ActiveLock, Entry, LockScope, PropName, Quota};

use super::multistatus::escape;
use super::time::{http_date, rfc3339};

/// Live properties left out of `allprop`: RFC 4331 quota figures cost a query and are
/// only returned when asked for by name.
const NOT_IN_ALLPROP: &[&str] = &["quota-available-bytes", "quota-used-bytes"];

/// Whether a live property exists on this resource at all (404 otherwise).
fn applies(local: &str, entry: &Entry) -> bool {
    let coll = entry.resource.is_collection;
    match local {
        "getcontentlength" | "getcontenttype" => !coll,
        "quota-available-bytes" | "quota-used-bytes" => coll,
        _ => LIVE.contains(&local),
    }
}

/// Names of the live properties of `entry`, for propname and allprop.
pub fn live_names(entry: &Entry, allprop: bool) -> impl Iterator<Item = &'static str> + '_ {
    LIVE.iter()
        .copied()
        .filter(move |n| applies(n, entry))
        .filter(move |n| !(allprop && NOT_IN_ALLPROP.contains(n)))
        .filter(move |n| *n != "displayname" || !has_dead(entry, &PropName::dav("displayname")))
}

fn has_dead(entry: &Entry, name: &PropName) -> bool {
    entry.dead.iter().any(|d| &d.name == name)
}

/// Appends `<D:local>value</D:local>` for a live property; false if it doesn't apply.
pub fn write_live(out: &mut String, local: &str, entry: &Entry, quota: Option<Quota>) -> bool {
    if !applies(local, entry) {
        return false;
    }
    let r = &entry.resource;
    let value: String = match local {
        "creationdate" => rfc3339(r.created_ns),
        "displayname" => escape(r.name()).into_owned(),
        "getcontentlength" => r.size.to_string(),
        "getcontenttype" => escape(&content_type(entry)).into_owned(),
        "getetag" => escape(&r.etag).into_owned(),
        "getlastmodified" => http_date(r.modified_ns),
        "resourcetype" if r.is_collection => "<D:collection/>".into(),
        "resourcetype" => String::new(),
        "lockdiscovery" => lockdiscovery(&entry.locks),
        "supportedlock" => SUPPORTED_LOCK.into(),
        "quota-available-bytes" => quota.map_or(0, |q| q.available).to_string(),
        "quota-used-bytes" => quota.map_or(0, |q| q.used).to_string(),
        _ => return false,
    };
    let _ = write!(out, "<D:{local}>{value}</D:{local}>");
    true
}

/// The stored content type, else a guess from the name's extension.
pub fn content_type(entry: &Entry) -> String {
    entry.resource.content_type.clone().unwrap_or_else(|| guess_type(entry.resource.name()))
}

pub fn guess_type(name: &str) -> String {
    mime_guess::from_path(name).first_raw().unwrap_or("application/octet-stream").to_owned()
}

const SUPPORTED_LOCK: &str =
    "<D:lockentry><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockentry>\
<D:lockentry><D:lockscope><D:shared/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockentry>";

pub fn lockdiscovery(locks: &[ActiveLock]) -> String {
    let mut s = String::new();
    for l in locks {
        write_activelock(&mut s, l);
    }
    s
}

pub fn write_activelock(s: &mut String, l: &ActiveLock) {
    let scope = match l.scope {
        LockScope::Exclusive => "exclusive",
        LockScope::Shared => "shared",
    };
    let depth = if l.depth_infinite { "infinity" } else { "0" };
    let _ = write!(
        s,
        "<D:activelock><D:locktype><D:write/></D:locktype><D:lockscope><D:{scope}/></D:lockscope><D:depth>{depth}</D:depth>"
    );
    if let Some(owner) = &l.owner_xml {
        let _ = write!(s, "<D:owner>{owner}</D:owner>");
    }
    match l.seconds_left() {
        Some(n) => {
            let _ = write!(s, "<D:timeout>Second-{n}</D:timeout>");
        }
        None => s.push_str("<D:timeout>Infinite</D:timeout>"),
    }
    let _ = write!(
        s,
        "<D:locktoken><D:href>{}</D:href></D:locktoken><D:lockroot><D:href>{}</D:href></D:lockroot></D:activelock>",
        escape(&l.token),
        escape(&super::uri::href(&l.root, false))
    );
}

/// An empty element naming `name`, declaring its namespace locally when it isn't DAV:.
pub fn write_empty(out: &mut String, name: &PropName) {
    if name.is_dav() {
        let _ = write!(out, "<D:{}/>", name.local);
    } else if name.ns.is_empty() {
        let _ = write!(out, "<{} xmlns=\"\"/>", name.local);
    } else {
        let _ = write!(out, "<x:{} xmlns:x=\"{}\"/>", name.local, escape(&name.ns));
    }
}
