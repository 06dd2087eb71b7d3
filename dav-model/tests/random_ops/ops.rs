//! The operations a random sequence is made of, and the strategies that generate them.
//! Names come from a small pool so that operations collide often; the pool holds the
//! awkward cases (NFC and NFD spellings of one name, dots, spaces, long names, and names
//! the store holds but a host folder can't).

use std::fmt;

use proptest::prelude::*;

/// The two principals. Both have a home of their own and see the shares `team` and `ro`
/// (in the store) and `host` (a folder of the host, served in place).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Who {
    Alice,
    Bob,
}

impl Who {
    pub fn name(self) -> &'static str {
        match self {
            Who::Alice => "alice",
            Who::Bob => "bob",
        }
    }
}

/// Where a view path starts: the principal's home (their `/`) or one of the shares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Area {
    Home,
    Team,
    Ro,
    /// The share served from a host folder.
    Host,
}

impl Area {
    /// The share an area is, if it is one.
    pub fn share(self) -> Option<&'static str> {
        match self {
            Area::Home => None,
            Area::Team => Some("team"),
            Area::Ro => Some("ro"),
            Area::Host => Some("host"),
        }
    }
}

/// A path as a principal sends it: raw names, perhaps in NFD, not yet normalised.
#[derive(Clone, PartialEq, Eq)]
pub struct ViewPath {
    pub area: Area,
    pub names: Vec<String>,
}

impl ViewPath {
    pub fn new(area: Area, names: &[&str]) -> ViewPath {
        ViewPath { area, names: names.iter().map(|n| n.to_string()).collect() }
    }

    /// The decoded path an adapter would hand to `DavPath::parse`.
    pub fn raw(&self) -> String {
        let mut out = self.area.share().map_or_else(String::new, |s| format!("/{s}"));
        for n in &self.names {
            out.push('/');
            out.push_str(n);
        }
        if out.is_empty() {
            out.push('/');
        }
        out
    }
}

impl fmt::Debug for ViewPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::new();
        for c in self.raw().chars() {
            match c {
                ' '..='~' => s.push(c),
                c => s.push_str(&c.escape_unicode().to_string()),
            }
        }
        if s.len() > 60 {
            let cut = s.char_indices().nth(40).map_or(s.len(), |(i, _)| i);
            s = format!("{}…[{} bytes]", &s[..cut], self.raw().len());
        }
        write!(f, "{s:?}")
    }
}

/// Where an operation aims: a path of its own, or one picked at run time (by index) among
/// what exists then and the principal can see, so that operations on existing resources
/// and in existing folders are frequent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Fresh(ViewPath),
    /// An existing resource below a mount point.
    Existing(usize),
    /// An existing collection, a principal's `/` or a share's top included (so that whole
    /// trees are copied, locked and deleted now and then).
    Folder(usize),
    /// A name in an existing collection (a mount point included).
    Inside(usize, String),
}

/// A body: `len` bytes derived from `fill`, so equal bodies share a blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Body {
    pub len: usize,
    pub fill: u8,
}

impl Body {
    pub fn bytes(self) -> Vec<u8> {
        (0..self.len).map(|i| self.fill.wrapping_add((i % 251) as u8)).collect()
    }
}

/// The lock tokens a request carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Submit {
    Nothing,
    /// Every token the requester was ever granted, in an `If` header that always holds.
    Mine,
    /// Every token ever granted to anybody, the same way.
    Everyone,
    /// `If: (<token>)` for one granted token (picked by index), which must hold.
    Untagged(usize),
    /// `If: <root> (<token>)`, tagged with the root of the token's lock as the requester
    /// sees it (their `/` when they can't): holds while that lock exists.
    Tagged(usize),
}

/// One PROPPATCH instruction on a property of [`PROPS`], by index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Instr {
    Set(usize, u8),
    Remove(usize),
}

/// Property names a PROPPATCH may name: two dead ones, `displayname` (dead in the store,
/// though live by default), a protected live one and a live time property.
pub const PROPS: &[(&str, &str)] = &[
    ("urn:x", "color"),
    ("urn:y", "color"),
    ("DAV:", "displayname"),
    ("DAV:", "getetag"),
    ("DAV:", "getlastmodified"),
];

