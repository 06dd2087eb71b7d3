//! libunftp's storage backend, translated onto the model through the principal's [`View`]:
//! STOR is the model's atomic PUT, DELE and RMD are DELETE, MKD is MKCOL, RNFR+RNTO is MOVE,
//! and listings read the same live properties (size, modification time) WebDAV shows. No
//! storage decision is taken here; rights, locks and quotas are the model's.

use std::fmt::Debug;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use dav_model::condition::{EtagMatch, Preconditions};
use dav_model::identity::View;
use dav_model::{DavPath, Depth, PutOptions, Repository, Resource, Transfer, TransferOutcome};
use futures_util::StreamExt;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio_util::io::{ReaderStream, StreamReader};
use unftp_core::storage::{ErrorKind, Fileinfo, Metadata, Permissions, Result, StorageBackend, FEATURE_RESTART};

use super::auth::FtpUser;
use super::error::{kind, reply};

/// Reads from the data connection in pieces this large: small reads cap a transfer's rate.
const UPLOAD_CHUNK: usize = 1 << 20;

/// One session's view of the tree. libunftp makes one per control connection.
pub struct DavStorage {
    repo: Arc<Repository>,
    /// The working directory as of the last successful CWD, for the relative paths
    /// libunftp passes unjoined (MLST, STAT).
    cwd: Mutex<DavPath>,
}

impl std::fmt::Debug for DavStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DavStorage").field("cwd", &self.cwd).finish()
    }
}

impl DavStorage {
    pub fn new(repo: Arc<Repository>) -> DavStorage {
        DavStorage { repo, cwd: Mutex::new(DavPath::root()) }
    }

    fn view<'a>(&'a self, user: &'a FtpUser) -> View<'a> {
        self.repo.view(&user.principal)
    }

    fn path(&self, raw: &Path) -> Result<DavPath> {
        let cwd = self.cwd.lock().map(|c| c.clone()).unwrap_or_default();
        super::path::resolve(&cwd, raw)
    }

    /// The resource at `raw`, or "file not available".
    async fn existing(&self, user: &FtpUser, raw: &Path) -> Result<Resource> {
        let path = self.path(raw)?;
        self.view(user).resolve(&path).await.map_err(reply)?.ok_or_else(|| reply(dav_model::Error::NotFound))
    }
}

/// What FTP shows of a resource: the live properties WebDAV shows too.
#[derive(Debug, Clone)]
pub struct Meta {
    size: u64,
    dir: bool,
    modified_ns: i64,
}

impl Meta {
    fn of(r: &Resource) -> Meta {
        Meta { size: r.size, dir: r.is_collection, modified_ns: r.modified_ns }
    }
}

impl Metadata for Meta {
    fn len(&self) -> u64 {
        self.size
    }
    fn is_dir(&self) -> bool {
        self.dir
    }
    fn is_file(&self) -> bool {
        !self.dir
    }
    fn is_symlink(&self) -> bool {
        false
    }
    fn modified(&self) -> Result<SystemTime> {
        let ns = self.modified_ns.max(0) as u64;
        Ok(UNIX_EPOCH + Duration::from_nanos(ns))
    }
    fn gid(&self) -> u32 {
        0
    }
    fn uid(&self) -> u32 {
        0
    }
    fn permissions(&self) -> Permissions {
        Permissions(if self.dir { 0o755 } else { 0o644 })
    }
}

#[async_trait]
impl StorageBackend<FtpUser> for DavStorage {
    type Metadata = Meta;

    fn name(&self) -> &str {
        "wharf"
    }

    fn supported_features(&self) -> u32 {
        FEATURE_RESTART
    }

    async fn metadata<P: AsRef<Path> + Send + Debug>(&self, user: &FtpUser, path: P) -> Result<Meta> {
        Ok(Meta::of(&self.existing(user, path.as_ref()).await?))
    }

