//! `wharf serve`: open the repository, listen, serve until SIGTERM or Ctrl-C.

use std::sync::Arc;

use dav_model::identity::{Authenticator, GuardConfig, FIRST_ADMIN};
use dav_model::Repository;

use crate::config::Settings;

pub async fn serve(args: crate::config::ServeArgs) -> Result<(), String> {
    let settings = crate::config::Settings::resolve(args)?;
    // Certificate problems are reported before the repository is touched.
    let tls = match &settings.tls {
        Some((cert, key)) => Some(crate::tls::load(cert, key).map_err(|e| format!("TLS: {e}"))?),
        None => None,
    };
    let repo = dav_model::Repository::open(&settings.data, settings.model_config())
        .await
        .map_err(|e| format!("cannot open the repository in {}: {e}", settings.data.display()))?;
    let repo = Arc::new(repo);
    let auth = start_identity(&repo, &settings).await?;
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", settings.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    spawn_lock_reaper(repo.clone());
    let app = crate::dav::router(crate::dav::State::new(repo.clone(), auth, &settings));
    let scheme = if tls.is_some() { "https" } else { "http" };
    println!("wharf: serving {} on {scheme}://{addr}/", settings.data.display());
    tracing::info!(%addr, data = %settings.data.display(), tls = tls.is_some(), "listening");
    crate::http_server::run(listener, tls, app, shutdown_signal()).await.map_err(|e| e.to_string())?;
    repo.close().await;
    Ok(())
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
    let guard = GuardConfig {
        max_failures: settings.lockout_after,
        lockout: std::time::Duration::from_secs(settings.lockout_seconds),
    };
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