#[derive(Debug, Clone)]
pub enum Op {
    Put {
        who: Who,
        path: Target,
        body: Body,
        submit: Submit,
    },
    Mkcol {
        who: Who,
        path: Target,
        submit: Submit,
    },
    Delete {
        who: Who,
        path: Target,
        submit: Submit,
    },
    Copy {
        who: Who,
        src: Target,
        dst: Target,
        deep: bool,
        overwrite: bool,
        submit: Submit,
    },
    Move {
        who: Who,
        src: Target,
        dst: Target,
        overwrite: bool,
        submit: Submit,
    },
    PropPatch {
        who: Who,
        path: Target,
        instrs: Vec<Instr>,
        submit: Submit,
    },
    Lock {
        who: Who,
        path: Target,
        exclusive: bool,
        deep: bool,
        submit: Submit,
    },
    /// LOCK without a body: refreshes the lock whose token is submitted.
    Refresh {
        who: Who,
        path: Target,
        submit: Submit,
    },
    /// UNLOCK of a granted token (by index) at `at`, or at its lock's root when `None`.
    Unlock {
        who: Who,
        lock: usize,
        at: Option<Target>,
    },
}

/// A long name: 110 × `ü`, 220 bytes in NFC and 330 in NFD.
fn long(nfd: bool) -> String {
    if nfd {
        "u\u{308}".repeat(110)
    } else {
        "\u{fc}".repeat(110)
    }
}

/// A name the store holds but a host folder can't: 270 bytes, past Linux's 255 (the host
/// answers 400, see `reference::host`).
pub fn too_long_for_a_host() -> String {
    "\u{65e5}".repeat(90)
}

/// A name a host folder keeps for its own temporary files: absent there, refused to writers.
pub const RESERVED_ON_A_HOST: &str = ".wharf-tmp-1";

/// The name pool, weighted so that `a` and `b` collide often.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => Just("a".to_owned()),
        4 => Just("b".to_owned()),
        2 => Just("\u{e9}".to_owned()),
        2 => Just("e\u{301}".to_owned()),
        1 => Just("日本".to_owned()),
        1 => Just(".hidden".to_owned()),
        1 => Just("a..b".to_owned()),
        1 => Just("...".to_owned()),
        1 => Just("with space".to_owned()),
        1 => Just("100%".to_owned()),
        1 => Just(long(false)),
        1 => Just(long(true)),
        1 => Just(too_long_for_a_host()),
        1 => Just(RESERVED_ON_A_HOST.to_owned()),
    ]
}

pub fn who() -> impl Strategy<Value = Who> {
    prop_oneof![Just(Who::Alice), Just(Who::Bob)]
}

fn area() -> impl Strategy<Value = Area> {
    prop_oneof![2 => Just(Area::Home), 4 => Just(Area::Team), 2 => Just(Area::Ro), 4 => Just(Area::Host)]
}

/// Names of the folders a path passes through: fewer, so that parents exist often.
fn folder_name() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => Just("a".to_owned()),
        1 => Just("\u{e9}".to_owned()),
        1 => Just("e\u{301}".to_owned()),
        1 => Just("...".to_owned()),
        1 => Just(long(true)),
    ]
}

/// A view path at most three names below its area's top (rarely the top itself).
pub fn view_path() -> impl Strategy<Value = ViewPath> {
    let above = prop_oneof![6 => Just(0usize), 4 => Just(1), 1 => Just(2)];
    let folders = above.prop_flat_map(|n| proptest::collection::vec(folder_name(), n));
    let last = proptest::option::weighted(0.95, name());
    (area(), folders, last).prop_map(|(area, mut names, last)| {
        names.extend(last);
        ViewPath { area, names }
    })
}

fn body() -> impl Strategy<Value = Body> {
    let len = prop_oneof![2 => Just(0usize), 3 => Just(1), 3 => Just(5), 4 => Just(3000), 1 => Just(40_000)];
    (len, 0u8..3).prop_map(|(len, fill)| Body { len, fill })
}

fn submit() -> impl Strategy<Value = Submit> {
    prop_oneof![
        4 => Just(Submit::Nothing),
        3 => Just(Submit::Mine),
        1 => Just(Submit::Everyone),
        1 => any::<usize>().prop_map(Submit::Untagged),
        1 => any::<usize>().prop_map(Submit::Tagged),
    ]
}

