//! The FTP front end: libunftp sessions whose storage backend and logins are thin
//! translations onto the model (see `storage.rs` and `auth.rs`).
//!
//! We accept control connections ourselves rather than through libunftp's listener, to set
//! TCP_NODELAY, which libunftp never does: without it each transfer's closing `226` reply
//! waits for the client's delayed ACK (~40 ms), which dominates many-small-file transfers.

mod auth;
mod error;
mod path;
mod site;
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
use tokio::task::JoinSet;

use auth::{FtpUser, Logins};
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
}

/// Serves FTP on `listener` until `shutdown` completes. Sessions still open are then cut
/// when the process exits, after the HTTP side's graceful stop; an upload cut that way
/// leaves the previous content, like any interrupted STOR.
pub async fn run(
    listener: TcpListener,
    repo: Arc<Repository>,
    auth: Arc<Authenticator>,
    options: FtpOptions,
    shutdown: impl Future<Output = ()>,
) {
    let logins = Arc::new(Logins { auth, repo: repo.clone(), anonymous: options.anonymous });
    let mut sessions = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    if let Err(e) = stream.set_nodelay(true) {
                        tracing::debug!(%peer, error = %e, "cannot set TCP_NODELAY");
                    }
                    match session(&repo, &logins, &options) {
                        Ok(server) => {
                            sessions.spawn(async move {
                                if let Err(e) = server.service(stream).await {
                                    tracing::debug!(%peer, error = %e, "FTP session ended with an error");
                                }
                            });
                        }
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
}

/// One libunftp server, serving one control connection.
fn session(
    repo: &Arc<Repository>,
    logins: &Arc<Logins>,
    options: &FtpOptions,
) -> Result<libunftp::Server<DavStorage, FtpUser>, libunftp::ServerError> {
    let repo = repo.clone();
    let mut builder = ServerBuilder::<DavStorage, FtpUser>::with_user_detail_provider(
        Box::new(move || DavStorage::new(repo.clone())),
        logins.clone(),
    )
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
