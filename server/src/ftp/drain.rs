//! Stopping FTP gracefully: after SIGTERM no new session is accepted and no new transfer
//! starts; transfers in flight get the grace period to finish; then every session is ended.
//! An idle session (a client sitting at the prompt, as most do between commands) holds
//! nothing worth waiting for, so it never delays the stop.
//!
//! libunftp's own graceful stop belongs to its listener, which we don't use (see `mod.rs`),
//! and `Server::service` takes the socket for good. So each control connection is kept
//! twice: libunftp's handle, and a duplicate of the descriptor here, through which the
//! socket is shut down at the end — the session's control loop then reads end-of-file and
//! exits like after a client's disconnect.

use std::collections::HashMap;
use std::future::Future;
use std::net::{Shutdown, SocketAddr};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::{Id, JoinError, JoinSet};

use crate::ops::metrics::{global, Open};

/// How long a session's closing reply (`226 Transfer complete`) gets to go out after the
/// transfer itself ended: the storage call returns before libunftp writes the reply.
const REPLY_SETTLE: Duration = Duration::from_millis(250);
/// How long sessions get to notice their closed socket before their tasks are aborted.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// Transfers in flight, across all sessions.
#[derive(Debug)]
pub struct Transfers(watch::Sender<State>);

#[derive(Clone, Copy, Debug, Default)]
struct State {
    active: usize,
    stopping: bool,
}

impl Default for Transfers {
    fn default() -> Self {
        Transfers(watch::Sender::new(State::default()))
    }
}

/// One transfer in flight, counted until dropped.
pub struct Transfer<'a> {
    transfers: &'a Transfers,
    _open: Open,
}

impl Drop for Transfer<'_> {
    fn drop(&mut self) {
        self.transfers.0.send_modify(|s| s.active -= 1);
    }
}

impl Transfers {
    /// Counts a transfer that starts now, or `None` once the server is stopping.
    pub fn begin(&self) -> Option<Transfer<'_>> {
        let started = self.0.send_if_modified(|s| {
            s.active += usize::from(!s.stopping);
            !s.stopping
        });
        started.then(|| Transfer { transfers: self, _open: global().ftp_transfer() })
    }

    /// Refuses new transfers and returns how many are in flight.
    fn stop(&self) -> usize {
        self.0.send_modify(|s| s.stopping = true);
        self.0.borrow().active
    }

    /// Completes when no transfer is in flight.
    fn idle(&self) -> impl Future<Output = ()> + use<> {
        let mut state = self.0.subscribe();
        async move {
            let _ = state.wait_for(|s| s.active == 0).await;
        }
    }
}

/// The running sessions, each with a duplicate of its control socket.
#[derive(Default)]
pub struct Sessions {
    tasks: JoinSet<()>,
    controls: HashMap<Id, std::net::TcpStream>,
}

impl Sessions {
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// Serves one control connection with `server`.
    pub fn spawn<S>(
        &mut self,
        stream: tokio::net::TcpStream,
        peer: SocketAddr,
        server: libunftp::Server<S, super::FtpUser>,
    ) where
        S: unftp_core::storage::StorageBackend<super::FtpUser> + 'static,
        S::Metadata: unftp_core::storage::Metadata,
    {
        let (stream, control) = match duplicate(stream) {
            Ok(pair) => pair,
            Err(e) => return tracing::warn!(%peer, error = %e, "cannot keep a handle on an FTP session"),
        };
        let open = global().ftp_session();
        let task = self.tasks.spawn(async move {
            let _open = open;
            if let Err(e) = server.service(stream).await {
                tracing::debug!(%peer, error = %e, "FTP session ended with an error");
            }
        });
        self.controls.insert(task.id(), control);
    }

    /// Waits for the next session to end and forgets it.
    pub async fn reap(&mut self) {
        if let Some(ended) = self.tasks.join_next_with_id().await {
            self.controls.remove(&ended.map_or_else(|e: JoinError| e.id(), |(id, ())| id));
        }
    }

    /// The graceful stop (see the module documentation).
    pub async fn stop(mut self, transfers: &Transfers, grace: Duration) {
        let busy = transfers.stop();
        if busy > 0 {
            tracing::info!(transfers = busy, ?grace, "waiting for FTP transfers to finish");
            match tokio::time::timeout(grace, transfers.idle()).await {
                Ok(()) => tokio::time::sleep(REPLY_SETTLE).await,
                Err(_) => tracing::warn!(?grace, "FTP transfers still running after the grace period; cutting them"),
            }
        }
        for control in self.controls.values() {
            let _ = control.shutdown(Shutdown::Both);
        }
        let _ = tokio::time::timeout(CLOSE_WAIT, async { while self.tasks.join_next().await.is_some() {} }).await;
        self.tasks.shutdown().await;
    }
}

/// The stream for libunftp, and a second descriptor of the same socket for us.
fn duplicate(stream: tokio::net::TcpStream) -> std::io::Result<(tokio::net::TcpStream, std::net::TcpStream)> {
    let std = stream.into_std()?;
    let control = std.try_clone()?;
    Ok((tokio::net::TcpStream::from_std(std)?, control))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_stop_refuses_new_transfers_and_waits_for_those_in_flight() {
        let transfers = Transfers::default();
        let first = transfers.begin().expect("a transfer starts");
        assert_eq!(transfers.stop(), 1);
        assert!(transfers.begin().is_none(), "nothing new once stopping");
        let idle = tokio::spawn(transfers.idle());
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!idle.is_finished());
        drop(first);
        tokio::time::timeout(Duration::from_secs(1), idle).await.unwrap().unwrap();
    }
}
