//! `wharf serve`: open the repository, listen, serve until SIGTERM or Ctrl-C.

use std::sync::Arc;

use dav_model::identity::{Authenticator, GuardConfig, FIRST_ADMIN};
use dav_model::Repository;

use crate::config::Settings;

pub async fn serve(args: crate::config::ServeArgs) -> Result<(), String> {
    let settings = Settings::resolve(args)?;
    crate::logging::init(settings.log_json);
    // Certificate problems are reported before the repository is touched.
    let tls = match &settings.tls {
        Some((cert, key)) => Some(crate::tls::load(cert, key).map_err(|e| format!("TLS: {e}"))?),
        None => None,
    };
    // Held until serving ends: `fsck --repair` and `restore` refuse to run beside it.
    let Some(lock) = dav_model::datadir::DataDirLock::try_take(&settings.data).map_err(|e| e.to_string())? else {
        return Err(format!("{} is in use by another wharf serve, fsck --repair or restore", settings.data.display()));
    };
    let repo = dav_model::Repository::open(&settings.data, settings.model_config())
        .await
        .map_err(|e| format!("cannot open the repository in {}: {e}", settings.data.display()))?;
    let repo = Arc::new(repo);
    let auth = start_identity(&repo, &settings).await?;
    let listener = bind(settings.listen, "HTTP").await?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let ftp_listener = match settings.ftp_listen {
        Some(a) => Some(bind(a, "FTP").await?),
        None => None,
    };
    let lock = Arc::new(lock);
    dav_model::datadir::DataDirLock::keep_renewed(&lock);
    spawn_lock_reaper(repo.clone());
    if let Some(s3) = &settings.s3 {
        spawn_bucket_sweeper(repo.clone(), s3.grace);
    }
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop.send(true);
    });
    let _operations = start_operations(&settings, &repo, &auth, &stopped).await?;
    let ftp = ftp_listener.map(|l| {
        let options = ftp_options(&settings, tls.as_ref());
        if let Ok(a) = l.local_addr() {
            println!("wharf: serving FTP on ftp://{a}/");
        }
        tokio::spawn(crate::ftp::run(l, repo.clone(), auth.clone(), options, wait(stopped.clone())))
    });
    crate::dav::uri::set_base_path(&settings.base_path);
    let app = crate::dav::service(crate::dav::State::new(repo.clone(), auth, &settings));
    let scheme = if tls.is_some() { "https" } else { "http" };
    println!("wharf: serving {} on {scheme}://{addr}{}/", settings.data.display(), settings.base_path);
    tracing::info!(%addr, data = %settings.data.display(), tls = tls.is_some(), "listening");
    crate::http_server::run(listener, tls, app, wait(stopped), settings.grace).await.map_err(|e| e.to_string())?;
    if let Some(ftp) = ftp {
        let _ = ftp.await;
    }
    repo.close().await;
    Ok(())
}

async fn bind(addr: std::net::SocketAddr, what: &str) -> Result<tokio::net::TcpListener, String> {
    tokio::net::TcpListener::bind(addr).await.map_err(|e| format!("cannot listen for {what} on {addr}: {e}"))
}

/// The operations listener (`/metrics`, `/livez`, `/readyz`), unless it is off. It answers
/// through the drain after SIGTERM (`/readyz` then says 503) and ends when the returned guard
/// is dropped, once `serve` is done.
async fn start_operations(
    settings: &Settings,
    repo: &Arc<Repository>,
    auth: &Arc<Authenticator>,
    stopped: &tokio::sync::watch::Receiver<bool>,
) -> Result<Option<crate::ops::Running>, String> {
    let Some(addr) = settings.admin_listen else { return Ok(None) };
    let listener = bind(addr, "operations").await?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    println!("wharf: operations on http://{addr}/");
    let ops = crate::ops::Ops { repo: repo.clone(), auth: auth.clone(), stopping: stopped.clone() };
    Ok(Some(crate::ops::spawn(listener, ops)))
}

