//! `wharf`: the binary. Adapters only — WebDAV over HTTP now, FTP and the browser front end
//! later — onto the protocol-agnostic `dav-model`.

use std::sync::Arc;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

mod config;
mod dav;
mod if_header;
mod listener;
mod xml;

#[derive(Parser)]
#[command(name = "wharf", version, about = "A WebDAV file server whose tree lives in SQL")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the tree over WebDAV.
    Serve(config::ServeArgs),
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_env("WHARF_LOG").unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("wharf: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => serve(args).await,
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wharf: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn serve(args: config::ServeArgs) -> Result<(), String> {
    let settings = config::Settings::resolve(args)?;
    let repo = dav_model::Repository::open(&settings.data, settings.model_config())
        .await
        .map_err(|e| format!("cannot open the repository in {}: {e}", settings.data.display()))?;
    let repo = Arc::new(repo);
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", settings.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    spawn_lock_reaper(repo.clone());
    let app = dav::router(dav::State::new(repo.clone(), &settings));
    println!("wharf: serving {} on http://{addr}/", settings.data.display());
    tracing::info!(%addr, data = %settings.data.display(), "listening");
    axum::serve(listener::GuardedListener::new(listener), app)
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
