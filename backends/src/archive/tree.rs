//! An archive as a read-only [`Tree`]: names from its [`Catalog`] (the index laid out as
//! folders), bytes read from the archive on demand.

use std::collections::HashMap;
use std::io::{self, Read};
use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;

use super::{gz, spawn_stream, zip, zst, Data, Format, Index, Member, Sink, Source, SourceReader};
use crate::tree::{Caps, DirEntry, Install, Installed, Kind, Meta, NodeId, StageOptions, Tree, TreeStaged};
use crate::{ByteStream, Error, Result};

/// An index laid out as a tree: every member under its path, and the folders its paths
/// imply (tar and zip need not list a member's parent folders). Made once per index and
/// shared by every request on that archive. Nodes are a trie, each holding only its own
/// name, so memory grows with the bytes of the names, never with the square of a path's
/// depth (a hostile member `a/a/a/…` of a few KiB would otherwise take gigabytes).
pub struct Catalog {
    index: Arc<Index>,
    /// The root first.
    nodes: Vec<Node>,
    /// Stands for the archive's identity in members' ETags and node ids.
    archive: u64,
    /// The time shown for folders the archive doesn't list itself.
    modified_ns: i64,
}

struct Node {
    /// The member, or `None` for a folder only implied by paths below it.
    member: Option<usize>,
    children: HashMap<String, usize>,
}

impl Catalog {
    /// `identity` is a string that changes whenever the archive's bytes can have (the
    /// model's index key), `modified_ns` the archive file's own modification time.
    pub fn new(index: Arc<Index>, identity: &str, modified_ns: i64) -> Catalog {
        let mut nodes = vec![Node { member: None, children: HashMap::new() }];
        for (i, m) in index.members.iter().enumerate() {
            let mut at = 0;
            for name in &m.path {
                at = match nodes[at].children.get(name) {
                    Some(&child) => child,
                    None => {
                        nodes.push(Node { member: None, children: HashMap::new() });
                        let child = nodes.len() - 1;
                        nodes[at].children.insert(name.clone(), child);
                        child
                    }
                };
            }
            nodes[at].member = Some(i);
        }
        // A file that is also the parent of other members is shown as the folder: that
        // way every member stays reachable.
        for node in &mut nodes {
            if !node.children.is_empty() && node.member.is_some_and(|i| !index.members[i].dir) {
                node.member = None;
            }
        }
        let archive =
            u64::from_le_bytes(blake3::hash(identity.as_bytes()).as_bytes()[..8].try_into().unwrap_or_default());
        Catalog { index, nodes, archive, modified_ns }
    }

    pub fn index(&self) -> &Index {
        &self.index
    }

    fn member(&self, path: &[String]) -> Option<(Option<&Member>, &Node)> {
        let mut node = &self.nodes[0];
        for name in path {
            node = &self.nodes[*node.children.get(name)?];
        }
        Some((node.member.map(|i| &self.index.members[i]), node))
    }

    fn meta(&self, path: &[String], member: Option<&Member>, node: &Node) -> Meta {
        let dir = member.is_none_or(|m| m.dir) || !node.children.is_empty();
        let modified_ns = member.map_or(self.modified_ns, |m| m.modified_ns);
        let ino =
            u64::from_le_bytes(blake3::hash(path.join("/").as_bytes()).as_bytes()[..8].try_into().unwrap_or_default());
        Meta {
            kind: if dir { Kind::Dir } else { Kind::File },
            size: if dir { 0 } else { member.map_or(0, |m| m.size) },
            modified_ns,
            created_ns: modified_ns,
            changed_ns: modified_ns,
            node: NodeId { dev: self.archive, ino, birth_ns: 0 },
        }
    }
}

/// One archive opened as a tree.
pub struct ArchiveTree {
    source: Arc<dyn Source>,
    catalog: Arc<Catalog>,
}

impl ArchiveTree {
    pub fn new(source: Arc<dyn Source>, catalog: Arc<Catalog>) -> ArchiveTree {
        ArchiveTree { source, catalog }
    }

    fn found(&self, path: &[String]) -> Result<(Option<&Member>, &Node)> {
        self.catalog.member(path).ok_or(Error::Missing)
    }

