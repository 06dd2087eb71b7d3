//! PROPPATCH: every instruction applied, or none (RFC 4918 9.2). Time properties (see
//! [`crate::times`]) also set the resource's times; a PROPPATCH that only sets a file's
//! times takes a one-trip plain path.

use crate::condition::Preconditions;
use crate::lock::{check_write, WriteScope, NO_LOCK_AT_ALL};
use crate::path::DavPath;
use crate::props::{is_protected, PatchOp, PatchResult, PropName};
use crate::resource::{self, bind_walk, Resource, Tag, WALK};
use crate::snapshot::{Snapshot, Wanted};
use crate::times::{time_prop, TimeField};
use crate::txn::{Batch, WriteTx};
use crate::{Error, Repository, Result};

impl Repository {
    /// Applies all of `ops` or none (RFC 4918 9.2): when one fails, the others report 424.
    /// Time properties (see [`crate::times`]) also set the resource's times.
    pub(crate) async fn proppatch(
        &self,
        path: &DavPath,
        ops: &[PatchOp],
        pre: &Preconditions,
        principal: Option<&str>,
    ) -> Result<Vec<(PropName, PatchResult)>> {
        if let Some(at) = self.mounted(path).await? {
            return self.mounted_proppatch(&at, path, ops, pre, principal).await;
        }
        if pre.is_empty() {
            if let Some(done) = self.set_times_plain(path, ops).await? {
                return Ok(done);
            }
        }
        let reads = Snapshot::batch(path, Wanted::default());
        let (mut tx, rows) = WriteTx::begin(&self.write, &self.lookups, reads).await?;
        let snap = Snapshot::read(&rows, path)?;
        let target = snap.target.ok_or(Error::NotFound)?;
        self.evaluate(tx.conn()?, path, Some(&target), pre, &snap.locks).await?;
        let scope = WriteScope { path, subtree: false, membership_changes: false };
        check_write(&snap.locks, &scope, pre, principal)?;
        let (failures, times) = judge(ops);
        if let Some(refused) = refusals(ops, &failures) {
            return Ok(refused);
        }
        let mut writes = Batch::new();
        for op in ops {
            push_apply(&mut writes, target.id, op);
        }
        let now = crate::now_ns();
        let mut updated = target.clone();
        if target.is_collection {
            resource::push_touch(&mut writes, target.id, now);
            updated = updated.touched(now);
        }
        times.push(&mut writes, target.id);
        tx.commit(writes).await?;
        // Dead properties aren't cached; of the rows, only the target's changed.
        tx.finish(vec![(path.clone(), Some(times.applied_to(updated)))]);
        Ok(ops.iter().map(|op| (op_name(op).clone(), PatchResult::Ok)).collect())
    }

    /// The plain case of a PROPPATCH in one trip (see [`crate::txn`]): only live time
    /// properties (FTP's SITE UTIME, WinSCP's getlastmodified), on a file, without
    /// conditions or a lock in scope. The UPDATE is guarded by all of that, so `None`
    /// (the case doesn't apply, or the guards held the write back) sends the caller down
    /// the careful path.
    async fn set_times_plain(&self, path: &DavPath, ops: &[PatchOp]) -> Result<Option<Vec<(PropName, PatchResult)>>> {
        let live_times = |op: &PatchOp| matches!(op, PatchOp::Set(p) if time_prop(&p.name).is_some_and(|t| !t.dead));
        if ops.is_empty() || !ops.iter().all(live_times) || !self.lock_rows.plain_worth_trying() {
            return Ok(None);
        }
        let (failures, times) = judge(ops);
        if failures.iter().any(Option::is_some) {
            return Ok(None);
        }
        let Some(file) = self.resolve(path).await?.filter(|r| !r.is_collection) else { return Ok(None) };
        let tag = Tag::Target as i64;
        let mut writes = Batch::new();
        writes.push(format!(
            "{WALK} UPDATE resources SET modified_ns = COALESCE(?, modified_ns), created_ns = COALESCE(?, created_ns) \
             WHERE id = ? AND id = (SELECT id FROM walk WHERE i = ?) AND {NO_LOCK_AT_ALL} \
             RETURNING {tag}, {}",
            resource::COLUMNS
        ));
        bind_walk(&mut writes, path.segments());
        writes.bind(times.modified_ns).bind(times.created_ns).bind(file.id).bind(path.segments().len() as i64);
        let at = path.clone();
        let fresh = move |rows: &[crate::db::Row]| {
            Some(rows.first().map(|row| (at.clone(), Some(Resource::from_row_at(row, 1, at)))).into_iter().collect())
        };
        let rows = self.group.write(writes, fresh).await?;
        if rows.is_empty() {
            // A guard held: nothing was written.
            return Ok(None);
        }
        Ok(Some(ops.iter().map(|op| (op_name(op).clone(), PatchResult::Ok)).collect()))
    }
}

