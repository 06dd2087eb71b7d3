//! The real side: a Repository on a temporary directory (SQLite file, blob files) with the
//! share `host` served from a second temporary directory, the two principals' views of
//! it, and what it shows when walked through a View.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use dav_model::condition::{Condition, IfHeader, List, Preconditions, Tag, Term};
use dav_model::identity::{Flags, Principal, Rights, View};
use dav_model::{
    ByteStream, Config, DavPath, DeadProp, Depth, Error, LockRequest, LockScope, PatchOp, PropName, PutOptions,
    Repository, Resource, Transfer, TransferOutcome,
};
use futures_util::TryStreamExt;

use crate::ops::{grants, prop_text, prop_xml, Instr, Request, Resolved, Sent, ViewPath, Who, PROPS};
use crate::state::{Content, Key, Limits, Outcome, Seen, Snapshot};

pub struct Store {
    pub repo: Repository,
    system: Principal,
    alice: Principal,
    bob: Principal,
    pub dir: tempfile::TempDir,
    /// The PostgreSQL database, in the test command's second pass (else SQLite in `dir`).
    pub database: Option<String>,
    /// The folder the share `host` serves.
    pub folder: tempfile::TempDir,
}

/// Bodies arrive in pieces of this size, so that large ones stream through `tmp/`.
const CHUNK: usize = 16 * 1024;

/// A temporary directory, in memory where the system has one: the store makes 256 blob
/// directories per case, which costs most of a second on some disks.
fn scratch_dir() -> tempfile::TempDir {
    let shm = std::path::Path::new("/dev/shm");
    let builder = tempfile::Builder::new();
    let dir = if shm.is_dir() { builder.tempdir_in(shm) } else { builder.tempdir() };
    dir.expect("temp dir")
}

fn principal(who: Who) -> Principal {
    let shares: Vec<(String, Rights)> =
        grants(who).iter().map(|(s, r)| (s.to_string(), Rights::parse(r).expect("rights"))).collect();
    Principal::user(who.name(), Flags::default(), &shares).expect("principal")
}

fn path(raw: &str) -> Result<DavPath, Outcome> {
    DavPath::parse(raw).map_err(|e| Outcome::Unexpected(format!("{raw:?} does not parse: {e}")))
}

impl Store {
    /// A repository with both homes and the three shares, as `wharf user add` and `wharf
    /// share add [--host DIR --quota-bytes N]` leave them (the principals are built as
    /// `principal_for` would build them).
    pub async fn open(limits: Limits) -> Store {
        let dir = scratch_dir();
        let database = dav_model::testing::postgres_database().await;
        let config = Config { quota_bytes: limits.store, database: database.clone(), ..Config::default() };
        let repo = Repository::open(dir.path(), config).await.expect("repository");
        let system = Principal::system();
        for d in ["/home", "/home/alice", "/home/bob", "/shares", "/shares/team", "/shares/ro"] {
            let d = DavPath::parse(d).expect("path");
            repo.view(&system).mkcol(&d, &Preconditions::default()).await.expect("mkcol");
        }
        let folder = scratch_dir();
        repo.add_host_share("host", folder.path(), false, limits.host).await.expect("host share");
        Store { repo, system, alice: principal(Who::Alice), bob: principal(Who::Bob), dir, database, folder }
    }

