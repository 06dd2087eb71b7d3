//! `wharf serve`: open the repository, listen, serve until SIGTERM or Ctrl-C.

use std::sync::Arc;

pub async fn serve(args: crate::config::ServeArgs) -> Result<(), String> {
    let settings = crate::config::Settings::resolve(args)?;
    let repo = dav_model::Repository::open(&settings.data, settings.model_config())
        .await
        .map_err(|e| format!("cannot open the repository in {}: {e}", settings.data.display()))?;
    let repo = Arc::new(repo);
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", settings.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    spawn_lock_reaper(repo.clone());
    let app = crate::dav::router(crate::dav::State::new(repo.clone(), &settings));
    println!("wharf: serving {} on http://{addr}/", settings.data.display());
    tracing::info!(%addr, data = %settings.data.display(), "listening");
    axum::serve(crate::listener::GuardedListener::new(listener), app)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(|e| e.to_string())?;
    repo.close().await;
    Ok(())
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
