//! Identity: users, shares and their rights, and the principals requests run as. Every
//! protocol authenticates through here, so one user and one right mean the same on each.
//!
//! - `principal`: who a request runs as and what part of the tree it sees.
//! - `users`: users, shares and grants as rows (`Repository::add_user`, `grant`, ...).
//! - `password`: argon2id hashes and the RFC 7616 Digest secrets.
//! - `guard`: lockout and back-off after failed logins.
//! - `authenticator`: logins for every protocol, with a cache that keeps argon2 off the
//!   steady state.

mod authenticator;
mod failures;
mod guard;
pub mod password;
mod principal;
mod secrets;
mod shares;
mod users;
mod view;

pub use authenticator::{Authenticator, LoginOutcome, WATCH_PERIOD};
pub use guard::{Guard, GuardConfig};
pub use password::REALM;
pub use principal::{home_of, share_path, Flags, Mount, Principal, Rights, HOMES, PUBLIC, SHARES};
pub use shares::ShareInfo;
pub use users::{validate_name, User, UserOptions, FIRST_ADMIN};
pub use view::{Allowed, View};

use std::path::Path;
use std::sync::Arc;

use wharf_backends::{BlobId, BlobStore, ByteStream, LocalStore, Staged};

use crate::{Config, Repository, Result};

impl Repository {
    /// Opens the repository in `dir` for an administration command (`wharf user ...`)
    /// that may run while `wharf serve` uses the same directory. Unlike
    /// [`Repository::open`] it leaves the blob store's `tmp/` alone (the server's uploads in
    /// progress live there), sweeps no orphans, and never deletes a blob file: a blob the
    /// collector here finds unreferenced may be one the server is adopting at that very
    /// moment, which only the server's own collector guard can rule out. Files left
    /// behind are swept by the server at its next start.
    ///
    /// `database`: the server's `--database`, if it has one.
    pub async fn open_admin(dir: &Path, database: Option<&str>) -> Result<Repository> {
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|e| crate::Error::Internal(format!("cannot create {}: {e}", dir.display())))?;
        let config = Config::default();
        let store = LocalStore::attach(dir.join("blobs"), config.durability).await?;
        let url = crate::db::url(dir, database);
        let mut repo = Self::with_store(&url, Arc::new(KeepBlobFiles(store)), config).await?;
        repo.data_dir = Some(dir.to_owned());
        Ok(repo)
    }
}

/// A blob store whose `delete` keeps the file (see [`Repository::open_admin`]).
struct KeepBlobFiles<S>(S);

#[async_trait::async_trait]
impl<S: BlobStore> BlobStore for KeepBlobFiles<S> {
    async fn stage(&self, body: ByteStream, limit: Option<u64>) -> wharf_backends::Result<Staged> {
        self.0.stage(body, limit).await
    }

    async fn commit(&self, staged: Staged) -> wharf_backends::Result<BlobId> {
        self.0.commit(staged).await
    }

    async fn open(&self, id: &BlobId, range: Option<std::ops::Range<u64>>) -> wharf_backends::Result<ByteStream> {
        self.0.open(id, range).await
    }

    async fn delete(&self, _id: &BlobId) -> wharf_backends::Result<u64> {
        Ok(0)
    }

    async fn list(&self) -> wharf_backends::Result<Vec<BlobId>> {
        self.0.list().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DavPath, PutOptions};

    #[tokio::test]
    async fn administration_leaves_uploads_in_progress_and_blob_files_alone() {
        let dir = tempfile::tempdir().unwrap();
        let server = Repository::open(dir.path(), Config::blob_files_only()).await.unwrap();
        server.add_user("alice", "pw", UserOptions::default()).await.unwrap();
        let body: crate::ByteStream =
            Box::pin(futures_util::stream::once(async { Ok(bytes::Bytes::from_static(b"x")) }));
        server.put(&DavPath::parse("/home/alice/f").unwrap(), body, PutOptions::default()).await.unwrap();
        let upload = dir.path().join("blobs").join("tmp").join("in-flight.tmp");
        std::fs::write(&upload, b"partial").unwrap();

        let admin = Repository::open_admin(dir.path(), None).await.unwrap();
        admin.delete_user("alice").await.unwrap();
        assert!(upload.exists(), "the server's upload in progress survives");
        assert_eq!(server.blobs.list().await.unwrap().len(), 1, "the blob file is left for the server");
        // Read through the administrating repository: the server's own lookup cache learns
        // of other processes' changes from the authenticator's watch, not used here.
        assert!(admin.resolve(&DavPath::parse("/home/alice").unwrap()).await.unwrap().is_none());
        admin.close().await;
        server.close().await;

        let restarted = Repository::open(dir.path(), Config::default()).await.unwrap();
        assert!(restarted.blobs.list().await.unwrap().is_empty(), "swept at the next start");
        assert!(!upload.exists());
    }
}