    /// Streams `range` of member `m` (already checked to lie within it).
    fn stream(&self, m: &Member, range: Range<u64>) -> ByteStream {
        let (source, format) = (self.source.clone(), self.catalog.index.format);
        if let Data::Stored { offset } = m.data {
            let range = offset + range.start..offset + range.end;
            let opened = async move { source.read(range).await.map_err(super::into_io) };
            return Box::pin(futures_util::TryStreamExt::try_flatten(futures_util::stream::once(opened)));
        }
        let (m, catalog) = (m.clone(), self.catalog.clone());
        let rt = tokio::runtime::Handle::current();
        spawn_stream(move |sink| {
            let reader = SourceReader::new(source, rt, None);
            let whole = range.start == 0 && range.end == m.size;
            let mut r: Box<dyn Read + Send> = match m.data {
                Data::Deflated { offset, compressed } => Box::new(zip::inflate(reader, offset, compressed, m.size)?),
                Data::Stream { offset } => {
                    let cps = &catalog.index.checkpoints;
                    match format {
                        Format::TarZst => zst::open_at(reader, cps, offset + range.start)?,
                        _ => gz::open_at(reader, cps, offset + range.start)?,
                    }
                }
                Data::Stored { .. } => return Ok(()),
            };
            if matches!(m.data, Data::Deflated { .. }) {
                io::copy(&mut r.by_ref().take(range.start), &mut io::sink())?;
            }
            let crc = m.crc32.filter(|_| whole);
            copy_out(r, range.end - range.start, crc, sink)
        })
    }
}

/// Sends exactly `len` bytes of `r`, and checks a zip member's CRC-32 when it was read
/// whole: a damaged member ends in an error (a cut body), never in wrong bytes passed off
/// as complete.
fn copy_out(mut r: Box<dyn Read + Send>, len: u64, crc: Option<u32>, sink: &Sink) -> io::Result<()> {
    let mut left = len;
    let mut hasher = flate2::Crc::new();
    while left > 0 {
        let mut buf = vec![0; left.min(256 * 1024) as usize];
        let n = r.read(&mut buf)?;
        if n == 0 {
            return Err(super::corrupt("the archive ends inside this member"));
        }
        buf.truncate(n);
        hasher.update(&buf);
        left -= n as u64;
        sink.send(Bytes::from(buf))?;
    }
    match crc {
        Some(want) if hasher.sum() != want => Err(super::corrupt("the member's CRC-32 does not match its bytes")),
        _ => Ok(()),
    }
}

#[async_trait::async_trait]
impl Tree for ArchiveTree {
    fn caps(&self) -> Caps {
        Caps { read_only: true, ..Caps::default() }
    }

    async fn stat(&self, path: &[String]) -> Result<Option<Meta>> {
        Ok(self.catalog.member(path).map(|(m, node)| self.catalog.meta(path, m, node)))
    }

    async fn list(&self, dir: &[String]) -> Result<Vec<DirEntry>> {
        let (m, node) = self.found(dir)?;
        if !self.catalog.meta(dir, m, node).is_dir() {
            return Err(Error::NotADirectory);
        }
        let mut path = dir.to_vec();
        let mut out = Vec::with_capacity(node.children.len());
        for (name, &child) in &node.children {
            let child = &self.catalog.nodes[child];
            let m = child.member.map(|i| &self.catalog.index.members[i]);
            path.push(name.clone());
            out.push(DirEntry { name: name.clone(), meta: self.catalog.meta(&path, m, child) });
            path.pop();
        }
        Ok(out)
    }

    async fn read(&self, path: &[String], range: Option<Range<u64>>) -> Result<(Meta, ByteStream)> {
        let (m, node) = self.found(path)?;
        let meta = self.catalog.meta(path, m, node);
        let Some(m) = m.filter(|_| !meta.is_dir()) else { return Err(Error::IsADirectory) };
        if let Some(why) = &m.refused {
            return Err(Error::Archive(why.clone()));
        }
        let range = range.unwrap_or(0..m.size);
        if range.start > range.end || range.end > m.size {
            return Err(crate::invalid_input(format!("byte range {}..{} outside the member", range.start, range.end)));
        }
        Ok((meta, self.stream(m, range)))
    }

    async fn stage(&self, _path: &[String], _body: ByteStream, _opts: StageOptions) -> Result<TreeStaged> {
        Err(Error::ArchiveReadOnly)
    }

    async fn install(&self, _staged: TreeStaged, _path: &[String], _how: Install) -> Result<Installed> {
        Err(Error::ArchiveReadOnly)
    }

    async fn create_dir(&self, _path: &[String]) -> Result<Meta> {
        Err(Error::ArchiveReadOnly)
    }

    async fn remove(&self, _path: &[String]) -> Result<()> {
        Err(Error::ArchiveReadOnly)
    }

    async fn remove_empty_dir(&self, _path: &[String]) -> Result<()> {
        Err(Error::ArchiveReadOnly)
    }

    async fn available(&self) -> Result<u64> {
        Ok(0)
    }

    async fn used(&self, dir: &[String]) -> Result<u64> {
        let below = |m: &&Member| m.path.starts_with(dir) && !m.dir;
        Ok(self.catalog.index.members.iter().filter(below).map(|m| m.size).sum())
    }
}
