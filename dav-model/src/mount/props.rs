//! Dead properties of mounted resources. The tree can't hold them, so they are rows keyed
//! by mount and path, and stamped with the identity of the object they were set on: a
//! row whose object is no longer at its path (deleted, replaced or renamed by another
//! program) is never shown, and is purged by the next write to that path.

use std::collections::HashMap;

use wharf_backends::{DirEntry, NodeId};

use super::At;
use crate::db::Handle;
use crate::props::{DeadProp, PropName};
use crate::Result;

type Row = (String, String, String, String, String);

fn props_of(rows: Vec<Row>, node_of: impl Fn(&str) -> Option<String>) -> HashMap<String, Vec<DeadProp>> {
    let mut out: HashMap<String, Vec<DeadProp>> = HashMap::new();
    for (path, node, ns, local, xml) in rows {
        if node_of(&path).as_deref() == Some(node.as_str()) {
            out.entry(path).or_default().push(DeadProp { name: PropName { ns, local }, xml, text: None });
        }
    }
    out
}

/// The dead properties of the object `node` at `at`.
pub(crate) async fn of(conn: &mut dyn Handle, at: &At, node: &NodeId) -> Result<Vec<DeadProp>> {
    let rows: Vec<Row> = crate::db::query_as(
        "SELECT path, node, namespace, name, xml FROM mounted_props WHERE mount_id = ? AND path = ? \
         ORDER BY namespace, name",
    )
    .bind(at.mount.id)
    .bind(at.key())
    .fetch_all(&mut *conn)
    .await?;
    let node = node.key();
    Ok(props_of(rows, |_| Some(node.clone())).into_values().next().unwrap_or_default())
}

/// The dead properties of the members of directory `dir`, in one query: `members` (sorted
/// by name) tells the object now at each name.
pub(crate) async fn of_members(
    conn: &mut dyn Handle,
    dir: &At,
    members: &[DirEntry],
) -> Result<HashMap<String, Vec<DeadProp>>> {
    let base = dir.key();
    let rows: Vec<Row> = crate::db::query_as(
        "SELECT path, node, namespace, name, xml FROM mounted_props \
         WHERE mount_id = ?1 AND path >= ?2 || '/' AND path < ?2 || '0' \
           AND substr(path, length(?2) + 2) NOT LIKE '%/%' ORDER BY path, namespace, name",
    )
    .bind(dir.mount.id)
    .bind(&base)
    .fetch_all(&mut *conn)
    .await?;
    let name_of = |path: &str| path.get(base.len() + 1..).map(str::to_owned);
    // `members` is sorted by name: a lookup per row found, not a map of every member.
    debug_assert!(members.windows(2).all(|w| w[0].name < w[1].name), "members sorted by name");
    let node_of =
        |name: &str| members.binary_search_by(|e| e.name.as_str().cmp(name)).ok().map(|i| &members[i].meta.node);
    let by_path = props_of(rows, |path| name_of(path).and_then(|n| node_of(&n)).map(NodeId::key));
    Ok(by_path.into_iter().filter_map(|(path, props)| Some((name_of(&path)?, props))).collect())
}

/// Sets (or replaces) one property on the object `node` at `at`.
pub(crate) async fn set(conn: &mut dyn Handle, at: &At, node: &NodeId, prop: &DeadProp) -> Result<()> {
    crate::db::query(
        "INSERT INTO mounted_props (mount_id, path, node, namespace, name, xml) VALUES (?, ?, ?, ?, ?, ?) \
         ON CONFLICT (mount_id, path, namespace, name) DO UPDATE SET node = excluded.node, xml = excluded.xml",
    )
    .bind(at.mount.id)
    .bind(at.key())
    .bind(node.key())
    .bind(&prop.name.ns)
    .bind(&prop.name.local)
    .bind(&prop.xml)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub(crate) async fn remove(conn: &mut dyn Handle, at: &At, name: &PropName) -> Result<()> {
    crate::db::query("DELETE FROM mounted_props WHERE mount_id = ? AND path = ? AND namespace = ? AND name = ?")
        .bind(at.mount.id)
        .bind(at.key())
        .bind(&name.ns)
        .bind(&name.local)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Drops the rows at `at` that belong to another object than `node` (one another program
/// replaced), and re-stamps those of `old` with `node`: Wharf replaced that object itself
/// (a PUT installs a new file), so its properties carry over as on the native store.
pub(crate) async fn adopt(conn: &mut dyn Handle, at: &At, old: Option<&NodeId>, node: &NodeId) -> Result<()> {
    if let Some(old) = old {
        carry(conn, at, old, node).await?;
    }
    crate::db::query("DELETE FROM mounted_props WHERE mount_id = ? AND path = ? AND node <> ?")
        .bind(at.mount.id)
        .bind(at.key())
        .bind(node.key())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Re-stamps the rows of the object `old` at `at` with `node`, the object Wharf just
/// replaced it with (one statement: rows of other objects are ignored when read anyway).
pub(crate) async fn carry(conn: &mut dyn Handle, at: &At, old: &NodeId, node: &NodeId) -> Result<()> {
    crate::db::query("UPDATE mounted_props SET node = ? WHERE mount_id = ? AND path = ? AND node = ?")
        .bind(node.key())
        .bind(at.mount.id)
        .bind(at.key())
        .bind(old.key())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Forgets every row at `at` and below it (after a DELETE, or before something new is
/// created there).
pub(crate) async fn forget_subtree(conn: &mut dyn Handle, at: &At) -> Result<()> {
    let key = at.key();
    crate::db::query(
        "DELETE FROM mounted_props WHERE mount_id = ?1 AND (path = ?2 OR (path >= ?2 || '/' AND path < ?2 || '0'))",
    )
    .bind(at.mount.id)
    .bind(&key)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Moves the rows at `from` and below to `to` (a rename within one mount keeps objects,
/// so their identities still match).
pub(crate) async fn rename_subtree(conn: &mut dyn Handle, from: &At, to: &At) -> Result<()> {
    let (old, new) = (from.key(), to.key());
    crate::db::query(
        "UPDATE mounted_props SET path = ?3 || substr(path, length(?2) + 1) \
         WHERE mount_id = ?1 AND (path = ?2 OR (path >= ?2 || '/' AND path < ?2 || '0'))",
    )
    .bind(from.mount.id)
    .bind(&old)
    .bind(&new)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Every row at `at` and below it, as (path relative to `at`, node, property), for
/// copying them along with a COPY of that subtree.
pub(crate) async fn subtree(conn: &mut dyn Handle, at: &At) -> Result<Vec<(Vec<String>, String, DeadProp)>> {
    let key = at.key();
    let rows: Vec<Row> = crate::db::query_as(
        "SELECT path, node, namespace, name, xml FROM mounted_props \
         WHERE mount_id = ?1 AND (path = ?2 OR (path >= ?2 || '/' AND path < ?2 || '0')) ORDER BY path",
    )
    .bind(at.mount.id)
    .bind(&key)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(path, node, ns, local, xml)| {
            let rest: Vec<String> = path[key.len()..].split('/').filter(|s| !s.is_empty()).map(str::to_owned).collect();
            (rest, node, DeadProp { name: PropName { ns, local }, xml, text: None })
        })
        .collect())
}