/// What a refresh submits: never the tokens of both principals at once (see
/// `Reference::refresh`).
fn refresh_submit() -> impl Strategy<Value = Submit> {
    submit().prop_map(|s| if s == Submit::Everyone { Submit::Mine } else { s })
}

fn instr() -> impl Strategy<Value = Instr> {
    let prop = prop_oneof![4 => Just(0usize), 2 => Just(1), 2 => Just(2), 1 => Just(3), 1 => Just(4)];
    (prop, any::<bool>(), 0u8..3).prop_map(|(p, set, v)| if set { Instr::Set(p, v) } else { Instr::Remove(p) })
}

/// The target of an operation on what exists: mostly an existing resource. (Boxed, as
/// are destinations: the value trees of the operations are otherwise large enough to
/// overflow a test thread's stack in a debug build.)
fn target() -> BoxedStrategy<Target> {
    prop_oneof![
        2 => view_path().prop_map(Target::Fresh),
        4 => any::<usize>().prop_map(Target::Existing),
        1 => any::<usize>().prop_map(Target::Folder),
        2 => (any::<usize>(), name()).prop_map(|(i, n)| Target::Inside(i, n)),
    ]
    .boxed()
}

/// What a COPY or MOVE takes: as often a whole folder as a single resource.
fn source() -> BoxedStrategy<Target> {
    prop_oneof![
        1 => view_path().prop_map(Target::Fresh),
        3 => any::<usize>().prop_map(Target::Existing),
        3 => any::<usize>().prop_map(Target::Folder),
        1 => (any::<usize>(), name()).prop_map(|(i, n)| Target::Inside(i, n)),
    ]
    .boxed()
}

/// Where something is created (PUT, MKCOL, a COPY or MOVE destination): mostly a name in
/// an existing folder.
fn destination() -> BoxedStrategy<Target> {
    prop_oneof![
        2 => view_path().prop_map(Target::Fresh),
        1 => any::<usize>().prop_map(Target::Existing),
        3 => (any::<usize>(), name()).prop_map(|(i, n)| Target::Inside(i, n)),
    ]
    .boxed()
}

fn op() -> impl Strategy<Value = Op> {
    let path = target;
    prop_oneof![
        5 => (who(), destination(), body(), submit()).prop_map(|(who, path, body, submit)| Op::Put { who, path, body, submit }),
        4 => (who(), destination(), submit()).prop_map(|(who, path, submit)| Op::Mkcol { who, path, submit }),
        2 => (who(), path(), submit()).prop_map(|(who, path, submit)| Op::Delete { who, path, submit }),
        3 => (who(), source(), destination(), any::<bool>(), any::<bool>(), submit()).prop_map(
            |(who, src, dst, deep, overwrite, submit)| Op::Copy { who, src, dst, deep, overwrite, submit }
        ),
        2 => (who(), source(), destination(), any::<bool>(), submit())
            .prop_map(|(who, src, dst, overwrite, submit)| Op::Move { who, src, dst, overwrite, submit }),
        2 => (who(), path(), proptest::collection::vec(instr(), 1..=3), submit())
            .prop_map(|(who, path, instrs, submit)| Op::PropPatch { who, path, instrs, submit }),
        3 => (who(), path(), any::<bool>(), any::<bool>(), submit())
            .prop_map(|(who, path, exclusive, deep, submit)| Op::Lock { who, path, exclusive, deep, submit }),
        1 => (who(), path(), refresh_submit()).prop_map(|(who, path, submit)| Op::Refresh { who, path, submit }),
        2 => (who(), any::<usize>(), proptest::option::weighted(0.3, path()))
            .prop_map(|(who, lock, at)| Op::Unlock { who, lock, at }),
    ]
}

