//! What FTP does, seen from the storage backend: every storage call is a request for the
//! metrics (labelled with the command family it serves), uploads and downloads count their
//! bytes and are the transfers a graceful stop waits for (`drain.rs`), and with the access log
//! on each transfer logs one line.
//!
//! [`Observed`] wraps [`DavStorage`] and delegates every call, so the translation onto the
//! model stays free of bookkeeping. libunftp shows us storage calls, not commands, so several
//! commands share a label: `STOR` also counts APPE, `LIST` also NLST, MLSD and STAT of a
//! directory, `STAT` is a look-up (SIZE, MDTM, MLST, and RNFR's check).

use std::fmt::Debug;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use async_trait::async_trait;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use unftp_core::storage::{Error, ErrorKind, Fileinfo, Result, StorageBackend};

use super::auth::FtpUser;
use super::drain::Transfers;
use super::storage::{DavStorage, Meta};
use crate::ops::metrics::{global, Protocol, Status};

/// One session's storage, observed.
#[derive(Debug)]
pub struct Observed {
    inner: DavStorage,
    peer: SocketAddr,
    transfers: Arc<Transfers>,
    access_log: bool,
}

impl Observed {
    pub fn new(inner: DavStorage, peer: SocketAddr, transfers: Arc<Transfers>, access_log: bool) -> Observed {
        Observed { inner, peer, transfers, access_log }
    }

    /// SITE UTIME (see `site.rs`).
    pub async fn set_modified(&self, user: &FtpUser, raw: &str, modified_ns: i64) -> Result<()> {
        measure("SITE", self.inner.set_modified(user, raw, modified_ns)).await
    }

    /// A transfer: refused once the server is stopping, counted while it runs, logged.
    async fn transfer<T>(
        &self,
        command: &'static str,
        user: &FtpUser,
        path: &Path,
        bytes: &AtomicU64,
        work: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        let Some(_transfer) = self.transfers.begin() else {
            return Err(Error::new(ErrorKind::TransientFileNotAvailable, "the server is shutting down"));
        };
        let started = Instant::now();
        let result = measure(command, work).await;
        if self.access_log {
            tracing::info!(
                target: "wharf::access",
                protocol = "ftp",
                client = %self.peer.ip(),
                user = %user,
                command,
                path = %path.display(),
                status = if result.is_ok() { "ok" } else { "error" },
                bytes = bytes.load(Ordering::Relaxed),
                seconds = started.elapsed().as_secs_f64(),
                "transfer"
            );
        }
        result
    }
}

/// Runs one storage call and records it as a request.
async fn measure<T>(command: &'static str, work: impl Future<Output = Result<T>>) -> Result<T> {
    let started = Instant::now();
    let result = work.await;
    let status = if result.is_ok() { Status::Ok } else { Status::Error };
    global().request(Protocol::Ftp, command, status, started.elapsed());
    result
}

#[async_trait]
impl StorageBackend<FtpUser> for Observed {
    type Metadata = Meta;

    fn name(&self) -> &str {
        self.inner.name()
    }

    fn supported_features(&self) -> u32 {
        self.inner.supported_features()
    }

    async fn metadata<P: AsRef<Path> + Send + Debug>(&self, user: &FtpUser, path: P) -> Result<Meta> {
        measure("STAT", self.inner.metadata(user, path)).await
    }

    async fn list<P: AsRef<Path> + Send + Debug>(
        &self,
        user: &FtpUser,
        path: P,
    ) -> Result<Vec<Fileinfo<PathBuf, Meta>>> {
        measure("LIST", self.inner.list(user, path)).await
    }

    /// Not used for RETR (that is `get_into`); delegated for completeness, uncounted.
    async fn get<P: AsRef<Path> + Send + Debug>(
        &self,
        user: &FtpUser,
        path: P,
        start_pos: u64,
    ) -> Result<Box<dyn AsyncRead + Send + Sync + Unpin>> {
        self.inner.get(user, path, start_pos).await
    }

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
        let sent = AtomicU64::new(0);
        let shown = path.as_ref().to_owned();
        let work = async {
            let n = self.inner.get_into(user, path, start_pos, output).await?;
            sent.store(n, Ordering::Relaxed);
            global().sent(Protocol::Ftp, n);
            Ok(n)
        };
        self.transfer("RETR", user, &shown, &sent, work).await
    }

    async fn put<P: AsRef<Path> + Send + Debug, R: AsyncRead + Send + Sync + Unpin + 'static>(
        &self,
        user: &FtpUser,
        input: R,
        path: P,
        start_pos: u64,
    ) -> Result<u64> {
        let received = Arc::new(AtomicU64::new(0));
        let shown = path.as_ref().to_owned();
        let input = Counted { inner: input, received: received.clone() };
        self.transfer("STOR", user, &shown, &received, self.inner.put(user, input, path, start_pos)).await
    }

    async fn del<P: AsRef<Path> + Send + Debug>(&self, user: &FtpUser, path: P) -> Result<()> {
        measure("DELE", self.inner.del(user, path)).await
    }

    async fn mkd<P: AsRef<Path> + Send + Debug>(&self, user: &FtpUser, path: P) -> Result<()> {
        measure("MKD", self.inner.mkd(user, path)).await
    }

    async fn rename<P: AsRef<Path> + Send + Debug>(&self, user: &FtpUser, from: P, to: P) -> Result<()> {
        measure("RNTO", self.inner.rename(user, from, to)).await
    }

    async fn rmd<P: AsRef<Path> + Send + Debug>(&self, user: &FtpUser, path: P) -> Result<()> {
        measure("RMD", self.inner.rmd(user, path)).await
    }

    async fn cwd<P: AsRef<Path> + Send + Debug>(&self, user: &FtpUser, path: P) -> Result<()> {
        measure("CWD", self.inner.cwd(user, path)).await
    }
}

/// An upload's data connection, counting the bytes read from it as they arrive.
struct Counted<R> {
    inner: R,
    received: Arc<AtomicU64>,
}

impl<R: AsyncRead + Unpin> AsyncRead for Counted<R> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        let n = (buf.filled().len() - before) as u64;
        if n > 0 {
            this.received.fetch_add(n, Ordering::Relaxed);
            global().received(Protocol::Ftp, n);
        }
        polled
    }
}