    pub fn view(&self, who: Option<Who>) -> View<'_> {
        let p = match who {
            None => &self.system,
            Some(Who::Alice) => &self.alice,
            Some(Who::Bob) => &self.bob,
        };
        self.repo.view(p)
    }

    /// Performs a request; also returns the token of a lock it granted.
    pub async fn perform(&self, r: &Resolved) -> (Outcome, Option<String>) {
        match self.try_perform(r).await {
            Ok(done) => done,
            Err(refused) => (refused, None),
        }
    }

    async fn try_perform(&self, r: &Resolved) -> Result<(Outcome, Option<String>), Outcome> {
        let view = self.view(Some(r.who));
        let pre = preconditions(&r.sent)?;
        let done = |created: bool| if created { Outcome::Created } else { Outcome::Done };
        Ok(match &r.request {
            Request::Put { path: p, body } => {
                let opts = PutOptions { pre, ..PutOptions::default() };
                let put = view.put(&path(&p.raw())?, stream(body.bytes()), opts).await;
                (done(put.map_err(outcome)?.created), None)
            }
            Request::Mkcol { path: p } => {
                view.mkcol(&path(&p.raw())?, &pre).await.map_err(outcome)?;
                (Outcome::Created, None)
            }
            Request::Delete { path: p } => {
                view.delete(&path(&p.raw())?, &pre).await.map_err(outcome)?;
                (Outcome::Done, None)
            }
            Request::Transfer { src, dst, moving, deep, overwrite } => {
                let (src, dst) = (path(&src.raw())?, path(&dst.raw())?);
                let depth = if *deep || *moving { Depth::Infinity } else { Depth::Zero };
                let req = Transfer {
                    src: &src,
                    dst: &dst,
                    moving: *moving,
                    depth,
                    overwrite: *overwrite,
                    pre: &pre,
                    principal: None,
                };
                match view.transfer(req).await.map_err(outcome)? {
                    TransferOutcome::Created => (Outcome::Created, None),
                    TransferOutcome::Replaced => (Outcome::Done, None),
                    TransferOutcome::Partial(failed) => {
                        (Outcome::Partial(failed.into_iter().map(|(p, e)| (p.to_string(), outcome(e))).collect()), None)
                    }
                }
            }
            Request::PropPatch { path: p, instrs } => {
                let ops: Vec<PatchOp> = instrs.iter().map(patch_op).collect();
                let results = view.proppatch(&path(&p.raw())?, &ops, &pre).await.map_err(outcome)?;
                (Outcome::Patched(results.into_iter().map(|(_, r)| r).collect()), None)
            }
            Request::Lock { path: p, exclusive, deep } => {
                let req = LockRequest {
                    scope: if *exclusive { LockScope::Exclusive } else { LockScope::Shared },
                    depth_infinite: *deep,
                    owner_xml: None,
                    principal: None,
                    timeouts: vec![],
                };
                let (lock, created) = view.lock(&path(&p.raw())?, req, &pre).await.map_err(outcome)?;
                (done(created), Some(lock.token))
            }
            Request::Refresh { path: p } => {
                view.refresh_lock(&path(&p.raw())?, &pre, &[]).await.map_err(outcome)?;
                (Outcome::Done, None)
            }
            Request::Unlock { path: p, token } => {
                view.unlock(&path(&p.raw())?, token).await.map_err(outcome)?;
                (Outcome::Done, None)
            }
        })
    }

    /// Everything the store shows, read through the unrestricted view (and the top of
    /// each principal's own), plus the lock rows.
    pub async fn snapshot(&self, db: &crate::invariants::Db) -> Result<Snapshot, String> {
        let view = self.view(None);
        let root = view.resolve(&DavPath::root()).await.map_err(text)?.ok_or("no root")?;
        let nodes = walk(&view, root.clone()).await?;
        let used = view.quota(&DavPath::root()).await.map_err(text)?.used;
        let host_used = view.quota(&host_root()).await.map_err(text)?.used;
        let mut tops = BTreeMap::new();
        for who in [Who::Alice, Who::Bob] {
            let view = self.view(Some(who));
            let top = view.resolve(&DavPath::root()).await.map_err(text)?.ok_or("no home")?;
            let names = view.list(&top).await.map_err(text)?.iter().map(|e| e.resource.name().to_owned()).collect();
            tops.insert(who.name(), names);
        }
        let locks = crate::invariants::lock_rows(db).await?;
        Ok(Snapshot { nodes, locks, used, host_used, tops })
    }
}