    async fn list<P: AsRef<Path> + Send + Debug>(
        &self,
        user: &FtpUser,
        path: P,
    ) -> Result<Vec<Fileinfo<PathBuf, Meta>>> {
        let dir = self.existing(user, path.as_ref()).await?;
        if !dir.is_collection {
            // `LIST file` lists that one file, as ls does.
            let name = dir.path.name().unwrap_or("/").to_owned();
            return Ok(vec![Fileinfo { path: PathBuf::from(name), metadata: Meta::of(&dir) }]);
        }
        let entries = self.view(user).list(&dir).await.map_err(reply)?;
        Ok(entries
            .iter()
            .filter_map(|e| {
                let name = e.resource.path.name()?;
                Some(Fileinfo { path: PathBuf::from(name), metadata: Meta::of(&e.resource) })
            })
            .collect())
    }

    async fn get<P: AsRef<Path> + Send + Debug>(
        &self,
        user: &FtpUser,
        path: P,
        start_pos: u64,
    ) -> Result<Box<dyn AsyncRead + Send + Sync + Unpin>> {
        let stream = self.content(user, path.as_ref(), start_pos).await?;
        Ok(Box::new(StreamReader::new(SyncStream(Mutex::new(stream)))))
    }

    /// RETR: copies the blob store's large chunks straight to the data connection.
    async fn get_into<'a, P, W: ?Sized>(
        &self,
        user: &FtpUser,
        path: P,
        start_pos: u64,
        output: &'a mut W,
    ) -> Result<u64>
    where
        W: AsyncWrite + Unpin + Sync + Send,
        P: AsRef<Path> + Send + Debug,
    {
        let mut stream = self.content(user, path.as_ref(), start_pos).await?;
        let mut sent = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| reply(dav_model::Error::Blob(wharf_backends::Error::Io(e))))?;
            output.write_all(&chunk).await?;
            sent += chunk.len() as u64;
        }
        Ok(sent)
    }

    /// STOR (and APPE, and STOR after REST): the model's atomic PUT. An interrupted upload
    /// leaves the previous content; a resumed one keeps the first `start_pos` bytes.
    async fn put<P: AsRef<Path> + Send + Debug, R: AsyncRead + Send + Sync + Unpin + 'static>(
        &self,
        user: &FtpUser,
        input: R,
        path: P,
        start_pos: u64,
    ) -> Result<u64> {
        let path = self.path(path.as_ref())?;
        let body = Box::pin(ReaderStream::with_capacity(input, UPLOAD_CHUNK));
        let opts = PutOptions { resume_at: Some(start_pos), ..PutOptions::default() };
        let outcome = self.view(user).put(&path, body, opts).await.map_err(reply)?;
        Ok(outcome.resource.size.saturating_sub(start_pos))
    }

    async fn del<P: AsRef<Path> + Send + Debug>(&self, user: &FtpUser, path: P) -> Result<()> {
        let r = self.existing(user, path.as_ref()).await?;
        if r.is_collection {
            return Err(kind(ErrorKind::PermanentFileNotAvailable, "a directory: use RMD"));
        }
        self.view(user).delete(&r.path, &unchanged(&r)).await.map_err(reply)
    }

    async fn mkd<P: AsRef<Path> + Send + Debug>(&self, user: &FtpUser, path: P) -> Result<()> {
        let path = self.path(path.as_ref())?;
        self.view(user).mkcol(&path, &Preconditions::default()).await.map_err(reply).map(|_| ())
    }

    async fn rename<P: AsRef<Path> + Send + Debug>(&self, user: &FtpUser, from: P, to: P) -> Result<()> {
        let src = self.path(from.as_ref())?;
        let dst = self.path(to.as_ref())?;
        let view = self.view(user);
        // Like rename(2): a file replaces a file, but nothing replaces a directory. Only an
        // existing file is replaced, so a directory made at the target meanwhile is kept.
        let existing = view.resolve(&dst).await.map_err(reply)?;
        if existing.as_ref().is_some_and(|r| r.is_collection) {
            return Err(kind(ErrorKind::PermanentFileNotAvailable, "the target is a directory"));
        }
        let pre = Preconditions::default();
        let req = Transfer {
            src: &src,
            dst: &dst,
            moving: true,
            depth: Depth::Infinity,
            overwrite: existing.is_some(),
            pre: &pre,
            principal: None,
        };
        match view.transfer(req).await.map_err(reply)? {
            // A move between trees that arrived only in part kept its source.
            TransferOutcome::Partial(failed) => {
                let first = failed.into_iter().next().map(|(p, e)| format!("{p}: {e}")).unwrap_or_default();
                Err(kind(ErrorKind::TransientFileNotAvailable, &format!("moved only in part ({first})")))
            }
            _ => Ok(()),
        }
    }

    /// RMD removes empty directories only, as rmdir(2) does; WebDAV's DELETE is recursive,
    /// but an FTP client that sends RMD expects a non-empty directory to stay.
    async fn rmd<P: AsRef<Path> + Send + Debug>(&self, user: &FtpUser, path: P) -> Result<()> {
        let r = self.existing(user, path.as_ref()).await?;
        if !r.is_collection {
            return Err(kind(ErrorKind::PermanentDirectoryNotAvailable, "not a directory"));
        }
        let view = self.view(user);
        if !view.list(&r).await.map_err(reply)?.is_empty() {
            return Err(kind(ErrorKind::PermanentDirectoryNotEmpty, "directory not empty"));
        }
        // A member added since the listing changes the directory's ETag: then nothing is
        // deleted (450), instead of the new member with it.
        view.delete(&r.path, &unchanged(&r)).await.map_err(reply)
    }

    async fn cwd<P: AsRef<Path> + Send + Debug>(&self, user: &FtpUser, path: P) -> Result<()> {
        let r = self.existing(user, path.as_ref()).await?;
        if !r.is_collection {
            return Err(kind(ErrorKind::PermanentDirectoryNotAvailable, "not a directory"));
        }
        if let Ok(mut cwd) = self.cwd.lock() {
            *cwd = r.path;
        }
        Ok(())
    }
}