/// A folder filled at once: its MKCOL, then PUTs of a few members (some in a subfolder),
/// so that whole trees, awkward names included, are often there to be copied, moved,
/// locked and deleted; half of the time then copied or moved at once into the other tree
/// (the store's folders into the host's, and back). Names a host can't hold are more
/// frequent here: a copy of such a folder into the host arrives only in part.
fn filled_folder() -> impl Strategy<Value = Vec<Op>> {
    let refused = prop_oneof![Just(too_long_for_a_host()), Just(RESERVED_ON_A_HOST.to_owned())];
    let member = (prop_oneof![4 => name(), 1 => refused], body(), proptest::bool::weighted(0.3));
    let members = proptest::collection::vec(member, 1..=4);
    let across = proptest::option::of((any::<bool>(), any::<bool>(), folder_name(), area()));
    (who(), area(), folder_name(), members, across).prop_map(|(who, area, folder, members, across)| {
        let at = |names: &[&str]| Target::Fresh(ViewPath::new(area, names));
        let submit = Submit::Nothing;
        let mut ops = vec![Op::Mkcol { who, path: at(&[&folder]), submit }];
        for (name, body, below) in members {
            let path = if below {
                ops.push(Op::Mkcol { who, path: at(&[&folder, "sub"]), submit });
                at(&[&folder, "sub", &name])
            } else {
                at(&[&folder, &name])
            };
            ops.push(Op::Put { who, path, body, submit });
        }
        if let Some((moving, overwrite, name, other)) = across {
            let other = if area == Area::Host { other } else { Area::Host };
            let (src, dst) = (at(&[&folder]), Target::Fresh(ViewPath::new(other, &[&name])));
            ops.push(match moving {
                true => Op::Move { who, src, dst, overwrite, submit },
                false => Op::Copy { who, src, dst, deep: true, overwrite, submit },
            });
        }
        ops
    })
}

/// A sequence of up to `max` steps, each one operation or, now and then, a filled folder.
pub fn sequence(max: usize) -> impl Strategy<Value = Vec<Op>> {
    let step = prop_oneof![9 => op().prop_map(|op| vec![op]), 1 => filled_folder()];
    proptest::collection::vec(step, 1..=max).prop_map(|steps| steps.concat())
}

/// The XML a PROPPATCH stores for property `p` set to value `v`.
pub fn prop_xml(p: usize, v: u8) -> String {
    let (ns, local) = PROPS[p];
    format!("<P:{local} xmlns:P=\"{ns}\">v{v}</P:{local}>")
}

/// The text of a set property (a date for the time property, so that it parses).
pub fn prop_text(p: usize, v: u8) -> String {
    match PROPS[p] {
        ("DAV:", "getlastmodified") => format!("Thu, 01 Jan 1970 00:00:1{v} GMT"),
        _ => format!("v{v}"),
    }
}

/// The rights each principal is granted on each share (the same letters as `wharf share
/// grant`): alice may also break locks in `team` and `host`; bob may only read `ro`.
pub fn grants(who: Who) -> [(&'static str, &'static str); 3] {
    match who {
        Who::Alice => [("team", "rwdla"), ("ro", "rwdl"), ("host", "rwdla")],
        Who::Bob => [("team", "rwdl"), ("ro", "r"), ("host", "rwdl")],
    }
}

/// The rights `who` holds in `area`, as letters.
pub fn rights(who: Who, area: Area) -> &'static str {
    match area.share() {
        None => "rwdla",
        Some(share) => grants(who).iter().find(|(s, _)| *s == share).map_or("", |(_, r)| r),
    }
}

/// The tokens a request carries, once [`Submit`] is resolved against the granted locks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    Nothing,
    /// An `If` header listing the tokens, plus a list that always holds.
    Proving(Vec<String>),
    /// `If: (<token>)`: holds only if the token's lock covers the request URI.
    Untagged(String),
    /// `If: <at> (<token>)`: holds only if the token's lock covers `at`.
    Tagged {
        token: String,
        at: ViewPath,
    },
}

impl Sent {
    pub fn tokens(&self) -> Vec<&str> {
        match self {
            Sent::Nothing => Vec::new(),
            Sent::Proving(t) => t.iter().map(String::as_str).collect(),
            Sent::Untagged(t) | Sent::Tagged { token: t, .. } => vec![t.as_str()],
        }
    }
}

/// An operation with its tokens and paths decided: what both sides are given.
#[derive(Debug, Clone)]
pub enum Request {
    Put { path: ViewPath, body: Body },
    Mkcol { path: ViewPath },
    Delete { path: ViewPath },
    Transfer { src: ViewPath, dst: ViewPath, moving: bool, deep: bool, overwrite: bool },
    PropPatch { path: ViewPath, instrs: Vec<Instr> },
    Lock { path: ViewPath, exclusive: bool, deep: bool },
    Refresh { path: ViewPath },
    Unlock { path: ViewPath, token: String },
}

#[derive(Debug, Clone)]
pub struct Resolved {
    pub who: Who,
    pub request: Request,
    pub sent: Sent,
}