/// Every resource below `root` with its bytes, dead properties and covering locks.
async fn walk(view: &View<'_>, root: Resource) -> Result<BTreeMap<Key, Seen>, String> {
    let mut nodes = BTreeMap::new();
    let mut todo = vec![root];
    while let Some(dir) = todo.pop() {
        for e in view.list(&dir).await.map_err(text)? {
            let r = &e.resource;
            let content = if r.is_collection {
                todo.push(r.clone());
                None
            } else {
                let bytes = read(view, r).await?;
                if bytes.len() as u64 != r.size {
                    return Err(format!("{} is listed with {} bytes but holds {}", r.path, r.size, bytes.len()));
                }
                Some(Content(bytes))
            };
            let props = e.dead.iter().map(|d| ((d.name.ns.clone(), d.name.local.clone()), d.xml.clone())).collect();
            let locks: BTreeSet<String> = e.locks.iter().map(|l| l.token.clone()).collect();
            nodes.insert(r.path.segments().iter().map(|s| s.to_string()).collect(), Seen { content, props, locks });
        }
    }
    Ok(nodes)
}

async fn read(view: &View<'_>, r: &Resource) -> Result<Vec<u8>, String> {
    let stream = view.read_content(r, None).await.map_err(text)?;
    let chunks: Vec<Bytes> = stream.try_collect().await.map_err(|e| e.to_string())?;
    Ok(chunks.concat())
}

fn text(e: Error) -> String {
    e.to_string()
}

fn stream(bytes: Vec<u8>) -> ByteStream {
    let chunks: Vec<std::io::Result<Bytes>> =
        bytes.chunks(CHUNK).map(|c| Ok(Bytes::copy_from_slice(c))).collect::<Vec<_>>();
    Box::pin(futures_util::stream::iter(chunks))
}

fn preconditions(sent: &Sent) -> Result<Preconditions, Outcome> {
    let list = |resource, token: &String| {
        let term = Term { negated: false, condition: Condition::Token(token.clone()) };
        let header = IfHeader { lists: vec![List { resource, terms: vec![term] }] };
        Preconditions { if_header: Some(header), ..Preconditions::default() }
    };
    Ok(match sent {
        Sent::Nothing => Preconditions::default(),
        Sent::Proving(tokens) => Preconditions::proving(tokens.iter().map(String::as_str)),
        Sent::Untagged(token) => list(Tag::RequestUri, token),
        Sent::Tagged { token, at } => list(Tag::Path(path(&at.raw())?), token),
    })
}

fn patch_op(i: &Instr) -> PatchOp {
    let name = |p: usize| PropName::new(PROPS[p].0, PROPS[p].1);
    match *i {
        Instr::Set(p, v) => PatchOp::Set(DeadProp { name: name(p), xml: prop_xml(p, v), text: Some(prop_text(p, v)) }),
        Instr::Remove(p) => PatchOp::Remove(name(p)),
    }
}

/// The status class of a refusal, with the lock roots it names.
fn outcome(e: Error) -> Outcome {
    let roots = |paths: Vec<DavPath>| Outcome::roots(paths.iter().map(DavPath::to_string).collect());
    match e {
        Error::Forbidden(_) => Outcome::Forbidden,
        Error::NotFound => Outcome::NotFound,
        Error::Conflict(_) => Outcome::Conflict,
        Error::AlreadyExists => Outcome::AlreadyExists,
        Error::NotAllowed(_) => Outcome::NotAllowed,
        Error::PreconditionFailed => Outcome::PreconditionFailed,
        Error::Locked(p) => Outcome::Locked(roots(p)),
        Error::ConflictingLock(p) => Outcome::ConflictingLock(roots(p)),
        Error::LockTokenMismatch => Outcome::TokenMismatch,
        Error::InsufficientStorage => Outcome::InsufficientStorage,
        Error::BadPath(_) => Outcome::BadPath,
        other => Outcome::Unexpected(other.to_string()),
    }
}

/// Where the share `host` is mounted.
pub fn host_root() -> DavPath {
    DavPath::parse("/shares/host").expect("path")
}

/// A view path from a stored path's segments, for requests aimed at a lock's root.
pub fn view_path_or_top(found: Option<ViewPath>) -> ViewPath {
    found.unwrap_or(ViewPath { area: crate::ops::Area::Home, names: Vec::new() })
}