impl DavStorage {
    /// SITE UTIME: the model's PROPPATCH of `getlastmodified`.
    pub async fn set_modified(&self, user: &FtpUser, raw: &str, modified_ns: i64) -> Result<()> {
        let path = self.path(Path::new(raw))?;
        let view = self.view(user);
        if view.resolve(&path).await.map_err(reply)?.is_none() {
            return Err(reply(dav_model::Error::NotFound));
        }
        let patch = [super::site::modified_patch(modified_ns)];
        let results = view.proppatch(&path, &patch, &Preconditions::default()).await.map_err(reply)?;
        match results.iter().all(|(_, r)| *r == dav_model::PatchResult::Ok) {
            true => Ok(()),
            false => Err(kind(ErrorKind::PermissionDenied, "the time was not accepted")),
        }
    }

    /// The content of the file at `raw` from byte `start` on (REST before RETR).
    async fn content(&self, user: &FtpUser, raw: &Path, start: u64) -> Result<dav_model::ByteStream> {
        let r = self.existing(user, raw).await?;
        if r.is_collection {
            return Err(kind(ErrorKind::PermanentFileNotAvailable, "a directory"));
        }
        if start > r.size {
            return Err(reply(dav_model::Error::RangeNotSatisfiable { size: r.size }));
        }
        let range = (start > 0).then_some(start..r.size);
        self.view(user).read_content(&r, range).await.map_err(reply)
    }
}

/// A condition that the resource is still the one looked up (its ETag), so that an
/// FTP command checked against one resource never acts on another put there meanwhile.
fn unchanged(r: &Resource) -> Preconditions {
    Preconditions { if_match: Some(EtagMatch::Tags(vec![r.etag.clone()])), ..Preconditions::default() }
}

/// libunftp wants a `Sync` reader; the model's byte streams are only `Send`. The stream is
/// polled through `&mut`, so the mutex is never contended.
struct SyncStream(Mutex<dav_model::ByteStream>);

impl futures_util::Stream for SyncStream {
    type Item = std::io::Result<bytes::Bytes>;

    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        match self.get_mut().0.get_mut() {
            Ok(stream) => stream.as_mut().poll_next(cx),
            Err(_) => std::task::Poll::Ready(None),
        }
    }
}
