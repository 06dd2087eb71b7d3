//! One run: the store and the reference side by side. Each operation goes to both; their
//! answers must agree, and after every step so must everything the store shows, and the
//! invariants of the store and of the host folder must hold.

use crate::ops::{Op, Request, Resolved, Sent, Submit, Target, ViewPath, Who};
use crate::reference::Reference;
use crate::state::{Key, Limits};
use crate::store::{view_path_or_top, Store};
use crate::{folder, invariants};

/// A lock the store granted: its token, who holds it and where it was rooted.
struct Granted {
    token: String,
    owner: Who,
    root: Key,
}

pub struct World {
    store: Store,
    reference: Reference,
    granted: Vec<Granted>,
    db: invariants::Db,
}

/// Runs `ops` on a fresh store (with the quotas of `limits`) and its reference.
pub async fn run(limits: Limits, ops: &[Op]) -> Result<(), String> {
    let world = World::new(limits).await;
    let result = world.run(ops).await;
    result.map_err(|(at, e)| format!("step {at} ({:?}): {e}", ops[at]))
}

impl World {
    async fn new(limits: Limits) -> World {
        let store = Store::open(limits).await;
        let db = invariants::Db::open(store.dir.path(), store.database.as_deref()).await;
        World { store, reference: Reference::new(limits), granted: Vec::new(), db }
    }

    async fn run(mut self, ops: &[Op]) -> Result<(), (usize, String)> {
        let mut result = Ok(());
        for (at, op) in ops.iter().enumerate() {
            if let Err(e) = self.step(op).await {
                result = Err((at, e));
                break;
            }
        }
        self.db.close().await;
        self.store.repo.close().await;
        result
    }

    async fn step(&mut self, op: &Op) -> Result<(), String> {
        let Some(r) = self.resolve(op) else { return Ok(()) };
        let want = self.reference.apply(&r);
        let (got, token) = self.store.perform(&r).await;
        if got != want {
            return Err(format!("{r:?} answered {got:?}, the reference {want:?}"));
        }
        if let Some(token) = token {
            let root = self.reference.name_new_lock(&token).ok_or("a lock the reference did not grant")?;
            self.granted.push(Granted { token, owner: r.who, root });
        }
        self.check().await
    }

    /// The request an operation stands for: its paths and tokens picked from what exists.
    fn resolve(&self, op: &Op) -> Option<Resolved> {
        let at = |who: Who, t: Target| self.aim(who, t);
        let (who, request, submit) = match op.clone() {
            Op::Put { who, path, body, submit } => (who, Request::Put { path: at(who, path), body }, submit),
            Op::Mkcol { who, path, submit } => (who, Request::Mkcol { path: at(who, path) }, submit),
            Op::Delete { who, path, submit } => (who, Request::Delete { path: at(who, path) }, submit),
            Op::Copy { who, src, dst, deep, overwrite, submit } => {
                let (src, dst) = (at(who, src), at(who, dst));
                (who, Request::Transfer { src, dst, moving: false, deep, overwrite }, submit)
            }
            Op::Move { who, src, dst, overwrite, submit } => {
                let (src, dst) = (at(who, src), at(who, dst));
                (who, Request::Transfer { src, dst, moving: true, deep: true, overwrite }, submit)
            }
            Op::PropPatch { who, path, instrs, submit } => {
                (who, Request::PropPatch { path: at(who, path), instrs }, submit)
            }
            Op::Lock { who, path, exclusive, deep, submit } => {
                (who, Request::Lock { path: at(who, path), exclusive, deep }, submit)
            }
            Op::Refresh { who, path, submit } => (who, Request::Refresh { path: at(who, path) }, submit),
            Op::Unlock { who, lock, at: on } => {
                let g = self.granted.get(lock % self.granted.len().max(1))?;
                let path = on.map_or_else(|| self.root_as_seen(who, g), |t| at(who, t));
                (who, Request::Unlock { path, token: g.token.clone() }, Submit::Nothing)
            }
        };
        Some(Resolved { who, request, sent: self.sent(who, submit) })
    }

    /// The view path a target stands for now.
    fn aim(&self, who: Who, target: Target) -> ViewPath {
        let pick = |i: usize, folder: bool| {
            let seen = self.reference.visible(who).into_iter();
            let below_top = |v: &ViewPath, collection: bool| if folder { collection } else { !v.names.is_empty() };
            let seen: Vec<ViewPath> = seen.filter(|(v, c)| below_top(v, *c)).map(|(v, _)| v).collect();
            view_path_or_top(seen.get(i % seen.len().max(1)).cloned())
        };
        match target {
            Target::Fresh(path) => path,
            Target::Existing(i) => pick(i, false),
            Target::Folder(i) => pick(i, true),
            Target::Inside(i, name) => {
                let mut path = pick(i, true);
                path.names.push(name);
                path
            }
        }
    }

    /// A lock's root as `who` sees it (their `/` when they can't).
    fn root_as_seen(&self, who: Who, g: &Granted) -> ViewPath {
        view_path_or_top(self.reference.view_of(who, &g.root))
    }

    fn sent(&self, who: Who, submit: Submit) -> Sent {
        let tokens = |mine: bool| -> Vec<String> {
            self.granted.iter().filter(|g| !mine || g.owner == who).map(|g| g.token.clone()).collect()
        };
        match submit {
            Submit::Nothing => Sent::Nothing,
            Submit::Mine => Sent::Proving(tokens(true)),
            Submit::Everyone => Sent::Proving(tokens(false)),
            Submit::Untagged(i) => match self.granted.get(i % self.granted.len().max(1)) {
                Some(g) => Sent::Untagged(g.token.clone()),
                None => Sent::Nothing,
            },
            Submit::Tagged(i) => match self.granted.get(i % self.granted.len().max(1)) {
                Some(g) => Sent::Tagged { token: g.token.clone(), at: self.root_as_seen(who, g) },
                None => Sent::Nothing,
            },
        }
    }

    /// The store shows what the reference holds, and keeps its invariants.
    async fn check(&self) -> Result<(), String> {
        let seen = self.store.snapshot(&self.db).await?;
        let mut problems = seen.diff(&self.reference.snapshot());
        problems.extend(invariants::deep_locks_on_collections(&seen));
        problems.extend(invariants::check(&self.store.repo, &self.db, self.store.dir.path()).await?);
        let on_disk = self.reference.host_folder();
        problems.extend(folder::check(self.store.folder.path(), &on_disk, &self.db, &seen.locks).await);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("\n  "))
        }
    }
}
