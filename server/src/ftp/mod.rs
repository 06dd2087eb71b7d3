//! The FTP front end: libunftp sessions whose storage backend and logins are thin
//! translations onto the model (see `storage.rs` and `auth.rs`).
//!
//! We accept control connections ourselves rather than through libunftp's listener, to set
//! TCP_NODELAY, which libunftp never does: without it each transfer's closing `226` reply
//! waits for the client's delayed ACK (~40 ms), which dominates many-small-file transfers.
//! Hence also our own graceful stop (`drain.rs`).

mod auth;
mod drain;
mod error;
mod observe;
pub(crate) mod path;
pub(crate) mod site;
mod storage;

use std::future::Future;
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::Duration;

use dav_model::identity::Authenticator;
use dav_model::Repository;
use libunftp::options::FtpsRequired;
use libunftp::ServerBuilder;
use tokio::net::TcpListener;

use auth::{FtpUser, Logins};
use drain::{Sessions, Transfers};
use observe::Observed;
use storage::DavStorage;

/// What the FTP side needs besides the repository and the authenticator.
#[derive(Clone)]
pub struct FtpOptions {
    pub passive_ports: RangeInclusive<u16>,
    /// The address announced in PASV replies (an IPv4 address or a DNS name), for servers
    /// behind NAT or in a container; default: the address the client connected to.
    pub passive_host: Option<String>,
    /// Explicit FTPS (AUTH TLS) with the HTTPS certificate, when one is configured.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Refuse logins and transfers that are not protected by TLS.
    pub tls_required: bool,
    pub anonymous: bool,
    /// How long transfers in flight may take to finish after SIGTERM.
    pub grace: Duration,
    /// Log one line per upload and download (target `wharf::access`).
    pub access_log: bool,
}

/// Serves FTP on `listener` until `shutdown` completes, then stops gracefully: transfers in
/// flight get `options.grace` to finish, then every session is ended (see `drain.rs`). An
/// upload cut after the grace period leaves the previous content, like any interrupted STOR.
pub async fn run(
    listener: TcpListener,
    repo: Arc<Repository>,
    auth: Arc<Authenticator>,
    options: FtpOptions,
    shutdown: impl Future<Output = ()>,
) {
    let logins = Arc::new(Logins { auth, repo: repo.clone(), anonymous: options.anonymous });
    let transfers = Arc::new(Transfers::default());
    let mut sessions = Sessions::default();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            () = sessions.reap(), if !sessions.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    if let Err(e) = stream.set_nodelay(true) {
                        tracing::debug!(%peer, error = %e, "cannot set TCP_NODELAY");
                    }
                    match session(&repo, peer, &transfers, &logins, &options) {
                        Ok(server) => sessions.spawn(stream, peer, server),
                        Err(e) => tracing::error!(error = %e, "cannot set up an FTP session"),
                    }
                }
                Err(e) => {
                    // Out of file descriptors, usually: wait instead of spinning.
                    tracing::warn!(error = %e, "FTP accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
    drop(listener);
    sessions.stop(&transfers, options.grace).await;
}

/// One libunftp server, serving one control connection from `peer`.
fn session(
    repo: &Arc<Repository>,
    peer: std::net::SocketAddr,
    transfers: &Arc<Transfers>,
    logins: &Arc<Logins>,
    options: &FtpOptions,
) -> Result<libunftp::Server<Observed, FtpUser>, libunftp::ServerError> {
    let (repo, transfers, access_log) = (repo.clone(), transfers.clone(), options.access_log);
    let storage = move || Observed::new(DavStorage::new(repo.clone()), peer, transfers.clone(), access_log);
    let mut builder = ServerBuilder::<Observed, FtpUser>::with_user_detail_provider(Box::new(storage), logins.clone())
        .authenticator(logins.clone())
        .greeting("Wharf FTP ready")
        .site_command("UTIME", site::Utime)
        .passive_ports(options.passive_ports.clone());
    if let Some(host) = &options.passive_host {
        builder = builder.passive_host(host.as_str());
    }
    if let Some(tls) = &options.tls {
        builder = builder.ftps_manual::<std::path::PathBuf>(tls.clone());
        if options.tls_required {
            builder = builder.ftps_required(FtpsRequired::All, FtpsRequired::All);
        }
    }
    builder.build()
}