/// When an instruction failed on its own: every instruction's result, the others 424.
pub(crate) fn refusals(ops: &[PatchOp], failures: &[Option<PatchResult>]) -> Option<Vec<(PropName, PatchResult)>> {
    failures.iter().any(Option::is_some).then(|| {
        let results = ops.iter().zip(failures);
        results.map(|(op, f)| (op_name(op).clone(), f.unwrap_or(PatchResult::FailedDependency))).collect()
    })
}

pub(crate) fn op_name(op: &PatchOp) -> &PropName {
    match op {
        PatchOp::Set(p) => &p.name,
        PatchOp::Remove(n) => n,
    }
}

/// The times a PROPPATCH sets; the last instruction setting one wins (document order).
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Times {
    pub(crate) modified_ns: Option<i64>,
    pub(crate) created_ns: Option<i64>,
}

impl Times {
    /// Sets the times. A file's ETag stays (it is derived from content); a collection's
    /// was just renewed by `touch`, which this keeps.
    fn push(&self, batch: &mut Batch, id: i64) {
        if *self == Times::default() {
            return;
        }
        batch.push(
            "UPDATE resources SET modified_ns = COALESCE(?, modified_ns), created_ns = COALESCE(?, created_ns) \
             WHERE id = ?",
        );
        batch.bind(self.modified_ns).bind(self.created_ns).bind(id);
    }

    /// `r` as [`Times::push`] leaves it.
    fn applied_to(&self, mut r: Resource) -> Resource {
        r.modified_ns = self.modified_ns.unwrap_or(r.modified_ns);
        r.created_ns = self.created_ns.unwrap_or(r.created_ns);
        r
    }
}

/// Judges every instruction before any is applied: `Some(result)` for one that fails on
/// its own (protected, or a time that doesn't parse), and the times the others set.
pub(crate) fn judge(ops: &[PatchOp]) -> (Vec<Option<PatchResult>>, Times) {
    let mut times = Times::default();
    let failures = ops
        .iter()
        .map(|op| match op {
            PatchOp::Set(p) => match time_prop(&p.name) {
                Some(t) => match p.text.as_deref().and_then(|v| t.parse(v)) {
                    Some(ns) => {
                        match t.field {
                            TimeField::Modified => times.modified_ns = Some(ns),
                            TimeField::Created => times.created_ns = Some(ns),
                            TimeField::Accessed => {}
                        }
                        None
                    }
                    None => Some(PatchResult::Invalid),
                },
                None => is_protected(&p.name).then_some(PatchResult::Protected),
            },
            PatchOp::Remove(n) => is_protected(n).then_some(PatchResult::Protected),
        })
        .collect();
    (failures, times)
}

fn push_apply(batch: &mut Batch, id: i64, op: &PatchOp) {
    match op {
        // The DAV: time properties are live: their value shows in the resource's times.
        PatchOp::Set(p) if time_prop(&p.name).is_some_and(|t| !t.dead) => {}
        PatchOp::Set(p) => {
            batch.push(
                "INSERT INTO dead_props (resource_id, namespace, name, xml) VALUES (?, ?, ?, ?) \
                 ON CONFLICT (resource_id, namespace, name) DO UPDATE SET xml = excluded.xml",
            );
            batch.bind(id).bind(p.name.ns.clone()).bind(p.name.local.clone()).bind(p.xml.clone());
        }
        PatchOp::Remove(n) => {
            batch.push("DELETE FROM dead_props WHERE resource_id = ? AND namespace = ? AND name = ?");
            batch.bind(id).bind(n.ns.clone()).bind(n.local.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::props::DeadProp;
    use crate::times::MS_NS;

    fn set(ns: &str, local: &str, text: Option<&str>) -> PatchOp {
        let name = PropName::new(ns, local);
        PatchOp::Set(DeadProp { name, xml: String::new(), text: text.map(str::to_owned) })
    }

    #[test]
    fn later_time_properties_win_and_others_are_plain() {
        let ops = [
            set(MS_NS, "Win32LastModifiedTime", Some("Thu, 01 Jan 1970 00:00:10 GMT")),
            set("DAV:", "getlastmodified", Some(" Thu, 01 Jan 1970 00:00:20 GMT ")),
            set("DAV:", "creationdate", Some("1970-01-01T00:00:05Z")),
            set(MS_NS, "Win32FileAttributes", Some("00000020")),
        ];
        let (failures, times) = judge(&ops);
        assert!(failures.iter().all(Option::is_none), "{failures:?}");
        assert_eq!(times, Times { modified_ns: Some(20_000_000_000), created_ns: Some(5_000_000_000) });
    }

    #[test]
    fn unparsable_times_and_protected_properties_fail() {
        let ops = [
            set(MS_NS, "Win32LastAccessTime", Some("soon")),
            set(MS_NS, "Win32CreationTime", None),
            set("DAV:", "getetag", Some("\"x\"")),
            PatchOp::Remove(PropName::dav("getlastmodified")),
            set("urn:x", "color", Some("red")),
        ];
        let (failures, _) = judge(&ops);
        use PatchResult::*;
        assert_eq!(failures, [Some(Invalid), Some(Invalid), Some(Protected), Some(Protected), None]);
    }
}
