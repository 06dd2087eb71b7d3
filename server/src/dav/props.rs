//! Rendering properties as XML: live properties computed from the resource, dead ones
//! copied verbatim, and empty elements for names (propname) and 404 propstats.

use std::fmt::Write;
use std::sync::OnceLock;

use dav_model::props::LIVE;
use dav_model::{ActiveLock, Entry, LockScope, PropName, Quota, Resource};

use super::multistatus::{escape, escape_text};
use super::time::{write_http_date, write_rfc3339};

/// Live properties left out of `allprop` (still listed by propname, returned when named or
/// `include`d). RFC 4331 quota figures cost a query. `supportedlock` is the same on every
/// resource yet was a third of every listing's bytes: Windows refuses folder listings over
/// 1,000,000 bytes, so allprop keeps to the properties clients use per member.
const NOT_IN_ALLPROP: &[&str] = &["quota-available-bytes", "quota-used-bytes", "supportedlock"];

/// Whether a live property exists on this resource at all (404 otherwise).
fn applies(local: &str, coll: bool) -> bool {
    match local {
        "getcontentlength" | "getcontenttype" => !coll,
        "quota-available-bytes" | "quota-used-bytes" => coll,
        _ => LIVE.contains(&local),
    }
}

/// What `allprop` shows of a file or a collection: [`LIVE`] filtered by [`applies`] and
/// [`NOT_IN_ALLPROP`], in its order. Worked out once: every member of a listing needs one
/// of the two, and filtering by name cost more than writing the values.
fn allprop_names(collection: bool) -> &'static [&'static str] {
    static NAMES: OnceLock<[Vec<&'static str>; 2]> = OnceLock::new();
    let names = NAMES.get_or_init(|| {
        [false, true]
            .map(|coll| LIVE.iter().copied().filter(|n| applies(n, coll) && !NOT_IN_ALLPROP.contains(n)).collect())
    });
    &names[usize::from(collection)]
}

/// Names of the live properties of `entry`, for propname and allprop. A dead
/// `displayname` takes the live one's place.
pub fn live_names(entry: &Entry, allprop: bool) -> impl Iterator<Item = &'static str> + '_ {
    let names = if allprop { allprop_names(entry.resource.is_collection) } else { LIVE };
    let named = entry.dead.iter().any(|d| d.name.is_dav() && d.name.local == "displayname");
    names
        .iter()
        .copied()
        .filter(move |n| (allprop || applies(n, entry.resource.is_collection)) && !(named && *n == "displayname"))
}

/// Appends `<D:local>value</D:local>` for a live property; false if it doesn't apply.
pub fn write_live(out: &mut String, local: &str, entry: &Entry, quota: Option<Quota>, lockroot: bool) -> bool {
    if !applies(local, entry.resource.is_collection) {
        return false;
    }
    write_value(out, local, entry, quota, lockroot);
    true
}

/// [`write_live`] for a name known to apply (one of [`live_names`]). Values are written
/// straight into `out`: this runs for every member of every listing.
pub fn write_value(out: &mut String, local: &str, entry: &Entry, quota: Option<Quota>, lockroot: bool) {
    debug_assert!(applies(local, entry.resource.is_collection), "{local} does not apply");
    let r = &entry.resource;
    if local == "resourcetype" && !r.is_collection {
        out.push_str("<D:resourcetype/>");
        return;
    }
    out.push_str("<D:");
    out.push_str(local);
    out.push('>');
    match local {
        "creationdate" => write_rfc3339(out, r.created_ns),
        "displayname" => out.push_str(&escape_text(r.name())),
        "getcontentlength" => push_num(out, r.size),
        "getcontenttype" => out.push_str(&escape_text(content_type(&entry.resource))),
        "getetag" => out.push_str(&escape_text(&r.etag)),
        "getlastmodified" => write_http_date(out, r.modified_ns),
        "resourcetype" if r.is_collection => out.push_str("<D:collection/>"),
        "lockdiscovery" => lockdiscovery(out, &entry.locks, lockroot),
        "supportedlock" => out.push_str(SUPPORTED_LOCK),
        "quota-available-bytes" => push_num(out, quota.map_or(0, |q| q.available)),
        "quota-used-bytes" => push_num(out, quota.map_or(0, |q| q.used)),
        _ => {}
    }
    out.push_str("</D:");
    out.push_str(local);
    out.push('>');
}

/// Decimal digits without the formatting machinery (one per file of a listing).
fn push_num(out: &mut String, n: u64) {
    out.push_str(itoa::Buffer::new().format(n));
}

/// The stored content type, else a guess from the name's extension.
pub fn content_type(r: &Resource) -> &str {
    r.content_type.as_deref().unwrap_or_else(|| guess_type(r.name()))
}

/// The type a name's extension suggests. The last extension looked up by each thread is
/// remembered: a listing's members mostly share a few, and the table lookup costs
/// thousands of instructions a name.
pub fn guess_type(name: &str) -> &'static str {
    use std::cell::RefCell;
    thread_local! {
        static LAST: RefCell<(String, &'static str)> = const { RefCell::new((String::new(), "")) };
    }
    // What `Path::extension` finds (not a leading dot), without its parsing of the name.
    let ext = match name.rfind('.') {
        Some(dot) if dot > 0 => &name[dot + 1..],
        _ => return OCTET_STREAM,
    };
    LAST.with(|last| {
        let Ok(mut last) = last.try_borrow_mut() else { return guess_ext(ext) };
        if last.1.is_empty() || last.0 != ext {
            *last = (ext.to_owned(), guess_ext(ext));
        }
        last.1
    })
}

const OCTET_STREAM: &str = "application/octet-stream";

fn guess_ext(ext: &str) -> &'static str {
    mime_guess::from_ext(ext).first_raw().unwrap_or(OCTET_STREAM)
}