/// Completes once the shutdown signal has been seen.
async fn wait(mut stopped: tokio::sync::watch::Receiver<bool>) {
    let _ = stopped.wait_for(|s| *s).await;
}

/// FTPS uses the HTTPS certificate, offering the `ftp` ALPN protocol instead of HTTP's.
///
/// No TLS 1.3 session tickets: rustls sends them right after the handshake, and on an upload
/// the client never reads them. A socket closed with unread data sends a reset instead of a
/// FIN, and the reset can overtake the end of the upload (its `close_notify`), so a complete
/// upload looked cut short and was refused (426) — for about half of curl's TLS 1.3 uploads.
fn ftp_options(settings: &Settings, tls: Option<&Arc<rustls::ServerConfig>>) -> crate::ftp::FtpOptions {
    let tls = tls.map(|t| {
        let mut config = (**t).clone();
        config.alpn_protocols = vec![b"ftp".to_vec()];
        config.send_tls13_tickets = 0;
        Arc::new(config)
    });
    crate::ftp::FtpOptions {
        passive_ports: settings.ftp_passive_ports.clone(),
        passive_host: settings.ftp_passive_host.clone(),
        tls,
        tls_required: settings.ftps_required,
        anonymous: settings.anonymous,
        grace: settings.grace,
        access_log: settings.access_log,
    }
}

/// Creates the first admin if there is no user, and starts the authenticator, whose watch
/// picks up `wharf user` changes made by other processes.
async fn start_identity(repo: &Arc<Repository>, settings: &Settings) -> Result<Arc<Authenticator>, String> {
    let password = std::env::var("WHARF_ADMIN_PASSWORD").ok().filter(|p| !p.is_empty());
    let created =
        repo.ensure_admin_with(password, settings.digest).await.map_err(|e| format!("creating admin: {e}"))?;
    if let Some(generated) = created {
        println!("wharf: created user {FIRST_ADMIN} with password {generated} (shown once)");
    }
    if let Some(folder) = &settings.folder {
        repo.set_home_folder(FIRST_ADMIN, Some(folder))
            .await
            .map_err(|e| format!("cannot serve {}: {e}", folder.display()))?;
        println!("wharf: serving {} as the home of {FIRST_ADMIN}", folder.display());
    }
    let guard = GuardConfig {
        max_failures: settings.lockout_after,
        max_address_failures: settings.address_lockout_after,
        lockout: std::time::Duration::from_secs(settings.lockout_seconds),
    };
    if settings.digest {
        let key = repo.shared_secret("digest-nonce").await.map_err(|e| format!("the Digest nonce key: {e}"))?;
        crate::dav::digest::use_key(key);
    }
    let auth = Arc::new(Authenticator::new(repo.clone(), guard));
    auth.start_watch();
    Ok(auth)
}

/// Expired locks are already ignored by every read; this only keeps the table small.
fn spawn_lock_reaper(repo: Arc<dav_model::Repository>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
        loop {
            tick.tick().await;
            if let Err(e) = repo.purge_expired_locks().await {
                tracing::warn!(error = %e, "purging expired locks failed");
            }
        }
    });
}

/// Leftovers in a bucket become removable only once past the grace period, so a sweep at
/// start alone would leave those of a recent crash until the next start: sweep as often as
/// a tenth of the grace (at most hourly).
fn spawn_bucket_sweeper(repo: Arc<dav_model::Repository>, grace: std::time::Duration) {
    let every = (grace / 10).clamp(std::time::Duration::from_secs(1), std::time::Duration::from_secs(3600));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.tick().await;
        loop {
            tick.tick().await;
            match repo.sweep_blob_store().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(removed = n, "swept left-over objects from the bucket"),
                Err(e) => tracing::warn!(error = %e, "sweeping the bucket failed"),
            }
        }
    });
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
}
