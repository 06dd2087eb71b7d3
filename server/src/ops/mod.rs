//! The operations listener: `/metrics` for Prometheus, `/livez` and `/readyz` for
//! orchestrators. It has a port of its own (`--admin-listen`, loopback by default) so that no
//! name in anybody's WebDAV tree is reserved and no login is needed to ask whether the server
//! is up; `/metrics` tells whoever can reach it how busy the server is, so keep it private.
//!
//! It keeps answering while HTTP and FTP drain after SIGTERM — `/readyz` then says 503, so a
//! load balancer stops sending new work — and ends when the server has stopped.

pub mod healthcheck;
pub mod http;
pub mod metrics;

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use dav_model::identity::Authenticator;
use dav_model::Repository;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// What the endpoints read.
pub struct Ops {
    pub repo: Arc<Repository>,
    pub auth: Arc<Authenticator>,
    /// True once the shutdown signal has been seen.
    pub stopping: watch::Receiver<bool>,
}

/// The listener's task; dropping this ends it.
pub struct Running(tokio::task::JoinHandle<()>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Serves the endpoints on `listener` until the returned guard is dropped.
pub fn spawn(listener: TcpListener, ops: Ops) -> Running {
    let app = router(Arc::new(ops));
    Running(tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "the operations listener failed");
        }
    }))
}

fn router(ops: Arc<Ops>) -> Router {
    Router::new()
        .route("/metrics", get(scrape))
        .route("/livez", get(|| async { plain(StatusCode::OK, "alive") }))
        .route("/readyz", get(ready))
        .with_state(ops)
}

/// 200 `ready`, or 503 with the reason: draining after SIGTERM, or the model's own check
/// (the database or the blob store refusing writes).
async fn ready(State(ops): State<Arc<Ops>>) -> Response {
    if *ops.stopping.borrow() {
        return plain(StatusCode::SERVICE_UNAVAILABLE, "draining: the server is shutting down");
    }
    match ops.repo.check_ready().await {
        Ok(()) => plain(StatusCode::OK, "ready"),
        Err(reason) => plain(StatusCode::SERVICE_UNAVAILABLE, &reason),
    }
}

async fn scrape(State(ops): State<Arc<Ops>>) -> Response {
    let stats = match ops.repo.stats().await {
        Ok(stats) => Some(stats),
        Err(e) => {
            tracing::warn!(error = %e, "metrics: the database could not be read");
            None
        }
    };
    let figures = metrics::Figures {
        stats,
        gc: ops.repo.gc_stats(),
        logins: ops.auth.login_stats(),
        archives: ops.repo.archive_stats(),
    };
    match metrics::global().encode(&figures) {
        Ok(text) => ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], text).into_response(),
        Err(_) => plain(StatusCode::INTERNAL_SERVER_ERROR, "metrics could not be encoded"),
    }
}

/// A one-line text answer: what `wharf healthcheck` prints, and what a person sees with curl.
fn plain(status: StatusCode, text: &str) -> Response {
    (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], format!("{text}\n")).into_response()
}