const SUPPORTED_LOCK: &str =
    "<D:lockentry><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockentry>\
<D:lockentry><D:lockscope><D:shared/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockentry>";

fn lockdiscovery(out: &mut String, locks: &[ActiveLock], lockroot: bool) {
    for l in locks {
        write_activelock(out, l, lockroot);
    }
}

/// One `activelock`; `lockroot` false leaves `DAV:lockroot` out (see `quirks.rs`).
pub fn write_activelock(s: &mut String, l: &ActiveLock, lockroot: bool) {
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
    let _ = write!(s, "<D:locktoken><D:href>{}</D:href></D:locktoken>", escape(&l.token));
    if lockroot {
        let _ = write!(s, "<D:lockroot><D:href>{}</D:href></D:lockroot>", escape(&super::uri::href(&l.root, false)));
    }
    s.push_str("</D:activelock>");
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allprop_shows_the_live_properties_that_apply_but_those_left_out() {
        let file = [
            "creationdate",
            "displayname",
            "getcontentlength",
            "getcontenttype",
            "getetag",
            "getlastmodified",
            "lockdiscovery",
            "resourcetype",
        ];
        assert_eq!(allprop_names(false), file);
        let collection = ["creationdate", "displayname", "getetag", "getlastmodified", "lockdiscovery", "resourcetype"];
        assert_eq!(allprop_names(true), collection);
    }

    #[test]
    fn numbers_are_written_in_decimal() {
        for n in [0, 7, 10, 4096, 1 << 40, u64::MAX] {
            let mut s = String::new();
            push_num(&mut s, n);
            assert_eq!(s, n.to_string());
        }
    }

    #[test]
    fn types_are_guessed_from_the_last_extension_but_not_a_leading_dot() {
        assert_eq!(guess_type("a.txt"), "text/plain");
        assert_eq!(guess_type("b.TXT"), "text/plain");
        assert_eq!(guess_type("c.tar.gz"), guess_ext("gz"));
        assert_eq!(guess_type(".txt"), OCTET_STREAM);
        assert_eq!(guess_type("noext"), OCTET_STREAM);
        assert_eq!(guess_type("d.txt"), "text/plain", "remembered");
        assert_eq!(guess_type("e.html"), "text/html");
    }
}
