//! Property names and dead property values.

use std::collections::HashMap;

use crate::db::Handle;
use crate::Result;

/// A property's qualified name. `ns` is the namespace URI, empty for "no namespace".
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PropName {
    pub ns: String,
    pub local: String,
}

impl PropName {
    pub fn new(ns: &str, local: &str) -> PropName {
        PropName { ns: ns.to_owned(), local: local.to_owned() }
    }
    pub fn dav(local: &str) -> PropName {
        PropName::new("DAV:", local)
    }
    pub fn is_dav(&self) -> bool {
        self.ns == "DAV:"
    }
}

/// A dead property as a client set it. `xml` is the whole property element, serialised
/// self-contained: it declares every namespace prefix it uses (including its own) and
/// carries `xml:lang` when one was in scope, so it can be written verbatim into any
/// response whatever prefixes the response itself uses.
///
/// `text` is the value as plain text (references resolved, not trimmed) when the element
/// held only text, so the model can interpret the properties that mean something to it
/// (times, see [`crate::times`]). It is only filled on the way in, by the adapter that
/// parsed a PROPPATCH; properties loaded from the store have `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadProp {
    pub name: PropName,
    pub xml: String,
    pub text: Option<String>,
}

/// Live properties Wharf computes. All are protected except `displayname`, whose
/// computed value (the resource's name) a client may override.
pub const LIVE: &[&str] = &[
    "creationdate",
    "displayname",
    "getcontentlength",
    "getcontenttype",
    "getetag",
    "getlastmodified",
    "lockdiscovery",
    "resourcetype",
    "supportedlock",
    "quota-available-bytes",
    "quota-used-bytes",
];

/// True for live properties a client may not set or remove. (`getlastmodified` and
/// `creationdate` may still be *set*, as times: see [`crate::times`].)
pub fn is_protected(name: &PropName) -> bool {
    name.is_dav() && name.local != "displayname" && LIVE.contains(&name.local.as_str())
}

/// One instruction of a PROPPATCH, in document order.
#[derive(Debug, Clone)]
pub enum PatchOp {
    Set(DeadProp),
    Remove(PropName),
}

/// The outcome for one property of a PROPPATCH.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchResult {
    Ok,
    /// A protected live property (403, `cannot-modify-protected-property`).
    Protected,
    /// Not applied because another instruction failed (424).
    FailedDependency,
    /// A value the model must interpret but could not, such as a time property that
    /// holds no date (409).
    Invalid,
}

/// Dead properties of one resource.
pub(crate) async fn dead_props_of(conn: &mut dyn Handle, id: i64) -> Result<Vec<DeadProp>> {
    let rows: Vec<(String, String, String)> = crate::db::query_as(
        "SELECT namespace, name, xml FROM dead_props WHERE resource_id = ? ORDER BY namespace, name",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.into_iter().map(|(ns, local, xml)| DeadProp { name: PropName { ns, local }, xml, text: None }).collect())
}

/// Dead properties of every member of a collection (bind its id), in one query.
pub(crate) const DEAD_PROPS_OF_MEMBERS: &str = "SELECT d.resource_id, d.namespace, d.name, d.xml FROM dead_props d \
     JOIN resources r ON r.id = d.resource_id WHERE r.parent_id = ? ORDER BY d.resource_id, d.namespace, d.name";

/// The rows of [`DEAD_PROPS_OF_MEMBERS`], by resource.
pub(crate) fn group_dead_props(
    rows: &[crate::db::Row],
) -> std::result::Result<HashMap<i64, Vec<DeadProp>>, sqlx::Error> {
    let mut out: HashMap<i64, Vec<DeadProp>> = HashMap::new();
    for row in rows {
        let name = PropName { ns: row.try_get(1)?, local: row.try_get(2)? };
        out.entry(row.try_get(0)?).or_default().push(DeadProp { name, xml: row.try_get(3)?, text: None });
    }
    Ok(out)
}

/// Dead properties of every member of collection `parent`, in one query.
pub(crate) async fn dead_props_of_members(conn: &mut dyn Handle, parent: i64) -> Result<HashMap<i64, Vec<DeadProp>>> {
    let rows: Vec<(i64, String, String, String)> =
        crate::db::query_as(DEAD_PROPS_OF_MEMBERS).bind(parent).fetch_all(&mut *conn).await?;
    let mut out: HashMap<i64, Vec<DeadProp>> = HashMap::new();
    for (id, ns, local, xml) in rows {
        out.entry(id).or_default().push(DeadProp { name: PropName { ns, local }, xml, text: None });
    }
    Ok(out)
}
