//! Property names and dead property values.

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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadProp {
    pub name: PropName,
    pub xml: String,
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

/// True for live properties a client may not set or remove.
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
}

use std::collections::HashMap;

use sqlx::SqliteConnection;

use crate::condition::Preconditions;
use crate::lock::{check_write, locks_in_scope, WriteScope};
use crate::path::DavPath;
use crate::{resource, Error, Repository, Result};

/// Dead properties of one resource.
pub(crate) async fn dead_props_of(conn: &mut SqliteConnection, id: i64) -> Result<Vec<DeadProp>> {
    let rows: Vec<(String, String, String)> =
        sqlx::query_as("SELECT namespace, name, xml FROM dead_props WHERE resource_id = ? ORDER BY namespace, name")
            .bind(id)
            .fetch_all(&mut *conn)
            .await?;
    Ok(rows.into_iter().map(|(ns, local, xml)| DeadProp { name: PropName { ns, local }, xml }).collect())
}

/// Dead properties of every member of collection `parent`, in one query.
pub(crate) async fn dead_props_of_members(
    conn: &mut SqliteConnection,
    parent: i64,
) -> Result<HashMap<i64, Vec<DeadProp>>> {
    let rows: Vec<(i64, String, String, String)> = sqlx::query_as(
        "SELECT d.resource_id, d.namespace, d.name, d.xml FROM dead_props d \
         JOIN resources r ON r.id = d.resource_id WHERE r.parent_id = ? ORDER BY d.resource_id, d.namespace, d.name",
    )
    .bind(parent)
    .fetch_all(&mut *conn)
    .await?;
    let mut out: HashMap<i64, Vec<DeadProp>> = HashMap::new();
    for (id, ns, local, xml) in rows {
        out.entry(id).or_default().push(DeadProp { name: PropName { ns, local }, xml });
    }
    Ok(out)
}

impl Repository {
    /// Applies all of `ops` or none (RFC 4918 9.2): when one fails, the others report 424.
    pub(crate) async fn proppatch(
        &self,
        path: &DavPath,
        ops: &[PatchOp],
        pre: &Preconditions,
        principal: Option<&str>,
    ) -> Result<Vec<(PropName, PatchResult)>> {
        let mut tx = self.write.begin().await?;
        let target = resource::lookup(&mut tx, path).await?.ok_or(Error::NotFound)?;
        let locks = locks_in_scope(&mut tx, path).await?;
        self.evaluate(&mut tx, path, Some(&target), pre, &locks).await?;
        check_write(&locks, &WriteScope { path, subtree: false, membership_changes: false }, pre, principal)?;
        let name_of = |op: &PatchOp| match op {
            PatchOp::Set(p) => p.name.clone(),
            PatchOp::Remove(n) => n.clone(),
        };
        if ops.iter().any(|op| is_protected(&name_of(op))) {
            return Ok(ops
                .iter()
                .map(|op| {
                    let n = name_of(op);
                    let r = if is_protected(&n) { PatchResult::Protected } else { PatchResult::FailedDependency };
                    (n, r)
                })
                .collect());
        }
        for op in ops {
            apply(&mut tx, target.id, op).await?;
        }
        if target.is_collection {
            self.touch(&mut tx, target.id, crate::now_ns()).await?;
        }
        self.commit(tx).await?;
        Ok(ops.iter().map(|op| (name_of(op), PatchResult::Ok)).collect())
    }
}

async fn apply(conn: &mut SqliteConnection, id: i64, op: &PatchOp) -> Result<()> {
    match op {
        PatchOp::Set(p) => {
            sqlx::query(
                "INSERT INTO dead_props (resource_id, namespace, name, xml) VALUES (?, ?, ?, ?) \
                 ON CONFLICT (resource_id, namespace, name) DO UPDATE SET xml = excluded.xml",
            )
            .bind(id)
            .bind(&p.name.ns)
            .bind(&p.name.local)
            .bind(&p.xml)
            .execute(&mut *conn)
            .await?;
        }
        PatchOp::Remove(n) => {
            sqlx::query("DELETE FROM dead_props WHERE resource_id = ? AND namespace = ? AND name = ?")
                .bind(id)
                .bind(&n.ns)
                .bind(&n.local)
                .execute(&mut *conn)
                .await?;
        }
    }
    Ok(())
}
